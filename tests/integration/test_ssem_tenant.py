"""A subscription moved to another tenant (emulator: POST
/admin/subscriptions/S/tenant): the order's system identity stays in the old
tenant, so the Ssem row SsemUserErrorCrossTenantIdentityAccessForbidden
appears at DataCopy and on a key write; then the documented recovery through
the mount: identity None, identity SystemAssigned (each PATCH carries the
job identity alone), grant the NEW principal_id, write the key URL again ->
success and an errors file with nothing left in it.

The second subscription is moved once for the whole module; its orders are
made afterwards with identities of the old tenant (as before a move)."""

import os

import writes


class TenantMove(writes.WriteWorld):

	@classmethod
	def setUpClass(cls):
		super().setUpClass()
		cls.sub1 = cls.world["subscriptions"][1]["subscriptionId"]
		cls.vault1 = cls.vault_of(cls.sub1)
		cls.new_tenant = [t for t in cls.world["tenants"] if t != cls.tenant][0]
		cls.emu.admin("POST", "/admin/subscriptions/%s/tenant" % cls.sub1,
			      {"tenantId": cls.new_tenant})

	def url1(self, key="dbx-key-2048", version=None):
		return self.key_url(key, version, vault=self.vault1["name"])

	def test_row_CrossTenantIdentityAccessForbidden_at_datacopy(self):
		sub, rg, name, d = self.new_order("cm-system", sub=self.sub1)
		r = self.advance(sub, rg, name)
		self.assertEqual(r["error"], "SsemUserErrorCrossTenantIdentityAccessForbidden")
		self.assert_block(d, "SsemUserErrorCrossTenantIdentityAccessForbidden", source="order")

	def test_row_CrossTenantIdentityAccessForbidden_on_write(self):
		"""The preflight cannot see tenants; the service's 400 is decoded."""
		sub, rg, name, d = self.new_order("cm-system", sub=self.sub1)
		_, reqs = self.refused_write(d, "key_url", self.url1("dbx-key-3072"),
					     "SsemUserErrorCrossTenantIdentityAccessForbidden",
					     sent_patch=True)
		self.assertEqual(writes.patches(reqs)[0]["status"], 400)

	def test_recovery_none_then_system_assigned(self):
		sub, rg, name, d = self.new_order("cm-system", sub=self.sub1)
		old_pid = writes.read(os.path.join(d, "principal_id")).strip()
		kek0 = self.kek(self.job(sub, rg, name))
		self.assertEqual(self.advance(sub, rg, name)["error"],
				 "SsemUserErrorCrossTenantIdentityAccessForbidden")

		for value, body in (("None", {"identity": {"type": "None"}}),
				    ("SystemAssigned", {"identity": {"type": "SystemAssigned"}})):
			self.emu.reset_log()
			p = writes.echo_to(os.path.join(d, "identity"), value)
			self.assertEqual(p.returncode, 0, "%s: %s" % (value, p.stderr))
			ps = writes.patches(self.emu.requests())
			self.assertEqual(len(ps), 1, value)
			self.assertEqual(writes.body_of(ps[0]), body)
			self.assertEqual(writes.read(os.path.join(d, "identity")), value + "\n")

		job = self.job(sub, rg, name)
		new_pid = writes.read(os.path.join(d, "principal_id")).strip()
		self.assertTrue(new_pid)
		self.assertNotEqual(new_pid, old_pid, "SystemAssigned did not re-create the identity")
		self.assertEqual(job["identity"]["principalId"], new_pid)
		self.assertEqual(job["identity"]["tenantId"], self.new_tenant)
		self.assertEqual(self.kek(job), kek0, "the identity steps must not touch the key")

		self.grant(new_pid, vault=self.vault1["name"], tenant=self.new_tenant)
		# The document's last step: write the SAME key again. The order still
		# reports the key unusable, so this is sent (the service re-checks it),
		# not dropped as a write of the current value.
		url = kek0["kekUrl"]
		self.assertEqual(writes.read(os.path.join(d, "key_url")), url + "\n")
		self.emu.reset_log()
		p = writes.echo_to(os.path.join(d, "key_url"), url)
		self.assertEqual(p.returncode, 0, p.stderr)
		self.assertEqual(len(writes.patches(self.emu.requests())), 1)
		job = self.job(sub, rg, name)
		self.assertEqual(self.kek(job)["kekUrl"], url)
		self.assertNotIn("error", job["properties"])
		self.assertEqual(writes.read(os.path.join(d, "errors")), "")
		self.assertEqual(writes.read(os.path.join(d, "status")), "DataCopy\n")


if __name__ == "__main__":
	writes.main()
