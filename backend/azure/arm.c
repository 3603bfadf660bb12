/*
 * arm.c: Azure Resource Manager calls: Data Box jobs, and the vault,
 * identity and subscription lookups of the Key Vault preflight. All ARM
 * traffic of the mount goes through this file.
 *
 * Lists (subscriptions, jobs of a subscription or of a resource group,
 * Resources - List for a vault) are paged through one loop, list_pages_ex():
 * the first URL is built here, every later one is the response's nextLink,
 * followed verbatim. The bearer token goes with every request, so a
 * nextLink that leaves the cloud's ARM host over https is refused before
 * anything is sent to it; a nextLink that repeats a page already read, or
 * a listing past DBX_ARM_MAX_PAGES, stops with an error instead of looping.
 * One deadline (now + timeout) bounds a whole job call, pages and retries
 * included; the preflight's lookups take their caller's deadline. A single
 * job GET always asks for $expand=details.
 *
 * This file reads only the list envelope ({value, nextLink}), subscription
 * IDs, resource IDs, a vault's and an identity's properties, error
 * envelopes and long-running operation status bodies ({status, error});
 * jobs are handed to order.c. A job item that order.c rejects but that has
 * a usable id and name is handed on as a stub (struct dbx_order's
 * malformed), so that one order reads EIO and the others stay readable;
 * one without a usable id and name, or whose ID lies outside the
 * subscription / resource group listed, is skipped with a warning (and
 * counted in one more at the end of the listing). A page that is not a
 * list fails the whole call (items of earlier pages have been delivered by
 * then: callers treat any error as "listing incomplete").
 *
 * Writes: a PATCH of a job and its long-running operation, described in
 * the section "PATCH and its long-running operation" below.
 */
#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#include "databoxfs/arm.h"
#include "databoxfs/log.h"
#include "databoxfs/stats.h"
#include "core/json_util.h"

/*
 * The ARM API versions, one per resource type this file asks for, and the
 * only place they are defined. Data Box jobs take the version given to
 * dbx_arm_new (-o api_version); this one is its default.
 */
#define API_JOBS_DEFAULT  "2025-07-01"
#define API_SUBSCRIPTIONS "2022-12-01"
#define API_RESOURCES	  "2021-04-01" /* Resources - List, to find a vault by name */
#define API_VAULTS	  "2024-11-01" /* Microsoft.KeyVault/vaults */
#define API_IDENTITIES	  "2023-01-31" /* Microsoft.ManagedIdentity/userAssignedIdentities */

#define DBX_ARM_MAX_PAGES 10000 /* per listing: a server that pages forever is malformed */

struct dbx_arm {
	struct dbx_transport *transport; /* not owned */
	const struct dbx_cloud *cloud;
	char *api_version;
	uint64_t timeout_ms;
	uint64_t retry_budget_ms; /* 0: none (dbx_arm_set_retry_budget) */
	const struct dbx_clock *clock;
};

struct dbx_arm *dbx_arm_new(struct dbx_transport *transport, const struct dbx_cloud *cloud,
			    const char *api_version, uint64_t timeout_ms,
			    const struct dbx_clock *clock)
{
	struct dbx_arm *arm;

	if (!transport || !cloud)
		return NULL;
	arm = calloc(1, sizeof(*arm));
	if (!arm)
		return NULL;
	arm->api_version = strdup(api_version ? api_version : API_JOBS_DEFAULT);
	if (!arm->api_version) {
		free(arm);
		return NULL;
	}
	arm->transport = transport;
	arm->cloud = cloud;
	arm->timeout_ms = timeout_ms;
	arm->clock = clock ? clock : dbx_clock_system();
	return arm;
}

void dbx_arm_free(struct dbx_arm *arm)
{
	if (!arm)
		return;
	free(arm->api_version);
	free(arm);
}

void dbx_arm_set_retry_budget(struct dbx_arm *arm, uint64_t ms)
{
	arm->retry_budget_ms = ms;
}

/* The absolute deadline of a call starting now; 0 (none) when there is no timeout. */
static uint64_t call_deadline(const struct dbx_arm *arm)
{
	if (arm->timeout_ms == 0)
		return 0;
	return dbx_clock_now_ms(arm->clock) + arm->timeout_ms;
}

/* ---- errors ---- */

static enum dbx_err status_to_err(long status)
{
	switch (status) {
	case 400:
		return DBX_EINVAL;
	case 401:
	case 403:
		return DBX_EACCES;
	case 404:
		return DBX_ENOTFOUND;
	case 409:
		return DBX_EBUSY;
	case 429:
		return DBX_ETHROTTLED;
	default:
		return DBX_EREMOTE; /* 408, 5xx, and anything unexpected */
	}
}

/* Copy the first line of s into dst (size n), control characters as spaces, ends trimmed. */
static void copy_line(char *dst, size_t n, const char *s)
{
	size_t len = 0;

	if (n == 0)
		return;
	while (*s == ' ' || *s == '\t')
		s++;
	for (; *s && *s != '\r' && *s != '\n' && len + 1 < n; s++)
		dst[len++] = iscntrl((unsigned char)*s) ? ' ' : *s;
	while (len > 0 && dst[len - 1] == ' ')
		len--;
	dst[len] = '\0';
}

enum dbx_err dbx_arm_error_from_response(const struct dbx_http_response *resp,
					 struct dbx_error *err)
{
	struct json_object *body = NULL, *error = NULL;
	const char *code = NULL, *message = NULL, *inner = NULL;
	enum dbx_err e;
	char line[DBX_ERR_MSG_MAX];

	if (!resp)
		return dbx_error_set(err, DBX_EREMOTE, "no response");
	e = status_to_err(resp->status);
	/*
	 * The envelope only adds words to what the status says: one the strict
	 * parse refuses (a proxy's HTML, a duplicate key), or wrong-typed
	 * members, add none.
	 */
	if (resp->body && resp->body_len > 0 &&
	    dbx_json_parse_object(resp->body, resp->body_len, "error body", &body, NULL) != DBX_OK)
		body = NULL;
	if (body && json_object_object_get_ex(body, "error", &error)) {
		if (json_object_is_type(error, json_type_object)) {
			/* ARM: {"error": {"code", "message"}}; Key Vault adds innererror.code. */
			struct json_object *ie = NULL;

			code = dbx_json_str(error, "code");
			message = dbx_json_str(error, "message");
			if (json_object_object_get_ex(error, "innererror", &ie))
				inner = dbx_json_str(ie, "code");
		} else if (json_object_is_type(error, json_type_string)) {
			/* Entra ID: {"error": "invalid_client", "error_description": "..."}. */
			code = json_object_get_string(error);
			message = dbx_json_str(body, "error_description");
		}
	}

	line[0] = '\0';
	if (message)
		copy_line(line, sizeof(line), message);
	if (*line) {
		char inner_line[DBX_ERR_CODE_MAX];

		copy_line(inner_line, sizeof(inner_line), inner ? inner : "");
		if (*inner_line && strlen(line) + strlen(inner_line) + 12 < sizeof(line)) {
			size_t n = strlen(line);

			snprintf(line + n, sizeof(line) - n, " (inner: %s)", inner_line);
		}
	} else if (code && *code) {
		snprintf(line, sizeof(line), "the service answered HTTP %ld", resp->status);
	} else {
		snprintf(line, sizeof(line),
			 "the service answered HTTP %ld without an error description",
			 resp->status);
	}

	dbx_error_set(err, e, "%s", line);
	if (code && *code)
		dbx_stats_error_code(code); /* MOUNT/.databoxfs/stats: errors by code */
	if (err) {
		err->http_status = resp->status;
		copy_line(err->code, sizeof(err->code), code ? code : "");
		copy_line(err->request_id, sizeof(err->request_id),
			  resp->request_id ? resp->request_id : "");
	}
	json_object_put(body);
	return e;
}

/* ---- one GET ---- */

/* Send one idempotent GET of url with the ARM token; DBX_OK when any HTTP answer arrived. */
static enum dbx_err send_get_retries(struct dbx_arm *arm, const char *url, uint64_t deadline,
				     unsigned max_retries, struct dbx_http_response *resp,
				     struct dbx_error *err)
{
	struct dbx_http_request req = {
	    .method = "GET",
	    .url = url,
	    .scope = arm->cloud->arm_scope,
	    .deadline_ms = deadline,
	    .idempotent = true,
	    .max_retries = max_retries,
	};

	if (arm->retry_budget_ms)
		req.retry_until_ms = dbx_clock_now_ms(arm->clock) + arm->retry_budget_ms;
	return dbx_http_send(arm->transport, &req, resp, err);
}

static enum dbx_err send_get(struct dbx_arm *arm, const char *url, uint64_t deadline,
			     struct dbx_http_response *resp, struct dbx_error *err)
{
	return send_get_retries(arm, url, deadline, 0, resp, err);
}

/* GET url with the ARM token; DBX_OK only for a 200 with a body. resp is reset by the caller. */
static enum dbx_err arm_get(struct dbx_arm *arm, const char *url, uint64_t deadline,
			    struct dbx_http_response *resp, struct dbx_error *err)
{
	enum dbx_err rc;

	if (deadline && dbx_clock_now_ms(arm->clock) >= deadline)
		return dbx_error_set(err, DBX_ETIMEDOUT, "ARM did not answer within the timeout");
	rc = send_get(arm, url, deadline, resp, err);
	if (rc != DBX_OK)
		return rc;
	if (resp->status != 200)
		return dbx_arm_error_from_response(resp, err);
	if (!resp->body || resp->body_len == 0)
		return dbx_error_set(err, DBX_EREMOTE, "malformed response from ARM: empty body");
	return DBX_OK;
}

/*
 * After a failure on a response that did arrive (a malformed 200), keep its
 * status and request id in err: they are what a support ticket needs.
 */
static void note_response(struct dbx_error *err, enum dbx_err rc,
			  const struct dbx_http_response *resp)
{
	if (!err || rc == DBX_OK || resp->status == 0 || err->http_status != 0)
		return;
	err->http_status = resp->status;
	if (resp->request_id)
		snprintf(err->request_id, sizeof(err->request_id), "%s", resp->request_id);
}

/* Parse a whole response body as one JSON object (DBX_EREMOTE when it is not). */
static enum dbx_err parse_body(const struct dbx_http_response *resp, struct json_object **out,
			       struct dbx_error *err)
{
	return dbx_json_parse_object(resp->body, resp->body_len, "malformed response from ARM", out,
				     err);
}

/* ---- paged lists ---- */

/* The check of every URL ARM hands back: nextLink, Location (arm.h). */
bool dbx_arm_url_is_arm(const struct dbx_cloud *cloud, const char *url)
{
	const char *host = cloud->arm_host;
	size_t hlen = strlen(host), alen;
	const char *auth, *end;

	for (const char *p = url; *p; p++) {
		unsigned char c = (unsigned char)*p;

		if (iscntrl(c) || c >= 0x80 || c == ' ' || c == '\\')
			return false;
	}
	if (strncasecmp(url, "https://", 8) != 0)
		return false;
	auth = url + 8;
	end = auth + strcspn(auth, "/?#");
	alen = (size_t)(end - auth);
	if (alen == hlen + 4 && strncmp(auth + hlen, ":443", 4) == 0)
		alen = hlen;
	else if (alen != hlen)
		return false;
	return strncasecmp(auth, host, hlen) == 0;
}

/*
 * Handles one item of a page's value array: DBX_OK to go on, or with *stop
 * set to end the listing there (DBX_OK); any error ends the listing with
 * it (err filled).
 */
typedef enum dbx_err (*item_fn)(void *ctx, struct json_object *item,
				const struct dbx_http_response *page, bool *stop,
				struct dbx_error *err);

/* Has url been requested already (seen[0..n-1])? */
static bool seen_before(char *const *seen, size_t n, const char *url)
{
	for (size_t i = 0; i < n; i++) {
		if (strcmp(seen[i], url) == 0)
			return true;
	}
	return false;
}

/* Told the URL of each page before its items (the first URL, then each nextLink). */
typedef enum dbx_err (*page_fn)(void *ctx, const char *url, struct dbx_error *err);

/*
 * The one paging loop of every ARM listing (jobs, subscriptions, resources):
 * GET first_url and every nextLink after it, verbatim, all before deadline;
 * call on_page (may be NULL) before the items of each page and fn for each
 * item of its "value". With one_page only first_url is read (its nextLink
 * is not followed): a re-read of one page of an earlier listing. DBX_OK
 * when the last page was read or fn asked to stop. A nextLink off the ARM
 * host, one already requested, or a page past DBX_ARM_MAX_PAGES ends the
 * listing with DBX_EREMOTE. *pages (may be NULL) is the number of pages
 * requested, so a caller can tell a refusal of the first page from a
 * later one.
 */
static enum dbx_err list_pages_ex(struct dbx_arm *arm, const char *first_url, uint64_t deadline,
				  bool one_page, page_fn on_page, item_fn fn, void *ctx,
				  size_t *pages, struct dbx_error *err)
{
	struct dbx_http_response resp = {0};
	struct json_object *page = NULL;
	char **seen = NULL; /* every URL requested so far, seen[n_seen - 1] the current one */
	size_t n_seen = 0;
	enum dbx_err rc = DBX_OK;

	if (pages)
		*pages = 0;
	seen = calloc(1, sizeof(*seen));
	if (!seen) {
		rc = dbx_error_set(err, DBX_ENOMEM, "out of memory");
		goto out;
	}
	seen[0] = strdup(first_url);
	if (!seen[0]) {
		rc = dbx_error_set(err, DBX_ENOMEM, "out of memory");
		goto out;
	}
	n_seen = 1;
	for (;;) {
		struct json_object *value = NULL, *next = NULL;
		const char *next_url = NULL;
		bool stop = false;
		char **grown;
		size_t len;

		dbx_http_response_reset(&resp);
		if (pages)
			*pages = n_seen;
		rc = arm_get(arm, seen[n_seen - 1], deadline, &resp, err);
		if (rc != DBX_OK)
			goto out;
		rc = parse_body(&resp, &page, err);
		if (rc != DBX_OK)
			goto out;
		if (!json_object_object_get_ex(page, "value", &value) ||
		    !json_object_is_type(value, json_type_array)) {
			rc = dbx_error_set(err, DBX_EREMOTE,
					   "malformed response from ARM: no \"value\" list");
			goto out;
		}
		len = json_object_array_length(value);
		if (on_page) {
			rc = on_page(ctx, seen[n_seen - 1], err);
			if (rc != DBX_OK)
				goto out;
		}
		for (size_t i = 0; i < len; i++) {
			if (!json_object_is_type(json_object_array_get_idx(value, i),
						 json_type_object)) {
				rc = dbx_error_set(err, DBX_EREMOTE,
						   "malformed response from ARM: item %zu of "
						   "\"value\" is not an object",
						   i);
				goto out;
			}
		}
		for (size_t i = 0; i < len && !stop; i++) {
			rc = fn(ctx, json_object_array_get_idx(value, i), &resp, &stop, err);
			if (rc != DBX_OK)
				goto out;
		}
		if (stop || one_page)
			goto out; /* the caller has what it wanted: DBX_OK */

		if (json_object_object_get_ex(page, "nextLink", &next)) {
			if (json_object_is_type(next, json_type_string))
				next_url = json_object_get_string(next);
			else if (!json_object_is_type(next, json_type_null)) {
				rc = dbx_error_set(
				    err, DBX_EREMOTE,
				    "malformed response from ARM: nextLink is not a string");
				goto out;
			}
		}
		if (!next_url || !*next_url)
			break;
		if (!dbx_arm_url_is_arm(arm->cloud, next_url)) {
			/* The token would go with the request: never follow it elsewhere. */
			rc = dbx_error_set(err, DBX_EREMOTE,
					   "unexpected nextLink host from ARM (not https://%s)",
					   arm->cloud->arm_host);
			goto out;
		}
		if (seen_before(seen, n_seen, next_url)) {
			rc = dbx_error_set(err, DBX_EREMOTE,
					   "malformed response from ARM: nextLink repeats "
					   "an earlier page");
			goto out;
		}
		if (n_seen >= DBX_ARM_MAX_PAGES) {
			rc = dbx_error_set(err, DBX_EREMOTE, "ARM listing has more than %d pages",
					   DBX_ARM_MAX_PAGES);
			goto out;
		}
		grown = realloc(seen, (n_seen + 1) * sizeof(*seen));
		if (!grown) {
			rc = dbx_error_set(err, DBX_ENOMEM, "out of memory");
			goto out;
		}
		seen = grown;
		seen[n_seen] = strdup(next_url);
		if (!seen[n_seen]) {
			rc = dbx_error_set(err, DBX_ENOMEM, "out of memory");
			goto out;
		}
		n_seen++;
		json_object_put(page);
		page = NULL;
	}
out:
	note_response(err, rc, &resp);
	json_object_put(page);
	dbx_http_response_reset(&resp);
	for (size_t i = 0; i < n_seen; i++)
		free(seen[i]);
	free(seen);
	return rc;
}

/* list_pages_ex over every page, without a page callback. */
static enum dbx_err list_pages(struct dbx_arm *arm, const char *first_url, uint64_t deadline,
			       item_fn fn, void *ctx, size_t *pages, struct dbx_error *err)
{
	return list_pages_ex(arm, first_url, deadline, false, NULL, fn, ctx, pages, err);
}

/* ---- subscriptions ---- */

/* Handles one subscription ID of a listing, as item_fn does an item. */
typedef enum dbx_err (*sub_fn)(void *ctx, const char *subscription_id, bool *stop,
			       struct dbx_error *err);

struct sub_ctx {
	sub_fn fn;
	void *ctx;
};

/* A subscription ID that is safe as a directory name. */
static bool good_name(const char *s)
{
	if (!s || !*s || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return false;
	for (; *s; s++) {
		if (*s == '/' || iscntrl((unsigned char)*s))
			return false;
	}
	return true;
}

static enum dbx_err sub_item(void *ctx, struct json_object *item,
			     const struct dbx_http_response *page, bool *stop,
			     struct dbx_error *err)
{
	struct sub_ctx *sc = ctx;
	const char *id = dbx_json_str(item, "subscriptionId");

	(void)page;
	if (!good_name(id)) {
		dbx_log(DBX_LOG_WARN,
			"skipping a subscription without a usable subscriptionId in ARM's list");
		return DBX_OK;
	}
	return sc->fn(sc->ctx, id, stop, err);
}

/* GET /subscriptions, all pages, before deadline; fn for each usable subscription ID. */
static enum dbx_err list_subscriptions(struct dbx_arm *arm, uint64_t deadline, sub_fn fn, void *ctx,
				       struct dbx_error *err)
{
	struct sub_ctx sc = {.fn = fn, .ctx = ctx};
	char *url = NULL;
	enum dbx_err rc;

	if (asprintf(&url, "https://%s/subscriptions?api-version=%s", arm->cloud->arm_host,
		     API_SUBSCRIPTIONS) < 0)
		return dbx_error_set(err, DBX_ENOMEM, "out of memory");
	rc = list_pages(arm, url, deadline, sub_item, &sc, NULL, err);
	free(url);
	return rc;
}

struct public_sub_ctx {
	dbx_arm_sub_cb cb;
	void *ctx;
};

static enum dbx_err public_sub(void *ctx, const char *subscription_id, bool *stop,
			       struct dbx_error *err)
{
	struct public_sub_ctx *pc = ctx;

	(void)err;
	*stop = pc->cb(pc->ctx, subscription_id) != 0;
	return DBX_OK;
}

enum dbx_err dbx_arm_list_subscriptions(struct dbx_arm *arm, dbx_arm_sub_cb cb, void *ctx,
					struct dbx_error *err)
{
	struct public_sub_ctx pc = {.cb = cb, .ctx = ctx};

	dbx_error_clear(err);
	return list_subscriptions(arm, call_deadline(arm), public_sub, &pc, err);
}

/* ---- jobs ---- */

struct job_ctx {
	dbx_arm_job_cb cb;
	dbx_arm_page_cb page_cb; /* or NULL */
	void *ctx;
	const char *subscription;   /* the scope listed: jobs outside it are skipped */
	const char *resource_group; /* NULL when listing a whole subscription */
	size_t skipped;		    /* items without a usable id and name, or out of scope */
};

static enum dbx_err job_item(void *ctx, struct json_object *item,
			     const struct dbx_http_response *page, bool *stop,
			     struct dbx_error *err)
{
	struct job_ctx *jc = ctx;
	struct dbx_order *order = NULL;
	struct dbx_error e = {0};
	enum dbx_err rc;

	rc = dbx_order_from_json(item, &order, &e);
	if (rc == DBX_EREMOTE) {
		/* Named but unreadable: hand on a stub, so that order reads EIO (cache.h). */
		e.http_status = page->status;
		if (page->request_id)
			snprintf(e.request_id, sizeof(e.request_id), "%s", page->request_id);
		rc = dbx_order_malformed_stub(item, &e, &order);
		if (rc == DBX_OK) {
			char id[256];

			copy_line(id, sizeof(id), order->id);
			dbx_log(DBX_LOG_WARN, "a job in ARM's list is malformed (%s): %s", id,
				e.message);
		}
	}
	if (rc == DBX_ENOMEM)
		return dbx_error_set(err, DBX_ENOMEM, "out of memory");
	if (rc != DBX_OK) {
		char id[256];
		const char *sid = NULL;

		if (dbx_json_member_str(item, "id", &sid) != 1)
			sid = "no id";
		copy_line(id, sizeof(id), sid);
		dbx_log(DBX_LOG_WARN, "skipping a job in ARM's list (%s): %s", id, e.message);
		jc->skipped++;
		return DBX_OK;
	}
	/* The tree files a job under its own IDs: one from outside the listed scope would be
	 * misfiled. */
	if (strcasecmp(order->subscription, jc->subscription) != 0 ||
	    (jc->resource_group && strcasecmp(order->resource_group, jc->resource_group) != 0)) {
		char id[256];

		copy_line(id, sizeof(id), order->id);
		dbx_log(DBX_LOG_WARN, "skipping a job outside the listed scope in ARM's list (%s)",
			id);
		dbx_order_free(order);
		jc->skipped++;
		return DBX_OK;
	}
	*stop = jc->cb(jc->ctx, order) != 0;
	return DBX_OK;
}

/* Path segment s escaped, or NULL (ENOMEM or s NULL/empty). */
static char *escape_segment(const char *s)
{
	if (!s || !*s)
		return NULL;
	return dbx_url_escape(s);
}

static enum dbx_err job_page(void *ctx, const char *url, struct dbx_error *err)
{
	struct job_ctx *jc = ctx;

	if (jc->page_cb && jc->page_cb(jc->ctx, url) != 0)
		return dbx_error_set(err, DBX_ENOMEM, "out of memory");
	return DBX_OK;
}

enum dbx_err dbx_arm_list_jobs(struct dbx_arm *arm, const char *subscription,
			       const char *resource_group, dbx_arm_job_cb cb, void *ctx,
			       struct dbx_error *err)
{
	return dbx_arm_list_jobs_paged(arm, subscription, resource_group, NULL, cb, ctx, err);
}

enum dbx_err dbx_arm_list_job_page(struct dbx_arm *arm, const char *url, const char *subscription,
				   dbx_arm_job_cb cb, void *ctx, struct dbx_error *err)
{
	struct job_ctx jc = {.cb = cb, .ctx = ctx, .subscription = subscription};

	dbx_error_clear(err);
	if (!subscription || !*subscription || !url)
		return dbx_error_set(err, DBX_EINVAL, "no listing page to read");
	if (!dbx_arm_url_is_arm(arm->cloud, url))
		return dbx_error_set(err, DBX_EREMOTE, "a listing page off https://%s",
				     arm->cloud->arm_host);
	return list_pages_ex(arm, url, call_deadline(arm), true, NULL, job_item, &jc, NULL, err);
}

enum dbx_err dbx_arm_list_jobs_paged(struct dbx_arm *arm, const char *subscription,
				     const char *resource_group, dbx_arm_page_cb page_cb,
				     dbx_arm_job_cb cb, void *ctx, struct dbx_error *err)
{
	struct job_ctx jc = {.cb = cb,
			     .page_cb = page_cb,
			     .ctx = ctx,
			     .subscription = subscription,
			     .resource_group = resource_group};
	char *sub = NULL, *rg = NULL, *ver = NULL, *url = NULL;
	enum dbx_err rc;
	int n;

	dbx_error_clear(err);
	if (!subscription || !*subscription || (resource_group && !*resource_group)) {
		rc = dbx_error_set(err, DBX_EINVAL, "no subscription or resource group to list");
		goto out;
	}
	sub = escape_segment(subscription);
	rg = resource_group ? escape_segment(resource_group) : NULL;
	ver = dbx_url_escape(arm->api_version);
	if (!sub || (resource_group && !rg) || !ver) {
		rc = dbx_error_set(err, DBX_ENOMEM, "out of memory");
		goto out;
	}
	if (rg)
		n = asprintf(
		    &url,
		    "https://%s/subscriptions/%s/resourceGroups/%s/providers/Microsoft.DataBox/jobs"
		    "?api-version=%s",
		    arm->cloud->arm_host, sub, rg, ver);
	else
		n = asprintf(
		    &url,
		    "https://%s/subscriptions/%s/providers/Microsoft.DataBox/jobs?api-version=%s",
		    arm->cloud->arm_host, sub, ver);
	if (n < 0) {
		url = NULL;
		rc = dbx_error_set(err, DBX_ENOMEM, "out of memory");
		goto out;
	}
	rc = list_pages_ex(arm, url, call_deadline(arm), false, job_page, job_item, &jc, NULL, err);
	if (jc.skipped)
		dbx_log(DBX_LOG_WARN,
			"ARM's list of %s%s%s had %zu job(s) not shown (no usable id and name, "
			"or outside the listed scope)",
			subscription, resource_group ? "/" : "",
			resource_group ? resource_group : "", jc.skipped);
out:
	free(sub);
	free(rg);
	free(ver);
	free(url);
	return rc;
}

/*
 * The URL of one job: https://<arm>/subscriptions/S/resourceGroups/RG/providers/
 * Microsoft.DataBox/jobs/NAME?api-version=V, plus &$expand=details when expand.
 * Checks the names are given; *url is malloc'd.
 */
static enum dbx_err job_url(const struct dbx_arm *arm, const char *subscription,
			    const char *resource_group, const char *name, bool expand, char **url,
			    struct dbx_error *err)
{
	char *sub = NULL, *rg = NULL, *job = NULL, *ver = NULL;
	enum dbx_err rc = DBX_OK;

	*url = NULL;
	if (!subscription || !*subscription || !resource_group || !*resource_group || !name ||
	    !*name) {
		rc = dbx_error_set(err, DBX_EINVAL, "no subscription, resource group or job name");
		goto out;
	}
	sub = escape_segment(subscription);
	rg = escape_segment(resource_group);
	job = escape_segment(name);
	ver = dbx_url_escape(arm->api_version);
	if (!sub || !rg || !job || !ver) {
		rc = dbx_error_set(err, DBX_ENOMEM, "out of memory");
		goto out;
	}
	if (asprintf(
		url,
		"https://%s/subscriptions/%s/resourceGroups/%s/providers/Microsoft.DataBox/jobs/%s"
		"?api-version=%s%s",
		arm->cloud->arm_host, sub, rg, job, ver, expand ? "&$expand=details" : "") < 0) {
		*url = NULL;
		rc = dbx_error_set(err, DBX_ENOMEM, "out of memory");
		goto out;
	}
out:
	free(sub);
	free(rg);
	free(job);
	free(ver);
	return rc;
}

/* Is order the job subscription/resource_group/name (case-insensitive)? */
static bool is_job(const struct dbx_order *order, const char *subscription,
		   const char *resource_group, const char *name)
{
	return strcasecmp(order->name, name) == 0 &&
	       strcasecmp(order->subscription, subscription) == 0 &&
	       strcasecmp(order->resource_group, resource_group) == 0;
}

enum dbx_err dbx_arm_get_job(struct dbx_arm *arm, const char *subscription,
			     const char *resource_group, const char *name, struct dbx_order **out,
			     struct dbx_error *err)
{
	return dbx_arm_get_job_until(arm, subscription, resource_group, name, call_deadline(arm),
				     out, err);
}

enum dbx_err dbx_arm_get_job_until(struct dbx_arm *arm, const char *subscription,
				   const char *resource_group, const char *name,
				   uint64_t deadline_ms, struct dbx_order **out,
				   struct dbx_error *err)
{
	struct dbx_http_response resp = {0};
	struct dbx_order *order = NULL;
	char *url = NULL;
	enum dbx_err rc;

	*out = NULL;
	dbx_error_clear(err);
	rc = job_url(arm, subscription, resource_group, name, true, &url, err);
	if (rc != DBX_OK)
		goto out;
	rc = arm_get(arm, url, deadline_ms, &resp, err);
	if (rc != DBX_OK)
		goto out;
	rc = dbx_order_parse(resp.body, resp.body_len, &order, err);
	if (rc != DBX_OK)
		goto out;
	if (!is_job(order, subscription, resource_group, name)) {
		rc = dbx_error_set(err, DBX_EREMOTE,
				   "malformed response from ARM: asked for job %s, got %s", name,
				   order->id);
		goto out;
	}
	*out = order;
	order = NULL;
out:
	note_response(err, rc, &resp);
	dbx_order_free(order);
	dbx_http_response_reset(&resp);
	free(url);
	return rc;
}

const struct dbx_clock *dbx_arm_clock(const struct dbx_arm *arm)
{
	return arm->clock;
}

const struct dbx_cloud *dbx_arm_cloud(const struct dbx_arm *arm)
{
	return arm->cloud;
}

/*
 * ---- Lookups for the Key Vault preflight ----
 *
 * keyvault.c decides whether a customer-managed key may be written; what it
 * needs from ARM is read here, with the same GET and the same paging loop as
 * the jobs: the vault found by name through Resources - List (the order's
 * subscription first, then every listed one), the vault's properties, and a
 * user-assigned identity's principalId. Failures come back as ARM answered
 * them; which Ssem code one means is keyvault.c's decision.
 */

#define MAX_SUBSCRIPTIONS 10000 /* subscriptions searched for a vault */

/*
 * Is id a plausible ARM resource ID to append to the ARM host: starts with
 * "/subscriptions/", printable ASCII without query, fragment, percent,
 * backslash, empty, "." or ".." segments.
 */
static bool arm_id_ok(const char *id)
{
	const char *seg;

	if (strncasecmp(id, "/subscriptions/", 15) != 0 || strlen(id) >= DBX_ARM_ID_MAX)
		return false;
	for (const unsigned char *p = (const unsigned char *)id; *p; p++) {
		if (*p <= 0x20 || *p >= 0x7f || strchr("?#%\\", *p))
			return false;
	}
	seg = id;
	while (*seg == '/') {
		size_t n = strcspn(seg + 1, "/");

		if (n == 0 || (n == 1 && seg[1] == '.') ||
		    (n == 2 && seg[1] == '.' && seg[2] == '.'))
			return false;
		seg += 1 + n;
	}
	return *seg == '\0';
}

/* "name" with OData quotes doubled, URL-escaped inside the Resources - List filter. */
static char *resources_url(const struct dbx_arm *arm, const char *subscription, const char *name)
{
	char *quoted = NULL, *filter = NULL, *efilter = NULL, *esub = NULL, *url = NULL;
	size_t n = strlen(name), j = 0;

	quoted = malloc(2 * n + 1);
	if (!quoted)
		goto out;
	for (size_t i = 0; i < n; i++) {
		quoted[j++] = name[i];
		if (name[i] == '\'')
			quoted[j++] = '\'';
	}
	quoted[j] = '\0';
	if (asprintf(&filter, "resourceType eq 'Microsoft.KeyVault/vaults' and name eq '%s'",
		     quoted) < 0) {
		filter = NULL;
		goto out;
	}
	efilter = dbx_url_escape(filter);
	esub = dbx_url_escape(subscription);
	if (!efilter || !esub)
		goto out;
	if (asprintf(&url, "https://%s/subscriptions/%s/resources?$filter=%s&api-version=%s",
		     arm->cloud->arm_host, esub, efilter, API_RESOURCES) < 0)
		url = NULL;
out:
	free(quoted);
	free(filter);
	free(efilter);
	free(esub);
	return url;
}

struct vault_search {
	const char *name;
	char *id; /* cap bytes */
	size_t cap;
	bool found;
};

/* One item of Resources - List: the vault when its name and type match. */
static enum dbx_err vault_item(void *ctx, struct json_object *item,
			       const struct dbx_http_response *page, bool *stop,
			       struct dbx_error *err)
{
	struct vault_search *vs = ctx;
	struct json_object *v;
	const char *rid = NULL, *rname = NULL, *rtype = NULL;
	char why[256] = "";
	int r;

	(void)page;
	r = dbx_json_field(item, "id", json_type_string, "value[].id", &v, why, sizeof(why));
	if (r == 0)
		snprintf(why, sizeof(why), "a resource without an id");
	if (r == 1) {
		rid = json_object_get_string(v);
		r = dbx_json_field(item, "name", json_type_string, "value[].name", &v, why,
				   sizeof(why));
		rname = r == 1 ? json_object_get_string(v) : NULL;
	}
	if (r >= 0) {
		r = dbx_json_field(item, "type", json_type_string, "value[].type", &v, why,
				   sizeof(why));
		rtype = r == 1 ? json_object_get_string(v) : NULL;
	}
	if (!rid || r < 0)
		return dbx_error_set(err, DBX_EREMOTE, "malformed answer from ARM: %s", why);
	if (!rname || !rtype || strcasecmp(rname, vs->name) != 0 ||
	    strcasecmp(rtype, "Microsoft.KeyVault/vaults") != 0)
		return DBX_OK;
	if (!arm_id_ok(rid) || strlen(rid) >= vs->cap)
		return dbx_error_set(err, DBX_EREMOTE,
				     "malformed response from ARM: the key vault's ID is not a "
				     "plain resource ID");
	memcpy(vs->id, rid, strlen(rid) + 1);
	vs->found = true;
	*stop = true;
	return DBX_OK;
}

/* Look for the vault in one subscription; a refusal (403, 404) of its first page is "not here". */
static enum dbx_err search_subscription(struct dbx_arm *arm, const char *subscription,
					struct vault_search *vs, uint64_t deadline, bool *denied,
					struct dbx_error *err)
{
	struct dbx_error e = {0};
	char *url = resources_url(arm, subscription, vs->name);
	size_t pages = 0;
	enum dbx_err rc;

	if (!url)
		return dbx_error_set(err, DBX_ENOMEM, "out of memory");
	rc = list_pages(arm, url, deadline, vault_item, vs, &pages, &e);
	free(url);
	if (rc != DBX_OK && pages == 1 && (e.http_status == 403 || e.http_status == 404)) {
		if (e.http_status == 403)
			*denied = true;
		return DBX_OK;
	}
	if (rc != DBX_OK && err)
		*err = e;
	return rc;
}

struct sub_list {
	char **ids;
	size_t n, cap;
};

static void sub_list_free(struct sub_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->ids[i]);
	free(l->ids);
	memset(l, 0, sizeof(*l));
}

static enum dbx_err collect_sub(void *ctx, const char *id, bool *stop, struct dbx_error *err)
{
	struct sub_list *l = ctx;

	(void)stop;
	if (l->n >= MAX_SUBSCRIPTIONS)
		return dbx_error_set(err, DBX_EREMOTE, "ARM lists more than %d subscriptions",
				     MAX_SUBSCRIPTIONS);
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 16;
		char **ids = realloc(l->ids, cap * sizeof(*ids));

		if (!ids)
			return dbx_error_set(err, DBX_ENOMEM, "out of memory");
		l->ids = ids;
		l->cap = cap;
	}
	l->ids[l->n] = strdup(id);
	if (!l->ids[l->n])
		return dbx_error_set(err, DBX_ENOMEM, "out of memory");
	l->n++;
	return DBX_OK;
}

enum dbx_err dbx_arm_find_vault(struct dbx_arm *arm, const char *subscription, const char *name,
				uint64_t deadline_ms, char *id, size_t cap, bool *found,
				bool *denied, struct dbx_error *err)
{
	struct vault_search vs = {.name = name, .id = id, .cap = cap};
	struct sub_list subs = {0};
	enum dbx_err rc = DBX_OK;

	dbx_error_clear(err);
	*found = false;
	*denied = false;
	if (!name || !*name || !id || cap == 0) {
		rc = dbx_error_set(err, DBX_EINVAL, "no key vault name to look for");
		goto out;
	}
	id[0] = '\0';
	if (subscription && *subscription) {
		rc = search_subscription(arm, subscription, &vs, deadline_ms, denied, err);
		if (rc != DBX_OK || vs.found)
			goto out;
	}
	rc = list_subscriptions(arm, deadline_ms, collect_sub, &subs, err);
	if (rc != DBX_OK)
		goto out;
	for (size_t i = 0; i < subs.n && !vs.found; i++) {
		if (subscription && strcasecmp(subs.ids[i], subscription) == 0)
			continue; /* searched first */
		rc = search_subscription(arm, subs.ids[i], &vs, deadline_ms, denied, err);
		if (rc != DBX_OK)
			goto out;
	}
out:
	*found = vs.found;
	sub_list_free(&subs);
	return rc;
}

void dbx_arm_vault_clear(struct dbx_arm_vault *v)
{
	if (!v)
		return;
	for (size_t i = 0; i < v->n_policies; i++)
		free(v->policies[i].object_id);
	free(v->policies);
	memset(v, 0, sizeof(*v));
}

/* Optional boolean field: absent keeps *out (the default); -1 on a wrong type (why filled). */
static int member_bool(struct json_object *o, const char *key, const char *path, bool *out,
		       char *why, size_t cap)
{
	struct json_object *v;
	int r = dbx_json_field(o, key, json_type_boolean, path, &v, why, cap);

	if (r == 1)
		*out = json_object_get_boolean(v);
	return r;
}

static unsigned key_perm_bit(const char *p)
{
	if (strcasecmp(p, "all") == 0)
		return DBX_ARM_KEY_GET | DBX_ARM_KEY_WRAP | DBX_ARM_KEY_UNWRAP;
	if (strcasecmp(p, "get") == 0)
		return DBX_ARM_KEY_GET;
	if (strcasecmp(p, "wrapKey") == 0)
		return DBX_ARM_KEY_WRAP;
	if (strcasecmp(p, "unwrapKey") == 0)
		return DBX_ARM_KEY_UNWRAP;
	return 0;
}

/* One access policy into *p: 1, 0 when it is not of the documented shape, -1 on ENOMEM. */
static int parse_policy(struct json_object *pol, struct dbx_arm_access_policy *p)
{
	struct json_object *perm, *keys = NULL;
	const char *oid, *app;

	if (dbx_json_member_str(pol, "objectId", &oid) < 0 ||
	    dbx_json_member_str(pol, "applicationId", &app) < 0 ||
	    dbx_json_member(pol, "permissions", json_type_object, &perm) < 0 ||
	    (perm && dbx_json_member(perm, "keys", json_type_array, &keys) < 0))
		return 0;
	for (size_t j = 0; keys && j < json_object_array_length(keys); j++) {
		struct json_object *k = json_object_array_get_idx(keys, j);

		if (!json_object_is_type(k, json_type_string))
			return 0;
		p->key_perms |= key_perm_bit(json_object_get_string(k));
	}
	p->application = app && app[0];
	if (oid) {
		p->object_id = strdup(oid);
		if (!p->object_id)
			return -1;
	}
	return 1;
}

/*
 * The accessPolicies array pols (NULL: none) into out. A policy not of the
 * documented shape leaves none kept and out->policies_ok false, so the
 * preflight calls them malformed if, and only if, it needs them. Only
 * ENOMEM fails.
 */
static enum dbx_err parse_policies(struct json_object *pols, struct dbx_arm_vault *out,
				   struct dbx_error *err)
{
	size_t n = pols ? json_object_array_length(pols) : 0;
	int r = 1;

	if (n > 0) {
		out->policies = calloc(n, sizeof(*out->policies));
		if (!out->policies)
			return dbx_error_set(err, DBX_ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < n && r > 0; i++) {
		r = parse_policy(json_object_array_get_idx(pols, i), &out->policies[i]);
		out->n_policies = i + 1;
	}
	if (r <= 0) {
		for (size_t i = 0; i < out->n_policies; i++)
			free(out->policies[i].object_id);
		free(out->policies);
		out->policies = NULL;
		out->n_policies = 0;
		if (r < 0)
			return dbx_error_set(err, DBX_ENOMEM, "out of memory");
		return DBX_OK;
	}
	out->policies_ok = true;
	return DBX_OK;
}

/* GET https://<arm><id>?api-version=version into *root (a JSON object). */
static enum dbx_err get_resource(struct dbx_arm *arm, const char *id, const char *version,
				 uint64_t deadline, struct json_object **root,
				 struct dbx_error *err)
{
	struct dbx_http_response resp = {0};
	char *url = NULL;
	enum dbx_err rc;

	*root = NULL;
	if (asprintf(&url, "https://%s%s?api-version=%s", arm->cloud->arm_host, id, version) < 0) {
		url = NULL;
		rc = dbx_error_set(err, DBX_ENOMEM, "out of memory");
		goto out;
	}
	rc = arm_get(arm, url, deadline, &resp, err);
	if (rc != DBX_OK)
		goto out;
	rc = parse_body(&resp, root, err);
out:
	note_response(err, rc, &resp);
	dbx_http_response_reset(&resp);
	free(url);
	return rc;
}

/*
 * A vault's properties from its ARM resource (a GET's body or an item of
 * a list) into *out, strictly: a field of the wrong type is malformed
 * (DBX_EREMOTE naming it), never read as absent.
 */
static enum dbx_err parse_vault(struct json_object *root, struct dbx_arm_vault *out,
				struct dbx_error *err)
{
	struct json_object *props = NULL, *pols = NULL, *v = NULL;
	const char *tenant;
	char why[256] = "";
	int r;

	out->soft_delete = true;
	r = dbx_json_field(root, "properties", json_type_object, "properties", &props, why,
			   sizeof(why));
	if (r == 0)
		snprintf(why, sizeof(why), "the key vault has no properties");
	if (r == 1 &&
	    (member_bool(props, "enableSoftDelete", "properties.enableSoftDelete",
			 &out->soft_delete, why, sizeof(why)) < 0 ||
	     member_bool(props, "enablePurgeProtection", "properties.enablePurgeProtection",
			 &out->purge_protection, why, sizeof(why)) < 0 ||
	     member_bool(props, "enableRbacAuthorization", "properties.enableRbacAuthorization",
			 &out->rbac, why, sizeof(why)) < 0 ||
	     dbx_json_field(props, "tenantId", json_type_string, "properties.tenantId", &v, why,
			    sizeof(why)) < 0 ||
	     dbx_json_field(props, "accessPolicies", json_type_array, "properties.accessPolicies",
			    &pols, why, sizeof(why)) < 0))
		r = -1;
	tenant = r == 1 && v ? json_object_get_string(v) : NULL;
	if (r == 1 && tenant && strlen(tenant) >= sizeof(out->tenant_id)) {
		snprintf(why, sizeof(why), "properties.tenantId is too long");
		r = -1;
	}
	if (r != 1)
		return dbx_error_set(err, DBX_EREMOTE, "malformed answer from ARM: %s", why);
	if (tenant)
		memcpy(out->tenant_id, tenant, strlen(tenant) + 1);
	return parse_policies(pols, out, err);
}

enum dbx_err dbx_arm_get_vault(struct dbx_arm *arm, const char *id, uint64_t deadline_ms,
			       struct dbx_arm_vault *out, struct dbx_error *err)
{
	struct json_object *root = NULL;
	enum dbx_err rc;

	dbx_error_clear(err);
	memset(out, 0, sizeof(*out));
	out->soft_delete = true;
	if (!id || !arm_id_ok(id)) {
		rc = dbx_error_set(err, DBX_EREMOTE,
				   "malformed response from ARM: the key vault's ID is not a plain "
				   "resource ID");
		goto out;
	}
	rc = get_resource(arm, id, API_VAULTS, deadline_ms, &root, err);
	if (rc != DBX_OK)
		goto out;
	rc = parse_vault(root, out, err);
out:
	json_object_put(root);
	return rc;
}

enum dbx_err dbx_arm_identity_principal(struct dbx_arm *arm, const char *uai_id,
					uint64_t deadline_ms, char *principal, size_t cap,
					struct dbx_error *err)
{
	struct json_object *root = NULL, *props = NULL, *v = NULL;
	const char *pid;
	char why[256] = "";
	enum dbx_err rc;
	int r;

	dbx_error_clear(err);
	if (principal && cap)
		principal[0] = '\0';
	if (!uai_id || !arm_id_ok(uai_id) || !principal || cap == 0) {
		rc = dbx_error_set(err, DBX_EINVAL, "invalid user-assigned identity ID");
		goto out;
	}
	rc = get_resource(arm, uai_id, API_IDENTITIES, deadline_ms, &root, err);
	if (rc != DBX_OK)
		goto out;
	r = dbx_json_field(root, "properties", json_type_object, "properties", &props, why,
			   sizeof(why));
	if (r == 1)
		r = dbx_json_field(props, "principalId", json_type_string, "properties.principalId",
				   &v, why, sizeof(why));
	pid = r == 1 ? json_object_get_string(v) : NULL;
	if (r == 0 || (pid && (pid[0] == '\0' || strlen(pid) >= cap)))
		snprintf(why, sizeof(why), "the user-assigned identity has no usable principalId");
	if (!pid || pid[0] == '\0' || strlen(pid) >= cap) {
		rc = dbx_error_set(err, DBX_EREMOTE, "malformed answer from ARM: %s", why);
		goto out;
	}
	memcpy(principal, pid, strlen(pid) + 1);
out:
	json_object_put(root);
	return rc;
}

/*
 * ---- Listings for the catalogue (docs/formats.md, "The catalogue") ----
 *
 * Each item is read strictly: a required string (id, name) absent or of
 * another type, or any field the catalogue shows of the wrong type, ends
 * the listing as malformed (DBX_EREMOTE naming the field), never as an
 * empty value.
 */

/* A required string member of an item, or NULL with why filled. */
static const char *item_str(struct json_object *o, const char *key, const char *path, bool required,
			    char *why, size_t cap)
{
	struct json_object *v = NULL;
	int r = dbx_json_field(o, key, json_type_string, path, &v, why, cap);

	if (r == 0 && required)
		snprintf(why, cap, "no %s", path);
	return r == 1 ? json_object_get_string(v) : NULL;
}

struct vault_list_ctx {
	dbx_arm_vault_cb cb;
	void *ctx;
};

static enum dbx_err vault_list_item(void *ctx, struct json_object *item,
				    const struct dbx_http_response *page, bool *stop,
				    struct dbx_error *err)
{
	struct vault_list_ctx *vc = ctx;
	struct dbx_arm_vault props = {0};
	char why[256] = "";
	const char *id, *name;
	enum dbx_err rc;

	(void)page;
	id = item_str(item, "id", "value[].id", true, why, sizeof(why));
	name = id ? item_str(item, "name", "value[].name", true, why, sizeof(why)) : NULL;
	if (!id || !name || !arm_id_ok(id) || !good_name(name))
		return dbx_error_set(err, DBX_EREMOTE, "malformed key vault list from ARM: %s",
				     why[0] ? why : "an unusable id or name");
	rc = parse_vault(item, &props, err);
	if (rc == DBX_OK)
		*stop = vc->cb(vc->ctx, id, name, &props) != 0;
	dbx_arm_vault_clear(&props);
	return rc;
}

enum dbx_err dbx_arm_list_vaults(struct dbx_arm *arm, const char *subscription, dbx_arm_vault_cb cb,
				 void *ctx, struct dbx_error *err)
{
	struct vault_list_ctx vc = {.cb = cb, .ctx = ctx};
	char *url = NULL, *sub = NULL;
	enum dbx_err rc;

	dbx_error_clear(err);
	sub = escape_segment(subscription);
	if (!sub || asprintf(&url,
			     "https://%s/subscriptions/%s/providers/Microsoft.KeyVault/vaults"
			     "?api-version=%s",
			     arm->cloud->arm_host, sub, API_VAULTS) < 0) {
		url = NULL;
		rc = dbx_error_set(err, DBX_ENOMEM, "out of memory");
		goto out;
	}
	rc = list_pages(arm, url, call_deadline(arm), vault_list_item, &vc, NULL, err);
out:
	free(sub);
	free(url);
	return rc;
}

struct identity_list_ctx {
	dbx_arm_identity_cb cb;
	void *ctx;
};

static enum dbx_err identity_list_item(void *ctx, struct json_object *item,
				       const struct dbx_http_response *page, bool *stop,
				       struct dbx_error *err)
{
	struct identity_list_ctx *ic = ctx;
	struct json_object *props = NULL;
	struct dbx_arm_identity uai = {0};
	char why[256] = "";
	int r;

	(void)page;
	uai.id = item_str(item, "id", "value[].id", true, why, sizeof(why));
	uai.name = uai.id ? item_str(item, "name", "value[].name", true, why, sizeof(why)) : NULL;
	r = uai.name ? dbx_json_field(item, "properties", json_type_object, "value[].properties",
				      &props, why, sizeof(why))
		     : -1;
	if (r == 1) {
		uai.principal_id = item_str(props, "principalId", "value[].properties.principalId",
					    false, why, sizeof(why));
		uai.client_id = item_str(props, "clientId", "value[].properties.clientId", false,
					 why, sizeof(why));
	}
	if (r < 0 || why[0] || !arm_id_ok(uai.id) || !good_name(uai.name))
		return dbx_error_set(err, DBX_EREMOTE,
				     "malformed user-assigned identity list from ARM: %s",
				     why[0] ? why : "an unusable id or name");
	if (!uai.principal_id)
		uai.principal_id = "";
	if (!uai.client_id)
		uai.client_id = "";
	*stop = ic->cb(ic->ctx, &uai) != 0;
	return DBX_OK;
}

enum dbx_err dbx_arm_list_identities(struct dbx_arm *arm, const char *subscription,
				     dbx_arm_identity_cb cb, void *ctx, struct dbx_error *err)
{
	struct identity_list_ctx ic = {.cb = cb, .ctx = ctx};
	char *url = NULL, *sub = NULL;
	enum dbx_err rc;

	dbx_error_clear(err);
	sub = escape_segment(subscription);
	if (!sub || asprintf(&url,
			     "https://%s/subscriptions/%s/providers/"
			     "Microsoft.ManagedIdentity/userAssignedIdentities?api-version=%s",
			     arm->cloud->arm_host, sub, API_IDENTITIES) < 0) {
		url = NULL;
		rc = dbx_error_set(err, DBX_ENOMEM, "out of memory");
		goto out;
	}
	rc = list_pages(arm, url, call_deadline(arm), identity_list_item, &ic, NULL, err);
out:
	free(sub);
	free(url);
	return rc;
}

struct sub_name_ctx {
	dbx_arm_sub_name_cb cb;
	void *ctx;
};

static enum dbx_err sub_name_item(void *ctx, struct json_object *item,
				  const struct dbx_http_response *page, bool *stop,
				  struct dbx_error *err)
{
	struct sub_name_ctx *sc = ctx;
	char why[256] = "";
	const char *id = dbx_json_str(item, "subscriptionId"), *name;

	(void)page;
	if (!good_name(id))
		return DBX_OK; /* skipped, as the root's listing skips it */
	name = item_str(item, "displayName", "value[].displayName", false, why, sizeof(why));
	if (why[0])
		return dbx_error_set(err, DBX_EREMOTE, "malformed subscription list from ARM: %s",
				     why);
	*stop = sc->cb(sc->ctx, id, name ? name : "") != 0;
	return DBX_OK;
}

enum dbx_err dbx_arm_list_subscription_names(struct dbx_arm *arm, dbx_arm_sub_name_cb cb, void *ctx,
					     struct dbx_error *err)
{
	struct sub_name_ctx sc = {.cb = cb, .ctx = ctx};
	char *url = NULL;
	enum dbx_err rc;

	dbx_error_clear(err);
	if (asprintf(&url, "https://%s/subscriptions?api-version=%s", arm->cloud->arm_host,
		     API_SUBSCRIPTIONS) < 0)
		return dbx_error_set(err, DBX_ENOMEM, "out of memory");
	rc = list_pages(arm, url, call_deadline(arm), sub_name_item, &sc, NULL, err);
	free(url);
	return rc;
}

/*
 * ---- PATCH and its long-running operation ----
 *
 * The service answers a PATCH with 200 and the job, or 202 with only a
 * Location (docs/azure.md, "Long-running operations"): .../operationResults/<id>, polled while it
 * answers 202 (each answer may carry a new Location), until a 200/204,
 * typically after the last Location pointed at the job itself. A Location
 * naming the job ends the waiting: the job is read at once, with
 * $expand=details (the plain GET drops details.jobStages, and the result
 * goes to the cache the errors file is made from). Otherwise the job is
 * read the same way at the end, unless the last answer was this job with
 * its details. A poll answer of 200 with an operation status body
 * ({"status": "InProgress" | "Succeeded" | "Failed", "error": {...}}, the
 * Azure-AsyncOperation shape) is understood too, should the service ever
 * send one; the Azure-AsyncOperation header itself is not followed, since
 * struct dbx_http_response does not carry it (Data Box never sends it).
 *
 * The wait before each poll is the answer's retry-after-ms or Retry-After
 * (seconds), else the schedule of docs/azure.md, "Long-running
 * operations": an eighth of the time since the PATCH, 1 s to lro_poll.
 *
 * Once ARM accepted the PATCH the change may land whatever happens to the
 * polling, so the write reports what the order shows (docs/formats.md,
 * "Writes"): when the operation cannot tell any more (a Location that is
 * not https on the cloud's ARM host, refused before anything is sent since
 * the bearer token goes with every poll; a poll lost at the transport;
 * a next poll due past the deadline), watch_order() reads the order
 * itself at the schedule's intervals until it shows the change (the
 * caller's test) or the deadline comes: DBX_ETIMEDOUT, "may still be
 * applied". A failed operation is still checked against the order first.
 */

#define DBX_ARM_MAX_POLLS 10000 /* a server answering 202 forever without a deadline */
#define LRO_FIRST_MS	  1000	/* the schedule's shortest interval, unless lro_poll is shorter */
#define LRO_GROWTH	  8	/* an interval is 1/LRO_GROWTH of the time since the PATCH */
#define LRO_MIN_MS	  10	/* the shortest interval, whatever lro_poll says */
#define LRO_RESERVE_MS	  1000 /* the last read of the order starts this long before the deadline */
#define LRO_TIMEOUT_MSG                                                                            \
	"the update was accepted by ARM but did not finish within the timeout (it may still be "   \
	"applied)"

/* A non-negative decimal number filling all of s, blanks around allowed. */
static bool parse_decimal(const char *s, uint64_t *out)
{
	uint64_t v = 0;

	while (*s == ' ' || *s == '\t')
		s++;
	if (*s < '0' || *s > '9')
		return false;
	for (; *s >= '0' && *s <= '9'; s++) {
		if (v > (UINT64_MAX - 9) / 10)
			return false;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	while (*s == ' ' || *s == '\t')
		s++;
	if (*s)
		return false;
	*out = v;
	return true;
}

/* The wait the answer asks for: retry-after-ms, else Retry-After in seconds; false without one. */
static bool poll_wait_ms(const struct dbx_http_response *resp, uint64_t *ms)
{
	uint64_t v;

	if (resp->retry_after_ms && parse_decimal(resp->retry_after_ms, &v)) {
		*ms = v;
		return true;
	}
	if (resp->retry_after && parse_decimal(resp->retry_after, &v)) {
		*ms = v > UINT64_MAX / 1000 ? UINT64_MAX : v * 1000;
		return true;
	}
	return false; /* absent, or an HTTP date: ARM's LROs send seconds */
}

/* One accepted PATCH being followed: what every step of it needs. */
struct lro {
	struct dbx_arm *arm;
	const char *subscription, *resource_group, *name;
	const char *job_url_plain; /* the job's URL, without $expand */
	dbx_arm_shows_fn shows;	   /* NULL: any order read counts */
	void *shows_ctx;
	uint64_t lro_poll_ms; /* the schedule's cap */
	uint64_t first;	      /* the schedule's shortest interval */
	uint64_t start_ms;    /* when ARM accepted the PATCH */
	uint64_t deadline;    /* 0: none */
	bool asked;	      /* the last answer asked for a wait: asked_ms */
	uint64_t asked_ms;
	unsigned interrupts;
	dbx_arm_progress_fn progress; /* NULL: nobody watches */
	void *progress_ctx;
	unsigned polls; /* polls and reads of the order made so far */
};

/* Tell the watcher, if any, that the next poll (or read) comes after ms. */
static void tell_wait(struct lro *l, uint64_t ms)
{
	struct dbx_arm_progress p = {
	    .request_id = "", .correlation_id = "", .polls = l->polls, .next_wait_ms = ms};

	if (l->progress)
		l->progress(l->progress_ctx, &p);
}

/*
 * The schedule's interval now: an eighth of the time since the PATCH, at
 * least 1 s (lro_poll when that is shorter), at most lro_poll. A change
 * that lands T seconds after the PATCH is seen by about 1.125 T.
 */
static uint64_t backoff_next(const struct lro *l)
{
	uint64_t now = dbx_clock_now_ms(l->arm->clock);
	uint64_t w = now > l->start_ms ? (now - l->start_ms) / LRO_GROWTH : 0;

	if (w < l->first)
		w = l->first;
	if (w > l->lro_poll_ms)
		w = l->lro_poll_ms;
	return w;
}

/*
 * The wait before the next poll after resp: what it asks for, else the
 * schedule's next (taken from the schedule only when the poll is made).
 */
static void next_wait(struct lro *l, const struct dbx_http_response *resp)
{
	l->asked = poll_wait_ms(resp, &l->asked_ms);
}

/* Would a request after a wait of ms still come more than reserve ms before the deadline? */
static bool fits(const struct lro *l, uint64_t ms, uint64_t reserve)
{
	uint64_t now = dbx_clock_now_ms(l->arm->clock);

	return !l->deadline ||
	       (now < l->deadline && ms < l->deadline - now && l->deadline - now - ms > reserve);
}

#define LRO_MAX_INTERRUPTS 100 /* signals that may cut one wait short before it is cut */

/*
 * Sleep ms before the next request. DBX_ETIMEDOUT, without sleeping, when
 * that request would come at or after the deadline: never sleep past it.
 * A signal (FUSE's interrupt for Ctrl-C) does not end the wait: the PATCH
 * is in ARM's hands, so the write runs to its end (update.h); the rest of
 * the wait is slept, still within the deadline.
 */
static enum dbx_err lro_wait(struct dbx_arm *arm, uint64_t ms, uint64_t deadline,
			     struct dbx_error *err)
{
	uint64_t now = dbx_clock_now_ms(arm->clock), until;

	if (deadline && (now >= deadline || ms >= deadline - now))
		return dbx_error_set(err, DBX_ETIMEDOUT, LRO_TIMEOUT_MSG);
	until = now + ms;
	for (unsigned cut = 0; now < until && cut < LRO_MAX_INTERRUPTS; cut++) {
		if (arm->clock->sleep_ms(arm->clock->ctx, until - now) == DBX_OK)
			break;
		now = dbx_clock_now_ms(arm->clock);
	}
	return DBX_OK;
}

/* Replace *url with a copy of next; false on ENOMEM. */
static bool set_url(char **url, const char *next)
{
	char *copy = strdup(next);

	if (!copy)
		return false;
	free(*url);
	*url = copy;
	return true;
}

/* An operation error with a Data Box user error code is the user's: DBX_EINVAL. */
static enum dbx_err operation_error(const struct dbx_http_response *resp, struct dbx_error *err)
{
	enum dbx_err rc = dbx_arm_error_from_response(resp, err);

	if (err && strncmp(err->code, "SsemUser", 8) == 0 && rc != DBX_EINVAL) {
		rc = DBX_EINVAL;
		err->err = rc;
	}
	return rc;
}

enum final_kind {
	FINAL_OTHER,	 /* no usable body: read the job */
	FINAL_JOB,	 /* this job, with its details: *order */
	FINAL_RUNNING,	 /* operation status: still running */
	FINAL_SUCCEEDED, /* operation status: done, read the job */
	FINAL_FAILED,	 /* operation status: failed, error in the body */
};

/* What a 2xx body that ends an operation (or a PATCH 200) holds. Only ENOMEM fails. */
static enum dbx_err classify_final(const struct dbx_http_response *resp, const char *subscription,
				   const char *resource_group, const char *name,
				   enum final_kind *kind, struct dbx_order **order,
				   struct dbx_error *err)
{
	struct json_object *obj = NULL;
	struct dbx_error ignored = {0};
	const char *status;
	enum dbx_err rc = DBX_OK;

	*kind = FINAL_OTHER;
	*order = NULL;
	if (!resp->body || resp->body_len == 0 || parse_body(resp, &obj, &ignored) != DBX_OK)
		goto out;
	if (dbx_json_str(obj, "id")) {
		struct dbx_order *o = NULL;

		rc = dbx_order_from_json(obj, &o, &ignored);
		if (rc == DBX_ENOMEM) {
			rc = dbx_error_set(err, DBX_ENOMEM, "out of memory");
			goto out;
		}
		rc = DBX_OK;
		if (o && o->has_details && is_job(o, subscription, resource_group, name)) {
			*kind = FINAL_JOB;
			*order = o;
		} else {
			dbx_order_free(o); /* another shape, or no details: the GET tells */
		}
		goto out;
	}
	status = dbx_json_str(obj, "status");
	if (!status)
		goto out;
	if (strcasecmp(status, "Succeeded") == 0)
		*kind = FINAL_SUCCEEDED;
	else if (strcasecmp(status, "Failed") == 0 || strcasecmp(status, "Canceled") == 0 ||
		 strcasecmp(status, "Cancelled") == 0)
		*kind = FINAL_FAILED;
	else
		*kind = FINAL_RUNNING;
out:
	json_object_put(obj);
	return rc;
}

/* The path of an absolute URL: from the first '/' after the authority to '?', '#' or the end. */
static const char *url_path(const char *url, size_t *len)
{
	const char *p = strstr(url, "://");

	p = p ? p + 3 : url;
	p += strcspn(p, "/?#");
	*len = strcspn(p, "?#");
	return p;
}

/* Do two URLs on the ARM host name the same resource (paths equal, case-insensitively)? */
static bool same_resource(const char *a, const char *b)
{
	size_t alen, blen;
	const char *pa = url_path(a, &alen), *pb = url_path(b, &blen);

	return alen > 0 && alen == blen && strncasecmp(pa, pb, alen) == 0;
}

/* GET the job ($expand=details) before the deadline; a Ctrl-C cutting a backoff does not stop it.
 */
static enum dbx_err read_job(struct lro *l, struct dbx_order **out, struct dbx_error *err)
{
	enum dbx_err rc;

	l->polls++;
	do {
		dbx_error_clear(err);
		rc = dbx_arm_get_job_until(l->arm, l->subscription, l->resource_group, l->name,
					   l->deadline, out, err);
	} while (rc == DBX_EINTR && l->interrupts++ < LRO_MAX_INTERRUPTS);
	return rc;
}

/*
 * A failure of a request that says nothing about the change: the
 * transport (no answer), throttling, a 5xx after retries, the deadline.
 * A malformed 200, 401/403 or 404 does say something: it is the answer.
 */
static bool transient(enum dbx_err rc, const struct dbx_error *e)
{
	switch (rc) {
	case DBX_EUNREACHABLE:
	case DBX_ETHROTTLED:
	case DBX_ETIMEDOUT:
	case DBX_EINTR:
		return true;
	case DBX_EREMOTE:
		return e->http_status == 0 || e->http_status >= 500 || e->http_status == 408;
	default:
		return false;
	}
}

/* Does order show the change (always, without a test)? */
static bool order_shows(const struct lro *l, const struct dbx_order *order)
{
	return !l->shows || l->shows(order, l->shows_ctx);
}

/*
 * The operation can tell no more (why says how): read the order itself
 * until it shows the change, at the schedule's intervals, the last read
 * starting no later than LRO_RESERVE_MS before the deadline (so it has
 * time to be answered); then DBX_ETIMEDOUT, the change may still land. An answer
 * that is not transient (404, 403, a malformed order) ends it with its
 * own error.
 */
static enum dbx_err watch_order(struct lro *l, const char *why, struct dbx_order **out,
				struct dbx_error *err)
{
	struct dbx_error e;
	enum dbx_err rc = DBX_OK;

	dbx_log(DBX_LOG_INFO, "update of %s: %s; reading the order to see whether it landed",
		l->name, why);
	for (unsigned reads = 0; reads < DBX_ARM_MAX_POLLS; reads++) {
		struct dbx_order *o = NULL;
		uint64_t now, left, wait;

		rc = read_job(l, &o, &e);
		if (rc == DBX_OK && order_shows(l, o)) {
			dbx_error_clear(err);
			*out = o;
			return DBX_OK;
		}
		dbx_order_free(o);
		if (rc != DBX_OK && !transient(rc, &e)) {
			if (err)
				*err = e;
			return rc;
		}
		wait = backoff_next(l);
		now = dbx_clock_now_ms(l->arm->clock);
		if (l->deadline) {
			/* The last read starts no later than LRO_RESERVE_MS before the deadline. */
			left = now < l->deadline ? l->deadline - now : 0;
			if (left <= LRO_RESERVE_MS)
				break;
			if (wait > left - LRO_RESERVE_MS)
				wait = left - LRO_RESERVE_MS;
		}
		tell_wait(l, wait);
		if (lro_wait(l->arm, wait, l->deadline, err) != DBX_OK)
			break;
	}
	dbx_error_clear(err);
	return dbx_error_set(err, DBX_ETIMEDOUT,
			     "the update was accepted by ARM but did not finish within the "
			     "timeout; it may still be applied (%s)",
			     why);
}

/* The operation ended: read the job at once; a read that is lost goes on as watch_order. */
static enum dbx_err final_read(struct lro *l, struct dbx_order **out, struct dbx_error *err)
{
	struct dbx_error e;
	char why[DBX_ERR_MSG_MAX + 64];
	enum dbx_err rc = read_job(l, out, &e);

	if (rc == DBX_OK) {
		dbx_error_clear(err);
		return DBX_OK;
	}
	if (!transient(rc, &e)) {
		if (err)
			*err = e;
		return rc;
	}
	snprintf(why, sizeof(why), "the read of the order after the operation failed: %.900s",
		 e.message);
	return watch_order(l, why, out, err);
}

/*
 * The operation failed (rc, err filled): that stays the answer unless
 * the order already shows the change, which is then the truth.
 */
static enum dbx_err operation_failed(struct lro *l, enum dbx_err rc, struct dbx_order **out,
				     struct dbx_error *err)
{
	struct dbx_order *o = NULL;
	struct dbx_error e;

	if (!l->shows)
		return rc;
	if (read_job(l, &o, &e) == DBX_OK && order_shows(l, o)) {
		dbx_log(DBX_LOG_INFO,
			"update of %s: the operation failed (%s), but the order shows the change",
			l->name, err ? err->message : "");
		dbx_error_clear(err);
		*out = o;
		return DBX_OK;
	}
	dbx_order_free(o);
	return rc;
}

/*
 * Follow the operation ARM accepted with first (a 202): poll while it
 * runs, then the final job into *out.
 */
static enum dbx_err follow_operation(struct lro *l, const struct dbx_http_response *first,
				     struct dbx_order **out, struct dbx_error *err)
{
	struct dbx_http_response resp = {0};
	struct dbx_order *order = NULL;
	char *url = NULL, why[DBX_ERR_MSG_MAX + 128];
	enum dbx_err rc = DBX_OK;

	next_wait(l, first);

	if (first->location && *first->location && !set_url(&url, first->location)) {
		rc = dbx_error_set(err, DBX_ENOMEM, "out of memory");
		goto out;
	}
	for (unsigned polls = 0;; polls++) {
		enum final_kind kind;
		uint64_t wait;

		if (!url) {
			rc = watch_order(l, "ARM gave no Location to poll", out, err);
			goto out;
		}
		if (!dbx_arm_url_is_arm(l->arm->cloud, url)) {
			/* The token would go with the poll: nothing is sent to it. */
			dbx_log(DBX_LOG_WARN,
				"update of %s: the operation's Location is not https://%s; not "
				"followed",
				l->name, l->arm->cloud->arm_host);
			snprintf(why, sizeof(why),
				 "the operation's Location from ARM is not https://%s and was not "
				 "followed",
				 l->arm->cloud->arm_host);
			rc = watch_order(l, why, out, err);
			goto out;
		}
		if (same_resource(url, l->job_url_plain)) {
			rc = final_read(l, out, err); /* the last step: no further wait */
			goto out;
		}
		wait = l->asked ? l->asked_ms : backoff_next(l);
		/* A poll must leave time to read the order should it be lost. */
		if (polls >= DBX_ARM_MAX_POLLS || !fits(l, wait, LRO_RESERVE_MS)) {
			snprintf(why, sizeof(why),
				 "the next poll of the operation was due in %llu s, after the "
				 "deadline",
				 (unsigned long long)(wait / 1000));
			rc = watch_order(l, why, out, err);
			goto out;
		}
		tell_wait(l, wait);
		rc = lro_wait(l->arm, wait, l->deadline, err);
		if (rc != DBX_OK)
			goto out;
		dbx_http_response_reset(&resp);
		dbx_error_clear(err);
		l->polls++;
		/* One resend: a poll lost twice is the order's to answer (watch_order). */
		rc = send_get_retries(l->arm, url, l->deadline, 1, &resp, err);
		if (rc == DBX_EINTR && l->interrupts++ < LRO_MAX_INTERRUPTS) {
			/* Ctrl-C cut the retry layer's backoff: the update runs to its end. */
			dbx_error_clear(err);
			l->asked = false;
			continue;
		}
		if (rc == DBX_OK && (resp.status == 429 || resp.status == 408)) {
			rc = dbx_arm_error_from_response(&resp, err);
			dbx_http_response_reset(&resp);
		}
		if (rc != DBX_OK) {
			/* Lost, not answered: the order tells. */
			snprintf(why, sizeof(why), "a poll of the operation failed: %.900s",
				 err ? err->message : dbx_err_str(rc));
			rc = watch_order(l, why, out, err);
			goto out;
		}
		if (resp.status == 202) {
			if (resp.location && *resp.location && !set_url(&url, resp.location)) {
				rc = dbx_error_set(err, DBX_ENOMEM, "out of memory");
				goto out;
			}
			next_wait(l, &resp);
			continue;
		}
		if (resp.status < 200 || resp.status >= 300) {
			/* The operation's own failure (the retry layer already retried 5xx). */
			rc = operation_failed(l, operation_error(&resp, err), out, err);
			goto out;
		}
		rc = classify_final(&resp, l->subscription, l->resource_group, l->name, &kind,
				    &order, err);
		if (rc != DBX_OK)
			goto out;
		switch (kind) {
		case FINAL_JOB:
			*out = order;
			order = NULL;
			goto out;
		case FINAL_RUNNING:
			if (resp.location && *resp.location && !set_url(&url, resp.location)) {
				rc = dbx_error_set(err, DBX_ENOMEM, "out of memory");
				goto out;
			}
			next_wait(l, &resp);
			continue;
		case FINAL_FAILED:
			/* status_to_err(200) is DBX_EREMOTE; a Data Box user error is EINVAL. */
			rc = operation_error(&resp, err);
			if (err && err->code[0] == '\0')
				dbx_error_set(err, rc, "the update failed in ARM (no error given)");
			rc = operation_failed(l, rc, out, err);
			goto out;
		case FINAL_SUCCEEDED:
		case FINAL_OTHER:
			rc = final_read(l, out, err);
			goto out;
		}
	}
out:
	note_response(err, rc, &resp);
	dbx_order_free(order);
	dbx_http_response_reset(&resp);
	free(url);
	return rc;
}

enum dbx_err dbx_arm_patch_job(struct dbx_arm *arm, const char *subscription,
			       const char *resource_group, const char *name, const char *body,
			       uint64_t lro_poll_ms, uint64_t deadline_ms, bool *sent,
			       struct dbx_order **out, struct dbx_error *err)
{
	return dbx_arm_patch_job_ex(arm, subscription, resource_group, name, body, lro_poll_ms,
				    deadline_ms, sent, NULL, out, err);
}

enum dbx_err dbx_arm_patch_job_ex(struct dbx_arm *arm, const char *subscription,
				  const char *resource_group, const char *name, const char *body,
				  uint64_t lro_poll_ms, uint64_t deadline_ms, bool *sent,
				  bool *accepted, struct dbx_order **out, struct dbx_error *err)
{
	return dbx_arm_patch_job_verify(arm, subscription, resource_group, name, body, lro_poll_ms,
					deadline_ms, NULL, NULL, sent, accepted, out, err);
}

enum dbx_err dbx_arm_patch_job_verify(struct dbx_arm *arm, const char *subscription,
				      const char *resource_group, const char *name,
				      const char *body, uint64_t lro_poll_ms, uint64_t deadline_ms,
				      dbx_arm_shows_fn shows, void *shows_ctx, bool *sent,
				      bool *accepted, struct dbx_order **out, struct dbx_error *err)
{
	return dbx_arm_patch_job_observe(arm, subscription, resource_group, name, body, lro_poll_ms,
					 deadline_ms, shows, shows_ctx, NULL, NULL, sent, accepted,
					 out, err);
}

enum dbx_err dbx_arm_patch_job_observe(struct dbx_arm *arm, const char *subscription,
				       const char *resource_group, const char *name,
				       const char *body, uint64_t lro_poll_ms, uint64_t deadline_ms,
				       dbx_arm_shows_fn shows, void *shows_ctx,
				       dbx_arm_progress_fn progress, void *progress_ctx, bool *sent,
				       bool *accepted, struct dbx_order **out,
				       struct dbx_error *err)
{
	struct dbx_http_response resp = {0};
	struct dbx_order *order = NULL;
	char *url = NULL, patch_rid[DBX_ERR_ID_MAX] = "";
	enum final_kind kind;
	enum dbx_err rc;
	struct dbx_http_request req = {
	    .method = "PATCH",
	    .scope = arm->cloud->arm_scope,
	    .content_type = "application/json",
	    .deadline_ms = deadline_ms,
	    .idempotent = false, /* never resent after a 5xx or a dropped connection */
	};
	struct lro l = {
	    .arm = arm,
	    .subscription = subscription,
	    .resource_group = resource_group,
	    .name = name,
	    .shows = shows,
	    .shows_ctx = shows_ctx,
	    /* At least LRO_MIN_MS: lro_poll=0.0001 must not become a storm of requests. */
	    .lro_poll_ms = lro_poll_ms < LRO_MIN_MS ? LRO_MIN_MS : lro_poll_ms,
	    .first = lro_poll_ms < LRO_MIN_MS	  ? LRO_MIN_MS
		     : lro_poll_ms < LRO_FIRST_MS ? lro_poll_ms
						  : LRO_FIRST_MS,
	    .start_ms = dbx_clock_now_ms(arm->clock),
	    .deadline = deadline_ms,
	    .progress = progress,
	    .progress_ctx = progress_ctx,
	};

	*out = NULL;
	if (sent)
		*sent = false;
	if (accepted)
		*accepted = false;
	dbx_error_clear(err);
	if (!body || !*body) {
		rc = dbx_error_set(err, DBX_EINVAL, "nothing to send");
		goto out;
	}
	rc = job_url(arm, subscription, resource_group, name, false, &url, err);
	if (rc != DBX_OK)
		goto out;
	l.job_url_plain = url;
	if (deadline_ms && dbx_clock_now_ms(arm->clock) >= deadline_ms) {
		rc = dbx_error_set(err, DBX_ETIMEDOUT,
				   "no time left to send the update (nothing was sent)");
		goto out;
	}
	req.url = url;
	req.body = body;
	req.body_len = strlen(body);
	rc = dbx_http_send(arm->transport, &req, &resp, err);
	/* Any other failure may have carried the request; one without a token never left. */
	if (sent)
		*sent = rc != DBX_EUNREACHABLE && !(err && err->service == DBX_SERVICE_TOKEN);
	if (rc != DBX_OK)
		goto out;
	if (resp.request_id)
		copy_line(patch_rid, sizeof(patch_rid), resp.request_id);
	if (resp.status == 429 || resp.status == 408) {
		/* Still throttled after the retry layer's budget: ARM did not act on it. */
		if (sent)
			*sent = false;
		rc = dbx_arm_error_from_response(&resp, err);
		goto out;
	}
	if (resp.status != 200 && resp.status != 201 && resp.status != 202 && resp.status != 204) {
		rc = dbx_arm_error_from_response(&resp, err);
		goto out;
	}
	if (accepted)
		*accepted = true;
	if (progress) {
		struct dbx_arm_progress p = {
		    .accepted = true,
		    .request_id = patch_rid,
		    .correlation_id = resp.correlation_id ? resp.correlation_id : "",
		};

		progress(progress_ctx, &p);
	}
	if (resp.status == 202) {
		rc = follow_operation(&l, &resp, out, err);
		goto out;
	}
	rc = classify_final(&resp, subscription, resource_group, name, &kind, &order, err);
	if (rc != DBX_OK)
		goto out;
	if (kind == FINAL_JOB) {
		*out = order;
		order = NULL;
		goto out;
	}
	/* 200 without the job's details, or 204: read the job as it now is, to the end. */
	rc = final_read(&l, out, err);
out:
	note_response(err, rc, &resp);
	if (err && rc != DBX_OK && err->request_id[0] == '\0' && patch_rid[0])
		snprintf(err->request_id, sizeof(err->request_id), "%s", patch_rid);
	dbx_order_free(order);
	dbx_http_response_reset(&resp);
	free(url);
	return rc;
}
