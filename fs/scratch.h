/*
 * scratch.h: editors' temporary files in order directories, in memory only.
 *
 * `sed -i`, vim and emacs save by writing a new file next to the target and
 * renaming it over the target. An order directory therefore accepts files
 * whose names are not attribute names (sedXXXXXX, .key_url.swp, 4913,
 * key_url~): they live in this store, per mount, and are never sent to
 * Azure. fs.c turns rename(temp, attribute) into one write of the
 * attribute. No network and no FUSE here; the store has its own lock.
 */
#ifndef DATABOXFS_FS_SCRATCH_H
#define DATABOXFS_FS_SCRATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "databoxfs/err.h"
#include "tree.h"

#define DBX_SCRATCH_FILE_MAX (64u * 1024) /* bytes in one temporary file (DBX_EFBIG) */
#define DBX_SCRATCH_DIR_MAX  16		  /* temporary files in one order directory (DBX_ENOSPC) */

struct dbx_scratch;

/* What a temporary file looks like (getattr, readdir). */
struct dbx_scratch_stat {
	uint64_t ino;
	mode_t mode; /* permission bits only: 0600 or 0644 */
	size_t size;
	time_t mtime;
};

/* A new empty store; NULL when out of memory. */
struct dbx_scratch *dbx_scratch_new(void);

/* Free the store and every file in it. NULL is fine. */
void dbx_scratch_free(struct dbx_scratch *s);

/*
 * Whether path names a possible temporary file: a valid name (not ".",
 * "..", no longer than NAME_MAX) that is not an attribute name, directly in
 * an order directory. Fills *dir (kind ORDER) and name when true.
 */
bool dbx_scratch_name(const char *path, struct dbx_node *dir, char name[DBX_TREE_NAME_MAX]);

/*
 * Create an empty file name in dir with permission bits mode (kept to
 * 0600 or 0644), mtime now. DBX_EEXIST when it exists, DBX_ENOSPC when dir
 * holds DBX_SCRATCH_DIR_MAX files already.
 */
DBX_MUST_CHECK enum dbx_err dbx_scratch_create(struct dbx_scratch *s, const struct dbx_node *dir,
					       const char *name, mode_t mode, time_t now);

/* Fill *st for the file; DBX_ENOTFOUND when there is none. */
DBX_MUST_CHECK enum dbx_err dbx_scratch_stat(struct dbx_scratch *s, const struct dbx_node *dir,
					     const char *name, struct dbx_scratch_stat *st);

/* Copy up to size bytes at off into buf; *n is how many (0 at or past the end). */
DBX_MUST_CHECK enum dbx_err dbx_scratch_read(struct dbx_scratch *s, const struct dbx_node *dir,
					     const char *name, char *buf, size_t size, off_t off,
					     size_t *n);

/*
 * Write size bytes at off (a hole reads as zeros), mtime now. DBX_EFBIG
 * past DBX_SCRATCH_FILE_MAX (nothing is written).
 */
DBX_MUST_CHECK enum dbx_err dbx_scratch_write(struct dbx_scratch *s, const struct dbx_node *dir,
					      const char *name, const char *data, size_t size,
					      off_t off, time_t now);

/* Set the size (zeros when growing), mtime now. DBX_EFBIG past the cap. */
DBX_MUST_CHECK enum dbx_err dbx_scratch_truncate(struct dbx_scratch *s, const struct dbx_node *dir,
						 const char *name, off_t size, time_t now);

/* chmod: the permission bits, kept to 0600 or 0644. */
DBX_MUST_CHECK enum dbx_err dbx_scratch_chmod(struct dbx_scratch *s, const struct dbx_node *dir,
					      const char *name, mode_t mode);

/* A malloc'd copy of the whole content into *buf / *len (for rename onto an attribute). */
DBX_MUST_CHECK enum dbx_err dbx_scratch_take(struct dbx_scratch *s, const struct dbx_node *dir,
					     const char *name, char **buf, size_t *len);

/* Remove the file; DBX_ENOTFOUND when there is none. */
DBX_MUST_CHECK enum dbx_err dbx_scratch_unlink(struct dbx_scratch *s, const struct dbx_node *dir,
					       const char *name);

/*
 * Rename from to to in the same directory dir, replacing a file to (the
 * in-memory move of rename(2)); no_replace: DBX_EEXIST when to exists.
 * DBX_ENOTFOUND when from does not exist.
 */
DBX_MUST_CHECK enum dbx_err dbx_scratch_rename(struct dbx_scratch *s, const struct dbx_node *dir,
					       const char *from, const char *to, bool no_replace);

/* Called for each file of dir, in creation order; return non-zero to stop. */
typedef int (*dbx_scratch_each_fn)(void *ctx, const char *name, const struct dbx_scratch_stat *st);

/* List the files of dir. The callback runs under the store's lock: it must not call back in. */
void dbx_scratch_list(struct dbx_scratch *s, const struct dbx_node *dir, dbx_scratch_each_fn fn,
		      void *ctx);

#endif
