/*
 * control.c: the files of MOUNT/.databoxfs/ (control.h).
 *
 * version and config are rendered once, when the mount is made. stats,
 * health and orders are snapshots: each has its own lock, held while it
 * is taken again, so concurrent readers of a stale file wait for one
 * rendering and share it (orders walks the listings: that may take the
 * network). A snapshot is kept for the hold (cache_ttl, at least
 * DBX_CONTROL_HOLD_MIN_MS), so a getattr and the open that follows it see
 * the same bytes. orders renders each order's line with the order files'
 * own show() functions (attrs.c), so it says what `cat` of those files
 * says, from the listings' state alone (dbx_cache_walk: no GET per order).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "databoxfs/stats.h"
#include "attrs.h"
#include "control.h"

static const char *const file_names[DBX_CONTROL_N_FILES] = {
    [DBX_CONTROL_VERSION] = "version", [DBX_CONTROL_CONFIG] = "config",
    [DBX_CONTROL_STATS] = "stats",     [DBX_CONTROL_HEALTH] = "health",
    [DBX_CONTROL_ORDERS] = "orders",
};

const char *dbx_control_file_name(size_t i)
{
	return i < DBX_CONTROL_N_FILES ? file_names[i] : NULL;
}

int dbx_control_find(const char *name)
{
	for (size_t i = 0; name && i < DBX_CONTROL_N_FILES; i++)
		if (strcmp(name, file_names[i]) == 0)
			return (int)i;
	return -1;
}

struct snapshot {
	pthread_mutex_t lock;
	bool taken;
	uint64_t at_ms; /* on the monotonic clock */
	time_t mtime;
	char *buf;
	size_t len;
};

struct dbx_control {
	struct dbx_cache *cache;
	const struct dbx_clock *clock;
	uint64_t hold_ms;
	struct snapshot files[DBX_CONTROL_N_FILES];
};

/* Append n bytes of s to *buf / *len, each tab or control byte as a space when clean. */
static enum dbx_err append(char **buf, size_t *len, const char *s, size_t n, bool clean)
{
	char *grown = realloc(*buf, *len + n + 1);

	if (!grown)
		return DBX_ENOMEM;
	*buf = grown;
	for (size_t i = 0; i < n; i++)
		grown[*len + i] = clean && (unsigned char)s[i] < 0x20 ? ' ' : s[i];
	*len += n;
	grown[*len] = '\0';
	return DBX_OK;
}

static enum dbx_err append_str(char **buf, size_t *len, const char *s, bool clean)
{
	return append(buf, len, s ? s : "", s ? strlen(s) : 0, clean);
}

enum dbx_err dbx_control_version_text(const char *version, const char *api_version, char **buf,
				      size_t *len)
{
	char *text = NULL;
	int n = asprintf(&text, "databoxfs %s\napi_version %s\n", version ? version : "",
			 api_version ? api_version : "");

	*buf = NULL;
	*len = 0;
	if (n < 0)
		return DBX_ENOMEM;
	*buf = text;
	*len = (size_t)n;
	return DBX_OK;
}

enum dbx_err dbx_control_config_text(const struct dbx_control_setting *v, size_t n, char **buf,
				     size_t *len)
{
	enum dbx_err rc = DBX_OK;

	*buf = NULL;
	*len = 0;
	rc = append(buf, len, "", 0, false); /* an empty list is an empty file, not NULL */
	for (size_t i = 0; i < n && rc == DBX_OK; i++) {
		rc = append_str(buf, len, v[i].name, true);
		if (rc == DBX_OK)
			rc = append(buf, len, "=", 1, false);
		if (rc == DBX_OK)
			rc = append_str(buf, len, v[i].value, true);
		if (rc == DBX_OK)
			rc = append(buf, len, "\n", 1, false);
	}
	if (rc != DBX_OK) {
		free(*buf);
		*buf = NULL;
		*len = 0;
	}
	return rc;
}

/* Append the value of order file name (its trailing "\n" dropped), or nothing when it has none. */
static enum dbx_err append_attr(char **buf, size_t *len, const char *name,
				const struct dbx_attr_ctx *ctx)
{
	int i = dbx_attr_find(name);
	char *text = NULL;
	size_t n = 0;
	enum dbx_err rc;

	if (i < 0 || !ctx->order)
		return DBX_OK;
	rc = dbx_attr_show((size_t)i, ctx, &text, &n);
	if (rc == DBX_OK) {
		if (n > 0 && text[n - 1] == '\n')
			n--;
		rc = append(buf, len, text, n, true);
	}
	free(text);
	return rc;
}

/*
 * Append the order's first error code: the first problem the service
 * reports on a live order (properties.error comes before failing stages,
 * so this is the Ssem code when there is one), else the code of the first
 * block of its errors file (a failed refresh, a refused write), or nothing.
 */
static enum dbx_err append_first_code(char **buf, size_t *len, const struct dbx_attr_ctx *ctx,
				      bool live)
{
	int i = dbx_attr_find("errors");
	char *text = NULL;
	size_t n = 0;
	enum dbx_err rc;

	if (live && ctx->order && ctx->order->n_problems > 0 && ctx->order->problems[0].code &&
	    ctx->order->problems[0].code[0])
		return append_str(buf, len, ctx->order->problems[0].code, true);
	if (i < 0)
		return DBX_OK;
	rc = dbx_attr_show((size_t)i, ctx, &text, &n);
	/* docs/formats.md, "The errors file": every block starts with its code line. */
	if (rc == DBX_OK && n > 6 && strncmp(text, "code: ", 6) == 0)
		rc = append(buf, len, text + 6, strcspn(text + 6, "\n"), true);
	free(text);
	return rc;
}

enum dbx_err dbx_control_order_line(char **buf, size_t *len, const char *sub, const char *rg,
				    const char *name, const struct dbx_order_view *view)
{
	static const char *const fields[] = {"status", "encryption_type", "key_url", "identity"};
	struct dbx_attr_ctx ctx = {0};
	struct dbx_attr_ctx shown = {0};
	size_t start = *len;
	enum dbx_err rc;

	/* What the order files would show: the values only when live, errors always. */
	ctx.order = view->order;
	if (view->rc == DBX_OK)
		shown.order = view->order;
	if (view->rc != DBX_OK) {
		ctx.read_err = &view->err;
		ctx.read_time = view->err_time;
	}
	if (view->has_write_err) {
		ctx.write_err = &view->write_err;
		ctx.write_time = view->write_err_time;
		ctx.write_target = view->write_target;
	}
	rc = append_str(buf, len, sub, true);
	if (rc == DBX_OK)
		rc = append(buf, len, "/", 1, false);
	if (rc == DBX_OK)
		rc = append_str(buf, len, rg, true);
	if (rc == DBX_OK)
		rc = append(buf, len, "/", 1, false);
	if (rc == DBX_OK)
		rc = append_str(buf, len, name, true);
	for (size_t i = 0; rc == DBX_OK && i < sizeof(fields) / sizeof(fields[0]); i++) {
		rc = append(buf, len, "\t", 1, false);
		if (rc == DBX_OK)
			rc = append_attr(buf, len, fields[i], &shown);
	}
	if (rc == DBX_OK)
		rc = append(buf, len, "\t", 1, false);
	if (rc == DBX_OK)
		rc = append_first_code(buf, len, &ctx, view->rc == DBX_OK);
	if (rc == DBX_OK)
		rc = append(buf, len, "\n", 1, false);
	if (rc != DBX_OK && *buf) {
		*len = start; /* no half line */
		(*buf)[start] = '\0';
	}
	return rc;
}

struct dbx_control *dbx_control_new(const struct dbx_control_config *cfg)
{
	struct dbx_control *c = calloc(1, sizeof(*c));
	struct snapshot *s;

	if (!c)
		return NULL;
	c->cache = cfg->cache;
	c->clock = cfg->clock;
	c->hold_ms = cfg->ttl_ms > DBX_CONTROL_HOLD_MIN_MS ? cfg->ttl_ms : DBX_CONTROL_HOLD_MIN_MS;
	for (size_t i = 0; i < DBX_CONTROL_N_FILES; i++)
		pthread_mutex_init(&c->files[i].lock, NULL);
	s = &c->files[DBX_CONTROL_VERSION];
	if (dbx_control_version_text(DBX_VERSION, cfg->api_version, &s->buf, &s->len) != DBX_OK)
		goto nomem;
	s = &c->files[DBX_CONTROL_CONFIG];
	if (dbx_control_config_text(cfg->settings, cfg->n_settings, &s->buf, &s->len) != DBX_OK)
		goto nomem;
	for (size_t i = DBX_CONTROL_VERSION; i <= DBX_CONTROL_CONFIG; i++) {
		c->files[i].taken = true;
		c->files[i].mtime = dbx_clock_wall(c->clock);
	}
	return c;
nomem:
	dbx_control_free(c);
	return NULL;
}

void dbx_control_free(struct dbx_control *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < DBX_CONTROL_N_FILES; i++) {
		pthread_mutex_destroy(&c->files[i].lock);
		free(c->files[i].buf);
	}
	free(c);
}

struct orders_walk {
	char *buf;
	size_t len;
	enum dbx_err rc;
};

static int order_line(void *ctx, const char *sub, const char *rg, const char *name,
		      const struct dbx_order_view *view)
{
	struct orders_walk *w = ctx;

	w->rc = dbx_control_order_line(&w->buf, &w->len, sub, rg, name, view);
	return w->rc != DBX_OK;
}

/* Render dynamic file i now into *buf / *len. */
static enum dbx_err take(struct dbx_control *c, size_t i, char **buf, size_t *len,
			 struct dbx_error *err)
{
	struct orders_walk w = {0};
	enum dbx_err rc;

	*buf = NULL;
	*len = 0;
	switch (i) {
	case DBX_CONTROL_STATS:
		rc = dbx_stats_render(buf, len);
		break;
	case DBX_CONTROL_HEALTH:
		rc = dbx_stats_health_render(buf, len);
		break;
	case DBX_CONTROL_ORDERS:
		rc = append(&w.buf, &w.len, "", 0, false);
		if (rc == DBX_OK)
			rc = dbx_cache_walk(c->cache, order_line, &w, err);
		if (rc == DBX_OK)
			rc = w.rc;
		if (rc == DBX_OK) {
			*buf = w.buf;
			*len = w.len;
			w.buf = NULL;
		}
		free(w.buf);
		break;
	default:
		rc = DBX_ENOTFOUND;
		break;
	}
	if (rc == DBX_ENOMEM)
		dbx_error_set(err, rc, "out of memory");
	return rc;
}

enum dbx_err dbx_control_read(struct dbx_control *c, size_t i, char **buf, size_t *len,
			      time_t *mtime, struct dbx_error *err)
{
	struct snapshot *s;
	uint64_t now;
	char *text = NULL;
	size_t n = 0;
	enum dbx_err rc = DBX_OK;

	*buf = NULL;
	*len = 0;
	if (i >= DBX_CONTROL_N_FILES)
		return dbx_error_set(err, DBX_ENOTFOUND, "no such file");
	s = &c->files[i];
	pthread_mutex_lock(&s->lock);
	now = dbx_clock_now_ms(c->clock);
	if (i > DBX_CONTROL_CONFIG && (!s->taken || now - s->at_ms >= c->hold_ms)) {
		rc = take(c, i, &text, &n, err);
		if (rc != DBX_OK)
			goto out;
		free(s->buf);
		s->buf = text;
		s->len = n;
		s->taken = true;
		s->at_ms = now;
		s->mtime = dbx_clock_wall(c->clock);
	}
	*buf = malloc(s->len + 1);
	if (!*buf) {
		rc = dbx_error_set(err, DBX_ENOMEM, "out of memory");
		goto out;
	}
	memcpy(*buf, s->buf, s->len);
	(*buf)[s->len] = '\0';
	*len = s->len;
	*mtime = s->mtime;
out:
	pthread_mutex_unlock(&s->lock);
	return rc;
}
