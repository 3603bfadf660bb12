"""Shared helpers of the write tests (test_write_*.py, test_ssem_*.py).

Writes go through a real mount with shell tools (bash -c 'echo ... > f',
printf, tee, cp, dd), so the exit status and the stderr text are what an
admin would see. bash, not dash: bash's echo names the errno
("echo: write error: Invalid argument"), dash's says "I/O error" for all.

WriteWorld is a MountedWorld on the --demo world with a short LRO poll
interval (the emulator sends no Retry-After, and the default 10 s poll
would outlast a test). Every test makes its own orders with new_order(),
clones of the world's orders under fresh names with their own system
principal (granted on the vault when the kind needs it), so tests share
one emulator and one mount without sharing state.

The table rows the errors file must show (recoverable, remedy fragments)
are oracle.SSEM and oracle.GENERIC_REMEDY.
"""

import copy
import json
import os
import socket
import subprocess
import threading
import time
import uuid

import harness
import oracle

API = "2025-07-01"

EINVAL_TEXT = "Invalid argument"
EIO_TEXT = "Input/output error"
EBUSY_TEXT = "Device or resource busy"
EAGAIN_TEXT = "Resource temporarily unavailable"


def sh(cmd, timeout=60):
	"""bash -c cmd, bounded; CompletedProcess with text output."""
	return subprocess.run(["bash", "-c", cmd], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
			      text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def q(s):
	"""Shell-quote one word."""
	return "'" + s.replace("'", "'\\''") + "'"


def echo_to(path, value, timeout=60):
	return sh("echo %s > %s" % (q(value), q(path)), timeout)


def read(path):
	with open(path) as f:
		return f.read()


def patches(requests):
	return [r for r in requests if r["method"] == "PATCH"]


def body_of(r):
	b = r.get("body")
	if isinstance(b, str):
		return json.loads(b)
	return b


class Trap:
	"""A loopback TCP listener that counts the connections it accepts: a
	host a write must never reach (test_write_hosts, test_write_lro)."""

	def __init__(self):
		self.sock = socket.socket()
		self.sock.bind(("127.0.0.1", 0))
		self.sock.listen(16)
		self.sock.settimeout(0.2)
		self.port = self.sock.getsockname()[1]
		self.accepted = 0
		self.stopping = False
		self.thread = threading.Thread(target=self.loop, daemon=True)
		self.thread.start()

	def loop(self):
		while not self.stopping:
			try:
				c, _ = self.sock.accept()
			except OSError:
				continue
			self.accepted += 1
			c.close()

	def stop(self):
		self.stopping = True
		self.thread.join(5)
		self.sock.close()


class WriteWorld(harness.MountedWorld):
	"""The demo world, one mount with cache_ttl=0 and a 50 ms LRO poll."""

	WORLD = {"orders": 20, "demo": True}
	MOUNT = {"cache_ttl": 0, "timeout": 30, "extra": ("lro_poll=0.05",)}
	_n = 0

	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		cls.learn_world()

	@classmethod
	def learn_world(cls):
		"""Names the tests use: subscription 0, its tenant, vault, identity."""
		cls.sub0 = cls.world["subscriptions"][0]["subscriptionId"]
		cls.tenant = cls.world["subscriptions"][0]["tenantId"]
		cls.vault = cls.vault_of(cls.sub0)
		cls.vname = cls.vault["name"]
		cls.weak_vault = [v for v in cls.world["vaults"] if "nopurge" in v["name"]][0]
		cls.uai = [i for i in cls.world["identities"]
			   if i["id"].split("/")[2] == cls.sub0][0]

	def tearDown(self):
		try:
			self.emu.clear_faults()
			self.emu.admin("POST", "/admin/latency", {"ms": 0})
		finally:
			super().tearDown()

	# ---- the world ----
	@classmethod
	def vault_of(cls, sub):
		return [v for v in cls.world["vaults"]
			if v["id"].split("/")[2] == sub and "nopurge" not in v["name"]][0]

	def key_url(self, key, version=None, vault=None):
		u = "https://%s.vault.azure.net/keys/%s" % (vault or self.vname, key)
		return u + "/" + version if version else u

	def versions(self, key, vault=None):
		w = self.emu.admin("GET", "/admin/world")
		v = [x for x in w["vaults"] if x["name"] == (vault or self.vname)][0]
		return [x["version"] for x in [k for k in v["keys"] if k["name"] == key][0]["versions"]]

	def grant(self, principal, vault=None, tenant=None, perms=("get", "wrapKey", "unwrapKey")):
		self.emu.admin("POST", "/admin/vaults/%s/policies" % (vault or self.vname),
			       {"objectId": principal, "tenantId": tenant or self.tenant,
				"permissions": {"keys": list(perms)}})

	def new_order(self, kind, sub=None, status="AtAzureDC", grant=True):
		"""A fresh order cloned from the world: kind "mm-none" (Microsoft
		managed, no identity), "mm-system" (Microsoft managed with a system
		identity, as orders are created), "cm-system" (the key in the
		subscription's vault through the system identity) or "cm-uai" (the
		same key through the subscription's user-assigned identity).
		Returns (sub, rg, name, dir in the mount)."""
		sub = sub or self.sub0
		want_kek = {"mm-none": "MicrosoftManaged", "mm-system": "MicrosoftManaged",
			    "cm-system": "SystemAssigned", "cm-uai": "UserAssigned"}[kind]
		tpl = None
		for j in self.world["jobs"]:
			kek = j["properties"]["details"].get("keyEncryptionKey") or {}
			got = kek.get("kekType") if kek.get("kekType") != "CustomerManaged" else \
				kek.get("identityProperties", {}).get("type")
			if j["id"].split("/")[2] == sub and got == want_kek and \
			   "error" not in j["properties"] and "disabled" not in kek.get("kekUrl", ""):
				tpl = j
				break
		assert tpl is not None, "no %s order in %s" % (kind, sub)
		job = copy.deepcopy(tpl)
		WriteWorld._n += 1
		_, rg, _ = harness.split_job_id(tpl["id"])
		name = "wt-%s-%03d" % (kind, WriteWorld._n)
		job["name"] = name
		job["id"] = "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.DataBox/jobs/%s" % (
			sub, rg, name)
		tenant = [s for s in self.world["subscriptions"] if s["subscriptionId"] == sub][0]["tenantId"]
		if kind == "mm-none":
			job["identity"] = {"type": "None"}
		else:
			pid = str(uuid.uuid4())
			job["identity"]["principalId"] = pid
			job["identity"]["tenantId"] = tenant
			if kind == "mm-system":
				job["identity"] = {"type": "SystemAssigned", "principalId": pid,
						   "tenantId": tenant}
			if grant:
				self.grant(pid, vault=self.vault_of(sub)["name"], tenant=tenant)
		self.emu.admin("PUT", "/admin/jobs/%s/%s/%s" % (sub, rg, name), job)
		self.emu.admin("POST", "/admin/jobs/%s/%s/%s/advance" % (sub, rg, name),
			       {"status": status})
		return sub, rg, name, self.mnt.p(sub, rg, name)

	def job(self, sub, rg, name):
		return self.emu.admin("GET", "/admin/jobs/%s/%s/%s" % (sub, rg, name))

	def advance(self, sub, rg, name, status="DataCopy"):
		return self.emu.admin("POST", "/admin/jobs/%s/%s/%s/advance" % (sub, rg, name),
				      {"status": status})

	# ---- assertions ----
	def kek(self, job):
		return job["properties"]["details"].get("keyEncryptionKey")

	def kek_url_of(self, sub, rg, name):
		"""The stored order's kekUrl (None without one)."""
		return self.kek(self.job(sub, rg, name)).get("kekUrl")

	def assert_refused(self, p, errno_text=EINVAL_TEXT):
		self.assertNotEqual(p.returncode, 0, "the write succeeded: %r" % (p,))
		self.assertIn(errno_text, p.stderr)

	def assert_block(self, d, code, source="last-write", generic=False):
		"""The errors file of order dir d has a block for code from source,
		with the table's recoverable and remedy; returns the block."""
		text = read(os.path.join(d, "errors"))
		blocks = [b for b in oracle.parse_errors(text) if b.get("source") == source]
		found = [b for b in blocks if b.get("code") == code]
		self.assertTrue(found, "no %s block for %s in errors:\n%s" % (source, code, text))
		b = found[0]
		if generic:
			self.assertEqual(b.get("remedy"), oracle.GENERIC_REMEDY, text)
			self.assertEqual(b.get("recoverable"), "depends", text)
		else:
			recoverable, fragments = oracle.SSEM[code]
			self.assertEqual(b.get("recoverable"), recoverable, text)
			for frag in fragments:
				self.assertIn(frag, b.get("remedy", ""), text)
		self.assertTrue(b.get("message"), text)
		self.assertTrue(b.get("time"), text)
		return b

	def assert_no_last_write(self, d):
		text = read(os.path.join(d, "errors"))
		self.assertFalse([b for b in oracle.parse_errors(text) if b.get("source") == "last-write"], text)

	def assert_unchanged(self, before, sub, rg, name):
		self.assertEqual(self.job(sub, rg, name), before, "a refused write changed the order")

	def refused_write(self, d, file, value, code, sent_patch=False, errno_text=EINVAL_TEXT):
		"""echo value > d/file must fail with errno_text, leave the stored job
		exactly as it was, send a PATCH only when sent_patch, and leave a
		last-write block for code. Returns (block, requests)."""
		sub, rg, name = d.split(os.sep)[-3:]
		before = self.job(sub, rg, name)
		shown = read(os.path.join(d, file))
		self.emu.reset_log()
		p = echo_to(os.path.join(d, file), value)
		self.assert_refused(p, errno_text)
		self.assertEqual(read(os.path.join(d, file)), shown, "the file shows a refused value")
		reqs = self.emu.requests()
		self.assertEqual(len(patches(reqs)), 1 if sent_patch else 0,
				 [(r["method"], r["path"], r["status"]) for r in reqs])
		self.assert_unchanged(before, sub, rg, name)
		b = self.assert_block(d, code)
		if sent_patch:
			self.assertTrue(b.get("request_id"), "no request id for a support ticket: %r" % b)
		return b, reqs


def main():
	harness.main()


def wall(fn):
	t0 = time.monotonic()
	r = fn()
	return r, time.monotonic() - t0
