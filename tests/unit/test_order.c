/*
 * test_order.c: job JSON -> struct dbx_order and ARM IDs.
 *
 * The payloads are shaped like the Data Box spec examples (JobsGetCmk,
 * JobsList, JobsPatchSystemAssignedToUserAssigned, JobsGetWaitingForAction)
 * and the recorded real traffic (systemData with 7 fractional digits).
 * What the filesystem shows (encryption_type, key_url, key_vault, identity,
 * principal_id, status, st_mtime, errors) is read from this struct, so each
 * assertion here is something a user sees in a file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "databoxfs/order.h"

#define SUB "YourSubscriptionId"
#define JOB_ID                                                                                     \
	"/subscriptions/" SUB                                                                      \
	"/resourceGroups/YourResourceGroupName/providers/Microsoft.DataBox/jobs/TestJobName1"
#define VAULT_ID                                                                                   \
	"/subscriptions/" SUB "/resourceGroups/YourResourceGroupName/providers/"                   \
	"Microsoft.KeyVault/vaults/YourKeyVaultName"
#define UAI_ID                                                                                     \
	"/subscriptions/" SUB "/resourceGroups/YourResourceGroupName/providers/"                   \
	"Microsoft.ManagedIdentity/userAssignedIdentities/testIdentity"

/* JobsGetCmk.json, trimmed. */
static const char get_cmk[] =
    "{\"name\": \"TestJobName1\", \"type\": \"Microsoft.DataBox/jobs\",\n"
    " \"id\": \"" JOB_ID "\",\n"
    " \"identity\": {\"type\": \"SystemAssigned\", \"principalId\": "
    "\"11111111-2222-3333-4444-555555555555\","
    "  \"tenantId\": \"66666666-7777-8888-9999-000000000000\"},\n"
    " \"location\": \"westus\",\n"
    " \"properties\": {\"isCancellable\": true, \"startTime\": "
    "\"2020-08-07T10:47:42.0009935+05:30\","
    "  \"status\": \"DeviceOrdered\", \"transferType\": \"ImportToAzure\",\n"
    "  \"details\": {\"contactDetails\": {}, \"jobDetailsType\": \"DataBox\",\n"
    "   \"jobStages\": [{\"displayName\": \"Ordered\", \"stageName\": \"DeviceOrdered\", "
    "\"stageStatus\": "
    "\"Succeeded\", \"stageTime\": \"2020-08-07T10:47:44.8736499+05:30\"},\n"
    "                 {\"displayName\": \"Processed\", \"stageName\": \"DevicePrepared\", "
    "\"stageStatus\": "
    "\"None\"}],\n"
    "   \"keyEncryptionKey\": {\"kekType\": \"CustomerManaged\", \"kekUrl\": "
    "\"https://myvault.vault.azure.net/keys/mykey/0123456789abcdef0123456789abcdef\",\n"
    "     \"kekVaultResourceID\": \"" VAULT_ID "\"}}},\n"
    " \"sku\": {\"name\": \"DataBox\", \"model\": \"DataBox\"},\n"
    " \"systemData\": {\"createdBy\": \"a@b.c\", \"lastModifiedAt\": "
    "\"2025-05-26T06:50:23.0185023+00:00\"},\n"
    " \"tags\": {}}";

/* One item of JobsList.json: lower-case "resourcegroups", identity None, Microsoft managed. */
static const char list_item[] =
    "{\"id\": \"/subscriptions/" SUB
    "/resourcegroups/TestResourceGroupName/providers/Microsoft.DataBox/jobs/"
    "TestJobName1\", \"name\": \"TestJobName1\", \"location\": \"westus\", \"type\": "
    "\"Microsoft.DataBox/jobs\","
    " \"identity\": {\"type\": \"None\"}, \"sku\": {\"name\": \"DataBoxDisk\"},"
    " \"properties\": {\"status\": \"DeviceOrdered\", \"details\": {\"jobDetailsType\": "
    "\"DataBoxDisk\","
    "  \"keyEncryptionKey\": {\"kekType\": \"MicrosoftManaged\"}}}}";

static struct dbx_order *parse_ok(const char *text)
{
	struct dbx_order *o = NULL;
	struct dbx_error e = {0};

	assert_int_equal(dbx_order_parse(text, strlen(text), &o, &e), DBX_OK);
	assert_non_null(o);
	return o;
}

static void parse_fails(const char *text)
{
	struct dbx_order *o = (struct dbx_order *)1;
	struct dbx_error e = {0};

	assert_int_equal(dbx_order_parse(text, strlen(text), &o, &e), DBX_EREMOTE);
	assert_null(o);
	assert_int_equal(e.err, DBX_EREMOTE);
	assert_true(strlen(e.message) > 0);
}

static void test_get_cmk(void **state)
{
	struct dbx_order *o = parse_ok(get_cmk);

	(void)state;
	assert_string_equal(o->id, JOB_ID);
	assert_string_equal(o->subscription, SUB);
	assert_string_equal(o->resource_group, "YourResourceGroupName");
	assert_string_equal(o->name, "TestJobName1");
	assert_string_equal(o->location, "westus");
	assert_string_equal(o->sku, "DataBox");
	assert_string_equal(o->status, "DeviceOrdered");
	assert_true(o->has_details);
	assert_int_equal(o->kek_type, DBX_KEK_CUSTOMER);
	assert_string_equal(
	    o->kek_url,
	    "https://myvault.vault.azure.net/keys/mykey/0123456789abcdef0123456789abcdef");
	assert_string_equal(o->kek_vault_id, VAULT_ID);
	assert_null(o->kek_identity_type);
	assert_null(o->kek_uai_id);
	assert_string_equal(o->identity_type, "SystemAssigned");
	assert_string_equal(o->principal_id, "11111111-2222-3333-4444-555555555555");
	assert_string_equal(o->tenant_id, "66666666-7777-8888-9999-000000000000");
	assert_int_equal(o->n_uai, 0);
	assert_string_equal(dbx_order_identity(o), "SystemAssigned");
	assert_string_equal(o->last_modified, "2025-05-26T06:50:23.0185023+00:00");
	assert_int_equal(o->n_problems, 0); /* Succeeded and None stages are not problems */
	dbx_order_free(o);
}

static void test_list_item_lowercase_resourcegroups(void **state)
{
	struct dbx_order *o = parse_ok(list_item);

	(void)state;
	assert_string_equal(o->subscription, SUB);
	assert_string_equal(o->resource_group, "TestResourceGroupName");
	assert_string_equal(o->name, "TestJobName1");
	assert_string_equal(o->sku, "DataBoxDisk");
	assert_true(o->has_details);
	assert_int_equal(o->kek_type, DBX_KEK_MICROSOFT);
	assert_null(o->kek_url);
	assert_null(o->kek_vault_id);
	assert_string_equal(o->identity_type, "None");
	assert_null(o->principal_id);
	assert_string_equal(dbx_order_identity(o), "None");
	assert_null(o->last_modified);
	assert_int_equal(o->mtime, 0);
	dbx_order_free(o);
}

static void test_no_key_encryption_key(void **state)
{
	struct dbx_order *o = parse_ok(
	    "{\"id\": \"" JOB_ID "\", \"name\": \"TestJobName1\","
	    " \"properties\": {\"status\": \"DataCopy\", \"details\": {\"jobStages\": []}}}");

	(void)state;
	assert_true(o->has_details);
	assert_int_equal(o->kek_type, DBX_KEK_MICROSOFT);
	assert_null(o->kek_url);
	/* No identity object at all reads as "None". */
	assert_string_equal(o->identity_type, "None");
	assert_string_equal(dbx_order_identity(o), "None");
	dbx_order_free(o);

	/* keyEncryptionKey present but without kekType: Microsoft managed too. */
	o = parse_ok("{\"id\": \"" JOB_ID "\", \"name\": \"TestJobName1\","
		     " \"properties\": {\"details\": {\"keyEncryptionKey\": {\"kekUrl\": "
		     "\"https://v.vault.azure.net/keys/k\"}}}}");
	assert_int_equal(o->kek_type, DBX_KEK_MICROSOFT);
	assert_string_equal(o->kek_url, "https://v.vault.azure.net/keys/k");
	dbx_order_free(o);
}

static void test_no_details(void **state)
{
	struct dbx_order *o = parse_ok(
	    "{\"id\": \"" JOB_ID "\", \"name\": \"TestJobName1\", \"location\": \"westus\","
	    " \"identity\": {\"type\": \"SystemAssigned\", \"principalId\": \"p\"},"
	    " \"properties\": {\"status\": \"DeviceOrdered\"}}");

	(void)state;
	assert_false(o->has_details);
	assert_int_equal(o->kek_type, DBX_KEK_MICROSOFT);
	assert_null(o->kek_url);
	assert_string_equal(o->status, "DeviceOrdered");
	assert_string_equal(dbx_order_identity(o), "SystemAssigned");
	dbx_order_free(o);

	/* Not even properties. */
	o = parse_ok("{\"id\": \"" JOB_ID "\", \"name\": \"TestJobName1\"}");
	assert_false(o->has_details);
	assert_null(o->status);
	assert_null(o->location);
	assert_null(o->sku);
	dbx_order_free(o);
}

static void test_user_assigned_identity(void **state)
{
	/* After JobsPatchSystemAssignedToUserAssigned. */
	struct dbx_order *o = parse_ok("{\"id\": \"" JOB_ID "\", \"name\": \"TestJobName1\","
				       " \"identity\": {\"type\": \"SystemAssigned,UserAssigned\", "
				       "\"principalId\": \"sys-principal\","
				       "   \"userAssignedIdentities\": {\"" UAI_ID
				       "\": {\"principalId\": \"u\", \"clientId\": \"c\"}}},"
				       " \"properties\": {\"details\": {\"keyEncryptionKey\": {"
				       "   \"identityProperties\": {\"type\": \"UserAssigned\", "
				       "\"userAssigned\": {\"resourceId\": \"" UAI_ID "\"}},"
				       "   \"kekType\": \"CustomerManaged\", \"kekUrl\": "
				       "\"https://myvault.vault.azure.net/keys/mykey\","
				       "   \"kekVaultResourceID\": \"" VAULT_ID "\"}}}}");

	(void)state;
	assert_int_equal(o->kek_type, DBX_KEK_CUSTOMER);
	assert_string_equal(o->kek_identity_type, "UserAssigned");
	assert_string_equal(o->kek_uai_id, UAI_ID);
	assert_string_equal(o->identity_type, "SystemAssigned,UserAssigned");
	assert_int_equal(o->n_uai, 1);
	assert_string_equal(o->uai_ids[0], UAI_ID);
	assert_string_equal(o->principal_id, "sys-principal");
	assert_string_equal(dbx_order_identity(o), UAI_ID);
	dbx_order_free(o);

	/* identityProperties SystemAssigned with the same job identity: the system identity is
	 * shown. */
	o = parse_ok("{\"id\": \"" JOB_ID "\", \"name\": \"TestJobName1\","
		     " \"identity\": {\"type\": \"SystemAssigned,UserAssigned\","
		     "   \"userAssignedIdentities\": {\"" UAI_ID "\": {}, \"/other\": {}}},"
		     " \"properties\": {\"details\": {\"keyEncryptionKey\": {"
		     "   \"identityProperties\": {\"type\": \"SystemAssigned\"}, \"kekType\": "
		     "\"CustomerManaged\"}}}}");
	assert_int_equal(o->n_uai, 2);
	assert_string_equal(dbx_order_identity(o), "SystemAssigned");
	dbx_order_free(o);

	/* UserAssigned only, no system identity, identityProperties absent: nothing reaches the
	 * key. */
	o = parse_ok(
	    "{\"id\": \"" JOB_ID "\", \"name\": \"TestJobName1\","
	    " \"identity\": {\"type\": \"UserAssigned\", \"userAssignedIdentities\": {\"" UAI_ID
	    "\": {}}}}");
	assert_string_equal(dbx_order_identity(o), "None");
	dbx_order_free(o);
}

static void test_problems_error_then_stages(void **state)
{
	/* JobsGetWaitingForAction-like, plus a KEK stage. */
	struct dbx_order *o = parse_ok(
	    "{\"id\": \"" JOB_ID "\", \"name\": \"TestJobName1\","
	    " \"properties\": {\"status\": \"DataCopy\","
	    "  \"error\": {\"additionalInfo\": [], \"code\": "
	    "\"SsemUserErrorEncryptionKeyDisabled\","
	    "    \"message\": \"Could not fetch the passkey as the customer-managed key is "
	    "disabled.\","
	    "    \"target\": \"KeyEncryptionKey\", \"details\": []},"
	    "  \"details\": {\"actions\": [\"MoveToCleanUpDevice\"], \"jobStages\": ["
	    "    {\"stageName\": \"DeviceOrdered\", \"displayName\": \"Ordered\", \"stageStatus\": "
	    "\"Succeeded\"},"
	    "    {\"stageName\": \"DataCopy\", \"displayName\": \"Data copy\", \"stageStatus\": "
	    "\"WaitingForCustomerActionForKek\", \"stageTime\": "
	    "\"2026-11-28T12:00:00.1234567+00:00\"},"
	    "    {\"stageName\": \"Completed\", \"stageStatus\": \"Failed\"},"
	    "    {\"stageName\": \"X\", \"stageStatus\": \"WaitingForCustomerAction\"},"
	    "    {\"stageName\": \"Y\", \"stageStatus\": \"SucceededWithErrors\"},"
	    "    null],"
	    "   \"keyEncryptionKey\": {\"kekType\": \"CustomerManaged\"}}}}");

	(void)state;
	assert_int_equal(o->n_problems, 4);
	assert_string_equal(o->problems[0].code, "SsemUserErrorEncryptionKeyDisabled");
	assert_string_equal(o->problems[0].message,
			    "Could not fetch the passkey as the customer-managed key is disabled.");
	assert_string_equal(o->problems[0].target, "KeyEncryptionKey");
	assert_null(o->problems[0].time);

	assert_string_equal(o->problems[1].code, "WaitingForCustomerActionForKek");
	assert_string_equal(o->problems[1].message,
			    "Stage 'Data copy' (DataCopy) is WaitingForCustomerActionForKek");
	assert_string_equal(o->problems[1].target, "DataCopy");
	assert_string_equal(o->problems[1].time, "2026-11-28T12:00:00.1234567+00:00");

	assert_string_equal(o->problems[2].code, "Failed");
	assert_string_equal(o->problems[2].message, "Stage Completed is Failed");
	assert_string_equal(o->problems[2].target, "Completed");
	assert_null(o->problems[2].time);

	assert_string_equal(o->problems[3].code, "WaitingForCustomerAction");
	dbx_order_free(o);

	/* An error object with nothing in it, or null, is no problem. */
	o = parse_ok(
	    "{\"id\": \"" JOB_ID
	    "\", \"name\": \"TestJobName1\", \"properties\": {\"error\": {\"details\": []}}}");
	assert_int_equal(o->n_problems, 0);
	dbx_order_free(o);
	o = parse_ok("{\"id\": \"" JOB_ID
		     "\", \"name\": \"TestJobName1\", \"properties\": {\"error\": null}}");
	assert_int_equal(o->n_problems, 0);
	dbx_order_free(o);
}

/* Equal strings held in separate buffers, or both NULL. */
static void assert_same_copy(const char *orig, const char *copy)
{
	if (!orig) {
		assert_null(copy);
		return;
	}
	assert_non_null(copy);
	assert_ptr_not_equal(orig, copy);
	assert_string_equal(orig, copy);
}

static void test_dup_is_deep_and_complete(void **state)
{
	/* Every kind of field set: key with a user-assigned identity, job identity with two
	 * user-assigned identities, problems, systemData. */
	struct dbx_order *o = parse_ok(
	    "{\"id\": \"" JOB_ID "\", \"name\": \"TestJobName1\", \"location\": \"westus\","
	    " \"sku\": {\"name\": \"DataBox\"},"
	    " \"identity\": {\"type\": \"SystemAssigned,UserAssigned\", \"principalId\": \"p\","
	    "  \"tenantId\": \"t\", \"userAssignedIdentities\": {\"" UAI_ID
	    "\": {}, \"/other\": {}}},"
	    " \"systemData\": {\"lastModifiedAt\": \"2025-05-26T06:50:23.0185023+00:00\"},"
	    " \"properties\": {\"status\": \"DataCopy\","
	    "  \"error\": {\"code\": \"C\", \"message\": \"M\", \"target\": \"T\"},"
	    "  \"details\": {\"jobStages\": [{\"stageName\": \"DataCopy\", \"stageStatus\": "
	    "\"Failed\", \"stageTime\": \"2026-11-28T12:00:00Z\"}],"
	    "   \"keyEncryptionKey\": {\"kekType\": \"CustomerManaged\", \"kekUrl\": "
	    "\"https://myvault.vault.azure.net/keys/mykey\", \"kekVaultResourceID\": \"" VAULT_ID
	    "\","
	    "    \"identityProperties\": {\"type\": \"UserAssigned\", \"userAssigned\": "
	    "{\"resourceId\": \"" UAI_ID "\"}}}}}}");
	struct dbx_order *c = dbx_order_dup(o);

	(void)state;
	assert_non_null(c);
	assert_same_copy(o->id, c->id);
	assert_same_copy(o->subscription, c->subscription);
	assert_same_copy(o->resource_group, c->resource_group);
	assert_same_copy(o->name, c->name);
	assert_same_copy(o->location, c->location);
	assert_same_copy(o->sku, c->sku);
	assert_same_copy(o->status, c->status);
	assert_true(c->has_details);
	assert_int_equal(c->kek_type, DBX_KEK_CUSTOMER);
	assert_same_copy(o->kek_url, c->kek_url);
	assert_same_copy(o->kek_vault_id, c->kek_vault_id);
	assert_same_copy(o->kek_identity_type, c->kek_identity_type);
	assert_same_copy(o->kek_uai_id, c->kek_uai_id);
	assert_same_copy(o->identity_type, c->identity_type);
	assert_same_copy(o->principal_id, c->principal_id);
	assert_same_copy(o->tenant_id, c->tenant_id);
	assert_same_copy(o->last_modified, c->last_modified);
	assert_int_equal(c->mtime, o->mtime);
	assert_true(c->mtime > 0);
	assert_int_equal(c->n_uai, 2);
	assert_ptr_not_equal(c->uai_ids, o->uai_ids);
	for (size_t i = 0; i < c->n_uai; i++)
		assert_same_copy(o->uai_ids[i], c->uai_ids[i]);
	assert_int_equal(c->n_problems, 2);
	assert_ptr_not_equal(c->problems, o->problems);
	for (size_t i = 0; i < c->n_problems; i++) {
		assert_same_copy(o->problems[i].code, c->problems[i].code);
		assert_same_copy(o->problems[i].message, c->problems[i].message);
		assert_same_copy(o->problems[i].target, c->problems[i].target);
		assert_same_copy(o->problems[i].time, c->problems[i].time);
	}
	/* The copy outlives the original: what the files show comes from it alone. */
	dbx_order_free(o);
	assert_string_equal(dbx_order_identity(c), UAI_ID);
	dbx_order_free(c);

	/* Absent fields stay absent. */
	o = parse_ok("{\"id\": \"" JOB_ID "\", \"name\": \"TestJobName1\"}");
	c = dbx_order_dup(o);
	assert_non_null(c);
	assert_false(c->has_details);
	assert_null(c->kek_url);
	assert_null(c->status);
	assert_null(c->uai_ids);
	assert_int_equal(c->n_uai, 0);
	assert_null(c->problems);
	assert_int_equal(c->n_problems, 0);
	assert_string_equal(c->identity_type, "None");
	dbx_order_free(o);
	dbx_order_free(c);
}

/* One reading of identity types for what the files show and what a write sends. */
static void test_type_has(void **state)
{
	(void)state;
	assert_true(dbx_order_type_has("SystemAssigned", "SystemAssigned"));
	assert_true(dbx_order_type_has("SystemAssigned,UserAssigned", "UserAssigned"));
	assert_true(dbx_order_type_has("systemassigned, userassigned", "UserAssigned"));
	assert_true(dbx_order_type_has("SystemAssigned,\n\tUserAssigned ", "UserAssigned"));
	assert_false(dbx_order_type_has("SystemAssigned", "UserAssigned"));
	assert_false(dbx_order_type_has("SystemAssignedX", "SystemAssigned"));
	assert_false(dbx_order_type_has("NotSystemAssigned", "SystemAssigned"));
	assert_false(dbx_order_type_has("None", "SystemAssigned"));
	assert_false(dbx_order_type_has("", "SystemAssigned"));
	assert_false(dbx_order_type_has(NULL, "SystemAssigned"));
}

static void test_last_modified_exact(void **state)
{
	struct dbx_order *o = parse_ok(get_cmk);

	(void)state;
	/* 2025-05-26T06:50:23Z = 1748242223 (date -u -d 2025-05-26T06:50:23Z +%s). */
	assert_int_equal(o->mtime, 1748242223);
	dbx_order_free(o);

	/* A lastModifiedAt we cannot read keeps the text and leaves mtime 0. */
	o = parse_ok(
	    "{\"id\": \"" JOB_ID
	    "\", \"name\": \"TestJobName1\", \"systemData\": {\"lastModifiedAt\": \"yesterday\"}}");
	assert_string_equal(o->last_modified, "yesterday");
	assert_int_equal(o->mtime, 0);
	dbx_order_free(o);
}

static void test_malformed(void **state)
{
	(void)state;
	/* Missing or wrong-typed id / name. */
	parse_fails("{\"name\": \"TestJobName1\"}");
	parse_fails("{\"id\": \"" JOB_ID "\"}");
	parse_fails("{\"id\": 42, \"name\": \"TestJobName1\"}");
	parse_fails("{\"id\": \"" JOB_ID "\", \"name\": null}");
	/* An id of the wrong shape, or of another resource type. */
	parse_fails("{\"id\": \"TestJobName1\", \"name\": \"TestJobName1\"}");
	parse_fails("{\"id\": \"/subscriptions/s/providers/Microsoft.DataBox/jobs/TestJobName1\", "
		    "\"name\": \"TestJobName1\"}");
	parse_fails("{\"id\": \"" VAULT_ID "\", \"name\": \"YourKeyVaultName\"}");
	/* A name that is not the id's own: it would become a directory entry. */
	parse_fails("{\"id\": \"" JOB_ID "\", \"name\": \"../../etc\"}");
	parse_fails("{\"id\": \"" JOB_ID "\", \"name\": \"Other\"}");
	parse_fails(
	    "{\"id\": \"/subscriptions/s/resourceGroups/../providers/Microsoft.DataBox/jobs/j\", "
	    "\"name\": \"j\"}");
	/* Not an object, not JSON, truncated, trailing garbage, empty. */
	parse_fails("[]");
	parse_fails("\"job\"");
	parse_fails("null");
	parse_fails("{\"id\": \"" JOB_ID "\", \"name\": \"TestJobName1\"");
	parse_fails("{\"id\": \"" JOB_ID "\", \"name\": \"TestJobName1\"} {}");
	parse_fails("not json");
	parse_fails("");
}

/*
 * ---- strict types: one table row per field order.c reads ----
 *
 * full_job has every one of them; each row replaces one (found by a dotted
 * path, numbers index arrays) with every JSON type but the accepted one
 * and expects the job to be malformed with the field named in the
 * message, and with null expects it to read as absent.
 */
static const char full_job[] =
    "{\"id\": \"" JOB_ID "\", \"name\": \"TestJobName1\", \"type\": \"Microsoft.DataBox/jobs\","
    " \"location\": \"westus\", \"sku\": {\"name\": \"DataBox\"},"
    " \"identity\": {\"type\": \"SystemAssigned,UserAssigned\", \"principalId\": \"p\","
    "  \"tenantId\": \"t\", \"userAssignedIdentities\": {\"" UAI_ID "\": {\"principalId\": \"x\","
    "  \"clientId\": \"y\"}}},"
    " \"properties\": {\"status\": \"DeviceOrdered\","
    "  \"error\": {\"code\": \"SsemUserErrorEncryptionKeyDisabled\", \"message\": \"m\","
    "   \"target\": \"KeyEncryptionKey\"},"
    "  \"details\": {\"jobStages\": [{\"stageName\": \"DataCopy\", \"displayName\": \"Data copy\","
    "    \"stageStatus\": \"Failed\", \"stageTime\": \"2026-11-28T12:00:00+00:00\"}],"
    "   \"keyEncryptionKey\": {\"kekType\": \"CustomerManaged\", \"kekUrl\": "
    "\"https://myvault.vault.azure.net/keys/mykey\", \"kekVaultResourceID\": \"" VAULT_ID "\","
    "    \"identityProperties\": {\"type\": \"UserAssigned\", \"userAssigned\": {\"resourceId\": "
    "\"" UAI_ID "\"}}}}},"
    " \"systemData\": {\"lastModifiedAt\": \"2025-05-26T06:50:23.0185023+00:00\"}}";

struct field_row {
	const char *at;	  /* dotted path into full_job; a number indexes an array */
	const char *name; /* the field as the message names it */
	enum json_type type;
	bool required; /* null is malformed too */
};

#define K  "properties.details.keyEncryptionKey"
#define KI K ".identityProperties"
static const struct field_row fields[] = {
    {"id", "id", json_type_string, true},
    {"name", "name", json_type_string, true},
    {"type", "type", json_type_string, false},
    {"location", "location", json_type_string, false},
    {"sku", "sku", json_type_object, false},
    {"sku.name", "sku.name", json_type_string, false},
    {"properties", "properties", json_type_object, false},
    {"properties.status", "properties.status", json_type_string, false},
    {"properties.details", "properties.details", json_type_object, false},
    {"properties.error", "properties.error", json_type_object, false},
    {"properties.error.code", "properties.error.code", json_type_string, false},
    {"properties.error.message", "properties.error.message", json_type_string, false},
    {"properties.error.target", "properties.error.target", json_type_string, false},
    {"properties.details.jobStages", "properties.details.jobStages", json_type_array, false},
    {"properties.details.jobStages.0", "properties.details.jobStages[0]", json_type_object, false},
    {"properties.details.jobStages.0.stageStatus", "properties.details.jobStages[0].stageStatus",
     json_type_string, false},
    {"properties.details.jobStages.0.stageName", "properties.details.jobStages[0].stageName",
     json_type_string, false},
    {"properties.details.jobStages.0.displayName", "properties.details.jobStages[0].displayName",
     json_type_string, false},
    {"properties.details.jobStages.0.stageTime", "properties.details.jobStages[0].stageTime",
     json_type_string, false},
    {K, K, json_type_object, false},
    {K ".kekType", K ".kekType", json_type_string, false},
    {K ".kekUrl", K ".kekUrl", json_type_string, false},
    {K ".kekVaultResourceID", K ".kekVaultResourceID", json_type_string, false},
    {KI, KI, json_type_object, false},
    {KI ".type", KI ".type", json_type_string, false},
    {KI ".userAssigned", KI ".userAssigned", json_type_object, false},
    {KI ".userAssigned.resourceId", KI ".userAssigned.resourceId", json_type_string, false},
    {"identity", "identity", json_type_object, false},
    {"identity.type", "identity.type", json_type_string, false},
    {"identity.principalId", "identity.principalId", json_type_string, false},
    {"identity.tenantId", "identity.tenantId", json_type_string, false},
    {"identity.userAssignedIdentities", "identity.userAssignedIdentities", json_type_object, false},
    {"systemData", "systemData", json_type_object, false},
    {"systemData.lastModifiedAt", "systemData.lastModifiedAt", json_type_string, false},
};

/* A value of type t (a new reference), or NULL for json_type_null. */
static struct json_object *value_of(enum json_type t)
{
	switch (t) {
	case json_type_boolean:
		return json_object_new_boolean(1);
	case json_type_int:
		return json_object_new_int(1);
	case json_type_double:
		return json_object_new_double(2.5);
	case json_type_string:
		return json_object_new_string("s");
	case json_type_array:
		return json_object_new_array();
	case json_type_object:
		return json_object_new_object();
	default:
		return NULL;
	}
}

/* full_job with the member at path replaced by v (taken), as text (malloc'd). */
static char *job_with(const char *path, struct json_object *v)
{
	struct json_object *root = json_tokener_parse(full_job), *o = root;
	char buf[256], *save = NULL, *seg, *next, *text;

	assert_non_null(root);
	snprintf(buf, sizeof(buf), "%s", path);
	seg = strtok_r(buf, ".", &save);
	while ((next = strtok_r(NULL, ".", &save)) != NULL) {
		struct json_object *child = NULL;

		if (json_object_is_type(o, json_type_array))
			child = json_object_array_get_idx(o, (size_t)atoi(seg));
		else
			assert_true(json_object_object_get_ex(o, seg, &child));
		assert_non_null(child);
		o = child;
		seg = next;
	}
	if (json_object_is_type(o, json_type_array))
		assert_int_equal(json_object_array_put_idx(o, (size_t)atoi(seg), v), 0);
	else
		assert_int_equal(json_object_object_add(o, seg, v), 0);
	text = strdup(json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN));
	json_object_put(root);
	return text;
}

static const enum json_type all_types[] = {json_type_boolean, json_type_int,   json_type_double,
					   json_type_string,  json_type_array, json_type_object};

static bool same_json_kind(enum json_type a, enum json_type b)
{
	bool num_a = a == json_type_int || a == json_type_double;
	bool num_b = b == json_type_int || b == json_type_double;

	return a == b || (num_a && num_b);
}

static void test_every_field_wrong_type_is_malformed(void **state)
{
	struct dbx_order *o = parse_ok(full_job);
	size_t cases = 0;

	(void)state;
	/* The base job reads in full: every row below changes something that is read. */
	assert_int_equal(o->kek_type, DBX_KEK_CUSTOMER);
	assert_string_equal(o->kek_uai_id, UAI_ID);
	assert_int_equal(o->n_uai, 1);
	assert_int_equal(o->n_problems, 2);
	dbx_order_free(o);

	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		const struct field_row *f = &fields[i];
		char want[256];

		snprintf(want, sizeof(want), "malformed answer from ARM: %s is ", f->name);
		for (size_t k = 0; k < sizeof(all_types) / sizeof(all_types[0]); k++) {
			struct dbx_error e = {0};
			char *text;

			if (same_json_kind(all_types[k], f->type))
				continue;
			text = job_with(f->at, value_of(all_types[k]));
			o = (struct dbx_order *)1;
			if (dbx_order_parse(text, strlen(text), &o, &e) != DBX_EREMOTE || o ||
			    !strstr(e.message, want))
				fail_msg("%s as %s: rc/message \"%s\" (wanted \"%s...\")", f->at,
					 json_type_to_name(all_types[k]), e.message, want);
			free(text);
			cases++;
		}
		/* null: absent (the whole job refused only for id and name). */
		{
			struct dbx_error e = {0};
			char *text = job_with(f->at, NULL);
			enum dbx_err rc;

			o = NULL;
			rc = dbx_order_parse(text, strlen(text), &o, &e);
			if (f->required)
				assert_int_equal(rc, DBX_EREMOTE);
			else if (rc != DBX_OK)
				fail_msg("%s null: %s", f->at, e.message);
			dbx_order_free(o);
			free(text);
		}
	}
	print_message("%zu wrong-typed fields refused\n", cases);
	assert_true(cases >= 5 * 30);
}

/* The examples of the issue: each used to read as absent, with false values in the files. */
static void test_issue_examples_are_malformed(void **state)
{
	static const struct {
		const char *at, *value, *message;
	} rows[] = {
	    {"properties", "5",
	     "malformed answer from ARM: properties is a number, expected an object"},
	    {"identity", "[]",
	     "malformed answer from ARM: identity is an array, expected an object"},
	    {"identity", "5",
	     "malformed answer from ARM: identity is a number, expected an object"},
	    {K ".kekType", "1",
	     "malformed answer from ARM: " K ".kekType is a number, expected a string"},
	    {K ".kekType", "\"Managed\"",
	     "malformed answer from ARM: " K
	     ".kekType is \"Managed\", expected MicrosoftManaged or CustomerManaged"},
	    {K ".kekType", "\"Customer\\nManaged\"",
	     "malformed answer from ARM: " K
	     ".kekType is \"Customer?Managed\", expected MicrosoftManaged or CustomerManaged"},
	    {"type", "\"Microsoft.Storage/storageAccounts\"",
	     "malformed answer from ARM: type is \"Microsoft.Storage/storageAccounts\", expected "
	     "Microsoft.DataBox/jobs"},
	    {"identity.userAssignedIdentities." UAI_ID, "\"x\"",
	     "malformed answer from ARM: identity.userAssignedIdentities[\"" UAI_ID
	     "\"] is a string, expected an object"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct dbx_order *o = (struct dbx_order *)1;
		struct dbx_error e = {0};
		char *text;

		if (strncmp(rows[i].at, "identity.userAssignedIdentities.", 32) == 0) {
			/* The key holds dots: replace the value in the text itself. */
			const char *from = "{\"principalId\": \"x\",  \"clientId\": \"y\"}";
			const char *at = strstr(full_job, from);
			size_t pre;

			assert_non_null(at);
			pre = (size_t)(at - full_job);
			text = malloc(strlen(full_job) + 8);
			memcpy(text, full_job, pre);
			strcpy(text + pre, rows[i].value);
			strcat(text, at + strlen(from));
		} else {
			text = job_with(rows[i].at, json_tokener_parse(rows[i].value));
		}
		assert_int_equal(dbx_order_parse(text, strlen(text), &o, &e), DBX_EREMOTE);
		assert_null(o);
		assert_string_equal(e.message, rows[i].message);
		free(text);
	}
}

/* What json-c would let through silently: duplicate keys, deep nesting, bad UTF-8, NUL. */
static void test_hostile_bodies(void **state)
{
	static const struct {
		const char *text, *message;
	} rows[] = {
	    {"{\"id\": \"" JOB_ID "\", \"name\": \"TestJobName1\", \"name\": \"TestJobName1\"}",
	     "malformed answer from ARM: duplicate key \"name\""},
	    /* Same key in different objects is fine; twice inside a nested one is not. */
	    {"{\"id\": \"" JOB_ID "\", \"name\": \"TestJobName1\", \"properties\": {\"details\": "
	     "{\"keyEncryptionKey\": {\"kekType\": \"MicrosoftManaged\", \"kekType\": "
	     "\"CustomerManaged\"}}}}",
	     "malformed answer from ARM: duplicate key \"kekType\""},
	    {"{\"id\": \"" JOB_ID "\", \"name\": \"TestJobName1\", \"identity\": {\"type\": "
	     "\"None\"}, \"identity\": {\"type\": \"SystemAssigned\"}}",
	     "malformed answer from ARM: duplicate key \"identity\""},
	    /* An escaped spelling of the same key is the same key. */
	    {"{\"id\": \"" JOB_ID "\", \"name\": \"TestJobName1\", \"n\\u0061me\": \"x\"}",
	     "malformed answer from ARM: duplicate key \"name\""},
	    {"{\"id\": \"" JOB_ID
	     "\", \"name\": \"TestJobName1\", \"location\": \"west\\u0000us\"}",
	     "malformed answer from ARM: a string holds a NUL character (\\u0000)"},
	    {"{\"id\": \"" JOB_ID "\", \"name\": \"TestJobName1\", \"location\": \"west\xff\"}",
	     "malformed answer from ARM: a string is not valid UTF-8"},
	    {"{\"id\": \"" JOB_ID "\", \"name\": \"TestJobName1\", \"location\": \"\xc3\x28\"}",
	     "malformed answer from ARM: a string is not valid UTF-8"},
	    {"{\"id\": \"" JOB_ID "\", \"name\": \"TestJobName1\", \"location\": 'westus'}", NULL},
	};
	char *deep;
	size_t n = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct dbx_order *o = (struct dbx_order *)1;
		struct dbx_error e = {0};

		assert_int_equal(dbx_order_parse(rows[i].text, strlen(rows[i].text), &o, &e),
				 DBX_EREMOTE);
		assert_null(o);
		if (rows[i].message)
			assert_string_equal(e.message, rows[i].message);
	}
	/* Keys that merely look alike, a ':' inside strings, an escaped backslash: no duplicate. */
	dbx_order_free(parse_ok("{\"id\": \"" JOB_ID "\", \"name\": \"TestJobName1\", \"tags\": "
				"{\"a:b\": \"c:d\", \"a\\\\\": \"\\\\\", \"A\": \"\\\"x:\\\"\"}}"));
	/* Strict mode still takes white space around the object, and every JSON number form. */
	dbx_order_free(
	    parse_ok(" \r\n{\"id\": \"" JOB_ID "\", \"name\": \"TestJobName1\", \"tags\": "
		     "{\"n\": [1E5, -0.5e-3, 0, 12]}, \"location\": \"\\/w\\u00e9\"}\r\n\t "));
	/* UTF-8 that is valid passes. */
	dbx_order_free(
	    parse_ok("{\"id\": \"" JOB_ID
		     "\", \"name\": \"TestJobName1\", \"location\": \"S\xc3\xa3o Paulo\"}"));

	/* 32 levels are accepted, 33 are not (and a million are refused as fast). */
	deep = malloc(2 * 1000000 + 200);
	n = (size_t)sprintf(deep,
			    "{\"id\": \"" JOB_ID "\", \"name\": \"TestJobName1\", \"tags\": ");
	for (size_t i = 0; i < 30; i++)
		deep[n++] = '[';
	for (size_t i = 0; i < 30; i++)
		deep[n++] = ']';
	deep[n++] = '}';
	deep[n] = '\0';
	dbx_order_free(parse_ok(deep));
	{
		struct dbx_order *o = NULL;
		struct dbx_error e = {0};

		n = (size_t)sprintf(deep, "{\"id\": \"" JOB_ID "\", \"tags\": ");
		for (size_t i = 0; i < 1000000; i++)
			deep[n++] = '[';
		deep[n++] = '}';
		deep[n] = '\0';
		assert_int_equal(dbx_order_parse(deep, n, &o, &e), DBX_EREMOTE);
		assert_string_equal(e.message,
				    "malformed answer from ARM: JSON nested deeper than 32 levels");
		n = (size_t)sprintf(deep, "{\"id\": \"" JOB_ID "\", \"tags\": ");
		for (size_t i = 0; i < 32; i++)
			deep[n++] = '[';
		for (size_t i = 0; i < 32; i++)
			deep[n++] = ']';
		deep[n++] = '}';
		deep[n] = '\0';
		assert_int_equal(dbx_order_parse(deep, n, &o, &e), DBX_EREMOTE);
		assert_non_null(strstr(e.message, "deeper than 32"));
	}
	free(deep);
}

/* A list item refused for a field still names its order, for the listing to show it failed. */
static void test_malformed_stub(void **state)
{
	struct json_object *job = json_tokener_parse(
	    "{\"id\": \"" JOB_ID "\", \"name\": \"TestJobName1\", \"properties\": 5}");
	struct dbx_order *o = NULL, *copy;
	struct dbx_error e = {0};

	(void)state;
	assert_int_equal(dbx_order_from_json(job, &o, &e), DBX_EREMOTE);
	assert_null(o);
	e.http_status = 200;
	snprintf(e.request_id, sizeof(e.request_id), "rid-page");
	assert_int_equal(dbx_order_malformed_stub(job, &e, &o), DBX_OK);
	assert_string_equal(o->name, "TestJobName1");
	assert_string_equal(o->subscription, SUB);
	assert_string_equal(o->resource_group, "YourResourceGroupName");
	assert_string_equal(
	    o->malformed->message,
	    "malformed answer from ARM: properties is a number, expected an object");
	assert_int_equal(o->malformed->err, DBX_EREMOTE);
	assert_int_equal(o->malformed->http_status, 200);
	assert_string_equal(o->malformed->request_id, "rid-page");
	assert_null(o->status);
	assert_false(o->has_details);
	copy = dbx_order_dup(o);
	assert_non_null(copy);
	assert_string_equal(copy->malformed->message, o->malformed->message);
	assert_string_equal(copy->malformed->request_id, "rid-page");
	dbx_order_free(copy);
	dbx_order_free(o);
	json_object_put(job);

	/* Without a usable id or name there is nothing to show. */
	job = json_tokener_parse("{\"id\": 5, \"name\": \"TestJobName1\"}");
	o = (struct dbx_order *)1;
	assert_int_equal(dbx_order_malformed_stub(job, &e, &o), DBX_EREMOTE);
	assert_null(o);
	json_object_put(job);
	job = json_tokener_parse("{\"id\": \"" JOB_ID "\", \"name\": \"Other\"}");
	assert_int_equal(dbx_order_malformed_stub(job, &e, &o), DBX_EREMOTE);
	assert_null(o);
	json_object_put(job);
	/* A good order has no malformed mark. */
	o = parse_ok(get_cmk);
	assert_null(o->malformed);
	dbx_order_free(o);
}

static void test_from_json_non_object(void **state)
{
	struct json_object *arr = json_object_new_array();
	struct dbx_order *o = NULL;
	struct dbx_error e = {0};

	(void)state;
	assert_int_equal(dbx_order_from_json(arr, &o, &e), DBX_EREMOTE);
	assert_null(o);
	assert_int_equal(dbx_order_from_json(NULL, &o, &e), DBX_EREMOTE);
	assert_null(o);
	json_object_put(arr);
	dbx_order_free(NULL);
	assert_string_equal(dbx_order_identity(NULL), "None");
}

/* ---- ARM IDs ---- */

static void test_arm_id_parse(void **state)
{
	char *s = NULL, *rg = NULL, *type = NULL, *name = NULL;

	(void)state;
	assert_int_equal(dbx_arm_id_parse(JOB_ID, &s, &rg, &type, &name), DBX_OK);
	assert_string_equal(s, SUB);
	assert_string_equal(rg, "YourResourceGroupName");
	assert_string_equal(type, "Microsoft.DataBox/jobs");
	assert_string_equal(name, "TestJobName1");
	free(s);
	free(rg);
	free(type);
	free(name);

	/* Segment names in any case; values keep their spelling. */
	assert_int_equal(
	    dbx_arm_id_parse(
		"/SUBSCRIPTIONS/Sub-1/resourcegroups/My-RG/PROVIDERS/Microsoft.KeyVault/vaults/V1",
		&s, &rg, &type, &name),
	    DBX_OK);
	assert_string_equal(s, "Sub-1");
	assert_string_equal(rg, "My-RG");
	assert_string_equal(type, "Microsoft.KeyVault/vaults");
	assert_string_equal(name, "V1");
	free(s);
	free(rg);
	free(type);
	free(name);

	/* One trailing slash is tolerated; out pointers may be NULL. */
	assert_int_equal(dbx_arm_id_parse(JOB_ID "/", NULL, NULL, NULL, &name), DBX_OK);
	assert_string_equal(name, "TestJobName1");
	free(name);
}

static void test_arm_id_parse_rejects(void **state)
{
	static const char *const bad[] = {
	    "",
	    "/",
	    "subscriptions/s/resourceGroups/rg/providers/NS/t/n", /* not absolute */
	    "/subscriptions/s",
	    "/subscriptions/s/resourceGroups/rg",
	    "/subscriptions/s/resourceGroups/rg/providers/NS/t", /* no name */
	    "/subscriptions/s/resourceGroups/rg/providers/NS/t/",
	    "/subscriptions/s/providers/NS/t/n",
	    "/subscriptions/s/resourceGroups/rg/providers/NS/t/n/extra",
	    "/subscriptions/s/resourceGroups/rg/providers/NS/t/n/child/c",
	    "/subscriptions/s/resourceGroups/rg/providers/NS/t/n//",
	    "/subscriptions//resourceGroups/rg/providers/NS/t/n",
	    "/subscriptions/s/resourceGroupz/rg/providers/NS/t/n",
	    "/subscription/s/resourceGroups/rg/providers/NS/t/n",
	    "/subscriptions/s/resourceGroups/rg/provider/NS/t/n",
	    "/subscriptions/s/resourceGroups/../providers/NS/t/n",
	    "/subscriptions/s/resourceGroups/rg/providers/NS/t/.",
	    "/subscriptions/s/resourceGroups/r\ng/providers/NS/t/n",
	};
	char *s = (char *)1, *name = (char *)1;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		print_message("%s\n", bad[i]);
		assert_int_equal(dbx_arm_id_parse(bad[i], &s, NULL, NULL, &name), DBX_EINVAL);
		assert_null(s);
		assert_null(name);
	}
	assert_int_equal(dbx_arm_id_parse(NULL, &s, NULL, NULL, NULL), DBX_EINVAL);
}

/* ---- PATCH bodies ---- */

static char *patch_ok(const struct dbx_order *want, unsigned what)
{
	char *body = NULL;
	struct dbx_error e = {0};
	struct json_object *back;

	assert_int_equal(dbx_order_patch_body(want, what, &body, &e), DBX_OK);
	assert_non_null(body);
	back = json_tokener_parse(body); /* always valid JSON */
	assert_non_null(back);
	json_object_put(back);
	return body;
}

static void test_patch_body_user_assigned(void **state)
{
	/* JobsPatchSystemAssignedToUserAssigned: both objects in one PATCH. */
	struct dbx_order *o = parse_ok(get_cmk);
	char *uai = UAI_ID;
	char *body;

	(void)state;
	free(o->kek_identity_type);
	o->kek_identity_type = strdup("UserAssigned");
	o->kek_uai_id = strdup(UAI_ID);
	free(o->identity_type);
	o->identity_type = strdup("SystemAssigned,UserAssigned");
	o->uai_ids = &uai;
	o->n_uai = 1;
	body = patch_ok(o, DBX_PATCH_KEK | DBX_PATCH_IDENTITY);
	assert_string_equal(
	    body,
	    "{\"properties\":{\"details\":{\"keyEncryptionKey\":{\"kekType\":\"CustomerManaged\","
	    "\"kekUrl\":\"https://myvault.vault.azure.net/keys/mykey/"
	    "0123456789abcdef0123456789abcdef\",\"kekVaultResourceID\":\"" VAULT_ID "\","
	    "\"identityProperties\":{\"type\":\"UserAssigned\",\"userAssigned\":{\"resourceId\":"
	    "\"" UAI_ID "\"}}}}},"
	    "\"identity\":{\"type\":\"SystemAssigned,UserAssigned\",\"userAssignedIdentities\":{"
	    "\"" UAI_ID "\":{}}}}");
	free(body);
	o->uai_ids = NULL;
	o->n_uai = 0;
	dbx_order_free(o);
}

static void test_patch_body_only_what_changes(void **state)
{
	struct dbx_order *o = parse_ok(get_cmk);
	char *body;

	(void)state;
	/* The key alone, identity untouched; no identityProperties when none is set. */
	body = patch_ok(o, DBX_PATCH_KEK);
	assert_string_equal(body,
			    "{\"properties\":{\"details\":{\"keyEncryptionKey\":{\"kekType\":"
			    "\"CustomerManaged\",\"kekUrl\":\"https://myvault.vault.azure.net/keys/"
			    "mykey/0123456789abcdef0123456789abcdef\",\"kekVaultResourceID\":"
			    "\"" VAULT_ID "\"}}}}");
	free(body);

	/* The recovery steps: identity None, then SystemAssigned, each alone. */
	free(o->identity_type);
	o->identity_type = strdup("None");
	body = patch_ok(o, DBX_PATCH_IDENTITY);
	assert_string_equal(body, "{\"identity\":{\"type\":\"None\"}}");
	free(body);
	free(o->identity_type);
	o->identity_type = strdup("SystemAssigned");
	body = patch_ok(o, DBX_PATCH_IDENTITY);
	assert_string_equal(body, "{\"identity\":{\"type\":\"SystemAssigned\"}}");
	free(body);

	/* A system-assigned key identity. */
	o->kek_identity_type = strdup("SystemAssigned");
	body = patch_ok(o, DBX_PATCH_KEK);
	assert_non_null(strstr(body, ",\"identityProperties\":{\"type\":\"SystemAssigned\"}}"));
	assert_null(strstr(body, "userAssigned"));
	free(body);

	/* Back to Microsoft managed: the type alone, whatever else the struct holds. */
	o->kek_type = DBX_KEK_MICROSOFT;
	body = patch_ok(o, DBX_PATCH_KEK);
	assert_string_equal(body, "{\"properties\":{\"details\":{\"keyEncryptionKey\":{\"kekType\":"
				  "\"MicrosoftManaged\"}}}}");
	free(body);
	dbx_order_free(o);
}

static void test_patch_body_escapes_values(void **state)
{
	struct dbx_order o = {
	    .kek_type = DBX_KEK_CUSTOMER,
	    .kek_url = "https://v.vault.azure.net/keys/k\"},\"x\":{\"",
	    .kek_vault_id =
		"/subscriptions/s/resourceGroups/r/providers/Microsoft.KeyVault/vaults/v\n",
	};
	char *body;
	struct json_object *back, *kek;

	(void)state;
	body = patch_ok(&o, DBX_PATCH_KEK);
	back = json_tokener_parse(body);
	assert_int_equal(json_object_object_length(back), 1);
	assert_true(json_object_object_get_ex(back, "properties", &kek));
	assert_true(json_object_object_get_ex(kek, "details", &kek));
	assert_true(json_object_object_get_ex(kek, "keyEncryptionKey", &kek));
	assert_int_equal(json_object_object_length(kek), 3);
	assert_true(json_object_object_get_ex(kek, "kekUrl", &kek));
	assert_string_equal(json_object_get_string(kek), o.kek_url);
	json_object_put(back);
	free(body);
}

static void test_patch_body_rejects(void **state)
{
	struct dbx_order o = {.kek_type = DBX_KEK_CUSTOMER,
			      .kek_url = "https://v.vault.azure.net/keys/k"};
	char *body = (char *)1;
	struct dbx_error e = {0};

	(void)state;
	/* Nothing to send. */
	assert_int_equal(dbx_order_patch_body(&o, 0, &body, &e), DBX_EINVAL);
	assert_null(body);
	assert_int_equal(dbx_order_patch_body(&o, 0x4, &body, &e), DBX_EINVAL);
	assert_int_equal(dbx_order_patch_body(NULL, DBX_PATCH_KEK, &body, &e), DBX_EINVAL);
	/* Customer managed without its vault. */
	assert_int_equal(dbx_order_patch_body(&o, DBX_PATCH_KEK, &body, &e), DBX_EINVAL);
	assert_null(body);
	/* A user-assigned key identity without its ID. */
	o.kek_vault_id = VAULT_ID;
	o.kek_identity_type = "UserAssigned";
	assert_int_equal(dbx_order_patch_body(&o, DBX_PATCH_KEK, &body, &e), DBX_EINVAL);
	/* A UserAssigned job identity without identities. */
	o.identity_type = "SystemAssigned,UserAssigned";
	assert_int_equal(dbx_order_patch_body(&o, DBX_PATCH_IDENTITY, &body, &e), DBX_EINVAL);
	assert_null(body);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_get_cmk),
	    cmocka_unit_test(test_list_item_lowercase_resourcegroups),
	    cmocka_unit_test(test_no_key_encryption_key),
	    cmocka_unit_test(test_no_details),
	    cmocka_unit_test(test_user_assigned_identity),
	    cmocka_unit_test(test_problems_error_then_stages),
	    cmocka_unit_test(test_dup_is_deep_and_complete),
	    cmocka_unit_test(test_type_has),
	    cmocka_unit_test(test_last_modified_exact),
	    cmocka_unit_test(test_malformed),
	    cmocka_unit_test(test_every_field_wrong_type_is_malformed),
	    cmocka_unit_test(test_issue_examples_are_malformed),
	    cmocka_unit_test(test_hostile_bodies),
	    cmocka_unit_test(test_malformed_stub),
	    cmocka_unit_test(test_from_json_non_object),
	    cmocka_unit_test(test_arm_id_parse),
	    cmocka_unit_test(test_arm_id_parse_rejects),
	    cmocka_unit_test(test_patch_body_user_assigned),
	    cmocka_unit_test(test_patch_body_only_what_changes),
	    cmocka_unit_test(test_patch_body_escapes_values),
	    cmocka_unit_test(test_patch_body_rejects),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
