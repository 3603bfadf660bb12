/*
 * cred/common.c: what the credential sources of cred/env.c, cred/cert.c,
 * cred/workload.c, cred/msi.c and cred/cli.c share (common.h): environment
 * lookups, base64url for JWT assembly, the Entra v2.0 token endpoint and
 * its jwt-bearer client-credentials grant, the parsing of token answers,
 * and the redaction of secrets from messages. Token answers are parsed so
 * that every copy of the token json-c made (the tokener's buffer, the
 * string values) is wiped before it is freed; callers wipe the response
 * body itself.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#include "cred/common.h"
#include "core/json_util.h"

/* The client_assertion_type of a client assertion (RFC 7523), as a form field. */
#define JWT_BEARER                                                                                 \
	"client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer"

void dbx_wipe_free(char *s)
{
	if (!s)
		return;
	explicit_bzero(s, strlen(s));
	free(s);
}

void dbx_cred_redact(char *msg, const char *secret)
{
	size_t sl = strlen(secret);
	size_t r = sl < 3 ? sl : 3;
	char *p = sl ? strstr(msg, secret) : NULL;

	while (p) {
		memmove(p + r, p + sl, strlen(p + sl) + 1);
		memset(p, '*', r);
		p = strstr(p + r, secret);
	}
}

const char *dbx_cred_env_get(const struct dbx_env *env, const char *name)
{
	const char *v = env->get(env->ctx, name);

	return v && *v ? v : NULL;
}

bool dbx_cred_require(const char *source, const struct dbx_env *env, const char *const *names,
		      size_t n, const char **vals, struct dbx_error *err)
{
	char list[DBX_ERR_MSG_MAX] = "";
	size_t n_missing = 0;
	size_t seen = 0;

	for (size_t i = 0; i < n; i++) {
		vals[i] = dbx_cred_env_get(env, names[i]);
		if (!vals[i])
			n_missing++;
	}
	if (n_missing == 0)
		return true;
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(list);
		const char *sep = "";

		if (vals[i])
			continue;
		if (seen > 0)
			sep = seen + 1 == n_missing ? " and " : ", ";
		seen++;
		snprintf(list + len, sizeof(list) - len, "%s%s", sep, names[i]);
	}
	dbx_error_set(err, DBX_EAUTH, "%s: %s %s not set", source, list,
		      n_missing == 1 ? "is" : "are");
	return false;
}

char *dbx_base64url(const void *data, size_t len)
{
	static const char alphabet[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	const unsigned char *p = data;
	char *out = malloc((len + 2) / 3 * 4 + 1);
	char *o = out;
	size_t i = 0;

	if (!out)
		return NULL;
	for (; i + 3 <= len; i += 3) {
		unsigned long v =
		    (unsigned long)p[i] << 16 | (unsigned long)p[i + 1] << 8 | p[i + 2];

		*o++ = alphabet[(v >> 18) & 63];
		*o++ = alphabet[(v >> 12) & 63];
		*o++ = alphabet[(v >> 6) & 63];
		*o++ = alphabet[v & 63];
	}
	if (len - i == 1) {
		unsigned long v = (unsigned long)p[i] << 16;

		*o++ = alphabet[(v >> 18) & 63];
		*o++ = alphabet[(v >> 12) & 63];
	} else if (len - i == 2) {
		unsigned long v = (unsigned long)p[i] << 16 | (unsigned long)p[i + 1] << 8;

		*o++ = alphabet[(v >> 18) & 63];
		*o++ = alphabet[(v >> 12) & 63];
		*o++ = alphabet[(v >> 6) & 63];
	}
	*o = '\0';
	return out;
}

enum dbx_err dbx_cred_token_endpoint(const char *source, const struct dbx_cloud *cloud,
				     const struct dbx_env *env, const char *tenant, char **url,
				     char **authority, struct dbx_error *err)
{
	const char *v = env->get(env->ctx, "AZURE_AUTHORITY_HOST");
	const char *h = v && *v ? v : cloud->login_host;
	char *tenant_esc = NULL;
	size_t len;
	enum dbx_err rc = DBX_OK;

	*url = NULL;
	*authority = NULL;
	if (strncasecmp(h, "https://", 8) == 0) {
		h += 8;
	} else if (strstr(h, "://")) {
		rc = dbx_error_set(err, DBX_ECONFIG,
				   "%s: AZURE_AUTHORITY_HOST must be an https URL: %s", source,
				   v ? v : h);
		goto out;
	}
	len = strlen(h);
	while (len && h[len - 1] == '/')
		len--;
	if (len == 0 || strcspn(h, "/?#@ \t\r\n") < len) {
		rc = dbx_error_set(err, DBX_ECONFIG,
				   "%s: AZURE_AUTHORITY_HOST must be https://HOST, got %s", source,
				   v ? v : h);
		goto out;
	}
	*authority = strndup(h, len);
	tenant_esc = dbx_url_escape(tenant);
	if (!*authority || !tenant_esc ||
	    asprintf(url, "https://%s/%s/oauth2/v2.0/token", *authority, tenant_esc) < 0) {
		*url = NULL;
		rc = dbx_error_set(err, DBX_ENOMEM, "out of memory");
		goto out;
	}
out:
	free(tenant_esc);
	if (rc != DBX_OK) {
		free(*authority);
		*authority = NULL;
	}
	return rc;
}

/* Overwrite every string value of a parsed token answer (top level and nested). */
static void wipe_json_strings(json_object *obj)
{
	if (json_object_is_type(obj, json_type_string)) {
		char *s = (char *)json_object_get_string(obj);

		explicit_bzero(s, (size_t)json_object_get_string_len(obj));
	} else if (json_object_is_type(obj, json_type_object)) {
		json_object_object_foreach(obj, key, val)
		{
			(void)key;
			wipe_json_strings(val);
		}
	} else if (json_object_is_type(obj, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(obj); i++)
			wipe_json_strings(json_object_array_get_idx(obj, i));
	}
}

/* Parse a body that holds secrets; the tokener's scratch buffer is wiped. NULL when malformed. */
static json_object *parse_secret_json(const char *body, size_t len)
{
	struct json_tokener *tok = json_tokener_new();
	json_object *obj = NULL;

	if (!tok || len > (size_t)INT32_MAX)
		goto out;
	obj = json_tokener_parse_ex(tok, body, (int)len);
	if (json_tokener_get_error(tok) != json_tokener_success) {
		if (obj) {
			wipe_json_strings(obj);
			json_object_put(obj);
		}
		obj = NULL;
	}
out:
	if (tok) {
		if (tok->pb && tok->pb->buf)
			explicit_bzero(tok->pb->buf, (size_t)tok->pb->size);
		json_tokener_free(tok);
	}
	return obj;
}

/* An int, or a string of digits, as seconds; false otherwise. */
static bool json_seconds(json_object *v, long long *out)
{
	const char *s;
	char *end = NULL;

	if (json_object_is_type(v, json_type_int)) {
		*out = (long long)json_object_get_int64(v);
		return *out >= 0;
	}
	if (!json_object_is_type(v, json_type_string))
		return false;
	s = json_object_get_string(v);
	if (!isdigit((unsigned char)s[0]))
		return false;
	*out = strtoll(s, &end, 10);
	return *end == '\0';
}

enum dbx_err dbx_cred_parse_token(const char *source, const char *body, size_t len,
				  const struct dbx_token_fields *fields,
				  time_t (*fallback_expiry)(const void *json_obj), time_t now,
				  struct dbx_token *out, struct dbx_error *err)
{
	json_object *obj = parse_secret_json(body, len);
	json_object *v = NULL;
	long long secs = 0;
	time_t expires = 0;
	enum dbx_err rc = DBX_OK;

	memset(out, 0, sizeof(*out));
	if (!obj || !json_object_is_type(obj, json_type_object)) {
		rc = dbx_error_set(err, DBX_EAUTH, "%s: the token answer is not a JSON object",
				   source);
		goto out;
	}
	if (!json_object_object_get_ex(obj, fields->token, &v) ||
	    !json_object_is_type(v, json_type_string) || json_object_get_string_len(v) == 0) {
		rc = dbx_error_set(err, DBX_EAUTH, "%s: the token answer has no %s", source,
				   fields->token);
		goto out;
	}
	if (fields->expires_on && json_object_object_get_ex(obj, fields->expires_on, &v) &&
	    json_seconds(v, &secs)) {
		expires = (time_t)secs;
	} else if (fields->expires_in && json_object_object_get_ex(obj, fields->expires_in, &v) &&
		   json_seconds(v, &secs)) {
		/* Saturated: now + a huge expires_in would overflow into the past. */
		if (secs > INT32_MAX)
			secs = INT32_MAX;
		expires = now + (time_t)secs;
	} else if (fallback_expiry) {
		expires = fallback_expiry(obj);
	}
	if (expires <= 0) {
		rc = dbx_error_set(err, DBX_EAUTH,
				   "%s: the token answer has no valid expiry (%s%s%s)", source,
				   fields->expires_on ? fields->expires_on : "",
				   fields->expires_on && fields->expires_in ? " or " : "",
				   fields->expires_in ? fields->expires_in : "");
		goto out;
	}
	json_object_object_get_ex(obj, fields->token, &v);
	out->value = strdup(json_object_get_string(v));
	if (!out->value) {
		rc = dbx_error_set(err, DBX_ENOMEM, "%s: out of memory", source);
		goto out;
	}
	out->expires_on = expires;
out:
	if (obj) {
		wipe_json_strings(obj);
		json_object_put(obj);
	}
	return rc;
}

void dbx_cred_first_line(char *buf, size_t cap, const char *s)
{
	size_t n = strcspn(s, "\r\n");

	if (n >= cap)
		n = cap - 1;
	memcpy(buf, s, n);
	buf[n] = '\0';
}

/* dbx_cred_redact() the secret as it is and as sent in a form body (URL-escaped). */
static void redact_secret(char *msg, const char *secret)
{
	char *esc = dbx_url_escape(secret);

	dbx_cred_redact(msg, secret);
	if (esc) {
		dbx_cred_redact(msg, esc);
		dbx_wipe_free(esc);
	}
}

enum dbx_err dbx_cred_entra_refusal(const char *source, const char *authority,
				    const struct dbx_http_response *resp, const char *secret,
				    struct dbx_error *err)
{
	json_object *obj = json_tokener_parse(resp->body ? resp->body : "");
	const char *code = dbx_json_str(obj, "error");
	const char *desc = dbx_json_str(obj, "error_description");
	char *clean = NULL;
	char line[DBX_ERR_MSG_MAX / 2];
	char code_line[DBX_ERR_MSG_MAX];
	enum dbx_err kind = DBX_EAUTH;

	if (resp->status == 429)
		kind = DBX_ETHROTTLED;
	else if (resp->status >= 500)
		kind = DBX_EREMOTE;
	/*
	 * Redact the whole description before it is cut to a line of the
	 * message: redacting only the cut text would leave the start of a
	 * secret that straddles the cut.
	 */
	if (desc && secret) {
		clean = strdup(desc);
		if (clean)
			redact_secret(clean, secret);
		desc = clean ? clean : "(description withheld)";
	}
	dbx_cred_first_line(line, sizeof(line), desc ? desc : "");
	/* The code is the server's text too: one line of it, or it could forge lines. */
	if (code)
		dbx_cred_first_line(code_line, sizeof(code_line), code);
	if (code && code_line[0])
		dbx_error_set(err, kind, "%s: %s: %s", source, code_line,
			      line[0] ? line : "(no description)");
	else
		dbx_error_set(err, kind, "%s: token request to %s answered HTTP %ld", source,
			      authority, resp->status);
	if (err) {
		if (secret)
			redact_secret(err->message, secret);
		err->http_status = resp->status;
		dbx_cred_first_line(err->code, sizeof(err->code), code ? code : "");
		if (secret)
			redact_secret(err->code, secret);
		snprintf(err->request_id, sizeof(err->request_id), "%s",
			 resp->request_id ? resp->request_id : "");
	}
	if (clean) {
		explicit_bzero(clean, strlen(clean));
		free(clean);
	}
	json_object_put(obj);
	return kind;
}

char *dbx_cred_grant_body(const char *client_id, const char *credential, const char *value,
			  const char *scope)
{
	char *id = dbx_url_escape(client_id);
	char *val = dbx_url_escape(value);
	char *sc = dbx_url_escape(scope);
	char *body = NULL;

	if (id && val && sc &&
	    asprintf(&body, "grant_type=client_credentials&client_id=%s&%s=%s&scope=%s", id,
		     credential, val, sc) < 0)
		body = NULL;
	free(id);
	dbx_wipe_free(val);
	free(sc);
	return body;
}

enum dbx_err dbx_cred_entra_grant(const char *source, struct dbx_transport *transport,
				  const struct dbx_clock *clock, const char *url,
				  const char *authority, const char *client_id,
				  const char *credential, const char *secret, const char *scope,
				  struct dbx_token *out, struct dbx_error *err)
{
	struct dbx_http_request req = {0};
	struct dbx_http_response resp = {0};
	struct dbx_error terr = {0};
	char *body = NULL;
	enum dbx_err rc = DBX_OK;

	memset(out, 0, sizeof(*out));
	body = dbx_cred_grant_body(client_id, credential, secret, scope);
	if (!body) {
		rc = dbx_error_set(err, DBX_ENOMEM, "out of memory");
		goto out;
	}
	req.method = "POST";
	req.url = url;
	req.content_type = "application/x-www-form-urlencoded";
	req.body = body;
	req.body_len = strlen(body);
	req.deadline_ms = dbx_clock_now_ms(clock) + DBX_CRED_ENTRA_TIMEOUT_MS;
	req.idempotent = true; /* a token request changes nothing: safe to resend */
	rc = dbx_http_send(transport, &req, &resp, &terr);
	if (rc != DBX_OK) {
		dbx_error_set(err, rc, "%s: token request to %s failed: %s", source, authority,
			      terr.message);
		goto out;
	}
	if (resp.status != 200) {
		/* The secret (a client secret, a federated token, a signed JWT) Entra may quote. */
		rc = dbx_cred_entra_refusal(source, authority, &resp, secret, err);
		goto out;
	}
	rc = dbx_cred_parse_token(
	    source, resp.body, resp.body_len,
	    &(struct dbx_token_fields){.token = "access_token", .expires_in = "expires_in"}, NULL,
	    dbx_clock_wall(clock), out, err);
	if (rc != DBX_OK && err) {
		err->http_status = resp.status;
		snprintf(err->request_id, sizeof(err->request_id), "%s",
			 resp.request_id ? resp.request_id : "");
	}
out:
	if (resp.body)
		explicit_bzero(resp.body, resp.body_len);
	dbx_http_response_reset(&resp);
	dbx_wipe_free(body);
	return rc;
}

enum dbx_err dbx_cred_assertion_grant(const char *source, struct dbx_transport *transport,
				      const struct dbx_clock *clock, const char *url,
				      const char *authority, const char *client_id,
				      const char *assertion, const char *scope,
				      struct dbx_token *out, struct dbx_error *err)
{
	return dbx_cred_entra_grant(source, transport, clock, url, authority, client_id,
				    JWT_BEARER "&client_assertion", assertion, scope, out, err);
}
