/*
 * test_cred_sources.c: the certificate, workload identity, managed identity
 * and Azure CLI credential sources (cred/cert.c, cred/workload.c,
 * cred/msi.c, cred/cli.c, cred/common.c).
 *
 * Configuration comes from a static table behind struct dbx_env (never
 * setenv), token requests go to the scripted fake transport (wrapped here to
 * record extra headers too), and every source is built on pinned_clock: the
 * production clock with its wall time pinned to wall_now. Certificates are made with the openssl
 * command line in a temporary directory, and the JWT the source signs is checked independently of
 * the code under test: decoded here, its x5t compared with `openssl x509 -fingerprint -sha1`, its
 * signature verified with `openssl dgst -sha256 -verify`. The CLI source runs tests/unit/data/az, a
 * stand-in that logs its argv and environment names. Every error message is
 * checked to hold no secret, token or assertion.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "databoxfs/auth.h"
#include "cred/common.h"
#include "fake_transport.h"

#define TENANT	      "72f988bf-86f1-41af-91ab-2d7cd011db47"
#define CLIENT	      "11111111-2222-3333-4444-555555555555"
#define ARM_SCOPE     "https://management.azure.com/.default"
#define VAULT_SCOPE   "https://vault.azure.net/.default"
#define NOW	      1700000000
#define PASSWORD      "s3cret-pass-phrase"
#define CLIENT_SECRET "shh-client-secret-42"
#define ID_HEADER     "hdr-secret-777"
#define N(a)	      (sizeof(a) / sizeof((a)[0]))

static char dir[64]; /* the temporary directory of this run */
static time_t wall_now = NOW;

static time_t pinned_wall(void *ctx)
{
	(void)ctx;
	return wall_now;
}

/* Real monotonic time (deadlines, the CLI's child timeout), wall time pinned (test_setup). */
static struct dbx_clock pinned_clock;

/* ---- helpers ---- */

struct kv {
	const char *name;
	const char *value;
};

static const char *table_get(void *ctx, const char *name)
{
	for (const struct kv *p = ctx; p->name; p++) {
		if (strcmp(p->name, name) == 0)
			return p->value;
	}
	return NULL;
}

#define ENV(...)                                                                                   \
	(&(struct dbx_env){.get = table_get,                                                       \
			   .ctx = (void *)(const struct kv[]){__VA_ARGS__, {NULL, NULL}}})

/* A path in the temporary directory (static buffers, rotated). */
static const char *in_dir(const char *name)
{
	static char bufs[8][256];
	static int next;
	char *b = bufs[next++ % 8];

	snprintf(b, 256, "%s/%s", dir, name);
	return b;
}

/* Run a shell command (test setup only), return its exit status. */
static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void write_file(const char *path, const char *content)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(content, f);
	fclose(f);
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = calloc(1, 65536);
	size_t n;

	assert_non_null(f);
	n = fread(buf, 1, 65535, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/* Decode base64url (no padding, padding tolerated); *len gets the size. NULL when malformed. */
static unsigned char *b64url_decode(const char *s, size_t n, size_t *len)
{
	unsigned char *out = malloc(n + 1);
	unsigned long acc = 0;
	int bits = 0;
	size_t o = 0;

	for (size_t i = 0; i < n && s[i] != '='; i++) {
		const char *alpha =
		    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
		const char *p = strchr(alpha, s[i]);

		if (!p || !s[i]) {
			free(out);
			return NULL;
		}
		acc = (acc << 6) | (unsigned long)(p - alpha);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(acc >> bits);
		}
	}
	out[o] = '\0';
	*len = o;
	return out;
}

/* The value of form field name in an x-www-form-urlencoded body (still encoded), or NULL. */
static char *form_field(const char *body, const char *name)
{
	size_t nl = strlen(name);

	for (const char *p = body; p && *p;) {
		size_t n = strcspn(p, "&");

		if (n > nl && strncmp(p, name, nl) == 0 && p[nl] == '=')
			return strndup(p + nl + 1, n - nl - 1);
		p += n;
		if (*p == '&')
			p++;
	}
	return NULL;
}

/* The message must hold none of the secrets, tokens or assertion fragments of these tests. */
static void assert_clean(const char *msg)
{
	static const char *const secrets[] = {PASSWORD, CLIENT_SECRET, ID_HEADER,
					      "tok-",	"eyJ",	       "PRIVATE KEY"};

	for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++) {
		if (strstr(msg, secrets[i]))
			fail_msg("secret '%s' in message: %s", secrets[i], msg);
	}
}

/* A fake transport that also records each request's extra headers, joined by '|'. */
struct rec_transport {
	struct dbx_transport base;
	struct fake_transport fake;
	char headers[FAKE_MAX_CALLS][256];
};

static enum dbx_err rec_send(struct dbx_transport *self, const struct dbx_http_request *req,
			     struct dbx_http_response *resp, struct dbx_error *err)
{
	struct rec_transport *r = (struct rec_transport *)self;
	size_t i = r->fake.n_calls;

	if (i < FAKE_MAX_CALLS) {
		r->headers[i][0] = '\0';
		for (const char *const *h = req->extra_headers; h && *h; h++) {
			size_t len = strlen(r->headers[i]);

			snprintf(r->headers[i] + len, sizeof(r->headers[i]) - len, "%s%s",
				 len ? "|" : "", *h);
		}
	}
	return r->fake.base.send(&r->fake.base, req, resp, err);
}

static struct rec_transport *rec_new(const struct fake_reply *script, size_t n)
{
	struct rec_transport *r = calloc(1, sizeof(*r));

	assert_non_null(r);
	fake_transport_init(&r->fake, script, n);
	r->base.send = rec_send;
	return r;
}

static void rec_free(struct rec_transport *r)
{
	fake_transport_fini(&r->fake);
	free(r);
}

static uint64_t mono_now(void)
{
	const struct dbx_clock *c = dbx_clock_system();

	return c->now_ms(c->ctx);
}

/* ---- fixtures ---- */

static char thumb[20]; /* SHA-1 of the test certificate's DER, from openssl x509 -fingerprint */

static int group_setup(void **state)
{
	char src[512];
	char *fp;
	const char *p;

	(void)state;
	/* tests/unit/data, next to this source file (CMake compiles it by absolute path). */
	snprintf(src, sizeof(src), "%s", __FILE__);
	if (!strrchr(src, '/'))
		return -1;
	*strrchr(src, '/') = '\0';
	snprintf(dir, sizeof(dir), "/tmp/dbx-cred-test.XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	if (run("cd %s && openssl req -x509 -newkey rsa:2048 -nodes -keyout key.pem -out cert.pem "
		"-days 2 -subj /CN=dbx-test 2>/dev/null && "
		"openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out other.pem "
		"2>/dev/null && "
		"openssl pkey -in key.pem -aes256 -passout pass:" PASSWORD " -out enc_key.pem && "
		"cat cert.pem key.pem > both.pem && cat key.pem cert.pem > key_first.pem && "
		"cat cert.pem other.pem > wrong.pem && cat cert.pem enc_key.pem > enc.pem && "
		"openssl x509 -in cert.pem -pubkey -noout > pub.pem && "
		"openssl x509 -in cert.pem -noout -fingerprint -sha1 > fp.txt && "
		"cp %s/data/az az && chmod 0755 az && mkdir empty",
		dir, src) != 0)
		return -1;
	fp = slurp(in_dir("fp.txt"));
	p = strchr(fp, '=');
	for (int i = 0; p && i < 20; i++) {
		unsigned int b;

		if (sscanf(p + 1 + 3 * i, "%2x", &b) != 1)
			return -1;
		thumb[i] = (char)b;
	}
	free(fp);
	return p ? 0 : -1;
}

static int group_teardown(void **state)
{
	(void)state;
	run("rm -rf %s", dir);
	return 0;
}

static int test_setup(void **state)
{
	(void)state;
	wall_now = NOW;
	pinned_clock = *dbx_clock_system();
	pinned_clock.wall = pinned_wall;
	dbx_cred_cli_set_timeout_ms(0);
	dbx_cred_cli_set_base_environ(NULL);
	return 0;
}

static int test_teardown(void **state)
{
	(void)state;
	dbx_cred_cli_set_timeout_ms(0);
	dbx_cred_cli_set_base_environ(NULL);
	return 0;
}

/* ---- base64url ---- */

static void test_base64url_vectors(void **state)
{
	/* RFC 4648 test vectors, in the URL alphabet and without padding. */
	static const struct {
		const char *in;
		const char *out;
	} v[] = {{"", ""},
		 {"f", "Zg"},
		 {"fo", "Zm8"},
		 {"foo", "Zm9v"},
		 {"foob", "Zm9vYg"},
		 {"fooba", "Zm9vYmE"},
		 {"foobar", "Zm9vYmFy"},
		 {"\xfb\xff\xbf", "-_-_"}};

	(void)state;
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		char *s = dbx_base64url(v[i].in, strlen(v[i].in));

		assert_string_equal(s, v[i].out);
		free(s);
	}
}

/* ---- the client-credentials form body (env secret and client assertions) ---- */

static void test_grant_body(void **state)
{
	char *b;

	(void)state;
	b = dbx_cred_grant_body("id 1", "client_secret", "s&=+/ ~", "https://x/.default");
	assert_non_null(b);
	assert_string_equal(b, "grant_type=client_credentials&client_id=id%201"
			       "&client_secret=s%26%3D%2B%2F%20~&scope=https%3A%2F%2Fx%2F.default");
	dbx_wipe_free(b);

	/* The field name goes as is, so fixed fields may come before it. */
	b = dbx_cred_grant_body("cid", "a=1&client_assertion", "x.y.z", "s");
	assert_non_null(b);
	assert_string_equal(
	    b, "grant_type=client_credentials&client_id=cid&a=1&client_assertion=x.y.z&scope=s");
	dbx_wipe_free(b);
}

/* What an error message quotes of a service's text: its first line, cut to fit. */
static void test_first_line(void **state)
{
	char buf[8];

	(void)state;
	dbx_cred_first_line(buf, sizeof(buf), "AADSTS1\r\nTrace ID: 1");
	assert_string_equal(buf, "AADSTS1");
	dbx_cred_first_line(buf, sizeof(buf), "one\ntwo");
	assert_string_equal(buf, "one");
	dbx_cred_first_line(buf, sizeof(buf), "a long line");
	assert_string_equal(buf, "a long ");
	dbx_cred_first_line(buf, sizeof(buf), "\nsecond");
	assert_string_equal(buf, "");
}

/* ---- certificate ---- */

#define CERT_ENV(path, ...)                                                                        \
	ENV({"AZURE_TENANT_ID", TENANT}, {"AZURE_CLIENT_ID", CLIENT},                              \
	    {"AZURE_CLIENT_SECRET", NULL}, {"AZURE_CLIENT_CERTIFICATE_PATH", path}, __VA_ARGS__)

static const struct fake_reply entra_ok[] = {
    {.status = 200,
     .body = "{\"token_type\":\"Bearer\",\"expires_in\":3599,\"ext_expires_in\":3599,"
	     "\"access_token\":\"tok-cert-1\"}"},
    {.status = 200,
     .body = "{\"token_type\":\"Bearer\",\"expires_in\":3000,\"access_token\":\"tok-cert-2\"}"},
};

/* Split a JWT into its three parts; decode header and payload as JSON. */
struct jwt_parts {
	char *input; /* "header.payload" */
	json_object *header;
	json_object *payload;
	unsigned char *sig;
	size_t sig_len;
};

static void jwt_split(const char *jwt, struct jwt_parts *p)
{
	const char *dot1 = strchr(jwt, '.');
	const char *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
	unsigned char *h;
	unsigned char *pl;
	size_t len;

	assert_non_null(dot2);
	assert_null(strchr(dot2 + 1, '.'));
	p->input = strndup(jwt, (size_t)(dot2 - jwt));
	h = b64url_decode(jwt, (size_t)(dot1 - jwt), &len);
	pl = b64url_decode(dot1 + 1, (size_t)(dot2 - dot1 - 1), &len);
	p->sig = b64url_decode(dot2 + 1, strlen(dot2 + 1), &p->sig_len);
	assert_non_null(h);
	assert_non_null(pl);
	assert_non_null(p->sig);
	p->header = json_tokener_parse((char *)h);
	p->payload = json_tokener_parse((char *)pl);
	assert_non_null(p->header);
	assert_non_null(p->payload);
	free(h);
	free(pl);
}

static void jwt_free(struct jwt_parts *p)
{
	free(p->input);
	free(p->sig);
	json_object_put(p->header);
	json_object_put(p->payload);
}

static const char *jstr(json_object *o, const char *key)
{
	json_object *v = NULL;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static int64_t jint(json_object *o, const char *key)
{
	json_object *v = NULL;

	assert_true(json_object_object_get_ex(o, key, &v));
	assert_true(json_object_is_type(v, json_type_int));
	return json_object_get_int64(v);
}

/* Verify p's RS256 signature with the openssl command line and the certificate's public key. */
static int openssl_verify(const struct jwt_parts *p, const char *input)
{
	FILE *f = fopen(in_dir("sig.bin"), "wb");

	assert_non_null(f);
	fwrite(p->sig, 1, p->sig_len, f);
	fclose(f);
	write_file(in_dir("input.txt"), input);
	return run("openssl dgst -sha256 -verify %s -signature %s %s >/dev/null 2>&1",
		   in_dir("pub.pem"), in_dir("sig.bin"), in_dir("input.txt"));
}

static void check_assertion_request(const struct fake_call *call, const char *url,
				    const char *scope_enc, struct jwt_parts *jwt)
{
	char *f;
	char *assertion;

	assert_string_equal(call->method, "POST");
	assert_string_equal(call->url, url);
	assert_null(call->scope); /* a token request carries no bearer token */
	assert_null(call->bearer);
	f = form_field(call->body, "grant_type");
	assert_string_equal(f, "client_credentials");
	free(f);
	f = form_field(call->body, "client_id");
	assert_string_equal(f, CLIENT);
	free(f);
	f = form_field(call->body, "client_assertion_type");
	assert_string_equal(f, "urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer");
	free(f);
	f = form_field(call->body, "scope");
	assert_string_equal(f, scope_enc);
	free(f);
	assert_null(form_field(call->body, "client_secret"));
	assertion = form_field(call->body, "client_assertion");
	assert_non_null(assertion);
	if (jwt)
		jwt_split(assertion, jwt);
	free(assertion);
}

static void test_cert_signs_a_verifiable_assertion(void **state)
{
	static const char url[] = "https://login.microsoftonline.com/" TENANT "/oauth2/v2.0/token";
	struct rec_transport *t = rec_new(entra_ok, 2);
	struct dbx_error err = {0};
	struct dbx_token tok = {0};
	struct dbx_credential *c;
	struct jwt_parts j1 = {0};
	struct jwt_parts j2 = {0};
	const char *x5t;
	unsigned char *x5t_bytes;
	size_t len;
	char *tampered;

	(void)state;
	c = dbx_cred_env_cert_new(&t->base, NULL, CERT_ENV(in_dir("both.pem"), {"X", "y"}),
				  &pinned_clock, &err);
	assert_non_null(c);
	assert_string_equal(c->name, "cert");

	assert_int_equal(c->get_token(c, ARM_SCOPE, 0, &tok, &err), DBX_OK);
	assert_string_equal(tok.value, "tok-cert-1");
	assert_int_equal(tok.expires_on, NOW + 3599);
	dbx_token_wipe(&tok);
	assert_int_equal(t->fake.n_calls, 1);
	assert_string_equal(t->headers[0], "");
	check_assertion_request(&t->fake.calls[0], url,
				"https%3A%2F%2Fmanagement.azure.com%2F.default", &j1);

	/* Header: RS256, JWT, and the certificate's SHA-1 thumbprint as openssl computes it. */
	assert_string_equal(jstr(j1.header, "alg"), "RS256");
	assert_string_equal(jstr(j1.header, "typ"), "JWT");
	x5t = jstr(j1.header, "x5t");
	assert_non_null(x5t);
	x5t_bytes = b64url_decode(x5t, strlen(x5t), &len);
	assert_int_equal(len, 20);
	assert_memory_equal(x5t_bytes, thumb, 20);
	free(x5t_bytes);

	/* Payload: audience is the token endpoint, issuer and subject the client id. */
	assert_string_equal(jstr(j1.payload, "aud"), url);
	assert_string_equal(jstr(j1.payload, "iss"), CLIENT);
	assert_string_equal(jstr(j1.payload, "sub"), CLIENT);
	assert_int_equal(strlen(jstr(j1.payload, "jti")), 36);
	assert_int_equal(jint(j1.payload, "nbf"), NOW);
	assert_int_equal(jint(j1.payload, "iat"), NOW);
	assert_int_equal(jint(j1.payload, "exp"), NOW + 600);

	/* The signature verifies with the certificate's key, and not over other bytes. */
	assert_int_equal(openssl_verify(&j1, j1.input), 0);
	tampered = strdup(j1.input);
	tampered[strlen(tampered) - 2] ^= 1;
	assert_int_not_equal(openssl_verify(&j1, tampered), 0);
	free(tampered);

	/* A second request signs a fresh assertion: new jti, new time. */
	wall_now = NOW + 100;
	assert_int_equal(c->get_token(c, VAULT_SCOPE, 0, &tok, &err), DBX_OK);
	assert_string_equal(tok.value, "tok-cert-2");
	assert_int_equal(tok.expires_on, NOW + 100 + 3000);
	dbx_token_wipe(&tok);
	check_assertion_request(&t->fake.calls[1], url, "https%3A%2F%2Fvault.azure.net%2F.default",
				&j2);
	assert_string_not_equal(jstr(j1.payload, "jti"), jstr(j2.payload, "jti"));
	assert_int_equal(jint(j2.payload, "iat"), NOW + 100);
	assert_int_equal(openssl_verify(&j2, j2.input), 0);

	jwt_free(&j1);
	jwt_free(&j2);
	dbx_credential_destroy(c);
	rec_free(t);
}

static void test_cert_key_before_cert_and_authority_host(void **state)
{
	static const char url[] = "https://login.microsoftonline.us/" TENANT "/oauth2/v2.0/token";
	struct rec_transport *t = rec_new(entra_ok, 1);
	struct dbx_error err = {0};
	struct dbx_token tok = {0};
	struct dbx_credential *c;
	struct jwt_parts j = {0};

	(void)state;
	c = dbx_cred_env_cert_new(
	    &t->base, NULL,
	    CERT_ENV(in_dir("key_first.pem"),
		     {"AZURE_AUTHORITY_HOST", "https://login.microsoftonline.us/"}),
	    &pinned_clock, &err);
	assert_non_null(c);
	assert_int_equal(c->get_token(c, ARM_SCOPE, 0, &tok, &err), DBX_OK);
	dbx_token_wipe(&tok);
	check_assertion_request(&t->fake.calls[0], url,
				"https%3A%2F%2Fmanagement.azure.com%2F.default", &j);
	assert_string_equal(jstr(j.payload, "aud"), url);
	assert_int_equal(openssl_verify(&j, j.input), 0);
	jwt_free(&j);
	dbx_credential_destroy(c);
	rec_free(t);
}

static void test_cert_refuses_a_key_of_another_certificate(void **state)
{
	struct dbx_error err = {0};
	char want[512];

	(void)state;
	assert_null(dbx_cred_env_cert_new(NULL, NULL, CERT_ENV(in_dir("wrong.pem"), {"X", "y"}),
					  &pinned_clock, &err));
	snprintf(want, sizeof(want), "cert: the private key in %s does not match its certificate",
		 in_dir("wrong.pem"));
	assert_string_equal(err.message, want);
	assert_int_equal(err.err, DBX_ECONFIG);
}

static void test_cert_encrypted_key(void **state)
{
	struct rec_transport *t = rec_new(entra_ok, 1);
	struct dbx_error err = {0};
	struct dbx_token tok = {0};
	struct dbx_credential *c;
	struct jwt_parts j = {0};

	(void)state;
	/* The right password opens the key, and the assertion verifies. */
	c = dbx_cred_env_cert_new(
	    &t->base, NULL,
	    CERT_ENV(in_dir("enc.pem"), {"AZURE_CLIENT_CERTIFICATE_PASSWORD", PASSWORD}),
	    &pinned_clock, &err);
	assert_non_null(c);
	assert_int_equal(c->get_token(c, ARM_SCOPE, 0, &tok, &err), DBX_OK);
	assert_string_equal(tok.value, "tok-cert-1");
	dbx_token_wipe(&tok);
	check_assertion_request(&t->fake.calls[0],
				"https://login.microsoftonline.com/" TENANT "/oauth2/v2.0/token",
				"https%3A%2F%2Fmanagement.azure.com%2F.default", &j);
	assert_int_equal(openssl_verify(&j, j.input), 0);
	jwt_free(&j);
	dbx_credential_destroy(c);
	rec_free(t);

	/* A wrong password is refused, and not quoted. */
	memset(&err, 0, sizeof(err));
	assert_null(dbx_cred_env_cert_new(
	    NULL, NULL,
	    CERT_ENV(in_dir("enc.pem"), {"AZURE_CLIENT_CERTIFICATE_PASSWORD", PASSWORD "-wrong"}),
	    &pinned_clock, &err));
	assert_int_equal(err.err, DBX_ECONFIG);
	assert_non_null(strstr(err.message, "wrong AZURE_CLIENT_CERTIFICATE_PASSWORD"));
	assert_true(strncmp(err.message, "cert: ", 6) == 0);
	assert_clean(err.message);

	/* No password for an encrypted key: says so instead of prompting on a terminal. */
	memset(&err, 0, sizeof(err));
	assert_null(dbx_cred_env_cert_new(NULL, NULL, CERT_ENV(in_dir("enc.pem"), {"X", "y"}),
					  &pinned_clock, &err));
	assert_non_null(strstr(err.message, "is encrypted; set AZURE_CLIENT_CERTIFICATE_PASSWORD"));
}

static void test_cert_configuration_errors(void **state)
{
	struct dbx_error err = {0};

	(void)state;
	assert_null(dbx_cred_env_cert_new(NULL, NULL,
					  ENV({"AZURE_TENANT_ID", TENANT}, {"AZURE_CLIENT_ID", ""}),
					  &pinned_clock, &err));
	assert_int_equal(err.err, DBX_EAUTH);
	assert_string_equal(err.message,
			    "cert: AZURE_CLIENT_ID and AZURE_CLIENT_CERTIFICATE_PATH are not set");

	assert_null(dbx_cred_env_cert_new(NULL, NULL, CERT_ENV(in_dir("nope.pem"), {"X", "y"}),
					  &pinned_clock, &err));
	assert_non_null(strstr(err.message, "cert: cannot read AZURE_CLIENT_CERTIFICATE_PATH"));
	assert_non_null(strstr(err.message, "No such file"));

	/* A file without a certificate (just a key). */
	assert_null(dbx_cred_env_cert_new(NULL, NULL, CERT_ENV(in_dir("key.pem"), {"X", "y"}),
					  &pinned_clock, &err));
	assert_non_null(strstr(err.message, "cert: no PEM certificate in"));
	assert_clean(err.message);

	/* A certificate without its key. */
	assert_null(dbx_cred_env_cert_new(NULL, NULL, CERT_ENV(in_dir("cert.pem"), {"X", "y"}),
					  &pinned_clock, &err));
	assert_non_null(strstr(err.message, "cert: no PEM private key in"));

	/* An http authority is refused. */
	assert_null(dbx_cred_env_cert_new(
	    NULL, NULL,
	    CERT_ENV(in_dir("both.pem"), {"AZURE_AUTHORITY_HOST", "http://login.example"}),
	    &pinned_clock, &err));
	assert_int_equal(err.err, DBX_ECONFIG);
	assert_non_null(strstr(err.message, "cert: AZURE_AUTHORITY_HOST must be an https URL"));
}

static void test_cert_entra_refusal(void **state)
{
	static const struct fake_reply refusal[] = {
	    {.status = 401,
	     .request_id = "req-1",
	     .body = "{\"error\":\"invalid_client\",\"error_description\":\"AADSTS700027: Client "
		     "assertion contains an invalid signature.\\r\\nTrace ID: abc\\r\\n\","
		     "\"error_codes\":[700027]}"},
	    {.transport_err = DBX_EUNREACHABLE},
	};
	struct rec_transport *t = rec_new(refusal, 2);
	struct dbx_error err = {0};
	struct dbx_token tok = {0};
	struct dbx_credential *c;

	(void)state;
	c = dbx_cred_env_cert_new(&t->base, NULL, CERT_ENV(in_dir("both.pem"), {"X", "y"}),
				  &pinned_clock, &err);
	assert_non_null(c);
	assert_int_equal(c->get_token(c, ARM_SCOPE, 0, &tok, &err), DBX_EAUTH);
	assert_null(tok.value);
	assert_string_equal(err.message,
			    "cert: invalid_client: AADSTS700027: Client assertion contains an "
			    "invalid signature.");
	assert_int_equal(err.http_status, 401);
	assert_string_equal(err.code, "invalid_client");
	assert_string_equal(err.request_id, "req-1");
	assert_clean(err.message);

	memset(&err, 0, sizeof(err));
	assert_int_equal(c->get_token(c, ARM_SCOPE, 0, &tok, &err), DBX_EUNREACHABLE);
	assert_non_null(
	    strstr(err.message, "cert: token request to login.microsoftonline.com failed"));
	assert_int_equal(err.http_status, 0);
	assert_clean(err.message);
	dbx_credential_destroy(c);
	rec_free(t);
}

/* ---- workload identity ---- */

#define WORKLOAD_ENV(path)                                                                         \
	ENV({"AZURE_TENANT_ID", TENANT}, {"AZURE_CLIENT_ID", CLIENT},                              \
	    {"AZURE_FEDERATED_TOKEN_FILE", path},                                                  \
	    {"AZURE_AUTHORITY_HOST", "https://login.microsoftonline.com/"})

static char *sent_assertion(const struct rec_transport *t, size_t i)
{
	return form_field(t->fake.calls[i].body, "client_assertion");
}

static void test_workload_sends_the_file_and_rereads_it(void **state)
{
	static const struct fake_reply ok[] = {
	    {.status = 200, .body = "{\"access_token\":\"tok-wl\",\"expires_in\":3599}"},
	    {.status = 200, .body = "{\"access_token\":\"tok-wl\",\"expires_in\":3599}"},
	    {.status = 200, .body = "{\"access_token\":\"tok-wl\",\"expires_in\":3599}"},
	    {.status = 200, .body = "{\"access_token\":\"tok-wl\",\"expires_in\":3599}"},
	    {.status = 200, .body = "{\"access_token\":\"tok-wl\",\"expires_in\":3599}"},
	};
	const char *path = in_dir("sa-token");
	struct rec_transport *t = rec_new(ok, 5);
	struct dbx_error err = {0};
	struct dbx_token tok = {0};
	struct dbx_credential *c;
	struct timespec times[2];
	struct stat st;
	char *a;

	(void)state;
	write_file(path, "  aaaa.bbbb.cccc-1\n");
	c = dbx_cred_workload_new(&t->base, NULL, WORKLOAD_ENV(path), &pinned_clock, &err);
	assert_non_null(c);
	assert_string_equal(c->name, "workload");

	/* The trimmed file content is the assertion of the jwt-bearer grant. */
	assert_int_equal(c->get_token(c, ARM_SCOPE, 0, &tok, &err), DBX_OK);
	assert_string_equal(tok.value, "tok-wl");
	assert_int_equal(tok.expires_on, NOW + 3599);
	dbx_token_wipe(&tok);
	check_assertion_request(&t->fake.calls[0],
				"https://login.microsoftonline.com/" TENANT "/oauth2/v2.0/token",
				"https%3A%2F%2Fmanagement.azure.com%2F.default", NULL);
	a = sent_assertion(t, 0);
	assert_string_equal(a, "aaaa.bbbb.cccc-1");
	free(a);

	/* Rotated (new size): the new token is read at once. */
	write_file(path, "aaaa.bbbb.cccc-22\n");
	assert_int_equal(c->get_token(c, ARM_SCOPE, 0, &tok, &err), DBX_OK);
	dbx_token_wipe(&tok);
	a = sent_assertion(t, 1);
	assert_string_equal(a, "aaaa.bbbb.cccc-22");
	free(a);

	/* Same size and same mtime (rewritten in place, times restored): the copy is kept... */
	assert_int_equal(stat(path, &st), 0);
	write_file(path, "aaaa.bbbb.cccc-33\n");
	times[0] = st.st_atim;
	times[1] = st.st_mtim;
	assert_int_equal(utimensat(AT_FDCWD, path, times, 0), 0);
	wall_now = NOW + 599;
	assert_int_equal(c->get_token(c, ARM_SCOPE, 0, &tok, &err), DBX_OK);
	dbx_token_wipe(&tok);
	a = sent_assertion(t, 2);
	assert_string_equal(a, "aaaa.bbbb.cccc-22");
	free(a);

	/* ...until it is 600 s old. */
	wall_now = NOW + 600;
	assert_int_equal(c->get_token(c, ARM_SCOPE, 0, &tok, &err), DBX_OK);
	dbx_token_wipe(&tok);
	a = sent_assertion(t, 3);
	assert_string_equal(a, "aaaa.bbbb.cccc-33");
	free(a);

	/* A changed mtime alone is a rotation too. */
	write_file(path, "aaaa.bbbb.cccc-44\n");
	times[1].tv_sec += 5;
	assert_int_equal(utimensat(AT_FDCWD, path, times, 0), 0);
	assert_int_equal(c->get_token(c, ARM_SCOPE, 0, &tok, &err), DBX_OK);
	dbx_token_wipe(&tok);
	a = sent_assertion(t, 4);
	assert_string_equal(a, "aaaa.bbbb.cccc-44");
	free(a);

	dbx_credential_destroy(c);
	rec_free(t);
}

static void test_workload_file_errors(void **state)
{
	struct rec_transport *t = rec_new(NULL, 0);
	struct dbx_error err = {0};
	struct dbx_token tok = {0};
	struct dbx_credential *c;
	const char *path = in_dir("sa-missing");

	(void)state;
	assert_null(dbx_cred_workload_new(
	    &t->base, NULL, ENV({"AZURE_TENANT_ID", TENANT}, {"AZURE_CLIENT_ID", CLIENT}),
	    &pinned_clock, &err));
	assert_string_equal(err.message, "workload: AZURE_FEDERATED_TOKEN_FILE is not set");

	c = dbx_cred_workload_new(&t->base, NULL, WORKLOAD_ENV(path), &pinned_clock, &err);
	assert_non_null(c);
	assert_int_equal(c->get_token(c, ARM_SCOPE, 0, &tok, &err), DBX_EAUTH);
	assert_non_null(strstr(err.message, "workload: cannot read AZURE_FEDERATED_TOKEN_FILE"));
	assert_non_null(strstr(err.message, "No such file"));
	write_file(path, " \n\n");
	assert_int_equal(c->get_token(c, ARM_SCOPE, 0, &tok, &err), DBX_EAUTH);
	assert_non_null(strstr(err.message, "is empty"));
	assert_int_equal(t->fake.n_calls, 0); /* nothing was sent */
	dbx_credential_destroy(c);
	rec_free(t);
}

/*
 * Entra's refusal may quote the client assertion (here the federated token
 * from the file, a secret): the message must not carry it, neither whole
 * nor a piece of it cut off at the message's length limit.
 */
static void test_workload_refusal_never_quotes_the_token(void **state)
{
	char token[301];
	char body[1024];
	const struct fake_reply replies[] = {
	    {.status = 400, .body = body},
	    {.status = 400, .body = body},
	};
	const char *path = in_dir("sa-token-echo");
	struct rec_transport *t = rec_new(replies, 2);
	struct dbx_error err = {0};
	struct dbx_token tok = {0};
	struct dbx_credential *c;
	const char *prefixes[] = {
	    "AADSTS700024: Client assertion ",
	    "AADSTS70021: No matching federated identity record found for "
	    "presented assertion. Assertion Issuer: 'https://issuer.example'. "
	    "Assertion Subject: 'system:serviceaccount:default:wl'. Assertion: "};

	(void)state;
	for (size_t i = 0; i < sizeof(token) - 1; i++)
		token[i] = "QRSTUVWXYZ"[i % 10];
	token[sizeof(token) - 1] = '\0';
	memcpy(token, "eyJFED", 6);
	write_file(path, token);
	c = dbx_cred_workload_new(&t->base, NULL, WORKLOAD_ENV(path), &pinned_clock, &err);
	assert_non_null(c);
	for (size_t i = 0; i < 2; i++) {
		snprintf(body, sizeof(body),
			 "{\"error\":\"invalid_client\",\"error_description\":\"%s%s is not "
			 "within its valid time range.\"}",
			 prefixes[i], token);
		memset(&err, 0, sizeof(err));
		assert_int_equal(c->get_token(c, ARM_SCOPE, 0, &tok, &err), DBX_EAUTH);
		assert_non_null(strstr(err.message, "invalid_client"));
		if (strstr(err.message, "eyJFED"))
			fail_msg("the federated token is in the message: %s", err.message);
	}
	dbx_credential_destroy(c);
	rec_free(t);
}

/* ---- managed identity ---- */

#define IMDS "http://169.254.169.254/metadata/identity/oauth2/token"

static void test_msi_imds(void **state)
{
	static const struct fake_reply script[] = {
	    /* the probe: IMDS refuses a request without Metadata, but answers */
	    {.status = 400,
	     .body = "{\"error\":\"bad_request_102\",\"error_description\":\"Required metadata "
		     "header not specified\"}"},
	    {.status = 200,
	     .body =
		 "{\"access_token\":\"tok-imds-1\",\"client_id\":\"x\",\"expires_in\":\"86399\","
		 "\"expires_on\":\"1700086399\",\"ext_expires_in\":\"86399\",\"not_before\":"
		 "\"1699999999\",\"resource\":\"https://management.azure.com\",\"token_type\":"
		 "\"Bearer\"}"},
	    {.status = 200, .body = "{\"access_token\":\"tok-imds-2\",\"expires_in\":3599}"},
	};
	struct rec_transport *t = rec_new(script, 3);
	struct dbx_error err = {0};
	struct dbx_token tok = {0};
	struct dbx_credential *c;
	uint64_t now = mono_now();

	(void)state;
	c = dbx_cred_msi_new(&t->base, NULL, ENV({"X", "y"}), &pinned_clock, &err);
	assert_non_null(c);
	assert_string_equal(c->name, "msi");
	assert_int_equal(c->get_token(c, ARM_SCOPE, 0, &tok, &err), DBX_OK);
	assert_string_equal(tok.value, "tok-imds-1");
	assert_int_equal(tok.expires_on, 1700086399); /* expires_on, a string, wins */
	dbx_token_wipe(&tok);
	assert_int_equal(t->fake.n_calls, 2);
	assert_string_equal(t->fake.calls[0].method, "GET");
	assert_string_equal(t->fake.calls[0].url, IMDS);
	assert_string_equal(t->headers[0], ""); /* the probe goes without Metadata: true */
	assert_true(t->fake.calls[0].deadline_ms <= now + 1000 + 50);
	assert_string_equal(t->fake.calls[1].method, "GET");
	assert_string_equal(t->fake.calls[1].url, IMDS
			    "?api-version=2018-02-01&resource=https%3A%2F%2Fmanagement.azure.com");
	assert_string_equal(t->headers[1], "Metadata: true");
	assert_null(t->fake.calls[1].scope);
	assert_true(t->fake.calls[1].deadline_ms > now &&
		    t->fake.calls[1].deadline_ms <= mono_now() + 10000);

	/* Known to be there: no second probe; an int expires_in counts from now. */
	assert_int_equal(c->get_token(c, VAULT_SCOPE, 0, &tok, &err), DBX_OK);
	assert_string_equal(tok.value, "tok-imds-2");
	assert_int_equal(tok.expires_on, NOW + 3599);
	dbx_token_wipe(&tok);
	assert_int_equal(t->fake.n_calls, 3);
	assert_string_equal(t->fake.calls[2].url,
			    IMDS "?api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net");
	dbx_credential_destroy(c);
	rec_free(t);
}

static void test_msi_imds_user_assigned_and_errors(void **state)
{
	static const struct fake_reply script[] = {
	    {.status = 400, .body = "{}"},
	    {.status = 400,
	     .body =
		 "{\"error\":\"invalid_request\",\"error_description\":\"Identity not found\"}"},
	    {.status = 200, .body = "{\"access_token\":\"tok-imds-3\",\"expires_on\":1700005000}"},
	    {.status = 200, .body = "{\"access_token\":\"tok-imds-4\"}"},
	};
	struct rec_transport *t = rec_new(script, 4);
	struct dbx_error err = {0};
	struct dbx_token tok = {0};
	struct dbx_credential *c;

	(void)state;
	c = dbx_cred_msi_new(&t->base, NULL, ENV({"AZURE_CLIENT_ID", CLIENT}), &pinned_clock, &err);
	assert_non_null(c);
	assert_int_equal(c->get_token(c, ARM_SCOPE, 0, &tok, &err), DBX_EAUTH);
	assert_string_equal(err.message, "msi: the identity with client id " CLIENT
					 " is not assigned to this resource (169.254.169.254: "
					 "Identity not found)");
	assert_int_equal(err.http_status, 0); /* "unavailable": the chain may move on */
	assert_string_equal(t->fake.calls[1].url, IMDS
			    "?api-version=2018-02-01&resource=https%3A%2F%2Fmanagement.azure.com"
			    "&client_id=" CLIENT);

	assert_int_equal(c->get_token(c, ARM_SCOPE, 0, &tok, &err), DBX_OK);
	assert_string_equal(tok.value, "tok-imds-3");
	assert_int_equal(tok.expires_on, 1700005000); /* expires_on as an int */
	dbx_token_wipe(&tok);

	/* An answer without any expiry is refused, without quoting the token. */
	assert_int_equal(c->get_token(c, ARM_SCOPE, 0, &tok, &err), DBX_EAUTH);
	assert_string_equal(err.message,
			    "msi: the token answer has no valid expiry (expires_on or expires_in)");
	assert_null(tok.value);
	dbx_credential_destroy(c);
	rec_free(t);
}

static void test_msi_no_identity_and_no_imds(void **state)
{
	static const struct fake_reply script[] = {
	    {.transport_err = DBX_EUNREACHABLE},
	    {.status = 400, .body = "{}"},
	    {.status = 400,
	     .body =
		 "{\"error\":\"invalid_request\",\"error_description\":\"Identity not found\"}"},
	};
	struct rec_transport *t = rec_new(script, 3);
	struct dbx_error err = {0};
	struct dbx_token tok = {0};
	struct dbx_credential *c;

	(void)state;
	c = dbx_cred_msi_new(&t->base, NULL, ENV({"X", "y"}), &pinned_clock, &err);
	assert_non_null(c);
	/* Off Azure: the probe gets no answer, nothing else is sent. */
	assert_int_equal(c->get_token(c, ARM_SCOPE, 0, &tok, &err), DBX_EAUTH);
	assert_non_null(
	    strstr(err.message,
		   "msi: no managed identity endpoint: IMDS (169.254.169.254) did not answer"));
	assert_int_equal(t->fake.n_calls, 1);
	/* IMDS there, but no identity assigned. */
	assert_int_equal(c->get_token(c, ARM_SCOPE, 0, &tok, &err), DBX_EAUTH);
	assert_string_equal(err.message, "msi: no managed identity is assigned to this resource "
					 "(169.254.169.254: Identity not found)");
	assert_int_equal(t->fake.n_calls, 3);
	dbx_credential_destroy(c);
	rec_free(t);
}

#define APP_ENV(endpoint) ENV({"IDENTITY_ENDPOINT", endpoint}, {"IDENTITY_HEADER", ID_HEADER})

static void test_msi_app_service(void **state)
{
	static const struct fake_reply script[] = {
	    {.status = 200,
	     .body = "{\"access_token\":\"tok-app-1\",\"expires_on\":\"1700007200\",\"resource\":"
		     "\"https://vault.azure.net\",\"token_type\":\"Bearer\",\"client_id\":\"x\"}"},
	    {.status = 401, .body = "{\"message\":\"bad header " ID_HEADER "\"}"},
	    {.status = 200, .body = "{\"access_token\":\"tok-app-3\",\"expires_on\":1700007300}"},
	};
	struct rec_transport *t = rec_new(script, 3);
	struct dbx_error err = {0};
	struct dbx_token tok = {0};
	struct dbx_credential *c;
	char header_line[64];

	(void)state;
	snprintf(header_line, sizeof(header_line), "X-IDENTITY-HEADER: %s", ID_HEADER);
	c = dbx_cred_msi_new(&t->base, NULL, APP_ENV("http://127.0.0.1:41741/MSI/token/"),
			     &pinned_clock, &err);
	assert_non_null(c);
	assert_int_equal(c->get_token(c, VAULT_SCOPE, 0, &tok, &err), DBX_OK);
	assert_string_equal(tok.value, "tok-app-1");
	assert_int_equal(tok.expires_on, 1700007200);
	dbx_token_wipe(&tok);
	assert_int_equal(t->fake.n_calls, 1); /* no IMDS probe */
	assert_string_equal(t->fake.calls[0].url,
			    "http://127.0.0.1:41741/MSI/token/"
			    "?api-version=2019-08-01&resource=https%3A%2F%2Fvault.azure.net");
	assert_string_equal(t->headers[0], header_line);

	/* The endpoint refuses the header: a configured source failed; the header is not quoted. */
	assert_int_equal(c->get_token(c, ARM_SCOPE, 0, &tok, &err), DBX_EAUTH);
	assert_string_equal(
	    err.message, "msi: 127.0.0.1:41741 refused IDENTITY_HEADER (HTTP 401): bad header ***");
	assert_int_equal(err.http_status, 401);
	assert_clean(err.message);
	dbx_credential_destroy(c);

	/* An endpoint with a query of its own (Container Apps style host) gets '&'. */
	c = dbx_cred_msi_new(&t->base, NULL, APP_ENV("http://localhost:42356/msi/token?x=1"),
			     &pinned_clock, &err);
	assert_non_null(c);
	assert_int_equal(c->get_token(c, ARM_SCOPE, 0, &tok, &err), DBX_OK);
	dbx_token_wipe(&tok);
	assert_string_equal(t->fake.calls[2].url,
			    "http://localhost:42356/msi/token?x=1&api-version=2019-08-01"
			    "&resource=https%3A%2F%2Fmanagement.azure.com");
	dbx_credential_destroy(c);
	rec_free(t);
}

/* A one-request HTTP server on 127.0.0.1, to run App Service through the real curl transport. */
struct one_shot_server {
	int fd;
	int port;
	pthread_t thread;
	char request[4096];
	const char *reply;
};

static void *serve_one(void *arg)
{
	struct one_shot_server *s = arg;
	int c = accept(s->fd, NULL, NULL);
	size_t got = 0;

	if (c < 0)
		return NULL;
	while (got < sizeof(s->request) - 1 && !strstr(s->request, "\r\n\r\n")) {
		ssize_t n = read(c, s->request + got, sizeof(s->request) - 1 - got);

		if (n <= 0)
			break;
		got += (size_t)n;
		s->request[got] = '\0';
	}
	if (write(c, s->reply, strlen(s->reply)) < 0)
		got = 0;
	close(c);
	return NULL;
}

static void server_start(struct one_shot_server *s, const char *reply)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);

	memset(s, 0, sizeof(*s));
	s->reply = reply;
	s->fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(s->fd >= 0);
	assert_int_equal(bind(s->fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(s->fd, 1), 0);
	assert_int_equal(getsockname(s->fd, (struct sockaddr *)&a, &len), 0);
	s->port = ntohs(a.sin_port);
	assert_int_equal(pthread_create(&s->thread, NULL, serve_one, s), 0);
}

static void server_stop(struct one_shot_server *s)
{
	pthread_join(s->thread, NULL);
	close(s->fd);
}

static void test_msi_app_service_over_curl(void **state)
{
	static const char reply[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
				    "Content-Length: 51\r\nConnection: close\r\n\r\n"
				    "{\"access_token\":\"tok-loop\",\"expires_on\":1700001234}";
	static const char request_line[] =
	    "GET /msi/token?api-version=2019-08-01&resource=https%3A%2F%2F"
	    "management.azure.com HTTP/1.1\r\n";
	struct one_shot_server srv;
	struct dbx_error err = {0};
	struct dbx_token tok = {0};
	struct dbx_transport *curl;
	struct dbx_credential *c;
	char endpoint[128];

	(void)state;
	assert_int_equal(strlen(strstr(reply, "\r\n\r\n") + 4), 51);
	server_start(&srv, reply);
	snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%d/msi/token", srv.port);
	curl = dbx_http_curl_new(&(struct dbx_curl_options){0}, &err);
	assert_non_null(curl);
	c = dbx_cred_msi_new(curl, NULL, APP_ENV(endpoint), &pinned_clock, &err);
	assert_non_null(c);
	/* http/curl.c lets plain http reach a loopback endpoint and sends the extra header. */
	assert_int_equal(c->get_token(c, ARM_SCOPE, 0, &tok, &err), DBX_OK);
	assert_string_equal(tok.value, "tok-loop");
	assert_int_equal(tok.expires_on, 1700001234);
	dbx_token_wipe(&tok);
	server_stop(&srv);
	assert_true(strncmp(srv.request, request_line, strlen(request_line)) == 0);
	assert_non_null(strcasestr(srv.request, "\r\nX-IDENTITY-HEADER: " ID_HEADER "\r\n"));
	assert_null(strcasestr(srv.request, "Authorization"));
	dbx_credential_destroy(c);
	dbx_transport_destroy(curl);
}

/* Connect to a one-shot server that nobody called, so that its thread ends. */
static void poke(struct one_shot_server *s)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
				.sin_port = htons((uint16_t)s->port)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	char buf[256];

	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(write(fd, "\r\n\r\n", 4), 4);
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	close(fd);
}

/*
 * The managed-identity endpoints speak plain http, so a proxy from the
 * environment (http_proxy) would see IDENTITY_HEADER and the token in the
 * clear: they are always reached directly, never through a proxy.
 */
static void test_msi_never_through_a_proxy(void **state)
{
	static const char reply[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
				    "Content-Length: 51\r\nConnection: close\r\n\r\n"
				    "{\"access_token\":\"tok-loop\",\"expires_on\":1700001234}";
	static const char proxy_reply[] =
	    "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
	struct one_shot_server srv, proxy;
	struct dbx_error err = {0};
	struct dbx_token tok = {0};
	struct dbx_transport *curl;
	struct dbx_credential *c;
	char endpoint[128];
	char proxy_url[64];
	enum dbx_err rc;

	(void)state;
	server_start(&srv, reply);
	server_start(&proxy, proxy_reply);
	snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%d/msi/token", srv.port);
	snprintf(proxy_url, sizeof(proxy_url), "http://127.0.0.1:%d", proxy.port);
	assert_int_equal(setenv("http_proxy", proxy_url, 1), 0);
	assert_int_equal(setenv("all_proxy", proxy_url, 1), 0);
	unsetenv("no_proxy");
	unsetenv("NO_PROXY");
	curl = dbx_http_curl_new(&(struct dbx_curl_options){0}, &err);
	assert_non_null(curl);
	c = dbx_cred_msi_new(curl, NULL, APP_ENV(endpoint), &pinned_clock, &err);
	assert_non_null(c);
	rc = c->get_token(c, ARM_SCOPE, 0, &tok, &err);
	dbx_token_wipe(&tok);
	unsetenv("http_proxy");
	unsetenv("all_proxy");
	if (!srv.request[0])
		poke(&srv);
	if (!proxy.request[0])
		poke(&proxy);
	server_stop(&srv);
	server_stop(&proxy);
	if (strcasestr(proxy.request, "X-IDENTITY-HEADER"))
		fail_msg("IDENTITY_HEADER went to the proxy: %s", proxy.request);
	assert_int_equal(rc, DBX_OK);
	assert_non_null(strcasestr(srv.request, "\r\nX-IDENTITY-HEADER: " ID_HEADER "\r\n"));
	dbx_credential_destroy(c);
	dbx_transport_destroy(curl);
}

static void test_msi_refuses_unsafe_endpoints(void **state)
{
	struct dbx_error err = {0};

	(void)state;
	assert_null(dbx_cred_msi_new(NULL, NULL, APP_ENV("http://10.0.0.5:8081/msi/token"),
				     &pinned_clock, &err));
	assert_int_equal(err.err, DBX_ECONFIG);
	assert_non_null(
	    strstr(err.message, "msi: IDENTITY_ENDPOINT must be https, or http on a loopback"));
	assert_null(dbx_cred_msi_new(NULL, NULL, APP_ENV("http://127.0.0.1.evil.example/x"),
				     &pinned_clock, &err));
	assert_null(
	    dbx_cred_msi_new(NULL, NULL, APP_ENV("http://user@127.0.0.1/x"), &pinned_clock, &err));
	assert_null(
	    dbx_cred_msi_new(NULL, NULL, APP_ENV("ftp://127.0.0.1/x"), &pinned_clock, &err));
	/* Loopback as http/curl.c sees it: IPv6 loopback and all of 127/8 are fine. */
	for (size_t i = 0; i < 2; i++) {
		static const char *const ok[] = {"http://[::1]:8081/msi/token",
						 "http://127.3.2.1:8081/msi/token"};
		struct dbx_credential *c =
		    dbx_cred_msi_new(NULL, NULL, APP_ENV(ok[i]), &pinned_clock, &err);

		assert_non_null(c);
		dbx_credential_destroy(c);
	}
	assert_null(dbx_cred_msi_new(NULL, NULL, ENV({"IDENTITY_ENDPOINT", "http://127.0.0.1/x"}),
				     &pinned_clock, &err));
	assert_non_null(strstr(err.message, "without IDENTITY_HEADER"));
	assert_clean(err.message);
}

/* ---- Azure CLI ---- */

static char stub_log_line[300];
static char stub_body_line[300];
static char stub_mode_line[64];
static char *cli_environ[16];

/* The child's base environment: secrets the child must not see, and the stub's controls. */
static void cli_base_env(const char *mode)
{
	size_t n = 0;

	snprintf(stub_log_line, sizeof(stub_log_line), "AZ_STUB_LOG=%s", in_dir("az.log"));
	snprintf(stub_mode_line, sizeof(stub_mode_line), "AZ_STUB_MODE=%s", mode);
	snprintf(stub_body_line, sizeof(stub_body_line), "AZ_STUB_BODY=%s", in_dir("az.body"));
	cli_environ[n++] = (char *)"PATH=/should/be/replaced";
	cli_environ[n++] = (char *)"HOME=/tmp";
	cli_environ[n++] = (char *)"AZURE_CLIENT_SECRET=" CLIENT_SECRET;
	cli_environ[n++] = (char *)"AZURE_CLIENT_CERTIFICATE_PASSWORD=" PASSWORD;
	cli_environ[n++] = (char *)"IDENTITY_HEADER=" ID_HEADER;
	cli_environ[n++] = (char *)"AZURE_CORE_NO_COLOR=false";
	cli_environ[n++] = (char *)"KEEP_ME=1";
	cli_environ[n++] = stub_log_line;
	cli_environ[n++] = stub_mode_line;
	cli_environ[n++] = stub_body_line;
	cli_environ[n] = NULL;
	dbx_cred_cli_set_base_environ(cli_environ);
	unlink(in_dir("az.log"));
}

static char cli_path[300];

#define CLI_ENV(...) ENV({"PATH", cli_path}, __VA_ARGS__)

static struct dbx_credential *cli_new(const struct dbx_env *env)
{
	struct dbx_error err = {0};
	struct dbx_credential *c;

	snprintf(cli_path, sizeof(cli_path), "relative:%s/empty::%s:/usr/bin:/bin", dir, dir);
	c = dbx_cred_cli_new(NULL, NULL, env, &pinned_clock, &err);
	assert_non_null(c);
	assert_string_equal(c->name, "cli");
	return c;
}

static bool has_line(const char *log, const char *line)
{
	size_t n = strlen(line);

	for (const char *p = log; p && *p;) {
		if (strncmp(p, line, n) == 0 && (p[n] == '\n' || p[n] == '\0'))
			return true;
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return false;
}

static void test_cli_argv_environment_and_token(void **state)
{
	struct dbx_credential *c;
	struct dbx_error err = {0};
	struct dbx_token tok = {0};
	char *log;

	(void)state;
	c = cli_new(CLI_ENV({"AZURE_TENANT_ID", TENANT}));
	cli_base_env("ok");
	assert_int_equal(c->get_token(c, ARM_SCOPE, 0, &tok, &err), DBX_OK);
	assert_string_equal(tok.value, "tok-cli-1");
	assert_int_equal(tok.expires_on, 1700009999); /* expires_on preferred over expiresOn */
	dbx_token_wipe(&tok);

	log = slurp(in_dir("az.log"));
	/* argv exactly, one argument each: no shell in between. */
	assert_non_null(strstr(log, "arg:account\narg:get-access-token\narg:--output\narg:json\n"
				    "arg:--resource\narg:https://management.azure.com\n"
				    "arg:--tenant\narg:" TENANT "\ncwd:/\n"));
	assert_true(strncmp(log, "arg:account\n", 12) == 0);
	/* Secrets of other sources stay out of the child's environment. */
	assert_false(has_line(log, "env:AZURE_CLIENT_SECRET"));
	assert_false(has_line(log, "env:AZURE_CLIENT_CERTIFICATE_PASSWORD"));
	assert_false(has_line(log, "env:IDENTITY_HEADER"));
	assert_true(has_line(log, "env:KEEP_ME"));
	assert_true(has_line(log, "env:HOME"));
	assert_true(has_line(log, "env:AZURE_CORE_NO_COLOR"));
	free(log);
	dbx_credential_destroy(c);

	/* Without AZURE_TENANT_ID there is no --tenant; expiresOn (local time) is the fallback. */
	c = cli_new(CLI_ENV({"X", "y"}));
	cli_base_env("expireson");
	assert_int_equal(c->get_token(c, VAULT_SCOPE, 0, &tok, &err), DBX_OK);
	assert_string_equal(tok.value, "tok-cli-2");
	{
		struct tm tm = {.tm_year = 130,
				.tm_mon = 0,
				.tm_mday = 2,
				.tm_hour = 3,
				.tm_min = 4,
				.tm_sec = 5,
				.tm_isdst = -1};

		assert_int_equal(tok.expires_on, mktime(&tm));
	}
	dbx_token_wipe(&tok);
	log = slurp(in_dir("az.log"));
	assert_non_null(strstr(log, "arg:--resource\narg:https://vault.azure.net\ncwd:/\n"));
	assert_null(strstr(log, "--tenant"));
	free(log);
	dbx_credential_destroy(c);
}

static void test_cli_not_installed_and_not_logged_in(void **state)
{
	struct dbx_credential *c;
	struct dbx_error err = {0};
	struct dbx_token tok = {0};
	char path[300];

	(void)state;
	/* No az on PATH (relative entries never count). */
	snprintf(path, sizeof(path), "%s/empty:relative/dir", dir);
	c = dbx_cred_cli_new(NULL, NULL, ENV({"PATH", path}), &pinned_clock, &err);
	assert_non_null(c);
	cli_base_env("ok");
	assert_int_equal(c->get_token(c, ARM_SCOPE, 0, &tok, &err), DBX_EAUTH);
	assert_string_equal(err.message, "cli: Azure CLI (az) not found on PATH");
	assert_int_equal(access(in_dir("az.log"), F_OK), -1); /* nothing ran */
	dbx_credential_destroy(c);

	c = cli_new(CLI_ENV({"X", "y"}));
	cli_base_env("missing"); /* exit 127: what a shell wrapper says when python is gone */
	assert_int_equal(c->get_token(c, ARM_SCOPE, 0, &tok, &err), DBX_EAUTH);
	assert_string_equal(err.message, "cli: Azure CLI (az) not found on PATH");

	cli_base_env("notlogged");
	assert_int_equal(c->get_token(c, ARM_SCOPE, 0, &tok, &err), DBX_EAUTH);
	assert_string_equal(err.message, "cli: not logged in; run az login");

	cli_base_env("fail");
	assert_int_equal(c->get_token(c, ARM_SCOPE, 0, &tok, &err), DBX_EAUTH);
	assert_string_equal(err.message, "cli: az failed (exit 1): AADSTS50173: The provided grant "
					 "has expired due to it being revoked.");

	cli_base_env("flood");
	assert_int_equal(c->get_token(c, ARM_SCOPE, 0, &tok, &err), DBX_EAUTH);
	assert_string_equal(err.message, "cli: az printed more than 64 KiB; killed it");
	assert_null(tok.value);
	assert_clean(err.message);

	/* A scope that would read as an option is never passed. */
	cli_base_env("ok");
	assert_int_equal(c->get_token(c, "--debug", 0, &tok, &err), DBX_EAUTH);
	assert_int_equal(access(in_dir("az.log"), F_OK), -1);
	dbx_credential_destroy(c);

	/* Neither is a tenant. */
	assert_null(
	    dbx_cred_cli_new(NULL, NULL, ENV({"AZURE_TENANT_ID", "--x"}), &pinned_clock, &err));
	assert_int_equal(err.err, DBX_ECONFIG);
}

/* Is pid gone (or a zombie nobody reaped yet)? */
static bool process_gone(long pid)
{
	char path[64];
	char buf[512];
	FILE *f;
	char *p;
	bool gone = true;

	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	f = fopen(path, "r");
	if (!f)
		return true;
	if (fgets(buf, sizeof(buf), f)) {
		p = strrchr(buf, ')');
		gone = p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X');
	}
	fclose(f);
	return gone;
}

static void test_cli_timeout_kills_the_process_group(void **state)
{
	struct dbx_credential *c;
	struct dbx_error err = {0};
	struct dbx_token tok = {0};
	uint64_t start;
	long pid = 0;
	long helper = 0;
	char *log;
	char *p;

	(void)state;
	c = cli_new(CLI_ENV({"X", "y"}));
	cli_base_env("sleep");
	dbx_cred_cli_set_timeout_ms(300);
	start = mono_now();
	assert_int_equal(c->get_token(c, ARM_SCOPE, 0, &tok, &err), DBX_EAUTH);
	assert_true(mono_now() - start < 5000); /* not the stand-in's 30 s */
	assert_string_equal(err.message, "cli: az did not answer within 300 ms; killed it");

	log = slurp(in_dir("az.log"));
	p = strstr(log, "pid:");
	assert_non_null(p);
	pid = strtol(p + 4, NULL, 10);
	p = strstr(log, "helper:");
	assert_non_null(p);
	helper = strtol(p + 7, NULL, 10);
	free(log);
	assert_true(pid > 0 && helper > 0);
	assert_true(process_gone(pid));
	/* The stand-in's own child was in its process group: killed too (reaping may lag). */
	for (int i = 0; i < 100 && !process_gone(helper); i++)
		usleep(10000);
	assert_true(process_gone(helper));
	dbx_credential_destroy(c);
}

/* ---- deadlines and strict answers, every source ---- */

/* The deadline of the request (t->fake.calls[i]) is the caller's when that comes first. */
static void test_sources_end_at_the_callers_deadline(void **state)
{
	static const struct fake_reply imds_ok[] = {
	    {.status = 400, .body = "{\"error\":\"bad_request_102\"}"},
	    {.status = 200, .body = "{\"access_token\":\"tok-i\",\"expires_on\":\"1700003600\"}"},
	};
	static const struct fake_reply app_ok[] = {
	    {.status = 200, .body = "{\"access_token\":\"tok-a\",\"expires_on\":\"1700003600\"}"},
	};
	static const struct fake_reply slow[] = {
	    {.status = 400, .body = "{\"error\":\"bad_request_102\"}"},
	    {.transport_err = DBX_ETIMEDOUT},
	};
	static const struct fake_reply slow_probe[] = {{.transport_err = DBX_ETIMEDOUT}};
	struct rec_transport *t;
	struct dbx_error err = {0};
	struct dbx_token tok = {0};
	struct dbx_credential *c;
	uint64_t now, d;

	(void)state;
	/* IMDS, a deadline before the probe's own 1 s: both requests end there. */
	t = rec_new(imds_ok, N(imds_ok));
	c = dbx_cred_msi_new(&t->base, NULL, ENV({"X", "y"}), &pinned_clock, &err);
	assert_non_null(c);
	d = mono_now() + 500;
	assert_int_equal(c->get_token(c, ARM_SCOPE, d, &tok, &err), DBX_OK);
	dbx_token_wipe(&tok);
	assert_int_equal(t->fake.n_calls, 2);
	assert_int_equal(t->fake.calls[0].deadline_ms, d);
	assert_int_equal(t->fake.calls[1].deadline_ms, d);
	dbx_credential_destroy(c);
	rec_free(t);

	/* A later deadline: the probe keeps its 1 s, the token request gets the caller's. */
	t = rec_new(imds_ok, N(imds_ok));
	c = dbx_cred_msi_new(&t->base, NULL, ENV({"X", "y"}), &pinned_clock, &err);
	now = mono_now();
	d = now + 5000;
	assert_int_equal(c->get_token(c, ARM_SCOPE, d, &tok, &err), DBX_OK);
	dbx_token_wipe(&tok);
	assert_true(t->fake.calls[0].deadline_ms >= now + 1000 && t->fake.calls[0].deadline_ms < d);
	assert_int_equal(t->fake.calls[1].deadline_ms, d);
	dbx_credential_destroy(c);
	rec_free(t);

	/* No caller deadline: the source's own 10 s. */
	t = rec_new(app_ok, N(app_ok));
	c = dbx_cred_msi_new(&t->base, NULL, APP_ENV("http://127.0.0.1:41741/MSI/token/"),
			     &pinned_clock, &err);
	assert_non_null(c);
	now = mono_now();
	assert_int_equal(c->get_token(c, ARM_SCOPE, 0, &tok, &err), DBX_OK);
	dbx_token_wipe(&tok);
	assert_true(t->fake.calls[0].deadline_ms >= now + DBX_CRED_MSI_TIMEOUT_MS &&
		    t->fake.calls[0].deadline_ms <= mono_now() + DBX_CRED_MSI_TIMEOUT_MS);
	/* A deadline already past: nothing is sent. */
	assert_int_equal(c->get_token(c, ARM_SCOPE, mono_now() - 1, &tok, &err), DBX_ETIMEDOUT);
	assert_int_equal(t->fake.n_calls, 1);
	assert_string_equal(err.message,
			    "msi: token request to 127.0.0.1:41741 did not finish within the "
			    "timeout (the token endpoint is slow or unreachable): no time left to "
			    "ask");
	dbx_credential_destroy(c);
	rec_free(t);

	/* The token request times out: DBX_ETIMEDOUT naming the identity endpoint. */
	t = rec_new(slow, N(slow));
	c = dbx_cred_msi_new(&t->base, NULL, ENV({"X", "y"}), &pinned_clock, &err);
	assert_int_equal(c->get_token(c, ARM_SCOPE, mono_now() + 5000, &tok, &err), DBX_ETIMEDOUT);
	assert_null(tok.value);
	assert_non_null(strstr(err.message, "msi: token request to 169.254.169.254 did not "
					    "finish within the timeout"));
	dbx_credential_destroy(c);
	rec_free(t);

	/*
	 * The probe cut short by the caller's deadline is the caller's timeout;
	 * cut short by its own 1 s, IMDS is not there (the chain moves on).
	 */
	t = rec_new(slow_probe, N(slow_probe));
	c = dbx_cred_msi_new(&t->base, NULL, ENV({"X", "y"}), &pinned_clock, &err);
	assert_int_equal(c->get_token(c, ARM_SCOPE, mono_now() + 300, &tok, &err), DBX_ETIMEDOUT);
	dbx_credential_destroy(c);
	rec_free(t);
	t = rec_new(slow_probe, N(slow_probe));
	c = dbx_cred_msi_new(&t->base, NULL, ENV({"X", "y"}), &pinned_clock, &err);
	assert_int_equal(c->get_token(c, ARM_SCOPE, mono_now() + 5000, &tok, &err), DBX_EAUTH);
	assert_int_equal(err.http_status, 0);
	assert_non_null(strstr(err.message, "IMDS (169.254.169.254) did not answer"));
	dbx_credential_destroy(c);
	rec_free(t);
}

/*
 * az still running at the caller's deadline (before its own 10 s) is killed
 * there and reaped (no zombie), and the caller gets DBX_ETIMEDOUT.
 */
static void test_cli_killed_at_the_callers_deadline(void **state)
{
	struct dbx_credential *c;
	struct dbx_error err = {0};
	struct dbx_token tok = {0};
	char proc[64];
	uint64_t start;
	long pid;
	char *log;
	char *p;

	(void)state;
	c = cli_new(CLI_ENV({"X", "y"}));
	cli_base_env("sleep");
	start = mono_now();
	assert_int_equal(c->get_token(c, ARM_SCOPE, start + 300, &tok, &err), DBX_ETIMEDOUT);
	assert_true(mono_now() - start >= 300);
	assert_true(mono_now() - start < 3000);
	assert_null(tok.value);
	assert_string_equal(err.message, "cli: token request to az did not finish within the "
					 "timeout (az is slow); killed it");
	log = slurp(in_dir("az.log"));
	p = strstr(log, "pid:");
	assert_non_null(p);
	pid = strtol(p + 4, NULL, 10);
	free(log);
	assert_true(pid > 0);
	snprintf(proc, sizeof(proc), "/proc/%ld", pid);
	assert_int_equal(access(proc, F_OK), -1); /* reaped, not a zombie */

	/* A deadline already past: az is not even started. */
	unlink(in_dir("az.log"));
	assert_int_equal(c->get_token(c, ARM_SCOPE, mono_now() - 1, &tok, &err), DBX_ETIMEDOUT);
	assert_int_equal(access(in_dir("az.log"), F_OK), -1);
	dbx_credential_destroy(c);
}

enum answer_source { ENTRA, IMDS_SRC, APP_SERVICE, AZ_CLI };

/* One token answer, as source src would get it, parsed by that source. */
static enum dbx_err answer_from(enum answer_source src, const char *body, struct dbx_token *tok,
				struct dbx_error *err)
{
	struct fake_reply script[2] = {{.status = 400, .body = "{\"error\":\"bad_request_102\"}"},
				       {.status = 200, .body = body}};
	struct rec_transport *t = NULL;
	struct dbx_credential *c = NULL;
	enum dbx_err rc;

	dbx_error_clear(err);
	switch (src) {
	case ENTRA:
		t = rec_new(script + 1, 1);
		c = dbx_cred_env_secret_new(&t->base, NULL,
					    ENV({"AZURE_TENANT_ID", TENANT},
						{"AZURE_CLIENT_ID", CLIENT},
						{"AZURE_CLIENT_SECRET", CLIENT_SECRET}),
					    &pinned_clock, err);
		break;
	case IMDS_SRC:
		t = rec_new(script, 2);
		c = dbx_cred_msi_new(&t->base, NULL, ENV({"X", "y"}), &pinned_clock, err);
		break;
	case APP_SERVICE:
		t = rec_new(script + 1, 1);
		c = dbx_cred_msi_new(&t->base, NULL, APP_ENV("http://127.0.0.1:41741/MSI/token/"),
				     &pinned_clock, err);
		break;
	case AZ_CLI:
		c = cli_new(CLI_ENV({"X", "y"}));
		cli_base_env("body");
		write_file(in_dir("az.body"), body);
		break;
	}
	assert_non_null(c);
	rc = c->get_token(c, ARM_SCOPE, 0, tok, err);
	dbx_credential_destroy(c);
	if (t)
		rec_free(t);
	return rc;
}

#define BAD_TOKEN(src, f) src ": malformed token answer: " f " is not a non-empty string"
#define BAD_NUM(src, f)	  src ": malformed token answer: " f " is not a whole number"
#define BAD_DIGITS(src, f)                                                                         \
	src ": malformed token answer: " f " is not a whole number or a string of digits"
#define DUP(src) src ": malformed token answer: a key appears more than once"
#define BAD_CHARS(src, f)                                                                          \
	src ": malformed token answer: " f " holds characters no bearer token has (RFC 6750)"

/*
 * Each field a source reads, with the types it accepts and a table of
 * wrong ones: a wrong type is a malformed answer naming the field (never
 * read as absent, never a token), null is absent, a key twice is
 * malformed. expires: the expiry a good answer gives (0: not checked here).
 */
static void test_token_answer_types_per_source(void **state)
{
	static const struct {
		enum answer_source src;
		const char *body;
		const char *msg; /* NULL: accepted */
		time_t expires;
	} rows[] = {
	    /* Entra v2.0 (client secret, certificate, workload identity): expires_in a number. */
	    {ENTRA, "{\"access_token\":\"tok-e\",\"expires_in\":3600}", NULL, NOW + 3600},
	    {ENTRA, "{\"access_token\":\"tok-e\",\"expires_in\":3600.0}", NULL, NOW + 3600},
	    {ENTRA, "{\"access_token\":\"tok-e\",\"note\":\"a\\\":b\",\"expires_in\":60}", NULL,
	     NOW + 60},
	    {ENTRA, "{\"access_token\":5,\"expires_in\":3600}", BAD_TOKEN("env", "access_token"),
	     0},
	    {ENTRA, "{\"access_token\":\"\",\"expires_in\":3600}", BAD_TOKEN("env", "access_token"),
	     0},
	    {ENTRA, "{\"access_token\":[\"x\"],\"expires_in\":3600}",
	     BAD_TOKEN("env", "access_token"), 0},
	    {ENTRA, "{\"access_token\":{},\"expires_in\":3600}", BAD_TOKEN("env", "access_token"),
	     0},
	    {ENTRA, "{\"access_token\":true,\"expires_in\":3600}", BAD_TOKEN("env", "access_token"),
	     0},
	    {ENTRA, "{\"access_token\":\"tok-e\\r\\nX-Evil: 1\",\"expires_in\":3600}",
	     BAD_CHARS("env", "access_token"), 0},
	    {ENTRA, "{\"access_token\":\"tok-e\\u0000x\",\"expires_in\":3600}",
	     BAD_CHARS("env", "access_token"), 0},
	    {ENTRA, "{\"access_token\":\"tok e\",\"expires_in\":3600}",
	     BAD_CHARS("env", "access_token"), 0},
	    {ENTRA, "{\"access_token\":\"==\",\"expires_in\":3600}",
	     BAD_CHARS("env", "access_token"), 0},
	    {ENTRA, "{\"access_token\":\"eyJ0.e-y_J~+/x==\",\"expires_in\":3600}", NULL,
	     NOW + 3600},
	    {ENTRA, "{\"access_token\":null,\"expires_in\":3600}",
	     "env: the token answer has no access_token", 0},
	    {ENTRA, "{\"expires_in\":3600}", "env: the token answer has no access_token", 0},
	    {ENTRA, "{\"access_token\":\"tok-e\",\"expires_in\":\"3600\"}",
	     BAD_NUM("env", "expires_in"), 0},
	    {ENTRA, "{\"access_token\":\"tok-e\",\"expires_in\":true}",
	     BAD_NUM("env", "expires_in"), 0},
	    {ENTRA, "{\"access_token\":\"tok-e\",\"expires_in\":-1}", BAD_NUM("env", "expires_in"),
	     0},
	    {ENTRA, "{\"access_token\":\"tok-e\",\"expires_in\":3599.5}",
	     BAD_NUM("env", "expires_in"), 0},
	    {ENTRA, "{\"access_token\":\"tok-e\",\"expires_in\":{}}", BAD_NUM("env", "expires_in"),
	     0},
	    {ENTRA, "{\"access_token\":\"tok-e\",\"expires_in\":[3600]}",
	     BAD_NUM("env", "expires_in"), 0},
	    {ENTRA, "{\"access_token\":\"tok-e\",\"expires_in\":null}",
	     "env: the token answer has no valid expiry (expires_in)", 0},
	    {ENTRA, "{\"access_token\":\"tok-e\",\"access_token\":\"tok-f\",\"expires_in\":3600}",
	     DUP("env"), 0},
	    {ENTRA, "{\"access_token\":\"tok-e\",\"expires_in\":3600,\"expires_in\":3600}",
	     DUP("env"), 0},
	    {ENTRA, "{\"access_token\":\"tok-e\",\"expires_in\":3600,\"expires\\u005fin\":1}",
	     DUP("env"), 0},
	    {ENTRA, "{\"access_token\":\"tok-e\",\"expires_in\":3600,\"x\":{\"a\":1,\"a\":2}}",
	     DUP("env"), 0},
	    {ENTRA, "{\"access_token\":\"tok-e\",\"expires_in\":3600} {}",
	     "env: the token answer is not a JSON object", 0},
	    {ENTRA, "{'access_token':\"tok-e\",\"expires_in\":3600}",
	     "env: the token answer is not a JSON object", 0},
	    {ENTRA, "{\"access_token\":\"tok-e\",\"expires_in\":3600,}",
	     "env: the token answer is not a JSON object", 0},
	    {ENTRA, "{\"access_token\":\"tok-e\",/* x */\"expires_in\":3600}",
	     "env: the token answer is not a JSON object", 0},
	    {ENTRA, "[{\"access_token\":\"tok-e\",\"expires_in\":3600}]",
	     "env: the token answer is not a JSON object", 0},
	    /* IMDS: numbers as strings of digits, or numbers; expires_on first. */
	    {IMDS_SRC,
	     "{\"access_token\":\"tok-i\",\"expires_on\":\"1700003600\",\"expires_in\":"
	     "\"86399\"}",
	     NULL, 1700003600},
	    {IMDS_SRC, "{\"access_token\":\"tok-i\",\"expires_on\":1700003600}", NULL, 1700003600},
	    {IMDS_SRC, "{\"access_token\":\"tok-i\",\"expires_on\":null,\"expires_in\":\"600\"}",
	     NULL, NOW + 600},
	    {IMDS_SRC, "{\"access_token\":\"tok-i\",\"expires_on\":\"17e8\"}",
	     BAD_DIGITS("msi", "expires_on"), 0},
	    {IMDS_SRC, "{\"access_token\":\"tok-i\",\"expires_on\":\"\"}",
	     BAD_DIGITS("msi", "expires_on"), 0},
	    {IMDS_SRC, "{\"access_token\":\"tok-i\",\"expires_on\":\" 1700003600\"}",
	     BAD_DIGITS("msi", "expires_on"), 0},
	    {IMDS_SRC, "{\"access_token\":\"tok-i\",\"expires_on\":\"-1\"}",
	     BAD_DIGITS("msi", "expires_on"), 0},
	    {IMDS_SRC, "{\"access_token\":\"tok-i\",\"expires_on\":\"1700003600\\u0000\"}",
	     BAD_DIGITS("msi", "expires_on"), 0},
	    {IMDS_SRC, "{\"access_token\":\"tok-i\",\"expires_on\":true}",
	     BAD_DIGITS("msi", "expires_on"), 0},
	    {IMDS_SRC, "{\"access_token\":\"tok-i\",\"expires_on\":1.5}",
	     BAD_DIGITS("msi", "expires_on"), 0},
	    {IMDS_SRC,
	     "{\"access_token\":\"tok-i\",\"expires_on\":\"1700003600\",\"expires_in\":[]}",
	     BAD_DIGITS("msi", "expires_in"), 0},
	    {IMDS_SRC, "{\"access_token\":7,\"expires_on\":\"1700003600\"}",
	     BAD_TOKEN("msi", "access_token"), 0},
	    {IMDS_SRC, "{\"access_token\":\"tok-i\"}",
	     "msi: the token answer has no valid expiry (expires_on or expires_in)", 0},
	    {IMDS_SRC,
	     "{\"access_token\":\"tok-i\",\"expires_on\":\"1700003600\",\"access_token\":"
	     "\"tok-j\"}",
	     DUP("msi"), 0},
	    /* App Service 2019-08-01: expires_on unix time (its 2017 dates are not asked for). */
	    {APP_SERVICE, "{\"access_token\":\"tok-a\",\"expires_on\":\"1700007200\"}", NULL,
	     1700007200},
	    {APP_SERVICE,
	     "{\"access_token\":\"tok-a\",\"expires_on\":\"06/20/2019 02:57:58 +00:00\"}",
	     BAD_DIGITS("msi", "expires_on"), 0},
	    {APP_SERVICE, "{\"access_token\":false,\"expires_on\":\"1700007200\"}",
	     BAD_TOKEN("msi", "access_token"), 0},
	    {APP_SERVICE, "{\"access_token\":\"tok-a\",\"expires_on\":{\"s\":1}}",
	     BAD_DIGITS("msi", "expires_on"), 0},
	    /* az: expires_on (a number) preferred, else expiresOn (naive local time). */
	    {AZ_CLI,
	     "{\"accessToken\":\"tok-c\",\"expires_on\":1700009999,\"expiresOn\":"
	     "\"2023-11-15 01:06:39.000000\"}",
	     NULL, 1700009999},
	    {AZ_CLI, "{\"accessToken\":\"tok-c\",\"expires_on\":1700009999,\"expiresOn\":5}", NULL,
	     1700009999},
	    {AZ_CLI,
	     "{\"accessToken\":\"tok-c\",\"expires_on\":null,\"expiresOn\":\"2030-01-02 "
	     "03:04:05.123456\"}",
	     NULL, 0},
	    {AZ_CLI, "{\"accessToken\":\"tok-c\",\"expiresOn\":\"2030-01-02 03:04:05\"}", NULL, 0},
	    {AZ_CLI, "{\"accessToken\":\"tok-c\",\"expires_on\":\"1700009999\"}",
	     BAD_NUM("cli", "expires_on"), 0},
	    {AZ_CLI, "{\"accessToken\":\"tok-c\",\"expires_on\":false}",
	     BAD_NUM("cli", "expires_on"), 0},
	    {AZ_CLI, "{\"accessToken\":\"tok-c\",\"expiresOn\":5}",
	     "cli: malformed token answer: expiresOn is not a date and time", 0},
	    {AZ_CLI, "{\"accessToken\":\"tok-c\",\"expiresOn\":\"soon\"}",
	     "cli: malformed token answer: expiresOn is not a date and time", 0},
	    {AZ_CLI, "{\"accessToken\":\"tok-c\",\"expiresOn\":\"2030-01-02 03:04:05.x\"}",
	     "cli: malformed token answer: expiresOn is not a date and time", 0},
	    {AZ_CLI, "{\"accessToken\":\"tok-c\",\"expiresOn\":null}",
	     "cli: the token answer has no valid expiry (expires_on or expiresOn)", 0},
	    {AZ_CLI, "{\"accessToken\":5,\"expires_on\":1700009999}",
	     BAD_TOKEN("cli", "accessToken"), 0},
	    {AZ_CLI, "{\"accessToken\":null,\"expires_on\":1700009999}",
	     "cli: the token answer has no accessToken", 0},
	    {AZ_CLI,
	     "{\"accessToken\":\"tok-c\",\"expires_on\":1700009999,\"accessToken\":\"tok-d\"}",
	     DUP("cli"), 0},
	};

	(void)state;
	for (size_t i = 0; i < N(rows); i++) {
		struct dbx_token tok = {0};
		struct dbx_error err = {0};
		enum dbx_err rc = answer_from(rows[i].src, rows[i].body, &tok, &err);

		if (!rows[i].msg) {
			if (rc != DBX_OK)
				fail_msg("row %zu (%s): refused: %s", i, rows[i].body, err.message);
			assert_non_null(tok.value);
			assert_true(strncmp(tok.value, "tok-", 4) == 0 ||
				    strncmp(tok.value, "eyJ", 3) == 0);
			if (rows[i].expires)
				assert_int_equal(tok.expires_on, rows[i].expires);
			else
				assert_true(tok.expires_on > NOW);
			dbx_token_wipe(&tok);
			continue;
		}
		if (rc != DBX_EAUTH || strcmp(err.message, rows[i].msg) != 0)
			fail_msg("row %zu (%s): rc %d, message '%s', expected '%s'", i,
				 rows[i].body, rc, err.message, rows[i].msg);
		assert_null(tok.value);
		assert_clean(err.message);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_base64url_vectors, test_setup, test_teardown),
	    cmocka_unit_test_setup_teardown(test_grant_body, test_setup, test_teardown),
	    cmocka_unit_test_setup_teardown(test_first_line, test_setup, test_teardown),
	    cmocka_unit_test_setup_teardown(test_cert_signs_a_verifiable_assertion, test_setup,
					    test_teardown),
	    cmocka_unit_test_setup_teardown(test_cert_key_before_cert_and_authority_host,
					    test_setup, test_teardown),
	    cmocka_unit_test_setup_teardown(test_cert_refuses_a_key_of_another_certificate,
					    test_setup, test_teardown),
	    cmocka_unit_test_setup_teardown(test_cert_encrypted_key, test_setup, test_teardown),
	    cmocka_unit_test_setup_teardown(test_cert_configuration_errors, test_setup,
					    test_teardown),
	    cmocka_unit_test_setup_teardown(test_cert_entra_refusal, test_setup, test_teardown),
	    cmocka_unit_test_setup_teardown(test_workload_sends_the_file_and_rereads_it, test_setup,
					    test_teardown),
	    cmocka_unit_test_setup_teardown(test_workload_file_errors, test_setup, test_teardown),
	    cmocka_unit_test_setup_teardown(test_workload_refusal_never_quotes_the_token,
					    test_setup, test_teardown),
	    cmocka_unit_test_setup_teardown(test_msi_imds, test_setup, test_teardown),
	    cmocka_unit_test_setup_teardown(test_msi_imds_user_assigned_and_errors, test_setup,
					    test_teardown),
	    cmocka_unit_test_setup_teardown(test_msi_no_identity_and_no_imds, test_setup,
					    test_teardown),
	    cmocka_unit_test_setup_teardown(test_msi_app_service, test_setup, test_teardown),
	    cmocka_unit_test_setup_teardown(test_msi_app_service_over_curl, test_setup,
					    test_teardown),
	    cmocka_unit_test_setup_teardown(test_msi_never_through_a_proxy, test_setup,
					    test_teardown),
	    cmocka_unit_test_setup_teardown(test_msi_refuses_unsafe_endpoints, test_setup,
					    test_teardown),
	    cmocka_unit_test_setup_teardown(test_cli_argv_environment_and_token, test_setup,
					    test_teardown),
	    cmocka_unit_test_setup_teardown(test_cli_not_installed_and_not_logged_in, test_setup,
					    test_teardown),
	    cmocka_unit_test_setup_teardown(test_sources_end_at_the_callers_deadline, test_setup,
					    test_teardown),
	    cmocka_unit_test_setup_teardown(test_cli_killed_at_the_callers_deadline, test_setup,
					    test_teardown),
	    cmocka_unit_test_setup_teardown(test_token_answer_types_per_source, test_setup,
					    test_teardown),
	    cmocka_unit_test_setup_teardown(test_cli_timeout_kills_the_process_group, test_setup,
					    test_teardown),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
