/*
 * control.h: the control directory MOUNT/.databoxfs/ (docs/formats.md,
 * "The control directory"), with no FUSE types.
 *
 *   version  databoxfs and the ARM api-version the mount uses
 *   config   the effective options, one name=value a line, never a secret
 *   stats    the counters of stats.h, Prometheus text exposition format
 *   health   ok, or the first failing condition and since when
 *   orders   one tab-separated line per listed order: path, status,
 *            encryption type, key URL, identity, first error code
 *
 * The directory is reachable by name but not listed at the root (tree.h).
 * Each dynamic file is a snapshot, taken again at most once per hold
 * (cache_ttl, at least DBX_CONTROL_HOLD_MIN_MS): its size at getattr is
 * exactly what an open then reads. fs.c turns these into struct stat and
 * open buffers; the renderers below are pure functions for unit tests.
 */
#ifndef DATABOXFS_FS_CONTROL_H
#define DATABOXFS_FS_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "databoxfs/clock.h"
#include "databoxfs/err.h"
#include "cache.h"

#define DBX_CONTROL_DIR	 "/.databoxfs"
#define DBX_CONTROL_NAME ".databoxfs"
/* Inodes: the directory, then its files 3.. (cache.c's start at 16, the catalogue's far above). */
#define DBX_INO_CONTROL 2
/* The shortest time a dynamic file's snapshot is kept, even with cache_ttl=0. */
#define DBX_CONTROL_HOLD_MIN_MS 1000

enum dbx_control_file {
	DBX_CONTROL_VERSION = 0,
	DBX_CONTROL_CONFIG,
	DBX_CONTROL_STATS,
	DBX_CONTROL_HEALTH,
	DBX_CONTROL_ORDERS,
	DBX_CONTROL_N_FILES,
};

/* The file's name ("version", ...). */
const char *dbx_control_file_name(size_t i);

/* Index of the file called name (exact), or -1. */
int dbx_control_find(const char *name);

/* The inode of file i. */
static inline uint64_t dbx_control_ino(size_t i)
{
	return DBX_INO_CONTROL + 1 + i;
}

/* One line of config: name=value. */
struct dbx_control_setting {
	const char *name;
	const char *value; /* NULL or "": an empty value */
};

struct dbx_control_config {
	struct dbx_cache *cache;       /* not owned: what orders walks */
	const struct dbx_clock *clock; /* the hold, and the snapshots' mtimes */
	uint64_t ttl_ms;	       /* cache_ttl */
	const char *api_version;
	const struct dbx_control_setting
	    *settings; /* config's lines (copied), n_settings of them */
	size_t n_settings;
};

struct dbx_control;

/* A new control directory, or NULL on ENOMEM. */
struct dbx_control *dbx_control_new(const struct dbx_control_config *cfg);
void dbx_control_free(struct dbx_control *c);

/*
 * File i as the current snapshot, taken again first when older than the
 * hold: a copy into *buf (malloc'd) and *len, and *mtime when the snapshot
 * was taken. The errors of the walk for orders (its root listing failed),
 * DBX_ENOMEM, DBX_ENOTFOUND for no such file.
 */
DBX_MUST_CHECK enum dbx_err dbx_control_read(struct dbx_control *c, size_t i, char **buf,
					     size_t *len, time_t *mtime, struct dbx_error *err);

/* ---- Pure renderers (unit tests) ---- */

/* "databoxfs VERSION\napi_version API\n". DBX_ENOMEM only. */
DBX_MUST_CHECK enum dbx_err dbx_control_version_text(const char *version, const char *api_version,
						     char **buf, size_t *len);

/*
 * The config file for these settings: "name=value\n" each, in order; a
 * control byte in a value becomes a space. DBX_ENOMEM only.
 */
DBX_MUST_CHECK enum dbx_err dbx_control_config_text(const struct dbx_control_setting *v, size_t n,
						    char **buf, size_t *len);

/*
 * Append the orders line of order sub/rg/name, as view shows it, to *buf
 * (length *len, malloc'd, may start NULL): six fields separated by tabs,
 * ending in "\n": path (sub/rg/name), status, encryption type, key URL,
 * identity (the order files' values), and its first error code: the
 * first problem the service reports on it (properties.error before failing
 * stages), else the code of the first block of its errors file. A field the order cannot show (its
 * refresh failed) is empty; a tab or control byte in a value becomes a space, so every line has
 * exactly six fields. DBX_ENOMEM only.
 */
DBX_MUST_CHECK enum dbx_err dbx_control_order_line(char **buf, size_t *len, const char *sub,
						   const char *rg, const char *name,
						   const struct dbx_order_view *view);

#endif
