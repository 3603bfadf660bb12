/*
 * test_fs_cache.c: the cache (fs/cache.c) and the plain filesystem
 * operations over it (fs/fs.c), on a real struct dbx_arm over the scripted
 * fake transport and the fake clock. What is counted is what a user pays
 * for: ARM requests per tar-like walk, per TTL expiry, per concurrent miss;
 * and what a user sees: st_size equal to the bytes read, read errors with
 * the reason in errors, inode numbers that do not move.
 */
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "databoxfs/arm.h"
#include "cache.h"
#include "fake_transport.h"
#include "fs.h"

#define SUB	  "0b1f6471-1bf0-4dda-aec3-111122223333"
#define PRINCIPAL "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
#define ARM	  "https://management.azure.com"

#define DETAILS                                                                                    \
	", \"details\": {\"jobDetailsType\": \"DataBox\", \"keyEncryptionKey\": {\"kekType\": "    \
	"\"MicrosoftManaged\"}}"
#define KEK_ERROR                                                                                  \
	", \"error\": {\"code\": \"SsemUserErrorEncryptionKeyDisabled\", \"message\": \"Could "    \
	"not "                                                                                     \
	"fetch the passkey as the customer-managed key is disabled.\"}"

/* One JobResource; rgseg is "resourceGroups" or "resourcegroups" (list responses). */
#define JOB_AT(rgseg, rg, name, status, props)                                                     \
	"{\"id\": \"/subscriptions/" SUB "/" rgseg "/" rg                                          \
	"/providers/Microsoft.DataBox/jobs/" name "\", \"name\": \"" name                          \
	"\", \"type\": \"Microsoft.DataBox/jobs\", \"location\": "                                 \
	"\"westus\", \"sku\": {\"name\": \"DataBox\"}, \"identity\": {\"type\": "                  \
	"\"SystemAssigned\", \"principalId\": \"" PRINCIPAL "\"}, \"systemData\": "                \
	"{\"lastModifiedAt\": \"2026-11-28T12:00:00Z\"}, \"properties\": {\"status\": \"" status   \
	"\"" props "}}"
#define JOB(rg, name, status, props) JOB_AT("resourceGroups", rg, name, status, props)

#define SUBS_PAGE                                                                                  \
	"{\"value\": [{\"id\": \"/subscriptions/" SUB "\", \"subscriptionId\": \"" SUB "\"}]}"
#define NEXT                                                                                       \
	ARM "/subscriptions/" SUB                                                                  \
	    "/providers/Microsoft.DataBox/jobs?api-version=2025-07-01&%24skipToken=p2"
#define JOBS_PAGE1                                                                                 \
	"{\"value\": [" JOB("rg1", "order1", "DeviceOrdered", DETAILS) ", " JOB(                   \
	    "rg1", "order2", "DataCopy", DETAILS KEK_ERROR) "], \"nextLink\": \"" NEXT "\"}"
#define JOBS_PAGE2                                                                                 \
	"{\"value\": [" JOB_AT("resourcegroups", "RG2", "order3", "Delivered", DETAILS) "]}"

struct env {
	struct fake_transport ft;
	struct fake_clock fc;
	struct dbx_arm *arm;
	struct dbx_cache *cache;
	struct dbx_fs fs;
};

static struct env *env_new(const struct fake_reply *script, size_t n, uint64_t ttl_ms,
			   const char *const *subs)
{
	struct env *env = calloc(1, sizeof(*env));
	struct dbx_cache_config cc = {0};

	assert_non_null(env);
	fake_transport_init(&env->ft, script, n);
	fake_clock_init(&env->fc, 1000000);
	env->arm =
	    dbx_arm_new(&env->ft.base, dbx_cloud_default(), "2025-07-01", 30000, &env->fc.clock);
	assert_non_null(env->arm);
	cc.arm = env->arm;
	cc.clock = &env->fc.clock;
	cc.ttl_ms = ttl_ms;
	cc.subscriptions = subs;
	env->cache = dbx_cache_new(&cc);
	assert_non_null(env->cache);
	env->fs.cache = env->cache;
	env->fs.uid = 1234;
	env->fs.gid = 5678;
	return env;
}

static void env_free(struct env *env)
{
	dbx_cache_free(env->cache);
	dbx_arm_free(env->arm);
	fake_transport_fini(&env->ft);
	free(env);
}

/* Requests whose URL contains what. */
static size_t count(struct env *env, const char *what)
{
	size_t n = 0;

	for (size_t i = 0; i < env->ft.n_calls; i++)
		n += strstr(env->ft.calls[i].url, what) != NULL;
	return n;
}

#define N_GETS(env)	count(env, "/jobs/")
#define N_LISTS(env)	count(env, "/jobs?")
#define N_SUBLISTS(env) count(env, "/subscriptions?")

struct listing {
	char names[64][256];
	struct stat st[64];
	int has_st[64];
	size_t n;
};

static int collect(void *ctx, const char *name, const struct stat *st)
{
	struct listing *l = ctx;

	assert_true(l->n < 64);
	snprintf(l->names[l->n], sizeof(l->names[l->n]), "%s", name);
	l->has_st[l->n] = st != NULL;
	if (st)
		l->st[l->n] = *st;
	l->n++;
	return 0;
}

static void list(struct env *env, const char *path, struct listing *l)
{
	struct dbx_error err = {0};

	memset(l, 0, sizeof(*l));
	assert_int_equal(dbx_fs_readdir(&env->fs, path, collect, l, &err), DBX_OK);
	assert_true(l->n >= 2);
	assert_string_equal(l->names[0], ".");
	assert_string_equal(l->names[1], "..");
}

/* The kernel's path walk: every ancestor of path is looked up (getattr) first. */
static void lookup_parents(struct env *env, const char *path)
{
	char prefix[1024];

	for (const char *p = strchr(path + 1, '/'); p; p = strchr(p + 1, '/')) {
		struct dbx_error err = {0};
		struct stat st;

		snprintf(prefix, sizeof(prefix), "%.*s", (int)(p - path), path);
		assert_int_equal(dbx_fs_getattr(&env->fs, prefix, &st, &err), DBX_OK);
		assert_true(S_ISDIR(st.st_mode));
	}
}

static char *read_file(struct env *env, const char *path, size_t *len)
{
	struct dbx_error err = {0};
	char *buf = NULL;

	lookup_parents(env, path);

	assert_int_equal(dbx_fs_open(&env->fs, path, &buf, len, &err), DBX_OK);
	return buf;
}

/*
 * What tar does: readdir everything, lstat every entry, read every file.
 * Checks st_size == bytes read and the readdir stat == getattr stat.
 * Returns the number of files read.
 */
static size_t walk(struct env *env, const char *path)
{
	struct listing *l = malloc(sizeof(*l));
	size_t files = 0;

	assert_non_null(l);
	list(env, path, l);
	for (size_t i = 2; i < l->n; i++) {
		char child[1024];
		struct stat st;
		struct dbx_error err = {0};

		snprintf(child, sizeof(child), "%s%s%s", path, strcmp(path, "/") ? "/" : "",
			 l->names[i]);
		assert_int_equal(dbx_fs_getattr(&env->fs, child, &st, &err), DBX_OK);
		assert_true(l->has_st[i]);
		assert_int_equal(l->st[i].st_ino, st.st_ino);
		assert_int_equal(l->st[i].st_size, st.st_size);
		assert_int_equal(l->st[i].st_mode, st.st_mode);
		assert_int_equal(st.st_uid, 1234);
		assert_int_equal(st.st_gid, 5678);
		if (S_ISDIR(st.st_mode)) {
			assert_int_equal(st.st_mode & 07777, 0555);
			files += walk(env, child);
		} else {
			size_t len = 0;
			char *buf = read_file(env, child, &len);

			assert_int_equal((size_t)st.st_size, len);
			assert_int_equal(st.st_blocks, (blkcnt_t)((len + 511) / 512));
			free(buf);
			files++;
		}
	}
	free(l);
	return files;
}

static const struct fake_reply tree_script[] = {
    {.status = 200, .body = SUBS_PAGE},
    {.status = 200, .body = JOBS_PAGE1},
    {.status = 200, .body = JOBS_PAGE2},
};

/* tar -cf - MOUNT: one subscriptions list, the pages of the job list, zero GETs. */
static void test_walk_costs_pages_only(void **state)
{
	struct env *env = env_new(tree_script, 3, 2000, NULL);
	struct listing l;

	(void)state;
	assert_int_equal(walk(env, "/"), 3 * 9);
	assert_int_equal(N_SUBLISTS(env), 1);
	assert_int_equal(N_LISTS(env), 2); /* page 1 and its nextLink */
	assert_int_equal(N_GETS(env), 0);
	assert_int_equal(env->ft.n_calls, 3);

	list(env, "/" SUB, &l);
	assert_int_equal(l.n, 4);
	assert_string_equal(l.names[2], "rg1");
	assert_string_equal(l.names[3], "RG2");
	list(env, "/" SUB "/rg1", &l);
	assert_int_equal(l.n, 4);
	assert_string_equal(l.names[2], "order1");
	assert_string_equal(l.names[3], "order2");
	/* Within the TTL nothing more was asked. */
	assert_int_equal(env->ft.n_calls, 3);
	env_free(env);
}

static void test_contents_and_mtime(void **state)
{
	struct env *env = env_new(tree_script, 3, 2000, NULL);
	struct dbx_error err = {0};
	struct stat st;
	size_t len;
	char *buf;

	(void)state;
	buf = read_file(env, "/" SUB "/rg1/order2/status", &len);
	assert_string_equal(buf, "DataCopy\n");
	free(buf);
	buf = read_file(env, "/" SUB "/RG2/order3/identity", &len);
	assert_string_equal(buf, "SystemAssigned\n");
	free(buf);
	buf = read_file(env, "/" SUB "/rg1/order2/errors", &len);
	assert_non_null(strstr(buf, "code: SsemUserErrorEncryptionKeyDisabled\nsource: order\n"));
	free(buf);
	assert_int_equal(dbx_fs_getattr(&env->fs, "/" SUB "/rg1/order1/key_url", &st, &err),
			 DBX_OK);
	assert_int_equal(st.st_size, 0); /* absent value: empty file */
	assert_int_equal(st.st_mode, S_IFREG | 0644);
	assert_int_equal(st.st_mtime,
			 1795867200); /* systemData.lastModifiedAt 2026-11-28T12:00:00Z */
	assert_int_equal(dbx_fs_getattr(&env->fs, "/" SUB "/rg1/order1/status", &st, &err), DBX_OK);
	assert_int_equal(st.st_mode, S_IFREG | 0444);
	assert_int_equal(st.st_size, strlen("DeviceOrdered\n"));
	/* Not there: no such order in the listing, no such file. */
	assert_int_equal(dbx_fs_getattr(&env->fs, "/" SUB "/rg1/nosuch", &st, &err), DBX_ENOTFOUND);
	assert_int_equal(dbx_fs_getattr(&env->fs, "/" SUB "/rg1/order1/nosuch", &st, &err),
			 DBX_ENOTFOUND);
	env_free(env);
}

static const struct fake_reply expiry_script[] = {
    {.status = 200, .body = SUBS_PAGE},
    {.status = 200, .body = JOBS_PAGE1},
    {.status = 200, .body = JOBS_PAGE2},
    {.status = 200, .body = JOB("rg1", "order1", "DataCopy", DETAILS)},
};

/* Past the TTL, the next open asks once (GET $expand=details) and shows the new state. */
static void test_ttl_expiry_one_get(void **state)
{
	struct env *env = env_new(expiry_script, 4, 2000, NULL);
	struct dbx_error err = {0};
	struct stat st;
	size_t len;
	char *buf;

	(void)state;
	buf = read_file(env, "/" SUB "/rg1/order1/status", &len);
	assert_string_equal(buf, "DeviceOrdered\n");
	free(buf);
	assert_int_equal(N_GETS(env), 0);

	env->fc.now += 1999;
	buf = read_file(env, "/" SUB "/rg1/order1/status", &len);
	assert_string_equal(buf, "DeviceOrdered\n");
	free(buf);
	assert_int_equal(N_GETS(env), 0);

	env->fc.now += 2;
	assert_int_equal(dbx_fs_getattr(&env->fs, "/" SUB "/rg1/order1/status", &st, &err), DBX_OK);
	assert_int_equal(st.st_size, strlen("DataCopy\n"));
	buf = read_file(env, "/" SUB "/rg1/order1/status", &len);
	assert_string_equal(buf, "DataCopy\n");
	free(buf);
	assert_int_equal(N_GETS(env), 1);
	assert_non_null(strstr(env->ft.calls[env->ft.n_calls - 1].url,
			       "/resourceGroups/rg1/providers/Microsoft.DataBox/jobs/order1?"));
	assert_non_null(strstr(env->ft.calls[env->ft.n_calls - 1].url, "$expand=details"));
	/* Only the order that was read was asked about; the listing was not. */
	assert_int_equal(N_LISTS(env), 2);
	assert_int_equal(env->ft.n_calls, 4);
	env_free(env);
}

/* A list item without details is fetched on its own, once. */
static void test_list_without_details(void **state)
{
	static const struct fake_reply script[] = {
	    {.status = 200, .body = "{\"value\": [" JOB("rg1", "bare", "DeviceOrdered", "") "]}"},
	    {.status = 200, .body = JOB("rg1", "bare", "DeviceOrdered", DETAILS)},
	};
	static const char *const subs[] = {SUB, NULL};
	struct env *env = env_new(script, 2, 2000, subs);
	struct listing l;
	size_t files;

	(void)state;
	files = walk(env, "/");
	assert_int_equal(files, 9);	      /* the files of dbx_attrs, operation the last */
	assert_int_equal(N_SUBLISTS(env), 0); /* -o subscription=: no subscriptions list */
	assert_int_equal(N_LISTS(env), 1);
	assert_int_equal(N_GETS(env), 1);
	list(env, "/", &l);
	assert_int_equal(l.n, 3);
	assert_string_equal(l.names[2], SUB);
	env_free(env);
}

#define JOBS_PAGE1_LATER                                                                           \
	"{\"value\": [" JOB("rg1", "order1", "DeviceOrdered", DETAILS) ", " JOB(                   \
	    "rg1", "order2", "Delivered", DETAILS) "], \"nextLink\": \"" NEXT "\"}"
#define RG1_LATER                                                                                  \
	"{\"value\": [" JOB("rg1", "order1", "DeviceOrdered", DETAILS) ", " JOB(                   \
	    "rg1", "order2", "Delivered", DETAILS) ", " JOB("rg1", "order4", "Delivered",          \
							    DETAILS) "]}"

/*
 * Past the TTL, one order read alone is one GET; once a second order of
 * the same listing is read within the TTL (a walk), each stale order is
 * refreshed by reading again the page that listed it (its URL, nextLink
 * included, verbatim), never by a GET each; a readdir of the resource
 * group re-lists that group alone, and what it says (a new order) is
 * what the group lists.
 */
static void test_stale_walk_relists(void **state)
{
	static const struct fake_reply script[] = {
	    {.status = 200, .body = SUBS_PAGE},
	    {.status = 200, .body = JOBS_PAGE1},
	    {.status = 200, .body = JOBS_PAGE2},
	    {.status = 200, .body = JOB("rg1", "order1", "DeviceOrdered", DETAILS)},
	    {.status = 200, .body = JOBS_PAGE1_LATER},
	    {.status = 200, .body = JOBS_PAGE2},
	    {.status = 200, .body = RG1_LATER},
	};
	struct env *env = env_new(script, 7, 2000, NULL);
	struct listing l;
	size_t len;
	char *buf;

	(void)state;
	assert_int_equal(walk(env, "/"), 3 * 9);
	assert_int_equal(env->ft.n_calls, 3);

	env->fc.now += 2500; /* every order is stale, and the walk is over */
	buf = read_file(env, "/" SUB "/rg1/order1/status", &len);
	free(buf);
	assert_int_equal(N_GETS(env), 1); /* read alone */
	assert_int_equal(N_LISTS(env), 2);

	buf = read_file(env, "/" SUB "/rg1/order2/status", &len);
	assert_string_equal(buf, "Delivered\n"); /* from page 1, read again */
	free(buf);
	buf = read_file(env, "/" SUB "/rg1/order1/key_url", &len); /* fed by the same page */
	free(buf);
	buf = read_file(env, "/" SUB "/RG2/order3/status", &len);
	assert_string_equal(buf, "Delivered\n");
	free(buf);
	assert_int_equal(N_GETS(env), 1);
	assert_int_equal(N_LISTS(env), 4);
	assert_string_equal(env->ft.calls[4].url, env->ft.calls[1].url);
	assert_string_equal(env->ft.calls[5].url, NEXT);
	assert_int_equal(env->ft.n_calls, 6);

	list(env, "/" SUB "/rg1", &l);
	assert_non_null(strstr(env->ft.calls[6].url, "/resourceGroups/rg1/providers/"));
	assert_int_equal(l.n, 5);
	assert_string_equal(l.names[4], "order4");

	/* Within the TTL, the orders (and rg1, re-listed) cost nothing. */
	env->fc.now += 1000;
	buf = read_file(env, "/" SUB "/rg1/order1/encryption.json", &len);
	free(buf);
	assert_int_equal(walk(env, "/" SUB "/rg1"), 3 * 9);
	buf = read_file(env, "/" SUB "/RG2/order3/errors", &len);
	free(buf);
	assert_int_equal(env->ft.n_calls, 7);
	env_free(env);
}

/* With cache_ttl=0 every read asks for its own order: a walk never turns into re-lists. */
static void test_ttl_zero_walk_gets(void **state)
{
	static const struct fake_reply script[] = {
	    {.status = 200, .body = SUBS_PAGE},
	    {.status = 200, .body = JOBS_PAGE1},
	    {.status = 200, .body = JOBS_PAGE2},
	    {.status = 200, .body = JOB("rg1", "order1", "DeviceOrdered", DETAILS)},
	    {.status = 200, .body = JOB("rg1", "order2", "Delivered", DETAILS)},
	};
	struct env *env = env_new(script, 5, 0, NULL);
	struct dbx_error err = {0};
	char *buf = NULL;
	size_t len;

	(void)state;
	lookup_parents(env, "/" SUB "/rg1/order1/status");
	assert_int_equal(env->ft.n_calls, 3);
	assert_int_equal(dbx_fs_open(&env->fs, "/" SUB "/rg1/order1/status", &buf, &len, &err),
			 DBX_OK);
	free(buf);
	assert_int_equal(dbx_fs_open(&env->fs, "/" SUB "/rg1/order2/status", &buf, &len, &err),
			 DBX_OK);
	assert_string_equal(buf, "Delivered\n");
	free(buf);
	assert_int_equal(N_GETS(env), 2);
	assert_int_equal(N_LISTS(env), 2);
	env_free(env);
}

/* A transport that holds every request until the test opens it. */
struct gate {
	struct dbx_transport base;
	struct dbx_transport *inner;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int sends;
	int open;
};

static enum dbx_err gate_send(struct dbx_transport *self, const struct dbx_http_request *req,
			      struct dbx_http_response *resp, struct dbx_error *err)
{
	struct gate *g = (struct gate *)self;

	pthread_mutex_lock(&g->lock);
	g->sends++;
	while (!g->open)
		pthread_cond_wait(&g->cond, &g->lock);
	pthread_mutex_unlock(&g->lock);
	return g->inner->send(g->inner, req, resp, err);
}

static void gate_destroy(struct dbx_transport *self)
{
	(void)self;
}

struct reader {
	struct dbx_fs *fs;
	char *buf;
	size_t len;
	enum dbx_err rc;
};

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	struct dbx_error err = {0};

	r->rc = dbx_fs_open(r->fs, "/" SUB "/rg1/order1/status", &r->buf, &r->len, &err);
	return NULL;
}

static int gate_sends(struct gate *g)
{
	int n;

	pthread_mutex_lock(&g->lock);
	n = g->sends;
	pthread_mutex_unlock(&g->lock);
	return n;
}

/* 8 readers miss the same order at once (cache_ttl=0): one GET, one answer for all. */
static void test_single_flight(void **state)
{
	static const struct fake_reply script[] = {
	    {.status = 200, .body = JOB("rg1", "order1", "DataCopy", DETAILS)},
	    {.status = 200, .body = JOB("rg1", "order1", "Delivered", DETAILS)},
	};
	struct fake_transport ft;
	struct fake_clock fc;
	struct gate g = {.base = {gate_send, gate_destroy}, .inner = &ft.base};
	struct dbx_cache_config cc = {0};
	struct dbx_arm *arm;
	struct dbx_cache *cache;
	struct dbx_fs fs = {0};
	struct reader r[8] = {0};
	pthread_t t[8];
	struct timespec start, now;

	(void)state;
	pthread_mutex_init(&g.lock, NULL);
	pthread_cond_init(&g.cond, NULL);
	fake_transport_init(&ft, script, 2);
	fake_clock_init(&fc, 1000);
	arm = dbx_arm_new(&g.base, dbx_cloud_default(), "2025-07-01", 30000, &fc.clock);
	cc.arm = arm;
	cc.clock = &fc.clock;
	cc.ttl_ms = 0;
	cache = dbx_cache_new(&cc);
	fs.cache = cache;
	for (int i = 0; i < 8; i++) {
		r[i].fs = &fs;
		assert_int_equal(pthread_create(&t[i], NULL, reader_main, &r[i]), 0);
	}
	/* Wait (bounded, no sleep) until one request is held and the 7 others wait for it. */
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		if (gate_sends(&g) > 1 || (gate_sends(&g) == 1 && dbx_cache_waiters(cache) == 7))
			break;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - start.tv_sec > 20)
			break;
		sched_yield();
	}
	pthread_mutex_lock(&g.lock);
	g.open = 1;
	pthread_cond_broadcast(&g.cond);
	pthread_mutex_unlock(&g.lock);
	for (int i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(r[i].rc, DBX_OK);
		assert_string_equal(r[i].buf, "DataCopy\n");
		free(r[i].buf);
	}
	assert_int_equal(g.sends, 1);
	assert_int_equal(ft.n_calls, 1);
	dbx_cache_free(cache);
	dbx_arm_free(arm);
	fake_transport_fini(&ft);
	pthread_cond_destroy(&g.cond);
	pthread_mutex_destroy(&g.lock);
}

/* ARM unreachable on refresh: every file but errors fails; errors says why and what was known. */
static void test_failed_refresh(void **state)
{
	static const struct fake_reply script[] = {
	    {.status = 200, .body = SUBS_PAGE},
	    {.status = 200, .body = JOBS_PAGE1},
	    {.status = 200, .body = JOBS_PAGE2},
	    {.transport_err = DBX_EUNREACHABLE},
	    {.status = 200, .body = JOB("rg1", "order2", "DataCopy", DETAILS)},
	};
	struct env *env = env_new(script, 5, 2000, NULL);
	struct dbx_error err = {0};
	struct listing l;
	struct stat st;
	char *buf = NULL;
	size_t len;

	(void)state;
	buf = read_file(env, "/" SUB "/rg1/order2/status", &len);
	free(buf);
	env->fc.now += 5000;

	assert_int_equal(dbx_fs_open(&env->fs, "/" SUB "/rg1/order2/status", &buf, &len, &err),
			 DBX_EUNREACHABLE);
	assert_null(buf);
	assert_int_equal(err.err, DBX_EUNREACHABLE);
	/* Within the TTL the failure stands (no new request); stat fails the same way. */
	assert_int_equal(dbx_fs_getattr(&env->fs, "/" SUB "/rg1/order2/key_url", &st, &err),
			 DBX_EUNREACHABLE);
	assert_int_equal(N_GETS(env), 1);

	assert_int_equal(dbx_fs_getattr(&env->fs, "/" SUB "/rg1/order2/errors", &st, &err), DBX_OK);
	buf = read_file(env, "/" SUB "/rg1/order2/errors", &len);
	assert_int_equal((size_t)st.st_size, len);
	assert_true(strncmp(buf, "code: HostUnreachable\nsource: read\n", 35) == 0);
	/* The last known problem is still explained after the read block. */
	assert_non_null(
	    strstr(buf, "\n\ncode: SsemUserErrorEncryptionKeyDisabled\nsource: order\n"));
	free(buf);

	/* ls shows every name; only errors has attributes. */
	list(env, "/" SUB "/rg1/order2", &l);
	assert_int_equal(l.n, 11);
	for (size_t i = 2; i < l.n; i++)
		assert_int_equal(l.has_st[i], strcmp(l.names[i], "errors") == 0);

	/* ARM answers again: the read block is gone, the files are live again. */
	env->fc.now += 2000;
	buf = read_file(env, "/" SUB "/rg1/order2/status", &len);
	assert_string_equal(buf, "DataCopy\n");
	free(buf);
	buf = read_file(env, "/" SUB "/rg1/order2/errors", &len);
	assert_int_equal(len, 0);
	free(buf);
	env_free(env);
}

/*
 * cache_ttl=0 and a refresh that failed: the rest of the system call (a
 * getattr, an open) gets that failure at once instead of asking again and
 * waiting the timeout once more; half a second later the order is asked
 * for again.
 */
static void test_failure_held_with_ttl_zero(void **state)
{
	static const struct fake_reply script[] = {
	    {.transport_err = DBX_ETIMEDOUT},
	    {.status = 200, .body = JOB("rg1", "order2", "DataCopy", DETAILS)},
	};
	struct env *env = env_new(script, 2, 0, NULL);
	struct dbx_error err = {0};
	struct stat st;
	char *buf = NULL;
	size_t len, gets;

	(void)state;
	assert_int_equal(dbx_fs_open(&env->fs, "/" SUB "/rg1/order2/status", &buf, &len, &err),
			 DBX_ETIMEDOUT);
	gets = N_GETS(env);
	assert_int_equal(gets, 1);
	env->fc.now += DBX_CACHE_FAIL_HOLD_MS - 1;
	assert_int_equal(dbx_fs_getattr(&env->fs, "/" SUB "/rg1/order2/key_url", &st, &err),
			 DBX_ETIMEDOUT);
	assert_int_equal(dbx_fs_open(&env->fs, "/" SUB "/rg1/order2/status", &buf, &len, &err),
			 DBX_ETIMEDOUT);
	assert_int_equal(N_GETS(env), gets);
	env->fc.now += 1;
	assert_int_equal(dbx_fs_open(&env->fs, "/" SUB "/rg1/order2/status", &buf, &len, &err),
			 DBX_OK);
	assert_memory_equal(buf, "DataCopy\n", len);
	free(buf);
	assert_int_equal(N_GETS(env), gets + 1);
	env_free(env);
}

#define BAD_ITEM                                                                                   \
	"{\"id\": \"/subscriptions/" SUB                                                           \
	"/resourcegroups/rg1/providers/Microsoft.DataBox/jobs/bad\","                              \
	" \"name\": \"bad\", \"identity\": [], \"properties\": {\"status\": \"DataCopy\"" DETAILS  \
	"}}"
#define PAGE_BAD "{\"value\": [" JOB("rg1", "order1", "DeviceOrdered", DETAILS) ", " BAD_ITEM "]}"
#define PAGE_GOOD                                                                                  \
	"{\"value\": [" JOB("rg1", "order1", "DeviceOrdered",                                      \
			    DETAILS) ", " JOB("rg1", "bad", "DataCopy", DETAILS) "]}"

/* The order's files fail with the malformed answer; errors names the field. */
static void assert_bad_reads_malformed(struct env *env)
{
	struct dbx_error err = {0};
	char *buf = NULL;
	size_t len;

	assert_int_equal(dbx_fs_open(&env->fs, "/" SUB "/rg1/bad/status", &buf, &len, &err),
			 DBX_EREMOTE);
	assert_null(buf);
	assert_non_null(strstr(err.message, "identity is an array, expected an object"));
	buf = read_file(env, "/" SUB "/rg1/bad/errors", &len);
	assert_non_null(strstr(buf, "source: read\n"));
	assert_non_null(strstr(buf, "identity is an array, expected an object"));
	assert_non_null(strstr(buf, "\nrequest_id: rid-list\n")); /* the page's, for a ticket */
	free(buf);
}

/*
 * One malformed item of a listing (wrong-typed identity, usable id and
 * name): that order is listed and reads EIO with the field in errors; the
 * other order of its resource group reads fine. The next good answer, a
 * listing with details or a GET past the TTL, makes it readable again.
 */
static void test_malformed_list_item(void **state)
{
	static const struct fake_reply script[] = {
	    {.status = 200, .body = SUBS_PAGE},
	    {.status = 200, .body = PAGE_BAD, .request_id = "rid-list"},
	    {.status = 200, .body = PAGE_GOOD},
	    {.status = 200, .body = PAGE_BAD, .request_id = "rid-list"},
	    {.status = 200, .body = JOB("rg1", "bad", "DataCopy", DETAILS)},
	};
	struct env *env = env_new(script, 5, 2000, NULL);
	struct dbx_error err = {0};
	struct listing l;
	struct stat st;
	char *buf;
	size_t len;

	(void)state;
	lookup_parents(env, "/" SUB "/rg1/x");
	list(env, "/" SUB "/rg1", &l);
	assert_int_equal(l.n, 4);
	assert_string_equal(l.names[2], "order1");
	assert_string_equal(l.names[3], "bad");
	assert_int_equal(dbx_fs_getattr(&env->fs, "/" SUB "/rg1/bad", &st, &err), DBX_OK);
	assert_true(S_ISDIR(st.st_mode));
	buf = read_file(env, "/" SUB "/rg1/order1/status", &len);
	assert_string_equal(buf, "DeviceOrdered\n");
	free(buf);
	assert_bad_reads_malformed(env);
	assert_int_equal(dbx_fs_getattr(&env->fs, "/" SUB "/rg1/bad/identity", &st, &err),
			 DBX_EREMOTE);
	assert_int_equal(N_GETS(env), 0); /* within the TTL the listing's answer stands */

	/* A listing with its details, good now: readable without a GET. */
	env->fc.now += 2001;
	list(env, "/" SUB "/rg1", &l);
	buf = read_file(env, "/" SUB "/rg1/bad/status", &len);
	assert_string_equal(buf, "DataCopy\n");
	free(buf);
	buf = read_file(env, "/" SUB "/rg1/bad/errors", &len);
	assert_int_equal(len, 0);
	free(buf);
	assert_int_equal(N_GETS(env), 0);

	/* Malformed again in the next listing, then good in a GET past the TTL. */
	env->fc.now += 2001;
	list(env, "/" SUB "/rg1", &l);
	assert_int_equal(l.n, 4);
	assert_bad_reads_malformed(env);
	env->fc.now += 2001;
	buf = read_file(env, "/" SUB "/rg1/bad/identity", &len);
	assert_string_equal(buf, "SystemAssigned\n");
	free(buf);
	assert_int_equal(N_GETS(env), 1);
	assert_int_equal(env->ft.n_calls, 5);
	env_free(env);
}

/* An order deleted in Azure: 404 on refresh makes it vanish. */
static void test_not_found_removes(void **state)
{
	static const struct fake_reply script[] = {
	    {.status = 200, .body = SUBS_PAGE},
	    {.status = 200, .body = JOBS_PAGE1},
	    {.status = 200, .body = JOBS_PAGE2},
	    {.status = 404,
	     .body = "{\"error\": {\"code\": \"ResourceNotFound\", \"message\": \"gone\"}}"},
	};
	struct env *env = env_new(script, 4, 2000, NULL);
	struct dbx_error err = {0};
	struct stat st;
	char *buf = NULL;
	size_t len;

	(void)state;
	assert_int_equal(dbx_fs_getattr(&env->fs, "/" SUB "/rg1/order1", &st, &err), DBX_OK);
	env->fc.now += 2500;
	assert_int_equal(dbx_fs_open(&env->fs, "/" SUB "/rg1/order1/errors", &buf, &len, &err),
			 DBX_ENOTFOUND);
	assert_int_equal(dbx_fs_getattr(&env->fs, "/" SUB "/rg1/order1/status", &st, &err),
			 DBX_ENOTFOUND);
	assert_int_equal(N_GETS(env), 1);
	env_free(env);
}

#define JOB_NO_SYSTEMDATA(status)                                                                  \
	"{\"id\": \"/subscriptions/" SUB "/resourceGroups/rg1/providers/Microsoft.DataBox/jobs/"   \
	"plain\", \"name\": \"plain\", \"location\": \"westus\", \"sku\": {\"name\": "             \
	"\"DataBox\"}, \"properties\": {\"status\": \"" status "\"" DETAILS "}}"

static time_t mtime_of(struct env *env, const char *path)
{
	struct dbx_error err = {0};
	struct stat st;

	assert_int_equal(dbx_fs_getattr(&env->fs, path, &st, &err), DBX_OK);
	return st.st_mtime;
}

/* Without lastModifiedAt: mtime is when the mount first saw the state, kept while it is unchanged.
 */
static void test_mtime_without_last_modified(void **state)
{
	static const struct fake_reply script[] = {
	    {.status = 200, .body = "{\"value\": [" JOB_NO_SYSTEMDATA("DeviceOrdered") "]}"},
	    {.status = 200, .body = JOB_NO_SYSTEMDATA("DeviceOrdered")},
	    {.status = 200, .body = JOB_NO_SYSTEMDATA("DataCopy")},
	    {.status = 200, .body = JOB_NO_SYSTEMDATA("DataCopy")},
	};
	static const char *const subs[] = {SUB, NULL};
	struct env *env = env_new(script, 4, 2000, subs);
	const char *status = "/" SUB "/rg1/plain/status";

	(void)state;
	lookup_parents(env, status);
	assert_int_equal(mtime_of(env, status), FAKE_WALL0); /* the cache's clock's wall time */
	/* Refreshed, same state: the mtime stays (no false change for tar or rsync). */
	env->fc.wall += 100;
	env->fc.now += 3000;
	assert_int_equal(mtime_of(env, status), 1700000000);
	assert_int_equal(N_GETS(env), 1);
	/* Changed state: the time it was first seen. */
	env->fc.wall += 100;
	env->fc.now += 3000;
	assert_int_equal(mtime_of(env, status), 1700000200);
	env->fc.wall += 100;
	env->fc.now += 3000;
	assert_int_equal(mtime_of(env, status), 1700000200);
	assert_int_equal(N_GETS(env), 3);
	env_free(env);
}

static uint64_t ino_of(struct env *env, const char *path)
{
	struct dbx_error err = {0};
	struct stat st;

	assert_int_equal(dbx_fs_getattr(&env->fs, path, &st, &err), DBX_OK);
	return st.st_ino;
}

/* Inode numbers: distinct, and the same after refreshes and whatever the case of the path. */
static void test_inodes_stable(void **state)
{
	static const struct fake_reply script[] = {
	    {.status = 200, .body = SUBS_PAGE},
	    {.status = 200, .body = JOBS_PAGE1},
	    {.status = 200, .body = JOBS_PAGE2},
	    {.status = 200, .body = JOB("rg1", "order1", "DataCopy", DETAILS)},
	    {.status = 200, .body = SUBS_PAGE},
	    {.status = 200, .body = JOBS_PAGE1},
	    {.status = 200, .body = JOBS_PAGE2},
	};
	static const char *const paths[] = {
	    "/",
	    "/" SUB,
	    "/" SUB "/rg1",
	    "/" SUB "/RG2",
	    "/" SUB "/rg1/order1",
	    "/" SUB "/rg1/order2",
	    "/" SUB "/RG2/order3",
	    "/" SUB "/rg1/order1/encryption_type",
	    "/" SUB "/rg1/order1/errors",
	    "/" SUB "/rg1/order2/encryption_type",
	    "/" SUB "/RG2/order3/errors",
	};
	enum { N = sizeof(paths) / sizeof(paths[0]) };
	struct env *env = env_new(script, 7, 2000, NULL);
	uint64_t first[N];
	struct listing l;

	(void)state;
	for (size_t i = 0; i < N; i++) {
		first[i] = ino_of(env, paths[i]);
		for (size_t k = 0; k < i; k++)
			assert_int_not_equal(first[i], first[k]);
	}
	assert_int_equal(first[0], DBX_INO_ROOT);
	env->fc.now += 3000;
	assert_int_equal(ino_of(env, "/" SUB "/rg1/order1/encryption_type"),
			 first[7]); /* after a GET */
	assert_int_equal(N_GETS(env), 1);
	list(env, "/", &l);	/* refreshes the subscriptions list */
	list(env, "/" SUB, &l); /* and the job list */
	assert_int_equal(N_LISTS(env), 4);
	env->fc.now += 1;
	for (size_t i = 0; i < N; i++)
		assert_int_equal(ino_of(env, paths[i]), first[i]);
	/* ARM names are case-insensitive: the same order, the same inode. */
	assert_int_equal(ino_of(env, "/" SUB "/Rg1/ORDER1/errors"), first[8]);
	env_free(env);
}

/*
 * A mount without a write config (fs.update NULL) refuses writes with EROFS;
 * read-only files say EACCES whatever the mount; nothing is sent either way.
 */
static void test_read_only(void **state)
{
	struct env *env = env_new(tree_script, 3, 2000, NULL);
	struct dbx_error err = {0};
	struct dbx_fs_writer w;

	(void)state;
	assert_int_equal(
	    dbx_fs_writer_open(&env->fs, "/" SUB "/rg1/order1/key_url", false, &w, &err),
	    DBX_EROFS);
	dbx_fs_writer_close(&w);
	assert_int_equal(dbx_fs_write(&env->fs, "/" SUB "/rg1/order1/identity", "None\n", 5, &err),
			 DBX_EROFS);
	assert_int_equal(dbx_fs_write(&env->fs, "/" SUB "/rg1/order1/status", "x\n", 2, &err),
			 DBX_EACCES);
	assert_int_equal(env->ft.n_calls, 0);
	env_free(env);
}

static int interrupt_after; /* interrupted() says yes from its call number interrupt_after on */
static int interrupt_calls;

static int count_interrupted(void *ctx)
{
	(void)ctx;
	return ++interrupt_calls >= interrupt_after;
}

/*
 * A writer queued behind another write waits on the cache's clock: its
 * timeout is fake time (the test does not sleep 30 s), spent in polls of
 * 100 ms that each ask whether the writer was interrupted.
 */
static void test_write_lock_waits_on_the_clock(void **state)
{
	static const char *const subs[] = {SUB, NULL};
	struct env *env = env_new(NULL, 0, 2000, subs);
	struct dbx_error err = {0};

	(void)state;
	assert_int_equal(
	    dbx_cache_write_lock(env->cache, SUB, "rg1", "order1", 30000, NULL, NULL, &err),
	    DBX_OK);
	/* Another order's lock is free. */
	assert_int_equal(
	    dbx_cache_write_lock(env->cache, SUB, "rg1", "order2", 30000, NULL, NULL, &err),
	    DBX_OK);
	assert_int_equal(env->fc.n_waits, 0);

	/* Held: the second writer gives up when the cache's clock says 30 s passed. */
	interrupt_after = 1000;
	interrupt_calls = 0;
	assert_int_equal(dbx_cache_write_lock(env->cache, SUB, "rg1", "order1", 30000,
					      count_interrupted, NULL, &err),
			 DBX_ETIMEDOUT);
	assert_non_null(strstr(err.message, "nothing was sent"));
	assert_int_equal(env->fc.now, 1000000 + 30000);
	assert_int_equal(env->fc.n_waits, 300);
	assert_int_equal(interrupt_calls, 301);
	assert_int_equal(dbx_cache_write_waiters(env->cache), 0);

	/* Ctrl-C at the fifth poll: EINTR after four waits. */
	interrupt_after = 5;
	interrupt_calls = 0;
	assert_int_equal(dbx_cache_write_lock(env->cache, SUB, "rg1", "order1", 30000,
					      count_interrupted, NULL, &err),
			 DBX_EINTR);
	assert_int_equal(env->fc.now, 1000000 + 30000 + 400);

	/* Released: taken at once, no wait. */
	dbx_cache_write_unlock(env->cache, SUB, "rg1", "order1");
	assert_int_equal(
	    dbx_cache_write_lock(env->cache, SUB, "rg1", "order1", 30000, NULL, NULL, &err),
	    DBX_OK);
	assert_int_equal(env->fc.n_waits, 304);
	dbx_cache_write_unlock(env->cache, SUB, "rg1", "order1");
	dbx_cache_write_unlock(env->cache, SUB, "rg1", "order2");
	env_free(env);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_walk_costs_pages_only),
	    cmocka_unit_test(test_contents_and_mtime),
	    cmocka_unit_test(test_ttl_expiry_one_get),
	    cmocka_unit_test(test_failure_held_with_ttl_zero),
	    cmocka_unit_test(test_list_without_details),
	    cmocka_unit_test(test_stale_walk_relists),
	    cmocka_unit_test(test_ttl_zero_walk_gets),
	    cmocka_unit_test(test_single_flight),
	    cmocka_unit_test(test_failed_refresh),
	    cmocka_unit_test(test_malformed_list_item),
	    cmocka_unit_test(test_not_found_removes),
	    cmocka_unit_test(test_inodes_stable),
	    cmocka_unit_test(test_mtime_without_last_modified),
	    cmocka_unit_test(test_read_only),
	    cmocka_unit_test(test_write_lock_waits_on_the_clock),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
