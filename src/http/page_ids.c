/*
 * page_ids: the ids of one page of a list read from the database (for
 * lists whose rows are then shown one by one through an operation). Apart
 * from page.c so that the page parsers build alone (tests/fuzz/fuzz_cursor.c).
 */
#include "http.h"

#include <stdio.h>

bw_err
page_ids(struct http_req *req, struct page *p, const char *from, const char *filter,
	 const struct db_arg *args, size_t nargs, int64_t *ids, size_t *n)
{
	db *d;
	db_stmt *s;
	int row, idx = 1;
	*n = 0;
	bw_err e = op_db(&req->op, &d);
	if (e != BW_OK)
		return e;
	const char *k = page_cond(req, p), *o = page_order_sql(req, p);
	const char *sql = k && o ? pool_printf(req->pool, "SELECT id FROM %s WHERE (%s)%s%s%s", from,
					       filter, k[0] ? " AND " : "", k, o)
				 : NULL;
	const char *count = pool_printf(req->pool, "SELECT COUNT(*) FROM %s WHERE (%s)", from, filter);
	if (sql == NULL || count == NULL)
		return BW_ERR_NOMEM;
	if ((e = db_prepare(d, sql, &s)) != BW_OK)
		return e;
	if ((e = db_bind_args(s, args, nargs)) == BW_OK) {
		idx = (int)nargs + 1;
		if ((e = page_bind(p, s, &idx)) == BW_OK)
			e = page_bind_limit(p, s, &idx);
	}
	while (e == BW_OK && (e = db_step(s, &row)) == BW_OK && row) {
		if (page_full(p) || *n >= PAGE_LIMIT_MAX)
			break;
		ids[(*n)++] = db_col_int(s, 0);
		page_seen_key(p, db_col_int(s, 0), db_col_int(s, 0));
	}
	db_finalize(s);
	if (e == BW_OK)
		e = db_query_int(d, &p->total, count, args, nargs);
	return e;
}

bw_err
page_reply_ids(struct http_req *req, struct page *p, const struct http_query *q,
	       const int64_t *ids, size_t n, page_get_fn get)
{
	json_t *list = json_array();
	if (list == NULL)
		return BW_ERR_NOMEM;
	for (size_t i = 0; i < n; i++) {
		json_t *o;
		bw_err e = get(&req->op, ids[i], &o);
		if (e == BW_ERR_NOTFOUND) {
			op_clear(&req->op); /* purged since the page was read */
			continue;
		}
		if (e != BW_OK || json_array_append_new(list, o) != 0) {
			json_decref(list);
			return e != BW_OK ? e : BW_ERR_NOMEM;
		}
	}
	return page_reply(req, p, q, list);
}
