/*
 * test_retry.c: the retry layer (backend/http/retry.c) over the scripted fake
 * transport and the fake clock.
 *
 * What a user notices: a throttled or flaky ARM is ridden out with the
 * waits the service asked for; a PATCH is never sent twice when the first
 * one may have been applied; nothing waits past the operation's timeout;
 * and every attempt is a distinct request id for support tickets.
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

#define T0 1000000u

/*
 * A spy between the retry layer and the fake: records the client request
 * id of every attempt and can make each attempt take time on the fake clock.
 */
struct spy {
	struct dbx_transport base;
	struct fake_transport *fake;
	struct fake_clock *fc;
	uint64_t cost_ms;
	char ids[FAKE_MAX_CALLS][DBX_HTTP_UUID_LEN + 1];
	size_t n;
};

static enum dbx_err spy_send(struct dbx_transport *self, const struct dbx_http_request *req,
			     struct dbx_http_response *resp, struct dbx_error *err)
{
	struct spy *s = (struct spy *)self;
	enum dbx_err rc = s->fake->base.send(&s->fake->base, req, resp, err);

	if (s->n < FAKE_MAX_CALLS)
		memcpy(s->ids[s->n++], resp->client_request_id, DBX_HTTP_UUID_LEN + 1);
	s->fc->now += s->cost_ms;
	return rc;
}

static void spy_destroy(struct dbx_transport *self)
{
	(void)self;
}

struct fixture {
	struct fake_transport fake;
	struct fake_clock fc;
	struct spy spy;
	struct dbx_transport *rt;
	struct dbx_http_response resp;
	struct dbx_error err;
};

static struct fixture *setup_with(const struct fake_reply *script, size_t n,
				  const struct dbx_retry_policy *policy)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	fake_transport_init(&f->fake, script, n);
	fake_clock_init(&f->fc, T0);
	f->spy.base.send = spy_send;
	f->spy.base.destroy = spy_destroy;
	f->spy.fake = &f->fake;
	f->spy.fc = &f->fc;
	f->rt = dbx_http_retry_new(&f->spy.base, policy, &f->fc.clock);
	assert_non_null(f->rt);
	return f;
}

static void teardown_f(struct fixture *f)
{
	dbx_http_response_reset(&f->resp);
	dbx_transport_destroy(f->rt);
	fake_transport_fini(&f->fake);
	free(f);
}

static enum dbx_err send_req(struct fixture *f, const char *method, uint64_t deadline)
{
	struct dbx_http_request req = {
	    .method = method,
	    .url = "https://management.azure.com/subscriptions/s/resourceGroups/rg/providers/"
		   "Microsoft.DataBox/jobs/o1?api-version=2025-07-01",
	    .deadline_ms = deadline,
	    .idempotent = strcmp(method, "GET") == 0,
	};

	if (strcmp(method, "GET") != 0) {
		req.body = "{}";
		req.body_len = 2;
		req.content_type = "application/json";
	}
	dbx_http_response_reset(&f->resp);
	dbx_error_clear(&f->err);
	return dbx_http_send(f->rt, &req, &f->resp, &f->err);
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void test_429_retry_after_seconds(void **state)
{
	static const struct fake_reply script[] = {
	    {.status = 429, .retry_after = "2"},
	    {.status = 200, .body = "{\"ok\":true}"},
	};
	struct fixture *f = setup_with(script, N(script), NULL);

	(void)state;
	assert_int_equal(send_req(f, "GET", 0), DBX_OK);
	assert_int_equal(f->resp.status, 200);
	assert_string_equal(f->resp.body, "{\"ok\":true}");
	assert_int_equal(f->fake.n_calls, 2);
	assert_int_equal(f->fc.n_sleeps, 1);
	assert_int_equal(f->fc.sleeps[0], 2000);
	teardown_f(f);
}

static void test_retry_after_ms_wins(void **state)
{
	static const struct fake_reply script[] = {
	    {.status = 503, .retry_after_ms = "1500", .retry_after = "9"},
	    {.status = 429, .retry_after_ms = "  250 "},
	    {.status = 200},
	};
	struct fixture *f = setup_with(script, N(script), NULL);

	(void)state;
	assert_int_equal(send_req(f, "GET", 0), DBX_OK);
	assert_int_equal(f->resp.status, 200);
	assert_int_equal(f->fc.n_sleeps, 2);
	assert_int_equal(f->fc.sleeps[0], 1500);
	assert_int_equal(f->fc.sleeps[1], 250);
	teardown_f(f);
}

/* 503 three times, then 200: three waits in the jittered exponential bands. */
static void check_backoff(uint32_t random_value, const uint64_t want[3])
{
	static const struct fake_reply script[] = {
	    {.status = 503},
	    {.status = 503},
	    {.status = 503},
	    {.status = 200},
	};
	struct fixture *f = setup_with(script, N(script), NULL);

	f->fc.random_value = random_value;
	assert_int_equal(send_req(f, "GET", 0), DBX_OK);
	assert_int_equal(f->resp.status, 200);
	assert_int_equal(f->fake.n_calls, 4);
	assert_int_equal(f->fc.n_sleeps, 3);
	for (int i = 0; i < 3; i++) {
		uint64_t nominal = 800u << i;

		assert_true(f->fc.sleeps[i] >= nominal * 80 / 100);
		assert_true(f->fc.sleeps[i] <= nominal * 120 / 100);
		assert_int_equal(f->fc.sleeps[i], want[i]);
	}
	teardown_f(f);
}

static void test_503_exponential_jitter(void **state)
{
	static const uint64_t low[3] = {640, 1280, 2560};
	static const uint64_t mid[3] = {800, 1600, 3200};
	static const uint64_t high[3] = {960, 1920, 3840};

	(void)state;
	check_backoff(0, low);
	check_backoff(20, mid);
	check_backoff(40, high);
	check_backoff(1000, high); /* random() is bounded: never above 120 % */
}

static void test_client_errors_not_retried(void **state)
{
	static const long codes[] = {400, 401, 403, 404, 409, 412, 501, 505};

	(void)state;
	for (size_t i = 0; i < N(codes); i++) {
		struct fake_reply script[] = {{.status = codes[i]}, {.status = 200}};
		struct fixture *f = setup_with(script, N(script), NULL);

		assert_int_equal(send_req(f, "GET", 0), DBX_OK);
		assert_int_equal(f->resp.status, codes[i]);
		assert_int_equal(f->fake.n_calls, 1);
		assert_int_equal(f->fc.n_sleeps, 0);
		teardown_f(f);
	}
}

static void test_patch_not_resent_after_5xx(void **state)
{
	static const long codes[] = {500, 502, 503, 504};

	(void)state;
	for (size_t i = 0; i < N(codes); i++) {
		struct fake_reply script[] = {{.status = codes[i]}, {.status = 202}};
		struct fixture *f = setup_with(script, N(script), NULL);

		assert_int_equal(send_req(f, "PATCH", 0), DBX_OK);
		assert_int_equal(f->resp.status, codes[i]);
		assert_int_equal(f->fake.n_calls, 1);
		teardown_f(f);
	}
}

static void test_patch_not_resent_after_eremote(void **state)
{
	static const struct fake_reply script[] = {
	    {.transport_err = DBX_EREMOTE},
	    {.status = 202},
	};
	struct fixture *f = setup_with(script, N(script), NULL);

	(void)state;
	assert_int_equal(send_req(f, "PATCH", 0), DBX_EREMOTE);
	assert_int_equal(f->err.err, DBX_EREMOTE);
	assert_int_equal(f->fake.n_calls, 1);
	teardown_f(f);
}

static void test_patch_resent_after_429_and_unreachable(void **state)
{
	static const struct fake_reply script[] = {
	    {.status = 429, .retry_after = "1"},
	    {.transport_err = DBX_EUNREACHABLE},
	    {.status = 408},
	    {.status = 202, .location = "https://management.azure.com/op"},
	};
	struct fixture *f = setup_with(script, N(script), NULL);

	(void)state;
	assert_int_equal(send_req(f, "PATCH", 0), DBX_OK);
	assert_int_equal(f->resp.status, 202);
	assert_string_equal(f->resp.location, "https://management.azure.com/op");
	assert_int_equal(f->fake.n_calls, 4);
	for (size_t i = 0; i < 4; i++) {
		assert_string_equal(f->fake.calls[i].method, "PATCH");
		assert_string_equal(f->fake.calls[i].body, "{}");
	}
	teardown_f(f);
}

static void test_get_resent_after_transport_errors(void **state)
{
	static const struct fake_reply script[] = {
	    {.transport_err = DBX_EREMOTE},
	    {.transport_err = DBX_EUNREACHABLE},
	    {.transport_err = DBX_ETIMEDOUT}, /* no deadline: a connection-level timeout */
	    {.status = 200},
	};
	struct fixture *f = setup_with(script, N(script), NULL);

	(void)state;
	assert_int_equal(send_req(f, "GET", 0), DBX_OK);
	assert_int_equal(f->resp.status, 200);
	assert_int_equal(f->fake.n_calls, 4);
	assert_int_equal(f->err.err, DBX_OK); /* no stale error left behind */
	teardown_f(f);
}

/* A body over the cap is not transient: the same GET would fetch it again. */
static void test_oversized_body_not_resent(void **state)
{
	static const struct fake_reply script[] = {
	    {.transport_err = DBX_EREMOTE, .transport_code = DBX_HTTP_CODE_TOO_LARGE},
	    {.status = 200},
	};
	struct fixture *f = setup_with(script, N(script), NULL);

	(void)state;
	assert_int_equal(send_req(f, "GET", 0), DBX_EREMOTE);
	assert_int_equal(f->fake.n_calls, 1);
	assert_string_equal(f->err.code, DBX_HTTP_CODE_TOO_LARGE);
	teardown_f(f);
}

static enum dbx_err send_url(struct fixture *f, const char *method, const char *url)
{
	struct dbx_http_request req = {
	    .method = method, .url = url, .idempotent = strcmp(method, "GET") == 0};

	dbx_http_response_reset(&f->resp);
	dbx_error_clear(&f->err);
	return dbx_http_send(f->rt, &req, &f->resp, &f->err);
}

/*
 * A host whose retries all failed is down for a moment: the next requests
 * to it (the other FUSE requests of the same system call) fail at once;
 * other hosts are not affected; after the quiet time each request gets one
 * try (a probe, no resends) until the host answers again.
 */
static void test_down_host_fails_at_once(void **state)
{
	static const struct fake_reply script[] = {
	    {.transport_err = DBX_EUNREACHABLE}, {.transport_err = DBX_EUNREACHABLE},
	    {.transport_err = DBX_EUNREACHABLE}, {.transport_err = DBX_EUNREACHABLE},
	    {.transport_err = DBX_EUNREACHABLE}, {.status = 200},
	    {.transport_err = DBX_EUNREACHABLE}, {.status = 200},
	    {.transport_err = DBX_EUNREACHABLE}, {.status = 200},
	};
	struct fixture *f = setup_with(script, N(script), NULL);
	uint64_t t;

	(void)state;
	assert_int_equal(send_url(f, "GET", "https://management.azure.com/a"), DBX_EUNREACHABLE);
	assert_int_equal(f->fake.n_calls, 5);
	t = f->fc.now;
	assert_int_equal(send_url(f, "GET", "https://MANAGEMENT.azure.com/b"), DBX_EUNREACHABLE);
	assert_int_equal(f->fake.n_calls, 5);
	assert_int_equal(f->fc.now, t);
	assert_non_null(strstr(f->err.message, "not tried again"));
	/* Another host is another matter. */
	assert_int_equal(send_url(f, "GET", "https://kv.vault.azure.net/keys/k"), DBX_OK);
	assert_int_equal(f->fake.n_calls, 6);
	/* After the quiet time: one try, no resend, and still down. */
	f->fc.now += DBX_HTTP_DOWN_QUIET_MS;
	t = f->fc.now;
	assert_int_equal(send_url(f, "GET", "https://management.azure.com/c"), DBX_EUNREACHABLE);
	assert_int_equal(f->fake.n_calls, 7);
	assert_int_equal(f->fc.now, t);
	assert_int_equal(send_url(f, "GET", "https://management.azure.com/c"), DBX_EUNREACHABLE);
	assert_int_equal(f->fake.n_calls, 7);
	/* The probe that gets an answer ends it: resends as usual again. */
	f->fc.now += DBX_HTTP_DOWN_QUIET_MS;
	assert_int_equal(send_url(f, "GET", "https://management.azure.com/d"), DBX_OK);
	assert_int_equal(f->fake.n_calls, 8);
	assert_int_equal(send_url(f, "GET", "https://management.azure.com/e"), DBX_OK);
	assert_int_equal(f->fake.n_calls, 10); /* a refusal resent, then the answer */
	teardown_f(f);
}

/* A PATCH whose answer was lost says nothing of the host: the read after it goes out. */
static void test_dropped_patch_does_not_mark_host_down(void **state)
{
	static const struct fake_reply script[] = {
	    {.transport_err = DBX_EREMOTE},
	    {.status = 200},
	};
	struct fixture *f = setup_with(script, N(script), NULL);

	(void)state;
	assert_int_equal(send_url(f, "PATCH", "https://management.azure.com/j"), DBX_EREMOTE);
	assert_int_equal(send_url(f, "GET", "https://management.azure.com/j"), DBX_OK);
	assert_int_equal(f->fake.n_calls, 2);
	teardown_f(f);
}

/* A request that timed out (its system call's deadline came) is no evidence either. */
static void test_timeout_does_not_mark_host_down(void **state)
{
	static const struct fake_reply script[] = {
	    {.transport_err = DBX_ETIMEDOUT},
	    {.status = 200},
	};
	struct fixture *f = setup_with(script, N(script), NULL);

	(void)state;
	f->spy.cost_ms = 5000;
	assert_int_equal(send_req(f, "GET", f->fc.now + 5000), DBX_ETIMEDOUT);
	f->spy.cost_ms = 0;
	assert_int_equal(send_req(f, "GET", 0), DBX_OK);
	assert_int_equal(f->fake.n_calls, 2);
	teardown_f(f);
}

/* A caller with its own way out asks for fewer resends; its failure marks no host down. */
static void test_request_retry_budget(void **state)
{
	static const struct fake_reply script[] = {
	    {.transport_err = DBX_EREMOTE},
	    {.transport_err = DBX_EREMOTE},
	    {.status = 200},
	    {.status = 200},
	};
	struct fixture *f = setup_with(script, N(script), NULL);
	struct dbx_http_request req = {.method = "GET",
				       .url = "https://management.azure.com/op",
				       .idempotent = true,
				       .max_retries = 1};

	(void)state;
	assert_int_equal(dbx_http_send(f->rt, &req, &f->resp, &f->err), DBX_EREMOTE);
	assert_int_equal(f->fake.n_calls, 2);
	assert_int_equal(send_url(f, "GET", "https://management.azure.com/job"), DBX_OK);
	assert_int_equal(f->fake.n_calls, 3);
	teardown_f(f);
}

static void test_max_retries(void **state)
{
	static const struct fake_reply all503[] = {
	    {.status = 503}, {.status = 503}, {.status = 503}, {.status = 503},
	    {.status = 503}, {.status = 503}, {.status = 503}, {.status = 503},
	};
	const struct dbx_retry_policy two = {
	    .max_retries = 2, .base_delay_ms = 100, .max_delay_ms = 1000};
	const struct dbx_retry_policy none = {
	    .max_retries = 0, .base_delay_ms = 100, .max_delay_ms = 1000};
	struct fixture *f;

	(void)state;
	f = setup_with(all503, N(all503), NULL); /* default: 4 retries */
	assert_int_equal(send_req(f, "GET", 0), DBX_OK);
	assert_int_equal(f->resp.status, 503);
	assert_int_equal(f->fake.n_calls, 5);
	assert_int_equal(f->fc.n_sleeps, 4);
	teardown_f(f);

	f = setup_with(all503, N(all503), &two);
	assert_int_equal(send_req(f, "GET", 0), DBX_OK);
	assert_int_equal(f->fake.n_calls, 3);
	assert_int_equal(f->fc.sleeps[0], 80);
	assert_int_equal(f->fc.sleeps[1], 160);
	teardown_f(f);

	f = setup_with(all503, N(all503), &none);
	assert_int_equal(send_req(f, "GET", 0), DBX_OK);
	assert_int_equal(f->fake.n_calls, 1);
	teardown_f(f);
}

static void test_max_delay_caps_backoff(void **state)
{
	static const struct fake_reply script[] = {
	    {.status = 500}, {.status = 500}, {.status = 500}, {.status = 500}, {.status = 200},
	};
	const struct dbx_retry_policy p = {
	    .max_retries = 4, .base_delay_ms = 1000, .max_delay_ms = 3000};
	struct fixture *f = setup_with(script, N(script), &p);

	(void)state;
	f->fc.random_value = 40; /* 120 % */
	assert_int_equal(send_req(f, "GET", 0), DBX_OK);
	assert_int_equal(f->fc.n_sleeps, 4);
	assert_int_equal(f->fc.sleeps[0], 1200);
	assert_int_equal(f->fc.sleeps[1], 2400);
	assert_int_equal(f->fc.sleeps[2], 3000);
	assert_int_equal(f->fc.sleeps[3], 3000);
	teardown_f(f);
}

static void test_deadline_stops_before_long_wait(void **state)
{
	static const struct fake_reply script[] = {
	    {.status = 429, .retry_after = "30", .request_id = "rid-429"},
	    {.status = 200},
	};
	struct fixture *f = setup_with(script, N(script), NULL);

	(void)state;
	assert_int_equal(send_req(f, "PATCH", T0 + 10000), DBX_OK);
	assert_int_equal(f->resp.status, 429); /* the caller maps it to ETHROTTLED */
	assert_string_equal(f->resp.request_id, "rid-429");
	assert_int_equal(f->fake.n_calls, 1);
	assert_int_equal(f->fc.n_sleeps, 0);
	assert_int_equal(f->fc.now, T0);
	teardown_f(f);
}

static void test_deadline_bounds_backoff(void **state)
{
	static const struct fake_reply script[] = {
	    {.status = 503},
	    {.status = 503},
	    {.status = 503},
	    {.status = 200},
	};
	struct fixture *f = setup_with(script, N(script), NULL);

	(void)state;
	f->fc.random_value = 20; /* 800, 1600, 3200 */
	assert_int_equal(send_req(f, "GET", T0 + 3000), DBX_OK);
	assert_int_equal(f->resp.status, 503);
	assert_int_equal(f->fake.n_calls, 3); /* 800 + 1600 fit, 3200 more does not */
	assert_true(f->fc.now <= T0 + 3000);
	teardown_f(f);
}

/* A read's retry budget (retry_until_ms) stops resends well before its deadline. */
static void test_retry_until_bounds_resends(void **state)
{
	static const struct fake_reply script[] = {
	    {.status = 503}, {.status = 503}, {.status = 503}, {.status = 503}, {.status = 200},
	};
	struct fixture *f = setup_with(script, N(script), NULL);
	struct dbx_http_request req = {
	    .method = "GET",
	    .url = "https://management.azure.com/subscriptions/s/providers/Microsoft.DataBox/jobs",
	    .deadline_ms = T0 + 120000,
	    .retry_until_ms = T0 + 5000,
	    .idempotent = true,
	};

	(void)state;
	f->fc.random_value = 20; /* 800, 1600, 3200 */
	assert_int_equal(dbx_http_send(f->rt, &req, &f->resp, &f->err), DBX_OK);
	assert_int_equal(f->resp.status, 503);
	assert_int_equal(f->fake.n_calls, 3); /* resends at 800 and 2400; 5600 is past the budget */
	assert_int_equal(f->fc.now, T0 + 2400);
	teardown_f(f);
}

/* A Retry-After longer than what is left of the budget is not waited for. */
static void test_retry_until_skips_long_retry_after(void **state)
{
	static const struct fake_reply script[] = {
	    {.status = 429, .retry_after = "10"},
	    {.status = 200},
	};
	struct fixture *f = setup_with(script, N(script), NULL);
	struct dbx_http_request req = {
	    .method = "GET",
	    .url = "https://management.azure.com/subscriptions/s/providers/Microsoft.DataBox/jobs",
	    .deadline_ms = T0 + 120000,
	    .retry_until_ms = T0 + 5000,
	    .idempotent = true,
	};

	(void)state;
	assert_int_equal(dbx_http_send(f->rt, &req, &f->resp, &f->err), DBX_OK);
	assert_int_equal(f->resp.status, 429);
	assert_int_equal(f->fake.n_calls, 1);
	assert_int_equal(f->fc.n_sleeps, 0);
	teardown_f(f);
}

static void test_deadline_hit_mid_request(void **state)
{
	static const struct fake_reply script[] = {
	    {.transport_err = DBX_ETIMEDOUT},
	    {.status = 200},
	};
	struct fixture *f = setup_with(script, N(script), NULL);

	(void)state;
	f->spy.cost_ms = 5000; /* the request ran into its deadline */
	assert_int_equal(send_req(f, "GET", T0 + 5000), DBX_ETIMEDOUT);
	assert_int_equal(f->err.err, DBX_ETIMEDOUT);
	assert_int_equal(f->fake.n_calls, 1);
	assert_int_equal(f->fc.n_sleeps, 0);
	teardown_f(f);
}

static void test_transport_error_after_budget(void **state)
{
	static const struct fake_reply script[] = {
	    {.transport_err = DBX_EUNREACHABLE}, {.transport_err = DBX_EUNREACHABLE},
	    {.transport_err = DBX_EUNREACHABLE}, {.transport_err = DBX_EUNREACHABLE},
	    {.transport_err = DBX_EUNREACHABLE}, {.status = 200},
	};
	struct fixture *f = setup_with(script, N(script), NULL);

	(void)state;
	assert_int_equal(send_req(f, "GET", 0), DBX_EUNREACHABLE);
	assert_int_equal(f->err.err, DBX_EUNREACHABLE);
	assert_string_equal(f->err.message, "fake transport failure");
	assert_int_equal(f->fake.n_calls, 5);
	teardown_f(f);
}

static void test_fresh_client_request_id_per_attempt(void **state)
{
	static const struct fake_reply script[] = {
	    {.status = 503},
	    {.status = 429},
	    {.transport_err = DBX_EREMOTE},
	    {.status = 200},
	};
	struct fixture *f = setup_with(script, N(script), NULL);

	(void)state;
	assert_int_equal(send_req(f, "GET", 0), DBX_OK);
	assert_int_equal(f->spy.n, 4);
	for (size_t i = 0; i < f->spy.n; i++) {
		assert_int_equal(strlen(f->spy.ids[i]), DBX_HTTP_UUID_LEN);
		for (size_t j = 0; j < i; j++)
			assert_string_not_equal(f->spy.ids[i], f->spy.ids[j]);
	}
	/* The caller sees the id of the attempt that answered. */
	assert_string_equal(f->resp.client_request_id, f->spy.ids[3]);
	teardown_f(f);
}

static enum dbx_err interrupted_sleep(void *ctx, uint64_t ms)
{
	(void)ctx;
	(void)ms;
	return DBX_EINTR;
}

/* Ctrl-C while waiting to retry: the caller learns it was interrupted, nothing more is sent. */
static void test_interrupted_while_waiting(void **state)
{
	static const struct fake_reply script[] = {
	    {.status = 429, .retry_after = "5"},
	    {.status = 202},
	};
	struct fixture *f = setup_with(script, N(script), NULL);
	struct dbx_clock clock = f->fc.clock;

	(void)state;
	clock.sleep_ms = interrupted_sleep;
	dbx_transport_destroy(f->rt);
	f->rt = dbx_http_retry_new(&f->spy.base, NULL, &clock);
	assert_non_null(f->rt);
	assert_int_equal(send_req(f, "PATCH", 0), DBX_EINTR);
	assert_int_equal(f->err.err, DBX_EINTR);
	assert_int_equal(f->fake.n_calls, 1);
	assert_null(f->resp.body); /* the 429 was released */
	teardown_f(f);
}

static void format_http_date(time_t t, char *buf, size_t cap)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, cap, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

static void test_retry_after_http_date(void **state)
{
	char future[64];
	struct fake_reply script[] = {
	    {.status = 503, .retry_after = future},
	    {.status = 429, .retry_after = "Wed, 21 Oct 2015 07:28:00 GMT"}, /* past: at once */
	    {.status = 200},
	};
	struct fixture *f;

	(void)state;
	f = setup_with(script, N(script), NULL);
	format_http_date(f->fc.wall + 5, future, sizeof(future)); /* on the retry layer's clock */
	assert_int_equal(send_req(f, "GET", 0), DBX_OK);
	assert_int_equal(f->resp.status, 200);
	assert_int_equal(f->fc.n_sleeps, 2);
	assert_int_equal(f->fc.sleeps[0], 5000);
	assert_int_equal(f->fc.sleeps[1], 0);
	teardown_f(f);
}

static void test_delay_table(void **state)
{
	struct fake_clock fc;
	const struct dbx_retry_policy p = {
	    .max_retries = 4, .base_delay_ms = 800, .max_delay_ms = 60000};
	/* clang-format off */
	static const struct {
		long status;
		const char *ra;
		const char *ra_ms;
		enum dbx_err terr;
		bool idempotent;
		unsigned attempt;
		uint32_t rnd;
		uint64_t want;
	} rows[] = {
		/* status, Retry-After, retry-after-ms, transport error, idempotent, attempt, random, delay */
		{ 200, NULL, NULL, DBX_OK, true, 1, 0, UINT64_MAX },
		{ 202, "10", NULL, DBX_OK, true, 1, 0, UINT64_MAX }, /* an LRO's Retry-After is not ours */
		{ 400, NULL, NULL, DBX_OK, true, 1, 0, UINT64_MAX },
		{ 404, NULL, NULL, DBX_OK, true, 1, 0, UINT64_MAX },
		{ 409, NULL, NULL, DBX_OK, true, 1, 0, UINT64_MAX },
		{ 408, NULL, NULL, DBX_OK, true, 1, 20, 800 },
		{ 408, NULL, NULL, DBX_OK, false, 1, 20, 800 },
		{ 429, "7", NULL, DBX_OK, false, 3, 0, 7000 },
		{ 429, "0", NULL, DBX_OK, true, 1, 0, 0 },
		{ 429, "-3", NULL, DBX_OK, true, 1, 0, 640 },   /* nonsense: backoff */
		{ 429, "soon", NULL, DBX_OK, true, 2, 0, 1280 }, /* nonsense: backoff */
		{ 429, "120", NULL, DBX_OK, true, 1, 0, 120000 }, /* the server's wait beats the cap */
		{ 503, "9", "40", DBX_OK, true, 1, 0, 40 },
		{ 500, NULL, NULL, DBX_OK, true, 1, 40, 960 },
		{ 502, NULL, NULL, DBX_OK, true, 2, 40, 1920 },
		{ 504, NULL, NULL, DBX_OK, true, 3, 0, 2560 },
		{ 500, NULL, NULL, DBX_OK, false, 1, 0, UINT64_MAX },
		{ 503, "1", NULL, DBX_OK, false, 1, 0, UINT64_MAX },
		{ 503, NULL, NULL, DBX_OK, true, 7, 40, 60000 },  /* 51200 * 1.2 capped */
		{ 503, NULL, NULL, DBX_OK, true, 40, 0, 48000 },  /* huge attempt: no overflow */
		{ 0, NULL, NULL, DBX_EUNREACHABLE, false, 1, 20, 800 },
		{ 0, NULL, NULL, DBX_EUNREACHABLE, true, 2, 20, 1600 },
		{ 0, NULL, NULL, DBX_EREMOTE, true, 1, 20, 800 },
		{ 0, NULL, NULL, DBX_EREMOTE, false, 1, 20, UINT64_MAX },
		{ 0, NULL, NULL, DBX_ETIMEDOUT, false, 1, 20, UINT64_MAX },
		{ 0, NULL, NULL, DBX_EINTR, true, 1, 20, UINT64_MAX },
		{ 0, NULL, NULL, DBX_ECONFIG, true, 1, 20, UINT64_MAX },
		{ 0, NULL, NULL, DBX_ENOMEM, true, 1, 20, UINT64_MAX },
	};
	/* clang-format on */

	(void)state;
	for (size_t i = 0; i < N(rows); i++) {
		struct dbx_http_response r = {.status = rows[i].status,
					      .retry_after = (char *)rows[i].ra,
					      .retry_after_ms = (char *)rows[i].ra_ms};
		uint64_t got;

		fake_clock_init(&fc, T0);
		fc.random_value = rows[i].rnd;
		got = dbx_retry_delay_ms(&p, &fc.clock, rows[i].attempt, rows[i].terr ? NULL : &r,
					 rows[i].terr, rows[i].idempotent);
		if (got != rows[i].want)
			fail_msg("row %zu: status %ld attempt %u: got %llu, want %llu", i,
				 rows[i].status, rows[i].attempt, (unsigned long long)got,
				 (unsigned long long)rows[i].want);
	}
	/* NULL policy: the defaults (base 800 ms). */
	{
		struct dbx_http_response r = {.status = 503};

		fake_clock_init(&fc, T0);
		fc.random_value = 20;
		assert_int_equal(dbx_retry_delay_ms(NULL, &fc.clock, 1, &r, DBX_OK, true), 800);
		assert_int_equal(dbx_retry_delay_ms(NULL, &fc.clock, 8, &r, DBX_OK, true), 60000);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_429_retry_after_seconds),
	    cmocka_unit_test(test_retry_after_ms_wins),
	    cmocka_unit_test(test_503_exponential_jitter),
	    cmocka_unit_test(test_client_errors_not_retried),
	    cmocka_unit_test(test_patch_not_resent_after_5xx),
	    cmocka_unit_test(test_patch_not_resent_after_eremote),
	    cmocka_unit_test(test_patch_resent_after_429_and_unreachable),
	    cmocka_unit_test(test_get_resent_after_transport_errors),
	    cmocka_unit_test(test_oversized_body_not_resent),
	    cmocka_unit_test(test_down_host_fails_at_once),
	    cmocka_unit_test(test_request_retry_budget),
	    cmocka_unit_test(test_dropped_patch_does_not_mark_host_down),
	    cmocka_unit_test(test_timeout_does_not_mark_host_down),
	    cmocka_unit_test(test_max_retries),
	    cmocka_unit_test(test_max_delay_caps_backoff),
	    cmocka_unit_test(test_deadline_stops_before_long_wait),
	    cmocka_unit_test(test_deadline_bounds_backoff),
	    cmocka_unit_test(test_deadline_hit_mid_request),
	    cmocka_unit_test(test_retry_until_bounds_resends),
	    cmocka_unit_test(test_retry_until_skips_long_retry_after),
	    cmocka_unit_test(test_transport_error_after_budget),
	    cmocka_unit_test(test_fresh_client_request_id_per_attempt),
	    cmocka_unit_test(test_interrupted_while_waiting),
	    cmocka_unit_test(test_retry_after_http_date),
	    cmocka_unit_test(test_delay_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
