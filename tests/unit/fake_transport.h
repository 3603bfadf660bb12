/*
 * fake_transport.h: a scripted transport and a fake clock for unit tests.
 *
 * The fake transport answers requests from a script of replies, in order,
 * and records every request it saw (method, URL, scope, bearer, body), so a
 * test can assert both what the code sent and how it handled each answer.
 * The fake clock advances only when code sleeps, so retry and refresh tests
 * run instantly and deterministically.
 */
#ifndef DBX_FAKE_TRANSPORT_H
#define DBX_FAKE_TRANSPORT_H

#include <pthread.h>

#include "databoxfs/http.h"

#define FAKE_MAX_CALLS 256

struct fake_reply {
	long status;	  /* HTTP status; ignored when transport_err is set */
	const char *body; /* NULL: empty */
	const char *location;
	const char *retry_after;
	const char *retry_after_ms;
	const char *request_id;
	const char *www_authenticate;
	enum dbx_err transport_err; /* non-zero: fail the send like a dropped connection */
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

struct fake_clock {
	struct dbx_clock clock; /* pass &fc->clock to the code under test */
	uint64_t now;		/* ms */
	uint64_t slept;		/* total ms slept */
	uint64_t sleeps[FAKE_MAX_CALLS];
	size_t n_sleeps;
	uint32_t random_value; /* random() returns min(random_value, bound - 1) */
};

void fake_clock_init(struct fake_clock *fc, uint64_t start_ms);

/*
 * printf into a string the fakes keep until fake_fmt_free(): for request
 * and response bodies built for one test (at most 64 between frees).
 */
const char *fake_fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
void fake_fmt_free(void);

#endif
