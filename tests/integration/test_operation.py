"""The operation file and -o dry_run (docs/formats.md, "The operation file").

Through real mounts on the emulator: a write whose long-running operation
the emulator holds open for some seconds (POST /admin/operations
complete_after_ms) is watched from other processes while it runs: its
order's operation file names the file, the value, the PATCH body, when it
was sent (RFC 3339), the polls so far and the next one, with st_size equal
to what cat reads; key_url meanwhile shows what the stored order holds (the
old key), and operation is empty once the write returned.

A second mount with -o dry_run: a write that passes every check succeeds,
sends no PATCH (the emulator's request log), leaves the order as it was and
leaves "dry run: would PATCH <body>" in operation until the next write; a
write the preflight refuses fails with the same errno and errors block as on
the real mount.
"""

import os
import re
import subprocess
import time

import harness
import writes

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def fields(text):
	out = {}
	for line in text.splitlines():
		k, _, v = line.partition(": ")
		out[k] = v
	return out


class Operation(writes.WriteWorld):
	# lro_poll=1: polls at most a second apart, so several happen while it runs.
	MOUNT = {"cache_ttl": 0, "timeout": 30, "extra": ("lro_poll=1",)}

	def tearDown(self):
		try:
			self.emu.admin("DELETE", "/admin/operations")
		finally:
			super().tearDown()

	def other_cat(self, path):
		"""cat from another process: (bytes, st_size seen just before)."""
		size = os.stat(path).st_size
		return harness.cat(self, path, timeout=20), size

	def test_in_flight_then_empty(self):
		sub, rg, name, d = self.new_order("cm-system")
		old = writes.read(os.path.join(d, "key_url"))
		self.assertEqual(writes.read(os.path.join(d, "operation")), "")
		self.assertEqual(os.stat(os.path.join(d, "operation")).st_size, 0)
		url = self.key_url("dbx-key-3072")
		self.emu.admin("POST", "/admin/operations", {"complete_after_ms": 5000})
		p = subprocess.Popen(["bash", "-c", "echo %s > %s" % (writes.q(url),
				      writes.q(os.path.join(d, "key_url")))],
				     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
				     stdin=subprocess.DEVNULL)
		try:
			seen = {}

			def polling():
				text, size = self.other_cat(os.path.join(d, "operation"))
				seen["text"], seen["size"] = text, size
				f = fields(text.decode())
				return f.get("state") == "polling" and int(f.get("polls", "0")) >= 1
			harness.wait_for(polling, 10, "the operation file to show a poll")
			text = seen["text"].decode()
			harness.log("operation while in flight:\n" + text)
			self.assertTrue(text.endswith("\n"), text)
			f = fields(text)
			self.assertEqual(f["file"], "key_url", text)
			self.assertEqual(f["value"], url, text)
			self.assertIn(url, f["patch"], text)
			self.assertTrue(f["patch"].startswith("{"), text)
			self.assertRegex(f["sent"], RFC3339)
			self.assertRegex(f["next_poll"], RFC3339)
			self.assertGreaterEqual(f["next_poll"], f["sent"])
			# st_size is exact: a snapshot, what this very open reads.
			fd = os.open(os.path.join(d, "operation"), os.O_RDONLY)
			try:
				size2 = os.fstat(fd).st_size
				text2 = os.read(fd, 65536)
			finally:
				os.close(fd)
			self.assertEqual(size2, len(text2), text2)
			self.assertGreater(size2, 0)
			# Other readers see what the order holds, not the value in flight.
			self.assertIsNone(p.poll(), "the write ended before it could be watched")
			got, _ = self.other_cat(os.path.join(d, "key_url"))
			self.assertEqual(got.decode(), old)
			self.assertNotEqual(self.kek_url_of(sub, rg, name), url)
			out, err = p.communicate(timeout=40)
		finally:
			if p.poll() is None:
				p.kill()
				p.wait(timeout=5)
		self.assertEqual(p.returncode, 0, err)
		self.assertEqual(self.kek_url_of(sub, rg, name), url)
		self.assertEqual(writes.read(os.path.join(d, "key_url")), url + "\n")
		self.assertEqual(writes.read(os.path.join(d, "operation")), "")
		self.assertEqual(os.stat(os.path.join(d, "operation")).st_size, 0)

	def test_read_only(self):
		_, _, _, d = self.new_order("mm-system")
		self.assertEqual(os.stat(os.path.join(d, "operation")).st_mode & 0o777, 0o444)
		p = writes.echo_to(os.path.join(d, "operation"), "x")
		self.assertNotEqual(p.returncode, 0)
		self.assertIn("operation", os.listdir(d))

	def test_dry_run(self):
		dry = harness.Mount(self.emu, cache_ttl=2, timeout=30,
				    extra=("lro_poll=1", "dry_run")).start()
		try:
			self.dry_run_checks(dry)
		finally:
			dry.stop()

	def dry_run_checks(self, dry):
		sub, rg, name, _ = self.new_order("cm-system")
		d = dry.p(sub, rg, name)
		before = self.job(sub, rg, name)
		url = self.key_url("dbx-key-3072")
		self.emu.reset_log()
		p = writes.echo_to(os.path.join(d, "key_url"), url)
		self.assertEqual(p.returncode, 0, p.stderr)
		reqs = self.emu.requests()
		self.assertEqual(writes.patches(reqs), [], "a dry run sent a PATCH")
		# The checks did run: the order read fresh and the key looked up.
		self.assertTrue([r for r in reqs if r["method"] == "GET" and name in r["path"]])
		self.assertTrue([r for r in reqs if "vault.azure.net" in r["host"]],
				[(r["host"], r["path"]) for r in reqs])
		self.assert_unchanged(before, sub, rg, name)
		self.assertNotEqual(writes.read(os.path.join(d, "key_url")), url + "\n")
		op = writes.read(os.path.join(d, "operation"))
		harness.log("operation after a dry run: " + op)
		self.assertTrue(op.startswith("dry run: would PATCH {"), op)
		self.assertIn(url, op)
		self.assertEqual(os.stat(os.path.join(d, "operation")).st_size, len(op))
		self.assert_no_last_write(d)

		# A write the preflight refuses: the errno and the block a real write gives.
		missing = self.key_url("no-such-key-here")
		p = writes.echo_to(os.path.join(d, "key_url"), missing)
		self.assert_refused(p)
		self.assert_block(d, "SsemUserErrorKeyDetailsNotFound")
		real = self.mnt.p(sub, rg, name)
		q = writes.echo_to(os.path.join(real, "key_url"), missing)
		self.assert_refused(q)
		self.assertEqual(p.stderr.split(":")[-1], q.stderr.split(":")[-1])
		self.assert_block(real, "SsemUserErrorKeyDetailsNotFound")
		self.assertEqual(writes.patches(self.emu.requests()), [])
		self.assert_unchanged(before, sub, rg, name)
		# The next write replaced the dry run's text.
		self.assertEqual(writes.read(os.path.join(d, "operation")), "")


if __name__ == "__main__":
	writes.main()
