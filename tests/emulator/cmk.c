/*
 * cmk.c: the Data Box service's rules for a customer-managed key, as the
 * emulator applies them to a PATCH (synchronous 400) and at the start of
 * DataCopy (properties.error + WaitingForCustomerActionForKek).
 *
 * The codes and their texts are the troubleshooting table of
 * the source document (docs/ssem-table.md) ("Error details" column, HTML removed).
 * A job is checked in the order the service has to work through to reach
 * the key: the key URL (scheme, host of the ARM host's cloud, path), the
 * vault (kekVaultResourceID names an existing vault, the one of the URL),
 * soft delete and purge protection, the identity that will fetch the key
 * (user-assigned: declared on the job and existing; system-assigned:
 * present), the identity's tenant against the subscription's, the vault's
 * access policy for that identity (get, wrapKey, unwrapKey unless the vault
 * uses RBAC), then the key itself (exists, enabled, not expired, RSA of at
 * least 2048 bits). All functions expect e->lock to be held.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "emu.h"

/* clang-format off */
static const struct ssem_row {
	const char *code;
	const char *details;
} ssem_rows[] = {
	[DBX_EMU_SSEM_OK] = {"", ""},
	[DBX_EMU_SSEM_INVALID_SCHEME] = {"SsemUserErrorKeyVaultUrlWithInvalidScheme",
		"Only HTTPS is supported for passing the key vault URI."},
	[DBX_EMU_SSEM_INVALID_HOST] = {"SsemUserErrorKeyVaultUrlInvalidHost",
		"The key vault URI host is not an allowed host in the geographical region."},
	[DBX_EMU_SSEM_INVALID_URL] = {"SsemUserErrorInvalidKeyVaultUrl",
		"An invalid key vault URI was used."},
	[DBX_EMU_SSEM_VAULT_NOT_FOUND] = {"SsemUserErrorKeyVaultDetailsNotFound",
		"Could not fetch the passkey as the associated key vault for the customer-managed "
		"key could not be found."},
	[DBX_EMU_SSEM_NO_PURGE_PROTECTION] = {"SsemUserErrorSoftDeleteAndPurgeProtectionNotEnabled",
		"Key vault does not have soft delete or purge protection enabled."},
	[DBX_EMU_SSEM_KEY_NOT_FOUND] = {"SsemUserErrorKeyDetailsNotFound",
		"Could not fetch the passkey as the customer-managed key could not be found."},
	[DBX_EMU_SSEM_KEY_DISABLED] = {"SsemUserErrorEncryptionKeyDisabled",
		"Could not fetch the passkey as the customer-managed key is disabled."},
	[DBX_EMU_SSEM_KEY_EXPIRED] = {"SsemUserErrorEncryptionKeyExpired",
		"Could not fetch the passkey as the customer-managed key has expired."},
	[DBX_EMU_SSEM_KEY_TYPE] = {"SsemUserErrorEncryptionKeyTypeNotSupported",
		"The encryption key type isn't supported for the operation."},
	[DBX_EMU_SSEM_UAI_ABSENT] = {"SsemUserErrorUserAssignedIdentityAbsent",
		"Could not fetch the passkey as the customer-managed key could not be found."},
	[DBX_EMU_SSEM_UAI_NOT_FOUND] = {"SsemUserErrorKekUserIdentityNotFound",
		"Applied a customer-managed key but the user assigned identity that has access to "
		"the key was not found in the active directory. Note: This error can occur when a "
		"user identity is deleted from Azure."},
	[DBX_EMU_SSEM_UAI_LIMIT] = {"SsemUserErrorUserAssignedLimitReached",
		"Adding new User Assigned Identity failed as you have reached the limit on the "
		"total number of user assigned identities that can be added."},
	[DBX_EMU_SSEM_SYSTEM_ABSENT] = {"SsemUserErrorSystemAssignedIdentityAbsent",
		"Could not fetch the passkey as the customer-managed key could not be found."},
	[DBX_EMU_SSEM_NO_ACCESS] = {"SsemUserErrorKeyVaultBadRequestException",
		"Applied a customer-managed key but the key access has not been granted or has been "
		"revoked, or unable to access key vault due to firewall being enabled."},
	[DBX_EMU_SSEM_CROSS_TENANT] = {"SsemUserErrorCrossTenantIdentityAccessForbidden",
		"Managed identity access operation failed. Note: This error can occur when a "
		"subscription is moved to different tenant. The customer has to manually move the "
		"identity to the new tenant."},
};
/* clang-format on */

const char *dbx_emu_ssem_code(enum dbx_emu_ssem s)
{
	return ssem_rows[s].code;
}

const char *dbx_emu_ssem_message(enum dbx_emu_ssem s)
{
	return ssem_rows[s].details;
}

/* The Key Vault DNS suffix of the cloud an ARM host belongs to. */
static const char *vault_suffix(const char *arm_host)
{
	if (strstr(arm_host, "usgovcloudapi.net"))
		return ".vault.usgovcloudapi.net";
	if (strstr(arm_host, "chinacloudapi.cn"))
		return ".vault.azure.cn";
	return ".vault.azure.net";
}

static bool name_ok(const char *s, size_t len, size_t lo, size_t hi)
{
	size_t i;

	if (len < lo || len > hi)
		return false;
	for (i = 0; i < len; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-')
			return false;
	return true;
}

static bool hex32(const char *s, size_t len)
{
	size_t i;

	if (len != 32)
		return false;
	for (i = 0; i < len; i++)
		if (!isxdigit((unsigned char)s[i]))
			return false;
	return true;
}

/* The parts of a key URL the rules use. */
struct kek_url {
	char vault[64];
	char key[160];
	char version[40]; /* "" = latest */
};

/*
 * The URL rules of the table (and docs/formats.md, "Validation"): https only; host
 * <vault>.<suffix of this cloud>; no user info, port, query or fragment;
 * path /keys/<name>[/<version>] with the vault name 3-24 and the key name
 * 1-127 of [A-Za-z0-9-] and a 32-hex-digit version.
 */
static enum dbx_emu_ssem url_check(const char *url, const char *arm_host, struct kek_url *out)
{
	const char *suffix = vault_suffix(arm_host), *p, *host, *path, *slash, *colon;
	size_t hl, sl = strlen(suffix), i;

	memset(out, 0, sizeof(*out));
	for (i = 0; url[i]; i++)
		if ((unsigned char)url[i] <= ' ' || url[i] == 0x7f)
			return DBX_EMU_SSEM_INVALID_URL;
	p = strstr(url, "://");
	if (!p)
		return DBX_EMU_SSEM_INVALID_URL;
	if ((size_t)(p - url) != 5 || strncasecmp(url, "https", 5))
		return DBX_EMU_SSEM_INVALID_SCHEME;
	host = p + 3;
	hl = strcspn(host, "/?#");
	path = host + hl;
	if (memchr(host, '@', hl))
		return DBX_EMU_SSEM_INVALID_URL;
	colon = memchr(host, ':', hl);
	if (colon)
		return DBX_EMU_SSEM_INVALID_URL;
	if (hl <= sl || strncasecmp(host + hl - sl, suffix, sl) || memchr(host, '.', hl - sl))
		return DBX_EMU_SSEM_INVALID_HOST;
	if (!name_ok(host, hl - sl, 3, 24))
		return DBX_EMU_SSEM_INVALID_URL;
	snprintf(out->vault, sizeof(out->vault), "%.*s", (int)(hl - sl), host);
	if (strpbrk(path, "?#%") || strncmp(path, "/keys/", 6))
		return DBX_EMU_SSEM_INVALID_URL;
	path += 6;
	slash = strchr(path, '/');
	if (!slash) {
		if (!name_ok(path, strlen(path), 1, 127))
			return DBX_EMU_SSEM_INVALID_URL;
		snprintf(out->key, sizeof(out->key), "%s", path);
		return DBX_EMU_SSEM_OK;
	}
	if (!name_ok(path, (size_t)(slash - path), 1, 127) || !hex32(slash + 1, strlen(slash + 1)))
		return DBX_EMU_SSEM_INVALID_URL;
	snprintf(out->key, sizeof(out->key), "%.*s", (int)(slash - path), path);
	snprintf(out->version, sizeof(out->version), "%s", slash + 1);
	return DBX_EMU_SSEM_OK;
}

static bool jbool(struct json_object *o, const char *key, bool def)
{
	struct json_object *v;

	if (!o || !json_object_object_get_ex(o, key, &v) || !v)
		return def;
	return json_object_get_boolean(v);
}

/* Does objectId hold get, wrapKey and unwrapKey on the vault's keys? */
static bool policy_allows(struct json_object *vault, const char *oid)
{
	static const char *const need[] = {"get", "wrapKey", "unwrapKey"};
	struct json_object *props = dbx_emu_jpath(vault, "properties");
	struct json_object *pols = dbx_emu_jarray(props, "accessPolicies");
	unsigned int have = 0;
	size_t i, j, k;

	if (jbool(props, "enableRbacAuthorization", false))
		return true;
	for (i = 0; pols && oid && i < json_object_array_length(pols); i++) {
		struct json_object *p = json_object_array_get_idx(pols, i);
		struct json_object *keys = dbx_emu_jarray(dbx_emu_jpath(p, "permissions"), "keys");
		const char *po = dbx_emu_jstr(p, "objectId");

		if (!po || strcasecmp(po, oid) || !keys)
			continue;
		for (j = 0; j < json_object_array_length(keys); j++) {
			const char *s = json_object_get_string(json_object_array_get_idx(keys, j));

			for (k = 0; s && k < 3; k++)
				if (!strcasecmp(s, need[k]) || !strcasecmp(s, "all"))
					have |= 1u << k;
		}
	}
	return have == 7;
}

/* The key version a URL names (the latest when it names none), or NULL. */
static struct json_object *find_version(struct json_object *vault, const struct kek_url *u)
{
	struct json_object *keys = dbx_emu_jarray(vault, "keys"), *vers = NULL;
	size_t i, n;

	for (i = 0; keys && i < json_object_array_length(keys); i++) {
		struct json_object *k = json_object_array_get_idx(keys, i);
		const char *nm = dbx_emu_jstr(k, "name");

		if (nm && !strcasecmp(nm, u->key)) {
			vers = dbx_emu_jarray(k, "versions");
			break;
		}
	}
	n = vers ? json_object_array_length(vers) : 0;
	if (!n)
		return NULL;
	if (!u->version[0])
		return json_object_array_get_idx(vers, n - 1);
	for (i = 0; i < n; i++) {
		struct json_object *v = json_object_array_get_idx(vers, i);
		const char *id = dbx_emu_jstr(v, "version");

		if (id && !strcasecmp(id, u->version))
			return v;
	}
	return NULL;
}

static enum dbx_emu_ssem key_check(struct json_object *ver)
{
	struct json_object *o;
	const char *kty = dbx_emu_jstr(ver, "kty") ? dbx_emu_jstr(ver, "kty") : "RSA";
	int size = 0;

	if (!jbool(ver, "enabled", true))
		return DBX_EMU_SSEM_KEY_DISABLED;
	if (json_object_object_get_ex(ver, "exp", &o) && o && json_object_get_int64(o) > 0 &&
	    json_object_get_int64(o) <= (int64_t)time(NULL))
		return DBX_EMU_SSEM_KEY_EXPIRED;
	if (json_object_object_get_ex(ver, "key_size", &o) && o)
		size = json_object_get_int(o);
	if (strcmp(kty, "RSA") && strcmp(kty, "RSA-HSM"))
		return DBX_EMU_SSEM_KEY_TYPE;
	if (size && size < 2048)
		return DBX_EMU_SSEM_KEY_TYPE;
	return DBX_EMU_SSEM_OK;
}

/* Is the ARM id listed (case-insensitively) in the identity's map? */
static bool uai_declared(struct json_object *identity, const char *id)
{
	struct json_object *map;
	const char *type = dbx_emu_jstr(identity, "type");

	if (!type || !strcasestr(type, "UserAssigned") ||
	    !json_object_object_get_ex(identity, "userAssignedIdentities", &map) ||
	    !json_object_is_type(map, json_type_object))
		return false;
	json_object_object_foreach(map, k, v)
	{
		(void)v;
		if (!strcasecmp(k, id))
			return true;
	}
	return false;
}

static struct json_object *find_uai(struct dbx_emu *e, const char *id)
{
	char s[256], g[256], n[256];

	if (!dbx_emu_id_parse(id, s, g, n, sizeof(s)))
		return NULL;
	return dbx_emu_find_resource(e, "identities", s, g, n);
}

/*
 * The user-assigned identity limit: world "limits": {"user_assigned_identities": N},
 * default 10 (the service's real limit is not documented).
 */
int dbx_emu_uai_limit(struct dbx_emu *e)
{
	struct json_object *lim = e->world ? dbx_emu_jpath(e->world, "limits") : NULL, *v;

	if (lim && json_object_object_get_ex(lim, "user_assigned_identities", &v) &&
	    json_object_is_type(v, json_type_int) && json_object_get_int(v) >= 0)
		return json_object_get_int(v);
	return 10;
}

/*
 * Rules that hold for every PATCH of the job identity, whatever the key:
 * no more user-assigned identities than the limit.
 */
enum dbx_emu_ssem dbx_emu_identity_check(struct dbx_emu *e, struct json_object *identity)
{
	struct json_object *map;

	if (identity && json_object_object_get_ex(identity, "userAssignedIdentities", &map) &&
	    json_object_is_type(map, json_type_object) &&
	    json_object_object_length(map) > dbx_emu_uai_limit(e))
		return DBX_EMU_SSEM_UAI_LIMIT;
	return DBX_EMU_SSEM_OK;
}

/*
 * Can the service use job's customer-managed key? arm_host picks the cloud
 * (and so the vault suffix). A job with a Microsoft-managed key (or none)
 * passes. Returns DBX_EMU_SSEM_OK or the code the service would report.
 */
enum dbx_emu_ssem dbx_emu_cmk_check(struct dbx_emu *e, struct json_object *job,
				    const char *arm_host)
{
	struct json_object *kek = dbx_emu_jpath(job, "properties.details.keyEncryptionKey");
	struct json_object *identity = dbx_emu_jpath(job, "identity"), *vault, *ver, *uai;
	struct json_object *sub_obj;
	const char *kek_type = dbx_emu_jstr(kek, "kekType"), *url = dbx_emu_jstr(kek, "kekUrl");
	const char *vid = dbx_emu_jstr(kek, "kekVaultResourceID");
	const char *ip_type = dbx_emu_jstr(dbx_emu_jpath(kek, "identityProperties"), "type");
	const char *principal, *tenant, *sub_tenant, *vname;
	char s[256], g[256], n[256];
	struct kek_url u;
	enum dbx_emu_ssem rc;

	if (!kek_type || strcasecmp(kek_type, "CustomerManaged"))
		return DBX_EMU_SSEM_OK;
	if (!url)
		return DBX_EMU_SSEM_INVALID_URL;
	rc = url_check(url, arm_host, &u);
	if (rc != DBX_EMU_SSEM_OK)
		return rc;
	if (!vid || !dbx_emu_id_parse(vid, s, g, n, sizeof(s)))
		return DBX_EMU_SSEM_VAULT_NOT_FOUND;
	vault = dbx_emu_find_resource(e, "vaults", s, g, n);
	vname = dbx_emu_jstr(vault, "name");
	if (!vault || !strcasestr(vid, "/providers/Microsoft.KeyVault/vaults/") || !vname ||
	    strcasecmp(vname, u.vault))
		return DBX_EMU_SSEM_VAULT_NOT_FOUND;
	if (!jbool(dbx_emu_jpath(vault, "properties"), "enableSoftDelete", true) ||
	    !jbool(dbx_emu_jpath(vault, "properties"), "enablePurgeProtection", false))
		return DBX_EMU_SSEM_NO_PURGE_PROTECTION;

	if (ip_type && !strcasecmp(ip_type, "UserAssigned")) {
		const char *rid = dbx_emu_jstr(
		    dbx_emu_jpath(kek, "identityProperties.userAssigned"), "resourceId");

		if (!rid || !uai_declared(identity, rid))
			return DBX_EMU_SSEM_UAI_ABSENT;
		uai = find_uai(e, rid);
		if (!uai)
			return DBX_EMU_SSEM_UAI_NOT_FOUND;
		principal = dbx_emu_jstr(uai, "principalId");
		tenant = dbx_emu_jstr(uai, "tenantId");
	} else {
		const char *type = dbx_emu_jstr(identity, "type");

		principal = dbx_emu_jstr(identity, "principalId");
		tenant = dbx_emu_jstr(identity, "tenantId");
		if (!type || !strcasestr(type, "SystemAssigned") || !principal)
			return DBX_EMU_SSEM_SYSTEM_ABSENT;
	}
	if (!dbx_emu_id_parse(dbx_emu_jstr(job, "id"), s, NULL, NULL, sizeof(s)))
		return DBX_EMU_SSEM_OK;
	sub_obj = dbx_emu_find_subscription(e, s);
	sub_tenant = dbx_emu_jstr(sub_obj, "tenantId");
	if (sub_tenant && tenant && strcasecmp(sub_tenant, tenant))
		return DBX_EMU_SSEM_CROSS_TENANT;
	if (!policy_allows(vault, principal))
		return DBX_EMU_SSEM_NO_ACCESS;
	ver = find_version(vault, &u);
	if (!ver)
		return DBX_EMU_SSEM_KEY_NOT_FOUND;
	return key_check(ver);
}

/* Set the job's key error the way the service reports it on the job. */
void dbx_emu_kek_error_set(struct json_object *job, enum dbx_emu_ssem s)
{
	struct json_object *props = dbx_emu_jpath(job, "properties"), *err;

	if (!props)
		return;
	err = json_object_new_object();
	json_object_object_add(err, "code", json_object_new_string(dbx_emu_ssem_code(s)));
	json_object_object_add(err, "message", json_object_new_string(dbx_emu_ssem_message(s)));
	json_object_object_add(err, "target", json_object_new_string("KeyEncryptionKey"));
	json_object_object_add(err, "details", json_object_new_array());
	json_object_object_add(err, "additionalInfo", json_object_new_array());
	json_object_object_add(props, "error", err);
}

/*
 * A change that makes the key usable clears a key error the service had
 * set: properties.error (Ssem codes, or target KeyEncryptionKey) goes and
 * stages waiting for the key resume (InProgress).
 */
void dbx_emu_kek_error_clear(struct json_object *job)
{
	struct json_object *props = dbx_emu_jpath(job, "properties"), *err, *stages;
	const char *code, *target;
	size_t i;

	if (!props)
		return;
	if (json_object_object_get_ex(props, "error", &err) && err) {
		code = dbx_emu_jstr(err, "code");
		target = dbx_emu_jstr(err, "target");
		if ((code && !strncmp(code, "SsemUserError", 13)) ||
		    (target && !strcmp(target, "KeyEncryptionKey")))
			json_object_object_del(props, "error");
	}
	stages = dbx_emu_jarray(dbx_emu_jpath(props, "details"), "jobStages");
	for (i = 0; stages && i < json_object_array_length(stages); i++) {
		struct json_object *st = json_object_array_get_idx(stages, i);
		const char *ss = dbx_emu_jstr(st, "stageStatus");

		if (ss && !strcmp(ss, "WaitingForCustomerActionForKek"))
			json_object_object_add(st, "stageStatus",
					       json_object_new_string("InProgress"));
	}
}

/* The stages every Data Box import passes, in order, with portal names. */
static const char *const stage_names[][2] = {
    {"DeviceOrdered", "Ordered"},
    {"DevicePrepared", "Processed"},
    {"Dispatched", "Dispatched"},
    {"Delivered", "Delivered"},
    {"PickedUp", "Picked up"},
    {"AtAzureDC", "Received"},
    {"DataCopy", "Data copy in progress"},
    {"Completed", "Completed"},
};
#define NSTAGES ((int)(sizeof(stage_names) / sizeof(stage_names[0])))

static int stage_index(const char *name)
{
	int i;

	for (i = 0; name && i < NSTAGES; i++)
		if (!strcmp(stage_names[i][0], name))
			return i;
	return -1;
}

/* The job's jobStages when it holds every standard stage, else a fresh list. */
static struct json_object *standard_stages(struct json_object *details)
{
	struct json_object *st = dbx_emu_jarray(details, "jobStages"), *fresh;
	int seen = 0, i;
	size_t k;

	for (k = 0; st && k < json_object_array_length(st); k++)
		if (stage_index(dbx_emu_jstr(json_object_array_get_idx(st, k), "stageName")) >= 0)
			seen++;
	if (seen == NSTAGES)
		return st;
	fresh = json_object_new_array();
	for (i = 0; i < NSTAGES; i++) {
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "stageName", json_object_new_string(stage_names[i][0]));
		json_object_object_add(o, "displayName", json_object_new_string(stage_names[i][1]));
		json_object_object_add(o, "stageStatus", json_object_new_string("None"));
		json_object_object_add(o, "jobStageDetails", NULL);
		json_object_object_add(o, "delayInformation", json_object_new_array());
		json_object_array_add(fresh, o);
	}
	json_object_object_add(details, "jobStages", fresh);
	return fresh;
}

/*
 * Move job to one of the standard stages (admin "advance"): earlier stages
 * Succeeded, this one InProgress, later ones None. Entering DataCopy the
 * service re-checks the customer-managed key: an unusable key sets
 * properties.error and the stage waits (WaitingForCustomerActionForKek);
 * a usable one clears an earlier key error. Returns 0, or -1 for a status
 * that is not a standard stage or a job without properties.
 */
int dbx_emu_job_advance(struct dbx_emu *e, struct json_object *job, const char *status)
{
	struct json_object *props = dbx_emu_jpath(job, "properties"), *details, *stages;
	int cur = stage_index(status);
	enum dbx_emu_ssem rc = DBX_EMU_SSEM_OK;
	char now[64];
	size_t k;

	if (cur < 0 || !props)
		return -1;
	details = dbx_emu_jpath(props, "details");
	if (!details) {
		details = json_object_new_object();
		json_object_object_add(props, "details", details);
	}
	json_object_object_add(props, "status", json_object_new_string(status));
	if (cur == stage_index("DataCopy"))
		rc = dbx_emu_cmk_check(e, job, "management.azure.com");
	dbx_emu_iso_now(now, sizeof(now));
	stages = standard_stages(details);
	for (k = 0; k < json_object_array_length(stages); k++) {
		struct json_object *st = json_object_array_get_idx(stages, k);
		int i = stage_index(dbx_emu_jstr(st, "stageName"));
		const char *ss = i < cur ? "Succeeded" : i == cur ? "InProgress" : "None";

		if (i < 0)
			continue;
		if (i == cur && rc != DBX_EMU_SSEM_OK)
			ss = "WaitingForCustomerActionForKek";
		json_object_object_add(st, "stageStatus", json_object_new_string(ss));
		if (i == cur || (i < cur && !dbx_emu_jstr(st, "stageTime")))
			json_object_object_add(st, "stageTime", json_object_new_string(now));
		else if (i > cur)
			json_object_object_del(st, "stageTime");
	}
	if (rc != DBX_EMU_SSEM_OK)
		dbx_emu_kek_error_set(job, rc);
	else if (cur == stage_index("DataCopy"))
		dbx_emu_kek_error_clear(job);
	return 0;
}
