/*
 * Idempotency-Key on POST (issue #14, ADR 0015). The same caller sending
 * the same key with the same request within 24 hours gets the first reply
 * again (status, body, Location, ETag, with Idempotent-Replayed: true) and
 * nothing is written; the same key with another request is refused (422);
 * while the first is still running, 409. Rows live in the tenant's own
 * database (idempotency_keys, migration 13), so this holds across app
 * servers.
 *
 * The pipeline calls idempotency_begin() after the permission stage,
 * instead of the handler when it replays, and idempotency_end() once the
 * reply is decided. The key and the request are stored only as HMACs
 * under a per-tenant key (sealed, made on first use): a body holding a
 * password cannot be guessed at offline from its hash. The reply is sealed
 * with the tenant's data key, bound to its row (field.c lists the column,
 * so key rotation re-encrypts it and a purge never drops a key it uses),
 * and carries the caller, key and request it answers, checked on replay.
 *
 * The crash window between the handler's commit and the stored reply: the
 * reservation is marked by the first statement of every transaction the
 * handler runs (op->tx_begin), inside that transaction, so "a write was
 * committed under this key" commits or rolls back with the write itself.
 * A reservation left without a mark (the server died before writing) is
 * taken over by a retry after IDEMPOTENCY_LEASE_SECONDS; one with a mark
 * but no reply is never run again (409: carried out, reply lost). The mark
 * is a compare-and-set on the reserving request's id, so a request whose
 * reservation was taken over can no longer commit anything.
 */
#include "server_int.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "../crypto/crypto.h"

#define IDEM_MAC_KEY_LEN 32
#define IDEM_HEADER "Idempotency-Key"

/*
 * Top-level members of a reply that are credentials (a new user's one-time
 * password; a network device's credential, revealed by an audited action:
 * a replay would hand it out again with no audit row, and keep a copy past
 * its change or its device's deletion; the caller's own credential routes,
 * which take no key, return the others). Such a reply is never stored: a
 * retry hears that the request was carried out, and nothing more.
 */
static const char *const idem_secret_members[] = {
    "one_time_password", "token", "secret", "otpauth_uri", "recovery_codes", "credential",
};

/* Reply headers that describe the reply itself, and so are replayed. */
static const char *const idem_kept_headers[] = {"Location", "ETag", "Link"};

static int64_t
idem_now(void)
{
	return (int64_t)time(NULL);
}

static enum MHD_Result
idem_count_field(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	(void)kind, (void)value;
	if (strcasecmp(key, IDEM_HEADER) == 0)
		(*(unsigned *)cls)++;
	return MHD_YES;
}

/*
 * Whether a route takes a key: every POST with a caller, but not public
 * routes (sign-in: there is no caller to scope a key to) nor the caller's
 * own credentials ("self.*": sign-out, password, sessions, tokens, MFA).
 * Those re-check a password or hand out a credential: replaying would keep
 * the credential, and comparing a retry's body with the first would tell
 * whether a guessed password was the one sent, outside the attempt count.
 */
static int
idem_route_takes_key(const struct route *rt)
{
	if (rt->flags & (ROUTE_PUBLIC | ROUTE_NO_TENANT))
		return 0;
	return rt->permission == NULL || strncmp(rt->permission, "self.", 5) != 0;
}

/* 1 to IDEMPOTENCY_KEY_MAX visible ASCII characters (RFC 5234 VCHAR). */
int
idempotency_key_valid(const char *k)
{
	size_t n = 0;
	if (k == NULL)
		return 0;
	for (; k[n] != '\0'; n++)
		if ((unsigned char)k[n] < 0x21 || (unsigned char)k[n] > 0x7e ||
		    n == IDEMPOTENCY_KEY_MAX)
			return 0;
	return n >= 1;
}

/* The caller a key belongs to: a signed-in user (1) or an API token (2); 0 for none. */
static int
idem_actor(const struct actor *a, int64_t *id)
{
	*id = 0;
	if (a->kind == ACTOR_SESSION) {
		*id = a->user.id;
		return 1;
	}
	if (a->kind == ACTOR_TOKEN) {
		*id = a->token_id;
		return 2;
	}
	return 0;
}

/* The tenant's idempotency MAC key into key (made, sealed and stored on first use). */
static bw_err
idem_mac_key(struct http_req *r, db *d, unsigned char key[IDEM_MAC_KEY_LEN])
{
	return field_tenant_key(r->op.ten, &r->op.tn, d, "idempotency_mac", key, IDEM_MAC_KEY_LEN);
}

/*
 * HMAC-SHA256 (hex) under key of label, then each part length-prefixed (8
 * bytes big-endian), so no two different requests make one message. The
 * message is built in one allocation of its exact size (it holds the body,
 * which may hold a password: no copies left by growing a buffer) and wiped.
 */
static bw_err
idem_mac(const unsigned char key[IDEM_MAC_KEY_LEN], const char *label, const char *const *parts,
	 const size_t *lens, size_t nparts, char out[2 * HMAC_SHA256_LEN + 1])
{
	unsigned char mac[HMAC_SHA256_LEN];
	size_t total = strlen(label), at;
	for (size_t i = 0; i < nparts; i++) {
		if (lens[i] > SIZE_MAX - total - 8)
			return BW_ERR_TOO_LARGE;
		total += 8 + lens[i];
	}
	unsigned char *m = malloc(total > 0 ? total : 1);
	if (m == NULL)
		return BW_ERR_NOMEM;
	memcpy(m, label, (at = strlen(label)));
	for (size_t i = 0; i < nparts; i++) {
		for (int k = 0; k < 8; k++)
			m[at++] = (unsigned char)((uint64_t)lens[i] >> (56 - 8 * k));
		if (lens[i] > 0)
			memcpy(m + at, parts[i], lens[i]);
		at += lens[i];
	}
	bw_err e = mac_sha256(key, IDEM_MAC_KEY_LEN, m, total, mac);
	crypto_wipe(m, total);
	free(m);
	if (e == BW_OK)
		util_hex(mac, sizeof(mac), out);
	crypto_wipe(mac, sizeof(mac));
	return e;
}

/* The key's MAC and the request's (method, path, query, If-Match, body) into ix. */
static bw_err
idem_macs(struct http_req *r, const unsigned char key[IDEM_MAC_KEY_LEN], const char *ikey,
	  struct idempotency *ix)
{
	const char *kparts[] = {ikey};
	size_t klens[] = {strlen(ikey)};
	bw_err e = idem_mac(key, "bulwark idempotency key", kparts, klens, 1, ix->key_mac);
	if (e != BW_OK)
		return e;
	const char *q = r->query ? r->query : "", *im = http_req_header(r, "If-Match");
	if (im == NULL)
		im = "";
	const char *parts[] = {r->method_name, r->path, q, im, r->body ? r->body : ""};
	size_t lens[] = {strlen(r->method_name), strlen(r->path), strlen(q), strlen(im),
			 r->body ? r->body_len : 0};
	return idem_mac(key, "bulwark idempotency request", parts, lens, BW_ARRAY_LEN(parts),
			ix->request_mac);
}

/* A row of idempotency_keys as read. */
struct idem_row {
	int64_t id, writes, status, created_at;
	char request_mac[2 * HMAC_SHA256_LEN + 1];
	char state[16];
	unsigned char *response; /* malloc'd copy, or NULL */
	size_t response_len;
};

static void
idem_row_free(struct idem_row *row)
{
	free(row->response);
	row->response = NULL;
}

static bw_err
idem_find(db *d, const struct idempotency *ix, struct idem_row *row, int *found)
{
	db_stmt *s;
	int has = 0;
	memset(row, 0, sizeof(*row));
	*found = 0;
	bw_err e = db_prepare_cached(d,
				     "SELECT id, request_mac, state, writes, status, response, created_at"
				     " FROM idempotency_keys WHERE actor_kind = ? AND actor_id = ? AND"
				     " key_mac = ?",
				     &s);
	if (e != BW_OK)
		return e;
	if ((e = DB_BIND(s, DB_INT(ix->actor_kind), DB_INT(ix->actor_id), DB_TEXT(ix->key_mac))) ==
		BW_OK &&
	    (e = db_step(s, &has)) == BW_OK && has) {
		const char *rm = db_col_text(s, 1), *st = db_col_text(s, 2);
		row->id = db_col_int(s, 0);
		snprintf(row->request_mac, sizeof(row->request_mac), "%s", rm ? rm : "");
		snprintf(row->state, sizeof(row->state), "%s", st ? st : "");
		row->writes = db_col_int(s, 3);
		row->status = db_col_int(s, 4);
		row->created_at = db_col_int(s, 6);
		if (!db_col_null(s, 5)) {
			size_t len;
			const void *v = db_col_blob(s, 5, &len);
			if ((row->response = malloc(len > 0 ? len : 1)) == NULL)
				e = BW_ERR_NOMEM;
			else
				memcpy(row->response, v, len), row->response_len = len;
		}
		*found = 1;
	}
	db_done(s);
	return e;
}

/*
 * Purge at most IDEMPOTENCY_PURGE_BATCH expired rows, the oldest ids
 * first: each new reservation clears more than it adds, so expired rows
 * never pile up, and no request pays for more than one small batch.
 */
static bw_err
idem_purge(db *d, int64_t now)
{
	int64_t last = 0, cutoff = now - IDEMPOTENCY_TTL_SECONDS;
	bw_err e = DB_QUERY_INT(d, &last,
				"SELECT MAX(id) FROM (SELECT id FROM idempotency_keys WHERE created_at"
				" <= ? ORDER BY id LIMIT 16) x",
				DB_INT(cutoff));
	if (e != BW_OK || last == 0)
		return e;
	return DB_RUN(d, "DELETE FROM idempotency_keys WHERE created_at <= ? AND id <= ?",
		      DB_INT(cutoff), DB_INT(last));
}

/* The bw_err whose code is name, or BW_ERR_INTERNAL. */
static bw_err
idem_err_of(const char *name)
{
	for (int e = BW_ERR_NOMEM; name != NULL && e < BW_ERR__COUNT; e++)
		if (strcmp(bw_errcode((bw_err)e), name) == 0)
			return (bw_err)e;
	return BW_ERR_INTERNAL;
}

static const char *
idem_kept_name(const char *name)
{
	for (size_t i = 0; i < BW_ARRAY_LEN(idem_kept_headers); i++)
		if (strcasecmp(idem_kept_headers[i], name) == 0)
			return idem_kept_headers[i];
	return NULL;
}

/*
 * Answer with the stored reply: opened with the tenant's keys (bound to
 * its row) and checked to answer this caller, key and request, so a row
 * moved or altered behind the server's back is never replayed.
 */
static bw_err
idem_replay(struct http_req *r, struct idempotency *ix, const struct idem_row *row)
{
	char *pt = NULL;
	size_t n = 0;
	json_error_t je;
	bw_err e = field_open(r->op.ten, r->op.tn.slug, "idempotency_keys", "response", row->id,
			      row->response, row->response_len, &pt, &n);
	json_t *env = e == BW_OK ? json_loadb(pt, n, 0, &je) : NULL;
	if (pt != NULL) {
		crypto_wipe(pt, n);
		free(pt);
	}
	json_t *actor = json_object_get(env, "actor");
	const char *key = json_string_value(json_object_get(env, "key")),
		   *req = json_string_value(json_object_get(env, "req"));
	if (env == NULL || json_integer_value(json_object_get(env, "v")) != 1 ||
	    json_integer_value(json_array_get(actor, 0)) != ix->actor_kind ||
	    json_integer_value(json_array_get(actor, 1)) != ix->actor_id || key == NULL ||
	    req == NULL || strlen(key) != 64 || strlen(req) != 64 ||
	    !crypto_equal(key, ix->key_mac, 64) || !crypto_equal(req, ix->request_mac, 64)) {
		log_error("request %s: tenant %s: the stored reply of idempotency row %lld does not "
			  "open or does not answer this request; not replayed",
			  r->id, r->op.tn.slug, (long long)row->id);
		json_decref(env);
		return response_error(r, BW_ERR_CRYPTO, NULL);
	}
	if ((e = response_header(r, "Idempotent-Replayed", "true", 1)) != BW_OK) {
		json_decref(env);
		return response_error(r, e, NULL);
	}
	int status = (int)json_integer_value(json_object_get(env, "status"));
	json_t *err = json_object_get(env, "error");
	if (err != NULL) {
		const char *msg = json_string_value(json_object_get(err, "message"));
		json_t *detail = json_incref(json_object_get(err, "detail"));
		bw_err code = idem_err_of(json_string_value(json_object_get(err, "code")));
		char *m = msg != NULL ? pool_strdup(r->pool, msg) : NULL;
		json_decref(env);
		return response_error_detail(r, code, m, detail);
	}
	json_t *hs = json_object_get(env, "headers"), *v;
	const char *name;
	json_object_foreach(hs, name, v)
	{
		const char *kept = idem_kept_name(name);
		if (kept != NULL && json_is_string(v) &&
		    (e = response_header(r, kept, json_string_value(v), 0)) != BW_OK) {
			json_decref(env);
			return response_error(r, e, NULL);
		}
	}
	json_t *body = json_object_get(env, "body");
	if (!json_is_string(body)) {
		const char *loc = json_string_value(json_object_get(hs, "Location"));
		const char *why = json_string_value(json_object_get(env, "unkept"));
		json_t *detail = json_pack("{s:i, s:s?}", "status", status, "location", loc);
		int credential = why != NULL && strcmp(why, "credential") == 0;
		json_decref(env);
		return response_error_detail(
		    r, BW_ERR_CONFLICT,
		    credential ? "the request with this Idempotency-Key was carried out, but its "
				 "reply held a credential, which is never stored; it is not run again"
			       : "the request with this Idempotency-Key was carried out, but its "
				 "reply was too large to keep; it is not run again",
		    detail);
	}
	const char *type = json_string_value(json_object_get(env, "type"));
	char *copy = malloc(json_string_length(body) + 1), *t = pool_strdup(r->pool, type ? type : "");
	if (copy != NULL)
		memcpy(copy, json_string_value(body), json_string_length(body) + 1);
	size_t len = json_string_length(body);
	json_decref(env);
	if (t == NULL || status < 200 || status > 299) {
		free(copy);
		return response_error(r, t == NULL ? BW_ERR_NOMEM : BW_ERR_CRYPTO, NULL);
	}
	ix->replayed = 1;
	return response_raw(r, status, t, NULL, copy, len); /* copy NULL: out of memory, recorded */
}

/*
 * Reserve the key for this request, or answer from the row already there:
 * replay, 422 (another request), 409 (still running, or carried out with
 * its reply lost). An expired row, or a reservation abandoned before it
 * wrote anything, is removed and the key reserved anew.
 */
static bw_err
idem_reserve(struct http_req *r, db *d, struct idempotency *ix)
{
	const char *running = "a request with this Idempotency-Key is still running; try again "
			      "shortly";
	for (int attempt = 0; attempt < 3; attempt++) {
		struct idem_row row;
		int found;
		int64_t now = idem_now(), id = 0;
		bw_err e = idem_find(d, ix, &row, &found);
		if (e != BW_OK) {
			idem_row_free(&row);
			return e == BW_ERR_NOMEM ? response_error(r, e, NULL) : op_unavailable(&r->op);
		}
		if (found) {
			int expired = row.created_at <= now - IDEMPOTENCY_TTL_SECONDS;
			int abandoned = strcmp(row.state, "running") == 0 &&
					row.created_at <= now - IDEMPOTENCY_LEASE_SECONDS;
			if (expired || abandoned) {
				/* Only as it was read: a row that moved on meanwhile is read again. */
				e = DB_RUN(d,
					   "DELETE FROM idempotency_keys WHERE id = ? AND state = ? AND"
					   " writes = ?",
					   DB_INT(row.id), DB_TEXT(row.state), DB_INT(row.writes));
				idem_row_free(&row);
				if (e != BW_OK)
					return op_unavailable(&r->op);
				continue;
			}
			if (strlen(row.request_mac) != 64 ||
			    !crypto_equal(row.request_mac, ix->request_mac, 64)) {
				idem_row_free(&row);
				return response_error(
				    r, BW_ERR_UNPROCESSABLE,
				    "this Idempotency-Key was used for another request (method, path, "
				    "query, If-Match or body) in the last 24 hours: use a new key");
			}
			if (strcmp(row.state, "complete") == 0) {
				e = idem_replay(r, ix, &row);
				idem_row_free(&row);
				return e;
			}
			int recent = row.created_at > now - IDEMPOTENCY_LEASE_SECONDS;
			idem_row_free(&row);
			if (strcmp(row.state, "running") == 0 || recent)
				return response_error(r, BW_ERR_CONFLICT, running);
			return response_error(
			    r, BW_ERR_CONFLICT,
			    "the request with this Idempotency-Key was carried out, but its reply was "
			    "lost before it could be kept; it is not run again");
		}
		if ((e = idem_purge(d, now)) != BW_OK)
			return op_unavailable(&r->op);
		e = DB_INSERT(d, &id,
			      "INSERT INTO idempotency_keys (actor_kind, actor_id, key_mac, request_mac,"
			      " owner, state, writes, status, response, created_at) VALUES (?, ?, ?, ?,"
			      " ?, 'running', 0, 0, NULL, ?)",
			      DB_INT(ix->actor_kind), DB_INT(ix->actor_id), DB_TEXT(ix->key_mac),
			      DB_TEXT(ix->request_mac), DB_TEXT(r->id), DB_INT(now));
		if (e == BW_OK) {
			ix->row = id;
			r->op.tx_begin = idempotency_tx_begin;
			return BW_OK;
		}
		if (e != BW_ERR_CONFLICT)
			return op_unavailable(&r->op);
		/* Another request reserved it first: answer from what it left. */
	}
	return response_error(r, BW_ERR_CONFLICT, running);
}

bw_err
idempotency_begin(struct http_req *r, struct idempotency *ix)
{
	unsigned n = 0;
	memset(ix, 0, sizeof(*ix));
	if (r->method != HTTP_POST || r->conn == NULL)
		return BW_OK;
	MHD_get_connection_values(r->conn, MHD_HEADER_KIND, idem_count_field, &n);
	if (n == 0)
		return BW_OK;
	if (n > 1)
		return response_error(r, BW_ERR_INVALID, "more than one Idempotency-Key header");
	if (!idem_route_takes_key(r->route))
		return response_error(r, BW_ERR_INVALID,
				      "Idempotency-Key is not taken here: sign-in and the caller's own "
				      "credentials (sign-out, password, sessions, tokens, MFA) are never "
				      "replayed");
	const char *ikey = http_req_header(r, IDEM_HEADER);
	if (!idempotency_key_valid(ikey))
		return response_error(r, BW_ERR_INVALID,
				      "Idempotency-Key must be 1 to 255 visible ASCII characters");
	if ((ix->actor_kind = idem_actor(&r->op.actor, &ix->actor_id)) == 0)
		return response_error(r, BW_ERR_INTERNAL, NULL); /* a signed-in route without a caller */
	db *d;
	unsigned char mk[IDEM_MAC_KEY_LEN];
	bw_err e = http_req_db(r, &d);
	if (e != BW_OK)
		return e;
	if (db_in_tx(d))
		return response_error(r, BW_ERR_INTERNAL, NULL);
	if ((e = idem_mac_key(r, d, mk)) == BW_OK)
		e = idem_macs(r, mk, ikey, ix);
	crypto_wipe(mk, sizeof(mk));
	if (e == BW_ERR_CRYPTO || e == BW_ERR_NOMEM || e == BW_ERR_TOO_LARGE) {
		log_error("request %s: tenant %s: idempotency key: %s", r->id, r->op.tn.slug,
			  bw_strerror(e));
		return response_error(r, e == BW_ERR_TOO_LARGE ? BW_ERR_NOMEM : e, NULL);
	}
	if (e != BW_OK)
		return op_unavailable(&r->op);
	return idem_reserve(r, d, ix);
}

/*
 * Every transaction of a request holding a reservation: the caller's
 * checks (pipeline_caller_holds), then the mark, in the same transaction,
 * that a write is being committed under the key. Refused (409) when the
 * reservation is no longer this request's: a retry took it over.
 */
bw_err
idempotency_tx_begin(struct op *op)
{
	bw_err e = pipeline_caller_holds(op);
	int64_t kid;
	int kind = idem_actor(&op->actor, &kid), row;
	db_stmt *s;
	if (e != BW_OK)
		return e;
	if ((e = db_prepare_cached(op->d,
				   "UPDATE idempotency_keys SET state = 'done', writes = writes + 1"
				   " WHERE owner = ? AND actor_kind = ? AND actor_id = ? AND state IN"
				   " ('running', 'done')",
				   &s)) != BW_OK)
		return e;
	if ((e = DB_BIND(s, DB_TEXT(op->request_id), DB_INT(kind), DB_INT(kid))) == BW_OK)
		e = db_step(s, &row);
	int64_t changed = e == BW_OK ? db_changes(s) : 0;
	db_done(s);
	if (e != BW_OK)
		return e;
	if (changed != 1)
		return op_fail(op, BW_ERR_CONFLICT,
			       "this request ran so long that a retry with its Idempotency-Key took "
			       "it over; nothing was changed by it");
	return BW_OK;
}

/* 1 when a JSON reply carries a credential member (idem_secret_members). */
static int
idem_holds_secret(const struct http_req *r)
{
	if (r->set_cookie != NULL)
		return 1;
	for (size_t i = 0; json_is_object(r->reply) && i < BW_ARRAY_LEN(idem_secret_members); i++)
		if (json_object_get(r->reply, idem_secret_members[i]) != NULL)
			return 1;
	return 0;
}

/* What is kept of r's reply, as a JSON envelope (NULL: out of memory). */
static json_t *
idem_envelope(const struct http_req *r, const struct idempotency *ix, int status)
{
	json_t *env = json_pack("{s:i, s:[i,I], s:s, s:s, s:i}", "v", 1, "actor", ix->actor_kind,
				(json_int_t)ix->actor_id, "key", ix->key_mac, "req", ix->request_mac,
				"status", status);
	if (env == NULL)
		return NULL;
	int bad = 0;
	if (r->op.err != BW_OK) {
		json_t *detail = NULL;
		json_error_t je;
		if (r->op.err_detail != NULL)
			detail = json_loads(r->op.err_detail, 0, &je);
		bad = json_object_set_new(env, "error",
					  json_pack("{s:s, s:s?, s:o?}", "code", bw_errcode(r->op.err),
						    "message", r->op.err_msg, "detail", detail)) != 0;
		return bad ? (json_decref(env), NULL) : env;
	}
	json_t *hs = json_object();
	bad = hs == NULL || json_object_set_new(env, "headers", hs) != 0;
	for (size_t i = 0; !bad && i < r->nheaders; i++) {
		const char *kept = idem_kept_name(r->headers[i].name);
		if (kept != NULL)
			bad = json_object_set_new(hs, kept, json_string(r->headers[i].value)) != 0;
	}
	if (bad)
		return json_decref(env), NULL;
	if (idem_holds_secret(r))
		return json_object_set_new(env, "unkept", json_string("credential")) != 0
			   ? (json_decref(env), NULL)
			   : env;
	json_t *body = NULL;
	const char *type = NULL;
	size_t len = 0;
	if (r->reply != NULL) {
		char *text = json_dumps(r->reply, JSON_COMPACT);
		if (text != NULL) {
			len = strlen(text);
			body = len <= IDEMPOTENCY_REPLY_MAX ? json_stringn(text, len) : NULL;
			crypto_wipe(text, len);
			free(text);
		}
		type = "application/json";
	} else if (r->reply_raw != NULL && r->reply_disposition == NULL &&
		   (len = r->reply_raw_len) <= IDEMPOTENCY_REPLY_MAX) {
		body = json_stringn(r->reply_raw, len); /* NULL when not UTF-8: not kept */
		type = r->reply_type;
	}
	if (body == NULL)
		bad = json_object_set_new(env, "unkept", json_string("size")) != 0;
	else
		bad = json_object_set_new(env, "body", body) != 0 ||
		      json_object_set_new(env, "type", json_string(type ? type : "")) != 0;
	if (bad) {
		json_decref(env);
		return NULL;
	}
	return env;
}

void
idempotency_end(struct http_req *r, struct idempotency *ix)
{
	if (ix->row == 0)
		return;
	r->op.tx_begin = pipeline_caller_holds;
	if (r->op.d == NULL && (r->op.borrow == NULL || r->op.borrow(&r->op) != BW_OK ||
				r->op.d == NULL)) {
		log_warn("request %s: tenant %s: idempotency row %lld left as it is (no database)",
			 r->id, r->op.tn.slug, (long long)ix->row);
		return;
	}
	db *d = r->op.d;
	int status = r->op.err == BW_OK ? r->status : response_status(r->op.err);
	bw_err e;
	if (status >= 500 || status == 401 || status == 429 || db_in_tx(d)) {
		/*
		 * Not an answer to keep (the server failed, the caller's session
		 * ended, a rate ran out): the key is free again, unless a write was
		 * committed under it, which a retry must never repeat.
		 */
		e = DB_RUN(d, "DELETE FROM idempotency_keys WHERE id = ? AND owner = ? AND state ="
			      " 'running'",
			   DB_INT(ix->row), DB_TEXT(r->id));
		if (e != BW_OK)
			log_warn("request %s: tenant %s: idempotency row %lld not released: %s", r->id,
				 r->op.tn.slug, (long long)ix->row, db_errmsg(d));
		return;
	}
	json_t *env = idem_envelope(r, ix, status);
	char *text = env != NULL ? json_dumps(env, JSON_COMPACT) : NULL;
	json_decref(env);
	unsigned char *sealed = NULL;
	size_t slen = 0, tlen = text != NULL ? strlen(text) : 0;
	e = text == NULL ? BW_ERR_NOMEM
			 : field_seal(r->op.ten, &r->op.tn, "idempotency_keys", "response", ix->row,
				      text, tlen, &sealed, &slen);
	if (text != NULL) {
		crypto_wipe(text, tlen);
		free(text);
	}
	if (e == BW_OK)
		e = DB_RUN(d,
			   "UPDATE idempotency_keys SET state = 'complete', status = ?, response = ?"
			   " WHERE id = ? AND owner = ?",
			   DB_INT(status), DB_BLOB(sealed, slen), DB_INT(ix->row), DB_TEXT(r->id));
	free(sealed);
	if (e != BW_OK)
		/* A retry then hears "still running", or after the lease "reply lost": never a rerun. */
		log_warn("request %s: tenant %s: the reply for idempotency row %lld is not kept: %s",
			 r->id, r->op.tn.slug, (long long)ix->row, bw_strerror(e));
}
