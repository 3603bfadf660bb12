/*
 * test_arm_lookup.c: the one paging loop of arm.c under every listing, and
 * the lookups the Key Vault preflight makes through ARM (arm.h), over the
 * scripted fake transport.
 *
 * The listing rules are asserted on each listing that uses them: jobs,
 * subscriptions, and Resources - List in the vault search (with its
 * subscription listing): a nextLink seen twice ends the listing as
 * malformed, a listing stops at 10,000 pages, and the vault search pages
 * as far as the jobs do. The lookups are asserted on what the preflight
 * builds on: the requests sent (URL, api-version, scope, the caller's
 * deadline), and what a failure reports (DBX_E*, HTTP status, message).
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
#include "fake_transport.h"

#define ARM	   "https://management.azure.com"
#define SCOPE	   "https://management.azure.com/.default"
#define SUB	   "11111111-1111-4111-8111-111111111111"
#define SUB2	   "22222222-2222-4222-8222-222222222222"
#define VAULT	   "contosovault"
#define START_MS   5000u
#define TIMEOUT_MS 30000u
#define DEADLINE   77000u /* the caller's, unrelated to TIMEOUT_MS */
#define MAX_PAGES  10000

#define JOBS_URL                                                                                   \
	ARM "/subscriptions/" SUB "/providers/Microsoft.DataBox/jobs?api-version=2025-07-01"
#define SUBS_URL ARM "/subscriptions?api-version=2022-12-01"
#define FILTER_URL(s)                                                                              \
	ARM "/subscriptions/" s                                                                    \
	    "/resources?$filter=resourceType%20eq%20%27Microsoft.KeyVault%2Fvaults"                \
	    "%27%20and%20name%20eq%20%27" VAULT "%27&api-version=2021-04-01"
#define VAULT_ID(s)                                                                                \
	"/subscriptions/" s                                                                        \
	"/resourceGroups/RG-Keys/providers/Microsoft.KeyVault/vaults/ContosoVault"
#define UAI_ID                                                                                     \
	"/subscriptions/" SUB                                                                      \
	"/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/uai1"
#define VAULT_ITEM(s)                                                                              \
	"{\"id\":\"" VAULT_ID(s) "\",\"name\":\"ContosoVault\","                                   \
				 "\"type\":\"Microsoft.KeyVault/vaults\"}"

struct env {
	struct fake_transport ft;
	struct fake_clock fc;
	struct dbx_arm *arm;
	struct dbx_error err;
	char id[DBX_ARM_ID_MAX];
	bool found, denied;
	/* a generated script (long listings), freed by env_fini */
	struct fake_reply *script;
	char **bodies;
	size_t n_bodies;
};

static void env_init(struct env *e, const struct fake_reply *script, size_t n)
{
	memset(e, 0, sizeof(*e));
	fake_transport_init(&e->ft, script, n);
	fake_clock_init(&e->fc, START_MS);
	e->arm = dbx_arm_new(&e->ft.base, dbx_cloud_default(), NULL, TIMEOUT_MS, &e->fc.clock);
	assert_non_null(e->arm);
}

static void env_fini(struct env *e)
{
	dbx_arm_free(e->arm);
	fake_transport_fini(&e->ft);
	for (size_t i = 0; i < e->n_bodies; i++)
		free(e->bodies[i]);
	free(e->bodies);
	free(e->script);
	fake_fmt_free();
}

/*
 * A script of n pages of one listing: page i holds item (may be "") and
 * links to ARM/p<i+1>; the last page links on only when link_last. Replies
 * after the pages follow from tail[0..n_tail-1].
 */
static void env_init_pages(struct env *e, size_t n, const char *item, bool link_last,
			   const struct fake_reply *tail, size_t n_tail)
{
	struct fake_reply *script = calloc(n + n_tail, sizeof(*script));
	char **bodies = calloc(n, sizeof(*bodies));

	assert_non_null(script);
	assert_non_null(bodies);
	for (size_t i = 0; i < n; i++) {
		if (i + 1 < n || link_last)
			assert_true(asprintf(&bodies[i],
					     "{\"value\":[%s],\"nextLink\":\"" ARM "/p%zu\"}", item,
					     i + 1) > 0);
		else
			assert_true(asprintf(&bodies[i], "{\"value\":[%s]}", item) > 0);
		script[i].status = 200;
		script[i].body = bodies[i];
	}
	for (size_t i = 0; i < n_tail; i++)
		script[n + i] = tail[i];
	env_init(e, script, n + n_tail);
	e->script = script;
	e->bodies = bodies;
	e->n_bodies = n;
}

static void assert_call(const struct env *e, size_t i, const char *url, uint64_t deadline)
{
	assert_true(i < e->ft.n_calls);
	assert_string_equal(e->ft.calls[i].method, "GET");
	assert_string_equal(e->ft.calls[i].url, url);
	assert_string_equal(e->ft.calls[i].scope, SCOPE);
	assert_int_equal(e->ft.calls[i].deadline_ms, deadline);
}

/* The listing ended as malformed because a nextLink came back. */
static void assert_repeat_refused(const struct env *e, enum dbx_err rc)
{
	assert_int_equal(rc, DBX_EREMOTE);
	assert_int_equal(e->err.err, DBX_EREMOTE);
	assert_non_null(strstr(e->err.message, "malformed"));
	assert_non_null(strstr(e->err.message, "nextLink repeats an earlier page"));
	assert_int_equal(e->err.http_status, 200); /* the page that repeated, for a ticket */
	assert_string_equal(e->err.code, "");
}

/* The listing ended at the page cap. */
static void assert_cap_refused(const struct env *e, enum dbx_err rc)
{
	assert_int_equal(rc, DBX_EREMOTE);
	assert_int_equal(e->err.err, DBX_EREMOTE);
	assert_non_null(strstr(e->err.message, "more than 10000 pages"));
	assert_int_equal(e->ft.next, MAX_PAGES); /* page 10,001 is never asked for */
}

static int count_job(void *ctx, struct dbx_order *order)
{
	(*(size_t *)ctx)++;
	dbx_order_free(order);
	return 0;
}

static int count_sub(void *ctx, const char *id)
{
	(void)id;
	(*(size_t *)ctx)++;
	return 0;
}

static enum dbx_err find_vault(struct env *e, const char *subscription)
{
	return dbx_arm_find_vault(e->arm, subscription, VAULT, DEADLINE, e->id, sizeof(e->id),
				  &e->found, &e->denied, &e->err);
}

/* ---- a nextLink seen twice, on each listing ---- */

static void test_subscriptions_next_link_seen_twice(void **state)
{
	const struct fake_reply script[] = {
	    {.status = 200,
	     .body = "{\"value\":[{\"subscriptionId\":\"" SUB "\"}],\"nextLink\":\"" SUBS_URL "\"}",
	     .request_id = "rid-1"},
	};
	struct env e;
	size_t n = 0;

	(void)state;
	env_init(&e, script, 1);
	assert_repeat_refused(&e, dbx_arm_list_subscriptions(e.arm, count_sub, &n, &e.err));
	assert_int_equal(e.ft.n_calls, 1);
	assert_string_equal(e.err.request_id, "rid-1");
	assert_int_equal(n, 1); /* delivered before the loop showed: "listing incomplete" */
	env_fini(&e);
}

static void test_jobs_next_link_seen_twice_later(void **state)
{
	const struct fake_reply script[] = {
	    {.status = 200, .body = "{\"value\":[],\"nextLink\":\"" ARM "/p1\"}"},
	    {.status = 200, .body = "{\"value\":[],\"nextLink\":\"" ARM "/p2\"}"},
	    {.status = 200, .body = "{\"value\":[],\"nextLink\":\"" ARM "/p3\"}"},
	    {.status = 200, .body = "{\"value\":[],\"nextLink\":\"" ARM "/p1\"}"},
	};
	struct env e;
	size_t n = 0;

	(void)state;
	env_init(&e, script, 4);
	assert_repeat_refused(&e, dbx_arm_list_jobs(e.arm, SUB, NULL, count_job, &n, &e.err));
	assert_int_equal(e.ft.n_calls, 4);
	env_fini(&e);
}

/* Resources - List in the vault search: a loop in the order's subscription. */
static void test_resources_next_link_seen_twice(void **state)
{
	const char *p2 =
	    ARM "/subscriptions/" SUB "/resources?api-version=2021-04-01&%24skiptoken=2";
	const struct fake_reply script[] = {
	    {.status = 200, .body = fake_fmt("{\"value\":[],\"nextLink\":\"%s\"}", p2)},
	    {.status = 200, .body = fake_fmt("{\"value\":[],\"nextLink\":\"%s\"}", p2)},
	    {.status = 200, .body = "{\"value\":[" VAULT_ITEM(SUB) "]}"},
	};
	struct env e;

	(void)state;
	env_init(&e, script, 3);
	assert_repeat_refused(&e, find_vault(&e, SUB));
	assert_false(e.found);
	assert_int_equal(e.ft.n_calls, 2);
	assert_call(&e, 0, FILTER_URL(SUB), DEADLINE);
	assert_call(&e, 1, p2, DEADLINE);
	env_fini(&e);

	/* Back to the first URL, in another subscription's search. */
	const struct fake_reply script2[] = {
	    {.status = 200, .body = "{\"value\":[]}"},
	    {.status = 200, .body = "{\"value\":[{\"subscriptionId\":\"" SUB2 "\"}]}"},
	    {.status = 200,
	     .body = fake_fmt("{\"value\":[],\"nextLink\":\"%s\"}", FILTER_URL(SUB2))},
	};

	env_init(&e, script2, 3);
	assert_repeat_refused(&e, find_vault(&e, SUB));
	assert_int_equal(e.ft.n_calls, 3);
	assert_call(&e, 2, FILTER_URL(SUB2), DEADLINE);
	env_fini(&e);
}

/* The subscription listing of the vault search runs on the same loop. */
static void test_vault_search_subscriptions_seen_twice(void **state)
{
	const struct fake_reply script[] = {
	    {.status = 200, .body = "{\"value\":[]}"},
	    {.status = 200,
	     .body = "{\"value\":[{\"subscriptionId\":\"" SUB2 "\"}],\"nextLink\":\"" ARM
		     "/subscriptions?api-version=2022-12-01&%24skiptoken=2\"}"},
	    {.status = 200,
	     .body = "{\"value\":[],\"nextLink\":\"" ARM
		     "/subscriptions?api-version=2022-12-01&%24skiptoken=2\"}"},
	};
	struct env e;

	(void)state;
	env_init(&e, script, 3);
	assert_repeat_refused(&e, find_vault(&e, SUB));
	assert_int_equal(e.ft.n_calls, 3);
	assert_call(&e, 1, SUBS_URL, DEADLINE);
	env_fini(&e); /* SUB2 was never searched: the listing was incomplete */
}

/* ---- the page cap, on each listing ---- */

static void test_jobs_page_cap(void **state)
{
	struct env e;
	size_t n = 0;

	(void)state;
	env_init_pages(&e, MAX_PAGES, "", true, NULL, 0);
	assert_cap_refused(&e, dbx_arm_list_jobs(e.arm, SUB, NULL, count_job, &n, &e.err));
	assert_call(&e, 0, JOBS_URL, START_MS + TIMEOUT_MS);
	assert_call(&e, 1, ARM "/p1", START_MS + TIMEOUT_MS);
	env_fini(&e);

	/* 10,000 pages that end are a listing. */
	env_init_pages(&e, MAX_PAGES, "", false, NULL, 0);
	assert_int_equal(dbx_arm_list_jobs(e.arm, SUB, NULL, count_job, &n, &e.err), DBX_OK);
	assert_int_equal(e.ft.next, MAX_PAGES);
	env_fini(&e);
}

static void test_subscriptions_page_cap(void **state)
{
	struct env e;
	size_t n = 0;

	(void)state;
	env_init_pages(&e, MAX_PAGES, "{\"subscriptionId\":\"s\"}", true, NULL, 0);
	assert_cap_refused(&e, dbx_arm_list_subscriptions(e.arm, count_sub, &n, &e.err));
	assert_int_equal(n, MAX_PAGES);
	env_fini(&e);
}

static void test_resources_page_cap(void **state)
{
	struct env e;

	(void)state;
	env_init_pages(&e, MAX_PAGES, "", true, NULL, 0);
	assert_cap_refused(&e, find_vault(&e, SUB));
	assert_false(e.found);
	env_fini(&e);
}

/* The vault search pages as far as the jobs do (its own loop stopped at 1000 pages). */
static void test_vault_on_page_1500(void **state)
{
	const struct fake_reply tail[] = {
	    {.status = 200, .body = "{\"value\":[" VAULT_ITEM(SUB) "]}"},
	};
	struct env e;

	(void)state;
	env_init_pages(&e, 1500, "", true, tail, 1);
	assert_int_equal(find_vault(&e, SUB), DBX_OK);
	assert_true(e.found);
	assert_string_equal(e.id, VAULT_ID(SUB));
	assert_int_equal(e.ft.next, 1501);
	assert_call(&e, 1, ARM "/p1", DEADLINE);
	env_fini(&e);
}

/* ---- the vault search ---- */

/* A listing of vaults that spans pages, in the second subscription listed. */
static void test_find_vault_across_pages_and_subscriptions(void **state)
{
	const struct fake_reply script[] = {
	    {.status = 200, .body = "{\"value\":[]}"},
	    {.status = 200,
	     .body = "{\"value\":[{\"subscriptionId\":\"" SUB "\"}],\"nextLink\":\"" ARM
		     "/subscriptions?api-version=2022-12-01&%24skiptoken=2\"}"},
	    {.status = 200, .body = "{\"value\":[{\"subscriptionId\":\"" SUB2 "\"}]}"},
	    {.status = 200,
	     .body = "{\"value\":[{\"id\":\"/subscriptions/" SUB2
		     "/resourceGroups/r/providers/Microsoft.Storage/storageAccounts/contosovault\","
		     "\"name\":\"contosovault\",\"type\":\"Microsoft.Storage/storageAccounts\"}],"
		     "\"nextLink\":\"" ARM "/subscriptions/" SUB2 "/resources?%24skiptoken=2\"}"},
	    {.status = 200, .body = "{\"value\":[" VAULT_ITEM(SUB2) "]}"},
	};
	struct env e;

	(void)state;
	env_init(&e, script, 5);
	assert_int_equal(find_vault(&e, SUB), DBX_OK);
	assert_true(e.found);
	assert_false(e.denied);
	assert_string_equal(e.id, VAULT_ID(SUB2)); /* as ARM spells it */
	assert_int_equal(e.ft.n_calls, 5);
	assert_call(&e, 0, FILTER_URL(SUB), DEADLINE);
	assert_call(&e, 1, SUBS_URL, DEADLINE);
	assert_call(&e, 2, ARM "/subscriptions?api-version=2022-12-01&%24skiptoken=2", DEADLINE);
	/* SUB, searched first, is not searched again */
	assert_call(&e, 3, FILTER_URL(SUB2), DEADLINE);
	assert_call(&e, 4, ARM "/subscriptions/" SUB2 "/resources?%24skiptoken=2", DEADLINE);
	env_fini(&e);
}

/* Not found anywhere is not an error here: the preflight picks the Ssem code. */
static void test_find_vault_not_found_and_denied(void **state)
{
	const struct fake_reply script[] = {
	    {.status = 403,
	     .body = "{\"error\":{\"code\":\"AuthorizationFailed\",\"message\":\"no\"}}"},
	    {.status = 200,
	     .body = "{\"value\":[{\"subscriptionId\":\"" SUB "\"},{\"subscriptionId\":\"" SUB2
		     "\"}]}"},
	    {.status = 404,
	     .body = "{\"error\":{\"code\":\"SubscriptionNotFound\",\"message\":\"x\"}}"},
	};
	struct env e;

	(void)state;
	env_init(&e, script, 3);
	assert_int_equal(find_vault(&e, SUB), DBX_OK);
	assert_false(e.found);
	assert_true(e.denied);
	assert_int_equal(e.err.err, DBX_OK);
	assert_int_equal(e.ft.n_calls, 3);
	env_fini(&e);
}

/* Only the first page's refusal means "not here": a 403 on page two is the search's failure. */
static void test_find_vault_refused_later_page(void **state)
{
	const struct fake_reply script[] = {
	    {.status = 200, .body = "{\"value\":[],\"nextLink\":\"" ARM "/p1\"}"},
	    {.status = 403,
	     .body = "{\"error\":{\"code\":\"AuthorizationFailed\",\"message\":\"no list\"}}",
	     .request_id = "rid-403"},
	};
	struct env e;

	(void)state;
	env_init(&e, script, 2);
	assert_int_equal(find_vault(&e, SUB), DBX_EACCES);
	assert_int_equal(e.err.http_status, 403);
	assert_string_equal(e.err.code, "AuthorizationFailed");
	assert_string_equal(e.err.request_id, "rid-403");
	assert_int_equal(e.ft.n_calls, 2);
	env_fini(&e);
}

/* ---- the vault's properties ---- */

static void test_get_vault(void **state)
{
	const struct fake_reply script[] = {
	    {.status = 200,
	     .body = "{\"id\":\"" VAULT_ID(
		 SUB) "\",\"properties\":{\"tenantId\":\"t1\","
		      "\"enablePurgeProtection\":true,\"accessPolicies\":["
		      "{\"objectId\":\"o1\",\"permissions\":{\"keys\":[\"Get\",\"wrapKey\"]}},"
		      "{\"objectId\":\"o2\",\"applicationId\":\"a\",\"permissions\":{\"keys\":"
		      "[\"all\"]}},"
		      "{\"objectId\":\"o3\",\"permissions\":{\"secrets\":[\"get\"]}}]}}"},
	};
	struct env e;
	struct dbx_arm_vault v;

	(void)state;
	env_init(&e, script, 1);
	assert_int_equal(dbx_arm_get_vault(e.arm, VAULT_ID(SUB), DEADLINE, &v, &e.err), DBX_OK);
	assert_call(&e, 0, ARM VAULT_ID(SUB) "?api-version=2024-11-01", DEADLINE);
	assert_string_equal(v.tenant_id, "t1");
	assert_true(v.soft_delete); /* absent: on */
	assert_true(v.purge_protection);
	assert_false(v.rbac);
	assert_true(v.policies_ok);
	assert_int_equal(v.n_policies, 3);
	assert_string_equal(v.policies[0].object_id, "o1");
	assert_int_equal(v.policies[0].key_perms, DBX_ARM_KEY_GET | DBX_ARM_KEY_WRAP);
	assert_false(v.policies[0].application);
	assert_true(v.policies[1].application);
	assert_int_equal(v.policies[1].key_perms,
			 DBX_ARM_KEY_GET | DBX_ARM_KEY_WRAP | DBX_ARM_KEY_UNWRAP);
	assert_int_equal(v.policies[2].key_perms, 0);
	dbx_arm_vault_clear(&v);
	env_fini(&e);
}

/* Policies of the wrong shape are reported, not read as "no permission"; the rest stands. */
static void test_get_vault_malformed_policies(void **state)
{
	const struct fake_reply script[] = {
	    {.status = 200,
	     .body = "{\"properties\":{\"enableRbacAuthorization\":true,\"accessPolicies\":["
		     "{\"objectId\":\"o1\",\"permissions\":{\"keys\":[\"get\"]}},"
		     "{\"objectId\":\"o2\",\"permissions\":{\"keys\":\"all\"}}]}}"},
	};
	struct env e;
	struct dbx_arm_vault v;

	(void)state;
	env_init(&e, script, 1);
	assert_int_equal(dbx_arm_get_vault(e.arm, VAULT_ID(SUB), DEADLINE, &v, &e.err), DBX_OK);
	assert_true(v.rbac);
	assert_false(v.policies_ok);
	assert_int_equal(v.n_policies, 0);
	assert_null(v.policies);
	dbx_arm_vault_clear(&v);
	env_fini(&e);
}

/*
 * Every field the lookups read, with a wrong type: malformed, the field
 * named (never "absent", which would skip a check or pass one).
 */
static void test_lookups_wrong_types_named(void **state)
{
	static const struct {
		int kind; /* 0 vault, 1 identity, 2 vault search */
		const char *body, *why;
	} rows[] = {
	    {0, "{\"properties\":5}", "properties is a number, expected an object"},
	    {0, "{\"properties\":[]}", "properties is an array, expected an object"},
	    {0, "{}", "the key vault has no properties"},
	    {0, "{\"properties\":{\"enableSoftDelete\":\"true\"}}",
	     "properties.enableSoftDelete is a string, expected a boolean"},
	    {0, "{\"properties\":{\"enablePurgeProtection\":1}}",
	     "properties.enablePurgeProtection is a number, expected a boolean"},
	    {0, "{\"properties\":{\"enableRbacAuthorization\":{}}}",
	     "properties.enableRbacAuthorization is an object, expected a boolean"},
	    {0, "{\"properties\":{\"tenantId\":7}}",
	     "properties.tenantId is a number, expected a string"},
	    {0, "{\"properties\":{\"accessPolicies\":{}}}",
	     "properties.accessPolicies is an object, expected an array"},
	    {0, "{\"properties\":{\"enableSoftDelete\":true,\"enableSoftDelete\":false}}",
	     "duplicate key \"enableSoftDelete\""},
	    {1, "{\"properties\":\"x\"}", "properties is a string, expected an object"},
	    {1, "{\"properties\":{\"principalId\":5}}",
	     "properties.principalId is a number, expected a string"},
	    {1, "{\"properties\":{\"principalId\":\"\"}}",
	     "the user-assigned identity has no usable principalId"},
	    {1, "{\"properties\":{}}", "the user-assigned identity has no usable principalId"},
	    {1, "{\"properties\":{\"principalId\":\"a\",\"principalId\":\"b\"}}",
	     "duplicate key \"principalId\""},
	    {2, "{\"value\":[{\"id\":5}]}", "value[].id is a number, expected a string"},
	    {2, "{\"value\":[{\"name\":\"x\"}]}", "a resource without an id"},
	    {2, "{\"value\":[{\"id\":\"/subscriptions/x\",\"name\":[]}]}",
	     "value[].name is an array, expected a string"},
	    {2, "{\"value\":[{\"id\":\"/subscriptions/x\",\"name\":\"x\",\"type\":false}]}",
	     "value[].type is a boolean, expected a string"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct fake_reply script[] = {{.status = 200, .body = rows[i].body}};
		struct env e;
		struct dbx_arm_vault v;
		char principal[64];
		enum dbx_err rc;

		env_init(&e, script, 1);
		if (rows[i].kind == 0) {
			rc = dbx_arm_get_vault(e.arm, VAULT_ID(SUB), DEADLINE, &v, &e.err);
			dbx_arm_vault_clear(&v);
		} else if (rows[i].kind == 1) {
			rc = dbx_arm_identity_principal(e.arm, UAI_ID, DEADLINE, principal,
							sizeof(principal), &e.err);
		} else {
			rc = dbx_arm_find_vault(e.arm, SUB, VAULT, DEADLINE, e.id, sizeof(e.id),
						&e.found, &e.denied, &e.err);
			assert_false(e.found);
		}
		assert_int_equal(rc, DBX_EREMOTE);
		if (!strstr(e.err.message, rows[i].why) || !strstr(e.err.message, "malformed"))
			fail_msg("row %zu: \"%s\", wanted \"%s\"", i, e.err.message, rows[i].why);
		assert_int_equal(e.ft.n_calls, 1);
		env_fini(&e);
	}
}

static void test_get_vault_failures(void **state)
{
	const struct fake_reply script[] = {
	    {.status = 404,
	     .body = "{\"error\":{\"code\":\"ResourceNotFound\",\"message\":\"gone\"}}",
	     .request_id = "rid-404"},
	    {.status = 403,
	     .body = "{\"error\":{\"code\":\"AuthorizationFailed\",\"message\":\"no\"}}"},
	    {.status = 200, .body = "{\"properties\":{\"enableSoftDelete\":\"yes\"}}"},
	};
	struct env e;
	struct dbx_arm_vault v;

	(void)state;
	env_init(&e, script, 3);
	assert_int_equal(dbx_arm_get_vault(e.arm, VAULT_ID(SUB), DEADLINE, &v, &e.err),
			 DBX_ENOTFOUND);
	assert_int_equal(e.err.http_status, 404);
	assert_string_equal(e.err.request_id, "rid-404");
	dbx_arm_vault_clear(&v);
	assert_int_equal(dbx_arm_get_vault(e.arm, VAULT_ID(SUB), DEADLINE, &v, &e.err), DBX_EACCES);
	assert_int_equal(e.err.http_status, 403);
	dbx_arm_vault_clear(&v);
	assert_int_equal(dbx_arm_get_vault(e.arm, VAULT_ID(SUB), DEADLINE, &v, &e.err),
			 DBX_EREMOTE);
	assert_non_null(strstr(e.err.message, "malformed"));
	dbx_arm_vault_clear(&v);
	/* An ID that is not a plain resource ID is never appended to the ARM host. */
	assert_int_equal(
	    dbx_arm_get_vault(e.arm, "/subscriptions/" SUB "/../x", DEADLINE, &v, &e.err),
	    DBX_EREMOTE);
	assert_int_equal(
	    dbx_arm_get_vault(e.arm, "https://evil.example.com/x", DEADLINE, &v, &e.err),
	    DBX_EREMOTE);
	assert_int_equal(e.ft.n_calls, 3);
	dbx_arm_vault_clear(&v);
	env_fini(&e);
}

/* ---- user-assigned identities ---- */

static void test_identity_principal(void **state)
{
	const struct fake_reply script[] = {
	    {.status = 200, .body = "{\"properties\":{\"principalId\":\"p-1\"}}"},
	    {.status = 404,
	     .body = "{\"error\":{\"code\":\"ResourceNotFound\",\"message\":\"x\"}}"},
	    {.status = 200, .body = "{\"properties\":{\"principalId\":\"\"}}"},
	};
	struct env e;
	char principal[64];

	(void)state;
	env_init(&e, script, 3);
	assert_int_equal(dbx_arm_identity_principal(e.arm, UAI_ID, DEADLINE, principal,
						    sizeof(principal), &e.err),
			 DBX_OK);
	assert_string_equal(principal, "p-1");
	assert_call(&e, 0, ARM UAI_ID "?api-version=2023-01-31", DEADLINE);
	assert_int_equal(dbx_arm_identity_principal(e.arm, UAI_ID, DEADLINE, principal,
						    sizeof(principal), &e.err),
			 DBX_ENOTFOUND);
	assert_int_equal(dbx_arm_identity_principal(e.arm, UAI_ID, DEADLINE, principal,
						    sizeof(principal), &e.err),
			 DBX_EREMOTE);
	assert_string_equal(principal, "");
	assert_int_equal(dbx_arm_identity_principal(e.arm, "uai1", DEADLINE, principal,
						    sizeof(principal), &e.err),
			 DBX_EINVAL);
	assert_int_equal(e.ft.n_calls, 3);
	env_fini(&e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_subscriptions_next_link_seen_twice),
	    cmocka_unit_test(test_jobs_next_link_seen_twice_later),
	    cmocka_unit_test(test_resources_next_link_seen_twice),
	    cmocka_unit_test(test_vault_search_subscriptions_seen_twice),
	    cmocka_unit_test(test_jobs_page_cap),
	    cmocka_unit_test(test_subscriptions_page_cap),
	    cmocka_unit_test(test_resources_page_cap),
	    cmocka_unit_test(test_vault_on_page_1500),
	    cmocka_unit_test(test_find_vault_across_pages_and_subscriptions),
	    cmocka_unit_test(test_find_vault_not_found_and_denied),
	    cmocka_unit_test(test_find_vault_refused_later_page),
	    cmocka_unit_test(test_get_vault),
	    cmocka_unit_test(test_get_vault_malformed_policies),
	    cmocka_unit_test(test_lookups_wrong_types_named),
	    cmocka_unit_test(test_get_vault_failures),
	    cmocka_unit_test(test_identity_principal),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
