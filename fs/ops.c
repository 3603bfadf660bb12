/*
 * ops.c: struct fuse_operations as thin adapters over fs.c.
 *
 * Each adapter calls one plain function, maps enum dbx_err to -errno through
 * dbx_errno() (the one mapping of docs/formats.md, "Writes"), and logs a failure once, at
 * warning level, with the path, errno, service code and request id (never
 * a token). Reads: open renders the file once into the file handle, so one
 * reader sees one version, and sets direct_io so the kernel never serves
 * pages cached from an older version (and passes every write through as
 * the program issued it). Writes: an open for writing carries a struct
 * dbx_fs_writer; write, flush, fsync and ftruncate go to it (fs.c says when
 * a value is applied). Opening a read-only file for writing, or truncating
 * it, is EACCES even for root. Editors' temporary files (any name that is
 * not an attribute, in an order directory; scratch.h) can be created,
 * written, read, truncated, chmod'ed, renamed and unlinked, in memory;
 * rename of one onto an attribute writes the attribute (dbx_fs_rename).
 * Every other call that would change the tree or metadata (mknod, mkdir,
 * rmdir, symlink, link, unlink of an attribute, chmod, chown, utimens)
 * fails with EROFS, one consistent answer for "not through this mount".
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/statvfs.h>
#include <time.h>

#include "databoxfs/log.h"
#include "fs.h"
#include "ops.h"

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0) /* linux/fs.h */
#endif

/* What open() rendered: every read of this open serves these bytes; and the write side. */
struct handle {
	char *buf;
	size_t len;
	bool writing; /* opened for writing: w is live */
	struct dbx_fs_writer w;
	bool temp;   /* a temporary file: reads and writes go to the scratch store */
	bool append; /* temp opened O_APPEND */
	struct dbx_node dir;
	char name[DBX_TREE_NAME_MAX];
};

/* The one mapping of enum dbx_err to errno (docs/formats.md, "Writes"). */
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

static struct dbx_fs *get_fs(void)
{
	return fuse_get_context()->private_data;
}

/* The mount, or NULL outside a FUSE request (unit tests call adapters directly). */
static struct dbx_fs *ctx_fs(void)
{
	struct fuse_context *c = fuse_get_context();

	return c ? c->private_data : NULL;
}

/* The mount's temporary files, or NULL when it has none (read-only mount). */
static struct dbx_scratch *ctx_scratch(void)
{
	struct dbx_fs *fs = ctx_fs();

	return fs ? dbx_fs_scratch(fs) : NULL;
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

/* fail() for a call that reports only an enum dbx_err: what says what failed. */
static int fail_what(const char *op, const char *path, enum dbx_err rc, const char *what)
{
	struct dbx_error err = {0};

	dbx_error_set(&err, rc, "%s", what);
	return fail(op, path, rc, &err);
}

/* Whether path is an existing temporary file; fills dir and name. */
static bool temp_file(const char *path, struct dbx_node *dir, char name[DBX_TREE_NAME_MAX])
{
	struct dbx_scratch *s = ctx_scratch();
	struct dbx_scratch_stat st;

	return s && dbx_scratch_name(path, dir, name) &&
	       dbx_scratch_stat(s, dir, name, &st) == DBX_OK;
}

/* A handle on the temporary file dir/name. */
static int open_temp(const struct dbx_node *dir, const char *name, struct fuse_file_info *fi)
{
	struct handle *h = calloc(1, sizeof(*h));

	if (!h)
		return -ENOMEM;
	h->temp = true;
	h->append = (fi->flags & O_APPEND) != 0;
	h->dir = *dir;
	snprintf(h->name, sizeof(h->name), "%s", name);
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
	struct handle *h;
	bool for_write = (fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC);
	struct dbx_node dir;
	char name[DBX_TREE_NAME_MAX];
	enum dbx_err rc;

	if (temp_file(path, &dir, name)) {
		if (fi->flags & O_TRUNC) {
			rc = dbx_scratch_truncate(dbx_fs_scratch(get_fs()), &dir, name, 0,
						  dbx_fs_now(get_fs()));
			if (rc != DBX_OK)
				return fail_what("open", path, rc, "cannot truncate");
		}
		return open_temp(&dir, name, fi);
	}
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	if (for_write) {
		rc = dbx_fs_writer_open(get_fs(), path, (fi->flags & O_APPEND) != 0, &h->w, &err);
		h->writing = rc == DBX_OK;
		/* O_RDWR reads what the file shows at open, like any reader. */
		if (rc == DBX_OK && (fi->flags & O_ACCMODE) == O_RDWR && !(fi->flags & O_TRUNC))
			rc = dbx_fs_open(get_fs(), path, &h->buf, &h->len, &err);
	} else {
		rc = dbx_fs_open(get_fs(), path, &h->buf, &h->len, &err);
	}
	if (rc != DBX_OK) {
		dbx_fs_writer_close(&h->w);
		free(h->buf);
		free(h);
		return fail("open", path, rc, &err);
	}
	fi->fh = (uint64_t)(uintptr_t)h;
	fi->direct_io = 1;
	fi->keep_cache = 0;
	return 0;
}

static int op_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	size_t n = 0;
	enum dbx_err rc;

	if (off < 0)
		return -EINVAL;
	if (h->temp) {
		if (size > INT_MAX)
			size = INT_MAX;
		rc = dbx_scratch_read(dbx_fs_scratch(get_fs()), &h->dir, h->name, buf, size, off,
				      &n);
		return rc == DBX_OK ? (int)n : fail_what("read", path, rc, "temporary file gone");
	}
	if ((size_t)off >= h->len)
		return 0;
	if (size > h->len - (size_t)off)
		size = h->len - (size_t)off;
	memcpy(buf, h->buf + off, size);
	return (int)size;
}

/* Apply what the open still holds (flush and fsync), as -errno. */
static int apply_pending(const char *op, const char *path, struct fuse_file_info *fi)
{
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	struct dbx_error err = {0};
	enum dbx_err rc;

	if (!h || !h->writing || h->temp)
		return 0;
	rc = dbx_fs_writer_flush(get_fs(), &h->w, &err);
	return rc == DBX_OK ? 0 : fail(op, path, rc, &err);
}

static int op_flush(const char *path, struct fuse_file_info *fi)
{
	return apply_pending("flush", path, fi);
}

static int op_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	(void)datasync;
	return apply_pending("fsync", path, fi);
}

static int op_release(const char *path, struct fuse_file_info *fi)
{
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;

	if (h) {
		/* Normally flush applied it already; release cannot report, so log. */
		if (h->writing && dbx_fs_writer_pending(&h->w))
			(void)apply_pending("release", path ? path : "-", fi);
		dbx_fs_writer_close(&h->w);
		free(h->buf);
		free(h);
	}
	fi->fh = 0;
	return 0;
}

static int op_write(const char *path, const char *buf, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	struct dbx_error err = {0};
	struct dbx_scratch_stat st;
	enum dbx_err rc;

	if (h && h->temp) {
		struct dbx_scratch *s = dbx_fs_scratch(get_fs());

		if (size > INT_MAX)
			size = INT_MAX;
		if (h->append && dbx_scratch_stat(s, &h->dir, h->name, &st) == DBX_OK)
			off = (off_t)st.size;
		rc = dbx_scratch_write(s, &h->dir, h->name, buf, size, off, dbx_fs_now(get_fs()));
		return rc == DBX_OK ? (int)size : fail_what("write", path, rc, "temporary file");
	}
	if (!h || !h->writing) {
		dbx_error_set(&err, DBX_EINVAL, "not open for writing");
		return fail("write", path, DBX_EINVAL, &err);
	}
	if (size > INT_MAX)
		size = INT_MAX;
	rc = dbx_fs_writer_write(get_fs(), &h->w, buf, size, off, &err);
	return rc == DBX_OK ? (int)size : fail("write", path, rc, &err);
}

static int read_only(const char *op, const char *path)
{
	struct dbx_error err = {0};

	dbx_error_set(&err, DBX_EROFS, "not supported through this mount");
	return fail(op, path, DBX_EROFS, &err);
}

static int op_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	struct handle *h = fi ? (struct handle *)(uintptr_t)fi->fh : NULL;
	struct dbx_error err = {0};
	struct dbx_node dir;
	char name[DBX_TREE_NAME_MAX];
	enum dbx_err rc;

	if ((h && h->temp) || (!h && temp_file(path, &dir, name))) {
		rc = dbx_scratch_truncate(dbx_fs_scratch(get_fs()), h ? &h->dir : &dir,
					  h ? h->name : name, size, dbx_fs_now(get_fs()));
		return rc == DBX_OK ? 0 : fail_what("truncate", path, rc, "temporary file");
	}
	if (h && h->writing)
		rc = dbx_fs_writer_truncate(&h->w, size, &err);
	else
		rc = dbx_fs_truncate(get_fs(), path, size, &err);
	return rc == DBX_OK ? 0 : fail("truncate", path, rc, &err);
}

static int op_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	struct dbx_scratch *s = ctx_scratch();
	struct dbx_node node;
	char name[DBX_TREE_NAME_MAX];
	enum dbx_err rc;

	/* O_CREAT of an attribute is opening it. */
	if (dbx_tree_resolve(path, &node) == DBX_OK && node.kind == DBX_NODE_ORDER_FILE)
		return op_open(path, fi);
	if (!s || !dbx_scratch_name(path, &node, name))
		return read_only("create", path);
	rc = dbx_scratch_create(s, &node, name, mode & ~fuse_get_context()->umask,
				dbx_fs_now(get_fs()));
	if (rc != DBX_OK)
		return fail_what("create", path, rc, "cannot create a temporary file");
	return open_temp(&node, name, fi);
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

static int op_unlink(const char *path)
{
	struct dbx_node dir;
	char name[DBX_TREE_NAME_MAX];
	enum dbx_err rc;

	if (!temp_file(path, &dir, name))
		return read_only("unlink", path);
	rc = dbx_scratch_unlink(dbx_fs_scratch(get_fs()), &dir, name);
	return rc == DBX_OK ? 0 : fail_what("unlink", path, rc, "no such file");
}

static int op_rmdir(const char *path)
{
	return read_only("rmdir", path);
}

static int op_rename(const char *from, const char *to, unsigned int flags)
{
	struct dbx_error err = {0};
	enum dbx_err rc;

	if (!ctx_scratch())
		return read_only("rename", from);
	if (flags & ~(unsigned int)RENAME_NOREPLACE)
		return -EINVAL; /* RENAME_EXCHANGE, RENAME_WHITEOUT */
	rc = dbx_fs_rename(get_fs(), from, to, (flags & RENAME_NOREPLACE) != 0, &err);
	return rc == DBX_OK ? 0 : fail("rename", from, rc, &err);
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

static int op_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	struct dbx_node dir;
	char name[DBX_TREE_NAME_MAX];
	enum dbx_err rc;

	(void)fi;
	if (!temp_file(path, &dir, name))
		return read_only("chmod", path);
	rc = dbx_scratch_chmod(dbx_fs_scratch(get_fs()), &dir, name, mode);
	return rc == DBX_OK ? 0 : fail_what("chmod", path, rc, "no such file");
}

/* A temporary file belongs to the mounting user: chown to that user is a no-op, else EPERM. */
static int op_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi)
{
	struct dbx_fs *fs = ctx_fs();
	struct dbx_node dir;
	char name[DBX_TREE_NAME_MAX];

	(void)fi;
	if (!temp_file(path, &dir, name))
		return read_only("chown", path);
	if ((uid != (uid_t)-1 && uid != fs->uid) || (gid != (gid_t)-1 && gid != fs->gid))
		return fail_what("chown", path, DBX_EPERM,
				 "a temporary file belongs to the mounting user");
	return 0;
}

/* Temporary files keep the time of their last change; setting times is accepted. */
static int op_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi)
{
	struct dbx_node dir;
	char name[DBX_TREE_NAME_MAX];

	(void)tv;
	(void)fi;
	if (!temp_file(path, &dir, name))
		return read_only("utimens", path);
	return 0;
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
