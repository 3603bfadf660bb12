/*
 * keyvault.c: the Key Vault data plane (keys only), host <vault>.vault.azure.net.
 *
 *   GET /keys?api-version=V                      list keys
 *   GET /keys/NAME[/]?api-version=V              latest version (last in the world's array)
 *   GET /keys/NAME/VERSION?api-version=V         one version
 *   GET /keys/NAME/versions?api-version=V        list versions
 *   POST /keys/NAME/create?api-version=V         create a key, or a new version of it
 * Lists are paged: at most maxresults (1-25, default 25) items and the
 * world's page size per page, the rest behind a nextLink on the same host
 * that carries $skiptoken and maxresults, as Key Vault's do.
 * api-version 7.0 - 7.5 (and their previews). A request without a token gets
 * the 401 challenge the SDKs use to discover tenant and resource. Callers
 * need "get" (or "list" for lists) in the vault's access policies unless the
 * vault uses RBAC. A host naming no vault in the world is treated like a DNS
 * failure: the connection is dropped without a response.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "emu.h"

#define MAXSEG 8

struct kv_ctx {
	struct dbx_emu *e;
	struct json_object *vault;
	const char *tenant;
	const char *resource; /* https://vault.azure.net */
	const char *login;
	char base[300]; /* https://host */
};

__attribute__((format(printf, 5, 6))) static void kv_error(struct dbx_emu_reply *r,
							   unsigned int status, const char *code,
							   const char *inner, const char *fmt, ...)
{
	struct json_object *o = json_object_new_object(), *err = json_object_new_object();
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_object_object_add(err, "code", json_object_new_string(code));
	json_object_object_add(err, "message", json_object_new_string(msg));
	if (inner) {
		struct json_object *ie = json_object_new_object();

		json_object_object_add(ie, "code", json_object_new_string(inner));
		json_object_object_add(err, "innererror", ie);
	}
	json_object_object_add(o, "error", err);
	dbx_emu_reply_json(r, status, o);
}

static void challenge(struct dbx_emu_reply *r, const struct kv_ctx *k)
{
	dbx_emu_reply_header(r, "WWW-Authenticate",
			     "Bearer authorization=\"https://%s/%s\", resource=\"%s\"", k->login,
			     k->tenant, k->resource);
}

static bool aud_is(const char *aud, const char *want)
{
	size_t al = strlen(aud), wl = strlen(want);

	while (al && aud[al - 1] == '/')
		al--;
	return al == wl && !strncasecmp(aud, want, wl);
}

static bool kv_auth(struct dbx_emu *e, struct dbx_emu_req *q, struct dbx_emu_reply *r,
		    struct kv_ctx *k, const struct dbx_emu_token **out)
{
	const char *h = dbx_emu_header(q, "Authorization");
	const struct dbx_emu_token *t;

	if (!h || strncasecmp(h, "Bearer ", 7) || !h[7]) {
		kv_error(r, 401, "Unauthorized", NULL,
			 "AKV10000: Request is missing a Bearer or PoP token.");
		challenge(r, k);
		return false;
	}
	t = dbx_emu_token_find(e, h + 7);
	if (!t) {
		kv_error(r, 401, "Unauthorized", NULL,
			 "AKV10032: Invalid issuer. The token could not be validated.");
		challenge(r, k);
		return false;
	}
	if (!aud_is(t->aud, k->resource)) {
		kv_error(r, 401, "Unauthorized", NULL,
			 "AKV10022: Invalid audience. Expected %s, found: %s.", k->resource,
			 t->aud);
		challenge(r, k);
		return false;
	}
	if (t->exp <= time(NULL)) {
		kv_error(r, 401, "Unauthorized", NULL, "AKV10020: Token is expired.");
		challenge(r, k);
		return false;
	}
	if (strcasecmp(t->tenant, k->tenant)) {
		char want[128];

		snprintf(want, sizeof(want), "https://sts.windows.net/%s/", k->tenant);
		kv_error(r, 401, "Unauthorized", NULL,
			 "AKV10032: Invalid issuer. Expected one of %s, found %s.", want,
			 t->tenant);
		challenge(r, k);
		return false;
	}
	*out = t;
	return true;
}

/* Does the caller hold permission perm on keys (access policies, or RBAC)? */
static bool kv_allowed(struct kv_ctx *k, const struct dbx_emu_token *t, const char *perm)
{
	struct json_object *props = dbx_emu_jpath(k->vault, "properties"), *rbac, *pols;
	size_t i, j;

	if (json_object_object_get_ex(props, "enableRbacAuthorization", &rbac) &&
	    json_object_get_boolean(rbac))
		return true;
	pols = dbx_emu_jarray(props, "accessPolicies");
	if (!pols)
		return false;
	for (i = 0; i < json_object_array_length(pols); i++) {
		struct json_object *p = json_object_array_get_idx(pols, i);
		struct json_object *keys = dbx_emu_jpath(p, "permissions.keys");

		if (!json_object_is_type(keys, json_type_array))
			keys = NULL;
		const char *oid = dbx_emu_jstr(p, "objectId");

		if (!oid || strcasecmp(oid, t->oid) || !keys)
			continue;
		for (j = 0; j < json_object_array_length(keys); j++) {
			const char *s = json_object_get_string(json_object_array_get_idx(keys, j));

			if (s && (!strcasecmp(s, perm) || !strcasecmp(s, "all")))
				return true;
		}
	}
	return false;
}

static void forbidden(struct dbx_emu_reply *r, struct kv_ctx *k, const struct dbx_emu_token *t,
		      const char *perm)
{
	char who[300], what[300];
	const char *loc = dbx_emu_jstr(k->vault, "location");

	snprintf(who, sizeof(who), "appid=%s;oid=%s;iss=https://sts.windows.net/%s/", t->client,
		 t->oid, t->tenant);
	snprintf(what, sizeof(what), "keys %s permission on key vault '%s;location=%s'", perm,
		 dbx_emu_jstr(k->vault, "name"), loc ? loc : "westus");
	kv_error(r, 403, "Forbidden", "AccessDenied",
		 "The user, group or application '%s' does not have %s. For help resolving this "
		 "issue, please see https://go.microsoft.com/fwlink/?linkid=2125287",
		 who, what);
}

static bool version_ok(const char *v)
{
	return v && v[0] == '7' && v[1] == '.' && v[2] >= '0' && v[2] <= '5' &&
	       (v[3] == '\0' || !strncmp(v + 3, "-preview", 8));
}

static const char *recovery_level(struct json_object *vault, int *days)
{
	struct json_object *props = dbx_emu_jpath(vault, "properties"), *o;
	bool soft = true, purge = false;

	/* enableSoftDelete defaults to true; enablePurgeProtection absent = false */
	if (json_object_object_get_ex(props, "enableSoftDelete", &o) && o)
		soft = json_object_get_boolean(o);
	if (json_object_object_get_ex(props, "enablePurgeProtection", &o) && o)
		purge = json_object_get_boolean(o);
	*days = 0;
	if (soft) {
		*days = 90;
		if (json_object_object_get_ex(props, "softDeleteRetentionInDays", &o) && o)
			*days = json_object_get_int(o);
	}
	if (soft && purge)
		return "Recoverable";
	if (soft)
		return "Recoverable+Purgeable";
	return "Purgeable";
}

static struct json_object *attributes(struct kv_ctx *k, struct json_object *ver)
{
	struct json_object *a = json_object_new_object(), *o;
	const char *names[] = {"nbf", "exp"};
	long long created = 1700000000, updated;
	int days;
	const char *level = recovery_level(k->vault, &days);
	size_t i;

	bool enabled = true;

	if (json_object_object_get_ex(ver, "enabled", &o) && o)
		enabled = json_object_get_boolean(o);
	json_object_object_add(a, "enabled", json_object_new_boolean(enabled));
	for (i = 0; i < 2; i++)
		if (json_object_object_get_ex(ver, names[i], &o) && o)
			json_object_object_add(a, names[i],
					       json_object_new_int64(json_object_get_int64(o)));
	if (json_object_object_get_ex(ver, "created", &o) && o)
		created = json_object_get_int64(o);
	updated = created;
	if (json_object_object_get_ex(ver, "updated", &o) && o)
		updated = json_object_get_int64(o);
	json_object_object_add(a, "created", json_object_new_int64(created));
	json_object_object_add(a, "updated", json_object_new_int64(updated));
	if (days)
		json_object_object_add(a, "recoverableDays", json_object_new_int(days));
	json_object_object_add(a, "recoveryLevel", json_object_new_string(level));
	return a;
}

static struct json_object *key_ops(const char *kty, struct json_object *ver)
{
	struct json_object *ops;

	if (json_object_object_get_ex(ver, "key_ops", &ops))
		return json_object_get(ops);
	ops = json_object_new_array();
	if (!strncmp(kty, "EC", 2)) {
		json_object_array_add(ops, json_object_new_string("sign"));
		json_object_array_add(ops, json_object_new_string("verify"));
		return ops;
	}
	if (!strncmp(kty, "RSA", 3)) {
		json_object_array_add(ops, json_object_new_string("encrypt"));
		json_object_array_add(ops, json_object_new_string("decrypt"));
		json_object_array_add(ops, json_object_new_string("sign"));
		json_object_array_add(ops, json_object_new_string("verify"));
	}
	json_object_array_add(ops, json_object_new_string("wrapKey"));
	json_object_array_add(ops, json_object_new_string("unwrapKey"));
	return ops;
}

static void key_bundle(struct kv_ctx *k, struct dbx_emu_reply *r, const char *kname,
		       struct json_object *key, struct json_object *ver)
{
	struct json_object *o = json_object_new_object(), *jwk = json_object_new_object(), *tags;
	const char *kty = dbx_emu_jstr(ver, "kty") ? dbx_emu_jstr(ver, "kty") : "RSA";
	const char *fields[] = {"n", "e", "crv", "x", "y"};
	char kid[600];
	size_t i;

	snprintf(kid, sizeof(kid), "%s/keys/%s/%s", k->base, kname, dbx_emu_jstr(ver, "version"));
	json_object_object_add(jwk, "kid", json_object_new_string(kid));
	json_object_object_add(jwk, "kty", json_object_new_string(kty));
	json_object_object_add(jwk, "key_ops", key_ops(kty, ver));
	for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		if (dbx_emu_jstr(ver, fields[i]))
			json_object_object_add(
			    jwk, fields[i], json_object_new_string(dbx_emu_jstr(ver, fields[i])));
	json_object_object_add(o, "key", jwk);
	json_object_object_add(o, "attributes", attributes(k, ver));
	if (json_object_object_get_ex(ver, "tags", &tags) ||
	    json_object_object_get_ex(key, "tags", &tags))
		json_object_object_add(o, "tags", json_object_get(tags));
	else
		json_object_object_add(o, "tags", json_object_new_object());
	dbx_emu_reply_json(r, 200, o);
}

static struct json_object *find_key(struct kv_ctx *k, const char *name)
{
	struct json_object *keys;
	size_t i;

	keys = dbx_emu_jarray(k->vault, "keys");
	if (!keys)
		return NULL;
	for (i = 0; i < json_object_array_length(keys); i++) {
		struct json_object *key = json_object_array_get_idx(keys, i);
		const char *n = dbx_emu_jstr(key, "name");

		if (n && !strcasecmp(n, name))
			return key;
	}
	return NULL;
}

static void key_not_found(struct dbx_emu_reply *r, struct kv_ctx *k, const char *name)
{
	kv_error(r, 404, "KeyNotFound", NULL,
		 "A key with (name/id) %s was not found in this key vault. If you recently "
		 "deleted this key you may be able to recover it using the correct recovery "
		 "command. For help resolving this issue, please see "
		 "https://go.microsoft.com/fwlink/?linkid=2125182",
		 name);
}

/*
 * Page the list items (all of them, in order) by $skiptoken and
 * maxresults into the reply: {"value": [...], "nextLink": URL or null}.
 * what is the list's path ("/keys" or "/keys/NAME/versions").
 */
static void reply_page(struct kv_ctx *k, struct dbx_emu_req *q, struct dbx_emu_reply *r,
		       struct json_object *items, const char *what)
{
	struct json_object *out = json_object_new_object(), *val = json_object_new_array();
	const char *skip = dbx_emu_arg(q, "$skiptoken"), *mr = dbx_emu_arg(q, "maxresults");
	const char *v = dbx_emu_arg(q, "api-version");
	size_t n = json_object_array_length(items), off = 0, ps = 25, i;
	char *end = NULL;

	if (mr && *mr) {
		long m = strtol(mr, &end, 10);

		if (*end || m < 1 || m > 25) {
			json_object_put(out);
			json_object_put(val);
			json_object_put(items);
			kv_error(r, 400, "BadParameter", NULL,
				 "The value of maxresults must be between 1 and 25.");
			return;
		}
		ps = (size_t)m;
	}
	if ((size_t)dbx_emu_world_page_size(k->e) < ps)
		ps = (size_t)dbx_emu_world_page_size(k->e);
	if (skip && *skip) {
		unsigned long o = strtoul(skip, &end, 16);

		if (*end || o > n) {
			json_object_put(out);
			json_object_put(val);
			json_object_put(items);
			kv_error(r, 400, "BadParameter", NULL, "The skiptoken is not valid.");
			return;
		}
		off = (size_t)o;
	}
	for (i = off; i < n && i < off + ps; i++)
		json_object_array_add(val, json_object_get(json_object_array_get_idx(items, i)));
	json_object_object_add(out, "value", val);
	if (off + ps < n) {
		char link[700];

		snprintf(link, sizeof(link),
			 "%s:443%s?api-version=%s&$skiptoken=%zx&maxresults=%zu", k->base, what,
			 v ? v : "7.4", off + ps, ps);
		json_object_object_add(out, "nextLink", json_object_new_string(link));
	} else {
		json_object_object_add(out, "nextLink", NULL);
	}
	json_object_put(items);
	dbx_emu_reply_json(r, 200, out);
}

static void list_versions(struct kv_ctx *k, struct dbx_emu_req *q, struct dbx_emu_reply *r,
			  const char *kname, struct json_object *key)
{
	struct json_object *val = json_object_new_array();
	char what[300];
	struct json_object *vers;
	size_t i;

	vers = dbx_emu_jarray(key, "versions");
	if (vers) {
		for (i = 0; i < json_object_array_length(vers); i++) {
			struct json_object *ver = json_object_array_get_idx(vers, i);
			struct json_object *item = json_object_new_object();
			char kid[600];

			snprintf(kid, sizeof(kid), "%s/keys/%s/%s", k->base, kname,
				 dbx_emu_jstr(ver, "version"));
			json_object_object_add(item, "kid", json_object_new_string(kid));
			json_object_object_add(item, "attributes", attributes(k, ver));
			json_object_object_add(item, "tags", json_object_new_object());
			json_object_array_add(val, item);
		}
	}
	snprintf(what, sizeof(what), "/keys/%s/versions", kname);
	reply_page(k, q, r, val, what);
}

static void list_keys(struct kv_ctx *k, struct dbx_emu_req *q, struct dbx_emu_reply *r)
{
	struct json_object *val = json_object_new_array();
	struct json_object *keys;
	size_t i;

	keys = dbx_emu_jarray(k->vault, "keys");
	if (keys) {
		for (i = 0; i < json_object_array_length(keys); i++) {
			struct json_object *key = json_object_array_get_idx(keys, i), *vers;
			struct json_object *item;
			size_t nv;
			char kid[600];

			vers = dbx_emu_jarray(key, "versions");
			nv = vers ? json_object_array_length(vers) : 0;
			if (!nv)
				continue;
			item = json_object_new_object();
			snprintf(kid, sizeof(kid), "%s/keys/%s", k->base,
				 dbx_emu_jstr(key, "name"));
			json_object_object_add(item, "kid", json_object_new_string(kid));
			json_object_object_add(
			    item, "attributes",
			    attributes(k, json_object_array_get_idx(vers, nv - 1)));
			json_object_object_add(item, "tags", json_object_new_object());
			json_object_array_add(val, item);
		}
	}
	reply_page(k, q, r, val, "/keys");
}

static void keys_route(struct dbx_emu_req *q, struct dbx_emu_reply *r, struct kv_ctx *k,
		       const struct dbx_emu_token *t, char **seg, int nseg)
{
	struct json_object *key, *vers, *ver = NULL;
	const char *want;
	size_t i, nv;

	if (nseg == 1) {
		if (!kv_allowed(k, t, "list"))
			forbidden(r, k, t, "list");
		else
			list_keys(k, q, r);
		return;
	}
	if (nseg > 3) {
		kv_error(r, 404, "NotFound", NULL, "The requested resource %s was not found.",
			 q->path);
		return;
	}
	if (nseg == 3 && !strcmp(seg[2], "versions")) {
		if (!kv_allowed(k, t, "list")) {
			forbidden(r, k, t, "list");
			return;
		}
		key = find_key(k, seg[1]);
		if (!key)
			key_not_found(r, k, seg[1]);
		else
			list_versions(k, q, r, dbx_emu_jstr(key, "name"), key);
		return;
	}
	if (!kv_allowed(k, t, "get")) {
		forbidden(r, k, t, "get");
		return;
	}
	key = find_key(k, seg[1]);
	vers = key ? dbx_emu_jarray(key, "versions") : NULL;
	nv = vers ? json_object_array_length(vers) : 0;
	if (!nv) {
		key_not_found(r, k, seg[1]);
		return;
	}
	want = nseg == 3 ? seg[2] : NULL;
	if (!want) {
		ver = json_object_array_get_idx(vers, nv - 1);
	} else {
		for (i = 0; i < nv; i++) {
			struct json_object *v = json_object_array_get_idx(vers, i);
			const char *vs = dbx_emu_jstr(v, "version");

			if (vs && !strcasecmp(vs, want))
				ver = v;
		}
	}
	if (!ver) {
		char full[300];

		snprintf(full, sizeof(full), "%s/%s", seg[1], want);
		key_not_found(r, k, full);
		return;
	}
	if (dbx_emu_key_material(k->e, dbx_emu_jstr(k->vault, "name"), dbx_emu_jstr(key, "name"),
				 ver)) {
		kv_error(r, 500, "InternalError", NULL, "Cannot make key material for %s.", seg[1]);
		return;
	}
	key_bundle(k, r, dbx_emu_jstr(key, "name"), key, ver);
}

/*
 * POST /keys/NAME/create: a new key, or a new version of the key NAME
 * (Key Vault's Create Key does both). Body {"kty", "key_size", "key_ops"};
 * RSA and RSA-HSM of 2048, 3072 or 4096 bits and EC are made, each needs
 * "create" on keys.
 */
static void create_key(struct kv_ctx *k, struct dbx_emu_req *q, struct dbx_emu_reply *r,
		       const struct dbx_emu_token *t, const char *name)
{
	struct json_object *body = NULL, *o, *key, *ver, *keys;
	const char *kty;
	int size = 0;
	size_t n = strlen(name);
	char hex[33];

	if (!kv_allowed(k, t, "create")) {
		forbidden(r, k, t, "create");
		return;
	}
	if (n == 0 || n > 127 ||
	    strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-") != n) {
		kv_error(r, 400, "BadParameter", NULL,
			 "The request URI contains an invalid name: %s. Follow this link for more "
			 "information on appropriate naming conventions: "
			 "https://aka.ms/KeyVaultNaming",
			 name);
		return;
	}
	if (q->body_len)
		body = json_tokener_parse(q->body);
	kty = dbx_emu_jstr(body, "kty");
	if (!body || !kty || (strcmp(kty, "RSA") && strcmp(kty, "RSA-HSM") && strcmp(kty, "EC"))) {
		json_object_put(body);
		kv_error(r, 400, "BadParameter", NULL, "Property has invalid value: kty.");
		return;
	}
	if (json_object_object_get_ex(body, "key_size", &o) && o)
		size = json_object_get_int(o);
	if (!strncmp(kty, "RSA", 3) && size == 0)
		size = 2048;
	if (!strncmp(kty, "RSA", 3) && size != 2048 && size != 3072 && size != 4096) {
		json_object_put(body);
		kv_error(r, 400, "BadParameter", NULL, "Unsupported key size: %d.", size);
		return;
	}
	if (!strcmp(kty, "EC"))
		size = 256;
	keys = dbx_emu_jarray(k->vault, "keys");
	if (!keys) {
		keys = json_object_new_array();
		json_object_object_add(k->vault, "keys", keys);
	}
	key = find_key(k, name);
	if (!key) {
		key = json_object_new_object();
		json_object_object_add(key, "name", json_object_new_string(name));
		json_object_object_add(key, "tags", json_object_new_object());
		json_object_object_add(key, "versions", json_object_new_array());
		json_object_array_add(keys, key);
	}
	ver = json_object_new_object();
	dbx_emu_rand_hex(hex, 16);
	json_object_object_add(ver, "version", json_object_new_string(hex));
	json_object_object_add(ver, "kty", json_object_new_string(kty));
	json_object_object_add(ver, "key_size", json_object_new_int(size));
	json_object_object_add(ver, "enabled", json_object_new_boolean(true));
	json_object_object_add(ver, "created", json_object_new_int64((long long)time(NULL)));
	json_object_object_add(ver, "updated", json_object_new_int64((long long)time(NULL)));
	if (json_object_object_get_ex(body, "key_ops", &o) &&
	    json_object_is_type(o, json_type_array))
		json_object_object_add(ver, "key_ops", json_object_get(o));
	json_object_put(body);
	json_object_array_add(dbx_emu_jarray(key, "versions"), ver);
	if (dbx_emu_key_material(k->e, dbx_emu_jstr(k->vault, "name"), name, ver)) {
		kv_error(r, 500, "InternalError", NULL, "Cannot make key material for %s.", name);
		return;
	}
	key_bundle(k, r, name, key, ver);
}

void dbx_emu_kv_handle(struct dbx_emu *e, struct dbx_emu_req *q, struct dbx_emu_reply *r)
{
	struct kv_ctx k = {0};
	const struct dbx_emu_token *t = NULL;
	const char *v;
	char *buf = NULL, *seg[MAXSEG];
	int nseg;

	k.e = e;
	k.vault = dbx_emu_find_vault_by_host(e, q->host);
	if (!k.vault) {
		r->drop = true;
		return;
	}
	k.tenant = dbx_emu_jstr(dbx_emu_jpath(k.vault, "properties"), "tenantId");
	if (!k.tenant)
		k.tenant = "common";
	if (strstr(q->host, ".vault.usgovcloudapi.net")) {
		k.resource = "https://vault.usgovcloudapi.net";
		k.login = "login.microsoftonline.us";
	} else if (strstr(q->host, ".vault.azure.cn")) {
		k.resource = "https://vault.azure.cn";
		k.login = "login.chinacloudapi.cn";
	} else {
		k.resource = "https://vault.azure.net";
		k.login = "login.microsoftonline.com";
	}
	snprintf(k.base, sizeof(k.base), "https://%s", q->host); /* kid never has a port */
	dbx_emu_reply_header(r, "x-ms-keyvault-service-version", "1.9.1216.1");
	dbx_emu_reply_header(r, "x-ms-keyvault-region", "%s",
			     dbx_emu_jstr(k.vault, "location") ? dbx_emu_jstr(k.vault, "location")
							       : "westus");
	dbx_emu_reply_header(r, "x-ms-keyvault-network-info",
			     "conn_type=Ipv4;addr=127.0.0.1;act_addr_fam=InterNetwork;");

	if (!kv_auth(e, q, r, &k, &t))
		return;
	v = dbx_emu_arg(q, "api-version");
	if (!v || !*v) {
		kv_error(r, 400, "BadParameter", NULL,
			 "The request URI contains an invalid or missing api-version query "
			 "parameter.");
		return;
	}
	if (!version_ok(v)) {
		kv_error(r, 400, "BadParameter", NULL,
			 "The specified version (%s) is not recognized. Consider using the latest "
			 "supported version (7.5).",
			 v);
		return;
	}
	buf = strdup(q->path);
	if (!buf) {
		dbx_emu_reply_error(r, 500, "InternalError", "Out of memory.");
		return;
	}
	nseg = dbx_emu_split_path(buf, seg, MAXSEG);
	if (nseg == 3 && !strcmp(seg[0], "keys") && !strcmp(seg[2], "create") &&
	    !strcmp(q->method, "POST")) {
		create_key(&k, q, r, t, seg[1]);
	} else if (nseg >= 1 && !strcmp(seg[0], "keys")) {
		if (strcmp(q->method, "GET"))
			kv_error(r, 405, "BadParameter", NULL,
				 "The method %s is not supported by the emulator on %s.", q->method,
				 q->path);
		else
			keys_route(q, r, &k, t, seg, nseg);
	} else {
		kv_error(r, 404, "NotFound", NULL, "The requested resource %s was not found.",
			 q->path);
	}
	free(buf);
}
