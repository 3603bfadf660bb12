"""Concurrent writes through a real mount. Eight shells writing eight key
versions to ONE order all finish, the order ends with exactly one of the
written values (never a mix), and the emulator's request log shows that
the PATCHes never overlapped: each PATCH's operation was polled and the job
read back before the next PATCH. Eight shells writing to eight DIFFERENT
orders run side by side: with 200 ms of emulator latency they take well
under eight times one write, and their PATCHes interleave in the log."""

import os
import subprocess
import time

import harness
import writes

N = 8
LATENCY_MS = 200


def popen_echo(value, path):
	return subprocess.Popen(["bash", "-c", "echo %s > %s" % (writes.q(value), writes.q(path))],
				stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
				stdin=subprocess.DEVNULL)


def finish(procs, timeout=120):
	out = []
	for p in procs:
		o, e = p.communicate(timeout=timeout)
		out.append((p.returncode, e))
	return out


def overlaps(reqs):
	"""How many PATCHes were sent while another PATCH's operation was still
	being followed (PATCH -> operationResults polls -> GET of the job)."""
	state = {}  # job path -> "patched" | "polling"
	n = 0
	for r in reqs:
		path = r["path"].lower()
		if r["method"] == "PATCH":
			if any(state.values()):
				n += 1
			state[path] = "patched"
		elif r["method"] == "GET" and "/operationresults/" in path:
			for k, v in state.items():
				if v == "patched":
					state[k] = "polling"
					break
		elif r["method"] == "GET" and state.get(path) == "polling":
			state[path] = None
	return n


class Concurrency(writes.WriteWorld):

	def test_overlap_detector(self):
		"""overlaps() sees a PATCH sent before the previous one was followed."""
		def r(method, path):
			return {"method": method, "path": path}
		job, op = "/s/x/jobs/a", "/s/locations/w/operationResults/1"
		serial = [r("GET", job), r("PATCH", job), r("GET", op), r("GET", job),
			  r("GET", job), r("PATCH", job), r("GET", op), r("GET", job)]
		self.assertEqual(overlaps(serial), 0)
		self.assertEqual(overlaps([r("PATCH", job), r("PATCH", job)]), 1)
		self.assertEqual(overlaps([r("PATCH", job), r("GET", op), r("PATCH", job)]), 1)

	def test_eight_writers_one_order(self):
		sub, rg, name, d = self.new_order("cm-system")
		urls = []
		for _ in range(N):
			r = self.emu.admin("POST", "/admin/vaults/%s/keys" % self.vname,
					   {"name": "wt-conc", "kty": "RSA", "key_size": 2048})
			urls.append(self.key_url("wt-conc", r["version"]))
		self.assertEqual(len(set(urls)), N)
		self.emu.admin("POST", "/admin/latency", {"ms": 20})
		self.emu.reset_log()
		path = os.path.join(d, "key_url")
		results = finish([popen_echo(u, path) for u in urls])
		self.assertEqual([rc for rc, _ in results], [0] * N, results)
		final = writes.read(path).strip()
		self.assertIn(final, urls)
		self.assertEqual(self.kek(self.job(sub, rg, name))["kekUrl"], final)
		reqs = self.emu.requests()
		ps = writes.patches(reqs)
		self.assertEqual(len(ps), N, "one PATCH per distinct value")
		for p in ps:
			self.assertIn(writes.body_of(p)["properties"]["details"]["keyEncryptionKey"]["kekUrl"],
				      urls)
		# The last PATCH sent is the value that stayed.
		self.assertEqual(writes.body_of(ps[-1])["properties"]["details"]["keyEncryptionKey"]["kekUrl"],
				 final)
		self.assertEqual(overlaps(reqs), 0, [(r["method"], r["path"]) for r in reqs])

	def test_eight_orders_in_parallel(self):
		orders = [self.new_order("cm-system") for _ in range(N + 1)]
		url = self.key_url("dbx-key-3072")
		self.emu.admin("POST", "/admin/latency", {"ms": LATENCY_MS})
		# One write alone, for the yardstick.
		single_path = os.path.join(orders[0][3], "key_url")
		_, single = writes.wall(lambda: finish([popen_echo(url, single_path)]))
		self.emu.reset_log()
		t0 = time.monotonic()
		results = finish([popen_echo(url, os.path.join(o[3], "key_url")) for o in orders[1:]])
		took = time.monotonic() - t0
		self.assertEqual([rc for rc, _ in results], [0] * N, results)
		for sub, rg, name, _ in orders[1:]:
			self.assertEqual(self.kek(self.job(sub, rg, name))["kekUrl"], url)
		reqs = self.emu.requests()
		self.assertEqual(len(writes.patches(reqs)), N)
		harness.log("one write %.2fs; %d writes to %d orders in parallel %.2fs" %
				   (single, N, N, took))
		self.assertLess(took, N * single / 3, "writes to different orders were serialized")
		self.assertGreater(overlaps(reqs), 0, "no PATCH was sent while another was in flight")


if __name__ == "__main__":
	writes.main()
