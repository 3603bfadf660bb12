"""What backup tools trust: st_size equals the bytes a read returns (wc -c),
st_mtime is the order's systemData.lastModifiedAt, inode numbers are stable,
modes are 0644 for writable files and 0444 for read-only ones."""

import os
import stat
import time

import harness
import oracle


class Sizes(harness.MountedWorld):
	WORLD = {"orders": 12, "subscriptions": 2, "resource_groups": 2, "seed": 3}
	MOUNT = {"cache_ttl": 1}

	def find(self):
		"""{relative path: (type, size, inode, mode)} from find -printf."""
		p = harness.run(["find", self.mnt.path, "-mindepth", "1", "-printf", "%y %s %i %m %P\n"],
				timeout=120)
		self.assertEqual(p.returncode, 0, p.stderr)
		out = {}
		for line in p.stdout.splitlines():
			typ, size, ino, mode, rel = line.split(" ", 4)
			out[rel] = (typ, int(size), int(ino), int(mode, 8))
		return out

	def test_size_is_wc_c_and_mode(self):
		listing = self.find()
		files = sorted(r for r, v in listing.items() if v[0] == "f")
		self.assertEqual(len(files), len(self.world["jobs"]) * len(oracle.FILES))
		p = harness.run(["wc", "-c"] + [self.mnt.p(r) for r in files], timeout=120)
		self.assertEqual(p.returncode, 0, p.stderr)
		wc = {}
		for line in p.stdout.splitlines():
			n, path = line.strip().split(" ", 1)
			if path != "total":
				wc[os.path.relpath(path, self.mnt.path)] = int(n)
		for r in files:
			self.assertEqual(listing[r][1], wc[r], "%s: find size %d, wc -c %d" % (r, listing[r][1], wc[r]))
			st = os.stat(self.mnt.p(r))
			self.assertEqual(st.st_size, len(harness.cat(self, self.mnt.p(r))), r)
			self.assertEqual(stat.S_IMODE(st.st_mode), oracle.mode_of(os.path.basename(r)), r)
			self.assertEqual(st.st_uid, os.getuid(), r)
		for r, v in listing.items():
			if v[0] != "f":
				self.assertEqual(v[0], "d", r)

	def test_mtime_is_last_modified(self):
		for job in self.world["jobs"]:
			sub, rg, name = harness.split_job_id(job["id"])
			want = oracle.last_modified(job)
			self.assertIsNotNone(want, "world job without systemData")
			for f in oracle.FILES:
				st = os.stat(self.mnt.p(sub, rg, name, f))
				self.assertLess(abs(st.st_mtime - want), 1.0,
						"%s/%s: mtime %s, lastModifiedAt %s" % (name, f, st.st_mtime, want))

	def test_inodes_stable(self):
		first = self.find()
		time.sleep(1.5)  # past cache_ttl=1: the second listing refetches
		second = self.find()
		self.assertEqual(sorted(first), sorted(second))
		for r in first:
			self.assertEqual(first[r][2], second[r][2], "inode of %s changed" % r)
		inodes = [v[2] for v in first.values()]
		self.assertEqual(len(inodes), len(set(inodes)), "two entries share an inode")


if __name__ == "__main__":
	harness.main()
