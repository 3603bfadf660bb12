/*
 * fs_world.c: the fake ARM + Key Vault and the environment of fs_world.h.
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

#include "fs_world.h"
#include "ops.h"

/* ---- the fake ARM + Key Vault ---- */

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
void wait_flag(struct world *w, const bool *flag)
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

int interrupt_flag;

static int fake_interrupted(void *ctx)
{
	(void)ctx;
	return interrupt_flag;
}

time_t wall_now;

/* The fake clock's wall time is wall_now, which the tests set. */
static time_t fake_wall(void *ctx)
{
	(void)ctx;
	return wall_now;
}

/* order1 starts customer managed with key1_url ("" Microsoft managed); order2 with KEY0. */
struct env *env_new(const char *key1_url)
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
	env->fc.clock.wall = fake_wall;
	env->fc.real_waits = true; /* writers queue behind writers of other threads */
	env->arm =
	    dbx_arm_new(&env->w.base, dbx_cloud_default(), "2025-07-01", 30000, &env->fc.clock);
	env->kv = dbx_keyvault_new(env->arm, &env->w.base, 30000);
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
	wall_now = 1800000000;
	env->cache = dbx_cache_new(&cc);
	assert_non_null(env->cache);
	env->w.cache = env->cache;
	env->fs.cache = env->cache;
	env->fs.uid = 1000;
	env->fs.gid = 1000;
	env->fs.update = &env->uc;
	return env;
}

void env_free(struct env *env)
{
	dbx_cache_free(env->cache);
	dbx_keyvault_free(env->kv);
	dbx_arm_free(env->arm);
	pthread_cond_destroy(&env->w.cond);
	pthread_mutex_destroy(&env->w.lock);
	free(env);
}

size_t n_calls(struct env *env)
{
	size_t n;

	pthread_mutex_lock(&env->w.lock);
	n = env->w.n_log;
	pthread_mutex_unlock(&env->w.lock);
	return n;
}

size_t n_logged(struct env *env, const char *entry)
{
	size_t n = 0;

	for (size_t i = 0; i < env->w.n_log; i++)
		n += strcmp(env->w.log[i], entry) == 0;
	return n;
}

/* What cat prints. */
char *cat(struct env *env, const char *path)
{
	struct dbx_error err = {0};
	char *buf = NULL;
	size_t len = 0;

	assert_int_equal(dbx_fs_open(&env->fs, path, &buf, &len, &err), DBX_OK);
	assert_non_null(buf);
	return buf;
}

void assert_cat(struct env *env, const char *path, const char *want)
{
	char *got = cat(env, path);

	assert_string_equal(got, want);
	free(got);
}
