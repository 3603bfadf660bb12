/*
 * validate.h: the local rules a written value must pass before any request
 * is sent (docs/formats.md, "Validation"). Pure functions: no network, no allocation beyond
 * the caller's buffers, safe on any byte string. A rejected value fills
 * struct dbx_error with err DBX_EINVAL, the Ssem code the service would
 * answer (e.g. SsemUserErrorKeyVaultUrlInvalidHost) and a message that
 * names the offending part. A host that fails these rules is never
 * contacted.
 */
#ifndef DATABOXFS_VALIDATE_H
#define DATABOXFS_VALIDATE_H

#include <stddef.h>
#include <stdbool.h>
#include <time.h>

#include "databoxfs/err.h"
#include "databoxfs/cloud.h"

#define DBX_VAULT_NAME_MAX  24
#define DBX_KEY_NAME_MAX    127
#define DBX_KEY_VERSION_LEN 32
#define DBX_KEY_URL_MAX	    512

/* A key URL that passed validation, in canonical form. */
struct dbx_key_url {
	char vault[DBX_VAULT_NAME_MAX + 1];    /* vault name, lower case */
	char host[DBX_VAULT_NAME_MAX + 64];    /* "<vault>.<suffix>", lower case */
	char name[DBX_KEY_NAME_MAX + 1];       /* key name as written */
	char version[DBX_KEY_VERSION_LEN + 1]; /* lower-case hex, or "" for "latest" */
	char url[DBX_KEY_URL_MAX];	       /* https://<host>/keys/<name>[/<version>] */
};

/*
 * Strip a written value sysfs-style: surrounding blanks (space, tab) and at
 * most one trailing newline. The result must be one line: an embedded NUL,
 * CR or LF left after stripping is DBX_EINVAL. On success *out points into
 * buf and *out_len is its length (no NUL is written).
 */
DBX_MUST_CHECK enum dbx_err dbx_value_trim(const char *buf, size_t len, const char **out,
					   size_t *out_len, struct dbx_error *err);

/*
 * Validate a key URL for cloud: scheme https (case-insensitive; else
 * SsemUserErrorKeyVaultUrlWithInvalidScheme); host "<vault>.<cloud vault
 * suffix>" (case-insensitive; Managed HSM, other clouds' suffixes, IP
 * literals, trailing dots, non-ASCII or punycode labels: else
 * SsemUserErrorKeyVaultUrlInvalidHost); path /keys/<name>[/<version>] with a
 * vault name of 3-24 of [A-Za-z0-9-] starting with a letter, ending with a
 * letter or digit, no "--"; key name 1-127 of [A-Za-z0-9-]; version 32 hex
 * digits; no user info, port, query, fragment, percent-encoding or control
 * characters (else SsemUserErrorInvalidKeyVaultUrl).
 */
DBX_MUST_CHECK enum dbx_err dbx_validate_key_url(const char *value, size_t len,
						 const struct dbx_cloud *cloud,
						 struct dbx_key_url *out, struct dbx_error *err);

enum dbx_identity_kind {
	DBX_IDENTITY_NONE,
	DBX_IDENTITY_SYSTEM,
	DBX_IDENTITY_USER,
};

struct dbx_identity {
	enum dbx_identity_kind kind;
	/* For DBX_IDENTITY_USER: the canonical ID
	 * /subscriptions/<guid>/resourceGroups/<rg>/providers/Microsoft.ManagedIdentity/userAssignedIdentities/<name>
	 */
	char id[512];
};

/* "SystemAssigned", "None" (case-insensitive) or a user-assigned identity resource ID. */
DBX_MUST_CHECK enum dbx_err dbx_validate_identity(const char *value, size_t len,
						  struct dbx_identity *out, struct dbx_error *err);

enum dbx_kek_choice {
	DBX_KEK_CHOICE_MICROSOFT,
	DBX_KEK_CHOICE_CUSTOMER,
};

/* "MicrosoftManaged" or "CustomerManaged", case-insensitive. */
DBX_MUST_CHECK enum dbx_err dbx_validate_kek_type(const char *value, size_t len,
						  enum dbx_kek_choice *out, struct dbx_error *err);

/* The fields an encryption.json write sets; has_* says which were given. */
struct dbx_encryption_change {
	bool has_kek_type, has_key_url, has_identity;
	enum dbx_kek_choice kek_type;
	bool key_url_null; /* "key_url": null or "" */
	struct dbx_key_url key_url;
	struct dbx_identity identity;
};

/* The settings a write changes: each is its own file and an encryption.json key. */
enum dbx_setting {
	DBX_SETTING_KEK_TYPE, /* encryption_type */
	DBX_SETTING_KEY_URL,  /* key_url */
	DBX_SETTING_IDENTITY, /* identity */
};

/*
 * Validate value as setting (dbx_validate_kek_type, _key_url with cloud,
 * _identity) into its field of *ch, setting its has_* flag on success and
 * clearing it on refusal; other fields of *ch are left alone.
 */
DBX_MUST_CHECK enum dbx_err dbx_validate_setting(enum dbx_setting setting, const char *value,
						 size_t len, const struct dbx_cloud *cloud,
						 struct dbx_encryption_change *ch,
						 struct dbx_error *err);

/*
 * Parse an encryption.json write: one JSON object with any of
 * encryption_type, key_url, identity (strings, key_url may be null);
 * key_vault and principal_id are derived and ignored; any other key, a
 * duplicate key, trailing garbage or a wrong type is DBX_EINVAL. Each
 * given value passes the same rule as its own file.
 */
DBX_MUST_CHECK enum dbx_err dbx_validate_encryption_json(const char *value, size_t len,
							 const struct dbx_cloud *cloud,
							 struct dbx_encryption_change *out,
							 struct dbx_error *err);

/*
 * ---- The key rules: one table, two users ----
 *
 * What Data Box requires of a customer-managed key and its vault
 * (docs/formats.md, "Validation"), as one table in validate.c: the write
 * preflight (keyvault.c) fails with the first rule a key breaks, and the
 * catalogue's `eligible` files list every rule it breaks. Facts that are
 * not known (a vault or key not readable) pass their rules: the service
 * then decides.
 */

/* The operations of key_ops Data Box needs. */
enum {
	DBX_KEY_OP_WRAP = 1,
	DBX_KEY_OP_UNWRAP = 2,
};

#define DBX_KEY_MIN_RSA_BITS 2048

struct dbx_key_facts {
	bool vault_known; /* soft_delete and purge_protection are the vault's */
	bool soft_delete, purge_protection;
	bool key_known;	 /* the fields below come from the key's GET */
	const char *kty; /* "RSA", "RSA-HSM", "EC", ... */
	unsigned bits;	 /* bit length of n, 0 when not RSA */
	bool enabled;
	time_t nbf, exp; /* 0 when absent */
	bool ops_known;	 /* key_ops was sent */
	unsigned ops;	 /* DBX_KEY_OP_* found in key_ops */
};

/* One broken rule: the Ssem code the service answers, and why, in a few words. */
struct dbx_rule_fail {
	const char *code;
	char reason[160];
};

#define DBX_KEY_RULES_MAX 8 /* rows of the table: the most one key can break */

/*
 * Check f against every rule at time now, in the service's order: the
 * vault's (soft delete, purge protection), then the key's (enabled,
 * expiry, not-before, type, size, key_ops). Writes up to cap broken rules
 * to out and returns how many rules f breaks.
 */
size_t dbx_key_rules_check(const struct dbx_key_facts *f, time_t now, struct dbx_rule_fail *out,
			   size_t cap);

/*
 * The `eligible` file for f at now: "yes\n", or "no: " and every reason,
 * separated by "; ", and "\n". Truncated to cap (always NUL-terminated).
 */
void dbx_key_rules_eligible(const struct dbx_key_facts *f, time_t now, char *buf, size_t cap);

#endif
