/*
 * test_stats.c: the counters and health of backend/core/stats.c, and
 * their rendering: valid Prometheus text exposition format with the
 * expected samples, labels that nothing a service sends can break, the
 * services told apart by URL, and health's precedence and "since".
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "databoxfs/stats.h"

static char *render(void)
{
	char *buf = NULL;
	size_t len = 0;

	assert_int_equal(dbx_stats_render(&buf, &len), DBX_OK);
	assert_int_equal(len, strlen(buf));
	return buf;
}

/* Every line is "# HELP", "# TYPE" or a sample of a family announced before it. */
static void check_exposition(const char *text)
{
	char family[128] = "";
	const char *line = text;

	assert_true(strlen(text) > 0 && text[strlen(text) - 1] == '\n');
	while (*line) {
		const char *end = strchr(line, '\n');
		size_t n = (size_t)(end - line);
		char name[128];

		if (strncmp(line, "# HELP ", 7) == 0) {
			assert_int_equal(sscanf(line + 7, "%127s", family), 1);
		} else if (strncmp(line, "# TYPE ", 7) == 0) {
			assert_int_equal(sscanf(line + 7, "%127s", name), 1);
			assert_string_equal(name, family);
			assert_true(strstr(line, " counter\n") == end - 8 ||
				    strstr(line, " gauge\n") == end - 6);
		} else {
			size_t k = strspn(line, "abcdefghijklmnopqrstuvwxyz_");

			assert_true(k > 0);
			assert_memory_equal(line, family, strlen(family));
			assert_int_equal(k, strlen(family));
			assert_true(line[k] == '{' || line[k] == ' ');
			/* the value: the last field, a number */
			assert_true(memchr(line, ' ', n) != NULL);
		}
		line = end + 1;
	}
}

static void test_services(void **state)
{
	(void)state;
	assert_int_equal(dbx_stats_service_of("https://management.azure.com/subscriptions?x"),
			 DBX_STATS_ARM);
	assert_int_equal(dbx_stats_service_of("https://Management.ChinaCloudAPI.cn:443/x"),
			 DBX_STATS_ARM);
	assert_int_equal(dbx_stats_service_of("https://myvault.vault.azure.net/keys/k"),
			 DBX_STATS_KEYVAULT);
	assert_int_equal(
	    dbx_stats_service_of("https://login.microsoftonline.com/t/oauth2/v2.0/token"),
	    DBX_STATS_ENTRA);
	assert_int_equal(
	    dbx_stats_service_of("http://169.254.169.254/metadata/identity/oauth2/token"),
	    DBX_STATS_IMDS);
	assert_int_equal(dbx_stats_service_of("http://127.0.0.1:4000/msi/token"), DBX_STATS_IMDS);
	assert_int_equal(dbx_stats_service_of("https://example.org/"), DBX_STATS_OTHER);
	assert_int_equal(dbx_stats_service_of("nonsense"), DBX_STATS_OTHER);
}

static void test_render(void **state)
{
	char *text;

	(void)state;
	dbx_stats_reset();
	dbx_stats_request("https://management.azure.com/subscriptions", "GET", 200);
	dbx_stats_request("https://management.azure.com/subscriptions/s/x", "GET", 200);
	dbx_stats_request("https://management.azure.com/subscriptions/s/x", "PATCH", 400);
	dbx_stats_request("https://v.vault.azure.net/keys/k", "GET", 0);
	dbx_stats_request("https://login.microsoftonline.com/t/oauth2/v2.0/token", "POST", 200);
	dbx_stats_retry("https://management.azure.com/x");
	dbx_stats_throttle_wait(DBX_STATS_WAIT_RETRY_AFTER, 1500);
	dbx_stats_throttle_wait(DBX_STATS_WAIT_BUDGET, 40);
	dbx_stats_throttle_wait(DBX_STATS_WAIT_BUDGET, 60);
	dbx_stats_cache(true);
	dbx_stats_cache(true);
	dbx_stats_cache(false);
	dbx_stats_token_refresh(true);
	dbx_stats_token_refresh(false);
	dbx_stats_error_code("SsemUserErrorEncryptionKeyDisabled");
	dbx_stats_error_code("SsemUserErrorEncryptionKeyDisabled");
	/* A code cannot break out of its label. */
	dbx_stats_error_code("Evil\"} 99\n# x");
	dbx_stats_error_code("");
	text = render();
	print_message("%s", text);
	check_exposition(text);
	assert_non_null(strstr(text, "# TYPE databoxfs_requests_total counter\n"));
	assert_non_null(strstr(
	    text, "databoxfs_requests_total{service=\"arm\",method=\"GET\",status=\"200\"} 2\n"));
	assert_non_null(strstr(
	    text, "databoxfs_requests_total{service=\"arm\",method=\"PATCH\",status=\"400\"} 1\n"));
	assert_non_null(strstr(
	    text,
	    "databoxfs_requests_total{service=\"keyvault\",method=\"GET\",status=\"0\"} 1\n"));
	assert_non_null(strstr(
	    text,
	    "databoxfs_requests_total{service=\"entra\",method=\"POST\",status=\"200\"} 1\n"));
	assert_non_null(strstr(text, "databoxfs_retries_total{service=\"arm\"} 1\n"));
	assert_non_null(strstr(text, "databoxfs_retries_total{service=\"imds\"} 0\n"));
	assert_non_null(strstr(text, "databoxfs_throttle_waits_total{reason=\"retry_after\"} 1\n"));
	assert_non_null(strstr(text, "databoxfs_throttle_waits_total{reason=\"budget\"} 2\n"));
	assert_non_null(
	    strstr(text, "databoxfs_throttle_wait_seconds_total{reason=\"retry_after\"} 1.500\n"));
	assert_non_null(
	    strstr(text, "databoxfs_throttle_wait_seconds_total{reason=\"budget\"} 0.100\n"));
	assert_non_null(strstr(text, "databoxfs_cache_requests_total{result=\"hit\"} 2\n"));
	assert_non_null(strstr(text, "databoxfs_cache_requests_total{result=\"miss\"} 1\n"));
	assert_non_null(strstr(text, "databoxfs_token_refreshes_total{result=\"ok\"} 1\n"));
	assert_non_null(strstr(text, "databoxfs_token_refreshes_total{result=\"failed\"} 1\n"));
	assert_non_null(strstr(
	    text, "databoxfs_errors_total{code=\"SsemUserErrorEncryptionKeyDisabled\"} 2\n"));
	assert_non_null(strstr(text, "databoxfs_errors_total{code=\"Evil99x\"} 1\n"));
	assert_non_null(strstr(text, "databoxfs_health{condition=\"credential\"} 0\n"));
	free(text);

	dbx_stats_reset();
	text = render();
	check_exposition(text);
	assert_null(strstr(text, "databoxfs_requests_total{"));
	assert_non_null(strstr(text, "databoxfs_cache_requests_total{result=\"hit\"} 0\n"));
	free(text);
}

static void test_full_tables(void **state)
{
	char code[32], *text;

	(void)state;
	dbx_stats_reset();
	/* More distinct codes than the table holds: memory stays bounded, the rest is "other". */
	for (int i = 0; i < 300; i++) {
		snprintf(code, sizeof(code), "Code%d", i);
		dbx_stats_error_code(code);
	}
	for (int i = 100; i < 700; i++)
		dbx_stats_request("https://management.azure.com/x", "GET", i);
	text = render();
	check_exposition(text);
	assert_non_null(strstr(text, "databoxfs_errors_total{code=\"Code0\"} 1\n"));
	assert_non_null(strstr(text, "databoxfs_errors_total{code=\"other\"} 173\n"));
	assert_null(strstr(text, "Code299"));
	free(text);
	dbx_stats_reset();
}

static void test_health(void **state)
{
	char *buf = NULL;
	size_t len = 0;

	(void)state;
	dbx_stats_reset();
	assert_int_equal(dbx_stats_health_render(&buf, &len), DBX_OK);
	assert_string_equal(buf, "ok\n");
	free(buf);

	/* 2025-11-28T12:00:00Z; the since of the first failure stays while it lasts. */
	dbx_stats_health_fail(DBX_HEALTH_THROTTLED, 1764331200, "ARM answered HTTP 429");
	dbx_stats_health_fail(DBX_HEALTH_THROTTLED, 1764331260, "ARM answered HTTP 429 again");
	assert_int_equal(dbx_stats_health_render(&buf, &len), DBX_OK);
	assert_string_equal(buf,
			    "throttled: ARM answered HTTP 429 again since 2025-11-28T12:00:00Z\n");
	assert_int_equal(len, strlen(buf));
	free(buf);

	/* The credential comes first; a reason cannot add a line. */
	dbx_stats_health_fail(DBX_HEALTH_CREDENTIAL, 1764331300, "env: refused\nAADSTS7000215");
	assert_int_equal(dbx_stats_health_render(&buf, &len), DBX_OK);
	assert_string_equal(buf,
			    "credential: env: refused AADSTS7000215 since 2025-11-28T12:01:40Z\n");
	free(buf);
	dbx_stats_health_ok(DBX_HEALTH_CREDENTIAL);
	dbx_stats_health_fail(DBX_HEALTH_ARM, 1764331400, "cannot connect");
	assert_int_equal(dbx_stats_health_render(&buf, &len), DBX_OK);
	assert_string_equal(buf, "arm_unreachable: cannot connect since 2025-11-28T12:03:20Z\n");
	free(buf);
	buf = render();
	assert_non_null(strstr(buf, "databoxfs_health{condition=\"arm_unreachable\"} 1\n"));
	assert_non_null(strstr(buf, "databoxfs_health{condition=\"throttled\"} 1\n"));
	assert_non_null(strstr(buf, "databoxfs_health{condition=\"credential\"} 0\n"));
	free(buf);
	dbx_stats_health_ok(DBX_HEALTH_ARM);
	dbx_stats_health_ok(DBX_HEALTH_THROTTLED);
	assert_int_equal(dbx_stats_health_render(&buf, &len), DBX_OK);
	assert_string_equal(buf, "ok\n");
	free(buf);
	/* A failure after it cleared starts a new since. */
	dbx_stats_health_fail(DBX_HEALTH_ARM, 1764331500, "x");
	assert_int_equal(dbx_stats_health_render(&buf, &len), DBX_OK);
	assert_string_equal(buf, "arm_unreachable: x since 2025-11-28T12:05:00Z\n");
	free(buf);
	dbx_stats_reset();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_services),
	    cmocka_unit_test(test_render),
	    cmocka_unit_test(test_full_tables),
	    cmocka_unit_test(test_health),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
