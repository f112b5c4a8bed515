/*
 * Background jobs through the API: list (with counts by state), retry and
 * cancel, the same operations `bulwark jobs` runs.
 */
#include "jobs_api.h"

#include <string.h>

#include "jobs.h"
#include "kinds.h"

static bw_err
jobs_api_get(struct op *op, int64_t id, json_t **out)
{
	return jobs_get(op, id, out);
}

/* Newest first, in pages; state and kind filter. */
static bw_err
jobs_api_list(struct http_req *req)
{
	static const char *const states[] = {"queued", "running", "done", "failed", "cancelled"};
	struct http_query q;
	struct page p;
	const char *state = "", *kind = "";
	int64_t ids[PAGE_LIMIT_MAX];
	size_t n = 0;
	page_init(&p);
	bw_err e = http_query_parse(req, &q);
	for (size_t i = 0; e == BW_OK && i < q.n; i++) {
		int taken = 0, ok = 0;
		if (strcmp(q.key[i], "state") == 0) {
			for (size_t k = 0; k < BW_ARRAY_LEN(states); k++)
				ok |= strcmp(q.val[i], states[k]) == 0;
			if (!ok)
				return op_fail(&req->op, BW_ERR_INVALID,
					       "state is one of queued, running, done, failed, cancelled");
			state = q.val[i];
		} else if (strcmp(q.key[i], "kind") == 0) {
			if (strlen(q.val[i]) > JOB_KIND_MAX)
				return op_fail(&req->op, BW_ERR_INVALID, "kind: at most 64 bytes");
			kind = q.val[i];
		} else if ((e = page_param(req, &p, q.key[i], q.val[i], &taken)) == BW_OK && !taken)
			return op_fail(&req->op, BW_ERR_INVALID,
				       pool_printf(req->pool,
						   "unknown query parameter '%.64s' (state, kind, limit, "
						   "cursor)",
						   q.key[i]));
	}
	struct db_arg a[] = {DB_TEXT(state), DB_TEXT(state), DB_TEXT(kind), DB_TEXT(kind)};
	if (e != BW_OK || (e = page_order(req, &p, "-id", "id", 1, PAGE_INT)) != BW_OK ||
	    (e = page_ids(req, &p, "jobs", "(? = '' OR state = ?) AND (? = '' OR kind = ?)", a, 4,
			  ids, &n)) != BW_OK)
		return e;
	return page_reply_ids(req, &p, &q, ids, n, jobs_api_get);
}

/* How many jobs are in each state. */
static bw_err
jobs_api_summary(struct http_req *req)
{
	json_t *c;
	bw_err e = jobs_counts(&req->op, &c);
	if (e != BW_OK)
		return e;
	return response_json(req, 200, json_pack("{s:o}", "counts", c));
}

static bw_err
jobs_api_change(struct http_req *req, int cancel)
{
	int64_t id;
	struct job_table t;
	if (http_req_id(req, "id", &id) != BW_OK)
		return op_fail(&req->op, BW_ERR_NOTFOUND, "no such job");
	job_table_build(req->op.cfg, 0, &t);
	bw_err e = cancel ? jobs_cancel(&req->op, t.kinds, t.nkinds, id)
			  : jobs_retry(&req->op, t.kinds, t.nkinds, id);
	if (e != BW_OK)
		return e;
	return response_json(req, 200,
			     json_pack("{s:I, s:s}", "id", (json_int_t)id, "state",
				       cancel ? "cancelled" : "queued"));
}

static bw_err
jobs_api_retry(struct http_req *req)
{
	return jobs_api_change(req, 0);
}

static bw_err
jobs_api_cancel(struct http_req *req)
{
	return jobs_api_change(req, 1);
}

const struct route jobs_routes[] = {
    {HTTP_GET, "/api/v1/jobs", jobs_api_list, 0, "jobs.view", ROUTE_BODY_NONE},
    {HTTP_GET, "/api/v1/jobs/summary", jobs_api_summary, 0, "jobs.view", ROUTE_BODY_NONE},
    {HTTP_POST, "/api/v1/jobs/:id/retry", jobs_api_retry, ROUTE_ADMIN, "jobs.manage",
     ROUTE_BODY_NONE},
    {HTTP_POST, "/api/v1/jobs/:id/cancel", jobs_api_cancel, ROUTE_ADMIN | ROUTE_DESTRUCTIVE,
     "jobs.manage", ROUTE_BODY_NONE},
};
const size_t jobs_routes_count = BW_ARRAY_LEN(jobs_routes);
