/*
 * test_fs_scratch.c: editors' temporary files in order directories
 * (fs/scratch.c) and rename(temporary, attribute) as one write
 * (dbx_fs_rename in fs/fs.c), over a REAL struct dbx_arm, struct
 * dbx_keyvault and dbx_update_apply() on the same small rule-based fake of
 * ARM and Key Vault as test_fs_write.c, which records every request: the
 * tests count PATCHes (exactly one for a rename onto an attribute, none for
 * anything else). No mount, no sleeping (fake clock).
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "databoxfs/arm.h"
#include "databoxfs/keyvault.h"
#include "databoxfs/update.h"
#include "cache.h"
#include "fake_transport.h"
#include "fs.h"
#include "ops.h"

#define SUB	  "0b1f6471-1bf0-4dda-aec3-111122223333"
#define PRINCIPAL "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"
#define TENANT	  "72f988bf-86f1-41af-91ab-2d7cd011db47"
#define VAULT_ID                                                                                   \
	"/subscriptions/" SUB "/resourceGroups/rg-keys/providers/Microsoft.KeyVault/vaults/"       \
	"contosovault"
#define KV_HOST	 "https://contosovault.vault.azure.net"
#define KEY0	 KV_HOST "/keys/k0"
#define KEY1	 KV_HOST "/keys/k1"
#define KEY2	 KV_HOST "/keys/k2"
#define VERSION	 "78deebed173b48e48f55abf87ed4cf71"
#define SPEC_URL "https://xxx.xxx.xx" /* the API spec's example kekUrl: not a valid key URL */
#define ORDER1	 "/" SUB "/rg1/order1"
#define ORDER2	 "/" SUB "/rg1/order2"
#define N_RSA2048                                                                                  \
	"pyBk43HVpBsdiVvwEBuXp6rs0V0-Lqm5An7r5VpaNeSuGkhyLtL7qF1_SdoVjmGgiSFxfxmTMtRLAbuu"         \
	"QR70h8X35ZgtU_MN0lhZ-rTMf8SKpulR_BzRtmx2pi-PouhZ2Wiy7WSYnMb8f5xg12Riip--i4UUGm26"         \
	"8cBAkJPmtAQcspOgDFGB5CpjtECbmuUxoft6L3EKnycdejwpPekeNqpF4ooyNeyvf7EpFrPn50bxNAqJ"         \
	"-gBjo4FFA_4sShAJIuRUGl3ekbQcpXIhU4pEpSUJvqt4Vd9mh22VIU3NsTYTIgYnTrtT2Fo94w3mPtvN"         \
	"4MDBAfF-6fUPKGvqSiDF0Q"

#define WAIT_BOUND_S 10 /* only reached when serialization or overlap is broken */

/* ---- the fake ARM + Key Vault ---- */

struct job {
	const char *name;
	char kek_url[256]; /* "" = Microsoft managed */
	bool problem;	   /* the order reports SsemUserErrorEncryptionKeyDisabled */
	int version;	   /* bumped by every PATCH: lastModifiedAt moves */
};

struct world {
	struct dbx_transport base;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct job jobs[2];
	/* Every request: "GET order1", "PATCH order1", "GET resources", "GET vault", "GET key". */
	char log[256][32];
	size_t n_log;
	size_t patches;
	/* Failure injection for PATCH: status and body, or 0. */
	long patch_status;
	const char *patch_body;
	/* Concurrency hooks, run inside a PATCH before it is applied. */
	struct dbx_cache *cache;
	bool hold_until_waiter;	 /* wait until another writer queues on the write lock */
	bool hold_until_both;	 /* wait until PATCHes of both orders are in flight */
	bool hold_until_release; /* wait until release_patch is set */
	bool release_patch;
	unsigned in_patch;
	bool hold_timed_out;
	/* Hold the next job GET, answered with the state before it was held, until released. */
	bool hold_next_get;
	bool get_held;
	bool release_get;
	uint64_t last_deadline; /* deadline_ms of the latest job request */
};

static struct job *find_job(struct world *w, const char *url)
{
	for (size_t i = 0; i < 2; i++) {
		char needle[64];

		snprintf(needle, sizeof(needle), "/jobs/%s?", w->jobs[i].name);
		if (strstr(url, needle))
			return &w->jobs[i];
	}
	return NULL;
}

static char *job_json(const struct job *j)
{
	char *s = NULL;
	char kek[512];

	if (j->kek_url[0])
		snprintf(kek, sizeof(kek),
			 "{\"kekType\": \"CustomerManaged\", \"kekUrl\": \"%s\", "
			 "\"kekVaultResourceID\": \"" VAULT_ID "\", \"identityProperties\": "
			 "{\"type\": \"SystemAssigned\"}}",
			 j->kek_url);
	else
		snprintf(kek, sizeof(kek), "{\"kekType\": \"MicrosoftManaged\"}");
	assert_true(
	    asprintf(&s,
		     "{\"id\": \"/subscriptions/" SUB "/resourceGroups/rg1/providers/"
		     "Microsoft.DataBox/jobs/%s\", \"name\": \"%s\", \"type\": "
		     "\"Microsoft.DataBox/jobs\", \"location\": \"westus\", \"sku\": {\"name\": "
		     "\"DataBox\"}, \"identity\": {\"type\": \"SystemAssigned\", \"principalId\": "
		     "\"" PRINCIPAL "\", \"tenantId\": \"" TENANT "\"}, \"systemData\": "
		     "{\"lastModifiedAt\": \"2026-11-28T12:%02d:00Z\"}, \"properties\": "
		     "{\"status\": \"DeviceOrdered\", \"details\": {\"jobDetailsType\": "
		     "\"DataBox\", \"keyEncryptionKey\": %s}%s}}",
		     j->name, j->name, j->version % 60, kek,
		     j->problem ? ", \"error\": {\"code\": \"SsemUserErrorEncryptionKeyDisabled\", "
				  "\"message\": \"Could not fetch the passkey as the "
				  "customer-managed key is disabled.\"}"
				: "") >= 0);
	return s;
}

/* Apply a PATCH body to j: MicrosoftManaged drops the key, a kekUrl sets it. */
static void apply_patch(struct job *j, const char *body)
{
	const char *u = strstr(body, "\"kekUrl\"");

	if (strstr(body, "MicrosoftManaged")) {
		j->kek_url[0] = '\0';
	} else if (u) {
		const char *start = strstr(u, "https://");
		const char *end = start ? strchr(start, '"') : NULL;

		assert_non_null(end);
		snprintf(j->kek_url, sizeof(j->kek_url), "%.*s", (int)(end - start), start);
	}
	j->version++;
}

static void note(struct world *w, const char *method, const char *what)
{
	if (w->n_log < 256)
		snprintf(w->log[w->n_log++], sizeof(w->log[0]), "%s %s", method, what);
	pthread_cond_broadcast(&w->cond);
}

static bool hold_done(struct world *w)
{
	if (w->hold_until_waiter)
		return dbx_cache_write_waiters(w->cache) > 0;
	if (w->hold_until_both)
		return w->in_patch >= 2;
	if (w->hold_until_release)
		return w->release_patch;
	return true;
}

/* Inside a PATCH: wait (bounded) for what the test wants to see happen meanwhile. */
static void hold(struct world *w)
{
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += WAIT_BOUND_S;
	w->in_patch++;
	pthread_cond_broadcast(&w->cond);
	while (!hold_done(w)) {
		struct timespec tick;

		/* The write-lock waiter count changes outside our lock: look again often. */
		clock_gettime(CLOCK_REALTIME, &tick);
		tick.tv_nsec += 10 * 1000 * 1000;
		if (tick.tv_nsec >= 1000000000L) {
			tick.tv_sec++;
			tick.tv_nsec -= 1000000000L;
		}
		if (tick.tv_sec > until.tv_sec ||
		    (tick.tv_sec == until.tv_sec && tick.tv_nsec > until.tv_nsec)) {
			w->hold_timed_out = true;
			break;
		}
		pthread_cond_timedwait(&w->cond, &w->lock, &tick);
	}
	w->hold_until_waiter = false; /* one-shot: the queued writer's own PATCH goes through */
}

/* Wait (bounded) until *flag is set by the test. World lock held. */
static void wait_flag(struct world *w, const bool *flag)
{
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += WAIT_BOUND_S;
	while (!*flag) {
		if (pthread_cond_timedwait(&w->cond, &w->lock, &until) != 0) {
			w->hold_timed_out = true;
			break;
		}
	}
}

static void reply(struct dbx_http_response *resp, long status, char *body)
{
	resp->status = status;
	resp->body = body ? body : strdup("");
	resp->body_len = strlen(resp->body);
	resp->request_id = strdup("req-0001");
}

static enum dbx_err world_send(struct dbx_transport *self, const struct dbx_http_request *req,
			       struct dbx_http_response *resp, struct dbx_error *err)
{
	struct world *w = (struct world *)self;
	struct job *j;
	char *body = NULL;
	long status = 200;

	(void)err;
	dbx_uuid4(resp->client_request_id);
	pthread_mutex_lock(&w->lock);
	j = find_job(w, req->url);
	if (j)
		w->last_deadline = req->deadline_ms;
	if (j && strcmp(req->method, "PATCH") == 0) {
		note(w, "PATCH", j->name);
		w->patches++;
		if (w->hold_until_waiter || w->hold_until_both || w->hold_until_release)
			hold(w);
		if (w->patch_status) {
			status = w->patch_status;
			body = strdup(w->patch_body);
		} else {
			char *sent = strndup(req->body ? req->body : "", req->body_len);

			assert_non_null(sent);
			apply_patch(j, sent);
			free(sent);
			body = job_json(j);
		}
	} else if (j) {
		note(w, "GET", j->name);
		body = job_json(j);
		if (w->hold_next_get) {
			w->hold_next_get = false;
			w->get_held = true;
			pthread_cond_broadcast(&w->cond);
			wait_flag(w, &w->release_get);
		}
	} else if (strstr(req->url, "/resources?")) {
		note(w, "GET", "resources");
		body = strdup("{\"value\": [{\"id\": \"" VAULT_ID "\", \"name\": \"contosovault\", "
			      "\"type\": \"Microsoft.KeyVault/vaults\", \"location\": "
			      "\"westus\"}]}");
	} else if (strstr(req->url, "/vaults/contosovault?")) {
		note(w, "GET", "vault");
		body = strdup(
		    "{\"id\": \"" VAULT_ID "\", \"name\": \"contosovault\", \"properties\": "
		    "{\"tenantId\": \"" TENANT "\", \"enableSoftDelete\": true, "
		    "\"enablePurgeProtection\": true, \"accessPolicies\": [{\"tenantId\": "
		    "\"" TENANT "\", \"objectId\": \"" PRINCIPAL "\", \"permissions\": {\"keys\": "
		    "[\"get\", \"wrapKey\", \"unwrapKey\"]}}]}}");
	} else if (strstr(req->url, "contosovault.vault.azure.net/keys/")) {
		const char *name = strstr(req->url, "/keys/") + 6;

		note(w, "GET", "key");
		assert_true(
		    asprintf(&body,
			     "{\"key\": {\"kid\": \"" KV_HOST "/keys/%.*s/" VERSION "\", \"kty\": "
			     "\"RSA\", \"n\": \"" N_RSA2048 "\", \"e\": \"AQAB\"}, \"attributes\": "
			     "{\"enabled\": true, \"recoveryLevel\": \"Recoverable\"}}",
			     (int)strcspn(name, "/?"), name) >= 0);
	} else {
		note(w, req->method, "unexpected");
		status = 404;
		body = strdup("{\"error\": {\"code\": \"NotFound\", \"message\": \"no route\"}}");
	}
	pthread_mutex_unlock(&w->lock);
	reply(resp, status, body);
	return DBX_OK;
}

static void world_destroy(struct dbx_transport *self)
{
	(void)self;
}

/* ---- the environment: world -> arm, keyvault -> cache -> fs ---- */

static int interrupt_flag;

static int fake_interrupted(void *ctx)
{
	(void)ctx;
	return interrupt_flag;
}

static time_t wall_now;

static time_t fake_wall(void)
{
	return wall_now;
}

struct env {
	struct world w;
	struct fake_clock fc;
	struct dbx_arm *arm;
	struct dbx_keyvault *kv;
	struct dbx_update_config uc;
	struct dbx_cache *cache;
	struct dbx_fs fs;
};

/* order1 starts customer managed with key1_url ("" Microsoft managed); order2 with KEY0. */
static struct env *env_new(const char *key1_url)
{
	struct env *env = calloc(1, sizeof(*env));
	static const char *const subs[] = {SUB, NULL};
	struct dbx_cache_config cc = {0};

	assert_non_null(env);
	env->w.base.send = world_send;
	env->w.base.destroy = world_destroy;
	pthread_mutex_init(&env->w.lock, NULL);
	pthread_cond_init(&env->w.cond, NULL);
	env->w.jobs[0].name = "order1";
	snprintf(env->w.jobs[0].kek_url, sizeof(env->w.jobs[0].kek_url), "%s", key1_url);
	env->w.jobs[1].name = "order2";
	snprintf(env->w.jobs[1].kek_url, sizeof(env->w.jobs[1].kek_url), "%s", KEY0);
	fake_clock_init(&env->fc, 1000000);
	env->arm =
	    dbx_arm_new(&env->w.base, dbx_cloud_default(), "2025-07-01", 30000, &env->fc.clock);
	env->kv = dbx_keyvault_new(&env->w.base, dbx_cloud_default(), 30000, &env->fc.clock);
	assert_non_null(env->arm);
	assert_non_null(env->kv);
	env->uc.arm = env->arm;
	env->uc.kv = env->kv;
	env->uc.cloud = dbx_cloud_default();
	env->uc.timeout_ms = 30000;
	env->uc.lro_poll_ms = 1000;
	env->uc.interrupted = fake_interrupted;
	interrupt_flag = 0;
	cc.arm = env->arm;
	cc.clock = &env->fc.clock;
	cc.ttl_ms = 2000;
	cc.subscriptions = subs;
	cc.wall_clock = fake_wall;
	wall_now = 1800000000;
	env->cache = dbx_cache_new(&cc);
	assert_non_null(env->cache);
	env->w.cache = env->cache;
	env->fs.cache = env->cache;
	env->fs.uid = 1000;
	env->fs.gid = 1000;
	env->fs.timeout_ms = 30000;
	env->fs.lro_poll_ms = 1000;
	env->fs.update = &env->uc;
	return env;
}

static void env_free(struct env *env)
{
	dbx_cache_free(env->cache);
	dbx_keyvault_free(env->kv);
	dbx_arm_free(env->arm);
	pthread_cond_destroy(&env->w.cond);
	pthread_mutex_destroy(&env->w.lock);
	free(env);
}

static size_t n_calls(struct env *env)
{
	size_t n;

	pthread_mutex_lock(&env->w.lock);
	n = env->w.n_log;
	pthread_mutex_unlock(&env->w.lock);
	return n;
}

static size_t n_logged(struct env *env, const char *entry)
{
	size_t n = 0;

	for (size_t i = 0; i < env->w.n_log; i++)
		n += strcmp(env->w.log[i], entry) == 0;
	return n;
}

/* What cat prints. */
static char *cat(struct env *env, const char *path)
{
	struct dbx_error err = {0};
	char *buf = NULL;
	size_t len = 0;

	assert_int_equal(dbx_fs_open(&env->fs, path, false, &buf, &len, &err), DBX_OK);
	assert_non_null(buf);
	return buf;
}

static void assert_cat(struct env *env, const char *path, const char *want)
{
	char *got = cat(env, path);

	assert_string_equal(got, want);
	free(got);
}

#define SED_TMP ORDER1 "/sedAbC123"
#define SWP	ORDER1 "/.key_url.swp"

static struct dbx_node order_node(struct env *env, const char *path, char name[DBX_TREE_NAME_MAX])
{
	struct dbx_node dir;

	(void)env;
	assert_true(dbx_scratch_name(path, &dir, name));
	return dir;
}

/* A temporary file holding value, as sed leaves it before its rename. */
static void make_temp(struct env *env, const char *path, const char *value)
{
	struct dbx_scratch *s = dbx_fs_scratch(&env->fs);
	enum dbx_scratch_why why = DBX_SCRATCH_WHY_NONE;
	char name[DBX_TREE_NAME_MAX];
	struct dbx_node dir = order_node(env, path, name);

	assert_non_null(s);
	assert_int_equal(dbx_scratch_create(s, &dir, name, 0644, wall_now, &why), DBX_OK);
	assert_int_equal(dbx_scratch_write(s, &dir, name, value, strlen(value), 0, wall_now, &why),
			 DBX_OK);
}

static bool exists(struct env *env, const char *path)
{
	struct dbx_error err = {0};
	struct stat st;

	return dbx_fs_getattr(&env->fs, path, &st, &err) == DBX_OK;
}

static int find_name(void *ctx, const char *name, const struct dbx_scratch_stat *st)
{
	const char **want = ctx;

	(void)st;
	if (*want && !strcmp(name, *want))
		*want = NULL;
	return 0;
}

/*
 * Whether the store lists name in order directory dir (what readdir adds
 * after the attributes; the fake serves no order lists, so readdir itself
 * is covered by test_editors.py).
 */
static bool listed(struct env *env, const char *dir, const char *name)
{
	char path[512], leaf[DBX_TREE_NAME_MAX];
	struct dbx_node node;
	const char *want = name;

	snprintf(path, sizeof(path), "%s/x", dir);
	assert_true(dbx_scratch_name(path, &node, leaf));
	dbx_scratch_list(dbx_fs_scratch(&env->fs), &node, find_name, &want);
	return want == NULL;
}

/* Which names are temporary files: not attributes, directly in an order directory. */
static void test_names(void **state)
{
	struct dbx_node dir;
	char name[DBX_TREE_NAME_MAX];

	(void)state;
	assert_true(dbx_scratch_name(SED_TMP, &dir, name));
	assert_int_equal(dir.kind, DBX_NODE_ORDER);
	assert_string_equal(dir.order, "order1");
	assert_string_equal(name, "sedAbC123");
	assert_true(dbx_scratch_name(ORDER1 "/4913", &dir, name));
	assert_true(dbx_scratch_name(ORDER1 "/key_url~", &dir, name));
	assert_false(dbx_scratch_name(ORDER1 "/key_url", &dir, name));
	assert_false(dbx_scratch_name(ORDER1 "/errors", &dir, name));
	assert_false(dbx_scratch_name("/" SUB "/rg1/sedAbC123", &dir, name));
	assert_false(dbx_scratch_name("/" SUB "/sedAbC123", &dir, name));
	assert_false(dbx_scratch_name("/sedAbC123", &dir, name));
	assert_false(dbx_scratch_name(ORDER1 "/..", &dir, name));
	assert_false(dbx_scratch_name(ORDER1 "/key_url/x", &dir, name));
}

/* Create, write, read, truncate, chmod, unlink; the caps; nothing reaches the network. */
static void test_file_life_and_caps(void **state)
{
	struct env *env = env_new(KEY0);
	struct dbx_scratch *s = dbx_fs_scratch(&env->fs);
	enum dbx_scratch_why why = DBX_SCRATCH_WHY_NONE;
	struct dbx_scratch_stat st;
	struct dbx_error err = {0};
	struct stat fst;
	char name[DBX_TREE_NAME_MAX], buf[16];
	struct dbx_node dir = order_node(env, SWP, name);
	size_t n = 0;

	(void)state;
	assert_int_equal(dbx_scratch_create(s, &dir, name, 0777, wall_now, &why), DBX_OK);
	assert_int_equal(dbx_scratch_create(s, &dir, name, 0600, wall_now, &why), DBX_EINVAL);
	assert_int_equal(why, DBX_SCRATCH_WHY_EXISTS);
	assert_int_equal(dbx_scratch_write(s, &dir, name, "hello", 5, 2, wall_now + 5, &why),
			 DBX_OK);
	assert_int_equal(dbx_scratch_read(s, &dir, name, buf, sizeof(buf), 0, &n), DBX_OK);
	assert_int_equal(n, 7);
	assert_memory_equal(buf, "\0\0hello", 7);
	assert_int_equal(dbx_scratch_read(s, &dir, name, buf, sizeof(buf), 7, &n), DBX_OK);
	assert_int_equal(n, 0);

	/* What stat and ls show: the mounting user's, 0644 at most, the size, the time of the
	 * write. */
	assert_int_equal(dbx_fs_getattr(&env->fs, SWP, &fst, &err), DBX_OK);
	assert_int_equal(fst.st_mode, S_IFREG | 0644);
	assert_int_equal(fst.st_uid, 1000);
	assert_int_equal(fst.st_size, 7);
	assert_int_equal(fst.st_mtime, wall_now + 5);
	assert_true(listed(env, ORDER1, ".key_url.swp"));
	assert_false(listed(env, ORDER2, ".key_url.swp"));
	assert_int_equal(dbx_scratch_chmod(s, &dir, name, 0600), DBX_OK);
	assert_int_equal(dbx_fs_getattr(&env->fs, SWP, &fst, &err), DBX_OK);
	assert_int_equal(fst.st_mode, S_IFREG | 0600);

	assert_int_equal(dbx_scratch_truncate(s, &dir, name, 3, wall_now, &why), DBX_OK);
	assert_int_equal(dbx_scratch_stat(s, &dir, name, &st), DBX_OK);
	assert_int_equal(st.size, 3);
	assert_int_equal(dbx_scratch_truncate(s, &dir, name, DBX_SCRATCH_FILE_MAX, wall_now, &why),
			 DBX_OK);
	/* One byte past 64 KiB: EFBIG, and nothing written. */
	assert_int_equal(
	    dbx_scratch_write(s, &dir, name, "x", 1, DBX_SCRATCH_FILE_MAX, wall_now, &why),
	    DBX_EINVAL);
	assert_int_equal(why, DBX_SCRATCH_WHY_TOO_BIG);
	assert_int_equal(
	    dbx_scratch_truncate(s, &dir, name, DBX_SCRATCH_FILE_MAX + 1, wall_now, &why),
	    DBX_EINVAL);
	assert_int_equal(dbx_scratch_stat(s, &dir, name, &st), DBX_OK);
	assert_int_equal(st.size, DBX_SCRATCH_FILE_MAX);

	/* 16 files in one order directory; the 17th is ENOSPC; another order has its own room. */
	for (int i = 1; i < DBX_SCRATCH_DIR_MAX; i++) {
		char p[64];

		snprintf(p, sizeof(p), "t%d", i);
		assert_int_equal(dbx_scratch_create(s, &dir, p, 0600, wall_now, &why), DBX_OK);
	}
	assert_int_equal(dbx_scratch_create(s, &dir, "one-more", 0600, wall_now, &why), DBX_EINVAL);
	assert_int_equal(why, DBX_SCRATCH_WHY_FULL);
	make_temp(env, ORDER2 "/one-more", "x");

	assert_int_equal(dbx_scratch_unlink(s, &dir, name), DBX_OK);
	assert_int_equal(dbx_scratch_unlink(s, &dir, name), DBX_ENOTFOUND);
	assert_false(exists(env, SWP));
	assert_false(listed(env, ORDER1, ".key_url.swp"));
	assert_int_equal(dbx_scratch_create(s, &dir, "one-more", 0600, wall_now, &why), DBX_OK);
	assert_int_equal(n_calls(env), 0);
	dbx_scratch_free(env->fs.scratch);
	env_free(env);
}

/* sed -i: rename(sedXXXXXX, key_url) applies the content in exactly one PATCH. */
static void test_rename_onto_attribute(void **state)
{
	struct env *env = env_new(KEY0);
	enum dbx_scratch_why why = DBX_SCRATCH_WHY_NONE;
	struct dbx_error err = {0};

	(void)state;
	make_temp(env, SED_TMP, KEY1 "\n");
	assert_int_equal(dbx_fs_rename(&env->fs, SED_TMP, ORDER1 "/key_url", false, &why, &err),
			 DBX_OK);
	assert_int_equal(env->w.patches, 1);
	assert_int_equal(n_logged(env, "PATCH order1"), 1);
	assert_string_equal(env->w.jobs[0].kek_url, KEY1);
	assert_cat(env, ORDER1 "/key_url", KEY1 "\n");
	assert_cat(env, ORDER1 "/errors", "");
	assert_false(exists(env, SED_TMP));
	assert_false(listed(env, ORDER1, "sedAbC123"));
	dbx_scratch_free(env->fs.scratch);
	env_free(env);
}

/* A refused value: the write's error, no PATCH, errors says why, the temporary file stays. */
static void test_rename_refused_keeps_temp(void **state)
{
	struct env *env = env_new(KEY0);
	enum dbx_scratch_why why = DBX_SCRATCH_WHY_NONE;
	struct dbx_error err = {0};
	char *errors;

	(void)state;
	make_temp(env, SED_TMP, "http://contosovault.vault.azure.net/keys/k1\n");
	assert_int_equal(dbx_fs_rename(&env->fs, SED_TMP, ORDER1 "/key_url", false, &why, &err),
			 DBX_EINVAL);
	assert_int_equal(why, DBX_SCRATCH_WHY_NONE); /* the write's EINVAL, not another errno */
	assert_int_equal(n_calls(env), 0);
	assert_true(exists(env, SED_TMP));
	errors = cat(env, ORDER1 "/errors");
	assert_non_null(strstr(
	    errors, "code: SsemUserErrorKeyVaultUrlWithInvalidScheme\nsource: last-write\n"));
	assert_non_null(strstr(errors, "target: key_url\n"));
	free(errors);
	assert_cat(env, ORDER1 "/key_url", KEY0 "\n");
	dbx_scratch_free(env->fs.scratch);
	env_free(env);
}

/* Temp to temp moves in memory; the other renames are refused with their errno; no request. */
static void test_rename_rules(void **state)
{
	struct env *env = env_new(KEY0);
	enum dbx_scratch_why why = DBX_SCRATCH_WHY_NONE;
	struct dbx_error err = {0};
	char buf[8];
	char name[DBX_TREE_NAME_MAX];
	struct dbx_node dir = order_node(env, SWP, name);
	size_t n = 0;

	(void)state;
	make_temp(env, SED_TMP, "abc");
	make_temp(env, SWP, "old");
	assert_int_equal(dbx_fs_rename(&env->fs, SED_TMP, SWP, true, &why, &err), DBX_EINVAL);
	assert_int_equal(why, DBX_SCRATCH_WHY_EXISTS);
	assert_int_equal(dbx_fs_rename(&env->fs, SED_TMP, SWP, false, &why, &err), DBX_OK);
	assert_false(exists(env, SED_TMP));
	assert_int_equal(
	    dbx_scratch_read(dbx_fs_scratch(&env->fs), &dir, name, buf, sizeof(buf), 0, &n),
	    DBX_OK);
	assert_int_equal(n, 3);
	assert_memory_equal(buf, "abc", 3);

	assert_int_equal(dbx_fs_rename(&env->fs, SWP, ORDER2 "/x", false, &why, &err), DBX_EINVAL);
	assert_int_equal(why, DBX_SCRATCH_WHY_XDEV);
	assert_int_equal(dbx_fs_rename(&env->fs, SWP, ORDER2 "/key_url", false, &why, &err),
			 DBX_EINVAL);
	assert_int_equal(why, DBX_SCRATCH_WHY_XDEV);
	assert_int_equal(dbx_fs_rename(&env->fs, SWP, ORDER1 "/status", false, &why, &err),
			 DBX_EACCES);
	assert_int_equal(
	    dbx_fs_rename(&env->fs, ORDER1 "/key_url", ORDER1 "/key_url~", false, &why, &err),
	    DBX_EINVAL);
	assert_int_equal(why, DBX_SCRATCH_WHY_PERM);
	assert_int_equal(dbx_fs_rename(&env->fs, ORDER1, ORDER1 "x", false, &why, &err), DBX_EROFS);
	assert_int_equal(
	    dbx_fs_rename(&env->fs, ORDER1 "/nothing", ORDER1 "/key_url", false, &why, &err),
	    DBX_ENOTFOUND);
	assert_true(exists(env, SWP));
	assert_int_equal(n_calls(env), 0);
	assert_int_equal(env->w.patches, 0);
	dbx_scratch_free(env->fs.scratch);
	env_free(env);
}

/* A mount that does not write has no temporary files: renames are EROFS. */
static void test_read_only_mount(void **state)
{
	struct env *env = env_new(KEY0);
	enum dbx_scratch_why why = DBX_SCRATCH_WHY_NONE;
	struct dbx_error err = {0};

	(void)state;
	env->fs.update = NULL;
	assert_null(dbx_fs_scratch(&env->fs));
	assert_int_equal(dbx_fs_rename(&env->fs, SED_TMP, ORDER1 "/key_url", false, &why, &err),
			 DBX_EROFS);
	assert_int_equal(dbx_fs_rename(&env->fs, ORDER1 "/key_url", ORDER1 "/x", false, &why, &err),
			 DBX_EROFS);
	env_free(env);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_names),
	    cmocka_unit_test(test_file_life_and_caps),
	    cmocka_unit_test(test_rename_onto_attribute),
	    cmocka_unit_test(test_rename_refused_keeps_temp),
	    cmocka_unit_test(test_rename_rules),
	    cmocka_unit_test(test_read_only_mount),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
