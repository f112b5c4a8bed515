/*
 * What the web UI renders from: every module's fields, types, limits,
 * flags and actions (GET /api/v1/meta/modules), and the permission
 * catalogue derived from the live route table (GET /api/v1/meta/permissions),
 * so every permission listed is one a real route checks.
 */
#include "module_api.h"

#include <string.h>

#include "../rbac/rbac.h"

static const char *const meta_types[] = {
    [FT_STRING] = "string", [FT_TEXT] = "text", [FT_INT] = "integer", [FT_MONEY] = "money",
    [FT_BOOL] = "boolean",  [FT_ENUM] = "enum", [FT_REF] = "reference", [FT_DATE] = "date",
    [FT_EMAIL] = "email",
};

static json_t *
meta_field(const struct field_desc *f)
{
	json_t *o = json_pack("{s:s, s:s, s:s, s:b, s:b, s:b, s:b, s:b, s:b, s:b, s:b}", "name",
			      f->name, "label", f->label ? f->label : f->name, "type",
			      meta_types[f->type], "required", (f->flags & FF_REQUIRED) != 0,
			      "encrypted", (f->flags & FF_ENCRYPTED) != 0, "pii",
			      (f->flags & FF_PII) != 0, "sortable", (f->flags & FF_SORT) != 0,
			      "filterable", (f->flags & FF_FILTER) != 0, "read_only",
			      (f->flags & (FF_READONLY | FF_ACTION)) != 0, "immutable",
			      (f->flags & FF_IMMUTABLE) != 0, "write_only",
			      (f->flags & FF_WRITEONLY) != 0);
	if (o == NULL)
		return NULL;
	if (f->type == FT_STRING || f->type == FT_TEXT || f->type == FT_EMAIL)
		json_object_set_new(o, "max_length", json_integer(f->max_len));
	if (f->type == FT_INT) {
		json_object_set_new(o, "min", json_integer(f->min));
		json_object_set_new(o, "max", json_integer(f->max));
	}
	if (f->type == FT_REF)
		json_object_set_new(o, "references", json_string(f->ref));
	if (f->type == FT_ENUM) {
		json_t *a = json_array();
		for (const char *const *e = f->enum_values; e && *e; e++)
			json_array_append_new(a, json_string(*e));
		json_object_set_new(o, "values", a);
	}
	if (f->def != NULL)
		json_object_set_new(o, "default", json_string(f->def));
	return o;
}

static bw_err
meta_modules(struct http_req *req)
{
	json_t *list = json_array();
	for (size_t i = 0; list != NULL && i < module_catalog_count; i++) {
		const struct module_desc *m = module_catalog[i];
		json_t *fields = json_array(), *actions = json_array();
		for (size_t k = 0; k < m->nfields; k++)
			json_array_append_new(fields, meta_field(&m->fields[k]));
		for (size_t k = 0; k < m->nactions; k++)
			json_array_append_new(
			    actions, json_pack("{s:s, s:s, s:s++}", "name", m->actions[k].name, "label",
					       m->actions[k].label, "permission", m->name, ".",
					       m->actions[k].name));
		json_array_append_new(
		    list, json_pack("{s:s, s:s, s:s?, s:o, s:o, s:s}", "name", m->name, "label",
				    m->label, "parent", m->parent, "fields", fields, "actions",
				    actions, "path", pool_printf(req->pool, "/api/v1/%s", m->name)));
	}
	if (list == NULL)
		return BW_ERR_NOMEM;
	return response_json(req, 200, json_pack("{s:o}", "modules", list));
}

static bw_err
meta_permissions(struct http_req *req)
{
	const char *const *perms;
	size_t n;
	bw_err e = rbac_catalog(&req->op, &perms, &n);
	if (e != BW_OK)
		return e;
	const struct router *rt = http_req_router(req);
	size_t nr = router_count(rt);
	char method[16];
	json_t *list = json_array();
	for (size_t i = 0; list != NULL && i < n; i++) {
		json_t *routes = json_array();
		for (size_t k = 0; k < nr; k++) {
			const struct route *r = router_route(rt, k);
			if (r->permission == NULL || strcmp(r->permission, perms[i]) != 0)
				continue;
			router_allow_string(r->method, method, sizeof(method));
			json_array_append_new(routes, json_sprintf("%s %s", method, r->pattern));
		}
		const char *dot = strchr(perms[i], '.');
		json_array_append_new(
		    list, json_pack("{s:s, s:s%, s:o}", "permission", perms[i], "scope", perms[i],
				    dot ? (size_t)(dot - perms[i]) : strlen(perms[i]), "routes",
				    routes));
	}
	if (list == NULL)
		return BW_ERR_NOMEM;
	return response_json(req, 200,
			     json_pack("{s:o, s:i}", "permissions", list, "count", (int)n));
}

/* Any signed-in user may read the metadata: it says what exists, not what is in it. */
const struct route module_meta_routes[] = {
	{HTTP_GET, "/api/v1/meta/modules", meta_modules, 0, "self.view", ROUTE_BODY_NONE},
	{HTTP_GET, "/api/v1/meta/permissions", meta_permissions, 0, "self.view", ROUTE_BODY_NONE},
};
const size_t module_meta_routes_count = BW_ARRAY_LEN(module_meta_routes);
