"""Load (issue 9): 16 readers and 4 writers on one mount over 500 orders for
60 s, with transient faults injected all along (a 503 and a 429 with
Retry-After now and then, each for one request: the retry policy must
absorb them).

Asserts: no read or write fails (the injected faults are all retryable
within timeout, so none may surface); every read of an order nobody writes
shows exactly what the emulator holds (oracle.py); every successful write
is in the emulator's stored order when it returns; at the end each written
order holds its writer's last value and the mount shows it; the mount's
resident memory (VmRSS in /proc/PID/status) grows less than 5 % over the
second half of the run. Prints the figures (reads, writes, requests, RSS).
"""

import os
import random
import threading
import time

import harness
import oracle
import writes

DURATION = 60
READERS = 16
WRITERS = 4
ORDERS = 500
RSS_GROWTH = 0.05


def rss_kib(pid):
	with open("/proc/%d/status" % pid) as f:
		for line in f:
			if line.startswith("VmRSS:"):
				return int(line.split()[1])
	raise AssertionError("no VmRSS for %d" % pid)


class Load(writes.WriteWorld):
	WORLD = {"orders": ORDERS, "demo": True}
	MOUNT = {"cache_ttl": 2, "timeout": 30, "extra": ("lro_poll=0.05",)}

	def test_readers_and_writers(self):
		rnd = random.Random(9)
		writer_orders = [self.new_order("cm-system") for _ in range(WRITERS)]
		urls = [self.key_url("dbx-key-2048"), self.key_url("dbx-key-3072")]
		read_jobs = list(self.world["jobs"])
		expect = {j["id"]: oracle.expected_files(j) for j in read_jobs}
		stop = threading.Event()
		lock = threading.Lock()
		stats = {"reads": 0, "lists": 0, "writes": 0, "slowest_read": 0.0, "slowest_write": 0.0}
		problems = []
		last_value = {}

		def problem(msg):
			with lock:
				if len(problems) < 50:
					problems.append(msg)

		def reader(seed):
			r = random.Random(seed)
			while not stop.is_set():
				job = r.choice(read_jobs)
				sub, rg, name = harness.split_job_id(job["id"])
				t0 = time.monotonic()
				try:
					if r.random() < 0.05:
						os.listdir(self.mnt.p(sub, rg))
						kind = "lists"
					else:
						f = r.choice([x for x in oracle.FILES if x != "errors"])
						with open(self.mnt.p(sub, rg, name, f), "rb") as fh:
							data = fh.read()
						if data != expect[job["id"]][f]:
							problem("%s/%s read %r, the order holds %r" % (
								name, f, data, expect[job["id"]][f]))
						kind = "reads"
				except OSError as e:
					problem("reading %s: %s" % (name, e))
					continue
				took = time.monotonic() - t0
				with lock:
					stats[kind] += 1
					stats["slowest_read"] = max(stats["slowest_read"], took)

		def writer(i):
			sub, rg, name, d = writer_orders[i]
			n = 0
			while not stop.is_set():
				url = urls[n % 2]
				n += 1
				t0 = time.monotonic()
				try:
					fd = os.open(os.path.join(d, "key_url"), os.O_WRONLY | os.O_TRUNC)
					try:
						os.write(fd, (url + "\n").encode())
					finally:
						os.close(fd)
				except OSError as e:
					problem("writing %s: %s" % (name, e))
					continue
				took = time.monotonic() - t0
				stored = self.kek_url_of(sub, rg, name)
				if stored != url:
					problem("%s: the write of %s succeeded, the order holds %s" % (name, url, stored))
				last_value[name] = url
				with lock:
					stats["writes"] += 1
					stats["slowest_write"] = max(stats["slowest_write"], took)

		def injector():
			"""One retryable fault every second: a 503, then a 429 with Retry-After."""
			k = 0
			while not stop.wait(1.0):
				k += 1
				if k % 2:
					self.emu.fault(service="arm", method="GET", status=503, count=1)
				else:
					self.emu.fault(service="arm", status=429, retry_after="1", count=1)

		pid = self.mnt.proc.pid
		self.emu.reset_log()
		threads = [threading.Thread(target=reader, args=(rnd.random(),), daemon=True)
			   for _ in range(READERS)]
		threads += [threading.Thread(target=writer, args=(i,), daemon=True) for i in range(WRITERS)]
		threads.append(threading.Thread(target=injector, daemon=True))
		rss = []
		t0 = time.monotonic()
		for t in threads:
			t.start()
		while time.monotonic() - t0 < DURATION:
			rss.append((time.monotonic() - t0, rss_kib(pid)))
			time.sleep(1)
			self.assertIsNone(self.mnt.proc.poll(), "the mount died under load")
		stop.set()
		for t in threads:
			t.join(60)
		self.assertFalse([t for t in threads if t.is_alive()], "a worker still hangs 60 s after the end")
		rules = self.emu.admin("GET", "/admin/faults")
		injected = sum(1 for r in rules if r["count"] == 0)
		self.emu.clear_faults()
		counters = self.emu.counters()

		mid = [kib for t, kib in rss if t >= DURATION / 2]
		rss_mid, rss_end = mid[0], mid[-1]
		growth = (rss_end - rss_mid) / rss_mid
		samples = ", ".join("%d s %d" % (t, k) for t, k in rss if int(t) % 10 == 0)
		harness.log("load: %d s, %d readers, %d writers, %d orders: %d reads, %d listings, %d writes "
			    "(slowest read %.2fs, write %.2fs); %d ARM, %d Key Vault requests, %d injected "
			    "faults answered; VmRSS %d KiB at %d s, %d KiB at the end (%+.1f %%), peak %d KiB "
			    "(KiB by time: %s)" % (
				    DURATION, READERS, WRITERS, len(read_jobs), stats["reads"], stats["lists"],
				    stats["writes"], stats["slowest_read"], stats["slowest_write"],
				    counters["by_service"].get("arm", 0), counters["by_service"].get("keyvault", 0),
				    injected, rss_mid, DURATION // 2, rss_end, 100 * growth,
				    max(k for _, k in rss), samples))
		self.assertEqual(problems, [], "errors beyond the injected faults")
		self.assertGreater(stats["reads"], 100 * READERS // 16, "the readers barely ran")
		self.assertGreaterEqual(stats["writes"], WRITERS, "the writers barely ran")
		self.assertGreater(injected, DURATION // 2, "the faults were not injected")
		# every written order ends with its writer's last value, shown by the mount
		for sub, rg, name, d in writer_orders:
			job = self.job(sub, rg, name)
			self.assertEqual(oracle.values(job)["key_url"], last_value.get(name), name)
			self.assertEqual(harness.cat(self, os.path.join(d, "key_url")),
					 oracle.expected_files(job)["key_url"], name)
		self.assertLess(growth, RSS_GROWTH, "VmRSS grew %.1f %% over the second half" % (100 * growth))


if __name__ == "__main__":
	harness.main()
