/*
 * test_http.c: the libcurl transport (backend/http/curl.c) against a real TLS
 * server on loopback, run in-process with OpenSSL.
 *
 * The server's certificate is issued for management.azure.com by a
 * throw-away CA made here in memory; connect_to sends the real host name to
 * 127.0.0.1. What a user notices: a server that is not trusted is refused
 * (and `cafile` adds trust without turning verification off); the headers
 * Azure needs are sent, tokens only over TLS; the headers we act on
 * (Location, Retry-After, request ids) are read back whole; oversized or
 * cut-off answers and a passed deadline fail with the right kind of error;
 * and connections are reused. No test here waits on a timer.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "databoxfs/http.h"

#define N(a)	      (sizeof(a) / sizeof((a)[0]))
#define MAX_CONNS     64
#define REQ_MAX	      (64 * 1024)
#define LONG_LOCATION 3500

/* ---- a throw-away PKI ---- */

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (!ext)
		return 0;
	ok = X509_add_ext(cert, ext, -1);
	X509_EXTENSION_free(ext);
	return ok;
}

/* A certificate for key, signed by issuer (self-signed when issuer is NULL). */
static X509 *make_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key,
		       const char *san)
{
	X509 *cert = X509_new();
	X509_NAME *name = X509_NAME_new();
	static long serial = 1;

	assert_non_null(cert);
	X509_set_version(cert, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(cert), serial++);
	X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
	X509_gmtime_adj(X509_getm_notAfter(cert), 86400);
	X509_set_pubkey(cert, key);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_subject_name(cert, name);
	X509_set_issuer_name(cert, issuer ? X509_get_subject_name(issuer) : name);
	if (san) {
		assert_true(add_ext(cert, issuer, NID_basic_constraints, "critical,CA:FALSE"));
		assert_true(add_ext(cert, issuer, NID_ext_key_usage, "serverAuth"));
		assert_true(add_ext(cert, issuer, NID_subject_alt_name, san));
	} else {
		assert_true(add_ext(cert, cert, NID_basic_constraints, "critical,CA:TRUE"));
		assert_true(add_ext(cert, cert, NID_key_usage, "critical,keyCertSign,cRLSign"));
		assert_true(add_ext(cert, cert, NID_subject_key_identifier, "hash"));
	}
	assert_true(X509_sign(cert, issuer_key ? issuer_key : key, EVP_sha256()) > 0);
	X509_NAME_free(name);
	return cert;
}

/* ---- the loopback HTTPS server ---- */

struct server {
	SSL_CTX *ctx;
	int lfd;
	int port;
	pthread_t acceptor;
	pthread_mutex_t lock;
	pthread_t conns[MAX_CONNS];
	int fds[MAX_CONNS]; /* -1 once the connection closed itself */
	int n_conns;	    /* TCP connections accepted (TLS or not) */
	int n_requests;
	char last[REQ_MAX + 1]; /* the last request, head and body */
	bool stop;
};

struct conn {
	struct server *srv;
	int fd;
	int slot;
};

static void srv_write(SSL *ssl, const char *data, size_t len)
{
	while (len) {
		int n = SSL_write(ssl, data, len > 65536 ? 65536 : (int)len);

		if (n <= 0)
			return; /* the client went away (body cap test): fine */
		data += n;
		len -= (size_t)n;
	}
}

static void srv_reply(SSL *ssl, const char *status, const char *headers, const char *body,
		      size_t body_len)
{
	char head[8192];

	snprintf(head, sizeof(head), "HTTP/1.1 %s\r\n%sContent-Length: %zu\r\n\r\n", status,
		 headers, body_len);
	srv_write(ssl, head, strlen(head));
	srv_write(ssl, body, body_len);
}

/* Read one request into buf; its length, or -1 at EOF or error. */
static long srv_read_request(SSL *ssl, char *buf)
{
	size_t len = 0;
	char *end = NULL;
	const char *cl;
	size_t want;

	while (!end) {
		int n;

		if (len >= REQ_MAX)
			return -1;
		n = SSL_read(ssl, buf + len, (int)(REQ_MAX - len));
		if (n <= 0)
			return -1;
		len += (size_t)n;
		buf[len] = '\0';
		end = strstr(buf, "\r\n\r\n");
	}
	cl = strcasestr(buf, "\r\nContent-Length:");
	want = (size_t)(end + 4 - buf) + (cl && cl < end ? strtoul(cl + 17, NULL, 10) : 0);
	while (len < want && len < REQ_MAX) {
		int n = SSL_read(ssl, buf + len, (int)(REQ_MAX - len));

		if (n <= 0)
			return -1;
		len += (size_t)n;
		buf[len] = '\0';
	}
	return (long)len;
}

static void *conn_main(void *arg)
{
	struct conn *c = arg;
	struct server *srv = c->srv;
	SSL *ssl = SSL_new(srv->ctx);
	char *req = malloc(REQ_MAX + 1);

	assert_non_null(ssl);
	assert_non_null(req);
	SSL_set_fd(ssl, c->fd);
	if (SSL_accept(ssl) != 1)
		goto out; /* the client refused our certificate */
	for (;;) {
		long len = srv_read_request(ssl, req);
		char path[256] = "";

		if (len < 0)
			break;
		sscanf(req, "%*s %255s", path);
		pthread_mutex_lock(&srv->lock);
		srv->n_requests++;
		memcpy(srv->last, req, (size_t)len + 1);
		pthread_mutex_unlock(&srv->lock);

		if (strncmp(path, "/echo", 5) == 0) {
			srv_reply(ssl, "200 OK",
				  "x-ms-request-id: rid-echo\r\nContent-Type: text/plain\r\n", req,
				  (size_t)len);
		} else if (strcmp(path, "/lro") == 0) {
			char *hdrs = malloc(LONG_LOCATION + 512);

			assert_non_null(hdrs);
			snprintf(hdrs, LONG_LOCATION + 512,
				 "Location: https://management.azure.com/op/%0*d?api-version=1\r\n"
				 "retry-after:  7 \t\r\n"
				 "X-MS-Retry-After-Ms: 1500\r\n"
				 "WWW-Authenticate: Bearer realm=\"x\"\r\n"
				 "X-Ms-Request-Id: rid-lro\r\n",
				 LONG_LOCATION, 0);
			srv_reply(ssl, "202 Accepted", hdrs, "", 0);
			free(hdrs);
		} else if (strcmp(path, "/ctl") == 0) {
			/* Control bytes inside values: a bare CR, an escape, a DEL. */
			srv_reply(ssl, "202 Accepted",
				  "Location: https://management.azure.com/a\rb\r\n"
				  "X-Ms-Request-Id: rid\rforged\x1b[2J\x7f\r\n",
				  "", 0);
		} else if (strcmp(path, "/redirect") == 0) {
			srv_reply(ssl, "302 Found",
				  "Location: https://management.azure.com/echo\r\n", "", 0);
		} else if (strcmp(path, "/big") == 0 || strcmp(path, "/exact") == 0) {
			size_t n =
			    strcmp(path, "/big") == 0 ? DBX_HTTP_BODY_MAX + 1 : DBX_HTTP_BODY_MAX;
			char *body = malloc(n);

			assert_non_null(body);
			memset(body, 'a', n);
			srv_reply(ssl, "200 OK", "", body, n);
			free(body);
		} else if (strcmp(path, "/drop") == 0) {
			static const char head[] =
			    "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\npartial";

			srv_write(ssl, head, sizeof(head) - 1);
			break;
		} else {
			srv_reply(ssl, "404 Not Found", "", "{}", 2);
		}
	}
out:
	SSL_free(ssl);
	pthread_mutex_lock(&srv->lock);
	srv->fds[c->slot] = -1;
	close(c->fd);
	pthread_mutex_unlock(&srv->lock);
	free(req);
	free(c);
	return NULL;
}

static void *acceptor_main(void *arg)
{
	struct server *srv = arg;

	for (;;) {
		int fd = accept(srv->lfd, NULL, NULL);
		struct conn *c;

		if (fd < 0)
			continue;
		pthread_mutex_lock(&srv->lock);
		if (srv->stop || srv->n_conns >= MAX_CONNS) {
			pthread_mutex_unlock(&srv->lock);
			close(fd);
			if (srv->stop)
				return NULL;
			continue;
		}
		/* Head and body go out as separate writes: no Nagle delay between them. */
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
		c = malloc(sizeof(*c));
		assert_non_null(c);
		c->srv = srv;
		c->fd = fd;
		c->slot = srv->n_conns;
		srv->fds[c->slot] = fd;
		assert_int_equal(pthread_create(&srv->conns[srv->n_conns], NULL, conn_main, c), 0);
		srv->n_conns++;
		pthread_mutex_unlock(&srv->lock);
	}
}

static void server_start(struct server *srv, EVP_PKEY *key, X509 *cert)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t alen = sizeof(a);

	memset(srv, 0, sizeof(*srv));
	pthread_mutex_init(&srv->lock, NULL);
	srv->ctx = SSL_CTX_new(TLS_server_method());
	assert_non_null(srv->ctx);
	assert_int_equal(SSL_CTX_use_certificate(srv->ctx, cert), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey(srv->ctx, key), 1);
	srv->lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(srv->lfd >= 0);
	assert_int_equal(bind(srv->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(srv->lfd, 64), 0);
	assert_int_equal(getsockname(srv->lfd, (struct sockaddr *)&a, &alen), 0);
	srv->port = ntohs(a.sin_port);
	assert_int_equal(pthread_create(&srv->acceptor, NULL, acceptor_main, srv), 0);
}

/*
 * Stop accepting, cut the connections still open (a failed test may have
 * left a client behind), and wait for every connection thread.
 */
static void server_stop(struct server *srv)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)srv->port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	pthread_mutex_lock(&srv->lock);
	srv->stop = true;
	pthread_mutex_unlock(&srv->lock);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0); /* wake accept() */
	pthread_join(srv->acceptor, NULL);
	close(fd);
	pthread_mutex_lock(&srv->lock);
	for (int i = 0; i < srv->n_conns; i++) {
		if (srv->fds[i] >= 0)
			shutdown(srv->fds[i], SHUT_RDWR);
	}
	pthread_mutex_unlock(&srv->lock);
	for (int i = 0; i < srv->n_conns; i++)
		pthread_join(srv->conns[i], NULL);
	close(srv->lfd);
	SSL_CTX_free(srv->ctx);
	pthread_mutex_destroy(&srv->lock);
}

static int server_conns(struct server *srv)
{
	int n;

	pthread_mutex_lock(&srv->lock);
	n = srv->n_conns;
	pthread_mutex_unlock(&srv->lock);
	return n;
}

static int server_requests(struct server *srv)
{
	int n;

	pthread_mutex_lock(&srv->lock);
	n = srv->n_requests;
	pthread_mutex_unlock(&srv->lock);
	return n;
}

/* ---- fixture ---- */

struct world {
	EVP_PKEY *ca_key;
	X509 *ca;
	EVP_PKEY *srv_key;
	X509 *srv_cert;
	char cafile[64];
	char notpem[64];
	char connect_to[128];
	const char *connect_to_list[2];
	struct server srv;
};

static int setup(void **state)
{
	struct world *w = calloc(1, sizeof(*w));
	FILE *f;
	int fd;

	assert_non_null(w);
	w->ca_key = EVP_EC_gen("P-256");
	w->srv_key = EVP_EC_gen("P-256");
	assert_non_null(w->ca_key);
	assert_non_null(w->srv_key);
	w->ca = make_cert(w->ca_key, "databoxfs test CA", NULL, NULL, NULL);
	w->srv_cert = make_cert(w->srv_key, "management.azure.com", w->ca, w->ca_key,
				"DNS:management.azure.com");

	snprintf(w->cafile, sizeof(w->cafile), "/tmp/dbx-test-ca-XXXXXX");
	fd = mkstemp(w->cafile);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	assert_int_equal(PEM_write_X509(f, w->ca), 1);
	fclose(f);
	snprintf(w->notpem, sizeof(w->notpem), "/tmp/dbx-test-notpem-XXXXXX");
	fd = mkstemp(w->notpem);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "not a certificate\n", 18), 18);
	close(fd);

	server_start(&w->srv, w->srv_key, w->srv_cert);
	snprintf(w->connect_to, sizeof(w->connect_to), "management.azure.com:443:127.0.0.1:%d",
		 w->srv.port);
	w->connect_to_list[0] = w->connect_to;
	*state = w;
	return 0;
}

static int teardown(void **state)
{
	struct world *w = *state;

	server_stop(&w->srv);
	unlink(w->cafile);
	unlink(w->notpem);
	X509_free(w->ca);
	X509_free(w->srv_cert);
	EVP_PKEY_free(w->ca_key);
	EVP_PKEY_free(w->srv_key);
	free(w);
	return 0;
}

static struct dbx_transport *new_transport(struct world *w, bool trust)
{
	struct dbx_curl_options o = {
	    .cafile = trust ? w->cafile : NULL,
	    .connect_to = w->connect_to_list,
	};
	struct dbx_error err = {0};
	struct dbx_transport *t = dbx_http_curl_new(&o, &err);

	if (!t)
		fail_msg("dbx_http_curl_new: %s", err.message);
	return t;
}

struct call {
	const char *method;
	const char *url;
	const char *bearer;
	const char *body;
	uint64_t deadline_ms;
};

static enum dbx_err do_call(struct dbx_transport *t, const struct call *c,
			    struct dbx_http_response *resp, struct dbx_error *err)
{
	struct dbx_http_request req = {
	    .method = c->method,
	    .url = c->url,
	    .bearer = c->bearer,
	    .body = c->body,
	    .body_len = c->body ? strlen(c->body) : 0,
	    .content_type = c->body ? "application/json" : NULL,
	    .deadline_ms = c->deadline_ms,
	    .idempotent = strcmp(c->method, "GET") == 0,
	};

	dbx_http_response_reset(resp);
	dbx_error_clear(err);
	return dbx_http_send(t, &req, resp, err);
}

/* ---- tests ---- */

static void test_bad_options_refused(void **state)
{
	struct world *w = *state;
	const char *const bad_ct[] = {"management.azure.com", NULL};
	struct dbx_curl_options missing = {.cafile = "/nonexistent/dbx-ca.pem"};
	struct dbx_curl_options notpem = {.cafile = w->notpem};
	struct dbx_curl_options badct = {.connect_to = bad_ct};
	struct dbx_error err = {0};

	assert_null(dbx_http_curl_new(&missing, &err));
	assert_int_equal(err.err, DBX_ECONFIG);
	assert_non_null(strstr(err.message, "/nonexistent/dbx-ca.pem"));
	assert_null(dbx_http_curl_new(&notpem, &err));
	assert_int_equal(err.err, DBX_ECONFIG);
	assert_non_null(strstr(err.message, "no PEM certificate"));
	assert_null(dbx_http_curl_new(&badct, &err));
	assert_int_equal(err.err, DBX_ECONFIG);
}

static void test_untrusted_server_refused(void **state)
{
	struct world *w = *state;
	struct dbx_transport *t = new_transport(w, false);
	struct dbx_http_response resp = {0};
	struct dbx_error err = {0};
	const struct call c = {.method = "GET",
			       .url = "https://management.azure.com/echo?secret-query=1",
			       .bearer = "TOKEN"};
	int before = server_requests(&w->srv);

	assert_int_equal(do_call(t, &c, &resp, &err), DBX_EUNREACHABLE);
	assert_non_null(strstr(err.message, "TLS certificate verification failed for "
					    "management.azure.com"));
	assert_null(strstr(err.message, "secret-query"));
	assert_int_equal(resp.status, 0);
	assert_int_equal(server_requests(&w->srv), before); /* nothing was sent */
	dbx_http_response_reset(&resp);
	dbx_transport_destroy(t);
}

static void test_wrong_host_name_refused(void **state)
{
	struct world *w = *state;
	struct dbx_transport *t = new_transport(w, true);
	struct dbx_http_response resp = {0};
	struct dbx_error err = {0};
	char url[128];
	struct call c = {.method = "GET", .url = url};

	/* A trusted certificate, but for another name than the one asked for. */
	snprintf(url, sizeof(url), "https://127.0.0.1:%d/echo", w->srv.port);
	assert_int_equal(do_call(t, &c, &resp, &err), DBX_EUNREACHABLE);
	assert_non_null(strstr(err.message, "TLS certificate verification failed for 127.0.0.1"));
	dbx_http_response_reset(&resp);
	dbx_transport_destroy(t);
}

static void test_request_headers(void **state)
{
	struct world *w = *state;
	struct dbx_transport *t = new_transport(w, true);
	struct dbx_http_response resp = {0};
	struct dbx_error err = {0};
	const struct call patch = {.method = "PATCH",
				   .url = "https://management.azure.com/echo?api-version=1",
				   .bearer = "TOKEN123",
				   .body = "{\"a\":1}"};
	const struct call post = {.method = "POST", .url = "https://management.azure.com/echo"};
	char want[128];

	assert_int_equal(do_call(t, &patch, &resp, &err), DBX_OK);
	assert_int_equal(resp.status, 200);
	assert_string_equal(resp.request_id, "rid-echo");
	assert_int_equal(strlen(resp.client_request_id), DBX_HTTP_UUID_LEN);
	assert_true(strncmp(resp.body, "PATCH /echo?api-version=1 HTTP/1.1\r\n", 36) == 0);
	snprintf(want, sizeof(want), "\r\nx-ms-client-request-id: %s\r\n", resp.client_request_id);
	assert_non_null(strstr(resp.body, want));
	assert_non_null(strstr(resp.body, "\r\nx-ms-return-client-request-id: true\r\n"));
	assert_non_null(strstr(resp.body, "\r\nAccept: application/json\r\n"));
	assert_non_null(strstr(resp.body, "\r\nUser-Agent: databoxfs/" DBX_VERSION "\r\n"));
	assert_non_null(strstr(resp.body, "\r\nContent-Type: application/json\r\n"));
	assert_non_null(strstr(resp.body, "\r\nAuthorization: Bearer TOKEN123\r\n"));
	assert_null(strcasestr(resp.body, "\r\nExpect:"));
	assert_int_equal(resp.body_len, strlen(resp.body));
	assert_string_equal(resp.body + resp.body_len - 7, "{\"a\":1}");

	/* A bodiless POST carries no Content-Type, and no token when none is given. */
	assert_int_equal(do_call(t, &post, &resp, &err), DBX_OK);
	assert_true(strncmp(resp.body, "POST /echo HTTP/1.1\r\n", 21) == 0);
	assert_null(strcasestr(resp.body, "\r\nContent-Type:"));
	assert_null(strcasestr(resp.body, "\r\nAuthorization:"));
	assert_non_null(strcasestr(resp.body, "\r\nContent-Length: 0\r\n"));
	dbx_http_response_reset(&resp);
	dbx_transport_destroy(t);
}

static void test_response_headers(void **state)
{
	struct world *w = *state;
	struct dbx_transport *t = new_transport(w, true);
	struct dbx_http_response resp = {0};
	struct dbx_error err = {0};
	const struct call lro = {.method = "GET", .url = "https://management.azure.com/lro"};
	const struct call redirect = {.method = "GET",
				      .url = "https://management.azure.com/redirect"};
	const struct call ctl = {.method = "GET", .url = "https://management.azure.com/ctl"};

	assert_int_equal(do_call(t, &lro, &resp, &err), DBX_OK);
	assert_int_equal(resp.status, 202);
	assert_non_null(resp.location);
	assert_int_equal(strlen(resp.location),
			 strlen("https://management.azure.com/op/?api-version=1") + LONG_LOCATION);
	assert_true(strncmp(resp.location, "https://management.azure.com/op/000", 35) == 0);
	assert_string_equal(resp.retry_after, "7");
	assert_string_equal(resp.retry_after_ms, "1500");
	assert_string_equal(resp.www_authenticate, "Bearer realm=\"x\"");
	assert_string_equal(resp.request_id, "rid-lro");
	assert_non_null(resp.body);
	assert_int_equal(resp.body_len, 0);

	/* A control byte in a value becomes a space: no value carries a line break. */
	assert_int_equal(do_call(t, &ctl, &resp, &err), DBX_OK);
	assert_int_equal(resp.status, 202);
	assert_string_equal(resp.location, "https://management.azure.com/a b");
	assert_string_equal(resp.request_id, "rid forged [2J ");

	/* Redirects are answers, never followed. */
	assert_int_equal(do_call(t, &redirect, &resp, &err), DBX_OK);
	assert_int_equal(resp.status, 302);
	assert_string_equal(resp.location, "https://management.azure.com/echo");
	dbx_http_response_reset(&resp);
	dbx_transport_destroy(t);
}

static void test_body_cap_and_cut_off(void **state)
{
	struct world *w = *state;
	struct dbx_transport *t = new_transport(w, true);
	struct dbx_http_response resp = {0};
	struct dbx_error err = {0};
	const struct call exact = {.method = "GET", .url = "https://management.azure.com/exact"};
	const struct call big = {.method = "GET", .url = "https://management.azure.com/big"};
	const struct call drop = {.method = "GET", .url = "https://management.azure.com/drop"};

	assert_int_equal(do_call(t, &exact, &resp, &err), DBX_OK);
	assert_int_equal(resp.body_len, DBX_HTTP_BODY_MAX);
	assert_int_equal(do_call(t, &big, &resp, &err), DBX_EREMOTE);
	assert_non_null(strstr(err.message, "larger than 16 MiB"));
	assert_null(resp.body);
	assert_int_equal(do_call(t, &drop, &resp, &err), DBX_EREMOTE);
	assert_non_null(strstr(err.message, "management.azure.com"));
	assert_int_equal(resp.status, 0);
	dbx_http_response_reset(&resp);
	dbx_transport_destroy(t);
}

static void test_refusals_before_sending(void **state)
{
	struct world *w = *state;
	struct dbx_transport *t = new_transport(w, true);
	struct dbx_http_response resp = {0};
	struct dbx_error err = {0};
	const struct dbx_clock *clock = dbx_clock_system();
	struct call late = {.method = "GET", .url = "https://management.azure.com/echo"};
	const struct call cleartext = {.method = "GET", .url = "http://management.azure.com/echo"};
	char url[128];
	struct call token_on_http = {.method = "GET", .url = url, .bearer = "TOKEN"};
	int conns;

	/* Let the first call open the connection; later refusals must add none. */
	assert_int_equal(do_call(t, &late, &resp, &err), DBX_OK);
	conns = server_conns(&w->srv);

	late.deadline_ms = clock->now_ms(clock->ctx) - 1;
	assert_int_equal(do_call(t, &late, &resp, &err), DBX_ETIMEDOUT);
	assert_int_equal(do_call(t, &cleartext, &resp, &err), DBX_ECONFIG);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/echo", w->srv.port);
	assert_int_equal(do_call(t, &token_on_http, &resp, &err), DBX_ECONFIG);
	assert_non_null(strstr(err.message, "without TLS"));
	assert_null(strstr(err.message, "TOKEN"));
	assert_int_equal(server_conns(&w->srv), conns);
	dbx_http_response_reset(&resp);
	dbx_transport_destroy(t);
}

static void test_connection_refused(void **state)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t alen = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct dbx_transport *t;
	struct dbx_http_response resp = {0};
	struct dbx_error err = {0};
	char url[128];
	struct call c = {.method = "PATCH", .url = url, .body = "{}"};

	(void)state;
	/* A port that was free a moment ago and has no listener. */
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
	close(fd);
	snprintf(url, sizeof(url), "https://localhost:%d/x", ntohs(a.sin_port));
	t = dbx_http_curl_new(NULL, &err);
	assert_non_null(t);
	assert_int_equal(do_call(t, &c, &resp, &err), DBX_EUNREACHABLE);
	assert_non_null(strstr(err.message, "cannot connect to localhost"));
	dbx_http_response_reset(&resp);
	dbx_transport_destroy(t);
}

struct hammer {
	struct dbx_transport *t;
	int failures;
};

static void *hammer_main(void *arg)
{
	struct hammer *h = arg;
	const struct call c = {
	    .method = "GET", .url = "https://management.azure.com/echo", .bearer = "T"};

	for (int i = 0; i < 25; i++) {
		struct dbx_http_response resp = {0};
		struct dbx_error err = {0};

		if (do_call(h->t, &c, &resp, &err) != DBX_OK || resp.status != 200 ||
		    !strstr(resp.body, resp.client_request_id))
			h->failures++;
		dbx_http_response_reset(&resp);
	}
	return NULL;
}

static void test_connections_reused_across_threads(void **state)
{
	struct world *w = *state;
	struct dbx_transport *t = new_transport(w, true);
	struct hammer h[4];
	pthread_t th[4];
	struct dbx_http_response resp = {0};
	struct dbx_error err = {0};
	const struct call c = {.method = "GET", .url = "https://management.azure.com/echo"};
	int before = server_conns(&w->srv);
	char ids[20][DBX_HTTP_UUID_LEN + 1];

	/* Sequential requests share one connection, each with its own request id. */
	for (int i = 0; i < 20; i++) {
		assert_int_equal(do_call(t, &c, &resp, &err), DBX_OK);
		memcpy(ids[i], resp.client_request_id, sizeof(ids[i]));
		for (int j = 0; j < i; j++)
			assert_string_not_equal(ids[i], ids[j]);
	}
	assert_int_equal(server_conns(&w->srv) - before, 1);

	before = server_conns(&w->srv);
	for (int i = 0; i < 4; i++) {
		h[i].t = t;
		h[i].failures = 0;
		assert_int_equal(pthread_create(&th[i], NULL, hammer_main, &h[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(h[i].failures, 0);
	}
	assert_true(server_conns(&w->srv) - before <=
		    4); /* 100 requests, at most 4 new connections */
	dbx_http_response_reset(&resp);
	dbx_transport_destroy(t);
}

/*
 * A PATCH must never be sent twice by libcurl's own retry on a reused
 * connection that died: each non-idempotent request opens its own.
 */
static void test_patch_gets_a_connection_of_its_own(void **state)
{
	struct world *w = *state;
	struct dbx_transport *t = new_transport(w, true);
	struct dbx_http_response resp = {0};
	struct dbx_error err = {0};
	const struct call get = {.method = "GET", .url = "https://management.azure.com/echo"};
	const struct call patch = {
	    .method = "PATCH", .url = "https://management.azure.com/echo", .body = "{}"};
	int before;

	assert_int_equal(do_call(t, &get, &resp, &err), DBX_OK);
	dbx_http_response_reset(&resp);
	before = server_conns(&w->srv);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(do_call(t, &patch, &resp, &err), DBX_OK);
		assert_int_equal(resp.status, 200);
		dbx_http_response_reset(&resp);
	}
	assert_int_equal(server_conns(&w->srv) - before, 3);
	dbx_transport_destroy(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_bad_options_refused),
	    cmocka_unit_test(test_untrusted_server_refused),
	    cmocka_unit_test(test_wrong_host_name_refused),
	    cmocka_unit_test(test_request_headers),
	    cmocka_unit_test(test_response_headers),
	    cmocka_unit_test(test_body_cap_and_cut_off),
	    cmocka_unit_test(test_refusals_before_sending),
	    cmocka_unit_test(test_connection_refused),
	    cmocka_unit_test(test_connections_reused_across_threads),
	    cmocka_unit_test(test_patch_gets_a_connection_of_its_own),
	};

	signal(SIGPIPE, SIG_IGN); /* the server writes to clients that gave up (body cap) */
	return cmocka_run_group_tests(tests, setup, teardown);
}
