/*
 * imds.c: managed identity tokens on the emulator's plain-HTTP IMDS
 * listener (--imds-port, --imds-bind), for code that runs "on Azure":
 *
 *   GET /metadata/identity/oauth2/token?api-version=2018-02-01&resource=R
 *       [&client_id=C | &object_id=O | &msi_res_id=ID | &mi_res_id=ID]
 *       header "Metadata: true"                       (Azure VM IMDS)
 *   GET /msi/token?api-version=2019-08-01&resource=R[&client_id=C]
 *       header "X-IDENTITY-HEADER: <world identity_header>"  (App Service)
 *
 * Identities come from the world's "managed_identities": [{client_id,
 * principal_id, tenant_id, system, msi_res_id?, token_lifetime_s?}]; without
 * a selector the system identity answers (or the only user-assigned one).
 * Tokens are the emulator's own, for the identity's tenant with oid = its
 * principal, so ARM and Key Vault accept them like any other. Answers use
 * string numbers, as IMDS does.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "emu.h"

static void imds_error(struct dbx_emu_reply *r, unsigned int status, const char *error,
		       const char *desc)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "error", json_object_new_string(error));
	json_object_object_add(o, "error_description", json_object_new_string(desc));
	dbx_emu_reply_json(r, status, o);
}

static bool field_is(struct json_object *mi, const char *key, const char *want)
{
	const char *v = dbx_emu_jstr(mi, key);

	return v && want && !strcasecmp(v, want);
}

/* The identity the query selects, or NULL. */
static struct json_object *pick_identity(struct dbx_emu *e, struct dbx_emu_req *q)
{
	struct json_object *a = dbx_emu_world_array(e, "managed_identities"), *only_user = NULL;
	const char *cid = dbx_emu_arg(q, "client_id"), *oid = dbx_emu_arg(q, "object_id");
	const char *rid = dbx_emu_arg(q, "msi_res_id");
	size_t i, n = a ? json_object_array_length(a) : 0, users = 0;

	if (!rid)
		rid = dbx_emu_arg(q, "mi_res_id");
	for (i = 0; i < n; i++) {
		struct json_object *mi = json_object_array_get_idx(a, i), *sys;
		bool system =
		    json_object_object_get_ex(mi, "system", &sys) && json_object_get_boolean(sys);

		if (cid || oid || rid) {
			if ((cid && field_is(mi, "client_id", cid)) ||
			    (oid && field_is(mi, "principal_id", oid)) ||
			    (rid && field_is(mi, "msi_res_id", rid)))
				return mi;
			continue;
		}
		if (system)
			return mi;
		users++;
		only_user = mi;
	}
	return users == 1 ? only_user : NULL;
}

/* o[key] = v as a decimal string (IMDS sends numbers as strings). */
static void add_str(struct json_object *o, const char *key, long long v)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%lld", v);
	json_object_object_add(o, key, json_object_new_string(buf));
}

/* Issue a token for the selected identity; fills r (success or error). */
static void issue(struct dbx_emu *e, struct dbx_emu_req *q, struct dbx_emu_reply *r,
		  bool app_service)
{
	const char *resource = dbx_emu_arg(q, "resource"), *tok, *cid, *tenant, *pid;
	struct json_object *mi, *o;
	char aud[512], desc[700];
	long long now = (long long)time(NULL);
	int lifetime;

	snprintf(r->log_grant, sizeof(r->log_grant), "%s",
		 app_service ? "app_service_msi" : "imds");
	if (resource)
		snprintf(r->log_scope, sizeof(r->log_scope), "%s", resource);
	if (!resource || !*resource) {
		imds_error(r, 400, "invalid_request", "Required audience parameter not specified");
		return;
	}
	mi = pick_identity(e, q);
	if (!mi) {
		imds_error(r, 400, "invalid_request", "Identity not found");
		return;
	}
	if (!dbx_emu_audience_for(resource, aud, sizeof(aud))) {
		snprintf(desc, sizeof(desc),
			 "AADSTS500011: The resource principal named %.300s was not found in the "
			 "tenant.",
			 resource);
		imds_error(r, 400, "invalid_resource", desc);
		return;
	}
	cid = dbx_emu_jstr(mi, "client_id");
	tenant = dbx_emu_jstr(mi, "tenant_id");
	pid = dbx_emu_jstr(mi, "principal_id");
	if (!cid || !tenant) {
		imds_error(r, 500, "unknown_error", "The identity has no client_id or tenant_id.");
		return;
	}
	lifetime = dbx_emu_token_lifetime(e, mi);
	/* v1 tokens: the audience is the resource as asked */
	tok = dbx_emu_token_issue(e, tenant, cid, pid ? pid : cid, resource, lifetime);
	if (!tok) {
		imds_error(r, 500, "unknown_error", "There was an error issuing a token.");
		return;
	}
	dbx_emu_token_count(e, "managed_identity", app_service ? "app_service" : "imds", aud);
	o = json_object_new_object();
	json_object_object_add(o, "access_token", json_object_new_string(tok));
	json_object_object_add(o, "client_id", json_object_new_string(cid));
	if (!app_service) {
		add_str(o, "expires_in", lifetime);
		add_str(o, "ext_expires_in", lifetime);
		add_str(o, "not_before", now);
	}
	add_str(o, "expires_on", now + lifetime);
	json_object_object_add(o, "resource", json_object_new_string(resource));
	json_object_object_add(o, "token_type", json_object_new_string("Bearer"));
	dbx_emu_reply_json(r, 200, o);
}

void dbx_emu_imds_handle(struct dbx_emu *e, struct dbx_emu_req *q, struct dbx_emu_reply *r)
{
	const char *md = dbx_emu_header(q, "Metadata");
	const char *ih = dbx_emu_header(q, "X-IDENTITY-HEADER");
	const char *want = e->world ? dbx_emu_jstr(e->world, "identity_header") : NULL;

	r->secret_body = true;
	if (strcmp(q->method, "GET")) {
		imds_error(r, 405, "invalid_request", "Only GET is supported.");
		return;
	}
	if (!strcmp(q->path, "/metadata/identity/oauth2/token")) {
		if (!md || strcasecmp(md, "true")) {
			imds_error(r, 400, "invalid_request",
				   "Required metadata header not specified");
			return;
		}
		if (!dbx_emu_arg(q, "api-version")) {
			imds_error(r, 400, "invalid_request",
				   "Required query variable 'api-version' is missing");
			return;
		}
		issue(e, q, r, false);
		return;
	}
	if (!strcmp(q->path, "/msi/token")) {
		if (!want || !ih || strcmp(ih, want)) {
			imds_error(r, 401, "unauthorized",
				   "The X-IDENTITY-HEADER header is missing or does not match.");
			return;
		}
		if (!dbx_emu_arg(q, "api-version")) {
			imds_error(r, 400, "invalid_request",
				   "Required query variable 'api-version' is missing");
			return;
		}
		issue(e, q, r, true);
		return;
	}
	imds_error(r, 404, "not_found", "No such IMDS endpoint.");
}
