/*
 * fuzz_script.c: the scripted transport of fuzz_script.h, and the checks
 * the fuzz targets share.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_script.h"

void fuzz_must(int cond, const char *target, const char *what)
{
	if (!cond) {
		fprintf(stderr, "%s: property broken: %s\n", target, what);
		abort();
	}
}

static void one_line(const char *s, const char *target, const char *what)
{
	for (; *s; s++)
		fuzz_must(*s != '\n' && *s != '\r', target, what);
}

void fuzz_check_error(const struct dbx_error *e, const char *target)
{
	fuzz_must(e->message[0] != '\0', target, "a failure has a message");
	one_line(e->message, target, "the message is one line");
	one_line(e->code, target, "the code is one line");
	one_line(e->request_id, target, "the request id is one line");
}

void fuzz_split_op(const uint8_t *data, size_t size, char *op, size_t cap, const uint8_t **rest,
		   size_t *rest_len)
{
	const uint8_t *nl = memchr(data, '\n', size);
	size_t n = nl ? (size_t)(nl - data) : size;

	snprintf(op, cap, "%.*s", (int)(n < cap ? n : cap - 1), (const char *)data);
	op[strcspn(op, "\r")] = '\0';
	*rest = nl ? nl + 1 : data + size;
	*rest_len = size - (size_t)(*rest - data);
}

static char *dup_n(const char *s, size_t n)
{
	char *d = malloc(n + 1);

	if (!d)
		abort();
	if (n)
		memcpy(d, s, n);
	d[n] = '\0';
	return d;
}

/*
 * Header value as the curl transport hands it over (http.h): after the
 * colon, blanks skipped, trailing CR dropped, every other control byte a
 * space.
 */
static char *header_value(const char *line, size_t len, size_t name_len)
{
	const char *v = line + name_len + 1;
	size_t n = len - name_len - 1;
	char *d;

	while (n && (*v == ' ' || *v == '\t')) {
		v++;
		n--;
	}
	while (n && v[n - 1] == '\r')
		n--;
	d = dup_n(v, n);
	for (size_t i = 0; i < n; i++) {
		if ((unsigned char)d[i] < 0x20 || d[i] == 0x7f)
			d[i] = ' ';
	}
	return d;
}

static void set_header(char **slot, const char *line, size_t len, size_t name_len)
{
	free(*slot);
	*slot = header_value(line, len, name_len);
}

static void parse_answer(struct fuzz_answer *a, const char *p, size_t len)
{
	const char *end = p + len;
	const char *nl = memchr(p, '\n', len);
	size_t first = nl ? (size_t)(nl - p) : len;
	char status[16];

	snprintf(status, sizeof(status), "%.*s", (int)(first < 15 ? first : 15), p);
	if (status[0] == '!') {
		if (strncmp(status, "!unreachable", 12) == 0)
			a->transport_err = DBX_EUNREACHABLE;
		else if (strncmp(status, "!timeout", 8) == 0)
			a->transport_err = DBX_ETIMEDOUT;
		else
			a->transport_err = DBX_EREMOTE;
	} else {
		a->status = strtol(status, NULL, 10);
	}
	p = nl ? nl + 1 : end;
	/* Header lines up to an empty one. */
	while (p < end) {
		const char *lend = memchr(p, '\n', (size_t)(end - p));
		size_t ll = lend ? (size_t)(lend - p) : (size_t)(end - p);
		const char *colon = memchr(p, ':', ll);
		size_t nl_len;

		if (ll == 0 || (ll == 1 && p[0] == '\r')) {
			p = lend ? lend + 1 : end;
			break;
		}
		if (colon) {
			nl_len = (size_t)(colon - p);
			if (nl_len == 8 && strncasecmp(p, "Location", 8) == 0)
				set_header(&a->location, p, ll, nl_len);
			else if (nl_len == 11 && strncasecmp(p, "Retry-After", 11) == 0)
				set_header(&a->retry_after, p, ll, nl_len);
			else if (nl_len == 14 && strncasecmp(p, "retry-after-ms", 14) == 0)
				set_header(&a->retry_after_ms, p, ll, nl_len);
			else if (nl_len == 15 && strncasecmp(p, "x-ms-request-id", 15) == 0)
				set_header(&a->request_id, p, ll, nl_len);
			else if (nl_len == 16 && strncasecmp(p, "WWW-Authenticate", 16) == 0)
				set_header(&a->www_authenticate, p, ll, nl_len);
		}
		p = lend ? lend + 1 : end;
	}
	a->body_len = (size_t)(end - p);
	a->body = dup_n(p, a->body_len);
}

static const char SEP[] = "\n====\n";

static void answer_copy(char **dst, const char *src)
{
	*dst = src ? strdup(src) : NULL;
}

static enum dbx_err script_send(struct dbx_transport *self, const struct dbx_http_request *req,
				struct dbx_http_response *resp, struct dbx_error *err)
{
	struct fuzz_script *s = (struct fuzz_script *)self;
	const struct fuzz_answer *a;

	s->sent++;
	fuzz_must(req->url != NULL, "fuzz_script", "a request has a URL");
	if (s->url_ok)
		fuzz_must(s->url_ok(s->url_ctx, req->url), "fuzz_script",
			  "a request goes only to a host it may go to");
	fuzz_must(req->deadline_ms == 0 || dbx_clock_now_ms(s->clock) <= req->deadline_ms,
		  "fuzz_script", "no request is sent past its deadline");
	dbx_uuid4(resp->client_request_id);
	if (s->next >= s->n)
		return dbx_error_set(err, DBX_EUNREACHABLE, "fuzz script exhausted");
	a = &s->answers[s->next++];
	if (a->transport_err)
		return dbx_error_set(err, a->transport_err, "fuzz transport failure");
	resp->status = a->status;
	resp->body = malloc(a->body_len + 1);
	if (!resp->body)
		abort();
	memcpy(resp->body, a->body, a->body_len + 1);
	resp->body_len = a->body_len;
	answer_copy(&resp->location, a->location);
	answer_copy(&resp->retry_after, a->retry_after);
	answer_copy(&resp->retry_after_ms, a->retry_after_ms);
	answer_copy(&resp->request_id, a->request_id);
	answer_copy(&resp->www_authenticate, a->www_authenticate);
	return DBX_OK;
}

static void script_destroy(struct dbx_transport *self)
{
	(void)self; /* owned by the target: fuzz_script_fini frees */
}

void fuzz_script_init(struct fuzz_script *s, const uint8_t *data, size_t size,
		      const struct dbx_clock *clock)
{
	const char *p = (const char *)data;
	const char *end = p + size;

	memset(s, 0, sizeof(*s));
	s->base.send = script_send;
	s->base.destroy = script_destroy;
	s->clock = clock;
	while (p <= end && s->n < FUZZ_MAX_ANSWERS) {
		const char *sep = memmem(p, (size_t)(end - p), SEP, sizeof(SEP) - 1);
		size_t len = sep ? (size_t)(sep - p) : (size_t)(end - p);

		parse_answer(&s->answers[s->n++], p, len);
		if (!sep)
			break;
		p = sep + sizeof(SEP) - 1;
	}
}

void fuzz_script_fini(struct fuzz_script *s)
{
	for (size_t i = 0; i < s->n; i++) {
		struct fuzz_answer *a = &s->answers[i];

		free(a->location);
		free(a->retry_after);
		free(a->retry_after_ms);
		free(a->request_id);
		free(a->www_authenticate);
		free(a->body);
	}
	s->n = 0;
}

size_t fuzz_pick_op(const char *const *ops, size_t nops, const char *op, const uint8_t *data,
		    size_t size)
{
	for (size_t i = 0; i < nops; i++) {
		if (strcmp(op, ops[i]) == 0)
			return i;
	}
	return size ? data[0] % nops : 0;
}
