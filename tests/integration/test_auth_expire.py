"""A token that ARM stops accepting before its time (expired early or
revoked, as after a key rollover) is recovered from on the next request,
for a source that posts to Entra (env secret), the managed identity (IMDS)
and the Azure CLI: the read succeeds, and the emulator's log shows the 401,
then one new token, then success."""

import subprocess

import authtest
import harness


class Expire(authtest.AuthTest):
	SEED = 53
	JOB = 2

	def recovers(self, m, how, token_ua="databoxfs/", az=None):
		"""Mount m (cache_ttl=0), read, kill the token with admin `how`, read again."""
		m.start()
		path = authtest.order_path(m, self.job, "status")
		want = (self.job["properties"]["status"] + "\n").encode()
		self.assertEqual(harness.cat(self, path), want)
		self.emu.reset_log()
		before = authtest.token_stats(self.emu)
		az_before = len(az.calls()) if az else 0
		self.emu.admin("POST", "/admin/tokens/" + how, {})
		self.assertEqual(harness.cat(self, path), want, "the read after %s failed" % how)
		self.assertEqual(harness.cat(self, path), want)
		log = [r for r in self.emu.requests() if r["service"] != "keyvault"]
		seq = [(r["service"], r["status"]) for r in log]
		harness.log("%s after %s: %s" % (m.argv[-2].split("credential=")[1].split(",")[0], how, seq))
		first_401 = next(i for i, r in enumerate(log) if r["status"] == 401)
		toks = [i for i, r in enumerate(log) if r["service"] in ("entra", "imds") and
			r.get("grant_type")]
		self.assertEqual(log[first_401]["service"], "arm")
		self.assertEqual([r for r in log if r["status"] == 401], [log[first_401]],
				 "more than one 401: %s" % seq)
		self.assertEqual(len(toks), 1, "expected exactly one new token: %s" % seq)
		self.assertGreater(toks[0], first_401, "the new token came before the 401: %s" % seq)
		self.assertEqual(log[toks[0]]["status"], 200)
		self.assertTrue(log[toks[0]]["user_agent"].startswith(token_ua), log[toks[0]])
		later = [r for r in log[toks[0] + 1:] if r["service"] == "arm"]
		self.assertTrue(later, "nothing sent after the new token: %s" % seq)
		self.assertTrue(all(r["status"] == 200 for r in later), seq)
		self.assertEqual(authtest.token_stats(self.emu)["total"] - before["total"], 1)
		if az:
			self.assertEqual(len(az.calls()) - az_before, 1, "az runs")
		# Key Vault is untouched by a read.
		self.assertEqual([r for r in self.emu.requests() if r["service"] == "keyvault"], [])

	def env_mount(self, credential="env"):
		return self.mount(credential, authtest.secret_env(self.client), cache_ttl=0)

	def test_env_expired(self):
		self.recovers(self.env_mount(), "expire")

	def test_env_revoked(self):
		self.recovers(self.env_mount(), "revoke")

	def test_msi_expired(self):
		self.recovers(self.mount("msi", {}, imds="emu", cache_ttl=0), "expire")

	def test_cli_expired(self):
		az = self.fake_az()
		m = self.mount("cli", {"PATH": az.path()}, cache_ttl=0)
		self.recovers(m, "expire", token_ua="fake-az/", az=az)

	def test_concurrent_readers_share_one_token(self):
		"""Many readers at once, at first use and after the token died:
		one token request each time (one refresh per scope at a time)."""
		m = self.env_mount()
		paths = []
		for job in self.world["jobs"]:
			for f in ("status", "encryption_type", "key_url", "identity", "errors"):
				paths.append(authtest.order_path(m, job, f))
		self.emu.reset_log()
		m.start()
		for round_ in ("first use", "after expire"):
			if round_ == "after expire":
				self.emu.reset_log()
				self.emu.admin("POST", "/admin/tokens/expire", {})
			procs = [subprocess.Popen(["cat", p], stdout=subprocess.DEVNULL,
						  stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
				 for p in paths * 2]
			errs = []
			for p in procs:
				_, e = p.communicate(timeout=60)
				if p.returncode != 0:
					errs.append(e.decode(errors="replace").strip())
			log = self.emu.requests()
			toks = [r for r in log if r["service"] == "entra"]
			unauth = [r for r in log if r["status"] == 401]
			harness.log("%s: %d readers, %d 401s, %d token requests" %
				    (round_, len(procs), len(unauth), len(toks)))
			self.assertEqual(errs, [], round_)
			self.assertEqual(len(toks), 1, "%s: token requests %s" % (round_, toks))

	def test_auto_revoked(self):
		"""Through the chain (the default), the chosen source renews."""
		self.recovers(self.env_mount("auto"), "revoke")


if __name__ == "__main__":
	harness.main()
