"""Tokens and secrets stay in memory: through whole debug sessions (-d -f)
that fetch, use and renew tokens with the environment's client secret and
with the Azure CLI, none of the secrets (client secret, App Service identity
header) and none of the tokens (every token the stand-in az handed over,
any emulator-issued JWT, recognised by its fixed header) appears in the
captured stderr, in any file name or file content of the mounted tree
(errors files included), in the command line or environment of the az
child, in databoxfs's own command line, or in a file under its HOME."""

import json
import os
import re

import authtest
import harness

SECRET_VARS = ("AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PASSWORD", "IDENTITY_HEADER",
	       "MSI_SECRET")


class Hygiene(authtest.AuthTest):
	SEED = 59
	ORDERS = 4

	@classmethod
	def class_world(cls):
		world = super().class_world()
		# One order with a failure, so an errors file has content to check.
		props = world["jobs"][1]["properties"]
		props["error"] = {"code": "SsemUserErrorEncryptionKeyDisabled", "target": "KeyEncryptionKey",
				  "message": "The key is disabled.", "details": [], "additionalInfo": []}
		return world

	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		cls.secret = cls.client["client_secret"]
		cls.idh = cls.world["identity_header"]

	def setUp(self):
		super().setUp()
		# A token of our own, for the emulator's fixed JWT header segment.
		self.az = self.fake_az()

	def needles(self, tokens):
		"""(name, bytes) pairs that must appear nowhere."""
		out = [("client secret", self.secret), ("identity header", self.idh)]
		for i, t in enumerate(tokens):
			head, payload, sig = t.split(".")
			out += [("token %d" % i, t), ("token %d payload" % i, payload[:40]),
				("token %d signature" % i, sig[:40])]
			out.append(("emulator JWT header", head))
		return [(n, v.encode()) for n, v in out]

	def assert_clean(self, where, data, needles):
		for name, v in needles:
			self.assertNotIn(v, data, "%s found in %s" % (name, where))
		text = data.decode(errors="replace")
		self.assertIsNone(authtest.JWT_RE.search(text), "a JWT in %s" % where)
		self.assertIsNone(re.search(r"Bearer\s+[A-Za-z0-9._~+/=-]{8,}", text),
				  "a bearer token in %s" % where)

	def walk_tree(self, m):
		"""{relative path: content} of every file, and every name, of the mount."""
		contents = {}
		names = []
		for root, dirs, files in os.walk(m.path):
			names += dirs + files
			for f in files:
				p = os.path.join(root, f)
				contents[os.path.relpath(p, m.path)] = harness.cat(self, p)
		return contents, names

	def session(self, credential, env):
		"""A -d -f mount that reads everything, has its token killed, reads
		everything again; returns (mount, tree contents, names, cmdline)."""
		m = self.mount(credential, env, debug=True, cache_ttl=0)
		m.start()
		with open("/proc/%d/cmdline" % m.proc.pid, "rb") as f:
			cmdline = f.read()
		contents, names = self.walk_tree(m)
		self.assertGreaterEqual(sum(1 for k in contents if k.endswith("/errors")), 4)
		self.assertTrue(any(contents[k] for k in contents if k.endswith("/errors")),
				"no errors file has content")
		self.emu.admin("POST", "/admin/tokens/expire", {})
		contents2, names2 = self.walk_tree(m)
		self.assertEqual(contents, contents2)
		m.unmount()
		self.assertIsNotNone(m.wait_exit(10), "databoxfs did not exit")
		home = {}
		for root, _, files in os.walk(m.tmp):
			for f in files:
				p = os.path.join(root, f)
				if p != m.stderr_path:
					with open(p, "rb") as fh:
						home[p] = fh.read()
		return m, contents, names + names2, cmdline, home

	def check_session(self, m, contents, names, cmdline, home, tokens, extra=()):
		needles = self.needles(tokens) + list(extra)
		err = m.stderr().encode()
		self.assertGreater(len(err), 2000, "the debug log is (almost) empty")
		self.assert_clean("the -d stderr", err, needles)
		for path, data in contents.items():
			self.assert_clean("the mounted file %s" % path, data, needles)
		self.assert_clean("the mounted tree's names", "\n".join(names).encode(), needles)
		self.assert_clean("databoxfs's /proc/PID/cmdline", cmdline, needles)
		for path, data in home.items():
			self.assert_clean("%s (under databoxfs's HOME)" % path, data, needles)
		return err

	def test_env_secret_session(self):
		env = authtest.secret_env(self.client)
		self.emu.reset_log()
		m, contents, names, cmdline, home = self.session("env", env)
		# The session did fetch, use and renew tokens.
		toks = [r for r in authtest.token_requests(self.emu) if r["user_agent"].startswith("databoxfs/")]
		self.assertGreaterEqual(len(toks), 2, "no renewal happened")
		# Our own token, from the same app: its header is the emulator's fixed one.
		harness.run([os.path.join(self.az.bin, "az"), "account", "get-access-token", "--resource",
			     "https://management.azure.com"], timeout=30, check=True)
		self.check_session(m, contents, names, cmdline, home, self.az.tokens())
		harness.log("env session: %d files, %d bytes of log, clean" % (len(contents), len(m.stderr())))

	def test_cli_session(self):
		env = {"PATH": self.az.path(), "AZURE_TENANT_ID": self.client["tenant_id"],
		       # Other sources' secrets in the environment must not reach az.
		       "AZURE_CLIENT_SECRET": self.secret, "IDENTITY_HEADER": self.idh,
		       "AZURE_CLIENT_CERTIFICATE_PASSWORD": "pw-" + self.secret, "MSI_SECRET": "ms-" + self.idh}
		m, contents, names, cmdline, home = self.session("cli", env)
		calls = self.az.calls()
		tokens = self.az.tokens()
		self.assertGreaterEqual(len(calls), 2, "az ran %d times: no renewal" % len(calls))
		self.assertEqual(len(tokens), len(calls))
		needles = self.needles(tokens) + [("certificate password", ("pw-" + self.secret).encode()),
						   ("MSI secret", ("ms-" + self.idh).encode())]
		self.check_session(m, contents, names, cmdline, home, tokens, needles[-2:])
		for c in calls:
			for v in SECRET_VARS:
				self.assertNotIn(v, c["env_names"], "az inherited %s" % v)
			self.assertEqual(c["env_names"].count("AZURE_TENANT_ID"), 1)
		raw = self.az.raw()
		self.assertEqual(len(raw), 2 * len(calls))
		for name, data in raw.items():
			self.assert_clean("az's /proc/self/%s (%s)" % (name.split(".")[1], name), data, needles)
		for c in calls:
			self.assertNotIn("Bearer", json.dumps(c["argv"]))
		harness.log("cli session: %d az runs, %d files, clean" % (len(calls), len(contents)))


if __name__ == "__main__":
	harness.main()
