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
 *   GET    /admin/faults              active fault rules
 *   POST   /admin/faults              add a rule -> {"id": k}
 *   DELETE /admin/faults              clear all rules
 *   DELETE /admin/faults/ID           remove one rule
 *   POST   /admin/latency {"ms": N}   global latency for Azure responses
 * New admin operations are one row in admin_routes[].
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

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
		r->body = strdup(f->body);
		r->body_len = r->body ? strlen(r->body) : 0;
		r->content_type = "application/json; charset=utf-8";
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
	if (f->retry_after[0])
		dbx_emu_reply_header(r, "Retry-After", "%s", f->retry_after);
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
	json_object_object_add(o, "body", f->body ? json_object_new_string(f->body) : NULL);
	json_object_object_add(o, "drop", json_object_new_boolean(f->drop));
	json_object_object_add(o, "count", json_object_new_int64(f->count));
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
			admin_error(r, 400, "service must be arm, keyvault, entra or null");
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
	if (json_object_object_get_ex(o, "body", &v) && v)
		f.body = strdup(json_object_is_type(v, json_type_string)
				    ? json_object_get_string(v)
				    : json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
	if (json_object_object_get_ex(o, "drop", &v) && v)
		f.drop = json_object_get_boolean(v);
	if (json_object_object_get_ex(o, "count", &v) && v)
		f.count = json_object_get_int64(v);
	if (f.status && (f.status < 100 || f.status > 599)) {
		admin_error(r, 400, "status must be an HTTP status code");
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
	out = json_object_new_object();
	json_object_object_add(out, "id", json_object_new_int(e->faults[e->nfaults - 1].id));
	dbx_emu_reply_json(r, 200, out);
out:
	free(f.path_prefix);
	free(f.body);
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
    {"POST", "/admin/tokens/expire", false, false, tokens_expire},
    {"POST", "/admin/tokens/revoke", false, false, tokens_revoke},
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
			rt->fn(e, q, r, rest);
			pthread_mutex_unlock(&e->lock);
		}
		return;
	}
	admin_error(r, path_matched ? 405 : 404,
		    path_matched ? "method not allowed" : "no such admin endpoint");
}
