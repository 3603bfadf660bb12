/*
 * test_fs_handle.c: open files and editors' temporary files (fs/handle.c)
 * without a mount, over the fs_world fixture (a REAL struct dbx_arm,
 * dbx_keyvault, dbx_update_apply() and cache on a rule-based fake of ARM
 * and Key Vault that records every request). Each test is what a program
 * on the mount sees: what read returns, which errno a call fails with
 * (through dbx_errno(), the one mapping ops.c uses) and how many PATCHes
 * reached ARM.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fs.h"
#include "handle.h"
#include "ops.h"
#include "scratch.h"

#include "fs_world.h"

#define KEY_URL ORDER1 "/key_url"
#define SED_TMP ORDER1 "/sedAbC123"

static void done(struct env *env)
{
	dbx_scratch_free(env->fs.scratch);
	env_free(env);
}

static struct dbx_handle *open_ok(struct env *env, const char *path, int flags)
{
	struct dbx_error err = {0};
	struct dbx_handle *h = NULL;

	assert_int_equal(dbx_handle_open(&env->fs, path, flags, &h, &err), DBX_OK);
	assert_non_null(h);
	return h;
}

static struct dbx_handle *create_ok(struct env *env, const char *path, int flags)
{
	struct dbx_error err = {0};
	struct dbx_handle *h = NULL;

	assert_int_equal(dbx_handle_create(&env->fs, path, 0644, O_CREAT | flags, &h, &err),
			 DBX_OK);
	assert_non_null(h);
	return h;
}

static void write_ok(struct env *env, struct dbx_handle *h, const char *data, off_t off)
{
	struct dbx_error err = {0};

	assert_int_equal(dbx_handle_write(&env->fs, h, data, strlen(data), off, &err), DBX_OK);
}

static void release_ok(struct env *env, struct dbx_handle *h)
{
	struct dbx_error err = {0};

	assert_int_equal(dbx_handle_release(&env->fs, h, &err), DBX_OK);
}

/* Everything a read through h returns, in 5-byte reads (as a NUL-terminated string). */
static char *read_all(struct env *env, struct dbx_handle *h)
{
	struct dbx_error err = {0};
	char *out = calloc(1, DBX_SCRATCH_FILE_MAX + 1);
	size_t len = 0, n;

	assert_non_null(out);
	do {
		assert_int_equal(dbx_handle_read(&env->fs, h, out + len, 5, (off_t)len, &n, &err),
				 DBX_OK);
		len += n;
	} while (n > 0 && len < DBX_SCRATCH_FILE_MAX);
	return out;
}

static void assert_reads(struct env *env, const char *path, const char *want)
{
	struct dbx_handle *h = open_ok(env, path, O_RDONLY);
	char *got = read_all(env, h);

	assert_string_equal(got, want);
	free(got);
	release_ok(env, h);
}

static off_t size_of(struct env *env, const char *path)
{
	struct dbx_error err = {0};
	struct stat st;

	assert_int_equal(dbx_fs_getattr(&env->fs, path, &st, &err), DBX_OK);
	return st.st_size;
}

/* cat: open renders the file once; that open keeps reading that version. */
static void test_open_read_attribute(void **state)
{
	struct env *env = env_new(KEY0);
	struct dbx_error err = {0};
	struct dbx_handle *r = open_ok(env, KEY_URL, O_RDONLY), *w;
	char buf[8];
	size_t n = 1;
	char *got;

	(void)state;
	assert_int_equal(dbx_handle_read(&env->fs, r, buf, sizeof(buf), 1000, &n, &err), DBX_OK);
	assert_int_equal(n, 0);
	assert_int_equal(dbx_handle_read(&env->fs, r, buf, sizeof(buf), -1, &n, &err), DBX_EINVAL);
	/* A reader does not write: EINVAL, nothing sent. */
	assert_int_equal(dbx_handle_write(&env->fs, r, "x\n", 2, 0, &err), DBX_EINVAL);
	assert_int_equal(env->w.patches, 0);

	w = open_ok(env, KEY_URL, O_WRONLY | O_TRUNC);
	write_ok(env, w, KEY1 "\n", 0);
	release_ok(env, w);
	assert_int_equal(env->w.patches, 1);
	got = read_all(env, r);
	assert_string_equal(got, KEY0 "\n");
	free(got);
	release_ok(env, r);
	assert_reads(env, KEY_URL, KEY1 "\n");
	done(env);
}

/* echo v > key_url, printf v > key_url, and a close that is the only apply. */
static void test_write_value_through_handle(void **state)
{
	struct env *env = env_new(KEY0);
	struct dbx_error err = {0};
	struct dbx_handle *h;

	(void)state;
	/* echo: the write that ends in a newline applies, inside write(2). */
	h = open_ok(env, KEY_URL, O_WRONLY | O_TRUNC);
	assert_int_equal(dbx_handle_truncate(&env->fs, h, KEY_URL, 0, &err), DBX_OK);
	write_ok(env, h, KEY1 "\n", 0);
	assert_int_equal(env->w.patches, 1);
	assert_string_equal(env->w.jobs[0].kek_url, KEY1);
	assert_int_equal(dbx_handle_flush(&env->fs, h, &err), DBX_OK);
	release_ok(env, h);
	assert_int_equal(env->w.patches, 1);

	/* printf without a newline: close (flush) applies and reports. */
	h = open_ok(env, KEY_URL, O_WRONLY | O_TRUNC);
	write_ok(env, h, KEY2, 0);
	assert_int_equal(env->w.patches, 1);
	assert_int_equal(dbx_handle_flush(&env->fs, h, &err), DBX_OK);
	assert_int_equal(env->w.patches, 2);
	release_ok(env, h);
	assert_reads(env, KEY_URL, KEY2 "\n");

	/* A value still pending at release is applied there. */
	h = open_ok(env, KEY_URL, O_WRONLY);
	write_ok(env, h, KEY0, 0);
	release_ok(env, h);
	assert_int_equal(env->w.patches, 3);
	assert_string_equal(env->w.jobs[0].kek_url, KEY0);

	/* O_CREAT of an attribute opens it for writing. */
	h = create_ok(env, KEY_URL, O_WRONLY | O_TRUNC);
	write_ok(env, h, KEY1 "\n", 0);
	release_ok(env, h);
	assert_int_equal(env->w.patches, 4);

	/* O_RDWR reads what the file shows at open. */
	h = open_ok(env, KEY_URL, O_RDWR);
	{
		char *got = read_all(env, h);

		assert_string_equal(got, KEY1 "\n");
		free(got);
	}
	release_ok(env, h);
	assert_int_equal(env->w.patches, 4);
	done(env);
}

/* A read-only file opened for writing, or truncated, is EACCES (even for root); nothing sent. */
static void test_read_only_file_for_write(void **state)
{
	static const int flags[] = {O_WRONLY, O_RDWR, O_RDONLY | O_TRUNC, O_WRONLY | O_APPEND};
	struct env *env = env_new(KEY0);
	struct dbx_error err = {0};
	struct dbx_handle *h;

	(void)state;
	for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
		h = (struct dbx_handle *)&err; /* not NULL: the call must clear it */
		assert_int_equal(dbx_handle_open(&env->fs, ORDER1 "/status", flags[i], &h, &err),
				 DBX_EACCES);
		assert_null(h);
		assert_int_equal(dbx_errno(err.err), EACCES);
	}
	assert_int_equal(dbx_handle_truncate(&env->fs, NULL, ORDER1 "/status", 0, &err),
			 DBX_EACCES);
	assert_int_equal(dbx_handle_open(&env->fs, ORDER1 "/nothing/x", O_RDONLY, &h, &err),
			 DBX_ENOTFOUND);
	assert_int_equal(dbx_errno(err.err), ENOENT);
	assert_int_equal(n_calls(env), 0);
	done(env);
}

/* sed and vim's temporary files: O_TRUNC empties, O_APPEND appends, truncate sets the size. */
static void test_temp_truncate_and_append(void **state)
{
	struct env *env = env_new(KEY0);
	struct dbx_error err = {0};
	struct dbx_handle *h;

	(void)state;
	h = create_ok(env, SED_TMP, O_WRONLY);
	write_ok(env, h, "abc", 0);
	release_ok(env, h);
	assert_int_equal(size_of(env, SED_TMP), 3);
	assert_reads(env, SED_TMP, "abc");

	h = open_ok(env, SED_TMP, O_WRONLY | O_TRUNC);
	assert_int_equal(size_of(env, SED_TMP), 0);
	write_ok(env, h, "xy", 0);
	release_ok(env, h);
	assert_reads(env, SED_TMP, "xy");

	h = open_ok(env, SED_TMP, O_WRONLY | O_APPEND);
	write_ok(env, h, "z", 0);
	assert_int_equal(dbx_handle_truncate(&env->fs, h, SED_TMP, 5, &err), DBX_OK);
	release_ok(env, h);
	assert_int_equal(size_of(env, SED_TMP), 5);
	assert_int_equal(dbx_handle_truncate(&env->fs, NULL, SED_TMP, 1, &err), DBX_OK);
	assert_reads(env, SED_TMP, "x");
	assert_int_equal(n_calls(env), 0);
	done(env);
}

/* Past 64 KiB, a temporary file and a value are EFBIG, and nothing is written or sent. */
static void test_efbig_past_64k(void **state)
{
	struct env *env = env_new(KEY0);
	struct dbx_error err = {0};
	struct dbx_handle *h;
	char *big = malloc(DBX_FS_WRITE_MAX + 1);

	(void)state;
	assert_non_null(big);
	memset(big, 'a', DBX_FS_WRITE_MAX + 1);
	h = create_ok(env, SED_TMP, O_WRONLY);
	assert_int_equal(dbx_handle_write(&env->fs, h, big, DBX_SCRATCH_FILE_MAX, 0, &err), DBX_OK);
	assert_int_equal(dbx_handle_write(&env->fs, h, "b", 1, (off_t)DBX_SCRATCH_FILE_MAX, &err),
			 DBX_EFBIG);
	assert_int_equal(dbx_errno(err.err), EFBIG);
	assert_int_equal(
	    dbx_handle_truncate(&env->fs, h, SED_TMP, (off_t)DBX_SCRATCH_FILE_MAX + 1, &err),
	    DBX_EFBIG);
	assert_int_equal(size_of(env, SED_TMP), DBX_SCRATCH_FILE_MAX);
	release_ok(env, h);

	h = open_ok(env, ORDER1 "/encryption.json", O_WRONLY | O_TRUNC);
	assert_int_equal(dbx_handle_write(&env->fs, h, big, DBX_FS_WRITE_MAX + 1, 0, &err),
			 DBX_EFBIG);
	assert_int_equal(dbx_errno(err.err), EFBIG);
	release_ok(env, h);
	free(big);
	assert_int_equal(n_calls(env), 0);
	done(env);
}

/* 16 temporary files in an order directory; the 17th is ENOSPC; an existing name EEXIST. */
static void test_enospc_past_16_temp_files(void **state)
{
	struct env *env = env_new(KEY0);
	struct dbx_error err = {0};
	struct dbx_handle *h;

	(void)state;
	for (int i = 0; i < DBX_SCRATCH_DIR_MAX; i++) {
		char path[256];

		snprintf(path, sizeof(path), ORDER1 "/t%d", i);
		release_ok(env, create_ok(env, path, O_WRONLY));
	}
	assert_int_equal(
	    dbx_handle_create(&env->fs, ORDER1 "/one-more", 0644, O_CREAT | O_WRONLY, &h, &err),
	    DBX_ENOSPC);
	assert_null(h);
	assert_int_equal(dbx_errno(err.err), ENOSPC);
	assert_int_equal(
	    dbx_handle_create(&env->fs, ORDER1 "/t0", 0644, O_CREAT | O_WRONLY, &h, &err),
	    DBX_EEXIST);
	assert_int_equal(dbx_errno(err.err), EEXIST);
	/* Another order directory has its own room; removing one makes room. */
	release_ok(env, create_ok(env, ORDER2 "/one-more", O_WRONLY));
	assert_int_equal(dbx_fs_unlink(&env->fs, ORDER1 "/t0", &err), DBX_OK);
	release_ok(env, create_ok(env, ORDER1 "/one-more", O_WRONLY));
	assert_int_equal(n_calls(env), 0);
	done(env);
}

/* The renames an editor must not make: EEXIST, EXDEV, EPERM; unknown flags EINVAL. */
static void test_rename_errnos(void **state)
{
	struct env *env = env_new(KEY0);
	struct dbx_error err = {0};

	(void)state;
	release_ok(env, create_ok(env, SED_TMP, O_WRONLY));
	release_ok(env, create_ok(env, ORDER1 "/4913", O_WRONLY));
	assert_int_equal(dbx_fs_rename(&env->fs, SED_TMP, ORDER1 "/4913", RENAME_NOREPLACE, &err),
			 DBX_EEXIST);
	assert_int_equal(dbx_errno(err.err), EEXIST);
	assert_int_equal(dbx_fs_rename(&env->fs, SED_TMP, KEY_URL, RENAME_NOREPLACE, &err),
			 DBX_EEXIST);
	assert_int_equal(dbx_fs_rename(&env->fs, SED_TMP, ORDER2 "/sedAbC123", 0, &err), DBX_EXDEV);
	assert_int_equal(dbx_errno(err.err), EXDEV);
	assert_int_equal(dbx_fs_rename(&env->fs, KEY_URL, ORDER1 "/key_url~", 0, &err), DBX_EPERM);
	assert_int_equal(dbx_errno(err.err), EPERM);
	assert_int_equal(dbx_fs_rename(&env->fs, SED_TMP, ORDER1 "/4913", RENAME_EXCHANGE, &err),
			 DBX_EINVAL);
	assert_int_equal(size_of(env, SED_TMP), 0);
	assert_int_equal(env->w.patches, 0);
	done(env);
}

/* chmod, chown, touch and rm of a temporary file; of an attribute they are EROFS. */
static void test_temp_metadata(void **state)
{
	static const char *const attrs[] = {KEY_URL, ORDER1 "/status"};
	struct env *env = env_new(KEY0);
	struct dbx_error err = {0};
	struct stat st;

	(void)state;
	release_ok(env, create_ok(env, SED_TMP, O_WRONLY));
	assert_int_equal(dbx_fs_chmod(&env->fs, SED_TMP, 0600, &err), DBX_OK);
	assert_int_equal(dbx_fs_getattr(&env->fs, SED_TMP, &st, &err), DBX_OK);
	assert_int_equal(st.st_mode, S_IFREG | 0600);
	assert_int_equal(dbx_fs_chown(&env->fs, SED_TMP, 1000, 1000, &err), DBX_OK);
	assert_int_equal(dbx_fs_chown(&env->fs, SED_TMP, (uid_t)-1, (gid_t)-1, &err), DBX_OK);
	assert_int_equal(dbx_fs_chown(&env->fs, SED_TMP, 0, (gid_t)-1, &err), DBX_EPERM);
	assert_int_equal(dbx_errno(err.err), EPERM);
	assert_int_equal(dbx_fs_chown(&env->fs, SED_TMP, (uid_t)-1, 0, &err), DBX_EPERM);
	assert_int_equal(dbx_fs_utimens(&env->fs, SED_TMP, &err), DBX_OK);
	assert_int_equal(dbx_fs_unlink(&env->fs, SED_TMP, &err), DBX_OK);
	assert_int_equal(dbx_fs_getattr(&env->fs, SED_TMP, &st, &err), DBX_ENOTFOUND);

	for (size_t i = 0; i < sizeof(attrs) / sizeof(attrs[0]); i++) {
		assert_int_equal(dbx_fs_unlink(&env->fs, attrs[i], &err), DBX_EROFS);
		assert_int_equal(dbx_errno(err.err), EROFS);
		assert_int_equal(dbx_fs_chmod(&env->fs, attrs[i], 0600, &err), DBX_EROFS);
		assert_int_equal(dbx_fs_chown(&env->fs, attrs[i], 1000, 1000, &err), DBX_EROFS);
		assert_int_equal(dbx_fs_utimens(&env->fs, attrs[i], &err), DBX_EROFS);
	}
	assert_int_equal(n_calls(env), 0);
	done(env);
}

/* A mount that does not write: reading works; writing and temporary files are EROFS. */
static void test_read_only_mount(void **state)
{
	struct env *env = env_new(KEY0);
	struct dbx_error err = {0};
	struct dbx_handle *h;

	(void)state;
	env->fs.update = NULL;
	assert_int_equal(dbx_handle_open(&env->fs, KEY_URL, O_WRONLY, &h, &err), DBX_EROFS);
	assert_int_equal(dbx_errno(err.err), EROFS);
	assert_int_equal(dbx_handle_create(&env->fs, SED_TMP, 0644, O_CREAT | O_WRONLY, &h, &err),
			 DBX_EROFS);
	assert_int_equal(dbx_fs_rename(&env->fs, SED_TMP, KEY_URL, RENAME_EXCHANGE, &err),
			 DBX_EROFS);
	assert_int_equal(n_calls(env), 0);
	assert_reads(env, KEY_URL, KEY0 "\n");
	assert_int_equal(env->w.patches, 0);
	done(env);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_open_read_attribute),
	    cmocka_unit_test(test_write_value_through_handle),
	    cmocka_unit_test(test_read_only_file_for_write),
	    cmocka_unit_test(test_temp_truncate_and_append),
	    cmocka_unit_test(test_efbig_past_64k),
	    cmocka_unit_test(test_enospc_past_16_temp_files),
	    cmocka_unit_test(test_rename_errnos),
	    cmocka_unit_test(test_temp_metadata),
	    cmocka_unit_test(test_read_only_mount),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
