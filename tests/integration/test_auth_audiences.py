"""Tokens are kept per audience: a customer-managed key written through the
mount needs ARM and Key Vault (preflight), and each source gets one token
for each audience, https://management.azure.com and https://vault.azure.net,
from the same identity: the environment's secret (two client_credentials
grants with the two scopes), managed identity over IMDS (two resources),
and the Azure CLI (two az runs with the two --resource values)."""

import os

import authtest
import harness
import writes


class Audiences(authtest.AuthTest, writes.WriteWorld):
	"""The write helpers of writes.py, but a mount per test and per source."""

	@classmethod
	def setUpClass(cls):
		cls.world = cls.make_world()
		cls.emu = harness.Emulator(cls.world).start()
		cls.learn_world()

	@classmethod
	def tearDownClass(cls):
		cls.emu.stop()

	def start_mount(self, credential, env, imds="closed"):
		"""A mount with the write tests' options, started after the log was reset."""
		m = self.mount(credential, env, imds=imds, cache_ttl=0, timeout=30, extra=("lro_poll=0.05",))
		self.emu.reset_log()
		self.stats0 = authtest.token_stats(self.emu)
		self.mnt = m.start()
		return m

	def write_cmk(self):
		"""Enable a customer-managed key on a fresh order; the token stats delta
		since before the mount (which gets its ARM token as it starts)."""
		_, _, _, d = self.new_order("mm-system")
		url = self.key_url("dbx-key-2048")
		before = self.stats0
		p = writes.echo_to(os.path.join(d, "key_url"), url)
		self.assertEqual(p.returncode, 0, "%s; log: %s" % (p.stderr, self.mnt.stderr()[-1500:]))
		self.assertEqual(writes.read(os.path.join(d, "key_url")), url + "\n")
		kv = [r for r in self.emu.requests() if r["service"] == "keyvault"]
		self.assertTrue(kv, "the write sent no Key Vault preflight")
		self.assertTrue(all(r["status"] == 200 for r in kv), kv)
		after = authtest.token_stats(self.emu)
		return {k: authtest.stats_delta(before, after, k)
			for k in ("by_audience", "by_credential")}

	def assert_two_audiences(self, delta, credential_kind):
		aud = {k.rstrip("/"): v for k, v in delta["by_audience"].items()}
		harness.log("%s: %s" % (credential_kind, delta))
		self.assertEqual(aud, {"https://management.azure.com": 1, "https://vault.azure.net": 1})
		self.assertEqual(delta["by_credential"], {credential_kind: 2})

	def test_env_secret(self):
		self.start_mount("env", authtest.secret_env(self.world["clients"][0]))
		self.assert_two_audiences(self.write_cmk(), "client_secret")
		scopes = sorted(r["scope"] for r in authtest.token_requests(self.emu))
		self.assertEqual(scopes, ["https://management.azure.com/.default",
					  "https://vault.azure.net/.default"])

	def test_managed_identity(self):
		mi = [i for i in self.world["managed_identities"] if i["system"]][0]
		# The identity may read the vault's keys (as an access policy would allow).
		self.grant(mi["principal_id"], perms=("get", "list"))
		self.start_mount("msi", {}, imds="emu")
		self.assert_two_audiences(self.write_cmk(), "imds")
		resources = sorted(r["scope"] for r in authtest.token_requests(self.emu)
				   if r.get("grant_type"))
		self.assertEqual(resources, ["https://management.azure.com", "https://vault.azure.net"])

	def test_azure_cli(self):
		az = self.fake_az()
		self.start_mount("cli", {"PATH": az.path()})
		delta = self.write_cmk()
		# The stand-in's own logins are the only token requests.
		self.assert_two_audiences(delta, "client_secret")
		self.assertEqual({r["user_agent"] for r in authtest.token_requests(self.emu)}, {"fake-az/1.0"})
		res = sorted(c["argv"][c["argv"].index("--resource") + 1] for c in az.calls())
		self.assertEqual(res, ["https://management.azure.com", "https://vault.azure.net"])


if __name__ == "__main__":
	harness.main()
