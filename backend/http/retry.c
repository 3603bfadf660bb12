/*
 * retry.c: the retry layer of the HTTP pipeline (http.h), the Azure SDKs'
 * policy.
 *
 * Retried: 408, 429, 500, 502, 503, 504 and transport failures. The wait
 * is the server's when it gives one (retry-after-ms, x-ms-retry-after-ms in
 * milliseconds, then Retry-After in seconds or as an HTTP date), else
 * exponential backoff base * 2^(n-1), jittered to 80..120 % and capped.
 * A request that is not idempotent (PATCH, POST) is resent only when the
 * service certainly did not act on it: after 408, 429, or a connection that
 * never carried the request (DBX_EUNREACHABLE). A body over the size cap is
 * never resent: the same request gets the same answer. Everything is bounded by the
 * request's deadline: when the next wait would pass it, the last outcome is
 * returned as it is; a read's shorter retry budget (retry_until_ms) bounds
 * the waits the same way. The clock is injected, so tests never sleep.
 *
 * A host whose retries all failed at the transport (refused, unreachable,
 * dropped) is remembered as down: for DBX_HTTP_DOWN_QUIET_MS requests to
 * it fail at once with that failure, and until DBX_HTTP_DOWN_FORGET_MS has
 * passed without another failure each request gets one try and no resends
 * (a probe). One system call is often several FUSE requests (a lookup, an
 * open, a read) and each used to spend the whole retry budget on the same
 * dead host; now the first does, the rest answer at once, and while the
 * host stays down each later call spends one try (docs/formats.md,
 * "Reads"). A dropped PATCH does not count (one lost answer says little of
 * the host, and the write reads the order right after it), nor does a
 * timeout; the first answer from the host forgets it.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "databoxfs/http.h"
#include "databoxfs/log.h"
#include "databoxfs/stats.h"

#define DEFAULT_MAX_RETRIES   4
#define DEFAULT_BASE_DELAY_MS 800
#define DEFAULT_MAX_DELAY_MS  60000

#define HOST_MAX 256
#define DOWN_MAX 8 /* hosts remembered as down at once: ARM, a few vaults, Entra */

/* A host that just failed at the transport. */
struct down_host {
	char host[HOST_MAX]; /* "" : free */
	uint64_t until_ms;   /* forgotten then */
	uint64_t since_ms;   /* when the failure was seen */
	struct dbx_error err;
};

struct retry_transport {
	struct dbx_transport base;
	struct dbx_transport *inner;
	struct dbx_retry_policy policy;
	const struct dbx_clock *clock;
	pthread_mutex_t lock; /* guards down */
	struct down_host down[DOWN_MAX];
};

static const struct dbx_retry_policy default_policy = {
    .max_retries = DEFAULT_MAX_RETRIES,
    .base_delay_ms = DEFAULT_BASE_DELAY_MS,
    .max_delay_ms = DEFAULT_MAX_DELAY_MS,
};

static bool status_retryable(long status, bool idempotent)
{
	switch (status) {
	case 408:
	case 429:
		return true;
	case 500:
	case 502:
	case 503:
	case 504:
		return idempotent;
	default:
		return false;
	}
}

static bool transport_err_retryable(enum dbx_err e, bool idempotent)
{
	switch (e) {
	case DBX_EUNREACHABLE:
		return true; /* nothing was sent */
	case DBX_EREMOTE:
	case DBX_ETIMEDOUT:
		return idempotent; /* the request may have been received */
	default:
		return false;
	}
}

/* Parse a non-negative decimal integer filling all of s (blanks around allowed). */
static bool parse_uint(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	while (*s == ' ' || *s == '\t')
		s++;
	if (*s < '0' || *s > '9')
		return false;
	v = strtoull(s, &end, 10);
	while (*end == ' ' || *end == '\t')
		end++;
	if (*end)
		return false;
	*out = v;
	return true;
}

/*
 * Retry-After as an HTTP date (IMF-fixdate, RFC 9110 5.6.7) -> ms from the
 * clock's wall time now, clamped at 0.
 */
static bool parse_http_date_ms(const struct dbx_clock *clock, const char *s, uint64_t *out)
{
	struct tm tm;
	const char *end;
	time_t when;
	time_t now;

	memset(&tm, 0, sizeof(tm));
	end = strptime(s, "%a, %d %b %Y %H:%M:%S GMT", &tm);
	if (!end || *end)
		return false;
	when = timegm(&tm);
	if (when == (time_t)-1)
		return false;
	now = dbx_clock_wall(clock);
	*out = when > now ? (uint64_t)(when - now) * 1000u : 0;
	return true;
}

/* The server's requested wait, in ms, when it gave a usable one. */
static bool server_delay_ms(const struct dbx_clock *clock, const struct dbx_http_response *resp,
			    uint64_t *out)
{
	uint64_t v;

	if (resp->retry_after_ms && parse_uint(resp->retry_after_ms, &v)) {
		*out = v;
		return true;
	}
	if (resp->retry_after) {
		if (parse_uint(resp->retry_after, &v)) {
			*out = v > UINT64_MAX / 1000u ? UINT64_MAX - 1 : v * 1000u;
			return true;
		}
		if (parse_http_date_ms(clock, resp->retry_after, out))
			return true;
	}
	return false;
}

static uint64_t backoff_ms(const struct dbx_retry_policy *p, const struct dbx_clock *clock,
			   unsigned attempt)
{
	uint64_t d = p->base_delay_ms;
	uint32_t pct;

	for (unsigned i = 1; i < attempt && d < p->max_delay_ms && d <= UINT64_MAX / 2; i++)
		d *= 2;
	if (d > p->max_delay_ms)
		d = p->max_delay_ms;
	pct = 80 + clock->random(clock->ctx, 41); /* 80..120 % */
	d = d / 100 * pct + d % 100 * pct / 100;  /* no overflow for any d */
	if (d > p->max_delay_ms)
		d = p->max_delay_ms;
	return d;
}

uint64_t dbx_retry_delay_ms(const struct dbx_retry_policy *policy, const struct dbx_clock *clock,
			    unsigned attempt, const struct dbx_http_response *resp,
			    enum dbx_err transport_err, bool idempotent)
{
	const struct dbx_retry_policy *p = policy ? policy : &default_policy;
	uint64_t d;

	if (attempt == 0)
		attempt = 1;
	if (transport_err != DBX_OK) {
		if (!transport_err_retryable(transport_err, idempotent))
			return UINT64_MAX;
		return backoff_ms(p, clock, attempt);
	}
	if (!resp || !status_retryable(resp->status, idempotent))
		return UINT64_MAX;
	if (server_delay_ms(clock, resp, &d))
		return d == UINT64_MAX ? UINT64_MAX - 1 : d;
	return backoff_ms(p, clock, attempt);
}

/* Length of url without its query and fragment, for logs. */
static int url_loggable_len(const char *url)
{
	return (int)strcspn(url, "?#");
}

/* The host[:port] of an absolute URL, lower-cased, into out ("" when there is none). */
static void host_of(const char *url, char out[HOST_MAX])
{
	const char *p = strstr(url, "://");
	size_t n;

	p = p ? p + 3 : url;
	n = strcspn(p, "/?#");
	if (n >= HOST_MAX)
		n = 0;
	for (size_t i = 0; i < n; i++)
		out[i] = (char)(p[i] >= 'A' && p[i] <= 'Z' ? p[i] - 'A' + 'a' : p[i]);
	out[n] = '\0';
}

enum host_state {
	HOST_UP,    /* send as usual */
	HOST_QUIET, /* failed a moment ago: fail at once */
	HOST_PROBE, /* failed not long ago: one try, no resends */
};

/* How host stands; when HOST_QUIET, *err and *rc are its failure, noted as not tried again. */
static enum host_state host_state(struct retry_transport *rt, const char *host,
				  struct dbx_error *err, enum dbx_err *rc)
{
	uint64_t now = dbx_clock_now_ms(rt->clock);
	enum host_state st = HOST_UP;

	pthread_mutex_lock(&rt->lock);
	for (size_t i = 0; i < DOWN_MAX; i++) {
		struct down_host *d = &rt->down[i];
		uint64_t ago;

		if (!d->host[0] || strcmp(d->host, host) != 0)
			continue;
		ago = now - d->since_ms;
		if (ago >= DBX_HTTP_DOWN_FORGET_MS) {
			d->host[0] = '\0';
		} else if (ago >= DBX_HTTP_DOWN_QUIET_MS) {
			st = HOST_PROBE;
		} else {
			st = HOST_QUIET;
			*err = d->err;
			*rc = d->err.err;
			snprintf(err->message, sizeof(err->message),
				 "%.900s (%llu ms ago; not tried again yet)", d->err.message,
				 (unsigned long long)ago);
		}
		break;
	}
	pthread_mutex_unlock(&rt->lock);
	return st;
}

/* Remember host as down after err (rc), or forget it after an answer (rc DBX_OK). */
static void note_host(struct retry_transport *rt, const char *host, enum dbx_err rc,
		      const struct dbx_error *err)
{
	uint64_t now = dbx_clock_now_ms(rt->clock);
	struct down_host *slot = NULL;

	pthread_mutex_lock(&rt->lock);
	for (size_t i = 0; i < DOWN_MAX; i++) {
		struct down_host *d = &rt->down[i];

		if (d->host[0] && strcmp(d->host, host) == 0)
			slot = d;
		else if (!slot && (!d->host[0] || now - d->since_ms >= DBX_HTTP_DOWN_FORGET_MS))
			slot = d;
	}
	if (rc == DBX_OK) {
		if (slot && strcmp(slot->host, host) == 0)
			slot->host[0] = '\0';
	} else if (slot) {
		snprintf(slot->host, sizeof(slot->host), "%s", host);
		slot->since_ms = now;
		slot->err = *err;
		slot->err.err = rc;
	}
	pthread_mutex_unlock(&rt->lock);
}

/*
 * A final failure that says the host cannot be reached now: refused, or
 * dropped on every try. A timeout does not: a slow host is not a dead one,
 * and a request often times out because its system call's deadline came.
 */
static bool says_host_down(const struct dbx_http_request *req, enum dbx_err rc,
			   const struct dbx_error *err)
{
	if (rc != DBX_EUNREACHABLE && rc != DBX_EREMOTE)
		return false;
	if (strcmp(err->code, DBX_HTTP_CODE_TOO_LARGE) == 0)
		return false; /* the host answered, too much */
	if (req->max_retries)
		return false; /* its caller has its own way out, and tried less */
	return req->idempotent || rc == DBX_EUNREACHABLE;
}

static enum dbx_err retry_loop(struct retry_transport *rt, const struct dbx_http_request *req,
			       bool probe, struct dbx_http_response *resp, struct dbx_error *err);

/*
 * What the final outcome of an ARM request says of the mount's health
 * (stats.h, MOUNT/.databoxfs/health): any answer means ARM is reachable;
 * a 429 after the retries, or the mount's own budget refusing, means
 * throttled; a refused or dropped connection means unreachable.
 */
static void note_health(struct retry_transport *rt, const struct dbx_http_request *req,
			enum dbx_err rc, const struct dbx_http_response *resp,
			const struct dbx_error *err)
{
	time_t now = dbx_clock_wall(rt->clock);

	if (dbx_stats_service_of(req->url) != DBX_STATS_ARM)
		return;
	if (rc == DBX_OK) {
		dbx_stats_health_ok(DBX_HEALTH_ARM);
		if (resp->status == 429)
			dbx_stats_health_fail(DBX_HEALTH_THROTTLED, now,
					      "ARM answered HTTP 429 (too many requests)");
		else
			dbx_stats_health_ok(DBX_HEALTH_THROTTLED);
	} else if (rc == DBX_ETHROTTLED) {
		dbx_stats_health_fail(DBX_HEALTH_THROTTLED, now, err->message);
	} else if (rc == DBX_EUNREACHABLE ||
		   (rc == DBX_EREMOTE && strcmp(err->code, DBX_HTTP_CODE_TOO_LARGE) != 0)) {
		dbx_stats_health_fail(DBX_HEALTH_ARM, now, err->message);
	}
}

static enum dbx_err retry_send(struct dbx_transport *self, const struct dbx_http_request *req,
			       struct dbx_http_response *resp, struct dbx_error *err)
{
	struct retry_transport *rt = (struct retry_transport *)self;
	struct dbx_error own = {0};
	enum host_state st = HOST_UP;
	char host[HOST_MAX];
	enum dbx_err rc;

	if (!err)
		err = &own; /* the inner layer's code says whether a resend can help */
	host_of(req->url, host);
	if (host[0])
		st = host_state(rt, host, err, &rc);
	if (st == HOST_QUIET)
		return rc;
	rc = retry_loop(rt, req, st == HOST_PROBE, resp, err);
	note_health(rt, req, rc, resp, err);
	if (host[0] && rc == DBX_OK)
		note_host(rt, host, DBX_OK, err);
	else if (host[0] && (says_host_down(req, rc, err) ||
			     (st == HOST_PROBE && rc != DBX_ETIMEDOUT && rc != DBX_EINTR)))
		note_host(rt, host, rc, err);
	return rc;
}

/* Send req with resends as the policy says; a probe of a host that was down gets none. */
static enum dbx_err retry_loop(struct retry_transport *rt, const struct dbx_http_request *req,
			       bool probe, struct dbx_http_response *resp, struct dbx_error *err)
{
	const struct dbx_clock *clock = rt->clock;
	unsigned max_retries = rt->policy.max_retries;
	enum dbx_err rc;

	if (req->max_retries && req->max_retries < max_retries)
		max_retries = req->max_retries;
	if (probe)
		max_retries = 0;
	for (unsigned attempt = 1;; attempt++) {
		uint64_t delay;
		uint64_t now;

		rc = rt->inner->send(rt->inner, req, resp, err);
		/* Every try that went out counts; the budget's refusals and Ctrl-C sent nothing. */
		if (rc != DBX_ETHROTTLED && rc != DBX_EINTR)
			dbx_stats_request(req->url, req->method, rc == DBX_OK ? resp->status : 0);
		if (rc == DBX_ETIMEDOUT && req->deadline_ms &&
		    dbx_clock_now_ms(clock) >= req->deadline_ms)
			return rc; /* the deadline itself was hit mid-request */
		if (rc != DBX_OK && strcmp(err->code, DBX_HTTP_CODE_TOO_LARGE) == 0)
			return rc;
		if (attempt > max_retries)
			return rc;
		delay = dbx_retry_delay_ms(&rt->policy, clock, attempt, rc == DBX_OK ? resp : NULL,
					   rc, req->idempotent);
		if (delay == UINT64_MAX)
			return rc;
		now = dbx_clock_now_ms(clock);
		if (req->deadline_ms &&
		    (now >= req->deadline_ms || delay >= req->deadline_ms - now)) {
			dbx_log(DBX_LOG_DEBUG,
				"%s %.*s: not retrying, waiting %llu ms would pass the deadline",
				req->method, url_loggable_len(req->url), req->url,
				(unsigned long long)delay);
			return rc;
		}
		if (req->retry_until_ms &&
		    (now >= req->retry_until_ms || delay > req->retry_until_ms - now)) {
			dbx_log(
			    DBX_LOG_DEBUG,
			    "%s %.*s: not retrying, waiting %llu ms would pass the retry budget",
			    req->method, url_loggable_len(req->url), req->url,
			    (unsigned long long)delay);
			return rc;
		}
		if (rc == DBX_OK)
			dbx_log(DBX_LOG_DEBUG, "%s %.*s: HTTP %ld, retry %u of %u in %llu ms",
				req->method, url_loggable_len(req->url), req->url, resp->status,
				attempt, max_retries, (unsigned long long)delay);
		else
			dbx_log(DBX_LOG_DEBUG, "%s %.*s: %s (%s), retry %u of %u in %llu ms",
				req->method, url_loggable_len(req->url), req->url, dbx_err_str(rc),
				err->message, attempt, rt->policy.max_retries,
				(unsigned long long)delay);
		dbx_stats_retry(req->url);
		if (rc == DBX_OK && resp->status == 429)
			dbx_stats_throttle_wait(DBX_STATS_WAIT_RETRY_AFTER, delay);
		dbx_http_response_reset(resp);
		if (clock->sleep_ms(clock->ctx, delay) != DBX_OK)
			return dbx_error_set(err, DBX_EINTR,
					     "interrupted while waiting to retry %s", req->method);
		dbx_error_clear(err);
	}
}

static void retry_destroy(struct dbx_transport *self)
{
	struct retry_transport *rt = (struct retry_transport *)self;

	dbx_transport_destroy(rt->inner);
	pthread_mutex_destroy(&rt->lock);
	free(rt);
}

struct dbx_transport *dbx_http_retry_new(struct dbx_transport *inner,
					 const struct dbx_retry_policy *policy,
					 const struct dbx_clock *clock)
{
	struct retry_transport *rt = calloc(1, sizeof(*rt));

	if (!rt)
		return NULL;
	pthread_mutex_init(&rt->lock, NULL);
	rt->base.send = retry_send;
	rt->base.destroy = retry_destroy;
	rt->inner = inner;
	rt->policy = policy ? *policy : default_policy;
	rt->clock = clock ? clock : dbx_clock_system();
	return &rt->base;
}
