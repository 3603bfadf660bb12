/*
 * log.h: the one logging facility: syslog by default, stderr when the mount
 * runs in the foreground. Debug lines only with -d. Callers never pass a
 * token, secret or Authorization header; URLs are logged without their query.
 */
#ifndef DATABOXFS_LOG_H
#define DATABOXFS_LOG_H

#include <stdbool.h>

enum dbx_log_level {
	DBX_LOG_ERR,
	DBX_LOG_WARN,
	DBX_LOG_INFO,
	DBX_LOG_DEBUG,
};

/* Choose the sink (stderr when to_stderr, else syslog "databoxfs") and whether debug lines print.
 */
void dbx_log_init(bool to_stderr, bool debug);

void dbx_log(enum dbx_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

bool dbx_log_debug_enabled(void);

/*
 * One line of the audit trail (docs/formats.md, "Audit trail"): to syslog
 * as LOG_AUTHPRIV | LOG_NOTICE whatever the sink, and to stderr too when
 * the mount runs in the foreground. Never a token or secret.
 */
void dbx_log_audit(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
