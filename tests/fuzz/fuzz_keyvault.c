/*
 * fuzz_keyvault.c: libFuzzer target over the answers of the Key Vault
 * preflight (keyvault.h) and of the ARM lookups it is built on (arm.h):
 * Key Vault key JSON with the modulus decode, a vault found by name
 * (Resources - List over the subscriptions), a vault's properties and
 * access policies, a user-assigned identity's principal. The answers come
 * from the scripted transport of fuzz_script.h, through the retry layer,
 * on a fake clock.
 *
 * The first line of an input names the call: "key", "keyv" (a versioned
 * key URL), "find", "access", "uai", "preflight", "armfind", "armvault",
 * "armuai"; anything else picks one by its first byte. The rest is the
 * script of answers.
 *
 * Properties checked beyond "no crash, no sanitizer report, no leak":
 * requests go only to https on the ARM host or on the key's vault; no
 * call returns past its deadline; a failure has a one-line message; a key
 * read is the one asked for, and its size is the bit length of the
 * modulus as OpenSSL decodes it; a vault found has an ID that fits; a
 * principal is "" after any failure.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>
#include <openssl/bn.h>
#include <openssl/evp.h>

#include "databoxfs/arm.h"
#include "databoxfs/keyvault.h"
#include "fuzz_script.h"

#define TARGET "fuzz_keyvault"
#define SUB    "00000000-1111-2222-3333-444444444444"
#define VAULT  "myvault"
#define VHOST  "myvault.vault.azure.net"
#define VAULTID                                                                                    \
	"/subscriptions/" SUB "/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/" VAULT
#define UAI                                                                                        \
	"/subscriptions/" SUB "/resourceGroups/rg/providers/Microsoft.ManagedIdentity/"            \
	"userAssignedIdentities/uai1"
#define PRINCIPAL "11111111-2222-3333-4444-555555555555"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const ops[] = {"key",       "keyv",	  "find",     "access", "uai",
				  "preflight", "armfind", "armvault", "armuai"};

static bool url_ok(void *ctx, const char *url)
{
	size_t n = strlen("https://" VHOST);

	if (dbx_arm_url_is_arm(ctx, url))
		return true;
	return strncasecmp(url, "https://" VHOST, n) == 0 && (url[n] == '/' || url[n] == '?');
}

/* Bit length of the base64url text n as OpenSSL decodes it; -1 when it is not base64url. */
static int openssl_bits(const char *n)
{
	size_t len = strlen(n), pad;
	char *std;
	unsigned char *bin;
	int got, bits = -1;
	BIGNUM *bn;

	while (len > 0 && n[len - 1] == '=')
		len--;
	if (len % 4 == 1 ||
	    strspn(n, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") < len)
		return -1;
	pad = (4 - len % 4) % 4;
	std = malloc(len + pad + 1);
	bin = malloc((len + pad) / 4 * 3 + 1);
	if (!std || !bin)
		abort();
	for (size_t i = 0; i < len; i++)
		std[i] = n[i] == '-' ? '+' : n[i] == '_' ? '/' : n[i];
	memset(std + len, '=', pad);
	std[len + pad] = '\0';
	got = EVP_DecodeBlock(bin, (const unsigned char *)std, (int)(len + pad));
	if (got >= 0) {
		bn = BN_bin2bn(bin, got - (int)pad, NULL);
		if (!bn)
			abort();
		bits = BN_num_bits(bn);
		BN_free(bn);
	}
	free(std);
	free(bin);
	return bits;
}

/* The key's "n" of the answer body, when it is a KeyBundle's string. */
static void check_bits(const struct fuzz_answer *a, const struct dbx_key_info *k)
{
	struct json_object *root = json_tokener_parse(a->body), *key, *n;
	int bits;

	if (root && json_object_object_get_ex(root, "key", &key) &&
	    json_object_object_get_ex(key, "n", &n) && json_object_is_type(n, json_type_string)) {
		bits = openssl_bits(json_object_get_string(n));
		if (bits >= 0 && (strcmp(k->kty, "RSA") == 0 || strcmp(k->kty, "RSA-HSM") == 0))
			fuzz_must((int)k->bits == bits, TARGET,
				  "the key's size is its modulus' bit length");
	}
	json_object_put(root);
}

static void check_key(const struct dbx_key_info *k, const struct dbx_key_url *key)
{
	size_t hl = strlen("https://" VHOST "/keys/");

	fuzz_must(strncasecmp(k->kid, "https://" VHOST "/keys/", hl) == 0 &&
		      strncasecmp(k->kid + hl, key->name, strlen(key->name)) == 0,
		  TARGET, "the key read is the key asked for");
	fuzz_must(strlen(k->kid) + 1 < sizeof(k->kid), TARGET, "kid fits");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct dbx_cloud *cloud = dbx_cloud_default();
	struct dbx_retry_policy policy = {4, 800, 60000};
	struct fake_clock fc;
	struct fuzz_script script;
	struct dbx_transport *retry;
	struct dbx_arm *arm;
	struct dbx_keyvault *kv;
	struct dbx_key_url key;
	struct dbx_key_info ki;
	struct dbx_vault_info vi;
	struct dbx_preflight pf;
	struct dbx_arm_vault av = {0};
	struct dbx_error e;
	const uint8_t *rest;
	size_t rest_len, op;
	uint64_t deadline;
	enum dbx_err rc = DBX_OK;
	char name[16], principal[64], id[512];
	bool found = false, denied = false;
	const char *url = "https://" VHOST "/keys/mykey";

	fuzz_split_op(data, size, name, sizeof(name), &rest, &rest_len);
	op = fuzz_pick_op(ops, sizeof(ops) / sizeof(ops[0]), name, data, size);
	fake_clock_init(&fc, 1000000);
	fuzz_script_init(&script, rest, rest_len, &fc.clock);
	script.url_ok = url_ok;
	script.url_ctx = (void *)cloud;
	memset(&e, 0, sizeof(e));
	memset(principal, 'x', sizeof(principal));
	memset(id, 0, sizeof(id));

	retry = dbx_http_retry_new(&script.base, &policy, &fc.clock);
	arm = dbx_arm_new(retry, cloud, NULL, 120000, &fc.clock);
	kv = arm ? dbx_keyvault_new(arm, retry, 120000) : NULL;
	if (!retry || !arm || !kv)
		abort();
	if (op == 1)
		url = "https://" VHOST "/keys/mykey/0123456789abcdef0123456789abcdef";
	if (dbx_validate_key_url(url, strlen(url), cloud, &key, &e) != DBX_OK)
		abort();
	deadline = dbx_clock_now_ms(&fc.clock) + 120000;
	switch (op) {
	case 0:
	case 1:
		rc = dbx_keyvault_get_key(kv, &key, &ki, &e);
		if (rc == DBX_OK) {
			check_key(&ki, &key);
			if (script.sent == 1)
				check_bits(&script.answers[0], &ki);
		}
		break;
	case 2:
		rc = dbx_keyvault_find_vault(kv, SUB, VAULT, &vi, &e);
		if (rc == DBX_OK)
			fuzz_must(vi.id[0] != '\0' && strlen(vi.id) + 1 < sizeof(vi.id), TARGET,
				  "a vault found has an ID");
		break;
	case 3:
		memset(&vi, 0, sizeof(vi));
		snprintf(vi.id, sizeof(vi.id), "%s", VAULTID);
		vi.soft_delete = vi.purge_protection = vi.policies_known = true;
		rc = dbx_keyvault_check_access(kv, &vi, PRINCIPAL, &e);
		break;
	case 4:
		rc = dbx_keyvault_identity_principal(kv, UAI, principal, sizeof(principal), &e);
		break;
	case 5:
		rc = dbx_keyvault_preflight(kv, SUB, &key, PRINCIPAL, FAKE_WALL0, &pf, &e);
		if (rc == DBX_OK) {
			fuzz_must(strncasecmp(pf.vault.id, "/subscriptions/", 15) == 0 ||
				      pf.vault.id[0] == '\0',
				  TARGET, "the vault ID to send is an ARM ID");
		}
		break;
	case 6:
		rc = dbx_arm_find_vault(arm, SUB, VAULT, deadline, id, sizeof(id), &found, &denied,
					&e);
		if (rc == DBX_OK && found)
			fuzz_must(id[0] != '\0' && strlen(id) < sizeof(id), TARGET,
				  "a vault found has an ID");
		break;
	case 7:
		rc = dbx_arm_get_vault(arm, VAULTID, deadline, &av, &e);
		fuzz_must(av.policies_ok || av.n_policies == 0, TARGET,
			  "no policies unless they could be read");
		for (size_t i = 0; i < av.n_policies; i++)
			fuzz_must((av.policies[i].key_perms & ~7u) == 0, TARGET,
				  "key permissions are known bits");
		dbx_arm_vault_clear(&av);
		break;
	default:
		rc = dbx_arm_identity_principal(arm, UAI, deadline, principal, sizeof(principal),
						&e);
		break;
	}
	if (op == 4 || op == 8) {
		fuzz_must(memchr(principal, '\0', sizeof(principal)) != NULL, TARGET,
			  "the principal is a string");
		fuzz_must(rc == DBX_OK ? principal[0] != '\0' : principal[0] == '\0', TARGET,
			  "a principal is found, or \"\" after a failure");
	}
	fuzz_must(dbx_clock_now_ms(&fc.clock) <= deadline, TARGET,
		  "no call returns past its deadline");
	if (rc != DBX_OK)
		fuzz_check_error(&e, TARGET);
	dbx_keyvault_free(kv);
	dbx_arm_free(arm);
	dbx_transport_destroy(retry);
	fuzz_script_fini(&script);
	return 0;
}
