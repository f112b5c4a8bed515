/*
 * GET /api/v1/search: parse the query, run search_run as the caller,
 * reply with the list envelope (docs/http.md) and a Link to the next page.
 */
#include "search_api.h"

#include <stdio.h>
#include <string.h>

#include "search.h"

/* s percent-encoded for a query string (unreserved characters kept), in the pool. */
static char *
search_api_encode(pool *p, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = strlen(s);
	char *o = pool_alloc(p, 3 * n + 1), *w = o;
	if (o == NULL)
		return NULL;
	for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
		if ((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') ||
		    *c == '-' || *c == '_' || *c == '.' || *c == '~' || *c == ',') {
			*w++ = (char)*c;
		} else {
			*w++ = '%';
			*w++ = hex[*c >> 4];
			*w++ = hex[*c & 15];
		}
	}
	*w = '\0';
	return o;
}

bw_err
search_api_get(struct http_req *req)
{
	struct http_query hq;
	struct search_query sq = {.limit = SEARCH_LIMIT_DEFAULT};
	struct search_result res;
	bw_err e = http_query_parse(req, &hq);
	if (e != BW_OK)
		return e;
	for (size_t i = 0; i < hq.n; i++) {
		const char *k = hq.key[i], *v = hq.val[i];
		if (strcmp(k, "q") == 0) {
			sq.q = v;
		} else if (strcmp(k, "modules") == 0) {
			sq.modules = v;
		} else if (strcmp(k, "cursor") == 0) {
			sq.cursor = v;
		} else if (strcmp(k, "limit") == 0) {
			if (util_parse_long(v, 1, SEARCH_LIMIT_MAX, &sq.limit) != BW_OK)
				return response_error(req, BW_ERR_INVALID,
						      "query parameter 'limit' must be 1 to 100");
		} else {
			return response_error(
			    req, BW_ERR_INVALID,
			    pool_printf(req->pool, "unknown query parameter '%.64s' (q, modules, limit, "
						   "cursor)",
					k));
		}
	}
	if ((e = search_run(&req->op, &sq, &res)) != BW_OK)
		return e;
	if (res.next_cursor != NULL) {
		const char *q = search_api_encode(req->pool, sq.q);
		const char *mods = sq.modules ? search_api_encode(req->pool, sq.modules) : NULL;
		const char *link =
		    q == NULL ? NULL
			      : pool_printf(req->pool, "</api/v1/search?q=%s%s%s&limit=%ld&cursor=%s>; rel=\"next\"",
					    q, mods ? "&modules=" : "", mods ? mods : "", sq.limit,
					    res.next_cursor);
		if (link == NULL || (mods == NULL && sq.modules != NULL) ||
		    (e = response_header(req, "Link", link, 0)) != BW_OK) {
			json_decref(res.data);
			return e != BW_OK ? e : BW_ERR_NOMEM;
		}
	}
	return response_json(req, 200,
			     json_pack("{s:o, s:I, s:i, s:b, s:s?}", "data", res.data, "total",
				       (json_int_t)res.total, "limit", (int)sq.limit, "has_more",
				       res.has_more, "next_cursor", res.next_cursor));
}
