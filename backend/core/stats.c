/*
 * stats.c: the process's counters and health conditions (stats.h), and
 * their rendering as MOUNT/.databoxfs/stats (Prometheus text exposition
 * format) and MOUNT/.databoxfs/health (docs/formats.md, "The control
 * directory").
 *
 * Plain counters are atomics. The labelled ones (requests by service,
 * method and status; errors by code) are small fixed tables under one
 * mutex: a request costs a network round trip, so a short linear scan
 * under a lock is noise beside it. A table that fills up counts the rest
 * in one overflow row (method "OTHER", code "other"), so memory stays
 * bounded whatever the services send.
 */
#include <ctype.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "databoxfs/stats.h"
#include "databoxfs/timestamp.h"

#define REQ_ROWS   128
#define CODE_ROWS  128
#define CODE_MAX   64
#define METHOD_MAX 8
#define REASON_MAX 512
#define HOST_MAX   256

struct req_row {
	enum dbx_stats_service service;
	char method[METHOD_MAX];
	long status;
	uint64_t count;
};

struct code_row {
	char code[CODE_MAX];
	uint64_t count;
};

struct condition {
	bool failing;
	time_t since;
	char reason[REASON_MAX];
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct req_row reqs[REQ_ROWS];
static size_t n_reqs;
static struct code_row codes[CODE_ROWS];
static size_t n_codes;
static struct condition health[DBX_HEALTH_N];

static uint64_t retries[DBX_STATS_N_SERVICES];
static uint64_t waits[DBX_STATS_N_WAITS];
static uint64_t wait_ms[DBX_STATS_N_WAITS];
static uint64_t cache_hits, cache_misses;
static uint64_t token_ok, token_failed;

static void add(uint64_t *counter, uint64_t n)
{
	__atomic_add_fetch(counter, n, __ATOMIC_RELAXED);
}

static uint64_t get(const uint64_t *counter)
{
	return __atomic_load_n(counter, __ATOMIC_RELAXED);
}

static const char *const service_names[DBX_STATS_N_SERVICES] = {
    [DBX_STATS_ARM] = "arm",   [DBX_STATS_KEYVAULT] = "keyvault", [DBX_STATS_ENTRA] = "entra",
    [DBX_STATS_IMDS] = "imds", [DBX_STATS_OTHER] = "other",
};

static const char *const wait_names[DBX_STATS_N_WAITS] = {
    [DBX_STATS_WAIT_RETRY_AFTER] = "retry_after",
    [DBX_STATS_WAIT_BUDGET] = "budget",
};

static const char *const health_names[DBX_HEALTH_N] = {
    [DBX_HEALTH_CREDENTIAL] = "credential",
    [DBX_HEALTH_ARM] = "arm_unreachable",
    [DBX_HEALTH_THROTTLED] = "throttled",
};

const char *dbx_stats_service_name(enum dbx_stats_service s)
{
	return s < DBX_STATS_N_SERVICES ? service_names[s] : "other";
}

enum dbx_stats_service dbx_stats_service_of(const char *url)
{
	const char *p = url ? strstr(url, "://") : NULL;
	char host[HOST_MAX];
	size_t n;

	if (!p)
		return DBX_STATS_OTHER;
	/* Only a managed identity endpoint is plain http (backend/cred/msi.c). */
	if (strncasecmp(url, "http://", 7) == 0)
		return DBX_STATS_IMDS;
	p += 3;
	n = strcspn(p, "/?#:");
	if (n >= sizeof(host))
		return DBX_STATS_OTHER;
	for (size_t i = 0; i < n; i++)
		host[i] = (char)tolower((unsigned char)p[i]);
	host[n] = '\0';
	if (strcmp(host, "169.254.169.254") == 0)
		return DBX_STATS_IMDS;
	if (strncmp(host, "management.", 11) == 0)
		return DBX_STATS_ARM;
	if (strncmp(host, "login.", 6) == 0)
		return DBX_STATS_ENTRA;
	if (strstr(host, ".vault.") || strncmp(host, "vault.", 6) == 0)
		return DBX_STATS_KEYVAULT;
	return DBX_STATS_OTHER;
}

/* The method as a label: one of the few HTTP methods the mount sends, else "OTHER". */
static const char *method_label(const char *method)
{
	static const char *const known[] = {"GET", "HEAD", "PUT", "PATCH", "POST", "DELETE"};

	for (size_t i = 0; method && i < sizeof(known) / sizeof(known[0]); i++)
		if (strcmp(method, known[i]) == 0)
			return known[i];
	return "OTHER";
}

void dbx_stats_request(const char *url, const char *method, long status)
{
	enum dbx_stats_service s = dbx_stats_service_of(url);
	const char *m = method_label(method);
	struct req_row *row = NULL;

	if (status < 0 || status > 999)
		status = 0;
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < n_reqs && !row; i++)
		if (reqs[i].service == s && reqs[i].status == status && !strcmp(reqs[i].method, m))
			row = &reqs[i];
	if (!row && n_reqs < REQ_ROWS) {
		row = &reqs[n_reqs++];
		row->service = s;
		snprintf(row->method, sizeof(row->method), "%s", m);
		row->status = status;
	}
	if (!row) /* full: the last row takes the rest */
		row = &reqs[REQ_ROWS - 1];
	row->count++;
	pthread_mutex_unlock(&lock);
}

void dbx_stats_retry(const char *url)
{
	add(&retries[dbx_stats_service_of(url)], 1);
}

void dbx_stats_throttle_wait(enum dbx_stats_wait why, uint64_t ms)
{
	if (why >= DBX_STATS_N_WAITS)
		return;
	add(&waits[why], 1);
	add(&wait_ms[why], ms);
}

void dbx_stats_cache(bool hit)
{
	add(hit ? &cache_hits : &cache_misses, 1);
}

void dbx_stats_token_refresh(bool ok)
{
	add(ok ? &token_ok : &token_failed, 1);
}

/* A code as a label value: letters, digits, '.', '_' and '-' only, so nothing can be injected. */
static void code_label(char out[CODE_MAX], const char *code)
{
	size_t n = 0;

	for (; code && *code && n + 1 < CODE_MAX; code++)
		if (isalnum((unsigned char)*code) || *code == '.' || *code == '_' || *code == '-')
			out[n++] = *code;
	out[n] = '\0';
}

void dbx_stats_error_code(const char *code)
{
	char label[CODE_MAX];
	struct code_row *row = NULL;

	code_label(label, code);
	if (!label[0])
		return;
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < n_codes && !row; i++)
		if (!strcmp(codes[i].code, label))
			row = &codes[i];
	if (!row && n_codes < CODE_ROWS) {
		row = &codes[n_codes++];
		memcpy(row->code, label, sizeof(row->code));
	}
	if (!row) {
		row = &codes[CODE_ROWS - 1];
		snprintf(row->code, sizeof(row->code), "other");
	}
	row->count++;
	pthread_mutex_unlock(&lock);
}

void dbx_stats_health_fail(enum dbx_health h, time_t now, const char *reason)
{
	struct condition *c;
	size_t n = 0;

	if (h >= DBX_HEALTH_N)
		return;
	c = &health[h];
	pthread_mutex_lock(&lock);
	if (!c->failing) {
		__atomic_store_n(&c->failing, true, __ATOMIC_RELAXED);
		c->since = now;
	}
	for (; reason && *reason && n + 1 < sizeof(c->reason); reason++)
		c->reason[n++] = iscntrl((unsigned char)*reason) ? ' ' : *reason;
	c->reason[n] = '\0';
	pthread_mutex_unlock(&lock);
}

void dbx_stats_health_ok(enum dbx_health h)
{
	if (h >= DBX_HEALTH_N)
		return;
	/* The common case, an answer while all is well, takes no lock. */
	if (!__atomic_load_n(&health[h].failing, __ATOMIC_RELAXED))
		return;
	pthread_mutex_lock(&lock);
	__atomic_store_n(&health[h].failing, false, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&lock);
}

/* A growing text buffer. */
struct text {
	char *buf;
	size_t len, cap;
	bool oom;
};

static void put(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (t->oom)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(t->buf ? t->buf + t->len : NULL, t->buf ? t->cap - t->len : 0, fmt,
			      ap);
		va_end(ap);
		if (n < 0) {
			t->oom = true;
			return;
		}
		if (t->buf && (size_t)n < t->cap - t->len) {
			t->len += (size_t)n;
			return;
		}
		size_t cap = (t->cap ? t->cap * 2 : 4096) + (size_t)n;
		char *grown = realloc(t->buf, cap);

		if (!grown) {
			t->oom = true;
			return;
		}
		t->buf = grown;
		t->cap = cap;
	}
}

static enum dbx_err finish(struct text *t, char **buf, size_t *len)
{
	if (t->oom || !t->buf) {
		free(t->buf);
		*buf = NULL;
		*len = 0;
		return DBX_ENOMEM;
	}
	*buf = t->buf;
	*len = t->len;
	return DBX_OK;
}

static void family(struct text *t, const char *name, const char *type, const char *help)
{
	put(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

enum dbx_err dbx_stats_render(char **buf, size_t *len)
{
	struct text t = {0};
	struct req_row r[REQ_ROWS];
	struct code_row c[CODE_ROWS];
	struct condition h[DBX_HEALTH_N];
	size_t nr, nc;

	pthread_mutex_lock(&lock);
	nr = n_reqs;
	memcpy(r, reqs, nr * sizeof(r[0]));
	nc = n_codes;
	memcpy(c, codes, nc * sizeof(c[0]));
	memcpy(h, health, sizeof(h));
	pthread_mutex_unlock(&lock);

	family(&t, "databoxfs_requests_total", "counter",
	       "HTTP requests sent, each try counted, by service, method and status (0: no "
	       "answer).");
	for (size_t i = 0; i < nr; i++)
		put(&t,
		    "databoxfs_requests_total{service=\"%s\",method=\"%s\",status=\"%ld\"} %llu\n",
		    service_names[r[i].service], r[i].method, r[i].status,
		    (unsigned long long)r[i].count);
	family(&t, "databoxfs_retries_total", "counter",
	       "Requests sent again by the retry policy.");
	for (size_t i = 0; i < DBX_STATS_N_SERVICES; i++)
		put(&t, "databoxfs_retries_total{service=\"%s\"} %llu\n", service_names[i],
		    (unsigned long long)get(&retries[i]));
	family(&t, "databoxfs_throttle_waits_total", "counter",
	       "Waits before sending: asked by the server (retry_after) or the mount's own ARM "
	       "budget.");
	for (size_t i = 0; i < DBX_STATS_N_WAITS; i++)
		put(&t, "databoxfs_throttle_waits_total{reason=\"%s\"} %llu\n", wait_names[i],
		    (unsigned long long)get(&waits[i]));
	family(&t, "databoxfs_throttle_wait_seconds_total", "counter",
	       "Time spent in those waits.");
	for (size_t i = 0; i < DBX_STATS_N_WAITS; i++)
		put(&t, "databoxfs_throttle_wait_seconds_total{reason=\"%s\"} %.3f\n",
		    wait_names[i], (double)get(&wait_ms[i]) / 1000.0);
	family(&t, "databoxfs_cache_requests_total", "counter",
	       "Order state served from the cache (hit) or fetched from ARM (miss).");
	put(&t, "databoxfs_cache_requests_total{result=\"hit\"} %llu\n",
	    (unsigned long long)get(&cache_hits));
	put(&t, "databoxfs_cache_requests_total{result=\"miss\"} %llu\n",
	    (unsigned long long)get(&cache_misses));
	family(&t, "databoxfs_token_refreshes_total", "counter",
	       "Token refreshes of the credential, by result.");
	put(&t, "databoxfs_token_refreshes_total{result=\"ok\"} %llu\n",
	    (unsigned long long)get(&token_ok));
	put(&t, "databoxfs_token_refreshes_total{result=\"failed\"} %llu\n",
	    (unsigned long long)get(&token_failed));
	family(&t, "databoxfs_errors_total", "counter",
	       "Error answers by the service's error code (Ssem codes, ARM and Entra codes).");
	for (size_t i = 0; i < nc; i++)
		put(&t, "databoxfs_errors_total{code=\"%s\"} %llu\n", c[i].code,
		    (unsigned long long)c[i].count);
	family(&t, "databoxfs_health", "gauge",
	       "1 while the condition fails (see MOUNT/.databoxfs/health).");
	for (size_t i = 0; i < DBX_HEALTH_N; i++)
		put(&t, "databoxfs_health{condition=\"%s\"} %d\n", health_names[i],
		    h[i].failing ? 1 : 0);
	return finish(&t, buf, len);
}

enum dbx_err dbx_stats_health_render(char **buf, size_t *len)
{
	struct text t = {0};
	char when[DBX_TIME_STR_MAX];
	struct condition c = {0};
	size_t which = DBX_HEALTH_N;

	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < DBX_HEALTH_N && which == DBX_HEALTH_N; i++) {
		if (health[i].failing) {
			which = i;
			c = health[i];
		}
	}
	pthread_mutex_unlock(&lock);
	if (which == DBX_HEALTH_N) {
		put(&t, "ok\n");
	} else {
		dbx_format_time(c.since, when);
		put(&t, "%s: %s since %s\n", health_names[which],
		    c.reason[0] ? c.reason : "failing", when);
	}
	return finish(&t, buf, len);
}

void dbx_stats_reset(void)
{
	pthread_mutex_lock(&lock);
	memset(reqs, 0, sizeof(reqs));
	n_reqs = 0;
	memset(codes, 0, sizeof(codes));
	n_codes = 0;
	memset(health, 0, sizeof(health));
	pthread_mutex_unlock(&lock);
	for (size_t i = 0; i < DBX_STATS_N_SERVICES; i++)
		__atomic_store_n(&retries[i], 0, __ATOMIC_RELAXED);
	for (size_t i = 0; i < DBX_STATS_N_WAITS; i++) {
		__atomic_store_n(&waits[i], 0, __ATOMIC_RELAXED);
		__atomic_store_n(&wait_ms[i], 0, __ATOMIC_RELAXED);
	}
	__atomic_store_n(&cache_hits, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&cache_misses, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&token_ok, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&token_failed, 0, __ATOMIC_RELAXED);
}
