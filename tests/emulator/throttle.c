/*
 * throttle.c: ARM's request throttling, enforced when the world asks for it.
 *
 * ARM keeps token buckets per principal and subscription: about 250 reads in
 * a burst, refilled at 25 a second (writes: 200, then 10), answers 429 with
 * Retry-After when one is empty, and says what is left in the
 * x-ms-ratelimit-remaining-subscription-reads / -writes headers. A world
 * with a top-level "throttle" object ({"reads": 250, "reads_per_s": 25,
 * "writes": 200, "writes_per_s": 10}, each optional with those defaults)
 * turns this on; without one nothing is throttled and main.c sends the
 * fixed, generous header values real ARM sent before the bucket model.
 * Runs under emu->lock like every handler.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "emu.h"

static double setting(struct json_object *t, const char *key, double dflt)
{
	struct json_object *v;

	if (!json_object_object_get_ex(t, key, &v))
		return dflt;
	if (!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double))
		return dflt;
	return json_object_get_double(v);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

bool dbx_emu_throttle(struct dbx_emu *e, struct dbx_emu_req *q, struct dbx_emu_reply *r,
		      const char *principal, const char *sub)
{
	struct json_object *t, *state, *slot;
	bool write = strcmp(q->method, "GET") != 0 && strcmp(q->method, "HEAD") != 0;
	double burst, rate, tokens, at, now = now_s();
	char key[512];

	if (!json_object_object_get_ex(e->world, "throttle", &t) ||
	    !json_object_is_type(t, json_type_object))
		return true;
	burst = setting(t, write ? "writes" : "reads", write ? 200 : 250);
	rate = setting(t, write ? "writes_per_s" : "reads_per_s", write ? 10 : 25);
	if (!e->throttle_state)
		e->throttle_state = json_object_new_object();
	state = e->throttle_state;
	snprintf(key, sizeof(key), "%s|%s|%s", principal ? principal : "", sub ? sub : "(tenant)",
		 write ? "w" : "r");
	for (char *p = key; *p; p++)
		*p = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
	if (json_object_object_get_ex(state, key, &slot)) {
		tokens = json_object_get_double(json_object_array_get_idx(slot, 0));
		at = json_object_get_double(json_object_array_get_idx(slot, 1));
		tokens = fmin(burst, tokens + (now - at) * rate);
	} else {
		slot = json_object_new_array();
		json_object_object_add(state, key, slot);
		tokens = burst;
	}
	r->ratelimit_set = true;
	if (tokens < 1) {
		int wait = (int)ceil((1 - tokens) / (rate > 0 ? rate : 1));

		json_object_array_put_idx(slot, 0, json_object_new_double(tokens));
		json_object_array_put_idx(slot, 1, json_object_new_double(now));
		dbx_emu_reply_error(
		    r, 429, "TooManyRequests",
		    "The request is being throttled as the limit has been reached for operation "
		    "type - %s. For more information, see - https://aka.ms/srpthrottlinglimits",
		    write ? "Write" : "Read");
		dbx_emu_reply_header(r, "Retry-After", "%d", wait < 1 ? 1 : wait);
		dbx_emu_reply_header(r,
				     write ? "x-ms-ratelimit-remaining-subscription-writes"
					   : "x-ms-ratelimit-remaining-subscription-reads",
				     "0");
		e->throttled++;
		return false;
	}
	tokens -= 1;
	json_object_array_put_idx(slot, 0, json_object_new_double(tokens));
	json_object_array_put_idx(slot, 1, json_object_new_double(now));
	dbx_emu_reply_header(r,
			     write ? "x-ms-ratelimit-remaining-subscription-writes"
				   : "x-ms-ratelimit-remaining-subscription-reads",
			     "%d", (int)floor(tokens));
	return true;
}
