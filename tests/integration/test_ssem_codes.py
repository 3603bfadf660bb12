"""Every row of the Ssem table ("Troubleshoot errors" in
the source document (docs/ssem-table.md)), produced through a real mount and the
emulator: a refused write (local validation, preflight against Key Vault
and ARM, or the service's 400), or the order's own error after a change in
Key Vault and the emulator's DataCopy advance. A refused write fails with
EINVAL ("write error: Invalid argument"), leaves the stored order exactly as
it was, and the errors file decodes the code with the table's remedy.
(CrossTenantIdentityAccessForbidden, which moves a subscription, is in
test_ssem_tenant.py.)"""

import os
import time

import writes
from writes import EINVAL_TEXT


class SsemRows(writes.WriteWorld):

	# ---- key problems, found by the preflight before any PATCH ----
	def test_row_EncryptionKeyDisabled(self):
		*_, d = self.new_order("cm-system")
		b, reqs = self.refused_write(d, "key_url", self.key_url("dbx-key-disabled"),
					     "SsemUserErrorEncryptionKeyDisabled")
		self.assertIn("disabled", b["message"])

	def test_row_EncryptionKeyExpired(self):
		*_, d = self.new_order("cm-system")
		r = self.emu.admin("POST", "/admin/vaults/%s/keys" % self.vname,
				   {"name": "wt-expired", "kty": "RSA", "key_size": 2048,
				    "exp": int(time.time()) - 3600})
		self.refused_write(d, "key_url", self.key_url("wt-expired", r["version"]),
				   "SsemUserErrorEncryptionKeyExpired")

	def test_row_KeyDetailsNotFound(self):
		*_, d = self.new_order("cm-system")
		self.refused_write(d, "key_url", self.key_url("no-such-key"),
				   "SsemUserErrorKeyDetailsNotFound")

	def test_row_EncryptionKeyTypeNotSupported(self):
		*_, d = self.new_order("cm-system")
		self.refused_write(d, "key_url", self.key_url("dbx-key-ec"),
				   "SsemUserErrorEncryptionKeyTypeNotSupported")

	def test_row_EncryptionKeyTypeNotSupported_rsa_1024(self):
		*_, d = self.new_order("cm-system")
		self.emu.admin("POST", "/admin/vaults/%s/keys" % self.vname,
			       {"name": "wt-small", "kty": "RSA", "key_size": 1024})
		self.refused_write(d, "key_url", self.key_url("wt-small"),
				   "SsemUserErrorEncryptionKeyTypeNotSupported")

	# ---- vault problems ----
	def test_row_KeyVaultDetailsNotFound(self):
		*_, d = self.new_order("cm-system")
		_, reqs = self.refused_write(d, "key_url", self.key_url("k", vault="wtnosuchvault"),
					     "SsemUserErrorKeyVaultDetailsNotFound")
		self.assertFalse([r for r in reqs if r["host"].startswith("wtnosuchvault")],
				 "a vault ARM does not know was contacted")

	def test_row_SoftDeleteAndPurgeProtectionNotEnabled(self):
		*_, d = self.new_order("cm-system")
		self.grant(self.new_principal_of(d), vault=self.weak_vault["name"])
		self.refused_write(d, "key_url",
				   self.key_url("dbx-key-2048", vault=self.weak_vault["name"]),
				   "SsemUserErrorSoftDeleteAndPurgeProtectionNotEnabled")

	def new_principal_of(self, d):
		return writes.read(os.path.join(d, "principal_id")).strip()

	def test_row_KeyVaultBadRequestException(self):
		"""The order's principal lost its access policy: the preflight says so."""
		*_, d = self.new_order("cm-system")
		pid = self.new_principal_of(d)
		self.emu.admin("DELETE", "/admin/vaults/%s/policies/%s" % (self.vname, pid))
		self.refused_write(d, "key_url", self.key_url("dbx-key-3072"),
				   "SsemUserErrorKeyVaultBadRequestException")

	def test_row_KeyVaultBadRequestException_from_service(self):
		"""An order without an identity gets a new system principal in the
		same PATCH; nobody granted it, so the service refuses the key."""
		sub, rg, name, d = self.new_order("mm-none")
		b, reqs = self.refused_write(d, "key_url", self.key_url("dbx-key-2048"),
					     "SsemUserErrorKeyVaultBadRequestException", sent_patch=True)
		self.assertEqual(writes.patches(reqs)[0]["status"], 400)
		self.assertEqual(self.job(sub, rg, name)["identity"], {"type": "None"})

	# ---- URLs refused locally: no request at all ----
	def local_refusal(self, url, code):
		*_, d = self.new_order("cm-system")
		_, reqs = self.refused_write(d, "key_url", url, code)
		self.assertFalse([r for r in reqs if r["service"] == "keyvault"], reqs)

	def test_row_InvalidKeyVaultUrl(self):
		self.local_refusal("https://%s.vault.azure.net/secrets/dbx-key-2048" % self.vname,
				   "SsemUserErrorInvalidKeyVaultUrl")

	def test_row_InvalidKeyVaultUrl_port(self):
		self.local_refusal("https://%s.vault.azure.net:8443/keys/dbx-key-2048" % self.vname,
				   "SsemUserErrorInvalidKeyVaultUrl")

	def test_row_KeyVaultUrlWithInvalidScheme(self):
		self.local_refusal("http://%s.vault.azure.net/keys/dbx-key-2048" % self.vname,
				   "SsemUserErrorKeyVaultUrlWithInvalidScheme")

	def test_row_KeyVaultUrlInvalidHost(self):
		self.local_refusal("https://%s.vault.usgovcloudapi.net/keys/dbx-key-2048" % self.vname,
				   "SsemUserErrorKeyVaultUrlInvalidHost")

	# ---- identities ----
	def test_row_KekUserIdentityNotFound(self):
		*_, d = self.new_order("cm-system")
		gone = "/subscriptions/%s/resourceGroups/rg-keys/providers/" \
		       "Microsoft.ManagedIdentity/userAssignedIdentities/wt-no-such-uai" % self.sub0
		self.refused_write(d, "identity", gone, "SsemUserErrorKekUserIdentityNotFound")

	def test_row_UserAssignedLimitReached(self):
		sub, rg, name, d = self.new_order("cm-uai")
		extra = self.emu.admin("POST", "/admin/identities",
				       {"subscriptionId": self.sub0, "resourceGroup": "rg-keys",
					"name": "wt-uai-limit"})
		self.grant(extra["principalId"])
		self.emu.admin("POST", "/admin/limits", {"user_assigned_identities": 1})
		try:
			b, reqs = self.refused_write(d, "identity", extra["id"],
						     "SsemUserErrorUserAssignedLimitReached",
						     sent_patch=True)
		finally:
			self.emu.admin("POST", "/admin/limits", {"user_assigned_identities": 10})
		self.assertEqual(writes.patches(reqs)[0]["status"], 400)

	def test_row_SystemAssignedIdentityAbsent(self):
		"""identity None is accepted (step one of the documented recovery);
		at DataCopy the key has no system identity to reach it."""
		sub, rg, name, d = self.new_order("cm-system")
		p = writes.echo_to(os.path.join(d, "identity"), "None")
		self.assertEqual(p.returncode, 0, p.stderr)
		self.assertEqual(writes.read(os.path.join(d, "identity")), "None\n")
		r = self.advance(sub, rg, name)
		self.assertEqual(r["error"], "SsemUserErrorSystemAssignedIdentityAbsent")
		self.assert_block(d, "SsemUserErrorSystemAssignedIdentityAbsent", source="order")

	def test_row_UserAssignedIdentityAbsent(self):
		"""identity None on an order whose key uses a user-assigned identity
		drops that identity from the order; at DataCopy the key's identity is
		absent."""
		sub, rg, name, d = self.new_order("cm-uai")
		p = writes.echo_to(os.path.join(d, "identity"), "None")
		self.assertEqual(p.returncode, 0, p.stderr)
		r = self.advance(sub, rg, name)
		self.assertEqual(r["error"], "SsemUserErrorUserAssignedIdentityAbsent")
		self.assert_block(d, "SsemUserErrorUserAssignedIdentityAbsent", source="order")

	# ---- the order's error after a change in Key Vault (DataCopy) ----
	def datacopy(self, kind, mutate, code):
		sub, rg, name, d = self.new_order(kind)
		mutate()
		r = self.advance(sub, rg, name)
		self.assertEqual(r["error"], code)
		self.assertEqual(writes.read(os.path.join(d, "status")), "DataCopy\n")
		self.assert_block(d, code, source="order")
		return d

	def test_datacopy_EncryptionKeyDisabled(self):
		key = self.emu.admin("POST", "/admin/vaults/%s/keys" % self.vname,
				     {"name": "wt-dc-disable", "kty": "RSA", "key_size": 2048})
		sub, rg, name, d = self.new_order("cm-system")
		p = writes.echo_to(os.path.join(d, "key_url"), self.key_url("wt-dc-disable"))
		self.assertEqual(p.returncode, 0, p.stderr)
		self.emu.admin("POST", "/admin/vaults/%s/keys/wt-dc-disable" % self.vname,
			       {"version": key["version"], "enabled": False})
		self.assertEqual(self.advance(sub, rg, name)["error"],
				 "SsemUserErrorEncryptionKeyDisabled")
		self.assert_block(d, "SsemUserErrorEncryptionKeyDisabled", source="order")

	def test_datacopy_KeyVaultBadRequestException(self):
		def revoke():
			self.emu.admin("DELETE", "/admin/vaults/%s/policies/%s" % (self.vname, pid))
		sub, rg, name, d = self.new_order("cm-system")
		pid = self.new_principal_of(d)
		revoke()
		self.assertEqual(self.advance(sub, rg, name)["error"],
				 "SsemUserErrorKeyVaultBadRequestException")
		self.assert_block(d, "SsemUserErrorKeyVaultBadRequestException", source="order")

	def test_datacopy_KekUserIdentityNotFound(self):
		sub, rg, name, d = self.new_order("cm-uai")
		extra = self.emu.admin("POST", "/admin/identities",
				       {"subscriptionId": self.sub0, "resourceGroup": "rg-keys",
					"name": "wt-uai-deleted"})
		self.grant(extra["principalId"])
		p = writes.echo_to(os.path.join(d, "identity"), extra["id"])
		self.assertEqual(p.returncode, 0, p.stderr)
		self.emu.admin("DELETE", "/admin/identities/wt-uai-deleted")
		self.assertEqual(self.advance(sub, rg, name)["error"],
				 "SsemUserErrorKekUserIdentityNotFound")
		self.assert_block(d, "SsemUserErrorKekUserIdentityNotFound", source="order")

	# ---- a code the table does not know ----
	def test_row_Generic_error(self):
		"""The operation of an accepted PATCH fails (500 InternalServerError):
		EIO, and errors shows the service's code with the Generic row."""
		sub, rg, name, d = self.new_order("cm-system")
		before = self.job(sub, rg, name)
		self.emu.reset_log()
		self.emu.admin("POST", "/admin/fail-next-patch", {"count": 1})
		p = writes.echo_to(os.path.join(d, "key_url"), self.key_url("dbx-key-3072"))
		self.assert_refused(p, writes.EIO_TEXT)
		self.assertEqual(len(writes.patches(self.emu.requests())), 1)
		self.assert_unchanged(before, sub, rg, name)
		b = self.assert_block(d, "InternalServerError", generic=True)
		self.assertIn("Could not fetch the passkey.", b["message"])

	def test_row_Generic_error_unknown_code(self):
		"""A 400 with a code the table does not know: its own code and
		message, the Generic row's remedy."""
		sub, rg, name, d = self.new_order("cm-system")
		before = self.job(sub, rg, name)
		self.emu.reset_log()
		self.emu.fault(service="arm", method="PATCH", path_prefix="/subscriptions/",
			       status=400, count=1,
			       body='{"error": {"code": "SsemUserErrorBrandNewThing", '
				    '"message": "Something new went wrong."}}')
		p = writes.echo_to(os.path.join(d, "key_url"), self.key_url("dbx-key-3072"))
		self.assert_refused(p, EINVAL_TEXT)
		self.assert_unchanged(before, sub, rg, name)
		b = self.assert_block(d, "SsemUserErrorBrandNewThing", generic=True)
		self.assertEqual(b["message"], "Something new went wrong.")
		self.assertTrue(b.get("request_id"))


if __name__ == "__main__":
	writes.main()
