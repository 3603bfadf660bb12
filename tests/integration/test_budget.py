"""The mount keeps to ARM's request budget by itself: against an emulator
that enforces ARM's throttling (250 reads in a burst per principal and
subscription, then 25 a second), a tar that needs 300 list pages of one
subscription draws no 429, and still reads every order. When the service
has less left than the mount's own budget assumes (other tools spent it),
its x-ms-ratelimit-remaining headers slow the mount down in time."""

import time
import unittest

import harness

ORDERS = 300


class Budget(harness.Cleanup, unittest.TestCase):
	def test_tar_past_the_burst_draws_no_429(self):
		self.tar_without_429({})  # ARM's documented buckets

	def test_headers_slow_the_mount_before_a_429(self):
		self.tar_without_429({"reads": 100})  # 150 of the burst spent elsewhere

	def tar_without_429(self, throttle):
		world = harness.gen_world(orders=ORDERS, subscriptions=1, resource_groups=1, seed=5,
					  page_size=1)
		world["throttle"] = throttle
		emu = self.track(harness.Emulator(world, page_size=1).start())
		mnt = self.track(harness.Mount(emu, cache_ttl=60, timeout=60).start())
		emu.reset_log()
		emu.reset_counters()
		t0 = time.monotonic()
		p = harness.run(["bash", "-o", "pipefail", "-c", 'tar -cf - -C "$1" . | tar -tf - | wc -l',
				 "tar", mnt.path], timeout=120)
		took = time.monotonic() - t0
		self.assertEqual(p.returncode, 0, p.stderr)
		arm = emu.counters()["by_service"].get("arm", 0)
		throttled = [r for r in emu.requests() if r["service"] == "arm" and r["status"] == 429]
		harness.log("tar: %d ARM requests in %.1f s, %d answered 429" % (arm, took, len(throttled)))
		self.assertGreater(arm, 250, "the tar must need more reads than ARM's burst")
		self.assertEqual(throttled, [], "the mount overran ARM's read budget")
		jobs = harness.run(["find", mnt.path, "-name", "status"], timeout=60).stdout.split()
		self.assertEqual(len(jobs), ORDERS)


if __name__ == "__main__":
	harness.main()
