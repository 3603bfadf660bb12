/*
 * core/json_util.c: the JSON helpers of json_util.h: the strict parse of a
 * whole body that arm.c, keyvault.c and order.c each had a copy of,
 * dbx_json_str, which order.c, arm.c, cred/env.c and cred/common.c each had
 * a copy of, and the typed member accessors that arm.c and keyvault.c share.
 */
#include <limits.h>
#include <stdbool.h>

#include <json-c/json.h>

#include "core/json_util.h"

const char *dbx_json_str(struct json_object *o, const char *key)
{
	struct json_object *v = NULL;

	if (!o || !json_object_is_type(o, json_type_object))
		return NULL;
	if (!json_object_object_get_ex(o, key, &v))
		return NULL;
	return json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

int dbx_json_member(struct json_object *o, const char *key, enum json_type t,
		    struct json_object **out)
{
	struct json_object *v = NULL;

	*out = NULL;
	if (!o || !json_object_is_type(o, json_type_object))
		return -1;
	if (!json_object_object_get_ex(o, key, &v) || !v)
		return 0;
	if (!json_object_is_type(v, t))
		return -1;
	*out = v;
	return 1;
}

int dbx_json_member_str(struct json_object *o, const char *key, const char **out)
{
	struct json_object *v;
	int r = dbx_json_member(o, key, json_type_string, &v);

	*out = r == 1 ? json_object_get_string(v) : NULL;
	return r;
}

static bool json_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

enum dbx_err dbx_json_parse_object(const char *text, size_t len, const char *what,
				   struct json_object **out, struct dbx_error *err)
{
	struct json_tokener *tok = NULL;
	struct json_object *obj = NULL;
	enum json_tokener_error jerr;
	enum dbx_err rc = DBX_OK;

	*out = NULL;
	if (!text || len == 0)
		return dbx_error_set(err, DBX_EREMOTE, "%s: empty body", what);
	if (len > INT_MAX)
		return dbx_error_set(err, DBX_EREMOTE, "%s: body too large", what);
	tok = json_tokener_new();
	if (!tok)
		return dbx_error_set(err, DBX_ENOMEM, "out of memory");
	obj = json_tokener_parse_ex(tok, text, (int)len);
	jerr = json_tokener_get_error(tok);
	if (!obj || jerr != json_tokener_success) {
		rc = jerr == json_tokener_continue
			 ? dbx_error_set(err, DBX_EREMOTE, "%s: truncated JSON", what)
			 : dbx_error_set(err, DBX_EREMOTE, "%s: not JSON (%s)", what,
					 json_tokener_error_desc(jerr));
		goto out;
	}
	for (size_t end = json_tokener_get_parse_end(tok); end < len; end++) {
		if (!json_space(text[end])) {
			rc = dbx_error_set(err, DBX_EREMOTE, "%s: data after the JSON", what);
			goto out;
		}
	}
	if (!json_object_is_type(obj, json_type_object)) {
		rc = dbx_error_set(err, DBX_EREMOTE, "%s: not a JSON object", what);
		goto out;
	}
	*out = obj;
	obj = NULL;
out:
	json_object_put(obj);
	json_tokener_free(tok);
	return rc;
}
