/*
 * test_util.c: request ids and URL escaping (backend/http/http.c), the
 * production clock (backend/http/clock.c) and the fake clock the other unit
 * tests run on (fake_transport.c).
 *
 * Every request carries a fresh x-ms-client-request-id that Azure support
 * can look up, so it must be a well-formed version-4 UUID and unique; URL
 * escaping decides what tenant ids and scopes look like on the wire. The
 * clocks decide when a bounded wait gives up: the production one must time
 * out at its deadline, not before, and wake when signalled; the fake one
 * must never block unless a test asks it to.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "databoxfs/clock.h"
#include "databoxfs/http.h"
#include "fake_transport.h"

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

/* The production wall clock is time(2): UTC seconds, close to what time() says. */
static void test_system_clock_wall(void **state)
{
	const struct dbx_clock *c = dbx_clock_system();
	time_t before = time(NULL);
	time_t w = dbx_clock_wall(c);

	(void)state;
	assert_true(w >= before && w <= time(NULL));
	assert_true(w > FAKE_WALL0); /* a real date, not a stand-in */
}

/* A signaller thread: after delay_ms real ms, sets done and signals cond, under lock. */
struct signaller {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	long delay_ms;
	int done;
};

static void *signal_main(void *p)
{
	struct signaller *s = p;
	struct timespec ts = {.tv_sec = s->delay_ms / 1000,
			      .tv_nsec = (s->delay_ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
	pthread_mutex_lock(&s->lock);
	s->done = 1;
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

static void signaller_init(struct signaller *s, long delay_ms)
{
	memset(s, 0, sizeof(*s));
	pthread_mutex_init(&s->lock, NULL);
	assert_int_equal(dbx_clock_cond_init(&s->cond), 0);
	s->delay_ms = delay_ms;
}

static void signaller_fini(struct signaller *s)
{
	pthread_cond_destroy(&s->cond);
	pthread_mutex_destroy(&s->lock);
}

/* Nobody signals: wait_until answers DBX_ETIMEDOUT at its deadline, not before. */
static void test_system_wait_until_times_out(void **state)
{
	const struct dbx_clock *c = dbx_clock_system();
	struct signaller s;
	uint64_t start;
	uint64_t deadline;
	uint64_t end;
	enum dbx_err rc;

	(void)state;
	signaller_init(&s, 0);
	pthread_mutex_lock(&s.lock);
	start = dbx_clock_now_ms(c);
	deadline = start + 60;
	do
		rc = dbx_clock_wait_until(c, &s.cond, &s.lock, deadline);
	while (rc == DBX_OK); /* spurious wake-ups are allowed; a timeout ends it */
	end = dbx_clock_now_ms(c);
	assert_int_equal(rc, DBX_ETIMEDOUT);
	assert_true(end >= deadline);
	assert_true(end < deadline + 5000);
	/* A deadline already past answers at once. */
	assert_int_equal(dbx_clock_wait_until(c, &s.cond, &s.lock, start), DBX_ETIMEDOUT);
	assert_true(dbx_clock_now_ms(c) < end + 5000);
	pthread_mutex_unlock(&s.lock);
	signaller_fini(&s);
}

/* A signal before the deadline wakes the waiter with DBX_OK, long before the deadline. */
static void test_system_wait_until_wakes_on_signal(void **state)
{
	const struct dbx_clock *c = dbx_clock_system();
	struct signaller s;
	pthread_t th;
	uint64_t deadline;
	enum dbx_err rc = DBX_OK;

	(void)state;
	signaller_init(&s, 20);
	pthread_mutex_lock(&s.lock);
	deadline = dbx_clock_now_ms(c) + 60000;
	assert_int_equal(pthread_create(&th, NULL, signal_main, &s), 0);
	while (!s.done && rc == DBX_OK)
		rc = dbx_clock_wait_until(c, &s.cond, &s.lock, deadline);
	assert_int_equal(rc, DBX_OK);
	assert_true(s.done);
	assert_true(dbx_clock_now_ms(c) < deadline);
	pthread_mutex_unlock(&s.lock);
	pthread_join(th, NULL);
	signaller_fini(&s);
}

/* The fake: sleeps move monotonic time only; wall time moves only when the test moves it. */
static void test_fake_clock_time(void **state)
{
	struct fake_clock fc;

	(void)state;
	fake_clock_init(&fc, 5000);
	assert_int_equal(dbx_clock_now_ms(&fc.clock), 5000);
	assert_int_equal(dbx_clock_wall(&fc.clock), FAKE_WALL0);
	assert_int_equal(fc.clock.sleep_ms(fc.clock.ctx, 1500), DBX_OK);
	assert_int_equal(dbx_clock_now_ms(&fc.clock), 6500);
	assert_int_equal(fc.slept, 1500);
	assert_int_equal(dbx_clock_wall(&fc.clock), FAKE_WALL0);
	fc.wall += 60;
	assert_int_equal(dbx_clock_wall(&fc.clock), FAKE_WALL0 + 60);
}

/* The fake's wait_until never blocks: an hour's wait is over at once, the hour passed. */
static void test_fake_wait_until_advances_time(void **state)
{
	const struct dbx_clock *real = dbx_clock_system();
	uint64_t real_start = dbx_clock_now_ms(real);
	struct fake_clock fc;
	struct signaller s;

	(void)state;
	fake_clock_init(&fc, 1000);
	signaller_init(&s, 0);
	pthread_mutex_lock(&s.lock);
	assert_int_equal(dbx_clock_wait_until(&fc.clock, &s.cond, &s.lock, 1000 + 3600000),
			 DBX_ETIMEDOUT);
	assert_int_equal(dbx_clock_now_ms(&fc.clock), 1000 + 3600000);
	/* A deadline already past leaves time alone. */
	assert_int_equal(dbx_clock_wait_until(&fc.clock, &s.cond, &s.lock, 2000), DBX_ETIMEDOUT);
	assert_int_equal(dbx_clock_now_ms(&fc.clock), 1000 + 3600000);
	pthread_mutex_unlock(&s.lock);
	assert_int_equal(fc.n_waits, 2);
	assert_int_equal(fc.n_timeouts, 2);
	assert_int_equal(fc.slept, 0); /* a wait is not a sleep */
	assert_true(dbx_clock_now_ms(real) - real_start < 5000);
	signaller_fini(&s);
}

/* With real_waits, another thread's signal within the fake deadline wakes the waiter: time stays.
 */
static void test_fake_wait_until_real_waits(void **state)
{
	struct fake_clock fc;
	struct signaller s;
	pthread_t th;
	enum dbx_err rc = DBX_OK;

	(void)state;
	fake_clock_init(&fc, 1000);
	fc.real_waits = true;
	signaller_init(&s, 20);
	pthread_mutex_lock(&s.lock);
	assert_int_equal(pthread_create(&th, NULL, signal_main, &s), 0);
	while (!s.done && rc == DBX_OK)
		rc = dbx_clock_wait_until(&fc.clock, &s.cond, &s.lock, 1000 + 60000);
	assert_int_equal(rc, DBX_OK);
	assert_int_equal(dbx_clock_now_ms(&fc.clock), 1000);
	/* Nobody signals now: after the real ms, time jumps to the deadline. */
	assert_int_equal(dbx_clock_wait_until(&fc.clock, &s.cond, &s.lock, 1000 + 30),
			 DBX_ETIMEDOUT);
	assert_int_equal(dbx_clock_now_ms(&fc.clock), 1000 + 30);
	pthread_mutex_unlock(&s.lock);
	pthread_join(th, NULL);
	signaller_fini(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_uuid4_format),
	    cmocka_unit_test(test_uuid4_unique),
	    cmocka_unit_test(test_url_escape),
	    cmocka_unit_test(test_system_clock),
	    cmocka_unit_test(test_system_clock_wall),
	    cmocka_unit_test(test_system_wait_until_times_out),
	    cmocka_unit_test(test_system_wait_until_wakes_on_signal),
	    cmocka_unit_test(test_fake_clock_time),
	    cmocka_unit_test(test_fake_wait_until_advances_time),
	    cmocka_unit_test(test_fake_wait_until_real_waits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
