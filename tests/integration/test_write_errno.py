"""The errno of a failed write, spot checks through a real mount
(docs/formats.md, "errno"): 409 (an order in a Completed stage) is EBUSY,
a 403 from ARM on the PATCH is EACCES, a PATCH throttled past the retry budget is EAGAIN, a 500
on every PATCH is EIO; each refused write leaves the order as it was and
says why in errors. A 403 on the Key Vault key GET (the admin may not read
keys) skips that check: the write proceeds and the service decides."""

import os
import time

import harness
import oracle
import writes

JOBS = "/subscriptions/"


class Errno(writes.WriteWorld):

	def failing_write(self, d, errno_text, value=None):
		sub, rg, name = d.split(os.sep)[-3:]
		before = self.job(sub, rg, name)
		self.emu.reset_log()
		t0 = time.monotonic()
		p = writes.echo_to(os.path.join(d, "key_url"), value or self.key_url("dbx-key-3072"))
		took = time.monotonic() - t0
		self.assert_refused(p, errno_text)
		self.assert_unchanged(before, sub, rg, name)
		text = writes.read(os.path.join(d, "errors"))
		blocks = [b for b in oracle.parse_errors(text) if b.get("source") == "last-write"]
		self.assertEqual(len(blocks), 1, text)
		return blocks[0], took

	def test_409_completed_order_is_EBUSY(self):
		*_, d = self.new_order("cm-system", status="Completed")
		b, _ = self.failing_write(d, writes.EBUSY_TEXT)
		self.assertEqual(b["code"], "Conflict", b)
		statuses = [r["status"] for r in writes.patches(self.emu.requests())]
		self.assertEqual(statuses, [409])

	def test_403_on_patch_is_EACCES(self):
		*_, d = self.new_order("cm-system")
		self.emu.fault(service="arm", method="PATCH", path_prefix=JOBS, status=403)
		b, _ = self.failing_write(d, "Permission denied")
		self.assertTrue(b.get("request_id"), b)

	def test_500_on_every_patch_is_EIO(self):
		*_, d = self.new_order("cm-system")
		self.emu.fault(service="arm", method="PATCH", path_prefix=JOBS, status=500)
		self.failing_write(d, writes.EIO_TEXT)
		# Never resent blindly: the order is read before any second PATCH.
		seq = [r["method"] for r in self.emu.requests()
		       if r["service"] == "arm" and "/jobs/" in r["path"].lower()]
		first = seq.index("PATCH")
		for i in range(first + 1, len(seq)):
			if seq[i] == "PATCH":
				self.assertIn("GET", seq[first + 1:i], seq)
				first = i

	def test_429_past_the_retry_budget_is_EAGAIN(self):
		"""A mount with -o timeout=4: throttled with Retry-After: 1 until the end."""
		mnt = harness.Mount(self.emu, cache_ttl=0, timeout=4, extra=("lro_poll=0.05",)).start()
		try:
			sub, rg, name, _ = self.new_order("cm-system")
			d = mnt.p(sub, rg, name)
			self.emu.fault(service="arm", method="PATCH", path_prefix=JOBS, status=429,
				       retry_after="1")
			b, took = self.failing_write(d, writes.EAGAIN_TEXT)
			self.assertLess(took, 4 + 3, "the write outlived its timeout")
			self.assertGreaterEqual(len(writes.patches(self.emu.requests())), 2,
						"the throttled PATCH was not retried")
		finally:
			mnt.stop()

	def test_404_on_patch_is_ENOENT(self):
		"""The order vanished between the fresh GET and the PATCH."""
		*_, d = self.new_order("cm-system")
		self.emu.fault(service="arm", method="PATCH", path_prefix=JOBS, status=404,
			       body='{"error": {"code": "ResourceNotFound", "message": "gone"}}')
		self.failing_write(d, "No such file or directory")

	def short_mount(self, timeout):
		return harness.Mount(self.emu, cache_ttl=0, timeout=timeout,
				     extra=("lro_poll=0.05",)).start()

	def test_operation_outliving_timeout_is_ETIMEDOUT(self):
		"""-o timeout=3 and an operation whose polls take 5 s: ETIMEDOUT within
		the bound, and errors says the change may still arrive (as long as
		the order does not show it: a read that does removes the block)."""
		mnt = self.short_mount(3)
		try:
			sub, rg, name, _ = self.new_order("cm-system")
			d = mnt.p(sub, rg, name)
			before = self.job(sub, rg, name)
			self.emu.fault(service="arm", method="GET", path_prefix=JOBS + self.sub0 +
				       "/providers/Microsoft.DataBox/locations/", latency_ms=5000)
			self.emu.reset_log()
			t0 = time.monotonic()
			p = writes.echo_to(os.path.join(d, "key_url"), self.key_url("dbx-key-3072"))
			took = time.monotonic() - t0
			self.assert_refused(p, "Connection timed out")
			self.assertLess(took, 3 + 3, "the write outlived -o timeout")
			self.assertEqual(len(writes.patches(self.emu.requests())), 1)
			# The emulator applied the PATCH at once; put the order back, as if the
			# operation had not got there yet.
			self.emu.admin("PUT", "/admin/jobs/%s/%s/%s" % (sub, rg, name), before)
			b = [x for x in oracle.parse_errors(writes.read(os.path.join(d, "errors")))
			     if x.get("source") == "last-write"][0]
			self.assertEqual(b["code"], "Timeout", b)
			# The PATCH was accepted: the admin must learn the change may still land.
			self.assertIn("whether the change arrived", b["remedy"], b)
		finally:
			mnt.stop()

	def test_key_vault_unreachable_is_EHOSTUNREACH(self):
		"""The vault's host refuses connections (connect_to a closed port):
		EHOSTUNREACH, before any PATCH, the order untouched."""
		rules = ["%s.vault.azure.net:443:127.0.0.1:%d" % (self.vname, harness.closed_port()),
			 "::127.0.0.1:%d" % self.emu.https_port]
		mnt = harness.Mount(self.emu, cache_ttl=0, timeout=4, connect_to=rules,
				    extra=("lro_poll=0.05",)).start()
		try:
			sub, rg, name, _ = self.new_order("cm-system")
			d = mnt.p(sub, rg, name)
			before = self.job(sub, rg, name)
			self.emu.reset_log()
			p = writes.echo_to(os.path.join(d, "key_url"), self.key_url("dbx-key-3072"))
			self.assert_refused(p, "No route to host")
			self.assertEqual(writes.patches(self.emu.requests()), [])
			self.assert_unchanged(before, sub, rg, name)
			blocks = [b for b in oracle.parse_errors(writes.read(os.path.join(d, "errors")))
				  if b.get("source") == "last-write"]
			self.assertEqual(len(blocks), 1, blocks)
			self.assertIn("key vault could not be reached", blocks[0]["remedy"], blocks[0])
		finally:
			mnt.stop()

	def test_key_vault_dropping_connections_is_EIO_advised_as_the_vault(self):
		"""The vault drops every connection: EIO, no PATCH, and the remedy
		names the key vault, never ARM, which was not the one failing."""
		self.emu.fault(service="keyvault", drop=True)
		sub, rg, name, d = self.new_order("cm-system")
		b, _ = self.failing_write(d, "Input/output error")
		self.assertEqual(writes.patches(self.emu.requests()), [])
		self.assertIn("key vault failed", b["remedy"], b)
		self.assertNotIn("Resource Manager", b["remedy"], b)

	def test_403_on_key_get_skips_the_check(self):
		sub, rg, name, d = self.new_order("cm-system")
		url = self.key_url("dbx-key-3072")
		self.emu.fault(service="keyvault", method="GET", path_prefix="/keys/", status=403)
		self.emu.reset_log()
		p = writes.echo_to(os.path.join(d, "key_url"), url)
		self.assertEqual(p.returncode, 0, p.stderr)
		self.assertEqual(self.kek(self.job(sub, rg, name))["kekUrl"], url)
		reqs = self.emu.requests()
		self.assertTrue([r for r in reqs if r["service"] == "keyvault" and r["status"] == 403])
		self.assertEqual(len(writes.patches(reqs)), 1)
		self.assertIn("%s/key_url: written; preflight notes: key not readable" % name,
			      self.mnt.stderr())

	def test_403_on_key_get_noted_in_errors(self):
		"""docs/formats.md, "Validation": a skipped check is "noted in errors": a last-write
		block that names what was not checked, replaced by the next write."""
		*_, d = self.new_order("cm-system")
		self.emu.fault(service="keyvault", method="GET", path_prefix="/keys/", status=403)
		p = writes.echo_to(os.path.join(d, "key_url"), self.key_url("dbx-key-3072"))
		self.assertEqual(p.returncode, 0, p.stderr)
		text = writes.read(os.path.join(d, "errors"))
		self.assertIn("code: PreflightSkipped\nsource: last-write\n", text)
		self.assertIn("403", text)
		self.emu.clear_faults()
		p = writes.echo_to(os.path.join(d, "key_url"), self.key_url("dbx-key-2048"))
		self.assertEqual(p.returncode, 0, p.stderr)
		self.assertNotIn("PreflightSkipped", writes.read(os.path.join(d, "errors")))

	def test_403_on_key_get_service_still_refuses(self):
		"""The skipped check does not hide the service's answer: a disabled
		key is still refused (by the PATCH) with its Ssem code."""
		sub, rg, name, d = self.new_order("cm-system")
		self.emu.fault(service="keyvault", method="GET", path_prefix="/keys/", status=403)
		self.refused_write(d, "key_url", self.key_url("dbx-key-disabled"),
				   "SsemUserErrorEncryptionKeyDisabled", sent_patch=True)


if __name__ == "__main__":
	writes.main()
