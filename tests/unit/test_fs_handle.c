/*
 * test_fs_handle.c: open files and editors' temporary files (fs/handle.c)
 * without a mount, over the fs_world fixture (a REAL struct dbx_arm,
 * dbx_keyvault, dbx_update_apply() and cache on a rule-based fake of ARM
 * and Key Vault that records every request). Each test is what a program
 * on the mount sees: what read returns, which errno a call fails with
 * (through dbx_errno(), the one mapping ops.c uses) and how many PATCHes
 * reached ARM. Writers take turns per order at open (fs/admit.c): the
 * tests of that wait run other writers in threads and wait on the turn's
 * own counters, with a bound reached only when the code is wrong.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "admit.h"
#include "fs.h"
#include "handle.h"
#include "ops.h"
#include "scratch.h"

#include "fs_world.h"

#define KEY_URL ORDER1 "/key_url"
#define SED_TMP ORDER1 "/sedAbC123"

static void done(struct env *env)
{
	dbx_admit_free(env->fs.admit);
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

/* ---- writers' turns (admit.h) ---- */

/* Spin (1 ms naps, bounded) until n writers wait for a turn. */
static void wait_waiting(struct env *env, unsigned n)
{
	struct timespec tick = {0, 1000000};
	int spins = 0;

	while ((!env->fs.admit || dbx_admit_waiting(env->fs.admit) < n) &&
	       spins++ < WAIT_BOUND_S * 1000)
		nanosleep(&tick, NULL);
	assert_non_null(env->fs.admit);
	assert_int_equal(dbx_admit_waiting(env->fs.admit), n);
}

/*
 * A second writer of an order waits at open while the first holds the
 * order's turn, here until -o timeout: ETIMEDOUT from open, nothing sent,
 * errors saying the order was busy. Readers meanwhile open at once. The
 * first writer's write goes on (and its success clears that block); once
 * it is released the turn is free at once.
 */
static void test_writer_waits_for_turn_at_open(void **state)
{
	struct env *env = env_new(KEY0);
	struct dbx_error err = {0};
	struct dbx_handle *h1, *h2 = NULL;
	uint64_t t0;
	char *errors;

	(void)state;
	h1 = open_ok(env, KEY_URL, O_WRONLY | O_TRUNC);
	/* One thread: nobody could hand the turn over, so let waits jump to their deadline. */
	env->fc.real_waits = false;
	t0 = env->fc.now;
	assert_int_equal(
	    dbx_handle_open(&env->fs, ORDER1 "/encryption_type", O_WRONLY | O_TRUNC, &h2, &err),
	    DBX_ETIMEDOUT);
	assert_null(h2);
	assert_int_equal(dbx_errno(err.err), ETIMEDOUT);
	assert_non_null(strstr(err.message, "busy with another write"));
	assert_true(env->fc.now - t0 >= env->uc.timeout_ms);
	assert_true(env->fc.now - t0 <= env->uc.timeout_ms + 100);
	assert_int_equal(n_calls(env), 0);
	errors = cat(env, ORDER1 "/errors");
	assert_non_null(strstr(errors, "source: last-write"));
	assert_non_null(strstr(errors, "busy with another write"));
	assert_non_null(strstr(errors, "nothing was sent"));
	free(errors);
	/* Another order's writer has its own turn. */
	h2 = open_ok(env, ORDER2 "/key_url", O_WRONLY);
	release_ok(env, h2);
	/* Readers never wait for a turn; the holder writes as usual. */
	t0 = env->fc.now;
	assert_reads(env, KEY_URL, KEY0 "\n");
	assert_reads(env, ORDER1 "/encryption_type", "CustomerManaged\n");
	assert_int_equal(env->fc.now, t0);
	write_ok(env, h1, KEY1 "\n", 0);
	assert_int_equal(env->w.patches, 1);
	errors = cat(env, ORDER1 "/errors");
	assert_null(strstr(errors, "busy"));
	free(errors);
	release_ok(env, h1);
	/* Released: the next writer is admitted without waiting. */
	t0 = env->fc.now;
	h2 = open_ok(env, ORDER1 "/encryption_type", O_WRONLY | O_TRUNC);
	assert_int_equal(env->fc.now, t0);
	release_ok(env, h2);
	assert_int_equal(dbx_admit_waiting(env->fs.admit), 0);
	done(env);
}

struct opener {
	struct env *env;
	const char *path;
	enum dbx_err rc;
	int turn; /* the order in which the openers got the turn, from 1 */
};

static pthread_mutex_t turn_lock = PTHREAD_MUTEX_INITIALIZER;
static int turns_taken;

/* open for writing, note when the turn came, release at once. */
static void *opener_thread(void *p)
{
	struct opener *o = p;
	struct dbx_error err = {0};
	struct dbx_handle *h = NULL;

	o->rc = dbx_handle_open(&o->env->fs, o->path, O_WRONLY | O_TRUNC, &h, &err);
	if (o->rc != DBX_OK)
		return NULL;
	pthread_mutex_lock(&turn_lock);
	o->turn = ++turns_taken;
	pthread_mutex_unlock(&turn_lock);
	if (dbx_handle_release(&o->env->fs, h, &err) != DBX_OK)
		o->rc = err.err;
	return NULL;
}

/* Waiting writers get the turn in the order they asked for it, one at a time. */
static void test_turns_first_come_first_served(void **state)
{
	struct env *env = env_new(KEY0);
	struct opener b = {env, KEY_URL, DBX_EINVAL, 0};
	struct opener c = {env, ORDER1 "/identity", DBX_EINVAL, 0};
	struct dbx_handle *h1;
	pthread_t tb, tc;

	(void)state;
	turns_taken = 0;
	h1 = open_ok(env, ORDER1 "/encryption_type", O_WRONLY);
	assert_int_equal(pthread_create(&tb, NULL, opener_thread, &b), 0);
	wait_waiting(env, 1);
	assert_int_equal(pthread_create(&tc, NULL, opener_thread, &c), 0);
	wait_waiting(env, 2);
	assert_int_equal(turns_taken, 0);
	release_ok(env, h1);
	pthread_join(tb, NULL);
	pthread_join(tc, NULL);
	assert_int_equal(b.rc, DBX_OK);
	assert_int_equal(c.rc, DBX_OK);
	assert_int_equal(b.turn, 1);
	assert_int_equal(c.turn, 2);
	assert_int_equal(dbx_admit_waiting(env->fs.admit), 0);
	assert_int_equal(n_calls(env), 0);
	done(env);
}

/* Ctrl-C on a writer waiting for its turn: EINTR from open, nothing sent. */
static void test_waiting_writer_interrupted(void **state)
{
	struct env *env = env_new(KEY0);
	struct opener b = {env, KEY_URL, DBX_OK, 0};
	struct dbx_handle *h1;
	pthread_t tb;

	(void)state;
	h1 = open_ok(env, ORDER1 "/encryption_type", O_WRONLY);
	assert_int_equal(pthread_create(&tb, NULL, opener_thread, &b), 0);
	wait_waiting(env, 1);
	interrupt_flag = 1;
	pthread_join(tb, NULL);
	interrupt_flag = 0;
	assert_int_equal(b.rc, DBX_EINTR);
	assert_int_equal(dbx_admit_waiting(env->fs.admit), 0);
	release_ok(env, h1);
	assert_int_equal(n_calls(env), 0);
	done(env);
}

struct raw_waiter {
	struct dbx_admit *a;
	struct dbx_node node;
	enum dbx_err rc;
};

static void *raw_waiter_thread(void *p)
{
	struct raw_waiter *w = p;
	struct dbx_admit_turn *turn = NULL;
	struct dbx_error err = {0};

	w->rc = dbx_admit_enter(w->a, &w->node, 60000, NULL, NULL, &turn, &err);
	dbx_admit_leave(w->a, turn);
	return NULL;
}

/*
 * At most DBX_ADMIT_WAIT_MAX writers wait at once (each holds a FUSE
 * thread): one more fails at once with ETIMEDOUT; a writer of a free order
 * still gets its turn.
 */
static void test_waiting_writers_capped(void **state)
{
	struct fake_clock fc;
	struct dbx_admit *a;
	struct raw_waiter w[DBX_ADMIT_WAIT_MAX];
	struct dbx_admit_turn *held = NULL, *other = NULL, *extra = NULL;
	struct dbx_node x = {
	    .kind = DBX_NODE_ORDER_FILE, .subscription = "S", .resource_group = "rg"};
	struct dbx_node y = x;
	struct dbx_error err = {0};
	struct timespec tick = {0, 1000000};
	pthread_t t[DBX_ADMIT_WAIT_MAX];
	int spins = 0;

	(void)state;
	fake_clock_init(&fc, 1000);
	fc.real_waits = true;
	a = dbx_admit_new(&fc.clock);
	assert_non_null(a);
	snprintf(x.order, sizeof(x.order), "order1");
	snprintf(y.order, sizeof(y.order), "order2");
	assert_int_equal(dbx_admit_enter(a, &x, 60000, NULL, NULL, &held, &err), DBX_OK);
	for (int i = 0; i < DBX_ADMIT_WAIT_MAX; i++) {
		w[i] = (struct raw_waiter){a, x, DBX_EINVAL};
		/* Names differ only in case: the same order, as ARM sees it. */
		if (i % 2)
			snprintf(w[i].node.order, sizeof(w[i].node.order), "ORDER1");
		assert_int_equal(pthread_create(&t[i], NULL, raw_waiter_thread, &w[i]), 0);
	}
	while (dbx_admit_waiting(a) < DBX_ADMIT_WAIT_MAX && spins++ < WAIT_BOUND_S * 1000)
		nanosleep(&tick, NULL);
	assert_int_equal(dbx_admit_waiting(a), DBX_ADMIT_WAIT_MAX);
	assert_int_equal(dbx_admit_enter(a, &x, 60000, NULL, NULL, &extra, &err), DBX_ETIMEDOUT);
	assert_null(extra);
	assert_non_null(strstr(err.message, "already wait"));
	assert_int_equal(dbx_admit_enter(a, &y, 60000, NULL, NULL, &other, &err), DBX_OK);
	dbx_admit_leave(a, other);
	dbx_admit_leave(a, held);
	for (int i = 0; i < DBX_ADMIT_WAIT_MAX; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(w[i].rc, DBX_OK);
	}
	assert_int_equal(dbx_admit_waiting(a), 0);
	dbx_admit_free(a);
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
	    cmocka_unit_test(test_writer_waits_for_turn_at_open),
	    cmocka_unit_test(test_turns_first_come_first_served),
	    cmocka_unit_test(test_waiting_writer_interrupted),
	    cmocka_unit_test(test_waiting_writers_capped),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
