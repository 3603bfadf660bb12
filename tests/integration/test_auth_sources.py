"""Each credential source, picked with -o credential=NAME, mounts and reads
an order through a real mount against the emulator, and the emulator saw
the grant it should have: a client secret, a certificate-signed client
assertion, the federated (workload identity) assertion, an IMDS or App
Service managed identity request, or no token request from databoxfs at
all (the Azure CLI stand-in fetched the token), always for the ARM
audience. A certificate whose key belongs to another certificate refuses
to start the mount, with a clear message and exit status 1."""

import os
import re
import time
import urllib.parse

import authtest
import harness


class Sources(authtest.AuthTest):
	SEED = 41
	JOB = 1

	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		cls.tenant = cls.client["tenant_id"]

	def setUp(self):
		super().setUp()
		self.emu.reset_log()
		self.before = authtest.token_stats(self.emu)

	def read_and_check(self, m, grant, credential_kind):
		"""Mount m, read the order, then check what the emulator issued."""
		m.start()
		authtest.read_order(self, m, self.job)
		after = authtest.token_stats(self.emu)
		by_grant = authtest.stats_delta(self.before, after, "by_grant_type")
		by_cred = authtest.stats_delta(self.before, after, "by_credential")
		by_aud = authtest.stats_delta(self.before, after, "by_audience")
		harness.log("%s: grants %s, credentials %s, audiences %s" %
			    (re.search(r"credential=(\w+)", m.argv[-2]).group(1), by_grant, by_cred, by_aud))
		self.assertEqual(list(by_grant), [grant], "grant types issued: %s" % by_grant)
		self.assertEqual(list(by_cred), [credential_kind], "credentials used: %s" % by_cred)
		self.assertEqual(len(by_aud), 1, "audiences: %s" % by_aud)
		self.assertEqual(list(by_aud)[0].rstrip("/"), authtest.ARM_AUD.rstrip("/"),
				 "audience: %s" % by_aud)
		# One token served every ARM request of the session (cached).
		self.assertEqual(by_grant[grant], 1, "token requests: %s" % by_grant)
		arm = authtest.arm_requests(self.emu)
		self.assertTrue(arm, "no ARM request reached the emulator")
		self.assertEqual([r for r in arm if r["status"] != 200], [], "ARM refused a request")
		toks = authtest.token_requests(self.emu)
		if credential_kind == "imds":
			# The availability probe: no query, no Metadata header, answered 400.
			probe = toks.pop(0)
			self.assertEqual((probe["query"], probe["status"]), ("", 400), probe)
			self.assertNotIn("grant_type", probe)
		self.assertEqual(len(toks), 1, "token requests in the log: %s" % toks)
		self.assertEqual(toks[0]["status"], 200)
		self.assertTrue(toks[0]["user_agent"].startswith("databoxfs/"), toks[0])
		return toks[0]

	def assert_arm_token_request(self, tok):
		"""tok asked the tenant's v2.0 token endpoint for the ARM scope."""
		self.assertEqual(tok["scope"], "https://management.azure.com/.default")
		self.assertEqual(tok["path"], "/%s/oauth2/v2.0/token" % self.tenant)

	def env_ids(self, client=None):
		c = client or self.client
		return {"AZURE_TENANT_ID": c["tenant_id"], "AZURE_CLIENT_ID": c["client_id"]}

	def test_env_secret(self):
		env = authtest.secret_env(self.client)
		tok = self.read_and_check(self.mount("env", env), "client_credentials", "client_secret")
		self.assertEqual(tok["grant_type"], "client_credentials")
		self.assert_arm_token_request(tok)

	def cert_client(self):
		cert, key = authtest.make_cert(self.tmp, "app")
		app = authtest.register_client(self.emu, self.tenant, certificate_pem=cert)
		return app, cert, key

	def test_env_certificate(self):
		app, cert, key = self.cert_client()
		pem = authtest.write_file(os.path.join(self.tmp, "app.pem"), cert + key)
		env = self.env_ids(app)
		env["AZURE_CLIENT_CERTIFICATE_PATH"] = pem
		tok = self.read_and_check(self.mount("cert", env), "client_credentials",
					  "client_assertion_certificate")
		self.assert_arm_token_request(tok)

	def test_env_certificate_encrypted_key(self):
		password = "pw-" + os.urandom(8).hex()
		cert, key = authtest.make_cert(self.tmp, "enc", password)
		self.assertIn("ENCRYPTED", key)
		app = authtest.register_client(self.emu, self.tenant, certificate_pem=cert)
		pem = authtest.write_file(os.path.join(self.tmp, "enc.pem"), key + cert)
		env = self.env_ids(app)
		env["AZURE_CLIENT_CERTIFICATE_PATH"] = pem
		env["AZURE_CLIENT_CERTIFICATE_PASSWORD"] = password
		self.read_and_check(self.mount("cert", env), "client_credentials",
				    "client_assertion_certificate")
		self.assertNotIn(password, self.cleanup[-1].stderr())

	def test_env_certificate_wrong_password(self):
		password = "pw-" + os.urandom(8).hex()
		cert, key = authtest.make_cert(self.tmp, "enc", password)
		app = authtest.register_client(self.emu, self.tenant, certificate_pem=cert)
		pem = authtest.write_file(os.path.join(self.tmp, "enc.pem"), cert + key)
		env = self.env_ids(app)
		env["AZURE_CLIENT_CERTIFICATE_PATH"] = pem
		env["AZURE_CLIENT_CERTIFICATE_PASSWORD"] = "not-" + password
		rc, err = authtest.start_refused(self, self.mount("cert", env))
		harness.log("wrong password: exit %d: %s" % (rc, err.strip()))
		self.assertEqual(rc, 1)
		self.assertIn(pem, err)
		self.assertRegex(err, r"(?i)password|decrypt|private key")
		self.assertNotIn(password, err)
		self.assertNotIn("BEGIN", err)

	def test_env_secret_authority_host(self):
		"""AZURE_AUTHORITY_HOST overrides the authority (here the US
		Government login host, which the emulator also plays)."""
		env = authtest.secret_env(self.client)
		env["AZURE_AUTHORITY_HOST"] = "https://login.microsoftonline.us/"
		tok = self.read_and_check(self.mount("env", env), "client_credentials", "client_secret")
		self.assertEqual(tok["host"], "login.microsoftonline.us")

	def test_env_certificate_wrong_key(self):
		app, cert, _ = self.cert_client()
		_, other_key = authtest.make_cert(self.tmp, "other")
		pem = authtest.write_file(os.path.join(self.tmp, "wrong.pem"), cert + other_key)
		env = self.env_ids(app)
		env["AZURE_CLIENT_CERTIFICATE_PATH"] = pem
		rc, err = authtest.start_refused(self, self.mount("cert", env))
		harness.log("wrong key: exit %d: %s" % (rc, err.strip()))
		self.assertEqual(rc, 1, "exit status; stderr: %s" % err)
		self.assertRegex(err, r"(?i)key.*(certificate|match)|(certificate|match).*key",
				 "the message does not say the key and certificate disagree")
		self.assertIn(pem, err, "the message does not name the file")
		self.assertLessEqual(len(err.strip().splitlines()), 2, "not one clear message: %s" % err)
		self.assertNotIn("BEGIN", err, "key material in the message")
		self.assertEqual(authtest.token_requests(self.emu), [], "a token was requested")

	def test_workload_identity(self):
		app = self.world["clients"][2]
		self.assertIn("federated_token", app, "gen-world's third client is the workload app")
		tf = authtest.write_file(os.path.join(self.tmp, "sa-token"), app["federated_token"] + "\n")
		env = self.env_ids(app)
		env["AZURE_FEDERATED_TOKEN_FILE"] = tf
		tok = self.read_and_check(self.mount("workload", env), "client_credentials",
					  "client_assertion_federated")
		self.assert_arm_token_request(tok)

	def test_workload_token_file_rotation(self):
		"""The kubelet swaps the token file: the next token request sends
		the new content (the app now trusts only the new token)."""
		old, new = "fed-A-" + os.urandom(16).hex(), "fed-B-" + os.urandom(16).hex()
		app = authtest.register_client(self.emu, self.tenant, federated_token=old)
		tf = os.path.join(self.tmp, "sa-token")
		authtest.write_file(tf, old)
		env = self.env_ids(app)
		env["AZURE_FEDERATED_TOKEN_FILE"] = tf
		m = self.mount("workload", env, cache_ttl=0)
		m.start()
		path = authtest.order_path(m, self.job)
		want = (self.job["properties"]["status"] + "\n").encode()
		self.assertEqual(harness.cat(self, path), want)
		app["federated_token"] = new
		self.emu.admin("POST", "/admin/clients", app)
		authtest.write_file(tf + ".new", new)
		os.rename(tf + ".new", tf)
		self.emu.admin("POST", "/admin/tokens/expire", {})
		self.emu.reset_log()
		self.assertEqual(harness.cat(self, path), want, "the rotated token file was not re-read")
		toks = authtest.token_requests(self.emu)
		self.assertEqual([t["status"] for t in toks], [200], toks)
		self.assertNotIn(old, m.stderr())
		self.assertNotIn(new, m.stderr())

	def test_azure_cli_hangs(self):
		"""An az that never answers is killed (with its process group) after
		10 s; with no other source the mount refuses to start, promptly, with
		a message saying so (the mount asks for its ARM token before mounting)."""
		az = self.fake_az(mode="hang")
		m = self.mount("cli", {"PATH": az.path()}, timeout=30)
		t0 = time.monotonic()
		rc, err = authtest.start_refused(self, m, timeout=60)
		took = time.monotonic() - t0
		harness.log("hanging az: exit %d after %.1fs: %s" % (rc, took, err.strip()))
		self.assertEqual(rc, 1)
		self.assertGreater(took, 9, "az was not given its 10 s")
		self.assertLess(took, 25, "the start was not bounded by az's 10 s")
		self.assertRegex(err, r"cli: az did not answer within \d+ ms")
		for c in az.calls():
			for pid in (c["pid"], c["grandchild"]):
				def gone():
					try:
						with open("/proc/%d/stat" % pid) as f:
							return f.read().split(")")[1].split()[0] in ("Z", "X")
					except OSError:
						return True
				harness.wait_for(gone, 5, "az process %d to be killed" % pid)

	def imds_check(self, tok, client_id=None):
		self.assertEqual(tok["service"], "imds")
		self.assertEqual(tok["path"], "/metadata/identity/oauth2/token")
		q = dict(p.split("=", 1) for p in tok["query"].split("&"))
		self.assertEqual(q.get("api-version"), "2018-02-01")
		self.assertEqual(urllib.parse.unquote(q.get("resource", "")),
				 "https://management.azure.com")
		self.assertEqual(q.get("client_id"), client_id)

	def test_managed_identity_imds_system(self):
		# No AZURE_CLIENT_ID: the system-assigned identity.
		m = self.mount("msi", {}, imds="emu")
		tok = self.read_and_check(m, "managed_identity", "imds")
		self.imds_check(tok)

	def test_managed_identity_imds_user_assigned(self):
		uai = [i for i in self.world["managed_identities"] if not i["system"]][0]
		m = self.mount("msi", {"AZURE_CLIENT_ID": uai["client_id"]}, imds="emu")
		tok = self.read_and_check(m, "managed_identity", "imds")
		self.imds_check(tok, uai["client_id"])

	def test_managed_identity_app_service(self):
		env = {"IDENTITY_ENDPOINT": "http://127.0.0.1:%d/msi/token" % self.emu.imds_port,
		       "IDENTITY_HEADER": self.world["identity_header"]}
		tok = self.read_and_check(self.mount("msi", env, app_service=True),
					  "managed_identity", "app_service")
		self.assertEqual(tok["path"], "/msi/token")
		self.assertIn("api-version=2019-08-01", tok["query"])
		self.assertIn("resource=https%3A%2F%2Fmanagement.azure.com", tok["query"])
		err = self.cleanup[-1].stderr()
		self.assertNotIn(self.world["identity_header"], err)

	def test_managed_identity_app_service_wrong_header(self):
		wrong = "not-" + self.world["identity_header"]
		env = {"IDENTITY_ENDPOINT": "http://127.0.0.1:%d/msi/token" % self.emu.imds_port,
		       "IDENTITY_HEADER": wrong}
		m = self.mount("msi", env, app_service=True)
		m.start()
		p = harness.run(["cat", authtest.order_path(m, self.job)], timeout=60)
		self.assertNotEqual(p.returncode, 0, "read with a wrong identity header succeeded")
		self.assertIn("refused IDENTITY_HEADER", m.stderr())
		self.assertNotIn(wrong, m.stderr())
		self.assertEqual(authtest.arm_requests(self.emu), [])

	def test_azure_cli(self):
		az = self.fake_az()
		env = {"PATH": az.path(), "AZURE_TENANT_ID": self.tenant}
		m = self.mount("cli", env)
		m.start()
		authtest.read_order(self, m, self.job)
		calls = az.calls()
		self.assertEqual(len(calls), 1, "az runs: %s" % calls)
		c = calls[0]
		self.assertEqual(c["argv"], ["account", "get-access-token", "--output", "json",
					     "--resource", "https://management.azure.com",
					     "--tenant", self.tenant])
		self.assertEqual(c["exit"], 0)
		self.assertEqual(c["cwd"], "/")
		self.assertEqual(c["stdin"], "/dev/null")
		self.assertEqual(c["pgid"], c["pid"], "az does not run in its own process group")
		self.assertIn("AZURE_CORE_NO_COLOR", c["env_names"])
		# databoxfs itself asked Entra for nothing: the one token request is the stand-in's.
		toks = authtest.token_requests(self.emu)
		self.assertEqual(len(toks), 1, toks)
		self.assertEqual(toks[0]["user_agent"], "fake-az/1.0")
		after = authtest.token_stats(self.emu)
		self.assertEqual(after["total"] - self.before["total"], 1)
		arm = authtest.arm_requests(self.emu)
		self.assertTrue(arm)
		self.assertEqual([r for r in arm if r["status"] != 200], [])
		self.assertTrue(all(r["user_agent"].startswith("databoxfs/") for r in arm))

	def test_azure_cli_old_expires_on_local_time(self):
		"""An older az prints only expiresOn, a naive local time: read in
		the mount's time zone (here UTC-5:30), the token is fresh, so one
		az run serves every read (parsed as UTC it would look 5.5 h stale
		and az would run for every request)."""
		az = self.fake_az(mode="old")
		m = self.mount("cli", {"PATH": az.path(), "TZ": "XST+5:30"}, cache_ttl=0)
		m.start()
		for _ in range(5):
			authtest.read_order(self, m, self.job)
		calls = az.calls()
		self.assertNotIn("expires_on", calls[0]["stdout"])
		self.assertEqual(len(calls), 1, "az ran %d times: the token's expiry was misread" %
				 len(calls))

	def test_azure_cli_relative_path_entries_ignored(self):
		"""az is looked up on absolute PATH entries only: an az reached
		through a relative entry (from the daemon's working directory, "/")
		never runs."""
		az = self.fake_az()
		m = self.mount("cli", {"PATH": ":.:%s:%s" % (az.bin.lstrip("/"), authtest.BASE_PATH)})
		rc, err = authtest.start_refused(self, m)
		self.assertEqual(rc, 1)
		self.assertEqual(az.calls(), [], "databoxfs ran an az from a relative PATH entry")
		self.assertIn("cli: Azure CLI (az) not found on PATH", err)

	def test_azure_cli_option_like_tenant_refuses_to_start(self):
		m = self.mount("cli", {"AZURE_TENANT_ID": "--query=accessToken"})
		rc, err = authtest.start_refused(self, m)
		self.assertEqual(rc, 1)
		self.assertIn("cli: AZURE_TENANT_ID", err)

	def test_azure_cli_logged_out(self):
		"""az that is not logged in: the mount refuses to start and says to
		run az login."""
		az = self.fake_az(mode="logged_out")
		m = self.mount("cli", {"PATH": az.path()})
		rc, err = authtest.start_refused(self, m)
		self.assertEqual(rc, 1)
		self.assertIn("az login", err, "the message does not say to run az login")
		self.assertGreaterEqual(len(az.calls()), 1)


if __name__ == "__main__":
	harness.main()
