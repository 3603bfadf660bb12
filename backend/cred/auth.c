/*
 * auth.c: tokens, the credential chain and the auth layer (auth.h).
 *
 * The auth layer is the top of the HTTP pipeline. For a request with a
 * scope it takes a bearer token from a per-scope cache and sends the request
 * with it; requests without a scope pass through untouched. The cache
 * refreshes a token when less than min(300 s, half its lifetime) remains,
 * one refresh per scope at a time (single flight: concurrent callers wait on
 * a condition variable for the refresh already running, each until its own
 * request's deadline, or keep using the old token while it is still
 * valid). A refresh made for a request asks the credential to finish by
 * that request's deadline, so a slow token endpoint costs a syscall no more
 * than -o timeout (docs/architecture.md, "Credentials"). A failed refresh
 * keeps the old token while it is valid. A 401 drops the token it used,
 * fetches a fresh one and resends once. Expiry is tracked on the injected
 * clock (its wall time turns a token's expiry claim into a lifetime, its
 * monotonic time runs the lifetime down), so tests can move time.
 *
 * dbx_credential_new() builds a credential by name; "auto" is the
 * DefaultAzureCredential chain of docs/architecture.md, "Credentials", an ordered table of source
 * constructors, so later sources drop in as one row each.
 *
 * Token values are copied only into heap buffers that are wiped before free,
 * and never reach logs or error messages.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "databoxfs/auth.h"
#include "cred/common.h"
#include "databoxfs/log.h"
#include "databoxfs/stats.h"

#define REFRESH_MARGIN_S 300
/*
 * A token is trusted for a day at most, whatever expiry its answer claims:
 * Entra and managed identity tokens live 24 h at most, and a claim near
 * the end of time_t would otherwise wrap the cache's millisecond clock.
 */
#define MAX_LIFETIME_S 86400

void dbx_token_wipe(struct dbx_token *tok)
{
	if (!tok)
		return;
	if (tok->value) {
		explicit_bzero(tok->value, strlen(tok->value));
		free(tok->value);
	}
	tok->value = NULL;
	tok->expires_on = 0;
}

void dbx_credential_destroy(struct dbx_credential *cred)
{
	if (cred && cred->destroy)
		cred->destroy(cred);
}

/* ---- the process environment ---- */

static const char *process_get(void *ctx, const char *name)
{
	(void)ctx;
	return getenv(name);
}

static const struct dbx_env process_env = {.get = process_get, .ctx = NULL};

const struct dbx_env *dbx_env_process(void)
{
	return &process_env;
}

/* ---- the token cache ---- */

struct token_slot {
	struct token_slot *next;
	char *scope;
	char *value;		  /* the cached token, or NULL */
	uint64_t expires_ms;	  /* on the auth layer's clock */
	uint64_t refresh_ms;	  /* refresh from here on */
	unsigned long generation; /* bumped each time value changes */
	unsigned long attempts;	  /* bumped each time a refresh ends */
	bool refreshing;
	struct dbx_error last_err; /* of the last failed refresh */
};

struct auth_transport {
	struct dbx_transport base;
	struct dbx_transport *inner;
	struct dbx_credential *cred;
	const struct dbx_clock *clock;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct token_slot *slots;
	unsigned background; /* refreshes running in their own thread */
};

/*
 * After a failed refresh while the cached token is still valid, wait this
 * long before the next attempt (azure-identity's
 * DEFAULT_TOKEN_REFRESH_RETRY_DELAY), so an Entra outage costs one token
 * request per 30 s, not one per ARM request.
 */
#define REFRESH_RETRY_MS 30000u

/*
 * A waiter whose refresher ran out of time asks again itself only with at
 * least this much of its own time left: callers that started together time
 * out together instead of each sending a token request of its own.
 */
#define RETRY_MIN_MS 1000u

/* The slot for scope, created when absent. Called with the lock held. */
static struct token_slot *slot_get(struct auth_transport *at, const char *scope)
{
	struct token_slot *s;

	for (s = at->slots; s; s = s->next) {
		if (strcmp(s->scope, scope) == 0)
			return s;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->scope = strdup(scope);
	if (!s->scope) {
		free(s);
		return NULL;
	}
	s->next = at->slots;
	at->slots = s;
	return s;
}

/*
 * Store a fresh token in the slot (lock held); takes tok->value. Its
 * lifetime is its expiry claim (wall time) less wall, the clock's wall time
 * now; it is kept on the monotonic time line from now_ms on.
 */
static void slot_store(struct token_slot *s, struct dbx_token *tok, uint64_t now_ms, time_t wall)
{
	int64_t life_s = tok->expires_on > wall ? (int64_t)(tok->expires_on - wall) : 0;
	int64_t margin_s;

	if (life_s > MAX_LIFETIME_S)
		life_s = MAX_LIFETIME_S;
	margin_s = life_s / 2 < REFRESH_MARGIN_S ? life_s / 2 : REFRESH_MARGIN_S;

	dbx_wipe_free(s->value);
	s->value = tok->value;
	tok->value = NULL;
	s->expires_ms = now_ms + (uint64_t)life_s * 1000u;
	s->refresh_ms = now_ms + (uint64_t)(life_s - margin_s) * 1000u;
	s->generation++;
}

/*
 * Fetch a new token for slot s from the credential, with the lock held on
 * entry and exit (released around the request). On failure, a token that
 * is still valid is kept and DBX_OK returned; the error is remembered for
 * the callers that waited on this refresh.
 */
static enum dbx_err refresh_locked(struct auth_transport *at, struct token_slot *s,
				   uint64_t deadline_ms, struct dbx_error *err)
{
	struct dbx_token tok = {0};
	enum dbx_err rc;
	uint64_t now;

	s->refreshing = true;
	pthread_mutex_unlock(&at->lock);
	rc = at->cred->get_token(at->cred, s->scope, deadline_ms, &tok, err);
	pthread_mutex_lock(&at->lock);
	s->refreshing = false;
	s->attempts++;
	pthread_cond_broadcast(&at->cond);
	now = dbx_clock_now_ms(at->clock);
	if (rc == DBX_OK && !tok.value)
		rc = dbx_error_set(err, DBX_EAUTH, "%s: empty token", at->cred->name);
	dbx_stats_token_refresh(rc == DBX_OK);
	if (rc == DBX_OK) {
		dbx_stats_health_ok(DBX_HEALTH_CREDENTIAL);
		slot_store(s, &tok, now, dbx_clock_wall(at->clock));
		/* What waiters report if this token has expired already on arrival. */
		dbx_error_set(&s->last_err, DBX_EAUTH, "%s: the token it returned has expired",
			      at->cred->name);
		goto out;
	}
	if (err)
		s->last_err = *err;
	else
		dbx_error_set(&s->last_err, rc, "%s: token request failed", at->cred->name);
	/* Failing even when the cached token still serves: health says so (stats.h). */
	dbx_stats_health_fail(DBX_HEALTH_CREDENTIAL, dbx_clock_wall(at->clock),
			      s->last_err.message);
	if (s->value && now < s->expires_ms) {
		s->refresh_ms =
		    now + REFRESH_RETRY_MS < s->expires_ms ? now + REFRESH_RETRY_MS : s->expires_ms;
		dbx_log(DBX_LOG_WARN,
			"refreshing the token for %s failed (%s); using the cached one", s->scope,
			s->last_err.message);
		dbx_error_clear(err);
		rc = DBX_OK;
	}
out:
	dbx_token_wipe(&tok);
	return rc;
}

struct background_refresh {
	struct auth_transport *at;
	struct token_slot *slot;
};

static void *background_refresh_main(void *arg)
{
	struct background_refresh b = *(struct background_refresh *)arg;
	struct dbx_error e = {0};

	free(arg);
	pthread_mutex_lock(&b.at->lock);
	/* No caller waits for it: only the source's own cap bounds it. */
	(void)refresh_locked(b.at, b.slot, 0, &e); /* a failure is logged and remembered there */
	b.at->background--;
	pthread_cond_broadcast(&b.at->cond);
	pthread_mutex_unlock(&b.at->lock);
	return NULL;
}

/*
 * Renew slot s in a thread of its own (lock held), so that requests keep
 * using the still-valid token instead of waiting for Entra: a slow or
 * failing token endpoint then never delays a request that has a good token.
 * 0 when the thread started; otherwise the caller refreshes inline.
 */
static int start_background_refresh(struct auth_transport *at, struct token_slot *s)
{
	struct background_refresh *b = malloc(sizeof(*b));
	pthread_attr_t attr;
	pthread_t th;
	int rc;

	if (!b)
		return -1;
	b->at = at;
	b->slot = s;
	s->refreshing = true;
	at->background++;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	rc = pthread_create(&th, &attr, background_refresh_main, b);
	pthread_attr_destroy(&attr);
	if (rc != 0) {
		s->refreshing = false;
		at->background--;
		free(b);
		return -1;
	}
	return 0;
}

/*
 * A copy of a usable token for scope in *out (wipe and free it), and the
 * generation it came from. Refreshes when due, one refresh per scope at a
 * time: others keep using a still-valid token, or wait for the refresh and
 * share its outcome. Nobody waits past deadline_ms (0: no deadline): a
 * refresh this caller makes asks the credential to finish by then, and a
 * caller waiting for another's refresh gives up at it with DBX_ETIMEDOUT.
 * A refresh that ran out of its own caller's time does not fail a waiter
 * that has time left (RETRY_MIN_MS or more): that one tries again itself.
 */
static enum dbx_err get_bearer(struct auth_transport *at, const char *scope, uint64_t deadline_ms,
			       char **out, unsigned long *gen, struct dbx_error *err)
{
	struct token_slot *s;
	enum dbx_err rc = DBX_OK;
	unsigned long waited_for = 0;
	bool waited = false;
	bool have_old;
	uint64_t now;

	*out = NULL;
	pthread_mutex_lock(&at->lock);
	s = slot_get(at, scope);
	if (!s) {
		rc = dbx_error_set(err, DBX_ENOMEM, "out of memory");
		goto out;
	}
	for (;;) {
		now = dbx_clock_now_ms(at->clock);
		have_old = s->value && now < s->expires_ms;
		if (have_old && now >= s->refresh_ms && !s->refreshing &&
		    start_background_refresh(at, s) == 0)
			break; /* renewing behind the scenes; this request uses the valid token */
		if (have_old && (now < s->refresh_ms || s->refreshing))
			break; /* fresh enough, or someone else is renewing it */
		if (!s->refreshing && waited && s->attempts != waited_for) {
			if (s->last_err.err == DBX_ETIMEDOUT &&
			    (!deadline_ms || now + RETRY_MIN_MS <= deadline_ms)) {
				/* It ran out of its caller's time, not of ours: ask again. */
				waited = false;
				continue;
			}
			/* The refresh we waited for failed: share its error. */
			if (err)
				*err = s->last_err;
			rc = s->last_err.err ? s->last_err.err : DBX_EAUTH;
			goto out;
		}
		if (!s->refreshing) {
			rc = refresh_locked(at, s, deadline_ms, err);
			if (rc != DBX_OK)
				goto out;
			break;
		}
		if (!waited) {
			waited = true;
			waited_for = s->attempts;
		}
		if (dbx_clock_wait_until(at->clock, &at->cond, &at->lock, deadline_ms) ==
			DBX_ETIMEDOUT &&
		    !(s->value && dbx_clock_now_ms(at->clock) < s->expires_ms)) {
			rc = dbx_error_set(err, DBX_ETIMEDOUT,
					   "%s: the token request for %s did not finish within the "
					   "timeout (the token endpoint is slow or unreachable)",
					   at->cred->name, scope);
			goto out;
		}
	}
	*out = strdup(s->value);
	*gen = s->generation;
	if (!*out)
		rc = dbx_error_set(err, DBX_ENOMEM, "out of memory");
out:
	pthread_mutex_unlock(&at->lock);
	return rc;
}

/* Forget the token of generation gen (a 401 said it is no good); newer ones stay. */
static void drop_token(struct auth_transport *at, const char *scope, unsigned long gen)
{
	struct token_slot *s;

	pthread_mutex_lock(&at->lock);
	for (s = at->slots; s; s = s->next) {
		if (strcmp(s->scope, scope) == 0 && s->generation == gen) {
			dbx_wipe_free(s->value);
			s->value = NULL;
			s->expires_ms = s->refresh_ms = 0;
		}
	}
	pthread_mutex_unlock(&at->lock);
}

/* ---- which host a token may go to ---- */

/*
 * The host of url into host[cap] (not NUL-checked by the caller), when url
 * is https with a plain authority: no user info, port absent or 443, host
 * of [A-Za-z0-9.-] only, so that no URL parser can read another host out of
 * it. False otherwise.
 */
static bool https_host(const char *url, char *host, size_t cap)
{
	const char *a;
	size_t alen;
	size_t hlen;

	if (strncasecmp(url, "https://", 8) != 0)
		return false;
	a = url + 8;
	alen = strcspn(a, "/?#");
	hlen = strcspn(a, ":/?#");
	if (hlen == 0 || hlen >= cap)
		return false;
	if (hlen < alen && !(alen - hlen == 4 && strncmp(a + hlen, ":443", 4) == 0))
		return false;
	for (size_t i = 0; i < hlen; i++) {
		char ch = a[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '.' || ch == '-'))
			return false;
	}
	memcpy(host, a, hlen);
	host[hlen] = '\0';
	return true;
}

/* host is "<vault>.<suffix>", a vault name of 3-24 [A-Za-z0-9-] (docs/formats.md, "Validation"). */
static bool is_vault_host(const char *host, const char *suffix)
{
	size_t hlen = strlen(host);
	size_t slen = strlen(suffix);
	size_t label;

	if (hlen < slen + 2 || strcasecmp(host + hlen - slen, suffix) != 0 ||
	    host[hlen - slen - 1] != '.')
		return false;
	label = hlen - slen - 1;
	return label >= 3 && label <= 24 && strcspn(host, ".") == label;
}

/*
 * May a token for scope travel with a request to url? The ARM token only
 * to the cloud's ARM host, a Key Vault token only to a vault of the
 * cloud's vault suffix, both over https; any other scope never.
 */
static bool scope_allows_url(const char *scope, const char *url)
{
	char host[256];

	if (!https_host(url, host, sizeof(host)))
		return false;
	/* A scope that is none of the known clouds' gets no token. */
	for (size_t i = 0; dbx_cloud_at(i); i++) {
		const struct dbx_cloud *c = dbx_cloud_at(i);

		if (strcmp(scope, c->arm_scope) == 0)
			return strcasecmp(host, c->arm_host) == 0;
		if (strcmp(scope, c->vault_scope) == 0)
			return is_vault_host(host, c->vault_suffix);
	}
	return false;
}

static enum dbx_err auth_send(struct dbx_transport *self, const struct dbx_http_request *req,
			      struct dbx_http_response *resp, struct dbx_error *err)
{
	struct auth_transport *at = (struct auth_transport *)self;
	struct dbx_http_request r;
	char *bearer = NULL;
	unsigned long gen = 0;
	enum dbx_err rc;

	if (!req->scope)
		return at->inner->send(at->inner, req, resp, err);
	if (!scope_allows_url(req->scope, req->url)) {
		char host[256];

		/* Named by its host only: a URL's user info or query may hold secrets. */
		rc = dbx_error_set(err, DBX_ECONFIG,
				   "refusing to send a token for %s to %s: not a host of that "
				   "audience",
				   req->scope,
				   https_host(req->url, host, sizeof(host)) ? host
									    : "a non-https URL");
		goto out;
	}
	rc = get_bearer(at, req->scope, req->deadline_ms, &bearer, &gen, err);
	if (rc != DBX_OK)
		goto no_token;
	r = *req;
	r.bearer = bearer;
	rc = at->inner->send(at->inner, &r, resp, err);
	if (rc != DBX_OK || resp->status != 401)
		goto out;

	/* 401: the token was refused (revoked, expired early): once more with a fresh one. */
	dbx_log(DBX_LOG_DEBUG, "%s %.*s: 401, retrying once with a fresh token", req->method,
		(int)strcspn(req->url, "?#"), req->url);
	drop_token(at, req->scope, gen);
	dbx_wipe_free(bearer);
	bearer = NULL;
	dbx_http_response_reset(resp);
	rc = get_bearer(at, req->scope, req->deadline_ms, &bearer, &gen, err);
	if (rc != DBX_OK)
		goto no_token; /* the credential's reason says more than the 401 */
	r.bearer = bearer;
	rc = at->inner->send(at->inner, &r, resp, err);
	goto out;
no_token:
	if (err)
		err->service = DBX_SERVICE_TOKEN; /* nothing was sent: advice names the token */
out:
	dbx_wipe_free(bearer);
	return rc;
}

void dbx_http_auth_wait_idle(struct dbx_transport *auth)
{
	struct auth_transport *at = (struct auth_transport *)auth;

	pthread_mutex_lock(&at->lock);
	while (at->background)
		pthread_cond_wait(&at->cond, &at->lock);
	pthread_mutex_unlock(&at->lock);
}

static void auth_destroy(struct dbx_transport *self)
{
	struct auth_transport *at = (struct auth_transport *)self;
	struct token_slot *s;

	dbx_http_auth_wait_idle(self);
	s = at->slots;

	while (s) {
		struct token_slot *next = s->next;

		dbx_wipe_free(s->value);
		free(s->scope);
		free(s);
		s = next;
	}
	dbx_transport_destroy(at->inner);
	pthread_cond_destroy(&at->cond);
	pthread_mutex_destroy(&at->lock);
	free(at);
}

struct dbx_transport *dbx_http_auth_new(struct dbx_transport *inner, struct dbx_credential *cred,
					const struct dbx_clock *clock)
{
	struct auth_transport *at = calloc(1, sizeof(*at));

	if (!at)
		return NULL;
	at->base.send = auth_send;
	at->base.destroy = auth_destroy;
	at->inner = inner;
	at->cred = cred;
	at->clock = clock ? clock : dbx_clock_system();
	pthread_mutex_init(&at->lock, NULL);
	if (dbx_clock_cond_init(&at->cond) != 0) {
		pthread_mutex_destroy(&at->lock);
		free(at);
		return NULL;
	}
	return &at->base;
}

enum dbx_err dbx_http_auth_prime(struct dbx_transport *auth, const char *scope,
				 struct dbx_error *err)
{
	struct auth_transport *at = (struct auth_transport *)auth;
	unsigned long gen = 0;
	char *bearer = NULL;
	enum dbx_err rc;

	rc = get_bearer(at, scope, 0, &bearer, &gen, err);
	dbx_wipe_free(bearer);
	return rc;
}

/* ---- the chain ("auto") ---- */

typedef struct dbx_credential *(*source_ctor)(struct dbx_transport *transport,
					      const struct dbx_cloud *cloud,
					      const struct dbx_env *env,
					      const struct dbx_clock *clock, struct dbx_error *err);

/*
 * DefaultAzureCredential's order (docs/architecture.md, "Credentials"): the environment (secret,
 * then certificate), workload identity, managed identity, Azure CLI. Each
 * constructor fails with a message starting "<name>: " saying what its
 * source lacks. At get_token, DBX_EAUTH without an HTTP status means "this
 * source is not available here" (no IMDS, no az, no identity assigned) and
 * the chain moves on. Any other failure (the authority refused a configured
 * source, or could not be reached) ends the chain with that error, as
 * DefaultAzureCredential does, rather than fall through to another
 * identity or hide an unreachable network behind "no credential".
 */
static const struct {
	const char *name;
	source_ctor make;
} sources[] = {
    {"env", dbx_cred_env_secret_new},	 {"cert", dbx_cred_env_cert_new},
    {"workload", dbx_cred_workload_new}, {"msi", dbx_cred_msi_new},
    {"cli", dbx_cred_cli_new},
};

#define N_SOURCES (sizeof(sources) / sizeof(sources[0]))

struct chain_cred {
	struct dbx_credential base;
	/* Per row of sources[]: the member, or why it could not be built. */
	struct dbx_credential *members[N_SOURCES];
	char *why_not[N_SOURCES];
	pthread_mutex_t lock;
	struct dbx_credential *chosen; /* the first member that produced a token */
};

/* Append "; " (when not first) and text to buf of size cap, truncating. */
static void append_reason(char *buf, size_t cap, const char *text)
{
	size_t len = strlen(buf);
	const char *parts[2] = {len ? "; " : "", text};

	for (size_t i = 0; i < 2; i++) {
		for (const char *p = parts[i]; *p && len + 1 < cap; p++)
			buf[len++] = *p;
	}
	buf[len] = '\0';
}

static enum dbx_err chain_get_token(struct dbx_credential *self, const char *scope,
				    uint64_t deadline_ms, struct dbx_token *out,
				    struct dbx_error *err)
{
	struct chain_cred *cc = (struct chain_cred *)self;
	struct dbx_credential *chosen;
	char reasons[DBX_ERR_MSG_MAX] = "";
	struct dbx_error e;
	enum dbx_err rc;

	pthread_mutex_lock(&cc->lock);
	chosen = cc->chosen;
	pthread_mutex_unlock(&cc->lock);
	if (chosen)
		return chosen->get_token(chosen, scope, deadline_ms, out, err);

	for (size_t i = 0; i < N_SOURCES; i++) {
		if (!cc->members[i]) {
			append_reason(reasons, sizeof(reasons), cc->why_not[i]);
			continue;
		}
		dbx_error_clear(&e);
		rc = cc->members[i]->get_token(cc->members[i], scope, deadline_ms, out, &e);
		if (rc == DBX_OK) {
			pthread_mutex_lock(&cc->lock);
			cc->chosen = cc->members[i];
			pthread_mutex_unlock(&cc->lock);
			return DBX_OK;
		}
		if (rc != DBX_EAUTH || e.http_status) {
			if (err)
				*err = e;
			return rc;
		}
		append_reason(reasons, sizeof(reasons), e.message);
	}
	return dbx_error_set(err, DBX_EAUTH, "no credential available: %s", reasons);
}

static void chain_destroy(struct dbx_credential *self)
{
	struct chain_cred *cc = (struct chain_cred *)self;

	for (size_t i = 0; i < N_SOURCES; i++) {
		dbx_credential_destroy(cc->members[i]);
		free(cc->why_not[i]);
	}
	pthread_mutex_destroy(&cc->lock);
	free(cc);
}

static struct dbx_credential *chain_new(struct dbx_transport *transport,
					const struct dbx_cloud *cloud, const struct dbx_env *env,
					const struct dbx_clock *clock, struct dbx_error *err)
{
	struct chain_cred *cc = calloc(1, sizeof(*cc));
	char reasons[DBX_ERR_MSG_MAX] = "";
	struct dbx_error e;
	size_t n = 0;

	if (!cc) {
		dbx_error_set(err, DBX_ENOMEM, "out of memory");
		return NULL;
	}
	cc->base.name = "auto";
	cc->base.get_token = chain_get_token;
	cc->base.destroy = chain_destroy;
	pthread_mutex_init(&cc->lock, NULL);
	for (size_t i = 0; i < N_SOURCES; i++) {
		dbx_error_clear(&e);
		cc->members[i] = sources[i].make(transport, cloud, env, clock, &e);
		if (cc->members[i]) {
			n++;
			continue;
		}
		if (e.err == DBX_ENOMEM)
			goto fail;
		cc->why_not[i] = strdup(e.message);
		if (!cc->why_not[i]) {
			dbx_error_set(&e, DBX_ENOMEM, "out of memory");
			goto fail;
		}
		append_reason(reasons, sizeof(reasons), e.message);
	}
	if (n == 0) {
		chain_destroy(&cc->base);
		dbx_error_set(err, DBX_EAUTH, "no credential available: %s", reasons);
		return NULL;
	}
	return &cc->base;
fail:
	if (err)
		*err = e;
	chain_destroy(&cc->base);
	return NULL;
}

struct dbx_credential *dbx_credential_new(const char *name, struct dbx_transport *transport,
					  const struct dbx_cloud *cloud, const struct dbx_env *env,
					  const struct dbx_clock *clock, struct dbx_error *err)
{
	if (!cloud)
		cloud = dbx_cloud_default();
	if (!env)
		env = dbx_env_process();
	if (!name || strcmp(name, "auto") == 0)
		return chain_new(transport, cloud, env, clock, err);
	for (size_t i = 0; i < N_SOURCES; i++) {
		if (strcmp(name, sources[i].name) == 0)
			return sources[i].make(transport, cloud, env, clock, err);
	}
	dbx_error_set(err, DBX_ECONFIG,
		      "unknown credential '%s' (expected auto, env, cert, workload, msi or cli)",
		      name);
	return NULL;
}
