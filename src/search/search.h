/*
 * search: one query across the modules (docs/search.md). Exact matches
 * of sealed fields come from their blind indexes (blind.h), words of
 * plain text fields from the full-text index (fulltext.h). Only modules
 * whose "<module>.view" the actor may (may(): roles held now, and a
 * token's scopes) are looked in, so a hit never names a row the caller
 * could not open.
 */
#ifndef BW_SEARCH_H
#define BW_SEARCH_H

#include <jansson.h>
#include <stdint.h>

#include "../core/core.h"
#include "../op/op.h"

#define SEARCH_Q_MAX 200        /* bytes of a query */
#define SEARCH_LIMIT_DEFAULT 25
#define SEARCH_LIMIT_MAX 100
#define SEARCH_EXACT_MAX 100    /* exact hits of one query, all modules together */
#define SEARCH_CURSOR_MAX 24    /* bytes of a cursor */

struct search_query {
	const char *q;       /* the text looked for (trimmed by the caller or not) */
	const char *modules; /* "contacts,tickets", or NULL for every module */
	long limit;          /* 1..SEARCH_LIMIT_MAX */
	const char *cursor;  /* a next_cursor from before, or NULL */
};

struct search_result {
	json_t *data; /* [{"module","id","label","match":"exact"|"text"}] */
	int64_t total;
	int has_more;
	const char *next_cursor; /* in op's pool; NULL on the last page */
};

/*
 * Run sq as op's actor into *res (res->data is a new reference the caller
 * owns). Exact hits first (catalogue order, then id), then text hits in
 * the order their rows were indexed; a row is listed once. A q that is
 * missing or blank finds nothing (BW_OK, no hits, total 0). BW_OK;
 * BW_ERR_INVALID (recorded) for a bad query, module list or cursor;
 * BW_ERR_UNAVAILABLE when permissions cannot be read; BW_ERR_CRYPTO when
 * a blind index key does not load; the database's errors.
 */
bw_err search_run(struct op *op, const struct search_query *sq,
		  struct search_result *res) BW_MUST_USE;

#endif
