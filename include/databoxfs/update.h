/*
 * update.h: one write to an order, end to end (docs/formats.md, "Writes").
 *
 * The caller has validated the value locally (validate.h) and holds the
 * order's write lock (writes to one order are serialized by the caller;
 * writes to different orders run in parallel). dbx_update_apply then:
 *   1. reads the order fresh (never from a cache);
 *   2. merges the change into the objects it touches: the complete
 *      keyEncryptionKey when any of its fields changes, the job identity
 *      when it changes; a write that changes nothing sends nothing;
 *   3. runs the preflight (keyvault.h) for what the PATCH will use: the key
 *      and its vault (kekVaultResourceID comes from the vault lookup), the
 *      user-assigned identity (must exist), the principal's access;
 *   4. PATCHes only those objects and follows the long-running operation;
 *      after a 5xx or a dropped connection it reads the order and resends
 *      only if the change is not there yet;
 *   5. returns the order as ARM now has it, for the cache.
 * Every step is bounded by one deadline: now + timeout.
 */
#ifndef DATABOXFS_UPDATE_H
#define DATABOXFS_UPDATE_H

#include <stdbool.h>
#include <stdint.h>

#include "databoxfs/err.h"
#include "databoxfs/arm.h"
#include "databoxfs/clock.h"
#include "databoxfs/keyvault.h"
#include "databoxfs/order.h"
#include "databoxfs/validate.h"

struct dbx_update_config {
	struct dbx_arm *arm;	 /* not owned */
	struct dbx_keyvault *kv; /* not owned */
	const struct dbx_cloud *cloud;
	/*
	 * The deadline of the write (monotonic, so the arm's and kv's clock:
	 * their requests are bounded by it) and the time a key's nbf and exp
	 * are judged at (wall). NULL: the arm's clock, dbx_arm_clock().
	 */
	const struct dbx_clock *clock;
	uint64_t timeout_ms;  /* bound on one whole write */
	uint64_t lro_poll_ms; /* poll interval when ARM sends no Retry-After */
	/*
	 * Asked before the PATCH is sent: non-zero means the writer was
	 * interrupted (Ctrl-C), and the write stops with DBX_EINTR. After the
	 * PATCH is sent the write runs to its end. May be NULL.
	 */
	int (*interrupted)(void *ctx);
	void *interrupted_ctx;
};

/* What a write did, for logs and the errors file. */
struct dbx_update_report {
	bool patched;	  /* a PATCH reached ARM */
	bool noop;	  /* nothing to change: no PATCH sent */
	char notes[1024]; /* preflight checks skipped and why ("" when none) */
};

/*
 * Apply change to order subscription/resource_group/name. On success *result
 * is the fresh order after the write (also after a no-op). On failure err has
 * the Ssem code (preflight or service), message and request id, and the order
 * is as it was (nothing was PATCHed, or the PATCH failed).
 */
DBX_MUST_CHECK enum dbx_err
dbx_update_apply(const struct dbx_update_config *cfg, const char *subscription,
		 const char *resource_group, const char *name,
		 const struct dbx_encryption_change *change, struct dbx_order **result,
		 struct dbx_update_report *report, struct dbx_error *err);

/*
 * Step 2 alone, pure: merge change into current, giving the order as it
 * should be (*want, malloc'd copy) and which objects to send (DBX_PATCH_*
 * bits in *what, 0 for a no-op). vault_id is the kekVaultResourceID found
 * by the preflight for change->key_url (NULL when the key URL is not
 * changed). DBX_EINVAL for contradictions (CustomerManaged without any key,
 * a user-assigned identity on a key-less order, ...), with a message.
 */
DBX_MUST_CHECK enum dbx_err dbx_update_merge(const struct dbx_order *current,
					     const struct dbx_encryption_change *change,
					     const char *vault_id, struct dbx_order **want,
					     unsigned *what, struct dbx_error *err);

#endif
