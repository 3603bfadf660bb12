"""A slow token endpoint costs a syscall no more than -o timeout.

With the cached tokens expired (POST /admin/tokens/expire, so ARM answers
401 and the mount must fetch new ones) and Entra answering after 90 s,
`cat status` and `echo URL > key_url` on a mount with timeout=10 each fail
with ETIMEDOUT within 10 + 2 s, and so do several cats at once (one of
them makes the token request, the others wait for it, each only until its
own deadline). The write changes nothing, and the errors file says the
token request was slow, not ARM. Once Entra answers again the next cat
succeeds, at once. No token text ever appears in the mount's -d log.
"""

import os
import subprocess
import threading
import time

import authtest
import harness
import oracle
import writes

TIMEOUT = 10
SLACK = 2.0
# A failure is the answer for half a second after it (docs/formats.md,
# "Reads"): the next system call starts once that has passed.
HELD = 0.6
ETIMEDOUT_TEXT = "Connection timed out"


class AuthTimeout(writes.WriteWorld):
	MOUNT = {"cache_ttl": 0, "timeout": TIMEOUT, "debug": True, "extra": ("lro_poll=0.05",)}

	def slow_entra(self):
		"""Every cached token dies and Entra takes 90 s to answer."""
		self.emu.fault(service="entra", latency_ms=90000)
		self.emu.admin("POST", "/admin/tokens/expire", {})

	def timed(self, argv):
		t0 = time.monotonic()
		p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
				   timeout=TIMEOUT * 6, stdin=subprocess.DEVNULL)
		return p, time.monotonic() - t0

	def assert_timed_out(self, what, p, took):
		harness.log("%s: rc %d in %.1f s: %s" % (what, p.returncode, took, p.stderr.strip()))
		self.assertNotEqual(p.returncode, 0, "%s succeeded with no token to be had" % what)
		self.assertIn(ETIMEDOUT_TEXT, p.stderr, what)
		self.assertLess(took, TIMEOUT + SLACK, "%s took %.1f s at timeout=%d" %
				(what, took, TIMEOUT))

	def assert_no_token_in_log(self):
		log = self.mnt.stderr()
		self.assertGreater(len(log), 1000, "the -d log is (almost) empty")
		self.assertIsNone(authtest.JWT_RE.search(log), "a token in the mount's log")
		self.assertNotIn("Bearer ey", log)

	def recover(self, path, want):
		self.emu.clear_faults()
		time.sleep(HELD)
		p, took = self.timed(["cat", path])
		harness.log("after the fault: rc %d in %.1f s" % (p.returncode, took))
		self.assertEqual((p.returncode, p.stdout), (0, want), p.stderr)
		self.assertLess(took, TIMEOUT + SLACK)

	def test_cat_and_echo_time_out_then_recover(self):
		sub, rg, name, d = self.new_order("cm-system")
		status = os.path.join(d, "status")
		want = writes.read(status)
		before = self.job(sub, rg, name)
		self.slow_entra()

		p, took = self.timed(["cat", status])
		self.assert_timed_out("cat status", p, took)
		time.sleep(HELD)  # the write asks for itself, not the cat's held failure

		self.emu.reset_log()
		t0 = time.monotonic()
		p = writes.echo_to(os.path.join(d, "key_url"), self.key_url("dbx-key-3072"),
				   timeout=TIMEOUT * 6)
		self.assert_timed_out("echo > key_url", p, time.monotonic() - t0)
		self.assertEqual(writes.patches(self.emu.requests()), [], "a PATCH without a token")
		self.assertEqual(self.job(sub, rg, name), before, "the timed-out write changed the order")
		tokens = [r for r in self.emu.requests() if r["service"] == "entra"]
		self.assertTrue(tokens, "the write never asked Entra for a token")

		self.recover(status, want)
		# The open of key_url failed (O_TRUNC reads the order first): nothing
		# was written, and the mount's reason names the token request.
		why = [l for l in self.mnt.stderr().splitlines() if "warning" in l and "/key_url" in l]
		harness.log("the mount's reason: %s" % (why[-1] if why else None))
		self.assertTrue(why, "the mount logged no reason for the failed write")
		self.assertIn("token request to login.microsoftonline.com did not finish within the "
			      "timeout", why[-1])
		self.assertNotIn("ARM did not answer", self.mnt.stderr())
		self.assert_no_token_in_log()

	def test_concurrent_cats_each_time_out(self):
		_, _, _, d = self.new_order("cm-system")
		files = ["status", "encryption_type", "key_url", "identity"]
		want = writes.read(os.path.join(d, "status"))
		# Without parallel directory operations the kernel sends one LOOKUP
		# at a time per directory, and each would take its own timeout: look
		# the names up now, so the cats find them (entry_timeout is 1 s) and
		# only their GETATTR and OPEN, which run in parallel, reach the mount.
		for f in files:
			os.stat(os.path.join(d, f))
		self.slow_entra()
		self.emu.reset_log()
		results = [None] * len(files)

		def one(i):
			results[i] = self.timed(["cat", os.path.join(d, files[i])])

		threads = [threading.Thread(target=one, args=(i,)) for i in range(len(files))]
		for t in threads:
			t.start()
		for t in threads:
			t.join(TIMEOUT * 6)
		for f, (p, took) in zip(files, results):
			self.assert_timed_out("concurrent cat %s" % f, p, took)
		entra = [r for r in self.emu.requests() if r["service"] == "entra"]
		harness.log("%d concurrent cats: %d token requests" % (len(files), len(entra)))
		# One refresh at a time: the cats wait for one token request, not one each.
		self.assertLessEqual(len(entra), 2, entra)

		self.recover(os.path.join(d, "status"), want)
		self.assert_no_token_in_log()

	def test_errors_names_the_token_request(self):
		"""errors, read while the token endpoint is slow, says the token
		request was slow, not ARM. A mount of its own with cache_ttl=5, so
		that reading errors reuses the failure the cat just met instead of
		meeting it again in each of its operations (lookup, open, read)."""
		_, _, _, d = self.new_order("cm-system")
		ttl = 5
		m = harness.Mount(self.emu, cache_ttl=ttl, timeout=TIMEOUT).start()
		try:
			rel = os.path.relpath(d, self.mnt.path)
			status, errors = m.p(rel, "status"), m.p(rel, "errors")
			harness.cat(self, status)
			self.slow_entra()
			time.sleep(ttl + 0.5)  # the order m holds is stale: the next read fetches it
			p, took = self.timed(["cat", status])
			self.assert_timed_out("cat status (cache_ttl=%d)" % ttl, p, took)
			p, took = self.timed(["cat", errors])
			harness.log("errors during the fault (%.1f s):\n%s" % (took, p.stdout))
			self.assertEqual(p.returncode, 0, p.stderr)
			self.assertLess(took, TIMEOUT + SLACK)
			blocks = [b for b in oracle.parse_errors(p.stdout)
				  if "token request" in b.get("message", "") and
				  "did not finish within the timeout" in b.get("message", "")]
			self.assertTrue(blocks, p.stdout)
			# The advice blames the token endpoint, not ARM, which was never asked.
			self.assertEqual(blocks[0]["code"], "TokenTimeout", blocks[0])
			self.assertIn("token endpoint", blocks[0]["remedy"], blocks[0])
			self.assertNotIn("Resource Manager", p.stdout)
			self.assertNotIn("ARM did not answer", p.stdout)
		finally:
			self.emu.clear_faults()
			m.stop()


if __name__ == "__main__":
	writes.main()
