/*
 * test_fs_write.c: the write path of the filesystem (fs/fs.c writer,
 * fs/attrs.c stores, fs/cache.c write lock and last-write errors) over a
 * REAL struct dbx_arm, struct dbx_keyvault and dbx_update_apply(), without
 * mounting.
 *
 * Below them sits a small rule-based fake of ARM and Key Vault (struct
 * world): it answers a job GET with the order's current state, applies a
 * PATCH to that state (or fails it as told), answers the preflight's vault
 * and key lookups, and records every request in order. A rule-based fake
 * rather than a fixed script keeps the tests about what a user sees (how
 * many PATCHes, which errno, what errors shows, whether anything was sent
 * at all) instead of the backend's exact request order, and lets two
 * writer threads run against it. The clock is the fake clock: nothing
 * sleeps; the concurrency tests wait on condition variables only, with a
 * generous bound that is reached only when the code under test is wrong.
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

static time_t mtime_of(struct env *env, const char *path)
{
	struct dbx_error err = {0};
	struct stat st;

	assert_int_equal(dbx_fs_getattr(&env->fs, path, &st, &err), DBX_OK);
	return st.st_mtime;
}

/*
 * What `echo`/`printf` do: open for writing, one write(2) at offset 0, close.
 * Returns the errno of the write, or of the close when the write succeeded.
 */
static int shell_write(struct env *env, const char *path, const char *value)
{
	struct dbx_fs_writer w;
	struct dbx_error err = {0};
	enum dbx_err rc;

	rc = dbx_fs_writer_open(&env->fs, path, false, &w, &err);
	if (rc != DBX_OK)
		return dbx_errno(rc);
	rc = dbx_fs_writer_write(&env->fs, &w, value, strlen(value), 0, &err);
	if (rc == DBX_OK)
		rc = dbx_fs_writer_flush(&env->fs, &w, &err);
	dbx_fs_writer_close(&w);
	return dbx_errno(rc);
}

/* ---- tests ---- */

/* echo URL > key_url: one PATCH, applied inside write(2); cat shows it with no further GET. */
static void test_echo_applies_once(void **state)
{
	struct env *env = env_new(KEY0);
	struct dbx_fs_writer w;
	struct dbx_error err = {0};
	size_t gets;

	(void)state;
	assert_int_equal(dbx_fs_writer_open(&env->fs, ORDER1 "/key_url", false, &w, &err), DBX_OK);
	assert_int_equal(dbx_fs_writer_write(&env->fs, &w, KEY1 "\n", strlen(KEY1 "\n"), 0, &err),
			 DBX_OK);
	assert_int_equal(env->w.patches, 1); /* before close: the write itself applied it */
	assert_int_equal(dbx_fs_writer_flush(&env->fs, &w, &err), DBX_OK);
	dbx_fs_writer_close(&w);
	assert_int_equal(env->w.patches, 1);
	assert_string_equal(env->w.jobs[0].kek_url, KEY1);
	/* The preflight looked the key up before the PATCH. */
	assert_int_equal(n_logged(env, "GET key"), 1);

	gets = n_logged(env, "GET order1");
	assert_cat(env, ORDER1 "/key_url", KEY1 "\n");
	assert_cat(env, ORDER1 "/encryption_type", "CustomerManaged\n");
	assert_cat(env, ORDER1 "/errors", "");
	assert_int_equal(n_logged(env, "GET order1"), gets);

	/* MicrosoftManaged drops the key: the files say so at once. */
	assert_int_equal(shell_write(env, ORDER1 "/encryption_type", "MicrosoftManaged\n"), 0);
	assert_int_equal(env->w.patches, 2);
	assert_cat(env, ORDER1 "/key_url", "");
	assert_cat(env, ORDER1 "/key_vault", "");
	env_free(env);
}

/* A URL that fails the local rules: EINVAL, the Ssem code in errors, and no request at all. */
static void test_invalid_url_sends_nothing(void **state)
{
	static const struct {
		const char *value;
		const char *code;
	} rows[] = {
	    {"http://contosovault.vault.azure.net/keys/k1\n",
	     "SsemUserErrorKeyVaultUrlWithInvalidScheme"},
	    {"https://contosovault.evil.example/keys/k1\n", "SsemUserErrorKeyVaultUrlInvalidHost"},
	    {"https://contosovault.vault.azure.net:8443/keys/k1\n",
	     "SsemUserErrorInvalidKeyVaultUrl"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct env *env = env_new(KEY0);
		char *errors;
		char code[160];

		assert_int_equal(shell_write(env, ORDER1 "/key_url", rows[i].value), EINVAL);
		assert_int_equal(n_calls(env), 0);

		errors = cat(env, ORDER1 "/errors");
		snprintf(code, sizeof(code), "code: %s\nsource: last-write\n", rows[i].code);
		assert_non_null(strstr(errors, code));
		assert_non_null(strstr(errors, "target: key_url\n"));
		free(errors);
		/* The order itself is untouched. */
		assert_cat(env, ORDER1 "/key_url", KEY0 "\n");
		assert_int_equal(env->w.patches, 0);
		env_free(env);
	}
}

/* An empty key_url is refused with the way to Microsoft managed keys in the message. */
static void test_empty_key_url(void **state)
{
	struct env *env = env_new(KEY0);
	char *errors;

	(void)state;
	assert_int_equal(shell_write(env, ORDER1 "/key_url", "\n"), EINVAL);
	assert_int_equal(n_calls(env), 0);
	errors = cat(env, ORDER1 "/errors");
	assert_non_null(strstr(errors, "echo MicrosoftManaged > encryption_type"));
	free(errors);
	env_free(env);
}

/* dd bs=8 of a value without a newline: nothing until close, then one PATCH of the whole. */
static void test_chunks_apply_at_flush(void **state)
{
	struct env *env = env_new(KEY0);
	const char *value = KEY1; /* no trailing newline */
	size_t len = strlen(value);
	struct dbx_fs_writer w;
	struct dbx_error err = {0};

	(void)state;
	assert_int_equal(dbx_fs_writer_open(&env->fs, ORDER1 "/key_url", false, &w, &err), DBX_OK);
	for (size_t off = 0; off < len; off += 8) {
		size_t n = len - off < 8 ? len - off : 8;

		assert_int_equal(
		    dbx_fs_writer_write(&env->fs, &w, value + off, n, (off_t)off, &err), DBX_OK);
		assert_int_equal(n_calls(env), 0);
	}
	assert_true(dbx_fs_writer_pending(&w));
	assert_int_equal(dbx_fs_writer_flush(&env->fs, &w, &err), DBX_OK);
	assert_int_equal(env->w.patches, 1);
	assert_string_equal(env->w.jobs[0].kek_url, KEY1);
	/* A second close (a dup'd descriptor) applies nothing again. */
	assert_int_equal(dbx_fs_writer_flush(&env->fs, &w, &err), DBX_OK);
	assert_int_equal(env->w.patches, 1);
	dbx_fs_writer_close(&w);

	/* dd bs=8 of a value with a newline: the last chunk applies it, inside write(2). */
	value = KEY2 "\n";
	len = strlen(value);
	assert_int_equal(dbx_fs_writer_open(&env->fs, ORDER1 "/key_url", false, &w, &err), DBX_OK);
	for (size_t off = 0; off < len; off += 8) {
		size_t n = len - off < 8 ? len - off : 8;

		assert_int_equal(
		    dbx_fs_writer_write(&env->fs, &w, value + off, n, (off_t)off, &err), DBX_OK);
		assert_int_equal(env->w.patches, off + n < len ? 1 : 2);
	}
	assert_int_equal(dbx_fs_writer_flush(&env->fs, &w, &err), DBX_OK);
	dbx_fs_writer_close(&w);
	assert_int_equal(env->w.patches, 2);
	assert_string_equal(env->w.jobs[0].kek_url, KEY2);
	env_free(env);
}

/* A chunked value that is refused is refused at close, whole: never a prefix applied. */
static void test_chunks_refused_at_flush(void **state)
{
	struct env *env = env_new(KEY0);
	const char *value = "https://contosovault.vault.azure.net/keys/k1/not-a-version";
	struct dbx_fs_writer w;
	struct dbx_error err = {0};

	(void)state;
	assert_int_equal(dbx_fs_writer_open(&env->fs, ORDER1 "/key_url", false, &w, &err), DBX_OK);
	for (size_t off = 0; off < strlen(value); off += 8)
		assert_int_equal(
		    dbx_fs_writer_write(&env->fs, &w, value + off,
					strlen(value) - off < 8 ? strlen(value) - off : 8,
					(off_t)off, &err),
		    DBX_OK);
	assert_int_equal(dbx_fs_writer_flush(&env->fs, &w, &err), DBX_EINVAL);
	assert_string_equal(err.code, "SsemUserErrorInvalidKeyVaultUrl");
	dbx_fs_writer_close(&w);
	assert_int_equal(n_calls(env), 0);
	env_free(env);
}

/* A JSON object written line by line (jq | tee) is applied when it closes, not at "{\n". */
static void test_json_lines(void **state)
{
	struct env *env = env_new(KEY0);
	static const char *const lines[] = {"{\n", "  \"encryption_type\": \"MicrosoftManaged\",\n",
					    "  \"key_url\": null\n", "}\n"};
	struct dbx_fs_writer w;
	struct dbx_error err = {0};
	size_t off = 0;

	(void)state;
	assert_int_equal(dbx_fs_writer_open(&env->fs, ORDER1 "/encryption.json", false, &w, &err),
			 DBX_OK);
	for (size_t i = 0; i < 4; i++) {
		assert_int_equal(
		    dbx_fs_writer_write(&env->fs, &w, lines[i], strlen(lines[i]), (off_t)off, &err),
		    DBX_OK);
		off += strlen(lines[i]);
		assert_int_equal(env->w.patches, i == 3 ? 1 : 0);
	}
	dbx_fs_writer_close(&w);
	assert_string_equal(env->w.jobs[0].kek_url, "");
	env_free(env);
}

/* Holes and rewrites are not a value: EINVAL, nothing sent. */
static void test_noncontiguous(void **state)
{
	struct env *env = env_new(KEY0);
	struct dbx_fs_writer w;
	struct dbx_error err = {0};

	(void)state;
	assert_int_equal(dbx_fs_writer_open(&env->fs, ORDER1 "/encryption_type", false, &w, &err),
			 DBX_OK);
	assert_int_equal(dbx_fs_writer_write(&env->fs, &w, "Micro", 5, 3, &err), DBX_EINVAL);
	assert_int_equal(dbx_fs_writer_write(&env->fs, &w, "Micro", 5, 0, &err), DBX_OK);
	assert_int_equal(dbx_fs_writer_write(&env->fs, &w, "soft", 4, 9, &err), DBX_EINVAL);
	assert_int_equal(dbx_fs_writer_write(&env->fs, &w, "soft", 4, 0, &err), DBX_EINVAL);
	/* Truncation to 0 starts over; other sizes are refused. */
	assert_int_equal(dbx_fs_writer_truncate(&w, 3, &err), DBX_EINVAL);
	assert_int_equal(dbx_fs_writer_truncate(&w, 0, &err), DBX_OK);
	assert_false(dbx_fs_writer_pending(&w));
	assert_int_equal(dbx_fs_writer_flush(&env->fs, &w, &err), DBX_OK);
	dbx_fs_writer_close(&w);
	assert_int_equal(n_calls(env), 0);

	/* O_APPEND (echo v >> f): the kernel's offset is ignored, the value is written. */
	assert_int_equal(dbx_fs_writer_open(&env->fs, ORDER1 "/encryption_type", true, &w, &err),
			 DBX_OK);
	assert_int_equal(dbx_fs_writer_write(&env->fs, &w, "MicrosoftManaged\n", 17, 16, &err),
			 DBX_OK);
	dbx_fs_writer_close(&w);
	assert_int_equal(env->w.patches, 1);
	env_free(env);
}

/* One value per open: after the apply, another write on the same open is EINVAL. */
static void test_write_after_apply(void **state)
{
	struct env *env = env_new(KEY0);
	struct dbx_fs_writer w;
	struct dbx_error err = {0};

	(void)state;
	assert_int_equal(dbx_fs_writer_open(&env->fs, ORDER1 "/encryption_type", false, &w, &err),
			 DBX_OK);
	assert_int_equal(dbx_fs_writer_write(&env->fs, &w, "MicrosoftManaged\n", 17, 0, &err),
			 DBX_OK);
	assert_int_equal(dbx_fs_writer_write(&env->fs, &w, "CustomerManaged\n", 16, 17, &err),
			 DBX_EINVAL);
	assert_non_null(strstr(err.message, "one value per open"));
	assert_int_equal(dbx_fs_writer_flush(&env->fs, &w, &err), DBX_OK);
	dbx_fs_writer_close(&w);
	assert_int_equal(env->w.patches, 1);
	env_free(env);
}

/* More than 64 KiB in one open: refused (EFBIG at the FUSE boundary), nothing sent. */
static void test_too_big(void **state)
{
	struct env *env = env_new(KEY0);
	struct dbx_fs_writer w;
	struct dbx_error err = {0};
	char *big = malloc(DBX_FS_WRITE_MAX + 1);

	(void)state;
	assert_non_null(big);
	memset(big, 'a', DBX_FS_WRITE_MAX + 1);
	assert_int_equal(dbx_fs_writer_open(&env->fs, ORDER1 "/encryption.json", false, &w, &err),
			 DBX_OK);
	assert_int_equal(dbx_fs_writer_write(&env->fs, &w, big, DBX_FS_WRITE_MAX, 0, &err), DBX_OK);
	assert_int_equal(dbx_fs_writer_write(&env->fs, &w, big, 1, DBX_FS_WRITE_MAX, &err),
			 DBX_EFBIG);
	assert_int_equal(dbx_errno(err.err), EFBIG);
	dbx_fs_writer_close(&w);
	free(big);
	assert_int_equal(n_calls(env), 0);
	env_free(env);
}

/*
 * Writing back what cat showed sends nothing, even when it is a value our
 * rules would refuse (the spec's "https://xxx.xxx.xx" as ARM sent it), and
 * for encryption.json fields equal to the current ones are not judged.
 */
static void test_write_back_current(void **state)
{
	struct env *env = env_new(SPEC_URL);
	char *json;
	size_t calls;

	(void)state;
	json = cat(env, ORDER1 "/encryption.json");
	calls = n_calls(env);
	assert_int_equal(shell_write(env, ORDER1 "/key_url", SPEC_URL "\n"), 0);
	assert_int_equal(shell_write(env, ORDER1 "/encryption_type", "CustomerManaged\n"), 0);
	assert_int_equal(shell_write(env, ORDER1 "/identity", "SystemAssigned\n"), 0);
	assert_int_equal(shell_write(env, ORDER1 "/encryption.json", json), 0);
	/* Only the writable fields count; derived ones are ignored. */
	assert_int_equal(shell_write(env, ORDER1 "/encryption.json",
				     "{\"key_url\": \"" SPEC_URL "\", \"key_vault\": \"other\", "
				     "\"encryption_type\": \"CustomerManaged\"}\n"),
			 0);
	assert_int_equal(n_calls(env), calls);
	assert_int_equal(env->w.patches, 0);
	free(json);

	/* A real change next to the unchanged odd URL: judged on the change only. */
	assert_int_equal(shell_write(env, ORDER1 "/encryption.json",
				     "{\"key_url\": \"" SPEC_URL "\", \"identity\": \"bogus\"}\n"),
			 EINVAL);
	assert_int_equal(env->w.patches, 0);
	json = cat(env, ORDER1 "/errors");
	assert_non_null(strstr(json, "identity"));
	assert_null(strstr(json, "Host"));
	free(json);

	/* An order never read: the value is validated (and refused) without any request. */
	calls = n_calls(env);
	assert_int_equal(shell_write(env, ORDER2 "/key_url", SPEC_URL "\n"), EINVAL);
	assert_int_equal(n_calls(env), calls);
	env_free(env);
}

/* The same value judged against stale state is judged again on fresh state. */
static void test_current_value_stale_state(void **state)
{
	struct env *env = env_new(KEY0);
	char *s;

	(void)state;
	s = cat(env, ORDER1 "/key_url");
	free(s);
	/* Someone else changed the key meanwhile, and the cached state has aged. */
	snprintf(env->w.jobs[0].kek_url, sizeof(env->w.jobs[0].kek_url), "%s", KEY2);
	env->fc.now += 5000;
	assert_int_equal(shell_write(env, ORDER1 "/key_url", KEY0 "\n"), 0);
	assert_int_equal(env->w.patches, 1);
	assert_string_equal(env->w.jobs[0].kek_url, KEY0);
	env_free(env);
}

/* A refused write keeps the cached order; errors explains; the next success clears it. */
static void test_failed_then_ok(void **state)
{
	struct env *env = env_new(KEY0);
	char *errors;
	size_t gets;

	(void)state;
	env->w.jobs[0].problem = true;
	env->w.patch_status = 400;
	env->w.patch_body = "{\"error\": {\"code\": \"SsemUserErrorKeyVaultBadRequestException\", "
			    "\"message\": \"The identity has no access to the key.\"}}";
	assert_cat(env, ORDER1 "/key_url", KEY0 "\n");
	assert_int_equal(shell_write(env, ORDER1 "/key_url", KEY1 "\n"), EINVAL);
	assert_int_equal(env->w.patches, 1);

	gets = n_logged(env, "GET order1");
	assert_cat(env, ORDER1 "/key_url", KEY0 "\n"); /* the cached order, as before */
	errors = cat(env, ORDER1 "/errors");
	assert_int_equal(n_logged(env, "GET order1"), gets);
	/* Newest first: the failed write, then the order's own problem. */
	assert_memory_equal(errors,
			    "code: SsemUserErrorKeyVaultBadRequestException\nsource: last-write\n",
			    strlen("code: SsemUserErrorKeyVaultBadRequestException\nsource: "
				   "last-write\n"));
	assert_non_null(strstr(errors, "message: The identity has no access to the key.\n"));
	assert_non_null(strstr(errors, "target: key_url\n"));
	assert_non_null(strstr(errors, "request_id: req-0001\n"));
	assert_true(strstr(errors, "source: last-write") < strstr(errors, "source: order"));
	free(errors);

	/* errors changed when the block came, and again when it goes: backups see both. */
	assert_int_equal(mtime_of(env, ORDER1 "/errors"), 1800000000);
	assert_true(mtime_of(env, ORDER1 "/key_url") < 1800000000);

	env->w.patch_status = 0;
	wall_now = 1800000500;
	assert_int_equal(shell_write(env, ORDER1 "/key_url", KEY1 "\n"), 0);
	errors = cat(env, ORDER1 "/errors");
	assert_null(strstr(errors, "last-write"));
	assert_non_null(strstr(errors, "source: order"));
	free(errors);
	assert_int_equal(mtime_of(env, ORDER1 "/errors"), 1800000500);
	assert_cat(env, ORDER1 "/key_url", KEY1 "\n");
	env_free(env);
}

/* The service's errno per docs/formats.md, "errno", reaches the writer. */
static void test_service_errno(void **state)
{
	static const struct {
		long status;
		int errnum;
	} rows[] = {{403, EACCES}, {404, ENOENT}, {409, EBUSY}};

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct env *env = env_new(KEY0);

		env->w.patch_status = rows[i].status;
		env->w.patch_body = "{\"error\": {\"code\": \"Refused\", \"message\": \"no.\"}}";
		assert_int_equal(shell_write(env, ORDER1 "/encryption_type", "MicrosoftManaged\n"),
				 rows[i].errnum);
		assert_string_equal(env->w.jobs[0].kek_url, KEY0);
		env_free(env);
	}
}

/* Ctrl-C before the PATCH: EINTR, nothing sent, and errors says so. */
static void test_interrupted(void **state)
{
	struct env *env = env_new(KEY0);
	char *errors;

	(void)state;
	interrupt_flag = 1;
	assert_int_equal(shell_write(env, ORDER1 "/encryption_type", "MicrosoftManaged\n"), EINTR);
	interrupt_flag = 0;
	assert_int_equal(env->w.patches, 0);
	errors = cat(env, ORDER1 "/errors");
	assert_non_null(strstr(errors, "source: last-write\n"));
	free(errors);
	env_free(env);
}

/* Read-only files: open for write and truncate are EACCES (even for root); nothing is sent. */
static void test_read_only_files(void **state)
{
	static const char *const ro[] = {"key_vault", "principal_id", "status", "errors"};
	struct env *env = env_new(KEY0);
	struct dbx_fs_writer w;
	struct dbx_error err = {0};

	(void)state;
	for (size_t i = 0; i < 4; i++) {
		char path[256];

		snprintf(path, sizeof(path), ORDER1 "/%s", ro[i]);
		assert_int_equal(dbx_fs_writer_open(&env->fs, path, false, &w, &err), DBX_EACCES);
		assert_int_equal(dbx_errno(err.err), EACCES);
		dbx_fs_writer_close(&w);
		assert_int_equal(dbx_fs_truncate(&env->fs, path, 0, &err), DBX_EACCES);
		assert_int_equal(dbx_fs_write(&env->fs, path, "x\n", 2, &err), DBX_EACCES);
	}
	/* echo > rw-file truncates to 0 first: accepted, does nothing. */
	assert_int_equal(dbx_fs_truncate(&env->fs, ORDER1 "/key_url", 0, &err), DBX_OK);
	assert_int_equal(dbx_fs_truncate(&env->fs, ORDER1 "/key_url", 4, &err), DBX_EINVAL);
	/* : > key_url (open O_TRUNC, close): nothing applied. */
	assert_int_equal(dbx_fs_writer_open(&env->fs, ORDER1 "/key_url", false, &w, &err), DBX_OK);
	assert_int_equal(dbx_fs_writer_flush(&env->fs, &w, &err), DBX_OK);
	dbx_fs_writer_close(&w);
	assert_int_equal(n_calls(env), 0);

	/* A mount without a write config refuses every write with EROFS. */
	env->fs.update = NULL;
	assert_int_equal(dbx_fs_writer_open(&env->fs, ORDER1 "/key_url", false, &w, &err),
			 DBX_EROFS);
	assert_int_equal(n_calls(env), 0);
	env_free(env);
}

struct writer_arg {
	struct env *env;
	const char *path;
	const char *value;
	int errnum;
};

static void *writer_thread(void *p)
{
	struct writer_arg *a = p;

	a->errnum = shell_write(a->env, a->path, a->value);
	return NULL;
}

/* The job requests of order name, in order: "GET order1", "PATCH order1", ... */
static size_t job_log(struct env *env, const char *name, char out[][32], size_t cap)
{
	size_t n = 0;

	for (size_t i = 0; i < env->w.n_log && n < cap; i++) {
		const char *sp = strchr(env->w.log[i], ' ');

		if (sp && strcmp(sp + 1, name) == 0)
			snprintf(out[n++], 32, "%s", env->w.log[i]);
	}
	return n;
}

/* Two writers on one order: the second starts only after the first PATCH is answered. */
static void test_same_order_serialized(void **state)
{
	struct env *env = env_new(KEY0);
	struct writer_arg a = {env, ORDER1 "/key_url", KEY1 "\n", -1};
	struct writer_arg b = {env, ORDER1 "/key_url", KEY2 "\n", -1};
	pthread_t ta, tb;
	char seq[16][32];
	size_t n;

	(void)state;
	/* The first PATCH waits until the other writer is queued on the order's lock. */
	env->w.hold_until_waiter = true;
	assert_int_equal(pthread_create(&ta, NULL, writer_thread, &a), 0);
	assert_int_equal(pthread_create(&tb, NULL, writer_thread, &b), 0);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	assert_false(env->w.hold_timed_out);
	assert_int_equal(a.errnum, 0);
	assert_int_equal(b.errnum, 0);
	assert_int_equal(env->w.patches, 2);
	/* Each write reads the order fresh and PATCHes it, never interleaved. */
	n = job_log(env, "order1", seq, 16);
	assert_int_equal(n, 4);
	assert_string_equal(seq[0], "GET order1");
	assert_string_equal(seq[1], "PATCH order1");
	assert_string_equal(seq[2], "GET order1");
	assert_string_equal(seq[3], "PATCH order1");
	env_free(env);
}

/* A writer queued behind another write to the same order can be interrupted: EINTR, nothing sent.
 */
static void test_queued_writer_interrupted(void **state)
{
	struct env *env = env_new(KEY0);
	struct writer_arg a = {env, ORDER1 "/key_url", KEY1 "\n", -1};
	struct writer_arg b = {env, ORDER1 "/encryption_type", "MicrosoftManaged\n", -1};
	struct timespec tick = {0, 1000000};
	pthread_t ta, tb;
	int spins = 0;

	(void)state;
	env->w.hold_until_release = true;
	assert_int_equal(pthread_create(&ta, NULL, writer_thread, &a), 0);
	pthread_mutex_lock(&env->w.lock);
	while (env->w.in_patch < 1)
		pthread_cond_wait(&env->w.cond, &env->w.lock);
	pthread_mutex_unlock(&env->w.lock);
	assert_int_equal(pthread_create(&tb, NULL, writer_thread, &b), 0);
	while (dbx_cache_write_waiters(env->cache) == 0 && spins++ < WAIT_BOUND_S * 1000)
		nanosleep(&tick, NULL);
	assert_int_equal(dbx_cache_write_waiters(env->cache), 1);
	interrupt_flag = 1; /* Ctrl-C on b; a has sent its PATCH and runs to its end */
	pthread_join(tb, NULL);
	interrupt_flag = 0;
	assert_int_equal(b.errnum, EINTR);
	pthread_mutex_lock(&env->w.lock);
	env->w.release_patch = true;
	pthread_cond_broadcast(&env->w.cond);
	pthread_mutex_unlock(&env->w.lock);
	pthread_join(ta, NULL);
	assert_false(env->w.hold_timed_out);
	assert_int_equal(a.errnum, 0);
	assert_int_equal(env->w.patches, 1);
	assert_string_equal(env->w.jobs[0].kek_url, KEY1);
	env_free(env);
}

/*
 * -o timeout bounds the whole write, the wait for another write to the
 * same order included: a writer queued for 20 s of a 30 s timeout has 10 s
 * left for its own requests, not another 30.
 */
static void test_queued_writer_keeps_its_deadline(void **state)
{
	struct env *env = env_new(KEY0);
	struct writer_arg a = {env, ORDER1 "/key_url", KEY1 "\n", -1};
	struct writer_arg b = {env, ORDER1 "/encryption_type", "MicrosoftManaged\n", -1};
	struct timespec tick = {0, 1000000};
	uint64_t b_started = env->fc.now;
	pthread_t ta, tb;
	int spins = 0;

	(void)state;
	env->w.hold_until_release = true;
	assert_int_equal(pthread_create(&ta, NULL, writer_thread, &a), 0);
	pthread_mutex_lock(&env->w.lock);
	while (env->w.in_patch < 1)
		pthread_cond_wait(&env->w.cond, &env->w.lock);
	pthread_mutex_unlock(&env->w.lock);
	assert_int_equal(pthread_create(&tb, NULL, writer_thread, &b), 0);
	while (dbx_cache_write_waiters(env->cache) == 0 && spins++ < WAIT_BOUND_S * 1000)
		nanosleep(&tick, NULL);
	assert_int_equal(dbx_cache_write_waiters(env->cache), 1);
	pthread_mutex_lock(&env->w.lock);
	env->fc.now += 20000; /* a's PATCH takes 20 s while b waits */
	env->w.release_patch = true;
	pthread_cond_broadcast(&env->w.cond);
	pthread_mutex_unlock(&env->w.lock);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	assert_false(env->w.hold_timed_out);
	assert_int_equal(a.errnum, 0);
	assert_int_equal(b.errnum, 0);
	assert_int_equal(env->w.patches, 2);
	assert_string_equal(env->w.jobs[0].kek_url, "");
	/* b's own requests (its GET and PATCH) end where its 30 s began + 30 s. */
	assert_true(env->w.last_deadline > 0);
	assert_true(env->w.last_deadline <= b_started + env->uc.timeout_ms);
	env_free(env);
}

/* Two writers on two orders overlap: both PATCHes are in flight at once. */
static void test_different_orders_overlap(void **state)
{
	struct env *env = env_new(KEY0);
	struct writer_arg a = {env, ORDER1 "/encryption_type", "MicrosoftManaged\n", -1};
	struct writer_arg b = {env, ORDER2 "/encryption_type", "MicrosoftManaged\n", -1};
	pthread_t ta, tb;

	(void)state;
	env->w.hold_until_both = true;
	assert_int_equal(pthread_create(&ta, NULL, writer_thread, &a), 0);
	assert_int_equal(pthread_create(&tb, NULL, writer_thread, &b), 0);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	assert_false(env->w.hold_timed_out);
	assert_int_equal(a.errnum, 0);
	assert_int_equal(b.errnum, 0);
	assert_string_equal(env->w.jobs[0].kek_url, "");
	assert_string_equal(env->w.jobs[1].kek_url, "");
	env_free(env);
}

/* A read while a write to the same order is in flight does not wait for it. */
static void test_reads_do_not_block(void **state)
{
	struct env *env = env_new(KEY0);
	struct writer_arg a = {env, ORDER1 "/encryption_type", "MicrosoftManaged\n", -1};
	struct writer_arg b = {env, ORDER2 "/encryption_type", "MicrosoftManaged\n", -1};
	pthread_t ta, tb;
	char *s;

	(void)state;
	s = cat(env, ORDER1 "/key_url");
	free(s);
	/* Writer a holds order1's lock inside its PATCH until b's PATCH also arrives. */
	env->w.hold_until_both = true;
	assert_int_equal(pthread_create(&ta, NULL, writer_thread, &a), 0);
	pthread_mutex_lock(&env->w.lock);
	while (env->w.in_patch < 1)
		pthread_cond_wait(&env->w.cond, &env->w.lock);
	pthread_mutex_unlock(&env->w.lock);
	/* Mid-write: the cached state is served at once, unchanged. */
	assert_cat(env, ORDER1 "/key_url", KEY0 "\n");
	assert_int_equal(pthread_create(&tb, NULL, writer_thread, &b), 0);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	assert_false(env->w.hold_timed_out);
	assert_cat(env, ORDER1 "/key_url", "");
	env_free(env);
}

struct cat_arg {
	struct env *env;
	char *got;
};

static void *cat_thread(void *p)
{
	struct cat_arg *a = p;

	a->got = cat(a->env, ORDER1 "/key_url");
	return NULL;
}

/*
 * A read whose GET left before a write and came back after it must not put
 * the older state back in the cache: the next cat shows the written value.
 */
static void test_inflight_read_loses_to_write(void **state)
{
	struct env *env = env_new(KEY0);
	struct cat_arg r = {env, NULL};
	pthread_t tr;

	(void)state;
	assert_cat(env, ORDER1 "/key_url", KEY0 "\n");
	env->fc.now += 5000; /* stale: the next cat asks ARM */
	env->w.hold_next_get = true;
	assert_int_equal(pthread_create(&tr, NULL, cat_thread, &r), 0);
	pthread_mutex_lock(&env->w.lock);
	wait_flag(&env->w, &env->w.get_held);
	pthread_mutex_unlock(&env->w.lock);
	/* The reader's GET now holds KEY0; the write lands meanwhile. */
	assert_int_equal(shell_write(env, ORDER1 "/key_url", KEY1 "\n"), 0);
	pthread_mutex_lock(&env->w.lock);
	env->w.release_get = true;
	pthread_cond_broadcast(&env->w.cond);
	pthread_mutex_unlock(&env->w.lock);
	pthread_join(tr, NULL);
	assert_false(env->w.hold_timed_out);
	assert_string_equal(r.got, KEY1 "\n");
	free(r.got);
	assert_cat(env, ORDER1 "/key_url", KEY1 "\n");
	env_free(env);
}

/*
 * A write that is refused (a hole, or past the 64 KiB cap) refuses the
 * whole value of that open: the bytes buffered before it are never applied
 * at close, even when they alone would be a valid value (a key URL without
 * its version). Truncation to 0 starts over.
 */
static void test_refused_write_never_applies_prefix(void **state)
{
	struct env *env = env_new(KEY0);
	const char *first = KEY1; /* valid alone; the version was meant to follow */
	struct dbx_fs_writer w;
	struct dbx_error err = {0};
	char *big = malloc(DBX_FS_WRITE_MAX);

	(void)state;
	assert_non_null(big);
	memset(big, 'a', DBX_FS_WRITE_MAX);
	/* The rest of the value at the wrong offset. */
	assert_int_equal(dbx_fs_writer_open(&env->fs, ORDER1 "/key_url", false, &w, &err), DBX_OK);
	assert_int_equal(dbx_fs_writer_write(&env->fs, &w, first, strlen(first), 0, &err), DBX_OK);
	assert_int_equal(
	    dbx_fs_writer_write(&env->fs, &w, "/" VERSION "\n", 34, (off_t)strlen(first) + 1, &err),
	    DBX_EINVAL);
	assert_false(dbx_fs_writer_pending(&w));
	assert_int_equal(dbx_fs_writer_flush(&env->fs, &w, &err), DBX_OK);
	dbx_fs_writer_close(&w);
	assert_int_equal(n_calls(env), 0);

	/* The rest of the value past the cap (cp of a file too big: EFBIG, then close). */
	assert_int_equal(dbx_fs_writer_open(&env->fs, ORDER1 "/key_url", false, &w, &err), DBX_OK);
	assert_int_equal(dbx_fs_writer_write(&env->fs, &w, first, strlen(first), 0, &err), DBX_OK);
	assert_int_equal(
	    dbx_fs_writer_write(&env->fs, &w, big, DBX_FS_WRITE_MAX, (off_t)strlen(first), &err),
	    DBX_EFBIG);
	assert_int_equal(dbx_fs_writer_flush(&env->fs, &w, &err), DBX_OK);
	assert_int_equal(n_calls(env), 0);
	/* ftruncate(fd, 0) starts over: the open can write a whole value again. */
	assert_int_equal(dbx_fs_writer_truncate(&w, 0, &err), DBX_OK);
	assert_int_equal(dbx_fs_writer_write(&env->fs, &w, KEY2 "\n", strlen(KEY2) + 1, 0, &err),
			 DBX_OK);
	dbx_fs_writer_close(&w);
	assert_int_equal(env->w.patches, 1);
	assert_string_equal(env->w.jobs[0].kek_url, KEY2);
	free(big);
	env_free(env);
}

struct flush_arg {
	struct env *env;
	struct dbx_fs_writer *w;
	enum dbx_err rc;
};

static void *flush_thread(void *p)
{
	struct flush_arg *a = p;
	struct dbx_error err = {0};

	a->rc = dbx_fs_writer_flush(&a->env->fs, a->w, &err);
	return NULL;
}

/*
 * Two closes of one open file (dup'd descriptors, or a forked child) reach
 * flush at the same time: the value is applied once, by one of them, and
 * the other neither applies it again nor waits on the order's write lock
 * behind it (nor reads the buffer the first one frees).
 */
static void test_concurrent_flush_applies_once(void **state)
{
	struct env *env = env_new(KEY0);
	struct dbx_fs_writer w;
	struct dbx_error err = {0};
	struct flush_arg a;
	pthread_t ta;

	(void)state;
	/* Bounds the second flush's wait on the write lock when it wrongly applies again. */
	env->uc.timeout_ms = 500;
	assert_int_equal(dbx_fs_writer_open(&env->fs, ORDER1 "/key_url", false, &w, &err), DBX_OK);
	assert_int_equal(dbx_fs_writer_write(&env->fs, &w, KEY1, strlen(KEY1), 0, &err), DBX_OK);
	env->w.hold_until_release = true;
	a = (struct flush_arg){env, &w, DBX_EINVAL};
	assert_int_equal(pthread_create(&ta, NULL, flush_thread, &a), 0);
	pthread_mutex_lock(&env->w.lock);
	while (env->w.in_patch < 1)
		pthread_cond_wait(&env->w.cond, &env->w.lock);
	pthread_mutex_unlock(&env->w.lock);
	/* The first close is inside its PATCH: the second close has nothing to apply. */
	assert_int_equal(dbx_fs_writer_flush(&env->fs, &w, &err), DBX_OK);
	assert_false(dbx_fs_writer_pending(&w));
	pthread_mutex_lock(&env->w.lock);
	env->w.release_patch = true;
	pthread_cond_broadcast(&env->w.cond);
	pthread_mutex_unlock(&env->w.lock);
	pthread_join(ta, NULL);
	assert_false(env->w.hold_timed_out);
	assert_int_equal(a.rc, DBX_OK);
	dbx_fs_writer_close(&w);
	assert_int_equal(env->w.patches, 1);
	assert_string_equal(env->w.jobs[0].kek_url, KEY1);
	env_free(env);
}

/* ---- a write that may still land (ETIMEDOUT after ARM took its PATCH) ---- */

#define OP_URL                                                                                     \
	"https://management.azure.com/subscriptions/" SUB                                          \
	"/providers/Microsoft.DataBox/locations/westus/operationResults/"                          \
	"1202b0df-bc5a-4975-b1fd-1401ce6acae9?api-version=2025-07-01"

static enum dbx_err (*world_send)(struct dbx_transport *self, const struct dbx_http_request *req,
				  struct dbx_http_response *resp, struct dbx_error *err);

/*
 * The world, except that ARM accepts a PATCH (202 + Location) without
 * applying it and its operation answers 202 for ever: the write runs into
 * -o timeout after the PATCH was taken. Whether it lands is up to the test.
 */
static enum dbx_err slow_operation_send(struct dbx_transport *self,
					const struct dbx_http_request *req,
					struct dbx_http_response *resp, struct dbx_error *err)
{
	struct world *w = (struct world *)self;
	bool patch = strcmp(req->method, "PATCH") == 0;

	if (!patch && !strstr(req->url, "/operationResults/"))
		return world_send(self, req, resp, err);
	dbx_uuid4(resp->client_request_id);
	pthread_mutex_lock(&w->lock);
	if (patch)
		w->patches++;
	pthread_mutex_unlock(&w->lock);
	resp->status = 202;
	resp->body = strdup("");
	resp->body_len = 0;
	resp->location = strdup(OP_URL);
	resp->request_id = strdup("req-0202");
	assert_non_null(resp->body);
	assert_non_null(resp->location);
	return DBX_OK;
}

/* The errors file of order1 has a last-write block that says it may still land. */
static bool may_land_shown(struct env *env)
{
	char *errors = cat(env, ORDER1 "/errors");
	bool shown = strstr(errors, "source: last-write") && strstr(errors, "may still be applied");

	free(errors);
	return shown;
}

/* Move past the cache TTL, so the next read asks ARM again. */
static void age(struct env *env)
{
	env->fc.now += 3000;
}

/*
 * echo KEY1 > key_url runs into the timeout after ARM took the PATCH:
 * ETIMEDOUT, errors says it may still land. A later read that shows the
 * order without the change keeps that block; the first read that shows
 * the change (the order read fresh, as any reader does) clears it.
 */
static void test_may_land_cleared_by_read_showing_change(void **state)
{
	struct env *env = env_new(KEY0);
	time_t before;

	(void)state;
	world_send = env->w.base.send;
	env->w.base.send = slow_operation_send;
	assert_int_equal(shell_write(env, ORDER1 "/key_url", KEY1 "\n"), ETIMEDOUT);
	env->w.base.send = world_send;
	assert_int_equal(env->w.patches, 1);
	assert_true(may_land_shown(env));

	/* Not there (yet): read fresh, the block stays. */
	age(env);
	assert_cat(env, ORDER1 "/key_url", KEY0 "\n");
	assert_true(may_land_shown(env));

	/* It lands; the next fresh read shows it and the block goes, moving errors' mtime. */
	pthread_mutex_lock(&env->w.lock);
	snprintf(env->w.jobs[0].kek_url, sizeof(env->w.jobs[0].kek_url), "%s", KEY1);
	env->w.jobs[0].version++;
	pthread_mutex_unlock(&env->w.lock);
	before = mtime_of(env, ORDER1 "/errors");
	wall_now += 10;
	age(env);
	assert_cat(env, ORDER1 "/key_url", KEY1 "\n");
	assert_false(may_land_shown(env));
	assert_cat(env, ORDER1 "/errors", "");
	assert_true(mtime_of(env, ORDER1 "/errors") > before);
	/* Nothing was sent to get there. */
	assert_int_equal(env->w.patches, 1);
	env_free(env);
}

/*
 * The check belongs to that write only: a later write's error replaces it,
 * and a read that then shows the first change does not clear the newer
 * block. A write that failed without sending anything is never cleared.
 */
static void test_may_land_check_goes_with_next_write(void **state)
{
	struct env *env = env_new(KEY0);
	char *errors;

	(void)state;
	world_send = env->w.base.send;
	env->w.base.send = slow_operation_send;
	assert_int_equal(shell_write(env, ORDER1 "/key_url", KEY1 "\n"), ETIMEDOUT);
	env->w.base.send = world_send;
	/* Refused locally: its own block replaces the one that may still land. */
	assert_int_equal(shell_write(env, ORDER1 "/key_url", SPEC_URL "\n"), EINVAL);
	pthread_mutex_lock(&env->w.lock);
	snprintf(env->w.jobs[0].kek_url, sizeof(env->w.jobs[0].kek_url), "%s", KEY1);
	env->w.jobs[0].version++;
	pthread_mutex_unlock(&env->w.lock);
	age(env);
	assert_cat(env, ORDER1 "/key_url", KEY1 "\n");
	errors = cat(env, ORDER1 "/errors");
	assert_non_null(strstr(errors, "source: last-write"));
	assert_null(strstr(errors, "may still be applied"));
	free(errors);
	env_free(env);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_echo_applies_once),
	    cmocka_unit_test(test_invalid_url_sends_nothing),
	    cmocka_unit_test(test_empty_key_url),
	    cmocka_unit_test(test_chunks_apply_at_flush),
	    cmocka_unit_test(test_chunks_refused_at_flush),
	    cmocka_unit_test(test_json_lines),
	    cmocka_unit_test(test_noncontiguous),
	    cmocka_unit_test(test_write_after_apply),
	    cmocka_unit_test(test_too_big),
	    cmocka_unit_test(test_write_back_current),
	    cmocka_unit_test(test_current_value_stale_state),
	    cmocka_unit_test(test_failed_then_ok),
	    cmocka_unit_test(test_service_errno),
	    cmocka_unit_test(test_interrupted),
	    cmocka_unit_test(test_read_only_files),
	    cmocka_unit_test(test_same_order_serialized),
	    cmocka_unit_test(test_queued_writer_interrupted),
	    cmocka_unit_test(test_queued_writer_keeps_its_deadline),
	    cmocka_unit_test(test_different_orders_overlap),
	    cmocka_unit_test(test_reads_do_not_block),
	    cmocka_unit_test(test_inflight_read_loses_to_write),
	    cmocka_unit_test(test_refused_write_never_applies_prefix),
	    cmocka_unit_test(test_concurrent_flush_applies_once),
	    cmocka_unit_test(test_may_land_cleared_by_read_showing_change),
	    cmocka_unit_test(test_may_land_check_goes_with_next_write),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
