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
		return rc;
	}
	resp->status = r->status;
	resp->body = strdup(r->body ? r->body : "");
	resp->body_len = strlen(resp->body);
	resp->location = dup_or_null(r->location);
	resp->retry_after = dup_or_null(r->retry_after);
	resp->retry_after_ms = dup_or_null(r->retry_after_ms);
	resp->request_id = dup_or_null(r->request_id);
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

static uint64_t fake_now(void *ctx)
{
	return ((struct fake_clock *)ctx)->now;
}

static enum dbx_err fake_sleep(void *ctx, uint64_t ms)
{
	struct fake_clock *fc = ctx;

	fc->now += ms;
	fc->slept += ms;
	if (fc->n_sleeps < FAKE_MAX_CALLS)
		fc->sleeps[fc->n_sleeps++] = ms;
	return DBX_OK;
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
	fc->clock.sleep_ms = fake_sleep;
	fc->clock.random = fake_random;
	fc->clock.ctx = fc;
	fc->now = start_ms;
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
