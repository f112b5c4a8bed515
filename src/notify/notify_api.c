/* The delivery log of a tenant's e-mail: GET /api/v1/mail/outbox (notify.h). */
#include "notify_api.h"

#include <string.h>

#include "notify.h"

/* Newest first, in pages; state filters. */
static bw_err
notify_api_list(struct http_req *req)
{
	static const char *const states[] = {"queued", "sent", "failed"};
	struct http_query q;
	struct page p;
	const char *state = "";
	int64_t ids[PAGE_LIMIT_MAX];
	size_t n = 0;
	page_init(&p);
	bw_err e = http_query_parse(req, &q);
	for (size_t i = 0; e == BW_OK && i < q.n; i++) {
		int taken = 0, ok = 0;
		if (strcmp(q.key[i], "state") == 0) {
			for (size_t k = 0; k < BW_ARRAY_LEN(states); k++)
				ok |= strcmp(q.val[i], states[k]) == 0;
			if (!ok)
				return op_fail(&req->op, BW_ERR_INVALID,
					       "state is one of queued, sent, failed");
			state = q.val[i];
		} else if ((e = page_param(req, &p, q.key[i], q.val[i], &taken)) == BW_OK && !taken)
			return op_fail(&req->op, BW_ERR_INVALID,
				       pool_printf(req->pool,
						   "unknown query parameter '%.64s' (state, limit, cursor)",
						   q.key[i]));
	}
	struct db_arg a[] = {DB_TEXT(state), DB_TEXT(state)};
	if (e != BW_OK || (e = page_order(req, &p, "-id", "id", 1, PAGE_INT)) != BW_OK ||
	    (e = page_ids(req, &p, "mail_outbox", "(? = '' OR state = ?)", a, 2, ids, &n)) != BW_OK)
		return e;
	return page_reply_ids(req, &p, &q, ids, n, notify_get);
}

static bw_err
notify_api_settings_get(struct http_req *req)
{
	json_t *o;
	bw_err e = notify_settings_get(&req->op, &o);
	return e != BW_OK ? e : response_json(req, 200, o);
}

static bw_err
notify_api_settings_put(struct http_req *req)
{
	json_t *in, *o = NULL;
	bw_err e = http_req_json(req, &in);
	if (e != BW_OK)
		return e;
	e = notify_settings_put(&req->op, in, &o);
	json_decref(in);
	return e != BW_OK ? e : response_json(req, 200, o);
}

static bw_err
notify_api_test(struct http_req *req)
{
	json_t *in;
	int64_t id = 0;
	bw_err e = http_req_json(req, &in);
	if (e != BW_OK)
		return e;
	static const char *const known[] = {"to", NULL};
	if ((e = op_known_fields(&req->op, in, known)) == BW_OK)
		e = notify_test(&req->op, json_string_value(json_object_get(in, "to")), &id);
	json_decref(in);
	return e != BW_OK ? e : response_json(req, 202, json_pack("{s:I}", "mail_id", (json_int_t)id));
}

const struct route notify_routes[] = {
    {HTTP_GET, "/api/v1/settings/mail", notify_api_settings_get, ROUTE_ADMIN, "settings.view",
     ROUTE_BODY_NONE},
    {HTTP_PUT, "/api/v1/settings/mail", notify_api_settings_put, ROUTE_ADMIN | ROUTE_DESTRUCTIVE,
     "settings.edit", 16384},
    {HTTP_POST, "/api/v1/settings/mail/test", notify_api_test, ROUTE_ADMIN, "settings.edit", 4096},
    {HTTP_GET, "/api/v1/mail/outbox", notify_api_list, ROUTE_ADMIN, "settings.view",
     ROUTE_BODY_NONE},
};
const size_t notify_routes_count = BW_ARRAY_LEN(notify_routes);
