"""Backups of the mount: tar -cf then tar -df compares clean; rsync -a of a
copy finds nothing to change on a second, dry run."""

import os
import shutil
import tempfile
import unittest

import harness


class Tar(harness.MountedWorld):
	WORLD = {"orders": 20, "subscriptions": 2, "resource_groups": 2, "seed": 5}
	MOUNT = {"cache_ttl": 2}

	def setUp(self):
		self.tmp = tempfile.mkdtemp(prefix="dbx-tar-")

	def tearDown(self):
		shutil.rmtree(self.tmp, ignore_errors=True)
		super().tearDown()

	def test_tar_diff_clean(self):
		archive = os.path.join(self.tmp, "m.tar")
		p = harness.run(["tar", "-cf", archive, "-C", self.mnt.path, "."], timeout=120)
		self.assertEqual((p.returncode, p.stderr), (0, ""), "tar -c")
		p = harness.run(["tar", "-tf", archive], timeout=60)
		names = [n for n in p.stdout.splitlines() if n.endswith("/status")]
		self.assertEqual(len(names), len(self.world["jobs"]))
		p = harness.run(["tar", "-df", archive, "-C", self.mnt.path], timeout=120)
		self.assertEqual((p.returncode, p.stdout, p.stderr), (0, "", ""), "tar -d")

	@unittest.skipUnless(shutil.which("rsync"), "rsync is not installed")
	def test_rsync_second_run_changes_nothing(self):
		copy = os.path.join(self.tmp, "copy") + "/"
		src = self.mnt.path + "/"
		p = harness.run(["rsync", "-a", src, copy], timeout=120)
		self.assertEqual(p.returncode, 0, p.stderr)
		p = harness.run(["rsync", "-a", "--dry-run", "--itemize-changes", src, copy], timeout=120)
		self.assertEqual(p.returncode, 0, p.stderr)
		self.assertEqual(p.stdout, "", "rsync sees changes on a second run")
		# And the copy holds what the mount shows.
		p = harness.run(["diff", "-r", self.mnt.path, copy], timeout=120)
		self.assertEqual((p.returncode, p.stdout), (0, ""))


if __name__ == "__main__":
	harness.main()
