/*
 * test_json_scan.c: the raw-text JSON scanner (backend/rules/json_scan.c)
 * that encryption.json's duplicate-key check, its write-back rewrite and the
 * end of a multi-line write all rely on. Each case is a text a user could
 * write: duplicates, nested objects, escapes in names, strings holding
 * braces, colons and quotes, texts that are not JSON at all.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "databoxfs/json_scan.h"

/* The raw member names of text at depth 1, joined by '|', into out. */
static void names(const char *text, char *out, size_t cap)
{
	struct dbx_json_scan s;
	const char *name;
	size_t n, o = 0;

	dbx_json_scan_init(&s, text, strlen(text));
	out[0] = '\0';
	while (dbx_json_scan_member(&s, &name, &n)) {
		assert_true(o + n + 2 < cap);
		if (o)
			out[o++] = '|';
		memcpy(out + o, name, n);
		o += n;
		out[o] = '\0';
	}
	assert_int_equal(s.pos, strlen(text));
}

static void expect_names(const char *text, const char *want)
{
	char got[256];

	names(text, got, sizeof(got));
	print_message("%s -> %s\n", text, got);
	assert_string_equal(got, want);
}

static void test_members_in_order_with_duplicates(void **state)
{
	(void)state;
	expect_names("{\"key_url\": \"a\", \"identity\": \"None\"}", "\"key_url\"|\"identity\"");
	expect_names("{\"key_url\": \"a\", \"key_url\": \"b\"}", "\"key_url\"|\"key_url\"");
	expect_names("{ \"a\"\t\r\n:1}", "\"a\"");
	expect_names("{}", "");
	assert_int_equal(dbx_json_count_members("{\"a\":1,\"a\":2,\"b\":3}", 19), 3);
	assert_int_equal(dbx_json_count_members("", 0), 0);
	assert_int_equal(dbx_json_count_members(NULL, 5), 0);
}

static void test_nested_names_are_not_members(void **state)
{
	(void)state;
	expect_names("{\"a\": {\"b\": 1, \"c\": [{\"d\": 2}]}, \"e\": [1, {\"f\": 3}]}",
		     "\"a\"|\"e\"");
	/* Inside an array the object is one level deeper. */
	expect_names("[{\"a\": 1}]", "");
	/* After the object closes, depth 0: trailing text names nothing. */
	expect_names("{\"a\": 1} \"b\": 2", "\"a\"");
	/* A second object at the top is depth 1 again. */
	expect_names("{\"a\": 1}{\"b\": 2}", "\"a\"|\"b\"");
}

static void test_escapes_in_names(void **state)
{
	(void)state;
	/* The token is raw: quotes and escapes kept, for json-c to decode. */
	expect_names("{\"a\\\"b\": 1, \"c\\\\\": 2, \"\\u006b\": 3}",
		     "\"a\\\"b\"|\"c\\\\\"|\"\\u006b\"");
	expect_names("{\"a\\u0000b\": 1}", "\"a\\u0000b\"");
}

static void test_strings_holding_structure(void **state)
{
	struct dbx_json_scan s;
	const char *t = "{\"a\": \"}{:\\\"\", \"b\": \"[[[\", \"c\": \"x: 'y'\"}";

	(void)state;
	expect_names(t, "\"a\"|\"b\"|\"c\"");
	dbx_json_scan_init(&s, t, strlen(t));
	dbx_json_scan_to_end(&s);
	assert_int_equal(s.depth, 0);
	assert_int_equal(s.first, 0);
	assert_int_equal(s.squote, strlen(t)); /* quotes inside strings do not count */
	/* A value string is never a name, even when a colon-like text follows it. */
	expect_names("{\"a\": \"b\", \"c\": \":\"}", "\"a\"|\"c\"");
}

static void test_shape_of_the_text(void **state)
{
	struct dbx_json_scan s;
	const char *open = " \n\t{\"a\": {\"b\": 1}\n";
	const char *quoted = "{'a': 1, \"b\": 'x'}";
	const char *word = "  nope";

	(void)state;
	dbx_json_scan_init(&s, open, strlen(open));
	dbx_json_scan_to_end(&s);
	assert_int_equal(s.first, 3);
	assert_int_equal(s.depth, 1); /* not closed yet */

	dbx_json_scan_init(&s, quoted, strlen(quoted));
	assert_true(dbx_json_scan_member(&s, NULL, NULL)); /* "b" */
	assert_int_equal(s.squote, 1); /* the first single quote, seen before "b" */
	dbx_json_scan_to_end(&s);
	assert_int_equal(s.squote, 1);
	assert_int_equal(s.depth, 0);

	dbx_json_scan_init(&s, word, strlen(word));
	dbx_json_scan_to_end(&s);
	assert_int_equal(s.first, 2);

	dbx_json_scan_init(&s, " \r\n", 3);
	dbx_json_scan_to_end(&s);
	assert_int_equal(s.first, 3); /* only whitespace */
}

static void test_unterminated_and_stray_bytes(void **state)
{
	struct dbx_json_scan s;

	(void)state;
	/* An unterminated string runs to the end: nothing after it is read as structure. */
	expect_names("{\"a\": \"}", "\"a\"");
	dbx_json_scan_init(&s, "{\"a\": \"}", 8);
	dbx_json_scan_to_end(&s);
	assert_int_equal(s.depth, 1);
	/* A backslash as the last byte, a name without its colon, unbalanced closers. */
	expect_names("{\"a\\", "");
	expect_names("{\"a\"", "");
	expect_names("{\"a\" 1}", "");
	expect_names("}}{\"a\": 1", "");
	/* An embedded NUL is a byte like any other: the length bounds the scan. */
	dbx_json_scan_init(&s, "{\"a\0\": 1}", 9);
	assert_true(dbx_json_scan_member(&s, NULL, NULL));
	assert_false(dbx_json_scan_member(&s, NULL, NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_members_in_order_with_duplicates),
	    cmocka_unit_test(test_nested_names_are_not_members),
	    cmocka_unit_test(test_escapes_in_names),
	    cmocka_unit_test(test_strings_holding_structure),
	    cmocka_unit_test(test_shape_of_the_text),
	    cmocka_unit_test(test_unterminated_and_stray_bytes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
