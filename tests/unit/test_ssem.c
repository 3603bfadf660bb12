/*
 * test_ssem.c: the Ssem error table and the errors-file block format.
 *
 * One test per row of the document's "Troubleshoot errors" table: the row
 * is found by its code, its details are the document's words, its
 * recoverable value is the one we decided, and its plain remedy carries no
 * markup. The whole table is also compared cell by cell with the source
 * document's table as the repository ships it (docs/ssem-table.md, or the
 * file DBX_SSEM_DOC names). The block tests are golden outputs: what a user
 * reads in an order's errors file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "databoxfs/ssem.h"

struct expect_row {
	const char *code;
	const char *details;
	enum dbx_recoverable recoverable;
	int has_list; /* the resolution had an <ol>: the remedy has numbered steps */
};

/* Copied from the document by hand (cell text, padding trimmed). */
static const struct expect_row expected[] = {
    {"SsemUserErrorEncryptionKeyDisabled",
     "Could not fetch the passkey as the customer-managed key is disabled.", DBX_RECOVERABLE_YES,
     0},
    {"SsemUserErrorEncryptionKeyExpired",
     "Could not fetch the passkey as the customer-managed key has expired.", DBX_RECOVERABLE_YES,
     0},
    {"SsemUserErrorKeyDetailsNotFound",
     "Could not fetch the passkey as the customer-managed key could not be found.",
     DBX_RECOVERABLE_DEPENDS, 1},
    {"SsemUserErrorKeyVaultBadRequestException",
     "Applied a customer-managed key but the key access has not been granted or has been revoked, "
     "or "
     "unable to access key vault due to firewall being enabled.",
     DBX_RECOVERABLE_YES, 0},
    {"SsemUserErrorKeyVaultDetailsNotFound",
     "Could not fetch the passkey as the associated key vault for the customer-managed key could "
     "not be "
     "found.",
     DBX_RECOVERABLE_DEPENDS, 1},
    {"SsemUserErrorSystemAssignedIdentityAbsent",
     "Could not fetch the passkey as the customer-managed key could not be found.",
     DBX_RECOVERABLE_YES, 1},
    {"SsemUserErrorUserAssignedLimitReached",
     "Adding new User Assigned Identity failed as you have reached the limit on the total number "
     "of user "
     "assigned identities that can be added.",
     DBX_RECOVERABLE_YES, 0},
    {"SsemUserErrorCrossTenantIdentityAccessForbidden",
     "Managed identity access operation failed. <br> Note: This error can occur when a "
     "subscription is "
     "moved to different tenant. The customer has to manually move the identity to the new tenant.",
     DBX_RECOVERABLE_YES, 0},
    {"SsemUserErrorKekUserIdentityNotFound",
     "Applied a customer-managed key but the user assigned identity that has access to the key was "
     "not "
     "found in the active directory. <br> Note: This error can occur when a user identity is "
     "deleted from "
     "Azure.",
     DBX_RECOVERABLE_YES, 0},
    {"SsemUserErrorUserAssignedIdentityAbsent",
     "Could not fetch the passkey as the customer-managed key could not be found.",
     DBX_RECOVERABLE_YES, 0},
    {"SsemUserErrorKeyVaultBadRequestException",
     "Applied a customer-managed key, but key access has not been granted or has been revoked, or "
     "the key "
     "vault couldn't be accessed because a firewall is enabled.",
     DBX_RECOVERABLE_YES, 0},
    {"SsemUserErrorEncryptionKeyTypeNotSupported",
     "The encryption key type isn't supported for the operation.", DBX_RECOVERABLE_YES, 0},
    {"SsemUserErrorSoftDeleteAndPurgeProtectionNotEnabled",
     "Key vault does not have soft delete or purge protection enabled.", DBX_RECOVERABLE_YES, 0},
    {"SsemUserErrorInvalidKeyVaultUrl", "An invalid key vault URI was used.", DBX_RECOVERABLE_YES,
     0},
    {"SsemUserErrorKeyVaultUrlWithInvalidScheme",
     "Only HTTPS is supported for passing the key vault URI.", DBX_RECOVERABLE_YES, 0},
    {"SsemUserErrorKeyVaultUrlInvalidHost",
     "The key vault URI host is not an allowed host in the geographical region.",
     DBX_RECOVERABLE_YES, 0},
    {"Generic error", "Could not fetch the passkey.", DBX_RECOVERABLE_DEPENDS, 0},
};

#define N_EXPECTED (sizeof(expected) / sizeof(expected[0]))

static void check_row(size_t i)
{
	const struct expect_row *x = &expected[i];
	const struct dbx_ssem_row *row = &dbx_ssem_table[i];
	const struct dbx_ssem_row *found = dbx_ssem_lookup(x->code);
	char *remedy;

	assert_int_equal(dbx_ssem_table_len, N_EXPECTED);
	assert_string_equal(row->code, x->code);
	assert_string_equal(row->details, x->details);
	assert_int_equal(row->recoverable, x->recoverable);
	assert_non_null(row->resolution);

	/* The lookup finds this row, or for a repeated code the first row with it. */
	assert_non_null(found);
	assert_string_equal(found->code, x->code);
	if (found != row) {
		assert_true(found < row);
		assert_string_equal(x->code, "SsemUserErrorKeyVaultBadRequestException");
	}

	remedy = dbx_ssem_remedy(row);
	assert_non_null(remedy);
	assert_true(strlen(remedy) > 10);
	assert_null(strchr(remedy, '<'));
	assert_null(strchr(remedy, '>'));
	assert_null(strchr(remedy, '`'));
	assert_null(strchr(remedy, '['));
	assert_null(strstr(remedy, "]("));
	assert_null(strstr(remedy, "  "));
	assert_null(strstr(remedy, "\n\n"));
	assert_true(remedy[0] != ' ' && remedy[0] != '\n');
	assert_true(remedy[strlen(remedy) - 1] != ' ' && remedy[strlen(remedy) - 1] != '\n');
	if (x->has_list) {
		assert_non_null(strstr(remedy, "\n1. "));
		assert_non_null(strstr(remedy, "\n2. "));
	} else {
		assert_null(strchr(remedy, '\n'));
	}
	free(remedy);
}

#define ROW_TEST(n)                                                                                \
	static void test_row_##n(void **state)                                                     \
	{                                                                                          \
		(void)state;                                                                       \
		check_row(n);                                                                      \
	}

ROW_TEST(0)
ROW_TEST(1)
ROW_TEST(2)
ROW_TEST(3)
ROW_TEST(4)
ROW_TEST(5)
ROW_TEST(6)
ROW_TEST(7)
ROW_TEST(8)
ROW_TEST(9)
ROW_TEST(10)
ROW_TEST(11)
ROW_TEST(12)
ROW_TEST(13)
ROW_TEST(14)
ROW_TEST(15)
ROW_TEST(16)

/* ---- the table against the document itself ---- */

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0) {
		buf = calloc(1, (size_t)n + 1);
		if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
			free(buf);
			buf = NULL;
		}
	}
	fclose(f);
	return buf;
}

static char *trim_dup(const char *s, size_t n)
{
	while (n > 0 && *s == ' ') {
		s++;
		n--;
	}
	while (n > 0 && s[n - 1] == ' ')
		n--;
	return strndup(s, n);
}

/* Replace every occurrence of from by to, in place (to no longer than from). */
static void replace_all(char *s, const char *from, const char *to)
{
	char *p;

	while ((p = strstr(s, from)) != NULL) {
		memcpy(p, to, strlen(to));
		memmove(p + strlen(to), p + strlen(from), strlen(p + strlen(from)) + 1);
	}
}

static void test_table_matches_document(void **state)
{
	char *doc = NULL, *path = NULL, *section, *line;
	const char *env = getenv("DBX_SSEM_DOC");
	size_t row = 0;

	(void)state;
	if (env) {
		path = strdup(env);
	} else {
		/* __FILE__ is .../tests/unit/test_ssem.c; the table is .../docs/ssem-table.md. */
		const char *slash = strstr(__FILE__, "/tests/unit/test_ssem.c");

		if (slash && asprintf(&path, "%.*s/docs/ssem-table.md", (int)(slash - __FILE__),
				      __FILE__) < 0)
			path = NULL;
	}
	if (path)
		doc = read_file(path);
	free(path);
	assert_non_null(doc);
	section = strstr(doc, "## Troubleshoot errors");
	assert_non_null(section);
	for (line = strtok(section, "\n"); line; line = strtok(NULL, "\n")) {
		char *cells[3], *p = line, *br;

		if (strncmp(line, "| Ssem", 6) != 0 && strncmp(line, "| Generic", 9) != 0)
			continue;
		p++;
		for (int c = 0; c < 3; c++) {
			char *bar = strchr(p, '|');

			assert_non_null(bar);
			cells[c] = trim_dup(p, (size_t)(bar - p));
			p = bar + 1;
		}
		br = strstr(cells[0], "<br>");
		if (br)
			*br = '\0'; /* "SsemUserErrorInvalidKeyVaultUrl<br>(Command-line only)" */
		/* The mojibake the table stores as "vault's" (see ssem.c). */
		replace_all(cells[2], "vault\xc3\xa2\xe2\x82\xac\xe2\x84\xa2s", "vault's");

		assert_true(row < dbx_ssem_table_len);
		assert_string_equal(dbx_ssem_table[row].code, cells[0]);
		assert_string_equal(dbx_ssem_table[row].details, cells[1]);
		assert_string_equal(dbx_ssem_table[row].resolution, cells[2]);
		for (int c = 0; c < 3; c++)
			free(cells[c]);
		row++;
	}
	assert_int_equal(row, 17);
	assert_int_equal(dbx_ssem_table_len, 17);
	free(doc);
}

/* ---- lookups ---- */

static void test_lookup_unknown_and_generic(void **state)
{
	const struct dbx_ssem_row *g = dbx_ssem_generic();

	(void)state;
	assert_null(dbx_ssem_lookup("SsemUserErrorSomethingNew"));
	assert_null(
	    dbx_ssem_lookup("ssemusererrorencryptionkeydisabled")); /* exact, case-sensitive */
	assert_null(dbx_ssem_lookup(""));
	assert_null(dbx_ssem_lookup(NULL));
	assert_null(dbx_ssem_lookup("SsemUserErrorInvalidKeyVaultUrl<br>(Command-line only)"));
	assert_non_null(g);
	assert_string_equal(g->code, "Generic error");
	assert_ptr_equal(g, &dbx_ssem_table[dbx_ssem_table_len - 1]);
	assert_int_equal(g->recoverable, DBX_RECOVERABLE_DEPENDS);
	assert_string_equal(dbx_recoverable_str(DBX_RECOVERABLE_YES), "yes");
	assert_string_equal(dbx_recoverable_str(DBX_RECOVERABLE_NO), "no");
	assert_string_equal(dbx_recoverable_str(DBX_RECOVERABLE_DEPENDS), "depends");
}

static void test_lookup_repeated_code_returns_first(void **state)
{
	const struct dbx_ssem_row *r = dbx_ssem_lookup("SsemUserErrorKeyVaultBadRequestException");

	(void)state;
	assert_ptr_equal(r, &dbx_ssem_table[3]);
	assert_string_equal(dbx_ssem_table[10].code, "SsemUserErrorKeyVaultBadRequestException");
}

/* ---- plain remedies ---- */

static const char *const key_details_remedy =
    "If you deleted the key vault, you can't recover the customer-managed key. If you migrated the "
    "key "
    "vault to a different tenant, see Change a key vault tenant ID after a subscription move. If "
    "you "
    "deleted the key vault:\n"
    "1. Yes, if it is in the purge-protection duration, using the steps at Recover a key vault.\n"
    "2. No, if it is beyond the purge-protection duration.\n"
    "Else if the key vault underwent a tenant migration, yes, it can be recovered using one of the "
    "below "
    "steps:\n"
    "1. Revert the key vault back to the old tenant.\n"
    "2. Set Identity = None and then set the value back to Identity = SystemAssigned. This deletes "
    "and "
    "recreates the identity once the new identity has been created. Enable Get, WrapKey, and "
    "UnwrapKey "
    "permissions to the new identity in the key vault's Access policy.";

static void test_remedy_golden(void **state)
{
	char *r;

	(void)state;
	r = dbx_ssem_remedy(dbx_ssem_lookup("SsemUserErrorKeyDetailsNotFound"));
	assert_string_equal(r, key_details_remedy);
	free(r);

	r = dbx_ssem_remedy(dbx_ssem_lookup("SsemUserErrorSystemAssignedIdentityAbsent"));
	assert_string_equal(
	    r, "Yes, check if:\n"
	       "1. Key vault still has the MSI in the access policy.\n"
	       "2. Identity is of type System assigned.\n"
	       "3. Enable Get, WrapKey, and UnwrapKey permissions to the identity in the key "
	       "vault's access policy. These permissions must remain for the lifetime of the "
	       "order. They're used during order creation and at the beginning of the Data Copy "
	       "phase.");
	free(r);

	r = dbx_ssem_remedy(dbx_ssem_lookup("SsemUserErrorKeyVaultUrlInvalidHost"));
	assert_string_equal(
	    r, "In the public cloud, the key vault URI should end with vault.azure.net. In the "
	       "Azure Government cloud, the key vault URI should end with "
	       "vault.usgovcloudapi.net.");
	free(r);

	r = dbx_ssem_remedy(dbx_ssem_lookup("SsemUserErrorInvalidKeyVaultUrl"));
	assert_string_equal(
	    r, "Get the correct key vault URI. To get the key vault URI, use Get-AzKeyVault in "
	       "PowerShell.");
	free(r);

	r = dbx_ssem_remedy(dbx_ssem_lookup("SsemUserErrorKekUserIdentityNotFound"));
	assert_string_equal(
	    r, "Try adding a different user-assigned identity to your key vault to enable "
	       "access to the customer-managed key. For more information, see how to Enable the "
	       "key.");
	free(r);
}

static void test_remedy_markup_edge_cases(void **state)
{
	const struct dbx_ssem_row rows[] = {
	    {.code = "x", .details = "d", .resolution = "  a   b <br><br>  c  "},
	    {.code = "x", .details = "d", .resolution = "[link](u) and [not a link] and `x`"},
	    {.code = "x",
	     .details = "d",
	     .resolution = "<ol><li>a<ol><li>b</li></ol></li><li>c</li></ol>"},
	    {.code = "x", .details = "d", .resolution = "1 < 2 and <b>bold</b> and <unclosed"},
	    {.code = "x", .details = "d", .resolution = ""},
	};
	char *r;

	(void)state;
	r = dbx_ssem_remedy(&rows[0]);
	assert_string_equal(r, "a b\nc");
	free(r);
	r = dbx_ssem_remedy(&rows[1]);
	assert_string_equal(r, "link and [not a link] and x");
	free(r);
	r = dbx_ssem_remedy(&rows[2]);
	assert_string_equal(r, "1. a\n1. b\n2. c");
	free(r);
	r = dbx_ssem_remedy(&rows[3]);
	assert_string_equal(r, "1 < 2 and bold and <unclosed");
	free(r);
	r = dbx_ssem_remedy(&rows[4]);
	assert_string_equal(r, "");
	free(r);
	assert_null(dbx_ssem_remedy(NULL));
}

/* ---- errors-file blocks ---- */

static char *one_block(const struct dbx_error_block *b)
{
	char *buf = NULL;
	size_t len = 0;

	assert_int_equal(dbx_error_block_append(&buf, &len, b), DBX_OK);
	assert_non_null(buf);
	assert_int_equal(len, strlen(buf));
	return buf;
}

static void test_block_design_example(void **state)
{
	const struct dbx_error_block b = {
	    .code = "SsemUserErrorEncryptionKeyDisabled",
	    .source = "order",
	    .time = "2026-11-28T12:00:00Z",
	    .message = "Could not fetch the passkey as the customer-managed key is disabled.",
	    .request_id = "5f0c2a9e-1111-2222-3333-444455556666",
	};
	char *buf;

	(void)state;
	buf = one_block(&b);
	assert_string_equal(
	    buf, "code: SsemUserErrorEncryptionKeyDisabled\n"
		 "source: order\n"
		 "time: 2026-11-28T12:00:00Z\n"
		 "message: Could not fetch the passkey as the customer-managed key is disabled.\n"
		 "recoverable: yes\n"
		 "remedy: Yes, by enabling the key version.\n"
		 "request_id: 5f0c2a9e-1111-2222-3333-444455556666\n");
	free(buf);
}

static void test_block_optional_lines_absent(void **state)
{
	/* No message: the table's details. No time, target or request id: no such lines ("" is
	 * absent too). */
	const struct dbx_error_block b = {
	    .code = "SsemUserErrorEncryptionKeyExpired",
	    .source = "last-write",
	    .time = "",
	    .request_id = "",
	};
	char *buf;

	(void)state;
	buf = one_block(&b);
	assert_string_equal(
	    buf, "code: SsemUserErrorEncryptionKeyExpired\n"
		 "source: last-write\n"
		 "message: Could not fetch the passkey as the customer-managed key has expired.\n"
		 "recoverable: yes\n"
		 "remedy: Yes, by enabling the key version.\n");
	free(buf);
}

static void test_block_target_after_message(void **state)
{
	const struct dbx_error_block b = {
	    .code = "SsemUserCopyErrorWaitingForAction",
	    .source = "order",
	    .message = "Job has an error in copy stage and is waiting for customer action.",
	    .target = "CopyIntervention",
	};
	char *buf;

	(void)state;
	buf = one_block(&b);
	/* Unknown code: its own code and message, the Generic row's recoverable and remedy. */
	assert_string_equal(
	    buf, "code: SsemUserCopyErrorWaitingForAction\n"
		 "source: order\n"
		 "message: Job has an error in copy stage and is waiting for customer action.\n"
		 "target: CopyIntervention\n"
		 "recoverable: depends\n"
		 "remedy: This error is a generic error. Contact Microsoft Support to troubleshoot "
		 "the error and determine the next steps.\n");
	free(buf);
}

static void test_block_multiline_remedy_indented(void **state)
{
	const struct dbx_error_block b = {
	    .code = "SsemUserErrorKeyVaultDetailsNotFound",
	    .source = "order",
	    .time = "2026-11-28T12:00:00Z",
	    .request_id = "rid-1",
	};
	char *buf, *expect = NULL;
	const char *p;
	size_t n = 0;
	FILE *f;

	(void)state;
	f = open_memstream(&expect, &n);
	assert_non_null(f);
	fputs("code: SsemUserErrorKeyVaultDetailsNotFound\n"
	      "source: order\n"
	      "time: 2026-11-28T12:00:00Z\n"
	      "message: Could not fetch the passkey as the associated key vault for the "
	      "customer-managed key "
	      "could not be found.\n"
	      "recoverable: depends\n"
	      "remedy: ",
	      f);
	for (p = key_details_remedy; *p; p++) {
		fputc(*p, f);
		if (*p == '\n')
			fputs("  ", f);
	}
	fputs("\nrequest_id: rid-1\n", f);
	fclose(f);

	buf = one_block(&b);
	assert_string_equal(buf, expect);
	assert_non_null(strstr(buf, "\n  1. Yes, if it is in the purge-protection duration"));
	assert_non_null(strstr(buf, "\n  2. Set Identity = None"));
	free(buf);
	free(expect);
}

static void test_block_details_with_br_is_one_line(void **state)
{
	const struct dbx_error_block b = {
	    .code = "SsemUserErrorCrossTenantIdentityAccessForbidden",
	    .source = "last-write",
	};
	char *buf;

	(void)state;
	buf = one_block(&b);
	assert_non_null(strstr(
	    buf, "\nmessage: Managed identity access operation failed. Note: This error can "
		 "occur when a subscription is moved to different tenant. The customer has to "
		 "manually move the identity to the new tenant.\n"));
	assert_null(strchr(buf, '<'));
	free(buf);
}

static void test_block_cannot_be_forged(void **state)
{
	const struct dbx_error_block b = {
	    .code = "SsemUserErrorEncryptionKeyDisabled\nrecoverable: no",
	    .source = "order",
	    .message = "bad\r\nrecoverable: no\n\ncode: Fake\rx\x1b[31m",
	    .target = "t1\nremedy: rm -rf",
	    .request_id = "r\n\nid",
	};
	char *buf;

	(void)state;
	buf = one_block(&b);
	assert_string_equal(
	    buf, "code: SsemUserErrorEncryptionKeyDisabled recoverable: no\n"
		 "source: order\n"
		 "message: bad  recoverable: no  code: Fake x [31m\n"
		 "target: t1 remedy: rm -rf\n"
		 "recoverable: depends\n"
		 "remedy: This error is a generic error. Contact Microsoft Support to troubleshoot "
		 "the error and determine the next steps.\n"
		 "request_id: r  id\n");
	free(buf);
}

static void test_block_unknown_code_without_message(void **state)
{
	const struct dbx_error_block ssem = {.code = "SsemUserErrorBrandNew", .source = "order"};
	const struct dbx_error_block other = {.code = "WaitingForCustomerActionForKek",
					      .source = "order"};
	char *buf;

	(void)state;
	buf = one_block(&ssem);
	assert_non_null(
	    strstr(buf, "\nmessage: Could not fetch the passkey.\nrecoverable: depends\n"));
	free(buf);
	buf = one_block(&other);
	assert_non_null(strstr(buf, "\nmessage: (no details from the service)\n"));
	free(buf);
}

static void test_block_separated_by_one_blank_line(void **state)
{
	const struct dbx_error_block a = {
	    .code = "SsemUserErrorKeyVaultUrlWithInvalidScheme",
	    .source = "last-write",
	    .message = "Only HTTPS is supported for passing the key vault URI.",
	};
	const struct dbx_error_block b = {
	    .code = "SsemUserErrorEncryptionKeyTypeNotSupported",
	    .source = "order",
	    .time = "2026-11-28T12:00:00Z",
	};
	char *buf = NULL;
	size_t len = 0;

	(void)state;
	assert_int_equal(dbx_error_block_append(&buf, &len, &a), DBX_OK);
	assert_int_equal(dbx_error_block_append(&buf, &len, &b), DBX_OK);
	assert_int_equal(len, strlen(buf));
	assert_string_equal(
	    buf, "code: SsemUserErrorKeyVaultUrlWithInvalidScheme\n"
		 "source: last-write\n"
		 "message: Only HTTPS is supported for passing the key vault URI.\n"
		 "recoverable: yes\n"
		 "remedy: Pass the key vault URI over HTTPS.\n"
		 "\n"
		 "code: SsemUserErrorEncryptionKeyTypeNotSupported\n"
		 "source: order\n"
		 "time: 2026-11-28T12:00:00Z\n"
		 "message: The encryption key type isn't supported for the operation.\n"
		 "recoverable: yes\n"
		 "remedy: Enable a supported encryption type on the key - for example, RSA or "
		 "RSA-HSM. For more information, see Key types, algorithms, and operations.\n");
	free(buf);
}

static void test_block_time_in_one_spelling(void **state)
{
	/* A stageTime as the service sends it, with fraction and offset, reads as UTC to the
	 * second. */
	const struct dbx_error_block b = {
	    .code = "WaitingForCustomerActionForKek",
	    .source = "order",
	    .time = "2026-11-28T17:30:00.1234567+05:30",
	    .message = "Stage 'Data copy' (DataCopy) is WaitingForCustomerActionForKek",
	    .target = "DataCopy",
	};
	const struct dbx_error_block odd = {
	    .code = "X", .source = "order", .time = "last\ntuesday"};
	char *buf;

	(void)state;
	buf = one_block(&b);
	assert_string_equal(
	    buf, "code: WaitingForCustomerActionForKek\n"
		 "source: order\n"
		 "time: 2026-11-28T12:00:00Z\n"
		 "message: Stage 'Data copy' (DataCopy) is WaitingForCustomerActionForKek\n"
		 "target: DataCopy\n"
		 "recoverable: depends\n"
		 "remedy: This error is a generic error. Contact Microsoft Support to "
		 "troubleshoot the error and determine the next steps.\n");
	free(buf);
	buf = one_block(&odd);
	assert_non_null(strstr(buf, "\ntime: last tuesday\n"));
	free(buf);
}

static void test_block_producer_advice(void **state)
{
	/* A failed read is no service code: the producer's own recoverable and remedy are shown. */
	const struct dbx_error_block b = {
	    .code = "HostUnreachable",
	    .source = "read",
	    .time = "2026-11-28T12:00:00Z",
	    .message = "could not connect to management.azure.com",
	    .recoverable = "yes",
	    .remedy = "Check the network.\n  The next read   tries again.\r\nrecoverable: no",
	};
	/* An override wins over the table too; a one-line recoverable stays one line. */
	const struct dbx_error_block ssem = {
	    .code = "SsemUserErrorEncryptionKeyDisabled",
	    .source = "last-write",
	    .recoverable = "depends\nremedy: forged",
	};
	char *buf;

	(void)state;
	buf = one_block(&b);
	assert_string_equal(buf, "code: HostUnreachable\n"
				 "source: read\n"
				 "time: 2026-11-28T12:00:00Z\n"
				 "message: could not connect to management.azure.com\n"
				 "recoverable: yes\n"
				 "remedy: Check the network.\n"
				 "  The next read tries again.\n"
				 "  recoverable: no\n");
	free(buf);
	buf = one_block(&ssem);
	assert_string_equal(buf,
			    "code: SsemUserErrorEncryptionKeyDisabled\n"
			    "source: last-write\n"
			    "message: Could not fetch the passkey as the customer-managed key is "
			    "disabled.\n"
			    "recoverable: depends remedy: forged\n"
			    "remedy: Yes, by enabling the key version.\n");
	free(buf);
}

static void test_block_requires_code(void **state)
{
	const struct dbx_error_block none = {.source = "order"};
	const struct dbx_error_block blank = {.code = " \n", .source = "order"};
	char *buf = NULL;
	size_t len = 0;

	(void)state;
	assert_int_equal(dbx_error_block_append(&buf, &len, &none), DBX_EINVAL);
	assert_int_equal(dbx_error_block_append(&buf, &len, &blank), DBX_EINVAL);
	assert_null(buf);
	assert_int_equal(len, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_row_0),
	    cmocka_unit_test(test_row_1),
	    cmocka_unit_test(test_row_2),
	    cmocka_unit_test(test_row_3),
	    cmocka_unit_test(test_row_4),
	    cmocka_unit_test(test_row_5),
	    cmocka_unit_test(test_row_6),
	    cmocka_unit_test(test_row_7),
	    cmocka_unit_test(test_row_8),
	    cmocka_unit_test(test_row_9),
	    cmocka_unit_test(test_row_10),
	    cmocka_unit_test(test_row_11),
	    cmocka_unit_test(test_row_12),
	    cmocka_unit_test(test_row_13),
	    cmocka_unit_test(test_row_14),
	    cmocka_unit_test(test_row_15),
	    cmocka_unit_test(test_row_16),
	    cmocka_unit_test(test_table_matches_document),
	    cmocka_unit_test(test_lookup_unknown_and_generic),
	    cmocka_unit_test(test_lookup_repeated_code_returns_first),
	    cmocka_unit_test(test_remedy_golden),
	    cmocka_unit_test(test_remedy_markup_edge_cases),
	    cmocka_unit_test(test_block_design_example),
	    cmocka_unit_test(test_block_optional_lines_absent),
	    cmocka_unit_test(test_block_target_after_message),
	    cmocka_unit_test(test_block_multiline_remedy_indented),
	    cmocka_unit_test(test_block_details_with_br_is_one_line),
	    cmocka_unit_test(test_block_cannot_be_forged),
	    cmocka_unit_test(test_block_unknown_code_without_message),
	    cmocka_unit_test(test_block_separated_by_one_blank_line),
	    cmocka_unit_test(test_block_time_in_one_spelling),
	    cmocka_unit_test(test_block_producer_advice),
	    cmocka_unit_test(test_block_requires_code),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
