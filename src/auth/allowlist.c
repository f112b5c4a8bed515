/*
 * The admin IP allowlist of a tenant: when it has entries, every guarded
 * request (router_guard: admin, security-sensitive and destructive routes;
 * with "guard_all_changes" every change too) must come from one of them,
 * checked on every request (not at login), so a session cookie or token
 * carried off the network cannot reach them. An empty list allows every
 * address.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../http/netaddr.h"
#include "auth_api.h"

/* The settings row holding the tenant's choice to guard every change. */
#define ALLOWLIST_GUARD_ALL "allowlist_guard_all_changes"

/*
 * One statement, kept with the connection: every entry, each carrying the
 * guard-every-change setting, so a change costs one round trip too. No
 * rows means an empty list, which allows everything whatever the setting.
 */
bw_err
allowlist_permits(db *d, const char *addr, int change_only)
{
	static const char sql[] = "SELECT a.cidr, (SELECT s.value FROM settings s WHERE s.name = '"
				  ALLOWLIST_GUARD_ALL "') FROM ip_allowlist a";
	db_stmt *s = NULL;
	int row, entries = 0, listed = 0, guard_all = 0;
	struct netaddr a;
	int parsed = netaddr_parse(addr, &a) == BW_OK;
	bw_err e = db_prepare_cached(d, sql, &s);
	if (e != BW_OK)
		return BW_ERR_DB;
	while ((e = db_step(s, &row)) == BW_OK && row) {
		struct netrange r;
		const char *g = db_col_text(s, 1);
		entries++;
		guard_all = g != NULL && strcmp(g, "1") == 0;
		/* Entries were validated when stored; one that no longer parses matches nothing. */
		if (parsed && netrange_parse(db_col_text(s, 0), &r) == BW_OK && netrange_contains(&r, &a))
			listed = 1;
	}
	db_done(s);
	if (e != BW_OK)
		return BW_ERR_DB;
	if (entries == 0 || listed || (change_only && !guard_all))
		return BW_OK;
	return BW_ERR_DENIED;
}

/* The guard-every-change setting: 1 on, 0 off, -1 on a database error. */
static int
allowlist_guard_all(db *d)
{
	db_stmt *s;
	int row = 0, on = 0;
	if (db_prepare(d, "SELECT value FROM settings WHERE name = '" ALLOWLIST_GUARD_ALL "'", &s) !=
	    BW_OK)
		return -1;
	bw_err e = db_step(s, &row);
	const char *v = e == BW_OK && row ? db_col_text(s, 0) : NULL;
	on = v != NULL && strcmp(v, "1") == 0;
	db_finalize(s);
	return e == BW_OK ? on : -1;
}

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

bw_err
allowlist_entries(db *d, json_t **out)
{
	db_stmt *s;
	int row;
	json_t *list = json_array();
	bw_err e = list ? db_prepare(d, "SELECT cidr, label FROM ip_allowlist ORDER BY id", &s)
			: BW_ERR_NOMEM;
	if (e != BW_OK) {
		json_decref(list);
		return e;
	}
	while ((e = db_step(s, &row)) == BW_OK && row)
		if (json_array_append_new(list, json_pack("{s:s, s:s}", "cidr", db_col_text(s, 0),
							  "label", db_col_text(s, 1))) != 0) {
			e = BW_ERR_NOMEM;
			break;
		}
	db_finalize(s);
	if (e != BW_OK) {
		json_decref(list);
		return e;
	}
	*out = list;
	return BW_OK;
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
	db *d;
	size_t i;
	int includes_caller = 0;
	struct netaddr caller;
	bw_err e = http_req_json(req, &in);
	if (e != BW_OK)
		return e;
	entries = json_object_get(in, "entries");
	if (!json_is_array(entries) || json_array_size(entries) > 256) {
		json_decref(in);
		return response_error(req, BW_ERR_INVALID, "entries: an array of at most 256 {cidr, label}");
	}
	json_t *guard = json_object_get(in, "guard_all_changes");
	if (guard != NULL && !json_is_boolean(guard)) {
		json_decref(in);
		return response_error(req, BW_ERR_INVALID, "guard_all_changes: a boolean");
	}
	int have_caller = netaddr_parse(req->client_ip, &caller) == BW_OK;
	json_array_foreach(entries, i, v)
	{
		const char *cidr = api_str(v, "cidr", 63), *label = api_str(v, "label", 100);
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
			return response_error(req, BW_ERR_INVALID, "label: a string of at most 100 bytes");
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
	if ((e = http_req_db(req, &d)) != BW_OK) {
		json_decref(in);
		return e;
	}
	int64_t now = api_now();
	json_t *before = NULL;
	e = db_begin(d);
	if (e == BW_OK && (e = allowlist_entries(d, &before)) == BW_OK)
		e = db_run(d, "DELETE FROM ip_allowlist", NULL, 0);
	json_array_foreach(entries, i, v)
	{
		const char *label = api_str(v, "label", 100);
		if (e == BW_OK)
			e = DB_RUN(d, "INSERT INTO ip_allowlist (cidr, label, created_at) VALUES (?, ?, ?)",
				   DB_TEXT(api_str(v, "cidr", 63)), DB_TEXT(label ? label : ""),
				   DB_INT(now));
	}
	/* Read inside the transaction: what this change replaces. */
	int was = e == BW_OK ? allowlist_guard_all(d) : 0, now_on = was;
	if (was < 0)
		e = BW_ERR_DB;
	if (e == BW_OK && guard != NULL) {
		now_on = json_is_true(guard);
		if ((e = db_run(d, "DELETE FROM settings WHERE name = '" ALLOWLIST_GUARD_ALL "'", NULL,
				0)) == BW_OK)
			e = DB_RUN(d,
				   "INSERT INTO settings (name, value, updated_at) VALUES ('" ALLOWLIST_GUARD_ALL
				   "', ?, ?)",
				   DB_TEXT(now_on ? "1" : "0"), DB_INT(now));
	}
	json_t *after = NULL;
	if (e == BW_OK && (e = allowlist_entries(d, &after)) == BW_OK) {
		char detail[80];
		snprintf(detail, sizeof(detail), "allowlist set: %zu entries, guard_all_changes %s",
			 json_array_size(entries), now_on ? "on" : "off");
		auth_event(d, req->auth.user.id, "allowlist_changed", req->client_ip, detail);
		e = api_audit(req, d, "settings", 0, "update",
			      json_pack("{s:o, s:b}", "allowlist", before, "guard_all_changes", was),
			      json_pack("{s:o, s:b}", "allowlist", after, "guard_all_changes", now_on));
		before = NULL;
	}
	json_decref(before);
	if ((e = api_tx_end(d, e)) != BW_OK) {
		json_decref(in);
		return response_error(req, e == BW_ERR_CONFLICT ? BW_ERR_INVALID : BW_ERR_UNAVAILABLE,
				      e == BW_ERR_CONFLICT ? "an entry appears twice" : NULL);
	}
	json_decref(in);
	return allowlist_get(req);
}

const struct route allowlist_routes[] = {
	{HTTP_GET, "/api/v1/settings/allowlist", allowlist_get, ROUTE_ADMIN, "settings.view",
	 ROUTE_BODY_NONE},
	{HTTP_PUT, "/api/v1/settings/allowlist", allowlist_put, ROUTE_ADMIN | ROUTE_DESTRUCTIVE,
	 "settings.edit", ROUTE_BODY_DEFAULT},
};

const size_t allowlist_routes_count = BW_ARRAY_LEN(allowlist_routes);
