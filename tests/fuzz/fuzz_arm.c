/*
 * fuzz_arm.c: libFuzzer target over what ARM answers to the job calls of
 * arm.h: list pages (body and nextLink), a job GET, and a PATCH with its
 * long-running operation (status, Location, Retry-After, body of each
 * poll), through the retry layer over the scripted transport of
 * fuzz_script.h, on a fake clock.
 *
 * The first line of an input names the call: "subs" (list subscriptions),
 * "jobs" (jobs of a subscription), "rg" (of a resource group), "get",
 * "until" (get with a deadline), "patch", or "error"
 * (dbx_arm_error_from_response on the first answer alone); anything else
 * picks one by its first byte. The rest is the script of answers.
 *
 * Beyond "no crash, no sanitizer report, no leak" it checks what the mount
 * relies on, and aborts when one breaks: every request goes to https on
 * the cloud's ARM host (a nextLink or Location elsewhere is never
 * followed); no request is sent past its deadline and no call returns
 * after it; a failure carries a one-line message; a job handed over or
 * returned is one of the order asked for; an accepted PATCH was sent.
 * And what a user reads: the errors file of each order read (its
 * problems) and of each failure (as "read" or "last-write" block) has the
 * shape of docs/formats.md, "The errors file": blocks of known keys in
 * order, the required ones present, continuation lines only in a remedy,
 * one blank line between blocks, no CR: no answer can forge a line.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "databoxfs/arm.h"
#include "databoxfs/errors.h"
#include "fuzz_script.h"

#define TARGET "fuzz_arm"
#define SUB    "00000000-1111-2222-3333-444444444444"
#define RG     "rg"
#define JOB    "job1"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const ops[] = {"subs", "jobs", "rg", "get", "until", "patch", "error"};

static bool arm_url_ok(void *ctx, const char *url)
{
	return dbx_arm_url_is_arm(ctx, url);
}

static const char *const block_keys[] = {"code",   "source",	  "time",   "message",
					 "target", "recoverable", "remedy", "request_id"};

/* The shape of one block, lines [p, end). */
static void check_block(const char *p, const char *end)
{
	int last = -1;
	unsigned seen = 0;

	fuzz_must(p < end, TARGET, "errors: no empty block");
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		int key = -1;

		if (n >= 2 && p[0] == ' ' && p[1] == ' ') {
			fuzz_must(last == 6, TARGET, "errors: continuation lines only in a remedy");
		} else {
			for (int k = 0; k < 8; k++) {
				size_t kl = strlen(block_keys[k]);

				if (n >= kl + 2 && strncmp(p, block_keys[k], kl) == 0 &&
				    p[kl] == ':' && p[kl + 1] == ' ')
					key = k;
			}
			fuzz_must(key > last, TARGET, "errors: known keys, in order, once");
			last = key;
			seen |= 1u << key;
		}
		p += n + 1;
	}
	fuzz_must((seen & 0x69) == 0x69, TARGET,
		  "errors: code, message, recoverable and remedy in every block");
}

/* Render the errors file of in and check its shape. */
static void check_errors_file(const struct dbx_errors_input *in)
{
	char *buf = NULL;
	size_t len = 0;
	const char *p, *end;

	if (dbx_errors_render(in, &buf, &len) != DBX_OK)
		abort();
	fuzz_must(strlen(buf) == len, TARGET, "errors: the length is the text's");
	fuzz_must(memchr(buf, '\r', len) == NULL, TARGET, "errors: no CR");
	fuzz_must(len == 0 || (buf[len - 1] == '\n' && buf[0] != '\n'), TARGET,
		  "errors: lines end with LF, no blank line first");
	for (p = buf, end = buf + len; p < end;) {
		const char *sep = memmem(p, (size_t)(end - p), "\n\n", 2);
		const char *stop = sep ? sep + 1 : end;

		check_block(p, stop);
		p = sep ? sep + 2 : end;
		fuzz_must(p >= end || *p != '\n', TARGET, "errors: one blank line between blocks");
	}
	free(buf);
}

static void check_order_errors(const struct dbx_order *o)
{
	struct dbx_errors_input in = {0};

	in.problems = o->problems;
	in.n_problems = o->n_problems;
	in.order_time = o->last_modified;
	check_errors_file(&in);
}

static int on_sub(void *ctx, const char *id)
{
	fuzz_must(id && *id, TARGET, "a subscription ID is not empty");
	return ++*(int *)ctx > 1000;
}

struct jobs_ctx {
	const char *rg; /* NULL: any */
	int n;
};

static int on_job(void *ctx, struct dbx_order *o)
{
	struct jobs_ctx *c = ctx;

	fuzz_must(o != NULL, TARGET, "a listed order is not NULL");
	fuzz_must(strcasecmp(o->subscription, SUB) == 0, TARGET,
		  "a listed order is in the subscription listed");
	if (c->rg)
		fuzz_must(strcasecmp(o->resource_group, c->rg) == 0, TARGET,
			  "a listed order is in the resource group listed");
	(void)strlen(dbx_order_identity(o));
	check_order_errors(o);
	dbx_order_free(o);
	return ++c->n > 1000;
}

static void check_job(const struct dbx_order *o)
{
	fuzz_must(o != NULL, TARGET, "a job read is not NULL");
	fuzz_must(strcasecmp(o->subscription, SUB) == 0 && strcasecmp(o->resource_group, RG) == 0 &&
		      strcasecmp(o->name, JOB) == 0,
		  TARGET, "the job read is the job asked for");
	(void)strlen(dbx_order_identity(o));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char patch_body[] =
	    "{\"properties\":{\"details\":{\"jobDetailsType\":\"DataBox\",\"keyEncryptionKey\":"
	    "{\"kekType\":\"MicrosoftManaged\"}}}}";
	const struct dbx_cloud *cloud = dbx_cloud_default();
	struct dbx_retry_policy policy = {4, 800, 60000};
	struct fake_clock fc;
	struct fuzz_script script;
	struct dbx_transport *retry;
	struct dbx_arm *arm;
	struct dbx_order *o = NULL;
	struct dbx_error e;
	const uint8_t *rest;
	size_t rest_len, op;
	uint64_t start, deadline;
	enum dbx_err rc = DBX_OK;
	bool sent = false, accepted = false;
	char name[16];
	int n = 0;
	struct jobs_ctx jc = {NULL, 0};

	fuzz_split_op(data, size, name, sizeof(name), &rest, &rest_len);
	op = fuzz_pick_op(ops, sizeof(ops) / sizeof(ops[0]), name, data, size);
	fake_clock_init(&fc, 1000000);
	fuzz_script_init(&script, rest, rest_len, &fc.clock);
	script.url_ok = arm_url_ok;
	script.url_ctx = (void *)cloud;
	memset(&e, 0, sizeof(e));

	if (op == 6) {
		struct dbx_http_response resp = {0};
		const struct fuzz_answer *a = &script.answers[0];

		resp.status = a->status;
		resp.body = a->body;
		resp.body_len = a->body_len;
		resp.request_id = a->request_id;
		rc = dbx_arm_error_from_response(&resp, &e);
		fuzz_must(rc != DBX_OK, TARGET, "an error envelope is an error");
		fuzz_must(e.err == rc, TARGET, "err->err is the result");
		fuzz_must(e.http_status == a->status, TARGET, "err->http_status is the status");
		fuzz_check_error(&e, TARGET);
		fuzz_script_fini(&script);
		return 0;
	}

	retry = dbx_http_retry_new(&script.base, &policy, &fc.clock);
	arm = dbx_arm_new(retry, cloud, NULL, 120000, &fc.clock);
	if (!retry || !arm)
		abort();
	start = dbx_clock_now_ms(&fc.clock);
	deadline = start + 120000;
	switch (op) {
	case 0:
		rc = dbx_arm_list_subscriptions(arm, on_sub, &n, &e);
		break;
	case 1:
		rc = dbx_arm_list_jobs(arm, SUB, NULL, on_job, &jc, &e);
		break;
	case 2:
		jc.rg = RG;
		rc = dbx_arm_list_jobs(arm, SUB, RG, on_job, &jc, &e);
		break;
	case 3:
		rc = dbx_arm_get_job(arm, SUB, RG, JOB, &o, &e);
		break;
	case 4:
		deadline = start + 30000;
		rc = dbx_arm_get_job_until(arm, SUB, RG, JOB, deadline, &o, &e);
		break;
	default:
		deadline = start + 60000;
		rc = dbx_arm_patch_job_ex(arm, SUB, RG, JOB, patch_body, 10000, deadline, &sent,
					  &accepted, &o, &e);
		fuzz_must(!accepted || sent, TARGET, "an accepted PATCH was sent");
		fuzz_must(rc != DBX_OK || (sent && accepted), TARGET,
			  "a PATCH that succeeded was sent and accepted");
		break;
	}
	fuzz_must(dbx_clock_now_ms(&fc.clock) <= deadline, TARGET,
		  "no call returns past its deadline");
	if (rc == DBX_OK) {
		if (op >= 3) {
			check_job(o);
			check_order_errors(o);
		}
	} else {
		struct dbx_errors_input in = {0};

		fuzz_must(o == NULL, TARGET, "a failed call returns no job");
		fuzz_must(e.err == rc, TARGET, "err->err is the result");
		fuzz_check_error(&e, TARGET);
		if (op == 5) {
			in.write_err = &e;
			in.write_time = FAKE_WALL0;
			in.write_target = "key_url";
		} else {
			in.read_err = &e;
			in.read_time = FAKE_WALL0;
		}
		check_errors_file(&in);
	}
	dbx_order_free(o);
	dbx_arm_free(arm);
	dbx_transport_destroy(retry);
	fuzz_script_fini(&script);
	return 0;
}
