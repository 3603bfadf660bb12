/*
 * cloud.c: the Azure clouds databoxfs knows (cloud.h), as one const table.
 *
 * Hosts and suffixes come from the Azure CLI's cloud table
 * (docs/azure.md, "Clouds"). Scopes are the token audiences: ARM is
 * the management host, Key Vault is the vault DNS suffix, both + "/.default".
 */
#include <stddef.h>
#include <strings.h>

#include "databoxfs/cloud.h"

static const struct dbx_cloud clouds[] = {
    {
	.name = "AzureCloud",
	.arm_host = "management.azure.com",
	.login_host = "login.microsoftonline.com",
	.vault_suffix = "vault.azure.net",
	.mhsm_suffix = "managedhsm.azure.net",
	.arm_scope = "https://management.azure.com/.default",
	.vault_scope = "https://vault.azure.net/.default",
    },
    {
	.name = "AzureUSGovernment",
	.arm_host = "management.usgovcloudapi.net",
	.login_host = "login.microsoftonline.us",
	.vault_suffix = "vault.usgovcloudapi.net",
	.mhsm_suffix = "managedhsm.usgovcloudapi.net",
	.arm_scope = "https://management.usgovcloudapi.net/.default",
	.vault_scope = "https://vault.usgovcloudapi.net/.default",
    },
    {
	.name = "AzureChinaCloud",
	.arm_host = "management.chinacloudapi.cn",
	.login_host = "login.chinacloudapi.cn",
	.vault_suffix = "vault.azure.cn",
	.mhsm_suffix = "managedhsm.azure.cn",
	.arm_scope = "https://management.chinacloudapi.cn/.default",
	.vault_scope = "https://vault.azure.cn/.default",
    },
};

const struct dbx_cloud *dbx_cloud_at(size_t i)
{
	return i < sizeof(clouds) / sizeof(clouds[0]) ? &clouds[i] : NULL;
}

const struct dbx_cloud *dbx_cloud_find(const char *name)
{
	if (!name)
		return NULL;
	for (size_t i = 0; i < sizeof(clouds) / sizeof(clouds[0]); i++) {
		if (strcasecmp(clouds[i].name, name) == 0)
			return &clouds[i];
	}
	return NULL;
}

const struct dbx_cloud *dbx_cloud_default(void)
{
	return &clouds[0];
}
