/*
 * scratch.c: the in-memory temporary files of order directories (scratch.h).
 *
 * One store per mount: a list of files, each keyed by its order
 * (subscription, resource group, order) and name, with its bytes, mode and
 * mtime. Every call takes the store's mutex for its whole run; nothing here
 * blocks on anything else. Inode numbers come from a counter with the top
 * bit set, apart from the ones cache.h hands out.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "attrs.h"
#include "scratch.h"

struct file {
	struct file *next;
	char sub[DBX_TREE_NAME_MAX];
	char rg[DBX_TREE_NAME_MAX];
	char order[DBX_TREE_NAME_MAX];
	char name[DBX_TREE_NAME_MAX];
	uint64_t ino;
	mode_t mode;
	time_t mtime;
	char *buf;
	size_t len;
};

struct dbx_scratch {
	pthread_mutex_t lock;
	struct file *head; /* creation order */
	uint64_t next_ino;
};

struct dbx_scratch *dbx_scratch_new(void)
{
	struct dbx_scratch *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	pthread_mutex_init(&s->lock, NULL);
	s->next_ino = 1;
	return s;
}

static void file_free(struct file *f)
{
	free(f->buf);
	free(f);
}

void dbx_scratch_free(struct dbx_scratch *s)
{
	struct file *f, *next;

	if (!s)
		return;
	for (f = s->head; f; f = next) {
		next = f->next;
		file_free(f);
	}
	pthread_mutex_destroy(&s->lock);
	free(s);
}

bool dbx_scratch_name(const char *path, struct dbx_node *dir, char name[DBX_TREE_NAME_MAX])
{
	char parent[4096];
	const char *slash = strrchr(path, '/');
	size_t plen, nlen;

	if (!slash || path[0] != '/')
		return false;
	nlen = strlen(slash + 1);
	if (nlen == 0 || nlen >= DBX_TREE_NAME_MAX || !strcmp(slash + 1, ".") ||
	    !strcmp(slash + 1, "..") || dbx_attr_find(slash + 1) >= 0)
		return false;
	plen = (size_t)(slash - path);
	if (plen == 0 || plen >= sizeof(parent))
		return false;
	memcpy(parent, path, plen);
	parent[plen] = '\0';
	if (dbx_tree_resolve(parent, dir) != DBX_OK || dir->kind != DBX_NODE_ORDER)
		return false;
	memcpy(name, slash + 1, nlen + 1);
	return true;
}

static bool in_dir(const struct file *f, const struct dbx_node *dir)
{
	return !strcmp(f->sub, dir->subscription) && !strcmp(f->rg, dir->resource_group) &&
	       !strcmp(f->order, dir->order);
}

/* The file name in dir, or NULL. Lock held. */
static struct file *find(struct dbx_scratch *s, const struct dbx_node *dir, const char *name)
{
	for (struct file *f = s->head; f; f = f->next)
		if (in_dir(f, dir) && !strcmp(f->name, name))
			return f;
	return NULL;
}

/* Unlink f from the list (does not free it). Lock held. */
static void detach(struct dbx_scratch *s, struct file *f)
{
	struct file **pp = &s->head;

	while (*pp && *pp != f)
		pp = &(*pp)->next;
	if (*pp)
		*pp = f->next;
}

/* Owner read-write always; group and other may read (0644) or not (0600). */
static mode_t clamp_mode(mode_t mode)
{
	return (mode & 044) ? 0644 : 0600;
}

enum dbx_err dbx_scratch_create(struct dbx_scratch *s, const struct dbx_node *dir, const char *name,
				mode_t mode, time_t now)
{
	struct file *f, **tail;
	size_t n = 0;
	enum dbx_err rc = DBX_OK;

	pthread_mutex_lock(&s->lock);
	if (find(s, dir, name)) {
		rc = DBX_EEXIST;
		goto out;
	}
	for (f = s->head; f; f = f->next)
		n += in_dir(f, dir);
	if (n >= DBX_SCRATCH_DIR_MAX) {
		rc = DBX_ENOSPC;
		goto out;
	}
	f = calloc(1, sizeof(*f));
	if (!f) {
		rc = DBX_ENOMEM;
		goto out;
	}
	strcpy(f->sub, dir->subscription);
	strcpy(f->rg, dir->resource_group);
	strcpy(f->order, dir->order);
	strcpy(f->name, name);
	f->ino = (UINT64_C(1) << 63) | s->next_ino++;
	f->mode = clamp_mode(mode);
	f->mtime = now;
	for (tail = &s->head; *tail; tail = &(*tail)->next)
		;
	*tail = f;
out:
	pthread_mutex_unlock(&s->lock);
	return rc;
}

enum dbx_err dbx_scratch_stat(struct dbx_scratch *s, const struct dbx_node *dir, const char *name,
			      struct dbx_scratch_stat *st)
{
	struct file *f;
	enum dbx_err rc = DBX_ENOTFOUND;

	pthread_mutex_lock(&s->lock);
	f = find(s, dir, name);
	if (f) {
		st->ino = f->ino;
		st->mode = f->mode;
		st->size = f->len;
		st->mtime = f->mtime;
		rc = DBX_OK;
	}
	pthread_mutex_unlock(&s->lock);
	return rc;
}

enum dbx_err dbx_scratch_read(struct dbx_scratch *s, const struct dbx_node *dir, const char *name,
			      char *buf, size_t size, off_t off, size_t *n)
{
	struct file *f;
	enum dbx_err rc = DBX_OK;

	*n = 0;
	if (off < 0)
		return DBX_EINVAL;
	pthread_mutex_lock(&s->lock);
	f = find(s, dir, name);
	if (!f) {
		rc = DBX_ENOTFOUND;
		goto out;
	}
	if ((uint64_t)off >= f->len)
		goto out;
	*n = f->len - (size_t)off < size ? f->len - (size_t)off : size;
	memcpy(buf, f->buf + off, *n);
out:
	pthread_mutex_unlock(&s->lock);
	return rc;
}

/* Make f exactly len bytes long, zero-filling growth. Lock held. */
static enum dbx_err resize(struct file *f, size_t len)
{
	char *grown;

	if (len > f->len) {
		grown = realloc(f->buf, len);
		if (!grown)
			return DBX_ENOMEM;
		memset(grown + f->len, 0, len - f->len);
		f->buf = grown;
	}
	f->len = len;
	return DBX_OK;
}

enum dbx_err dbx_scratch_write(struct dbx_scratch *s, const struct dbx_node *dir, const char *name,
			       const char *data, size_t size, off_t off, time_t now)
{
	struct file *f;
	enum dbx_err rc = DBX_OK;

	if (off < 0)
		return DBX_EINVAL;
	if ((uint64_t)off > DBX_SCRATCH_FILE_MAX || size > DBX_SCRATCH_FILE_MAX - (size_t)off)
		return DBX_EFBIG;
	pthread_mutex_lock(&s->lock);
	f = find(s, dir, name);
	if (!f) {
		rc = DBX_ENOTFOUND;
		goto out;
	}
	if ((size_t)off + size > f->len)
		rc = resize(f, (size_t)off + size);
	if (rc != DBX_OK)
		goto out;
	if (size)
		memcpy(f->buf + off, data, size);
	f->mtime = now;
out:
	pthread_mutex_unlock(&s->lock);
	return rc;
}

enum dbx_err dbx_scratch_truncate(struct dbx_scratch *s, const struct dbx_node *dir,
				  const char *name, off_t size, time_t now)
{
	struct file *f;
	enum dbx_err rc;

	if (size < 0)
		return DBX_EINVAL;
	if ((uint64_t)size > DBX_SCRATCH_FILE_MAX)
		return DBX_EFBIG;
	pthread_mutex_lock(&s->lock);
	f = find(s, dir, name);
	rc = f ? resize(f, (size_t)size) : DBX_ENOTFOUND;
	if (rc == DBX_OK)
		f->mtime = now;
	pthread_mutex_unlock(&s->lock);
	return rc;
}

enum dbx_err dbx_scratch_chmod(struct dbx_scratch *s, const struct dbx_node *dir, const char *name,
			       mode_t mode)
{
	struct file *f;

	pthread_mutex_lock(&s->lock);
	f = find(s, dir, name);
	if (f)
		f->mode = clamp_mode(mode);
	pthread_mutex_unlock(&s->lock);
	return f ? DBX_OK : DBX_ENOTFOUND;
}

enum dbx_err dbx_scratch_take(struct dbx_scratch *s, const struct dbx_node *dir, const char *name,
			      char **buf, size_t *len)
{
	struct file *f;
	enum dbx_err rc = DBX_OK;

	*buf = NULL;
	*len = 0;
	pthread_mutex_lock(&s->lock);
	f = find(s, dir, name);
	if (!f) {
		rc = DBX_ENOTFOUND;
		goto out;
	}
	*buf = malloc(f->len + 1);
	if (!*buf) {
		rc = DBX_ENOMEM;
		goto out;
	}
	if (f->len)
		memcpy(*buf, f->buf, f->len);
	(*buf)[f->len] = '\0';
	*len = f->len;
out:
	pthread_mutex_unlock(&s->lock);
	return rc;
}

enum dbx_err dbx_scratch_unlink(struct dbx_scratch *s, const struct dbx_node *dir, const char *name)
{
	struct file *f;

	pthread_mutex_lock(&s->lock);
	f = find(s, dir, name);
	if (f)
		detach(s, f);
	pthread_mutex_unlock(&s->lock);
	if (!f)
		return DBX_ENOTFOUND;
	file_free(f);
	return DBX_OK;
}

enum dbx_err dbx_scratch_rename(struct dbx_scratch *s, const struct dbx_node *dir, const char *from,
				const char *to, bool no_replace)
{
	struct file *f, *old = NULL;
	enum dbx_err rc = DBX_OK;

	pthread_mutex_lock(&s->lock);
	f = find(s, dir, from);
	if (!f) {
		rc = DBX_ENOTFOUND;
		goto out;
	}
	if (!strcmp(from, to))
		goto out;
	old = find(s, dir, to);
	if (old && no_replace) {
		old = NULL;
		rc = DBX_EEXIST;
		goto out;
	}
	if (old)
		detach(s, old);
	strcpy(f->name, to);
out:
	pthread_mutex_unlock(&s->lock);
	if (old)
		file_free(old);
	return rc;
}

void dbx_scratch_list(struct dbx_scratch *s, const struct dbx_node *dir, dbx_scratch_each_fn fn,
		      void *ctx)
{
	struct dbx_scratch_stat st;

	pthread_mutex_lock(&s->lock);
	for (struct file *f = s->head; f; f = f->next) {
		if (!in_dir(f, dir))
			continue;
		st.ino = f->ino;
		st.mode = f->mode;
		st.size = f->len;
		st.mtime = f->mtime;
		if (fn(ctx, f->name, &st))
			break;
	}
	pthread_mutex_unlock(&s->lock);
}
