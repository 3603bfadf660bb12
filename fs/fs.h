/*
 * fs.h: the filesystem operations as plain functions, with no FUSE types.
 *
 * ops.c adapts these to struct fuse_operations (open files and editors'
 * temporary files through handle.h); unit tests call them directly over a
 * cache on a fake transport. Each works on a path as FUSE
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
#include "databoxfs/update.h"
#include "admit.h"
#include "cache.h"
#include "catalogue.h"
#include "control.h"
#include "kview.h"
#include "scratch.h"
#include "tree.h"

struct dbx_fs_kernel;

struct dbx_fs {
	struct dbx_cache *cache; /* not owned */
	uid_t uid;		 /* owner of every node: the mounting user */
	gid_t gid;
	/*
	 * How writes reach ARM (not owned), with -o timeout and -o lro_poll.
	 * NULL: the mount is read-only, writes fail DBX_EROFS.
	 */
	const struct dbx_update_config *update;
	/*
	 * Editors' temporary files in order directories (scratch.h): NULL
	 * until the first one, then owned. See dbx_fs_scratch().
	 */
	struct dbx_scratch *scratch;
	/*
	 * Writers' turns per order (admit.h): NULL until the first writer
	 * asks for one, then owned (dbx_admit_free).
	 */
	struct dbx_admit *admit;
	/*
	 * What the kernel holds of each file (kview.h), owned; NULL: the
	 * kernel caches nothing (every open is direct I/O), as in unit tests.
	 */
	struct dbx_kview *kview;
	/*
	 * Called when a getattr or readdir finds a file whose version moved
	 * past the one the kernel holds (path as FUSE spells it), so that the
	 * kernel's pages of it are dropped; NULL: nobody to tell. Must not block.
	 */
	void (*kernel_stale)(void *ctx, const char *path);
	void *kernel_ctx;
	/* ops.c's kernel-side state (the notifier, libfuse's handle); NULL until init. */
	struct dbx_fs_kernel *kernel;
	/* How long the kernel may keep attributes and names, in ms (docs/architecture.md). */
	uint64_t kernel_ttl_ms;
	/* -o cached_ro: opens never reach the mount (docs/architecture.md, "Kernel caches"). */
	bool cached_ro;
	/* -o ro or -o cached_ro: the kernel refuses writes, so no file shows a write bit. */
	bool read_only;
	/* keyvaults/, identities/, by-name/ (catalogue.h), not owned; NULL: they do not exist. */
	struct dbx_catalogue *catalogue;
	/* MOUNT/.databoxfs/ (control.h), not owned; NULL: the mount has none (unit tests). */
	struct dbx_control *control;
};

/* The largest value one open may write (DBX_EFBIG past it). */
#define DBX_FS_WRITE_MAX (64u * 1024)

/*
 * Fill *st for path: dirs 0555 (order directories 0755 on a mount that
 * writes: editors create their temporary files there), files per the
 * attribute table, st_size exact; a temporary file as scratch.h keeps it.
 */
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
 * Open file path for reading: refresh when older than the TTL and render
 * the file once into *buf (malloc'd) / *len: what every read through this
 * open returns. Opens for writing go through struct dbx_fs_writer.
 */
DBX_MUST_CHECK enum dbx_err dbx_fs_open(struct dbx_fs *fs, const char *path, char **buf,
					size_t *len, struct dbx_error *err);

/* dbx_fs_open(), and *ino is the file's inode number. */
DBX_MUST_CHECK enum dbx_err dbx_fs_open_file(struct dbx_fs *fs, const char *path, char **buf,
					     size_t *len, uint64_t *ino, struct dbx_error *err);

/*
 * read(2) of file path without an open (-o cached_ro: the kernel opens
 * nothing): up to size bytes at off of the version the kernel was last
 * told the size of (kview.h), so the pages it fills match that size; when
 * it was told of none, the file is rendered as an open would. *n is how
 * many bytes. The errors of dbx_fs_open().
 */
DBX_MUST_CHECK enum dbx_err dbx_fs_read_file(struct dbx_fs *fs, const char *path, char *out,
					     size_t size, off_t off, size_t *n,
					     struct dbx_error *err);

/*
 * After a change to order sub/rg/name (cache.h's on_change): for each of
 * its files the kernel holds (kview.h), render the cached state without
 * asking ARM and call stale(ctx, path) when it is no longer the version
 * the kernel holds (or cannot be shown); the record becomes the new
 * version. The order's directory is named too when the order is gone.
 */
void dbx_fs_kernel_check(struct dbx_fs *fs, const char *sub, const char *rg, const char *name,
			 void (*stale)(void *ctx, const char *path), void *ctx);

/*
 * readlink(2): the target of a by-name/ link (catalogue.h) into buf
 * (size bytes, NUL-terminated, cut when longer). DBX_EINVAL for anything
 * that is not a link.
 */
DBX_MUST_CHECK enum dbx_err dbx_fs_readlink(struct dbx_fs *fs, const char *path, char *buf,
					    size_t size, struct dbx_error *err);

/*
 * Apply the whole value of file path now, as one write (sysfs store): the
 * row's store() parses and validates it, then, under the order's write
 * lock, dbx_update_apply() sends it unless it is the current value. On
 * success the cache holds the order as ARM returned it and the order's
 * last-write error is cleared; on failure the cached order is untouched and
 * the error is kept as the order's last-write error (errors file). An
 * ETIMEDOUT after the PATCH was sent ("may still land") is cleared by the
 * first later read of the order that shows the change.
 * DBX_EACCES for a read-only file.
 */
DBX_MUST_CHECK enum dbx_err dbx_fs_write(struct dbx_fs *fs, const char *path, const char *value,
					 size_t len, struct dbx_error *err);

/*
 * truncate(2) without an open file: size 0 is accepted and does nothing
 * (what `echo v > f` does before it writes); any other size is DBX_EINVAL.
 * DBX_EACCES for a read-only file.
 */
DBX_MUST_CHECK enum dbx_err dbx_fs_truncate(struct dbx_fs *fs, const char *path, off_t size,
					    struct dbx_error *err);

/*
 * The write side of one open file: the bytes written so far, applied once.
 * See the comment block at the top of the writer code in fs.c for the rule.
 */
struct dbx_fs_writer {
	struct dbx_node node;
	bool append; /* opened O_APPEND: offsets are ignored, bytes are appended */
	char *buf;   /* the value so far (malloc'd), len bytes */
	size_t len;
	bool applied; /* the value was applied (or refused): later writes are DBX_EINVAL */
	bool
	    refused; /* a write after some bytes was refused: nothing is applied until truncate 0 */
	struct dbx_admit_turn *turn; /* the order's turn, from dbx_fs_writer_admit(), or NULL */
};

/*
 * Start writing file path through a new open: DBX_EACCES for a read-only
 * file (even for root), DBX_EROFS when the mount has no write config.
 */
DBX_MUST_CHECK enum dbx_err dbx_fs_writer_open(struct dbx_fs *fs, const char *path, bool append,
					       struct dbx_fs_writer *w, struct dbx_error *err);

/*
 * write(2) of size bytes at offset off. Buffers them; applies the value
 * inside this call when it is complete (see fs.c) and returns that result.
 */
DBX_MUST_CHECK enum dbx_err dbx_fs_writer_write(struct dbx_fs *fs, struct dbx_fs_writer *w,
						const char *data, size_t size, off_t off,
						struct dbx_error *err);

/*
 * flush (every close(2)) and fsync: apply what is buffered and not yet
 * applied, and return that result; DBX_OK when nothing is pending. Safe to
 * call from several threads on one writer (dup'd descriptors): one call
 * applies the value and reports its result, the others return DBX_OK.
 */
DBX_MUST_CHECK enum dbx_err dbx_fs_writer_flush(struct dbx_fs *fs, struct dbx_fs_writer *w,
						struct dbx_error *err);

/* ftruncate(2): size 0 forgets what is buffered and not applied; other sizes DBX_EINVAL. */
DBX_MUST_CHECK enum dbx_err dbx_fs_writer_truncate(struct dbx_fs_writer *w, off_t size,
						   struct dbx_error *err);

/* Whether a value is buffered and not applied yet. */
bool dbx_fs_writer_pending(const struct dbx_fs_writer *w);

/*
 * Wait for the turn of w's order (admit.h): what an open for writing does
 * before it returns, bounded by -o timeout and Ctrl-C. On failure
 * (DBX_ETIMEDOUT: the order stayed busy with other writes; DBX_EINTR;
 * DBX_ENOMEM) nothing was sent, and the error is also kept as the order's
 * last-write error (errors file), as a write that could not start.
 */
DBX_MUST_CHECK enum dbx_err dbx_fs_writer_admit(struct dbx_fs *fs, struct dbx_fs_writer *w,
						struct dbx_error *err);

/* Give up the order's turn, if w holds it (release), to the next writer waiting. */
void dbx_fs_writer_leave(struct dbx_fs *fs, struct dbx_fs_writer *w);

/* Free the buffer (release). Does not apply anything, nor give up the turn. */
void dbx_fs_writer_close(struct dbx_fs_writer *w);

/* UTC now on the mount's clock (the cache's): what temporary files' mtimes are set to. */
time_t dbx_fs_now(const struct dbx_fs *fs);

/*
 * The mount's store of temporary files, created on first use; NULL on a
 * mount that does not write (temporary files are then EROFS, like every
 * change), when out of memory, or when fs is NULL (no mount: ops.c's
 * adapters called outside a FUSE request, as unit tests do).
 */
struct dbx_scratch *dbx_fs_scratch(struct dbx_fs *fs);

/*
 * rename(2) within the mount:
 *   - temporary file -> rw attribute of the same order: the whole content
 *     is applied as one write of the attribute (dbx_fs_write), and the
 *     temporary file is removed only on success; on failure it stays and
 *     the error is the write's (the order's last-write error too);
 *   - temporary file -> read-only attribute: DBX_EACCES;
 *   - temporary file -> temporary name of the same order: in-memory move;
 *   - to another directory: DBX_EXDEV;
 *   - an attribute file as the source: DBX_EPERM (vim then writes in place);
 *   - directories, or a mount that does not write: DBX_EROFS.
 * flags are rename(2)'s as FUSE passes them: RENAME_NOREPLACE makes an
 * existing to DBX_EEXIST; any other flag (RENAME_EXCHANGE, ...) is
 * DBX_EINVAL.
 */
DBX_MUST_CHECK enum dbx_err dbx_fs_rename(struct dbx_fs *fs, const char *from, const char *to,
					  unsigned int flags, struct dbx_error *err);

#endif
