/*
 * Built-in routes that belong to no module. Module routes are added by the
 * module engine; every route, built-in or not, goes through router_new().
 */
#include "http.h"

static bw_err
routes_healthz(struct http_req *req)
{
	return response_json(req, 200, json_pack("{s:s}", "status", "ok"));
}

const struct route routes_builtin[] = {
	{HTTP_GET, "/healthz", routes_healthz, ROUTE_PUBLIC | ROUTE_NO_TENANT, NULL,
	 ROUTE_BODY_NONE},
};

const size_t routes_builtin_count = BW_ARRAY_LEN(routes_builtin);
