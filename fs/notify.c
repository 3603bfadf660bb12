/*
 * notify.c: readiness for systemd's Type=notify (notify.h; README.md,
 * "Running it as a service").
 *
 * dbx_notify_send speaks the sd_notify datagram protocol directly (a
 * SOCK_DGRAM AF_UNIX socket, one sendto of the state), which spares the
 * build a libsystemd dependency for a dozen lines. The readiness watcher is
 * one thread: it proves the mount answers by stat(2) and statfs(2) of the
 * mountpoint from outside the FUSE worker threads (both go through the
 * kernel to this very process, so they return only once init was answered
 * and the root served), then waits for the check (the ARM token: a mount
 * that started while Entra refused or could not be reached is not ready
 * until it has one), then sends READY=1 with a STATUS= line. A mountpoint
 * that is not a FUSE filesystem, or a failed send, is logged and nothing
 * is sent: systemd's TimeoutStartSec then fails the unit, which is the
 * truth.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/un.h>
#include <unistd.h>

#include "databoxfs/log.h"
#include "notify.h"

#define FUSE_SUPER_MAGIC 0x65735546

int dbx_notify_send(const char *socket_path, const char *state)
{
	struct sockaddr_un sa;
	size_t n = strlen(socket_path);
	socklen_t len;
	ssize_t sent;
	int fd, saved;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (n < 2 || n >= sizeof(sa.sun_path) || (socket_path[0] != '/' && socket_path[0] != '@')) {
		errno = EINVAL;
		return -1;
	}
	memcpy(sa.sun_path, socket_path, n);
	if (sa.sun_path[0] == '@')
		sa.sun_path[0] =
		    '\0'; /* abstract: the name is the bytes after the NUL, unterminated */
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (socket_path[0] == '/'));
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	sent = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa, len);
	saved = errno;
	close(fd);
	errno = saved;
	return sent == (ssize_t)strlen(state) ? 0 : -1;
}

struct dbx_ready {
	char *socket_path;
	char *mountpoint;
	dbx_ready_check check;
	void *ctx;
	uint64_t retry_ms;
	const struct dbx_clock *clock;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop; /* under lock */
	pthread_t thread;
};

/* Wait retry_ms or until stopped; true when stopped. */
static bool wait_or_stop(struct dbx_ready *r)
{
	uint64_t deadline = dbx_clock_now_ms(r->clock) + r->retry_ms;
	bool stop;

	pthread_mutex_lock(&r->lock);
	while (!r->stop && dbx_clock_now_ms(r->clock) < deadline)
		(void)dbx_clock_wait_until(r->clock, &r->cond, &r->lock, deadline);
	stop = r->stop;
	pthread_mutex_unlock(&r->lock);
	return stop;
}

static void send_state(struct dbx_ready *r, const char *state)
{
	if (dbx_notify_send(r->socket_path, state) != 0)
		dbx_log(DBX_LOG_WARN, "cannot notify the service manager at %s: %s", r->socket_path,
			strerror(errno));
}

static void *ready_main(void *arg)
{
	struct dbx_ready *r = arg;
	struct dbx_error err = {0};
	char state[64 + DBX_ERR_MSG_MAX];
	struct statfs sf;
	struct stat st;

	if (stat(r->mountpoint, &st) != 0 || statfs(r->mountpoint, &sf) != 0) {
		dbx_log(DBX_LOG_ERR, "not ready: %s: %s", r->mountpoint, strerror(errno));
		return NULL;
	}
	if (sf.f_type != FUSE_SUPER_MAGIC) {
		dbx_log(DBX_LOG_ERR, "not ready: %s is not the FUSE mount", r->mountpoint);
		return NULL;
	}
	while (r->check && r->check(r->ctx, &err) != DBX_OK) {
		snprintf(state, sizeof(state), "STATUS=mounted, waiting for a token: %s",
			 err.message);
		send_state(r, state);
		if (wait_or_stop(r))
			return NULL;
		dbx_error_clear(&err);
	}
	snprintf(state, sizeof(state), "READY=1\nSTATUS=mounted on %s", r->mountpoint);
	send_state(r, state);
	dbx_log(DBX_LOG_INFO, "ready: told the service manager");
	return NULL;
}

static void ready_free(struct dbx_ready *r)
{
	pthread_cond_destroy(&r->cond);
	pthread_mutex_destroy(&r->lock);
	free(r->socket_path);
	free(r->mountpoint);
	free(r);
}

struct dbx_ready *dbx_ready_start(const char *socket_path, const char *mountpoint,
				  dbx_ready_check check, void *ctx, uint64_t retry_ms,
				  const struct dbx_clock *clock)
{
	struct dbx_ready *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->socket_path = strdup(socket_path);
	r->mountpoint = strdup(mountpoint);
	r->check = check;
	r->ctx = ctx;
	r->retry_ms = retry_ms;
	r->clock = clock;
	pthread_mutex_init(&r->lock, NULL);
	if (dbx_clock_cond_init(&r->cond) != 0) {
		pthread_mutex_destroy(&r->lock);
		free(r->socket_path);
		free(r->mountpoint);
		free(r);
		return NULL;
	}
	if (!r->socket_path || !r->mountpoint || pthread_create(&r->thread, NULL, ready_main, r)) {
		ready_free(r);
		return NULL;
	}
	return r;
}

void dbx_ready_stop(struct dbx_ready *r)
{
	if (!r)
		return;
	pthread_mutex_lock(&r->lock);
	r->stop = true;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
	pthread_join(r->thread, NULL);
	ready_free(r);
}
