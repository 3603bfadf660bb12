/*
 * kview.c: the per-inode record of what the kernel holds (kview.h).
 *
 * A chained hash table of small records keyed by inode number, under one
 * mutex. Files hold one short value, so a record keeps the bytes
 * themselves (at most DBX_FS_WRITE_MAX-sized, in practice under a page);
 * comparing versions is comparing bytes. Records live until the table is
 * freed: inode numbers are stable for the life of the mount (cache.h).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "kview.h"

#define NBUCKETS 4096

struct rec {
	struct rec *next;
	uint64_t ino;
	bool changed; /* a newer version replaced an older one since the last open */
	char *buf;    /* the version, len bytes (malloc'd; NULL when len is 0) */
	size_t len;
};

struct dbx_kview {
	pthread_mutex_t lock;
	struct rec *buckets[NBUCKETS];
};

struct dbx_kview *dbx_kview_new(void)
{
	struct dbx_kview *kv = calloc(1, sizeof(*kv));

	if (kv)
		pthread_mutex_init(&kv->lock, NULL);
	return kv;
}

void dbx_kview_free(struct dbx_kview *kv)
{
	if (!kv)
		return;
	for (size_t i = 0; i < NBUCKETS; i++) {
		struct rec *r = kv->buckets[i], *next;

		for (; r; r = next) {
			next = r->next;
			free(r->buf);
			free(r);
		}
	}
	pthread_mutex_destroy(&kv->lock);
	free(kv);
}

static struct rec **slot(struct dbx_kview *kv, uint64_t ino)
{
	struct rec **p = &kv->buckets[(ino ^ (ino >> 12)) % NBUCKETS];

	while (*p && (*p)->ino != ino)
		p = &(*p)->next;
	return p;
}

static bool same(const struct rec *r, const char *buf, size_t len)
{
	return r->len == len && (len == 0 || memcmp(r->buf, buf, len) == 0);
}

/* Unlink and free the record at *p. Lock held. */
static void drop(struct rec **p)
{
	struct rec *r = *p;

	*p = r->next;
	free(r->buf);
	free(r);
}

/*
 * Make *p (the slot for ino) hold version buf: *existed and *differs say
 * what it held. false when out of memory (the record is then gone). Lock held.
 */
static bool set(struct rec **p, uint64_t ino, const char *buf, size_t len, bool *existed,
		bool *differs)
{
	char *copy = NULL;

	*existed = *p != NULL;
	*differs = *p && !same(*p, buf, len);
	if (*p && !*differs)
		return true;
	if (len) {
		copy = malloc(len);
		if (!copy)
			goto oom;
		memcpy(copy, buf, len);
	}
	if (!*p) {
		*p = calloc(1, sizeof(**p));
		if (!*p)
			goto oom;
		(*p)->ino = ino;
	}
	free((*p)->buf);
	(*p)->buf = copy;
	(*p)->len = len;
	if (*differs)
		(*p)->changed = true;
	return true;
oom:
	free(copy);
	if (*p)
		drop(p);
	return false;
}

bool dbx_kview_note(struct dbx_kview *kv, uint64_t ino, const char *buf, size_t len)
{
	bool existed, differs;

	pthread_mutex_lock(&kv->lock);
	(void)set(slot(kv, ino), ino, buf, len, &existed, &differs);
	pthread_mutex_unlock(&kv->lock);
	return differs;
}

bool dbx_kview_opened(struct dbx_kview *kv, uint64_t ino, const char *buf, size_t len)
{
	struct rec **p;
	bool existed, differs, keep = false;

	pthread_mutex_lock(&kv->lock);
	p = slot(kv, ino);
	keep = *p && !(*p)->changed && same(*p, buf, len);
	if (set(p, ino, buf, len, &existed, &differs))
		(*p)->changed = false;
	pthread_mutex_unlock(&kv->lock);
	return keep;
}

void dbx_kview_forget(struct dbx_kview *kv, uint64_t ino)
{
	struct rec **p;

	pthread_mutex_lock(&kv->lock);
	p = slot(kv, ino);
	if (*p)
		drop(p);
	pthread_mutex_unlock(&kv->lock);
}

bool dbx_kview_read(struct dbx_kview *kv, uint64_t ino, char *out, size_t size, uint64_t off,
		    size_t *n)
{
	struct rec *r;

	*n = 0;
	pthread_mutex_lock(&kv->lock);
	r = *slot(kv, ino);
	if (r && off < r->len) {
		*n = size < r->len - off ? size : r->len - off;
		memcpy(out, r->buf + off, *n);
	}
	pthread_mutex_unlock(&kv->lock);
	return r != NULL;
}

bool dbx_kview_known(struct dbx_kview *kv, uint64_t ino)
{
	bool known;

	pthread_mutex_lock(&kv->lock);
	known = *slot(kv, ino) != NULL;
	pthread_mutex_unlock(&kv->lock);
	return known;
}
