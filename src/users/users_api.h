/*
 * The users routes: /api/v1/users... (their tokens, sessions and unlock
 * are identity's, in src/auth/auth_api.h).
 */
#ifndef BW_USERS_API_H
#define BW_USERS_API_H

#include "../http/http.h"

extern const struct route users_routes[];
extern const size_t users_routes_count;

#endif
