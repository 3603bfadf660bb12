/*
 * test_fs_ops.c: the one errno mapping of the FUSE boundary (fs/ops.c),
 * row by row as docs/formats.md, "errno", promises it: what `cat`,
 * `ls` and `echo` print when something fails.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "ops.h"

static void test_errno_mapping(void **state)
{
	static const struct {
		enum dbx_err err;
		int errnum;
	} rows[] = {
	    {DBX_OK, 0},
	    {DBX_EINVAL, EINVAL},
	    {DBX_EACCES, EACCES},
	    {DBX_EAUTH, EACCES},
	    {DBX_ENOTFOUND, ENOENT},
	    {DBX_EBUSY, EBUSY},
	    {DBX_ETHROTTLED, EAGAIN},
	    {DBX_ETIMEDOUT, ETIMEDOUT},
	    {DBX_EUNREACHABLE, EHOSTUNREACH},
	    {DBX_EREMOTE, EIO},
	    {DBX_EINTR, EINTR},
	    {DBX_ENOMEM, ENOMEM},
	    {DBX_ECONFIG, EINVAL},
	    {DBX_EROFS, EROFS},
	    {DBX_EEXIST, EEXIST},
	    {DBX_ENOSPC, ENOSPC},
	    {DBX_EFBIG, EFBIG},
	    {DBX_EXDEV, EXDEV},
	    {DBX_EPERM, EPERM},
	};

	(void)state;
	/* One row per value: a new enum dbx_err comes with its errno. */
	assert_int_equal(sizeof(rows) / sizeof(rows[0]), DBX_EPERM + 1);
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		assert_int_equal(dbx_errno(rows[i].err), rows[i].errnum);
	/* Never ENOTCONN: admins read it as "the daemon crashed". */
	for (int e = DBX_OK; e <= DBX_EPERM; e++)
		assert_int_not_equal(dbx_errno((enum dbx_err)e), ENOTCONN);
}

/*
 * The table has what reads and whole-value writes need (flush and fsync
 * apply a value written without a trailing newline), and the tree itself
 * cannot be changed through it. The adapters run as a daemon's thread
 * that is not serving a request: libfuse is set up (fuse_new, which makes
 * its context key, without mounting), so fuse_get_context() says "no
 * request" instead of reading another library's thread data.
 */
static void test_operations_table(void **state)
{
	const struct fuse_operations *ops = dbx_fuse_operations();
	struct fuse_file_info fi = {.flags = O_CREAT | O_WRONLY};
	char *argv[] = {"test_fs_ops", NULL};
	struct fuse_args args = FUSE_ARGS_INIT(1, argv);
	struct fuse *fuse;

	(void)state;
	fuse = fuse_new(&args, ops, sizeof(*ops), NULL);
	assert_non_null(fuse);
	assert_non_null(ops->init);
	assert_non_null(ops->getattr);
	assert_non_null(ops->readdir);
	assert_non_null(ops->open);
	assert_non_null(ops->read);
	assert_non_null(ops->release);
	assert_non_null(ops->statfs);
	assert_non_null(ops->write);
	assert_non_null(ops->flush);
	assert_non_null(ops->fsync);
	assert_non_null(ops->truncate);
	assert_int_equal(ops->create("/x", 0644, &fi), -EROFS);
	assert_int_equal(ops->mknod("/x", 0644, 0), -EROFS);
	assert_int_equal(ops->mkdir("/x", 0755), -EROFS);
	assert_int_equal(ops->unlink("/x"), -EROFS);
	assert_int_equal(ops->rename("/x", "/y", 0), -EROFS);
	assert_int_equal(ops->chmod("/x", 0777, NULL), -EROFS);
	assert_int_equal(ops->chown("/x", 0, 0, NULL), -EROFS);
	fuse_destroy(fuse);
	fuse_opt_free_args(&args);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_errno_mapping),
	    cmocka_unit_test(test_operations_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
