/*
 * core/json_util.c: the JSON accessors of json_util.h: dbx_json_str, which
 * order.c, arm.c, cred/env.c and cred/common.c each had a copy of, and the
 * typed member accessors that arm.c and keyvault.c share.
 */
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
