"""Every file of every order, read with cat, equals the independent oracle;
ls of every level lists exactly the world's subscriptions, resource groups
and orders."""

import collections
import os

import harness
import oracle


class Oracle(harness.MountedWorld):
	WORLD = {"orders": 40, "subscriptions": 2, "resource_groups": 3, "seed": 7}
	MOUNT = {"cache_ttl": 30}

	def expected_tree(self):
		tree = collections.defaultdict(lambda: collections.defaultdict(dict))
		for job in self.world["jobs"]:
			sub, rg, name = harness.split_job_id(job["id"])
			tree[sub][rg][name] = job
		return tree

	def ls(self, *parts):
		p = harness.run(["ls", "-1", self.mnt.p(*parts)], timeout=60)
		self.assertEqual(p.returncode, 0, "ls %s: %s" % (parts, p.stderr))
		return sorted(p.stdout.split())

	def test_listings(self):
		tree = self.expected_tree()
		subs = sorted(s["subscriptionId"] for s in self.world["subscriptions"])
		self.assertEqual(self.ls(), subs)
		for sub in subs:
			self.assertEqual(self.ls(sub), sorted(tree[sub]), sub)
			for rg in tree[sub]:
				self.assertEqual(self.ls(sub, rg), sorted(tree[sub][rg]), "%s/%s" % (sub, rg))
				for name in tree[sub][rg]:
					self.assertEqual(self.ls(sub, rg, name), sorted(oracle.FILES))

	def test_every_file(self):
		n_files = n_errors = n_cmk = n_uai = 0
		for job in self.world["jobs"]:
			sub, rg, name = harness.split_job_id(job["id"])
			want = oracle.expected_files(job)
			for f in oracle.FILES:
				path = self.mnt.p(sub, rg, name, f)
				p = harness.cat(self, path)
				where = "%s/%s/%s/%s" % (sub, rg, name, f)
				if f == "errors":
					oracle.check_errors(self, job, p, where)
					n_errors += bool(p)
				else:
					self.assertEqual(p, want[f], where)
				n_files += 1
			n_cmk += want["encryption_type"] == b"CustomerManaged\n"
			n_uai += want["identity"].startswith(b"/subscriptions/")
		harness.log("checked %d files of %d orders (%d with errors, %d CMK, %d UAI)" %
			    (n_files, len(self.world["jobs"]), n_errors, n_cmk, n_uai))
		# The world must exercise the interesting cases, or this test proves little.
		self.assertGreater(n_errors, 0)
		self.assertGreater(n_cmk, 0)


if __name__ == "__main__":
	harness.main()
