/*
 * log.c: the one logging facility (log.h).
 *
 * Lines go to syslog ("databoxfs", LOG_PID, LOG_DAEMON) or, when the mount
 * runs in the foreground, to stderr prefixed with a UTC timestamp and the
 * level. Until dbx_log_init() is called lines go to stderr without debug.
 * A mutex keeps concurrent stderr lines whole; syslog is thread-safe itself.
 * Audit lines (dbx_log_audit) go to syslog's LOG_AUTHPRIV facility always,
 * and to stderr as well in the foreground: docs/formats.md, "Audit trail",
 * says why AUTHPRIV (a change of who may decrypt an order's data is an
 * authorization record, kept where only root reads it).
 * Callers never pass secrets (log.h); this file cannot check that.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/time.h>
#include <syslog.h>
#include <time.h>

#include "databoxfs/log.h"

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static bool log_stderr = true;
static bool log_debug;

void dbx_log_init(bool to_stderr, bool debug)
{
	pthread_mutex_lock(&log_lock);
	log_stderr = to_stderr;
	log_debug = debug;
	/* Also under -f: the audit trail goes to syslog whatever the sink. */
	openlog("databoxfs", LOG_PID, LOG_DAEMON);
	pthread_mutex_unlock(&log_lock);
}

bool dbx_log_debug_enabled(void)
{
	bool d;

	pthread_mutex_lock(&log_lock);
	d = log_debug;
	pthread_mutex_unlock(&log_lock);
	return d;
}

static int syslog_priority(enum dbx_log_level level)
{
	switch (level) {
	case DBX_LOG_ERR:
		return LOG_ERR;
	case DBX_LOG_WARN:
		return LOG_WARNING;
	case DBX_LOG_INFO:
		return LOG_INFO;
	case DBX_LOG_DEBUG:
		return LOG_DEBUG;
	}
	return LOG_INFO;
}

static const char *level_name(enum dbx_log_level level)
{
	switch (level) {
	case DBX_LOG_ERR:
		return "error";
	case DBX_LOG_WARN:
		return "warning";
	case DBX_LOG_INFO:
		return "info";
	case DBX_LOG_DEBUG:
		return "debug";
	}
	return "info";
}

void dbx_log(enum dbx_log_level level, const char *fmt, ...)
{
	char line[2048];
	char stamp[32];
	struct timeval tv;
	struct tm tm;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);

	pthread_mutex_lock(&log_lock);
	if (level == DBX_LOG_DEBUG && !log_debug)
		goto out;
	if (!log_stderr) {
		syslog(syslog_priority(level), "%s", line);
		goto out;
	}
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	fprintf(stderr, "%s.%03ldZ databoxfs %s: %s\n", stamp, (long)(tv.tv_usec / 1000),
		level_name(level), line);
out:
	pthread_mutex_unlock(&log_lock);
}

void dbx_log_audit(const char *fmt, ...)
{
	char line[4096];
	char stamp[32];
	struct timeval tv;
	struct tm tm;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);

	pthread_mutex_lock(&log_lock);
	syslog(LOG_AUTHPRIV | LOG_NOTICE, "%s", line);
	if (log_stderr) {
		gettimeofday(&tv, NULL);
		gmtime_r(&tv.tv_sec, &tm);
		strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
		fprintf(stderr, "%s.%03ldZ databoxfs notice: %s\n", stamp,
			(long)(tv.tv_usec / 1000), line);
	}
	pthread_mutex_unlock(&log_lock);
}
