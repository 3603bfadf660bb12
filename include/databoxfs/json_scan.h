/*
 * json_scan.h: one scanner for the raw text of a JSON object, for what a
 * parser hides.
 *
 * json-c keeps only the last of duplicate keys, truncates keys at an
 * escaped NUL and accepts single-quoted strings even in strict mode, and
 * a write to encryption.json must be judged complete before any parser
 * sees it. So the callers walk the bytes as written: the member names at
 * depth 1 (every string followed by ':' there), the nesting depth outside
 * strings, the first byte that is not JSON whitespace and the first single
 * quote outside a string. Pure (backend/rules/json_scan.c): no allocation,
 * no NUL terminator needed, safe on any bytes, JSON or not.
 */
#ifndef DATABOXFS_JSON_SCAN_H
#define DATABOXFS_JSON_SCAN_H

#include <stdbool.h>
#include <stddef.h>

struct dbx_json_scan {
	const char *text;
	size_t len;
	size_t pos;    /* the next byte to look at */
	int depth;     /* '{' and '[' minus '}' and ']' before pos, outside strings */
	size_t first;  /* offset of the first byte that is not JSON whitespace, or len */
	size_t squote; /* offset of the first '\'' before pos outside a string, or len */
};

/* Start a scan of text[0..len). */
void dbx_json_scan_init(struct dbx_json_scan *s, const char *text, size_t len);

/*
 * Advance to the next member name at depth 1: a double-quoted string
 * followed, after JSON whitespace, by ':'. *name and *name_len (either may
 * be NULL) get the raw token, quotes and escapes included, for a JSON
 * parser to decode. false at the end of the text; s->depth, s->first and
 * s->squote then describe the whole text.
 */
bool dbx_json_scan_member(struct dbx_json_scan *s, const char **name, size_t *name_len);

/* Scan to the end of the text, skipping the member names left: s then describes the whole text. */
void dbx_json_scan_to_end(struct dbx_json_scan *s);

/* The number of member names at depth 1 of text[0..len), duplicates counted. */
size_t dbx_json_count_members(const char *text, size_t len);

#endif
