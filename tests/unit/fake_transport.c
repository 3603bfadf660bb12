/*
 * fake_transport.c: the scripted transport and fake clock of
 * fake_transport.h. Thread-safe, so concurrency tests can share one.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_transport.h"

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

static enum dbx_err fake_send(struct dbx_transport *self, const struct dbx_http_request *req,
			      struct dbx_http_response *resp, struct dbx_error *err)
{
	struct fake_transport *f = (struct fake_transport *)self;
	const struct fake_reply *r = NULL;
	enum dbx_err rc = DBX_OK;

	pthread_mutex_lock(&f->lock);
	if (f->n_calls < FAKE_MAX_CALLS) {
		struct fake_call *c = &f->calls[f->n_calls++];

		snprintf(c->method, sizeof(c->method), "%s", req->method);
		c->url = dup_or_null(req->url);
		c->scope = dup_or_null(req->scope);
		c->bearer = dup_or_null(req->bearer);
		c->body = req->body ? strndup(req->body, req->body_len) : NULL;
		c->deadline_ms = req->deadline_ms;
	}
	if (f->next < f->n_script)
		r = &f->script[f->next++];
	pthread_mutex_unlock(&f->lock);

	dbx_uuid4(resp->client_request_id);
	if (!r) {
		resp->status = 599;
		resp->body = strdup("script exhausted");
		resp->body_len = strlen(resp->body);
		return DBX_OK;
	}
	if (r->transport_err) {
		rc = dbx_error_set(err, r->transport_err, "fake transport failure");
		if (err && r->transport_code)
			snprintf(err->code, sizeof(err->code), "%s", r->transport_code);
		return rc;
	}
	resp->status = r->status;
	if (r->ratelimit > 0) {
		resp->ratelimit_known = true;
		resp->ratelimit_remaining = (uint64_t)(r->ratelimit - 1);
	}
	resp->body = strdup(r->body ? r->body : "");
	resp->body_len = strlen(resp->body);
	resp->location = dup_or_null(r->location);
	resp->retry_after = dup_or_null(r->retry_after);
	resp->retry_after_ms = dup_or_null(r->retry_after_ms);
	resp->request_id = dup_or_null(r->request_id);
	resp->correlation_id = dup_or_null(r->correlation_id);
	resp->www_authenticate = dup_or_null(r->www_authenticate);
	return DBX_OK;
}

static void fake_destroy(struct dbx_transport *self)
{
	(void)self; /* owned by the test; fini frees */
}

void fake_transport_init(struct fake_transport *f, const struct fake_reply *script, size_t n)
{
	memset(f, 0, sizeof(*f));
	f->base.send = fake_send;
	f->base.destroy = fake_destroy;
	pthread_mutex_init(&f->lock, NULL);
	f->script = script;
	f->n_script = n;
}

void fake_transport_fini(struct fake_transport *f)
{
	for (size_t i = 0; i < f->n_calls; i++) {
		free(f->calls[i].url);
		free(f->calls[i].scope);
		free(f->calls[i].bearer);
		free(f->calls[i].body);
	}
	pthread_mutex_destroy(&f->lock);
}

/* now is read and moved with atomics: threads of one test share the clock. */
static uint64_t fake_now(void *ctx)
{
	return __atomic_load_n(&((struct fake_clock *)ctx)->now, __ATOMIC_SEQ_CST);
}

static time_t fake_wall(void *ctx)
{
	return __atomic_load_n(&((struct fake_clock *)ctx)->wall, __ATOMIC_SEQ_CST);
}

static enum dbx_err fake_sleep(void *ctx, uint64_t ms)
{
	struct fake_clock *fc = ctx;

	__atomic_add_fetch(&fc->now, ms, __ATOMIC_SEQ_CST);
	fc->slept += ms;
	if (fc->n_sleeps < FAKE_MAX_CALLS)
		fc->sleeps[fc->n_sleeps++] = ms;
	return DBX_OK;
}

/* Real CLOCK_MONOTONIC now + ms, for pthread_cond_timedwait on a dbx_clock_cond_init() cond. */
static struct timespec real_after(uint64_t ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += (time_t)(ms / 1000);
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

/* As fake_transport.h says: no real wait unless real_waits; time jumps to the deadline. */
static enum dbx_err fake_wait_until(void *ctx, pthread_cond_t *c, pthread_mutex_t *m,
				    uint64_t deadline_ms)
{
	struct fake_clock *fc = ctx;
	uint64_t now = fake_now(fc);

	__atomic_add_fetch(&fc->n_waits, 1, __ATOMIC_SEQ_CST);
	if (deadline_ms == 0) {
		pthread_cond_wait(c, m);
		return DBX_OK;
	}
	if (now < deadline_ms && fc->real_waits) {
		struct timespec at = real_after(deadline_ms - now);

		if (pthread_cond_timedwait(c, m, &at) == 0)
			return DBX_OK;
	}
	/* Nobody signalled before the deadline: time moves there (never back). */
	now = fake_now(fc);
	while (now < deadline_ms &&
	       !__atomic_compare_exchange_n(&fc->now, &now, deadline_ms, false, __ATOMIC_SEQ_CST,
					    __ATOMIC_SEQ_CST))
		;
	__atomic_add_fetch(&fc->n_timeouts, 1, __ATOMIC_SEQ_CST);
	return DBX_ETIMEDOUT;
}

static uint32_t fake_random(void *ctx, uint32_t bound)
{
	struct fake_clock *fc = ctx;

	if (bound == 0)
		return 0;
	return fc->random_value < bound ? fc->random_value : bound - 1;
}

void fake_clock_init(struct fake_clock *fc, uint64_t start_ms)
{
	memset(fc, 0, sizeof(*fc));
	fc->clock.now_ms = fake_now;
	fc->clock.wall = fake_wall;
	fc->clock.sleep_ms = fake_sleep;
	fc->clock.wait_until = fake_wait_until;
	fc->clock.random = fake_random;
	fc->clock.ctx = fc;
	fc->now = start_ms;
	fc->wall = FAKE_WALL0;
}

static char *fmt_pool[64];
static size_t n_fmt_pool;

const char *fake_fmt(const char *f, ...)
{
	va_list ap;
	char *s = NULL;

	if (n_fmt_pool >= sizeof(fmt_pool) / sizeof(fmt_pool[0]))
		abort(); /* a test built more bodies than it frees */
	va_start(ap, f);
	if (vasprintf(&s, f, ap) < 0)
		abort();
	va_end(ap);
	fmt_pool[n_fmt_pool++] = s;
	return s;
}

void fake_fmt_free(void)
{
	for (size_t i = 0; i < n_fmt_pool; i++)
		free(fmt_pool[i]);
	n_fmt_pool = 0;
}
