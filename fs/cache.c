/*
 * cache.c: TTL, single flight and snapshots for cache.h.
 *
 * One mutex guards the whole cache; it is never held across a request to
 * ARM. Every object (the root listing, a subscription listing, an order) is
 * a struct entry with a "fetching" flag: the first reader that finds the
 * entry stale sets the flag, drops the lock, asks ARM, and publishes the
 * result; readers that arrive meanwhile wait on the cache's condition
 * variable and take that same result (generation counter), so N concurrent
 * misses make one request even with cache_ttl=0. Entries are interned by
 * their lower-cased key ("sub", "sub/rg", "sub/rg/order") and never freed
 * before the cache, which is what keeps inode numbers stable.
 *
 * A listing item that ARM sent malformed but named (struct dbx_order's
 * malformed) is listed like the others and marks only its own order entry
 * failed, as a failed GET would (mark_malformed): one bad order never
 * hides its resource group.
 *
 * Writes: an order entry also carries a write lock (a flag and a condition
 * variable, so a waiting writer can notice Ctrl-C and the timeout), the
 * last-write error for the errors file (and, for a write that may still
 * land, the check each refresh makes to clear it), and put_seq, which lets a write's
 * result win over a GET or a listing that was already in flight when the
 * write published it (the in-flight answer may predate the PATCH).
 */
#include <ctype.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attrs.h"
#include "cache.h"

#define NBUCKETS 1024

/* One line of a listing: a subscription (rg NULL) or an order. */
struct item {
	char *rg;
	char *name;
	uint64_t num; /* the interned number of the subscription or order */
	time_t mtime;
};

struct dbx_snap {
	int refs;
	struct dbx_order *order;
	time_t mtime;
	char *fingerprint; /* every file rendered, when the order has no lastModifiedAt */
};

struct entry {
	char *key;
	struct entry *next;
	uint64_t num;

	bool fetching;	 /* a refresh is in flight; others wait on cache->cond */
	uint64_t gen;	 /* bumped when a refresh finishes */
	enum dbx_err rc; /* the result of the latest refresh */
	struct dbx_error err;
	time_t err_time;
	uint64_t failed_ms; /* when the latest refresh failed, when rc says it did */

	/* listings (root, subscription) */
	bool has_listing;
	uint64_t listed_ms;
	struct item *items;
	size_t n_items;

	/* orders */
	bool fetched; /* rc/snap hold the result of a refresh made at fetched_ms */
	uint64_t fetched_ms;
	struct dbx_snap *snap;

	/* writes */
	bool writing;	  /* a write holds this order's write lock */
	uint64_t put_seq; /* cache->put_seq when a write last published this order, else 0 */
	bool has_write_err;
	struct dbx_error write_err;
	time_t write_err_time;
	char write_target[32];
	time_t write_changed; /* the errors file gained or lost its last-write block */
	/* The last-write error may still land: what asks a refresh whether it did. */
	dbx_cache_landed_fn landed;
	void *landed_ctx; /* malloc'd */
};

struct dbx_cache {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct dbx_arm *arm;
	const struct dbx_clock *clock;
	uint64_t ttl_ms;
	time_t started;
	bool static_root;
	struct entry root;
	struct entry *buckets[NBUCKETS];
	uint64_t next_num;
	unsigned waiters;	/* threads in wait_refresh() */
	unsigned write_waiters; /* threads waiting in dbx_cache_write_lock() */
	pthread_cond_t wcond;	/* write locks released (dbx_clock_cond_init: timed waits) */
	uint64_t put_seq;	/* bumped by every dbx_cache_put_order() */
	void (*on_change)(void *ctx, const char *sub, const char *rg, const char *name);
	void *on_change_ctx;
};

/* Tell the mount that what an order shows may have changed (cache.h, on_change). Lock held. */
static void changed(struct dbx_cache *c, const char *sub, const char *rg, const char *name)
{
	if (c->on_change)
		c->on_change(c->on_change_ctx, sub, rg, name);
}

static uint64_t now_ms(const struct dbx_cache *c)
{
	return dbx_clock_now_ms(c->clock);
}

/* UTC now on the cache's clock: mtimes of changed orders, times of errors. */
static time_t wall(const struct dbx_cache *c)
{
	return dbx_clock_wall(c->clock);
}

static bool within_ttl(const struct dbx_cache *c, uint64_t at_ms)
{
	return c->ttl_ms > 0 && now_ms(c) - at_ms < c->ttl_ms;
}

/*
 * Did e's latest refresh fail less than DBX_CACHE_FAIL_HOLD_MS ago? Then
 * that failure is the answer, whatever cache_ttl says: the other FUSE
 * requests of the system call that met it (a getattr, an open, a read)
 * must not each wait the timeout again (docs/formats.md, "Reads"). A
 * missing object and an interrupted refresh are not held.
 */
static bool failure_held(const struct dbx_cache *c, const struct entry *e)
{
	return e->rc != DBX_OK && e->rc != DBX_ENOTFOUND && e->rc != DBX_EINTR &&
	       now_ms(c) - e->failed_ms < DBX_CACHE_FAIL_HOLD_MS;
}

/* "a/b/c" lower-cased from up to three parts; NULL parts end the key. */
static char *make_key(const char *a, const char *b, const char *cc)
{
	size_t n = strlen(a) + (b ? strlen(b) + 1 : 0) + (b && cc ? strlen(cc) + 1 : 0);
	char *key = malloc(n + 1);
	char *p = key;

	if (!key)
		return NULL;
	for (const char *s = a; *s; s++)
		*p++ = (char)tolower((unsigned char)*s);
	if (b) {
		*p++ = '/';
		for (const char *s = b; *s; s++)
			*p++ = (char)tolower((unsigned char)*s);
		if (cc) {
			*p++ = '/';
			for (const char *s = cc; *s; s++)
				*p++ = (char)tolower((unsigned char)*s);
		}
	}
	*p = '\0';
	return key;
}

static size_t hash_key(const char *s)
{
	size_t h = 5381;

	for (; *s; s++)
		h = h * 33 + (unsigned char)*s;
	return h % NBUCKETS;
}

/* The entry for key (taken over on creation, else freed), or NULL on ENOMEM. Lock held. */
static struct entry *intern_key(struct dbx_cache *c, char *key)
{
	struct entry *e;
	size_t h;

	if (!key)
		return NULL;
	h = hash_key(key);
	for (e = c->buckets[h]; e; e = e->next) {
		if (strcmp(e->key, key) == 0) {
			free(key);
			return e;
		}
	}
	e = calloc(1, sizeof(*e));
	if (!e) {
		free(key);
		return NULL;
	}
	e->key = key;
	e->num = c->next_num++;
	e->next = c->buckets[h];
	c->buckets[h] = e;
	return e;
}

static struct entry *intern(struct dbx_cache *c, const char *a, const char *b, const char *cc)
{
	return intern_key(c, make_key(a, b, cc));
}

static uint64_t dir_ino(const struct entry *e)
{
	return e->num << DBX_INO_SHIFT;
}

/* Wait for some refresh to finish. Lock held. */
static void wait_refresh(struct dbx_cache *c)
{
	c->waiters++;
	pthread_cond_wait(&c->cond, &c->lock);
	c->waiters--;
}

unsigned dbx_cache_waiters(struct dbx_cache *c)
{
	unsigned n;

	pthread_mutex_lock(&c->lock);
	n = c->waiters;
	pthread_mutex_unlock(&c->lock);
	return n;
}

static void snap_put(struct dbx_snap *s)
{
	if (!s || __atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	dbx_order_free(s->order);
	free(s->fingerprint);
	free(s);
}

static struct dbx_snap *snap_get(struct dbx_snap *s)
{
	if (s)
		__atomic_add_fetch(&s->refs, 1, __ATOMIC_ACQ_REL);
	return s;
}

/* Every file of the order rendered and joined, to notice a change of state without lastModifiedAt.
 */
static char *fingerprint(const struct dbx_order *o)
{
	struct dbx_attr_ctx ctx = {.order = o};
	char *all = NULL;
	size_t n = 0;

	for (size_t i = 0; i < dbx_attrs_len; i++) {
		char *buf = NULL;
		size_t len = 0;
		char *grown;

		if (dbx_attr_show(i, &ctx, &buf, &len) != DBX_OK)
			goto fail;
		grown = realloc(all, n + len + 2);
		if (!grown) {
			free(buf);
			goto fail;
		}
		all = grown;
		memcpy(all + n, buf, len);
		n += len;
		all[n++] = '\0'; /* separator: no file holds a NUL */
		all[n] = '\0';
		free(buf);
	}
	return all;
fail:
	free(all);
	return NULL;
}

static bool same_fingerprint(const struct dbx_snap *old, const char *fp)
{
	size_t i = 0;

	if (!old || !old->fingerprint || !fp)
		return false;
	/* Compare dbx_attrs_len NUL-terminated strings. */
	for (size_t k = 0; k < dbx_attrs_len; k++) {
		size_t la = strlen(old->fingerprint + i), lb = strlen(fp + i);

		if (la != lb || memcmp(old->fingerprint + i, fp + i, la) != 0)
			return false;
		i += la + 1;
	}
	return true;
}

/*
 * Replace e's snapshot with order (taken over). mtime is lastModifiedAt, or
 * kept from the previous snapshot while every file renders the same, else
 * now. Lock held. DBX_ENOMEM frees order.
 */
static void forget_landed(struct entry *e)
{
	free(e->landed_ctx);
	e->landed_ctx = NULL;
	e->landed = NULL;
}

/*
 * e's order was just published: when its last-write error may still land
 * and this state shows the change, the write did land and the error goes
 * (dbx_cache_write_may_land). Lock held.
 */
static void settle_write(struct dbx_cache *c, struct entry *e)
{
	if (!e->landed || !e->has_write_err || !e->landed(e->snap->order, e->landed_ctx))
		return;
	e->has_write_err = false;
	dbx_error_clear(&e->write_err);
	e->write_changed = wall(c);
	forget_landed(e);
}

static enum dbx_err publish_order(struct dbx_cache *c, struct entry *e, struct dbx_order *order)
{
	struct dbx_snap *s = calloc(1, sizeof(*s));

	if (!s) {
		dbx_order_free(order);
		return DBX_ENOMEM;
	}
	s->refs = 1;
	s->order = order;
	if (order->mtime > 0) {
		s->mtime = order->mtime;
	} else {
		s->fingerprint = fingerprint(order);
		s->mtime = same_fingerprint(e->snap, s->fingerprint) ? e->snap->mtime : wall(c);
	}
	snap_put(e->snap);
	e->snap = s;
	e->fetched = true;
	e->fetched_ms = now_ms(c);
	e->rc = DBX_OK;
	dbx_error_clear(&e->err);
	settle_write(c, e);
	return DBX_OK;
}

/*
 * Record that the latest answer about e (a list item) was malformed: why
 * names the field (and carries the page's status and request id). Like a failed GET, it keeps the
 * old snapshot for the errors file only and counts as fetched now, so reads fail with DBX_EREMOTE
 * until the next good answer (a GET past the TTL, or a listing with the order's details) publishes
 * a snapshot again. The failure time stays put while the same failure repeats. Lock held.
 */
static void mark_malformed(struct dbx_cache *c, struct entry *e, const struct dbx_error *why)
{
	bool same = e->fetched && e->rc == DBX_EREMOTE && strcmp(e->err.message, why->message) == 0;

	if (!same)
		e->err_time = wall(c);
	e->err = *why;
	e->err.err = DBX_EREMOTE;
	e->rc = DBX_EREMOTE;
	e->fetched = true;
	e->fetched_ms = now_ms(c);
}

static void free_items(struct item *items, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(items[i].rg);
		free(items[i].name);
	}
	free(items);
}

struct dbx_cache *dbx_cache_new(const struct dbx_cache_config *cfg)
{
	struct dbx_cache *c = calloc(1, sizeof(*c));
	size_t n = 0;

	if (!c)
		return NULL;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cond, NULL);
	if (dbx_clock_cond_init(&c->wcond) != 0) {
		pthread_cond_destroy(&c->cond);
		pthread_mutex_destroy(&c->lock);
		free(c);
		return NULL;
	}
	c->arm = cfg->arm;
	c->clock = cfg->clock ? cfg->clock : dbx_clock_system();
	c->ttl_ms = cfg->ttl_ms;
	c->on_change = cfg->on_change;
	c->on_change_ctx = cfg->on_change_ctx;
	c->started = wall(c);
	c->next_num = 1; /* inode numbers start at 16: 1 is the root */
	if (!cfg->subscriptions)
		return c;
	c->static_root = true;
	c->root.has_listing = true;
	while (cfg->subscriptions[n])
		n++;
	c->root.items = calloc(n ? n : 1, sizeof(*c->root.items));
	if (!c->root.items)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		struct entry *e = intern(c, cfg->subscriptions[i], NULL, NULL);
		struct item *it = &c->root.items[c->root.n_items];

		if (!e)
			goto fail;
		it->name = strdup(cfg->subscriptions[i]);
		if (!it->name)
			goto fail;
		it->num = e->num;
		it->mtime = c->started;
		c->root.n_items++;
	}
	return c;
fail:
	dbx_cache_free(c);
	return NULL;
}

void dbx_cache_free(struct dbx_cache *c)
{
	if (!c)
		return;
	for (size_t h = 0; h < NBUCKETS; h++) {
		struct entry *e = c->buckets[h];

		while (e) {
			struct entry *next = e->next;

			free_items(e->items, e->n_items);
			snap_put(e->snap);
			forget_landed(e);
			free(e->key);
			free(e);
			e = next;
		}
	}
	free_items(c->root.items, c->root.n_items);
	pthread_cond_destroy(&c->cond);
	pthread_cond_destroy(&c->wcond);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

time_t dbx_cache_started(const struct dbx_cache *c)
{
	return c->started;
}

time_t dbx_cache_wall(const struct dbx_cache *c)
{
	return wall(c);
}

/* Growing arrays filled by the ARM callbacks (no lock held there). */
struct collect {
	char **subs;
	struct dbx_order **orders;
	size_t n, cap;
	bool oom;
};

static bool collect_grow(struct collect *col, size_t elem, void **arr)
{
	if (col->n < col->cap)
		return true;
	size_t cap = col->cap ? col->cap * 2 : 16;
	void *grown = realloc(*arr, cap * elem);

	if (!grown)
		return false;
	*arr = grown;
	col->cap = cap;
	return true;
}

static int collect_sub(void *ctx, const char *subscription_id)
{
	struct collect *col = ctx;
	void *arr = col->subs;
	char *s = strdup(subscription_id);

	if (!s || !collect_grow(col, sizeof(char *), &arr)) {
		free(s);
		col->oom = true;
		return 1;
	}
	col->subs = arr;
	col->subs[col->n++] = s;
	return 0;
}

static int collect_job(void *ctx, struct dbx_order *order)
{
	struct collect *col = ctx;
	void *arr = col->orders;

	if (!collect_grow(col, sizeof(struct dbx_order *), &arr)) {
		dbx_order_free(order);
		col->oom = true;
		return 1;
	}
	col->orders = arr;
	col->orders[col->n++] = order;
	return 0;
}

static void collect_free(struct collect *col)
{
	for (size_t i = 0; i < col->n; i++) {
		if (col->subs)
			free(col->subs[i]);
		if (col->orders)
			dbx_order_free(col->orders[i]);
	}
	free(col->subs);
	free(col->orders);
}

/* Publish the subscriptions of col as the root listing. Lock held. */
static enum dbx_err apply_root(struct dbx_cache *c, struct collect *col)
{
	struct item *items = calloc(col->n ? col->n : 1, sizeof(*items));
	size_t n = 0;

	if (!items)
		return DBX_ENOMEM;
	for (size_t i = 0; i < col->n; i++) {
		struct entry *e = intern(c, col->subs[i], NULL, NULL);

		if (!e) {
			free_items(items, n);
			return DBX_ENOMEM;
		}
		items[n].name = col->subs[i];
		col->subs[i] = NULL;
		items[n].num = e->num;
		items[n].mtime = c->started;
		n++;
	}
	free_items(c->root.items, c->root.n_items);
	c->root.items = items;
	c->root.n_items = n;
	return DBX_OK;
}

/*
 * Publish the jobs of col as the listing of subscription entry e, and feed
 * every order that came with details into its own entry, unless a write
 * published a newer state since put_seq_before. Lock held.
 */
static enum dbx_err apply_jobs(struct dbx_cache *c, struct entry *e, const char *sub,
			       struct collect *col, uint64_t put_seq_before)
{
	struct item *items = calloc(col->n ? col->n : 1, sizeof(*items));
	size_t n = 0;

	if (!items)
		return DBX_ENOMEM;
	for (size_t i = 0; i < col->n; i++) {
		struct dbx_order *o = col->orders[i];
		struct entry *oe;

		if (!o->resource_group || !o->name)
			continue;
		oe = intern(c, sub, o->resource_group, o->name);
		if (!oe || !intern(c, sub, o->resource_group, NULL))
			goto oom;
		items[n].rg = strdup(o->resource_group);
		items[n].name = strdup(o->name);
		if (!items[n].rg || !items[n].name) {
			n++;
			goto oom;
		}
		items[n].num = oe->num;
		items[n].mtime = o->mtime > 0 ? o->mtime : oe->snap ? oe->snap->mtime : c->started;
		n++;
		if (o->malformed) {
			/* Listed but unreadable: that order reads EIO, the others are unaffected.
			 */
			if (!oe->fetching && oe->put_seq <= put_seq_before) {
				mark_malformed(c, oe, o->malformed);
				oe->gen++;
				changed(c, sub, o->resource_group, o->name);
			}
			continue;
		}
		/* A write published after this listing was asked for is newer: keep it. */
		if (o->has_details && !oe->fetching && oe->put_seq <= put_seq_before) {
			col->orders[i] = NULL;
			if (publish_order(c, oe, o) != DBX_OK)
				goto oom;
			oe->gen++;
			changed(c, sub, items[n - 1].rg, items[n - 1].name);
		}
	}
	free_items(e->items, e->n_items);
	e->items = items;
	e->n_items = n;
	return DBX_OK;
oom:
	free_items(items, n);
	return DBX_ENOMEM;
}

/*
 * Make sure entry e (the root, or subscription sub) has a listing, fresh
 * within the TTL when want_fresh. Lock held; dropped while ARM answers.
 * A failed refresh keeps the previous listing but returns the failure.
 */
static enum dbx_err refresh_listing(struct dbx_cache *c, struct entry *e, const char *sub,
				    bool want_fresh, struct dbx_error *err)
{
	struct collect col = {0};
	struct dbx_error fetch_err = {0};
	uint64_t gen = e->gen, put_seq_before;
	bool waited = false;
	enum dbx_err rc;

	/* A listing that need not be fresh is there: never wait for a refresh in flight. */
	if (e->has_listing && !want_fresh)
		return DBX_OK;
	while (e->fetching) {
		wait_refresh(c);
		waited = true;
	}
	if (e->has_listing && (!want_fresh || within_ttl(c, e->listed_ms)))
		return DBX_OK;
	if ((waited && e->gen != gen) || failure_held(c, e)) {
		/* Someone refreshed while we waited: share their result. */
		if (e->rc != DBX_OK && err)
			*err = e->err;
		return e->rc;
	}
	e->fetching = true;
	put_seq_before = c->put_seq;
	pthread_mutex_unlock(&c->lock);
	if (sub)
		rc = dbx_arm_list_jobs(c->arm, sub, NULL, collect_job, &col, &fetch_err);
	else
		rc = dbx_arm_list_subscriptions(c->arm, collect_sub, &col, &fetch_err);
	if (rc == DBX_OK && col.oom)
		rc = dbx_error_set(&fetch_err, DBX_ENOMEM, "out of memory while listing");
	pthread_mutex_lock(&c->lock);
	if (rc == DBX_OK) {
		rc = sub ? apply_jobs(c, e, sub, &col, put_seq_before) : apply_root(c, &col);
		if (rc != DBX_OK)
			dbx_error_set(&fetch_err, rc, "out of memory while listing");
	}
	if (rc == DBX_OK) {
		e->has_listing = true;
		e->listed_ms = now_ms(c);
		dbx_error_clear(&e->err);
	} else {
		e->err = fetch_err;
		e->err.err = rc;
		e->failed_ms = now_ms(c);
		if (err)
			*err = fetch_err;
	}
	e->rc = rc;
	e->gen++;
	e->fetching = false;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
	collect_free(&col);
	pthread_mutex_lock(&c->lock);
	return rc;
}

void dbx_dirlist_free(struct dbx_dirlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].name);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

static enum dbx_err dirlist_add(struct dbx_dirlist *l, const char *name, uint64_t ino, time_t mtime)
{
	struct dbx_dirent *grown = realloc(l->v, (l->n + 1) * sizeof(*l->v));

	if (!grown)
		return DBX_ENOMEM;
	l->v = grown;
	l->v[l->n].name = strdup(name);
	if (!l->v[l->n].name)
		return DBX_ENOMEM;
	l->v[l->n].ino = ino;
	l->v[l->n].mtime = mtime;
	l->n++;
	return DBX_OK;
}

/* Fill out from the current listing of e. Lock held. */
static enum dbx_err build_dirlist(struct dbx_cache *c, struct entry *e, const char *sub,
				  const char *rg, struct dbx_dirlist *out)
{
	enum dbx_err rc = DBX_OK;

	for (size_t i = 0; i < e->n_items && rc == DBX_OK; i++) {
		const struct item *it = &e->items[i];
		bool seen = false;
		struct entry *ge;

		if (!sub) {
			rc = dirlist_add(out, it->name, it->num << DBX_INO_SHIFT, it->mtime);
			continue;
		}
		if (rg) {
			if (strcasecmp(it->rg, rg) == 0)
				rc =
				    dirlist_add(out, it->name, it->num << DBX_INO_SHIFT, it->mtime);
			continue;
		}
		/* Resource groups: distinct names (case-insensitive), first spelling wins. */
		for (size_t k = 0; k < out->n && !seen; k++)
			seen = strcasecmp(out->v[k].name, it->rg) == 0;
		if (seen)
			continue;
		ge = intern(c, sub, it->rg, NULL);
		rc = ge ? dirlist_add(out, it->rg, dir_ino(ge), c->started) : DBX_ENOMEM;
	}
	return rc;
}

enum dbx_err dbx_cache_list(struct dbx_cache *c, const char *subscription,
			    const char *resource_group, struct dbx_dirlist *out,
			    struct dbx_error *err)
{
	struct entry *e = &c->root;
	enum dbx_err rc = DBX_OK;

	out->v = NULL;
	out->n = 0;
	pthread_mutex_lock(&c->lock);
	if (subscription) {
		e = intern(c, subscription, NULL, NULL);
		if (!e) {
			rc = dbx_error_set(err, DBX_ENOMEM, "out of memory");
			goto out;
		}
	}
	if (!(e == &c->root && c->static_root))
		rc = refresh_listing(c, e, subscription, true, err);
	if (rc == DBX_OK)
		rc = build_dirlist(c, e, subscription, resource_group, out);
	if (rc == DBX_ENOMEM)
		dbx_error_set(err, rc, "out of memory");
out:
	pthread_mutex_unlock(&c->lock);
	if (rc != DBX_OK)
		dbx_dirlist_free(out);
	return rc;
}

/* The item of e's listing matching rg and name (name NULL: any order of rg; rg NULL: name is a
 * sub). */
static const struct item *find_item(const struct entry *e, const char *rg, const char *name)
{
	for (size_t i = 0; i < e->n_items; i++) {
		const struct item *it = &e->items[i];

		if (rg && strcasecmp(it->rg, rg) != 0)
			continue;
		if (name && strcasecmp(it->name, name) != 0)
			continue;
		return it;
	}
	return NULL;
}

/* Find in e's listing, refreshing it when absent, or when stale and without the entry. Lock held.
 */
static enum dbx_err lookup_in(struct dbx_cache *c, struct entry *e, const char *sub, const char *rg,
			      const char *name, const struct item **found, struct dbx_error *err)
{
	enum dbx_err rc = DBX_OK;

	*found = NULL;
	if (!(e == &c->root && c->static_root))
		rc = refresh_listing(c, e, sub, false, err);
	if (rc != DBX_OK)
		return rc;
	*found = find_item(e, rg, name);
	if (*found || (e == &c->root && c->static_root) || within_ttl(c, e->listed_ms))
		goto out;
	rc = refresh_listing(c, e, sub, true, err);
	if (rc != DBX_OK)
		return rc;
	*found = find_item(e, rg, name);
out:
	if (!*found)
		return dbx_error_set(err, DBX_ENOTFOUND, "no such entry");
	return DBX_OK;
}

enum dbx_err dbx_cache_lookup(struct dbx_cache *c, const char *subscription,
			      const char *resource_group, const char *name, uint64_t *ino,
			      time_t *mtime, struct dbx_error *err)
{
	const struct item *it = NULL;
	struct entry *e;
	enum dbx_err rc;

	*ino = DBX_INO_ROOT;
	*mtime = c->started;
	if (!subscription)
		return DBX_OK;
	pthread_mutex_lock(&c->lock);
	rc = lookup_in(c, &c->root, NULL, NULL, subscription, &it, err);
	if (rc != DBX_OK || !resource_group) {
		if (rc == DBX_OK)
			*ino = it->num << DBX_INO_SHIFT;
		goto out;
	}
	e = intern(c, subscription, NULL, NULL);
	if (!e) {
		rc = dbx_error_set(err, DBX_ENOMEM, "out of memory");
		goto out;
	}
	rc = lookup_in(c, e, subscription, resource_group, name, &it, err);
	if (rc != DBX_OK)
		goto out;
	if (name) {
		*ino = it->num << DBX_INO_SHIFT;
		*mtime = it->mtime;
	} else {
		e = intern(c, subscription, resource_group, NULL);
		if (!e) {
			rc = dbx_error_set(err, DBX_ENOMEM, "out of memory");
			goto out;
		}
		*ino = dir_ino(e);
	}
out:
	pthread_mutex_unlock(&c->lock);
	return rc;
}

/* Drop order entry oe from the listing of subscription sub (the order is gone). Lock held. */
static void forget_order(struct dbx_cache *c, struct entry *oe, const char *sub)
{
	struct entry *se = intern(c, sub, NULL, NULL);
	size_t k = 0;

	snap_put(oe->snap);
	oe->snap = NULL;
	if (!se)
		return;
	for (size_t i = 0; i < se->n_items; i++) {
		if (se->items[i].num == oe->num) {
			free(se->items[i].rg);
			free(se->items[i].name);
			continue;
		}
		se->items[k++] = se->items[i];
	}
	se->n_items = k;
}

static void fill_view(struct dbx_cache *c, struct entry *e, struct dbx_order_view *view)
{
	view->rc = e->rc;
	view->ino = dir_ino(e);
	view->mtime = c->started;
	view->has_write_err = e->has_write_err;
	view->write_changed = e->write_changed;
	if (e->has_write_err) {
		view->write_err = e->write_err;
		view->write_err_time = e->write_err_time;
		memcpy(view->write_target, e->write_target, sizeof(view->write_target));
	}
	if (e->rc != DBX_OK) {
		view->err = e->err;
		view->err_time = e->err_time;
	}
	if (e->rc == DBX_ENOTFOUND)
		return;
	view->snap = snap_get(e->snap);
	view->order = view->snap ? view->snap->order : NULL;
	if (view->snap)
		view->mtime = view->snap->mtime;
}

enum dbx_err dbx_cache_order(struct dbx_cache *c, const char *subscription,
			     const char *resource_group, const char *name,
			     struct dbx_order_view *view, struct dbx_error *err)
{
	struct dbx_order *order = NULL;
	struct dbx_error fetch_err = {0};
	struct entry *e;
	uint64_t gen, put_seq_before;
	bool waited = false;
	enum dbx_err rc;

	memset(view, 0, sizeof(*view));
	pthread_mutex_lock(&c->lock);
	e = intern(c, subscription, resource_group, name);
	if (!e) {
		pthread_mutex_unlock(&c->lock);
		view->rc = dbx_error_set(err, DBX_ENOMEM, "out of memory");
		view->err.err = DBX_ENOMEM;
		return view->rc;
	}
	gen = e->gen;
	while (e->fetching) {
		wait_refresh(c);
		waited = true;
	}
	if ((e->fetched && within_ttl(c, e->fetched_ms)) || (waited && e->gen != gen) ||
	    failure_held(c, e))
		goto done;

	e->fetching = true;
	put_seq_before = e->put_seq;
	pthread_mutex_unlock(&c->lock);
	rc = dbx_arm_get_job(c->arm, subscription, resource_group, name, &order, &fetch_err);
	pthread_mutex_lock(&c->lock);
	if (e->put_seq != put_seq_before) {
		/* A write published its result while this GET was in flight: that is newer. */
		dbx_order_free(order);
		order = NULL;
		rc = DBX_OK;
	} else if (rc == DBX_OK) {
		rc = publish_order(c, e, order);
		if (rc != DBX_OK)
			dbx_error_set(&fetch_err, rc, "out of memory");
	}
	if (rc != DBX_OK) {
		e->rc = rc;
		e->err = fetch_err;
		e->err.err = rc;
		e->err_time = wall(c);
		e->fetched = true;
		e->fetched_ms = now_ms(c);
		e->failed_ms = e->fetched_ms;
		if (rc == DBX_ENOTFOUND)
			forget_order(c, e, subscription);
	}
	e->gen++;
	e->fetching = false;
	changed(c, subscription, resource_group, name);
	pthread_cond_broadcast(&c->cond);
done:
	fill_view(c, e, view);
	pthread_mutex_unlock(&c->lock);
	if (view->rc != DBX_OK && err)
		*err = view->err;
	return view->rc;
}

void dbx_order_view_release(struct dbx_order_view *view)
{
	snap_put(view->snap);
	view->snap = NULL;
	view->order = NULL;
}

void dbx_cache_peek(struct dbx_cache *c, const char *subscription, const char *resource_group,
		    const char *name, struct dbx_order_view *view, bool *fresh)
{
	struct entry *e;

	memset(view, 0, sizeof(*view));
	*fresh = false;
	pthread_mutex_lock(&c->lock);
	e = intern(c, subscription, resource_group, name);
	if (!e) {
		view->rc = DBX_ENOMEM;
		dbx_error_set(&view->err, DBX_ENOMEM, "out of memory");
		goto out;
	}
	fill_view(c, e, view);
	*fresh = e->fetched && within_ttl(c, e->fetched_ms);
out:
	pthread_mutex_unlock(&c->lock);
}

#define WRITE_LOCK_POLL_MS 100 /* how often a waiting writer asks whether it was interrupted */

enum dbx_err dbx_cache_write_lock(struct dbx_cache *c, const char *subscription,
				  const char *resource_group, const char *name, uint64_t timeout_ms,
				  int (*interrupted)(void *ctx), void *ictx, struct dbx_error *err)
{
	uint64_t deadline = timeout_ms ? now_ms(c) + timeout_ms : 0;
	enum dbx_err rc = DBX_OK;
	struct entry *e;

	pthread_mutex_lock(&c->lock);
	e = intern(c, subscription, resource_group, name);
	if (!e) {
		rc = dbx_error_set(err, DBX_ENOMEM, "out of memory");
		goto out;
	}
	while (e->writing) {
		uint64_t now = now_ms(c);
		uint64_t wake = now + WRITE_LOCK_POLL_MS;

		if (interrupted && interrupted(ictx)) {
			rc = dbx_error_set(err, DBX_EINTR,
					   "interrupted while waiting for another write to this "
					   "order; nothing was sent");
			goto out;
		}
		if (deadline && now >= deadline) {
			rc = dbx_error_set(err, DBX_ETIMEDOUT,
					   "another write to this order did not finish within the "
					   "timeout; nothing was sent");
			goto out;
		}
		if (deadline && wake > deadline)
			wake = deadline;
		c->write_waiters++;
		(void)dbx_clock_wait_until(c->clock, &c->wcond, &c->lock, wake); /* checked above */
		c->write_waiters--;
	}
	e->writing = true;
out:
	pthread_mutex_unlock(&c->lock);
	return rc;
}

unsigned dbx_cache_write_waiters(struct dbx_cache *c)
{
	unsigned n;

	pthread_mutex_lock(&c->lock);
	n = c->write_waiters;
	pthread_mutex_unlock(&c->lock);
	return n;
}

void dbx_cache_write_unlock(struct dbx_cache *c, const char *subscription,
			    const char *resource_group, const char *name)
{
	struct entry *e;

	pthread_mutex_lock(&c->lock);
	e = intern(c, subscription, resource_group, name);
	if (e)
		e->writing = false;
	pthread_cond_broadcast(&c->wcond);
	pthread_mutex_unlock(&c->lock);
}

enum dbx_err dbx_cache_put_order(struct dbx_cache *c, const char *subscription,
				 const char *resource_group, const char *name,
				 struct dbx_order *order)
{
	enum dbx_err rc;
	struct entry *e;

	pthread_mutex_lock(&c->lock);
	e = intern(c, subscription, resource_group, name);
	if (!e) {
		dbx_order_free(order);
		rc = DBX_ENOMEM;
		goto out;
	}
	rc = publish_order(c, e, order);
	if (rc != DBX_OK)
		goto out;
	e->put_seq = ++c->put_seq;
	e->gen++;
	changed(c, subscription, resource_group, name);
	pthread_cond_broadcast(&c->cond);
out:
	pthread_mutex_unlock(&c->lock);
	return rc;
}

void dbx_cache_write_result(struct dbx_cache *c, const char *subscription,
			    const char *resource_group, const char *name, const char *target,
			    const struct dbx_error *err)
{
	struct entry *e;

	pthread_mutex_lock(&c->lock);
	e = intern(c, subscription, resource_group, name);
	if (!e)
		goto out;
	forget_landed(e);
	if (!err) {
		if (e->has_write_err)
			e->write_changed = wall(c);
		e->has_write_err = false;
		dbx_error_clear(&e->write_err);
		goto out;
	}
	e->has_write_err = true;
	e->write_err = *err;
	e->write_err_time = wall(c);
	e->write_changed = e->write_err_time;
	snprintf(e->write_target, sizeof(e->write_target), "%s", target ? target : "");
out:
	if (e)
		changed(c, subscription, resource_group, name);
	pthread_mutex_unlock(&c->lock);
}

void dbx_cache_write_may_land(struct dbx_cache *c, const char *subscription,
			      const char *resource_group, const char *name,
			      dbx_cache_landed_fn landed, const void *ctx, size_t ctx_len)
{
	void *copy = malloc(ctx_len ? ctx_len : 1);
	struct entry *e;

	if (!copy)
		return; /* the block stays until the next write: no worse than before */
	memcpy(copy, ctx, ctx_len);
	pthread_mutex_lock(&c->lock);
	e = intern(c, subscription, resource_group, name);
	if (e && e->has_write_err) {
		forget_landed(e);
		e->landed = landed;
		e->landed_ctx = copy;
		copy = NULL;
	}
	pthread_mutex_unlock(&c->lock);
	free(copy);
}
