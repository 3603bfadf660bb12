"""What cannot change through the mount: writing a read-only file (key_vault,
principal_id, status, errors) is EACCES even for root (the mode says 0444,
as in sysfs), changing the tree itself (create outside order directories,
mkdir, unlink or chmod of an attribute) is EROFS, renaming an attribute is
EPERM, and none of it sends anything to Azure. (Order directories take
editors' temporary files: test_editors.py.) On a mount with -o ro every
file shows 0444 and every write is EROFS."""

import errno
import os

import harness
import oracle

READ_ONLY = [f for f in oracle.FILES if f not in oracle.RW_FILES]


class ReadOnly(harness.MountedWorld):
	WORLD = {"orders": 3, "subscriptions": 1, "resource_groups": 1, "seed": 37}

	def expect_erofs(self, fn, *args):
		self.expect_errno(errno.EROFS, fn, *args)

	def write(self, path, data):
		with open(path, "w") as f:
			f.write(data)

	def test_read_only_files_and_structure(self):
		sub, rg, name = harness.split_job_id(self.world["jobs"][0]["id"])
		d = self.mnt.p(sub, rg, name)
		before = {f: harness.cat(self, os.path.join(d, f)) for f in oracle.FILES}
		self.emu.reset_counters()
		for f in READ_ONLY:
			self.expect_errno(errno.EACCES, self.write, os.path.join(d, f), "x\n")
		p = harness.run(["sh", "-c", 'echo Completed > "$1"', "sh", os.path.join(d, "status")])
		self.assertNotEqual(p.returncode, 0)
		self.assertIn("Permission denied", p.stderr)
		self.expect_erofs(self.write, self.mnt.p(sub, rg, "new-file"), "x")
		self.expect_erofs(self.write, self.mnt.p(sub, "new-file"), "x")
		self.expect_erofs(self.write, self.mnt.p("new-file"), "x")
		self.expect_erofs(os.mkdir, os.path.join(d, "new-dir"))
		self.expect_erofs(os.mkdir, self.mnt.p(sub, "new-rg"))
		self.expect_erofs(os.unlink, os.path.join(d, "key_url"))
		self.expect_erofs(os.rmdir, d)
		self.expect_errno(errno.EPERM, os.rename, os.path.join(d, "status"),
				  os.path.join(d, "status2"))
		self.expect_erofs(os.chmod, os.path.join(d, "key_url"), 0o600)
		writes = {k: n for k, n in self.emu.counters()["by_path"].items()
			  if not k.startswith("GET ") and " login.microsoftonline.com/" not in k}
		self.assertEqual(writes, {}, "a refused change still reached Azure")
		after = {f: harness.cat(self, os.path.join(d, f)) for f in oracle.FILES}
		self.assertEqual(after, before)


class ReadOnlyMount(harness.MountedWorld):
	WORLD = {"orders": 2, "subscriptions": 1, "resource_groups": 1, "seed": 38}
	MOUNT = {"extra": ("ro",)}

	def test_modes_say_read_only(self):
		sub, rg, name = harness.split_job_id(self.world["jobs"][0]["id"])
		d = self.mnt.p(sub, rg, name)
		modes = {f: os.stat(os.path.join(d, f)).st_mode & 0o777 for f in oracle.FILES}
		self.assertEqual(modes, {f: 0o444 for f in oracle.FILES})
		self.emu.reset_counters()
		for f in oracle.RW_FILES:
			self.expect_errno(errno.EROFS, os.open, os.path.join(d, f), os.O_WRONLY)
		writes = {k: n for k, n in self.emu.counters()["by_path"].items()
			  if not k.startswith("GET ") and " login.microsoftonline.com/" not in k}
		self.assertEqual(writes, {}, "a write on a read-only mount reached Azure")


if __name__ == "__main__":
	harness.main()
