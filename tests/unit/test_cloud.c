/*
 * test_cloud.c: the cloud table (backend/rules/cloud.c). `-o cloud=NAME` picks
 * the hosts every request goes to and the Key Vault suffix key URLs are
 * validated against, so a typo here sends tokens to the wrong place.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "databoxfs/cloud.h"

static void test_lookup_case_insensitive(void **state)
{
	const struct dbx_cloud *c = dbx_cloud_find("azurecloud");

	(void)state;
	assert_non_null(c);
	assert_ptr_equal(c, dbx_cloud_default());
	assert_ptr_equal(dbx_cloud_find("AZUREUSGOVERNMENT"), dbx_cloud_find("AzureUSGovernment"));
	assert_non_null(dbx_cloud_find("AzureChinaCloud"));
	assert_string_equal(dbx_cloud_find("azurechinacloud")->name, "AzureChinaCloud");
}

static void test_unknown(void **state)
{
	(void)state;
	assert_null(dbx_cloud_find("AzureGermanCloud")); /* closed in 2021 */
	assert_null(dbx_cloud_find(""));
	assert_null(dbx_cloud_find("AzureCloud "));
	assert_null(dbx_cloud_find(NULL));
}

static void test_endpoints(void **state)
{
	static const struct {
		const char *name, *arm, *login, *vault, *mhsm, *arm_scope, *vault_scope;
	} want[] = {
	    {"AzureCloud", "management.azure.com", "login.microsoftonline.com", "vault.azure.net",
	     "managedhsm.azure.net", "https://management.azure.com/.default",
	     "https://vault.azure.net/.default"},
	    {"AzureUSGovernment", "management.usgovcloudapi.net", "login.microsoftonline.us",
	     "vault.usgovcloudapi.net", "managedhsm.usgovcloudapi.net",
	     "https://management.usgovcloudapi.net/.default",
	     "https://vault.usgovcloudapi.net/.default"},
	    {"AzureChinaCloud", "management.chinacloudapi.cn", "login.chinacloudapi.cn",
	     "vault.azure.cn", "managedhsm.azure.cn",
	     "https://management.chinacloudapi.cn/.default", "https://vault.azure.cn/.default"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		const struct dbx_cloud *c = dbx_cloud_find(want[i].name);

		assert_non_null(c);
		assert_string_equal(c->arm_host, want[i].arm);
		assert_string_equal(c->login_host, want[i].login);
		assert_string_equal(c->vault_suffix, want[i].vault);
		assert_string_equal(c->mhsm_suffix, want[i].mhsm);
		assert_string_equal(c->arm_scope, want[i].arm_scope);
		assert_string_equal(c->vault_scope, want[i].vault_scope);
		assert_int_not_equal(c->vault_suffix[0], '.'); /* no leading dot */
	}
}

static void test_enumeration(void **state)
{
	size_t n = 0;

	(void)state;
	for (; dbx_cloud_at(n); n++)
		assert_ptr_equal(dbx_cloud_find(dbx_cloud_at(n)->name), dbx_cloud_at(n));
	assert_int_equal(n, 3);
	assert_ptr_equal(dbx_cloud_at(0), dbx_cloud_default());
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_lookup_case_insensitive),
	    cmocka_unit_test(test_unknown),
	    cmocka_unit_test(test_endpoints),
	    cmocka_unit_test(test_enumeration),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
