/*
 * ssem.h: the Data Box customer-managed-key error table, as data.
 *
 * Every row of the "Troubleshoot errors" table of the source document
 * (docs/ssem-table.md) is one struct
 * dbx_ssem_row, its text kept verbatim; dbx_ssem_remedy() turns the
 * table's markdown/HTML into plain text for the errors file. The errors-file
 * block format (docs/formats.md, "The errors file") is rendered here too, so every producer of
 * error blocks writes the same format.
 */
#ifndef DATABOXFS_SSEM_H
#define DATABOXFS_SSEM_H

#include <stddef.h>

#include "databoxfs/err.h"

enum dbx_recoverable {
	DBX_RECOVERABLE_YES,
	DBX_RECOVERABLE_NO,
	DBX_RECOVERABLE_DEPENDS,
};

struct dbx_ssem_row {
	const char
	    *code; /* "SsemUserErrorEncryptionKeyDisabled"; "Generic error" for the last row */
	const char *details;	/* the table's "Error details", verbatim */
	const char *resolution; /* the table's "Recoverable?" cell, verbatim (markdown and HTML) */
	enum dbx_recoverable recoverable;
};

extern const struct dbx_ssem_row dbx_ssem_table[];
extern const size_t dbx_ssem_table_len;

/* The first row for code (exact, case-sensitive), or NULL when the table does not know it. */
const struct dbx_ssem_row *dbx_ssem_lookup(const char *code);

/* The "Generic error" row. */
const struct dbx_ssem_row *dbx_ssem_generic(void);

/* "yes", "no" or "depends". */
const char *dbx_recoverable_str(enum dbx_recoverable r);

/*
 * The row's resolution as plain text: markdown links become their text,
 * backticks vanish, <ol><li> become numbered steps "1. ...", <br> a line
 * break; lines are joined with "\n". Caller frees; NULL on ENOMEM.
 */
char *dbx_ssem_remedy(const struct dbx_ssem_row *row);

/* One block of the errors file. NULL fields are left out. */
struct dbx_error_block {
	const char *code;    /* required */
	const char *source;  /* "order", "last-write", "read" */
	const char *time;    /* ISO 8601 UTC */
	const char *message; /* the service's text; NULL: the table's details */
	const char *target;  /* where the service said the error is, or NULL */
	const char *request_id;
	/*
	 * For blocks that are not service codes (e.g. a failed read: "source:
	 * read", code "HostUnreachable"), the producer's own advice. NULL:
	 * decode code through the table.
	 */
	const char *recoverable;
	const char *remedy;
};

/*
 * Append block to the growing text *buf (length *len, malloc'd; *buf may
 * start NULL), separated from earlier blocks by one blank line. Decodes
 * code through the table (unknown codes get the Generic row's recoverable
 * and remedy), so the block always has code, source, time, message,
 * recoverable, remedy, and request_id when known. Multi-line remedies
 * indent continuation lines by two spaces.
 */
DBX_MUST_CHECK enum dbx_err dbx_error_block_append(char **buf, size_t *len,
						   const struct dbx_error_block *block);

#endif
