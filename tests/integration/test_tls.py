"""TLS verification is always on: without cafile= the emulator's CA is not
trusted, reads fail, and the emulator never receives an ARM request. The
same mount with cafile= works (so the failure is the CA, nothing else)."""

import unittest

import harness


class Tls(unittest.TestCase):
	@classmethod
	def setUpClass(cls):
		cls.world = harness.gen_world(orders=3, subscriptions=1, resource_groups=1, seed=19)
		cls.emu = harness.Emulator(cls.world).start()

	@classmethod
	def tearDownClass(cls):
		cls.emu.stop()

	def test_without_cafile_nothing_reaches_arm(self):
		self.emu.reset_counters()
		mnt = harness.Mount(self.emu, cafile=None, timeout=5).start()
		try:
			sub, rg, name = harness.split_job_id(self.world["jobs"][0]["id"])
			p = harness.run(["ls", mnt.path], timeout=30)
			harness.log("ls without cafile: rc %d, %s" % (p.returncode, p.stderr.strip()))
			self.assertNotEqual(p.returncode, 0, "ls succeeded against an untrusted CA: %r" % p.stdout)
			p = harness.run(["cat", mnt.p(sub, rg, name, "status")], timeout=30)
			self.assertNotEqual(p.returncode, 0, "cat succeeded against an untrusted CA")
		finally:
			mnt.stop()
		c = self.emu.counters()
		harness.log("emulator counters: %r" % c["by_service"])
		self.assertEqual(c["by_service"].get("arm", 0), 0, "ARM saw requests: %r" % c["by_path"])
		self.assertEqual(c["by_service"].get("entra", 0), 0, "the secret went to an untrusted server")

	def test_with_cafile_works(self):
		mnt = harness.Mount(self.emu, timeout=10).start()
		try:
			p = harness.run(["ls", mnt.path], timeout=30)
			self.assertEqual(p.returncode, 0, p.stderr)
			self.assertEqual(p.stdout.split(), [s["subscriptionId"] for s in self.world["subscriptions"]])
		finally:
			mnt.stop()


if __name__ == "__main__":
	harness.main()
