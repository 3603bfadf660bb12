/*
 * fs.c: getattr, readdir, open and write as plain functions (fs.h).
 *
 * A file's st_size is the length of the very bytes open() would render
 * from the same snapshot, so tar, rsync and cp never see a short or padded
 * file. mtime is the order's (stable while its state is unchanged); the
 * errors file moves to the time of a failed refresh while it shows one.
 * When the latest refresh of an order failed, every file but errors fails
 * with that error: nothing stale is shown as if live.
 */
#include <stdlib.h>
#include <string.h>

#include "attrs.h"
#include "fs.h"
#include "tree.h"

static int errors_attr(void)
{
	return dbx_attr_find("errors");
}

static void fill_dir(struct dbx_fs *fs, struct stat *st, uint64_t ino, time_t mtime)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_mode = S_IFDIR | 0555;
	st->st_nlink = 2;
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
	st->st_mode = S_IFREG | dbx_attrs[attr].mode;
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
	return view->rc == DBX_OK || (view->rc != DBX_ENOTFOUND && (int)attr == errors_attr());
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
	rc = dbx_attr_show(attr, &ctx, buf, len);
	if (rc != DBX_OK)
		return dbx_error_set(err, rc, "%s: cannot render", dbx_attrs[attr].name);
	return DBX_OK;
}

/* The file node: the order's view, rendered. Fills st when not NULL, *buf when buf not NULL. */
static enum dbx_err file_state(struct dbx_fs *fs, const struct dbx_node *node, struct stat *st,
			       char **buf, size_t *len, struct dbx_error *err)
{
	struct dbx_order_view view;
	char *text = NULL;
	size_t n = 0;
	time_t mtime;
	enum dbx_err rc;

	rc = dbx_cache_order(fs->cache, node->subscription, node->resource_group, node->order,
			     &view, err);
	if (!showable(&view, (size_t)node->attr))
		goto out;
	rc = render(&view, (size_t)node->attr, &text, &n, &mtime, err);
	if (rc != DBX_OK)
		goto out;
	if (st)
		fill_file(fs, st, dbx_ino_file(view.ino, (size_t)node->attr), (size_t)node->attr, n,
			  mtime);
	if (buf) {
		*buf = text;
		*len = n;
		text = NULL;
	}
out:
	free(text);
	dbx_order_view_release(&view);
	return rc;
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
		return dbx_error_set(err, rc, "no such file");
	if (node.kind == DBX_NODE_ORDER_FILE)
		return file_state(fs, &node, st, NULL, NULL, err);
	rc = dbx_cache_lookup(fs->cache,
			      node.kind >= DBX_NODE_SUBSCRIPTION ? node.subscription : NULL,
			      node.kind >= DBX_NODE_RESOURCE_GROUP ? node.resource_group : NULL,
			      node.kind >= DBX_NODE_ORDER ? node.order : NULL, &ino, &mtime, err);
	if (rc != DBX_OK)
		return rc;
	fill_dir(fs, st, ino, mtime);
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
				break;
			continue;
		}
		rc = render(&view, i, &text, &n, &mtime, err);
		if (rc != DBX_OK)
			break;
		free(text);
		fill_file(fs, &st, dbx_ino_file(view.ino, i), i, n, mtime);
		if (fill(ctx, dbx_attrs[i].name, &st))
			break;
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
		fill_dir(fs, &st, list.v[i].ino, list.v[i].mtime);
		if (fill(ctx, list.v[i].name, &st))
			break;
	}
	dbx_dirlist_free(&list);
	return DBX_OK;
}

enum dbx_err dbx_fs_open(struct dbx_fs *fs, const char *path, bool for_write, char **buf,
			 size_t *len, struct dbx_error *err)
{
	struct dbx_node node;
	enum dbx_err rc;

	*buf = NULL;
	*len = 0;
	rc = dbx_tree_resolve(path, &node);
	if (rc != DBX_OK)
		return dbx_error_set(err, rc, "no such file");
	if (node.kind != DBX_NODE_ORDER_FILE)
		return dbx_error_set(err, DBX_EINVAL, "is a directory");
	if (for_write)
		return dbx_error_set(err, DBX_EROFS, "%s: writes are not enabled in this version",
				     dbx_attrs[node.attr].name);
	return file_state(fs, &node, NULL, buf, len, err);
}

enum dbx_err dbx_fs_write(struct dbx_fs *fs, const char *path, const char *value, size_t len,
			  struct dbx_error *err)
{
	struct dbx_attr_ctx ctx = {0};
	struct dbx_node node;
	enum dbx_err rc;

	rc = dbx_tree_resolve(path, &node);
	if (rc != DBX_OK)
		return dbx_error_set(err, rc, "no such file");
	if (node.kind != DBX_NODE_ORDER_FILE)
		return dbx_error_set(err, DBX_EINVAL, "is a directory");
	if (!dbx_attrs[node.attr].store)
		return dbx_error_set(err, DBX_EROFS, "%s is read-only", dbx_attrs[node.attr].name);
	return dbx_attrs[node.attr].store(&ctx, value, len, err);
}
