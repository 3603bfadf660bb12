/*
 * test_budget.c: the request budget layer (backend/http/budget.c) over the
 * scripted fake transport and the fake clock.
 *
 * What a user notices: a large tar keeps under ARM's throttling limits by
 * itself, so it draws no 429 and leaves the admin's other tools their share;
 * it slows down when ARM says the budget runs low; and no wait for the
 * budget ever passes the timeout.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "databoxfs/http.h"
#include "fake_transport.h"

#define T0	  1000000u
#define ARM_SCOPE "https://management.azure.com/.default"
#define N(a)	  (sizeof(a) / sizeof((a)[0]))

static const struct dbx_budget_policy small = {
    .read_burst = 3, .read_per_s = 2, .write_burst = 1, .write_per_s = 1, .reserve = 2};

struct fixture {
	struct fake_transport fake;
	struct fake_clock fc;
	struct dbx_transport *bt;
	struct dbx_http_response resp;
	struct dbx_error err;
};

static struct fixture *setup_with(const struct fake_reply *script, size_t n)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	fake_transport_init(&f->fake, script, n);
	fake_clock_init(&f->fc, T0);
	f->bt = dbx_http_budget_new(&f->fake.base, ARM_SCOPE, &small, &f->fc.clock);
	assert_non_null(f->bt);
	return f;
}

static void teardown_f(struct fixture *f)
{
	dbx_http_response_reset(&f->resp);
	dbx_transport_destroy(f->bt); /* the fake's destroy leaves it to fini */
	fake_transport_fini(&f->fake);
	free(f);
}

static enum dbx_err send_to(struct fixture *f, const char *method, const char *url,
			    const char *scope, uint64_t deadline)
{
	struct dbx_http_request req = {
	    .method = method,
	    .url = url,
	    .scope = scope,
	    .deadline_ms = deadline,
	    .idempotent = strcmp(method, "GET") == 0,
	};

	dbx_http_response_reset(&f->resp);
	dbx_error_clear(&f->err);
	return dbx_http_send(f->bt, &req, &f->resp, &f->err);
}

#define SUB_A "https://management.azure.com/subscriptions/aaaa/providers/Microsoft.DataBox/jobs"
#define SUB_B "https://management.azure.com/subscriptions/BBBB/resourceGroups/rg/providers/x"

static enum dbx_err get(struct fixture *f, const char *url)
{
	return send_to(f, "GET", url, ARM_SCOPE, 0);
}

/* A burst goes at once; past it requests are spaced at the rate. */
static void test_burst_then_rate(void **state)
{
	struct fixture *f = setup_with(NULL, 0);

	(void)state;
	for (int i = 0; i < 3; i++)
		(void)get(f, SUB_A);
	assert_int_equal(f->fc.n_sleeps, 0);
	(void)get(f, SUB_A);
	assert_int_equal(f->fc.n_sleeps, 1);
	assert_in_range(f->fc.sleeps[0], 500, 502); /* 2 a second */
	(void)get(f, SUB_A);
	assert_in_range(f->fc.sleeps[1], 500, 502);
	assert_int_equal(f->fake.n_calls, 5);
	/* A pause refills the bucket, never past the burst. */
	f->fc.now += 60000;
	for (int i = 0; i < 3; i++)
		(void)get(f, SUB_A);
	assert_int_equal(f->fc.n_sleeps, 2);
	(void)get(f, SUB_A);
	assert_int_equal(f->fc.n_sleeps, 3);
	teardown_f(f);
}

/* Each subscription, and writes apart from reads, have buckets of their own. */
static void test_buckets_per_subscription_and_kind(void **state)
{
	struct fixture *f = setup_with(NULL, 0);

	(void)state;
	for (int i = 0; i < 3; i++)
		(void)get(f, SUB_A);
	for (int i = 0; i < 3; i++)
		(void)get(f, SUB_B);
	(void)send_to(f, "PATCH", SUB_A "/o1", ARM_SCOPE, 0);
	assert_int_equal(f->fc.n_sleeps, 0);
	/* the subscription ID is matched case-insensitively, as ARM does */
	(void)get(f, "https://management.azure.com/subscriptions/bbbb/providers/y");
	assert_int_equal(f->fc.n_sleeps, 1);
	(void)send_to(f, "PATCH", SUB_A "/o2", ARM_SCOPE, 0);
	assert_int_equal(f->fc.n_sleeps, 2);
	assert_in_range(f->fc.sleeps[1], 500, 1001);
	teardown_f(f);
}

/* Key Vault, Entra and IMDS requests are not ARM's to budget. */
static void test_other_services_pass_through(void **state)
{
	struct fixture *f = setup_with(NULL, 0);

	(void)state;
	for (int i = 0; i < 10; i++)
		(void)send_to(f, "GET", "https://kv.vault.azure.net/keys/k?api-version=7.4",
			      "https://vault.azure.net/.default", 0);
	for (int i = 0; i < 10; i++)
		(void)send_to(f, "POST", "https://login.microsoftonline.com/t/oauth2/v2.0/token",
			      NULL, 0);
	assert_int_equal(f->fc.n_sleeps, 0);
	assert_int_equal(f->fake.n_calls, 20);
	teardown_f(f);
}

/* A wait for the budget that would pass the deadline is not begun. */
static void test_wait_past_deadline_refused(void **state)
{
	struct fixture *f = setup_with(NULL, 0);

	(void)state;
	for (int i = 0; i < 3; i++)
		(void)get(f, SUB_A);
	assert_int_equal(send_to(f, "GET", SUB_A, ARM_SCOPE, f->fc.now + 300), DBX_ETHROTTLED);
	assert_non_null(strstr(f->err.message, "budget"));
	assert_int_equal(f->fake.n_calls, 3);
	assert_int_equal(f->fc.n_sleeps, 0);
	/* The refused request took nothing: a later one waits only its own turn. */
	assert_int_equal(send_to(f, "GET", SUB_A, ARM_SCOPE, f->fc.now + 10000), DBX_OK);
	assert_in_range(f->fc.sleeps[0], 500, 502);
	teardown_f(f);
}

/* ARM saying the budget runs low slows the mount down; so does a 429. */
static void test_learns_from_the_service(void **state)
{
	static const struct fake_reply script[] = {
	    {.status = 200, .ratelimit = 3 + 1}, /* 3 left: less the reserve of 2, 1 is ours */
	    {.status = 200},
	    {.status = 200},
	    {.status = 429, .retry_after = "1"},
	    {.status = 200},
	};
	struct fixture *f = setup_with(script, N(script));

	(void)state;
	(void)get(f, SUB_A);
	(void)get(f, SUB_A);
	assert_int_equal(f->fc.n_sleeps, 0);
	(void)get(f, SUB_A);
	assert_int_equal(f->fc.n_sleeps, 1);
	f->fc.now += 60000; /* full again */
	assert_int_equal(get(f, SUB_A), DBX_OK);
	assert_int_equal(f->resp.status, 429);
	(void)get(f, SUB_A);
	assert_int_equal(f->fc.n_sleeps, 2);
	assert_in_range(f->fc.sleeps[1], 500, 502);
	teardown_f(f);
}

/* The ARM host's tenant-level requests (the subscriptions list) share one bucket. */
static void test_tenant_level_bucket(void **state)
{
	struct fixture *f = setup_with(NULL, 0);

	(void)state;
	for (int i = 0; i < 3; i++)
		(void)get(f, "https://management.azure.com/subscriptions?api-version=2022-12-01");
	(void)get(f, "https://management.azure.com/providers/Microsoft.DataBox/operations");
	assert_int_equal(f->fc.n_sleeps, 1);
	(void)get(f, SUB_A);
	assert_int_equal(f->fc.n_sleeps, 1);
	teardown_f(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_burst_then_rate),
	    cmocka_unit_test(test_buckets_per_subscription_and_kind),
	    cmocka_unit_test(test_other_services_pass_through),
	    cmocka_unit_test(test_wait_past_deadline_refused),
	    cmocka_unit_test(test_learns_from_the_service),
	    cmocka_unit_test(test_tenant_level_bucket),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
