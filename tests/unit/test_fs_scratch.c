/*
 * test_fs_scratch.c: editors' temporary files in order directories
 * (fs/scratch.c) and rename(temporary, attribute) as one write
 * (dbx_fs_rename in fs/fs.c), over a REAL struct dbx_arm, struct
 * dbx_keyvault and dbx_update_apply() on the same small rule-based fake of
 * ARM and Key Vault as test_fs_write.c, which records every request: the
 * tests count PATCHes (exactly one for a rename onto an attribute, none for
 * anything else). No mount, no sleeping (fake clock).
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "databoxfs/arm.h"
#include "databoxfs/keyvault.h"
#include "databoxfs/update.h"
#include "cache.h"
#include "fake_transport.h"
#include "fs.h"
#include "ops.h"

#include "fs_world.h"

#define SED_TMP ORDER1 "/sedAbC123"
#define SWP	ORDER1 "/.key_url.swp"

static struct dbx_node order_node(struct env *env, const char *path, char name[DBX_TREE_NAME_MAX])
{
	struct dbx_node dir;

	(void)env;
	assert_true(dbx_scratch_name(path, &dir, name));
	return dir;
}

/* A temporary file holding value, as sed leaves it before its rename. */
static void make_temp(struct env *env, const char *path, const char *value)
{
	struct dbx_scratch *s = dbx_fs_scratch(&env->fs);
	char name[DBX_TREE_NAME_MAX];
	struct dbx_node dir = order_node(env, path, name);

	assert_non_null(s);
	assert_int_equal(dbx_scratch_create(s, &dir, name, 0644, wall_now), DBX_OK);
	assert_int_equal(dbx_scratch_write(s, &dir, name, value, strlen(value), 0, wall_now),
			 DBX_OK);
}

static bool exists(struct env *env, const char *path)
{
	struct dbx_error err = {0};
	struct stat st;

	return dbx_fs_getattr(&env->fs, path, &st, &err) == DBX_OK;
}

static int find_name(void *ctx, const char *name, const struct dbx_scratch_stat *st)
{
	const char **want = ctx;

	(void)st;
	if (*want && !strcmp(name, *want))
		*want = NULL;
	return 0;
}

/*
 * Whether the store lists name in order directory dir (what readdir adds
 * after the attributes; the fake serves no order lists, so readdir itself
 * is covered by test_editors.py).
 */
static bool listed(struct env *env, const char *dir, const char *name)
{
	char path[512], leaf[DBX_TREE_NAME_MAX];
	struct dbx_node node;
	const char *want = name;

	snprintf(path, sizeof(path), "%s/x", dir);
	assert_true(dbx_scratch_name(path, &node, leaf));
	dbx_scratch_list(dbx_fs_scratch(&env->fs), &node, find_name, &want);
	return want == NULL;
}

/* Which names are temporary files: not attributes, directly in an order directory. */
static void test_names(void **state)
{
	struct dbx_node dir;
	char name[DBX_TREE_NAME_MAX];

	(void)state;
	assert_true(dbx_scratch_name(SED_TMP, &dir, name));
	assert_int_equal(dir.kind, DBX_NODE_ORDER);
	assert_string_equal(dir.order, "order1");
	assert_string_equal(name, "sedAbC123");
	assert_true(dbx_scratch_name(ORDER1 "/4913", &dir, name));
	assert_true(dbx_scratch_name(ORDER1 "/key_url~", &dir, name));
	assert_false(dbx_scratch_name(ORDER1 "/key_url", &dir, name));
	assert_false(dbx_scratch_name(ORDER1 "/errors", &dir, name));
	assert_false(dbx_scratch_name("/" SUB "/rg1/sedAbC123", &dir, name));
	assert_false(dbx_scratch_name("/" SUB "/sedAbC123", &dir, name));
	assert_false(dbx_scratch_name("/sedAbC123", &dir, name));
	assert_false(dbx_scratch_name(ORDER1 "/..", &dir, name));
	assert_false(dbx_scratch_name(ORDER1 "/key_url/x", &dir, name));
}

/* Create, write, read, truncate, chmod, unlink; the caps; nothing reaches the network. */
static void test_file_life_and_caps(void **state)
{
	struct env *env = env_new(KEY0);
	struct dbx_scratch *s = dbx_fs_scratch(&env->fs);
	struct dbx_scratch_stat st;
	struct dbx_error err = {0};
	struct stat fst;
	char name[DBX_TREE_NAME_MAX], buf[16];
	struct dbx_node dir = order_node(env, SWP, name);
	size_t n = 0;

	(void)state;
	assert_int_equal(dbx_scratch_create(s, &dir, name, 0777, wall_now), DBX_OK);
	assert_int_equal(dbx_scratch_create(s, &dir, name, 0600, wall_now), DBX_EEXIST);
	assert_int_equal(dbx_scratch_write(s, &dir, name, "hello", 5, 2, wall_now + 5), DBX_OK);
	assert_int_equal(dbx_scratch_read(s, &dir, name, buf, sizeof(buf), 0, &n), DBX_OK);
	assert_int_equal(n, 7);
	assert_memory_equal(buf, "\0\0hello", 7);
	assert_int_equal(dbx_scratch_read(s, &dir, name, buf, sizeof(buf), 7, &n), DBX_OK);
	assert_int_equal(n, 0);

	/* What stat and ls show: the mounting user's, 0644 at most, the size, the time of the
	 * write. */
	assert_int_equal(dbx_fs_getattr(&env->fs, SWP, &fst, &err), DBX_OK);
	assert_int_equal(fst.st_mode, S_IFREG | 0644);
	assert_int_equal(fst.st_uid, 1000);
	assert_int_equal(fst.st_size, 7);
	assert_int_equal(fst.st_mtime, wall_now + 5);
	assert_true(listed(env, ORDER1, ".key_url.swp"));
	assert_false(listed(env, ORDER2, ".key_url.swp"));
	assert_int_equal(dbx_scratch_chmod(s, &dir, name, 0600), DBX_OK);
	assert_int_equal(dbx_fs_getattr(&env->fs, SWP, &fst, &err), DBX_OK);
	assert_int_equal(fst.st_mode, S_IFREG | 0600);

	assert_int_equal(dbx_scratch_truncate(s, &dir, name, 3, wall_now), DBX_OK);
	assert_int_equal(dbx_scratch_stat(s, &dir, name, &st), DBX_OK);
	assert_int_equal(st.size, 3);
	assert_int_equal(dbx_scratch_truncate(s, &dir, name, DBX_SCRATCH_FILE_MAX, wall_now),
			 DBX_OK);
	/* One byte past 64 KiB: EFBIG, and nothing written. */
	assert_int_equal(dbx_scratch_write(s, &dir, name, "x", 1, DBX_SCRATCH_FILE_MAX, wall_now),
			 DBX_EFBIG);
	assert_int_equal(dbx_scratch_truncate(s, &dir, name, DBX_SCRATCH_FILE_MAX + 1, wall_now),
			 DBX_EFBIG);
	assert_int_equal(dbx_scratch_stat(s, &dir, name, &st), DBX_OK);
	assert_int_equal(st.size, DBX_SCRATCH_FILE_MAX);

	/* 16 files in one order directory; the 17th is ENOSPC; another order has its own room. */
	for (int i = 1; i < DBX_SCRATCH_DIR_MAX; i++) {
		char p[64];

		snprintf(p, sizeof(p), "t%d", i);
		assert_int_equal(dbx_scratch_create(s, &dir, p, 0600, wall_now), DBX_OK);
	}
	assert_int_equal(dbx_scratch_create(s, &dir, "one-more", 0600, wall_now), DBX_ENOSPC);
	make_temp(env, ORDER2 "/one-more", "x");

	assert_int_equal(dbx_scratch_unlink(s, &dir, name), DBX_OK);
	assert_int_equal(dbx_scratch_unlink(s, &dir, name), DBX_ENOTFOUND);
	assert_false(exists(env, SWP));
	assert_false(listed(env, ORDER1, ".key_url.swp"));
	assert_int_equal(dbx_scratch_create(s, &dir, "one-more", 0600, wall_now), DBX_OK);
	assert_int_equal(n_calls(env), 0);
	dbx_scratch_free(env->fs.scratch);
	env_free(env);
}

/* sed -i: rename(sedXXXXXX, key_url) applies the content in exactly one PATCH. */
static void test_rename_onto_attribute(void **state)
{
	struct env *env = env_new(KEY0);
	struct dbx_error err = {0};

	(void)state;
	make_temp(env, SED_TMP, KEY1 "\n");
	assert_int_equal(dbx_fs_rename(&env->fs, SED_TMP, ORDER1 "/key_url", 0, &err), DBX_OK);
	assert_int_equal(env->w.patches, 1);
	assert_int_equal(n_logged(env, "PATCH order1"), 1);
	assert_string_equal(env->w.jobs[0].kek_url, KEY1);
	assert_cat(env, ORDER1 "/key_url", KEY1 "\n");
	assert_cat(env, ORDER1 "/errors", "");
	assert_false(exists(env, SED_TMP));
	assert_false(listed(env, ORDER1, "sedAbC123"));
	dbx_scratch_free(env->fs.scratch);
	env_free(env);
}

/* A refused value: the write's error, no PATCH, errors says why, the temporary file stays. */
static void test_rename_refused_keeps_temp(void **state)
{
	struct env *env = env_new(KEY0);
	struct dbx_error err = {0};
	char *errors;

	(void)state;
	make_temp(env, SED_TMP, "http://contosovault.vault.azure.net/keys/k1\n");
	assert_int_equal(dbx_fs_rename(&env->fs, SED_TMP, ORDER1 "/key_url", 0, &err), DBX_EINVAL);
	assert_int_equal(n_calls(env), 0);
	assert_true(exists(env, SED_TMP));
	errors = cat(env, ORDER1 "/errors");
	assert_non_null(strstr(
	    errors, "code: SsemUserErrorKeyVaultUrlWithInvalidScheme\nsource: last-write\n"));
	assert_non_null(strstr(errors, "target: key_url\n"));
	free(errors);
	assert_cat(env, ORDER1 "/key_url", KEY0 "\n");
	dbx_scratch_free(env->fs.scratch);
	env_free(env);
}

/* Temp to temp moves in memory; the other renames are refused with their errno; no request. */
static void test_rename_rules(void **state)
{
	struct env *env = env_new(KEY0);
	struct dbx_error err = {0};
	char buf[8];
	char name[DBX_TREE_NAME_MAX];
	struct dbx_node dir = order_node(env, SWP, name);
	size_t n = 0;

	(void)state;
	make_temp(env, SED_TMP, "abc");
	make_temp(env, SWP, "old");
	assert_int_equal(dbx_fs_rename(&env->fs, SED_TMP, SWP, RENAME_NOREPLACE, &err), DBX_EEXIST);
	assert_int_equal(dbx_fs_rename(&env->fs, SED_TMP, SWP, 0, &err), DBX_OK);
	assert_false(exists(env, SED_TMP));
	assert_int_equal(
	    dbx_scratch_read(dbx_fs_scratch(&env->fs), &dir, name, buf, sizeof(buf), 0, &n),
	    DBX_OK);
	assert_int_equal(n, 3);
	assert_memory_equal(buf, "abc", 3);

	assert_int_equal(dbx_fs_rename(&env->fs, SWP, ORDER2 "/x", 0, &err), DBX_EXDEV);
	assert_int_equal(dbx_fs_rename(&env->fs, SWP, ORDER2 "/key_url", 0, &err), DBX_EXDEV);
	assert_int_equal(dbx_fs_rename(&env->fs, SWP, ORDER1 "/status", 0, &err), DBX_EACCES);
	assert_int_equal(dbx_fs_rename(&env->fs, ORDER1 "/key_url", ORDER1 "/key_url~", 0, &err),
			 DBX_EPERM);
	assert_int_equal(dbx_fs_rename(&env->fs, ORDER1, ORDER1 "x", 0, &err), DBX_EROFS);
	assert_int_equal(dbx_fs_rename(&env->fs, ORDER1 "/nothing", ORDER1 "/key_url", 0, &err),
			 DBX_ENOTFOUND);
	assert_true(exists(env, SWP));
	assert_int_equal(n_calls(env), 0);
	assert_int_equal(env->w.patches, 0);
	dbx_scratch_free(env->fs.scratch);
	env_free(env);
}

/* A mount that does not write has no temporary files: renames are EROFS. */
static void test_read_only_mount(void **state)
{
	struct env *env = env_new(KEY0);
	struct dbx_error err = {0};

	(void)state;
	env->fs.update = NULL;
	assert_null(dbx_fs_scratch(&env->fs));
	assert_int_equal(dbx_fs_rename(&env->fs, SED_TMP, ORDER1 "/key_url", 0, &err), DBX_EROFS);
	assert_int_equal(dbx_fs_rename(&env->fs, ORDER1 "/key_url", ORDER1 "/x", 0, &err),
			 DBX_EROFS);
	env_free(env);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_names),
	    cmocka_unit_test(test_file_life_and_caps),
	    cmocka_unit_test(test_rename_onto_attribute),
	    cmocka_unit_test(test_rename_refused_keeps_temp),
	    cmocka_unit_test(test_rename_rules),
	    cmocka_unit_test(test_read_only_mount),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
