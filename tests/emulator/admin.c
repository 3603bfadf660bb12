/*
 * admin.c: the admin API (plain HTTP on 127.0.0.1) and the bookkeeping it
 * exposes: request counters, the request log and fault rules.
 *
 *   GET    /admin/counters            {"total","by_service","by_path"}
 *   POST   /admin/counters/reset
 *   GET    /admin/requests            last 1000 Azure requests, oldest first
 *   POST   /admin/requests/reset
 *   GET    /admin/world               the world as stored
 *   PUT    /admin/world               replace the world (body = world JSON)
 *   GET    /admin/jobs/S/RG/NAME      one stored job
 *   PUT    /admin/jobs/S/RG/NAME      replace or add one job
 *   POST   /admin/tokens/expire       every issued token expires now
 *   POST   /admin/tokens/revoke       every issued token becomes unknown
 *   POST   /admin/tokens/lifetime     {"seconds": N} for tokens issued from now on
 *   GET    /admin/tokens/stats        issued tokens per grant type, credential, audience
 *   POST   /admin/jobs/S/RG/NAME/advance, /admin/vaults/..., /admin/identities,
 *          /admin/limits, /admin/subscriptions/S/tenant, /admin/fail-next-patch
 *          world mutations (README.md)
 *   GET    /admin/faults              active fault rules
 *   POST   /admin/faults              add a rule -> {"id": k}
 *   DELETE /admin/faults              clear all rules
 *   DELETE /admin/faults/ID           remove one rule
 *   POST   /admin/latency {"ms": N}   global latency for Azure responses
 *   GET|POST|DELETE /admin/operations how accepted PATCHes run (README.md)
 * New admin operations are one row in admin_routes[].
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/evp.h>

#include "emu.h"

const char *dbx_emu_svc_name(enum dbx_emu_service s)
{
	switch (s) {
	case DBX_EMU_SVC_ARM:
		return "arm";
	case DBX_EMU_SVC_KEYVAULT:
		return "keyvault";
	case DBX_EMU_SVC_ENTRA:
		return "entra";
	case DBX_EMU_SVC_IMDS:
		return "imds";
	case DBX_EMU_SVC_ADMIN:
		return "admin";
	default:
		return "unknown";
	}
}

static enum dbx_emu_service svc_from_name(const char *s)
{
	if (!s)
		return DBX_EMU_SVC_NONE;
	if (!strcasecmp(s, "arm"))
		return DBX_EMU_SVC_ARM;
	if (!strcasecmp(s, "keyvault"))
		return DBX_EMU_SVC_KEYVAULT;
	if (!strcasecmp(s, "entra"))
		return DBX_EMU_SVC_ENTRA;
	if (!strcasecmp(s, "imds"))
		return DBX_EMU_SVC_IMDS;
	return (enum dbx_emu_service) - 1;
}

/* Count one Azure request and append it to the log (e->lock held). */
void dbx_emu_record(struct dbx_emu *e, const struct dbx_emu_req *q, const struct dbx_emu_reply *r)
{
	struct json_object *o = json_object_new_object(), *cnt;
	const char *crid = dbx_emu_header(q, "x-ms-client-request-id");
	const char *ua = dbx_emu_header(q, "User-Agent");
	char key[1200];
	size_t slot;

	e->total++;
	e->by_svc[q->svc]++;
	snprintf(key, sizeof(key), "%s %s%s", q->method, q->host, q->raw_path);
	if (json_object_object_get_ex(e->by_path, key, &cnt))
		json_object_object_add(e->by_path, key,
				       json_object_new_int64(json_object_get_int64(cnt) + 1));
	else
		json_object_object_add(e->by_path, key, json_object_new_int64(1));

	json_object_object_add(o, "time", json_object_new_int64((int64_t)time(NULL)));
	json_object_object_add(o, "service", json_object_new_string(dbx_emu_svc_name(q->svc)));
	json_object_object_add(o, "method", json_object_new_string(q->method));
	json_object_object_add(o, "host", json_object_new_string(q->host));
	json_object_object_add(o, "path", json_object_new_string(q->raw_path));
	json_object_object_add(o, "query", json_object_new_string(q->query));
	json_object_object_add(o, "status", json_object_new_int(r->drop ? 0 : (int)r->status));
	json_object_object_add(o, "client_request_id", crid ? json_object_new_string(crid) : NULL);
	json_object_object_add(o, "user_agent", ua ? json_object_new_string(ua) : NULL);
	if (r->log_grant[0])
		json_object_object_add(o, "grant_type", json_object_new_string(r->log_grant));
	if (r->log_scope[0])
		json_object_object_add(o, "scope", json_object_new_string(r->log_scope));
	if (q->body && !r->secret_body)
		json_object_object_add(o, "body",
				       json_object_new_string_len(q->body, (int)q->body_len));
	slot = (e->reqlog_head + e->reqlog_len) % DBX_EMU_REQLOG_MAX;
	if (e->reqlog_len == DBX_EMU_REQLOG_MAX) {
		json_object_put(e->reqlog[e->reqlog_head]);
		e->reqlog_head = (e->reqlog_head + 1) % DBX_EMU_REQLOG_MAX;
		slot = (e->reqlog_head + e->reqlog_len - 1) % DBX_EMU_REQLOG_MAX;
	} else {
		e->reqlog_len++;
	}
	e->reqlog[slot] = o;
}

/* ---- faults ---- */

const struct dbx_emu_fault *dbx_emu_fault_match(struct dbx_emu *e, const struct dbx_emu_req *q)
{
	size_t i;

	for (i = 0; i < e->nfaults; i++) {
		struct dbx_emu_fault *f = &e->faults[i];

		if (f->count == 0)
			continue;
		if (f->svc != DBX_EMU_SVC_NONE && f->svc != q->svc)
			continue;
		if (f->method[0] && strcasecmp(f->method, q->method))
			continue;
		if (f->path_prefix &&
		    strncasecmp(q->raw_path, f->path_prefix, strlen(f->path_prefix)))
			continue;
		if (f->count > 0)
			f->count--;
		return f;
	}
	return NULL;
}

static const char *code_for_status(unsigned int s)
{
	switch (s) {
	case 400:
		return "BadRequest";
	case 401:
		return "Unauthorized";
	case 403:
		return "AuthorizationFailed";
	case 404:
		return "NotFound";
	case 408:
		return "RequestTimeout";
	case 409:
		return "Conflict";
	case 412:
		return "PreconditionFailed";
	case 429:
		return "TooManyRequests";
	case 500:
		return "InternalServerError";
	case 502:
		return "BadGateway";
	case 503:
		return "ServiceUnavailable";
	case 504:
		return "GatewayTimeout";
	default:
		return "Error";
	}
}

void dbx_emu_fault_reply(const struct dbx_emu_fault *f, const struct dbx_emu_req *q,
			 struct dbx_emu_reply *r)
{
	if (f->drop) {
		r->drop = true;
		return;
	}
	if (!f->status)
		return;
	if (f->body) {
		r->status = f->status;
		r->body = malloc(f->body_len + 1);
		if (r->body) {
			memcpy(r->body, f->body, f->body_len + 1);
			r->body_len = f->body_len;
		}
		r->content_type = "application/json; charset=utf-8";
	} else if (f->status >= 200 && f->status < 300) {
		/* a bodiless success; 202 points at itself: an operation that never ends */
		r->status = f->status;
		if (f->status == 202)
			dbx_emu_reply_header(r, "Location", "https://%s%s", q->host_raw, q->uri);
	} else if (q->svc == DBX_EMU_SVC_ENTRA) {
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "error",
				       json_object_new_string(f->status == 429
								  ? "temporarily_unavailable"
								  : "server_error"));
		json_object_object_add(o, "error_description",
				       json_object_new_string("AADSTS50196: The server terminated "
							      "an operation (injected fault)."));
		dbx_emu_reply_json(r, f->status, o);
	} else if (f->status == 429) {
		dbx_emu_reply_error(
		    r, 429, "TooManyRequests",
		    "The request is being throttled as the limit has been reached for "
		    "operation type - Read_ObservationWindow_00:05:00. For more "
		    "information, see - https://aka.ms/srpthrottlinglimits");
	} else {
		dbx_emu_reply_error(r, f->status, code_for_status(f->status),
				    "Injected fault: the service answered %u.", f->status);
	}
}

/*
 * nextLink of a list answer rewritten: "loop" = this very page again,
 * "foreign" = the same link on a host outside every cloud, "http" = the
 * same link over plain http. A list without a next page gets one.
 */
static void next_link_rewrite(const char *how, const struct dbx_emu_req *q, struct dbx_emu_reply *r)
{
	struct json_object *o, *nl;
	const char *base, *rest;
	char self[4096], *link = NULL;

	if (r->status != 200 || !r->body)
		return;
	o = json_tokener_parse(r->body);
	if (!o || !json_object_is_type(o, json_type_object) ||
	    !json_object_object_get_ex(o, "value", NULL)) {
		json_object_put(o);
		return;
	}
	snprintf(self, sizeof(self), "https://%s%s", q->host_raw, q->uri);
	base = json_object_object_get_ex(o, "nextLink", &nl) &&
		       json_object_is_type(nl, json_type_string)
		   ? json_object_get_string(nl)
		   : self;
	rest = strncmp(base, "https://", 8) ? base : base + 8;
	rest += strcspn(rest, "/");
	if (!strcmp(how, "loop"))
		link = strdup(self);
	else if (!strcmp(how, "foreign") &&
		 asprintf(&link, "https://attacker.example.net%s", rest) < 0)
		link = NULL;
	else if (!strcmp(how, "http") && asprintf(&link, "http://%s%s", q->host_raw, rest) < 0)
		link = NULL;
	if (link)
		json_object_object_add(o, "nextLink", json_object_new_string(link));
	free(link);
	dbx_emu_reply_json(r, 200, o);
}

void dbx_emu_fault_after(const struct dbx_emu_fault *f, const struct dbx_emu_req *q,
			 struct dbx_emu_reply *r)
{
	char date[64];
	time_t t;
	struct tm tm;

	if (r->drop)
		return;
	if (f->retry_after[0])
		dbx_emu_reply_header(r, "Retry-After", "%s", f->retry_after);
	if (f->retry_after_ms >= 0) {
		dbx_emu_reply_header(r, "retry-after-ms", "%d", f->retry_after_ms);
		dbx_emu_reply_header(r, "x-ms-retry-after-ms", "%d", f->retry_after_ms);
	}
	if (f->has_retry_date) {
		t = time(NULL) + f->retry_after_date_s;
		gmtime_r(&t, &tm);
		strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
		dbx_emu_reply_header(r, "Retry-After", "%s", date);
	}
	if (f->headers) {
		json_object_object_foreach(f->headers, name, value)
		{
			dbx_emu_reply_header(r, name, "%s", json_object_get_string(value));
		}
	}
	if (f->next_link[0])
		next_link_rewrite(f->next_link, q, r);
	if (f->stall_ms > 0)
		r->stall_ms = f->stall_ms;
	if (f->drop_after)
		r->drop = true;
}

/* ---- admin handlers ---- */

static void admin_error(struct dbx_emu_reply *r, unsigned int status, const char *msg)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "error", json_object_new_string(msg));
	dbx_emu_reply_json(r, status, o);
}

static void admin_ok(struct dbx_emu_reply *r)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "ok", json_object_new_boolean(1));
	dbx_emu_reply_json(r, 200, o);
}

static struct json_object *parse_body(struct dbx_emu_req *q, struct dbx_emu_reply *r)
{
	enum json_tokener_error jerr = json_tokener_success;
	struct json_object *o = q->body ? json_tokener_parse_verbose(q->body, &jerr) : NULL;

	if (!o || !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		admin_error(r, 400, "body must be a JSON object");
		return NULL;
	}
	return o;
}

static void counters_get(struct dbx_emu *e, struct dbx_emu_req *q, struct dbx_emu_reply *r,
			 const char *rest)
{
	struct json_object *o = json_object_new_object(), *svc = json_object_new_object();
	struct json_object *paths = NULL;

	json_object_object_add(o, "total", json_object_new_int64(e->total));
	json_object_object_add(svc, "arm", json_object_new_int64(e->by_svc[DBX_EMU_SVC_ARM]));
	json_object_object_add(svc, "keyvault",
			       json_object_new_int64(e->by_svc[DBX_EMU_SVC_KEYVAULT]));
	json_object_object_add(svc, "entra", json_object_new_int64(e->by_svc[DBX_EMU_SVC_ENTRA]));
	json_object_object_add(svc, "imds", json_object_new_int64(e->by_svc[DBX_EMU_SVC_IMDS]));
	json_object_object_add(svc, "unknown", json_object_new_int64(e->by_svc[DBX_EMU_SVC_NONE]));
	json_object_object_add(o, "by_service", svc);
	json_object_deep_copy(e->by_path, &paths, NULL);
	json_object_object_add(o, "by_path", paths ? paths : json_object_new_object());
	dbx_emu_reply_json(r, 200, o);
}

static void counters_reset(struct dbx_emu *e, struct dbx_emu_req *q, struct dbx_emu_reply *r,
			   const char *rest)
{
	e->total = 0;
	memset(e->by_svc, 0, sizeof(e->by_svc));
	json_object_put(e->by_path);
	e->by_path = json_object_new_object();
	admin_ok(r);
}

static void requests_get(struct dbx_emu *e, struct dbx_emu_req *q, struct dbx_emu_reply *r,
			 const char *rest)
{
	struct json_object *a = json_object_new_array();
	size_t i;

	for (i = 0; i < e->reqlog_len; i++)
		json_object_array_add(
		    a, json_object_get(e->reqlog[(e->reqlog_head + i) % DBX_EMU_REQLOG_MAX]));
	dbx_emu_reply_json(r, 200, a);
}

static void requests_reset(struct dbx_emu *e, struct dbx_emu_req *q, struct dbx_emu_reply *r,
			   const char *rest)
{
	size_t i;

	for (i = 0; i < DBX_EMU_REQLOG_MAX; i++) {
		json_object_put(e->reqlog[i]);
		e->reqlog[i] = NULL;
	}
	e->reqlog_head = e->reqlog_len = 0;
	admin_ok(r);
}

static void world_get(struct dbx_emu *e, struct dbx_emu_req *q, struct dbx_emu_reply *r,
		      const char *rest)
{
	dbx_emu_reply_json(r, 200, json_object_get(e->world));
}

/* Runs without e->lock: parsing a big world takes a while. */
static void world_put(struct dbx_emu *e, struct dbx_emu_req *q, struct dbx_emu_reply *r,
		      const char *rest)
{
	char err[256];
	struct json_object *w = dbx_emu_world_parse(q->body ? q->body : "", err, sizeof(err));

	if (!w) {
		admin_error(r, 400, err);
		return;
	}
	dbx_emu_keys_warm(e, w);
	pthread_mutex_lock(&e->lock);
	dbx_emu_world_replace(e, w);
	json_object_put(e->operations);
	e->operations = json_object_new_object();
	pthread_mutex_unlock(&e->lock);
	admin_ok(r);
}

static void job_get(struct dbx_emu *e, struct dbx_emu_req *q, struct dbx_emu_reply *r,
		    const char *rest)
{
	char buf[1024], *seg[4];
	struct json_object *job;

	snprintf(buf, sizeof(buf), "%s", rest);
	if (dbx_emu_split_path(buf, seg, 4) != 3) {
		admin_error(r, 400, "use /admin/jobs/SUBSCRIPTION/RESOURCEGROUP/NAME");
		return;
	}
	job = dbx_emu_find_job(e, seg[0], seg[1], seg[2]);
	if (!job) {
		admin_error(r, 404, "no such job");
		return;
	}
	dbx_emu_reply_json(r, 200, json_object_get(job));
}

/* PUT /admin/jobs/S/RG/NAME: replace (or add) one job; its id must name S/RG/NAME. */
static void job_put(struct dbx_emu *e, struct dbx_emu_req *q, struct dbx_emu_reply *r,
		    const char *rest)
{
	char buf[1024], *seg[4], s[256], g[256], n[256];
	struct json_object *job = parse_body(q, r), *jobs;
	size_t i;

	if (!job)
		return;
	snprintf(buf, sizeof(buf), "%s", rest);
	if (dbx_emu_split_path(buf, seg, 4) != 3) {
		admin_error(r, 400, "use /admin/jobs/SUBSCRIPTION/RESOURCEGROUP/NAME");
		goto out;
	}
	if (!dbx_emu_id_parse(dbx_emu_jstr(job, "id"), s, g, n, sizeof(s)) ||
	    strcasecmp(s, seg[0]) || strcasecmp(g, seg[1]) || strcasecmp(n, seg[2])) {
		admin_error(r, 400,
			    "the job's id must be .../subscriptions/S/resourceGroups/RG/"
			    "providers/Microsoft.DataBox/jobs/NAME of this path");
		goto out;
	}
	jobs = dbx_emu_world_array(e, "jobs");
	if (!jobs) {
		jobs = json_object_new_array();
		json_object_object_add(e->world, "jobs", jobs);
	}
	for (i = 0; i < json_object_array_length(jobs); i++) {
		if (json_object_array_get_idx(jobs, i) == dbx_emu_find_job(e, s, g, n)) {
			json_object_array_put_idx(jobs, i, json_object_get(job));
			admin_ok(r);
			goto out;
		}
	}
	json_object_array_add(jobs, json_object_get(job));
	admin_ok(r);
out:
	json_object_put(job);
}

/* POST /admin/tokens/expire: every issued token is now expired. */
static void tokens_expire(struct dbx_emu *e, struct dbx_emu_req *q, struct dbx_emu_reply *r,
			  const char *rest)
{
	size_t i;

	for (i = 0; i < e->ntokens; i++)
		e->tokens[i].exp = time(NULL) - 1;
	admin_ok(r);
}

/* POST /admin/tokens/revoke: forget every issued token (they become invalid). */
static void tokens_revoke(struct dbx_emu *e, struct dbx_emu_req *q, struct dbx_emu_reply *r,
			  const char *rest)
{
	size_t i;

	for (i = 0; i < e->ntokens; i++)
		free(e->tokens[i].token);
	e->ntokens = 0;
	admin_ok(r);
}

/* POST /admin/tokens/lifetime {"seconds": N}: lifetime of tokens issued from now on (0 = world's).
 */
static void tokens_lifetime(struct dbx_emu *e, struct dbx_emu_req *q, struct dbx_emu_reply *r,
			    const char *rest)
{
	struct json_object *body = parse_body(q, r), *v;

	if (!body)
		return;
	if (!json_object_object_get_ex(body, "seconds", &v) ||
	    !json_object_is_type(v, json_type_int) || json_object_get_int(v) < 0) {
		admin_error(r, 400, "body must be {\"seconds\": N} with N >= 0");
	} else {
		e->token_lifetime_override = json_object_get_int(v);
		admin_ok(r);
	}
	json_object_put(body);
}

/* GET /admin/tokens/stats: issued tokens per grant type, credential and audience. */
static void tokens_stats(struct dbx_emu *e, struct dbx_emu_req *q, struct dbx_emu_reply *r,
			 const char *rest)
{
	struct json_object *o = NULL;

	if (e->token_stats && json_object_deep_copy(e->token_stats, &o, NULL))
		o = NULL;
	if (!o) {
		o = json_object_new_object();
		json_object_object_add(o, "total", json_object_new_int(0));
	}
	if (!json_object_object_get_ex(o, "by_grant_type", NULL))
		json_object_object_add(o, "by_grant_type", json_object_new_object());
	if (!json_object_object_get_ex(o, "by_credential", NULL))
		json_object_object_add(o, "by_credential", json_object_new_object());
	if (!json_object_object_get_ex(o, "by_audience", NULL))
		json_object_object_add(o, "by_audience", json_object_new_object());
	dbx_emu_reply_json(r, 200, o);
}

static struct json_object *fault_json(const struct dbx_emu_fault *f)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "id", json_object_new_int(f->id));
	json_object_object_add(
	    o, "service",
	    f->svc == DBX_EMU_SVC_NONE ? NULL : json_object_new_string(dbx_emu_svc_name(f->svc)));
	json_object_object_add(o, "method",
			       f->method[0] ? json_object_new_string(f->method) : NULL);
	json_object_object_add(o, "path_prefix",
			       f->path_prefix ? json_object_new_string(f->path_prefix) : NULL);
	json_object_object_add(o, "latency_ms", json_object_new_int(f->latency_ms));
	json_object_object_add(o, "status", json_object_new_int((int)f->status));
	json_object_object_add(o, "retry_after",
			       f->retry_after[0] ? json_object_new_string(f->retry_after) : NULL);
	json_object_object_add(o, "body",
			       f->body
				   ? json_object_new_string_len(
					 f->body, (int)(f->body_len > 4096 ? 4096 : f->body_len))
				   : NULL);
	json_object_object_add(o, "body_len", json_object_new_int64((int64_t)f->body_len));
	json_object_object_add(o, "drop", json_object_new_boolean(f->drop));
	json_object_object_add(o, "count", json_object_new_int64(f->count));
	json_object_object_add(o, "retry_after_ms",
			       f->retry_after_ms >= 0 ? json_object_new_int(f->retry_after_ms)
						      : NULL);
	json_object_object_add(o, "retry_after_date_s",
			       f->has_retry_date ? json_object_new_int(f->retry_after_date_s)
						 : NULL);
	json_object_object_add(o, "stall_ms", json_object_new_int(f->stall_ms));
	json_object_object_add(o, "drop_after", json_object_new_boolean(f->drop_after));
	json_object_object_add(o, "next_link",
			       f->next_link[0] ? json_object_new_string(f->next_link) : NULL);
	json_object_object_add(o, "headers", json_object_get(f->headers));
	return o;
}

static void faults_get(struct dbx_emu *e, struct dbx_emu_req *q, struct dbx_emu_reply *r,
		       const char *rest)
{
	struct json_object *a = json_object_new_array();
	size_t i;

	for (i = 0; i < e->nfaults; i++)
		json_object_array_add(a, fault_json(&e->faults[i]));
	dbx_emu_reply_json(r, 200, a);
}

/* Standard base64 (padded) to bytes, NUL-terminated; NULL when malformed. */
static char *b64_decode(const char *in, size_t *len)
{
	size_t n = strlen(in), pad = 0;
	unsigned char *out;
	int got;

	if (n % 4)
		return NULL;
	out = malloc(n / 4 * 3 + 1);
	if (!out)
		return NULL;
	got = n ? EVP_DecodeBlock(out, (const unsigned char *)in, (int)n) : 0;
	if (got < 0) {
		free(out);
		return NULL;
	}
	if (n && in[n - 1] == '=')
		pad++;
	if (n > 1 && in[n - 2] == '=')
		pad++;
	*len = (size_t)got - pad;
	out[*len] = '\0';
	return (char *)out;
}

static void fault_add(struct dbx_emu *e, struct dbx_emu_req *q, struct dbx_emu_reply *r,
		      const char *rest)
{
	struct json_object *o = parse_body(q, r), *v, *out;
	struct dbx_emu_fault f = {0};
	const char *s;

	if (!o)
		return;
	f.count = -1;
	if (json_object_object_get_ex(o, "service", &v) && v) {
		f.svc = svc_from_name(json_object_get_string(v));
		if ((int)f.svc < 0) {
			admin_error(r, 400, "service must be arm, keyvault, entra, imds or null");
			goto out;
		}
	}
	s = dbx_emu_jstr(o, "method");
	if (s)
		snprintf(f.method, sizeof(f.method), "%s", s);
	s = dbx_emu_jstr(o, "path_prefix");
	if (s)
		f.path_prefix = strdup(s);
	if (json_object_object_get_ex(o, "latency_ms", &v) && v)
		f.latency_ms = json_object_get_int(v);
	if (json_object_object_get_ex(o, "status", &v) && v)
		f.status = (unsigned int)json_object_get_int(v);
	if (json_object_object_get_ex(o, "retry_after", &v) && v)
		snprintf(f.retry_after, sizeof(f.retry_after), "%s", json_object_get_string(v));
	if (json_object_object_get_ex(o, "body", &v) && v) {
		s = json_object_is_type(v, json_type_string)
			? json_object_get_string(v)
			: json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN);
		f.body = strdup(s);
		f.body_len = strlen(s);
	}
	s = dbx_emu_jstr(o, "body_b64");
	if (s) {
		free(f.body);
		f.body = b64_decode(s, &f.body_len);
		if (!f.body) {
			admin_error(r, 400, "body_b64 must be base64");
			goto out;
		}
	}
	if (json_object_object_get_ex(o, "drop", &v) && v)
		f.drop = json_object_get_boolean(v);
	if (json_object_object_get_ex(o, "count", &v) && v)
		f.count = json_object_get_int64(v);
	f.retry_after_ms = -1;
	if (json_object_object_get_ex(o, "retry_after_ms", &v) && v)
		f.retry_after_ms = json_object_get_int(v);
	if (json_object_object_get_ex(o, "retry_after_date_s", &v) && v) {
		f.has_retry_date = true;
		f.retry_after_date_s = json_object_get_int(v);
	}
	if (json_object_object_get_ex(o, "stall_ms", &v) && v)
		f.stall_ms = json_object_get_int(v);
	if (json_object_object_get_ex(o, "drop_after", &v) && v)
		f.drop_after = json_object_get_boolean(v);
	s = dbx_emu_jstr(o, "next_link");
	if (s) {
		if (strcmp(s, "loop") && strcmp(s, "foreign") && strcmp(s, "http")) {
			admin_error(r, 400, "next_link must be loop, foreign or http");
			goto out;
		}
		snprintf(f.next_link, sizeof(f.next_link), "%s", s);
	}
	if (json_object_object_get_ex(o, "headers", &v) && v) {
		if (!json_object_is_type(v, json_type_object)) {
			admin_error(r, 400, "headers must be an object of strings");
			goto out;
		}
		f.headers = json_object_get(v);
	}
	if (f.status && (f.status < 100 || f.status > 599)) {
		admin_error(r, 400, "status must be an HTTP status code");
		goto out;
	}
	if (f.stall_ms < 0 || f.stall_ms > 600000) {
		admin_error(r, 400, "stall_ms must be 0 .. 600000");
		goto out;
	}
	if (e->nfaults == e->cap_faults) {
		size_t cap = e->cap_faults ? 2 * e->cap_faults : 8;
		struct dbx_emu_fault *nf = realloc(e->faults, cap * sizeof(*nf));

		if (!nf) {
			admin_error(r, 500, "out of memory");
			goto out;
		}
		e->faults = nf;
		e->cap_faults = cap;
	}
	f.id = e->next_fault_id++;
	e->faults[e->nfaults++] = f;
	f.path_prefix = f.body = NULL;
	f.headers = NULL;
	out = json_object_new_object();
	json_object_object_add(out, "id", json_object_new_int(e->faults[e->nfaults - 1].id));
	dbx_emu_reply_json(r, 200, out);
out:
	free(f.path_prefix);
	free(f.body);
	json_object_put(f.headers);
	json_object_put(o);
}

static void faults_clear(struct dbx_emu *e, struct dbx_emu_req *q, struct dbx_emu_reply *r,
			 const char *rest)
{
	size_t i, keep = 0;
	int id = rest && *rest == '/' ? atoi(rest + 1) : 0;

	for (i = 0; i < e->nfaults; i++) {
		if (id && e->faults[i].id != id) {
			e->faults[keep++] = e->faults[i];
			continue;
		}
		free(e->faults[i].path_prefix);
		free(e->faults[i].body);
		json_object_put(e->faults[i].headers);
	}
	e->nfaults = keep;
	admin_ok(r);
}

static void latency_set(struct dbx_emu *e, struct dbx_emu_req *q, struct dbx_emu_reply *r,
			const char *rest)
{
	struct json_object *o = parse_body(q, r), *v;

	if (!o)
		return;
	if (!json_object_object_get_ex(o, "ms", &v) || json_object_get_int(v) < 0) {
		admin_error(r, 400, "body must be {\"ms\": N} with N >= 0");
	} else {
		e->latency_ms = json_object_get_int(v);
		admin_ok(r);
	}
	json_object_put(o);
}

/* ---- world mutations: jobs, vaults, keys, policies, identities, tenants ---- */

/* Remove element o from array a; true when found. */
static bool array_remove(struct json_object *a, struct json_object *o)
{
	size_t i;

	for (i = 0; a && i < json_object_array_length(a); i++) {
		if (json_object_array_get_idx(a, i) == o) {
			json_object_array_del_idx(a, i, 1);
			return true;
		}
	}
	return false;
}

/* DELETE /admin/jobs/S/RG/NAME: the job is gone, as if deleted in the portal. */
static void job_delete(struct dbx_emu *e, struct dbx_emu_req *q, struct dbx_emu_reply *r,
		       const char *rest)
{
	char buf[1024], *seg[4];

	(void)q;
	snprintf(buf, sizeof(buf), "%s", rest);
	if (dbx_emu_split_path(buf, seg, 4) != 3) {
		admin_error(r, 400, "use /admin/jobs/SUBSCRIPTION/RESOURCEGROUP/NAME");
		return;
	}
	if (array_remove(dbx_emu_world_array(e, "jobs"),
			 dbx_emu_find_job(e, seg[0], seg[1], seg[2])))
		admin_ok(r);
	else
		admin_error(r, 404, "no such job");
}

/* Copy body[key] into o[key] when the body has it (null included). */
static void copy_field(struct json_object *o, struct json_object *body, const char *key)
{
	struct json_object *v;

	if (json_object_object_get_ex(body, key, &v))
		json_object_object_add(o, key, v ? json_object_get(v) : NULL);
}

/* POST /admin/jobs/S/RG/NAME/advance {"status": "DataCopy"} */
static void job_post(struct dbx_emu *e, struct dbx_emu_req *q, struct dbx_emu_reply *r,
		     const char *rest)
{
	char buf[1024], *seg[5];
	struct json_object *job, *body = NULL, *out, *err;
	const char *status;

	snprintf(buf, sizeof(buf), "%s", rest);
	if (dbx_emu_split_path(buf, seg, 5) != 4 || strcmp(seg[3], "advance")) {
		admin_error(r, 404, "use /admin/jobs/SUBSCRIPTION/RESOURCEGROUP/NAME/advance");
		return;
	}
	job = dbx_emu_find_job(e, seg[0], seg[1], seg[2]);
	if (!job) {
		admin_error(r, 404, "no such job");
		return;
	}
	body = parse_body(q, r);
	if (!body)
		return;
	status = dbx_emu_jstr(body, "status");
	if (!status || dbx_emu_job_advance(e, job, status)) {
		admin_error(r, 400,
			    "status must be one of DeviceOrdered, DevicePrepared, Dispatched, "
			    "Delivered, PickedUp, AtAzureDC, DataCopy, Completed");
		goto out;
	}
	out = json_object_new_object();
	json_object_object_add(out, "ok", json_object_new_boolean(1));
	err = dbx_emu_jpath(job, "properties.error");
	json_object_object_add(
	    out, "error",
	    dbx_emu_jstr(err, "code") ? json_object_new_string(dbx_emu_jstr(err, "code")) : NULL);
	dbx_emu_reply_json(r, 200, out);
out:
	json_object_put(body);
}

static struct json_object *find_key_obj(struct json_object *vault, const char *name)
{
	struct json_object *keys = dbx_emu_jarray(vault, "keys");
	size_t i;

	for (i = 0; keys && i < json_object_array_length(keys); i++) {
		struct json_object *k = json_object_array_get_idx(keys, i);
		const char *n = dbx_emu_jstr(k, "name");

		if (n && !strcasecmp(n, name))
			return k;
	}
	return NULL;
}

/* POST /admin/vaults/V/keys {"name","kty","key_size"}: a new key or version. */
static void key_add(struct dbx_emu_reply *r, struct json_object *vault, struct json_object *body)
{
	struct json_object *key, *vers, *ver, *keys, *v, *out;
	const char *name = dbx_emu_jstr(body, "name"), *uri;
	char hex[33];
	int64_t now = (int64_t)time(NULL);

	if (!name || !*name) {
		admin_error(r, 400, "body must name the key: {\"name\", \"kty\", \"key_size\"}");
		return;
	}
	key = find_key_obj(vault, name);
	if (!key) {
		keys = dbx_emu_jarray(vault, "keys");
		if (!keys) {
			keys = json_object_new_array();
			json_object_object_add(vault, "keys", keys);
		}
		key = json_object_new_object();
		json_object_object_add(key, "name", json_object_new_string(name));
		json_object_object_add(key, "tags", json_object_new_object());
		json_object_array_add(keys, key);
	}
	vers = dbx_emu_jarray(key, "versions");
	if (!vers) {
		vers = json_object_new_array();
		json_object_object_add(key, "versions", vers);
	}
	dbx_emu_rand_hex(hex, 16);
	ver = json_object_new_object();
	json_object_object_add(ver, "version", json_object_new_string(hex));
	json_object_object_add(
	    ver, "kty",
	    json_object_new_string(dbx_emu_jstr(body, "kty") ? dbx_emu_jstr(body, "kty") : "RSA"));
	json_object_object_add(ver, "key_size",
			       json_object_new_int(json_object_object_get_ex(body, "key_size", &v)
						       ? json_object_get_int(v)
						       : 2048));
	json_object_object_add(ver, "enabled", json_object_new_boolean(1));
	json_object_object_add(ver, "exp", NULL);
	json_object_object_add(ver, "nbf", NULL);
	copy_field(ver, body, "enabled");
	copy_field(ver, body, "exp");
	copy_field(ver, body, "nbf");
	copy_field(ver, body, "crv");
	json_object_object_add(ver, "created", json_object_new_int64(now));
	json_object_object_add(ver, "updated", json_object_new_int64(now));
	json_object_array_add(vers, ver);
	out = json_object_new_object();
	json_object_object_add(out, "ok", json_object_new_boolean(1));
	json_object_object_add(out, "version", json_object_new_string(hex));
	uri = dbx_emu_jstr(dbx_emu_jpath(vault, "properties"), "vaultUri");
	if (uri) {
		char kid[1024];

		snprintf(kid, sizeof(kid), "%.*s/keys/%s/%s", (int)strcspn(uri + 8, "/") + 8, uri,
			 name, hex);
		json_object_object_add(out, "kid", json_object_new_string(kid));
	}
	dbx_emu_reply_json(r, 200, out);
}

/* POST /admin/vaults/V/keys/K {"version"?, "enabled", "exp", "nbf"} */
static void key_set(struct dbx_emu_reply *r, struct json_object *vault, const char *name,
		    struct json_object *body)
{
	struct json_object *key = find_key_obj(vault, name), *vers, *ver = NULL;
	const char *want = dbx_emu_jstr(body, "version");
	size_t i, n;

	vers = key ? dbx_emu_jarray(key, "versions") : NULL;
	n = vers ? json_object_array_length(vers) : 0;
	for (i = 0; i < n; i++) {
		struct json_object *v = json_object_array_get_idx(vers, i);
		const char *id = dbx_emu_jstr(v, "version");

		if (!want || (id && !strcasecmp(id, want)))
			ver = v;
	}
	if (!ver) {
		admin_error(r, 404, "no such key or version");
		return;
	}
	copy_field(ver, body, "enabled");
	copy_field(ver, body, "exp");
	copy_field(ver, body, "nbf");
	json_object_object_add(ver, "updated", json_object_new_int64((int64_t)time(NULL)));
	admin_ok(r);
}

/* POST /admin/vaults/V/policies {"objectId", "tenantId"?, "permissions": {"keys": [...]}} */
static void policy_set(struct dbx_emu_reply *r, struct json_object *vault, struct json_object *body)
{
	struct json_object *props = dbx_emu_jpath(vault, "properties"), *pols, *p, *perms;
	const char *oid = dbx_emu_jstr(body, "objectId");
	const char *tid = dbx_emu_jstr(body, "tenantId");
	size_t i;

	if (!oid || !props || !json_object_object_get_ex(body, "permissions", &perms) ||
	    !json_object_is_type(perms, json_type_object)) {
		admin_error(r, 400,
			    "body must be {\"objectId\", \"permissions\": {\"keys\": [...]}}");
		return;
	}
	pols = dbx_emu_jarray(props, "accessPolicies");
	if (!pols) {
		pols = json_object_new_array();
		json_object_object_add(props, "accessPolicies", pols);
	}
	for (i = json_object_array_length(pols); i-- > 0;) {
		const char *o = dbx_emu_jstr(json_object_array_get_idx(pols, i), "objectId");

		if (o && !strcasecmp(o, oid))
			json_object_array_del_idx(pols, i, 1);
	}
	p = json_object_new_object();
	if (!tid)
		tid = dbx_emu_jstr(props, "tenantId");
	json_object_object_add(p, "tenantId", json_object_new_string(tid ? tid : ""));
	json_object_object_add(p, "objectId", json_object_new_string(oid));
	json_object_object_add(p, "permissions", json_object_get(perms));
	json_object_array_add(pols, p);
	admin_ok(r);
}

/* POST /admin/vaults/V {"enablePurgeProtection", "enableSoftDelete", "enableRbacAuthorization"} */
static void vault_props(struct dbx_emu_reply *r, struct json_object *vault,
			struct json_object *body)
{
	static const char *const keys[] = {"enablePurgeProtection", "enableSoftDelete",
					   "enableRbacAuthorization", "softDeleteRetentionInDays",
					   "publicNetworkAccess"};
	struct json_object *props = dbx_emu_jpath(vault, "properties"), *v;
	size_t i;

	if (!props) {
		admin_error(r, 400, "the vault has no properties");
		return;
	}
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (!json_object_object_get_ex(body, keys[i], &v))
			continue;
		if (v)
			json_object_object_add(props, keys[i], json_object_get(v));
		else
			json_object_object_del(props, keys[i]);
	}
	admin_ok(r);
}

/* POST /admin/vaults/V[/keys[/K]|/policies] */
static void vault_post(struct dbx_emu *e, struct dbx_emu_req *q, struct dbx_emu_reply *r,
		       const char *rest)
{
	char buf[1024], *seg[4];
	struct json_object *vault, *body;
	int n;

	snprintf(buf, sizeof(buf), "%s", rest);
	n = dbx_emu_split_path(buf, seg, 4);
	vault = n >= 1 ? dbx_emu_find_vault_by_name(e, seg[0]) : NULL;
	if (!vault) {
		admin_error(r, 404, "no such vault");
		return;
	}
	body = parse_body(q, r);
	if (!body)
		return;
	if (n == 1)
		vault_props(r, vault, body);
	else if (n == 2 && !strcmp(seg[1], "keys"))
		key_add(r, vault, body);
	else if (n == 3 && !strcmp(seg[1], "keys"))
		key_set(r, vault, seg[2], body);
	else if (n == 2 && !strcmp(seg[1], "policies"))
		policy_set(r, vault, body);
	else
		admin_error(r, 404, "no such admin endpoint");
	json_object_put(body);
}

/* DELETE /admin/vaults/V, /admin/vaults/V/keys/K, /admin/vaults/V/policies/OBJECTID */
static void vault_delete(struct dbx_emu *e, struct dbx_emu_req *q, struct dbx_emu_reply *r,
			 const char *rest)
{
	char buf[1024], *seg[4];
	struct json_object *vault, *pols;
	bool found = false;
	size_t i;
	int n;

	snprintf(buf, sizeof(buf), "%s", rest);
	n = dbx_emu_split_path(buf, seg, 4);
	vault = n >= 1 ? dbx_emu_find_vault_by_name(e, seg[0]) : NULL;
	if (!vault) {
		admin_error(r, 404, "no such vault");
		return;
	}
	if (n == 1) {
		found = array_remove(dbx_emu_world_array(e, "vaults"), vault);
	} else if (n == 3 && !strcmp(seg[1], "keys")) {
		found = array_remove(dbx_emu_jarray(vault, "keys"), find_key_obj(vault, seg[2]));
	} else if (n == 3 && !strcmp(seg[1], "policies")) {
		pols = dbx_emu_jarray(dbx_emu_jpath(vault, "properties"), "accessPolicies");
		for (i = pols ? json_object_array_length(pols) : 0; i-- > 0;) {
			const char *o =
			    dbx_emu_jstr(json_object_array_get_idx(pols, i), "objectId");

			if (o && !strcasecmp(o, seg[2])) {
				json_object_array_del_idx(pols, i, 1);
				found = true;
			}
		}
	} else {
		admin_error(r, 404, "no such admin endpoint");
		return;
	}
	if (found)
		admin_ok(r);
	else
		admin_error(r, 404, "no such vault, key or policy");
}

/*
 * POST /admin/identities: add a user-assigned identity. Body: "id" (or
 * "subscriptionId", "resourceGroup", "name"), optional "principalId",
 * "clientId" (fresh GUIDs), "tenantId" (the subscription's), "location".
 * Answers the stored identity.
 */
static void identity_add(struct dbx_emu *e, struct dbx_emu_req *q, struct dbx_emu_reply *r,
			 const char *rest)
{
	struct json_object *body = parse_body(q, r), *o, *a, *sub;
	char id[1024], s[256], g[256], n[256], guid[37];
	const char *v;

	if (!body)
		return;
	v = dbx_emu_jstr(body, "id");
	if (v)
		snprintf(id, sizeof(id), "%s", v);
	else if (dbx_emu_jstr(body, "subscriptionId") && dbx_emu_jstr(body, "resourceGroup") &&
		 dbx_emu_jstr(body, "name"))
		snprintf(id, sizeof(id),
			 "/subscriptions/%s/resourceGroups/%s/providers/"
			 "Microsoft.ManagedIdentity/userAssignedIdentities/%s",
			 dbx_emu_jstr(body, "subscriptionId"), dbx_emu_jstr(body, "resourceGroup"),
			 dbx_emu_jstr(body, "name"));
	else
		id[0] = '\0';
	if (!dbx_emu_id_parse(id, s, g, n, sizeof(s))) {
		admin_error(r, 400,
			    "give \"id\" or \"subscriptionId\", \"resourceGroup\" and \"name\"");
		goto out;
	}
	sub = dbx_emu_find_subscription(e, s);
	o = json_object_new_object();
	json_object_object_add(o, "id", json_object_new_string(id));
	json_object_object_add(o, "name", json_object_new_string(n));
	json_object_object_add(o, "location",
			       json_object_new_string(dbx_emu_jstr(body, "location")
							  ? dbx_emu_jstr(body, "location")
							  : "westus"));
	dbx_emu_guid(guid);
	v = dbx_emu_jstr(body, "principalId");
	json_object_object_add(o, "principalId", json_object_new_string(v ? v : guid));
	dbx_emu_guid(guid);
	v = dbx_emu_jstr(body, "clientId");
	json_object_object_add(o, "clientId", json_object_new_string(v ? v : guid));
	v = dbx_emu_jstr(body, "tenantId") ? dbx_emu_jstr(body, "tenantId")
					   : dbx_emu_jstr(sub, "tenantId");
	json_object_object_add(o, "tenantId", json_object_new_string(v ? v : ""));
	a = dbx_emu_world_array(e, "identities");
	if (!a) {
		a = json_object_new_array();
		json_object_object_add(e->world, "identities", a);
	}
	array_remove(a, dbx_emu_find_resource(e, "identities", s, g, n));
	json_object_array_add(a, json_object_get(o));
	dbx_emu_reply_json(r, 200, o);
out:
	json_object_put(body);
}

/* DELETE /admin/identities/NAME: every user-assigned identity of that name. */
static void identity_delete(struct dbx_emu *e, struct dbx_emu_req *q, struct dbx_emu_reply *r,
			    const char *rest)
{
	struct json_object *a = dbx_emu_world_array(e, "identities");
	const char *name = rest && *rest == '/' ? rest + 1 : "";
	bool found = false;
	size_t i;

	for (i = a ? json_object_array_length(a) : 0; i-- > 0;) {
		const char *n = dbx_emu_jstr(json_object_array_get_idx(a, i), "name");

		if (n && *name && !strcasecmp(n, name)) {
			json_object_array_del_idx(a, i, 1);
			found = true;
		}
	}
	if (found)
		admin_ok(r);
	else
		admin_error(r, 404, "no such identity");
}

/*
 * POST /admin/clients: add or replace (same tenant_id and client_id) an app
 * registration: {tenant_id, client_id, client_secret?, object_id?,
 * certificate_pem?, federated_token?, federated_subjects?, token_lifetime_s?}.
 */
static void client_add(struct dbx_emu *e, struct dbx_emu_req *q, struct dbx_emu_reply *r,
		       const char *rest)
{
	struct json_object *body = parse_body(q, r), *a, *old;
	const char *t, *c;

	if (!body)
		return;
	t = dbx_emu_jstr(body, "tenant_id");
	c = dbx_emu_jstr(body, "client_id");
	if (!t || !c || !*t || !*c || strlen(t) >= 64 || strlen(c) >= 64) {
		admin_error(r, 400, "body must carry \"tenant_id\" and \"client_id\"");
		json_object_put(body);
		return;
	}
	a = dbx_emu_world_array(e, "clients");
	if (!a) {
		a = json_object_new_array();
		json_object_object_add(e->world, "clients", a);
	}
	old = dbx_emu_find_client(e, t, c);
	if (old)
		array_remove(a, old);
	json_object_array_add(a, body);
	admin_ok(r);
}

/* POST /admin/limits {"user_assigned_identities": N} */
static void limits_set(struct dbx_emu *e, struct dbx_emu_req *q, struct dbx_emu_reply *r,
		       const char *rest)
{
	struct json_object *body = parse_body(q, r), *v, *lim;

	if (!body)
		return;
	if (!json_object_object_get_ex(body, "user_assigned_identities", &v) ||
	    !json_object_is_type(v, json_type_int) || json_object_get_int(v) < 0) {
		admin_error(r, 400, "body must be {\"user_assigned_identities\": N} with N >= 0");
		goto out;
	}
	lim = dbx_emu_jpath(e->world, "limits");
	if (!lim || !json_object_is_type(lim, json_type_object)) {
		lim = json_object_new_object();
		json_object_object_add(e->world, "limits", lim);
	}
	json_object_object_add(lim, "user_assigned_identities", json_object_get(v));
	admin_ok(r);
out:
	json_object_put(body);
}

/*
 * POST /admin/subscriptions/S/tenant {"tenantId": T2}: move a subscription
 * to another tenant. Tokens of the tenant it came from keep working for it
 * (the admin who moved it still manages it); identities keep their tenant.
 */
static void sub_tenant(struct dbx_emu *e, struct dbx_emu_req *q, struct dbx_emu_reply *r,
		       const char *rest)
{
	char buf[512], *seg[3];
	struct json_object *sub, *body, *tenants;
	const char *t2, *t1;

	snprintf(buf, sizeof(buf), "%s", rest);
	if (dbx_emu_split_path(buf, seg, 3) != 2 || strcmp(seg[1], "tenant")) {
		admin_error(r, 404, "use /admin/subscriptions/S/tenant");
		return;
	}
	sub = dbx_emu_find_subscription(e, seg[0]);
	if (!sub) {
		admin_error(r, 404, "no such subscription");
		return;
	}
	body = parse_body(q, r);
	if (!body)
		return;
	t2 = dbx_emu_jstr(body, "tenantId");
	if (!t2 || !*t2 || strlen(t2) >= 64) {
		admin_error(r, 400, "body must be {\"tenantId\": \"...\"}");
		goto out;
	}
	t1 = dbx_emu_jstr(sub, "tenantId");
	if (t1 && !dbx_emu_jstr(sub, "movedFromTenantId"))
		json_object_object_add(sub, "movedFromTenantId", json_object_new_string(t1));
	json_object_object_add(sub, "tenantId", json_object_new_string(t2));
	if (!dbx_emu_tenant_known(e, t2)) {
		tenants = dbx_emu_world_array(e, "tenants");
		if (!tenants) {
			tenants = json_object_new_array();
			json_object_object_add(e->world, "tenants", tenants);
		}
		json_object_array_add(tenants, json_object_new_string(t2));
	}
	admin_ok(r);
out:
	json_object_put(body);
}

/* POST /admin/fail-next-patch {"count": N}: the next N accepted PATCHes fail. */
static void fail_next_patch(struct dbx_emu *e, struct dbx_emu_req *q, struct dbx_emu_reply *r,
			    const char *rest)
{
	struct json_object *body = parse_body(q, r), *v = NULL;

	if (!body)
		return;
	if (json_object_object_get_ex(body, "count", &v) && json_object_get_int64(v) < 0) {
		admin_error(r, 400, "count must be >= 0");
	} else {
		e->fail_patches = v ? json_object_get_int64(v) : 1;
		admin_ok(r);
	}
	json_object_put(body);
}

/* The settings of POST /admin/operations as JSON (null where unset). */
static struct json_object *opconf_json(const struct dbx_emu_opconf *oc)
{
	static const char *const locs[] = {"normal", "foreign", "http"};
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "complete_after_ms",
			       oc->delayed ? json_object_new_int64(oc->complete_after_ms) : NULL);
	json_object_object_add(o, "retry_after",
			       oc->retry_after[0] ? json_object_new_string(oc->retry_after) : NULL);
	json_object_object_add(o, "location", json_object_new_string(locs[oc->location]));
	json_object_object_add(o, "drop_polls", json_object_new_int64(oc->drop_polls));
	return o;
}

/* A non-negative integer member, or null/absent (*set false); false when it is neither. */
static bool opconf_count(struct json_object *v, bool *set, long *out)
{
	*set = false;
	if (!v || json_object_is_type(v, json_type_null))
		return true;
	if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0)
		return false;
	*set = true;
	*out = (long)json_object_get_int64(v);
	return true;
}

/*
 * POST /admin/operations {"complete_after_ms", "retry_after", "location",
 * "drop_polls"}: how PATCHes accepted from now on run. Keys left out take
 * their defaults, so {} is today's behaviour again (as DELETE).
 */
static void operations_set(struct dbx_emu *e, struct dbx_emu_req *q, struct dbx_emu_reply *r,
			   const char *rest)
{
	struct json_object *body = parse_body(q, r), *v;
	struct dbx_emu_opconf oc = {0};
	bool set;

	(void)rest;
	if (!body)
		return;
	json_object_object_foreach(body, key, val)
	{
		(void)val;
		if (strcmp(key, "complete_after_ms") && strcmp(key, "retry_after") &&
		    strcmp(key, "location") && strcmp(key, "drop_polls")) {
			admin_error(r, 400,
				    "unknown key: use complete_after_ms, retry_after, "
				    "location, drop_polls");
			goto out;
		}
	}
	v = dbx_emu_jpath(body, "complete_after_ms");
	if (!opconf_count(v, &oc.delayed, &oc.complete_after_ms)) {
		admin_error(r, 400, "complete_after_ms must be a number >= 0 or null");
		goto out;
	}
	v = dbx_emu_jpath(body, "retry_after");
	if (v && !json_object_is_type(v, json_type_null)) {
		const char *ra = json_object_get_string(v);

		if (!json_object_is_type(v, json_type_string) || !*ra ||
		    strlen(ra) >= sizeof(oc.retry_after) || strpbrk(ra, "\r\n")) {
			admin_error(r, 400, "retry_after must be a short string or null");
			goto out;
		}
		snprintf(oc.retry_after, sizeof(oc.retry_after), "%s", ra);
	}
	v = dbx_emu_jpath(body, "location");
	if (v && !json_object_is_type(v, json_type_null)) {
		const char *l = json_object_get_string(v);

		if (!json_object_is_type(v, json_type_string))
			l = "";
		if (!strcmp(l, "normal")) {
			oc.location = DBX_EMU_OPLOC_NORMAL;
		} else if (!strcmp(l, "foreign")) {
			oc.location = DBX_EMU_OPLOC_FOREIGN;
		} else if (!strcmp(l, "http")) {
			oc.location = DBX_EMU_OPLOC_HTTP;
		} else {
			admin_error(r, 400, "location must be normal, foreign or http");
			goto out;
		}
	}
	if (!opconf_count(dbx_emu_jpath(body, "drop_polls"), &set, &oc.drop_polls)) {
		admin_error(r, 400, "drop_polls must be a number >= 0");
		goto out;
	}
	e->opconf = oc;
	dbx_emu_reply_json(r, 200, opconf_json(&e->opconf));
out:
	json_object_put(body);
}

static void operations_get(struct dbx_emu *e, struct dbx_emu_req *q, struct dbx_emu_reply *r,
			   const char *rest)
{
	(void)q;
	(void)rest;
	dbx_emu_reply_json(r, 200, opconf_json(&e->opconf));
}

static void operations_reset(struct dbx_emu *e, struct dbx_emu_req *q, struct dbx_emu_reply *r,
			     const char *rest)
{
	(void)q;
	(void)rest;
	memset(&e->opconf, 0, sizeof(e->opconf));
	dbx_emu_reply_json(r, 200, opconf_json(&e->opconf));
}

/*
 * One row per admin operation. prefix rows match path == route or a path
 * continuing with '/', and get the remainder; unlocked rows take e->lock
 * themselves.
 */
static const struct admin_route {
	const char *method;
	const char *path;
	bool prefix;
	bool unlocked;
	void (*fn)(struct dbx_emu *e, struct dbx_emu_req *q, struct dbx_emu_reply *r,
		   const char *rest);
} admin_routes[] = {
    {"GET", "/admin/counters", false, false, counters_get},
    {"POST", "/admin/counters/reset", false, false, counters_reset},
    {"GET", "/admin/requests", false, false, requests_get},
    {"POST", "/admin/requests/reset", false, false, requests_reset},
    {"GET", "/admin/world", false, false, world_get},
    {"PUT", "/admin/world", false, true, world_put},
    {"GET", "/admin/jobs", true, false, job_get},
    {"PUT", "/admin/jobs", true, false, job_put},
    {"POST", "/admin/jobs", true, false, job_post},
    {"DELETE", "/admin/jobs", true, false, job_delete},
    {"POST", "/admin/vaults", true, false, vault_post},
    {"DELETE", "/admin/vaults", true, false, vault_delete},
    {"POST", "/admin/identities", false, false, identity_add},
    {"DELETE", "/admin/identities", true, false, identity_delete},
    {"POST", "/admin/limits", false, false, limits_set},
    {"POST", "/admin/clients", false, false, client_add},
    {"POST", "/admin/subscriptions", true, false, sub_tenant},
    {"POST", "/admin/fail-next-patch", false, false, fail_next_patch},
    {"GET", "/admin/operations", false, false, operations_get},
    {"POST", "/admin/operations", false, false, operations_set},
    {"DELETE", "/admin/operations", false, false, operations_reset},
    {"POST", "/admin/tokens/expire", false, false, tokens_expire},
    {"POST", "/admin/tokens/revoke", false, false, tokens_revoke},
    {"POST", "/admin/tokens/lifetime", false, false, tokens_lifetime},
    {"GET", "/admin/tokens/stats", false, false, tokens_stats},
    {"GET", "/admin/faults", false, false, faults_get},
    {"POST", "/admin/faults", false, false, fault_add},
    {"DELETE", "/admin/faults", true, false, faults_clear},
    {"POST", "/admin/latency", false, false, latency_set},
};

void dbx_emu_admin_handle(struct dbx_emu *e, struct dbx_emu_req *q, struct dbx_emu_reply *r)
{
	size_t i, pl;
	bool path_matched = false;

	for (i = 0; i < sizeof(admin_routes) / sizeof(admin_routes[0]); i++) {
		const struct admin_route *rt = &admin_routes[i];
		const char *rest;

		pl = strlen(rt->path);
		if (strncmp(q->path, rt->path, pl))
			continue;
		rest = q->path + pl;
		if (*rest && !(rt->prefix && *rest == '/'))
			continue;
		path_matched = true;
		if (strcmp(q->method, rt->method))
			continue;
		if (rt->unlocked) {
			rt->fn(e, q, r, rest);
		} else {
			pthread_mutex_lock(&e->lock);
			dbx_emu_ops_settle(e); /* what the admin reads includes changes now due */
			rt->fn(e, q, r, rest);
			pthread_mutex_unlock(&e->lock);
		}
		return;
	}
	admin_error(r, path_matched ? 405 : 404,
		    path_matched ? "method not allowed" : "no such admin endpoint");
}
