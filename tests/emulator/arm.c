/*
 * arm.c: Azure Resource Manager as the emulator serves it.
 *
 * Routes (segment names match case-insensitively, as ARM does):
 *   GET /subscriptions                                   subscriptions of the caller's tenant
 *   GET /subscriptions/S                                 one subscription
 *   GET /subscriptions/S/resources?$filter=...           Resources - List (vault lookup by name)
 *   GET /subscriptions/S/providers/Microsoft.DataBox/jobs                     paged list
 *   GET /subscriptions/S/resourceGroups/RG/providers/Microsoft.DataBox/jobs   paged list
 *   GET|PATCH .../resourceGroups/RG/providers/Microsoft.DataBox/jobs/NAME     job_methods[]
 *   GET /subscriptions/S/providers/Microsoft.DataBox/locations/L/operationResults/ID
 *   GET /subscriptions/S/resourceGroups[/RG]                resource groups
 *   GET /subscriptions/S/providers/Microsoft.KeyVault/vaults  vaults of a subscription (paged)
 *   GET /subscriptions/S/providers/Microsoft.ManagedIdentity/userAssignedIdentities  (paged)
 *   GET .../resourceGroups/RG/providers/Microsoft.ManagedIdentity/userAssignedIdentities (paged)
 *   GET .../providers/Microsoft.KeyVault/vaults/NAME
 *   GET .../providers/Microsoft.ManagedIdentity/userAssignedIdentities/NAME
 * Every request needs a bearer token for the management audience of the
 * host's cloud; errors use the ARM envelope {"error":{"code","message"}}.
 * New job operations go into job_methods[] (the seam for PATCH and friends).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "emu.h"

#define MAXSEG 16

/* clang-format off */
static const char *const databox_versions[] = {
	"2020-11-01", "2021-03-01", "2021-05-01", "2021-08-01-preview", "2021-12-01",
	"2022-02-01", "2022-09-01", "2022-10-01", "2022-12-01", "2023-03-01", "2023-12-01",
	"2024-02-01-preview", "2024-03-01-preview", "2025-02-01", "2025-07-01",
};
/* clang-format on */

struct arm_ctx {
	const char *sub, *rg, *name, *apiver;
	const struct dbx_emu_token *tok;
	char *seg[MAXSEG];
	int nseg;
};

/* Cloud-specific names for the host the request came to. */
static const char *login_host(const char *host)
{
	if (strstr(host, "usgovcloudapi.net"))
		return "login.microsoftonline.us";
	if (strstr(host, "chinacloudapi.cn"))
		return "login.chinacloudapi.cn";
	return "login.microsoftonline.com";
}

static bool audience_ok(const char *host, const char *aud)
{
	static const char *const pub[] = {"https://management.azure.com",
					  "https://management.core.windows.net", NULL};
	static const char *const gov[] = {"https://management.usgovcloudapi.net",
					  "https://management.core.usgovcloudapi.net", NULL};
	static const char *const cn[] = {"https://management.chinacloudapi.cn",
					 "https://management.core.chinacloudapi.cn", NULL};
	const char *const *set = pub;
	size_t al = strlen(aud);
	int i;

	if (strstr(host, "usgovcloudapi.net"))
		set = gov;
	else if (strstr(host, "chinacloudapi.cn"))
		set = cn;
	while (al && aud[al - 1] == '/')
		al--;
	for (i = 0; set[i]; i++)
		if (strlen(set[i]) == al && !strncasecmp(set[i], aud, al))
			return true;
	return false;
}

static void auth_fail(struct dbx_emu_reply *r, const char *host, const char *tenant,
		      const char *code, const char *msg)
{
	dbx_emu_reply_error(r, 401, code, "%s", msg);
	dbx_emu_reply_header(r, "WWW-Authenticate",
			     "Bearer authorization_uri=\"https://%s/%s\", error=\"invalid_token\", "
			     "error_description=\"%s\"",
			     login_host(host), tenant, msg);
}

/*
 * May a token of tenant manage subscription s? Its own tenant's may, and
 * after an admin tenant move (POST /admin/subscriptions/S/tenant) so may
 * the tenant it came from: the admin who moved it keeps managing it.
 */
static bool tenant_manages(struct json_object *s, const char *tenant)
{
	const char *now = dbx_emu_jstr(s, "tenantId"),
		   *before = dbx_emu_jstr(s, "movedFromTenantId");

	return (now && !strcasecmp(now, tenant)) || (before && !strcasecmp(before, tenant));
}

/* Validate the bearer token; on failure fill r and return false. */
static bool arm_auth(struct dbx_emu *e, struct dbx_emu_req *q, struct dbx_emu_reply *r,
		     struct arm_ctx *c)
{
	const char *h = dbx_emu_header(q, "Authorization");
	const char *tenant = "common";
	struct json_object *s = c->sub ? dbx_emu_find_subscription(e, c->sub) : NULL;
	const struct dbx_emu_token *t;
	char msg[1024];

	if (s && dbx_emu_jstr(s, "tenantId"))
		tenant = dbx_emu_jstr(s, "tenantId");
	if (!h || !*h) {
		auth_fail(r, q->host, tenant, "AuthenticationFailed",
			  "Authentication failed. The 'Authorization' header is missing.");
		return false;
	}
	if (strncasecmp(h, "Bearer ", 7)) {
		auth_fail(r, q->host, tenant, "AuthenticationFailed",
			  "Authentication failed. The 'Authorization' header is provided in an "
			  "invalid format.");
		return false;
	}
	t = dbx_emu_token_find(e, h + 7);
	if (!t) {
		auth_fail(r, q->host, tenant, "InvalidAuthenticationToken",
			  "The access token is invalid.");
		return false;
	}
	if (!audience_ok(q->host, t->aud)) {
		snprintf(
		    msg, sizeof(msg),
		    "The access token has been obtained for wrong audience or resource '%s'. "
		    "It should exactly match with one of the allowed audiences "
		    "'https://management.core.windows.net/','https://management.core.windows.net',"
		    "'https://management.azure.com/','https://management.azure.com'.",
		    t->aud);
		auth_fail(r, q->host, t->tenant, "InvalidAuthenticationTokenAudience", msg);
		return false;
	}
	if (t->exp <= time(NULL)) {
		struct tm tm;
		char when[64];
		time_t exp = t->exp;

		gmtime_r(&exp, &tm);
		strftime(when, sizeof(when), "%m/%d/%Y %H:%M:%S", &tm);
		snprintf(msg, sizeof(msg),
			 "The access token expiry UTC time '%s' is earlier than current UTC time.",
			 when);
		auth_fail(r, q->host, t->tenant, "ExpiredAuthenticationToken", msg);
		return false;
	}
	if (s && !tenant_manages(s, t->tenant)) {
		snprintf(
		    msg, sizeof(msg),
		    "The access token is from the wrong issuer 'https://sts.windows.net/%s/'. "
		    "It must match the tenant 'https://sts.windows.net/%s/' associated with "
		    "this subscription. Please use the authority (URL) "
		    "'https://login.windows.net/%s' to get the token. Note, if the subscription "
		    "is transferred to another tenant there is no impact to the services, but "
		    "information about new tenant could take time to propagate (up to an hour). "
		    "If you just transferred your subscription and see this error message, "
		    "please try back later.",
		    t->tenant, tenant, tenant);
		auth_fail(r, q->host, tenant, "InvalidAuthenticationTokenTenant", msg);
		return false;
	}
	c->tok = t;
	return true;
}

static bool is_date_version(const char *v)
{
	int i;

	for (i = 0; i < 10; i++) {
		if (i == 4 || i == 7) {
			if (v[i] != '-')
				return false;
		} else if (!isdigit((unsigned char)v[i])) {
			return false;
		}
	}
	return v[10] == '\0' || !strcmp(v + 10, "-preview") || !strcmp(v + 10, "-beta");
}

static bool databox_version_ok(const char *v)
{
	size_t i;

	for (i = 0; i < sizeof(databox_versions) / sizeof(databox_versions[0]); i++)
		if (!strcmp(v, databox_versions[i]))
			return true;
	return false;
}

static void no_provider(struct dbx_emu_reply *r, const char *v, const char *type, const char *loc)
{
	char list[1024] = "";
	size_t i;

	for (i = 0; i < sizeof(databox_versions) / sizeof(databox_versions[0]); i++) {
		if (i)
			strcat(list, ", ");
		strcat(list, databox_versions[i]);
	}
	dbx_emu_reply_error(r, 400, "NoRegisteredProviderFound",
			    "No registered resource provider found for location '%s' and API "
			    "version '%s' for type '%s'. The supported api-versions are '%s'. The "
			    "supported locations are 'westus, westus2, eastus, eastus2, centralus, "
			    "northeurope, westeurope, southeastasia, japaneast, australiaeast'.",
			    loc, v, type, list);
}

static bool seg_is(const struct arm_ctx *c, int i, const char *name)
{
	return i < c->nseg && !strcasecmp(c->seg[i], name);
}

/* ---- subscriptions ---- */

static struct json_object *sub_json(struct json_object *s)
{
	struct json_object *o = json_object_new_object(), *pol = json_object_new_object();
	const char *id = dbx_emu_jstr(s, "subscriptionId");
	char path[256];

	snprintf(path, sizeof(path), "/subscriptions/%s", id ? id : "");
	json_object_object_add(o, "id", json_object_new_string(path));
	json_object_object_add(o, "authorizationSource", json_object_new_string("RoleBased"));
	json_object_object_add(o, "managedByTenants", json_object_new_array());
	json_object_object_add(o, "subscriptionId", json_object_new_string(id ? id : ""));
	json_object_object_add(
	    o, "tenantId",
	    json_object_new_string(dbx_emu_jstr(s, "tenantId") ? dbx_emu_jstr(s, "tenantId") : ""));
	json_object_object_add(o, "displayName",
			       json_object_new_string(dbx_emu_jstr(s, "displayName")
							  ? dbx_emu_jstr(s, "displayName")
						      : id ? id
							   : ""));
	json_object_object_add(o, "state",
			       json_object_new_string(dbx_emu_jstr(s, "state")
							  ? dbx_emu_jstr(s, "state")
							  : "Enabled"));
	json_object_object_add(pol, "locationPlacementId",
			       json_object_new_string("Public_2014-09-01"));
	json_object_object_add(pol, "quotaId", json_object_new_string("PayAsYouGo_2014-09-01"));
	json_object_object_add(pol, "spendingLimit", json_object_new_string("Off"));
	json_object_object_add(o, "subscriptionPolicies", pol);
	return o;
}

static void subs_list(struct dbx_emu *e, struct dbx_emu_req *q, struct dbx_emu_reply *r,
		      struct arm_ctx *c)
{
	struct json_object *a = dbx_emu_world_array(e, "subscriptions");
	struct json_object *out = json_object_new_object(), *val = json_object_new_array();
	struct json_object *count = json_object_new_object();
	size_t i, n = a ? json_object_array_length(a) : 0;

	for (i = 0; i < n; i++) {
		struct json_object *s = json_object_array_get_idx(a, i);
		if (tenant_manages(s, c->tok->tenant))
			json_object_array_add(val, sub_json(s));
	}
	json_object_object_add(count, "type", json_object_new_string("Total"));
	json_object_object_add(count, "value",
			       json_object_new_int((int)json_object_array_length(val)));
	json_object_object_add(out, "value", val);
	json_object_object_add(out, "count", count);
	dbx_emu_reply_json(r, 200, out);
}

static bool sub_exists(struct dbx_emu *e, struct dbx_emu_reply *r, const char *sub)
{
	if (dbx_emu_find_subscription(e, sub))
		return true;
	dbx_emu_reply_error(r, 404, "SubscriptionNotFound",
			    "The subscription '%s' could not be found.", sub);
	return false;
}

static bool rg_exists(struct dbx_emu *e, struct dbx_emu_reply *r, const char *sub, const char *rg)
{
	if (dbx_emu_rg_known(e, sub, rg))
		return true;
	dbx_emu_reply_error(r, 404, "ResourceGroupNotFound",
			    "Resource group '%s' could not be found.", rg);
	return false;
}

/* ---- Data Box jobs ---- */

static void lower_rg_segment(struct json_object *job)
{
	const char *id = dbx_emu_jstr(job, "id");
	char *copy, *p;

	if (!id)
		return;
	copy = strdup(id);
	if (!copy)
		return;
	p = strcasestr(copy, "/resourceGroups/");
	if (p)
		memcpy(p, "/resourcegroups/", 16);
	json_object_object_add(job, "id", json_object_new_string(copy));
	free(copy);
}

static char *skiptoken_make(int offset)
{
	char plain[64], *hex = malloc(2 * sizeof(plain) + 1);
	size_t i, n;

	if (!hex)
		return NULL;
	n = (size_t)snprintf(plain, sizeof(plain), "dbxemu:offset=%d", offset);
	for (i = 0; i < n; i++)
		sprintf(hex + 2 * i, "%02X", (unsigned char)plain[i]);
	return hex;
}

static int skiptoken_parse(const char *tok)
{
	char plain[64];
	size_t i, n = strlen(tok);
	int off;
	unsigned int b;

	if (n % 2 || n / 2 >= sizeof(plain))
		return -1;
	for (i = 0; i < n / 2; i++) {
		if (sscanf(tok + 2 * i, "%2X", &b) != 1)
			return -1;
		plain[i] = (char)b;
	}
	plain[n / 2] = '\0';
	if (sscanf(plain, "dbxemu:offset=%d", &off) != 1 || off < 0)
		return -1;
	return off;
}

static void jobs_list(struct dbx_emu *e, struct dbx_emu_req *q, struct dbx_emu_reply *r,
		      struct arm_ctx *c)
{
	struct json_object *a = dbx_emu_world_array(e, "jobs");
	struct json_object *out, *val;
	size_t i, n = a ? json_object_array_length(a) : 0;
	const char *skip = dbx_emu_arg(q, "$skipToken");
	int offset = 0, idx = 0, ps = dbx_emu_world_page_size(e);
	bool more = false;
	char s[256], g[256];

	if (!sub_exists(e, r, c->sub) || (c->rg && !rg_exists(e, r, c->sub, c->rg)))
		return;
	if (skip && *skip) {
		offset = skiptoken_parse(skip);
		if (offset < 0) {
			dbx_emu_reply_error(r, 400, "InvalidSkipToken",
					    "The provided $skipToken '%s' is not valid.", skip);
			return;
		}
	}
	out = json_object_new_object();
	val = json_object_new_array();
	for (i = 0; i < n; i++) {
		struct json_object *job = json_object_array_get_idx(a, i), *copy = NULL;

		if (!dbx_emu_id_parse(dbx_emu_jstr(job, "id"), s, g, NULL, sizeof(s)))
			continue;
		if (strcasecmp(s, c->sub) || (c->rg && strcasecmp(g, c->rg)))
			continue;
		if (idx >= offset + ps) {
			more = true;
			break;
		}
		if (idx++ < offset)
			continue;
		if (json_object_deep_copy(job, &copy, NULL) == 0) {
			lower_rg_segment(copy);
			json_object_array_add(val, copy);
		}
	}
	json_object_object_add(out, "value", val);
	if (more) {
		char *tok = skiptoken_make(offset + ps), *link = NULL;
		int rc;

		if (c->rg)
			rc = asprintf(&link,
				      "https://%s/subscriptions/%s/resourceGroups/%s/providers/"
				      "Microsoft.DataBox/jobs?api-version=%s&%%24skipToken=%s",
				      q->host_raw, c->sub, c->rg, c->apiver, tok ? tok : "");
		else
			rc = asprintf(&link,
				      "https://%s/subscriptions/%s/providers/Microsoft.DataBox/"
				      "jobs?api-version=%s&%%24skipToken=%s",
				      q->host_raw, c->sub, c->apiver, tok ? tok : "");
		if (rc >= 0) {
			json_object_object_add(out, "nextLink", json_object_new_string(link));
			free(link);
		}
		free(tok);
	}
	dbx_emu_reply_json(r, 200, out);
}

static bool expand_details(struct dbx_emu_req *q)
{
	const char *x = dbx_emu_arg(q, "$expand");

	return x && strcasestr(x, "details");
}

static void job_not_found(struct dbx_emu_reply *r, const char *type, const char *name,
			  const char *rg)
{
	dbx_emu_reply_error(
	    r, 404, "ResourceNotFound",
	    "The Resource '%s/%s' under resource group '%s' was not found. For more "
	    "details please go to https://aka.ms/ARMResourceNotFoundFix",
	    type, name, rg);
}

static void job_get(struct dbx_emu *e, struct dbx_emu_req *q, struct dbx_emu_reply *r,
		    struct arm_ctx *c, struct json_object *job)
{
	struct json_object *copy = NULL, *details;

	if (json_object_deep_copy(job, &copy, NULL)) {
		dbx_emu_reply_error(r, 500, "InternalServerError", "Out of memory.");
		return;
	}
	details = dbx_emu_jpath(copy, "properties.details");
	if (details && !expand_details(q))
		json_object_object_del(details, "jobStages");
	dbx_emu_reply_json(r, 200, copy);
}

static void job_patch(struct dbx_emu *e, struct dbx_emu_req *q, struct dbx_emu_reply *r,
		      struct arm_ctx *c, struct json_object *job);

/*
 * The seam for job operations: one row per HTTP method on
 * .../Microsoft.DataBox/jobs/NAME. Add DELETE, POST actions here.
 */
static const struct job_method {
	const char *method;
	void (*fn)(struct dbx_emu *e, struct dbx_emu_req *q, struct dbx_emu_reply *r,
		   struct arm_ctx *c, struct json_object *job);
} job_methods[] = {
    {"GET", job_get},
    {"PATCH", job_patch},
};

static void job_dispatch(struct dbx_emu *e, struct dbx_emu_req *q, struct dbx_emu_reply *r,
			 struct arm_ctx *c)
{
	struct json_object *job;
	size_t i;

	for (i = 0; i < sizeof(job_methods) / sizeof(job_methods[0]); i++) {
		if (strcmp(q->method, job_methods[i].method))
			continue;
		if (!sub_exists(e, r, c->sub) || !rg_exists(e, r, c->sub, c->rg))
			return;
		job = dbx_emu_find_job(e, c->sub, c->rg, c->name);
		if (!job) {
			job_not_found(r, "Microsoft.DataBox/jobs", c->name, c->rg);
			return;
		}
		job_methods[i].fn(e, q, r, c, job);
		return;
	}
	dbx_emu_reply_error(r, 405, "MethodNotAllowed",
			    "The requested method '%s' is not allowed on resource "
			    "'Microsoft.DataBox/jobs/%s' by the emulator.",
			    q->method, c->name);
}

/* ---- PATCH: the service's rules, then merge and answer as an LRO ---- */

/* {principalId, clientId} of a user-assigned identity, from the world. */
static struct json_object *uai_entry(struct dbx_emu *e, const char *id)
{
	struct json_object *entry = json_object_new_object(), *uai = NULL;
	char s[256], g[256], n[256];
	static const char *const keys[] = {"principalId", "clientId"};
	size_t k;

	if (dbx_emu_id_parse(id, s, g, n, sizeof(s)))
		uai = dbx_emu_find_resource(e, "identities", s, g, n);
	for (k = 0; uai && k < 2; k++)
		if (dbx_emu_jstr(uai, keys[k]))
			json_object_object_add(entry, keys[k],
					       json_object_new_string(dbx_emu_jstr(uai, keys[k])));
	return entry;
}

/* Drop key (case-insensitively) from an object. */
static void del_ci(struct json_object *o, const char *key)
{
	char *found = NULL;

	json_object_object_foreach(o, k, v)
	{
		(void)v;
		if (!strcasecmp(k, key))
			found = k;
	}
	if (found) {
		char *copy = strdup(found);

		if (copy)
			json_object_object_del(o, copy);
		free(copy);
	}
}

/*
 * The identity a job has after a PATCH asked for `want` (ARM's merge):
 * the system-assigned principal (and its tenant) survives while the type
 * keeps SystemAssigned; re-enabled it is made anew, in the subscription's
 * current tenant (the documented recovery after a tenant move). The
 * user-assigned map is merged: entries kept while the type keeps
 * UserAssigned, a null value removes one, each entry shows the world's
 * principalId and clientId, as the service reports them.
 */
static struct json_object *merge_identity(struct dbx_emu *e, struct arm_ctx *c,
					  struct json_object *job, struct json_object *want)
{
	struct json_object *old = dbx_emu_jpath(job, "identity"), *out = json_object_new_object();
	struct json_object *uais, *map, *old_map;
	struct json_object *sub = dbx_emu_find_subscription(e, c->sub);
	const char *type = dbx_emu_jstr(want, "type"), *old_type = dbx_emu_jstr(old, "type");
	char guid[37];

	if (!type)
		type = old_type ? old_type : "None";
	json_object_object_add(out, "type", json_object_new_string(type));
	if (strcasestr(type, "SystemAssigned")) {
		const char *pid = dbx_emu_jstr(old, "principalId");
		const char *tid = dbx_emu_jstr(old, "tenantId");

		if (!old_type || !strcasestr(old_type, "SystemAssigned") || !pid || !tid) {
			dbx_emu_guid(guid);
			pid = guid;
			tid = dbx_emu_jstr(sub, "tenantId") ? dbx_emu_jstr(sub, "tenantId")
							    : c->tok->tenant;
		}
		json_object_object_add(out, "principalId", json_object_new_string(pid));
		json_object_object_add(out, "tenantId", json_object_new_string(tid));
	}
	if (!strcasestr(type, "UserAssigned"))
		return out;
	map = json_object_new_object();
	if (old_type && strcasestr(old_type, "UserAssigned") &&
	    json_object_object_get_ex(old, "userAssignedIdentities", &old_map) &&
	    json_object_is_type(old_map, json_type_object)) {
		json_object_object_foreach(old_map, id, val)
		{
			(void)val;
			json_object_object_add(map, id, uai_entry(e, id));
		}
	}
	if (json_object_object_get_ex(want, "userAssignedIdentities", &uais) &&
	    json_object_is_type(uais, json_type_object)) {
		json_object_object_foreach(uais, id, val)
		{
			del_ci(map, id);
			if (val)
				json_object_object_add(map, id, uai_entry(e, id));
		}
	}
	json_object_object_add(out, "userAssignedIdentities", map);
	return out;
}

/* Statuses past which the service refuses changes to a job. */
static bool job_closed(const char *status)
{
	static const char *const closed[] = {"Completed", "CompletedWithErrors",
					     "CompletedWithWarnings", "Cancelled", "Aborted"};
	size_t i;

	if (!status)
		return false;
	if (!strncmp(status, "Failed", 6))
		return true;
	for (i = 0; i < sizeof(closed) / sizeof(closed[0]); i++)
		if (!strcmp(status, closed[i]))
			return true;
	return false;
}

/* Put copy in the world where job was (job is released). */
static void job_replace(struct dbx_emu *e, struct json_object *job, struct json_object *copy)
{
	struct json_object *jobs = dbx_emu_world_array(e, "jobs");
	size_t i;

	for (i = 0; jobs && i < json_object_array_length(jobs); i++) {
		if (json_object_array_get_idx(jobs, i) == job) {
			json_object_array_put_idx(jobs, i, copy);
			return;
		}
	}
	json_object_put(copy);
}

/* Apply the body's keyEncryptionKey, identity and tags to a copy of the job. */
static void job_merge(struct dbx_emu *e, struct arm_ctx *c, struct json_object *copy,
		      struct json_object *body)
{
	struct json_object *kek = dbx_emu_jpath(body, "properties.details.keyEncryptionKey");
	struct json_object *details = dbx_emu_jpath(copy, "properties.details"), *ident, *tags;

	if (kek) {
		if (!details) {
			details = json_object_new_object();
			json_object_object_add(dbx_emu_jpath(copy, "properties"), "details",
					       details);
		}
		json_object_object_add(details, "keyEncryptionKey", json_object_get(kek));
	}
	if (json_object_object_get_ex(body, "identity", &ident) &&
	    json_object_is_type(ident, json_type_object))
		json_object_object_add(copy, "identity", merge_identity(e, c, copy, ident));
	if (json_object_object_get_ex(body, "tags", &tags) &&
	    json_object_is_type(tags, json_type_object))
		json_object_object_add(copy, "tags", json_object_get(tags));
}

/* The emulator's monotonic clock in ms, for operations that land later. */
static long long mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Apply an accepted PATCH body to job as it is stored now: the body merged
 * into a copy, the key error cleared when the key is usable afterwards,
 * systemData stamped with client; the copy replaces job.
 */
static void job_apply(struct dbx_emu *e, struct arm_ctx *c, struct json_object *job,
		      struct json_object *body, const char *host, const char *client)
{
	struct json_object *copy = NULL, *sys;
	bool key_or_identity = dbx_emu_jpath(body, "properties.details.keyEncryptionKey") ||
			       dbx_emu_jpath(body, "identity");
	char now[64];

	if (json_object_deep_copy(job, &copy, NULL))
		return; /* out of memory: the job stays as it was */
	job_merge(e, c, copy, body);
	if (key_or_identity && dbx_emu_cmk_check(e, copy, host) == DBX_EMU_SSEM_OK)
		dbx_emu_kek_error_clear(copy);
	dbx_emu_iso_now(now, sizeof(now));
	sys = dbx_emu_jpath(copy, "systemData");
	if (!sys) {
		sys = json_object_new_object();
		json_object_object_add(copy, "systemData", sys);
	}
	json_object_object_add(sys, "lastModifiedAt", json_object_new_string(now));
	json_object_object_add(sys, "lastModifiedBy", json_object_new_string(client));
	json_object_object_add(sys, "lastModifiedByType", json_object_new_string("Application"));
	job_replace(e, job, copy);
}

void dbx_emu_ops_settle(struct dbx_emu *e)
{
	long long now = mono_ms();
	long pending = 0;

	if (!e->operations || e->ops_pending <= 0)
		return;
	json_object_object_foreach(e->operations, opid, op)
	{
		struct json_object *body, *job;
		struct dbx_emu_token tok = {0};
		struct arm_ctx c = {0};
		char sub[256], rg[256], name[256];

		(void)opid;
		if (!json_object_object_get_ex(op, "pending", &body))
			continue;
		if (json_object_get_int64(dbx_emu_jpath(op, "apply_at")) > now) {
			pending++;
			continue;
		}
		if (dbx_emu_id_parse(dbx_emu_jstr(op, "job"), sub, rg, name, sizeof(sub))) {
			job = dbx_emu_find_job(e, sub, rg, name);
			snprintf(tok.tenant, sizeof(tok.tenant), "%s",
				 dbx_emu_jstr(op, "tenant") ? dbx_emu_jstr(op, "tenant") : "");
			snprintf(tok.client, sizeof(tok.client), "%s",
				 dbx_emu_jstr(op, "client") ? dbx_emu_jstr(op, "client") : "");
			c.sub = sub;
			c.rg = rg;
			c.name = name;
			c.tok = &tok;
			if (job)
				job_apply(e, &c, job, body, dbx_emu_jstr(op, "host"), tok.client);
		}
		json_object_object_del(op, "pending");
	}
	e->ops_pending = pending;
}

/* The Location of an accepted PATCH, as POST /admin/operations has it point. */
static void patch_location(struct dbx_emu *e, struct dbx_emu_req *q, struct dbx_emu_reply *r,
			   struct arm_ctx *c, const char *loc, const char *opid)
{
	char base[300];

	switch (e->opconf.location) {
	case DBX_EMU_OPLOC_FOREIGN:
		snprintf(base, sizeof(base), "https://evil.example.net");
		break;
	case DBX_EMU_OPLOC_HTTP:
		snprintf(base, sizeof(base), "http://%s", q->host_raw);
		break;
	default:
		snprintf(base, sizeof(base), "https://%s", q->host_raw);
		break;
	}
	dbx_emu_reply_header(r, "Location",
			     "%s/subscriptions/%s/providers/Microsoft.DataBox/locations/%s/"
			     "operationResults/%s?api-version=%s",
			     base, c->sub, loc, opid, c->apiver);
}

/*
 * PATCH of a job: refused with 409 once the job is closed; the merged job
 * must pass the identity rules and, when the body carries a
 * keyEncryptionKey, the key rules (cmk.c), else 400 with the Ssem code and
 * nothing changes. An identity-only PATCH is accepted even while the key is
 * unusable (None then SystemAssigned is the documented recovery); a change
 * after which the key is usable clears the job's key error. Accepted changes
 * answer 202 with a Location to poll; an admin-armed failure
 * (fail-next-patch) accepts the PATCH but its operation fails and the job
 * stays as it was. POST /admin/operations sets how the accepted ones run:
 * applied complete_after_ms after the PATCH instead of at once (stored as
 * "pending" until dbx_emu_ops_settle applies it), a Retry-After, a foreign
 * or plain-http Location, polls to drop.
 */
static void job_patch(struct dbx_emu *e, struct dbx_emu_req *q, struct dbx_emu_reply *r,
		      struct arm_ctx *c, struct json_object *job)
{
	enum json_tokener_error jerr = json_tokener_success;
	struct json_object *body = NULL, *copy = NULL, *op;
	char loc[64];
	const char *status = dbx_emu_jstr(dbx_emu_jpath(job, "properties"), "status");
	bool has_kek;
	enum dbx_emu_ssem rc;
	char opid[37];

	/* job is released when the merged copy replaces it: keep what is needed */
	snprintf(loc, sizeof(loc), "%s",
		 dbx_emu_jstr(job, "location") ? dbx_emu_jstr(job, "location") : "westus");
	if (q->body && q->body_len)
		body = json_tokener_parse_verbose(q->body, &jerr);
	if (!body || !json_object_is_type(body, json_type_object)) {
		dbx_emu_reply_error(
		    r, 400, "InvalidRequestContent",
		    "The request content was invalid and could not be deserialized.");
		goto out;
	}
	if (job_closed(status)) {
		dbx_emu_reply_error(r, 409, "Conflict",
				    "The job '%s' cannot be updated in its current status '%s'.",
				    c->name, status);
		goto out;
	}
	if (json_object_deep_copy(job, &copy, NULL)) {
		copy = NULL;
		dbx_emu_reply_error(r, 500, "InternalServerError", "Out of memory.");
		goto out;
	}
	/* The rules are checked on the job as it would be; the copy is only for that. */
	job_merge(e, c, copy, body);
	has_kek = dbx_emu_jpath(body, "properties.details.keyEncryptionKey") != NULL;
	rc = dbx_emu_identity_check(e, dbx_emu_jpath(copy, "identity"));
	if (rc == DBX_EMU_SSEM_OK && has_kek)
		rc = dbx_emu_cmk_check(e, copy, q->host);
	if (rc != DBX_EMU_SSEM_OK) {
		dbx_emu_reply_error(r, 400, dbx_emu_ssem_code(rc), "%s", dbx_emu_ssem_message(rc));
		goto out;
	}
	dbx_emu_guid(opid);
	op = json_object_new_object();
	json_object_object_add(op, "job", json_object_new_string(dbx_emu_jstr(job, "id")));
	json_object_object_add(op, "polls", json_object_new_int(0));
	json_object_object_add(op, "drop", json_object_new_int64(e->opconf.drop_polls));
	if (e->opconf.retry_after[0])
		json_object_object_add(op, "retry_after",
				       json_object_new_string(e->opconf.retry_after));
	if (e->fail_patches > 0) {
		e->fail_patches--;
		json_object_object_add(op, "failed", json_object_new_boolean(1));
	} else if (e->opconf.delayed) {
		json_object_object_add(op, "delayed", json_object_new_boolean(1));
		json_object_object_add(op, "pending", json_object_get(body));
		json_object_object_add(
		    op, "apply_at", json_object_new_int64(mono_ms() + e->opconf.complete_after_ms));
		json_object_object_add(op, "host", json_object_new_string(q->host));
		json_object_object_add(op, "tenant", json_object_new_string(c->tok->tenant));
		json_object_object_add(op, "client", json_object_new_string(c->tok->client));
		e->ops_pending++;
	} else {
		job_apply(e, c, job, body, q->host, c->tok->client);
	}
	json_object_object_add(e->operations, opid, op);
	r->status = 202;
	patch_location(e, q, r, c, loc, opid);
	if (e->opconf.retry_after[0])
		dbx_emu_reply_header(r, "Retry-After", "%s", e->opconf.retry_after);
	if (!r->ratelimit_set) /* throttle.c said what is left */
		dbx_emu_reply_header(r, "x-ms-ratelimit-remaining-subscription-writes", "799");
	/* A delayed change that is due at once lands now, as if polled. */
	dbx_emu_ops_settle(e);
out:
	json_object_put(copy);
	json_object_put(body);
}

/*
 * GET of an operation: 202 with Location to itself while it runs (once by
 * default, until the change has landed for a delayed one), then 202 with
 * Location to the job; 500 for a failed one. Dropped polls close the
 * connection without an answer and do not count.
 */
static void op_results(struct dbx_emu *e, struct dbx_emu_req *q, struct dbx_emu_reply *r,
		       struct arm_ctx *c, const char *loc, const char *opid)
{
	struct json_object *op, *failed, *pending;
	const char *retry_after;
	char sub[256], rg[256], name[256];
	long long drop;
	bool running;
	int n;

	if (!json_object_object_get_ex(e->operations, opid, &op)) {
		dbx_emu_reply_error(r, 404, "ResourceNotFound", "The operation '%s' was not found.",
				    opid);
		return;
	}
	drop = json_object_get_int64(dbx_emu_jpath(op, "drop"));
	if (drop > 0) {
		json_object_object_add(op, "drop", json_object_new_int64(drop - 1));
		r->drop = true;
		return;
	}
	n = json_object_get_int(dbx_emu_jpath(op, "polls"));
	if (json_object_object_get_ex(op, "failed", &failed) && json_object_get_boolean(failed)) {
		dbx_emu_reply_error(r, 500, "InternalServerError", "Could not fetch the passkey.");
		return;
	}
	json_object_object_add(op, "polls", json_object_new_int(n + 1));
	r->status = 202;
	retry_after = dbx_emu_jstr(op, "retry_after");
	if (retry_after)
		dbx_emu_reply_header(r, "Retry-After", "%s", retry_after);
	if (dbx_emu_jpath(op, "delayed"))
		running = json_object_object_get_ex(op, "pending", &pending);
	else
		running = n == 0;
	if (running) {
		dbx_emu_reply_header(
		    r, "Location",
		    "https://%s/subscriptions/%s/providers/Microsoft.DataBox/locations/"
		    "%s/operationResults/%s?api-version=%s",
		    q->host_raw, c->sub, loc, opid, c->apiver);
		return;
	}
	if (!dbx_emu_id_parse(dbx_emu_jstr(op, "job"), sub, rg, name, sizeof(sub))) {
		dbx_emu_reply_error(r, 500, "InternalServerError", "Broken operation.");
		return;
	}
	dbx_emu_reply_header(r, "Location",
			     "https://%s/subscriptions/%s/resourceGroups/%s/providers/"
			     "Microsoft.DataBox/jobs/%s?api-version=%s",
			     q->host_raw, sub, rg, name, c->apiver);
}

/* ---- Resources - List with $filter ---- */

struct rfilter {
	char type[128], name[128], rg[128], location[128];
};

static int parse_filter(const char *f, struct rfilter *out)
{
	char buf[512], *p = buf;

	memset(out, 0, sizeof(*out));
	if (strlen(f) >= sizeof(buf))
		return -1;
	strcpy(buf, f);
	while (*p) {
		char field[128], value[128];
		int used = 0;

		while (*p == ' ')
			p++;
		if (!strncasecmp(p, "and ", 4)) {
			p += 4;
			continue;
		}
		if (!*p)
			break;
		if (sscanf(p, "%127s eq '%127[^']'%n", field, value, &used) != 2 || !used)
			return -1;
		p += used;
		if (!strcasecmp(field, "resourceType"))
			snprintf(out->type, sizeof(out->type), "%s", value);
		else if (!strcasecmp(field, "name"))
			snprintf(out->name, sizeof(out->name), "%s", value);
		else if (!strcasecmp(field, "resourceGroup"))
			snprintf(out->rg, sizeof(out->rg), "%s", value);
		else if (!strcasecmp(field, "location"))
			snprintf(out->location, sizeof(out->location), "%s", value);
		else
			return -1;
	}
	return 0;
}

static void add_resources(struct dbx_emu *e, struct json_object *val, const char *array,
			  const char *type, const char *sub, const struct rfilter *f)
{
	struct json_object *a = dbx_emu_world_array(e, array);
	size_t i, n = a ? json_object_array_length(a) : 0;
	char s[256], g[256];

	if (f->type[0] && strcasecmp(f->type, type))
		return;
	for (i = 0; i < n; i++) {
		struct json_object *o = json_object_array_get_idx(a, i), *res, *tags;
		const char *name = dbx_emu_jstr(o, "name"), *loc = dbx_emu_jstr(o, "location");

		if (!name || !dbx_emu_id_parse(dbx_emu_jstr(o, "id"), s, g, NULL, sizeof(s)) ||
		    strcasecmp(s, sub))
			continue;
		if ((f->name[0] && strcasecmp(f->name, name)) ||
		    (f->rg[0] && strcasecmp(f->rg, g)) ||
		    (f->location[0] && (!loc || strcasecmp(f->location, loc))))
			continue;
		res = json_object_new_object();
		json_object_object_add(res, "id", json_object_new_string(dbx_emu_jstr(o, "id")));
		json_object_object_add(res, "name", json_object_new_string(name));
		json_object_object_add(res, "type", json_object_new_string(type));
		json_object_object_add(res, "location", json_object_new_string(loc ? loc : ""));
		if (json_object_object_get_ex(o, "tags", &tags))
			json_object_object_add(res, "tags", json_object_get(tags));
		else
			json_object_object_add(res, "tags", json_object_new_object());
		json_object_array_add(val, res);
	}
}

static void resources_list(struct dbx_emu *e, struct dbx_emu_req *q, struct dbx_emu_reply *r,
			   struct arm_ctx *c)
{
	const char *filter = dbx_emu_arg(q, "$filter");
	struct json_object *out, *val;
	struct rfilter f;

	if (!sub_exists(e, r, c->sub))
		return;
	if (parse_filter(filter ? filter : "", &f)) {
		dbx_emu_reply_error(r, 400, "InvalidFilterInQueryString",
				    "Invalid $filter '%s' specified in the query string.", filter);
		return;
	}
	out = json_object_new_object();
	val = json_object_new_array();
	add_resources(e, val, "vaults", "Microsoft.KeyVault/vaults", c->sub, &f);
	add_resources(e, val, "identities", "Microsoft.ManagedIdentity/userAssignedIdentities",
		      c->sub, &f);
	add_resources(e, val, "jobs", "Microsoft.DataBox/jobs", c->sub, &f);
	json_object_object_add(out, "value", val);
	dbx_emu_reply_json(r, 200, out);
}

/* ---- vaults and identities ---- */

static struct json_object *rg_json(const char *sub, const char *rg)
{
	struct json_object *o = json_object_new_object(), *props = json_object_new_object();
	char id[600];

	snprintf(id, sizeof(id), "/subscriptions/%s/resourceGroups/%s", sub, rg);
	json_object_object_add(o, "id", json_object_new_string(id));
	json_object_object_add(o, "name", json_object_new_string(rg));
	json_object_object_add(o, "type",
			       json_object_new_string("Microsoft.Resources/resourceGroups"));
	json_object_object_add(o, "location", json_object_new_string("westus"));
	json_object_object_add(props, "provisioningState", json_object_new_string("Succeeded"));
	json_object_object_add(o, "properties", props);
	return o;
}

/* The RG's name as the world spells it (ARM answers with the stored case). */
static const char *rg_name(struct dbx_emu *e, const char *sub, const char *rg)
{
	struct json_object *a = dbx_emu_world_array(e, "resource_groups");
	size_t i;

	for (i = 0; a && i < json_object_array_length(a); i++) {
		struct json_object *o = json_object_array_get_idx(a, i);
		const char *sid = dbx_emu_jstr(o, "subscriptionId"),
			   *name = dbx_emu_jstr(o, "name");

		if (sid && name && !strcasecmp(sid, sub) && !strcasecmp(name, rg))
			return name;
	}
	return rg;
}

/* Add the RG of id to val unless already there (case-insensitive). */
static void add_rg(struct json_object *val, const char *sub, const char *rg)
{
	size_t i;

	for (i = 0; i < json_object_array_length(val); i++) {
		const char *n = dbx_emu_jstr(json_object_array_get_idx(val, i), "name");

		if (n && !strcasecmp(n, rg))
			return;
	}
	json_object_array_add(val, rg_json(sub, rg));
}

/*
 * Resource groups of a subscription: the world's resource_groups list, or
 * (without one) every RG that holds a job, vault or identity.
 */
static void rgs_list(struct dbx_emu *e, struct dbx_emu_reply *r, struct arm_ctx *c)
{
	static const char *const arrays[] = {"jobs", "vaults", "identities"};
	struct json_object *out, *val, *a = dbx_emu_world_array(e, "resource_groups");
	char s[256], g[256];
	size_t i, k;

	if (!sub_exists(e, r, c->sub))
		return;
	out = json_object_new_object();
	val = json_object_new_array();
	for (i = 0; a && i < json_object_array_length(a); i++) {
		struct json_object *o = json_object_array_get_idx(a, i);
		const char *sid = dbx_emu_jstr(o, "subscriptionId"),
			   *name = dbx_emu_jstr(o, "name");

		if (sid && name && !strcasecmp(sid, c->sub))
			add_rg(val, c->sub, name);
	}
	for (k = 0; !a && k < sizeof(arrays) / sizeof(arrays[0]); k++) {
		struct json_object *arr = dbx_emu_world_array(e, arrays[k]);

		for (i = 0; arr && i < json_object_array_length(arr); i++) {
			const char *id = dbx_emu_jstr(json_object_array_get_idx(arr, i), "id");

			if (dbx_emu_id_parse(id, s, g, NULL, sizeof(s)) && !strcasecmp(s, c->sub))
				add_rg(val, c->sub, g);
		}
	}
	json_object_object_add(out, "value", val);
	dbx_emu_reply_json(r, 200, out);
}

/*
 * Reply with one page of items (all of the list, in order): the world's
 * page size from $skipToken on, and a nextLink to the rest on the same
 * path, as ARM's list operations page.
 */
static void reply_paged(struct dbx_emu *e, struct dbx_emu_req *q, struct dbx_emu_reply *r,
			struct arm_ctx *c, struct json_object *items)
{
	const char *skip = dbx_emu_arg(q, "$skipToken");
	struct json_object *out, *val;
	size_t n = json_object_array_length(items), i;
	int offset = 0, ps = dbx_emu_world_page_size(e);

	if (skip && *skip) {
		offset = skiptoken_parse(skip);
		if (offset < 0) {
			json_object_put(items);
			dbx_emu_reply_error(r, 400, "InvalidSkipToken",
					    "The provided $skipToken '%s' is not valid.", skip);
			return;
		}
	}
	out = json_object_new_object();
	val = json_object_new_array();
	for (i = (size_t)offset; i < n && i < (size_t)offset + (size_t)ps; i++)
		json_object_array_add(val, json_object_get(json_object_array_get_idx(items, i)));
	json_object_object_add(out, "value", val);
	if ((size_t)offset + (size_t)ps < n) {
		char *tok = skiptoken_make(offset + ps), *link = NULL;

		if (asprintf(&link, "https://%s%s?api-version=%s&%%24skipToken=%s", q->host_raw,
			     q->raw_path, c->apiver, tok ? tok : "") >= 0) {
			json_object_object_add(out, "nextLink", json_object_new_string(link));
			free(link);
		}
		free(tok);
	}
	json_object_put(items);
	dbx_emu_reply_json(r, 200, out);
}

/* GET /subscriptions/S/providers/Microsoft.KeyVault/vaults */
static void vaults_list(struct dbx_emu *e, struct dbx_emu_req *q, struct dbx_emu_reply *r,
			struct arm_ctx *c)
{
	struct json_object *a = dbx_emu_world_array(e, "vaults"), *val;
	char s[256];
	size_t i;

	if (!sub_exists(e, r, c->sub))
		return;
	val = json_object_new_array();
	for (i = 0; a && i < json_object_array_length(a); i++) {
		struct json_object *v = json_object_array_get_idx(a, i), *copy = NULL;

		if (!dbx_emu_id_parse(dbx_emu_jstr(v, "id"), s, NULL, NULL, sizeof(s)) ||
		    strcasecmp(s, c->sub) || json_object_deep_copy(v, &copy, NULL))
			continue;
		json_object_object_del(copy, "keys");
		json_object_array_add(val, copy);
	}
	reply_paged(e, q, r, c, val);
}

static void vault_get(struct dbx_emu *e, struct dbx_emu_reply *r, struct arm_ctx *c)
{
	struct json_object *v, *copy = NULL;

	if (!sub_exists(e, r, c->sub) || !rg_exists(e, r, c->sub, c->rg))
		return;
	v = dbx_emu_find_resource(e, "vaults", c->sub, c->rg, c->name);
	if (!v) {
		job_not_found(r, "Microsoft.KeyVault/vaults", c->name, c->rg);
		return;
	}
	if (json_object_deep_copy(v, &copy, NULL)) {
		dbx_emu_reply_error(r, 500, "InternalServerError", "Out of memory.");
		return;
	}
	json_object_object_del(copy, "keys");
	dbx_emu_reply_json(r, 200, copy);
}

/* A user-assigned identity as ARM shows it (Microsoft.ManagedIdentity). */
static struct json_object *identity_json(struct json_object *i, const char *name)
{
	struct json_object *o, *props, *tags;
	const char *keys[] = {"tenantId", "principalId", "clientId"};
	size_t k;

	o = json_object_new_object();
	props = json_object_new_object();
	json_object_object_add(o, "id", json_object_new_string(dbx_emu_jstr(i, "id")));
	json_object_object_add(
	    o, "name",
	    json_object_new_string(dbx_emu_jstr(i, "name") ? dbx_emu_jstr(i, "name") : name));
	json_object_object_add(
	    o, "type", json_object_new_string("Microsoft.ManagedIdentity/userAssignedIdentities"));
	json_object_object_add(o, "location",
			       json_object_new_string(dbx_emu_jstr(i, "location")
							  ? dbx_emu_jstr(i, "location")
							  : "westus"));
	if (json_object_object_get_ex(i, "tags", &tags))
		json_object_object_add(o, "tags", json_object_get(tags));
	else
		json_object_object_add(o, "tags", json_object_new_object());
	for (k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
		if (dbx_emu_jstr(i, keys[k]))
			json_object_object_add(props, keys[k],
					       json_object_new_string(dbx_emu_jstr(i, keys[k])));
	json_object_object_add(o, "properties", props);
	return o;
}

static void identity_get(struct dbx_emu *e, struct dbx_emu_reply *r, struct arm_ctx *c)
{
	struct json_object *i;

	if (!sub_exists(e, r, c->sub) || !rg_exists(e, r, c->sub, c->rg))
		return;
	i = dbx_emu_find_resource(e, "identities", c->sub, c->rg, c->name);
	if (!i) {
		job_not_found(r, "Microsoft.ManagedIdentity/userAssignedIdentities", c->name,
			      c->rg);
		return;
	}
	dbx_emu_reply_json(r, 200, identity_json(i, c->name));
}

/*
 * GET /subscriptions/S[/resourceGroups/RG]/providers/Microsoft.ManagedIdentity/
 * userAssignedIdentities
 */
static void identities_list(struct dbx_emu *e, struct dbx_emu_req *q, struct dbx_emu_reply *r,
			    struct arm_ctx *c)
{
	struct json_object *a = dbx_emu_world_array(e, "identities"), *val;
	char s[256], g[256];
	size_t i;

	if (!sub_exists(e, r, c->sub) || (c->rg && !rg_exists(e, r, c->sub, c->rg)))
		return;
	val = json_object_new_array();
	for (i = 0; a && i < json_object_array_length(a); i++) {
		struct json_object *u = json_object_array_get_idx(a, i);

		if (dbx_emu_id_parse(dbx_emu_jstr(u, "id"), s, g, NULL, sizeof(s)) &&
		    !strcasecmp(s, c->sub) && (!c->rg || !strcasecmp(g, c->rg)))
			json_object_array_add(val, identity_json(u, ""));
	}
	reply_paged(e, q, r, c, val);
}

/* ---- routing ---- */

enum route {
	R_NONE,
	R_SUBS,
	R_SUB,
	R_RESOURCES,
	R_JOBS_SUB,
	R_JOBS_RG,
	R_JOB,
	R_OPRESULT,
	R_VAULT,
	R_IDENTITY,
	R_RGS,
	R_RG,
	R_VAULTS_SUB,
	R_IDENTITIES_SUB,
};

static enum route route_of(struct arm_ctx *c)
{
	if (!seg_is(c, 0, "subscriptions"))
		return R_NONE;
	if (c->nseg == 1)
		return R_SUBS;
	c->sub = c->seg[1];
	if (c->nseg == 2)
		return R_SUB;
	if (c->nseg == 3 && seg_is(c, 2, "resources"))
		return R_RESOURCES;
	if (c->nseg == 3 && seg_is(c, 2, "resourceGroups"))
		return R_RGS;
	if (c->nseg == 4 && seg_is(c, 2, "resourceGroups")) {
		c->rg = c->seg[3];
		return R_RG;
	}
	if (c->nseg == 5 && seg_is(c, 2, "providers") && seg_is(c, 3, "Microsoft.KeyVault") &&
	    seg_is(c, 4, "vaults"))
		return R_VAULTS_SUB;
	if (c->nseg == 5 && seg_is(c, 2, "providers") &&
	    seg_is(c, 3, "Microsoft.ManagedIdentity") && seg_is(c, 4, "userAssignedIdentities"))
		return R_IDENTITIES_SUB;
	if (seg_is(c, 2, "providers") && seg_is(c, 3, "Microsoft.DataBox")) {
		if (c->nseg == 5 && seg_is(c, 4, "jobs"))
			return R_JOBS_SUB;
		if (c->nseg == 8 && seg_is(c, 4, "locations") && seg_is(c, 6, "operationResults"))
			return R_OPRESULT;
		return R_NONE;
	}
	if (!seg_is(c, 2, "resourceGroups") || c->nseg < 6 || !seg_is(c, 4, "providers"))
		return R_NONE;
	c->rg = c->seg[3];
	if (seg_is(c, 5, "Microsoft.DataBox") && seg_is(c, 6, "jobs")) {
		if (c->nseg == 7)
			return R_JOBS_RG;
		if (c->nseg == 8) {
			c->name = c->seg[7];
			return R_JOB;
		}
	}
	if (c->nseg == 8 && seg_is(c, 5, "Microsoft.KeyVault") && seg_is(c, 6, "vaults")) {
		c->name = c->seg[7];
		return R_VAULT;
	}
	if (c->nseg == 7 && seg_is(c, 5, "Microsoft.ManagedIdentity") &&
	    seg_is(c, 6, "userAssignedIdentities"))
		return R_IDENTITIES_SUB; /* c->rg set: the group's */
	if (c->nseg == 8 && seg_is(c, 5, "Microsoft.ManagedIdentity") &&
	    seg_is(c, 6, "userAssignedIdentities")) {
		c->name = c->seg[7];
		return R_IDENTITY;
	}
	return R_NONE;
}

void dbx_emu_arm_handle(struct dbx_emu *e, struct dbx_emu_req *q, struct dbx_emu_reply *r)
{
	struct arm_ctx c = {0};
	char *buf = strdup(q->path);
	enum route rt;

	if (!buf) {
		dbx_emu_reply_error(r, 500, "InternalServerError", "Out of memory.");
		return;
	}
	dbx_emu_ops_settle(e); /* delayed changes land whether or not anyone polls */
	c.nseg = dbx_emu_split_path(buf, c.seg, MAXSEG);
	rt = route_of(&c);
	if (!arm_auth(e, q, r, &c))
		goto out;
	if (!dbx_emu_throttle(e, q, r, c.tok->client, c.sub))
		goto out;
	c.apiver = dbx_emu_arg(q, "api-version");
	if (!c.apiver || !*c.apiver) {
		dbx_emu_reply_error(
		    r, 400, "MissingApiVersionParameter",
		    "The api-version query parameter (?api-version=) is required for "
		    "all requests.");
		goto out;
	}
	if (rt == R_JOBS_SUB || rt == R_JOBS_RG || rt == R_JOB || rt == R_OPRESULT) {
		if (!databox_version_ok(c.apiver)) {
			struct json_object *job =
			    rt == R_JOB ? dbx_emu_find_job(e, c.sub, c.rg, c.name) : NULL;
			const char *loc = job ? dbx_emu_jstr(job, "location") : NULL;

			no_provider(r, c.apiver, "jobs", loc ? loc : "westus");
			goto out;
		}
	} else if (!is_date_version(c.apiver)) {
		dbx_emu_reply_error(r, 400, "InvalidApiVersionParameter",
				    "The api-version '%s' is invalid. The supported versions are "
				    "'2024-11-01,2023-07-01,2022-12-01,2021-04-01,2020-01-01,"
				    "2019-11-01,2016-06-01,2015-11-01'.",
				    c.apiver);
		goto out;
	}
	if (rt == R_JOB) {
		job_dispatch(e, q, r, &c);
		goto out;
	}
	if (rt != R_NONE && strcmp(q->method, "GET")) {
		dbx_emu_reply_error(r, 405, "MethodNotAllowed",
				    "The requested method '%s' is not allowed on '%s'.", q->method,
				    q->path);
		goto out;
	}
	switch (rt) {
	case R_SUBS:
		subs_list(e, q, r, &c);
		break;
	case R_SUB:
		if (sub_exists(e, r, c.sub))
			dbx_emu_reply_json(r, 200, sub_json(dbx_emu_find_subscription(e, c.sub)));
		break;
	case R_RESOURCES:
		resources_list(e, q, r, &c);
		break;
	case R_JOBS_SUB:
	case R_JOBS_RG:
		jobs_list(e, q, r, &c);
		break;
	case R_OPRESULT:
		op_results(e, q, r, &c, c.seg[5], c.seg[7]);
		break;
	case R_VAULT:
		vault_get(e, r, &c);
		break;
	case R_RGS:
		rgs_list(e, r, &c);
		break;
	case R_RG:
		if (sub_exists(e, r, c.sub) && rg_exists(e, r, c.sub, c.rg))
			dbx_emu_reply_json(r, 200, rg_json(c.sub, rg_name(e, c.sub, c.rg)));
		break;
	case R_VAULTS_SUB:
		vaults_list(e, q, r, &c);
		break;
	case R_IDENTITIES_SUB:
		identities_list(e, q, r, &c);
		break;
	case R_IDENTITY:
		identity_get(e, r, &c);
		break;
	default:
		dbx_emu_reply_error(r, 404, "InvalidResourceType",
				    "The resource type could not be found for path '%s' and api "
				    "version '%s'.",
				    q->path, c.apiver);
	}
out:
	free(buf);
}
