/*
 * ops.c: struct fuse_operations as thin adapters over fs.c and handle.c.
 *
 * Each adapter takes the mount from the FUSE context, calls one plain
 * function, maps its enum dbx_err to -errno through dbx_errno() (the one
 * mapping of docs/formats.md, "errno") and logs a failure once, at warning
 * level, with the path, errno, service code and request id (never a token).
 * What the calls do is said where they are done: fs.h (getattr, readdir,
 * rename, the writer) and handle.h (open files, editors' temporary files,
 * unlink, chmod, chown, utimens). Every open gets direct_io, so the kernel
 * never serves pages cached from an older version of a file and passes
 * every write through as the program issued it. The calls that would
 * change the tree itself (mknod, mkdir, rmdir, symlink, link) fail with
 * EROFS, one consistent answer for "not through this mount".
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <sys/statvfs.h>

#include "databoxfs/log.h"
#include "fs.h"
#include "handle.h"
#include "ops.h"

/* The one mapping of enum dbx_err to errno (docs/formats.md, "errno"). */
int dbx_errno(enum dbx_err err)
{
	switch (err) {
	case DBX_OK:
		return 0;
	case DBX_EINVAL:
		return EINVAL;
	case DBX_EACCES:
		return EACCES;
	case DBX_EAUTH:
		return EACCES;
	case DBX_ENOTFOUND:
		return ENOENT;
	case DBX_EBUSY:
		return EBUSY;
	case DBX_ETHROTTLED:
		return EAGAIN;
	case DBX_ETIMEDOUT:
		return ETIMEDOUT;
	case DBX_EUNREACHABLE:
		return EHOSTUNREACH;
	case DBX_EREMOTE:
		return EIO;
	case DBX_EINTR:
		return EINTR;
	case DBX_ENOMEM:
		return ENOMEM;
	case DBX_ECONFIG:
		return EINVAL;
	case DBX_EROFS:
		return EROFS;
	case DBX_EEXIST:
		return EEXIST;
	case DBX_ENOSPC:
		return ENOSPC;
	case DBX_EFBIG:
		return EFBIG;
	case DBX_EXDEV:
		return EXDEV;
	case DBX_EPERM:
		return EPERM;
	}
	return EIO;
}

/*
 * The mount, or NULL outside a FUSE request (unit tests call the adapters
 * directly): the plain functions then see a mount that does not write.
 */
static struct dbx_fs *get_fs(void)
{
	struct fuse_context *c = fuse_get_context();

	return c ? c->private_data : NULL;
}

/* -errno for rc, logging the failure once. A missing name is routine: debug only. */
static int fail(const char *op, const char *path, enum dbx_err rc, const struct dbx_error *err)
{
	int e = dbx_errno(rc);

	dbx_log(rc == DBX_ENOTFOUND ? DBX_LOG_DEBUG : DBX_LOG_WARN,
		"%s %s: %s (%s); code=%s request_id=%s", op, path,
		err->message[0] ? err->message : dbx_err_str(rc), strerror(e),
		err->code[0] ? err->code : "-", err->request_id[0] ? err->request_id : "-");
	return -e;
}

static struct dbx_handle *handle_of(const struct fuse_file_info *fi)
{
	return fi ? (struct dbx_handle *)(uintptr_t)fi->fh : NULL;
}

/* 0 with h in fi, reads served from it and never from the page cache; or fail(). */
static int opened(const char *op, const char *path, struct fuse_file_info *fi, struct dbx_handle *h,
		  enum dbx_err rc, const struct dbx_error *err)
{
	if (rc != DBX_OK)
		return fail(op, path, rc, err);
	fi->fh = (uint64_t)(uintptr_t)h;
	fi->direct_io = 1;
	fi->keep_cache = 0;
	return 0;
}

static void *op_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	(void)conn;
	cfg->use_ino = 1;
	cfg->nullpath_ok = 0;
	cfg->entry_timeout = 1.0;
	cfg->negative_timeout = 1.0;
	cfg->attr_timeout = 0; /* getattr is served from the cache, fresh within cache_ttl */
	cfg->kernel_cache = 0;
	cfg->auto_cache = 0;
	/*
	 * Ctrl-C on a blocked write or read reaches us: fuse_interrupted()
	 * turns true and the worker gets DBX_INTR_SIGNAL, whose handler main.c
	 * installs (libfuse 3.14 does not when intr is set here).
	 */
	cfg->intr = 1;
	cfg->intr_signal = DBX_INTR_SIGNAL;
	return get_fs();
}

static int op_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	struct dbx_error err = {0};
	enum dbx_err rc;

	(void)fi;
	rc = dbx_fs_getattr(get_fs(), path, st, &err);
	return rc == DBX_OK ? 0 : fail("getattr", path, rc, &err);
}

struct fill_ctx {
	void *buf;
	fuse_fill_dir_t filler;
};

static int fill_entry(void *ctx, const char *name, const struct stat *st)
{
	struct fill_ctx *fc = ctx;

	return fc->filler(fc->buf, name, st, 0, st ? FUSE_FILL_DIR_PLUS : 0);
}

static int op_readdir(const char *path, void *buf, fuse_fill_dir_t filler, off_t off,
		      struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	struct fill_ctx fc = {buf, filler};
	struct dbx_error err = {0};
	enum dbx_err rc;

	(void)off;
	(void)fi;
	(void)flags;
	rc = dbx_fs_readdir(get_fs(), path, fill_entry, &fc, &err);
	return rc == DBX_OK ? 0 : fail("readdir", path, rc, &err);
}

static int op_open(const char *path, struct fuse_file_info *fi)
{
	struct dbx_error err = {0};
	struct dbx_handle *h;
	enum dbx_err rc;

	rc = dbx_handle_open(get_fs(), path, fi->flags, &h, &err);
	return opened("open", path, fi, h, rc, &err);
}

static int op_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	struct fuse_context *c = fuse_get_context();
	struct dbx_error err = {0};
	struct dbx_handle *h;
	enum dbx_err rc;

	rc = dbx_handle_create(get_fs(), path, mode & ~(c ? c->umask : 0), fi->flags, &h, &err);
	return opened("create", path, fi, h, rc, &err);
}

static int op_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct dbx_error err = {0};
	size_t n = 0;
	enum dbx_err rc;

	rc = dbx_handle_read(get_fs(), handle_of(fi), buf, size > INT_MAX ? INT_MAX : size, off, &n,
			     &err);
	return rc == DBX_OK ? (int)n : fail("read", path, rc, &err);
}

static int op_write(const char *path, const char *buf, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct dbx_error err = {0};
	enum dbx_err rc;

	if (size > INT_MAX)
		size = INT_MAX;
	rc = dbx_handle_write(get_fs(), handle_of(fi), buf, size, off, &err);
	return rc == DBX_OK ? (int)size : fail("write", path, rc, &err);
}

static int op_flush(const char *path, struct fuse_file_info *fi)
{
	struct dbx_error err = {0};
	enum dbx_err rc;

	rc = dbx_handle_flush(get_fs(), handle_of(fi), &err);
	return rc == DBX_OK ? 0 : fail("flush", path, rc, &err);
}

static int op_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	struct dbx_error err = {0};
	enum dbx_err rc;

	(void)datasync;
	rc = dbx_handle_flush(get_fs(), handle_of(fi), &err);
	return rc == DBX_OK ? 0 : fail("fsync", path, rc, &err);
}

/* release(2) reports to nobody: a value applied here and refused is only logged. */
static int op_release(const char *path, struct fuse_file_info *fi)
{
	struct dbx_error err = {0};
	enum dbx_err rc;

	rc = dbx_handle_release(get_fs(), handle_of(fi), &err);
	fi->fh = 0;
	if (rc != DBX_OK)
		(void)fail("release", path ? path : "-", rc, &err);
	return 0;
}

static int op_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	struct dbx_error err = {0};
	enum dbx_err rc;

	rc = dbx_handle_truncate(get_fs(), handle_of(fi), path, size, &err);
	return rc == DBX_OK ? 0 : fail("truncate", path, rc, &err);
}

static int op_unlink(const char *path)
{
	struct dbx_error err = {0};
	enum dbx_err rc;

	rc = dbx_fs_unlink(get_fs(), path, &err);
	return rc == DBX_OK ? 0 : fail("unlink", path, rc, &err);
}

static int op_rename(const char *from, const char *to, unsigned int flags)
{
	struct dbx_error err = {0};
	enum dbx_err rc;

	rc = dbx_fs_rename(get_fs(), from, to, flags, &err);
	return rc == DBX_OK ? 0 : fail("rename", from, rc, &err);
}

static int op_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	struct dbx_error err = {0};
	enum dbx_err rc;

	(void)fi;
	rc = dbx_fs_chmod(get_fs(), path, mode, &err);
	return rc == DBX_OK ? 0 : fail("chmod", path, rc, &err);
}

static int op_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi)
{
	struct dbx_error err = {0};
	enum dbx_err rc;

	(void)fi;
	rc = dbx_fs_chown(get_fs(), path, uid, gid, &err);
	return rc == DBX_OK ? 0 : fail("chown", path, rc, &err);
}

static int op_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi)
{
	struct dbx_error err = {0};
	enum dbx_err rc;

	(void)tv;
	(void)fi;
	rc = dbx_fs_utimens(get_fs(), path, &err);
	return rc == DBX_OK ? 0 : fail("utimens", path, rc, &err);
}

/* The calls that would change the tree itself. */
static int read_only(const char *op, const char *path)
{
	struct dbx_error err = {0};

	dbx_error_set(&err, DBX_EROFS, "not supported through this mount");
	return fail(op, path, DBX_EROFS, &err);
}

static int op_mknod(const char *path, mode_t mode, dev_t dev)
{
	(void)mode;
	(void)dev;
	return read_only("mknod", path);
}

static int op_mkdir(const char *path, mode_t mode)
{
	(void)mode;
	return read_only("mkdir", path);
}

static int op_rmdir(const char *path)
{
	return read_only("rmdir", path);
}

static int op_symlink(const char *target, const char *path)
{
	(void)target;
	return read_only("symlink", path);
}

static int op_link(const char *from, const char *to)
{
	(void)from;
	return read_only("link", to);
}

static int op_statfs(const char *path, struct statvfs *sv)
{
	(void)path;
	memset(sv, 0, sizeof(*sv));
	sv->f_bsize = 4096;
	sv->f_frsize = 4096;
	sv->f_namemax = 255;
	sv->f_flag = ST_NOSUID | ST_NODEV;
	return 0;
}

static const struct fuse_operations dbx_ops = {
    .init = op_init,
    .getattr = op_getattr,
    .readdir = op_readdir,
    .open = op_open,
    .read = op_read,
    .release = op_release,
    .write = op_write,
    .flush = op_flush,
    .fsync = op_fsync,
    .truncate = op_truncate,
    .create = op_create,
    .mknod = op_mknod,
    .mkdir = op_mkdir,
    .unlink = op_unlink,
    .rmdir = op_rmdir,
    .rename = op_rename,
    .symlink = op_symlink,
    .link = op_link,
    .chmod = op_chmod,
    .chown = op_chown,
    .utimens = op_utimens,
    .statfs = op_statfs,
};

const struct fuse_operations *dbx_fuse_operations(void)
{
	return &dbx_ops;
}
