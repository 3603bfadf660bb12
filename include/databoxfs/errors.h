/*
 * errors.h: the errors file of an order (docs/formats.md, "The errors
 * file"), its whole format: the blocks, their order, the remedy text.
 *
 * Pure functions (backend/rules/errors.c): they take the structured inputs
 * (the problems the service reports on the order, the failed refresh, the
 * last failed write) and render the exact bytes a read of the file returns.
 * Codes are decoded through the Ssem table (ssem.h); every producer of
 * error blocks goes through dbx_error_block_append(), so all blocks have one
 * format and no string from a service can add or forge a line of it.
 */
#ifndef DATABOXFS_ERRORS_H
#define DATABOXFS_ERRORS_H

#include <stddef.h>
#include <time.h>

#include "databoxfs/err.h"
#include "databoxfs/ssem.h"

/* One problem the service reports on an order: properties.error, or a stage that needs attention.
 */
struct dbx_order_problem {
	char *code;    /* properties.error.code, or the stage status (e.g.
			  "WaitingForCustomerActionForKek") */
	char *message; /* the service's text, or NULL */
	char *target;  /* properties.error.target, or the stage name, or NULL */
	char *time;    /* stageTime when known (as sent), or NULL */
};

/* "yes", "no" or "depends". */
const char *dbx_recoverable_str(enum dbx_recoverable r);

/*
 * The row's resolution as plain text: markdown links become their text,
 * backticks vanish, <ol><li> become numbered steps "1. ...", <br> a line
 * break; lines are joined with "\n". Caller frees; NULL on ENOMEM or when
 * row is NULL.
 */
char *dbx_errors_remedy(const struct dbx_ssem_row *row);

/* One block of the errors file. NULL fields are left out. */
struct dbx_error_block {
	const char *code;    /* required */
	const char *source;  /* "order", "last-write", "read" */
	const char *time;    /* ISO 8601 UTC */
	const char *message; /* the service's text; NULL: the table's details */
	const char *target;  /* where the service said the error is, or NULL */
	const char *request_id;
	/*
	 * For blocks that are not service codes (e.g. a failed read: "source:
	 * read", code "HostUnreachable"), the producer's own advice. NULL:
	 * decode code through the table.
	 */
	const char *recoverable;
	const char *remedy;
};

/*
 * Append block to the growing text *buf (length *len, malloc'd; *buf may
 * start NULL), separated from earlier blocks by one blank line. Decodes
 * code through the table (unknown codes get the Generic row's recoverable
 * and remedy), so the block always has code, source, time, message,
 * recoverable, remedy, and request_id when known. Multi-line remedies
 * indent continuation lines by two spaces. DBX_EINVAL when code is blank.
 */
DBX_MUST_CHECK enum dbx_err dbx_error_block_append(char **buf, size_t *len,
						   const struct dbx_error_block *block);

/* What one order's errors file is made of. Everything is borrowed. */
struct dbx_errors_input {
	/* The problems the service reports on the order, as it lists them; NULL when none. */
	const struct dbx_order_problem *problems;
	size_t n_problems;
	/* The time of the problems that carry none (the order's lastModifiedAt as sent), or NULL.
	 */
	const char *order_time;
	/* The latest refresh of the order failed (why, and when, UTC), or NULL. */
	const struct dbx_error *read_err;
	time_t read_time;
	/* The latest failed write to the order through this mount, or NULL (err DBX_OK: a note). */
	const struct dbx_error *write_err;
	time_t write_time;
	const char *write_target; /* the file that was written, or NULL */
};

/*
 * Render the errors file for in into *buf (malloc'd, NUL-terminated) and
 * its exact length into *len: one block per problem with a code ("source:
 * order"), one for the failed read ("source: read") and one for the last
 * write ("source: last-write"), newest first, separated by one blank line;
 * an empty file when there is nothing to say. A failed read or write
 * without a service code is named by the mount ("HostUnreachable",
 * "Timeout", "InvalidValue", ...) and carries the mount's own advice; a
 * stage status gets advice for that status. DBX_ENOMEM only.
 */
DBX_MUST_CHECK enum dbx_err dbx_errors_render(const struct dbx_errors_input *in, char **buf,
					      size_t *len);

#endif
