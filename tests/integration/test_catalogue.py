"""The catalogue (docs/formats.md, "The catalogue"): keyvaults/, identities/
and by-name/ through a real mount. The world holds eligible and ineligible
keys of every kind (1024-bit RSA, EC, disabled, expired, no wrapKey in
key_ops), a vault without purge protection, an RBAC vault and a vault whose
data plane the mount's credential may not read; the emulator pages every
list two items at a time. None of it is listed at the root, and a tar of
the root sends no catalogue request. Keys are created by writing new_key
and new_version, and a version's url is what an order's key_url takes."""

import copy
import errno
import os
import subprocess
import time

import harness

NOW = int(time.time())


def version(v, **kw):
	out = copy.deepcopy(v)
	out.update(kw)
	return out


class Catalogue(harness.MountedWorld):
	WORLD = {"orders": 6, "subscriptions": 3, "resource_groups": 3, "seed": 71}
	EMULATOR = {"page_size": 2}
	MOUNT = {"cache_ttl": 30}

	@classmethod
	def make_world(cls):
		w = harness.gen_world(**cls.WORLD)
		subs = w["subscriptions"]
		# two subscriptions share a display name with a '/' in it
		subs[1]["displayName"] = "Team/Keys"
		subs[2]["displayName"] = "Team/Keys"
		client = w["clients"][0]["object_id"]
		v0 = w["vaults"][0]
		base = v0["keys"][0]["versions"][0]
		hexid = iter("%032x" % (0xabc000 + i) for i in range(100))
		v0["keys"] += [
			{"name": "dbx-key-1024", "tags": {}, "versions": [
				version(base, version=next(hexid), key_size=1024)]},
			{"name": "dbx-key-expired", "tags": {}, "versions": [
				version(base, version=next(hexid), exp=NOW - 86400)]},
			{"name": "dbx-key-nowrap", "tags": {}, "versions": [
				version(base, version=next(hexid), key_ops=["encrypt", "decrypt"])]},
		]
		for p in v0["properties"]["accessPolicies"]:
			if p["objectId"] == client:
				p["permissions"]["keys"].append("create")
		rbac = copy.deepcopy(v0)
		rbac["name"] = "dbxemu-kv-rbac"
		rbac["id"] = rbac["id"].rsplit("/", 1)[0] + "/dbxemu-kv-rbac"
		rbac["properties"]["vaultUri"] = "https://dbxemu-kv-rbac.vault.azure.net/"
		rbac["properties"]["enableRbacAuthorization"] = True
		rbac["properties"]["accessPolicies"] = []
		rbac["keys"] = [copy.deepcopy(v0["keys"][1])]
		rbac["keys"][0]["versions"][0]["version"] = next(hexid)
		denied = copy.deepcopy(v0)
		denied["name"] = "dbxemu-kv-denied"
		denied["id"] = denied["id"].rsplit("/", 1)[0] + "/dbxemu-kv-denied"
		denied["properties"]["vaultUri"] = "https://dbxemu-kv-denied.vault.azure.net/"
		denied["properties"]["accessPolicies"] = []
		denied["keys"] = []
		w["vaults"] += [rbac, denied]
		return w

	def vault(self, name):
		return [v for v in self.world["vaults"] if v["name"] == name][0]

	def p(self, *parts):
		return self.mnt.p(*parts)

	def read(self, *parts):
		return harness.cat(self, self.p(*parts)).decode()

	def write(self, path, data):
		"""One write(2) of data, as echo does: its errno is the apply's."""
		fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
		try:
			os.write(fd, data.encode())
		finally:
			os.close(fd)

	def test_root_lists_only_subscriptions(self):
		subs = sorted(s["subscriptionId"] for s in self.world["subscriptions"])
		self.assertEqual(sorted(os.listdir(self.mnt.path)), subs)
		for name in ("keyvaults", "identities", "by-name"):
			self.assertTrue(os.path.isdir(self.p(name)), name)

	def test_tar_of_root_sends_no_catalogue_request(self):
		os.listdir(self.p("keyvaults"))  # the catalogue is warm: tar must not use it anyway
		self.emu.reset_counters()
		p = subprocess.run(["tar", "-C", self.mnt.path, "-cf", "-", "."],
				   stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
		self.assertEqual(p.returncode, 0, p.stderr)
		c = self.emu.counters()
		self.assertEqual(c["by_service"].get("keyvault", 0), 0)
		touched = [k for k in c["by_path"]
			   if "Microsoft.KeyVault" in k or "userAssignedIdentities" in k]
		self.assertEqual(touched, [])
		names = subprocess.run(["tar", "-tf", "-"], input=p.stdout, stdout=subprocess.PIPE,
				       timeout=60).stdout.decode()
		for hidden in ("keyvaults", "identities", "by-name"):
			self.assertNotIn(hidden, names)

	def test_vaults_and_their_files(self):
		want = sorted(v["name"] for v in self.world["vaults"])
		self.assertEqual(sorted(os.listdir(self.p("keyvaults"))), want)
		for v in self.world["vaults"]:
			d = ("keyvaults", v["name"])
			props = v["properties"]
			self.assertEqual(self.read(*d, "id"), v["id"] + "\n")
			self.assertEqual(self.read(*d, "soft_delete"), "on\n")
			purge = props.get("enablePurgeProtection", False)
			self.assertEqual(self.read(*d, "purge_protection"), "on\n" if purge else "off\n")
			rbac = props.get("enableRbacAuthorization")
			self.assertEqual(self.read(*d, "authorization"),
					 "rbac\n" if rbac else "access policies\n")
			self.assertEqual(self.read(*d, "eligible"),
					 "yes\n" if purge else "no: purge protection off\n")
			st = os.stat(self.p(*d, "eligible"))
			self.assertEqual(st.st_size, len(self.read(*d, "eligible")))
		self.assertEqual(sorted(os.listdir(self.p("keyvaults", "dbxemu-kv-rbac", "keys"))),
				 ["dbx-key-3072"])

	def test_denied_vault_lists_with_a_reason(self):
		d = self.p("keyvaults", "dbxemu-kv-denied")
		self.assertIn("keys_error", os.listdir(d))
		why = self.read("keyvaults", "dbxemu-kv-denied", "keys_error")
		self.assertIn("may not list the keys", why)
		self.assertIn("403", why)
		self.expect_errno(errno.EACCES, os.listdir, os.path.join(d, "keys"))
		self.assertEqual(self.read("keyvaults", self.world["vaults"][0]["name"], "keys_error"),
				 "")

	def test_versions_and_eligibility(self):
		v0 = self.world["vaults"][0]
		want = {
			"dbx-key-2048": "yes\n",
			"dbx-key-3072": "yes\n",
			"dbx-key-ec": "no: EC key (Data Box needs RSA or RSA-HSM); "
				      "key_ops lacks wrapKey and unwrapKey\n",
			"dbx-key-disabled": "no: disabled\n",
			"dbx-key-1024": "no: RSA of 1024 bits (Data Box needs at least 2048)\n",
			"dbx-key-expired": "no: expired at %s\n" %
					   time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(NOW - 86400)),
			"dbx-key-nowrap": "no: key_ops lacks wrapKey and unwrapKey\n",
		}
		keys = self.p("keyvaults", v0["name"], "keys")
		made = {"made-here", "ttl-made"}  # made by the tests below, when they ran first
		self.assertEqual(sorted(set(os.listdir(keys)) - made),
				 sorted(k["name"] for k in v0["keys"]))
		for k in v0["keys"]:
			vers = sorted(x["version"] for x in k["versions"])
			self.assertEqual(sorted(os.listdir(os.path.join(keys, k["name"], "versions"))),
					 vers, k["name"])
			last = k["versions"][-1]
			d = (keys, k["name"], "versions", last["version"])
			self.assertEqual(self.read(*d, "url"), "https://%s.vault.azure.net/keys/%s/%s\n"
					 % (v0["name"], k["name"], last["version"]))
			self.assertEqual(self.read(*d, "eligible"), want[k["name"]], k["name"])
			self.assertEqual(self.read(*d, "kty"), last["kty"] + "\n")
			if last["kty"].startswith("RSA"):
				self.assertEqual(self.read(*d, "size"), "%d\n" % last["key_size"])
			self.assertEqual(self.read(*d, "enabled"),
					 "no\n" if last.get("enabled") is False else "yes\n")
			self.assertEqual(self.read(*d, "expires") != "", bool(last.get("exp")))
		# a vault without purge protection makes every key ineligible
		weak = [v for v in self.world["vaults"] if "nopurge" in v["name"]][0]
		k = weak["keys"][0]
		self.assertEqual(self.read("keyvaults", weak["name"], "keys", k["name"], "versions",
					   k["versions"][-1]["version"], "eligible"),
				 "no: purge protection off\n")

	def test_version_get_is_cached(self):
		v0 = self.world["vaults"][0]
		k = v0["keys"][1]
		ver = k["versions"][-1]["version"]
		d = ("keyvaults", v0["name"], "keys", k["name"], "versions", ver)
		host = "%s.vault.azure.net" % v0["name"]
		path = "/keys/%s/%s" % (k["name"], ver)
		self.read(*d, "kty")
		self.emu.reset_counters()
		for f in ("kty", "size", "eligible", "kty"):
			self.read(*d, f)
		self.assertEqual(self.emu.path_count("GET", path, host=host), 0,
				 "a version read within cache_ttl asked Key Vault again")

	def test_lists_follow_cache_ttl(self):
		"""Past cache_ttl a list is asked for again, and a key made meanwhile shows."""
		v0 = self.world["vaults"][0]
		host = "%s.vault.azure.net" % v0["name"]
		m = harness.Mount(self.emu, cache_ttl=1).start()
		try:
			keys = m.p("keyvaults", v0["name"], "keys")
			before = set(os.listdir(keys))
			self.emu.reset_counters()
			os.listdir(keys)
			self.assertEqual(self.emu.path_count("GET", "/keys", host=host), 0)
			time.sleep(1.2)
			os.listdir(keys)
			pages = -(-len(before) // 2)  # the emulator pages by 2
			self.assertEqual(self.emu.path_count("GET", "/keys", host=host), pages)
			with open(self.p("keyvaults", v0["name"], "new_key"), "w") as f:
				f.write("ttl-made\n")  # through the other mount
			time.sleep(1.2)
			self.assertEqual(set(os.listdir(keys)) - before, {"ttl-made"})
		finally:
			m.stop()

	def test_identities(self):
		for uai in self.world["identities"]:
			sub, rg, name = uai["id"].split("/")[2], uai["id"].split("/")[4], uai["name"]
			d = ("identities", sub, rg, name)
			self.assertEqual(sorted(os.listdir(self.p(*d))),
					 ["client_id", "id", "principal_id"])
			self.assertEqual(self.read(*d, "id"), uai["id"] + "\n")
			self.assertEqual(self.read(*d, "principal_id"), uai["principalId"] + "\n")
			self.assertEqual(self.read(*d, "client_id"), uai["clientId"] + "\n")
		self.assertEqual(sorted(os.listdir(self.p("identities"))),
				 sorted(s["subscriptionId"] for s in self.world["subscriptions"]))
		self.expect_errno(errno.ENOENT, os.stat, self.p("identities", "nope"))

	def test_by_name(self):
		subs = self.world["subscriptions"]
		want = {subs[0]["displayName"]: subs[0]["subscriptionId"]}
		for s in subs[1:]:
			want["Team_Keys~" + s["subscriptionId"]] = s["subscriptionId"]
		self.assertEqual(sorted(os.listdir(self.p("by-name"))), sorted(want))
		for name, sid in want.items():
			link = self.p("by-name", name)
			self.assertTrue(os.path.islink(link))
			self.assertEqual(os.readlink(link), "../" + sid)
			self.assertEqual(sorted(os.listdir(link)), sorted(os.listdir(self.p(sid))))

	def test_subscription_option_takes_names(self):
		subs = self.world["subscriptions"]
		m = harness.Mount(self.emu, extra=("subscription=%s" % subs[0]["displayName"],)).start()
		try:
			self.assertEqual(os.listdir(m.path), [subs[0]["subscriptionId"]])
		finally:
			m.stop()
		for name, why in (("Team/Keys", "ambiguous"), ("No Such Name", "no subscription")):
			m = harness.Mount(self.emu, extra=("subscription=" + name,))
			try:
				with self.assertRaises(AssertionError):
					m.start()
				self.assertIn(why, m.stderr())
			finally:
				m.stop()

	def test_create_key_and_version(self):
		v0 = self.world["vaults"][0]["name"]
		d = self.p("keyvaults", v0)
		self.assertEqual(os.stat(os.path.join(d, "new_key")).st_mode & 0o777, 0o200)
		self.write(os.path.join(d, "new_key"), "made-here 3072\n")
		self.assertIn("made-here", os.listdir(os.path.join(d, "keys")))
		vers = os.path.join(d, "keys", "made-here", "versions")
		(first,) = os.listdir(vers)
		self.assertEqual(self.read(vers, first, "kty"), "RSA\n")
		self.assertEqual(self.read(vers, first, "size"), "3072\n")
		self.assertEqual(self.read(vers, first, "eligible"), "yes\n")
		self.write(os.path.join(d, "keys", "made-here", "new_version"), "\n")
		self.assertEqual(len(os.listdir(vers)), 2)
		second = [v for v in os.listdir(vers) if v != first][0]
		self.assertEqual(self.read(vers, second, "size"), "%d\n" % 3072)
		self.expect_errno(errno.EEXIST, self.write, os.path.join(d, "new_key"), "made-here\n")
		self.expect_errno(errno.EINVAL, self.write, os.path.join(d, "new_key"), "bad_name\n")
		self.expect_errno(errno.EINVAL, self.write, os.path.join(d, "new_key"), "ok-name 1024\n")
		weak = [v for v in self.world["vaults"] if "nopurge" in v["name"]][0]["name"]
		self.expect_errno(errno.EACCES, self.write, self.p("keyvaults", weak, "new_key"),
				  "other\n")
		self.expect_errno(errno.EACCES, self.write, os.path.join(d, "id"), "x\n")

	def test_url_is_what_key_url_takes(self):
		"""The walk-through: pick an eligible version, write its url to an
		order whose identity the vault already grants."""
		v0 = self.world["vaults"][0]
		sub0 = self.world["subscriptions"][0]["subscriptionId"]
		jobs = [j for j in self.world["jobs"]
			if j["id"].split("/")[2] == sub0 and
			j["properties"]["details"].get("keyEncryptionKey", {}).get("kekType") ==
			"CustomerManaged" and
			j["properties"]["details"]["keyEncryptionKey"].get("identityProperties", {})
			.get("type") == "SystemAssigned"]
		if not jobs:
			self.skipTest("the world has no system-assigned customer-managed order here")
		sub, rg, name = harness.split_job_id(jobs[0]["id"])
		k = v0["keys"][1]
		url = self.read("keyvaults", v0["name"], "keys", k["name"], "versions",
				k["versions"][-1]["version"], "url")
		self.write(self.p(sub, rg, name, "key_url"), url)
		self.assertEqual(self.read(sub, rg, name, "key_url"), url)


if __name__ == "__main__":
	harness.main()
