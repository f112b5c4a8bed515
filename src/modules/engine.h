/*
 * Internal to src/modules: what the engine's files share. validate.c
 * checks input against descriptors, rows.c reads and writes rows and runs
 * the operations of module.h, list_api.c and module_api.c are its HTTP
 * side.
 */
#ifndef BW_MODULE_ENGINE_H
#define BW_MODULE_ENGINE_H

#include "module.h"

#define ENGINE_MONEY_MAX 10000000000000LL /* 10^13 cents */

/* Per module, built once: the SQL that does not depend on input. */
struct engine_mod {
	const struct module_desc *m;
	char *select_cols; /* "id, version, a, b, ..., created_at, updated_at, created_by, updated_by" */
	char *sql_read;    /* SELECT <cols> FROM m WHERE id = ? */
	char *sql_lock;    /* UPDATE m SET id = id WHERE id = ?: row lock and existence */
	char *sql_delete;
	char *sql_exists; /* SELECT 1 FROM m WHERE id = ?: references to m are checked with it */
};

/* rows.c */
/* m's SQL (built once for the whole catalogue; aborts on OOM at start-up). */
const struct engine_mod *engine_mod_of(const struct module_desc *m);
/* A string that lives as long as the process (route patterns, permissions, SQL); NULL on OOM. */
char *engine_strf(const char *fmt, ...) BW_PRINTF(1, 2);
/*
 * The current row of s (selected with select_cols) as JSON. secrets: keep
 * write-only values (for hooks); otherwise they show as <name>_set.
 */
bw_err engine_row(struct op *op, const struct module_desc *m, db_stmt *s, int secrets,
		  json_t **out) BW_MUST_USE;
/*
 * rowjson.c: the current row of s (selected with select_cols) appended to
 * b as one JSON object, exactly the object engine_row(op, m, s, 0, ...)
 * makes, with created_at/updated_at as RFC 3339 strings; no tree, no
 * allocation per field. BW_ERR_NOMEM at b's maximum, BW_ERR_CRYPTO when a
 * sealed field does not open (logged), BW_ERR_INVALID for a time that has
 * no RFC 3339 form; on failure b holds part of a row: discard the reply.
 * engine_row_jsonw is the same as a value of a writer (an element of the
 * envelope's "data" array); it returns w's error.
 */
struct jsonw;
bw_err engine_row_write(struct op *op, const struct module_desc *m, db_stmt *s,
			struct buf *b) BW_MUST_USE;
bw_err engine_row_jsonw(struct op *op, const struct module_desc *m, db_stmt *s,
			struct jsonw *w) BW_MUST_USE;
/* The visible column names of m, in order (for exports). */
json_t *engine_columns(const struct module_desc *m);

/* validate.c */
int engine_valid_date(const char *s);
int engine_enum_ok(const struct field_desc *f, const char *v);
/*
 * Validate a create or update body into *out: unknown, server-set and (on
 * update) immutable fields refused, every value checked (references: the
 * row exists and the actor may see such rows), defaults filled in on
 * create, required fields present. BW_OK or BW_ERR_INVALID / DENIED (recorded).
 */
bw_err engine_validate(struct op *op, db *d, const struct module_desc *m, json_t *in, int create,
		       json_t **out) BW_MUST_USE;
/* References scoped to a parent refer to rows of the same parent (BW_ERR_INVALID, recorded). */
bw_err engine_check_same(struct op *op, db *d, const struct module_desc *m, json_t *input,
			 json_t *before) BW_MUST_USE;

#endif
