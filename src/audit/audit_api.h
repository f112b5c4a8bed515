/*
 * The audit log's routes: GET /api/v1/reporting/audit (and its export) and
 * the per-row trail every module route set has.
 */
#ifndef BW_AUDIT_API_H
#define BW_AUDIT_API_H

#include "../http/http.h"
#include "audit.h"

extern const struct route audit_routes[];
extern const size_t audit_routes_count;
/*
 * Handler for GET /api/v1/<module>/:id/audit: the route's module name is
 * taken from the path's third segment; the trail of that one row.
 */
bw_err audit_entity_trail(struct http_req *req);

#endif
