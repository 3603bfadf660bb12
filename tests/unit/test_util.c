/*
 * test_util.c: request ids and URL escaping (backend/http/http.c).
 *
 * Every request carries a fresh x-ms-client-request-id that Azure support
 * can look up, so it must be a well-formed version-4 UUID and unique; URL
 * escaping decides what tenant ids and scopes look like on the wire.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "databoxfs/http.h"

static int cmp_str(const void *a, const void *b)
{
	return strcmp((const char *)a, (const char *)b);
}

static void test_uuid4_format(void **state)
{
	(void)state;
	for (int n = 0; n < 200; n++) {
		char id[DBX_HTTP_UUID_LEN + 1];

		memset(id, 'X', sizeof(id));
		dbx_uuid4(id);
		assert_int_equal(strlen(id), 36);
		for (int i = 0; i < 36; i++) {
			if (i == 8 || i == 13 || i == 18 || i == 23) {
				assert_int_equal(id[i], '-');
				continue;
			}
			assert_true((id[i] >= '0' && id[i] <= '9') ||
				    (id[i] >= 'a' && id[i] <= 'f'));
		}
		assert_int_equal(id[14], '4');		 /* version */
		assert_non_null(strchr("89ab", id[19])); /* RFC 4122 variant */
	}
}

static void test_uuid4_unique(void **state)
{
	enum { N = 1000 };
	char(*ids)[DBX_HTTP_UUID_LEN + 1] = calloc(N, sizeof(*ids));

	(void)state;
	assert_non_null(ids);
	for (int i = 0; i < N; i++)
		dbx_uuid4(ids[i]);
	qsort(ids, N, sizeof(*ids), cmp_str);
	for (int i = 1; i < N; i++)
		assert_string_not_equal(ids[i - 1], ids[i]);
	free(ids);
}

static void test_url_escape(void **state)
{
	static const struct {
		const char *in;
		const char *out;
	} cases[] = {
	    {"", ""},
	    {"abcXYZ019-._~", "abcXYZ019-._~"},
	    {"https://management.azure.com/.default",
	     "https%3A%2F%2Fmanagement.azure.com%2F.default"},
	    {"a b+c&d=e", "a%20b%2Bc%26d%3De"},
	    {"100%", "100%25"},
	    {"é", "%C3%A9"},
	    {"x?y#z/", "x%3Fy%23z%2F"},
	    {"\x01\x7f", "%01%7F"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *e = dbx_url_escape(cases[i].in);

		assert_non_null(e);
		assert_string_equal(e, cases[i].out);
		free(e);
	}
}

static void test_system_clock(void **state)
{
	const struct dbx_clock *c = dbx_clock_system();
	uint64_t a;
	uint64_t b;
	int seen[10] = {0};

	(void)state;
	a = c->now_ms(c->ctx);
	b = c->now_ms(c->ctx);
	assert_true(b >= a); /* monotonic */
	for (int i = 0; i < 1000; i++) {
		uint32_t r = c->random(c->ctx, 10);

		assert_true(r < 10);
		seen[r]++;
	}
	for (int i = 0; i < 10; i++)
		assert_true(seen[i] > 0); /* jitter really varies */
	assert_int_equal(c->random(c->ctx, 1), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_uuid4_format),
	    cmocka_unit_test(test_uuid4_unique),
	    cmocka_unit_test(test_url_escape),
	    cmocka_unit_test(test_system_clock),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
