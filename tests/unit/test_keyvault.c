/*
 * test_keyvault.c: the preflight of a customer-managed-key write
 * (keyvault.h) over the scripted fake transport.
 *
 * Each test scripts what ARM and Key Vault answer and asserts what a user
 * would see: the Ssem code and message of a rejected write, the exact
 * requests sent (URLs, in order, with the ARM or the Key Vault scope), the
 * kekVaultResourceID and kid that would go into the PATCH, and the notes of
 * a check that was skipped. Key bodies carry real RSA moduli, so the bit
 * length is computed from the same bytes Key Vault would send.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "databoxfs/keyvault.h"
#include "fake_transport.h"
#include "rsa_moduli.h"

#define ARM	  "https://management.azure.com"
#define ARM_SCOPE "https://management.azure.com/.default"
#define KV_SCOPE  "https://vault.azure.net/.default"
#define SUB	  "11111111-1111-4111-8111-111111111111"
#define SUB2	  "22222222-2222-4222-8222-222222222222"
#define SUB3	  "33333333-3333-4333-8333-333333333333"
#define PRINCIPAL "aaaaaaaa-0000-4000-8000-000000000001"
#define OTHER	  "bbbbbbbb-0000-4000-8000-000000000002"
#define TENANT	  "72f988bf-86f1-41af-91ab-2d7cd011db47"
#define VAULT	  "contosovault"
/* As ARM spells it: the case is kept in kekVaultResourceID. */
#define VAULT_ID SUB_ID(SUB)
#define SUB_ID(s)                                                                                  \
	"/subscriptions/" s                                                                        \
	"/resourceGroups/RG-Keys/providers/Microsoft.KeyVault/vaults/ContosoVault"
#define VERSION "78deebed173b48e48f55abf87ed4cf71"
#define KID	"https://contosovault.vault.azure.net/keys/cmk/" VERSION
#define FILTER_URL(s)                                                                              \
	ARM "/subscriptions/" s                                                                    \
	    "/resources?$filter=resourceType%20eq%20%27Microsoft.KeyVault%2Fvaults"                \
	    "%27%20and%20name%20eq%20%27" VAULT "%27&api-version=2021-04-01"
#define VAULT_URL(id) ARM id "?api-version=2024-11-01"
#define KEY_URL	      "https://contosovault.vault.azure.net/keys/cmk?api-version=7.4"
#define SUBS_URL      ARM "/subscriptions?api-version=2022-12-01"
#define UAI_ID                                                                                     \
	"/subscriptions/" SUB                                                                      \
	"/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/uai1"

#define NOW	   ((time_t)1800000000) /* 2027-01-15T08:00:00Z */
#define FUTURE	   ((time_t)1900000000) /* 2030-03-17T17:46:40Z */
#define START_MS   5000u
#define TIMEOUT_MS 30000u

#define ALL_KEY_PERMS "[\"get\",\"wrapKey\",\"unwrapKey\"]"

static const char *resources(const char *id)
{
	return fake_fmt(
	    "{\"value\":[{\"id\":\"%s\",\"name\":\"ContosoVault\","
	    "\"type\":\"Microsoft.KeyVault/vaults\",\"location\":\"westus\",\"tags\":{}}]}",
	    id);
}

static const char *no_resources(void)
{
	return "{\"value\":[]}";
}

/* A vault whose properties are props_extra plus one access policy. */
static const char *vault(const char *id, const char *props_extra, const char *oid, const char *keys)
{
	return fake_fmt(
	    "{\"id\":\"%s\",\"name\":\"ContosoVault\",\"type\":\"Microsoft.KeyVault/vaults\","
	    "\"location\":\"westus\",\"properties\":{\"sku\":{\"family\":\"A\",\"name\":"
	    "\"standard\"},"
	    "\"tenantId\":\"" TENANT "\",%s%s\"accessPolicies\":[{\"tenantId\":\"" TENANT "\","
	    "\"objectId\":\"%s\",\"permissions\":{\"keys\":%s,\"secrets\":[\"get\"]}}],"
	    "\"vaultUri\":\"https://contosovault.vault.azure.net/\"}}",
	    id, props_extra, props_extra[0] ? "," : "", oid, keys);
}

static const char *good_vault(void)
{
	return vault(VAULT_ID, "\"enableSoftDelete\":true,\"enablePurgeProtection\":true",
		     PRINCIPAL, ALL_KEY_PERMS);
}

/* A KeyBundle; nbf and exp are left out when 0. */
static const char *key_bundle(const char *kid, const char *kty, const char *n, bool enabled,
			      time_t nbf, time_t exp, const char *level)
{
	return fake_fmt(
	    "{\"key\":{\"kid\":\"%s\",\"kty\":\"%s\",\"key_ops\":[\"wrapKey\",\"unwrapKey\"],"
	    "\"n\":\"%s\",\"e\":\"AQAB\"},\"attributes\":{\"enabled\":%s%s%s,"
	    "\"created\":1700000000,\"updated\":1700000000,\"recoverableDays\":90,"
	    "\"recoveryLevel\":\"%s\"},\"tags\":{}}",
	    kid, kty, n, enabled ? "true" : "false",
	    nbf ? fake_fmt(",\"nbf\":%lld", (long long)nbf) : "",
	    exp ? fake_fmt(",\"exp\":%lld", (long long)exp) : "", level);
}

static const char *good_key(void)
{
	return key_bundle(KID, "RSA", N_RSA2048, true, 0, 0, "Recoverable");
}

static const char *ec_key(void)
{
	return fake_fmt("{\"key\":{\"kid\":\"%s\",\"kty\":\"EC\",\"crv\":\"P-256\","
			"\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\","
			"\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\","
			"\"key_ops\":[\"sign\",\"verify\"]},\"attributes\":{\"enabled\":true,"
			"\"recoveryLevel\":\"Recoverable\"}}",
			KID);
}

static const char *arm_error(const char *code)
{
	return fake_fmt("{\"error\":{\"code\":\"%s\",\"message\":\"%s happened.\"}}", code, code);
}

struct ctx {
	struct fake_transport f;
	struct fake_clock fc;
	struct dbx_arm *arm;
	struct dbx_keyvault *kv;
	struct dbx_key_url key;
	struct dbx_preflight out;
	struct dbx_error err;
};

static struct ctx C;

static void begin(const struct fake_reply *script, size_t n)
{
	memset(&C, 0, sizeof(C));
	fake_transport_init(&C.f, script, n);
	fake_clock_init(&C.fc, START_MS);
	C.arm = dbx_arm_new(&C.f.base, dbx_cloud_default(), NULL, TIMEOUT_MS, &C.fc.clock);
	assert_non_null(C.arm);
	C.kv = dbx_keyvault_new(C.arm, &C.f.base, TIMEOUT_MS);
	assert_non_null(C.kv);
	/* The script answers in order: lookups one by one (the concurrent cases have their own). */
	dbx_keyvault_set_concurrent(C.kv, false);
	snprintf(C.key.vault, sizeof(C.key.vault), "%s", VAULT);
	snprintf(C.key.host, sizeof(C.key.host), "%s.vault.azure.net", VAULT);
	snprintf(C.key.name, sizeof(C.key.name), "cmk");
	snprintf(C.key.url, sizeof(C.key.url), "https://%s/keys/cmk", C.key.host);
}

static void end(void)
{
	dbx_keyvault_free(C.kv);
	dbx_arm_free(C.arm);
	fake_transport_fini(&C.f);
	fake_fmt_free();
}

static enum dbx_err preflight(const char *principal)
{
	return dbx_keyvault_preflight(C.kv, SUB, &C.key, principal, NOW, &C.out, &C.err);
}

static void assert_call(size_t i, const char *url, const char *scope)
{
	assert_true(i < C.f.n_calls);
	assert_string_equal(C.f.calls[i].method, "GET");
	assert_string_equal(C.f.calls[i].url, url);
	assert_string_equal(C.f.calls[i].scope, scope);
	assert_int_equal(C.f.calls[i].deadline_ms, START_MS + TIMEOUT_MS);
}

static void assert_ssem(enum dbx_err rc, const char *code)
{
	assert_int_equal(rc, DBX_EINVAL);
	assert_int_equal(C.err.err, DBX_EINVAL);
	assert_string_equal(C.err.code, code);
	assert_true(C.err.message[0] != '\0');
}

/* The three requests of a preflight that goes all the way. */
static void assert_happy_calls(void)
{
	assert_int_equal(C.f.n_calls, 3);
	assert_call(0, FILTER_URL(SUB), ARM_SCOPE);
	assert_call(1, VAULT_URL(VAULT_ID), ARM_SCOPE);
	assert_call(2, KEY_URL, KV_SCOPE);
}

/* ---- happy paths ---- */

static void test_happy_path(void **state)
{
	const struct fake_reply script[] = {
	    {.status = 200, .body = resources(VAULT_ID)},
	    {.status = 200, .body = good_vault()},
	    {.status = 200, .body = good_key()},
	};

	begin(script, 3);
	assert_int_equal(preflight(PRINCIPAL), DBX_OK);
	assert_happy_calls();
	assert_string_equal(C.out.vault.id, VAULT_ID);
	assert_string_equal(C.out.vault.tenant_id, TENANT);
	assert_true(C.out.vault.soft_delete && C.out.vault.purge_protection);
	assert_false(C.out.vault.rbac);
	assert_true(C.out.vault.policies_known);
	assert_string_equal(C.out.key.kid, KID);
	assert_string_equal(C.out.key.kty, "RSA");
	assert_int_equal(C.out.key.bits, 2048);
	assert_true(C.out.key.enabled);
	assert_string_equal(C.out.key.recovery_level, "Recoverable");
	assert_string_equal(C.out.notes, "");
	assert_null(C.f.calls[0].bearer); /* no auth layer here: the scope is the contract */
	end();
}

static void test_versioned_rsa_hsm_3072(void **state)
{
	const struct fake_reply script[] = {
	    {.status = 200, .body = resources(VAULT_ID)},
	    {.status = 200, .body = good_vault()},
	    {.status = 200,
	     .body = key_bundle(KID, "RSA-HSM", N_RSA3072, true, NOW - 10, FUTURE,
				"Recoverable+ProtectedSubscription")},
	};

	begin(script, 3);
	snprintf(C.key.version, sizeof(C.key.version), "%s", VERSION);
	assert_int_equal(preflight(PRINCIPAL), DBX_OK);
	assert_int_equal(C.f.n_calls, 3);
	assert_call(2, "https://contosovault.vault.azure.net/keys/cmk/" VERSION "?api-version=7.4",
		    KV_SCOPE);
	assert_int_equal(C.out.key.bits, 3072);
	assert_int_equal(C.out.key.nbf, NOW - 10);
	assert_int_equal(C.out.key.exp, FUTURE);
	end();
}

/* Three zero bytes in front of the modulus do not make it longer. */
static void test_leading_zero_bytes_stripped(void **state)
{
	const struct fake_reply script[] = {
	    {.status = 200, .body = resources(VAULT_ID)},
	    {.status = 200, .body = good_vault()},
	    {.status = 200,
	     .body = key_bundle(KID, "RSA", "AAAA" N_RSA2048, true, 0, 0, "Recoverable")},
	};

	begin(script, 3);
	assert_int_equal(preflight(PRINCIPAL), DBX_OK);
	assert_int_equal(C.out.key.bits, 2048);
	end();
}

static void test_vault_in_second_subscription(void **state)
{
	const struct fake_reply script[] = {
	    {.status = 200, .body = no_resources()},
	    {.status = 200,
	     .body =
		 "{\"value\":[{\"subscriptionId\":\"" SUB "\",\"state\":\"Enabled\"}],"
		 "\"nextLink\":\"" ARM "/subscriptions?api-version=2022-12-01&%24skipToken=p2\"}"},
	    {.status = 200,
	     .body = "{\"value\":[{\"subscriptionId\":\"" SUB2 "\"},{\"subscriptionId\":\"" SUB3
		     "\"}]}"},
	    {.status = 200, .body = no_resources()},
	    {.status = 200, .body = resources(SUB_ID(SUB3))},
	    {.status = 200,
	     .body =
		 vault(SUB_ID(SUB3), "\"enablePurgeProtection\":true", PRINCIPAL, ALL_KEY_PERMS)},
	    {.status = 200, .body = good_key()},
	};

	begin(script, 7);
	assert_int_equal(preflight(PRINCIPAL), DBX_OK);
	assert_int_equal(C.f.n_calls, 7);
	assert_call(0, FILTER_URL(SUB), ARM_SCOPE);
	assert_call(1, SUBS_URL, ARM_SCOPE);
	assert_call(2, ARM "/subscriptions?api-version=2022-12-01&%24skipToken=p2", ARM_SCOPE);
	/* the order's own subscription is not searched twice */
	assert_call(3, FILTER_URL(SUB2), ARM_SCOPE);
	assert_call(4, FILTER_URL(SUB3), ARM_SCOPE);
	assert_call(5, VAULT_URL(SUB_ID(SUB3)), ARM_SCOPE);
	assert_call(6, KEY_URL, KV_SCOPE);
	assert_string_equal(C.out.vault.id, SUB_ID(SUB3));
	/* enableSoftDelete absent: on, the service default */
	assert_true(C.out.vault.soft_delete);
	end();
}

/* Resources - List pages: the vault may be on page two. */
static void test_resources_next_page(void **state)
{
	const char *next =
	    ARM "/subscriptions/" SUB "/resources?api-version=2021-04-01&%24skiptoken=x";
	const struct fake_reply script[] = {
	    {.status = 200, .body = fake_fmt("{\"value\":[],\"nextLink\":\"%s\"}", next)},
	    {.status = 200, .body = resources(VAULT_ID)},
	    {.status = 200, .body = good_vault()},
	    {.status = 200, .body = good_key()},
	};

	begin(script, 4);
	assert_int_equal(preflight(PRINCIPAL), DBX_OK);
	assert_int_equal(C.f.n_calls, 4);
	assert_call(1, next, ARM_SCOPE);
	assert_string_equal(C.out.vault.id, VAULT_ID);
	end();
}

/* ---- each Ssem outcome ---- */

static void test_vault_not_found(void **state)
{
	const struct fake_reply script[] = {
	    {.status = 200, .body = no_resources()},
	    {.status = 200,
	     .body = "{\"value\":[{\"subscriptionId\":\"" SUB "\"},{\"subscriptionId\":\"" SUB2
		     "\"}]}"},
	    /* a resource of another type with the same name does not count */
	    {.status = 200,
	     .body = "{\"value\":[{\"id\":\"/subscriptions/" SUB2 "/resourceGroups/r/providers/"
		     "Microsoft.Storage/storageAccounts/contosovault\",\"name\":\"contosovault\","
		     "\"type\":\"Microsoft.Storage/storageAccounts\"}]}"},
	};

	begin(script, 3);
	assert_ssem(preflight(PRINCIPAL), "SsemUserErrorKeyVaultDetailsNotFound");
	assert_non_null(strstr(C.err.message, VAULT));
	assert_int_equal(C.f.n_calls, 3);
	assert_call(2, FILTER_URL(SUB2), ARM_SCOPE);
	end();
}

static void test_soft_delete_off(void **state)
{
	const struct fake_reply script[] = {
	    {.status = 200, .body = resources(VAULT_ID)},
	    {.status = 200,
	     .body = vault(VAULT_ID, "\"enableSoftDelete\":false", PRINCIPAL, ALL_KEY_PERMS)},
	};

	begin(script, 2);
	assert_ssem(preflight(PRINCIPAL), "SsemUserErrorSoftDeleteAndPurgeProtectionNotEnabled");
	assert_non_null(strstr(C.err.message, "soft delete off"));
	assert_int_equal(C.f.n_calls, 2); /* the key is never fetched */
	end();
}

/* enablePurgeProtection is absent when it was never set: off. */
static void test_purge_protection_absent(void **state)
{
	const struct fake_reply script[] = {
	    {.status = 200, .body = resources(VAULT_ID)},
	    {.status = 200,
	     .body = vault(VAULT_ID, "\"enableSoftDelete\":true", PRINCIPAL, ALL_KEY_PERMS)},
	};

	begin(script, 2);
	assert_ssem(preflight(PRINCIPAL), "SsemUserErrorSoftDeleteAndPurgeProtectionNotEnabled");
	assert_non_null(strstr(C.err.message, "purge protection off"));
	end();
}

static void test_key_not_found(void **state)
{
	const struct fake_reply script[] = {
	    {.status = 200, .body = resources(VAULT_ID)},
	    {.status = 200, .body = good_vault()},
	    {.status = 404,
	     .body = "{\"error\":{\"code\":\"KeyNotFound\",\"message\":\"A key with (name/id) cmk "
		     "was not found in this key vault.\"}}",
	     .request_id = "req-404"},
	};

	begin(script, 3);
	assert_ssem(preflight(PRINCIPAL), "SsemUserErrorKeyDetailsNotFound");
	assert_int_equal(C.err.http_status, 404);
	assert_string_equal(C.err.request_id, "req-404");
	assert_non_null(strstr(C.err.message, "cmk"));
	end();
}

/* A key that is not there: the message names the keys the vault holds (one list more). */
static void test_key_not_found_names_the_keys(void **state)
{
	const struct fake_reply script[] = {
	    {.status = 200, .body = resources(VAULT_ID)},
	    {.status = 200, .body = good_vault()},
	    {.status = 404, .body = "{\"error\":{\"code\":\"KeyNotFound\",\"message\":\"no\"}}"},
	    {.status = 200,
	     .body = "{\"value\":[{\"kid\":\"https://contosovault.vault.azure.net/keys/alpha\","
		     "\"attributes\":{\"enabled\":true}},{\"kid\":\"https://contosovault.vault."
		     "azure.net/keys/beta\",\"attributes\":{\"enabled\":true}}]}"},
	};

	begin(script, 4);
	assert_ssem(preflight(PRINCIPAL), "SsemUserErrorKeyDetailsNotFound");
	assert_non_null(strstr(C.err.message, "; its keys: alpha, beta"));
	assert_int_equal(C.err.http_status, 404);
	end();
}

static void test_key_disabled(void **state)
{
	const struct fake_reply script[] = {
	    {.status = 200, .body = resources(VAULT_ID)},
	    {.status = 200, .body = good_vault()},
	    {.status = 200, .body = key_bundle(KID, "RSA", N_RSA2048, false, 0, 0, "Recoverable")},
	};

	begin(script, 3);
	assert_ssem(preflight(PRINCIPAL), "SsemUserErrorEncryptionKeyDisabled");
	assert_non_null(strstr(C.err.message, "disabled"));
	end();
}

static void test_key_expired(void **state)
{
	const struct fake_reply script[] = {
	    {.status = 200, .body = resources(VAULT_ID)},
	    {.status = 200, .body = good_vault()},
	    {.status = 200,
	     .body = key_bundle(KID, "RSA", N_RSA2048, true, 0, NOW - 1, "Recoverable")},
	};

	begin(script, 3);
	assert_ssem(preflight(PRINCIPAL), "SsemUserErrorEncryptionKeyExpired");
	assert_non_null(strstr(C.err.message, "2027-01-15T07:59:59Z"));
	end();
}

static void test_key_not_yet_valid(void **state)
{
	const struct fake_reply script[] = {
	    {.status = 200, .body = resources(VAULT_ID)},
	    {.status = 200, .body = good_vault()},
	    {.status = 200,
	     .body = key_bundle(KID, "RSA", N_RSA2048, true, FUTURE, 0, "Recoverable")},
	};

	begin(script, 3);
	assert_ssem(preflight(PRINCIPAL), "SsemUserErrorEncryptionKeyDisabled");
	assert_non_null(strstr(C.err.message, "not valid before 2030-03-17T17:46:40Z"));
	end();
}

static void run_type_not_supported(const char *body, const char *kty, const char *bits)
{
	const struct fake_reply script[] = {
	    {.status = 200, .body = resources(VAULT_ID)},
	    {.status = 200, .body = good_vault()},
	    {.status = 200, .body = body},
	};

	begin(script, 3);
	assert_ssem(preflight(PRINCIPAL), "SsemUserErrorEncryptionKeyTypeNotSupported");
	assert_non_null(strstr(C.err.message, kty));
	assert_non_null(strstr(C.err.message, bits));
	end();
}

static void test_key_rsa_1024(void **state)
{
	run_type_not_supported(key_bundle(KID, "RSA", N_RSA1024, true, 0, 0, "Recoverable"), "RSA",
			       "1024 bits");
}

/* 2047 bits is 256 bytes too: the bit count, not the byte count, decides. */
static void test_key_rsa_2047(void **state)
{
	run_type_not_supported(key_bundle(KID, "RSA-HSM", N_RSA2047, true, 0, 0, "Recoverable"),
			       "RSA-HSM", "2047 bits");
}

static void test_key_ec(void **state)
{
	run_type_not_supported(ec_key(), "EC key", "RSA or RSA-HSM");
}

/* An RSA key whose key_ops leave out unwrapKey cannot hold a Data Box key: the key_ops rule. */
static void test_key_ops_without_unwrap(void **state)
{
	const char *body = key_bundle(KID, "RSA", N_RSA2048, true, 0, 0, "Recoverable");
	char *swapped = strdup(body), *at = strstr(swapped, "\"unwrapKey\"");

	assert_non_null(at);
	memcpy(at, "\"decrypt\"  ", 11); /* same length, keeps the JSON valid */
	run_type_not_supported(swapped, "key_ops lacks unwrapKey", KID);
	free(swapped);
}

static void test_access_missing_permissions(void **state)
{
	const struct fake_reply script[] = {
	    {.status = 200, .body = resources(VAULT_ID)},
	    {.status = 200,
	     .body = vault(VAULT_ID, "\"enablePurgeProtection\":true", PRINCIPAL,
			   "[\"get\",\"list\",\"encrypt\"]")},
	    {.status = 200, .body = good_key()},
	};

	begin(script, 3);
	assert_ssem(preflight(PRINCIPAL), "SsemUserErrorKeyVaultBadRequestException");
	assert_non_null(strstr(C.err.message, "permission(s) wrapKey, unwrapKey;"));
	assert_non_null(strstr(C.err.message, PRINCIPAL));
	assert_happy_calls();
	end();
}

/* A policy for someone else grants the identity nothing. */
static void test_access_other_principal(void **state)
{
	const struct fake_reply script[] = {
	    {.status = 200, .body = resources(VAULT_ID)},
	    {.status = 200,
	     .body = vault(VAULT_ID, "\"enablePurgeProtection\":true", OTHER, "[\"all\"]")},
	    {.status = 200, .body = good_key()},
	};

	begin(script, 3);
	assert_ssem(preflight(PRINCIPAL), "SsemUserErrorKeyVaultBadRequestException");
	assert_non_null(strstr(C.err.message, "permission(s) get, wrapKey, unwrapKey;"));
	end();
}

static void test_access_all(void **state)
{
	const struct fake_reply script[] = {
	    {.status = 200, .body = resources(VAULT_ID)},
	    {.status = 200,
	     .body = vault(VAULT_ID, "\"enablePurgeProtection\":true", PRINCIPAL, "[\"All\"]")},
	    {.status = 200, .body = good_key()},
	};

	begin(script, 3);
	assert_int_equal(preflight(PRINCIPAL), DBX_OK);
	end();
}

/* Older policies say Get/WrapKey/UnwrapKey; object IDs compare case-insensitively too. */
static void test_access_case_insensitive(void **state)
{
	const struct fake_reply script[] = {
	    {.status = 200, .body = resources(VAULT_ID)},
	    {.status = 200,
	     .body = vault(VAULT_ID, "\"enablePurgeProtection\":true",
			   "AAAAAAAA-0000-4000-8000-000000000001",
			   "[\"GET\",\"WrapKey\",\"unwrapkey\"]")},
	    {.status = 200, .body = good_key()},
	};

	begin(script, 3);
	assert_int_equal(preflight(PRINCIPAL), DBX_OK);
	end();
}

static void test_rbac_vault_no_access_check(void **state)
{
	const struct fake_reply script[] = {
	    {.status = 200, .body = resources(VAULT_ID)},
	    {.status = 200,
	     .body =
		 vault(VAULT_ID, "\"enablePurgeProtection\":true,\"enableRbacAuthorization\":true",
		       OTHER, "[]")},
	    {.status = 200, .body = good_key()},
	};

	begin(script, 3);
	assert_int_equal(preflight(PRINCIPAL), DBX_OK);
	assert_true(C.out.vault.rbac);
	assert_string_equal(C.out.notes, "");
	end();
}

/* A policy with an applicationId is a compound identity: it does not serve the managed identity. */
static void test_access_compound_identity_ignored(void **state)
{
	const struct fake_reply script[] = {
	    {.status = 200, .body = resources(VAULT_ID)},
	    {.status = 200,
	     .body = fake_fmt("{\"properties\":{\"enablePurgeProtection\":true,\"accessPolicies\":["
			      "{\"objectId\":\"%s\",\"applicationId\":\"%s\",\"permissions\":"
			      "{\"keys\":[\"all\"]}},{\"objectId\":\"%s\",\"permissions\":"
			      "{\"keys\":[\"get\"]}}]}}",
			      PRINCIPAL, OTHER, PRINCIPAL)},
	    {.status = 200, .body = good_key()},
	};

	begin(script, 3);
	assert_ssem(preflight(PRINCIPAL), "SsemUserErrorKeyVaultBadRequestException");
	assert_non_null(strstr(C.err.message, "permission(s) wrapKey, unwrapKey;"));
	end();
}

/* Policies add up: get in one, wrapKey and unwrapKey in another. */
static void test_access_policies_add_up(void **state)
{
	const struct fake_reply script[] = {
	    {.status = 200, .body = resources(VAULT_ID)},
	    {.status = 200,
	     .body = fake_fmt("{\"properties\":{\"enablePurgeProtection\":true,\"accessPolicies\":["
			      "{\"objectId\":\"%s\",\"permissions\":{\"keys\":[\"wrapKey\","
			      "\"unwrapKey\"]}},{\"objectId\":\"%s\",\"permissions\":"
			      "{\"keys\":[\"get\"]}}]}}",
			      PRINCIPAL, PRINCIPAL)},
	    {.status = 200, .body = good_key()},
	};

	begin(script, 3);
	assert_int_equal(preflight(PRINCIPAL), DBX_OK);
	end();
}

/* A subscription that refuses the search (403) does not end it. */
static void test_subscription_403_search_goes_on(void **state)
{
	const struct fake_reply script[] = {
	    {.status = 403, .body = arm_error("AuthorizationFailed")},
	    {.status = 200, .body = "{\"value\":[{\"subscriptionId\":\"" SUB2 "\"}]}"},
	    {.status = 200, .body = resources(SUB_ID(SUB2))},
	    {.status = 200,
	     .body =
		 vault(SUB_ID(SUB2), "\"enablePurgeProtection\":true", PRINCIPAL, ALL_KEY_PERMS)},
	    {.status = 200, .body = good_key()},
	};

	begin(script, 5);
	assert_int_equal(preflight(PRINCIPAL), DBX_OK);
	assert_int_equal(C.f.n_calls, 5);
	assert_string_equal(C.out.vault.id, SUB_ID(SUB2));
	end();
}

/* ---- skipped checks ---- */

static void test_vault_403_noted(void **state)
{
	const struct fake_reply script[] = {
	    {.status = 200, .body = resources(VAULT_ID)},
	    {.status = 403, .body = arm_error("AuthorizationFailed")},
	    {.status = 200, .body = good_key()},
	};

	begin(script, 3);
	assert_int_equal(preflight(PRINCIPAL), DBX_OK);
	assert_happy_calls();
	assert_non_null(strstr(C.out.notes,
			       "vault properties not readable with the mount's "
			       "credential (403); soft delete and purge protection not "
			       "checked"));
	assert_non_null(strstr(C.out.notes, "access policies not checked"));
	assert_string_equal(C.out.vault.id, VAULT_ID); /* still the kekVaultResourceID */
	assert_false(C.out.vault.policies_known);
	assert_string_equal(C.out.key.kid, KID);
	end();
}

/* Without the vault's properties the key's recoveryLevel still shows purge protection off. */
static void test_vault_403_recovery_level_purgeable(void **state)
{
	const struct fake_reply script[] = {
	    {.status = 200, .body = resources(VAULT_ID)},
	    {.status = 403, .body = arm_error("AuthorizationFailed")},
	    {.status = 200,
	     .body = key_bundle(KID, "RSA", N_RSA2048, true, 0, 0, "Recoverable+Purgeable")},
	};

	begin(script, 3);
	assert_ssem(preflight(PRINCIPAL), "SsemUserErrorSoftDeleteAndPurgeProtectionNotEnabled");
	assert_non_null(strstr(C.err.message, "Recoverable+Purgeable"));
	end();
}

/* 403 from Key Vault: the key checks are skipped, the written URL stands as kid. */
static void test_key_403_noted(void **state)
{
	const struct fake_reply script[] = {
	    {.status = 200, .body = resources(VAULT_ID)},
	    {.status = 200, .body = good_vault()},
	    {.status = 403,
	     .body = "{\"error\":{\"code\":\"Forbidden\",\"message\":\"no get\","
		     "\"innererror\":{\"code\":\"AccessDenied\"}}}"},
	};

	begin(script, 3);
	assert_int_equal(preflight(PRINCIPAL), DBX_OK);
	assert_non_null(strstr(C.out.notes, "key not readable"));
	assert_string_equal(C.out.key.kid, "https://contosovault.vault.azure.net/keys/cmk");
	end();
}

static void test_no_principal_noted(void **state)
{
	const struct fake_reply script[] = {
	    {.status = 200, .body = resources(VAULT_ID)},
	    {.status = 200, .body = vault(VAULT_ID, "\"enablePurgeProtection\":true", OTHER, "[]")},
	    {.status = 200, .body = good_key()},
	};

	begin(script, 3);
	assert_int_equal(preflight(""), DBX_OK);
	assert_non_null(strstr(C.out.notes, "access policies not checked"));
	end();
}

/* ---- failures that are not the user's ---- */

static void run_propagates(size_t at, const struct fake_reply *fail, enum dbx_err want)
{
	struct fake_reply script[3] = {
	    {.status = 200, .body = resources(VAULT_ID)},
	    {.status = 200, .body = good_vault()},
	    {.status = 200, .body = good_key()},
	};
	enum dbx_err rc;

	script[at] = *fail;
	begin(script, 3);
	rc = preflight(PRINCIPAL);
	assert_int_equal(rc, want);
	assert_int_equal(C.err.err, want);
	assert_null(strstr(C.err.code, "Ssem"));
	assert_int_equal(C.f.n_calls, at + 1);
	assert_string_equal(C.out.notes, "");
	end();
}

static void test_failures_propagate(void **state)
{
	const struct fake_reply r401 = {.status = 401,
					.body =
					    "{\"error\":{\"code\":"
					    "\"InvalidAuthenticationToken\",\"message\":\"bad\"}}"};
	const struct fake_reply r500 = {.status = 500, .body = "oops"};
	const struct fake_reply r429 = {.status = 429, .retry_after = "10"};
	const struct fake_reply down = {.transport_err = DBX_EUNREACHABLE};
	const struct fake_reply slow = {.transport_err = DBX_ETIMEDOUT};

	run_propagates(0, &r401, DBX_EACCES);
	run_propagates(0, &r500, DBX_EREMOTE);
	run_propagates(1, &r429, DBX_ETHROTTLED);
	run_propagates(1, &down, DBX_EUNREACHABLE);
	run_propagates(2, &r401, DBX_EACCES); /* Key Vault 401 is not a skippable 403 */
	run_propagates(2, &r500, DBX_EREMOTE);
	run_propagates(2, &slow, DBX_ETIMEDOUT);
}

/* A clock that moves 11 s each time it is read: requests take time. */
static uint64_t slow_now(void *ctx)
{
	struct fake_clock *fc = ctx;

	fc->now += 11000;
	return fc->now;
}

/* One deadline for the whole preflight, not one per request. */
static void test_one_deadline_for_the_preflight(void **state)
{
	const struct fake_reply script[] = {
	    {.status = 200, .body = resources(VAULT_ID)},
	    {.status = 200, .body = good_vault()},
	    {.status = 200, .body = good_key()},
	};

	begin(script, 3);
	C.fc.clock.now_ms = slow_now;
	assert_int_equal(preflight(PRINCIPAL), DBX_ETIMEDOUT);
	assert_int_equal(C.err.err, DBX_ETIMEDOUT);
	assert_int_equal(C.f.n_calls, 2); /* 11 s + 11 s + 11 s > 30 s: the key is never asked */
	assert_int_equal(C.f.calls[0].deadline_ms, START_MS + 11000 + TIMEOUT_MS);
	assert_int_equal(C.f.calls[1].deadline_ms, C.f.calls[0].deadline_ms);
	end();
}

/* ---- malformed answers ---- */

static void run_malformed(size_t at, const char *body)
{
	struct fake_reply script[3] = {
	    {.status = 200, .body = resources(VAULT_ID)},
	    {.status = 200, .body = good_vault()},
	    {.status = 200, .body = good_key()},
	};

	script[at].body = body;
	begin(script, 3);
	assert_int_equal(preflight(PRINCIPAL), DBX_EREMOTE);
	assert_non_null(strstr(C.err.message, "malformed"));
	assert_int_equal(C.f.n_calls, at + 1);
	end();
}

static void test_malformed_key(void **state)
{
	static const char *const bodies[] = {
	    "",
	    "not json",
	    "[1,2]",
	    "{\"key\":{}}",
	    "{\"key\":[],\"attributes\":{\"enabled\":true}}",
	    "{\"key\":{\"kid\":\"" KID "\",\"kty\":\"RSA\",\"n\":\"" N_RSA2048 "\"}}",
	    "{\"key\":{\"kid\":\"" KID "\",\"kty\":7,\"n\":\"" N_RSA2048
	    "\"},\"attributes\":{\"enabled\":true}}",
	    "{\"key\":{\"kid\":\"" KID "\",\"kty\":\"RSA\"},\"attributes\":{\"enabled\":true}}",
	    "{\"key\":{\"kid\":\"" KID
	    "\",\"kty\":\"RSA\",\"n\":17},\"attributes\":{\"enabled\":true}}",
	    "{\"key\":{\"kid\":\"" KID
	    "\",\"kty\":\"RSA\",\"n\":\"ab+/cd==\"},\"attributes\":{\"enabled\":true}}",
	    "{\"key\":{\"kid\":\"" KID
	    "\",\"kty\":\"RSA\",\"n\":\"abcde\"},\"attributes\":{\"enabled\":true}}",
	    "{\"key\":{\"kid\":\"" KID
	    "\",\"kty\":\"RSA\",\"n\":\"\"},\"attributes\":{\"enabled\":true}}",
	    "{\"key\":{\"kid\":\"" KID
	    "\",\"kty\":\"RSA\",\"n\":\"AAAA\"},\"attributes\":{\"enabled\":true}}",
	    "{\"key\":{\"kid\":\"" KID "\",\"kty\":\"RSA\",\"n\":\"" N_RSA2048
	    "\"},\"attributes\":{\"enabled\":\"yes\"}}",
	    "{\"key\":{\"kid\":\"" KID "\",\"kty\":\"RSA\",\"n\":\"" N_RSA2048
	    "\"},\"attributes\":{\"enabled\":true,\"exp\":\"soon\"}}",
	    "{\"key\":{\"kid\":\"https://evil.example.com/keys/cmk/" VERSION
	    "\",\"kty\":\"RSA\",\"n\":\"" N_RSA2048 "\"},\"attributes\":{\"enabled\":true}}",
	    "{\"key\":{\"kid\":\"https://contosovault.vault.azure.net/keys/other/" VERSION
	    "\",\"kty\":\"RSA\",\"n\":\"" N_RSA2048 "\"},\"attributes\":{\"enabled\":true}}",
	    "{\"key\":{\"kid\":null,\"kty\":\"RSA\",\"n\":\"" N_RSA2048
	    "\"},\"attributes\":{\"enabled\":true}}",
	    "{\"key\":{\"kid\":\"" KID "\",\"kty\":\"RSA\",\"n\":\"" N_RSA2048
	    "\"},\"attributes\":{\"enabled\":true}} trailing",
	};

	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		print_message("body %zu\n", i);
		run_malformed(2, bodies[i]);
	}
}

/*
 * Key GET answers field by field (kid, kty, n, e, key_ops, enabled, nbf,
 * exp, created, updated, recoveryLevel): a wrong type is malformed and the
 * message names the field; a good KeyBundle still reads.
 */
static void test_key_fields_named(void **state)
{
#define KEYB(key_extra, attrs)                                                                     \
	"{\"key\":{\"kid\":\"" KID "\",\"kty\":\"RSA\",\"n\":\"" N_RSA2048 "\"" key_extra "},"     \
	"\"attributes\":{\"enabled\":true" attrs "}}"
	static const struct {
		const char *body, *why;
	} rows[] = {
	    {"{\"key\":5,\"attributes\":{\"enabled\":true}}",
	     "key is a number, expected an object"},
	    {"{\"key\":{\"kid\":\"" KID "\",\"kty\":\"RSA\",\"n\":\"" N_RSA2048
	     "\"},\"attributes\":[]}",
	     "attributes is an array, expected an object"},
	    {"{\"key\":{\"kid\":[],\"kty\":\"RSA\",\"n\":\"" N_RSA2048
	     "\"},\"attributes\":{\"enabled\":true}}",
	     "key.kid is an array, expected a string"},
	    {"{\"key\":{\"kid\":\"" KID "\",\"kty\":7,\"n\":\"" N_RSA2048
	     "\"},\"attributes\":{\"enabled\":true}}",
	     "key.kty is a number, expected a string"},
	    {"{\"key\":{\"kid\":\"" KID "\",\"n\":\"" N_RSA2048
	     "\"},\"attributes\":{\"enabled\":true}}",
	     "no key.kty"},
	    {"{\"key\":{\"kid\":\"" KID
	     "\",\"kty\":\"RSA\",\"n\":17},\"attributes\":{\"enabled\":true}}",
	     "key.n is a number, expected a string"},
	    {"{\"key\":{\"kid\":\"" KID "\",\"kty\":\"RSA\"},\"attributes\":{\"enabled\":true}}",
	     "no key.n"},
	    {"{\"key\":{\"kid\":\"" KID
	     "\",\"kty\":\"RSA\",\"n\":\"ab+/cd==\"},\"attributes\":{\"enabled\":true}}",
	     "key.n is not base64url"},
	    {"{\"key\":{\"kid\":\"" KID
	     "\",\"kty\":\"RSA\",\"n\":\"AAAA\"},\"attributes\":{\"enabled\":true}}",
	     "key.n is a zero modulus"},
	    {KEYB(",\"e\":65537", ""), "key.e is a number, expected a string"},
	    {KEYB(",\"key_ops\":\"wrapKey\"", ""), "key.key_ops is a string, expected an array"},
	    {KEYB(",\"key_ops\":[\"wrapKey\",1]", ""),
	     "key.key_ops[1] is a number, expected a string"},
	    {"{\"key\":{\"kid\":\"" KID "\",\"kty\":\"RSA\",\"n\":\"" N_RSA2048
	     "\"},\"attributes\":{\"enabled\":\"yes\"}}",
	     "attributes.enabled is a string, expected a boolean"},
	    {"{\"key\":{\"kid\":\"" KID "\",\"kty\":\"RSA\",\"n\":\"" N_RSA2048
	     "\"},\"attributes\":{}}",
	     "no attributes.enabled"},
	    {KEYB("", ",\"nbf\":\"now\""), "attributes.nbf is a string, expected an integer"},
	    {KEYB("", ",\"exp\":1.9e9"), "attributes.exp is a number, expected an integer"},
	    {KEYB("", ",\"created\":{}"), "attributes.created is an object, expected an integer"},
	    {KEYB("", ",\"updated\":true"), "attributes.updated is a boolean, expected an integer"},
	    {KEYB("", ",\"recoveryLevel\":1"),
	     "attributes.recoveryLevel is a number, expected a string"},
	    {KEYB("", ",\"enabled\":false"), "duplicate key \"enabled\""},
	    {"{\"key\":{\"kid\":\"https://evil.example.com/keys/cmk/" VERSION
	     "\",\"kty\":\"RSA\",\"n\":\"" N_RSA2048 "\"},\"attributes\":{\"enabled\":true}}",
	     "key.kid is not a version of the key asked for"},
	};
	struct dbx_key_info info;

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct fake_reply script[] = {{.status = 200, .body = rows[i].body}};

		begin(script, 1);
		assert_int_equal(dbx_keyvault_get_key(C.kv, &C.key, &info, &C.err), DBX_EREMOTE);
		if (!strstr(C.err.message, "malformed Key Vault key response: ") ||
		    !strstr(C.err.message, rows[i].why))
			fail_msg("row %zu: \"%s\", wanted \"%s\"", i, C.err.message, rows[i].why);
		assert_int_equal(C.err.http_status, 200);
		end();
	}
	{
		const struct fake_reply script[] = {
		    {.status = 200,
		     .body = KEYB(",\"e\":\"AQAB\",\"key_ops\":[\"wrapKey\"]",
				  ",\"nbf\":null,\"exp\":1900000000,\"recoveryLevel\":null")}};

		begin(script, 1);
		assert_int_equal(dbx_keyvault_get_key(C.kv, &C.key, &info, &C.err), DBX_OK);
		assert_int_equal(info.bits, 2048);
		assert_int_equal(info.exp, 1900000000);
		assert_int_equal(info.nbf, 0);
		end();
	}
#undef KEYB
}

static void test_malformed_vault_and_list(void **state)
{
	run_malformed(0, "{\"value\":{}}");
	run_malformed(0, "{\"value\":[{\"id\":5,\"name\":\"contosovault\"}]}");
	run_malformed(0, "{\"value\":[\"x\"]}");
	run_malformed(0, "{\"value\":[{\"id\":\"/subscriptions/" SUB
			 "/../../x?y\",\"name\":\"contosovault\","
			 "\"type\":\"Microsoft.KeyVault/vaults\"}]}");
	run_malformed(0, "{\"value\":[],\"nextLink\":42}");
	run_malformed(1, "{\"properties\":\"x\"}");
	run_malformed(1, "{\"properties\":{\"enableSoftDelete\":\"yes\"}}");
	run_malformed(1, "{\"properties\":{\"accessPolicies\":{}}}");
	run_malformed(1, "{\"id\":\"x\"}");
}

/* Access policies of the wrong shape are not read as "no permission". */
static void test_malformed_policies(void **state)
{
	const struct fake_reply script[] = {
	    {.status = 200, .body = resources(VAULT_ID)},
	    {.status = 200,
	     .body = fake_fmt("{\"properties\":{\"enablePurgeProtection\":true,"
			      "\"accessPolicies\":[{\"objectId\":\"%s\","
			      "\"permissions\":{\"keys\":\"all\"}}]}}",
			      PRINCIPAL)},
	    {.status = 200, .body = good_key()},
	};

	begin(script, 3);
	assert_int_equal(preflight(PRINCIPAL), DBX_EREMOTE);
	assert_non_null(strstr(C.err.message, "malformed"));
	end();
}

/* A modulus of 300000 bytes: counted, not decoded into memory, not a crash. */
static void test_huge_modulus(void **state)
{
	size_t len = 400000;
	char *n = malloc(len + 1);
	struct dbx_key_info info;
	struct fake_reply script[1] = {{.status = 200}};

	assert_non_null(n);
	memset(n, '_', len);
	n[len] = '\0';
	script[0].body = key_bundle(KID, "RSA", n, true, 0, 0, "Recoverable");
	begin(script, 1);
	assert_int_equal(dbx_keyvault_get_key(C.kv, &C.key, &info, &C.err), DBX_OK);
	assert_int_equal(info.bits, 300000u * 8);
	assert_string_equal(info.kid, KID);
	free(n);
	end();
}

/* ---- tokens stay on the ARM host ---- */

static void run_foreign_next_link(const char *link)
{
	const struct fake_reply script[] = {
	    {.status = 200, .body = fake_fmt("{\"value\":[],\"nextLink\":\"%s\"}", link)},
	    {.status = 200, .body = resources(VAULT_ID)},
	};

	begin(script, 2);
	assert_int_equal(preflight(PRINCIPAL), DBX_EREMOTE);
	assert_int_equal(C.f.n_calls, 1);
	assert_non_null(strstr(C.err.message, "nextLink"));
	end();
}

static void test_next_link_foreign_host_refused(void **state)
{
	run_foreign_next_link("https://evil.example.com/subscriptions/" SUB "/resources?x=1");
	run_foreign_next_link("https://management.azure.com.evil.example.com/subscriptions");
	run_foreign_next_link("https://management.azure.com@evil.example.com/subscriptions");
	run_foreign_next_link("https://management.azure.com:8443/subscriptions");
	run_foreign_next_link("http://management.azure.com/subscriptions");
	/* the same check as arm.c's (dbx_arm_url_is_arm): no backslash, no raw non-ASCII */
	run_foreign_next_link("https://management.azure.com\\\\@evil.example.com/subscriptions");
	run_foreign_next_link("https://management.azure.com/subscriptions/\xc3\xa9");
}

/* The ARM host spelt another way (case, an explicit :443) is still the ARM host. */
static void test_next_link_same_host_spellings(void **state)
{
	const char *next = "HTTPS://Management.Azure.COM:443/subscriptions/" SUB
			   "/resources?api-version=2021-04-01&%24skiptoken=x";
	const struct fake_reply script[] = {
	    {.status = 200, .body = fake_fmt("{\"value\":[],\"nextLink\":\"%s\"}", next)},
	    {.status = 200, .body = resources(VAULT_ID)},
	    {.status = 200, .body = good_vault()},
	    {.status = 200, .body = good_key()},
	};

	(void)state;
	begin(script, 4);
	assert_int_equal(preflight(PRINCIPAL), DBX_OK);
	assert_int_equal(C.f.n_calls, 4);
	assert_call(1, next, ARM_SCOPE);
	end();
}

/* ---- the vault search pages on arm.c's one loop ---- */

/* A nextLink seen twice: the search ends as malformed, not as "vault not found". */
static void test_resources_next_link_seen_twice(void **state)
{
	const char *p2 =
	    ARM "/subscriptions/" SUB "/resources?api-version=2021-04-01&%24skiptoken=2";
	const struct fake_reply script[] = {
	    {.status = 200, .body = fake_fmt("{\"value\":[],\"nextLink\":\"%s\"}", p2)},
	    {.status = 200,
	     .body = fake_fmt("{\"value\":[],\"nextLink\":\"%s\"}", FILTER_URL(SUB)),
	     .request_id = "rid-loop"},
	    {.status = 200, .body = resources(VAULT_ID)},
	};

	(void)state;
	begin(script, 3);
	assert_int_equal(preflight(PRINCIPAL), DBX_EREMOTE);
	assert_int_equal(C.err.err, DBX_EREMOTE);
	assert_non_null(strstr(C.err.message, "malformed"));
	assert_non_null(strstr(C.err.message, "nextLink repeats an earlier page"));
	assert_string_equal(C.err.code, "");
	assert_string_equal(C.err.request_id, "rid-loop");
	assert_int_equal(C.f.n_calls, 2);
	assert_call(1, p2, ARM_SCOPE);
	end();
}

/* The same rule on the subscription listing of the search. */
static void test_subscriptions_next_link_seen_twice(void **state)
{
	const struct fake_reply script[] = {
	    {.status = 200, .body = no_resources()},
	    {.status = 200,
	     .body =
		 "{\"value\":[{\"subscriptionId\":\"" SUB2 "\"}],\"nextLink\":\"" SUBS_URL "\"}"},
	    {.status = 200, .body = resources(SUB_ID(SUB2))},
	};

	(void)state;
	begin(script, 3);
	assert_int_equal(preflight(PRINCIPAL), DBX_EREMOTE);
	assert_non_null(strstr(C.err.message, "nextLink repeats an earlier page"));
	assert_null(strstr(C.err.code, "Ssem"));
	assert_int_equal(C.f.n_calls, 2);
	assert_call(1, SUBS_URL, ARM_SCOPE);
	end();
}

/*
 * A subscription without a usable subscriptionId is passed over with a
 * warning, as in the mount's own listing; the search goes on.
 */
static void test_subscription_without_id_skipped(void **state)
{
	const struct fake_reply script[] = {
	    {.status = 200, .body = no_resources()},
	    {.status = 200,
	     .body = "{\"value\":[{\"displayName\":\"no id\"},{\"subscriptionId\":\"" SUB2 "\"}]}"},
	    {.status = 200, .body = resources(SUB_ID(SUB2))},
	    {.status = 200,
	     .body =
		 vault(SUB_ID(SUB2), "\"enablePurgeProtection\":true", PRINCIPAL, ALL_KEY_PERMS)},
	    {.status = 200, .body = good_key()},
	};

	(void)state;
	begin(script, 5);
	assert_int_equal(preflight(PRINCIPAL), DBX_OK);
	assert_int_equal(C.f.n_calls, 5);
	assert_call(2, FILTER_URL(SUB2), ARM_SCOPE);
	assert_string_equal(C.out.vault.id, SUB_ID(SUB2));
	end();
}

/* ---- the other entry points ---- */

static void test_find_vault_alone(void **state)
{
	const struct fake_reply script[] = {
	    {.status = 200, .body = resources(VAULT_ID)},
	    {.status = 200,
	     .body = vault(VAULT_ID,
			   "\"enablePurgeProtection\":true,"
			   "\"enableRbacAuthorization\":false",
			   PRINCIPAL, "[]")},
	};
	struct dbx_vault_info v;

	begin(script, 2);
	assert_int_equal(dbx_keyvault_find_vault(C.kv, SUB, VAULT, &v, &C.err), DBX_OK);
	assert_string_equal(v.id, VAULT_ID);
	assert_true(v.soft_delete && v.purge_protection && v.policies_known);
	end();
}

/* A vault that vanished between the list and the GET is not found. */
static void test_vault_404_after_list(void **state)
{
	const struct fake_reply script[] = {
	    {.status = 200, .body = resources(VAULT_ID)},
	    {.status = 404, .body = arm_error("ResourceNotFound")},
	};

	begin(script, 2);
	assert_ssem(preflight(PRINCIPAL), "SsemUserErrorKeyVaultDetailsNotFound");
	end();
}

static void test_check_access(void **state)
{
	const struct fake_reply script[] = {
	    {.status = 200, .body = vault(VAULT_ID, "", PRINCIPAL, "[\"get\",\"unwrapKey\"]")},
	};
	struct dbx_vault_info v = {.id = VAULT_ID, .policies_known = true};

	begin(script, 1);
	assert_ssem(dbx_keyvault_check_access(C.kv, &v, PRINCIPAL, &C.err),
		    "SsemUserErrorKeyVaultBadRequestException");
	assert_non_null(strstr(C.err.message, "wrapKey"));
	assert_null(strstr(C.err.message, "unwrapKey;"));
	assert_int_equal(C.f.n_calls, 1);
	assert_call(0, VAULT_URL(VAULT_ID), ARM_SCOPE);
	end();

	v.rbac = true; /* RBAC: policies do not apply, nothing is asked */
	begin(script, 1);
	assert_int_equal(dbx_keyvault_check_access(C.kv, &v, PRINCIPAL, &C.err), DBX_OK);
	assert_int_equal(C.f.n_calls, 0);
	end();
}

static void test_identity_principal(void **state)
{
	const struct fake_reply script[] = {
	    {.status = 200,
	     .body =
		 "{\"id\":\"" UAI_ID "\",\"name\":\"uai1\",\"properties\":{\"tenantId\":\"" TENANT
		 "\",\"principalId\":\"" OTHER "\",\"clientId\":\"c\"}}"},
	    {.status = 404, .body = arm_error("ResourceNotFound")},
	    {.status = 200, .body = "{\"properties\":{\"principalId\":3}}"},
	};
	char principal[64];

	begin(script, 3);
	assert_int_equal(
	    dbx_keyvault_identity_principal(C.kv, UAI_ID, principal, sizeof(principal), &C.err),
	    DBX_OK);
	assert_string_equal(principal, OTHER);
	assert_call(0, ARM UAI_ID "?api-version=2023-01-31", ARM_SCOPE);
	assert_ssem(
	    dbx_keyvault_identity_principal(C.kv, UAI_ID, principal, sizeof(principal), &C.err),
	    "SsemUserErrorKekUserIdentityNotFound");
	assert_int_equal(
	    dbx_keyvault_identity_principal(C.kv, UAI_ID, principal, sizeof(principal), &C.err),
	    DBX_EREMOTE);
	assert_string_equal(principal, "");
	end();
}

/* A key URL for another cloud's vault is never contacted. */
static void test_foreign_key_host_not_contacted(void **state)
{
	struct dbx_key_info info;

	begin(NULL, 0);
	snprintf(C.key.host, sizeof(C.key.host), "%s.vault.evil.example.com", VAULT);
	assert_ssem(dbx_keyvault_get_key(C.kv, &C.key, &info, &C.err),
		    "SsemUserErrorKeyVaultUrlInvalidHost");
	assert_int_equal(C.f.n_calls, 0);
	end();
}

/* ---- the preflight's lookups at once ---- */

/*
 * One scripted transport per lookup (ARM's vault lookup, Key Vault, ARM's
 * identity lookup), picked by URL, so each answers its own requests in
 * order whatever thread comes first. With gate set, the GET of the vault's
 * properties waits (really, at most 5 s) for the key GET to arrive: it
 * arrives only when the key is fetched at the same time; overlapped says
 * whether it did.
 */
struct routed {
	struct dbx_transport base;
	struct fake_transport arm, kv, uai;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool gate, gate_passed, kv_arrived, overlapped;
};

static struct routed R;

static enum dbx_err routed_send(struct dbx_transport *self, const struct dbx_http_request *req,
				struct dbx_http_response *resp, struct dbx_error *err)
{
	struct routed *r = (struct routed *)self;
	struct fake_transport *to = &r->arm;

	if (strstr(req->url, ".vault.azure.net/")) {
		pthread_mutex_lock(&r->lock);
		r->kv_arrived = true;
		pthread_cond_broadcast(&r->cond);
		pthread_mutex_unlock(&r->lock);
		to = &r->kv;
	} else if (strstr(req->url, "userAssignedIdentities")) {
		to = &r->uai;
	} else if (strstr(req->url, "/providers/Microsoft.KeyVault/vaults/")) {
		pthread_mutex_lock(&r->lock);
		if (r->gate && !r->gate_passed) {
			struct timespec at;

			clock_gettime(CLOCK_REALTIME, &at);
			at.tv_sec += 5;
			while (!r->kv_arrived &&
			       pthread_cond_timedwait(&r->cond, &r->lock, &at) == 0)
				;
			r->overlapped = r->kv_arrived;
			r->gate_passed = true;
		}
		pthread_mutex_unlock(&r->lock);
	}
	return to->base.send(&to->base, req, resp, err);
}

static void routed_destroy(struct dbx_transport *self)
{
	(void)self;
}

struct script {
	const struct fake_reply *r;
	size_t n;
};

/* C's arm and kv over R, concurrent or one by one. */
static void rbegin(struct script arm, struct script kv, struct script uai, bool concurrent)
{
	memset(&C, 0, sizeof(C));
	memset(&R, 0, sizeof(R));
	fake_transport_init(&R.arm, arm.r, arm.n);
	fake_transport_init(&R.kv, kv.r, kv.n);
	fake_transport_init(&R.uai, uai.r, uai.n);
	pthread_mutex_init(&R.lock, NULL);
	pthread_cond_init(&R.cond, NULL);
	R.base.send = routed_send;
	R.base.destroy = routed_destroy;
	fake_clock_init(&C.fc, START_MS);
	C.arm = dbx_arm_new(&R.base, dbx_cloud_default(), NULL, TIMEOUT_MS, &C.fc.clock);
	assert_non_null(C.arm);
	C.kv = dbx_keyvault_new(C.arm, &R.base, TIMEOUT_MS);
	assert_non_null(C.kv);
	dbx_keyvault_set_concurrent(C.kv, concurrent);
	snprintf(C.key.vault, sizeof(C.key.vault), "%s", VAULT);
	snprintf(C.key.host, sizeof(C.key.host), "%s.vault.azure.net", VAULT);
	snprintf(C.key.name, sizeof(C.key.name), "cmk");
	snprintf(C.key.url, sizeof(C.key.url), "https://%s/keys/cmk", C.key.host);
}

static void rend(void)
{
	dbx_keyvault_free(C.kv);
	dbx_arm_free(C.arm);
	fake_transport_fini(&R.arm);
	fake_transport_fini(&R.kv);
	fake_transport_fini(&R.uai);
	pthread_mutex_destroy(&R.lock);
	pthread_cond_destroy(&R.cond);
}

/* What one preflight run gave. */
struct outcome {
	enum dbx_err rc;
	struct dbx_error err;
	struct dbx_preflight out;
	char principal[128];
	size_t arm_calls, kv_calls, uai_calls;
};

static struct outcome run_preflight(struct script arm, struct script kv, struct script uai,
				    const char *uai_id, bool concurrent)
{
	struct outcome o;

	memset(&o, 0, sizeof(o));
	rbegin(arm, kv, uai, concurrent);
	o.rc = dbx_keyvault_preflight_uai(C.kv, 0, SUB, &C.key, uai_id, uai_id ? NULL : PRINCIPAL,
					  NOW, o.principal, sizeof(o.principal), &o.out, &o.err);
	o.arm_calls = R.arm.n_calls;
	o.kv_calls = R.kv.n_calls;
	o.uai_calls = R.uai.n_calls;
	rend();
	return o;
}

#define S(a) ((struct script){(a), sizeof(a) / sizeof((a)[0])})
#define NONE ((struct script){NULL, 0})

/*
 * Every finding, concurrent and one by one: the same result, Ssem code,
 * message, notes and findings (out), whatever answers first; the identity's
 * failure before the vault's, the vault's before the key's.
 */
static void test_preflight_concurrent_same_outcome(void **state)
{
	const char *uai_body = fake_fmt(
	    "{\"id\":\"" UAI_ID "\",\"name\":\"uai1\",\"properties\":{\"tenantId\":\"" TENANT
	    "\",\"principalId\":\"" OTHER "\",\"clientId\":\"c\"}}");
	const struct fake_reply vault_ok[] = {{.status = 200, .body = resources(VAULT_ID)},
					      {.status = 200, .body = good_vault()}};
	const struct fake_reply vault_for_other[] = {
	    {.status = 200, .body = resources(VAULT_ID)},
	    {.status = 200,
	     .body = vault(VAULT_ID, "\"enableSoftDelete\":true,\"enablePurgeProtection\":true",
			   OTHER, ALL_KEY_PERMS)}};
	const struct fake_reply vault_missing[] = {
	    {.status = 200, .body = no_resources()},
	    {.status = 200, .body = "{\"value\":[{\"subscriptionId\":\"" SUB "\"}]}"}};
	const struct fake_reply vault_weak[] = {
	    {.status = 200, .body = resources(VAULT_ID)},
	    {.status = 200,
	     .body = vault(VAULT_ID, "\"enableSoftDelete\":true", PRINCIPAL, ALL_KEY_PERMS)}};
	const struct fake_reply vault_403[] = {
	    {.status = 200, .body = resources(VAULT_ID)},
	    {.status = 403, .body = arm_error("AuthorizationFailed")}};
	const struct fake_reply arm_500[] = {
	    {.status = 500, .body = arm_error("InternalServerError"), .request_id = "rid-500"}};
	const struct fake_reply key_ok[] = {{.status = 200, .body = good_key()}};
	const struct fake_reply key_404[] = {{.status = 404, .body = arm_error("KeyNotFound")}};
	const struct fake_reply key_403[] = {{.status = 403, .body = arm_error("Forbidden")}};
	const struct fake_reply key_disabled[] = {
	    {.status = 200, .body = key_bundle(KID, "RSA", N_RSA2048, false, 0, 0, "Recoverable")}};
	const struct fake_reply uai_ok[] = {{.status = 200, .body = uai_body}};
	const struct fake_reply uai_404[] = {
	    {.status = 404, .body = arm_error("ResourceNotFound")}};
	const struct {
		const char *what;
		struct script arm, kv, uai;
		const char *uai_id;
		enum dbx_err rc;
		const char *code;
		bool vault_known; /* ARM named the vault: only then is its host contacted */
	} cases[] = {
	    {"all good", S(vault_ok), S(key_ok), NONE, NULL, DBX_OK, "", true},
	    {"vault missing, key missing", S(vault_missing), S(key_404), NONE, NULL, DBX_EINVAL,
	     "SsemUserErrorKeyVaultDetailsNotFound", false},
	    {"no purge protection, key disabled", S(vault_weak), S(key_disabled), NONE, NULL,
	     DBX_EINVAL, "SsemUserErrorSoftDeleteAndPurgeProtectionNotEnabled", true},
	    {"key missing", S(vault_ok), S(key_404), NONE, NULL, DBX_EINVAL,
	     "SsemUserErrorKeyDetailsNotFound", true},
	    {"key disabled", S(vault_ok), S(key_disabled), NONE, NULL, DBX_EINVAL,
	     "SsemUserErrorEncryptionKeyDisabled", true},
	    {"no access for the principal", S(vault_for_other), S(key_ok), NONE, NULL, DBX_EINVAL,
	     "SsemUserErrorKeyVaultBadRequestException", true},
	    {"vault and key not readable", S(vault_403), S(key_403), NONE, NULL, DBX_OK, "", true},
	    {"ARM fails, key disabled", S(arm_500), S(key_disabled), NONE, NULL, DBX_EREMOTE,
	     "InternalServerError", false},
	    {"identity missing, vault missing", S(vault_missing), S(key_ok), S(uai_404), UAI_ID,
	     DBX_EINVAL, "SsemUserErrorKekUserIdentityNotFound", false},
	    {"identity found, access for it", S(vault_for_other), S(key_ok), S(uai_ok), UAI_ID,
	     DBX_OK, "", true},
	    {"identity found, no access for it", S(vault_ok), S(key_ok), S(uai_ok), UAI_ID,
	     DBX_EINVAL, "SsemUserErrorKeyVaultBadRequestException", true},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct outcome at_once, one_by_one;

		print_message("%s\n", cases[i].what);
		at_once =
		    run_preflight(cases[i].arm, cases[i].kv, cases[i].uai, cases[i].uai_id, true);
		one_by_one =
		    run_preflight(cases[i].arm, cases[i].kv, cases[i].uai, cases[i].uai_id, false);
		assert_int_equal(at_once.rc, cases[i].rc);
		assert_string_equal(at_once.err.code, cases[i].code);
		assert_int_equal(one_by_one.rc, at_once.rc);
		assert_int_equal(one_by_one.err.err, at_once.err.err);
		assert_string_equal(one_by_one.err.code, at_once.err.code);
		assert_string_equal(one_by_one.err.message, at_once.err.message);
		assert_int_equal(one_by_one.err.http_status, at_once.err.http_status);
		assert_string_equal(one_by_one.err.request_id, at_once.err.request_id);
		assert_string_equal(one_by_one.out.notes, at_once.out.notes);
		assert_memory_equal(&one_by_one.out.vault, &at_once.out.vault,
				    sizeof(at_once.out.vault));
		assert_memory_equal(&one_by_one.out.key, &at_once.out.key, sizeof(at_once.out.key));
		assert_string_equal(one_by_one.principal, at_once.principal);
		/*
		 * Concurrent: every lookup went out, but the key's host only once ARM
		 * knew the vault; one by one: only those whose check came.
		 */
		/* a missing key costs one list more: the message names the keys there are */
		assert_int_equal(at_once.kv_calls,
				 !cases[i].vault_known ? 0
				 : strcmp(cases[i].code, "SsemUserErrorKeyDetailsNotFound") == 0
				     ? 2
				     : 1);
		assert_true(one_by_one.kv_calls <= at_once.kv_calls);
		if (cases[i].uai_id)
			assert_int_equal(at_once.uai_calls, 1);
		if (cases[i].rc == DBX_OK)
			assert_int_equal(one_by_one.kv_calls, 1);
	}
	/* What a success found: the vault's ID, the versioned key, the identity's principal. */
	{
		struct outcome o =
		    run_preflight(S(vault_for_other), S(key_ok), S(uai_ok), UAI_ID, true);

		assert_int_equal(o.rc, DBX_OK);
		assert_string_equal(o.out.vault.id, VAULT_ID);
		assert_string_equal(o.out.key.kid, KID);
		assert_string_equal(o.principal, OTHER);
		assert_string_equal(o.out.notes, "");
	}
	fake_fmt_free();
}

/* The key GET (and the identity lookup) are in flight while the vault is looked up. */
static void test_preflight_lookups_overlap(void **state)
{
	const struct fake_reply arm[] = {{.status = 200, .body = resources(VAULT_ID)},
					 {.status = 200, .body = good_vault()}};
	const struct fake_reply kv[] = {{.status = 200, .body = good_key()}};
	struct dbx_preflight out;

	(void)state;
	rbegin(S(arm), S(kv), NONE, true);
	R.gate = true;
	assert_int_equal(dbx_keyvault_preflight(C.kv, SUB, &C.key, PRINCIPAL, NOW, &out, &C.err),
			 DBX_OK);
	assert_true(R.gate_passed);
	assert_true(R.overlapped); /* the key GET arrived while the vault lookup waited */
	assert_string_equal(R.arm.calls[0].url, FILTER_URL(SUB));
	assert_string_equal(R.arm.calls[1].url, VAULT_URL(VAULT_ID));
	assert_string_equal(R.kv.calls[0].url, KEY_URL);
	assert_string_equal(R.kv.calls[0].scope, KV_SCOPE);
	rend();
	fake_fmt_free();
}

/*
 * A new user-assigned identity for the key the order has: its principal and
 * the vault's policies for it, at once and one by one, the same outcome.
 */
static void test_check_access_uai_concurrent(void **state)
{
	const char *uai_body = fake_fmt(
	    "{\"id\":\"" UAI_ID "\",\"name\":\"uai1\",\"properties\":{\"tenantId\":\"" TENANT
	    "\",\"principalId\":\"" OTHER "\",\"clientId\":\"c\"}}");
	const struct fake_reply for_other[] = {
	    {.status = 200,
	     .body = vault(VAULT_ID, "\"enableSoftDelete\":true,\"enablePurgeProtection\":true",
			   OTHER, ALL_KEY_PERMS)}};
	const struct fake_reply for_principal[] = {{.status = 200, .body = good_vault()}};
	const struct fake_reply vault_403[] = {
	    {.status = 403, .body = arm_error("AuthorizationFailed")}};
	const struct fake_reply vault_404[] = {
	    {.status = 404, .body = arm_error("ResourceNotFound")}};
	const struct fake_reply uai_ok[] = {{.status = 200, .body = uai_body}};
	const struct fake_reply uai_404[] = {
	    {.status = 404, .body = arm_error("ResourceNotFound")}};
	const struct {
		struct script arm, uai;
		enum dbx_err rc;
		const char *code;
	} cases[] = {
	    {S(for_other), S(uai_ok), DBX_OK, ""},
	    {S(for_principal), S(uai_ok), DBX_EINVAL, "SsemUserErrorKeyVaultBadRequestException"},
	    {S(vault_403), S(uai_ok), DBX_OK, ""},
	    {S(vault_404), S(uai_ok), DBX_EINVAL, "SsemUserErrorKeyVaultDetailsNotFound"},
	    {S(vault_404), S(uai_404), DBX_EINVAL, "SsemUserErrorKekUserIdentityNotFound"},
	    {S(for_other), S(uai_404), DBX_EINVAL, "SsemUserErrorKekUserIdentityNotFound"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct dbx_error e[2];
		char principal[2][64];
		enum dbx_err rc[2];
		size_t arm_calls[2], uai_calls[2];

		for (int seq = 0; seq < 2; seq++) {
			struct dbx_vault_info v = {.soft_delete = true, .policies_known = true};

			snprintf(v.id, sizeof(v.id), "%s", VAULT_ID);
			rbegin(cases[i].arm, NONE, cases[i].uai, seq == 0);
			rc[seq] = dbx_keyvault_check_access_uai(C.kv, 0, &v, UAI_ID, principal[seq],
								sizeof(principal[seq]), &e[seq]);
			arm_calls[seq] = R.arm.n_calls;
			uai_calls[seq] = R.uai.n_calls;
			rend();
		}
		print_message("case %zu\n", i);
		assert_int_equal(rc[0], cases[i].rc);
		assert_string_equal(e[0].code, cases[i].code);
		assert_int_equal(rc[1], rc[0]);
		assert_string_equal(e[1].code, e[0].code);
		assert_string_equal(e[1].message, e[0].message);
		assert_string_equal(principal[1], principal[0]);
		assert_int_equal(arm_calls[0], 1); /* at once: both went out */
		assert_int_equal(uai_calls[0], 1);
		assert_int_equal(uai_calls[1], 1);
		if (cases[i].rc == DBX_OK)
			assert_string_equal(principal[0], OTHER);
	}
	fake_fmt_free();
}

/* The caller's deadline (a write's own) bounds every lookup of the preflight. */
static void test_preflight_takes_the_callers_deadline(void **state)
{
	const struct fake_reply arm[] = {{.status = 200, .body = resources(VAULT_ID)},
					 {.status = 200, .body = good_vault()}};
	const struct fake_reply kv[] = {{.status = 200, .body = good_key()}};
	const uint64_t deadline = START_MS + 1234;
	struct dbx_preflight out;

	(void)state;
	rbegin(S(arm), S(kv), NONE, true);
	assert_int_equal(dbx_keyvault_preflight_uai(C.kv, deadline, SUB, &C.key, NULL, PRINCIPAL,
						    NOW, NULL, 0, &out, &C.err),
			 DBX_OK);
	assert_int_equal(R.arm.n_calls, 2);
	assert_int_equal(R.kv.n_calls, 1);
	assert_int_equal(R.arm.calls[0].deadline_ms, deadline);
	assert_int_equal(R.arm.calls[1].deadline_ms, deadline);
	assert_int_equal(R.kv.calls[0].deadline_ms, deadline);
	rend();

	/* Past it: nothing is sent, ETIMEDOUT. */
	rbegin(S(arm), S(kv), NONE, true);
	assert_int_equal(dbx_keyvault_preflight_uai(C.kv, START_MS, SUB, &C.key, NULL, PRINCIPAL,
						    NOW, NULL, 0, &out, &C.err),
			 DBX_ETIMEDOUT);
	assert_int_equal(R.arm.n_calls + R.kv.n_calls, 0);
	rend();
	fake_fmt_free();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_happy_path),
	    cmocka_unit_test(test_versioned_rsa_hsm_3072),
	    cmocka_unit_test(test_leading_zero_bytes_stripped),
	    cmocka_unit_test(test_vault_in_second_subscription),
	    cmocka_unit_test(test_resources_next_page),
	    cmocka_unit_test(test_vault_not_found),
	    cmocka_unit_test(test_soft_delete_off),
	    cmocka_unit_test(test_purge_protection_absent),
	    cmocka_unit_test(test_key_not_found),
	    cmocka_unit_test(test_key_disabled),
	    cmocka_unit_test(test_key_expired),
	    cmocka_unit_test(test_key_not_yet_valid),
	    cmocka_unit_test(test_key_rsa_1024),
	    cmocka_unit_test(test_key_rsa_2047),
	    cmocka_unit_test(test_key_ec),
	    cmocka_unit_test(test_key_not_found_names_the_keys),
	    cmocka_unit_test(test_key_ops_without_unwrap),
	    cmocka_unit_test(test_access_missing_permissions),
	    cmocka_unit_test(test_access_other_principal),
	    cmocka_unit_test(test_access_all),
	    cmocka_unit_test(test_access_case_insensitive),
	    cmocka_unit_test(test_rbac_vault_no_access_check),
	    cmocka_unit_test(test_access_compound_identity_ignored),
	    cmocka_unit_test(test_access_policies_add_up),
	    cmocka_unit_test(test_subscription_403_search_goes_on),
	    cmocka_unit_test(test_vault_403_noted),
	    cmocka_unit_test(test_vault_403_recovery_level_purgeable),
	    cmocka_unit_test(test_key_403_noted),
	    cmocka_unit_test(test_no_principal_noted),
	    cmocka_unit_test(test_failures_propagate),
	    cmocka_unit_test(test_one_deadline_for_the_preflight),
	    cmocka_unit_test(test_malformed_key),
	    cmocka_unit_test(test_key_fields_named),
	    cmocka_unit_test(test_malformed_vault_and_list),
	    cmocka_unit_test(test_malformed_policies),
	    cmocka_unit_test(test_huge_modulus),
	    cmocka_unit_test(test_next_link_foreign_host_refused),
	    cmocka_unit_test(test_next_link_same_host_spellings),
	    cmocka_unit_test(test_resources_next_link_seen_twice),
	    cmocka_unit_test(test_subscriptions_next_link_seen_twice),
	    cmocka_unit_test(test_subscription_without_id_skipped),
	    cmocka_unit_test(test_find_vault_alone),
	    cmocka_unit_test(test_vault_404_after_list),
	    cmocka_unit_test(test_check_access),
	    cmocka_unit_test(test_identity_principal),
	    cmocka_unit_test(test_foreign_key_host_not_contacted),
	    cmocka_unit_test(test_preflight_concurrent_same_outcome),
	    cmocka_unit_test(test_preflight_lookups_overlap),
	    cmocka_unit_test(test_preflight_takes_the_callers_deadline),
	    cmocka_unit_test(test_check_access_uai_concurrent),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
