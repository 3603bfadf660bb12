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
#include <float.h>
#include <limits.h>
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

/* Nothing but JSON white space after what tok parsed of body[0..len). */
static bool only_space_after(const char *body, size_t len, struct json_tokener *tok)
{
	for (size_t i = json_tokener_get_parse_end(tok); i < len; i++) {
		if (!strchr(" \t\r\n", body[i]) || !body[i])
			return false;
	}
	return true;
}

/*
 * Parse a body that holds secrets as one strict JSON value with nothing
 * after it but white space; the tokener's scratch buffer is wiped. NULL
 * when malformed.
 */
static json_object *parse_secret_json(const char *body, size_t len)
{
	struct json_tokener *tok = json_tokener_new();
	json_object *obj = NULL;

	if (!tok || len > (size_t)INT32_MAX)
		goto out;
	/* No comments, single quotes or trailing commas: count_keys_in_text() relies on it. */
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	obj = json_tokener_parse_ex(tok, body, (int)len);
	if (json_tokener_get_error(tok) != json_tokener_success ||
	    !only_space_after(body, len, tok)) {
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

/*
 * The number of object keys in text[0..len), a JSON text json-c has
 * accepted already: every string followed (after white space) by ':' is a
 * key. json-c keeps only the last of duplicate keys, so fewer keys in the
 * parsed objects than in the text means a key was there twice. SIZE_MAX
 * when the text holds what JSON does not allow but json-c may accept even
 * in strict mode (a single-quoted string, a comment).
 */
static size_t count_keys_in_text(const char *text, size_t len)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		if (text[i] == '\'' || text[i] == '/')
			return SIZE_MAX;
		if (text[i] != '"')
			continue;
		for (i++; i < len && text[i] != '"'; i++) {
			if (text[i] == '\\')
				i++;
		}
		for (i++; i < len && strchr(" \t\r\n", text[i]) && text[i]; i++)
			;
		if (i < len && text[i] == ':')
			n++;
		else
			i--; /* look at this character again: it may open the next string */
	}
	return n;
}

/* The number of keys of every object in the parsed value obj, nested ones too. */
static size_t count_keys_parsed(json_object *obj)
{
	size_t n = 0;

	if (json_object_is_type(obj, json_type_object)) {
		json_object_object_foreach(obj, key, val)
		{
			(void)key;
			n += 1 + count_keys_parsed(val);
		}
	} else if (json_object_is_type(obj, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(obj); i++)
			n += count_keys_parsed(json_object_array_get_idx(obj, i));
	}
	return n;
}

/*
 * s (len bytes, possibly with NULs) is an RFC 6750 b64token: 1*(ALPHA /
 * DIGIT / "-" / "." / "_" / "~" / "+" / "/") *"=". It goes into an
 * Authorization header line: no space, CR, LF or NUL may ride along.
 */
static bool is_b64token(const char *s, size_t len)
{
	size_t n =
	    strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/");

	if (n == 0)
		return false;
	while (n < len && s[n] == '=')
		n++;
	return n == len;
}

/* What reading a seconds member found. */
enum seconds_read { SECONDS_ABSENT, SECONDS_OK, SECONDS_BAD };

/*
 * Member key of obj as whole seconds >= 0 into *out (saturated at
 * LLONG_MAX): a JSON number without a fraction, or with digit_strings a
 * non-empty string of digits too. Absent and null are SECONDS_ABSENT;
 * anything else is SECONDS_BAD.
 */
static enum seconds_read json_seconds(json_object *obj, const char *key, bool digit_strings,
				      long long *out)
{
	json_object *v = NULL;
	const char *s;
	double d;

	if (!json_object_object_get_ex(obj, key, &v) || !v)
		return SECONDS_ABSENT;
	switch (json_object_get_type(v)) {
	case json_type_int:
		if (json_object_get_int64(v) < 0)
			return SECONDS_BAD;
		*out = (long long)json_object_get_int64(v);
		return SECONDS_OK;
	case json_type_double:
		d = json_object_get_double(v);
		/* Every double from 2^63 up is whole; below, the cast tells. */
		if (!(d >= 0 && d <= DBL_MAX) || (d < 9e18 && d != (double)(long long)d))
			return SECONDS_BAD;
		*out = d < 9e18 ? (long long)d : LLONG_MAX;
		return SECONDS_OK;
	case json_type_string:
		s = json_object_get_string(v);
		if (!digit_strings || !s[0] || s[strspn(s, "0123456789")] != '\0' ||
		    strlen(s) != (size_t)json_object_get_string_len(v))
			return SECONDS_BAD;
		*out = strtoll(s, NULL, 10); /* LLONG_MAX when longer */
		return SECONDS_OK;
	default:
		return SECONDS_BAD;
	}
}

/* "a number" or "a number or a string of digits", for messages. */
static const char *seconds_kind(const struct dbx_token_fields *fields)
{
	return fields->digit_strings ? "a whole number or a string of digits" : "a whole number";
}

enum dbx_err dbx_cred_parse_token(const char *source, const char *body, size_t len,
				  const struct dbx_token_fields *fields,
				  time_t (*fallback_expiry)(const void *json_obj), time_t now,
				  struct dbx_token *out, struct dbx_error *err)
{
	json_object *obj = parse_secret_json(body, len);
	json_object *v = NULL;
	long long on = 0, in = 0;
	size_t keys;
	enum seconds_read on_read = SECONDS_ABSENT, in_read = SECONDS_ABSENT;
	time_t expires = 0;
	enum dbx_err rc = DBX_OK;

	memset(out, 0, sizeof(*out));
	if (!obj || !json_object_is_type(obj, json_type_object)) {
		rc = dbx_error_set(err, DBX_EAUTH, "%s: the token answer is not a JSON object",
				   source);
		goto out;
	}
	keys = count_keys_in_text(body, len);
	if (keys == SIZE_MAX) {
		rc = dbx_error_set(err, DBX_EAUTH, "%s: the token answer is not a JSON object",
				   source);
		goto out;
	}
	if (keys != count_keys_parsed(obj)) {
		rc = dbx_error_set(err, DBX_EAUTH,
				   "%s: malformed token answer: a key appears more than once",
				   source);
		goto out;
	}
	if (!json_object_object_get_ex(obj, fields->token, &v) || !v) {
		rc = dbx_error_set(err, DBX_EAUTH, "%s: the token answer has no %s", source,
				   fields->token);
		goto out;
	}
	if (!json_object_is_type(v, json_type_string) || json_object_get_string_len(v) == 0) {
		rc = dbx_error_set(err, DBX_EAUTH,
				   "%s: malformed token answer: %s is not a non-empty string",
				   source, fields->token);
		goto out;
	}
	if (!is_b64token(json_object_get_string(v), (size_t)json_object_get_string_len(v))) {
		/* Never quoted: it is (nearly) a token. */
		rc =
		    dbx_error_set(err, DBX_EAUTH,
				  "%s: malformed token answer: %s holds characters no bearer token "
				  "has (RFC 6750)",
				  source, fields->token);
		goto out;
	}
	if (fields->expires_on)
		on_read = json_seconds(obj, fields->expires_on, fields->digit_strings, &on);
	if (on_read == SECONDS_BAD) {
		rc = dbx_error_set(err, DBX_EAUTH, "%s: malformed token answer: %s is not %s",
				   source, fields->expires_on, seconds_kind(fields));
		goto out;
	}
	if (fields->expires_in)
		in_read = json_seconds(obj, fields->expires_in, fields->digit_strings, &in);
	if (in_read == SECONDS_BAD) {
		rc = dbx_error_set(err, DBX_EAUTH, "%s: malformed token answer: %s is not %s",
				   source, fields->expires_in, seconds_kind(fields));
		goto out;
	}
	if (on_read == SECONDS_OK) {
		expires = on > INT32_MAX ? INT32_MAX : (time_t)on;
	} else if (in_read == SECONDS_OK) {
		/* Saturated: now + a huge expires_in would overflow into the past. */
		if (in > INT32_MAX)
			in = INT32_MAX;
		expires = now + (time_t)in;
	} else if (fallback_expiry) {
		expires = fallback_expiry(obj);
		if (expires < 0) {
			rc = dbx_error_set(
			    err, DBX_EAUTH, "%s: malformed token answer: %s is not a date and time",
			    source, fields->fallback ? fields->fallback : "the expiry");
			goto out;
		}
	}
	if (expires <= 0) {
		rc = dbx_error_set(
		    err, DBX_EAUTH, "%s: the token answer has no valid expiry (%s%s%s%s%s)", source,
		    fields->expires_on ? fields->expires_on : "",
		    fields->expires_on && fields->expires_in ? " or " : "",
		    fields->expires_in ? fields->expires_in : "",
		    fields->fallback && (fields->expires_on || fields->expires_in) ? " or " : "",
		    fields->fallback ? fields->fallback : "");
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

uint64_t dbx_cred_deadline(const struct dbx_clock *clock, uint64_t cap_ms, uint64_t deadline_ms)
{
	uint64_t own = dbx_clock_now_ms(clock) + cap_ms;

	return deadline_ms && deadline_ms < own ? deadline_ms : own;
}

enum dbx_err dbx_cred_transport_failure(const char *source, const char *host, enum dbx_err rc,
					const char *why, struct dbx_error *err)
{
	if (rc == DBX_ETIMEDOUT)
		return dbx_error_set(err, rc,
				     "%s: token request to %s did not finish within the timeout "
				     "(the token endpoint is slow or unreachable): %s",
				     source, host, why);
	return dbx_error_set(err, rc, "%s: token request to %s failed: %s", source, host, why);
}

enum dbx_err dbx_cred_entra_grant(const char *source, struct dbx_transport *transport,
				  const struct dbx_clock *clock, uint64_t deadline_ms,
				  const char *url, const char *authority, const char *client_id,
				  const char *credential, const char *secret, const char *scope,
				  struct dbx_token *out, struct dbx_error *err)
{
	struct dbx_http_request req = {0};
	struct dbx_http_response resp = {0};
	struct dbx_error terr = {0};
	char *body = NULL;
	enum dbx_err rc = DBX_OK;

	memset(out, 0, sizeof(*out));
	req.deadline_ms = dbx_cred_deadline(clock, DBX_CRED_ENTRA_TIMEOUT_MS, deadline_ms);
	if (dbx_clock_now_ms(clock) >= req.deadline_ms) {
		rc = dbx_cred_transport_failure(source, authority, DBX_ETIMEDOUT,
						"no time left to ask", err);
		goto out;
	}
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
	req.idempotent = true; /* a token request changes nothing: safe to resend */
	rc = dbx_http_send(transport, &req, &resp, &terr);
	if (rc != DBX_OK) {
		dbx_cred_transport_failure(source, authority, rc, terr.message, err);
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
				      const struct dbx_clock *clock, uint64_t deadline_ms,
				      const char *url, const char *authority, const char *client_id,
				      const char *assertion, const char *scope,
				      struct dbx_token *out, struct dbx_error *err)
{
	return dbx_cred_entra_grant(source, transport, clock, deadline_ms, url, authority,
				    client_id, JWT_BEARER "&client_assertion", assertion, scope,
				    out, err);
}
