/*
 * Outbound webhook subscriptions: what a tenant's admin registers, with the
 * URL and the signing secrets sealed (docs/webhooks.md).
 */
#include "webhooks.h"
#include "webhooks_int.h"

#include <stdlib.h>
#include <string.h>

#include "../audit/audit.h"
#include "../crypto/crypto.h"
#include "../db/db.h"
#include "../events/events.h"
#include "../rbac/rbac.h"
#include "../tenancy/tenancy.h"
#include "egress.h"
#include "sig.h"

static const char *const sub_fields[] = {"url", "event_types", "description", "enabled", NULL};

void
wh_sub_clear(struct wh_sub *s)
{
	if (s->secret != NULL) {
		crypto_wipe(s->secret, strlen(s->secret));
		free(s->secret);
	}
	if (s->prev_secret != NULL) {
		crypto_wipe(s->prev_secret, strlen(s->prev_secret));
		free(s->prev_secret);
	}
	free(s->url);
	json_decref(s->types);
	memset(s, 0, sizeof(*s));
}

static bw_err
wh_open(struct op *op, const char *col, int64_t id, db_stmt *s, int c, char **out)
{
	size_t n = 0, len;
	const void *p = db_col_blob(s, c, &n);
	*out = NULL;
	if (p == NULL || n == 0)
		return BW_OK;
	return field_open(op->ten, op->tn.slug, "webhook_subscriptions", col, id, p, n, out, &len);
}

bw_err
wh_sub_read(struct op *op, int64_t id, int lock, struct wh_sub *out)
{
	db *d;
	db_stmt *s;
	int row;
	memset(out, 0, sizeof(*out));
	bw_err e = op_db(op, &d);
	if (e != BW_OK)
		return e;
	const char *sql =
	    "SELECT id, version, url, host, description, event_types, enabled, secret, prev_secret,"
	    " prev_until, failing_since, disabled_reason, created_at, updated_at"
	    " FROM webhook_subscriptions WHERE id = ?";
	if (lock && db_driver_of(d) == DB_MARIADB)
		sql = "SELECT id, version, url, host, description, event_types, enabled, secret,"
		      " prev_secret, prev_until, failing_since, disabled_reason, created_at, updated_at"
		      " FROM webhook_subscriptions WHERE id = ? FOR UPDATE";
	if ((e = db_prepare_cached(d, sql, &s)) != BW_OK)
		return e;
	if ((e = db_bind_int(s, 1, id)) == BW_OK && (e = db_step(s, &row)) == BW_OK) {
		if (!row)
			e = BW_ERR_NOTFOUND;
		else {
			out->id = id;
			out->version = db_col_int(s, 1);
			snprintf(out->host, sizeof(out->host), "%s", db_col_text(s, 3));
			snprintf(out->description, sizeof(out->description), "%s", db_col_text(s, 4));
			out->types = json_loads(db_col_text(s, 5), 0, NULL);
			out->enabled = (int)db_col_int(s, 6);
			out->prev_until = db_col_int(s, 9);
			out->failing_since = db_col_int(s, 10);
			snprintf(out->disabled_reason, sizeof(out->disabled_reason), "%s",
				 db_col_text(s, 11));
			out->created_at = db_col_int(s, 12);
			out->updated_at = db_col_int(s, 13);
			if (out->types == NULL)
				e = BW_ERR_DB;
			if (e == BW_OK)
				e = wh_open(op, "url", id, s, 2, &out->url);
			if (e == BW_OK)
				e = wh_open(op, "secret", id, s, 7, &out->secret);
			if (e == BW_OK)
				e = wh_open(op, "prev_secret", id, s, 8, &out->prev_secret);
			if (e == BW_OK && (out->url == NULL || out->secret == NULL))
				e = BW_ERR_CRYPTO;
		}
	}
	db_done(s);
	if (e != BW_OK)
		wh_sub_clear(out);
	if (e == BW_ERR_NOTFOUND)
		return op_fail(op, e, "no such webhook subscription");
	return e;
}

json_t *
wh_sub_json(const struct wh_sub *s, int64_t now)
{
	char ca[UTIL_TIME_LEN], ua[UTIL_TIME_LEN], fs[UTIL_TIME_LEN], pu[UTIL_TIME_LEN];
	return json_pack("{s:I, s:I, s:s, s:s, s:s, s:O, s:b, s:s?, s:s?, s:s?, s:s, s:s}", "id",
			 (json_int_t)s->id, "version", (json_int_t)s->version, "url", s->url, "host",
			 s->host, "description", s->description, "event_types", s->types, "enabled",
			 s->enabled, "disabled_reason",
			 s->disabled_reason[0] ? s->disabled_reason : NULL, "failing_since",
			 s->failing_since ? util_time_rfc3339(s->failing_since, fs) : NULL,
			 "previous_secret_until",
			 s->prev_secret != NULL && s->prev_until > now
			     ? util_time_rfc3339(s->prev_until, pu)
			     : NULL,
			 "created_at", util_time_rfc3339(s->created_at, ca), "updated_at",
			 util_time_rfc3339(s->updated_at, ua));
}

/* The host of a URL egress_url_check() accepted, for lists and logs. */
static void
wh_url_host(const char *url, char *out, size_t outlen)
{
	const char *p = strstr(url, "://");
	p = p != NULL ? p + 3 : url;
	size_t n = 0;
	if (*p == '[') {
		const char *q = strchr(p, ']');
		n = q != NULL ? (size_t)(q - p) + 1 : strlen(p);
	} else
		n = strcspn(p, ":/?#");
	snprintf(out, outlen, "%.*s", (int)(n < outlen ? n : outlen - 1), p);
}

/* Validated members of in: url (NULL if absent), types (new ref), description, enabled. */
struct wh_input {
	const char *url;
	json_t *types;
	const char *description;
	int enabled; /* -1: absent */
};

static bw_err
wh_input_parse(struct op *op, json_t *in, int create, struct wh_input *w)
{
	const char *key;
	json_t *v;
	memset(w, 0, sizeof(*w));
	w->enabled = -1;
	json_object_foreach(in, key, v)
	{
		size_t i = 0;
		while (sub_fields[i] != NULL && strcmp(sub_fields[i], key) != 0)
			i++;
		if (sub_fields[i] == NULL)
			return op_fail(op, BW_ERR_INVALID,
				       pool_printf(op->pool, "unknown field '%.64s' (url, event_types, "
							     "description, enabled)",
						   key));
	}
	if ((v = json_object_get(in, "url")) != NULL) {
		char why[256];
		if (!json_is_string(v))
			return op_fail(op, BW_ERR_INVALID, "url must be a string");
		if (egress_url_check(json_string_value(v), wh_settings()->allow_loopback, why,
				     sizeof(why)) != BW_OK)
			return op_fail(op, BW_ERR_INVALID, pool_printf(op->pool, "url: %s", why));
		w->url = json_string_value(v);
	} else if (create)
		return op_fail(op, BW_ERR_INVALID, "url is required (https://...)");
	if ((v = json_object_get(in, "event_types")) != NULL) {
		size_t i, k;
		json_t *t;
		if (!json_is_array(v) || json_array_size(v) == 0 ||
		    json_array_size(v) > WEBHOOK_TYPES_MAX)
			return op_fail(op, BW_ERR_INVALID,
				       "event_types must be a list of 1 to 64 event types or patterns "
				       "(\"tickets.created\", \"invoices.*\", \"*\"; see "
				       "GET /api/v1/webhooks/event-types)");
		json_array_foreach(v, i, t)
		{
			if (!json_is_string(t) || !events_pattern_valid(json_string_value(t)))
				return op_fail(op, BW_ERR_INVALID,
					       pool_printf(op->pool,
							   "event_types[%zu]: not an event type or pattern "
							   "(see GET /api/v1/webhooks/event-types)",
							   i));
			for (k = 0; k < i; k++)
				if (json_equal(json_array_get(v, k), t))
					return op_fail(op, BW_ERR_INVALID,
						       pool_printf(op->pool,
								   "event_types[%zu] repeats an earlier one", i));
		}
		/*
		 * A subscription receives the rows its events carry: only what
		 * its maker may read through the API (a webhooks.manage holder
		 * without customers.view gets no customer).
		 */
		json_array_foreach(v, i, t)
		{
			const char *denied = NULL;
			if (events_may_subscribe(op, json_string_value(t), may, &denied) != BW_OK)
				return op_fail(op, BW_ERR_DENIED,
					       pool_printf(op->pool,
							   "event_types[%zu]: you may not receive these "
							   "events (%s)",
							   i, denied ? denied : "denied"));
		}
		w->types = json_incref(v);
	} else if (create)
		return op_fail(op, BW_ERR_INVALID, "event_types is required");
	if ((v = json_object_get(in, "description")) != NULL) {
		if (!json_is_string(v) || strlen(json_string_value(v)) > WEBHOOK_DESCRIPTION_MAX) {
			json_decref(w->types);
			return op_fail(op, BW_ERR_INVALID, "description must be text of at most 500 bytes");
		}
		w->description = json_string_value(v);
	}
	if ((v = json_object_get(in, "enabled")) != NULL) {
		if (!json_is_boolean(v)) {
			json_decref(w->types);
			return op_fail(op, BW_ERR_INVALID, "enabled must be true or false");
		}
		w->enabled = json_is_true(v);
	}
	return BW_OK;
}

static bw_err
wh_seal_col(struct op *op, const char *col, int64_t id, const char *v, unsigned char **out,
	    size_t *len)
{
	return field_seal(op->ten, &op->tn, "webhook_subscriptions", col, id, v, strlen(v), out, len);
}

/* A fresh whsec_ secret into out, sealed for row id into *sealed. */
static bw_err
wh_new_secret(struct op *op, int64_t id, char *out, size_t outlen, unsigned char **sealed,
	      size_t *slen)
{
	bw_err e = whsig_secret_new(out, outlen);
	if (e == BW_OK)
		e = wh_seal_col(op, "secret", id, out, sealed, slen);
	return e;
}

struct wh_create_arg {
	json_t *in;
	json_t *out;
};

static bw_err
wh_create_tx(struct op *op, void *arg)
{
	struct wh_create_arg *c = arg;
	struct wh_input w;
	struct wh_sub s;
	char secret[WHSIG_SECRET_MAX], host[256];
	unsigned char *surl = NULL, *ssec = NULL;
	size_t lurl = 0, lsec = 0;
	int64_t id = 0, now = jobs_now_ms() / 1000;
	char *types = NULL;
	json_decref(c->out);
	c->out = NULL;
	memset(&s, 0, sizeof(s));
	bw_err e = wh_input_parse(op, c->in, 1, &w);
	if (e != BW_OK)
		return e;
	wh_url_host(w.url, host, sizeof(host));
	types = json_dumps(w.types, JSON_COMPACT);
	if (types == NULL) {
		e = BW_ERR_NOMEM;
		goto out;
	}
	/* Only what commits from now on: not the events already waiting to be dispatched. */
	int64_t from = 0, count = 0;
	if ((e = db_query_int(op->d, &count, "SELECT COUNT(*) FROM webhook_subscriptions", NULL, 0)) != BW_OK)
		goto out;
	if (count >= WEBHOOK_SUBS_MAX) {
		e = op_fail(op, BW_ERR_CONFLICT,
			    "this tenant has 100 webhook subscriptions, the most it may have: delete one "
			    "or widen the event types of another");
		goto out;
	}
	if ((e = db_query_int(op->d, &from, "SELECT MAX(id) FROM events", NULL, 0)) != BW_OK ||
	    (e = DB_INSERT(op->d, &id,
			   "INSERT INTO webhook_subscriptions (url, host, description, event_types,"
			   " enabled, secret, prev_secret, prev_until, failing_since, disabled_reason,"
			   " from_event, created_by, created_at, updated_at, version)"
			   " VALUES (NULL, ?, ?, ?, ?, NULL, NULL, 0, 0, '', ?, ?, ?, ?, 1)",
			   DB_TEXT(host), DB_TEXT(w.description ? w.description : ""), DB_TEXT(types),
			   DB_INT(w.enabled != 0), DB_INT(from), DB_INT(op->actor.user.id),
			   DB_INT(now), DB_INT(now))) != BW_OK)
		goto out;
	if ((e = wh_seal_col(op, "url", id, w.url, &surl, &lurl)) != BW_OK ||
	    (e = wh_new_secret(op, id, secret, sizeof(secret), &ssec, &lsec)) != BW_OK ||
	    (e = DB_RUN(op->d, "UPDATE webhook_subscriptions SET url = ?, secret = ? WHERE id = ?",
			DB_BLOB(surl, lurl), DB_BLOB(ssec, lsec), DB_INT(id))) != BW_OK)
		goto out;
	json_t *after = json_pack("{s:s, s:O, s:s, s:b}", "host", host, "event_types", w.types,
				  "description", w.description ? w.description : "", "enabled",
				  w.enabled != 0);
	e = after != NULL ? audit_op(op, "webhooks", id, "create", NULL, after) : BW_ERR_NOMEM;
	json_decref(after);
	if (e == BW_OK && (e = wh_sub_read(op, id, 0, &s)) == BW_OK) {
		c->out = wh_sub_json(&s, now);
		if (c->out == NULL ||
		    json_object_set_new(c->out, "secret", json_string(secret)) != 0)
			e = BW_ERR_NOMEM;
	}
out:
	crypto_wipe(secret, sizeof(secret));
	wh_sub_clear(&s);
	free(types);
	free(surl);
	free(ssec);
	json_decref(w.types);
	return e;
}

bw_err
webhook_sub_create(struct op *op, json_t *in, json_t **out)
{
	struct wh_create_arg c = {in, NULL};
	*out = NULL;
	bw_err e = op_tx(op, wh_create_tx, &c);
	if (e != BW_OK) {
		json_decref(c.out);
		return e;
	}
	*out = c.out;
	return BW_OK;
}

bw_err
webhook_sub_get(struct op *op, int64_t id, json_t **out)
{
	struct wh_sub s;
	*out = NULL;
	bw_err e = wh_sub_read(op, id, 0, &s);
	if (e != BW_OK)
		return e;
	*out = wh_sub_json(&s, jobs_now_ms() / 1000);
	wh_sub_clear(&s);
	return *out != NULL ? BW_OK : BW_ERR_NOMEM;
}

struct wh_update_arg {
	int64_t id, if_version, overlap;
	json_t *in;
	json_t *out;
	int rotate;
};

static bw_err
wh_precondition(struct op *op, const struct wh_sub *s, int64_t if_version)
{
	if (if_version != 0 && if_version != s->version)
		return op_fail(op, BW_ERR_PRECONDITION,
			       "the subscription was changed since you read it (If-Match)");
	return BW_OK;
}

static bw_err
wh_update_tx(struct op *op, void *arg)
{
	struct wh_update_arg *u = arg;
	struct wh_sub s;
	struct wh_input w;
	unsigned char *surl = NULL, *ssec = NULL, *sprev = NULL;
	size_t lurl = 0, lsec = 0, lprev = 0;
	char secret[WHSIG_SECRET_MAX] = "", host[256];
	char *types = NULL;
	int64_t now = jobs_now_ms() / 1000;
	json_t *b = NULL, *a = NULL;
	json_decref(u->out);
	u->out = NULL;
	memset(&w, 0, sizeof(w));
	bw_err e = wh_sub_read(op, u->id, 1, &s);
	if (e != BW_OK)
		return e;
	if ((e = wh_precondition(op, &s, u->if_version)) != BW_OK)
		goto out;
	b = json_object();
	a = json_object();
	if (b == NULL || a == NULL) {
		e = BW_ERR_NOMEM;
		goto out;
	}
	if (u->rotate) {
		if ((e = wh_new_secret(op, s.id, secret, sizeof(secret), &ssec, &lsec)) != BW_OK ||
		    (e = wh_seal_col(op, "prev_secret", s.id, s.secret, &sprev, &lprev)) != BW_OK)
			goto out;
		e = DB_RUN(op->d,
			   "UPDATE webhook_subscriptions SET secret = ?, prev_secret = ?, prev_until = ?,"
			   " updated_at = ?, version = version + 1 WHERE id = ?",
			   DB_BLOB(ssec, lsec), u->overlap > 0 ? DB_BLOB(sprev, lprev) : DB_NULL,
			   DB_INT(u->overlap > 0 ? now + u->overlap : 0), DB_INT(now), DB_INT(s.id));
		json_object_set_new(a, "overlap_seconds", json_integer(u->overlap));
		if (e == BW_OK)
			e = audit_op(op, "webhooks", s.id, "rotate_secret", NULL, a);
	} else {
		if ((e = wh_input_parse(op, u->in, 0, &w)) != BW_OK)
			goto out;
		const char *url = w.url ? w.url : s.url;
		const char *desc = w.description ? w.description : s.description;
		json_t *tv = w.types ? w.types : s.types;
		int enabled = w.enabled >= 0 ? w.enabled : s.enabled;
		/* Enabled again: why it was disabled, and the failing streak, are over. */
		int cleared = enabled && !s.enabled;
		wh_url_host(url, host, sizeof(host));
		if ((types = json_dumps(tv, JSON_COMPACT)) == NULL ||
		    (e = wh_seal_col(op, "url", s.id, url, &surl, &lurl)) != BW_OK) {
			e = e != BW_OK ? e : BW_ERR_NOMEM;
			goto out;
		}
		if (w.url && strcmp(w.url, s.url) != 0) {
			json_object_set_new(b, "host", json_string(s.host));
			json_object_set_new(a, "host", json_string(host));
		}
		if (!json_equal(tv, s.types)) {
			json_object_set(b, "event_types", s.types);
			json_object_set(a, "event_types", tv);
		}
		if (strcmp(desc, s.description) != 0) {
			json_object_set_new(b, "description", json_string(s.description));
			json_object_set_new(a, "description", json_string(desc));
		}
		if (enabled != s.enabled) {
			json_object_set_new(b, "enabled", json_boolean(s.enabled));
			json_object_set_new(a, "enabled", json_boolean(enabled));
		}
		if (json_object_size(a) == 0)
			goto show; /* nothing changes: nothing written */
		e = DB_RUN(op->d,
			   "UPDATE webhook_subscriptions SET url = ?, host = ?, description = ?,"
			   " event_types = ?, enabled = ?,"
			   " failing_since = CASE WHEN ? = 1 THEN 0 ELSE failing_since END,"
			   " disabled_reason = CASE WHEN ? = 1 THEN '' ELSE disabled_reason END,"
			   " updated_at = ?, version = version + 1 WHERE id = ?",
			   DB_BLOB(surl, lurl), DB_TEXT(host), DB_TEXT(desc), DB_TEXT(types),
			   DB_INT(enabled), DB_INT(cleared), DB_INT(cleared), DB_INT(now),
			   DB_INT(s.id));
		if (e == BW_OK)
			e = audit_op(op, "webhooks", s.id, "update", b, a);
	}
show:
	if (e == BW_OK) {
		wh_sub_clear(&s);
		if ((e = wh_sub_read(op, u->id, 0, &s)) == BW_OK) {
			u->out = wh_sub_json(&s, now);
			if (u->out == NULL ||
			    (u->rotate && json_object_set_new(u->out, "secret", json_string(secret)) != 0))
				e = BW_ERR_NOMEM;
		}
	}
out:
	crypto_wipe(secret, sizeof(secret));
	wh_sub_clear(&s);
	json_decref(w.types);
	json_decref(b);
	json_decref(a);
	free(types);
	free(surl);
	free(ssec);
	free(sprev);
	return e;
}

static bw_err
wh_update_run(struct op *op, struct wh_update_arg *u, json_t **out)
{
	*out = NULL;
	bw_err e = op_tx(op, wh_update_tx, u);
	if (e != BW_OK) {
		json_decref(u->out);
		return e;
	}
	*out = u->out;
	return BW_OK;
}

bw_err
webhook_sub_update(struct op *op, int64_t id, json_t *in, int64_t if_version, json_t **out)
{
	struct wh_update_arg u = {id, if_version, 0, in, NULL, 0};
	return wh_update_run(op, &u, out);
}

bw_err
webhook_sub_rotate(struct op *op, int64_t id, int64_t overlap, json_t **out)
{
	*out = NULL;
	if (overlap < 0 || overlap > WEBHOOK_ROTATE_OVERLAP_MAX)
		return op_fail(op, BW_ERR_INVALID,
			       "overlap_seconds must be from 0 to 604800 (7 days)");
	struct wh_update_arg u = {id, 0, overlap, NULL, NULL, 1};
	return wh_update_run(op, &u, out);
}

struct wh_delete_arg {
	int64_t id, if_version;
};

static bw_err
wh_delete_tx(struct op *op, void *arg)
{
	struct wh_delete_arg *x = arg;
	struct wh_sub s;
	bw_err e = wh_sub_read(op, x->id, 1, &s);
	if (e != BW_OK)
		return e;
	if ((e = wh_precondition(op, &s, x->if_version)) == BW_OK &&
	    (e = DB_RUN(op->d, "DELETE FROM webhook_deliveries WHERE subscription_id = ?",
			DB_INT(s.id))) == BW_OK &&
	    (e = DB_RUN(op->d, "DELETE FROM webhook_subscriptions WHERE id = ?", DB_INT(s.id))) ==
		BW_OK) {
		json_t *b = json_pack("{s:s, s:O}", "host", s.host, "event_types", s.types);
		e = b != NULL ? audit_op(op, "webhooks", s.id, "delete", b, NULL) : BW_ERR_NOMEM;
		json_decref(b);
	}
	wh_sub_clear(&s);
	return e;
}

bw_err
webhook_sub_delete(struct op *op, int64_t id, int64_t if_version)
{
	struct wh_delete_arg x = {id, if_version};
	return op_tx(op, wh_delete_tx, &x);
}
