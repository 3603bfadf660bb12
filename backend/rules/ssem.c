/*
 * ssem.c: the Data Box customer-managed-key error table, as data, and its
 * lookup.
 *
 * dbx_ssem_table is the "Troubleshoot errors" table of the source document
 * (docs/ssem-table.md), every row in
 * document order, cell text verbatim (markdown links, backticks and HTML
 * included; surrounding cell padding trimmed). The only edits are noted
 * where they are made. How the errors file shows a row (remedy as plain
 * text, the block format) is errors.c's part.
 */
#include <string.h>

#include "databoxfs/ssem.h"

/* The resolution cell shared by the two "...DetailsNotFound" rows (identical in the document). */
#define DELETED_OR_MIGRATED_VAULT                                                                  \
	"If you deleted the key vault, you can't recover the customer-managed key.  If you "       \
	"migrated the key vault to a different tenant, see [Change a key vault tenant ID after a " \
	"subscription move](../key-vault/general/move-subscription.md). If you deleted the key "   \
	"vault:<ol><li>Yes, if it is in the purge-protection duration, using the steps at "        \
	"[Recover a key "                                                                          \
	"vault](../key-vault/general/"                                                             \
	"key-vault-recovery.md?tabs=azure-powershell#key-vault-powershell).</li><li>No, if it is " \
	"beyond the purge-protection duration.</li></ol><br>Else if the key vault underwent a "    \
	"tenant migration, yes, it can be recovered using one of the below steps: <ol><li>Revert " \
	"the key vault back to the old tenant.</li><li>Set `Identity = None` and then set the "    \
	"value back to `Identity = SystemAssigned`. This deletes and recreates the identity once " \
	"the new identity has been created. Enable `Get`, `WrapKey`, and `UnwrapKey` permissions " \
	"to the new identity in the key vault's Access policy.</li></ol>"

/* One designated initializer per row reads like the document's table: kept out of clang-format. */
/* clang-format off */
const struct dbx_ssem_row dbx_ssem_table[] = {
	{
		.code = "SsemUserErrorEncryptionKeyDisabled",
		.details = "Could not fetch the passkey as the customer-managed key is disabled.",
		.resolution = "Yes, by enabling the key version.",
		.recoverable = DBX_RECOVERABLE_YES,
	},
	{
		.code = "SsemUserErrorEncryptionKeyExpired",
		.details = "Could not fetch the passkey as the customer-managed key has expired.",
		.resolution = "Yes, by enabling the key version.",
		/* The document says "Yes"; in practice a new key version or a later expiry date. */
		.recoverable = DBX_RECOVERABLE_YES,
	},
	{
		.code = "SsemUserErrorKeyDetailsNotFound",
		.details = "Could not fetch the passkey as the customer-managed key could not be found.",
		.resolution = DELETED_OR_MIGRATED_VAULT,
		/* Yes within the purge-protection window or after a tenant move, no past it. */
		.recoverable = DBX_RECOVERABLE_DEPENDS,
	},
	{
		.code = "SsemUserErrorKeyVaultBadRequestException",
		.details = "Applied a customer-managed key but the key access has not been granted or "
			   "has been revoked, or unable to access key vault due to firewall being "
			   "enabled.",
		.resolution = "Add the identity selected to your key vault to enable access to the "
			      "customer-managed key. If key vault has firewall enabled, switch to a "
			      "system assigned identity and then add a customer-managed key. For more "
			      "information, see how to [Enable the key](#enable-key).",
		.recoverable = DBX_RECOVERABLE_YES,
	},
	{
		.code = "SsemUserErrorKeyVaultDetailsNotFound",
		.details = "Could not fetch the passkey as the associated key vault for the "
			   "customer-managed key could not be found.",
		.resolution = DELETED_OR_MIGRATED_VAULT,
		/* Same cell as KeyDetailsNotFound: depends on the purge-protection window. */
		.recoverable = DBX_RECOVERABLE_DEPENDS,
	},
	{
		.code = "SsemUserErrorSystemAssignedIdentityAbsent",
		.details = "Could not fetch the passkey as the customer-managed key could not be found.",
		/*
		 * The source has "key vaultâ€™s access policy": UTF-8 "’" decoded as
		 * Windows-1252 (mojibake). We store the intended "vault's", spelled with
		 * an ASCII apostrophe like the other rows of the table.
		 */
		.resolution = "Yes, check if: <ol><li>Key vault still has the MSI in the access "
			      "policy.</li><li>Identity is of type System assigned.</li><li>Enable "
			      "`Get`, `WrapKey`, and `UnwrapKey` permissions to the identity in the key "
			      "vault's access policy. These permissions must remain for the lifetime of "
			      "the order. They're used during order creation and at the beginning of "
			      "the Data Copy phase.</li></ol>",
		.recoverable = DBX_RECOVERABLE_YES,
	},
	{
		.code = "SsemUserErrorUserAssignedLimitReached",
		.details = "Adding new User Assigned Identity failed as you have reached the limit on "
			   "the total number of user assigned identities that can be added.",
		.resolution = "Retry the operation with fewer user identities, or remove some "
			      "user-assigned identities from the resource before retrying.",
		.recoverable = DBX_RECOVERABLE_YES,
	},
	{
		.code = "SsemUserErrorCrossTenantIdentityAccessForbidden",
		.details = "Managed identity access operation failed. <br> Note: This error can occur "
			   "when a subscription is moved to different tenant. The customer has to "
			   "manually move the identity to the new tenant.",
		.resolution = "Try adding a different user-assigned identity to your key vault to "
			      "enable access to the customer-managed key. Or move the identity to the "
			      "new tenant under which the subscription is present. For more "
			      "information, see how to [Enable the key](#enable-key).",
		/* Another identity, or moving this one to the new tenant, restores access. */
		.recoverable = DBX_RECOVERABLE_YES,
	},
	{
		.code = "SsemUserErrorKekUserIdentityNotFound",
		.details = "Applied a customer-managed key but the user assigned identity that has "
			   "access to the key was not found in the active directory. <br> Note: This "
			   "error can occur when a user identity is deleted from Azure.",
		.resolution = "Try adding a different user-assigned identity to your key vault to "
			      "enable access to the customer-managed key. For more information, see "
			      "how to [Enable the key](#enable-key).",
		/* The deleted identity is gone, but a different one recovers the order. */
		.recoverable = DBX_RECOVERABLE_YES,
	},
	{
		.code = "SsemUserErrorUserAssignedIdentityAbsent",
		.details = "Could not fetch the passkey as the customer-managed key could not be found.",
		.resolution = "Could not access the customer-managed key. Either the User Assigned "
			      "Identity (UAI) associated with the key is deleted or the UAI type has "
			      "changed.",
		/* The cell states the cause only; setting another identity on the order recovers it. */
		.recoverable = DBX_RECOVERABLE_YES,
	},
	{
		/* The document lists this code twice, with reworded text; the lookup returns the first. */
		.code = "SsemUserErrorKeyVaultBadRequestException",
		.details = "Applied a customer-managed key, but key access has not been granted or has "
			   "been revoked, or the key vault couldn't be accessed because a firewall is "
			   "enabled.",
		.resolution = "Add the identity selected to your key vault to enable access to the "
			      "customer-managed key. If the key vault has a firewall enabled, switch to "
			      "a system-assigned identity and then add a customer-managed key. For more "
			      "information, see how to [Enable the key](#enable-key).",
		.recoverable = DBX_RECOVERABLE_YES,
	},
	{
		.code = "SsemUserErrorEncryptionKeyTypeNotSupported",
		.details = "The encryption key type isn't supported for the operation.",
		.resolution = "Enable a supported encryption type on the key - for example, RSA or "
			      "RSA-HSM. For more information, see [Key types, algorithms, and "
			      "operations](../key-vault/keys/about-keys-details.md).",
		.recoverable = DBX_RECOVERABLE_YES,
	},
	{
		.code = "SsemUserErrorSoftDeleteAndPurgeProtectionNotEnabled",
		.details = "Key vault does not have soft delete or purge protection enabled.",
		.resolution = "Ensure that both soft delete and purge protection are enabled on the key "
			      "vault.",
		.recoverable = DBX_RECOVERABLE_YES,
	},
	{
		/* The document's code cell reads "SsemUserErrorInvalidKeyVaultUrl<br>(Command-line only)". */
		.code = "SsemUserErrorInvalidKeyVaultUrl",
		.details = "An invalid key vault URI was used.",
		.resolution = "Get the correct key vault URI. To get the key vault URI, use "
			      "[Get-AzKeyVault](/powershell/module/az.keyvault/get-azkeyvault) in "
			      "PowerShell.",
		.recoverable = DBX_RECOVERABLE_YES,
	},
	{
		.code = "SsemUserErrorKeyVaultUrlWithInvalidScheme",
		.details = "Only HTTPS is supported for passing the key vault URI.",
		.resolution = "Pass the key vault URI over HTTPS.",
		.recoverable = DBX_RECOVERABLE_YES,
	},
	{
		.code = "SsemUserErrorKeyVaultUrlInvalidHost",
		.details = "The key vault URI host is not an allowed host in the geographical region.",
		.resolution = "In the public cloud, the key vault URI should end with "
			      "`vault.azure.net`. In the Azure Government cloud, the key vault URI "
			      "should end with `vault.usgovcloudapi.net`.",
		.recoverable = DBX_RECOVERABLE_YES,
	},
	{
		.code = "Generic error",
		.details = "Could not fetch the passkey.",
		.resolution = "This error is a generic error. Contact Microsoft Support to troubleshoot "
			      "the error and determine the next steps.",
		/* Unknown cause: only support can tell. */
		.recoverable = DBX_RECOVERABLE_DEPENDS,
	},
};
/* clang-format on */

const size_t dbx_ssem_table_len = sizeof(dbx_ssem_table) / sizeof(dbx_ssem_table[0]);

const struct dbx_ssem_row *dbx_ssem_lookup(const char *code)
{
	if (!code)
		return NULL;
	for (size_t i = 0; i < dbx_ssem_table_len; i++) {
		if (strcmp(dbx_ssem_table[i].code, code) == 0)
			return &dbx_ssem_table[i];
	}
	return NULL;
}

const struct dbx_ssem_row *dbx_ssem_generic(void)
{
	return &dbx_ssem_table[dbx_ssem_table_len - 1];
}
