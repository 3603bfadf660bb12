/*
 * http/http.c: small shared pieces of the HTTP pipeline (http.h) that are not
 * libcurl: random bytes and the UUIDs for x-ms-client-request-id made from
 * them, URL escaping, and the generic helpers every layer uses
 * (dbx_http_send, response reset). The production clock is http/clock.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <openssl/rand.h>

#include "databoxfs/http.h"
#include "http/random.h"

void dbx_random_bytes(void *buf, size_t len)
{
	unsigned char *p = buf;
	size_t got = 0;

	while (got < len) {
		ssize_t n = getrandom(p + got, len - got, 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		got += (size_t)n;
	}
	if (got < len && RAND_bytes(p + got, (int)(len - got)) != 1)
		abort(); /* no randomness at all: nothing safe to do */
}

void dbx_uuid4(char out[DBX_HTTP_UUID_LEN + 1])
{
	unsigned char b[16];

	dbx_random_bytes(b, sizeof(b));
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* variant 10xx (RFC 4122) */
	snprintf(out, DBX_HTTP_UUID_LEN + 1,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
		 b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
		 b[15]);
}

static bool is_unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~';
}

char *dbx_url_escape(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t len = strlen(s);
	char *out = malloc(len * 3 + 1);
	char *o = out;

	if (!out)
		return NULL;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (is_unreserved(*p)) {
			*o++ = (char)*p;
		} else {
			*o++ = '%';
			*o++ = hex[*p >> 4];
			*o++ = hex[*p & 0x0f];
		}
	}
	*o = '\0';
	return out;
}

enum dbx_err dbx_http_send(struct dbx_transport *t, const struct dbx_http_request *req,
			   struct dbx_http_response *resp, struct dbx_error *err)
{
	return t->send(t, req, resp, err);
}

void dbx_transport_destroy(struct dbx_transport *t)
{
	if (t && t->destroy)
		t->destroy(t);
}

void dbx_http_response_reset(struct dbx_http_response *resp)
{
	if (!resp)
		return;
	free(resp->body);
	free(resp->location);
	free(resp->retry_after);
	free(resp->retry_after_ms);
	free(resp->request_id);
	free(resp->correlation_id);
	free(resp->www_authenticate);
	memset(resp, 0, sizeof(*resp));
}
