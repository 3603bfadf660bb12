/*
 * clock.h: the one clock of the mount, injectable.
 *
 * Every component that measures time, waits or stamps a time takes a
 * struct dbx_clock from its constructor or config: the HTTP layers
 * (deadlines, Retry-After dates, backoff sleeps with jitter), the token
 * cache (expiry), the credential sources (assertion times, token expiry),
 * the update pipeline (deadlines, key expiry) and the cache (TTL, mtimes,
 * bounded lock waits). Production passes dbx_clock_system(); unit tests
 * pass a fake whose time moves only when the code sleeps or waits, or when
 * the test moves it, so no test ever sleeps for real.
 *
 * Two time lines: now_ms is monotonic (deadlines, TTLs, durations; it never
 * jumps with the system time) and wall is UTC seconds since the epoch (what
 * is shown or compared with times other machines wrote: mtimes, error
 * times, token expiry claims, HTTP dates). A deadline is always on now_ms.
 */
#ifndef DATABOXFS_CLOCK_H
#define DATABOXFS_CLOCK_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include "databoxfs/err.h"

struct dbx_clock {
	/* Monotonic time in ms (CLOCK_MONOTONIC in production). */
	uint64_t (*now_ms)(void *ctx);
	/* Wall time: UTC seconds since the epoch (time(2) in production). */
	time_t (*wall)(void *ctx);
	/* Sleep ms milliseconds; return DBX_EINTR when asked to stop early. */
	enum dbx_err (*sleep_ms)(void *ctx, uint64_t ms);
	/*
	 * Wait on c, with m held on entry and on return, until it is signalled
	 * or now_ms reaches deadline_ms (0: no deadline). DBX_OK when woken
	 * (possibly spuriously: the caller re-checks its condition),
	 * DBX_ETIMEDOUT once the deadline has passed. c must have been set up
	 * by dbx_clock_cond_init().
	 */
	enum dbx_err (*wait_until)(void *ctx, pthread_cond_t *c, pthread_mutex_t *m,
				   uint64_t deadline_ms);
	/* Uniform random number in [0, bound) for jitter. */
	uint32_t (*random)(void *ctx, uint32_t bound);
	void *ctx;
};

/* The production clock: CLOCK_MONOTONIC, time(2), nanosleep, getrandom jitter. */
const struct dbx_clock *dbx_clock_system(void);

/*
 * Initialise c for wait_until: its timed waits measured on CLOCK_MONOTONIC,
 * the time line of now_ms, so that a change of the system time neither
 * shortens nor stretches them. 0, or an error number of pthread_cond_init.
 */
int dbx_clock_cond_init(pthread_cond_t *c);

/* Shorthands for the calls through the struct. */
static inline uint64_t dbx_clock_now_ms(const struct dbx_clock *clock)
{
	return clock->now_ms(clock->ctx);
}

static inline time_t dbx_clock_wall(const struct dbx_clock *clock)
{
	return clock->wall(clock->ctx);
}

static inline enum dbx_err dbx_clock_wait_until(const struct dbx_clock *clock, pthread_cond_t *c,
						pthread_mutex_t *m, uint64_t deadline_ms)
{
	return clock->wait_until(clock->ctx, c, m, deadline_ms);
}

#endif
