/*
 * The audit log: writing a row inside the caller's transaction, and
 * checking the whole chain.
 *
 * A row's content is one canonical JSON object (sorted keys, compact) that
 * is sealed into audit_log.details, bound to the row id. Its MAC is
 * HMAC-SHA256(audit key, previous row's MAC in hex || content), in hex. The
 * MAC is over the plaintext, so re-encrypting the details under another
 * data key (rotation) leaves the chain intact. audit_head holds the last
 * seq and MAC, so removing the newest rows is seen too.
 */
#include "audit.h"

#include "../events/events.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../crypto/crypto.h"

#define AUDIT_MAC_HEX (2 * HMAC_SHA256_LEN)
#define AUDIT_KEY_LEN 32

static const char *const audit_actor_names[] = {
	[AUDIT_USER] = "user",
	[AUDIT_TOKEN] = "token",
	[AUDIT_SYSTEM] = "system",
};

static const char *
audit_actor_name(enum audit_actor a)
{
	switch (a) {
	case AUDIT_USER:
	case AUDIT_TOKEN:
	case AUDIT_SYSTEM:
		return audit_actor_names[a];
	}
	return NULL;
}

/* A short text field is sane: bounded and with no control characters. */
static int
audit_text_ok(const char *s, size_t max)
{
	if (s == NULL)
		return 0;
	size_t n = strnlen(s, max + 1);
	if (n > max)
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20)
			return 0;
	return 1;
}

/* The canonical content of entry e at seq and at; malloc'd, NUL-terminated. */
static char *
audit_content(const struct audit_entry *e, int64_t seq, int64_t at)
{
	json_t *o = json_object();
	char *s = NULL;
	if (o == NULL)
		return NULL;
	if (json_object_set_new(o, "seq", json_integer(seq)) == 0 &&
	    json_object_set_new(o, "at", json_integer(at)) == 0 &&
	    json_object_set_new(o, "actor", json_string(audit_actor_name(e->actor))) == 0 &&
	    json_object_set_new(o, "user_id", json_integer(e->user_id)) == 0 &&
	    json_object_set_new(o, "token_id", json_integer(e->token_id)) == 0 &&
	    json_object_set_new(o, "actor_label", json_string(e->actor_label ? e->actor_label : "")) ==
		0 &&
	    json_object_set_new(o, "client_ip", json_string(e->client_ip ? e->client_ip : "")) == 0 &&
	    json_object_set_new(o, "request_id", json_string(e->request_id ? e->request_id : "")) ==
		0 &&
	    json_object_set_new(o, "entity", json_string(e->entity)) == 0 &&
	    json_object_set_new(o, "entity_id", json_integer(e->entity_id)) == 0 &&
	    json_object_set_new(o, "action", json_string(e->action)) == 0 &&
	    json_object_set(o, "before", e->before ? e->before : json_null()) == 0 &&
	    json_object_set(o, "after", e->after ? e->after : json_null()) == 0 &&
	    (e->effects == NULL || json_array_size(e->effects) == 0 ||
	     json_object_set(o, "effects", e->effects) == 0))
		s = json_dumps(o, JSON_SORT_KEYS | JSON_COMPACT);
	json_decref(o);
	return s;
}

/* effects: NULL, or an array of at most 64 {"entity": name, "entity_id": id > 0, ...}. */
static int
audit_effects_ok(json_t *effects)
{
	size_t i;
	json_t *v;
	if (effects == NULL)
		return 1;
	if (!json_is_array(effects) || json_array_size(effects) > 64)
		return 0;
	json_array_foreach(effects, i, v)
	{
		const char *ent = json_string_value(json_object_get(v, "entity"));
		json_t *id = json_object_get(v, "entity_id");
		if (!json_is_object(v) || ent == NULL || !audit_text_ok(ent, 64) || ent[0] == '\0' ||
		    !json_is_integer(id) || json_integer_value(id) <= 0)
			return 0;
	}
	return 1;
}

/* Lower-case hex HMAC-SHA256(key, prev || content) into out (65 bytes). */
static bw_err
audit_mac(const unsigned char *key, const char *prev, const char *content, size_t clen,
	  char out[AUDIT_MAC_HEX + 1])
{
	size_t plen = strlen(prev);
	unsigned char tag[HMAC_SHA256_LEN];
	if (plen > AUDIT_MAC_HEX || clen > SIZE_MAX - plen - 1)
		return BW_ERR_INVALID;
	unsigned char *msg = malloc(plen + clen + 1);
	if (msg == NULL)
		return BW_ERR_NOMEM;
	memcpy(msg, prev, plen);
	memcpy(msg + plen, content, clen);
	bw_err e = mac_sha256(key, AUDIT_KEY_LEN, msg, plen + clen, tag);
	crypto_wipe(msg, plen + clen);
	free(msg);
	if (e == BW_OK)
		util_hex(tag, sizeof(tag), out);
	crypto_wipe(tag, sizeof(tag));
	return e;
}

/* Open the sealed audit key of tenant slug into key. */
static bw_err
audit_key_open(struct tenancy *t, const char *slug, const unsigned char *sealed, size_t len,
	       unsigned char key[AUDIT_KEY_LEN])
{
	char *pt = NULL;
	size_t ptlen = 0;
	bw_err e = field_open(t, slug, "audit_head", "mac_key", 1, sealed, len, &pt, &ptlen);
	if (e == BW_OK && ptlen != AUDIT_KEY_LEN)
		e = BW_ERR_CRYPTO;
	if (e == BW_OK)
		memcpy(key, pt, AUDIT_KEY_LEN);
	if (pt != NULL) {
		crypto_wipe(pt, ptlen);
		free(pt);
	}
	return e;
}

/*
 * Take the head (the write lock on it first, so two writers never read the
 * same seq), its previous MAC, and the audit key (made on first use).
 */
static bw_err
audit_head_take(db *d, struct tenancy *t, const struct tenant *tn, int64_t *seq,
		char prev[AUDIT_MAC_HEX + 1], unsigned char key[AUDIT_KEY_LEN])
{
	db_stmt *s = NULL;
	int row = 0, have_key = 0;
	unsigned char *sealed = NULL;
	size_t slen = 0;
	/* Cached with the connection: on MariaDB every prepare is a round trip. */
	bw_err e = db_prepare_cached(d, "UPDATE audit_head SET seq = seq + 1 WHERE id = 1", &s);
	if (e == BW_OK)
		e = db_step(s, &row);
	if (e == BW_OK && db_changes(s) != 1)
		e = BW_ERR_DB; /* the head row is gone: the log cannot be extended */
	db_done(s);
	if (e != BW_OK)
		return e;
	row = 0;
	e = db_prepare_cached(d, "SELECT seq, mac, mac_key FROM audit_head WHERE id = 1", &s);
	if (e == BW_OK && (e = db_step(s, &row)) == BW_OK && row) {
		const char *m = db_col_text(s, 1);
		*seq = db_col_int(s, 0);
		if (m == NULL || strlen(m) > AUDIT_MAC_HEX)
			e = BW_ERR_CRYPTO;
		else
			snprintf(prev, AUDIT_MAC_HEX + 1, "%s", m);
		if (e == BW_OK && !db_col_null(s, 2)) {
			const unsigned char *v = db_col_blob(s, 2, &slen);
			have_key = 1;
			e = audit_key_open(t, tn->slug, v, slen, key);
		}
	}
	db_done(s);
	if (e == BW_OK && !row)
		e = BW_ERR_DB;
	if (e != BW_OK || have_key)
		return e;
	/* First row of this tenant: a fresh random key, kept sealed. */
	if ((e = util_random(key, AUDIT_KEY_LEN)) != BW_OK ||
	    (e = field_seal(t, tn, "audit_head", "mac_key", 1, key, AUDIT_KEY_LEN, &sealed, &slen)) !=
		BW_OK)
		return e;
	e = db_prepare(d, "UPDATE audit_head SET mac_key = ? WHERE id = 1 AND mac_key IS NULL", &s);
	if (e == BW_OK && (e = db_bind_blob(s, 1, sealed, slen)) == BW_OK)
		e = db_step(s, &row);
	if (e == BW_OK && db_changes(s) != 1)
		e = BW_ERR_CONFLICT;
	db_finalize(s);
	free(sealed);
	return e;
}

bw_err
audit_record(db *d, struct tenancy *t, const struct tenant *tn, const struct audit_entry *e)
{
	unsigned char key[AUDIT_KEY_LEN];
	char prev[AUDIT_MAC_HEX + 1] = "", mac[AUDIT_MAC_HEX + 1];
	char *content = NULL;
	unsigned char *sealed = NULL;
	size_t clen = 0, slen = 0;
	int64_t seq = 0, at = (int64_t)time(NULL), id = 0;
	db_stmt *s = NULL;
	int row;
	bw_err r;

	/* The row belongs to the change: outside a transaction it could outlive it. */
	if (d == NULL || !db_in_tx(d))
		return BW_ERR_INTERNAL;
	if (e == NULL || audit_actor_name(e->actor) == NULL || !audit_text_ok(e->entity, 64) ||
	    !audit_text_ok(e->action, 64) || e->entity[0] == '\0' || e->action[0] == '\0' ||
	    e->user_id < 0 || e->token_id < 0 || e->entity_id < 0 ||
	    (e->before != NULL && !json_is_object(e->before)) ||
	    (e->after != NULL && !json_is_object(e->after)) || !audit_effects_ok(e->effects) ||
	    (e->actor_label != NULL && !audit_text_ok(e->actor_label, 255)) ||
	    (e->client_ip != NULL && !audit_text_ok(e->client_ip, 64)) ||
	    (e->request_id != NULL && !audit_text_ok(e->request_id, 64)))
		return BW_ERR_INVALID;

	if ((r = audit_head_take(d, t, tn, &seq, prev, key)) != BW_OK)
		goto out;
	if ((content = audit_content(e, seq, at)) == NULL) {
		r = BW_ERR_NOMEM;
		goto out;
	}
	clen = strlen(content);
	if ((r = audit_mac(key, prev, content, clen, mac)) != BW_OK)
		goto out;
	/*
	 * The row id is the seal's AAD, and a row's id is its seq (both start at
	 * 1 and grow by one under the head's lock), so the details are sealed
	 * before the row exists and written with it in one statement.
	 */
	id = seq;
	if ((r = field_seal(t, tn, "audit_log", "details", id, content, clen, &sealed, &slen)) != BW_OK)
		goto out;
	r = db_prepare_cached(d,
			      "INSERT INTO audit_log (id, seq, at, user_id, entity, entity_id, action,"
			      " details, mac) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
			      &s);
	if (r == BW_OK && (r = db_bind_int(s, 1, id)) == BW_OK && (r = db_bind_int(s, 2, seq)) == BW_OK &&
	    (r = db_bind_int(s, 3, at)) == BW_OK && (r = db_bind_int(s, 4, e->user_id)) == BW_OK &&
	    (r = db_bind_text(s, 5, e->entity)) == BW_OK &&
	    (r = db_bind_int(s, 6, e->entity_id)) == BW_OK &&
	    (r = db_bind_text(s, 7, e->action)) == BW_OK &&
	    (r = db_bind_blob(s, 8, sealed, slen)) == BW_OK && (r = db_bind_text(s, 9, mac)) == BW_OK)
		r = db_step(s, &row);
	db_done(s);
	s = NULL;
	if (r != BW_OK)
		goto out;
	/* A link per other row touched, so that its trail finds this row too. */
	size_t li;
	json_t *fx;
	json_array_foreach(e->effects, li, fx)
	{
		r = db_prepare_cached(d,
				      "INSERT INTO audit_links (seq, entity, entity_id) VALUES (?, ?, ?)",
				      &s);
		if (r == BW_OK && (r = db_bind_int(s, 1, seq)) == BW_OK &&
		    (r = db_bind_text(s, 2, json_string_value(json_object_get(fx, "entity")))) ==
			BW_OK &&
		    (r = db_bind_int(s, 3, json_integer_value(json_object_get(fx, "entity_id")))) ==
			BW_OK)
			r = db_step(s, &row);
		db_done(s);
		s = NULL;
		if (r != BW_OK)
			goto out;
	}
	r = db_prepare_cached(d, "UPDATE audit_head SET mac = ? WHERE id = 1 AND seq = ?", &s);
	if (r == BW_OK && (r = db_bind_text(s, 1, mac)) == BW_OK && (r = db_bind_int(s, 2, seq)) == BW_OK)
		r = db_step(s, &row);
	if (r == BW_OK && db_changes(s) != 1)
		r = BW_ERR_DB;
	db_done(s);
out:
	crypto_wipe(key, sizeof(key));
	if (content != NULL) {
		crypto_wipe(content, clen);
		free(content);
	}
	free(sealed);
	if (r != BW_OK)
		/* What and for whom, never the details. */
		log_error("tenant %s: audit row for %s.%s not written: %s", tn ? tn->slug : "?",
			  e && audit_text_ok(e->entity, 64) ? e->entity : "?",
			  e && audit_text_ok(e->action, 64) ? e->action : "?", bw_strerror(r));
	return r;
}

bw_err
audit_op(struct op *op, const char *entity, int64_t entity_id, const char *action, json_t *before,
	 json_t *after)
{
	return audit_op_effects(op, entity, entity_id, action, before, after, NULL);
}

bw_err
audit_op_effects(struct op *op, const char *entity, int64_t entity_id, const char *action,
		 json_t *before, json_t *after, json_t *effects)
{
	return audit_op_object(op, entity, entity_id, action, before, after, effects, NULL);
}

bw_err
audit_op_object(struct op *op, const char *entity, int64_t entity_id, const char *action,
		json_t *before, json_t *after, json_t *effects, json_t *object)
{
	const struct actor *a = &op->actor;
	struct audit_entry e = {
	    .actor = AUDIT_USER,
	    .user_id = a->user.id,
	    .actor_label = op_actor_label(op),
	    .client_ip = op->client_ip,
	    .request_id = op->request_id,
	    .entity = entity,
	    .entity_id = entity_id,
	    .action = action,
	    .before = before,
	    .after = after,
	    .effects = effects,
	};
	db *d;
	if (op->tenant == NULL || op->ten == NULL)
		return op_fail(op, BW_ERR_INTERNAL, NULL);
	bw_err err = op_db(op, &d);
	if (err != BW_OK)
		return err;
	switch (a->kind) {
	case ACTOR_TOKEN:
		e.actor = AUDIT_TOKEN;
		e.token_id = a->token_id;
		break;
	case ACTOR_SYSTEM:
		e.actor = AUDIT_SYSTEM;
		break;
	case ACTOR_NONE:
		/* Public routes (sign-in) say who they are about themselves. */
		e.user_id = 0;
		e.actor_label = "";
		break;
	case ACTOR_SESSION:
		break;
	default:
		abort();
	}
	/* Who stands behind a system actor goes with what it did. */
	json_t *noted = NULL;
	if (a->kind == ACTOR_SYSTEM && a->by != NULL) {
		noted = json_is_object(after) ? json_copy(after) : json_object();
		if (noted == NULL || json_object_set_new(noted, "operator", json_string(a->by)) != 0) {
			json_decref(noted);
			return BW_ERR_NOMEM;
		}
		e.after = noted;
	}
	err = audit_record(d, op->ten, &op->tn, &e);
	json_decref(noted);
	/* The change's events, in its transaction: none without it, it never without them. */
	if (err == BW_OK)
		err = events_from_change(op, entity, entity_id, action, before, after, effects,
					 object);
	return err;
}

/* --- verification ------------------------------------------------------------ */

static bw_err
audit_bad(int64_t seq, int64_t *bad_seq, char *err, size_t errlen, const char *fmt, ...)
    BW_PRINTF(5, 6);

static bw_err
audit_bad(int64_t seq, int64_t *bad_seq, char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	*bad_seq = seq;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return BW_ERR_CRYPTO;
}

/* The plaintext columns must say what the sealed content says. */
static const char *
audit_columns_match(json_t *c, int64_t seq, int64_t at, int64_t user_id, const char *entity,
		    int64_t entity_id, const char *action)
{
	json_t *v;
	if (!json_is_object(c))
		return "its details are not a JSON object";
	v = json_object_get(c, "seq");
	if (!json_is_integer(v) || json_integer_value(v) != seq)
		return "seq differs from its sealed details";
	v = json_object_get(c, "at");
	if (!json_is_integer(v) || json_integer_value(v) != at)
		return "at differs from its sealed details";
	v = json_object_get(c, "user_id");
	if (!json_is_integer(v) || json_integer_value(v) != user_id)
		return "user_id differs from its sealed details";
	v = json_object_get(c, "entity");
	if (!json_is_string(v) || entity == NULL || strcmp(json_string_value(v), entity) != 0)
		return "entity differs from its sealed details";
	v = json_object_get(c, "entity_id");
	if (!json_is_integer(v) || json_integer_value(v) != entity_id)
		return "entity_id differs from its sealed details";
	v = json_object_get(c, "action");
	if (!json_is_string(v) || action == NULL || strcmp(json_string_value(v), action) != 0)
		return "action differs from its sealed details";
	return NULL;
}

/*
 * Whether the links stored for row seq are exactly the rows its sealed
 * effects name: 0 yes, 1 no, -1 on a database error.
 */
static int
audit_links_match(db *d, int64_t seq, json_t *effects)
{
	db_stmt *s;
	int row;
	size_t want = json_is_array(effects) ? json_array_size(effects) : 0, got = 0, i;
	json_t *fx;
	int bad = 0;
	if (db_prepare_cached(d, "SELECT entity, entity_id FROM audit_links WHERE seq = ?", &s) !=
	    BW_OK)
		return -1;
	bw_err e = db_bind_int(s, 1, seq);
	while (e == BW_OK && (e = db_step(s, &row)) == BW_OK && row) {
		const char *ent = db_col_text(s, 0);
		int64_t id = db_col_int(s, 1), found = 0;
		got++;
		json_array_foreach(effects, i, fx)
		{
			const char *fe = json_string_value(json_object_get(fx, "entity"));
			if (fe != NULL && ent != NULL && strcmp(fe, ent) == 0 &&
			    json_integer_value(json_object_get(fx, "entity_id")) == id)
				found = 1;
		}
		if (!found)
			bad = 1;
	}
	db_done(s);
	if (e != BW_OK)
		return -1;
	return bad || got != want;
}

/* Head seq and MAC (and the sealed key, malloc'd, when key_out is set). */
static bw_err
audit_head_read(db *d, int64_t *seq, char mac[AUDIT_MAC_HEX + 1], unsigned char **key_out,
		size_t *key_len)
{
	db_stmt *s;
	int row = 0;
	bw_err e = db_prepare(d, "SELECT seq, mac, mac_key FROM audit_head WHERE id = 1", &s);
	if (key_out != NULL)
		*key_out = NULL;
	if (e == BW_OK && (e = db_step(s, &row)) == BW_OK && row) {
		const char *m = db_col_text(s, 1);
		*seq = db_col_int(s, 0);
		snprintf(mac, AUDIT_MAC_HEX + 1, "%s", m ? m : "");
		if (key_out != NULL && !db_col_null(s, 2)) {
			const unsigned char *v = db_col_blob(s, 2, key_len);
			if ((*key_out = malloc(*key_len ? *key_len : 1)) == NULL)
				e = BW_ERR_NOMEM;
			else
				memcpy(*key_out, v, *key_len);
		}
	}
	db_finalize(s);
	if (e == BW_OK && !row)
		e = BW_ERR_NOTFOUND;
	return e;
}

bw_err
audit_verify_progress(db *d, struct tenancy *t, const struct tenant *tn, int64_t *rows,
		      int64_t *bad_seq, char *err, size_t errlen, audit_progress_fn cb, void *ud)
{
	unsigned char key[AUDIT_KEY_LEN], *sealed_key = NULL;
	size_t sealed_key_len = 0;
	char prev[AUDIT_MAC_HEX + 1] = "", head_mac[AUDIT_MAC_HEX + 1], mac[AUDIT_MAC_HEX + 1];
	int64_t head_seq = 0, expect = 1, max_seq = 0, head_after = 0;
	db_stmt *s = NULL;
	int row, have_key = 0;
	bw_err e;

	*rows = 0;
	*bad_seq = 0;
	if (errlen > 0)
		err[0] = '\0';
	/*
	 * The head first: every row committed before this read has a seq at
	 * most head_seq, and rows written while we walk have larger ones.
	 */
	e = audit_head_read(d, &head_seq, head_mac, &sealed_key, &sealed_key_len);
	if (e == BW_ERR_NOTFOUND)
		return audit_bad(1, bad_seq, err, errlen, "the chain head (audit_head) is missing");
	if (e != BW_OK) {
		snprintf(err, errlen, "reading audit_head: %s", db_errmsg(d));
		return e;
	}
	if (sealed_key != NULL) {
		e = audit_key_open(t, tn->slug, sealed_key, sealed_key_len, key);
		free(sealed_key);
		if (e != BW_OK)
			return audit_bad(1, bad_seq, err, errlen,
					 "the audit key does not open (tampered with, or its data key "
					 "is gone)");
		have_key = 1;
	}
	e = db_prepare(d,
		       "SELECT id, seq, at, user_id, entity, entity_id, action, details, mac FROM"
		       " audit_log WHERE seq <= ? ORDER BY seq",
		       &s);
	if (e == BW_OK)
		e = db_bind_int(s, 1, head_seq);
	while (e == BW_OK && (e = db_step(s, &row)) == BW_OK && row) {
		int64_t id = db_col_int(s, 0), seq = db_col_int(s, 1);
		size_t dlen;
		const unsigned char *details = db_col_blob(s, 7, &dlen);
		const char *stored = db_col_text(s, 8), *why;
		char *pt = NULL;
		size_t ptlen = 0;
		json_error_t je;
		if (seq != expect) {
			e = audit_bad(expect, bad_seq, err, errlen,
				      seq > expect ? "row %lld is missing (the next row is %lld)"
						   : "row %lld: seq out of order (found %lld)",
				      (long long)expect, (long long)seq);
			break;
		}
		if (!have_key) {
			e = audit_bad(seq, bad_seq, err, errlen,
				      "row %lld exists but the log has no audit key", (long long)seq);
			break;
		}
		if (field_open(t, tn->slug, "audit_log", "details", id, details, dlen, &pt, &ptlen) !=
		    BW_OK) {
			e = audit_bad(seq, bad_seq, err, errlen,
				      "row %lld: its details do not open (edited, or moved from another "
				      "row)",
				      (long long)seq);
			break;
		}
		json_t *c = json_loadb(pt, ptlen, JSON_REJECT_DUPLICATES, &je);
		why = audit_columns_match(c, seq, db_col_int(s, 2), db_col_int(s, 3), db_col_text(s, 4),
					  db_col_int(s, 5), db_col_text(s, 6));
		int links = why == NULL ? audit_links_match(d, seq, json_object_get(c, "effects")) : 0;
		json_decref(c);
		if (links < 0) {
			crypto_wipe(pt, ptlen);
			free(pt);
			e = BW_ERR_DB;
			break;
		}
		if (links > 0)
			why = "its links to other rows differ from its sealed details";
		if (why == NULL && audit_mac(key, prev, pt, ptlen, mac) != BW_OK)
			why = "its MAC cannot be computed";
		if (why == NULL && (stored == NULL || strlen(stored) != AUDIT_MAC_HEX ||
				    CRYPTO_memcmp(mac, stored, AUDIT_MAC_HEX) != 0))
			why = "its MAC does not match (the row or the one before it was changed)";
		crypto_wipe(pt, ptlen);
		free(pt);
		if (why != NULL) {
			e = audit_bad(seq, bad_seq, err, errlen, "row %lld: %s", (long long)seq, why);
			break;
		}
		memcpy(prev, stored, AUDIT_MAC_HEX + 1);
		expect++;
		(*rows)++;
		if (cb != NULL)
			cb(ud, *rows, head_seq);
	}
	db_finalize(s);
	s = NULL;
	if (e != BW_OK) {
		if (e != BW_ERR_CRYPTO)
			snprintf(err, errlen, "reading audit_log: %s", db_errmsg(d));
		goto out;
	}
	/* Rows removed from the end: the head remembers how far the chain went. */
	if (expect - 1 != head_seq) {
		e = audit_bad(expect, bad_seq, err, errlen,
			      "row %lld is missing: the chain ends at %lld but its head says %lld",
			      (long long)expect, (long long)(expect - 1), (long long)head_seq);
		goto out;
	}
	if (strlen(head_mac) != strlen(prev) || CRYPTO_memcmp(head_mac, prev, strlen(prev)) != 0) {
		e = audit_bad(head_seq, bad_seq, err, errlen,
			      "row %lld: its MAC is not the one the head recorded", (long long)head_seq);
		goto out;
	}
	/*
	 * A row beyond the head: the largest seq first, then the head again.
	 * A real writer commits its row and the head together, so once the
	 * head is read it covers every real row seen before.
	 */
	e = db_prepare(d, "SELECT MAX(seq) FROM audit_log", &s);
	if (e == BW_OK && (e = db_step(s, &row)) == BW_OK && row && !db_col_null(s, 0))
		max_seq = db_col_int(s, 0);
	db_finalize(s);
	s = NULL;
	if (e == BW_OK)
		e = audit_head_read(d, &head_after, mac, NULL, NULL);
	if (e != BW_OK) {
		snprintf(err, errlen, "reading audit_log: %s", db_errmsg(d));
		goto out;
	}
	if (max_seq > head_after) {
		e = audit_bad(head_after + 1, bad_seq, err, errlen,
			      "row %lld lies beyond the chain head (%lld): inserted behind bulwark's back",
			      (long long)max_seq, (long long)head_after);
		goto out;
	}
	/* A link to a row that is not in the chain. */
	max_seq = 0;
	e = db_prepare(d, "SELECT MAX(seq) FROM audit_links", &s);
	if (e == BW_OK && (e = db_step(s, &row)) == BW_OK && row && !db_col_null(s, 0))
		max_seq = db_col_int(s, 0);
	db_finalize(s);
	s = NULL;
	if (e != BW_OK)
		snprintf(err, errlen, "reading audit_links: %s", db_errmsg(d));
	else if (max_seq > head_after)
		e = audit_bad(max_seq, bad_seq, err, errlen,
			      "a link names row %lld, beyond the chain head (%lld)", (long long)max_seq,
			      (long long)head_after);
out:
	crypto_wipe(key, sizeof(key));
	crypto_wipe(prev, sizeof(prev));
	return e;
}

bw_err
audit_verify(db *d, struct tenancy *t, const struct tenant *tn, int64_t *rows, int64_t *bad_seq,
	     char *err, size_t errlen)
{
	return audit_verify_progress(d, t, tn, rows, bad_seq, err, errlen, NULL, NULL);
}

/* --- anchors in the control database ---------------------------------------- */

bw_err
audit_head_now(db *d, int64_t *seq, char mac[65])
{
	*seq = 0;
	mac[0] = '\0';
	bw_err e = audit_head_read(d, seq, mac, NULL, NULL);
	return e == BW_ERR_NOTFOUND ? BW_ERR_CRYPTO : e; /* the head row is gone */
}

bw_err
audit_anchor_check(db *ctl, db *d, const struct tenant *tn, int64_t *seq, char *why, size_t whylen)
{
	db_stmt *s;
	int row = 0;
	char amac[AUDIT_MAC_HEX + 1] = "", now_mac[AUDIT_MAC_HEX + 1] = "";
	int64_t aseq = 0, at = 0;
	*seq = 0;
	bw_err e = db_prepare(ctl, "SELECT seq, mac, verified_at FROM audit_anchors WHERE tenant_id = ?",
			      &s);
	if (e != BW_OK)
		return e;
	if ((e = db_bind_int(s, 1, tn->id)) == BW_OK && (e = db_step(s, &row)) == BW_OK && row) {
		aseq = db_col_int(s, 0);
		snprintf(amac, sizeof(amac), "%s", db_col_text(s, 1) ? db_col_text(s, 1) : "");
		at = db_col_int(s, 2);
	}
	db_finalize(s);
	if (e != BW_OK || !row || aseq <= 0)
		return e;
	*seq = aseq;
	row = 0;
	if ((e = db_prepare(d, "SELECT mac FROM audit_log WHERE seq = ?", &s)) != BW_OK)
		return e;
	if ((e = db_bind_int(s, 1, aseq)) == BW_OK && (e = db_step(s, &row)) == BW_OK && row)
		snprintf(now_mac, sizeof(now_mac), "%s", db_col_text(s, 0) ? db_col_text(s, 0) : "");
	db_finalize(s);
	if (e != BW_OK)
		return e;
	if (!row) {
		snprintf(why, whylen,
			 "the log ends before row %lld, which was there when it was verified at %lld"
			 " (the newest rows were cut)",
			 (long long)aseq, (long long)at);
		return BW_ERR_CRYPTO;
	}
	if (strlen(now_mac) != strlen(amac) ||
	    CRYPTO_memcmp(now_mac, amac, strlen(amac)) != 0) {
		snprintf(why, whylen,
			 "row %lld is not the row verified at %lld (the chain was rewritten from there"
			 " or before)",
			 (long long)aseq, (long long)at);
		return BW_ERR_CRYPTO;
	}
	return BW_OK;
}

bw_err
audit_anchor_save(db *ctl, const struct tenant *tn, int64_t seq, const char *mac)
{
	return tenancy_anchor_advance(ctl, tn->id, tn->slug, seq, mac);
}
