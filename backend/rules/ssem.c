/*
 * ssem.c: the Data Box customer-managed-key error table, as data, and the
 * errors-file block format (docs/formats.md, "The errors file").
 *
 * dbx_ssem_table is the "Troubleshoot errors" table of the source document
 * (docs/ssem-table.md), every row in
 * document order, cell text verbatim (markdown links, backticks and HTML
 * included; surrounding cell padding trimmed). The only edits are noted
 * where they are made. dbx_ssem_remedy() turns a resolution cell into plain
 * text; dbx_error_block_append() renders one block of an order's errors
 * file, so every producer of error blocks writes the same format, and no
 * string from a service can add or forge a line of it.
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "databoxfs/ssem.h"
#include "databoxfs/timestamp.h"

/* The resolution cell shared by the two "...DetailsNotFound" rows (identical in the document). */
#define DELETED_OR_MIGRATED_VAULT                                                                  \
	"If you deleted the key vault, you can't recover the customer-managed key.  If you "       \
	"migrated the key vault to a different tenant, see [Change a key vault tenant ID after a " \
	"subscription move](../key-vault/general/move-subscription.md). If you deleted the key "   \
	"vault:<ol><li>Yes, if it is in the purge-protection duration, using the steps at "        \
	"[Recover a key "                                                                          \
	"vault](../key-vault/general/"                                                             \
	"key-vault-recovery.md?tabs=azure-powershell#key-vault-powershell).</li><li>No, if it is " \
	"beyond the purge-protection duration.</li></ol><br>Else if the key vault underwent a "    \
	"tenant migration, yes, it can be recovered using one of the below steps: <ol><li>Revert " \
	"the key vault back to the old tenant.</li><li>Set `Identity = None` and then set the "    \
	"value back to `Identity = SystemAssigned`. This deletes and recreates the identity once " \
	"the new identity has been created. Enable `Get`, `WrapKey`, and `UnwrapKey` permissions " \
	"to the new identity in the key vault's Access policy.</li></ol>"

/* One designated initializer per row reads like the document's table: kept out of clang-format. */
/* clang-format off */
const struct dbx_ssem_row dbx_ssem_table[] = {
	{
		.code = "SsemUserErrorEncryptionKeyDisabled",
		.details = "Could not fetch the passkey as the customer-managed key is disabled.",
		.resolution = "Yes, by enabling the key version.",
		.recoverable = DBX_RECOVERABLE_YES,
	},
	{
		.code = "SsemUserErrorEncryptionKeyExpired",
		.details = "Could not fetch the passkey as the customer-managed key has expired.",
		.resolution = "Yes, by enabling the key version.",
		/* The document says "Yes"; in practice a new key version or a later expiry date. */
		.recoverable = DBX_RECOVERABLE_YES,
	},
	{
		.code = "SsemUserErrorKeyDetailsNotFound",
		.details = "Could not fetch the passkey as the customer-managed key could not be found.",
		.resolution = DELETED_OR_MIGRATED_VAULT,
		/* Yes within the purge-protection window or after a tenant move, no past it. */
		.recoverable = DBX_RECOVERABLE_DEPENDS,
	},
	{
		.code = "SsemUserErrorKeyVaultBadRequestException",
		.details = "Applied a customer-managed key but the key access has not been granted or "
			   "has been revoked, or unable to access key vault due to firewall being "
			   "enabled.",
		.resolution = "Add the identity selected to your key vault to enable access to the "
			      "customer-managed key. If key vault has firewall enabled, switch to a "
			      "system assigned identity and then add a customer-managed key. For more "
			      "information, see how to [Enable the key](#enable-key).",
		.recoverable = DBX_RECOVERABLE_YES,
	},
	{
		.code = "SsemUserErrorKeyVaultDetailsNotFound",
		.details = "Could not fetch the passkey as the associated key vault for the "
			   "customer-managed key could not be found.",
		.resolution = DELETED_OR_MIGRATED_VAULT,
		/* Same cell as KeyDetailsNotFound: depends on the purge-protection window. */
		.recoverable = DBX_RECOVERABLE_DEPENDS,
	},
	{
		.code = "SsemUserErrorSystemAssignedIdentityAbsent",
		.details = "Could not fetch the passkey as the customer-managed key could not be found.",
		/*
		 * The source has "key vaultâ€™s access policy": UTF-8 "’" decoded as
		 * Windows-1252 (mojibake). We store the intended "vault's", spelled with
		 * an ASCII apostrophe like the other rows of the table.
		 */
		.resolution = "Yes, check if: <ol><li>Key vault still has the MSI in the access "
			      "policy.</li><li>Identity is of type System assigned.</li><li>Enable "
			      "`Get`, `WrapKey`, and `UnwrapKey` permissions to the identity in the key "
			      "vault's access policy. These permissions must remain for the lifetime of "
			      "the order. They're used during order creation and at the beginning of "
			      "the Data Copy phase.</li></ol>",
		.recoverable = DBX_RECOVERABLE_YES,
	},
	{
		.code = "SsemUserErrorUserAssignedLimitReached",
		.details = "Adding new User Assigned Identity failed as you have reached the limit on "
			   "the total number of user assigned identities that can be added.",
		.resolution = "Retry the operation with fewer user identities, or remove some "
			      "user-assigned identities from the resource before retrying.",
		.recoverable = DBX_RECOVERABLE_YES,
	},
	{
		.code = "SsemUserErrorCrossTenantIdentityAccessForbidden",
		.details = "Managed identity access operation failed. <br> Note: This error can occur "
			   "when a subscription is moved to different tenant. The customer has to "
			   "manually move the identity to the new tenant.",
		.resolution = "Try adding a different user-assigned identity to your key vault to "
			      "enable access to the customer-managed key. Or move the identity to the "
			      "new tenant under which the subscription is present. For more "
			      "information, see how to [Enable the key](#enable-key).",
		/* Another identity, or moving this one to the new tenant, restores access. */
		.recoverable = DBX_RECOVERABLE_YES,
	},
	{
		.code = "SsemUserErrorKekUserIdentityNotFound",
		.details = "Applied a customer-managed key but the user assigned identity that has "
			   "access to the key was not found in the active directory. <br> Note: This "
			   "error can occur when a user identity is deleted from Azure.",
		.resolution = "Try adding a different user-assigned identity to your key vault to "
			      "enable access to the customer-managed key. For more information, see "
			      "how to [Enable the key](#enable-key).",
		/* The deleted identity is gone, but a different one recovers the order. */
		.recoverable = DBX_RECOVERABLE_YES,
	},
	{
		.code = "SsemUserErrorUserAssignedIdentityAbsent",
		.details = "Could not fetch the passkey as the customer-managed key could not be found.",
		.resolution = "Could not access the customer-managed key. Either the User Assigned "
			      "Identity (UAI) associated with the key is deleted or the UAI type has "
			      "changed.",
		/* The cell states the cause only; setting another identity on the order recovers it. */
		.recoverable = DBX_RECOVERABLE_YES,
	},
	{
		/* The document lists this code twice, with reworded text; the lookup returns the first. */
		.code = "SsemUserErrorKeyVaultBadRequestException",
		.details = "Applied a customer-managed key, but key access has not been granted or has "
			   "been revoked, or the key vault couldn't be accessed because a firewall is "
			   "enabled.",
		.resolution = "Add the identity selected to your key vault to enable access to the "
			      "customer-managed key. If the key vault has a firewall enabled, switch to "
			      "a system-assigned identity and then add a customer-managed key. For more "
			      "information, see how to [Enable the key](#enable-key).",
		.recoverable = DBX_RECOVERABLE_YES,
	},
	{
		.code = "SsemUserErrorEncryptionKeyTypeNotSupported",
		.details = "The encryption key type isn't supported for the operation.",
		.resolution = "Enable a supported encryption type on the key - for example, RSA or "
			      "RSA-HSM. For more information, see [Key types, algorithms, and "
			      "operations](../key-vault/keys/about-keys-details.md).",
		.recoverable = DBX_RECOVERABLE_YES,
	},
	{
		.code = "SsemUserErrorSoftDeleteAndPurgeProtectionNotEnabled",
		.details = "Key vault does not have soft delete or purge protection enabled.",
		.resolution = "Ensure that both soft delete and purge protection are enabled on the key "
			      "vault.",
		.recoverable = DBX_RECOVERABLE_YES,
	},
	{
		/* The document's code cell reads "SsemUserErrorInvalidKeyVaultUrl<br>(Command-line only)". */
		.code = "SsemUserErrorInvalidKeyVaultUrl",
		.details = "An invalid key vault URI was used.",
		.resolution = "Get the correct key vault URI. To get the key vault URI, use "
			      "[Get-AzKeyVault](/powershell/module/az.keyvault/get-azkeyvault) in "
			      "PowerShell.",
		.recoverable = DBX_RECOVERABLE_YES,
	},
	{
		.code = "SsemUserErrorKeyVaultUrlWithInvalidScheme",
		.details = "Only HTTPS is supported for passing the key vault URI.",
		.resolution = "Pass the key vault URI over HTTPS.",
		.recoverable = DBX_RECOVERABLE_YES,
	},
	{
		.code = "SsemUserErrorKeyVaultUrlInvalidHost",
		.details = "The key vault URI host is not an allowed host in the geographical region.",
		.resolution = "In the public cloud, the key vault URI should end with "
			      "`vault.azure.net`. In the Azure Government cloud, the key vault URI "
			      "should end with `vault.usgovcloudapi.net`.",
		.recoverable = DBX_RECOVERABLE_YES,
	},
	{
		.code = "Generic error",
		.details = "Could not fetch the passkey.",
		.resolution = "This error is a generic error. Contact Microsoft Support to troubleshoot "
			      "the error and determine the next steps.",
		/* Unknown cause: only support can tell. */
		.recoverable = DBX_RECOVERABLE_DEPENDS,
	},
};
/* clang-format on */

const size_t dbx_ssem_table_len = sizeof(dbx_ssem_table) / sizeof(dbx_ssem_table[0]);

const struct dbx_ssem_row *dbx_ssem_lookup(const char *code)
{
	if (!code)
		return NULL;
	for (size_t i = 0; i < dbx_ssem_table_len; i++) {
		if (strcmp(dbx_ssem_table[i].code, code) == 0)
			return &dbx_ssem_table[i];
	}
	return NULL;
}

const struct dbx_ssem_row *dbx_ssem_generic(void)
{
	return &dbx_ssem_table[dbx_ssem_table_len - 1];
}

const char *dbx_recoverable_str(enum dbx_recoverable r)
{
	switch (r) {
	case DBX_RECOVERABLE_YES:
		return "yes";
	case DBX_RECOVERABLE_NO:
		return "no";
	case DBX_RECOVERABLE_DEPENDS:
		break;
	}
	return "depends";
}

/* ---- plain text from the table's markdown/HTML ---- */

/* A growing NUL-terminated string; oom latches the first allocation failure. */
struct sbuf {
	char *s;
	size_t len;
	size_t cap;
	bool oom;
};

static void sb_add(struct sbuf *b, const char *p, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 128;
		char *s;

		while (cap < b->len + n + 1)
			cap *= 2;
		s = realloc(b->s, cap);
		if (!s) {
			b->oom = true;
			return;
		}
		b->s = s;
		b->cap = cap;
	}
	memcpy(b->s + b->len, p, n);
	b->len += n;
	b->s[b->len] = '\0';
}

static void sb_str(struct sbuf *b, const char *s)
{
	sb_add(b, s, strlen(s));
}

/* If p starts an HTML tag "<name...>", its length (through '>'), and its lower-case name. */
static size_t html_tag(const char *p, char *name, size_t name_size)
{
	size_t i = 1, n = 0;

	if (p[0] != '<')
		return 0;
	if (p[i] == '/')
		name[n++] = p[i++];
	if (!isalpha((unsigned char)p[i]))
		return 0;
	while (isalnum((unsigned char)p[i])) {
		if (n + 1 < name_size)
			name[n++] = (char)tolower((unsigned char)p[i]);
		i++;
	}
	name[n] = '\0';
	while (p[i] && p[i] != '>' && p[i] != '<')
		i++;
	return p[i] == '>' ? i + 1 : 0;
}

/* If p starts a markdown link "[text](url)", its length, and the text's span. */
static size_t md_link(const char *p, const char **text, size_t *text_len)
{
	const char *close, *end;

	if (p[0] != '[')
		return 0;
	close = strchr(p + 1, ']');
	if (!close || close[1] != '(')
		return 0;
	end = strchr(close + 2, ')');
	if (!end)
		return 0;
	*text = p + 1;
	*text_len = (size_t)(close - (p + 1));
	return (size_t)(end + 1 - p);
}

/*
 * First pass: markup to text with '\n' line breaks. Lists may nest; each
 * <ol> restarts numbering at 1 and </ol> returns to the outer count.
 */
static void remedy_markup(struct sbuf *b, const char *s)
{
	unsigned counters[8] = {0};
	size_t depth = 0;
	char name[8];

	while (*s) {
		const char *text;
		size_t text_len, n;

		n = html_tag(s, name, sizeof(name));
		if (n) {
			if (strcmp(name, "ol") == 0 || strcmp(name, "ul") == 0) {
				if (depth + 1 < sizeof(counters) / sizeof(counters[0]))
					depth++;
				counters[depth] = 0;
				sb_str(b, "\n");
			} else if (strcmp(name, "/ol") == 0 || strcmp(name, "/ul") == 0) {
				if (depth > 0)
					depth--;
				sb_str(b, "\n");
			} else if (strcmp(name, "li") == 0) {
				char num[24];

				snprintf(num, sizeof(num), "\n%u. ", ++counters[depth]);
				sb_str(b, num);
			} else if (strcmp(name, "br") == 0 || strcmp(name, "/li") == 0 ||
				   strcmp(name, "p") == 0 || strcmp(name, "/p") == 0) {
				sb_str(b, "\n");
			}
			/* Any other tag is dropped. */
			s += n;
			continue;
		}
		n = md_link(s, &text, &text_len);
		if (n) {
			for (size_t i = 0; i < text_len; i++) {
				if (text[i] != '`')
					sb_add(b, &text[i], 1);
			}
			s += n;
			continue;
		}
		if (*s != '`')
			sb_add(b, s, 1);
		s++;
	}
}

/* Second pass: per line, collapse blanks and trim; drop empty lines. */
static void remedy_lines(struct sbuf *out, const char *s)
{
	bool first_line = true;

	while (*s) {
		const char *eol = strchr(s, '\n');
		size_t n = eol ? (size_t)(eol - s) : strlen(s);
		bool blank = false, any = false;

		for (size_t i = 0; i < n; i++) {
			unsigned char c = (unsigned char)s[i];

			if (isspace(c) || iscntrl(c)) {
				blank = any;
				continue;
			}
			if (!any && !first_line)
				sb_str(out, "\n");
			if (blank)
				sb_str(out, " ");
			sb_add(out, (const char *)&s[i], 1);
			blank = false;
			any = true;
		}
		if (any)
			first_line = false;
		s += n;
		if (*s == '\n')
			s++;
	}
}

/* Markup to plain text, lines joined with "\n". NULL on ENOMEM. */
static char *plain_text(const char *markup)
{
	struct sbuf pass = {0}, out = {0};

	remedy_markup(&pass, markup ? markup : "");
	sb_str(&pass, "");
	if (pass.oom)
		goto out;
	remedy_lines(&out, pass.s);
	sb_str(&out, "");
out:
	free(pass.s);
	if (pass.oom || out.oom) {
		free(out.s);
		return NULL;
	}
	return out.s;
}

/* Plain text (no markup pass), per line blanks collapsed and ends trimmed. NULL on ENOMEM. */
static char *plain_lines(const char *text)
{
	struct sbuf out = {0};

	remedy_lines(&out, text);
	sb_str(&out, "");
	if (out.oom) {
		free(out.s);
		return NULL;
	}
	return out.s;
}

char *dbx_ssem_remedy(const struct dbx_ssem_row *row)
{
	if (!row)
		return NULL;
	return plain_text(row->resolution);
}

/* ---- the errors-file block ---- */

/* True when s holds something besides blanks and control characters. */
static bool has_text(const char *s)
{
	if (!s)
		return false;
	for (; *s; s++) {
		if (!isspace((unsigned char)*s) && !iscntrl((unsigned char)*s))
			return true;
	}
	return false;
}

/*
 * Append "key: value\n" with value on one line: control characters (CR, LF,
 * tabs, escapes) become spaces and the ends are trimmed, so a service
 * string can never start a line of its own.
 */
static void add_field(struct sbuf *b, const char *key, const char *value)
{
	size_t start = 0, end = strlen(value);

	while (start < end &&
	       (isspace((unsigned char)value[start]) || iscntrl((unsigned char)value[start])))
		start++;
	while (end > start &&
	       (isspace((unsigned char)value[end - 1]) || iscntrl((unsigned char)value[end - 1])))
		end--;
	sb_str(b, key);
	sb_str(b, ": ");
	for (size_t i = start; i < end; i++) {
		unsigned char c = (unsigned char)value[i];

		if (iscntrl(c))
			sb_str(b, " ");
		else
			sb_add(b, &value[i], 1);
	}
	sb_str(b, "\n");
}

/*
 * "time: ..." in one spelling, ISO 8601 UTC to the second ("2026-11-28T12:00:00Z"),
 * whatever offset and fraction the service used; text we cannot read is shown as given.
 */
static void add_time(struct sbuf *b, const char *value)
{
	time_t t = dbx_parse_time(value);
	struct tm tm;
	char utc[32];

	if (t != (time_t)-1 && gmtime_r(&t, &tm) &&
	    strftime(utc, sizeof(utc), "%Y-%m-%dT%H:%M:%SZ", &tm) > 0)
		add_field(b, "time", utc);
	else
		add_field(b, "time", value);
}

/* "remedy: first line\n  second line\n...": continuation lines indented by two spaces. */
static void add_remedy(struct sbuf *b, const char *remedy)
{
	const char *s = remedy;
	bool first = true;

	sb_str(b, "remedy:");
	while (*s) {
		const char *eol = strchr(s, '\n');
		size_t n = eol ? (size_t)(eol - s) : strlen(s);

		sb_str(b, first ? " " : "  ");
		sb_add(b, s, n);
		sb_str(b, "\n");
		first = false;
		s += n;
		if (*s == '\n')
			s++;
	}
	if (first)
		sb_str(b, "\n");
}

/* The table's details as one line: markup removed, line breaks become spaces. */
static char *details_line(const char *details)
{
	char *t = plain_text(details);

	if (t) {
		for (char *p = t; *p; p++) {
			if (*p == '\n')
				*p = ' ';
		}
	}
	return t;
}

enum dbx_err dbx_error_block_append(char **buf, size_t *len, const struct dbx_error_block *block)
{
	const struct dbx_ssem_row *row, *generic = dbx_ssem_generic();
	struct sbuf b = {0};
	char *remedy = NULL, *details = NULL, *grown;
	const char *message;
	enum dbx_err rc = DBX_OK;

	if (!buf || !len || !block || !has_text(block->code))
		return DBX_EINVAL;

	row = dbx_ssem_lookup(block->code);
	if (has_text(block->remedy))
		remedy = plain_lines(block->remedy); /* the producer's own advice, as plain text */
	else
		remedy = dbx_ssem_remedy(row ? row : generic);
	if (!remedy) {
		rc = DBX_ENOMEM;
		goto out;
	}
	message = block->message;
	if (!has_text(message)) {
		/*
		 * No text from the service: the table's details. For a code the
		 * table does not know, the Generic row's "Could not fetch the
		 * passkey." is only true of passkey (Ssem*) errors.
		 */
		if (row || strncmp(block->code, "Ssem", 4) == 0) {
			details = details_line(row ? row->details : generic->details);
			if (!details) {
				rc = DBX_ENOMEM;
				goto out;
			}
			message = details;
		} else {
			message = "(no details from the service)";
		}
	}

	if (!*buf)
		*len = 0;
	if (*len > 0) {
		if ((*buf)[*len - 1] != '\n')
			sb_str(&b, "\n");
		sb_str(&b, "\n");
	}
	add_field(&b, "code", block->code);
	if (has_text(block->source))
		add_field(&b, "source", block->source);
	if (has_text(block->time))
		add_time(&b, block->time);
	add_field(&b, "message", message);
	if (has_text(block->target))
		add_field(&b, "target", block->target);
	if (has_text(block->recoverable))
		add_field(&b, "recoverable", block->recoverable);
	else
		add_field(&b, "recoverable",
			  dbx_recoverable_str(row ? row->recoverable : generic->recoverable));
	add_remedy(&b, remedy);
	if (has_text(block->request_id))
		add_field(&b, "request_id", block->request_id);
	if (b.oom) {
		rc = DBX_ENOMEM;
		goto out;
	}

	grown = realloc(*buf, *len + b.len + 1);
	if (!grown) {
		rc = DBX_ENOMEM;
		goto out;
	}
	memcpy(grown + *len, b.s, b.len + 1);
	*buf = grown;
	*len += b.len;
out:
	free(b.s);
	free(remedy);
	free(details);
	return rc;
}
