/*
 * test_arm.c: ARM calls for Data Box jobs, over the scripted fake transport.
 *
 * Each test scripts ARM's answers and asserts both sides: the exact
 * requests sent (URL, api-version, scope, one deadline per call) and what a
 * user would get (the orders listed, the error kind, code and request id).
 * The nextLink tests check the security rule that matters most here: the
 * bearer token is never sent to a host other than the cloud's ARM host.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "databoxfs/arm.h"
#include "fake_transport.h"

#define ARM   "https://management.azure.com"
#define SCOPE "https://management.azure.com/.default"
#define SUB   "11111111-2222-3333-4444-555555555555"
#define LIST_URL                                                                                   \
	ARM "/subscriptions/" SUB "/providers/Microsoft.DataBox/jobs?api-version=2025-07-01"
#define START_MS   1000
#define TIMEOUT_MS 120000

#define JOB(rg, name)                                                                              \
	"{\"id\": \"/subscriptions/" SUB "/resourcegroups/" rg                                     \
	"/providers/Microsoft.DataBox/jobs/" name "\", \"name\": \"" name                          \
	"\", \"identity\": {\"type\": \"None\"},"                                                  \
	" \"properties\": {\"status\": \"DeviceOrdered\", \"details\": {\"keyEncryptionKey\": "    \
	"{\"kekType\": \"MicrosoftManaged\"}}}}"

struct env {
	struct fake_transport ft;
	struct fake_clock fc;
	struct dbx_arm *arm;
};

static void env_init(struct env *e, const struct fake_reply *script, size_t n)
{
	fake_transport_init(&e->ft, script, n);
	fake_clock_init(&e->fc, START_MS);
	e->arm = dbx_arm_new(&e->ft.base, dbx_cloud_default(), NULL, TIMEOUT_MS, &e->fc.clock);
	assert_non_null(e->arm);
}

static void env_fini(struct env *e)
{
	dbx_arm_free(e->arm);
	fake_transport_fini(&e->ft);
}

/* Every request was a GET with the ARM scope and the call's one deadline. */
static void assert_calls_sane(const struct env *e, uint64_t deadline)
{
	for (size_t i = 0; i < e->ft.n_calls; i++) {
		assert_string_equal(e->ft.calls[i].method, "GET");
		assert_string_equal(e->ft.calls[i].scope, SCOPE);
		assert_int_equal(e->ft.calls[i].deadline_ms, deadline);
	}
}

#define MAX_SEEN 32

struct seen {
	char *names[MAX_SEEN];
	char *rgs[MAX_SEEN];
	char *malformed[MAX_SEEN]; /* the order's malformed mark, or NULL */
	char *malformed_rid;	   /* the request id of the last one */
	size_t n;
	size_t stop_after;	    /* 0: never stop */
	struct fake_clock *advance; /* when set, the callback moves the clock past the deadline */
};

static int collect_job(void *ctx, struct dbx_order *order)
{
	struct seen *s = ctx;

	assert_true(s->n < MAX_SEEN);
	s->names[s->n] = strdup(order->name);
	s->rgs[s->n] = strdup(order->resource_group);
	s->malformed[s->n] = order->malformed ? strdup(order->malformed->message) : NULL;
	if (order->malformed)
		s->malformed_rid = strdup(order->malformed->request_id);
	s->n++;
	dbx_order_free(order);
	if (s->advance)
		s->advance->now += TIMEOUT_MS;
	return s->stop_after && s->n >= s->stop_after;
}

static int collect_sub(void *ctx, const char *id)
{
	struct seen *s = ctx;

	assert_true(s->n < MAX_SEEN);
	s->names[s->n++] = strdup(id);
	return 0;
}

static void seen_free(struct seen *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->names[i]);
		free(s->rgs[i]);
		free(s->malformed[i]);
	}
	free(s->malformed_rid);
}

/* ---- paged lists ---- */

static void test_list_three_pages_follows_next_link_verbatim(void **state)
{
	/* nextLinks carry their own encoding and parameters; they must be sent exactly as given. */
	static const char next1[] =
	    ARM "/subscriptions/" SUB "/providers/Microsoft.DataBox/jobs?api-version=2025-07-01"
		"&%24skipToken=W3sidG9rZW4iOiIxIn1d%3D%3D";
	static const char next2[] =
	    ARM "/subscriptions/" SUB "/providers/Microsoft.DataBox/jobs?api-version=2025-07-01"
		"&$skipToken=page+3&x=%2F";
	const struct fake_reply script[] = {
	    {.status = 200,
	     .body = "{\"value\": [" JOB("rg1", "job1") ", " JOB(
		 "rg1", "job2") "], \"nextLink\": \"" ARM "/subscriptions/" SUB
				"/providers/Microsoft.DataBox/jobs?api-version=2025-07-01"
				"&%24skipToken=W3sidG9rZW4iOiIxIn1d%3D%3D\"}"},
	    {.status = 200,
	     .body = "{\"value\": [" JOB(
		 "rg2", "job3") "], \"nextLink\": \"" ARM "/subscriptions/" SUB
				"/providers/Microsoft.DataBox/jobs?api-version=2025-07-01"
				"&$skipToken=page+3&x=%2F\"}"},
	    {.status = 200, .body = "{\"value\": [" JOB("rg3", "job4") "], \"nextLink\": null}"},
	};
	struct env e;
	struct seen s = {0};
	struct dbx_error err = {0};

	(void)state;
	env_init(&e, script, 3);
	assert_int_equal(dbx_arm_list_jobs(e.arm, SUB, NULL, collect_job, &s, &err), DBX_OK);
	assert_int_equal(e.ft.n_calls, 3);
	assert_string_equal(e.ft.calls[0].url, LIST_URL);
	assert_string_equal(e.ft.calls[1].url, next1);
	assert_string_equal(e.ft.calls[2].url, next2);
	assert_calls_sane(&e, START_MS + TIMEOUT_MS);
	assert_int_equal(s.n, 4);
	assert_string_equal(s.names[0], "job1");
	assert_string_equal(s.names[1], "job2");
	assert_string_equal(s.names[2], "job3");
	assert_string_equal(s.names[3], "job4");
	assert_string_equal(s.rgs[3], "rg3");
	seen_free(&s);
	env_fini(&e);
}

/* Where each page came from, in the order the pages came (dbx_arm_page_cb). */
struct page_urls {
	char *urls[8];
	size_t first_job[8]; /* how many jobs came before the page */
	size_t n;
	struct seen *jobs;
};

static int note_page(void *ctx, const char *url)
{
	struct page_urls *p = ctx;

	assert_true(p->n < 8);
	p->first_job[p->n] = p->jobs->n;
	p->urls[p->n++] = strdup(url);
	return 0;
}

struct paged_ctx {
	struct page_urls pages;
	struct seen jobs;
};

static int paged_page(void *ctx, const char *url)
{
	struct paged_ctx *pc = ctx;

	return note_page(&pc->pages, url);
}

static int paged_job(void *ctx, struct dbx_order *order)
{
	struct paged_ctx *pc = ctx;

	return collect_job(&pc->jobs, order);
}

/*
 * A paged listing tells where each page came from before its jobs, and a
 * page can be read again alone from that URL: its jobs, its nextLink not
 * followed; never a URL off the ARM host.
 */
static void test_list_pages_and_read_one_again(void **state)
{
	static const char next1[] = LIST_URL "&%24skipToken=p2";
	const struct fake_reply script[] = {
	    {.status = 200,
	     .body = "{\"value\": [" JOB("rg1", "job1") ", " JOB(
		 "rg1", "job2") "], \"nextLink\": "
				"\"" LIST_URL "&%24skipToken=p2\"}"},
	    {.status = 200, .body = "{\"value\": [" JOB("rg2", "job3") "]}"},
	    {.status = 200,
	     .body = "{\"value\": [" JOB("rg2", "job3") ", " JOB(
		 "rg2", "job5") "], \"nextLink\": "
				"\"" LIST_URL "&%24skipToken=p3\"}"},
	};
	struct paged_ctx pc = {.pages.jobs = &pc.jobs};
	struct seen again = {0};
	struct dbx_error err = {0};
	struct env e;

	(void)state;
	env_init(&e, script, 3);
	assert_int_equal(
	    dbx_arm_list_jobs_paged(e.arm, SUB, NULL, paged_page, paged_job, &pc, &err), DBX_OK);
	assert_int_equal(pc.pages.n, 2);
	assert_string_equal(pc.pages.urls[0], LIST_URL);
	assert_string_equal(pc.pages.urls[1], next1);
	assert_int_equal(pc.pages.first_job[1], 2);
	assert_int_equal(pc.jobs.n, 3);

	assert_int_equal(
	    dbx_arm_list_job_page(e.arm, pc.pages.urls[1], SUB, collect_job, &again, &err), DBX_OK);
	assert_int_equal(e.ft.n_calls, 3); /* p3 was not followed */
	assert_string_equal(e.ft.calls[2].url, next1);
	assert_int_equal(again.n, 2);
	assert_string_equal(again.names[1], "job5");

	assert_int_equal(dbx_arm_list_job_page(e.arm,
					       "https://evil.example/subscriptions/" SUB
					       "/providers/Microsoft.DataBox/jobs",
					       SUB, collect_job, &again, &err),
			 DBX_EREMOTE);
	assert_int_equal(e.ft.n_calls, 3);
	for (size_t i = 0; i < pc.pages.n; i++)
		free(pc.pages.urls[i]);
	seen_free(&pc.jobs);
	seen_free(&again);
	env_fini(&e);
}

static void test_list_by_resource_group(void **state)
{
	const struct fake_reply script[] = {
	    {.status = 200, .body = "{\"value\": [" JOB("My RG", "job1") "]}"},
	};
	struct env e;
	struct seen s = {0};
	struct dbx_error err = {0};

	(void)state;
	env_init(&e, script, 1);
	assert_int_equal(dbx_arm_list_jobs(e.arm, SUB, "My RG", collect_job, &s, &err), DBX_OK);
	assert_int_equal(e.ft.n_calls, 1);
	/* The path segment is escaped. */
	assert_string_equal(e.ft.calls[0].url,
			    ARM "/subscriptions/" SUB
				"/resourceGroups/My%20RG/providers/Microsoft.DataBox/jobs"
				"?api-version=2025-07-01");
	assert_calls_sane(&e, START_MS + TIMEOUT_MS);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.rgs[0], "My RG");
	seen_free(&s);
	env_fini(&e);
}

static void test_list_custom_api_version(void **state)
{
	const struct fake_reply script[] = {{.status = 200, .body = "{\"value\": []}"}};
	struct fake_transport ft;
	struct fake_clock fc;
	struct dbx_arm *arm;
	struct seen s = {0};
	struct dbx_error err = {0};

	(void)state;
	fake_transport_init(&ft, script, 1);
	fake_clock_init(&fc, 0);
	arm =
	    dbx_arm_new(&ft.base, dbx_cloud_find("AzureUSGovernment"), "2022-12-01", 0, &fc.clock);
	assert_non_null(arm);
	assert_int_equal(dbx_arm_list_jobs(arm, SUB, NULL, collect_job, &s, &err), DBX_OK);
	assert_string_equal(ft.calls[0].url,
			    "https://management.usgovcloudapi.net/subscriptions/" SUB
			    "/providers/Microsoft.DataBox/jobs?api-version=2022-12-01");
	assert_string_equal(ft.calls[0].scope, "https://management.usgovcloudapi.net/.default");
	assert_int_equal(ft.calls[0].deadline_ms, 0); /* no timeout: no deadline */
	assert_int_equal(s.n, 0);
	dbx_arm_free(arm);
	fake_transport_fini(&ft);
}

static void test_list_refuses_foreign_next_link(void **state)
{
	static const char *const foreign[] = {
	    "https://evil.example.com/subscriptions/x?api-version=1",
	    "http://management.azure.com/subscriptions/x?api-version=1",
	    "https://management.azure.com@evil.example.com/subscriptions/x",
	    "https://management.azure.com.evil.example.com/subscriptions/x",
	    "https://management.azure.com:8443/subscriptions/x",
	    "https://evil.example.com?management.azure.com/",
	    "https://evil.example.com#management.azure.com/",
	    "//management.azure.com/subscriptions/x",
	    "/subscriptions/x?api-version=1",
	    "https://management.azure.com\\@evil.example.com/",
	    "https://management.azure.com/x\r\nHost: evil.example.com",
	    "ftp://management.azure.com/x",
	    "https://management.usgovcloudapi.net/subscriptions/x",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(foreign) / sizeof(foreign[0]); i++) {
		char body[512];
		struct fake_reply script[2] = {{.status = 200, .body = body},
					       {.status = 200, .body = "{\"value\": []}"}};
		struct env e;
		struct seen s = {0};
		struct dbx_error err = {0};
		char *escaped = NULL;

		/* JSON-escape the few characters the cases use. */
		escaped = calloc(1, strlen(foreign[i]) * 2 + 1);
		for (size_t j = 0, k = 0; foreign[i][j]; j++) {
			if (foreign[i][j] == '\\')
				escaped[k++] = '\\', escaped[k++] = '\\';
			else if (foreign[i][j] == '\r')
				escaped[k++] = '\\', escaped[k++] = 'r';
			else if (foreign[i][j] == '\n')
				escaped[k++] = '\\', escaped[k++] = 'n';
			else
				escaped[k++] = foreign[i][j];
		}
		snprintf(body, sizeof(body),
			 "{\"value\": [" JOB("rg", "job1") "], \"nextLink\": \"%s\"}", escaped);
		free(escaped);

		print_message("nextLink %s\n", foreign[i]);
		env_init(&e, script, 2);
		assert_int_equal(dbx_arm_list_jobs(e.arm, SUB, NULL, collect_job, &s, &err),
				 DBX_EREMOTE);
		assert_int_equal(e.ft.n_calls, 1); /* nothing was sent to it */
		assert_non_null(strstr(err.message, "nextLink"));
		assert_int_equal(err.err, DBX_EREMOTE);
		seen_free(&s);
		env_fini(&e);
	}
}

/* The one check every URL the service hands back passes (nextLinks of every listing). */
static void test_url_is_arm(void **state)
{
	static const char *const good[] = {
	    "https://management.azure.com/subscriptions/x?api-version=1",
	    "HTTPS://Management.Azure.COM:443/p?a=1",
	    "https://management.azure.com",
	    "https://management.azure.com?a=1",
	    "https://management.azure.com/x?%24skiptoken=%C3%A9",
	};
	static const char *const bad[] = {
	    "https://evil.example.com/subscriptions/x",
	    "http://management.azure.com/subscriptions/x",
	    "https://management.azure.com@evil.example.com/x",
	    "https://user@management.azure.com/x",
	    "https://management.azure.com.evil.example.com/x",
	    "https://management.azure.com:8443/x",
	    "https://management.azure.com:/x",
	    "https://management.azure.co/x",
	    "https://evil.example.com?management.azure.com/",
	    "//management.azure.com/x",
	    "https://management.azure.com\\@evil.example.com/",
	    "https://management.azure.com/x\\y",
	    "https://management.azure.com/x y",
	    "https://management.azure.com/x\r\nHost: evil.example.com",
	    "https://management.azure.com/x\t",
	    "https://management.azure.com/x\x7f",
	    "https://management.azure.com/x\xc3\xa9",
	    "https://management.usgovcloudapi.net/x",
	    "",
	};
	const struct dbx_cloud *pub = dbx_cloud_default();
	const struct dbx_cloud *gov = dbx_cloud_find("AzureUSGovernment");

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		print_message("good %s\n", good[i]);
		assert_true(dbx_arm_url_is_arm(pub, good[i]));
		assert_false(dbx_arm_url_is_arm(gov, good[i]));
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		print_message("bad %s\n", bad[i]);
		assert_false(dbx_arm_url_is_arm(pub, bad[i]));
	}
	assert_non_null(gov);
	assert_true(dbx_arm_url_is_arm(gov, "https://management.usgovcloudapi.net/x"));
}

static void test_list_accepts_same_host_spellings(void **state)
{
	const struct fake_reply script[] = {
	    {.status = 200,
	     .body = "{\"value\": [], \"nextLink\": \"HTTPS://Management.Azure.COM:443/p?a=1\"}"},
	    {.status = 200, .body = "{\"value\": [], \"nextLink\": \"\"}"},
	};
	struct env e;
	struct seen s = {0};
	struct dbx_error err = {0};

	(void)state;
	env_init(&e, script, 2);
	assert_int_equal(dbx_arm_list_jobs(e.arm, SUB, NULL, collect_job, &s, &err), DBX_OK);
	assert_int_equal(e.ft.n_calls, 2);
	assert_string_equal(e.ft.calls[1].url, "HTTPS://Management.Azure.COM:443/p?a=1");
	env_fini(&e);
}

static void test_list_stops_on_repeated_next_link(void **state)
{
	const struct fake_reply script[] = {
	    {.status = 200,
	     .body = "{\"value\": [" JOB("rg", "a") "], \"nextLink\": \"" ARM "/page2\"}"},
	    {.status = 200,
	     .body = "{\"value\": [" JOB("rg", "b") "], \"nextLink\": \"" ARM "/page3\"}"},
	    {.status = 200, .body = "{\"value\": [], \"nextLink\": \"" ARM "/page2\"}"},
	    {.status = 200, .body = "{\"value\": []}"},
	};
	struct env e;
	struct seen s = {0};
	struct dbx_error err = {0};

	(void)state;
	env_init(&e, script, 4);
	assert_int_equal(dbx_arm_list_jobs(e.arm, SUB, NULL, collect_job, &s, &err), DBX_EREMOTE);
	assert_int_equal(e.ft.n_calls, 3);
	assert_non_null(strstr(err.message, "nextLink"));
	assert_int_equal(s.n, 2);
	seen_free(&s);
	env_fini(&e);

	/* A page pointing at the first URL is a loop too. */
	const struct fake_reply script2[] = {
	    {.status = 200, .body = "{\"value\": [], \"nextLink\": \"" LIST_URL "\"}"},
	};
	struct seen s2 = {0};

	env_init(&e, script2, 1);
	assert_int_equal(dbx_arm_list_jobs(e.arm, SUB, NULL, collect_job, &s2, &err), DBX_EREMOTE);
	assert_int_equal(e.ft.n_calls, 1);
	env_fini(&e);
}

static void test_list_one_deadline_for_all_pages(void **state)
{
	const struct fake_reply script[] = {
	    {.status = 200,
	     .body = "{\"value\": [" JOB("rg", "a") "], \"nextLink\": \"" ARM "/page2\"}"},
	    {.status = 200, .body = "{\"value\": [" JOB("rg", "b") "]}"},
	};
	struct env e;
	struct seen s = {0};
	struct dbx_error err = {0};

	(void)state;
	env_init(&e, script, 2);
	s.advance = &e.fc; /* the first page "takes" the whole timeout */
	assert_int_equal(dbx_arm_list_jobs(e.arm, SUB, NULL, collect_job, &s, &err), DBX_ETIMEDOUT);
	assert_int_equal(e.ft.n_calls, 1);
	assert_int_equal(s.n, 1);
	seen_free(&s);
	env_fini(&e);
}

static void test_list_callback_stops_early(void **state)
{
	const struct fake_reply script[] = {
	    {.status = 200,
	     .body = "{\"value\": [" JOB("rg", "a") ", " JOB("rg", "b") "], \"nextLink\": \"" ARM
									"/p2\"}"},
	    {.status = 200, .body = "{\"value\": []}"},
	};
	struct env e;
	struct seen s = {.stop_after = 1};
	struct dbx_error err = {0};

	(void)state;
	env_init(&e, script, 2);
	assert_int_equal(dbx_arm_list_jobs(e.arm, SUB, NULL, collect_job, &s, &err), DBX_OK);
	assert_int_equal(s.n, 1);
	assert_int_equal(e.ft.n_calls, 1);
	seen_free(&s);
	env_fini(&e);
}

static void test_list_skips_a_bad_job(void **state)
{
	const struct fake_reply script[] = {
	    {.status = 200,
	     .body = "{\"value\": [" JOB("rg", "good1") ", {\"name\": \"no-id\"},"
							" {\"id\": "
							"\"/subscriptions/s/resourceGroups/rg/"
							"providers/Microsoft.DataBox/jobs/x\","
							" \"name\": \"../x\"}, " JOB("rg",
										     "good2") "]}"},
	};
	struct env e;
	struct seen s = {0};
	struct dbx_error err = {0};

	(void)state;
	env_init(&e, script, 1);
	assert_int_equal(dbx_arm_list_jobs(e.arm, SUB, NULL, collect_job, &s, &err), DBX_OK);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.names[0], "good1");
	assert_string_equal(s.names[1], "good2");
	seen_free(&s);
	env_fini(&e);
}

/*
 * A job of the list with a wrong-typed field but a usable id and name is
 * handed on as a stub marked malformed (that order reads EIO); the others
 * come in full, and the listing succeeds.
 */
static void test_list_malformed_job_is_named(void **state)
{
	static const char *const bad[] = {
	    "\"properties\": 5",
	    "\"identity\": []",
	    "\"identity\": 5",
	    "\"properties\": {\"details\": {\"keyEncryptionKey\": {\"kekType\": 1}}}",
	};
	static const char *const field[] = {
	    "properties is a number", "identity is an array", "identity is a number",
	    "properties.details.keyEncryptionKey.kekType is a number, expected a string"};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char body[2048];
		struct fake_reply script[1] = {
		    {.status = 200, .body = body, .request_id = "rid-page"}};
		struct env e;
		struct seen s = {0};
		struct dbx_error err = {0};

		snprintf(
		    body, sizeof(body),
		    "{\"value\": [" JOB("rg", "good1") ", {\"id\": \"/subscriptions/" SUB
						       "/resourcegroups/rg/providers/"
						       "Microsoft.DataBox/jobs/bad\", \"name\": "
						       "\"bad\", %s}, " JOB("rg", "good2") "]}",
		    bad[i]);
		env_init(&e, script, 1);
		assert_int_equal(dbx_arm_list_jobs(e.arm, SUB, NULL, collect_job, &s, &err),
				 DBX_OK);
		assert_int_equal(s.n, 3);
		assert_string_equal(s.names[0], "good1");
		assert_null(s.malformed[0]);
		assert_string_equal(s.names[1], "bad");
		assert_string_equal(s.rgs[1], "rg");
		assert_non_null(s.malformed[1]);
		if (!strstr(s.malformed[1], field[i]))
			fail_msg("%s: %s", bad[i], s.malformed[1]);
		assert_string_equal(s.malformed_rid, "rid-page"); /* for a support ticket */
		assert_string_equal(s.names[2], "good2");
		assert_null(s.malformed[2]);
		seen_free(&s);
		env_fini(&e);
	}
}

/* A page the strict parse refuses (duplicate key, bad UTF-8, too deep) fails the listing. */
static void test_list_hostile_pages(void **state)
{
	static const char *const bodies[] = {
	    "{\"value\": [" JOB("rg", "a") "], \"value\": []}",
	    "{\"value\": [{\"id\": \"/subscriptions/" SUB
	    "/resourcegroups/rg/providers/Microsoft.DataBox/jobs/a\", \"name\": \"a\", \"name\": "
	    "\"a\"}]}",
	    "{\"value\": [], \"nextLink\": \"" ARM "/p\xff\"}",
	    "{\"value\": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}",
	};
	static const char *const why[] = {"duplicate key \"value\"", "duplicate key \"name\"",
					  "not valid UTF-8", "deeper than 32"};

	(void)state;
	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		const struct fake_reply script[] = {{.status = 200, .body = bodies[i]}};
		struct env e;
		struct seen s = {0};
		struct dbx_error err = {0};

		env_init(&e, script, 1);
		assert_int_equal(dbx_arm_list_jobs(e.arm, SUB, NULL, collect_job, &s, &err),
				 DBX_EREMOTE);
		if (!strstr(err.message, why[i]))
			fail_msg("body %zu: %s", i, err.message);
		assert_int_equal(s.n, 0);
		assert_int_equal(e.ft.n_calls, 1);
		seen_free(&s);
		env_fini(&e);
	}
}

static void test_list_skips_jobs_outside_scope(void **state)
{
	/* RG names compare case-insensitively; another subscription or RG is not filed here. */
	const struct fake_reply script[] = {
	    {.status = 200,
	     .body = "{\"value\": [" JOB("TestResourceGroupName", "in") ", " JOB(
		 "OtherRG", "out1") ", "
				    "{\"id\": "
				    "\"/subscriptions/other-sub/resourceGroups/"
				    "TestResourceGroupName/providers/"
				    "Microsoft.DataBox/jobs/out2\", \"name\": \"out2\"}]}"},
	};
	struct env e;
	struct seen s = {0};
	struct dbx_error err = {0};

	(void)state;
	env_init(&e, script, 1);
	assert_int_equal(
	    dbx_arm_list_jobs(e.arm, SUB, "testresourcegroupname", collect_job, &s, &err), DBX_OK);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.names[0], "in");
	assert_string_equal(s.rgs[0], "TestResourceGroupName");
	seen_free(&s);
	env_fini(&e);
}

static void test_list_malformed_pages(void **state)
{
	static const char *const bodies[] = {
	    "not json",
	    "",
	    "[]",
	    "{}",
	    "{\"value\": {}}",
	    "{\"value\": null}",
	    "{\"value\": [42]}",
	    "{\"value\": [" JOB("rg", "a") ", \"x\"]}",
	    "{\"value\": [], \"nextLink\": 7}",
	    "{\"value\": []",
	    "{\"value\": []} trailing",
	    "{\"value\": [{\"id\": \"\\u0000\"}",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		const struct fake_reply script[] = {
		    {.status = 200, .body = bodies[i], .request_id = "rid-bad"}};
		struct env e;
		struct seen s = {0};
		struct dbx_error err = {0};

		print_message("body %s\n", bodies[i]);
		env_init(&e, script, 1);
		assert_int_equal(dbx_arm_list_jobs(e.arm, SUB, NULL, collect_job, &s, &err),
				 DBX_EREMOTE);
		assert_non_null(strstr(err.message, "malformed response from ARM"));
		/* The request id of the bad answer is kept for a support ticket. */
		assert_string_equal(err.request_id, "rid-bad");
		assert_int_equal(err.http_status, 200);
		assert_int_equal(s.n, 0); /* a page that is not a list delivers nothing from it */
		seen_free(&s);
		env_fini(&e);
	}
}

static void test_list_error_status_and_transport_failure(void **state)
{
	const struct fake_reply script[] = {
	    {.status = 200,
	     .body = "{\"value\": [" JOB("rg", "a") "], \"nextLink\": \"" ARM "/p2\"}"},
	    {.status = 403,
	     .request_id = "rid-403",
	     .body = "{\"error\": {\"code\": \"AuthorizationFailed\", \"message\": \"The client "
		     "does not have "
		     "authorization to perform action.\"}}"},
	};
	const struct fake_reply down[] = {{.transport_err = DBX_EUNREACHABLE}};
	struct env e;
	struct seen s = {0};
	struct dbx_error err = {0};

	(void)state;
	env_init(&e, script, 2);
	assert_int_equal(dbx_arm_list_jobs(e.arm, SUB, NULL, collect_job, &s, &err), DBX_EACCES);
	assert_string_equal(err.code, "AuthorizationFailed");
	assert_string_equal(err.request_id, "rid-403");
	assert_int_equal(err.http_status, 403);
	seen_free(&s);
	env_fini(&e);

	env_init(&e, down, 1);
	assert_int_equal(dbx_arm_list_jobs(e.arm, SUB, NULL, collect_job, &s, &err),
			 DBX_EUNREACHABLE);
	env_fini(&e);
}

static void test_list_subscriptions(void **state)
{
	const struct fake_reply script[] = {
	    {.status = 200,
	     .body =
		 "{\"value\": [{\"id\": \"/subscriptions/aaaa\", \"subscriptionId\": \"aaaa\", "
		 "\"tenantId\": \"t\","
		 " \"displayName\": \"A\", \"state\": \"Enabled\"},"
		 " {\"id\": \"/subscriptions/bad\", \"subscriptionId\": \"..\"},"
		 " {\"id\": \"/subscriptions/none\"}],"
		 " \"nextLink\": \"" ARM "/subscriptions?api-version=2022-12-01&%24skiptoken=x\"}"},
	    {.status = 200, .body = "{\"value\": [{\"subscriptionId\": \"bbbb\"}]}"},
	};
	struct env e;
	struct seen s = {0};
	struct dbx_error err = {0};

	(void)state;
	env_init(&e, script, 2);
	assert_int_equal(dbx_arm_list_subscriptions(e.arm, collect_sub, &s, &err), DBX_OK);
	assert_int_equal(e.ft.n_calls, 2);
	assert_string_equal(e.ft.calls[0].url, ARM "/subscriptions?api-version=2022-12-01");
	assert_string_equal(e.ft.calls[1].url,
			    ARM "/subscriptions?api-version=2022-12-01&%24skiptoken=x");
	assert_calls_sane(&e, START_MS + TIMEOUT_MS);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.names[0], "aaaa");
	assert_string_equal(s.names[1], "bbbb");
	seen_free(&s);
	env_fini(&e);
}

/* ---- single job ---- */

static void test_get_job(void **state)
{
	const struct fake_reply script[] = {
	    {.status = 200, .body = JOB("my-rg", "job1")},
	};
	struct env e;
	struct dbx_order *o = NULL;
	struct dbx_error err = {0};

	(void)state;
	env_init(&e, script, 1);
	assert_int_equal(dbx_arm_get_job(e.arm, SUB, "my-rg", "job1", &o, &err), DBX_OK);
	assert_int_equal(e.ft.n_calls, 1);
	assert_string_equal(e.ft.calls[0].url, ARM
			    "/subscriptions/" SUB "/resourceGroups/my-rg/providers/"
			    "Microsoft.DataBox/jobs/job1?api-version=2025-07-01&$expand=details");
	assert_calls_sane(&e, START_MS + TIMEOUT_MS);
	assert_non_null(o);
	assert_string_equal(o->name, "job1");
	assert_true(o->has_details);
	assert_int_equal(o->kek_type, DBX_KEK_MICROSOFT);
	dbx_order_free(o);
	env_fini(&e);
}

static void test_get_job_errors(void **state)
{
	static const struct {
		long status;
		enum dbx_err want;
		const char *code;
	} cases[] = {
	    {404, DBX_ENOTFOUND, "ResourceNotFound"},
	    {403, DBX_EACCES, "AuthorizationFailed"},
	    {401, DBX_EACCES, "ExpiredAuthenticationToken"},
	    {409, DBX_EBUSY, "Conflict"},
	    {429, DBX_ETHROTTLED, "TooManyRequests"},
	    {400, DBX_EINVAL, "SsemUserErrorInvalidKeyVaultUrl"},
	    {500, DBX_EREMOTE, "InternalServerError"},
	    {503, DBX_EREMOTE, "ServiceUnavailable"},
	    {408, DBX_EREMOTE, "RequestTimeout"},
	    {412, DBX_EREMOTE, "PreconditionFailed"},
	    {202, DBX_EREMOTE, "Accepted"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char body[256];
		const struct fake_reply script[] = {
		    {.status = cases[i].status, .body = body, .request_id = "5f0c2a9e-req"}};
		struct env e;
		struct dbx_order *o = (struct dbx_order *)1;
		struct dbx_error err = {0};

		snprintf(body, sizeof(body),
			 "{\"error\": {\"code\": \"%s\", \"message\": \"The thing %ld.\"}}",
			 cases[i].code, cases[i].status);
		env_init(&e, script, 1);
		assert_int_equal(dbx_arm_get_job(e.arm, SUB, "rg", "job1", &o, &err),
				 cases[i].want);
		assert_null(o);
		assert_int_equal(err.err, cases[i].want);
		assert_int_equal(err.http_status, cases[i].status);
		assert_string_equal(err.code, cases[i].code);
		assert_string_equal(err.request_id, "5f0c2a9e-req");
		snprintf(body, sizeof(body), "The thing %ld.", cases[i].status);
		assert_string_equal(err.message, body);
		env_fini(&e);
	}
}

static void test_get_job_malformed(void **state)
{
	static const char *const bodies[] = {
	    "",
	    "{",
	    "[]",
	    "{\"name\": \"job1\"}",
	    JOB("rg", "other"), /* a different job than asked for */
	    JOB("rg2", "job1"), /* the same name in another resource group */
	    /* Wrong types and duplicates: never read as absent. */
	    "{\"id\": \"/subscriptions/" SUB "/resourceGroups/rg/providers/Microsoft.DataBox/jobs/"
	    "job1\", \"name\": \"job1\", \"properties\": 5}",
	    "{\"id\": \"/subscriptions/" SUB "/resourceGroups/rg/providers/Microsoft.DataBox/jobs/"
	    "job1\", \"name\": \"job1\", \"identity\": []}",
	    "{\"id\": \"/subscriptions/" SUB "/resourceGroups/rg/providers/Microsoft.DataBox/jobs/"
	    "job1\", \"name\": \"job1\", \"identity\": {\"type\": \"None\"}, \"identity\": "
	    "{\"type\": \"SystemAssigned\"}}",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		const struct fake_reply script[] = {
		    {.status = 200, .body = bodies[i], .request_id = "rid-bad"}};
		struct env e;
		struct dbx_order *o = (struct dbx_order *)1;
		struct dbx_error err = {0};

		env_init(&e, script, 1);
		assert_int_equal(dbx_arm_get_job(e.arm, SUB, "rg", "job1", &o, &err), DBX_EREMOTE);
		assert_string_equal(err.request_id, "rid-bad");
		assert_null(o);
		env_fini(&e);
	}
}

static void test_get_job_bad_arguments(void **state)
{
	struct env e;
	struct dbx_order *o = NULL;
	struct dbx_error err = {0};

	(void)state;
	env_init(&e, NULL, 0);
	assert_int_equal(dbx_arm_get_job(e.arm, SUB, "rg", "", &o, &err), DBX_EINVAL);
	assert_int_equal(dbx_arm_get_job(e.arm, SUB, NULL, "job1", &o, &err), DBX_EINVAL);
	assert_int_equal(dbx_arm_list_jobs(e.arm, "", NULL, collect_job, NULL, &err), DBX_EINVAL);
	assert_int_equal(e.ft.n_calls, 0);
	env_fini(&e);
}

/* ---- error envelopes ---- */

static void test_error_from_response_shapes(void **state)
{
	struct dbx_http_response r = {0};
	struct dbx_error err = {0};

	(void)state;
	/* Key Vault: innererror code kept with the message. */
	r.status = 403;
	r.body = "{\"error\": {\"code\": \"Forbidden\", \"message\": \"The user does not have keys "
		 "get permission.\","
		 " \"innererror\": {\"code\": \"ForbiddenByPolicy\"}}}";
	r.body_len = strlen(r.body);
	r.request_id = "kv-rid";
	assert_int_equal(dbx_arm_error_from_response(&r, &err), DBX_EACCES);
	assert_string_equal(err.code, "Forbidden");
	assert_string_equal(
	    err.message, "The user does not have keys get permission. (inner: ForbiddenByPolicy)");
	assert_string_equal(err.request_id, "kv-rid");

	/* Entra ID: first line of error_description only. */
	r.status = 401;
	r.body = "{\"error\": \"invalid_client\", \"error_description\": \"AADSTS7000215: Invalid "
		 "client secret "
		 "provided.\\r\\nTrace ID: 1\\r\\nCorrelation ID: 2\", \"error_codes\": [7000215]}";
	r.body_len = strlen(r.body);
	r.request_id = NULL;
	assert_int_equal(dbx_arm_error_from_response(&r, &err), DBX_EACCES);
	assert_string_equal(err.code, "invalid_client");
	assert_string_equal(err.message, "AADSTS7000215: Invalid client secret provided.");
	assert_string_equal(err.request_id, "");

	/* Not JSON (a proxy's HTML page): the status only, no body echoed. */
	r.status = 502;
	r.body = "<html><body>Bad Gateway</body></html>";
	r.body_len = strlen(r.body);
	assert_int_equal(dbx_arm_error_from_response(&r, &err), DBX_EREMOTE);
	assert_string_equal(err.code, "");
	assert_non_null(strstr(err.message, "502"));
	assert_null(strstr(err.message, "html"));

	/* A duplicate key, or a body cut by its length: nothing taken from it. */
	r.status = 409;
	r.body = "{\"error\": {\"code\": \"Conflict\", \"code\": "
		 "\"SsemUserErrorKekUserIdentityNotFound\", "
		 "\"message\": \"m\"}}";
	r.body_len = strlen(r.body);
	assert_int_equal(dbx_arm_error_from_response(&r, &err), DBX_EBUSY);
	assert_string_equal(err.code, "");
	assert_non_null(strstr(err.message, "409"));
	r.body = "{\"error\": {\"code\": \"Conflict\", \"message\": \"m\"}} and more";
	r.body_len = strlen(r.body) - strlen(" and more");
	assert_int_equal(dbx_arm_error_from_response(&r, &err), DBX_EBUSY);
	assert_string_equal(err.code, "Conflict");
	assert_string_equal(err.message, "m");
	r.body_len = 20;
	assert_int_equal(dbx_arm_error_from_response(&r, &err), DBX_EBUSY);
	assert_string_equal(err.code, "");

	/* Wrong types, empty body, NULL body. */
	r.status = 404;
	r.body = "{\"error\": {\"code\": 5, \"message\": [\"x\"]}}";
	r.body_len = strlen(r.body);
	assert_int_equal(dbx_arm_error_from_response(&r, &err), DBX_ENOTFOUND);
	assert_string_equal(err.code, "");
	r.body = NULL;
	r.body_len = 0;
	assert_int_equal(dbx_arm_error_from_response(&r, &err), DBX_ENOTFOUND);
	assert_int_equal(dbx_arm_error_from_response(&r, NULL), DBX_ENOTFOUND);
	assert_int_equal(dbx_arm_error_from_response(NULL, &err), DBX_EREMOTE);
}

static void test_error_message_trimmed_to_buffer(void **state)
{
	struct dbx_http_response r = {0};
	struct dbx_error err = {0};
	size_t n = 3 * DBX_ERR_MSG_MAX;
	char *body = malloc(n + 64), *p;

	(void)state;
	p = body + sprintf(body, "{\"error\": {\"code\": \"");
	for (size_t i = 0; i < 2 * DBX_ERR_CODE_MAX; i++)
		*p++ = 'C';
	p += sprintf(p, "\", \"message\": \"");
	for (size_t i = 0; i < n - 400; i++)
		*p++ = 'm';
	sprintf(p, "\"}}");
	r.status = 400;
	r.body = body;
	r.body_len = strlen(body);
	assert_int_equal(dbx_arm_error_from_response(&r, &err), DBX_EINVAL);
	assert_int_equal(strlen(err.message), DBX_ERR_MSG_MAX - 1);
	assert_int_equal(strlen(err.code), DBX_ERR_CODE_MAX - 1);
	free(body);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_list_three_pages_follows_next_link_verbatim),
	    cmocka_unit_test(test_list_by_resource_group),
	    cmocka_unit_test(test_list_pages_and_read_one_again),
	    cmocka_unit_test(test_list_custom_api_version),
	    cmocka_unit_test(test_list_refuses_foreign_next_link),
	    cmocka_unit_test(test_url_is_arm),
	    cmocka_unit_test(test_list_accepts_same_host_spellings),
	    cmocka_unit_test(test_list_stops_on_repeated_next_link),
	    cmocka_unit_test(test_list_one_deadline_for_all_pages),
	    cmocka_unit_test(test_list_callback_stops_early),
	    cmocka_unit_test(test_list_skips_a_bad_job),
	    cmocka_unit_test(test_list_malformed_job_is_named),
	    cmocka_unit_test(test_list_hostile_pages),
	    cmocka_unit_test(test_list_skips_jobs_outside_scope),
	    cmocka_unit_test(test_list_malformed_pages),
	    cmocka_unit_test(test_list_error_status_and_transport_failure),
	    cmocka_unit_test(test_list_subscriptions),
	    cmocka_unit_test(test_get_job),
	    cmocka_unit_test(test_get_job_errors),
	    cmocka_unit_test(test_get_job_malformed),
	    cmocka_unit_test(test_get_job_bad_arguments),
	    cmocka_unit_test(test_error_from_response_shapes),
	    cmocka_unit_test(test_error_message_trimmed_to_buffer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
