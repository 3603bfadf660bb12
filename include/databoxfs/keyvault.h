/*
 * keyvault.h: the preflight of a customer-managed-key write (docs/formats.md, "Validation").
 *
 * Before a PATCH, the mount checks what the Data Box service will check,
 * and fails with the same Ssem code: the vault exists (found by name
 * through ARM with arm.h's lookups, which also give kekVaultResourceID),
 * soft delete and purge protection are on, the key exists, is enabled,
 * inside its nbf/exp window, RSA or RSA-HSM of at least 2048 bits
 * (computed from the modulus n) whose key_ops, when sent, hold wrapKey and
 * unwrapKey (validate.h's key rules: the table the catalogue's `eligible`
 * files use too), and, where the vault uses access
 * policies, the identity that will use the key holds get, wrapKey and
 * unwrapKey. A check the admin's own credential may not perform (403) is
 * skipped and noted; the service then decides.
 */
#ifndef DATABOXFS_KEYVAULT_H
#define DATABOXFS_KEYVAULT_H

#include <stdbool.h>
#include <time.h>

#include "databoxfs/err.h"
#include "databoxfs/http.h"
#include "databoxfs/arm.h"
#include "databoxfs/cloud.h"
#include "databoxfs/validate.h"

struct dbx_keyvault;

/*
 * A new preflight client. ARM lookups (vault, identity) go through arm
 * (not owned; it must outlive kv), whose cloud and clock kv uses too;
 * Key Vault requests go through transport (full stack with auth; not
 * owned). Each public call is bounded by timeout_ms, ARM lookups included.
 * NULL on ENOMEM or when arm or transport is NULL.
 */
struct dbx_keyvault *dbx_keyvault_new(struct dbx_arm *arm, struct dbx_transport *transport,
				      uint64_t timeout_ms);
void dbx_keyvault_free(struct dbx_keyvault *kv);

struct dbx_vault_info {
	char id[512]; /* ARM resource ID: the kekVaultResourceID to send */
	char tenant_id[64];
	bool soft_delete;      /* enableSoftDelete (absent: true, the service default since 2020) */
	bool purge_protection; /* enablePurgeProtection (absent: false) */
	bool rbac;	       /* enableRbacAuthorization: access policies do not apply */
	bool policies_known;   /* the vault's accessPolicies could be read */
};

struct dbx_key_info {
	char kid[DBX_KEY_URL_MAX];
	char kty[16];
	unsigned bits; /* bit length of n, 0 when not RSA */
	bool enabled;
	time_t nbf, exp; /* 0 when absent */
	char recovery_level[64];
	bool ops_known; /* key_ops was sent */
	unsigned ops;	/* DBX_KEY_OP_* (validate.h) found in key_ops */
};

/*
 * Find the vault called name: first in subscription (the order's), then in
 * every subscription the credential can list. DBX_EINVAL with code
 * SsemUserErrorKeyVaultDetailsNotFound when no subscription has it.
 */
DBX_MUST_CHECK enum dbx_err dbx_keyvault_find_vault(struct dbx_keyvault *kv,
						    const char *subscription, const char *name,
						    struct dbx_vault_info *out,
						    struct dbx_error *err);

/* GET the key (latest version when key->version is ""). 404: SsemUserErrorKeyDetailsNotFound. */
DBX_MUST_CHECK enum dbx_err dbx_keyvault_get_key(struct dbx_keyvault *kv,
						 const struct dbx_key_url *key,
						 struct dbx_key_info *out, struct dbx_error *err);

/* Does the vault's access policy give object_id get, wrapKey and unwrapKey on keys? */
DBX_MUST_CHECK enum dbx_err dbx_keyvault_check_access(struct dbx_keyvault *kv,
						      const struct dbx_vault_info *vault,
						      const char *object_id, struct dbx_error *err);

/* principalId of a user-assigned identity. 404: SsemUserErrorKekUserIdentityNotFound. */
DBX_MUST_CHECK enum dbx_err dbx_keyvault_identity_principal(struct dbx_keyvault *kv,
							    const char *uai_id, char *principal,
							    size_t cap, struct dbx_error *err);

/* What a preflight found out, for the PATCH and for the errors file. */
struct dbx_preflight {
	struct dbx_vault_info vault;
	struct dbx_key_info key;
	char notes[1024]; /* checks skipped (403) and why, "" when none */
};

/*
 * The whole preflight for key used by principal_id (the system-assigned
 * principal, or the user-assigned identity's principal), in the order the
 * header comment lists. now is the wall clock (injectable for tests).
 */
DBX_MUST_CHECK enum dbx_err
dbx_keyvault_preflight(struct dbx_keyvault *kv, const char *subscription,
		       const struct dbx_key_url *key, const char *principal_id, time_t now,
		       struct dbx_preflight *out, struct dbx_error *err);

/*
 * The same preflight for a key reached with the user-assigned identity
 * uai_id (NULL: principal_id's, as dbx_keyvault_preflight): its principal
 * (dbx_keyvault_identity_principal, into principal/cap) is looked up at
 * the same time as the vault and the key (the key once ARM has named its
 * vault, while the vault's properties are read), and the access policies are
 * checked for it. The identity's failure comes first, then the vault's,
 * then the key's: the order of the checks, whatever answers first.
 * deadline_ms (absolute, on the arm's clock) bounds it all, so a write
 * shares its own deadline with it; 0: now + the kv's timeout.
 */
DBX_MUST_CHECK enum dbx_err
dbx_keyvault_preflight_uai(struct dbx_keyvault *kv, uint64_t deadline_ms, const char *subscription,
			   const struct dbx_key_url *key, const char *uai_id,
			   const char *principal_id, time_t now, char *principal, size_t cap,
			   struct dbx_preflight *out, struct dbx_error *err);

/*
 * dbx_keyvault_identity_principal (into principal/cap) and
 * dbx_keyvault_check_access of vault for that principal, the two lookups
 * at once; the identity's failure first. deadline_ms as
 * dbx_keyvault_preflight_uai.
 */
DBX_MUST_CHECK enum dbx_err dbx_keyvault_check_access_uai(struct dbx_keyvault *kv,
							  uint64_t deadline_ms,
							  const struct dbx_vault_info *vault,
							  const char *uai_id, char *principal,
							  size_t cap, struct dbx_error *err);

/*
 * The preflight's independent lookups (vault, key, identity) run at once,
 * on threads (the default, on); off runs them one after the other in the
 * order of the checks (identity, vault, key), a lookup whose check is not
 * reached not being sent: for a transport that answers in order.
 */
void dbx_keyvault_set_concurrent(struct dbx_keyvault *kv, bool on);

/*
 * ---- The catalogue (docs/formats.md, "The catalogue"); additive ----
 *
 * Key Vault's data plane on host "<vault>.<cloud vault suffix>" with the
 * vault-audience token, each call bounded by the kv's timeout. A 403 is
 * DBX_EACCES (the credential may not list or create: err says why), a
 * field of the wrong type DBX_EREMOTE "malformed" naming it.
 */

/* A key (name) or a version of one (name: the 32-hex version) of a list, with its attributes. */
struct dbx_key_version {
	char name[DBX_KEY_NAME_MAX + 1];
	bool enabled;
	time_t nbf, exp; /* 0 when absent */
};

/* Called per item; non-zero stops the listing (DBX_OK). */
typedef int (*dbx_keyvault_key_cb)(void *ctx, const struct dbx_key_version *item);

/* GET https://<vault>/keys, all pages (maxresults=25). */
DBX_MUST_CHECK enum dbx_err dbx_keyvault_list_keys(struct dbx_keyvault *kv, const char *vault,
						   dbx_keyvault_key_cb cb, void *ctx,
						   struct dbx_error *err);

/* GET https://<vault>/keys/<key>/versions, all pages. */
DBX_MUST_CHECK enum dbx_err dbx_keyvault_list_versions(struct dbx_keyvault *kv, const char *vault,
						       const char *key, dbx_keyvault_key_cb cb,
						       void *ctx, struct dbx_error *err);

/*
 * POST https://<vault>/keys/<key>/create: an RSA key of bits (2048, 3072
 * or 4096) with key_ops wrapKey and unwrapKey; a new version when the key
 * exists. *out is the new version (out->kid its URL). DBX_EINVAL for a
 * bad name or size (nothing sent). Never resent after a 5xx.
 */
DBX_MUST_CHECK enum dbx_err dbx_keyvault_create_key(struct dbx_keyvault *kv, const char *vault,
						    const char *key, unsigned bits,
						    struct dbx_key_info *out,
						    struct dbx_error *err);

#endif
