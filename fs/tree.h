/*
 * tree.h: path -> node, with no network and no FUSE.
 *
 * The tree is fixed in shape (docs/formats.md, "The tree"):
 *   /                                   ROOT
 *   /<sub>                              SUBSCRIPTION
 *   /<sub>/<rg>                         RESOURCE_GROUP
 *   /<sub>/<rg>/<order>                 ORDER
 *   /<sub>/<rg>/<order>/<file>          ORDER_FILE (a row of the attribute table)
 *   /keyvaults/..., /identities/..., /by-name/...   CATALOGUE (catalogue.h resolves the rest)
 *   /.databoxfs, /.databoxfs/<file>     CONTROL_DIR, CONTROL_FILE (control.h)
 * Resolution only checks the shape and the file names; whether a
 * subscription, resource group or order exists is the cache's business.
 */
#ifndef DATABOXFS_FS_TREE_H
#define DATABOXFS_FS_TREE_H

#include "databoxfs/err.h"

#define DBX_TREE_NAME_MAX 256 /* NAME_MAX + 1 */

enum dbx_node_kind {
	DBX_NODE_ROOT,
	DBX_NODE_SUBSCRIPTION,
	DBX_NODE_RESOURCE_GROUP,
	DBX_NODE_ORDER,
	DBX_NODE_ORDER_FILE,
	DBX_NODE_CATALOGUE,    /* the catalogue (catalogue.h); path holds the whole path */
	DBX_NODE_CONTROL_DIR,  /* /.databoxfs: reachable by name, not listed at the root */
	DBX_NODE_CONTROL_FILE, /* a file of it: attr is its index in control.h */
};

#define DBX_TREE_PATH_MAX 1024

struct dbx_node {
	enum dbx_node_kind kind;
	char subscription[DBX_TREE_NAME_MAX];	/* "" above SUBSCRIPTION */
	char resource_group[DBX_TREE_NAME_MAX]; /* "" above RESOURCE_GROUP */
	char order[DBX_TREE_NAME_MAX];		/* "" above ORDER */
	int attr; /* index into dbx_attrs for ORDER_FILE, control.h's for CONTROL_FILE, else -1 */
	char path[DBX_TREE_PATH_MAX]; /* CATALOGUE: the path as given, else "" */
};

/*
 * Resolve an absolute path as FUSE passes it. Empty components ("//") and
 * one trailing slash on a directory are tolerated, as path resolution does.
 * DBX_ENOTFOUND for a relative path, ".", "..", a component longer than
 * NAME_MAX, an unknown file name in an order, anything deeper than a file,
 * or a trailing slash after a file. DBX_OK fills *node.
 */
DBX_MUST_CHECK enum dbx_err dbx_tree_resolve(const char *path, struct dbx_node *node);

/*
 * Whether the node is a directory (everything but ORDER_FILE and CONTROL_FILE;
 * a CATALOGUE node may be either: ask catalogue.h).
 */
int dbx_node_is_dir(const struct dbx_node *node);

#endif
