/*
 * fuzz_validate.c: libFuzzer target over the local write rules (validate.h).
 *
 * One input is fed, raw and after dbx_value_trim, to every validator with
 * every known cloud. Beyond "no crash, no sanitizer report" it checks the
 * properties a user relies on, and aborts when one breaks:
 * - a verdict is DBX_OK or DBX_EINVAL (DBX_ENOMEM for JSON), never anything else;
 * - a rejection carries a known code, http_status 0 and a one-line printable
 *   ASCII message (no byte of the input can forge a line in errors/syslog);
 * - an accepted key URL or identity is canonical: validating the canonical
 *   form again accepts it and gives the very same result (idempotence), and
 *   the canonical URL lives on the cloud's vault suffix;
 * - a trimmed value lies inside the input, with no control byte and no
 *   surrounding blank.
 * Built with clang as a libFuzzer binary, or with any compiler together with
 * replay_main.c as a regression test over the checked-in corpus.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "databoxfs/validate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const cloud_names[] = {"AzureCloud", "AzureUSGovernment", "AzureChinaCloud"};

static void must(int cond, const char *what)
{
	if (!cond) {
		fprintf(stderr, "fuzz_validate: property broken: %s\n", what);
		abort();
	}
}

static void check_rejection(enum dbx_err rc, const struct dbx_error *e, int json)
{
	static const char *const codes[] = {"SsemUserErrorInvalidKeyVaultUrl",
					    "SsemUserErrorKeyVaultUrlWithInvalidScheme",
					    "SsemUserErrorKeyVaultUrlInvalidHost", "InvalidValue"};
	int known = 0;

	if (json && rc == DBX_ENOMEM)
		return;
	must(rc == DBX_EINVAL, "verdict is OK or EINVAL");
	must(e->err == DBX_EINVAL, "err->err is EINVAL");
	must(e->http_status == 0, "http_status is 0");
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
		known |= strcmp(e->code, codes[i]) == 0;
	must(known, "code is a known one");
	must(e->message[0] != '\0', "message is not empty");
	for (const char *p = e->message; *p; p++)
		must((unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f,
		     "message is printable ASCII");
}

static void check_key_url(const char *v, size_t n, const struct dbx_cloud *cloud)
{
	struct dbx_key_url k, k2;
	struct dbx_error e;
	size_t hl, sl;
	enum dbx_err rc;

	memset(&e, 0, sizeof(e));
	rc = dbx_validate_key_url(v, n, cloud, &k, &e);
	if (rc != DBX_OK) {
		check_rejection(rc, &e, 0);
		return;
	}
	must(strlen(k.url) + 1 < sizeof(k.url), "canonical URL not truncated");
	must(strncmp(k.url, "https://", 8) == 0, "canonical URL is https");
	for (const char *p = k.host; *p; p++)
		must(!(*p >= 'A' && *p <= 'Z'), "canonical host is lower case");
	hl = strlen(k.host);
	sl = strlen(cloud->vault_suffix);
	must(hl > sl + 1 && k.host[hl - sl - 1] == '.' &&
		 strcmp(k.host + hl - sl, cloud->vault_suffix) == 0,
	     "canonical host is on the cloud's vault suffix");
	must(strlen(k.vault) >= 3 && strlen(k.vault) <= DBX_VAULT_NAME_MAX, "vault name length");
	must(strlen(k.name) >= 1 && strlen(k.name) <= DBX_KEY_NAME_MAX, "key name length");
	must(k.version[0] == '\0' || strlen(k.version) == DBX_KEY_VERSION_LEN, "version length");
	rc = dbx_validate_key_url(k.url, strlen(k.url), cloud, &k2, &e);
	must(rc == DBX_OK, "canonical URL is accepted again");
	must(memcmp(&k, &k2, sizeof(k)) == 0, "canonical URL is a fixed point");
}

static void check_identity(const char *v, size_t n)
{
	struct dbx_identity id, id2;
	struct dbx_error e;
	enum dbx_err rc;

	memset(&e, 0, sizeof(e));
	memset(&id, 0, sizeof(id));
	memset(&id2, 0, sizeof(id2));
	rc = dbx_validate_identity(v, n, &id, &e);
	if (rc != DBX_OK) {
		check_rejection(rc, &e, 0);
		return;
	}
	must(strlen(id.id) + 1 < sizeof(id.id), "identity not truncated");
	rc = dbx_validate_identity(id.id, strlen(id.id), &id2, &e);
	must(rc == DBX_OK, "canonical identity is accepted again");
	must(id.kind == id2.kind && strcmp(id.id, id2.id) == 0,
	     "canonical identity is a fixed point");
}

static void check_kek_type(const char *v, size_t n)
{
	enum dbx_kek_choice k;
	struct dbx_error e;
	enum dbx_err rc;

	memset(&e, 0, sizeof(e));
	rc = dbx_validate_kek_type(v, n, &k, &e);
	if (rc != DBX_OK)
		check_rejection(rc, &e, 0);
	else
		must(n == strlen("MicrosoftManaged") || n == strlen("CustomerManaged"),
		     "kek type has an accepted length");
}

static void check_json(const char *v, size_t n, const struct dbx_cloud *cloud)
{
	struct dbx_encryption_change ch;
	struct dbx_key_url k;
	struct dbx_error e;
	enum dbx_err rc;

	memset(&e, 0, sizeof(e));
	rc = dbx_validate_encryption_json(v, n, cloud, &ch, &e);
	if (rc != DBX_OK) {
		check_rejection(rc, &e, 1);
		return;
	}
	if (ch.has_key_url && !ch.key_url_null) {
		rc = dbx_validate_key_url(ch.key_url.url, strlen(ch.key_url.url), cloud, &k, &e);
		must(rc == DBX_OK, "key_url from JSON is accepted again");
	}
}

static void check_all(const char *v, size_t n)
{
	for (size_t c = 0; c < sizeof(cloud_names) / sizeof(cloud_names[0]); c++) {
		const struct dbx_cloud *cloud = dbx_cloud_find(cloud_names[c]);

		must(cloud != NULL, "cloud is known");
		check_key_url(v, n, cloud);
		check_json(v, n, cloud);
	}
	check_identity(v, n);
	check_kek_type(v, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A private copy, so reads past size are caught by ASan. */
	char *buf = malloc(size ? size : 1);
	const char *out = NULL;
	size_t out_len = 0;
	struct dbx_error e;

	if (!buf)
		return 0;
	if (size)
		memcpy(buf, data, size);
	check_all(buf, size);
	memset(&e, 0, sizeof(e));
	if (dbx_value_trim(buf, size, &out, &out_len, &e) == DBX_OK) {
		must(out >= buf && out + out_len <= buf + size,
		     "trimmed value is inside the input");
		for (size_t i = 0; i < out_len; i++)
			must((unsigned char)out[i] >= 0x20 && out[i] != 0x7f,
			     "trimmed value has no control byte");
		must(out_len == 0 || (out[0] != ' ' && out[0] != '\t' && out[out_len - 1] != ' ' &&
				      out[out_len - 1] != '\t'),
		     "trimmed value has no surrounding blank");
		check_all(out, out_len);
	} else {
		check_rejection(DBX_EINVAL, &e, 0);
	}
	free(buf);
	return 0;
}
