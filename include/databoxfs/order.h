/*
 * order.h: one Data Box order (a Microsoft.DataBox/jobs resource), as the
 * filesystem sees it.
 *
 * backend/azure/order.c is the only place that reads or builds job JSON: it maps
 * a JobResource object to a struct dbx_order, parses ARM resource IDs (case
 * insensitively: list responses spell "resourcegroups"), and, for writes,
 * builds PATCH bodies. Everything else works on this struct.
 */
#ifndef DATABOXFS_ORDER_H
#define DATABOXFS_ORDER_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "databoxfs/err.h"
#include "databoxfs/errors.h" /* struct dbx_order_problem */

struct json_object;

enum dbx_kek_type {
	DBX_KEK_MICROSOFT =
	    0,		  /* "MicrosoftManaged", also when keyEncryptionKey or kekType is absent */
	DBX_KEK_CUSTOMER, /* "CustomerManaged" */
};

struct dbx_order {
	char *id;	      /* ARM ID as sent */
	char *subscription;   /* parsed from id */
	char *resource_group; /* parsed from id, spelling as sent */
	char *name;
	char *location;
	char *sku;    /* sku.name: DataBox, DataBoxHeavy, DataBoxDisk, ... */
	char *status; /* properties.status, or NULL */

	bool has_details; /* properties.details was present: the key fields below are known */
	enum dbx_kek_type kek_type;
	char *kek_url;		 /* keyEncryptionKey.kekUrl, or NULL */
	char *kek_vault_id;	 /* keyEncryptionKey.kekVaultResourceID, or NULL */
	char *kek_identity_type; /* keyEncryptionKey.identityProperties.type, or NULL */
	char *kek_uai_id; /* keyEncryptionKey.identityProperties.userAssigned.resourceId, or NULL */

	char *identity_type; /* job identity.type; "None" when absent */
	char *principal_id;  /* job identity.principalId, or NULL */
	char *tenant_id;     /* job identity.tenantId, or NULL */
	char **uai_ids;	     /* keys of identity.userAssignedIdentities */
	size_t n_uai;

	char *last_modified; /* systemData.lastModifiedAt as sent, or NULL */
	time_t mtime;	     /* last_modified parsed (UTC), 0 when absent */

	struct dbx_order_problem *problems; /* properties.error first, then failing stages */
	size_t n_problems;

	/*
	 * NULL for an order read in full. Set only on a stub from
	 * dbx_order_malformed_stub: why the job could not be read (message,
	 * and the answer's HTTP status and request id); the stub holds only
	 * id, subscription, resource_group, name (and identity_type "None")
	 * and must never be shown or merged into a PATCH. Additive.
	 */
	struct dbx_error *malformed;
};

/*
 * Map one JobResource JSON object to a new order. Tolerates absent (or
 * null) details, keyEncryptionKey, identity, systemData and every other
 * member. DBX_EREMOTE when id or name are missing or malformed, or any
 * member read has another JSON type than the accepted one (docs/azure.md,
 * "The job resource"): err's message names the field, e.g. "malformed
 * answer from ARM: identity is an array, expected an object".
 */
DBX_MUST_CHECK enum dbx_err dbx_order_from_json(struct json_object *job, struct dbx_order **out,
						struct dbx_error *err);

/* Parse a JSON text holding one JobResource, strictly: DBX_EREMOTE for anything after it. */
DBX_MUST_CHECK enum dbx_err dbx_order_parse(const char *text, size_t len, struct dbx_order **out,
					    struct dbx_error *err);

/*
 * For a list item dbx_order_from_json refused with DBX_EREMOTE: a stub
 * order carrying only the item's id and name and why (copied into
 * ->malformed, err set to DBX_EREMOTE), so the listing can show that order
 * as unreadable. DBX_OK with *out; DBX_EREMOTE when the id or name
 * themselves are not usable (nothing to show), DBX_ENOMEM. Additive.
 */
DBX_MUST_CHECK enum dbx_err dbx_order_malformed_stub(struct json_object *job,
						     const struct dbx_error *why,
						     struct dbx_order **out);

void dbx_order_free(struct dbx_order *order);

/*
 * A deep copy of order: every string, the user-assigned identity IDs and
 * the problems are copied, so the copy is freed with dbx_order_free on its
 * own. NULL on ENOMEM. Added after the first cut of this header; additive.
 */
struct dbx_order *dbx_order_dup(const struct dbx_order *order);

/*
 * The "identity" value the filesystem shows: the user-assigned identity ID
 * when identityProperties say UserAssigned, else "SystemAssigned" when the
 * job has a system-assigned identity, else "None". Static or borrowed string.
 */
const char *dbx_order_identity(const struct dbx_order *order);

/*
 * Does the comma-separated identity type list types (an identity_type, e.g.
 * "SystemAssigned,UserAssigned") hold token? Items compare
 * case-insensitively, blanks around them ignored; NULL holds nothing.
 * Added after the first cut of this header; additive.
 */
bool dbx_order_type_has(const char *types, const char *token);

/*
 * Does the service report that the order cannot use its customer-managed
 * key: a properties.error with an Ssem code, or a stage waiting for the
 * customer's key action (WaitingForCustomerActionForKek)? Writing the key
 * again is then the documented way to have the service re-check it, so it
 * is not a no-op.
 */
bool dbx_order_kek_blocked(const struct dbx_order *order);

/*
 * Split an ARM resource ID "/subscriptions/S/resourceGroups/RG/providers/NS/TYPE/NAME"
 * (segment names case-insensitive). Each out pointer may be NULL; filled
 * strings are malloc'd. DBX_EINVAL when id does not have that shape.
 */
DBX_MUST_CHECK enum dbx_err dbx_arm_id_parse(const char *id, char **subscription,
					     char **resource_group, char **provider_type,
					     char **name);

/*
 * PATCH bodies (JobResourceUpdateParameter). Added after the first cut of
 * this header; additive.
 *
 * want is the order as it should be after the write: the caller reads the
 * order fresh, changes the fields the write touches, and names the objects
 * to send in what. DBX_PATCH_KEK sends the complete
 * properties.details.keyEncryptionKey from kek_type, kek_url, kek_vault_id,
 * kek_identity_type and kek_uai_id (URL, vault and identity only when
 * CustomerManaged); DBX_PATCH_IDENTITY sends the job identity from
 * identity_type and, when that type includes UserAssigned, uai_ids. Nothing
 * else is sent. *body is a malloc'd NUL-terminated JSON text.
 * DBX_EINVAL when what is empty, or CustomerManaged lacks kek_url or
 * kek_vault_id, or a UserAssigned key identity lacks kek_uai_id.
 */
#define DBX_PATCH_KEK	   0x1u
#define DBX_PATCH_IDENTITY 0x2u

DBX_MUST_CHECK enum dbx_err dbx_order_patch_body(const struct dbx_order *want, unsigned what,
						 char **body, struct dbx_error *err);

#endif
