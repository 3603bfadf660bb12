/*
 * test_credfile.c: the credential file of -o credential_file= (cred/credfile.c,
 * the man page's "CREDENTIAL FILE"): the line grammar (comments, blanks,
 * quotes, what is refused and on which line), that no message ever holds a
 * value, that the file's variables come before the fallback environment, and
 * the checks on the file itself (regular, owner, no group or other bits),
 * made on real files in a temporary directory.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "databoxfs/auth.h"

#define SECRET "s3cr~et=with#hash"

/* A fallback environment: a fixed table, so no test depends on or changes the process's. */
static const char *table_get(void *ctx, const char *name)
{
	const char *const *kv = ctx;

	for (size_t i = 0; kv[i]; i += 2) {
		if (strcmp(kv[i], name) == 0)
			return kv[i + 1];
	}
	return NULL;
}

static const char *const fallback_vars[] = {
    "AZURE_TENANT_ID",
    "tenant-from-env",
    "AZURE_CLIENT_ID",
    "client-from-env",
    "PATH",
    "/bin",
    NULL,
};
static const struct dbx_env fallback = {.get = table_get, .ctx = (void *)fallback_vars};

static struct dbx_credfile *parse_ok(const char *text)
{
	struct dbx_credfile *cf = NULL;
	struct dbx_error err = {0};

	assert_int_equal(dbx_credfile_parse(text, strlen(text), "f", &cf, &err), DBX_OK);
	assert_non_null(cf);
	return cf;
}

/* Parse text, expect DBX_ECONFIG with a message naming line, and no SECRET in it. */
static void parse_bad(const char *text, const char *want)
{
	struct dbx_credfile *cf = NULL;
	struct dbx_error err = {0};

	assert_int_equal(dbx_credfile_parse(text, strlen(text), "f", &cf, &err), DBX_ECONFIG);
	assert_null(cf);
	if (!strstr(err.message, want))
		fail_msg("message \"%s\" lacks \"%s\"", err.message, want);
	assert_null(strstr(err.message, "s3cr"));
}

static const char *get(struct dbx_credfile *cf, const char *name)
{
	const struct dbx_env *env = dbx_credfile_env(cf, &fallback);

	return env->get(env->ctx, name);
}

static void test_grammar(void **state)
{
	struct dbx_credfile *cf = parse_ok("# the service principal of the backup host\n"
					   "\n"
					   "   \t\n"
					   "AZURE_CLIENT_SECRET=" SECRET "\n"
					   "  AZURE_TENANT_ID=  72f988bf \t\n"
					   "AZURE_CLIENT_ID='  quoted keeps blanks '\n"
					   "AZURE_AUTHORITY_HOST=\"https://login.example/\"\n"
					   "AZURE_CLIENT_CERTIFICATE_PASSWORD=a'b\"c\\n\n"
					   "AZURE_FEDERATED_TOKEN_FILE=\n"
					   "IDENTITY_HEADER=no newline at the end");

	(void)state;
	assert_string_equal(get(cf, "AZURE_CLIENT_SECRET"), SECRET);
	assert_string_equal(get(cf, "AZURE_TENANT_ID"), "72f988bf");
	assert_string_equal(get(cf, "AZURE_CLIENT_ID"), "  quoted keeps blanks ");
	assert_string_equal(get(cf, "AZURE_AUTHORITY_HOST"), "https://login.example/");
	/* Quotes inside an unquoted value and backslashes are kept as written. */
	assert_string_equal(get(cf, "AZURE_CLIENT_CERTIFICATE_PASSWORD"), "a'b\"c\\n");
	assert_string_equal(get(cf, "IDENTITY_HEADER"), "no newline at the end");
	/* An empty value hides the fallback's (the sources take empty as unset). */
	assert_string_equal(get(cf, "AZURE_FEDERATED_TOKEN_FILE"), "");
	dbx_credfile_free(cf);
}

static void test_blanks_before_equals_refused(void **state)
{
	(void)state;
	parse_bad("AZURE_TENANT_ID = x\n", "line 1: expected NAME=VALUE (no blanks before '=')");
}

static void test_file_before_fallback(void **state)
{
	struct dbx_credfile *cf = parse_ok("AZURE_TENANT_ID=tenant-from-file\n");

	(void)state;
	assert_string_equal(get(cf, "AZURE_TENANT_ID"), "tenant-from-file");
	assert_string_equal(get(cf, "AZURE_CLIENT_ID"), "client-from-env");
	assert_null(get(cf, "AZURE_CLIENT_SECRET"));
	assert_string_equal(get(cf, "PATH"), "/bin");
	dbx_credfile_free(cf);
}

static void test_malformed_lines(void **state)
{
	(void)state;
	parse_bad("AZURE_TENANT_ID=t\n" SECRET "\n", "line 2: expected NAME=VALUE");
	parse_bad("s3cr_et=x\n", "line 1: not a variable of the credential chain");
	parse_bad("# c\nAZURE_CLIENT_SECRET\n", "line 2: expected NAME=VALUE");
	parse_bad("=" SECRET "\n", "line 1: expected NAME=VALUE");
	parse_bad("1AZURE=x\n", "line 1: expected NAME=VALUE");
	parse_bad("export AZURE_CLIENT_SECRET=" SECRET "\n", "line 1: expected NAME=VALUE");
	parse_bad("AZURE_CLIENT_SECRTE=" SECRET "\n",
		  "line 1: AZURE_CLIENT_SECRTE is not a variable of the credential chain");
	parse_bad("PATH=/tmp/evil\n", "line 1: not a variable of the credential chain");
	parse_bad("LD_PRELOAD=/tmp/x.so\n", "line 1: not a variable");
	parse_bad("AZURE_CLIENT_SECRET=" SECRET "\r\n", "line 1: a carriage return");
	parse_bad("AZURE_CLIENT_SECRET=a\x01"
		  "b\n",
		  "line 1: a control character");
	parse_bad("AZURE_CLIENT_SECRET='" SECRET "\n",
		  "line 1: AZURE_CLIENT_SECRET: a quoted value");
	parse_bad("AZURE_CLIENT_SECRET='s3cr'et'\n", "line 1: AZURE_CLIENT_SECRET: a quoted value");
	parse_bad("AZURE_CLIENT_SECRET=\"s3cr\" # comment\n", "a quoted value must end");
	parse_bad("AZURE_CLIENT_ID=a\n\nAZURE_CLIENT_ID=b\n",
		  "line 3: AZURE_CLIENT_ID is already set on line 1");
}

static void test_nul_and_size(void **state)
{
	struct dbx_credfile *cf = NULL;
	struct dbx_error err = {0};
	static const char nul[] = "AZURE_CLIENT_SECRET=s3cr\0et\n";
	size_t big = 64 * 1024 + 1;
	char *text = malloc(big);

	(void)state;
	assert_int_equal(dbx_credfile_parse(nul, sizeof(nul) - 1, "f", &cf, &err), DBX_ECONFIG);
	assert_non_null(strstr(err.message, "NUL"));
	assert_non_null(text);
	memset(text, '#', big);
	assert_int_equal(dbx_credfile_parse(text, big, "f", &cf, &err), DBX_ECONFIG);
	assert_non_null(strstr(err.message, "64 KiB"));
	/* Exactly 64 KiB of comment is a file. */
	text[big - 2] = '\n';
	assert_int_equal(dbx_credfile_parse(text, big - 1, "f", &cf, &err), DBX_OK);
	dbx_credfile_free(cf);
	free(text);
}

/* ---- the file itself ---- */

static char dir[] = "/tmp/dbx-credfile-XXXXXX";

static int setup_dir(void **state)
{
	(void)state;
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown_dir(void **state)
{
	char cmd[64];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static const char *write_file(const char *name, mode_t mode, const char *text)
{
	static char path[256];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
	return path;
}

static enum dbx_err load(const char *path, uid_t owner, struct dbx_error *err)
{
	struct dbx_credfile *cf = NULL;
	enum dbx_err rc = dbx_credfile_load(path, owner, &cf, err);

	if (rc == DBX_OK) {
		const struct dbx_env *env = dbx_credfile_env(cf, &fallback);

		assert_string_equal(env->get(env->ctx, "AZURE_CLIENT_SECRET"), SECRET);
	} else {
		assert_null(cf);
		assert_null(strstr(err->message, "s3cr"));
	}
	dbx_credfile_free(cf);
	return rc;
}

static void test_modes(void **state)
{
	struct dbx_error err = {0};
	const char *path;
	const mode_t refused[] = {0644, 0640, 0604, 0660, 0606, 0610, 0601, 0700 | 0070, 0777};

	(void)state;
	path = write_file("ok.env", 0600, "AZURE_CLIENT_SECRET=" SECRET "\n");
	assert_int_equal(load(path, getuid(), &err), DBX_OK);
	path = write_file("ro.env", 0400, "AZURE_CLIENT_SECRET=" SECRET "\n");
	assert_int_equal(load(path, getuid(), &err), DBX_OK);
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		char want[32];

		path = write_file("open.env", refused[i], "AZURE_CLIENT_SECRET=" SECRET "\n");
		assert_int_equal(load(path, getuid(), &err), DBX_ECONFIG);
		snprintf(want, sizeof(want), "mode %04o", (unsigned)refused[i]);
		if (!strstr(err.message, want) || !strstr(err.message, "chmod 600"))
			fail_msg("mode %04o: \"%s\"", (unsigned)refused[i], err.message);
	}
}

static void test_owner(void **state)
{
	struct dbx_error err = {0};
	const char *path = write_file("owner.env", 0600, "AZURE_CLIENT_SECRET=" SECRET "\n");
	uid_t me = getuid();

	(void)state;
	if (me != 0) {
		/* My file, mounted by someone else (neither theirs nor root's): refused. */
		assert_int_equal(load(path, me + 1, &err), DBX_ECONFIG);
		assert_non_null(strstr(err.message, "it must belong to the mounting user"));
		return;
	}
	/* Another user's file, mounted by root or a third user: refused. */
	assert_int_equal(chown(path, 4242, 4242), 0);
	assert_int_equal(load(path, 0, &err), DBX_ECONFIG);
	assert_non_null(strstr(err.message, "owned by uid 4242; it must belong to the mounting "
					    "user (uid 0) or root"));
	assert_int_equal(load(path, 4243, &err), DBX_ECONFIG);
	/* That user's own mount takes it; root's file is taken for any mounting user. */
	assert_int_equal(load(path, 4242, &err), DBX_OK);
	assert_int_equal(chown(path, 0, 0), 0);
	assert_int_equal(load(path, 4242, &err), DBX_OK);
}

static void test_not_a_file(void **state)
{
	struct dbx_error err = {0};
	char path[256];

	(void)state;
	assert_int_equal(load(dir, getuid(), &err), DBX_ECONFIG);
	assert_non_null(strstr(err.message, "not a regular file"));
	snprintf(path, sizeof(path), "%s/fifo", dir);
	assert_int_equal(mkfifo(path, 0600), 0);
	assert_int_equal(load(path, getuid(), &err), DBX_ECONFIG);
	assert_non_null(strstr(err.message, "not a regular file"));
	snprintf(path, sizeof(path), "%s/missing.env", dir);
	assert_int_equal(load(path, getuid(), &err), DBX_ECONFIG);
	assert_non_null(strstr(err.message, strerror(ENOENT)));
	path[0] = '\0';
	/* A malformed file names itself and the line. */
	snprintf(path, sizeof(path), "%s", write_file("bad.env", 0600, "\n\n" SECRET "\n"));
	assert_int_equal(load(path, getuid(), &err), DBX_ECONFIG);
	assert_non_null(strstr(err.message, "bad.env: line 3:"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_grammar),
	    cmocka_unit_test(test_blanks_before_equals_refused),
	    cmocka_unit_test(test_file_before_fallback),
	    cmocka_unit_test(test_malformed_lines),
	    cmocka_unit_test(test_nul_and_size),
	    cmocka_unit_test(test_modes),
	    cmocka_unit_test(test_owner),
	    cmocka_unit_test(test_not_a_file),
	};

	return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
