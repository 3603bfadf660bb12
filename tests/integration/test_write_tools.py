"""The ways an admin writes a value, through a real mount: encryption.json
read and written back unchanged (no PATCH), encryption.json changing two
fields in one PATCH, printf without a newline (applied at close), tee, cp,
dd in 8-byte chunks (applied once, whole), and dd of an invalid value
(refused, no PATCH)."""

import json
import os

import writes


class Tools(writes.WriteWorld):

	def patch_bodies(self):
		return [writes.body_of(r) for r in writes.patches(self.emu.requests())]

	def run_ok(self, cmd):
		self.emu.reset_log()
		p = writes.sh(cmd)
		self.assertEqual(p.returncode, 0, p.stderr)
		return p

	def test_encryption_json_round_trip_sends_nothing(self):
		sub, rg, name, d = self.new_order("cm-system")
		before = self.job(sub, rg, name)
		x = os.path.join(self.mnt.tmp, "enc-%s.json" % name)
		ej = os.path.join(d, "encryption.json")
		self.run_ok("cat %s > %s && cp %s %s" % (writes.q(ej), writes.q(x), writes.q(x),
							 writes.q(ej)))
		self.assertEqual(self.patch_bodies(), [])
		self.assertEqual(self.job(sub, rg, name), before)
		self.assertEqual(writes.read(ej), writes.read(x))

	def test_encryption_json_two_fields_one_patch(self):
		sub, rg, name, d = self.new_order("mm-system")
		url = self.key_url("dbx-key-3072")
		uai = self.uai["id"]
		doc = json.dumps({"encryption_type": "CustomerManaged", "key_url": url,
				  "identity": uai}, indent=2)
		self.run_ok("printf '%%s\\n' %s > %s" % (writes.q(doc),
							 writes.q(os.path.join(d, "encryption.json"))))
		bodies = self.patch_bodies()
		self.assertEqual(len(bodies), 1, bodies)
		self.assertEqual(bodies[0], {
			"identity": {"type": "SystemAssigned,UserAssigned",
				     "userAssignedIdentities": {uai: {}}},
			"properties": {"details": {"keyEncryptionKey": {
				"kekType": "CustomerManaged", "kekUrl": url,
				"kekVaultResourceID": self.vault["id"],
				"identityProperties": {"type": "UserAssigned",
						       "userAssigned": {"resourceId": uai}}}}}})
		got = json.loads(writes.read(os.path.join(d, "encryption.json")))
		self.assertEqual(got["key_url"], url)
		self.assertEqual(got["identity"], uai)
		self.assertEqual(got["encryption_type"], "CustomerManaged")

	def test_encryption_json_unknown_key_refused(self):
		sub, rg, name, d = self.new_order("cm-system")
		before = self.job(sub, rg, name)
		self.emu.reset_log()
		p = writes.echo_to(os.path.join(d, "encryption.json"),
				   '{"encryption_type": "MicrosoftManaged", "colour": "blue"}')
		self.assert_refused(p)
		self.assertEqual(self.patch_bodies(), [])
		self.assertEqual(self.job(sub, rg, name), before)

	def test_printf_without_newline_applies_at_close(self):
		sub, rg, name, d = self.new_order("cm-system")
		url = self.key_url("dbx-key-3072")
		self.run_ok("printf %%s %s > %s" % (writes.q(url), writes.q(os.path.join(d, "key_url"))))
		self.assertEqual(len(self.patch_bodies()), 1)
		self.assertEqual(self.kek_url_of(sub, rg, name), url)

	def test_tee(self):
		sub, rg, name, d = self.new_order("cm-system")
		url = self.key_url("dbx-key-3072")
		p = self.run_ok("echo %s | tee %s" % (writes.q(url), writes.q(os.path.join(d, "key_url"))))
		self.assertEqual(p.stdout, url + "\n")
		self.assertEqual(len(self.patch_bodies()), 1)
		self.assertEqual(self.kek_url_of(sub, rg, name), url)

	def test_tee_refused_value_fails(self):
		*_, d = self.new_order("cm-system")
		self.emu.reset_log()
		p = writes.sh("echo https://evil.example.com/keys/k | tee %s" %
			      writes.q(os.path.join(d, "key_url")))
		self.assertNotEqual(p.returncode, 0)
		self.assertIn(writes.EINVAL_TEXT, p.stderr)
		self.assertEqual(self.patch_bodies(), [])

	def test_cat_redirect(self):
		sub, rg, name, d = self.new_order("cm-system")
		url = self.key_url("dbx-key-3072")
		self.run_ok("cat > %s <<'EOF'\n%s\nEOF" % (writes.q(os.path.join(d, "key_url")), url))
		self.assertEqual(len(self.patch_bodies()), 1)
		self.assertEqual(self.kek_url_of(sub, rg, name), url)

	def test_cp(self):
		sub, rg, name, d = self.new_order("cm-system")
		url = self.key_url("dbx-key-3072")
		src = os.path.join(self.mnt.tmp, "url-%s" % name)
		with open(src, "w") as f:
			f.write(url + "\n")
		self.run_ok("cp %s %s" % (writes.q(src), writes.q(os.path.join(d, "key_url"))))
		self.assertEqual(len(self.patch_bodies()), 1)
		self.assertEqual(self.kek_url_of(sub, rg, name), url)

	def test_dd_chunks_apply_once(self):
		sub, rg, name, d = self.new_order("cm-system")
		url = self.key_url("dbx-key-2048", self.versions("dbx-key-2048")[0])
		self.run_ok("printf %%s %s | dd of=%s bs=8 status=none" %
			    (writes.q(url), writes.q(os.path.join(d, "key_url"))))
		bodies = self.patch_bodies()
		self.assertEqual(len(bodies), 1, "a chunked value must be applied once, whole")
		kek = bodies[0]["properties"]["details"]["keyEncryptionKey"]
		self.assertEqual(kek["kekUrl"], url)
		self.assertEqual(self.kek_url_of(sub, rg, name), url)

	def test_dd_chunks_of_invalid_value_refused(self):
		sub, rg, name, d = self.new_order("cm-system")
		before = self.job(sub, rg, name)
		self.emu.reset_log()
		p = writes.sh("printf %%s %s | dd of=%s bs=8 status=none" %
			      (writes.q("http://%s.vault.azure.net/keys/dbx-key-2048" % self.vname),
			       writes.q(os.path.join(d, "key_url"))))
		self.assertNotEqual(p.returncode, 0)
		self.assertIn(writes.EINVAL_TEXT, p.stderr)
		self.assertEqual(self.patch_bodies(), [])
		self.assertEqual(self.job(sub, rg, name), before)
		self.assert_block(d, "SsemUserErrorKeyVaultUrlWithInvalidScheme")

	def test_writing_the_current_value_sends_nothing(self):
		sub, rg, name, d = self.new_order("cm-system")
		before = self.job(sub, rg, name)
		for f in ("key_url", "identity", "encryption_type"):
			cur = writes.read(os.path.join(d, f))
			self.run_ok("echo %s > %s" % (writes.q(cur.strip()), writes.q(os.path.join(d, f))))
			self.assertEqual(self.patch_bodies(), [], f)
		self.assertEqual(self.job(sub, rg, name), before)

	def test_customer_managed_without_a_key_refused(self):
		sub, rg, name, d = self.new_order("mm-system")
		before = self.job(sub, rg, name)
		self.emu.reset_log()
		p = writes.echo_to(os.path.join(d, "encryption_type"), "CustomerManaged")
		self.assert_refused(p)
		self.assertEqual(self.patch_bodies(), [])
		self.assertEqual(self.job(sub, rg, name), before)
		self.assertEqual(writes.read(os.path.join(d, "encryption_type")), "MicrosoftManaged\n")

	def test_success_clears_last_write_error(self):
		sub, rg, name, d = self.new_order("cm-system")
		p = writes.echo_to(os.path.join(d, "key_url"), self.key_url("dbx-key-ec"))
		self.assert_refused(p)
		self.assert_block(d, "SsemUserErrorEncryptionKeyTypeNotSupported")
		p = writes.echo_to(os.path.join(d, "key_url"), self.key_url("dbx-key-3072"))
		self.assertEqual(p.returncode, 0, p.stderr)
		self.assert_no_last_write(d)


if __name__ == "__main__":
	writes.main()
