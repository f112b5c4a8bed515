/*
 * Inbound provider webhooks: endpoints a tenant registers (the provider's
 * secret sealed), and what arrives at them: verified (constant time,
 * timestamp tolerance), checked against the replay store, recorded, and
 * processed by a job (docs/webhooks.md).
 */
#include "webhooks.h"
#include "webhooks_int.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../audit/audit.h"
#include "../crypto/crypto.h"
#include "../db/db.h"
#include "../events/events.h"
#include "../tenancy/tenancy.h"
#include "sig.h"

#define HOOK_KEY_MAX 100          /* a provider's event id kept as it is, else hashed */
/*
 * Intuit signs no timestamp: a body is refused again for 35 days (longer
 * than processed events are kept), and one whose changes are all older
 * than 30 days is refused as stale.
 */
#define HOOK_QBO_REPLAY_S (35 * 86400)
#define HOOK_QBO_STALE_S (30 * 86400)
#define HOOK_PUBLIC_BYTES 16

static const char *const hook_names[] = {NULL, "stripe", "quickbooks", "standard"};

const char *
hook_provider_name(enum hook_provider p)
{
	return p >= HOOK_STRIPE && p <= HOOK_STANDARD ? hook_names[p] : "?";
}

bw_err
hook_provider_parse(const char *s, enum hook_provider *out)
{
	for (int i = HOOK_STRIPE; i <= HOOK_STANDARD; i++)
		if (s != NULL && strcmp(s, hook_names[i]) == 0) {
			*out = (enum hook_provider)i;
			return BW_OK;
		}
	return BW_ERR_INVALID;
}

/* --- endpoints ---------------------------------------------------------------- */

struct hook_ep {
	int64_t id, version;
	char public_id[65];
	enum hook_provider provider;
	char description[WEBHOOK_DESCRIPTION_MAX + 1];
	int enabled;
	char *secret;
	int64_t created_at, updated_at;
	char path[160]; /* the URL path to give the provider */
};

static void
hook_ep_clear(struct hook_ep *h)
{
	if (h->secret != NULL) {
		crypto_wipe(h->secret, strlen(h->secret));
		free(h->secret);
	}
	memset(h, 0, sizeof(*h));
}

/* By id (public NULL) or by public id; secret opened when want_secret. */
static bw_err
hook_ep_read(struct op *op, int64_t id, const char *public_id, int want_secret, struct hook_ep *out)
{
	db *d;
	db_stmt *s;
	int row;
	memset(out, 0, sizeof(*out));
	bw_err e = op_db(op, &d);
	if (e != BW_OK)
		return e;
	if ((e = db_prepare_cached(d,
				   public_id != NULL
				       ? "SELECT id, version, public_id, provider, description, enabled,"
					 " secret, created_at, updated_at FROM hook_endpoints WHERE public_id = ?"
				       : "SELECT id, version, public_id, provider, description, enabled,"
					 " secret, created_at, updated_at FROM hook_endpoints WHERE id = ?",
				   &s)) != BW_OK)
		return e;
	e = public_id != NULL ? db_bind_text(s, 1, public_id) : db_bind_int(s, 1, id);
	if (e == BW_OK && (e = db_step(s, &row)) == BW_OK) {
		if (!row || hook_provider_parse(db_col_text(s, 3), &out->provider) != BW_OK)
			e = BW_ERR_NOTFOUND;
		else {
			out->id = db_col_int(s, 0);
			out->version = db_col_int(s, 1);
			snprintf(out->public_id, sizeof(out->public_id), "%s", db_col_text(s, 2));
			snprintf(out->description, sizeof(out->description), "%s", db_col_text(s, 4));
			out->enabled = (int)db_col_int(s, 5);
			out->created_at = db_col_int(s, 7);
			out->updated_at = db_col_int(s, 8);
			snprintf(out->path, sizeof(out->path), "/api/v1/hooks/%s/%s",
				 hook_provider_name(out->provider), out->public_id);
			size_t n = 0, len;
			const void *p = db_col_blob(s, 6, &n);
			if (want_secret)
				e = p == NULL ? BW_ERR_CRYPTO
					      : field_open(op->ten, op->tn.slug, "hook_endpoints",
							   "secret", out->id, p, n, &out->secret, &len);
		}
	}
	db_done(s);
	if (e != BW_OK)
		hook_ep_clear(out);
	return e;
}

static json_t *
hook_ep_json(const struct hook_ep *h)
{
	char ca[UTIL_TIME_LEN], ua[UTIL_TIME_LEN];
	return json_pack("{s:I, s:I, s:s, s:s, s:s, s:b, s:b, s:s, s:s}", "id", (json_int_t)h->id,
			 "version", (json_int_t)h->version, "provider",
			 hook_provider_name(h->provider), "path",
			 h->path, "description", h->description, "enabled",
			 h->enabled, "secret_set", 1, "created_at",
			 util_time_rfc3339(h->created_at, ca), "updated_at",
			 util_time_rfc3339(h->updated_at, ua));
}

/* The provider's secret as given: usable by its scheme, or why not (BW_ERR_INVALID recorded). */
static bw_err
hook_secret_check(struct op *op, enum hook_provider p, json_t *v)
{
	const char *s = json_string_value(v);
	if (s == NULL || *s == '\0' || strlen(s) > WHSIG_TOKEN_MAX)
		return op_fail(op, BW_ERR_INVALID,
			       "secret must be the provider's signing secret (text of 1 to 1024 bytes)");
	if (p == HOOK_STANDARD) {
		unsigned char key[WHSIG_KEY_MAX];
		size_t n = 0;
		bw_err e = whsig_secret_decode(s, key, &n);
		crypto_wipe(key, sizeof(key));
		if (e != BW_OK)
			return op_fail(op, BW_ERR_INVALID,
				       "secret must be the sender's whsec_... secret (Standard Webhooks)");
	}
	return BW_OK;
}

static bw_err
hook_fields(struct op *op, json_t *in, int create)
{
	const char *key;
	json_t *v;
	json_object_foreach(in, key, v)
	{
		if ((create && strcmp(key, "provider") == 0) || strcmp(key, "secret") == 0 ||
		    strcmp(key, "description") == 0 || strcmp(key, "enabled") == 0)
			continue;
		return op_fail(op, BW_ERR_INVALID,
			       pool_printf(op->pool, "unknown field '%.64s' (%sdescription, enabled, secret)",
					   key, create ? "provider, " : ""));
	}
	v = json_object_get(in, "description");
	if (v != NULL && (!json_is_string(v) || strlen(json_string_value(v)) > WEBHOOK_DESCRIPTION_MAX))
		return op_fail(op, BW_ERR_INVALID, "description must be text of at most 500 bytes");
	v = json_object_get(in, "enabled");
	if (v != NULL && !json_is_boolean(v))
		return op_fail(op, BW_ERR_INVALID, "enabled must be true or false");
	return BW_OK;
}

static bw_err
hook_seal_secret(struct op *op, int64_t id, const char *secret)
{
	unsigned char *sealed = NULL;
	size_t n = 0;
	bw_err e = field_seal(op->ten, &op->tn, "hook_endpoints", "secret", id, secret,
			      strlen(secret), &sealed, &n);
	if (e == BW_OK)
		e = DB_RUN(op->d, "UPDATE hook_endpoints SET secret = ? WHERE id = ?", DB_BLOB(sealed, n),
			   DB_INT(id));
	free(sealed);
	return e;
}

struct hook_arg {
	json_t *in;
	int64_t id;
	json_t *out;
};

static bw_err
hook_create_tx(struct op *op, void *arg)
{
	struct hook_arg *a = arg;
	enum hook_provider p;
	json_decref(a->out);
	a->out = NULL;
	bw_err e = hook_fields(op, a->in, 1);
	if (e != BW_OK)
		return e;
	if (hook_provider_parse(json_string_value(json_object_get(a->in, "provider")), &p) != BW_OK)
		return op_fail(op, BW_ERR_INVALID, "provider must be stripe, quickbooks or standard");
	json_t *sv = json_object_get(a->in, "secret");
	if (sv == NULL)
		return op_fail(op, BW_ERR_INVALID, "secret is required: the provider's signing secret");
	if ((e = hook_secret_check(op, p, sv)) != BW_OK)
		return e;
	unsigned char rnd[HOOK_PUBLIC_BYTES];
	char hex[2 * HOOK_PUBLIC_BYTES + 1], pub[2 * HOOK_PUBLIC_BYTES + 4];
	if ((e = util_random(rnd, sizeof(rnd))) != BW_OK)
		return e;
	util_hex(rnd, sizeof(rnd), hex);
	snprintf(pub, sizeof(pub), "hk_%s", hex);
	const char *desc = json_string_value(json_object_get(a->in, "description"));
	json_t *en = json_object_get(a->in, "enabled");
	int64_t id = 0, now = jobs_now_ms() / 1000;
	if ((e = DB_INSERT(op->d, &id,
			   "INSERT INTO hook_endpoints (public_id, provider, description, secret,"
			   " enabled, created_at, updated_at, version) VALUES (?, ?, ?, NULL, ?, ?, ?, 1)",
			   DB_TEXT(pub), DB_TEXT(hook_provider_name(p)), DB_TEXT(desc ? desc : ""),
			   DB_INT(en == NULL || json_is_true(en)), DB_INT(now), DB_INT(now))) != BW_OK ||
	    (e = hook_seal_secret(op, id, json_string_value(sv))) != BW_OK)
		return e;
	json_t *after = json_pack("{s:s, s:s}", "provider", hook_provider_name(p), "description",
				  desc ? desc : "");
	e = after != NULL ? audit_op(op, "hooks", id, "create", NULL, after) : BW_ERR_NOMEM;
	json_decref(after);
	struct hook_ep h;
	if (e == BW_OK && (e = hook_ep_read(op, id, NULL, 0, &h)) == BW_OK) {
		a->out = hook_ep_json(&h);
		hook_ep_clear(&h);
		if (a->out == NULL)
			e = BW_ERR_NOMEM;
	}
	return e;
}

static bw_err
hook_run(struct op *op, op_tx_fn fn, struct hook_arg *a, json_t **out)
{
	if (out != NULL)
		*out = NULL;
	bw_err e = op_tx(op, fn, a);
	if (e != BW_OK || out == NULL) {
		json_decref(a->out);
		return e;
	}
	*out = a->out;
	return BW_OK;
}

bw_err
hook_endpoint_create(struct op *op, json_t *in, json_t **out)
{
	struct hook_arg a = {in, 0, NULL};
	return hook_run(op, hook_create_tx, &a, out);
}

bw_err
hook_endpoint_get(struct op *op, int64_t id, json_t **out)
{
	struct hook_ep h;
	*out = NULL;
	bw_err e = hook_ep_read(op, id, NULL, 0, &h);
	if (e == BW_ERR_NOTFOUND)
		return op_fail(op, e, "no such inbound endpoint");
	if (e != BW_OK)
		return e;
	*out = hook_ep_json(&h);
	hook_ep_clear(&h);
	return *out != NULL ? BW_OK : BW_ERR_NOMEM;
}

static bw_err
hook_update_tx(struct op *op, void *arg)
{
	struct hook_arg *a = arg;
	struct hook_ep h;
	json_decref(a->out);
	a->out = NULL;
	bw_err e = hook_ep_read(op, a->id, NULL, 0, &h);
	if (e == BW_ERR_NOTFOUND)
		return op_fail(op, e, "no such inbound endpoint");
	if (e != BW_OK || (e = hook_fields(op, a->in, 0)) != BW_OK)
		goto out;
	json_t *sv = json_object_get(a->in, "secret"), *dv = json_object_get(a->in, "description"),
	       *ev = json_object_get(a->in, "enabled");
	json_t *b = json_object(), *c = json_object();
	if (b == NULL || c == NULL)
		e = BW_ERR_NOMEM;
	if (e == BW_OK && sv != NULL && (e = hook_secret_check(op, h.provider, sv)) == BW_OK &&
	    (e = hook_seal_secret(op, h.id, json_string_value(sv))) == BW_OK)
		json_object_set_new(c, "secret", json_string("(replaced)"));
	if (e == BW_OK && dv != NULL && strcmp(json_string_value(dv), h.description) != 0) {
		json_object_set_new(b, "description", json_string(h.description));
		json_object_set(c, "description", dv);
	}
	if (e == BW_OK && ev != NULL && json_is_true(ev) != h.enabled) {
		json_object_set_new(b, "enabled", json_boolean(h.enabled));
		json_object_set(c, "enabled", ev);
	}
	if (e == BW_OK && json_object_size(c) > 0) {
		e = DB_RUN(op->d,
			   "UPDATE hook_endpoints SET description = ?, enabled = ?, updated_at = ?,"
			   " version = version + 1 WHERE id = ?",
			   DB_TEXT(dv ? json_string_value(dv) : h.description),
			   DB_INT(ev ? json_is_true(ev) : h.enabled), DB_INT(jobs_now_ms() / 1000),
			   DB_INT(h.id));
		if (e == BW_OK)
			e = audit_op(op, "hooks", h.id, "update", b, c);
	}
	json_decref(b);
	json_decref(c);
	hook_ep_clear(&h);
	if (e == BW_OK && (e = hook_ep_read(op, a->id, NULL, 0, &h)) == BW_OK) {
		a->out = hook_ep_json(&h);
		if (a->out == NULL)
			e = BW_ERR_NOMEM;
	}
out:
	hook_ep_clear(&h);
	return e;
}

bw_err
hook_endpoint_update(struct op *op, int64_t id, json_t *in, json_t **out)
{
	struct hook_arg a = {in, id, NULL};
	return hook_run(op, hook_update_tx, &a, out);
}

static bw_err
hook_delete_tx(struct op *op, void *arg)
{
	struct hook_arg *a = arg;
	struct hook_ep h;
	bw_err e = hook_ep_read(op, a->id, NULL, 0, &h);
	if (e == BW_ERR_NOTFOUND)
		return op_fail(op, e, "no such inbound endpoint");
	if (e != BW_OK)
		return e;
	json_t *b = json_pack("{s:s, s:s}", "provider", hook_provider_name(h.provider),
			      "description", h.description);
	if ((e = DB_RUN(op->d, "DELETE FROM hook_replays WHERE endpoint_id = ?", DB_INT(h.id))) == BW_OK &&
	    (e = DB_RUN(op->d, "DELETE FROM hook_events WHERE endpoint_id = ?", DB_INT(h.id))) == BW_OK &&
	    (e = DB_RUN(op->d, "DELETE FROM hook_endpoints WHERE id = ?", DB_INT(h.id))) == BW_OK)
		e = b != NULL ? audit_op(op, "hooks", h.id, "delete", b, NULL) : BW_ERR_NOMEM;
	json_decref(b);
	hook_ep_clear(&h);
	return e;
}

bw_err
hook_endpoint_delete(struct op *op, int64_t id)
{
	struct hook_arg a = {NULL, id, NULL};
	return hook_run(op, hook_delete_tx, &a, NULL);
}

/* --- receiving ------------------------------------------------------------------ */

static void
hook_sha256_hex(const void *p, size_t n, char out[65])
{
	unsigned char md[32];
	unsigned int mdlen = 0;
	if (EVP_Digest(p, n, md, &mdlen, EVP_sha256(), NULL) != 1)
		memset(md, 0, sizeof(md));
	util_hex(md, sizeof(md), out);
}

/* A provider's event id as the key it is recorded under: itself when short and plain, else hashed. */
static void
hook_key(const char *id, char out[HOOK_KEY_MAX + 8])
{
	size_t n = strlen(id);
	int plain = n > 0 && n <= HOOK_KEY_MAX;
	for (size_t i = 0; plain && i < n; i++)
		plain = id[i] > 0x20 && id[i] < 0x7f;
	if (plain) {
		snprintf(out, HOOK_KEY_MAX + 8, "%s", id);
		return;
	}
	char hex[65];
	hook_sha256_hex(id, n, hex);
	snprintf(out, HOOK_KEY_MAX + 8, "sha256:%.64s", hex);
}

/* What a verified request is recorded as. */
struct hook_rec {
	const struct hook_ep *ep;
	const struct hook_request *r;
	char key[HOOK_KEY_MAX + 8];
	char type[129];
	char nonce[65];
	int64_t nonce_expires;
	int duplicate;
	int replay;
};

static bw_err
hook_record_tx(struct op *op, void *arg)
{
	struct hook_rec *x = arg;
	int64_t id = 0, hid = 0, now = jobs_now_ms() / 1000;
	x->duplicate = x->replay = 0;
	bw_err e = DB_RUN(op->d,
			  "INSERT INTO hook_replays (endpoint_id, nonce, expires_at) VALUES (?, ?, ?)",
			  DB_INT(x->ep->id), DB_TEXT(x->nonce), DB_INT(x->nonce_expires));
	if (e == BW_ERR_CONFLICT) {
		x->replay = 1;
		return op_fail(op, BW_ERR_CONFLICT,
			       "this signed request was received before: a replay is refused");
	}
	if (e != BW_OK)
		return e;
	if ((e = DB_QUERY_INT(op->d, &hid,
			      "SELECT id FROM hook_events WHERE endpoint_id = ? AND event_key = ?",
			      DB_INT(x->ep->id), DB_TEXT(x->key))) != BW_OK)
		return e;
	if (hid != 0) {
		x->duplicate = 1; /* the provider sent it again, freshly signed: taken once */
		return BW_OK;
	}
	if ((e = DB_INSERT(op->d, &id,
			   "INSERT INTO hook_events (endpoint_id, provider, event_key, event_type, body,"
			   " state, received_at, processed_at) VALUES (?, ?, ?, ?, NULL, 'received', ?, 0)",
			   DB_INT(x->ep->id), DB_TEXT(hook_provider_name(x->ep->provider)),
			   DB_TEXT(x->key), DB_TEXT(x->type), DB_INT(now))) != BW_OK)
		return e;
	unsigned char *sealed = NULL;
	size_t n = 0;
	e = field_seal(op->ten, &op->tn, "hook_events", "body", id, x->r->body, x->r->len, &sealed, &n);
	if (e == BW_OK)
		e = DB_RUN(op->d, "UPDATE hook_events SET body = ? WHERE id = ?", DB_BLOB(sealed, n),
			   DB_INT(id));
	free(sealed);
	json_t *pl = json_pack("{s:I}", "hook_event", (json_int_t)id);
	if (e == BW_OK)
		e = pl != NULL ? job_enqueue(op, WEBHOOK_JOB_INBOUND, 6, NULL, pl, 0, NULL) : BW_ERR_NOMEM;
	json_decref(pl);
	json_t *after = json_pack("{s:s, s:s, s:s}", "provider", hook_provider_name(x->ep->provider),
				  "event_key", x->key, "event_type", x->type);
	if (e == BW_OK)
		e = after != NULL ? audit_op(op, "hooks", x->ep->id, "received", NULL, after)
				  : BW_ERR_NOMEM;
	json_decref(after);
	return e;
}

struct hook_refusal {
	int64_t endpoint;
	const char *provider, *reason;
};

static bw_err
hook_refusal_tx(struct op *op, void *arg)
{
	struct hook_refusal *f = arg;
	json_t *after = json_pack("{s:s, s:s}", "provider", f->provider, "reason", f->reason);
	bw_err e = after != NULL ? audit_op(op, "hooks", f->endpoint, "refused", NULL, after)
				 : BW_ERR_NOMEM;
	json_decref(after);
	return e;
}

/* Refuse with e and msg (client-safe), after a security audit row saying why. */
static bw_err
hook_refuse(struct op *op, int64_t endpoint, const char *provider, bw_err e, const char *msg)
{
	struct hook_refusal f = {endpoint, provider, msg};
	op_clear(op);
	if (op_tx(op, hook_refusal_tx, &f) != BW_OK)
		log_warn("tenant %s: refused inbound %s event not audited", op->tn.slug, provider);
	op_clear(op);
	log_info("tenant %s: inbound %s event refused: %s", op->tn.slug, provider, msg);
	return op_fail(op, e, msg);
}

static bw_err
hook_why(struct op *op, const struct hook_ep *ep, enum whsig_why why, const char *header)
{
	const char *p = hook_provider_name(ep->provider);
	switch (why) {
	case WHSIG_MISSING:
		return hook_refuse(op, ep->id, p, BW_ERR_INVALID,
				   pool_printf(op->pool, "the %s header is missing", header));
	case WHSIG_MALFORMED:
		return hook_refuse(op, ep->id, p, BW_ERR_INVALID,
				   pool_printf(op->pool, "the %s header is malformed", header));
	case WHSIG_STALE:
		return hook_refuse(op, ep->id, p, BW_ERR_UNAUTHORIZED,
				   "the signed timestamp is outside the tolerance");
	case WHSIG_MISMATCH:
		return hook_refuse(op, ep->id, p, BW_ERR_UNAUTHORIZED, "the signature does not verify");
	case WHSIG_BAD_SECRET:
		return hook_refuse(op, ep->id, p, BW_ERR_UNAVAILABLE,
				   "this endpoint's secret is not usable: replace it");
	case WHSIG_OK:
	case WHSIG__COUNT:
	default:
		return hook_refuse(op, ep->id, p, BW_ERR_UNAUTHORIZED, "the signature does not verify");
	}
}

/*
 * 1 when every lastUpdated of a QuickBooks notification is older than
 * HOOK_QBO_STALE_S (and there is at least one): a body seen long ago.
 */
static int
hook_qbo_stale(json_t *body, int64_t now)
{
	size_t i, k, seen = 0, old = 0;
	json_t *n, *ent;
	json_array_foreach(json_object_get(body, "eventNotifications"), i, n)
	{
		json_array_foreach(json_object_get(json_object_get(n, "dataChangeEvent"), "entities"), k,
				   ent)
		{
			int64_t t;
			const char *lu = json_string_value(json_object_get(ent, "lastUpdated"));
			if (lu == NULL || util_parse_rfc3339(lu, &t) != BW_OK)
				continue;
			seen++;
			old += now - t > HOOK_QBO_STALE_S;
		}
	}
	return seen > 0 && old == seen;
}

bw_err
hook_receive(struct op *op, const struct hook_request *r, int *duplicate)
{
	enum hook_provider p;
	struct hook_ep ep;
	struct hook_rec x;
	enum whsig_why why = WHSIG_OK;
	json_t *body = NULL;
	int64_t now = jobs_now_ms() / 1000, ts = 0;
	bw_err e;
	*duplicate = 0;
	memset(&x, 0, sizeof(x));
	/*
	 * An endpoint that is not there is refused without an audit row: anyone
	 * may post to a made-up path, and the log must not be theirs to fill.
	 */
	if (hook_provider_parse(r->provider, &p) != BW_OK)
		return op_fail(op, BW_ERR_NOTFOUND, "no such inbound endpoint");
	e = hook_ep_read(op, 0, r->endpoint, 1, &ep);
	if (e == BW_ERR_NOTFOUND || (e == BW_OK && ep.provider != p)) {
		hook_ep_clear(&ep);
		return op_fail(op, BW_ERR_NOTFOUND, "no such inbound endpoint");
	}
	if (e == BW_OK && !ep.enabled) {
		int64_t id = ep.id;
		hook_ep_clear(&ep);
		return hook_refuse(op, id, hook_provider_name(p), BW_ERR_NOTFOUND,
				   "no such inbound endpoint");
	}
	if (e != BW_OK)
		return e == BW_ERR_CRYPTO ? op_fail(op, BW_ERR_UNAVAILABLE, "this endpoint's secret cannot be opened")
					  : e;
	if (r->len > (size_t)r->body_max) {
		e = hook_refuse(op, ep.id, hook_provider_name(p), BW_ERR_TOO_LARGE,
				pool_printf(op->pool, "the body is over %ld bytes", r->body_max));
		goto out;
	}
	/* Verified first: nothing of an unsigned body is read. */
	switch (p) {
	case HOOK_STRIPE:
		e = whsig_stripe_verify(ep.secret, r->stripe_signature, r->body, r->len, now,
					r->tolerance, &ts, &why);
		break;
	case HOOK_QUICKBOOKS:
		e = whsig_intuit_verify(ep.secret, r->intuit_signature, r->body, r->len, &why);
		break;
	case HOOK_STANDARD:
		e = r->wh_id == NULL || r->wh_timestamp == NULL
			? (why = WHSIG_MISSING, BW_ERR_DENIED)
			: whsig_verify(ep.secret, r->wh_id, r->wh_timestamp, r->wh_signature, r->body,
				       r->len, now, r->tolerance, &why);
		break;
	default:
		abort();
	}
	if (e != BW_OK) {
		e = hook_why(op, &ep, why,
			     p == HOOK_STRIPE     ? "Stripe-Signature"
			     : p == HOOK_STANDARD ? "webhook-id, webhook-timestamp and webhook-signature"
						  : "intuit-signature");
		goto out;
	}
	body = json_loadb(r->body, r->len, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(body)) {
		e = hook_refuse(op, ep.id, hook_provider_name(p), BW_ERR_INVALID,
				"the body is not a JSON object");
		goto out;
	}
	const char *type = json_string_value(json_object_get(body, "type"));
	char material[WHSIG_HEADER_MAX + 64];
	switch (p) {
	case HOOK_STRIPE: {
		const char *id = json_string_value(json_object_get(body, "id"));
		if (id == NULL) {
			e = hook_refuse(op, ep.id, "stripe", BW_ERR_INVALID,
					"a Stripe event has an \"id\"");
			goto out;
		}
		hook_key(id, x.key);
		/*
		 * The nonce is what Stripe signed (t and the body), not the header:
		 * the same signed request with its entries reordered or padded
		 * (another v1, a v0) is the same request, a replay.
		 */
		EVP_MD_CTX *md = EVP_MD_CTX_new();
		unsigned char dg[32];
		unsigned int dl = 0;
		int ok = md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1;
		char tsb[32];
		int tl = snprintf(tsb, sizeof(tsb), "%lld.", (long long)ts);
		ok = ok && EVP_DigestUpdate(md, tsb, (size_t)tl) == 1 &&
		     EVP_DigestUpdate(md, r->body, r->len) == 1 && EVP_DigestFinal_ex(md, dg, &dl) == 1;
		EVP_MD_CTX_free(md);
		if (!ok) {
			e = BW_ERR_NOMEM;
			goto out;
		}
		util_hex(dg, sizeof(dg), x.nonce);
		x.nonce_expires = ts + r->tolerance + 60;
		break;
	}
	case HOOK_QUICKBOOKS:
		if (!json_is_array(json_object_get(body, "eventNotifications"))) {
			e = hook_refuse(op, ep.id, "quickbooks", BW_ERR_INVALID,
					"a QuickBooks event has \"eventNotifications\"");
			goto out;
		}
		type = "eventNotifications";
		if (hook_qbo_stale(body, now)) {
			e = hook_refuse(op, ep.id, "quickbooks", BW_ERR_UNAUTHORIZED,
					"every change it reports is more than 30 days old (a replay)");
			goto out;
		}
		hook_sha256_hex(r->body, r->len, x.nonce);
		snprintf(x.key, sizeof(x.key), "sha256:%s", x.nonce);
		x.nonce_expires = now + HOOK_QBO_REPLAY_S;
		break;
	case HOOK_STANDARD:
		hook_key(r->wh_id, x.key);
		snprintf(material, sizeof(material), "%s.%s", r->wh_id, r->wh_timestamp);
		hook_sha256_hex(material, strlen(material), x.nonce);
		/* Kept as long as its timestamp could pass (a future one too). */
		x.nonce_expires = strtoll(r->wh_timestamp, NULL, 10) + r->tolerance + 60;
		break;
	default:
		abort();
	}
	snprintf(x.type, sizeof(x.type), "%s", type != NULL ? type : "");
	x.ep = &ep;
	x.r = r;
	e = op_tx(op, hook_record_tx, &x);
	if (e == BW_ERR_CONFLICT && x.replay)
		e = hook_refuse(op, ep.id, hook_provider_name(p), BW_ERR_CONFLICT,
				"this signed request was received before: a replay is refused");
	else if (e == BW_OK)
		*duplicate = x.duplicate;
out:
	json_decref(body);
	hook_ep_clear(&ep);
	return e;
}

/* --- processing -------------------------------------------------------------------- */

struct hook_proc {
	int64_t id;
};

static bw_err
hook_process_tx(struct op *op, void *arg)
{
	struct hook_proc *pr = arg;
	db_stmt *s;
	int row;
	char state[17] = "", provider[33] = "", key[HOOK_KEY_MAX + 8] = "", type[129] = "";
	int64_t endpoint = 0;
	bw_err e = db_prepare_cached(
	    op->d,
	    db_driver_of(op->d) == DB_MARIADB
		? "SELECT state, provider, event_key, event_type, endpoint_id FROM hook_events WHERE id = ? FOR UPDATE"
		: "SELECT state, provider, event_key, event_type, endpoint_id FROM hook_events WHERE id = ?",
	    &s);
	if (e != BW_OK)
		return e;
	if ((e = db_bind_int(s, 1, pr->id)) == BW_OK && (e = db_step(s, &row)) == BW_OK && row) {
		snprintf(state, sizeof(state), "%s", db_col_text(s, 0));
		snprintf(provider, sizeof(provider), "%s", db_col_text(s, 1));
		snprintf(key, sizeof(key), "%s", db_col_text(s, 2));
		snprintf(type, sizeof(type), "%s", db_col_text(s, 3));
		endpoint = db_col_int(s, 4);
	}
	db_done(s);
	if (e != BW_OK || strcmp(state, "received") != 0)
		return e; /* processed already (or gone): processing is idempotent */
	/*
	 * What each provider's events do arrives with its integration (Stripe
	 * payments, QuickBooks sync); until then an event is made known to the
	 * tenant's own subscribers, once.
	 */
	json_t *data = json_pack("{s:s, s:I, s:s, s:s, s:I}", "provider", provider, "endpoint_id",
				 (json_int_t)endpoint, "event_key", key, "event_type", type, "id",
				 (json_int_t)pr->id);
	e = data != NULL ? event_emit(op, "hooks.received", "hooks", pr->id, data, NULL)
			 : BW_ERR_NOMEM;
	json_decref(data);
	if (e == BW_OK)
		e = DB_RUN(op->d,
			   "UPDATE hook_events SET state = 'processed', processed_at = ? WHERE id = ?",
			   DB_INT(jobs_now_ms() / 1000), DB_INT(pr->id));
	return e;
}

bw_err wh_inbound_run(struct op *op, const struct job *j, struct job_retry *retry);

bw_err
wh_inbound_run(struct op *op, const struct job *j, struct job_retry *retry)
{
	struct hook_proc pr = {json_integer_value(json_object_get(j->payload, "hook_event"))};
	(void)retry;
	return op_tx(op, hook_process_tx, &pr);
}
