/*
 * cred/msi.c: the managed identity credential (docs/architecture.md, "Credentials", third source;
 * docs/azure.md, "Credential sources").
 *
 * Two endpoints, chosen at construction from the environment:
 *  - App Service / Container Apps / Functions: IDENTITY_ENDPOINT and
 *    IDENTITY_HEADER are set; GET <IDENTITY_ENDPOINT>?api-version=2019-08-01
 *    &resource=R[&client_id=ID] with "X-IDENTITY-HEADER: <IDENTITY_HEADER>".
 *    The endpoint must be https, or http on a loopback address.
 *  - Otherwise IMDS: GET http://169.254.169.254/metadata/identity/oauth2/token
 *    ?api-version=2018-02-01&resource=R[&client_id=ID] with "Metadata: true".
 *    Like DefaultAzureCredential, the first use probes IMDS with a short
 *    request without the header (any HTTP answer means it is there), so a
 *    machine off Azure moves on to the next source in about a second.
 * R is the scope without "/.default"; ID is AZURE_CLIENT_ID (a user-assigned
 * identity). The answer holds access_token (a string) and expires_on (unix
 * time) or expires_in, each a number or a string of digits (both endpoints
 * send strings; App Service's 2017-09-01 dates are not accepted: this asks
 * for 2019-08-01, whose expires_on is unix time); any other type, or a key
 * twice, is a malformed answer. Each request ends at the caller's deadline
 * or the source's own cap (1 s for the probe, 10 s for a token), whichever
 * is first. A 400 means no such identity is
 * assigned: that error carries no HTTP status, so the chain moves on.
 * The identity header is a secret: it lives only in the header line, which
 * is wiped on destroy.
 */
#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#include "cred/common.h"

#define IMDS_HOST		"169.254.169.254"
#define IMDS_TOKEN_URL		"http://" IMDS_HOST "/metadata/identity/oauth2/token"
#define IMDS_API_VERSION	"2018-02-01"
#define APP_SERVICE_API_VERSION "2019-08-01"
#define APP_SERVICE_HEADER	"X-IDENTITY-HEADER: "
#define PROBE_TIMEOUT_MS	1000u

struct msi_cred {
	struct dbx_credential base;
	struct dbx_transport *transport; /* borrowed */
	const struct dbx_clock *clock;
	char *endpoint;	   /* IDENTITY_ENDPOINT, or NULL for IMDS */
	char *host;	   /* the endpoint's host[:port], for messages */
	char *header_line; /* "X-IDENTITY-HEADER: <secret>" or "Metadata: true" */
	char *client_id;   /* AZURE_CLIENT_ID, or NULL for the system-assigned identity */
	pthread_mutex_t lock;
	bool imds_found; /* the IMDS probe got an answer once */
};

/* The host[:port] part of an absolute URL, or NULL (ENOMEM or no "://"). */
static char *url_host(const char *url)
{
	const char *h = strstr(url, "://");

	if (!h)
		return NULL;
	h += 3;
	return strndup(h, strcspn(h, "/?#"));
}

/*
 * http is allowed to loopback only: localhost, 127.0.0.0/8, [::1] (the
 * test http/curl.c applies too, so what is accepted here is also sendable).
 */
static bool is_loopback(const char *hostport)
{
	size_t n = hostport[0] == '[' ? strcspn(hostport, "]") + 1 : strcspn(hostport, ":");
	char host[64];
	struct in_addr a4;

	if (n >= sizeof(host))
		return false;
	memcpy(host, hostport, n);
	host[n] = '\0';
	if (strcasecmp(host, "localhost") == 0 || strcmp(host, "[::1]") == 0)
		return true;
	return inet_pton(AF_INET, host, &a4) == 1 && (ntohl(a4.s_addr) >> 24) == 127;
}

/* error_description (or error, or message) of an endpoint's JSON error answer, first line. */
static void answer_reason(const struct dbx_http_response *resp, char *buf, size_t cap)
{
	static const char *const keys[] = {"error_description", "error", "message"};
	json_object *obj = json_tokener_parse(resp->body ? resp->body : "");
	json_object *v = NULL;

	buf[0] = '\0';
	for (size_t i = 0; obj && i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (json_object_object_get_ex(obj, keys[i], &v) &&
		    json_object_is_type(v, json_type_string)) {
			dbx_cred_first_line(buf, cap, json_object_get_string(v));
			break;
		}
	}
	json_object_put(obj);
}

/* The token URL for scope; caller frees. NULL on ENOMEM. */
static char *token_url(const struct msi_cred *c, const char *scope)
{
	static const char suffix[] = "/.default";
	size_t len = strlen(scope);
	char *resource = NULL;
	char *res_esc = NULL;
	char *id_esc = NULL;
	char *url = NULL;
	int n;

	if (len > sizeof(suffix) - 1 && strcmp(scope + len - (sizeof(suffix) - 1), suffix) == 0)
		len -= sizeof(suffix) - 1;
	resource = strndup(scope, len);
	res_esc = resource ? dbx_url_escape(resource) : NULL;
	id_esc = c->client_id ? dbx_url_escape(c->client_id) : NULL;
	if (!res_esc || (c->client_id && !id_esc))
		goto out;
	if (c->endpoint)
		n = asprintf(&url, "%s%capi-version=" APP_SERVICE_API_VERSION "&resource=%s%s%s",
			     c->endpoint, strchr(c->endpoint, '?') ? '&' : '?', res_esc,
			     id_esc ? "&client_id=" : "", id_esc ? id_esc : "");
	else
		n = asprintf(&url,
			     IMDS_TOKEN_URL "?api-version=" IMDS_API_VERSION "&resource=%s%s%s",
			     res_esc, id_esc ? "&client_id=" : "", id_esc ? id_esc : "");
	if (n < 0)
		url = NULL;
out:
	free(resource);
	free(res_esc);
	free(id_esc);
	return url;
}

/*
 * Is IMDS there? One short GET without the Metadata header: IMDS answers
 * it (400), a machine off Azure does not. Remembered once it answered.
 */
static enum dbx_err probe_imds(struct msi_cred *c, uint64_t deadline_ms, struct dbx_error *err)
{
	struct dbx_http_request req = {
	    .method = "GET",
	    .url = IMDS_TOKEN_URL,
	    .idempotent = true,
	};
	struct dbx_http_response resp = {0};
	struct dbx_error terr = {0};
	bool found;
	enum dbx_err rc;

	pthread_mutex_lock(&c->lock);
	found = c->imds_found;
	pthread_mutex_unlock(&c->lock);
	if (found)
		return DBX_OK;
	req.deadline_ms = dbx_cred_deadline(c->clock, PROBE_TIMEOUT_MS, deadline_ms);
	if (dbx_clock_now_ms(c->clock) >= req.deadline_ms)
		return dbx_cred_transport_failure("msi", c->host, DBX_ETIMEDOUT,
						  "no time left to ask", err);
	rc = dbx_http_send(c->transport, &req, &resp, &terr);
	dbx_http_response_reset(&resp);
	if (rc == DBX_ENOMEM)
		return dbx_error_set(err, rc, "out of memory");
	/* Cut short by the caller's deadline, not its own: the caller ran out of time. */
	if (rc == DBX_ETIMEDOUT && req.deadline_ms == deadline_ms)
		return dbx_cred_transport_failure("msi", c->host, rc, terr.message, err);
	if (rc != DBX_OK)
		return dbx_error_set(err, DBX_EAUTH,
				     "msi: no managed identity endpoint: IMDS (" IMDS_HOST
				     ") did not answer (%s)",
				     terr.message);
	pthread_mutex_lock(&c->lock);
	c->imds_found = true;
	pthread_mutex_unlock(&c->lock);
	return DBX_OK;
}

/* Turn a non-200 answer of the identity endpoint into err. */
static enum dbx_err msi_refusal(const struct msi_cred *c, const struct dbx_http_response *resp,
				struct dbx_error *err)
{
	char reason[DBX_ERR_MSG_MAX / 2];
	enum dbx_err kind = DBX_EAUTH;

	answer_reason(resp, reason, sizeof(reason));
	if (c->endpoint) /* the endpoint's text might echo the header: never quote it */
		dbx_cred_redact(reason, c->header_line + strlen(APP_SERVICE_HEADER));
	if (resp->status == 400) {
		/* No such identity here: "unavailable", so no http_status (the chain moves on). */
		if (c->client_id)
			return dbx_error_set(
			    err, DBX_EAUTH,
			    "msi: the identity with client id %s is not assigned to "
			    "this resource (%s: %s)",
			    c->client_id, c->host, reason[0] ? reason : "HTTP 400");
		return dbx_error_set(
		    err, DBX_EAUTH,
		    "msi: no managed identity is assigned to this resource (%s: %s)", c->host,
		    reason[0] ? reason : "HTTP 400");
	}
	if (resp->status == 429)
		kind = DBX_ETHROTTLED;
	else if (resp->status >= 500)
		kind = DBX_EREMOTE;
	if (c->endpoint && (resp->status == 401 || resp->status == 403))
		dbx_error_set(err, kind, "msi: %s refused IDENTITY_HEADER (HTTP %ld)%s%s", c->host,
			      resp->status, reason[0] ? ": " : "", reason);
	else
		dbx_error_set(err, kind, "msi: token request to %s answered HTTP %ld%s%s", c->host,
			      resp->status, reason[0] ? ": " : "", reason);
	if (err) {
		err->http_status = resp->status;
		snprintf(err->request_id, sizeof(err->request_id), "%s",
			 resp->request_id ? resp->request_id : "");
	}
	return kind;
}

static enum dbx_err msi_get_token(struct dbx_credential *self, const char *scope,
				  uint64_t deadline_ms, struct dbx_token *out,
				  struct dbx_error *err)
{
	struct msi_cred *c = (struct msi_cred *)self;
	const char *headers[] = {c->header_line, NULL};
	struct dbx_http_request req = {
	    .method = "GET",
	    .extra_headers = headers,
	    .idempotent = true,
	};
	struct dbx_http_response resp = {0};
	struct dbx_error terr = {0};
	char *url = NULL;
	enum dbx_err rc = DBX_OK;

	out->value = NULL;
	out->expires_on = 0;
	if (!c->endpoint) {
		rc = probe_imds(c, deadline_ms, err);
		if (rc != DBX_OK)
			goto out;
	}
	url = token_url(c, scope);
	if (!url) {
		rc = dbx_error_set(err, DBX_ENOMEM, "out of memory");
		goto out;
	}
	req.url = url;
	req.deadline_ms = dbx_cred_deadline(c->clock, DBX_CRED_MSI_TIMEOUT_MS, deadline_ms);
	if (dbx_clock_now_ms(c->clock) >= req.deadline_ms) {
		rc = dbx_cred_transport_failure("msi", c->host, DBX_ETIMEDOUT,
						"no time left to ask", err);
		goto out;
	}
	rc = dbx_http_send(c->transport, &req, &resp, &terr);
	if (rc != DBX_OK) {
		dbx_cred_transport_failure("msi", c->host, rc, terr.message, err);
		goto out;
	}
	if (resp.status != 200) {
		rc = msi_refusal(c, &resp, err);
		goto out;
	}
	rc = dbx_cred_parse_token("msi", resp.body, resp.body_len,
				  &(struct dbx_token_fields){.token = "access_token",
							     .expires_on = "expires_on",
							     .expires_in = "expires_in",
							     .digit_strings = true},
				  NULL, dbx_clock_wall(c->clock), out, err);
out:
	if (resp.body)
		explicit_bzero(resp.body, resp.body_len);
	dbx_http_response_reset(&resp);
	free(url);
	return rc;
}

static void msi_destroy(struct dbx_credential *self)
{
	struct msi_cred *c = (struct msi_cred *)self;

	dbx_wipe_free(c->header_line);
	free(c->endpoint);
	free(c->host);
	free(c->client_id);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

/* Configure the App Service endpoint from IDENTITY_ENDPOINT / IDENTITY_HEADER. */
static enum dbx_err app_service_setup(struct msi_cred *c, const char *endpoint, const char *header,
				      struct dbx_error *err)
{
	bool https = strncasecmp(endpoint, "https://", 8) == 0;

	if (!https && strncasecmp(endpoint, "http://", 7) != 0)
		return dbx_error_set(err, DBX_ECONFIG,
				     "msi: IDENTITY_ENDPOINT is not an http(s) URL: %s", endpoint);
	c->host = url_host(endpoint);
	if (!c->host)
		return dbx_error_set(err, DBX_ENOMEM, "out of memory");
	if (!c->host[0] || strchr(c->host, '@'))
		return dbx_error_set(err, DBX_ECONFIG,
				     "msi: IDENTITY_ENDPOINT has no usable host: %s", endpoint);
	if (!https && !is_loopback(c->host))
		return dbx_error_set(err, DBX_ECONFIG,
				     "msi: IDENTITY_ENDPOINT must be https, or http on a loopback "
				     "address; got %s",
				     endpoint);
	if (strpbrk(header, "\r\n"))
		return dbx_error_set(err, DBX_ECONFIG, "msi: IDENTITY_HEADER holds a line break");
	c->endpoint = strdup(endpoint);
	if (!c->endpoint || asprintf(&c->header_line, APP_SERVICE_HEADER "%s", header) < 0) {
		c->header_line = NULL;
		return dbx_error_set(err, DBX_ENOMEM, "out of memory");
	}
	return DBX_OK;
}

struct dbx_credential *dbx_cred_msi_new(struct dbx_transport *transport,
					const struct dbx_cloud *cloud, const struct dbx_env *env,
					const struct dbx_clock *clock, struct dbx_error *err)
{
	struct msi_cred *c = NULL;
	const char *endpoint;
	const char *header;
	const char *client_id;

	(void)cloud;
	if (!env)
		env = dbx_env_process();
	endpoint = dbx_cred_env_get(env, "IDENTITY_ENDPOINT");
	header = dbx_cred_env_get(env, "IDENTITY_HEADER");
	client_id = dbx_cred_env_get(env, "AZURE_CLIENT_ID");
	if (endpoint && !header) {
		dbx_error_set(err, DBX_EAUTH,
			      "msi: IDENTITY_ENDPOINT is set without IDENTITY_HEADER (Azure Arc "
			      "identities are not supported)");
		return NULL;
	}
	if (endpoint && dbx_cred_env_get(env, "IDENTITY_SERVER_THUMBPRINT")) {
		dbx_error_set(err, DBX_EAUTH,
			      "msi: Service Fabric identities (IDENTITY_SERVER_THUMBPRINT) are not "
			      "supported");
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		dbx_error_set(err, DBX_ENOMEM, "out of memory");
		return NULL;
	}
	c->base.name = "msi";
	c->base.get_token = msi_get_token;
	c->base.destroy = msi_destroy;
	c->transport = transport;
	c->clock = clock ? clock : dbx_clock_system();
	pthread_mutex_init(&c->lock, NULL);
	if (client_id) {
		c->client_id = strdup(client_id);
		if (!c->client_id) {
			dbx_error_set(err, DBX_ENOMEM, "out of memory");
			goto fail;
		}
	}
	if (endpoint) {
		if (app_service_setup(c, endpoint, header, err) != DBX_OK)
			goto fail;
	} else {
		c->host = strdup(IMDS_HOST);
		c->header_line = strdup("Metadata: true");
		if (!c->host || !c->header_line) {
			dbx_error_set(err, DBX_ENOMEM, "out of memory");
			goto fail;
		}
	}
	return &c->base;
fail:
	msi_destroy(&c->base);
	return NULL;
}
