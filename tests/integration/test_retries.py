"""Throttling and server errors are retried transparently: a 429 with
Retry-After: 1 on the subscription listing and two 503s on a job GET cost a
retry each, and ls/cat still succeed."""

import time

import harness

SUB_LIST = "/subscriptions"


class Retries(harness.MountedWorld):
	WORLD = {"orders": 6, "subscriptions": 2, "resource_groups": 2, "seed": 13}
	MOUNT = {"cache_ttl": 1, "timeout": 30}

	def tearDown(self):
		self.emu.clear_faults()
		super().tearDown()

	def test_429_retry_after_on_subscription_list(self):
		time.sleep(1.2)  # whatever the mount listed so far is now stale
		self.emu.reset_counters()
		self.emu.fault(service="arm", method="GET", path_prefix=SUB_LIST, status=429,
			       retry_after="1", count=1)
		t0 = time.monotonic()
		p = harness.run(["ls", self.mnt.path], timeout=60)
		took = time.monotonic() - t0
		self.assertEqual(p.returncode, 0, p.stderr)
		subs = sorted(s["subscriptionId"] for s in self.world["subscriptions"])
		self.assertEqual(sorted(p.stdout.split()), subs)
		n = self.emu.path_count("GET", SUB_LIST)
		harness.log("ls after a 429: %.2fs, %d subscription-list requests" % (took, n))
		self.assertEqual(n, 2, "one throttled request and one retry: %r" % self.emu.counters())
		self.assertGreaterEqual(took, 0.9, "Retry-After: 1 was not honoured")

	def order_get_path(self, sub, rg, name):
		"""The path the mount GETs for one order, as the emulator saw it
		(ARM ids may spell resourcegroups in either case)."""
		for key in self.emu.counters()["by_path"]:
			method, _, hostpath = key.partition(" ")
			path = hostpath[hostpath.find("/"):]
			if method == "GET" and path.lower().endswith("/jobs/" + name.lower()):
				return path
		return None

	def test_503_twice_on_job_get(self):
		job = self.world["jobs"][0]
		sub, rg, name = harness.split_job_id(job["id"])
		status = self.mnt.p(sub, rg, name, "status")
		want = (job["properties"]["status"] + "\n").encode()
		self.assertEqual(harness.cat(self, status), want)
		# Learn the path of a fresh single-order GET without faults first.
		time.sleep(1.2)  # past cache_ttl: the next open fetches the order again
		self.emu.reset_counters()
		self.assertEqual(harness.cat(self, status), want)
		path = self.order_get_path(sub, rg, name)
		self.assertIsNotNone(path, "a stale open sent no GET of the order: %r" % self.emu.counters())
		time.sleep(1.2)
		self.emu.reset_counters()
		self.emu.fault(service="arm", method="GET", path_prefix=path, status=503, count=2)
		self.assertEqual(harness.cat(self, status), want)
		n = self.emu.path_count("GET", path)
		harness.log("cat after two 503s on %s: %d GETs of the order" % (path, n))
		self.assertEqual(n, 3, "two 503s and one success: %r" % self.emu.counters())


if __name__ == "__main__":
	harness.main()
