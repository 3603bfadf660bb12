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
 * Listings index themselves: each order and resource group entry knows
 * its place in its subscription's current listing (feed, feed_seq, item),
 * each resource group chains its items, and the hash table doubles with
 * its entries, so a lookup or a resource group's readdir costs the same
 * at 10,000 orders as at 10. A subscription entry also remembers which of
 * its orders was read last: a stale order of a listing being walked is
 * refreshed by reading its page again (refreshed_by_page, single flight
 * per page), else by re-listing its resource group (refresh_rg); an order
 * read alone by its own GET (docs/architecture.md, "Freshness").
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
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "databoxfs/stats.h"
#include "attrs.h"
#include "cache.h"

#define MIN_BUCKETS 1024 /* the table doubles when it holds twice as many entries */
#define NO_ITEM	    SIZE_MAX

/*
 * One page of a job listing, shared by the items it listed: where it was
 * read from (a nextLink, verbatim), so a walk can read that page again
 * alone (refreshed_by_page), and when. Refcounted (atomically: the listing
 * callbacks run without the lock); the other fields under the lock.
 */
struct page {
	int refs;
	char *url;
	bool fetching;	    /* a re-read is in flight; others wait on cache->cond */
	uint64_t at_ms;	    /* when its latest answer arrived */
	enum dbx_err rc;    /* how its latest re-read ended */
	uint64_t failed_ms; /* when that failed */
};

static struct page *page_get(struct page *pg)
{
	if (pg)
		__atomic_add_fetch(&pg->refs, 1, __ATOMIC_ACQ_REL);
	return pg;
}

static void page_put(struct page *pg)
{
	if (!pg || __atomic_sub_fetch(&pg->refs, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	free(pg->url);
	free(pg);
}

/* One line of a listing: a subscription (rg NULL) or an order. */
struct item {
	char *rg;
	char *name;
	uint64_t num; /* the interned number of the subscription or order */
	time_t mtime;
	size_t next_in_rg; /* the next order of the same resource group, or NO_ITEM */
	bool gone;	   /* the order answered 404 since: no longer listed */
	struct page *page; /* the page that listed the order (a reference), or NULL */
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

	bool fetching;	       /* a refresh is in flight; others wait on cache->cond */
	uint64_t gen;	       /* bumped when a refresh finishes */
	enum dbx_err rc;       /* the result of the latest refresh */
	struct dbx_error *err; /* why, when rc says it failed (keep_error), else NULL */
	time_t err_time;
	uint64_t failed_ms; /* when the latest refresh failed, when rc says it did */

	/* listings (root, subscription) */
	bool has_listing;
	uint64_t listed_ms;
	struct item *items;
	size_t n_items;
	uint64_t list_seq;  /* which listing items is (cache->list_seq when it was made) */
	bool list_details;  /* some order of that listing came with its details */
	struct entry **rgs; /* its resource groups, in the order they first appear */
	size_t n_rgs;
	bool asked; /* an order of this listing was read: asked_num at asked_ms */
	uint64_t asked_num;
	uint64_t asked_ms;
	bool walked; /* two different orders of it were read within cache_ttl, at walk_ms */
	uint64_t walk_ms;

	/*
	 * Membership of a resource group or an order in the listing of its
	 * subscription: feed's listing holds it when feed->list_seq == feed_seq;
	 * an order is then feed->items[item], a resource group the chain of its
	 * orders from rg_head (next_in_rg) to rg_tail, rg_live of them not gone.
	 */
	struct entry *feed;
	uint64_t feed_seq;
	size_t item;
	size_t rg_head, rg_tail, rg_live;
	/* A resource group re-listed on its own (refresh_rg) at rg_listed_ms. */
	bool rg_listed;
	uint64_t rg_listed_ms;

	/* orders */
	bool fetched; /* rc/snap hold the result of a refresh made at fetched_ms */
	uint64_t fetched_ms;
	struct dbx_snap *snap;

	/* writes */
	bool writing;	  /* a write holds this order's write lock */
	uint64_t put_seq; /* cache->put_seq when a write last published this order, else 0 */
	bool has_write_err;
	struct dbx_error *write_err; /* with has_write_err */
	time_t write_err_time;
	char write_target[32];
	time_t write_changed; /* the errors file gained or lost its last-write block */
	/* The last-write error may still land: what asks a refresh whether it did. */
	dbx_cache_landed_fn landed;
	void *landed_ctx; /* malloc'd */
	/* The operation file: what a write in flight does (malloc'd), or NULL when idle. */
	char *operation;
	time_t operation_changed; /* when it was last set or cleared (wall clock), or 0 */
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
	struct entry **buckets;
	size_t n_buckets; /* a power of two */
	size_t n_entries;
	uint64_t list_seq; /* bumped by every subscription listing published */
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

/*
 * The details of an error live out of line: struct dbx_error is over a
 * kilobyte, and an entry per order carried two of them, most of the
 * cache's memory for orders that never failed.
 */
static const struct dbx_error lost_error = {
    .err = DBX_ENOMEM, .message = "out of memory (the error's details were lost)"};

/* Keep a copy of src, as rc, in *slot (allocated on first use). Lock held. */
static void keep_error(struct dbx_error **slot, const struct dbx_error *src, enum dbx_err rc)
{
	if (!*slot)
		*slot = malloc(sizeof(**slot));
	if (!*slot)
		return; /* error_of() answers lost_error */
	**slot = *src;
	(*slot)->err = rc;
}

static void drop_error(struct dbx_error **slot)
{
	free(*slot);
	*slot = NULL;
}

/* What keep_error kept, or a stand-in when it could not. */
static const struct dbx_error *error_of(const struct dbx_error *slot)
{
	return slot ? slot : &lost_error;
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
	return h;
}

/*
 * Double the table when it holds twice as many entries as buckets, so a
 * lookup costs the same at 10,000 orders as at 100. Lock held; on ENOMEM
 * the table stays as it is (only slower).
 */
static void grow_table(struct dbx_cache *c)
{
	size_t n = c->n_buckets * 2;
	struct entry **b;

	if (c->n_entries < 2 * c->n_buckets)
		return;
	b = calloc(n, sizeof(*b));
	if (!b)
		return;
	for (size_t h = 0; h < c->n_buckets; h++) {
		struct entry *e = c->buckets[h];

		while (e) {
			struct entry *next = e->next;
			size_t k = hash_key(e->key) & (n - 1);

			e->next = b[k];
			b[k] = e;
			e = next;
		}
	}
	free(c->buckets);
	c->buckets = b;
	c->n_buckets = n;
}

/* The entry for key, or NULL when none was interned. Lock held. */
static struct entry *find_key(const struct dbx_cache *c, const char *key)
{
	struct entry *e;

	for (e = c->buckets[hash_key(key) & (c->n_buckets - 1)]; e; e = e->next) {
		if (strcmp(e->key, key) == 0)
			return e;
	}
	return NULL;
}

/* The entry for key (taken over on creation, else freed), or NULL on ENOMEM. Lock held. */
static struct entry *intern_key(struct dbx_cache *c, char *key)
{
	struct entry *e;
	size_t h;

	if (!key)
		return NULL;
	e = find_key(c, key);
	if (e) {
		free(key);
		return e;
	}
	e = calloc(1, sizeof(*e));
	if (!e) {
		free(key);
		return NULL;
	}
	e->key = key;
	e->num = c->next_num++;
	h = hash_key(key) & (c->n_buckets - 1);
	e->next = c->buckets[h];
	c->buckets[h] = e;
	c->n_entries++;
	grow_table(c);
	return e;
}

static struct entry *intern(struct dbx_cache *c, const char *a, const char *b, const char *cc)
{
	return intern_key(c, make_key(a, b, cc));
}

/* The entry of "a/b/c" when one was interned, else NULL (also on ENOMEM). Lock held. */
static struct entry *find(const struct dbx_cache *c, const char *a, const char *b, const char *cc)
{
	char *key = make_key(a, b, cc);
	struct entry *e = key ? find_key(c, key) : NULL;

	free(key);
	return e;
}

/* Whether the current listing of subscription entry se holds e (an order or resource group). */
static bool listed_in(const struct entry *e, const struct entry *se)
{
	return e && se && e->feed == se && se->has_listing && e->feed_seq == se->list_seq;
}

static uint64_t dir_ino(const struct entry *e)
{
	return e->num << DBX_INO_SHIFT;
}

/*
 * A listing was parsed and applied: hand the memory its pages took back.
 * The pages of a listing are parsed whole (JSON trees several times the
 * size of the orders kept), in whichever FUSE thread missed, and glibc
 * keeps each thread's freed arena: without this the mount's RSS grows
 * by the parse peak of every thread that ever re-listed. Lock not held.
 */
static void release_parse_memory(void)
{
#ifdef __GLIBC__
	malloc_trim(0);
#endif
}

/*
 * order, copied now that the page it was parsed from is freed, so the
 * state the cache keeps lies together instead of pinning the pages of
 * the JSON tree it was read out of (20 small strings per order, once
 * spread over megabytes of parse). The original is freed; on ENOMEM it is
 * kept as it is.
 */
static struct dbx_order *compact_order(struct dbx_order *order)
{
	struct dbx_order *copy = dbx_order_dup(order);

	if (!copy)
		return order;
	dbx_order_free(order);
	return copy;
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
	drop_error(&e->write_err);
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
	drop_error(&e->err);
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
	bool same = e->fetched && e->rc == DBX_EREMOTE && e->err &&
		    strcmp(e->err->message, why->message) == 0;

	if (!same)
		e->err_time = wall(c);
	keep_error(&e->err, why, DBX_EREMOTE);
	e->rc = DBX_EREMOTE;
	e->fetched = true;
	e->fetched_ms = now_ms(c);
}

static void free_items(struct item *items, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(items[i].rg);
		free(items[i].name);
		page_put(items[i].page);
	}
	free(items);
}

struct dbx_cache *dbx_cache_new(const struct dbx_cache_config *cfg)
{
	struct dbx_cache *c = calloc(1, sizeof(*c));
	size_t n = 0;

	if (!c)
		return NULL;
	c->n_buckets = MIN_BUCKETS;
	c->buckets = calloc(c->n_buckets, sizeof(*c->buckets));
	if (!c->buckets) {
		free(c);
		return NULL;
	}
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cond, NULL);
	if (dbx_clock_cond_init(&c->wcond) != 0) {
		pthread_cond_destroy(&c->cond);
		pthread_mutex_destroy(&c->lock);
		free(c->buckets);
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
	for (size_t h = 0; h < c->n_buckets; h++) {
		struct entry *e = c->buckets[h];

		while (e) {
			struct entry *next = e->next;

			free_items(e->items, e->n_items);
			free(e->rgs);
			snap_put(e->snap);
			forget_landed(e);
			drop_error(&e->err);
			drop_error(&e->write_err);
			free(e->operation);
			free(e->key);
			free(e);
			e = next;
		}
	}
	free_items(c->root.items, c->root.n_items);
	drop_error(&c->root.err);
	free(c->buckets);
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
	/* With a page callback (collect_page): the page of each order, and the current one. */
	struct page **pages;
	struct page *cur;
	uint64_t at_ms;
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
	size_t cap = col->cap;

	if (!collect_grow(col, sizeof(struct dbx_order *), &arr)) {
		dbx_order_free(order);
		col->oom = true;
		return 1;
	}
	col->orders = arr;
	if (col->cur && (col->cap != cap || !col->pages)) {
		struct page **grown = realloc(col->pages, col->cap * sizeof(*grown));

		if (!grown) {
			dbx_order_free(order);
			col->oom = true;
			return 1;
		}
		col->pages = grown;
	}
	if (col->cur)
		col->pages[col->n] = page_get(col->cur);
	col->orders[col->n++] = order;
	return 0;
}

/* A new page begins: its jobs will carry it (dbx_arm_page_cb). */
static int collect_page(void *ctx, const char *url)
{
	struct collect *col = ctx;
	struct page *pg = calloc(1, sizeof(*pg));

	if (pg)
		pg->url = strdup(url);
	if (!pg || !pg->url) {
		free(pg);
		col->oom = true;
		return 1;
	}
	pg->refs = 1;
	/* An order before the first page never comes: pages and orders stay in step. */
	if (col->n > 0 && !col->pages) {
		page_put(pg);
		col->oom = true;
		return 1;
	}
	page_put(col->cur);
	col->cur = pg;
	return 0;
}

static void collect_free(struct collect *col)
{
	for (size_t i = 0; i < col->n; i++) {
		if (col->subs)
			free(col->subs[i]);
		if (col->orders)
			dbx_order_free(col->orders[i]);
		if (col->pages)
			page_put(col->pages[i]);
	}
	free(col->pages);
	page_put(col->cur);
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
 * File item n (order entry oe) of the listing being made (seq) under its
 * resource group entry ge, at the end of ge's chain; a resource group seen
 * first here joins rgs. Lock held. DBX_ENOMEM only.
 */
static enum dbx_err index_item(struct entry *e, struct item *items, size_t n, struct entry *oe,
			       struct entry *ge, uint64_t seq, struct entry ***rgs, size_t *n_rgs)
{
	items[n].next_in_rg = NO_ITEM;
	oe->feed = e;
	oe->feed_seq = seq;
	oe->item = n;
	if (ge->feed == e && ge->feed_seq == seq) {
		items[ge->rg_tail].next_in_rg = n;
		ge->rg_tail = n;
		ge->rg_live++;
		return DBX_OK;
	}
	/* A new resource group: grow rgs by doubling (n_rgs a power of two is full). */
	if ((*n_rgs & (*n_rgs - 1)) == 0) {
		struct entry **grown = realloc(*rgs, (*n_rgs ? *n_rgs * 2 : 1) * sizeof(**rgs));

		if (!grown)
			return DBX_ENOMEM;
		*rgs = grown;
	}
	(*rgs)[(*n_rgs)++] = ge;
	ge->feed = e;
	ge->feed_seq = seq;
	ge->rg_head = ge->rg_tail = n;
	ge->rg_live = 1;
	return DBX_OK;
}

/* The listing being made by apply_jobs. */
struct building {
	struct item *items;
	size_t n;
	uint64_t seq;
	struct entry **rgs;
	size_t n_rgs;
	bool details;
	uint64_t at_ms; /* when the listing's answer was complete: the age of what it feeds */
};

/*
 * Add the orders of col to the listing b of subscription entry e, feeding
 * every order that came with details into its own entry unless a write
 * published a newer state since put_seq_before. Lock held. DBX_ENOMEM only.
 */
static enum dbx_err add_orders(struct dbx_cache *c, struct entry *e, const char *sub,
			       struct collect *col, uint64_t put_seq_before, struct building *b)
{
	for (size_t i = 0; i < col->n; i++) {
		struct dbx_order *o = col->orders[i];
		struct entry *oe, *ge;
		struct item *it = &b->items[b->n];

		if (!o || !o->resource_group || !o->name)
			continue;
		oe = intern(c, sub, o->resource_group, o->name);
		ge = intern(c, sub, o->resource_group, NULL);
		if (!oe || !ge)
			return DBX_ENOMEM;
		if (oe->feed == e && oe->feed_seq == b->seq)
			continue; /* listed twice */
		it->rg = strdup(o->resource_group);
		it->name = strdup(o->name);
		b->n++;
		if (!it->rg || !it->name)
			return DBX_ENOMEM;
		it->num = oe->num;
		it->mtime = o->mtime > 0 ? o->mtime : oe->snap ? oe->snap->mtime : c->started;
		if (col->pages) {
			it->page = page_get(col->pages[i]);
			it->page->at_ms = b->at_ms;
		}
		if (index_item(e, b->items, b->n - 1, oe, ge, b->seq, &b->rgs, &b->n_rgs) != DBX_OK)
			return DBX_ENOMEM;
		b->details |= o->has_details;
		if (o->malformed) {
			/* Listed but unreadable: that order reads EIO, the others are unaffected.
			 */
			if (!oe->fetching && oe->put_seq <= put_seq_before) {
				mark_malformed(c, oe, o->malformed);
				oe->fetched_ms = b->at_ms;
				oe->gen++;
				changed(c, sub, o->resource_group, o->name);
			}
			continue;
		}
		/* A write published after this listing was asked for is newer: keep it. */
		if (o->has_details && !oe->fetching && oe->put_seq <= put_seq_before) {
			col->orders[i] = NULL;
			if (publish_order(c, oe, compact_order(o)) != DBX_OK)
				return DBX_ENOMEM;
			/* As old as the listing: it and its orders go stale together. */
			oe->fetched_ms = b->at_ms;
			oe->gen++;
			/* o is freed: the names as this listing keeps them */
			changed(c, sub, b->items[b->n - 1].rg, b->items[b->n - 1].name);
		}
	}
	return DBX_OK;
}

/*
 * Keep item i of e's current listing in the listing b being made. Lock
 * held. DBX_ENOMEM only.
 */
static enum dbx_err keep_item(struct dbx_cache *c, struct entry *e, const char *sub, size_t i,
			      struct building *b)
{
	const struct item *old = &e->items[i];
	struct item *it = &b->items[b->n];
	struct entry *oe = find(c, sub, old->rg, old->name);
	struct entry *ge = find(c, sub, old->rg, NULL);

	if (!oe || !ge)
		return DBX_ENOMEM; /* both were interned with the item */
	it->rg = strdup(old->rg);
	it->name = strdup(old->name);
	b->n++;
	if (!it->rg || !it->name)
		return DBX_ENOMEM;
	it->num = old->num;
	it->mtime = old->mtime;
	it->page = page_get(old->page);
	return index_item(e, b->items, b->n - 1, oe, ge, b->seq, &b->rgs, &b->n_rgs);
}

/*
 * Publish the jobs of col as the listing of subscription entry e (rg
 * NULL), or as the orders of its resource group rg only (rg set: the other
 * resource groups' items are kept, rg's take the place of its first old
 * one). Every order and resource group entry learns its place in the new
 * listing (index_item), so lookups and listings of one resource group
 * never scan the whole subscription. An order listed twice (same name in
 * any case) is listed once. Lock held.
 */
static enum dbx_err apply_jobs(struct dbx_cache *c, struct entry *e, const char *sub,
			       const char *rg, struct collect *col, uint64_t put_seq_before,
			       uint64_t at_ms)
{
	struct building b = {.seq = c->list_seq + 1, .at_ms = at_ms};
	size_t cap = col->n + (rg ? e->n_items : 0);
	bool placed = !rg;

	b.items = calloc(cap ? cap : 1, sizeof(*b.items));
	if (!b.items)
		return DBX_ENOMEM;
	for (size_t i = 0; rg && i < e->n_items; i++) {
		if (strcasecmp(e->items[i].rg, rg) != 0) {
			if (!e->items[i].gone && keep_item(c, e, sub, i, &b) != DBX_OK)
				goto oom;
			continue;
		}
		if (!placed && add_orders(c, e, sub, col, put_seq_before, &b) != DBX_OK)
			goto oom;
		placed = true;
	}
	if (!placed || !rg) {
		if (add_orders(c, e, sub, col, put_seq_before, &b) != DBX_OK)
			goto oom;
	}
	if (rg)
		b.details |= e->list_details;
	free_items(e->items, e->n_items);
	free(e->rgs);
	e->items = b.items;
	e->n_items = b.n;
	e->rgs = b.rgs;
	e->n_rgs = b.n_rgs;
	e->list_seq = c->list_seq = b.seq;
	e->list_details = b.details;
	return DBX_OK;
oom:
	/* The entries indexed so far point at seq, which no listing carries: the old listing
	 * answers lookups of the others until the next refresh. */
	c->list_seq = b.seq;
	free(b.rgs);
	free_items(b.items, b.n);
	return DBX_ENOMEM;
}

/*
 * The end of a listing refresh of entry e (its own listing fields already
 * set on success): keep or drop its error, wake the waiters, and free what
 * the listing collected with the lock released. Lock held on entry and on
 * return; returns rc.
 */
static enum dbx_err end_listing(struct dbx_cache *c, struct entry *e, enum dbx_err rc,
				const struct dbx_error *fetch_err, struct dbx_error *err,
				struct collect *col)
{
	if (rc == DBX_OK) {
		drop_error(&e->err);
	} else {
		keep_error(&e->err, fetch_err, rc);
		e->failed_ms = now_ms(c);
		if (err)
			*err = *fetch_err;
	}
	e->rc = rc;
	e->gen++;
	e->fetching = false;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
	collect_free(col);
	release_parse_memory();
	pthread_mutex_lock(&c->lock);
	return rc;
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
	uint64_t gen = e->gen, put_seq_before, at_ms;
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
			*err = *error_of(e->err);
		return e->rc;
	}
	e->fetching = true;
	put_seq_before = c->put_seq;
	pthread_mutex_unlock(&c->lock);
	if (sub)
		rc = dbx_arm_list_jobs_paged(c->arm, sub, NULL, collect_page, collect_job, &col,
					     &fetch_err);
	else
		rc = dbx_arm_list_subscriptions(c->arm, collect_sub, &col, &fetch_err);
	if (rc == DBX_OK && col.oom)
		rc = dbx_error_set(&fetch_err, DBX_ENOMEM, "out of memory while listing");
	pthread_mutex_lock(&c->lock);
	at_ms = now_ms(c);
	if (rc == DBX_OK) {
		rc = sub ? apply_jobs(c, e, sub, NULL, &col, put_seq_before, at_ms)
			 : apply_root(c, &col);
		if (rc != DBX_OK)
			dbx_error_set(&fetch_err, rc, "out of memory while listing");
	}
	if (rc == DBX_OK) {
		e->has_listing = true;
		e->listed_ms = at_ms;
	}
	return end_listing(c, e, rc, &fetch_err, err, &col);
}

/* Whether the orders of resource group entry ge (listed in se) are within the TTL. */
static bool rg_fresh(const struct dbx_cache *c, const struct entry *se, const struct entry *ge)
{
	return within_ttl(c, se->listed_ms) || (ge->rg_listed && within_ttl(c, ge->rg_listed_ms));
}

/*
 * Make the orders of resource group entry ge (named rg, listed in
 * subscription entry se) fresh within the TTL by re-listing that resource
 * group alone: its own pages, not the subscription's. Single flight, also
 * with a re-list of the whole subscription in flight (that one is
 * waited for). A 404 (the group is gone) lists it empty. Lock held;
 * dropped while ARM answers. A failed refresh keeps the old items and
 * returns the failure (held as refresh_listing's are).
 */
static enum dbx_err refresh_rg(struct dbx_cache *c, struct entry *se, struct entry *ge,
			       const char *sub, const char *rg, struct dbx_error *err)
{
	struct collect col = {0};
	struct dbx_error fetch_err = {0};
	uint64_t gen = ge->gen, sgen = se->gen, put_seq_before, at_ms;
	bool waited = false;
	enum dbx_err rc;

	while (se->fetching || ge->fetching) {
		wait_refresh(c);
		waited = true;
	}
	if (rg_fresh(c, se, ge))
		return DBX_OK;
	if (waited && (ge->gen != gen || se->gen != sgen)) {
		/* A refresh finished while we waited, and failed or was already stale: share it. */
		const struct entry *x = ge->gen != gen ? ge : se;

		if (x->rc != DBX_OK && err)
			*err = *error_of(x->err);
		return x->rc;
	}
	if (failure_held(c, ge)) {
		if (err)
			*err = *error_of(ge->err);
		return ge->rc;
	}
	ge->fetching = true;
	put_seq_before = c->put_seq;
	pthread_mutex_unlock(&c->lock);
	rc = dbx_arm_list_jobs_paged(c->arm, sub, rg, collect_page, collect_job, &col, &fetch_err);
	if (rc == DBX_ENOTFOUND) {
		collect_free(&col);
		memset(&col, 0, sizeof(col));
		rc = DBX_OK;
	}
	if (rc == DBX_OK && col.oom)
		rc = dbx_error_set(&fetch_err, DBX_ENOMEM, "out of memory while listing");
	pthread_mutex_lock(&c->lock);
	at_ms = now_ms(c);
	if (rc == DBX_OK && listed_in(ge, se)) {
		rc = apply_jobs(c, se, sub, rg, &col, put_seq_before, at_ms);
		if (rc != DBX_OK)
			dbx_error_set(&fetch_err, rc, "out of memory while listing");
	}
	if (rc == DBX_OK) {
		ge->rg_listed = true;
		ge->rg_listed_ms = at_ms;
	}
	return end_listing(c, ge, rc, &fetch_err, err, &col);
}

void dbx_dirlist_free(struct dbx_dirlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].name);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

/* Append to l, which has room (dirlist_room). */
static enum dbx_err dirlist_add(struct dbx_dirlist *l, const char *name, uint64_t ino, time_t mtime)
{
	l->v[l->n].name = strdup(name);
	if (!l->v[l->n].name)
		return DBX_ENOMEM;
	l->v[l->n].ino = ino;
	l->v[l->n].mtime = mtime;
	l->n++;
	return DBX_OK;
}

/* Room for n entries in the empty l. */
static enum dbx_err dirlist_room(struct dbx_dirlist *l, size_t n)
{
	l->v = calloc(n ? n : 1, sizeof(*l->v));
	return l->v ? DBX_OK : DBX_ENOMEM;
}

/*
 * Fill out from the current listing of e: the root's subscriptions, a
 * subscription's resource groups (distinct, case-insensitive, spelled as
 * first listed), or the orders of resource group rg, following its chain
 * (index_item): the cost is what is listed, not the subscription's size.
 * Lock held.
 */
static enum dbx_err build_dirlist(struct dbx_cache *c, struct entry *e, const char *sub,
				  const char *rg, struct dbx_dirlist *out)
{
	enum dbx_err rc = DBX_OK;
	struct entry *ge;

	if (!sub) {
		rc = dirlist_room(out, e->n_items);
		for (size_t i = 0; i < e->n_items && rc == DBX_OK; i++)
			rc = dirlist_add(out, e->items[i].name, e->items[i].num << DBX_INO_SHIFT,
					 e->items[i].mtime);
		return rc;
	}
	if (!rg) {
		rc = dirlist_room(out, e->n_rgs);
		for (size_t i = 0; i < e->n_rgs && rc == DBX_OK; i++) {
			ge = e->rgs[i];
			if (ge->rg_live > 0)
				rc = dirlist_add(out, e->items[ge->rg_head].rg, dir_ino(ge),
						 c->started);
		}
		return rc;
	}
	ge = find(c, sub, rg, NULL);
	if (!listed_in(ge, e))
		return DBX_OK;
	rc = dirlist_room(out, ge->rg_live);
	for (size_t i = ge->rg_head; i != NO_ITEM && rc == DBX_OK; i = e->items[i].next_in_rg) {
		const struct item *it = &e->items[i];

		if (!it->gone)
			rc = dirlist_add(out, it->name, it->num << DBX_INO_SHIFT, it->mtime);
	}
	return rc;
}

long dbx_cache_subdirs(struct dbx_cache *c, const char *subscription, const char *resource_group)
{
	const struct entry *e = &c->root, *ge;
	long n = -1;

	pthread_mutex_lock(&c->lock);
	if (subscription)
		e = find(c, subscription, NULL, NULL);
	if (!e || !(e->has_listing || (e == &c->root && c->static_root)))
		goto out;
	if (!subscription) {
		n = (long)e->n_items;
	} else if (!resource_group) {
		n = 0;
		for (size_t i = 0; i < e->n_rgs; i++)
			n += e->rgs[i]->rg_live > 0;
	} else {
		ge = find(c, subscription, resource_group, NULL);
		n = listed_in(ge, e) ? (long)ge->rg_live : -1;
	}
out:
	pthread_mutex_unlock(&c->lock);
	return n;
}

enum dbx_err dbx_cache_list(struct dbx_cache *c, const char *subscription,
			    const char *resource_group, struct dbx_dirlist *out,
			    struct dbx_error *err)
{
	struct entry *e = &c->root, *ge = NULL;
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
	if (resource_group)
		ge = find(c, subscription, resource_group, NULL);
	/* A resource group the listing knows is re-listed alone: its pages, not the subscription's.
	 */
	if (listed_in(ge, e))
		rc = refresh_rg(c, e, ge, subscription, resource_group, err);
	else if (!(e == &c->root && c->static_root))
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

/*
 * The item of e's listing matching rg and name (name NULL: the first order
 * of rg; rg NULL: name is a subscription of the root). Subscriptions are
 * few and scanned; orders and resource groups are found through their
 * entries (index_item), at the same cost whatever the listing's size.
 */
static const struct item *find_item(const struct dbx_cache *c, const struct entry *e,
				    const char *sub, const char *rg, const char *name)
{
	const struct entry *x;

	if (!rg) {
		for (size_t i = 0; i < e->n_items; i++) {
			if (strcasecmp(e->items[i].name, name) == 0)
				return &e->items[i];
		}
		return NULL;
	}
	x = find(c, sub, rg, name);
	if (!listed_in(x, e))
		return NULL;
	if (name)
		return e->items[x->item].gone ? NULL : &e->items[x->item];
	return x->rg_live > 0 ? &e->items[x->rg_head] : NULL;
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
	*found = find_item(c, e, sub, rg, name);
	if (*found || (e == &c->root && c->static_root) || within_ttl(c, e->listed_ms))
		goto out;
	rc = refresh_listing(c, e, sub, true, err);
	if (rc != DBX_OK)
		return rc;
	*found = find_item(c, e, sub, rg, name);
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

/*
 * Drop order entry oe from the listing of subscription sub (the order is
 * gone): its item is marked gone, and its resource group disappears with
 * its last order. Lock held.
 */
static void forget_order(struct dbx_cache *c, struct entry *oe, const char *sub)
{
	struct entry *se = find(c, sub, NULL, NULL);
	struct item *it;
	struct entry *ge;

	snap_put(oe->snap);
	oe->snap = NULL;
	if (!listed_in(oe, se) || se->items[oe->item].gone)
		return;
	it = &se->items[oe->item];
	it->gone = true;
	ge = find(c, sub, it->rg, NULL);
	if (listed_in(ge, se) && ge->rg_live > 0)
		ge->rg_live--;
}

static void fill_view(struct dbx_cache *c, struct entry *e, struct dbx_order_view *view)
{
	view->rc = e->rc;
	view->ino = dir_ino(e);
	view->mtime = c->started;
	view->has_write_err = e->has_write_err;
	view->write_changed = e->write_changed;
	view->operation_changed = e->operation_changed;
	if (e->operation) {
		view->operation = strdup(e->operation);
		view->operation_lost = !view->operation;
	}
	if (e->has_write_err) {
		view->write_err = *error_of(e->write_err);
		view->write_err_time = e->write_err_time;
		memcpy(view->write_target, e->write_target, sizeof(view->write_target));
	}
	if (e->rc != DBX_OK) {
		view->err = *error_of(e->err);
		view->err_time = e->err_time;
	}
	if (e->rc == DBX_ENOTFOUND)
		return;
	view->snap = snap_get(e->snap);
	view->order = view->snap ? view->snap->order : NULL;
	if (view->snap)
		view->mtime = view->snap->mtime;
}

/*
 * Order entry e is being read: remember it in the listing that holds it,
 * and call that listing walked when a different order of it was read
 * less than cache_ttl ago. Lock held.
 */
static void note_read(struct dbx_cache *c, struct entry *e)
{
	struct entry *se = e->feed;
	uint64_t now = now_ms(c);

	if (!listed_in(e, se))
		return;
	if (se->asked && se->asked_num != e->num && now - se->asked_ms < c->ttl_ms) {
		se->walked = true;
		se->walk_ms = now;
	}
	se->asked = true;
	se->asked_num = e->num;
	se->asked_ms = now;
}

/*
 * Whether stale order entry e is refreshed by re-listing its subscription
 * rather than by a GET of its own (docs/architecture.md, "Freshness"): its
 * listing holds it and carried details, and that listing is being re-made
 * right now, or others of its orders were read within cache_ttl (a walk:
 * tar, rsync, ls -lR, find, many readers). One order read alone GETs.
 * Never with cache_ttl=0, where every read asks for its own order. Lock held.
 */
static bool refresh_by_listing(struct dbx_cache *c, const struct entry *e, const char *sub,
			       const char *rg)
{
	const struct entry *se = e->feed;
	const struct entry *ge;

	if (c->ttl_ms == 0 || !listed_in(e, se) || !se->list_details)
		return false;
	ge = find(c, sub, rg, NULL);
	return se->fetching || (ge && ge->fetching) ||
	       (se->walked && now_ms(c) - se->walk_ms < c->ttl_ms);
}

/*
 * Refresh stale order entry e, of a walked listing, by reading the page
 * that listed it again (its URL verbatim): the pages a walk reaches after
 * they went stale cost one request each per cache_ttl, whatever the
 * size of their resource group. The orders of that page that the listing
 * holds are fed as a listing feeds them (put_seq and malformed rules
 * included); others are left to the next listing. True when that
 * settled e; false when e is to be refreshed otherwise (the page failed,
 * was fresh without e, or no longer lists e). Lock held; dropped while
 * ARM answers.
 */
static bool refreshed_by_page(struct dbx_cache *c, struct entry *e, const char *sub)
{
	struct collect col = {0};
	struct dbx_error fetch_err = {0};
	struct entry *se = e->feed;
	uint64_t gen = e->gen, put_seq_before, at_ms;
	struct page *pg;
	enum dbx_err rc;

	if (!listed_in(e, se) || !se->items[e->item].page)
		return false;
	pg = page_get(se->items[e->item].page);
	while (pg->fetching || se->fetching) {
		wait_refresh(c);
		if (e->gen != gen)
			goto out;
	}
	if (within_ttl(c, pg->at_ms) ||
	    (pg->rc != DBX_OK && now_ms(c) - pg->failed_ms < DBX_CACHE_FAIL_HOLD_MS))
		goto out;
	pg->fetching = true;
	put_seq_before = c->put_seq;
	pthread_mutex_unlock(&c->lock);
	rc = dbx_arm_list_job_page(c->arm, pg->url, sub, collect_job, &col, &fetch_err);
	if (rc == DBX_OK && col.oom)
		rc = DBX_ENOMEM;
	pthread_mutex_lock(&c->lock);
	at_ms = now_ms(c);
	for (size_t i = 0; rc == DBX_OK && i < col.n; i++) {
		struct dbx_order *o = col.orders[i];
		struct entry *oe =
		    o->resource_group && o->name ? find(c, sub, o->resource_group, o->name) : NULL;

		if (!listed_in(oe, se) || oe->fetching || oe->put_seq > put_seq_before)
			continue;
		if (o->malformed) {
			mark_malformed(c, oe, o->malformed);
		} else if (o->has_details) {
			col.orders[i] = NULL;
			if (o->mtime > 0)
				se->items[oe->item].mtime = o->mtime;
			if (publish_order(c, oe, compact_order(o)) != DBX_OK)
				continue; /* stays stale: refreshed otherwise */
		} else {
			continue;
		}
		oe->fetched_ms = at_ms;
		oe->gen++;
		/* o may be freed: the names as the listing keeps them */
		changed(c, sub, se->items[oe->item].rg, se->items[oe->item].name);
	}
	pg->rc = rc;
	if (rc == DBX_OK)
		pg->at_ms = at_ms;
	else
		pg->failed_ms = at_ms;
	pg->fetching = false;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
	collect_free(&col);
	release_parse_memory();
	pthread_mutex_lock(&c->lock);
out:
	page_put(pg);
	return e->gen != gen;
}

/*
 * Refresh stale order entry e through its listing (refresh_by_listing):
 * a re-list of its resource group rg (refresh_rg), shared with every
 * other reader. True when that settled e:
 * the new listing fed it (or a write published it meanwhile), or the
 * re-list failed, which is then e's failure too. False when the listing
 * came back without e's details: e is to be fetched alone. Lock held;
 * dropped while ARM answers.
 */
static bool refreshed_by_listing(struct dbx_cache *c, struct entry *e, const char *sub,
				 const char *rg)
{
	struct dbx_error fetch_err = {0};
	struct entry *ge = find(c, sub, rg, NULL);
	uint64_t gen = e->gen;
	enum dbx_err rc;

	if (listed_in(ge, e->feed))
		rc = refresh_rg(c, e->feed, ge, sub, rg, &fetch_err);
	else
		rc = refresh_listing(c, e->feed, sub, true, &fetch_err);
	if (e->gen != gen)
		return true;
	if (rc == DBX_OK)
		return false;
	e->rc = rc;
	keep_error(&e->err, &fetch_err, rc);
	e->err_time = wall(c);
	e->fetched = true;
	e->fetched_ms = now_ms(c);
	e->failed_ms = e->fetched_ms;
	e->gen++;
	pthread_cond_broadcast(&c->cond);
	return true;
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
	note_read(c, e);
	gen = e->gen;
	while (e->fetching) {
		wait_refresh(c);
		waited = true;
	}
	if ((e->fetched && within_ttl(c, e->fetched_ms)) || (waited && e->gen != gen) ||
	    failure_held(c, e)) {
		dbx_stats_cache(true);
		goto done;
	}
	dbx_stats_cache(false); /* refreshed below: a page, a re-list or a GET */
	if (refresh_by_listing(c, e, subscription, resource_group)) {
		if (refreshed_by_page(c, e, subscription) ||
		    refreshed_by_listing(c, e, subscription, resource_group))
			goto done;
		/* The listing came back without this order's details: ask for it alone. */
		gen = e->gen;
		while (e->fetching) {
			wait_refresh(c);
			waited = true;
		}
		if ((e->fetched && within_ttl(c, e->fetched_ms)) || (waited && e->gen != gen))
			goto done;
	}

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
		keep_error(&e->err, &fetch_err, rc);
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
	free(view->operation);
	view->operation = NULL;
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
		drop_error(&e->write_err);
		goto out;
	}
	e->has_write_err = true;
	keep_error(&e->write_err, err, err->err);
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

/* ---- The walk of every listed order (dbx_cache_walk) ---- */

struct walked {
	char *rg, *name;
	struct dbx_order_view view;
};

/*
 * Copy out the orders of subscription sub's current listing, each with its
 * view, so fn can be called without the lock. Refreshes the listing first
 * when older than the TTL. DBX_ENOMEM only; *out NULL when nothing is listed.
 */
static enum dbx_err walk_sub(struct dbx_cache *c, const char *sub, struct walked **out, size_t *n)
{
	struct dbx_error ignored = {0};
	struct walked *w = NULL;
	struct entry *e, *oe;
	enum dbx_err rc = DBX_OK;

	*out = NULL;
	*n = 0;
	pthread_mutex_lock(&c->lock);
	e = intern(c, sub, NULL, NULL);
	if (!e) {
		rc = DBX_ENOMEM;
		goto out;
	}
	if (refresh_listing(c, e, sub, true, &ignored) != DBX_OK && !e->has_listing)
		goto out;
	w = calloc(e->n_items ? e->n_items : 1, sizeof(*w));
	if (!w) {
		rc = DBX_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < e->n_items; i++) {
		const struct item *it = &e->items[i];

		if (it->gone)
			continue;
		oe = find(c, sub, it->rg, it->name);
		w[*n].rg = strdup(it->rg);
		w[*n].name = strdup(it->name);
		if (!oe || !w[*n].rg || !w[*n].name) {
			free(w[*n].rg);
			free(w[*n].name);
			rc = DBX_ENOMEM;
			break;
		}
		fill_view(c, oe, &w[*n].view);
		(*n)++;
	}
	*out = w;
out:
	pthread_mutex_unlock(&c->lock);
	return rc;
}

enum dbx_err dbx_cache_walk(struct dbx_cache *c, dbx_cache_walk_fn fn, void *ctx,
			    struct dbx_error *err)
{
	struct dbx_dirlist subs = {0};
	struct walked *w = NULL;
	size_t n = 0;
	bool stop = false;
	enum dbx_err rc;

	rc = dbx_cache_list(c, NULL, NULL, &subs, err);
	for (size_t s = 0; rc == DBX_OK && s < subs.n && !stop; s++) {
		rc = walk_sub(c, subs.v[s].name, &w, &n);
		for (size_t i = 0; i < n; i++) {
			if (rc == DBX_OK && !stop)
				stop = fn(ctx, subs.v[s].name, w[i].rg, w[i].name, &w[i].view) != 0;
			dbx_order_view_release(&w[i].view);
			free(w[i].rg);
			free(w[i].name);
		}
		free(w);
		w = NULL;
		if (rc == DBX_ENOMEM)
			dbx_error_set(err, rc, "out of memory");
	}
	dbx_dirlist_free(&subs);
	return rc;
}

void dbx_cache_set_operation(struct dbx_cache *c, const char *subscription,
			     const char *resource_group, const char *name, const char *text)
{
	char *copy = text && *text ? strdup(text) : NULL;
	struct entry *e;

	pthread_mutex_lock(&c->lock);
	e = intern(c, subscription, resource_group, name);
	if (!e)
		goto out;
	free(e->operation);
	/* Out of memory: an empty file, better than one that lies. */
	e->operation = copy;
	copy = NULL;
	e->operation_changed = wall(c);
	changed(c, subscription, resource_group, name);
out:
	pthread_mutex_unlock(&c->lock);
	free(copy);
}
