/*
 * The OpenAPI generator (src/openapi): every route of the real table is in
 * the document with its permission, parameters and replies; a route
 * without documentation (built-in, or a module action) fails the build
 * naming it; entries for routes that do not exist are left out; module
 * schemas follow the descriptors.
 */
#include "unit.h"

#include <jansson.h>

#include "cli/cli.h"
#include "http/http.h"
#include "modules/desc.h"
#include "openapi/openapi.h"

static bw_err
dummy(struct http_req *req)
{
	(void)req;
	return BW_OK;
}

/* The document of the real table plus extra routes (NULL: none). */
static bw_err
build(const struct route *extra, size_t nextra, json_t **doc, char *err, size_t errlen)
{
	struct route *v;
	size_t n;
	struct router *rt;
	assert_int_equal(cli_route_table(&v, &n), BW_OK);
	struct route *all = calloc(n + nextra, sizeof(*all));
	assert_non_null(all);
	memcpy(all, v, n * sizeof(*v));
	if (nextra)
		memcpy(all + n, extra, nextra * sizeof(*extra));
	char rerr[256];
	assert_int_equal(router_new(all, n + nextra, 1 << 20, &rt, rerr, sizeof(rerr)), BW_OK);
	bw_err e = openapi_build(rt, doc, err, errlen);
	router_free(rt);
	free(all);
	free(v);
	return e;
}

static json_t *
op_of(json_t *doc, const char *path, const char *method)
{
	return json_object_get(json_object_get(json_object_get(doc, "paths"), path), method);
}

static void
test_every_route(void **state)
{
	(void)state;
	json_t *doc;
	char err[512];
	struct route *v;
	size_t n;
	assert_int_equal(build(NULL, 0, &doc, err, sizeof(err)), BW_OK);
	assert_string_equal(json_string_value(json_object_get(doc, "openapi")), "3.1.0");
	assert_int_equal(cli_route_table(&v, &n), BW_OK);
	json_t *ids = json_object();
	for (size_t i = 0; i < n; i++) {
		char path[256], method[16];
		size_t w = 0;
		for (const char *p = v[i].pattern; *p && w < sizeof(path) - 2;) {
			if (*p == ':') {
				path[w++] = '{';
				for (p++; *p && *p != '/';)
					path[w++] = *p++;
				path[w++] = '}';
			} else {
				path[w++] = *p++;
			}
		}
		path[w] = '\0';
		router_allow_string(v[i].method, method, sizeof(method));
		for (char *c = method; *c; c++)
			*c = (char)(*c - 'A' + 'a');
		json_t *op = op_of(doc, path, method);
		if (op == NULL)
			fail_msg("%s %s is not in the document", method, path);
		const char *id = json_string_value(json_object_get(op, "operationId"));
		assert_non_null(id);
		assert_null(json_object_get(ids, id)); /* unique */
		json_object_set_new(ids, id, json_true());
		json_t *resp = json_object_get(op, "responses");
		assert_non_null(json_object_get(resp, "400"));
		assert_non_null(json_object_get(resp, "429"));
		assert_non_null(json_object_get(resp, "503"));
		if (v[i].flags & ROUTE_PUBLIC) {
			assert_int_equal(json_array_size(json_object_get(op, "security")), 0);
		} else {
			assert_string_equal(json_string_value(json_object_get(op, "x-permission")),
					    v[i].permission);
			assert_non_null(strstr(json_string_value(json_object_get(op, "description")),
					       v[i].permission));
			assert_int_equal(json_array_size(json_object_get(op, "security")), 2);
			assert_non_null(json_object_get(resp, "401"));
			assert_non_null(json_object_get(resp, "403"));
		}
		/* A change of a record takes If-Match; a POST takes an Idempotency-Key. */
		json_t *params = json_object_get(op, "parameters");
		int if_match = 0, idem = 0;
		size_t k;
		json_t *p;
		json_array_foreach(params, k, p)
		{
			const char *ref = json_string_value(json_object_get(p, "$ref"));
			if_match |= ref && strcmp(ref, "#/components/parameters/IfMatch") == 0;
			idem |= ref && strcmp(ref, "#/components/parameters/IdempotencyKey") == 0;
		}
		/* ...but an upload, which takes none (docs/files.md). */
		assert_int_equal(idem, v[i].method == HTTP_POST && !(v[i].flags & ROUTE_UPLOAD));
		/* (A file never changes once stored: deleting one takes no If-Match.) */
		if (v[i].data != NULL && strstr(v[i].pattern, "/files") == NULL &&
		    (v[i].method == HTTP_PATCH || v[i].method == HTTP_DELETE))
			assert_true(if_match);
		if (if_match)
			assert_non_null(json_object_get(resp, "412"));
		json_t *created = json_object_get(resp, "201");
		if (created != NULL)
			assert_non_null(json_object_get(json_object_get(created, "headers"), "Location"));
	}
	json_decref(ids);
	free(v);
	json_decref(doc);
}

static void
test_undocumented_builtin_fails(void **state)
{
	(void)state;
	const struct route extra[] = {
	    {HTTP_GET, "/api/v1/nosuch/thing", dummy, 0, "self.view", ROUTE_BODY_NONE},
	};
	json_t *doc = NULL;
	char err[512];
	assert_int_equal(build(extra, 1, &doc, err, sizeof(err)), BW_ERR_NOTFOUND);
	assert_null(doc);
	assert_non_null(strstr(err, "GET /api/v1/nosuch/thing"));
}

static void
test_undocumented_action_fails(void **state)
{
	(void)state;
	/* A module action the action table does not know. */
	const struct route extra[] = {
	    {HTTP_POST, "/api/v1/customers/:id/frobnicate", dummy, 0, "customers.frobnicate",
	     ROUTE_BODY_DEFAULT, module_find("customers")},
	};
	json_t *doc = NULL;
	char err[512];
	assert_int_equal(build(extra, 1, &doc, err, sizeof(err)), BW_ERR_NOTFOUND);
	assert_null(doc);
	assert_non_null(strstr(err, "customers.frobnicate"));
	/* and a module route of a shape the generator does not know */
	const struct route odd[] = {
	    {HTTP_PUT, "/api/v1/customers/:id", dummy, 0, "customers.edit", ROUTE_BODY_DEFAULT,
	     module_find("customers")},
	};
	assert_int_equal(build(odd, 1, &doc, err, sizeof(err)), BW_ERR_NOTFOUND);
	assert_non_null(strstr(err, "PUT /api/v1/customers/:id"));
}

static void
test_entries_ahead_are_left_out(void **state)
{
	(void)state;
	const struct route only[] = {
	    {HTTP_GET, "/healthz", dummy, ROUTE_PUBLIC | ROUTE_NO_TENANT, NULL, ROUTE_BODY_NONE},
	};
	struct router *rt;
	char err[512];
	json_t *doc;
	assert_int_equal(router_new(only, 1, 1 << 20, &rt, err, sizeof(err)), BW_OK);
	assert_int_equal(openapi_build(rt, &doc, err, sizeof(err)), BW_OK);
	assert_int_equal(json_object_size(json_object_get(doc, "paths")), 1);
	assert_non_null(op_of(doc, "/healthz", "get"));
	/* /healthz answers without a tenant: no 403 (no tenant to be suspended) */
	assert_null(json_object_get(json_object_get(op_of(doc, "/healthz", "get"), "responses"),
				    "403"));
	json_decref(doc);
	router_free(rt);
}

/* The tombstone list, whether the engine registers it or it comes by hand. */
static void
test_tombstones(void **state)
{
	(void)state;
	/* The tombstone feeds are in the real table now (list_api.c): documented with since. */
	json_t *doc;
	char err[512];
	assert_int_equal(build(NULL, 0, &doc, err, sizeof(err)), BW_OK);
	const char *paths[] = {"/api/v1/tickets/deleted", "/api/v1/contacts/deleted"};
	for (size_t i = 0; i < 2; i++) {
		json_t *op = op_of(doc, paths[i], "get");
		assert_non_null(op);
		int since = 0;
		size_t k;
		json_t *p;
		json_array_foreach(json_object_get(op, "parameters"), k, p)
		    since |= json_is_string(json_object_get(p, "name")) &&
			     strcmp(json_string_value(json_object_get(p, "name")), "since") == 0;
		assert_true(since);
	}
	json_decref(doc);
}

static void
test_module_schemas(void **state)
{
	(void)state;
	json_t *doc;
	char err[512];
	assert_int_equal(build(NULL, 0, &doc, err, sizeof(err)), BW_OK);
	json_t *s = json_object_get(json_object_get(doc, "components"), "schemas");
	/* create: required fields without a default; action-only and read-only fields left out */
	json_t *tc = json_object_get(s, "tickets_create");
	json_t *req = json_object_get(tc, "required");
	int cust = 0, subj = 0, status = 0;
	size_t i;
	json_t *v;
	json_array_foreach(req, i, v)
	{
		cust |= strcmp(json_string_value(v), "customer_id") == 0;
		subj |= strcmp(json_string_value(v), "subject") == 0;
		status |= strcmp(json_string_value(v), "status") == 0;
	}
	assert_true(cust && subj && !status);
	assert_true(json_is_false(json_object_get(tc, "additionalProperties")));
	json_t *props = json_object_get(tc, "properties");
	assert_null(json_object_get(props, "assignee_id"));
	assert_int_equal(json_integer_value(json_object_get(json_object_get(props, "subject"),
							    "maxLength")),
			 200);
	json_t *st = json_object_get(json_object_get(props, "status"), "enum");
	assert_true(json_array_size(st) >= 6);
	/* update: immutable fields left out */
	assert_null(json_object_get(
	    json_object_get(json_object_get(s, "tickets_update"), "properties"), "customer_id"));
	/* write-only: accepted, never shown (shown as <name>_set) */
	json_t *nd = json_object_get(json_object_get(s, "network_devices"), "properties");
	assert_null(json_object_get(nd, "credential"));
	assert_non_null(json_object_get(nd, "credential_set"));
	assert_non_null(json_object_get(nd, "version"));
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(nd, "created_at"), "format")),
	    "date-time");
	json_t *ndc = json_object_get(json_object_get(s, "network_devices_create"), "properties");
	assert_true(json_is_true(json_object_get(json_object_get(ndc, "credential"), "writeOnly")));
	/* read-only in the row */
	json_t *inv = json_object_get(json_object_get(s, "invoices"), "properties");
	assert_true(json_is_true(json_object_get(json_object_get(inv, "total_cents"), "readOnly")));
	json_decref(doc);
}

static void
test_list_parameters(void **state)
{
	(void)state;
	json_t *doc;
	char err[512];
	assert_int_equal(build(NULL, 0, &doc, err, sizeof(err)), BW_OK);
	json_t *params = json_object_get(op_of(doc, "/api/v1/tickets", "get"), "parameters");
	int sort_due = 0, due_gte = 0, status = 0, desc = 0, limit = 0, cursor = 0, since = 0;
	size_t i;
	json_t *p;
	json_array_foreach(params, i, p)
	{
		const char *n = json_string_value(json_object_get(p, "name"));
		const char *ref = json_string_value(json_object_get(p, "$ref"));
		limit |= ref && strstr(ref, "/Limit") != NULL;
		cursor |= ref && strstr(ref, "/Cursor") != NULL;
		if (n == NULL)
			continue;
		if (strcmp(n, "sort") == 0) {
			size_t k;
			json_t *e;
			json_array_foreach(json_object_get(json_object_get(p, "schema"), "enum"), k, e)
			    sort_due |= strcmp(json_string_value(e), "-due_on") == 0;
		}
		due_gte |= strcmp(n, "due_on.gte") == 0;
		status |= strcmp(n, "status") == 0;
		desc |= strcmp(n, "description") == 0; /* encrypted: never a filter */
		since |= strcmp(n, "updated_since") == 0;
	}
	assert_true(sort_due && due_gte && status && limit && cursor && since);
	assert_false(desc);
	json_decref(doc);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_every_route),
	    cmocka_unit_test(test_undocumented_builtin_fails),
	    cmocka_unit_test(test_undocumented_action_fails),
	    cmocka_unit_test(test_entries_ahead_are_left_out),
	    cmocka_unit_test(test_tombstones),
	    cmocka_unit_test(test_module_schemas),
	    cmocka_unit_test(test_list_parameters),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
