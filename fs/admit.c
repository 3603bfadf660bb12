/*
 * admit.c: per-order FIFO turns for writers (admit.h).
 *
 * One mutex guards every queue. An order's queue (struct dbx_admit_turn:
 * the turn of that order, held by one writer at a time) exists while a
 * writer holds it or waits for it, and is freed when the last one leaves,
 * so the set stays as small as the writers in flight. Each waiter has its
 * own condition variable: leaving hands the turn straight to the first
 * waiter (no thundering herd, no overtaking), and a waiter polls every
 * ADMIT_POLL_MS for Ctrl-C and its deadline.
 */
#include <ctype.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "admit.h"

#define ADMIT_POLL_MS 100 /* how often a waiting writer asks whether it was interrupted */

struct waiter {
	struct waiter *next;
	pthread_cond_t cond;
	bool admitted; /* the turn was handed to this waiter */
};

struct dbx_admit_turn {
	struct dbx_admit_turn *next;
	char *key;		    /* "sub/rg/order", lower case */
	unsigned users;		    /* the holder and the waiters */
	struct waiter *head, *tail; /* waiting, first come first */
};

struct dbx_admit {
	pthread_mutex_t lock;
	const struct dbx_clock *clock;
	struct dbx_admit_turn *turns; /* the orders with a holder */
	unsigned waiting;
};

struct dbx_admit *dbx_admit_new(const struct dbx_clock *clock)
{
	struct dbx_admit *a = calloc(1, sizeof(*a));

	if (!a)
		return NULL;
	if (pthread_mutex_init(&a->lock, NULL) != 0) {
		free(a);
		return NULL;
	}
	a->clock = clock;
	return a;
}

void dbx_admit_free(struct dbx_admit *a)
{
	if (!a)
		return;
	while (a->turns) {
		struct dbx_admit_turn *t = a->turns;

		a->turns = t->next;
		free(t->key);
		free(t);
	}
	pthread_mutex_destroy(&a->lock);
	free(a);
}

/* "sub/rg/order" of node, lower case (malloc'd), or NULL on ENOMEM. */
static char *order_key(const struct dbx_node *node)
{
	size_t n = strlen(node->subscription) + strlen(node->resource_group) + strlen(node->order);
	char *key = malloc(n + 3);
	char *p = key;
	const char *parts[3] = {node->subscription, node->resource_group, node->order};

	if (!key)
		return NULL;
	for (int i = 0; i < 3; i++) {
		if (i)
			*p++ = '/';
		for (const char *s = parts[i]; *s; s++)
			*p++ = (char)tolower((unsigned char)*s);
	}
	*p = '\0';
	return key;
}

/* The queue of key, found or added (taking over key). Lock held. NULL on ENOMEM. */
static struct dbx_admit_turn *queue_of(struct dbx_admit *a, char *key, bool *added)
{
	struct dbx_admit_turn *t;

	*added = false;
	for (t = a->turns; t; t = t->next) {
		if (!strcmp(t->key, key)) {
			free(key);
			return t;
		}
	}
	t = calloc(1, sizeof(*t));
	if (!t) {
		free(key);
		return NULL;
	}
	t->key = key;
	t->next = a->turns;
	a->turns = t;
	*added = true;
	return t;
}

/* One user fewer on t; the queue goes when nobody holds or wants it. Lock held. */
static void unuse(struct dbx_admit *a, struct dbx_admit_turn *t)
{
	struct dbx_admit_turn **pp;

	if (--t->users)
		return;
	for (pp = &a->turns; *pp; pp = &(*pp)->next) {
		if (*pp == t) {
			*pp = t->next;
			break;
		}
	}
	free(t->key);
	free(t);
}

/* Take w out of t's waiters (it gave up). Lock held. */
static void unlink_waiter(struct dbx_admit_turn *t, struct waiter *w)
{
	struct waiter **pp, *prev = NULL;

	for (pp = &t->head; *pp; prev = *pp, pp = &(*pp)->next) {
		if (*pp == w) {
			*pp = w->next;
			if (t->tail == w)
				t->tail = prev;
			return;
		}
	}
}

/* Wait until w is admitted, interrupted or past deadline. Lock held. */
static enum dbx_err wait_turn(struct dbx_admit *a, struct waiter *w, uint64_t timeout_ms,
			      uint64_t deadline, int (*interrupted)(void *ctx), void *ictx,
			      struct dbx_error *err)
{
	while (!w->admitted) {
		uint64_t now = dbx_clock_now_ms(a->clock);
		uint64_t wake = now + ADMIT_POLL_MS;

		if (interrupted && interrupted(ictx))
			return dbx_error_set(err, DBX_EINTR,
					     "interrupted while waiting for other writes to this "
					     "order to finish; nothing was sent");
		if (deadline && now >= deadline)
			return dbx_error_set(
			    err, DBX_ETIMEDOUT,
			    "the order was busy with another write through this mount, and this "
			    "writer's turn did not come within the timeout (%llu ms); nothing "
			    "was sent",
			    (unsigned long long)timeout_ms);
		if (deadline && wake > deadline)
			wake = deadline;
		(void)dbx_clock_wait_until(a->clock, &w->cond, &a->lock, wake); /* checked above */
	}
	return DBX_OK;
}

enum dbx_err dbx_admit_enter(struct dbx_admit *a, const struct dbx_node *node, uint64_t timeout_ms,
			     int (*interrupted)(void *ctx), void *ictx,
			     struct dbx_admit_turn **turn, struct dbx_error *err)
{
	uint64_t deadline = timeout_ms ? dbx_clock_now_ms(a->clock) + timeout_ms : 0;
	struct waiter w = {0};
	struct dbx_admit_turn *t;
	char *key = order_key(node);
	bool added;
	enum dbx_err rc = DBX_OK;

	*turn = NULL;
	if (!key)
		return dbx_error_set(err, DBX_ENOMEM, "out of memory");
	pthread_mutex_lock(&a->lock);
	t = queue_of(a, key, &added);
	if (!t) {
		rc = dbx_error_set(err, DBX_ENOMEM, "out of memory");
		goto out;
	}
	t->users++;
	if (added)
		goto out; /* nobody holds it: the turn is this writer's */
	if (a->waiting >= DBX_ADMIT_WAIT_MAX) {
		rc = dbx_error_set(err, DBX_ETIMEDOUT,
				   "the order was busy with another write through this mount, and "
				   "%u writers already wait for their turn (the most the mount "
				   "keeps waiting); nothing was sent",
				   a->waiting);
		goto out;
	}
	if (dbx_clock_cond_init(&w.cond) != 0) {
		rc = dbx_error_set(err, DBX_ENOMEM, "cannot wait for the order's turn");
		goto out;
	}
	if (t->tail)
		t->tail->next = &w;
	else
		t->head = &w;
	t->tail = &w;
	a->waiting++;
	rc = wait_turn(a, &w, timeout_ms, deadline, interrupted, ictx, err);
	a->waiting--;
	if (!w.admitted)
		unlink_waiter(t, &w);
	pthread_cond_destroy(&w.cond);
out:
	if (rc == DBX_OK)
		*turn = t;
	else if (t)
		unuse(a, t);
	pthread_mutex_unlock(&a->lock);
	return rc;
}

void dbx_admit_leave(struct dbx_admit *a, struct dbx_admit_turn *turn)
{
	struct waiter *next;

	if (!turn)
		return;
	pthread_mutex_lock(&a->lock);
	next = turn->head;
	if (next) {
		/* Straight to the first waiter: nobody can take the turn in between. */
		turn->head = next->next;
		if (!turn->head)
			turn->tail = NULL;
		next->next = NULL;
		next->admitted = true;
		pthread_cond_signal(&next->cond);
	}
	unuse(a, turn);
	pthread_mutex_unlock(&a->lock);
}

unsigned dbx_admit_waiting(struct dbx_admit *a)
{
	unsigned n;

	pthread_mutex_lock(&a->lock);
	n = a->waiting;
	pthread_mutex_unlock(&a->lock);
	return n;
}
