/*
 * The module engine's routes: one set of handlers serves every module.
 * The route's descriptor (route->data) says which module; each handler
 * parses the request and calls the operation of module.h, which does the
 * work in op's transaction whoever asks (API, CLI, job).
 *
 * A row is sent with its version as ETag; PATCH, DELETE and actions take
 * If-Match, whose versions the operation checks once it holds the row.
 */
#include "module_api.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "../audit/audit_api.h"
#include "engine.h"

static struct route *engine_routes;
static size_t engine_nroutes;
static bw_err engine_init_err = BW_OK;
static pthread_once_t engine_routes_once = PTHREAD_ONCE_INIT;

/* The row a route's :id names, or BW_ERR_NOTFOUND (recorded). */
static bw_err
engine_id(struct http_req *req, int64_t *id)
{
	if (http_req_id(req, "id", id) != BW_OK)
		return response_error(req, BW_ERR_NOTFOUND, "no such record");
	return BW_OK;
}

/*
 * Reply with o (stolen), and when it is row id (any row for id 0) its
 * version as ETag; an action's own answer is no row and has none.
 */
static bw_err
engine_reply(struct http_req *req, int status, json_t *o, int64_t id)
{
	json_t *rid = json_object_get(o, "id");
	if (json_is_integer(rid) && (id == 0 || (int64_t)json_integer_value(rid) == id))
		return http_reply_versioned(req, status, o);
	return response_json(req, status, o);
}

static bw_err
engine_get(struct http_req *req)
{
	json_t *o;
	int64_t id;
	bw_err e = engine_id(req, &id);
	if (e != BW_OK || (e = module_get(&req->op, req->route->data, id, &o)) != BW_OK)
		return e;
	return engine_reply(req, 200, o, id);
}

static bw_err
engine_create(struct http_req *req)
{
	json_t *in, *row;
	bw_err e = http_req_json(req, &in);
	if (e != BW_OK)
		return e;
	e = module_create(&req->op, req->route->data, in, &row);
	json_decref(in);
	return e != BW_OK ? e : engine_reply(req, 201, row, 0);
}

/*
 * Each version If-Match names is tried in turn until one is the row's
 * (a 412 wrote nothing); without If-Match there is one try, unconditional.
 */
static bw_err
engine_update(struct http_req *req)
{
	struct http_if_match im;
	json_t *in, *row = NULL;
	int64_t id;
	bw_err e = engine_id(req, &id);
	if (e != BW_OK || (e = http_req_if_match(req, &im)) != BW_OK ||
	    (e = http_req_json(req, &in)) != BW_OK)
		return e;
	for (size_t i = 0; i < im.n; i++) {
		if (i > 0)
			op_clear(&req->op);
		e = module_update(&req->op, req->route->data, id, in, im.version[i], &row);
		if (e != BW_ERR_PRECONDITION)
			break;
	}
	json_decref(in);
	return e != BW_OK ? e : engine_reply(req, 200, row, id);
}

static bw_err
engine_delete(struct http_req *req)
{
	struct http_if_match im;
	int64_t id;
	bw_err e = engine_id(req, &id);
	if (e != BW_OK || (e = http_req_if_match(req, &im)) != BW_OK)
		return e;
	for (size_t i = 0; i < im.n; i++) {
		if (i > 0)
			op_clear(&req->op);
		e = module_delete(&req->op, req->route->data, id, im.version[i]);
		if (e != BW_ERR_PRECONDITION)
			break;
	}
	if (e != BW_OK)
		return e;
	return response_json(req, 200, json_pack("{s:I, s:b}", "id", (json_int_t)id, "deleted", 1));
}

static bw_err
engine_action(struct http_req *req)
{
	const struct module_desc *m = req->route->data;
	/* The action's name is the last segment of the pattern: routes are made from the actions. */
	const struct action_desc *a = module_action(m, strrchr(req->route->pattern, '/') + 1);
	json_t *body = NULL, *reply = NULL;
	struct http_if_match im;
	int64_t id;
	if (a == NULL)
		abort();
	bw_err e = engine_id(req, &id);
	if (e != BW_OK || (e = http_req_if_match(req, &im)) != BW_OK)
		return e;
	/* An action's body is optional: {} when none is sent. */
	if (req->body_len > 0 && (e = http_req_json(req, &body)) != BW_OK)
		return e;
	if (body == NULL && (body = json_object()) == NULL)
		return BW_ERR_NOMEM;
	for (size_t i = 0; i < im.n; i++) {
		if (i > 0)
			op_clear(&req->op);
		e = module_act(&req->op, m, a, id, body, im.version[i], &reply);
		if (e != BW_ERR_PRECONDITION)
			break;
	}
	json_decref(body);
	return e != BW_OK ? e : engine_reply(req, 200, reply, id);
}

/* How the allowlist treats an action (router_guard reads the route flags). */
static unsigned
engine_action_route_flags(unsigned flags)
{
	unsigned r = 0;
	if (flags & ACTION_DESTRUCTIVE)
		r |= ROUTE_DESTRUCTIVE;
	if (flags & ACTION_ADMIN)
		r |= ROUTE_ADMIN;
	if (flags & ACTION_ROUTINE)
		r |= ROUTE_ROUTINE;
	return r;
}

/* The CRUD routes of every module, in this order. */
static const struct {
	unsigned method;
	const char *suffix;
	route_handler h;
	const char *verb;
	unsigned flags;
	size_t body;
} engine_crud[] = {
    {HTTP_GET, "", engine_list, "view", 0, ROUTE_BODY_NONE},
    {HTTP_POST, "", engine_create, "create", 0, ROUTE_BODY_DEFAULT},
    {HTTP_GET, "/export", engine_export, "export", 0, ROUTE_BODY_NONE},
    {HTTP_GET, "/deleted", engine_deleted, "view", 0, ROUTE_BODY_NONE},
    {HTTP_GET, "/:id", engine_get, "view", 0, ROUTE_BODY_NONE},
    {HTTP_PATCH, "/:id", engine_update, "edit", 0, ROUTE_BODY_DEFAULT},
    {HTTP_DELETE, "/:id", engine_delete, "delete", ROUTE_DESTRUCTIVE, ROUTE_BODY_NONE},
    /* The row's audit trail: its permission is the audit log's, not the module's. */
    {HTTP_GET, "/:id/audit", audit_entity_trail, NULL, 0, ROUTE_BODY_NONE},
};

#define ENGINE_ACTION_BODY_MAX 16384

static void
engine_routes_build(void)
{
	size_t n = 0, i;
	for (i = 0; i < module_catalog_count; i++)
		n += BW_ARRAY_LEN(engine_crud) + module_catalog[i]->nactions;
	engine_routes = calloc(n ? n : 1, sizeof(*engine_routes));
	if (engine_routes == NULL)
		goto oom;
	for (i = 0; i < module_catalog_count; i++) {
		const struct module_desc *m = module_catalog[i];
		for (size_t c = 0; c < BW_ARRAY_LEN(engine_crud); c++) {
			struct route *r = &engine_routes[engine_nroutes++];
			r->method = engine_crud[c].method;
			r->pattern = engine_strf("/api/v1/%s%s", m->name, engine_crud[c].suffix);
			r->handler = engine_crud[c].h;
			r->flags = engine_crud[c].flags;
			r->permission = engine_crud[c].verb
					    ? engine_strf("%s.%s", m->name, engine_crud[c].verb)
					    : "audit.view";
			r->body_max = engine_crud[c].body;
			r->data = m;
			if (r->pattern == NULL || r->permission == NULL)
				goto oom;
		}
		for (size_t k = 0; k < m->nactions; k++) {
			const struct action_desc *a = &m->actions[k];
			struct route *r = &engine_routes[engine_nroutes++];
			r->method = HTTP_POST;
			r->pattern = engine_strf("/api/v1/%s/:id/%s", m->name, a->name);
			r->handler = engine_action;
			r->flags = engine_action_route_flags(a->flags);
			r->permission = engine_strf("%s.%s", m->name, a->name);
			r->body_max = ENGINE_ACTION_BODY_MAX;
			r->data = m;
			if (r->pattern == NULL || r->permission == NULL)
				goto oom;
		}
	}
	return;
oom:
	engine_init_err = BW_ERR_NOMEM;
}

bw_err
module_routes(const struct route **out, size_t *n)
{
	pthread_once(&engine_routes_once, engine_routes_build);
	*out = engine_routes;
	*n = engine_nroutes;
	return engine_init_err;
}
