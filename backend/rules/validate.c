/*
 * validate.c: the local rules a written value must pass before any request
 * is sent (validate.h, docs/formats.md, "Validation"). Pure functions over (pointer, length)
 * byte strings: they never allocate (json-c aside, for encryption.json),
 * never touch the network and never trust a NUL terminator.
 *
 * A rejection fills struct dbx_error with DBX_EINVAL, the Ssem code the
 * service would answer (or "InvalidValue" for values that are not key URLs)
 * and one line naming the offending part. Parts of the value are quoted with
 * every control, non-ASCII, quote and backslash byte escaped as \xNN, so a
 * hostile write cannot forge lines in the errors file or in syslog. User
 * info is never echoed (it may hold a password).
 *
 * Key URL checks run in a fixed order, so the code a user sees does not
 * depend on which of several mistakes the scanner met first: control
 * characters and blanks anywhere, then non-ASCII bytes (InvalidHost inside
 * the host: an IDN host is a host problem; InvalidKeyVaultUrl elsewhere),
 * then the scheme, then the authority (user info, port, percent-encoding ->
 * InvalidKeyVaultUrl; what the host is -> InvalidHost; the vault name's own
 * spelling -> InvalidKeyVaultUrl), then query, fragment, percent-encoding
 * and the path.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <json-c/json.h>

#include "databoxfs/json_scan.h"
#include "databoxfs/validate.h"

#define CODE_INVALID_URL    "SsemUserErrorInvalidKeyVaultUrl"
#define CODE_INVALID_SCHEME "SsemUserErrorKeyVaultUrlWithInvalidScheme"
#define CODE_INVALID_HOST   "SsemUserErrorKeyVaultUrlInvalidHost"
#define CODE_INVALID_VALUE  "InvalidValue"

/* At most this many source bytes of a value are quoted in a message. */
#define QUOTE_SRC_MAX 96
/* Each quoted byte takes at most 4 output bytes (\xNN), plus "..." and NUL. */
#define QUOTE_CAP (QUOTE_SRC_MAX * 4 + 4)

/* The largest encryption.json write we parse (the real one is ~400 bytes). */
#define JSON_MAX_LEN 65536

#define RG_NAME_MAX  90
#define UAI_NAME_MIN 3
#define UAI_NAME_MAX 128

static const char *const known_clouds[] = {"AzureCloud", "AzureUSGovernment", "AzureChinaCloud"};

static enum dbx_err reject(struct dbx_error *err, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Fill *err with DBX_EINVAL, code and the formatted message; return DBX_EINVAL. */
static enum dbx_err reject(struct dbx_error *err, const char *code, const char *fmt, ...)
{
	char msg[DBX_ERR_MSG_MAX];
	va_list ap;

	if (!err)
		return DBX_EINVAL;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	dbx_error_clear(err);
	dbx_error_set(err, DBX_EINVAL, "%s", msg);
	snprintf(err->code, sizeof(err->code), "%s", code);
	err->http_status = 0;
	return DBX_EINVAL;
}

/*
 * Copy s[0..n) into dst (QUOTE_CAP bytes) for a message: printable ASCII as
 * is, anything else and '"' and '\' as \xNN; "..." when longer than
 * QUOTE_SRC_MAX. Returns dst.
 */
static const char *quote(char *dst, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	size_t lim = n > QUOTE_SRC_MAX ? QUOTE_SRC_MAX : n;

	for (size_t i = 0; i < lim; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') {
			dst[o++] = '\\';
			dst[o++] = 'x';
			dst[o++] = hex[c >> 4];
			dst[o++] = hex[c & 0xf];
		} else {
			dst[o++] = (char)c;
		}
	}
	if (lim < n) {
		memcpy(dst + o, "...", 3);
		o += 3;
	}
	dst[o] = '\0';
	return dst;
}

/* quote() for a whole key URL, unless it may hold user info (a password). */
static const char *quote_url(char *dst, const char *v, size_t n)
{
	if (memchr(v, '@', n)) {
		snprintf(dst, QUOTE_CAP, "(not shown: it holds user info)");
		return dst;
	}
	return quote(dst, v, n);
}

static bool is_ctl(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

static bool is_alpha(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static bool is_alnum(unsigned char c)
{
	return is_alpha(c) || is_digit(c);
}

static bool is_hex(unsigned char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static char lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* s[0..n) equals the NUL-terminated word, ASCII case-insensitively. */
static bool eq_ci(const char *s, size_t n, const char *word)
{
	return strlen(word) == n && strncasecmp(s, word, n) == 0;
}

/* Offset of the first byte of s[0..n) that is one of set, or n. */
static size_t find_any(const char *s, size_t n, const char *set)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] != '\0' && strchr(set, s[i]))
			return i;
	}
	return n;
}

/* Offset of the first occurrence of word in s[0..n), or n. */
static size_t find_str(const char *s, size_t n, const char *word)
{
	size_t w = strlen(word);

	for (size_t i = 0; i + w <= n; i++) {
		if (memcmp(s + i, word, w) == 0)
			return i;
	}
	return n;
}

/*
 * host[0..n) ends with "." suffix on a label boundary with at least one
 * byte before the dot (ASCII case-insensitive).
 */
static bool has_label_suffix(const char *host, size_t n, const char *suffix)
{
	size_t slen = strlen(suffix);

	return n > slen + 1 && host[n - slen - 1] == '.' &&
	       strncasecmp(host + n - slen, suffix, slen) == 0;
}

/*
 * Where the host of a key URL is, for the IDN rule: after the first ':' when
 * "//" follows it, up to the path, query or fragment. Empty when there is none.
 */
static void authority_span(const char *v, size_t len, size_t *start, size_t *end)
{
	size_t colon = find_any(v, len, ":");

	*start = *end = 0;
	if (len - colon < 3 || v[colon + 1] != '/' || v[colon + 2] != '/')
		return;
	*start = colon + 3;
	*end = *start + find_any(v + *start, len - *start, "/?#");
}

/* Step 1 of the key URL rules: control characters, blanks, non-ASCII. */
static enum dbx_err check_url_bytes(const char *v, size_t len, struct dbx_error *err)
{
	size_t a_start, a_end;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)v[i];

		if (is_ctl(c))
			return reject(
			    err, CODE_INVALID_URL,
			    "key URL contains a control character (\\x%02x) at offset %zu", c, i);
		if (c == ' ')
			return reject(err, CODE_INVALID_URL,
				      "key URL contains a blank at offset %zu", i);
	}
	authority_span(v, len, &a_start, &a_end);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)v[i];

		if (c < 0x80)
			continue;
		if (i >= a_start && i < a_end)
			return reject(
			    err, CODE_INVALID_HOST,
			    "key URL host contains a non-ASCII byte (\\x%02x) at offset %zu: "
			    "internationalised host names are not Key Vault hosts",
			    c, i);
		return reject(err, CODE_INVALID_URL,
			      "key URL contains a non-ASCII byte (\\x%02x) at offset %zu", c, i);
	}
	return DBX_OK;
}

/*
 * Step 2: "https://" (scheme case-insensitive). On success *rest is the
 * offset just after "//".
 */
static enum dbx_err check_scheme(const char *v, size_t len, size_t *rest, struct dbx_error *err)
{
	char q[QUOTE_CAP];
	size_t i = 0;

	if (len > 0 && is_alpha((unsigned char)v[0])) {
		i = 1;
		while (i < len &&
		       (is_alnum((unsigned char)v[i]) || v[i] == '+' || v[i] == '-' || v[i] == '.'))
			i++;
	}
	if (i == 0 || i >= len || v[i] != ':')
		return reject(err, CODE_INVALID_SCHEME,
			      "key URL \"%s\" has no scheme: only https:// key URLs are supported",
			      quote_url(q, v, len));
	if (!eq_ci(v, i, "https"))
		return reject(
		    err, CODE_INVALID_SCHEME,
		    "key URL scheme \"%s\" is not https: only https:// key URLs are supported",
		    quote(q, v, i));
	if (len - i < 3 || v[i + 1] != '/' || v[i + 2] != '/')
		return reject(err, CODE_INVALID_URL,
			      "key URL \"%s\" does not start with \"https://\"",
			      quote_url(q, v, len));
	*rest = i + 3;
	return DBX_OK;
}

/* Which known cloud's vault suffix host[0..n) ends with, or NULL. */
static const struct dbx_cloud *vault_cloud_of(const char *host, size_t n)
{
	for (size_t i = 0; i < sizeof(known_clouds) / sizeof(known_clouds[0]); i++) {
		const struct dbx_cloud *c = dbx_cloud_find(known_clouds[i]);

		if (c && c->vault_suffix &&
		    (has_label_suffix(host, n, c->vault_suffix) || eq_ci(host, n, c->vault_suffix)))
			return c;
	}
	return NULL;
}

/* host[0..n) is, or ends on a label boundary with, some cloud's Managed HSM suffix. */
static bool is_mhsm_host(const char *host, size_t n, const struct dbx_cloud *cloud)
{
	if (cloud->mhsm_suffix &&
	    (has_label_suffix(host, n, cloud->mhsm_suffix) || eq_ci(host, n, cloud->mhsm_suffix)))
		return true;
	for (size_t i = 0; i < sizeof(known_clouds) / sizeof(known_clouds[0]); i++) {
		const struct dbx_cloud *c = dbx_cloud_find(known_clouds[i]);

		if (c && c->mhsm_suffix &&
		    (has_label_suffix(host, n, c->mhsm_suffix) || eq_ci(host, n, c->mhsm_suffix)))
			return true;
	}
	return false;
}

/* Only digits and dots: an IPv4 literal (or a number), never a vault host. */
static bool is_numeric_host(const char *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (!is_digit((unsigned char)v[i]) && v[i] != '.')
			return false;
	}
	return true;
}

/* The vault name rules: 3-24 of [A-Za-z0-9-], a letter first, no "--", not ending in '-'. */
static enum dbx_err check_vault_name(const char *name, size_t n, struct dbx_error *err)
{
	char q[QUOTE_CAP];

	quote(q, name, n);
	if (n < 3 || n > DBX_VAULT_NAME_MAX)
		return reject(err, CODE_INVALID_URL,
			      "key vault name \"%s\" is %zu characters long: a vault name has 3-%d",
			      q, n, DBX_VAULT_NAME_MAX);
	for (size_t i = 0; i < n; i++) {
		if (!is_alnum((unsigned char)name[i]) && name[i] != '-')
			return reject(err, CODE_INVALID_URL,
				      "key vault name \"%s\" may hold only letters, digits and '-'",
				      q);
	}
	if (!is_alpha((unsigned char)name[0]))
		return reject(err, CODE_INVALID_URL,
			      "key vault name \"%s\" must start with a letter", q);
	if (name[n - 1] == '-')
		return reject(err, CODE_INVALID_URL,
			      "key vault name \"%s\" must end with a letter or digit", q);
	if (find_str(name, n, "--") < n)
		return reject(err, CODE_INVALID_URL,
			      "key vault name \"%s\" must not contain \"--\"", q);
	return DBX_OK;
}

/*
 * Step 3: the authority v[0..n): no user info, no port, a host that is
 * "<vault>.<cloud suffix>". On success the vault name (as written) is
 * v[0..*vault_len).
 */
static enum dbx_err check_authority(const char *v, size_t n, const struct dbx_cloud *cloud,
				    size_t *vault_len, struct dbx_error *err)
{
	char q[QUOTE_CAP];
	const struct dbx_cloud *other;
	size_t colon, vlen;

	if (memchr(v, '@', n))
		return reject(
		    err, CODE_INVALID_URL,
		    "key URL must not contain user info (a \"user@\" or \"user:password@\" "
		    "before the host)");
	if (n > 0 && v[0] == '[')
		return reject(
		    err, CODE_INVALID_HOST,
		    "key URL host \"%s\" is an IP address, not a Key Vault host of %s (*.%s)",
		    quote(q, v, n), cloud->name, cloud->vault_suffix);
	colon = find_any(v, n, ":");
	if (colon < n)
		return reject(err, CODE_INVALID_URL,
			      "key URL must not contain a port (\"%s\" after the host)",
			      quote(q, v + colon, n - colon));
	if (memchr(v, '%', n))
		return reject(err, CODE_INVALID_URL,
			      "key URL host \"%s\" must not be percent-encoded", quote(q, v, n));

	quote(q, v, n);
	if (n == 0)
		return reject(err, CODE_INVALID_HOST, "key URL has no host");
	if (is_numeric_host(v, n))
		return reject(
		    err, CODE_INVALID_HOST,
		    "key URL host \"%s\" is an IP address, not a Key Vault host of %s (*.%s)", q,
		    cloud->name, cloud->vault_suffix);
	if (v[n - 1] == '.')
		return reject(err, CODE_INVALID_HOST,
			      "key URL host \"%s\" ends with a dot: write the host without it", q);
	for (size_t i = 0; i < n; i++) {
		if (!is_alnum((unsigned char)v[i]) && v[i] != '-' && v[i] != '.')
			return reject(err, CODE_INVALID_HOST,
				      "key URL host \"%s\" is not a valid host name (only letters, "
				      "digits, '-' and '.')",
				      q);
		if (v[i] == '.' && (i == 0 || v[i - 1] == '.'))
			return reject(err, CODE_INVALID_HOST,
				      "key URL host \"%s\" has an empty label", q);
	}
	for (size_t i = 0; i < n; i++) {
		if ((i == 0 || v[i - 1] == '.') && n - i >= 4 && strncasecmp(v + i, "xn--", 4) == 0)
			return reject(err, CODE_INVALID_HOST,
				      "key URL host \"%s\" has a punycode (IDN) label: "
				      "internationalised host names are not Key Vault hosts",
				      q);
	}
	if (is_mhsm_host(v, n, cloud))
		return reject(err, CODE_INVALID_HOST,
			      "key URL host \"%s\" is a Managed HSM: Managed HSM keys are not "
			      "supported by Data Box, use a Key Vault key (*.%s)",
			      q, cloud->vault_suffix);
	if (eq_ci(v, n, cloud->vault_suffix))
		return reject(err, CODE_INVALID_HOST,
			      "key URL host \"%s\" has no vault name: expected <vault>.%s", q,
			      cloud->vault_suffix);
	if (!has_label_suffix(v, n, cloud->vault_suffix)) {
		other = vault_cloud_of(v, n);
		if (other && other != cloud)
			return reject(err, CODE_INVALID_HOST,
				      "key URL host \"%s\" is a Key Vault host of %s, not of %s "
				      "(*.%s)",
				      q, other->name, cloud->name, cloud->vault_suffix);
		return reject(err, CODE_INVALID_HOST,
			      "key URL host \"%s\" is not a Key Vault host of %s (*.%s)", q,
			      cloud->name, cloud->vault_suffix);
	}
	vlen = n - strlen(cloud->vault_suffix) - 1;
	if (memchr(v, '.', vlen))
		return reject(err, CODE_INVALID_HOST,
			      "key URL host \"%s\" is not a Key Vault host of %s: expected exactly "
			      "one vault label before .%s",
			      q, cloud->name, cloud->vault_suffix);
	if (check_vault_name(v, vlen, err) != DBX_OK)
		return DBX_EINVAL;
	*vault_len = vlen;
	return DBX_OK;
}

/*
 * Step 4: what follows the host, p[0..n): no query, fragment or
 * percent-encoding; the path /keys/<name>[/<version>] with at most one
 * trailing '/'. Fills name and version spans (version_len 0: latest).
 */
static enum dbx_err check_path(const char *p, size_t n, const char **name, size_t *name_len,
			       const char **version, size_t *version_len, struct dbx_error *err)
{
	char q[QUOTE_CAP];
	size_t bad = find_any(p, n, "?#%");
	size_t i, seg;

	if (bad < n) {
		quote(q, p + bad, n - bad);
		if (p[bad] == '?')
			return reject(err, CODE_INVALID_URL,
				      "key URL must not contain a query (\"%s\")", q);
		if (p[bad] == '#')
			return reject(err, CODE_INVALID_URL,
				      "key URL must not contain a fragment (\"%s\")", q);
		return reject(err, CODE_INVALID_URL,
			      "key URL must not contain percent-encoding (\"%s\")", q);
	}
	quote(q, p, n);
	if (n < 6 || !eq_ci(p, 6, "/keys/"))
		return reject(err, CODE_INVALID_URL,
			      "key URL path \"%s\" is not /keys/<name>[/<version>]", q);
	i = 6;
	seg = find_any(p + i, n - i, "/");
	if (seg == 0)
		return reject(err, CODE_INVALID_URL, "key URL path \"%s\" has no key name", q);
	if (seg > DBX_KEY_NAME_MAX)
		return reject(err, CODE_INVALID_URL,
			      "key name is %zu characters long: a key name has 1-%d", seg,
			      DBX_KEY_NAME_MAX);
	for (size_t k = 0; k < seg; k++) {
		if (!is_alnum((unsigned char)p[i + k]) && p[i + k] != '-')
			return reject(err, CODE_INVALID_URL,
				      "key name \"%s\" may hold only letters, digits and '-'",
				      quote(q, p + i, seg));
	}
	*name = p + i;
	*name_len = seg;
	*version = NULL;
	*version_len = 0;
	i += seg;
	if (i == n || i + 1 == n) /* end, or one trailing '/' */
		return DBX_OK;
	i++;
	seg = find_any(p + i, n - i, "/");
	if (seg == 0)
		return reject(err, CODE_INVALID_URL, "key URL path \"%s\" has an empty segment", q);
	{
		char qv[QUOTE_CAP];

		quote(qv, p + i, seg);
		if (seg != DBX_KEY_VERSION_LEN)
			return reject(err, CODE_INVALID_URL,
				      "key version \"%s\" is %zu characters long: a version is %d "
				      "hex digits",
				      qv, seg, DBX_KEY_VERSION_LEN);
		for (size_t k = 0; k < seg; k++) {
			if (!is_hex((unsigned char)p[i + k]))
				return reject(err, CODE_INVALID_URL,
					      "key version \"%s\" is not %d hex digits", qv,
					      DBX_KEY_VERSION_LEN);
		}
	}
	*version = p + i;
	*version_len = seg;
	i += seg;
	if (i == n || i + 1 == n)
		return DBX_OK;
	return reject(err, CODE_INVALID_URL,
		      "key URL path \"%s\" has segments after the key version", q);
}

/*
 * validate.h's contract, made precise: trailing blanks, then one "\n" (or
 * one "\r\n", for values pasted from Windows tools), then blanks again, and
 * leading blanks are stripped; any control byte left (NUL, CR, LF, TAB,
 * ESC, DEL, ...) is DBX_EINVAL "InvalidValue". An empty result is OK.
 */
enum dbx_err dbx_value_trim(const char *buf, size_t len, const char **out, size_t *out_len,
			    struct dbx_error *err)
{
	size_t b = 0, e = len;

	if (!buf)
		e = 0;
	while (e > b && (buf[e - 1] == ' ' || buf[e - 1] == '\t'))
		e--;
	if (e > b && buf[e - 1] == '\n') {
		e--;
		if (e > b && buf[e - 1] == '\r')
			e--;
		while (e > b && (buf[e - 1] == ' ' || buf[e - 1] == '\t'))
			e--;
	}
	while (b < e && (buf[b] == ' ' || buf[b] == '\t'))
		b++;
	for (size_t i = b; i < e; i++) {
		unsigned char c = (unsigned char)buf[i];

		if (is_ctl(c))
			return reject(err, CODE_INVALID_VALUE,
				      "value contains a control character (\\x%02x) at offset %zu: "
				      "write one line",
				      c, i);
	}
	*out = buf ? buf + b : "";
	*out_len = e - b;
	return DBX_OK;
}

enum dbx_err dbx_validate_key_url(const char *value, size_t len, const struct dbx_cloud *cloud,
				  struct dbx_key_url *out, struct dbx_error *err)
{
	struct dbx_key_url k;
	const char *name = NULL, *version = NULL;
	size_t rest = 0, a_end, vault_len = 0, name_len = 0, version_len = 0;

	if (!cloud)
		cloud = dbx_cloud_default();
	if (!value)
		len = 0;
	if (len == 0)
		return reject(
		    err, CODE_INVALID_URL,
		    "key URL is empty: expected https://<vault>.%s/keys/<name>[/<version>]",
		    cloud->vault_suffix);
	if (check_url_bytes(value, len, err) != DBX_OK)
		return DBX_EINVAL;
	if (check_scheme(value, len, &rest, err) != DBX_OK)
		return DBX_EINVAL;
	a_end = rest + find_any(value + rest, len - rest, "/?#");
	if (check_authority(value + rest, a_end - rest, cloud, &vault_len, err) != DBX_OK)
		return DBX_EINVAL;
	if (check_path(value + a_end, len - a_end, &name, &name_len, &version, &version_len, err) !=
	    DBX_OK)
		return DBX_EINVAL;

	memset(&k, 0, sizeof(k));
	for (size_t i = 0; i < vault_len; i++)
		k.vault[i] = lower(value[rest + i]);
	snprintf(k.host, sizeof(k.host), "%s.%s", k.vault, cloud->vault_suffix);
	for (size_t i = 0; k.host[i]; i++)
		k.host[i] = lower(k.host[i]);
	memcpy(k.name, name, name_len);
	for (size_t i = 0; i < version_len; i++)
		k.version[i] = lower(version[i]);
	snprintf(k.url, sizeof(k.url), "https://%s/keys/%s%s%s", k.host, k.name,
		 version_len ? "/" : "", k.version);
	if (out)
		*out = k;
	return DBX_OK;
}

/* s[0..n) is a GUID: 8-4-4-4-12 hex digits. */
static bool is_guid(const char *s, size_t n)
{
	if (n != 36)
		return false;
	for (size_t i = 0; i < n; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;

		if (dash ? s[i] != '-' : !is_hex((unsigned char)s[i]))
			return false;
	}
	return true;
}

/* A resource group name: 1-90 of [-A-Za-z0-9_.()], not ending in '.'. */
static bool is_rg_name(const char *s, size_t n)
{
	if (n < 1 || n > RG_NAME_MAX || s[n - 1] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!is_alnum(c) && c != '-' && c != '_' && c != '.' && c != '(' && c != ')')
			return false;
	}
	return true;
}

/* A user-assigned identity name: 3-128 of [A-Za-z0-9-_], a letter or digit first. */
static bool is_uai_name(const char *s, size_t n)
{
	if (n < UAI_NAME_MIN || n > UAI_NAME_MAX || !is_alnum((unsigned char)s[0]))
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!is_alnum(c) && c != '-' && c != '_')
			return false;
	}
	return true;
}

/*
 * Parse the user-assigned identity ID v[0..len) (starting with '/') into
 * the canonical spelling in out (512 bytes).
 */
static enum dbx_err parse_uai_id(const char *v, size_t len, char *out, size_t cap,
				 struct dbx_error *err)
{
	static const char *const fixed[] = {"subscriptions",
					    NULL,
					    "resourceGroups",
					    NULL,
					    "providers",
					    "Microsoft.ManagedIdentity",
					    "userAssignedIdentities",
					    NULL};
	const size_t n_seg = sizeof(fixed) / sizeof(fixed[0]);
	const char *seg[sizeof(fixed) / sizeof(fixed[0])];
	size_t seg_len[sizeof(fixed) / sizeof(fixed[0])];
	char q[QUOTE_CAP];
	size_t i = 1, n = 0;
	bool extra = false;

	if (len > 1 && v[len - 1] == '/')
		len--; /* one trailing '/' */
	while (i <= len) {
		size_t l = find_any(v + i, len - i, "/");

		if (n == n_seg) {
			extra = true;
			break;
		}
		seg[n] = v + i;
		seg_len[n] = l;
		n++;
		i += l + 1;
	}
	/* Name the first wrong fixed segment before counting them. */
	for (size_t s = 0; s < n; s++) {
		if (!fixed[s] || eq_ci(seg[s], seg_len[s], fixed[s]))
			continue;
		quote(q, seg[s], seg_len[s]);
		if (s == 5)
			return reject(err, CODE_INVALID_VALUE,
				      "identity provider \"%s\" is not Microsoft.ManagedIdentity",
				      q);
		if (s == 6)
			return reject(err, CODE_INVALID_VALUE,
				      "identity resource type \"%s\" is not userAssignedIdentities",
				      q);
		return reject(err, CODE_INVALID_VALUE, "identity segment \"%s\" should be \"%s\"",
			      q, fixed[s]);
	}
	if (n < n_seg)
		return reject(err, CODE_INVALID_VALUE,
			      "identity \"%s\" is not a user-assigned identity ID: expected "
			      "/subscriptions/<guid>/resourceGroups/<rg>/providers/"
			      "Microsoft.ManagedIdentity/userAssignedIdentities/<name>",
			      quote(q, v, len));
	if (extra)
		return reject(err, CODE_INVALID_VALUE,
			      "identity \"%s\" has segments after the identity name: expected "
			      "/subscriptions/<guid>/resourceGroups/<rg>/providers/"
			      "Microsoft.ManagedIdentity/userAssignedIdentities/<name>",
			      quote(q, v, len));
	if (!is_guid(seg[1], seg_len[1]))
		return reject(err, CODE_INVALID_VALUE,
			      "identity subscription \"%s\" is not a GUID "
			      "(xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)",
			      quote(q, seg[1], seg_len[1]));
	if (!is_rg_name(seg[3], seg_len[3]))
		return reject(
		    err, CODE_INVALID_VALUE,
		    "identity resource group \"%s\" is not a resource group name (1-%d of "
		    "letters, digits, '-', '_', '.', '(', ')', not ending in '.')",
		    quote(q, seg[3], seg_len[3]), RG_NAME_MAX);
	if (!is_uai_name(seg[7], seg_len[7]))
		return reject(err, CODE_INVALID_VALUE,
			      "identity name \"%s\" is not a user-assigned identity name (%d-%d of "
			      "letters, digits, '-', '_', starting with a letter or digit)",
			      quote(q, seg[7], seg_len[7]), UAI_NAME_MIN, UAI_NAME_MAX);
	snprintf(out, cap,
		 "/subscriptions/%.*s/resourceGroups/%.*s/providers/Microsoft.ManagedIdentity/"
		 "userAssignedIdentities/%.*s",
		 (int)seg_len[1], seg[1], (int)seg_len[3], seg[3], (int)seg_len[7], seg[7]);
	return DBX_OK;
}

enum dbx_err dbx_validate_identity(const char *value, size_t len, struct dbx_identity *out,
				   struct dbx_error *err)
{
	struct dbx_identity id;
	char q[QUOTE_CAP];

	if (!value)
		len = 0;
	for (size_t i = 0; i < len; i++) {
		if (is_ctl((unsigned char)value[i]))
			return reject(
			    err, CODE_INVALID_VALUE,
			    "identity contains a control character (\\x%02x) at offset %zu",
			    (unsigned char)value[i], i);
	}
	memset(&id, 0, sizeof(id));
	if (eq_ci(value, len, "SystemAssigned")) {
		id.kind = DBX_IDENTITY_SYSTEM;
		snprintf(id.id, sizeof(id.id), "SystemAssigned");
	} else if (eq_ci(value, len, "None")) {
		id.kind = DBX_IDENTITY_NONE;
		snprintf(id.id, sizeof(id.id), "None");
	} else if (len > 0 && value[0] == '/') {
		id.kind = DBX_IDENTITY_USER;
		if (parse_uai_id(value, len, id.id, sizeof(id.id), err) != DBX_OK)
			return DBX_EINVAL;
	} else {
		return reject(err, CODE_INVALID_VALUE,
			      "identity \"%s\" is not SystemAssigned, None or a user-assigned "
			      "identity ID (/subscriptions/<guid>/resourceGroups/<rg>/providers/"
			      "Microsoft.ManagedIdentity/userAssignedIdentities/<name>)",
			      quote(q, value ? value : "", len));
	}
	if (out)
		*out = id;
	return DBX_OK;
}

enum dbx_err dbx_validate_kek_type(const char *value, size_t len, enum dbx_kek_choice *out,
				   struct dbx_error *err)
{
	char q[QUOTE_CAP];
	enum dbx_kek_choice k;

	if (!value)
		len = 0;
	if (eq_ci(value, len, "MicrosoftManaged")) {
		k = DBX_KEK_CHOICE_MICROSOFT;
	} else if (eq_ci(value, len, "CustomerManaged")) {
		k = DBX_KEK_CHOICE_CUSTOMER;
	} else {
		return reject(err, CODE_INVALID_VALUE,
			      "encryption_type \"%s\" is not MicrosoftManaged or CustomerManaged",
			      quote(q, value ? value : "", len));
	}
	if (out)
		*out = k;
	return DBX_OK;
}

enum dbx_err dbx_validate_setting(enum dbx_setting setting, const char *value, size_t len,
				  const struct dbx_cloud *cloud, struct dbx_encryption_change *ch,
				  struct dbx_error *err)
{
	enum dbx_err rc = DBX_EINVAL;

	switch (setting) {
	case DBX_SETTING_KEK_TYPE:
		rc = dbx_validate_kek_type(value, len, &ch->kek_type, err);
		ch->has_kek_type = rc == DBX_OK;
		break;
	case DBX_SETTING_KEY_URL:
		rc = dbx_validate_key_url(value, len, cloud, &ch->key_url, err);
		ch->has_key_url = rc == DBX_OK;
		break;
	case DBX_SETTING_IDENTITY:
		rc = dbx_validate_identity(value, len, &ch->identity, err);
		ch->has_identity = rc == DBX_OK;
		break;
	}
	return rc;
}

/* The keys encryption.json may hold, the settings first; the last two are derived and ignored. */
enum json_key {
	KEY_ENCRYPTION_TYPE = DBX_SETTING_KEK_TYPE,
	KEY_KEY_URL = DBX_SETTING_KEY_URL,
	KEY_IDENTITY = DBX_SETTING_IDENTITY,
	KEY_KEY_VAULT,
	KEY_PRINCIPAL_ID
};
static const char *const json_keys[] = {"encryption_type", "key_url", "identity", "key_vault",
					"principal_id"};
#define N_JSON_KEYS (sizeof(json_keys) / sizeof(json_keys[0]))

/* Index of the decoded key s[0..n) in json_keys, or -1. Exact, case-sensitive. */
static int json_key_index(const char *s, size_t n)
{
	for (size_t i = 0; i < N_JSON_KEYS; i++) {
		if (strlen(json_keys[i]) == n && memcmp(json_keys[i], s, n) == 0)
			return (int)i;
	}
	return -1;
}

/*
 * The raw member name token r[0..n) (with its quotes): decode it with
 * json-c, then check it is one of json_keys and not in *seen.
 */
static enum dbx_err check_one_name(const char *r, size_t n, unsigned *seen, struct dbx_error *err)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *s = NULL;
	char q[QUOTE_CAP];
	enum dbx_err rc = DBX_OK;
	const char *name;
	size_t name_len;
	int idx;

	if (!tok)
		return dbx_error_set(err, DBX_ENOMEM, "out of memory parsing encryption.json");
	s = json_tokener_parse_ex(tok, r, (int)n);
	if (!s || !json_object_is_type(s, json_type_string)) {
		rc = reject(err, CODE_INVALID_VALUE, "encryption.json has a malformed member name");
		goto out;
	}
	name = json_object_get_string(s);
	name_len = (size_t)json_object_get_string_len(s);
	idx = json_key_index(name, name_len);
	if (idx < 0) {
		rc = reject(err, CODE_INVALID_VALUE,
			    "encryption.json has an unknown key \"%s\" (allowed: encryption_type, "
			    "key_url, identity; key_vault and principal_id are ignored)",
			    quote(q, name, name_len));
		goto out;
	}
	if (*seen & (1u << idx)) {
		rc = reject(err, CODE_INVALID_VALUE, "encryption.json has the key \"%s\" twice",
			    json_keys[idx]);
		goto out;
	}
	*seen |= 1u << idx;
out:
	json_object_put(s);
	json_tokener_free(tok);
	return rc;
}

/*
 * json-c keeps the last of duplicate keys, truncates keys at an escaped NUL
 * and accepts single-quoted strings even in strict mode. So walk the raw
 * text t[0..n) (already accepted by json-c as one object) with json_scan.h:
 * a single quote outside a string is refused, and every member name at
 * depth 1 is decoded with json-c and checked to be known and not seen
 * before, in the order they are written.
 */
static enum dbx_err check_member_names(const char *t, size_t n, struct dbx_error *err)
{
	struct dbx_json_scan scan;
	unsigned seen = 0;
	enum dbx_err rc = DBX_OK;

	dbx_json_scan_init(&scan, t, n);
	while (rc == DBX_OK) {
		const char *name;
		size_t name_len;
		bool more = dbx_json_scan_member(&scan, &name, &name_len);

		if (scan.squote < n)
			return reject(err, CODE_INVALID_VALUE,
				      "encryption.json is not valid JSON: single-quoted string at "
				      "offset %zu",
				      scan.squote);
		if (!more)
			break;
		rc = check_one_name(name, name_len, &seen, err);
	}
	return rc;
}

/* Prepend "encryption.json <key>: " to the message a field validator left in *err. */
static void prefix_message(struct dbx_error *err, const char *key)
{
	char tmp[DBX_ERR_MSG_MAX + 64];
	size_t l;

	if (!err)
		return;
	snprintf(tmp, sizeof(tmp), "encryption.json %s: %s", key, err->message);
	l = strlen(tmp);
	if (l >= sizeof(err->message))
		l = sizeof(err->message) - 1;
	memcpy(err->message, tmp, l);
	err->message[l] = '\0';
}

static bool is_json_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Apply the member called json_keys[idx] (value v, NULL for JSON null) to *ch. */
static enum dbx_err apply_member(int idx, struct json_object *v, const struct dbx_cloud *cloud,
				 struct dbx_encryption_change *ch, struct dbx_error *err)
{
	bool is_null = json_object_is_type(v, json_type_null);
	bool is_string = json_object_is_type(v, json_type_string);
	const char *s = is_string ? json_object_get_string(v) : NULL;
	size_t n = is_string ? (size_t)json_object_get_string_len(v) : 0;
	enum dbx_err rc = DBX_OK;

	if (idx == KEY_KEY_VAULT || idx == KEY_PRINCIPAL_ID) {
		if (!is_null && !is_string)
			return reject(
			    err, CODE_INVALID_VALUE,
			    "encryption.json \"%s\" must be a string or null (it is derived "
			    "and ignored on write)",
			    json_keys[idx]);
		return DBX_OK;
	}
	if (idx == KEY_KEY_URL && (is_null || (is_string && n == 0))) {
		ch->has_key_url = true;
		ch->key_url_null = true;
		return DBX_OK;
	}
	if (!is_string)
		return reject(err, CODE_INVALID_VALUE, "encryption.json \"%s\" must be a string%s",
			      json_keys[idx], idx == KEY_KEY_URL ? " or null" : "");
	rc = dbx_validate_setting((enum dbx_setting)idx, s, n, cloud, ch, err);
	if (rc != DBX_OK)
		prefix_message(err, json_keys[idx]);
	return rc;
}

enum dbx_err dbx_validate_encryption_json(const char *value, size_t len,
					  const struct dbx_cloud *cloud,
					  struct dbx_encryption_change *out, struct dbx_error *err)
{
	struct dbx_encryption_change ch;
	struct json_tokener *tok = NULL;
	struct json_object *obj = NULL;
	enum json_tokener_error jerr;
	enum dbx_err rc = DBX_OK;
	const char *nul;
	size_t b = 0, end;

	if (!cloud)
		cloud = dbx_cloud_default();
	if (!value)
		len = 0;
	memset(&ch, 0, sizeof(ch));
	if (len > JSON_MAX_LEN) {
		rc = reject(err, CODE_INVALID_VALUE,
			    "encryption.json write of %zu bytes is too long (at most %d)", len,
			    JSON_MAX_LEN);
		goto out;
	}
	nul = len ? memchr(value, '\0', len) : NULL;
	if (nul) {
		rc = reject(err, CODE_INVALID_VALUE,
			    "encryption.json contains a NUL byte at offset %zu",
			    (size_t)(nul - value));
		goto out;
	}
	while (b < len && is_json_ws(value[b]))
		b++;
	if (b == len || value[b] != '{') {
		rc = reject(err, CODE_INVALID_VALUE,
			    "encryption.json must be one JSON object {\"encryption_type\": ..., "
			    "\"key_url\": ..., \"identity\": ...}");
		goto out;
	}
	tok = json_tokener_new();
	if (!tok) {
		rc = dbx_error_set(err, DBX_ENOMEM, "out of memory parsing encryption.json");
		goto out;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_ALLOW_TRAILING_CHARS);
	obj = json_tokener_parse_ex(tok, value, (int)len);
	jerr = json_tokener_get_error(tok);
	if (!obj) {
		if (jerr == json_tokener_continue)
			rc = reject(err, CODE_INVALID_VALUE,
				    "encryption.json is not valid JSON: it ends before the object "
				    "is closed");
		else
			rc = reject(err, CODE_INVALID_VALUE,
				    "encryption.json is not valid JSON: %s at offset %zu",
				    json_tokener_error_desc(jerr), json_tokener_get_parse_end(tok));
		goto out;
	}
	end = json_tokener_get_parse_end(tok);
	for (size_t i = end; i < len; i++) {
		if (!is_json_ws(value[i])) {
			rc = reject(err, CODE_INVALID_VALUE,
				    "encryption.json has data after the JSON object, at offset %zu",
				    i);
			goto out;
		}
	}
	if (!json_object_is_type(obj, json_type_object)) {
		rc = reject(err, CODE_INVALID_VALUE, "encryption.json must be one JSON object");
		goto out;
	}
	rc = check_member_names(value + b, end - b, err);
	if (rc != DBX_OK)
		goto out;
	for (size_t i = 0; i < N_JSON_KEYS; i++) {
		struct json_object *v = NULL;

		if (!json_object_object_get_ex(obj, json_keys[i], &v))
			continue;
		rc = apply_member((int)i, v, cloud, &ch, err);
		if (rc != DBX_OK)
			goto out;
	}
out:
	json_object_put(obj);
	if (tok)
		json_tokener_free(tok);
	if (rc == DBX_OK && out)
		*out = ch;
	return rc;
}

/* ---- the key rules (validate.h): one table for the preflight and `eligible` ---- */

static void rule_time(time_t t, char *buf, size_t cap)
{
	struct tm tm;

	if (!gmtime_r(&t, &tm) || strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, cap, "@%lld", (long long)t);
}

static bool is_rsa(const char *kty)
{
	return kty && (strcmp(kty, "RSA") == 0 || strcmp(kty, "RSA-HSM") == 0);
}

/* A rule: true when f breaks it at now, with why (cap bytes) filled. */
typedef bool (*key_rule_fn)(const struct dbx_key_facts *f, time_t now, char *why, size_t cap);

static bool rule_soft_delete(const struct dbx_key_facts *f, time_t now, char *why, size_t cap)
{
	(void)now;
	snprintf(why, cap, "soft delete off");
	return f->vault_known && !f->soft_delete;
}

static bool rule_purge(const struct dbx_key_facts *f, time_t now, char *why, size_t cap)
{
	(void)now;
	snprintf(why, cap, "purge protection off");
	return f->vault_known && !f->purge_protection;
}

static bool rule_enabled(const struct dbx_key_facts *f, time_t now, char *why, size_t cap)
{
	(void)now;
	snprintf(why, cap, "disabled");
	return f->key_known && !f->enabled;
}

static bool rule_expired(const struct dbx_key_facts *f, time_t now, char *why, size_t cap)
{
	char when[64];

	if (!f->key_known || f->exp == 0 || f->exp > now)
		return false;
	rule_time(f->exp, when, sizeof(when));
	snprintf(why, cap, "expired at %s", when);
	return true;
}

static bool rule_nbf(const struct dbx_key_facts *f, time_t now, char *why, size_t cap)
{
	char when[64];

	if (!f->key_known || f->nbf == 0 || f->nbf <= now)
		return false;
	rule_time(f->nbf, when, sizeof(when));
	snprintf(why, cap, "not valid before %s", when);
	return true;
}

static bool rule_type(const struct dbx_key_facts *f, time_t now, char *why, size_t cap)
{
	(void)now;
	snprintf(why, cap, "%s key (Data Box needs RSA or RSA-HSM)", f->kty ? f->kty : "untyped");
	return f->key_known && !is_rsa(f->kty);
}

static bool rule_size(const struct dbx_key_facts *f, time_t now, char *why, size_t cap)
{
	(void)now;
	snprintf(why, cap, "%s of %u bits (Data Box needs at least %d)", f->kty ? f->kty : "RSA",
		 f->bits, DBX_KEY_MIN_RSA_BITS);
	return f->key_known && is_rsa(f->kty) && f->bits < DBX_KEY_MIN_RSA_BITS;
}

static bool rule_ops(const struct dbx_key_facts *f, time_t now, char *why, size_t cap)
{
	bool wrap = f->ops & DBX_KEY_OP_WRAP, unwrap = f->ops & DBX_KEY_OP_UNWRAP;

	(void)now;
	snprintf(why, cap, "key_ops lacks %s%s%s", wrap ? "" : "wrapKey",
		 !wrap && !unwrap ? " and " : "", unwrap ? "" : "unwrapKey");
	return f->key_known && f->ops_known && (!wrap || !unwrap);
}

static const struct {
	const char *code;
	key_rule_fn broken;
} key_rules[DBX_KEY_RULES_MAX] = {
    {"SsemUserErrorSoftDeleteAndPurgeProtectionNotEnabled", rule_soft_delete},
    {"SsemUserErrorSoftDeleteAndPurgeProtectionNotEnabled", rule_purge},
    {"SsemUserErrorEncryptionKeyDisabled", rule_enabled},
    {"SsemUserErrorEncryptionKeyExpired", rule_expired},
    {"SsemUserErrorEncryptionKeyDisabled", rule_nbf},
    {"SsemUserErrorEncryptionKeyTypeNotSupported", rule_type},
    {"SsemUserErrorEncryptionKeyTypeNotSupported", rule_size},
    {"SsemUserErrorEncryptionKeyTypeNotSupported", rule_ops},
};

size_t dbx_key_rules_check(const struct dbx_key_facts *f, time_t now, struct dbx_rule_fail *out,
			   size_t cap)
{
	size_t n = 0;

	for (size_t i = 0; i < DBX_KEY_RULES_MAX; i++) {
		char why[sizeof(out->reason)];

		if (!key_rules[i].broken(f, now, why, sizeof(why)))
			continue;
		if (n < cap) {
			out[n].code = key_rules[i].code;
			snprintf(out[n].reason, sizeof(out[n].reason), "%s", why);
		}
		n++;
	}
	return n;
}

void dbx_key_rules_eligible(const struct dbx_key_facts *f, time_t now, char *buf, size_t cap)
{
	struct dbx_rule_fail fails[DBX_KEY_RULES_MAX];
	size_t n = dbx_key_rules_check(f, now, fails, DBX_KEY_RULES_MAX), used;

	if (cap == 0)
		return;
	if (n == 0) {
		snprintf(buf, cap, "yes\n");
		return;
	}
	used = (size_t)snprintf(buf, cap, "no: ");
	for (size_t i = 0; i < n && used < cap; i++)
		used += (size_t)snprintf(buf + used, cap - used, "%s%s", i ? "; " : "",
					 fails[i].reason);
	if (used < cap)
		snprintf(buf + used, cap - used, "\n");
}
