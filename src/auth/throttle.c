/*
 * Failed sign-ins of addresses that match no active user, counted exactly
 * like a user's own (api_attempt), so that the lockout does not tell which
 * accounts exist. A row is keyed by HMAC-SHA256 of the normalised address
 * under a per-tenant key (random, sealed with the tenant's data key, made
 * on first use): the address itself is never stored, and without the key a
 * dictionary of addresses cannot be matched against the table.
 *
 * Bounded: when a new row is needed, rows whose lockout has run out and
 * whose last attempt is older than THROTTLE_IDLE_SECONDS go first, and
 * past [auth] login_attempts_max_rows the least recently tried of those
 * whose lockout is over go too. A running lockout is never evicted. When
 * the table holds nothing but running lockouts, a new unknown address is
 * answered as locked (423, locked_until a lockout period from now) and
 * nothing is stored for it. That state costs an attacker threshold x
 * max_rows failed sign-ins (50,000 by default) inside one lockout period,
 * spread over addresses each of which the per-client login rate also
 * limits; it ends by itself as the lockouts run out; and the alternative,
 * evicting a running lockout, lets anyone tell an unknown address from a
 * locked user (401 again against 423) and restarts the count for guessing.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../crypto/crypto.h"
#include "auth_api.h"

#define THROTTLE_KEY_LEN 32
#define THROTTLE_IDLE_SECONDS 86400
#define THROTTLE_EVICT_MAX 64 /* rows evicted per new row, at most */

/* The tenant's throttle key into key (made, sealed and stored on first use). */
static bw_err
throttle_key(struct http_req *req, db *d, unsigned char key[THROTTLE_KEY_LEN])
{
	return field_tenant_key(http_req_tenancy(req), &req->op.tn, d, "login_attempts_key", key,
				THROTTLE_KEY_LEN);
}

/*
 * Make room for one new row: rows whose lockout is over and whose last
 * attempt is a day old go, then, past max_rows, the least recently tried of
 * those whose lockout is over. A row whose lockout still runs is never
 * evicted: that would make its address answer 401 again where a locked
 * user answers 423. *full is 1 when the table holds max_rows rows and none
 * of them may go (every one a running lockout); the caller then treats the
 * new address as locked. BW_OK, or the database's error.
 */
static bw_err
throttle_make_room(db *d, long max_rows, int64_t now, int *full)
{
	db_stmt *s = NULL;
	int row = 0;
	int64_t n = 0, ids[THROTTLE_EVICT_MAX];
	size_t nids = 0;
	*full = 0;
	bw_err e = db_prepare(d, "DELETE FROM login_attempts WHERE locked_until <= ? AND last_at < ?",
			      &s);
	if (e == BW_OK && (e = db_bind_int(s, 1, now)) == BW_OK &&
	    (e = db_bind_int(s, 2, now - THROTTLE_IDLE_SECONDS)) == BW_OK)
		e = db_step(s, &row);
	db_finalize(s);
	if (e != BW_OK)
		return e;
	if ((e = db_prepare(d, "SELECT COUNT(*) FROM login_attempts", &s)) == BW_OK &&
	    (e = db_step(s, &row)) == BW_OK && row)
		n = db_col_int(s, 0);
	db_finalize(s);
	if (e != BW_OK || n < max_rows)
		return e;
	int64_t over = n - max_rows + 1;
	if (over > THROTTLE_EVICT_MAX)
		over = THROTTLE_EVICT_MAX;
	e = db_prepare(d,
		       "SELECT id FROM login_attempts WHERE locked_until <= ? ORDER BY last_at, id"
		       " LIMIT ?",
		       &s);
	if (e == BW_OK && (e = db_bind_int(s, 1, now)) == BW_OK &&
	    (e = db_bind_int(s, 2, over)) == BW_OK)
		while (nids < BW_ARRAY_LEN(ids) && (e = db_step(s, &row)) == BW_OK && row)
			ids[nids++] = db_col_int(s, 0);
	db_finalize(s);
	int64_t gone = 0;
	for (size_t i = 0; e == BW_OK && i < nids; i++) {
		/* Not if it locked meanwhile (a parallel attempt on that address). */
		if ((e = db_prepare(d, "DELETE FROM login_attempts WHERE id = ? AND locked_until <= ?",
				    &s)) == BW_OK &&
		    (e = db_bind_int(s, 1, ids[i])) == BW_OK && (e = db_bind_int(s, 2, now)) == BW_OK &&
		    (e = db_step(s, &row)) == BW_OK)
			gone += db_changes(s);
		db_finalize(s);
	}
	/* At the cap and nothing could go: only running lockouts are left. */
	if (e == BW_OK && gone == 0)
		*full = 1;
	return e;
}

/*
 * Warn that a tenant's table is full of running lockouts, at most once per
 * lockout period per process. The one mutable static here, and only for
 * the log: what is answered never depends on it.
 */
static void
throttle_warn_full(const char *slug, int64_t now, int64_t period)
{
	static _Atomic int64_t last_warned;
	int64_t prev = atomic_load(&last_warned);
	if (now - prev >= period && atomic_compare_exchange_strong(&last_warned, &prev, now))
		log_warn("tenant %s: login_attempts holds login_attempts_max_rows running lockouts of"
			 " unknown addresses; every new unknown address is answered as locked until"
			 " some run out (a spray of failed sign-ins?)",
			 slug);
}

/* Run sql with (ints..., the row's mac) bound in that order; rows changed into *changed. */
static bw_err
throttle_run(db *d, const char *sql, const int64_t *ints, size_t nints, const char *mac,
	     int macpos, int64_t *changed)
{
	db_stmt *s = NULL;
	int row = 0, idx = 1;
	bw_err e = db_prepare(d, sql, &s);
	for (size_t i = 0; e == BW_OK && i < nints; i++, idx++) {
		if (idx == macpos)
			e = db_bind_text(s, idx++, mac);
		if (e == BW_OK)
			e = db_bind_int(s, idx, ints[i]);
	}
	if (e == BW_OK && idx == macpos)
		e = db_bind_text(s, idx, mac);
	if (e == BW_OK)
		e = db_step(s, &row);
	if (changed != NULL)
		*changed = e == BW_OK ? db_changes(s) : 0;
	db_finalize(s);
	return e;
}

int
throttle_attempt(struct http_req *req, db *d, const char *addr, struct throttle *th, int *locks,
		 int64_t *until)
{
	const struct config *cfg = http_req_config(req);
	unsigned char key[THROTTLE_KEY_LEN], tag[HMAC_SHA256_LEN];
	int64_t now = api_now(), lock_at = now + cfg->auth_lockout_minutes * 60, changed = 0;
	int64_t thr = cfg->auth_lockout_threshold;
	int reserved = 0;
	bw_err e;

	*locks = 0;
	*until = 0;
	th->mac[0] = '\0';
	if ((e = throttle_key(req, d, key)) != BW_OK) {
		crypto_wipe(key, sizeof(key));
		return -1;
	}
	e = mac_sha256(key, sizeof(key), (const unsigned char *)addr, strlen(addr), tag);
	crypto_wipe(key, sizeof(key));
	if (e != BW_OK)
		return -1;
	util_hex(tag, sizeof(tag), th->mac);
	crypto_wipe(tag, sizeof(tag));

	/* As api_attempt: a lockout that has run out starts the count afresh. */
	const int64_t expired[] = {now};
	if (throttle_run(d,
			 "UPDATE login_attempts SET failed = 0, locked_until = 0 WHERE addr_mac = ? AND"
			 " locked_until <> 0 AND locked_until <= ?",
			 expired, 1, th->mac, 1, NULL) != BW_OK)
		return -1;
	for (int attempt = 0; attempt < 2 && !reserved; attempt++) {
		/* Counted before it is checked, in one statement (locked_until first: see api_attempt). */
		const int64_t count[] = {thr, lock_at, now, now};
		if (throttle_run(d,
				 "UPDATE login_attempts SET locked_until = CASE WHEN failed + 1 >= ? THEN ?"
				 " ELSE locked_until END, failed = failed + 1, last_at = ?"
				 " WHERE addr_mac = ? AND locked_until <= ?",
				 count, 4, th->mac, 4, &changed) != BW_OK)
			return -1;
		if (changed) {
			reserved = 1;
			break;
		}
		/* No row that may count: a locked one, or none yet. */
		db_stmt *s = NULL;
		int row = 0;
		if (db_prepare(d, "SELECT locked_until FROM login_attempts WHERE addr_mac = ?", &s) !=
			BW_OK)
			return -1;
		if ((e = db_bind_text(s, 1, th->mac)) == BW_OK && (e = db_step(s, &row)) == BW_OK && row)
			*until = db_col_int(s, 0);
		db_finalize(s);
		if (e != BW_OK)
			return -1;
		if (row)
			return 0;
		int full = 0;
		if (throttle_make_room(d, cfg->auth_attempts_max_rows, now, &full) != BW_OK)
			return -1;
		if (full) {
			/*
			 * Locked, as an existing user would be after this many
			 * failures: see above. And flooded: until the lockouts end,
			 * every failed sign-in answers so, known or not
			 * (throttle_flooded), with one locked_until for all.
			 */
			const int64_t fl[] = {lock_at, 1, lock_at};
			throttle_warn_full(req->op.tn.slug, now, lock_at - now);
			if (throttle_run(d,
					 "UPDATE login_attempts_key SET flooded_until = ? WHERE id = ? AND"
					 " flooded_until < ?",
					 fl, 3, NULL, 0, NULL) != BW_OK)
				return -1;
			return throttle_flooded(d, now, until) < 0 ? -1 : 0;
		}
		const int64_t first[] = {thr <= 1 ? lock_at : 0, now};
		e = throttle_run(d,
				 "INSERT INTO login_attempts (addr_mac, failed, locked_until, last_at)"
				 " VALUES (?, 1, ?, ?)",
				 first, 2, th->mac, 1, NULL);
		if (e == BW_OK) {
			/* There was room: the table is not flooded (any more). */
			const int64_t none[] = {0, 1};
			if (throttle_run(d,
					 "UPDATE login_attempts_key SET flooded_until = ? WHERE id = ? AND"
					 " flooded_until <> 0",
					 none, 2, NULL, 0, NULL) != BW_OK)
				return -1;
			reserved = 1;
		} else if (e != BW_ERR_CONFLICT) { /* a parallel attempt made it: count on it */
			return -1;
		}
	}
	if (!reserved)
		return -1;
	db_stmt *s = NULL;
	int row = 0;
	if (db_prepare(d, "SELECT locked_until FROM login_attempts WHERE addr_mac = ?", &s) != BW_OK)
		return -1;
	if (db_bind_text(s, 1, th->mac) == BW_OK && db_step(s, &row) == BW_OK && row)
		*until = db_col_int(s, 0);
	db_finalize(s);
	*locks = *until > now;
	return 1;
}

void
throttle_undo(db *d, const struct throttle *th, int locks)
{
	if (th->mac[0] == '\0')
		return;
	if (throttle_run(d,
			 locks ? "UPDATE login_attempts SET failed = failed - 1, locked_until = 0"
				 " WHERE addr_mac = ? AND failed > 0"
			       : "UPDATE login_attempts SET failed = failed - 1 WHERE addr_mac = ? AND"
				 " failed > 0",
			 NULL, 0, th->mac, 1, NULL) != BW_OK)
		log_warn("could not give back an unchecked attempt: %s", db_errmsg(d));
}

int
throttle_flooded(db *d, int64_t now, int64_t *until)
{
	db_stmt *s = NULL;
	int row = 0, flooded = 0;
	*until = 0;
	if (db_prepare_cached(d, "SELECT flooded_until FROM login_attempts_key WHERE id = 1", &s) !=
	    BW_OK)
		return -1;
	bw_err e = db_step(s, &row);
	if (e == BW_OK && row) {
		*until = db_col_int(s, 0);
		flooded = *until > now;
	}
	db_done(s);
	return e == BW_OK ? flooded : -1;
}
