/* The routes of a tenant's e-mail (notify_api.c). */
#ifndef BW_NOTIFY_API_H
#define BW_NOTIFY_API_H

#include "../http/http.h"

extern const struct route notify_routes[];
extern const size_t notify_routes_count;

#endif
