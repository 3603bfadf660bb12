/*
 * world.c: the emulator's world (subscriptions, resource groups, Data Box
 * jobs, vaults with keys, identities, clients) and the token table.
 *
 * The world is kept as the json-c tree it was loaded from, so the admin API
 * can hand it back verbatim; queries are linear scans (worlds are small).
 * Every key version that does not bring its own material (`n`/`e` for RSA,
 * `crv`/`x`/`y` for EC) gets a real key made with OpenSSL: background
 * threads start generating as soon as a world is loaded, and the first
 * Key Vault GET of a version copies the material into the world (making it
 * then and there if the threads have not got to it yet). The cache is keyed
 * by vault/key/version/kty/size, so replacing the world keeps the same keys.
 * All functions except dbx_emu_world_parse() and the dbx_emu_keys_* ones expect
 * e->lock to be held.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/ec.h>

#include "emu.h"

const char *dbx_emu_jstr(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (!o || !json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* The array under key, or NULL when absent or not an array. */
struct json_object *dbx_emu_jarray(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (!o || !json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_array))
		return NULL;
	return v;
}

/* Follow a dotted path of object keys ("properties.details"). */
struct json_object *dbx_emu_jpath(struct json_object *o, const char *dotted)
{
	char buf[256], *save = NULL, *tok;

	snprintf(buf, sizeof(buf), "%s", dotted);
	for (tok = strtok_r(buf, ".", &save); tok && o; tok = strtok_r(NULL, ".", &save)) {
		if (!json_object_is_type(o, json_type_object) ||
		    !json_object_object_get_ex(o, tok, &o))
			return NULL;
	}
	return o;
}

/*
 * Split "/subscriptions/S/resourceGroups/RG/providers/NS/TYPE/NAME" into
 * S, RG and NAME (the last segment). Segment names compare
 * case-insensitively. rg/name may be NULL.
 */
bool dbx_emu_id_parse(const char *id, char *sub, char *rg, char *name, size_t len)
{
	char buf[1024], *seg[16];
	int n;

	if (!id || strlen(id) >= sizeof(buf))
		return false;
	strcpy(buf, id);
	n = dbx_emu_split_path(buf, seg, 16);
	if (n < 2 || strcasecmp(seg[0], "subscriptions"))
		return false;
	snprintf(sub, len, "%s", seg[1]);
	if (rg) {
		if (n < 4 || strcasecmp(seg[2], "resourceGroups"))
			return false;
		snprintf(rg, len, "%s", seg[3]);
	}
	if (name) {
		if (n < 8)
			return false;
		snprintf(name, len, "%s", seg[n - 1]);
	}
	return true;
}

struct json_object *dbx_emu_world_array(struct dbx_emu *e, const char *name)
{
	struct json_object *a;

	if (!e->world || !json_object_object_get_ex(e->world, name, &a) ||
	    !json_object_is_type(a, json_type_array))
		return NULL;
	return a;
}

static int world_int(struct dbx_emu *e, const char *key, int def)
{
	struct json_object *v;

	if (!e->world || !json_object_object_get_ex(e->world, key, &v) ||
	    !json_object_is_type(v, json_type_int) || json_object_get_int(v) <= 0)
		return def;
	return json_object_get_int(v);
}

int dbx_emu_world_page_size(struct dbx_emu *e)
{
	if (e->page_size_override > 0)
		return e->page_size_override;
	return world_int(e, "page_size", 20);
}

int dbx_emu_world_token_lifetime(struct dbx_emu *e)
{
	return world_int(e, "token_lifetime_s", 3599);
}

int dbx_emu_token_lifetime(struct dbx_emu *e, struct json_object *who)
{
	struct json_object *lt;

	if (e->token_lifetime_override > 0)
		return e->token_lifetime_override;
	if (who && json_object_object_get_ex(who, "token_lifetime_s", &lt) &&
	    json_object_is_type(lt, json_type_int) && json_object_get_int(lt) > 0)
		return json_object_get_int(lt);
	return dbx_emu_world_token_lifetime(e);
}

static void bump(struct json_object *stats, const char *group, const char *key)
{
	struct json_object *g, *n;

	if (!json_object_object_get_ex(stats, group, &g)) {
		g = json_object_new_object();
		json_object_object_add(stats, group, g);
	}
	if (json_object_object_get_ex(g, key, &n))
		json_object_object_add(g, key, json_object_new_int64(json_object_get_int64(n) + 1));
	else
		json_object_object_add(g, key, json_object_new_int64(1));
}

void dbx_emu_token_count(struct dbx_emu *e, const char *grant, const char *credential,
			 const char *aud)
{
	struct json_object *n;

	if (!e->token_stats)
		e->token_stats = json_object_new_object();
	json_object_object_get_ex(e->token_stats, "total", &n);
	json_object_object_add(e->token_stats, "total",
			       json_object_new_int64(n ? json_object_get_int64(n) + 1 : 1));
	bump(e->token_stats, "by_grant_type", grant);
	bump(e->token_stats, "by_credential", credential);
	bump(e->token_stats, "by_audience", aud);
}

struct json_object *dbx_emu_find_subscription(struct dbx_emu *e, const char *sub)
{
	struct json_object *a = dbx_emu_world_array(e, "subscriptions");
	size_t i, n = a ? json_object_array_length(a) : 0;

	for (i = 0; i < n; i++) {
		struct json_object *s = json_object_array_get_idx(a, i);
		const char *id = dbx_emu_jstr(s, "subscriptionId");

		if (id && !strcasecmp(id, sub))
			return s;
	}
	return NULL;
}

/*
 * A resource group is known when the world lists it in "resource_groups"
 * ([{"subscriptionId","name"}]); worlds without that list know every RG.
 */
bool dbx_emu_rg_known(struct dbx_emu *e, const char *sub, const char *rg)
{
	struct json_object *a = dbx_emu_world_array(e, "resource_groups");
	size_t i, n;

	if (!a)
		return true;
	n = json_object_array_length(a);
	for (i = 0; i < n; i++) {
		struct json_object *g = json_object_array_get_idx(a, i);
		const char *s = dbx_emu_jstr(g, "subscriptionId"), *name = dbx_emu_jstr(g, "name");

		if (s && name && !strcasecmp(s, sub) && !strcasecmp(name, rg))
			return true;
	}
	return false;
}

/* Find an element of a world array whose "id" names sub/rg/.../name. */
struct json_object *dbx_emu_find_resource(struct dbx_emu *e, const char *array, const char *sub,
					  const char *rg, const char *name)
{
	struct json_object *a = dbx_emu_world_array(e, array);
	size_t i, n = a ? json_object_array_length(a) : 0;
	char s[256], g[256], nm[256];

	for (i = 0; i < n; i++) {
		struct json_object *o = json_object_array_get_idx(a, i);

		if (!dbx_emu_id_parse(dbx_emu_jstr(o, "id"), s, g, nm, sizeof(s)))
			continue;
		if (!strcasecmp(s, sub) && !strcasecmp(g, rg) && !strcasecmp(nm, name))
			return o;
	}
	return NULL;
}

struct json_object *dbx_emu_find_job(struct dbx_emu *e, const char *sub, const char *rg,
				     const char *name)
{
	return dbx_emu_find_resource(e, "jobs", sub, rg, name);
}

struct json_object *dbx_emu_find_vault_by_name(struct dbx_emu *e, const char *name)
{
	struct json_object *a = dbx_emu_world_array(e, "vaults");
	size_t i, n = a ? json_object_array_length(a) : 0;

	for (i = 0; i < n; i++) {
		struct json_object *v = json_object_array_get_idx(a, i);
		const char *nm = dbx_emu_jstr(v, "name");

		if (nm && !strcasecmp(nm, name))
			return v;
	}
	return NULL;
}

/* The vault whose vaultUri host is host (lower-case, no port). */
struct json_object *dbx_emu_find_vault_by_host(struct dbx_emu *e, const char *host)
{
	struct json_object *a = dbx_emu_world_array(e, "vaults");
	size_t i, n = a ? json_object_array_length(a) : 0;

	for (i = 0; i < n; i++) {
		struct json_object *v = json_object_array_get_idx(a, i);
		const char *uri = dbx_emu_jstr(dbx_emu_jpath(v, "properties"), "vaultUri");
		const char *h;
		size_t hl;

		if (!uri || strncasecmp(uri, "https://", 8))
			continue;
		h = uri + 8;
		hl = strcspn(h, "/:");
		if (hl == strlen(host) && !strncasecmp(h, host, hl))
			return v;
	}
	return NULL;
}

struct json_object *dbx_emu_find_client(struct dbx_emu *e, const char *tenant, const char *client)
{
	struct json_object *a = dbx_emu_world_array(e, "clients");
	size_t i, n = a ? json_object_array_length(a) : 0;

	for (i = 0; i < n; i++) {
		struct json_object *c = json_object_array_get_idx(a, i);
		const char *t = dbx_emu_jstr(c, "tenant_id"), *id = dbx_emu_jstr(c, "client_id");

		if (t && id && !strcasecmp(t, tenant) && !strcasecmp(id, client))
			return c;
	}
	return NULL;
}

static bool array_has_tenant(struct dbx_emu *e, const char *array, const char *key,
			     const char *tenant)
{
	struct json_object *a = dbx_emu_world_array(e, array);
	size_t i, n = a ? json_object_array_length(a) : 0;

	for (i = 0; i < n; i++) {
		const char *t = dbx_emu_jstr(json_object_array_get_idx(a, i), key);

		if (t && !strcasecmp(t, tenant))
			return true;
	}
	return false;
}

bool dbx_emu_tenant_known(struct dbx_emu *e, const char *tenant)
{
	struct json_object *a = dbx_emu_world_array(e, "tenants");
	size_t i, n = a ? json_object_array_length(a) : 0;

	for (i = 0; i < n; i++) {
		struct json_object *t = json_object_array_get_idx(a, i);

		if (json_object_is_type(t, json_type_string) &&
		    !strcasecmp(json_object_get_string(t), tenant))
			return true;
	}
	return array_has_tenant(e, "clients", "tenant_id", tenant) ||
	       array_has_tenant(e, "subscriptions", "tenantId", tenant);
}

/* ---- key material ---- */

static char *bn_b64url(const BIGNUM *bn, int pad)
{
	int len = pad > 0 ? pad : BN_num_bytes(bn);
	unsigned char *buf = malloc((size_t)len > 0 ? (size_t)len : 1);
	char *s = NULL;

	if (!buf)
		return NULL;
	if (BN_bn2binpad(bn, buf, len) == len)
		s = dbx_emu_b64url(buf, (size_t)len);
	free(buf);
	return s;
}

static int jwk_add_bn(struct json_object *jwk, const char *name, EVP_PKEY *pk, const char *param,
		      int pad)
{
	BIGNUM *bn = NULL;
	char *s = NULL;
	int rc = -1;

	if (!EVP_PKEY_get_bn_param(pk, param, &bn))
		goto out;
	s = bn_b64url(bn, pad);
	if (!s)
		goto out;
	json_object_object_add(jwk, name, json_object_new_string(s));
	rc = 0;
out:
	free(s);
	BN_free(bn);
	return rc;
}

/* Generate a JWK (public part only) for kty/size; NULL on failure. */
static struct json_object *make_jwk(const char *kty, int size, const char *crv)
{
	struct json_object *jwk = json_object_new_object();
	EVP_PKEY *pk = NULL;
	bool ok = false;

	if (!strncmp(kty, "RSA", 3)) {
		pk = EVP_RSA_gen((unsigned int)(size > 0 ? size : 2048));
		if (!pk || jwk_add_bn(jwk, "n", pk, OSSL_PKEY_PARAM_RSA_N, 0) ||
		    jwk_add_bn(jwk, "e", pk, OSSL_PKEY_PARAM_RSA_E, 0))
			goto out;
	} else if (!strncmp(kty, "EC", 2)) {
		int bytes = 32;
		const char *group = "P-256";

		if ((crv && !strcmp(crv, "P-384")) || size == 384) {
			group = "P-384";
			bytes = 48;
		} else if ((crv && !strcmp(crv, "P-521")) || size == 521) {
			group = "P-521";
			bytes = 66;
		}
		pk = EVP_EC_gen(group);
		json_object_object_add(jwk, "crv", json_object_new_string(group));
		if (!pk || jwk_add_bn(jwk, "x", pk, OSSL_PKEY_PARAM_EC_PUB_X, bytes) ||
		    jwk_add_bn(jwk, "y", pk, OSSL_PKEY_PARAM_EC_PUB_Y, bytes))
			goto out;
	}
	/* oct keys expose no public material */
	ok = true;
out:
	EVP_PKEY_free(pk);
	if (!ok) {
		json_object_put(jwk);
		jwk = NULL;
	}
	return jwk;
}

static bool has_material(struct json_object *ver, const char *kty)
{
	if (!strncmp(kty, "RSA", 3))
		return dbx_emu_jstr(ver, "n") && dbx_emu_jstr(ver, "e");
	if (!strncmp(kty, "EC", 2))
		return dbx_emu_jstr(ver, "x") && dbx_emu_jstr(ver, "y");
	return true;
}

/* Copy the public fields of a cached/generated JWK into a world key version. */
static void copy_jwk(struct json_object *ver, struct json_object *jwk)
{
	json_object_object_foreach(jwk, k, v)
	{
		json_object_object_add(ver, k, json_object_new_string(json_object_get_string(v)));
	}
}

static const char *ver_kty(struct json_object *ver)
{
	return dbx_emu_jstr(ver, "kty") ? dbx_emu_jstr(ver, "kty") : "RSA";
}

static int ver_size(struct json_object *ver)
{
	struct json_object *o;

	return json_object_object_get_ex(ver, "key_size", &o) ? json_object_get_int(o) : 0;
}

static void cache_key(char *ck, size_t len, const char *vault, const char *key, const char *version,
		      const char *kty, int size)
{
	snprintf(ck, len, "%s/%s/%s/%s/%d", vault, key, version, kty, size);
}

/*
 * Give one key version its public material (n/e or crv/x/y), from the cache
 * or generated now. Called with e->lock held by the Key Vault handler the
 * first time a version is served; the warm-up threads below usually have
 * filled the cache by then. Returns 0 or -1.
 */
int dbx_emu_key_material(struct dbx_emu *e, const char *vault, const char *key,
			 struct json_object *ver)
{
	const char *kty = ver_kty(ver), *version = dbx_emu_jstr(ver, "version");
	struct json_object *jwk = NULL;
	char ck[512];
	bool hit;

	if (!version)
		return -1;
	if (has_material(ver, kty))
		return 0;
	cache_key(ck, sizeof(ck), vault, key, version, kty, ver_size(ver));
	pthread_mutex_lock(&e->keycache_lock);
	hit = json_object_object_get_ex(e->keycache, ck, &jwk);
	if (hit)
		copy_jwk(ver, jwk);
	pthread_mutex_unlock(&e->keycache_lock);
	if (hit)
		return 0;
	jwk = make_jwk(kty, ver_size(ver), dbx_emu_jstr(ver, "crv"));
	if (!jwk)
		return -1;
	pthread_mutex_lock(&e->keycache_lock);
	copy_jwk(ver, jwk);
	json_object_object_add(e->keycache, ck, jwk);
	pthread_mutex_unlock(&e->keycache_lock);
	return 0;
}

/* ---- background warm-up of the key cache ---- */

struct keyspec {
	char *ck, *kty, *crv;
	int size;
};

struct dbx_emu_warm {
	struct dbx_emu_warm *next;
	struct dbx_emu *e;
	struct keyspec *specs;
	size_t n, next_i, nth;
	pthread_mutex_t lock;
	pthread_t th[8];
};

static void *warm_worker(void *arg)
{
	struct dbx_emu_warm *w = arg;
	struct dbx_emu *e = w->e;

	for (;;) {
		struct json_object *jwk;
		struct keyspec *k;
		bool have;

		pthread_mutex_lock(&w->lock);
		if (atomic_load(&e->stopping) || w->next_i >= w->n) {
			pthread_mutex_unlock(&w->lock);
			return NULL;
		}
		k = &w->specs[w->next_i++];
		pthread_mutex_unlock(&w->lock);

		pthread_mutex_lock(&e->keycache_lock);
		have = json_object_object_get_ex(e->keycache, k->ck, NULL);
		pthread_mutex_unlock(&e->keycache_lock);
		if (have)
			continue;
		jwk = make_jwk(k->kty, k->size, k->crv);
		if (!jwk)
			continue;
		pthread_mutex_lock(&e->keycache_lock);
		if (json_object_object_get_ex(e->keycache, k->ck, NULL))
			json_object_put(jwk);
		else
			json_object_object_add(e->keycache, k->ck, jwk);
		pthread_mutex_unlock(&e->keycache_lock);
	}
}

static int add_spec(struct dbx_emu_warm *w, size_t *cap, const char *vault, const char *key,
		    struct json_object *ver)
{
	const char *version = dbx_emu_jstr(ver, "version"), *kty = ver_kty(ver);
	char ck[512];
	struct keyspec *k;

	if (!version || has_material(ver, kty) || !strncmp(kty, "oct", 3))
		return 0;
	if (w->n == *cap) {
		size_t nc = *cap ? 2 * *cap : 16;
		struct keyspec *ns = realloc(w->specs, nc * sizeof(*ns));

		if (!ns)
			return -1;
		w->specs = ns;
		*cap = nc;
	}
	cache_key(ck, sizeof(ck), vault, key, version, kty, ver_size(ver));
	k = &w->specs[w->n++];
	k->ck = strdup(ck);
	k->kty = strdup(kty);
	k->crv = dbx_emu_jstr(ver, "crv") ? strdup(dbx_emu_jstr(ver, "crv")) : NULL;
	k->size = ver_size(ver);
	return k->ck && k->kty ? 0 : -1;
}

/*
 * Start threads (one per CPU, at most 8) that generate the key material of
 * world into the cache, so start-up does not wait for RSA key generation.
 * Call before world is shared; the specs are copies. Failures only mean
 * the material is made on first use instead.
 */
void dbx_emu_keys_warm(struct dbx_emu *e, struct json_object *world)
{
	struct dbx_emu_warm *w = calloc(1, sizeof(*w));
	struct json_object *vaults;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	size_t i, j, k, cap = 0;

	if (!w)
		return;
	w->e = e;
	pthread_mutex_init(&w->lock, NULL);
	if (json_object_object_get_ex(world, "vaults", &vaults) &&
	    json_object_is_type(vaults, json_type_array)) {
		for (i = 0; i < json_object_array_length(vaults); i++) {
			struct json_object *v = json_object_array_get_idx(vaults, i), *keys;
			const char *vname = dbx_emu_jstr(v, "name");

			if (!vname || !json_object_object_get_ex(v, "keys", &keys) ||
			    !json_object_is_type(keys, json_type_array))
				continue;
			for (j = 0; j < json_object_array_length(keys); j++) {
				struct json_object *key = json_object_array_get_idx(keys, j), *vers;
				const char *kname = dbx_emu_jstr(key, "name");

				if (!kname || !json_object_object_get_ex(key, "versions", &vers) ||
				    !json_object_is_type(vers, json_type_array))
					continue;
				for (k = 0; k < json_object_array_length(vers); k++)
					if (add_spec(w, &cap, vname, kname,
						     json_object_array_get_idx(vers, k)))
						break;
			}
		}
	}
	w->nth = ncpu < 1 ? 1 : ncpu > 8 ? 8 : (size_t)ncpu;
	if (w->nth > w->n)
		w->nth = w->n;
	for (i = 0; i < w->nth; i++)
		if (pthread_create(&w->th[i], NULL, warm_worker, w))
			break;
	w->nth = i;
	pthread_mutex_lock(&e->keycache_lock);
	w->next = e->warm;
	e->warm = w;
	pthread_mutex_unlock(&e->keycache_lock);
}

/* Stop and join every warm-up thread, free their work lists. */
void dbx_emu_keys_stop(struct dbx_emu *e)
{
	struct dbx_emu_warm *w, *next;
	size_t i;

	pthread_mutex_lock(&e->keycache_lock);
	w = e->warm;
	e->warm = NULL;
	pthread_mutex_unlock(&e->keycache_lock);
	for (; w; w = next) {
		next = w->next;
		atomic_store(&e->stopping, true);
		for (i = 0; i < w->nth; i++)
			pthread_join(w->th[i], NULL);
		for (i = 0; i < w->n; i++) {
			free(w->specs[i].ck);
			free(w->specs[i].kty);
			free(w->specs[i].crv);
		}
		free(w->specs);
		pthread_mutex_destroy(&w->lock);
		free(w);
	}
}

/*
 * Parse a world from text. Does not touch e->world, so it may run without
 * e->lock. Returns the new world or NULL with a message in err.
 */
struct json_object *dbx_emu_world_parse(const char *text, char *err, size_t errlen)
{
	enum json_tokener_error jerr = json_tokener_success;
	struct json_object *w = json_tokener_parse_verbose(text, &jerr);

	if (!w) {
		snprintf(err, errlen, "world is not JSON: %s", json_tokener_error_desc(jerr));
		return NULL;
	}
	if (!json_object_is_type(w, json_type_object)) {
		snprintf(err, errlen, "world must be a JSON object");
		json_object_put(w);
		return NULL;
	}
	return w;
}

void dbx_emu_world_replace(struct dbx_emu *e, struct json_object *world)
{
	json_object_put(e->world);
	e->world = world;
	json_object_put(e->throttle_state); /* a new world starts with full buckets */
	e->throttle_state = NULL;
}

/* ---- tokens ---- */

static char *b64url_json(struct json_object *o)
{
	const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
							      JSON_C_TO_STRING_NOSLASHESCAPE);

	return dbx_emu_b64url((const unsigned char *)s, strlen(s));
}

/*
 * Issue a JWT-shaped token and remember it. The signature is random: the
 * emulator only ever looks tokens up in its own table. Returns the token
 * (owned by the table) or NULL.
 */
const char *dbx_emu_token_issue(struct dbx_emu *e, const char *tenant, const char *client,
				const char *oid, const char *aud, int lifetime)
{
	struct json_object *hdr = json_object_new_object(), *pl = json_object_new_object();
	char *h = NULL, *p = NULL, *sig = NULL, *tok = NULL, iss[160], uti[23];
	unsigned char rnd[64];
	time_t now = time(NULL);
	struct dbx_emu_token *t;
	size_t i, keep = 0;

	/* drop tokens expired for more than an hour */
	for (i = 0; i < e->ntokens; i++) {
		if (e->tokens[i].exp + 3600 < now)
			free(e->tokens[i].token);
		else
			e->tokens[keep++] = e->tokens[i];
	}
	e->ntokens = keep;
	if (e->ntokens == e->cap_tokens) {
		size_t cap = e->cap_tokens ? e->cap_tokens * 2 : 64;
		struct dbx_emu_token *nt = realloc(e->tokens, cap * sizeof(*nt));

		if (!nt)
			goto out;
		e->tokens = nt;
		e->cap_tokens = cap;
	}
	dbx_emu_rand_hex(uti, 11);
	snprintf(iss, sizeof(iss), "https://sts.windows.net/%s/", tenant);
	json_object_object_add(hdr, "typ", json_object_new_string("JWT"));
	json_object_object_add(hdr, "alg", json_object_new_string("RS256"));
	json_object_object_add(hdr, "x5t", json_object_new_string("databox-emulator"));
	json_object_object_add(hdr, "kid", json_object_new_string("databox-emulator"));
	json_object_object_add(pl, "aud", json_object_new_string(aud));
	json_object_object_add(pl, "iss", json_object_new_string(iss));
	json_object_object_add(pl, "iat", json_object_new_int64(now));
	json_object_object_add(pl, "nbf", json_object_new_int64(now));
	json_object_object_add(pl, "exp", json_object_new_int64(now + lifetime));
	json_object_object_add(pl, "appid", json_object_new_string(client));
	json_object_object_add(pl, "appidacr", json_object_new_string("1"));
	json_object_object_add(pl, "idp", json_object_new_string(iss));
	json_object_object_add(pl, "oid", json_object_new_string(oid));
	json_object_object_add(pl, "sub", json_object_new_string(oid));
	json_object_object_add(pl, "tid", json_object_new_string(tenant));
	json_object_object_add(pl, "uti", json_object_new_string(uti));
	json_object_object_add(pl, "ver", json_object_new_string("1.0"));
	h = b64url_json(hdr);
	p = b64url_json(pl);
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		goto out;
	sig = dbx_emu_b64url(rnd, sizeof(rnd));
	if (!h || !p || !sig || asprintf(&tok, "%s.%s.%s", h, p, sig) < 0) {
		tok = NULL;
		goto out;
	}
	t = &e->tokens[e->ntokens++];
	memset(t, 0, sizeof(*t));
	t->token = tok;
	snprintf(t->tenant, sizeof(t->tenant), "%s", tenant);
	snprintf(t->client, sizeof(t->client), "%s", client);
	snprintf(t->oid, sizeof(t->oid), "%s", oid);
	snprintf(t->aud, sizeof(t->aud), "%s", aud);
	t->exp = now + lifetime;
out:
	free(h);
	free(p);
	free(sig);
	json_object_put(hdr);
	json_object_put(pl);
	return tok;
}

const struct dbx_emu_token *dbx_emu_token_find(struct dbx_emu *e, const char *token)
{
	size_t i;

	for (i = 0; i < e->ntokens; i++)
		if (!strcmp(e->tokens[i].token, token))
			return &e->tokens[i];
	return NULL;
}

/* ---- saved state (--persist) ---- */

static const char *str_or_empty(struct json_object *o, const char *key)
{
	const char *s = dbx_emu_jstr(o, key);

	return s ? s : "";
}

char *dbx_emu_state_dump(struct dbx_emu *e)
{
	struct json_object *o = json_object_new_object(), *toks = json_object_new_array();
	char *text;
	size_t i;

	json_object_object_add(o, "world", json_object_get(e->world));
	json_object_object_add(o, "operations", json_object_get(e->operations));
	for (i = 0; i < e->ntokens; i++) {
		struct json_object *t = json_object_new_object();

		json_object_object_add(t, "token", json_object_new_string(e->tokens[i].token));
		json_object_object_add(t, "tenant", json_object_new_string(e->tokens[i].tenant));
		json_object_object_add(t, "client", json_object_new_string(e->tokens[i].client));
		json_object_object_add(t, "oid", json_object_new_string(e->tokens[i].oid));
		json_object_object_add(t, "aud", json_object_new_string(e->tokens[i].aud));
		json_object_object_add(t, "exp", json_object_new_int64((int64_t)e->tokens[i].exp));
		json_object_array_add(toks, t);
	}
	json_object_object_add(o, "tokens", toks);
	json_object_object_add(o, "fail_patches", json_object_new_int64(e->fail_patches));
	json_object_object_add(o, "token_lifetime_override",
			       json_object_new_int(e->token_lifetime_override));
	text = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
							    JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	return text;
}

int dbx_emu_state_load(struct dbx_emu *e, const char *text, char *err, size_t errlen)
{
	enum json_tokener_error jerr = json_tokener_success;
	struct json_object *o = json_tokener_parse_verbose(text, &jerr), *w, *ops, *toks, *v;
	int rc = -1;
	size_t i, n;

	if (!o || !json_object_is_type(o, json_type_object)) {
		snprintf(err, errlen, "saved state: not a JSON object (%s)",
			 json_tokener_error_desc(jerr));
		goto out;
	}
	if (!json_object_object_get_ex(o, "world", &w) ||
	    !json_object_is_type(w, json_type_object) ||
	    !json_object_object_get_ex(o, "operations", &ops) ||
	    !json_object_is_type(ops, json_type_object) ||
	    !json_object_object_get_ex(o, "tokens", &toks) ||
	    !json_object_is_type(toks, json_type_array)) {
		snprintf(err, errlen, "saved state: needs world, operations and tokens");
		goto out;
	}
	n = json_object_array_length(toks);
	e->tokens = calloc(n ? n : 1, sizeof(*e->tokens));
	if (!e->tokens) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	e->cap_tokens = n ? n : 1;
	for (i = 0; i < n; i++) {
		struct json_object *t = json_object_array_get_idx(toks, i);
		struct dbx_emu_token *d = &e->tokens[e->ntokens];
		const char *tok = dbx_emu_jstr(t, "token");

		if (!tok)
			continue;
		d->token = strdup(tok);
		if (!d->token)
			continue;
		snprintf(d->tenant, sizeof(d->tenant), "%s", str_or_empty(t, "tenant"));
		snprintf(d->client, sizeof(d->client), "%s", str_or_empty(t, "client"));
		snprintf(d->oid, sizeof(d->oid), "%s", str_or_empty(t, "oid"));
		snprintf(d->aud, sizeof(d->aud), "%s", str_or_empty(t, "aud"));
		d->exp =
		    json_object_object_get_ex(t, "exp", &v) ? (time_t)json_object_get_int64(v) : 0;
		e->ntokens++;
	}
	if (json_object_object_get_ex(o, "fail_patches", &v))
		e->fail_patches = json_object_get_int64(v);
	if (json_object_object_get_ex(o, "token_lifetime_override", &v))
		e->token_lifetime_override = json_object_get_int(v);
	dbx_emu_keys_warm(e, w);
	dbx_emu_world_replace(e, json_object_get(w));
	json_object_put(e->operations);
	e->operations = json_object_get(ops);
	rc = 0;
out:
	json_object_put(o);
	return rc;
}
