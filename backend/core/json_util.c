/*
 * core/json_util.c: the JSON accessor shared by order.c, arm.c, cred/env.c and
 * cred/common.c (json_util.h), which each had a copy of it.
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
