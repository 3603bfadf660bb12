"""No thundering herd (issue 8): 16 readers open random files of random
orders among 1,000 (pages of 100) for DURATION seconds at cache_ttl=1.

Once the subscriptions are listed, the stale orders of a walk are
refreshed by reading again the page that listed them, one reader asking
and the others waiting for that answer, so ARM sees at most one request
for each page of the listing per cache_ttl (docs/architecture.md,
"Freshness"): no resource group re-list (nobody reads a resource group
directory), no GET per order, and every read succeeds and shows what
the emulator holds (status, which no one changes). The old code sent a
GET per stale order read (486 in 5 s). long_herd.py runs the same for
30 s.
"""

import math
import random
import threading
import time

import harness

ORDERS = 1000
PAGE = 100
READERS = 16
TTL = 1


class Herd(harness.MountedWorld):
	WORLD = {"orders": ORDERS, "subscriptions": 2, "resource_groups": 3, "seed": 17,
		 "page_size": PAGE}
	EMULATOR = {"page_size": PAGE}
	MOUNT = {"cache_ttl": TTL, "timeout": 60}
	DURATION = 5

	def pages(self):
		"""The pages of the subscriptions' listings, summed."""
		per = {}
		for j in self.world["jobs"]:
			sub = harness.split_job_id(j["id"])[0]
			per[sub] = per.get(sub, 0) + 1
		return sum(-(-n // PAGE) for n in per.values())

	def test_readers_share_refreshes(self):
		jobs = list(self.world["jobs"])
		files = ["status", "encryption.json", "key_url", "errors"]
		for s in self.world["subscriptions"]:
			harness.run(["ls", self.mnt.p(s["subscriptionId"])], timeout=60, check=True)
		stop = threading.Event()
		lock = threading.Lock()
		problems, reads = [], [0]

		def reader(seed):
			rnd = random.Random(seed)
			while not stop.is_set():
				job = rnd.choice(jobs)
				sub, rg, name = harness.split_job_id(job["id"])
				f = rnd.choice(files)
				try:
					with open(self.mnt.p(sub, rg, name, f), "rb") as fh:
						data = fh.read()
				except OSError as e:
					with lock:
						problems.append("%s/%s: %s" % (name, f, e))
					continue
				if f == "status" and data != (job["properties"]["status"] + "\n").encode():
					with lock:
						problems.append("%s/status reads %r" % (name, data))
				with lock:
					reads[0] += 1

		self.emu.reset_counters()
		t0 = time.monotonic()
		threads = [threading.Thread(target=reader, args=(i,)) for i in range(READERS)]
		for t in threads:
			t.start()
		time.sleep(self.DURATION)
		stop.set()
		for t in threads:
			t.join(60)
		elapsed = time.monotonic() - t0
		c = self.emu.counters()
		gets = sum(n for k, n in c["by_path"].items() if "/jobs/" in k)
		lists = {k: n for k, n in c["by_path"].items() if k.endswith("/jobs")}
		sub_lists = sum(n for k, n in lists.items() if "/resourcegroups/" not in k.lower())
		rg_lists = sum(lists.values()) - sub_lists
		windows = math.ceil(elapsed / TTL) + 1
		bound = self.pages() * windows
		harness.log("%d readers, %.1f s: %d reads, %d subscription list pages (bound %d = "
			    "%d pages x %d), %d resource group list pages, %d GETs" %
			    (READERS, elapsed, reads[0], sub_lists, bound, self.pages(), windows,
			     rg_lists, gets))
		self.assertEqual(problems[:10], [])
		self.assertGreater(reads[0], READERS, "the readers hardly read")
		self.assertLessEqual(gets, 2, "stale orders of a walk were fetched one by one")
		self.assertGreater(sub_lists, 0, "past cache_ttl nothing was refreshed: counters broken?")
		self.assertLessEqual(sub_lists, bound)
		self.assertEqual(rg_lists, 0)


if __name__ == "__main__":
	harness.main()
