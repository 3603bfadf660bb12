/*
 * test_catalogue_lists.c: the listings behind the catalogue (docs/formats.md,
 * "The catalogue") over the scripted fake transport: ARM's vault, identity
 * and subscription-name lists (arm.h) and Key Vault's key and version lists
 * and create key (keyvault.h).
 *
 * Asserted: the URLs, api-versions and token scopes sent; every page
 * followed through nextLink; items parsed strictly (a wrong-typed field is
 * DBX_EREMOTE "malformed" naming it, never an absent value); a Key Vault
 * nextLink off the vault's host never followed; a 403 coming back as
 * DBX_EACCES with the service's words; create's body and its refusals
 * before anything is sent.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "databoxfs/arm.h"
#include "databoxfs/keyvault.h"
#include "fake_transport.h"

#define ARM	    "https://management.azure.com"
#define ARM_SCOPE   "https://management.azure.com/.default"
#define VAULT_SCOPE "https://vault.azure.net/.default"
#define SUB	    "11111111-1111-4111-8111-111111111111"
#define KV	    "https://contosovault.vault.azure.net"
#define V1	    "0123456789abcdef0123456789abcdef"
#define V2	    "fedcba9876543210fedcba9876543210"
#define VAULT_ID                                                                                   \
	"/subscriptions/" SUB "/resourceGroups/rg-keys/providers/Microsoft.KeyVault/vaults/"       \
	"contosovault"
#define UAI_ID                                                                                     \
	"/subscriptions/" SUB                                                                      \
	"/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/uai1"

struct env {
	struct fake_transport ft;
	struct fake_clock fc;
	struct dbx_arm *arm;
	struct dbx_keyvault *kv;
	struct dbx_error err;
	char seen[8][200];
	size_t n;
};

static void env_init(struct env *e, const struct fake_reply *script, size_t n)
{
	memset(e, 0, sizeof(*e));
	fake_transport_init(&e->ft, script, n);
	fake_clock_init(&e->fc, 5000);
	e->arm = dbx_arm_new(&e->ft.base, dbx_cloud_default(), NULL, 30000, &e->fc.clock);
	assert_non_null(e->arm);
	e->kv = dbx_keyvault_new(e->arm, &e->ft.base, 30000);
	assert_non_null(e->kv);
}

static void env_fini(struct env *e)
{
	dbx_keyvault_free(e->kv);
	dbx_arm_free(e->arm);
	fake_transport_fini(&e->ft);
	fake_fmt_free();
}

static void note(struct env *e, const char *fmt, ...)
{
	va_list ap;

	assert_true(e->n < 8);
	va_start(ap, fmt);
	vsnprintf(e->seen[e->n++], sizeof(e->seen[0]), fmt, ap);
	va_end(ap);
}

static int on_vault(void *ctx, const char *id, const char *name, const struct dbx_arm_vault *p)
{
	note(ctx, "%s %s soft=%d purge=%d rbac=%d", name, id, p->soft_delete, p->purge_protection,
	     p->rbac);
	return 0;
}

static int on_identity(void *ctx, const struct dbx_arm_identity *u)
{
	note(ctx, "%s %s p=%s c=%s", u->name, u->id, u->principal_id, u->client_id);
	return 0;
}

static int on_sub(void *ctx, const char *id, const char *name)
{
	note(ctx, "%s=%s", id, name);
	return 0;
}

static int on_key(void *ctx, const struct dbx_key_version *k)
{
	note(ctx, "%s enabled=%d exp=%lld", k->name, k->enabled, (long long)k->exp);
	return 0;
}

static void test_list_vaults_paged(void **state)
{
	struct env e;
	const struct fake_reply script[] = {
	    {.status = 200,
	     .body = "{\"value\":[{\"id\":\"" VAULT_ID "\",\"name\":\"contosovault\","
		     "\"properties\":{\"enableSoftDelete\":true,\"enablePurgeProtection\":true,"
		     "\"accessPolicies\":[]}}],\"nextLink\":\"" ARM "/next1\"}"},
	    {.status = 200,
	     .body = "{\"value\":[{\"id\":\"" VAULT_ID "2\",\"name\":\"contosovault2\","
		     "\"properties\":{\"enableRbacAuthorization\":true}}]}"},
	};

	(void)state;
	env_init(&e, script, 2);
	assert_int_equal(dbx_arm_list_vaults(e.arm, SUB, on_vault, &e, &e.err), DBX_OK);
	assert_int_equal(e.n, 2);
	assert_string_equal(e.seen[0], "contosovault " VAULT_ID " soft=1 purge=1 rbac=0");
	/* absent: soft delete on (the service's default), purge protection off */
	assert_string_equal(e.seen[1], "contosovault2 " VAULT_ID "2 soft=1 purge=0 rbac=1");
	assert_string_equal(e.ft.calls[0].url,
			    ARM "/subscriptions/" SUB "/providers/Microsoft.KeyVault/vaults"
				"?api-version=2024-11-01");
	assert_string_equal(e.ft.calls[0].scope, ARM_SCOPE);
	assert_string_equal(e.ft.calls[1].url, ARM "/next1");
	env_fini(&e);
}

static void test_list_vaults_wrong_type(void **state)
{
	struct env e;
	const struct fake_reply script[] = {
	    {.status = 200,
	     .body = "{\"value\":[{\"id\":\"" VAULT_ID "\",\"name\":\"contosovault\","
		     "\"properties\":{\"enablePurgeProtection\":\"yes\"}}]}"},
	};

	(void)state;
	env_init(&e, script, 1);
	assert_int_equal(dbx_arm_list_vaults(e.arm, SUB, on_vault, &e, &e.err), DBX_EREMOTE);
	assert_int_equal(e.n, 0);
	assert_non_null(strstr(e.err.message, "malformed"));
	assert_non_null(strstr(e.err.message, "properties.enablePurgeProtection"));
	env_fini(&e);
}

static void test_list_identities(void **state)
{
	struct env e;
	const struct fake_reply script[] = {
	    {.status = 200,
	     .body = "{\"value\":[{\"id\":\"" UAI_ID "\",\"name\":\"uai1\",\"properties\":"
		     "{\"principalId\":\"p-1\",\"clientId\":\"c-1\",\"tenantId\":\"t\"}}],"
		     "\"nextLink\":\"" ARM "/n2\"}"},
	    {.status = 200,
	     .body = "{\"value\":[{\"id\":\"" UAI_ID "\",\"name\":\"uai1\",\"properties\":"
		     "{\"principalId\":7}}]}"},
	};

	(void)state;
	env_init(&e, script, 2);
	assert_int_equal(dbx_arm_list_identities(e.arm, SUB, on_identity, &e, &e.err), DBX_EREMOTE);
	assert_int_equal(e.n, 1);
	assert_string_equal(e.seen[0], "uai1 " UAI_ID " p=p-1 c=c-1");
	assert_string_equal(e.ft.calls[0].url,
			    ARM "/subscriptions/" SUB "/providers/Microsoft.ManagedIdentity/"
				"userAssignedIdentities?api-version=2023-01-31");
	assert_non_null(strstr(e.err.message, "value[].properties.principalId"));
	env_fini(&e);
}

static void test_subscription_names(void **state)
{
	struct env e;
	const struct fake_reply script[] = {
	    {.status = 200,
	     .body = "{\"value\":[{\"subscriptionId\":\"" SUB "\",\"displayName\":\"Prod/EU\"},"
		     "{\"subscriptionId\":\"s2\"}]}"},
	    {.status = 200, .body = "{\"value\":[{\"subscriptionId\":\"s3\",\"displayName\":1}]}"},
	};

	(void)state;
	env_init(&e, script, 2);
	assert_int_equal(dbx_arm_list_subscription_names(e.arm, on_sub, &e, &e.err), DBX_OK);
	assert_int_equal(e.n, 2);
	assert_string_equal(e.seen[0], SUB "=Prod/EU");
	assert_string_equal(e.seen[1], "s2="); /* absent: "" */
	e.n = 0;
	assert_int_equal(dbx_arm_list_subscription_names(e.arm, on_sub, &e, &e.err), DBX_EREMOTE);
	assert_non_null(strstr(e.err.message, "value[].displayName"));
	env_fini(&e);
}

static void test_list_keys_paged(void **state)
{
	struct env e;
	const struct fake_reply script[] = {
	    {.status = 200,
	     .body = "{\"value\":[{\"kid\":\"" KV "/keys/cmk\",\"attributes\":{\"enabled\":true,"
		     "\"exp\":1900000000}}],\"nextLink\":\"" KV
		     ":443/keys?api-version=7.4&$skiptoken=2&maxresults=1\"}"},
	    {.status = 200,
	     .body =
		 "{\"value\":[{\"kid\":\"" KV "/keys/old\",\"attributes\":{\"enabled\":false}}],"
		 "\"nextLink\":null}"},
	};

	(void)state;
	env_init(&e, script, 2);
	assert_int_equal(dbx_keyvault_list_keys(e.kv, "contosovault", on_key, &e, &e.err), DBX_OK);
	assert_int_equal(e.n, 2);
	assert_string_equal(e.seen[0], "cmk enabled=1 exp=1900000000");
	assert_string_equal(e.seen[1], "old enabled=0 exp=0");
	assert_string_equal(e.ft.calls[0].url, KV "/keys?api-version=7.4&maxresults=25");
	assert_string_equal(e.ft.calls[0].scope, VAULT_SCOPE);
	assert_string_equal(e.ft.calls[1].url,
			    KV ":443/keys?api-version=7.4&$skiptoken=2&maxresults=1");
	env_fini(&e);
}

static void test_list_versions_strict(void **state)
{
	struct env e;
	const struct fake_reply script[] = {
	    {.status = 200,
	     .body = "{\"value\":[{\"kid\":\"" KV "/keys/cmk/" V1 "\",\"attributes\":"
		     "{\"enabled\":true}},{\"kid\":\"" KV "/keys/cmk/" V2 "\",\"attributes\":"
		     "{\"enabled\":true,\"exp\":\"soon\"}}]}"},
	    {.status = 200,
	     .body = "{\"value\":[],\"nextLink\":\"https://evil.example/keys?x=1\"}"},
	    {.status = 200,
	     .body = "{\"value\":[{\"kid\":\"" KV "/keys/other/" V1 "\",\"attributes\":"
		     "{\"enabled\":true}}]}"},
	};

	(void)state;
	env_init(&e, script, 3);
	assert_int_equal(
	    dbx_keyvault_list_versions(e.kv, "contosovault", "cmk", on_key, &e, &e.err),
	    DBX_EREMOTE);
	assert_int_equal(e.n, 1);
	assert_string_equal(e.seen[0], V1 " enabled=1 exp=0");
	assert_non_null(strstr(e.err.message, "value[].attributes.exp"));
	assert_string_equal(e.ft.calls[0].url,
			    KV "/keys/cmk/versions?api-version=7.4&maxresults=25");
	/* a nextLink to another host is never followed: the vault token would go with it */
	assert_int_equal(
	    dbx_keyvault_list_versions(e.kv, "contosovault", "cmk", on_key, &e, &e.err),
	    DBX_EREMOTE);
	assert_non_null(strstr(e.err.message, "nextLink off the vault's host"));
	assert_int_equal(e.ft.n_calls, 2);
	/* a kid of another key is not a version of this one */
	assert_int_equal(
	    dbx_keyvault_list_versions(e.kv, "contosovault", "cmk", on_key, &e, &e.err),
	    DBX_EREMOTE);
	assert_non_null(strstr(e.err.message, "not a version of the key"));
	env_fini(&e);
}

static void test_list_keys_denied(void **state)
{
	struct env e;
	const struct fake_reply script[] = {
	    {.status = 403,
	     .body = "{\"error\":{\"code\":\"Forbidden\",\"message\":\"The user, group or "
		     "application does not have keys list permission\"}}"},
	};

	(void)state;
	env_init(&e, script, 1);
	assert_int_equal(dbx_keyvault_list_keys(e.kv, "contosovault", on_key, &e, &e.err),
			 DBX_EACCES);
	assert_int_equal(e.err.http_status, 403);
	assert_non_null(strstr(e.err.message, "keys list permission"));
	assert_int_equal(dbx_keyvault_list_keys(e.kv, "not a vault!", on_key, &e, &e.err),
			 DBX_EINVAL);
	assert_int_equal(e.ft.n_calls, 1); /* nothing sent for a bad vault name */
	env_fini(&e);
}

static void test_create_key(void **state)
{
	struct env e;
	struct dbx_key_info info;
	const struct fake_reply script[] = {
	    {.status = 200,
	     .body = "{\"key\":{\"kid\":\"" KV "/keys/newkey/" V1 "\",\"kty\":\"RSA\","
		     "\"key_ops\":[\"wrapKey\",\"unwrapKey\"],\"n\":\"AQAB\",\"e\":\"AQAB\"},"
		     "\"attributes\":{\"enabled\":true}}"},
	};

	(void)state;
	env_init(&e, script, 1);
	assert_int_equal(
	    dbx_keyvault_create_key(e.kv, "contosovault", "newkey", 3072, &info, &e.err), DBX_OK);
	assert_string_equal(e.ft.calls[0].method, "POST");
	assert_string_equal(e.ft.calls[0].url, KV "/keys/newkey/create?api-version=7.4");
	assert_string_equal(e.ft.calls[0].scope, VAULT_SCOPE);
	assert_string_equal(e.ft.calls[0].body, "{\"kty\":\"RSA\",\"key_size\":3072,"
						"\"key_ops\":[\"wrapKey\",\"unwrapKey\"]}");
	assert_string_equal(info.kid, KV "/keys/newkey/" V1);
	assert_true(info.ops_known);
	assert_int_equal(info.ops, DBX_KEY_OP_WRAP | DBX_KEY_OP_UNWRAP);
	assert_int_equal(
	    dbx_keyvault_create_key(e.kv, "contosovault", "bad_name", 3072, &info, &e.err),
	    DBX_EINVAL);
	assert_int_equal(dbx_keyvault_create_key(e.kv, "contosovault", "ok", 1024, &info, &e.err),
			 DBX_EINVAL);
	assert_int_equal(e.ft.n_calls, 1);
	env_fini(&e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_list_vaults_paged), cmocka_unit_test(test_list_vaults_wrong_type),
	    cmocka_unit_test(test_list_identities),   cmocka_unit_test(test_subscription_names),
	    cmocka_unit_test(test_list_keys_paged),   cmocka_unit_test(test_list_versions_strict),
	    cmocka_unit_test(test_list_keys_denied),  cmocka_unit_test(test_create_key),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
