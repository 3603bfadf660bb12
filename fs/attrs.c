/*
 * attrs.c: the table of order files and their show/store functions.
 *
 * Every file holds one value followed by "\n"; an absent value is an empty
 * file (0 bytes). encryption.json is the five key values as one indented
 * JSON object (json-c, two-space indent, "key": value, absent values as
 * null, no escaping of '/'), followed by "\n". errors is rendered through
 * dbx_error_block_append() so every producer writes the same block format
 * (DESIGN.md 4): a "read" block when the latest refresh of the order failed,
 * then one "order" block per problem the service reports, newest first.
 *
 * The store functions parse the value sysfs-style and return DBX_EROFS:
 * writes are not enabled yet (the write pipeline will fill them in).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "databoxfs/ssem.h"
#include "attrs.h"

/* One value followed by "\n", or an empty file when value is NULL or "". */
static enum dbx_err show_line(const char *value, char **buf, size_t *len)
{
	size_t n = value ? strlen(value) : 0;
	char *out = malloc(n ? n + 2 : 1);

	if (!out)
		return DBX_ENOMEM;
	if (n) {
		memcpy(out, value, n);
		out[n++] = '\n';
	}
	out[n] = '\0';
	*buf = out;
	*len = n;
	return DBX_OK;
}

static bool customer_managed(const struct dbx_order *o)
{
	return o && o->kek_type == DBX_KEK_CUSTOMER;
}

static const char *kek_type_str(const struct dbx_order *o)
{
	return customer_managed(o) ? "CustomerManaged" : "MicrosoftManaged";
}

static const char *key_url_str(const struct dbx_order *o)
{
	return customer_managed(o) ? o->kek_url : NULL;
}

static const char *key_vault_str(const struct dbx_order *o)
{
	return customer_managed(o) ? o->kek_vault_id : NULL;
}

static const char *identity_str(const struct dbx_order *o)
{
	return o ? dbx_order_identity(o) : NULL;
}

static const char *principal_id_str(const struct dbx_order *o)
{
	return o ? o->principal_id : NULL;
}

static enum dbx_err show_kek_type(const struct dbx_attr_ctx *ctx, char **buf, size_t *len)
{
	return show_line(ctx->order ? kek_type_str(ctx->order) : NULL, buf, len);
}

static enum dbx_err show_key_url(const struct dbx_attr_ctx *ctx, char **buf, size_t *len)
{
	return show_line(key_url_str(ctx->order), buf, len);
}

static enum dbx_err show_key_vault(const struct dbx_attr_ctx *ctx, char **buf, size_t *len)
{
	return show_line(key_vault_str(ctx->order), buf, len);
}

static enum dbx_err show_identity(const struct dbx_attr_ctx *ctx, char **buf, size_t *len)
{
	return show_line(identity_str(ctx->order), buf, len);
}

static enum dbx_err show_principal_id(const struct dbx_attr_ctx *ctx, char **buf, size_t *len)
{
	return show_line(principal_id_str(ctx->order), buf, len);
}

static enum dbx_err show_status(const struct dbx_attr_ctx *ctx, char **buf, size_t *len)
{
	return show_line(ctx->order ? ctx->order->status : NULL, buf, len);
}

/* Add key: value (a JSON string, or null when value is NULL or "") to obj. */
static int json_add(struct json_object *obj, const char *key, const char *value)
{
	struct json_object *v = NULL;

	if (value && *value) {
		v = json_object_new_string(value);
		if (!v)
			return -1;
	}
	return json_object_object_add(obj, key, v);
}

static enum dbx_err show_encryption_json(const struct dbx_attr_ctx *ctx, char **buf, size_t *len)
{
	const struct dbx_order *o = ctx->order;
	struct json_object *obj = NULL;
	const char *text;
	enum dbx_err rc = DBX_ENOMEM;
	size_t n;
	char *out;

	if (!o)
		return show_line(NULL, buf, len);
	obj = json_object_new_object();
	if (!obj)
		goto out;
	if (json_add(obj, "encryption_type", kek_type_str(o)) ||
	    json_add(obj, "key_url", key_url_str(o)) ||
	    json_add(obj, "key_vault", key_vault_str(o)) ||
	    json_add(obj, "identity", identity_str(o)) ||
	    json_add(obj, "principal_id", principal_id_str(o)))
		goto out;
	text =
	    json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
						    JSON_C_TO_STRING_NOSLASHESCAPE);
	if (!text)
		goto out;
	n = strlen(text);
	out = malloc(n + 2);
	if (!out)
		goto out;
	memcpy(out, text, n);
	out[n++] = '\n';
	out[n] = '\0';
	*buf = out;
	*len = n;
	rc = DBX_OK;
out:
	json_object_put(obj);
	return rc;
}

/* ISO 8601 UTC ("2026-11-28T12:00:00Z") of t into out. */
static void format_time(time_t t, char out[32])
{
	struct tm tm;

	if (!gmtime_r(&t, &tm) || !strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(out, 32, "%lld", (long long)t);
}

struct problem_ref {
	const struct dbx_order_problem *p;
	const char *time_raw; /* the stage time, or the order's lastModifiedAt */
	time_t t;	      /* parsed, -1 when unknown */
};

/* What the mount advises when a read fails without a service code to decode. */
struct read_advice {
	enum dbx_err err;
	const char *code;
	const char *recoverable;
	const char *remedy;
};

static const struct read_advice read_advice[] = {
    {DBX_EUNREACHABLE, "HostUnreachable", "yes",
     "Azure Resource Manager could not be reached (DNS, connection or TLS failure). Check the "
     "network, proxy and firewall; the next read tries again."},
    {DBX_ETIMEDOUT, "Timeout", "yes",
     "Azure Resource Manager did not answer within the timeout. Try again later, or mount with a "
     "larger -o timeout=SECONDS."},
    {DBX_ETHROTTLED, "Throttled", "yes",
     "Azure Resource Manager throttled the requests (429) beyond the retry budget. Wait a minute "
     "and read again; a larger -o cache_ttl= makes fewer requests."},
    {DBX_EAUTH, "AuthenticationFailed", "yes",
     "No credential could produce a token. Check the AZURE_* environment variables, the managed "
     "identity or 'az login', and the -o credential= option."},
    {DBX_EACCES, "AccessDenied", "yes",
     "The mount's credential may not read this order. Grant it a role with "
     "Microsoft.DataBox/jobs/read (for example Reader) on the subscription or resource group."},
    {DBX_ENOTFOUND, "NotFound", "no", "The order no longer exists."},
    {DBX_EBUSY, "Conflict", "depends",
     "The service refused the request in the order's current state."},
    {DBX_EINVAL, "BadRequest", "no",
     "The service refused the request. Check -o api_version= and the subscription ID."},
    {DBX_EINTR, "Interrupted", "yes", "The read was interrupted; read again."},
    {DBX_ENOMEM, "OutOfMemory", "yes", "The mount ran out of memory; read again."},
    {DBX_ECONFIG, "ConfigurationError", "no", "Check the mount options and environment."},
};

static const struct read_advice generic_advice = {
    DBX_EREMOTE, "ServiceError", "depends",
    "Azure Resource Manager failed or answered something unexpected. Try again later; quote the "
    "request_id in a support ticket if it persists."};

static const struct read_advice *advice_for(enum dbx_err err)
{
	for (size_t i = 0; i < sizeof(read_advice) / sizeof(read_advice[0]); i++) {
		if (read_advice[i].err == err)
			return &read_advice[i];
	}
	return &generic_advice;
}

const char *dbx_attr_read_code(enum dbx_err err)
{
	return advice_for(err)->code;
}

static enum dbx_err append_read_block(char **buf, size_t *len, const struct dbx_attr_ctx *ctx)
{
	const struct dbx_error *e = ctx->read_err;
	const struct read_advice *a = advice_for(e->err);
	struct dbx_error_block b = {0};
	char when[32];

	format_time(ctx->read_time, when);
	b.code = e->code[0] ? e->code : a->code;
	b.source = "read";
	b.time = when;
	b.message = e->message[0] ? e->message : dbx_err_str(e->err);
	b.request_id = e->request_id[0] ? e->request_id : NULL;
	b.recoverable = a->recoverable;
	b.remedy = a->remedy;
	return dbx_error_block_append(buf, len, &b);
}

static enum dbx_err append_order_blocks(char **buf, size_t *len, const struct dbx_order *o)
{
	struct problem_ref *refs = NULL;
	enum dbx_err rc = DBX_OK;

	if (!o || !o->n_problems)
		return DBX_OK;
	refs = calloc(o->n_problems, sizeof(*refs));
	if (!refs)
		return DBX_ENOMEM;
	/* Newest first: stable insertion sort on time, unknown times keep their place at the end.
	 */
	for (size_t i = 0; i < o->n_problems; i++) {
		struct problem_ref r = {&o->problems[i], o->problems[i].time, -1};
		size_t j = i;

		if (!r.time_raw)
			r.time_raw = o->last_modified;
		if (r.time_raw)
			r.t = dbx_parse_time(r.time_raw);
		while (j > 0 && refs[j - 1].t < r.t) {
			refs[j] = refs[j - 1];
			j--;
		}
		refs[j] = r;
	}
	for (size_t i = 0; i < o->n_problems && rc == DBX_OK; i++) {
		struct dbx_error_block b = {0};
		char when[32];

		if (!refs[i].p->code || !*refs[i].p->code)
			continue;
		b.code = refs[i].p->code;
		b.source = "order";
		if (refs[i].t >= 0) {
			format_time(refs[i].t, when);
			b.time = when;
		} else {
			b.time = refs[i].time_raw;
		}
		b.message = refs[i].p->message;
		b.target = refs[i].p->target;
		rc = dbx_error_block_append(buf, len, &b);
	}
	free(refs);
	return rc;
}

static enum dbx_err show_errors(const struct dbx_attr_ctx *ctx, char **buf, size_t *len)
{
	char *text = NULL;
	size_t n = 0;
	enum dbx_err rc = DBX_OK;

	if (ctx->read_err && ctx->read_err->err != DBX_OK)
		rc = append_read_block(&text, &n, ctx);
	if (rc == DBX_OK)
		rc = append_order_blocks(&text, &n, ctx->order);
	if (rc != DBX_OK)
		goto out;
	if (!text) {
		text = calloc(1, 1);
		if (!text) {
			rc = DBX_ENOMEM;
			goto out;
		}
	}
	*buf = text;
	*len = n;
	text = NULL;
out:
	free(text);
	return rc;
}

/* The common part of every store for now: the sysfs parse, then "not yet". */
static enum dbx_err store_not_enabled(const char *name, const char *value, size_t len,
				      struct dbx_error *err)
{
	size_t n;

	(void)dbx_attr_trim(value, len, &n);
	return dbx_error_set(err, DBX_EROFS, "%s: writes are not enabled in this version", name);
}

static enum dbx_err store_kek_type(const struct dbx_attr_ctx *ctx, const char *value, size_t len,
				   struct dbx_error *err)
{
	return store_not_enabled("encryption_type", value, len, err);
}

static enum dbx_err store_key_url(const struct dbx_attr_ctx *ctx, const char *value, size_t len,
				  struct dbx_error *err)
{
	return store_not_enabled("key_url", value, len, err);
}

static enum dbx_err store_identity(const struct dbx_attr_ctx *ctx, const char *value, size_t len,
				   struct dbx_error *err)
{
	return store_not_enabled("identity", value, len, err);
}

static enum dbx_err store_encryption_json(const struct dbx_attr_ctx *ctx, const char *value,
					  size_t len, struct dbx_error *err)
{
	return store_not_enabled("encryption.json", value, len, err);
}

/* clang-format off */
static const struct dbx_attr order_attrs[] = {
	{ .name = "encryption_type", .mode = 0644, .show = show_kek_type,        .store = store_kek_type },
	{ .name = "key_url",         .mode = 0644, .show = show_key_url,         .store = store_key_url },
	{ .name = "key_vault",       .mode = 0444, .show = show_key_vault },
	{ .name = "identity",        .mode = 0644, .show = show_identity,        .store = store_identity },
	{ .name = "principal_id",    .mode = 0444, .show = show_principal_id },
	{ .name = "encryption.json", .mode = 0644, .show = show_encryption_json, .store = store_encryption_json },
	{ .name = "status",          .mode = 0444, .show = show_status },
	{ .name = "errors",          .mode = 0444, .show = show_errors },
};
/* clang-format on */

const struct dbx_attr *const dbx_attrs = order_attrs;
const size_t dbx_attrs_len = sizeof(order_attrs) / sizeof(order_attrs[0]);

int dbx_attr_find(const char *name)
{
	for (size_t i = 0; i < dbx_attrs_len; i++) {
		if (strcmp(dbx_attrs[i].name, name) == 0)
			return (int)i;
	}
	return -1;
}

enum dbx_err dbx_attr_show(size_t i, const struct dbx_attr_ctx *ctx, char **buf, size_t *len)
{
	*buf = NULL;
	*len = 0;
	if (i >= dbx_attrs_len)
		return DBX_EINVAL;
	return dbx_attrs[i].show(ctx, buf, len);
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

const char *dbx_attr_trim(const char *value, size_t len, size_t *out_len)
{
	if (len && value[len - 1] == '\n')
		len--;
	while (len && is_blank(value[len - 1]))
		len--;
	while (len && is_blank(*value)) {
		value++;
		len--;
	}
	*out_len = len;
	return value;
}
