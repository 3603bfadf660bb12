/*
 * arm.h: Azure Resource Manager calls for Data Box jobs.
 *
 * Lists follow nextLink verbatim (paged, never rebuilt), single GETs always
 * send $expand=details. Every call is bounded by the timeout given at
 * creation: one deadline for the whole call, pages and retries included.
 */
#ifndef DATABOXFS_ARM_H
#define DATABOXFS_ARM_H

#include <stdbool.h>

#include "databoxfs/err.h"
#include "databoxfs/http.h"
#include "databoxfs/cloud.h"
#include "databoxfs/order.h"

struct dbx_arm;

/*
 * A new ARM client over transport (the full stack: curl, retry, auth; not
 * owned), for cloud, with api_version (NULL: "2025-07-01") and timeout_ms
 * bounding each call. NULL on ENOMEM.
 */
struct dbx_arm *dbx_arm_new(struct dbx_transport *transport, const struct dbx_cloud *cloud,
			    const char *api_version, uint64_t timeout_ms,
			    const struct dbx_clock *clock);
void dbx_arm_free(struct dbx_arm *arm);

/*
 * May the ARM token go to url? True when url is https on exactly the
 * cloud's ARM host (any case, an explicit :443 allowed): no user info, no
 * other port, nothing but the host in the authority, and no blank, control
 * character, backslash or non-ASCII byte anywhere. Used for every URL the
 * service hands back (nextLink, Location) before anything is sent to it.
 * Added after the first cut of this header; additive.
 */
bool dbx_arm_url_is_arm(const struct dbx_cloud *cloud, const char *url);

/* Called once per subscription ID. Return non-zero to stop early. */
typedef int (*dbx_arm_sub_cb)(void *ctx, const char *subscription_id);

/* Called once per job; the callback takes ownership of order. Return non-zero to stop early. */
typedef int (*dbx_arm_job_cb)(void *ctx, struct dbx_order *order);

/* GET /subscriptions, all pages. */
DBX_MUST_CHECK enum dbx_err dbx_arm_list_subscriptions(struct dbx_arm *arm, dbx_arm_sub_cb cb,
						       void *ctx, struct dbx_error *err);

/* GET the jobs of a subscription (resource_group NULL) or of one resource group, all pages. */
DBX_MUST_CHECK enum dbx_err dbx_arm_list_jobs(struct dbx_arm *arm, const char *subscription,
					      const char *resource_group, dbx_arm_job_cb cb,
					      void *ctx, struct dbx_error *err);

/* GET one job with $expand=details. DBX_ENOTFOUND on 404. */
DBX_MUST_CHECK enum dbx_err dbx_arm_get_job(struct dbx_arm *arm, const char *subscription,
					    const char *resource_group, const char *name,
					    struct dbx_order **out, struct dbx_error *err);

/*
 * The same GET, bounded by an absolute deadline (on the arm's clock)
 * instead of the per-call timeout: the write pipeline shares one deadline
 * between its steps.
 */
DBX_MUST_CHECK enum dbx_err dbx_arm_get_job_until(struct dbx_arm *arm, const char *subscription,
						  const char *resource_group, const char *name,
						  uint64_t deadline_ms, struct dbx_order **out,
						  struct dbx_error *err);

/*
 * PATCH the job with body (a JobResourceUpdateParameter from
 * dbx_order_patch_body) and follow the long-running operation the way the
 * service runs it: 200 with the job, or 202 + Location (operationResults),
 * polled (Retry-After when sent, else lro_poll_ms) while it answers 202, each
 * Location checked to be https on the cloud's ARM host, until a 200/204; the
 * final state is then read with a GET ($expand=details) unless the last
 * answer carried the job. *out is that final order.
 *
 * The PATCH itself is never resent by the retry layer after a 5xx or a
 * dropped connection (non-idempotent): such failures come back as
 * DBX_EREMOTE with *sent set, and the caller decides (read the order, resend
 * only if the change is not there). *sent is false when the request surely
 * never reached ARM (connect failure, 429/408 retried away, deadline
 * before sending). A failed operation (the poll answers 4xx/5xx with an
 * error body) is DBX_EREMOTE, or DBX_EINVAL when the error is a user error
 * (400, Ssem codes), with code and message filled. DBX_ETIMEDOUT when the
 * deadline passes while polling.
 */
DBX_MUST_CHECK enum dbx_err dbx_arm_patch_job(struct dbx_arm *arm, const char *subscription,
					      const char *resource_group, const char *name,
					      const char *body, uint64_t lro_poll_ms,
					      uint64_t deadline_ms, bool *sent,
					      struct dbx_order **out, struct dbx_error *err);

/*
 * dbx_arm_patch_job, also telling whether ARM accepted the PATCH itself:
 * *accepted becomes true once the PATCH was answered 200, 201, 202 or 204,
 * so a later failure belongs to the long-running operation (or to the
 * deadline while polling). *sent && !*accepted after DBX_EREMOTE or
 * DBX_ETIMEDOUT: the PATCH got a 5xx or lost its connection and may or may
 * not have been applied; the caller reads the order before resending.
 * accepted may be NULL. (Additive: the write pipeline's resend rule needs
 * the difference.)
 */
DBX_MUST_CHECK enum dbx_err dbx_arm_patch_job_ex(struct dbx_arm *arm, const char *subscription,
						 const char *resource_group, const char *name,
						 const char *body, uint64_t lro_poll_ms,
						 uint64_t deadline_ms, bool *sent, bool *accepted,
						 struct dbx_order **out, struct dbx_error *err);

/* The arm's clock (for deadlines of callers sharing it). */
const struct dbx_clock *dbx_arm_clock(const struct dbx_arm *arm);

/*
 * Map a non-2xx ARM response to an error: the status to enum dbx_err
 * (400 EINVAL, 401/403 EACCES, 404 ENOTFOUND, 409 EBUSY, 429 ETHROTTLED,
 * 5xx EREMOTE), error.code / error.message from the body, request id from
 * the headers. Shared by every backend module.
 */
enum dbx_err dbx_arm_error_from_response(const struct dbx_http_response *resp,
					 struct dbx_error *err);

#endif
