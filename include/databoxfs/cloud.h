/*
 * cloud.h: the Azure clouds databoxfs knows, and their endpoints.
 *
 * A cloud fixes the ARM host, the Entra ID authority, the Key Vault DNS
 * suffix and the token scopes for both audiences. Values come from the
 * Azure CLI's cloud table (docs/azure.md, "Clouds").
 */
#ifndef DATABOXFS_CLOUD_H
#define DATABOXFS_CLOUD_H

#include <stddef.h>

struct dbx_cloud {
	const char *name;	  /* "AzureCloud" */
	const char *arm_host;	  /* "management.azure.com" */
	const char *login_host;	  /* "login.microsoftonline.com" */
	const char *vault_suffix; /* "vault.azure.net" (no leading dot) */
	const char *mhsm_suffix;  /* "managedhsm.azure.net" */
	const char *arm_scope;	  /* "https://management.azure.com/.default" */
	const char *vault_scope;  /* "https://vault.azure.net/.default" */
};

/* The cloud called name (case-insensitive), or NULL. */
const struct dbx_cloud *dbx_cloud_find(const char *name);

/* The i-th known cloud (0, 1, ...), NULL past the last: for code that must consider them all. */
const struct dbx_cloud *dbx_cloud_at(size_t i);

/* The public cloud, the default. */
const struct dbx_cloud *dbx_cloud_default(void);

#endif
