/* The routes of the support mailbox (intake_api.c). */
#ifndef BW_INTAKE_API_H
#define BW_INTAKE_API_H

#include "../http/http.h"

extern const struct route intake_routes[];
extern const size_t intake_routes_count;

#endif
