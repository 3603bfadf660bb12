"""Writes through the real mount seen from outside: a valid change is one
PATCH that the next read shows and the emulator stores; a value the local
rules refuse sends no request at all (not even for a token); the service's
409 on a closed order is EBUSY with a last-write block, the order untouched.
(Tools and Ssem rows in detail: test_write_tools.py, test_ssem_codes.py.)"""

import errno
import json
import os

import harness
import oracle


CLOSED = ("Completed", "CompletedWithErrors", "Cancelled")


class Writes(harness.MountedWorld):
	WORLD = {"orders": 30, "demo": True}
	MOUNT = {"cache_ttl": 2, "timeout": 60, "extra": ["lro_poll=0.2"]}

	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		cls.used = set()
		cls.vault_uri = {v["name"]: v["properties"]["vaultUri"].rstrip("/") for v in cls.world["vaults"]}

	# ---- helpers ----
	def pick(self, pred):
		"""An order no other test touched, for which pred(job) holds."""
		for job in self.world["jobs"]:
			if job["name"] not in self.used and pred(job):
				self.used.add(job["name"])
				return job
		self.fail("the world has no order for this test")

	def d(self, job, f=None):
		sub, rg, name = harness.split_job_id(job["id"])
		return self.mnt.p(sub, rg, name) if f is None else self.mnt.p(sub, rg, name, f)

	def stored(self, job):
		sub, rg, name = harness.split_job_id(job["id"])
		return self.emu.admin("GET", "/admin/jobs/%s/%s/%s" % (sub, rg, name))

	def sh(self, script, *args):
		return harness.run(["bash", "-c", script, "sh"] + list(args), timeout=90)

	def non_get(self):
		return {k: n for k, n in self.emu.counters()["by_path"].items()
			if not k.startswith("GET ") and " login.microsoftonline.com/" not in k}

	def patches(self):
		return sum(n for k, n in self.non_get().items() if k.startswith("PATCH "))

	def last_write_blocks(self, job):
		text = harness.cat(self, self.d(job, "errors")).decode()
		return [b for b in oracle.parse_errors(text) if b.get("source") == "last-write"]

	@staticmethod
	def cmk_system(job):
		kek = job["properties"]["details"].get("keyEncryptionKey") or {}
		return kek.get("kekType") == "CustomerManaged" and \
			(kek.get("identityProperties") or {}).get("type") == "SystemAssigned" and \
			not job["properties"].get("error")

	def other_key(self, job):
		"""A usable key in the order's own vault, other than the current one."""
		kek = job["properties"]["details"]["keyEncryptionKey"]
		vault = kek["kekVaultResourceID"].rsplit("/", 1)[1]
		cur = kek["kekUrl"].split("/keys/")[1].split("/")[0]
		key = "dbx-key-3072" if cur == "dbx-key-2048" else "dbx-key-2048"
		return "%s/keys/%s" % (self.vault_uri[vault], key), kek["kekVaultResourceID"]

	# ---- tests ----
	def test_key_url_then_microsoft_managed(self):
		job = self.pick(lambda j: self.cmk_system(j) and j["properties"]["status"] not in CLOSED)
		url, vault_id = self.other_key(job)
		self.emu.reset_counters()
		p = self.sh('echo "$1" > "$2"', url, self.d(job, "key_url"))
		self.assertEqual(p.returncode, 0, p.stderr)
		self.assertEqual(self.patches(), 1, "one write, one PATCH: %r" % self.non_get())
		self.assertEqual(harness.cat(self, self.d(job, "key_url")), (url + "\n").encode())
		self.assertEqual(harness.cat(self, self.d(job, "encryption_type")), b"CustomerManaged\n")
		self.assertEqual(harness.cat(self, self.d(job, "key_vault")).decode().strip().lower(), vault_id.lower())
		kek = self.stored(job)["properties"]["details"]["keyEncryptionKey"]
		self.assertEqual(kek["kekUrl"], url)
		self.assertEqual(kek["kekType"], "CustomerManaged")

		# printf without a newline is the same as echo (sysfs rule).
		p = self.sh('printf %s MicrosoftManaged > "$1"', self.d(job, "encryption_type"))
		self.assertEqual(p.returncode, 0, p.stderr)
		want = dict(oracle.values(job), encryption_type="MicrosoftManaged", key_url=None, key_vault=None)
		self.assertEqual(harness.cat(self, self.d(job, "encryption.json")),
				 (json.dumps(want, indent=2) + "\n").encode())
		self.assertEqual(self.stored(job)["properties"]["details"]["keyEncryptionKey"]["kekType"],
				 "MicrosoftManaged")

	def test_bad_scheme_sends_nothing(self):
		job = self.pick(lambda j: True)
		before = harness.cat(self, self.d(job, "encryption.json"))
		host = "http://%s/keys/dbx-key-2048" % next(iter(self.vault_uri.values())).split("//")[1]
		self.emu.reset_counters()
		p = self.sh('echo "$1" > "$2"', host, self.d(job, "key_url"))
		self.assertNotEqual(p.returncode, 0)
		self.assertIn(os.strerror(errno.EINVAL), p.stderr)
		self.assertEqual(self.emu.counters()["total"], 0, "a locally invalid value reached the network")
		blocks = self.last_write_blocks(job)
		self.assertEqual([b["code"] for b in blocks], ["SsemUserErrorKeyVaultUrlWithInvalidScheme"])
		self.assertEqual(harness.cat(self, self.d(job, "encryption.json")), before)

	def test_closed_order_is_ebusy(self):
		job = self.pick(lambda j: self.cmk_system(j) and j["properties"]["status"] in CLOSED)
		url, _ = self.other_key(job)
		before = self.stored(job)
		p = self.sh('echo "$1" > "$2"', url, self.d(job, "key_url"))
		self.assertNotEqual(p.returncode, 0)
		self.assertIn(os.strerror(errno.EBUSY), p.stderr)
		self.assertEqual(len(self.last_write_blocks(job)), 1)
		self.assertEqual(self.stored(job), before)


if __name__ == "__main__":
	harness.main()
