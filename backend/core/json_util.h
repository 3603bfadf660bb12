/*
 * json_util.h: the JSON accessor that several backend files share, internal
 * to backend/ (not an interface of include/databoxfs).
 *
 * Input comes from the network. dbx_json_parse_object takes a whole body
 * as one object, strictly; dbx_json_str reads a value of the wrong type as
 * absent; dbx_json_member tells it apart, for documents where a wrong type
 * is malformed rather than missing. Only accessors live here: what a document means
 * stays with the file that reads it (job JSON in order.c, list and error envelopes in arm.c, token
 * answers in the cred_*.c sources).
 */
#ifndef DATABOXFS_BACKEND_JSON_UTIL_H
#define DATABOXFS_BACKEND_JSON_UTIL_H

#include <stddef.h>

#include <json-c/json.h>

#include "databoxfs/err.h"

/*
 * The string value of member key of o: NULL when o is NULL or not an
 * object, or the member is absent, null or not a string. Borrowed from o.
 */
const char *dbx_json_str(struct json_object *o, const char *key);

/*
 * Member key of o with type t: 1 when present with that type (*out set,
 * borrowed from o), 0 when absent or null (*out NULL), -1 when o is not
 * an object or the member has another type (*out NULL).
 */
int dbx_json_member(struct json_object *o, const char *key, enum json_type t,
		    struct json_object **out);

/* dbx_json_member for a string: *out the string (borrowed) when it returns 1, else NULL. */
int dbx_json_member_str(struct json_object *o, const char *key, const char **out);

/*
 * How a field of type t is named in a malformed-answer message: "a
 * string", "an object", "an array", "a boolean", "a number" (int and
 * double alike), "null". Static.
 */
const char *dbx_json_type_name(enum json_type t);

/*
 * Member key of o as a field of an answer, with its accepted type t:
 * 1 when present with that type (*out set, borrowed), 0 when o is NULL or
 * the member is absent or null (*out NULL), -1 when it has another type
 * (*out NULL, and why, cap bytes, says "PATH is a number, expected a
 * string"; an expected json_type_int reads "an integer").
 */
int dbx_json_field(struct json_object *o, const char *key, enum json_type t, const char *path,
		   struct json_object **out, char *why, size_t cap);

/* How deep a body may nest (json-c's default): real ARM and Key Vault answers need under 10. */
#define DBX_JSON_MAX_DEPTH 32

/*
 * Parse text[0..len) (not necessarily NUL-terminated) as exactly one JSON
 * object with nothing after it but JSON white space, strictly: json-c's
 * strict mode, UTF-8 strings only, at most DBX_JSON_MAX_DEPTH levels, no
 * escaped NUL, no key twice in one object. DBX_OK with *out for the
 * caller to put; else *out NULL and DBX_EREMOTE with err's message
 * "<what>: " and the reason (empty body, body too large, truncated JSON,
 * not JSON, nested deeper than N levels, a string is not valid UTF-8, a
 * string holds a NUL, duplicate key "NAME", data after the JSON, not a
 * JSON object), or DBX_ENOMEM.
 */
DBX_MUST_CHECK enum dbx_err dbx_json_parse_object(const char *text, size_t len, const char *what,
						  struct json_object **out, struct dbx_error *err);

#endif
