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


/* Read limit and cursor; any other parameter is refused (BW_ERR_INVALID recorded). */
static bw_err
wh_page_params(struct http_req *req, struct http_query *q, struct page *p)
{
	page_init(p);
	bw_err e = http_query_parse(req, q);
	for (size_t i = 0; e == BW_OK && i < q->n; i++) {
		int taken = 0;
		if ((e = page_param(req, p, q->key[i], q->val[i], &taken)) == BW_OK && !taken)
			return op_fail(&req->op, BW_ERR_INVALID,
				       pool_printf(req->pool,
						   "unknown query parameter '%.64s' (limit, cursor)",
						   q->key[i]));
	}
	return e;
}

/* One page of the rows "SELECT id FROM from WHERE filter", each shown by get(op, ctx, id). */
static bw_err
wh_page(struct http_req *req, struct http_query *q, struct page *p, const char *from,
	const char *filter, const struct db_arg *args, size_t nargs, int desc,
	bw_err (*get)(struct op *, int64_t, int64_t, json_t **), int64_t ctx)
{
	int64_t ids[PAGE_LIMIT_MAX];
	size_t n = 0;
	bw_err e = page_order(req, p, desc ? "-id" : "id", "id", desc, PAGE_INT);
	if (e != BW_OK || (e = page_ids(req, p, from, filter, args, nargs, ids, &n)) != BW_OK)
		return e;
	json_t *list = json_array();
	if (list == NULL)
		return BW_ERR_NOMEM;
	for (size_t i = 0; i < n; i++) {
		json_t *o;
		if ((e = get(&req->op, ctx, ids[i], &o)) == BW_ERR_NOTFOUND) {
			op_clear(&req->op); /* deleted since the page was read */
			continue;
		}
		if (e != BW_OK || json_array_append_new(list, o) != 0) {
			json_decref(list);
			return e != BW_OK ? e : BW_ERR_NOMEM;
		}
	}
	return page_reply(req, p, q, list);
}

static bw_err
wh_get_sub(struct op *op, int64_t ctx, int64_t id, json_t **out)
{
	(void)ctx;
	return webhook_sub_get(op, id, out);
}

static bw_err
wh_get_endpoint(struct op *op, int64_t ctx, int64_t id, json_t **out)
{
	(void)ctx;
	return hook_endpoint_get(op, id, out);
}

static bw_err
wh_get_delivery(struct op *op, int64_t sub, int64_t id, json_t **out)
{
	return webhook_delivery_get(op, sub, id, out);
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
	struct http_query q;
	struct page p;
	bw_err e = wh_page_params(req, &q, &p);
	if (e != BW_OK)
		return e;
	return wh_page(req, &q, &p, "webhook_subscriptions", "1 = 1", NULL, 0, 0, wh_get_sub, 0);
}

/* A create: the JSON body to an operation, its object the 201. */
static bw_err
wh_create_with(struct http_req *req, bw_err (*create)(struct op *, json_t *, json_t **))
{
	json_t *in, *o;
	bw_err e = http_req_json(req, &in);
	if (e != BW_OK)
		return e;
	e = create(&req->op, in, &o);
	json_decref(in);
	return e == BW_OK ? http_reply_versioned(req, 201, o) : e;
}

static bw_err
wh_create(struct http_req *req)
{
	return wh_create_with(req, webhook_sub_create);
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
	struct page p;
	int64_t id = wh_path_id(req, "id");
	json_t *sub;
	if (id == 0)
		return wh_notfound(req, "no such webhook subscription");
	bw_err e = webhook_sub_get(&req->op, id, &sub);
	if (e != BW_OK)
		return e;
	json_decref(sub);
	if ((e = wh_page_params(req, &q, &p)) != BW_OK)
		return e;
	struct db_arg a[] = {DB_INT(id)};
	return wh_page(req, &q, &p, "webhook_deliveries", "subscription_id = ?", a, 1, 1,
		       wh_get_delivery, id);
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
	struct http_query q;
	struct page p;
	bw_err e = wh_page_params(req, &q, &p);
	if (e != BW_OK)
		return e;
	return wh_page(req, &q, &p, "hook_endpoints", "1 = 1", NULL, 0, 0, wh_get_endpoint, 0);
}

static bw_err
hk_show(struct http_req *req)
{
	int64_t id = wh_path_id(req, "id");
	json_t *o;
	if (id == 0)
		return wh_notfound(req, "no such inbound endpoint");
	bw_err e = hook_endpoint_get(&req->op, id, &o);
	return e == BW_OK ? http_reply_versioned(req, 200, o) : e;
}

static bw_err
hk_create(struct http_req *req)
{
	return wh_create_with(req, hook_endpoint_create);
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
	/* Well-formed JSON (an object, no key twice) like every body, before anything else. */
	json_t *in;
	bw_err e = http_req_json(req, &in);
	if (e != BW_OK)
		return e;
	json_decref(in);
	int dup = 0;
	e = hook_receive(&req->op, &r, &dup);
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
    {HTTP_GET, "/api/v1/hook-endpoints/:id", hk_show, 0, "webhooks.view", ROUTE_BODY_NONE},
    {HTTP_PATCH, "/api/v1/hook-endpoints/:id", hk_update, ROUTE_ADMIN, "webhooks.manage", 8192},
    {HTTP_DELETE, "/api/v1/hook-endpoints/:id", hk_delete, ROUTE_ADMIN | ROUTE_DESTRUCTIVE,
     "webhooks.manage", ROUTE_BODY_NONE},
    {HTTP_POST, "/api/v1/hooks/:provider/:endpoint", hk_receive, ROUTE_PUBLIC, NULL,
     HOOKS_ROUTE_BODY_MAX},
};
const size_t webhooks_routes_count = BW_ARRAY_LEN(webhooks_routes);
