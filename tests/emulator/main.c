/*
 * main.c: databox-emulator's command line, the three libmicrohttpd daemons
 * and the request pipeline shared by every service.
 *
 *   databox-emulator --world FILE --state-dir DIR [--port N] [--admin-port N]
 *                    [--bind ADDR] [--latency-ms N] [--page-size N]
 *                    [--imds-port N] [--imds-bind ADDR] [--persist]
 *
 * Pipeline for an Azure request: collect the body -> pick the service from
 * the Host header -> (lock) fault rules -> service handler (unlock) ->
 * saved state (--persist) -> (lock) counters and request log (unlock) ->
 * injected latency -> common headers -> queue.
 * When all daemons listen, DIR/emulator.json is written atomically; tests
 * wait for it. SIGTERM/SIGINT stop the daemons and exit 0.
 *
 * --persist (restarts): every answer that may have changed state (anything
 * but a GET, Key Vault and IMDS requests, operationResults polls, admin
 * mutations) first saves DIR/saved-state.json, and the server certificate
 * and key are kept in DIR; a run started with --persist on a DIR that holds
 * them resumes from them, so a client sees the same CA (ports: pass them
 * again) and the same orders, operations and tokens, even after SIGKILL.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "emu.h"

#define DBX_EMU_MAX_BODY (256u << 20) /* worlds can be big */

/* ---- small helpers shared with the service files ---- */

void dbx_emu_rand_hex(char *out, size_t nbytes)
{
	unsigned char b[64];
	size_t i;

	if (nbytes > sizeof(b))
		nbytes = sizeof(b);
	if (RAND_bytes(b, (int)nbytes) != 1)
		memset(b, 0x5a, nbytes);
	for (i = 0; i < nbytes; i++)
		sprintf(out + 2 * i, "%02x", b[i]);
	out[2 * nbytes] = '\0';
}

void dbx_emu_guid(char out[37])
{
	unsigned char b[16];

	if (RAND_bytes(b, sizeof(b)) != 1)
		memset(b, 0x5a, sizeof(b));
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
		 b[13], b[14], b[15]);
}

void dbx_emu_iso_now(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;
	char base[24];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, len, "%s.%07ld+00:00", base, ts.tv_nsec / 100);
}

char *dbx_emu_b64url(const unsigned char *data, size_t len)
{
	char *out = malloc(4 * ((len + 2) / 3) + 1);
	int n, i, j = 0;

	if (!out)
		return NULL;
	n = EVP_EncodeBlock((unsigned char *)out, data, (int)len);
	for (i = 0; i < n; i++) {
		if (out[i] == '=')
			break;
		out[j++] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
	}
	out[j] = '\0';
	return out;
}

int dbx_emu_split_path(char *buf, char **seg, int max)
{
	int n = 0;
	char *p = buf;

	while (*p && n < max) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		seg[n++] = p;
		p += strcspn(p, "/");
		if (*p)
			*p++ = '\0';
	}
	return n;
}

struct arg_find {
	const char *key;
	const char *value;
};

static enum MHD_Result arg_iter(void *cls, enum MHD_ValueKind kind, const char *key,
				const char *value)
{
	struct arg_find *f = cls;

	if (key && !strcasecmp(key, f->key)) {
		f->value = value ? value : "";
		return MHD_NO;
	}
	return MHD_YES;
}

/* Query argument by (URL-decoded, case-insensitive) key, NULL when absent. */
const char *dbx_emu_arg(const struct dbx_emu_req *q, const char *key)
{
	struct arg_find f = {.key = key};

	MHD_get_connection_values(q->conn, MHD_GET_ARGUMENT_KIND, arg_iter, &f);
	return f.value;
}

const char *dbx_emu_header(const struct dbx_emu_req *q, const char *name)
{
	return MHD_lookup_connection_value(q->conn, MHD_HEADER_KIND, name);
}

void dbx_emu_reply_header(struct dbx_emu_reply *r, const char *name, const char *fmt, ...)
{
	va_list ap;
	char *v;
	int i;

	va_start(ap, fmt);
	if (vasprintf(&v, fmt, ap) < 0)
		v = NULL;
	va_end(ap);
	if (!v)
		return;
	for (i = 0; i < r->nhdr; i++) {
		if (!strcasecmp(r->hname[i], name)) {
			free(r->hvalue[i]);
			r->hvalue[i] = v;
			return;
		}
	}
	if (r->nhdr == DBX_EMU_MAX_HEADERS) {
		free(v);
		return;
	}
	r->hname[r->nhdr] = strdup(name);
	r->hvalue[r->nhdr++] = v;
}

void dbx_emu_reply_json(struct dbx_emu_reply *r, unsigned int status, struct json_object *obj)
{
	const char *s = json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN |
								JSON_C_TO_STRING_NOSLASHESCAPE);

	free(r->body);
	r->status = status;
	r->body = strdup(s);
	r->body_len = r->body ? strlen(r->body) : 0;
	r->content_type = "application/json; charset=utf-8";
	json_object_put(obj);
}

void dbx_emu_reply_error(struct dbx_emu_reply *r, unsigned int status, const char *code,
			 const char *fmt, ...)
{
	struct json_object *o = json_object_new_object(), *err = json_object_new_object();
	va_list ap;
	char *msg;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	json_object_object_add(err, "code", json_object_new_string(code));
	json_object_object_add(err, "message", json_object_new_string(msg ? msg : code));
	json_object_object_add(o, "error", err);
	free(msg);
	dbx_emu_reply_json(r, status, o);
}

static void reply_free(struct dbx_emu_reply *r)
{
	int i;

	for (i = 0; i < r->nhdr; i++) {
		free(r->hname[i]);
		free(r->hvalue[i]);
	}
	free(r->body);
}

static void sleep_ms(int ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

	while (ms > 0 && nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* ---- the request pipeline ---- */

static enum dbx_emu_service service_for_host(const char *host)
{
	static const char *const kv[] = {".vault.azure.net", ".vault.usgovcloudapi.net",
					 ".vault.azure.cn"};
	size_t i, hl = strlen(host);

	if (!strncmp(host, "management.", 11))
		return DBX_EMU_SVC_ARM;
	if (!strncmp(host, "login.", 6))
		return DBX_EMU_SVC_ENTRA;
	for (i = 0; i < sizeof(kv) / sizeof(kv[0]); i++) {
		size_t sl = strlen(kv[i]);

		if (hl > sl && !strcmp(host + hl - sl, kv[i]) && !memchr(host, '.', hl - sl))
			return DBX_EMU_SVC_KEYVAULT;
	}
	return DBX_EMU_SVC_NONE;
}

static void parse_host(struct dbx_emu_req *q)
{
	const char *h = dbx_emu_header(q, "Host");
	size_t i, n;

	snprintf(q->host_raw, sizeof(q->host_raw), "%s", h ? h : "");
	n = strcspn(q->host_raw, ":");
	if (q->host_raw[0] == '[')
		n = strcspn(q->host_raw, "]") + 1;
	for (i = 0; i < n && i < sizeof(q->host) - 1; i++)
		q->host[i] = (char)tolower((unsigned char)q->host_raw[i]);
	q->host[i] = '\0';
}

static void *uri_log(void *cls, const char *uri, struct MHD_Connection *conn)
{
	struct dbx_emu_req *q = calloc(1, sizeof(*q));
	char *qm;

	if (!q)
		return NULL;
	q->uri = strdup(uri ? uri : "/");
	q->raw_path = strdup(q->uri ? q->uri : "/");
	if (!q->uri || !q->raw_path)
		return q;
	qm = strchr(q->raw_path, '?');
	if (qm)
		*qm = '\0';
	qm = strchr(q->uri, '?');
	q->query = qm ? qm + 1 : "";
	return q;
}

static void request_done(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct dbx_emu_req *q = *con_cls;

	if (!q)
		return;
	free(q->uri);
	free(q->raw_path);
	free(q->body);
	free(q);
	*con_cls = NULL;
}

static int body_append(struct dbx_emu_req *q, const char *data, size_t len)
{
	if (q->body_len + len + 1 > DBX_EMU_MAX_BODY) {
		q->body_overflow = true;
		return 0;
	}
	if (q->body_len + len + 1 > q->body_cap) {
		size_t cap = (q->body_len + len + 1) * 2;
		char *nb = realloc(q->body, cap);

		if (!nb)
			return -1;
		q->body = nb;
		q->body_cap = cap;
	}
	memcpy(q->body + q->body_len, data, len);
	q->body_len += len;
	q->body[q->body_len] = '\0';
	return 0;
}

static void add_common_headers(struct dbx_emu_req *q, struct dbx_emu_reply *r)
{
	const char *crid = dbx_emu_header(q, "x-ms-client-request-id");
	const char *corr = dbx_emu_header(q, "x-ms-correlation-request-id");
	char g[37];

	dbx_emu_guid(g);
	dbx_emu_reply_header(r, "x-ms-request-id", "%s", g);
	if (q->svc == DBX_EMU_SVC_ARM) {
		if (corr && *corr)
			dbx_emu_reply_header(r, "x-ms-correlation-request-id", "%s", corr);
		else
			dbx_emu_reply_header(r, "x-ms-correlation-request-id", "%s", g);
		dbx_emu_reply_header(r, "x-ms-routing-request-id", "WESTUS:%ld:%s",
				     (long)time(NULL), g);
		if (!r->ratelimit_set) {
			dbx_emu_reply_header(r, "x-ms-ratelimit-remaining-subscription-reads",
					     "11999");
			dbx_emu_reply_header(
			    r, "x-ms-ratelimit-remaining-subscription-global-reads", "16499");
		}
		dbx_emu_reply_header(r, "Cache-Control", "no-cache");
		dbx_emu_reply_header(r, "Strict-Transport-Security",
				     "max-age=31536000; includeSubDomains");
	}
	if (q->svc == DBX_EMU_SVC_ENTRA) {
		const char *mcrid = dbx_emu_header(q, "client-request-id");

		if (mcrid)
			dbx_emu_reply_header(r, "client-request-id", "%s", mcrid);
		dbx_emu_reply_header(r, "x-ms-ests-server", "2.1.emulator");
		dbx_emu_reply_header(r, "Cache-Control", "no-store, no-cache");
	}
	if (crid)
		dbx_emu_reply_header(r, "x-ms-client-request-id", "%s", crid);
}

static enum MHD_Result queue_reply(struct MHD_Connection *conn, struct dbx_emu_reply *r)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;
	int i;

	resp = MHD_create_response_from_buffer(r->body_len, r->body_len ? r->body : (void *)"",
					       MHD_RESPMEM_MUST_COPY);
	if (!resp)
		return MHD_NO;
	if (r->content_type)
		MHD_add_response_header(resp, "Content-Type", r->content_type);
	for (i = 0; i < r->nhdr; i++)
		MHD_add_response_header(resp, r->hname[i], r->hvalue[i]);
	ret = MHD_queue_response(conn, r->status ? r->status : 500, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* A body that stops half-way for stall_ms (fault rules), then ends. */
struct stall {
	char *body;
	size_t len, half;
	int stall_ms;
	bool stalled;
	atomic_bool *stopping;
};

static ssize_t stall_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct stall *st = cls;
	size_t end = pos < st->half ? st->half : st->len, n;
	int waited;

	if (pos >= st->half && !st->stalled) {
		st->stalled = true;
		for (waited = 0; waited < st->stall_ms && !atomic_load(st->stopping); waited += 50)
			sleep_ms(50);
	}
	if (pos >= st->len)
		return MHD_CONTENT_READER_END_OF_STREAM;
	n = end - (size_t)pos;
	if (n > max)
		n = max;
	memcpy(buf, st->body + pos, n);
	return (ssize_t)n;
}

static void stall_free(void *cls)
{
	struct stall *st = cls;

	free(st->body);
	free(st);
}

static enum MHD_Result queue_stalled(struct dbx_emu *e, struct MHD_Connection *conn,
				     struct dbx_emu_reply *r)
{
	struct stall *st = calloc(1, sizeof(*st));
	struct MHD_Response *resp;
	enum MHD_Result ret;
	int i;

	if (!st)
		return MHD_NO;
	st->body = r->body;
	st->len = r->body_len;
	st->half = r->body_len / 2;
	st->stall_ms = r->stall_ms;
	st->stopping = &e->stopping;
	r->body = NULL;
	resp = MHD_create_response_from_callback(st->len, 4096, stall_read, st, stall_free);
	if (!resp) {
		stall_free(st);
		return MHD_NO;
	}
	if (r->content_type)
		MHD_add_response_header(resp, "Content-Type", r->content_type);
	for (i = 0; i < r->nhdr; i++)
		MHD_add_response_header(resp, r->hname[i], r->hvalue[i]);
	ret = MHD_queue_response(conn, r->status ? r->status : 500, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* ---- --persist: the saved state ---- */

static bool changes_state(const struct dbx_emu_req *q)
{
	return strcmp(q->method, "GET") || q->svc == DBX_EMU_SVC_KEYVAULT ||
	       q->svc == DBX_EMU_SVC_IMDS || strcasestr(q->raw_path, "operationResults");
}

/* Serialize the state (e->lock held); returns its sequence number, 0 = nothing to save. */
static unsigned long state_snapshot(struct dbx_emu *e, char **text)
{
	*text = e->persist ? dbx_emu_state_dump(e) : NULL;
	return *text ? ++e->save_seq : 0;
}

/* Write DIR/saved-state.json atomically unless a newer snapshot got there first. */
static void state_write(struct dbx_emu *e, char *text, unsigned long seq)
{
	char path[4200], tmp[4300];
	FILE *f;

	if (!text)
		return;
	pthread_mutex_lock(&e->save_lock);
	if (seq > e->saved_seq) {
		snprintf(path, sizeof(path), "%s/saved-state.json", e->state_dir);
		snprintf(tmp, sizeof(tmp), "%s.tmp", path);
		f = fopen(tmp, "w");
		if (f && fputs(text, f) >= 0 && !fclose(f) && !rename(tmp, path))
			e->saved_seq = seq;
		else
			fprintf(stderr, "databox-emulator: cannot save %s\n", path);
	}
	pthread_mutex_unlock(&e->save_lock);
	free(text);
}

/* First call sets up, middle calls collect the body; returns true when complete. */
static bool collect(struct dbx_emu_req *q, const char *upload_data, size_t *upload_data_size,
		    bool *first)
{
	if (!q->method) {
		q->method = "";
		*first = true;
		return false;
	}
	*first = false;
	if (*upload_data_size) {
		body_append(q, upload_data, *upload_data_size);
		*upload_data_size = 0;
		return false;
	}
	return true;
}

static enum MHD_Result on_azure(void *cls, struct MHD_Connection *conn, const char *url,
				const char *method, const char *version, const char *upload_data,
				size_t *upload_data_size, void **con_cls)
{
	struct dbx_emu *e = cls;
	struct dbx_emu_req *q = *con_cls;
	struct dbx_emu_reply r = {0};
	const struct dbx_emu_fault *f;
	enum MHD_Result ret;
	bool first;
	int latency;
	char *saved = NULL;
	unsigned long seq = 0;

	if (!q || !q->uri || !q->raw_path)
		return MHD_NO;
	if (!collect(q, upload_data, upload_data_size, &first))
		return MHD_YES;
	q->method = method;
	q->path = url;
	q->conn = conn;
	parse_host(q);
	q->svc = q->imds ? DBX_EMU_SVC_IMDS : service_for_host(q->host);

	pthread_mutex_lock(&e->lock);
	latency = e->latency_ms;
	f = dbx_emu_fault_match(e, q);
	if (f) {
		latency += f->latency_ms;
		dbx_emu_fault_reply(f, q, &r);
	}
	if (!r.status && !r.drop) {
		if (q->body_overflow)
			dbx_emu_reply_error(&r, 413, "RequestEntityTooLarge",
					    "The request content was too large.");
		else if (q->svc == DBX_EMU_SVC_ARM)
			dbx_emu_arm_handle(e, q, &r);
		else if (q->svc == DBX_EMU_SVC_KEYVAULT)
			dbx_emu_kv_handle(e, q, &r);
		else if (q->svc == DBX_EMU_SVC_ENTRA)
			dbx_emu_entra_handle(e, q, &r);
		else if (q->svc == DBX_EMU_SVC_IMDS)
			dbx_emu_imds_handle(e, q, &r);
		else
			dbx_emu_reply_error(&r, 404, "HostNotFound", "No service for host '%s'.",
					    q->host);
	}
	if (f)
		dbx_emu_fault_after(f, q, &r);
	if (changes_state(q))
		seq = state_snapshot(e, &saved);
	pthread_mutex_unlock(&e->lock);
	/*
	 * Saved before anything is answered or logged: an answer seen, or a
	 * request in the log (where a test waits for it before killing the
	 * emulator), is a state kept.
	 */
	state_write(e, saved, seq);
	pthread_mutex_lock(&e->lock);
	dbx_emu_record(e, q, &r);
	pthread_mutex_unlock(&e->lock);

	sleep_ms(latency);
	if (r.drop) {
		reply_free(&r);
		return MHD_NO;
	}
	add_common_headers(q, &r);
	ret = r.stall_ms > 0 ? queue_stalled(e, conn, &r) : queue_reply(conn, &r);
	reply_free(&r);
	return ret;
}

/* The IMDS listener: the same pipeline, every request goes to imds.c. */
static enum MHD_Result on_imds(void *cls, struct MHD_Connection *conn, const char *url,
			       const char *method, const char *version, const char *upload_data,
			       size_t *upload_data_size, void **con_cls)
{
	struct dbx_emu_req *q = *con_cls;

	if (q)
		q->imds = true;
	return on_azure(cls, conn, url, method, version, upload_data, upload_data_size, con_cls);
}

static enum MHD_Result on_admin(void *cls, struct MHD_Connection *conn, const char *url,
				const char *method, const char *version, const char *upload_data,
				size_t *upload_data_size, void **con_cls)
{
	struct dbx_emu *e = cls;
	struct dbx_emu_req *q = *con_cls;
	struct dbx_emu_reply r = {0};
	enum MHD_Result ret;
	bool first;

	if (!q || !q->uri || !q->raw_path)
		return MHD_NO;
	if (!collect(q, upload_data, upload_data_size, &first))
		return MHD_YES;
	q->method = method;
	q->path = url;
	q->conn = conn;
	q->admin = true;
	q->svc = DBX_EMU_SVC_ADMIN;
	parse_host(q);
	if (q->body_overflow)
		dbx_emu_reply_error(&r, 413, "RequestEntityTooLarge",
				    "The request body is too large.");
	else
		dbx_emu_admin_handle(e, q, &r);
	if (strcmp(q->method, "GET")) {
		char *saved;
		unsigned long seq;

		pthread_mutex_lock(&e->lock);
		seq = state_snapshot(e, &saved);
		pthread_mutex_unlock(&e->lock);
		state_write(e, saved, seq);
	}
	ret = queue_reply(conn, &r);
	reply_free(&r);
	return ret;
}

/* ---- start-up ---- */

struct options {
	const char *world;
	const char *state_dir;
	const char *bind;
	const char *imds_bind;
	int port, admin_port, imds_port, latency_ms, page_size;
	bool persist;
};

static void usage(FILE *f)
{
	fprintf(f, "usage: databox-emulator --world FILE --state-dir DIR [--port N] "
		   "[--admin-port N]\n"
		   "                        [--bind ADDR] [--latency-ms N] [--page-size N]\n"
		   "                        [--imds-port N] [--imds-bind ADDR] [--persist]\n");
}

static int parse_int(const char *s, int lo, int hi, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || end == s || v < lo || v > hi)
		return -1;
	*out = (int)v;
	return 0;
}

static int parse_options(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
	    {"world", required_argument, NULL, 'w'},
	    {"state-dir", required_argument, NULL, 's'},
	    {"port", required_argument, NULL, 'p'},
	    {"admin-port", required_argument, NULL, 'a'},
	    {"bind", required_argument, NULL, 'b'},
	    {"latency-ms", required_argument, NULL, 'l'},
	    {"page-size", required_argument, NULL, 'g'},
	    {"imds-port", required_argument, NULL, 'i'},
	    {"imds-bind", required_argument, NULL, 'I'},
	    {"persist", no_argument, NULL, 'P'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int c, bad = 0;

	o->bind = "127.0.0.1";
	o->imds_bind = "127.0.0.1";
	for (;;) {
		c = getopt_long(argc, argv, "", longopts, NULL);
		if (c == -1)
			break;
		switch (c) {
		case 'w':
			o->world = optarg;
			break;
		case 's':
			o->state_dir = optarg;
			break;
		case 'p':
			bad |= parse_int(optarg, 0, 65535, &o->port);
			break;
		case 'a':
			bad |= parse_int(optarg, 0, 65535, &o->admin_port);
			break;
		case 'b':
			o->bind = optarg;
			break;
		case 'l':
			bad |= parse_int(optarg, 0, 600000, &o->latency_ms);
			break;
		case 'g':
			bad |= parse_int(optarg, 1, 100000, &o->page_size);
			break;
		case 'i':
			bad |= parse_int(optarg, 0, 65535, &o->imds_port);
			break;
		case 'I':
			o->imds_bind = optarg;
			break;
		case 'P':
			o->persist = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			bad = 1;
		}
	}
	if (bad || optind != argc || !o->world || !o->state_dir) {
		usage(stderr);
		return -1;
	}
	return 0;
}

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t len = 0, cap = 0, n;

	if (!f)
		return NULL;
	do {
		if (cap - len < 65536) {
			char *nb = realloc(buf, cap + 65536 + 1);

			if (!nb) {
				free(buf);
				buf = NULL;
				goto out;
			}
			buf = nb;
			cap += 65536;
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
	} while (n > 0);
	buf[len] = '\0';
out:
	fclose(f);
	return buf;
}

static int write_state(const char *dir, int https_port, int admin_port, int imds_port,
		       const char *cafile)
{
	struct json_object *o = json_object_new_object();
	char path[4096], tmp[4200];
	FILE *f = NULL;
	int rc = -1;

	json_object_object_add(o, "https_port", json_object_new_int(https_port));
	json_object_object_add(o, "admin_port", json_object_new_int(admin_port));
	json_object_object_add(o, "imds_port", json_object_new_int(imds_port));
	json_object_object_add(o, "cafile", json_object_new_string(cafile));
	json_object_object_add(o, "pid", json_object_new_int((int)getpid()));
	snprintf(path, sizeof(path), "%s/emulator.json", dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
	f = fopen(tmp, "w");
	if (!f)
		goto out;
	fputs(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
						    JSON_C_TO_STRING_NOSLASHESCAPE),
	      f);
	fputc('\n', f);
	if (fclose(f)) {
		f = NULL;
		goto out;
	}
	f = NULL;
	if (rename(tmp, path))
		goto out;
	rc = 0;
out:
	if (f)
		fclose(f);
	json_object_put(o);
	return rc;
}

/* Write text to path (mode) through a temporary file and a rename. */
static int write_text(const char *path, const char *text, mode_t mode)
{
	char tmp[4300];
	FILE *f;
	int fd;

	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, mode);
	if (fd < 0)
		return -1;
	f = fdopen(fd, "w");
	if (!f) {
		close(fd);
		return -1;
	}
	if (fputs(text, f) < 0) {
		fclose(f);
		return -1;
	}
	if (fclose(f))
		return -1;
	return rename(tmp, path);
}

/*
 * The server certificate and key: with --persist, the ones a former run
 * kept in DIR (signed by the DIR/ca.pem it wrote), so clients that trust
 * that CA keep trusting this run; else (or the first time) new ones.
 */
static int tls_setup(const struct options *o, const char *cafile, char **cert, char **key)
{
	char cpath[4200], kpath[4200];

	snprintf(cpath, sizeof(cpath), "%s/server-cert.pem", o->state_dir);
	snprintf(kpath, sizeof(kpath), "%s/server-key.pem", o->state_dir);
	if (o->persist && !access(cafile, R_OK)) {
		*cert = read_file(cpath);
		*key = read_file(kpath);
		if (*cert && *key)
			return 0;
		free(*cert);
		free(*key);
		*cert = *key = NULL;
	}
	if (dbx_emu_tls_make(cafile, cert, key))
		return -1;
	if (o->persist && (write_text(cpath, *cert, 0644) || write_text(kpath, *key, 0600)))
		return -1;
	return 0;
}

/*
 * libmicrohttpd's error log, minus the line it prints each time a handler
 * deliberately drops a connection (fault rules, unknown vaults).
 */
__attribute__((format(printf, 2, 0))) static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char buf[512];

	vsnprintf(buf, sizeof(buf), fmt, ap);
	if (strstr(buf, "Application reported internal error"))
		return;
	fprintf(stderr, "databox-emulator: %s", buf);
}

static int daemon_port(struct MHD_Daemon *d)
{
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);

	return info ? info->port : -1;
}

int main(int argc, char **argv)
{
	struct options o = {0};
	struct dbx_emu e = {0};
	struct MHD_Daemon *https = NULL, *admin = NULL, *imds = NULL;
	struct sockaddr_in sa = {0}, asa = {0}, isa = {0};
	char *text = NULL, *cert = NULL, *key = NULL, cafile[4096], err[256];
	char state_path[4096], saved_path[4200];
	struct json_object *world;
	sigset_t set;
	int sig, rc = 1;

	if (parse_options(argc, argv, &o))
		return 2;
	if (mkdir(o.state_dir, 0700) && errno != EEXIST) {
		fprintf(stderr, "databox-emulator: %s: %s\n", o.state_dir, strerror(errno));
		return 1;
	}
	pthread_mutex_init(&e.lock, NULL);
	pthread_mutex_init(&e.keycache_lock, NULL);
	e.keycache = json_object_new_object();
	e.by_path = json_object_new_object();
	e.operations = json_object_new_object();
	e.page_size_override = o.page_size;
	e.latency_ms = o.latency_ms;
	e.state_dir = o.state_dir;
	e.next_fault_id = 1;

	/* a stale emulator.json must not satisfy anyone waiting for this one */
	snprintf(state_path, sizeof(state_path), "%s/emulator.json", o.state_dir);
	unlink(state_path);

	pthread_mutex_init(&e.save_lock, NULL);
	e.persist = o.persist;
	snprintf(saved_path, sizeof(saved_path), "%s/saved-state.json", o.state_dir);
	text = o.persist ? read_file(saved_path) : NULL;
	if (text) {
		/* a restart: the world, operations and tokens as the last run left them */
		if (dbx_emu_state_load(&e, text, err, sizeof(err))) {
			fprintf(stderr, "databox-emulator: %s: %s\n", saved_path, err);
			goto out;
		}
	} else {
		text = read_file(o.world);
		if (!text) {
			fprintf(stderr, "databox-emulator: %s: %s\n", o.world, strerror(errno));
			goto out;
		}
		world = dbx_emu_world_parse(text, err, sizeof(err));
		if (!world) {
			fprintf(stderr, "databox-emulator: %s: %s\n", o.world, err);
			goto out;
		}
		dbx_emu_keys_warm(&e, world);
		dbx_emu_world_replace(&e, world);
	}

	snprintf(cafile, sizeof(cafile), "%s/ca.pem", o.state_dir);
	if (tls_setup(&o, cafile, &cert, &key)) {
		fprintf(stderr, "databox-emulator: cannot make TLS certificates\n");
		goto out;
	}

	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)o.port);
	if (inet_pton(AF_INET, o.bind, &sa.sin_addr) != 1) {
		fprintf(stderr, "databox-emulator: --bind %s: not an IPv4 address\n", o.bind);
		goto out;
	}
	asa.sin_family = AF_INET;
	asa.sin_port = htons((uint16_t)o.admin_port);
	asa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

	/* MHD's threads inherit this mask; only main receives the signals. */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	https = MHD_start_daemon(
	    MHD_USE_TLS | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
		MHD_USE_ERROR_LOG,
	    0, NULL, NULL, on_azure, &e, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, &e,
	    MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_HTTPS_MEM_KEY, key, MHD_OPTION_HTTPS_MEM_CERT,
	    cert, MHD_OPTION_URI_LOG_CALLBACK, uri_log, &e, MHD_OPTION_NOTIFY_COMPLETED,
	    request_done, &e, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)60,
	    MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned int)1, MHD_OPTION_END);
	if (!https) {
		fprintf(stderr, "databox-emulator: cannot listen on %s:%d\n", o.bind, o.port);
		goto out;
	}
	admin = MHD_start_daemon(
	    MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG, 0,
	    NULL, NULL, on_admin, &e, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, &e, MHD_OPTION_SOCK_ADDR,
	    &asa, MHD_OPTION_URI_LOG_CALLBACK, uri_log, &e, MHD_OPTION_NOTIFY_COMPLETED,
	    request_done, &e, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)60,
	    MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned int)1, MHD_OPTION_END);
	if (!admin) {
		fprintf(stderr, "databox-emulator: cannot listen on 127.0.0.1:%d\n", o.admin_port);
		goto out;
	}
	isa.sin_family = AF_INET;
	isa.sin_port = htons((uint16_t)o.imds_port);
	if (inet_pton(AF_INET, o.imds_bind, &isa.sin_addr) != 1) {
		fprintf(stderr, "databox-emulator: --imds-bind %s: not an IPv4 address\n",
			o.imds_bind);
		goto out;
	}
	imds = MHD_start_daemon(
	    MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG, 0,
	    NULL, NULL, on_imds, &e, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, &e, MHD_OPTION_SOCK_ADDR,
	    &isa, MHD_OPTION_URI_LOG_CALLBACK, uri_log, &e, MHD_OPTION_NOTIFY_COMPLETED,
	    request_done, &e, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)60,
	    MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned int)1, MHD_OPTION_END);
	if (!imds) {
		fprintf(stderr, "databox-emulator: cannot listen on %s:%d (IMDS)\n", o.imds_bind,
			o.imds_port);
		goto out;
	}
	if (write_state(o.state_dir, daemon_port(https), daemon_port(admin), daemon_port(imds),
			cafile)) {
		fprintf(stderr, "databox-emulator: cannot write %s/emulator.json\n", o.state_dir);
		goto out;
	}
	fprintf(stderr, "databox-emulator: https on %s:%d, admin on 127.0.0.1:%d, imds on %s:%d\n",
		o.bind, daemon_port(https), daemon_port(admin), o.imds_bind, daemon_port(imds));

	do {
		if (sigwait(&set, &sig))
			break;
	} while (sig != SIGTERM && sig != SIGINT);
	rc = 0;
out:
	atomic_store(&e.stopping, true); /* ends stalled answers */
	if (imds)
		MHD_stop_daemon(imds);
	if (admin)
		MHD_stop_daemon(admin);
	if (https)
		MHD_stop_daemon(https);
	dbx_emu_keys_stop(&e);
	if (rc == 0)
		unlink(state_path);
	free(text);
	free(cert);
	free(key);
	pthread_mutex_lock(&e.lock);
	json_object_put(e.world);
	json_object_put(e.keycache);
	json_object_put(e.by_path);
	json_object_put(e.operations);
	json_object_put(e.token_stats);
	json_object_put(e.throttle_state);
	for (size_t i = 0; i < DBX_EMU_REQLOG_MAX; i++)
		json_object_put(e.reqlog[i]);
	for (size_t i = 0; i < e.ntokens; i++)
		free(e.tokens[i].token);
	free(e.tokens);
	for (size_t i = 0; i < e.nfaults; i++) {
		free(e.faults[i].path_prefix);
		free(e.faults[i].body);
		json_object_put(e.faults[i].headers);
	}
	free(e.faults);
	pthread_mutex_unlock(&e.lock);
	return rc;
}
