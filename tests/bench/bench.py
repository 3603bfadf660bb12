"""The numbers behind scripts/bench: databoxfs against its peers, in one run.

Each scenario is measured on databoxfs and on a peer doing the same job in
the same run, against the same emulator: the official Azure SDK for Python
(tests/bench/sdk_peer.py, the script an admin writes) for the fleet jobs,
and tmpfs for a cached read. The SDK talks to the real host names, so the
whole bench runs in private network and mount namespaces (unshare) where
those names resolve to the emulator on 127.0.0.1:443; the mount reaches the
same emulator. Every Azure request is delayed LATENCY_MS. Each figure is
the median of RUNS runs, with min and max beside it; the last columns give
databoxfs / peer, the target from the issue tracker and whether it is met.
Nothing here asserts: scripts/bench prints, scripts/test runs --quick so
the bench cannot rot.

Two scenarios run only in the full run (not --quick), each on a world of
its own in pages of 100: a cold tar of 3,000 orders at the default
cache_ttl (ARM requests against 2 x pages), and scale (ls -lR and tar of
5,000 and 10,000 orders: the FUSE-side time at 10,000 over that at 5,000,
and the mount's RSS growth per order). They have no peer: the figure is
set against its own target.

  bench.py [--quick] [--only NAME[,NAME...]]   (snapshot, keychange, fanout,
                                                 cached_read, tar3000, scale)
"""

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
import harness  # noqa: E402
import emutest  # noqa: E402 - harness put tests/emulator on the path

LATENCY_MS = 20
PEER = os.path.join(HERE, "sdk_peer.py")
HOSTS = ["management.azure.com", "login.microsoftonline.com"]


class Config:
	def __init__(self, quick):
		self.quick = quick
		self.runs = 1 if quick else 3
		self.orders = 100 if quick else 1000
		self.page = 20
		# The key change: the operation completes op_ms after the PATCH,
		# however often it is polled; both sides poll at poll_s.
		self.op_ms = 2000 if quick else 20000
		self.poll_s = 1 if quick else 10
		self.fanout_orders = 4 if quick else 10
		self.fanout_threads = 8
		self.reads = 300 if quick else 3000


def outer(argv):
	"""Re-run this script inside fresh network and mount namespaces."""
	return emutest.in_namespaces(__file__, argv, "bench", 3000)


class Bench:
	def __init__(self, cfg):
		self.cfg = cfg
		self.rows = []
		self.tmp = tempfile.mkdtemp(prefix="dbxbench-")
		self.world = harness.gen_world(orders=cfg.orders, subscriptions=2, resource_groups=3,
					       seed=1, page_size=cfg.page, demo=True)
		hosts = HOSTS + [v["properties"]["vaultUri"].split("/")[2] for v in self.world["vaults"]]
		self.hosts_file = emutest.namespace_hosts(hosts)
		self.emu = emutest.Emulator(harness.emulator_path(), world=self.world, port=443,
					    extra_args=["--admin-port", "0", "--latency-ms", str(LATENCY_MS),
							"--page-size", str(cfg.page)],
					    directory=os.path.join(self.tmp, "emu"), log_file=True)
		self.emu.start()
		c = self.emu.client()
		self.sdk_env = dict(os.environ, AZURE_TENANT_ID=c["tenant_id"], AZURE_CLIENT_ID=c["client_id"],
				    AZURE_CLIENT_SECRET=c["client_secret"], REQUESTS_CA_BUNDLE=self.emu.cafile,
				    PYTHONDONTWRITEBYTECODE="1")
		for k in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
			self.sdk_env.pop(k, None)
		self.subs = [s["subscriptionId"] for s in self.world["subscriptions"]]

	def close(self):
		harness._cleanup_all()
		self.emu.stop()
		shutil.rmtree(self.tmp, ignore_errors=True)
		os.unlink(self.hosts_file)

	def use_world(self, orders, page, subscriptions=2, resource_groups=3):
		"""Swap the emulator for one serving a new world of orders in pages
		of page (the scenarios after the SDK's: the peer's credentials are
		the first world's). The world's list pages, per subscription."""
		self.emu.stop()
		world = harness.gen_world(orders=orders, subscriptions=subscriptions,
					  resource_groups=resource_groups, seed=2, page_size=page)
		self.emu = emutest.Emulator(harness.emulator_path(), world=world, port=443,
					    extra_args=["--admin-port", "0", "--latency-ms", str(LATENCY_MS),
							"--page-size", str(page)],
					    directory=os.path.join(self.tmp, "emu-%d" % orders), log_file=True)
		self.emu.start()
		subs = [s["subscriptionId"] for s in world["subscriptions"]]
		per = [len([j for j in world["jobs"] if j["id"].split("/")[2] == s]) for s in subs]
		return world, subs, sum(-(-k // page) for k in per)

	# ---- measuring ----
	def arm_requests(self):
		return self.emu.counters()["by_service"].get("arm", 0)

	def timed(self, fn):
		"""(wall seconds, ARM requests) of fn()."""
		self.emu.reset_counters()
		t0 = time.monotonic()
		fn()
		return time.monotonic() - t0, self.arm_requests()

	def sdk(self, *args):
		p = subprocess.run(["/usr/bin/python3", PEER] + [str(a) for a in args], env=self.sdk_env,
				   stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=600)
		if p.returncode != 0:
			raise SystemExit("sdk_peer %s failed: %s" % (args[0], p.stderr.decode()[-2000:]))

	def row(self, job, ours, peer, unit, target, met, note=""):
		self.rows.append((job, ours, peer, unit, target, met, note))

	# ---- the scenarios ----
	def pages(self):
		"""The list pages of the world: per subscription, ceil(orders / page)."""
		n = 0
		for s in self.subs:
			k = len([j for j in self.world["jobs"] if j["id"].split("/")[2] == s])
			n += -(-k // self.cfg.page)
		return n

	def cold_tar(self):
		"""((wall, ARM requests), mount) of mounting at the default cache_ttl
		and tarring the whole tree; the caller stops the mount."""
		box = []

		def run():
			box.append(harness.Mount(self.emu, cache_ttl=2, timeout=120).start())
			tar_all(box[0])
		return self.timed(run), box[0]

	def snapshot(self):
		cold, repeat, paused, peer = [], [], [], []
		for _ in range(self.cfg.runs):
			t, mnt = self.cold_tar()
			cold.append(t)
			repeat.append(self.timed(lambda: tar_all(mnt)))
			time.sleep(2.5)  # past cache_ttl: every order is stale
			paused.append(self.timed(lambda: tar_all(mnt)))
			mnt.stop()
			out = os.path.join(self.tmp, "sdk-snapshot")
			peer.append(self.timed(lambda: self.sdk("snapshot", out, *self.subs)))
			shutil.rmtree(out, ignore_errors=True)
		budget = self.pages() + 1 + 2
		c, p = med(cold, 0), med(peer, 0)
		self.row("cold snapshot, %d orders: wall" % self.cfg.orders, spread(cold, 0), spread(peer, 0),
			 "s", "<= 0.5x", c / p <= 0.5)
		self.row("cold snapshot: ARM requests", spread(cold, 1), spread(peer, 1), "req",
			 "<= %d" % budget, med(cold, 1) <= budget)
		self.row("repeat snapshot at once: wall", spread(repeat, 0), spread(cold, 0), "s",
			 "<= 1.2x cold", med(repeat, 0) <= 1.2 * c, "peer: the cold snapshot")
		self.row("repeat snapshot: ARM requests", spread(repeat, 1), spread(cold, 1), "req",
			 "<= cold", med(repeat, 1) <= med(cold, 1), "peer: the cold snapshot")
		self.row("repeat snapshot after cache_ttl: wall", spread(paused, 0), spread(cold, 0), "s",
			 "<= 1.2x cold", med(paused, 0) <= 1.2 * c, "peer: the cold snapshot")
		self.row("repeat after cache_ttl: ARM requests", spread(paused, 1), spread(cold, 1), "req",
			 "<= cold", med(paused, 1) <= med(cold, 1), "peer: the cold snapshot")

	def cm_orders(self, n):
		"""n orders of subscription 0 the key change can target: Microsoft managed,
		with a system identity the vault grants, open for changes."""
		sub = self.subs[0]
		vault = [v for v in self.world["vaults"]
			 if v["id"].split("/")[2] == sub and "nopurge" not in v["name"]][0]
		tenant = self.world["subscriptions"][0]["tenantId"]
		out = []
		for i in range(n):
			tpl = [j for j in self.world["jobs"] if j["id"].split("/")[2] == sub][0]
			_, rg, _ = harness.split_job_id(tpl["id"])
			name = "bench-%02d" % i
			job = dict(tpl, name=name, id="/subscriptions/%s/resourceGroups/%s/providers/"
				   "Microsoft.DataBox/jobs/%s" % (sub, rg, name))
			pid = "00000000-0000-4000-8000-%012d" % (i + 1)
			job["identity"] = {"type": "SystemAssigned", "principalId": pid, "tenantId": tenant}
			props = dict(job["properties"])
			props.pop("error", None)
			details = dict(props["details"])
			details["keyEncryptionKey"] = {"kekType": "MicrosoftManaged"}
			props["details"] = details
			job["properties"] = props
			self.emu.admin("PUT", "/admin/jobs/%s/%s/%s" % (sub, rg, name), job)
			self.emu.admin("POST", "/admin/jobs/%s/%s/%s/advance" % (sub, rg, name),
				       {"status": "AtAzureDC"})
			self.emu.admin("POST", "/admin/vaults/%s/policies" % vault["name"],
				       {"objectId": pid, "tenantId": tenant,
					"permissions": {"keys": ["get", "wrapKey", "unwrapKey"]}})
			out.append((sub, rg, name))
		host = vault["properties"]["vaultUri"].split("/")[2]
		keys = ["https://%s/keys/%s" % (host, k) for k in ("dbx-key-3072", "dbx-key-2048")]
		return out, vault["id"], keys

	def check_keys(self, orders, url):
		"""Every order holds url now, as the emulator stores it: a job that did
		nothing would be no measurement."""
		time.sleep(0.05)
		for sub, rg, name in orders:
			job = self.emu.admin("GET", "/admin/jobs/%s/%s/%s" % (sub, rg, name))
			got = job["properties"]["details"].get("keyEncryptionKey", {}).get("kekUrl")
			if got != url:
				raise SystemExit("bench: %s holds key %s, not %s" % (name, got, url))

	def operations(self, complete_after_ms):
		st, _ = self.emu.admin_status("POST", "/admin/operations",
					      {"complete_after_ms": complete_after_ms})
		return st == 200

	def keychange(self):
		cfg = self.cfg
		if not self.operations(cfg.op_ms):
			self.row("key change", "-", "-", "s", "-", False,
				 "skipped: the emulator has no POST /admin/operations")
			return
		orders, vault_id, keys = self.cm_orders(1)
		sub, rg, name = orders[0]
		mnt = harness.Mount(self.emu, cache_ttl=2, timeout=120,
				    extra=("lro_poll=%s" % cfg.poll_s,)).start()
		ours, peer, n = [], [], 0
		try:
			harness.cat(None, mnt.p(sub, rg, name, "key_url"))  # token and listing warm
			for _ in range(cfg.runs):
				n += 1
				url = keys[n % 2]
				ours.append(self.timed(lambda: echo(mnt.p(sub, rg, name, "key_url"), url)))
				self.check_keys(orders, url)
				n += 1
				url = keys[n % 2]
				peer.append(self.timed(lambda: self.sdk("keychange", sub, rg, name, url, vault_id,
									 cfg.poll_s)))
				self.check_keys(orders, url)
		finally:
			mnt.stop()
			self.operations(None)
		floor = cfg.op_ms / 1000 + LATENCY_MS / 1000
		above = [(w - floor, r) for w, r in ours]
		peer_above = [(w - floor, r) for w, r in peer]
		self.row("key change (op %g s, poll %g s): wall" % (cfg.op_ms / 1000, cfg.poll_s),
			 spread(ours, 0), spread(peer, 0), "s", "-", True)
		self.row("key change: time above the floor", spread(above, 0), spread(peer_above, 0), "s",
			 "<= 1/3x", med(above, 0) <= med(peer_above, 0) / 3)
		self.row("key change: ARM requests", spread(ours, 1), spread(peer, 1), "req", "-", True)

	def fanout(self):
		cfg = self.cfg
		if not self.operations(2000):
			self.row("fan-out", "-", "-", "s", "-", False,
				 "skipped: the emulator has no POST /admin/operations")
			return
		orders, vault_id, keys = self.cm_orders(cfg.fanout_orders)
		mnt = harness.Mount(self.emu, cache_ttl=2, timeout=120, extra=("lro_poll=1",)).start()
		ours, peer = [], []
		try:
			dirs = [mnt.p(*o) for o in orders]
			paths = ["/".join(o) for o in orders]
			for _ in range(cfg.runs):
				# The mount sets one key, the peer the other: each run changes every order.
				ours.append(self.timed(lambda: xargs_echo(dirs, keys[1], cfg.fanout_threads)))
				self.check_keys(orders, keys[1])
				peer.append(self.timed(lambda: self.sdk("fanout", cfg.fanout_threads, 1, keys[0],
									 vault_id, *paths)))
				self.check_keys(orders, keys[0])
		finally:
			mnt.stop()
			self.operations(None)
		self.row("fan-out, %d orders, %d at a time: wall" % (cfg.fanout_orders, cfg.fanout_threads),
			 spread(ours, 0), spread(peer, 0), "s", "<= 1x", med(ours, 0) <= med(peer, 0))

	def cached_read(self):
		"""open+read+close of a cached key_url against tmpfs: the default mount
		(<= 10x), then a -o cached_ro mount, whose opens never reach it (<= 1.5x)."""
		o, p, ours, peer = self.cached_read_p50(())
		self.row("cached open+read+close: p50", spread1(ours), spread1(peer), "us", "<= 10x",
			 o <= 10 * p, "peer: tmpfs")
		self.cached_read_ro()

	def cached_read_ro(self):
		o, p, ours, peer = self.cached_read_p50(("cached_ro",))
		self.row("cached open+read+close, cached_ro: p50", spread1(ours), spread1(peer), "us",
			 "<= 1.5x", o <= 1.5 * p, "peer: tmpfs")

	def cached_read_p50(self, extra):
		"""(our median, tmpfs median, ours, tmpfs): p50 of open+read+close of one
		key_url on a mount with the options extra, runs times each, and of a
		tmpfs copy of it at the same depth (sub/rg/order/key_url: the same path
		walk), read in alternation so both see the same load."""
		sub, rg, name = harness.split_job_id(self.world["jobs"][0]["id"])
		mnt = harness.Mount(self.emu, cache_ttl=30, timeout=120, extra=extra).start()
		tmpfs = os.path.join(self.tmp, "tmpfs")
		os.makedirs(tmpfs, exist_ok=True)
		subprocess.run(["mount", "-t", "tmpfs", "tmpfs", tmpfs], check=True)
		ours, peer = [], []
		try:
			ours_path = mnt.p(sub, rg, name, "key_url")
			os.makedirs(os.path.join(tmpfs, sub, rg, name))
			peer_path = os.path.join(tmpfs, sub, rg, name, "key_url")
			with open(peer_path, "wb") as f:
				f.write(read_once(ours_path))
			for _ in range(self.cfg.runs):
				ours.append(read_p50_us(ours_path, self.cfg.reads))
				peer.append(read_p50_us(peer_path, self.cfg.reads))
		finally:
			mnt.stop()
			subprocess.run(["umount", tmpfs])
		return statistics.median(ours), statistics.median(peer), ours, peer

	def tar3000(self):
		"""A cold tar of 3,000 orders at the default cache_ttl: the walk
		outlasts the TTL, and the refreshes must stay re-lists of pages."""
		_, _, pages = self.use_world(3000, 100)
		runs = []
		for _ in range(self.cfg.runs):
			t, mnt = self.cold_tar()
			runs.append(t)
			mnt.stop()
		self.row("cold tar, 3000 orders, pages of 100, cache_ttl=2: ARM requests", spread(runs, 1),
			 "-", "req", "<= %d" % (2 * pages), med(runs, 1) <= 2 * pages, "2 x %d pages" % pages)
		self.row("cold tar, 3000 orders: wall", spread(runs, 0), "-", "s", "-", True)

	def scale_one(self, orders):
		"""(FUSE-side seconds, RSS bytes per order, requests, pages, wall, mount CPU
		seconds) of ls -lR
		then tar of orders orders at the default cache_ttl. The FUSE-side
		time is the wall minus the span of the list answers: the pages the
		walk made ARM send, each at the time one page takes in a listing
		alone (ls of every subscription on a fresh mount)."""
		_, subs, pages = self.use_world(orders, 100)
		mnt = harness.Mount(self.emu, cache_ttl=2, timeout=300).start()
		try:
			t0 = time.monotonic()
			for s in subs:
				os.listdir(mnt.p(s))
			per_page = (time.monotonic() - t0) / pages
		finally:
			mnt.stop()
		mnt = harness.Mount(self.emu, cache_ttl=2, timeout=300).start()
		try:
			os.listdir(mnt.path)
			rss0 = vm_rss(mnt.proc.pid)
			cpu0 = cpu_s(mnt.proc.pid)
			self.emu.reset_counters()
			t0 = time.monotonic()
			p = harness.run(["ls", "-lR", mnt.path], timeout=1200)
			if p.returncode != 0:
				raise SystemExit("ls -lR failed: %s" % p.stderr[-2000:])
			tar_all(mnt)
			wall = time.monotonic() - t0
			rss1 = vm_rss(mnt.proc.pid)
			cpu = cpu_s(mnt.proc.pid) - cpu0
			c = self.emu.counters()
		finally:
			mnt.stop()
		lists = sum(n for k, n in c["by_path"].items() if k.endswith("/providers/Microsoft.DataBox/jobs"))
		arm = c["by_service"].get("arm", 0)
		return wall - lists * per_page, (rss1 - rss0) / orders, arm, pages, wall, cpu

	def scale(self):
		small = self.scale_one(5000)
		big = self.scale_one(10000)
		ratio = big[0] / small[0] if small[0] > 0 else float("inf")
		for n, r in ((5000, small), (10000, big)):
			self.row("scale, %d orders: ls -lR + tar wall" % n, "%.2f" % r[4], "-", "s", "-", True)
			self.row("scale, %d orders: ARM requests" % n, r[2], "-", "req",
				 "O(%d pages)" % r[3], True, "%.1f x pages" % (r[2] / r[3]))
			self.row("scale, %d orders: RSS growth per order" % n, "%.0f" % r[1], "-", "B",
				 "<= 4096", r[1] <= 4096)
		self.row("scale: FUSE-side time 10000 / 5000", "%.2f / %.2f" % (big[0], small[0]), "-", "s",
			 "<= 2.2x", ratio <= 2.2, "ratio %.2f" % ratio)
		cpu_ratio = big[5] / small[5] if small[5] > 0 else float("inf")
		self.row("scale: mount CPU time 10000 / 5000", "%.2f / %.2f" % (big[5], small[5]), "-", "s",
			 "<= 2.2x", cpu_ratio <= 2.2, "ratio %.2f; not skewed by other load" % cpu_ratio)

	def report(self):
		print("databoxfs bench%s: %d orders (2 subscriptions, 3 resource groups, pages of %d), "
		      "every Azure request delayed %d ms; median [min-max] of %d run(s)" %
		      (" --quick" if self.cfg.quick else "", self.cfg.orders, self.cfg.page, LATENCY_MS,
		       self.cfg.runs))
		w = max(len(r[0]) for r in self.rows)
		print("%-*s  %-24s %-24s %-5s %7s  %-13s %s" %
		      (w, "job", "databoxfs", "peer", "unit", "ratio", "target", "met"))
		for job, ours, peer, unit, target, met, note in self.rows:
			ratio = "-"
			if isinstance(ours, tuple) and isinstance(peer, tuple) and peer[0] > 0:
				ratio = "%.2fx" % (ours[0] / peer[0])
			print("%-*s  %-24s %-24s %-5s %7s  %-13s %s%s" %
			      (w, job, fmt(ours), fmt(peer), unit, ratio, target,
			       "yes" if met else "no", "  (%s)" % note if note else ""))


# ---- helpers ----
def cpu_s(pid):
	"""User + system CPU seconds process pid has used."""
	with open("/proc/%d/stat" % pid) as f:
		fields = f.read().rsplit(")", 1)[1].split()
	return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def vm_rss(pid):
	"""VmRSS of process pid, in bytes."""
	with open("/proc/%d/status" % pid) as f:
		for line in f:
			if line.startswith("VmRSS:"):
				return int(line.split()[1]) * 1024
	raise SystemExit("no VmRSS for %d" % pid)


def tar_all(mnt):
	# Through a pipe: GNU tar skips reading file data when the archive is
	# /dev/null itself, and the point is to read every file.
	p = harness.run(["bash", "-o", "pipefail", "-c", 'tar -cf - -C "$1" . | cat >/dev/null', "tar",
			 mnt.path], timeout=600)
	if p.returncode != 0:
		raise SystemExit("tar failed: %s" % p.stderr)


def echo(path, value):
	p = harness.run(["sh", "-c", 'echo "$1" > "$2"', "echo", value, path], timeout=300)
	if p.returncode != 0:
		raise SystemExit("echo > %s failed: %s" % (path, p.stderr))


def xargs_echo(dirs, value, threads):
	p = subprocess.run(["xargs", "-0", "-P", str(threads), "-n", "1", "sh", "-c",
			    'echo "$0" > "$1/key_url"', value],
			   input="\0".join(dirs).encode(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
			   timeout=600)
	if p.returncode != 0:
		raise SystemExit("xargs echo failed: %s" % p.stderr.decode()[-2000:])


def read_once(path):
	fd = os.open(path, os.O_RDONLY)
	try:
		return os.read(fd, 65536)
	finally:
		os.close(fd)


def read_p50_us(path, n):
	times = []
	for _ in range(n):
		t0 = time.perf_counter_ns()
		fd = os.open(path, os.O_RDONLY)
		os.read(fd, 65536)
		os.close(fd)
		times.append((time.perf_counter_ns() - t0) / 1000)
	return statistics.median(times)


def med(samples, i):
	return statistics.median(s[i] for s in samples)


def spread(samples, i):
	v = [s[i] for s in samples]
	return (statistics.median(v), min(v), max(v))


def spread1(values):
	return (statistics.median(values), min(values), max(values))


def fmt(x):
	if not isinstance(x, tuple):
		return str(x)
	m, lo, hi = x
	if all(float(v).is_integer() for v in x):
		return "%d [%d-%d]" % (m, lo, hi)
	return "%.2f [%.2f-%.2f]" % (m, lo, hi)


SCENARIOS = ["snapshot", "keychange", "fanout", "cached_read", "tar3000", "scale"]
FULL_ONLY = ["tar3000", "scale"]


def chosen(argv):
	"""The scenarios to run, in order: --only's, else all (not FULL_ONLY with --quick)."""
	if "--only" in argv:
		return argv[argv.index("--only") + 1].split(",")
	return [s for s in SCENARIOS if "--quick" not in argv or s not in FULL_ONLY]


def inside(argv):
	cfg = Config("--quick" in argv)
	b = Bench(cfg)
	try:
		for name in chosen(argv):
			getattr(b, name)()
	finally:
		b.close()
	b.report()
	return 0


def main():
	if not os.path.exists("/dev/fuse"):
		print("bench: /dev/fuse is missing", file=sys.stderr)
		return 77
	argv = sys.argv[1:]
	if argv and argv[0] == "--inside":
		return inside(argv[1:])
	bad = [a for i, a in enumerate(argv) if a != "--quick" and a != "--only" and
	       not (i > 0 and argv[i - 1] == "--only")]
	if "--only" in argv and (argv[-1] == "--only" or
				 set(argv[argv.index("--only") + 1].split(",")) - set(SCENARIOS)):
		bad.append("--only")
	if bad:
		print(__doc__, file=sys.stderr)
		return 2
	return outer(argv)


if __name__ == "__main__":
	sys.exit(main())
