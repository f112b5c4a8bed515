/*
 * Built-in routes that belong to no module. Module routes are added by the
 * module engine; every route, built-in or not, goes through router_new().
 */
#include "server.h"

#include <stdlib.h>
#include <string.h>

#include "../db/migrate.h"
#include "../search/search_api.h"
#include "../openapi/openapi.h"

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

/*
 * The OpenAPI document of the routes this server serves, made once from
 * its route table and kept (src/openapi/). Public and tenant-free: it is
 * the same on every host (the module catalogue is compiled in), so a
 * client can read it from the bare base domain or from its tenant's host,
 * before signing in.
 */
static bw_err
routes_openapi(struct http_req *req)
{
	const char *text;
	size_t len;
	bw_err e = openapi_text(http_req_router(req), &text, &len);
	if (e != BW_OK)
		return response_error(req, e == BW_ERR_NOMEM ? e : BW_ERR_INTERNAL, NULL);
	char *copy = malloc(len + 1);
	if (copy == NULL)
		return response_error(req, BW_ERR_NOMEM, NULL);
	memcpy(copy, text, len + 1);
	return response_raw(req, 200, "application/json", NULL, copy, len);
}

const struct route routes_builtin[] = {
	{HTTP_GET, "/api/v1/tenant/health", routes_tenant_health, ROUTE_PUBLIC, NULL,
	 ROUTE_BODY_NONE},
	{HTTP_GET, "/healthz", routes_healthz, ROUTE_PUBLIC | ROUTE_NO_TENANT, NULL,
	 ROUTE_BODY_NONE},
	/* Across modules; it finds only in those the caller may view (docs/search.md). */
	{HTTP_GET, "/api/v1/search", search_api_get, 0, "search.view", ROUTE_BODY_NONE},
	{HTTP_GET, "/api/v1/openapi.json", routes_openapi, ROUTE_PUBLIC | ROUTE_NO_TENANT, NULL,
	 ROUTE_BODY_NONE},
};

const size_t routes_builtin_count = BW_ARRAY_LEN(routes_builtin);
