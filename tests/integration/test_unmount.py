"""fusermount3 -u is a clean exit: it returns 0, databoxfs exits 0 within
5 s, and nothing of the mount is left in /proc/self/mountinfo."""

import unittest

import harness


class Unmount(unittest.TestCase):
	def test_clean_unmount(self):
		world = harness.gen_world(orders=3, subscriptions=1, resource_groups=1, seed=31)
		emu = harness.Emulator(world).start()
		try:
			mnt = harness.Mount(emu).start()
			try:
				sub, rg, name = harness.split_job_id(world["jobs"][0]["id"])
				harness.cat(self, mnt.p(sub, rg, name, "encryption.json"))
				p = harness.run(["fusermount3", "-u", mnt.path], timeout=15)
				self.assertEqual(p.returncode, 0, p.stderr)
				self.assertEqual(mnt.wait_exit(5), 0, "databoxfs did not exit 0 within 5 s: %s" %
						 mnt.stderr()[-2000:])
				self.assertFalse(harness.is_mounted(mnt.path), "still in /proc/self/mountinfo")
			finally:
				mnt.stop()
		finally:
			emu.stop()


if __name__ == "__main__":
	harness.main()
