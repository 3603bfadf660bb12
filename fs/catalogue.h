/*
 * catalogue.h: the portal's dropdowns as directories (docs/formats.md, "The catalogue").
 *
 *   /by-name/<display name>                  symlink to ../<subscription-id>
 *   /keyvaults/<vault>/                      id soft_delete purge_protection authorization
 *                                            eligible keys_error new_key keys/
 *   /keyvaults/<vault>/keys/<key>/           new_version versions/
 *   /keyvaults/<vault>/keys/<key>/versions/<version>/   url kty size enabled expires eligible
 *   /identities/<subscription>/<resource-group>/<name>/ id principal_id client_id
 *
 * None of the three top names is listed at the root; they resolve by name.
 * Everything is listed lazily from ARM (vaults, identities, subscription
 * names) and Key Vault's data plane (keys, versions; a version's kty and
 * size from one GET when first read) and cached for cache_ttl, like the
 * orders. `eligible` comes from the key rules of validate.h, the table the
 * write preflight uses. No FUSE here: fs.c dispatches DBX_NODE_CATALOGUE
 * nodes to these functions. One lock serializes the catalogue's requests.
 */
#ifndef DATABOXFS_FS_CATALOGUE_H
#define DATABOXFS_FS_CATALOGUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "databoxfs/arm.h"
#include "databoxfs/clock.h"
#include "databoxfs/err.h"
#include "databoxfs/keyvault.h"
#include "cache.h"

struct dbx_catalogue;

struct dbx_catalogue_config {
	struct dbx_arm *arm;	       /* not owned: vaults, identities, subscription names */
	struct dbx_keyvault *kv;       /* not owned: keys, versions, create */
	struct dbx_cache *cache;       /* not owned: the visible subscriptions (the root's) */
	const struct dbx_clock *clock; /* TTL and mtimes */
	uint64_t ttl_ms;	       /* cache_ttl */
};

/* A new catalogue, or NULL on ENOMEM. Nothing is requested until a path is used. */
struct dbx_catalogue *dbx_catalogue_new(const struct dbx_catalogue_config *cfg);
void dbx_catalogue_free(struct dbx_catalogue *c);

/* Is name ("keyvaults", "identities", "by-name") the first component of a catalogue path? */
bool dbx_catalogue_top(const char *name, size_t len);

enum dbx_cat_type {
	DBX_CAT_DIR,
	DBX_CAT_FILE,
	DBX_CAT_LINK,
};

struct dbx_cat_stat {
	enum dbx_cat_type type;
	mode_t mode;   /* permission bits: dirs 0555, files 0444, control files 0200 */
	uint64_t ino;  /* stable for the life of the mount */
	size_t size;   /* exact length a read returns (a link: its target's) */
	time_t mtime;  /* when the catalogue first saw it */
	nlink_t links; /* directories: 2 + subdirectories when known, else 1 */
};

/*
 * What path (absolute, as FUSE passes it, starting with a catalogue top
 * name) is. DBX_ENOTFOUND when it does not exist (err names what does,
 * as far as the credential can see); the listing's own error when a list
 * it needs fails (DBX_EACCES for a data plane the credential may not read).
 */
DBX_MUST_CHECK enum dbx_err dbx_catalogue_stat(struct dbx_catalogue *c, const char *path,
					       struct dbx_cat_stat *st, struct dbx_error *err);

/* Called per child; non-zero stops. */
typedef int (*dbx_cat_fill_fn)(void *ctx, const char *name, const struct dbx_cat_stat *st);

/* The children of directory path. */
DBX_MUST_CHECK enum dbx_err dbx_catalogue_list(struct dbx_catalogue *c, const char *path,
					       dbx_cat_fill_fn fill, void *ctx,
					       struct dbx_error *err);

/*
 * The bytes of file path (malloc'd into *buf, *len, NUL-terminated), or
 * the target of link path. DBX_EINVAL for a directory, DBX_EACCES for a
 * control file (write-only).
 */
DBX_MUST_CHECK enum dbx_err dbx_catalogue_read(struct dbx_catalogue *c, const char *path,
					       char **buf, size_t *len, struct dbx_error *err);

/* Whether path is a control file (new_key, new_version): the only writable files. */
bool dbx_catalogue_writable(const char *path);

/*
 * Write the whole value to control file path (sysfs: one value, one
 * trailing newline allowed): new_key takes "NAME [SIZE]", new_version
 * "[SIZE]" (SIZE 2048, 3072 or 4096; 3072 when left out). DBX_EINVAL for
 * a bad name or size, DBX_EEXIST when new_key names a key that exists,
 * DBX_EACCES when the credential may not create keys.
 */
DBX_MUST_CHECK enum dbx_err dbx_catalogue_write(struct dbx_catalogue *c, const char *path,
						const char *value, size_t len,
						struct dbx_error *err);

#define DBX_CAT_DEFAULT_BITS 3072

#endif
