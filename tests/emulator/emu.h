/*
 * databox-emulator: shared declarations.
 *
 * The emulator is one process with two libmicrohttpd daemons: an HTTPS
 * server that plays Azure Resource Manager, Key Vault and Microsoft Entra ID
 * (dispatched by the Host header), and a plain-HTTP admin API on loopback.
 * Everything mutable lives in one struct emu, guarded by emu->lock; the
 * request handlers (arm.c, keyvault.c, entra.c, admin.c) run with that lock
 * held and fill a struct emu_reply, which main.c turns into an MHD response
 * after the lock is released (so injected latency never blocks others).
 */
#ifndef DBX_EMU_H
#define DBX_EMU_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <json-c/json.h>
#include <microhttpd.h>

enum emu_service {
	EMU_SVC_NONE = 0,
	EMU_SVC_ARM,
	EMU_SVC_KEYVAULT,
	EMU_SVC_ENTRA,
	EMU_SVC_ADMIN,
};

/* One issued access token; looked up by its string. */
struct emu_token {
	char *token;
	char tenant[64];
	char client[64];
	char oid[64];
	char aud[512];
	time_t exp;
};

/* One injected fault rule (admin API, POST /admin/faults). */
struct emu_fault {
	int id;
	enum emu_service svc; /* EMU_SVC_NONE = any */
	char method[16];      /* "" = any */
	char *path_prefix;    /* NULL = any */
	int latency_ms;
	unsigned int status; /* 0 = pass through after latency */
	char retry_after[32];
	char *body;
	bool drop;
	long count; /* -1 = forever */
};

#define EMU_REQLOG_MAX	1000
#define EMU_MAX_HEADERS 24

struct emu {
	pthread_mutex_t lock;
	struct json_object *world; /* the world as loaded (keys carry n/e) */
	int page_size_override;	   /* --page-size, 0 = world's */
	int latency_ms;		   /* global latency for Azure responses */

	struct emu_token *tokens;
	size_t ntokens, cap_tokens;

	struct emu_fault *faults;
	size_t nfaults, cap_faults;
	int next_fault_id;

	/* counters */
	long total;
	long by_svc[EMU_SVC_ADMIN + 1];
	struct json_object *by_path; /* "METHOD host/path" -> int */
	/* request log ring */
	struct json_object *reqlog[EMU_REQLOG_MAX];
	size_t reqlog_head, reqlog_len;

	/* pending PATCH operations: opid -> {job id, polls} */
	struct json_object *operations;

	/* cache of generated key material, "vault/key/version/kty/size" -> jwk */
	pthread_mutex_t keycache_lock;
	struct json_object *keycache;
	struct emu_warm *warm; /* background key generation, see world.c */
	atomic_bool stopping;

	const char *state_dir;
};

/* A request as the handlers see it. */
struct emu_req {
	char *uri;	   /* raw request target, as received */
	char *raw_path;	   /* raw path (before '?') */
	const char *query; /* raw query string (after '?'), "" when none */
	const char *path;  /* URL-decoded path (from MHD) */
	const char *method;
	char host[256];	    /* lower-case, port stripped */
	char host_raw[256]; /* as sent (may carry a port), for nextLink */
	enum emu_service svc;
	struct MHD_Connection *conn;
	char *body;
	size_t body_len, body_cap;
	bool body_overflow;
	bool admin;
};

struct emu_reply {
	unsigned int status;
	char *body;
	size_t body_len;
	const char *content_type; /* NULL = none (empty body) */
	int nhdr;
	char *hname[EMU_MAX_HEADERS];
	char *hvalue[EMU_MAX_HEADERS];
	bool drop;	  /* close the connection without a response */
	bool secret_body; /* the request body held secrets: do not log it */
};

/* ---- main.c: request/reply helpers ---- */
const char *emu_arg(const struct emu_req *q, const char *key);
const char *emu_header(const struct emu_req *q, const char *name);
void emu_reply_header(struct emu_reply *r, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Serialize obj as the body (takes ownership of obj). */
void emu_reply_json(struct emu_reply *r, unsigned int status, struct json_object *obj);
/* ARM-shaped error: {"error":{"code":...,"message":...}}. */
void emu_reply_error(struct emu_reply *r, unsigned int status, const char *code, const char *fmt,
		     ...) __attribute__((format(printf, 4, 5)));
void emu_guid(char out[37]);
void emu_rand_hex(char *out, size_t nbytes);
char *emu_b64url(const unsigned char *data, size_t len);
/* Split a decoded path into segments; returns count, fills seg (pointers into buf). */
int emu_split_path(char *buf, char **seg, int max);

/* ---- tls.c ---- */
int emu_tls_make(const char *cafile, char **cert_pem, char **key_pem);

/* ---- world.c ---- */
/* Parse a world; NULL + err on failure. */
struct json_object *emu_world_parse(const char *text, char *err, size_t errlen);
/* Start generating key material for world in the background (before sharing it). */
void emu_keys_warm(struct emu *e, struct json_object *world);
void emu_keys_stop(struct emu *e);
/* Fill ver with key material (cache or generate now); e->lock held. */
int emu_key_material(struct emu *e, const char *vault, const char *key, struct json_object *ver);
void emu_world_replace(struct emu *e, struct json_object *world);
int emu_world_page_size(struct emu *e);
int emu_world_token_lifetime(struct emu *e);
struct json_object *emu_world_array(struct emu *e, const char *name);
struct json_object *emu_find_subscription(struct emu *e, const char *sub);
bool emu_rg_known(struct emu *e, const char *sub, const char *rg);
struct json_object *emu_find_job(struct emu *e, const char *sub, const char *rg, const char *name);
struct json_object *emu_find_vault_by_name(struct emu *e, const char *name);
struct json_object *emu_find_vault_by_host(struct emu *e, const char *host);
struct json_object *emu_find_resource(struct emu *e, const char *array, const char *sub,
				      const char *rg, const char *name);
struct json_object *emu_find_client(struct emu *e, const char *tenant, const char *client);
bool emu_tenant_known(struct emu *e, const char *tenant);
/* Split an ARM id; fields are case-insensitive on segment names. */
bool emu_id_parse(const char *id, char *sub, char *rg, char *name, size_t len);
const char *emu_jstr(struct json_object *o, const char *key);
struct json_object *emu_jpath(struct json_object *o, const char *dotted);

/* tokens */
const char *emu_token_issue(struct emu *e, const char *tenant, const char *client, const char *oid,
			    const char *aud, int lifetime);
const struct emu_token *emu_token_find(struct emu *e, const char *token);

/* ---- service handlers (called with e->lock held) ---- */
void emu_arm_handle(struct emu *e, struct emu_req *q, struct emu_reply *r);
void emu_kv_handle(struct emu *e, struct emu_req *q, struct emu_reply *r);
void emu_entra_handle(struct emu *e, struct emu_req *q, struct emu_reply *r);
void emu_admin_handle(struct emu *e, struct emu_req *q, struct emu_reply *r);

/* ---- admin.c: bookkeeping used by main.c ---- */
const char *emu_svc_name(enum emu_service s);
void emu_record(struct emu *e, const struct emu_req *q, const struct emu_reply *r);
/* Returns the matching fault (count already consumed) or NULL. */
const struct emu_fault *emu_fault_match(struct emu *e, const struct emu_req *q);
void emu_fault_reply(const struct emu_fault *f, const struct emu_req *q, struct emu_reply *r);

#endif
