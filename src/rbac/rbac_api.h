/*
 * The roles routes: /api/v1/roles... (the users routes are in src/users/users_api.h).
 */
#ifndef BW_RBAC_API_H
#define BW_RBAC_API_H

#include "../http/http.h"
#include "rbac.h"

extern const struct route rbac_routes[];
extern const size_t rbac_routes_count;

#endif
