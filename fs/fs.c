/*
 * fs.c: getattr, readdir, open, write and truncate as plain functions (fs.h).
 *
 * A file's st_size is the length of the very bytes open() would render
 * from the same snapshot, so tar, rsync and cp never see a short or padded
 * file. mtime is the order's (stable while its state is unchanged); the
 * errors file moves to the time of a failed refresh while it shows one.
 * When the latest refresh of an order failed, every file but errors fails
 * with that error: nothing stale is shown as if live.
 *
 * Writes: the writer (bottom of this file) turns the write(2)s of one open
 * into one value; apply_value() parses it with the row's store(), takes
 * the order's write lock and runs dbx_update_apply(), then publishes the
 * result in the cache or records the order's last-write error; for a
 * write that timed out after its PATCH was sent, with the check
 * (shows_change) by which a later read clears that error once the order
 * shows the change.
 *
 * Temporary files (scratch.h) show in order directories while they exist;
 * dbx_fs_rename() turns rename(temporary, attribute) into one such write.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "databoxfs/json_scan.h"
#include "databoxfs/log.h"
#include "databoxfs/timestamp.h"
#include "attrs.h"
#include "fs.h"
#include "tree.h"

/*
 * The link count of a directory: 2 + its subdirectories when the cache
 * knows them, else 1, which tells find(1) and friends not to rely on it.
 * An order directory holds none; sub and rg as in dbx_cache_subdirs().
 */
static nlink_t dir_links(struct dbx_fs *fs, bool order, const char *sub, const char *rg)
{
	long n = order ? 0 : dbx_cache_subdirs(fs->cache, sub, rg);

	return n < 0 ? 1 : (nlink_t)(2 + n);
}

static void fill_dir(struct dbx_fs *fs, struct stat *st, uint64_t ino, time_t mtime, nlink_t links)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_mode = S_IFDIR | 0555;
	st->st_nlink = links;
	st->st_uid = fs->uid;
	st->st_gid = fs->gid;
	st->st_size = 0;
	st->st_blksize = 4096;
	st->st_atime = st->st_mtime = st->st_ctime = mtime;
}

static void fill_file(struct dbx_fs *fs, struct stat *st, uint64_t ino, size_t attr, size_t size,
		      time_t mtime)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_mode = S_IFREG | (dbx_attrs[attr].mode & (fs->read_only ? 0555 : 07777));
	st->st_nlink = 1;
	st->st_uid = fs->uid;
	st->st_gid = fs->gid;
	st->st_size = (off_t)size;
	st->st_blocks = (blkcnt_t)((size + 511) / 512);
	st->st_blksize = 4096;
	st->st_atime = st->st_mtime = st->st_ctime = mtime;
}

/* Whether file attr may be shown from view: always errors, the others only when live. */
static bool showable(const struct dbx_order_view *view, size_t attr)
{
	return view->rc == DBX_OK || (view->rc != DBX_ENOTFOUND && dbx_attrs[attr].reports_errors);
}

/* Render file attr from view into *buf and *len; *mtime is the mtime of the file. */
static enum dbx_err render(const struct dbx_order_view *view, size_t attr, char **buf, size_t *len,
			   time_t *mtime, struct dbx_error *err)
{
	struct dbx_attr_ctx ctx = {.order = view->order};
	enum dbx_err rc;

	*mtime = view->mtime;
	if (view->rc != DBX_OK) {
		ctx.read_err = &view->err;
		ctx.read_time = view->err_time;
		if (view->err_time > *mtime)
			*mtime = view->err_time;
	}
	if (view->has_write_err) {
		ctx.write_err = &view->write_err;
		ctx.write_time = view->write_err_time;
		ctx.write_target = view->write_target;
	}
	/* Only errors shows the last-write block, so only errors moves when it comes or goes. */
	if (dbx_attrs[attr].reports_errors && view->write_changed > *mtime)
		*mtime = view->write_changed;
	if (dbx_attrs[attr].reports_operation) {
		if (view->operation_lost)
			return dbx_error_set(err, DBX_ENOMEM, "operation: out of memory");
		ctx.operation = view->operation;
		if (view->operation_changed > *mtime)
			*mtime = view->operation_changed;
	}
	rc = dbx_attr_show(attr, &ctx, buf, len);
	if (rc != DBX_OK)
		return dbx_error_set(err, rc, "%s: cannot render", dbx_attrs[attr].name);
	return DBX_OK;
}

/* "/sub/rg/order" or, with attr >= 0, "/sub/rg/order/file": a path as FUSE spells it. */
static void order_path(char *out, size_t size, const char *sub, const char *rg, const char *name,
		       int attr)
{
	snprintf(out, size, "/%s/%s/%s%s%s", sub, rg, name, attr >= 0 ? "/" : "",
		 attr >= 0 ? dbx_attrs[attr].name : "");
}

/*
 * The kernel is told the size of version text[0..n) of file attr of node
 * (kview.h): when that is not the version it holds, its pages are stale.
 */
static void tell_kernel(struct dbx_fs *fs, const struct dbx_node *node, size_t attr, uint64_t ino,
			const char *text, size_t n)
{
	char path[4 * DBX_TREE_NAME_MAX];

	if (!fs->kview || !dbx_kview_note(fs->kview, ino, text, n) || !fs->kernel_stale)
		return;
	order_path(path, sizeof(path), node->subscription, node->resource_group, node->order,
		   (int)attr);
	fs->kernel_stale(fs->kernel_ctx, path);
}

/*
 * The file node: the order's view, rendered. Fills st when not NULL (the
 * kernel is then told of this version: kview.h), *buf when buf not NULL,
 * *ino when ino not NULL.
 */
static enum dbx_err file_state(struct dbx_fs *fs, const struct dbx_node *node, struct stat *st,
			       char **buf, size_t *len, uint64_t *ino, struct dbx_error *err)
{
	struct dbx_order_view view;
	char *text = NULL;
	size_t n = 0;
	time_t mtime;
	enum dbx_err rc;

	rc = dbx_cache_order(fs->cache, node->subscription, node->resource_group, node->order,
			     &view, err);
	if (ino)
		*ino = dbx_ino_file(view.ino, (size_t)node->attr);
	if (!showable(&view, (size_t)node->attr))
		goto out;
	rc = render(&view, (size_t)node->attr, &text, &n, &mtime, err);
	if (rc != DBX_OK)
		goto out;
	if (st) {
		fill_file(fs, st, dbx_ino_file(view.ino, (size_t)node->attr), (size_t)node->attr, n,
			  mtime);
		tell_kernel(fs, node, (size_t)node->attr, st->st_ino, text, n);
	}
	if (buf) {
		*buf = text;
		*len = n;
		text = NULL;
	}
out:
	if (rc != DBX_OK && fs->kview && view.ino)
		dbx_kview_forget(fs->kview, dbx_ino_file(view.ino, (size_t)node->attr));
	free(text);
	dbx_order_view_release(&view);
	return rc;
}

time_t dbx_fs_now(const struct dbx_fs *fs)
{
	return dbx_cache_wall(fs->cache);
}

/* Guards the parts of a mount made on first use: the scratch store, the writers' turns. */
static pthread_mutex_t parts_lock = PTHREAD_MUTEX_INITIALIZER;

struct dbx_scratch *dbx_fs_scratch(struct dbx_fs *fs)
{
	struct dbx_scratch *s;

	if (!fs || !fs->update)
		return NULL;
	pthread_mutex_lock(&parts_lock);
	if (!fs->scratch)
		fs->scratch = dbx_scratch_new();
	s = fs->scratch;
	pthread_mutex_unlock(&parts_lock);
	return s;
}

static void fill_scratch(struct dbx_fs *fs, struct stat *st, const struct dbx_scratch_stat *ss)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ss->ino;
	st->st_mode = S_IFREG | ss->mode;
	st->st_nlink = 1;
	st->st_uid = fs->uid;
	st->st_gid = fs->gid;
	st->st_size = (off_t)ss->size;
	st->st_blocks = (blkcnt_t)((ss->size + 511) / 512);
	st->st_blksize = 4096;
	st->st_atime = st->st_mtime = st->st_ctime = ss->mtime;
}

/* getattr of a path the tree does not know: a temporary file, or no such file. */
static enum dbx_err scratch_getattr(struct dbx_fs *fs, const char *path, struct stat *st,
				    struct dbx_error *err)
{
	struct dbx_scratch *s = dbx_fs_scratch(fs);
	struct dbx_scratch_stat ss;
	struct dbx_node dir;
	char name[DBX_TREE_NAME_MAX];

	if (!s || !dbx_scratch_name(path, &dir, name) ||
	    dbx_scratch_stat(s, &dir, name, &ss) != DBX_OK)
		return dbx_error_set(err, DBX_ENOTFOUND, "no such file");
	fill_scratch(fs, st, &ss);
	return DBX_OK;
}

struct scratch_fill {
	struct dbx_fs *fs;
	dbx_fs_fill_fn fill;
	void *ctx;
};

static int scratch_entry(void *ctx, const char *name, const struct dbx_scratch_stat *ss)
{
	struct scratch_fill *sf = ctx;
	struct stat st;

	fill_scratch(sf->fs, &st, ss);
	return sf->fill(sf->ctx, name, &st);
}

/*
 * ---- The catalogue (catalogue.h): keyvaults/, identities/, by-name/ ----
 *
 * Paths under these names are DBX_NODE_CATALOGUE nodes: resolved, listed
 * and rendered by catalogue.c; here they only become struct stat. Their
 * control files (new_key, new_version) take writes through the same
 * writer as order files, without an order's turn.
 */

static enum dbx_err no_catalogue(struct dbx_error *err)
{
	return dbx_error_set(err, DBX_ENOTFOUND, "no such file");
}

/*
 * ---- The control directory MOUNT/.databoxfs/ (control.h) ----
 *
 * CONTROL_DIR and CONTROL_FILE nodes: control.c renders the files; here
 * they only become struct stat and open buffers. Each getattr and open
 * takes the file's snapshot (renewed at most once per hold), so st_size
 * is what the read returns, and the kernel is told of the version like an
 * order file's (kview.h).
 */

static enum dbx_err no_control(struct dbx_error *err)
{
	return dbx_error_set(err, DBX_ENOTFOUND, "no such file");
}

static void cat_to_stat(struct dbx_fs *fs, const struct dbx_cat_stat *cs, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = cs->ino;
	st->st_mode = (cs->type == DBX_CAT_DIR	  ? S_IFDIR
		       : cs->type == DBX_CAT_LINK ? S_IFLNK
						  : S_IFREG) |
		      (cs->mode & (fs->read_only || !fs->update ? 0555 : 0777));
	st->st_nlink = cs->links;
	st->st_uid = fs->uid;
	st->st_gid = fs->gid;
	st->st_size = (off_t)cs->size;
	st->st_blksize = 4096;
	st->st_blocks = (blkcnt_t)((cs->size + 511) / 512);
	st->st_atime = st->st_mtime = st->st_ctime = cs->mtime;
}

static enum dbx_err catalogue_getattr(struct dbx_fs *fs, const char *path, struct stat *st,
				      struct dbx_error *err)
{
	struct dbx_cat_stat cs;
	enum dbx_err rc;

	if (!fs->catalogue)
		return no_catalogue(err);
	rc = dbx_catalogue_stat(fs->catalogue, path, &cs, err);
	if (rc == DBX_OK)
		cat_to_stat(fs, &cs, st);
	return rc;
}

struct cat_fill {
	struct dbx_fs *fs;
	dbx_fs_fill_fn fill;
	void *ctx;
};

static int cat_entry(void *ctx, const char *name, const struct dbx_cat_stat *cs)
{
	struct cat_fill *cf = ctx;
	struct stat st;

	if (!cs)
		return cf->fill(cf->ctx, name, NULL);
	cat_to_stat(cf->fs, cs, &st);
	return cf->fill(cf->ctx, name, &st);
}

static enum dbx_err catalogue_readdir(struct dbx_fs *fs, const char *path, dbx_fs_fill_fn fill,
				      void *ctx, struct dbx_error *err)
{
	struct cat_fill cf = {fs, fill, ctx};
	struct stat st;
	enum dbx_err rc;

	rc = catalogue_getattr(fs, path, &st, err);
	if (rc != DBX_OK)
		return rc;
	if (!S_ISDIR(st.st_mode))
		return dbx_error_set(err, DBX_EINVAL, "not a directory");
	if (fill(ctx, ".", &st) || fill(ctx, "..", NULL))
		return DBX_OK;
	return dbx_catalogue_list(fs->catalogue, path, cat_entry, &cf, err);
}

static enum dbx_err catalogue_open(struct dbx_fs *fs, const char *path, char **buf, size_t *len,
				   uint64_t *ino, struct dbx_error *err)
{
	struct dbx_cat_stat cs;
	enum dbx_err rc;

	if (!fs->catalogue)
		return no_catalogue(err);
	rc = dbx_catalogue_stat(fs->catalogue, path, &cs, err);
	if (rc != DBX_OK)
		return rc;
	if (cs.type != DBX_CAT_FILE)
		return dbx_error_set(err, DBX_EINVAL, "is a directory");
	*ino = cs.ino;
	return dbx_catalogue_read(fs->catalogue, path, buf, len, err);
}

/* A catalogue file that may be written: a control file, on a mount that writes. */
static enum dbx_err catalogue_writable(struct dbx_fs *fs, const struct dbx_node *node,
				       struct dbx_error *err)
{
	struct dbx_cat_stat cs;
	enum dbx_err rc;

	if (!fs->catalogue)
		return no_catalogue(err);
	rc = dbx_catalogue_stat(fs->catalogue, node->path, &cs, err);
	if (rc != DBX_OK)
		return rc;
	if (cs.type == DBX_CAT_DIR)
		return dbx_error_set(err, DBX_EINVAL, "is a directory");
	if (!dbx_catalogue_writable(node->path))
		return dbx_error_set(err, DBX_EACCES, "%s is read-only", node->path);
	if (!fs->update)
		return dbx_error_set(err, DBX_EROFS, "%s: this mount does not write", node->path);
	return DBX_OK;
}

enum dbx_err dbx_fs_readlink(struct dbx_fs *fs, const char *path, char *buf, size_t size,
			     struct dbx_error *err)
{
	struct dbx_node node;
	struct dbx_cat_stat cs;
	char *target = NULL;
	size_t len = 0;
	enum dbx_err rc;

	if (size == 0)
		return dbx_error_set(err, DBX_EINVAL, "no room");
	if (dbx_tree_resolve(path, &node) != DBX_OK || node.kind != DBX_NODE_CATALOGUE)
		return dbx_error_set(err, DBX_EINVAL, "not a symbolic link");
	if (!fs->catalogue)
		return no_catalogue(err);
	rc = dbx_catalogue_stat(fs->catalogue, path, &cs, err);
	if (rc == DBX_OK && cs.type != DBX_CAT_LINK)
		rc = dbx_error_set(err, DBX_EINVAL, "not a symbolic link");
	if (rc == DBX_OK)
		rc = dbx_catalogue_read(fs->catalogue, path, &target, &len, err);
	if (rc == DBX_OK)
		snprintf(buf, size, "%s", target);
	free(target);
	return rc;
}

/* The name of a written file in messages: its attribute, or the catalogue path. */
static const char *node_name(const struct dbx_node *node)
{
	return node->kind == DBX_NODE_CATALOGUE ? node->path : dbx_attrs[node->attr].name;
}

static void control_dir_stat(struct dbx_fs *fs, struct stat *st)
{
	fill_dir(fs, st, DBX_INO_CONTROL, dbx_cache_started(fs->cache), 2);
}

/* File node->attr of the control directory: its snapshot (buf NULL: only st), told to the kernel.
 */
static enum dbx_err control_file(struct dbx_fs *fs, const struct dbx_node *node, struct stat *st,
				 char **buf, size_t *len, struct dbx_error *err)
{
	char path[sizeof(DBX_CONTROL_DIR) + DBX_TREE_NAME_MAX];
	uint64_t ino = dbx_control_ino((size_t)node->attr);
	char *text = NULL;
	size_t n = 0;
	time_t mtime = 0;
	enum dbx_err rc;

	if (!fs->control)
		return no_control(err);
	rc = dbx_control_read(fs->control, (size_t)node->attr, &text, &n, &mtime, err);
	if (rc != DBX_OK)
		return rc;
	if (st) {
		memset(st, 0, sizeof(*st));
		st->st_ino = ino;
		st->st_mode = S_IFREG | 0444;
		st->st_nlink = 1;
		st->st_uid = fs->uid;
		st->st_gid = fs->gid;
		st->st_size = (off_t)n;
		st->st_blocks = (blkcnt_t)((n + 511) / 512);
		st->st_blksize = 4096;
		st->st_atime = st->st_mtime = st->st_ctime = mtime;
		if (fs->kview && dbx_kview_note(fs->kview, ino, text, n) && fs->kernel_stale) {
			snprintf(path, sizeof(path), "%s/%s", DBX_CONTROL_DIR,
				 dbx_control_file_name((size_t)node->attr));
			fs->kernel_stale(fs->kernel_ctx, path);
		}
	}
	if (buf) {
		*buf = text;
		*len = n;
		text = NULL;
	}
	free(text);
	return DBX_OK;
}

static enum dbx_err control_getattr(struct dbx_fs *fs, const struct dbx_node *node, struct stat *st,
				    struct dbx_error *err)
{
	if (!fs->control)
		return no_control(err);
	if (node->kind == DBX_NODE_CONTROL_DIR) {
		control_dir_stat(fs, st);
		return DBX_OK;
	}
	return control_file(fs, node, st, NULL, NULL, err);
}

static enum dbx_err control_readdir(struct dbx_fs *fs, const struct dbx_node *node,
				    dbx_fs_fill_fn fill, void *ctx, struct dbx_error *err)
{
	struct dbx_node file = *node;
	struct stat st;

	if (!fs->control)
		return no_control(err);
	if (node->kind != DBX_NODE_CONTROL_DIR)
		return dbx_error_set(err, DBX_EINVAL, "not a directory");
	control_dir_stat(fs, &st);
	if (fill(ctx, ".", &st) || fill(ctx, "..", NULL))
		return DBX_OK;
	file.kind = DBX_NODE_CONTROL_FILE;
	for (size_t i = 0; i < DBX_CONTROL_N_FILES; i++) {
		file.attr = (int)i;
		/* A file that cannot be rendered now is listed; getattr says why. */
		if (fill(ctx, dbx_control_file_name(i),
			 control_file(fs, &file, &st, NULL, NULL, err) == DBX_OK ? &st : NULL))
			break;
		dbx_error_clear(err);
	}
	return DBX_OK;
}

static enum dbx_err control_open(struct dbx_fs *fs, const struct dbx_node *node, char **buf,
				 size_t *len, uint64_t *ino, struct dbx_error *err)
{
	if (node->kind != DBX_NODE_CONTROL_FILE)
		return dbx_error_set(err, DBX_EINVAL, "is a directory");
	*ino = dbx_control_ino((size_t)node->attr);
	return control_file(fs, node, NULL, buf, len, err);
}

static bool is_control(const struct dbx_node *node)
{
	return node->kind == DBX_NODE_CONTROL_DIR || node->kind == DBX_NODE_CONTROL_FILE;
}

enum dbx_err dbx_fs_getattr(struct dbx_fs *fs, const char *path, struct stat *st,
			    struct dbx_error *err)
{
	struct dbx_node node;
	uint64_t ino;
	time_t mtime;
	enum dbx_err rc;

	rc = dbx_tree_resolve(path, &node);
	if (rc != DBX_OK)
		return scratch_getattr(fs, path, st, err);
	if (node.kind == DBX_NODE_CATALOGUE)
		return catalogue_getattr(fs, path, st, err);
	if (is_control(&node))
		return control_getattr(fs, &node, st, err);
	if (node.kind == DBX_NODE_ORDER_FILE)
		return file_state(fs, &node, st, NULL, NULL, NULL, err);
	rc = dbx_cache_lookup(fs->cache,
			      node.kind >= DBX_NODE_SUBSCRIPTION ? node.subscription : NULL,
			      node.kind >= DBX_NODE_RESOURCE_GROUP ? node.resource_group : NULL,
			      node.kind >= DBX_NODE_ORDER ? node.order : NULL, &ino, &mtime, err);
	if (rc != DBX_OK)
		return rc;
	fill_dir(fs, st, ino, mtime,
		 dir_links(fs, node.kind == DBX_NODE_ORDER,
			   node.kind >= DBX_NODE_SUBSCRIPTION ? node.subscription : NULL,
			   node.kind >= DBX_NODE_RESOURCE_GROUP ? node.resource_group : NULL));
	if (node.kind == DBX_NODE_ORDER && fs->update)
		st->st_mode = S_IFDIR | 0755;
	return DBX_OK;
}

static enum dbx_err readdir_order(struct dbx_fs *fs, const struct dbx_node *node,
				  dbx_fs_fill_fn fill, void *ctx, struct dbx_error *err)
{
	struct dbx_order_view view;
	enum dbx_err rc;

	rc = dbx_cache_order(fs->cache, node->subscription, node->resource_group, node->order,
			     &view, err);
	if (rc == DBX_ENOTFOUND)
		goto out;
	rc = DBX_OK;
	for (size_t i = 0; i < dbx_attrs_len; i++) {
		struct stat st;
		char *text = NULL;
		size_t n = 0;
		time_t mtime;

		if (!showable(&view, i)) {
			/* The name is there; its attributes come with the error from getattr. */
			if (fill(ctx, dbx_attrs[i].name, NULL))
				goto out;
			continue;
		}
		rc = render(&view, i, &text, &n, &mtime, err);
		if (rc != DBX_OK)
			break;
		fill_file(fs, &st, dbx_ino_file(view.ino, i), i, n, mtime);
		/* readdirplus: the kernel takes these attributes as a getattr's. */
		tell_kernel(fs, node, i, st.st_ino, text, n);
		free(text);
		if (fill(ctx, dbx_attrs[i].name, &st))
			goto out;
	}
	if (rc == DBX_OK && dbx_fs_scratch(fs)) {
		struct scratch_fill sf = {fs, fill, ctx};

		dbx_scratch_list(dbx_fs_scratch(fs), node, scratch_entry, &sf);
	}
out:
	dbx_order_view_release(&view);
	return rc;
}

enum dbx_err dbx_fs_readdir(struct dbx_fs *fs, const char *path, dbx_fs_fill_fn fill, void *ctx,
			    struct dbx_error *err)
{
	struct dbx_dirlist list = {0};
	struct dbx_node node;
	struct stat st;
	enum dbx_err rc;

	rc = dbx_tree_resolve(path, &node);
	if (rc != DBX_OK)
		return dbx_error_set(err, rc, "no such directory");
	if (node.kind == DBX_NODE_CATALOGUE)
		return catalogue_readdir(fs, path, fill, ctx, err);
	if (is_control(&node))
		return control_readdir(fs, &node, fill, ctx, err);
	if (node.kind == DBX_NODE_ORDER_FILE)
		return dbx_error_set(err, DBX_EINVAL, "not a directory");
	rc = dbx_fs_getattr(fs, path, &st, err);
	if (rc != DBX_OK)
		return rc;
	if (fill(ctx, ".", &st))
		return DBX_OK;
	/* ".." gets no attributes: FUSE fills in what the kernel needs. */
	if (fill(ctx, "..", NULL))
		return DBX_OK;
	if (node.kind == DBX_NODE_ORDER)
		return readdir_order(fs, &node, fill, ctx, err);
	rc = dbx_cache_list(fs->cache, node.kind == DBX_NODE_ROOT ? NULL : node.subscription,
			    node.kind == DBX_NODE_RESOURCE_GROUP ? node.resource_group : NULL,
			    &list, err);
	if (rc != DBX_OK)
		return rc;
	for (size_t i = 0; i < list.n; i++) {
		/* the children: subscriptions of the root, groups of a subscription, orders */
		bool child_is_sub = node.kind == DBX_NODE_ROOT;

		fill_dir(fs, &st, list.v[i].ino, list.v[i].mtime,
			 dir_links(fs, node.kind == DBX_NODE_RESOURCE_GROUP,
				   child_is_sub ? list.v[i].name : node.subscription,
				   child_is_sub ? NULL : list.v[i].name));
		if (fill(ctx, list.v[i].name, &st))
			break;
	}
	dbx_dirlist_free(&list);
	return DBX_OK;
}

/* A file that may be written: an order file with a store, on a mount with a write config. */
static enum dbx_err resolve_writable(struct dbx_fs *fs, const char *path, struct dbx_node *node,
				     struct dbx_error *err)
{
	enum dbx_err rc;

	rc = dbx_tree_resolve(path, node);
	if (rc != DBX_OK)
		return dbx_error_set(err, rc, "no such file");
	if (node->kind == DBX_NODE_CATALOGUE)
		return catalogue_writable(fs, node, err);
	if (node->kind == DBX_NODE_CONTROL_FILE)
		return dbx_error_set(err, DBX_EACCES, "%s is read-only",
				     dbx_control_file_name((size_t)node->attr));
	if (node->kind != DBX_NODE_ORDER_FILE)
		return dbx_error_set(err, DBX_EINVAL, "is a directory");
	/* Not EROFS: root passes default_permissions, and the file's mode says 0444. */
	if (!dbx_attrs[node->attr].store)
		return dbx_error_set(err, DBX_EACCES, "%s is read-only",
				     dbx_attrs[node->attr].name);
	if (!fs->update)
		return dbx_error_set(err, DBX_EROFS, "%s: this mount does not write",
				     dbx_attrs[node->attr].name);
	return DBX_OK;
}

enum dbx_err dbx_fs_open_file(struct dbx_fs *fs, const char *path, char **buf, size_t *len,
			      uint64_t *ino, struct dbx_error *err)
{
	struct dbx_node node;
	enum dbx_err rc;

	*buf = NULL;
	*len = 0;
	*ino = 0;
	rc = dbx_tree_resolve(path, &node);
	if (rc != DBX_OK)
		return dbx_error_set(err, rc, "no such file");
	if (node.kind == DBX_NODE_CATALOGUE)
		return catalogue_open(fs, path, buf, len, ino, err);
	if (is_control(&node))
		return control_open(fs, &node, buf, len, ino, err);
	if (node.kind != DBX_NODE_ORDER_FILE)
		return dbx_error_set(err, DBX_EINVAL, "is a directory");
	return file_state(fs, &node, NULL, buf, len, ino, err);
}

enum dbx_err dbx_fs_open(struct dbx_fs *fs, const char *path, char **buf, size_t *len,
			 struct dbx_error *err)
{
	uint64_t ino;

	return dbx_fs_open_file(fs, path, buf, len, &ino, err);
}

enum dbx_err dbx_fs_read_file(struct dbx_fs *fs, const char *path, char *out, size_t size,
			      off_t off, size_t *n, struct dbx_error *err)
{
	struct dbx_order_view view;
	struct dbx_node node;
	char *buf = NULL;
	size_t len = 0;
	uint64_t ino = 0;
	bool fresh;
	enum dbx_err rc;

	*n = 0;
	if (off < 0)
		return dbx_error_set(err, DBX_EINVAL, "negative offset");
	rc = dbx_tree_resolve(path, &node);
	if (rc != DBX_OK)
		return dbx_error_set(err, rc, "no such file");
	if (node.kind == DBX_NODE_CATALOGUE) {
		rc = catalogue_open(fs, path, &buf, &len, &ino, err);
		if (rc == DBX_OK && (size_t)off < len) {
			*n = size < len - (size_t)off ? size : len - (size_t)off;
			memcpy(out, buf + off, *n);
		}
		free(buf);
		return rc;
	}
	if (node.kind != DBX_NODE_ORDER_FILE && node.kind != DBX_NODE_CONTROL_FILE)
		return dbx_error_set(err, DBX_EINVAL, "is a directory");
	if (node.kind == DBX_NODE_CONTROL_FILE) {
		ino = dbx_control_ino((size_t)node.attr);
	} else {
		dbx_cache_peek(fs->cache, node.subscription, node.resource_group, node.order, &view,
			       &fresh);
		if (view.ino)
			ino = dbx_ino_file(view.ino, (size_t)node.attr);
		dbx_order_view_release(&view);
	}
	if (ino && fs->kview && dbx_kview_read(fs->kview, ino, out, size, (uint64_t)off, n))
		return DBX_OK;
	if (node.kind == DBX_NODE_CONTROL_FILE)
		rc = control_open(fs, &node, &buf, &len, &ino, err);
	else
		rc = file_state(fs, &node, NULL, &buf, &len, &ino, err);
	if (rc != DBX_OK)
		return rc;
	if (fs->kview)
		dbx_kview_note(fs->kview, ino, buf, len);
	if ((size_t)off < len) {
		*n = size < len - (size_t)off ? size : len - (size_t)off;
		memcpy(out, buf + off, *n);
	}
	free(buf);
	return DBX_OK;
}

void dbx_fs_kernel_check(struct dbx_fs *fs, const char *sub, const char *rg, const char *name,
			 void (*stale)(void *ctx, const char *path), void *ctx)
{
	char path[4 * DBX_TREE_NAME_MAX];
	struct dbx_order_view view;
	bool fresh, gone;

	if (!fs->kview)
		return;
	dbx_cache_peek(fs->cache, sub, rg, name, &view, &fresh);
	gone = view.rc == DBX_ENOTFOUND;
	for (size_t i = 0; view.ino && i < dbx_attrs_len; i++) {
		uint64_t ino = dbx_ino_file(view.ino, i);
		char *text = NULL;
		size_t n = 0;
		time_t mtime;
		struct dbx_error ignored = {0};
		bool differs;

		if (!dbx_kview_known(fs->kview, ino))
			continue;
		if (showable(&view, i) && render(&view, i, &text, &n, &mtime, &ignored) == DBX_OK) {
			differs = dbx_kview_note(fs->kview, ino, text, n);
		} else {
			dbx_kview_forget(fs->kview, ino);
			differs = true;
		}
		free(text);
		if (differs) {
			order_path(path, sizeof(path), sub, rg, name, (int)i);
			stale(ctx, path);
		}
	}
	dbx_order_view_release(&view);
	if (gone) {
		order_path(path, sizeof(path), sub, rg, name, -1);
		stale(ctx, path);
	}
}

/*
 * Run the row's store() on value against the order's cached state. When
 * the decision leaned on that state (a no-op, or encryption.json fields
 * dropped as unchanged) and the state is older than the TTL, read the order
 * again and decide once more, so "same as now" is never judged on stale
 * state. Only that case sends a request (a GET to ARM); a value that fails
 * validation sends none.
 */
static enum dbx_err parse_value(struct dbx_fs *fs, const struct dbx_node *node, const char *value,
				size_t len, struct dbx_attr_write *w, struct dbx_error *err)
{
	const struct dbx_attr *a = &dbx_attrs[node->attr];
	struct dbx_order_view view;
	struct dbx_attr_ctx ctx = {.write = w};
	bool fresh = false;
	enum dbx_err rc;

	dbx_cache_peek(fs->cache, node->subscription, node->resource_group, node->order, &view,
		       &fresh);
	if (view.rc == DBX_OK && view.order && view.order->has_details)
		ctx.order = view.order;
	rc = a->store(&ctx, value, len, err);
	if (rc != DBX_OK || !w->used_current || fresh)
		goto out;
	dbx_order_view_release(&view);
	rc = dbx_cache_order(fs->cache, node->subscription, node->resource_group, node->order,
			     &view, err);
	if (rc != DBX_OK)
		goto out;
	ctx.order = view.order && view.order->has_details ? view.order : NULL;
	rc = a->store(&ctx, value, len, err);
out:
	dbx_order_view_release(&view);
	return rc;
}

/*
 * Whether order shows change (ctx): writing it now would send nothing, by
 * the merge the write itself makes. A key the order does not have yet (its
 * vault is then unknown) is not there.
 */
static bool shows_change(const struct dbx_order *order, const void *ctx)
{
	const struct dbx_encryption_change *change = ctx;
	const char *vault_id = NULL;
	struct dbx_order *want = NULL;
	struct dbx_error ignored = {0};
	unsigned what = 0;
	bool shown;

	if (!order || !order->has_details)
		return false;
	if (change->has_key_url && !change->key_url_null) {
		if (order->kek_type != DBX_KEK_CUSTOMER || !order->kek_url ||
		    strcasecmp(order->kek_url, change->key_url.url) != 0 || !order->kek_vault_id ||
		    !*order->kek_vault_id)
			return false;
		vault_id = order->kek_vault_id;
	}
	shown = dbx_update_merge(order, change, vault_id, &want, &what, &ignored) == DBX_OK &&
		what == 0;
	dbx_order_free(want);
	return shown;
}

/*
 * ---- The operation file and the audit trail ----
 *
 * While a write runs, apply_value() keeps what it is doing in the order's
 * operation file (docs/formats.md, "The operation file"): the file and
 * value, the PATCH body, when it was sent, polls so far and when the next
 * is due, the preflight's notices. Each step replaces the whole text in the
 * cache (dbx_cache_set_operation), so a reader gets one snapshot whose
 * size is exact. Cleared when the write ends; after a dry run it says what
 * would have been sent, until the next write to the order.
 */
struct op_watch {
	struct dbx_fs *fs;
	const struct dbx_node *node;
	const struct dbx_clock *clock; /* the write's (wall time for sent and next_poll) */
	const char *file;
	char value[DBX_FS_WRITE_MAX / 16]; /* one-line files: the value written, trimmed */
	char *body;			   /* the PATCH body, malloc'd, once known */
	time_t sent;			   /* when the PATCH went out, 0 before */
	bool accepted;			   /* ARM accepted the PATCH */
	unsigned polls;
	time_t next_poll; /* 0: none due */
	const char *notes;
	struct dbx_order *before; /* the order as read just before the PATCH (audit), owned */
};

/* Copy value[0..len) trimmed into out, control characters as '?' (one line). */
static void one_line(char *out, size_t size, const char *value, size_t len)
{
	const char *v = value;
	size_t n = len, i;

	while (n && (*v == ' ' || *v == '\t' || *v == '\n' || *v == '\r'))
		v++, n--;
	while (n && (v[n - 1] == ' ' || v[n - 1] == '\t' || v[n - 1] == '\n' || v[n - 1] == '\r'))
		n--;
	for (i = 0; i < n && i + 1 < size; i++)
		out[i] = (unsigned char)v[i] < 0x20 || v[i] == 0x7f ? '?' : v[i];
	out[i < size ? i : size - 1] = '\0';
}

static time_t op_wall(const struct op_watch *ow)
{
	return ow->clock ? dbx_clock_wall(ow->clock) : dbx_fs_now(ow->fs);
}

/* Render ow as the operation file and hand it to the cache. */
static void op_publish(struct op_watch *ow)
{
	char sent[DBX_TIME_STR_MAX], next[DBX_TIME_STR_MAX];
	char *text = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&text, &size);

	if (!f)
		return;
	fprintf(f, "file: %s\n", ow->file);
	if (ow->value[0])
		fprintf(f, "value: %s\n", ow->value);
	fprintf(f, "state: %s\n",
		!ow->body		     ? "checking"
		: !ow->accepted		     ? "sending"
		: ow->polls || ow->next_poll ? "polling"
					     : "sent");
	if (ow->body)
		fprintf(f, "patch: %s\n", ow->body);
	if (ow->sent) {
		dbx_format_time(ow->sent, sent);
		fprintf(f, "sent: %s\npolls: %u\n", sent, ow->polls);
	}
	if (ow->next_poll) {
		dbx_format_time(ow->next_poll, next);
		fprintf(f, "next_poll: %s\n", next);
	}
	if (ow->notes && ow->notes[0])
		fprintf(f, "notice: %s\n", ow->notes);
	if (fclose(f) == 0)
		dbx_cache_set_operation(ow->fs->cache, ow->node->subscription,
					ow->node->resource_group, ow->node->order, text);
	free(text);
}

/* struct dbx_update_config's progress: the write moved on. */
static void op_progress(void *ctx, const struct dbx_update_progress *p)
{
	struct op_watch *ow = ctx;

	ow->notes = p->notes;
	switch (p->stage) {
	case DBX_UPDATE_SENDING:
		free(ow->body);
		ow->body = p->body ? strdup(p->body) : NULL;
		dbx_order_free(ow->before);
		ow->before = p->current ? dbx_order_dup(p->current) : NULL;
		ow->sent = op_wall(ow);
		ow->accepted = false;
		ow->polls = 0;
		ow->next_poll = 0;
		break;
	case DBX_UPDATE_ARM:
		if (p->arm->accepted) {
			ow->accepted = true;
		} else {
			ow->polls = p->arm->polls;
			ow->next_poll = op_wall(ow) + (time_t)((p->arm->next_wait_ms + 999) / 1000);
		}
		break;
	case DBX_UPDATE_DRY_RUN:
		free(ow->body);
		ow->body = p->body ? strdup(p->body) : NULL;
		return; /* apply_value() shows it once the write is over */
	}
	op_publish(ow);
}

/* The text a dry run leaves in the operation file. */
static void op_dry_run(struct op_watch *ow)
{
	char *text = NULL;

	if (ow->body && asprintf(&text, "dry run: would PATCH %s\n", ow->body) < 0)
		text = NULL;
	dbx_cache_set_operation(ow->fs->cache, ow->node->subscription, ow->node->resource_group,
				ow->node->order, text);
	free(text);
}

/* Copy s into out, printable ASCII only (IDs from the wire go to syslog). */
static void printable(char *out, size_t size, const char *s)
{
	size_t i = 0;

	for (; s && *s && i + 1 < size; s++) {
		if ((unsigned char)*s > 0x20 && (unsigned char)*s < 0x7f)
			out[i++] = *s;
	}
	out[i] = '\0';
}

/*
 * The audit line of one applied change (docs/formats.md, "Audit trail"):
 * order ID, file, old -> new, the IDs of ARM's answer, the principal.
 * before and after are the order as read just before and after the write.
 */
static void audit(struct dbx_fs *fs, const struct dbx_node *node, size_t attr,
		  const struct dbx_order *before, const struct dbx_order *after,
		  const struct dbx_update_report *report)
{
	struct dbx_attr_ctx bctx = {.order = before}, actx = {.order = after};
	char *old = NULL, *new = NULL, rid[DBX_ERR_ID_MAX], cid[DBX_ERR_ID_MAX];
	size_t olen = 0, nlen = 0;
	char ov[1024], nv[1024];

	if (dbx_attr_show(attr, &bctx, &old, &olen) != DBX_OK ||
	    dbx_attr_show(attr, &actx, &new, &nlen) != DBX_OK)
		goto out;
	/* encryption.json spans lines: one line of it for the log. */
	one_line(ov, sizeof(ov), old, olen);
	one_line(nv, sizeof(nv), new, nlen);
	for (char *c = ov; *c; c++)
		if (*c == '?')
			*c = ' ';
	for (char *c = nv; *c; c++)
		if (*c == '?')
			*c = ' ';
	printable(rid, sizeof(rid), report->request_id);
	printable(cid, sizeof(cid), report->correlation_id);
	dbx_log_audit("audit: order=/subscriptions/%s/resourceGroups/%s/providers/"
		      "Microsoft.DataBox/jobs/%s file=%s old=\"%s\" -> new=\"%s\" "
		      "request_id=%s correlation_id=%s principal=\"%s\"",
		      node->subscription, node->resource_group, node->order, dbx_attrs[attr].name,
		      ov, nv, rid[0] ? rid : "-", cid[0] ? cid : "-",
		      fs->update->principal ? fs->update->principal : "unknown");
out:
	free(old);
	free(new);
}

/* Apply one whole value to node (an rw order file), as dbx_fs_write() says. */
static enum dbx_err apply_order_value(struct dbx_fs *fs, const struct dbx_node *node,
				      const char *value, size_t len, struct dbx_error *err)
{
	const char *name = dbx_attrs[node->attr].name;
	const struct dbx_update_config *u = fs->update;
	const struct dbx_clock *clock = u->arm ? dbx_arm_clock(u->arm) : NULL;
	struct dbx_update_config rest = *u;
	struct dbx_attr_write w = {.cloud = u->cloud};
	struct dbx_update_report report = {0};
	struct op_watch ow = {.fs = fs, .node = node, .file = name};
	struct dbx_order *result = NULL;
	struct dbx_error e = {0};
	uint64_t started = clock ? dbx_clock_now_ms(clock) : 0, waited;
	bool locked;
	enum dbx_err rc;

	rc = dbx_cache_write_lock(fs->cache, node->subscription, node->resource_group, node->order,
				  u->timeout_ms, u->interrupted, u->interrupted_ctx, &e);
	locked = rc == DBX_OK;
	/* -o timeout bounds the whole write: the wait for the lock counts. */
	if (rc == DBX_OK && clock && u->timeout_ms) {
		waited = dbx_clock_now_ms(clock) - started;
		if (waited >= u->timeout_ms)
			rc = dbx_error_set(&e, DBX_ETIMEDOUT,
					   "another write to this order did not finish within the "
					   "timeout; nothing was sent");
		else
			rest.timeout_ms = u->timeout_ms - waited;
	}
	if (rc == DBX_OK)
		rc = parse_value(fs, node, value, len, &w, &e);
	if (rc == DBX_OK && w.noop) {
		dbx_log(DBX_LOG_DEBUG, "%s/%s/%s/%s: the current value; nothing sent",
			node->subscription, node->resource_group, node->order, name);
	} else if (rc == DBX_OK) {
		ow.clock = clock;
		if (!dbx_attrs[node->attr].json_object)
			one_line(ow.value, sizeof(ow.value), value, len);
		rest.progress = op_progress;
		rest.progress_ctx = &ow;
		op_publish(&ow);
		rc = dbx_update_apply(&rest, node->subscription, node->resource_group, node->order,
				      &w.change, &result, &report, &e);
		if (rc == DBX_OK && report.dry_run)
			op_dry_run(&ow);
		else
			dbx_cache_set_operation(fs->cache, node->subscription, node->resource_group,
						node->order, NULL);
		if (rc == DBX_OK && report.patched && result && ow.before)
			audit(fs, node, (size_t)node->attr, ow.before, result, &report);
	}
	if (rc == DBX_OK && result) {
		/* The write is done even if the cache cannot take the result: it refreshes later.
		 */
		if (dbx_cache_put_order(fs->cache, node->subscription, node->resource_group,
					node->order, result) != DBX_OK)
			dbx_log(DBX_LOG_WARN, "%s/%s/%s: out of memory caching the written order",
				node->subscription, node->resource_group, node->order);
		result = NULL;
	}
	if (rc == DBX_OK && report.notes[0]) {
		/*
		 * Applied, but some preflight checks could not be made with the
		 * mount's credential (403): docs/formats.md, "Validation" says they are noted in
		 * errors. The note is a last-write block with err DBX_OK, so the
		 * next write replaces it like any other.
		 */
		dbx_log(DBX_LOG_INFO, "%s/%s/%s/%s: written; preflight notes: %s",
			node->subscription, node->resource_group, node->order, name, report.notes);
		dbx_error_set(&e, DBX_OK, "%s", report.notes);
	}
	if (rc != DBX_OK)
		e.err = rc;
	dbx_cache_write_result(fs->cache, node->subscription, node->resource_group, node->order,
			       name, rc != DBX_OK || report.notes[0] ? &e : NULL);
	/* Timed out after ARM took the PATCH: a later read that shows the change clears it. */
	if (rc == DBX_ETIMEDOUT && report.patched)
		dbx_cache_write_may_land(fs->cache, node->subscription, node->resource_group,
					 node->order, shows_change, &w.change, sizeof(w.change));
	if (locked)
		dbx_cache_write_unlock(fs->cache, node->subscription, node->resource_group,
				       node->order);
	dbx_order_free(result);
	free(ow.body);
	dbx_order_free(ow.before);
	if (rc != DBX_OK && err)
		*err = e;
	return rc;
}

/* Apply one whole value to node: an order file's, or a catalogue control file's. */
static enum dbx_err apply_value(struct dbx_fs *fs, const struct dbx_node *node, const char *value,
				size_t len, struct dbx_error *err)
{
	if (node->kind == DBX_NODE_CATALOGUE)
		return dbx_catalogue_write(fs->catalogue, node->path, value, len, err);
	return apply_order_value(fs, node, value, len, err);
}

enum dbx_err dbx_fs_write(struct dbx_fs *fs, const char *path, const char *value, size_t len,
			  struct dbx_error *err)
{
	struct dbx_node node;
	enum dbx_err rc;

	rc = resolve_writable(fs, path, &node, err);
	if (rc != DBX_OK)
		return rc;
	return apply_value(fs, &node, value, len, err);
}

enum dbx_err dbx_fs_truncate(struct dbx_fs *fs, const char *path, off_t size, struct dbx_error *err)
{
	struct dbx_node node;
	enum dbx_err rc;

	rc = resolve_writable(fs, path, &node, err);
	if (rc != DBX_OK)
		return rc;
	if (size != 0)
		return dbx_error_set(err, DBX_EINVAL,
				     "%s: only truncation to 0 (as `echo v > file` does) is "
				     "supported; write the whole value",
				     node_name(&node));
	return DBX_OK;
}

/*
 * ---- The writer: how write(2), close(2) and fsync(2) become one apply ----
 *
 * A file holds one value, and one open writes one value (sysfs). The bytes
 * of an open are collected in order: each write(2) must continue exactly
 * where the previous one ended (offset == bytes so far, else EINVAL; O_APPEND
 * opens just append), up to DBX_FS_WRITE_MAX bytes (EFBIG).
 *
 * The value is applied exactly once, whole:
 *   - when the bytes so far end with "\n" (for encryption.json: "\n" after
 *     the closing brace of the object), it is applied inside that write(2),
 *     which returns the result. `echo`, `tee`, `cat > f`, and `cp` or `dd`
 *     of a file ending in a newline therefore get the real errno from write,
 *     and their exit status tells the truth;
 *   - otherwise (printf 'v', cp of a file without a trailing newline, the
 *     chunks of dd bs=8 before the last) the bytes wait, and the value is
 *     applied at flush, i.e. close(2), which returns the result (cp and dd
 *     check close), or at fsync(2) (vim), whichever comes first.
 * After the apply, success or not, any further write on that open is EINVAL:
 * open the file again to write another value. A write refused after some
 * bytes were buffered (a hole, the cap) refuses the whole value: close
 * applies nothing and later writes are EINVAL until truncation to 0. A
 * chunked value is therefore applied once, complete, or refused; never a
 * prefix of it. A close with
 * nothing written (the shell's extra descriptor, `: > f`) applies nothing,
 * and truncation to 0 (O_TRUNC, truncate -s 0) does nothing either.
 */

/* Whether buf[0..len) is a complete value for file attr (see above). */
static bool value_complete(int attr, const char *buf, size_t len)
{
	struct dbx_json_scan scan;

	if (!len || buf[len - 1] != '\n')
		return false;
	if (attr < 0 || !dbx_attrs[attr].json_object)
		return true;
	/* A JSON object spans lines: complete once its braces balance (outside strings). */
	dbx_json_scan_init(&scan, buf, len);
	dbx_json_scan_to_end(&scan);
	if (scan.first < len && buf[scan.first] != '{')
		return true; /* not an object: refused as soon as the line ends */
	return scan.first < len && scan.depth <= 0;
}

enum dbx_err dbx_fs_writer_open(struct dbx_fs *fs, const char *path, bool append,
				struct dbx_fs_writer *w, struct dbx_error *err)
{
	memset(w, 0, sizeof(*w));
	w->append = append;
	return resolve_writable(fs, path, &w->node, err);
}

/*
 * Dup'd descriptors share one open: their write(2)s and closes can reach
 * the writer from several FUSE threads at once. This lock guards every
 * writer's fields; it is never held across an apply (which may take the
 * whole timeout), since claim() hands the bytes over under it first.
 */
static pthread_mutex_t writer_lock = PTHREAD_MUTEX_INITIALIZER;

/* Mark w applied and take its bytes: only one caller ever gets them. writer_lock held. */
static void claim(struct dbx_fs_writer *w, char **buf, size_t *len)
{
	w->applied = true;
	*buf = w->buf;
	*len = w->len;
	w->buf = NULL;
}

/* Apply the claimed value, then forget the bytes. */
static enum dbx_err writer_apply(struct dbx_fs *fs, struct dbx_fs_writer *w, char *buf, size_t len,
				 struct dbx_error *err)
{
	enum dbx_err rc;

	rc = apply_value(fs, &w->node, buf, len, err);
	free(buf);
	return rc;
}

/* Buffer one write(2); claim the value when it is complete. writer_lock held. */
static enum dbx_err writer_add(struct dbx_fs_writer *w, const char *data, size_t size, off_t off,
			       char **buf, size_t *len, struct dbx_error *err)
{
	const char *name = node_name(&w->node);
	char *grown;

	if (w->applied || w->refused)
		return dbx_error_set(
		    err, DBX_EINVAL,
		    "%s: this open already applied (or had refused) its value; one "
		    "value per open (open the file again to write another)",
		    name);
	if (!w->append && (off < 0 || (uint64_t)off != w->len)) {
		/* What is buffered is only part of the value: never apply it. */
		w->refused = w->len > 0;
		return dbx_error_set(err, DBX_EINVAL,
				     "%s: write at offset %lld after %zu bytes; a value must be "
				     "written in one piece from offset 0",
				     name, (long long)off, w->len);
	}
	if (size > DBX_FS_WRITE_MAX - w->len) {
		w->refused = w->len > 0;
		return dbx_error_set(err, DBX_EFBIG, "%s: a value is at most %u bytes", name,
				     DBX_FS_WRITE_MAX);
	}
	if (size) {
		grown = realloc(w->buf, w->len + size);
		if (!grown)
			return dbx_error_set(err, DBX_ENOMEM, "out of memory");
		w->buf = grown;
		memcpy(w->buf + w->len, data, size);
		w->len += size;
	}
	if (value_complete(w->node.attr, w->buf, w->len))
		claim(w, buf, len);
	return DBX_OK;
}

enum dbx_err dbx_fs_writer_write(struct dbx_fs *fs, struct dbx_fs_writer *w, const char *data,
				 size_t size, off_t off, struct dbx_error *err)
{
	char *buf = NULL;
	size_t len = 0;
	enum dbx_err rc;

	pthread_mutex_lock(&writer_lock);
	rc = writer_add(w, data, size, off, &buf, &len, err);
	pthread_mutex_unlock(&writer_lock);
	if (rc != DBX_OK || !buf)
		return rc;
	return writer_apply(fs, w, buf, len, err);
}

enum dbx_err dbx_fs_writer_flush(struct dbx_fs *fs, struct dbx_fs_writer *w, struct dbx_error *err)
{
	char *buf = NULL;
	size_t len = 0;

	pthread_mutex_lock(&writer_lock);
	if (!w->applied && !w->refused && w->len > 0)
		claim(w, &buf, &len);
	pthread_mutex_unlock(&writer_lock);
	if (!buf)
		return DBX_OK;
	return writer_apply(fs, w, buf, len, err);
}

enum dbx_err dbx_fs_writer_truncate(struct dbx_fs_writer *w, off_t size, struct dbx_error *err)
{
	if (size != 0)
		return dbx_error_set(err, DBX_EINVAL,
				     "%s: only truncation to 0 is supported; write the whole value",
				     node_name(&w->node));
	pthread_mutex_lock(&writer_lock);
	if (!w->applied) {
		free(w->buf);
		w->buf = NULL;
		w->len = 0;
		w->refused = false;
	}
	pthread_mutex_unlock(&writer_lock);
	return DBX_OK;
}

bool dbx_fs_writer_pending(const struct dbx_fs_writer *w)
{
	bool pending;

	pthread_mutex_lock(&writer_lock);
	pending = !w->applied && !w->refused && w->len > 0;
	pthread_mutex_unlock(&writer_lock);
	return pending;
}

/* The writers' turns of the mount, created on first use (like the scratch store). */
static struct dbx_admit *fs_admit(struct dbx_fs *fs)
{
	const struct dbx_update_config *u = fs->update;
	const struct dbx_clock *clock = u->clock ? u->clock : u->arm ? dbx_arm_clock(u->arm) : NULL;
	struct dbx_admit *a;

	if (!clock)
		return NULL;
	pthread_mutex_lock(&parts_lock);
	if (!fs->admit)
		fs->admit = dbx_admit_new(clock);
	a = fs->admit;
	pthread_mutex_unlock(&parts_lock);
	return a;
}

enum dbx_err dbx_fs_writer_admit(struct dbx_fs *fs, struct dbx_fs_writer *w, struct dbx_error *err)
{
	const struct dbx_update_config *u = fs->update;
	struct dbx_admit *a = fs_admit(fs);
	struct dbx_error e = {0};
	enum dbx_err rc;

	if (w->node.kind == DBX_NODE_CATALOGUE)
		return DBX_OK; /* a control file: no order, no turn to wait for */
	if (!a)
		rc = dbx_error_set(&e, DBX_ENOMEM, "out of memory");
	else
		rc = dbx_admit_enter(a, &w->node, u->timeout_ms, u->interrupted, u->interrupted_ctx,
				     &w->turn, &e);
	if (rc == DBX_OK)
		return DBX_OK;
	e.err = rc;
	dbx_cache_write_result(fs->cache, w->node.subscription, w->node.resource_group,
			       w->node.order, dbx_attrs[w->node.attr].name, &e);
	if (err)
		*err = e;
	return rc;
}

void dbx_fs_writer_leave(struct dbx_fs *fs, struct dbx_fs_writer *w)
{
	if (w->turn)
		dbx_admit_leave(fs->admit, w->turn);
	w->turn = NULL;
}

void dbx_fs_writer_close(struct dbx_fs_writer *w)
{
	free(w->buf);
	w->buf = NULL;
	w->len = 0;
}

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0) /* linux/fs.h */
#endif

static bool same_order(const struct dbx_node *a, const struct dbx_node *b)
{
	return !strcmp(a->subscription, b->subscription) &&
	       !strcmp(a->resource_group, b->resource_group) && !strcmp(a->order, b->order);
}

enum dbx_err dbx_fs_rename(struct dbx_fs *fs, const char *from, const char *to, unsigned int flags,
			   struct dbx_error *err)
{
	struct dbx_scratch *s = dbx_fs_scratch(fs);
	bool no_replace = (flags & RENAME_NOREPLACE) != 0;
	struct dbx_node fdir, tdir, tnode;
	char fname[DBX_TREE_NAME_MAX], tname[DBX_TREE_NAME_MAX];
	struct dbx_scratch_stat ss;
	char *buf = NULL;
	size_t len = 0;
	enum dbx_err rc;

	if (!s)
		return dbx_error_set(err, DBX_EROFS, "not supported through this mount");
	if (flags & ~(unsigned int)RENAME_NOREPLACE)
		return dbx_error_set(err, DBX_EINVAL, "only RENAME_NOREPLACE is supported");
	if (dbx_tree_resolve(from, &fdir) == DBX_OK) {
		if (fdir.kind == DBX_NODE_ORDER_FILE ||
		    (fdir.kind == DBX_NODE_CATALOGUE && dbx_catalogue_writable(from)))
			return dbx_error_set(
			    err, DBX_EPERM,
			    "an attribute file cannot be renamed; write it in place");
		return dbx_error_set(err, DBX_EROFS, "not supported through this mount");
	}
	if (!dbx_scratch_name(from, &fdir, fname) ||
	    dbx_scratch_stat(s, &fdir, fname, &ss) != DBX_OK)
		return dbx_error_set(err, DBX_ENOTFOUND, "no such file");
	if (dbx_tree_resolve(to, &tnode) == DBX_OK) {
		if (tnode.kind != DBX_NODE_ORDER_FILE || !same_order(&fdir, &tnode))
			return dbx_error_set(err, DBX_EXDEV,
					     "temporary files stay in their order directory");
		if (no_replace)
			return dbx_error_set(err, DBX_EEXIST, "the file exists");
		if (!dbx_attrs[tnode.attr].store)
			return dbx_error_set(err, DBX_EACCES, "%s is read-only",
					     dbx_attrs[tnode.attr].name);
		rc = dbx_scratch_take(s, &fdir, fname, &buf, &len);
		if (rc != DBX_OK)
			return dbx_error_set(err, rc, "cannot read the temporary file");
		rc = dbx_fs_write(fs, to, buf, len, err);
		free(buf);
		if (rc != DBX_OK)
			return rc;
		/* Applied: the temporary file is gone, as after any rename. */
		if (dbx_scratch_unlink(s, &fdir, fname) != DBX_OK)
			dbx_log(DBX_LOG_DEBUG, "%s: already removed while it was applied", from);
		return DBX_OK;
	}
	if (!dbx_scratch_name(to, &tdir, tname) || !same_order(&fdir, &tdir))
		return dbx_error_set(err, DBX_EXDEV,
				     "temporary files stay in their order directory");
	rc = dbx_scratch_rename(s, &fdir, fname, tname, no_replace);
	if (rc != DBX_OK)
		return dbx_error_set(err, rc, "cannot rename the temporary file");
	return DBX_OK;
}
