/*
 * ssem.h: the Data Box customer-managed-key error table, as data, and its
 * lookup.
 *
 * Every row of the "Troubleshoot errors" table of the source document
 * (docs/ssem-table.md) is one struct dbx_ssem_row, its text kept verbatim.
 * How a row reads in the errors file (remedy as plain text, the block
 * format) is errors.h's part.
 */
#ifndef DATABOXFS_SSEM_H
#define DATABOXFS_SSEM_H

#include <stddef.h>

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

#endif
