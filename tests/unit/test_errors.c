/*
 * test_errors.c: the errors file of an order (backend/rules/errors.c), its
 * whole format in one place.
 *
 * The remedy text (the Ssem table's markdown and HTML as plain text), one
 * block (its lines, their order, what the table decodes, that no service
 * string can forge a line), and the whole file (blocks from the order's
 * problems, the failed refresh and the last failed write, newest first, and
 * the mount's own advice where no service code applies). Every expected
 * text is what a user reads with cat.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "databoxfs/errors.h"

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
	r = dbx_errors_remedy(dbx_ssem_lookup("SsemUserErrorKeyDetailsNotFound"));
	assert_string_equal(r, key_details_remedy);
	free(r);

	r = dbx_errors_remedy(dbx_ssem_lookup("SsemUserErrorSystemAssignedIdentityAbsent"));
	assert_string_equal(
	    r, "Yes, check if:\n"
	       "1. Key vault still has the MSI in the access policy.\n"
	       "2. Identity is of type System assigned.\n"
	       "3. Enable Get, WrapKey, and UnwrapKey permissions to the identity in the key "
	       "vault's access policy. These permissions must remain for the lifetime of the "
	       "order. They're used during order creation and at the beginning of the Data Copy "
	       "phase.");
	free(r);

	r = dbx_errors_remedy(dbx_ssem_lookup("SsemUserErrorKeyVaultUrlInvalidHost"));
	assert_string_equal(
	    r, "In the public cloud, the key vault URI should end with vault.azure.net. In the "
	       "Azure Government cloud, the key vault URI should end with "
	       "vault.usgovcloudapi.net.");
	free(r);

	r = dbx_errors_remedy(dbx_ssem_lookup("SsemUserErrorInvalidKeyVaultUrl"));
	assert_string_equal(
	    r, "Get the correct key vault URI. To get the key vault URI, use Get-AzKeyVault in "
	       "PowerShell.");
	free(r);

	r = dbx_errors_remedy(dbx_ssem_lookup("SsemUserErrorKekUserIdentityNotFound"));
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
	r = dbx_errors_remedy(&rows[0]);
	assert_string_equal(r, "a b\nc");
	free(r);
	r = dbx_errors_remedy(&rows[1]);
	assert_string_equal(r, "link and [not a link] and x");
	free(r);
	r = dbx_errors_remedy(&rows[2]);
	assert_string_equal(r, "1. a\n1. b\n2. c");
	free(r);
	r = dbx_errors_remedy(&rows[3]);
	assert_string_equal(r, "1 < 2 and bold and <unclosed");
	free(r);
	r = dbx_errors_remedy(&rows[4]);
	assert_string_equal(r, "");
	free(r);
	assert_null(dbx_errors_remedy(NULL));
}

/* Every row's remedy is plain text: no markup left, blanks collapsed, lists as numbered steps. */
static void test_remedy_every_row_plain(void **state)
{
	(void)state;
	for (size_t i = 0; i < dbx_ssem_table_len; i++) {
		const struct dbx_ssem_row *row = &dbx_ssem_table[i];
		/* Rows 2, 4 and 5 (the two DetailsNotFound, SystemAssignedIdentityAbsent) hold
		 * <ol>. */
		bool has_list = i == 2 || i == 4 || i == 5;
		char *remedy = dbx_errors_remedy(row);

		print_message("%s\n", row->code);
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
		assert_true(remedy[strlen(remedy) - 1] != ' ' &&
			    remedy[strlen(remedy) - 1] != '\n');
		if (has_list) {
			assert_non_null(strstr(remedy, "\n1. "));
			assert_non_null(strstr(remedy, "\n2. "));
		} else {
			assert_null(strchr(remedy, '\n'));
		}
		free(remedy);
	}
}

static void test_recoverable_words(void **state)
{
	(void)state;
	assert_string_equal(dbx_recoverable_str(DBX_RECOVERABLE_YES), "yes");
	assert_string_equal(dbx_recoverable_str(DBX_RECOVERABLE_NO), "no");
	assert_string_equal(dbx_recoverable_str(DBX_RECOVERABLE_DEPENDS), "depends");
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

/* ---- the whole file ---- */

#define PROBLEM(code, message, target, time)                                                       \
	{                                                                                          \
		(char *)(code), (char *)(message), (char *)(target), (char *)(time)                \
	}

/* A disabled key: properties.error (no time of its own) and a stage waiting for the customer. */
static const struct dbx_order_problem kek_problems[] = {
    PROBLEM("SsemUserErrorEncryptionKeyDisabled",
	    "Could not fetch the passkey as the customer-managed key is disabled.",
	    "KeyEncryptionKey", NULL),
    PROBLEM("WaitingForCustomerActionForKek",
	    "Stage 'Data copy' (DataCopy) is WaitingForCustomerActionForKek", "DataCopy",
	    "2026-11-28T12:05:00.1234567+00:00"),
};

static const struct dbx_errors_input kek_input = {
    .problems = kek_problems,
    .n_problems = 2,
    .order_time = "2026-11-28T12:00:00.0000000+00:00",
};

static char *render(const struct dbx_errors_input *in)
{
	char *buf = NULL;
	size_t len = 99;

	assert_int_equal(dbx_errors_render(in, &buf, &len), DBX_OK);
	assert_non_null(buf);
	assert_int_equal(len, strlen(buf)); /* no NUL inside, length exact */
	return buf;
}

static void test_file_empty(void **state)
{
	const struct dbx_errors_input none = {0};
	const struct dbx_order_problem no_code[] = {PROBLEM("", "x", NULL, NULL),
						    PROBLEM(NULL, "y", NULL, NULL)};
	const struct dbx_errors_input codeless = {.problems = no_code, .n_problems = 2};
	const struct dbx_error ok = {.err = DBX_OK};
	const struct dbx_errors_input read_ok = {.read_err = &ok, .read_time = 1795867200};
	char *buf;

	(void)state;
	buf = render(&none);
	assert_string_equal(buf, "");
	free(buf);
	buf = render(&codeless); /* a problem without a code says nothing */
	assert_string_equal(buf, "");
	free(buf);
	buf = render(&read_ok); /* a refresh that did not fail is no news */
	assert_string_equal(buf, "");
	free(buf);
}

static void test_file_order_problems_newest_first(void **state)
{
	char *buf;

	(void)state;
	buf = render(&kek_input);
	/* The stage (12:05) is newer than the error (lastModifiedAt 12:00); times in one spelling.
	 * A stage status is not in the table: the mount's advice for it, not the Generic row. */
	assert_string_equal(
	    buf, "code: WaitingForCustomerActionForKek\n"
		 "source: order\n"
		 "time: 2026-11-28T12:05:00Z\n"
		 "message: Stage 'Data copy' (DataCopy) is WaitingForCustomerActionForKek\n"
		 "target: DataCopy\n"
		 "recoverable: yes\n"
		 "remedy: The order is paused at this stage until its customer-managed key can be "
		 "used. Fix what the service reports (the Ssem block in this file, if any: the key "
		 "enabled and not expired, the vault and key present, Get, WrapKey and UnwrapKey "
		 "granted to the order's identity), then write the key URL to key_url again so the "
		 "service checks it again.\n"
		 "\n"
		 "code: SsemUserErrorEncryptionKeyDisabled\n"
		 "source: order\n"
		 "time: 2026-11-28T12:00:00Z\n"
		 "message: Could not fetch the passkey as the customer-managed key is disabled.\n"
		 "target: KeyEncryptionKey\n"
		 "recoverable: yes\n"
		 "remedy: Yes, by enabling the key version.\n");
	free(buf);
}

static void test_file_unknown_times_keep_their_place(void **state)
{
	const struct dbx_order_problem p[] = {
	    PROBLEM("A", NULL, NULL, "not a time"),
	    PROBLEM("B", NULL, NULL, "2026-11-28T12:00:00Z"),
	    PROBLEM("C", NULL, NULL, NULL), /* no time, and the order has none either */
	    PROBLEM("D", NULL, NULL, "2026-11-28T13:00:00Z"),
	};
	const struct dbx_errors_input in = {.problems = p, .n_problems = 4};
	const char *a, *b, *c, *d;
	char *buf;

	(void)state;
	buf = render(&in);
	a = strstr(buf, "code: A\n");
	b = strstr(buf, "code: B\n");
	c = strstr(buf, "code: C\n");
	d = strstr(buf, "code: D\n");
	assert_ptr_equal(d, buf);
	assert_true(d < b && b < a && a < c);
	assert_non_null(strstr(a, "\ntime: not a time\n"));
	assert_null(strstr(c, "time:"));
	free(buf);
}

/* A failed refresh: a "read" block first, then the last known problems. */
static void test_file_read_block(void **state)
{
	struct dbx_error e = {0};
	struct dbx_errors_input in = kek_input;
	char *text;

	(void)state;
	in.read_err = &e;
	in.read_time = 1795867200;
	dbx_error_set(&e, DBX_EUNREACHABLE, "could not connect to management.azure.com");
	text = render(&in);
	assert_memory_equal(
	    text,
	    "code: HostUnreachable\n"
	    "source: read\n"
	    "time: 2026-11-28T12:00:00Z\n"
	    "message: could not connect to management.azure.com\n"
	    "recoverable: yes\n"
	    "remedy: Azure Resource Manager could not be reached (DNS, connection or TLS failure). "
	    "Check the network, proxy and firewall; the next read tries again.\n"
	    "\n"
	    "code: WaitingForCustomerActionForKek\n",
	    strlen("code: HostUnreachable\nsource: read\ntime: 2026-11-28T12:00:00Z\n"
		   "message: could not connect to management.azure.com\nrecoverable: yes\n"
		   "remedy: Azure Resource Manager could not be reached (DNS, connection or TLS "
		   "failure). Check the network, proxy and firewall; the next read tries "
		   "again.\n\ncode: WaitingForCustomerActionForKek\n"));
	assert_non_null(strstr(text, "\n\ncode: SsemUserErrorEncryptionKeyDisabled\n"));
	free(text);

	/* The service's code and request id win over the mount's name. */
	e.err = DBX_EACCES;
	snprintf(e.code, sizeof(e.code), "AuthorizationFailed");
	snprintf(e.request_id, sizeof(e.request_id), "5f0c2a9e-0000-4000-8000-000000000001");
	in.problems = NULL;
	in.n_problems = 0;
	text = render(&in);
	assert_non_null(strstr(text, "code: AuthorizationFailed\nsource: read\n"));
	assert_non_null(strstr(text, "request_id: 5f0c2a9e-0000-4000-8000-000000000001\n"));
	assert_null(strstr(text, "\n\n"));
	free(text);
}

/* The name a failed read without a service code is shown under. */
static void test_file_read_codes(void **state)
{
	static const struct {
		enum dbx_err err;
		const char *block;
	} want[] = {
	    {DBX_EUNREACHABLE, "code: HostUnreachable\nsource: read\n"},
	    {DBX_ETIMEDOUT, "code: Timeout\nsource: read\n"},
	    {DBX_ETHROTTLED, "code: Throttled\nsource: read\n"},
	    {DBX_EAUTH, "code: AuthenticationFailed\nsource: read\n"},
	    {DBX_EACCES, "code: AccessDenied\nsource: read\n"},
	    {DBX_ENOTFOUND, "code: NotFound\nsource: read\n"},
	    {DBX_EREMOTE, "code: ServiceError\nsource: read\n"},
	    {DBX_EROFS, "code: ServiceError\nsource: read\n"}, /* no advice of its own */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		struct dbx_error e = {.err = want[i].err};
		const struct dbx_errors_input in = {.read_err = &e, .read_time = 1795867200};
		char *text = render(&in);

		print_message("%s", want[i].block);
		assert_memory_equal(text, want[i].block, strlen(want[i].block));
		/* No message from the service: the error's own name. */
		assert_non_null(strstr(text, "\nmessage: "));
		free(text);
	}
}

/* The last-write block: newest first next to a read failure, target and request id shown. */
static void test_file_last_write(void **state)
{
	struct dbx_error we = {0}, re = {0};
	struct dbx_errors_input in = {0};
	char *text;

	(void)state;
	dbx_error_set(&we, DBX_EINVAL, "The identity has no access to the key.");
	snprintf(we.code, sizeof(we.code), "SsemUserErrorKeyVaultBadRequestException");
	snprintf(we.request_id, sizeof(we.request_id), "req-42");
	we.http_status = 400;
	in.write_err = &we;
	in.write_time = 1800000100;
	in.write_target = "key_url";
	text = render(&in);
	/* A code the table knows is decoded by the table. */
	assert_string_equal(
	    text, "code: SsemUserErrorKeyVaultBadRequestException\n"
		  "source: last-write\n"
		  "time: 2027-01-15T08:01:40Z\n"
		  "message: The identity has no access to the key.\n"
		  "target: key_url\n"
		  "recoverable: yes\n"
		  "remedy: Add the identity selected to your key vault to enable access to "
		  "the customer-managed key. If key vault has firewall enabled, switch to a "
		  "system assigned identity and then add a customer-managed key. For more "
		  "information, see how to Enable the key.\n"
		  "request_id: req-42\n");
	free(text);

	/* A later failed read comes first; an earlier one after. */
	dbx_error_set(&re, DBX_EUNREACHABLE, "connect failed");
	in.read_err = &re;
	in.read_time = 1800000200;
	text = render(&in);
	assert_true(strstr(text, "source: read") < strstr(text, "source: last-write"));
	free(text);
	in.read_time = 1800000000;
	text = render(&in);
	assert_true(strstr(text, "source: last-write") < strstr(text, "source: read"));
	free(text);

	/* A local refusal without a table code gets the mount's own advice for writes. */
	in.read_err = NULL;
	dbx_error_clear(&we);
	dbx_error_set(&we, DBX_EINTR, "interrupted before the update was sent");
	text = render(&in);
	assert_non_null(strstr(text, "code: Interrupted\n"));
	assert_non_null(strstr(text, "recoverable: yes\n"));
	assert_non_null(strstr(text, "Write again."));
	free(text);

	/* A service code the table does not know: the Generic row, not the mount's advice. */
	dbx_error_set(&we, DBX_EINVAL, "Bad request.");
	snprintf(we.code, sizeof(we.code), "SomethingElse");
	we.http_status = 400;
	text = render(&in);
	assert_non_null(
	    strstr(text, "recoverable: depends\nremedy: This error is a generic error."));
	free(text);

	/* A local code the table does not know (no HTTP status): the mount's advice. */
	we.http_status = 0;
	text = render(&in);
	assert_non_null(strstr(text, "code: SomethingElse\n"));
	assert_non_null(strstr(text, "remedy: The value was refused before anything was sent."));
	free(text);
}

/*
 * Newest first across sources: a write that failed long ago stays in errors
 * until the next good write, and must not hide problems the order reported
 * since (the disabled key at 12:00, the stage at 12:05).
 */
static void test_file_last_write_by_time(void **state)
{
	struct dbx_errors_input in = kek_input;
	struct dbx_error we = {0};
	const char *stage, *error, *write;
	char *text;

	(void)state;
	dbx_error_set(&we, DBX_EBUSY, "The order is in a stage that refuses the change.");
	in.write_err = &we;
	in.write_target = "key_url";
	in.write_time = 1795863600; /* 2026-11-28T11:00:00Z: before both order problems */
	text = render(&in);
	stage = strstr(text, "code: WaitingForCustomerActionForKek\n");
	error = strstr(text, "code: SsemUserErrorEncryptionKeyDisabled\n");
	write = strstr(text, "source: last-write\n");
	assert_non_null(stage);
	assert_non_null(error);
	assert_non_null(write);
	assert_ptr_equal(stage, text);
	assert_true(stage < error);
	assert_true(error < write);
	assert_null(strstr(text, "\n\n\n"));
	free(text);

	in.write_time = 1795867380; /* 12:03: between the error (12:00) and the stage (12:05) */
	text = render(&in);
	stage = strstr(text, "code: WaitingForCustomerActionForKek\n");
	error = strstr(text, "code: SsemUserErrorEncryptionKeyDisabled\n");
	write = strstr(text, "source: last-write\n");
	assert_ptr_equal(stage, text);
	assert_true(stage < write);
	assert_true(write < error);
	free(text);

	in.write_time = 1795867200; /* 12:00, a tie with the error: the write comes first */
	text = render(&in);
	write = strstr(text, "source: last-write\n");
	error = strstr(text, "code: SsemUserErrorEncryptionKeyDisabled\n");
	assert_true(write < error);
	free(text);
}

/* A successful write whose preflight checks were skipped: a note, with err DBX_OK. */
static void test_file_preflight_note(void **state)
{
	struct dbx_error we = {0};
	const struct dbx_errors_input in = {
	    .write_err = &we, .write_time = 1795867200, .write_target = "key_url"};
	char *text;

	(void)state;
	snprintf(we.message, sizeof(we.message), "key checks skipped: 403 on the vault");
	text = render(&in);
	assert_memory_equal(
	    text,
	    "code: PreflightSkipped\n"
	    "source: last-write\n"
	    "time: 2026-11-28T12:00:00Z\n"
	    "message: key checks skipped: 403 on the vault\n"
	    "target: key_url\n"
	    "recoverable: yes\n"
	    "remedy: The change was applied",
	    strlen("code: PreflightSkipped\nsource: last-write\ntime: "
		   "2026-11-28T12:00:00Z\nmessage: key checks skipped: 403 on the "
		   "vault\ntarget: key_url\nrecoverable: yes\nremedy: The change was "
		   "applied"));
	free(text);
}

/* Advice that is the same for reads and writes reads the same in both blocks. */
static void test_file_shared_advice(void **state)
{
	static const char *const auth =
	    "recoverable: yes\n"
	    "remedy: No credential could produce a token. Check the AZURE_* environment "
	    "variables, the managed identity or 'az login', and the -o credential= option.\n";
	struct dbx_error re = {.err = DBX_EAUTH}, we = {.err = DBX_EAUTH};
	struct dbx_errors_input in = {.read_err = &re, .read_time = 1795867200};
	char *text;

	(void)state;
	text = render(&in);
	assert_non_null(strstr(text, "code: AuthenticationFailed\nsource: read\n"));
	assert_non_null(strstr(text, auth));
	free(text);
	in.read_err = NULL;
	in.write_err = &we;
	text = render(&in);
	assert_non_null(strstr(text, "code: AuthenticationFailed\nsource: last-write\n"));
	assert_non_null(strstr(text, auth));
	free(text);
	re.err = we.err = DBX_ENOTFOUND;
	text = render(&in);
	assert_non_null(strstr(text, "recoverable: no\nremedy: The order no longer exists.\n"));
	free(text);
	in.read_err = &re;
	in.write_err = NULL;
	text = render(&in);
	assert_non_null(strstr(text, "recoverable: no\nremedy: The order no longer exists.\n"));
	free(text);
}

/* A failure at the key's vault is advised as one: the remedy never blames ARM. */
static void test_file_keyvault_advice(void **state)
{
	static const enum dbx_err kinds[] = {DBX_EREMOTE, DBX_EUNREACHABLE, DBX_ETIMEDOUT,
					     DBX_ETHROTTLED, DBX_EACCES};
	struct dbx_error we = {.service = DBX_SERVICE_KEYVAULT};
	struct dbx_errors_input in = {
	    .write_err = &we, .write_time = 1795867200, .write_target = "key_url"};
	char *text;

	(void)state;
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		we.err = kinds[i];
		snprintf(we.message, sizeof(we.message), "connection reset by kv.vault.azure.net");
		text = render(&in);
		assert_non_null(strstr(strstr(text, "remedy: "), "vault"));
		assert_null(strstr(text, "Resource Manager"));
		free(text);
	}
	/* The same failure at ARM keeps ARM's advice. */
	we.service = DBX_SERVICE_ARM;
	we.err = DBX_EREMOTE;
	text = render(&in);
	assert_non_null(strstr(text, "remedy: Azure Resource Manager failed"));
	free(text);
	/* A token that could not be had: the token endpoint is blamed, read or write. */
	we.service = DBX_SERVICE_TOKEN;
	we.err = DBX_ETIMEDOUT;
	text = render(&in);
	assert_non_null(strstr(text, "code: TokenTimeout\n"));
	assert_non_null(strstr(text, "remedy: The credential's token endpoint"));
	assert_null(strstr(text, "Resource Manager"));
	free(text);
	in.read_err = &we;
	in.read_time = 1795867200;
	in.write_err = NULL;
	text = render(&in);
	assert_non_null(strstr(text, "code: TokenTimeout\nsource: read\n"));
	assert_null(strstr(text, "Resource Manager"));
	free(text);
	in.read_err = NULL;
	in.write_err = &we;
	/* A kind the vault table has no row for falls back to the write table. */
	we.service = DBX_SERVICE_KEYVAULT;
	we.err = DBX_ENOMEM;
	text = render(&in);
	assert_non_null(strstr(text, "remedy: The mount ran out of memory"));
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_remedy_golden),
	    cmocka_unit_test(test_remedy_markup_edge_cases),
	    cmocka_unit_test(test_remedy_every_row_plain),
	    cmocka_unit_test(test_recoverable_words),
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
	    cmocka_unit_test(test_file_empty),
	    cmocka_unit_test(test_file_order_problems_newest_first),
	    cmocka_unit_test(test_file_unknown_times_keep_their_place),
	    cmocka_unit_test(test_file_read_block),
	    cmocka_unit_test(test_file_read_codes),
	    cmocka_unit_test(test_file_last_write),
	    cmocka_unit_test(test_file_last_write_by_time),
	    cmocka_unit_test(test_file_preflight_note),
	    cmocka_unit_test(test_file_shared_advice),
	    cmocka_unit_test(test_file_keyvault_advice),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
