/*
 * Built-in routes that belong to no module. Module routes are added by the
 * module engine; every route, built-in or not, goes through router_new().
 */
#include "server.h"

#include "../db/migrate.h"
#include "../search/search_api.h"

static bw_err
routes_healthz(struct http_req *req)
{
	return response_json(req, 200, json_pack("{s:s}", "status", "ok"));
}

/* The tenant's own database answers: for load balancers and monitoring. */
static bw_err
routes_tenant_health(struct http_req *req)
{
	db *d;
	int v;
	bw_err e = http_req_db(req, &d);
	if (e != BW_OK)
		return e;
	if ((e = migrate_current_ro(d, &v)) != BW_OK)
		return op_unavailable(&req->op);
	if (v != migrate_latest(&migrate_tenant)) {
		log_error("tenant %s: database at schema %d, need %d: run 'bulwark migrate'",
			  req->op.tenant, v, migrate_latest(&migrate_tenant));
		return response_error(req, BW_ERR_UNAVAILABLE,
				      "the tenant database needs maintenance; try again later");
	}
	return response_json(req, 200,
			     json_pack("{s:s, s:s, s:i}", "tenant", req->op.tenant, "database", "ok",
				       "schema_version", v));
}

const struct route routes_builtin[] = {
	{HTTP_GET, "/api/v1/tenant/health", routes_tenant_health, ROUTE_PUBLIC, NULL,
	 ROUTE_BODY_NONE},
	{HTTP_GET, "/healthz", routes_healthz, ROUTE_PUBLIC | ROUTE_NO_TENANT, NULL,
	 ROUTE_BODY_NONE},
	/* Across modules; it finds only in those the caller may view (docs/search.md). */
	{HTTP_GET, "/api/v1/search", search_api_get, 0, "search.view", ROUTE_BODY_NONE},
};

const size_t routes_builtin_count = BW_ARRAY_LEN(routes_builtin);
