/*
 * cred/env.c: the environment client-secret credential (docs/architecture.md, "Credentials", first
 * source; docs/azure.md, "Credential sources").
 *
 * AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET give an app
 * registration's client-credentials grant against Entra ID v2.0:
 *   POST https://<authority>/<tenant>/oauth2/v2.0/token
 *   grant_type=client_credentials&client_id=..&client_secret=..&scope=..
 * The authority is AZURE_AUTHORITY_HOST when set, else the cloud's login
 * host. The secret lives in a locked page excluded from core dumps, is wiped
 * on destroy, and never appears in a message: errors quote the service's
 * "error" and the first line of "error_description" only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "databoxfs/auth.h"
#include "cred/common.h"
#include "databoxfs/log.h"
#include "core/json_util.h"

struct env_secret_cred {
	struct dbx_credential base;
	struct dbx_transport *transport; /* borrowed */
	const struct dbx_clock *clock;
	char *tenant;
	char *client_id;
	char *secret; /* in its own mmap'd region, secret_size bytes */
	size_t secret_size;
	char *token_url;
	char *authority; /* host[:port], for messages */
};

/* A copy of s in a fresh private mapping, locked and kept out of core dumps. */
static char *secret_dup(const char *s, size_t *size_out)
{
	long page = sysconf(_SC_PAGESIZE);
	size_t len = strlen(s) + 1;
	size_t size;
	char *p;

	if (page <= 0)
		page = 4096;
	size = (len + (size_t)page - 1) / (size_t)page * (size_t)page;
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	(void)madvise(p, size, MADV_DONTDUMP);
	(void)mlock(p, size); /* best effort: RLIMIT_MEMLOCK may refuse */
	memcpy(p, s, len);
	*size_out = size;
	return p;
}

static void secret_free(char *p, size_t size)
{
	if (!p)
		return;
	explicit_bzero(p, size);
	munlock(p, size);
	munmap(p, size);
}

static enum dbx_err env_get_token(struct dbx_credential *self, const char *scope,
				  uint64_t deadline_ms, struct dbx_token *out,
				  struct dbx_error *err)
{
	struct env_secret_cred *c = (struct env_secret_cred *)self;

	/* Entra does not echo secrets, but a proxy or a future message might: redacted. */
	return dbx_cred_entra_grant("env", c->transport, c->clock, deadline_ms, c->token_url,
				    c->authority, c->client_id, "client_secret", c->secret, scope,
				    out, err);
}

static void env_destroy(struct dbx_credential *self)
{
	struct env_secret_cred *c = (struct env_secret_cred *)self;

	free(c->tenant);
	free(c->client_id);
	secret_free(c->secret, c->secret_size);
	free(c->token_url);
	free(c->authority);
	free(c);
}

struct dbx_credential *dbx_cred_env_secret_new(struct dbx_transport *transport,
					       const struct dbx_cloud *cloud,
					       const struct dbx_env *env,
					       const struct dbx_clock *clock, struct dbx_error *err)
{
	static const char *const required[] = {"AZURE_TENANT_ID", "AZURE_CLIENT_ID",
					       "AZURE_CLIENT_SECRET"};
	struct env_secret_cred *c = NULL;
	const char *vals[3];

	if (!cloud)
		cloud = dbx_cloud_default();
	if (!env)
		env = dbx_env_process();
	if (!dbx_cred_require("env", env, required, 3, vals, err))
		return NULL;

	c = calloc(1, sizeof(*c));
	if (!c)
		goto nomem;
	c->base.name = "env";
	c->base.get_token = env_get_token;
	c->base.destroy = env_destroy;
	c->transport = transport;
	c->clock = clock ? clock : dbx_clock_system();
	if (dbx_cred_token_endpoint("env", cloud, env, vals[0], &c->token_url, &c->authority,
				    err) != DBX_OK)
		goto fail;
	c->tenant = strdup(vals[0]);
	c->client_id = strdup(vals[1]);
	c->secret = secret_dup(vals[2], &c->secret_size);
	if (!c->tenant || !c->client_id || !c->secret)
		goto nomem;
	return &c->base;
nomem:
	dbx_error_set(err, DBX_ENOMEM, "out of memory");
fail:
	if (c)
		env_destroy(&c->base);
	return NULL;
}
