/*
 * entra.c: Microsoft Entra ID (login.microsoftonline.com and the other
 * clouds' login hosts), just enough for app sign-in:
 *
 *   POST /{tenant}/oauth2/v2.0/token   grant_type=client_credentials&scope=R/.default
 *   POST /{tenant}/oauth2/token        v1 form, resource=R (string expiries)
 *   GET  /{tenant}/v2.0/.well-known/openid-configuration   (MSAL tenant discovery)
 *   GET  /{tenant}/.well-known/openid-configuration        (v1 flavour)
 *   GET  /common/discovery/instance?api-version=1.1&authorization_endpoint=...
 *   GET  /{tenant}/discovery/v2.0/keys
 *
 * client_credentials takes a client_secret, or a client_assertion: a JWT
 * signed with the key of the client's registered certificate_pem (RS256,
 * x5t, aud, iss/sub, exp/nbf, jti checked as Entra does) or a federated
 * token registered for the client. Grants are dispatched through grants[].
 * Errors use the AADSTS shape MSAL parses. Every issued token is counted
 * (dbx_emu_token_count) and its grant type and scope go to the request log.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "emu.h"

#define MAXSEG	 8
#define FORM_MAX 8192

struct entra_ctx {
	const char *tenant;
	const char *login; /* host as the client sees it */
	bool v1;
	const char *body; /* form body */
};

/* URL-decode a form value (+ is a space). */
static void form_decode(const char *in, size_t len, char *out, size_t outlen)
{
	size_t i, j = 0;

	for (i = 0; i < len && j + 1 < outlen; i++) {
		if (in[i] == '+') {
			out[j++] = ' ';
		} else if (in[i] == '%' && i + 2 < len && isxdigit((unsigned char)in[i + 1]) &&
			   isxdigit((unsigned char)in[i + 2])) {
			char hex[3] = {in[i + 1], in[i + 2], 0};

			out[j++] = (char)strtol(hex, NULL, 16);
			i += 2;
		} else {
			out[j++] = in[i];
		}
	}
	out[j] = '\0';
}

/* Value of key in an x-www-form-urlencoded body; false when absent. */
static bool form_get(const char *body, const char *key, char *out, size_t outlen)
{
	const char *p = body;
	size_t kl = strlen(key);

	while (p && *p) {
		const char *amp = strchr(p, '&'), *end = amp ? amp : p + strlen(p);
		char name[128];
		const char *eq = memchr(p, '=', (size_t)(end - p));

		if (eq) {
			form_decode(p, (size_t)(eq - p), name, sizeof(name));
			if (strlen(name) == kl && !strcmp(name, key)) {
				form_decode(eq + 1, (size_t)(end - eq - 1), out, outlen);
				return true;
			}
		}
		p = amp ? amp + 1 : NULL;
	}
	return false;
}

__attribute__((format(printf, 5, 6))) static void aad_error(struct dbx_emu_reply *r,
							    unsigned int status, const char *error,
							    int code, const char *fmt, ...)
{
	struct json_object *o = json_object_new_object(), *codes = json_object_new_array();
	char msg[1024], desc[1400], trace[37], corr[37], ts[32], uri[128];
	struct tm tm;
	time_t now = time(NULL);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	dbx_emu_guid(trace);
	dbx_emu_guid(corr);
	gmtime_r(&now, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%d %H:%M:%SZ", &tm);
	snprintf(desc, sizeof(desc),
		 "AADSTS%d: %s\r\nTrace ID: %s\r\nCorrelation ID: %s\r\nTimestamp: %s", code, msg,
		 trace, corr, ts);
	snprintf(uri, sizeof(uri), "https://login.microsoftonline.com/error?code=%d", code);
	json_object_array_add(codes, json_object_new_int(code));
	json_object_object_add(o, "error", json_object_new_string(error));
	json_object_object_add(o, "error_description", json_object_new_string(desc));
	json_object_object_add(o, "error_codes", codes);
	json_object_object_add(o, "timestamp", json_object_new_string(ts));
	json_object_object_add(o, "trace_id", json_object_new_string(trace));
	json_object_object_add(o, "correlation_id", json_object_new_string(corr));
	json_object_object_add(o, "error_uri", json_object_new_string(uri));
	dbx_emu_reply_json(r, status, o);
}

/*
 * The audience for a v2 scope ("https://management.azure.com/.default"):
 * the scope minus ".default" for ARM (trailing slash kept), minus
 * "/.default" for Key Vault. Returns false for unknown resources.
 */
bool dbx_emu_audience_for(const char *resource, char *aud, size_t len)
{
	static const char *const arm[] = {
	    "https://management.azure.com/",	     "https://management.core.windows.net/",
	    "https://management.usgovcloudapi.net/", "https://management.core.usgovcloudapi.net/",
	    "https://management.chinacloudapi.cn/",  "https://management.core.chinacloudapi.cn/",
	};
	static const char *const kv[] = {
	    "https://vault.azure.net", "https://vault.usgovcloudapi.net", "https://vault.azure.cn"};
	size_t i, rl = strlen(resource);

	while (rl && resource[rl - 1] == '/')
		rl--;
	for (i = 0; i < sizeof(arm) / sizeof(arm[0]); i++) {
		if (strlen(arm[i]) - 1 == rl && !strncasecmp(arm[i], resource, rl)) {
			snprintf(aud, len, "%s", arm[i]);
			return true;
		}
	}
	for (i = 0; i < sizeof(kv) / sizeof(kv[0]); i++) {
		if (strlen(kv[i]) == rl && !strncasecmp(kv[i], resource, rl)) {
			snprintf(aud, len, "%s", kv[i]);
			return true;
		}
	}
	return false;
}

/* Pick the resource out of a v2 scope list; NULL + error reply on failure. */
static bool resource_from_scope(struct dbx_emu_reply *r, const char *scope, char *res, size_t len)
{
	char buf[1024], *save = NULL, *tok;

	snprintf(buf, sizeof(buf), "%s", scope);
	for (tok = strtok_r(buf, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
		size_t tl = strlen(tok);

		if (!strcmp(tok, "openid") || !strcmp(tok, "profile") ||
		    !strcmp(tok, "offline_access"))
			continue;
		if (tl > 8 && !strcmp(tok + tl - 8, ".default")) {
			tok[tl - 8] = '\0';
			snprintf(res, len, "%s", tok);
			return true;
		}
		aad_error(r, 400, "invalid_scope", 1002012,
			  "The provided value for scope %s is not valid. Client credential flows "
			  "must have a scope value with /.default suffixed to the resource "
			  "identifier (application ID URI).",
			  tok);
		return false;
	}
	aad_error(r, 400, "invalid_scope", 70011,
		  "The provided request must include a 'scope' input parameter.");
	return false;
}

/* ---- client assertions (certificates, federated tokens) ---- */

#define ASSERTION_MAX  16384
#define ASSERTION_TYPE "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

/* Decode base64url (padded or not); returns a malloc'd buffer or NULL. */
static unsigned char *b64url_decode(const char *in, size_t len, size_t *outlen)
{
	size_t i, n = len, padded = (len + 3) / 4 * 4;
	char *tmp;
	unsigned char *out;
	int got;

	while (n && in[n - 1] == '=')
		n--;
	padded = (n + 3) / 4 * 4;
	tmp = malloc(padded + 1);
	out = malloc(padded / 4 * 3 + 1);
	if (!tmp || !out || n % 4 == 1)
		goto fail;
	for (i = 0; i < n; i++) {
		char ch = in[i];

		if (ch == '-')
			ch = '+';
		else if (ch == '_')
			ch = '/';
		else if (!isalnum((unsigned char)ch) && ch != '+' && ch != '/')
			goto fail;
		tmp[i] = ch;
	}
	for (; i < padded; i++)
		tmp[i] = '=';
	tmp[padded] = '\0';
	got = EVP_DecodeBlock(out, (unsigned char *)tmp, (int)padded);
	if (got < 0)
		goto fail;
	*outlen = (size_t)got - (padded - n);
	out[*outlen] = '\0';
	free(tmp);
	return out;
fail:
	free(tmp);
	free(out);
	return NULL;
}

/* Parse one base64url JWT segment as a JSON object. */
static struct json_object *jwt_part(const char *seg, size_t len)
{
	size_t n;
	unsigned char *raw = b64url_decode(seg, len, &n);
	struct json_object *o;

	if (!raw)
		return NULL;
	o = json_tokener_parse((char *)raw);
	free(raw);
	if (o && !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		o = NULL;
	}
	return o;
}

static int64_t jint(struct json_object *o, const char *key, bool *present)
{
	struct json_object *v;

	*present =
	    o && json_object_object_get_ex(o, key, &v) &&
	    (json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double));
	return *present ? json_object_get_int64(v) : 0;
}

/*
 * Check an RS256 signature over "header.payload" with the registered
 * certificate, and that the header's x5t is that certificate's SHA-1
 * thumbprint (base64url, padded or not). Returns 0, or -1 with a reason.
 */
static int cert_signature_ok(const char *pem, struct json_object *hdr, const char *signed_part,
			     size_t signed_len, const char *sig64, char *why, size_t whylen)
{
	BIO *bio = BIO_new_mem_buf(pem, -1);
	X509 *x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
	EVP_PKEY *pk = x ? X509_get_pubkey(x) : NULL;
	EVP_MD_CTX *md = NULL;
	unsigned char *der = NULL, thumb[20], *sig = NULL;
	const char *x5t = dbx_emu_jstr(hdr, "x5t"), *alg = dbx_emu_jstr(hdr, "alg");
	char *want = NULL;
	size_t siglen = 0, xl;
	int derlen, rc = -1;

	if (!pk) {
		snprintf(why, whylen, "The registered certificate cannot be read.");
		goto out;
	}
	derlen = i2d_X509(x, &der);
	if (derlen <= 0 || !SHA1(der, (size_t)derlen, thumb))
		goto out;
	want = dbx_emu_b64url(thumb, sizeof(thumb));
	xl = x5t ? strlen(x5t) : 0;
	while (xl && x5t[xl - 1] == '=')
		xl--;
	if (!want || !x5t || xl != strlen(want) || strncmp(want, x5t, xl)) {
		snprintf(
		    why, whylen,
		    "Client assertion contains an invalid signature. [Reason - The key was not "
		    "found., Thumbprint of key used by client: '%.64s']",
		    x5t ? x5t : "");
		goto out;
	}
	if (!alg || strcmp(alg, "RS256")) {
		snprintf(why, whylen,
			 "Client assertion contains an invalid signature. [Reason - The algorithm "
			 "'%.32s' is not supported.]",
			 alg ? alg : "");
		goto out;
	}
	sig = b64url_decode(sig64, strlen(sig64), &siglen);
	md = EVP_MD_CTX_new();
	if (!sig || !md || EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pk) != 1 ||
	    EVP_DigestVerify(md, sig, siglen, (const unsigned char *)signed_part, signed_len) !=
		1) {
		snprintf(why, whylen,
			 "Client assertion contains an invalid signature. [Reason - The provided "
			 "signature value did not match the expected signature value.]");
		goto out;
	}
	rc = 0;
out:
	EVP_MD_CTX_free(md);
	free(sig);
	free(want);
	OPENSSL_free(der);
	EVP_PKEY_free(pk);
	X509_free(x);
	BIO_free(bio);
	return rc;
}

/* Is the assertion one of the client's registered federated tokens? */
static bool federated_match(struct json_object *client, const char *assertion)
{
	struct json_object *list = dbx_emu_jarray(client, "federated_tokens");
	const char *one = dbx_emu_jstr(client, "federated_token");
	size_t i;

	if (one && !strcmp(one, assertion))
		return true;
	for (i = 0; list && i < json_object_array_length(list); i++) {
		const char *t = json_object_get_string(json_object_array_get_idx(list, i));

		if (t && !strcmp(t, assertion))
			return true;
	}
	return false;
}

/* A federated token's sub must be one of the client's federated_subjects, if it lists any. */
static bool federated_subject_ok(struct json_object *client, struct json_object *payload)
{
	struct json_object *subs = dbx_emu_jarray(client, "federated_subjects");
	const char *sub = dbx_emu_jstr(payload, "sub");
	size_t i;

	if (!subs)
		return true;
	for (i = 0; sub && i < json_object_array_length(subs); i++) {
		const char *s = json_object_get_string(json_object_array_get_idx(subs, i));

		if (s && !strcmp(s, sub))
			return true;
	}
	return false;
}

/* aud must be this tenant's token endpoint (v2.0 or v1 path) on this login host. */
static bool assertion_aud_ok(struct entra_ctx *c, const char *aud)
{
	char v2[512], v1[512];

	if (!aud)
		return false;
	snprintf(v2, sizeof(v2), "https://%s/%s/oauth2/v2.0/token", c->login, c->tenant);
	snprintf(v1, sizeof(v1), "https://%s/%s/oauth2/token", c->login, c->tenant);
	return !strcasecmp(aud, v2) || !strcasecmp(aud, v1);
}

/*
 * client_assertion (jwt-bearer) in place of a secret: a federated token
 * registered for the client (exact match, sub among federated_subjects), or
 * a JWT signed with the key of the client's registered certificate_pem with
 * x5t, aud (the token endpoint), iss == sub == client_id, exp, nbf and jti
 * as Entra checks them. On success *kind names the credential; on failure
 * r holds the AADSTS error.
 */
static bool client_assertion_ok(struct dbx_emu *e, struct dbx_emu_reply *r, struct entra_ctx *c,
				struct json_object *client, const char *client_id,
				const char *atype, const char **kind)
{
	char *assertion = malloc(ASSERTION_MAX), why[400];
	struct json_object *hdr = NULL, *pl = NULL;
	const char *d1, *d2, *pem = dbx_emu_jstr(client, "certificate_pem");
	int64_t now = (int64_t)time(NULL), exp, nbf;
	bool ok = false, has_exp, has_nbf;

	(void)e;
	if (!assertion) {
		aad_error(r, 500, "server_error", 50000, "Out of memory.");
		return false;
	}
	if (strcmp(atype, ASSERTION_TYPE)) {
		aad_error(r, 400, "invalid_request", 50027,
			  "Invalid client_assertion_type '%.100s'; only '" ASSERTION_TYPE
			  "' is supported.",
			  atype);
		goto out;
	}
	if (!form_get(c->body, "client_assertion", assertion, ASSERTION_MAX) || !*assertion) {
		aad_error(r, 400, "invalid_request", 900144,
			  "The request body must contain the following parameter: "
			  "'client_assertion'.");
		goto out;
	}
	d1 = strchr(assertion, '.');
	d2 = d1 ? strchr(d1 + 1, '.') : NULL;
	if (d1 && d2) {
		hdr = jwt_part(assertion, (size_t)(d1 - assertion));
		pl = jwt_part(d1 + 1, (size_t)(d2 - d1 - 1));
	}
	if (federated_match(client, assertion)) {
		if (!federated_subject_ok(client, pl)) {
			aad_error(r, 400, "invalid_client", 70021,
				  "No matching federated identity record found for presented "
				  "assertion subject '%.200s'.",
				  dbx_emu_jstr(pl, "sub") ? dbx_emu_jstr(pl, "sub") : "");
			goto out;
		}
		*kind = "client_assertion_federated";
		ok = true;
		goto out;
	}
	if (!hdr || !pl) {
		aad_error(r, 400, "invalid_request", 50027, "JWT token is invalid or malformed.");
		goto out;
	}
	if (!pem) {
		if (dbx_emu_jstr(client, "federated_token") ||
		    dbx_emu_jarray(client, "federated_tokens"))
			aad_error(r, 400, "invalid_client", 70021,
				  "No matching federated identity record found for presented "
				  "assertion.");
		else
			aad_error(
			    r, 401, "invalid_client", 700027,
			    "Client assertion contains an invalid signature. [Reason - The key "
			    "was not found.] No certificate is registered for app '%s'.",
			    client_id);
		goto out;
	}
	if (cert_signature_ok(pem, hdr, assertion, (size_t)(d2 - assertion), d2 + 1, why,
			      sizeof(why))) {
		aad_error(r, 401, "invalid_client", 700027, "%s", why);
		goto out;
	}
	if (!assertion_aud_ok(c, dbx_emu_jstr(pl, "aud"))) {
		aad_error(
		    r, 400, "invalid_client", 700212,
		    "The audience '%.200s' of the client assertion is not this token endpoint "
		    "'https://%s/%s/oauth2/v2.0/token'.",
		    dbx_emu_jstr(pl, "aud") ? dbx_emu_jstr(pl, "aud") : "", c->login, c->tenant);
		goto out;
	}
	if (!dbx_emu_jstr(pl, "iss") || !dbx_emu_jstr(pl, "sub") ||
	    strcasecmp(dbx_emu_jstr(pl, "iss"), client_id) ||
	    strcasecmp(dbx_emu_jstr(pl, "sub"), client_id)) {
		aad_error(r, 400, "invalid_client", 700021,
			  "Client assertion application identifier doesn't match 'client_id' "
			  "parameter. Review the documentation at "
			  "https://learn.microsoft.com/entra/identity-platform/"
			  "certificate-credentials .");
		goto out;
	}
	exp = jint(pl, "exp", &has_exp);
	nbf = jint(pl, "nbf", &has_nbf);
	if (!has_exp || exp <= now || exp > now + 24 * 3600 || (has_nbf && nbf > now + 60)) {
		aad_error(r, 401, "invalid_client", 700024,
			  "Client assertion is not within its valid time range. Current time: "
			  "%lld, assertion valid from %lld, expiry time of assertion %lld.",
			  (long long)now, (long long)nbf, (long long)exp);
		goto out;
	}
	if (!dbx_emu_jstr(pl, "jti") || !*dbx_emu_jstr(pl, "jti")) {
		aad_error(r, 400, "invalid_request", 50027,
			  "JWT token is invalid or malformed: the client assertion has no 'jti'.");
		goto out;
	}
	*kind = "client_assertion_certificate";
	ok = true;
out:
	json_object_put(hdr);
	json_object_put(pl);
	explicit_bzero(assertion, ASSERTION_MAX);
	free(assertion);
	return ok;
}

static void grant_client_credentials(struct dbx_emu *e, struct dbx_emu_req *q,
				     struct dbx_emu_reply *r, struct entra_ctx *c)
{
	char client_id[256] = "", secret[512] = "", scope[1024] = "", resource[512] = "";
	char aud[512], atype[128] = "";
	const char *cred = NULL; /* the assertion kind, NULL = client secret */
	bool bad_secret;
	struct json_object *client, *o;
	const char *want, *oid, *tok;
	int lifetime;
	time_t now = time(NULL);

	form_get(c->body, "client_id", client_id, sizeof(client_id));
	if (!client_id[0]) {
		aad_error(r, 400, "invalid_request", 900144,
			  "The request body must contain the following parameter: 'client_id'.");
		return;
	}
	if (c->v1) {
		if (!form_get(c->body, "resource", resource, sizeof(resource)) || !resource[0]) {
			aad_error(r, 400, "invalid_request", 900144,
				  "The request body must contain the following parameter: "
				  "'resource'.");
			return;
		}
	} else {
		form_get(c->body, "scope", scope, sizeof(scope));
		if (!resource_from_scope(r, scope, resource, sizeof(resource)))
			return;
	}
	client = dbx_emu_find_client(e, c->tenant, client_id);
	if (!client) {
		aad_error(r, 400, "unauthorized_client", 700016,
			  "Application with identifier '%s' was not found in the directory '%s'. "
			  "This can happen if the application has not been installed by the "
			  "administrator of the tenant or consented to by any user in the tenant. "
			  "You may have sent your authentication request to the wrong tenant.",
			  client_id, c->tenant);
		return;
	}
	if (form_get(c->body, "client_assertion_type", atype, sizeof(atype))) {
		if (!client_assertion_ok(e, r, c, client, client_id, atype, &cred))
			return;
	} else if (!form_get(c->body, "client_secret", secret, sizeof(secret))) {
		aad_error(r, 401, "invalid_client", 7000216,
			  "'client_assertion', 'client_secret' or 'request' is required for the "
			  "'client_credentials' grant type.");
		return;
	}
	want = dbx_emu_jstr(client, "client_secret");
	bad_secret = !cred && (!want || strcmp(want, secret));
	explicit_bzero(secret, sizeof(secret));
	if (bad_secret) {
		aad_error(r, 401, "invalid_client", 7000215,
			  "Invalid client secret provided. Ensure the secret being sent in the "
			  "request is the client secret value, not the client secret ID, for a "
			  "secret added to app '%s'.",
			  client_id);
		return;
	}
	if (!dbx_emu_audience_for(resource, aud, sizeof(aud))) {
		aad_error(r, 400, "invalid_resource", 500011,
			  "The resource principal named %s was not found in the tenant named %s. "
			  "This can happen if the application has not been installed by the "
			  "administrator of the tenant or consented to by any user in the tenant. "
			  "You might have sent your authentication request to the wrong tenant.",
			  resource, c->tenant);
		return;
	}
	if (c->v1)
		snprintf(aud, sizeof(aud), "%s", resource);
	lifetime = dbx_emu_token_lifetime(e, client);
	oid = dbx_emu_jstr(client, "object_id") ? dbx_emu_jstr(client, "object_id") : client_id;
	tok = dbx_emu_token_issue(e, dbx_emu_jstr(client, "tenant_id"),
				  dbx_emu_jstr(client, "client_id"), oid, aud, lifetime);
	if (!tok) {
		aad_error(r, 500, "server_error", 50000, "There was an error issuing a token.");
		return;
	}
	dbx_emu_token_count(e, "client_credentials", cred ? cred : "client_secret", aud);
	o = json_object_new_object();
	json_object_object_add(o, "token_type", json_object_new_string("Bearer"));
	if (c->v1) {
		char s[32];

		snprintf(s, sizeof(s), "%d", lifetime);
		json_object_object_add(o, "expires_in", json_object_new_string(s));
		json_object_object_add(o, "ext_expires_in", json_object_new_string(s));
		snprintf(s, sizeof(s), "%lld", (long long)now + lifetime);
		json_object_object_add(o, "expires_on", json_object_new_string(s));
		snprintf(s, sizeof(s), "%lld", (long long)now);
		json_object_object_add(o, "not_before", json_object_new_string(s));
		json_object_object_add(o, "resource", json_object_new_string(resource));
	} else {
		json_object_object_add(o, "expires_in", json_object_new_int(lifetime));
		json_object_object_add(o, "ext_expires_in", json_object_new_int(lifetime));
	}
	json_object_object_add(o, "access_token", json_object_new_string(tok));
	dbx_emu_reply_json(r, 200, o);
}

/* One row per OAuth2 grant_type; add client assertions, IMDS-like flows here. */
static const struct grant {
	const char *type;
	void (*fn)(struct dbx_emu *e, struct dbx_emu_req *q, struct dbx_emu_reply *r,
		   struct entra_ctx *c);
} grants[] = {
    {"client_credentials", grant_client_credentials},
};

static void token_endpoint(struct dbx_emu *e, struct dbx_emu_req *q, struct dbx_emu_reply *r,
			   struct entra_ctx *c)
{
	char gt[128] = "";
	size_t i;

	r->secret_body = true;
	if (strcmp(q->method, "POST")) {
		aad_error(r, 405, "invalid_request", 900561,
			  "The endpoint only accepts POST requests. Received a %s request.",
			  q->method);
		return;
	}
	c->body = q->body ? q->body : "";
	if (!dbx_emu_tenant_known(e, c->tenant)) {
		aad_error(r, 400, "invalid_request", 90002,
			  "Tenant '%s' not found. Check to make sure you have the correct tenant "
			  "ID and are signing into the correct cloud. Check with your subscription "
			  "administrator, this may happen if there are no active subscriptions for "
			  "the tenant.",
			  c->tenant);
		return;
	}
	form_get(c->body, "grant_type", r->log_grant, sizeof(r->log_grant));
	if (!form_get(c->body, "scope", r->log_scope, sizeof(r->log_scope)))
		form_get(c->body, "resource", r->log_scope, sizeof(r->log_scope));
	if (!form_get(c->body, "grant_type", gt, sizeof(gt))) {
		aad_error(r, 400, "invalid_request", 900144,
			  "The request body must contain the following parameter: 'grant_type'.");
		return;
	}
	for (i = 0; i < sizeof(grants) / sizeof(grants[0]); i++) {
		if (!strcmp(gt, grants[i].type)) {
			grants[i].fn(e, q, r, c);
			return;
		}
	}
	aad_error(r, 400, "unsupported_grant_type", 70003,
		  "The app requested an unsupported grant type '%s'.", gt);
}

static void openid_config(struct dbx_emu *e, struct dbx_emu_reply *r, struct entra_ctx *c, bool v2)
{
	struct json_object *o = json_object_new_object(), *a;
	const char *ov = v2 ? "/v2.0" : "";
	const char *t = c->tenant;
	bool generic = !strcasecmp(t, "common") || !strcasecmp(t, "organizations") ||
		       !strcasecmp(t, "consumers");
	char buf[512];

	if (!generic && !dbx_emu_tenant_known(e, t)) {
		aad_error(r, 400, "invalid_tenant", 90002,
			  "Tenant '%s' not found. Check to make sure you have the correct tenant "
			  "ID and are signing into the correct cloud.",
			  t);
		return;
	}
#define ADD_URL(key, fmt, ...)                                                                     \
	do {                                                                                       \
		snprintf(buf, sizeof(buf), fmt, __VA_ARGS__);                                      \
		json_object_object_add(o, key, json_object_new_string(buf));                       \
	} while (0)
	ADD_URL("token_endpoint", "https://%s/%s/oauth2%s/token", c->login, t, ov);
	a = json_object_new_array();
	json_object_array_add(a, json_object_new_string("client_secret_post"));
	json_object_array_add(a, json_object_new_string("private_key_jwt"));
	json_object_array_add(a, json_object_new_string("client_secret_basic"));
	json_object_object_add(o, "token_endpoint_auth_methods_supported", a);
	ADD_URL("jwks_uri", "https://%s/%s/discovery%s/keys", c->login, t, ov);
	a = json_object_new_array();
	json_object_array_add(a, json_object_new_string("query"));
	json_object_array_add(a, json_object_new_string("fragment"));
	json_object_array_add(a, json_object_new_string("form_post"));
	json_object_object_add(o, "response_modes_supported", a);
	a = json_object_new_array();
	json_object_array_add(a, json_object_new_string("pairwise"));
	json_object_object_add(o, "subject_types_supported", a);
	a = json_object_new_array();
	json_object_array_add(a, json_object_new_string("RS256"));
	json_object_object_add(o, "id_token_signing_alg_values_supported", a);
	a = json_object_new_array();
	json_object_array_add(a, json_object_new_string("code"));
	json_object_array_add(a, json_object_new_string("id_token"));
	json_object_array_add(a, json_object_new_string("code id_token"));
	json_object_array_add(a, json_object_new_string("id_token token"));
	json_object_object_add(o, "response_types_supported", a);
	a = json_object_new_array();
	json_object_array_add(a, json_object_new_string("openid"));
	json_object_array_add(a, json_object_new_string("profile"));
	json_object_array_add(a, json_object_new_string("email"));
	json_object_array_add(a, json_object_new_string("offline_access"));
	json_object_object_add(o, "scopes_supported", a);
	if (v2)
		ADD_URL("issuer", "https://%s/%s/v2.0", c->login, generic ? "{tenantid}" : t);
	else
		ADD_URL("issuer", "https://sts.windows.net/%s/", generic ? "{tenantid}" : t);
	json_object_object_add(o, "request_uri_parameter_supported", json_object_new_boolean(0));
	json_object_object_add(o, "userinfo_endpoint",
			       json_object_new_string("https://graph.microsoft.com/oidc/userinfo"));
	ADD_URL("authorization_endpoint", "https://%s/%s/oauth2%s/authorize", c->login, t, ov);
	ADD_URL("device_authorization_endpoint", "https://%s/%s/oauth2%s/devicecode", c->login, t,
		ov);
	json_object_object_add(o, "http_logout_supported", json_object_new_boolean(1));
	json_object_object_add(o, "frontchannel_logout_supported", json_object_new_boolean(1));
	ADD_URL("end_session_endpoint", "https://%s/%s/oauth2%s/logout", c->login, t, ov);
	ADD_URL("kerberos_endpoint", "https://%s/%s/kerberos", c->login, t);
	json_object_object_add(o, "tenant_region_scope", json_object_new_string("WW"));
	json_object_object_add(o, "cloud_instance_name",
			       json_object_new_string(strstr(c->login, ".us") ? "microsoftonline.us"
						      : strstr(c->login, ".cn")
							  ? "partner.microsoftonline.cn"
							  : "microsoftonline.com"));
	json_object_object_add(o, "cloud_graph_host_name",
			       json_object_new_string("graph.windows.net"));
	json_object_object_add(o, "msgraph_host", json_object_new_string("graph.microsoft.com"));
	json_object_object_add(o, "rbac_url", json_object_new_string("https://pas.windows.net"));
#undef ADD_URL
	dbx_emu_reply_json(r, 200, o);
}

static void instance_discovery(struct dbx_emu_req *q, struct dbx_emu_reply *r, struct entra_ctx *c)
{
	const char *ae = dbx_emu_arg(q, "authorization_endpoint");
	struct json_object *o = json_object_new_object(), *md = json_object_new_array();
	struct json_object *m = json_object_new_object(), *aliases = json_object_new_array();
	char tenant[128] = "common", buf[512];

	if (ae && !strncasecmp(ae, "https://", 8)) {
		const char *p = strchr(ae + 8, '/');

		if (p)
			snprintf(tenant, sizeof(tenant), "%.*s", (int)strcspn(p + 1, "/?"), p + 1);
	}
	snprintf(buf, sizeof(buf), "https://%s/%s/v2.0/.well-known/openid-configuration", c->login,
		 tenant);
	json_object_object_add(o, "tenant_discovery_endpoint", json_object_new_string(buf));
	json_object_object_add(o, "api-version", json_object_new_string("1.1"));
	json_object_object_add(m, "preferred_network", json_object_new_string(c->login));
	json_object_object_add(m, "preferred_cache",
			       json_object_new_string(strcmp(c->login, "login.microsoftonline.com")
							  ? c->login
							  : "login.windows.net"));
	if (!strcmp(c->login, "login.microsoftonline.com")) {
		json_object_array_add(aliases, json_object_new_string("login.microsoftonline.com"));
		json_object_array_add(aliases, json_object_new_string("login.windows.net"));
		json_object_array_add(aliases, json_object_new_string("login.microsoft.com"));
		json_object_array_add(aliases, json_object_new_string("sts.windows.net"));
	} else {
		json_object_array_add(aliases, json_object_new_string(c->login));
	}
	json_object_object_add(m, "aliases", aliases);
	json_object_array_add(md, m);
	json_object_object_add(o, "metadata", md);
	dbx_emu_reply_json(r, 200, o);
}

static void not_found(struct dbx_emu_reply *r)
{
	r->status = 404;
	r->content_type = "text/html; charset=utf-8";
	r->body = strdup("<html><body>Not found</body></html>");
	r->body_len = r->body ? strlen(r->body) : 0;
}

void dbx_emu_entra_handle(struct dbx_emu *e, struct dbx_emu_req *q, struct dbx_emu_reply *r)
{
	struct entra_ctx c = {0};
	char *buf = strdup(q->path), *seg[MAXSEG];
	int n;

	if (!buf) {
		dbx_emu_reply_error(r, 500, "server_error", "Out of memory.");
		return;
	}
	n = dbx_emu_split_path(buf, seg, MAXSEG);
	c.login = q->host;
	c.tenant = n ? seg[0] : "";
	if (n < 2) {
		not_found(r);
	} else if (n == 4 && !strcmp(seg[1], "oauth2") && !strcmp(seg[2], "v2.0") &&
		   !strcmp(seg[3], "token")) {
		token_endpoint(e, q, r, &c);
	} else if (n == 3 && !strcmp(seg[1], "oauth2") && !strcmp(seg[2], "token")) {
		c.v1 = true;
		token_endpoint(e, q, r, &c);
	} else if (n == 4 && !strcmp(seg[1], "v2.0") && !strcmp(seg[2], ".well-known") &&
		   !strcmp(seg[3], "openid-configuration")) {
		openid_config(e, r, &c, true);
	} else if (n == 3 && !strcmp(seg[1], ".well-known") &&
		   !strcmp(seg[2], "openid-configuration")) {
		openid_config(e, r, &c, false);
	} else if (n == 3 && !strcmp(seg[1], "discovery") && !strcmp(seg[2], "instance")) {
		instance_discovery(q, r, &c);
	} else if (n >= 3 && !strcmp(seg[1], "discovery") && !strcmp(seg[n - 1], "keys")) {
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "keys", json_object_new_array());
		dbx_emu_reply_json(r, 200, o);
	} else {
		not_found(r);
	}
	free(buf);
}
