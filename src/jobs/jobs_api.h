/* The background jobs through the API, for the tenant's admins (docs/jobs.md). */
#ifndef BW_JOBS_API_H
#define BW_JOBS_API_H

#include "../http/http.h"

extern const struct route jobs_routes[];
extern const size_t jobs_routes_count;

#endif
