/*
 * test_timestamp.c: ISO 8601 timestamps (backend/core/timestamp.c), read
 * in every spelling ARM uses and written in the one the mount shows.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "databoxfs/timestamp.h"

static void test_parse_time(void **state)
{
	(void)state;
	/* 2026-11-28T12:00:00Z = 1795867200. */
	assert_int_equal(dbx_parse_time("2026-11-28T12:00:00Z"), 1795867200);
	assert_int_equal(dbx_parse_time("2026-11-28T12:00:00+00:00"), 1795867200);
	assert_int_equal(dbx_parse_time("2026-11-28T12:00:00.9999999+00:00"), 1795867200);
	assert_int_equal(dbx_parse_time("2026-11-28T12:00:00.5Z"), 1795867200);
	assert_int_equal(dbx_parse_time("2026-11-28T17:30:00+05:30"), 1795867200);
	assert_int_equal(dbx_parse_time("2026-11-28T07:00:00-05:00"), 1795867200);
	assert_int_equal(dbx_parse_time("2026-11-28T12:00:00"), 1795867200); /* no offset: UTC */
	assert_int_equal(dbx_parse_time("2025-05-26T06:50:23.0185023+00:00"), 1748242223);
	/* The JobsGetCmk startTime: 10:47:42 at +05:30 is 05:17:42 UTC. */
	assert_int_equal(dbx_parse_time("2020-08-07T10:47:42.0009935+05:30"), 1596777462);
	assert_int_equal(dbx_parse_time("1970-01-01T00:00:00Z"), 0);
	assert_int_equal(dbx_parse_time("2024-02-29T00:00:00Z"), 1709164800);
}

static void test_parse_time_garbage(void **state)
{
	static const char *const bad[] = {
	    "",
	    "garbage",
	    "2026-11-28",
	    "2026-11-28T12:00",
	    "2026-11-28T12:00:00ZZ",
	    "2026-11-28T12:00:00+05",
	    "2026-11-28T12:00:00+0a:00",
	    "2026-11-28T12:00:00.Z",
	    "2026-13-01T00:00:00Z",
	    "2026-00-01T00:00:00Z",
	    "2025-02-29T00:00:00Z",
	    "2026-11-31T00:00:00Z",
	    "2026-11-28T24:00:00Z",
	    "2026-11-28T12:60:00Z",
	    "2026-11-28T12:00:00+24:00",
	    "26-11-28T12:00:00Z",
	    "2026/11/28T12:00:00Z",
	    " 2026-11-28T12:00:00Z",
	    "2026-11-28T12:00:00Z ",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		print_message("%s\n", bad[i]);
		assert_int_equal(dbx_parse_time(bad[i]), -1);
	}
	assert_int_equal(dbx_parse_time(NULL), -1);
}

static void test_format_time(void **state)
{
	char out[DBX_TIME_STR_MAX];

	(void)state;
	dbx_format_time(1795867200, out);
	assert_string_equal(out, "2026-11-28T12:00:00Z");
	dbx_format_time(0, out);
	assert_string_equal(out, "1970-01-01T00:00:00Z");
	/* What it writes reads back as the same instant. */
	dbx_format_time(1596777462, out);
	assert_int_equal(dbx_parse_time(out), 1596777462);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_time),
	    cmocka_unit_test(test_parse_time_garbage),
	    cmocka_unit_test(test_format_time),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
