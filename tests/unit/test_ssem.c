/*
 * test_ssem.c: the Ssem error table (backend/rules/ssem.c) and its lookup.
 *
 * One test per row of the document's "Troubleshoot errors" table: the row
 * is found by its code, its details are the document's words, and its
 * recoverable value is the one we decided. The whole table is also
 * compared cell by cell with the source document's table as the repository
 * ships it (docs/ssem-table.md, or the file DBX_SSEM_DOC names). How a row
 * reads in an errors file is test_errors.c's part.
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
};

/* Copied from the document by hand (cell text, padding trimmed). */
static const struct expect_row expected[] = {
    {"SsemUserErrorEncryptionKeyDisabled",
     "Could not fetch the passkey as the customer-managed key is disabled.", DBX_RECOVERABLE_YES},
    {"SsemUserErrorEncryptionKeyExpired",
     "Could not fetch the passkey as the customer-managed key has expired.", DBX_RECOVERABLE_YES},
    {"SsemUserErrorKeyDetailsNotFound",
     "Could not fetch the passkey as the customer-managed key could not be found.",
     DBX_RECOVERABLE_DEPENDS},
    {"SsemUserErrorKeyVaultBadRequestException",
     "Applied a customer-managed key but the key access has not been granted or has been revoked, "
     "or "
     "unable to access key vault due to firewall being enabled.",
     DBX_RECOVERABLE_YES},
    {"SsemUserErrorKeyVaultDetailsNotFound",
     "Could not fetch the passkey as the associated key vault for the customer-managed key could "
     "not be "
     "found.",
     DBX_RECOVERABLE_DEPENDS},
    {"SsemUserErrorSystemAssignedIdentityAbsent",
     "Could not fetch the passkey as the customer-managed key could not be found.",
     DBX_RECOVERABLE_YES},
    {"SsemUserErrorUserAssignedLimitReached",
     "Adding new User Assigned Identity failed as you have reached the limit on the total number "
     "of user "
     "assigned identities that can be added.",
     DBX_RECOVERABLE_YES},
    {"SsemUserErrorCrossTenantIdentityAccessForbidden",
     "Managed identity access operation failed. <br> Note: This error can occur when a "
     "subscription is "
     "moved to different tenant. The customer has to manually move the identity to the new tenant.",
     DBX_RECOVERABLE_YES},
    {"SsemUserErrorKekUserIdentityNotFound",
     "Applied a customer-managed key but the user assigned identity that has access to the key was "
     "not "
     "found in the active directory. <br> Note: This error can occur when a user identity is "
     "deleted from "
     "Azure.",
     DBX_RECOVERABLE_YES},
    {"SsemUserErrorUserAssignedIdentityAbsent",
     "Could not fetch the passkey as the customer-managed key could not be found.",
     DBX_RECOVERABLE_YES},
    {"SsemUserErrorKeyVaultBadRequestException",
     "Applied a customer-managed key, but key access has not been granted or has been revoked, or "
     "the key "
     "vault couldn't be accessed because a firewall is enabled.",
     DBX_RECOVERABLE_YES},
    {"SsemUserErrorEncryptionKeyTypeNotSupported",
     "The encryption key type isn't supported for the operation.", DBX_RECOVERABLE_YES},
    {"SsemUserErrorSoftDeleteAndPurgeProtectionNotEnabled",
     "Key vault does not have soft delete or purge protection enabled.", DBX_RECOVERABLE_YES},
    {"SsemUserErrorInvalidKeyVaultUrl", "An invalid key vault URI was used.", DBX_RECOVERABLE_YES},
    {"SsemUserErrorKeyVaultUrlWithInvalidScheme",
     "Only HTTPS is supported for passing the key vault URI.", DBX_RECOVERABLE_YES},
    {"SsemUserErrorKeyVaultUrlInvalidHost",
     "The key vault URI host is not an allowed host in the geographical region.",
     DBX_RECOVERABLE_YES},
    {"Generic error", "Could not fetch the passkey.", DBX_RECOVERABLE_DEPENDS},
};

#define N_EXPECTED (sizeof(expected) / sizeof(expected[0]))

static void check_row(size_t i)
{
	const struct expect_row *x = &expected[i];
	const struct dbx_ssem_row *row = &dbx_ssem_table[i];
	const struct dbx_ssem_row *found = dbx_ssem_lookup(x->code);

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
}

static void test_lookup_repeated_code_returns_first(void **state)
{
	const struct dbx_ssem_row *r = dbx_ssem_lookup("SsemUserErrorKeyVaultBadRequestException");

	(void)state;
	assert_ptr_equal(r, &dbx_ssem_table[3]);
	assert_string_equal(dbx_ssem_table[10].code, "SsemUserErrorKeyVaultBadRequestException");
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
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
