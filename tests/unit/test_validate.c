/*
 * test_validate.c: the local rules of a write (validate.h, docs/formats.md, "Validation").
 *
 * Each test is one rule group, table-driven. A rejection is asserted with
 * the exact Ssem code a user would see in the errors file (and so could
 * look up in the troubleshooting table), an http_status of 0, a message
 * that is one printable ASCII line naming the offending part, and an
 * untouched output struct. An acceptance is asserted with the canonical
 * value the PATCH would carry.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "databoxfs/validate.h"

#define URL_BAD	   "SsemUserErrorInvalidKeyVaultUrl"
#define SCHEME_BAD "SsemUserErrorKeyVaultUrlWithInvalidScheme"
#define HOST_BAD   "SsemUserErrorKeyVaultUrlInvalidHost"
#define VALUE_BAD  "InvalidValue"

#define V32 "0123456789abcdef0123456789abcdef"
#define KV  "https://myvault.vault.azure.net"
#define SUB "00000000-1111-2222-3333-444444444444"
#define UAI_CANON                                                                                  \
	"/subscriptions/" SUB "/resourceGroups/my-rg/providers/Microsoft.ManagedIdentity/"         \
	"userAssignedIdentities/my-uai"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* One key URL case: len 0 means strlen(in). code NULL: accepted, as canon. */
struct url_case {
	const char *in;
	size_t len;
	const char *cloud;
	const char *code;
	const char *canon; /* expected url, or a substring of the message when rejected */
};

static const struct dbx_cloud *cloud_named(const char *name)
{
	const struct dbx_cloud *c = dbx_cloud_find(name ? name : "AzureCloud");

	assert_non_null(c);
	return c;
}

/* The message is one line of printable ASCII: no control byte, no raw UTF-8. */
static void assert_clean_message(const char *msg, const char *what)
{
	if (msg[0] == '\0')
		fail_msg("%s: empty message", what);
	for (const char *p = msg; *p; p++) {
		unsigned char c = (unsigned char)*p;

		if (c < 0x20 || c >= 0x7f)
			fail_msg("%s: message has byte 0x%02x: %s", what, c, msg);
	}
}

/* Fill an error with garbage so a test sees what the validator wrote. */
static void dirty(struct dbx_error *e)
{
	memset(e, 'Z', sizeof(*e));
	e->code[sizeof(e->code) - 1] = '\0';
	e->message[sizeof(e->message) - 1] = '\0';
	e->request_id[sizeof(e->request_id) - 1] = '\0';
	e->http_status = 999;
}

static void assert_rejected(enum dbx_err rc, const struct dbx_error *e, const char *code,
			    const char *msg_part, const char *what)
{
	if (rc != DBX_EINVAL)
		fail_msg("%s: expected DBX_EINVAL (%s), got %d", what, code, rc);
	if (e->err != DBX_EINVAL)
		fail_msg("%s: err->err %d", what, e->err);
	if (strcmp(e->code, code) != 0)
		fail_msg("%s: expected code %s, got %s (%s)", what, code, e->code, e->message);
	if (e->http_status != 0)
		fail_msg("%s: http_status %ld", what, e->http_status);
	if (e->request_id[0] != '\0')
		fail_msg("%s: request_id not cleared", what);
	assert_clean_message(e->message, what);
	if (msg_part && !strstr(e->message, msg_part))
		fail_msg("%s: message lacks \"%s\": %s", what, msg_part, e->message);
}

static void run_url_case(const struct url_case *c, size_t row)
{
	struct dbx_key_url k, before;
	struct dbx_error e;
	char what[200];
	size_t len = c->len ? c->len : strlen(c->in);
	enum dbx_err rc;

	snprintf(what, sizeof(what), "row %zu \"%.120s\" on %s", row, c->in,
		 c->cloud ? c->cloud : "AzureCloud");
	memset(&k, 0x5a, sizeof(k));
	before = k;
	dirty(&e);
	rc = dbx_validate_key_url(c->in, len, cloud_named(c->cloud), &k, &e);
	if (c->code) {
		assert_rejected(rc, &e, c->code, c->canon, what);
		if (memcmp(&k, &before, sizeof(k)) != 0)
			fail_msg("%s: output written on rejection", what);
		return;
	}
	if (rc != DBX_OK)
		fail_msg("%s: rejected with %s: %s", what, e.code, e.message);
	if (strcmp(k.url, c->canon) != 0)
		fail_msg("%s: canonical \"%s\", expected \"%s\"", what, k.url, c->canon);
}

static void run_url_table(const struct url_case *t, size_t n)
{
	for (size_t i = 0; i < n; i++)
		run_url_case(&t[i], i);
}

/* dbx_value_trim: sysfs store semantics. */
static void test_trim(void **state)
{
	static const struct {
		const char *in;
		size_t len;
		bool ok;
		size_t off;	 /* where the value starts in in */
		const char *out; /* the value */
	} t[] = {
	    {"v\n", 2, true, 0, "v"}, /* echo */
	    {"v", 1, true, 0, "v"},   /* printf '%s' */
	    {"  v  \n", 6, true, 2, "v"},
	    {"\tv\t\n", 4, true, 1, "v"},
	    {"v\r\n", 3, true, 0, "v"}, /* one CRLF, documented */
	    {"v \n ", 4, true, 0, "v"},
	    {"a b\n", 4, true, 0, "a b"}, /* inner blank is the value's */
	    {"\n", 1, true, 0, ""},
	    {"", 0, true, 0, ""},
	    {"   \t ", 5, true, 0, ""},
	    {"v\n\n", 3, false, 0, NULL},
	    {"a\nb", 3, false, 0, NULL},
	    {"a\nb\n", 4, false, 0, NULL},
	    {"\nv", 2, false, 0, NULL},
	    {"a\0b", 3, false, 0, NULL},
	    {"v\0", 2, false, 0, NULL},
	    {"v\r", 2, false, 0, NULL},
	    {"v\r\r\n", 4, false, 0, NULL},
	    {"a\tb", 3, false, 0, NULL},
	    {"a\x1b[31mb", 7, false, 0, NULL},
	    {"a\x7f", 2, false, 0, NULL},
	};
	(void)state;
	for (size_t i = 0; i < N(t); i++) {
		const char *out = NULL;
		size_t out_len = 12345;
		struct dbx_error e;
		char what[64];
		enum dbx_err rc;

		snprintf(what, sizeof(what), "trim row %zu", i);
		dirty(&e);
		rc = dbx_value_trim(t[i].in, t[i].len, &out, &out_len, &e);
		if (!t[i].ok) {
			assert_rejected(rc, &e, VALUE_BAD, "control character", what);
			continue;
		}
		if (rc != DBX_OK)
			fail_msg("%s: rejected: %s", what, e.message);
		assert_ptr_equal(out, t[i].in + t[i].off);
		assert_int_equal(out_len, strlen(t[i].out));
		assert_memory_equal(out, t[i].out, out_len);
	}
}

/* Accepted key URLs and their canonical form. */
static void test_key_url_accepts(void **state)
{
	static const struct url_case t[] = {
	    {KV "/keys/mykey", 0, NULL, NULL, KV "/keys/mykey"},
	    {KV "/keys/mykey/" V32, 0, NULL, NULL, KV "/keys/mykey/" V32},
	    {KV "/keys/mykey/", 0, NULL, NULL, KV "/keys/mykey"},
	    {KV "/keys/mykey/" V32 "/", 0, NULL, NULL, KV "/keys/mykey/" V32},
	    {"HTTPS://MyVault.VAULT.Azure.Net/keys/MyKey", 0, NULL, NULL, KV "/keys/MyKey"},
	    {"Https://myvault.vault.azure.net/keys/My-Key-2", 0, NULL, NULL, KV "/keys/My-Key-2"},
	    {KV "/keys/k/0123456789ABCDEF0123456789ABCDEF", 0, NULL, NULL, KV "/keys/k/" V32},
	    {KV "/KEYS/k", 0, NULL, NULL, KV "/keys/k"},
	    {"https://a-b-1.vault.azure.net/keys/1", 0, NULL, NULL,
	     "https://a-b-1.vault.azure.net/keys/1"},
	    {"https://gov-vault.vault.usgovcloudapi.net/keys/k", 0, "AzureUSGovernment", NULL,
	     "https://gov-vault.vault.usgovcloudapi.net/keys/k"},
	    {"https://cn-vault.vault.azure.cn/keys/k/" V32, 0, "AzureChinaCloud", NULL,
	     "https://cn-vault.vault.azure.cn/keys/k/" V32},
	};
	struct dbx_key_url k;
	struct dbx_error e = {0};
	const char *in =
	    "HTTPS://MyVault.Vault.Azure.NET/keys/MyKey/ABCDEF0123456789ABCDEF0123456789/";

	(void)state;
	run_url_table(t, N(t));

	/* Every field of the canonical form. */
	assert_int_equal(dbx_validate_key_url(in, strlen(in), cloud_named(NULL), &k, &e), DBX_OK);
	assert_string_equal(k.vault, "myvault");
	assert_string_equal(k.host, "myvault.vault.azure.net");
	assert_string_equal(k.name, "MyKey");
	assert_string_equal(k.version, "abcdef0123456789abcdef0123456789");
	assert_string_equal(
	    k.url, "https://myvault.vault.azure.net/keys/MyKey/abcdef0123456789abcdef0123456789");
	assert_int_equal(dbx_validate_key_url(KV "/keys/k", strlen(KV "/keys/k"), NULL, &k, &e),
			 DBX_OK);
	assert_string_equal(k.version, "");
	assert_string_equal(k.host, "myvault.vault.azure.net");
	/* NULL cloud is the public cloud; NULL out only validates. */
	assert_int_equal(dbx_validate_key_url(KV "/keys/k", strlen(KV "/keys/k"), NULL, NULL, &e),
			 DBX_OK);
}

/* Scheme: https only, case-insensitive; "//" required. */
static void test_key_url_scheme(void **state)
{
	static const struct url_case t[] = {
	    {"http://myvault.vault.azure.net/keys/k", 0, NULL, SCHEME_BAD, "\"http\""},
	    {"HTTP://myvault.vault.azure.net/keys/k", 0, NULL, SCHEME_BAD, "\"HTTP\""},
	    {"ftp://myvault.vault.azure.net/keys/k", 0, NULL, SCHEME_BAD, "\"ftp\""},
	    {"httpss://myvault.vault.azure.net/keys/k", 0, NULL, SCHEME_BAD, "\"httpss\""},
	    {"file:///etc/passwd", 0, NULL, SCHEME_BAD, "\"file\""},
	    {"javascript:alert(1)", 0, NULL, SCHEME_BAD, "javascript"},
	    {"myvault.vault.azure.net/keys/k", 0, NULL, SCHEME_BAD, "no scheme"},
	    {"//myvault.vault.azure.net/keys/k", 0, NULL, SCHEME_BAD, "no scheme"},
	    {"https//myvault.vault.azure.net/keys/k", 0, NULL, SCHEME_BAD, "no scheme"},
	    {"://myvault.vault.azure.net/keys/k", 0, NULL, SCHEME_BAD, "no scheme"},
	    {"https", 0, NULL, SCHEME_BAD, "no scheme"},
	    {"https:/myvault.vault.azure.net/keys/k", 0, NULL, URL_BAD, "https://"},
	    {"https:myvault.vault.azure.net/keys/k", 0, NULL, URL_BAD, "https://"},
	    {"https:", 0, NULL, URL_BAD, "https://"},
	    {"HTTPS:", 0, NULL, URL_BAD, "https://"},
	    /* the scheme is judged before the authority and path */
	    {"http://user@1.2.3.4:80/x?y#z", 0, NULL, SCHEME_BAD, "\"http\""},
	};
	(void)state;
	run_url_table(t, N(t));
}

/* Authority: no user info, no port (InvalidKeyVaultUrl); password never echoed. */
static void test_key_url_authority(void **state)
{
	static const struct url_case t[] = {
	    {"https://user@myvault.vault.azure.net/keys/k", 0, NULL, URL_BAD, "user info"},
	    {"https://user:s3cret@myvault.vault.azure.net/keys/k", 0, NULL, URL_BAD, "user info"},
	    {"https://@myvault.vault.azure.net/keys/k", 0, NULL, URL_BAD, "user info"},
	    {"https://myvault.vault.azure.net@evil.example/keys/k", 0, NULL, URL_BAD, "user info"},
	    {"https://myvault.vault.azure.net:443/keys/k", 0, NULL, URL_BAD, "\":443\""},
	    {"https://myvault.vault.azure.net:/keys/k", 0, NULL, URL_BAD, "\":\""},
	    {"https://myvault.vault.azure.net:abc/keys/k", 0, NULL, URL_BAD, "\":abc\""},
	    {"https://myvault.vault.azure.net:8443", 0, NULL, URL_BAD, "port"},
	    /* user info and port win over a bad host */
	    {"https://user@evil.example/keys/k", 0, NULL, URL_BAD, "user info"},
	    {"https://evil.example:443/keys/k", 0, NULL, URL_BAD, "port"},
	};
	/* a password is never echoed, whichever rule rejects the URL */
	static const char *const pw[] = {
	    "https://admin:hunter2xyz@myvault.vault.azure.net/keys/k",
	    "//admin:hunter2xyz@myvault.vault.azure.net/keys/k",
	    "https:/admin:hunter2xyz@myvault.vault.azure.net/keys/k",
	    "https:admin:hunter2xyz@myvault.vault.azure.net/keys/k",
	    "admin:hunter2xyz@myvault.vault.azure.net/keys/k",
	};
	struct dbx_key_url k;
	struct dbx_error e;

	(void)state;
	run_url_table(t, N(t));
	for (size_t i = 0; i < N(pw); i++) {
		dirty(&e);
		assert_int_equal(dbx_validate_key_url(pw[i], strlen(pw[i]), NULL, &k, &e),
				 DBX_EINVAL);
		if (strstr(e.message, "hunter2xyz"))
			fail_msg("password echoed for \"%s\": %s", pw[i], e.message);
	}
}

/* Host: exactly "<vault>.<suffix>", on a label boundary; everything else InvalidHost. */
static void test_key_url_host(void **state)
{
	static const struct url_case t[] = {
	    {"https://evilvault.azure.net/keys/k", 0, NULL, HOST_BAD, "evilvault.azure.net"},
	    {"https://x.vault.azure.net.evil.com/keys/k", 0, NULL, HOST_BAD,
	     "x.vault.azure.net.evil.com"},
	    {"https://vault.azure.net/keys/k", 0, NULL, HOST_BAD, "no vault name"},
	    {"https://a.b.vault.azure.net/keys/k", 0, NULL, HOST_BAD, "a.b.vault.azure.net"},
	    {"https://myvault.vault.azure.net./keys/k", 0, NULL, HOST_BAD, "dot"},
	    {"https://myvault.vault.azure.net../keys/k", 0, NULL, HOST_BAD, "dot"},
	    {"https://.vault.azure.net/keys/k", 0, NULL, HOST_BAD, "empty label"},
	    {"https://myvault..vault.azure.net/keys/k", 0, NULL, HOST_BAD, "empty label"},
	    {"https:///keys/k", 0, NULL, HOST_BAD, "no host"},
	    {"https://", 0, NULL, HOST_BAD, "no host"},
	    {"https://example.com/keys/k", 0, NULL, HOST_BAD,
	     "key URL host \"example.com\" is not a Key Vault host of AzureCloud "
	     "(*.vault.azure.net)"},
	    {"https://myvault.vault.azure.com/keys/k", 0, NULL, HOST_BAD, "*.vault.azure.net"},
	    {"https://1.2.3.4/keys/k", 0, NULL, HOST_BAD, "IP address"},
	    {"https://[::1]/keys/k", 0, NULL, HOST_BAD, "IP address"},
	    {"https://[fe80::1]:443/keys/k", 0, NULL, HOST_BAD, "IP address"},
	    {"https://my_vault.vault.azure.net/keys/k", 0, NULL, HOST_BAD, "not a valid host"},
	    {"https://my!vault.vault.azure.net/keys/k", 0, NULL, HOST_BAD, "not a valid host"},
	    {"https://localhost/keys/k", 0, NULL, HOST_BAD, "localhost"},
	    /* IDN: raw UTF-8 in the host, and punycode labels */
	    {"https://m\xc3\xbfvault.vault.azure.net/keys/k", 0, NULL, HOST_BAD, "non-ASCII"},
	    {"https://myvault.vault.azur\xc3\xa9.net/keys/k", 0, NULL, HOST_BAD, "\\xc3"},
	    {"https://xn--mvault-bva.vault.azure.net/keys/k", 0, NULL, HOST_BAD, "punycode"},
	    {"https://XN--mvault-bva.vault.azure.net/keys/k", 0, NULL, HOST_BAD, "punycode"},
	    {"https://myvault.xn--vault-4ya.azure.net/keys/k", 0, NULL, HOST_BAD, "punycode"},
	    /* Managed HSM, any cloud's, on any cloud */
	    {"https://myhsm.managedhsm.azure.net/keys/k", 0, NULL, HOST_BAD,
	     "Managed HSM keys are not supported by Data Box"},
	    {"https://MYHSM.ManagedHSM.Azure.Net/keys/k/" V32, 0, NULL, HOST_BAD, "Managed HSM"},
	    {"https://managedhsm.azure.net/keys/k", 0, NULL, HOST_BAD, "Managed HSM"},
	    {"https://myhsm.managedhsm.usgovcloudapi.net/keys/k", 0, "AzureUSGovernment", HOST_BAD,
	     "Managed HSM"},
	    {"https://myhsm.managedhsm.usgovcloudapi.net/keys/k", 0, NULL, HOST_BAD, "Managed HSM"},
	    {"https://myhsm.managedhsm.azure.cn/keys/k", 0, "AzureChinaCloud", HOST_BAD,
	     "Managed HSM"},
	    /* percent-encoding in the host is a URL problem, not a host name */
	    {"https://my%76ault.vault.azure.net/keys/k", 0, NULL, URL_BAD, "percent"},
	};
	(void)state;
	run_url_table(t, N(t));
}

/* The vault suffix of each cloud, against each cloud. */
static void test_key_url_clouds(void **state)
{
	static const char *const clouds[] = {"AzureCloud", "AzureUSGovernment", "AzureChinaCloud"};
	static const char *const hosts[] = {
	    "myvault.vault.azure.net", "myvault.vault.usgovcloudapi.net", "myvault.vault.azure.cn"};
	(void)state;
	for (size_t h = 0; h < N(hosts); h++) {
		for (size_t c = 0; c < N(clouds); c++) {
			char in[128], canon[128], msg[160];
			struct url_case uc = {in, 0, clouds[c], NULL, canon};

			snprintf(in, sizeof(in), "https://%s/keys/k", hosts[h]);
			snprintf(canon, sizeof(canon), "https://%s/keys/k", hosts[h]);
			if (h != c) {
				snprintf(msg, sizeof(msg),
					 "key URL host \"%s\" is a Key Vault host of %s, not of %s",
					 hosts[h], clouds[h], clouds[c]);
				uc.code = HOST_BAD;
				uc.canon = msg;
			}
			run_url_case(&uc, h * 10 + c);
		}
	}
	/* the cloud's suffix is not matched as a bare substring */
	{
		static const struct url_case t[] = {
		    {"https://myvault.vault.usgovcloudapi.net.evil.com/keys/k", 0,
		     "AzureUSGovernment", HOST_BAD, "not a Key Vault host of AzureUSGovernment"},
		    {"https://myvaultvault.azure.cn/keys/k", 0, "AzureChinaCloud", HOST_BAD,
		     "(*.vault.azure.cn)"},
		};
		run_url_table(t, N(t));
	}
}

/* Vault names: 3-24 of [A-Za-z0-9-], letter first, letter/digit last, no "--". */
static void test_key_url_vault_name(void **state)
{
	static const struct {
		size_t len;
		bool ok;
	} lengths[] = {{1, false}, {2, false}, {3, true}, {24, true}, {25, false}, {63, false}};
	static const struct url_case t[] = {
	    {"https://1vault.vault.azure.net/keys/k", 0, NULL, URL_BAD, "start with a letter"},
	    {"https://-vault.vault.azure.net/keys/k", 0, NULL, URL_BAD, "start with a letter"},
	    {"https://vault-.vault.azure.net/keys/k", 0, NULL, URL_BAD,
	     "end with a letter or digit"},
	    {"https://my--vault.vault.azure.net/keys/k", 0, NULL, URL_BAD, "\"--\""},
	    {"https://vault1.vault.azure.net/keys/k", 0, NULL, NULL,
	     "https://vault1.vault.azure.net/keys/k"},
	    {"https://My-Vault-9.vault.azure.net/keys/k", 0, NULL, NULL,
	     "https://my-vault-9.vault.azure.net/keys/k"},
	};
	(void)state;
	for (size_t i = 0; i < N(lengths); i++) {
		char name[80], in[200], canon[200];
		struct url_case uc = {in, 0, NULL, NULL, canon};

		memset(name, 'v', lengths[i].len);
		name[lengths[i].len] = '\0';
		snprintf(in, sizeof(in), "https://%s.vault.azure.net/keys/k", name);
		snprintf(canon, sizeof(canon), "https://%s.vault.azure.net/keys/k", name);
		if (!lengths[i].ok) {
			uc.code = URL_BAD;
			uc.canon = "characters long";
		}
		run_url_case(&uc, i);
	}
	run_url_table(t, N(t));
}

/* Path: /keys/<name>[/<version>]; no query, fragment, percent-encoding. */
static void test_key_url_path(void **state)
{
	static const struct {
		size_t len;
		bool ok;
	} names[] = {{0, false}, {1, true}, {127, true}, {128, false}};
	static const struct url_case t[] = {
	    {KV, 0, NULL, URL_BAD, "not /keys/<name>"},
	    {KV "/", 0, NULL, URL_BAD, "not /keys/<name>"},
	    {KV "/keys", 0, NULL, URL_BAD, "not /keys/<name>"},
	    {KV "/keys/", 0, NULL, URL_BAD, "no key name"},
	    {KV "/keys//" V32, 0, NULL, URL_BAD, "no key name"},
	    {KV "//keys/k", 0, NULL, URL_BAD, "not /keys/<name>"},
	    {KV "/secrets/k", 0, NULL, URL_BAD, "\"/secrets/k\""},
	    {KV "/certificates/k/" V32, 0, NULL, URL_BAD, "not /keys/<name>"},
	    {KV "/keys/my_key", 0, NULL, URL_BAD, "\"my_key\""},
	    {KV "/keys/my.key", 0, NULL, URL_BAD, "\"my.key\""},
	    {KV "/keys/k//", 0, NULL, URL_BAD, "empty segment"},
	    {KV "/keys/k/" V32 "//", 0, NULL, URL_BAD, "after the key version"},
	    {KV "/keys/k/" V32 "/x", 0, NULL, URL_BAD, "after the key version"},
	    {KV "/keys/k/versions", 0, NULL, URL_BAD, "\"versions\""},
	    {KV "/keys/k/0123456789abcdef0123456789abcde", 0, NULL, URL_BAD,
	     "is 31 characters long"},
	    {KV "/keys/k/0123456789abcdef0123456789abcdef0", 0, NULL, URL_BAD,
	     "is 33 characters long"},
	    {KV "/keys/k/0123456789abcdef0123456789abcdeg", 0, NULL, URL_BAD, "not 32 hex digits"},
	    {KV "/keys/k/0123456789abcdef-123456789abcdef", 0, NULL, URL_BAD, "not 32 hex digits"},
	    {KV "/keys/k?api-version=7.4", 0, NULL, URL_BAD, "query (\"?api-version=7.4\")"},
	    {KV "/keys/k?", 0, NULL, URL_BAD, "query (\"?\")"},
	    {KV "?x", 0, NULL, URL_BAD, "query"},
	    {KV "/keys/k#x", 0, NULL, URL_BAD, "fragment (\"#x\")"},
	    {KV "#x", 0, NULL, URL_BAD, "fragment"},
	    {KV "/keys/%6bey", 0, NULL, URL_BAD, "percent-encoding (\"%6bey\")"},
	    {KV "/keys/k/" V32 "%2F", 0, NULL, URL_BAD, "percent-encoding"},
	    {KV "/keys/k\\x", 0, NULL, URL_BAD, "\\x5c"}, /* the backslash is escaped */
	    {KV "/keys/k\"x", 0, NULL, URL_BAD, "k\\x22x"},
	};
	(void)state;
	for (size_t i = 0; i < N(names); i++) {
		char name[200], in[400];
		struct url_case uc = {in, 0, NULL, NULL, in};

		memset(name, 'k', names[i].len);
		name[names[i].len] = '\0';
		snprintf(in, sizeof(in), KV "/keys/%s", name);
		if (!names[i].ok) {
			uc.code = URL_BAD;
			uc.canon = names[i].len ? "1-127" : "no key name";
		}
		run_url_case(&uc, i);
	}
	run_url_table(t, N(t));
}

/* Control characters anywhere, blanks, non-ASCII outside the host: InvalidKeyVaultUrl, first. */
static void test_key_url_bytes(void **state)
{
	static const struct url_case t[] = {
	    {KV "/keys/k\n", 0, NULL, URL_BAD, "control character (\\x0a) at offset 38"},
	    {KV "/keys/k\r\n", 0, NULL, URL_BAD, "\\x0d"},
	    {KV "/keys/k\0", 39, NULL, URL_BAD, "\\x00"},
	    {"https://myvault\0.vault.azure.net/keys/k", 39, NULL, URL_BAD, "\\x00"},
	    {"https://myvault.vault.azure.net\r\nHost: evil.example/keys/k", 0, NULL, URL_BAD,
	     "\\x0d"},
	    {"https://my\tvault.vault.azure.net/keys/k", 0, NULL, URL_BAD, "\\x09"},
	    {KV "/keys/\tk", 0, NULL, URL_BAD, "\\x09"},
	    {"\thttps://myvault.vault.azure.net/keys/k", 0, NULL, URL_BAD, "offset 0"},
	    {KV "/ke\x7fys/k", 0, NULL, URL_BAD, "\\x7f"},
	    {KV "/keys/k\x1b[2J", 0, NULL, URL_BAD, "\\x1b"},
	    {" " KV "/keys/k", 0, NULL, URL_BAD, "blank at offset 0"},
	    {KV "/keys/k ", 0, NULL, URL_BAD, "blank"},
	    {KV "/keys/my key", 0, NULL, URL_BAD, "blank"},
	    {KV "/keys/k\xc3\xbf", 0, NULL, URL_BAD, "non-ASCII byte (\\xc3)"},
	    {KV "/keys/k/" V32 "\xff", 0, NULL, URL_BAD, "\\xff"},
	    {"h\xc3\xa9ttps://myvault.vault.azure.net/keys/k", 0, NULL, URL_BAD, "non-ASCII"},
	    /* control bytes are judged before the scheme ... */
	    {"http://myvault.vault.azure.net/keys/k\n", 0, NULL, URL_BAD, "control"},
	    {"ftp://x\0", 8, NULL, URL_BAD, "control"},
	    /* ... and so are non-ASCII bytes (InvalidHost when in the host) */
	    {"http://m\xc3\xbfvault.vault.azure.net/keys/k", 0, NULL, HOST_BAD, "non-ASCII"},
	    {"https://user:pass@m\xc3\xbfvault.vault.azure.net:443/keys/k", 0, NULL, HOST_BAD,
	     "non-ASCII"},
	};
	(void)state;
	run_url_table(t, N(t));
}

/* Empty, blank and huge inputs: rejected, no crash, a bounded message. */
static void test_key_url_sizes(void **state)
{
	static const struct url_case t[] = {
	    {"", 0, NULL, URL_BAD, "empty"},
	    {" ", 0, NULL, URL_BAD, "blank"},
	    {"\n", 0, NULL, URL_BAD, "control"},
	};
	const size_t big = 64 * 1024;
	char *buf = malloc(big + 256);
	struct dbx_key_url k;
	struct dbx_error e;
	const char *pre = "https://";

	(void)state;
	assert_non_null(buf);
	run_url_table(t, N(t));
	/* empty with a NULL pointer */
	dirty(&e);
	assert_int_equal(dbx_validate_key_url(NULL, 0, NULL, &k, &e), DBX_EINVAL);
	assert_string_equal(e.code, URL_BAD);

	/* 64 KiB of 'a': no scheme */
	memset(buf, 'a', big);
	dirty(&e);
	assert_int_equal(dbx_validate_key_url(buf, big, NULL, &k, &e), DBX_EINVAL);
	assert_rejected(DBX_EINVAL, &e, SCHEME_BAD, "...", "64K of a");
	assert_true(strlen(e.message) < 600);

	/* a 64 KiB vault name */
	memcpy(buf, pre, strlen(pre));
	memset(buf + strlen(pre), 'v', big);
	strcpy(buf + strlen(pre) + big, ".vault.azure.net/keys/k");
	dirty(&e);
	assert_int_equal(dbx_validate_key_url(buf, strlen(buf), NULL, &k, &e), DBX_EINVAL);
	assert_rejected(DBX_EINVAL, &e, URL_BAD, "is 65536 characters long", "64K vault");

	/* a 64 KiB host */
	memset(buf + strlen(pre), 'v', big);
	strcpy(buf + strlen(pre) + big, "/keys/k");
	dirty(&e);
	assert_int_equal(dbx_validate_key_url(buf, strlen(buf), NULL, &k, &e), DBX_EINVAL);
	assert_rejected(DBX_EINVAL, &e, HOST_BAD, "...", "64K host");

	/* a 64 KiB key name */
	strcpy(buf, KV "/keys/");
	memset(buf + strlen(buf), 'k', big);
	buf[strlen(KV "/keys/") + big] = '\0';
	dirty(&e);
	assert_int_equal(dbx_validate_key_url(buf, strlen(buf), NULL, &k, &e), DBX_EINVAL);
	assert_rejected(DBX_EINVAL, &e, URL_BAD, "is 65536 characters long", "64K name");

	/* 64 KiB of NULs and of 0xff */
	memset(buf, 0, big);
	dirty(&e);
	assert_int_equal(dbx_validate_key_url(buf, big, NULL, &k, &e), DBX_EINVAL);
	assert_rejected(DBX_EINVAL, &e, URL_BAD, "offset 0", "64K NUL");
	memset(buf, 0xff, big);
	dirty(&e);
	assert_int_equal(dbx_validate_key_url(buf, big, NULL, &k, &e), DBX_EINVAL);
	assert_rejected(DBX_EINVAL, &e, URL_BAD, "\\xff", "64K 0xff");
	free(buf);
}

/* Identity: SystemAssigned, None, or a user-assigned identity ID. */
static void test_identity(void **state)
{
	static const struct {
		const char *in;
		size_t len;
		enum dbx_identity_kind kind; /* when accepted */
		const char *code;	     /* NULL: accepted */
		const char *want;	     /* canonical id, or message substring */
	} t[] = {
	    {"SystemAssigned", 0, DBX_IDENTITY_SYSTEM, NULL, "SystemAssigned"},
	    {"systemassigned", 0, DBX_IDENTITY_SYSTEM, NULL, "SystemAssigned"},
	    {"SYSTEMASSIGNED", 0, DBX_IDENTITY_SYSTEM, NULL, "SystemAssigned"},
	    {"None", 0, DBX_IDENTITY_NONE, NULL, "None"},
	    {"none", 0, DBX_IDENTITY_NONE, NULL, "None"},
	    {UAI_CANON, 0, DBX_IDENTITY_USER, NULL, UAI_CANON},
	    {UAI_CANON "/", 0, DBX_IDENTITY_USER, NULL, UAI_CANON},
	    {"/SUBSCRIPTIONS/" SUB "/resourcegroups/my-rg/PROVIDERS/microsoft.managedidentity/"
	     "USERASSIGNEDIDENTITIES/my-uai",
	     0, DBX_IDENTITY_USER, NULL, UAI_CANON},
	    {"/subscriptions/" SUB "/resourceGroups/Rg_(x).1/providers/"
	     "Microsoft.ManagedIdentity/userAssignedIdentities/9a_b-C",
	     0, DBX_IDENTITY_USER, NULL,
	     "/subscriptions/" SUB "/resourceGroups/Rg_(x).1/providers/"
	     "Microsoft.ManagedIdentity/userAssignedIdentities/9a_b-C"},
	    {"", 0, 0, VALUE_BAD, "not SystemAssigned, None"},
	    {"UserAssigned", 0, 0, VALUE_BAD, "\"UserAssigned\""},
	    {"SystemAssigned,UserAssigned", 0, 0, VALUE_BAD, "not SystemAssigned"},
	    {"System Assigned", 0, 0, VALUE_BAD, "not SystemAssigned"},
	    {" None", 0, 0, VALUE_BAD, "not SystemAssigned"},
	    {"None\n", 0, 0, VALUE_BAD, "control character (\\x0a)"},
	    {"None\0", 5, 0, VALUE_BAD, "\\x00"},
	    {"subscriptions/" SUB "/resourceGroups/my-rg/providers/Microsoft.ManagedIdentity/"
	     "userAssignedIdentities/my-uai",
	     0, 0, VALUE_BAD, "not SystemAssigned"},
	    {"/", 0, 0, VALUE_BAD, "should be \"subscriptions\""},
	    {"/subscriptions/" SUB, 0, 0, VALUE_BAD, "not a user-assigned identity ID"},
	    {"/subscriptions/" SUB "/resourceGroups/my-rg/providers/Microsoft.ManagedIdentity/"
	     "userAssignedIdentities",
	     0, 0, VALUE_BAD, "not a user-assigned identity ID"},
	    {"/subscriptions/" SUB "/resourceGroups/my-rg/providers/Microsoft.ManagedIdentity/"
	     "userAssignedIdentities/",
	     0, 0, VALUE_BAD, "not a user-assigned identity ID"},
	    /* each fixed segment */
	    {"/subscription/" SUB "/resourceGroups/my-rg/providers/Microsoft.ManagedIdentity/"
	     "userAssignedIdentities/my-uai",
	     0, 0, VALUE_BAD, "\"subscription\" should be \"subscriptions\""},
	    {"/subscriptions/" SUB "/resourceGroup/my-rg/providers/Microsoft.ManagedIdentity/"
	     "userAssignedIdentities/my-uai",
	     0, 0, VALUE_BAD, "should be \"resourceGroups\""},
	    {"/subscriptions/" SUB "/resourceGroups/my-rg/provider/Microsoft.ManagedIdentity/"
	     "userAssignedIdentities/my-uai",
	     0, 0, VALUE_BAD, "should be \"providers\""},
	    {"/subscriptions/" SUB "/resourceGroups/my-rg/providers/Microsoft.Compute/"
	     "userAssignedIdentities/my-uai",
	     0, 0, VALUE_BAD, "provider \"Microsoft.Compute\" is not Microsoft.ManagedIdentity"},
	    {"/subscriptions/" SUB "/resourceGroups/my-rg/providers/Microsoft.ManagedIdentity/"
	     "identities/my-uai",
	     0, 0, VALUE_BAD, "type \"identities\" is not userAssignedIdentities"},
	    {"/subscriptions/" SUB "/resourceGroups/my-rg/providers/Microsoft.KeyVault/"
	     "vaults/myvault",
	     0, 0, VALUE_BAD, "Microsoft.KeyVault"},
	    /* extra segments */
	    {UAI_CANON "/extra", 0, 0, VALUE_BAD, "segments after the identity name"},
	    {UAI_CANON "//", 0, 0, VALUE_BAD, "segments after the identity name"},
	    {"//subscriptions/" SUB "/resourceGroups/my-rg/providers/Microsoft.ManagedIdentity/"
	     "userAssignedIdentities/my-uai",
	     0, 0, VALUE_BAD, "should be \"subscriptions\""},
	    /* subscription */
	    {"/subscriptions/sub1/resourceGroups/my-rg/providers/Microsoft.ManagedIdentity/"
	     "userAssignedIdentities/my-uai",
	     0, 0, VALUE_BAD, "subscription \"sub1\" is not a GUID"},
	    {"/subscriptions/00000000111122223333444444444444/resourceGroups/my-rg/providers/"
	     "Microsoft.ManagedIdentity/userAssignedIdentities/my-uai",
	     0, 0, VALUE_BAD, "not a GUID"},
	    {"/subscriptions/{" SUB "}/resourceGroups/my-rg/providers/"
	     "Microsoft.ManagedIdentity/userAssignedIdentities/my-uai",
	     0, 0, VALUE_BAD, "not a GUID"},
	    {"/subscriptions/g0000000-1111-2222-3333-444444444444/resourceGroups/my-rg/"
	     "providers/Microsoft.ManagedIdentity/userAssignedIdentities/my-uai",
	     0, 0, VALUE_BAD, "not a GUID"},
	    {"/subscriptions//resourceGroups/my-rg/providers/Microsoft.ManagedIdentity/"
	     "userAssignedIdentities/my-uai",
	     0, 0, VALUE_BAD, "not a GUID"},
	    /* resource group */
	    {"/subscriptions/" SUB "/resourceGroups//providers/Microsoft.ManagedIdentity/"
	     "userAssignedIdentities/my-uai",
	     0, 0, VALUE_BAD, "resource group \"\""},
	    {"/subscriptions/" SUB "/resourceGroups/my-rg./providers/Microsoft.ManagedIdentity/"
	     "userAssignedIdentities/my-uai",
	     0, 0, VALUE_BAD, "resource group \"my-rg.\""},
	    {"/subscriptions/" SUB "/resourceGroups/my rg/providers/Microsoft.ManagedIdentity/"
	     "userAssignedIdentities/my-uai",
	     0, 0, VALUE_BAD, "resource group \"my rg\""},
	    {"/subscriptions/" SUB "/resourceGroups/my\xc3\xa9rg/providers/"
	     "Microsoft.ManagedIdentity/userAssignedIdentities/my-uai",
	     0, 0, VALUE_BAD, "my\\xc3\\xa9rg"},
	    /* name */
	    {"/subscriptions/" SUB "/resourceGroups/my-rg/providers/Microsoft.ManagedIdentity/"
	     "userAssignedIdentities/ab",
	     0, 0, VALUE_BAD, "name \"ab\""},
	    {"/subscriptions/" SUB "/resourceGroups/my-rg/providers/Microsoft.ManagedIdentity/"
	     "userAssignedIdentities/_abc",
	     0, 0, VALUE_BAD, "name \"_abc\""},
	    {"/subscriptions/" SUB "/resourceGroups/my-rg/providers/Microsoft.ManagedIdentity/"
	     "userAssignedIdentities/a.bc",
	     0, 0, VALUE_BAD, "name \"a.bc\""},
	};
	(void)state;
	for (size_t i = 0; i < N(t); i++) {
		struct dbx_identity id, before;
		struct dbx_error e;
		char what[64];
		size_t len = t[i].len ? t[i].len : strlen(t[i].in);
		enum dbx_err rc;

		snprintf(what, sizeof(what), "identity row %zu", i);
		memset(&id, 0x5a, sizeof(id));
		before = id;
		dirty(&e);
		rc = dbx_validate_identity(t[i].in, len, &id, &e);
		if (t[i].code) {
			assert_rejected(rc, &e, t[i].code, t[i].want, what);
			if (memcmp(&id, &before, sizeof(id)) != 0)
				fail_msg("%s: output written on rejection", what);
			continue;
		}
		if (rc != DBX_OK)
			fail_msg("%s: rejected: %s", what, e.message);
		assert_int_equal(id.kind, t[i].kind);
		assert_string_equal(id.id, t[i].want);
	}
}

/* Resource group and identity name length boundaries. */
static void test_identity_lengths(void **state)
{
	static const struct {
		size_t rg, name;
		bool ok;
	} t[] = {
	    {1, 3, true},    {90, 3, true}, {91, 3, false},  {1, 128, true},
	    {1, 129, false}, {1, 2, false}, {90, 128, true},
	};
	(void)state;
	for (size_t i = 0; i < N(t); i++) {
		char rg[100], name[140], in[512];
		struct dbx_identity id;
		struct dbx_error e;
		char what[64];
		enum dbx_err rc;

		memset(rg, 'r', t[i].rg);
		rg[t[i].rg] = '\0';
		memset(name, 'n', t[i].name);
		name[t[i].name] = '\0';
		snprintf(in, sizeof(in),
			 "/subscriptions/" SUB
			 "/resourceGroups/%s/providers/Microsoft.ManagedIdentity/"
			 "userAssignedIdentities/%s",
			 rg, name);
		snprintf(what, sizeof(what), "identity length row %zu", i);
		dirty(&e);
		rc = dbx_validate_identity(in, strlen(in), &id, &e);
		if (!t[i].ok) {
			assert_rejected(rc, &e, VALUE_BAD, t[i].rg > 90 ? "resource group" : "name",
					what);
			continue;
		}
		if (rc != DBX_OK)
			fail_msg("%s: rejected: %s", what, e.message);
		assert_string_equal(id.id, in);
	}
}

/* encryption_type: MicrosoftManaged or CustomerManaged, case-insensitive. */
static void test_kek_type(void **state)
{
	static const struct {
		const char *in;
		size_t len;
		bool ok;
		enum dbx_kek_choice want;
	} t[] = {
	    {"MicrosoftManaged", 0, true, DBX_KEK_CHOICE_MICROSOFT},
	    {"microsoftmanaged", 0, true, DBX_KEK_CHOICE_MICROSOFT},
	    {"CustomerManaged", 0, true, DBX_KEK_CHOICE_CUSTOMER},
	    {"CUSTOMERMANAGED", 0, true, DBX_KEK_CHOICE_CUSTOMER},
	    {"", 0, false, 0},
	    {"Microsoft", 0, false, 0},
	    {"CustomerManagedKey", 0, false, 0},
	    {"Customer Managed", 0, false, 0},
	    {"CustomerManaged\0", 16, false, 0},
	    {"CustomerManaged\n", 0, false, 0},
	    {"Customer\nManaged", 0, false, 0},
	};
	(void)state;
	for (size_t i = 0; i < N(t); i++) {
		enum dbx_kek_choice k = (enum dbx_kek_choice)77;
		struct dbx_error e;
		char what[64];
		size_t len = t[i].len ? t[i].len : strlen(t[i].in);
		enum dbx_err rc;

		snprintf(what, sizeof(what), "kek row %zu", i);
		dirty(&e);
		rc = dbx_validate_kek_type(t[i].in, len, &k, &e);
		if (!t[i].ok) {
			assert_rejected(rc, &e, VALUE_BAD, "MicrosoftManaged or CustomerManaged",
					what);
			assert_int_equal(k, 77);
			continue;
		}
		if (rc != DBX_OK)
			fail_msg("%s: rejected: %s", what, e.message);
		assert_int_equal(k, t[i].want);
	}
}

/* One encryption.json case. has: bit 0 type, 1 key_url, 2 identity; 8: key_url null. */
struct json_case {
	const char *in;
	size_t len;
	const char *cloud;
	const char *code; /* NULL: accepted */
	const char *want; /* message substring when rejected */
	unsigned has;
	enum dbx_kek_choice kek;
	const char *url;
	const char *identity;
};

#define HAS_TYPE 1u
#define HAS_URL	 2u
#define HAS_ID	 4u
#define URL_NULL 8u

static void run_json_case(const struct json_case *c, size_t row)
{
	struct dbx_encryption_change ch, before;
	struct dbx_error e;
	char what[200];
	size_t len = c->len ? c->len : strlen(c->in);
	enum dbx_err rc;

	snprintf(what, sizeof(what), "json row %zu %.100s", row, c->in);
	memset(&ch, 0x5a, sizeof(ch));
	before = ch;
	dirty(&e);
	rc = dbx_validate_encryption_json(c->in, len, cloud_named(c->cloud), &ch, &e);
	if (c->code) {
		assert_rejected(rc, &e, c->code, c->want, what);
		if (memcmp(&ch, &before, sizeof(ch)) != 0)
			fail_msg("%s: output written on rejection", what);
		return;
	}
	if (rc != DBX_OK)
		fail_msg("%s: rejected with %s: %s", what, e.code, e.message);
	if (ch.has_kek_type != !!(c->has & HAS_TYPE) || ch.has_key_url != !!(c->has & HAS_URL) ||
	    ch.has_identity != !!(c->has & HAS_ID) || ch.key_url_null != !!(c->has & URL_NULL))
		fail_msg("%s: has type %d url %d (null %d) identity %d", what, ch.has_kek_type,
			 ch.has_key_url, ch.key_url_null, ch.has_identity);
	if (ch.has_kek_type)
		assert_int_equal(ch.kek_type, c->kek);
	if (ch.has_key_url && !ch.key_url_null)
		assert_string_equal(ch.key_url.url, c->url);
	if (ch.has_identity)
		assert_string_equal(ch.identity.id, c->identity);
}

/* encryption.json: one object, known string members, each passing its own file's rule. */
static void test_encryption_json(void **state)
{
	static const struct json_case t[] = {
	    /* what a read shows, written back */
	    {"{\n"
	     "  \"encryption_type\": \"CustomerManaged\",\n"
	     "  \"key_url\": \"https://MyVault.vault.azure.net/keys/k/" V32 "\",\n"
	     "  \"key_vault\": \"/subscriptions/" SUB "/resourceGroups/rg/providers/"
	     "Microsoft.KeyVault/vaults/myvault\",\n"
	     "  \"identity\": \"" UAI_CANON "\",\n"
	     "  \"principal_id\": \"11111111-2222-3333-4444-555555555555\"\n"
	     "}\n",
	     0, NULL, NULL, NULL, HAS_TYPE | HAS_URL | HAS_ID, DBX_KEK_CHOICE_CUSTOMER,
	     KV "/keys/k/" V32, UAI_CANON},
	    {"{\"encryption_type\": \"MicrosoftManaged\", \"key_url\": null, \"key_vault\": null, "
	     "\"identity\": \"None\", \"principal_id\": null}",
	     0, NULL, NULL, NULL, HAS_TYPE | HAS_URL | URL_NULL | HAS_ID, DBX_KEK_CHOICE_MICROSOFT,
	     NULL, "None"},
	    /* partial */
	    {"{\"key_url\": \"" KV "/keys/k\"}", 0, NULL, NULL, NULL, HAS_URL, 0, KV "/keys/k",
	     NULL},
	    {"{\"identity\": \"systemassigned\"}", 0, NULL, NULL, NULL, HAS_ID, 0, NULL,
	     "SystemAssigned"},
	    {"{\"encryption_type\": \"customermanaged\"}", 0, NULL, NULL, NULL, HAS_TYPE,
	     DBX_KEK_CHOICE_CUSTOMER, NULL, NULL},
	    {"{\"key_url\": \"\"}", 0, NULL, NULL, NULL, HAS_URL | URL_NULL, 0, NULL, NULL},
	    /* empty object: valid, changes nothing; surrounding whitespace is fine */
	    {"{}", 0, NULL, NULL, NULL, 0, 0, NULL, NULL},
	    {" \t\r\n{ }\r\n\n ", 0, NULL, NULL, NULL, 0, 0, NULL, NULL},
	    /* derived keys ignored, whatever string they hold */
	    {"{\"key_vault\": \"anything at all\", \"principal_id\": \"x\"}", 0, NULL, NULL, NULL,
	     0, 0, NULL, NULL},
	    {"{\"principal_id\": \"a\\\":\\\"b{[\", \"key_vault\": \"}\"}", 0, NULL, NULL, NULL, 0,
	     0, NULL, NULL},
	    /* the cloud decides the vault suffix */
	    {"{\"key_url\": \"https://v1x.vault.usgovcloudapi.net/keys/k\"}", 0,
	     "AzureUSGovernment", NULL, NULL, HAS_URL, 0,
	     "https://v1x.vault.usgovcloudapi.net/keys/k", NULL},
	    /* unknown and duplicate keys */
	    {"{\"foo\": \"bar\"}", 0, NULL, VALUE_BAD, "unknown key \"foo\"", 0, 0, NULL, NULL},
	    {"{\"Key_Url\": null}", 0, NULL, VALUE_BAD, "unknown key \"Key_Url\"", 0, 0, NULL,
	     NULL},
	    {"{\"kekUrl\": \"" KV "/keys/k\"}", 0, NULL, VALUE_BAD, "unknown key \"kekUrl\"", 0, 0,
	     NULL, NULL},
	    {"{\"key_url\": null, \"key_url\": \"" KV "/keys/k\"}", 0, NULL, VALUE_BAD,
	     "\"key_url\" twice", 0, 0, NULL, NULL},
	    {"{\"identity\": \"None\", \"encryption_type\": \"MicrosoftManaged\", "
	     "\"identity\": \"SystemAssigned\"}",
	     0, NULL, VALUE_BAD, "\"identity\" twice", 0, 0, NULL, NULL},
	    {"{\"key_vault\": null, \"key_vault\": null}", 0, NULL, VALUE_BAD,
	     "\"key_vault\" twice", 0, 0, NULL, NULL},
	    {"{\"key_u\\u0072l\": null, \"key_url\": null}", 0, NULL, VALUE_BAD,
	     "\"key_url\" twice", 0, 0, NULL, NULL},
	    {"{\"key_url\\u0000x\": null}", 0, NULL, VALUE_BAD, "unknown key \"key_url\\x00x\"", 0,
	     0, NULL, NULL},
	    /* not one object */
	    {"", 0, NULL, VALUE_BAD, "one JSON object", 0, 0, NULL, NULL},
	    {"  \n", 0, NULL, VALUE_BAD, "one JSON object", 0, 0, NULL, NULL},
	    {"[]", 0, NULL, VALUE_BAD, "one JSON object", 0, 0, NULL, NULL},
	    {"\"CustomerManaged\"", 0, NULL, VALUE_BAD, "one JSON object", 0, 0, NULL, NULL},
	    {"1", 0, NULL, VALUE_BAD, "one JSON object", 0, 0, NULL, NULL},
	    {"null", 0, NULL, VALUE_BAD, "one JSON object", 0, 0, NULL, NULL},
	    {KV "/keys/k", 0, NULL, VALUE_BAD, "one JSON object", 0, 0, NULL, NULL},
	    /* trailing garbage, broken JSON */
	    {"{} x", 0, NULL, VALUE_BAD, "data after the JSON object, at offset 3", 0, 0, NULL,
	     NULL},
	    {"{}{}", 0, NULL, VALUE_BAD, "data after the JSON object", 0, 0, NULL, NULL},
	    {"{\"key_url\": null}\n]", 0, NULL, VALUE_BAD, "data after the JSON object", 0, 0, NULL,
	     NULL},
	    {"{", 0, NULL, VALUE_BAD, "ends before the object is closed", 0, 0, NULL, NULL},
	    {"{\"key_url\": null", 0, NULL, VALUE_BAD, "ends before", 0, 0, NULL, NULL},
	    {"{\"key_url\": }", 0, NULL, VALUE_BAD, "not valid JSON", 0, 0, NULL, NULL},
	    {"{\"key_url\": null,}", 0, NULL, VALUE_BAD, "not valid JSON", 0, 0, NULL, NULL},
	    {"{'key_url': null}", 0, NULL, VALUE_BAD, "single-quoted", 0, 0, NULL, NULL},
	    {"{\"identity\": 'None'}", 0, NULL, VALUE_BAD, "not valid JSON", 0, 0, NULL, NULL},
	    {"{key_url: null}", 0, NULL, VALUE_BAD, "not valid JSON", 0, 0, NULL, NULL},
	    {"{\"key_url\": null}\0", 18, NULL, VALUE_BAD, "NUL byte at offset 17", 0, 0, NULL,
	     NULL},
	    {"{\"key_url\"\0: null}", 18, NULL, VALUE_BAD, "NUL byte", 0, 0, NULL, NULL},
	    /* wrong types, nested objects */
	    {"{\"encryption_type\": 1}", 0, NULL, VALUE_BAD, "\"encryption_type\" must be a string",
	     0, 0, NULL, NULL},
	    {"{\"encryption_type\": null}", 0, NULL, VALUE_BAD, "must be a string", 0, 0, NULL,
	     NULL},
	    {"{\"identity\": true}", 0, NULL, VALUE_BAD, "\"identity\" must be a string", 0, 0,
	     NULL, NULL},
	    {"{\"identity\": {\"type\": \"SystemAssigned\"}}", 0, NULL, VALUE_BAD,
	     "\"identity\" must be a string", 0, 0, NULL, NULL},
	    {"{\"key_url\": [\"" KV "/keys/k\"]}", 0, NULL, VALUE_BAD,
	     "\"key_url\" must be a string or null", 0, 0, NULL, NULL},
	    {"{\"key_url\": 0}", 0, NULL, VALUE_BAD, "string or null", 0, 0, NULL, NULL},
	    {"{\"key_vault\": 1}", 0, NULL, VALUE_BAD, "\"key_vault\" must be a string or null", 0,
	     0, NULL, NULL},
	    {"{\"principal_id\": {}}", 0, NULL, VALUE_BAD, "\"principal_id\" must be", 0, 0, NULL,
	     NULL},
	    {"{\"key_vault\": NaN}", 0, NULL, VALUE_BAD, "key_vault", 0, 0, NULL, NULL},
	    /* each value passes its own file's rule, with the same code */
	    {"{\"key_url\": \"http://myvault.vault.azure.net/keys/k\"}", 0, NULL, SCHEME_BAD,
	     "encryption.json key_url: key URL scheme \"http\"", 0, 0, NULL, NULL},
	    {"{\"key_url\": \"https://myvault.vault.usgovcloudapi.net/keys/k\"}", 0, NULL, HOST_BAD,
	     "Key Vault host of AzureUSGovernment, not of AzureCloud", 0, 0, NULL, NULL},
	    {"{\"key_url\": \"" KV "/keys/k?api-version=7.4\"}", 0, NULL, URL_BAD, "query", 0, 0,
	     NULL, NULL},
	    {"{\"key_url\": \"" KV "/keys/k\\n\"}", 0, NULL, URL_BAD, "\\x0a", 0, 0, NULL, NULL},
	    {"{\"key_url\": \"" KV "/keys/k\\u0000\"}", 0, NULL, URL_BAD, "\\x00", 0, 0, NULL,
	     NULL},
	    {"{\"key_url\": \" " KV "/keys/k\"}", 0, NULL, URL_BAD, "blank", 0, 0, NULL, NULL},
	    {"{\"identity\": \"UserAssigned\"}", 0, NULL, VALUE_BAD,
	     "encryption.json identity: identity \"UserAssigned\"", 0, 0, NULL, NULL},
	    {"{\"identity\": \"None\\r\\n\"}", 0, NULL, VALUE_BAD, "\\x0d", 0, 0, NULL, NULL},
	    {"{\"encryption_type\": \"Customer\"}", 0, NULL, VALUE_BAD,
	     "encryption.json encryption_type: ", 0, 0, NULL, NULL},
	    /* a bad value after good ones still rejects the whole write */
	    {"{\"encryption_type\": \"CustomerManaged\", \"identity\": \"bogus\"}", 0, NULL,
	     VALUE_BAD, "identity", 0, 0, NULL, NULL},
	};
	(void)state;
	for (size_t i = 0; i < N(t); i++)
		run_json_case(&t[i], i);
}

/* encryption.json sizes: a big valid document passes, an oversized one is refused. */
static void test_encryption_json_sizes(void **state)
{
	/* Static: GCC 12 with the sanitizers takes a malloc'd one for NULL (-Warray-bounds). */
	static char buf[64 * 1024 + 64];
	const size_t big = 64 * 1024;
	struct dbx_encryption_change ch;
	struct dbx_error e;
	size_t n;

	(void)state;
	/* a 60 KiB principal_id (ignored) inside the size limit */
	n = (size_t)sprintf(buf, "{\"principal_id\": \"");
	memset(buf + n, 'p', 60 * 1024);
	n += 60 * 1024;
	n += (size_t)sprintf(buf + n, "\"}");
	dirty(&e);
	assert_int_equal(dbx_validate_encryption_json(buf, n, NULL, &ch, &e), DBX_OK);
	assert_false(ch.has_kek_type || ch.has_key_url || ch.has_identity);

	/* over 64 KiB */
	memset(buf, ' ', big + 1);
	buf[0] = '{';
	buf[big] = '}';
	dirty(&e);
	assert_int_equal(dbx_validate_encryption_json(buf, big + 1, NULL, &ch, &e), DBX_EINVAL);
	assert_rejected(DBX_EINVAL, &e, VALUE_BAD, "too long", "json 64K+1");

	/* deep nesting inside an ignored key is still a wrong type, and no crash */
	n = (size_t)sprintf(buf, "{\"key_vault\": ");
	for (size_t i = 0; i < 5000; i++)
		buf[n++] = '[';
	for (size_t i = 0; i < 5000; i++)
		buf[n++] = ']';
	buf[n++] = '}';
	dirty(&e);
	assert_int_equal(dbx_validate_encryption_json(buf, n, NULL, &ch, &e), DBX_EINVAL);
	assert_string_equal(e.code, VALUE_BAD);
}

/* dbx_validate_setting: the one rule per setting, shared by the files and encryption.json. */
static void test_setting(void **state)
{
	struct dbx_encryption_change ch;
	struct dbx_error e;
	enum dbx_err rc;

	(void)state;
	memset(&ch, 0, sizeof(ch));
	rc = dbx_validate_setting(DBX_SETTING_KEK_TYPE, "customermanaged", 15, NULL, &ch, &e);
	assert_int_equal(rc, DBX_OK);
	assert_true(ch.has_kek_type && !ch.has_key_url && !ch.has_identity);
	assert_int_equal(ch.kek_type, DBX_KEK_CHOICE_CUSTOMER);

	rc = dbx_validate_setting(DBX_SETTING_KEY_URL, KV "/keys/k", strlen(KV "/keys/k"),
				  dbx_cloud_default(), &ch, &e);
	assert_int_equal(rc, DBX_OK);
	assert_true(ch.has_kek_type && ch.has_key_url); /* other fields are left alone */
	assert_string_equal(ch.key_url.url, KV "/keys/k");

	rc = dbx_validate_setting(DBX_SETTING_IDENTITY, "None", 4, NULL, &ch, &e);
	assert_int_equal(rc, DBX_OK);
	assert_true(ch.has_identity);
	assert_int_equal(ch.identity.kind, DBX_IDENTITY_NONE);

	/* A refusal clears that setting's flag and carries the service's code. */
	dirty(&e);
	rc = dbx_validate_setting(DBX_SETTING_KEY_URL, "http://myvault.vault.azure.net/keys/k",
				  strlen("http://myvault.vault.azure.net/keys/k"),
				  dbx_cloud_default(), &ch, &e);
	assert_rejected(rc, &e, SCHEME_BAD, "https", "setting key_url");
	assert_false(ch.has_key_url);
	assert_true(ch.has_kek_type && ch.has_identity);
	dirty(&e);
	rc = dbx_validate_setting(DBX_SETTING_IDENTITY, "Nobody", 6, NULL, &ch, &e);
	assert_int_equal(rc, DBX_EINVAL);
	assert_false(ch.has_identity);
}

/* A NULL err is allowed (the verdict alone); a NULL value is the empty value. */
static void test_null_err(void **state)
{
	const char *out;
	size_t out_len;
	struct dbx_identity id;
	enum dbx_kek_choice k;
	struct dbx_encryption_change ch;

	(void)state;
	assert_int_equal(dbx_value_trim("a\nb", 3, &out, &out_len, NULL), DBX_EINVAL);
	assert_int_equal(dbx_validate_key_url("http://x", 8, NULL, NULL, NULL), DBX_EINVAL);
	assert_int_equal(dbx_validate_identity("x", 1, &id, NULL), DBX_EINVAL);
	assert_int_equal(dbx_validate_kek_type("x", 1, &k, NULL), DBX_EINVAL);
	assert_int_equal(dbx_validate_encryption_json("{\"a\":1}", 7, NULL, &ch, NULL), DBX_EINVAL);
	assert_int_equal(dbx_validate_encryption_json("{\"key_url\":\"x\"}", 15, NULL, &ch, NULL),
			 DBX_EINVAL);
	/* a NULL value is the empty value */
	assert_int_equal(dbx_value_trim(NULL, 0, &out, &out_len, NULL), DBX_OK);
	assert_int_equal(out_len, 0);
	assert_non_null(out);
	assert_int_equal(dbx_validate_identity(NULL, 0, &id, NULL), DBX_EINVAL);
	assert_int_equal(dbx_validate_kek_type(NULL, 0, &k, NULL), DBX_EINVAL);
	assert_int_equal(dbx_validate_encryption_json(NULL, 0, NULL, &ch, NULL), DBX_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_trim),
	    cmocka_unit_test(test_key_url_accepts),
	    cmocka_unit_test(test_key_url_scheme),
	    cmocka_unit_test(test_key_url_authority),
	    cmocka_unit_test(test_key_url_host),
	    cmocka_unit_test(test_key_url_clouds),
	    cmocka_unit_test(test_key_url_vault_name),
	    cmocka_unit_test(test_key_url_path),
	    cmocka_unit_test(test_key_url_bytes),
	    cmocka_unit_test(test_key_url_sizes),
	    cmocka_unit_test(test_identity),
	    cmocka_unit_test(test_identity_lengths),
	    cmocka_unit_test(test_kek_type),
	    cmocka_unit_test(test_encryption_json),
	    cmocka_unit_test(test_encryption_json_sizes),
	    cmocka_unit_test(test_setting),
	    cmocka_unit_test(test_null_err),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
