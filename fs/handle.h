/*
 * handle.h: one open file, and the calls that tell an attribute from an
 * editor's temporary file, as plain functions with no FUSE types.
 *
 * ops.c keeps the struct dbx_handle of an open in fuse_file_info.fh and
 * passes every call on to one function here; unit tests call them without
 * mounting. A handle is one of:
 *   - an attribute opened for reading: the bytes open rendered, so one
 *     reader sees one version (fs.h, dbx_fs_open);
 *   - an attribute opened for writing: a struct dbx_fs_writer (fs.h says
 *     when its value is applied); O_RDWR also holds the rendered bytes;
 *   - a temporary file (scratch.h): its name; reads and writes go to the
 *     mount's store.
 * The path calls at the bottom (unlink, chmod, chown, utimens) change a
 * temporary file and refuse everything else with DBX_EROFS: the tree and
 * the attributes' metadata cannot be changed through the mount. Errors are
 * enum dbx_err with the detail in a struct dbx_error; errno appears only
 * in ops.c.
 */
#ifndef DATABOXFS_FS_HANDLE_H
#define DATABOXFS_FS_HANDLE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "databoxfs/err.h"
#include "fs.h"

struct dbx_handle;

/*
 * open(2) of path; flags as open(2) got them (O_ACCMODE, O_TRUNC and
 * O_APPEND count). A temporary file: O_TRUNC empties it, O_APPEND makes
 * every write append. An attribute: O_RDONLY renders it (dbx_fs_open);
 * O_WRONLY, O_RDWR or O_TRUNC start a writer (dbx_fs_writer_open: DBX_EACCES
 * for a read-only file even for root, DBX_EROFS on a mount that does not
 * write), then wait for the order's turn (dbx_fs_writer_admit: DBX_ETIMEDOUT
 * when it does not come within -o timeout, nothing sent), held until
 * release; O_RDWR without O_TRUNC renders it too. On success *h is the new
 * handle (free it with dbx_handle_release), else NULL.
 */
DBX_MUST_CHECK enum dbx_err dbx_handle_open(struct dbx_fs *fs, const char *path, int flags,
					    struct dbx_handle **h, struct dbx_error *err);

/*
 * open(2) with O_CREAT, when path does not exist: an attribute is opened as
 * dbx_handle_open() does; any other name directly in an order directory
 * becomes an empty temporary file with permission bits mode (umask
 * applied by the caller) and is opened: DBX_EEXIST when it exists,
 * DBX_ENOSPC when the directory holds DBX_SCRATCH_DIR_MAX already. Anywhere
 * else, or on a mount that does not write: DBX_EROFS.
 */
DBX_MUST_CHECK enum dbx_err dbx_handle_create(struct dbx_fs *fs, const char *path, mode_t mode,
					      int flags, struct dbx_handle **h,
					      struct dbx_error *err);

/*
 * Whether reads of h may go through the kernel's page cache: an attribute
 * opened read-only on a mount whose kernel caches (fs->kview). *keep then
 * says whether the kernel may keep the pages it has from earlier opens
 * (the version is the one it holds, kview.h); when not, it must also drop
 * the attributes it holds, whose size may be another version's.
 */
bool dbx_handle_shared(const struct dbx_handle *h, bool *keep);

/* Whether h is an attribute opened for writing (a write, flush or release may apply it). */
bool dbx_handle_writing(const struct dbx_handle *h);

/*
 * read(2): copy up to size bytes at off into buf; *n is how many (0 at or
 * past the end, and for an attribute opened write-only). A shared handle
 * (dbx_handle_shared) fills the kernel's pages, which every open shares,
 * so it copies the version the kernel holds the size of (kview.h), which
 * is the one it opened unless the file changed since (a reader holding
 * it open across a change then reads the new value, whole). DBX_ENOTFOUND
 * when the temporary file was removed; DBX_EINVAL for off < 0.
 */
DBX_MUST_CHECK enum dbx_err dbx_handle_read(struct dbx_fs *fs, struct dbx_handle *h, char *buf,
					    size_t size, off_t off, size_t *n,
					    struct dbx_error *err);

/*
 * write(2) of size bytes at off: all of them, or an error. A temporary
 * file: into the store (DBX_EFBIG past DBX_SCRATCH_FILE_MAX, nothing
 * written). An attribute opened for writing: to its writer
 * (dbx_fs_writer_write: the value may be applied in this call; DBX_EFBIG
 * past DBX_FS_WRITE_MAX). h NULL, or opened for reading: DBX_EINVAL.
 */
DBX_MUST_CHECK enum dbx_err dbx_handle_write(struct dbx_fs *fs, struct dbx_handle *h,
					     const char *data, size_t size, off_t off,
					     struct dbx_error *err);

/*
 * flush (every close(2)) and fsync(2): apply what the writer holds
 * (dbx_fs_writer_flush) and return that result; DBX_OK for any other
 * handle, and for NULL.
 */
DBX_MUST_CHECK enum dbx_err dbx_handle_flush(struct dbx_fs *fs, struct dbx_handle *h,
					     struct dbx_error *err);

/*
 * truncate(2) when h is NULL (by path), ftruncate(2) and O_TRUNC otherwise.
 * A temporary file: set its size (zeros when growing; DBX_EFBIG past the
 * cap). An attribute open for writing: the writer's truncate (size 0 forgets
 * what is buffered). Any other attribute: dbx_fs_truncate (size 0 accepted
 * and does nothing, DBX_EACCES for a read-only file).
 */
DBX_MUST_CHECK enum dbx_err dbx_handle_truncate(struct dbx_fs *fs, struct dbx_handle *h,
						const char *path, off_t size,
						struct dbx_error *err);

/*
 * release: free h (NULL is fine). A value still pending is applied first
 * (flush normally applied it already); the result is returned, and since
 * release(2) reports to nobody, the caller can only log it. A writer's
 * turn then passes to the next writer waiting for the order.
 */
DBX_MUST_CHECK enum dbx_err dbx_handle_release(struct dbx_fs *fs, struct dbx_handle *h,
					       struct dbx_error *err);

/* unlink(2): remove a temporary file; anything else is DBX_EROFS. */
DBX_MUST_CHECK enum dbx_err dbx_fs_unlink(struct dbx_fs *fs, const char *path,
					  struct dbx_error *err);

/* chmod(2) of a temporary file: 0600 or 0644 (group or other may read). Else DBX_EROFS. */
DBX_MUST_CHECK enum dbx_err dbx_fs_chmod(struct dbx_fs *fs, const char *path, mode_t mode,
					 struct dbx_error *err);

/*
 * chown(2) of a temporary file: it belongs to the mounting user, so a
 * chown to that user and group ((uid_t)-1 and (gid_t)-1: unchanged) does
 * nothing and any other is DBX_EPERM. Anything else is DBX_EROFS.
 */
DBX_MUST_CHECK enum dbx_err dbx_fs_chown(struct dbx_fs *fs, const char *path, uid_t uid, gid_t gid,
					 struct dbx_error *err);

/*
 * utimens(2) (touch): a temporary file keeps the time of its last change,
 * and setting its times is accepted and does nothing. Anything else is
 * DBX_EROFS.
 */
DBX_MUST_CHECK enum dbx_err dbx_fs_utimens(struct dbx_fs *fs, const char *path,
					   struct dbx_error *err);

#endif
