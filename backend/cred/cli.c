/*
 * cred/cli.c: the Azure CLI credential (docs/architecture.md, "Credentials", last source;
 * docs/azure.md, "Credential sources"), for a developer who ran `az login`.
 *
 * Each token request runs
 *   az account get-access-token --output json --resource R [--tenant T]
 * where R is the scope without "/.default" and T is AZURE_TENANT_ID when set
 * (as azure-identity does). az is looked up on the PATH of the credential's
 * environment (absolute entries only) and started with posix_spawn: no
 * shell, argv only, so nothing in R or T is ever interpreted, and the token
 * never appears on a command line. The child runs from "/", in its own
 * process group, with stdin on /dev/null and the parent's environment minus
 * the variables that hold secrets (AZURE_CLIENT_SECRET,
 * AZURE_CLIENT_CERTIFICATE_PASSWORD, IDENTITY_HEADER, MSI_SECRET), plus
 * AZURE_CORE_NO_COLOR=true. Its stdout (at most 64 KiB) and stderr are read
 * through pipes; after 10 s, or at the caller's deadline when that comes
 * first (then DBX_ETIMEDOUT), the whole group is killed and the child
 * reaped. The answer's accessToken (a string) and expires_on (unix time as
 * a number, newer CLIs; preferred) or expiresOn (naive local time
 * "YYYY-MM-DD HH:MM:SS[.ffffff]") make the token; null is absent, any
 * other type or a key twice is a malformed answer. stdout is wiped once
 * parsed.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cred/common.h"

#define CLI_TIMEOUT_MS 10000u
#define STDOUT_MAX     (64 * 1024)
#define STDERR_MAX     (8 * 1024)
#define DEFAULT_PATH   "/usr/local/bin:/usr/bin:/bin"

extern char **environ;

static unsigned timeout_hook_ms;       /* test hook: 0 means CLI_TIMEOUT_MS */
static char *const *base_environ_hook; /* test hook: NULL means environ */

void dbx_cred_cli_set_timeout_ms(unsigned ms)
{
	timeout_hook_ms = ms;
}

void dbx_cred_cli_set_base_environ(char *const *envp)
{
	base_environ_hook = envp;
}

struct cli_cred {
	struct dbx_credential base;
	const struct dbx_clock *clock; /* runs in real time: it times a child process */
	char *path;		       /* PATH to find az on */
	char *tenant;		       /* AZURE_TENANT_ID, or NULL */
};

/* Variables the child must not inherit: they hold other sources' secrets. */
static const char *const secret_vars[] = {
    "AZURE_CLIENT_SECRET",
    "AZURE_CLIENT_CERTIFICATE_PASSWORD",
    "IDENTITY_HEADER",
    "MSI_SECRET",
};

/* azure-identity's scope and tenant rules, and never an option-like value. */
static bool safe_arg(const char *s, const char *extra)
{
	if (!*s || *s == '-')
		return false;
	for (; *s; s++) {
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || strchr(extra, *s)))
			return false;
	}
	return true;
}

/* The absolute path of an executable "az" on path, or NULL (errno ENOENT or ENOMEM). */
static char *find_az(const char *path)
{
	const char *p = path;

	while (*p) {
		size_t n = strcspn(p, ":");
		struct stat st;
		char *cand = NULL;

		/* Relative entries (and "" for the cwd) are skipped: a mount must not run ./az. */
		if (n > 0 && p[0] == '/') {
			if (asprintf(&cand, "%.*s/az", (int)n, p) < 0) {
				errno = ENOMEM;
				return NULL;
			}
			if (stat(cand, &st) == 0 && S_ISREG(st.st_mode) && access(cand, X_OK) == 0)
				return cand;
			free(cand);
		}
		p += n;
		if (*p == ':')
			p++;
	}
	errno = ENOENT;
	return NULL;
}

/* The child's environment: base minus secrets, PATH replaced, AZURE_CORE_NO_COLOR=true. */
static char **child_environ(char *const *base, const char *path_line)
{
	size_t n = 0;
	size_t k = 0;
	char **envp;

	while (base && base[n])
		n++;
	envp = calloc(n + 3, sizeof(*envp));
	if (!envp)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		size_t name_len = strcspn(base[i], "=");
		bool drop = (name_len == 4 && strncmp(base[i], "PATH", 4) == 0) ||
			    (name_len == 19 && strncmp(base[i], "AZURE_CORE_NO_COLOR", 19) == 0);

		for (size_t s = 0; s < sizeof(secret_vars) / sizeof(secret_vars[0]); s++) {
			if (strlen(secret_vars[s]) == name_len &&
			    strncmp(base[i], secret_vars[s], name_len) == 0)
				drop = true;
		}
		if (!drop)
			envp[k++] = base[i];
	}
	envp[k++] = (char *)path_line;
	envp[k++] = (char *)"AZURE_CORE_NO_COLOR=true";
	envp[k] = NULL;
	return envp;
}

struct child_output {
	char out[STDOUT_MAX + 1];
	size_t out_len;
	bool out_overflow;
	char err[STDERR_MAX + 1];
	size_t err_len;
	bool timed_out;
	int status; /* of waitpid, when have_status */
	bool have_status;
};

/* Read one chunk from fd into buf (*len of cap used); false at EOF. Bytes past cap are dropped. */
static bool drain(int fd, char *buf, size_t *len, size_t cap, bool *overflow)
{
	char scratch[4096];
	ssize_t n;

	if (*len < cap)
		n = read(fd, buf + *len, cap - *len);
	else
		n = read(fd, scratch, sizeof(scratch));
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return true;
	if (n <= 0)
		return false;
	if (*len < cap)
		*len += (size_t)n;
	else if (overflow)
		*overflow = true;
	explicit_bzero(scratch, sizeof(scratch));
	return true;
}

/* Kill the child's process group and reap the child. */
static void kill_child(pid_t pid, struct child_output *o)
{
	kill(-pid, SIGKILL);
	while (waitpid(pid, &o->status, 0) < 0 && errno == EINTR)
		;
	o->have_status = false;
}

/* Reap the child if it has exited; true once its status is known (or unknowable). */
static bool reaped(pid_t pid, struct child_output *o)
{
	pid_t w;

	if (o->have_status)
		return true;
	do {
		w = waitpid(pid, &o->status, WNOHANG);
	} while (w < 0 && errno == EINTR);
	if (w == pid)
		o->have_status = true;
	return w != 0; /* w < 0: ECHILD, SIGCHLD ignored by the program; status unknown */
}

/*
 * Collect the child's stdout and stderr until both pipes close and it has
 * exited, or until the deadline (then its process group is killed and
 * o->timed_out set). Once the child has exited, a descendant still holding
 * the pipes gets EXIT_GRACE_MS more, then is left alone.
 */
#define EXIT_GRACE_MS 200u
#define POLL_SLICE_MS 50u
static void collect(const struct dbx_clock *clock, pid_t pid, int out_fd, int err_fd,
		    uint64_t deadline, struct child_output *o)
{
	struct pollfd fds[2] = {{.fd = out_fd, .events = POLLIN}, {.fd = err_fd, .events = POLLIN}};
	uint64_t stop = deadline;
	bool exited = false;

	for (;;) {
		uint64_t now = dbx_clock_now_ms(clock);
		uint64_t wait;

		if (!exited && reaped(pid, o)) {
			exited = true;
			if (now + EXIT_GRACE_MS < stop)
				stop = now + EXIT_GRACE_MS;
		}
		if (exited && fds[0].fd < 0 && fds[1].fd < 0)
			return;
		if (now >= stop) {
			if (exited)
				return;
			o->timed_out = true;
			kill_child(pid, o);
			return;
		}
		wait = stop - now < POLL_SLICE_MS ? stop - now : POLL_SLICE_MS;
		if (fds[0].fd < 0 && fds[1].fd < 0) {
			clock->sleep_ms(clock->ctx, wait); /* pipes closed: wait for the exit */
			continue;
		}
		if (poll(fds, 2, (int)wait) <= 0)
			continue;
		if (fds[0].revents &&
		    !drain(out_fd, o->out, &o->out_len, STDOUT_MAX, &o->out_overflow))
			fds[0].fd = -1;
		if (o->out_overflow) {
			if (!exited)
				kill_child(pid, o);
			return;
		}
		if (fds[1].revents && !drain(err_fd, o->err, &o->err_len, STDERR_MAX, NULL))
			fds[1].fd = -1;
	}
}

/*
 * Start az with argv and envp; its stdout/stderr go to the write ends of
 * the pipes. Returns 0 or an errno value.
 */
static int spawn_az(const char *az, char *const *argv, char *const *envp, int out_w, int err_w,
		    pid_t *pid)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none;
	sigset_t defaults;
	int rc;

	sigemptyset(&none);
	sigemptyset(&defaults);
	sigaddset(&defaults, SIGPIPE);
	sigaddset(&defaults, SIGINT);
	sigaddset(&defaults, SIGTERM);
	sigaddset(&defaults, SIGHUP);
	sigaddset(&defaults, SIGQUIT);
	sigaddset(&defaults, SIGCHLD);
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&attr);
	rc = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	if (rc == 0)
		rc = posix_spawn_file_actions_adddup2(&fa, out_w, 1);
	if (rc == 0)
		rc = posix_spawn_file_actions_adddup2(&fa, err_w, 2);
	if (rc == 0)
		rc = posix_spawn_file_actions_addchdir_np(&fa, "/");
	if (rc == 0)
		rc = posix_spawnattr_setflags(
		    &attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	if (rc == 0)
		rc = posix_spawnattr_setpgroup(&attr, 0);
	if (rc == 0)
		rc = posix_spawnattr_setsigmask(&attr, &none);
	if (rc == 0)
		rc = posix_spawnattr_setsigdefault(&attr, &defaults);
	if (rc == 0)
		rc = posix_spawn(pid, az, &fa, &attr, argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	return rc;
}

/*
 * The expiry from expiresOn: naive local time "%Y-%m-%d %H:%M:%S[.%f]"; 0
 * when absent or null, -1 when it is anything else.
 */
static time_t expires_on_local(const void *json_obj)
{
	json_object *v = NULL;
	struct tm tm = {0};
	const char *end;
	time_t t;

	if (!json_object_object_get_ex((json_object *)json_obj, "expiresOn", &v) || !v)
		return 0;
	if (!json_object_is_type(v, json_type_string))
		return -1;
	end = strptime(json_object_get_string(v), "%Y-%m-%d %H:%M:%S", &tm);
	if (!end)
		return -1;
	if (*end == '.') {
		size_t n = strspn(end + 1, "0123456789");

		if (n == 0)
			return -1;
		end += 1 + n;
	}
	if (*end)
		return -1;
	tm.tm_isdst = -1;
	t = mktime(&tm);
	return t > 0 ? t : -1;
}

/* The first line of az's stderr without its "ERROR: " prefix, into buf. */
static void stderr_reason(const struct child_output *o, char *buf, size_t cap)
{
	const char *s = o->err;

	while (*s == '\n' || *s == '\r' || *s == ' ')
		s++;
	if (strncmp(s, "ERROR: ", 7) == 0)
		s += 7;
	dbx_cred_first_line(buf, cap, s);
}

/* Turn a finished (or killed) az run into the token or err. */
static enum dbx_err interpret(const struct child_output *o, unsigned timeout_ms, bool callers,
			      time_t now, struct dbx_token *out, struct dbx_error *err)
{
	char reason[256];
	int code = -1;

	if (o->timed_out && callers)
		return dbx_error_set(err, DBX_ETIMEDOUT,
				     "cli: token request to az did not finish within the timeout "
				     "(az is slow); killed it");
	if (o->timed_out)
		return dbx_error_set(err, DBX_EAUTH,
				     "cli: az did not answer within %u ms; killed it", timeout_ms);
	if (o->out_overflow)
		return dbx_error_set(err, DBX_EAUTH, "cli: az printed more than %d KiB; killed it",
				     STDOUT_MAX / 1024);
	if (o->have_status && WIFSIGNALED(o->status))
		return dbx_error_set(err, DBX_EAUTH, "cli: az was killed by signal %d",
				     WTERMSIG(o->status));
	if (o->have_status)
		code = WEXITSTATUS(o->status);
	if (code == 127)
		return dbx_error_set(err, DBX_EAUTH, "cli: Azure CLI (az) not found on PATH");
	if (code != 0 && code != -1) {
		if (strstr(o->err, "az login") || strstr(o->err, "az account set"))
			return dbx_error_set(err, DBX_EAUTH, "cli: not logged in; run az login");
		stderr_reason(o, reason, sizeof(reason));
		return dbx_error_set(err, DBX_EAUTH, "cli: az failed (exit %d)%s%s", code,
				     reason[0] ? ": " : "", reason);
	}
	return dbx_cred_parse_token("cli", o->out, o->out_len,
				    &(struct dbx_token_fields){.token = "accessToken",
							       .expires_on = "expires_on",
							       .fallback = "expiresOn"},
				    expires_on_local, now, out, err);
}

static enum dbx_err cli_get_token(struct dbx_credential *self, const char *scope,
				  uint64_t deadline_ms, struct dbx_token *out,
				  struct dbx_error *err)
{
	static const char suffix[] = "/.default";
	struct cli_cred *c = (struct cli_cred *)self;
	const struct dbx_clock *clock = c->clock;
	unsigned timeout_ms = timeout_hook_ms ? timeout_hook_ms : CLI_TIMEOUT_MS;
	struct child_output *o = NULL;
	char *const *base = base_environ_hook ? base_environ_hook : environ;
	const char *argv[10];
	size_t argc = 0;
	size_t len = strlen(scope);
	char *resource = NULL;
	char *az = NULL;
	char *path_line = NULL;
	char **envp = NULL;
	int out_pipe[2] = {-1, -1};
	int err_pipe[2] = {-1, -1};
	pid_t pid;
	int sr;
	uint64_t until = dbx_cred_deadline(clock, timeout_ms, deadline_ms);
	enum dbx_err rc = DBX_OK;

	out->value = NULL;
	out->expires_on = 0;
	if (dbx_clock_now_ms(clock) >= until) {
		rc = dbx_error_set(err, DBX_ETIMEDOUT,
				   "cli: no time left within the timeout to run az");
		goto out;
	}
	if (len > sizeof(suffix) - 1 && strcmp(scope + len - (sizeof(suffix) - 1), suffix) == 0)
		len -= sizeof(suffix) - 1;
	resource = strndup(scope, len);
	if (!resource) {
		rc = dbx_error_set(err, DBX_ENOMEM, "out of memory");
		goto out;
	}
	if (!safe_arg(resource, "_-.:/")) {
		rc = dbx_error_set(err, DBX_EAUTH, "cli: refusing to pass the scope %s to az",
				   scope);
		goto out;
	}
	az = find_az(c->path);
	if (!az) {
		rc = errno == ENOMEM
			 ? dbx_error_set(err, DBX_ENOMEM, "out of memory")
			 : dbx_error_set(err, DBX_EAUTH, "cli: Azure CLI (az) not found on PATH");
		goto out;
	}
	o = calloc(1, sizeof(*o));
	if (!o || asprintf(&path_line, "PATH=%s", c->path) < 0) {
		path_line = NULL;
		rc = dbx_error_set(err, DBX_ENOMEM, "out of memory");
		goto out;
	}
	envp = child_environ(base, path_line);
	if (!envp || pipe2(out_pipe, O_CLOEXEC) != 0 || pipe2(err_pipe, O_CLOEXEC) != 0) {
		rc = dbx_error_set(err, envp ? DBX_EAUTH : DBX_ENOMEM, "cli: cannot start az: %s",
				   strerror(errno));
		goto out;
	}
	argv[argc++] = "az";
	argv[argc++] = "account";
	argv[argc++] = "get-access-token";
	argv[argc++] = "--output";
	argv[argc++] = "json";
	argv[argc++] = "--resource";
	argv[argc++] = resource;
	if (c->tenant) {
		argv[argc++] = "--tenant";
		argv[argc++] = c->tenant;
	}
	argv[argc] = NULL;
	sr = spawn_az(az, (char *const *)argv, envp, out_pipe[1], err_pipe[1], &pid);
	close(out_pipe[1]);
	close(err_pipe[1]);
	out_pipe[1] = err_pipe[1] = -1;
	if (sr == ENOENT || sr == EACCES || sr == ENOEXEC) {
		rc = dbx_error_set(err, DBX_EAUTH, "cli: Azure CLI (az) not found on PATH");
		goto out;
	}
	if (sr != 0) {
		rc = dbx_error_set(err, DBX_EAUTH, "cli: cannot start %s: %s", az, strerror(sr));
		goto out;
	}
	collect(clock, pid, out_pipe[0], err_pipe[0], until, o);
	o->out[o->out_len] = '\0';
	o->err[o->err_len] = '\0';
	rc = interpret(o, timeout_ms, until == deadline_ms, dbx_clock_wall(clock), out, err);
out:
	for (int i = 0; i < 2; i++) {
		if (out_pipe[i] >= 0)
			close(out_pipe[i]);
		if (err_pipe[i] >= 0)
			close(err_pipe[i]);
	}
	if (o) {
		explicit_bzero(o, sizeof(*o));
		free(o);
	}
	free(envp);
	free(path_line);
	free(az);
	free(resource);
	return rc;
}

static void cli_destroy(struct dbx_credential *self)
{
	struct cli_cred *c = (struct cli_cred *)self;

	free(c->path);
	free(c->tenant);
	free(c);
}

struct dbx_credential *dbx_cred_cli_new(struct dbx_transport *transport,
					const struct dbx_cloud *cloud, const struct dbx_env *env,
					const struct dbx_clock *clock, struct dbx_error *err)
{
	struct cli_cred *c = NULL;
	const char *path;
	const char *tenant;

	(void)transport;
	(void)cloud;
	if (!env)
		env = dbx_env_process();
	path = dbx_cred_env_get(env, "PATH");
	tenant = dbx_cred_env_get(env, "AZURE_TENANT_ID");
	if (tenant && !safe_arg(tenant, "-.")) {
		dbx_error_set(err, DBX_ECONFIG,
			      "cli: AZURE_TENANT_ID must be a tenant GUID or domain name");
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		dbx_error_set(err, DBX_ENOMEM, "out of memory");
		return NULL;
	}
	c->base.name = "cli";
	c->base.get_token = cli_get_token;
	c->base.destroy = cli_destroy;
	c->clock = clock ? clock : dbx_clock_system();
	c->path = strdup(path ? path : DEFAULT_PATH);
	c->tenant = tenant ? strdup(tenant) : NULL;
	if (!c->path || (tenant && !c->tenant)) {
		dbx_error_set(err, DBX_ENOMEM, "out of memory");
		cli_destroy(&c->base);
		return NULL;
	}
	return &c->base;
}
