"""Writers admitted at open, through a real mount with timeout=10 and 300 ms
of emulator latency on every request (docs/formats.md, "Writes", one writer
at a time). Sixteen threads each open(O_TRUNC) + write("URL\\n") + close one
key_url, alternating two valid key URLs: every one of those syscalls returns
within timeout + 2 s; each writer either succeeds or fails with ETIMEDOUT
from open (its turn did not come in time: nothing was sent, and errors says
the order was busy) or an errno of the table; the order the emulator stores
ends with the value of the last successful write, and key_url shows it.
While writers queue, readers of the same order are never held: cat of
key_url and status answers in a fraction of the timeout. A write that ran
into the timeout after ARM took its PATCH ("may still land") leaves no
block in errors once a read shows the change."""

import errno
import os
import threading
import time

import harness
import oracle
import test_write_concurrency
import writes

N = 16
TIMEOUT_S = 10
SLACK_S = 2
LATENCY_MS = 300
# The errnos of docs/formats.md, "errno".
TABLE = {errno.EINVAL, errno.EACCES, errno.ENOENT, errno.EBUSY, errno.EAGAIN, errno.ETIMEDOUT,
	 errno.EHOSTUNREACH, errno.EIO, errno.EINTR}


def timed(rec, op, fn, *args):
	"""fn(*args), its duration and errno (0: success) appended to rec."""
	t0 = time.monotonic()
	try:
		r = fn(*args)
		rec.append((op, time.monotonic() - t0, 0, t0))
		return r
	except OSError as e:
		rec.append((op, time.monotonic() - t0, e.errno, t0))
		raise


def writer(path, value, start, rec):
	"""open(O_WRONLY | O_TRUNC) + write(value + "\n") + close, each syscall timed into rec."""
	start.wait(30)
	try:
		fd = timed(rec, "open", os.open, path, os.O_WRONLY | os.O_TRUNC)
	except OSError:
		return
	try:
		timed(rec, "write", os.write, fd, (value + "\n").encode())
	except OSError:
		pass
	finally:
		try:
			timed(rec, "close", os.close, fd)
		except OSError:
			pass


class Admission(writes.WriteWorld):

	# The default cache_ttl: with 0, every stat and every open's permission check is a GET,
	# which the kernel makes before the open reaches the mount (see docs/formats.md, "Writes").
	MOUNT = {"cache_ttl": 2, "timeout": TIMEOUT_S, "extra": ("lro_poll=0.05",)}

	def run_writers(self, path, values, read_paths=()):
		"""values written to path by one thread each, all started at once;
		meanwhile one reader reads read_paths in turn. Returns the writers'
		timed syscalls and the reads' durations."""
		start = threading.Barrier(len(values) + 1)
		recs = [[] for _ in values]
		reads = []
		done = threading.Event()

		def reader():
			while not done.is_set():
				for rp in read_paths:
					t0 = time.monotonic()
					writes.read(rp)
					reads.append(time.monotonic() - t0)
					time.sleep(0.05)

		threads = [threading.Thread(target=writer, args=(path, v, start, r), daemon=True)
			   for v, r in zip(values, recs)]
		for t in threads:
			t.start()
		start.wait(30)
		rt = threading.Thread(target=reader, daemon=True)
		rt.start()
		for t in threads:
			# Three syscalls of at most timeout + slack each.
			t.join(3 * (TIMEOUT_S + SLACK_S) + 10)
			self.assertFalse(t.is_alive(), "a writer is stuck in the mount")
		done.set()
		rt.join(TIMEOUT_S + SLACK_S + 10)
		self.assertFalse(rt.is_alive(), "the reader is stuck in the mount")
		return recs, reads

	def test_sixteen_writers_one_key_url(self):
		sub, rg, name, d = self.new_order("cm-system")
		urls = [self.key_url("dbx-key-3072"), self.key_url("dbx-key-2048")]
		path = os.path.join(d, "key_url")
		self.emu.admin("POST", "/admin/latency", {"ms": LATENCY_MS})
		# The path known to the mount, as after any ls: the writers' time is their own.
		writes.read(path)
		self.emu.reset_log()
		values = [urls[i % 2] for i in range(N)]
		recs, reads = self.run_writers(path, values,
					       [path, os.path.join(d, "status"), os.path.join(d, "errors")])
		self.emu.admin("POST", "/admin/latency", {"ms": 0})

		slowest = max((dt, op) for rec in recs for op, dt, _, _ in rec)
		harness.log("16 writers on one key_url: slowest syscall %.2fs (%s); slowest of %d reads "
			    "meanwhile %.2fs; %s" %
			    (slowest[0], slowest[1], len(reads), max(reads),
			     ", ".join("%s:%s" % (op, errno.errorcode.get(e, e) if e else "ok")
				       for rec in recs for op, _, e, _ in rec)))
		# Readers never wait for the writers' turns: one GET (300 ms) and change.
		self.assertTrue(reads)
		self.assertLess(max(reads), TIMEOUT_S / 2, "a reader waited behind the writers")
		ok, failed = [], []
		busy = 0
		for value, rec in zip(values, recs):
			for op, dt, e, _ in rec:
				self.assertLess(dt, TIMEOUT_S + SLACK_S, "%s took %.2fs" % (op, dt))
				self.assertTrue(e == 0 or e in TABLE, "%s: %s" % (op, os.strerror(e)))
			ops = [(op, e) for op, _, e, _ in rec]
			if ops[0] == ("open", errno.ETIMEDOUT):
				busy += 1
				self.assertEqual(len(ops), 1, ops)
				continue
			self.assertEqual(ops[0], ("open", 0), ops)
			self.assertEqual([op for op, _ in ops], ["open", "write", "close"], ops)
			# When the write(2) ended: writers are admitted one at a time.
			write = [r for r in rec if r[0] == "write"][0]
			if ops[1][1] == 0 and ops[2][1] == 0:
				ok.append((write[3] + write[1], value))
			else:
				failed.append((write[3] + write[1], value))
		self.assertTrue(ok, "no write succeeded")
		harness.log("%d writes succeeded, %d failed, %d opens timed out waiting for their turn" %
			    (len(ok), len(failed), busy))

		ok.sort()
		stored = self.kek_url_of(sub, rg, name)
		# The last successful write, unless a write after it failed in a way that may
		# still have landed (none does without faults; the log above says).
		may_hold = {ok[-1][1]} | {v for t, v in failed if t > ok[-1][0]}
		self.assertIn(stored, may_hold, "the order does not hold the last successful write")
		self.assertEqual(writes.read(path).strip(), stored)
		# Every PATCH carried one of the two values, and they never overlapped.
		reqs = self.emu.requests()
		ps = writes.patches(reqs)
		self.assertGreaterEqual(len(ps), 1)
		self.assertEqual(test_write_concurrency.overlaps(reqs), 0)
		for p in ps:
			self.assertIn(writes.body_of(p)["properties"]["details"]["keyEncryptionKey"]["kekUrl"],
				      urls)
		if busy:
			blocks = [b for b in oracle.parse_errors(writes.read(os.path.join(d, "errors")))
				  if b.get("source") == "last-write"]
			# The last event may be a success that cleared it; else it says why.
			for b in blocks:
				self.assertEqual(b.get("code"), "Timeout", b)

	def test_open_timeout_says_busy_and_sends_nothing(self):
		"""A writer that holds its turn (an open descriptor) makes the next
		writer's open wait the whole timeout and fail ETIMEDOUT, with nothing
		sent and errors saying the order was busy with another write; a reader
		meanwhile is not held. Closing the first descriptor frees the turn."""
		sub, rg, name, d = self.new_order("cm-system")
		path = os.path.join(d, "key_url")
		before = self.job(sub, rg, name)
		holder = os.open(path, os.O_WRONLY)
		try:
			self.emu.reset_log()
			result = {}

			def second():
				t0 = time.monotonic()
				try:
					fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
					os.close(fd)
					result["errno"] = 0
				except OSError as e:
					result["errno"] = e.errno
				result["took"] = time.monotonic() - t0

			t = threading.Thread(target=second, daemon=True)
			t.start()
			time.sleep(1)
			# Readers go on while the second writer waits.
			t0 = time.monotonic()
			for f in ("key_url", "status", "errors"):
				writes.read(os.path.join(d, f))
			self.assertLess(time.monotonic() - t0, TIMEOUT_S / 2, "a reader waited for the writers")
			t.join(TIMEOUT_S + SLACK_S + 10)
			self.assertFalse(t.is_alive())
			self.assertEqual(result["errno"], errno.ETIMEDOUT, result)
			self.assertGreaterEqual(result["took"], TIMEOUT_S - 0.5, result)
			self.assertLess(result["took"], TIMEOUT_S + SLACK_S, result)
			self.assertEqual(writes.patches(self.emu.requests()), [])
			self.assert_unchanged(before, sub, rg, name)
			text = writes.read(os.path.join(d, "errors"))
			b = [x for x in oracle.parse_errors(text) if x.get("source") == "last-write"]
			self.assertEqual(len(b), 1, text)
			self.assertEqual(b[0]["code"], "Timeout", b)
			self.assertIn("busy with another write", b[0]["message"], b)
		finally:
			os.close(holder)
		# The turn is free again: the next write goes through and clears the block.
		url = self.key_url("dbx-key-2048")
		p = writes.echo_to(path, url, timeout=TIMEOUT_S + SLACK_S)
		self.assertEqual(p.returncode, 0, p.stderr)
		self.assertEqual(self.kek_url_of(sub, rg, name), url)
		self.assert_no_last_write(d)

	def test_may_still_land_cleared_by_a_read_that_shows_it(self):
		"""ARM takes the PATCH (the emulator applies it at once) but its
		operation answers too slowly: ETIMEDOUT, "may still land". A read of
		the order afterwards shows the change, so errors keeps no last-write
		block saying the write may have failed."""
		sub, rg, name, d = self.new_order("cm-system")
		url = self.key_url("dbx-key-2048")
		self.assertNotEqual(self.kek_url_of(sub, rg, name), url)
		self.emu.fault(service="arm", method="GET", path_prefix="/subscriptions/" + sub +
			       "/providers/Microsoft.DataBox/locations/", latency_ms=(TIMEOUT_S + 3) * 1000)
		self.emu.reset_log()
		t0 = time.monotonic()
		p = writes.echo_to(os.path.join(d, "key_url"), url, timeout=TIMEOUT_S + SLACK_S + 5)
		took = time.monotonic() - t0
		self.emu.clear_faults()
		self.assertLess(took, TIMEOUT_S + SLACK_S)
		self.assertEqual(len(writes.patches(self.emu.requests())), 1)
		self.assertEqual(self.kek_url_of(sub, rg, name), url)
		harness.log("write with a slow operation: exit %d after %.2fs: %s" %
			    (p.returncode, took, p.stderr.strip()))
		if p.returncode != 0:
			self.assertIn("Connection timed out", p.stderr)
		# The order's state is older than cache_ttl: this read asks ARM, sees the key, and
		# the block goes.
		self.assertEqual(writes.read(os.path.join(d, "key_url")).strip(), url)
		self.assert_no_last_write(d)


if __name__ == "__main__":
	writes.main()
