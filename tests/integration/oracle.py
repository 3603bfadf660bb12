"""An independent oracle: what each file of an order must read, computed in
Python straight from the world's job JSON and docs/formats.md ("The tree", "The errors file",
"The operation file": empty while no write runs).

It shares no code with databoxfs (which parses JSON in C, backend/azure/order.c)
so a wrong mapping on either side shows up as a difference. It also holds
the tests' one errors-file parser (parse_errors) and the troubleshooting
rows the errors file must show (SSEM, GENERIC_REMEDY, TABLE_DETAILS).
"""

import calendar
import json
import re

FILES = ("encryption_type", "key_url", "key_vault", "identity", "principal_id",
	 "encryption.json", "status", "errors", "operation")
RW_FILES = ("encryption_type", "key_url", "identity", "encryption.json")


def mode_of(name):
	return 0o644 if name in RW_FILES else 0o444


def _kek(job):
	details = (job.get("properties") or {}).get("details") or {}
	return details.get("keyEncryptionKey") or {}


def values(job):
	"""The five encryption values (None when absent)."""
	kek = _kek(job)
	enc = kek.get("kekType") or "MicrosoftManaged"
	idp = kek.get("identityProperties") or {}
	ident = job.get("identity") or {}
	if (idp.get("type") or "").lower() == "userassigned":
		identity = (idp.get("userAssigned") or {}).get("resourceId")
	elif "systemassigned" in (ident.get("type") or "").lower():
		identity = "SystemAssigned"
	else:
		identity = "None"
	return {
		"encryption_type": enc,
		"key_url": kek.get("kekUrl") or None,
		"key_vault": kek.get("kekVaultResourceID") or None,
		"identity": identity,
		"principal_id": ident.get("principalId") or None,
	}


def _line(v):
	return b"" if v is None or v == "" else (v + "\n").encode()


def expected_files(job):
	"""name -> exact bytes for every file except errors."""
	v = values(job)
	out = {k: _line(v[k]) for k in v}
	out["encryption.json"] = (json.dumps(v, indent=2) + "\n").encode()
	out["status"] = _line((job.get("properties") or {}).get("status"))
	out["operation"] = b""  # no write in flight through the mount
	return out


def failing_stages(job):
	details = (job.get("properties") or {}).get("details") or {}
	out = []
	for st in details.get("jobStages") or []:
		s = st.get("stageStatus") or ""
		if s == "Failed" or s.startswith("WaitingForCustomerAction"):
			out.append(st)
	return out


def expects_errors(job):
	return bool((job.get("properties") or {}).get("error")) or bool(failing_stages(job))


# The rows of the "Troubleshoot errors" table (docs/ssem-table.md) that the
# errors file must decode, written from the document independently of
# backend/rules/ssem.c: code -> (recoverable as the errors file says it,
# sentences of the remedy as plain text, markdown links reduced to their
# text, each of which the remedy must contain).
SSEM = {
	"SsemUserErrorEncryptionKeyDisabled": ("yes", ["Yes, by enabling the key version."]),
	"SsemUserErrorEncryptionKeyExpired": ("yes", ["Yes, by enabling the key version."]),
	"SsemUserErrorKeyDetailsNotFound": ("depends", [
		"If you deleted the key vault, you can't recover the customer-managed key.",
		"Revert the key vault back to the old tenant.",
		"Set Identity = None and then set the value back to Identity = SystemAssigned.",
		"purge-protection duration"]),
	"SsemUserErrorKeyVaultBadRequestException": ("yes", [
		"Add the identity selected to your key vault to enable access to the "
		"customer-managed key."]),
	"SsemUserErrorKeyVaultDetailsNotFound": ("depends", [
		"If you deleted the key vault, you can't recover the customer-managed key.",
		"Revert the key vault back to the old tenant.",
		"purge-protection duration"]),
	"SsemUserErrorSystemAssignedIdentityAbsent": ("yes", [
		"Key vault still has the MSI in the access policy.",
		"Identity is of type System assigned.",
		"WrapKey"]),
	"SsemUserErrorUserAssignedLimitReached": ("yes", [
		"Retry the operation with fewer user identities, or remove some user-assigned "
		"identities from the resource before retrying."]),
	"SsemUserErrorCrossTenantIdentityAccessForbidden": ("yes", [
		"Or move the identity to the new tenant under which the subscription is present."]),
	"SsemUserErrorKekUserIdentityNotFound": ("yes", [
		"Try adding a different user-assigned identity to your key vault to enable access "
		"to the customer-managed key."]),
	"SsemUserErrorUserAssignedIdentityAbsent": ("yes", [
		"Either the User Assigned Identity (UAI) associated with the key is deleted or the "
		"UAI type has changed."]),
	"SsemUserErrorEncryptionKeyTypeNotSupported": ("yes", [
		"Enable a supported encryption type on the key - for example, RSA or RSA-HSM."]),
	"SsemUserErrorSoftDeleteAndPurgeProtectionNotEnabled": ("yes", [
		"Ensure that both soft delete and purge protection are enabled on the key vault."]),
	"SsemUserErrorInvalidKeyVaultUrl": ("yes", [
		"Get the correct key vault URI. To get the key vault URI, use Get-AzKeyVault in "
		"PowerShell."]),
	"SsemUserErrorKeyVaultUrlWithInvalidScheme": ("yes", ["Pass the key vault URI over HTTPS."]),
	"SsemUserErrorKeyVaultUrlInvalidHost": ("yes", [
		"In the public cloud, the key vault URI should end with vault.azure.net."]),
}
GENERIC_REMEDY = ("This error is a generic error. Contact Microsoft Support to troubleshoot the "
		  "error and determine the next steps.")

# "Error details" of a few rows, shown when the service sent no message.
TABLE_DETAILS = {
	"SsemUserErrorEncryptionKeyDisabled":
		"Could not fetch the passkey as the customer-managed key is disabled.",
	"SsemUserErrorEncryptionKeyExpired":
		"Could not fetch the passkey as the customer-managed key has expired.",
	"SsemUserErrorEncryptionKeyTypeNotSupported":
		"The encryption key type isn't supported for the operation.",
}


_FIELD_RE = re.compile(r"([a-z_]+):(?: (.*))?$")


def parse_errors(text):
	"""The errors file as a list of {field: value} blocks, newest first.

	The one parser of the tests, with the format's rules (docs/formats.md,
	"The errors file"), strictly, so that a
	malformed file fails the test instead of parsing into something: the
	text is empty or ends with a newline; blocks are separated by exactly
	one blank line; every line of a block is "key: value", "key:" (an empty
	value), or a continuation of the field above indented by two spaces
	(a remedy's numbered steps), which joins its value after a newline; a
	field appears once in a block. Anything else raises ValueError."""
	if text == "":
		return []
	if not text.endswith("\n"):
		raise ValueError("errors file does not end with a newline: %r" % text[-200:])
	blocks = []
	for chunk in text[:-1].split("\n\n"):
		b = {}
		last = None
		for line in chunk.split("\n"):
			if line.startswith("  ") and line.strip() and last is not None:
				b[last] += "\n" + line[2:]
				continue
			m = _FIELD_RE.match(line)
			if not m:
				raise ValueError("errors file: not a \"key: value\" line: %r in\n%s" % (line, text))
			if m.group(1) in b:
				raise ValueError("errors file: %s twice in a block:\n%s" % (m.group(1), text))
			last = m.group(1)
			b[last] = m.group(2) or ""
		blocks.append(b)
	return blocks


def check_errors(tc, job, data, where):
	"""Assert, with unittest TestCase tc, that data is right for job."""
	text = data.decode()
	if not expects_errors(job):
		tc.assertEqual(data, b"", "%s: errors must be empty" % where)
		return
	tc.assertTrue(text.endswith("\n"), "%s: errors must end with a newline" % where)
	blocks = parse_errors(text)
	tc.assertTrue(blocks, "%s: errors must not be empty" % where)
	for b in blocks:
		for field in ("code", "source", "time", "message", "recoverable", "remedy"):
			tc.assertIn(field, b, "%s: block without %s: %r" % (where, field, b))
		tc.assertIn(b["source"], ("order", "last-write", "read"), where)
		tc.assertIn(b["recoverable"], ("yes", "no", "depends"), where)
	order_blocks = [b for b in blocks if b["source"] == "order"]
	tc.assertTrue(order_blocks, "%s: no block with source: order" % where)
	err = (job.get("properties") or {}).get("error")
	if not err:
		return
	code = err.get("code")
	mine = [b for b in order_blocks if b["code"] == code]
	tc.assertTrue(mine, "%s: no block with code: %s in %r" % (where, code, text))
	b = mine[0]
	if err.get("message"):
		tc.assertEqual(b["message"], err["message"], where)
	elif code in TABLE_DETAILS:
		tc.assertEqual(b["message"], TABLE_DETAILS[code], "%s: message from the table" % where)
	else:
		tc.assertTrue(b["message"], "%s: empty message" % where)
	if code in SSEM:
		rec, fragments = SSEM[code]
		tc.assertEqual(b["recoverable"], rec, "%s: %s" % (where, code))
		for frag in fragments:
			tc.assertIn(frag, b["remedy"], "%s: %s remedy" % (where, code))
		tc.assertNotIn("<", b["remedy"], "%s: HTML left in remedy" % where)
	elif code and code.startswith("Ssem"):
		tc.fail("%s: oracle does not know %s" % (where, code))
	else:
		tc.assertEqual(b["remedy"], GENERIC_REMEDY, "%s: generic row" % where)


def parse_time(s):
	"""ISO 8601 (Z or +hh:mm, optional fraction) -> float epoch seconds."""
	m = re.match(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(\.\d+)?(Z|[+-]\d\d:?\d\d)?$", s)
	if not m:
		raise ValueError("bad time %r" % s)
	y, mo, d, h, mi, se = (int(m.group(i)) for i in range(1, 7))
	t = calendar.timegm((y, mo, d, h, mi, se, 0, 0, 0)) + float(m.group(7) or 0)
	tz = m.group(8)
	if tz and tz != "Z":
		sign = 1 if tz[0] == "+" else -1
		tz = tz[1:].replace(":", "")
		t -= sign * (int(tz[:2]) * 3600 + int(tz[2:]) * 60)
	return t


def last_modified(job):
	sd = job.get("systemData") or {}
	s = sd.get("lastModifiedAt") or sd.get("createdAt")
	return parse_time(s) if s else None
