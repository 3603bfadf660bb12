"""Mounting from fstab: `mount -t fuse.databoxfs databoxfs MOUNTPOINT -o ...`.

mount(8) hands a fuse.TYPE line to mount.fuse3, which runs the program
named TYPE as `databoxfs SOURCE MOUNTPOINT -o OPTIONS` in the background
(no -f: databoxfs daemonizes). docs/formats.md, "Options" promises this works; the test
drives the real mount(8) with databoxfs on PATH, reads a file through the
mount, and unmounts with umount(8)."""

import os
import shutil
import unittest

import harness


class Fstab(harness.Cleanup, unittest.TestCase):
	def setUp(self):
		super().setUp()
		self.world = harness.gen_world(orders=3)
		self.emu = self.track(harness.Emulator(self.world).start())
		self.mnt = os.path.join(self.tmp, "m")
		os.mkdir(self.mnt)
		c = self.emu.client()
		self.env = {
			"PATH": "/usr/sbin:/sbin:/usr/bin:/bin",
			"HOME": self.tmp,
			"LANG": "C",
			"AZURE_TENANT_ID": c["tenant_id"],
			"AZURE_CLIENT_ID": c["client_id"],
			"AZURE_CLIENT_SECRET": c["client_secret"],
		}

	def test_mount_t_fuse_databoxfs(self):
		"""mount(8) runs its helpers without PATH, so the program must be
		in a standard directory: inside a private mount namespace, a tmpfs
		over /usr/local/bin holds a link to the databoxfs under test, and
		the whole sequence (mount, cat, umount) runs there, leaving the
		machine as it was."""
		if not shutil.which("mount.fuse3", path="/usr/sbin:/sbin") or not shutil.which("unshare"):
			self.skipTest("mount.fuse3 or unshare is not installed")
		opts = ",".join(["_netdev", "cache_ttl=2", "timeout=20", "cafile=%s" % self.emu.cafile,
				 "connect_to=::127.0.0.1:%d" % self.emu.https_port])
		job = self.world["jobs"][0]
		_, _, sub, _, rg = job["id"].split("/")[:5]
		status = os.path.join(self.mnt, sub, rg, job["name"], "status")
		script = """set -e
mount -t tmpfs none /usr/local/bin
ln -s "$DBX" /usr/local/bin/databoxfs
mount -t fuse.databoxfs databoxfs "$MNT" -o "$OPTS"
i=0; until grep -q " $MNT .* - fuse.databoxfs " /proc/self/mountinfo; do
	i=$((i + 1)); [ $i -lt 200 ] || { echo "not mounted" >&2; exit 1; }; sleep 0.1; done
cat "$STATUS"
umount "$MNT"
"""
		env = dict(self.env, DBX=harness.databoxfs_path(), MNT=self.mnt, OPTS=opts, STATUS=status)
		p = harness.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
				env=env, timeout=90)
		self.assertEqual(p.returncode, 0, p.stderr)
		self.assertEqual(p.stdout, job["properties"]["status"] + "\n")
		self.assertFalse(harness.is_mounted(self.mnt), "the mount leaked out of its namespace")


if __name__ == "__main__":
	harness.main()
