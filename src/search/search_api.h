/*
 * search over HTTP: GET /api/v1/search?q=&modules=&limit=&cursor=
 * (permission search.view; what it finds is limited further by search.h).
 */
#ifndef BW_SEARCH_API_H
#define BW_SEARCH_API_H

#include "../http/http.h"

/* The handler of GET /api/v1/search: the list envelope of search_run's hits. */
bw_err search_api_get(struct http_req *req) BW_MUST_USE;

#endif
