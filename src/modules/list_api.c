/*
 * The module engine's lists and exports: GET /api/v1/<module> (a page,
 * declared filters and sorts only) and GET /api/v1/<module>/export (JSON
 * or CSV, bounded in rows and bytes, itself an audited event).
 */
#include "engine.h"
#include "module_api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../audit/audit.h"

#define ENGINE_PAGE_DEFAULT 25
#define ENGINE_PAGE_MAX 100
#define ENGINE_EXPORT_MAX 100000
#define ENGINE_EXPORT_BYTES ((size_t)64 * 1024 * 1024)

/*
 * Build "SELECT ... WHERE ... ORDER BY ..." from the query (declared filters
 * and sorts only) and bind it. page and per_page are filled for lists; an
 * export asks for everything up to ENGINE_EXPORT_MAX.
 */
static bw_err
engine_query(struct http_req *req, db *d, const struct module_desc *m, int export_all,
	     db_stmt **out, long *page, long *per_page, const char **format)
{
	const struct engine_mod *em = engine_mod_of(m);
	struct http_query q;
	const struct field_desc *filt[HTTP_QUERY_MAX];
	const char *fval[HTTP_QUERY_MAX];
	size_t nf = 0;
	const char *sort = "id", *dir = "ASC";
	*out = NULL;
	*page = 1;
	*per_page = export_all ? ENGINE_EXPORT_MAX : ENGINE_PAGE_DEFAULT;
	*format = "json";
	bw_err e = http_query_parse(req, &q);
	if (e != BW_OK)
		return e;
	for (size_t i = 0; i < q.n; i++) {
		const char *k = q.key[i], *v = q.val[i];
		if (!export_all && strcmp(k, "page") == 0) {
			if (util_parse_long(v, 1, 1000000, page) != BW_OK)
				return response_error(req, BW_ERR_INVALID,
						      "query parameter 'page' must be 1 or more");
		} else if (!export_all && strcmp(k, "per_page") == 0) {
			if (util_parse_long(v, 1, ENGINE_PAGE_MAX, per_page) != BW_OK)
				return response_error(
				    req, BW_ERR_INVALID,
				    pool_printf(req->pool,
						"query parameter 'per_page' must be 1 to %d",
						ENGINE_PAGE_MAX));
		} else if (export_all && strcmp(k, "format") == 0) {
			if (strcmp(v, "json") != 0 && strcmp(v, "csv") != 0)
				return response_error(req, BW_ERR_INVALID,
						      "query parameter 'format' must be json or csv");
			*format = v;
		} else if (strcmp(k, "sort") == 0) {
			const char *name = v[0] == '-' ? v + 1 : v;
			const struct field_desc *f = module_field(m, name);
			if (strcmp(name, "id") != 0 && strcmp(name, "created_at") != 0 &&
			    strcmp(name, "updated_at") != 0 && (f == NULL || !(f->flags & FF_SORT)))
				return response_error(
				    req, BW_ERR_INVALID,
				    pool_printf(req->pool, "query parameter 'sort': '%.64s' is not a "
							   "sortable field of %s",
						name, m->name));
			sort = f ? f->name : (strcmp(name, "id") == 0 ? "id"
					      : strcmp(name, "created_at") == 0 ? "created_at"
										 : "updated_at");
			dir = v[0] == '-' ? "DESC" : "ASC";
		} else {
			const struct field_desc *f = module_field(m, k);
			if (f == NULL || !(f->flags & FF_FILTER))
				return response_error(
				    req, BW_ERR_INVALID,
				    pool_printf(req->pool,
						"unknown query parameter '%.64s' (not a filter of %s)", k,
						m->name));
			int ok = 1;
			long n;
			switch (f->type) {
			case FT_INT:
			case FT_MONEY:
			case FT_REF:
				ok = util_parse_long(v, INT64_MIN + 1, INT64_MAX, &n) == BW_OK;
				break;
			case FT_BOOL:
				ok = strcmp(v, "true") == 0 || strcmp(v, "false") == 0;
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
				return response_error(
				    req, BW_ERR_INVALID,
				    pool_printf(req->pool, "query parameter '%s' has a bad value", k));
			filt[nf] = f;
			fval[nf++] = v;
		}
	}
	char *sql = pool_printf(req->pool, "SELECT %s FROM %s", em->select_cols, m->name);
	for (size_t i = 0; i < nf && sql != NULL; i++)
		sql = pool_printf(req->pool, "%s %s %s = ?", sql, i ? "AND" : "WHERE", filt[i]->name);
	if (sql != NULL)
		sql = pool_printf(req->pool, "%s ORDER BY %s %s%s LIMIT ? OFFSET ?", sql, sort, dir,
				  strcmp(sort, "id") ? ", id ASC" : "");
	if (sql == NULL)
		return BW_ERR_NOMEM;
	db_stmt *s;
	if ((e = db_prepare(d, sql, &s)) != BW_OK)
		return e;
	int idx = 1;
	for (size_t i = 0; i < nf && e == BW_OK; i++, idx++) {
		switch (filt[i]->type) {
		case FT_INT:
		case FT_MONEY:
		case FT_REF:
			e = db_bind_int(s, idx, strtoll(fval[i], NULL, 10));
			break;
		case FT_BOOL:
			e = db_bind_int(s, idx, strcmp(fval[i], "true") == 0);
			break;
		default:
			e = db_bind_text(s, idx, fval[i]);
			break;
		}
	}
	/* One row beyond the page says whether there is a next one. */
	if (e == BW_OK && (e = db_bind_int(s, idx, *per_page + 1)) == BW_OK)
		e = db_bind_int(s, idx + 1, (*page - 1) * *per_page);
	if (e != BW_OK) {
		db_finalize(s);
		return e;
	}
	*out = s;
	return BW_OK;
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
 * Run the list query of this request and collect up to per_page rows
 * (export: all, up to ENGINE_EXPORT_MAX) into *data; *more when a further
 * row exists.
 */
static bw_err
engine_collect(struct http_req *req, int export_all, json_t **data, long *page, long *per_page,
	       const char **format, int *more)
{
	const struct module_desc *m = req->route->data;
	db *d;
	db_stmt *s;
	int row;
	long n = 0;
	*data = NULL;
	*more = 0;
	bw_err e = http_req_db(req, &d);
	if (e != BW_OK)
		return e;
	if ((e = engine_query(req, d, m, export_all, &s, page, per_page, format)) != BW_OK)
		return e;
	json_t *a = json_array();
	size_t bytes = 0;
	while (a != NULL && (e = db_step(s, &row)) == BW_OK && row) {
		if (n == *per_page) {
			*more = 1;
			break;
		}
		json_t *o;
		if ((e = engine_row(&req->op, m, s, 0, &o)) != BW_OK)
			break;
		json_array_append_new(a, o);
		n++;
		/* An export is bounded in bytes too, not only in rows (long texts). */
		if (export_all && (bytes += engine_row_bytes(o)) > ENGINE_EXPORT_BYTES) {
			db_finalize(s);
			json_decref(a);
			return response_error(req, BW_ERR_TOO_LARGE,
					      pool_printf(req->pool, "the export is over %zu MiB: narrow it with filters",
						  ENGINE_EXPORT_BYTES >> 20));
		}
	}
	db_finalize(s);
	if (e != BW_OK || a == NULL) {
		json_decref(a);
		return e != BW_OK ? e : BW_ERR_NOMEM;
	}
	*data = a;
	return BW_OK;
}

bw_err
engine_list(struct http_req *req)
{
	json_t *data;
	long page, per_page;
	const char *format;
	int more;
	bw_err e = engine_collect(req, 0, &data, &page, &per_page, &format, &more);
	if (e != BW_OK)
		return e;
	return response_json(req, 200,
			     json_pack("{s:o, s:i, s:i, s:b}", "data", data, "page", (int)page,
				       "per_page", (int)per_page, "has_more", more));
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
	long page, per_page, n;
	const char *format;
	int more;
	bw_err e = engine_collect(req, 1, &data, &page, &per_page, &format, &more);
	if (e != BW_OK)
		return e;
	if (more) {
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
