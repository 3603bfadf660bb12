/*
 * attrs.c: the table of order files and their show/store functions.
 *
 * Every file holds one value followed by "\n"; an absent value is an empty
 * file (0 bytes). encryption.json is the five key values as one indented
 * JSON object (json-c, two-space indent, "key": value, absent values as
 * null, no escaping of '/'), followed by "\n". errors hands
 * what the cached state knows (the order's problems, the failed refresh,
 * the last failed write) to errors.h, which owns that file's format
 * (docs/formats.md, "The errors file"). operation shows the text fs.c
 * keeps for a write in flight (docs/formats.md, "The operation file").
 *
 * The store functions turn a written value into a validated change without
 * any request: the value is trimmed sysfs-style (surrounding blanks, one
 * trailing newline), compared with what the file shows now (equal: a no-op,
 * decided before validating so a value that came from ARM can always be
 * written back), then validated by validate.h into a struct
 * dbx_encryption_change that fs.c applies with dbx_update_apply().
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#include "databoxfs/errors.h"
#include "databoxfs/json_scan.h"
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

/*
 * errors: what the cached state knows, handed to errors.h, which owns the
 * format (docs/formats.md, "The errors file").
 */
static enum dbx_err show_errors(const struct dbx_attr_ctx *ctx, char **buf, size_t *len)
{
	const struct dbx_errors_input in = {
	    .problems = ctx->order ? ctx->order->problems : NULL,
	    .n_problems = ctx->order ? ctx->order->n_problems : 0,
	    .order_time = ctx->order ? ctx->order->last_modified : NULL,
	    .read_err = ctx->read_err,
	    .read_time = ctx->read_time,
	    .write_err = ctx->write_err,
	    .write_time = ctx->write_time,
	    .write_target = ctx->write_target,
	};

	return dbx_errors_render(&in, buf, len);
}

/*
 * operation: the write in flight for this order, as fs.c renders it
 * (docs/formats.md, "The operation file"), already ending in "\n"; empty
 * when idle.
 */
static enum dbx_err show_operation(const struct dbx_attr_ctx *ctx, char **buf, size_t *len)
{
	size_t n = ctx->operation ? strlen(ctx->operation) : 0;
	char *out = malloc(n + 1);

	if (!out)
		return DBX_ENOMEM;
	memcpy(out, n ? ctx->operation : "", n);
	out[n] = '\0';
	*buf = out;
	*len = n;
	return DBX_OK;
}

/* ---- store: a written value -> a validated change (no network) ---- */

/* Is v[0..n) exactly cur (NULL or "" for an empty file)? */
static bool is_current(const char *cur, const char *v, size_t n)
{
	size_t cl = cur ? strlen(cur) : 0;

	return cl == n && (n == 0 || memcmp(cur, v, n) == 0);
}

static const struct dbx_cloud *write_cloud(const struct dbx_attr_ctx *ctx)
{
	return ctx->write->cloud ? ctx->write->cloud : dbx_cloud_default();
}

/* The settings (validate.h), each its own one-line file and an encryption.json key. */
static const struct {
	const char *key; /* the file's name and the encryption.json key */
	const char *(*current)(const struct dbx_order *o);
} settings[] = {
    [DBX_SETTING_KEK_TYPE] = {"encryption_type", kek_type_str},
    [DBX_SETTING_KEY_URL] = {"key_url", key_url_str},
    [DBX_SETTING_IDENTITY] = {"identity", identity_str},
};

/*
 * The one-line files, sysfs style: trim, decide whether the value is the
 * one the file shows now (a no-op, decided before validating), else
 * validate it into ctx->write->change.
 */
static enum dbx_err store_setting(const struct dbx_attr_ctx *ctx, enum dbx_setting s,
				  const char *value, size_t len, struct dbx_error *err)
{
	struct dbx_attr_write *w = ctx->write;
	const char *v;
	size_t n;
	enum dbx_err rc;

	memset(&w->change, 0, sizeof(w->change));
	w->noop = false;
	w->used_current = false;
	rc = dbx_value_trim(value, len, &v, &n, err);
	if (rc != DBX_OK)
		return rc;
	if (ctx->order && is_current(settings[s].current(ctx->order), v, n)) {
		w->used_current = true;
		/* The same key again on a blocked order: the service re-checks it (update.c). */
		w->noop = s != DBX_SETTING_KEY_URL || !dbx_order_kek_blocked(ctx->order);
		if (w->noop)
			return DBX_OK;
	}
	if (s == DBX_SETTING_KEY_URL && n == 0) {
		/* One meaning per file: the way back to Microsoft managed keys is its own file. */
		rc = dbx_error_set(err, DBX_EINVAL,
				   "key_url: an empty value is not a key; to use Microsoft managed "
				   "keys run: echo MicrosoftManaged > encryption_type");
		if (err)
			snprintf(err->code, sizeof(err->code), "%s",
				 "SsemUserErrorInvalidKeyVaultUrl");
		return rc;
	}
	return dbx_validate_setting(s, v, n, write_cloud(ctx), &w->change, err);
}

static enum dbx_err store_kek_type(const struct dbx_attr_ctx *ctx, const char *value, size_t len,
				   struct dbx_error *err)
{
	return store_setting(ctx, DBX_SETTING_KEK_TYPE, value, len, err);
}

static enum dbx_err store_key_url(const struct dbx_attr_ctx *ctx, const char *value, size_t len,
				  struct dbx_error *err)
{
	return store_setting(ctx, DBX_SETTING_KEY_URL, value, len, err);
}

static enum dbx_err store_identity(const struct dbx_attr_ctx *ctx, const char *value, size_t len,
				   struct dbx_error *err)
{
	return store_setting(ctx, DBX_SETTING_IDENTITY, value, len, err);
}

/* Is JSON member k: v (v NULL for null) the value the file shows for o? Derived keys never are. */
static bool json_member_current(const struct dbx_order *o, const char *k, struct json_object *v)
{
	for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]); i++) {
		const char *cur;

		if (strcmp(k, settings[i].key) != 0)
			continue;
		cur = settings[i].current(o);
		if (!v)
			return !cur || !*cur;
		if (!json_object_is_type(v, json_type_string))
			return false;
		return is_current(cur, json_object_get_string(v),
				  (size_t)json_object_get_string_len(v));
	}
	return false;
}

/*
 * value parsed by json-c and written out again, without the members equal
 * to what the file shows for o when drop_current. *out malloc'd; DBX_EINVAL
 * when value is not one JSON object, or names a member twice (the caller
 * keeps its own error).
 */
static enum dbx_err json_rewrite(const struct dbx_order *o, const char *value, size_t len,
				 bool drop_current, char **out)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *in = NULL, *copy = NULL;
	enum dbx_err rc = DBX_ENOMEM;
	const char *text;

	*out = NULL;
	if (!tok)
		goto out;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_ALLOW_TRAILING_CHARS);
	in = json_tokener_parse_ex(tok, value, (int)len);
	if (!in || !json_object_is_type(in, json_type_object) ||
	    /* json-c keeps one of duplicate names: the text must have no more. */
	    (size_t)json_object_object_length(in) != dbx_json_count_members(value, len)) {
		rc = DBX_EINVAL;
		goto out;
	}
	for (size_t i = json_tokener_get_parse_end(tok); i < len; i++) {
		if (!isspace((unsigned char)value[i])) {
			rc = DBX_EINVAL; /* data after the object */
			goto out;
		}
	}
	copy = json_object_new_object();
	if (!copy)
		goto out;
	json_object_object_foreach(in, k, v)
	{
		if (drop_current && json_member_current(o, k, v))
			continue;
		if (json_object_object_add(copy, k, json_object_get(v)) != 0)
			goto out;
	}
	text = json_object_to_json_string_ext(copy, JSON_C_TO_STRING_PLAIN |
							JSON_C_TO_STRING_NOSLASHESCAPE);
	*out = text ? strdup(text) : NULL;
	if (*out)
		rc = DBX_OK;
out:
	json_object_put(copy);
	json_object_put(in);
	if (tok)
		json_tokener_free(tok);
	return rc;
}

/* Clear the fields of ch that would not change o; true when none is left. */
static bool drop_unchanged(const struct dbx_order *o, struct dbx_encryption_change *ch)
{
	const char *url = key_url_str(o);
	const char *id = identity_str(o);

	if (ch->has_kek_type &&
	    (ch->kek_type == DBX_KEK_CHOICE_CUSTOMER) == (o->kek_type == DBX_KEK_CUSTOMER))
		ch->has_kek_type = false;
	if (ch->has_key_url &&
	    (ch->key_url_null ? !url || !*url : url && strcasecmp(url, ch->key_url.url) == 0))
		ch->has_key_url = false;
	if (ch->has_identity && id) {
		switch (ch->identity.kind) {
		case DBX_IDENTITY_NONE:
			ch->has_identity = strcmp(id, "None") != 0;
			break;
		case DBX_IDENTITY_SYSTEM:
			ch->has_identity = strcmp(id, "SystemAssigned") != 0;
			break;
		case DBX_IDENTITY_USER:
			ch->has_identity = strcasecmp(id, ch->identity.id) != 0;
			break;
		}
	}
	return !ch->has_kek_type && !ch->has_key_url && !ch->has_identity;
}

/*
 * encryption.json: the whole object as the file shows it, or with some
 * fields changed. Fields equal to the current ones are dropped before they
 * are validated, so a value our stricter rules would refuse but that came
 * from ARM (a key URL like "https://xxx.xxx.xx") can be written back while
 * another field changes. Structural faults (duplicate or unknown keys,
 * trailing data) are judged on the text as written.
 */
static enum dbx_err store_encryption_json(const struct dbx_attr_ctx *ctx, const char *value,
					  size_t len, struct dbx_error *err)
{
	struct dbx_attr_write *w = ctx->write;
	const struct dbx_order *o = ctx->order;
	struct dbx_error second = {0};
	char *full = NULL, *reduced = NULL, *shown = NULL;
	size_t shown_len = 0, vl = len;
	enum dbx_err rc;

	memset(&w->change, 0, sizeof(w->change));
	w->noop = false;
	w->used_current = false;
	if (o) {
		/* Byte for byte what a read returns (trailing blanks aside): nothing to do. */
		struct dbx_attr_ctx show_ctx = {.order = o};

		rc = show_encryption_json(&show_ctx, &shown, &shown_len);
		if (rc != DBX_OK)
			return dbx_error_set(err, rc, "out of memory");
		while (shown_len && isspace((unsigned char)shown[shown_len - 1]))
			shown_len--;
		while (vl && isspace((unsigned char)value[vl - 1]))
			vl--;
		w->noop = shown_len == vl && memcmp(shown, value, vl) == 0;
		w->used_current = w->noop;
		free(shown);
		if (w->noop)
			return DBX_OK;
	}
	rc = dbx_validate_encryption_json(value, len, write_cloud(ctx), &w->change, err);
	if (rc == DBX_OK) {
		if (o) {
			w->used_current = true;
			w->noop = drop_unchanged(o, &w->change);
		}
		return DBX_OK;
	}
	if (rc != DBX_EINVAL || !o)
		return rc;
	/* Refused: was it a field we would drop anyway (one equal to the current value)? */
	if (json_rewrite(o, value, len, false, &full) != DBX_OK ||
	    dbx_validate_encryption_json(full, strlen(full), write_cloud(ctx), &w->change,
					 &second) == DBX_OK)
		goto out; /* not JSON, or a structural fault of the text as written */
	if (json_rewrite(o, value, len, true, &reduced) != DBX_OK)
		goto out;
	memset(&w->change, 0, sizeof(w->change));
	dbx_error_clear(&second);
	w->used_current = true;
	rc = dbx_validate_encryption_json(reduced, strlen(reduced), write_cloud(ctx), &w->change,
					  &second);
	if (rc == DBX_OK)
		w->noop = drop_unchanged(o, &w->change);
	/* Either way this judged only the fields that change: its verdict is the one to show. */
	if (err)
		*err = second;
out:
	if (rc != DBX_OK)
		memset(&w->change, 0, sizeof(w->change));
	free(full);
	free(reduced);
	return rc;
}

/* clang-format off */
static const struct dbx_attr order_attrs[] = {
	{ .name = "encryption_type", .mode = 0644, .show = show_kek_type,        .store = store_kek_type },
	{ .name = "key_url",         .mode = 0644, .show = show_key_url,         .store = store_key_url },
	{ .name = "key_vault",       .mode = 0444, .show = show_key_vault },
	{ .name = "identity",        .mode = 0644, .show = show_identity,        .store = store_identity },
	{ .name = "principal_id",    .mode = 0444, .show = show_principal_id },
	{ .name = "encryption.json", .mode = 0644, .show = show_encryption_json, .store = store_encryption_json, .json_object = true },
	{ .name = "status",          .mode = 0444, .show = show_status },
	{ .name = "errors",          .mode = 0444, .show = show_errors,          .reports_errors = true },
	{ .name = "operation",       .mode = 0444, .show = show_operation,       .reports_operation = true },
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
