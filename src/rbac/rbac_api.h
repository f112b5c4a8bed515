/*
 * The roles and users routes: /api/v1/roles..., /api/v1/users...
 */
#ifndef BW_RBAC_API_H
#define BW_RBAC_API_H

#include "../http/http.h"
#include "rbac.h"

extern const struct route rbac_routes[];
extern const size_t rbac_routes_count;

#endif
