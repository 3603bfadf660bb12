/*
 * budget.c: the request budget layer of the HTTP pipeline (http.h).
 *
 * ARM throttles each principal with token buckets per subscription: about
 * 250 reads in a burst, then 25 a second (writes: 200, then 10), and says
 * how much is left in x-ms-ratelimit-remaining-* headers (docs/azure.md,
 * "Errors and throttling"). This layer keeps the mount's own rate under
 * that, so a large tar never draws a 429 and never spends the budget the
 * admin's other tools share: every ARM request (the request's scope is the
 * ARM scope) takes a token from the bucket of its subscription (the
 * /subscriptions/ID/ of its path; tenant-level paths share one bucket) and
 * kind (GET and HEAD read, the rest write), waiting for one when the bucket
 * is empty. An answer that says fewer requests are left than the bucket
 * holds lowers the bucket to that, less a reserve; a 429 empties it. A wait
 * that would pass the request's deadline is not begun: DBX_ETHROTTLED.
 * Requests to other services pass straight through. Thread-safe; the clock
 * is injected, so tests never sleep.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "databoxfs/http.h"
#include "databoxfs/log.h"
#include "databoxfs/stats.h"

#define SUB_ID_MAX  64 /* a subscription ID is a GUID: 36 characters */
#define BUCKETS_MAX 64 /* more subscriptions than this share the last bucket */

struct bucket {
	char sub[SUB_ID_MAX + 1]; /* "" for tenant-level requests */
	bool write;
	double tokens;	/* may go below 0: requests already waiting for tokens */
	uint64_t at_ms; /* when tokens was last brought up to date */
};

struct budget_transport {
	struct dbx_transport base;
	struct dbx_transport *inner;
	struct dbx_budget_policy policy;
	char *scope; /* the ARM scope: requests with another one pass through */
	const struct dbx_clock *clock;
	pthread_mutex_t lock; /* guards buckets, n and overflow */
	struct bucket buckets[BUCKETS_MAX];
	size_t n;
	struct bucket overflow[2]; /* reads, writes of the subscriptions past BUCKETS_MAX */
};

static const struct dbx_budget_policy default_policy = {
    .read_burst = 225,	/* 90 % of ARM's 250 */
    .read_per_s = 22.5, /* 90 % of 25 */
    .write_burst = 180, /* 90 % of 200 */
    .write_per_s = 9,	/* 90 % of 10 */
    .reserve = 25,	/* left to the admin's other tools when ARM says the budget runs low */
};

/* The subscription ID in url's path (/subscriptions/ID[/...]), or "" (tenant level). */
static void subscription_of(const char *url, char out[SUB_ID_MAX + 1])
{
	const char *p = strstr(url, "://");
	size_t n;

	out[0] = '\0';
	p = p ? p + 3 : url;
	p += strcspn(p, "/?#");
	if (strncasecmp(p, "/subscriptions/", 15) != 0)
		return;
	p += 15;
	n = strcspn(p, "/?#");
	if (n == 0 || n > SUB_ID_MAX)
		return;
	memcpy(out, p, n);
	out[n] = '\0';
}

static bool is_write(const char *method)
{
	return strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0;
}

static double burst_of(const struct budget_transport *bt, bool write)
{
	return write ? bt->policy.write_burst : bt->policy.read_burst;
}

static double rate_of(const struct budget_transport *bt, bool write)
{
	return write ? bt->policy.write_per_s : bt->policy.read_per_s;
}

/* The bucket for (sub, write), made full when new. Called with the lock held. */
static struct bucket *bucket_for(struct budget_transport *bt, const char *sub, bool write,
				 uint64_t now)
{
	struct bucket *b;

	for (size_t i = 0; i < bt->n; i++) {
		b = &bt->buckets[i];
		if (b->write == write && strcasecmp(b->sub, sub) == 0)
			return b;
	}
	if (bt->n == BUCKETS_MAX)
		return &bt->overflow[write];
	b = &bt->buckets[bt->n++];
	snprintf(b->sub, sizeof(b->sub), "%s", sub);
	b->write = write;
	b->tokens = burst_of(bt, write);
	b->at_ms = now;
	return b;
}

/* Bring b->tokens up to now: rate tokens a second, never past the burst. */
static void refill(const struct budget_transport *bt, struct bucket *b, uint64_t now)
{
	double burst = burst_of(bt, b->write);

	if (now > b->at_ms) {
		b->tokens += (double)(now - b->at_ms) * rate_of(bt, b->write) / 1000.0;
		b->at_ms = now;
	}
	if (b->tokens > burst)
		b->tokens = burst;
}

/*
 * Take a token for a request to sub: *wait_ms is how long to wait before
 * sending it (0: at once). A wait past deadline takes nothing: false.
 */
static bool take(struct budget_transport *bt, const char *sub, bool write, uint64_t deadline,
		 uint64_t *wait_ms)
{
	uint64_t now = dbx_clock_now_ms(bt->clock);
	struct bucket *b;
	bool ok = true;

	*wait_ms = 0;
	pthread_mutex_lock(&bt->lock);
	b = bucket_for(bt, sub, write, now);
	refill(bt, b, now);
	if (b->tokens < 1.0) {
		double rate = rate_of(bt, write);

		*wait_ms =
		    rate > 0 ? (uint64_t)((1.0 - b->tokens) * 1000.0 / rate) + 1 : UINT64_MAX;
		ok = !deadline || (now < deadline && *wait_ms < deadline - now);
	}
	if (ok)
		b->tokens -= 1.0;
	pthread_mutex_unlock(&bt->lock);
	return ok;
}

/* What the answer says of the budget left: lower the bucket to it, less the reserve. */
static void learn(struct budget_transport *bt, const char *sub, bool write,
		  const struct dbx_http_response *resp)
{
	uint64_t now = dbx_clock_now_ms(bt->clock);
	struct bucket *b;

	if (resp->status != 429 && !resp->ratelimit_known)
		return;
	pthread_mutex_lock(&bt->lock);
	b = bucket_for(bt, sub, write, now);
	refill(bt, b, now);
	if (resp->status == 429) {
		if (b->tokens > 0)
			b->tokens = 0;
	} else {
		double left = (double)resp->ratelimit_remaining - bt->policy.reserve;

		if (left < b->tokens)
			b->tokens = left < 0 ? 0 : left;
	}
	pthread_mutex_unlock(&bt->lock);
}

static enum dbx_err budget_send(struct dbx_transport *self, const struct dbx_http_request *req,
				struct dbx_http_response *resp, struct dbx_error *err)
{
	struct budget_transport *bt = (struct budget_transport *)self;
	char sub[SUB_ID_MAX + 1];
	uint64_t wait_ms;
	bool write;
	enum dbx_err rc;

	if (!bt->scope || !req->scope || strcmp(req->scope, bt->scope) != 0)
		return bt->inner->send(bt->inner, req, resp, err);
	subscription_of(req->url, sub);
	write = is_write(req->method);
	if (!take(bt, sub, write, req->deadline_ms, &wait_ms))
		return dbx_error_set(
		    err, DBX_ETHROTTLED,
		    "the mount's own ARM %s budget for subscription %s is spent: the "
		    "next request would wait %llu ms, past the timeout",
		    write ? "write" : "read", sub[0] ? sub : "(tenant)",
		    (unsigned long long)wait_ms);
	if (wait_ms) {
		dbx_log(DBX_LOG_DEBUG, "ARM %s budget of %s spent: waiting %llu ms",
			write ? "write" : "read", sub[0] ? sub : "the tenant",
			(unsigned long long)wait_ms);
		dbx_stats_throttle_wait(DBX_STATS_WAIT_BUDGET, wait_ms);
		if (bt->clock->sleep_ms(bt->clock->ctx, wait_ms) != DBX_OK)
			return dbx_error_set(err, DBX_EINTR,
					     "interrupted while waiting for the "
					     "ARM request budget");
	}
	rc = bt->inner->send(bt->inner, req, resp, err);
	if (rc == DBX_OK)
		learn(bt, sub, write, resp);
	return rc;
}

static void budget_destroy(struct dbx_transport *self)
{
	struct budget_transport *bt = (struct budget_transport *)self;

	dbx_transport_destroy(bt->inner);
	pthread_mutex_destroy(&bt->lock);
	free(bt->scope);
	free(bt);
}

struct dbx_transport *dbx_http_budget_new(struct dbx_transport *inner, const char *arm_scope,
					  const struct dbx_budget_policy *policy,
					  const struct dbx_clock *clock)
{
	struct budget_transport *bt = calloc(1, sizeof(*bt));

	if (!bt)
		return NULL;
	bt->scope = arm_scope ? strdup(arm_scope) : NULL;
	if (arm_scope && !bt->scope) {
		free(bt);
		return NULL;
	}
	pthread_mutex_init(&bt->lock, NULL);
	bt->base.send = budget_send;
	bt->base.destroy = budget_destroy;
	bt->inner = inner;
	bt->policy = policy ? *policy : default_policy;
	bt->clock = clock ? clock : dbx_clock_system();
	for (int w = 0; w < 2; w++) {
		bt->overflow[w].write = w;
		bt->overflow[w].tokens = burst_of(bt, w);
		bt->overflow[w].at_ms = dbx_clock_now_ms(bt->clock);
	}
	return &bt->base;
}
