/*
 * The module engine's lists and exports: GET /api/v1/<module> (a keyset
 * page, page.c: declared filters, ranges, updated_since and sorts only),
 * GET /api/v1/<module>/deleted (tombstones, from the audit log) and
 * GET /api/v1/<module>/export (JSON or CSV, bounded in rows and bytes,
 * itself an audited event).
 */
#include "engine.h"
#include "module_api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../audit/audit.h"
#include "../core/jsonw.h"

#define ENGINE_EXPORT_MAX 100000
#define ENGINE_EXPORT_BYTES ((size_t)64 * 1024 * 1024)
/* A page's reply: 100 rows of long texts fit; past it the page is refused, never cut. */
#define ENGINE_LIST_BYTES ((size_t)32 * 1024 * 1024)

/* One condition of a list's WHERE: a compiled-in column and operator, a bound value. */
struct engine_cond {
	const char *col, *op;
	int text;        /* bind s, else i */
	int64_t i;
	const char *s;
};

/* A list's query as parsed: conditions, order, page. */
struct engine_listq {
	struct http_query q;
	struct engine_cond c[HTTP_QUERY_MAX];
	size_t nc;
	struct page p;
	const char *format;
};

static const struct {
	const char *suffix, *op;
} engine_ranges[] = {{".gte", ">="}, {".gt", ">"}, {".lte", "<="}, {".lt", "<"}};

static bw_err
engine_bad_value(struct http_req *req, const char *k, const char *why)
{
	return response_error(req, BW_ERR_INVALID,
			      pool_printf(req->pool, "query parameter '%.64s': %s", k, why));
}

/* created_at or updated_at (their compiled-in names), or NULL. */
static const char *
engine_frame_time(const char *name, size_t n)
{
	if (n == 10 && strncmp(name, "created_at", 10) == 0)
		return "created_at";
	if (n == 10 && strncmp(name, "updated_at", 10) == 0)
		return "updated_at";
	return NULL;
}

/*
 * A range filter "<field>.gte=v" (.gt, .lte, .lt) into *c: FT_DATE, FT_MONEY
 * and FT_INT fields that are FF_FILTER or FF_SORT, and created_at /
 * updated_at (RFC 3339). 0: not a range parameter; 1: taken; -1: refused
 * (recorded).
 */
static int
engine_range(struct http_req *req, const struct module_desc *m, const char *k, const char *v,
	     struct engine_cond *c)
{
	const char *dot = strrchr(k, '.');
	size_t i;
	if (dot == NULL)
		return 0;
	for (i = 0; i < BW_ARRAY_LEN(engine_ranges); i++)
		if (strcmp(dot, engine_ranges[i].suffix) == 0)
			break;
	if (i == BW_ARRAY_LEN(engine_ranges))
		return 0;
	size_t n = (size_t)(dot - k);
	const char *ft = engine_frame_time(k, n);
	c->op = engine_ranges[i].op;
	if (ft != NULL) {
		c->col = ft;
		if (util_parse_rfc3339(v, &c->i) != BW_OK)
			return engine_bad_value(req, k, "an RFC 3339 time (2026-12-02T03:31:18Z)"), -1;
		return 1;
	}
	const struct field_desc *f = NULL;
	for (size_t j = 0; j < m->nfields; j++)
		if (strlen(m->fields[j].name) == n && strncmp(m->fields[j].name, k, n) == 0)
			f = &m->fields[j];
	if (f == NULL || !(f->flags & (FF_FILTER | FF_SORT)) ||
	    (f->type != FT_DATE && f->type != FT_MONEY && f->type != FT_INT))
		return engine_bad_value(req, k,
					"not a range filter (date, money and integer fields that "
					"filter or sort, created_at, updated_at)"),
		       -1;
	c->col = f->name;
	if (f->type == FT_DATE) {
		if (!engine_valid_date(v))
			return engine_bad_value(req, k, "a date (YYYY-MM-DD)"), -1;
		c->text = 1;
		c->s = v;
		return 1;
	}
	long x;
	if (util_parse_long(v, INT64_MIN + 1, INT64_MAX, &x) != BW_OK)
		return engine_bad_value(req, k, "an integer"), -1;
	c->i = x;
	return 1;
}

/* An equality filter k=v on a FF_FILTER field into *c; BW_ERR_INVALID (recorded). */
static bw_err
engine_equal(struct http_req *req, const struct module_desc *m, const char *k, const char *v,
	     struct engine_cond *c)
{
	const struct field_desc *f = module_field(m, k);
	if (f == NULL || !(f->flags & FF_FILTER))
		return response_error(req, BW_ERR_INVALID,
				      pool_printf(req->pool,
						  "unknown query parameter '%.64s' (not a filter of %s)", k,
						  m->name));
	int ok = 1;
	long n = 0;
	switch (f->type) {
	case FT_INT:
	case FT_MONEY:
	case FT_REF:
		ok = util_parse_long(v, INT64_MIN + 1, INT64_MAX, &n) == BW_OK;
		break;
	case FT_BOOL:
		ok = strcmp(v, "true") == 0 || strcmp(v, "false") == 0;
		n = strcmp(v, "true") == 0;
		break;
	case FT_ENUM:
		ok = engine_enum_ok(f, v);
		break;
	case FT_DATE:
		ok = engine_valid_date(v);
		break;
	default:
		ok = strlen(v) <= (size_t)f->max_len;
		break;
	}
	if (!ok)
		return response_error(req, BW_ERR_INVALID,
				      pool_printf(req->pool, "query parameter '%s' has a bad value", k));
	*c = (struct engine_cond){.col = f->name, .op = "="};
	if (f->type == FT_INT || f->type == FT_MONEY || f->type == FT_REF || f->type == FT_BOOL)
		c->i = n;
	else
		c->text = 1, c->s = v;
	return BW_OK;
}

/*
 * Parse the query of a list (or, export_all, of an export): declared
 * filters, ranges, updated_since and sorts only, limit and cursor for a
 * list, format for an export.
 */
static bw_err
engine_parse(struct http_req *req, const struct module_desc *m, int export_all,
	     struct engine_listq *lq)
{
	const char *sort = "id", *col = "id";
	int desc = 0;
	enum page_type type = PAGE_INT;
	lq->nc = 0;
	lq->format = "json";
	page_init(&lq->p);
	if (export_all)
		lq->p.limit = ENGINE_EXPORT_MAX;
	bw_err e = http_query_parse(req, &lq->q);
	if (e != BW_OK)
		return e;
	for (size_t i = 0; i < lq->q.n; i++) {
		const char *k = lq->q.key[i], *v = lq->q.val[i];
		struct engine_cond *c = &lq->c[lq->nc];
		int taken = 0, r;
		*c = (struct engine_cond){0};
		if (!export_all && (e = page_param(req, &lq->p, k, v, &taken)) != BW_OK)
			return e;
		if (taken)
			continue;
		if (export_all && strcmp(k, "format") == 0) {
			if (strcmp(v, "json") != 0 && strcmp(v, "csv") != 0)
				return response_error(req, BW_ERR_INVALID,
						      "query parameter 'format' must be json or csv");
			lq->format = v;
		} else if (strcmp(k, "sort") == 0) {
			const char *name = v[0] == '-' ? v + 1 : v;
			const struct field_desc *f = module_field(m, name);
			const char *ft = engine_frame_time(name, strlen(name));
			if (strcmp(name, "id") != 0 && ft == NULL && (f == NULL || !(f->flags & FF_SORT)))
				return response_error(
				    req, BW_ERR_INVALID,
				    pool_printf(req->pool, "query parameter 'sort': '%.64s' is not a "
							   "sortable field of %s",
						name, m->name));
			sort = v;
			col = f ? f->name : ft ? ft : "id";
			desc = v[0] == '-';
			type = f == NULL || f->type == FT_INT || f->type == FT_MONEY ||
					   f->type == FT_REF || f->type == FT_BOOL
				   ? PAGE_INT
				   : PAGE_TEXT;
		} else if (strcmp(k, "updated_since") == 0) {
			*c = (struct engine_cond){.col = "updated_at", .op = ">="};
			if (util_parse_rfc3339(v, &c->i) != BW_OK)
				return engine_bad_value(req, k, "an RFC 3339 time (2026-12-02T03:31:18Z)");
			lq->nc++;
		} else if ((r = engine_range(req, m, k, v, c)) != 0) {
			if (r < 0)
				return BW_ERR_INVALID;
			lq->nc++;
		} else {
			if ((e = engine_equal(req, m, k, v, c)) != BW_OK)
				return e;
			lq->nc++;
		}
	}
	return page_order(req, &lq->p, sort, col, desc, type);
}

/* " WHERE a = ? AND b >= ?" from the conditions (and the keyset's, when given); NULL on OOM. */
static char *
engine_where(struct http_req *req, const struct engine_listq *lq, const char *keyset)
{
	char *w = pool_strdup(req->pool, "");
	size_t k = 0;
	for (size_t i = 0; i < lq->nc && w != NULL; i++, k++)
		w = pool_printf(req->pool, "%s %s %s %s ?", w, k ? "AND" : "WHERE", lq->c[i].col,
				lq->c[i].op);
	if (w != NULL && keyset != NULL && keyset[0] != '\0')
		w = pool_printf(req->pool, "%s %s %s", w, k ? "AND" : "WHERE", keyset);
	return w;
}

static bw_err
engine_bind_conds(const struct engine_listq *lq, db_stmt *s, int *idx)
{
	bw_err e = BW_OK;
	for (size_t i = 0; i < lq->nc && e == BW_OK; i++)
		e = lq->c[i].text ? db_bind_text(s, (*idx)++, lq->c[i].s)
				  : db_bind_int(s, (*idx)++, lq->c[i].i);
	return e;
}

/* The number of columns in a select list (names only, comma-separated). */
static int
engine_ncols(const char *cols)
{
	int n = 1;
	for (; *cols; cols++)
		n += *cols == ',';
	return n;
}

/*
 * Build "SELECT <cols>, <sort> FROM m WHERE ... ORDER BY ... LIMIT ?" from
 * the parsed query (compiled-in names only) and bind it; *sort_col is the
 * column the sort value is read from.
 */
static bw_err
engine_query(struct http_req *req, db *d, const struct module_desc *m,
	     const struct engine_listq *lq, db_stmt **out, int *sort_col)
{
	const struct engine_mod *em = engine_mod_of(m);
	const char *keyset = page_cond(req, &lq->p), *order = page_order_sql(req, &lq->p);
	char *where = keyset && order ? engine_where(req, lq, keyset) : NULL;
	*out = NULL;
	*sort_col = 0;
	if (where == NULL)
		return BW_ERR_NOMEM;
	/* The sort value rides at the end, after whatever engine_row reads. */
	int by_id = strcmp(lq->p.col, "id") == 0;
	char *sql = pool_printf(req->pool, "SELECT %s%s%s FROM %s%s%s", em->select_cols,
				by_id ? "" : ", ", by_id ? "" : lq->p.col, m->name, where, order);
	if (sql == NULL)
		return BW_ERR_NOMEM;
	if (!by_id)
		*sort_col = engine_ncols(em->select_cols);
	db_stmt *s;
	/* Cached: the text varies only with the filters and sort named, a few shapes a list. */
	bw_err e = db_prepare_cached(d, sql, &s);
	if (e != BW_OK)
		return e;
	int idx = 1;
	if ((e = engine_bind_conds(lq, s, &idx)) == BW_OK && (e = page_bind(&lq->p, s, &idx)) == BW_OK)
		e = page_bind_limit(&lq->p, s, &idx);
	if (e != BW_OK) {
		db_done(s);
		return e;
	}
	*out = s;
	return BW_OK;
}

/* The list's total: one COUNT under the same filters (not the keyset). */
static bw_err
engine_count(struct http_req *req, db *d, const struct module_desc *m, struct engine_listq *lq)
{
	char *where = engine_where(req, lq, NULL);
	char *sql = where ? pool_printf(req->pool, "SELECT COUNT(*) FROM %s%s", m->name, where) : NULL;
	db_stmt *s;
	int row = 0, idx = 1;
	if (sql == NULL)
		return BW_ERR_NOMEM;
	bw_err e = db_prepare_cached(d, sql, &s);
	if (e != BW_OK)
		return e;
	if ((e = engine_bind_conds(lq, s, &idx)) == BW_OK && (e = db_step(s, &row)) == BW_OK)
		lq->p.total = row ? db_col_int(s, 0) : 0;
	db_done(s);
	return e;
}

/* About how many bytes a row takes (its text values and a little per field). */
static size_t
engine_row_bytes(json_t *row)
{
	const char *key;
	json_t *v;
	size_t n = 0;
	json_object_foreach(row, key, v) n += 24 + (json_is_string(v) ? json_string_length(v) : 0);
	return n;
}

/*
 * Run the list query of this request and collect up to a page of rows
 * (export: all, up to ENGINE_EXPORT_MAX) into *data; lq->p.more when a
 * further row exists.
 */
static bw_err
engine_collect(struct http_req *req, int export_all, struct engine_listq *lq, json_t **data)
{
	const struct module_desc *m = req->route->data;
	db *d;
	db_stmt *s;
	int row, sort_col;
	*data = NULL;
	bw_err e = http_req_db(req, &d);
	if (e != BW_OK)
		return e;
	if ((e = engine_parse(req, m, export_all, lq)) != BW_OK)
		return e;
	if ((e = engine_query(req, d, m, lq, &s, &sort_col)) != BW_OK)
		return e;
	json_t *a = json_array();
	size_t bytes = 0;
	while (a != NULL && (e = db_step(s, &row)) == BW_OK && row) {
		if (page_full(&lq->p))
			break;
		json_t *o;
		if ((e = engine_row(&req->op, m, s, 0, &o)) != BW_OK)
			break;
		json_array_append_new(a, o);
		if ((e = page_seen(req, &lq->p, s, sort_col, 0)) != BW_OK)
			break;
		/* An export is bounded in bytes too, not only in rows (long texts). */
		if (export_all && (bytes += engine_row_bytes(o)) > ENGINE_EXPORT_BYTES) {
			db_done(s);
			json_decref(a);
			return response_error(req, BW_ERR_TOO_LARGE,
					      pool_printf(req->pool, "the export is over %zu MiB: narrow it with filters",
						  ENGINE_EXPORT_BYTES >> 20));
		}
	}
	db_done(s);
	if (e == BW_OK && a != NULL && !export_all)
		e = engine_count(req, d, m, lq);
	if (e != BW_OK || a == NULL) {
		json_decref(a);
		return e != BW_OK ? e : BW_ERR_NOMEM;
	}
	*data = a;
	return BW_OK;
}

/*
 * A page of rows written as JSON straight into the reply (rowjson.c): no
 * tree of objects per row, sealed fields opened into the buffer.
 */
static bw_err
engine_list_rows(struct http_req *req, struct engine_listq *lq, struct jsonw *w)
{
	const struct module_desc *m = req->route->data;
	db *d;
	db_stmt *s;
	int row, sort_col;
	bw_err e = http_req_db(req, &d);
	if (e != BW_OK)
		return e;
	if ((e = engine_parse(req, m, 0, lq)) != BW_OK)
		return e;
	if ((e = engine_query(req, d, m, lq, &s, &sort_col)) != BW_OK)
		return e;
	while ((e = db_step(s, &row)) == BW_OK && row) {
		if (page_full(&lq->p))
			break;
		if ((e = engine_row_jsonw(&req->op, m, s, w)) != BW_OK)
			break;
		if ((e = page_seen(req, &lq->p, s, sort_col, 0)) != BW_OK)
			break;
	}
	db_done(s);
	return e == BW_OK ? engine_count(req, d, m, lq) : e;
}

bw_err
engine_list(struct http_req *req)
{
	struct engine_listq *lq = pool_alloc(req->pool, sizeof(*lq));
	struct buf b;
	struct jsonw w;
	if (lq == NULL)
		return BW_ERR_NOMEM;
	buf_init(&b, ENGINE_LIST_BYTES);
	jsonw_init(&w, &b);
	jsonw_object_open(&w);
	jsonw_key(&w, "data");
	jsonw_array_open(&w);
	bw_err e = engine_list_rows(req, lq, &w);
	if (e == BW_OK)
		e = jsonw_error(&w);
	/* The writer ran out of room (the page's bytes are bounded): the page is refused, never cut. */
	if (e == BW_ERR_NOMEM && jsonw_error(&w) == BW_ERR_NOMEM)
		e = response_error(req, BW_ERR_TOO_LARGE, "the page is too large: ask for fewer rows");
	if (e != BW_OK) {
		buf_free(&b);
		return e;
	}
	jsonw_array_close(&w);
	return page_reply_jsonw(req, &lq->p, &lq->q, &w, &b);
}

/*
 * GET /api/v1/<module>/deleted?since=&limit=&cursor=: the rows deleted
 * (since a time), from the audit log's plaintext columns, oldest first, so
 * that a client syncing with updated_since sees deletes too. Keyset over
 * the audit row's id (its seq: commit order), so rows deleted while a
 * client pages through appear on a later page, never on none.
 */
bw_err
engine_deleted(struct http_req *req)
{
	const struct module_desc *m = req->route->data;
	static const char base[] = " FROM audit_log WHERE entity = ? AND action = 'delete'";
	struct http_query q;
	struct page p;
	int64_t since = 0;
	int have_since = 0, row, idx = 1;
	db *d;
	db_stmt *s;
	page_init(&p);
	bw_err e = http_query_parse(req, &q);
	for (size_t i = 0; e == BW_OK && i < q.n; i++) {
		int taken;
		if ((e = page_param(req, &p, q.key[i], q.val[i], &taken)) != BW_OK || taken)
			continue;
		if (strcmp(q.key[i], "since") != 0)
			return engine_bad_value(req, q.key[i], "unknown parameter (since, limit, cursor)");
		if (util_parse_rfc3339(q.val[i], &since) != BW_OK)
			return engine_bad_value(req, q.key[i], "an RFC 3339 time (2026-12-02T03:31:18Z)");
		have_since = 1;
	}
	if (e != BW_OK || (e = page_order(req, &p, "id", "id", 0, PAGE_INT)) != BW_OK ||
	    (e = http_req_db(req, &d)) != BW_OK)
		return e;
	const char *keyset = page_cond(req, &p), *order = page_order_sql(req, &p);
	char *sql = keyset && order ? pool_printf(req->pool, "SELECT id, entity_id, at%s%s%s%s%s",
						   base, have_since ? " AND at >= ?" : "",
						   keyset[0] ? " AND " : "", keyset, order)
				    : NULL;
	if (sql == NULL)
		return BW_ERR_NOMEM;
	if ((e = db_prepare(d, sql, &s)) != BW_OK)
		return e;
	json_t *data = json_array();
	if ((e = db_bind_text(s, idx++, m->name)) == BW_OK && have_since)
		e = db_bind_int(s, idx++, since);
	if (e == BW_OK && (e = page_bind(&p, s, &idx)) == BW_OK)
		e = page_bind_limit(&p, s, &idx);
	while (e == BW_OK && data != NULL && (e = db_step(s, &row)) == BW_OK && row) {
		if (page_full(&p))
			break;
		char at[UTIL_TIME_LEN];
		json_array_append_new(data, json_pack("{s:I, s:s}", "id", (json_int_t)db_col_int(s, 1),
						      "deleted_at",
						      util_time_rfc3339(db_col_int(s, 2), at)));
		page_seen_key(&p, db_col_int(s, 0), db_col_int(s, 0));
	}
	db_finalize(s);
	if (e == BW_OK && data != NULL) {
		sql = pool_printf(req->pool, "SELECT COUNT(*)%s%s", base,
				  have_since ? " AND at >= ?" : "");
		e = sql == NULL ? BW_ERR_NOMEM
		    : have_since ? DB_QUERY_INT(d, &p.total, sql, DB_TEXT(m->name), DB_INT(since))
				 : DB_QUERY_INT(d, &p.total, sql, DB_TEXT(m->name));
	}
	if (e != BW_OK || data == NULL) {
		json_decref(data);
		return e != BW_OK ? e : BW_ERR_NOMEM;
	}
	return page_reply(req, &p, &q, data);
}

/* The audit row of an export, in its own transaction (an export changes nothing else). */
struct engine_export_audit {
	const struct module_desc *m;
	const char *format;
	long n;
	const char *query;
};

static bw_err
engine_audit_export_tx(struct op *op, void *arg)
{
	const struct engine_export_audit *ea = arg;
	json_t *after = json_pack("{s:s, s:I, s:s?}", "format", ea->format, "rows",
				  (json_int_t)ea->n, "query", ea->query);
	bw_err e = after ? audit_op(op, ea->m->name, 0, "export", NULL, after) : BW_ERR_NOMEM;
	json_decref(after);
	return e;
}

bw_err
engine_export(struct http_req *req)
{
	const struct module_desc *m = req->route->data;
	json_t *data;
	long n;
	struct engine_listq *lq = pool_alloc(req->pool, sizeof(*lq));
	if (lq == NULL)
		return BW_ERR_NOMEM;
	bw_err e = engine_collect(req, 1, lq, &data);
	if (e != BW_OK)
		return e;
	const char *format = lq->format;
	if (lq->p.more) {
		json_decref(data);
		return response_error(req, BW_ERR_TOO_LARGE,
				      pool_printf(req->pool, "more than %d rows: narrow the export with filters",
					  ENGINE_EXPORT_MAX));
	}
	n = (long)json_array_size(data);
	/* Records leaving in bulk are an event of their own: who, what, how many. */
	struct engine_export_audit ea = {m, format, n, req->query};
	if ((e = op_tx(&req->op, engine_audit_export_tx, &ea)) != BW_OK) {
		json_decref(data);
		return e;
	}
	if (strcmp(format, "json") == 0)
		return response_json(req, 200, json_pack("{s:o, s:i}", "data", data, "count", (int)n));

	struct csv c = {0};
	json_t *cols = engine_columns(m), *col, *r;
	size_t i, j;
	json_array_foreach(cols, j, col) csv_cell(&c, col, j == 0);
	csv_end_line(&c);
	json_array_foreach(data, i, r)
	{
		json_array_foreach(cols, j, col)
		    csv_cell(&c, json_object_get(r, json_string_value(col)), j == 0);
		csv_end_line(&c);
	}
	json_decref(cols);
	json_decref(data);
	if (c.failed) {
		free(c.b);
		return response_error(req, BW_ERR_TOO_LARGE, "the export is too large");
	}
	char *disp = pool_printf(req->pool, "attachment; filename=\"%s.csv\"", m->name);
	return response_raw(req, 200, "text/csv; charset=utf-8", disp, c.b, c.len);
}
