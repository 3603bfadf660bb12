/*
 * stats.h: the mount's counters and health, what MOUNT/.databoxfs/stats
 * and MOUNT/.databoxfs/health show (docs/formats.md, "The control
 * directory").
 *
 * The counters belong to the process, like a Prometheus client's default
 * registry: the HTTP pipeline (backend/http/retry.c, budget.c), the token
 * cache (backend/cred/auth.c), the ARM error decoder and the mount's cache
 * count into them without a handle being passed down every layer. Each
 * call is cheap and thread-safe: atomics for the plain counters, one
 * mutex around the small labelled tables. Nothing here ever holds a
 * token, a secret or a URL's query: only service names, methods, status
 * codes and service error codes.
 */
#ifndef DATABOXFS_STATS_H
#define DATABOXFS_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "databoxfs/err.h"

/* The services a request can go to, from its URL (dbx_stats_service_of). */
enum dbx_stats_service {
	DBX_STATS_ARM = 0,  /* management.* */
	DBX_STATS_KEYVAULT, /* *.vault.* */
	DBX_STATS_ENTRA,    /* login.* (the token endpoint) */
	DBX_STATS_IMDS,	    /* 169.254.169.254, or IDENTITY_ENDPOINT's /msi/token */
	DBX_STATS_OTHER,    /* anything else */
	DBX_STATS_N_SERVICES,
};

/* "arm", "keyvault", "entra", "imds", "other". */
const char *dbx_stats_service_name(enum dbx_stats_service s);

/* The service of an absolute URL, by its host (and path for a managed identity endpoint). */
enum dbx_stats_service dbx_stats_service_of(const char *url);

/*
 * One request that went out on the wire (each try counts): its method and
 * the HTTP status of the answer, or 0 when none came (refused, reset,
 * timed out).
 */
void dbx_stats_request(const char *url, const char *method, long status);

/* A resend the retry layer is about to wait for. */
void dbx_stats_retry(const char *url);

/* Why the mount waited before sending: the server asked (429 Retry-After), or its own budget. */
enum dbx_stats_wait {
	DBX_STATS_WAIT_RETRY_AFTER = 0,
	DBX_STATS_WAIT_BUDGET,
	DBX_STATS_N_WAITS,
};

/* A throttling wait of ms milliseconds. */
void dbx_stats_throttle_wait(enum dbx_stats_wait why, uint64_t ms);

/* An order's state served from the cache (hit) or fetched again (miss). */
void dbx_stats_cache(bool hit);

/* A token refresh of the credential ended: ok or failed. */
void dbx_stats_token_refresh(bool ok);

/* A service error code seen in an error answer (SsemUserError..., AuthorizationFailed, ...). */
void dbx_stats_error_code(const char *code);

/* What health reports, in this order of precedence. */
enum dbx_health {
	DBX_HEALTH_CREDENTIAL = 0, /* the token endpoint refused or could not be reached */
	DBX_HEALTH_ARM,		   /* ARM could not be reached */
	DBX_HEALTH_THROTTLED,	   /* ARM answered 429, or the mount's own budget ran out */
	DBX_HEALTH_N,
};

/*
 * The condition is failing since now (UTC; kept from its first failure
 * until it clears), reason one line without a secret (copied, control
 * bytes become spaces).
 */
void dbx_stats_health_fail(enum dbx_health h, time_t now, const char *reason);

/* The condition is fine again. */
void dbx_stats_health_ok(enum dbx_health h);

/*
 * The counters in the Prometheus text exposition format (version 0.0.4),
 * into *buf (malloc'd, NUL-terminated) and *len. DBX_ENOMEM only.
 */
DBX_MUST_CHECK enum dbx_err dbx_stats_render(char **buf, size_t *len);

/*
 * "ok\n", or the first failing condition as
 * "<credential|arm_unreachable|throttled>: <reason> since <RFC 3339 UTC>\n".
 * DBX_ENOMEM only.
 */
DBX_MUST_CHECK enum dbx_err dbx_stats_health_render(char **buf, size_t *len);

/* Forget every counter and condition (unit tests). */
void dbx_stats_reset(void);

#endif
