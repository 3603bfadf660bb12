/*
 * test_update.c: one write to an order (update.h), over the scripted fake
 * transport and fake clock.
 *
 * The merge table checks, case by case, the exact PATCH body a write
 * produces (the JSON text from dbx_order_patch_body): which objects go out
 * (keyEncryptionKey, identity, or both in one PATCH, shaped like the spec's
 * JobsPatchCmk / JobsPatchSystemAssignedToUserAssigned examples), which
 * contradictions are refused, and that writing back what was read sends
 * nothing. The apply tests script the whole pipeline (fresh GET, vault
 * lookup, vault GET, key GET, PATCH, LRO poll, GET) and assert the request
 * sequence and what a user sees: the order after the write, the Ssem code of
 * a failed preflight with no PATCH sent, the read-before-resend rule after a
 * PATCH that got a 500, and an interrupt before the PATCH.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "databoxfs/update.h"
#include "fake_transport.h"
#include "rsa_moduli.h"

#define ARM	      "https://management.azure.com"
#define ARM_SCOPE     "https://management.azure.com/.default"
#define KV_SCOPE      "https://vault.azure.net/.default"
#define SUB	      "11111111-1111-4111-8111-111111111111"
#define RG	      "YourResourceGroupName"
#define NAME	      "TestJobName1"
#define PRINCIPAL     "aaaaaaaa-0000-4000-8000-000000000001"
#define UAI_PRINCIPAL "cccccccc-0000-4000-8000-000000000003"
#define TENANT	      "72f988bf-86f1-41af-91ab-2d7cd011db47"
#define JOB_ID	      "/subscriptions/" SUB "/resourceGroups/" RG "/providers/Microsoft.DataBox/jobs/" NAME
#define JOB_URL	      ARM JOB_ID "?api-version=2025-07-01"
#define JOB_GET_URL   JOB_URL "&$expand=details"
#define OP_URL                                                                                     \
	ARM "/subscriptions/" SUB                                                                  \
	    "/providers/Microsoft.DataBox/locations/westus/operationResults/"                      \
	    "1202b0df-bc5a-4975-b1fd-1401ce6acae9?api-version=2025-07-01&t=1&s=sig"

#define VAULT "contosovault"
#define VAULT_ID                                                                                   \
	"/subscriptions/" SUB                                                                      \
	"/resourceGroups/RG-Keys/providers/Microsoft.KeyVault/vaults/ContosoVault"
#define VAULT2_ID                                                                                  \
	"/subscriptions/" SUB                                                                      \
	"/resourceGroups/RG-Keys/providers/Microsoft.KeyVault/vaults/OtherVault"
#define FILTER_URL                                                                                 \
	ARM "/subscriptions/" SUB                                                                  \
	    "/resources?$filter=resourceType%20eq%20%27Microsoft.KeyVault%2Fvaults"                \
	    "%27%20and%20name%20eq%20%27" VAULT "%27&api-version=2021-04-01"
#define VAULT_URL   ARM VAULT_ID "?api-version=2024-11-01"
#define VERSION	    "78deebed173b48e48f55abf87ed4cf71"
#define VERSION2    "0123456789abcdef0123456789abcdef"
#define KEY	    "https://contosovault.vault.azure.net/keys/cmk"
#define KEY2	    "https://othervault.vault.azure.net/keys/cmk2"
#define KID	    KEY "/" VERSION
#define KEY_GET_URL KEY "?api-version=7.4"
#define UAI_ID                                                                                     \
	"/subscriptions/" SUB                                                                      \
	"/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/uai1"
#define UAI_URL ARM UAI_ID "?api-version=2023-01-31"

#define START_MS   1000
#define TIMEOUT_MS 120000
#define POLL_MS	   10000

/* After each test: its scripts may span several environments, so the pool goes last. */
static int teardown(void **state)
{
	(void)state;
	fake_fmt_free();
	return 0;
}

/* Job identities, as ARM returns them. */
#define IDENT_SYS                                                                                  \
	"\"identity\":{\"type\":\"SystemAssigned\",\"principalId\":\"" PRINCIPAL                   \
	"\",\"tenantId\":\"" TENANT "\"},"
#define IDENT_NONE "\"identity\":{\"type\":\"None\"},"
#define IDENT_BOTH                                                                                 \
	"\"identity\":{\"type\":\"SystemAssigned,UserAssigned\",\"principalId\":\"" PRINCIPAL      \
	"\",\"tenantId\":\"" TENANT "\",\"userAssignedIdentities\":{\"" UAI_ID                     \
	"\":{\"principalId\":\"" UAI_PRINCIPAL "\",\"clientId\":"                                  \
	"\"dddddddd-0000-4000-8000-000000000004\"}}},"

#define KEK_MM "{\"kekType\":\"MicrosoftManaged\"}"

static const char *kek_cm(const char *url, const char *vault, const char *idp)
{
	return fake_fmt("{\"kekType\":\"CustomerManaged\",\"kekUrl\":\"%s\",\"kekVaultResourceID\":"
			"\"%s\"%s}",
			url, vault, idp);
}

#define IDP_UAI                                                                                    \
	",\"identityProperties\":{\"type\":\"UserAssigned\",\"userAssigned\":{\"resourceId\":"     \
	"\"" UAI_ID "\"}}"

/* A job shaped like JobsGetCmk.json (trimmed), with the given identity and key. */
static const char *job(const char *identity, const char *kek)
{
	return fake_fmt(
	    "{\"name\":\"" NAME "\",\"type\":\"Microsoft.DataBox/jobs\",\"id\":\"" JOB_ID
	    "\",%s\"location\":\"westus\",\"properties\":{\"isCancellable\":true,"
	    "\"status\":\"DeviceOrdered\",\"transferType\":\"ImportToAzure\",\"details\":{"
	    "\"jobDetailsType\":\"DataBox\",\"jobStages\":[{\"displayName\":\"Ordered\","
	    "\"stageName\":\"DeviceOrdered\",\"stageStatus\":\"Succeeded\"}],"
	    "\"keyEncryptionKey\":%s}},\"sku\":{\"name\":\"DataBox\",\"model\":\"DataBox\"},"
	    "\"tags\":{},\"systemData\":{\"lastModifiedAt\":"
	    "\"2025-05-26T06:50:23.0185023+00:00\"}}",
	    identity, kek);
}

static struct dbx_order *parse_job(const char *text)
{
	struct dbx_order *o = NULL;
	struct dbx_error err = {0};

	assert_int_equal(dbx_order_parse(text, strlen(text), &o, &err), DBX_OK);
	return o;
}

static const char *resources(void)
{
	return "{\"value\":[{\"id\":\"" VAULT_ID "\",\"name\":\"ContosoVault\","
	       "\"type\":\"Microsoft.KeyVault/vaults\",\"location\":\"westus\",\"tags\":{}}]}";
}

/* A vault with soft delete and purge protection, whose one policy gives oid the key perms. */
static const char *vault(const char *oid)
{
	return fake_fmt(
	    "{\"id\":\"" VAULT_ID "\",\"name\":\"ContosoVault\",\"type\":"
	    "\"Microsoft.KeyVault/vaults\",\"location\":\"westus\",\"properties\":{"
	    "\"tenantId\":\"" TENANT "\",\"enableSoftDelete\":true,"
	    "\"enablePurgeProtection\":true,\"accessPolicies\":[{\"tenantId\":\"" TENANT "\","
	    "\"objectId\":\"%s\",\"permissions\":{\"keys\":[\"get\",\"wrapKey\","
	    "\"unwrapKey\"]}}],\"vaultUri\":\"https://contosovault.vault.azure.net/\"}}",
	    oid);
}

static const char *key_bundle(bool enabled)
{
	return fake_fmt("{\"key\":{\"kid\":\"" KID "\",\"kty\":\"RSA\",\"key_ops\":[\"wrapKey\","
			"\"unwrapKey\"],\"n\":\"" N_RSA2048 "\",\"e\":\"AQAB\"},\"attributes\":{"
			"\"enabled\":%s,\"created\":1700000000,\"updated\":1700000000,"
			"\"recoverableDays\":90,\"recoveryLevel\":\"Recoverable\"},\"tags\":{}}",
			enabled ? "true" : "false");
}

/* An enabled key that expires at exp (unix time). */
static const char *key_bundle_expiring(time_t exp)
{
	return fake_fmt("{\"key\":{\"kid\":\"" KID "\",\"kty\":\"RSA\",\"key_ops\":[\"wrapKey\","
			"\"unwrapKey\"],\"n\":\"" N_RSA2048 "\",\"e\":\"AQAB\"},\"attributes\":{"
			"\"enabled\":true,\"exp\":%lld,\"created\":1700000000,"
			"\"updated\":1700000000,\"recoverableDays\":90,"
			"\"recoveryLevel\":\"Recoverable\"},\"tags\":{}}",
			(long long)exp);
}

/* ---- changes ---- */

static struct dbx_encryption_change change_key(const char *url)
{
	struct dbx_encryption_change c;
	struct dbx_error err = {0};

	memset(&c, 0, sizeof(c));
	c.has_key_url = true;
	assert_int_equal(
	    dbx_validate_key_url(url, strlen(url), dbx_cloud_default(), &c.key_url, &err), DBX_OK);
	return c;
}

static struct dbx_encryption_change change_identity(enum dbx_identity_kind kind, const char *id)
{
	struct dbx_encryption_change c;

	memset(&c, 0, sizeof(c));
	c.has_identity = true;
	c.identity.kind = kind;
	if (id)
		snprintf(c.identity.id, sizeof(c.identity.id), "%s", id);
	return c;
}

static struct dbx_encryption_change change_type(enum dbx_kek_choice type)
{
	struct dbx_encryption_change c;

	memset(&c, 0, sizeof(c));
	c.has_kek_type = true;
	c.kek_type = type;
	return c;
}

/* ---- the merge table ---- */

/*
 * Merge change into the order current_json, expect what and, when what is
 * not 0, exactly body as the PATCH. Returns want for further checks.
 */
static struct dbx_order *merge_ok(const char *current_json, const struct dbx_encryption_change *c,
				  const char *vault_id, unsigned what, const char *body)
{
	struct dbx_order *current = parse_job(current_json), *want = NULL;
	struct dbx_error err = {0};
	unsigned got = 0xff;
	char *text = NULL;

	assert_int_equal(dbx_update_merge(current, c, vault_id, &want, &got, &err), DBX_OK);
	assert_non_null(want);
	assert_int_equal(got, what);
	if (what) {
		assert_int_equal(dbx_order_patch_body(want, what, &text, &err), DBX_OK);
		assert_string_equal(text, body);
		free(text);
	}
	dbx_order_free(current);
	return want;
}

static void merge_fails(const char *current_json, const struct dbx_encryption_change *c,
			const char *vault_id, const char *message_part)
{
	struct dbx_order *current = parse_job(current_json), *want = (struct dbx_order *)1;
	struct dbx_error err = {0};
	unsigned got = 0xff;

	assert_int_equal(dbx_update_merge(current, c, vault_id, &want, &got, &err), DBX_EINVAL);
	assert_null(want);
	assert_int_equal(got, 0);
	assert_int_equal(err.err, DBX_EINVAL);
	assert_non_null(strstr(err.message, message_part));
	dbx_order_free(current);
}

#define BODY_KEK(url, vault)                                                                       \
	"{\"properties\":{\"details\":{\"keyEncryptionKey\":{\"kekType\":\"CustomerManaged\","     \
	"\"kekUrl\":\"" url "\",\"kekVaultResourceID\":\"" vault "\"}}}}"

static void test_merge_key_on_mm_order_with_system_identity(void **state)
{
	struct dbx_encryption_change c = change_key(KEY);
	struct dbx_order *want;

	(void)state;
	/* JobsPatchCmk.json: the key alone; the system identity reaches it. */
	want =
	    merge_ok(job(IDENT_SYS, KEK_MM), &c, VAULT_ID, DBX_PATCH_KEK, BODY_KEK(KEY, VAULT_ID));
	assert_int_equal(want->kek_type, DBX_KEK_CUSTOMER);
	assert_string_equal(dbx_order_identity(want), "SystemAssigned");
	dbx_order_free(want);
}

static void test_merge_key_on_order_without_identity(void **state)
{
	struct dbx_encryption_change c = change_key(KEY);
	struct dbx_order *want;

	(void)state;
	/* The key needs an identity: the system one is created in the same PATCH. */
	want =
	    merge_ok(job(IDENT_NONE, KEK_MM), &c, VAULT_ID, DBX_PATCH_KEK | DBX_PATCH_IDENTITY,
		     "{\"properties\":{\"details\":{\"keyEncryptionKey\":{\"kekType\":"
		     "\"CustomerManaged\",\"kekUrl\":\"" KEY "\",\"kekVaultResourceID\":\"" VAULT_ID
		     "\"}}},\"identity\":{\"type\":\"SystemAssigned\"}}");
	dbx_order_free(want);
}

static void test_merge_key_version_change(void **state)
{
	struct dbx_encryption_change c = change_key(KEY "/" VERSION2);
	struct dbx_order *want;

	(void)state;
	want = merge_ok(job(IDENT_SYS, kek_cm(KEY "/" VERSION, VAULT_ID, "")), &c, VAULT_ID,
			DBX_PATCH_KEK, BODY_KEK(KEY "/" VERSION2, VAULT_ID));
	dbx_order_free(want);
	/* The key of a user-assigned identity keeps that identity. */
	want = merge_ok(
	    job(IDENT_BOTH, kek_cm(KEY, VAULT_ID, IDP_UAI)), &c, VAULT_ID, DBX_PATCH_KEK,
	    "{\"properties\":{\"details\":{\"keyEncryptionKey\":{\"kekType\":"
	    "\"CustomerManaged\",\"kekUrl\":\"" KEY "/" VERSION2 "\",\"kekVaultResourceID\":"
	    "\"" VAULT_ID "\",\"identityProperties\":{\"type\":\"UserAssigned\","
	    "\"userAssigned\":{\"resourceId\":\"" UAI_ID "\"}}}}}}");
	dbx_order_free(want);
}

static void test_merge_key_and_vault_change(void **state)
{
	struct dbx_encryption_change c = change_key(KEY2);
	struct dbx_order *want;

	(void)state;
	want = merge_ok(job(IDENT_SYS, kek_cm(KEY, VAULT_ID, "")), &c, VAULT2_ID, DBX_PATCH_KEK,
			BODY_KEK(KEY2, VAULT2_ID));
	assert_string_equal(want->kek_vault_id, VAULT2_ID);
	dbx_order_free(want);
}

static void test_merge_microsoft_managed(void **state)
{
	static const char body[] = "{\"properties\":{\"details\":{\"keyEncryptionKey\":{"
				   "\"kekType\":\"MicrosoftManaged\"}}}}";
	struct dbx_encryption_change mm = change_type(DBX_KEK_CHOICE_MICROSOFT);
	struct dbx_encryption_change null_key = {.has_key_url = true, .key_url_null = true};
	struct dbx_encryption_change both = null_key;
	struct dbx_order *want;

	(void)state;
	both.has_kek_type = true;
	both.kek_type = DBX_KEK_CHOICE_MICROSOFT;
	want = merge_ok(job(IDENT_BOTH, kek_cm(KEY, VAULT_ID, IDP_UAI)), &mm, NULL, DBX_PATCH_KEK,
			body);
	/* The key, its vault and its identity are gone; the job identity stays. */
	assert_null(want->kek_url);
	assert_null(want->kek_vault_id);
	assert_null(want->kek_uai_id);
	assert_string_equal(want->identity_type, "SystemAssigned,UserAssigned");
	dbx_order_free(want);
	want = merge_ok(job(IDENT_SYS, kek_cm(KEY, VAULT_ID, "")), &null_key, NULL, DBX_PATCH_KEK,
			body);
	dbx_order_free(want);
	want =
	    merge_ok(job(IDENT_SYS, kek_cm(KEY, VAULT_ID, "")), &both, NULL, DBX_PATCH_KEK, body);
	dbx_order_free(want);
	/* Already Microsoft managed: nothing to send. */
	want = merge_ok(job(IDENT_SYS, KEK_MM), &mm, NULL, 0, NULL);
	dbx_order_free(want);
}

static void test_merge_contradictions(void **state)
{
	struct dbx_encryption_change cm = change_type(DBX_KEK_CHOICE_CUSTOMER);
	struct dbx_encryption_change null_cm = {.has_key_url = true,
						.key_url_null = true,
						.has_kek_type = true,
						.kek_type = DBX_KEK_CHOICE_CUSTOMER};
	struct dbx_encryption_change key_mm = change_key(KEY);
	struct dbx_encryption_change uai = change_identity(DBX_IDENTITY_USER, UAI_ID);
	struct dbx_encryption_change key_none = change_key(KEY2);
	struct dbx_order *want;

	(void)state;
	key_mm.has_kek_type = true;
	key_mm.kek_type = DBX_KEK_CHOICE_MICROSOFT;
	key_none.has_identity = true;
	key_none.identity.kind = DBX_IDENTITY_NONE;

	merge_fails(job(IDENT_SYS, KEK_MM), &cm, NULL, "write key_url first");
	merge_fails(job(IDENT_SYS, kek_cm(KEY, VAULT_ID, "")), &null_cm, NULL, "needs a key");
	merge_fails(job(IDENT_SYS, KEK_MM), &key_mm, VAULT_ID, "contradicts");
	merge_fails(job(IDENT_SYS, KEK_MM), &uai, NULL, "customer-managed key");
	merge_fails(job(IDENT_SYS, kek_cm(KEY, VAULT_ID, "")), &key_none, VAULT2_ID,
		    "without an identity");
	/* CustomerManaged on an order that has its key: nothing to do. */
	want = merge_ok(job(IDENT_SYS, kek_cm(KEY, VAULT_ID, "")), &cm, NULL, 0, NULL);
	dbx_order_free(want);
}

static void test_merge_identity_none(void **state)
{
	struct dbx_encryption_change c = change_identity(DBX_IDENTITY_NONE, NULL);
	struct dbx_order *want;

	(void)state;
	/* The documented recovery's first step: the identity alone, the key left as is. */
	want = merge_ok(job(IDENT_SYS, kek_cm(KEY, VAULT_ID, "")), &c, NULL, DBX_PATCH_IDENTITY,
			"{\"identity\":{\"type\":\"None\"}}");
	assert_int_equal(want->kek_type, DBX_KEK_CUSTOMER);
	assert_string_equal(want->kek_url, KEY);
	assert_string_equal(dbx_order_identity(want), "None");
	dbx_order_free(want);
}

static void test_merge_system_identity_recreated(void **state)
{
	struct dbx_encryption_change c = change_identity(DBX_IDENTITY_SYSTEM, NULL);
	struct dbx_order *want;

	(void)state;
	want = merge_ok(job(IDENT_NONE, kek_cm(KEY, VAULT_ID, "")), &c, NULL, DBX_PATCH_IDENTITY,
			"{\"identity\":{\"type\":\"SystemAssigned\"}}");
	dbx_order_free(want);
	/* Already there: nothing. */
	want = merge_ok(job(IDENT_SYS, kek_cm(KEY, VAULT_ID, "")), &c, NULL, 0, NULL);
	dbx_order_free(want);
}

static void test_merge_user_assigned_switch(void **state)
{
	/* JobsPatchSystemAssignedToUserAssigned.json, modulo the IDs: both objects in one PATCH. */
	static const char body[] =
	    "{\"properties\":{\"details\":{\"keyEncryptionKey\":{\"kekType\":\"CustomerManaged\","
	    "\"kekUrl\":\"" KEY "\",\"kekVaultResourceID\":\"" VAULT_ID "\","
	    "\"identityProperties\":{\"type\":\"UserAssigned\",\"userAssigned\":{\"resourceId\":"
	    "\"" UAI_ID "\"}}}}},\"identity\":{\"type\":\"SystemAssigned,UserAssigned\","
	    "\"userAssignedIdentities\":{\"" UAI_ID "\":{}}}}";
	struct dbx_encryption_change c = change_identity(DBX_IDENTITY_USER, UAI_ID);
	struct dbx_encryption_change with_key = change_key(KEY);
	struct dbx_order *want;

	(void)state;
	want = merge_ok(job(IDENT_SYS, kek_cm(KEY, VAULT_ID, "")), &c, NULL,
			DBX_PATCH_KEK | DBX_PATCH_IDENTITY, body);
	assert_string_equal(dbx_order_identity(want), UAI_ID);
	dbx_order_free(want);
	/* Key and identity in one encryption.json write, on a Microsoft-managed order. */
	with_key.has_identity = true;
	with_key.identity = c.identity;
	want = merge_ok(job(IDENT_SYS, KEK_MM), &with_key, VAULT_ID,
			DBX_PATCH_KEK | DBX_PATCH_IDENTITY, body);
	dbx_order_free(want);
}

static void test_merge_user_assigned_back_to_system(void **state)
{
	struct dbx_encryption_change c = change_identity(DBX_IDENTITY_SYSTEM, NULL);
	struct dbx_order *want;

	(void)state;
	/* The system identity is already there: only the key's identity changes. */
	want =
	    merge_ok(job(IDENT_BOTH, kek_cm(KEY, VAULT_ID, IDP_UAI)), &c, NULL, DBX_PATCH_KEK,
		     "{\"properties\":{\"details\":{\"keyEncryptionKey\":{\"kekType\":"
		     "\"CustomerManaged\",\"kekUrl\":\"" KEY "\",\"kekVaultResourceID\":\"" VAULT_ID
		     "\",\"identityProperties\":{\"type\":\"SystemAssigned\"}}}}}");
	assert_string_equal(dbx_order_identity(want), "SystemAssigned");
	assert_string_equal(want->identity_type, "SystemAssigned,UserAssigned");
	dbx_order_free(want);
}

/* What encryption.json reads as, turned back into a change. */
static struct dbx_encryption_change read_back(const struct dbx_order *o)
{
	struct dbx_encryption_change c;
	const char *ident = dbx_order_identity(o);
	struct dbx_error err = {0};

	memset(&c, 0, sizeof(c));
	c.has_kek_type = true;
	c.kek_type =
	    o->kek_type == DBX_KEK_CUSTOMER ? DBX_KEK_CHOICE_CUSTOMER : DBX_KEK_CHOICE_MICROSOFT;
	c.has_key_url = true;
	if (o->kek_type == DBX_KEK_CUSTOMER)
		assert_int_equal(dbx_validate_key_url(o->kek_url, strlen(o->kek_url),
						      dbx_cloud_default(), &c.key_url, &err),
				 DBX_OK);
	else
		c.key_url_null = true;
	c.has_identity = true;
	assert_int_equal(dbx_validate_identity(ident, strlen(ident), &c.identity, &err), DBX_OK);
	return c;
}

/*
 * The tenant-move and disabled-key remedies end with "write the key again":
 * while the service reports the key unusable, writing the key the order
 * already has is sent again (the service re-checks it), not dropped as a
 * no-op.
 */
static void test_merge_same_key_resent_while_blocked(void **state)
{
	const char *clean = job(IDENT_SYS, kek_cm(KEY, VAULT_ID, ""));
	const char *marker = "\"isCancellable\":true,";
	const char *at = strstr(clean, marker);
	struct dbx_encryption_change c = change_key(KEY);
	struct dbx_order *want;
	char *blocked;

	(void)state;
	assert_non_null(at);
	assert_true(asprintf(&blocked,
			     "%.*s\"error\":{\"code\":\"SsemUserErrorEncryptionKeyDisabled\","
			     "\"message\":\"disabled\",\"target\":\"KeyEncryptionKey\"},%s",
			     (int)(at - clean), clean, at) > 0);
	want = merge_ok(blocked, &c, VAULT_ID, DBX_PATCH_KEK, BODY_KEK(KEY, VAULT_ID));
	dbx_order_free(want);
	/* The same order without the error: a no-op, as before. */
	want = merge_ok(clean, &c, VAULT_ID, 0, NULL);
	dbx_order_free(want);
	free(blocked);
}

static void test_merge_write_back_is_noop(void **state)
{
	const char *orders[] = {
	    job(IDENT_SYS, KEK_MM),
	    job(IDENT_NONE, KEK_MM),
	    job(IDENT_SYS, kek_cm(KEY, VAULT_ID, "")),
	    job(IDENT_SYS, kek_cm(KEY "/" VERSION, VAULT_ID, "")),
	    job(IDENT_BOTH, kek_cm(KEY, VAULT_ID, IDP_UAI)),
	    /* A user-assigned identity only (created that way): not given a system one. */
	    job("\"identity\":{\"type\":\"UserAssigned\",\"userAssignedIdentities\":{\"" UAI_ID
		"\":{}}},",
		kek_cm(KEY, VAULT_ID, IDP_UAI)),
	    /* Mid-recovery: a key, no identity. */
	    job(IDENT_NONE, kek_cm(KEY, VAULT_ID, "")),
	    /* The key's identity named explicitly. */
	    job(IDENT_SYS, kek_cm(KEY, VAULT_ID,
				  ",\"identityProperties\":{\"type\":"
				  "\"SystemAssigned\"}")),
	};

	(void)state;
	for (size_t i = 0; i < sizeof(orders) / sizeof(orders[0]); i++) {
		struct dbx_order *current = parse_job(orders[i]), *want;
		struct dbx_encryption_change c = read_back(current);

		print_message("order %zu\n", i);
		want = merge_ok(orders[i], &c, current->kek_vault_id, 0, NULL);
		dbx_order_free(want);
		/* The key URL is not changed: no vault lookup, vault_id NULL. */
		want = merge_ok(orders[i], &c, NULL, 0, NULL);
		dbx_order_free(want);
		dbx_order_free(current);
	}
}

static void test_merge_ids_compare_case_insensitively(void **state)
{
	struct dbx_encryption_change c =
	    change_key("https://ContosoVault.vault.azure.net/keys/CMK");
	struct dbx_encryption_change u = change_identity(
	    DBX_IDENTITY_USER, "/subscriptions/" SUB "/resourcegroups/RG/providers/"
			       "Microsoft.ManagedIdentity/userAssignedIdentities/UAI1");
	struct dbx_order *want;

	(void)state;
	want = merge_ok(job(IDENT_SYS, kek_cm(KEY, VAULT_ID, "")), &c,
			"/subscriptions/" SUB
			"/resourcegroups/rg-keys/providers/Microsoft.KeyVault/vaults/contosovault",
			0, NULL);
	dbx_order_free(want);
	want = merge_ok(job(IDENT_BOTH, kek_cm(KEY, VAULT_ID, IDP_UAI)), &u, NULL, 0, NULL);
	dbx_order_free(want);
}

/* ---- apply ---- */

struct env {
	struct fake_transport ft;
	struct fake_clock fc;
	struct dbx_arm *arm;
	struct dbx_keyvault *kv;
	struct dbx_update_config cfg;
	struct dbx_update_report report;
	struct dbx_order *result;
	struct dbx_error err;
	int interrupted_calls;
	bool interrupt;
};

static int interrupted(void *ctx)
{
	struct env *e = ctx;

	e->interrupted_calls++;
	return e->interrupt;
}

static void env_init(struct env *e, const struct fake_reply *script, size_t n)
{
	memset(e, 0, sizeof(*e));
	fake_transport_init(&e->ft, script, n);
	fake_clock_init(&e->fc, START_MS);
	e->arm = dbx_arm_new(&e->ft.base, dbx_cloud_default(), NULL, TIMEOUT_MS, &e->fc.clock);
	e->kv = dbx_keyvault_new(e->arm, &e->ft.base, TIMEOUT_MS);
	assert_non_null(e->arm);
	assert_non_null(e->kv);
	/*
	 * The scripts answer in order, so the preflight's lookups go one by one
	 * (identity, vault, key); test_keyvault.c runs them at once, against a
	 * transport of their own per lookup, and checks the outcome is the same.
	 */
	dbx_keyvault_set_concurrent(e->kv, false);
	e->cfg.arm = e->arm;
	e->cfg.kv = e->kv;
	e->cfg.cloud = dbx_cloud_default();
	e->cfg.timeout_ms = TIMEOUT_MS;
	e->cfg.lro_poll_ms = POLL_MS;
	e->cfg.interrupted = interrupted;
	e->cfg.interrupted_ctx = e;
}

static void env_fini(struct env *e)
{
	dbx_order_free(e->result);
	dbx_keyvault_free(e->kv);
	dbx_arm_free(e->arm);
	fake_transport_fini(&e->ft);
}

static enum dbx_err apply(struct env *e, const struct dbx_encryption_change *c)
{
	return dbx_update_apply(&e->cfg, SUB, RG, NAME, c, &e->result, &e->report, &e->err);
}

static void assert_call(const struct env *e, size_t i, const char *method, const char *url,
			const char *scope)
{
	assert_true(i < e->ft.n_calls);
	assert_string_equal(e->ft.calls[i].method, method);
	assert_string_equal(e->ft.calls[i].url, url);
	assert_string_equal(e->ft.calls[i].scope, scope);
}

static size_t count_patches(const struct env *e)
{
	size_t n = 0;

	for (size_t i = 0; i < e->ft.n_calls; i++)
		n += strcmp(e->ft.calls[i].method, "PATCH") == 0;
	return n;
}

static void test_apply_enable_cmk(void **state)
{
	const struct fake_reply script[] = {
	    {.status = 200, .body = job(IDENT_SYS, KEK_MM)},
	    {.status = 200, .body = resources()},
	    {.status = 200, .body = vault(PRINCIPAL)},
	    {.status = 200, .body = key_bundle(true)},
	    {.status = 202, .location = OP_URL},
	    {.status = 202, .location = JOB_URL},
	    {.status = 200, .body = job(IDENT_SYS, kek_cm(KEY, VAULT_ID, ""))},
	};
	struct dbx_encryption_change c = change_key(KEY);
	struct env e;

	(void)state;
	env_init(&e, script, 7);
	assert_int_equal(apply(&e, &c), DBX_OK);
	assert_int_equal(e.ft.n_calls, 7);
	assert_call(&e, 0, "GET", JOB_GET_URL, ARM_SCOPE);
	assert_call(&e, 1, "GET", FILTER_URL, ARM_SCOPE);
	assert_call(&e, 2, "GET", VAULT_URL, ARM_SCOPE);
	assert_call(&e, 3, "GET", KEY_GET_URL, KV_SCOPE);
	assert_call(&e, 4, "PATCH", JOB_URL, ARM_SCOPE);
	assert_string_equal(e.ft.calls[4].body, BODY_KEK(KEY, VAULT_ID));
	assert_call(&e, 5, "GET", OP_URL, ARM_SCOPE);
	assert_call(&e, 6, "GET", JOB_GET_URL, ARM_SCOPE);
	/* One deadline for the whole write, from its start. */
	assert_int_equal(e.ft.calls[0].deadline_ms, START_MS + TIMEOUT_MS);
	assert_int_equal(e.ft.calls[4].deadline_ms, START_MS + TIMEOUT_MS);
	assert_int_equal(e.ft.calls[6].deadline_ms, START_MS + TIMEOUT_MS);
	assert_non_null(e.result);
	assert_int_equal(e.result->kek_type, DBX_KEK_CUSTOMER);
	assert_string_equal(e.result->kek_url, KEY);
	assert_string_equal(e.result->kek_vault_id, VAULT_ID);
	assert_true(e.report.patched);
	assert_false(e.report.noop);
	assert_string_equal(e.report.notes, "");
	assert_int_equal(e.interrupted_calls, 1);
	env_fini(&e);
}

/* What a progress hook was told, in order. */
struct seen {
	enum dbx_update_stage stage[16];
	char body[16][1024];
	bool accepted[16];
	unsigned polls[16];
	uint64_t wait_ms[16];
	size_t n;
};

static void on_progress(void *ctx, const struct dbx_update_progress *p)
{
	struct seen *s = ctx;

	assert_true(s->n < 16);
	s->stage[s->n] = p->stage;
	snprintf(s->body[s->n], sizeof(s->body[s->n]), "%s", p->body ? p->body : "");
	if (p->arm) {
		s->accepted[s->n] = p->arm->accepted;
		s->polls[s->n] = p->arm->polls;
		s->wait_ms[s->n] = p->arm->next_wait_ms;
	}
	s->n++;
}

/* The operation file's source: the body before it goes, acceptance and its IDs, each poll. */
static void test_apply_tells_progress(void **state)
{
	const struct fake_reply script[] = {
	    {.status = 200, .body = job(IDENT_SYS, KEK_MM)},
	    {.status = 200, .body = resources()},
	    {.status = 200, .body = vault(PRINCIPAL)},
	    {.status = 200, .body = key_bundle(true)},
	    {.status = 202,
	     .location = OP_URL,
	     .request_id = "rid-patch",
	     .correlation_id = "corr-patch"},
	    {.status = 202, .location = JOB_URL},
	    {.status = 200, .body = job(IDENT_SYS, kek_cm(KEY, VAULT_ID, ""))},
	};
	struct dbx_encryption_change c = change_key(KEY);
	struct seen seen = {0};
	struct env e;

	(void)state;
	env_init(&e, script, 7);
	e.cfg.progress = on_progress;
	e.cfg.progress_ctx = &seen;
	assert_int_equal(apply(&e, &c), DBX_OK);
	assert_int_equal(seen.n, 3);
	assert_int_equal(seen.stage[0], DBX_UPDATE_SENDING);
	assert_string_equal(seen.body[0], BODY_KEK(KEY, VAULT_ID));
	assert_int_equal(seen.stage[1], DBX_UPDATE_ARM);
	assert_true(seen.accepted[1]);
	assert_int_equal(seen.stage[2], DBX_UPDATE_ARM);
	assert_false(seen.accepted[2]);
	assert_int_equal(seen.polls[2], 0);
	assert_true(seen.wait_ms[2] > 0);
	assert_string_equal(e.report.request_id, "rid-patch");
	assert_string_equal(e.report.correlation_id, "corr-patch");
	assert_true(e.report.patched);
	assert_false(e.report.dry_run);
	env_fini(&e);
}

/* -o dry_run: the read and the whole preflight, then no PATCH; the body is told. */
static void test_apply_dry_run_sends_no_patch(void **state)
{
	const struct fake_reply script[] = {
	    {.status = 200, .body = job(IDENT_SYS, KEK_MM)},
	    {.status = 200, .body = resources()},
	    {.status = 200, .body = vault(PRINCIPAL)},
	    {.status = 200, .body = key_bundle(true)},
	};
	struct dbx_encryption_change c = change_key(KEY);
	struct seen seen = {0};
	struct env e;

	(void)state;
	env_init(&e, script, 4);
	e.cfg.dry_run = true;
	e.cfg.progress = on_progress;
	e.cfg.progress_ctx = &seen;
	assert_int_equal(apply(&e, &c), DBX_OK);
	assert_int_equal(e.ft.n_calls, 4);
	assert_int_equal(count_patches(&e), 0);
	assert_call(&e, 3, "GET", KEY_GET_URL, KV_SCOPE);
	assert_true(e.report.dry_run);
	assert_false(e.report.patched);
	assert_non_null(e.result);
	assert_int_equal(e.result->kek_type, DBX_KEK_MICROSOFT); /* the order as it is */
	assert_int_equal(seen.n, 1);
	assert_int_equal(seen.stage[0], DBX_UPDATE_DRY_RUN);
	assert_string_equal(seen.body[0], BODY_KEK(KEY, VAULT_ID));
	env_fini(&e);
}

/* A dry run refused by the preflight fails as a real write does. */
static void test_apply_dry_run_preflight_refusal(void **state)
{
	const struct fake_reply script[] = {
	    {.status = 200, .body = job(IDENT_SYS, KEK_MM)},
	    {.status = 200, .body = resources()},
	    {.status = 200, .body = vault(PRINCIPAL)},
	    {.status = 200, .body = key_bundle(false)},
	};
	struct dbx_encryption_change c = change_key(KEY);
	struct env e, real;
	enum dbx_err rc;

	(void)state;
	env_init(&real, script, 4);
	rc = apply(&real, &c);
	assert_int_not_equal(rc, DBX_OK);
	env_init(&e, script, 4);
	e.cfg.dry_run = true;
	assert_int_equal(apply(&e, &c), rc);
	assert_string_equal(e.err.code, real.err.code);
	assert_int_equal(count_patches(&e), 0);
	assert_false(e.report.dry_run);
	env_fini(&e);
	env_fini(&real);
}

static void test_apply_key_on_order_without_identity(void **state)
{
	const struct fake_reply script[] = {
	    {.status = 200, .body = job(IDENT_NONE, KEK_MM)},
	    {.status = 200, .body = resources()},
	    {.status = 200, .body = vault(PRINCIPAL)},
	    {.status = 200, .body = key_bundle(true)},
	    {.status = 200, .body = job(IDENT_SYS, kek_cm(KEY, VAULT_ID, ""))},
	};
	struct dbx_encryption_change c = change_key(KEY);
	struct env e;

	(void)state;
	env_init(&e, script, 5);
	assert_int_equal(apply(&e, &c), DBX_OK);
	assert_int_equal(e.ft.n_calls, 5);
	assert_non_null(strstr(e.ft.calls[4].body, "\"identity\":{\"type\":\"SystemAssigned\"}"));
	/* Nobody to check access for yet: said so, for the errors file. */
	assert_non_null(strstr(e.report.notes, "not known yet"));
	assert_non_null(strstr(e.report.notes, "new system-assigned identity"));
	env_fini(&e);
}

/*
 * A key's expiry is judged at the wall time of the pipeline's clock (the
 * arm's unless the config names one), not the machine's: a key valid for
 * another minute of the fake clock's time passes; a minute and a second
 * later it is expired and nothing is sent.
 */
static void test_apply_key_expiry_on_the_clock(void **state)
{
	const struct fake_reply script[] = {
	    {.status = 200, .body = job(IDENT_SYS, KEK_MM)},
	    {.status = 200, .body = resources()},
	    {.status = 200, .body = vault(PRINCIPAL)},
	    {.status = 200, .body = key_bundle_expiring(FAKE_WALL0 + 60)},
	    {.status = 202, .location = OP_URL},
	    {.status = 202, .location = JOB_URL},
	    {.status = 200, .body = job(IDENT_SYS, kek_cm(KEY, VAULT_ID, ""))},
	};
	struct dbx_encryption_change c = change_key(KEY);
	struct env e;

	(void)state;
	env_init(&e, script, 7);
	assert_null(e.cfg.clock); /* the arm's clock, at FAKE_WALL0 */
	assert_int_equal(apply(&e, &c), DBX_OK);
	assert_int_equal(count_patches(&e), 1);
	env_fini(&e);

	env_init(&e, script, 7);
	e.cfg.clock = &e.fc.clock;
	e.fc.wall = FAKE_WALL0 + 61;
	assert_int_equal(apply(&e, &c), DBX_EINVAL);
	assert_string_equal(e.err.code, "SsemUserErrorEncryptionKeyExpired");
	assert_int_equal(e.ft.n_calls, 4);
	assert_int_equal(count_patches(&e), 0);
	env_fini(&e);
}

static void test_apply_preflight_failure_sends_no_patch(void **state)
{
	const struct fake_reply script[] = {
	    {.status = 200, .body = job(IDENT_SYS, KEK_MM)},
	    {.status = 200, .body = resources()},
	    {.status = 200, .body = vault(PRINCIPAL)},
	    {.status = 200, .body = key_bundle(false)},
	    {.status = 200, .body = job(IDENT_SYS, kek_cm(KEY, VAULT_ID, ""))},
	};
	struct dbx_encryption_change c = change_key(KEY);
	struct env e;

	(void)state;
	env_init(&e, script, 5);
	assert_int_equal(apply(&e, &c), DBX_EINVAL);
	assert_string_equal(e.err.code, "SsemUserErrorEncryptionKeyDisabled");
	assert_int_equal(e.ft.n_calls, 4);
	assert_int_equal(count_patches(&e), 0);
	assert_null(e.result);
	assert_false(e.report.patched);
	env_fini(&e);
}

static void test_apply_access_denied_sends_no_patch(void **state)
{
	const struct fake_reply script[] = {
	    {.status = 200, .body = job(IDENT_SYS, KEK_MM)},
	    {.status = 200, .body = resources()},
	    {.status = 200, .body = vault("bbbbbbbb-0000-4000-8000-000000000002")},
	    {.status = 200, .body = key_bundle(true)},
	};
	struct dbx_encryption_change c = change_key(KEY);
	struct env e;

	(void)state;
	env_init(&e, script, 4);
	assert_int_equal(apply(&e, &c), DBX_EINVAL);
	assert_string_equal(e.err.code, "SsemUserErrorKeyVaultBadRequestException");
	assert_non_null(strstr(e.err.message, PRINCIPAL));
	assert_int_equal(count_patches(&e), 0);
	env_fini(&e);
}

static void test_apply_user_assigned_switch(void **state)
{
	const struct fake_reply script[] = {
	    {.status = 200, .body = job(IDENT_SYS, kek_cm(KEY, VAULT_ID, ""))},
	    {.status = 200,
	     .body = "{\"id\":\"" UAI_ID "\",\"name\":\"uai1\",\"properties\":{"
		     "\"principalId\":\"" UAI_PRINCIPAL "\",\"tenantId\":\"" TENANT "\"}}"},
	    {.status = 200, .body = vault(UAI_PRINCIPAL)},
	    {.status = 200, .body = job(IDENT_BOTH, kek_cm(KEY, VAULT_ID, IDP_UAI))},
	};
	struct dbx_encryption_change c = change_identity(DBX_IDENTITY_USER, UAI_ID);
	struct env e;

	(void)state;
	env_init(&e, script, 4);
	assert_int_equal(apply(&e, &c), DBX_OK);
	assert_int_equal(e.ft.n_calls, 4);
	assert_call(&e, 1, "GET", UAI_URL, ARM_SCOPE);
	assert_call(&e, 2, "GET", VAULT_URL, ARM_SCOPE); /* the current key's vault */
	assert_call(&e, 3, "PATCH", JOB_URL, ARM_SCOPE);
	assert_non_null(
	    strstr(e.ft.calls[3].body, "\"userAssignedIdentities\":{\"" UAI_ID "\":{}}"));
	assert_string_equal(dbx_order_identity(e.result), UAI_ID);
	env_fini(&e);
}

static void test_apply_user_assigned_not_found_or_denied(void **state)
{
	const struct fake_reply gone[] = {
	    {.status = 200, .body = job(IDENT_SYS, kek_cm(KEY, VAULT_ID, ""))},
	    {.status = 404,
	     .body = "{\"error\":{\"code\":\"ResourceNotFound\",\"message\":\"not found\"}}"},
	};
	const struct fake_reply denied[] = {
	    {.status = 200, .body = job(IDENT_SYS, kek_cm(KEY, VAULT_ID, ""))},
	    {.status = 200, .body = "{\"properties\":{\"principalId\":\"" UAI_PRINCIPAL "\"}}"},
	    {.status = 200, .body = vault(PRINCIPAL)}, /* the system identity only */
	};
	struct dbx_encryption_change c = change_identity(DBX_IDENTITY_USER, UAI_ID);
	struct env e;

	(void)state;
	env_init(&e, gone, 2);
	assert_int_equal(apply(&e, &c), DBX_EINVAL);
	assert_string_equal(e.err.code, "SsemUserErrorKekUserIdentityNotFound");
	assert_int_equal(count_patches(&e), 0);
	env_fini(&e);

	env_init(&e, denied, 3);
	assert_int_equal(apply(&e, &c), DBX_EINVAL);
	assert_string_equal(e.err.code, "SsemUserErrorKeyVaultBadRequestException");
	assert_int_equal(e.ft.n_calls, 3);
	assert_int_equal(count_patches(&e), 0);
	env_fini(&e);
}

static void test_apply_noop_sends_nothing(void **state)
{
	const char *current = job(IDENT_SYS, kek_cm(KEY, VAULT_ID, ""));
	const struct fake_reply script[] = {{.status = 200, .body = current}};
	struct dbx_order *o = parse_job(current);
	struct dbx_encryption_change c = read_back(o);
	struct env e;

	(void)state;
	env_init(&e, script, 1);
	assert_int_equal(apply(&e, &c), DBX_OK);
	assert_int_equal(e.ft.n_calls, 1); /* the fresh read only: no Key Vault, no PATCH */
	assert_true(e.report.noop);
	assert_false(e.report.patched);
	assert_non_null(e.result);
	assert_string_equal(e.result->kek_url, KEY);
	dbx_order_free(o);
	env_fini(&e);
}

static void test_apply_500_then_change_is_there(void **state)
{
	const struct fake_reply script[] = {
	    {.status = 200, .body = job(IDENT_SYS, KEK_MM)},
	    {.status = 200, .body = resources()},
	    {.status = 200, .body = vault(PRINCIPAL)},
	    {.status = 200, .body = key_bundle(true)},
	    {.status = 500,
	     .request_id = "rid-500",
	     .body = "{\"error\":{\"code\":\"InternalServerError\",\"message\":\"oops\"}}"},
	    {.status = 200, .body = job(IDENT_SYS, kek_cm(KEY, VAULT_ID, ""))},
	};
	struct dbx_encryption_change c = change_key(KEY);
	struct env e;

	(void)state;
	env_init(&e, script, 6);
	assert_int_equal(apply(&e, &c), DBX_OK);
	assert_int_equal(e.ft.n_calls, 6);
	assert_int_equal(count_patches(&e), 1); /* the change landed: not sent again */
	assert_call(&e, 5, "GET", JOB_GET_URL, ARM_SCOPE);
	assert_string_equal(e.result->kek_url, KEY);
	assert_true(e.report.patched);
	env_fini(&e);
}

static void test_apply_500_then_old_state_resends_once(void **state)
{
	const struct fake_reply once[] = {
	    {.status = 200, .body = job(IDENT_SYS, KEK_MM)},
	    {.status = 200, .body = resources()},
	    {.status = 200, .body = vault(PRINCIPAL)},
	    {.status = 200, .body = key_bundle(true)},
	    {.status = 500,
	     .body = "{\"error\":{\"code\":\"InternalServerError\",\"message\":"
		     "\"oops\"}}"},
	    {.status = 200, .body = job(IDENT_SYS, KEK_MM)},
	    {.status = 200, .body = job(IDENT_SYS, kek_cm(KEY, VAULT_ID, ""))},
	};
	const struct fake_reply twice[] = {
	    {.status = 200, .body = job(IDENT_SYS, KEK_MM)},
	    {.status = 200, .body = resources()},
	    {.status = 200, .body = vault(PRINCIPAL)},
	    {.status = 200, .body = key_bundle(true)},
	    {.status = 500,
	     .body = "{\"error\":{\"code\":\"InternalServerError\",\"message\":"
		     "\"oops\"}}"},
	    {.status = 200, .body = job(IDENT_SYS, KEK_MM)},
	    {.status = 503,
	     .request_id = "rid-503",
	     .body = "{\"error\":{\"code\":\"ServiceUnavailable\",\"message\":\"later\"}}"},
	    {.status = 200, .body = job(IDENT_SYS, KEK_MM)},
	    {.status = 200, .body = job(IDENT_SYS, kek_cm(KEY, VAULT_ID, ""))},
	};
	struct dbx_encryption_change c = change_key(KEY);
	struct env e;

	(void)state;
	env_init(&e, once, 7);
	assert_int_equal(apply(&e, &c), DBX_OK);
	assert_int_equal(e.ft.n_calls, 7);
	assert_int_equal(count_patches(&e), 2);
	assert_call(&e, 5, "GET", JOB_GET_URL, ARM_SCOPE);
	assert_call(&e, 6, "PATCH", JOB_URL, ARM_SCOPE);
	assert_string_equal(e.ft.calls[6].body, e.ft.calls[4].body);
	assert_string_equal(e.result->kek_url, KEY);
	env_fini(&e);

	/* The resend fails too: give up with its error, no third PATCH. */
	env_init(&e, twice, 9);
	assert_int_equal(apply(&e, &c), DBX_EREMOTE);
	assert_int_equal(e.ft.n_calls, 7);
	assert_int_equal(count_patches(&e), 2);
	assert_string_equal(e.err.code, "ServiceUnavailable");
	assert_string_equal(e.err.request_id, "rid-503");
	assert_null(e.result);
	env_fini(&e);
}

static void test_apply_failed_operation_not_resent(void **state)
{
	const struct fake_reply script[] = {
	    {.status = 200, .body = job(IDENT_SYS, KEK_MM)},
	    {.status = 200, .body = resources()},
	    {.status = 200, .body = vault(PRINCIPAL)},
	    {.status = 200, .body = key_bundle(true)},
	    {.status = 202, .location = OP_URL},
	    {.status = 500,
	     .body = "{\"error\":{\"code\":\"InternalServerError\",\"message\":\"failed\"}}"},
	    {.status = 200, .body = job(IDENT_SYS, KEK_MM)},
	    {.status = 200, .body = job(IDENT_SYS, KEK_MM)},
	};
	struct dbx_encryption_change c = change_key(KEY);
	struct env e;

	(void)state;
	env_init(&e, script, 8);
	assert_int_equal(apply(&e, &c), DBX_EREMOTE);
	/* The order was read once after the failure: it does not show the key, so EIO. */
	assert_int_equal(e.ft.n_calls, 7);
	assert_call(&e, 6, "GET", JOB_GET_URL, ARM_SCOPE);
	assert_int_equal(count_patches(&e), 1);
	assert_string_equal(e.err.code, "InternalServerError");
	env_fini(&e);
}

static void test_apply_dropped_connection_then_change_is_there(void **state)
{
	const struct fake_reply script[] = {
	    {.status = 200, .body = job(IDENT_SYS, kek_cm(KEY, VAULT_ID, ""))},
	    {.transport_err = DBX_EREMOTE},
	    {.status = 200, .body = job(IDENT_SYS, KEK_MM)},
	};
	struct dbx_encryption_change c = change_type(DBX_KEK_CHOICE_MICROSOFT);
	struct env e;

	(void)state;
	env_init(&e, script, 3);
	assert_int_equal(apply(&e, &c), DBX_OK);
	assert_int_equal(e.ft.n_calls, 3);
	assert_int_equal(count_patches(&e), 1);
	assert_int_equal(e.result->kek_type, DBX_KEK_MICROSOFT);
	assert_true(e.report.patched);
	env_fini(&e);
}

/*
 * The PATCH lost its answer and ARM went away with it (a restart): the
 * order is read again every second until ARM is back, and it shows the
 * change: success. When it never comes back: ETIMEDOUT within the timeout,
 * "may or may not have been applied", never a plain failure.
 */
static void test_apply_lost_answer_read_back_after_restart(void **state)
{
	const struct fake_reply script[] = {
	    {.status = 200, .body = job(IDENT_SYS, kek_cm(KEY, VAULT_ID, ""))},
	    {.transport_err = DBX_EREMOTE},
	    {.transport_err = DBX_EUNREACHABLE},
	    {.transport_err = DBX_EUNREACHABLE},
	    {.status = 200, .body = job(IDENT_SYS, KEK_MM)},
	};
	struct fake_reply never[200];
	struct dbx_encryption_change c = change_type(DBX_KEK_CHOICE_MICROSOFT);
	struct env e;

	(void)state;
	env_init(&e, script, 5);
	assert_int_equal(apply(&e, &c), DBX_OK);
	assert_int_equal(e.ft.n_calls, 5);
	assert_int_equal(count_patches(&e), 1);
	assert_int_equal(e.result->kek_type, DBX_KEK_MICROSOFT);
	env_fini(&e);

	never[0] = script[0];
	never[1] = script[1];
	for (size_t i = 2; i < 200; i++)
		never[i] = (struct fake_reply){.transport_err = DBX_EUNREACHABLE};
	env_init(&e, never, 200);
	assert_int_equal(apply(&e, &c), DBX_ETIMEDOUT);
	assert_int_equal(count_patches(&e), 1);
	assert_true(e.fc.now <= START_MS + TIMEOUT_MS);
	assert_non_null(strstr(e.err.message, "may or may not have been applied"));
	env_fini(&e);
}

/*
 * ARM accepted the PATCH but its Location is off the ARM host: not followed
 * (no request to it); the order is read, and the write is judged by what it
 * shows with the same test as a normal end (shows_change): first the old
 * key (not yet), then MicrosoftManaged (done).
 */
static void test_apply_foreign_location_judged_by_the_order(void **state)
{
	const struct fake_reply script[] = {
	    {.status = 200, .body = job(IDENT_SYS, kek_cm(KEY, VAULT_ID, ""))},
	    {.status = 202, .location = "https://evil.example.net/operationResults/1"},
	    {.status = 200, .body = job(IDENT_SYS, kek_cm(KEY, VAULT_ID, ""))},
	    {.status = 200, .body = job(IDENT_SYS, KEK_MM)},
	};
	struct dbx_encryption_change c = change_type(DBX_KEK_CHOICE_MICROSOFT);
	struct env e;

	(void)state;
	env_init(&e, script, 4);
	assert_int_equal(apply(&e, &c), DBX_OK);
	assert_int_equal(e.ft.n_calls, 4);
	assert_call(&e, 2, "GET", JOB_GET_URL, ARM_SCOPE);
	assert_call(&e, 3, "GET", JOB_GET_URL, ARM_SCOPE);
	for (size_t i = 0; i < e.ft.n_calls; i++)
		assert_null(strstr(e.ft.calls[i].url, "evil"));
	assert_int_equal(count_patches(&e), 1);
	assert_int_equal(e.result->kek_type, DBX_KEK_MICROSOFT);
	assert_int_equal(e.err.err, DBX_OK);
	env_fini(&e);
}

static void test_apply_operation_past_timeout_not_resent(void **state)
{
	/*
	 * 120 s of budget, polls 1 s apart for 8 s, then an eighth of the time
	 * since the PATCH, up to 10 s (lro_poll): 31 polls, the last at 114.3 s;
	 * the next would come after the deadline, so the order is read (then,
	 * and 1 s before the deadline): it never shows the change. ETIMEDOUT,
	 * nothing resent, no sleep past the deadline.
	 */
	enum { POLLS = 31 };
	struct fake_reply script[POLLS + 4];
	struct dbx_encryption_change c = change_type(DBX_KEK_CHOICE_MICROSOFT);
	struct env e;

	(void)state;
	script[0] =
	    (struct fake_reply){.status = 200, .body = job(IDENT_SYS, kek_cm(KEY, VAULT_ID, ""))};
	script[1] =
	    (struct fake_reply){.status = 202, .location = OP_URL, .request_id = "rid-patch"};
	for (size_t i = 2; i < POLLS + 2; i++)
		script[i] = (struct fake_reply){.status = 202, .location = OP_URL};
	for (size_t i = POLLS + 2; i < POLLS + 4; i++)
		script[i] = script[0];
	env_init(&e, script, sizeof(script) / sizeof(script[0]));
	assert_int_equal(apply(&e, &c), DBX_ETIMEDOUT);
	assert_int_equal(e.ft.n_calls, POLLS + 4);
	for (size_t i = 2; i < POLLS + 2; i++)
		assert_call(&e, i, "GET", OP_URL, ARM_SCOPE);
	assert_call(&e, POLLS + 2, "GET", JOB_GET_URL, ARM_SCOPE);
	assert_call(&e, POLLS + 3, "GET", JOB_GET_URL, ARM_SCOPE);
	assert_int_equal(count_patches(&e), 1);
	assert_true(e.fc.now <= START_MS + TIMEOUT_MS);
	assert_int_equal(e.fc.now, START_MS + TIMEOUT_MS - 1000);
	assert_non_null(strstr(e.err.message, "did not finish within the timeout"));
	assert_non_null(strstr(e.err.message, "may still be applied"));
	assert_true(e.report.patched);
	assert_null(e.result);
	env_fini(&e);
}

static void test_apply_interrupted_before_patch(void **state)
{
	const struct fake_reply script[] = {
	    {.status = 200, .body = job(IDENT_SYS, KEK_MM)},
	    {.status = 200, .body = resources()},
	    {.status = 200, .body = vault(PRINCIPAL)},
	    {.status = 200, .body = key_bundle(true)},
	    {.status = 200, .body = job(IDENT_SYS, kek_cm(KEY, VAULT_ID, ""))},
	};
	struct dbx_encryption_change c = change_key(KEY);
	struct env e;

	(void)state;
	env_init(&e, script, 5);
	e.interrupt = true;
	assert_int_equal(apply(&e, &c), DBX_EINTR);
	assert_int_equal(e.err.err, DBX_EINTR);
	assert_int_equal(count_patches(&e), 0);
	assert_int_equal(e.ft.n_calls, 4);
	assert_false(e.report.patched);
	assert_null(e.result);
	env_fini(&e);
}

static void test_apply_accepted_but_not_shown(void **state)
{
	const struct fake_reply script[] = {
	    {.status = 200, .body = job(IDENT_SYS, kek_cm(KEY, VAULT_ID, ""))},
	    {.status = 200, .body = job(IDENT_SYS, kek_cm(KEY, VAULT_ID, ""))},
	};
	struct dbx_encryption_change c = change_type(DBX_KEK_CHOICE_MICROSOFT);
	struct env e;

	(void)state;
	env_init(&e, script, 2);
	assert_int_equal(apply(&e, &c), DBX_EREMOTE);
	assert_int_equal(count_patches(&e), 1);
	assert_non_null(strstr(e.err.message, "does not show it"));
	assert_null(e.result);
	env_fini(&e);
}

static void test_apply_contradiction_sends_nothing(void **state)
{
	const struct fake_reply script[] = {{.status = 200, .body = job(IDENT_SYS, KEK_MM)}};
	struct dbx_encryption_change c = change_type(DBX_KEK_CHOICE_CUSTOMER);
	struct env e;

	(void)state;
	env_init(&e, script, 1);
	assert_int_equal(apply(&e, &c), DBX_EINVAL);
	assert_int_equal(e.ft.n_calls, 1);
	assert_non_null(strstr(e.err.message, "key_url"));
	env_fini(&e);
}

static void test_apply_order_gone(void **state)
{
	const struct fake_reply script[] = {
	    {.status = 404,
	     .request_id = "rid-404",
	     .body = "{\"error\":{\"code\":\"ResourceNotFound\",\"message\":\"gone\"}}"},
	};
	struct dbx_encryption_change c = change_key(KEY);
	struct env e;

	(void)state;
	env_init(&e, script, 1);
	assert_int_equal(apply(&e, &c), DBX_ENOTFOUND);
	assert_string_equal(e.err.request_id, "rid-404");
	assert_int_equal(e.ft.n_calls, 1);
	env_fini(&e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_merge_key_on_mm_order_with_system_identity, teardown),
	    cmocka_unit_test_teardown(test_merge_key_on_order_without_identity, teardown),
	    cmocka_unit_test_teardown(test_merge_key_version_change, teardown),
	    cmocka_unit_test_teardown(test_merge_key_and_vault_change, teardown),
	    cmocka_unit_test_teardown(test_merge_microsoft_managed, teardown),
	    cmocka_unit_test_teardown(test_merge_contradictions, teardown),
	    cmocka_unit_test_teardown(test_merge_identity_none, teardown),
	    cmocka_unit_test_teardown(test_merge_system_identity_recreated, teardown),
	    cmocka_unit_test_teardown(test_merge_user_assigned_switch, teardown),
	    cmocka_unit_test_teardown(test_merge_user_assigned_back_to_system, teardown),
	    cmocka_unit_test_teardown(test_merge_write_back_is_noop, teardown),
	    cmocka_unit_test_teardown(test_merge_same_key_resent_while_blocked, teardown),
	    cmocka_unit_test_teardown(test_merge_ids_compare_case_insensitively, teardown),
	    cmocka_unit_test_teardown(test_apply_enable_cmk, teardown),
	    cmocka_unit_test_teardown(test_apply_tells_progress, teardown),
	    cmocka_unit_test_teardown(test_apply_dry_run_sends_no_patch, teardown),
	    cmocka_unit_test_teardown(test_apply_dry_run_preflight_refusal, teardown),
	    cmocka_unit_test_teardown(test_apply_key_on_order_without_identity, teardown),
	    cmocka_unit_test_teardown(test_apply_key_expiry_on_the_clock, teardown),
	    cmocka_unit_test_teardown(test_apply_preflight_failure_sends_no_patch, teardown),
	    cmocka_unit_test_teardown(test_apply_access_denied_sends_no_patch, teardown),
	    cmocka_unit_test_teardown(test_apply_user_assigned_switch, teardown),
	    cmocka_unit_test_teardown(test_apply_user_assigned_not_found_or_denied, teardown),
	    cmocka_unit_test_teardown(test_apply_noop_sends_nothing, teardown),
	    cmocka_unit_test_teardown(test_apply_500_then_change_is_there, teardown),
	    cmocka_unit_test_teardown(test_apply_500_then_old_state_resends_once, teardown),
	    cmocka_unit_test_teardown(test_apply_failed_operation_not_resent, teardown),
	    cmocka_unit_test_teardown(test_apply_dropped_connection_then_change_is_there, teardown),
	    cmocka_unit_test_teardown(test_apply_lost_answer_read_back_after_restart, teardown),
	    cmocka_unit_test_teardown(test_apply_operation_past_timeout_not_resent, teardown),
	    cmocka_unit_test_teardown(test_apply_foreign_location_judged_by_the_order, teardown),
	    cmocka_unit_test_teardown(test_apply_interrupted_before_patch, teardown),
	    cmocka_unit_test_teardown(test_apply_accepted_but_not_shown, teardown),
	    cmocka_unit_test_teardown(test_apply_contradiction_sends_nothing, teardown),
	    cmocka_unit_test_teardown(test_apply_order_gone, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
