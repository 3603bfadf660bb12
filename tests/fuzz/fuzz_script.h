/*
 * fuzz_script.h: a transport whose answers are the fuzzer's input, for the
 * targets that drive a client (ARM, Key Vault, the credential sources) over
 * HTTP answers it did not choose.
 *
 * An input is a list of answers separated by a line "====". Each answer is
 * written like an HTTP response: a first line with the status ("200"), or
 * "!unreachable", "!timeout" or "!remote" for a transport failure; header
 * lines "Name: value" (Location, Retry-After, retry-after-ms,
 * x-ms-request-id, WWW-Authenticate) up to an empty line; then the body.
 * Requests past the last answer fail as unreachable. Header values hold
 * no control byte (as the curl transport delivers them, http.h); bodies
 * may hold any byte.
 *
 * The transport checks every request before answering it, and aborts (a
 * finding) when one breaks what docs/architecture.md promises: a request
 * goes only to a URL the target allows (for ARM: https on the cloud's ARM
 * host), and none is sent once its own deadline has passed. The clock is
 * tests/unit/fake_transport.h's fake clock: it moves only when the code
 * sleeps or waits, so a target never sleeps for real.
 */
#ifndef DBX_FUZZ_SCRIPT_H
#define DBX_FUZZ_SCRIPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "databoxfs/http.h"
#include "../unit/fake_transport.h"

#define FUZZ_MAX_ANSWERS 64

struct fuzz_answer {
	long status;
	enum dbx_err transport_err; /* non-zero: the send fails */
	char *location, *retry_after, *retry_after_ms, *request_id, *www_authenticate;
	char *body; /* NUL-terminated copy, body_len bytes before the NUL */
	size_t body_len;
};

struct fuzz_script {
	struct dbx_transport base;
	struct fuzz_answer answers[FUZZ_MAX_ANSWERS];
	size_t n, next;
	size_t sent; /* requests seen */
	const struct dbx_clock *clock;
	/* May a request go to url? NULL: any. */
	bool (*url_ok)(void *ctx, const char *url);
	void *url_ctx;
};

/* Split data into answers (at most FUZZ_MAX_ANSWERS; the rest is ignored). */
void fuzz_script_init(struct fuzz_script *s, const uint8_t *data, size_t size,
		      const struct dbx_clock *clock);
void fuzz_script_fini(struct fuzz_script *s);

/* Abort with "<target>: property broken: what" unless cond. */
void fuzz_must(int cond, const char *target, const char *what);

/* e's message, code and request id are one line each, and its message is not empty. */
void fuzz_check_error(const struct dbx_error *e, const char *target);

/* The first line of an input (the operation a target runs) and what follows it. */
void fuzz_split_op(const uint8_t *data, size_t size, char *op, size_t cap, const uint8_t **rest,
		   size_t *rest_len);

/*
 * The index of op in ops (nops names); for a name not there, one picked by
 * the input's first byte, so mutated inputs still reach every operation.
 */
size_t fuzz_pick_op(const char *const *ops, size_t nops, const char *op, const uint8_t *data,
		    size_t size);

#endif
