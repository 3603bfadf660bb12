"""This version's mount is read-only: writing any file, creating, removing
or renaming fails with EROFS, and nothing is sent to ARM but reads."""

import errno
import os

import harness
import oracle


class ReadOnly(harness.MountedWorld):
	WORLD = {"orders": 3, "subscriptions": 1, "resource_groups": 1, "seed": 37}

	def expect_erofs(self, fn, *args):
		with self.assertRaises(OSError) as cm:
			fn(*args)
		self.assertEqual(cm.exception.errno, errno.EROFS, "%s%r: %s" % (fn.__name__, args, cm.exception))

	def write(self, path, data):
		with open(path, "w") as f:
			f.write(data)

	def test_every_change_is_erofs(self):
		sub, rg, name = harness.split_job_id(self.world["jobs"][0]["id"])
		d = self.mnt.p(sub, rg, name)
		before = harness.cat(self, os.path.join(d, "encryption.json"))
		self.emu.reset_counters()
		for f in oracle.FILES:
			self.expect_erofs(self.write, os.path.join(d, f), "MicrosoftManaged\n")
		p = harness.run(["sh", "-c", 'echo SystemAssigned > "$1"', "sh", os.path.join(d, "identity")])
		self.assertNotEqual(p.returncode, 0)
		self.assertIn("Read-only file system", p.stderr)
		self.expect_erofs(self.write, os.path.join(d, "new-file"), "x")
		self.expect_erofs(os.mkdir, os.path.join(d, "new-dir"))
		self.expect_erofs(os.unlink, os.path.join(d, "status"))
		self.expect_erofs(os.rename, os.path.join(d, "status"), os.path.join(d, "status2"))
		self.expect_erofs(os.chmod, os.path.join(d, "status"), 0o600)
		writes = {k: n for k, n in self.emu.counters()["by_path"].items()
			  if not k.startswith("GET ") and " login.microsoftonline.com/" not in k}
		self.assertEqual(writes, {}, "a refused change still reached Azure")
		self.assertEqual(harness.cat(self, os.path.join(d, "encryption.json")), before)


if __name__ == "__main__":
	harness.main()
