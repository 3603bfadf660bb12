"""Directory link counts (st_nlink), as on a local disk: 2 plus the number
of subdirectories (subscriptions under the root, resource groups under a
subscription, orders under a resource group; an order directory has
none) once the mount has listed the directory, 1 before it has, which
tells find(1) not to rely on the count. find(1), which uses the count to
skip the stat of leaves, must find every file of the tree."""

import os

import harness
import oracle


class Links(harness.MountedWorld):
	WORLD = {"orders": 7, "subscriptions": 2, "resource_groups": 2, "seed": 43}

	def test_counts_after_a_listing(self):
		tree = {}
		for d, subdirs, files in os.walk(self.mnt.path):
			tree[d] = (len(subdirs), len(files))
		for d, (ndirs, nfiles) in tree.items():
			links = os.stat(d).st_nlink
			self.assertEqual(links, 2 + ndirs, "%s: st_nlink %d with %d subdirectories" % (
				os.path.relpath(d, self.mnt.path), links, ndirs))
		orders = [d for d, (ndirs, nfiles) in tree.items() if nfiles]
		self.assertEqual(len(orders), len(self.world["jobs"]))

	def test_find_sees_every_file(self):
		p = harness.run(["find", self.mnt.path, "-type", "f"], timeout=60)
		self.assertEqual(p.returncode, 0, p.stderr)
		found = sorted(p.stdout.split())
		self.assertEqual(len(found), len(self.world["jobs"]) * len(oracle.FILES), found[:20])


if __name__ == "__main__":
	harness.main()
