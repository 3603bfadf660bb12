"""Stopping the mount with a signal: SIGTERM (systemd's stop, kill), SIGINT
(Ctrl-C under -f) and SIGHUP unmount cleanly and exit 0, as fusermount3 -u
does, so systemd does not record a failure; the mount point is free again."""

import signal
import unittest

import harness


class Signals(unittest.TestCase):
	@classmethod
	def setUpClass(cls):
		cls.world = harness.gen_world(orders=2, subscriptions=1, resource_groups=1, seed=41)
		cls.emu = harness.Emulator(cls.world).start()

	@classmethod
	def tearDownClass(cls):
		cls.emu.stop()

	def stop_with(self, sig):
		mnt = harness.Mount(self.emu).start()
		try:
			sub, rg, name = harness.split_job_id(self.world["jobs"][0]["id"])
			harness.cat(self, mnt.p(sub, rg, name, "status"))
			mnt.proc.send_signal(sig)
			code = mnt.wait_exit(20)
			harness.log("%s: exit status %r" % (signal.Signals(sig).name, code))
			self.assertEqual(code, 0, "%s did not end the mount with status 0" %
					 signal.Signals(sig).name)
			self.assertNotIn(mnt.path, harness.mounted_points(), "still mounted")
		finally:
			mnt.stop()

	def test_sigterm(self):
		self.stop_with(signal.SIGTERM)

	def test_sigint(self):
		self.stop_with(signal.SIGINT)

	def test_sighup(self):
		self.stop_with(signal.SIGHUP)


if __name__ == "__main__":
	harness.main()
