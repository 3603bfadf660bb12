"""A cold tar of the whole mount costs O(pages) ARM requests, not O(orders):
250 orders in pages of 20 over 2 subscriptions need at most
ceil(250/20) + 1 (subscription list) + 2 requests."""

import math
import os
import shutil
import tempfile

import harness

ORDERS = 250
PAGE = 20


class Cost(harness.MountedWorld):
	WORLD = {"orders": ORDERS, "subscriptions": 2, "resource_groups": 3, "seed": 11,
		 "page_size": PAGE}
	EMULATOR = {"page_size": PAGE}
	# cache_ttl=30: the bound is about how listings are used, not about the
	# default 2 s TTL expiring in the middle of the run and refetching.
	MOUNT = {"cache_ttl": 30, "timeout": 60}

	def test_cold_tar_costs_pages(self):
		self.emu.reset_counters()
		tmp = tempfile.mkdtemp(prefix="dbx-cost-")
		try:
			archive = os.path.join(tmp, "m.tar")
			# A real file, not /dev/null: GNU tar skips reading file data
			# when the archive is /dev/null.
			p = harness.run(["tar", "-cf", archive, "-C", self.mnt.path, "."], timeout=240)
			self.assertEqual((p.returncode, p.stderr), (0, ""), "tar -c")
			p = harness.run(["tar", "-tf", archive], timeout=60)
			self.assertEqual(len([n for n in p.stdout.splitlines() if n.endswith("/errors")]), ORDERS)
		finally:
			shutil.rmtree(tmp, ignore_errors=True)
		c = self.emu.counters()
		arm = c["by_service"].get("arm", 0)
		bound = math.ceil(ORDERS / PAGE) + 1 + 2
		detail = "\n".join("%5d %s" % (n, k) for k, n in sorted(c["by_path"].items()))
		harness.log("cold tar of %d orders: %d ARM requests (bound %d)\n%s" % (ORDERS, arm, bound, detail))
		self.assertGreater(arm, 0, "the tar sent no ARM request at all: counters broken?")
		self.assertLessEqual(arm, bound)


if __name__ == "__main__":
	harness.main()
