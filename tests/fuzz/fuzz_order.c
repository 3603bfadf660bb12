/*
 * fuzz_order.c: libFuzzer target over the job JSON reader (order.h):
 * dbx_order_parse on the raw bytes, and the small parsers it relies on
 * (dbx_arm_id_parse, dbx_parse_time) on a NUL-terminated copy. A parsed
 * order must be freeable and its shown identity readable; a rejection must
 * carry a one-line message. Built with clang as a libFuzzer binary, or with
 * any compiler together with replay_main.c over the checked-in corpus.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "databoxfs/order.h"
#include "databoxfs/timestamp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void must(int cond, const char *what)
{
	if (!cond) {
		fprintf(stderr, "fuzz_order: property broken: %s\n", what);
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 1);
	struct dbx_order *o = NULL;
	struct dbx_error e;
	char *sub = NULL, *rg = NULL, *type = NULL, *name = NULL;
	const char *ident;

	if (!buf)
		return 0;
	if (size)
		memcpy(buf, data, size);
	memset(&e, 0, sizeof(e));
	if (dbx_order_parse(buf, size, &o, &e) == DBX_OK) {
		must(o != NULL, "parsed order is not NULL");
		ident = dbx_order_identity(o);
		must(ident != NULL, "identity is not NULL");
		(void)strlen(ident);
		dbx_order_free(o);
	} else {
		must(e.message[0] != '\0', "rejection has a message");
		for (const char *p = e.message; *p; p++)
			must(*p != '\n' && *p != '\r', "message is one line");
	}

	buf[size] = '\0';
	if (dbx_arm_id_parse(buf, &sub, &rg, &type, &name) == DBX_OK)
		must(sub && rg && type && name, "parsed ID fills every part");
	free(sub);
	free(rg);
	free(type);
	free(name);
	(void)dbx_parse_time(buf);
	free(buf);
	return 0;
}
