/*
 * cred/workload.c: the workload identity credential (docs/architecture.md, "Credentials", second
 * source; docs/azure.md, "Credential sources"), for pods on AKS with the workload identity
 * webhook.
 *
 * AZURE_FEDERATED_TOKEN_FILE holds a Kubernetes service-account token that
 * the kubelet rotates (by swapping a symlink, so the file's identity,
 * size or mtime changes). Its trimmed content is the client assertion of the
 * jwt-bearer grant (cred/common.c) for AZURE_CLIENT_ID in AZURE_TENANT_ID at
 * AZURE_AUTHORITY_HOST (else the cloud's login host). The file is read on
 * first use and again whenever it changed or the copy is 600 s old, as
 * azure-identity does; the old copy is wiped.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cred/common.h"

#define TOKEN_FILE_MAX (64 * 1024) /* a service-account token is 1-2 KiB */
#define REREAD_AFTER_S 600

struct workload_cred {
	struct dbx_credential base;
	struct dbx_transport *transport; /* borrowed */
	const struct dbx_clock *clock;
	pthread_mutex_t lock; /* guards the cached assertion */
	char *client_id;
	char *token_url;
	char *authority; /* host[:port], for messages */
	char *path;
	char *assertion;  /* the file's trimmed content, or NULL before the first read */
	struct stat seen; /* the file when assertion was read */
	time_t read_at;
};

static bool same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* Read the token file into c->assertion (trimmed), wiping the old copy. Called locked. */
static enum dbx_err reread(struct workload_cred *c, const struct stat *st, time_t now,
			   struct dbx_error *err)
{
	char *buf = NULL;
	size_t got = 0;
	size_t start = 0;
	int fd = -1;
	enum dbx_err rc = DBX_OK;

	if (!S_ISREG(st->st_mode) || st->st_size > TOKEN_FILE_MAX) {
		rc = dbx_error_set(err, DBX_EAUTH,
				   "workload: AZURE_FEDERATED_TOKEN_FILE %s is not a token file "
				   "(not a regular file of at most 64 KiB)",
				   c->path);
		goto out;
	}
	buf = malloc(TOKEN_FILE_MAX + 1);
	if (!buf) {
		rc = dbx_error_set(err, DBX_ENOMEM, "out of memory");
		goto out;
	}
	fd = open(c->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = dbx_error_set(err, DBX_EAUTH,
				   "workload: cannot read AZURE_FEDERATED_TOKEN_FILE %s: %s",
				   c->path, strerror(errno));
		goto out;
	}
	while (got < TOKEN_FILE_MAX) {
		ssize_t n = read(fd, buf + got, TOKEN_FILE_MAX - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc =
			    dbx_error_set(err, DBX_EAUTH,
					  "workload: cannot read AZURE_FEDERATED_TOKEN_FILE %s: %s",
					  c->path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	while (got > 0 && strchr(" \t\r\n", buf[got - 1]))
		got--;
	buf[got] = '\0';
	while (start < got && strchr(" \t\r\n", buf[start]))
		start++;
	if (start == got) {
		rc = dbx_error_set(err, DBX_EAUTH,
				   "workload: AZURE_FEDERATED_TOKEN_FILE %s is empty", c->path);
		goto out;
	}
	dbx_wipe_free(c->assertion);
	c->assertion = strdup(buf + start);
	if (!c->assertion) {
		rc = dbx_error_set(err, DBX_ENOMEM, "out of memory");
		goto out;
	}
	c->seen = *st;
	c->read_at = now;
out:
	if (fd >= 0)
		close(fd);
	if (buf) {
		explicit_bzero(buf, TOKEN_FILE_MAX + 1);
		free(buf);
	}
	return rc;
}

/* A copy of the current assertion (caller wipes it), re-reading the file when due. */
static enum dbx_err current_assertion(struct workload_cred *c, char **out, struct dbx_error *err)
{
	time_t now = dbx_clock_wall(c->clock);
	struct stat st;
	enum dbx_err rc = DBX_OK;

	*out = NULL;
	pthread_mutex_lock(&c->lock);
	if (stat(c->path, &st) != 0) {
		rc = dbx_error_set(err, DBX_EAUTH,
				   "workload: cannot read AZURE_FEDERATED_TOKEN_FILE %s: %s",
				   c->path, strerror(errno));
		goto out;
	}
	if (!c->assertion || !same_file(&st, &c->seen) || now - c->read_at >= REREAD_AFTER_S ||
	    now < c->read_at) {
		rc = reread(c, &st, now, err);
		if (rc != DBX_OK)
			goto out;
	}
	*out = strdup(c->assertion);
	if (!*out)
		rc = dbx_error_set(err, DBX_ENOMEM, "out of memory");
out:
	pthread_mutex_unlock(&c->lock);
	return rc;
}

static enum dbx_err workload_get_token(struct dbx_credential *self, const char *scope,
				       uint64_t deadline_ms, struct dbx_token *out,
				       struct dbx_error *err)
{
	struct workload_cred *c = (struct workload_cred *)self;
	char *assertion = NULL;
	enum dbx_err rc;

	out->value = NULL;
	out->expires_on = 0;
	rc = current_assertion(c, &assertion, err);
	if (rc != DBX_OK)
		return rc;
	rc = dbx_cred_assertion_grant("workload", c->transport, c->clock, deadline_ms, c->token_url,
				      c->authority, c->client_id, assertion, scope, out, err);
	dbx_wipe_free(assertion);
	return rc;
}

static void workload_destroy(struct dbx_credential *self)
{
	struct workload_cred *c = (struct workload_cred *)self;

	dbx_wipe_free(c->assertion);
	free(c->client_id);
	free(c->token_url);
	free(c->authority);
	free(c->path);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

struct dbx_credential *dbx_cred_workload_new(struct dbx_transport *transport,
					     const struct dbx_cloud *cloud,
					     const struct dbx_env *env,
					     const struct dbx_clock *clock, struct dbx_error *err)
{
	static const char *const required[] = {"AZURE_TENANT_ID", "AZURE_CLIENT_ID",
					       "AZURE_FEDERATED_TOKEN_FILE"};
	struct workload_cred *c = NULL;
	const char *vals[3];

	if (!cloud)
		cloud = dbx_cloud_default();
	if (!env)
		env = dbx_env_process();
	if (!dbx_cred_require("workload", env, required, 3, vals, err))
		return NULL;
	c = calloc(1, sizeof(*c));
	if (!c) {
		dbx_error_set(err, DBX_ENOMEM, "out of memory");
		return NULL;
	}
	c->base.name = "workload";
	c->base.get_token = workload_get_token;
	c->base.destroy = workload_destroy;
	c->transport = transport;
	c->clock = clock ? clock : dbx_clock_system();
	pthread_mutex_init(&c->lock, NULL);
	c->client_id = strdup(vals[1]);
	c->path = strdup(vals[2]);
	if (!c->client_id || !c->path) {
		dbx_error_set(err, DBX_ENOMEM, "out of memory");
		goto fail;
	}
	if (dbx_cred_token_endpoint("workload", cloud, env, vals[0], &c->token_url, &c->authority,
				    err) != DBX_OK)
		goto fail;
	return &c->base;
fail:
	workload_destroy(&c->base);
	return NULL;
}
