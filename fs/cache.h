/*
 * cache.h: what the mount knows about subscriptions and orders, and when it
 * must ask ARM again.
 *
 * Three kinds of state, each refreshed when older than cache_ttl on the
 * injected clock, each with single flight (concurrent misses for the same
 * object wait for one request and share its result):
 *   - the root listing: the -o subscription= list, or GET /subscriptions;
 *   - per subscription: the job list (all pages), which gives the resource
 *     groups and the orders, and feeds each order that came with details;
 *   - per order: a refcounted immutable snapshot of struct dbx_order, from
 *     the listing or from a GET with $expand=details.
 * A stale order is refreshed by reading again the page that listed it
 * when its subscription's listing is being walked (another of its orders
 * was read within cache_ttl) or is being re-made; an order read alone, or
 * any read with cache_ttl=0, is a GET (docs/architecture.md,
 * "Freshness"). A readdir of a resource group re-lists that group alone.
 * A reader keeps the snapshot it took even when the cache moves on. When a
 * refresh fails the old snapshot is kept only so the errors file can show
 * it next to the failure; callers must not show it as live. A 404 removes
 * the order. An order its listing sent malformed (wrong-typed fields, but
 * a usable id and name) is listed and fails the same way, DBX_EREMOTE with
 * the field named, until a good answer about it arrives.
 *
 * Writes go through the cache too: a per-order write lock, the result of a
 * successful write published as the fresh state, and the order's last-write
 * error kept for the errors file until the next successful write, or until
 * a refresh shows that a write which timed out after its PATCH did land.
 *
 * Inode numbers: every subscription, resource group and order key (case
 * insensitive) is interned once to a number n for the life of the cache;
 * its directory is inode n * 16 and file i of an order is n * 16 + 1 + i.
 * The root is inode 1.
 */
#ifndef DATABOXFS_FS_CACHE_H
#define DATABOXFS_FS_CACHE_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "databoxfs/arm.h"
#include "databoxfs/clock.h"
#include "databoxfs/err.h"
#include "databoxfs/http.h"
#include "databoxfs/order.h"

/*
 * A failed refresh is the answer for this long, even past cache_ttl (and
 * with cache_ttl=0): the rest of one system call fails at once.
 */
#define DBX_CACHE_FAIL_HOLD_MS 500

#define DBX_INO_ROOT  1
#define DBX_INO_SHIFT 4 /* room for 15 files per order */

struct dbx_cache;

struct dbx_cache_config {
	struct dbx_arm *arm;		  /* not owned */
	const struct dbx_clock *clock;	  /* TTL, write-lock waits, mtimes and error times */
	uint64_t ttl_ms;		  /* 0: every open/stat asks again */
	const char *const *subscriptions; /* NULL-terminated list to show, or NULL: list them */
	/*
	 * Called when what order subscription/resource_group/name shows may
	 * have changed: a refresh of it ended (a GET, or a listing that
	 * carried it, whatever the answer), a write published its result, or
	 * a write's outcome changed its errors file. NULL: nobody to tell.
	 * Called with the cache's lock held: it must not call back into the
	 * cache nor block (the mount queues the order and looks later).
	 */
	void (*on_change)(void *ctx, const char *subscription, const char *resource_group,
			  const char *name);
	void *on_change_ctx;
};

/* A new cache (copies the subscription list), or NULL on ENOMEM. */
struct dbx_cache *dbx_cache_new(const struct dbx_cache_config *cfg);
void dbx_cache_free(struct dbx_cache *c);

/* The wall-clock time the cache was created: the mtime of directories without one. */
time_t dbx_cache_started(const struct dbx_cache *c);

/* UTC now on the cache's clock (the mount's: struct dbx_cache_config's). */
time_t dbx_cache_wall(const struct dbx_cache *c);

/* One entry of a directory listing. */
struct dbx_dirent {
	char *name; /* spelled as ARM (or -o subscription=) spells it */
	uint64_t ino;
	time_t mtime;
};

struct dbx_dirlist {
	struct dbx_dirent *v;
	size_t n;
};

void dbx_dirlist_free(struct dbx_dirlist *l);

/*
 * List a directory, refreshing it first when older than the TTL:
 * subscription NULL lists the root (subscriptions), resource_group NULL
 * lists a subscription (its resource groups), else the orders of one
 * resource group. On failure out is empty and err says why.
 */
DBX_MUST_CHECK enum dbx_err dbx_cache_list(struct dbx_cache *c, const char *subscription,
					   const char *resource_group, struct dbx_dirlist *out,
					   struct dbx_error *err);

/*
 * Whether the directory exists: the root, a subscription, a resource group
 * (resource_group set) or an order (name set too). Answers from the current
 * listing when it has the entry, even past the TTL (an order's own reads
 * refresh it); else refreshes the listing once. DBX_ENOTFOUND when it does
 * not exist. Fills *ino and *mtime.
 */
DBX_MUST_CHECK enum dbx_err dbx_cache_lookup(struct dbx_cache *c, const char *subscription,
					     const char *resource_group, const char *name,
					     uint64_t *ino, time_t *mtime, struct dbx_error *err);

struct dbx_snap;

/* What a reader holds of one order. Release with dbx_order_view_release(). */
struct dbx_order_view {
	struct dbx_snap *snap; /* reference held by the view, or NULL */
	const struct dbx_order
	    *order;	      /* snap's order: live when rc == DBX_OK, else stale or NULL */
	uint64_t ino;	      /* the order directory's inode */
	time_t mtime;	      /* lastModifiedAt, or when the mount first saw this state */
	enum dbx_err rc;      /* the latest refresh: DBX_OK, or why it failed */
	struct dbx_error err; /* when rc != DBX_OK */
	time_t err_time;      /* when that refresh failed (wall clock) */
	/* The latest failed write to this order through this mount (errors file). */
	bool has_write_err;
	struct dbx_error write_err;
	time_t write_err_time; /* wall clock */
	char write_target[32]; /* the file written, e.g. "key_url" */
	time_t write_changed;  /* when a last-write error was last recorded or cleared, or 0 */
	/* The operation file's text (malloc'd copy, freed by the release), NULL when empty. */
	char *operation;
	bool operation_lost;	  /* there is one, but the copy ran out of memory */
	time_t operation_changed; /* when the text was last set or cleared, or 0 */
};

/*
 * The state of one order, fetched again (GET $expand=details) when older
 * than the TTL. Returns view->rc. DBX_ENOTFOUND: the order does not exist
 * (and is removed from its listing). Any other failure leaves the last good
 * snapshot (or NULL) in view->order for the errors file only. The view
 * must be released whatever the result.
 */
DBX_MUST_CHECK enum dbx_err dbx_cache_order(struct dbx_cache *c, const char *subscription,
					    const char *resource_group, const char *name,
					    struct dbx_order_view *view, struct dbx_error *err);

void dbx_order_view_release(struct dbx_order_view *view);

/*
 * Writes. A write to an order holds that order's write lock from before it
 * reads the current value until the cache holds the result, so writes to
 * one order run one at a time while other orders, and every read, go on.
 */

/*
 * How many subdirectories directory (subscription, resource_group) holds
 * as the cache knows it now, without asking ARM: the subscriptions of the
 * root (both NULL), the resource groups of a subscription, the orders of a
 * resource group. -1 when it was never listed.
 */
long dbx_cache_subdirs(struct dbx_cache *c, const char *subscription, const char *resource_group);

/*
 * What the cache holds for the order now, without asking ARM: fills view as
 * dbx_cache_order() does (view->order NULL when the order was never read)
 * and *fresh says whether that state is within the TTL. Release the view.
 */
void dbx_cache_peek(struct dbx_cache *c, const char *subscription, const char *resource_group,
		    const char *name, struct dbx_order_view *view, bool *fresh);

/*
 * Take the order's write lock, waiting while another write holds it. The
 * wait ends with DBX_EINTR as soon as interrupted(ictx) says so (polled;
 * interrupted may be NULL) and with DBX_ETIMEDOUT after timeout_ms on the
 * cache's clock (0: no bound). DBX_ENOMEM when the order cannot be interned.
 */
DBX_MUST_CHECK enum dbx_err dbx_cache_write_lock(struct dbx_cache *c, const char *subscription,
						 const char *resource_group, const char *name,
						 uint64_t timeout_ms, int (*interrupted)(void *ctx),
						 void *ictx, struct dbx_error *err);

/* How many writers are waiting for some order's write lock (for tests). */
unsigned dbx_cache_write_waiters(struct dbx_cache *c);

/* Release the lock taken by dbx_cache_write_lock() (same order key). */
void dbx_cache_write_unlock(struct dbx_cache *c, const char *subscription,
			    const char *resource_group, const char *name);

/*
 * Publish order (taken over, freed on failure) as the order's fresh state:
 * the result of a write, so the next read shows it without a GET. A read
 * that was already in flight when the write finished does not overwrite it
 * with older state. DBX_ENOMEM only.
 */
DBX_MUST_CHECK enum dbx_err dbx_cache_put_order(struct dbx_cache *c, const char *subscription,
						const char *resource_group, const char *name,
						struct dbx_order *order);

/*
 * Record how the latest write to the order ended: err NULL (success) clears
 * the last-write error, else err is kept (with the time, on the cache's wall
 * clock, and target, the file written) for the errors file.
 */
void dbx_cache_write_result(struct dbx_cache *c, const char *subscription,
			    const char *resource_group, const char *name, const char *target,
			    const struct dbx_error *err);

/* Whether order shows the change of a write that may still land (ctx: that write's). */
typedef bool (*dbx_cache_landed_fn)(const struct dbx_order *order, const void *ctx);

/*
 * The order's last-write error (just recorded) is a write that may still
 * land: ETIMEDOUT after ARM took its PATCH. Every later refresh of the
 * order (a GET, or a listing with details) asks landed(order, copy of
 * ctx, ctx_len bytes) and clears that error when it answers true: the
 * order shows the change, so the write did land. false keeps it. The
 * check goes with the next dbx_cache_write_result() of the order. Called
 * with the write lock held, after dbx_cache_write_result(); does nothing
 * when there is no error to clear, or when out of memory.
 */
void dbx_cache_write_may_land(struct dbx_cache *c, const char *subscription,
			      const char *resource_group, const char *name,
			      dbx_cache_landed_fn landed, const void *ctx, size_t ctx_len);

/*
 * Called once per order by dbx_cache_walk(), without the cache's lock;
 * view as dbx_cache_peek() fills it (the walk releases it). Non-zero stops.
 */
typedef int (*dbx_cache_walk_fn)(void *ctx, const char *subscription, const char *resource_group,
				 const char *name, const struct dbx_order_view *view);

/*
 * Every order of every visible subscription, from the listings alone (the
 * control directory's orders file): the root listing and each
 * subscription's job listing are refreshed first when older than the TTL,
 * which costs their pages and never a GET per order; then fn is called for
 * each order listed, in listing order. A subscription whose re-list fails
 * is walked from its previous listing, when there is one, else skipped.
 * DBX_OK, or the root listing's failure, or DBX_ENOMEM.
 */
DBX_MUST_CHECK enum dbx_err dbx_cache_walk(struct dbx_cache *c, dbx_cache_walk_fn fn, void *ctx,
					   struct dbx_error *err);

/*
 * Set the order's operation file to text (copied; NULL or "" clears it):
 * what a write in flight is doing, shown as a snapshot so its size is
 * exact. Tells on_change, so the kernel drops what it holds of it.
 */
void dbx_cache_set_operation(struct dbx_cache *c, const char *subscription,
			     const char *resource_group, const char *name, const char *text);

/* How many threads are waiting for a refresh another thread is making (for tests). */
unsigned dbx_cache_waiters(struct dbx_cache *c);

/* The inode of file attr (index into dbx_attrs) of the order whose directory is dir_ino. */
static inline uint64_t dbx_ino_file(uint64_t dir_ino, size_t attr)
{
	return dir_ino + 1 + attr;
}

#endif
