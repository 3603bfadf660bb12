/*
 * ops.c: struct fuse_operations as thin adapters over fs.c and handle.c.
 *
 * Each adapter takes the mount from the FUSE context, calls one plain
 * function, maps its enum dbx_err to -errno through dbx_errno() (the one
 * mapping of docs/formats.md, "errno") and logs a failure once, at warning
 * level, with the path, errno, service code and request id (never a token).
 * What the calls do is said where they are done: fs.h (getattr, readdir,
 * rename, the writer) and handle.h (open files, editors' temporary files,
 * unlink, chmod, chown, utimens). Opens for writing, and temporary
 * files, get direct_io: the kernel passes every write through as the
 * program issued it. A read-only open of an attribute goes through the
 * kernel's page cache, which it may keep from the last open when the
 * version is the one the kernel holds (kview.h); otherwise the kernel drops
 * the pages and the attributes it holds of that file before the open
 * returns, so st_size and the pages are always one version
 * (docs/architecture.md, "Kernel caches"). When the mount learns of a
 * change (cache.h's on_change, or a getattr that finds a new version), a
 * notifier thread tells the kernel to drop what it holds of each changed
 * file (fuse_invalidate_path): from its own thread, because the kernel may
 * be holding a page lock of that file while it waits for the request that
 * found the change. A call that applied a write waits for the notifier, so
 * a stat after the write returns already sees the new sizes. With -o
 * cached_ro and a kernel that supports it, open answers ENOSYS, which
 * turns opens off for the whole connection; reads then come without a
 * handle. The calls that would
 * change the tree itself (mknod, mkdir, rmdir, symlink, link) fail with
 * EROFS, one consistent answer for "not through this mount".
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
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

/* ---- The notifier: telling the kernel to drop what it holds of changed files ---- */

/* One thing to look at: an order to check (name set), or a path to drop. */
struct note {
	struct note *next;  /* in the queue */
	struct note *hnext; /* in its bucket of the queued set */
	uint64_t hash;
	char *a, *b, *c; /* subscription, resource group, order; or a path in a */
};

/*
 * The notes queued, by content: a note already waiting is not queued
 * twice, so the queue holds at most one note per order and per path, however
 * fast refreshes come (under load a refresh per read).
 */
#define NOTE_BUCKETS 4096

struct dbx_fs_kernel {
	struct fuse *fuse;
	bool no_open; /* -o cached_ro on a kernel that takes ENOSYS from open */
	pthread_mutex_t lock;
	pthread_cond_t cond; /* notes queued, stop, or one done */
	struct note *head, **tail;
	uint64_t queued, done; /* notes ever queued, and taken care of */
	struct note *set[NOTE_BUCKETS];
	bool stop;
	bool started;
	pthread_t thread;
};

static void note_free(struct note *n)
{
	free(n->a);
	free(n->b);
	free(n->c);
	free(n);
}

/* FNV-1a of s and its NUL, onto h. */
static uint64_t hash_str(uint64_t h, const char *s)
{
	for (;; s++) {
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
		if (!*s)
			return h;
	}
}

static uint64_t note_hash(const char *a, const char *b, const char *c)
{
	uint64_t h = hash_str(14695981039346656037ull, a);

	return hash_str(hash_str(h, b ? b : ""), c ? c : "");
}

static bool str_eq(const char *x, const char *y)
{
	return (!x && !y) || (x && y && strcmp(x, y) == 0);
}

/* The queued note with this content, or NULL. k->lock held. */
static struct note *queued_note(struct dbx_fs_kernel *k, uint64_t h, const char *a, const char *b,
				const char *c)
{
	for (struct note *n = k->set[h % NOTE_BUCKETS]; n; n = n->hnext) {
		if (n->hash == h && str_eq(n->a, a) && str_eq(n->b, b) && str_eq(n->c, c))
			return n;
	}
	return NULL;
}

/* Take n out of the queued set (it leaves the queue). k->lock held. */
static void unset_note(struct dbx_fs_kernel *k, struct note *n)
{
	struct note **p = &k->set[n->hash % NOTE_BUCKETS];

	while (*p && *p != n)
		p = &(*p)->hnext;
	if (*p)
		*p = n->hnext;
}

/*
 * Queue a note (three strings, b and c NULL for a path), unless the same
 * one is waiting already. Out of memory: dropped, logged.
 */
static void enqueue(struct dbx_fs *fs, const char *a, const char *b, const char *c)
{
	struct dbx_fs_kernel *k = fs ? fs->kernel : NULL;
	uint64_t h = note_hash(a, b, c);
	struct note *n;
	bool waiting;

	if (!k)
		return;
	pthread_mutex_lock(&k->lock);
	waiting = queued_note(k, h, a, b, c) != NULL;
	pthread_mutex_unlock(&k->lock);
	if (waiting)
		return;
	n = calloc(1, sizeof(*n));
	if (n) {
		n->a = strdup(a);
		n->b = b ? strdup(b) : NULL;
		n->c = c ? strdup(c) : NULL;
	}
	if (!n || !n->a || (b && !n->b) || (c && !n->c)) {
		if (n)
			note_free(n);
		dbx_log(DBX_LOG_WARN, "out of memory: the kernel may show %s for up to its timeout",
			a);
		return;
	}
	n->hash = h;
	pthread_mutex_lock(&k->lock);
	if (queued_note(k, h, a, b, c)) {
		/* Queued by another thread meanwhile. */
		pthread_mutex_unlock(&k->lock);
		note_free(n);
		return;
	}
	n->hnext = k->set[h % NOTE_BUCKETS];
	k->set[h % NOTE_BUCKETS] = n;
	*k->tail = n;
	k->tail = &n->next;
	k->queued++;
	pthread_cond_broadcast(&k->cond);
	pthread_mutex_unlock(&k->lock);
}

/* Drop what the kernel holds of path (attributes and pages): the notifier thread only. */
static void drop_now(void *ctx, const char *path)
{
	struct dbx_fs_kernel *k = ctx;
	int rc = fuse_invalidate_path(k->fuse, path);

	/* -ENOENT: the kernel holds nothing of path. */
	if (rc != 0 && rc != -ENOENT)
		dbx_log(DBX_LOG_DEBUG, "invalidate %s: %s", path, strerror(-rc));
}

static void *notifier(void *arg)
{
	struct dbx_fs *fs = arg;
	struct dbx_fs_kernel *k = fs->kernel;
	struct note *n;

	pthread_mutex_lock(&k->lock);
	for (;;) {
		while (!k->head && !k->stop)
			pthread_cond_wait(&k->cond, &k->lock);
		if (!k->head)
			break;
		n = k->head;
		k->head = n->next;
		if (!k->head)
			k->tail = &k->head;
		/* From here a new change to the same order queues a new note. */
		unset_note(k, n);
		pthread_mutex_unlock(&k->lock);
		if (n->c)
			dbx_fs_kernel_check(fs, n->a, n->b, n->c, drop_now, k);
		else
			drop_now(k, n->a);
		note_free(n);
		pthread_mutex_lock(&k->lock);
		k->done++;
		pthread_cond_broadcast(&k->cond);
	}
	pthread_mutex_unlock(&k->lock);
	return NULL;
}

/* cache.h's on_change: look at the order's files from the notifier thread. */
void dbx_ops_cache_changed(void *ctx, const char *sub, const char *rg, const char *name)
{
	enqueue(ctx, sub, rg, name);
}

/* fs.h's kernel_stale: a getattr or readdir found a new version of path. */
static void kernel_stale(void *ctx, const char *path)
{
	enqueue(ctx, path, NULL, NULL);
}

/*
 * Wait until the notifier took care of everything queued so far: what a
 * call that applied a write does before it returns. Safe in a write, flush
 * or rename: the kernel holds no page lock of a direct_io file there.
 */
static void settle(struct dbx_fs *fs)
{
	struct dbx_fs_kernel *k = fs ? fs->kernel : NULL;
	uint64_t target;

	if (!k || !k->started)
		return;
	pthread_mutex_lock(&k->lock);
	target = k->queued;
	while (k->done < target && !k->stop)
		pthread_cond_wait(&k->cond, &k->lock);
	pthread_mutex_unlock(&k->lock);
}

/* Start the notifier for fs (init). Failure leaves the kernel's caches to their timeouts. */
static void kernel_start(struct dbx_fs *fs, struct fuse *f, struct fuse_conn_info *conn)
{
	struct dbx_fs_kernel *k = calloc(1, sizeof(*k));

	if (!k) {
		dbx_log(DBX_LOG_WARN, "out of memory: kernel caches follow their timeouts only");
		return;
	}
	k->fuse = f;
	pthread_mutex_init(&k->lock, NULL);
	pthread_cond_init(&k->cond, NULL);
	k->tail = &k->head;
	if (fs->cached_ro && (conn->capable & FUSE_CAP_NO_OPEN_SUPPORT))
		k->no_open = true;
	else if (fs->cached_ro)
		dbx_log(DBX_LOG_INFO, "cached_ro: this kernel cannot skip opens; each open "
				      "still asks the mount (reads stay cached)");
	fs->kernel = k;
	fs->kernel_stale = kernel_stale;
	fs->kernel_ctx = fs;
	if (pthread_create(&k->thread, NULL, notifier, fs) == 0)
		k->started = true;
	else
		dbx_log(DBX_LOG_WARN, "cannot start the notifier: kernel caches follow their "
				      "timeouts only");
}

/* Stop the notifier (destroy): what is still queued is dropped with the mount. */
static void kernel_stop(struct dbx_fs *fs)
{
	struct dbx_fs_kernel *k = fs ? fs->kernel : NULL;
	struct note *n, *next;

	if (!k)
		return;
	pthread_mutex_lock(&k->lock);
	k->stop = true;
	for (n = k->head; n; n = next) {
		next = n->next;
		note_free(n);
	}
	k->head = NULL;
	k->tail = &k->head;
	memset(k->set, 0, sizeof(k->set));
	pthread_cond_broadcast(&k->cond);
	pthread_mutex_unlock(&k->lock);
	if (k->started)
		pthread_join(k->thread, NULL);
	fs->kernel_stale = NULL;
	fs->kernel = NULL;
	pthread_cond_destroy(&k->cond);
	pthread_mutex_destroy(&k->lock);
	free(k);
}

static struct dbx_handle *handle_of(const struct fuse_file_info *fi)
{
	return fi ? (struct dbx_handle *)(uintptr_t)fi->fh : NULL;
}

/*
 * 0 with h in fi; or fail(). A shared handle (a read-only attribute) reads
 * through the page cache and needs no flush; the kernel keeps its pages
 * only when they are this version, and otherwise drops them and its
 * attributes of path now, before the first read of this open. Every other
 * handle is direct I/O.
 */
static int opened(const char *op, const char *path, struct fuse_file_info *fi, struct dbx_handle *h,
		  enum dbx_err rc, const struct dbx_error *err)
{
	struct dbx_fs *fs = get_fs();
	bool keep = false;
	int irc;

	if (rc != DBX_OK)
		return fail(op, path, rc, err);
	fi->fh = (uint64_t)(uintptr_t)h;
	fi->direct_io = 1;
	fi->keep_cache = 0;
	if (dbx_handle_shared(h, &keep)) {
		fi->direct_io = 0;
		fi->keep_cache = keep;
		fi->noflush = 1;
		/* No page lock is held in open: safe to drop them from this thread. */
		if (!keep && fs && fs->kernel) {
			irc = fuse_invalidate_path(fs->kernel->fuse, path);
			if (irc != 0 && irc != -ENOENT)
				dbx_log(DBX_LOG_DEBUG, "invalidate %s: %s", path, strerror(-irc));
		}
	}
	return 0;
}

static void *op_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	struct fuse_context *c = fuse_get_context();
	struct dbx_fs *fs = get_fs();
	/* docs/architecture.md, "Kernel caches": at most 1 s, and never past cache_ttl. */
	double t = fs ? (double)fs->kernel_ttl_ms / 1000.0 : 0;

	cfg->use_ino = 1;
	cfg->nullpath_ok = 0;
	cfg->entry_timeout = t;
	cfg->negative_timeout = t;
	cfg->attr_timeout = t;
	cfg->kernel_cache = 0;
	cfg->auto_cache = 0;
	/* A getattr that shows a new mtime drops the pages (on by default; asked for all the same).
	 */
	if (conn->capable & FUSE_CAP_AUTO_INVAL_DATA)
		conn->want |= FUSE_CAP_AUTO_INVAL_DATA;
	if (fs && fs->kview && c && c->fuse)
		kernel_start(fs, c->fuse, conn);
	/*
	 * Ctrl-C on a blocked write or read reaches us: fuse_interrupted()
	 * turns true and the worker gets DBX_INTR_SIGNAL, whose handler main.c
	 * installs (libfuse 3.14 does not when intr is set here).
	 */
	cfg->intr = 1;
	cfg->intr_signal = DBX_INTR_SIGNAL;
	return fs;
}

static void op_destroy(void *private_data)
{
	kernel_stop(private_data);
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

static int op_readlink(const char *path, char *buf, size_t size)
{
	struct dbx_error err = {0};
	enum dbx_err rc;

	rc = dbx_fs_readlink(get_fs(), path, buf, size, &err);
	return rc == DBX_OK ? 0 : fail("readlink", path, rc, &err);
}

static int op_open(const char *path, struct fuse_file_info *fi)
{
	struct dbx_fs *fs = get_fs();
	struct dbx_error err = {0};
	struct dbx_handle *h;
	enum dbx_err rc;

	/* -o cached_ro: the mount is read-only, so this is a read; ENOSYS turns opens off. */
	if (fs && fs->kernel && fs->kernel->no_open && (fi->flags & O_ACCMODE) == O_RDONLY)
		return -ENOSYS;
	rc = dbx_handle_open(fs, path, fi->flags, &h, &err);
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

	if (size > INT_MAX)
		size = INT_MAX;
	/* No handle: the kernel opened nothing (-o cached_ro). */
	if (handle_of(fi))
		rc = dbx_handle_read(get_fs(), handle_of(fi), buf, size, off, &n, &err);
	else
		rc = dbx_fs_read_file(get_fs(), path, buf, size, off, &n, &err);
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
	if (dbx_handle_writing(handle_of(fi)))
		settle(get_fs());
	return rc == DBX_OK ? (int)size : fail("write", path, rc, &err);
}

static int op_flush(const char *path, struct fuse_file_info *fi)
{
	struct dbx_fs *fs = get_fs();
	struct dbx_error err = {0};
	enum dbx_err rc;

	/* No opens, nothing written (-o cached_ro): ENOSYS turns flushes off too. */
	if (fs && fs->kernel && fs->kernel->no_open && !handle_of(fi))
		return -ENOSYS;
	rc = dbx_handle_flush(fs, handle_of(fi), &err);
	if (dbx_handle_writing(handle_of(fi)))
		settle(fs);
	return rc == DBX_OK ? 0 : fail("flush", path, rc, &err);
}

static int op_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	struct dbx_error err = {0};
	enum dbx_err rc;

	(void)datasync;
	rc = dbx_handle_flush(get_fs(), handle_of(fi), &err);
	if (dbx_handle_writing(handle_of(fi)))
		settle(get_fs());
	return rc == DBX_OK ? 0 : fail("fsync", path, rc, &err);
}

/* release(2) reports to nobody: a value applied here and refused is only logged. */
static int op_release(const char *path, struct fuse_file_info *fi)
{
	struct dbx_error err = {0};
	bool writing = dbx_handle_writing(handle_of(fi));
	enum dbx_err rc;

	rc = dbx_handle_release(get_fs(), handle_of(fi), &err);
	if (writing)
		settle(get_fs());
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
	settle(get_fs());
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
    .destroy = op_destroy,
    .getattr = op_getattr,
    .readdir = op_readdir,
    .readlink = op_readlink,
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
