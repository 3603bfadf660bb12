/*
 * test_fs_control.c: the control directory's pure parts (fs/control.c,
 * fs/tree.c): how its paths resolve, and the exact bytes of version,
 * config and an orders line, for the shapes of order a user meets
 * (Microsoft managed, customer managed with an error, an order whose
 * refresh failed, names carrying a tab). Orders are built from JSON text
 * through dbx_order_parse, like the mount.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "databoxfs/order.h"
#include "control.h"
#include "tree.h"

#define SUB "0b1f6471-1bf0-4dda-aec3-111122223333"
#define VAULT_ID                                                                                   \
	"/subscriptions/" SUB "/resourceGroups/rg1/providers/Microsoft.KeyVault/vaults/myvault"
#define KEY_URL "https://myvault.vault.azure.net/keys/mykey"

static struct dbx_order *job(const char *details, const char *extra_props)
{
	char text[8192];
	struct dbx_order *o = NULL;
	struct dbx_error e = {0};

	snprintf(text, sizeof(text),
		 "{\"id\": \"/subscriptions/" SUB
		 "/resourceGroups/rg1/providers/Microsoft.DataBox/jobs/order1\","
		 " \"name\": \"order1\", \"type\": \"Microsoft.DataBox/jobs\", \"location\": "
		 "\"westus\", \"sku\": {\"name\": \"DataBox\"},"
		 " \"identity\": {\"type\": \"SystemAssigned\", \"principalId\": "
		 "\"aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee\"},"
		 " \"systemData\": {\"lastModifiedAt\": \"2026-11-28T12:00:00Z\"},"
		 " \"properties\": {\"status\": \"DataCopy\", \"details\": %s%s}}",
		 details, extra_props);
	assert_int_equal(dbx_order_parse(text, strlen(text), &o, &e), DBX_OK);
	return o;
}

static void test_resolve(void **state)
{
	struct dbx_node n;

	(void)state;
	assert_int_equal(dbx_tree_resolve("/.databoxfs", &n), DBX_OK);
	assert_int_equal(n.kind, DBX_NODE_CONTROL_DIR);
	assert_true(dbx_node_is_dir(&n));
	assert_int_equal(dbx_tree_resolve("/.databoxfs/", &n), DBX_OK);
	assert_int_equal(n.kind, DBX_NODE_CONTROL_DIR);
	assert_int_equal(dbx_tree_resolve("//.databoxfs//orders", &n), DBX_OK);
	assert_int_equal(n.kind, DBX_NODE_CONTROL_FILE);
	assert_int_equal(n.attr, DBX_CONTROL_ORDERS);
	assert_false(dbx_node_is_dir(&n));
	for (size_t i = 0; i < DBX_CONTROL_N_FILES; i++) {
		char path[64];

		snprintf(path, sizeof(path), "/.databoxfs/%s", dbx_control_file_name(i));
		assert_int_equal(dbx_tree_resolve(path, &n), DBX_OK);
		assert_int_equal(n.attr, (int)i);
		assert_int_equal(dbx_control_ino(i), DBX_INO_CONTROL + 1 + i);
		/* Below the first inode the cache hands out (16). */
		assert_true(dbx_control_ino(i) < 16);
	}
	assert_int_equal(dbx_tree_resolve("/.databoxfs/nothing", &n), DBX_ENOTFOUND);
	assert_int_equal(dbx_tree_resolve("/.databoxfs/stats/", &n), DBX_ENOTFOUND);
	assert_int_equal(dbx_tree_resolve("/.databoxfs/stats/x", &n), DBX_ENOTFOUND);
	assert_int_equal(dbx_tree_resolve("/.databoxfs/Stats", &n), DBX_ENOTFOUND);
	/* Only at the root: below a subscription it is an ordinary name. */
	assert_int_equal(dbx_tree_resolve("/" SUB "/.databoxfs", &n), DBX_OK);
	assert_int_equal(n.kind, DBX_NODE_RESOURCE_GROUP);
	assert_int_equal(dbx_tree_resolve("/.databoxfsx", &n), DBX_OK);
	assert_int_equal(n.kind, DBX_NODE_SUBSCRIPTION);
}

static void test_version_and_config(void **state)
{
	const struct dbx_control_setting v[] = {
	    {"cloud", "AzureCloud"},
	    {"credential", "env"},
	    {"cafile", NULL},
	    {"connect_to", "a:1:b\n:2"},
	};
	char *buf = NULL;
	size_t len = 0;

	(void)state;
	assert_int_equal(dbx_control_version_text("1.2.3", "2025-07-01", &buf, &len), DBX_OK);
	assert_string_equal(buf, "databoxfs 1.2.3\napi_version 2025-07-01\n");
	assert_int_equal(len, strlen(buf));
	free(buf);
	assert_int_equal(dbx_control_config_text(v, 4, &buf, &len), DBX_OK);
	/* One line per setting, whatever a value holds. */
	assert_string_equal(buf,
			    "cloud=AzureCloud\ncredential=env\ncafile=\nconnect_to=a:1:b :2\n");
	assert_int_equal(len, strlen(buf));
	free(buf);
	assert_int_equal(dbx_control_config_text(v, 0, &buf, &len), DBX_OK);
	assert_int_equal(len, 0);
	free(buf);
}

static void test_order_lines(void **state)
{
	struct dbx_order *ms = job("{\"jobDetailsType\": \"DataBox\"}", "");
	struct dbx_order *cmk =
	    job("{\"jobDetailsType\": \"DataBox\", \"keyEncryptionKey\": {\"kekType\": "
		"\"CustomerManaged\", \"kekUrl\": \"" KEY_URL "\", \"kekVaultResourceID\": "
		"\"" VAULT_ID "\"}, \"jobStages\": [{\"stageName\": \"DataCopy\", \"stageStatus\": "
		"\"WaitingForCustomerActionForKek\", \"stageTime\": \"2026-11-28T12:05:00Z\"}]}",
		", \"error\": {\"code\": \"SsemUserErrorEncryptionKeyDisabled\", \"message\": "
		"\"Could not fetch the passkey as the customer-managed key is disabled.\"}");
	struct dbx_order_view view = {.rc = DBX_OK};
	char *buf = NULL;
	size_t len = 0;

	(void)state;
	view.order = ms;
	assert_int_equal(dbx_control_order_line(&buf, &len, SUB, "rg1", "order1", &view), DBX_OK);
	assert_string_equal(buf,
			    SUB "/rg1/order1\tDataCopy\tMicrosoftManaged\t\tSystemAssigned\t\n");
	view.order = cmk;
	assert_int_equal(dbx_control_order_line(&buf, &len, SUB, "rg1", "order2", &view), DBX_OK);
	assert_string_equal(buf,
			    SUB "/rg1/order1\tDataCopy\tMicrosoftManaged\t\tSystemAssigned\t\n" SUB
				"/rg1/order2\tDataCopy\tCustomerManaged\t" KEY_URL
				"\tSystemAssigned\tSsemUserErrorEncryptionKeyDisabled\n");
	assert_int_equal(len, strlen(buf));
	free(buf);
	buf = NULL;
	len = 0;

	/* The error comes before its (newer) waiting stage: the Ssem code. */

	/* A refresh that failed: no stale values, and the read error's code. */
	view.rc = DBX_EUNREACHABLE;
	dbx_error_set(&view.err, DBX_EUNREACHABLE, "cannot reach management.azure.com");
	view.err_time = 1764331200;
	assert_int_equal(dbx_control_order_line(&buf, &len, SUB, "rg1", "order2", &view), DBX_OK);
	assert_true(strncmp(buf, SUB "/rg1/order2\t\t\t\t\t", strlen(SUB) + 16) == 0);
	assert_true(len > strlen(SUB) + 16 + 1);
	assert_int_equal(buf[len - 1], '\n');
	assert_null(strchr(buf + strlen(SUB) + 16, '\t'));
	free(buf);
	buf = NULL;
	len = 0;

	/* A tab or newline in a name cannot add a field or a line. */
	view.rc = DBX_OK;
	view.order = ms;
	assert_int_equal(dbx_control_order_line(&buf, &len, SUB, "rg\t1", "ord\ner", &view),
			 DBX_OK);
	assert_string_equal(buf,
			    SUB "/rg 1/ord er\tDataCopy\tMicrosoftManaged\t\tSystemAssigned\t\n");
	free(buf);
	dbx_order_free(ms);
	dbx_order_free(cmk);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_resolve),
	    cmocka_unit_test(test_version_and_config),
	    cmocka_unit_test(test_order_lines),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
