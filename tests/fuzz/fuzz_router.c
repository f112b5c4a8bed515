/*
 * libFuzzer target for the router's path matching (src/http/router.c): the
 * raw, still percent-encoded path of every request is untrusted. Holds the
 * matcher to its promises: a match names a route and at most
 * ROUTE_MAX_PARAMS parameters, each decoded value is non-empty, holds no
 * '/', '\\', NUL, control character or space, and is never "." or ".."
 * (no path a handler builds from it can climb); no match leaves no route.
 *   build/fuzz/fuzz_router -max_total_time=600 build/fuzz/corpus-fuzz_router
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/http/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bw_err
fuzz_handler(struct http_req *req)
{
	(void)req;
	return BW_OK;
}

static const struct route fuzz_routes[] = {
	{HTTP_GET, "/healthz", fuzz_handler, ROUTE_PUBLIC | ROUTE_NO_TENANT, NULL, ROUTE_BODY_NONE},
	{HTTP_POST, "/api/v1/auth/login", fuzz_handler, ROUTE_PUBLIC, NULL, 4096},
	{HTTP_GET, "/api/v1/:module", fuzz_handler, 0, "x.view", ROUTE_BODY_NONE},
	{HTTP_POST, "/api/v1/:module", fuzz_handler, 0, "x.create", ROUTE_BODY_DEFAULT},
	{HTTP_GET, "/api/v1/:module/export", fuzz_handler, 0, "x.export", ROUTE_BODY_NONE},
	{HTTP_GET, "/api/v1/:module/:id", fuzz_handler, 0, "x.view", ROUTE_BODY_NONE},
	{HTTP_PATCH, "/api/v1/:module/:id", fuzz_handler, 0, "x.edit", ROUTE_BODY_DEFAULT},
	{HTTP_DELETE, "/api/v1/:module/:id", fuzz_handler, ROUTE_DESTRUCTIVE, "x.delete",
	 ROUTE_BODY_NONE},
	{HTTP_POST, "/api/v1/:module/:id/:action", fuzz_handler, 0, "x.act", ROUTE_BODY_DEFAULT},
	{HTTP_DELETE, "/api/v1/users/:id/tokens/:token_id", fuzz_handler, ROUTE_ADMIN, "users.tokens",
	 ROUTE_BODY_NONE},
};

static const unsigned fuzz_methods[] = {HTTP_GET,   HTTP_HEAD,   HTTP_POST, HTTP_PUT,
					HTTP_PATCH, HTTP_DELETE, HTTP_OPTIONS};

static int
fuzz_value_ok(const char *v)
{
	if (v == NULL || v[0] == '\0' || strcmp(v, ".") == 0 || strcmp(v, "..") == 0)
		return 0;
	for (const unsigned char *p = (const unsigned char *)v; *p; p++)
		if (*p == '/' || *p == '\\' || *p < 0x20 || *p == 0x7f) /* %20 decodes to a space */
			return 0;
	return 1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct router *r;
	char err[256];
	if (r == NULL && router_new(fuzz_routes, BW_ARRAY_LEN(fuzz_routes), 1024, &r, err,
				    sizeof(err)) != BW_OK)
		abort();
	if (size < 1 || size > 8192)
		return 0;
	struct http_req req;
	memset(&req, 0, sizeof(req));
	req.pool = pool_new(64 * 1024);
	if (req.pool == NULL)
		return 0;
	req.method = fuzz_methods[data[0] % BW_ARRAY_LEN(fuzz_methods)];
	req.path = pool_strndup(req.pool, (const char *)data + 1, size - 1);
	if (req.path == NULL) {
		pool_free(req.pool);
		return 0;
	}
	bw_err e = router_match(r, &req);
	if (e == BW_OK) {
		if (req.route == NULL || req.nparams > ROUTE_MAX_PARAMS)
			abort();
		for (size_t i = 0; i < req.nparams; i++)
			if (req.param_name[i] == NULL || !fuzz_value_ok(req.param_value[i]))
				abort();
	} else if (e != BW_ERR_NOMEM && req.route != NULL) {
		abort();
	}
	pool_free(req.pool);
	return 0;
}
