/*
 * arm.h: Azure Resource Manager calls: Data Box jobs, and the lookups the
 * Key Vault preflight makes through ARM (vaults, user-assigned identities).
 *
 * Every listing (jobs, subscriptions, resources) goes through one paging
 * loop: nextLink followed verbatim (never rebuilt) and only to the cloud's
 * ARM host, at most 10,000 pages, and a nextLink naming a page already
 * requested ends the listing as malformed (DBX_EREMOTE). Single job GETs
 * always send $expand=details. Every job call is bounded by the timeout
 * given at creation: one deadline for the whole call, pages and retries
 * included; the lookups take their caller's deadline instead.
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
 * owned), for cloud, with the Data Box jobs' api_version (NULL:
 * "2025-07-01"; every other ARM API version is fixed in arm.c) and
 * timeout_ms bounding each call. NULL on ENOMEM.
 */
struct dbx_arm *dbx_arm_new(struct dbx_transport *transport, const struct dbx_cloud *cloud,
			    const char *api_version, uint64_t timeout_ms,
			    const struct dbx_clock *clock);
void dbx_arm_free(struct dbx_arm *arm);

/*
 * The read retry budget: each GET this client sends schedules no resend
 * to start more than ms after it was first sent (0, the default: only
 * the deadline bounds resends). The mount gives its readers' client
 * DBX_ARM_READ_RETRY_MS and its writers' none, so a read of an
 * unreachable or throttling ARM fails within seconds while a write keeps
 * its whole timeout (docs/formats.md, "Reads").
 */
#define DBX_ARM_READ_RETRY_MS 5000
void dbx_arm_set_retry_budget(struct dbx_arm *arm, uint64_t ms);

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

/*
 * Called once per job; the callback takes ownership of order. Return
 * non-zero to stop early. A job of the list that is malformed but has a
 * usable id and name comes as a stub with order->malformed set (order.h):
 * the callback must show that order as unreadable, never as its state.
 */
typedef int (*dbx_arm_job_cb)(void *ctx, struct dbx_order *order);

/* GET /subscriptions, all pages. */
DBX_MUST_CHECK enum dbx_err dbx_arm_list_subscriptions(struct dbx_arm *arm, dbx_arm_sub_cb cb,
						       void *ctx, struct dbx_error *err);

/* GET the jobs of a subscription (resource_group NULL) or of one resource group, all pages. */
DBX_MUST_CHECK enum dbx_err dbx_arm_list_jobs(struct dbx_arm *arm, const char *subscription,
					      const char *resource_group, dbx_arm_job_cb cb,
					      void *ctx, struct dbx_error *err);

/*
 * Called before the jobs of each page of a job listing with the URL that
 * page was read from (the listing's own URL, then each nextLink verbatim).
 * Return non-zero to end the listing (DBX_ENOMEM: the caller ran out).
 */
typedef int (*dbx_arm_page_cb)(void *ctx, const char *url);

/*
 * dbx_arm_list_jobs, telling page_cb (may be NULL) where each page came
 * from, so that one page can be read again alone (dbx_arm_list_job_page).
 * Additive.
 */
DBX_MUST_CHECK enum dbx_err dbx_arm_list_jobs_paged(struct dbx_arm *arm, const char *subscription,
						    const char *resource_group,
						    dbx_arm_page_cb page_cb, dbx_arm_job_cb cb,
						    void *ctx, struct dbx_error *err);

/*
 * GET one page of a job listing again: url is one page_cb was told. Its
 * jobs go to cb as the listing's do (jobs outside subscription skipped,
 * malformed ones as stubs); its nextLink is not followed. A url off the
 * cloud's ARM host is DBX_EREMOTE and nothing is sent. ARM's nextLinks
 * carry their position ($skipToken), so the page may hold other orders
 * than it did once the listing changed: callers take only the orders it
 * holds. Additive.
 */
DBX_MUST_CHECK enum dbx_err dbx_arm_list_job_page(struct dbx_arm *arm, const char *url,
						  const char *subscription, dbx_arm_job_cb cb,
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
 * polled (Retry-After when sent, else 1/8 of the time since, 1 s to lro_poll_ms)
 * while it answers 202, each Location checked to be https on the cloud's
 * ARM host, until a 200/204 or a Location naming the job; the final state
 * is then read at once with a GET ($expand=details) unless the last answer
 * carried the job. *out is that final order. A Location that fails the
 * check is not followed (nothing is sent to it): as when a poll is lost or
 * would come after the deadline, the job is read instead
 * (dbx_arm_patch_job_verify says how; here the first read is the answer).
 *
 * The PATCH itself is never resent by the retry layer after a 5xx or a
 * dropped connection (non-idempotent): such failures come back as
 * DBX_EREMOTE with *sent set, and the caller decides (read the order, resend
 * only if the change is not there). *sent is false when the request surely
 * never reached ARM (connect failure, 429/408 retried away, deadline
 * before sending). A failed operation (the poll answers 4xx/5xx with an
 * error body) is DBX_EREMOTE, or DBX_EINVAL when the error is a user error
 * (400, Ssem codes), with code and message filled. DBX_ETIMEDOUT when the
 * deadline passes before the operation or the job could tell.
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

/* Does order (as ARM now shows it) hold the change a PATCH asked for? */
typedef bool (*dbx_arm_shows_fn)(const struct dbx_order *order, void *ctx);

/*
 * dbx_arm_patch_job_ex, reporting what the order shows once ARM accepted
 * the PATCH (docs/formats.md, "Writes"): when the operation cannot tell
 * (its Location is refused, a poll is lost at the transport, the next poll
 * would come after the deadline, the final read is lost), the order is
 * read until shows(order, shows_ctx) holds: DBX_OK with that order, or
 * DBX_ETIMEDOUT at the deadline (the change may still land). A failed
 * operation stays a failure unless the order already shows the change.
 * shows NULL: the first order read is the answer. The waits between
 * polls: Retry-After / retry-after-ms when sent, else an eighth of the time
 * since the PATCH, 1 s to lro_poll_ms; after a Location naming the job, the job is read at once.
 */
DBX_MUST_CHECK enum dbx_err dbx_arm_patch_job_verify(struct dbx_arm *arm, const char *subscription,
						     const char *resource_group, const char *name,
						     const char *body, uint64_t lro_poll_ms,
						     uint64_t deadline_ms, dbx_arm_shows_fn shows,
						     void *shows_ctx, bool *sent, bool *accepted,
						     struct dbx_order **out, struct dbx_error *err);

/*
 * What a PATCH in flight has got to, for whoever shows it (the operation
 * file, docs/formats.md): told once ARM accepted the PATCH (accepted, with
 * the PATCH answer's request and correlation IDs, "" when ARM sent none),
 * then before every wait for the next poll (or read of the order when the
 * operation can no longer tell): polls made so far and the wait in ms.
 * Called on the writing thread; must not block.
 */
struct dbx_arm_progress {
	bool accepted;		    /* this call tells that ARM accepted the PATCH */
	const char *request_id;	    /* x-ms-request-id of the PATCH answer, or "" */
	const char *correlation_id; /* x-ms-correlation-request-id of it, or "" */
	unsigned polls;		    /* polls (and reads of the order) made so far */
	uint64_t next_wait_ms;	    /* !accepted: the next one is due after this wait */
};
typedef void (*dbx_arm_progress_fn)(void *ctx, const struct dbx_arm_progress *p);

/*
 * dbx_arm_patch_job_verify, telling progress(progress_ctx, ...) how the
 * operation goes (progress may be NULL). Additive.
 */
DBX_MUST_CHECK enum dbx_err
dbx_arm_patch_job_observe(struct dbx_arm *arm, const char *subscription, const char *resource_group,
			  const char *name, const char *body, uint64_t lro_poll_ms,
			  uint64_t deadline_ms, dbx_arm_shows_fn shows, void *shows_ctx,
			  dbx_arm_progress_fn progress, void *progress_ctx, bool *sent,
			  bool *accepted, struct dbx_order **out, struct dbx_error *err);

/* The arm's clock (for deadlines of callers sharing it). */
const struct dbx_clock *dbx_arm_clock(const struct dbx_arm *arm);

/* The arm's cloud. */
const struct dbx_cloud *dbx_arm_cloud(const struct dbx_arm *arm);

/*
 * ---- Lookups for the Key Vault preflight (keyvault.h) ----
 *
 * They report what ARM answered as enum dbx_err (404 DBX_ENOTFOUND, 403
 * DBX_EACCES with err->http_status 403, ...); which Ssem code that means
 * for a write is the preflight's decision. deadline_ms is absolute, on the
 * arm's clock (0: none), so one deadline can bound several lookups.
 */

#define DBX_ARM_ID_MAX 512 /* longest ARM resource ID accepted, with its NUL */

/* Key permissions an access policy grants ("all" grants all three). */
enum {
	DBX_ARM_KEY_GET = 1,
	DBX_ARM_KEY_WRAP = 2,
	DBX_ARM_KEY_UNWRAP = 4,
};

struct dbx_arm_access_policy {
	char *object_id;    /* NULL when absent */
	bool application;   /* a non-empty applicationId: a compound identity */
	unsigned key_perms; /* DBX_ARM_KEY_* granted on keys */
};

/* A key vault's ARM properties (Microsoft.KeyVault/vaults). */
struct dbx_arm_vault {
	char tenant_id[64];    /* "" when absent */
	bool soft_delete;      /* enableSoftDelete (absent: true, the service default since 2020) */
	bool purge_protection; /* enablePurgeProtection (absent: false) */
	bool rbac;	       /* enableRbacAuthorization (absent: false) */
	bool policies_ok;      /* accessPolicies absent or all of the documented shape */
	struct dbx_arm_access_policy *policies; /* none when !policies_ok */
	size_t n_policies;
};

/* Free what dbx_arm_get_vault put into v and zero it. NULL is fine. */
void dbx_arm_vault_clear(struct dbx_arm_vault *v);

/*
 * Find the key vault called name with Resources - List: in subscription
 * first (when not NULL or ""), then in every other subscription
 * dbx_arm_list_subscriptions lists. DBX_OK with *found true and id (cap
 * bytes) its resource ID as ARM spells it, or with *found false when no
 * subscription has it. A subscription that refuses the search (403 or 404
 * on its first page) is passed over; *denied tells whether one answered
 * 403. Any other failure ends the search with its error.
 */
DBX_MUST_CHECK enum dbx_err dbx_arm_find_vault(struct dbx_arm *arm, const char *subscription,
					       const char *name, uint64_t deadline_ms, char *id,
					       size_t cap, bool *found, bool *denied,
					       struct dbx_error *err);

/*
 * GET the vault with resource ID id into *out (zeroed first; release it
 * with dbx_arm_vault_clear, also after a failure). DBX_EREMOTE "malformed"
 * for an id that is not a plain ARM resource ID (nothing is sent) or a body
 * that is not a vault's.
 */
DBX_MUST_CHECK enum dbx_err dbx_arm_get_vault(struct dbx_arm *arm, const char *id,
					      uint64_t deadline_ms, struct dbx_arm_vault *out,
					      struct dbx_error *err);

/*
 * The principalId of the user-assigned identity uai_id into principal (cap
 * bytes; "" after any failure). DBX_EINVAL for an ID that is not a plain
 * ARM resource ID (nothing is sent); DBX_EREMOTE "malformed" when the
 * answer has no non-empty principalId that fits.
 */
DBX_MUST_CHECK enum dbx_err dbx_arm_identity_principal(struct dbx_arm *arm, const char *uai_id,
						       uint64_t deadline_ms, char *principal,
						       size_t cap, struct dbx_error *err);

/*
 * ---- Listings for the catalogue (docs/formats.md, "The catalogue") ----
 *
 * Additive. Each lists every page with the per-call timeout; a callback
 * returning non-zero stops the listing (DBX_OK). An item with a missing
 * id or name, or a field of the wrong type, is DBX_EREMOTE "malformed"
 * naming the field.
 */

/* One vault of a list: id and name as ARM spells them, props borrowed for the call. */
typedef int (*dbx_arm_vault_cb)(void *ctx, const char *id, const char *name,
				const struct dbx_arm_vault *props);

/* GET /subscriptions/S/providers/Microsoft.KeyVault/vaults, all pages. */
DBX_MUST_CHECK enum dbx_err dbx_arm_list_vaults(struct dbx_arm *arm, const char *subscription,
						dbx_arm_vault_cb cb, void *ctx,
						struct dbx_error *err);

/* A user-assigned identity of a list (borrowed for the call; absent IDs are ""). */
struct dbx_arm_identity {
	const char *id, *name, *principal_id, *client_id;
};

typedef int (*dbx_arm_identity_cb)(void *ctx, const struct dbx_arm_identity *uai);

/* GET /subscriptions/S/providers/Microsoft.ManagedIdentity/userAssignedIdentities, all pages. */
DBX_MUST_CHECK enum dbx_err dbx_arm_list_identities(struct dbx_arm *arm, const char *subscription,
						    dbx_arm_identity_cb cb, void *ctx,
						    struct dbx_error *err);

/* A subscription with its displayName ("" when absent). */
typedef int (*dbx_arm_sub_name_cb)(void *ctx, const char *subscription_id,
				   const char *display_name);

/* GET /subscriptions, all pages, with display names. */
DBX_MUST_CHECK enum dbx_err dbx_arm_list_subscription_names(struct dbx_arm *arm,
							    dbx_arm_sub_name_cb cb, void *ctx,
							    struct dbx_error *err);

/*
 * Map a non-2xx ARM response to an error: the status to enum dbx_err
 * (400 EINVAL, 401/403 EACCES, 404 ENOTFOUND, 409 EBUSY, 429 ETHROTTLED,
 * 5xx EREMOTE), error.code / error.message from the body, request id from
 * the headers. Shared by every backend module.
 */
enum dbx_err dbx_arm_error_from_response(const struct dbx_http_response *resp,
					 struct dbx_error *err);

#endif
