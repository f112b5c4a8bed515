/*
 * Deliveries: the fan-out of new events to the subscriptions that want
 * them, the job that sends one (signed, Standard Webhooks), the log, and
 * the housekeeping of what is old (docs/webhooks.md).
 */
#include "webhooks.h"
#include "webhooks_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../audit/audit.h"
#include "../crypto/crypto.h"
#include "../db/db.h"
#include "../events/events.h"
#include "../rbac/rbac.h"
#include "egress.h"
#include "sig.h"

#define WH_DISPATCH_BATCH 50 /* events per fan-out transaction: at most 5000 deliveries */
#define WH_SUBS_MAX WEBHOOK_SUBS_MAX
#define WH_PREFIX_MAX 512 /* bytes of a receiver's response kept */
#define WH_MAX_ATTEMPTS 10
#define WH_KEEP_S (30 * 86400) /* deliveries, events and inbound events kept this long */
#define WH_JOBS_KEEP_S (7 * 86400)

/* Seconds before attempts 2..10: 10 s, 1 min, 5 min, 30 min, 1 h, 2 h, 4 h, 8 h, 8 h (about 23.6 h). */
const int webhook_backoff[] = {10, 60, 300, 1800, 3600, 7200, 14400, 28800, 28800};
const size_t webhook_backoff_n = BW_ARRAY_LEN(webhook_backoff);

static struct webhook_settings wh_cfg = {5000, 15000, 72 * 3600, NULL, 0, NULL, 0};
static int wh_test_backoff[1];

void
webhooks_configure(const struct webhook_settings *s)
{
	wh_cfg = *s;
	wh_test_backoff[0] = (int)(s->test_retry_s > 0 ? s->test_retry_s : 1);
}

const struct webhook_settings *
wh_settings(void)
{
	return &wh_cfg;
}

/* --- fan-out ------------------------------------------------------------------- */

struct wh_subref {
	int64_t id;
	int64_t from_event;
	int64_t maker;
	json_t *types;
	/* what the maker may read, asked once per fan-out */
	struct {
		char perm[EVENT_TYPE_MAX + 8];
		int yes;
	} seen[16];
	size_t nseen;
};

/*
 * Whether sub's maker holds, now, the permission that reads an event of
 * type: a maker demoted since the subscription was saved stops receiving
 * what they could no longer read. 1, 0, or -1 when the database cannot say.
 */
static int
wh_maker_may(db *d, struct wh_subref *sub, const char *type)
{
	char buf[EVENT_TYPE_MAX + 8];
	const char *perm = events_type_permission(type, buf, sizeof(buf));
	for (size_t i = 0; i < sub->nseen; i++)
		if (strcmp(sub->seen[i].perm, perm) == 0)
			return sub->seen[i].yes;
	int yes = rbac_user_has(d, sub->maker, perm);
	if (yes >= 0 && sub->nseen < BW_ARRAY_LEN(sub->seen)) {
		snprintf(sub->seen[sub->nseen].perm, sizeof(sub->seen[0].perm), "%s", perm);
		sub->seen[sub->nseen++].yes = yes;
	}
	return yes;
}

static bw_err
wh_dispatch_tx(struct op *op, void *arg)
{
	int *n = arg;
	db *d = op->d;
	db_stmt *s;
	int row;
	int64_t ev[WH_DISPATCH_BATCH];
	char *evtype[WH_DISPATCH_BATCH];
	size_t nev = 0, nsub = 0;
	struct wh_subref *subs = NULL;
	*n = 0;
	/*
	 * One dispatcher per tenant at a time (SQLite: its one writer): two app
	 * servers fanning out at once could each commit a batch, the later
	 * events' first, and their deliveries would overtake the earlier ones.
	 * Events still being written are skipped (SKIP LOCKED) and come in a
	 * later batch: in order of commit.
	 */
	bw_err e = BW_OK;
	if (db_driver_of(d) == DB_MARIADB) {
		int64_t held;
		if ((e = db_run(d,
				"INSERT IGNORE INTO job_lanes (lane, holder, until_ms)"
				" VALUES ('events:dispatch', 0, 0)",
				NULL, 0)) != BW_OK ||
		    (e = db_query_int(d, &held,
				      "SELECT holder FROM job_lanes WHERE lane = 'events:dispatch'"
				      " FOR UPDATE",
				      NULL, 0)) != BW_OK)
			return e;
	}
	e = db_prepare_cached(
	    d,
	    db_driver_of(d) == DB_MARIADB
		? "SELECT id, type FROM events WHERE dispatched = 0 ORDER BY id LIMIT 50"
		  " FOR UPDATE SKIP LOCKED"
		: "SELECT id, type FROM events WHERE dispatched = 0 ORDER BY id LIMIT 50",
	    &s);
	if (e != BW_OK)
		return e;
	while ((e = db_step(s, &row)) == BW_OK && row && nev < WH_DISPATCH_BATCH) {
		ev[nev] = db_col_int(s, 0);
		evtype[nev] = strdup(db_col_text(s, 1) ? db_col_text(s, 1) : "");
		if (evtype[nev] == NULL) {
			e = BW_ERR_NOMEM;
			break;
		}
		nev++;
	}
	db_done(s);
	if (e != BW_OK || nev == 0)
		goto out;
	subs = calloc(WH_SUBS_MAX, sizeof(*subs));
	if (subs == NULL) {
		e = BW_ERR_NOMEM;
		goto out;
	}
	if ((e = db_prepare_cached(d,
				   /* Its maker disabled or deleted: it sends nothing (docs/webhooks.md). */
				   "SELECT s.id, s.event_types, s.from_event, s.created_by FROM webhook_subscriptions s"
				   " JOIN users u ON u.id = s.created_by AND u.disabled = 0"
				   " WHERE s.enabled = 1 ORDER BY s.id LIMIT 100",
				   &s)) != BW_OK)
		goto out;
	while ((e = db_step(s, &row)) == BW_OK && row && nsub < WH_SUBS_MAX) {
		subs[nsub].id = db_col_int(s, 0);
		subs[nsub].types = json_loads(db_col_text(s, 1), 0, NULL);
		subs[nsub].from_event = db_col_int(s, 2);
		subs[nsub].maker = db_col_int(s, 3);
		nsub++;
	}
	db_done(s);
	int64_t now = jobs_now_ms();
	for (size_t i = 0; e == BW_OK && i < nev; i++) {
		for (size_t k = 0; e == BW_OK && k < nsub; k++) {
			size_t t;
			json_t *p;
			int want = 0;
			if (ev[i] <= subs[k].from_event)
				continue;
			json_array_foreach(subs[k].types, t, p)
			    want |= events_pattern_match(json_string_value(p), evtype[i]);
			if (!want)
				continue;
			int may_now = wh_maker_may(d, &subs[k], evtype[i]);
			if (may_now < 0) {
				e = BW_ERR_UNAVAILABLE; /* asked again on the next fan-out */
				break;
			}
			if (!may_now)
				continue;
			unsigned char rnd[16];
			char hex[33], msg[40], lane[JOB_LANE_MAX + 1];
			int64_t did = 0;
			if ((e = util_random(rnd, sizeof(rnd))) != BW_OK)
				break;
			util_hex(rnd, sizeof(rnd), hex);
			snprintf(msg, sizeof(msg), "msg_%s", hex);
			snprintf(lane, sizeof(lane), "webhook:%lld", (long long)subs[k].id);
			e = DB_INSERT(d, &did,
				      "INSERT INTO webhook_deliveries (subscription_id, event_id, msg_id,"
				      " state, attempts, last_at_ms, next_at_ms, last_status,"
				      " last_latency_ms, last_error, response_prefix, created_at,"
				      " delivered_at) VALUES (?, ?, ?, 'pending', 0, 0, ?, 0, 0, '', '', ?, 0)",
				      DB_INT(subs[k].id), DB_INT(ev[i]), DB_TEXT(msg), DB_INT(now),
				      DB_INT(now / 1000));
			if (e == BW_OK) {
				json_t *pl = json_pack("{s:I}", "delivery", (json_int_t)did);
				e = pl != NULL ? job_enqueue(op, WEBHOOK_JOB_DELIVER, WH_MAX_ATTEMPTS,
							     lane, pl, 0, NULL)
					       : BW_ERR_NOMEM;
				json_decref(pl);
			}
		}
		if (e == BW_OK)
			e = DB_RUN(d, "UPDATE events SET dispatched = 1 WHERE id = ?", DB_INT(ev[i]));
	}
	if (e == BW_OK)
		*n = (int)nev;
out:
	for (size_t i = 0; i < nev; i++)
		free(evtype[i]);
	for (size_t k = 0; subs != NULL && k < nsub; k++)
		json_decref(subs[k].types);
	free(subs);
	return e;
}

static bw_err
wh_dispatch(struct op *op, int *n)
{
	int got = 0;
	int64_t waiting = 0;
	db *d;
	*n = 0;
	/* An idle tenant (most, most of the time): one read, no transaction, no lock row. */
	bw_err e = op_db(op, &d);
	if (e == BW_OK)
		e = db_query_int(d, &waiting, "SELECT id FROM events WHERE dispatched = 0 LIMIT 1", NULL, 0);
	if (e != BW_OK || waiting == 0)
		return e;
	e = op_tx(op, wh_dispatch_tx, &got);
	if (e == BW_OK)
		*n = got;
	return e;
}

/* --- one delivery ---------------------------------------------------------------- */

struct wh_delivery {
	int64_t id, sub, event;
	char msg_id[65];
	char state[17];
	int attempts;
};

static bw_err
wh_delivery_read(struct op *op, int64_t id, struct wh_delivery *out)
{
	db *d;
	db_stmt *s;
	int row;
	memset(out, 0, sizeof(*out));
	bw_err e = op_db(op, &d);
	if (e != BW_OK)
		return e;
	if ((e = db_prepare_cached(d,
				   "SELECT subscription_id, event_id, msg_id, state, attempts"
				   " FROM webhook_deliveries WHERE id = ?",
				   &s)) != BW_OK)
		return e;
	if ((e = db_bind_int(s, 1, id)) == BW_OK && (e = db_step(s, &row)) == BW_OK) {
		if (!row)
			e = BW_ERR_NOTFOUND;
		else {
			out->id = id;
			out->sub = db_col_int(s, 0);
			out->event = db_col_int(s, 1);
			snprintf(out->msg_id, sizeof(out->msg_id), "%s", db_col_text(s, 2));
			snprintf(out->state, sizeof(out->state), "%s", db_col_text(s, 3));
			out->attempts = (int)db_col_int(s, 4);
		}
	}
	db_done(s);
	return e;
}

/* What one attempt gave, for its record. */
struct wh_outcome {
	const struct wh_delivery *dv;
	const struct wh_sub *sub;
	int ok;
	long status, latency_ms;
	int64_t at_ms, next_at_ms;
	char error[256];
	char prefix[WH_PREFIX_MAX + 1];
	int disabled; /* out: this failure disabled the subscription */
};

static bw_err
wh_record_tx(struct op *op, void *arg)
{
	struct wh_outcome *o = arg;
	int64_t now = o->at_ms / 1000, since = 0;
	o->disabled = 0;
	bw_err e = DB_RUN(op->d,
			  "UPDATE webhook_deliveries SET attempts = attempts + 1, last_at_ms = ?,"
			  " next_at_ms = ?, last_status = ?, last_latency_ms = ?, last_error = ?,"
			  " response_prefix = ?, state = CASE WHEN ? = 1 THEN 'delivered' ELSE state END,"
			  " delivered_at = CASE WHEN ? = 1 THEN ? ELSE delivered_at END WHERE id = ?",
			  DB_INT(o->at_ms), DB_INT(o->ok ? 0 : o->next_at_ms), DB_INT(o->status),
			  DB_INT(o->latency_ms), DB_TEXT(o->error), DB_TEXT(o->prefix), DB_INT(o->ok),
			  DB_INT(o->ok), DB_INT(now), DB_INT(o->dv->id));
	if (e != BW_OK)
		return e;
	if (o->ok)
		return DB_RUN(op->d, "UPDATE webhook_subscriptions SET failing_since = 0 WHERE id = ?",
			      DB_INT(o->sub->id));
	if ((e = DB_RUN(op->d,
			"UPDATE webhook_subscriptions SET failing_since = ? WHERE id = ?"
			" AND failing_since = 0",
			DB_INT(now), DB_INT(o->sub->id))) != BW_OK ||
	    (e = DB_QUERY_INT(op->d, &since,
			      "SELECT failing_since FROM webhook_subscriptions WHERE id = ? AND enabled = 1",
			      DB_INT(o->sub->id))) != BW_OK)
		return e;
	if (since == 0 || now - since < wh_cfg.disable_after_s)
		return BW_OK;
	/* Failing for days: disabled, and the admins see why on the subscription. */
	char when[UTIL_TIME_LEN];
	const char *why = pool_printf(op->pool,
				      "disabled: every delivery has failed since %s (last: %s)",
				      util_time_rfc3339(since, when), o->error);
	if (why == NULL)
		return BW_ERR_NOMEM;
	if ((e = DB_RUN(op->d,
			"UPDATE webhook_subscriptions SET enabled = 0, disabled_reason = ?,"
			" updated_at = ?, version = version + 1 WHERE id = ?",
			DB_TEXT(why), DB_INT(now), DB_INT(o->sub->id))) != BW_OK)
		return e;
	json_t *b = json_pack("{s:b}", "enabled", 1);
	json_t *a = json_pack("{s:b, s:s}", "enabled", 0, "reason", why);
	e = b != NULL && a != NULL ? audit_op(op, "webhooks", o->sub->id, "disable", b, a)
				   : BW_ERR_NOMEM;
	json_decref(b);
	json_decref(a);
	if (e == BW_OK) {
		o->disabled = 1;
		log_warn("tenant %s: webhook subscription %lld disabled: %s", op->tn.slug,
			 (long long)o->sub->id, why);
	}
	return e;
}

/* Keep a printable prefix of a receiver's reply (never more than WH_PREFIX_MAX bytes). */
static void
wh_prefix(const char *in, size_t n, char *out)
{
	size_t k = 0;
	for (size_t i = 0; i < n && k < WH_PREFIX_MAX; i++) {
		unsigned char c = (unsigned char)in[i];
		out[k++] = (c >= 0x20 && c < 0x7f) || c == '\n' || c == '\t' ? (char)c : '?';
	}
	out[k] = '\0';
}

/* The retry schedule deliveries use: the documented one, or the tests' (test_retry_seconds). */
static void
wh_backoff(const int **bo, size_t *n)
{
	*bo = webhook_backoff;
	*n = webhook_backoff_n;
	if (wh_cfg.test_retry_s > 0) {
		*bo = wh_test_backoff;
		*n = 1;
	}
}

static int64_t
wh_next_ms(int attempts)
{
	struct job_kind k = {0};
	wh_backoff(&k.backoff, &k.nbackoff);
	return jobs_backoff_ms(&k, attempts);
}

/* The server is stopping: a delivery under way gives up (it is tried again). */
static int
wh_stopping(void *arg)
{
	const atomic_int *stop = arg;
	return stop != NULL && atomic_load(stop) != 0;
}

static bw_err
wh_deliver_run(struct op *op, const struct job *j, struct job_retry *retry)
{
	struct wh_delivery dv;
	struct wh_sub sub;
	struct wh_outcome o;
	char *body = NULL, type[EVENT_TYPE_MAX + 1];
	size_t blen = 0;
	int64_t did = json_integer_value(json_object_get(j->payload, "delivery"));
	memset(&sub, 0, sizeof(sub));
	bw_err e = wh_delivery_read(op, did, &dv);
	if (e == BW_ERR_NOTFOUND)
		return BW_OK; /* its subscription was deleted: nothing to send */
	if (e != BW_OK)
		return e;
	if (strcmp(dv.state, "pending") != 0)
		return BW_OK; /* delivered or given up already */
	if ((e = wh_sub_read(op, dv.sub, 0, &sub)) != BW_OK) {
		if (e == BW_ERR_NOTFOUND)
			return BW_OK;
		return e;
	}
	if (!sub.enabled) {
		retry->permanent = 1;
		snprintf(retry->error, sizeof(retry->error), "the subscription is disabled");
		wh_sub_clear(&sub);
		return op_fail(op, BW_ERR_CONFLICT, "the subscription is disabled");
	}
	if ((e = event_body(op, dv.event, &body, &blen, type)) != BW_OK) {
		wh_sub_clear(&sub);
		retry->permanent = e == BW_ERR_NOTFOUND || e == BW_ERR_CRYPTO;
		snprintf(retry->error, sizeof(retry->error), "the event cannot be read: %s",
			 bw_strerror(e));
		return e;
	}
	/* Signed now: the timestamp is this attempt's; the id stays the delivery's. */
	int64_t now_ms = jobs_now_ms(), ts = now_ms / 1000;
	char sig1[WHSIG_SIG_LEN], sig2[WHSIG_SIG_LEN] = "";
	char h_id[96], h_ts[64], h_sig[2 * WHSIG_SIG_LEN + 32];
	if ((e = whsig_sign(sub.secret, dv.msg_id, ts, body, blen, sig1, sizeof(sig1))) == BW_OK &&
	    sub.prev_secret != NULL && sub.prev_until > ts)
		e = whsig_sign(sub.prev_secret, dv.msg_id, ts, body, blen, sig2, sizeof(sig2));
	if (e != BW_OK) {
		free(body);
		wh_sub_clear(&sub);
		return e;
	}
	snprintf(h_id, sizeof(h_id), "webhook-id: %s", dv.msg_id);
	snprintf(h_ts, sizeof(h_ts), "webhook-timestamp: %lld", (long long)ts);
	snprintf(h_sig, sizeof(h_sig), "webhook-signature: %s%s%s", sig1, sig2[0] ? " " : "", sig2);
	const char *headers[] = {h_id, h_ts, h_sig, "Content-Type: application/json", NULL};
	struct egress_opts eo = {0};
	eo.connect_timeout_ms = wh_cfg.connect_timeout_ms;
	eo.total_timeout_ms = wh_cfg.timeout_ms;
	eo.body_cap = WH_PREFIX_MAX;
	eo.allow_loopback = wh_cfg.allow_loopback;
	eo.ca_file = wh_cfg.ca_file != NULL && wh_cfg.ca_file[0] ? wh_cfg.ca_file : NULL;
	eo.resolve = wh_cfg.resolve;
	eo.cancelled = wh_stopping;
	eo.cancel_arg = (void *)j->stopping;
	struct egress_result *res = calloc(1, sizeof(*res));
	if (res == NULL) {
		free(body);
		wh_sub_clear(&sub);
		return BW_ERR_NOMEM;
	}
	bw_err pe = egress_post(sub.url, headers, body, blen, &eo, res);
	crypto_wipe(sig1, sizeof(sig1));
	crypto_wipe(sig2, sizeof(sig2));
	free(body);
	memset(&o, 0, sizeof(o));
	o.dv = &dv;
	o.sub = &sub;
	o.at_ms = now_ms;
	o.status = res->status;
	o.latency_ms = res->latency_ms;
	o.ok = pe == BW_OK && res->status >= 200 && res->status < 300;
	if (!o.ok) {
		if (pe == BW_OK)
			snprintf(o.error, sizeof(o.error), "the receiver answered HTTP %ld", res->status);
		else
			snprintf(o.error, sizeof(o.error), "%s",
				 res->error[0] ? res->error : bw_strerror(pe));
		o.next_at_ms = now_ms + wh_next_ms(j->attempts);
	}
	wh_prefix(res->body, res->body_len, o.prefix);
	free(res);
	e = op_tx(op, wh_record_tx, &o);
	wh_sub_clear(&sub);
	if (e != BW_OK)
		return e;
	if (o.ok)
		return BW_OK;
	snprintf(retry->error, sizeof(retry->error), "%s", o.error);
	retry->at_ms = o.next_at_ms;
	retry->permanent = o.disabled;
	return BW_ERR_IO;
}

/* The delivery's job ended without success: the delivery shows it. */
static bw_err
wh_deliver_ended(struct op *op, const struct job *j, const char *state, const char *why)
{
	int64_t did = json_integer_value(json_object_get(j->payload, "delivery"));
	return DB_RUN(op->d,
		      "UPDATE webhook_deliveries SET state = ?, last_error = ?, next_at_ms = 0"
		      " WHERE id = ? AND state = 'pending'",
		      DB_TEXT(state), DB_TEXT(why), DB_INT(did));
}

/* --- the log and redelivery ---------------------------------------------------------- */

bw_err
webhook_delivery_get(struct op *op, int64_t sub, int64_t did, json_t **out)
{
	db_stmt *st;
	int row;
	db *d;
	*out = NULL;
	bw_err e = op_db(op, &d);
	if (e != BW_OK)
		return e;
	if ((e = db_prepare_cached(d,
				   "SELECT d.id, d.event_id, e.type, d.msg_id, d.state, d.attempts,"
				   " d.last_at_ms, d.next_at_ms, d.last_status, d.last_latency_ms,"
				   " d.last_error, d.response_prefix, d.created_at, d.delivered_at"
				   " FROM webhook_deliveries d LEFT JOIN events e ON e.id = d.event_id"
				   " WHERE d.id = ? AND d.subscription_id = ?",
				   &st)) != BW_OK)
		return e;
	if ((e = DB_BIND(st, DB_INT(did), DB_INT(sub))) == BW_OK && (e = db_step(st, &row)) == BW_OK) {
		if (!row)
			e = BW_ERR_NOTFOUND;
		else {
			char evid[32], la[UTIL_TIME_LEN], na[UTIL_TIME_LEN], ca[UTIL_TIME_LEN],
			    da[UTIL_TIME_LEN];
			event_public_id(db_col_int(st, 1), evid);
			int64_t last = db_col_int(st, 6), next = db_col_int(st, 7),
				dlv = db_col_int(st, 13);
			const char *state = db_col_text(st, 4);
			*out = json_pack(
			    "{s:I, s:s, s:s?, s:s, s:s, s:I, s:s?, s:s?, s:I, s:I, s:s, s:s, s:s, s:s?}",
			    "id", (json_int_t)db_col_int(st, 0), "event_id", evid, "event_type",
			    db_col_text(st, 2), "webhook_id", db_col_text(st, 3), "state", state,
			    "attempts", (json_int_t)db_col_int(st, 5), "last_attempt_at",
			    last ? util_time_rfc3339(last / 1000, la) : NULL, "next_attempt_at",
			    next && strcmp(state, "pending") == 0 ? util_time_rfc3339(next / 1000, na)
								   : NULL,
			    "response_status", (json_int_t)db_col_int(st, 8), "latency_ms",
			    (json_int_t)db_col_int(st, 9), "last_error", db_col_text(st, 10),
			    "response_prefix", db_col_text(st, 11), "created_at",
			    util_time_rfc3339(db_col_int(st, 12), ca), "delivered_at",
			    dlv ? util_time_rfc3339(dlv, da) : NULL);
			if (*out == NULL)
				e = BW_ERR_NOMEM;
		}
	}
	db_done(st);
	if (e == BW_ERR_NOTFOUND)
		return op_fail(op, e, "no such delivery of this subscription");
	return e;
}

struct wh_redeliver_arg {
	int64_t sub, did;
};

static bw_err
wh_redeliver_tx(struct op *op, void *arg)
{
	struct wh_redeliver_arg *r = arg;
	struct wh_delivery dv;
	struct wh_sub s;
	bw_err e = wh_sub_read(op, r->sub, 1, &s);
	if (e != BW_OK)
		return e;
	int enabled = s.enabled;
	wh_sub_clear(&s);
	if ((e = wh_delivery_read(op, r->did, &dv)) == BW_ERR_NOTFOUND || (e == BW_OK && dv.sub != r->sub))
		return op_fail(op, BW_ERR_NOTFOUND, "no such delivery of this subscription");
	if (e != BW_OK)
		return e;
	if (!enabled)
		return op_fail(op, BW_ERR_CONFLICT, "the subscription is disabled: enable it first");
	if (strcmp(dv.state, "pending") == 0)
		return op_fail(op, BW_ERR_CONFLICT, "this delivery is still being tried");
	char lane[JOB_LANE_MAX + 1];
	snprintf(lane, sizeof(lane), "webhook:%lld", (long long)r->sub);
	json_t *pl = json_pack("{s:I}", "delivery", (json_int_t)dv.id);
	json_t *b = json_pack("{s:s}", "state", dv.state);
	json_t *a = json_pack("{s:s, s:I, s:s}", "state", "pending", "delivery", (json_int_t)dv.id,
			      "webhook_id", dv.msg_id);
	if (pl == NULL || a == NULL || b == NULL)
		e = BW_ERR_NOMEM;
	if (e == BW_OK)
		e = DB_RUN(op->d,
			   "UPDATE webhook_deliveries SET state = 'pending', last_error = '',"
			   " next_at_ms = ? WHERE id = ?",
			   DB_INT(jobs_now_ms()), DB_INT(dv.id));
	if (e == BW_OK)
		e = job_enqueue(op, WEBHOOK_JOB_DELIVER, WH_MAX_ATTEMPTS, lane, pl, 0, NULL);
	if (e == BW_OK)
		e = audit_op(op, "webhooks", r->sub, "redeliver", b, a);
	json_decref(pl);
	json_decref(a);
	json_decref(b);
	return e;
}

bw_err
webhook_redeliver(struct op *op, int64_t sub, int64_t did)
{
	struct wh_redeliver_arg r = {sub, did};
	return op_tx(op, wh_redeliver_tx, &r);
}

/* --- the runner's share ------------------------------------------------------------- */

static bw_err
wh_reclaim(struct op *op, int *n)
{
	int64_t k = 0;
	struct job_kind kinds[2];
	struct jobs_tick ticks[3];
	size_t nk, nt;
	webhooks_jobs(kinds, &nk, ticks, &nt);
	bw_err e = jobs_reclaim(op, kinds, nk, &k);
	*n = 0; /* reclaimed jobs are found by the claims that follow */
	if (e == BW_OK && k > 0)
		log_warn("tenant %s: %lld job(s) whose runner stopped queued again", op->tn.slug,
			 (long long)k);
	return e;
}

/* Old rows go: delivered or failed deliveries and their events after 30 days, done jobs after 7. */
static bw_err
wh_housekeeping(struct op *op, int *n)
{
	db *d;
	*n = 0;
	bw_err e = op_db(op, &d);
	int64_t now = jobs_now_ms() / 1000;
	if (e == BW_OK)
		e = DB_RUN(d, "DELETE FROM webhook_deliveries WHERE state <> 'pending' AND created_at < ?",
			   DB_INT(now - WH_KEEP_S));
	if (e == BW_OK)
		e = DB_RUN(d,
			   "DELETE FROM events WHERE dispatched = 1 AND at_ms < ? AND NOT EXISTS"
			   " (SELECT 1 FROM webhook_deliveries w WHERE w.event_id = events.id)",
			   DB_INT((now - WH_KEEP_S) * 1000));
	if (e == BW_OK)
		e = DB_RUN(d, "DELETE FROM jobs WHERE state = 'done' AND updated_at < ?",
			   DB_INT(now - WH_JOBS_KEEP_S));
	if (e == BW_OK)
		e = DB_RUN(d, "DELETE FROM hook_replays WHERE expires_at < ?", DB_INT(now));
	if (e == BW_OK)
		e = DB_RUN(d, "DELETE FROM hook_events WHERE state <> 'received' AND received_at < ?",
			   DB_INT(now - WH_KEEP_S));
	return e;
}

bw_err wh_inbound_run(struct op *op, const struct job *j, struct job_retry *retry);

void
webhooks_jobs(struct job_kind *kinds, size_t *nk, struct jobs_tick *ticks, size_t *nt)
{
	static const int inbound_backoff[] = {5, 30, 120, 600, 3600};
	const int *bo;
	size_t nbo;
	wh_backoff(&bo, &nbo);
	kinds[0] = (struct job_kind){WEBHOOK_JOB_DELIVER, WH_MAX_ATTEMPTS, bo, nbo, 0,
				     wh_deliver_run, wh_deliver_ended};
	kinds[1] = (struct job_kind){WEBHOOK_JOB_INBOUND, 6,
				     wh_cfg.test_retry_s > 0 ? bo : inbound_backoff,
				     wh_cfg.test_retry_s > 0 ? nbo : BW_ARRAY_LEN(inbound_backoff),
				     0, wh_inbound_run, NULL};
	*nk = 2;
	ticks[0] = (struct jobs_tick){"job: dispatch events", 0, wh_dispatch};
	ticks[1] = (struct jobs_tick){"job: reclaim lost jobs", 5000, wh_reclaim};
	ticks[2] = (struct jobs_tick){"job: housekeeping", 600000, wh_housekeeping};
	*nt = 3;
}
