/*
 * fake_transport.h: a scripted transport and a fake clock for unit tests.
 *
 * The fake transport answers requests from a script of replies, in order,
 * and records every request it saw (method, URL, scope, bearer, body), so a
 * test can assert both what the code sent and how it handled each answer.
 * The fake clock advances only when code sleeps or waits, so retry, refresh
 * and lock-wait tests run instantly and deterministically.
 */
#ifndef DBX_FAKE_TRANSPORT_H
#define DBX_FAKE_TRANSPORT_H

#include <pthread.h>
#include <stdbool.h>
#include <time.h>

#include "databoxfs/http.h"

#define FAKE_MAX_CALLS 256

struct fake_reply {
	long status;	  /* HTTP status; ignored when transport_err is set */
	const char *body; /* NULL: empty */
	const char *location;
	const char *retry_after;
	const char *retry_after_ms;
	const char *request_id;
	const char *correlation_id; /* x-ms-correlation-request-id */
	const char *www_authenticate;
	enum dbx_err transport_err; /* non-zero: fail the send like a dropped connection */
	const char *transport_code; /* with transport_err: the err->code the transport sets */
	long ratelimit; /* > 0: x-ms-ratelimit-remaining-* says ratelimit - 1 are left */
};

struct fake_call {
	char method[16];
	char *url;
	char *scope;
	char *bearer;
	char *body;
	uint64_t deadline_ms;
};

struct fake_transport {
	struct dbx_transport base;
	pthread_mutex_t lock;
	const struct fake_reply *script;
	size_t n_script;
	size_t next; /* index of the next reply */
	struct fake_call calls[FAKE_MAX_CALLS];
	size_t n_calls;
};

/* Initialise f to answer with script[0..n-1]; past the end it answers 599 "script exhausted". */
void fake_transport_init(struct fake_transport *f, const struct fake_reply *script, size_t n);
void fake_transport_fini(struct fake_transport *f);

/*
 * The fake clock. now (monotonic ms) moves only when the code sleeps or
 * waits, or when the test moves it; wall (UTC seconds) only when the test
 * moves it, so mtimes and error times stay predictable across sleeps.
 *
 * wait_until never blocks by default: past the deadline it answers
 * DBX_ETIMEDOUT, otherwise time jumps to the deadline and it answers
 * DBX_ETIMEDOUT at once, as if nobody signalled (a test with one thread has
 * nobody who could). A test whose other threads do signal sets real_waits:
 * then it first waits on the condition for real, as many ms as the fake
 * deadline is away, and a signal within them answers DBX_OK with time
 * unchanged; only when they pass does time jump to the deadline. Without a
 * deadline it waits for real for the signal, whatever real_waits says.
 */
struct fake_clock {
	struct dbx_clock clock; /* pass &fc->clock to the code under test */
	uint64_t now;		/* ms */
	time_t wall;		/* UTC seconds; FAKE_WALL0 from fake_clock_init() */
	uint64_t slept;		/* total ms slept */
	uint64_t sleeps[FAKE_MAX_CALLS];
	size_t n_sleeps;
	size_t n_waits;	       /* wait_until calls */
	size_t n_timeouts;     /* those that answered DBX_ETIMEDOUT */
	bool real_waits;       /* other threads signal: wait for them for real first */
	uint32_t random_value; /* random() returns min(random_value, bound - 1) */
};

#define FAKE_WALL0 ((time_t)1700000000) /* 2023-11-14T22:13:20Z */

void fake_clock_init(struct fake_clock *fc, uint64_t start_ms);

/*
 * printf into a string the fakes keep until fake_fmt_free(): for request
 * and response bodies built for one test (at most 64 between frees).
 */
const char *fake_fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
void fake_fmt_free(void);

#endif
