/*
 * core/json_util.c: the JSON helpers of json_util.h: the strict parse of a
 * whole body that arm.c, keyvault.c and order.c each had a copy of,
 * dbx_json_str, which order.c, arm.c, cred/env.c and cred/common.c each had
 * a copy of, and the typed member accessors that arm.c and keyvault.c share.
 *
 * The strict parse refuses what json-c would otherwise let through
 * silently: nesting past DBX_JSON_MAX_DEPTH, strings that are not UTF-8,
 * an escaped NUL (json-c cuts keys and strings there), and a key given
 * twice in one object (json-c keeps the last). Duplicates cost one pass
 * over the bytes and one over the tree: outside strings every ':' of valid
 * JSON starts a member, so the body has a duplicate exactly when it holds
 * more ':' than the parsed objects hold members. Only then is the text
 * walked again to name the key (a hash set per open object, so still
 * O(n)).
 */
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

const char *dbx_json_type_name(enum json_type t)
{
	switch (t) {
	case json_type_boolean:
		return "a boolean";
	case json_type_double:
	case json_type_int:
		return "a number";
	case json_type_object:
		return "an object";
	case json_type_array:
		return "an array";
	case json_type_string:
		return "a string";
	default:
		return "null";
	}
}

int dbx_json_field(struct json_object *o, const char *key, enum json_type t, const char *path,
		   struct json_object **out, char *why, size_t cap)
{
	struct json_object *v = NULL;

	*out = NULL;
	if (!o || !json_object_is_type(o, json_type_object) ||
	    !json_object_object_get_ex(o, key, &v) || !v)
		return 0;
	if (!json_object_is_type(v, t)) {
		if (why && cap)
			snprintf(why, cap, "%s is %s, expected %s", path,
				 dbx_json_type_name(json_object_get_type(v)),
				 t == json_type_int ? "an integer" : dbx_json_type_name(t));
		return -1;
	}
	*out = v;
	return 1;
}

static bool json_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* What one pass over the raw bytes tells: members (':' outside strings) and escaped NULs. */
struct raw_facts {
	size_t colons;
	bool nul;
};

/* Is the byte at t[i] escaped: preceded by an odd run of backslashes (from t[from])? */
static bool escaped(const char *t, size_t from, size_t i)
{
	size_t run = 0;

	while (i > from && t[i - 1] == '\\') {
		run++;
		i--;
	}
	return run % 2 == 1;
}

/*
 * One pass: outside strings byte by byte (structure is short), inside them
 * from quote to quote with memchr, since most bytes of an answer are
 * string contents. Only valid JSON is scanned (the parser accepted it).
 */
static void raw_scan(const char *t, size_t n, struct raw_facts *f)
{
	static const char nul[] = "\\u0000";
	const char *hit = memmem(t, n, nul, sizeof(nul) - 1);

	f->colons = 0;
	f->nul = false;
	/* In valid JSON backslashes only occur in strings: a run of them is counted in place. */
	while (hit && !f->nul) {
		f->nul = !escaped(t, 0, (size_t)(hit - t));
		hit = memmem(hit + 1, n - (size_t)(hit + 1 - t), nul, sizeof(nul) - 1);
	}
	for (size_t i = 0; i < n; i++) {
		if (t[i] == ':') {
			f->colons++;
		} else if (t[i] == '"') {
			size_t start = i + 1;
			const char *q;

			for (;;) {
				q = memchr(t + i + 1, '"', n - i - 1);
				if (!q) {
					i = n;
					break;
				}
				i = (size_t)(q - t);
				if (!escaped(t, start, i))
					break;
			}
		}
	}
}

/* The members of every object in the tree o (depth bounded by the parser's cap). */
static size_t tree_members(struct json_object *o)
{
	size_t n = 0;

	if (json_object_is_type(o, json_type_object)) {
		n = (size_t)json_object_object_length(o);
		json_object_object_foreach(o, key, val)
		{
			(void)key;
			n += tree_members(val);
		}
	} else if (json_object_is_type(o, json_type_array)) {
		size_t len = json_object_array_length(o);

		for (size_t i = 0; i < len; i++)
			n += tree_members(json_object_array_get_idx(o, i));
	}
	return n;
}

/* The end of the string whose opening quote is at t[i] (just past the closing quote). */
static size_t string_end(const char *t, size_t n, size_t i)
{
	for (i++; i < n; i++) {
		if (t[i] == '\\')
			i++;
		else if (t[i] == '"')
			return i + 1;
	}
	return n;
}

/*
 * Name a key given twice in one object of the valid JSON text t (depth at
 * most DBX_JSON_MAX_DEPTH + 1): copy it, control characters as '?', into
 * name (cap bytes). false when there is none, or on ENOMEM (*oom).
 */
static bool find_duplicate(const char *t, size_t n, char *name, size_t cap, bool *oom)
{
	struct json_object *sets[DBX_JSON_MAX_DEPTH + 2] = {NULL};
	int top = -1;
	bool found = false;

	for (size_t i = 0; i < n && !found && !*oom; i++) {
		char c = t[i];
		size_t end, j;

		if (c == '{' || c == '[') {
			if (top + 1 >= (int)(sizeof(sets) / sizeof(sets[0])))
				break; /* deeper than the parser allows: cannot happen */
			sets[++top] = c == '{' ? json_object_new_object() : NULL;
			if (c == '{' && !sets[top])
				*oom = true;
		} else if (c == '}' || c == ']') {
			if (top >= 0)
				json_object_put(sets[top--]);
		} else if (c == '"') {
			struct json_object *key;
			char *raw;

			end = string_end(t, n, i);
			for (j = end; j < n && json_space(t[j]); j++)
				;
			if (top < 0 || !sets[top] || j >= n || t[j] != ':') {
				i = end - 1;
				continue;
			}
			/* t need not be NUL-terminated: copy, never strndup */
			raw = malloc(end - i + 1);
			if (raw) {
				memcpy(raw, t + i, end - i);
				raw[end - i] = '\0';
			}
			key = raw ? json_tokener_parse(raw) : NULL;
			free(raw);
			if (!key || !json_object_is_type(key, json_type_string)) {
				*oom = !key;
				json_object_put(key);
				break;
			}
			if (json_object_object_get_ex(sets[top], json_object_get_string(key),
						      NULL)) {
				const char *k = json_object_get_string(key);
				size_t m = 0;

				for (; k[m] && m + 1 < cap; m++)
					name[m] = (unsigned char)k[m] < 0x20 ? '?' : k[m];
				name[m] = '\0';
				found = true;
			} else if (json_object_object_add(sets[top], json_object_get_string(key),
							  NULL) != 0) {
				*oom = true;
			}
			json_object_put(key);
			i = end - 1;
		}
	}
	while (top >= 0)
		json_object_put(sets[top--]);
	return found;
}

enum dbx_err dbx_json_parse_object(const char *text, size_t len, const char *what,
				   struct json_object **out, struct dbx_error *err)
{
	struct json_tokener *tok = NULL;
	struct json_object *obj = NULL;
	enum json_tokener_error jerr;
	struct raw_facts facts;
	enum dbx_err rc = DBX_OK;

	*out = NULL;
	if (!text || len == 0)
		return dbx_error_set(err, DBX_EREMOTE, "%s: empty body", what);
	if (len > INT_MAX)
		return dbx_error_set(err, DBX_EREMOTE, "%s: body too large", what);
	tok = json_tokener_new_ex(DBX_JSON_MAX_DEPTH);
	if (!tok)
		return dbx_error_set(err, DBX_ENOMEM, "out of memory");
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	obj = json_tokener_parse_ex(tok, text, (int)len);
	jerr = json_tokener_get_error(tok);
	if (!obj || jerr != json_tokener_success) {
		if (jerr == json_tokener_continue)
			rc = dbx_error_set(err, DBX_EREMOTE, "%s: truncated JSON", what);
		else if (jerr == json_tokener_error_depth)
			rc =
			    dbx_error_set(err, DBX_EREMOTE, "%s: JSON nested deeper than %d levels",
					  what, DBX_JSON_MAX_DEPTH);
		else if (jerr == json_tokener_error_parse_utf8_string)
			rc = dbx_error_set(err, DBX_EREMOTE, "%s: a string is not valid UTF-8",
					   what);
		else
			rc = dbx_error_set(err, DBX_EREMOTE, "%s: not JSON (%s)", what,
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
	raw_scan(text, len, &facts);
	if (facts.nul) {
		rc = dbx_error_set(err, DBX_EREMOTE, "%s: a string holds a NUL character (\\u0000)",
				   what);
		goto out;
	}
	if (facts.colons != tree_members(obj)) {
		char name[80];
		bool oom = false;

		if (find_duplicate(text, len, name, sizeof(name), &oom))
			rc =
			    dbx_error_set(err, DBX_EREMOTE, "%s: duplicate key \"%s\"", what, name);
		else if (oom)
			rc = dbx_error_set(err, DBX_ENOMEM, "out of memory");
		else
			rc = dbx_error_set(err, DBX_EREMOTE, "%s: duplicate key", what);
		goto out;
	}
	*out = obj;
	obj = NULL;
out:
	json_object_put(obj);
	json_tokener_free(tok);
	return rc;
}
