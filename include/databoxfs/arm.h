/*
 * arm.h: Azure Resource Manager calls for Data Box jobs.
 *
 * Lists follow nextLink verbatim (paged, never rebuilt), single GETs always
 * send $expand=details. Every call is bounded by the timeout given at
 * creation: one deadline for the whole call, pages and retries included.
 */
#ifndef DATABOXFS_ARM_H
#define DATABOXFS_ARM_H

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
			    const char *api_version, uint64_t timeout_ms, const struct dbx_clock *clock);
void dbx_arm_free(struct dbx_arm *arm);

/* Called once per subscription ID. Return non-zero to stop early. */
typedef int (*dbx_arm_sub_cb)(void *ctx, const char *subscription_id);

/* Called once per job; the callback takes ownership of order. Return non-zero to stop early. */
typedef int (*dbx_arm_job_cb)(void *ctx, struct dbx_order *order);

/* GET /subscriptions, all pages. */
DBX_MUST_CHECK enum dbx_err dbx_arm_list_subscriptions(struct dbx_arm *arm, dbx_arm_sub_cb cb, void *ctx,
							struct dbx_error *err);

/* GET the jobs of a subscription (resource_group NULL) or of one resource group, all pages. */
DBX_MUST_CHECK enum dbx_err dbx_arm_list_jobs(struct dbx_arm *arm, const char *subscription,
					       const char *resource_group, dbx_arm_job_cb cb, void *ctx,
					       struct dbx_error *err);

/* GET one job with $expand=details. DBX_ENOTFOUND on 404. */
DBX_MUST_CHECK enum dbx_err dbx_arm_get_job(struct dbx_arm *arm, const char *subscription,
					     const char *resource_group, const char *name,
					     struct dbx_order **out, struct dbx_error *err);

/*
 * Map a non-2xx ARM response to an error: the status to enum dbx_err
 * (400 EINVAL, 401/403 EACCES, 404 ENOTFOUND, 409 EBUSY, 429 ETHROTTLED,
 * 5xx EREMOTE), error.code / error.message from the body, request id from
 * the headers. Shared by every backend module.
 */
enum dbx_err dbx_arm_error_from_response(const struct dbx_http_response *resp, struct dbx_error *err);

#endif
