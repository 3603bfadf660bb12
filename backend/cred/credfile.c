/*
 * cred/credfile.c: the credential file of -o credential_file=PATH (auth.h;
 * the man page, docs/databoxfs.8, "CREDENTIAL FILE"). An fstab line or a
 * systemd unit names a file that holds the credential chain's variables
 * instead of carrying a secret itself: the file is checked (regular, owned
 * by the mounting user or root, no access for group or others), read once
 * at start, parsed strictly, and served to the sources as a struct dbx_env
 * in front of the process environment. Nothing here ever prints a value:
 * a message names the file, the line and the reason; a variable's name is
 * named only when it looks like one of ours (a typo such as
 * AZURE_CLIENT_SECRTE), never a string that could be a pasted secret.
 * Every copy of the file's bytes is wiped before it is freed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "databoxfs/auth.h"

#define CREDFILE_MAX (64 * 1024)

/* What the sources read (backend/cred/README.md): the only names a file may set. */
static const char *const names[] = {
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_AUTHORITY_HOST",
    "AZURE_CLIENT_CERTIFICATE_PATH",
    "AZURE_CLIENT_CERTIFICATE_PASSWORD",
    "AZURE_FEDERATED_TOKEN_FILE",
    "IDENTITY_ENDPOINT",
    "IDENTITY_HEADER",
    "IDENTITY_SERVER_THUMBPRINT",
    NULL,
};

#define N_NAMES (sizeof(names) / sizeof(names[0]) - 1)

struct dbx_credfile {
	struct dbx_env env; /* ctx is this file */
	const struct dbx_env *fallback;
	char *values[N_NAMES]; /* NULL: not in the file */
	size_t line_of[N_NAMES];
};

const char *const *dbx_credfile_names(void)
{
	return names;
}

void dbx_credfile_free(struct dbx_credfile *cf)
{
	if (!cf)
		return;
	for (size_t i = 0; i < N_NAMES; i++) {
		if (cf->values[i])
			explicit_bzero(cf->values[i], strlen(cf->values[i]));
		free(cf->values[i]);
	}
	free(cf);
}

static const char *credfile_get(void *ctx, const char *name)
{
	struct dbx_credfile *cf = ctx;

	for (size_t i = 0; i < N_NAMES; i++) {
		if (cf->values[i] && strcmp(names[i], name) == 0)
			return cf->values[i];
	}
	return cf->fallback->get(cf->fallback->ctx, name);
}

const struct dbx_env *dbx_credfile_env(struct dbx_credfile *cf, const struct dbx_env *fallback)
{
	cf->fallback = fallback ? fallback : dbx_env_process();
	cf->env.get = credfile_get;
	cf->env.ctx = cf;
	return &cf->env;
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static bool name_start(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static bool name_char(char c)
{
	return name_start(c) || (c >= '0' && c <= '9');
}

/* Safe to show in a message: upper case, digits, '_', starting AZURE_ or IDENTITY_. */
static bool looks_like_ours(const char *s, size_t n)
{
	if (!(n > 6 && strncmp(s, "AZURE_", 6) == 0) && !(n > 9 && strncmp(s, "IDENTITY_", 9) == 0))
		return false;
	for (size_t i = 0; i < n; i++) {
		if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return false;
	}
	return n < 64;
}

/*
 * One line (without its '\n'), number lineno, into cf. DBX_OK, or
 * DBX_ECONFIG with err filled (never with the value).
 */
static enum dbx_err parse_line(struct dbx_credfile *cf, const char *line, size_t len, size_t lineno,
			       const char *what, struct dbx_error *err)
{
	const char *p = line, *end = line + len;
	const char *name, *v, *vend;
	size_t name_len, idx = N_NAMES;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)line[i];

		if (c == '\r')
			return dbx_error_set(err, DBX_ECONFIG,
					     "%s: line %zu: a carriage return (DOS line endings?)",
					     what, lineno);
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return dbx_error_set(err, DBX_ECONFIG, "%s: line %zu: a control character",
					     what, lineno);
	}
	while (p < end && is_blank(*p))
		p++;
	if (p == end || *p == '#')
		return DBX_OK;
	name = p;
	if (!name_start(*p))
		return dbx_error_set(err, DBX_ECONFIG, "%s: line %zu: expected NAME=VALUE", what,
				     lineno);
	while (p < end && name_char(*p))
		p++;
	name_len = (size_t)(p - name);
	if (p == end || *p != '=')
		return dbx_error_set(err, DBX_ECONFIG, "%s: line %zu: expected NAME=VALUE%s", what,
				     lineno,
				     p < end && is_blank(*p) ? " (no blanks before '=')" : "");
	for (size_t i = 0; i < N_NAMES; i++) {
		if (strlen(names[i]) == name_len && strncmp(names[i], name, name_len) == 0)
			idx = i;
	}
	if (idx == N_NAMES) {
		if (looks_like_ours(name, name_len))
			return dbx_error_set(
			    err, DBX_ECONFIG,
			    "%s: line %zu: %.*s is not a variable of the credential "
			    "chain (see databoxfs(8), CREDENTIAL FILE)",
			    what, lineno, (int)name_len, name);
		return dbx_error_set(err, DBX_ECONFIG,
				     "%s: line %zu: not a variable of the credential chain (see "
				     "databoxfs(8), CREDENTIAL FILE)",
				     what, lineno);
	}
	if (cf->values[idx])
		return dbx_error_set(err, DBX_ECONFIG,
				     "%s: line %zu: %s is already set on line %zu", what, lineno,
				     names[idx], cf->line_of[idx]);
	v = p + 1;
	vend = end;
	while (v < vend && is_blank(*v))
		v++;
	while (vend > v && is_blank(vend[-1]))
		vend--;
	if (v < vend && (*v == '\'' || *v == '"')) {
		const char *close = memchr(v + 1, *v, (size_t)(vend - v - 1));

		if (!close || close != vend - 1)
			return dbx_error_set(err, DBX_ECONFIG,
					     "%s: line %zu: %s: a quoted value must end with its "
					     "quote, and hold no other quote of that kind",
					     what, lineno, names[idx]);
		v++;
		vend--;
	}
	cf->values[idx] = strndup(v, (size_t)(vend - v));
	if (!cf->values[idx])
		return dbx_error_set(err, DBX_ENOMEM, "out of memory");
	cf->line_of[idx] = lineno;
	return DBX_OK;
}

enum dbx_err dbx_credfile_parse(const char *text, size_t len, const char *what,
				struct dbx_credfile **out, struct dbx_error *err)
{
	struct dbx_credfile *cf;
	size_t lineno = 0;
	const char *p = text, *end = text + len;
	enum dbx_err rc = DBX_OK;

	*out = NULL;
	if (len > CREDFILE_MAX)
		return dbx_error_set(err, DBX_ECONFIG, "%s: larger than 64 KiB", what);
	if (memchr(text, '\0', len))
		return dbx_error_set(err, DBX_ECONFIG, "%s: holds a NUL byte (not a text file)",
				     what);
	cf = calloc(1, sizeof(*cf));
	if (!cf)
		return dbx_error_set(err, DBX_ENOMEM, "out of memory");
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);

		rc = parse_line(cf, p, n, ++lineno, what, err);
		if (rc != DBX_OK)
			goto out;
		p += n + (nl ? 1 : 0);
	}
	dbx_credfile_env(cf, NULL);
	*out = cf;
	cf = NULL;
out:
	dbx_credfile_free(cf);
	return rc;
}

enum dbx_err dbx_credfile_load(const char *path, uid_t owner, struct dbx_credfile **out,
			       struct dbx_error *err)
{
	char *buf = NULL;
	size_t len = 0;
	struct stat st;
	enum dbx_err rc;
	int fd;

	*out = NULL;
	/* O_NONBLOCK: a FIFO in its place fails the S_ISREG check instead of hanging. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return dbx_error_set(err, DBX_ECONFIG, "credential_file=%s: %s", path,
				     strerror(errno));
	if (fstat(fd, &st) != 0) {
		rc = dbx_error_set(err, DBX_ECONFIG, "credential_file=%s: %s", path,
				   strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc =
		    dbx_error_set(err, DBX_ECONFIG, "credential_file=%s: not a regular file", path);
		goto out;
	}
	if (st.st_uid != owner && st.st_uid != 0) {
		rc = dbx_error_set(err, DBX_ECONFIG,
				   "credential_file=%s: owned by uid %u; it must belong to the "
				   "mounting user (uid %u) or root",
				   path, (unsigned)st.st_uid, (unsigned)owner);
		goto out;
	}
	if (st.st_mode & 077) {
		rc = dbx_error_set(err, DBX_ECONFIG,
				   "credential_file=%s: mode %04o lets group or others in; it "
				   "holds secrets: chmod 600 %s",
				   path, (unsigned)(st.st_mode & 07777), path);
		goto out;
	}
	if (st.st_size > CREDFILE_MAX) {
		rc =
		    dbx_error_set(err, DBX_ECONFIG, "credential_file=%s: larger than 64 KiB", path);
		goto out;
	}
	buf = malloc(CREDFILE_MAX + 1);
	if (!buf) {
		rc = dbx_error_set(err, DBX_ENOMEM, "out of memory");
		goto out;
	}
	for (;;) {
		ssize_t n = read(fd, buf + len, CREDFILE_MAX + 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = dbx_error_set(err, DBX_ECONFIG, "credential_file=%s: %s", path,
					   strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > CREDFILE_MAX)
			break;
	}
	{
		char what[DBX_ERR_MSG_MAX / 2];

		snprintf(what, sizeof(what), "credential_file=%s", path);
		rc = dbx_credfile_parse(buf, len, what, out, err);
	}
out:
	if (buf) {
		explicit_bzero(buf, CREDFILE_MAX + 1);
		free(buf);
	}
	close(fd);
	return rc;
}
