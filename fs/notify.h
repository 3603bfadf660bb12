/*
 * notify.h: telling the service manager the mount is ready (systemd's
 * Type=notify; README.md, "Running it as a service", and the man page).
 *
 * The sd_notify protocol, implemented here rather than linked from
 * libsystemd: one datagram of NAME=VALUE lines ("READY=1\nSTATUS=...") to
 * the AF_UNIX socket named by $NOTIFY_SOCKET, a leading '@' meaning the
 * abstract namespace. A readiness watcher sends READY=1 once the mount
 * answers through the kernel and a check (the ARM token) has succeeded.
 */
#ifndef DBX_FS_NOTIFY_H
#define DBX_FS_NOTIFY_H

#include "databoxfs/clock.h"
#include "databoxfs/err.h"

/*
 * Send state to the socket at socket_path (a path, or '@' + an abstract
 * name). 0 when sent; -1 with errno set (EINVAL for a name that does not
 * fit a sockaddr_un) otherwise.
 */
DBX_MUST_CHECK int dbx_notify_send(const char *socket_path, const char *state);

struct dbx_ready;

/* The check readiness waits for: DBX_OK, or an error whose message goes to STATUS=. */
typedef enum dbx_err (*dbx_ready_check)(void *ctx, struct dbx_error *err);

/*
 * Start a thread that stats and statfs's mountpoint (an absolute path; the
 * calls reach the mount, so they return once the kernel has its answer to
 * init and the root's attributes), then runs check until it returns DBX_OK
 * (again every retry_ms, with STATUS= saying why it waits), then sends
 * READY=1 to socket_path. Call it from the mount's init, in the process
 * that serves the mount. Strings are copied. NULL on ENOMEM or when the
 * thread cannot start.
 */
struct dbx_ready *dbx_ready_start(const char *socket_path, const char *mountpoint,
				  dbx_ready_check check, void *ctx, uint64_t retry_ms,
				  const struct dbx_clock *clock);

/* Stop the watcher (it sends nothing more), wait for its thread, free it. NULL is fine. */
void dbx_ready_stop(struct dbx_ready *r);

#endif
