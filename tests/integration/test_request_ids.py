"""Every request the mount sends carries its own x-ms-client-request-id, a
uuid4, so one failing call can be found in the service's logs."""

import harness


class RequestIds(harness.MountedWorld):
	WORLD = {"orders": 8, "subscriptions": 2, "resource_groups": 2, "seed": 23}
	MOUNT = {"cache_ttl": 0}

	def test_distinct_uuid4_per_request(self):
		# Walk the tree twice with no cache, so requests repeat.
		for _ in range(2):
			for job in self.world["jobs"]:
				sub, rg, name = harness.split_job_id(job["id"])
				for f in ("status", "encryption.json"):
					harness.cat(self, self.mnt.p(sub, rg, name, f))
		reqs = [r for r in self.emu.requests() if r.get("host") and "admin" not in str(r.get("service", ""))]
		self.assertGreater(len(reqs), len(self.world["jobs"]), "too few requests logged")
		ids = []
		for r in reqs:
			rid = r.get("client_request_id")
			where = "%s %s%s" % (r.get("method"), r.get("host"), r.get("path"))
			self.assertTrue(rid, "%s: no x-ms-client-request-id" % where)
			self.assertRegex(rid, harness.UUID4_RE, where)
			ids.append(rid)
		dup = sorted({i for i in ids if ids.count(i) > 1})
		self.assertEqual(dup, [], "request ids reused")
		harness.log("%d requests, %d distinct uuid4 request ids" % (len(reqs), len(set(ids))))


if __name__ == "__main__":
	harness.main()
