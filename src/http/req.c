/*
 * The request context's accessors: what a handler reaches through its
 * request (the server's services, the body, headers, route parameters).
 */
#include "http.h"

#include <microhttpd.h>
#include <string.h>

const char *
http_req_header(const struct http_req *req, const char *name)
{
	return req->conn != NULL ? MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name)
				 : NULL;
}

bw_err
http_req_id(const struct http_req *req, const char *param, int64_t *out)
{
	*out = 0;
	for (size_t i = 0; i < req->nparams; i++) {
		if (strcmp(req->param_name[i], param) != 0)
			continue;
		long v;
		if (util_parse_long(req->param_value[i], 1, ROUTE_ID_MAX, &v) != BW_OK)
			return BW_ERR_NOTFOUND;
		*out = v;
		return BW_OK;
	}
	return BW_ERR_NOTFOUND;
}

bw_err
http_req_db(struct http_req *req, db **out)
{
	return op_db(&req->op, out);
}

const struct router *
http_req_router(const struct http_req *req)
{
	return req->svc->router;
}

const struct config *
http_req_config(const struct http_req *req)
{
	return req->svc->cfg;
}

struct tenancy *
http_req_tenancy(const struct http_req *req)
{
	return req->svc->ten;
}

struct auth_hasher *
http_req_hasher(const struct http_req *req)
{
	return req->svc->hasher;
}

int
http_req_login_allowed(struct http_req *req)
{
	return ratelimit_take(req->svc->login_rl, req->client_ip, util_now_us());
}

bw_err
http_req_json(struct http_req *req, json_t **out)
{
	json_error_t je;
	*out = NULL;
	if (req->body == NULL || req->body_len == 0)
		return response_error(req, BW_ERR_INVALID, "a JSON object body is required");
	json_t *j = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &je);
	if (j == NULL || !json_is_object(j)) {
		json_decref(j);
		return response_error(req, BW_ERR_INVALID, "the body is not a JSON object");
	}
	*out = j;
	return BW_OK;
}

