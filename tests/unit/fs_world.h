/*
 * fs_world.h: the fixture the write-path unit tests share: a small
 * rule-based fake of ARM and Key Vault (two orders, one vault, keys k0-k2)
 * that records every request and can hold a PATCH or a GET to stage races,
 * wired to a REAL struct dbx_arm, dbx_keyvault, dbx_update_apply(), cache
 * and struct dbx_fs. No mount, no sleeping (fake clock).
 */
#ifndef DBX_TEST_FS_WORLD_H
#define DBX_TEST_FS_WORLD_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "databoxfs/arm.h"
#include "databoxfs/keyvault.h"
#include "databoxfs/update.h"
#include "cache.h"
#include "fake_transport.h"
#include "fs.h"
#include "rsa_moduli.h"

#define SUB	  "0b1f6471-1bf0-4dda-aec3-111122223333"
#define PRINCIPAL "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"
#define TENANT	  "72f988bf-86f1-41af-91ab-2d7cd011db47"
#define VAULT_ID                                                                                   \
	"/subscriptions/" SUB "/resourceGroups/rg-keys/providers/Microsoft.KeyVault/vaults/"       \
	"contosovault"
#define KV_HOST	     "https://contosovault.vault.azure.net"
#define KEY0	     KV_HOST "/keys/k0"
#define KEY1	     KV_HOST "/keys/k1"
#define KEY2	     KV_HOST "/keys/k2"
#define VERSION	     "78deebed173b48e48f55abf87ed4cf71"
#define SPEC_URL     "https://xxx.xxx.xx" /* the API spec's example kekUrl: not a valid key URL */
#define ORDER1	     "/" SUB "/rg1/order1"
#define ORDER2	     "/" SUB "/rg1/order2"
#define WAIT_BOUND_S 10 /* only reached when serialization or overlap is broken */

struct job {
	const char *name;
	char kek_url[256]; /* "" = Microsoft managed */
	bool problem;	   /* the order reports SsemUserErrorEncryptionKeyDisabled */
	int version;	   /* bumped by every PATCH: lastModifiedAt moves */
};

struct world {
	struct dbx_transport base;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct job jobs[2];
	/* Every request: "GET order1", "PATCH order1", "GET resources", "GET vault", "GET key". */
	char log[256][32];
	size_t n_log;
	size_t patches;
	/* Failure injection for PATCH: status and body, or 0. */
	long patch_status;
	const char *patch_body;
	/* Concurrency hooks, run inside a PATCH before it is applied. */
	struct dbx_cache *cache;
	bool hold_until_waiter;	 /* wait until another writer queues on the write lock */
	bool hold_until_both;	 /* wait until PATCHes of both orders are in flight */
	bool hold_until_release; /* wait until release_patch is set */
	bool release_patch;
	unsigned in_patch;
	bool hold_timed_out;
	/* Hold the next job GET, answered with the state before it was held, until released. */
	bool hold_next_get;
	bool get_held;
	bool release_get;
	uint64_t last_deadline; /* deadline_ms of the latest job request */
};

struct env {
	struct world w;
	struct fake_clock fc;
	struct dbx_arm *arm;
	struct dbx_keyvault *kv;
	struct dbx_update_config uc;
	struct dbx_cache *cache;
	struct dbx_fs fs;
};

/* Set non-zero to make the write path see a Ctrl-C before its PATCH. */
extern int interrupt_flag;
/* The cache's wall clock (mtime of states without lastModifiedAt). */
extern time_t wall_now;

void wait_flag(struct world *w, const bool *flag);
struct env *env_new(const char *key1_url);
void env_free(struct env *env);
size_t n_calls(struct env *env);
size_t n_logged(struct env *env, const char *entry);
char *cat(struct env *env, const char *path);
void assert_cat(struct env *env, const char *path, const char *want);

#endif
