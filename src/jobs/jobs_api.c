/*
 * Background jobs through the API: list (with counts by state), retry and
 * cancel, the same operations `bulwark jobs` runs.
 */
#include "jobs_api.h"

#include <string.h>

#include "jobs.h"
#include "kinds.h"

static bw_err
jobs_api_list(struct http_req *req)
{
	struct http_query q;
	const char *state = NULL, *kind = NULL;
	long limit = 100;
	json_t *a, *c;
	bw_err e = http_query_parse(req, &q);
	for (size_t i = 0; e == BW_OK && i < q.n; i++) {
		if (strcmp(q.key[i], "state") == 0 &&
		    (strcmp(q.val[i], "queued") == 0 || strcmp(q.val[i], "running") == 0 ||
		     strcmp(q.val[i], "done") == 0 || strcmp(q.val[i], "failed") == 0 ||
		     strcmp(q.val[i], "cancelled") == 0))
			state = q.val[i];
		else if (strcmp(q.key[i], "kind") == 0 && strlen(q.val[i]) <= JOB_KIND_MAX)
			kind = q.val[i];
		else if (strcmp(q.key[i], "limit") == 0 &&
			 util_parse_long(q.val[i], 1, 1000, &limit) == BW_OK)
			continue;
		else
			return op_fail(&req->op, BW_ERR_INVALID,
				       "query parameters: state (queued, running, done, failed, "
				       "cancelled), kind, limit (1-1000)");
	}
	if (e != BW_OK || (e = jobs_list(&req->op, state, kind, (int)limit, &a)) != BW_OK)
		return e;
	if ((e = jobs_counts(&req->op, &c)) != BW_OK) {
		json_decref(a);
		return e;
	}
	return response_json(req, 200, json_pack("{s:o, s:o}", "data", a, "counts", c));
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
    {HTTP_POST, "/api/v1/jobs/:id/retry", jobs_api_retry, ROUTE_ADMIN, "jobs.manage",
     ROUTE_BODY_NONE},
    {HTTP_POST, "/api/v1/jobs/:id/cancel", jobs_api_cancel, ROUTE_ADMIN | ROUTE_DESTRUCTIVE,
     "jobs.manage", ROUTE_BODY_NONE},
};
const size_t jobs_routes_count = BW_ARRAY_LEN(jobs_routes);
