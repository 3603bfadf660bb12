/*
 * fs.h: the filesystem operations as plain functions, with no FUSE types.
 *
 * ops.c adapts these to struct fuse_operations; unit tests call them
 * directly over a cache on a fake transport. Each works on a path as FUSE
 * passes it, resolves it with tree.c, asks cache.c for the state and
 * renders files with attrs.c. Errors are enum dbx_err with the detail in a
 * struct dbx_error; errno appears only in ops.c.
 */
#ifndef DATABOXFS_FS_FS_H
#define DATABOXFS_FS_FS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "databoxfs/err.h"
#include "cache.h"

struct dbx_fs {
	struct dbx_cache *cache; /* not owned */
	uid_t uid;		 /* owner of every node: the mounting user */
	gid_t gid;
	uint64_t timeout_ms;  /* -o timeout: bound on one operation (writes use it) */
	uint64_t lro_poll_ms; /* -o lro_poll: long-running operation poll interval (writes) */
};

/* Fill *st for path: dirs 0555, files per the attribute table, st_size exact. */
DBX_MUST_CHECK enum dbx_err dbx_fs_getattr(struct dbx_fs *fs, const char *path, struct stat *st,
					   struct dbx_error *err);

/*
 * Called once per directory entry; st is NULL when the entry's attributes
 * are not known (a file whose order could not be read). Return non-zero to
 * stop (the buffer is full).
 */
typedef int (*dbx_fs_fill_fn)(void *ctx, const char *name, const struct stat *st);

/* List directory path, "." and ".." first. */
DBX_MUST_CHECK enum dbx_err dbx_fs_readdir(struct dbx_fs *fs, const char *path, dbx_fs_fill_fn fill,
					   void *ctx, struct dbx_error *err);

/*
 * Open file path. for_write (O_WRONLY, O_RDWR or O_TRUNC): DBX_EROFS for now.
 * For reading: refresh when older than the TTL and render the file once
 * into *buf (malloc'd) / *len: what every read through this open returns.
 */
DBX_MUST_CHECK enum dbx_err dbx_fs_open(struct dbx_fs *fs, const char *path, bool for_write,
					char **buf, size_t *len, struct dbx_error *err);

/*
 * One write(2) carrying the whole value of file path (sysfs). Goes to the
 * row's store(); read-only rows and, for now, every row: DBX_EROFS.
 */
DBX_MUST_CHECK enum dbx_err dbx_fs_write(struct dbx_fs *fs, const char *path, const char *value,
					 size_t len, struct dbx_error *err);

#endif
