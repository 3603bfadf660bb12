/*
 * err.h: the one error type of databoxfs.
 *
 * Every fallible function returns an enum dbx_err (0 is success) and, when it
 * fails, fills a struct dbx_error with what a human needs to act: the HTTP
 * status, the service's error code and message, and the request id to quote
 * in a support ticket. errno values appear only at the FUSE boundary
 * (fs/ops.c), through one mapping function.
 */
#ifndef DATABOXFS_ERR_H
#define DATABOXFS_ERR_H

#include <stdarg.h>

#define DBX_MUST_CHECK __attribute__((warn_unused_result))

enum dbx_err {
	DBX_OK = 0,	  /* success */
	DBX_EINVAL,	  /* bad value from the user, or a 400 user error from the service */
	DBX_EACCES,	  /* 401/403: the caller's credential may not do this */
	DBX_ENOTFOUND,	  /* 404: the object does not exist (any more) */
	DBX_EBUSY,	  /* 409: the object is in a state that refuses the change */
	DBX_ETHROTTLED,	  /* 429 still, after the retry budget */
	DBX_ETIMEDOUT,	  /* the operation did not finish within the configured timeout */
	DBX_EUNREACHABLE, /* connect failure, DNS, TLS: the service could not be reached */
	DBX_EREMOTE,	  /* 5xx after retries, failed long-running operation, malformed response */
	DBX_EINTR,	  /* interrupted by the caller before anything was sent */
	DBX_ENOMEM,	  /* out of memory */
	DBX_EAUTH,	  /* no credential could produce a token */
	DBX_ECONFIG,	  /* bad option or environment */
	DBX_EROFS,  /* the attribute cannot be written (read-only file, or writes not enabled) */
	DBX_EEXIST, /* the name exists (create of a temporary file, rename with no-replace) */
	DBX_ENOSPC, /* no room: an order directory holds its most temporary files */
	DBX_EFBIG,  /* past a size cap: a value, or a temporary file, over 64 KiB */
	DBX_EXDEV,  /* a rename that would move a temporary file out of its order directory */
	DBX_EPERM,  /* refused to everyone: renaming an attribute file, chown to another user */
};

#define DBX_ERR_CODE_MAX 128
#define DBX_ERR_MSG_MAX	 1024
#define DBX_ERR_ID_MAX	 64

/* The service a failure came from, so advice names the right one. */
enum dbx_service {
	DBX_SERVICE_ARM = 0,  /* Azure Resource Manager (the default) */
	DBX_SERVICE_KEYVAULT, /* a Key Vault data plane (the key a write names) */
	DBX_SERVICE_TOKEN,    /* the credential's token endpoint: the request was never sent */
};

/* What went wrong, for errors files and logs. Never holds a secret. */
struct dbx_error {
	enum dbx_err err;
	enum dbx_service service;	 /* where it failed; set by the layer that knows */
	long http_status;		 /* 0 when no HTTP response was involved */
	char code[DBX_ERR_CODE_MAX];	 /* service error code (e.g. SsemUserError...), or "" */
	char message[DBX_ERR_MSG_MAX];	 /* human readable, one line */
	char request_id[DBX_ERR_ID_MAX]; /* x-ms-request-id of the failing response, or "" */
};

/*
 * Fill *e (when e is not NULL) and return err. message is printf-style. The
 * error is a new one: its service is ARM again until the layer that knows
 * better says otherwise.
 */
enum dbx_err dbx_error_set(struct dbx_error *e, enum dbx_err err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Reset *e to "no error". */
void dbx_error_clear(struct dbx_error *e);

/* Static name of err, e.g. "EINVAL" -> "invalid value". Never NULL. */
const char *dbx_err_str(enum dbx_err err);

#endif
