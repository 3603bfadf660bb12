/*
 * fuzz_token.c: libFuzzer target over token answers (auth.h,
 * backend/cred): Entra ID's token endpoint answering the environment
 * secret source, IMDS and App Service answering the managed identity
 * source (numbers as digit strings, expires_on or expires_in), and the
 * Azure CLI's JSON output (through dbx_cred_parse_token with the fields
 * the CLI source asks for). The HTTP answers come from the scripted
 * transport of fuzz_script.h through the retry layer, on a fake clock.
 *
 * The first line of an input names the source: "entra", "imds",
 * "appservice" or "cli"; anything else picks one by its first byte. The
 * rest is the script of answers ("cli": the rest is az's stdout).
 *
 * Properties checked beyond "no crash, no sanitizer report, no leak":
 * each source sends only to its own endpoint; no request is sent past
 * its deadline; a token got is not empty and expires after the epoch; a
 * failure has a one-line message and neither it nor the code holds the
 * client secret or the identity header (docs/architecture.md,
 * "Credentials": secrets never reach logs or files).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "databoxfs/auth.h"
#include "cred/common.h"
#include "fuzz_script.h"

#define TARGET	 "fuzz_token"
#define TENANT	 "72f988bf-86f1-41af-91ab-2d7cd011db47"
#define CLIENT	 "0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9"
#define SECRET	 "fuzz-client-secret-Q7"
#define IDHEADER "fuzz-identity-header-Z9"
#define ENDPOINT "http://127.0.0.1:41234/msi/token"
#define SCOPE	 "https://management.azure.com/.default"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const ops[] = {"entra", "imds", "appservice", "cli"};

/* The environment of each source: name=value pairs, NULL-terminated. */
static const char *const env_entra[] = {
    "AZURE_TENANT_ID", TENANT, "AZURE_CLIENT_ID", CLIENT, "AZURE_CLIENT_SECRET", SECRET, NULL};
static const char *const env_imds[] = {"AZURE_CLIENT_ID", CLIENT, NULL};
static const char *const env_app[] = {"IDENTITY_ENDPOINT", ENDPOINT, "IDENTITY_HEADER", IDHEADER,
				      NULL};

static const char *env_lookup(void *ctx, const char *name)
{
	const char *const *kv = ctx;

	for (size_t i = 0; kv[i]; i += 2) {
		if (strcmp(kv[i], name) == 0)
			return kv[i + 1];
	}
	return NULL;
}

static bool prefix_ok(const char *url, const char *prefix)
{
	size_t n = strlen(prefix);

	return strncmp(url, prefix, n) == 0 && (url[n] == '\0' || url[n] == '?');
}

static bool entra_ok(void *ctx, const char *url)
{
	return prefix_ok(url, "https://login.microsoftonline.com/" TENANT "/oauth2/v2.0/token");
}

static bool imds_ok(void *ctx, const char *url)
{
	return prefix_ok(url, "http://169.254.169.254/metadata/identity/oauth2/token");
}

static bool app_ok(void *ctx, const char *url)
{
	return prefix_ok(url, ENDPOINT);
}

/* The secret of the source that ran (op: entra, imds, appservice) is nowhere in s. */
static void no_secret(size_t op, const char *s)
{
	if (op == 0)
		fuzz_must(strstr(s, SECRET) == NULL, TARGET, "no message holds the client secret");
	if (op == 2)
		fuzz_must(strstr(s, IDHEADER) == NULL, TARGET,
			  "no message holds the identity header");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct dbx_token_fields cli_fields = {.token = "accessToken",
							   .expires_on = "expires_on"};
	struct dbx_retry_policy policy = {4, 800, 60000};
	struct fake_clock fc;
	struct fuzz_script script;
	struct dbx_transport *retry = NULL;
	struct dbx_credential *cred = NULL;
	struct dbx_env env;
	struct dbx_token tok = {0};
	struct dbx_error e;
	const uint8_t *rest;
	size_t rest_len, op;
	enum dbx_err rc;
	char name[16];

	fuzz_split_op(data, size, name, sizeof(name), &rest, &rest_len);
	op = fuzz_pick_op(ops, sizeof(ops) / sizeof(ops[0]), name, data, size);
	fake_clock_init(&fc, 1000000);
	memset(&e, 0, sizeof(e));
	if (op == 3) {
		rc = dbx_cred_parse_token("cli", (const char *)rest, rest_len, &cli_fields, NULL,
					  FAKE_WALL0, &tok, &e);
		memset(&script, 0, sizeof(script));
		goto check;
	}
	fuzz_script_init(&script, rest, rest_len, &fc.clock);
	env.get = env_lookup;
	script.url_ok = op == 0 ? entra_ok : op == 1 ? imds_ok : app_ok;
	env.ctx = (void *)(op == 0 ? env_entra : op == 1 ? env_imds : env_app);
	retry = dbx_http_retry_new(&script.base, &policy, &fc.clock);
	if (!retry)
		abort();
	if (op == 0)
		cred = dbx_cred_env_secret_new(retry, NULL, &env, &fc.clock, &e);
	else
		cred = dbx_cred_msi_new(retry, NULL, &env, &fc.clock, &e);
	if (!cred) {
		fprintf(stderr, "%s: %s\n", TARGET, e.message);
		abort();
	}
	rc = cred->get_token(cred, SCOPE, 0, &tok, &e);
check:
	if (rc == DBX_OK) {
		fuzz_must(tok.value && tok.value[0], TARGET, "a token is not empty");
		fuzz_must(tok.expires_on > 0, TARGET, "a token has an expiry");
	} else {
		fuzz_must(tok.value == NULL, TARGET, "a failure gives no token");
		fuzz_check_error(&e, TARGET);
	}
	no_secret(op, e.message);
	no_secret(op, e.code);
	dbx_token_wipe(&tok);
	dbx_credential_destroy(cred);
	dbx_transport_destroy(retry);
	fuzz_script_fini(&script);
	return 0;
}
