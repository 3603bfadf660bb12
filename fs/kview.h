/*
 * kview.h: what the kernel was last given of each order file, so the mount
 * can let the kernel cache pages and attributes and still never show a
 * stale or cut value (docs/architecture.md, "Kernel caches").
 *
 * One record per file inode: the bytes of the version whose size and
 * mtime the kernel was last told (a getattr or readdirplus reply, an
 * open), and a "changed" mark set when a newer version replaced an older
 * one and cleared by the next open. ops.c uses it three ways:
 *   - open: the kernel may keep its cached pages only when the version is
 *     the one it already has and nothing changed since (dbx_kview_opened);
 *   - read of a cached page (FUSE_READ): the bytes served are the record's,
 *     so the pages the kernel fills always match the size it holds, even
 *     for an open made before a change (dbx_kview_read);
 *   - a change the mount learns of (cache.h's on_change): each file whose
 *     version differs from the record is named, for the kernel to drop
 *     (dbx_kview_check).
 * Plain data, no FUSE here; thread-safe (one mutex). Nothing blocks.
 */
#ifndef DATABOXFS_FS_KVIEW_H
#define DATABOXFS_FS_KVIEW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "databoxfs/err.h"

struct dbx_kview;

/* A new, empty table, or NULL on ENOMEM. */
struct dbx_kview *dbx_kview_new(void);
void dbx_kview_free(struct dbx_kview *kv);

/*
 * The kernel is told about version buf[0..len) of inode ino (its size in a
 * getattr or readdirplus reply). Returns whether that differs from the
 * record (a new inode is not a change); the record becomes this version,
 * and a change marks it changed. Out of memory: the record is dropped,
 * which the next open treats as a change.
 */
bool dbx_kview_note(struct dbx_kview *kv, uint64_t ino, const char *buf, size_t len);

/*
 * An open of inode ino rendered buf[0..len). Returns whether the kernel may
 * keep the pages it holds for ino: the record exists, is this version and
 * was not marked changed since the last open. The record becomes this
 * version and the mark is cleared.
 */
bool dbx_kview_opened(struct dbx_kview *kv, uint64_t ino, const char *buf, size_t len);

/* Forget inode ino (its order could not be rendered): the next open drops the pages. */
void dbx_kview_forget(struct dbx_kview *kv, uint64_t ino);

/*
 * Copy up to size bytes at off of ino's recorded version into out; *n is
 * how many. false when there is no record (nothing copied).
 */
bool dbx_kview_read(struct dbx_kview *kv, uint64_t ino, char *out, size_t size, uint64_t off,
		    size_t *n);

/* Whether ino has a record: the kernel may hold attributes or pages of it. */
bool dbx_kview_known(struct dbx_kview *kv, uint64_t ino);

#endif
