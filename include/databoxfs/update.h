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

/* How far a write has got (struct dbx_update_config's progress). */
enum dbx_update_stage {
	DBX_UPDATE_SENDING, /* checks passed: body is about to be PATCHed (again, on a resend) */
	DBX_UPDATE_ARM,	    /* arm says how the PATCH goes (accepted, polls) */
	DBX_UPDATE_DRY_RUN, /* -o dry_run: body would be PATCHed now; nothing is sent */
};

struct dbx_update_progress {
	enum dbx_update_stage stage;
	const char *body;		    /* SENDING, DRY_RUN: the PATCH body (JSON), else NULL */
	const struct dbx_order *current;    /* SENDING, DRY_RUN: the order as read just before */
	const char *notes;		    /* preflight notices so far ("" when none) */
	const struct dbx_arm_progress *arm; /* ARM: what arm.h tells, else NULL */
};

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
	/*
	 * -o dry_run: every step up to the PATCH runs (the fresh read, the
	 * merge, the preflight) and fails as it would, but the PATCH is not
	 * sent: the write ends DBX_OK with the order as it is, report->dry_run
	 * set and the body told to progress (DBX_UPDATE_DRY_RUN).
	 */
	bool dry_run;
	/*
	 * Who the mount's credential is, as far as the credential layer knows
	 * ("client_id=... tenant=...", "managed identity", ...; never a token
	 * or secret), for the audit trail. NULL: unknown.
	 */
	const char *principal;
	/* Told how the write goes, on the writing thread; may be NULL. Must not block. */
	void (*progress)(void *ctx, const struct dbx_update_progress *p);
	void *progress_ctx;
};

/* What a write did, for logs and the errors file. */
struct dbx_update_report {
	bool patched;	  /* a PATCH reached ARM */
	bool noop;	  /* nothing to change: no PATCH sent */
	char notes[1024]; /* preflight checks skipped and why ("" when none) */
	bool dry_run;	  /* -o dry_run: the PATCH was due and not sent */
	/* The IDs of the answer by which ARM accepted the (last) PATCH, "" when none. */
	char request_id[DBX_ERR_ID_MAX];
	char correlation_id[DBX_ERR_ID_MAX];
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
