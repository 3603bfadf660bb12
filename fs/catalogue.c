/*
 * catalogue.c: the vaults, keys, versions, identities and subscription
 * names of catalogue.h, listed lazily and cached for cache_ttl.
 *
 * State: one list of subscription names, one of vaults (every visible
 * subscription's, each with its keys once listed, each key with its
 * versions once listed, each version with its GET once read), one of
 * user-assigned identities. A list older than cache_ttl is fetched again
 * when it is next needed; a vault's keys survive a refresh of the vault
 * list while the vault is still there, with their own age. A listing the
 * credential may not read (403) is cached like an answer, so a denied
 * vault costs one request per cache_ttl and says why in keys_error.
 *
 * One mutex guards all of it and is held across the requests: catalogue
 * reads are an admin's `ls` and `cat`, never a backup's, so they queue
 * rather than stampede. Paths resolve component by component against the
 * lists; files are rendered fresh from them, so st_size is the length a
 * read returns.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "databoxfs/validate.h"
#include "catalogue.h"

#define MAX_COMPS 8
#define INO_BASE  (UINT64_C(1) << 62) /* above every inode cache.c interns */

struct cat_version {
	char name[DBX_KEY_VERSION_LEN + 1];
	bool enabled;
	time_t nbf, exp;
	uint64_t got_at; /* the GET, 0: never read */
	enum dbx_err got_rc;
	struct dbx_error got_err;
	struct dbx_key_info info;
};

struct cat_key {
	char name[DBX_KEY_NAME_MAX + 1];
	uint64_t at; /* versions listed at, 0: never */
	enum dbx_err rc;
	struct dbx_error err;
	struct cat_version *v;
	size_t n;
};

struct cat_vault {
	char name[DBX_VAULT_NAME_MAX + 1];
	char id[DBX_ARM_ID_MAX];
	bool soft_delete, purge_protection, rbac;
	uint64_t at; /* keys listed at, 0: never */
	enum dbx_err rc;
	struct dbx_error err;
	struct cat_key *k;
	size_t n;
};

struct cat_identity {
	char *sub, *rg, *name, *id, *principal, *client;
};

struct cat_sub {
	char *id, *link; /* link: the safe display name under by-name/ */
};

struct dbx_catalogue {
	struct dbx_catalogue_config cfg;
	pthread_mutex_t lock;
	time_t born; /* every mtime: the catalogue has no per-item change times */
	uint64_t vaults_at, ids_at, subs_at;
	struct cat_vault *vaults;
	size_t n_vaults;
	struct cat_identity *ids;
	size_t n_ids;
	struct cat_sub *subs;
	size_t n_subs;
};

/* ---- helpers ---- */

static uint64_t now_ms(const struct dbx_catalogue *c)
{
	return dbx_clock_now_ms(c->cfg.clock);
}

/*
 * Is a list fetched at `at` still fresh? Within cache_ttl, and always
 * within HOLD_MS, so that one readdir (which resolves each child) costs
 * one listing even with cache_ttl=0.
 */
#define HOLD_MS 250

static bool fresh(const struct dbx_catalogue *c, uint64_t at)
{
	uint64_t age = now_ms(c) - at;

	return at != 0 && (age < c->cfg.ttl_ms || age < HOLD_MS);
}

/* A fetch time that is never 0 (0 means "never fetched"). */
static uint64_t stamp(const struct dbx_catalogue *c)
{
	uint64_t t = now_ms(c);

	return t ? t : 1;
}

static uint64_t path_ino(const char *path)
{
	uint64_t h = UINT64_C(1469598103934665603);

	for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
		h ^= *p;
		h *= UINT64_C(1099511628211);
	}
	return INO_BASE | (h >> 2);
}

static enum dbx_err no_mem(struct dbx_error *err)
{
	return dbx_error_set(err, DBX_ENOMEM, "out of memory");
}

static void iso(time_t t, char *buf, size_t cap)
{
	struct tm tm;

	if (!gmtime_r(&t, &tm) || strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, cap, "@%lld", (long long)t);
}

bool dbx_catalogue_top(const char *name, size_t len)
{
	static const char *const tops[] = {"keyvaults", "identities", "by-name"};

	for (size_t i = 0; i < sizeof(tops) / sizeof(tops[0]); i++) {
		if (strlen(tops[i]) == len && strncmp(name, tops[i], len) == 0)
			return true;
	}
	return false;
}

struct dbx_catalogue *dbx_catalogue_new(const struct dbx_catalogue_config *cfg)
{
	struct dbx_catalogue *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->cfg = *cfg;
	pthread_mutex_init(&c->lock, NULL);
	c->born = dbx_clock_wall(cfg->clock);
	return c;
}

static void free_keys(struct cat_vault *v)
{
	for (size_t i = 0; i < v->n; i++)
		free(v->k[i].v);
	free(v->k);
	v->k = NULL;
	v->n = 0;
}

static void free_vaults(struct cat_vault *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free_keys(&v[i]);
	free(v);
}

static void free_ids(struct cat_identity *ids, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(ids[i].sub);
		free(ids[i].rg);
		free(ids[i].name);
		free(ids[i].id);
		free(ids[i].principal);
		free(ids[i].client);
	}
	free(ids);
}

static void free_subs(struct cat_sub *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(s[i].id);
		free(s[i].link);
	}
	free(s);
}

void dbx_catalogue_free(struct dbx_catalogue *c)
{
	if (!c)
		return;
	free_vaults(c->vaults, c->n_vaults);
	free_ids(c->ids, c->n_ids);
	free_subs(c->subs, c->n_subs);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

/* ---- fetching ---- */

/* The visible subscriptions: the root's listing (the cache's, with its TTL). */
static enum dbx_err visible(struct dbx_catalogue *c, struct dbx_dirlist *subs,
			    struct dbx_error *err)
{
	return dbx_cache_list(c->cfg.cache, NULL, NULL, subs, err);
}

struct vault_acc {
	struct cat_vault *v;
	size_t n;
	bool nomem;
};

static int add_vault(void *ctx, const char *id, const char *name, const struct dbx_arm_vault *p)
{
	struct vault_acc *a = ctx;
	struct cat_vault *grown, *v;

	if (strlen(name) > DBX_VAULT_NAME_MAX || strlen(id) >= DBX_ARM_ID_MAX)
		return 0; /* not a vault name Data Box can use; ARM never sends one */
	grown = realloc(a->v, (a->n + 1) * sizeof(*a->v));
	if (!grown) {
		a->nomem = true;
		return 1;
	}
	a->v = grown;
	v = &a->v[a->n++];
	memset(v, 0, sizeof(*v));
	memcpy(v->name, name, strlen(name) + 1);
	memcpy(v->id, id, strlen(id) + 1);
	v->soft_delete = p->soft_delete;
	v->purge_protection = p->purge_protection;
	v->rbac = p->rbac;
	return 0;
}

static enum dbx_err load_vaults(struct dbx_catalogue *c, struct dbx_error *err)
{
	struct dbx_dirlist subs = {0};
	struct vault_acc a = {0};
	enum dbx_err rc;

	if (fresh(c, c->vaults_at))
		return DBX_OK;
	rc = visible(c, &subs, err);
	for (size_t i = 0; rc == DBX_OK && i < subs.n; i++) {
		rc = dbx_arm_list_vaults(c->cfg.arm, subs.v[i].name, add_vault, &a, err);
		if (rc == DBX_OK && a.nomem)
			rc = no_mem(err);
	}
	dbx_dirlist_free(&subs);
	if (rc != DBX_OK) {
		free_vaults(a.v, a.n);
		return rc;
	}
	/* Keep what is known of each vault still listed (its keys and their age). */
	for (size_t i = 0; i < a.n; i++) {
		for (size_t j = 0; j < c->n_vaults; j++) {
			struct cat_vault *old = &c->vaults[j];

			if (strcasecmp(old->id, a.v[i].id) != 0)
				continue;
			a.v[i].at = old->at;
			a.v[i].rc = old->rc;
			a.v[i].err = old->err;
			a.v[i].k = old->k;
			a.v[i].n = old->n;
			old->k = NULL;
			old->n = 0;
			break;
		}
	}
	free_vaults(c->vaults, c->n_vaults);
	c->vaults = a.v;
	c->n_vaults = a.n;
	c->vaults_at = stamp(c);
	return DBX_OK;
}

struct key_acc {
	struct cat_key *k;
	size_t n;
	bool nomem;
};

static int add_key(void *ctx, const struct dbx_key_version *item)
{
	struct key_acc *a = ctx;
	struct cat_key *grown = realloc(a->k, (a->n + 1) * sizeof(*a->k));

	if (!grown) {
		a->nomem = true;
		return 1;
	}
	a->k = grown;
	memset(&a->k[a->n], 0, sizeof(a->k[a->n]));
	snprintf(a->k[a->n].name, sizeof(a->k[a->n].name), "%s", item->name);
	a->n++;
	return 0;
}

/*
 * The vault's keys, listed when older than the TTL. A refusal (403) is
 * kept as the vault's answer (v->rc, v->err) and is DBX_OK here: the
 * vault still shows, its keys_error says why. Other failures return.
 */
static enum dbx_err load_keys(struct dbx_catalogue *c, struct cat_vault *v, struct dbx_error *err)
{
	struct key_acc a = {0};
	struct dbx_error e = {0};
	enum dbx_err rc;

	if (fresh(c, v->at))
		return DBX_OK;
	rc = dbx_keyvault_list_keys(c->cfg.kv, v->name, add_key, &a, &e);
	if (rc == DBX_OK && a.nomem)
		rc = no_mem(&e);
	if (rc != DBX_OK && rc != DBX_EACCES) {
		free(a.k);
		if (err)
			*err = e;
		return rc;
	}
	/* Keep each key's versions that are still listed. */
	for (size_t i = 0; i < a.n; i++) {
		for (size_t j = 0; j < v->n; j++) {
			if (strcasecmp(v->k[j].name, a.k[i].name) != 0)
				continue;
			a.k[i] = v->k[j];
			v->k[j].v = NULL;
			v->k[j].n = 0;
			break;
		}
	}
	free_keys(v);
	v->k = a.k;
	v->n = a.n;
	v->rc = rc;
	v->err = e;
	v->at = stamp(c);
	return DBX_OK;
}

struct ver_acc {
	struct cat_version *v;
	size_t n;
	bool nomem;
};

static int add_version(void *ctx, const struct dbx_key_version *item)
{
	struct ver_acc *a = ctx;
	struct cat_version *grown, *v;

	if (strlen(item->name) != DBX_KEY_VERSION_LEN)
		return 0;
	grown = realloc(a->v, (a->n + 1) * sizeof(*a->v));
	if (!grown) {
		a->nomem = true;
		return 1;
	}
	a->v = grown;
	v = &a->v[a->n++];
	memset(v, 0, sizeof(*v));
	memcpy(v->name, item->name, DBX_KEY_VERSION_LEN + 1);
	v->enabled = item->enabled;
	v->nbf = item->nbf;
	v->exp = item->exp;
	return 0;
}

static enum dbx_err load_versions(struct dbx_catalogue *c, struct cat_vault *vault,
				  struct cat_key *k, struct dbx_error *err)
{
	struct ver_acc a = {0};
	enum dbx_err rc;

	if (fresh(c, k->at))
		return k->rc == DBX_OK ? DBX_OK : (err ? (*err = k->err).err : k->rc);
	rc = dbx_keyvault_list_versions(c->cfg.kv, vault->name, k->name, add_version, &a, err);
	if (rc == DBX_OK && a.nomem)
		rc = no_mem(err);
	if (rc != DBX_OK) {
		free(a.v);
		return rc;
	}
	/* Keep what the GETs of versions still listed found. */
	for (size_t i = 0; i < a.n; i++) {
		for (size_t j = 0; j < k->n; j++) {
			if (strcasecmp(k->v[j].name, a.v[i].name) != 0 || !k->v[j].got_at)
				continue;
			a.v[i].got_at = k->v[j].got_at;
			a.v[i].got_rc = k->v[j].got_rc;
			a.v[i].got_err = k->v[j].got_err;
			a.v[i].info = k->v[j].info;
		}
	}
	free(k->v);
	k->v = a.v;
	k->n = a.n;
	k->rc = DBX_OK;
	k->at = stamp(c);
	return DBX_OK;
}

/* The version's GET (kty, size, key_ops), when older than the TTL. */
static enum dbx_err load_detail(struct dbx_catalogue *c, struct cat_vault *vault, struct cat_key *k,
				struct cat_version *v, struct dbx_error *err)
{
	const struct dbx_cloud *cloud = dbx_arm_cloud(c->cfg.arm);
	struct dbx_key_url ku;
	char url[DBX_KEY_URL_MAX];

	if (!fresh(c, v->got_at)) {
		snprintf(url, sizeof(url), "https://%s.%s/keys/%s/%s", vault->name,
			 cloud->vault_suffix, k->name, v->name);
		v->got_rc = dbx_validate_key_url(url, strlen(url), cloud, &ku, &v->got_err);
		if (v->got_rc == DBX_OK)
			v->got_rc = dbx_keyvault_get_key(c->cfg.kv, &ku, &v->info, &v->got_err);
		v->got_at = stamp(c);
		if (v->got_rc == DBX_ETIMEDOUT || v->got_rc == DBX_EUNREACHABLE ||
		    v->got_rc == DBX_ETHROTTLED || v->got_rc == DBX_ENOMEM)
			v->got_at = 0; /* transient: asked again next time */
	}
	if (v->got_rc != DBX_OK && err)
		*err = v->got_err;
	return v->got_rc;
}

struct id_acc {
	struct cat_identity *v;
	size_t n;
	bool nomem;
};

/* The resource group of an ARM ID /subscriptions/S/resourceGroups/RG/..., malloc'd. */
static char *rg_of(const char *id)
{
	const char *p = strcasestr(id, "/resourceGroups/"), *e;

	if (!p)
		return NULL;
	p += strlen("/resourceGroups/");
	e = strchr(p, '/');
	return e && e > p ? strndup(p, (size_t)(e - p)) : NULL;
}

struct id_ctx {
	struct id_acc *a;
	const char *sub;
};

static int add_identity(void *ctx, const struct dbx_arm_identity *uai)
{
	struct id_ctx *ic = ctx;
	struct id_acc *a = ic->a;
	struct cat_identity *grown, *v;
	char *rg = rg_of(uai->id);

	if (!rg)
		return 0; /* not an ID of a resource group's resource: ARM never sends one */
	grown = realloc(a->v, (a->n + 1) * sizeof(*a->v));
	if (!grown) {
		free(rg);
		a->nomem = true;
		return 1;
	}
	a->v = grown;
	v = &a->v[a->n++];
	v->sub = strdup(ic->sub);
	v->rg = rg;
	v->name = strdup(uai->name);
	v->id = strdup(uai->id);
	v->principal = strdup(uai->principal_id);
	v->client = strdup(uai->client_id);
	if (!v->sub || !v->name || !v->id || !v->principal || !v->client) {
		a->nomem = true;
		return 1;
	}
	return 0;
}

static enum dbx_err load_identities(struct dbx_catalogue *c, struct dbx_error *err)
{
	struct dbx_dirlist subs = {0};
	struct id_acc a = {0};
	enum dbx_err rc;

	if (fresh(c, c->ids_at))
		return DBX_OK;
	rc = visible(c, &subs, err);
	for (size_t i = 0; rc == DBX_OK && i < subs.n; i++) {
		struct id_ctx ic = {&a, subs.v[i].name};

		rc = dbx_arm_list_identities(c->cfg.arm, subs.v[i].name, add_identity, &ic, err);
		if (rc == DBX_OK && a.nomem)
			rc = no_mem(err);
	}
	dbx_dirlist_free(&subs);
	if (rc != DBX_OK) {
		free_ids(a.v, a.n);
		return rc;
	}
	free_ids(c->ids, c->n_ids);
	c->ids = a.v;
	c->n_ids = a.n;
	c->ids_at = stamp(c);
	return DBX_OK;
}

struct sub_acc {
	struct cat_sub *v;
	size_t n;
	const struct dbx_dirlist *visible;
	bool nomem;
};

/*
 * A display name made safe as one path component (docs/formats.md, "The
 * catalogue"): '/' and control bytes become '_', an empty name, "." or
 * ".." becomes "_" repeated, and it is cut to 200 bytes.
 */
static char *safe_name(const char *display)
{
	size_t n = strlen(display);
	char *s;

	if (n > 200)
		n = 200;
	s = strndup(n ? display : "_", n ? n : 1);
	if (!s)
		return NULL;
	for (char *p = s; *p; p++) {
		if (*p == '/' || (unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '_';
	}
	if (strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		memset(s, '_', strlen(s));
	return s;
}

static int add_sub(void *ctx, const char *id, const char *display)
{
	struct sub_acc *a = ctx;
	struct cat_sub *grown;
	bool shown = false;

	for (size_t i = 0; i < a->visible->n && !shown; i++)
		shown = strcasecmp(a->visible->v[i].name, id) == 0;
	if (!shown)
		return 0;
	grown = realloc(a->v, (a->n + 1) * sizeof(*a->v));
	if (!grown) {
		a->nomem = true;
		return 1;
	}
	a->v = grown;
	a->v[a->n].id = strdup(id);
	a->v[a->n].link = safe_name(display);
	a->n++;
	if (!a->v[a->n - 1].id || !a->v[a->n - 1].link) {
		a->nomem = true;
		return 1;
	}
	return 0;
}

/* Names shared by several subscriptions all get "~<subscription-id>" appended. */
static enum dbx_err resolve_collisions(struct cat_sub *v, size_t n, struct dbx_error *err)
{
	bool *dup = calloc(n ? n : 1, sizeof(*dup));

	if (!dup)
		return no_mem(err);
	for (size_t i = 0; i < n; i++) {
		for (size_t j = i + 1; j < n; j++) {
			if (strcmp(v[i].link, v[j].link) == 0)
				dup[i] = dup[j] = true;
		}
	}
	for (size_t i = 0; i < n; i++) {
		char *s;

		if (!dup[i])
			continue;
		if (asprintf(&s, "%s~%s", v[i].link, v[i].id) < 0) {
			free(dup);
			return no_mem(err);
		}
		free(v[i].link);
		v[i].link = s;
	}
	free(dup);
	return DBX_OK;
}

static enum dbx_err load_subs(struct dbx_catalogue *c, struct dbx_error *err)
{
	struct dbx_dirlist subs = {0};
	struct sub_acc a = {0};
	enum dbx_err rc;

	if (fresh(c, c->subs_at))
		return DBX_OK;
	rc = visible(c, &subs, err);
	a.visible = &subs;
	if (rc == DBX_OK)
		rc = dbx_arm_list_subscription_names(c->cfg.arm, add_sub, &a, err);
	if (rc == DBX_OK && a.nomem)
		rc = no_mem(err);
	if (rc == DBX_OK)
		rc = resolve_collisions(a.v, a.n, err);
	dbx_dirlist_free(&subs);
	if (rc != DBX_OK) {
		free_subs(a.v, a.n);
		return rc;
	}
	free_subs(c->subs, c->n_subs);
	c->subs = a.v;
	c->n_subs = a.n;
	c->subs_at = stamp(c);
	return DBX_OK;
}

/* ---- resolution ---- */

enum kind {
	K_BYNAME,     /* /by-name */
	K_LINK,	      /* /by-name/<name> */
	K_VAULTS,     /* /keyvaults */
	K_VAULT,      /* /keyvaults/<v> */
	K_VAULT_FILE, /* /keyvaults/<v>/<file> */
	K_KEYS,	      /* /keyvaults/<v>/keys */
	K_KEY,	      /* .../keys/<k> */
	K_KEY_FILE,   /* .../keys/<k>/new_version */
	K_VERSIONS,   /* .../keys/<k>/versions */
	K_VERSION,    /* .../versions/<ver> */
	K_VER_FILE,   /* .../versions/<ver>/<file> */
	K_IDS,	      /* /identities */
	K_ID_SUB,     /* /identities/<s> */
	K_ID_RG,      /* /identities/<s>/<rg> */
	K_ID,	      /* /identities/<s>/<rg>/<name> */
	K_ID_FILE,    /* .../<name>/<file> */
};

static const char *const vault_files[] = {
    "id", "soft_delete", "purge_protection", "authorization", "eligible", "keys_error", "new_key"};
static const char *const version_files[] = {"url", "kty", "size", "enabled", "expires", "eligible"};
static const char *const id_files[] = {"id", "principal_id", "client_id"};

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

static int file_index(const char *const *files, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++) {
		if (strcmp(files[i], name) == 0)
			return (int)i;
	}
	return -1;
}

/* A resolved path: what it is and what it names (pointers into c's lists, lock held). */
struct node {
	enum kind kind;
	char comp[MAX_COMPS][DBX_KEY_NAME_MAX + 130];
	size_t n;
	int file; /* index into its table, for *_FILE */
	struct cat_vault *vault;
	struct cat_key *key;
	struct cat_version *ver;
	const struct cat_identity *id; /* K_ID, K_ID_FILE: one identity of the group */
	const struct cat_sub *sub;
};

static enum dbx_err split(const char *path, struct node *nd)
{
	const char *p = path;

	memset(nd, 0, sizeof(*nd));
	while (*p) {
		size_t len;

		while (*p == '/')
			p++;
		if (!*p)
			break;
		len = strcspn(p, "/");
		if (nd->n >= MAX_COMPS || len >= sizeof(nd->comp[0]) || (len == 1 && p[0] == '.') ||
		    (len == 2 && p[0] == '.' && p[1] == '.'))
			return DBX_ENOTFOUND;
		memcpy(nd->comp[nd->n], p, len);
		nd->comp[nd->n][len] = '\0';
		nd->n++;
		p += len;
	}
	return nd->n ? DBX_OK : DBX_ENOTFOUND;
}

/* "not found" naming up to a few of what exists (the catalogue's names). */
static enum dbx_err not_found(struct dbx_error *err, const char *what, const char *name,
			      const char *const *names, size_t n, size_t stride)
{
	char list[400] = "";
	size_t used = 0;

	for (size_t i = 0; i < n && i < 5 && used < sizeof(list); i++)
		used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s", i ? ", " : "",
					 *(const char *const *)((const char *)names + i * stride));
	if (n > 5 && used < sizeof(list))
		snprintf(list + used, sizeof(list) - used, ", ...");
	return dbx_error_set(err, DBX_ENOTFOUND, "no %s '%s'%s%s", what, name,
			     n ? "; there are: " : "", list);
}

static enum dbx_err find_vault(struct dbx_catalogue *c, struct node *nd, struct dbx_error *err)
{
	const char *names[6];
	size_t shown = 0;
	enum dbx_err rc = load_vaults(c, err);

	if (rc != DBX_OK)
		return rc;
	for (size_t i = 0; i < c->n_vaults; i++) {
		if (strcasecmp(c->vaults[i].name, nd->comp[1]) == 0) {
			nd->vault = &c->vaults[i];
			return DBX_OK;
		}
		if (shown < N_OF(names))
			names[shown++] = c->vaults[i].name;
	}
	return not_found(err, "key vault", nd->comp[1], names, shown, sizeof(names[0]));
}

static enum dbx_err find_key(struct dbx_catalogue *c, struct node *nd, struct dbx_error *err)
{
	const char *names[6];
	size_t shown = 0;
	struct cat_vault *v = nd->vault;
	enum dbx_err rc = load_keys(c, v, err);

	if (rc != DBX_OK)
		return rc;
	if (v->rc != DBX_OK) {
		if (err)
			*err = v->err;
		return v->rc;
	}
	for (size_t i = 0; i < v->n; i++) {
		if (strcasecmp(v->k[i].name, nd->comp[3]) == 0) {
			nd->key = &v->k[i];
			return DBX_OK;
		}
		if (shown < N_OF(names))
			names[shown++] = v->k[i].name;
	}
	return not_found(err, "key", nd->comp[3], names, shown, sizeof(names[0]));
}

static enum dbx_err find_version(struct dbx_catalogue *c, struct node *nd, struct dbx_error *err)
{
	struct cat_key *k = nd->key;
	enum dbx_err rc = load_versions(c, nd->vault, k, err);

	if (rc != DBX_OK)
		return rc;
	for (size_t i = 0; i < k->n; i++) {
		if (strcasecmp(k->v[i].name, nd->comp[5]) == 0) {
			nd->ver = &k->v[i];
			return DBX_OK;
		}
	}
	return dbx_error_set(err, DBX_ENOTFOUND, "no version '%s' of key '%s'%s%s", nd->comp[5],
			     k->name, k->n ? "; the current one is " : "",
			     k->n ? k->v[k->n - 1].name : "");
}

static enum dbx_err resolve_vaults(struct dbx_catalogue *c, struct node *nd, struct dbx_error *err)
{
	enum dbx_err rc;

	if (nd->n == 1) {
		nd->kind = K_VAULTS;
		return DBX_OK;
	}
	rc = find_vault(c, nd, err);
	if (rc != DBX_OK || nd->n == 2) {
		nd->kind = K_VAULT;
		return rc;
	}
	if (strcmp(nd->comp[2], "keys") != 0) {
		nd->file = file_index(vault_files, N_OF(vault_files), nd->comp[2]);
		nd->kind = K_VAULT_FILE;
		return nd->file >= 0 && nd->n == 3
			   ? DBX_OK
			   : dbx_error_set(err, DBX_ENOTFOUND, "no such file");
	}
	nd->kind = K_KEYS;
	if (nd->n == 3) /* the directory is there even when its keys cannot be listed */
		return DBX_OK;
	rc = find_key(c, nd, err);
	nd->kind = K_KEY;
	if (rc != DBX_OK || nd->n == 4)
		return rc;
	if (strcmp(nd->comp[4], "versions") != 0) {
		nd->kind = K_KEY_FILE;
		return strcmp(nd->comp[4], "new_version") == 0 && nd->n == 5
			   ? DBX_OK
			   : dbx_error_set(err, DBX_ENOTFOUND, "no such file");
	}
	nd->kind = K_VERSIONS;
	if (nd->n == 5)
		return DBX_OK;
	rc = find_version(c, nd, err);
	nd->kind = K_VERSION;
	if (rc != DBX_OK || nd->n == 6)
		return rc;
	nd->file = file_index(version_files, N_OF(version_files), nd->comp[6]);
	nd->kind = K_VER_FILE;
	return nd->file >= 0 && nd->n == 7 ? DBX_OK
					   : dbx_error_set(err, DBX_ENOTFOUND, "no such file");
}

static bool id_matches(const struct cat_identity *id, const struct node *nd, size_t depth)
{
	return (depth < 2 || strcasecmp(id->sub, nd->comp[1]) == 0) &&
	       (depth < 3 || strcasecmp(id->rg, nd->comp[2]) == 0) &&
	       (depth < 4 || strcmp(id->name, nd->comp[3]) == 0);
}

static enum dbx_err resolve_ids(struct dbx_catalogue *c, struct node *nd, struct dbx_error *err)
{
	struct dbx_dirlist subs = {0};
	enum dbx_err rc;
	bool sub_ok = false;

	nd->kind = nd->n == 1 ? K_IDS : nd->n == 2 ? K_ID_SUB : nd->n == 3 ? K_ID_RG : K_ID;
	if (nd->n == 1)
		return DBX_OK;
	if (nd->n > 5)
		return dbx_error_set(err, DBX_ENOTFOUND, "no such file");
	rc = visible(c, &subs, err);
	for (size_t i = 0; rc == DBX_OK && i < subs.n; i++)
		sub_ok = sub_ok || strcasecmp(subs.v[i].name, nd->comp[1]) == 0;
	dbx_dirlist_free(&subs);
	if (rc != DBX_OK)
		return rc;
	if (!sub_ok)
		return dbx_error_set(err, DBX_ENOTFOUND, "no visible subscription '%s'",
				     nd->comp[1]);
	if (nd->n == 2)
		return DBX_OK;
	rc = load_identities(c, err);
	if (rc != DBX_OK)
		return rc;
	for (size_t i = 0; i < c->n_ids && !nd->id; i++) {
		if (id_matches(&c->ids[i], nd, nd->n < 4 ? nd->n : 4))
			nd->id = &c->ids[i];
	}
	if (!nd->id)
		return dbx_error_set(err, DBX_ENOTFOUND, "no user-assigned identity there");
	if (nd->n == 5) {
		nd->kind = K_ID_FILE;
		nd->file = file_index(id_files, N_OF(id_files), nd->comp[4]);
		if (nd->file < 0)
			return dbx_error_set(err, DBX_ENOTFOUND, "no such file");
	}
	return DBX_OK;
}

static enum dbx_err resolve_byname(struct dbx_catalogue *c, struct node *nd, struct dbx_error *err)
{
	enum dbx_err rc;

	nd->kind = nd->n == 1 ? K_BYNAME : K_LINK;
	if (nd->n == 1)
		return DBX_OK;
	if (nd->n > 2)
		return dbx_error_set(err, DBX_ENOTFOUND, "no such file");
	rc = load_subs(c, err);
	if (rc != DBX_OK)
		return rc;
	for (size_t i = 0; i < c->n_subs; i++) {
		if (strcmp(c->subs[i].link, nd->comp[1]) == 0) {
			nd->sub = &c->subs[i];
			return DBX_OK;
		}
	}
	return dbx_error_set(err, DBX_ENOTFOUND, "no subscription called '%s'", nd->comp[1]);
}

/* Resolve path (lock held). */
static enum dbx_err resolve(struct dbx_catalogue *c, const char *path, struct node *nd,
			    struct dbx_error *err)
{
	if (split(path, nd) != DBX_OK)
		return dbx_error_set(err, DBX_ENOTFOUND, "no such file");
	if (strcmp(nd->comp[0], "keyvaults") == 0)
		return resolve_vaults(c, nd, err);
	if (strcmp(nd->comp[0], "identities") == 0)
		return resolve_ids(c, nd, err);
	if (strcmp(nd->comp[0], "by-name") == 0)
		return resolve_byname(c, nd, err);
	return dbx_error_set(err, DBX_ENOTFOUND, "no such file");
}

/* ---- rendering ---- */

static bool is_dir(enum kind k)
{
	return k != K_LINK && k != K_VAULT_FILE && k != K_KEY_FILE && k != K_VER_FILE &&
	       k != K_ID_FILE;
}

static bool is_control(const struct node *nd)
{
	return nd->kind == K_KEY_FILE ||
	       (nd->kind == K_VAULT_FILE && strcmp(vault_files[nd->file], "new_key") == 0);
}

static struct dbx_key_facts vault_facts(const struct cat_vault *v)
{
	struct dbx_key_facts f = {
	    .vault_known = true,
	    .soft_delete = v->soft_delete,
	    .purge_protection = v->purge_protection,
	};

	return f;
}

static enum dbx_err render_vault_file(struct dbx_catalogue *c, struct node *nd, char *out,
				      size_t cap, struct dbx_error *err)
{
	const struct cat_vault *v = nd->vault;
	const char *f = vault_files[nd->file];
	struct dbx_key_facts facts = vault_facts(v);
	enum dbx_err rc;

	if (strcmp(f, "id") == 0)
		snprintf(out, cap, "%s\n", v->id);
	else if (strcmp(f, "soft_delete") == 0)
		snprintf(out, cap, "%s\n", v->soft_delete ? "on" : "off");
	else if (strcmp(f, "purge_protection") == 0)
		snprintf(out, cap, "%s\n", v->purge_protection ? "on" : "off");
	else if (strcmp(f, "authorization") == 0)
		snprintf(out, cap, "%s\n", v->rbac ? "rbac" : "access policies");
	else if (strcmp(f, "eligible") == 0)
		dbx_key_rules_eligible(&facts, dbx_clock_wall(c->cfg.clock), out, cap);
	else if (strcmp(f, "keys_error") == 0) {
		rc = load_keys(c, nd->vault, err);
		if (rc != DBX_OK)
			return rc;
		if (v->rc == DBX_OK)
			out[0] = '\0';
		else
			snprintf(out, cap,
				 "the mount's credential may not list the keys of this vault: %s\n",
				 v->err.message);
	} else
		out[0] = '\0'; /* new_key: write-only */
	return DBX_OK;
}

static enum dbx_err render_version_file(struct dbx_catalogue *c, struct node *nd, char *out,
					size_t cap, struct dbx_error *err)
{
	const char *f = version_files[nd->file];
	const struct cat_version *v = nd->ver;
	const struct dbx_cloud *cloud = dbx_arm_cloud(c->cfg.arm);
	struct dbx_key_facts facts;
	char when[64];
	enum dbx_err rc;

	if (strcmp(f, "url") == 0) {
		snprintf(out, cap, "https://%s.%s/keys/%s/%s\n", nd->vault->name,
			 cloud->vault_suffix, nd->key->name, v->name);
		return DBX_OK;
	}
	if (strcmp(f, "enabled") == 0) {
		snprintf(out, cap, "%s\n", v->enabled ? "yes" : "no");
		return DBX_OK;
	}
	if (strcmp(f, "expires") == 0) {
		iso(v->exp, when, sizeof(when));
		snprintf(out, cap, "%s%s", v->exp ? when : "", v->exp ? "\n" : "");
		return DBX_OK;
	}
	/* kty, size, eligible: the version's GET (Key Vault's lists carry neither). */
	rc = load_detail(c, nd->vault, nd->key, nd->ver, err);
	if (rc != DBX_OK)
		return rc;
	if (strcmp(f, "kty") == 0) {
		snprintf(out, cap, "%s\n", v->info.kty);
	} else if (strcmp(f, "size") == 0) {
		if (v->info.bits)
			snprintf(out, cap, "%u\n", v->info.bits);
		else
			out[0] = '\0';
	} else {
		facts = vault_facts(nd->vault);
		facts.key_known = true;
		facts.kty = v->info.kty;
		facts.bits = v->info.bits;
		facts.enabled = v->info.enabled;
		facts.nbf = v->info.nbf;
		facts.exp = v->info.exp;
		facts.ops_known = v->info.ops_known;
		facts.ops = v->info.ops;
		dbx_key_rules_eligible(&facts, dbx_clock_wall(c->cfg.clock), out, cap);
	}
	return DBX_OK;
}

/* The bytes of a file or link node into out (cap bytes). */
static enum dbx_err render(struct dbx_catalogue *c, struct node *nd, char *out, size_t cap,
			   struct dbx_error *err)
{
	out[0] = '\0';
	switch (nd->kind) {
	case K_LINK:
		snprintf(out, cap, "../%s", nd->sub->id);
		return DBX_OK;
	case K_VAULT_FILE:
		return render_vault_file(c, nd, out, cap, err);
	case K_KEY_FILE:
		return DBX_OK;
	case K_VER_FILE:
		return render_version_file(c, nd, out, cap, err);
	case K_ID_FILE: {
		const char *v = nd->file == 0	? nd->id->id
				: nd->file == 1 ? nd->id->principal
						: nd->id->client;

		snprintf(out, cap, "%s%s", v, *v ? "\n" : "");
		return DBX_OK;
	}
	default:
		return dbx_error_set(err, DBX_EINVAL, "is a directory");
	}
}

#define RENDER_MAX 2048

static enum dbx_err stat_node(struct dbx_catalogue *c, struct node *nd, const char *path,
			      struct dbx_cat_stat *st, struct dbx_error *err)
{
	char buf[RENDER_MAX];
	enum dbx_err rc;

	memset(st, 0, sizeof(*st));
	st->ino = path_ino(path);
	st->mtime = c->born;
	if (is_dir(nd->kind)) {
		st->type = DBX_CAT_DIR;
		st->mode = 0555;
		st->links = 1; /* find(1): do not count on subdirectories */
		return DBX_OK;
	}
	st->type = nd->kind == K_LINK ? DBX_CAT_LINK : DBX_CAT_FILE;
	st->mode = nd->kind == K_LINK ? 0777 : is_control(nd) ? 0200 : 0444;
	st->links = 1;
	rc = render(c, nd, buf, sizeof(buf), err);
	if (rc == DBX_OK)
		st->size = strlen(buf);
	return rc;
}

/* ---- public ---- */

enum dbx_err dbx_catalogue_stat(struct dbx_catalogue *c, const char *path, struct dbx_cat_stat *st,
				struct dbx_error *err)
{
	struct node *nd = malloc(sizeof(*nd));
	enum dbx_err rc;

	if (!nd)
		return no_mem(err);
	pthread_mutex_lock(&c->lock);
	rc = resolve(c, path, nd, err);
	if (rc == DBX_OK)
		rc = stat_node(c, nd, path, st, err);
	pthread_mutex_unlock(&c->lock);
	free(nd);
	return rc;
}

/* A child of a listed directory: its node and stat. */
static int fill_child(struct dbx_catalogue *c, const char *dir, const char *name,
		      dbx_cat_fill_fn fill, void *ctx)
{
	struct node *nd = malloc(sizeof(*nd));
	struct dbx_cat_stat st;
	struct dbx_error e = {0};
	char *path = NULL;
	int stop = 0;

	if (!nd || asprintf(&path, "%s/%s", dir, name) < 0) {
		free(nd);
		return 0;
	}
	if (resolve(c, path, nd, &e) == DBX_OK && stat_node(c, nd, path, &st, &e) == DBX_OK)
		stop = fill(ctx, name, &st);
	else
		stop = fill(ctx, name, NULL);
	free(path);
	free(nd);
	return stop;
}

/* Distinct values of field among the identities matching nd to depth. */
static void list_id_names(struct dbx_catalogue *c, const struct node *nd, size_t depth,
			  const char *dir, dbx_cat_fill_fn fill, void *ctx)
{
	for (size_t i = 0; i < c->n_ids; i++) {
		const struct cat_identity *id = &c->ids[i];
		const char *name = depth == 2 ? id->rg : id->name;
		bool seen = false;

		if (!id_matches(id, nd, depth))
			continue;
		for (size_t j = 0; j < i && !seen; j++) {
			if (id_matches(&c->ids[j], nd, depth))
				seen =
				    strcmp(depth == 2 ? c->ids[j].rg : c->ids[j].name, name) == 0;
		}
		if (!seen && fill_child(c, dir, name, fill, ctx))
			return;
	}
}

enum dbx_err dbx_catalogue_list(struct dbx_catalogue *c, const char *path, dbx_cat_fill_fn fill,
				void *ctx, struct dbx_error *err)
{
	struct node *nd = malloc(sizeof(*nd));
	struct dbx_dirlist subs = {0};
	char dir[1024];
	enum dbx_err rc;

	if (!nd)
		return no_mem(err);
	snprintf(dir, sizeof(dir), "%s", path);
	while (strlen(dir) > 1 && dir[strlen(dir) - 1] == '/')
		dir[strlen(dir) - 1] = '\0';
	pthread_mutex_lock(&c->lock);
	rc = resolve(c, dir, nd, err);
	if (rc != DBX_OK)
		goto out;
	switch (nd->kind) {
	case K_BYNAME:
		rc = load_subs(c, err);
		for (size_t i = 0; rc == DBX_OK && i < c->n_subs; i++) {
			if (fill_child(c, dir, c->subs[i].link, fill, ctx))
				break;
		}
		break;
	case K_VAULTS:
		rc = load_vaults(c, err);
		for (size_t i = 0; rc == DBX_OK && i < c->n_vaults; i++) {
			if (fill_child(c, dir, c->vaults[i].name, fill, ctx))
				break;
		}
		break;
	case K_VAULT:
		for (size_t i = 0; i < N_OF(vault_files); i++) {
			if (fill_child(c, dir, vault_files[i], fill, ctx))
				goto out;
		}
		(void)fill_child(c, dir, "keys", fill, ctx);
		break;
	case K_KEYS:
		rc = load_keys(c, nd->vault, err);
		if (rc == DBX_OK && nd->vault->rc != DBX_OK) {
			if (err)
				*err = nd->vault->err;
			rc = nd->vault->rc;
		}
		for (size_t i = 0; rc == DBX_OK && i < nd->vault->n; i++) {
			if (fill_child(c, dir, nd->vault->k[i].name, fill, ctx))
				break;
		}
		break;
	case K_KEY:
		if (!fill_child(c, dir, "new_version", fill, ctx))
			(void)fill_child(c, dir, "versions", fill, ctx);
		break;
	case K_VERSIONS:
		rc = load_versions(c, nd->vault, nd->key, err);
		for (size_t i = 0; rc == DBX_OK && i < nd->key->n; i++) {
			if (fill_child(c, dir, nd->key->v[i].name, fill, ctx))
				break;
		}
		break;
	case K_VERSION:
		for (size_t i = 0; i < N_OF(version_files); i++) {
			if (fill_child(c, dir, version_files[i], fill, ctx))
				break;
		}
		break;
	case K_IDS:
		rc = visible(c, &subs, err);
		for (size_t i = 0; rc == DBX_OK && i < subs.n; i++) {
			if (fill_child(c, dir, subs.v[i].name, fill, ctx))
				break;
		}
		dbx_dirlist_free(&subs);
		break;
	case K_ID_SUB:
	case K_ID_RG:
		rc = load_identities(c, err);
		if (rc == DBX_OK)
			list_id_names(c, nd, nd->kind == K_ID_SUB ? 2 : 3, dir, fill, ctx);
		break;
	case K_ID:
		for (size_t i = 0; i < N_OF(id_files); i++) {
			if (fill_child(c, dir, id_files[i], fill, ctx))
				break;
		}
		break;
	default:
		rc = dbx_error_set(err, DBX_EINVAL, "not a directory");
	}
out:
	pthread_mutex_unlock(&c->lock);
	free(nd);
	return rc;
}

enum dbx_err dbx_catalogue_read(struct dbx_catalogue *c, const char *path, char **buf, size_t *len,
				struct dbx_error *err)
{
	struct node *nd = malloc(sizeof(*nd));
	char out[RENDER_MAX];
	enum dbx_err rc;

	*buf = NULL;
	*len = 0;
	if (!nd)
		return no_mem(err);
	pthread_mutex_lock(&c->lock);
	rc = resolve(c, path, nd, err);
	if (rc == DBX_OK && is_control(nd))
		rc = dbx_error_set(err, DBX_EACCES, "%s is write-only", nd->comp[nd->n - 1]);
	if (rc == DBX_OK)
		rc = render(c, nd, out, sizeof(out), err);
	pthread_mutex_unlock(&c->lock);
	free(nd);
	if (rc != DBX_OK)
		return rc;
	*buf = strdup(out);
	if (!*buf)
		return no_mem(err);
	*len = strlen(out);
	return DBX_OK;
}

bool dbx_catalogue_writable(const char *path)
{
	const char *last = strrchr(path, '/');

	if (!last || strncmp(path, "/keyvaults/", 11) != 0)
		return false;
	return strcmp(last, "/new_key") == 0 || strcmp(last, "/new_version") == 0;
}

/* "NAME [SIZE]" or "[SIZE]" (want_name false) from a trimmed value. */
static enum dbx_err parse_create(const char *v, size_t len, bool want_name, char *name, size_t cap,
				 unsigned *bits, struct dbx_error *err)
{
	char buf[256], *tok, *save = NULL, *end;
	unsigned long n;

	*bits = DBX_CAT_DEFAULT_BITS;
	name[0] = '\0';
	if (len >= sizeof(buf))
		return dbx_error_set(err, DBX_EINVAL, "the value is too long");
	memcpy(buf, v, len);
	buf[len] = '\0';
	tok = strtok_r(buf, " \t", &save);
	if (want_name) {
		size_t nl = tok ? strlen(tok) : 0;

		if (nl == 0 || nl > DBX_KEY_NAME_MAX || nl >= cap ||
		    strspn(tok,
			   "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-") != nl)
			return dbx_error_set(err, DBX_EINVAL,
					     "write \"NAME [SIZE]\": NAME is 1-127 letters, digits "
					     "and dashes");
		memcpy(name, tok, nl + 1);
		tok = strtok_r(NULL, " \t", &save);
	}
	if (tok) {
		n = strtoul(tok, &end, 10);
		if (*end || (n != 2048 && n != 3072 && n != 4096))
			return dbx_error_set(err, DBX_EINVAL,
					     "SIZE is 2048, 3072 or 4096 bits (3072 suggested)");
		*bits = (unsigned)n;
		if (strtok_r(NULL, " \t", &save))
			return dbx_error_set(err, DBX_EINVAL, "too many words");
	}
	return DBX_OK;
}

enum dbx_err dbx_catalogue_write(struct dbx_catalogue *c, const char *path, const char *value,
				 size_t len, struct dbx_error *err)
{
	struct node *nd = malloc(sizeof(*nd));
	struct dbx_key_info info;
	char name[DBX_KEY_NAME_MAX + 1];
	const char *v;
	size_t vlen;
	unsigned bits;
	enum dbx_err rc;

	if (!nd)
		return no_mem(err);
	pthread_mutex_lock(&c->lock);
	rc = resolve(c, path, nd, err);
	if (rc == DBX_OK && !is_control(nd))
		rc = dbx_error_set(err, DBX_EACCES, "%s is read-only", nd->comp[nd->n - 1]);
	if (rc == DBX_OK)
		rc = dbx_value_trim(value, len, &v, &vlen, err);
	if (rc == DBX_OK)
		rc =
		    parse_create(v, vlen, nd->kind == K_VAULT_FILE, name, sizeof(name), &bits, err);
	if (rc != DBX_OK)
		goto out;
	if (nd->kind == K_VAULT_FILE) {
		/* A new key: Key Vault would make a new version of an existing one. */
		nd->vault->at = 0;
		rc = load_keys(c, nd->vault, err);
		for (size_t i = 0; rc == DBX_OK && nd->vault->rc == DBX_OK && i < nd->vault->n;
		     i++) {
			if (strcasecmp(nd->vault->k[i].name, name) == 0)
				rc = dbx_error_set(err, DBX_EEXIST,
						   "key '%s' exists in vault '%s'; write its "
						   "keys/%s/new_version for a new version",
						   nd->vault->k[i].name, nd->vault->name,
						   nd->vault->k[i].name);
		}
	} else {
		snprintf(name, sizeof(name), "%s", nd->key->name);
	}
	if (rc == DBX_OK)
		rc = dbx_keyvault_create_key(c->cfg.kv, nd->vault->name, name, bits, &info, err);
	if (rc == DBX_OK || rc == DBX_EREMOTE) {
		nd->vault->at = 0; /* the lists are stale now: read them again */
		if (nd->key)
			nd->key->at = 0;
	}
out:
	pthread_mutex_unlock(&c->lock);
	free(nd);
	return rc;
}
