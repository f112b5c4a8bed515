/*
 * The support mailbox (intake.h): GET/PUT /api/v1/settings/mailbox, POST
 * /api/v1/settings/mailbox/poll, and the log of messages taken, GET
 * /api/v1/mail/inbound.
 */
#include "intake_api.h"

#include <string.h>

#include "intake.h"

static bw_err
intake_api_get(struct http_req *req)
{
	json_t *o;
	bw_err e = intake_settings_get(&req->op, &o);
	return e != BW_OK ? e : response_json(req, 200, o);
}

static bw_err
intake_api_put(struct http_req *req)
{
	json_t *in, *o = NULL;
	bw_err e = http_req_json(req, &in);
	if (e != BW_OK)
		return e;
	e = intake_settings_put(&req->op, in, &o);
	json_decref(in);
	return e != BW_OK ? e : response_json(req, 200, o);
}

static bw_err
intake_api_poll(struct http_req *req)
{
	bw_err e = BW_OK;
	if (req->body_len > 0) {
		/* No body, or an empty object: nothing to say to a poll. */
		json_t *in = NULL;
		static const char *const none[] = {NULL};
		if ((e = http_req_json(req, &in)) != BW_OK)
			return e;
		e = op_known_fields(&req->op, in, none);
		json_decref(in);
		if (e != BW_OK)
			return e;
	}
	e = intake_poll_soon(&req->op);
	return e != BW_OK ? e : response_json(req, 202, json_pack("{s:b}", "queued", 1));
}

/* Newest first, in pages; outcome filters. */
static bw_err
intake_api_list(struct http_req *req)
{
	static const char *const outcomes[] = {"ticket", "comment", "ignored", "refused"};
	struct http_query q;
	struct page p;
	const char *outcome = "";
	int64_t ids[PAGE_LIMIT_MAX];
	size_t n = 0;
	page_init(&p);
	bw_err e = http_query_parse(req, &q);
	for (size_t i = 0; e == BW_OK && i < q.n; i++) {
		int taken = 0, ok = 0;
		if (strcmp(q.key[i], "outcome") == 0) {
			for (size_t k = 0; k < BW_ARRAY_LEN(outcomes); k++)
				ok |= strcmp(q.val[i], outcomes[k]) == 0;
			if (!ok)
				return op_fail(&req->op, BW_ERR_INVALID,
					       "outcome is one of ticket, comment, ignored, refused");
			outcome = q.val[i];
		} else if ((e = page_param(req, &p, q.key[i], q.val[i], &taken)) == BW_OK && !taken)
			return op_fail(&req->op, BW_ERR_INVALID,
				       pool_printf(req->pool,
						   "unknown query parameter '%.64s' (outcome, limit, "
						   "cursor)",
						   q.key[i]));
	}
	struct db_arg a[] = {DB_TEXT(outcome), DB_TEXT(outcome)};
	if (e != BW_OK || (e = page_order(req, &p, "-id", "id", 1, PAGE_INT)) != BW_OK ||
	    (e = page_ids(req, &p, "mail_inbound", "(? = '' OR outcome = ?)", a, 2, ids, &n)) !=
		BW_OK)
		return e;
	return page_reply_ids(req, &p, &q, ids, n, intake_get);
}

const struct route intake_routes[] = {
    {HTTP_GET, "/api/v1/settings/mailbox", intake_api_get, ROUTE_ADMIN, "settings.view",
     ROUTE_BODY_NONE},
    {HTTP_PUT, "/api/v1/settings/mailbox", intake_api_put, ROUTE_ADMIN | ROUTE_DESTRUCTIVE,
     "settings.edit", 16384},
    {HTTP_POST, "/api/v1/settings/mailbox/poll", intake_api_poll, ROUTE_ADMIN, "settings.edit",
     1024},
    {HTTP_GET, "/api/v1/mail/inbound", intake_api_list, ROUTE_ADMIN, "settings.view",
     ROUTE_BODY_NONE},
};
const size_t intake_routes_count = BW_ARRAY_LEN(intake_routes);
