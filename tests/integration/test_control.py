"""MOUNT/.databoxfs/ through a real mount (docs/formats.md, "The control
directory"): reachable by name but not listed at the root; every file's
st_size is what a read returns; orders matches what the order files show,
costs the listings' pages and never a GET per order, and lists the demo
world's CMK error; stats is Prometheus text whose ARM request counter grows
after a listing; health says ok, then the reason when ARM drops every
connection or Entra refuses the credential; nothing in it holds the
client secret."""

import math
import os
import re
import stat
import time

import harness

FILES = ["config", "health", "orders", "stats", "version"]
PAGE = 5
TTL = 1  # cache_ttl: a control snapshot is kept 1 s (DBX_CONTROL_HOLD_MIN_MS)

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="[^"\\\n]*"'
		    r'(,[a-zA-Z_][a-zA-Z0-9_]*="[^"\\\n]*")*)?\})? (-?[0-9.]+(e[+-]?[0-9]+)?)$')


def parse_prometheus(tc, text):
	"""{(name, labels tuple): value}; fails tc on any line that is not valid
	text exposition format, or a sample of a family without HELP and TYPE."""
	samples, helped, typed = {}, set(), {}
	for line in text.splitlines():
		if line.startswith("# HELP "):
			helped.add(line.split(" ")[2])
			continue
		if line.startswith("# TYPE "):
			_, _, name, kind = line.split(" ")
			tc.assertIn(kind, ("counter", "gauge"), line)
			typed[name] = kind
			continue
		m = SAMPLE.match(line)
		tc.assertIsNotNone(m, "not Prometheus text: %r" % line)
		name = m.group(1)
		tc.assertIn(name, helped, "sample before its # HELP: %r" % line)
		tc.assertIn(name, typed, "sample before its # TYPE: %r" % line)
		labels = tuple(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="([^"]*)"', m.group(3) or ""))
		samples[(name, labels)] = float(m.group(5))
	return samples


def arm_gets(samples):
	return sum(v for (name, labels), v in samples.items()
		   if name == "databoxfs_requests_total" and ("service", "arm") in labels
		   and ("method", "GET") in labels)


def read(path):
	with open(path, "rb") as f:
		return f.read()


class Control(harness.MountedWorld):
	WORLD = {"orders": 20, "demo": True, "page_size": PAGE}
	EMULATOR = {"page_size": PAGE}
	MOUNT = {"cache_ttl": TTL, "timeout": 10}

	def ctl(self, *parts):
		return self.mnt.p(".databoxfs", *parts)

	def fresh(self, name):
		"""The file once its snapshot has been renewed."""
		time.sleep(TTL + 0.1)
		return read(self.ctl(name)).decode()

	def test_hidden_but_reachable(self):
		self.assertNotIn(".databoxfs", os.listdir(self.mnt.path))
		p = harness.run(["tar", "-cf", "/dev/null", "-v", "-C", self.mnt.path, "."], timeout=120)
		self.assertEqual(p.returncode, 0, p.stderr)
		self.assertNotIn(".databoxfs", p.stdout)
		st = os.stat(self.ctl())
		self.assertTrue(stat.S_ISDIR(st.st_mode))
		self.assertEqual(st.st_mode & 0o777, 0o555)
		self.assertEqual(sorted(os.listdir(self.ctl())), FILES)
		for f in FILES:
			self.assertEqual(os.stat(self.ctl(f)).st_mode & 0o777, 0o444, f)
		self.expect_errno(13, open, self.ctl("health"), "w")  # EACCES
		self.expect_errno(2, os.stat, self.ctl("nothing"))  # ENOENT

	def test_sizes_are_exact(self):
		for _ in range(3):
			for f in FILES:
				with open(self.ctl(f), "rb") as fh:
					size = os.fstat(fh.fileno()).st_size
					data = fh.read()
				self.assertEqual(size, len(data), f)
				self.assertEqual(os.stat(self.ctl(f)).st_size, len(data), f)
				self.assertTrue(data.endswith(b"\n"), f)
			time.sleep(TTL / 2)

	def test_version(self):
		lines = read(self.ctl("version")).decode().splitlines()
		self.assertRegex(lines[0], r"^databoxfs [0-9]+\.[0-9]+")
		self.assertEqual(lines[1], "api_version 2025-07-01")

	def test_orders_match_the_order_files_at_page_cost(self):
		time.sleep(TTL + 0.1)  # the listings are stale: reading orders re-lists them
		self.emu.reset_log()
		text = self.fresh("orders")
		c = self.emu.counters()
		gets = [k for k in c["by_path"] if k.startswith("GET ") and "/jobs/" in k]
		self.assertEqual(gets, [], "orders sent a GET per order")
		subs = len({harness.split_job_id(j["id"])[0] for j in self.world["jobs"]})
		per_sub = {}
		for j in self.world["jobs"]:
			s = harness.split_job_id(j["id"])[0]
			per_sub[s] = per_sub.get(s, 0) + 1
		bound = 1 + sum(math.ceil(n / PAGE) for n in per_sub.values())
		arm = c["by_service"].get("arm", 0)
		harness.log("orders of %d orders in %d subscriptions: %d ARM requests (bound %d)" %
			    (len(self.world["jobs"]), subs, arm, bound))
		self.assertGreater(arm, 0)
		self.assertLessEqual(arm, bound)

		lines = text.splitlines()
		self.assertEqual(len(lines), len(self.world["jobs"]))
		want = {"/".join(harness.split_job_id(j["id"])) for j in self.world["jobs"]}
		self.assertEqual({ln.split("\t")[0] for ln in lines}, want)
		with_error = []
		for ln in lines:
			fields = ln.split("\t")
			self.assertEqual(len(fields), 6, ln)
			d = self.mnt.p(*fields[0].split("/"))
			for i, f in enumerate(["status", "encryption_type", "key_url", "identity"], 1):
				self.assertEqual(fields[i], read(os.path.join(d, f)).decode().rstrip("\n"),
						 "%s: %s" % (fields[0], f))
			errors = read(os.path.join(d, "errors")).decode()
			# Empty exactly when errors is, and one of the codes errors shows.
			self.assertEqual(fields[5] != "", errors != "", fields[0])
			if fields[5]:
				self.assertIn("code: %s\n" % fields[5], errors, fields[0])
				with_error.append(fields[0])
		# The demo world has one order with a CMK error: awk -F'\t' '$6 != ""' finds it.
		p = harness.run(["awk", "-F\t", "$6 != \"\" {print $1}", self.ctl("orders")])
		self.assertEqual(sorted(p.stdout.split()), sorted(with_error))
		self.assertTrue(with_error, "the demo world's error is not in orders")
		# Its Ssem code, which the order reports before its waiting stage.
		self.assertTrue(any(ln.split("\t")[5].startswith("Ssem") for ln in lines), text)

	def test_stats_counts_arm_requests(self):
		before = parse_prometheus(self, self.fresh("stats"))
		for family in ("databoxfs_requests_total", "databoxfs_retries_total",
			       "databoxfs_throttle_waits_total", "databoxfs_throttle_wait_seconds_total",
			       "databoxfs_cache_requests_total", "databoxfs_token_refreshes_total"):
			self.assertTrue(any(n == family for n, _ in before), family)
		self.assertGreaterEqual(before[("databoxfs_token_refreshes_total",
						(("result", "ok"),))], 1)
		time.sleep(TTL + 0.1)
		sub = harness.split_job_id(self.world["jobs"][0]["id"])[0]
		self.emu.reset_log()
		os.listdir(self.mnt.p(sub))  # stale: re-lists the subscription
		sent = self.emu.counters()["by_service"].get("arm", 0)
		self.assertGreater(sent, 0)
		after = parse_prometheus(self, self.fresh("stats"))
		self.assertEqual(arm_gets(after) - arm_gets(before), sent)

	def test_health_ok_then_arm_unreachable(self):
		self.assertEqual(self.fresh("health"), "ok\n")
		sub = harness.split_job_id(self.world["jobs"][0]["id"])[0]
		self.emu.fault(service="arm", drop=True)
		try:
			time.sleep(TTL + 0.1)
			self.expect_errno_any(os.listdir, self.mnt.p(sub))
			health = self.fresh("health")
		finally:
			self.emu.clear_faults()
		self.assertRegex(health, r"^arm_unreachable: .+ since "
				 r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z\n$")
		stats = parse_prometheus(self, read(self.ctl("stats")).decode())
		self.assertEqual(stats[("databoxfs_health", (("condition", "arm_unreachable"),))], 1)
		# Back: the next answer from ARM clears it (once the host's quiet time passed).
		time.sleep(0.6)
		harness.wait_for(lambda: self.list_ok(sub) and self.fresh("health") == "ok\n", 30,
				 "health back to ok")

	def list_ok(self, path):
		try:
			os.listdir(self.mnt.p(path))
			return True
		except OSError:
			return False

	def expect_errno_any(self, fn, *args):
		with self.assertRaises(OSError):
			fn(*args)

	def test_no_secret_anywhere(self):
		secret = self.mnt.env["AZURE_CLIENT_SECRET"]
		self.assertTrue(secret)
		config = read(self.ctl("config")).decode()
		for line in config.splitlines():
			self.assertRegex(line, r"^[a-z_]+=")
		self.assertIn("credential=auto\n", config)
		self.assertIn("cache_ttl=%d\n" % TTL, config)
		for f in FILES:
			data = read(self.ctl(f))
			self.assertNotIn(secret.encode(), data, f)
			# No token either: a JWT, or a bearer header.
			self.assertIsNone(re.search(rb"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}", data), f)
			self.assertIsNone(re.search(rb"Bearer", data), f)


class Credential(harness.Cleanup, __import__("unittest").TestCase):
	"""health names the credential: when Entra's token endpoint fails the
	refresh of a token about to expire (the cached token still serves), and
	on a mount whose secret Entra refuses (it starts all the same:
	docs/formats.md); the wrong secret is nowhere in the control directory."""

	def test_health_says_token_endpoint_failing(self):
		world = harness.gen_world(orders=2, subscriptions=1, resource_groups=1, seed=72)
		emu = self.track(harness.Emulator(world).start())
		emu.admin("POST", "/admin/tokens/lifetime", {"seconds": 8})  # refreshed from 4 s on
		mnt = self.track(harness.Mount(emu, cache_ttl=TTL, timeout=10).start())
		sub = harness.split_job_id(world["jobs"][0]["id"])[0]
		self.assertEqual(read(mnt.p(".databoxfs", "health")).decode(), "ok\n")
		emu.fault(service="entra", status=503)
		try:
			def says_credential():
				try:
					os.listdir(mnt.p(sub))  # an ARM call: the token is due for refresh
				except OSError:
					pass
				time.sleep(TTL + 0.1)
				return read(mnt.p(".databoxfs", "health")).decode().startswith("credential: ")
			harness.wait_for(says_credential, 40, "health naming the credential")
		finally:
			emu.clear_faults()
		health = read(mnt.p(".databoxfs", "health")).decode()
		harness.log("health while Entra answers 503: %s" % health.strip())
		self.assertRegex(health, r"^credential: .+ since [0-9T:-]+Z\n$")
		stats = read(mnt.p(".databoxfs", "stats")).decode()
		self.assertRegex(stats, r'databoxfs_requests_total\{service="entra",method="POST",'
				 r'status="503"\} [1-9]')
		self.assertRegex(stats, r'databoxfs_token_refreshes_total\{result="failed"\} [1-9]')
		# Entra back: the next refresh clears it.
		harness.wait_for(lambda: (os.listdir(mnt.p(sub)) is not None and time.sleep(TTL + 0.1)
					  is None and read(mnt.p(".databoxfs", "health")) == b"ok\n"),
				 40, "health back to ok")

	def test_health_says_credential(self):
		world = harness.gen_world(orders=2, subscriptions=1, resource_groups=1, seed=71)
		emu = self.track(harness.Emulator(world).start())
		wrong = "not-the-secret-%d" % os.getpid()
		mnt = self.track(harness.Mount(emu, cache_ttl=TTL, timeout=10,
					       env={"AZURE_CLIENT_SECRET": wrong}).start())
		health = read(mnt.p(".databoxfs", "health")).decode()
		self.assertRegex(health, r"^credential: .+ since [0-9T:-]+Z\n$")
		stats = read(mnt.p(".databoxfs", "stats")).decode()
		self.assertRegex(stats, r'databoxfs_token_refreshes_total\{result="failed"\} [1-9]')
		# Without the subscription list there are no orders to list: EACCES, as ls says.
		self.assertRaises(PermissionError, read, mnt.p(".databoxfs", "orders"))
		for f in FILES:
			if f != "orders":
				self.assertNotIn(wrong.encode(), read(mnt.p(".databoxfs", f)), f)


if __name__ == "__main__":
	harness.main()
