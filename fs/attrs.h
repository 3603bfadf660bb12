/*
 * attrs.h: the files of an order directory, as one table.
 *
 * Each file is one struct dbx_attr {name, mode, show, store}, sysfs style:
 * show() renders the exact bytes a read returns (one value and "\n", or
 * nothing when the value is absent), store() takes the whole value of one
 * write. readdir, getattr, read and write all loop over dbx_attrs[]; adding a
 * file is adding a row in attrs.c. Nothing here talks to the network or to
 * FUSE: show() works on an immutable struct dbx_order snapshot.
 */
#ifndef DATABOXFS_FS_ATTRS_H
#define DATABOXFS_FS_ATTRS_H

#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include "databoxfs/err.h"
#include "databoxfs/order.h"

/* What a show()/store() works on. */
struct dbx_attr_ctx {
	const struct dbx_order *order;	  /* the snapshot; NULL when the order was never read */
	const struct dbx_error *read_err; /* the latest refresh failed (why), or NULL */
	time_t read_time;		  /* when that refresh failed (UTC) */
};

struct dbx_attr {
	const char *name;
	mode_t mode; /* 0644 when store is set, else 0444 */
	/*
	 * Render the value into *buf (malloc'd, NUL-terminated for
	 * convenience) and its exact length into *len; an absent value is
	 * *len == 0. DBX_ENOMEM only.
	 */
	enum dbx_err (*show)(const struct dbx_attr_ctx *ctx, char **buf, size_t *len);
	/*
	 * Apply the whole value of one write (len bytes, not NUL-terminated).
	 * NULL for read-only files. err says why a value was refused.
	 */
	enum dbx_err (*store)(const struct dbx_attr_ctx *ctx, const char *value, size_t len,
			      struct dbx_error *err);
};

/* The rows of the table in attrs.c, in directory order. */
extern const struct dbx_attr *const dbx_attrs;
extern const size_t dbx_attrs_len;

/* Index of the file called name (exact), or -1. */
int dbx_attr_find(const char *name);

/* Render attribute index i for ctx. Same contract as show(). */
DBX_MUST_CHECK enum dbx_err dbx_attr_show(size_t i, const struct dbx_attr_ctx *ctx, char **buf,
					  size_t *len);

/*
 * sysfs rule for a written value: drop one trailing newline, then blanks
 * (space, tab) on both sides. Returns the start of the value inside value
 * and its length in *out_len.
 */
const char *dbx_attr_trim(const char *value, size_t len, size_t *out_len);

/*
 * The name a failed read is shown under in the errors file when the error
 * has no service code: "HostUnreachable", "Timeout", "Throttled",
 * "AuthenticationFailed", "AccessDenied", "NotFound", "ServiceError", ...
 */
const char *dbx_attr_read_code(enum dbx_err err);

#endif
