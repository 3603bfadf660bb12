/*
 * order.c: job JSON <-> struct dbx_order, the only place that reads job JSON.
 *
 * A Microsoft.DataBox/jobs resource (JobResource, docs/azure.md, "The job resource") is mapped
 * field by field, with exact wire names: properties.details.keyEncryptionKey
 * {kekType, kekUrl, kekVaultResourceID, identityProperties {type,
 * userAssigned.resourceId}}, the job identity {type, principalId, tenantId,
 * userAssignedIdentities}, systemData.lastModifiedAt, and the problems the
 * service reports (properties.error, then every stage that failed or waits
 * for the customer). Input comes from the network, so every field read has
 * one accepted JSON type (null and absence mean absent): any other type,
 * or a kekType or type of another value, rejects the whole job, naming the
 * field (docs/azure.md, "The job resource", lists them). A list item
 * rejected that way still names its order: dbx_order_malformed_stub keeps
 * its id and name, so one bad order reads EIO instead of vanishing. Also here: ARM
 * resource ID parsing (case-insensitive segment names, since list
 * responses spell "resourcegroups"); timestamps are read by
 * core/timestamp.c.
 *
 * Writes (PATCH bodies) are built here too; see the section at the end.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#include "databoxfs/order.h"
#include "databoxfs/timestamp.h"
#include "core/json_util.h"

/*
 * ---- typed reads: every field has one accepted JSON type ----
 *
 * A struct reader carries the first failure. Each accessor takes the
 * parent (NULL: the parent itself is absent, so is the member) and the
 * member's path for the message; absent and null read as absent, any
 * other type than the accepted one fails the whole job with
 * "malformed answer from ARM: PATH is a TYPE, expected a TYPE".
 */

#define MALFORMED "malformed answer from ARM: "

struct reader {
	struct dbx_error *err;
	enum dbx_err rc; /* DBX_OK until the first malformed field */
};

/* s, at most 64 bytes of it, control characters as '?': a value quoted in a one-line message. */
static void quote_value(char *dst, size_t cap, const char *s)
{
	size_t n = 0;

	for (; s[n] && n < 64 && n + 1 < cap; n++)
		dst[n] = (unsigned char)s[n] < 0x20 || s[n] == 0x7f ? '?' : s[n];
	dst[n] = '\0';
}

/* Record that path has the wrong type (the first such field only). */
static void wrong_type(struct reader *r, const char *path, struct json_object *v, enum json_type t)
{
	if (r->rc != DBX_OK)
		return;
	r->rc = dbx_error_set(r->err, DBX_EREMOTE, MALFORMED "%s is %s, expected %s", path,
			      dbx_json_type_name(json_object_get_type(v)), dbx_json_type_name(t));
}

/* Member key of o (path names it) when of type t; NULL when absent, null or wrong (recorded). */
static struct json_object *get_typed(struct reader *r, struct json_object *o, const char *key,
				     const char *path, enum json_type t)
{
	struct json_object *v = NULL;

	if (!o || !json_object_object_get_ex(o, key, &v) || !v)
		return NULL;
	if (!json_object_is_type(v, t)) {
		wrong_type(r, path, v, t);
		return NULL;
	}
	return v;
}

static struct json_object *get_obj(struct reader *r, struct json_object *o, const char *key,
				   const char *path)
{
	return get_typed(r, o, key, path, json_type_object);
}

static struct json_object *get_array(struct reader *r, struct json_object *o, const char *key,
				     const char *path)
{
	return get_typed(r, o, key, path, json_type_array);
}

static const char *get_str(struct reader *r, struct json_object *o, const char *key,
			   const char *path)
{
	struct json_object *v = get_typed(r, o, key, path, json_type_string);

	return v ? json_object_get_string(v) : NULL;
}

/* strdup that keeps NULL; *oom latches an allocation failure. */
static char *dup_str(const char *s, bool *oom)
{
	char *d;

	if (!s)
		return NULL;
	d = strdup(s);
	if (!d)
		*oom = true;
	return d;
}

/* ---- ARM resource IDs ---- */

/* A usable path segment: non-empty, not "." or "..", no control character. */
static bool good_segment(const char *s, size_t n)
{
	if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
		return false;
	for (size_t i = 0; i < n; i++) {
		if (iscntrl((unsigned char)s[i]))
			return false;
	}
	return true;
}

enum dbx_err dbx_arm_id_parse(const char *id, char **subscription, char **resource_group,
			      char **provider_type, char **name)
{
	/* /subscriptions/S/resourceGroups/RG/providers/NS/TYPE/NAME: 8 segments. */
	const char *seg[8];
	size_t seglen[8];
	size_t n = 0, idlen;
	const char *p, *end;
	char *out[4] = {NULL, NULL, NULL, NULL};
	enum dbx_err rc = DBX_EINVAL;

	if (subscription)
		*subscription = NULL;
	if (resource_group)
		*resource_group = NULL;
	if (provider_type)
		*provider_type = NULL;
	if (name)
		*name = NULL;
	if (!id || id[0] != '/')
		return DBX_EINVAL;
	idlen = strlen(id);
	end = id + idlen;
	if (idlen > 1 && id[idlen - 1] == '/')
		end--; /* one trailing slash is tolerated */

	p = id + 1;
	while (p <= end) {
		const char *slash = memchr(p, '/', (size_t)(end - p));
		const char *stop = slash ? slash : end;

		if (n == 8)
			return DBX_EINVAL; /* extra segments: a child resource, not this shape */
		seg[n] = p;
		seglen[n] = (size_t)(stop - p);
		if (!good_segment(seg[n], seglen[n]))
			return DBX_EINVAL;
		n++;
		if (!slash)
			break;
		p = slash + 1;
	}
	if (n != 8)
		return DBX_EINVAL;
	if (seglen[0] != 13 || strncasecmp(seg[0], "subscriptions", 13) != 0)
		return DBX_EINVAL;
	if (seglen[2] != 14 || strncasecmp(seg[2], "resourceGroups", 14) != 0)
		return DBX_EINVAL;
	if (seglen[4] != 9 || strncasecmp(seg[4], "providers", 9) != 0)
		return DBX_EINVAL;

	out[0] = strndup(seg[1], seglen[1]);
	out[1] = strndup(seg[3], seglen[3]);
	out[2] = strndup(seg[5], (size_t)(seg[6] + seglen[6] - seg[5])); /* "NS/TYPE" */
	out[3] = strndup(seg[7], seglen[7]);
	if (!out[0] || !out[1] || !out[2] || !out[3]) {
		rc = DBX_ENOMEM;
		goto out;
	}
	if (subscription) {
		*subscription = out[0];
		out[0] = NULL;
	}
	if (resource_group) {
		*resource_group = out[1];
		out[1] = NULL;
	}
	if (provider_type) {
		*provider_type = out[2];
		out[2] = NULL;
	}
	if (name) {
		*name = out[3];
		out[3] = NULL;
	}
	rc = DBX_OK;
out:
	for (size_t i = 0; i < 4; i++)
		free(out[i]);
	return rc;
}

/* ---- JobResource -> struct dbx_order ---- */

void dbx_order_free(struct dbx_order *order)
{
	if (!order)
		return;
	free(order->id);
	free(order->subscription);
	free(order->resource_group);
	free(order->name);
	free(order->location);
	free(order->sku);
	free(order->status);
	free(order->kek_url);
	free(order->kek_vault_id);
	free(order->kek_identity_type);
	free(order->kek_uai_id);
	free(order->identity_type);
	free(order->principal_id);
	free(order->tenant_id);
	for (size_t i = 0; i < order->n_uai; i++)
		free(order->uai_ids[i]);
	free(order->uai_ids);
	free(order->last_modified);
	free(order->malformed);
	for (size_t i = 0; i < order->n_problems; i++) {
		free(order->problems[i].code);
		free(order->problems[i].message);
		free(order->problems[i].target);
		free(order->problems[i].time);
	}
	free(order->problems);
	free(order);
}

struct dbx_order *dbx_order_dup(const struct dbx_order *o)
{
	struct dbx_order *c = calloc(1, sizeof(*c));
	bool oom = false;

	if (!c)
		return NULL;
	c->id = dup_str(o->id, &oom);
	c->subscription = dup_str(o->subscription, &oom);
	c->resource_group = dup_str(o->resource_group, &oom);
	c->name = dup_str(o->name, &oom);
	c->location = dup_str(o->location, &oom);
	c->sku = dup_str(o->sku, &oom);
	c->status = dup_str(o->status, &oom);
	c->has_details = o->has_details;
	c->kek_type = o->kek_type;
	c->kek_url = dup_str(o->kek_url, &oom);
	c->kek_vault_id = dup_str(o->kek_vault_id, &oom);
	c->kek_identity_type = dup_str(o->kek_identity_type, &oom);
	c->kek_uai_id = dup_str(o->kek_uai_id, &oom);
	c->identity_type = dup_str(o->identity_type, &oom);
	c->principal_id = dup_str(o->principal_id, &oom);
	c->tenant_id = dup_str(o->tenant_id, &oom);
	c->last_modified = dup_str(o->last_modified, &oom);
	c->mtime = o->mtime;
	if (o->malformed) {
		c->malformed = malloc(sizeof(*c->malformed));
		if (c->malformed)
			*c->malformed = *o->malformed;
		else
			oom = true;
	}
	if (o->n_uai) {
		c->uai_ids = calloc(o->n_uai, sizeof(*c->uai_ids));
		if (!c->uai_ids)
			oom = true;
		for (size_t i = 0; c->uai_ids && i < o->n_uai; i++) {
			c->uai_ids[i] = dup_str(o->uai_ids[i], &oom);
			c->n_uai++;
		}
	}
	if (o->n_problems) {
		c->problems = calloc(o->n_problems, sizeof(*c->problems));
		if (!c->problems)
			oom = true;
		for (size_t i = 0; c->problems && i < o->n_problems; i++) {
			c->problems[i].code = dup_str(o->problems[i].code, &oom);
			c->problems[i].message = dup_str(o->problems[i].message, &oom);
			c->problems[i].target = dup_str(o->problems[i].target, &oom);
			c->problems[i].time = dup_str(o->problems[i].time, &oom);
			c->n_problems++;
		}
	}
	if (oom) {
		dbx_order_free(c);
		return NULL;
	}
	return c;
}

/* Append one problem; strings are copied. */
static void add_problem(struct dbx_order *o, const char *code, const char *message,
			const char *target, const char *time, bool *oom)
{
	struct dbx_order_problem *grown, *p;

	grown = realloc(o->problems, (o->n_problems + 1) * sizeof(*grown));
	if (!grown) {
		*oom = true;
		return;
	}
	o->problems = grown;
	p = &o->problems[o->n_problems++];
	p->code = dup_str(code, oom);
	p->message = dup_str(message, oom);
	p->target = dup_str(target, oom);
	p->time = dup_str(time, oom);
}

/* A stage status the errors file reports: "Failed" or "WaitingForCustomerAction*". */
static bool stage_needs_attention(const char *status)
{
	return status &&
	       (strcmp(status, "Failed") == 0 || strncmp(status, "WaitingForCustomerAction",
							 strlen("WaitingForCustomerAction")) == 0);
}

static void read_problems(struct reader *r, struct dbx_order *o, struct json_object *props,
			  struct json_object *details, bool *oom)
{
	struct json_object *error = get_obj(r, props, "error", "properties.error");
	struct json_object *stages =
	    get_array(r, details, "jobStages", "properties.details.jobStages");

	if (error) {
		const char *code = get_str(r, error, "code", "properties.error.code");
		const char *message = get_str(r, error, "message", "properties.error.message");
		const char *target = get_str(r, error, "target", "properties.error.target");

		if ((code && *code) || (message && *message))
			add_problem(o, code && *code ? code : "UnknownError", message, target, NULL,
				    oom);
	}
	for (size_t i = 0; stages && i < json_object_array_length(stages); i++) {
		struct json_object *st = json_object_array_get_idx(stages, i);
		const char *status, *stage, *display, *when;
		char path[96], *text = NULL;
		int n;

		if (!st)
			continue; /* null: absent */
		snprintf(path, sizeof(path), "properties.details.jobStages[%zu]", i);
		if (!json_object_is_type(st, json_type_object)) {
			wrong_type(r, path, st, json_type_object);
			return;
		}
		snprintf(path, sizeof(path), "properties.details.jobStages[%zu].stageStatus", i);
		status = get_str(r, st, "stageStatus", path);
		snprintf(path, sizeof(path), "properties.details.jobStages[%zu].stageName", i);
		stage = get_str(r, st, "stageName", path);
		snprintf(path, sizeof(path), "properties.details.jobStages[%zu].displayName", i);
		display = get_str(r, st, "displayName", path);
		snprintf(path, sizeof(path), "properties.details.jobStages[%zu].stageTime", i);
		when = get_str(r, st, "stageTime", path);
		if (r->rc != DBX_OK)
			return;
		if (!stage_needs_attention(status))
			continue;
		if (stage && display)
			n = asprintf(&text, "Stage '%s' (%s) is %s", display, stage, status);
		else if (stage || display)
			n = asprintf(&text, "Stage %s is %s", stage ? stage : display, status);
		else
			n = asprintf(&text, "A stage is %s", status);
		if (n < 0) {
			*oom = true;
			return;
		}
		add_problem(o, status, text, stage, when, oom);
		free(text);
	}
}

#define KEK "properties.details.keyEncryptionKey"

static void read_kek(struct reader *r, struct dbx_order *o, struct json_object *details, bool *oom)
{
	struct json_object *kek = get_obj(r, details, "keyEncryptionKey", KEK);
	struct json_object *idp = get_obj(r, kek, "identityProperties", KEK ".identityProperties");
	struct json_object *ua =
	    get_obj(r, idp, "userAssigned", KEK ".identityProperties.userAssigned");
	const char *type = get_str(r, kek, "kekType", KEK ".kekType");

	/* Absent key or absent kekType: the service default; any other value is not ours to guess.
	 */
	if (type && strcasecmp(type, "CustomerManaged") == 0)
		o->kek_type = DBX_KEK_CUSTOMER;
	else if (!type || strcasecmp(type, "MicrosoftManaged") == 0)
		o->kek_type = DBX_KEK_MICROSOFT;
	else if (r->rc == DBX_OK) {
		char shown[80];

		quote_value(shown, sizeof(shown), type);
		r->rc = dbx_error_set(r->err, DBX_EREMOTE,
				      MALFORMED KEK ".kekType is \"%s\", expected MicrosoftManaged "
						    "or CustomerManaged",
				      shown);
	}
	o->kek_url = dup_str(get_str(r, kek, "kekUrl", KEK ".kekUrl"), oom);
	o->kek_vault_id =
	    dup_str(get_str(r, kek, "kekVaultResourceID", KEK ".kekVaultResourceID"), oom);
	o->kek_identity_type =
	    dup_str(get_str(r, idp, "type", KEK ".identityProperties.type"), oom);
	o->kek_uai_id = dup_str(
	    get_str(r, ua, "resourceId", KEK ".identityProperties.userAssigned.resourceId"), oom);
}

static void read_identity(struct reader *r, struct dbx_order *o, struct json_object *job, bool *oom)
{
	struct json_object *ident = get_obj(r, job, "identity", "identity");
	struct json_object *uais =
	    get_obj(r, ident, "userAssignedIdentities", "identity.userAssignedIdentities");
	const char *type = get_str(r, ident, "type", "identity.type");

	o->identity_type = dup_str(type && *type ? type : "None", oom);
	o->principal_id = dup_str(get_str(r, ident, "principalId", "identity.principalId"), oom);
	o->tenant_id = dup_str(get_str(r, ident, "tenantId", "identity.tenantId"), oom);
	if (!uais || json_object_object_length(uais) == 0)
		return;
	o->uai_ids = calloc((size_t)json_object_object_length(uais), sizeof(*o->uai_ids));
	if (!o->uai_ids) {
		*oom = true;
		return;
	}
	json_object_object_foreach(uais, key, val)
	{
		/* {"principalId", "clientId"} per identity; null reads as an empty one. */
		if (val && !json_object_is_type(val, json_type_object)) {
			char path[400];

			snprintf(path, sizeof(path), "identity.userAssignedIdentities[\"%.340s\"]",
				 key);
			for (char *p = path; *p; p++) {
				if ((unsigned char)*p < 0x20)
					*p = '?';
			}
			wrong_type(r, path, val, json_type_object);
			return;
		}
		o->uai_ids[o->n_uai++] = dup_str(key, oom);
	}
}

/*
 * The part of a job that names it: id (a Data Box job ID) and name (its
 * last segment), into o->id, subscription, resource_group and name.
 * DBX_EREMOTE (err says which) when they are missing, mistyped or
 * malformed.
 */
static enum dbx_err read_names(struct json_object *job, struct dbx_order *o, struct dbx_error *err)
{
	struct reader r = {.err = err};
	const char *id = get_str(&r, job, "id", "id");
	const char *name = get_str(&r, job, "name", "name");
	char *id_name = NULL, *id_type = NULL;
	bool oom = false;
	enum dbx_err rc;

	if (r.rc != DBX_OK)
		return r.rc;
	if (!id || !name) {
		rc = dbx_error_set(err, DBX_EREMOTE, MALFORMED "the job has no %s",
				   !id ? "\"id\"" : "\"name\"");
		goto out;
	}
	rc = dbx_arm_id_parse(id, &o->subscription, &o->resource_group, &id_type, &id_name);
	if (rc == DBX_ENOMEM) {
		rc = dbx_error_set(err, DBX_ENOMEM, "out of memory");
		goto out;
	}
	if (rc != DBX_OK || strcasecmp(id_type, "Microsoft.DataBox/jobs") != 0) {
		rc = dbx_error_set(err, DBX_EREMOTE, MALFORMED "id is not a Data Box job ID");
		goto out;
	}
	/* The name becomes a directory entry: it must be the id's own last segment. */
	if (strcasecmp(name, id_name) != 0) {
		rc = dbx_error_set(err, DBX_EREMOTE, MALFORMED "name does not match id");
		goto out;
	}
	o->id = dup_str(id, &oom);
	o->name = dup_str(name, &oom);
	if (oom)
		rc = dbx_error_set(err, DBX_ENOMEM, "out of memory");
out:
	free(id_name);
	free(id_type);
	return rc;
}

enum dbx_err dbx_order_from_json(struct json_object *job, struct dbx_order **out,
				 struct dbx_error *err)
{
	struct json_object *props, *details, *sys;
	struct dbx_order *o = NULL;
	struct reader r = {.err = err};
	const char *modified, *type;
	bool oom = false;
	enum dbx_err rc = DBX_OK;

	*out = NULL;
	if (!job || !json_object_is_type(job, json_type_object)) {
		rc = dbx_error_set(err, DBX_EREMOTE, MALFORMED "the job is not a JSON object");
		goto out;
	}
	o = calloc(1, sizeof(*o));
	if (!o) {
		rc = dbx_error_set(err, DBX_ENOMEM, "out of memory");
		goto out;
	}
	rc = read_names(job, o, err);
	if (rc != DBX_OK)
		goto out;

	type = get_str(&r, job, "type", "type");
	if (type && strcasecmp(type, "Microsoft.DataBox/jobs") != 0 && r.rc == DBX_OK) {
		char shown[80];

		quote_value(shown, sizeof(shown), type);
		r.rc = dbx_error_set(err, DBX_EREMOTE,
				     MALFORMED "type is \"%s\", expected Microsoft.DataBox/jobs",
				     shown);
	}
	props = get_obj(&r, job, "properties", "properties");
	details = get_obj(&r, props, "details", "properties.details");
	o->location = dup_str(get_str(&r, job, "location", "location"), &oom);
	o->sku = dup_str(get_str(&r, get_obj(&r, job, "sku", "sku"), "name", "sku.name"), &oom);
	o->status = dup_str(get_str(&r, props, "status", "properties.status"), &oom);
	o->has_details = details != NULL;
	read_kek(&r, o, details, &oom);
	read_identity(&r, o, job, &oom);
	sys = get_obj(&r, job, "systemData", "systemData");
	modified = get_str(&r, sys, "lastModifiedAt", "systemData.lastModifiedAt");
	if (modified) {
		time_t t = dbx_parse_time(modified);

		o->last_modified = dup_str(modified, &oom);
		o->mtime = t == (time_t)-1 ? 0 : t;
	}
	read_problems(&r, o, props, details, &oom);
	if (oom) {
		rc = dbx_error_set(err, DBX_ENOMEM, "out of memory");
		goto out;
	}
	if (r.rc != DBX_OK) {
		rc = r.rc;
		goto out;
	}
	*out = o;
	o = NULL;
out:
	dbx_order_free(o);
	return rc;
}

enum dbx_err dbx_order_malformed_stub(struct json_object *job, const struct dbx_error *why,
				      struct dbx_order **out)
{
	struct dbx_order *o = NULL;
	struct dbx_error e = {0};
	enum dbx_err rc = DBX_EREMOTE;

	*out = NULL;
	if (!job || !json_object_is_type(job, json_type_object) || !why)
		return DBX_EREMOTE;
	o = calloc(1, sizeof(*o));
	if (!o)
		return DBX_ENOMEM;
	rc = read_names(job, o, &e);
	if (rc != DBX_OK)
		goto out;
	o->identity_type = strdup("None");
	o->malformed = malloc(sizeof(*o->malformed));
	if (!o->identity_type || !o->malformed) {
		rc = DBX_ENOMEM;
		goto out;
	}
	*o->malformed = *why;
	o->malformed->err = DBX_EREMOTE;
	*out = o;
	o = NULL;
out:
	dbx_order_free(o);
	return rc;
}

enum dbx_err dbx_order_parse(const char *text, size_t len, struct dbx_order **out,
			     struct dbx_error *err)
{
	struct json_object *job = NULL;
	enum dbx_err rc;

	*out = NULL;
	rc = dbx_json_parse_object(text, len, "malformed answer from ARM", &job, err);
	if (rc != DBX_OK)
		goto out;
	rc = dbx_order_from_json(job, out, err);
out:
	json_object_put(job);
	return rc;
}

bool dbx_order_type_has(const char *types, const char *token)
{
	size_t n = strlen(token);
	const char *p = types;

	while (p && *p) {
		const char *comma = strchr(p, ',');
		const char *e = comma ? comma : p + strlen(p);

		while (p < e && isspace((unsigned char)*p))
			p++;
		while (e > p && isspace((unsigned char)e[-1]))
			e--;
		if ((size_t)(e - p) == n && strncasecmp(p, token, n) == 0)
			return true;
		p = comma ? comma + 1 : NULL;
	}
	return false;
}

const char *dbx_order_identity(const struct dbx_order *order)
{
	if (!order)
		return "None";
	if (order->kek_identity_type && strcasecmp(order->kek_identity_type, "UserAssigned") == 0 &&
	    order->kek_uai_id && *order->kek_uai_id)
		return order->kek_uai_id;
	if (dbx_order_type_has(order->identity_type, "SystemAssigned"))
		return "SystemAssigned";
	return "None";
}

/*
 * ---- PATCH bodies (writes) ----
 *
 * A write sends JobResourceUpdateParameter (docs/azure.md, "The job
 * resource" and "PATCH") with only the objects it changes:
 *   {"properties": {"details": {"keyEncryptionKey": {"kekType", "kekUrl",
 *     "kekVaultResourceID", "identityProperties": {"type",
 *     "userAssigned": {"resourceId"}}}}},
 *    "identity": {"type", "userAssignedIdentities": {"<id>": {}}}}
 * The builder belongs here, next to the reader, so the wire names live in
 * one file.
 */

/* Add key = string value to obj; false on ENOMEM. */
static bool put_str(struct json_object *obj, const char *key, const char *value)
{
	struct json_object *v = json_object_new_string(value);

	if (!v)
		return false;
	if (json_object_object_add(obj, key, v) != 0) {
		json_object_put(v);
		return false;
	}
	return true;
}

/* Add key = child to obj, taking child; false on ENOMEM (child released). */
static bool put_obj(struct json_object *obj, const char *key, struct json_object *child)
{
	if (!child)
		return false;
	if (json_object_object_add(obj, key, child) != 0) {
		json_object_put(child);
		return false;
	}
	return true;
}

/* keyEncryptionKey from want; NULL with *rc set on failure. */
static struct json_object *build_kek(const struct dbx_order *want, enum dbx_err *rc,
				     struct dbx_error *err)
{
	struct json_object *kek = json_object_new_object(), *idp = NULL, *ua = NULL;
	bool user =
	    want->kek_identity_type && strcasecmp(want->kek_identity_type, "UserAssigned") == 0;

	if (!kek)
		goto oom;
	if (want->kek_type == DBX_KEK_MICROSOFT) {
		/* Microsoft managed: the type alone drops the key, its vault and its identity. */
		if (!put_str(kek, "kekType", "MicrosoftManaged"))
			goto oom;
		return kek;
	}
	if (!want->kek_url || !*want->kek_url || !want->kek_vault_id || !*want->kek_vault_id) {
		*rc = dbx_error_set(err, DBX_EINVAL,
				    "a customer-managed key needs a key URL and its vault");
		json_object_put(kek);
		return NULL;
	}
	if (user && (!want->kek_uai_id || !*want->kek_uai_id)) {
		*rc = dbx_error_set(err, DBX_EINVAL, "a user-assigned key identity needs its ID");
		json_object_put(kek);
		return NULL;
	}
	if (!put_str(kek, "kekType", "CustomerManaged") || !put_str(kek, "kekUrl", want->kek_url) ||
	    !put_str(kek, "kekVaultResourceID", want->kek_vault_id))
		goto oom;
	if (want->kek_identity_type && *want->kek_identity_type) {
		idp = json_object_new_object();
		if (!idp || !put_str(idp, "type", user ? "UserAssigned" : want->kek_identity_type))
			goto oom;
		if (user) {
			ua = json_object_new_object();
			if (!ua || !put_str(ua, "resourceId", want->kek_uai_id))
				goto oom;
			if (!put_obj(idp, "userAssigned", ua)) {
				ua = NULL;
				goto oom;
			}
			ua = NULL;
		}
		if (!put_obj(kek, "identityProperties", idp)) {
			idp = NULL;
			goto oom;
		}
		idp = NULL;
	}
	return kek;
oom:
	json_object_put(ua);
	json_object_put(idp);
	json_object_put(kek);
	*rc = dbx_error_set(err, DBX_ENOMEM, "out of memory");
	return NULL;
}

/* The job identity from want; NULL with *rc set on failure. */
static struct json_object *build_identity(const struct dbx_order *want, enum dbx_err *rc,
					  struct dbx_error *err)
{
	struct json_object *ident = json_object_new_object(), *uais = NULL;
	const char *type =
	    want->identity_type && *want->identity_type ? want->identity_type : "None";

	if (!ident)
		goto oom;
	if (!put_str(ident, "type", type))
		goto oom;
	if (!dbx_order_type_has(type, "UserAssigned"))
		return ident;
	if (want->n_uai == 0) {
		*rc = dbx_error_set(err, DBX_EINVAL,
				    "identity type %s needs a user-assigned identity", type);
		json_object_put(ident);
		return NULL;
	}
	uais = json_object_new_object();
	if (!uais)
		goto oom;
	for (size_t i = 0; i < want->n_uai; i++) {
		struct json_object *empty;

		if (!want->uai_ids[i] || !*want->uai_ids[i]) {
			*rc = dbx_error_set(err, DBX_EINVAL, "empty user-assigned identity ID");
			json_object_put(uais);
			json_object_put(ident);
			return NULL;
		}
		/* ARM wants {} per identity: principalId and clientId are read-only. */
		empty = json_object_new_object();
		if (!put_obj(uais, want->uai_ids[i], empty))
			goto oom;
	}
	if (!put_obj(ident, "userAssignedIdentities", uais)) {
		uais = NULL;
		goto oom;
	}
	return ident;
oom:
	json_object_put(uais);
	json_object_put(ident);
	*rc = dbx_error_set(err, DBX_ENOMEM, "out of memory");
	return NULL;
}

enum dbx_err dbx_order_patch_body(const struct dbx_order *want, unsigned what, char **body,
				  struct dbx_error *err)
{
	struct json_object *root = NULL, *props, *details, *part;
	const char *text;
	enum dbx_err rc = DBX_OK;

	*body = NULL;
	if (!want || (what & (DBX_PATCH_KEK | DBX_PATCH_IDENTITY)) == 0 ||
	    (what & ~(DBX_PATCH_KEK | DBX_PATCH_IDENTITY)) != 0) {
		rc = dbx_error_set(err, DBX_EINVAL, "nothing to change");
		goto out;
	}
	root = json_object_new_object();
	if (!root)
		goto oom;
	if (what & DBX_PATCH_KEK) {
		part = build_kek(want, &rc, err);
		if (!part)
			goto out;
		details = json_object_new_object();
		if (!details) {
			json_object_put(part);
			goto oom;
		}
		if (!put_obj(details, "keyEncryptionKey", part)) {
			json_object_put(details);
			goto oom;
		}
		props = json_object_new_object();
		if (!props) {
			json_object_put(details);
			goto oom;
		}
		if (!put_obj(props, "details", details)) {
			json_object_put(props);
			goto oom;
		}
		if (!put_obj(root, "properties", props))
			goto oom;
	}
	if (what & DBX_PATCH_IDENTITY) {
		part = build_identity(want, &rc, err);
		if (!part)
			goto out;
		if (!put_obj(root, "identity", part))
			goto oom;
	}
	/* Plain, and "/" unescaped: ARM IDs stay readable in logs and emulator dumps. */
	text = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN |
							JSON_C_TO_STRING_NOSLASHESCAPE);
	if (!text)
		goto oom;
	*body = strdup(text);
	if (!*body)
		goto oom;
	goto out;
oom:
	rc = dbx_error_set(err, DBX_ENOMEM, "out of memory");
out:
	json_object_put(root);
	return rc;
}

bool dbx_order_kek_blocked(const struct dbx_order *order)
{
	for (size_t i = 0; order && i < order->n_problems; i++) {
		const char *code = order->problems[i].code;

		if (code && (strncmp(code, "SsemUser", 8) == 0 ||
			     strcmp(code, "WaitingForCustomerActionForKek") == 0))
			return true;
	}
	return false;
}
