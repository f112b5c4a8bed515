/* Account recovery: reset links by e-mail, and admins' resets (recovery.h). */
#include "recovery.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../audit/audit.h"
#include "../core/netaddr.h"
#include "../crypto/crypto.h"
#include "../notify/notify.h"
#include "../rbac/rbac.h"
#include "../saml/saml.h"
#include "../tenancy/tenancy.h"

#define RECOVERY_WINDOW_SECONDS 3600
#define RECOVERY_KEY_LEN 32

static int64_t
recovery_now(void)
{
	return (int64_t)time(NULL);
}

/* The address of the sign-in page's reset form, without the token. */
static const char *
recovery_link(struct op *op, const char *token)
{
	char origin[SAML_ORIGIN_MAX];
	saml_origin(op, origin);
	/* In the fragment: a browser sends it to no server, so no log or Referer holds it. */
	return pool_printf(op->pool, "%s/reset-password#token=%s", origin, token);
}

/* audit_op() with before and after stolen (NULL after: out of memory). */
static bw_err
recovery_audit(struct op *op, const char *entity, int64_t id, const char *action, json_t *before,
	       json_t *after)
{
	bw_err e = after != NULL ? audit_op(op, entity, id, action, before, after) : BW_ERR_NOMEM;
	json_decref(before);
	json_decref(after);
	return e;
}

/* --- the limits on reset requests --------------------------------------------- */

/* HMAC of what (an "addr:" or "ip:" key) under the tenant's key, hex. */
static bw_err
recovery_mac(struct op *op, db *d, const char *what, char out[65])
{
	unsigned char key[RECOVERY_KEY_LEN], mac[HMAC_SHA256_LEN];
	bw_err e = field_tenant_key(op->ten, &op->tn, d, "mail_settings", key, sizeof(key));
	if (e == BW_OK)
		e = mac_sha256(key, sizeof(key), (const unsigned char *)what, strlen(what), mac);
	crypto_wipe(key, sizeof(key));
	if (e == BW_OK)
		util_hex(mac, sizeof(mac), out);
	return e;
}

/* Run sql (one statement); the rows it changed into *n. */
static bw_err
recovery_run(db *d, int64_t *n, const char *sql, const struct db_arg *args, size_t nargs)
{
	db_stmt *s = NULL;
	int row = 0;
	*n = 0;
	bw_err e = db_prepare(d, sql, &s);
	if (e == BW_OK && (e = db_bind_args(s, args, nargs)) == BW_OK &&
	    (e = db_step(s, &row)) == BW_OK)
		*n = db_changes(s);
	db_finalize(s);
	return e;
}
#define RECOVERY_RUN(d, n, sql, ...) recovery_run((d), (n), (sql), DB_ARGS(__VA_ARGS__))

/*
 * Count one request against key_hash: BW_OK, or BW_ERR_RATE with *wait
 * seconds. Each step is one statement that decides under the row's lock
 * (the WHERE is read again once the row is locked), so requests at once
 * cannot all pass on the count they read: a window that has ended starts
 * again; else one more while under the limit; else a first row.
 */
static bw_err
recovery_count(db *d, const char *key_hash, long limit, int64_t now, int64_t *wait)
{
	int64_t n = 0;
	bw_err e = RECOVERY_RUN(d, &n,
				"UPDATE recovery_throttle SET window_start = ?, hits = 1"
				" WHERE key_hash = ? AND window_start <= ?",
				DB_INT(now), DB_TEXT(key_hash), DB_INT(now - RECOVERY_WINDOW_SECONDS));
	if (e != BW_OK || n > 0)
		return e;
	for (int tries = 0; tries < 2; tries++) {
		e = RECOVERY_RUN(d, &n,
				 "UPDATE recovery_throttle SET hits = hits + 1 WHERE key_hash = ? AND"
				 " hits < ?",
				 DB_TEXT(key_hash), DB_INT(limit));
		if (e != BW_OK || n > 0)
			return e;
		/* No row yet (old ones go first), or one at its limit (then the insert conflicts). */
		if ((e = DB_RUN(d, "DELETE FROM recovery_throttle WHERE window_start <= ?",
				DB_INT(now - RECOVERY_WINDOW_SECONDS))) != BW_OK)
			return e;
		e = DB_RUN(d,
			   "INSERT INTO recovery_throttle (key_hash, window_start, hits) VALUES (?, ?, 1)",
			   DB_TEXT(key_hash), DB_INT(now));
		if (e != BW_ERR_CONFLICT)
			return e;
		/* Made meanwhile by a request at the same moment: counted against it once more. */
	}
	int64_t start = now;
	e = DB_QUERY_INT(d, &start, "SELECT window_start FROM recovery_throttle WHERE key_hash = ?",
			 DB_TEXT(key_hash));
	if (e != BW_OK)
		return e;
	*wait = start + RECOVERY_WINDOW_SECONDS - now;
	return BW_ERR_RATE;
}

/* --- asking for a link ----------------------------------------------------------- */

struct recovery_ask {
	struct email_addr addr;
	char addr_mac[65], ip_mac[65];
	int64_t wait;
};

static bw_err
recovery_request_tx(struct op *op, void *arg)
{
	struct recovery_ask *a = arg;
	db *d = op->d;
	db_stmt *s = NULL;
	int row = 0, disabled = 1, exempt = 0;
	int64_t uid = 0, now = recovery_now();
	char email[EMAIL_MAX + 1] = "", phc[256] = "";
	a->wait = 0;
	/* Both limits count whether or not the address is anyone's: the reply tells nothing. */
	bw_err e = recovery_count(d, a->addr_mac, op->cfg->recovery_per_address_hour, now, &a->wait);
	if (e == BW_OK && a->ip_mac[0] != '\0')
		e = recovery_count(d, a->ip_mac, op->cfg->recovery_per_client_hour, now, &a->wait);
	if (e == BW_ERR_RATE)
		return op_fail(op, e, "too many reset requests; try again later");
	if (e != BW_OK)
		return e;
	e = db_prepare(d,
		       "SELECT id, email, password_hash, disabled, sso_exempt FROM users"
		       " WHERE email_norm = ?",
		       &s);
	if (e == BW_OK && (e = db_bind_text(s, 1, a->addr.key)) == BW_OK &&
	    (e = db_step(s, &row)) == BW_OK && row) {
		uid = db_col_int(s, 0);
		snprintf(email, sizeof(email), "%s", db_col_text(s, 1) ? db_col_text(s, 1) : "");
		snprintf(phc, sizeof(phc), "%s", db_col_text(s, 2) ? db_col_text(s, 2) : "");
		disabled = db_col_int(s, 3) != 0;
		exempt = db_col_int(s, 4) != 0;
	}
	db_finalize(s);
	if (e != BW_OK)
		goto out;
	/*
	 * From here both kinds of address do the same work, statement for
	 * statement (the SSO check, the old links dropped, a link row, a sealed
	 * message and its two rows, an audit row), so that the time a reply
	 * takes does not say which it was. The link row of an address that is
	 * no one's has user 0, which no user is: it can never be used.
	 */
	int sso = saml_password_refused(op, row ? email : a->addr.display, exempt);
	if (sso < 0) {
		e = op_unavailable(op);
		goto out;
	}
	int eligible = row && !disabled && sso == 0 && phc[0] != '\0';
	int64_t for_uid = eligible ? uid : 0;
	char token[48], hash[65], bound[65];
	if ((e = auth_secret_new(token, hash)) != BW_OK)
		goto out;
	auth_secret_hash(eligible ? phc : token, bound);
	const char *link = recovery_link(op, token);
	long minutes = op->cfg->recovery_token_minutes;
	const char *p1 = pool_printf(op->pool,
				     "Someone (we hope you) asked to reset the password of %s. To "
				     "choose a new one, open this link within %ld minutes: %s",
				     eligible ? email : a->addr.display, minutes,
				     link != NULL ? link : "");
	const char *p2 = "If it was not you, ignore this message: your password stays as it "
			 "is, and the link stops working when it expires. Two-factor sign-in, "
			 "if you use it, is still asked for after the reset.";
	json_t *after = json_pack("{s:b}", "link_sent", eligible);
	if (link == NULL || p1 == NULL || after == NULL)
		e = BW_ERR_NOMEM;
	/* Links a day past their end go; a new link replaces every earlier one still unused. */
	if (e == BW_OK)
		e = DB_RUN(d, "DELETE FROM password_resets WHERE expires_at < ?", DB_INT(now - 86400));
	if (e == BW_OK)
		e = DB_RUN(d, "DELETE FROM password_resets WHERE user_id = ? AND used_at = 0",
			   DB_INT(for_uid));
	if (e == BW_OK)
		e = DB_RUN(d,
			   "INSERT INTO password_resets (token_hash, user_id, bound_to, created_at,"
			   " expires_at, used_at) VALUES (?, ?, ?, ?, ?, 0)",
			   DB_TEXT(hash), DB_INT(for_uid), DB_TEXT(bound), DB_INT(now),
			   DB_INT(now + minutes * 60));
	if (e == BW_OK && eligible) {
		e = notify_notice(op, "password_reset", uid, email, "Reset your Bulwark password", p1,
				  p2);
		if (e == BW_OK)
			auth_event(d, uid, "password_reset_requested", op->client_ip, "link mailed");
	} else if (e == BW_OK) {
		/* The same sealing and the same three writes, touching nothing. */
		unsigned char *sealed = NULL;
		size_t slen = 0;
		e = field_seal(op->ten, &op->tn, "mail_outbox", "message", 0, p1, strlen(p1), &sealed,
			       &slen);
		free(sealed);
		if (e == BW_OK)
			e = DB_RUN(d, "UPDATE mail_outbox SET state = state WHERE id = ?", DB_INT(0));
		if (e == BW_OK)
			e = DB_RUN(d, "UPDATE mail_outbox SET message = message WHERE id = ?", DB_INT(0));
		if (e == BW_OK)
			e = DB_RUN(d, "UPDATE jobs SET state = state WHERE id = ?", DB_INT(0));
	}
	if (e == BW_OK) {
		e = recovery_audit(op, "auth", uid, "password_reset_requested", NULL, after);
		after = NULL;
	}
	json_decref(after);
	crypto_wipe(token, sizeof(token));
	if (p1 != NULL)
		crypto_wipe((char *)p1, strlen(p1));
	if (link != NULL)
		crypto_wipe((char *)link, strlen(link));
out:
	crypto_wipe(phc, sizeof(phc));
	return e;
}

bw_err
recovery_request(struct op *op, const char *email, int64_t *retry_after)
{
	struct recovery_ask a;
	const char *why;
	db *d;
	memset(&a, 0, sizeof(a));
	*retry_after = 0;
	if (email == NULL || email_normalize(email, EMAIL_ALLOW_IDN, &a.addr, &why) != BW_OK)
		return op_fail(op, BW_ERR_INVALID, "email: an e-mail address");
	bw_err e = op_db(op, &d);
	if (e != BW_OK)
		return e;
	const char *k1 = pool_printf(op->pool, "addr:%s", a.addr.key);
	/* A client is its address, or its /64 for IPv6 (one host's share of the addresses). */
	const char *k2 = NULL;
	struct netaddr na;
	if (op->client_ip != NULL && op->client_ip[0] != '\0') {
		char net[64];
		snprintf(net, sizeof(net), "%s", op->client_ip);
		if (strchr(op->client_ip, ':') != NULL && netaddr_parse(op->client_ip, &na) == BW_OK) {
			memset(na.a + 8, 0, 8);
			netaddr_format(&na, net, sizeof(net));
		}
		k2 = pool_printf(op->pool, "ip:%s", net);
	}
	if (k1 == NULL)
		return BW_ERR_NOMEM;
	if ((e = recovery_mac(op, d, k1, a.addr_mac)) != BW_OK ||
	    (k2 != NULL && (e = recovery_mac(op, d, k2, a.ip_mac)) != BW_OK))
		return e;
	e = op_tx(op, recovery_request_tx, &a);
	if (e == BW_ERR_RATE)
		*retry_after = a.wait > 0 ? a.wait : 1;
	return e;
}

/* --- using a link ------------------------------------------------------------------ */

/* A reset row and its user, as read. */
struct recovery_link_row {
	int64_t id, uid, expires_at, used_at;
	int disabled, bound_ok, sso_exempt;
	char email[EMAIL_MAX + 1];
};

static const char recovery_bad_link[] =
    "this reset link is not valid: it was used, has expired, was replaced by a newer one, or "
    "the password was changed since; ask for a new one";

/* The reset row of token hash and its user (locked when in a transaction). */
static bw_err
recovery_link_read(db *d, const char *hash, struct recovery_link_row *r, int *found)
{
	db_stmt *s = NULL;
	int row = 0;
	memset(r, 0, sizeof(*r));
	*found = 0;
	bw_err e = db_prepare(d,
			      "SELECT r.id, r.user_id, r.bound_to, r.expires_at, r.used_at, u.email,"
			      " u.password_hash, u.disabled, u.sso_exempt FROM password_resets r"
			      " JOIN users u"
			      " ON u.id = r.user_id WHERE r.token_hash = ?",
			      &s);
	if (e == BW_OK && (e = db_bind_text(s, 1, hash)) == BW_OK &&
	    (e = db_step(s, &row)) == BW_OK && row) {
		char now_bound[65];
		const char *bound = db_col_text(s, 2), *phc = db_col_text(s, 6);
		r->id = db_col_int(s, 0);
		r->uid = db_col_int(s, 1);
		r->expires_at = db_col_int(s, 3);
		r->used_at = db_col_int(s, 4);
		snprintf(r->email, sizeof(r->email), "%s", db_col_text(s, 5) ? db_col_text(s, 5) : "");
		r->disabled = db_col_int(s, 7) != 0;
		r->sso_exempt = db_col_int(s, 8) != 0;
		auth_secret_hash(phc != NULL ? phc : "", now_bound);
		r->bound_ok = bound != NULL && strlen(bound) == 64 && crypto_equal(bound, now_bound, 64);
		*found = 1;
	}
	db_finalize(s);
	return e;
}

static int
recovery_link_usable(const struct recovery_link_row *r, int found)
{
	return found && r->used_at == 0 && r->expires_at > recovery_now() && !r->disabled &&
	       r->bound_ok;
}

struct recovery_use {
	const char *hash;
	const char *new_phc;
	int64_t uid;
};

static bw_err
recovery_confirm_tx(struct op *op, void *arg)
{
	struct recovery_use *u = arg;
	struct recovery_link_row r;
	int found;
	int64_t now = recovery_now(), revoked = 0;
	db *d = op->d;
	/* The user's row first, as every change of a password takes it (docs/auth.md). */
	bw_err e = auth_user_lock(d, u->uid);
	if (e == BW_ERR_NOTFOUND)
		return op_fail(op, BW_ERR_DENIED, recovery_bad_link);
	if (e != BW_OK || (e = recovery_link_read(d, u->hash, &r, &found)) != BW_OK)
		return e;
	if (!recovery_link_usable(&r, found) || r.uid != u->uid)
		return op_fail(op, BW_ERR_DENIED, recovery_bad_link);
	/* "SSO required" since the link was made: no password to set. */
	int sso = saml_password_refused(op, r.email, r.sso_exempt);
	if (sso < 0)
		return op_unavailable(op);
	if (sso)
		return op_fail(op, BW_ERR_DENIED, recovery_bad_link);
	if ((e = DB_RUN(d,
			"UPDATE users SET password_hash = ?, password_changed_at = ?,"
			" must_change_password = 0, failed_logins = 0, locked_until = 0,"
			" version = version + 1 WHERE id = ?",
			DB_TEXT(u->new_phc), DB_INT(now), DB_INT(r.uid))) != BW_OK ||
	    (e = DB_RUN(d, "UPDATE password_resets SET used_at = ? WHERE id = ?", DB_INT(now),
			DB_INT(r.id))) != BW_OK ||
	    (e = DB_RUN(d, "DELETE FROM password_resets WHERE user_id = ? AND used_at = 0",
			DB_INT(r.uid))) != BW_OK ||
	    (e = session_end_user(d, r.uid, 0)) != BW_OK ||
	    (e = token_revoke_user(d, r.uid, 0, &revoked)) != BW_OK)
		return e;
	const char *p1 = pool_printf(op->pool,
				     "The password of %s was changed just now with a reset link "
				     "sent to this address. Every session was signed out.",
				     r.email);
	const char *p2 = "If it was not you, tell your administrator at once.";
	if ((e = notify_notice(op, "password_changed", r.uid, r.email,
			       "Your Bulwark password was changed", p1, p2)) != BW_OK)
		return e;
	auth_event(d, r.uid, "password_reset", op->client_ip, "with a link sent by e-mail");
	return recovery_audit(op, "users", r.uid, "password_reset", NULL,
			json_pack("{s:s, s:b, s:I}", "by", "e-mail link", "sessions_ended", 1,
				  "tokens_revoked", (json_int_t)revoked));
}

bw_err
recovery_confirm(struct op *op, struct auth_hasher *h, const char *token, const char *password)
{
	struct recovery_link_row r;
	struct recovery_use u = {0};
	char hash[65], phc[256];
	const char *why;
	int found = 0;
	db *d;
	if (token == NULL || strlen(token) != RECOVERY_TOKEN_CHARS ||
	    strspn(token, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") !=
		RECOVERY_TOKEN_CHARS)
		return op_fail(op, BW_ERR_DENIED, recovery_bad_link);
	if (password == NULL)
		return op_fail(op, BW_ERR_INVALID, "password (string): the new password");
	auth_secret_hash(token, hash);
	bw_err e = op_db(op, &d);
	if (e != BW_OK || (e = recovery_link_read(d, hash, &r, &found)) != BW_OK)
		return e;
	if (!recovery_link_usable(&r, found))
		return op_fail(op, BW_ERR_DENIED, recovery_bad_link);
	/* The policy first: a refused password leaves the link usable. */
	if (password_policy(password, r.email, &why) != BW_OK)
		return op_fail(op, BW_ERR_INVALID, pool_printf(op->pool, "password: %s", why));
	/* Hashed before the transaction: no hash is computed under the user's lock. */
	if ((e = password_hash(h, password, phc, sizeof(phc))) != BW_OK)
		return op_fail(op, e, "the server is busy; try again");
	u.hash = hash;
	u.new_phc = phc;
	u.uid = r.uid;
	e = op_tx(op, recovery_confirm_tx, &u);
	crypto_wipe(phc, sizeof(phc));
	return e;
}

/* --- admins' resets -------------------------------------------------------------- */

/*
 * In the write's transaction: the target (locked) may be managed by the
 * actor, is not the actor, and the actor's own password and MFA are as the
 * API re-checked them. The target's address into email.
 */
static bw_err
recovery_admin_begin(struct op *op, int64_t uid, const struct recovery_reauth *ra,
		     char email[EMAIL_MAX + 1], int *mfa_enabled)
{
	db *d = op->d;
	db_stmt *s = NULL;
	int row = 0;
	bw_err e;
	/* Role changes wait for this write (and it for them), as users.c's do. */
	if ((e = rbac_serialise(d)) != BW_OK)
		return e;
	if (op->actor.kind != ACTOR_SYSTEM && op->actor.user.id == uid)
		return op_fail(op, BW_ERR_CONFLICT,
			       "this resets someone else's credentials: change your own password "
			       "with POST /api/v1/auth/password, your MFA with /api/v1/auth/mfa/...");
	if (ra != NULL && op->actor.kind != ACTOR_SYSTEM) {
		/* Lock order: the actor's row, then the target's (the same in every such write). */
		if ((e = auth_user_lock(d, op->actor.user.id)) != BW_OK)
			return e == BW_ERR_NOTFOUND ? op_fail(op, BW_ERR_UNAUTHORIZED, NULL) : e;
		size_t rl = strlen(ra->phc);
		int same = 0;
		if ((e = db_prepare(d, "SELECT password_hash, mfa_enabled FROM users WHERE id = ?",
				    &s)) == BW_OK &&
		    (e = db_bind_int(s, 1, op->actor.user.id)) == BW_OK &&
		    (e = db_step(s, &row)) == BW_OK && row) {
			const char *hnow = db_col_text(s, 0);
			same = hnow != NULL && rl > 0 && strlen(hnow) == rl &&
			       crypto_equal(hnow, ra->phc, rl) &&
			       (int)db_col_int(s, 1) == ra->mfa_enabled;
		}
		db_finalize(s);
		if (e != BW_OK)
			return e;
		if (!same)
			return op_fail(op, BW_ERR_CONFLICT,
				       "your password or MFA settings changed while the request ran; "
				       "nothing was changed");
	}
	if ((e = auth_user_lock(d, uid)) == BW_ERR_NOTFOUND)
		return op_fail(op, e, "no such user");
	if (e != BW_OK || (e = rbac_may_manage(op, uid)) != BW_OK)
		return e;
	row = 0;
	if ((e = db_prepare(d, "SELECT email, mfa_enabled FROM users WHERE id = ?", &s)) == BW_OK &&
	    (e = db_bind_int(s, 1, uid)) == BW_OK && (e = db_step(s, &row)) == BW_OK && row) {
		snprintf(email, EMAIL_MAX + 1, "%s", db_col_text(s, 0) ? db_col_text(s, 0) : "");
		*mfa_enabled = (int)db_col_int(s, 1);
	}
	db_finalize(s);
	if (e == BW_OK && !row)
		e = op_fail(op, BW_ERR_NOTFOUND, "no such user");
	return e;
}

struct recovery_admin {
	int64_t uid;
	const struct recovery_reauth *ra;
	const char *new_phc; /* password resets */
};

static const char *
recovery_by(struct op *op)
{
	return op->actor.kind == ACTOR_SYSTEM ? "the server's operator" : "an administrator";
}

static bw_err
recovery_reset_password_tx(struct op *op, void *arg)
{
	struct recovery_admin *a = arg;
	char email[EMAIL_MAX + 1];
	int mfa = 0;
	int64_t now = recovery_now(), revoked = 0;
	db *d = op->d;
	bw_err e = recovery_admin_begin(op, a->uid, a->ra, email, &mfa);
	if (e != BW_OK)
		return e;
	if ((e = DB_RUN(d,
			"UPDATE users SET password_hash = ?, password_changed_at = ?,"
			" must_change_password = 1, failed_logins = 0, locked_until = 0,"
			" version = version + 1 WHERE id = ?",
			DB_TEXT(a->new_phc), DB_INT(now), DB_INT(a->uid))) != BW_OK ||
	    (e = DB_RUN(d, "DELETE FROM password_resets WHERE user_id = ? AND used_at = 0",
			DB_INT(a->uid))) != BW_OK ||
	    (e = session_end_user(d, a->uid, 0)) != BW_OK ||
	    (e = token_revoke_user(d, a->uid, 0, &revoked)) != BW_OK)
		return e;
	const char *p1 = pool_printf(op->pool,
				     "The password of %s was reset by %s (%s). Every session was "
				     "signed out and every API token revoked; sign in with the "
				     "one-time password you were given, then choose your own.",
				     email, recovery_by(op), op_actor_label(op));
	const char *p2 = "If you did not ask for this, tell your administrator at once.";
	if ((e = notify_notice(op, "password_reset_by_admin", a->uid, email,
			       "Your Bulwark password was reset", p1, p2)) != BW_OK)
		return e;
	auth_event(d, a->uid, "password_reset_by_admin", op->client_ip, op_actor_label(op));
	return recovery_audit(op, "users", a->uid, "password_reset_by_admin", NULL,
			json_pack("{s:b, s:b, s:I}", "must_change_password", 1, "sessions_ended", 1,
				  "tokens_revoked", (json_int_t)revoked));
}

bw_err
recovery_reset_password(struct op *op, struct auth_hasher *h, int64_t uid,
			const struct recovery_reauth *ra, char otp[RECOVERY_OTP_SIZE])
{
	unsigned char rnd[15];
	char phc[256];
	otp[0] = '\0';
	/* Asked before the slow hash as well as in the write: a refusal costs nothing. */
	bw_err e = rbac_may_manage(op, uid);
	if (e != BW_OK)
		return e;
	if ((e = util_random(rnd, sizeof(rnd))) != BW_OK)
		return e;
	sodium_bin2base64(otp, RECOVERY_OTP_SIZE, rnd, sizeof(rnd),
			  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	crypto_wipe(rnd, sizeof(rnd));
	if ((e = password_hash(h, otp, phc, sizeof(phc))) != BW_OK) {
		crypto_wipe(otp, RECOVERY_OTP_SIZE);
		return op_fail(op, e, "the server is busy; try again");
	}
	struct recovery_admin a = {uid, ra, phc};
	e = op_tx(op, recovery_reset_password_tx, &a);
	crypto_wipe(phc, sizeof(phc));
	if (e != BW_OK)
		crypto_wipe(otp, RECOVERY_OTP_SIZE);
	return e;
}

static bw_err
recovery_reset_mfa_tx(struct op *op, void *arg)
{
	struct recovery_admin *a = arg;
	char email[EMAIL_MAX + 1];
	int mfa = 0;
	db *d = op->d;
	bw_err e = recovery_admin_begin(op, a->uid, a->ra, email, &mfa);
	if (e != BW_OK)
		return e;
	if (!mfa)
		return op_fail(op, BW_ERR_CONFLICT, "this user has no MFA to reset");
	if ((e = DB_RUN(d,
			"UPDATE users SET mfa_enabled = 0, mfa_secret = NULL, mfa_pending = NULL,"
			" version = version + 1 WHERE id = ?",
			DB_INT(a->uid))) != BW_OK ||
	    (e = DB_RUN(d, "DELETE FROM recovery_codes WHERE user_id = ?", DB_INT(a->uid))) != BW_OK ||
	    (e = session_end_user(d, a->uid, 0)) != BW_OK)
		return e;
	const char *p1 = pool_printf(op->pool,
				     "Two-factor sign-in for %s was turned off by %s (%s), and every "
				     "session was signed out. Set it up again at your next sign-in.",
				     email, recovery_by(op), op_actor_label(op));
	const char *p2 = "If you did not ask for this, tell your administrator at once.";
	if ((e = notify_notice(op, "mfa_reset_by_admin", a->uid, email,
			       "Two-factor sign-in was turned off for your Bulwark account", p1,
			       p2)) != BW_OK)
		return e;
	auth_event(d, a->uid, "mfa_reset_by_admin", op->client_ip, op_actor_label(op));
	return recovery_audit(op, "users", a->uid, "mfa_reset_by_admin",
			json_pack("{s:b}", "mfa_enabled", 1),
			json_pack("{s:b, s:b}", "mfa_enabled", 0, "sessions_ended", 1));
}

bw_err
recovery_reset_mfa(struct op *op, int64_t uid, const struct recovery_reauth *ra)
{
	struct recovery_admin a = {uid, ra, NULL};
	return op_tx(op, recovery_reset_mfa_tx, &a);
}
