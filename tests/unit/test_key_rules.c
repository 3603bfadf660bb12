/*
 * test_key_rules.c: the key rules of validate.h, the one table that both
 * the write preflight (the first broken rule is its Ssem code) and the
 * catalogue's `eligible` files (every broken rule) use (docs/formats.md,
 * "Validation" and "The catalogue").
 *
 * Table-driven: each row is a vault or key as Key Vault shows it and the
 * exact `eligible` text and first Ssem code a user would see.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "databoxfs/validate.h"

#define NOW	    ((time_t)1800000000) /* 2027-01-15T08:00:00Z */
#define OPS	    (DBX_KEY_OP_WRAP | DBX_KEY_OP_UNWRAP)
#define TYPE_CODE   "SsemUserErrorEncryptionKeyTypeNotSupported"
#define PURGE_CODE  "SsemUserErrorSoftDeleteAndPurgeProtectionNotEnabled"
#define DIS_CODE    "SsemUserErrorEncryptionKeyDisabled"
#define EXPIRE_CODE "SsemUserErrorEncryptionKeyExpired"

static struct dbx_key_facts good(void)
{
	struct dbx_key_facts f = {
	    .vault_known = true,
	    .soft_delete = true,
	    .purge_protection = true,
	    .key_known = true,
	    .kty = "RSA",
	    .bits = 3072,
	    .enabled = true,
	    .ops_known = true,
	    .ops = OPS,
	};

	return f;
}

static void test_rules(void **state)
{
	struct {
		const char *what;
		struct dbx_key_facts f;
		const char *eligible, *first_code;
	} rows[] = {
	    {"good", good(), "yes\n", NULL},
	    {"rsa-hsm 2048", good(), "yes\n", NULL},
	    {"rsa 1024", good(), "no: RSA of 1024 bits (Data Box needs at least 2048)\n",
	     TYPE_CODE},
	    {"ec", good(), "no: EC key (Data Box needs RSA or RSA-HSM)\n", TYPE_CODE},
	    {"disabled", good(), "no: disabled\n", DIS_CODE},
	    {"expired", good(), "no: expired at 2027-01-15T07:59:59Z\n", EXPIRE_CODE},
	    {"not yet", good(), "no: not valid before 2030-01-01T00:00:00Z\n", DIS_CODE},
	    {"no unwrap", good(), "no: key_ops lacks unwrapKey\n", TYPE_CODE},
	    {"no ops", good(), "no: key_ops lacks wrapKey and unwrapKey\n", TYPE_CODE},
	    {"ops absent", good(), "yes\n", NULL},
	    {"no purge", good(), "no: purge protection off\n", PURGE_CODE},
	    {"everything", good(),
	     "no: soft delete off; purge protection off; disabled; expired at "
	     "2027-01-15T07:59:59Z; EC key (Data Box needs RSA or RSA-HSM); key_ops lacks "
	     "wrapKey and unwrapKey\n",
	     PURGE_CODE},
	    {"vault unknown", good(), "yes\n", NULL},
	    {"key unknown, vault weak", good(), "no: soft delete off\n", PURGE_CODE},
	};

	(void)state;
	rows[1].f.kty = "RSA-HSM";
	rows[1].f.bits = 2048;
	rows[2].f.bits = 1024;
	rows[3].f.kty = "EC";
	rows[3].f.bits = 0;
	rows[4].f.enabled = false;
	rows[5].f.exp = NOW - 1;
	rows[6].f.nbf = 1893456000;
	rows[7].f.ops = DBX_KEY_OP_WRAP;
	rows[8].f.ops = 0;
	rows[9].f.ops_known = false;
	rows[9].f.ops = 0;
	rows[10].f.purge_protection = false;
	rows[11].f.soft_delete = false;
	rows[11].f.purge_protection = false;
	rows[11].f.enabled = false;
	rows[11].f.exp = NOW - 1;
	rows[11].f.kty = "EC";
	rows[11].f.bits = 0;
	rows[11].f.ops = 0;
	rows[12].f.vault_known = false;
	rows[12].f.soft_delete = false;
	rows[13].f.key_known = false;
	rows[13].f.soft_delete = false;
	rows[13].f.purge_protection = true;
	rows[13].f.enabled = false;

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct dbx_rule_fail fail[DBX_KEY_RULES_MAX];
		char buf[1024];
		size_t n;

		dbx_key_rules_eligible(&rows[i].f, NOW, buf, sizeof(buf));
		if (strcmp(buf, rows[i].eligible) != 0)
			fail_msg("%s: eligible \"%s\", wanted \"%s\"", rows[i].what, buf,
				 rows[i].eligible);
		n = dbx_key_rules_check(&rows[i].f, NOW, fail, DBX_KEY_RULES_MAX);
		if (!rows[i].first_code) {
			assert_int_equal(n, 0);
			continue;
		}
		assert_true(n > 0);
		assert_string_equal(fail[0].code, rows[i].first_code);
	}
}

/* A short buffer is cut, never overrun, and stays a string; cap 1 gives "". */
static void test_eligible_truncates(void **state)
{
	struct dbx_key_facts f = good();
	char buf[8];

	(void)state;
	f.enabled = false;
	f.kty = "EC";
	memset(buf, 'x', sizeof(buf));
	dbx_key_rules_eligible(&f, NOW, buf, 6);
	assert_string_equal(buf, "no: d");
	assert_int_equal(buf[6], 'x');
	dbx_key_rules_eligible(&f, NOW, buf, 1);
	assert_string_equal(buf, "");
}

/* check() counts every broken rule even when out holds fewer. */
static void test_check_counts_past_cap(void **state)
{
	struct dbx_key_facts f = good();
	struct dbx_rule_fail one;

	(void)state;
	f.enabled = false;
	f.bits = 1024;
	assert_int_equal(dbx_key_rules_check(&f, NOW, &one, 1), 2);
	assert_string_equal(one.code, DIS_CODE);
	assert_string_equal(one.reason, "disabled");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rules),
	    cmocka_unit_test(test_eligible_truncates),
	    cmocka_unit_test(test_check_counts_past_cap),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
