/*
 * http/clock.c: the production clock (clock.h). Monotonic time is
 * CLOCK_MONOTONIC, wall time is time(2), sleeps are nanosleep (a signal ends
 * them early), timed condition waits are pthread_cond_timedwait on
 * CLOCK_MONOTONIC, and jitter comes from getrandom. This is the one place
 * that reads the system's clocks: everything else asks a struct dbx_clock.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include "databoxfs/clock.h"
#include "http/random.h"

static uint64_t system_now_ms(void *ctx)
{
	struct timespec ts;

	(void)ctx;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static time_t system_wall(void *ctx)
{
	(void)ctx;
	return time(NULL);
}

/* A signal delivered to this thread (FUSE's interrupt) ends the sleep early. */
static enum dbx_err system_sleep_ms(void *ctx, uint64_t ms)
{
	struct timespec ts = {.tv_sec = (time_t)(ms / 1000),
			      .tv_nsec = (long)(ms % 1000) * 1000000L};

	(void)ctx;
	if (nanosleep(&ts, NULL) != 0 && errno == EINTR)
		return DBX_EINTR;
	return DBX_OK;
}

/* deadline_ms is on system_now_ms's time line, so it is a CLOCK_MONOTONIC instant as it is. */
static enum dbx_err system_wait_until(void *ctx, pthread_cond_t *c, pthread_mutex_t *m,
				      uint64_t deadline_ms)
{
	struct timespec at = {.tv_sec = (time_t)(deadline_ms / 1000),
			      .tv_nsec = (long)(deadline_ms % 1000) * 1000000L};

	(void)ctx;
	if (deadline_ms == 0) {
		pthread_cond_wait(c, m);
		return DBX_OK;
	}
	return pthread_cond_timedwait(c, m, &at) == ETIMEDOUT ? DBX_ETIMEDOUT : DBX_OK;
}

/* Uniform in [0, bound), without modulo bias. */
static uint32_t system_random(void *ctx, uint32_t bound)
{
	uint32_t r;
	uint32_t limit;

	(void)ctx;
	if (bound <= 1)
		return 0;
	limit = UINT32_MAX - (UINT32_MAX % bound);
	do {
		dbx_random_bytes(&r, sizeof(r));
	} while (r >= limit);
	return r % bound;
}

static const struct dbx_clock system_clock = {
    .now_ms = system_now_ms,
    .wall = system_wall,
    .sleep_ms = system_sleep_ms,
    .wait_until = system_wait_until,
    .random = system_random,
    .ctx = NULL,
};

const struct dbx_clock *dbx_clock_system(void)
{
	return &system_clock;
}

int dbx_clock_cond_init(pthread_cond_t *c)
{
	pthread_condattr_t attr;
	int rc;

	rc = pthread_condattr_init(&attr);
	if (rc != 0)
		return rc;
	rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	if (rc == 0)
		rc = pthread_cond_init(c, &attr);
	pthread_condattr_destroy(&attr);
	return rc;
}
