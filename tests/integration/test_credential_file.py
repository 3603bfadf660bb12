"""-o credential_file=PATH: the credential's variables from a file, so that
an fstab line or a systemd unit carries no secret (the man page,
docs/databoxfs.8, "CREDENTIAL FILE").

A mount whose environment holds no client secret reads one from a 0600
file and serves the tree; the file's values win over the environment's; a
file that group or others may read, that belongs to someone else, or that
has a malformed line stops the mount before it mounts, with exit status 1
and a message that names the file and line and never the secret."""

import os
import unittest

import harness


class CredentialFile(harness.Cleanup, unittest.TestCase):
	@classmethod
	def setUpClass(cls):
		cls.world = harness.gen_world(orders=3, seed=71)
		cls.emu = harness.Emulator(cls.world).start()
		cls.client = cls.emu.client()
		job = cls.world["jobs"][0]
		cls.order = harness.split_job_id(job["id"])
		cls.status = job["properties"]["status"] + "\n"

	@classmethod
	def tearDownClass(cls):
		cls.emu.stop()

	def write(self, name, text, mode=0o600):
		path = os.path.join(self.tmp, name)
		fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
		with os.fdopen(fd, "w") as f:
			f.write(text)
		os.chmod(path, mode)
		return path

	def secret_file(self, mode=0o600, secret=None):
		c = self.client
		return self.write("databox.env", "# the emulator's service principal\n"
				  "AZURE_TENANT_ID=%s\nAZURE_CLIENT_ID=%s\n"
				  "AZURE_CLIENT_SECRET='%s'\n" % (c["tenant_id"], c["client_id"],
								  secret or c["client_secret"]), mode)

	def mount(self, path, debug=False, **env):
		m = harness.Mount(self.emu, extra=["credential_file=%s" % path], debug=debug)
		for k in ("AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET"):
			del m.env[k]
		m.env.update(env)
		return m

	def refused(self, path, want):
		"""The mount exits 1 before mounting, saying want, never the secret."""
		m = self.mount(path)
		p = harness.run(m.argv, env=m.env, timeout=60)
		self.assertEqual(p.returncode, 1, p.stderr)
		self.assertIn(want, p.stderr)
		self.assertNotIn(self.client["client_secret"], p.stderr + p.stdout)
		self.assertFalse(harness.is_mounted(m.path))
		m.stop()
		return p.stderr

	def test_secret_from_file(self):
		"""No AZURE_* in the environment at all: the file alone gets the
		token, the tree reads, and neither the debug log nor the mount's
		command line and environment hold the secret."""
		m = self.track(self.mount(self.secret_file(), debug=True)).start()
		self.assertEqual(harness.cat(self, m.p(*self.order, "status")).decode(), self.status)
		secret = self.client["client_secret"]
		self.assertNotIn(secret, m.stderr())
		for name in ("cmdline", "environ"):
			with open("/proc/%d/%s" % (m.proc.pid, name), "rb") as f:
				self.assertNotIn(secret.encode(), f.read(), name)

	def test_file_wins_over_environment(self):
		"""A stale secret in the environment is not used: the file's is."""
		m = self.track(self.mount(self.secret_file(), AZURE_TENANT_ID=self.client["tenant_id"],
					  AZURE_CLIENT_ID=self.client["client_id"],
					  AZURE_CLIENT_SECRET="stale-secret")).start()
		self.assertEqual(harness.cat(self, m.p(*self.order, "status")).decode(), self.status)

	def test_wrong_secret_in_file_is_used(self):
		"""And the other way round: a wrong secret in the file is the one
		sent (the environment's good one is not), so reads fail with Entra's
		refusal: the file really is what the chain reads."""
		m = self.track(self.mount(self.secret_file(secret="wrong-secret"),
					  AZURE_CLIENT_SECRET=self.client["client_secret"])).start()
		p = harness.run(["cat", m.p(*self.order, "status")], timeout=60)
		self.assertNotEqual(p.returncode, 0, "a read succeeded with the file's wrong secret")
		self.assertNotIn("wrong-secret", m.stderr())

	def test_mode_refused(self):
		for mode in (0o644, 0o640, 0o604):
			path = self.secret_file(mode=mode)
			err = self.refused(path, "mode 0%o lets group or others in" % mode)
			self.assertIn("chmod 600 %s" % path, err)
			os.unlink(path)

	def test_owner_refused(self):
		if os.getuid() != 0:
			self.skipTest("chown to another user needs root")
		path = self.secret_file()
		os.chown(path, 4242, 4242)
		self.refused(path, "owned by uid 4242; it must belong to the mounting user (uid 0) or root")

	def test_malformed_refused(self):
		secret = self.client["client_secret"]
		path = self.write("bad.env", "AZURE_TENANT_ID=%s\n\nAZURE_CLIENT_SECRET %s\n" %
				  (self.client["tenant_id"], secret))
		self.refused(path, "credential_file=%s: line 3: expected NAME=VALUE" % path)
		path = self.write("typo.env", "AZURE_CLIENT_SECRTE=%s\n" % secret)
		self.refused(path, "line 1: AZURE_CLIENT_SECRTE is not a variable of the credential chain")

	def test_missing_refused(self):
		path = os.path.join(self.tmp, "missing.env")
		self.refused(path, "credential_file=%s: No such file or directory" % path)


if __name__ == "__main__":
	harness.main()
