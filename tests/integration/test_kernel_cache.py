"""The kernel's caches (docs/architecture.md, "Kernel caches"), on a real
mount in both modes: a change made behind the mount (the emulator's admin
API) shows within cache_ttl + 1 s although the kernel holds the old pages
and attributes, even when the new value has the same length and mtime as
the old (only the mount's notice can drop them); every read in between
shows one whole value; a write through the mount is seen at once by the
stat and read that follow, on the written file and its siblings; with
-o cached_ro every write is refused with EROFS and sends nothing."""

import copy
import errno
import os
import time

import harness
import writes

TTL = 1.0
BOUND = TTL + 1.0  # docs/architecture.md: cache_ttl + 1 s, kernel caches included
FETCH = 0.5  # the time to fetch, which the bound does not count (emulator without latency)


def stat_and_read(path):
	st = os.stat(path)
	with open(path, "rb") as f:
		return st.st_size, f.read()


class BehindTheMount:
	"""The staleness bound, for a mount class setting MOUNT."""

	def fresh_order(self, kind="mm-system"):
		"""new_order, once the mount lists it (within the bound: cache_ttl is not 0)."""
		sub, rg, name, d = self.new_order(kind)
		deadline = time.monotonic() + BOUND + FETCH
		while not os.path.isdir(d):
			self.assertLess(time.monotonic(), deadline, "%s never showed" % name)
			time.sleep(0.05)
		return sub, rg, name, d

	def cm_order(self, key):
		"""A customer-managed order holding key (in the subscription's vault)."""
		sub, rg, name, d = self.fresh_order()
		self.put_key(sub, rg, name, key)
		return sub, rg, name, d

	def put_key(self, sub, rg, name, key):
		"""Change the order's key behind the mount, keeping lastModifiedAt."""
		job = copy.deepcopy(self.job(sub, rg, name))
		job["properties"]["details"]["keyEncryptionKey"] = {
			"kekType": "CustomerManaged", "kekUrl": self.key_url(key),
			"kekVaultResourceID": self.vault["id"],
			"identityProperties": {"type": "SystemAssigned"}}
		self.emu.admin("PUT", "/admin/jobs/%s/%s/%s" % (sub, rg, name), job)

	def test_change_behind_the_mount_shows_within_the_bound(self):
		# Two key names of one length: size and mtime stay, only the bytes move.
		old, new = self.key_url("dbx-key-2048") + "\n", self.key_url("dbx-key-3072") + "\n"
		self.assertEqual(len(old), len(new))
		sub, rg, name, d = self.cm_order("dbx-key-2048")
		path = os.path.join(d, "key_url")
		deadline = time.monotonic() + 10
		while stat_and_read(path) != (len(old), old.encode()):
			self.assertLess(time.monotonic(), deadline, "the order never showed its key")
			time.sleep(0.1)
		for _ in range(20):  # the kernel now holds the pages and attributes
			self.assertEqual(stat_and_read(path), (len(old), old.encode()))
		self.put_key(sub, rg, name, "dbx-key-3072")
		changed = time.monotonic()
		seen = set()
		while time.monotonic() < changed + BOUND + FETCH:
			size, data = stat_and_read(path)
			self.assertIn(data, (old.encode(), new.encode()), "a read mixed two values")
			seen.add(data)
			time.sleep(0.02)
		self.assertEqual(stat_and_read(path), (len(new), new.encode()))
		self.assertIn(old.encode(), seen)


class DefaultMode(BehindTheMount, writes.WriteWorld):
	MOUNT = {"cache_ttl": TTL, "timeout": 30, "extra": ("lro_poll=0.05",)}

	def test_write_is_seen_at_once(self):
		sub, rg, name, d = self.fresh_order()
		files = ("encryption_type", "key_url", "key_vault", "encryption.json")
		for _ in range(5):  # warm: the kernel holds every file's pages and size
			before = {f: stat_and_read(os.path.join(d, f)) for f in files}
		for f, (size, data) in before.items():
			self.assertEqual(size, len(data), f)
		self.assertEqual(before["encryption_type"][1], b"MicrosoftManaged\n")
		url = self.key_url("dbx-key-2048")
		p = writes.echo_to(os.path.join(d, "key_url"), url)
		self.assertEqual(p.returncode, 0, p.stderr)
		after = {f: stat_and_read(os.path.join(d, f)) for f in files}
		for f, (size, data) in after.items():
			self.assertEqual(size, len(data), "%s: st_size is another version's" % f)
		self.assertEqual(after["encryption_type"][1], b"CustomerManaged\n")
		self.assertEqual(after["key_url"][1], (url + "\n").encode())
		self.assertEqual(after["key_vault"][1].decode().lower(), self.vault["id"].lower() + "\n")
		self.assertIn(url.encode(), after["encryption.json"][1])

	def test_open_across_a_write_reads_one_whole_value(self):
		sub, rg, name, d = self.fresh_order()
		path = os.path.join(d, "encryption_type")
		with open(path, "rb") as held:
			self.assertEqual(held.read(), b"MicrosoftManaged\n")
			p = writes.echo_to(os.path.join(d, "key_url"), self.key_url("dbx-key-2048"))
			self.assertEqual(p.returncode, 0, p.stderr)
			self.assertEqual(stat_and_read(path)[1], b"CustomerManaged\n")
			# The held open reads again from 0: a whole value, never a cut one.
			held.seek(0)
			self.assertIn(held.read(), (b"MicrosoftManaged\n", b"CustomerManaged\n"))


class CachedRO(BehindTheMount, writes.WriteWorld):
	MOUNT = {"cache_ttl": TTL, "timeout": 30, "extra": ("cached_ro",)}

	def test_writes_are_refused_and_send_nothing(self):
		sub, rg, name, d = self.fresh_order()
		before = self.job(sub, rg, name)
		self.emu.reset_log()
		for f, value in (("key_url", self.key_url("dbx-key-2048")), ("identity", "None"),
				 ("encryption_type", "CustomerManaged")):
			p = writes.echo_to(os.path.join(d, f), value)
			self.assertNotEqual(p.returncode, 0)
			self.assertIn("Read-only file system", p.stderr)
		with self.assertRaises(OSError) as cm:
			os.open(os.path.join(d, "key_url"), os.O_WRONLY)
		self.assertEqual(cm.exception.errno, errno.EROFS)
		with self.assertRaises(OSError) as cm:
			open(os.path.join(d, ".key_url.swp"), "w")
		self.assertEqual(cm.exception.errno, errno.EROFS)
		self.assertEqual(writes.patches(self.emu.requests()), [])
		self.assertEqual(self.job(sub, rg, name), before)
		self.assertEqual(stat_and_read(os.path.join(d, "encryption_type"))[1],
				 b"MicrosoftManaged\n")

	def test_sizes_are_exact(self):
		sub, rg, name, d = self.fresh_order()
		for _ in range(3):
			for f in sorted(os.listdir(d)):
				size, data = stat_and_read(os.path.join(d, f))
				self.assertEqual(size, len(data), f)


if __name__ == "__main__":
	harness.main()
