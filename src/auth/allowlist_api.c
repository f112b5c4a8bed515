/*
 * The admin IP allowlist's routes: GET and PUT /api/v1/settings/allowlist.
 * The list itself and the check are in allowlist.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/netaddr.h"
#include "auth_api.h"

#define ALLOWLIST_ENTRIES_MAX 256
#define ALLOWLIST_CIDR_MAX 63   /* bytes of an address range as text */
#define ALLOWLIST_LABEL_MAX 100 /* bytes of a label */

static bw_err
allowlist_get(struct http_req *req)
{
	db *d;
	json_t *list = NULL;
	bw_err e = http_req_db(req, &d);
	if (e != BW_OK)
		return e;
	int guard_all = allowlist_guard_all(d);
	if (guard_all < 0 || allowlist_entries(d, &list) != BW_OK)
		return response_error(req, BW_ERR_UNAVAILABLE, NULL);
	return response_json(req, 200,
			     json_pack("{s:o, s:b, s:s}", "entries", list, "guard_all_changes",
				       guard_all, "your_address", req->client_ip));
}

/*
 * Replace the list, and with "guard_all_changes" (a boolean; left as it was
 * when absent, so a client that only knows the list never turns it off)
 * whether every change is held to it. A list that would exclude the
 * caller's own address needs "confirm_self_lockout": true (the operator can
 * always clear it with `bulwark tenant allowlist clear SLUG`).
 */
static bw_err
allowlist_put(struct http_req *req)
{
	json_t *in, *entries, *v;
	size_t i;
	int includes_caller = 0;
	struct netaddr caller;
	bw_err e = http_req_json(req, &in);
	if (e != BW_OK)
		return e;
	entries = json_object_get(in, "entries");
	if (!json_is_array(entries) || json_array_size(entries) > ALLOWLIST_ENTRIES_MAX) {
		json_decref(in);
		return response_error(req, BW_ERR_INVALID,
				      pool_printf(req->pool, "entries: an array of at most %d {cidr, label}",
						  ALLOWLIST_ENTRIES_MAX));
	}
	json_t *guard = json_object_get(in, "guard_all_changes");
	if (guard != NULL && !json_is_boolean(guard)) {
		json_decref(in);
		return response_error(req, BW_ERR_INVALID, "guard_all_changes: a boolean");
	}
	int have_caller = netaddr_parse(req->client_ip, &caller) == BW_OK;
	json_array_foreach(entries, i, v)
	{
		const char *cidr = api_str(v, "cidr", ALLOWLIST_CIDR_MAX),
			   *label = api_str(v, "label", ALLOWLIST_LABEL_MAX);
		struct netrange r;
		if (cidr == NULL || netrange_parse(cidr, &r) != BW_OK) {
			const char *msg = pool_printf(req->pool,
						      "entries[%zu].cidr: not an IPv4/IPv6 address or range "
						      "(no host bits past the prefix)",
						      i);
			json_decref(in);
			return response_error(req, BW_ERR_INVALID, msg);
		}
		if (json_object_get(v, "label") != NULL && label == NULL) {
			json_decref(in);
			return response_error(req, BW_ERR_INVALID,
					      pool_printf(req->pool, "label: a string of at most %d bytes",
							  ALLOWLIST_LABEL_MAX));
		}
		if (have_caller && netrange_contains(&r, &caller))
			includes_caller = 1;
	}
	if (json_array_size(entries) > 0 && !includes_caller &&
	    !json_is_true(json_object_get(in, "confirm_self_lockout"))) {
		json_decref(in);
		return response_error(req, BW_ERR_CONFLICT,
				      "this list leaves out your own address; send "
				      "\"confirm_self_lockout\": true to save it anyway");
	}
	e = allowlist_replace(&req->op, entries, guard == NULL ? -1 : json_is_true(guard));
	json_decref(in);
	if (e != BW_OK)
		return e;
	return allowlist_get(req);
}

const struct route allowlist_routes[] = {
	{HTTP_GET, "/api/v1/settings/allowlist", allowlist_get, ROUTE_ADMIN, "settings.view",
	 ROUTE_BODY_NONE},
	{HTTP_PUT, "/api/v1/settings/allowlist", allowlist_put, ROUTE_ADMIN | ROUTE_DESTRUCTIVE,
	 "settings.edit", ROUTE_BODY_DEFAULT},
};

const size_t allowlist_routes_count = BW_ARRAY_LEN(allowlist_routes);
