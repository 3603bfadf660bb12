"""An accepted write reports what the order shows (docs/formats.md, "Writes").

Through a real mount, with the emulator's POST /admin/operations knobs: ARM
accepts the PATCH, then its long-running operation misbehaves the ways the
issue reproduced: a Location on a foreign host, a plain-http Location, every
poll dropped while the change lands 2 s later, Retry-After: 99999 on every
202. Each write must succeed exactly when the order the emulator stores holds
the change afterwards, fail with ETIMEDOUT when it does not (a change that
lands after the timeout), and return within timeout + 2 s. After a success the
errors file has no last-write block; no request reached a foreign host (the
emulator logs every Host it is sent, and a TCP trap catches port 80, where a
followed http Location would go). A failed operation stays EIO."""

import os
import time

import harness
import oracle
import writes

TIMEOUT = 20  # -o timeout: a lost poll alone costs the retry layer about 12 s
ETIMEDOUT_TEXT = "Connection timed out"


class AcceptedWrites(writes.WriteWorld):
	# The default lro_poll (10 s): the schedule of 1 s, 2 s, 4 s ... is the mount's own.
	MOUNT = {"cache_ttl": 0, "timeout": TIMEOUT}

	@classmethod
	def setUpClass(cls):
		cls.trap = writes.Trap()
		cls.world = cls.make_world()
		cls.emu = harness.Emulator(cls.world).start()
		try:
			# Port 80 of the hosts a Location names goes to the trap (curl takes
			# the first match); every https host, evil.example.net included, to
			# the emulator, which logs the Host of whatever reaches it.
			rules = ["%s:80:127.0.0.1:%d" % (h, cls.trap.port)
				 for h in ("management.azure.com", "evil.example.net")]
			rules.append("::127.0.0.1:%d" % cls.emu.https_port)
			cls.mnt = harness.Mount(cls.emu, connect_to=rules, **cls.MOUNT).start()
		except BaseException:
			cls.emu.stop()
			cls.trap.stop()
			raise
		cls.learn_world()

	@classmethod
	def tearDownClass(cls):
		try:
			super().tearDownClass()
		finally:
			cls.trap.stop()

	def tearDown(self):
		try:
			self.emu.admin("DELETE", "/admin/operations")
		finally:
			super().tearDown()

	def operations(self, **conf):
		got = self.emu.admin("POST", "/admin/operations", conf)
		for k, v in conf.items():
			self.assertEqual(got[k], v, got)

	def write_key(self, d):
		"""echo a new key URL > d/key_url: (process, seconds, url)."""
		url = self.key_url("dbx-key-3072")
		self.emu.reset_log()
		t0 = time.monotonic()
		p = writes.echo_to(os.path.join(d, "key_url"), url, timeout=TIMEOUT + 30)
		return p, time.monotonic() - t0, url

	def assert_no_foreign_request(self):
		reqs = self.emu.requests()
		hosts = sorted({r["host"] for r in reqs})
		for h in hosts:
			self.assertTrue(h.endswith(".azure.com") or h.endswith(".azure.net") or
					h.endswith(".microsoftonline.com"), "a request went to %s" % h)
		self.assertFalse([r for r in reqs if "evil" in r["host"]], hosts)
		self.assertEqual(self.trap.accepted, 0, "the mount connected to port 80")
		return reqs

	def assert_truth(self, d, sub, rg, name, p, secs, url):
		"""The write's exit status is what the stored order holds now."""
		self.assertLessEqual(secs, TIMEOUT + 2, "the write took %.1f s" % secs)
		stored = self.kek_url_of(sub, rg, name)
		if p.returncode == 0:
			self.assertEqual(stored, url, "success for a change the order does not hold")
			self.assertEqual(p.stderr, "")
			self.assert_no_last_write(d)
			self.assertEqual(writes.read(os.path.join(d, "key_url")), url + "\n")
		else:
			self.assertNotEqual(stored, url,
					    "failure (%s) for a change the order holds" % p.stderr.strip())
			self.assertIn(ETIMEDOUT_TEXT, p.stderr)
		return self.assert_no_foreign_request()

	def accepted_write(self, expect_ok, **conf):
		sub, rg, name, d = self.new_order("cm-system")
		self.last_dir = d
		self.operations(**conf)
		p, secs, url = self.write_key(d)
		harness.log("%r: exit %d in %.1f s %s" % (conf, p.returncode, secs, p.stderr.strip()))
		reqs = self.assert_truth(d, sub, rg, name, p, secs, url)
		self.assertEqual(len(writes.patches(reqs)), 1, "the PATCH was sent again")
		self.assertEqual(p.returncode == 0, expect_ok, p.stderr)
		return p, secs, reqs

	# ---- the reproductions ----
	def test_foreign_location(self):
		_, secs, reqs = self.accepted_write(True, location="foreign")
		self.assertFalse([r for r in reqs if "operationResults" in r["path"]], reqs)
		self.assertLess(secs, 5)

	def test_http_location(self):
		_, secs, reqs = self.accepted_write(True, location="http")
		self.assertFalse([r for r in reqs if "operationResults" in r["path"]], reqs)
		self.assertLess(secs, 5)

	def test_dropped_polls_change_lands_later(self):
		_, _, reqs = self.accepted_write(True, complete_after_ms=2000, drop_polls=100)
		self.assertTrue([r for r in reqs if "operationResults" in r["path"]], reqs)

	def test_huge_retry_after(self):
		_, secs, _ = self.accepted_write(True, retry_after="99999")
		self.assertLess(secs, 5)

	def test_huge_retry_after_change_lands_later(self):
		"""The poll that would show it is due in 99999 s: the order is watched instead."""
		self.accepted_write(True, retry_after="99999", complete_after_ms=2000)

	def test_change_after_the_timeout_is_etimedout(self):
		"""The change lands 60 s after the PATCH: ETIMEDOUT, the order does not hold it."""
		p, secs, _ = self.accepted_write(False, location="foreign", complete_after_ms=60000)
		self.assertGreaterEqual(secs, TIMEOUT - 3, "gave up long before the timeout")
		self.assertIn(ETIMEDOUT_TEXT, p.stderr)
		d = self.last_dir
		text = writes.read(os.path.join(d, "errors"))
		blocks = [b for b in oracle.parse_errors(text) if b.get("source") == "last-write"]
		self.assertTrue(blocks, text)
		self.assertIn("may still be applied", blocks[0].get("message", ""), text)

	def test_polls_see_the_change_land(self):
		"""Normal polling of an operation that ends 2 s after the PATCH: polls at 1 s
		and 3 s, then the job at once (no lro_poll interval after the last Location)."""
		_, secs, reqs = self.accepted_write(True, complete_after_ms=2000)
		polls = [r for r in reqs if "operationResults" in r["path"]]
		self.assertEqual(len(polls), 2, [(r["method"], r["path"]) for r in reqs])
		self.assertLess(secs, 6)

	def test_failed_operation_stays_eio(self):
		sub, rg, name, d = self.new_order("cm-system")
		before = self.kek_url_of(sub, rg, name)
		self.emu.admin("POST", "/admin/fail-next-patch", {"count": 1})
		p, secs, url = self.write_key(d)
		self.assertNotEqual(p.returncode, 0)
		self.assertIn(writes.EIO_TEXT, p.stderr)
		self.assertLessEqual(secs, TIMEOUT + 2)
		self.assertEqual(self.kek_url_of(sub, rg, name), before)
		self.assert_no_foreign_request()


if __name__ == "__main__":
	writes.main()
