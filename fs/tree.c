/*
 * tree.c: pure path resolution for the fixed tree of tree.h. Walks the path
 * component by component; the fifth component must be a row of the
 * attribute table, and nothing may follow it.
 */
#include <string.h>

#include "attrs.h"
#include "catalogue.h"
#include "control.h"
#include "tree.h"

int dbx_node_is_dir(const struct dbx_node *node)
{
	return node->kind != DBX_NODE_ORDER_FILE && node->kind != DBX_NODE_CONTROL_FILE;
}

/*
 * ---- The control directory (control.h) ----
 * rest follows "/.databoxfs": nothing (the directory, one trailing slash
 * allowed), or one of its file names with nothing after it.
 */
static enum dbx_err resolve_control(const char *rest, struct dbx_node *node)
{
	char name[DBX_TREE_NAME_MAX];
	size_t n;

	while (*rest == '/')
		rest++;
	if (!*rest) {
		node->kind = DBX_NODE_CONTROL_DIR;
		return DBX_OK;
	}
	n = strcspn(rest, "/");
	if (n >= sizeof(name) || rest[n])
		return DBX_ENOTFOUND;
	memcpy(name, rest, n);
	name[n] = '\0';
	node->attr = dbx_control_find(name);
	if (node->attr < 0)
		return DBX_ENOTFOUND;
	node->kind = DBX_NODE_CONTROL_FILE;
	return DBX_OK;
}

enum dbx_err dbx_tree_resolve(const char *path, struct dbx_node *node)
{
	char file[DBX_TREE_NAME_MAX] = "";
	char *slots[4] = {node->subscription, node->resource_group, node->order, file};
	size_t depth = 0;
	const char *p = path;

	memset(node, 0, sizeof(*node));
	node->attr = -1;
	if (!path || path[0] != '/')
		return DBX_ENOTFOUND;
	while (*p) {
		size_t n;

		while (*p == '/')
			p++;
		if (!*p)
			break;
		n = strcspn(p, "/");
		/* The catalogue: reachable by name, resolved by catalogue.c. */
		if (depth == 0 && dbx_catalogue_top(p, n)) {
			if (strlen(path) >= sizeof(node->path))
				return DBX_ENOTFOUND;
			node->kind = DBX_NODE_CATALOGUE;
			memcpy(node->path, path, strlen(path) + 1);
			return DBX_OK;
		}
		if (depth == 0 && n == strlen(DBX_CONTROL_NAME) && !memcmp(p, DBX_CONTROL_NAME, n))
			return resolve_control(p + n, node);
		if (n >= DBX_TREE_NAME_MAX || depth >= 4)
			return DBX_ENOTFOUND;
		if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return DBX_ENOTFOUND;
		memcpy(slots[depth], p, n);
		slots[depth][n] = '\0';
		depth++;
		p += n;
		/* A file is not a directory: "/s/r/o/status/" does not resolve. */
		if (depth == 4 && *p == '/')
			return DBX_ENOTFOUND;
	}
	switch (depth) {
	case 0:
		node->kind = DBX_NODE_ROOT;
		break;
	case 1:
		node->kind = DBX_NODE_SUBSCRIPTION;
		break;
	case 2:
		node->kind = DBX_NODE_RESOURCE_GROUP;
		break;
	case 3:
		node->kind = DBX_NODE_ORDER;
		break;
	default:
		node->attr = dbx_attr_find(file);
		if (node->attr < 0)
			return DBX_ENOTFOUND;
		node->kind = DBX_NODE_ORDER_FILE;
		break;
	}
	return DBX_OK;
}
