/*
 * TOTP MFA: enrolment (secret sealed with the tenant's data key, otpauth
 * URI and QR code, confirmed by a first code), verification after a
 * password login (a time step is never accepted twice; wrong codes count
 * toward the lockout), ten one-time recovery codes stored as argon2id
 * hashes, disabling and regenerating (password required), and the tenant
 * setting that requires MFA of every staff user.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../crypto/crypto.h"
#include "../notify/notify.h"
#include "auth_api.h"
#include "totp.h"

/* Seal a TOTP secret into users.<column> of the request's user. */
static bw_err
mfa_store(struct http_req *req, db *d, const char *column, const unsigned char *secret)
{
	unsigned char *sealed = NULL;
	size_t sl = 0;
	db_stmt *s;
	int row;
	char sql[96];
	bw_err e = field_seal(http_req_tenancy(req), &req->op.tn, "users", column, req->op.actor.user.id,
			      secret, TOTP_SECRET_LEN, &sealed, &sl);
	if (e != BW_OK)
		return e;
	/* column is one of two compiled-in names. */
	snprintf(sql, sizeof(sql), "UPDATE users SET %s = ? WHERE id = ?", column);
	e = db_prepare(d, sql, &s);
	if (e == BW_OK && (e = db_bind_blob(s, 1, sealed, sl)) == BW_OK &&
	    (e = db_bind_int(s, 2, req->op.actor.user.id)) == BW_OK)
		e = db_step(s, &row);
	db_finalize(s);
	free(sealed);
	return e;
}

/* Open users.<column> of user id into secret; BW_ERR_NOTFOUND when empty. */
static bw_err
mfa_load(struct http_req *req, db *d, int64_t id, const char *column, unsigned char *secret,
	 int64_t *last_step)
{
	db_stmt *s;
	int row = 0;
	char sql[96], *pt = NULL;
	size_t ptlen = 0;
	snprintf(sql, sizeof(sql), "SELECT %s, mfa_last_step FROM users WHERE id = ?", column);
	bw_err e = db_prepare(d, sql, &s);
	if (e == BW_OK && (e = db_bind_int(s, 1, id)) == BW_OK && (e = db_step(s, &row)) == BW_OK &&
	    row) {
		size_t len;
		const unsigned char *v = db_col_blob(s, 0, &len);
		*last_step = db_col_int(s, 1);
		if (v == NULL)
			e = BW_ERR_NOTFOUND;
		else
			e = field_open(http_req_tenancy(req), req->op.tenant, "users", column, id, v, len, &pt,
				       &ptlen);
	}
	db_finalize(s);
	if (e == BW_OK && (!row || ptlen != TOTP_SECRET_LEN))
		e = row ? BW_ERR_CRYPTO : BW_ERR_NOTFOUND;
	if (e == BW_OK)
		memcpy(secret, pt, TOTP_SECRET_LEN);
	if (pt != NULL) {
		crypto_wipe(pt, ptlen);
		free(pt);
	}
	return e;
}

typedef char mfa_recovery_hashes[TOTP_RECOVERY_COUNT][256];

/*
 * Ten new recovery codes (to *out) and their hashes. Hashing is slow, so
 * it is done before the transaction that stores them (mfa_recovery_store).
 */
static bw_err
mfa_recovery_make(struct http_req *req, mfa_recovery_hashes phc, json_t **out)
{
	char codes[TOTP_RECOVERY_COUNT][TOTP_RECOVERY_SIZE], canon[TOTP_RECOVERY_LEN + 1];
	bw_err e = totp_recovery_codes(codes);
	json_t *list = json_array();
	if (list == NULL)
		e = BW_ERR_NOMEM;
	for (int i = 0; e == BW_OK && i < TOTP_RECOVERY_COUNT; i++) {
		if ((e = totp_recovery_normalize(codes[i], canon)) != BW_OK ||
		    (e = password_hash(http_req_hasher(req), canon, phc[i], sizeof(phc[i]))) != BW_OK)
			break;
		json_array_append_new(list, json_string(codes[i]));
	}
	crypto_wipe(codes, sizeof(codes));
	crypto_wipe(canon, sizeof(canon));
	if (e != BW_OK) {
		json_decref(list);
		return e;
	}
	*out = list;
	return BW_OK;
}

/* Replace the user's recovery codes by those hashed in phc. */
static bw_err
mfa_recovery_store(struct http_req *req, db *d, mfa_recovery_hashes phc)
{
	int64_t uid = req->op.actor.user.id;
	bw_err e = DB_RUN(d, "DELETE FROM recovery_codes WHERE user_id = ?", DB_INT(uid));
	for (int i = 0; e == BW_OK && i < TOTP_RECOVERY_COUNT; i++)
		e = DB_RUN(d, "INSERT INTO recovery_codes (user_id, code_hash, used_at) VALUES (?, ?, 0)",
			   DB_INT(uid), DB_TEXT(phc[i]));
	return e;
}

/*
 * Start enrolment: {"password"}, re-checked like disabling (counted; a
 * locked account gets 423), so a stolen session cannot bind the thief's
 * authenticator. The pending secret and the audit row: both or neither.
 */
static bw_err
mfa_enrol(struct http_req *req)
{
	unsigned char secret[TOTP_SECRET_LEN];
	char b32[TOTP_BASE32_SIZE(TOTP_SECRET_LEN)] = "", uri[1024] = "", issuer[128], *svg = NULL;
	db *d;
	json_t *in = NULL;
	struct api_reauth ra = {{0}};
	bw_err e;
	memset(secret, 0, sizeof(secret));
	if ((e = http_req_json(req, &in)) != BW_OK)
		return e;
	if (req->op.actor.user.mfa_enabled) {
		e = response_error(req, BW_ERR_CONFLICT, "MFA is already on; disable it first");
		goto out;
	}
	if ((e = http_req_db(req, &d)) != BW_OK || (e = api_body_password(req, d, in, &ra)) != BW_OK)
		goto out;
	if (ra.mfa_enabled) { /* turned on since the request was authenticated */
		e = response_error(req, BW_ERR_CONFLICT, "MFA is already on; disable it first");
		goto out;
	}
	snprintf(issuer, sizeof(issuer), "Bulwark (%s)", req->op.tenant);
	if ((e = totp_secret_new(secret)) != BW_OK || (e = totp_base32(secret, sizeof(secret), b32, sizeof(b32))) != BW_OK ||
	    (e = totp_uri(issuer, req->op.actor.user.email, secret, uri, sizeof(uri))) != BW_OK ||
	    (e = totp_qr_svg(uri, &svg)) != BW_OK) {
		e = response_error(req, e, NULL);
		goto out;
	}
	/* Stored only if MFA is still off and the password the one checked (api_reauth_begin). */
	if ((e = api_reauth_begin(req, d, &ra)) != BW_OK)
		goto out;
	if ((e = mfa_store(req, d, "mfa_pending", secret)) == BW_OK) {
		auth_event(d, req->op.actor.user.id, "mfa_enrol_started", req->client_ip, "");
		e = api_audit(req, "users", req->op.actor.user.id, "mfa_enrol_started", NULL,
			      json_pack("{s:b}", "mfa_pending", 1));
	}
	if ((e = api_tx_end(d, e)) != BW_OK) {
		e = response_error(req, e == BW_ERR_DB ? BW_ERR_UNAVAILABLE : e, NULL);
		goto out;
	}
	e = response_json(req, 200,
			  json_pack("{s:s, s:s, s:s, s:s}", "secret", b32, "otpauth_uri", uri, "qr_svg",
				    svg, "next", "POST /api/v1/auth/mfa/enrol/confirm with a first code"));
out:
	free(svg);
	json_decref(in);
	crypto_wipe(&ra, sizeof(ra));
	crypto_wipe(secret, sizeof(secret));
	crypto_wipe(b32, sizeof(b32));
	crypto_wipe(uri, sizeof(uri));
	return e;
}

/* The code member of the body into *code: BW_OK, or the error (recorded). */
static bw_err
mfa_code_of(struct http_req *req, json_t **in, const char **code)
{
	*code = NULL;
	bw_err e = http_req_json(req, in);
	if (e != BW_OK)
		return e;
	if ((*code = api_str(*in, "code", 32)) == NULL)
		return response_error(req, BW_ERR_INVALID, "code (string) is required");
	return BW_OK;
}

/*
 * Check a TOTP code for user id: right, not replayed, and then recorded as
 * used, atomically, so two requests with one code cannot both pass.
 */
static bw_err
mfa_check_code(struct http_req *req, db *d, int64_t id, const char *column, const char *code)
{
	unsigned char secret[TOTP_SECRET_LEN];
	int64_t last = 0;
	uint64_t step = 0;
	db_stmt *s;
	int row;
	bw_err e = mfa_load(req, d, id, column, secret, &last);
	if (e != BW_OK)
		return e;
	e = totp_verify(secret, sizeof(secret), code, (uint64_t)api_now(), (uint64_t)last, &step);
	crypto_wipe(secret, sizeof(secret));
	if (e != BW_OK)
		return BW_ERR_UNAUTHORIZED;
	e = db_prepare(d, "UPDATE users SET mfa_last_step = ? WHERE id = ? AND mfa_last_step < ?", &s);
	if (e == BW_OK && (e = db_bind_int(s, 1, (int64_t)step)) == BW_OK &&
	    (e = db_bind_int(s, 2, id)) == BW_OK && (e = db_bind_int(s, 3, (int64_t)step)) == BW_OK)
		e = db_step(s, &row);
	int64_t n = e == BW_OK ? db_changes(s) : 0;
	db_finalize(s);
	if (e != BW_OK)
		return e;
	return n == 1 ? BW_OK : BW_ERR_UNAUTHORIZED; /* someone used this step first */
}

/* Check a recovery code; used once (marked atomically). */
static bw_err
mfa_check_recovery(struct http_req *req, db *d, int64_t id, const char *code)
{
	char canon[TOTP_RECOVERY_LEN + 1];
	db_stmt *s;
	int row, rehash;
	int64_t hit = 0;
	if (totp_recovery_normalize(code, canon) != BW_OK)
		return BW_ERR_UNAUTHORIZED;
	bw_err e = db_prepare(d, "SELECT id, code_hash FROM recovery_codes WHERE user_id = ? AND used_at = 0",
			      &s);
	if (e == BW_OK && (e = db_bind_int(s, 1, id)) == BW_OK)
		while (hit == 0 && (e = db_step(s, &row)) == BW_OK && row)
			if (password_verify(http_req_hasher(req), db_col_text(s, 1), canon, &rehash) == BW_OK)
				hit = db_col_int(s, 0);
	db_finalize(s);
	crypto_wipe(canon, sizeof(canon));
	if (e != BW_OK)
		return e;
	if (hit == 0)
		return BW_ERR_UNAUTHORIZED;
	/* Used up and recorded together. */
	if ((e = db_begin(d)) != BW_OK)
		return e;
	e = db_prepare(d, "UPDATE recovery_codes SET used_at = ? WHERE id = ? AND used_at = 0", &s);
	if (e == BW_OK && (e = db_bind_int(s, 1, api_now())) == BW_OK && (e = db_bind_int(s, 2, hit)) == BW_OK)
		e = db_step(s, &row);
	int64_t n = e == BW_OK ? db_changes(s) : 0;
	db_finalize(s);
	if (e == BW_OK && n == 1) {
		auth_event(d, id, "recovery_code_used", req->client_ip, "");
		e = api_audit_signin(req, d, id, req->op.actor.user.email, "recovery_code_used",
				     json_pack("{s:I}", "code_row", (json_int_t)hit));
	}
	if ((e = api_tx_end(d, e)) != BW_OK)
		return e;
	return n == 1 ? BW_OK : BW_ERR_UNAUTHORIZED;
}

static bw_err
mfa_verify(struct http_req *req)
{
	json_t *in = NULL;
	db *d;
	char secret[48];
	int64_t until;
	const char *code;
	bw_err e = mfa_code_of(req, &in, &code);
	if (e != BW_OK)
		goto out_reply;
	if (req->op.actor.kind != ACTOR_SESSION || req->op.actor.mfa_verified) {
		e = response_error(req, BW_ERR_CONFLICT, "no MFA code is expected on this session");
		goto out;
	}
	if ((e = http_req_db(req, &d)) != BW_OK)
		goto out;
	/* Like a password: the attempt is counted before the code is checked. */
	int locks, r = api_attempt(req, d, req->op.actor.user.id, &locks, &until);
	if (r <= 0) {
		e = r < 0 ? response_error(req, BW_ERR_UNAVAILABLE, NULL) : api_locked(req, until);
		goto out;
	}
	int recovery = strlen(code) != TOTP_DIGITS;
	e = recovery ? mfa_check_recovery(req, d, req->op.actor.user.id, code)
		     : mfa_check_code(req, d, req->op.actor.user.id, "mfa_secret", code);
	if (e == BW_ERR_UNAUTHORIZED) {
		if (api_attempt_failed(req, d, req->op.actor.user.id, req->op.actor.user.email, locks,
				       "wrong MFA code") != BW_OK)
			e = response_error(req, BW_ERR_UNAVAILABLE, NULL);
		else
			e = locks ? api_locked(req, until)
				  : response_error(req, BW_ERR_UNAUTHORIZED, "wrong or already used code");
		goto out;
	}
	if (e != BW_OK) {
		e = response_error(req, BW_ERR_UNAVAILABLE, NULL);
		goto out;
	}
	api_attempt_ok(d, req->op.actor.user.id);
	/*
	 * MFA done: a new session id (no fixation across the step up), made
	 * under the user's row and the session's own lock, as every write that
	 * a password change or a disable must not be outlived by.
	 */
	if ((e = api_reauth_begin(req, d, NULL)) != BW_OK)
		goto out;
	if ((e = session_rotate(d, http_req_config(req), req->op.actor.session_id, 1, req->client_ip,
				secret)) == BW_OK) {
		auth_event(d, req->op.actor.user.id, "mfa_verified", req->client_ip,
			   recovery ? "recovery code" : "totp");
		e = api_audit_signin(req, d, req->op.actor.user.id, req->op.actor.user.email, "mfa_verified",
				     json_pack("{s:s}", "method", recovery ? "recovery code" : "totp"));
	}
	if ((e = api_tx_end(d, e)) != BW_OK) {
		crypto_wipe(secret, sizeof(secret));
		e = e == BW_ERR_UNAUTHORIZED
			? response_error(req, e, "this session was ended while the code was checked")
			: response_error(req, BW_ERR_UNAVAILABLE, NULL);
		goto out;
	}
	if ((e = api_set_session(req, secret)) == BW_OK)
		e = response_json(req, 200, json_pack("{s:b}", "mfa_verified", 1));
	crypto_wipe(secret, sizeof(secret));
out:
	json_decref(in);
	return e;
out_reply:
	json_decref(in);
	return e;
}

/* Inside the confirming transaction: BW_OK while MFA is still off, else BW_ERR_CONFLICT. */
static bw_err
mfa_enabled_now(db *d, int64_t id)
{
	db_stmt *s;
	int row = 0;
	bw_err e = db_prepare(d, "SELECT mfa_enabled FROM users WHERE id = ?", &s);
	if (e == BW_OK && (e = db_bind_int(s, 1, id)) == BW_OK && (e = db_step(s, &row)) == BW_OK &&
	    row && db_col_int(s, 0) != 0)
		e = BW_ERR_CONFLICT;
	db_finalize(s);
	return e;
}

static bw_err
mfa_confirm(struct http_req *req)
{
	json_t *in = NULL, *codes = NULL;
	db *d;
	unsigned char secret[TOTP_SECRET_LEN];
	int64_t last;
	char sess[48];
	mfa_recovery_hashes phc;
	const char *code;
	bw_err e = mfa_code_of(req, &in, &code);
	if (e != BW_OK) {
		json_decref(in);
		return e;
	}
	if ((e = http_req_db(req, &d)) != BW_OK)
		goto out;
	if (req->op.actor.user.mfa_enabled) {
		e = response_error(req, BW_ERR_CONFLICT, "MFA is already on");
		goto out;
	}
	int locks, r = api_attempt(req, d, req->op.actor.user.id, &locks, &last);
	if (r <= 0) {
		e = r < 0 ? response_error(req, BW_ERR_UNAVAILABLE, NULL) : api_locked(req, last);
		goto out;
	}
	e = mfa_check_code(req, d, req->op.actor.user.id, "mfa_pending", code);
	if (e == BW_ERR_NOTFOUND) {
		e = response_error(req, BW_ERR_CONFLICT, "start with POST /api/v1/auth/mfa/enrol");
		goto out;
	}
	if (e == BW_ERR_UNAUTHORIZED) {
		e = api_attempt_failed(req, d, req->op.actor.user.id, req->op.actor.user.email, locks,
				       "wrong MFA code (enrolment)") == BW_OK
			? response_error(req, BW_ERR_INVALID,
					 "wrong code: check the device's clock and retry")
			: response_error(req, BW_ERR_UNAVAILABLE, NULL);
		goto out;
	}
	if (e == BW_OK)
		api_attempt_ok(d, req->op.actor.user.id);
	if (e != BW_OK ||
	    (e = mfa_load(req, d, req->op.actor.user.id, "mfa_pending", secret, &last)) != BW_OK ||
	    (e = mfa_recovery_make(req, phc, &codes)) != BW_OK) {
		crypto_wipe(secret, sizeof(secret));
		e = response_error(req, BW_ERR_UNAVAILABLE, NULL);
		goto out;
	}
	/*
	 * MFA on, its codes, the other sessions ended and the audit row: all or
	 * nothing, with the user's row locked and the session confirming still
	 * there (api_reauth_begin), and MFA still off.
	 */
	if ((e = api_reauth_begin(req, d, NULL)) != BW_OK) {
		crypto_wipe(secret, sizeof(secret));
		crypto_wipe(phc, sizeof(phc));
		goto out;
	}
	if ((e = mfa_enabled_now(d, req->op.actor.user.id)) == BW_OK &&
	    (e = mfa_store(req, d, "mfa_secret", secret)) == BW_OK &&
	    (e = DB_RUN(d, "UPDATE users SET mfa_enabled = 1, mfa_pending = NULL,"
			" version = version + 1 WHERE id = ?",
			DB_INT(req->op.actor.user.id))) == BW_OK &&
	    (e = mfa_recovery_store(req, d, phc)) == BW_OK &&
	    (e = session_end_user(d, req->op.actor.user.id, req->op.actor.session_id)) == BW_OK &&
	    (req->op.actor.kind != ACTOR_SESSION ||
	     (e = session_rotate(d, http_req_config(req), req->op.actor.session_id, 1, req->client_ip,
				 sess)) == BW_OK)) {
		auth_event(d, req->op.actor.user.id, "mfa_enrolled", req->client_ip, "other sessions ended");
		e = api_audit(req, "users", req->op.actor.user.id, "mfa_enrolled",
			      json_pack("{s:b}", "mfa_enabled", 0),
			      json_pack("{s:b, s:b}", "mfa_enabled", 1, "other_sessions_ended", 1));
	}
	crypto_wipe(secret, sizeof(secret));
	crypto_wipe(phc, sizeof(phc));
	if ((e = api_tx_end(d, e)) != BW_OK) {
		crypto_wipe(sess, sizeof(sess));
		e = e == BW_ERR_CONFLICT ? response_error(req, e, "MFA is already on")
					 : response_error(req, BW_ERR_UNAVAILABLE, NULL);
		goto out;
	}
	if (req->op.actor.kind == ACTOR_SESSION && (e = api_set_session(req, sess)) != BW_OK)
		goto out;
	e = response_json(req, 200,
			  json_pack("{s:b, s:O, s:s}", "mfa_enabled", 1, "recovery_codes", codes, "note",
				    "each recovery code works once; they are shown only now"));
	crypto_wipe(sess, sizeof(sess));
out:
	json_decref(codes);
	json_decref(in);
	return e;
}

/* The body's password, checked again (*ra: what was verified): BW_OK, or the error (reply set). */
static bw_err
mfa_with_password(struct http_req *req, db **d, struct api_reauth *ra)
{
	json_t *in;
	memset(ra, 0, sizeof(*ra));
	bw_err e = http_req_json(req, &in);
	if (e == BW_OK && (e = http_req_db(req, d)) == BW_OK)
		e = api_body_password(req, *d, in, ra);
	json_decref(in);
	return e;
}

static bw_err
mfa_disable(struct http_req *req)
{
	db *d;
	struct api_reauth ra;
	bw_err e = mfa_with_password(req, &d, &ra);
	if (e != BW_OK)
		return e;
	/* Only on the credentials the password was checked against (api_reauth_begin). */
	if ((e = api_reauth_begin(req, d, &ra)) != BW_OK)
		return e;
	if ((e = DB_RUN(d,
			"UPDATE users SET mfa_enabled = 0, mfa_secret = NULL, mfa_pending = NULL,"
			" version = version + 1 WHERE id = ?",
			DB_INT(req->op.actor.user.id))) == BW_OK &&
	    (e = DB_RUN(d, "DELETE FROM recovery_codes WHERE user_id = ?",
			DB_INT(req->op.actor.user.id))) == BW_OK &&
	    (e = session_end_user(d, req->op.actor.user.id, req->op.actor.session_id)) == BW_OK) {
		auth_event(d, req->op.actor.user.id, "mfa_disabled", req->client_ip, "other sessions ended");
		/* Told by mail: whoever holds the password can turn the second factor off. */
		e = notify_notice(&req->op, "mfa_disabled", req->op.actor.user.id,
				  req->op.actor.user.email,
				  "Two-factor sign-in was turned off for your Bulwark account",
				  pool_printf(req->op.pool,
					      "Two-factor sign-in for %s was turned off just now, from "
					      "%s, and your other sessions were signed out.",
					      req->op.actor.user.email, req->client_ip),
				  "If it was not you, sign in, change your password and turn it on "
				  "again, or tell your administrator at once.");
	}
	if (e == BW_OK) {
		e = api_audit(req, "users", req->op.actor.user.id, "mfa_disabled",
			      json_pack("{s:b}", "mfa_enabled", req->op.actor.user.mfa_enabled),
			      json_pack("{s:b, s:b}", "mfa_enabled", 0, "other_sessions_ended", 1));
	}
	if (api_tx_end(d, e) != BW_OK)
		return response_error(req, BW_ERR_UNAVAILABLE, NULL);
	return response_json(req, 200, json_pack("{s:b}", "mfa_enabled", 0));
}

static bw_err
mfa_regenerate(struct http_req *req)
{
	db *d;
	json_t *codes = NULL;
	struct api_reauth ra;
	bw_err e = mfa_with_password(req, &d, &ra);
	if (e != BW_OK)
		return e;
	if (!ra.mfa_enabled) {
		crypto_wipe(&ra, sizeof(ra));
		return response_error(req, BW_ERR_CONFLICT, "MFA is off");
	}
	mfa_recovery_hashes phc;
	if ((e = mfa_recovery_make(req, phc, &codes)) != BW_OK) {
		crypto_wipe(&ra, sizeof(ra));
		return response_error(req, BW_ERR_UNAVAILABLE, NULL);
	}
	/* Stored only while MFA is on and the password the one checked (api_reauth_begin). */
	if ((e = api_reauth_begin(req, d, &ra)) != BW_OK) {
		crypto_wipe(phc, sizeof(phc));
		json_decref(codes);
		return e;
	}
	if ((e = mfa_recovery_store(req, d, phc)) == BW_OK) {
		auth_event(d, req->op.actor.user.id, "recovery_codes_regenerated", req->client_ip, "");
		e = api_audit(req, "users", req->op.actor.user.id, "recovery_codes_regenerated", NULL,
			      json_pack("{s:i}", "codes", TOTP_RECOVERY_COUNT));
	}
	crypto_wipe(phc, sizeof(phc));
	if (api_tx_end(d, e) != BW_OK) {
		json_decref(codes);
		return response_error(req, BW_ERR_UNAVAILABLE, NULL);
	}
	return response_json(req, 200, json_pack("{s:o}", "recovery_codes", codes));
}

/*
 * The tenant's security switches, each a boolean row in settings: whether
 * every staff user must use MFA, and whether users' e-mail addresses may
 * have internationalised domains (ADR 0012; existing users keep signing in
 * whatever it says).
 */
static const struct {
	const char *key;     /* in the JSON body and reply */
	const char *setting; /* settings.name */
} security_switches[] = {
    {"mfa_required", "mfa_required"},
    {"email_idn", "email_idn"},
};

/* The switch's value: 1 on, 0 off or unset; BW_ERR_DB when it cannot be read. */
static bw_err
security_switch(db *d, const char *setting, int *on)
{
	db_stmt *s;
	int row = 0;
	*on = 0;
	bw_err e = db_prepare(d, "SELECT value FROM settings WHERE name = ?", &s);
	if (e == BW_OK && (e = db_bind_text(s, 1, setting)) == BW_OK &&
	    (e = db_step(s, &row)) == BW_OK && row)
		*on = db_col_text(s, 0) != NULL && strcmp(db_col_text(s, 0), "1") == 0;
	db_finalize(s);
	return e == BW_OK ? BW_OK : BW_ERR_DB;
}

static bw_err
security_get(struct http_req *req)
{
	db *d;
	bw_err e = http_req_db(req, &d);
	if (e != BW_OK)
		return e;
	json_t *o = json_object();
	for (size_t i = 0; o != NULL && i < BW_ARRAY_LEN(security_switches); i++) {
		int on;
		if (security_switch(d, security_switches[i].setting, &on) != BW_OK) {
			json_decref(o);
			return response_error(req, BW_ERR_UNAVAILABLE, NULL);
		}
		json_object_set_new(o, security_switches[i].key, json_boolean(on));
	}
	return response_json(req, 200, o);
}

/* Admins: set any of the switches; those left out stay as they are. */
static bw_err
security_put(struct http_req *req)
{
	json_t *in, *before = NULL, *after = NULL;
	db *d;
	size_t given = 0;
	bw_err e = http_req_json(req, &in);
	if (e != BW_OK)
		return e;
	const char *k;
	json_t *v;
	json_object_foreach(in, k, v)
	{
		size_t i = 0;
		while (i < BW_ARRAY_LEN(security_switches) && strcmp(k, security_switches[i].key) != 0)
			i++;
		if (i == BW_ARRAY_LEN(security_switches) || !json_is_boolean(v)) {
			/* k lives in the body: the message is made before the body goes,
			 * and names the key only when it is short printable ASCII */
			int plain = strlen(k) <= 64;
			for (const char *c = k; plain && *c; c++)
				plain = *c >= 0x20 && *c < 0x7f;
			const char *msg = pool_printf(req->pool,
						      "%s%s not a security setting, or not a boolean "
						      "(mfa_required, email_idn)",
						      plain ? k : "a key", plain ? ":" : " is");
			json_decref(in);
			return response_error(req, BW_ERR_INVALID, msg);
		}
		given++;
	}
	if (given == 0) {
		json_decref(in);
		return response_error(req, BW_ERR_INVALID,
				      "give at least one of mfa_required, email_idn (booleans)");
	}
	char detail[96] = "";
	int64_t now = api_now();
	if ((e = http_req_db(req, &d)) != BW_OK) {
		json_decref(in);
		return e;
	}
	/* One transaction: a failed write never leaves a setting missing (= off). */
	if ((e = db_begin(d)) == BW_OK && ((before = json_object()) == NULL ||
					   (after = json_object()) == NULL))
		e = BW_ERR_NOMEM;
	for (size_t i = 0; e == BW_OK && i < BW_ARRAY_LEN(security_switches); i++) {
		json_t *want = json_object_get(in, security_switches[i].key);
		int was;
		if (want == NULL)
			continue;
		/* read inside: what this change replaces */
		if ((e = security_switch(d, security_switches[i].setting, &was)) == BW_OK &&
		    (e = DB_RUN(d, "DELETE FROM settings WHERE name = ?",
				DB_TEXT(security_switches[i].setting))) == BW_OK &&
		    (e = DB_RUN(d, "INSERT INTO settings (name, value, updated_at) VALUES (?, ?, ?)",
				DB_TEXT(security_switches[i].setting),
				DB_TEXT(json_is_true(want) ? "1" : "0"), DB_INT(now))) == BW_OK) {
			json_object_set_new(before, security_switches[i].key, json_boolean(was));
			json_object_set_new(after, security_switches[i].key, json_boolean(json_is_true(want)));
			size_t dl = strlen(detail);
			snprintf(detail + dl, sizeof(detail) - dl, "%s%s %s", dl ? ", " : "",
				 security_switches[i].key, json_is_true(want) ? "on" : "off");
		}
	}
	if (e == BW_OK) {
		auth_event(d, req->op.actor.user.id, "setting_changed", req->client_ip, detail);
		e = api_audit(req, "settings", 0, "update", before, json_incref(after));
		before = NULL;
	}
	json_decref(before);
	json_decref(in);
	if (api_tx_end(d, e) != BW_OK) {
		json_decref(after);
		return response_error(req, BW_ERR_UNAVAILABLE, NULL);
	}
	return response_json(req, 200, after);
}

#define MFA_BODY 4096

const struct route mfa_routes[] = {
	{HTTP_POST, "/api/v1/auth/mfa", mfa_verify, ROUTE_MFA_PENDING | ROUTE_MFA_ENROL,
	 "self.session", MFA_BODY},
	{HTTP_POST, "/api/v1/auth/mfa/enrol", mfa_enrol, ROUTE_MFA_ENROL, "self.mfa", MFA_BODY},
	{HTTP_POST, "/api/v1/auth/mfa/enrol/confirm", mfa_confirm, ROUTE_MFA_ENROL, "self.mfa",
	 MFA_BODY},
	{HTTP_POST, "/api/v1/auth/mfa/disable", mfa_disable, 0, "self.mfa", MFA_BODY},
	{HTTP_POST, "/api/v1/auth/mfa/recovery-codes", mfa_regenerate, 0, "self.mfa", MFA_BODY},
	{HTTP_PUT, "/api/v1/settings/security", security_put, ROUTE_ADMIN, "settings.edit", MFA_BODY},
	{HTTP_GET, "/api/v1/settings/security", security_get, ROUTE_ADMIN, "settings.view",
	 ROUTE_BODY_NONE},
};

const size_t mfa_routes_count = BW_ARRAY_LEN(mfa_routes);
