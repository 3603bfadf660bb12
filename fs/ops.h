/*
 * ops.h: the FUSE operations table of databoxfs (the only FUSE-facing
 * code besides main.c). private_data passed to fuse_main() must be a
 * struct dbx_fs (fs.h).
 */
#ifndef DATABOXFS_FS_OPS_H
#define DATABOXFS_FS_OPS_H

#define FUSE_USE_VERSION 31
#include <fuse.h>
#include <signal.h>

#include "databoxfs/err.h"

/* The signal libfuse sends a worker thread whose request was interrupted (cfg->intr_signal). */
#define DBX_INTR_SIGNAL SIGUSR1

/* The one operations table, for fuse_main(). */
const struct fuse_operations *dbx_fuse_operations(void);

/*
 * struct dbx_cache_config's on_change for a mount: ctx is its struct
 * dbx_fs. Queues the order for the notifier (ops.c), which tells the
 * kernel to drop what it holds of each of its files that changed; does
 * nothing before the mount's init or after its destroy. Never blocks.
 */
void dbx_ops_cache_changed(void *ctx, const char *subscription, const char *resource_group,
			   const char *name);

/* The errno a failed operation returns for err (positive). */
int dbx_errno(enum dbx_err err);

#endif
