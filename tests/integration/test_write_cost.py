"""What one `echo URL > key_url` costs: the ARM, Key Vault and Entra
requests the emulator counted (by service), and its wall time with 20 ms of
emulator latency on every Azure request. Prints the numbers (the closing
note quotes them) and bounds them: exactly one PATCH, one Key Vault key
GET, no token request once the mount holds tokens, and a handful of ARM
requests (fresh GET, vault lookup, PATCH, operation poll, job read back)."""

import os
import time

import harness
import writes

LATENCY_MS = 20


class Cost(writes.WriteWorld):
	# The default cache_ttl (2 s): what an admin's mount does.
	MOUNT = {"cache_ttl": 2, "timeout": 30, "extra": ("lro_poll=0.05",)}

	def measure(self, d, url):
		# As an admin would: look at the order, then write within cache_ttl.
		harness.cat(self, os.path.join(d, "key_url"))
		self.emu.reset_log()
		t0 = time.monotonic()
		p = writes.echo_to(os.path.join(d, "key_url"), url)
		took = time.monotonic() - t0
		self.assertEqual(p.returncode, 0, p.stderr)
		c = self.emu.counters()
		by = {k: v for k, v in c["by_service"].items() if v}
		paths = sorted("%s %s" % (r["method"], r["path"].split("?")[0])
			       for r in self.emu.requests())
		return by, took, paths

	def test_one_key_url_write(self):
		self.emu.admin("POST", "/admin/latency", {"ms": LATENCY_MS})
		*_, d1 = self.new_order("cm-system")
		*_, d2 = self.new_order("cm-system")
		time.sleep(2.1)  # past cache_ttl: the tree sees the new orders
		first, t_first, _ = self.measure(d1, self.key_url("dbx-key-3072"))
		by, took, paths = self.measure(d2, self.key_url("dbx-key-3072"))
		harness.log("one `echo URL > key_url` with --latency-ms %d: %.3f s wall, requests by "
			    "service %r (the first write of the mount: %.3f s, %r)" %
			    (LATENCY_MS, took, by, t_first, first))
		harness.log("requests: " + "; ".join(paths))
		self.assertEqual(by.get("keyvault"), 1, paths)
		self.assertNotIn("entra", by, "tokens are cached across writes")
		# fresh GET, vault lookup (Resources - List, vault GET), PATCH,
		# two operation polls (the emulator's flow), the job read back
		self.assertLessEqual(by.get("arm", 0), 7, paths)
		self.assertEqual(len([p for p in paths if p.startswith("PATCH")]), 1)
		self.assertLess(took, 5.0)


if __name__ == "__main__":
	writes.main()
