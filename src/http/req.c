/*
 * The request context's accessors: what a handler reaches through its
 * request (the server's services, the body, headers, route parameters).
 */
#include "http.h"

#include <microhttpd.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

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

/* --- If-Match and ETag (optimistic concurrency) ------------------------------- */

/* The If-Match field lines of a request, as MHD holds them (borrowed). */
struct req_if_match_lines {
	const char *v[HTTP_IF_MATCH_LINES];
	size_t len[HTTP_IF_MATCH_LINES];
	size_t n;
	int overflow;
};

static enum MHD_Result
req_if_match_field(void *cls, enum MHD_ValueKind kind, const char *key, size_t key_size,
		   const char *value, size_t value_size)
{
	struct req_if_match_lines *l = cls;
	(void)kind;
	if (key == NULL || key_size != 8 || strncasecmp(key, "If-Match", 8) != 0)
		return MHD_YES;
	if (l->n == HTTP_IF_MATCH_LINES) {
		l->overflow = 1;
		return MHD_NO;
	}
	l->v[l->n] = value != NULL ? value : "";
	l->len[l->n++] = value != NULL ? value_size : 0;
	return MHD_YES;
}

bw_err
http_req_if_match(struct http_req *req, struct http_if_match *out)
{
	struct req_if_match_lines l = {.n = 0};
	const char *why = NULL;
	out->n = 0;
	if (req->conn != NULL)
		MHD_get_connection_values_n(req->conn, MHD_HEADER_KIND, req_if_match_field, &l);
	if (l.overflow)
		return response_error(req, BW_ERR_INVALID, "If-Match: too many field lines");
	bw_err e = http_if_match_parse(l.v, l.len, l.n, out, &why);
	return e == BW_OK ? BW_OK : response_error(req, e, why);
}

bw_err
http_req_etag(struct http_req *req, int64_t version)
{
	char tag[24];
	if (version <= 0)
		return BW_OK; /* nothing versioned to name */
	snprintf(tag, sizeof(tag), "\"%lld\"", (long long)version);
	return response_header(req, "ETag", tag, 0);
}
