/*
 * test_auth.c: the auth layer's token cache and the credentials
 * (backend/cred/auth.c, backend/cred/env.c), over the scripted fake transport.
 *
 * What a user notices: every ARM/Key Vault request carries the right
 * token; a mount makes one token request per audience, not one per file;
 * tokens are renewed before they expire and after a 401; a burst of `ls`
 * on a cold mount makes one token request; the environment credential
 * speaks the exact Entra ID wire format; and a misconfigured credential
 * says what is missing without ever echoing the secret.
 */
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "databoxfs/auth.h"
#include "cred/common.h"
#include "fake_transport.h"

#define T0	  5000000u
#define ARM_SCOPE "https://management.azure.com/.default"
#define KV_SCOPE  "https://vault.azure.net/.default"
#define N(a)	  (sizeof(a) / sizeof((a)[0]))

/* ---- a counting credential stub ---- */

#define STUB_MAX_CALLS 64

struct stub_cred {
	struct dbx_credential base;
	pthread_mutex_t lock;
	int calls;
	int fail_from;			    /* calls numbered >= fail_from fail (0: never) */
	time_t life_s;			    /* lifetime of the tokens it hands out */
	time_t expires_on;		    /* when non-zero: the expiry it claims instead */
	long sleep_ms;			    /* real time each call takes (single-flight test) */
	const struct dbx_clock *clock;	    /* the auth layer's: life_s counts from its wall time */
	uint64_t deadlines[STUB_MAX_CALLS]; /* the deadline_ms each call was given */
	/*
	 * gated: the first call blocks (a stuck token endpoint) until the test
	 * opens the gate, then fails with gate_fail (DBX_OK: succeeds).
	 */
	bool gated;
	bool gate_open;
	bool in_gate;
	enum dbx_err gate_fail;
	pthread_cond_t gate_cv;
};

static enum dbx_err stub_get_token(struct dbx_credential *self, const char *scope,
				   uint64_t deadline_ms, struct dbx_token *out,
				   struct dbx_error *err)
{
	struct stub_cred *s = (struct stub_cred *)self;
	int n;

	pthread_mutex_lock(&s->lock);
	n = ++s->calls;
	if (n <= STUB_MAX_CALLS)
		s->deadlines[n - 1] = deadline_ms;
	pthread_mutex_unlock(&s->lock);
	if (s->gated && n == 1) {
		enum dbx_err fail;

		pthread_mutex_lock(&s->lock);
		s->in_gate = true;
		pthread_cond_broadcast(&s->gate_cv);
		while (!s->gate_open)
			pthread_cond_wait(&s->gate_cv, &s->lock);
		fail = s->gate_fail;
		pthread_mutex_unlock(&s->lock);
		if (fail != DBX_OK)
			return dbx_error_set(err, fail, "stub: the token endpoint did not answer");
	}
	if (s->sleep_ms) {
		struct timespec ts = {.tv_sec = 0, .tv_nsec = s->sleep_ms * 1000000L};

		nanosleep(&ts, NULL);
	}
	if (s->fail_from && n >= s->fail_from)
		return dbx_error_set(err, DBX_EAUTH, "stub: refused");
	assert_true(asprintf(&out->value, "tok-%d-%s", n, scope) > 0);
	out->expires_on = s->expires_on ? s->expires_on : dbx_clock_wall(s->clock) + s->life_s;
	return DBX_OK;
}

static void stub_destroy(struct dbx_credential *self)
{
	(void)self;
}

static void stub_init(struct stub_cred *s, time_t life_s)
{
	memset(s, 0, sizeof(*s));
	s->base.name = "stub";
	s->base.get_token = stub_get_token;
	s->base.destroy = stub_destroy;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->gate_cv, NULL);
	s->life_s = life_s;
}

struct fixture {
	struct fake_transport fake;
	struct fake_clock fc;
	struct stub_cred cred;
	struct dbx_transport *auth;
};

static struct fixture *setup_with(const struct fake_reply *script, size_t n, time_t life_s)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	fake_transport_init(&f->fake, script, n);
	fake_clock_init(&f->fc, T0);
	stub_init(&f->cred, life_s);
	f->cred.clock = &f->fc.clock;
	f->auth = dbx_http_auth_new(&f->fake.base, &f->cred.base, &f->fc.clock);
	assert_non_null(f->auth);
	return f;
}

static void teardown_f(struct fixture *f)
{
	dbx_transport_destroy(f->auth);
	fake_transport_fini(&f->fake);
	pthread_mutex_destroy(&f->cred.lock);
	pthread_cond_destroy(&f->cred.gate_cv);
	free(f);
}

/*
 * Send a GET for scope (NULL: none) that must be done by deadline_ms (on
 * the fake clock; 0: none); returns the rc and the status in *status.
 */
static enum dbx_err get_by(struct fixture *f, const char *scope, uint64_t deadline_ms, long *status,
			   struct dbx_error *err)
{
	struct dbx_http_request req = {
	    .method = "GET",
	    .url = "https://management.azure.com/subscriptions?api-version=2022-12-01",
	    .scope = scope,
	    .deadline_ms = deadline_ms,
	    .idempotent = true,
	};
	struct dbx_http_response resp = {0};
	enum dbx_err rc;

	if (scope && strcmp(scope, KV_SCOPE) == 0)
		req.url = "https://contoso-vault.vault.azure.net/keys/k?api-version=7.4";
	dbx_error_clear(err);
	rc = dbx_http_send(f->auth, &req, &resp, err);
	*status = resp.status;
	dbx_http_response_reset(&resp);
	return rc;
}

static enum dbx_err get(struct fixture *f, const char *scope, long *status, struct dbx_error *err)
{
	return get_by(f, scope, 0, status, err);
}

static void test_bearer_only_with_scope(void **state)
{
	struct fixture *f = setup_with(NULL, 0, 3600);
	struct dbx_error err;
	long st;

	(void)state;
	assert_int_equal(get(f, ARM_SCOPE, &st, &err), DBX_OK);
	assert_int_equal(get(f, NULL, &st, &err), DBX_OK);
	assert_int_equal(f->fake.n_calls, 2);
	assert_string_equal(f->fake.calls[0].bearer, "tok-1-" ARM_SCOPE);
	assert_null(f->fake.calls[1].bearer);
	assert_int_equal(f->cred.calls, 1); /* no token fetched for the scope-less request */
	teardown_f(f);
}

static void test_token_cached(void **state)
{
	struct fixture *f = setup_with(NULL, 0, 3600);
	struct dbx_error err;
	long st;

	(void)state;
	for (int i = 0; i < 20; i++) {
		assert_int_equal(get(f, ARM_SCOPE, &st, &err), DBX_OK);
		f->fc.now += 60000; /* a minute between requests, 20 minutes in all */
	}
	assert_int_equal(f->cred.calls, 1);
	for (size_t i = 0; i < f->fake.n_calls; i++)
		assert_string_equal(f->fake.calls[i].bearer, "tok-1-" ARM_SCOPE);
	teardown_f(f);
}

static void test_two_scopes_two_tokens(void **state)
{
	struct fixture *f = setup_with(NULL, 0, 3600);
	struct dbx_error err;
	long st;

	(void)state;
	assert_int_equal(get(f, ARM_SCOPE, &st, &err), DBX_OK);
	assert_int_equal(get(f, KV_SCOPE, &st, &err), DBX_OK);
	assert_int_equal(get(f, ARM_SCOPE, &st, &err), DBX_OK);
	assert_int_equal(get(f, KV_SCOPE, &st, &err), DBX_OK);
	assert_int_equal(f->cred.calls, 2);
	assert_string_equal(f->fake.calls[0].bearer, "tok-1-" ARM_SCOPE);
	assert_string_equal(f->fake.calls[1].bearer, "tok-2-" KV_SCOPE);
	assert_string_equal(f->fake.calls[2].bearer, "tok-1-" ARM_SCOPE);
	assert_string_equal(f->fake.calls[3].bearer, "tok-2-" KV_SCOPE);
	teardown_f(f);
}

/*
 * A token goes only to the host of its audience: the ARM token to the
 * cloud's ARM host, a Key Vault token to a <vault>.<vault suffix> host, over
 * https. A request whose URL and scope disagree (a nextLink, a Location or a
 * key URL pointing elsewhere) is refused before anything is sent, so a
 * token can never leak to a third-party host.
 */
static void test_token_only_to_its_audience_host(void **state)
{
	static const struct {
		const char *scope;
		const char *url;
		bool ok;
	} rows[] = {
	    {ARM_SCOPE, "https://management.azure.com/subscriptions", true},
	    {ARM_SCOPE, "HTTPS://Management.Azure.COM:443/subscriptions", true},
	    {ARM_SCOPE, "https://management.azure.com?x=1", true},
	    {KV_SCOPE, "https://contoso-vault.vault.azure.net/keys/k", true},
	    {"https://management.usgovcloudapi.net/.default",
	     "https://management.usgovcloudapi.net/subscriptions", true},
	    {"https://vault.azure.cn/.default", "https://abc.vault.azure.cn/keys/k", true},
	    {ARM_SCOPE, "https://evil.example/subscriptions", false},
	    {ARM_SCOPE, "https://management.azure.com.evil.example/x", false},
	    {ARM_SCOPE, "https://x.management.azure.com/x", false},
	    {ARM_SCOPE, "https://management.azure.com:8443/x", false},
	    {ARM_SCOPE, "https://user@management.azure.com/x", false},
	    {ARM_SCOPE, "https://evil.example\\@management.azure.com/x", false},
	    {ARM_SCOPE, "http://management.azure.com/x", false},
	    {ARM_SCOPE, "https://contoso-vault.vault.azure.net/keys/k", false},
	    {ARM_SCOPE, "https://management.usgovcloudapi.net/subscriptions", false},
	    {KV_SCOPE, "https://management.azure.com/subscriptions", false},
	    {KV_SCOPE, "https://vault.azure.net/keys/k", false},
	    {KV_SCOPE, "https://a.b.vault.azure.net/keys/k", false},
	    {KV_SCOPE, "https://contoso.vault.azure.cn/keys/k", false},
	    {KV_SCOPE, "https://contoso.managedhsm.azure.net/keys/k", false},
	    {KV_SCOPE, "https://contoso.vault.azure.net.evil.example/keys/k", false},
	    {"https://evil.example/.default", "https://evil.example/x", false},
	    {ARM_SCOPE, "not a url", false},
	};

	(void)state;
	for (size_t i = 0; i < N(rows); i++) {
		struct fixture *f = setup_with(NULL, 0, 3600);
		struct dbx_http_request req = {
		    .method = "GET",
		    .url = rows[i].url,
		    .scope = rows[i].scope,
		    .idempotent = true,
		};
		struct dbx_http_response resp = {0};
		struct dbx_error err = {0};
		enum dbx_err rc = dbx_http_send(f->auth, &req, &resp, &err);

		dbx_http_response_reset(&resp);
		if (rows[i].ok) {
			assert_int_equal(rc, DBX_OK);
			assert_int_equal(f->fake.n_calls, 1);
			assert_non_null(f->fake.calls[0].bearer);
		} else {
			if (rc == DBX_OK)
				fail_msg("a %s token was sent to %s", rows[i].scope, rows[i].url);
			assert_int_equal(f->fake.n_calls, 0);
			assert_int_equal(f->cred.calls, 0);
		}
		teardown_f(f);
	}
}

/*
 * A token answer claiming an absurd expiry (expires_on far past 2038, up to
 * the largest time_t) must not wrap the cache's millisecond arithmetic:
 * the token is cached and reused like any other, not fetched again for
 * every request, and it is still renewed within a day.
 */
static void test_huge_expiry_does_not_overflow(void **state)
{
	/* The first: lifetime * 1000 is 2^64 + 1384, 1.4 s once wrapped. */
	const time_t claims[] = {FAKE_WALL0 + (time_t)18446744073709553LL, (time_t)INT64_MAX,
				 (time_t)INT64_MAX / 1000 + 12345};

	(void)state;
	for (size_t i = 0; i < N(claims); i++) {
		struct fixture *f = setup_with(NULL, 0, 3600);
		struct dbx_error err;
		long st;

		f->cred.expires_on = claims[i];
		assert_int_equal(get(f, ARM_SCOPE, &st, &err), DBX_OK);
		f->fc.now += 60000;
		assert_int_equal(get(f, ARM_SCOPE, &st, &err), DBX_OK);
		dbx_http_auth_wait_idle(f->auth);
		assert_int_equal(f->cred.calls, 1);
		assert_string_equal(f->fake.calls[1].bearer, "tok-1-" ARM_SCOPE);
		f->fc.now += 2 * 86400 * 1000u;
		assert_int_equal(get(f, ARM_SCOPE, &st, &err), DBX_OK);
		dbx_http_auth_wait_idle(f->auth);
		assert_int_equal(f->cred.calls, 2);
		teardown_f(f);
	}
}

/*
 * A token answer whose expires_in is absurdly large (as a JSON number or,
 * where the source sends them, a digit string, up to and past INT64_MAX)
 * still yields the token with an expiry in the future: the addition to the
 * current time saturates instead of wrapping into the past (signed
 * overflow) and refusing a good token.
 */
static void test_parse_token_huge_expires_in(void **state)
{
	static const char *const bodies[] = {
	    "{\"access_token\":\"AT\",\"expires_in\":9223372036854775807}",
	    "{\"access_token\":\"AT\",\"expires_in\":\"9223372036854775807\"}",
	    "{\"access_token\":\"AT\",\"expires_in\":\"99999999999999999999999\"}",
	    "{\"access_token\":\"AT\",\"expires_in\":9223372036854775000}",
	    "{\"access_token\":\"AT\",\"expires_in\":1e300}",
	};
	const struct dbx_token_fields fields = {
	    .token = "access_token", .expires_in = "expires_in", .digit_strings = true};

	(void)state;
	for (size_t i = 0; i < N(bodies); i++) {
		struct dbx_token tok = {0};
		struct dbx_error err = {0};

		assert_int_equal(dbx_cred_parse_token("env", bodies[i], strlen(bodies[i]), &fields,
						      NULL, FAKE_WALL0, &tok, &err),
				 DBX_OK);
		assert_string_equal(tok.value, "AT");
		assert_true(tok.expires_on > FAKE_WALL0 + 3600);
		dbx_token_wipe(&tok);
	}
}

static void test_refresh_five_minutes_ahead(void **state)
{
	struct fixture *f = setup_with(NULL, 0, 3600);
	struct dbx_error err;
	long st;

	(void)state;
	assert_int_equal(get(f, ARM_SCOPE, &st, &err), DBX_OK);
	f->fc.now = T0 + (3600 - 310) * 1000u; /* 5 min 10 s left: keep */
	assert_int_equal(get(f, ARM_SCOPE, &st, &err), DBX_OK);
	assert_int_equal(f->cred.calls, 1);
	f->fc.now = T0 + (3600 - 290) * 1000u; /* 4 min 50 s left: renew */
	assert_int_equal(get(f, ARM_SCOPE, &st, &err), DBX_OK);
	/* This request went on with the valid token while it was renewed. */
	assert_string_equal(f->fake.calls[2].bearer, "tok-1-" ARM_SCOPE);
	dbx_http_auth_wait_idle(f->auth);
	assert_int_equal(f->cred.calls, 2);
	assert_int_equal(get(f, ARM_SCOPE, &st, &err), DBX_OK);
	assert_string_equal(f->fake.calls[3].bearer, "tok-2-" ARM_SCOPE);
	teardown_f(f);
}

static void test_refresh_short_token_at_half_life(void **state)
{
	struct fixture *f = setup_with(NULL, 0, 100);
	struct dbx_error err;
	long st;

	(void)state;
	assert_int_equal(get(f, ARM_SCOPE, &st, &err), DBX_OK);
	f->fc.now = T0 + 40000; /* 60 s of 100 left: keep */
	assert_int_equal(get(f, ARM_SCOPE, &st, &err), DBX_OK);
	assert_int_equal(f->cred.calls, 1);
	f->fc.now = T0 + 60000; /* 40 s of 100 left: renew */
	assert_int_equal(get(f, ARM_SCOPE, &st, &err), DBX_OK);
	dbx_http_auth_wait_idle(f->auth);
	assert_int_equal(f->cred.calls, 2);
	teardown_f(f);
}

static void test_failed_refresh_keeps_valid_token(void **state)
{
	struct fixture *f = setup_with(NULL, 0, 3600);
	struct dbx_error err;
	long st;

	(void)state;
	f->cred.fail_from = 2;
	assert_int_equal(get(f, ARM_SCOPE, &st, &err), DBX_OK);
	f->fc.now = T0 + 3400 * 1000u; /* due for refresh, still valid */
	assert_int_equal(get(f, ARM_SCOPE, &st, &err), DBX_OK);
	assert_int_equal(st, 599); /* the request went out (script exhausted answers 599) */
	dbx_http_auth_wait_idle(f->auth);
	assert_int_equal(f->cred.calls, 2);
	assert_string_equal(f->fake.calls[1].bearer, "tok-1-" ARM_SCOPE);

	/* The failed renewal is not tried again for 30 s... */
	f->fc.now = T0 + 3420 * 1000u;
	assert_int_equal(get(f, ARM_SCOPE, &st, &err), DBX_OK);
	dbx_http_auth_wait_idle(f->auth);
	assert_int_equal(f->cred.calls, 2);
	/* ...then it is. */
	f->fc.now = T0 + 3431 * 1000u;
	assert_int_equal(get(f, ARM_SCOPE, &st, &err), DBX_OK);
	dbx_http_auth_wait_idle(f->auth);
	assert_int_equal(f->cred.calls, 3);
	assert_int_equal(f->fake.n_calls, 4);

	f->fc.now = T0 + 3601 * 1000u; /* expired, and the credential still fails */
	assert_int_equal(get(f, ARM_SCOPE, &st, &err), DBX_EAUTH);
	assert_string_equal(err.message, "stub: refused");
	assert_int_equal(f->fake.n_calls, 4); /* nothing sent without a token */
	teardown_f(f);
}

/*
 * Entra slow (or down) while the cached token is valid: a request never
 * waits for the renewal; it goes on with the valid token at once.
 */
static void test_slow_renewal_does_not_delay_requests(void **state)
{
	struct fixture *f = setup_with(NULL, 0, 3600);
	struct timespec t0, t1;
	struct dbx_error err;
	long st;
	long ms;

	(void)state;
	assert_int_equal(get(f, ARM_SCOPE, &st, &err), DBX_OK);
	f->cred.sleep_ms = 400; /* real time each token request now takes */
	f->cred.fail_from = 2;
	f->fc.now = T0 + 3400 * 1000u;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < 5; i++)
		assert_int_equal(get(f, ARM_SCOPE, &st, &err), DBX_OK);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	assert_true(ms < 300);
	for (size_t i = 1; i < f->fake.n_calls; i++)
		assert_string_equal(f->fake.calls[i].bearer, "tok-1-" ARM_SCOPE);
	dbx_http_auth_wait_idle(f->auth);
	assert_int_equal(f->cred.calls, 2); /* one renewal for the five requests */
	teardown_f(f);
}

static void test_401_one_fresh_retry(void **state)
{
	static const struct fake_reply script[] = {
	    {.status = 401, .www_authenticate = "Bearer error=\"invalid_token\""},
	    {.status = 200, .body = "{}"},
	};
	struct fixture *f = setup_with(script, N(script), 3600);
	struct dbx_error err;
	long st;

	(void)state;
	assert_int_equal(get(f, ARM_SCOPE, &st, &err), DBX_OK);
	assert_int_equal(st, 200);
	assert_int_equal(f->fake.n_calls, 2);
	assert_int_equal(f->cred.calls, 2);
	assert_string_equal(f->fake.calls[0].bearer, "tok-1-" ARM_SCOPE);
	assert_string_equal(f->fake.calls[1].bearer, "tok-2-" ARM_SCOPE);
	/* and the fresh token is the one cached */
	assert_int_equal(get(f, ARM_SCOPE, &st, &err), DBX_OK);
	assert_string_equal(f->fake.calls[2].bearer, "tok-2-" ARM_SCOPE);
	assert_int_equal(f->cred.calls, 2);
	teardown_f(f);
}

static void test_401_twice_returns_401(void **state)
{
	static const struct fake_reply script[] = {
	    {.status = 401},
	    {.status = 401, .request_id = "rid-2"},
	    {.status = 200},
	};
	struct fixture *f = setup_with(script, N(script), 3600);
	struct dbx_error err;
	long st;

	(void)state;
	assert_int_equal(get(f, ARM_SCOPE, &st, &err), DBX_OK);
	assert_int_equal(st, 401); /* the caller maps it to EACCES */
	assert_int_equal(f->fake.n_calls, 2);
	assert_int_equal(f->cred.calls, 2);
	teardown_f(f);
}

/* A 401, and then the credential cannot renew: the user sees why (not a bare 401). */
static void test_401_then_credential_fails(void **state)
{
	static const struct fake_reply script[] = {{.status = 401}, {.status = 200}};
	struct fixture *f = setup_with(script, N(script), 3600);
	struct dbx_error err;
	long st;

	(void)state;
	f->cred.fail_from = 2;
	assert_int_equal(get(f, ARM_SCOPE, &st, &err), DBX_EAUTH);
	assert_string_equal(err.message, "stub: refused");
	assert_int_equal(st, 0);
	assert_int_equal(f->fake.n_calls, 1);
	teardown_f(f);
}

static void test_401_without_scope_passes_through(void **state)
{
	static const struct fake_reply script[] = {{.status = 401}, {.status = 200}};
	struct fixture *f = setup_with(script, N(script), 3600);
	struct dbx_error err;
	long st;

	(void)state;
	assert_int_equal(get(f, NULL, &st, &err), DBX_OK);
	assert_int_equal(st, 401);
	assert_int_equal(f->fake.n_calls, 1);
	assert_int_equal(f->cred.calls, 0);
	teardown_f(f);
}

/* ---- single flight ---- */

struct worker {
	struct fixture *f;
	pthread_barrier_t *barrier;
	enum dbx_err rc;
	struct dbx_error err;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	long st;

	pthread_barrier_wait(w->barrier);
	w->rc = get(w->f, ARM_SCOPE, &st, &w->err);
	return NULL;
}

static void run_burst(struct fixture *f, struct worker *w, size_t n)
{
	pthread_t th[16];
	pthread_barrier_t barrier;

	assert_true(n <= 16);
	pthread_barrier_init(&barrier, NULL, (unsigned)n);
	for (size_t i = 0; i < n; i++) {
		w[i].f = f;
		w[i].barrier = &barrier;
		assert_int_equal(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
	}
	for (size_t i = 0; i < n; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&barrier);
}

static void test_single_flight_cold_cache(void **state)
{
	struct fixture *f = setup_with(NULL, 0, 3600);
	struct worker w[8];

	(void)state;
	memset(w, 0, sizeof(w));
	f->cred.sleep_ms = 100; /* a slow token endpoint */
	run_burst(f, w, 8);
	assert_int_equal(f->cred.calls, 1);
	assert_int_equal(f->fake.n_calls, 8);
	for (size_t i = 0; i < 8; i++) {
		assert_int_equal(w[i].rc, DBX_OK);
		assert_string_equal(f->fake.calls[i].bearer, "tok-1-" ARM_SCOPE);
	}
	teardown_f(f);
}

static void test_single_flight_failure_shared(void **state)
{
	struct fixture *f = setup_with(NULL, 0, 3600);
	struct worker w[8];

	(void)state;
	memset(w, 0, sizeof(w));
	f->cred.sleep_ms = 100;
	f->cred.fail_from = 1;
	run_burst(f, w, 8);
	assert_int_equal(f->cred.calls, 1); /* waiters share the one failure */
	assert_int_equal(f->fake.n_calls, 0);
	for (size_t i = 0; i < 8; i++) {
		assert_int_equal(w[i].rc, DBX_EAUTH);
		assert_string_equal(w[i].err.message, "stub: refused");
	}
	teardown_f(f);
}

/* ---- deadlines: a token wait is bounded by the request's deadline ---- */

struct deadline_worker {
	struct fixture *f;
	uint64_t deadline_ms;
	enum dbx_err rc;
	struct dbx_error err;
};

static void *deadline_worker_main(void *arg)
{
	struct deadline_worker *w = arg;
	long st;

	w->rc = get_by(w->f, ARM_SCOPE, w->deadline_ms, &st, &w->err);
	return NULL;
}

/* Start a request in its own thread and return once its token refresh is stuck in the gate. */
static void start_stuck_refresher(struct fixture *f, struct deadline_worker *w, pthread_t *th)
{
	f->cred.gated = true;
	w->f = f;
	assert_int_equal(pthread_create(th, NULL, deadline_worker_main, w), 0);
	pthread_mutex_lock(&f->cred.lock);
	while (!f->cred.in_gate)
		pthread_cond_wait(&f->cred.gate_cv, &f->cred.lock);
	pthread_mutex_unlock(&f->cred.lock);
}

static void open_gate(struct fixture *f, enum dbx_err fail)
{
	pthread_mutex_lock(&f->cred.lock);
	f->cred.gate_fail = fail;
	f->cred.gate_open = true;
	pthread_cond_broadcast(&f->cred.gate_cv);
	pthread_mutex_unlock(&f->cred.lock);
}

/*
 * The refresh a request makes asks the credential to be done by that
 * request's deadline; a renewal in the background (nobody waits) and the
 * mount's first token (prime) have no caller deadline.
 */
static void test_refresh_gets_the_callers_deadline(void **state)
{
	struct fixture *f = setup_with(NULL, 0, 400);
	struct dbx_error err;
	long st;

	(void)state;
	assert_int_equal(get_by(f, ARM_SCOPE, T0 + 10000, &st, &err), DBX_OK);
	assert_int_equal(f->cred.calls, 1);
	assert_int_equal(f->cred.deadlines[0], T0 + 10000);
	/* Past the refresh point (half of 400 s) with the token still valid: background. */
	f->fc.now += 250000;
	assert_int_equal(get_by(f, ARM_SCOPE, f->fc.now + 10000, &st, &err), DBX_OK);
	dbx_http_auth_wait_idle(f->auth);
	assert_int_equal(f->cred.calls, 2);
	assert_int_equal(f->cred.deadlines[1], 0);
	assert_int_equal(dbx_http_auth_prime(f->auth, KV_SCOPE, &err), DBX_OK);
	assert_int_equal(f->cred.calls, 3);
	assert_int_equal(f->cred.deadlines[2], 0);
	teardown_f(f);
}

/*
 * A request that finds another's refresh running, with no valid token to
 * use, waits for it only until its own deadline: then DBX_ETIMEDOUT naming
 * the token request, at exactly that time on the clock, without a second
 * token request (single flight). The stuck refresh, once it ends, serves
 * the next requests.
 */
static void test_waiter_times_out_at_its_deadline(void **state)
{
	struct fixture *f = setup_with(NULL, 0, 3600);
	struct deadline_worker stuck = {.deadline_ms = 0};
	struct dbx_error err = {0};
	pthread_t th;
	long st;

	(void)state;
	start_stuck_refresher(f, &stuck, &th);
	assert_int_equal(get_by(f, ARM_SCOPE, T0 + 10000, &st, &err), DBX_ETIMEDOUT);
	assert_int_equal(f->fc.now, T0 + 10000);
	assert_int_equal(f->fc.n_timeouts, 1);
	assert_string_equal(err.message, "stub: the token request for " ARM_SCOPE
					 " did not finish within the timeout (the token endpoint "
					 "is slow or unreachable)");
	/* A request whose deadline has passed already gives up at once too. */
	assert_int_equal(get_by(f, ARM_SCOPE, T0 + 5000, &st, &err), DBX_ETIMEDOUT);
	assert_int_equal(f->fc.now, T0 + 10000);
	assert_int_equal(f->cred.calls, 1);
	assert_int_equal(f->fake.n_calls, 0);

	open_gate(f, DBX_OK);
	pthread_join(th, NULL);
	assert_int_equal(stuck.rc, DBX_OK);
	assert_int_equal(get_by(f, ARM_SCOPE, f->fc.now + 10000, &st, &err), DBX_OK);
	assert_int_equal(f->cred.calls, 1);
	assert_int_equal(f->fake.n_calls, 2);
	assert_string_equal(f->fake.calls[1].bearer, "tok-1-" ARM_SCOPE);
	teardown_f(f);
}

/*
 * A refresh that timed out for its caller (whose deadline was near) does
 * not fail a waiter that still has time: the waiter asks again itself, with
 * its own deadline, and gets a token. Another error is shared as before.
 */
static void test_timed_out_refresh_does_not_poison_the_waiter(void **state)
{
	struct fixture *f = setup_with(NULL, 0, 3600);
	struct deadline_worker stuck = {.deadline_ms = T0 + 1000};
	struct deadline_worker waiter = {.deadline_ms = T0 + 60000};
	pthread_t th_stuck, th_waiter;

	(void)state;
	f->fc.real_waits = true; /* the refresher signals the waiter */
	start_stuck_refresher(f, &stuck, &th_stuck);
	waiter.f = f;
	assert_int_equal(pthread_create(&th_waiter, NULL, deadline_worker_main, &waiter), 0);
	/* The waiter counts its wait with the auth layer's lock held, until it is waiting. */
	while (__atomic_load_n(&f->fc.n_waits, __ATOMIC_SEQ_CST) == 0)
		sched_yield();
	open_gate(f, DBX_ETIMEDOUT);
	pthread_join(th_stuck, NULL);
	pthread_join(th_waiter, NULL);
	assert_int_equal(stuck.rc, DBX_ETIMEDOUT);
	assert_int_equal(waiter.rc, DBX_OK);
	assert_int_equal(f->cred.calls, 2);
	assert_int_equal(f->cred.deadlines[0], T0 + 1000);
	assert_int_equal(f->cred.deadlines[1], T0 + 60000);
	assert_int_equal(f->fake.n_calls, 1);
	assert_string_equal(f->fake.calls[0].bearer, "tok-2-" ARM_SCOPE);
	assert_int_equal(f->fc.n_timeouts, 0);
	teardown_f(f);
}

/* A refresh that timed out leaves nothing behind: the next request asks again and succeeds. */
static void test_timed_out_refresh_then_next_request_asks_again(void **state)
{
	struct fixture *f = setup_with(NULL, 0, 3600);
	struct deadline_worker stuck = {.deadline_ms = T0 + 1000};
	struct dbx_error err = {0};
	pthread_t th;
	long st;

	(void)state;
	start_stuck_refresher(f, &stuck, &th);
	open_gate(f, DBX_ETIMEDOUT);
	pthread_join(th, NULL);
	assert_int_equal(stuck.rc, DBX_ETIMEDOUT);
	assert_int_equal(get_by(f, ARM_SCOPE, T0 + 20000, &st, &err), DBX_OK);
	assert_int_equal(f->cred.calls, 2);
	assert_int_equal(f->cred.deadlines[1], T0 + 20000);
	teardown_f(f);
}

/* ---- the environment secret credential ---- */

struct kv {
	const char *name;
	const char *value;
};

static const char *table_get(void *ctx, const char *name)
{
	for (const struct kv *p = ctx; p->name; p++) {
		if (strcmp(p->name, name) == 0)
			return p->value;
	}
	return NULL;
}

#define SECRET "s3cr&t=+/ x~"

static const struct kv full_env[] = {
    {"AZURE_TENANT_ID", "72f988bf-86f1-41af-91ab-2d7cd011db47"},
    {"AZURE_CLIENT_ID", "0f5c8b7e-1a2b-4c3d-9e8f-aabbccddeeff"},
    {"AZURE_CLIENT_SECRET", SECRET},
    {NULL, NULL},
};

/* A transport that keeps the last request whole, then delegates to the fake. */
struct capture {
	struct dbx_transport base;
	struct fake_transport *fake;
	char content_type[128];
	bool idempotent;
	uint64_t deadline_ms;
	bool had_scope;
};

static enum dbx_err capture_send(struct dbx_transport *self, const struct dbx_http_request *req,
				 struct dbx_http_response *resp, struct dbx_error *err)
{
	struct capture *c = (struct capture *)self;

	snprintf(c->content_type, sizeof(c->content_type), "%s",
		 req->content_type ? req->content_type : "");
	c->idempotent = req->idempotent;
	c->deadline_ms = req->deadline_ms;
	c->had_scope = req->scope != NULL;
	return c->fake->base.send(&c->fake->base, req, resp, err);
}

static void capture_init(struct capture *c, struct fake_transport *fake)
{
	memset(c, 0, sizeof(*c));
	c->base.send = capture_send;
	c->fake = fake;
}

static void test_env_secret_request(void **state)
{
	static const struct fake_reply script[] = {
	    {.status = 200,
	     .body = "{\"token_type\":\"Bearer\",\"expires_in\":3599,\"ext_expires_in\":3599,"
		     "\"access_token\":\"eyJ0eXAi.fake.token\"}"},
	};
	const struct dbx_env env = {.get = table_get, .ctx = (void *)full_env};
	struct fake_transport fake;
	struct capture cap;
	struct dbx_credential *cred;
	struct dbx_token tok = {0};
	struct dbx_error err = {0};
	time_t before = time(NULL);

	(void)state;
	fake_transport_init(&fake, script, N(script));
	capture_init(&cap, &fake);
	cred = dbx_credential_new("env", &cap.base, dbx_cloud_default(), &env, NULL, &err);
	assert_non_null(cred);
	assert_string_equal(cred->name, "env");
	assert_int_equal(cred->get_token(cred, ARM_SCOPE, 0, &tok, &err), DBX_OK);
	assert_string_equal(tok.value, "eyJ0eXAi.fake.token");
	assert_true(tok.expires_on >= before + 3599 && tok.expires_on <= time(NULL) + 3599);

	assert_int_equal(fake.n_calls, 1);
	assert_string_equal(fake.calls[0].method, "POST");
	assert_string_equal(fake.calls[0].url,
			    "https://login.microsoftonline.com/"
			    "72f988bf-86f1-41af-91ab-2d7cd011db47/oauth2/v2.0/token");
	assert_string_equal(fake.calls[0].body,
			    "grant_type=client_credentials"
			    "&client_id=0f5c8b7e-1a2b-4c3d-9e8f-aabbccddeeff"
			    "&client_secret=s3cr%26t%3D%2B%2F%20x~"
			    "&scope=https%3A%2F%2Fmanagement.azure.com%2F.default");
	assert_null(fake.calls[0].scope);
	assert_null(fake.calls[0].bearer);
	assert_false(cap.had_scope);
	assert_string_equal(cap.content_type, "application/x-www-form-urlencoded");
	assert_true(cap.idempotent);
	assert_true(cap.deadline_ms != 0);

	dbx_token_wipe(&tok);
	assert_null(tok.value);
	dbx_credential_destroy(cred);
	fake_transport_fini(&fake);
}

/*
 * The environment credential's answer with an absurd expires_in (the
 * largest JSON integer, or a longer digit string) gives a token that is
 * valid, not one whose expiry wrapped into the past.
 */
static void test_env_huge_expires_in(void **state)
{
	static const struct fake_reply script[] = {
	    {.status = 200, .body = "{\"access_token\":\"AT\",\"expires_in\":9223372036854775807}"},
	    {.status = 200, .body = "{\"access_token\":\"AT\",\"expires_in\":9223372036854775000}"},
	};
	static const struct kv env_tab[] = {
	    {"AZURE_TENANT_ID", "contoso"},
	    {"AZURE_CLIENT_ID", "cid"},
	    {"AZURE_CLIENT_SECRET", "sec"},
	    {NULL, NULL},
	};
	const struct dbx_env env = {.get = table_get, .ctx = (void *)env_tab};
	struct fake_transport fake;
	struct dbx_credential *cred;
	struct dbx_error err = {0};

	(void)state;
	fake_transport_init(&fake, script, N(script));
	cred = dbx_cred_env_secret_new(&fake.base, NULL, &env, NULL, &err);
	assert_non_null(cred);
	for (size_t i = 0; i < N(script); i++) {
		struct dbx_token tok = {0};

		assert_int_equal(cred->get_token(cred, ARM_SCOPE, 0, &tok, &err), DBX_OK);
		assert_string_equal(tok.value, "AT");
		assert_true(tok.expires_on > time(NULL) + 3600);
		dbx_token_wipe(&tok);
	}
	dbx_credential_destroy(cred);
	fake_transport_fini(&fake);
}

/*
 * Entra's v2.0 endpoint sends expires_in as a JSON number: that works in
 * another cloud; no expiry, or expires_in as a string, is refused, naming
 * the field.
 */
static void test_env_expires_in_number_and_cloud(void **state)
{
	static const struct fake_reply script[] = {
	    {.status = 200, .body = "{\"access_token\":\"AT\",\"expires_in\":600}"},
	    {.status = 200, .body = "{\"access_token\":\"AT\"}"}, /* no expiry: refused */
	    {.status = 200, .body = "{\"access_token\":\"AT\",\"expires_in\":\"600\"}"},
	};
	static const struct kv env_tab[] = {
	    {"AZURE_TENANT_ID", "contoso.onmicrosoft.us"},
	    {"AZURE_CLIENT_ID", "cid"},
	    {"AZURE_CLIENT_SECRET", "sec"},
	    {"AZURE_AUTHORITY_HOST", ""}, /* empty counts as unset */
	    {NULL, NULL},
	};
	const struct dbx_env env = {.get = table_get, .ctx = (void *)env_tab};
	struct fake_transport fake;
	struct dbx_credential *cred;
	struct dbx_token tok = {0};
	struct dbx_error err = {0};
	time_t before = time(NULL);

	(void)state;
	fake_transport_init(&fake, script, N(script));
	cred = dbx_cred_env_secret_new(&fake.base, dbx_cloud_find("AzureUSGovernment"), &env, NULL,
				       &err);
	assert_non_null(cred);
	assert_int_equal(
	    cred->get_token(cred, "https://management.usgovcloudapi.net/.default", 0, &tok, &err),
	    DBX_OK);
	assert_true(tok.expires_on >= before + 600 && tok.expires_on <= time(NULL) + 600);
	assert_string_equal(
	    fake.calls[0].url,
	    "https://login.microsoftonline.us/contoso.onmicrosoft.us/oauth2/v2.0/token");
	dbx_token_wipe(&tok);
	assert_int_equal(cred->get_token(cred, ARM_SCOPE, 0, &tok, &err), DBX_EAUTH);
	assert_null(tok.value);
	assert_non_null(strstr(err.message, "expires_in"));
	assert_int_equal(cred->get_token(cred, ARM_SCOPE, 0, &tok, &err), DBX_EAUTH);
	assert_null(tok.value);
	assert_string_equal(err.message,
			    "env: malformed token answer: expires_in is not a whole number");
	dbx_credential_destroy(cred);
	fake_transport_fini(&fake);
}

/*
 * The Entra grant ends at the caller's deadline when that is before its own
 * 60 s cap; a deadline already past sends nothing; a request that timed out
 * in transport says the token endpoint was slow, not ARM.
 */
static void test_env_token_request_deadline(void **state)
{
	static const char ok[] = "{\"access_token\":\"AT\",\"expires_in\":3600}";
	static const struct fake_reply script[] = {
	    {.status = 200, .body = ok},
	    {.status = 200, .body = ok},
	    {.status = 200, .body = ok},
	    {.transport_err = DBX_ETIMEDOUT},
	};
	const struct dbx_env env = {.get = table_get, .ctx = (void *)full_env};
	struct fake_transport fake;
	struct fake_clock fc;
	struct dbx_credential *cred;
	struct dbx_token tok = {0};
	struct dbx_error err = {0};

	(void)state;
	fake_transport_init(&fake, script, N(script));
	fake_clock_init(&fc, T0);
	cred = dbx_cred_env_secret_new(&fake.base, NULL, &env, &fc.clock, &err);
	assert_non_null(cred);
	assert_int_equal(cred->get_token(cred, ARM_SCOPE, T0 + 5000, &tok, &err), DBX_OK);
	dbx_token_wipe(&tok);
	assert_int_equal(fake.calls[0].deadline_ms, T0 + 5000);
	assert_int_equal(cred->get_token(cred, ARM_SCOPE, 0, &tok, &err), DBX_OK);
	dbx_token_wipe(&tok);
	assert_int_equal(fake.calls[1].deadline_ms, T0 + DBX_CRED_ENTRA_TIMEOUT_MS);
	assert_int_equal(cred->get_token(cred, ARM_SCOPE, T0 + 120000, &tok, &err), DBX_OK);
	dbx_token_wipe(&tok);
	assert_int_equal(fake.calls[2].deadline_ms, T0 + DBX_CRED_ENTRA_TIMEOUT_MS);

	assert_int_equal(cred->get_token(cred, ARM_SCOPE, T0 + 3000, &tok, &err), DBX_ETIMEDOUT);
	assert_null(tok.value);
	assert_string_equal(
	    err.message, "env: token request to login.microsoftonline.com did not finish within "
			 "the timeout (the token endpoint is slow or unreachable): fake transport "
			 "failure");
	assert_int_equal(fake.calls[3].deadline_ms, T0 + 3000);

	fc.now = T0 + 3000;
	assert_int_equal(cred->get_token(cred, ARM_SCOPE, T0 + 3000, &tok, &err), DBX_ETIMEDOUT);
	assert_int_equal(fake.n_calls, 4); /* nothing sent */
	assert_non_null(strstr(err.message, "did not finish within the timeout"));
	dbx_credential_destroy(cred);
	fake_transport_fini(&fake);
}

static void test_env_authority_host_forms(void **state)
{
	static const struct {
		const char *value;
		const char *url; /* NULL: refused */
	} rows[] = {
	    {"https://login.example.net", "https://login.example.net/t%20x/oauth2/v2.0/token"},
	    {"https://login.example.net/", "https://login.example.net/t%20x/oauth2/v2.0/token"},
	    {"login.example.net", "https://login.example.net/t%20x/oauth2/v2.0/token"},
	    {"HTTPS://login.example.net:8443//",
	     "https://login.example.net:8443/t%20x/oauth2/v2.0/token"},
	    {"http://login.example.net", NULL},
	    {"ftp://login.example.net", NULL},
	    {"https://login.example.net/tenant", NULL},
	    {"https://user@login.example.net", NULL},
	    {"https://", NULL},
	};

	(void)state;
	for (size_t i = 0; i < N(rows); i++) {
		const struct kv tab[] = {
		    {"AZURE_TENANT_ID", "t x"},
		    {"AZURE_CLIENT_ID", "cid"},
		    {"AZURE_CLIENT_SECRET", "sec"},
		    {"AZURE_AUTHORITY_HOST", rows[i].value},
		    {NULL, NULL},
		};
		static const struct fake_reply ok[] = {
		    {.status = 200, .body = "{\"access_token\":\"AT\",\"expires_in\":60}"},
		};
		const struct dbx_env env = {.get = table_get, .ctx = (void *)tab};
		struct fake_transport fake;
		struct dbx_credential *cred;
		struct dbx_token tok = {0};
		struct dbx_error err = {0};

		fake_transport_init(&fake, ok, N(ok));
		cred = dbx_cred_env_secret_new(&fake.base, NULL, &env, NULL, &err);
		if (!rows[i].url) {
			if (cred)
				fail_msg("AZURE_AUTHORITY_HOST=%s accepted", rows[i].value);
			assert_int_equal(err.err, DBX_ECONFIG);
			assert_non_null(strstr(err.message, "AZURE_AUTHORITY_HOST"));
			fake_transport_fini(&fake);
			continue;
		}
		assert_non_null(cred);
		assert_int_equal(cred->get_token(cred, ARM_SCOPE, 0, &tok, &err), DBX_OK);
		assert_string_equal(fake.calls[0].url, rows[i].url);
		dbx_token_wipe(&tok);
		dbx_credential_destroy(cred);
		fake_transport_fini(&fake);
	}
}

static void test_env_error_body(void **state)
{
	static const struct fake_reply script[] = {
	    {.status = 401,
	     .request_id = "0f1e2d3c-aaaa-bbbb-cccc-ddddeeeeffff",
	     .body = "{\"error\":\"invalid_client\",\"error_description\":\"AADSTS7000215: Invalid "
		     "client secret provided. Ensure the secret being sent in the request is the "
		     "client secret value, not the client secret ID.\\r\\nTrace ID: 1234\\r\\n"
		     "Correlation ID: 5678\",\"error_codes\":[7000215]}"},
	    /* A service that echoes the secret back must not get it into our message. */
	    {.status = 400,
	     .body = "{\"error\":\"invalid_request\",\"error_description\":\"AADSTS90002: bad "
		     "value " SECRET " in request body client_secret=s3cr%26t%3D%2B%2F%20x~\"}"},
	    {.status = 503, .body = "<html>down</html>"},
	};
	const struct dbx_env env = {.get = table_get, .ctx = (void *)full_env};
	struct fake_transport fake;
	struct dbx_credential *cred;
	struct dbx_token tok = {0};
	struct dbx_error err = {0};

	(void)state;
	fake_transport_init(&fake, script, N(script));
	cred = dbx_cred_env_secret_new(&fake.base, NULL, &env, NULL, &err);
	assert_non_null(cred);

	assert_int_equal(cred->get_token(cred, ARM_SCOPE, 0, &tok, &err), DBX_EAUTH);
	assert_null(tok.value);
	assert_string_equal(
	    err.message,
	    "env: invalid_client: AADSTS7000215: Invalid client secret provided. Ensure "
	    "the secret being sent in the request is the client secret value, not the "
	    "client secret ID.");
	assert_int_equal(err.http_status, 401);
	assert_string_equal(err.code, "invalid_client");
	assert_string_equal(err.request_id, "0f1e2d3c-aaaa-bbbb-cccc-ddddeeeeffff");
	assert_null(strstr(err.message, SECRET));

	dbx_error_clear(&err);
	assert_int_equal(cred->get_token(cred, ARM_SCOPE, 0, &tok, &err), DBX_EAUTH);
	assert_non_null(strstr(err.message, "AADSTS90002"));
	assert_null(strstr(err.message, SECRET));
	assert_null(strstr(err.message, "s3cr"));
	assert_non_null(strstr(err.message, "client_secret=*"));

	dbx_error_clear(&err);
	assert_int_equal(cred->get_token(cred, ARM_SCOPE, 0, &tok, &err), DBX_EREMOTE);
	assert_int_equal(err.http_status, 503);
	assert_non_null(strstr(err.message, "login.microsoftonline.com"));
	assert_non_null(strstr(err.message, "503"));

	dbx_credential_destroy(cred);
	fake_transport_fini(&fake);
}

/* The shared redaction never grows a message: a full buffer and the bytes after it stay put. */
static void test_redact_short_secrets(void **state)
{
	static const struct {
		const char *msg, *secret, *want;
	} cases[] = {
	    {"a=x, b=x", "x", "a=*, b=*"},
	    {"xx", "x", "**"},
	    {"id: ab; ab", "ab", "id: **; **"},
	    {"abab", "ab", "****"},
	    {"key s3cret in s3cret", "s3cret", "key *** in ***"},
	    {"abc", "abc", "***"},
	    {"no secret here", "zz", "no secret here"},
	    {"unchanged", "", "unchanged"},
	};
	char buf[DBX_ERR_MSG_MAX + 64];

	(void)state;
	for (size_t i = 0; i < N(cases); i++) {
		snprintf(buf, sizeof(buf), "%s", cases[i].msg);
		dbx_cred_redact(buf, cases[i].secret);
		assert_string_equal(buf, cases[i].want);
	}

	/* A message filling its whole buffer, the secret everywhere (1 and 2 characters). */
	for (size_t sl = 1; sl <= 2; sl++) {
		const char *secret = sl == 1 ? "q" : "qr";

		memset(buf, 'G', sizeof(buf));
		for (size_t j = 0; j < DBX_ERR_MSG_MAX - 1; j++)
			buf[j] = sl == 1 ? 'q' : "qr"[j % 2];
		buf[DBX_ERR_MSG_MAX - 2] = '.'; /* 1022 characters of secrets, then one other */
		buf[DBX_ERR_MSG_MAX - 1] = '\0';
		dbx_cred_redact(buf, secret);
		assert_int_equal(strlen(buf), DBX_ERR_MSG_MAX - 1);
		assert_null(strchr(buf, 'q'));
		for (size_t j = DBX_ERR_MSG_MAX; j < sizeof(buf); j++)
			assert_int_equal(buf[j], 'G');
	}
}

/* A one-character secret echoed all over a full message is redacted within err. */
static void test_env_error_one_char_secret(void **state)
{
	static const struct kv short_env[] = {
	    {"AZURE_TENANT_ID", "72f988bf-86f1-41af-91ab-2d7cd011db47"},
	    {"AZURE_CLIENT_ID", "00000000-0000-0000-0000-000000000001"},
	    {"AZURE_CLIENT_SECRET", "Z"},
	    {NULL, NULL},
	};
	char body[3 * DBX_ERR_MSG_MAX];
	struct fake_reply script[] = {{.status = 400, .request_id = "rid-1", .body = body}};
	const struct dbx_env env = {.get = table_get, .ctx = (void *)short_env};
	struct fake_transport fake;
	struct dbx_credential *cred;
	struct dbx_token tok = {0};
	struct {
		struct dbx_error e;
		char guard[4 * DBX_ERR_MSG_MAX];
	} g;
	char code[DBX_ERR_MSG_MAX];

	(void)state;
	memset(code, 'Z', sizeof(code) - 1);
	code[sizeof(code) - 1] = '\0';
	snprintf(body, sizeof(body), "{\"error\":\"%s\",\"error_description\":\"ZZ ZZ\"}", code);
	memset(&g, 0, sizeof(g));
	memset(g.guard, 'G', sizeof(g.guard));
	fake_transport_init(&fake, script, N(script));
	cred = dbx_cred_env_secret_new(&fake.base, NULL, &env, NULL, &g.e);
	assert_non_null(cred);

	assert_int_equal(cred->get_token(cred, ARM_SCOPE, 0, &tok, &g.e), DBX_EAUTH);
	assert_null(tok.value);
	assert_int_equal(strlen(g.e.message), DBX_ERR_MSG_MAX - 1);
	assert_null(strchr(g.e.message, 'Z'));
	assert_null(strchr(g.e.code, 'Z'));
	assert_string_equal(g.e.request_id, "rid-1");
	assert_int_equal(g.e.http_status, 400);
	for (size_t j = 0; j < sizeof(g.guard); j++)
		assert_int_equal(g.guard[j], 'G');

	dbx_credential_destroy(cred);
	fake_transport_fini(&fake);
}

static void test_env_transport_failure(void **state)
{
	static const struct fake_reply script[] = {{.transport_err = DBX_EUNREACHABLE}};
	const struct dbx_env env = {.get = table_get, .ctx = (void *)full_env};
	struct fake_transport fake;
	struct dbx_credential *cred;
	struct dbx_token tok = {0};
	struct dbx_error err = {0};

	(void)state;
	fake_transport_init(&fake, script, N(script));
	cred = dbx_cred_env_secret_new(&fake.base, NULL, &env, NULL, &err);
	assert_non_null(cred);
	assert_int_equal(cred->get_token(cred, ARM_SCOPE, 0, &tok, &err), DBX_EUNREACHABLE);
	assert_string_equal(err.message, "env: token request to login.microsoftonline.com failed: "
					 "fake transport failure");
	dbx_credential_destroy(cred);
	fake_transport_fini(&fake);
}

static void test_env_missing_variables(void **state)
{
	static const struct kv none[] = {{NULL, NULL}};
	static const struct kv no_secret[] = {
	    {"AZURE_TENANT_ID", "t"},
	    {"AZURE_CLIENT_ID", "c"},
	    {"AZURE_CLIENT_SECRET", ""},
	    {NULL, NULL},
	};
	static const struct kv only_secret[] = {{"AZURE_CLIENT_SECRET", "x"}, {NULL, NULL}};
	const struct dbx_env e_none = {.get = table_get, .ctx = (void *)none};
	const struct dbx_env e_nosec = {.get = table_get, .ctx = (void *)no_secret};
	const struct dbx_env e_onlysec = {.get = table_get, .ctx = (void *)only_secret};
	struct fake_transport fake;
	struct dbx_error err = {0};

	(void)state;
	fake_transport_init(&fake, NULL, 0);
	assert_null(dbx_cred_env_secret_new(&fake.base, NULL, &e_none, NULL, &err));
	assert_int_equal(err.err, DBX_EAUTH);
	assert_string_equal(
	    err.message,
	    "env: AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET are not set");
	assert_null(dbx_cred_env_secret_new(&fake.base, NULL, &e_nosec, NULL, &err));
	assert_string_equal(err.message, "env: AZURE_CLIENT_SECRET is not set");
	assert_null(dbx_cred_env_secret_new(&fake.base, NULL, &e_onlysec, NULL, &err));
	assert_string_equal(err.message, "env: AZURE_TENANT_ID and AZURE_CLIENT_ID are not set");
	assert_int_equal(fake.n_calls, 0);
	fake_transport_fini(&fake);
}

static void test_auto_chain(void **state)
{
	/* PATH points nowhere, so the cli source finds no az and runs nothing. */
	static const struct kv bare[] = {{"PATH", "/nonexistent-dbx-test"}, {NULL, NULL}};
	static const struct fake_reply no_imds[] = {{.transport_err = DBX_EUNREACHABLE}};
	static const struct fake_reply script[] = {
	    {.status = 200, .body = "{\"access_token\":\"AT1\",\"expires_in\":3600}"},
	    {.status = 200, .body = "{\"access_token\":\"AT2\",\"expires_in\":3600}"},
	};
	const struct dbx_env e_bare = {.get = table_get, .ctx = (void *)bare};
	const struct dbx_env e_full = {.get = table_get, .ctx = (void *)full_env};
	struct fake_transport fake;
	struct dbx_credential *cred;
	struct dbx_token tok = {0};
	struct dbx_error err = {0};
	const char *order[] = {
	    "env: AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET are not set",
	    "; cert: ", "; workload: ", "; msi: ", "; cli: "};
	const char *at;

	(void)state;
	/* Nothing configured: one message naming what each source lacked, in chain order. */
	fake_transport_init(&fake, no_imds, N(no_imds));
	cred = dbx_credential_new("auto", &fake.base, NULL, &e_bare, NULL, &err);
	if (cred) {
		assert_string_equal(cred->name, "auto");
		assert_int_not_equal(cred->get_token(cred, ARM_SCOPE, 0, &tok, &err), DBX_OK);
		assert_null(tok.value);
		dbx_credential_destroy(cred);
	}
	assert_int_equal(err.err, DBX_EAUTH);
	at = err.message;
	assert_true(strncmp(at, "no credential available: ", 25) == 0);
	for (size_t i = 0; i < N(order); i++) {
		const char *next = strstr(at, order[i]);

		if (!next)
			fail_msg("'%s' missing or out of order in: %s", order[i], err.message);
		at = next + strlen(order[i]);
	}
	assert_non_null(strstr(err.message, "AZURE_CLIENT_CERTIFICATE_PATH"));
	assert_non_null(strstr(err.message, "AZURE_FEDERATED_TOKEN_FILE"));
	fake_transport_fini(&fake);

	/* The environment configured: the chain uses it, and sticks to it. */
	fake_transport_init(&fake, script, N(script));
	cred = dbx_credential_new("auto", &fake.base, NULL, &e_full, NULL, &err);
	assert_non_null(cred);
	assert_string_equal(cred->name, "auto");
	assert_int_equal(cred->get_token(cred, ARM_SCOPE, 0, &tok, &err), DBX_OK);
	assert_string_equal(tok.value, "AT1");
	dbx_token_wipe(&tok);
	assert_int_equal(cred->get_token(cred, KV_SCOPE, 0, &tok, &err), DBX_OK);
	assert_string_equal(tok.value, "AT2");
	assert_int_equal(fake.n_calls, 2);
	assert_non_null(
	    strstr(fake.calls[1].body, "scope=https%3A%2F%2Fvault.azure.net%2F.default"));
	dbx_token_wipe(&tok);
	dbx_credential_destroy(cred);
	fake_transport_fini(&fake);
}

static void test_auto_chain_stops_on_refusal(void **state)
{
	static const struct fake_reply script[] = {
	    {.status = 401,
	     .body = "{\"error\":\"unauthorized_client\",\"error_description\":\"AADSTS700016: "
		     "Application not found\"}"},
	};
	const struct dbx_env env = {.get = table_get, .ctx = (void *)full_env};
	struct fake_transport fake;
	struct dbx_credential *cred;
	struct dbx_token tok = {0};
	struct dbx_error err = {0};

	(void)state;
	fake_transport_init(&fake, script, N(script));
	cred = dbx_credential_new(NULL, &fake.base, NULL, &env, NULL, &err); /* NULL means auto */
	assert_non_null(cred);
	assert_int_equal(cred->get_token(cred, ARM_SCOPE, 0, &tok, &err), DBX_EAUTH);
	assert_string_equal(err.message,
			    "env: unauthorized_client: AADSTS700016: Application not found");
	assert_int_equal(err.http_status, 401);
	dbx_credential_destroy(cred);
	fake_transport_fini(&fake);
}

/*
 * The environment is configured but Entra cannot be reached: the chain
 * stops there with "unreachable" (the mount says EHOSTUNREACH), rather than
 * probe managed identity and report "no credential".
 */
static void test_auto_chain_stops_when_unreachable(void **state)
{
	static const struct fake_reply script[] = {
	    {.transport_err = DBX_EUNREACHABLE},
	    {.status = 400}, /* what an IMDS probe would get, were it sent */
	};
	const struct dbx_env env = {.get = table_get, .ctx = (void *)full_env};
	struct fake_transport fake;
	struct dbx_credential *cred;
	struct dbx_token tok = {0};
	struct dbx_error err = {0};

	(void)state;
	fake_transport_init(&fake, script, N(script));
	cred = dbx_credential_new("auto", &fake.base, NULL, &env, NULL, &err);
	assert_non_null(cred);
	assert_int_equal(cred->get_token(cred, ARM_SCOPE, 0, &tok, &err), DBX_EUNREACHABLE);
	assert_ptr_equal(
	    strstr(err.message, "env: token request to login.microsoftonline.com failed"),
	    err.message);
	assert_int_equal(fake.n_calls, 1);
	dbx_credential_destroy(cred);
	fake_transport_fini(&fake);
}

static void test_unknown_credential_name(void **state)
{
	const struct dbx_env env = {.get = table_get, .ctx = (void *)full_env};
	struct fake_transport fake;
	struct dbx_error err = {0};

	(void)state;
	fake_transport_init(&fake, NULL, 0);
	assert_null(dbx_credential_new("kerberos", &fake.base, NULL, &env, NULL, &err));
	assert_int_equal(err.err, DBX_ECONFIG);
	assert_non_null(strstr(err.message, "kerberos"));
	assert_null(dbx_credential_new("ENV ", &fake.base, NULL, &env, NULL, &err));
	assert_int_equal(err.err, DBX_ECONFIG);
	fake_transport_fini(&fake);
}

/* The whole stack: auth over the env credential, both over the same fake. */
static void test_stack_env_to_arm(void **state)
{
	static const struct fake_reply script[] = {
	    {.status = 200, .body = "{\"access_token\":\"ARM-AT\",\"expires_in\":3600}"},
	    {.status = 200, .body = "{\"value\":[]}"},
	    {.status = 200, .body = "{\"value\":[]}"},
	};
	const struct dbx_env env = {.get = table_get, .ctx = (void *)full_env};
	struct fake_transport fake;
	struct fake_transport token_fake;
	struct fake_clock fc;
	struct dbx_credential *cred;
	struct dbx_transport *auth;
	struct dbx_error err = {0};
	struct dbx_http_request req = {
	    .method = "GET",
	    .url = "https://management.azure.com/subscriptions?api-version=2022-12-01",
	    .scope = ARM_SCOPE,
	    .idempotent = true,
	};
	struct dbx_http_response resp = {0};

	(void)state;
	fake_transport_init(&token_fake, script, 1);
	fake_transport_init(&fake, script + 1, 2);
	fake_clock_init(&fc, T0);
	cred = dbx_credential_new("env", &token_fake.base, NULL, &env, &fc.clock, &err);
	assert_non_null(cred);
	auth = dbx_http_auth_new(&fake.base, cred, &fc.clock);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(dbx_http_send(auth, &req, &resp, &err), DBX_OK);
		assert_int_equal(resp.status, 200);
		dbx_http_response_reset(&resp);
	}
	assert_int_equal(token_fake.n_calls, 1);
	assert_string_equal(fake.calls[0].bearer, "ARM-AT");
	assert_string_equal(fake.calls[1].bearer, "ARM-AT");
	dbx_transport_destroy(auth);
	dbx_credential_destroy(cred);
	fake_transport_fini(&fake);
	fake_transport_fini(&token_fake);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_bearer_only_with_scope),
	    cmocka_unit_test(test_token_cached),
	    cmocka_unit_test(test_two_scopes_two_tokens),
	    cmocka_unit_test(test_token_only_to_its_audience_host),
	    cmocka_unit_test(test_huge_expiry_does_not_overflow),
	    cmocka_unit_test(test_parse_token_huge_expires_in),
	    cmocka_unit_test(test_refresh_five_minutes_ahead),
	    cmocka_unit_test(test_refresh_short_token_at_half_life),
	    cmocka_unit_test(test_failed_refresh_keeps_valid_token),
	    cmocka_unit_test(test_slow_renewal_does_not_delay_requests),
	    cmocka_unit_test(test_401_one_fresh_retry),
	    cmocka_unit_test(test_401_twice_returns_401),
	    cmocka_unit_test(test_401_then_credential_fails),
	    cmocka_unit_test(test_401_without_scope_passes_through),
	    cmocka_unit_test(test_single_flight_cold_cache),
	    cmocka_unit_test(test_single_flight_failure_shared),
	    cmocka_unit_test(test_refresh_gets_the_callers_deadline),
	    cmocka_unit_test(test_waiter_times_out_at_its_deadline),
	    cmocka_unit_test(test_timed_out_refresh_does_not_poison_the_waiter),
	    cmocka_unit_test(test_timed_out_refresh_then_next_request_asks_again),
	    cmocka_unit_test(test_env_secret_request),
	    cmocka_unit_test(test_env_expires_in_number_and_cloud),
	    cmocka_unit_test(test_env_huge_expires_in),
	    cmocka_unit_test(test_env_token_request_deadline),
	    cmocka_unit_test(test_env_authority_host_forms),
	    cmocka_unit_test(test_env_error_body),
	    cmocka_unit_test(test_redact_short_secrets),
	    cmocka_unit_test(test_env_error_one_char_secret),
	    cmocka_unit_test(test_env_transport_failure),
	    cmocka_unit_test(test_env_missing_variables),
	    cmocka_unit_test(test_auto_chain),
	    cmocka_unit_test(test_auto_chain_stops_on_refusal),
	    cmocka_unit_test(test_auto_chain_stops_when_unreachable),
	    cmocka_unit_test(test_unknown_credential_name),
	    cmocka_unit_test(test_stack_env_to_arm),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
