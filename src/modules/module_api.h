/*
 * The module engine's HTTP side: the routes every module gets (list,
 * create, read, update, delete, export, its actions) and the metadata
 * routes. Handlers parse the request and call the operations of module.h.
 */
#ifndef BW_MODULE_API_H
#define BW_MODULE_API_H

#include "../http/http.h"
#include "module.h"

/*
 * The routes of every module in the catalogue, built once (they live until
 * exit): list, create, read, update, delete, export and each action.
 */
bw_err module_routes(const struct route **out, size_t *n) BW_MUST_USE;

/* GET /api/v1/meta/modules and GET /api/v1/meta/permissions. */
extern const struct route module_meta_routes[];
extern const size_t module_meta_routes_count;

/* list_api.c, for module_api.c: GET /api/v1/<module> and its /export. */
bw_err engine_list(struct http_req *req) BW_MUST_USE;
/* GET /api/v1/<module>/deleted: tombstones (id, deleted_at) from the audit log. */
bw_err engine_deleted(struct http_req *req) BW_MUST_USE;
bw_err engine_export(struct http_req *req) BW_MUST_USE;

#endif
