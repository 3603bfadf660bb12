/*
 * test_fs_attrs.c: the table of order files (fs/attrs.c): its invariants,
 * and the exact bytes every file shows for the shapes of order a user meets
 * (Microsoft managed, customer managed with system- or user-assigned
 * identity, identity None, a disabled key waiting for the customer).
 * Orders are built from JSON text through dbx_order_parse, like the mount.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "databoxfs/cloud.h"
#include "databoxfs/order.h"
#include "attrs.h"

#define SUB "0b1f6471-1bf0-4dda-aec3-111122223333"
#define VAULT_ID                                                                                   \
	"/subscriptions/" SUB "/resourceGroups/rg1/providers/Microsoft.KeyVault/vaults/myvault"
#define KEY_URL "https://myvault.vault.azure.net/keys/mykey"
#define UAI_ID                                                                                     \
	"/subscriptions/" SUB                                                                      \
	"/resourceGroups/rg1/providers/Microsoft.ManagedIdentity/userAssignedIdentities/uai1"
#define PRINCIPAL "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"

/* A job with the given "identity" member (or "") and "details" object text (or ""). */
static struct dbx_order *job(const char *identity, const char *details, const char *extra_props)
{
	char text[8192];
	struct dbx_order *o = NULL;
	struct dbx_error e = {0};

	snprintf(
	    text, sizeof(text),
	    "{\"id\": \"/subscriptions/" SUB
	    "/resourceGroups/rg1/providers/Microsoft.DataBox/jobs/order1\","
	    " \"name\": \"order1\", \"type\": \"Microsoft.DataBox/jobs\", \"location\": \"westus\","
	    " \"sku\": {\"name\": \"DataBox\"}, %s%s"
	    " \"systemData\": {\"lastModifiedAt\": \"2026-11-28T12:00:00.0000000+00:00\"},"
	    " \"properties\": {\"status\": \"DeviceOrdered\", \"transferType\": "
	    "\"ImportToAzure\"%s%s%s}}",
	    identity, *identity ? "," : "", *details ? ", \"details\": " : "", details,
	    extra_props);
	assert_int_equal(dbx_order_parse(text, strlen(text), &o, &e), DBX_OK);
	assert_non_null(o);
	return o;
}

static char *show(const char *name, const struct dbx_attr_ctx *ctx)
{
	int i = dbx_attr_find(name);
	char *buf = NULL;
	size_t len = 0;

	assert_true(i >= 0);
	assert_int_equal(dbx_attr_show((size_t)i, ctx, &buf, &len), DBX_OK);
	assert_non_null(buf);
	assert_int_equal(len, strlen(buf)); /* no NUL inside, length exact */
	return buf;
}

static void expect(const char *name, const struct dbx_attr_ctx *ctx, const char *want)
{
	char *got = show(name, ctx);

	if (strcmp(got, want) != 0)
		print_error("%s:\n--- got ---\n%s--- want ---\n%s---\n", name, got, want);
	assert_string_equal(got, want);
	free(got);
}

/* Every non-empty file ends with exactly one newline (encryption.json and errors: one final). */
static void check_endings(const struct dbx_attr_ctx *ctx)
{
	for (size_t i = 0; i < dbx_attrs_len; i++) {
		char *buf = NULL;
		size_t len = 0;

		assert_int_equal(dbx_attr_show(i, ctx, &buf, &len), DBX_OK);
		if (len) {
			assert_int_equal(buf[len - 1], '\n');
			if (len > 1)
				assert_int_not_equal(buf[len - 2], '\n');
		}
		free(buf);
	}
}

static void test_table_invariants(void **state)
{
	(void)state;
	static const char *const want[] = {"encryption_type", "key_url",      "key_vault",
					   "identity",	      "principal_id", "encryption.json",
					   "status",	      "errors",	      "operation"};

	assert_int_equal(dbx_attrs_len, 9);
	for (size_t i = 0; i < dbx_attrs_len; i++) {
		const struct dbx_attr *a = &dbx_attrs[i];

		assert_string_equal(a->name, want[i]);
		assert_non_null(a->show);
		/* Writable exactly when it has store; rw 0644, ro 0444. */
		assert_int_equal((a->mode & 0200) != 0, a->store != NULL);
		assert_int_equal(a->mode, a->store ? 0644 : 0444);
		assert_int_equal(dbx_attr_find(a->name), (int)i);
		/* What fs.c asks the row instead of comparing names. */
		assert_int_equal(a->json_object, strcmp(a->name, "encryption.json") == 0);
		assert_int_equal(a->reports_errors, strcmp(a->name, "errors") == 0);
		assert_int_equal(a->reports_operation, strcmp(a->name, "operation") == 0);
		for (size_t k = 0; k < i; k++)
			assert_string_not_equal(dbx_attrs[k].name, a->name);
	}
	assert_int_equal(dbx_attr_find("nosuch"), -1);
}

static void test_microsoft_managed(void **state)
{
	struct dbx_order *o = job("\"identity\": {\"type\": \"None\"}",
				  "{\"jobDetailsType\": \"DataBox\", \"keyEncryptionKey\": "
				  "{\"kekType\": \"MicrosoftManaged\"}}",
				  "");
	struct dbx_attr_ctx ctx = {.order = o};

	(void)state;
	expect("encryption_type", &ctx, "MicrosoftManaged\n");
	expect("key_url", &ctx, "");
	expect("key_vault", &ctx, "");
	expect("identity", &ctx, "None\n");
	expect("principal_id", &ctx, "");
	expect("status", &ctx, "DeviceOrdered\n");
	expect("errors", &ctx, "");
	expect("encryption.json", &ctx,
	       "{\n"
	       "  \"encryption_type\": \"MicrosoftManaged\",\n"
	       "  \"key_url\": null,\n"
	       "  \"key_vault\": null,\n"
	       "  \"identity\": \"None\",\n"
	       "  \"principal_id\": null\n"
	       "}\n");
	check_endings(&ctx);
	dbx_order_free(o);
}

static void test_absent_kek(void **state)
{
	struct dbx_order *o = job("", "{\"jobDetailsType\": \"DataBox\"}", "");
	struct dbx_attr_ctx ctx = {.order = o};

	(void)state;
	expect("encryption_type", &ctx, "MicrosoftManaged\n");
	expect("key_url", &ctx, "");
	expect("key_vault", &ctx, "");
	expect("identity", &ctx, "None\n");
	check_endings(&ctx);
	dbx_order_free(o);
}

static void test_customer_managed_system_assigned(void **state)
{
	struct dbx_order *o =
	    job("\"identity\": {\"type\": \"SystemAssigned\", \"principalId\": \"" PRINCIPAL
		"\", \"tenantId\": \"11111111-2222-3333-4444-555555555555\"}",
		"{\"jobDetailsType\": \"DataBox\", \"keyEncryptionKey\": {\"kekType\": "
		"\"CustomerManaged\","
		" \"kekUrl\": \"" KEY_URL "\", \"kekVaultResourceID\": \"" VAULT_ID "\","
		" \"identityProperties\": {\"type\": \"SystemAssigned\"}}}",
		"");
	struct dbx_attr_ctx ctx = {.order = o};

	(void)state;
	expect("encryption_type", &ctx, "CustomerManaged\n");
	expect("key_url", &ctx, KEY_URL "\n");
	expect("key_vault", &ctx, VAULT_ID "\n");
	expect("identity", &ctx, "SystemAssigned\n");
	expect("principal_id", &ctx, PRINCIPAL "\n");
	/* '/' is not escaped: the JSON reads like the plain files. */
	expect("encryption.json", &ctx,
	       "{\n"
	       "  \"encryption_type\": \"CustomerManaged\",\n"
	       "  \"key_url\": \"" KEY_URL "\",\n"
	       "  \"key_vault\": \"" VAULT_ID "\",\n"
	       "  \"identity\": \"SystemAssigned\",\n"
	       "  \"principal_id\": \"" PRINCIPAL "\"\n"
	       "}\n");
	check_endings(&ctx);
	dbx_order_free(o);
}

static void test_user_assigned(void **state)
{
	struct dbx_order *o =
	    job("\"identity\": {\"type\": \"SystemAssigned,UserAssigned\", \"principalId\": "
		"\"" PRINCIPAL "\", \"userAssignedIdentities\": {\"" UAI_ID "\": {}}}",
		"{\"jobDetailsType\": \"DataBox\", \"keyEncryptionKey\": {\"kekType\": "
		"\"CustomerManaged\","
		" \"kekUrl\": \"" KEY_URL "\", \"kekVaultResourceID\": \"" VAULT_ID "\","
		" \"identityProperties\": {\"type\": \"UserAssigned\", \"userAssigned\": "
		"{\"resourceId\": \"" UAI_ID "\"}}}}",
		"");
	struct dbx_attr_ctx ctx = {.order = o};

	(void)state;
	expect("identity", &ctx, UAI_ID "\n");
	expect("principal_id", &ctx, PRINCIPAL "\n");
	expect("encryption.json", &ctx,
	       "{\n"
	       "  \"encryption_type\": \"CustomerManaged\",\n"
	       "  \"key_url\": \"" KEY_URL "\",\n"
	       "  \"key_vault\": \"" VAULT_ID "\",\n"
	       "  \"identity\": \"" UAI_ID "\",\n"
	       "  \"principal_id\": \"" PRINCIPAL "\"\n"
	       "}\n");
	check_endings(&ctx);
	dbx_order_free(o);
}

static void test_identity_none(void **state)
{
	struct dbx_order *o =
	    job("\"identity\": {\"type\": \"None\"}",
		"{\"jobDetailsType\": \"DataBox\", \"keyEncryptionKey\": {\"kekType\": "
		"\"CustomerManaged\","
		" \"kekUrl\": \"" KEY_URL "\", \"kekVaultResourceID\": \"" VAULT_ID "\"}}",
		"");
	struct dbx_attr_ctx ctx = {.order = o};

	(void)state;
	expect("encryption_type", &ctx, "CustomerManaged\n");
	expect("identity", &ctx, "None\n");
	expect("principal_id", &ctx, "");
	check_endings(&ctx);
	dbx_order_free(o);
}

/* A disabled key: properties.error plus a stage waiting for the customer, newest first. */
static const char kek_details[] =
    "{\"jobDetailsType\": \"DataBox\", \"keyEncryptionKey\": {\"kekType\": \"CustomerManaged\","
    " \"kekUrl\": \"" KEY_URL "\", \"kekVaultResourceID\": \"" VAULT_ID "\"},"
    " \"jobStages\": [{\"stageName\": \"DeviceOrdered\", \"stageStatus\": \"Succeeded\","
    " \"stageTime\": \"2026-11-28T10:00:00Z\"},"
    " {\"stageName\": \"DataCopy\", \"displayName\": \"Data copy\","
    " \"stageStatus\": \"WaitingForCustomerActionForKek\", \"stageTime\": "
    "\"2026-11-28T12:05:00.1234567+00:00\"}]}";

static const char kek_error[] =
    ", \"error\": {\"code\": \"SsemUserErrorEncryptionKeyDisabled\", \"message\": \"Could not "
    "fetch "
    "the passkey as the customer-managed key is disabled.\", \"target\": \"KeyEncryptionKey\","
    " \"details\": [], \"additionalInfo\": []}";

static void test_errors_kek_disabled(void **state)
{
	struct dbx_order *o =
	    job("\"identity\": {\"type\": \"SystemAssigned\", \"principalId\": \"" PRINCIPAL "\"}",
		kek_details, kek_error);
	struct dbx_attr_ctx ctx = {.order = o};
	char *text;
	const char *stage, *error;

	(void)state;
	text = show("errors", &ctx);
	print_message("%s", text);
	/* Two blocks, one blank line between them. */
	stage = strstr(text, "code: WaitingForCustomerActionForKek\n");
	error = strstr(text, "code: SsemUserErrorEncryptionKeyDisabled\n");
	assert_non_null(stage);
	assert_non_null(error);
	assert_true(stage <
		    error); /* the stage (12:05) is newer than the error (lastModifiedAt 12:00) */
	assert_ptr_equal(stage, text);
	assert_non_null(strstr(
	    text,
	    "\n\ncode: SsemUserErrorEncryptionKeyDisabled\n"
	    "source: order\n"
	    "time: 2026-11-28T12:00:00Z\n"
	    "message: Could not fetch the passkey as the customer-managed key is disabled.\n"));
	assert_non_null(strstr(error, "recoverable: yes\n"));
	assert_non_null(strstr(error, "remedy: "));
	assert_non_null(strstr(stage, "source: order\ntime: 2026-11-28T12:05:00Z\n"));
	assert_null(strstr(text, "\n\n\n"));
	assert_null(strstr(text, "source: read"));
	free(text);
	check_endings(&ctx);
	dbx_order_free(o);
}

static void test_errors_clean(void **state)
{
	struct dbx_order *o = job(
	    "\"identity\": {\"type\": \"SystemAssigned\", \"principalId\": \"" PRINCIPAL "\"}",
	    "{\"jobDetailsType\": \"DataBox\", \"jobStages\": [{\"stageName\": \"DeviceOrdered\","
	    " \"stageStatus\": \"Succeeded\"}, {\"stageName\": \"DataCopy\", \"stageStatus\": "
	    "\"None\"}]}",
	    "");
	struct dbx_attr_ctx ctx = {.order = o};

	(void)state;
	expect("errors", &ctx, "");
	dbx_order_free(o);
}

/*
 * The errors file shows what the cached state knows: the order's problems
 * (timed by their stage, else by the order's lastModifiedAt), the failed
 * refresh and the last failed write to the named file. The format itself is
 * test_errors.c's.
 */
static void test_errors_gathers_state(void **state)
{
	struct dbx_order *o = job("", kek_details, kek_error);
	struct dbx_error re = {0}, we = {0};
	struct dbx_attr_ctx ctx = {.order = o,
				   .read_err = &re,
				   .read_time = 1795867500, /* 12:05:00 */
				   .write_err = &we,
				   .write_time = 1795867380, /* 12:03 */
				   .write_target = "identity"};
	const char *read, *stage, *write, *error;
	char *text;

	(void)state;
	dbx_error_set(&re, DBX_EUNREACHABLE, "could not connect to management.azure.com");
	dbx_error_set(&we, DBX_EBUSY, "The order is in a stage that refuses the change.");
	text = show("errors", &ctx);
	print_message("%s", text);
	read = strstr(text, "code: HostUnreachable\nsource: read\ntime: 2026-11-28T12:05:00Z\n");
	stage = strstr(text, "code: WaitingForCustomerActionForKek\nsource: order\n"
			     "time: 2026-11-28T12:05:00Z\n");
	write = strstr(text, "code: Conflict\nsource: last-write\ntime: 2026-11-28T12:03:00Z\n"
			     "message: The order is in a stage that refuses the change.\n"
			     "target: identity\n");
	error = strstr(text, "code: SsemUserErrorEncryptionKeyDisabled\nsource: order\n"
			     "time: 2026-11-28T12:00:00Z\n");
	assert_ptr_equal(read, text);
	assert_non_null(stage);
	assert_non_null(write);
	assert_non_null(error);
	assert_true(read < stage && stage < write && write < error);
	free(text);
	check_endings(&ctx);
	dbx_order_free(o);
}

/* A customer-managed order with a system identity and kekUrl url. */
static struct dbx_order *cmk_order(const char *url)
{
	char details[1024];

	snprintf(details, sizeof(details),
		 "{\"jobDetailsType\": \"DataBox\", \"keyEncryptionKey\": {\"kekType\": "
		 "\"CustomerManaged\", \"kekUrl\": \"%s\", \"kekVaultResourceID\": \"" VAULT_ID
		 "\", \"identityProperties\": {\"type\": \"SystemAssigned\"}}}",
		 url);
	return job("\"identity\": {\"type\": \"SystemAssigned\", \"principalId\": \"" PRINCIPAL
		   "\"}",
		   details, "");
}

/* Run the store of file name on value against order o (may be NULL). */
static enum dbx_err store(const char *name, const struct dbx_order *o, const char *value,
			  struct dbx_attr_write *w, struct dbx_error *e)
{
	struct dbx_attr_ctx ctx = {.order = o, .write = w};
	int i = dbx_attr_find(name);

	assert_true(i >= 0);
	assert_non_null(dbx_attrs[i].store);
	memset(w, 0, sizeof(*w));
	dbx_error_clear(e);
	return dbx_attrs[i].store(&ctx, value, strlen(value), e);
}

/* Each store parses sysfs-style and validates: the change it hands back, or the Ssem code. */
static void test_store_parse(void **state)
{
	struct dbx_order *o = cmk_order(KEY_URL);
	struct dbx_attr_write w;
	struct dbx_error e;

	(void)state;
	assert_int_equal(store("encryption_type", o, "  microsoftmanaged \n", &w, &e), DBX_OK);
	assert_false(w.noop);
	assert_true(w.change.has_kek_type);
	assert_int_equal(w.change.kek_type, DBX_KEK_CHOICE_MICROSOFT);
	assert_false(w.change.has_key_url || w.change.has_identity);

	assert_int_equal(store("key_url", o, "https://Other.vault.azure.net/keys/k2\n", &w, &e),
			 DBX_OK);
	assert_true(w.change.has_key_url);
	assert_string_equal(w.change.key_url.url, "https://other.vault.azure.net/keys/k2");

	assert_int_equal(store("identity", o, "None\n", &w, &e), DBX_OK);
	assert_true(w.change.has_identity);
	assert_int_equal(w.change.identity.kind, DBX_IDENTITY_NONE);
	assert_int_equal(store("identity", o, UAI_ID "\n", &w, &e), DBX_OK);
	assert_int_equal(w.change.identity.kind, DBX_IDENTITY_USER);

	/* Refused values carry the service's code; only one trailing newline is ignored. */
	assert_int_equal(store("key_url", o, "http://myvault.vault.azure.net/keys/k\n", &w, &e),
			 DBX_EINVAL);
	assert_string_equal(e.code, "SsemUserErrorKeyVaultUrlWithInvalidScheme");
	assert_int_equal(store("encryption_type", o, "Customer\n", &w, &e), DBX_EINVAL);
	assert_int_equal(store("encryption_type", o, "MicrosoftManaged\n\n", &w, &e), DBX_EINVAL);
	assert_int_equal(store("identity", o, "Nobody\n", &w, &e), DBX_EINVAL);
	/* An empty key_url is not "Microsoft managed": one meaning per file. */
	assert_int_equal(store("key_url", o, "\n", &w, &e), DBX_EINVAL);
	assert_non_null(strstr(e.message, "echo MicrosoftManaged > encryption_type"));
	assert_false(w.change.has_key_url);

	/* The mount's cloud decides which vault hosts are keys. */
	w.cloud = dbx_cloud_find("AzureChinaCloud");
	{
		struct dbx_attr_ctx ctx = {.order = o, .write = &w};
		int i = dbx_attr_find("key_url");
		const char *cn = "https://myvault.vault.azure.cn/keys/k\n";

		assert_non_null(w.cloud);
		assert_int_equal(dbx_attrs[i].store(&ctx, cn, strlen(cn), &e), DBX_OK);
		assert_int_equal(
		    dbx_attrs[i].store(&ctx, KEY_URL "/x\n", strlen(KEY_URL "/x\n"), &e),
		    DBX_EINVAL);
	}
	dbx_order_free(o);
}

/*
 * The current value written back is a no-op decided before validation, so a
 * value that came from ARM but fails our rules (the spec's example URL) can
 * be written back; with no known state it is validated and refused.
 */
static void test_store_current_value(void **state)
{
	struct dbx_order *odd = cmk_order("https://xxx.xxx.xx");
	struct dbx_attr_ctx ctx = {.order = odd};
	struct dbx_attr_write w;
	struct dbx_error e;
	char *json;

	(void)state;
	assert_int_equal(store("key_url", odd, "https://xxx.xxx.xx\n", &w, &e), DBX_OK);
	assert_true(w.noop);
	assert_true(w.used_current);
	assert_int_equal(store("key_url", NULL, "https://xxx.xxx.xx\n", &w, &e), DBX_EINVAL);
	assert_int_equal(store("encryption_type", odd, "CustomerManaged\n", &w, &e), DBX_OK);
	assert_true(w.noop);
	assert_int_equal(store("identity", odd, "SystemAssigned", &w, &e), DBX_OK);
	assert_true(w.noop);

	/* encryption.json exactly as read, and with the derived fields changed. */
	json = show("encryption.json", &ctx);
	assert_int_equal(store("encryption.json", odd, json, &w, &e), DBX_OK);
	assert_true(w.noop);
	free(json);
	assert_int_equal(store("encryption.json", odd,
			       "{\"key_url\": \"https://xxx.xxx.xx\", \"principal_id\": \"x\"}", &w,
			       &e),
			 DBX_OK);
	assert_true(w.noop);

	/* A change next to the unchanged odd URL: only the change is sent and judged. */
	assert_int_equal(store("encryption.json", odd,
			       "{\"key_url\": \"https://xxx.xxx.xx\", \"identity\": \"None\"}\n",
			       &w, &e),
			 DBX_OK);
	assert_false(w.noop);
	assert_true(w.change.has_identity);
	assert_false(w.change.has_key_url);
	assert_int_equal(store("encryption.json", odd,
			       "{\"key_url\": \"https://xxx.xxx.xx\", \"identity\": \"bad\"}\n", &w,
			       &e),
			 DBX_EINVAL);
	assert_non_null(strstr(e.message, "identity"));

	/* Structural faults are judged on the text as written, equal values or not. */
	assert_int_equal(store("encryption.json", odd,
			       "{\"key_url\": \"https://xxx.xxx.xx\", \"key_url\": "
			       "\"https://xxx.xxx.xx\"}",
			       &w, &e),
			 DBX_EINVAL);
	assert_int_equal(store("encryption.json", odd,
			       "{\"key_url\": \"https://xxx.xxx.xx\", \"colour\": \"red\"}", &w,
			       &e),
			 DBX_EINVAL);
	assert_int_equal(
	    store("encryption.json", odd, "{\"key_url\": \"https://xxx.xxx.xx\"} x", &w, &e),
	    DBX_EINVAL);

	/* The JSON way to Microsoft managed keys. */
	assert_int_equal(store("encryption.json", odd,
			       "{\"encryption_type\": \"MicrosoftManaged\", \"key_url\": null}\n",
			       &w, &e),
			 DBX_OK);
	assert_true(w.change.has_kek_type);
	assert_true(w.change.has_key_url && w.change.key_url_null);
	dbx_order_free(odd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_table_invariants),
	    cmocka_unit_test(test_microsoft_managed),
	    cmocka_unit_test(test_absent_kek),
	    cmocka_unit_test(test_customer_managed_system_assigned),
	    cmocka_unit_test(test_user_assigned),
	    cmocka_unit_test(test_identity_none),
	    cmocka_unit_test(test_errors_kek_disabled),
	    cmocka_unit_test(test_errors_clean),
	    cmocka_unit_test(test_errors_gathers_state),
	    cmocka_unit_test(test_store_parse),
	    cmocka_unit_test(test_store_current_value),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
