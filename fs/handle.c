/*
 * handle.c: open files and the temporary-file dispatch (handle.h).
 *
 * Every call first asks whether its path, or its handle, is an editor's
 * temporary file (scratch.h: a name that is not an attribute, directly in
 * an order directory, that exists in the mount's store); those calls go to
 * the store, with mtimes from dbx_fs_now(). Everything else is an attribute
 * and goes to fs.c: dbx_fs_open() renders it for reading, struct
 * dbx_fs_writer collects and applies what an open writes, dbx_fs_truncate()
 * answers a truncate by path. Opening a read-only attribute for writing, or
 * truncating it, is DBX_EACCES even for root (docs/formats.md, "Writes").
 * An open for writing waits for its order's turn (admit.h), which it holds
 * until release; readers never wait for one. Nothing else here blocks but
 * an apply; fs.c bounds both by -o timeout.
 */
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "handle.h"
#include "scratch.h"
#include "tree.h"

/* A temporary file: its order directory and its name there. */
struct temp {
	struct dbx_node dir;
	char name[DBX_TREE_NAME_MAX];
};

struct dbx_handle {
	bool temp;		/* a temporary file: reads and writes go to the store */
	bool append;		/* the temporary file was opened O_APPEND */
	struct temp t;		/* which one, when temp */
	char *buf;		/* attribute: what open rendered (NULL: write-only) */
	size_t len;		/* bytes in buf */
	uint64_t ino;		/* attribute opened read-only: its inode */
	bool shared;		/* ... served through the kernel's page cache (kview.h) */
	bool keep;		/* ... whose pages the kernel may keep from earlier opens */
	bool writing;		/* attribute opened for writing: w is live */
	struct dbx_fs_writer w; /* the write side (fs.h) */
};

static void handle_free(struct dbx_fs *fs, struct dbx_handle *h)
{
	dbx_fs_writer_leave(fs, &h->w);
	dbx_fs_writer_close(&h->w);
	free(h->buf);
	free(h);
}

/* Whether path is an existing temporary file; fills *t. */
static bool temp_file(struct dbx_fs *fs, const char *path, struct temp *t)
{
	struct dbx_scratch *s = dbx_fs_scratch(fs);
	struct dbx_scratch_stat st;

	return s && dbx_scratch_name(path, &t->dir, t->name) &&
	       dbx_scratch_stat(s, &t->dir, t->name, &st) == DBX_OK;
}

/* What every change but those of temporary files gets. */
static enum dbx_err not_here(struct dbx_error *err)
{
	return dbx_error_set(err, DBX_EROFS, "not supported through this mount");
}

/* rc of a scratch call (which has no detail of its own), with what in err on failure. */
static enum dbx_err scratch_rc(enum dbx_err rc, struct dbx_error *err, const char *what)
{
	return rc == DBX_OK ? DBX_OK : dbx_error_set(err, rc, "%s", what);
}

/* A new handle on the temporary file t. */
static enum dbx_err open_temp(const struct temp *t, int flags, struct dbx_handle **out,
			      struct dbx_error *err)
{
	struct dbx_handle *h = calloc(1, sizeof(*h));

	if (!h)
		return dbx_error_set(err, DBX_ENOMEM, "out of memory");
	h->temp = true;
	h->append = (flags & O_APPEND) != 0;
	h->t = *t;
	*out = h;
	return DBX_OK;
}

/* A new handle on the attribute path (dbx_handle_open says what flags do). */
static enum dbx_err open_attr(struct dbx_fs *fs, const char *path, int flags,
			      struct dbx_handle **out, struct dbx_error *err)
{
	struct dbx_handle *h = calloc(1, sizeof(*h));
	int acc = flags & O_ACCMODE;
	enum dbx_err rc;

	if (!h)
		return dbx_error_set(err, DBX_ENOMEM, "out of memory");
	if (acc != O_RDONLY || (flags & O_TRUNC)) {
		rc = dbx_fs_writer_open(fs, path, (flags & O_APPEND) != 0, &h->w, err);
		/* Wait here for the order's turn, before the kernel queues this writer. */
		if (rc == DBX_OK)
			rc = dbx_fs_writer_admit(fs, &h->w, err);
		h->writing = rc == DBX_OK;
		/* O_RDWR reads what the file shows at open, like any reader. */
		if (rc == DBX_OK && acc == O_RDWR && !(flags & O_TRUNC))
			rc = dbx_fs_open(fs, path, &h->buf, &h->len, err);
	} else {
		rc = dbx_fs_open_file(fs, path, &h->buf, &h->len, &h->ino, err);
		h->shared = rc == DBX_OK && fs->kview;
		if (h->shared)
			h->keep = dbx_kview_opened(fs->kview, h->ino, h->buf, h->len);
	}
	if (rc != DBX_OK) {
		handle_free(fs, h);
		return rc;
	}
	*out = h;
	return DBX_OK;
}

enum dbx_err dbx_handle_open(struct dbx_fs *fs, const char *path, int flags, struct dbx_handle **h,
			     struct dbx_error *err)
{
	struct temp t;
	enum dbx_err rc;

	*h = NULL;
	if (!temp_file(fs, path, &t))
		return open_attr(fs, path, flags, h, err);
	if (flags & O_TRUNC) {
		rc = dbx_scratch_truncate(dbx_fs_scratch(fs), &t.dir, t.name, 0, dbx_fs_now(fs));
		if (rc != DBX_OK)
			return scratch_rc(rc, err, "cannot truncate");
	}
	return open_temp(&t, flags, h, err);
}

enum dbx_err dbx_handle_create(struct dbx_fs *fs, const char *path, mode_t mode, int flags,
			       struct dbx_handle **h, struct dbx_error *err)
{
	struct dbx_scratch *s;
	struct dbx_node node;
	struct temp t;
	enum dbx_err rc;

	*h = NULL;
	/* O_CREAT of an attribute is opening it. */
	if (dbx_tree_resolve(path, &node) == DBX_OK && node.kind == DBX_NODE_ORDER_FILE)
		return open_attr(fs, path, flags, h, err);
	s = dbx_fs_scratch(fs);
	if (!s || !dbx_scratch_name(path, &t.dir, t.name))
		return not_here(err);
	rc = dbx_scratch_create(s, &t.dir, t.name, mode, dbx_fs_now(fs));
	if (rc != DBX_OK)
		return scratch_rc(rc, err, "cannot create a temporary file");
	return open_temp(&t, flags, h, err);
}

bool dbx_handle_shared(const struct dbx_handle *h, bool *keep)
{
	*keep = h && h->shared && h->keep;
	return h && h->shared;
}

bool dbx_handle_writing(const struct dbx_handle *h)
{
	return h && h->writing;
}

enum dbx_err dbx_handle_read(struct dbx_fs *fs, struct dbx_handle *h, char *buf, size_t size,
			     off_t off, size_t *n, struct dbx_error *err)
{
	*n = 0;
	if (off < 0)
		return dbx_error_set(err, DBX_EINVAL, "negative offset");
	/* A page the kernel keeps for every open: the version whose size it holds. */
	if (h->shared && dbx_kview_read(fs->kview, h->ino, buf, size, (uint64_t)off, n))
		return DBX_OK;
	if (h->temp)
		return scratch_rc(
		    dbx_scratch_read(dbx_fs_scratch(fs), &h->t.dir, h->t.name, buf, size, off, n),
		    err, "temporary file gone");
	if ((size_t)off >= h->len)
		return DBX_OK;
	*n = size < h->len - (size_t)off ? size : h->len - (size_t)off;
	memcpy(buf, h->buf + off, *n);
	return DBX_OK;
}

enum dbx_err dbx_handle_write(struct dbx_fs *fs, struct dbx_handle *h, const char *data,
			      size_t size, off_t off, struct dbx_error *err)
{
	struct dbx_scratch *s;
	struct dbx_scratch_stat st;

	if (h && h->temp) {
		s = dbx_fs_scratch(fs);
		if (h->append && dbx_scratch_stat(s, &h->t.dir, h->t.name, &st) == DBX_OK)
			off = (off_t)st.size;
		return scratch_rc(
		    dbx_scratch_write(s, &h->t.dir, h->t.name, data, size, off, dbx_fs_now(fs)),
		    err, "temporary file");
	}
	if (!h || !h->writing)
		return dbx_error_set(err, DBX_EINVAL, "not open for writing");
	return dbx_fs_writer_write(fs, &h->w, data, size, off, err);
}

enum dbx_err dbx_handle_flush(struct dbx_fs *fs, struct dbx_handle *h, struct dbx_error *err)
{
	if (!h || !h->writing)
		return DBX_OK;
	return dbx_fs_writer_flush(fs, &h->w, err);
}

/* Set the size of the temporary file t. */
static enum dbx_err temp_truncate(struct dbx_fs *fs, const struct temp *t, off_t size,
				  struct dbx_error *err)
{
	return scratch_rc(
	    dbx_scratch_truncate(dbx_fs_scratch(fs), &t->dir, t->name, size, dbx_fs_now(fs)), err,
	    "temporary file");
}

enum dbx_err dbx_handle_truncate(struct dbx_fs *fs, struct dbx_handle *h, const char *path,
				 off_t size, struct dbx_error *err)
{
	struct temp t;

	if (h && h->temp)
		return temp_truncate(fs, &h->t, size, err);
	if (!h && temp_file(fs, path, &t))
		return temp_truncate(fs, &t, size, err);
	if (h && h->writing)
		return dbx_fs_writer_truncate(&h->w, size, err);
	return dbx_fs_truncate(fs, path, size, err);
}

enum dbx_err dbx_handle_release(struct dbx_fs *fs, struct dbx_handle *h, struct dbx_error *err)
{
	enum dbx_err rc = DBX_OK;

	if (!h)
		return DBX_OK;
	if (h->writing && dbx_fs_writer_pending(&h->w))
		rc = dbx_fs_writer_flush(fs, &h->w, err);
	handle_free(fs, h);
	return rc;
}

enum dbx_err dbx_fs_unlink(struct dbx_fs *fs, const char *path, struct dbx_error *err)
{
	struct temp t;

	if (!temp_file(fs, path, &t))
		return not_here(err);
	return scratch_rc(dbx_scratch_unlink(dbx_fs_scratch(fs), &t.dir, t.name), err,
			  "no such file");
}

enum dbx_err dbx_fs_chmod(struct dbx_fs *fs, const char *path, mode_t mode, struct dbx_error *err)
{
	struct temp t;

	if (!temp_file(fs, path, &t))
		return not_here(err);
	return scratch_rc(dbx_scratch_chmod(dbx_fs_scratch(fs), &t.dir, t.name, mode), err,
			  "no such file");
}

enum dbx_err dbx_fs_chown(struct dbx_fs *fs, const char *path, uid_t uid, gid_t gid,
			  struct dbx_error *err)
{
	struct temp t;

	if (!temp_file(fs, path, &t))
		return not_here(err);
	if ((uid != (uid_t)-1 && uid != fs->uid) || (gid != (gid_t)-1 && gid != fs->gid))
		return dbx_error_set(err, DBX_EPERM,
				     "a temporary file belongs to the mounting user");
	return DBX_OK;
}

enum dbx_err dbx_fs_utimens(struct dbx_fs *fs, const char *path, struct dbx_error *err)
{
	struct temp t;

	return temp_file(fs, path, &t) ? DBX_OK : not_here(err);
}
