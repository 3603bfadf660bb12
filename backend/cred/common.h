/*
 * cred/common.h: pieces shared by the credential sources that speak to Entra ID
 * with a client assertion (certificate, workload identity) or parse a token
 * answer (managed identity, Azure CLI): base64url, the token endpoint URL,
 * the jwt-bearer grant, and token JSON parsing with wiping. Time comes from
 * the clock each source was built with (auth.h). Internal to backend/ and
 * the unit tests.
 */
#ifndef DATABOXFS_JWT_H
#define DATABOXFS_JWT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "databoxfs/auth.h"

/* Deadlines, in ms: one Entra token request (as cred/env.c), one managed-identity request. */
#define DBX_CRED_ENTRA_TIMEOUT_MS 60000u
#define DBX_CRED_MSI_TIMEOUT_MS	  10000u

/* The value of name in env, NULL when unset or empty. */
const char *dbx_cred_env_get(const struct dbx_env *env, const char *name);

/*
 * Look the n variables names[] up in env into vals[] (empty counts as
 * unset). When any is missing: false, with err DBX_EAUTH "<source>: X is not
 * set" / "<source>: X, Y and Z are not set" (cred/env.c's wording).
 */
bool dbx_cred_require(const char *source, const struct dbx_env *env, const char *const *names,
		      size_t n, const char **vals, struct dbx_error *err);

/* base64url (RFC 4648 5) of len bytes, without '=' padding. Caller frees; NULL on ENOMEM. */
char *dbx_base64url(const void *data, size_t len);

/* Free s after overwriting it with zeros (NULL is fine). */
void dbx_wipe_free(char *s);

/* Copy the first line of s (up to the first CR or LF, at most cap - 1 bytes) into buf; cap > 0. */
void dbx_cred_first_line(char *buf, size_t cap, const char *s);

/*
 * Overwrite every occurrence of secret in the NUL-terminated msg with "***"
 * (with as many '*' as the secret has characters when it is shorter than
 * three), in place: msg never grows, so it stays within its buffer. An empty
 * secret changes nothing.
 */
void dbx_cred_redact(char *msg, const char *secret);

/*
 * The Entra v2.0 token endpoint for tenant, as cred/env.c builds it:
 * *url = "https://<authority>/<url-escaped tenant>/oauth2/v2.0/token" and
 * *authority = "<host[:port]>" (for messages), both for the caller to free.
 * The authority is AZURE_AUTHORITY_HOST from env ("https://HOST[/]" or
 * "HOST", never http) or cloud->login_host. DBX_ECONFIG "<source>: ..." for
 * a bad authority, DBX_ENOMEM.
 */
DBX_MUST_CHECK enum dbx_err dbx_cred_token_endpoint(const char *source,
						    const struct dbx_cloud *cloud,
						    const struct dbx_env *env, const char *tenant,
						    char **url, char **authority,
						    struct dbx_error *err);

/*
 * The form body of a client-credentials grant:
 * "grant_type=client_credentials&client_id=<id>&<credential>=<value>&scope=<scope>",
 * client_id, value and scope URL-escaped, credential written as is (the
 * field name, after any fixed fields: "client_secret", or
 * "client_assertion_type=...&client_assertion"). It holds value: the caller
 * frees it with dbx_wipe_free. NULL on ENOMEM.
 */
char *dbx_cred_grant_body(const char *client_id, const char *credential, const char *value,
			  const char *scope);

/*
 * Turn Entra's non-200 answer in resp ({"error": "...", "error_description":
 * "AADSTS...: ...\r\nTrace ID: ..."}) into err and return its kind:
 * "<source>: <error>: <first line of error_description>", or without an
 * error code "<source>: token request to <authority> answered HTTP <status>";
 * DBX_ETHROTTLED for 429, DBX_EREMOTE for 5xx, else DBX_EAUTH; with
 * err->http_status, code and request id set. secret, when not NULL, is
 * redacted (dbx_cred_redact) from the message and the code, as it is and
 * URL-escaped.
 */
enum dbx_err dbx_cred_entra_refusal(const char *source, const char *authority,
				    const struct dbx_http_response *resp, const char *secret,
				    struct dbx_error *err);

/*
 * The deadline of one token request: cap_ms from now on clock, or the
 * caller's deadline_ms when that is earlier (0: the caller has none).
 */
uint64_t dbx_cred_deadline(const struct dbx_clock *clock, uint64_t cap_ms, uint64_t deadline_ms);

/*
 * POST the client-credentials grant for client_id to url for scope, proving
 * the client with the form field credential=secret (e.g. "client_secret"),
 * and fill *out from the answer (access_token, expires_in), the request
 * bounded by dbx_cred_deadline(clock, DBX_CRED_ENTRA_TIMEOUT_MS,
 * deadline_ms) and the expiry dated on clock (never NULL). Errors: at or
 * past that deadline DBX_ETIMEDOUT "<source>: token request to <authority>
 * did not finish within the timeout"; any other transport failure keeps
 * its kind ("<source>: token request to <authority> failed: ..."); a
 * non-200 answer is DBX_EAUTH (DBX_ETHROTTLED for 429, DBX_EREMOTE for 5xx)
 * "<source>: <error>: <first line of error_description>" with
 * err->http_status, code and request id set; a malformed 200 is DBX_EAUTH
 * naming what is wrong. No message holds the secret or a token; the
 * request body is wiped.
 */
DBX_MUST_CHECK enum dbx_err
dbx_cred_entra_grant(const char *source, struct dbx_transport *transport,
		     const struct dbx_clock *clock, uint64_t deadline_ms, const char *url,
		     const char *authority, const char *client_id, const char *credential,
		     const char *secret, const char *scope, struct dbx_token *out,
		     struct dbx_error *err);

/* dbx_cred_entra_grant with a jwt-bearer client_assertion (RFC 7523) as the proof. */
DBX_MUST_CHECK enum dbx_err
dbx_cred_assertion_grant(const char *source, struct dbx_transport *transport,
			 const struct dbx_clock *clock, uint64_t deadline_ms, const char *url,
			 const char *authority, const char *client_id, const char *assertion,
			 const char *scope, struct dbx_token *out, struct dbx_error *err);

/*
 * The message of a token request that failed in transport: DBX_ETIMEDOUT
 * "<source>: token request to <host> did not finish within the timeout (the
 * token endpoint is slow or unreachable): <why>", any other kind "<source>:
 * token request to <host> failed: <why>". Returns rc.
 */
enum dbx_err dbx_cred_transport_failure(const char *source, const char *host, enum dbx_err rc,
					const char *why, struct dbx_error *err);

/*
 * The token answer fields a source asks dbx_cred_parse_token() for, and the
 * types it accepts for each (docs/azure.md, "Credential sources"). A member
 * that is absent or null is absent; one of another type makes the answer
 * malformed, with the member named.
 */
struct dbx_token_fields {
	const char *token;	/* "access_token" / "accessToken": a non-empty string */
	const char *expires_on; /* absolute unix time; NULL: not read */
	const char *expires_in; /* seconds from now; NULL: not read */
	/*
	 * false: expires_on and expires_in are JSON numbers (whole, >= 0);
	 * true: also strings of digits (IMDS and App Service send them so).
	 */
	bool digit_strings;
	/*
	 * The member fallback_expiry reads when neither expires_on nor
	 * expires_in is there (Azure CLI's "expiresOn"), for messages; NULL
	 * when there is no fallback.
	 */
	const char *fallback;
};

/*
 * Parse a JSON token answer of len bytes: exactly one JSON object, no key
 * twice at any depth; the token under fields->token, the expiry from
 * fields->expires_on (preferred) or fields->expires_in counted from now
 * (the source's clock's wall time), each checked for its type when present.
 * When both are absent and fallback_expiry is not NULL, it is called with
 * the parsed object: it returns the expiry, 0 when fields->fallback is
 * absent or null, or -1 when it is there but not what it should be.
 * The parsed copies of the token are wiped before they are freed.
 * DBX_EAUTH "<source>: malformed token answer: <what>" or "<source>: the
 * token answer has no <field>"; DBX_ENOMEM.
 */
DBX_MUST_CHECK enum dbx_err dbx_cred_parse_token(const char *source, const char *body, size_t len,
						 const struct dbx_token_fields *fields,
						 time_t (*fallback_expiry)(const void *json_obj),
						 time_t now, struct dbx_token *out,
						 struct dbx_error *err);

/* Test hooks of the Azure CLI source. */
/* The time az may run before it is killed, in ms (0 restores 10 s). */
void dbx_cred_cli_set_timeout_ms(unsigned ms);
/* The environment the child's is derived from (NULL restores environ). */
void dbx_cred_cli_set_base_environ(char *const *envp);

#endif
