"""The order's own Ssem errors, as the service reports them at the start of
DataCopy, after something changed in Key Vault since the key was written
through the mount: the key version expires, the key is deleted, the vault
loses purge protection, the vault is deleted. Each time errors shows an
`order` block with the decoded row and the stage waiting for the customer;
and the documented remedies, applied through the mount (a new key version,
a key in a vault with purge protection), clear it.

Its own emulator: these tests delete keys and vaults."""

import os
import time

import writes


class DataCopyErrors(writes.WriteWorld):

	def order_with_own_key(self, key, sub=None, vault=None):
		"""A CMK order whose key (a fresh one, only its) was written through the mount."""
		vault = vault or self.vname
		sub_, rg, name, d = self.new_order("cm-system", sub=sub)
		r = self.emu.admin("POST", "/admin/vaults/%s/keys" % vault,
				   {"name": key, "kty": "RSA", "key_size": 2048})
		url = self.key_url(key, r["version"], vault=vault)
		p = writes.echo_to(os.path.join(d, "key_url"), url)
		self.assertEqual(p.returncode, 0, p.stderr)
		self.assert_no_last_write(d)
		return sub_, rg, name, d, r["version"]

	def assert_waiting(self, d, code):
		self.assert_block(d, code, source="order")
		text = writes.read(os.path.join(d, "errors"))
		self.assertIn("WaitingForCustomerActionForKek", text)
		self.assertEqual(writes.read(os.path.join(d, "status")), "DataCopy\n")

	def test_datacopy_EncryptionKeyExpired_then_new_version(self):
		sub, rg, name, d, ver = self.order_with_own_key("dc-expire")
		self.emu.admin("POST", "/admin/vaults/%s/keys/dc-expire" % self.vname,
			       {"version": ver, "exp": int(time.time()) - 60})
		self.assertEqual(self.advance(sub, rg, name)["error"],
				 "SsemUserErrorEncryptionKeyExpired")
		self.assert_waiting(d, "SsemUserErrorEncryptionKeyExpired")
		# The remedy: a usable key version, written through the mount.
		r = self.emu.admin("POST", "/admin/vaults/%s/keys" % self.vname,
				   {"name": "dc-expire", "kty": "RSA", "key_size": 2048})
		p = writes.echo_to(os.path.join(d, "key_url"),
				   self.key_url("dc-expire", r["version"]))
		self.assertEqual(p.returncode, 0, p.stderr)
		self.assertEqual(writes.read(os.path.join(d, "errors")), "")

	def test_datacopy_KeyDetailsNotFound(self):
		sub, rg, name, d, _ = self.order_with_own_key("dc-delete")
		self.emu.admin("DELETE", "/admin/vaults/%s/keys/dc-delete" % self.vname)
		self.assertEqual(self.advance(sub, rg, name)["error"],
				 "SsemUserErrorKeyDetailsNotFound")
		self.assert_waiting(d, "SsemUserErrorKeyDetailsNotFound")

	def test_datacopy_SoftDeleteAndPurgeProtectionNotEnabled(self):
		sub, rg, name, d, _ = self.order_with_own_key("dc-purge")
		self.emu.admin("POST", "/admin/vaults/%s" % self.vname, {"enablePurgeProtection": None})
		try:
			self.assertEqual(self.advance(sub, rg, name)["error"],
					 "SsemUserErrorSoftDeleteAndPurgeProtectionNotEnabled")
			self.assert_waiting(d, "SsemUserErrorSoftDeleteAndPurgeProtectionNotEnabled")
			# Writing a key of that vault now is refused before any PATCH.
			self.emu.reset_log()
			p = writes.echo_to(os.path.join(d, "key_url"), self.key_url("dbx-key-3072"))
			self.assert_refused(p)
			self.assertEqual(writes.patches(self.emu.requests()), [])
		finally:
			self.emu.admin("POST", "/admin/vaults/%s" % self.vname,
				       {"enablePurgeProtection": True})

	def test_datacopy_KeyVaultDetailsNotFound(self):
		"""The second subscription's vault is deleted (no other test here uses it)."""
		sub1 = self.world["subscriptions"][1]["subscriptionId"]
		v1 = self.vault_of(sub1)["name"]
		sub, rg, name, d, _ = self.order_with_own_key("dc-vault", sub=sub1, vault=v1)
		self.emu.admin("DELETE", "/admin/vaults/%s" % v1)
		self.assertEqual(self.advance(sub, rg, name)["error"],
				 "SsemUserErrorKeyVaultDetailsNotFound")
		self.assert_waiting(d, "SsemUserErrorKeyVaultDetailsNotFound")
		# The remedy (another vault): the first subscription's, through the mount.
		self.grant(writes.read(os.path.join(d, "principal_id")).strip())
		p = writes.echo_to(os.path.join(d, "key_url"), self.key_url("dbx-key-2048"))
		self.assertEqual(p.returncode, 0, p.stderr)
		self.assertEqual(writes.read(os.path.join(d, "errors")), "")


if __name__ == "__main__":
	writes.main()
