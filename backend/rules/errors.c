/*
 * errors.c: the errors file of an order, the whole format in one place
 * (errors.h, docs/formats.md, "The errors file").
 *
 * Three parts, each a pure function of its inputs:
 *   - the remedy text: a resolution cell of the Ssem table (ssem.c, markdown
 *     and HTML) as plain text, lists as numbered steps;
 *   - one block: "key: value" lines in a fixed order, the code decoded
 *     through the Ssem table (unknown codes get its Generic row), every
 *     value forced onto its line so no string from a service can add or
 *     forge a line;
 *   - the file: the blocks of the order's problems, of the failed refresh
 *     ("read") and of the last failed write ("last-write"), newest first,
 *     with the mount's own advice for failures that carry no service code.
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "databoxfs/errors.h"
#include "databoxfs/timestamp.h"

const char *dbx_recoverable_str(enum dbx_recoverable r)
{
	switch (r) {
	case DBX_RECOVERABLE_YES:
		return "yes";
	case DBX_RECOVERABLE_NO:
		return "no";
	case DBX_RECOVERABLE_DEPENDS:
		break;
	}
	return "depends";
}

/* ---- plain text from the table's markdown/HTML ---- */

/* A growing NUL-terminated string; oom latches the first allocation failure. */
struct sbuf {
	char *s;
	size_t len;
	size_t cap;
	bool oom;
};

static void sb_add(struct sbuf *b, const char *p, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 128;
		char *s;

		while (cap < b->len + n + 1)
			cap *= 2;
		s = realloc(b->s, cap);
		if (!s) {
			b->oom = true;
			return;
		}
		b->s = s;
		b->cap = cap;
	}
	memcpy(b->s + b->len, p, n);
	b->len += n;
	b->s[b->len] = '\0';
}

static void sb_str(struct sbuf *b, const char *s)
{
	sb_add(b, s, strlen(s));
}

/* If p starts an HTML tag "<name...>", its length (through '>'), and its lower-case name. */
static size_t html_tag(const char *p, char *name, size_t name_size)
{
	size_t i = 1, n = 0;

	if (p[0] != '<')
		return 0;
	if (p[i] == '/')
		name[n++] = p[i++];
	if (!isalpha((unsigned char)p[i]))
		return 0;
	while (isalnum((unsigned char)p[i])) {
		if (n + 1 < name_size)
			name[n++] = (char)tolower((unsigned char)p[i]);
		i++;
	}
	name[n] = '\0';
	while (p[i] && p[i] != '>' && p[i] != '<')
		i++;
	return p[i] == '>' ? i + 1 : 0;
}

/* If p starts a markdown link "[text](url)", its length, and the text's span. */
static size_t md_link(const char *p, const char **text, size_t *text_len)
{
	const char *close, *end;

	if (p[0] != '[')
		return 0;
	close = strchr(p + 1, ']');
	if (!close || close[1] != '(')
		return 0;
	end = strchr(close + 2, ')');
	if (!end)
		return 0;
	*text = p + 1;
	*text_len = (size_t)(close - (p + 1));
	return (size_t)(end + 1 - p);
}

/*
 * First pass: markup to text with '\n' line breaks. Lists may nest; each
 * <ol> restarts numbering at 1 and </ol> returns to the outer count.
 */
static void remedy_markup(struct sbuf *b, const char *s)
{
	unsigned counters[8] = {0};
	size_t depth = 0;
	char name[8];

	while (*s) {
		const char *text;
		size_t text_len, n;

		n = html_tag(s, name, sizeof(name));
		if (n) {
			if (strcmp(name, "ol") == 0 || strcmp(name, "ul") == 0) {
				if (depth + 1 < sizeof(counters) / sizeof(counters[0]))
					depth++;
				counters[depth] = 0;
				sb_str(b, "\n");
			} else if (strcmp(name, "/ol") == 0 || strcmp(name, "/ul") == 0) {
				if (depth > 0)
					depth--;
				sb_str(b, "\n");
			} else if (strcmp(name, "li") == 0) {
				char num[24];

				snprintf(num, sizeof(num), "\n%u. ", ++counters[depth]);
				sb_str(b, num);
			} else if (strcmp(name, "br") == 0 || strcmp(name, "/li") == 0 ||
				   strcmp(name, "p") == 0 || strcmp(name, "/p") == 0) {
				sb_str(b, "\n");
			}
			/* Any other tag is dropped. */
			s += n;
			continue;
		}
		n = md_link(s, &text, &text_len);
		if (n) {
			for (size_t i = 0; i < text_len; i++) {
				if (text[i] != '`')
					sb_add(b, &text[i], 1);
			}
			s += n;
			continue;
		}
		if (*s != '`')
			sb_add(b, s, 1);
		s++;
	}
}

/* Second pass: per line, collapse blanks and trim; drop empty lines. */
static void remedy_lines(struct sbuf *out, const char *s)
{
	bool first_line = true;

	while (*s) {
		const char *eol = strchr(s, '\n');
		size_t n = eol ? (size_t)(eol - s) : strlen(s);
		bool blank = false, any = false;

		for (size_t i = 0; i < n; i++) {
			unsigned char c = (unsigned char)s[i];

			if (isspace(c) || iscntrl(c)) {
				blank = any;
				continue;
			}
			if (!any && !first_line)
				sb_str(out, "\n");
			if (blank)
				sb_str(out, " ");
			sb_add(out, (const char *)&s[i], 1);
			blank = false;
			any = true;
		}
		if (any)
			first_line = false;
		s += n;
		if (*s == '\n')
			s++;
	}
}

/* Markup to plain text, lines joined with "\n". NULL on ENOMEM. */
static char *plain_text(const char *markup)
{
	struct sbuf pass = {0}, out = {0};

	remedy_markup(&pass, markup ? markup : "");
	sb_str(&pass, "");
	if (pass.oom)
		goto out;
	remedy_lines(&out, pass.s);
	sb_str(&out, "");
out:
	free(pass.s);
	if (pass.oom || out.oom) {
		free(out.s);
		return NULL;
	}
	return out.s;
}

/* Plain text (no markup pass), per line blanks collapsed and ends trimmed. NULL on ENOMEM. */
static char *plain_lines(const char *text)
{
	struct sbuf out = {0};

	remedy_lines(&out, text);
	sb_str(&out, "");
	if (out.oom) {
		free(out.s);
		return NULL;
	}
	return out.s;
}

char *dbx_errors_remedy(const struct dbx_ssem_row *row)
{
	if (!row)
		return NULL;
	return plain_text(row->resolution);
}

/* ---- the errors-file block ---- */

/* True when s holds something besides blanks and control characters. */
static bool has_text(const char *s)
{
	if (!s)
		return false;
	for (; *s; s++) {
		if (!isspace((unsigned char)*s) && !iscntrl((unsigned char)*s))
			return true;
	}
	return false;
}

/*
 * Append "key: value\n" with value on one line: control characters (CR, LF,
 * tabs, escapes) become spaces and the ends are trimmed, so a service
 * string can never start a line of its own.
 */
static void add_field(struct sbuf *b, const char *key, const char *value)
{
	size_t start = 0, end = strlen(value);

	while (start < end &&
	       (isspace((unsigned char)value[start]) || iscntrl((unsigned char)value[start])))
		start++;
	while (end > start &&
	       (isspace((unsigned char)value[end - 1]) || iscntrl((unsigned char)value[end - 1])))
		end--;
	sb_str(b, key);
	sb_str(b, ": ");
	for (size_t i = start; i < end; i++) {
		unsigned char c = (unsigned char)value[i];

		if (iscntrl(c))
			sb_str(b, " ");
		else
			sb_add(b, &value[i], 1);
	}
	sb_str(b, "\n");
}

/*
 * "time: ..." in one spelling, ISO 8601 UTC to the second ("2026-11-28T12:00:00Z"),
 * whatever offset and fraction the service used; text we cannot read is shown as given.
 */
static void add_time(struct sbuf *b, const char *value)
{
	time_t t = dbx_parse_time(value);
	char utc[DBX_TIME_STR_MAX];

	if (t == (time_t)-1) {
		add_field(b, "time", value);
		return;
	}
	dbx_format_time(t, utc);
	add_field(b, "time", utc);
}

/* "remedy: first line\n  second line\n...": continuation lines indented by two spaces. */
static void add_remedy(struct sbuf *b, const char *remedy)
{
	const char *s = remedy;
	bool first = true;

	sb_str(b, "remedy:");
	while (*s) {
		const char *eol = strchr(s, '\n');
		size_t n = eol ? (size_t)(eol - s) : strlen(s);

		sb_str(b, first ? " " : "  ");
		sb_add(b, s, n);
		sb_str(b, "\n");
		first = false;
		s += n;
		if (*s == '\n')
			s++;
	}
	if (first)
		sb_str(b, "\n");
}

/* The table's details as one line: markup removed, line breaks become spaces. */
static char *details_line(const char *details)
{
	char *t = plain_text(details);

	if (t) {
		for (char *p = t; *p; p++) {
			if (*p == '\n')
				*p = ' ';
		}
	}
	return t;
}

enum dbx_err dbx_error_block_append(char **buf, size_t *len, const struct dbx_error_block *block)
{
	const struct dbx_ssem_row *row, *generic = dbx_ssem_generic();
	struct sbuf b = {0};
	char *remedy = NULL, *details = NULL, *grown;
	const char *message;
	enum dbx_err rc = DBX_OK;

	if (!buf || !len || !block || !has_text(block->code))
		return DBX_EINVAL;

	row = dbx_ssem_lookup(block->code);
	if (has_text(block->remedy))
		remedy = plain_lines(block->remedy); /* the producer's own advice, as plain text */
	else
		remedy = dbx_errors_remedy(row ? row : generic);
	if (!remedy) {
		rc = DBX_ENOMEM;
		goto out;
	}
	message = block->message;
	if (!has_text(message)) {
		/*
		 * No text from the service: the table's details. For a code the
		 * table does not know, the Generic row's "Could not fetch the
		 * passkey." is only true of passkey (Ssem*) errors.
		 */
		if (row || strncmp(block->code, "Ssem", 4) == 0) {
			details = details_line(row ? row->details : generic->details);
			if (!details) {
				rc = DBX_ENOMEM;
				goto out;
			}
			message = details;
		} else {
			message = "(no details from the service)";
		}
	}

	if (!*buf)
		*len = 0;
	if (*len > 0) {
		if ((*buf)[*len - 1] != '\n')
			sb_str(&b, "\n");
		sb_str(&b, "\n");
	}
	add_field(&b, "code", block->code);
	if (has_text(block->source))
		add_field(&b, "source", block->source);
	if (has_text(block->time))
		add_time(&b, block->time);
	add_field(&b, "message", message);
	if (has_text(block->target))
		add_field(&b, "target", block->target);
	if (has_text(block->recoverable))
		add_field(&b, "recoverable", block->recoverable);
	else
		add_field(&b, "recoverable",
			  dbx_recoverable_str(row ? row->recoverable : generic->recoverable));
	add_remedy(&b, remedy);
	if (has_text(block->request_id))
		add_field(&b, "request_id", block->request_id);
	if (b.oom) {
		rc = DBX_ENOMEM;
		goto out;
	}

	grown = realloc(*buf, *len + b.len + 1);
	if (!grown) {
		rc = DBX_ENOMEM;
		goto out;
	}
	memcpy(grown + *len, b.s, b.len + 1);
	*buf = grown;
	*len += b.len;
out:
	free(b.s);
	free(remedy);
	free(details);
	return rc;
}
/* ---- the errors file: blocks from the order, the last write and the last read ---- */

/* What the mount advises for a failure without a service code to decode. */
struct advice {
	enum dbx_err err;
	const char *code;
	const char *recoverable;
	const char *remedy;
};

/* The rows that read the same after a failed read and a failed write. */
#define ADVICE_AUTH                                                                                \
	{                                                                                          \
		DBX_EAUTH, "AuthenticationFailed", "yes",                                          \
		    "No credential could produce a token. Check the AZURE_* environment "          \
		    "variables, the managed identity or 'az login', and the -o credential= "       \
		    "option."                                                                      \
	}
#define ADVICE_NOT_FOUND                                                                           \
	{                                                                                          \
		DBX_ENOTFOUND, "NotFound", "no", "The order no longer exists."                     \
	}

/* The mount's advice after a failed read. */
static const struct advice read_advice[] = {
    {DBX_EUNREACHABLE, "HostUnreachable", "yes",
     "Azure Resource Manager could not be reached (DNS, connection or TLS failure). Check the "
     "network, proxy and firewall; the next read tries again."},
    {DBX_ETIMEDOUT, "Timeout", "yes",
     "Azure Resource Manager did not answer within the timeout. Try again later, or mount with a "
     "larger -o timeout=SECONDS."},
    {DBX_ETHROTTLED, "Throttled", "yes",
     "Azure Resource Manager throttled the requests (429) beyond the retry budget. Wait a minute "
     "and read again; a larger -o cache_ttl= makes fewer requests."},
    ADVICE_AUTH,
    {DBX_EACCES, "AccessDenied", "yes",
     "The mount's credential may not read this order. Grant it a role with "
     "Microsoft.DataBox/jobs/read (for example Reader) on the subscription or resource group."},
    ADVICE_NOT_FOUND,
    {DBX_EBUSY, "Conflict", "depends",
     "The service refused the request in the order's current state."},
    {DBX_EINVAL, "BadRequest", "no",
     "The service refused the request. Check -o api_version= and the subscription ID."},
    {DBX_EINTR, "Interrupted", "yes", "The read was interrupted; read again."},
    {DBX_ENOMEM, "OutOfMemory", "yes", "The mount ran out of memory; read again."},
    {DBX_ECONFIG, "ConfigurationError", "no", "Check the mount options and environment."},
};

static const struct advice generic_advice = {
    DBX_EREMOTE, "ServiceError", "depends",
    "Azure Resource Manager failed or answered something unexpected. Try again later; quote the "
    "request_id in a support ticket if it persists."};

/* The mount's advice after a failed write. */
static const struct advice write_advice[] = {
    {DBX_OK, "PreflightSkipped", "yes",
     "The change was applied, but the checks the message names were not made before it (it "
     "says why: the mount's credential may not read the vault or key, or the identity that "
     "will use the key does not exist yet); the service decided without them. If the cause is "
     "a 403, grant the mount's identity read access to the vault (Reader) and the key (get). "
     "If the order later reports a key error, its block here says what to fix."},
    {DBX_EINVAL, "InvalidValue", "yes",
     "The value was refused before anything was sent. Correct the part the message names and "
     "write the value again."},
    {DBX_EUNREACHABLE, "HostUnreachable", "yes",
     "Azure Resource Manager or Key Vault could not be reached (DNS, connection or TLS "
     "failure). Check the network, proxy and firewall, read the file to see whether the change "
     "arrived, and write again."},
    {DBX_ETIMEDOUT, "Timeout", "depends",
     "The write did not finish within the timeout. Read the file to see whether the change "
     "arrived; write again, or mount with a larger -o timeout=SECONDS."},
    {DBX_ETHROTTLED, "Throttled", "yes",
     "Azure Resource Manager throttled the requests (429) beyond the retry budget. Wait a minute "
     "and write again."},
    ADVICE_AUTH,
    {DBX_EACCES, "AccessDenied", "yes",
     "The mount's credential may not change this order or read the key vault. Grant it "
     "Microsoft.DataBox/jobs/write (for example Contributor) on the order, and read access to "
     "the vault and key."},
    ADVICE_NOT_FOUND,
    {DBX_EBUSY, "Conflict", "depends",
     "The service refused the change in the order's current stage (see status)."},
    {DBX_EINTR, "Interrupted", "yes",
     "The write was interrupted before the update was sent; nothing changed. Write again."},
    {DBX_ENOMEM, "OutOfMemory", "yes", "The mount ran out of memory; write again."},
};

static const struct advice write_generic_advice = {
    DBX_EREMOTE, "ServiceError", "depends",
    "Azure Resource Manager failed or answered something unexpected. Read the file to see "
    "whether the change arrived; quote the request_id in a support ticket if it persists."};

/*
 * A failure to get a token (the request needing it was never sent), after a
 * read or a write: the token endpoint is to blame, not ARM.
 */
static const struct advice token_advice[] = {
    {DBX_ETIMEDOUT, "TokenTimeout", "yes",
     "The credential's token endpoint (Microsoft Entra ID, the managed identity endpoint or "
     "the Azure CLI) did not answer within the timeout, so the request that needed the token "
     "was not sent. Check the network path to it and try again, or mount with a larger -o "
     "timeout=SECONDS."},
    {DBX_EUNREACHABLE, "TokenEndpointUnreachable", "yes",
     "The credential's token endpoint could not be reached (DNS, connection or TLS failure), "
     "so the request that needed the token was not sent. Check the network, proxy and "
     "firewall, then try again."},
    {DBX_EREMOTE, "TokenEndpointError", "depends",
     "The credential's token endpoint failed or answered something unexpected, so the request "
     "that needed the token was not sent. Try again later; quote the message in a support "
     "ticket if it persists."},
};

/* The token table's row for e, when e is a token failure it has one for; else NULL. */
static const struct advice *token_advice_for(const struct dbx_error *e)
{
	if (e->service != DBX_SERVICE_TOKEN)
		return NULL;
	for (size_t i = 0; i < sizeof(token_advice) / sizeof(token_advice[0]); i++) {
		if (token_advice[i].err == e->err)
			return &token_advice[i];
	}
	return NULL;
}

/*
 * A write whose failing request went to the key's vault (the preflight's key
 * read): the same rows, naming Key Vault. Nothing was sent to ARM then.
 */
static const struct advice keyvault_write_advice[] = {
    {DBX_EUNREACHABLE, "HostUnreachable", "yes",
     "The key vault could not be reached (DNS, connection or TLS failure); nothing was "
     "changed. Check the network, proxy and firewall (and the vault's network rules), then "
     "write again."},
    {DBX_ETIMEDOUT, "Timeout", "yes",
     "The key vault did not answer within the timeout; nothing was changed. Write again, or "
     "mount with a larger -o timeout=SECONDS."},
    {DBX_ETHROTTLED, "Throttled", "yes",
     "The key vault throttled the requests (429) beyond the retry budget; nothing was "
     "changed. Wait a minute and write again."},
    {DBX_EACCES, "AccessDenied", "yes",
     "The mount's credential may not read the key. Grant it get on keys in the vault (an "
     "access policy, or the Key Vault Crypto User role)."},
    {DBX_EREMOTE, "ServiceError", "depends",
     "The key vault failed or answered something unexpected; nothing was changed. Try again "
     "later; quote the request_id in a support ticket if it persists."},
};

/*
 * A stage that needs the customer is reported by its stage status, which
 * the Ssem table does not know; its Generic row ("contact support") would
 * be wrong advice. These are the mount's own words for those statuses.
 */
static const struct {
	const char *status, *recoverable, *remedy;
} stage_advice_table[] = {
    {"WaitingForCustomerActionForKek", "yes",
     "The order is paused at this stage until its customer-managed key can be used. Fix what "
     "the service reports (the Ssem block in this file, if any: the key enabled and not "
     "expired, the vault and key present, Get, WrapKey and UnwrapKey granted to the order's "
     "identity), then write the key URL to key_url again so the service checks it again."},
    {"WaitingForCustomerAction", "yes",
     "The order waits for an action from you at this stage; the Azure portal shows the "
     "choices (properties.details.actions)."},
    {"WaitingForCustomerActionForCleanUp", "yes",
     "The service waits for you to confirm the device clean-up; see the order in the Azure "
     "portal."},
    {"Failed", "depends",
     "The stage failed. Contact Microsoft Support with the order name and the time above."},
};

static void stage_advice(const char *code, struct dbx_error_block *b)
{
	for (size_t i = 0; i < sizeof(stage_advice_table) / sizeof(stage_advice_table[0]); i++) {
		if (strcmp(code, stage_advice_table[i].status) == 0) {
			b->recoverable = stage_advice_table[i].recoverable;
			b->remedy = stage_advice_table[i].remedy;
			return;
		}
	}
}

/* The row of table (n rows) for err, else fallback. */
static const struct advice *advice_lookup(const struct advice *table, size_t n,
					  const struct advice *fallback, enum dbx_err err)
{
	for (size_t i = 0; i < n; i++) {
		if (table[i].err == err)
			return &table[i];
	}
	return fallback;
}

static const struct advice *read_advice_for(const struct dbx_error *e)
{
	const struct advice *a = token_advice_for(e);

	if (a)
		return a;
	return advice_lookup(read_advice, sizeof(read_advice) / sizeof(read_advice[0]),
			     &generic_advice, e->err);
}

static const struct advice *write_advice_for(const struct dbx_error *e)
{
	const struct advice *a = token_advice_for(e);

	if (a)
		return a;
	if (e->service == DBX_SERVICE_KEYVAULT)
		a = advice_lookup(keyvault_write_advice,
				  sizeof(keyvault_write_advice) / sizeof(keyvault_write_advice[0]),
				  NULL, e->err);
	if (a)
		return a;
	return advice_lookup(write_advice, sizeof(write_advice) / sizeof(write_advice[0]),
			     &write_generic_advice, e->err);
}

/*
 * A block for a failure the mount itself saw (source "read" or
 * "last-write"), at time t: the service's code, message and request id when
 * it sent them, else the mount's name and the error's own words. With
 * decode the Ssem table gives recoverable and remedy, else advice a.
 */
static enum dbx_err append_failure_block(char **buf, size_t *len, const char *source,
					 const struct dbx_error *e, time_t t, const char *target,
					 const struct advice *a, bool decode)
{
	struct dbx_error_block b = {0};
	char when[DBX_TIME_STR_MAX];

	dbx_format_time(t, when);
	b.code = e->code[0] ? e->code : a->code;
	b.source = source;
	b.time = when;
	b.message = e->message[0] ? e->message : dbx_err_str(e->err);
	b.target = target && *target ? target : NULL;
	b.request_id = e->request_id[0] ? e->request_id : NULL;
	b.recoverable = decode ? NULL : a->recoverable;
	b.remedy = decode ? NULL : a->remedy;
	return dbx_error_block_append(buf, len, &b);
}

/* The read block: always the mount's advice, which knows what a failed read means. */
static enum dbx_err append_read_block(char **buf, size_t *len, const struct dbx_errors_input *in)
{
	const struct dbx_error *e = in->read_err;

	return append_failure_block(buf, len, "read", e, in->read_time, NULL, read_advice_for(e),
				    false);
}

/*
 * The last-write block. A code the Ssem table knows is decoded by the table;
 * a service code it does not know gets the table's Generic row (docs/formats.md,
 * "The errors file"); a failure with no code, or a local one (no HTTP status, e.g.
 * InvalidValue), gets the mount's own advice for writes.
 */
static enum dbx_err append_write_block(char **buf, size_t *len, const struct dbx_errors_input *in)
{
	const struct dbx_error *e = in->write_err;
	bool decode = e->code[0] && (dbx_ssem_lookup(e->code) || e->http_status != 0);

	return append_failure_block(buf, len, "last-write", e, in->write_time, in->write_target,
				    write_advice_for(e), decode);
}

struct problem_ref {
	const struct dbx_order_problem *p;
	const char *time_raw; /* the stage time, or the order's lastModifiedAt */
	time_t t;	      /* parsed, -1 when unknown */
};

/*
 * The order's problems, newest first: a stable insertion sort on time,
 * unknown times keep their place at the end. *out is malloc'd (NULL when
 * there are none).
 */
static enum dbx_err sort_problems(const struct dbx_errors_input *in, struct problem_ref **out)
{
	struct problem_ref *refs;

	*out = NULL;
	if (!in->problems || !in->n_problems)
		return DBX_OK;
	refs = calloc(in->n_problems, sizeof(*refs));
	if (!refs)
		return DBX_ENOMEM;
	for (size_t i = 0; i < in->n_problems; i++) {
		struct problem_ref r = {&in->problems[i], in->problems[i].time, -1};
		size_t j = i;

		if (!r.time_raw)
			r.time_raw = in->order_time;
		if (r.time_raw)
			r.t = dbx_parse_time(r.time_raw);
		while (j > 0 && refs[j - 1].t < r.t) {
			refs[j] = refs[j - 1];
			j--;
		}
		refs[j] = r;
	}
	*out = refs;
	return DBX_OK;
}

/* One "order" block for problem r (nothing for a problem without a code). */
static enum dbx_err append_order_block(char **buf, size_t *len, const struct problem_ref *r)
{
	struct dbx_error_block b = {0};
	char when[DBX_TIME_STR_MAX];

	if (!r->p->code || !*r->p->code)
		return DBX_OK;
	b.code = r->p->code;
	b.source = "order";
	if (r->t >= 0) {
		dbx_format_time(r->t, when);
		b.time = when;
	} else {
		b.time = r->time_raw;
	}
	b.message = r->p->message;
	b.target = r->p->target;
	stage_advice(b.code, &b);
	return dbx_error_block_append(buf, len, &b);
}

enum dbx_err dbx_errors_render(const struct dbx_errors_input *in, char **buf, size_t *len)
{
	bool has_read = in->read_err && in->read_err->err != DBX_OK;
	bool has_write = in->write_err != NULL;
	struct problem_ref *refs = NULL;
	size_t n_refs = in->problems ? in->n_problems : 0, next = 0;
	char *text = NULL;
	size_t n = 0;
	enum dbx_err rc;

	/*
	 * Newest first across sources. A failed refresh is the latest news
	 * about the order: its block precedes the problems of the older
	 * snapshot. The last-write block goes before it when newer, and among
	 * the order's problems by time (a write that failed long ago must not
	 * hide what the order reported since); on a tie it comes first.
	 */
	rc = sort_problems(in, &refs);
	while (rc == DBX_OK && (has_read || has_write || next < n_refs)) {
		if (has_write && (!has_read || in->write_time >= in->read_time) &&
		    (has_read || next >= n_refs || refs[next].t < 0 ||
		     in->write_time >= refs[next].t)) {
			rc = append_write_block(&text, &n, in);
			has_write = false;
		} else if (has_read) {
			rc = append_read_block(&text, &n, in);
			has_read = false;
		} else {
			rc = append_order_block(&text, &n, &refs[next++]);
		}
	}
	if (rc != DBX_OK)
		goto out;
	if (!text) {
		text = calloc(1, 1);
		if (!text) {
			rc = DBX_ENOMEM;
			goto out;
		}
	}
	*buf = text;
	*len = n;
	text = NULL;
out:
	free(refs);
	free(text);
	return rc;
}
