/*
 * auth.h: credentials and the token cache.
 *
 * A credential turns a scope ("https://management.azure.com/.default") into
 * a bearer token. Sources follow DefaultAzureCredential's order
 * (docs/architecture.md, "Credentials"):
 * environment secret, environment certificate, workload identity, managed
 * identity, Azure CLI. Each source is a struct dbx_credential; the chain is
 * one too. The auth layer caches one token per scope, refreshes it ahead of
 * expiry (single flight), and adds the Authorization header to requests.
 * Token strings live in memory only, are wiped on free, and never reach logs.
 */
#ifndef DATABOXFS_AUTH_H
#define DATABOXFS_AUTH_H

#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "databoxfs/err.h"
#include "databoxfs/http.h"
#include "databoxfs/cloud.h"

struct dbx_token {
	char *value;	   /* secret; free with dbx_token_wipe() */
	time_t expires_on; /* unix time */
};

void dbx_token_wipe(struct dbx_token *tok);

struct dbx_credential {
	const char *name; /* "env", "cert", "workload", "msi", "cli", "auto" */
	/*
	 * Get a fresh token for scope. deadline_ms (on the monotonic time line
	 * of the source's clock; 0: none) is the caller's: the source gives up
	 * at it or at its own cap, whichever comes first, with DBX_ETIMEDOUT
	 * "<name>: token request to <host> did not finish within the timeout".
	 * On failure err->message says what this source lacked.
	 */
	enum dbx_err (*get_token)(struct dbx_credential *self, const char *scope,
				  uint64_t deadline_ms, struct dbx_token *out,
				  struct dbx_error *err);
	void (*destroy)(struct dbx_credential *self);
};

/* Where credentials read their configuration: the process environment in production. */
struct dbx_env {
	const char *(*get)(void *ctx, const char *name);
	void *ctx;
};

const struct dbx_env *dbx_env_process(void);

/*
 * The credential named name ("env", "auto", ...), using transport (no auth
 * layer: curl + retry) for token requests. NULL with err filled when the
 * source cannot be configured (e.g. the environment lacks AZURE_CLIENT_ID).
 *
 * Every source constructor below takes the same transport, cloud (NULL: the
 * default), env (NULL: the process environment) and clock (NULL:
 * dbx_clock_system()): the clock bounds its requests (monotonic deadlines)
 * and dates its assertions and token expiries (wall time). The Azure CLI
 * source times a child process, so its clock must run in real time.
 */
struct dbx_credential *dbx_credential_new(const char *name, struct dbx_transport *transport,
					  const struct dbx_cloud *cloud, const struct dbx_env *env,
					  const struct dbx_clock *clock, struct dbx_error *err);

/* Client secret from AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET, AZURE_AUTHORITY_HOST.
 */
struct dbx_credential *dbx_cred_env_secret_new(struct dbx_transport *transport,
					       const struct dbx_cloud *cloud,
					       const struct dbx_env *env,
					       const struct dbx_clock *clock,
					       struct dbx_error *err);

/*
 * Client certificate: AZURE_TENANT_ID, AZURE_CLIENT_ID,
 * AZURE_CLIENT_CERTIFICATE_PATH (PEM with certificate and private key),
 * optional AZURE_CLIENT_CERTIFICATE_PASSWORD; an RS256 JWT client assertion
 * with an x5t header, signed with OpenSSL.
 */
struct dbx_credential *dbx_cred_env_cert_new(struct dbx_transport *transport,
					     const struct dbx_cloud *cloud,
					     const struct dbx_env *env,
					     const struct dbx_clock *clock, struct dbx_error *err);

/* Workload identity: AZURE_FEDERATED_TOKEN_FILE (re-read when it changes), AZURE_CLIENT_ID,
 * AZURE_TENANT_ID. */
struct dbx_credential *dbx_cred_workload_new(struct dbx_transport *transport,
					     const struct dbx_cloud *cloud,
					     const struct dbx_env *env,
					     const struct dbx_clock *clock, struct dbx_error *err);

/*
 * Managed identity: IDENTITY_ENDPOINT + IDENTITY_HEADER (App Service,
 * Container Apps), else IMDS at http://169.254.169.254 with "Metadata:
 * true"; AZURE_CLIENT_ID selects a user-assigned identity. transport must
 * allow plain http to exactly those endpoints.
 */
struct dbx_credential *dbx_cred_msi_new(struct dbx_transport *transport,
					const struct dbx_cloud *cloud, const struct dbx_env *env,
					const struct dbx_clock *clock, struct dbx_error *err);

/* Azure CLI: az account get-access-token --resource R --output json, run without a shell, bounded
 * in time. */
struct dbx_credential *dbx_cred_cli_new(struct dbx_transport *transport,
					const struct dbx_cloud *cloud, const struct dbx_env *env,
					const struct dbx_clock *clock, struct dbx_error *err);

void dbx_credential_destroy(struct dbx_credential *cred);

/*
 * The auth layer: a transport that adds "Authorization: Bearer" for
 * req->scope, from a per-scope cache refreshed 5 minutes (or half the
 * lifetime, for short tokens) before expiry, one refresh at a time per scope.
 * While the cached token is still valid the renewal runs in the background
 * and requests go on with the old token; a failed renewal is tried again
 * after 30 s. Otherwise a request gets its token within its own
 * deadline_ms: a refresh it makes passes that deadline to the credential,
 * and one that waits for another request's refresh gives up at it with
 * DBX_ETIMEDOUT (the clock's wait_until). A 401 answer is retried once
 * with a fresh token. Owns inner, not cred. NULL on ENOMEM.
 */
struct dbx_transport *dbx_http_auth_new(struct dbx_transport *inner, struct dbx_credential *cred,
					const struct dbx_clock *clock);

/*
 * Wait until no token refresh runs in the background. A token that is due
 * for renewal but still valid is renewed in a thread of its own while
 * requests go on with it; destroying the layer waits for that thread, and
 * tests call this to observe the renewal.
 */
void dbx_http_auth_wait_idle(struct dbx_transport *auth);

/*
 * Get (and cache) the token for scope now, through the auth layer auth made
 * by dbx_http_auth_new(): the mount asks once before mounting, so that a
 * credential no source can satisfy stops it at start, and the token it got
 * serves the first requests. err says what each source lacked.
 */
DBX_MUST_CHECK enum dbx_err dbx_http_auth_prime(struct dbx_transport *auth, const char *scope,
						struct dbx_error *err);

/*
 * A credential file (-o credential_file=PATH; the man page, docs/databoxfs.8,
 * "CREDENTIAL FILE", is its contract): the credential chain's variables as
 * NAME=VALUE lines, so that an fstab line or a systemd unit names a file
 * instead of putting a secret on a command line or in a unit. Lines are
 * "NAME=VALUE", blank, or comments (first non-blank character '#'); a
 * value is taken as written up to the end of the line (blanks around it
 * dropped, no escapes, '#' is part of it), or whole between one pair of
 * single or double quotes (kept as is, blanks included). NAME is one of the
 * variables the sources read (dbx_credfile_names); each at most once. No
 * control characters but tab, no NUL, at most 64 KiB. Messages name the
 * line and never hold a value.
 */
struct dbx_credfile;

/*
 * Parse len bytes of text (what names the file in messages). On success
 * *out owns copies of the values (dbx_credfile_free wipes them). On a bad
 * line DBX_ECONFIG with err saying "<what>: line N: <why>".
 */
DBX_MUST_CHECK enum dbx_err dbx_credfile_parse(const char *text, size_t len, const char *what,
					       struct dbx_credfile **out, struct dbx_error *err);

/*
 * Read and parse the file at path, once. It must be a regular file owned by
 * owner (the mounting user) or root, with no permission bits for group or
 * others (0600 or 0400); otherwise DBX_ECONFIG with err saying what is
 * wrong and how to fix it. The read buffer is wiped.
 */
DBX_MUST_CHECK enum dbx_err dbx_credfile_load(const char *path, uid_t owner,
					      struct dbx_credfile **out, struct dbx_error *err);

/*
 * The environment the credential chain reads through: a variable the file
 * names has the file's value (an empty one hides the process's), any other
 * comes from fallback (NULL: the process environment). Valid while cf is.
 */
const struct dbx_env *dbx_credfile_env(struct dbx_credfile *cf, const struct dbx_env *fallback);

/* The names a credential file may set, NULL-terminated. */
const char *const *dbx_credfile_names(void);

/* Wipe and free cf (NULL is fine). */
void dbx_credfile_free(struct dbx_credfile *cf);

#endif
