/*
 * err.c: the one error type of databoxfs (err.h).
 *
 * dbx_error_set() records the error kind and a one-line human message; the
 * HTTP status, service code and request id are filled by the caller that
 * knows them. Messages are kept on one line (control characters become
 * blanks) because they end up in the `errors` file and in syslog.
 */
#include <stdio.h>
#include <string.h>

#include "databoxfs/err.h"

/* Replace control characters (newlines, tabs, ...) by blanks, in place. */
static void one_line(char *s)
{
	for (; *s; s++) {
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = ' ';
	}
}

enum dbx_err dbx_error_set(struct dbx_error *e, enum dbx_err err, const char *fmt, ...)
{
	va_list ap;

	if (!e)
		return err;
	e->err = err;
	e->service = DBX_SERVICE_ARM;
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof(e->message), fmt, ap);
	va_end(ap);
	one_line(e->message);
	return err;
}

void dbx_error_clear(struct dbx_error *e)
{
	if (e)
		memset(e, 0, sizeof(*e));
}

const char *dbx_err_str(enum dbx_err err)
{
	switch (err) {
	case DBX_OK:
		return "success";
	case DBX_EINVAL:
		return "invalid value";
	case DBX_EACCES:
		return "access denied";
	case DBX_ENOTFOUND:
		return "not found";
	case DBX_EBUSY:
		return "busy";
	case DBX_ETHROTTLED:
		return "throttled";
	case DBX_ETIMEDOUT:
		return "timed out";
	case DBX_EUNREACHABLE:
		return "service unreachable";
	case DBX_EREMOTE:
		return "service error";
	case DBX_EINTR:
		return "interrupted";
	case DBX_ENOMEM:
		return "out of memory";
	case DBX_EAUTH:
		return "authentication failed";
	case DBX_ECONFIG:
		return "configuration error";
	case DBX_EROFS:
		return "read-only";
	case DBX_EEXIST:
		return "already exists";
	case DBX_ENOSPC:
		return "no room left";
	case DBX_EFBIG:
		return "too large";
	case DBX_EXDEV:
		return "cannot move across directories";
	case DBX_EPERM:
		return "not permitted";
	}
	return "unknown error";
}
