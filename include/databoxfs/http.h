/*
 * http.h: the HTTP pipeline, as layers that share one interface.
 *
 * A struct dbx_transport sends one request and returns one response. The
 * production stack is libcurl (TLS always verified, connect_to, body caps),
 * wrapped by the retry layer (408/429/5xx and transport errors, Retry-After,
 * exponential backoff with jitter, bounded by the request deadline), wrapped
 * by the auth layer (bearer token for the request's scope). Unit tests put the
 * same upper layers over a scripted fake transport and a fake clock, so no
 * test ever sleeps. Only backend/http/curl.c includes curl.h.
 */
#ifndef DATABOXFS_HTTP_H
#define DATABOXFS_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#include "databoxfs/clock.h"
#include "databoxfs/err.h"

#define DBX_HTTP_BODY_MAX (16u * 1024 * 1024) /* larger bodies are refused: DBX_EREMOTE */
/*
 * The code a transport gives a body over DBX_HTTP_BODY_MAX. The same request
 * would get the same answer, so the retry layer never resends it.
 */
#define DBX_HTTP_CODE_TOO_LARGE "ResponseTooLarge"
#define DBX_HTTP_UUID_LEN	36
/*
 * A host whose retries all failed at the transport (backend/http/retry.c):
 * requests to it fail at once for DBX_HTTP_DOWN_QUIET_MS, then get one try
 * each, without resends, until DBX_HTTP_DOWN_FORGET_MS pass without a failure.
 */
#define DBX_HTTP_DOWN_QUIET_MS	500
#define DBX_HTTP_DOWN_FORGET_MS 10000

struct dbx_http_request {
	const char *method; /* "GET", "PATCH", "POST" */
	const char *url;    /* absolute https URL */
	const char *scope;  /* token scope for the auth layer; NULL sends no token */
	const char *bearer; /* set by the auth layer only: the token for "Authorization: Bearer" */
	const char *content_type; /* NULL when there is no body */
	const char *body;	  /* not NUL-terminated necessarily */
	size_t body_len;
	uint64_t deadline_ms; /* absolute, on the monotonic time line of struct dbx_clock (clock.h);
				 0: none */
	bool idempotent; /* false for PATCH/POST: the retry layer never resends them after 5xx */
	unsigned max_retries; /* 0: the retry policy's; else at most this many resends, when the
				 caller has its own way out (a lost poll: read the order) */
	/*
	 * Absolute, on deadline_ms's time line; 0: none. No resend is
	 * scheduled to start after it: the retry budget of a read, shorter
	 * than its deadline (docs/formats.md, "Reads").
	 */
	uint64_t retry_until_ms;
	/*
	 * NULL-terminated list of extra "Name: value" header lines, or NULL.
	 * Used by managed identity ("Metadata: true", "X-IDENTITY-HEADER: ...");
	 * values may be secret: never logged, wiped by the transport after use.
	 */
	const char *const *extra_headers;
};

/*
 * Owned by the caller; free the strings with dbx_http_response_reset().
 * Header values hold no control byte (the curl transport turns each one
 * into a space), so none can carry a line break into a message.
 */
struct dbx_http_response {
	long status;
	char *body; /* NUL-terminated, body_len bytes before the NUL */
	size_t body_len;
	char *location;		/* Location header, or NULL */
	char *retry_after;	/* Retry-After header (seconds or HTTP date), or NULL */
	char *retry_after_ms;	/* retry-after-ms or x-ms-retry-after-ms, or NULL */
	char *request_id;	/* x-ms-request-id, or NULL */
	char *correlation_id;	/* x-ms-correlation-request-id, or NULL (the audit trail) */
	char *www_authenticate; /* WWW-Authenticate, or NULL */
	char client_request_id[DBX_HTTP_UUID_LEN + 1]; /* the x-ms-client-request-id we sent */
	/* The lowest x-ms-ratelimit-remaining-* value of the answer, when it sent one. */
	bool ratelimit_known;
	uint64_t ratelimit_remaining;
};

void dbx_http_response_reset(struct dbx_http_response *resp);

/*
 * One layer of the pipeline. send() returns DBX_OK when a complete HTTP
 * response arrived, whatever its status; a transport failure returns
 * DBX_EUNREACHABLE (connect, DNS, TLS), DBX_ETIMEDOUT (deadline passed) or
 * DBX_EREMOTE (reset mid-body; body over DBX_HTTP_BODY_MAX, with err->code
 * DBX_HTTP_CODE_TOO_LARGE), with err filled.
 * resp must be zeroed or reset before the call.
 */
struct dbx_transport {
	enum dbx_err (*send)(struct dbx_transport *self, const struct dbx_http_request *req,
			     struct dbx_http_response *resp, struct dbx_error *err);
	void (*destroy)(struct dbx_transport *self);
};

DBX_MUST_CHECK enum dbx_err dbx_http_send(struct dbx_transport *t,
					  const struct dbx_http_request *req,
					  struct dbx_http_response *resp, struct dbx_error *err);
void dbx_transport_destroy(struct dbx_transport *t);

/* libcurl transport. */
struct dbx_curl_options {
	const char *cafile; /* extra trusted CA bundle, or NULL */
	const char *const
	    *connect_to;	/* NULL-terminated "HOST:PORT:TO_HOST:TO_PORT" list, or NULL */
	const char *user_agent; /* NULL: "databoxfs/VERSION" */
	bool verbose;		/* log request lines (never headers carrying tokens) */
	/* The clock of the requests' deadline_ms, in real time; NULL: dbx_clock_system(). */
	const struct dbx_clock *clock;
};

/* A new curl transport, or NULL with err filled. Thread-safe: one easy handle per call, shared
 * connection cache. */
struct dbx_transport *dbx_http_curl_new(const struct dbx_curl_options *opt, struct dbx_error *err);

/* Retry policy (the Azure SDKs'): 408, 429, 500, 502, 503, 504 and transport errors. */
struct dbx_retry_policy {
	unsigned max_retries;	/* default 4 */
	uint64_t base_delay_ms; /* default 800: delay n = base * 2^(n-1), jittered 80..120% */
	uint64_t max_delay_ms;	/* default 60000 */
};

/*
 * The request budget (backend/http/budget.c): ARM requests per subscription
 * and kind, a token bucket kept under ARM's own throttling limits.
 */
struct dbx_budget_policy {
	double read_burst, read_per_s;	 /* default 225, then 22.5 a second */
	double write_burst, write_per_s; /* default 180, then 9 a second */
	double reserve; /* default 25: left to other tools when ARM says the budget runs low */
};

/*
 * Wrap inner (owned by the result) in the budget layer: requests whose scope
 * is arm_scope wait for their subscription's budget; the rest pass through.
 * A wait that would pass the request's deadline fails at once with
 * DBX_ETHROTTLED. policy NULL: the defaults. NULL on ENOMEM.
 */
struct dbx_transport *dbx_http_budget_new(struct dbx_transport *inner, const char *arm_scope,
					  const struct dbx_budget_policy *policy,
					  const struct dbx_clock *clock);

/* Wrap inner (owned by the result) in the retry layer. clock may be dbx_clock_system(). */
struct dbx_transport *dbx_http_retry_new(struct dbx_transport *inner,
					 const struct dbx_retry_policy *policy,
					 const struct dbx_clock *clock);

/*
 * The delay before retry number attempt (1-based) for this response, in ms,
 * or UINT64_MAX when the response must not be retried. Pure: exposed for
 * unit tests.
 */
uint64_t dbx_retry_delay_ms(const struct dbx_retry_policy *policy, const struct dbx_clock *clock,
			    unsigned attempt, const struct dbx_http_response *resp,
			    enum dbx_err transport_err, bool idempotent);

/* Fill out with a fresh random UUID (version 4), NUL-terminated. */
void dbx_uuid4(char out[DBX_HTTP_UUID_LEN + 1]);

/* Percent-encode s for a URL path segment or query value. Caller frees. NULL on ENOMEM. */
char *dbx_url_escape(const char *s);

#endif
