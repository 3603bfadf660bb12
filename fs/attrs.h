/*
 * attrs.h: the files of an order directory, as one table.
 *
 * Each file is one struct dbx_attr {name, mode, show, store}, sysfs style:
 * show() renders the exact bytes a read returns (one value and "\n", or
 * nothing when the value is absent), store() takes the whole value of one
 * write. readdir, getattr, read and write all loop over dbx_attrs[]; adding a
 * file is adding a row in attrs.c. Nothing here talks to the network or to
 * FUSE: show() works on an immutable struct dbx_order snapshot, and store()
 * turns a written value into a validated struct dbx_encryption_change
 * (validate.h) that fs.c then applies through dbx_update_apply().
 */
#ifndef DATABOXFS_FS_ATTRS_H
#define DATABOXFS_FS_ATTRS_H

#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include <stdbool.h>

#include "databoxfs/cloud.h"
#include "databoxfs/err.h"
#include "databoxfs/order.h"
#include "databoxfs/validate.h"

/* What a store() hands back: the change to apply, or that there is none. */
struct dbx_attr_write {
	const struct dbx_cloud *cloud; /* in: the mount's cloud (key URL hosts); NULL: default */
	struct dbx_encryption_change change; /* out: what to apply, when !noop */
	bool noop;			     /* out: the value is the current one: send nothing */
	bool used_current; /* out: the decision compared against ctx->order (which must be fresh) */
};

/* What a show()/store() works on. */
struct dbx_attr_ctx {
	const struct dbx_order *order;	  /* the snapshot; NULL when the order was never read */
	const struct dbx_error *read_err; /* the latest refresh failed (why), or NULL */
	time_t read_time;		  /* when that refresh failed (UTC) */
	/* The latest failed write to the order through this mount, or NULL (errors file). */
	const struct dbx_error *write_err;
	time_t write_time;	      /* when it failed (UTC) */
	const char *write_target;     /* the file that was written */
	struct dbx_attr_write *write; /* store() only: in/out, never NULL there */
	/* The operation file's text (cache.h: dbx_cache_set_operation), or NULL when idle. */
	const char *operation;
};

struct dbx_attr {
	const char *name;
	mode_t mode; /* 0644 when store is set, else 0444 */
	/*
	 * The value is one JSON object that may span lines: a write is
	 * complete once the object closes, not at the first "\n" (fs.c).
	 */
	bool json_object;
	/*
	 * The file explains the order's failures: it is shown even when the
	 * order cannot be read (it says why), and the last write's outcome
	 * moves its mtime.
	 */
	bool reports_errors;
	/*
	 * The file shows the write in flight (ctx->operation): its mtime is
	 * when that last changed.
	 */
	bool reports_operation;
	/*
	 * Render the value into *buf (malloc'd, NUL-terminated for
	 * convenience) and its exact length into *len; an absent value is
	 * *len == 0. DBX_ENOMEM only.
	 */
	enum dbx_err (*show)(const struct dbx_attr_ctx *ctx, char **buf, size_t *len);
	/*
	 * Parse the whole value of one write (len bytes, not NUL-terminated)
	 * sysfs-style and validate it locally, without any request: fill
	 * ctx->write->change, or set ctx->write->noop when the value is the one
	 * the file shows for ctx->order (compared before validating, so a value
	 * that came from ARM can always be written back unchanged). NULL for
	 * read-only files. DBX_EINVAL with the Ssem code in err when refused.
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

#endif
