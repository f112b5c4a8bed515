/*
 * The identity routes: login, logout, me, password change, sessions,
 * unlock, API tokens. Every answer about credentials is the same for an
 * unknown user and a wrong password, and takes about the same time (the
 * unknown user's password is checked against a dummy hash).
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define AUTH_TOKEN_DAYS_MAX 3650 /* an API token lives at most ten years */

#include "../audit/audit.h"
#include "../crypto/crypto.h"
#include "../http/http.h"
#include "../notify/notify.h"
#include "auth_api.h"
#include "../rbac/rbac.h"
#include "../saml/saml.h"
#include "../users/users.h"

int64_t
api_now(void)
{
	return (int64_t)time(NULL);
}

int
auth_mfa_required(db *d)
{
	db_stmt *s;
	int row = 0, req = 0;
	if (db_prepare(d, "SELECT value FROM settings WHERE name = 'mfa_required'", &s) != BW_OK)
		return 1; /* cannot tell: fail closed */
	if (db_step(s, &row) != BW_OK)
		req = 1;
	else if (row)
		req = strcmp(db_col_text(s, 0), "1") == 0;
	db_finalize(s);
	return req;
}

/* A string member of at most max bytes, or NULL. */
const char *
api_str(json_t *o, const char *key, size_t max)
{
	const char *v = json_string_value(json_object_get(o, key));
	return v != NULL && strlen(v) <= max ? v : NULL;
}

static json_t *
api_user_json(const struct auth_user *u)
{
	return json_pack("{s:I, s:s, s:b, s:b, s:b}", "id", (json_int_t)u->id, "email", u->email,
			 "is_admin", u->is_admin, "mfa_enabled", u->mfa_enabled, "must_change_password",
			 u->must_change_password);
}

static bw_err api_reauth_same(db *d, int64_t uid, const struct api_reauth *ra, int *disabled,
			      int *same);

bw_err
api_set_session(struct http_req *req, const char *secret)
{
	char *cookie = pool_alloc(req->pool, 256);
	if (cookie == NULL)
		return BW_ERR_NOMEM;
	auth_cookie(http_req_config(req), secret, cookie, 256);
	req->set_cookie = cookie;
	return BW_OK;
}

/*
 * Reserve one credential attempt (password or MFA code) for user id, before
 * checking it: the attempt is counted atomically in the database, and
 * refused outright when the account is locked. So however many attempts run
 * in parallel, or on however many app servers, at most the threshold get
 * checked per lockout, and nothing is learnt from a locked account.
 * Returns 1 when reserved (*locks: this attempt reached the threshold),
 * 0 when locked (*until: the unlock time), -1 on a database error.
 */
int
api_attempt(struct http_req *req, db *d, int64_t id, int *locks, int64_t *until)
{
	const struct config *cfg = http_req_config(req);
	db_stmt *s = NULL;
	int row = 0;
	int64_t now = api_now(), lock_at = now + cfg->auth_lockout_minutes * 60;
	*locks = 0;
	*until = 0;
	/* A lockout that has run out starts the count afresh. */
	if (DB_RUN(d,
		   "UPDATE users SET failed_logins = 0, locked_until = 0 WHERE id = ? AND"
		   " locked_until <> 0 AND locked_until <= ?",
		   DB_INT(id), DB_INT(now)) != BW_OK)
		return -1;
	bw_err e = db_prepare(d,
			      /* locked_until first: MariaDB assigns left to right */
			      "UPDATE users SET locked_until = CASE WHEN failed_logins + 1 >= ? THEN ?"
			      " ELSE locked_until END, failed_logins = failed_logins + 1"
			      " WHERE id = ? AND locked_until <= ?",
			      &s);
	if (e == BW_OK && (e = db_bind_int(s, 1, cfg->auth_lockout_threshold)) == BW_OK &&
	    (e = db_bind_int(s, 2, lock_at)) == BW_OK && (e = db_bind_int(s, 3, id)) == BW_OK &&
	    (e = db_bind_int(s, 4, now)) == BW_OK)
		e = db_step(s, &row);
	int64_t reserved = e == BW_OK ? db_changes(s) : 0;
	db_finalize(s);
	if (e != BW_OK)
		return -1;
	if (db_prepare(d, "SELECT locked_until FROM users WHERE id = ?", &s) != BW_OK)
		return -1;
	row = 0;
	if (db_bind_int(s, 1, id) == BW_OK && db_step(s, &row) == BW_OK && row)
		*until = db_col_int(s, 0);
	db_finalize(s);
	if (!reserved)
		return 0;
	*locks = *until > now;
	return 1;
}

bw_err
api_audit(struct http_req *req, const char *entity, int64_t id, const char *action,
	  json_t *before, json_t *after)
{
	bw_err e = audit_op(&req->op, entity, id, action, before, after);
	json_decref(before);
	json_decref(after);
	return e;
}

bw_err
api_audit_signin(struct http_req *req, db *d, int64_t user_id, const char *email,
		 const char *action, json_t *after)
{
	if (req->op.actor.kind != ACTOR_NONE)
		return api_audit(req, "auth", user_id, action, NULL, after);
	struct audit_entry e = {
	    .actor = AUDIT_USER,
	    .user_id = user_id,
	    .actor_label = email ? email : "",
	    .client_ip = req->client_ip,
	    .request_id = req->id,
	    .entity = "auth",
	    .entity_id = user_id,
	    .action = action,
	    .after = after,
	};
	bw_err r = audit_record(d, http_req_tenancy(req), &req->op.tn, &e);
	json_decref(after);
	return r;
}

bw_err
api_tx_end(db *d, bw_err e)
{
	if (e == BW_OK)
		e = db_commit(d);
	if (e != BW_OK)
		(void)db_rollback(d);
	return e;
}

/*
 * The reserved attempt was wrong: record it (and the lockout it caused).
 * The count itself was committed before the (slow) check, so the record
 * has its own transaction: no write lock is held across a password hash.
 */
bw_err
api_attempt_failed(struct http_req *req, db *d, int64_t id, const char *email, int locks,
		   const char *what)
{
	bw_err e = db_begin(d);
	if (e == BW_OK) {
		auth_event(d, id, locks ? "lockout" : "login_failure", req->client_ip, what);
		e = api_audit_signin(req, d, id, email, locks ? "lockout" : "login_failure",
				     json_pack("{s:s}", "reason", what));
	}
	return api_tx_end(d, e);
}

/* The reserved attempt was never checked (server busy): give it back. */
void
api_attempt_undo(db *d, int64_t id, int locks)
{
	if (DB_RUN(d,
		   locks ? "UPDATE users SET failed_logins = failed_logins - 1, locked_until = 0"
			   " WHERE id = ? AND failed_logins > 0"
			 : "UPDATE users SET failed_logins = failed_logins - 1 WHERE id = ? AND"
			   " failed_logins > 0",
		   DB_INT(id)) != BW_OK)
		log_warn("could not give back an unchecked attempt: %s", db_errmsg(d));
}

/* The reserved attempt was right: the count starts again from zero. */
void
api_attempt_ok(db *d, int64_t id)
{
	if (DB_RUN(d, "UPDATE users SET failed_logins = 0, locked_until = 0 WHERE id = ?",
		   DB_INT(id)) != BW_OK)
		log_warn("could not reset the failure count: %s", db_errmsg(d));
}

/*
 * Refuse the attempt of a locked account: BW_ERR_LOCKED (423), with the
 * unlock time in the error. Always an error, so no caller can go on.
 */
bw_err
api_locked(struct http_req *req, int64_t until)
{
	char ts[32];
	time_t t = (time_t)until;
	struct tm tm;
	if (gmtime_r(&t, &tm) == NULL || strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(ts, sizeof(ts), "%s", "unknown");
	return response_error_detail(req, BW_ERR_LOCKED, "account locked after too many failed sign-ins",
				     json_pack("{s:s}", "locked_until", ts));
}

/*
 * A failed sign-in's answer: 401; but while the unknown-address table is
 * full of running lockouts (throttle.c), 423 for every address, known or
 * not, with one locked_until, so that nothing tells accounts apart then
 * either. A right password still signs in to an account not itself locked.
 */
static bw_err
api_login_failed(struct http_req *req, db *d)
{
	int64_t until;
	int f = throttle_flooded(d, api_now(), &until);
	if (f < 0)
		return op_unavailable(&req->op);
	if (f)
		return api_locked(req, until);
	return response_error(req, BW_ERR_UNAUTHORIZED, "wrong e-mail address or password");
}

static bw_err
api_login(struct http_req *req)
{
	json_t *in = NULL;
	db *d;
	db_stmt *s = NULL;
	int row = 0, rehash = 0;
	bw_err e;
	struct auth_user u;
	char phc[256], secret[48];
	int64_t locked_until = 0;
	int disabled = 0, sso_exempt = 0;

	memset(&u, 0, sizeof(u));
	if (!http_req_login_allowed(req)) /* it sets Retry-After */
		return response_error(req, BW_ERR_RATE, "too many sign-in attempts from this address");
	if ((e = http_req_json(req, &in)) != BW_OK)
		return e;
	const char *email = api_str(in, "email", 254), *password = api_str(in, "password", 1024);
	if (email == NULL || password == NULL) {
		json_decref(in);
		return response_error(req, BW_ERR_INVALID, "email and password are required strings");
	}
	/*
	 * The account is found by the normalised address (ADR 0012), so any
	 * spelling of it (ADMIN@, a full-width letter) is that one account.
	 * Lookups accept internationalised domains whatever the tenant's
	 * setting, which governs new addresses only. An address that does not
	 * normalise matches no one and is counted under what was typed.
	 */
	struct email_addr addr;
	int known = email_normalize(email, EMAIL_ALLOW_IDN, &addr, NULL) == BW_OK;
	if ((e = http_req_db(req, &d)) != BW_OK)
		goto out;
	e = known ? db_prepare(d,
			       "SELECT u.id, u.email, EXISTS (SELECT 1 FROM user_roles ur JOIN roles r ON"
			       " r.id = ur.role_id WHERE ur.user_id = u.id AND r.builtin = 'admin'),"
			       " u.mfa_enabled, u.must_change_password, u.password_hash, u.locked_until,"
			       " u.disabled, u.sso_exempt FROM users u WHERE u.email_norm = ?",
			       &s)
		  : BW_OK;
	if (known && e == BW_OK && (e = db_bind_text(s, 1, addr.key)) == BW_OK &&
	    (e = db_step(s, &row)) == BW_OK && row) {
		u.id = db_col_int(s, 0);
		snprintf(u.email, sizeof(u.email), "%s", db_col_text(s, 1));
		u.is_admin = (int)db_col_int(s, 2);
		u.mfa_enabled = (int)db_col_int(s, 3);
		u.must_change_password = (int)db_col_int(s, 4);
		snprintf(phc, sizeof(phc), "%s", db_col_text(s, 5));
		locked_until = db_col_int(s, 6);
		disabled = (int)db_col_int(s, 7);
		sso_exempt = (int)db_col_int(s, 8);
	}
	if (known)
		db_finalize(s);
	if (e != BW_OK) {
		e = op_unavailable(&req->op);
		goto out;
	}
	/*
	 * Every attempt is counted before it is checked, whoever it is for: an
	 * existing or disabled user on its row, an unknown address in
	 * login_attempts (throttle.c). So the answers (401 up to the
	 * threshold, then 423 with locked_until) never tell them apart.
	 */
	int locks;
	struct throttle th = {{0}};
	int r = row ? api_attempt(req, d, u.id, &locks, &locked_until)
		    : throttle_attempt(req, d, known ? addr.key : email, &th, &locks, &locked_until);
	if (r < 0) {
		e = op_unavailable(&req->op);
		goto out;
	}
	if (r == 0) {
		e = api_locked(req, locked_until);
		goto out;
	}
	if (!row || disabled) {
		/* As slow as a real check, and the same answer, busy included. */
		if (password_verify_dummy(http_req_hasher(req), password) == BW_ERR_UNAVAILABLE) {
			if (row)
				api_attempt_undo(d, u.id, locks);
			else
				throttle_undo(d, &th, locks);
			req->retry_after = "1";
			e = response_error(req, BW_ERR_UNAVAILABLE, "too many sign-ins at once; try again");
			goto out;
		}
		bw_err w;
		if (row) {
			w = api_attempt_failed(req, d, u.id, u.email, locks, "account disabled");
		} else if ((w = db_begin(d)) == BW_OK) {
			/*
			 * An unknown address is kept only inside the sealed details,
			 * and only when it is one: what does not normalise may be a
			 * password typed into the wrong field, so only its length.
			 */
			json_t *det = known ? json_pack("{s:s, s:s}", "reason", "unknown e-mail address",
							"email", addr.display)
					    : json_pack("{s:s, s:b, s:I}", "reason",
							"unknown e-mail address", "email_is_address", 0,
							"email_length", (json_int_t)strlen(email));
			w = api_audit_signin(req, d, 0, "", locks ? "lockout" : "login_failure", det);
			w = api_tx_end(d, w);
		}
		e = w == BW_OK
			? api_login_failed(req, d)
			: op_unavailable(&req->op);
		goto out;
	}
	e = password_verify(http_req_hasher(req), phc, password, &rehash);
	if (e == BW_ERR_UNAVAILABLE) {
		api_attempt_undo(d, u.id, locks); /* not checked, so not counted */
		req->retry_after = "1";
		e = response_error(req, e, "too many sign-ins at once; try again");
		goto out;
	}
	if (e != BW_OK) {
		e = api_attempt_failed(req, d, u.id, u.email, locks, "wrong password") == BW_OK
			? api_login_failed(req, d)
			: op_unavailable(&req->op);
		goto out;
	}
	api_attempt_ok(d, u.id);
	/*
	 * "SSO required": the right password of a user of the IdP's domains
	 * is refused too (docs/saml.md), unless the user is exempt (the
	 * break-glass admin). Decided only now, so the answer tells nothing
	 * to whoever does not know the password.
	 */
	int sso = saml_password_refused(&req->op, u.email, sso_exempt);
	if (sso != 0) {
		if (sso < 0 || api_attempt_failed(req, d, u.id, u.email, 0, "sso_required") != BW_OK)
			e = op_unavailable(&req->op);
		else
			e = response_error_detail(
			    req, BW_ERR_DENIED,
			    "this organisation signs in with single sign-on: use /saml/login",
			    json_pack("{s:s, s:s}", "reason", "sso_required", "sso_login", "/saml/login"));
		goto out;
	}
	if (rehash) {
		char fresh[256];
		if (password_hash(http_req_hasher(req), password, fresh, sizeof(fresh)) == BW_OK) {
			if (DB_RUN(d, "UPDATE users SET password_hash = ? WHERE id = ?", DB_TEXT(fresh),
				   DB_INT(u.id)) != BW_OK)
				log_warn("could not rehash a password: %s", db_errmsg(d));
			else
				snprintf(phc, sizeof(phc), "%s", fresh); /* what is stored now */
		}
		crypto_wipe(fresh, sizeof(fresh));
	}
	/* The session and its audit row: both or neither. */
	if ((e = db_begin(d)) != BW_OK) {
		e = response_error(req, BW_ERR_UNAVAILABLE, "cannot start a session now");
		goto out;
	}
	/*
	 * The password was checked outside any transaction (argon2id is slow).
	 * Under the user's row lock, as a password change, a disable or an MFA
	 * change takes it, the account must still be as it was then: else a
	 * sign-in with the old password could outlive its change, or make a
	 * session that skips an MFA enrolled meanwhile.
	 */
	struct api_reauth ra = {{0}};
	int now_disabled = 1, same = 0;
	snprintf(ra.phc, sizeof(ra.phc), "%s", phc);
	ra.mfa_enabled = u.mfa_enabled;
	if ((e = auth_user_lock(d, u.id)) == BW_OK)
		e = api_reauth_same(d, u.id, &ra, &now_disabled, &same);
	crypto_wipe(&ra, sizeof(ra));
	if (e != BW_OK || now_disabled || !same) {
		(void)db_rollback(d);
		e = e != BW_OK && e != BW_ERR_NOTFOUND
			? response_error(req, BW_ERR_UNAVAILABLE, "cannot start a session now")
			: api_login_failed(req, d);
		goto out;
	}
	/* A brand-new session: whatever id the browser had before is worthless. */
	char old[48];
	const char *cookie = http_req_header(req, "Cookie");
	if (auth_cookie_find(cookie, old)) {
		char h[65];
		auth_secret_hash(old, h);
		if (DB_RUN(d, "DELETE FROM sessions WHERE token_hash = ?", DB_TEXT(h)) != BW_OK)
			log_warn("could not drop the pre-login session");
		crypto_wipe(old, sizeof(old));
	}
	e = session_create(d, http_req_config(req), u.id, !u.mfa_enabled, req->client_ip, secret);
	if (e == BW_OK)
		e = notify_signin(&req->op, u.id, req->client_ip, "password");
	if (e == BW_OK) {
		auth_event(d, u.id, "login", req->client_ip,
			   u.mfa_enabled ? "password ok, MFA next" : "ok");
		e = api_audit_signin(req, d, u.id, u.email, "login",
				     json_pack("{s:b}", "mfa_next", u.mfa_enabled));
	}
	if ((e = api_tx_end(d, e)) != BW_OK) {
		crypto_wipe(secret, sizeof(secret));
		e = response_error(req, BW_ERR_UNAVAILABLE, "cannot start a session now");
		goto out;
	}
	if ((e = api_set_session(req, secret)) == BW_OK)
		e = response_json(req, 200,
				  json_pack("{s:o, s:b}", "user", api_user_json(&u), "mfa_required",
					    u.mfa_enabled));
	crypto_wipe(secret, sizeof(secret));
out:
	crypto_wipe(phc, sizeof(phc));
	json_decref(in);
	return e;
}

static bw_err
api_logout(struct http_req *req)
{
	db *d;
	bw_err e = http_req_db(req, &d);
	if (e != BW_OK)
		return e;
	if (req->op.actor.kind == ACTOR_SESSION) {
		if ((e = db_begin(d)) == BW_OK && (e = session_delete(d, req->op.actor.session_id)) == BW_OK) {
			auth_event(d, req->op.actor.user.id, "logout", req->client_ip, "");
			e = api_audit_signin(req, d, req->op.actor.user.id, req->op.actor.user.email, "logout",
					     NULL);
		}
		if (api_tx_end(d, e) != BW_OK)
			return response_error(req, BW_ERR_UNAVAILABLE, NULL);
	}
	if ((e = api_set_session(req, NULL)) != BW_OK)
		return e;
	return response_json(req, 200, json_pack("{s:b}", "signed_out", 1));
}

static bw_err
api_me(struct http_req *req)
{
	return response_json(req, 200,
			     json_pack("{s:o, s:s, s:s, s:b}", "user", api_user_json(&req->op.actor.user),
				       "tenant", req->op.tenant, "auth",
				       req->op.actor.kind == ACTOR_TOKEN ? "token" : "session", "sso",
				       req->op.actor.kind == ACTOR_SESSION && req->op.actor.sso));
}

/* The password of the signed-in user, checked like a login (counts failures). */
bw_err
api_recheck_password(struct http_req *req, db *d, const char *password, struct api_reauth *ra)
{
	db_stmt *s;
	int row = 0, rehash;
	memset(ra, 0, sizeof(*ra));
	bw_err e = db_prepare(d, "SELECT password_hash, mfa_enabled FROM users WHERE id = ?", &s);
	if (e == BW_OK && (e = db_bind_int(s, 1, req->op.actor.user.id)) == BW_OK &&
	    (e = db_step(s, &row)) == BW_OK && row) {
		const char *h = db_col_text(s, 0);
		snprintf(ra->phc, sizeof(ra->phc), "%s", h != NULL ? h : "");
		ra->mfa_enabled = (int)db_col_int(s, 1);
	}
	db_finalize(s);
	if (e != BW_OK || !row) {
		crypto_wipe(ra, sizeof(*ra));
		return response_error(req, BW_ERR_UNAVAILABLE, NULL);
	}
	int locks;
	int64_t until;
	int r = api_attempt(req, d, req->op.actor.user.id, &locks, &until);
	if (r <= 0) {
		crypto_wipe(ra, sizeof(*ra));
		return r < 0 ? response_error(req, BW_ERR_UNAVAILABLE, NULL) : api_locked(req, until);
	}
	e = password_verify(http_req_hasher(req), ra->phc, password, &rehash);
	if (e != BW_OK)
		crypto_wipe(ra, sizeof(*ra));
	if (e == BW_ERR_UNAVAILABLE)
		api_attempt_undo(d, req->op.actor.user.id, locks);
	if (e == BW_ERR_UNAUTHORIZED) {
		if (api_attempt_failed(req, d, req->op.actor.user.id, req->op.actor.user.email, locks,
				       "wrong password (re-check)") != BW_OK)
			return response_error(req, BW_ERR_UNAVAILABLE, NULL);
		return response_error(req, BW_ERR_DENIED, "the current password is wrong");
	}
	if (e == BW_OK)
		api_attempt_ok(d, req->op.actor.user.id);
	return e == BW_OK ? BW_OK : response_error(req, e, NULL);
}

bw_err
api_body_password(struct http_req *req, db *d, json_t *body, struct api_reauth *ra)
{
	const char *pw = api_str(body, "password", AUTH_PASSWORD_MAX);
	if (pw == NULL) {
		memset(ra, 0, sizeof(*ra));
		return response_error(req, BW_ERR_INVALID,
				      "password (string): your current password is required");
	}
	return api_recheck_password(req, d, pw, ra);
}

/*
 * Inside the write's transaction, with the user's row locked: whether the
 * user is still enabled and, when ra is given, still has the password hash
 * and MFA state the re-check saw (the hash compared in constant time).
 */
static bw_err
api_reauth_same(db *d, int64_t uid, const struct api_reauth *ra, int *disabled, int *same)
{
	db_stmt *s;
	int row = 0;
	*disabled = 1;
	*same = 0;
	bw_err e = db_prepare(d, "SELECT disabled, password_hash, mfa_enabled FROM users WHERE id = ?",
			      &s);
	if (e == BW_OK && (e = db_bind_int(s, 1, uid)) == BW_OK && (e = db_step(s, &row)) == BW_OK &&
	    row) {
		const char *h = db_col_text(s, 1);
		size_t hl = h != NULL ? strlen(h) : 0, rl = ra != NULL ? strlen(ra->phc) : 0;
		*disabled = db_col_int(s, 0) != 0;
		*same = ra == NULL || (h != NULL && hl == rl && rl > 0 && crypto_equal(h, ra->phc, rl) &&
				       (int)db_col_int(s, 2) == ra->mfa_enabled);
	}
	db_finalize(s);
	return e;
}

bw_err
api_reauth_begin(struct http_req *req, db *d, struct api_reauth *ra)
{
	int disabled = 1, same = 0;
	bw_err e = db_begin(d);
	if (e != BW_OK) {
		if (ra != NULL)
			crypto_wipe(ra, sizeof(*ra));
		return response_error(req, BW_ERR_UNAVAILABLE, NULL);
	}
	/*
	 * The user's row first, as the password change, the disable and the
	 * bulk ends of sessions and tokens do: whichever of them comes second
	 * waits for the first to commit, and then reads what it left.
	 */
	if ((e = auth_user_lock(d, req->op.actor.user.id)) == BW_ERR_NOTFOUND)
		e = BW_ERR_UNAUTHORIZED;
	if (e == BW_OK)
		e = auth_caller_lock(d, &req->op.actor);
	if (e == BW_OK)
		e = api_reauth_same(d, req->op.actor.user.id, ra, &disabled, &same);
	if (ra != NULL)
		crypto_wipe(ra, sizeof(*ra));
	if (e == BW_OK && disabled)
		e = BW_ERR_UNAUTHORIZED;
	if (e == BW_OK && !same)
		e = BW_ERR_CONFLICT;
	if (e == BW_OK)
		return BW_OK;
	(void)db_rollback(d);
	switch (e) {
	case BW_ERR_UNAUTHORIZED:
		return response_error(req, e,
				      "this session or token was ended, or its user disabled, while "
				      "the request ran; nothing was changed");
	case BW_ERR_CONFLICT:
		return response_error(req, e,
				      "the password or MFA settings changed while the request ran; "
				      "nothing was changed");
	default:
		return response_error(req, BW_ERR_UNAVAILABLE, NULL);
	}
}

static bw_err
api_change_password(struct http_req *req)
{
	json_t *in;
	db *d;
	const char *why;
	char phc[256] = "";
	struct api_reauth ra = {{0}};
	bw_err e = http_req_json(req, &in);
	if (e != BW_OK)
		return e;
	const char *cur = api_str(in, "current_password", 1024), *nw = api_str(in, "new_password", 1024);
	if (cur == NULL || nw == NULL) {
		json_decref(in);
		return response_error(req, BW_ERR_INVALID,
				      "current_password and new_password are required strings");
	}
	if ((e = http_req_db(req, &d)) != BW_OK ||
	    (e = api_recheck_password(req, d, cur, &ra)) != BW_OK)
		goto out;
	if (password_policy(nw, req->op.actor.user.email, &why) != BW_OK) {
		const char *msg = pool_printf(req->pool, "the new password %s", why);
		e = response_error(req, BW_ERR_INVALID, msg);
		goto out;
	}
	if ((e = password_hash(http_req_hasher(req), nw, phc, sizeof(phc))) != BW_OK) {
		e = response_error(req, e, NULL);
		goto out;
	}
	int64_t revoked = 0, now = api_now();
	/*
	 * Whoever else holds a session or an API token of this user loses it
	 * with the old password: both are ended in the same transaction, with
	 * the user's row locked first (api_reauth_begin). A token or MFA change
	 * whose re-check ran before this change either committed before the
	 * lock was granted (then its token is revoked here) or reads the new
	 * hash after this commits, and is refused.
	 */
	if ((e = api_reauth_begin(req, d, &ra)) != BW_OK)
		goto out;
	if ((e = DB_RUN(d,
			/* must_change_password is shown: the user's version moves on (ETag). */
			"UPDATE users SET password_hash = ?, password_changed_at = ?,"
			" must_change_password = 0, version = version + 1 WHERE id = ?",
			DB_TEXT(phc), DB_INT(now), DB_INT(req->op.actor.user.id))) == BW_OK &&
	    (e = session_end_user(d, req->op.actor.user.id, req->op.actor.session_id)) == BW_OK &&
	    (e = token_revoke_user(d, req->op.actor.user.id, 0, &revoked)) == BW_OK) {
		auth_event(d, req->op.actor.user.id, "password_changed", req->client_ip,
			   "other sessions ended, tokens revoked");
		e = api_audit(req, "users", req->op.actor.user.id, "password_changed", NULL,
			      json_pack("{s:b, s:I}", "other_sessions_ended", 1, "tokens_revoked",
					(json_int_t)revoked));
	}
	if (api_tx_end(d, e) != BW_OK) {
		e = response_error(req, BW_ERR_UNAVAILABLE, NULL);
		goto out;
	}
	e = response_json(req, 200,
			  json_pack("{s:b, s:I}", "changed", 1, "tokens_revoked", (json_int_t)revoked));
out:
	crypto_wipe(phc, sizeof(phc));
	crypto_wipe(&ra, sizeof(ra));
	json_decref(in);
	return e;
}

/*
 * End the user's other sessions; with {"tokens": true} also revoke their
 * API tokens (but the one making the request, when it is one).
 */
static bw_err
api_end_other_sessions(struct http_req *req)
{
	db *d;
	json_t *in = NULL;
	int tokens = 0;
	int64_t revoked = 0;
	bw_err e;
	if (req->body_len > 0) {
		if ((e = http_req_json(req, &in)) != BW_OK)
			return e;
		json_t *t = json_object_get(in, "tokens");
		const char *key;
		json_t *v;
		json_object_foreach(in, key, v)
		{
			if (strcmp(key, "tokens") != 0) {
				json_decref(in);
				return response_error(req, BW_ERR_INVALID, "the only field is 'tokens' (boolean)");
			}
		}
		if (t != NULL && !json_is_boolean(t)) {
			json_decref(in);
			return response_error(req, BW_ERR_INVALID, "field 'tokens' must be true or false");
		}
		tokens = json_is_true(t);
		json_decref(in);
	}
	if ((e = http_req_db(req, &d)) != BW_OK)
		return e;
	/* The user's row locked first: a token being minted commits first, or sees this. */
	if ((e = api_reauth_begin(req, d, NULL)) != BW_OK)
		return e;
	if ((e = session_end_user(d, req->op.actor.user.id, req->op.actor.session_id)) == BW_OK &&
	    (!tokens || (e = token_revoke_user(d, req->op.actor.user.id, req->op.actor.token_id, &revoked)) ==
			    BW_OK)) {
		auth_event(d, req->op.actor.user.id, "sessions_ended", req->client_ip,
			   tokens ? "other sessions and tokens" : "other sessions");
		e = api_audit(req, "users", req->op.actor.user.id, "sessions_ended", NULL,
			      json_pack("{s:s, s:I}", "sessions", "all but the current one",
					"tokens_revoked", (json_int_t)revoked));
	}
	if (api_tx_end(d, e) != BW_OK)
		return response_error(req, BW_ERR_UNAVAILABLE, NULL);
	return response_json(req, 200,
			     json_pack("{s:b, s:I}", "ended", 1, "tokens_revoked", (json_int_t)revoked));
}

/* The user id in the path, which must exist in this tenant. */
static bw_err
api_path_user(struct http_req *req, db *d, int64_t *id)
{
	int64_t v;
	db_stmt *s;
	int row = 0;
	if (http_req_id(req, "id", &v) != BW_OK)
		return response_error(req, BW_ERR_NOTFOUND, "no such user");
	bw_err e = db_prepare(d, "SELECT id FROM users WHERE id = ?", &s);
	if (e == BW_OK && (e = db_bind_int(s, 1, v)) == BW_OK)
		e = db_step(s, &row);
	db_finalize(s);
	if (e != BW_OK)
		return response_error(req, BW_ERR_UNAVAILABLE, NULL);
	if (!row)
		return response_error(req, BW_ERR_NOTFOUND, "no such user");
	*id = v;
	return BW_OK;
}

static bw_err
api_user_end_sessions(struct http_req *req)
{
	db *d;
	int64_t id;
	bw_err e = http_req_db(req, &d);
	if (e != BW_OK || (e = api_path_user(req, d, &id)) != BW_OK ||
	    (e = rbac_may_manage(&req->op, id)) != BW_OK)
		return e;
	if ((e = db_begin(d)) == BW_OK && (e = auth_user_lock(d, id)) == BW_OK &&
	    (e = session_end_user(d, id, 0)) == BW_OK) {
		auth_event(d, id, "sessions_ended", req->client_ip, "by an admin");
		e = api_audit(req, "users", id, "sessions_ended", NULL,
			      json_pack("{s:s}", "sessions", "all"));
	}
	if (api_tx_end(d, e) != BW_OK)
		return response_error(req, BW_ERR_UNAVAILABLE, NULL);
	return response_json(req, 200, json_pack("{s:b}", "ended", 1));
}

static bw_err
api_user_unlock(struct http_req *req)
{
	db *d;
	int64_t id;
	bw_err e = http_req_db(req, &d);
	if (e != BW_OK || (e = api_path_user(req, d, &id)) != BW_OK ||
	    (e = user_unlock(&req->op, id)) != BW_OK)
		return e;
	return response_json(req, 200, json_pack("{s:b}", "unlocked", 1));
}

/*
 * A new API token: {"name", "scopes", "expires_in_days"?, "password"}. The
 * password is re-checked (counted, refused when locked), so a stolen
 * session or token cannot turn itself into a credential that outlives it.
 */
static bw_err
api_token_create(struct http_req *req)
{
	json_t *in, *scopes, *v;
	db *d;
	size_t i;
	char token[64] = "", *sj = NULL, exp_s[UTIL_TIME_LEN];
	int64_t id, expires = 0;
	struct api_reauth ra = {{0}};
	bw_err e = http_req_json(req, &in);
	if (e != BW_OK)
		return e;
	const char *name = api_str(in, "name", 100);
	scopes = json_object_get(in, "scopes");
	json_t *exp = json_object_get(in, "expires_in_days");
	json_t *exp_at = json_object_get(in, "expires_at");
	if (name == NULL || name[0] == '\0' || !json_is_array(scopes) || json_array_size(scopes) == 0 ||
	    json_array_size(scopes) > 64 || (exp != NULL && !json_is_integer(exp)) ||
	    (exp_at != NULL && !json_is_string(exp_at)) || (exp != NULL && exp_at != NULL)) {
		e = response_error(req, BW_ERR_INVALID,
				   "name (string), scopes (non-empty array of permissions), password "
				   "(string) and optional expires_in_days (integer) or expires_at "
				   "(RFC 3339) are required");
		goto out;
	}
	if (exp_at != NULL) {
		/* A time of the caller's choosing, in the future and no further than the days allowed. */
		int64_t now = api_now();
		if (util_parse_rfc3339(json_string_value(exp_at), &expires) != BW_OK ||
		    expires <= now || expires > now + (int64_t)AUTH_TOKEN_DAYS_MAX * 86400) {
			e = response_error(req, BW_ERR_INVALID,
					   pool_printf(req->pool,
						       "expires_at: an RFC 3339 time in the next %d days",
						       AUTH_TOKEN_DAYS_MAX));
			goto out;
		}
	}
	if (exp != NULL) {
		json_int_t days = json_integer_value(exp);
		if (days < 1 || days > AUTH_TOKEN_DAYS_MAX) {
			e = response_error(req, BW_ERR_INVALID,
					   pool_printf(req->pool, "expires_in_days: 1 to %d",
						       AUTH_TOKEN_DAYS_MAX));
			goto out;
		}
		expires = api_now() + (int64_t)days * 86400;
	}
	/* A token never carries more than its owner has ("*": only an owner who has everything). */
	if ((e = http_req_db(req, &d)) != BW_OK)
		goto out;
	json_array_foreach(scopes, i, v)
	{
		const char *sc = json_string_value(v);
		int has = sc != NULL && rbac_perm_valid(sc, 1) ? may(&req->op, sc) : 0;
		if (has < 0) {
			e = op_unavailable(&req->op);
			goto out;
		}
		if (!has) {
			e = response_error(req, BW_ERR_DENIED, "a token can only hold permissions you have");
			goto out;
		}
	}
	if ((sj = json_dumps(scopes, JSON_COMPACT)) == NULL) {
		e = BW_ERR_NOMEM;
		goto out;
	}
	if (strlen(sj) >= AUTH_SCOPES_MAX) {
		e = response_error(req, BW_ERR_INVALID, "scopes: too many, or too long");
		goto out;
	}
	/* Last, once nothing else can refuse: a refusal above costs no attempt. */
	if ((e = api_body_password(req, d, in, &ra)) != BW_OK)
		goto out;
	/*
	 * Inserted only while what the check saw still holds: a password change
	 * or disable that committed meanwhile is seen (and refused, 409/401), one
	 * that comes later waits for this commit and then revokes this token; and
	 * the session or token minting it is still there.
	 */
	if ((e = api_reauth_begin(req, d, &ra)) != BW_OK)
		goto out;
	if ((e = token_create(d, req->op.actor.user.id, name, sj, expires, token, &id)) == BW_OK) {
		auth_event(d, req->op.actor.user.id, "token_created", req->client_ip, name);
		e = api_audit(req, "api_tokens", id, "create", NULL,
			      json_pack("{s:s, s:O, s:s?, s:I}", "name", name, "scopes", scopes,
					"expires_at", expires ? util_time_rfc3339(expires, exp_s) : NULL,
					"owner", (json_int_t)req->op.actor.user.id));
	}
	if ((e = api_tx_end(d, e)) != BW_OK) {
		e = response_error(req, e == BW_ERR_DB ? BW_ERR_UNAVAILABLE : e, NULL);
		goto out;
	}
	e = response_json(req, 201,
			  json_pack("{s:I, s:s, s:s, s:O, s:s?}", "id", (json_int_t)id, "name", name,
				    "token", token, "scopes", scopes, "expires_at",
				    expires ? util_time_rfc3339(expires, exp_s) : NULL));
out:
	crypto_wipe(token, sizeof(token));
	crypto_wipe(&ra, sizeof(ra));
	free(sj);
	json_decref(in);
	return e;
}

/* A time column as RFC 3339, or NULL when 0 (never, not yet) into t. */
static const char *
api_time_or_null(int64_t v, char t[UTIL_TIME_LEN])
{
	return v ? util_time_rfc3339(v, t) : NULL;
}

/* The live (not revoked) tokens of user uid, as the token list shows them: a page (page.c). */
static bw_err
api_tokens_of(struct http_req *req, db *d, int64_t uid)
{
	static const char base[] = " FROM api_tokens WHERE user_id = ? AND revoked_at = 0";
	db_stmt *s = NULL;
	int row, idx = 1;
	struct http_query q;
	struct page p;
	page_init(&p);
	bw_err e = http_query_parse(req, &q);
	for (size_t i = 0; e == BW_OK && i < q.n; i++) {
		int taken;
		if ((e = page_param(req, &p, q.key[i], q.val[i], &taken)) == BW_OK && !taken)
			return response_error(
			    req, BW_ERR_INVALID,
			    pool_printf(req->pool, "unknown query parameter '%.64s' (limit, cursor)",
					q.key[i]));
	}
	if (e != BW_OK || (e = page_order(req, &p, "id", "id", 0, PAGE_INT)) != BW_OK)
		return e;
	const char *kc = page_cond(req, &p), *ord = page_order_sql(req, &p);
	const char *sql = kc && ord ? pool_printf(req->pool,
						  "SELECT id, name, prefix, scopes, expires_at, last_used_at,"
						  " created_at%s%s%s%s",
						  base, kc[0] ? " AND " : "", kc, ord)
				    : NULL;
	json_t *list = json_array();
	if (list == NULL || sql == NULL) {
		json_decref(list);
		return BW_ERR_NOMEM;
	}
	e = db_prepare(d, sql, &s);
	if (e == BW_OK && (e = db_bind_int(s, idx++, uid)) == BW_OK &&
	    (e = page_bind(&p, s, &idx)) == BW_OK && (e = page_bind_limit(&p, s, &idx)) == BW_OK)
		while ((e = db_step(s, &row)) == BW_OK && row && !page_full(&p)) {
			json_error_t je;
			char ex[UTIL_TIME_LEN], lu[UTIL_TIME_LEN], ca[UTIL_TIME_LEN];
			json_array_append_new(
			    list, json_pack("{s:I, s:s, s:s, s:o, s:s?, s:s?, s:s}", "id",
					    (json_int_t)db_col_int(s, 0), "name", db_col_text(s, 1),
					    "prefix", db_col_text(s, 2), "scopes",
					    json_loads(db_col_text(s, 3), 0, &je), "expires_at",
					    api_time_or_null(db_col_int(s, 4), ex), "last_used_at",
					    api_time_or_null(db_col_int(s, 5), lu), "created_at",
					    util_time_rfc3339(db_col_int(s, 6), ca)));
			page_seen_key(&p, db_col_int(s, 0), db_col_int(s, 0));
		}
	if (s != NULL)
		db_finalize(s);
	if (e == BW_OK) {
		char *csql = pool_printf(req->pool, "SELECT COUNT(*)%s", base);
		e = csql ? DB_QUERY_INT(d, &p.total, csql, DB_INT(uid)) : BW_ERR_NOMEM;
	}
	if (e != BW_OK) {
		json_decref(list);
		return e == BW_ERR_NOMEM ? e : response_error(req, BW_ERR_UNAVAILABLE, NULL);
	}
	return page_reply(req, &p, &q, list);
}

static bw_err
api_token_list(struct http_req *req)
{
	db *d;
	bw_err e = http_req_db(req, &d);
	if (e != BW_OK)
		return e;
	return api_tokens_of(req, d, req->op.actor.user.id);
}

/* One of the caller's own live tokens, as the list shows it (the Location of its 201). */
static bw_err
api_token_show(struct http_req *req)
{
	db *d;
	db_stmt *s = NULL;
	int row = 0;
	int64_t id;
	json_t *o = NULL;
	if (http_req_id(req, "id", &id) != BW_OK)
		return response_error(req, BW_ERR_NOTFOUND, "no such token");
	bw_err e = http_req_db(req, &d);
	if (e != BW_OK)
		return e;
	e = db_prepare(d,
		       "SELECT id, name, prefix, scopes, expires_at, last_used_at, created_at FROM"
		       " api_tokens WHERE id = ? AND user_id = ? AND revoked_at = 0",
		       &s);
	if (e == BW_OK && (e = db_bind_int(s, 1, id)) == BW_OK &&
	    (e = db_bind_int(s, 2, req->op.actor.user.id)) == BW_OK &&
	    (e = db_step(s, &row)) == BW_OK && row) {
		json_error_t je;
		o = json_pack("{s:I, s:s, s:s, s:o, s:I, s:I, s:I}", "id", (json_int_t)db_col_int(s, 0),
			      "name", db_col_text(s, 1), "prefix", db_col_text(s, 2), "scopes",
			      json_loads(db_col_text(s, 3), 0, &je), "expires_at",
			      (json_int_t)db_col_int(s, 4), "last_used_at", (json_int_t)db_col_int(s, 5),
			      "created_at", (json_int_t)db_col_int(s, 6));
		if (o == NULL)
			e = BW_ERR_NOMEM;
	}
	db_finalize(s);
	if (e != BW_OK)
		return e == BW_ERR_NOMEM ? response_error(req, e, NULL)
					 : response_error(req, BW_ERR_UNAVAILABLE, NULL);
	/* Only one's own: another user's token id is simply not found. */
	if (!row)
		return response_error(req, BW_ERR_NOTFOUND, "no such token");
	return response_json(req, 200, o);
}

/*
 * Revoke token tid of user uid, with its audit row (by: who did it, for
 * the event); BW_ERR_NOTFOUND (reply set) when uid has no such live token.
 */
static bw_err
api_token_revoke_one(struct http_req *req, db *d, int64_t uid, int64_t tid, const char *by)
{
	db_stmt *s;
	int row;
	if (db_begin(d) != BW_OK)
		return response_error(req, BW_ERR_UNAVAILABLE, NULL);
	bw_err e = db_prepare(d,
			      "UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND user_id = ? AND"
			      " revoked_at = 0",
			      &s);
	if (e == BW_OK && (e = db_bind_int(s, 1, api_now())) == BW_OK &&
	    (e = db_bind_int(s, 2, tid)) == BW_OK && (e = db_bind_int(s, 3, uid)) == BW_OK)
		e = db_step(s, &row);
	int64_t n = e == BW_OK ? db_changes(s) : 0;
	db_finalize(s);
	if (e == BW_OK && n == 0) {
		(void)db_rollback(d);
		return response_error(req, BW_ERR_NOTFOUND, "no such token");
	}
	if (e == BW_OK) {
		auth_event(d, uid, "token_revoked", req->client_ip, by);
		e = api_audit(req, "api_tokens", tid, "revoke", NULL,
			      json_pack("{s:I, s:s}", "owner", (json_int_t)uid, "by", by));
	}
	if (api_tx_end(d, e) != BW_OK)
		return response_error(req, BW_ERR_UNAVAILABLE, NULL);
	return BW_OK;
}

static bw_err
api_token_revoke(struct http_req *req)
{
	db *d;
	int64_t id;
	if (http_req_id(req, "id", &id) != BW_OK)
		return response_error(req, BW_ERR_NOTFOUND, "no such token");
	bw_err e = http_req_db(req, &d);
	/* Only one's own: another user's token id is simply not found. */
	if (e != BW_OK || (e = api_token_revoke_one(req, d, req->op.actor.user.id, id, "owner")) != BW_OK)
		return e;
	return response_json(req, 200, json_pack("{s:b}", "revoked", 1));
}

/* Admins: the live tokens of user :id (someone they may manage). */
static bw_err
api_user_tokens(struct http_req *req)
{
	db *d;
	int64_t uid;
	bw_err e = http_req_db(req, &d);
	if (e != BW_OK || (e = api_path_user(req, d, &uid)) != BW_OK ||
	    (e = rbac_may_manage(&req->op, uid)) != BW_OK)
		return e;
	return api_tokens_of(req, d, uid);
}

/* Admins: revoke token :token_id of user :id (someone they may manage). */
static bw_err
api_user_token_revoke(struct http_req *req)
{
	db *d;
	int64_t uid;
	int64_t tid;
	bw_err e = http_req_db(req, &d);
	if (e != BW_OK || (e = api_path_user(req, d, &uid)) != BW_OK)
		return e;
	if (http_req_id(req, "token_id", &tid) != BW_OK)
		return response_error(req, BW_ERR_NOTFOUND, "no such token");
	if ((e = rbac_may_manage(&req->op, uid)) != BW_OK ||
	    (e = api_token_revoke_one(req, d, uid, tid,
				      uid == req->op.actor.user.id ? "owner" : "an admin")) != BW_OK)
		return e;
	return response_json(req, 200, json_pack("{s:b}", "revoked", 1));
}

/* GET and PUT /api/v1/auth/sessions/notice: {"new_signin": bool}, the caller's own. */
static bw_err
api_signin_notice(struct http_req *req)
{
	int on = 0;
	bw_err e;
	if (req->method == HTTP_PUT) {
		json_t *in = NULL;
		static const char *const known[] = {"new_signin", NULL};
		if ((e = http_req_json(req, &in)) != BW_OK)
			return e;
		json_t *v = json_object_get(in, "new_signin");
		if ((e = op_known_fields(&req->op, in, known)) == BW_OK)
			e = json_is_boolean(v) ? notify_signin_pref_set(&req->op, json_is_true(v))
					       : op_fail(&req->op, BW_ERR_INVALID,
							 "new_signin: true or false");
		json_decref(in);
		if (e != BW_OK)
			return e;
	}
	if ((e = notify_signin_pref_get(&req->op, &on)) != BW_OK)
		return e;
	return response_json(req, 200, json_pack("{s:b}", "new_signin", on));
}

#define BODY_SMALL 4096

const struct route auth_routes[] = {
	{HTTP_POST, "/api/v1/auth/login", api_login, ROUTE_PUBLIC, NULL, BODY_SMALL},
	{HTTP_POST, "/api/v1/auth/logout", api_logout,
	 ROUTE_MFA_PENDING | ROUTE_MFA_ENROL | ROUTE_PW_CHANGE, "self.session", ROUTE_BODY_NONE},
	{HTTP_GET, "/api/v1/me", api_me, ROUTE_MFA_ENROL | ROUTE_PW_CHANGE, "self.view",
	 ROUTE_BODY_NONE},
	{HTTP_POST, "/api/v1/auth/password", api_change_password, ROUTE_MFA_ENROL | ROUTE_PW_CHANGE,
	 "self.password",
	 BODY_SMALL},
	{HTTP_POST, "/api/v1/auth/sessions/end-others", api_end_other_sessions, 0, "self.session",
	 BODY_SMALL},
	{HTTP_GET, "/api/v1/auth/sessions/notice", api_signin_notice, 0, "self.session",
	 ROUTE_BODY_NONE},
	{HTTP_PUT, "/api/v1/auth/sessions/notice", api_signin_notice, 0, "self.session", BODY_SMALL},
	{HTTP_POST, "/api/v1/users/:id/sessions/end", api_user_end_sessions,
	 ROUTE_ADMIN | ROUTE_DESTRUCTIVE,
	 "users.sessions", ROUTE_BODY_NONE},
	{HTTP_POST, "/api/v1/users/:id/unlock", api_user_unlock, ROUTE_ADMIN, "users.unlock",
	 ROUTE_BODY_NONE},
	{HTTP_POST, "/api/v1/auth/tokens", api_token_create, 0, "self.tokens", BODY_SMALL},
	{HTTP_GET, "/api/v1/auth/tokens", api_token_list, 0, "self.tokens", ROUTE_BODY_NONE},
	{HTTP_GET, "/api/v1/auth/tokens/:id", api_token_show, 0, "self.tokens", ROUTE_BODY_NONE},
	{HTTP_DELETE, "/api/v1/auth/tokens/:id", api_token_revoke, ROUTE_DESTRUCTIVE, "self.tokens",
	 ROUTE_BODY_NONE},
	{HTTP_GET, "/api/v1/users/:id/tokens", api_user_tokens, ROUTE_ADMIN, "users.tokens",
	 ROUTE_BODY_NONE},
	{HTTP_DELETE, "/api/v1/users/:id/tokens/:token_id", api_user_token_revoke,
	 ROUTE_ADMIN | ROUTE_DESTRUCTIVE, "users.tokens", ROUTE_BODY_NONE},
};

const size_t auth_routes_count = BW_ARRAY_LEN(auth_routes);
