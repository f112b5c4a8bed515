/*
 * The admin IP allowlist of a tenant: when it has entries, every guarded
 * request (router_guard: admin, security-sensitive and destructive routes;
 * with "guard_all_changes" every change too) must come from one of them,
 * checked on every request (not at login), so a session cookie or token
 * carried off the network cannot reach them. An empty list allows every
 * address.
 */
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

#include "../core/netaddr.h"
#include "auth.h"

#include "../audit/audit.h"

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
int
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

struct allowlist_change {
	json_t *entries; /* validated {cidr, label} */
	int guard;       /* 1, 0, or -1: as it is */
};

static bw_err
allowlist_replace_tx(struct op *op, void *arg)
{
	const struct allowlist_change *c = arg;
	db *d = op->d;
	json_t *before = NULL, *after = NULL, *v;
	size_t i;
	int64_t now = (int64_t)time(NULL);
	bw_err e = allowlist_entries(d, &before);
	if (e == BW_OK)
		e = db_exec(d, "DELETE FROM ip_allowlist");
	json_array_foreach(c->entries, i, v)
	{
		const char *label = json_string_value(json_object_get(v, "label"));
		if (e == BW_OK)
			e = DB_RUN(d, "INSERT INTO ip_allowlist (cidr, label, created_at) VALUES (?, ?, ?)",
				   DB_TEXT(json_string_value(json_object_get(v, "cidr"))),
				   DB_TEXT(label ? label : ""), DB_INT(now));
		if (e == BW_ERR_CONFLICT)
			e = op_fail(op, BW_ERR_INVALID, "an entry appears twice");
	}
	/* Read inside the transaction: what this change replaces. */
	int was = e == BW_OK ? allowlist_guard_all(d) : 0, now_on = was;
	if (was < 0)
		e = BW_ERR_DB;
	if (e == BW_OK && c->guard >= 0) {
		now_on = c->guard;
		if ((e = db_exec(d, "DELETE FROM settings WHERE name = '" ALLOWLIST_GUARD_ALL "'")) ==
		    BW_OK)
			e = DB_RUN(d,
				   "INSERT INTO settings (name, value, updated_at) VALUES ('" ALLOWLIST_GUARD_ALL
				   "', ?, ?)",
				   DB_TEXT(now_on ? "1" : "0"), DB_INT(now));
	}
	if (e == BW_OK && (e = allowlist_entries(d, &after)) == BW_OK) {
		char detail[80];
		snprintf(detail, sizeof(detail), "allowlist set: %zu entries, guard_all_changes %s",
			 json_array_size(c->entries), now_on ? "on" : "off");
		auth_event(d, op->actor.user.id, json_array_size(c->entries) ? "allowlist_changed"
									      : "allowlist_cleared",
			   op->client_ip[0] ? op->client_ip : "cli", detail);
		json_t *b = json_pack("{s:o, s:b}", "allowlist", before, "guard_all_changes", was);
		json_t *a = json_pack("{s:o, s:b}", "allowlist", after, "guard_all_changes", now_on);
		before = after = NULL;
		e = b && a ? audit_op(op, "settings", 0, "update", b, a) : BW_ERR_NOMEM;
		json_decref(b);
		json_decref(a);
	}
	json_decref(before);
	json_decref(after);
	return e;
}

bw_err
allowlist_replace(struct op *op, json_t *entries, int guard)
{
	struct allowlist_change c = {entries, guard};
	return op_tx(op, allowlist_replace_tx, &c);
}
