/*
 * Webhooks through the API (docs/webhooks.md): each handler parses, runs
 * an operation of src/webhooks and replies. Changes are admin requests:
 * the IP allowlist applies.
 */
#include "webhooks_api.h"

#include <stdlib.h>
#include <string.h>

#include "../events/events.h"
#include "webhooks.h"

static int64_t
wh_path_id(struct http_req *req, const char *name)
{
	int64_t v;
	return http_req_id(req, name, &v) == BW_OK ? v : 0;
}

static bw_err
wh_notfound(struct http_req *req, const char *what)
{
	return op_fail(&req->op, BW_ERR_NOTFOUND, what);
}

static bw_err
wh_event_types(struct http_req *req)
{
	json_t *a = events_catalog();
	if (a == NULL)
		return BW_ERR_NOMEM;
	return response_json(req, 200, json_pack("{s:o}", "data", a));
}

static bw_err
wh_list(struct http_req *req)
{
	json_t *a;
	bw_err e = webhook_sub_list(&req->op, &a);
	if (e != BW_OK)
		return e;
	return response_json(req, 200, json_pack("{s:o}", "data", a));
}

static bw_err
wh_create(struct http_req *req)
{
	json_t *in, *o;
	bw_err e = http_req_json(req, &in);
	if (e != BW_OK)
		return e;
	e = webhook_sub_create(&req->op, in, &o);
	json_decref(in);
	return e == BW_OK ? http_reply_versioned(req, 201, o) : e;
}

static bw_err
wh_show(struct http_req *req)
{
	int64_t id = wh_path_id(req, "id");
	json_t *o;
	if (id == 0)
		return wh_notfound(req, "no such webhook subscription");
	bw_err e = webhook_sub_get(&req->op, id, &o);
	return e == BW_OK ? http_reply_versioned(req, 200, o) : e;
}

static bw_err
wh_update(struct http_req *req)
{
	struct http_if_match im;
	int64_t id = wh_path_id(req, "id");
	json_t *in, *o = NULL;
	if (id == 0)
		return wh_notfound(req, "no such webhook subscription");
	bw_err e = http_req_if_match(req, &im);
	if (e != BW_OK || (e = http_req_json(req, &in)) != BW_OK)
		return e;
	for (size_t i = 0; i < im.n; i++) {
		if (i > 0)
			op_clear(&req->op);
		e = webhook_sub_update(&req->op, id, in, im.version[i], &o);
		if (e != BW_ERR_PRECONDITION)
			break;
	}
	json_decref(in);
	return e == BW_OK ? http_reply_versioned(req, 200, o) : e;
}

static bw_err
wh_delete(struct http_req *req)
{
	struct http_if_match im;
	int64_t id = wh_path_id(req, "id");
	if (id == 0)
		return wh_notfound(req, "no such webhook subscription");
	bw_err e = http_req_if_match(req, &im);
	if (e != BW_OK)
		return e;
	for (size_t i = 0; i < im.n; i++) {
		if (i > 0)
			op_clear(&req->op);
		e = webhook_sub_delete(&req->op, id, im.version[i]);
		if (e != BW_ERR_PRECONDITION)
			break;
	}
	if (e != BW_OK)
		return e;
	return response_json(req, 200, json_pack("{s:I, s:b}", "id", (json_int_t)id, "deleted", 1));
}

static bw_err
wh_rotate(struct http_req *req)
{
	int64_t id = wh_path_id(req, "id"), overlap = 86400;
	json_t *in = NULL, *o;
	if (id == 0)
		return wh_notfound(req, "no such webhook subscription");
	if (req->body_len > 0) {
		bw_err e = http_req_json(req, &in);
		if (e != BW_OK)
			return e;
		const char *key;
		json_t *v;
		json_object_foreach(in, key, v)
		{
			if (strcmp(key, "overlap_seconds") != 0 || !json_is_integer(v)) {
				json_decref(in);
				return op_fail(&req->op, BW_ERR_INVALID,
					       "the body takes one member, overlap_seconds (an integer)");
			}
			overlap = json_integer_value(v);
		}
		json_decref(in);
	}
	bw_err e = webhook_sub_rotate(&req->op, id, overlap, &o);
	return e == BW_OK ? http_reply_versioned(req, 200, o) : e;
}

static bw_err
wh_deliveries_list(struct http_req *req)
{
	struct http_query q;
	int64_t id = wh_path_id(req, "id");
	long before = 0, limit = 50;
	json_t *a;
	if (id == 0)
		return wh_notfound(req, "no such webhook subscription");
	bw_err e = http_query_parse(req, &q);
	for (size_t i = 0; e == BW_OK && i < q.n; i++) {
		if (strcmp(q.key[i], "before") == 0)
			e = util_parse_long(q.val[i], 1, INT64_MAX, &before);
		else if (strcmp(q.key[i], "limit") == 0)
			e = util_parse_long(q.val[i], 1, 200, &limit);
		else
			e = BW_ERR_INVALID;
		if (e != BW_OK)
			return op_fail(&req->op, BW_ERR_INVALID,
				       "query parameters: before (a delivery id) and limit (1-200)");
	}
	if (e != BW_OK || (e = webhook_deliveries(&req->op, id, before, (int)limit, &a)) != BW_OK)
		return e;
	size_t n = json_array_size(a);
	json_t *last = n > 0 ? json_object_get(json_array_get(a, n - 1), "id") : NULL;
	return response_json(req, 200,
			     json_pack("{s:o, s:O?}", "data", a, "next_before",
				       (long)n == limit ? last : NULL));
}

static bw_err
wh_redeliver(struct http_req *req)
{
	int64_t id = wh_path_id(req, "id"), did = wh_path_id(req, "did");
	if (id == 0 || did == 0)
		return wh_notfound(req, "no such delivery of this subscription");
	bw_err e = webhook_redeliver(&req->op, id, did);
	if (e != BW_OK)
		return e;
	return response_json(req, 202,
			     json_pack("{s:I, s:s}", "id", (json_int_t)did, "state", "pending"));
}

/* --- inbound endpoints ----------------------------------------------------------- */

static bw_err
hk_list(struct http_req *req)
{
	json_t *a;
	bw_err e = hook_endpoint_list(&req->op, &a);
	if (e != BW_OK)
		return e;
	return response_json(req, 200, json_pack("{s:o}", "data", a));
}

static bw_err
hk_create(struct http_req *req)
{
	json_t *in, *o;
	bw_err e = http_req_json(req, &in);
	if (e != BW_OK)
		return e;
	e = hook_endpoint_create(&req->op, in, &o);
	json_decref(in);
	return e == BW_OK ? http_reply_versioned(req, 201, o) : e;
}

static bw_err
hk_update(struct http_req *req)
{
	int64_t id = wh_path_id(req, "id");
	json_t *in, *o;
	if (id == 0)
		return wh_notfound(req, "no such inbound endpoint");
	bw_err e = http_req_json(req, &in);
	if (e != BW_OK)
		return e;
	e = hook_endpoint_update(&req->op, id, in, &o);
	json_decref(in);
	return e == BW_OK ? http_reply_versioned(req, 200, o) : e;
}

static bw_err
hk_delete(struct http_req *req)
{
	int64_t id = wh_path_id(req, "id");
	if (id == 0)
		return wh_notfound(req, "no such inbound endpoint");
	bw_err e = hook_endpoint_delete(&req->op, id);
	if (e != BW_OK)
		return e;
	return response_json(req, 200, json_pack("{s:I, s:b}", "id", (json_int_t)id, "deleted", 1));
}

/* What a provider posts: verified, recorded, then 2xx (never before it is durable). */
static bw_err
hk_receive(struct http_req *req)
{
	const struct config *cfg = req->op.cfg;
	const char *provider = NULL, *endpoint = NULL;
	for (size_t i = 0; i < req->nparams; i++) {
		if (strcmp(req->param_name[i], "provider") == 0)
			provider = req->param_value[i];
		else if (strcmp(req->param_name[i], "endpoint") == 0)
			endpoint = req->param_value[i];
	}
	struct hook_request r = {
	    .provider = provider,
	    .endpoint = endpoint,
	    .body = req->body != NULL ? req->body : "",
	    .len = req->body_len,
	    .body_max = cfg->webhooks_inbound_body_max,
	    .tolerance = cfg->webhooks_inbound_tolerance,
	    .stripe_signature = http_req_header(req, "Stripe-Signature"),
	    .intuit_signature = http_req_header(req, "intuit-signature"),
	    .wh_id = http_req_header(req, "webhook-id"),
	    .wh_timestamp = http_req_header(req, "webhook-timestamp"),
	    .wh_signature = http_req_header(req, "webhook-signature"),
	};
	int dup = 0;
	bw_err e = hook_receive(&req->op, &r, &dup);
	if (e != BW_OK)
		return e;
	return response_json(req, 200, json_pack("{s:b, s:b}", "received", 1, "duplicate", dup));
}

const struct route webhooks_routes[] = {
    {HTTP_GET, "/api/v1/webhooks/event-types", wh_event_types, 0, "webhooks.view", ROUTE_BODY_NONE},
    {HTTP_GET, "/api/v1/webhooks", wh_list, 0, "webhooks.view", ROUTE_BODY_NONE},
    {HTTP_POST, "/api/v1/webhooks", wh_create, ROUTE_ADMIN, "webhooks.manage", 16384},
    {HTTP_GET, "/api/v1/webhooks/:id", wh_show, 0, "webhooks.view", ROUTE_BODY_NONE},
    {HTTP_PATCH, "/api/v1/webhooks/:id", wh_update, ROUTE_ADMIN, "webhooks.manage", 16384},
    {HTTP_DELETE, "/api/v1/webhooks/:id", wh_delete, ROUTE_ADMIN | ROUTE_DESTRUCTIVE,
     "webhooks.manage", ROUTE_BODY_NONE},
    {HTTP_POST, "/api/v1/webhooks/:id/rotate-secret", wh_rotate, ROUTE_ADMIN, "webhooks.manage",
     1024},
    {HTTP_GET, "/api/v1/webhooks/:id/deliveries", wh_deliveries_list, 0, "webhooks.view",
     ROUTE_BODY_NONE},
    {HTTP_POST, "/api/v1/webhooks/:id/deliveries/:did/redeliver", wh_redeliver, ROUTE_ADMIN,
     "webhooks.manage", ROUTE_BODY_NONE},
    {HTTP_GET, "/api/v1/hook-endpoints", hk_list, 0, "webhooks.view", ROUTE_BODY_NONE},
    {HTTP_POST, "/api/v1/hook-endpoints", hk_create, ROUTE_ADMIN, "webhooks.manage", 8192},
    {HTTP_PATCH, "/api/v1/hook-endpoints/:id", hk_update, ROUTE_ADMIN, "webhooks.manage", 8192},
    {HTTP_DELETE, "/api/v1/hook-endpoints/:id", hk_delete, ROUTE_ADMIN | ROUTE_DESTRUCTIVE,
     "webhooks.manage", ROUTE_BODY_NONE},
    {HTTP_POST, "/api/v1/hooks/:provider/:endpoint", hk_receive, ROUTE_PUBLIC, NULL,
     HOOKS_ROUTE_BODY_MAX},
};
const size_t webhooks_routes_count = BW_ARRAY_LEN(webhooks_routes);
