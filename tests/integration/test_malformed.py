"""Malformed answers from ARM through a real mount (docs/formats.md, "Reads").

A job the emulator stores with a field of the wrong JSON type
("properties": 5, "identity": [], "identity": 5, "kekType": 1) is never
read as absent: its files fail with EIO, its errors file (still readable)
names the field in a "read" block, a write to key_url fails before any
PATCH is sent, and the other orders of its resource group still list and
read. Once the job is fixed it reads again within cache_ttl + 1 s. Bodies
json-c would read silently (a duplicate key, bad UTF-8, deep nesting, an
escaped NUL) are malformed too, a body over the 16 MiB cap is refused,
and a nextLink off the ARM host, over http or repeating a page is never
followed. The unit tests (test_order.c) go through every field read and
every wrong type; this module goes through the issue's cases and a
sample of the others on a real mount."""

import copy
import errno
import os
import time

import harness
import oracle
import writes

TTL = 2


def read_errno(path):
	"""0 and the bytes when path reads, else the errno and None."""
	try:
		with open(path, "rb") as f:
			return 0, f.read()
	except OSError as e:
		return e.errno, None


class Malformed(writes.WriteWorld):
	MOUNT = {"cache_ttl": TTL, "timeout": 20, "extra": ("lro_poll=0.05",)}

	def put_job(self, sub, rg, name, job):
		self.emu.admin("PUT", "/admin/jobs/%s/%s/%s" % (sub, rg, name), job)

	def fresh_order(self, kind):
		"""new_order, once the mount's listing is old enough to show it."""
		made = self.new_order(kind)
		time.sleep(TTL + 0.3)
		return made

	def sibling(self, sub, rg, name):
		"""Another order of the same resource group, as the mount lists it."""
		names = sorted(n for n in os.listdir(self.mnt.p(sub, rg)) if n != name)
		self.assertTrue(names, "no other order in %s/%s" % (sub, rg))
		return names[0]

	def assert_reads_eio(self, d, field, malformed=True):
		"""Every file but errors fails with EIO; errors names field in a read block."""
		for f in ("status", "identity", "encryption_type", "key_url", "principal_id"):
			code, data = read_errno(os.path.join(d, f))
			self.assertEqual(code, errno.EIO, "%s read %r (errno %s), not EIO" % (f, data, code))
		text = writes.read(os.path.join(d, "errors"))
		blocks = [b for b in oracle.parse_errors(text) if b.get("source") == "read"]
		self.assertTrue(blocks, "no read block in errors:\n%s" % text)
		self.assertIn(field, blocks[0].get("message", ""), text)
		if malformed:
			self.assertIn("malformed", blocks[0].get("message", ""), text)
		return blocks[0]

	def assert_sibling_fine(self, sub, rg, other):
		want = self.job(sub, rg, other)["properties"]["status"] + "\n"
		code, data = read_errno(self.mnt.p(sub, rg, other, "status"))
		self.assertEqual((code, data), (0, want.encode()))
		text = writes.read(self.mnt.p(sub, rg, other, "errors"))
		self.assertFalse([b for b in oracle.parse_errors(text) if b.get("source") == "read"], text)

	def wrong_type_case(self, mutate, field):
		sub, rg, name, d = self.fresh_order("cm-system")
		other = self.sibling(sub, rg, name)
		good = self.job(sub, rg, name)
		status = good["properties"]["status"]
		self.assertEqual(writes.read(os.path.join(d, "status")), status + "\n")
		bad = copy.deepcopy(good)
		mutate(bad)
		self.put_job(sub, rg, name, bad)
		time.sleep(TTL + 0.3)  # the good state the mount holds is past cache_ttl now

		# The listing still shows the bad order and the others; they read fine.
		listed = os.listdir(self.mnt.p(sub, rg))
		self.assertIn(name, listed)
		self.assertIn(other, listed)
		self.assert_reads_eio(d, field)
		self.assert_sibling_fine(sub, rg, other)

		# A write fails before anything is sent: no PATCH, the order as it was.
		stored = self.job(sub, rg, name)
		self.emu.reset_log()
		p = writes.echo_to(os.path.join(d, "key_url"), self.key_url("dbx-key-3072"))
		self.assert_refused(p, writes.EIO_TEXT)
		reqs = self.emu.requests()
		self.assertEqual(writes.patches(reqs), [],
				 [(r["method"], r["path"], r["status"]) for r in reqs])
		self.assertEqual(self.job(sub, rg, name), stored, "a refused write changed the order")
		self.assert_reads_eio(d, field)

		# Fixed: readable again within cache_ttl + 1 s.
		self.put_job(sub, rg, name, good)
		t0 = time.monotonic()
		while True:
			code, data = read_errno(os.path.join(d, "status"))
			took = time.monotonic() - t0
			if code == 0:
				break
			self.assertLess(took, TTL + 1, "still errno %s %.1f s after the fix" % (code, took))
			time.sleep(0.1)
		harness.log("%s: readable again %.2f s after the fix" % (field, took))
		self.assertEqual(data, (status + "\n").encode())
		self.assertEqual(writes.read(os.path.join(d, "identity")), "SystemAssigned\n")
		self.assertEqual(writes.read(os.path.join(d, "encryption_type")), "CustomerManaged\n")
		text = writes.read(os.path.join(d, "errors"))
		self.assertFalse([b for b in oracle.parse_errors(text) if b.get("source") == "read"], text)

	def test_properties_a_number(self):
		self.wrong_type_case(lambda j: j.__setitem__("properties", 5),
				     "properties is a number, expected an object")

	def test_identity_an_array(self):
		self.wrong_type_case(lambda j: j.__setitem__("identity", []),
				     "identity is an array, expected an object")

	def test_identity_a_number(self):
		# The case: this one used to send an unasked-for identity in a PATCH.
		self.wrong_type_case(lambda j: j.__setitem__("identity", 5),
				     "identity is a number, expected an object")

	def test_kek_type_a_number(self):
		def mutate(j):
			j["properties"]["details"]["keyEncryptionKey"]["kekType"] = 1
		self.wrong_type_case(
			mutate, "properties.details.keyEncryptionKey.kekType is a number, expected a string")

	def test_more_fields_each_named(self):
		"""A wrong type in more of the fields read, one order, one field at a time."""
		sub, rg, name, d = self.fresh_order("cm-uai")
		good = self.job(sub, rg, name)
		self.assertTrue(good["properties"]["details"].get("jobStages"), "no stages to spoil")
		cases = (
			(("sku", "name"), 7, "sku.name is a number, expected a string"),
			(("properties", "status"), {}, "properties.status is an object, expected a string"),
			(("properties", "details"), "x", "properties.details is a string, expected an object"),
			(("properties", "details", "jobStages"), {},
			 "properties.details.jobStages is an object, expected an array"),
			(("properties", "details", "jobStages", 0, "stageStatus"), 3,
			 "properties.details.jobStages[0].stageStatus is a number, expected a string"),
			(("properties", "details", "keyEncryptionKey", "identityProperties", "userAssigned",
			  "resourceId"), [],
			 "properties.details.keyEncryptionKey.identityProperties.userAssigned.resourceId "
			 "is an array, expected a string"),
			(("identity", "principalId"), True, "identity.principalId is a boolean, expected a string"),
			(("identity", "userAssignedIdentities"), [],
			 "identity.userAssignedIdentities is an array, expected an object"),
			(("systemData", "lastModifiedAt"), 1700000000,
			 "systemData.lastModifiedAt is a number, expected a string"),
		)
		for path, value, field in cases:
			with self.subTest(field=field):
				bad = copy.deepcopy(good)
				o = bad
				for k in path[:-1]:
					o = o.setdefault(k, {}) if isinstance(k, str) else o[k]
				o[path[-1]] = value
				self.put_job(sub, rg, name, bad)
				time.sleep(TTL + 0.3)
				self.assert_reads_eio(d, field)
		self.put_job(sub, rg, name, good)
		time.sleep(TTL + 0.3)
		self.assertEqual(writes.read(os.path.join(d, "identity")),
				 self.uai["id"] + "\n")

	def test_oversized_body(self):
		"""An answer over the 16 MiB cap is refused, and the other orders still read."""
		sub, rg, name, d = self.fresh_order("mm-none")
		other = self.sibling(sub, rg, name)
		jid = "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.DataBox/jobs/%s" % (
			sub, rg, name)
		body = b'{"id": "' + jid.encode() + b'", "name": "' + name.encode() + \
			b'", "tags": {"x": "' + b"a" * (17 << 20) + b'"}}'
		self.fault_get(sub, rg, name, body)
		try:
			time.sleep(TTL + 0.3)
			t0 = time.monotonic()
			self.assert_reads_eio(d, "larger than 16 MiB", malformed=False)
			self.assertLess(time.monotonic() - t0, 20 + 2)
			self.assert_sibling_fine(sub, rg, other)
		finally:
			self.emu.clear_faults()

	def fault_get(self, sub, rg, name, body):
		"""The order's GET answers 200 with body (bytes, sent exactly as they are)."""
		path = "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.DataBox/jobs/%s" % (
			sub, rg, name)
		# The admin API takes the rule as JSON; the body goes in as a JSON string, bytes kept.
		text = body.replace(b"\\", b"\\\\").replace(b'"', b'\\"')
		rule = b'{"service": "arm", "method": "GET", "path_prefix": "' + path.encode() + \
			b'", "status": 200, "body": "' + text + b'"}'
		self.assertEqual(self.emu.admin_status("POST", "/admin/faults", rule)[0], 200)

	def hostile_case(self, members, field):
		"""A GET answering the order with members (raw JSON text) added reads EIO naming field."""
		sub, rg, name, d = self.fresh_order("mm-none")
		other = self.sibling(sub, rg, name)
		jid = "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.DataBox/jobs/%s" % (
			sub, rg, name)
		body = b'{"id": "' + jid.encode() + b'", "name": "' + name.encode() + b'", ' + \
			members + b', "properties": {"status": "DataCopy"}}'
		self.fault_get(sub, rg, name, body)
		try:
			time.sleep(TTL + 0.3)  # past the listing's state: the next read is that GET
			self.assert_reads_eio(d, field)
			self.assert_sibling_fine(sub, rg, other)
		finally:
			self.emu.clear_faults()

	def test_duplicate_key(self):
		# json-c would keep the last identity silently.
		self.hostile_case(b'"identity": {"type": "None"}, "identity": {"type": "SystemAssigned"}',
				  'duplicate key "identity"')

	def test_not_utf8(self):
		self.hostile_case(b'"location": "west\xffus"', "a string is not valid UTF-8")

	def test_escaped_nul(self):
		self.hostile_case(b'"location": "west\\u0000us"', "a string holds a NUL character")

	def test_deep_nesting(self):
		self.hostile_case(b'"tags": ' + b"[" * 40 + b"]" * 40, "nested deeper than 32 levels")

	def test_next_link_off_host_http_or_looping(self):
		sub = self.sub0
		list_path = "/subscriptions/%s/providers/Microsoft.DataBox/jobs" % sub
		for link in ("https://evil.example.com%s?api-version=2025-07-01" % list_path,
			     "http://management.azure.com%s?api-version=2025-07-01&p=2" % list_path,
			     "https://management.azure.com%s?api-version=2025-07-01" % list_path):
			with self.subTest(link=link):
				time.sleep(TTL + 0.3)  # the listing the mount holds is stale
				self.emu.reset_log()
				self.emu.fault(service="arm", method="GET", path_prefix=list_path, status=200,
					       body='{"value": [], "nextLink": "%s"}' % link)
				try:
					with self.assertRaises(OSError) as cm:
						os.listdir(self.mnt.p(sub))
					self.assertEqual(cm.exception.errno, errno.EIO)
					reqs = [r for r in self.emu.requests() if r["service"] == "arm"]
					# One request for the first page; the nextLink is never followed.
					self.assertEqual([(r["host"], r["path"]) for r in reqs],
							 [("management.azure.com", list_path)])
				finally:
					self.emu.clear_faults()
		time.sleep(TTL + 0.3)
		self.assertTrue(os.listdir(self.mnt.p(sub)))


if __name__ == "__main__":
	writes.main()
