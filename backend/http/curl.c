/*
 * http/curl.c: the libcurl transport, the bottom layer of the HTTP pipeline
 * (http.h). The only file that includes curl.h.
 *
 * Security is not optional here: peer and host verification are always on
 * and no option turns them off; `cafile` only ADDS trust (the system bundle
 * plus cafile, as one in-memory PEM); only https is spoken (plain http only
 * to the managed-identity endpoints, never with a token nor through a
 * proxy) and redirects are never followed. A bearer token travels only in the Authorization header,
 * whose buffers are wiped after the request, and nothing here logs headers
 * or query strings.
 *
 * Easy handles are pooled (mutex-protected) so connections are reused
 * across requests, and share one DNS cache and TLS session cache, so a new
 * handle resumes TLS instead of a full handshake; each send resets the
 * handle it takes. The trusted certificates are parsed once, into one
 * X509_STORE that every TLS connection shares (CURLOPT_SSL_CTX_FUNCTION):
 * handed to libcurl as a PEM blob, each new connection would parse the
 * whole system bundle again, about a megabyte of allocations and a few
 * milliseconds each, which under load fragmented the heap into steady
 * growth. Transport failures map to the kinds of http.h: DBX_EUNREACHABLE when
 * nothing was sent (DNS, connect, TLS), DBX_ETIMEDOUT at the deadline,
 * DBX_EREMOTE when the request may have reached the server.
 */
#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "databoxfs/http.h"
#include "databoxfs/log.h"

#define POOL_MAX	   16
#define CONNECT_TIMEOUT_MS 10000
#define SYSTEM_CA_BUNDLE   "/etc/ssl/certs/ca-certificates.crt"
#define CAFILE_MAX	   (8u * 1024 * 1024)

struct curl_transport {
	struct dbx_transport base;
	pthread_mutex_t lock; /* guards pool and n_pool */
	CURL *pool[POOL_MAX];
	size_t n_pool;
	/* DNS cache and TLS sessions shared by all handles (not connections: libcurl
	 * does not support sharing those between threads). */
	CURLSH *share;
	pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];
	char *ca_pem; /* system bundle + cafile, or NULL for libcurl's default trust */
	size_t ca_len;
	X509_STORE *store; /* ca_pem parsed, or the system bundle; NULL: libcurl's own loading */
	struct curl_slist *connect_to;
	char *user_agent_header; /* "User-Agent: ..." */
	bool verbose;
	const struct dbx_clock *clock; /* deadlines (the clock of req->deadline_ms), durations */
};

/* State of one request, shared with the callbacks. */
struct xfer {
	struct dbx_http_response *resp;
	char *body;
	size_t len;
	size_t cap;
	bool too_large;
	bool oom;
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc;

static void global_init(void)
{
	global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ---- in-memory CA bundle ---- */

/* The whole file at path, NUL-terminated, in a buffer to free; NULL with err filled. */
static char *read_file(const char *path, size_t *len_out, struct dbx_error *err)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t len = 0;
	size_t cap = 0;
	bool ok = false;

	if (!f) {
		dbx_error_set(err, DBX_ECONFIG, "cannot read CA file %s: %m", path);
		return NULL;
	}
	for (;;) {
		size_t n;

		if (cap - len < 4096) {
			char *nb;

			cap = cap ? cap * 2 : 65536;
			nb = realloc(buf, cap + 1);
			if (!nb) {
				dbx_error_set(err, DBX_ENOMEM, "out of memory reading %s", path);
				goto out;
			}
			buf = nb;
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
		if (len > CAFILE_MAX) {
			dbx_error_set(err, DBX_ECONFIG, "CA file %s is larger than 8 MiB", path);
			goto out;
		}
		if (n == 0)
			break;
	}
	if (ferror(f)) {
		dbx_error_set(err, DBX_ECONFIG, "cannot read CA file %s: %m", path);
		goto out;
	}
	buf[len] = '\0';
	*len_out = len;
	ok = true;
out:
	fclose(f);
	if (!ok) {
		free(buf);
		buf = NULL;
	}
	return buf;
}

/* Number of PEM certificates OpenSSL can parse in pem[0..len). */
static int count_certs(const char *pem, size_t len)
{
	BIO *bio = BIO_new_mem_buf(pem, (int)len);
	X509 *x;
	int n = 0;

	if (!bio)
		return 0;
	for (;;) {
		x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
		if (!x)
			break;
		X509_free(x);
		n++;
	}
	BIO_free(bio);
	return n;
}

/*
 * A certificate store holding every certificate of pem[0..len), or NULL when
 * none parses or on ENOMEM.
 */
static X509_STORE *store_of(const char *pem, size_t len)
{
	BIO *bio = BIO_new_mem_buf(pem, (int)len);
	X509_STORE *store = X509_STORE_new();
	int n = 0;
	X509 *x;

	if (!bio || !store)
		goto fail;
	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
		int ok = X509_STORE_add_cert(store, x);

		X509_free(x);
		if (!ok)
			goto fail;
		n++;
	}
	if (n == 0)
		goto fail;
	BIO_free(bio);
	return store;
fail:
	BIO_free(bio);
	X509_STORE_free(store);
	return NULL;
}

/* ca_pem = system bundle (when present) + cafile; cafile must hold at least one certificate. */
static enum dbx_err load_ca(struct curl_transport *ct, const char *cafile, struct dbx_error *err)
{
	char *sys = NULL;
	char *extra = NULL;
	size_t sys_len = 0;
	size_t extra_len = 0;
	struct dbx_error ignored;
	enum dbx_err rc = DBX_OK;

	extra = read_file(cafile, &extra_len, err);
	if (!extra) {
		rc = err ? err->err : DBX_ECONFIG;
		goto out;
	}
	if (count_certs(extra, extra_len) == 0) {
		rc = dbx_error_set(err, DBX_ECONFIG, "CA file %s holds no PEM certificate", cafile);
		goto out;
	}
	sys = read_file(SYSTEM_CA_BUNDLE, &sys_len, &ignored);
	ct->ca_pem = malloc(sys_len + 1 + extra_len + 1);
	if (!ct->ca_pem) {
		rc = dbx_error_set(err, DBX_ENOMEM, "out of memory loading CA file %s", cafile);
		goto out;
	}
	if (sys)
		memcpy(ct->ca_pem, sys, sys_len);
	ct->ca_pem[sys_len] = '\n';
	memcpy(ct->ca_pem + sys_len + 1, extra, extra_len);
	ct->ca_len = sys_len + 1 + extra_len;
	ct->ca_pem[ct->ca_len] = '\0';
out:
	free(sys);
	free(extra);
	return rc;
}

/* ---- callbacks ---- */

static size_t on_body(char *data, size_t size, size_t nmemb, void *userp)
{
	struct xfer *x = userp;
	size_t n = size * nmemb;

	if (n > DBX_HTTP_BODY_MAX - x->len) {
		x->too_large = true;
		return 0; /* abort: CURLE_WRITE_ERROR */
	}
	if (x->len + n + 1 > x->cap) {
		size_t cap = x->cap ? x->cap : 16384;
		char *nb;

		while (cap < x->len + n + 1)
			cap *= 2;
		/* Not realloc: a token answer must not leave copies in freed memory. */
		nb = malloc(cap);
		if (!nb) {
			x->oom = true;
			return 0;
		}
		if (x->body) {
			memcpy(nb, x->body, x->len);
			explicit_bzero(x->body, x->len);
			free(x->body);
		}
		x->body = nb;
		x->cap = cap;
	}
	memcpy(x->body + x->len, data, n);
	x->len += n;
	x->body[x->len] = '\0';
	return n;
}

/* Replace *slot by a copy of value[0..len). */
/*
 * Keep one header value. A control byte inside it (a bare CR, a NUL, an
 * escape; libcurl passes them through) becomes a space: a value never
 * holds a line break that could split a line of the errors file or the
 * log, and a URL or a number with one in it is refused where it is read.
 */
static bool set_header(char **slot, const char *value, size_t len)
{
	char *v = malloc(len + 1);

	if (!v)
		return false;
	for (size_t i = 0; i < len; i++)
		v[i] = ((unsigned char)value[i] < 0x20 || value[i] == 0x7f) ? ' ' : value[i];
	v[len] = '\0';
	free(*slot);
	*slot = v;
	return true;
}

static void clear_headers(struct dbx_http_response *r)
{
	free(r->location);
	free(r->retry_after);
	free(r->retry_after_ms);
	free(r->request_id);
	free(r->correlation_id);
	free(r->www_authenticate);
	r->location = r->retry_after = r->retry_after_ms = r->request_id = r->correlation_id =
	    r->www_authenticate = NULL;
	r->ratelimit_known = false;
	r->ratelimit_remaining = 0;
}

/* x-ms-ratelimit-remaining-*: keep the lowest value (blanks already trimmed). */
static void note_ratelimit(struct dbx_http_response *r, const char *v, size_t vlen)
{
	uint64_t n = 0;
	size_t i;

	for (i = 0; i < vlen && i < 12 && v[i] >= '0' && v[i] <= '9'; i++)
		n = n * 10 + (uint64_t)(v[i] - '0');
	if (i == 0 || i != vlen)
		return; /* not a plain count: ignored */
	if (!r->ratelimit_known || n < r->ratelimit_remaining)
		r->ratelimit_remaining = n;
	r->ratelimit_known = true;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *userp)
{
	struct xfer *x = userp;
	size_t n = size * nmemb;
	size_t name_len;
	const char *v;
	size_t vlen;
	char **slot = NULL;

	if (n >= 5 && strncmp(data, "HTTP/", 5) == 0) {
		clear_headers(x->resp); /* a new response (after 1xx): forget the old headers */
		return n;
	}
	v = memchr(data, ':', n);
	if (!v)
		return n;
	name_len = (size_t)(v - data);
	v++;
	vlen = n - name_len - 1;
	while (vlen && (*v == ' ' || *v == '\t')) {
		v++;
		vlen--;
	}
	while (vlen && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' || v[vlen - 1] == ' ' ||
			v[vlen - 1] == '\t'))
		vlen--;

#define IS(name) (name_len == sizeof(name) - 1 && strncasecmp(data, name, name_len) == 0)
	if (IS("Location"))
		slot = &x->resp->location;
	else if (IS("Retry-After"))
		slot = &x->resp->retry_after;
	else if (IS("retry-after-ms") || IS("x-ms-retry-after-ms"))
		slot = &x->resp->retry_after_ms;
	else if (IS("x-ms-request-id"))
		slot = &x->resp->request_id;
	else if (IS("x-ms-correlation-request-id"))
		slot = &x->resp->correlation_id;
	else if (IS("WWW-Authenticate"))
		slot = &x->resp->www_authenticate;
	else if (name_len > 25 && strncasecmp(data, "x-ms-ratelimit-remaining-", 25) == 0)
		note_ratelimit(x->resp, v, vlen);
#undef IS
	if (slot && !set_header(slot, v, vlen)) {
		x->oom = true;
		return 0;
	}
	return n;
}

/* ---- the share and the pool ---- */

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *userp)
{
	struct curl_transport *ct = userp;

	(void)h;
	(void)access;
	pthread_mutex_lock(&ct->share_locks[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *userp)
{
	struct curl_transport *ct = userp;

	(void)h;
	pthread_mutex_unlock(&ct->share_locks[data]);
}

static bool share_init(struct curl_transport *ct)
{
	ct->share = curl_share_init();
	return ct->share &&
	       curl_share_setopt(ct->share, CURLSHOPT_LOCKFUNC, share_lock) == CURLSHE_OK &&
	       curl_share_setopt(ct->share, CURLSHOPT_UNLOCKFUNC, share_unlock) == CURLSHE_OK &&
	       curl_share_setopt(ct->share, CURLSHOPT_USERDATA, ct) == CURLSHE_OK &&
	       curl_share_setopt(ct->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) == CURLSHE_OK &&
	       curl_share_setopt(ct->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) ==
		   CURLSHE_OK;
}

static CURL *pool_take(struct curl_transport *ct)
{
	CURL *h = NULL;

	pthread_mutex_lock(&ct->lock);
	if (ct->n_pool)
		h = ct->pool[--ct->n_pool];
	pthread_mutex_unlock(&ct->lock);
	if (h)
		curl_easy_reset(h);
	else
		h = curl_easy_init();
	return h;
}

static void pool_give(struct curl_transport *ct, CURL *h)
{
	pthread_mutex_lock(&ct->lock);
	if (ct->n_pool < POOL_MAX) {
		ct->pool[ct->n_pool++] = h;
		h = NULL;
	}
	pthread_mutex_unlock(&ct->lock);
	if (h)
		curl_easy_cleanup(h);
}

/* ---- URL pieces for messages and logs: never the query ---- */

struct url_parts {
	char *scheme;
	char *host;
	char *path;
};

static void url_parts_get(const char *url, struct url_parts *p)
{
	CURLU *u = curl_url();

	memset(p, 0, sizeof(*p));
	if (!u)
		return;
	if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK) {
		curl_url_get(u, CURLUPART_SCHEME, &p->scheme, 0);
		curl_url_get(u, CURLUPART_HOST, &p->host, 0);
		curl_url_get(u, CURLUPART_PATH, &p->path, 0);
	}
	curl_url_cleanup(u);
}

static void url_parts_free(struct url_parts *p)
{
	curl_free(p->scheme);
	curl_free(p->host);
	curl_free(p->path);
}

/* Loopback by name or address: localhost, 127.0.0.0/8, [::1]. */
static bool is_loopback(const char *host)
{
	struct in_addr a4;

	if (strcasecmp(host, "localhost") == 0 || strcmp(host, "[::1]") == 0)
		return true;
	return inet_pton(AF_INET, host, &a4) == 1 && (ntohl(a4.s_addr) >> 24) == 127;
}

/*
 * The protocols a request may use: https, and nothing else, except plain
 * http for the managed-identity endpoints, which are http by design: IMDS
 * at exactly 169.254.169.254 (link-local, answered by the host itself) and
 * an App Service IDENTITY_ENDPOINT on loopback. Decided on the host as
 * libcurl parses it, so "http://169.254.169.254@elsewhere/" is not let
 * through. A bearer token never goes over plain http (see curl_send).
 */
static const char *allowed_protocols(const struct url_parts *up)
{
	if (up->scheme && up->host && strcasecmp(up->scheme, "http") == 0 &&
	    (strcmp(up->host, "169.254.169.254") == 0 || is_loopback(up->host)))
		return "http";
	return "https";
}

static const char *or_unknown(const char *s)
{
	return s ? s : "(unparsable URL)";
}

/* ---- one request ---- */

/* Append h to *list; false on ENOMEM. */
static bool add_header(struct curl_slist **list, const char *h)
{
	struct curl_slist *n = curl_slist_append(*list, h);

	if (!n)
		return false;
	*list = n;
	return true;
}

/* Wipe every header string (the bearer token, secret extra headers) and free the list. */
static void wipe_headers(struct curl_slist *list)
{
	for (struct curl_slist *i = list; i; i = i->next)
		explicit_bzero(i->data, strlen(i->data));
	curl_slist_free_all(list);
}

static bool is_tls_error(CURLcode c)
{
	switch (c) {
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ENGINE_NOTFOUND:
	case CURLE_SSL_ENGINE_SETFAILED:
	case CURLE_SSL_ENGINE_INITFAILED:
	case CURLE_SSL_CRL_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_SSL_CLIENTCERT:
	case CURLE_USE_SSL_FAILED:
		return true;
	default:
		return false;
	}
}

/* Map a failed perform to the kinds of http.h, with a message naming the host only. */
static enum dbx_err map_curl_error(CURL *h, CURLcode c, const struct xfer *x, const char *host,
				   const char *errbuf, bool deadline_passed, struct dbx_error *err)
{
	const char *detail = errbuf[0] ? errbuf : curl_easy_strerror(c);
	long connect_ok = 0;

	if (x->too_large) {
		if (err)
			snprintf(err->code, sizeof(err->code), "%s", DBX_HTTP_CODE_TOO_LARGE);
		return dbx_error_set(err, DBX_EREMOTE, "response body larger than 16 MiB from %s",
				     host);
	}
	if (x->oom || c == CURLE_OUT_OF_MEMORY)
		return dbx_error_set(err, DBX_ENOMEM, "out of memory talking to %s", host);
	switch (c) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		return dbx_error_set(err, DBX_EUNREACHABLE, "cannot resolve %s: %s", host, detail);
	case CURLE_COULDNT_CONNECT:
		return dbx_error_set(err, DBX_EUNREACHABLE, "cannot connect to %s: %s", host,
				     detail);
	case CURLE_PEER_FAILED_VERIFICATION:
		return dbx_error_set(err, DBX_EUNREACHABLE,
				     "TLS certificate verification failed for %s: %s", host,
				     detail);
	case CURLE_OPERATION_TIMEDOUT:
		/*
		 * The 10 s connect timeout before the deadline: nothing was
		 * sent, the host is unreachable (and a retry is safe).
		 */
		if (!deadline_passed &&
		    curl_easy_getinfo(h, CURLINFO_CONNECT_TIME_T, &connect_ok) == CURLE_OK &&
		    connect_ok == 0)
			return dbx_error_set(err, DBX_EUNREACHABLE, "connecting to %s timed out",
					     host);
		return dbx_error_set(err, DBX_ETIMEDOUT, "request to %s timed out", host);
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_WEIRD_SERVER_REPLY:
		return dbx_error_set(err, DBX_EREMOTE, "connection to %s failed mid-request: %s",
				     host, detail);
	case CURLE_UNSUPPORTED_PROTOCOL:
		return dbx_error_set(err, DBX_ECONFIG, "refusing a non-https URL for %s", host);
	case CURLE_URL_MALFORMAT:
		return dbx_error_set(err, DBX_EINVAL, "malformed URL for %s", host);
	default:
		break;
	}
	if (is_tls_error(c)) {
		/* OpenSSL reports a bad certificate as a handshake failure too. */
		if (strstr(detail, "certificate"))
			return dbx_error_set(err, DBX_EUNREACHABLE,
					     "TLS certificate verification failed for %s: %s", host,
					     detail);
		return dbx_error_set(err, DBX_EUNREACHABLE, "TLS handshake with %s failed: %s",
				     host, detail);
	}
	return dbx_error_set(err, DBX_EREMOTE, "request to %s failed: %s", host, detail);
}

/* Set the method and body options; false on a libcurl refusal. */
static bool set_method(CURL *h, const struct dbx_http_request *req)
{
	bool ok = true;
	const char *m = req->method ? req->method : "GET";

	if (strcmp(m, "GET") == 0 && !req->body) {
		ok = curl_easy_setopt(h, CURLOPT_HTTPGET, 1L) == CURLE_OK;
	} else if (strcmp(m, "HEAD") == 0) {
		ok = curl_easy_setopt(h, CURLOPT_NOBODY, 1L) == CURLE_OK;
	} else if (req->body || strcmp(m, "POST") == 0 || strcmp(m, "PATCH") == 0 ||
		   strcmp(m, "PUT") == 0) {
		ok = curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->body ? req->body : "") ==
			 CURLE_OK &&
		     curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
				      (curl_off_t)(req->body ? req->body_len : 0)) == CURLE_OK;
		if (ok && strcmp(m, "POST") != 0)
			ok = curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, m) == CURLE_OK;
	} else {
		ok = curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, m) == CURLE_OK;
	}
	return ok;
}

/*
 * The header list of one request into *headers: our request id, Accept,
 * User-Agent, Content-Type, the bearer token (its line also in *auth, to be
 * wiped) and req's extra headers. False on ENOMEM; the caller frees both.
 */
static bool build_headers(const struct curl_transport *ct, const struct dbx_http_request *req,
			  const char *client_request_id, struct curl_slist **headers, char **auth)
{
	char line[256];
	bool ok;

	snprintf(line, sizeof(line), "x-ms-client-request-id: %s", client_request_id);
	ok = add_header(headers, line) &&
	     add_header(headers, "x-ms-return-client-request-id: true") &&
	     add_header(headers, "Accept: application/json") &&
	     add_header(headers, ct->user_agent_header) && add_header(headers, "Expect:");
	if (ok && req->body && req->content_type) {
		snprintf(line, sizeof(line), "Content-Type: %s", req->content_type);
		ok = add_header(headers, line);
	} else if (ok) {
		ok = add_header(headers, "Content-Type:"); /* no libcurl default for POST */
	}
	if (ok && req->bearer) {
		if (asprintf(auth, "Authorization: Bearer %s", req->bearer) < 0) {
			*auth = NULL;
			ok = false;
		} else {
			ok = add_header(headers, *auth);
		}
	}
	for (size_t i = 0; ok && req->extra_headers && req->extra_headers[i]; i++)
		ok = add_header(headers, req->extra_headers[i]);
	return ok;
}

/* CURLOPT_SSL_CTX_FUNCTION: a new TLS connection trusts the shared store. */
static CURLcode on_ssl_ctx(CURL *h, void *sslctx, void *userp)
{
	(void)h;
	SSL_CTX_set1_cert_store(sslctx, userp); /* takes its own reference */
	return CURLE_OK;
}

/*
 * Every libcurl option of one request on h: URL and protocols, TLS always
 * verified, headers, callbacks into x, errbuf, timeouts from remaining (ms
 * to the deadline, 0: none), a fresh connection for a non-idempotent
 * request, the CA bundle, connect_to, no proxy for plain http. False when
 * libcurl refuses one.
 */
static bool set_options(const struct curl_transport *ct, CURL *h,
			const struct dbx_http_request *req, const struct url_parts *up,
			struct xfer *x, struct curl_slist *headers, char *errbuf,
			uint64_t remaining)
{
	long connect_ms = CONNECT_TIMEOUT_MS;
	bool ok;

	if (remaining && remaining < CONNECT_TIMEOUT_MS)
		connect_ms = (long)remaining;
	ok = curl_easy_setopt(h, CURLOPT_URL, req->url) == CURLE_OK &&
	     curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, allowed_protocols(up)) == CURLE_OK &&
	     curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L) == CURLE_OK &&
	     curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
	     curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L) == CURLE_OK &&
	     curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L) == CURLE_OK &&
	     curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers) == CURLE_OK &&
	     curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body) == CURLE_OK &&
	     curl_easy_setopt(h, CURLOPT_WRITEDATA, x) == CURLE_OK &&
	     curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header) == CURLE_OK &&
	     curl_easy_setopt(h, CURLOPT_HEADERDATA, x) == CURLE_OK &&
	     curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf) == CURLE_OK &&
	     curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L) == CURLE_OK &&
	     curl_easy_setopt(h, CURLOPT_SHARE, ct->share) == CURLE_OK &&
	     curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, connect_ms) == CURLE_OK &&
	     set_method(h, req);
	if (ok && remaining)
		ok = curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)remaining) == CURLE_OK;
	/*
	 * libcurl silently sends a request again when a reused connection
	 * turns out dead before any answer. That is fine for a GET and wrong
	 * for a PATCH, which must never be resent blindly (docs/formats.md, "Validation"): a
	 * non-idempotent request always gets a connection of its own.
	 */
	if (ok && !req->idempotent)
		ok = curl_easy_setopt(h, CURLOPT_FRESH_CONNECT, 1L) == CURLE_OK;
	if (ok && ct->store) {
		/* nothing loaded per connection: the shared store, set by on_ssl_ctx */
		ok = curl_easy_setopt(h, CURLOPT_CAINFO, NULL) == CURLE_OK &&
		     curl_easy_setopt(h, CURLOPT_CAPATH, NULL) == CURLE_OK &&
		     curl_easy_setopt(h, CURLOPT_SSL_CTX_FUNCTION, on_ssl_ctx) == CURLE_OK &&
		     curl_easy_setopt(h, CURLOPT_SSL_CTX_DATA, ct->store) == CURLE_OK;
	} else if (ok && ct->ca_pem) {
		struct curl_blob blob = {
		    .data = ct->ca_pem, .len = ct->ca_len, .flags = CURL_BLOB_NOCOPY};

		ok = curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &blob) == CURLE_OK;
	}
	if (ok && ct->connect_to)
		ok = curl_easy_setopt(h, CURLOPT_CONNECT_TO, ct->connect_to) == CURLE_OK;
	/*
	 * Plain http goes only to the managed-identity endpoints, and carries
	 * IDENTITY_HEADER out and a token back in the clear: never through a
	 * proxy from the environment (http_proxy, all_proxy), only direct.
	 */
	if (ok && strcmp(allowed_protocols(up), "http") == 0)
		ok = curl_easy_setopt(h, CURLOPT_PROXY, "") == CURLE_OK;
	return ok;
}

/*
 * The -d line of one request that took ms: method, scheme, host and path
 * (no query), then the status and x-ms-request-id, or the error. Never a
 * header: they carry tokens.
 */
static void log_request(const struct dbx_http_request *req, const struct url_parts *up,
			const struct dbx_http_response *resp, enum dbx_err rc, uint64_t ms,
			const struct dbx_error *err)
{
	if (rc == DBX_OK)
		dbx_log(DBX_LOG_DEBUG, "%s %s://%s%s -> %ld (%llu ms) x-ms-request-id %s",
			req->method, or_unknown(up->scheme), or_unknown(up->host),
			up->path ? up->path : "", resp->status, (unsigned long long)ms,
			resp->request_id ? resp->request_id : "-");
	else
		dbx_log(DBX_LOG_DEBUG, "%s %s://%s%s -> %s (%llu ms): %s", req->method,
			or_unknown(up->scheme), or_unknown(up->host), up->path ? up->path : "",
			dbx_err_str(rc), (unsigned long long)ms, err ? err->message : "");
}

static enum dbx_err curl_send(struct dbx_transport *self, const struct dbx_http_request *req,
			      struct dbx_http_response *resp, struct dbx_error *err)
{
	struct curl_transport *ct = (struct curl_transport *)self;
	const struct dbx_clock *clock = ct->clock;
	struct xfer x = {.resp = resp};
	struct curl_slist *headers = NULL;
	struct url_parts up;
	char errbuf[CURL_ERROR_SIZE] = "";
	char *auth = NULL;
	CURL *h = NULL;
	uint64_t start = dbx_clock_now_ms(clock);
	uint64_t remaining = 0;
	enum dbx_err rc = DBX_OK;
	CURLcode c;

	url_parts_get(req->url, &up);
	dbx_uuid4(resp->client_request_id);
	if (req->deadline_ms) {
		if (start >= req->deadline_ms) {
			rc = dbx_error_set(err, DBX_ETIMEDOUT,
					   "deadline passed before %s %s was sent", req->method,
					   or_unknown(up.host));
			goto out;
		}
		remaining = req->deadline_ms - start;
	}
	if (req->bearer && (!up.scheme || strcasecmp(up.scheme, "https") != 0)) {
		rc = dbx_error_set(err, DBX_ECONFIG, "refusing to send a token to %s without TLS",
				   or_unknown(up.host));
		goto out;
	}
	h = pool_take(ct);
	if (!h) {
		rc = dbx_error_set(err, DBX_ENOMEM, "cannot create a libcurl handle");
		goto out;
	}
	if (!build_headers(ct, req, resp->client_request_id, &headers, &auth)) {
		rc = dbx_error_set(err, DBX_ENOMEM, "out of memory building a request");
		goto out;
	}
	if (!set_options(ct, h, req, &up, &x, headers, errbuf, remaining)) {
		rc = dbx_error_set(err, DBX_ECONFIG, "libcurl refused an option for %s",
				   or_unknown(up.host));
		goto out;
	}

	c = curl_easy_perform(h);
	if (c != CURLE_OK) {
		bool late = req->deadline_ms && dbx_clock_now_ms(clock) >= req->deadline_ms;

		rc = map_curl_error(h, c, &x, or_unknown(up.host), errbuf, late, err);
		goto out;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
	if (!x.body) {
		x.body = calloc(1, 1);
		if (!x.body) {
			rc = dbx_error_set(err, DBX_ENOMEM, "out of memory reading a response");
			goto out;
		}
	}
	resp->body = x.body;
	resp->body_len = x.len;
	x.body = NULL;
out:
	if (ct->verbose)
		log_request(req, &up, resp, rc, dbx_clock_now_ms(clock) - start, err);
	if (rc != DBX_OK) {
		char id[DBX_HTTP_UUID_LEN + 1];

		memcpy(id, resp->client_request_id, sizeof(id));
		dbx_http_response_reset(resp);
		memcpy(resp->client_request_id, id, sizeof(id));
	}
	if (x.body) {
		explicit_bzero(x.body, x.len); /* a cut-off token answer */
		free(x.body);
	}
	wipe_headers(headers);
	if (auth) {
		explicit_bzero(auth, strlen(auth));
		free(auth);
	}
	if (h) {
		/* Drop pointers into this call's stack and the header list before pooling. */
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
		curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
		pool_give(ct, h);
	}
	url_parts_free(&up);
	return rc;
}

static void curl_destroy(struct dbx_transport *self)
{
	struct curl_transport *ct = (struct curl_transport *)self;

	for (size_t i = 0; i < ct->n_pool; i++)
		curl_easy_cleanup(ct->pool[i]);
	if (ct->share)
		curl_share_cleanup(ct->share); /* after every handle that used it */
	for (size_t i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_destroy(&ct->share_locks[i]);
	pthread_mutex_destroy(&ct->lock);
	curl_slist_free_all(ct->connect_to);
	X509_STORE_free(ct->store);
	free(ct->ca_pem);
	free(ct->user_agent_header);
	free(ct);
}

/*
 * Parse the trust once: ca_pem, or without cafile the system bundle. A
 * libcurl that cannot take an SSL_CTX callback keeps loading it per
 * connection (ct->store stays NULL). False (err set) only on ENOMEM.
 */
static bool make_store(struct curl_transport *ct, struct dbx_error *err)
{
	struct dbx_error ignored;
	CURL *probe = curl_easy_init();
	bool callbacks;

	if (!probe) {
		dbx_error_set(err, DBX_ENOMEM, "out of memory");
		return false;
	}
	callbacks = curl_easy_setopt(probe, CURLOPT_SSL_CTX_FUNCTION, on_ssl_ctx) == CURLE_OK;
	curl_easy_cleanup(probe);
	if (!callbacks)
		return true;
	if (ct->ca_pem) {
		ct->store = store_of(ct->ca_pem, ct->ca_len);
	} else {
		size_t len = 0;
		char *sys = read_file(SYSTEM_CA_BUNDLE, &len, &ignored);

		if (sys)
			ct->store = store_of(sys, len);
		free(sys);
	}
	return true;
}

static size_t count_char(const char *s, char ch)
{
	size_t n = 0;

	for (; *s; s++)
		n += *s == ch;
	return n;
}

struct dbx_transport *dbx_http_curl_new(const struct dbx_curl_options *opt, struct dbx_error *err)
{
	struct curl_transport *ct = NULL;
	const char *ua;

	pthread_once(&global_once, global_init);
	if (global_rc != CURLE_OK) {
		dbx_error_set(err, DBX_ECONFIG, "libcurl initialisation failed: %s",
			      curl_easy_strerror(global_rc));
		return NULL;
	}
	ct = calloc(1, sizeof(*ct));
	if (!ct) {
		dbx_error_set(err, DBX_ENOMEM, "out of memory");
		return NULL;
	}
	ct->base.send = curl_send;
	ct->base.destroy = curl_destroy;
	pthread_mutex_init(&ct->lock, NULL);
	for (size_t i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&ct->share_locks[i], NULL);
	if (!share_init(ct)) {
		dbx_error_set(err, DBX_ENOMEM, "cannot set up libcurl's shared caches");
		goto fail;
	}
	ct->verbose = opt && opt->verbose;
	ct->clock = opt && opt->clock ? opt->clock : dbx_clock_system();
	ua = opt && opt->user_agent ? opt->user_agent : "databoxfs/" DBX_VERSION;
	if (asprintf(&ct->user_agent_header, "User-Agent: %s", ua) < 0) {
		ct->user_agent_header = NULL;
		dbx_error_set(err, DBX_ENOMEM, "out of memory");
		goto fail;
	}
	if (opt && opt->cafile && load_ca(ct, opt->cafile, err) != DBX_OK)
		goto fail;
	if (!make_store(ct, err))
		goto fail;
	for (size_t i = 0; opt && opt->connect_to && opt->connect_to[i]; i++) {
		struct curl_slist *n;

		if (count_char(opt->connect_to[i], ':') < 3) {
			dbx_error_set(err, DBX_ECONFIG,
				      "connect_to=%s: expected HOST:PORT:TO_HOST:TO_PORT",
				      opt->connect_to[i]);
			goto fail;
		}
		n = curl_slist_append(ct->connect_to, opt->connect_to[i]);
		if (!n) {
			dbx_error_set(err, DBX_ENOMEM, "out of memory");
			goto fail;
		}
		ct->connect_to = n;
	}
	return &ct->base;
fail:
	curl_destroy(&ct->base);
	return NULL;
}
