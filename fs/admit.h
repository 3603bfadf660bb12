/*
 * admit.h: writers of one order take turns, and wait for their turn at open.
 *
 * The kernel holds a file's inode lock for each write(2) and for the
 * truncation of open(O_TRUNC), and queues every other writer of that file
 * behind it where the mount cannot see or bound the wait (libfuse 3.14
 * has no parallel direct writes). So a writer waits here instead, in its
 * open, before the kernel takes any lock for it: an open for writing of an
 * order's file takes the order's turn, first come first served, and keeps
 * it until release (the last close of that open). Only the writer holding
 * the turn can be inside write(2), truncation or flush of that order's
 * files, so none of them queues in the kernel. The wait is bounded by -o
 * timeout on the mount's clock and notices Ctrl-C; a writer whose turn
 * does not come in time gets DBX_ETIMEDOUT from open with nothing sent
 * (docs/formats.md, "Writes"). Readers never take a turn.
 *
 * A waiting writer occupies one FUSE worker thread. At most
 * DBX_ADMIT_WAIT_MAX writers wait at once on a mount (main.c starts enough
 * threads for them and for readers); one more fails at once with
 * DBX_ETIMEDOUT, nothing sent.
 */
#ifndef DATABOXFS_FS_ADMIT_H
#define DATABOXFS_FS_ADMIT_H

#include <stdint.h>

#include "databoxfs/clock.h"
#include "databoxfs/err.h"
#include "tree.h"

/* Writers that may wait for their turn at once, over the whole mount. */
#define DBX_ADMIT_WAIT_MAX 32

struct dbx_admit;
struct dbx_admit_turn;

/* A new, empty set of queues on clock (not owned), or NULL on ENOMEM. */
struct dbx_admit *dbx_admit_new(const struct dbx_clock *clock);

/* Free a; every turn must have been left. NULL is fine. */
void dbx_admit_free(struct dbx_admit *a);

/*
 * Take the turn of node's order (names compared case-insensitively, as
 * ARM does), waiting behind the writers that asked before. Ends with
 * DBX_EINTR as soon as interrupted(ictx) says so (polled; may be NULL),
 * and with DBX_ETIMEDOUT after timeout_ms (0: no bound) or at once when
 * DBX_ADMIT_WAIT_MAX writers wait already; err then says the order was
 * busy and that nothing was sent. DBX_ENOMEM. On success *turn is held
 * until dbx_admit_leave(); else NULL.
 */
DBX_MUST_CHECK enum dbx_err dbx_admit_enter(struct dbx_admit *a, const struct dbx_node *node,
					    uint64_t timeout_ms, int (*interrupted)(void *ctx),
					    void *ictx, struct dbx_admit_turn **turn,
					    struct dbx_error *err);

/* Give the turn to the next writer waiting for the order, if any. NULL is fine. */
void dbx_admit_leave(struct dbx_admit *a, struct dbx_admit_turn *turn);

/* How many writers are waiting for a turn now (for tests). */
unsigned dbx_admit_waiting(struct dbx_admit *a);

#endif
