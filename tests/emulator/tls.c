/*
 * tls.c: the emulator's throw-away PKI, made in memory with OpenSSL.
 *
 * At start the emulator makes a CA (EC P-256, basicConstraints CA:TRUE
 * critical, keyUsage keyCertSign+cRLSign, SKID) and a server certificate it
 * signs (AKID, SKID, serverAuth, SANs for every Azure host name the
 * emulator answers for, plus localhost and 127.0.0.1). Only the CA
 * certificate is written to disk (for clients to trust); the server key
 * and certificate go to libmicrohttpd as PEM strings.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "emu.h"

static const char *const server_sans =
    "DNS:management.azure.com,DNS:management.usgovcloudapi.net,"
    "DNS:management.chinacloudapi.cn,DNS:login.microsoftonline.com,"
    "DNS:login.microsoftonline.us,DNS:login.chinacloudapi.cn,"
    "DNS:*.vault.azure.net,DNS:*.vault.usgovcloudapi.net,DNS:*.vault.azure.cn,"
    "DNS:localhost,IP:127.0.0.1";

static EVP_PKEY *make_key(void)
{
	return EVP_EC_gen("P-256");
}

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	int rc = -1;

	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (!ext)
		goto out;
	if (!X509_add_ext(cert, ext, -1))
		goto out;
	rc = 0;
out:
	X509_EXTENSION_free(ext);
	return rc;
}

static X509 *make_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key, bool ca)
{
	X509 *cert = X509_new();
	X509_NAME *name;
	unsigned char serial[16];
	BIGNUM *bn = NULL;
	bool ok = false;

	if (!cert)
		return NULL;
	if (RAND_bytes(serial, sizeof(serial)) != 1)
		goto out;
	serial[0] &= 0x7f;
	bn = BN_bin2bn(serial, sizeof(serial), NULL);
	if (!bn || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)))
		goto out;
	X509_set_version(cert, 2);
	X509_gmtime_adj(X509_getm_notBefore(cert), -86400L);
	X509_gmtime_adj(X509_getm_notAfter(cert), 86400L * 365);
	X509_set_pubkey(cert, key);
	name = X509_get_subject_name(cert);
	X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
				   (const unsigned char *)"databox-emulator", -1, -1, 0);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(cert, issuer ? X509_get_subject_name(issuer) : name);

	if (add_ext(cert, issuer ? issuer : cert, NID_subject_key_identifier, "hash"))
		goto out;
	if (ca) {
		if (add_ext(cert, cert, NID_basic_constraints, "critical,CA:TRUE") ||
		    add_ext(cert, cert, NID_key_usage, "critical,keyCertSign,cRLSign"))
			goto out;
	} else {
		if (add_ext(cert, issuer, NID_authority_key_identifier, "keyid:always") ||
		    add_ext(cert, issuer, NID_basic_constraints, "critical,CA:FALSE") ||
		    add_ext(cert, issuer, NID_key_usage, "critical,digitalSignature") ||
		    add_ext(cert, issuer, NID_ext_key_usage, "serverAuth") ||
		    add_ext(cert, issuer, NID_subject_alt_name, server_sans))
			goto out;
	}
	if (!X509_sign(cert, issuer_key, EVP_sha256()))
		goto out;
	ok = true;
out:
	BN_free(bn);
	if (!ok) {
		X509_free(cert);
		cert = NULL;
	}
	return cert;
}

static char *bio_string(BIO *bio)
{
	char *data;
	long len = BIO_get_mem_data(bio, &data);
	char *s = malloc((size_t)len + 1);

	if (!s)
		return NULL;
	memcpy(s, data, (size_t)len);
	s[len] = '\0';
	return s;
}

/*
 * Make the CA and the server certificate; write the CA to cafile.
 * On success *cert_pem and *key_pem are malloc'd PEM strings (caller frees).
 * Returns 0 or -1.
 */
int dbx_emu_tls_make(const char *cafile, char **cert_pem, char **key_pem)
{
	EVP_PKEY *ca_key = NULL, *srv_key = NULL;
	X509 *ca = NULL, *srv = NULL;
	BIO *bio = NULL;
	FILE *f = NULL;
	int rc = -1;

	*cert_pem = *key_pem = NULL;
	ca_key = make_key();
	srv_key = make_key();
	if (!ca_key || !srv_key)
		goto out;
	ca = make_cert(ca_key, "databox-emulator test CA", NULL, ca_key, true);
	if (!ca)
		goto out;
	srv = make_cert(srv_key, "management.azure.com", ca, ca_key, false);
	if (!srv)
		goto out;

	f = fopen(cafile, "w");
	if (!f || !PEM_write_X509(f, ca))
		goto out;
	if (fclose(f)) {
		f = NULL;
		goto out;
	}
	f = NULL;

	bio = BIO_new(BIO_s_mem());
	if (!bio || !PEM_write_bio_X509(bio, srv))
		goto out;
	*cert_pem = bio_string(bio);
	BIO_free(bio);
	bio = BIO_new(BIO_s_mem());
	if (!bio || !PEM_write_bio_PrivateKey(bio, srv_key, NULL, NULL, 0, NULL, NULL))
		goto out;
	*key_pem = bio_string(bio);
	if (!*cert_pem || !*key_pem)
		goto out;
	rc = 0;
out:
	if (f)
		fclose(f);
	BIO_free(bio);
	X509_free(ca);
	X509_free(srv);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(srv_key);
	if (rc) {
		free(*cert_pem);
		free(*key_pem);
		*cert_pem = *key_pem = NULL;
	}
	return rc;
}
