"""credential=auto (the default) is DefaultAzureCredential's chain: with
several sources available at once it uses the first in the documented order
(environment, workload identity, managed identity, Azure CLI) and touches
none after it; taking the first away makes it use the next. With no source
available (empty environment, IMDS unreachable, no az on PATH) the mount
must not start: one message naming what each source lacked, exit status 1,
no mount left behind."""

import os
import shutil
import subprocess
import time

import authtest
import harness


class Chain(authtest.AuthTest):
	SEED = 43

	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		cls.client = dict(cls.client)
		# The same app registration also trusts a federated token, so the
		# environment and workload identity sources can share AZURE_CLIENT_ID.
		cls.client["federated_token"] = cls.world["clients"][2]["federated_token"]
		cls.emu.admin("POST", "/admin/clients", cls.client)

	def setUp(self):
		super().setUp()
		self.az = self.fake_az()

	def session(self, env, imds):
		"""Mount with credential=auto (the option as the default spells it),
		read the order, unmount; the credential kinds the emulator issued and
		the number of az runs."""
		self.emu.reset_log()
		before = authtest.token_stats(self.emu)
		runs = len(self.az.calls())
		m = self.mount("auto", env, imds=imds)
		m.start()
		authtest.read_order(self, m, self.job)
		m.stop()
		kinds = authtest.stats_delta(before, authtest.token_stats(self.emu), "by_credential")
		imds_reqs = [r for r in self.emu.requests() if r["service"] == "imds"]
		return kinds, len(self.az.calls()) - runs, imds_reqs

	def test_first_available_source_wins(self):
		tf = authtest.write_file(os.path.join(self.tmp, "sa-token"),
					 self.client["federated_token"])
		env = dict(authtest.secret_env(self.client), AZURE_FEDERATED_TOKEN_FILE=tf,
			   PATH=self.az.path())

		# Everything available: the environment's secret, nothing else touched.
		kinds, az_runs, imds = self.session(env, "emu")
		self.assertEqual(kinds, {"client_secret": 1})
		self.assertEqual((az_runs, imds), (0, []), "later sources were tried")

		# Without the secret: workload identity.
		del env["AZURE_CLIENT_SECRET"]
		kinds, az_runs, imds = self.session(env, "emu")
		self.assertEqual(kinds, {"client_assertion_federated": 1})
		self.assertEqual((az_runs, imds), (0, []), "later sources were tried")

		# Without the federated token (and the app's client id): managed identity.
		del env["AZURE_FEDERATED_TOKEN_FILE"]
		del env["AZURE_CLIENT_ID"]
		kinds, az_runs, imds = self.session(env, "emu")
		self.assertEqual(kinds, {"imds": 1})
		self.assertEqual(az_runs, 0, "az ran although IMDS gave a token")
		self.assertEqual(imds[-1]["status"], 200)

		# IMDS unreachable: the Azure CLI; databoxfs itself asked for no token.
		kinds, az_runs, imds = self.session(env, "closed")
		self.assertEqual(az_runs, 1)
		self.assertEqual(kinds, {"client_secret": 1}, "only the stand-in az's own login")
		self.assertEqual(imds, [])
		self.assertEqual([r["user_agent"] for r in authtest.token_requests(self.emu)],
				 ["fake-az/1.0"])

	def test_refused_secret_ends_the_chain(self):
		"""A configured source that Entra refuses is an error, not a reason to
		fall through to another identity (DefaultAzureCredential does the
		same): the read fails with Entra's reason, az never runs."""
		env = {"AZURE_TENANT_ID": self.client["tenant_id"],
		       "AZURE_CLIENT_ID": self.client["client_id"],
		       "AZURE_CLIENT_SECRET": "wrong-" + os.urandom(8).hex(),
		       "PATH": self.az.path()}
		self.emu.reset_log()
		m = self.mount("auto", env, imds="emu")
		m.start()
		p = harness.run(["cat", authtest.order_path(m, self.job)], timeout=60)
		self.assertNotEqual(p.returncode, 0, "read with a wrong secret succeeded")
		self.assertEqual(self.az.calls(), [], "fell through to az")
		self.assertEqual([r for r in self.emu.requests() if r["service"] == "imds"], [],
				 "fell through to managed identity")
		self.assertRegex(m.stderr(), r"env: invalid_client: AADSTS7000215")
		self.assertNotIn(env["AZURE_CLIENT_SECRET"], m.stderr())

	def test_client_id_not_a_managed_identity(self):
		"""AZURE_CLIENT_ID names no identity on this machine (IMDS answers
		400): managed identity is unavailable and the chain goes on to az."""
		env = {"AZURE_TENANT_ID": self.client["tenant_id"],
		       "AZURE_CLIENT_ID": self.client["client_id"], "PATH": self.az.path()}
		kinds, az_runs, imds = self.session(env, "emu")
		self.assertEqual(az_runs, 1)
		self.assertEqual([r["status"] for r in imds], [400, 400], "probe, then no such identity")
		self.assertIn("client_id=%s" % self.client["client_id"], imds[1]["query"])
		self.assertEqual([r["user_agent"] for r in authtest.token_requests(self.emu)
				  if r["service"] == "entra"], ["fake-az/1.0"])

	def test_silent_imds_probe_is_short(self):
		"""An IMDS endpoint that accepts connections but does not answer
		(the probe's 1 s bound) costs the chain about a second, then az."""
		env = {"AZURE_TENANT_ID": self.client["tenant_id"], "PATH": self.az.path()}
		self.emu.fault(service="imds", latency_ms=8000)
		try:
			self.emu.reset_log()
			m = self.mount("auto", env, imds="emu")
			m.start()
			t = time.monotonic()
			authtest.read_order(self, m, self.job)
			took = time.monotonic() - t
		finally:
			self.emu.clear_faults()
		harness.log("silent IMDS: first read after %.1fs" % took)
		self.assertEqual(len(self.az.calls()), 1, "az did not take over")
		self.assertLess(took, 5, "the IMDS probe was not short")

	def test_named_source_not_configured_refuses_to_start(self):
		c = self.client
		m = self.mount("env", {"AZURE_TENANT_ID": c["tenant_id"], "AZURE_CLIENT_ID": c["client_id"]})
		rc, err = authtest.start_refused(self, m)
		self.assertEqual(rc, 1)
		self.assertIn("env: AZURE_CLIENT_SECRET is not set", err)

	def test_unknown_credential_name_refuses_to_start(self):
		c = self.client
		m = self.mount("password", authtest.secret_env(c))
		rc, err = authtest.start_refused(self, m)
		self.assertEqual(rc, 1)
		self.assertIn("unknown credential 'password'", err)
		self.assertNotIn(c["client_secret"], err)

	def no_source_mount(self):
		self.assertIsNone(shutil.which("az", path=authtest.BASE_PATH),
				  "an az on %s spoils this test" % authtest.BASE_PATH)
		self.emu.reset_log()
		m = self.mount("auto", {}, imds="closed")
		return m

	def check_combined(self, err):
		lines = [l for l in err.splitlines() if "env:" in l]
		self.assertEqual(len(lines), 1, "not one combined message: %s" % err)
		self.assertIn("no credential", lines[0])
		for src in ("env:", "cert:", "workload:", "msi:", "cli:"):
			self.assertIn(src, lines[0], "the message does not say why %s is unusable" % src)
		self.assertIn("AZURE_CLIENT_SECRET", lines[0])
		self.assertIn("AZURE_FEDERATED_TOKEN_FILE", lines[0])
		self.assertIn("IMDS", lines[0])
		self.assertIn("az", lines[0].split("cli:")[1])

	def test_none_available_refuses_to_start(self):
		# The mount asks the chain for its ARM token before mounting
		# (fs/main.c probe_credential), so "no source" stops it at start.
		rc, err = authtest.start_refused(self, self.no_source_mount())
		harness.log("no source: exit %d: %s" % (rc, err.strip()))
		self.assertEqual(rc, 1)
		self.check_combined(err)
		self.assertEqual(authtest.arm_requests(self.emu), [])

	def test_none_available_message(self):
		"""Whenever it is given (at start, or at the first access of a mount
		that started anyway), the message names what each source lacked
		and the access fails with EACCES."""
		m = self.no_source_mount()
		with open(m.stderr_path, "w") as errf:
			m.proc = subprocess.Popen(m.argv, stdin=subprocess.DEVNULL, stdout=errf, stderr=errf,
						  env=m.env, preexec_fn=harness.die_with_parent)
		harness.wait_for(lambda: m.proc.poll() is not None or harness.is_mounted(m.path), 20,
				 "databoxfs to mount or exit")
		if harness.is_mounted(m.path):
			p = harness.run(["ls", m.path], timeout=60)
			self.assertNotEqual(p.returncode, 0, "listed without any credential")
			self.assertIn("Permission denied", p.stderr)
			m.unmount()
		m.wait_exit(10)
		self.check_combined(m.stderr())
		self.assertEqual(authtest.arm_requests(self.emu), [], "ARM was called without a token")


if __name__ == "__main__":
	harness.main()
