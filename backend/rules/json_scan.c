/*
 * json_scan.c: the raw-text scanner of JSON objects (json_scan.h).
 *
 * Strings run from '"' to the next '"' not escaped by a backslash, or to
 * the end of the text; '{' '[' '}' ']' outside strings change the depth.
 * The scanner does not validate JSON (json-c does that): it only reports
 * what the callers must see in the text as written, the same way for all
 * of them (validate.c's member names, attrs.c's member count, fs.c's end
 * of a multi-line write).
 */
#include "databoxfs/json_scan.h"

static bool is_json_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

void dbx_json_scan_init(struct dbx_json_scan *s, const char *text, size_t len)
{
	s->text = text;
	s->len = text ? len : 0;
	s->pos = 0;
	s->depth = 0;
	s->first = s->len;
	s->squote = s->len;
}

/* The offset just past the string whose opening quote is at i (len when unterminated). */
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

bool dbx_json_scan_member(struct dbx_json_scan *s, const char **name, size_t *name_len)
{
	const char *t = s->text;
	size_t n = s->len;

	while (s->pos < n) {
		size_t i = s->pos, end, j;
		char c = t[i];

		if (s->first == n && !is_json_ws(c))
			s->first = i;
		s->pos = i + 1;
		if (c == '{' || c == '[') {
			s->depth++;
		} else if (c == '}' || c == ']') {
			s->depth--;
		} else if (c == '\'') {
			if (s->squote == n)
				s->squote = i;
		} else if (c == '"') {
			end = string_end(t, n, i);
			s->pos = end;
			if (s->depth != 1)
				continue;
			for (j = end; j < n && is_json_ws(t[j]); j++)
				;
			if (j >= n || t[j] != ':')
				continue;
			if (name)
				*name = t + i;
			if (name_len)
				*name_len = end - i;
			return true;
		}
	}
	return false;
}

void dbx_json_scan_to_end(struct dbx_json_scan *s)
{
	while (dbx_json_scan_member(s, NULL, NULL))
		;
}

size_t dbx_json_count_members(const char *text, size_t len)
{
	struct dbx_json_scan s;
	size_t members = 0;

	dbx_json_scan_init(&s, text, len);
	while (dbx_json_scan_member(&s, NULL, NULL))
		members++;
	return members;
}
