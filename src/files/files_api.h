/* files_api: the attachment routes of every module whose descriptor takes attachments. */
#ifndef BW_FILES_API_H
#define BW_FILES_API_H

#include "../http/http.h"

/* The routes (made once from the catalogue); BW_ERR_NOMEM. */
bw_err files_routes(const struct route **out, size_t *n) BW_MUST_USE;
/* GET /api/v1/files/usage and its kin: routes that belong to no module. */
extern const struct route files_usage_routes[];
extern const size_t files_usage_routes_count;

#endif
