#include "unit.h"

#include "http/http.h"
#include "server/server.h"

static bw_err
h_ok(struct http_req *req)
{
	(void)req;
	return BW_OK;
}

static const struct route table[] = {
	{HTTP_GET, "/healthz", h_ok, ROUTE_PUBLIC, NULL, ROUTE_BODY_NONE},
	{HTTP_GET, "/api/v1/:module", h_ok, 0, "x.view", ROUTE_BODY_DEFAULT},
	{HTTP_POST, "/api/v1/:module", h_ok, 0, "x.create", ROUTE_BODY_DEFAULT},
	{HTTP_GET, "/api/v1/:module/:id", h_ok, 0, "x.view", ROUTE_BODY_DEFAULT},
	{HTTP_PATCH, "/api/v1/:module/:id", h_ok, 0, "x.edit", 2048},
	{HTTP_DELETE, "/api/v1/:module/:id", h_ok, ROUTE_DESTRUCTIVE, "x.delete", ROUTE_BODY_DEFAULT},
	{HTTP_GET, "/api/v1/me", h_ok, 0, "self.view", ROUTE_BODY_NONE},
};

struct fx {
	struct router *rt;
	struct http_req req;
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char err[256];
	assert_int_equal(router_new(table, BW_ARRAY_LEN(table), 1000, &f->rt, err, sizeof(err)),
			 BW_OK);
	f->req.pool = pool_new(1 << 16);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	router_free(f->rt);
	pool_free(f->req.pool);
	free(f);
	return 0;
}

static bw_err
match(struct fx *f, unsigned method, const char *path)
{
	f->req.method = method;
	f->req.path = path;
	return router_match(f->rt, &f->req);
}

static void
test_literal_and_params(void **state)
{
	struct fx *f = *state;
	assert_int_equal(match(f, HTTP_GET, "/healthz"), BW_OK);
	assert_ptr_equal(f->req.route, &table[0]);
	assert_int_equal(f->req.nparams, 0);

	assert_int_equal(match(f, HTTP_GET, "/api/v1/tickets/42"), BW_OK);
	assert_ptr_equal(f->req.route, &table[3]);
	assert_int_equal(f->req.nparams, 2);
	assert_string_equal(f->req.param_name[0], "module");
	assert_string_equal(f->req.param_value[0], "tickets");
	assert_string_equal(f->req.param_name[1], "id");
	assert_string_equal(f->req.param_value[1], "42");

	/* A literal beats nothing: /api/v1/me is its own route, same shape as :module. */
	assert_int_equal(match(f, HTTP_GET, "/api/v1/me"), BW_OK);
	assert_ptr_equal(f->req.route, &table[6]);
	assert_int_equal(match(f, HTTP_GET, "/api/v1/mf"), BW_OK);
	assert_ptr_equal(f->req.route, &table[1]);

	assert_int_equal(match(f, HTTP_GET, "/api/v1/kb%20articles/a%2Bb"), BW_OK);
	assert_string_equal(f->req.param_value[0], "kb articles");
	assert_string_equal(f->req.param_value[1], "a+b");
}

static void
test_method_handling(void **state)
{
	struct fx *f = *state;
	assert_int_equal(match(f, HTTP_HEAD, "/healthz"), BW_OK);
	assert_int_equal(match(f, HTTP_POST, "/healthz"), BW_ERR_METHOD);
	assert_int_equal(f->req.allow, HTTP_GET | HTTP_HEAD);
	assert_int_equal(match(f, HTTP_PUT, "/api/v1/tickets/1"), BW_ERR_METHOD);
	assert_int_equal(f->req.allow, HTTP_GET | HTTP_HEAD | HTTP_PATCH | HTTP_DELETE);
	char allow[64];
	router_allow_string(f->req.allow, allow, sizeof(allow));
	assert_string_equal(allow, "GET, HEAD, PATCH, DELETE");
	/* An unknown method (0) on a known path is 405, not 404. */
	assert_int_equal(match(f, 0, "/healthz"), BW_ERR_METHOD);
	assert_int_equal(router_method("PATCH"), HTTP_PATCH);
	assert_int_equal(router_method("patch"), 0);
	assert_int_equal(router_method("BREW"), 0);
}

static void
test_not_found(void **state)
{
	struct fx *f = *state;
	assert_int_equal(match(f, HTTP_GET, "/"), BW_ERR_NOTFOUND);
	assert_int_equal(match(f, HTTP_GET, "/nope"), BW_ERR_NOTFOUND);
	assert_int_equal(match(f, HTTP_GET, "/healthz/"), BW_ERR_NOTFOUND);
	assert_int_equal(match(f, HTTP_GET, "/api/v1/a/b/c"), BW_ERR_NOTFOUND);
	assert_int_equal(match(f, HTTP_GET, "/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q/r"), BW_ERR_NOTFOUND);
}

static void
test_malformed_paths(void **state)
{
	struct fx *f = *state;
	const char *bad[] = {
	    "",   "healthz", "/%zz",         "/%4",           "/%",
	    "/a%00b",        "/api/v1/x/%2F", "/api/v1/x/%2f", "/api/v1/x/..",
	    "/api/v1/x/.",   "/api/v1/%2e%2e/1", "/api/v1//1", "/api/v1/x/a%5cb",
	    "/api/v1/x/%FF", "/api/v1/x/%C0%AF", "/api/v1/x/%ED%A0%80", "/api/v1/x/%E2%82",
	    /* found by fuzz_router: a raw backslash, and control characters however encoded */
	    "/api/v1/x/a\\b", "/api/v1/x/a%0Ab", "/api/v1/x/%12", "/api/v1/x/a%7f", "/api/v1/x/%1B[31m",
	};
	for (size_t i = 0; i < BW_ARRAY_LEN(bad); i++) {
		bw_err e = match(f, HTTP_GET, bad[i]);
		if (e != BW_ERR_INVALID)
			fail_msg("path '%s' gave %s, want invalid", bad[i], bw_errcode(e));
	}
}

static void
test_body_limits(void **state)
{
	struct fx *f = *state;
	assert_int_equal(match(f, HTTP_GET, "/api/v1/tickets"), BW_OK);
	assert_int_equal(f->req.body_limit, 0);
	assert_int_equal(match(f, HTTP_POST, "/api/v1/tickets"), BW_OK);
	assert_int_equal(f->req.body_limit, 1000);
	assert_int_equal(match(f, HTTP_PATCH, "/api/v1/tickets/1"), BW_OK);
	assert_int_equal(f->req.body_limit, 2048);
	assert_int_equal(match(f, HTTP_DELETE, "/api/v1/tickets/1"), BW_OK);
	assert_int_equal(f->req.body_limit, 0);
	assert_int_equal(router_max_body(f->rt), 2048);
}

static void
test_registration_refusals(void **state)
{
	(void)state;
	struct router *rt = NULL;
	char err[256];
	const struct route unprotected[] = {
	    {HTTP_GET, "/api/v1/secret", h_ok, 0, NULL, ROUTE_BODY_NONE},
	};
	assert_int_equal(router_new(unprotected, 1, 10, &rt, err, sizeof(err)), BW_ERR_DENIED);
	assert_null(rt);
	assert_non_null(strstr(err, "/api/v1/secret"));

	const struct route empty_perm[] = {
	    {HTTP_GET, "/x", h_ok, ROUTE_ADMIN, "", ROUTE_BODY_NONE},
	};
	assert_int_equal(router_new(empty_perm, 1, 10, &rt, err, sizeof(err)), BW_ERR_DENIED);

	const struct route dup[] = {
	    {HTTP_GET, "/a/:x", h_ok, ROUTE_PUBLIC, NULL, ROUTE_BODY_NONE},
	    {HTTP_GET, "/a/:y", h_ok, ROUTE_PUBLIC, NULL, ROUTE_BODY_NONE},
	};
	assert_int_equal(router_new(dup, 2, 10, &rt, err, sizeof(err)), BW_ERR_CONFLICT);

	const char *bad_patterns[] = {"x", "/a/", "/A", "/a b", "/:", "/a//b"};
	for (size_t i = 0; i < BW_ARRAY_LEN(bad_patterns); i++) {
		const struct route one[] = {
		    {HTTP_GET, bad_patterns[i], h_ok, ROUTE_PUBLIC, NULL, ROUTE_BODY_NONE},
		};
		if (router_new(one, 1, 10, &rt, err, sizeof(err)) == BW_OK)
			fail_msg("pattern '%s' accepted", bad_patterns[i]);
	}
	const struct route two_methods[] = {
	    {HTTP_GET | HTTP_POST, "/a", h_ok, ROUTE_PUBLIC, NULL, ROUTE_BODY_NONE},
	};
	assert_int_not_equal(router_new(two_methods, 1, 10, &rt, err, sizeof(err)), BW_OK);
	const struct route no_handler[] = {
	    {HTTP_GET, "/a", NULL, ROUTE_PUBLIC, NULL, ROUTE_BODY_NONE},
	};
	assert_int_not_equal(router_new(no_handler, 1, 10, &rt, err, sizeof(err)), BW_OK);
}

static void
test_builtin_routes_register(void **state)
{
	(void)state;
	struct router *rt = NULL;
	char err[256];
	assert_int_equal(router_new(routes_builtin, routes_builtin_count, 10, &rt, err, sizeof(err)),
			 BW_OK);
	assert_int_equal(router_count(rt), routes_builtin_count);
	for (size_t i = 0; i < router_count(rt); i++) {
		const struct route *r = router_route(rt, i);
		assert_true((r->flags & ROUTE_PUBLIC) || (r->permission && r->permission[0]));
	}
	router_free(rt);
}

/* The allowlist class: from flags, method and permission name (ADR 0011). */
static void
test_guard_classes(void **state)
{
	(void)state;
	static const struct {
		unsigned method, flags;
		const char *perm;
		enum route_guard want;
	} cases[] = {
	    {HTTP_POST, ROUTE_PUBLIC, NULL, ROUTE_GUARD_NONE},
	    {HTTP_GET, 0, "customers.view", ROUTE_GUARD_NONE},
	    {HTTP_GET, 0, "self.view", ROUTE_GUARD_NONE},
	    {HTTP_GET, 0, "users.view", ROUTE_GUARD_NONE},
	    {HTTP_GET, 0, "roles.view", ROUTE_GUARD_NONE},
	    {HTTP_POST, ROUTE_MFA_PENDING, "self.session", ROUTE_GUARD_NONE},
	    {HTTP_POST, 0, "self.session", ROUTE_GUARD_CHANGE},
	    {HTTP_POST, 0, "customers.create", ROUTE_GUARD_CHANGE},
	    {HTTP_PATCH, 0, "customers.edit", ROUTE_GUARD_CHANGE},
	    {HTTP_POST, ROUTE_ROUTINE, "tickets.assign", ROUTE_GUARD_CHANGE},
	    {HTTP_POST, 0, "tickets.assign", ROUTE_GUARD_ALWAYS},
	    {HTTP_POST, 0, "invoices.send", ROUTE_GUARD_ALWAYS},
	    {HTTP_POST, ROUTE_ROUTINE | ROUTE_DESTRUCTIVE, "invoices.void", ROUTE_GUARD_ALWAYS},
	    {HTTP_GET, 0, "customers.export", ROUTE_GUARD_ALWAYS},
	    {HTTP_DELETE, 0, "customers.delete", ROUTE_GUARD_ALWAYS},
	    {HTTP_GET, ROUTE_ADMIN, "customers.view", ROUTE_GUARD_ALWAYS},
	    {HTTP_GET, 0, "audit.view", ROUTE_GUARD_ALWAYS},
	    {HTTP_GET, 0, "settings.view", ROUTE_GUARD_ALWAYS},
	    {HTTP_GET, 0, "users.tokens", ROUTE_GUARD_ALWAYS},
	    {HTTP_POST, 0, "users.unlock", ROUTE_GUARD_ALWAYS},
	    {HTTP_PATCH, 0, "roles.edit", ROUTE_GUARD_ALWAYS},
	    {HTTP_GET, 0, "self.tokens", ROUTE_GUARD_ALWAYS},
	    {HTTP_POST, ROUTE_MFA_ENROL, "self.mfa", ROUTE_GUARD_ALWAYS},
	    {HTTP_POST, ROUTE_PW_CHANGE, "self.password", ROUTE_GUARD_ALWAYS},
	    /* no known shape: guarded */
	    {HTTP_GET, 0, "oddity", ROUTE_GUARD_ALWAYS},
	    {HTTP_GET, 0, "usersx.view", ROUTE_GUARD_NONE},
	};
	for (size_t i = 0; i < BW_ARRAY_LEN(cases); i++) {
		struct route r = {cases[i].method, "/x", h_ok, cases[i].flags, cases[i].perm,
				  ROUTE_BODY_NONE, NULL};
		if ((int)router_guard(&r) != (int)cases[i].want)
			fail_msg("case %zu (%s): got %s", i, cases[i].perm ? cases[i].perm : "-",
				 router_guard_name(router_guard(&r)));
	}
	assert_string_equal(router_guard_name(ROUTE_GUARD_CHANGE), "changes");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_literal_and_params, setup, teardown),
		cmocka_unit_test_setup_teardown(test_method_handling, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_found, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed_paths, setup, teardown),
		cmocka_unit_test_setup_teardown(test_body_limits, setup, teardown),
		cmocka_unit_test(test_registration_refusals),
		cmocka_unit_test(test_builtin_routes_register),
		cmocka_unit_test(test_guard_classes),
	};
	return cmocka_run_group_tests_name("router", tests, NULL, NULL);
}
