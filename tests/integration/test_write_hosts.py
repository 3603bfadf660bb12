"""No request ever reaches a host that failed validation (docs/formats.md, "Validation").

Key URLs on foreign hosts, plain http, a look-alike suffix, user info that
hides a host, and a Managed HSM host are refused with EINVAL; the emulator
saw no request for those hosts and no PATCH; and a trap catches anything
the emulator would not see: the mount sends every one of those hosts (on
443 and 80) to a TCP listener of this test (connect_to), which must accept
no connection at all."""

import os
import socket

import harness
import writes

TRAPPED = ["evil.example.com", "myvault.vault.azure.net.evil.com",
	   "myhsm.managedhsm.azure.net", "myvault.vault.azure.net"]


class ForeignHosts(writes.WriteWorld):

	@classmethod
	def setUpClass(cls):
		cls.trap = writes.Trap()
		cls.world = cls.make_world()
		cls.emu = harness.Emulator(cls.world).start()
		try:
			# Specific rules first (curl takes the first match), then the emulator.
			rules = []
			for h in TRAPPED:
				for port in (443, 80):
					if h == "myvault.vault.azure.net" and port == 443:
						continue  # a valid vault host (not in the world): emulator
					rules.append("%s:%d:127.0.0.1:%d" % (h, port, cls.trap.port))
			rules.append("::127.0.0.1:%d" % cls.emu.https_port)
			cls.mnt = harness.Mount(cls.emu, connect_to=rules, **cls.MOUNT).start()
		except BaseException:
			cls.emu.stop()
			cls.trap.stop()
			raise
		cls.learn_world()

	@classmethod
	def tearDownClass(cls):
		try:
			super().tearDownClass()
		finally:
			cls.trap.stop()

	def refused(self, url, code):
		*_, d = self.new_order("cm-system")
		_, reqs = self.refused_write(d, "key_url", url, code)
		self.assertFalse([r for r in reqs if r["service"] == "keyvault"], reqs)
		bad = [r for r in reqs if any(h in r["host"] for h in TRAPPED)]
		self.assertEqual(bad, [], "a request reached a refused host")
		self.assertEqual(self.trap.accepted, 0, "the mount connected to a refused host")

	def test_foreign_host(self):
		self.refused("https://evil.example.com/keys/k", "SsemUserErrorKeyVaultUrlInvalidHost")

	def test_lookalike_suffix(self):
		self.refused("https://myvault.vault.azure.net.evil.com/keys/k",
			     "SsemUserErrorKeyVaultUrlInvalidHost")

	def test_plain_http(self):
		self.refused("http://myvault.vault.azure.net/keys/k",
			     "SsemUserErrorKeyVaultUrlWithInvalidScheme")

	def test_managed_hsm(self):
		self.refused("https://myhsm.managedhsm.azure.net/keys/k",
			     "SsemUserErrorKeyVaultUrlInvalidHost")

	def test_user_info_hiding_a_host(self):
		self.refused("https://myvault.vault.azure.net@evil.example.com/keys/k",
			     "SsemUserErrorInvalidKeyVaultUrl")

	def test_encryption_json_foreign_host(self):
		*_, d = self.new_order("cm-system")
		self.emu.reset_log()
		p = writes.echo_to(os.path.join(d, "encryption.json"),
				   '{"key_url": "https://evil.example.com/keys/k"}')
		self.assert_refused(p)
		self.assertEqual(writes.patches(self.emu.requests()), [])
		self.assertEqual(self.trap.accepted, 0)

	def test_trap_works(self):
		"""The trap is live: a connection to it is counted (so zero means zero)."""
		before = self.trap.accepted
		socket.create_connection(("127.0.0.1", self.trap.port), timeout=5).close()
		harness.wait_for(lambda: self.trap.accepted > before, 5, "the trap to count")
		self.trap.accepted = before


if __name__ == "__main__":
	writes.main()
