/*
 * test_arm_patch.c: PATCH of a Data Box job and its long-running operation
 * (dbx_arm_patch_job), over the scripted fake transport and fake clock.
 *
 * The scripts replay the service's real LRO traffic (docs/azure.md, "Long-running operations"): 202
 * with only a Location, operationResults polled while it answers 202 with
 * a new Location, then a Location that is the job itself. The tests assert
 * the exact requests (method, URL, scope, body, idempotency, content type),
 * the waits between polls on the fake clock (Retry-After when sent, else
 * 1 s doubling up to lro_poll_ms, never past the deadline, none after a
 * Location naming the job), that a Location off the ARM host is never
 * contacted, and what a user gets: the order, or the error kind, Ssem code
 * and request id, and whether the PATCH may have reached ARM. Once ARM
 * accepted the PATCH and the operation cannot tell (Location refused, poll
 * lost, next poll past the deadline), the answer is what the order shows:
 * the change (DBX_OK) or, at the deadline, DBX_ETIMEDOUT.
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

#define ARM	    "https://management.azure.com"
#define SCOPE	    "https://management.azure.com/.default"
#define SUB	    "11111111-2222-3333-4444-555555555555"
#define RG	    "YourResourceGroupName"
#define NAME	    "TestJobName1"
#define JOB_ID	    "/subscriptions/" SUB "/resourceGroups/" RG "/providers/Microsoft.DataBox/jobs/" NAME
#define JOB_URL	    ARM JOB_ID "?api-version=2025-07-01"
#define JOB_GET_URL JOB_URL "&$expand=details"
/* Shaped like the real signed operationResults URLs (shortened). */
#define OP_URL(n)                                                                                  \
	ARM "/subscriptions/" SUB                                                                  \
	    "/providers/Microsoft.DataBox/locations/westus/operationResults/"                      \
	    "1202b0df-bc5a-4975-b1fd-1401ce6acae9?api-version=2025-07-01&t=" n "&c=MIIH&s=sig&h=h"
#define VAULT_ID                                                                                   \
	"/subscriptions/" SUB "/resourceGroups/" RG                                                \
	"/providers/Microsoft.KeyVault/vaults/YourKeyVaultName"
#define KEK_URL "https://yourkeyvaultname.vault.azure.net/keys/cmk"
#define BODY                                                                                       \
	"{\"properties\":{\"details\":{\"keyEncryptionKey\":{\"kekType\":\"CustomerManaged\","     \
	"\"kekUrl\":\"" KEK_URL "\",\"kekVaultResourceID\":\"" VAULT_ID "\"}}}}"

/* JobsGetCmk.json, trimmed: the job with its details and a customer-managed key. */
#define JOB_CMK                                                                                    \
	"{\"name\": \"" NAME "\", \"type\": \"Microsoft.DataBox/jobs\", \"id\": \"" JOB_ID "\","   \
	" \"identity\": {\"type\": \"SystemAssigned\", \"principalId\": "                          \
	"\"aaaaaaaa-0000-4000-8000-000000000001\", \"tenantId\": "                                 \
	"\"72f988bf-86f1-41af-91ab-2d7cd011db47\"}, \"location\": \"westus\","                     \
	" \"properties\": {\"isCancellable\": true, \"status\": \"DeviceOrdered\","                \
	" \"transferType\": \"ImportToAzure\", \"details\": {\"jobDetailsType\": \"DataBox\","     \
	" \"jobStages\": [{\"displayName\": \"Ordered\", \"stageName\": \"DeviceOrdered\","        \
	" \"stageStatus\": \"Succeeded\"}], \"keyEncryptionKey\": {\"kekType\": "                  \
	"\"CustomerManaged\", \"kekUrl\": \"" KEK_URL "\", \"kekVaultResourceID\": \"" VAULT_ID    \
	"\"}}}, \"sku\": {\"name\": \"DataBox\", \"model\": \"DataBox\"}, \"tags\": {},"           \
	" \"systemData\": {\"lastModifiedAt\": \"2025-05-26T06:50:23.0185023+00:00\"}}"

/* The same job before the update: Microsoft managed (what the order shows until it lands). */
#define JOB_MM                                                                                     \
	"{\"name\": \"" NAME "\", \"type\": \"Microsoft.DataBox/jobs\", \"id\": \"" JOB_ID "\","   \
	" \"identity\": {\"type\": \"SystemAssigned\", \"principalId\": "                          \
	"\"aaaaaaaa-0000-4000-8000-000000000001\", \"tenantId\": "                                 \
	"\"72f988bf-86f1-41af-91ab-2d7cd011db47\"}, \"location\": \"westus\","                     \
	" \"properties\": {\"status\": \"DeviceOrdered\", \"details\": {\"jobDetailsType\": "      \
	"\"DataBox\", \"keyEncryptionKey\": {\"kekType\": \"MicrosoftManaged\"}}}}"

/* JobsPatchCmk.json's 200 body: the job without details. */
#define JOB_NO_DETAILS                                                                             \
	"{\"name\": \"" NAME "\", \"type\": \"Microsoft.DataBox/jobs\", \"id\": \"" JOB_ID "\","   \
	" \"location\": \"westus\", \"properties\": {\"isCancellable\": true, \"status\": "        \
	"\"DeviceOrdered\", \"transferType\": \"ImportToAzure\"}, \"sku\": {\"name\": "            \
	"\"DataBox\", \"model\": \"DataBox\"}, \"tags\": {}}"

#define START_MS   1000
#define TIMEOUT_MS 120000
#define POLL_MS	   10000
#define DEADLINE   (START_MS + TIMEOUT_MS)

/*
 * A transport layer that records what the fake does not: whether each
 * request was marked idempotent, and its content type. It sits right under
 * the arm, so it sees the requests as arm.c made them.
 */
struct spy {
	struct dbx_transport base;
	struct dbx_transport *inner;
	bool idempotent[FAKE_MAX_CALLS];
	char content_type[FAKE_MAX_CALLS][32];
	size_t n;
};

static enum dbx_err spy_send(struct dbx_transport *self, const struct dbx_http_request *req,
			     struct dbx_http_response *resp, struct dbx_error *err)
{
	struct spy *s = (struct spy *)self;

	if (s->n < FAKE_MAX_CALLS) {
		s->idempotent[s->n] = req->idempotent;
		snprintf(s->content_type[s->n], sizeof(s->content_type[s->n]), "%s",
			 req->content_type ? req->content_type : "");
		s->n++;
	}
	return s->inner->send(s->inner, req, resp, err);
}

static void spy_destroy(struct dbx_transport *self)
{
	(void)self;
}

struct env {
	struct fake_transport ft;
	struct fake_clock fc;
	struct dbx_transport *retry; /* the real retry layer, when asked for */
	struct spy spy;
	struct dbx_arm *arm;
	struct dbx_order *order;
	struct dbx_error err;
	bool sent, accepted;
};

static void env_init(struct env *e, const struct fake_reply *script, size_t n, bool with_retry)
{
	memset(e, 0, sizeof(*e));
	fake_transport_init(&e->ft, script, n);
	fake_clock_init(&e->fc, START_MS);
	e->spy.base.send = spy_send;
	e->spy.base.destroy = spy_destroy;
	e->spy.inner = &e->ft.base;
	if (with_retry) {
		e->retry = dbx_http_retry_new(&e->ft.base, NULL, &e->fc.clock);
		assert_non_null(e->retry);
		e->spy.inner = e->retry;
	}
	e->arm = dbx_arm_new(&e->spy.base, dbx_cloud_default(), NULL, TIMEOUT_MS, &e->fc.clock);
	assert_non_null(e->arm);
}

static void env_fini(struct env *e)
{
	dbx_order_free(e->order);
	dbx_arm_free(e->arm);
	if (e->retry)
		dbx_transport_destroy(e->retry);
	fake_transport_fini(&e->ft);
}

/* The change BODY asks for, as update.c's shows_change tests it: the key is KEK_URL. */
static bool shows_kek(const struct dbx_order *o, void *ctx)
{
	size_t *calls = ctx;

	(*calls)++;
	return o->has_details && o->kek_type == DBX_KEK_CUSTOMER && o->kek_url &&
	       strcmp(o->kek_url, KEK_URL) == 0;
}

static size_t shows_calls; /* how often shows_kek was asked */

static enum dbx_err patch_poll(struct env *e, uint64_t lro_poll_ms, uint64_t deadline)
{
	/* true going in: the function clears them first, so a false out is its own. */
	e->sent = true;
	e->accepted = true;
	shows_calls = 0;
	return dbx_arm_patch_job_verify(e->arm, SUB, RG, NAME, BODY, lro_poll_ms, deadline,
					shows_kek, &shows_calls, &e->sent, &e->accepted, &e->order,
					&e->err);
}

static enum dbx_err patch(struct env *e, uint64_t deadline)
{
	return patch_poll(e, POLL_MS, deadline);
}

/* Calls from..n_calls-1 were all reads of the job (with details), nothing else. */
static void assert_only_job_reads(const struct env *e, size_t from)
{
	for (size_t i = from; i < e->ft.n_calls; i++)
		assert_string_equal(e->ft.calls[i].url, JOB_GET_URL);
}

/* No request went anywhere but the ARM host over https. */
static void assert_all_on_arm(const struct env *e)
{
	for (size_t i = 0; i < e->ft.n_calls; i++)
		assert_int_equal(strncmp(e->ft.calls[i].url, ARM "/", strlen(ARM) + 1), 0);
}

/* The first request was the PATCH, exactly as the service expects it. */
static void assert_patch_request(const struct env *e)
{
	assert_true(e->ft.n_calls >= 1);
	assert_string_equal(e->ft.calls[0].method, "PATCH");
	assert_string_equal(e->ft.calls[0].url, JOB_URL);
	assert_string_equal(e->ft.calls[0].scope, SCOPE);
	assert_string_equal(e->ft.calls[0].body, BODY);
	assert_false(e->spy.idempotent[0]);
	assert_string_equal(e->spy.content_type[0], "application/json");
}

/* Every request after the PATCH was an idempotent GET with the ARM scope and the deadline. */
static void assert_gets_after_patch(const struct env *e, uint64_t deadline)
{
	for (size_t i = 1; i < e->ft.n_calls; i++) {
		assert_string_equal(e->ft.calls[i].method, "GET");
		assert_string_equal(e->ft.calls[i].scope, SCOPE);
		assert_null(e->ft.calls[i].body);
		assert_int_equal(e->ft.calls[i].deadline_ms, deadline);
	}
	for (size_t i = 1; i < e->spy.n; i++)
		assert_true(e->spy.idempotent[i]);
}

static void assert_cmk_order(const struct dbx_order *o)
{
	assert_non_null(o);
	assert_string_equal(o->name, NAME);
	assert_true(o->has_details);
	assert_int_equal(o->kek_type, DBX_KEK_CUSTOMER);
	assert_string_equal(o->kek_url, KEK_URL);
	assert_string_equal(o->kek_vault_id, VAULT_ID);
}

/* ---- synchronous answers ---- */

static void test_patch_200_with_job(void **state)
{
	const struct fake_reply script[] = {{.status = 200, .body = JOB_CMK}};
	struct env e;

	(void)state;
	env_init(&e, script, 1, false);
	assert_int_equal(patch(&e, DEADLINE), DBX_OK);
	assert_int_equal(e.ft.n_calls, 1); /* the body had the details: no GET */
	assert_patch_request(&e);
	assert_int_equal(e.ft.calls[0].deadline_ms, DEADLINE);
	assert_true(e.sent);
	assert_true(e.accepted);
	assert_cmk_order(e.order);
	assert_int_equal(e.fc.n_sleeps, 0);
	env_fini(&e);
}

static void test_patch_200_without_details_reads_job(void **state)
{
	const struct fake_reply script[] = {
	    {.status = 200, .body = JOB_NO_DETAILS},
	    {.status = 200, .body = JOB_CMK},
	};
	struct env e;

	(void)state;
	env_init(&e, script, 2, false);
	assert_int_equal(patch(&e, DEADLINE), DBX_OK);
	assert_int_equal(e.ft.n_calls, 2);
	assert_patch_request(&e);
	assert_string_equal(e.ft.calls[1].url, JOB_GET_URL);
	assert_gets_after_patch(&e, DEADLINE);
	assert_cmk_order(e.order);
	env_fini(&e);
}

static void test_patch_plain_wrapper(void **state)
{
	const struct fake_reply script[] = {{.status = 200, .body = JOB_CMK}};
	struct env e;
	bool sent = false;

	(void)state;
	env_init(&e, script, 1, false);
	assert_ptr_equal(dbx_arm_clock(e.arm), &e.fc.clock);
	assert_int_equal(dbx_arm_patch_job(e.arm, SUB, RG, NAME, BODY, POLL_MS, DEADLINE, &sent,
					   &e.order, &e.err),
			 DBX_OK);
	assert_true(sent);
	assert_patch_request(&e);
	assert_cmk_order(e.order);
	env_fini(&e);
}

/* ---- the real LRO flow ---- */

static void test_patch_real_lro_flow(void **state)
{
	const struct fake_reply script[] = {
	    {.status = 202, .location = OP_URL("1"), .request_id = "rid-patch"},
	    {.status = 202, .location = OP_URL("2")},
	    {.status = 202, .location = JOB_URL},
	    {.status = 200, .body = JOB_CMK},
	};
	struct env e;

	(void)state;
	env_init(&e, script, 4, false);
	assert_int_equal(patch(&e, DEADLINE), DBX_OK);
	assert_int_equal(e.ft.n_calls, 4);
	assert_patch_request(&e);
	assert_string_equal(e.ft.calls[1].url, OP_URL("1"));
	assert_string_equal(e.ft.calls[2].url, OP_URL("2")); /* the new Location replaced the old */
	/* The Location named the job: read with its details (a plain GET drops jobStages). */
	assert_string_equal(e.ft.calls[3].url, JOB_GET_URL);
	assert_gets_after_patch(&e, DEADLINE);
	/*
	 * No Retry-After anywhere: the polls waited 1 s each (the schedule's
	 * shortest); the Location naming the job was read at once, with no
	 * third wait.
	 */
	assert_int_equal(e.fc.n_sleeps, 2);
	assert_int_equal(e.fc.sleeps[0], 1000);
	assert_int_equal(e.fc.sleeps[1], 1000);
	assert_int_equal(e.fc.now, START_MS + 2000);
	assert_true(e.sent);
	assert_true(e.accepted);
	assert_cmk_order(e.order);
	assert_int_equal(e.order->n_problems, 0);
	env_fini(&e);
}

/* A sleep that a signal (FUSE's interrupt for Ctrl-C) ends halfway: the Nth sleep, once. */
static int interrupt_sleep_at; /* 1: the next sleep; 0: none */

static enum dbx_err interrupted_sleep(void *ctx, uint64_t ms)
{
	struct fake_clock *fc = ctx;

	if (interrupt_sleep_at > 0 && --interrupt_sleep_at == 0) {
		fc->now += ms / 2;
		return DBX_EINTR;
	}
	fc->now += ms;
	if (fc->n_sleeps < FAKE_MAX_CALLS)
		fc->sleeps[fc->n_sleeps++] = ms;
	return DBX_OK;
}

/*
 * Ctrl-C while waiting between polls: the PATCH is in ARM's hands, so the
 * write runs to its end (update.h) and returns the order; it is not
 * reported as a timeout, and the poll still waits its full interval.
 */
static void test_patch_interrupt_during_poll_wait(void **state)
{
	const struct fake_reply script[] = {
	    {.status = 202, .location = OP_URL("1"), .request_id = "rid-patch"},
	    {.status = 202, .location = JOB_URL},
	    {.status = 200, .body = JOB_CMK},
	};
	struct env e;

	(void)state;
	env_init(&e, script, 3, false);
	e.fc.clock.sleep_ms = interrupted_sleep;
	interrupt_sleep_at = 1;
	assert_int_equal(patch(&e, DEADLINE), DBX_OK);
	assert_int_equal(e.ft.n_calls, 3);
	assert_string_equal(e.ft.calls[1].url, OP_URL("1"));
	assert_string_equal(e.ft.calls[2].url, JOB_GET_URL);
	/* The interrupted wait was finished before the first poll; the job was read at once. */
	assert_int_equal(e.fc.now, START_MS + 1000);
	assert_true(e.sent);
	assert_true(e.accepted);
	assert_cmk_order(e.order);
	env_fini(&e);
}

/*
 * Ctrl-C while the retry layer backs off after a poll answered 503: the
 * update was accepted, so it is followed to its end (the poll is made
 * again), not reported as interrupted.
 */
static void test_patch_interrupt_during_poll_retry(void **state)
{
	const struct fake_reply script[] = {
	    {.status = 202, .location = OP_URL("1"), .request_id = "rid-patch"},
	    {.status = 503, .body = "{\"error\": {\"code\": \"ServiceUnavailable\"}}"},
	    {.status = 202, .location = JOB_URL},
	    {.status = 200, .body = JOB_CMK},
	};
	struct env e;

	(void)state;
	env_init(&e, script, 4, true);
	e.fc.clock.sleep_ms = interrupted_sleep;
	interrupt_sleep_at = 2; /* the first is the poll interval, the second the backoff */
	assert_int_equal(patch(&e, DEADLINE), DBX_OK);
	assert_int_equal(e.ft.n_calls, 4);
	assert_string_equal(e.ft.calls[1].url, OP_URL("1"));
	assert_string_equal(e.ft.calls[2].url, OP_URL("1"));
	assert_string_equal(e.ft.calls[3].url, JOB_GET_URL);
	assert_true(e.sent);
	assert_true(e.accepted);
	assert_cmk_order(e.order);
	env_fini(&e);
}

/* The same after a PATCH answered 200 without details: the job is read to the end. */
static void test_patch_interrupt_during_final_read(void **state)
{
	const struct fake_reply script[] = {
	    {.status = 200, .body = JOB_NO_DETAILS},
	    {.status = 503, .body = "{\"error\": {\"code\": \"ServiceUnavailable\"}}"},
	    {.status = 200, .body = JOB_CMK},
	};
	struct env e;

	(void)state;
	env_init(&e, script, 3, true);
	e.fc.clock.sleep_ms = interrupted_sleep;
	interrupt_sleep_at = 1; /* the backoff after the 503 */
	assert_int_equal(patch(&e, DEADLINE), DBX_OK);
	assert_int_equal(e.ft.n_calls, 3);
	assert_string_equal(e.ft.calls[2].url, JOB_GET_URL);
	assert_true(e.accepted);
	assert_cmk_order(e.order);
	env_fini(&e);
}

static void test_patch_job_location_read_with_stages(void **state)
{
	/* The job Location as the service spells it (another case, :443): still the job. */
	const struct fake_reply script[] = {
	    {.status = 202,
	     .location = "https://MANAGEMENT.azure.com:443/subscriptions/" SUB "/resourcegroups/" RG
			 "/providers/Microsoft.DataBox/jobs/" NAME "?api-version=2025-07-01"},
	    {.status = 200,
	     .body = "{\"name\": \"" NAME "\", \"id\": \"" JOB_ID "\", \"properties\": {"
		     "\"status\": \"DataCopy\", \"details\": {\"jobStages\": [{\"stageName\": "
		     "\"DataCopy\", \"stageStatus\": \"WaitingForCustomerActionForKek\"}], "
		     "\"keyEncryptionKey\": {\"kekType\": \"MicrosoftManaged\"}}}}"},
	};
	struct env e;

	(void)state;
	env_init(&e, script, 2, false);
	assert_int_equal(patch(&e, DEADLINE), DBX_OK);
	assert_int_equal(e.ft.n_calls, 2);
	assert_string_equal(e.ft.calls[1].url, JOB_GET_URL);
	assert_int_equal(e.fc.n_sleeps, 0); /* the job itself: read at once */
	/* The stage problem reaches the result, so the errors file shows it at once. */
	assert_int_equal(e.order->n_problems, 1);
	assert_string_equal(e.order->problems[0].code, "WaitingForCustomerActionForKek");
	env_fini(&e);
}

static void test_patch_lro_final_job_without_details_is_read(void **state)
{
	/* An operation URL that ends with the job's body, without its details. */
	const struct fake_reply script[] = {
	    {.status = 202, .location = OP_URL("1")},
	    {.status = 202, .location = OP_URL("2")},
	    {.status = 200, .body = JOB_NO_DETAILS},
	    {.status = 200, .body = JOB_CMK},
	};
	struct env e;

	(void)state;
	env_init(&e, script, 4, false);
	assert_int_equal(patch(&e, DEADLINE), DBX_OK);
	assert_int_equal(e.ft.n_calls, 4);
	assert_string_equal(e.ft.calls[2].url, OP_URL("2"));
	assert_string_equal(e.ft.calls[3].url, JOB_GET_URL);
	assert_int_equal(e.fc.n_sleeps, 2); /* the final read comes right away */
	assert_cmk_order(e.order);
	env_fini(&e);
}

static void test_patch_lro_retry_after_honoured(void **state)
{
	const struct fake_reply script[] = {
	    {.status = 202, .location = OP_URL("1"), .retry_after = "3"},
	    {.status = 202, .location = OP_URL("2"), .retry_after = "7"},
	    {.status = 202, .location = OP_URL("3")}, /* none: 10 s since the PATCH, / 8 */
	    {.status = 204},
	    {.status = 200, .body = JOB_CMK},
	};
	struct env e;

	(void)state;
	env_init(&e, script, 5, false);
	assert_int_equal(patch(&e, DEADLINE), DBX_OK);
	assert_int_equal(e.ft.n_calls, 5);
	assert_string_equal(e.ft.calls[1].url, OP_URL("1"));
	assert_string_equal(e.ft.calls[2].url, OP_URL("2"));
	assert_string_equal(e.ft.calls[3].url, OP_URL("3"));
	assert_string_equal(e.ft.calls[4].url, JOB_GET_URL); /* 204: the job is read */
	assert_int_equal(e.fc.n_sleeps, 3);
	assert_int_equal(e.fc.sleeps[0], 3000);
	assert_int_equal(e.fc.sleeps[1], 7000);
	assert_int_equal(e.fc.sleeps[2], 1250);
	assert_cmk_order(e.order);
	env_fini(&e);
}

static void test_patch_202_without_location_reads_job(void **state)
{
	const struct fake_reply script[] = {
	    {.status = 202},
	    {.status = 200, .body = JOB_CMK},
	};
	struct env e;

	(void)state;
	env_init(&e, script, 2, false);
	assert_int_equal(patch(&e, DEADLINE), DBX_OK);
	assert_int_equal(e.ft.n_calls, 2);
	assert_string_equal(e.ft.calls[1].url, JOB_GET_URL);
	assert_int_equal(e.fc.n_sleeps, 0); /* nothing to poll: the order tells, at once */
	assert_int_equal(shows_calls, 1);
	assert_cmk_order(e.order);
	env_fini(&e);
}

static void test_patch_operation_status_bodies(void **state)
{
	/* The Azure-AsyncOperation body shape, should a poll ever answer with it. */
	const struct fake_reply ok[] = {
	    {.status = 202, .location = OP_URL("1")},
	    {.status = 200, .body = "{\"status\": \"InProgress\"}"},
	    {.status = 200, .body = "{\"status\": \"Succeeded\"}"},
	    {.status = 200, .body = JOB_CMK},
	};
	const struct fake_reply failed[] = {
	    {.status = 202, .location = OP_URL("1")},
	    {.status = 200,
	     .request_id = "rid-op",
	     .body = "{\"status\": \"Failed\", \"error\": {\"code\": "
		     "\"SsemUserErrorEncryptionKeyDisabled\", \"message\": \"Could not fetch the "
		     "passkey as the customer-managed key is disabled.\"}}"},
	    {.status = 200, .body = JOB_MM},
	};
	struct env e;

	(void)state;
	env_init(&e, ok, 4, false);
	assert_int_equal(patch(&e, DEADLINE), DBX_OK);
	assert_int_equal(e.ft.n_calls, 4);
	assert_string_equal(e.ft.calls[2].url, OP_URL("1")); /* still running: same URL again */
	assert_string_equal(e.ft.calls[3].url, JOB_GET_URL);
	assert_cmk_order(e.order);
	env_fini(&e);

	env_init(&e, failed, 3, false);
	assert_int_equal(patch(&e, DEADLINE), DBX_EINVAL);
	assert_int_equal(e.ft.n_calls, 3); /* the order was read: it does not show the change */
	assert_string_equal(e.ft.calls[2].url, JOB_GET_URL);
	assert_string_equal(e.err.code, "SsemUserErrorEncryptionKeyDisabled");
	assert_non_null(strstr(e.err.message, "disabled"));
	assert_string_equal(e.err.request_id, "rid-op");
	assert_null(e.order);
	env_fini(&e);
}

/* ---- the bearer token stays on the ARM host ---- */

static const char *const foreign[] = {
    "https://evil.example.com/operationResults/1",
    "http://management.azure.com/operationResults/1",
    "https://management.azure.com.evil.example.com/operationResults/1",
    "https://management.azure.com@evil.example.com/operationResults/1",
    "https://management.azure.com:8443/operationResults/1",
    "https://management.usgovcloudapi.net/operationResults/1",
    "/subscriptions/x/operationResults/1",
};

/*
 * A Location off the ARM host (or plain http) is never contacted, the token
 * never leaves; the change was accepted, so the order itself is read: it
 * shows the change, and that is the answer, at once.
 */
static void test_patch_refuses_foreign_location(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(foreign) / sizeof(foreign[0]); i++) {
		/* Foreign right away, and foreign on the second hop. */
		const struct fake_reply first[] = {
		    {.status = 202, .location = foreign[i]},
		    {.status = 200, .body = JOB_CMK},
		};
		const struct fake_reply second[] = {
		    {.status = 202, .location = OP_URL("1")},
		    {.status = 202, .location = foreign[i]},
		    {.status = 200, .body = JOB_CMK},
		};
		struct env e;

		print_message("Location %s\n", foreign[i]);
		env_init(&e, first, 2, false);
		assert_int_equal(patch(&e, DEADLINE), DBX_OK);
		assert_int_equal(e.ft.n_calls, 2); /* nothing was sent to it */
		assert_only_job_reads(&e, 1);
		assert_all_on_arm(&e);
		assert_int_equal(e.fc.n_sleeps, 0);
		assert_true(e.sent);
		assert_true(e.accepted);
		assert_cmk_order(e.order);
		env_fini(&e);

		env_init(&e, second, 3, false);
		assert_int_equal(patch(&e, DEADLINE), DBX_OK);
		assert_int_equal(e.ft.n_calls, 3);
		assert_string_equal(e.ft.calls[1].url, OP_URL("1"));
		assert_only_job_reads(&e, 2);
		assert_all_on_arm(&e);
		assert_cmk_order(e.order);
		env_fini(&e);
	}
}

/* A script of n answers: the first, then rest repeated (n <= FAKE_MAX_CALLS). */
static void fill(struct fake_reply *script, size_t n, struct fake_reply first,
		 struct fake_reply rest)
{
	script[0] = first;
	for (size_t i = 1; i < n; i++)
		script[i] = rest;
}

/* The waits on the fake clock all fit before deadline, and the last read came before it. */
static void assert_within(const struct env *e, uint64_t deadline)
{
	uint64_t total = 0;

	for (size_t i = 0; i < e->fc.n_sleeps; i++)
		total += e->fc.sleeps[i];
	assert_true(START_MS + total <= deadline);
	assert_true(e->fc.now <= deadline);
}

/*
 * A refused Location and an order that never shows the change: the order
 * is read again at the schedule's intervals, never past the deadline, and
 * the write ends with DBX_ETIMEDOUT: it may still land.
 */
static void test_patch_foreign_location_order_never_shows(void **state)
{
	const uint64_t deadline = START_MS + 30000;
	struct fake_reply script[64];
	struct env e;

	(void)state;
	fill(script, 64, (struct fake_reply){.status = 202, .location = foreign[0]},
	     (struct fake_reply){.status = 200, .body = JOB_MM});
	env_init(&e, script, 64, false);
	assert_int_equal(patch(&e, deadline), DBX_ETIMEDOUT);
	assert_only_job_reads(&e, 1);
	assert_all_on_arm(&e);
	assert_true(e.ft.n_calls >= 5); /* 1 s, 1 s ..., then 1/8 of the time: read often */
	assert_int_equal(shows_calls, e.ft.n_calls - 1);
	assert_int_equal(e.fc.sleeps[0], 1000);
	assert_int_equal(e.fc.sleeps[1], 1000);
	assert_int_equal(e.fc.sleeps[2], 1000);
	assert_within(&e, deadline);
	/* The last read came within the last few seconds before the deadline. */
	assert_true(e.fc.now + 2000 >= deadline);
	assert_non_null(strstr(e.err.message, "may still be applied"));
	assert_non_null(strstr(e.err.message, "not followed"));
	assert_int_equal(e.err.err, DBX_ETIMEDOUT);
	assert_true(e.accepted);
	assert_null(e.order);
	env_fini(&e);
}

/* The order shows the change only on the third read: success then, not before. */
static void test_patch_foreign_location_lands_later(void **state)
{
	const struct fake_reply script[] = {
	    {.status = 202, .location = foreign[1]}, {.status = 200, .body = JOB_MM},
	    {.status = 200, .body = JOB_MM},	     {.status = 200, .body = JOB_CMK},
	    {.status = 200, .body = JOB_MM}, /* not reached */
	};
	struct env e;

	(void)state;
	env_init(&e, script, 5, false);
	assert_int_equal(patch(&e, DEADLINE), DBX_OK);
	assert_int_equal(e.ft.n_calls, 4);
	assert_only_job_reads(&e, 1);
	assert_int_equal(e.fc.n_sleeps, 2);
	assert_int_equal(e.fc.sleeps[0], 1000);
	assert_int_equal(e.fc.sleeps[1], 1000);
	assert_int_equal(e.err.err, DBX_OK);
	assert_cmk_order(e.order);
	env_fini(&e);
}

/* A poll lost at the transport (after the retry layer's budget): the order tells. */
static void test_patch_dropped_poll_order_shows(void **state)
{
	const struct fake_reply script[] = {
	    {.status = 202, .location = OP_URL("1")},
	    {.transport_err = DBX_EREMOTE},
	    {.status = 200, .body = JOB_CMK},
	};
	struct env e;

	(void)state;
	env_init(&e, script, 3, false);
	assert_int_equal(patch(&e, DEADLINE), DBX_OK);
	assert_int_equal(e.ft.n_calls, 3);
	assert_string_equal(e.ft.calls[1].url, OP_URL("1"));
	assert_string_equal(e.ft.calls[2].url, JOB_GET_URL);
	assert_int_equal(e.fc.n_sleeps, 1); /* the wait before the poll; the read came at once */
	assert_cmk_order(e.order);
	assert_int_equal(e.err.err, DBX_OK);
	env_fini(&e);
}

/* Lost polls through the real retry layer, then an order that never shows: ETIMEDOUT in time. */
static void test_patch_dropped_poll_order_never_shows(void **state)
{
	const uint64_t deadline = START_MS + 20000;
	struct fake_reply script[80];
	struct env e;

	(void)state;
	fill(script, 80, (struct fake_reply){.status = 202, .location = OP_URL("1")},
	     (struct fake_reply){.transport_err = DBX_EREMOTE});
	for (size_t i = 3; i < 80; i++) /* the poll and its one resend are lost; reads answer */
		script[i] = (struct fake_reply){.status = 200, .body = JOB_MM};
	env_init(&e, script, 80, true);
	assert_int_equal(patch(&e, deadline), DBX_ETIMEDOUT);
	for (size_t i = 1; i < 3; i++)
		assert_string_equal(e.ft.calls[i].url, OP_URL("1"));
	assert_only_job_reads(&e, 3);
	assert_true(e.ft.n_calls > 4);
	assert_within(&e, deadline);
	assert_non_null(strstr(e.err.message, "may still be applied"));
	assert_non_null(strstr(e.err.message, "poll"));
	assert_true(e.accepted);
	assert_null(e.order);
	env_fini(&e);
}

/*
 * Retry-After: 99999 on the poll whose Location is the job: the job is read
 * at once (the Location ends the waiting), one GET shows the change.
 */
static void test_patch_huge_retry_after_on_final_poll(void **state)
{
	const struct fake_reply script[] = {
	    {.status = 202, .location = OP_URL("1")},
	    {.status = 202, .location = JOB_URL, .retry_after = "99999"},
	    {.status = 200, .body = JOB_CMK},
	};
	struct env e;

	(void)state;
	env_init(&e, script, 3, false);
	assert_int_equal(patch(&e, START_MS + 30000), DBX_OK);
	assert_int_equal(e.ft.n_calls, 3);
	assert_string_equal(e.ft.calls[2].url, JOB_GET_URL);
	assert_int_equal(e.fc.n_sleeps, 1);
	assert_int_equal(e.fc.now, START_MS + 1000);
	assert_cmk_order(e.order);
	env_fini(&e);
}

/*
 * Retry-After: 99999 on a poll that is not the last: the next poll would
 * come after the deadline, so the order is read now; it shows the change.
 */
static void test_patch_huge_retry_after_order_shows(void **state)
{
	const struct fake_reply script[] = {
	    {.status = 202, .location = OP_URL("1")},
	    {.status = 202, .location = OP_URL("2"), .retry_after = "99999"},
	    {.status = 200, .body = JOB_CMK},
	};
	struct env e;

	(void)state;
	env_init(&e, script, 3, false);
	assert_int_equal(patch(&e, START_MS + 30000), DBX_OK);
	assert_int_equal(e.ft.n_calls, 3);
	assert_string_equal(e.ft.calls[2].url, JOB_GET_URL);
	assert_int_equal(e.fc.n_sleeps, 1); /* no wait for the poll that cannot happen */
	assert_cmk_order(e.order);
	env_fini(&e);
}

/* A Retry-After too large for milliseconds: still past the deadline, the order is read. */
static void test_patch_retry_after_overflow(void **state)
{
	const struct fake_reply script[] = {
	    {.status = 202, .location = OP_URL("1"), .retry_after = "18446744073709551"},
	    {.status = 200, .body = JOB_CMK},
	};
	struct env e;

	(void)state;
	env_init(&e, script, 2, false);
	assert_int_equal(patch(&e, DEADLINE), DBX_OK);
	assert_int_equal(e.ft.n_calls, 2);
	assert_string_equal(e.ft.calls[1].url, JOB_GET_URL);
	assert_int_equal(e.fc.n_sleeps, 0);
	assert_cmk_order(e.order);
	env_fini(&e);
}

/*
 * The schedule without Retry-After: an eighth of the time since the PATCH,
 * at least 1 s (lro_poll below that), at most lro_poll.
 */
static void test_patch_backoff_schedule(void **state)
{
	enum { POLLS = 14 };
	static const struct {
		uint64_t lro_poll_ms;
		uint64_t want[POLLS];
	} cases[] = {
	    /* 1 s until 8 s have passed, then 9000 / 8, 10125 / 8, ... */
	    {10000,
	     {1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1125, 1265, 1423, 1601, 1801}},
	    {1500,
	     {1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1125, 1265, 1423, 1500, 1500}},
	    {50, {50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 50}},
	    {0, {10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10}}, /* never a storm */
	};

	(void)state;
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct fake_reply script[POLLS + 2];
		struct env e;

		fill(script, POLLS + 2, (struct fake_reply){.status = 202, .location = OP_URL("1")},
		     (struct fake_reply){.status = 202, .location = OP_URL("1")});
		script[POLLS] = (struct fake_reply){.status = 202, .location = JOB_URL};
		script[POLLS + 1] = (struct fake_reply){.status = 200, .body = JOB_CMK};
		env_init(&e, script, POLLS + 2, false);
		assert_int_equal(patch_poll(&e, cases[c].lro_poll_ms, DEADLINE), DBX_OK);
		assert_int_equal(e.ft.n_calls, POLLS + 2);
		assert_int_equal(e.fc.n_sleeps,
				 POLLS); /* one per poll, none before the final read */
		for (size_t i = 0; i < POLLS; i++)
			assert_int_equal(e.fc.sleeps[i], cases[c].want[i]);
		assert_cmk_order(e.order);
		env_fini(&e);
	}
}

/* The operation fails (500 after retries): EIO, after the order was read and does not show it. */
static void test_patch_failed_operation_is_eio(void **state)
{
	const struct fake_reply script[] = {
	    {.status = 202, .location = OP_URL("1")},
	    {.status = 500,
	     .request_id = "rid-op",
	     .body = "{\"error\": {\"code\": \"InternalServerError\", \"message\": \"Could not "
		     "fetch the passkey.\"}}"},
	    {.status = 200, .body = JOB_MM},
	};
	const struct fake_reply landed[] = {
	    {.status = 202, .location = OP_URL("1")},
	    {.status = 200, .body = "{\"status\": \"Canceled\"}"},
	    {.status = 200, .body = JOB_CMK},
	};
	struct env e;

	(void)state;
	env_init(&e, script, 3, false);
	assert_int_equal(patch(&e, DEADLINE), DBX_EREMOTE);
	assert_int_equal(e.ft.n_calls, 3);
	assert_string_equal(e.ft.calls[2].url, JOB_GET_URL);
	assert_int_equal(e.err.http_status, 500);
	assert_string_equal(e.err.code, "InternalServerError");
	assert_string_equal(e.err.request_id, "rid-op");
	assert_non_null(strstr(e.err.message, "passkey"));
	assert_null(e.order);
	env_fini(&e);

	/* A canceled operation whose change the order shows all the same: that is the truth. */
	env_init(&e, landed, 3, false);
	assert_int_equal(patch(&e, DEADLINE), DBX_OK);
	assert_int_equal(e.ft.n_calls, 3);
	assert_int_equal(e.err.err, DBX_OK);
	assert_cmk_order(e.order);
	env_fini(&e);
}

/* ---- failures ---- */

static void test_patch_poll_failure_is_the_operations(void **state)
{
	const struct fake_reply script[] = {
	    {.status = 202, .location = OP_URL("1"), .request_id = "rid-patch"},
	    {.status = 400,
	     .request_id = "rid-poll",
	     .body = "{\"error\": {\"code\": \"SsemUserErrorKeyVaultBadRequestException\", "
		     "\"message\": \"Applied a CMK but key access has not been granted.\"}}"},
	    {.status = 200, .body = JOB_MM},
	};
	struct env e;

	(void)state;
	env_init(&e, script, 3, false);
	assert_int_equal(patch(&e, DEADLINE), DBX_EINVAL);
	assert_int_equal(e.ft.n_calls, 3); /* the order was read: the change is not there */
	assert_int_equal(e.err.err, DBX_EINVAL);
	assert_int_equal(e.err.http_status, 400);
	assert_string_equal(e.err.code, "SsemUserErrorKeyVaultBadRequestException");
	assert_non_null(strstr(e.err.message, "key access"));
	assert_string_equal(e.err.request_id, "rid-poll");
	assert_true(e.sent);
	assert_true(e.accepted); /* a failed operation: not a case for resending */
	assert_null(e.order);
	env_fini(&e);
}

static void test_patch_error_statuses(void **state)
{
	static const struct {
		long status;
		const char *code;
		enum dbx_err want;
	} cases[] = {
	    {400, "SsemUserErrorKeyVaultUrlInvalidHost", DBX_EINVAL},
	    {403, "AuthorizationFailed", DBX_EACCES},
	    {404, "ResourceNotFound", DBX_ENOTFOUND},
	    {409, "Conflict", DBX_EBUSY},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char body[256];
		const struct fake_reply script[] = {
		    {.status = cases[i].status, .body = body, .request_id = "rid-1"},
		    {.status = 200, .body = JOB_CMK},
		};
		struct env e;

		snprintf(body, sizeof(body), "{\"error\": {\"code\": \"%s\", \"message\": \"no\"}}",
			 cases[i].code);
		env_init(&e, script, 2, false);
		assert_int_equal(patch(&e, DEADLINE), cases[i].want);
		assert_int_equal(e.ft.n_calls, 1);
		assert_string_equal(e.err.code, cases[i].code);
		assert_int_equal(e.err.http_status, cases[i].status);
		assert_string_equal(e.err.request_id, "rid-1");
		assert_true(e.sent);
		assert_false(e.accepted);
		assert_null(e.order);
		env_fini(&e);
	}
}

static void test_patch_deadline_while_polling(void **state)
{
	/*
	 * 25 s of budget, four polls a second apart; the fourth asks for 30 s,
	 * which would land past the deadline, so the order is read instead, and
	 * again while time is left: it never shows the change, ETIMEDOUT.
	 */
	const uint64_t deadline = START_MS + 25000;
	struct fake_reply script[40];
	struct env e;

	(void)state;
	fill(script, 40, (struct fake_reply){.status = 202, .location = OP_URL("1")},
	     (struct fake_reply){.status = 200, .body = JOB_MM});
	for (size_t i = 1; i <= 4; i++)
		script[i] = (struct fake_reply){
		    .status = 202, .location = OP_URL("2"), .request_id = "rid-poll"};
	script[4].retry_after = "30";
	env_init(&e, script, 40, false);
	assert_int_equal(patch(&e, deadline), DBX_ETIMEDOUT);
	for (size_t i = 1; i <= 4; i++)
		assert_string_equal(e.ft.calls[i].url, i == 1 ? OP_URL("1") : OP_URL("2"));
	assert_only_job_reads(&e, 5);
	assert_true(e.ft.n_calls >= 6);
	assert_within(&e, deadline); /* never slept past it */
	assert_non_null(strstr(e.err.message, "did not finish within the timeout"));
	assert_non_null(strstr(e.err.message, "after the deadline"));
	assert_true(e.err.request_id[0] != '\0');
	assert_true(e.sent);
	assert_true(e.accepted);
	assert_null(e.order);
	env_fini(&e);
}

static void test_patch_retry_after_past_deadline(void **state)
{
	/* Retry-After past the deadline: no wait for that poll; the order, read now, tells. */
	const struct fake_reply script[] = {
	    {.status = 202, .location = OP_URL("1"), .retry_after = "3600"},
	    {.status = 200, .body = JOB_CMK},
	};
	struct env e;

	(void)state;
	env_init(&e, script, 2, false);
	assert_int_equal(patch(&e, DEADLINE), DBX_OK);
	assert_int_equal(e.ft.n_calls, 2);
	assert_string_equal(e.ft.calls[1].url, JOB_GET_URL);
	assert_int_equal(e.fc.n_sleeps, 0);
	assert_int_equal(e.fc.now, START_MS);
	assert_cmk_order(e.order);
	env_fini(&e);
}

static void test_patch_500_not_resent(void **state)
{
	/* The real retry layer underneath: it retries GETs, never this PATCH. */
	const struct fake_reply script[] = {
	    {.status = 500,
	     .request_id = "rid-500",
	     .body = "{\"error\": {\"code\": \"InternalServerError\", \"message\": \"oops\"}}"},
	    {.status = 200, .body = JOB_CMK},
	};
	struct env e;

	(void)state;
	env_init(&e, script, 2, true);
	assert_int_equal(patch(&e, DEADLINE), DBX_EREMOTE);
	assert_int_equal(e.ft.n_calls, 1);
	assert_string_equal(e.ft.calls[0].method, "PATCH");
	assert_true(e.sent); /* it may have landed */
	assert_false(e.accepted);
	assert_string_equal(e.err.request_id, "rid-500");
	assert_int_equal(e.err.http_status, 500);
	assert_null(e.order);
	env_fini(&e);
}

static void test_patch_dropped_connection_not_resent(void **state)
{
	const struct fake_reply script[] = {
	    {.transport_err = DBX_EREMOTE},
	    {.status = 200, .body = JOB_CMK},
	};
	struct env e;

	(void)state;
	env_init(&e, script, 2, true);
	assert_int_equal(patch(&e, DEADLINE), DBX_EREMOTE);
	assert_int_equal(e.ft.n_calls, 1);
	assert_true(e.sent);
	assert_false(e.accepted);
	env_fini(&e);
}

static void test_patch_unreachable_not_sent(void **state)
{
	const struct fake_reply script[] = {
	    {.transport_err = DBX_EUNREACHABLE}, {.transport_err = DBX_EUNREACHABLE},
	    {.transport_err = DBX_EUNREACHABLE}, {.transport_err = DBX_EUNREACHABLE},
	    {.transport_err = DBX_EUNREACHABLE},
	};
	struct env e;

	(void)state;
	env_init(&e, script, 5, true);
	assert_int_equal(patch(&e, DEADLINE), DBX_EUNREACHABLE);
	assert_int_equal(e.ft.n_calls, 5); /* the retry layer may resend: nothing went out */
	assert_false(e.sent);
	assert_false(e.accepted);
	assert_null(e.order);
	env_fini(&e);
}

static void test_patch_throttled_not_sent(void **state)
{
	const struct fake_reply script[] = {
	    {.status = 429,
	     .body = "{\"error\": {\"code\": \"TooManyRequests\", \"message\": "
		     "\"slow down\"}}"},
	};
	struct env e;

	(void)state;
	env_init(&e, script, 1, false);
	assert_int_equal(patch(&e, DEADLINE), DBX_ETHROTTLED);
	assert_false(e.sent);
	env_fini(&e);
}

static void test_patch_deadline_before_sending(void **state)
{
	const struct fake_reply script[] = {{.status = 200, .body = JOB_CMK}};
	struct env e;

	(void)state;
	env_init(&e, script, 1, false);
	assert_int_equal(patch(&e, START_MS), DBX_ETIMEDOUT);
	assert_int_equal(e.ft.n_calls, 0);
	assert_false(e.sent);
	env_fini(&e);
}

static void test_patch_malformed_final_job(void **state)
{
	/* The final read answers with another job: not taken for this one. */
	const struct fake_reply script[] = {
	    {.status = 204},
	    {.status = 200,
	     .body = "{\"name\": \"Other\", \"id\": \"/subscriptions/" SUB "/resourceGroups/" RG
		     "/providers/Microsoft.DataBox/jobs/Other\", \"properties\": {\"details\": "
		     "{}}}"},
	};
	struct env e;

	(void)state;
	env_init(&e, script, 2, false);
	assert_int_equal(patch(&e, DEADLINE), DBX_EREMOTE);
	assert_int_equal(e.ft.n_calls, 2);
	assert_string_equal(e.ft.calls[1].url, JOB_GET_URL);
	assert_null(e.order);
	env_fini(&e);
}

static void test_get_job_until_uses_the_given_deadline(void **state)
{
	const struct fake_reply script[] = {{.status = 200, .body = JOB_CMK}};
	struct env e;

	(void)state;
	env_init(&e, script, 1, false);
	assert_int_equal(
	    dbx_arm_get_job_until(e.arm, SUB, RG, NAME, START_MS + 5000, &e.order, &e.err), DBX_OK);
	assert_int_equal(e.ft.n_calls, 1);
	assert_string_equal(e.ft.calls[0].url, JOB_GET_URL);
	assert_int_equal(e.ft.calls[0].deadline_ms, START_MS + 5000);
	assert_cmk_order(e.order);
	dbx_order_free(e.order);
	e.order = NULL;

	/* Past it: nothing is sent. */
	assert_int_equal(dbx_arm_get_job_until(e.arm, SUB, RG, NAME, START_MS, &e.order, &e.err),
			 DBX_ETIMEDOUT);
	assert_int_equal(e.ft.n_calls, 1);
	assert_null(e.order);
	env_fini(&e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_patch_200_with_job),
	    cmocka_unit_test(test_patch_200_without_details_reads_job),
	    cmocka_unit_test(test_patch_plain_wrapper),
	    cmocka_unit_test(test_patch_real_lro_flow),
	    cmocka_unit_test(test_patch_job_location_read_with_stages),
	    cmocka_unit_test(test_patch_lro_final_job_without_details_is_read),
	    cmocka_unit_test(test_patch_lro_retry_after_honoured),
	    cmocka_unit_test(test_patch_202_without_location_reads_job),
	    cmocka_unit_test(test_patch_operation_status_bodies),
	    cmocka_unit_test(test_patch_refuses_foreign_location),
	    cmocka_unit_test(test_patch_foreign_location_order_never_shows),
	    cmocka_unit_test(test_patch_foreign_location_lands_later),
	    cmocka_unit_test(test_patch_dropped_poll_order_shows),
	    cmocka_unit_test(test_patch_dropped_poll_order_never_shows),
	    cmocka_unit_test(test_patch_huge_retry_after_on_final_poll),
	    cmocka_unit_test(test_patch_huge_retry_after_order_shows),
	    cmocka_unit_test(test_patch_backoff_schedule),
	    cmocka_unit_test(test_patch_retry_after_overflow),
	    cmocka_unit_test(test_patch_failed_operation_is_eio),
	    cmocka_unit_test(test_patch_poll_failure_is_the_operations),
	    cmocka_unit_test(test_patch_error_statuses),
	    cmocka_unit_test(test_patch_deadline_while_polling),
	    cmocka_unit_test(test_patch_retry_after_past_deadline),
	    cmocka_unit_test(test_patch_500_not_resent),
	    cmocka_unit_test(test_patch_dropped_connection_not_resent),
	    cmocka_unit_test(test_patch_unreachable_not_sent),
	    cmocka_unit_test(test_patch_throttled_not_sent),
	    cmocka_unit_test(test_patch_deadline_before_sending),
	    cmocka_unit_test(test_patch_malformed_final_job),
	    cmocka_unit_test(test_get_job_until_uses_the_given_deadline),
	    cmocka_unit_test(test_patch_interrupt_during_poll_wait),
	    cmocka_unit_test(test_patch_interrupt_during_poll_retry),
	    cmocka_unit_test(test_patch_interrupt_during_final_read),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
