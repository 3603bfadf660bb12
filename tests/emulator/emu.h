/*
 * databox-emulator: shared declarations.
 *
 * The emulator is one process with three libmicrohttpd daemons: an HTTPS
 * server that plays Azure Resource Manager, Key Vault and Microsoft Entra ID
 * (dispatched by the Host header), a plain-HTTP managed identity endpoint
 * (IMDS and App Service flavours) and a plain-HTTP admin API on loopback.
 * Everything mutable lives in one struct dbx_emu, guarded by emu->lock; the
 * request handlers (arm.c, keyvault.c, entra.c, imds.c, admin.c) run with that lock
 * held and fill a struct dbx_emu_reply, which main.c turns into an MHD response
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

/* Fallible functions: the caller must look at the result. */
#define DBX_EMU_MUST_CHECK __attribute__((warn_unused_result))

enum dbx_emu_service {
	DBX_EMU_SVC_NONE = 0,
	DBX_EMU_SVC_ARM,
	DBX_EMU_SVC_KEYVAULT,
	DBX_EMU_SVC_ENTRA,
	DBX_EMU_SVC_IMDS,
	DBX_EMU_SVC_ADMIN,
};

/* One issued access token; looked up by its string. */
struct dbx_emu_token {
	char *token;
	char tenant[64];
	char client[64];
	char oid[64];
	char aud[512];
	time_t exp;
};

/* One injected fault rule (admin API, POST /admin/faults). */
struct dbx_emu_fault {
	int id;
	enum dbx_emu_service svc; /* DBX_EMU_SVC_NONE = any */
	char method[16];	  /* "" = any */
	char *path_prefix;	  /* NULL = any */
	int latency_ms;
	unsigned int status; /* 0 = pass through after latency */
	char retry_after[32];
	char *body; /* replaces the answer (with status); may hold any bytes */
	size_t body_len;
	bool drop;
	long count; /* -1 = forever */
	/* applied to whatever the request is answered with (rule or service) */
	int retry_after_ms;	/* >= 0: retry-after-ms and x-ms-retry-after-ms headers */
	int retry_after_date_s; /* >= 0: Retry-After as an HTTP date this far ahead */
	bool has_retry_date;
	int stall_ms;		     /* send headers and half the body, then stall this long */
	bool drop_after;	     /* run the request, then close without an answer */
	char next_link[16];	     /* "loop", "foreign" or "http": rewrite a list's nextLink */
	struct json_object *headers; /* extra answer headers, {"Name": "value"} */
};

/*
 * How accepted PATCHes run (POST /admin/operations); all zero is the
 * default: applied at once, no Retry-After, Location on the ARM host.
 */
enum dbx_emu_oploc {
	DBX_EMU_OPLOC_NORMAL = 0,
	DBX_EMU_OPLOC_FOREIGN, /* https://evil.example.net/... */
	DBX_EMU_OPLOC_HTTP,    /* http://<arm host>/... */
};

struct dbx_emu_opconf {
	bool delayed;		     /* complete_after_ms given */
	long complete_after_ms;	     /* the change lands this long after the PATCH */
	char retry_after[32];	     /* Retry-After on every 202, "" = none */
	enum dbx_emu_oploc location; /* the PATCH's Location */
	long drop_polls;	     /* the first N polls of each operation are dropped */
};

#define DBX_EMU_REQLOG_MAX  1000
#define DBX_EMU_MAX_HEADERS 24

struct dbx_emu {
	pthread_mutex_t lock;
	struct json_object *world; /* the world as loaded (keys carry n/e) */
	int page_size_override;	   /* --page-size, 0 = world's */
	int latency_ms;		   /* global latency for Azure responses */

	struct dbx_emu_token *tokens;
	size_t ntokens, cap_tokens;

	struct dbx_emu_fault *faults;
	size_t nfaults, cap_faults;
	int next_fault_id;

	/* counters */
	long total;
	long by_svc[DBX_EMU_SVC_ADMIN + 1];
	struct json_object *by_path; /* "METHOD host/path" -> int */
	/* request log ring */
	struct json_object *reqlog[DBX_EMU_REQLOG_MAX];
	size_t reqlog_head, reqlog_len;

	/* pending PATCH operations: opid -> {job id, polls, failed?} */
	struct json_object *operations;
	long fail_patches;	      /* next accepted PATCHes whose operation fails */
	struct dbx_emu_opconf opconf; /* POST /admin/operations: how future PATCHes run */
	long ops_pending;	      /* delayed changes not applied yet (0: nothing to settle) */
	int token_lifetime_override;  /* admin tokens/lifetime, 0 = none */
	/* issued tokens: {"total", "by_grant_type", "by_credential", "by_audience"} */
	struct json_object *token_stats;

	/* cache of generated key material, "vault/key/version/kty/size" -> jwk */
	pthread_mutex_t keycache_lock;
	struct json_object *keycache;
	struct dbx_emu_warm *warm; /* background key generation, see world.c */
	atomic_bool stopping;

	const char *state_dir;

	/* ARM throttling (throttle.c): "principal|sub|r or w" -> [tokens, at] */
	struct json_object *throttle_state;
	long throttled; /* 429s answered for an empty bucket */
	/* --persist: the saved state (world, operations, tokens) in state_dir */
	bool persist;
	pthread_mutex_t save_lock;
	unsigned long save_seq, saved_seq; /* last serialized (e->lock), last written */
};

/* A request as the handlers see it. */
struct dbx_emu_req {
	char *uri;	   /* raw request target, as received */
	char *raw_path;	   /* raw path (before '?') */
	const char *query; /* raw query string (after '?'), "" when none */
	const char *path;  /* URL-decoded path (from MHD) */
	const char *method;
	char host[256];	    /* lower-case, port stripped */
	char host_raw[256]; /* as sent (may carry a port), for nextLink */
	enum dbx_emu_service svc;
	struct MHD_Connection *conn;
	char *body;
	size_t body_len, body_cap;
	bool body_overflow;
	bool admin;
	bool imds; /* arrived on the IMDS listener */
};

struct dbx_emu_reply {
	unsigned int status;
	char *body;
	size_t body_len;
	const char *content_type; /* NULL = none (empty body) */
	int nhdr;
	char *hname[DBX_EMU_MAX_HEADERS];
	char *hvalue[DBX_EMU_MAX_HEADERS];
	bool drop;	     /* close the connection without a response */
	bool ratelimit_set;  /* throttle.c sent the x-ms-ratelimit-remaining-* header */
	int stall_ms;	     /* fault rule: stall in the middle of the body */
	bool secret_body;    /* the request body held secrets: do not log it */
	char log_grant[64];  /* token requests: grant type, for the request log */
	char log_scope[512]; /* token requests: scope / resource asked for */
};

/* ---- arm.c: operations ---- */
/* Apply every delayed PATCH whose time has come (e->lock held). */
void dbx_emu_ops_settle(struct dbx_emu *e);

/* ---- main.c: request/reply helpers ---- */
const char *dbx_emu_arg(const struct dbx_emu_req *q, const char *key);
const char *dbx_emu_header(const struct dbx_emu_req *q, const char *name);
void dbx_emu_reply_header(struct dbx_emu_reply *r, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Serialize obj as the body (takes ownership of obj). */
void dbx_emu_reply_json(struct dbx_emu_reply *r, unsigned int status, struct json_object *obj);
/* ARM-shaped error: {"error":{"code":...,"message":...}}. */
void dbx_emu_reply_error(struct dbx_emu_reply *r, unsigned int status, const char *code,
			 const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void dbx_emu_guid(char out[37]);
/* Now as ARM writes it: 2025-05-26T06:50:23.0185023+00:00. */
void dbx_emu_iso_now(char *buf, size_t len);
void dbx_emu_rand_hex(char *out, size_t nbytes);
char *dbx_emu_b64url(const unsigned char *data, size_t len);
/* Split a decoded path into segments; returns count, fills seg (pointers into buf). */
int dbx_emu_split_path(char *buf, char **seg, int max);

/* ---- tls.c ---- */
DBX_EMU_MUST_CHECK int dbx_emu_tls_make(const char *cafile, char **cert_pem, char **key_pem);

/* ---- world.c ---- */
/* Parse a world; NULL + err on failure. */
DBX_EMU_MUST_CHECK struct json_object *dbx_emu_world_parse(const char *text, char *err,
							   size_t errlen);
/* Start generating key material for world in the background (before sharing it). */
void dbx_emu_keys_warm(struct dbx_emu *e, struct json_object *world);
void dbx_emu_keys_stop(struct dbx_emu *e);
/* Fill ver with key material (cache or generate now); e->lock held. */
DBX_EMU_MUST_CHECK int dbx_emu_key_material(struct dbx_emu *e, const char *vault, const char *key,
					    struct json_object *ver);
void dbx_emu_world_replace(struct dbx_emu *e, struct json_object *world);
int dbx_emu_world_page_size(struct dbx_emu *e);
int dbx_emu_world_token_lifetime(struct dbx_emu *e);
/*
 * Lifetime of a token for who (a client or managed identity, may be NULL):
 * the admin override, else who's token_lifetime_s, else the world's.
 */
int dbx_emu_token_lifetime(struct dbx_emu *e, struct json_object *who);
/* Count one issued token in e->token_stats. */
void dbx_emu_token_count(struct dbx_emu *e, const char *grant, const char *credential,
			 const char *aud);
/* The audience a resource (scope minus .default) gets; false when unknown. */
DBX_EMU_MUST_CHECK bool dbx_emu_audience_for(const char *resource, char *aud, size_t len);
struct json_object *dbx_emu_world_array(struct dbx_emu *e, const char *name);
struct json_object *dbx_emu_find_subscription(struct dbx_emu *e, const char *sub);
bool dbx_emu_rg_known(struct dbx_emu *e, const char *sub, const char *rg);
struct json_object *dbx_emu_find_job(struct dbx_emu *e, const char *sub, const char *rg,
				     const char *name);
struct json_object *dbx_emu_find_vault_by_name(struct dbx_emu *e, const char *name);
struct json_object *dbx_emu_find_vault_by_host(struct dbx_emu *e, const char *host);
struct json_object *dbx_emu_find_resource(struct dbx_emu *e, const char *array, const char *sub,
					  const char *rg, const char *name);
struct json_object *dbx_emu_find_client(struct dbx_emu *e, const char *tenant, const char *client);
bool dbx_emu_tenant_known(struct dbx_emu *e, const char *tenant);
/* Split an ARM id; fields are case-insensitive on segment names. */
DBX_EMU_MUST_CHECK bool dbx_emu_id_parse(const char *id, char *sub, char *rg, char *name,
					 size_t len);
const char *dbx_emu_jstr(struct json_object *o, const char *key);
struct json_object *dbx_emu_jpath(struct json_object *o, const char *dotted);
struct json_object *dbx_emu_jarray(struct json_object *o, const char *key);

/*
 * --persist: the mutable state (world, pending operations, issued tokens,
 * fail-next-patch, token lifetime override) as one JSON text (malloc'd;
 * e->lock held), and its load at start-up (0, or -1 with err).
 */
char *dbx_emu_state_dump(struct dbx_emu *e);
DBX_EMU_MUST_CHECK int dbx_emu_state_load(struct dbx_emu *e, const char *text, char *err,
					  size_t errlen);

/* tokens */
DBX_EMU_MUST_CHECK const char *dbx_emu_token_issue(struct dbx_emu *e, const char *tenant,
						   const char *client, const char *oid,
						   const char *aud, int lifetime);
const struct dbx_emu_token *dbx_emu_token_find(struct dbx_emu *e, const char *token);

/* ---- cmk.c: the service's customer-managed key rules (e->lock held) ---- */
enum dbx_emu_ssem {
	DBX_EMU_SSEM_OK = 0,
	DBX_EMU_SSEM_INVALID_SCHEME,
	DBX_EMU_SSEM_INVALID_HOST,
	DBX_EMU_SSEM_INVALID_URL,
	DBX_EMU_SSEM_VAULT_NOT_FOUND,
	DBX_EMU_SSEM_NO_PURGE_PROTECTION,
	DBX_EMU_SSEM_KEY_NOT_FOUND,
	DBX_EMU_SSEM_KEY_DISABLED,
	DBX_EMU_SSEM_KEY_EXPIRED,
	DBX_EMU_SSEM_KEY_TYPE,
	DBX_EMU_SSEM_UAI_ABSENT,
	DBX_EMU_SSEM_UAI_NOT_FOUND,
	DBX_EMU_SSEM_UAI_LIMIT,
	DBX_EMU_SSEM_SYSTEM_ABSENT,
	DBX_EMU_SSEM_NO_ACCESS,
	DBX_EMU_SSEM_CROSS_TENANT,
};
/* The table's code ("SsemUserError...") and error details text of s. */
const char *dbx_emu_ssem_code(enum dbx_emu_ssem s);
const char *dbx_emu_ssem_message(enum dbx_emu_ssem s);
/* Limit on a job's user-assigned identities (world "limits", default 10). */
int dbx_emu_uai_limit(struct dbx_emu *e);
/* Identity rules of any PATCH (the user-assigned limit). */
DBX_EMU_MUST_CHECK enum dbx_emu_ssem dbx_emu_identity_check(struct dbx_emu *e,
							    struct json_object *identity);
/* Can the service use the job's customer-managed key? OK for other keys. */
DBX_EMU_MUST_CHECK enum dbx_emu_ssem dbx_emu_cmk_check(struct dbx_emu *e, struct json_object *job,
						       const char *arm_host);
/* properties.error = the code's CloudError, target KeyEncryptionKey. */
void dbx_emu_kek_error_set(struct json_object *job, enum dbx_emu_ssem s);
/* Drop a key error and resume stages WaitingForCustomerActionForKek. */
void dbx_emu_kek_error_clear(struct json_object *job);
/* Move a job to stage status (admin), re-checking the key at DataCopy. */
DBX_EMU_MUST_CHECK int dbx_emu_job_advance(struct dbx_emu *e, struct json_object *job,
					   const char *status);

/* ---- service handlers (called with e->lock held) ---- */
void dbx_emu_arm_handle(struct dbx_emu *e, struct dbx_emu_req *q, struct dbx_emu_reply *r);
/*
 * throttle.c: take a token of principal's bucket for sub (NULL: tenant
 * level) when the world enforces throttling; false when empty (r is the 429).
 */
bool dbx_emu_throttle(struct dbx_emu *e, struct dbx_emu_req *q, struct dbx_emu_reply *r,
		      const char *principal, const char *sub);
void dbx_emu_kv_handle(struct dbx_emu *e, struct dbx_emu_req *q, struct dbx_emu_reply *r);
void dbx_emu_entra_handle(struct dbx_emu *e, struct dbx_emu_req *q, struct dbx_emu_reply *r);
void dbx_emu_imds_handle(struct dbx_emu *e, struct dbx_emu_req *q, struct dbx_emu_reply *r);
void dbx_emu_admin_handle(struct dbx_emu *e, struct dbx_emu_req *q, struct dbx_emu_reply *r);

/* ---- admin.c: bookkeeping used by main.c ---- */
const char *dbx_emu_svc_name(enum dbx_emu_service s);
void dbx_emu_record(struct dbx_emu *e, const struct dbx_emu_req *q, const struct dbx_emu_reply *r);
/* Returns the matching fault (count already consumed) or NULL. */
const struct dbx_emu_fault *dbx_emu_fault_match(struct dbx_emu *e, const struct dbx_emu_req *q);
void dbx_emu_fault_reply(const struct dbx_emu_fault *f, const struct dbx_emu_req *q,
			 struct dbx_emu_reply *r);
/* What a rule does to any answer: headers, nextLink, stall, drop after running. */
void dbx_emu_fault_after(const struct dbx_emu_fault *f, const struct dbx_emu_req *q,
			 struct dbx_emu_reply *r);

#endif
