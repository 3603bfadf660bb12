/*
 * timestamp.h: ISO 8601 timestamps, read as ARM sends them and written in
 * the one spelling the mount shows ("2026-11-28T12:00:00Z"). Pure functions
 * (backend/core/timestamp.c), used by the job JSON reader and the errors file.
 */
#ifndef DATABOXFS_TIMESTAMP_H
#define DATABOXFS_TIMESTAMP_H

#include <time.h>

/* Room for dbx_format_time()'s text, NUL included. */
#define DBX_TIME_STR_MAX 32

/*
 * Parse an ISO 8601 timestamp ("2025-05-26T06:50:23.0185023+00:00", "...Z",
 * no offset meaning UTC) to UTC, fractions of a second dropped. -1 when s is
 * NULL or malformed.
 */
time_t dbx_parse_time(const char *s);

/* t as ISO 8601 UTC to the second ("2026-11-28T12:00:00Z") into out; digits when unrepresentable.
 */
void dbx_format_time(time_t t, char out[DBX_TIME_STR_MAX]);

#endif
