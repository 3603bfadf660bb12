/*
 * cred/cert.c: the environment client-certificate credential (docs/architecture.md, "Credentials",
 * first source, after the secret; docs/azure.md, "Credential sources").
 *
 * AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_CERTIFICATE_PATH name
 * an app registration and a PEM file holding its certificate and private
 * key (the key possibly encrypted with AZURE_CLIENT_CERTIFICATE_PASSWORD).
 * Construction loads both with OpenSSL, refuses a key that does not belong
 * to the certificate, and keeps the key in memory only (the PEM bytes are
 * wiped once parsed). Each token request signs a fresh RS256 JWT client
 * assertion, as MSAL's JwtAssertionCreator does:
 *   header  {"alg":"RS256","typ":"JWT","x5t":base64url(SHA-1 of the cert DER)}
 *   payload {"aud":<token URL>,"iss":<client id>,"sub":<client id>,
 *            "jti":<uuid4>,"nbf":now,"iat":now,"exp":now+600}
 * and posts it in the jwt-bearer grant of cred/common.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "cred/common.h"

#define CERT_FILE_MAX	     (1024 * 1024) /* a PEM with a chain is a few KiB */
#define ASSERTION_LIFETIME_S 600

struct cert_cred {
	struct dbx_credential base;
	struct dbx_transport *transport; /* borrowed */
	const struct dbx_clock *clock;
	pthread_mutex_t lock; /* serialises signing with key */
	EVP_PKEY *key;
	char *client_id;
	char *token_url;
	char *authority; /* host[:port], for messages */
	char *x5t;	 /* base64url SHA-1 thumbprint of the certificate */
};

/*
 * Read the whole file at path into a NUL-terminated buffer (*len bytes);
 * the caller wipes and frees it. errno is set when NULL is returned.
 */
static char *read_pem(const char *path, size_t *len)
{
	struct stat st;
	char *buf = NULL;
	size_t got = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) != 0)
		goto fail;
	if (!S_ISREG(st.st_mode) || st.st_size > CERT_FILE_MAX) {
		errno = S_ISREG(st.st_mode) ? EFBIG : EINVAL;
		goto fail;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf)
		goto fail;
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	buf[got] = '\0';
	*len = got;
	close(fd);
	return buf;
fail:
	if (buf) {
		explicit_bzero(buf, (size_t)st.st_size);
		free(buf);
	}
	close(fd);
	return NULL;
}

struct password_ctx {
	const char *password; /* NULL: none configured */
	bool asked;	      /* OpenSSL needed a password: the key is encrypted */
};

/* OpenSSL's pem_password_cb: hand over the configured password, never prompt. */
static int password_cb(char *buf, int size, int rwflag, void *u)
{
	struct password_ctx *pc = u;
	size_t len;

	(void)rwflag;
	pc->asked = true;
	if (!pc->password || size <= 0)
		return -1;
	len = strlen(pc->password);
	if (len > (size_t)size)
		return -1;
	memcpy(buf, pc->password, len);
	return (int)len;
}

/*
 * Load the certificate and its private key from the PEM at path into
 * c->key and c->x5t; the file's bytes are wiped before this returns.
 */
static enum dbx_err load_pem(struct cert_cred *c, const char *path, const char *password,
			     struct dbx_error *err)
{
	struct password_ctx pc = {.password = password};
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int md_len = 0;
	X509 *cert = NULL;
	BIO *bio = NULL;
	size_t len = 0;
	char *pem = read_pem(path, &len);
	enum dbx_err rc = DBX_OK;

	if (!pem) {
		rc = dbx_error_set(err, errno == ENOMEM ? DBX_ENOMEM : DBX_ECONFIG,
				   "cert: cannot read AZURE_CLIENT_CERTIFICATE_PATH %s: %s", path,
				   strerror(errno));
		goto out;
	}
	bio = BIO_new_mem_buf(pem, (int)len);
	if (!bio) {
		rc = dbx_error_set(err, DBX_ENOMEM, "out of memory");
		goto out;
	}
	cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	if (!cert) {
		rc = dbx_error_set(err, DBX_ECONFIG,
				   "cert: no PEM certificate in %s (PKCS#12 files need converting: "
				   "openssl pkcs12 -nodes)",
				   path);
		goto out;
	}
	BIO_free(bio);
	bio = BIO_new_mem_buf(pem, (int)len);
	if (!bio) {
		rc = dbx_error_set(err, DBX_ENOMEM, "out of memory");
		goto out;
	}
	c->key = PEM_read_bio_PrivateKey(bio, NULL, password_cb, &pc);
	if (!c->key) {
		if (pc.asked && password)
			rc = dbx_error_set(err, DBX_ECONFIG,
					   "cert: cannot decrypt the private key in %s: wrong "
					   "AZURE_CLIENT_CERTIFICATE_PASSWORD",
					   path);
		else if (pc.asked)
			rc = dbx_error_set(err, DBX_ECONFIG,
					   "cert: the private key in %s is encrypted; set "
					   "AZURE_CLIENT_CERTIFICATE_PASSWORD",
					   path);
		else
			rc =
			    dbx_error_set(err, DBX_ECONFIG, "cert: no PEM private key in %s", path);
		goto out;
	}
	if (!EVP_PKEY_is_a(c->key, "RSA")) {
		rc = dbx_error_set(
		    err, DBX_ECONFIG,
		    "cert: the private key in %s is not an RSA key (RS256 needs RSA)", path);
		goto out;
	}
	if (X509_check_private_key(cert, c->key) != 1) {
		rc = dbx_error_set(err, DBX_ECONFIG,
				   "cert: the private key in %s does not match its certificate",
				   path);
		goto out;
	}
	if (X509_digest(cert, EVP_sha1(), md, &md_len) != 1) {
		rc = dbx_error_set(err, DBX_ENOMEM, "out of memory");
		goto out;
	}
	c->x5t = dbx_base64url(md, md_len);
	if (!c->x5t)
		rc = dbx_error_set(err, DBX_ENOMEM, "out of memory");
out:
	ERR_clear_error(); /* leave no failure (nor key material) on this thread's queue */
	BIO_free(bio);
	X509_free(cert);
	if (pem) {
		explicit_bzero(pem, len);
		free(pem);
	}
	return rc;
}

/* base64url of a JSON object's compact text; caller frees. */
static char *encode_json(json_object *obj)
{
	const char *s = json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN |
								JSON_C_TO_STRING_NOSLASHESCAPE);

	return s ? dbx_base64url(s, strlen(s)) : NULL;
}

/* The signed assertion "header.payload.signature" for now, or NULL on ENOMEM / signing failure. */
static char *make_assertion(struct cert_cred *c, time_t now)
{
	char jti[DBX_HTTP_UUID_LEN + 1];
	json_object *header = json_object_new_object();
	json_object *payload = json_object_new_object();
	EVP_MD_CTX *md = NULL;
	unsigned char *sig = NULL;
	size_t sig_len = 0;
	char *h64 = NULL;
	char *p64 = NULL;
	char *s64 = NULL;
	char *input = NULL;
	char *jwt = NULL;

	dbx_uuid4(jti);
	if (!header || !payload)
		goto out;
	json_object_object_add(header, "alg", json_object_new_string("RS256"));
	json_object_object_add(header, "typ", json_object_new_string("JWT"));
	json_object_object_add(header, "x5t", json_object_new_string(c->x5t));
	json_object_object_add(payload, "aud", json_object_new_string(c->token_url));
	json_object_object_add(payload, "iss", json_object_new_string(c->client_id));
	json_object_object_add(payload, "sub", json_object_new_string(c->client_id));
	json_object_object_add(payload, "jti", json_object_new_string(jti));
	json_object_object_add(payload, "nbf", json_object_new_int64((int64_t)now));
	json_object_object_add(payload, "iat", json_object_new_int64((int64_t)now));
	json_object_object_add(payload, "exp",
			       json_object_new_int64((int64_t)now + ASSERTION_LIFETIME_S));
	h64 = encode_json(header);
	p64 = encode_json(payload);
	if (!h64 || !p64 || asprintf(&input, "%s.%s", h64, p64) < 0) {
		input = NULL;
		goto out;
	}

	pthread_mutex_lock(&c->lock);
	md = EVP_MD_CTX_new();
	if (md && EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, c->key) == 1 &&
	    EVP_DigestSign(md, NULL, &sig_len, (const unsigned char *)input, strlen(input)) == 1) {
		sig = malloc(sig_len);
		if (sig && EVP_DigestSign(md, sig, &sig_len, (const unsigned char *)input,
					  strlen(input)) != 1) {
			free(sig);
			sig = NULL;
		}
	}
	EVP_MD_CTX_free(md);
	ERR_clear_error();
	pthread_mutex_unlock(&c->lock);
	if (!sig)
		goto out;
	s64 = dbx_base64url(sig, sig_len);
	if (s64 && asprintf(&jwt, "%s.%s", input, s64) < 0)
		jwt = NULL;
out:
	json_object_put(header);
	json_object_put(payload);
	free(sig);
	free(h64);
	free(p64);
	free(s64);
	free(input);
	return jwt;
}

static enum dbx_err cert_get_token(struct dbx_credential *self, const char *scope,
				   uint64_t deadline_ms, struct dbx_token *out,
				   struct dbx_error *err)
{
	struct cert_cred *c = (struct cert_cred *)self;
	char *assertion = make_assertion(c, dbx_clock_wall(c->clock));
	enum dbx_err rc;

	out->value = NULL;
	out->expires_on = 0;
	if (!assertion)
		return dbx_error_set(err, DBX_EAUTH, "cert: signing the client assertion failed");
	rc = dbx_cred_assertion_grant("cert", c->transport, c->clock, deadline_ms, c->token_url,
				      c->authority, c->client_id, assertion, scope, out, err);
	dbx_wipe_free(assertion);
	return rc;
}

static void cert_destroy(struct dbx_credential *self)
{
	struct cert_cred *c = (struct cert_cred *)self;

	EVP_PKEY_free(c->key); /* OpenSSL clears the key's private parts */
	free(c->client_id);
	free(c->token_url);
	free(c->authority);
	free(c->x5t);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

struct dbx_credential *dbx_cred_env_cert_new(struct dbx_transport *transport,
					     const struct dbx_cloud *cloud,
					     const struct dbx_env *env,
					     const struct dbx_clock *clock, struct dbx_error *err)
{
	static const char *const required[] = {"AZURE_TENANT_ID", "AZURE_CLIENT_ID",
					       "AZURE_CLIENT_CERTIFICATE_PATH"};
	struct cert_cred *c = NULL;
	const char *vals[3];

	if (!cloud)
		cloud = dbx_cloud_default();
	if (!env)
		env = dbx_env_process();
	if (!dbx_cred_require("cert", env, required, 3, vals, err))
		return NULL;

	c = calloc(1, sizeof(*c));
	if (!c) {
		dbx_error_set(err, DBX_ENOMEM, "out of memory");
		return NULL;
	}
	c->base.name = "cert";
	c->base.get_token = cert_get_token;
	c->base.destroy = cert_destroy;
	c->transport = transport;
	c->clock = clock ? clock : dbx_clock_system();
	pthread_mutex_init(&c->lock, NULL);
	c->client_id = strdup(vals[1]);
	if (!c->client_id) {
		dbx_error_set(err, DBX_ENOMEM, "out of memory");
		goto fail;
	}
	if (dbx_cred_token_endpoint("cert", cloud, env, vals[0], &c->token_url, &c->authority,
				    err) != DBX_OK)
		goto fail;
	if (load_pem(c, vals[2], dbx_cred_env_get(env, "AZURE_CLIENT_CERTIFICATE_PASSWORD"), err) !=
	    DBX_OK)
		goto fail;
	return &c->base;
fail:
	cert_destroy(&c->base);
	return NULL;
}
