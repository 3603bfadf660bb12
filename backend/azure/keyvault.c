/*
 * keyvault.c: the preflight of a customer-managed-key write (keyvault.h).
 *
 * Before the mount PATCHes a key into an order it asks ARM and Key Vault
 * what the Data Box service will ask them, and fails with the service's own
 * Ssem code. What ARM knows (the vault found by name, its soft delete,
 * purge protection, permission model and access policies, a user-assigned
 * identity's principal) is looked up by arm.c (arm.h), on its one GET and
 * paging loop; this file holds the Key Vault data plane (the key's
 * KeyBundle: enabled, nbf, exp, kty and the modulus n, whose bit length is
 * counted straight from the base64url text) and every decision: which
 * answer is which Ssem code, which 403 skips a check, what the access
 * policies must grant.
 *
 * One deadline bounds each public call, ARM lookups included (on the
 * arm's clock). Key Vault requests are idempotent GETs with the vault
 * scope. A 403 on the vault or on the key skips the checks it would have
 * fed and says so in the preflight notes; every other failure (401, 5xx,
 * throttling, transport) propagates with its own enum dbx_err. Responses
 * are parsed strictly: every KeyBundle field read has one accepted type
 * (docs/azure.md, "Key Vault"), and a wrong type, a missing required field
 * or a body the strict parse refuses is DBX_EREMOTE "malformed Key Vault
 * key response: " naming the field, never a crash or a default.
 *
 * The whole preflight runs its independent lookups at once: a
 * user-assigned identity's principal on a thread of its own while the
 * calling thread finds the vault, and, once ARM has named the vault (no
 * request goes to a vault host ARM does not know), the key GET on another
 * while the vault's properties are read; the findings are then judged
 * in the fixed order of the checks, so the outcome and the Ssem code are
 * those of the one-by-one order whatever finishes first (the transport is
 * thread-safe).
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <limits.h>

#include <json-c/json.h>

#include "databoxfs/keyvault.h"
#include "databoxfs/arm.h"
#include "core/json_util.h"

#define API_KEYVAULT "7.4" /* the Key Vault data plane; ARM's versions live in arm.c */

#define SSEM_VAULT_NOT_FOUND "SsemUserErrorKeyVaultDetailsNotFound"
#define SSEM_SOFT_DELETE     "SsemUserErrorSoftDeleteAndPurgeProtectionNotEnabled"
#define SSEM_KEY_NOT_FOUND   "SsemUserErrorKeyDetailsNotFound"
#define SSEM_KEY_DISABLED    "SsemUserErrorEncryptionKeyDisabled"
#define SSEM_KEY_EXPIRED     "SsemUserErrorEncryptionKeyExpired"
#define SSEM_KEY_TYPE	     "SsemUserErrorEncryptionKeyTypeNotSupported"
#define SSEM_ACCESS	     "SsemUserErrorKeyVaultBadRequestException"
#define SSEM_UAI_NOT_FOUND   "SsemUserErrorKekUserIdentityNotFound"
#define SSEM_BAD_URL	     "SsemUserErrorInvalidKeyVaultUrl"
#define SSEM_BAD_HOST	     "SsemUserErrorKeyVaultUrlInvalidHost"

#define NOTE_VAULT_403                                                                             \
	"vault properties not readable with the mount's credential (403); soft delete and purge "  \
	"protection not checked."

struct dbx_keyvault {
	struct dbx_arm *arm;		 /* not owned: the ARM lookups, its cloud and clock */
	struct dbx_transport *transport; /* not owned: the Key Vault data plane */
	const struct dbx_cloud *cloud;	 /* the arm's */
	const struct dbx_clock *clock;	 /* the arm's: one clock for shared deadlines */
	uint64_t timeout_ms;
	bool sequential; /* dbx_keyvault_set_concurrent(kv, false): lookups one by one */
};

/* The key permissions Data Box needs. */
#define PERM_NEEDED (DBX_ARM_KEY_GET | DBX_ARM_KEY_WRAP | DBX_ARM_KEY_UNWRAP)

struct dbx_keyvault *dbx_keyvault_new(struct dbx_arm *arm, struct dbx_transport *transport,
				      uint64_t timeout_ms)
{
	struct dbx_keyvault *kv;

	if (!arm || !transport)
		return NULL;
	kv = calloc(1, sizeof(*kv));
	if (!kv)
		return NULL;
	kv->arm = arm;
	kv->transport = transport;
	kv->cloud = dbx_arm_cloud(arm);
	kv->clock = dbx_arm_clock(arm);
	kv->timeout_ms = timeout_ms;
	return kv;
}

void dbx_keyvault_free(struct dbx_keyvault *kv)
{
	free(kv);
}

void dbx_keyvault_set_concurrent(struct dbx_keyvault *kv, bool on)
{
	if (kv)
		kv->sequential = !on;
}

/* ---- errors ---- */

/*
 * Fill err with a user error the service would answer with code (err->err
 * DBX_EINVAL), for the answer with status and request_id (0 and NULL when
 * the check needed none; request_id may point into err).
 */
static enum dbx_err __attribute__((format(printf, 5, 6)))
ssem_error(struct dbx_error *err, const char *code, long status, const char *request_id,
	   const char *fmt, ...)
{
	char msg[DBX_ERR_MSG_MAX], rid[DBX_ERR_ID_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!err)
		return DBX_EINVAL;
	snprintf(rid, sizeof(rid), "%s", request_id ? request_id : "");
	dbx_error_clear(err);
	dbx_error_set(err, DBX_EINVAL, "%s", msg);
	snprintf(err->code, sizeof(err->code), "%s", code);
	err->http_status = status;
	snprintf(err->request_id, sizeof(err->request_id), "%s", rid);
	return DBX_EINVAL;
}

/* A response that is not the JSON we expect; why (may be NULL) names the field. */
static enum dbx_err malformed(struct dbx_error *err, const struct dbx_http_response *resp,
			      const char *what, const char *why)
{
	dbx_error_clear(err);
	dbx_error_set(err, DBX_EREMOTE, "malformed %s response%s%s", what, why && *why ? ": " : "",
		      why ? why : "");
	if (err && resp) {
		err->http_status = resp->status;
		if (resp->request_id)
			snprintf(err->request_id, sizeof(err->request_id), "%s", resp->request_id);
	}
	return DBX_EREMOTE;
}

/* A non-2xx answer that is not a check's outcome: the service's own error, with context. */
static enum dbx_err response_error(const struct dbx_http_response *resp, const char *what,
				   struct dbx_error *err)
{
	struct dbx_error e;
	enum dbx_err rc;

	dbx_error_clear(&e);
	rc = dbx_arm_error_from_response(resp, &e);
	if (rc == DBX_OK)
		rc = DBX_EREMOTE;
	e.err = rc;
	if (e.http_status == 0)
		e.http_status = resp->status;
	if (err) {
		*err = e;
		snprintf(err->message, sizeof(err->message), "%s: HTTP %ld%s%.900s", what,
			 resp->status, e.message[0] ? ": " : "", e.message);
	}
	return rc;
}

static enum dbx_err no_memory(struct dbx_error *err)
{
	dbx_error_clear(err);
	return dbx_error_set(err, DBX_ENOMEM, "out of memory");
}

/* ---- requests ---- */

static uint64_t deadline_of(const struct dbx_keyvault *kv)
{
	if (kv->timeout_ms == 0)
		return 0;
	return dbx_clock_now_ms(kv->clock) + kv->timeout_ms;
}

/* GET url from Key Vault. DBX_OK when any HTTP response arrived (resp filled). */
static enum dbx_err vault_get(struct dbx_keyvault *kv, const char *url, uint64_t deadline,
			      struct dbx_http_response *resp, struct dbx_error *err)
{
	struct dbx_http_request req = {
	    .method = "GET",
	    .url = url,
	    .scope = kv->cloud->vault_scope,
	    .deadline_ms = deadline,
	    .idempotent = true,
	};
	enum dbx_err rc;

	dbx_http_response_reset(resp);
	if (deadline && dbx_clock_now_ms(kv->clock) >= deadline) {
		dbx_error_clear(err);
		return dbx_error_set(err, DBX_ETIMEDOUT,
				     "Key Vault preflight did not finish within the timeout");
	}
	rc = dbx_http_send(kv->transport, &req, resp, err);
	if (rc != DBX_OK)
		dbx_http_response_reset(resp);
	return rc;
}

static bool is_2xx(const struct dbx_http_response *resp)
{
	return resp->status >= 200 && resp->status < 300;
}

static bool copy_str(char *dst, size_t cap, const char *src)
{
	size_t n = strlen(src);

	if (n >= cap)
		return false;
	memcpy(dst, src, n + 1);
	return true;
}

/* ---- the vault ---- */

static bool vault_name_ok(const char *name)
{
	size_t n = name ? strlen(name) : 0;

	if (n == 0 || n > DBX_VAULT_NAME_MAX)
		return false;
	return strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-") == n;
}

/*
 * Read the vault out->id names (called name in messages) through ARM into
 * out and *props. *readable is false after a 403 (out keeps its defaults,
 * policies_known stays false); a 404 is SsemUserErrorKeyVaultDetailsNotFound.
 * *props is the caller's to clear, whatever the outcome.
 */
static enum dbx_err read_vault(struct dbx_keyvault *kv, uint64_t deadline, const char *name,
			       struct dbx_vault_info *out, bool *readable,
			       struct dbx_arm_vault *props, struct dbx_error *err)
{
	enum dbx_err rc;

	*readable = false;
	rc = dbx_arm_get_vault(kv->arm, out->id, deadline, props, err);
	if (rc == DBX_EACCES && err && err->http_status == 403) {
		dbx_error_clear(err);
		return DBX_OK;
	}
	if (rc == DBX_ENOTFOUND)
		return ssem_error(err, SSEM_VAULT_NOT_FOUND, 404, err ? err->request_id : NULL,
				  "key vault '%s' (%s) no longer exists", name, out->id);
	if (rc != DBX_OK)
		return rc;
	out->soft_delete = props->soft_delete;
	out->purge_protection = props->purge_protection;
	out->rbac = props->rbac;
	snprintf(out->tenant_id, sizeof(out->tenant_id), "%s", props->tenant_id);
	out->policies_known = true;
	*readable = true;
	return DBX_OK;
}

/*
 * The first half of find_vault: the vault's ARM ID into out->id (a search
 * by name through ARM), out reset to the service defaults.
 */
static enum dbx_err locate_vault(struct dbx_keyvault *kv, const char *subscription,
				 const char *name, uint64_t deadline, struct dbx_vault_info *out,
				 struct dbx_error *err)
{
	bool found = false, denied = false;
	enum dbx_err rc;

	memset(out, 0, sizeof(*out));
	if (!vault_name_ok(name))
		return ssem_error(err, SSEM_BAD_URL, 0, NULL, "invalid key vault name '%s'",
				  name ? name : "");
	rc = dbx_arm_find_vault(kv->arm, subscription, name, deadline, out->id, sizeof(out->id),
				&found, &denied, err);
	if (rc != DBX_OK)
		return rc;
	if (!found)
		return ssem_error(err, SSEM_VAULT_NOT_FOUND, 0, NULL,
				  "key vault '%s' was not found in any subscription the mount's "
				  "credential can read%s",
				  name,
				  denied ? " (some subscriptions refused the search: 403)" : "");
	out->soft_delete = true; /* the service defaults, kept when the vault is not readable */
	return DBX_OK;
}

/* dbx_keyvault_find_vault under the caller's deadline; *readable and *props as read_vault. */
static enum dbx_err find_vault(struct dbx_keyvault *kv, const char *subscription, const char *name,
			       uint64_t deadline, struct dbx_vault_info *out, bool *readable,
			       struct dbx_arm_vault *props, struct dbx_error *err)
{
	enum dbx_err rc;

	*readable = false;
	rc = locate_vault(kv, subscription, name, deadline, out, err);
	if (rc != DBX_OK)
		return rc;
	return read_vault(kv, deadline, name, out, readable, props, err);
}

/*
 * Public: when the vault's properties are not readable (403), DBX_OK with
 * policies_known false, soft_delete true and purge_protection false: the
 * properties are then unknown, not established.
 */
enum dbx_err dbx_keyvault_find_vault(struct dbx_keyvault *kv, const char *subscription,
				     const char *name, struct dbx_vault_info *out,
				     struct dbx_error *err)
{
	struct dbx_arm_vault props = {0};
	bool readable;
	enum dbx_err rc;

	dbx_error_clear(err);
	rc = find_vault(kv, subscription, name, deadline_of(kv), out, &readable, &props, err);
	dbx_arm_vault_clear(&props);
	return rc;
}

/* ---- access policies ---- */

/*
 * Check object_id's key permissions in the vault's access policies. Only
 * a policy for object_id on its own counts (one with an applicationId is a
 * compound identity and does not apply to a managed identity).
 */
static enum dbx_err check_policies(const struct dbx_arm_vault *props,
				   const struct dbx_vault_info *vault, const char *object_id,
				   struct dbx_error *err)
{
	unsigned perms = 0, missing;
	char list[64] = "";

	if (!props->policies_ok)
		return malformed(err, NULL, "ARM key vault",
				 "an access policy is not of the documented shape");
	for (size_t i = 0; i < props->n_policies; i++) {
		const struct dbx_arm_access_policy *pol = &props->policies[i];

		if (pol->object_id && strcasecmp(pol->object_id, object_id) == 0 &&
		    !pol->application)
			perms |= pol->key_perms;
	}
	missing = PERM_NEEDED & ~perms;
	if (missing == 0)
		return DBX_OK;
	if (missing & DBX_ARM_KEY_GET)
		strcat(list, "get");
	if (missing & DBX_ARM_KEY_WRAP)
		strcat(list, list[0] ? ", wrapKey" : "wrapKey");
	if (missing & DBX_ARM_KEY_UNWRAP)
		strcat(list, list[0] ? ", unwrapKey" : "unwrapKey");
	return ssem_error(err, SSEM_ACCESS, 0, NULL,
			  "the access policies of key vault %s do not give identity %s the key "
			  "permission(s) %s; Data Box needs get, wrapKey and unwrapKey",
			  vault->id, object_id, list);
}

/*
 * Public: reads the vault's policies afresh (one ARM GET). Nothing to check,
 * DBX_OK without a request, when the vault uses RBAC or its policies could
 * not be read; a 403 now is also DBX_OK: the service decides.
 */
enum dbx_err dbx_keyvault_check_access(struct dbx_keyvault *kv, const struct dbx_vault_info *vault,
				       const char *object_id, struct dbx_error *err)
{
	struct dbx_vault_info fresh;
	struct dbx_arm_vault props = {0};
	const char *name;
	bool readable = false;
	enum dbx_err rc = DBX_OK;

	dbx_error_clear(err);
	if (!vault || !object_id || !object_id[0]) {
		rc = dbx_error_set(err, DBX_EINVAL, "no vault or identity to check");
		goto out;
	}
	if (vault->rbac || !vault->policies_known)
		goto out;
	fresh = *vault;
	name = strrchr(vault->id, '/');
	rc = read_vault(kv, deadline_of(kv), name ? name + 1 : vault->id, &fresh, &readable, &props,
			err);
	if (rc != DBX_OK || !readable || fresh.rbac)
		goto out;
	rc = check_policies(&props, vault, object_id, err);
out:
	dbx_arm_vault_clear(&props);
	return rc;
}

/* ---- keys ---- */

static int b64url_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

/*
 * Bit length of the big-endian integer whose base64url text is s (leading
 * zero bytes do not count), without decoding it into memory. false when s
 * is not base64url (one or two '=' of padding are tolerated).
 */
static bool modulus_bits(const char *s, size_t len, unsigned *bits)
{
	unsigned acc = 0, nacc = 0, first = 0;
	size_t nbytes = 0, total;

	if (len > 0 && s[len - 1] == '=')
		len--;
	if (len > 0 && s[len - 1] == '=')
		len--;
	if (len % 4 == 1)
		return false;
	for (size_t i = 0; i < len; i++) {
		int v = b64url_value((unsigned char)s[i]);

		if (v < 0)
			return false;
		acc = (acc << 6) | (unsigned)v;
		nacc += 6;
		if (nacc >= 8) {
			unsigned byte = (acc >> (nacc - 8)) & 0xffu;

			nacc -= 8;
			acc &= (1u << nacc) - 1;
			if (nbytes > 0)
				nbytes++;
			else if (byte != 0) {
				first = byte;
				nbytes = 1;
			}
		}
	}
	if (nbytes == 0) {
		*bits = 0;
		return true;
	}
	total = (nbytes - 1) * 8;
	while (first) {
		total++;
		first >>= 1;
	}
	*bits = total > UINT_MAX ? UINT_MAX : (unsigned)total;
	return true;
}

static bool is_hex32(const char *s, size_t n)
{
	return n == DBX_KEY_VERSION_LEN && strspn(s, "0123456789abcdefABCDEF") >= n;
}

/* Is kid the identifier of key (same host and name, a version, the asked one if any)? */
static bool kid_matches(const char *kid, const struct dbx_key_url *key)
{
	size_t hn = strlen(key->host), nn = strlen(key->name);
	const char *p = kid;

	if (strncasecmp(p, "https://", 8) != 0)
		return false;
	p += 8;
	if (strncasecmp(p, key->host, hn) != 0 || strncmp(p + hn, "/keys/", 6) != 0)
		return false;
	p += hn + 6;
	if (strncasecmp(p, key->name, nn) != 0 || p[nn] != '/')
		return false;
	p += nn + 1;
	if (!is_hex32(p, strlen(p)))
		return false;
	return key->version[0] == '\0' || strcasecmp(p, key->version) == 0;
}

/*
 * The KeyBundle's fields (docs/azure.md, "Key Vault"), each with its one
 * accepted type: a required one absent, or any one of another type, is
 * malformed, and why says which.
 */
struct key_reader {
	char *why;
	size_t cap;
	bool bad;
};

static struct json_object *key_field(struct key_reader *r, struct json_object *o, const char *key,
				     const char *path, enum json_type t, bool required)
{
	struct json_object *v = NULL;
	int got;

	if (r->bad)
		return NULL;
	got = dbx_json_field(o, key, t, path, &v, r->why, r->cap);
	if (got < 0 || (got == 0 && required && o)) {
		if (got == 0)
			snprintf(r->why, r->cap, "no %s", path);
		r->bad = true;
		return NULL;
	}
	return v;
}

static const char *key_str(struct key_reader *r, struct json_object *o, const char *key,
			   const char *path, bool required)
{
	struct json_object *v = key_field(r, o, key, path, json_type_string, required);

	return v ? json_object_get_string(v) : NULL;
}

/* Optional unix time: absent or null is 0. */
static time_t key_time(struct key_reader *r, struct json_object *o, const char *key,
		       const char *path)
{
	struct json_object *v = key_field(r, o, key, path, json_type_int, false);

	return v ? (time_t)json_object_get_int64(v) : 0;
}

/* Fill out from a KeyBundle; false when it is malformed (why says how). */
static bool parse_key(struct json_object *root, const struct dbx_key_url *key,
		      struct dbx_key_info *out, char *why, size_t cap)
{
	struct key_reader r = {.why = why, .cap = cap};
	struct json_object *jwk, *attrs, *enabled, *ops;
	const char *kid, *kty, *n, *level;

	jwk = key_field(&r, root, "key", "key", json_type_object, true);
	attrs = key_field(&r, root, "attributes", "attributes", json_type_object, true);
	kid = key_str(&r, jwk, "kid", "key.kid", true);
	kty = key_str(&r, jwk, "kty", "key.kty", true);
	n = key_str(&r, jwk, "n", "key.n", false);
	(void)key_str(&r, jwk, "e", "key.e", false);
	ops = key_field(&r, jwk, "key_ops", "key.key_ops", json_type_array, false);
	for (size_t i = 0; ops && !r.bad && i < json_object_array_length(ops); i++) {
		struct json_object *op = json_object_array_get_idx(ops, i);

		if (!json_object_is_type(op, json_type_string)) {
			snprintf(why, cap, "key.key_ops[%zu] is %s, expected a string", i,
				 dbx_json_type_name(json_object_get_type(op)));
			r.bad = true;
		} else if (strcmp(json_object_get_string(op), "wrapKey") == 0) {
			out->ops |= DBX_KEY_OP_WRAP;
		} else if (strcmp(json_object_get_string(op), "unwrapKey") == 0) {
			out->ops |= DBX_KEY_OP_UNWRAP;
		}
	}
	out->ops_known = ops != NULL;
	enabled = key_field(&r, attrs, "enabled", "attributes.enabled", json_type_boolean, true);
	out->nbf = key_time(&r, attrs, "nbf", "attributes.nbf");
	out->exp = key_time(&r, attrs, "exp", "attributes.exp");
	(void)key_time(&r, attrs, "created", "attributes.created");
	(void)key_time(&r, attrs, "updated", "attributes.updated");
	level = key_str(&r, attrs, "recoveryLevel", "attributes.recoveryLevel", false);
	if (r.bad)
		return false;
	if (!kid_matches(kid, key) || !copy_str(out->kid, sizeof(out->kid), kid)) {
		snprintf(why, cap, "key.kid is not a version of the key asked for");
		return false;
	}
	snprintf(out->kty, sizeof(out->kty), "%s", kty);
	out->enabled = json_object_get_boolean(enabled);
	if (level && !copy_str(out->recovery_level, sizeof(out->recovery_level), level)) {
		snprintf(why, cap, "attributes.recoveryLevel is too long");
		return false;
	}
	out->bits = 0;
	if (strcmp(kty, "RSA") == 0 || strcmp(kty, "RSA-HSM") == 0) {
		if (!n) {
			snprintf(why, cap, "no key.n (the modulus of an %s key)", kty);
			return false;
		}
		if (!modulus_bits(n, strlen(n), &out->bits)) {
			snprintf(why, cap, "key.n is not base64url");
			return false;
		}
		if (out->bits == 0) {
			snprintf(why, cap, "key.n is a zero modulus");
			return false;
		}
	}
	return true;
}

static bool key_url_ok(const struct dbx_keyvault *kv, const struct dbx_key_url *key)
{
	size_t vn = strlen(key->vault), nn = strlen(key->name), ver = strlen(key->version);

	if (!vault_name_ok(key->vault) || nn == 0 || nn > DBX_KEY_NAME_MAX ||
	    strspn(key->name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-") !=
		nn)
		return false;
	if (ver != 0 && !is_hex32(key->version, ver))
		return false;
	return strncasecmp(key->host, key->vault, vn) == 0 && key->host[vn] == '.' &&
	       strcasecmp(key->host + vn + 1, kv->cloud->vault_suffix) == 0;
}

static void key_hint(struct dbx_keyvault *kv, const struct dbx_key_url *key, char *hint,
		     size_t cap);

/*
 * GET the key into out. *readable is false after a 403 (out->kid is then
 * the written URL). 404 is SsemUserErrorKeyDetailsNotFound.
 */
static enum dbx_err fetch_key(struct dbx_keyvault *kv, const struct dbx_key_url *key,
			      uint64_t deadline, struct dbx_key_info *out, bool *readable,
			      struct dbx_error *err)
{
	static const char what[] = "Key Vault key";
	struct dbx_http_response resp = {0};
	struct dbx_error perr = {0};
	char why[DBX_ERR_MSG_MAX / 2] = "";
	struct json_object *root = NULL;
	char *url = NULL;
	enum dbx_err rc = DBX_OK;

	memset(out, 0, sizeof(*out));
	*readable = false;
	if (!key_url_ok(kv, key)) {
		rc = ssem_error(err, SSEM_BAD_HOST, 0, NULL,
				"key URL %s is not a key of a vault in %s; not contacted", key->url,
				kv->cloud->vault_suffix);
		goto out;
	}
	snprintf(out->kid, sizeof(out->kid), "%s", key->url);
	if (asprintf(&url, "https://%s/keys/%s%s%s?api-version=%s", key->host, key->name,
		     key->version[0] ? "/" : "", key->version, API_KEYVAULT) < 0) {
		url = NULL;
		rc = no_memory(err);
		goto out;
	}
	rc = vault_get(kv, url, deadline, &resp, err);
	if (rc != DBX_OK)
		goto out;
	if (resp.status == 403)
		goto out;
	if (resp.status == 404) {
		char hint[400];

		key_hint(kv, key, hint, sizeof(hint));
		rc = ssem_error(err, SSEM_KEY_NOT_FOUND, resp.status, resp.request_id,
				"key '%s'%s%s not found in key vault '%s'%s", key->name,
				key->version[0] ? " version " : "", key->version, key->vault, hint);
		goto out;
	}
	if (!is_2xx(&resp)) {
		rc = response_error(&resp, what, err);
		goto out;
	}
	rc = dbx_json_parse_object(resp.body, resp.body_len, "malformed Key Vault key response",
				   &root, &perr);
	if (rc == DBX_ENOMEM) {
		rc = no_memory(err);
		goto out;
	}
	if (rc != DBX_OK || !parse_key(root, key, out, why, sizeof(why))) {
		memset(out, 0, sizeof(*out));
		if (rc != DBX_OK) {
			rc = malformed(err, &resp, what, NULL);
			if (err) /* the parse's own words: "malformed Key Vault key response: ..."
				  */
				snprintf(err->message, sizeof(err->message), "%s", perr.message);
		} else {
			rc = malformed(err, &resp, what, why);
		}
		goto out;
	}
	*readable = true;
out:
	if (rc != DBX_OK && err && err->service == DBX_SERVICE_ARM)
		err->service = DBX_SERVICE_KEYVAULT; /* its advice names Key Vault, not ARM */
	json_object_put(root);
	dbx_http_response_reset(&resp);
	free(url);
	return rc;
}

/* Public: a 403 here is DBX_EACCES; only the preflight skips and notes it. */
enum dbx_err dbx_keyvault_get_key(struct dbx_keyvault *kv, const struct dbx_key_url *key,
				  struct dbx_key_info *out, struct dbx_error *err)
{
	bool readable;
	enum dbx_err rc;

	dbx_error_clear(err);
	rc = fetch_key(kv, key, deadline_of(kv), out, &readable, err);
	if (rc == DBX_OK && !readable) {
		dbx_error_clear(err);
		rc = dbx_error_set(err, DBX_EACCES,
				   "key '%s' not readable with the mount's credential (403)",
				   key->name);
		if (err)
			err->http_status = 403;
	}
	return rc;
}

/* ---- identities ---- */

/*
 * Public: the identity's principalId through ARM; anything but a non-empty
 * principalId that fits is malformed.
 */
/* dbx_keyvault_identity_principal under the caller's deadline. */
static enum dbx_err identity_principal(struct dbx_keyvault *kv, const char *uai_id,
				       uint64_t deadline, char *principal, size_t cap,
				       struct dbx_error *err)
{
	enum dbx_err rc;

	rc = dbx_arm_identity_principal(kv->arm, uai_id, deadline, principal, cap, err);
	if (rc == DBX_ENOTFOUND)
		return ssem_error(err, SSEM_UAI_NOT_FOUND, 404, err ? err->request_id : NULL,
				  "user-assigned identity %s not found", uai_id);
	return rc;
}

enum dbx_err dbx_keyvault_identity_principal(struct dbx_keyvault *kv, const char *uai_id,
					     char *principal, size_t cap, struct dbx_error *err)
{
	return identity_principal(kv, uai_id, deadline_of(kv), principal, cap, err);
}

/* ---- the whole preflight ---- */

static void note_add(struct dbx_preflight *out, const char *note)
{
	size_t used = strlen(out->notes);

	if (used && used + 1 < sizeof(out->notes))
		out->notes[used++] = ' ';
	snprintf(out->notes + used, sizeof(out->notes) - used, "%s", note);
}

/* Does a Key Vault recoveryLevel show soft delete and purge protection both on? */
static bool level_protected(const char *level)
{
	return strcasestr(level, "Recoverable") && !strcasestr(level, "Purgeable");
}

/* The facts the key rules (validate.h) judge, from a key that was read. */
static struct dbx_key_facts key_facts(const struct dbx_key_info *k)
{
	struct dbx_key_facts f = {
	    .key_known = true,
	    .kty = k->kty,
	    .bits = k->bits,
	    .enabled = k->enabled,
	    .nbf = k->nbf,
	    .exp = k->exp,
	    .ops_known = k->ops_known,
	    .ops = k->ops,
	};

	return f;
}

/*
 * The checks on a key that was read, in the service's order: the first
 * rule of the shared table (validate.h) it breaks is the answer.
 */
static enum dbx_err check_key(const struct dbx_key_url *key, const struct dbx_key_info *k,
			      time_t now, struct dbx_error *err)
{
	struct dbx_key_facts f = key_facts(k);
	struct dbx_rule_fail fail;

	if (dbx_key_rules_check(&f, now, &fail, 1) == 0)
		return DBX_OK;
	return ssem_error(err, fail.code, 0, NULL, "key '%s' (%s) is not usable by Data Box: %s",
			  key->name, k->kid, fail.reason);
}

/* The vault's rows of the same table: soft delete and purge protection. */
static enum dbx_err check_vault(const char *name, const struct dbx_vault_info *v,
				struct dbx_error *err)
{
	struct dbx_key_facts f = {
	    .vault_known = true,
	    .soft_delete = v->soft_delete,
	    .purge_protection = v->purge_protection,
	};
	struct dbx_rule_fail fails[DBX_KEY_RULES_MAX];
	size_t n = dbx_key_rules_check(&f, 0, fails, DBX_KEY_RULES_MAX);

	if (n == 0)
		return DBX_OK;
	return ssem_error(err, fails[0].code, 0, NULL,
			  "key vault '%s' needs soft delete and purge protection enabled: %s%s%s",
			  name, fails[0].reason, n > 1 ? "; " : "", n > 1 ? fails[1].reason : "");
}

/*
 * One lookup of the preflight that needs nothing from the others: the key
 * GET, or a user-assigned identity's principal. It runs on a thread of its
 * own (concurrent), or on the caller's when it is judged (one by one).
 */
struct lookup {
	struct dbx_keyvault *kv;
	uint64_t deadline;
	const struct dbx_key_url *key; /* the key GET, or */
	const char *uai_id;	       /* the identity's principal */
	pthread_t thread;
	bool running, done;
	/* what it found */
	enum dbx_err rc;
	struct dbx_error err;
	struct dbx_key_info info;
	bool readable;
	char principal[128];
};

static void lookup_run(struct lookup *l)
{
	dbx_error_clear(&l->err);
	if (l->key)
		l->rc = fetch_key(l->kv, l->key, l->deadline, &l->info, &l->readable, &l->err);
	else
		l->rc = identity_principal(l->kv, l->uai_id, l->deadline, l->principal,
					   sizeof(l->principal), &l->err);
	l->done = true;
}

static void *lookup_thread(void *arg)
{
	lookup_run(arg);
	return NULL;
}

/* Start l on its own thread (concurrent); when that is off or fails, it runs when needed. */
static void lookup_start(struct lookup *l)
{
	if (!l->kv->sequential && pthread_create(&l->thread, NULL, lookup_thread, l) == 0)
		l->running = true;
}

/* Wait for l; when it did not run yet, run it now if needed (it is then never sent otherwise). */
static void lookup_finish(struct lookup *l, bool needed)
{
	if (l->running) {
		pthread_join(l->thread, NULL);
		l->running = false;
	} else if (needed && !l->done) {
		lookup_run(l);
	}
}

/*
 * Public: the user-assigned identity's principal and the vault's access
 * policies for it, looked up at the same time; the identity's failure
 * first, as one by one.
 */
enum dbx_err dbx_keyvault_check_access_uai(struct dbx_keyvault *kv, uint64_t deadline_ms,
					   const struct dbx_vault_info *vault, const char *uai_id,
					   char *principal, size_t cap, struct dbx_error *err)
{
	uint64_t deadline = deadline_ms ? deadline_ms : deadline_of(kv);
	struct lookup ul = {.kv = kv, .deadline = deadline, .uai_id = uai_id};
	struct dbx_arm_vault props = {0};
	struct dbx_vault_info fresh;
	struct dbx_error verr;
	const char *name;
	bool readable = false, need_vault;
	enum dbx_err rc = DBX_OK, vrc = DBX_OK;

	dbx_error_clear(err);
	dbx_error_clear(&verr);
	if (principal && cap)
		principal[0] = '\0';
	if (!vault || !uai_id || !principal || cap == 0) {
		rc = dbx_error_set(err, DBX_EINVAL, "no vault or identity to check");
		goto out;
	}
	need_vault = !vault->rbac && vault->policies_known;
	lookup_start(&ul);
	if (!ul.running)
		lookup_finish(&ul, true); /* one by one: the identity first */
	if (need_vault && (ul.running || ul.rc == DBX_OK)) {
		fresh = *vault;
		name = strrchr(vault->id, '/');
		vrc = read_vault(kv, deadline, name ? name + 1 : vault->id, &fresh, &readable,
				 &props, &verr);
	}
	lookup_finish(&ul, true);
	if (ul.rc != DBX_OK) {
		rc = ul.rc;
		if (err)
			*err = ul.err;
		goto out;
	}
	if (strlen(ul.principal) >= cap) {
		rc = dbx_error_set(err, DBX_EREMOTE,
				   "malformed response from ARM: principalId too long");
		goto out;
	}
	memcpy(principal, ul.principal, strlen(ul.principal) + 1);
	if (!need_vault)
		goto out;
	if (vrc != DBX_OK) {
		rc = vrc;
		if (err)
			*err = verr;
		goto out;
	}
	if (!readable || fresh.rbac)
		goto out;
	rc = check_policies(&props, vault, principal, err);
out:
	lookup_finish(&ul, false);
	dbx_arm_vault_clear(&props);
	return rc;
}

/*
 * The checks of the key that was fetched (*k, as l found it), then the
 * vault's access policies for pid: the second half of the preflight.
 */
static enum dbx_err judge_key_and_access(const struct dbx_key_url *key, struct lookup *kl,
					 bool vault_readable, const struct dbx_arm_vault *props,
					 const char *pid, time_t now, struct dbx_preflight *out,
					 struct dbx_error *err)
{
	enum dbx_err rc = kl->rc;

	out->key = kl->info;
	if (rc != DBX_OK) {
		if (err)
			*err = kl->err;
		return rc;
	}
	if (!kl->readable) {
		note_add(out, "key not readable with the mount's credential (403); key state, type "
			      "and size not checked.");
	} else {
		/* Without the vault's properties, the key's recoveryLevel still tells. */
		if (!vault_readable && out->key.recovery_level[0] &&
		    !level_protected(out->key.recovery_level))
			return ssem_error(err, SSEM_SOFT_DELETE, 0, NULL,
					  "key vault '%s' needs soft delete and purge protection "
					  "enabled (the key's recoveryLevel is %s)",
					  key->vault, out->key.recovery_level);
		rc = check_key(key, &out->key, now, err);
		if (rc != DBX_OK)
			return rc;
	}

	if (!vault_readable) {
		note_add(out, "access policies not checked.");
		return DBX_OK;
	}
	if (out->vault.rbac)
		return DBX_OK;
	if (!pid || !pid[0]) {
		note_add(out, "the identity's principal is not known yet; access policies not "
			      "checked.");
		return DBX_OK;
	}
	return check_policies(props, &out->vault, pid, err);
}

/*
 * Public: the checks in the order of keyvault.h, one deadline for all of
 * them, the lookups concurrent. On success out->vault.id is the
 * kekVaultResourceID and out->key.kid the versioned key URL to PATCH (the
 * written URL when the key was not readable); out->notes lists what was
 * skipped. On failure out holds what was learnt by the checks before it.
 */
enum dbx_err dbx_keyvault_preflight_uai(struct dbx_keyvault *kv, uint64_t deadline_ms,
					const char *subscription, const struct dbx_key_url *key,
					const char *uai_id, const char *principal_id, time_t now,
					char *principal, size_t cap, struct dbx_preflight *out,
					struct dbx_error *err)
{
	uint64_t deadline = deadline_ms ? deadline_ms : deadline_of(kv);
	struct dbx_arm_vault vault_props = {0};
	struct lookup kl = {.kv = kv, .deadline = deadline, .key = key};
	struct lookup ul = {.kv = kv, .deadline = deadline, .uai_id = uai_id};
	const char *pid = principal_id;
	bool vault_readable = false;
	enum dbx_err rc = DBX_OK;

	dbx_error_clear(err);
	memset(out, 0, sizeof(*out));
	if (principal && cap)
		principal[0] = '\0';
	if (!key || (uai_id && (!principal || cap == 0))) {
		rc = dbx_error_set(err, DBX_EINVAL, "no key to check");
		goto out;
	}
	if (uai_id) {
		/* The identity's check comes first (SsemUserErrorKekUserIdentityNotFound). */
		lookup_start(&ul);
		if (!ul.running)
			lookup_finish(&ul, true); /* one by one: nothing else is sent if it fails */
	}
	if (!uai_id || ul.running || ul.rc == DBX_OK) {
		/*
		 * The key's host is contacted only once ARM knows its vault (no
		 * request goes to a vault ARM does not know); the key GET then runs
		 * while the vault's properties are read.
		 */
		rc = locate_vault(kv, subscription, key->vault, deadline, &out->vault, err);
		if (rc == DBX_OK) {
			lookup_start(&kl);
			rc = read_vault(kv, deadline, key->vault, &out->vault, &vault_readable,
					&vault_props, err);
		}
	}
	if (uai_id) {
		lookup_finish(&ul, true);
		if (ul.rc != DBX_OK) {
			memset(out, 0, sizeof(*out));
			rc = ul.rc;
			if (err)
				*err = ul.err;
			goto out;
		}
		if (strlen(ul.principal) >= cap) {
			rc = dbx_error_set(err, DBX_EREMOTE,
					   "malformed response from ARM: principalId too long");
			goto out;
		}
		memcpy(principal, ul.principal, strlen(ul.principal) + 1);
		pid = principal;
	}
	if (rc != DBX_OK)
		goto out;
	if (!vault_readable) {
		note_add(out, NOTE_VAULT_403);
	} else {
		rc = check_vault(key->vault, &out->vault, err);
		if (rc != DBX_OK)
			goto out;
	}

	lookup_finish(&kl, true);
	rc = judge_key_and_access(key, &kl, vault_readable, &vault_props, pid, now, out, err);
out:
	/* Nothing is left running; a lookup not needed any more is not sent (one by one). */
	lookup_finish(&kl, false);
	lookup_finish(&ul, false);
	dbx_arm_vault_clear(&vault_props);
	return rc;
}

enum dbx_err dbx_keyvault_preflight(struct dbx_keyvault *kv, const char *subscription,
				    const struct dbx_key_url *key, const char *principal_id,
				    time_t now, struct dbx_preflight *out, struct dbx_error *err)
{
	return dbx_keyvault_preflight_uai(kv, 0, subscription, key, NULL, principal_id, now, NULL,
					  0, out, err);
}

/*
 * ---- The catalogue's data plane (keyvault.h): list keys, list versions, create ----
 *
 * Lists are paged: each page's nextLink is followed verbatim, only when
 * it is https on the vault's own host (":443" allowed) under /keys, and
 * never to a page already read; the vault-audience token goes with each.
 */

#define KV_MAX_PAGES 10000

/* May the vault token go to url, a nextLink of a list on host? */
static bool kv_link_ok(const char *host, const char *url)
{
	size_t hn = strlen(host);

	if (strncasecmp(url, "https://", 8) != 0 || strncasecmp(url + 8, host, hn) != 0)
		return false;
	url += 8 + hn;
	if (strncmp(url, ":443", 4) == 0)
		url += 4;
	if (strncmp(url, "/keys", 5) != 0)
		return false;
	for (; *url; url++) {
		if ((unsigned char)*url <= ' ' || (unsigned char)*url >= 0x7f || *url == '\\' ||
		    *url == '@' || *url == '#')
			return false;
	}
	return true;
}

/* One item of a list's value: DBX_OK, or an error (why) that ends the listing. */
typedef enum dbx_err (*kv_item_fn)(void *ctx, struct json_object *item, bool *stop, char *why,
				   size_t cap);

static enum dbx_err kv_list(struct dbx_keyvault *kv, const char *host, const char *first,
			    const char *what, kv_item_fn fn, void *ctx, struct dbx_error *err)
{
	struct dbx_http_response resp = {0};
	struct json_object *page = NULL;
	char *url = strdup(first), **seen = NULL;
	char why[DBX_ERR_MSG_MAX / 2] = "";
	uint64_t deadline = deadline_of(kv);
	size_t n_seen = 0;
	enum dbx_err rc = DBX_OK;

	if (!url)
		return no_memory(err);
	for (;;) {
		struct json_object *value = NULL, *next = NULL;
		const char *link = NULL;
		bool stop = false;
		char **grown;
		int r;

		grown = realloc(seen, (n_seen + 1) * sizeof(*seen));
		if (!grown) {
			rc = no_memory(err);
			goto out;
		}
		seen = grown;
		seen[n_seen++] = url;
		rc = vault_get(kv, url, deadline, &resp, err);
		if (rc != DBX_OK)
			goto out;
		if (!is_2xx(&resp)) {
			rc = response_error(&resp, what, err);
			goto out;
		}
		json_object_put(page);
		page = NULL;
		rc = dbx_json_parse_object(resp.body, resp.body_len, "malformed Key Vault list",
					   &page, err);
		if (rc != DBX_OK)
			goto out;
		r = dbx_json_field(page, "value", json_type_array, "value", &value, why,
				   sizeof(why));
		if (r == 0)
			snprintf(why, sizeof(why), "no value list");
		if (r == 1 && dbx_json_field(page, "nextLink", json_type_string, "nextLink", &next,
					     why, sizeof(why)) < 0)
			r = -1;
		if (r != 1) {
			rc = malformed(err, &resp, what, why);
			goto out;
		}
		for (size_t i = 0; i < json_object_array_length(value) && !stop; i++) {
			struct json_object *item = json_object_array_get_idx(value, i);

			if (!json_object_is_type(item, json_type_object)) {
				snprintf(why, sizeof(why), "value[%zu] is not an object", i);
				rc = malformed(err, &resp, what, why);
				goto out;
			}
			rc = fn(ctx, item, &stop, why, sizeof(why));
			if (rc == DBX_EREMOTE)
				rc = malformed(err, &resp, what, why);
			else if (rc != DBX_OK)
				rc = no_memory(err);
			if (rc != DBX_OK)
				goto out;
		}
		link = next ? json_object_get_string(next) : NULL;
		if (stop || !link || !*link)
			break;
		if (!kv_link_ok(host, link)) {
			rc = malformed(err, &resp, what, "nextLink off the vault's host");
			goto out;
		}
		for (size_t i = 0; i < n_seen; i++) {
			if (strcmp(seen[i], link) == 0) {
				rc =
				    malformed(err, &resp, what, "nextLink repeats an earlier page");
				goto out;
			}
		}
		if (n_seen >= KV_MAX_PAGES) {
			rc = malformed(err, &resp, what, "more than 10000 pages");
			goto out;
		}
		url = strdup(link);
		if (!url) {
			rc = no_memory(err);
			goto out;
		}
	}
out:
	if (rc != DBX_OK && err && err->service == DBX_SERVICE_ARM)
		err->service = DBX_SERVICE_KEYVAULT;
	json_object_put(page);
	dbx_http_response_reset(&resp);
	for (size_t i = 0; i < n_seen; i++)
		free(seen[i]);
	free(seen);
	return rc;
}

/* The vault's host for name, or false when name is not a vault name. */
static bool vault_host(const struct dbx_keyvault *kv, const char *vault, char *host, size_t cap)
{
	int n;

	if (!vault_name_ok(vault))
		return false;
	n = snprintf(host, cap, "%s.%s", vault, kv->cloud->vault_suffix);
	if (n < 0 || (size_t)n >= cap)
		return false;
	for (char *p = host; *p; p++)
		*p = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
	return true;
}

/*
 * The attributes of a list item: enabled (required), nbf and exp
 * (optional unix times), into *v; false with why on a wrong type.
 */
static bool item_attributes(struct json_object *item, struct dbx_key_version *v, char *why,
			    size_t cap)
{
	struct key_reader r = {.why = why, .cap = cap};
	struct json_object *attrs, *enabled;

	attrs = key_field(&r, item, "attributes", "value[].attributes", json_type_object, true);
	enabled =
	    key_field(&r, attrs, "enabled", "value[].attributes.enabled", json_type_boolean, true);
	v->nbf = key_time(&r, attrs, "nbf", "value[].attributes.nbf");
	v->exp = key_time(&r, attrs, "exp", "value[].attributes.exp");
	if (r.bad)
		return false;
	v->enabled = json_object_get_boolean(enabled);
	return true;
}

/* The segment of kid after prefix (https://<host>/keys/ [name/]), or NULL. */
static const char *kid_rest(const char *kid, const char *host, const char *name)
{
	size_t hn = strlen(host), nn = name ? strlen(name) : 0;

	if (strncasecmp(kid, "https://", 8) != 0 || strncasecmp(kid + 8, host, hn) != 0)
		return NULL;
	kid += 8 + hn;
	if (strncmp(kid, ":443", 4) == 0)
		kid += 4;
	if (strncmp(kid, "/keys/", 6) != 0)
		return NULL;
	kid += 6;
	if (name) {
		if (strncasecmp(kid, name, nn) != 0 || kid[nn] != '/')
			return NULL;
		kid += nn + 1;
	}
	return *kid && !strchr(kid, '/') ? kid : NULL;
}

struct key_list_ctx {
	const char *host, *name; /* name: the key whose versions are listed, NULL for keys */
	dbx_keyvault_key_cb cb;
	void *ctx;
};

static enum dbx_err key_list_item(void *ctx, struct json_object *item, bool *stop, char *why,
				  size_t cap)
{
	struct key_list_ctx *lc = ctx;
	struct key_reader r = {.why = why, .cap = cap};
	struct dbx_key_version v = {0};
	const char *kid, *rest;

	kid = key_str(&r, item, "kid", "value[].kid", true);
	if (r.bad)
		return DBX_EREMOTE;
	rest = kid_rest(kid, lc->host, lc->name);
	if (!rest || strlen(rest) >= sizeof(v.name) ||
	    (lc->name && !is_hex32(rest, strlen(rest)))) {
		snprintf(why, cap, "value[].kid %.200s is not a %s of this vault", kid,
			 lc->name ? "version of the key" : "key");
		return DBX_EREMOTE;
	}
	memcpy(v.name, rest, strlen(rest) + 1);
	if (!item_attributes(item, &v, why, cap))
		return DBX_EREMOTE;
	*stop = lc->cb(lc->ctx, &v) != 0;
	return DBX_OK;
}

static enum dbx_err list_of(struct dbx_keyvault *kv, const char *vault, const char *key,
			    dbx_keyvault_key_cb cb, void *ctx, struct dbx_error *err)
{
	char host[DBX_VAULT_NAME_MAX + 64], *url = NULL;
	struct key_list_ctx lc = {.host = host, .name = key, .cb = cb, .ctx = ctx};
	enum dbx_err rc;

	dbx_error_clear(err);
	if (!vault_host(kv, vault, host, sizeof(host)) ||
	    (key &&
	     strspn(key, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-") !=
		 strlen(key)))
		return dbx_error_set(err, DBX_EINVAL, "'%s' is not a key vault or key name",
				     key ? key : vault);
	if (asprintf(&url, "https://%s/keys%s%s%s?api-version=%s&maxresults=25", host,
		     key ? "/" : "", key ? key : "", key ? "/versions" : "", API_KEYVAULT) < 0)
		return no_memory(err);
	rc = kv_list(kv, host, url, key ? "Key Vault key versions" : "Key Vault keys",
		     key_list_item, &lc, err);
	free(url);
	return rc;
}

enum dbx_err dbx_keyvault_list_keys(struct dbx_keyvault *kv, const char *vault,
				    dbx_keyvault_key_cb cb, void *ctx, struct dbx_error *err)
{
	return list_of(kv, vault, NULL, cb, ctx, err);
}

enum dbx_err dbx_keyvault_list_versions(struct dbx_keyvault *kv, const char *vault, const char *key,
					dbx_keyvault_key_cb cb, void *ctx, struct dbx_error *err)
{
	if (!key || !*key)
		return dbx_error_set(err, DBX_EINVAL, "no key name");
	return list_of(kv, vault, key, cb, ctx, err);
}

enum dbx_err dbx_keyvault_create_key(struct dbx_keyvault *kv, const char *vault, const char *key,
				     unsigned bits, struct dbx_key_info *out, struct dbx_error *err)
{
	static const char what[] = "Key Vault create key";
	char host[DBX_VAULT_NAME_MAX + 64], body[128], why[DBX_ERR_MSG_MAX / 2] = "";
	struct dbx_http_response resp = {0};
	struct json_object *root = NULL;
	struct dbx_key_url ku = {0};
	char *url = NULL;
	size_t kn = key ? strlen(key) : 0;
	enum dbx_err rc;

	dbx_error_clear(err);
	memset(out, 0, sizeof(*out));
	if (!vault_host(kv, vault, host, sizeof(host)) || kn == 0 || kn > DBX_KEY_NAME_MAX ||
	    strspn(key, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-") != kn)
		return dbx_error_set(err, DBX_EINVAL,
				     "'%s' is not a key name (1-127 letters, digits and dashes)",
				     key ? key : "");
	if (bits != 2048 && bits != 3072 && bits != 4096)
		return dbx_error_set(err, DBX_EINVAL, "key size %u: use 2048, 3072 or 4096", bits);
	snprintf(ku.vault, sizeof(ku.vault), "%s", vault);
	snprintf(ku.host, sizeof(ku.host), "%s", host);
	snprintf(ku.name, sizeof(ku.name), "%s", key);
	snprintf(ku.url, sizeof(ku.url), "https://%s/keys/%s", host, key);
	snprintf(body, sizeof(body),
		 "{\"kty\":\"RSA\",\"key_size\":%u,\"key_ops\":[\"wrapKey\",\"unwrapKey\"]}", bits);
	if (asprintf(&url, "https://%s/keys/%s/create?api-version=%s", host, key, API_KEYVAULT) < 0)
		return no_memory(err);
	{
		struct dbx_http_request req = {
		    .method = "POST",
		    .url = url,
		    .scope = kv->cloud->vault_scope,
		    .content_type = "application/json",
		    .body = body,
		    .body_len = strlen(body),
		    .deadline_ms = deadline_of(kv),
		    .idempotent = false,
		};

		rc = dbx_http_send(kv->transport, &req, &resp, err);
	}
	if (rc != DBX_OK)
		goto out;
	if (!is_2xx(&resp)) {
		rc = response_error(&resp, what, err);
		goto out;
	}
	rc = dbx_json_parse_object(resp.body, resp.body_len, "malformed Key Vault key response",
				   &root, err);
	if (rc != DBX_OK)
		goto out;
	if (!parse_key(root, &ku, out, why, sizeof(why)))
		rc = malformed(err, &resp, what, why);
out:
	if (rc != DBX_OK && err && err->service == DBX_SERVICE_ARM)
		err->service = DBX_SERVICE_KEYVAULT;
	json_object_put(root);
	dbx_http_response_reset(&resp);
	free(url);
	return rc;
}

/* ---- what a "not found" names (docs/formats.md, "The catalogue") ---- */

struct hint_ctx {
	char *buf;
	size_t cap, used, n;
};

static int hint_name(void *ctx, const struct dbx_key_version *item)
{
	struct hint_ctx *h = ctx;

	if (h->n++ == 5) {
		h->used += (size_t)snprintf(h->buf + h->used, h->cap - h->used, ", ...");
		return 1;
	}
	if (h->used < h->cap)
		h->used += (size_t)snprintf(h->buf + h->used, h->cap - h->used, "%s%s",
					    h->n > 1 ? ", " : "", item->name);
	return h->used >= h->cap;
}

/*
 * After a 404 for key: what exists, as far as the credential can see, for
 * the message (" (its keys: a, b)" or " (the current version is V)"), or
 * "" when the lookup fails. One more request, on the error path only.
 */
static void key_hint(struct dbx_keyvault *kv, const struct dbx_key_url *key, char *hint, size_t cap)
{
	struct dbx_error e = {0};
	struct dbx_key_url latest = *key;
	struct dbx_key_info info;
	char names[300] = "";
	struct hint_ctx h = {.buf = names, .cap = sizeof(names)};
	bool readable = false;
	const char *v;

	hint[0] = '\0';
	if (key->version[0]) {
		latest.version[0] = '\0';
		snprintf(latest.url, sizeof(latest.url), "https://%s/keys/%s", key->host,
			 key->name);
		if (fetch_key(kv, &latest, deadline_of(kv), &info, &readable, &e) == DBX_OK &&
		    readable && (v = strrchr(info.kid, '/')) != NULL)
			snprintf(hint, cap, "; the current version is %s", v + 1);
		return;
	}
	if (dbx_keyvault_list_keys(kv, key->vault, hint_name, &h, &e) == DBX_OK)
		snprintf(hint, cap, h.n ? "; its keys: %s" : "; it holds no keys", names);
}
