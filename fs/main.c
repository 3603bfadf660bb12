/*
 * main.c: databoxfs [-f] [-d] [-o OPT[,OPT...]] MOUNTPOINT
 *
 * Parses the options with one fuse_opt table and one key function (libfuse
 * hello.c style), checks every value before anything is mounted (a bad
 * value is a clear message and exit status 1), builds the stack and hands
 * it to fuse_main() as private_data:
 *
 *   token requests:  curl -> retry                 (borrowed by the credential)
 *   ARM requests:    curl -> retry -> auth(credential) -> dbx_arm -> cache -> fs
 *   preflight:       the same auth stack -> dbx_keyvault  (ARM and Key Vault scopes)
 *   writes:          fs -> dbx_update_apply(arm, keyvault)
 *
 * Two curl+retry stacks keep ownership simple: the auth layer owns its
 * inner transport, the credential only borrows its own. Everything is torn
 * down after the mount ends. Our own options are consumed here; libfuse's
 * (allow_other, ...) pass through, and default_permissions, fsname and
 * subtype are always added. Interrupts: ops.c turns on cfg->intr in init;
 * the SIGUSR1 handler it needs is installed here (see install_intr_handler).
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <math.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "databoxfs/arm.h"
#include "databoxfs/auth.h"
#include "databoxfs/cloud.h"
#include "databoxfs/http.h"
#include "databoxfs/keyvault.h"
#include "databoxfs/log.h"
#include "databoxfs/update.h"
#include "cache.h"
#include "control.h"
#include "fs.h"
#include "notify.h"
#include "ops.h"
/* after ops.h, which sets FUSE_USE_VERSION: fuse_session_exit() */
#include <fuse_lowlevel.h>
#include "scratch.h"

#define DEFAULT_API_VERSION "2025-07-01"

/*
 * libfuse's multithreaded loop starts worker threads as requests come, up
 * to max_threads (libfuse 3.14 defaults to 10). Writers waiting at open
 * for their order's turn each hold one (admit.h: at most
 * DBX_ADMIT_WAIT_MAX of them); the rest serve readers, the writers whose
 * turn it is and the releases that pass turns on, so none of those queues
 * in the kernel behind the waiting writers.
 */
#define DBX_FUSE_MAX_THREADS (DBX_ADMIT_WAIT_MAX + 32)

struct options {
	char *subscription;
	char *cloud;
	char *credential;
	char *credential_file;
	char *api_version;
	char *cache_ttl;
	char *timeout;
	char *lro_poll;
	char *cafile;
	int cached_ro;	   /* -o cached_ro */
	int dry_run;	   /* -o dry_run: writes check everything, send no PATCH */
	int ro;		   /* -o ro (passed on to libfuse) */
	char **connect_to; /* NULL-terminated */
	size_t n_connect_to;
	int show_help;
	int show_version;
	int foreground;
	int debug;
	int mountpoints;
	char *nonopt[2]; /* [SOURCE] MOUNTPOINT: what mount -t fuse.databoxfs passes */
	int oom;
};

enum {
	KEY_HELP,
	KEY_VERSION,
	KEY_FOREGROUND,
	KEY_DEBUG,
	KEY_CONNECT_TO,
	KEY_RO,
};

#define OPT(t, p)                                                                                  \
	{                                                                                          \
		t, offsetof(struct options, p), 1                                                  \
	}

static const struct fuse_opt option_spec[] = {
    OPT("subscription=%s", subscription),
    OPT("cloud=%s", cloud),
    OPT("credential=%s", credential),
    OPT("credential_file=%s", credential_file),
    OPT("api_version=%s", api_version),
    OPT("cache_ttl=%s", cache_ttl),
    OPT("timeout=%s", timeout),
    OPT("lro_poll=%s", lro_poll),
    OPT("cafile=%s", cafile),
    OPT("cached_ro", cached_ro), /* a flag: sets cached_ro to 1 */
    OPT("dry_run", dry_run),	 /* a flag: sets dry_run to 1 */
    FUSE_OPT_KEY("connect_to=%s", KEY_CONNECT_TO),
    FUSE_OPT_KEY("ro", KEY_RO), /* kept for libfuse and the kernel; files show 0444 */
    FUSE_OPT_KEY("-h", KEY_HELP),
    FUSE_OPT_KEY("--help", KEY_HELP),
    FUSE_OPT_KEY("-V", KEY_VERSION),
    FUSE_OPT_KEY("--version", KEY_VERSION),
    FUSE_OPT_KEY("-f", KEY_FOREGROUND),
    FUSE_OPT_KEY("-d", KEY_DEBUG),
    FUSE_OPT_KEY("debug", KEY_DEBUG),
    FUSE_OPT_END,
};

/* Returns 0 to consume arg, 1 to pass it on to libfuse, -1 on error. */
static int opt_key(void *data, const char *arg, int key, struct fuse_args *outargs)
{
	struct options *o = data;
	char **grown;

	(void)outargs;
	switch (key) {
	case KEY_HELP:
		o->show_help = 1;
		return 0;
	case KEY_VERSION:
		o->show_version = 1;
		return 0;
	case KEY_FOREGROUND:
		o->foreground = 1;
		return 1;
	case KEY_DEBUG:
		o->debug = 1;
		o->foreground = 1;
		return 1;
	case KEY_RO:
		o->ro = 1;
		return 1;
	case KEY_CONNECT_TO:
		grown = realloc(o->connect_to, (o->n_connect_to + 2) * sizeof(*grown));
		if (!grown) {
			o->oom = 1;
			return -1;
		}
		o->connect_to = grown;
		o->connect_to[o->n_connect_to] = strdup(arg + strlen("connect_to="));
		if (!o->connect_to[o->n_connect_to]) {
			o->oom = 1;
			return -1;
		}
		o->connect_to[++o->n_connect_to] = NULL;
		return 0;
	case FUSE_OPT_KEY_NONOPT:
		/*
		 * "databoxfs MOUNTPOINT", or "databoxfs SOURCE MOUNTPOINT" as
		 * mount(8) runs it for an fstab line of type fuse.databoxfs (the
		 * source is a label, like "databoxfs"). Kept aside; the
		 * mountpoint goes back to libfuse once all arguments are read.
		 */
		if (o->mountpoints < 2) {
			o->nonopt[o->mountpoints] = strdup(arg);
			if (!o->nonopt[o->mountpoints]) {
				o->oom = 1;
				return -1;
			}
		}
		o->mountpoints++;
		return 0;
	default:
		return 1;
	}
}

static void usage(const char *prog)
{
	printf(
	    "usage: %s [-f] [-d] [-o OPT[,OPT...]] MOUNTPOINT\n"
	    "\n"
	    "Shows Azure Data Box orders as directories of small control files:\n"
	    "MOUNTPOINT/<subscription>/<resource-group>/<order>/{encryption_type,key_url,...}\n"
	    "Not listed, reachable by name (see databoxfs(8), THE CATALOGUE):\n"
	    "MOUNTPOINT/keyvaults/ (vaults, keys, versions, eligibility, new_key),\n"
	    "MOUNTPOINT/identities/ (user-assigned identities), MOUNTPOINT/by-name/\n"
	    "\n"
	    "databoxfs options:\n"
	    "    -o subscription=ID[:ID...]  show only these subscriptions, by ID or display\n"
	    "                                name (default: all the credential can list)\n"
	    "    -o cloud=NAME               AzureCloud (default), AzureUSGovernment, "
	    "AzureChinaCloud\n"
	    "    -o credential=NAME          auto (default), env, cert, workload, msi, cli\n"
	    "    -o credential_file=PATH     the credential's AZURE_* variables, NAME=VALUE\n"
	    "                                lines, from a file of mode 0600 (see databoxfs(8))\n"
	    "    -o api_version=VERSION      Data Box API version (default %s)\n"
	    "    -o cache_ttl=SECONDS        state older than this is fetched again (default 2;\n"
	    "                                fractions and 0 allowed)\n"
	    "    -o timeout=SECONDS          bound on any one operation (default 120)\n"
	    "    -o lro_poll=SECONDS         longest interval between polls of a long-running\n"
	    "                                operation (default 10; from 1 s, growing)\n"
	    "    -o cafile=PATH              extra trusted CA bundle (TLS is always verified)\n"
	    "    -o cached_ro                read-only mount whose opens and reads are served\n"
	    "                                by the kernel's caches (writes fail EROFS)\n"
	    "    -o dry_run                  writes run every check but send no PATCH; the\n"
	    "                                order's operation file shows what would be sent\n"
	    "    -o connect_to=HOST:PORT:TO_HOST:TO_PORT\n"
	    "                                connect to another address for HOST:PORT, as curl's\n"
	    "                                --connect-to (repeatable)\n"
	    "    -f                          stay in the foreground, log to stderr\n"
	    "    -d                          debug: foreground, debug log lines\n"
	    "\n"
	    "MOUNTPOINT/.databoxfs/ (reachable by name, not listed): version, config, stats\n"
	    "(Prometheus text), health, orders (one tab-separated line per order); see\n"
	    "databoxfs(8), \"THE CONTROL DIRECTORY\".\n"
	    "\n",
	    prog, DEFAULT_API_VERSION);
}

/* A number of seconds >= min (or > 0 when !allow_zero) into ms. -1 on a bad value. */
static long long parse_seconds(const char *name, const char *s, double dflt, bool allow_zero)
{
	double v = dflt;
	char *end = NULL;

	if (s) {
		errno = 0;
		v = strtod(s, &end);
		if (errno || end == s || *end || !isfinite(v) || v < 0 || v > 1e7 ||
		    (!allow_zero && v == 0)) {
			fprintf(stderr, "databoxfs: %s=%s: expected a number of seconds%s\n", name,
				s, allow_zero ? " (0 or more)" : " (more than 0)");
			return -1;
		}
	}
	return (long long)(v * 1000.0 + 0.5);
}

/* HOST:PORT:TO_HOST:TO_PORT, hosts possibly [IPv6], ports empty or numeric. */
static bool valid_connect_to(const char *s)
{
	const char *p = s;

	for (int field = 0; field < 4; field++) {
		const char *start = p;

		if (field % 2 == 0) {
			if (*p == '[') {
				p = strchr(p, ']');
				if (!p)
					return false;
				p++;
			} else {
				p += strcspn(p, ":");
			}
		} else {
			while (*p >= '0' && *p <= '9')
				p++;
			if (p - start > 5)
				return false;
		}
		if (field < 3) {
			if (*p != ':')
				return false;
			p++;
		}
	}
	return *p == '\0';
}

/* Split "A:B:C" into a NULL-terminated array. NULL on a bad list (message printed) or ENOMEM. */
static char **split_subscriptions(const char *s)
{
	size_t n = 1;
	char **v;
	char *copy, *save = NULL, *tok;
	size_t i = 0;

	for (const char *p = s; *p; p++)
		n += *p == ':';
	v = calloc(n + 1, sizeof(*v));
	copy = strdup(s);
	if (!v || !copy)
		goto fail;
	for (tok = strtok_r(copy, ":", &save); tok; tok = strtok_r(NULL, ":", &save)) {
		/* a '/' may only be in a display name: resolve_sub_names() refuses it in an ID */
		if (strlen(tok) > 255) {
			fprintf(stderr,
				"databoxfs: subscription=%s: '%s' is not a subscription ID\n", s,
				tok);
			goto fail;
		}
		v[i] = strdup(tok);
		if (!v[i])
			goto fail;
		i++;
	}
	free(copy);
	if (i == 0) {
		fprintf(stderr, "databoxfs: subscription=%s: expected ID[:ID...]\n", s);
		free(v);
		return NULL;
	}
	return v;
fail:
	for (size_t k = 0; v && k < i; k++)
		free(v[k]);
	free(v);
	free(copy);
	return NULL;
}

static void free_strv(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

static bool valid_api_version(const char *s)
{
	if (!*s || strlen(s) > 32)
		return false;
	for (const char *p = s; *p; p++) {
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') || *p == '-'))
			return false;
	}
	return true;
}

/* Does nothing: its only job is to make a blocking call of the worker thread return EINTR. */
static void on_intr_signal(int sig)
{
	(void)sig;
}

/*
 * With cfg->intr on, libfuse answers a FUSE_INTERRUPT (the writer got
 * Ctrl-C) by sending intr_signal (SIGUSR1) to the worker thread serving the
 * request. libfuse 3.14 installs a handler for it only in fuse_new(), i.e.
 * when intr was set by an option, which libfuse 3 no longer accepts, and
 * not when init() sets it (fixed upstream in 3.17, libfuse PR #958). The
 * default action of SIGUSR1 would kill the mount, so install a no-op
 * handler (no SA_RESTART: the worker's sleep returns EINTR) ourselves.
 */
static int install_intr_handler(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_intr_signal;
	sigemptyset(&sa.sa_mask);
	return sigaction(DBX_INTR_SIGNAL, &sa, NULL);
}

/*
 * SIGTERM, SIGINT and SIGHUP end the mount cleanly: the session exits, the
 * loop returns, fuse_main() unmounts, and the exit status is 0, as from
 * fusermount3 -u (libfuse's own handler makes fuse_main() return 1 after a
 * signal, which systemd shows as a failure). libfuse installs its handler
 * only where the action is still the default, so this one, installed
 * first, is the one that runs. Before the session exists (init has not
 * run) the signal takes its default action: nothing is mounted yet.
 */
static volatile sig_atomic_t term_signal;
static struct fuse_session *volatile term_session;

static void on_term_signal(int sig)
{
	term_signal = sig;
	if (term_session) {
		fuse_session_exit(term_session);
		return;
	}
	signal(sig, SIG_DFL);
	raise(sig);
}

static int install_term_handlers(void)
{
	static const int sigs[] = {SIGTERM, SIGINT, SIGHUP};
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_term_signal; /* no SA_RESTART: the loop's read returns EINTR */
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		if (sigaction(sigs[i], &sa, NULL) != 0)
			return -1;
	}
	return 0;
}

/* The write pipeline asks this before its PATCH: did the writer get a signal (Ctrl-C)? */
static int writer_interrupted(void *ctx)
{
	(void)ctx;
	return fuse_interrupted();
}

/*
 * curl + budget + retry on clock (co->clock too), or NULL with err filled.
 * policy NULL: the SDK default. budget_scope: the ARM scope whose requests
 * keep to ARM's request budget (docs/formats.md, "Reads"), or NULL for none.
 */
static struct dbx_transport *new_stack(const struct dbx_curl_options *co,
				       const struct dbx_retry_policy *policy,
				       const char *budget_scope, const struct dbx_clock *clock,
				       struct dbx_error *err)
{
	struct dbx_transport *t = dbx_http_curl_new(co, err);
	struct dbx_transport *next;

	if (!t)
		return NULL;
	if (budget_scope) {
		next = dbx_http_budget_new(t, budget_scope, NULL, clock);
		if (!next)
			goto nomem;
		t = next;
	}
	next = dbx_http_retry_new(t, policy, clock);
	if (!next)
		goto nomem;
	return next;
nomem:
	dbx_transport_destroy(t);
	dbx_error_set(err, DBX_ENOMEM, "out of memory");
	return NULL;
}

/*
 * A token request made for a system call carries that call's deadline; one
 * made in the background (or before mounting) only its credential's own
 * cap. Either way its retry budget is scaled to -o timeout here: the four
 * retries of the default policy (0.8 + 1.6 + 3.2 + 6.4 s) shrink so that
 * their sum stays under half the timeout, leaving the rest for the ARM
 * call itself.
 */
static struct dbx_retry_policy token_policy(uint64_t timeout_ms)
{
	struct dbx_retry_policy p = {.max_retries = 4, .base_delay_ms = 800, .max_delay_ms = 60000};

	if (p.base_delay_ms * 15 > timeout_ms / 2)
		p.base_delay_ms = timeout_ms / 2 / 15;
	if (p.max_delay_ms > timeout_ms / 4)
		p.max_delay_ms = timeout_ms / 4;
	return p;
}

/*
 * Get the ARM token once before mounting, so that a mount no credential
 * source can serve refuses to start with the chain's message, naming what
 * each source lacked (docs/architecture.md, "Credentials"), instead of mounting a tree whose every
 * read fails. Only "no source is available here" (DBX_EAUTH without an
 * HTTP status) stops the mount: a configured source that Entra refuses, or
 * an authority that cannot be reached now, lets the mount start, and reads
 * then fail with the real errno and explain why in errors.
 */
static enum dbx_err probe_credential(struct dbx_transport *auth, const struct dbx_cloud *cloud,
				     struct dbx_error *err)
{
	struct dbx_error e = {0};
	enum dbx_err rc;

	rc = dbx_http_auth_prime(auth, cloud->arm_scope, &e);
	if (rc == DBX_OK)
		return DBX_OK;
	if ((rc == DBX_EAUTH && e.http_status == 0) || rc == DBX_ECONFIG) {
		*err = e;
		return rc;
	}
	dbx_log(DBX_LOG_WARN, "no ARM token yet (%s): %s; mounting anyway", dbx_err_str(rc),
		e.message);
	return DBX_OK;
}

/* --help or --version: our text, then libfuse's own; the exit status. */
static int print_info(struct fuse_args *args, const struct options *o, const char *prog)
{
	if (o->show_help) {
		usage(prog);
		/* libfuse prints its own options; an empty argv[0] skips its usage line. */
		if (fuse_opt_add_arg(args, "--help") != 0)
			return 1;
		args->argv[0][0] = '\0';
		return fuse_main(args->argc, args->argv, dbx_fuse_operations(), NULL) ? 1 : 0;
	}
	printf("databoxfs version %s\n", DBX_VERSION);
	fflush(stdout); /* before libfuse prints its own versions */
	if (fuse_opt_add_arg(args, "--version") != 0)
		return 1;
	return fuse_main(args->argc, args->argv, dbx_fuse_operations(), NULL) ? 1 : 0;
}

/* The options' values, checked: what check_options() gives build_mount(). */
struct settings {
	const struct dbx_cloud *cloud;
	char **subs; /* -o subscription= as a NULL-terminated list (free_strv), or NULL */
	uint64_t ttl_ms;
	uint64_t timeout_ms;
	uint64_t lro_ms;
	bool cached_ro;
	bool read_only; /* -o ro or -o cached_ro */
};

/*
 * Check every value before anything is created or mounted: false after
 * printing what is wrong (exit status 1). On success *s holds the values
 * (s->subs for the caller to free, also on failure) and args has the
 * mountpoint and the options we always pass to libfuse.
 */
static bool check_options(const struct options *o, struct fuse_args *args, const char *prog,
			  struct settings *s)
{
	long long ttl_ms, timeout_ms, lro_ms;
	char threads[32];

	if (o->mountpoints < 1 || o->mountpoints > 2) {
		fprintf(stderr, "databoxfs: %s\n",
			o->mountpoints ? "more than one mountpoint given" : "no mountpoint given");
		fprintf(stderr, "usage: %s [-f] [-d] [-o OPT[,OPT...]] MOUNTPOINT (see --help)\n",
			prog);
		return false;
	}
	if (fuse_opt_add_arg(args, o->nonopt[o->mountpoints - 1]) != 0) {
		fprintf(stderr, "databoxfs: out of memory\n");
		return false;
	}
	ttl_ms = parse_seconds("cache_ttl", o->cache_ttl, 2, true);
	timeout_ms = parse_seconds("timeout", o->timeout, 120, false);
	lro_ms = parse_seconds("lro_poll", o->lro_poll, 10, false);
	if (ttl_ms < 0 || timeout_ms < 0 || lro_ms < 0)
		return false;
	s->ttl_ms = (uint64_t)ttl_ms;
	s->timeout_ms = (uint64_t)timeout_ms;
	s->lro_ms = (uint64_t)lro_ms;
	s->cloud = dbx_cloud_default();
	if (o->cloud) {
		s->cloud = dbx_cloud_find(o->cloud);
		if (!s->cloud) {
			fprintf(stderr,
				"databoxfs: cloud=%s: unknown cloud (expected AzureCloud, "
				"AzureUSGovernment or AzureChinaCloud)\n",
				o->cloud);
			return false;
		}
	}
	if (o->api_version && !valid_api_version(o->api_version)) {
		fprintf(stderr, "databoxfs: api_version=%s: expected a version like %s\n",
			o->api_version, DEFAULT_API_VERSION);
		return false;
	}
	if (o->cafile && access(o->cafile, R_OK) != 0) {
		fprintf(stderr, "databoxfs: cafile=%s: %s\n", o->cafile, strerror(errno));
		return false;
	}
	for (size_t i = 0; i < o->n_connect_to; i++) {
		if (!valid_connect_to(o->connect_to[i])) {
			fprintf(stderr,
				"databoxfs: connect_to=%s: expected HOST:PORT:TO_HOST:TO_PORT\n",
				o->connect_to[i]);
			return false;
		}
	}
	if (o->subscription) {
		s->subs = split_subscriptions(o->subscription);
		if (!s->subs)
			return false;
	}
	/* -o cached_ro: a read-only mount, so the kernel refuses every write itself. */
	s->cached_ro = o->cached_ro != 0;
	s->read_only = s->cached_ro || o->ro;
	if (s->cached_ro && fuse_opt_add_arg(args, "-oro") != 0)
		return false;
	/* First, so that a max_threads= of the user's own, which libfuse reads later, wins. */
	snprintf(threads, sizeof(threads), "-omax_threads=%d", DBX_FUSE_MAX_THREADS);
	if (fuse_opt_insert_arg(args, 1, threads) != 0)
		return false;
	return fuse_opt_add_arg(args, "-odefault_permissions,fsname=databoxfs,subtype=databoxfs") ==
	       0;
}

/* What the mount is made of; mount_free() tears it down. */
struct mount {
	struct dbx_credfile *credfile; /* -o credential_file=, or NULL */
	struct dbx_transport *token_stack;
	struct dbx_credential *cred;
	struct dbx_transport *auth; /* owns the ARM stack under it */
	struct dbx_arm *arm;	    /* writes: the whole timeout for retries */
	struct dbx_arm *arm_read;   /* the cache's reads: DBX_ARM_READ_RETRY_MS of retries */
	struct dbx_keyvault *kv;
	struct dbx_cache *cache;
	struct dbx_control *control; /* MOUNT/.databoxfs/ */
	struct dbx_update_config uc;
	struct dbx_fs fs;    /* private_data of the mount; fs.update is &uc */
	char principal[512]; /* uc.principal: who the credential is (audit trail) */
};

/* Is s shaped like a subscription ID (a GUID, 8-4-4-4-12 hex digits)? */
static bool guid_shaped(const char *s)
{
	static const char shape[] = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";

	if (strlen(s) != sizeof(shape) - 1)
		return false;
	for (size_t i = 0; shape[i]; i++) {
		if (shape[i] == '-' ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
			return false;
	}
	return true;
}

/* -o subscription= by name: the subscriptions whose ID or display name is want. */
struct sub_match {
	const char *want;
	char id[256], other[256];
	size_t by_id, by_name;
};

static int match_sub(void *ctx, const char *id, const char *display)
{
	struct sub_match *m = ctx;

	if (strcasecmp(id, m->want) == 0) {
		m->by_id++;
	} else if (strcmp(display, m->want) == 0) {
		if (m->by_name++ == 0)
			snprintf(m->id, sizeof(m->id), "%s", id);
		else
			snprintf(m->other, sizeof(m->other), "%s", id);
	}
	return 0;
}

/*
 * -o subscription= takes display names too (docs/formats.md, "Options"):
 * an entry that is not shaped like a subscription ID and is no
 * subscription's ID is replaced by the ID of the one subscription of that
 * display name; a name that two subscriptions share, or that none has, is
 * refused. GET /subscriptions is sent only when some entry is a name.
 */
static bool resolve_sub_names(struct dbx_arm *arm, char **subs, struct dbx_error *err)
{
	for (size_t i = 0; subs && subs[i]; i++) {
		struct sub_match m = {.want = subs[i]};
		char *id;

		if (guid_shaped(subs[i]))
			continue;
		if (dbx_arm_list_subscription_names(arm, match_sub, &m, err) != DBX_OK)
			return false;
		if (m.by_id)
			continue;
		if (m.by_name == 0) {
			dbx_error_set(
			    err, DBX_ECONFIG,
			    "subscription=%s: no subscription has that ID or display name",
			    subs[i]);
			return false;
		}
		if (m.by_name > 1) {
			dbx_error_set(
			    err, DBX_ECONFIG,
			    "subscription=%s: ambiguous, the display name of %s and %s (and "
			    "maybe more); name it by ID",
			    subs[i], m.id, m.other);
			return false;
		}
		id = strdup(m.id);
		if (!id) {
			dbx_error_set(err, DBX_ENOMEM, "out of memory");
			return false;
		}
		free(subs[i]);
		subs[i] = id;
	}
	return true;
}

/*
 * MOUNT/.databoxfs/ (control.h) on m's cache. Its config file shows the
 * effective options, each as the mount uses it, and never a secret: of
 * the credential only the source's name and the credential_file's path
 * (never its contents). False on ENOMEM.
 */
static bool build_control(const struct options *o, const struct settings *s,
			  const struct dbx_clock *clock, struct mount *m)
{
	struct dbx_control_config cfg = {0};
	struct dbx_control_setting *v;
	char ttl[32], timeout[32], lro[32];
	size_t n = 0;

	v = calloc(13 + o->n_connect_to, sizeof(*v));
	if (!v)
		return false;
	snprintf(ttl, sizeof(ttl), "%g", (double)s->ttl_ms / 1000.0);
	snprintf(timeout, sizeof(timeout), "%g", (double)s->timeout_ms / 1000.0);
	snprintf(lro, sizeof(lro), "%g", (double)s->lro_ms / 1000.0);
	v[n++] = (struct dbx_control_setting){"subscription", o->subscription};
	v[n++] = (struct dbx_control_setting){"cloud", s->cloud->name};
	v[n++] = (struct dbx_control_setting){"credential", o->credential ? o->credential : "auto"};
	v[n++] = (struct dbx_control_setting){"credential_file", o->credential_file};
	v[n++] = (struct dbx_control_setting){"api_version", o->api_version ? o->api_version
									    : DEFAULT_API_VERSION};
	v[n++] = (struct dbx_control_setting){"cache_ttl", ttl};
	v[n++] = (struct dbx_control_setting){"timeout", timeout};
	v[n++] = (struct dbx_control_setting){"lro_poll", lro};
	v[n++] = (struct dbx_control_setting){"cafile", o->cafile};
	for (size_t i = 0; i < o->n_connect_to; i++)
		v[n++] = (struct dbx_control_setting){"connect_to", o->connect_to[i]};
	v[n++] = (struct dbx_control_setting){"cached_ro", s->cached_ro ? "1" : "0"};
	v[n++] = (struct dbx_control_setting){"ro", s->read_only ? "1" : "0"};
	v[n++] = (struct dbx_control_setting){"dry_run", o->dry_run ? "1" : "0"};
	cfg.cache = m->cache;
	cfg.clock = clock;
	cfg.ttl_ms = s->ttl_ms;
	cfg.api_version = o->api_version ? o->api_version : DEFAULT_API_VERSION;
	cfg.settings = v;
	cfg.n_settings = n;
	m->control = dbx_control_new(&cfg);
	free(v);
	m->fs.control = m->control;
	return m->control != NULL;
}

/*
 * Who the credential is, as far as its configuration says (no request, no
 * token, no secret): the application (client) ID and tenant of a service
 * principal or workload identity, a managed identity (with its client ID
 * when one is chosen), or the Azure CLI's signed-in account. The audit
 * trail names it (docs/formats.md, "Audit trail").
 */
static void describe_principal(const char *credential, const struct dbx_env *env, char *out,
			       size_t size)
{
	const char *cid = env->get(env->ctx, "AZURE_CLIENT_ID");
	const char *tid = env->get(env->ctx, "AZURE_TENANT_ID");
	bool sp = cid && *cid && tid && *tid;

	if (!strcmp(credential, "msi"))
		snprintf(out, size, "managed identity%s%s", cid && *cid ? " client_id=" : "",
			 cid && *cid ? cid : "");
	else if (!strcmp(credential, "cli"))
		snprintf(out, size, "%s", "Azure CLI signed-in account");
	else if (sp)
		snprintf(out, size, "client_id=%s tenant=%s (credential %s)", cid, tid, credential);
	else
		snprintf(out, size, "credential %s (managed identity or Azure CLI account)",
			 credential);
	for (char *c = out; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == '"' || *c == 0x7f)
			*c = '?';
}

/*
 * Build the HTTP stacks and everything on them, on clock (this file's
 * header comment draws them): the token stack and the credential, the
 * auth stack (its token fetched once, see probe_credential), ARM, Key
 * Vault, the cache, the write config and the fs state. True, or false
 * with err saying what failed; m holds what was built either way.
 */
static bool build_mount(const struct options *o, const struct settings *s,
			const struct dbx_clock *clock, struct mount *m, struct dbx_error *err)
{
	struct dbx_curl_options co = {0};
	struct dbx_retry_policy tpolicy = token_policy(s->timeout_ms);
	struct dbx_cache_config cc = {0};
	struct dbx_transport *arm_stack;

	co.cafile = o->cafile;
	co.connect_to = (const char *const *)o->connect_to;
	co.verbose = o->debug;
	co.clock = clock;
	m->token_stack = new_stack(&co, &tpolicy, NULL, clock, err);
	if (!m->token_stack)
		return false;
	m->cred = dbx_credential_new(
	    o->credential ? o->credential : "auto", m->token_stack, s->cloud,
	    m->credfile ? dbx_credfile_env(m->credfile, NULL) : dbx_env_process(), clock, err);
	if (!m->cred)
		return false;
	arm_stack = new_stack(&co, NULL, s->cloud->arm_scope, clock, err);
	if (!arm_stack)
		return false;
	m->auth = dbx_http_auth_new(arm_stack, m->cred, clock);
	if (!m->auth) {
		dbx_transport_destroy(arm_stack);
		goto nomem;
	}
	if (probe_credential(m->auth, s->cloud, err) != DBX_OK)
		return false;
	m->arm =
	    dbx_arm_new(m->auth, s->cloud, o->api_version ? o->api_version : DEFAULT_API_VERSION,
			s->timeout_ms, clock);
	if (!m->arm)
		goto nomem;
	if (!resolve_sub_names(m->arm, s->subs, err))
		return false;
	m->kv = dbx_keyvault_new(m->arm, m->auth, s->timeout_ms);
	if (!m->kv)
		goto nomem;
	/* Reads get a shorter retry budget than writes (docs/formats.md, "Reads"). */
	m->arm_read =
	    dbx_arm_new(m->auth, s->cloud, o->api_version ? o->api_version : DEFAULT_API_VERSION,
			s->timeout_ms, clock);
	if (!m->arm_read)
		goto nomem;
	dbx_arm_set_retry_budget(m->arm_read, DBX_ARM_READ_RETRY_MS);
	cc.arm = m->arm_read;
	cc.clock = clock;
	cc.ttl_ms = s->ttl_ms;
	cc.subscriptions = (const char *const *)s->subs;
	cc.on_change = dbx_ops_cache_changed;
	cc.on_change_ctx = &m->fs;
	m->cache = dbx_cache_new(&cc);
	if (!m->cache)
		goto nomem;
	m->fs.cache = m->cache;
	m->fs.uid = getuid();
	m->fs.gid = getgid();
	m->uc.arm = m->arm;
	m->uc.kv = m->kv;
	m->uc.cloud = s->cloud;
	m->uc.clock = clock;
	m->uc.timeout_ms = s->timeout_ms;
	m->uc.lro_poll_ms = s->lro_ms;
	m->uc.interrupted = writer_interrupted;
	m->uc.dry_run = o->dry_run != 0;
	describe_principal(o->credential ? o->credential : "auto",
			   m->credfile ? dbx_credfile_env(m->credfile, NULL) : dbx_env_process(),
			   m->principal, sizeof(m->principal));
	m->uc.principal = m->principal;
	/* cached_ro: the mount does not write (EROFS from the kernel first: a ro mount). */
	m->fs.update = s->cached_ro ? NULL : &m->uc;
	m->fs.cached_ro = s->cached_ro;
	m->fs.read_only = s->read_only;
	/* docs/architecture.md, "Kernel caches": at most 1 s, never past cache_ttl. */
	m->fs.kernel_ttl_ms = s->ttl_ms < 1000 ? s->ttl_ms : 1000;
	m->fs.kview = dbx_kview_new();
	if (!m->fs.kview)
		goto nomem;
	{
		/* keyvaults/, identities/, by-name/ (docs/formats.md, "The catalogue"). */
		struct dbx_catalogue_config cat = {
		    .arm = m->arm,
		    .kv = m->kv,
		    .cache = m->cache,
		    .clock = clock,
		    .ttl_ms = s->ttl_ms,
		};

		m->fs.catalogue = dbx_catalogue_new(&cat);
		if (!m->fs.catalogue)
			goto nomem;
	}
	if (!build_control(o, s, clock, m))
		goto nomem;
	return true;
nomem:
	dbx_error_set(err, DBX_ENOMEM, "out of memory");
	return false;
}

/* Tear down what build_mount() built (any part of it), the last built first. */
static void mount_free(struct mount *m)
{
	dbx_catalogue_free(m->fs.catalogue);
	dbx_kview_free(m->fs.kview);
	dbx_admit_free(m->fs.admit);
	dbx_scratch_free(m->fs.scratch);
	dbx_control_free(m->control);
	dbx_cache_free(m->cache);
	dbx_keyvault_free(m->kv);
	dbx_arm_free(m->arm);
	dbx_arm_free(m->arm_read);
	dbx_transport_destroy(m->auth);
	dbx_credential_destroy(m->cred);
	dbx_transport_destroy(m->token_stack);
	dbx_credfile_free(m->credfile);
}

/*
 * Under systemd (Type=notify; README.md, "Running it as a service"):
 * with $NOTIFY_SOCKET set, READY=1 goes to it once the mount answers
 * through the kernel and holds its ARM token (notify.h). The watcher must
 * run in the process that serves the mount, which without -f is the child
 * fuse_main() daemonizes into, and the first code of ours that runs there
 * is init: so the operations fuse_main() gets are ops.c's with init
 * wrapped. libfuse passes init nothing of ours but private_data, which is
 * the fs's, hence this one static of the program.
 */
static struct service {
	char *socket; /* $NOTIFY_SOCKET, taken out of the environment; NULL: none */
	char mountpoint[PATH_MAX];
	const struct mount *m;
	const char *scope;
	const struct dbx_clock *clock;
	struct fuse_operations ops; /* ops.c's, init wrapped */
	struct dbx_ready *ready;
} service;

/* Between tries of the ARM token when the mount started without one. */
#define SERVICE_RETRY_MS 5000

static enum dbx_err service_check(void *ctx, struct dbx_error *err)
{
	(void)ctx;
	return dbx_http_auth_prime(service.m->auth, service.scope, err);
}

static void *service_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	void *fs = dbx_fuse_operations()->init(conn, cfg);

	term_session = fuse_get_session(fuse_get_context()->fuse); /* on_term_signal's */
	if (!service.socket)
		return fs;
	service.ready = dbx_ready_start(service.socket, service.mountpoint, service_check, NULL,
					SERVICE_RETRY_MS, service.clock);
	if (!service.ready)
		dbx_log(DBX_LOG_ERR, "cannot start the readiness watcher: %s", strerror(errno));
	return fs;
}

/*
 * The operations to mount with: ops.c's with init wrapped, to hand the
 * session to on_term_signal and, with $NOTIFY_SOCKET set, to start the
 * readiness watcher. Call before anything
 * is built (no thread exists yet): the variable is taken out of the
 * environment, so no child (az) inherits it.
 */
static const struct fuse_operations *mount_operations(const struct options *o,
						      const struct mount *m,
						      const struct settings *s,
						      const struct dbx_clock *clock)
{
	const char *sock = getenv("NOTIFY_SOCKET");

	service.ops = *dbx_fuse_operations();
	service.ops.init = service_init;
	if (!sock || !*sock)
		return &service.ops;
	service.socket = strdup(sock);
	unsetenv("NOTIFY_SOCKET");
	if (!service.socket || !realpath(o->nonopt[o->mountpoints - 1], service.mountpoint)) {
		fprintf(stderr,
			"databoxfs: NOTIFY_SOCKET is set but readiness cannot be told: %s\n",
			strerror(errno));
		free(service.socket);
		service.socket = NULL;
		return &service.ops;
	}
	service.m = m;
	service.scope = s->cloud->arm_scope;
	service.clock = clock;
	return &service.ops;
}

static void options_free(struct options *o)
{
	free_strv(o->connect_to);
	free(o->subscription);
	free(o->cloud);
	free(o->credential);
	free(o->credential_file);
	free(o->api_version);
	free(o->cache_ttl);
	free(o->timeout);
	free(o->lro_poll);
	free(o->cafile);
	free(o->nonopt[0]);
	free(o->nonopt[1]);
}

/*
 * malloc tuned for a daemon of many mostly idle threads, unless the
 * environment tunes it (MALLOC_ARENA_MAX, MALLOC_MMAP_THRESHOLD_). glibc
 * gives each of up to 8 x cores threads an arena of its own, and raises
 * its mmap threshold each time a large block is freed, after which the
 * large blocks (libfuse's per-thread request buffers, response bodies)
 * come from the arenas and fragment them. The mount's worker threads (up
 * to 64) mostly wait on the network, so neither buys speed; under
 * long_load VmRSS kept rising 8-17 % a minute. With two arenas and a
 * fixed 64 KiB threshold it levels off (about 30 MB, +2 % over the second
 * minute).
 */
static void tune_malloc(void)
{
#ifdef M_ARENA_MAX
	if (!getenv("MALLOC_ARENA_MAX"))
		mallopt(M_ARENA_MAX, 2);
#endif
#ifdef M_MMAP_THRESHOLD
	if (!getenv("MALLOC_MMAP_THRESHOLD_"))
		mallopt(M_MMAP_THRESHOLD, 64 * 1024);
#endif
}

int main(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	const struct dbx_clock *clock = dbx_clock_system(); /* the one clock of the mount */
	struct options o = {0};
	struct settings s = {0};
	struct mount m = {0};
	struct dbx_error err = {0};
	const struct fuse_operations *ops;
	int ret = 1;

	tune_malloc();
	if (fuse_opt_parse(&args, &o, option_spec, opt_key) == -1) {
		if (o.oom)
			fprintf(stderr, "databoxfs: out of memory\n");
		goto out;
	}
	if (o.show_help || o.show_version) {
		ret = print_info(&args, &o, argv[0]);
		goto out;
	}
	if (!check_options(&o, &args, argv[0], &s))
		goto out;
	ops = mount_operations(&o, &m, &s, clock);
	dbx_log_init(o.foreground || o.debug, o.debug);
	/*
	 * Read once, here, before any thread or child exists: its variables
	 * come before the process environment's for the credential chain.
	 */
	if (o.credential_file &&
	    dbx_credfile_load(o.credential_file, getuid(), &m.credfile, &err) != DBX_OK)
		goto fail;
	if (!build_mount(&o, &s, clock, &m, &err))
		goto fail;
	if (install_intr_handler() != 0 || install_term_handlers() != 0) {
		dbx_error_set(&err, DBX_ECONFIG, "cannot install the signal handlers: %s",
			      strerror(errno));
		goto fail;
	}
	ret = fuse_main(args.argc, args.argv, ops, &m.fs);
	if (term_signal) {
		dbx_log(DBX_LOG_INFO, "unmounted on signal %d", (int)term_signal);
		ret = 0; /* a clean unmount on request */
	} else if (ret != 0) {
		ret = 1;
	}
	goto out;
fail:
	fprintf(stderr, "databoxfs: %s\n", err.message[0] ? err.message : dbx_err_str(err.err));
	ret = 1;
out:
	dbx_ready_stop(service.ready);
	free(service.socket);
	memset(&service, 0, sizeof(service));
	mount_free(&m);
	free_strv(s.subs);
	options_free(&o);
	fuse_opt_free_args(&args);
	return ret;
}
