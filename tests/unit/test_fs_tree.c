/*
 * test_fs_tree.c: path resolution (fs/tree.c), as a table of paths a user
 * or a tool could hand the mount and what each must resolve to.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "attrs.h"
#include "tree.h"

struct row {
	const char *path;
	enum dbx_err rc;
	enum dbx_node_kind kind;
	const char *sub, *rg, *order, *file;
};

#define S "0b1f6471-1bf0-4dda-aec3-111122223333"

static const struct row rows[] = {
    {"/", DBX_OK, DBX_NODE_ROOT, "", "", "", NULL},
    {"/" S, DBX_OK, DBX_NODE_SUBSCRIPTION, S, "", "", NULL},
    {"/" S "/", DBX_OK, DBX_NODE_SUBSCRIPTION, S, "", "", NULL},
    {"/" S "/rg-1", DBX_OK, DBX_NODE_RESOURCE_GROUP, S, "rg-1", "", NULL},
    {"/" S "/My.RG(x)/", DBX_OK, DBX_NODE_RESOURCE_GROUP, S, "My.RG(x)", "", NULL},
    {"/" S "/rg-1/order1", DBX_OK, DBX_NODE_ORDER, S, "rg-1", "order1", NULL},
    {"//" S "//rg-1///order1/", DBX_OK, DBX_NODE_ORDER, S, "rg-1", "order1", NULL},
    {"/" S "/rg-1/order1/status", DBX_OK, DBX_NODE_ORDER_FILE, S, "rg-1", "order1", "status"},
    {"/" S "/rg-1/order1//errors", DBX_OK, DBX_NODE_ORDER_FILE, S, "rg-1", "order1", "errors"},
    /* File names are exact: ARM-independent names chosen by the mount. */
    {"/" S "/rg-1/order1/Status", DBX_ENOTFOUND, DBX_NODE_ROOT, NULL, NULL, NULL, NULL},
    {"/" S "/rg-1/order1/nosuchfile", DBX_ENOTFOUND, DBX_NODE_ROOT, NULL, NULL, NULL, NULL},
    {"/" S "/rg-1/order1/.status.swp", DBX_ENOTFOUND, DBX_NODE_ROOT, NULL, NULL, NULL, NULL},
    {"/" S "/rg-1/order1/status/", DBX_ENOTFOUND, DBX_NODE_ROOT, NULL, NULL, NULL, NULL},
    {"/" S "/rg-1/order1/status/x", DBX_ENOTFOUND, DBX_NODE_ROOT, NULL, NULL, NULL, NULL},
    {"/" S "/rg-1/order1/errors/..", DBX_ENOTFOUND, DBX_NODE_ROOT, NULL, NULL, NULL, NULL},
    {"/" S "/..", DBX_ENOTFOUND, DBX_NODE_ROOT, NULL, NULL, NULL, NULL},
    {"/.", DBX_ENOTFOUND, DBX_NODE_ROOT, NULL, NULL, NULL, NULL},
    {"relative/path", DBX_ENOTFOUND, DBX_NODE_ROOT, NULL, NULL, NULL, NULL},
    {"", DBX_ENOTFOUND, DBX_NODE_ROOT, NULL, NULL, NULL, NULL},
};

static void test_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct row *r = &rows[i];
		struct dbx_node node;
		enum dbx_err rc = dbx_tree_resolve(r->path, &node);

		print_message("%s\n", r->path);
		assert_int_equal(rc, r->rc);
		if (rc != DBX_OK)
			continue;
		assert_int_equal(node.kind, r->kind);
		assert_string_equal(node.subscription, r->sub);
		assert_string_equal(node.resource_group, r->rg);
		assert_string_equal(node.order, r->order);
		if (r->file) {
			assert_true(node.attr >= 0);
			assert_string_equal(dbx_attrs[node.attr].name, r->file);
			assert_false(dbx_node_is_dir(&node));
		} else {
			assert_int_equal(node.attr, -1);
			assert_true(dbx_node_is_dir(&node));
		}
	}
}

/*
 * The catalogue's three names (docs/formats.md, "The catalogue") hand the
 * whole path to catalogue.c, whatever follows; a name that only starts
 * like one is a subscription, as before.
 */
static void test_catalogue_names(void **state)
{
	static const char *const catalogue[] = {
	    "/keyvaults",
	    "/keyvaults/",
	    "/keyvaults/v/keys/k/versions/x/url",
	    "/identities/" S "/rg/uai",
	    "/by-name",
	    "/by-name/Prod EU",
	};
	struct dbx_node node;

	(void)state;
	for (size_t i = 0; i < sizeof(catalogue) / sizeof(catalogue[0]); i++) {
		print_message("%s\n", catalogue[i]);
		assert_int_equal(dbx_tree_resolve(catalogue[i], &node), DBX_OK);
		assert_int_equal(node.kind, DBX_NODE_CATALOGUE);
		assert_string_equal(node.path, catalogue[i]);
		assert_int_equal(node.attr, -1);
	}
	assert_int_equal(dbx_tree_resolve("/keyvaultsX", &node), DBX_OK);
	assert_int_equal(node.kind, DBX_NODE_SUBSCRIPTION);
	assert_string_equal(node.path, "");
	assert_int_equal(dbx_tree_resolve("/" S "/keyvaults", &node), DBX_OK);
	assert_int_equal(node.kind, DBX_NODE_RESOURCE_GROUP);
}

/* Every row of the attribute table resolves to itself. */
static void test_every_file(void **state)
{
	(void)state;
	for (size_t i = 0; i < dbx_attrs_len; i++) {
		char path[512];
		struct dbx_node node;

		snprintf(path, sizeof(path), "/%s/rg/o/%s", S, dbx_attrs[i].name);
		assert_int_equal(dbx_tree_resolve(path, &node), DBX_OK);
		assert_int_equal(node.kind, DBX_NODE_ORDER_FILE);
		assert_int_equal(node.attr, (int)i);
	}
}

static void test_name_too_long(void **state)
{
	char path[600] = "/";
	struct dbx_node node;

	(void)state;
	memset(path + 1, 'a', 256);
	assert_int_equal(dbx_tree_resolve(path, &node), DBX_ENOTFOUND);
	path[256] = '\0'; /* 255 characters: NAME_MAX is fine */
	assert_int_equal(dbx_tree_resolve(path, &node), DBX_OK);
	assert_int_equal(strlen(node.subscription), 255);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_table),
	    cmocka_unit_test(test_catalogue_names),
	    cmocka_unit_test(test_every_file),
	    cmocka_unit_test(test_name_too_long),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
