"""Every file of every order, read with cat, equals the independent oracle;
ls of every level lists exactly the world's subscriptions, resource groups
and orders. The oracle's errors-file parser reads the format and refuses
what the format does not allow (so a malformed file cannot pass)."""

import collections
import unittest

import harness
import oracle


# Every code the errors file must decode, plus one the table does not know;
# the first is sent without a message (the table's text must stand in).
FIRST = "SsemUserErrorEncryptionKeyExpired"
CODES = [FIRST] + sorted(c for c in oracle.SSEM if c != FIRST) + ["SomeFutureServiceError"]


def add_errors(world):
	"""Give the generated world the failures the oracle must see: a
	properties.error with every code (one without a message), and failing
	stages without a top-level error."""
	k = 0
	for i, job in enumerate(world["jobs"]):
		props = job["properties"]
		if props.get("error"):
			continue
		if i % 5 in (1, 2) and k < len(CODES):
			code = CODES[k]
			props["error"] = {"code": code, "target": "KeyEncryptionKey", "details": [],
					  "additionalInfo": []}
			if k:
				props["error"]["message"] = "Injected %s on %s." % (code, job["name"])
			k += 1
		elif i % 10 in (8, 9):
			stages = props["details"]["jobStages"]
			st = [s for s in stages if s["stageStatus"] in ("InProgress", "None")] or stages
			st[0]["stageStatus"] = "Failed" if i % 10 == 8 else "WaitingForCustomerAction"
			st[0].setdefault("stageTime", job["systemData"]["lastModifiedAt"])
	assert k == len(CODES), "world too small for every code"
	return world


class Oracle(harness.MountedWorld):
	WORLD = {"orders": 40, "subscriptions": 2, "resource_groups": 3, "seed": 7, "demo": True}
	MOUNT = {"cache_ttl": 30}

	@classmethod
	def make_world(cls):
		return add_errors(harness.gen_world(**cls.WORLD))

	def expected_tree(self):
		tree = collections.defaultdict(lambda: collections.defaultdict(dict))
		for job in self.world["jobs"]:
			sub, rg, name = harness.split_job_id(job["id"])
			tree[sub][rg][name] = job
		return tree

	def ls(self, *parts):
		p = harness.run(["ls", "-1", self.mnt.p(*parts)], timeout=60)
		self.assertEqual(p.returncode, 0, "ls %s: %s" % (parts, p.stderr))
		return sorted(p.stdout.split())

	def test_listings(self):
		tree = self.expected_tree()
		subs = sorted(s["subscriptionId"] for s in self.world["subscriptions"])
		self.assertEqual(self.ls(), subs)
		for sub in subs:
			self.assertEqual(self.ls(sub), sorted(tree[sub]), sub)
			for rg in tree[sub]:
				self.assertEqual(self.ls(sub, rg), sorted(tree[sub][rg]), "%s/%s" % (sub, rg))
				for name in tree[sub][rg]:
					self.assertEqual(self.ls(sub, rg, name), sorted(oracle.FILES))

	def test_every_file(self):
		n_files = n_errors = n_cmk = n_uai = n_none = n_no_kek = 0
		for job in self.world["jobs"]:
			sub, rg, name = harness.split_job_id(job["id"])
			want = oracle.expected_files(job)
			for f in oracle.FILES:
				path = self.mnt.p(sub, rg, name, f)
				p = harness.cat(self, path)
				where = "%s/%s/%s/%s" % (sub, rg, name, f)
				if f == "errors":
					oracle.check_errors(self, job, p, where)
					n_errors += bool(p)
				else:
					self.assertEqual(p, want[f], where)
				n_files += 1
			n_cmk += want["encryption_type"] == b"CustomerManaged\n"
			n_uai += want["identity"].startswith(b"/subscriptions/")
			n_none += want["identity"] == b"None\n"
			n_no_kek += not job["properties"]["details"].get("keyEncryptionKey")
		harness.log("checked %d files of %d orders (%d with errors, %d CMK, %d UAI)" %
			    (n_files, len(self.world["jobs"]), n_errors, n_cmk, n_uai))
		# The world must exercise the interesting cases, or this test proves little.
		for n, what in ((n_errors, "errors"), (n_cmk, "customer-managed keys"),
				(n_uai, "user-assigned identities"), (n_none, "identity None"),
				(n_no_kek, "no keyEncryptionKey at all")):
			self.assertGreater(n, 0, "the world has no order with %s" % what)


class ParseErrors(unittest.TestCase):
	"""oracle.parse_errors, the tests' one errors-file parser, on its own."""

	# The example of docs/formats.md, "The errors file", without its
	# request_id, plus a second block with an empty field and a remedy in
	# numbered steps (continuation lines indented by two spaces).
	TEXT = ("code: SsemUserErrorEncryptionKeyDisabled\n"
		"source: order\n"
		"time: 2025-03-05T17:54:03Z\n"
		"message: Could not fetch the passkey as the customer-managed key is disabled.\n"
		"target: KeyEncryptionKey\n"
		"recoverable: yes\n"
		"remedy: Yes, by enabling the key version.\n"
		"\n"
		"code: SsemUserErrorSystemAssignedIdentityAbsent\n"
		"source: last-write\n"
		"target:\n"
		"remedy: Yes, check if:\n"
		"  1. Key vault still has the MSI in the access policy.\n"
		"  2. Identity is of type System assigned.\n")

	def test_reads_the_format(self):
		blocks = oracle.parse_errors(self.TEXT)
		self.assertEqual(len(blocks), 2)
		self.assertEqual(blocks[0]["code"], "SsemUserErrorEncryptionKeyDisabled")
		self.assertEqual(blocks[0]["message"],
				 "Could not fetch the passkey as the customer-managed key is disabled.")
		self.assertEqual(blocks[0]["remedy"], "Yes, by enabling the key version.")
		self.assertEqual(blocks[1]["target"], "")
		self.assertEqual(blocks[1]["remedy"], "Yes, check if:\n"
				 "1. Key vault still has the MSI in the access policy.\n"
				 "2. Identity is of type System assigned.")
		self.assertEqual(oracle.parse_errors(""), [])

	def test_refuses_what_the_format_does_not_allow(self):
		bad = {
			"no final newline": self.TEXT[:-1],
			"two blank lines": self.TEXT.replace("\n\n", "\n\n\n"),
			"a blank line first": "\n" + self.TEXT,
			"a blank line last": self.TEXT + "\n",
			"a line without a key": self.TEXT.replace("source: order", "source order"),
			"a field twice": self.TEXT.replace("source: order\n", "source: order\nsource: read\n"),
			"a continuation without a field": "  1. step\ncode: X\n",
			"a one-space continuation": self.TEXT.replace("  1.", " 1."),
		}
		for what, text in bad.items():
			with self.subTest(what):
				with self.assertRaises(ValueError):
					oracle.parse_errors(text)


if __name__ == "__main__":
	harness.main()
