/*
 * The staff-user operations shared by the API and the CLI (users.h).
 */
#include "users.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "../audit/audit.h"
#include "../auth/auth.h"
#include "../crypto/crypto.h"
#include "../modules/module.h"
#include "../rbac/rbac.h"

bw_err
user_find_email(struct op *op, const char *email, int64_t *id)
{
	struct email_addr addr;
	const char *why = NULL;
	db *d;
	db_stmt *s;
	int row = 0;
	*id = 0;
	bw_err e = email_normalize(email, EMAIL_ALLOW_IDN, &addr, &why);
	if (e != BW_OK)
		return op_fail(op, e,
			       pool_printf(op->pool, "not a usable e-mail address: the address %s",
					   why ? why : "is refused"));
	if ((e = op_db(op, &d)) != BW_OK)
		return e;
	if ((e = db_prepare(d, "SELECT id FROM users WHERE email_norm = ?", &s)) != BW_OK)
		return op_unavailable(op);
	if ((e = db_bind_text(s, 1, addr.key)) == BW_OK && (e = db_step(s, &row)) == BW_OK && row)
		*id = db_col_int(s, 0);
	db_finalize(s);
	if (e != BW_OK)
		return op_unavailable(op);
	return row ? BW_OK : op_fail(op, BW_ERR_NOTFOUND, "no such user");
}

static bw_err
user_unlock_tx(struct op *op, void *arg)
{
	int64_t id = *(const int64_t *)arg;
	db *d = op->d;
	db_stmt *s;
	int row = 0;
	json_t *before = NULL, *after = NULL;
	/* Inside the transaction: the roles compared are those the change is made under. */
	bw_err e = rbac_may_manage(op, id);
	if (e != BW_OK)
		return e;
	e = db_prepare(d, "SELECT failed_logins, locked_until FROM users WHERE id = ?", &s);
	if (e != BW_OK)
		return e;
	char lu[UTIL_TIME_LEN];
	if ((e = db_bind_int(s, 1, id)) == BW_OK && (e = db_step(s, &row)) == BW_OK && row)
		before = json_pack("{s:I, s:s?}", "failed_logins", (json_int_t)db_col_int(s, 0),
				   "locked_until",
				   db_col_int(s, 1) ? util_time_rfc3339(db_col_int(s, 1), lu) : NULL);
	db_finalize(s);
	if (e != BW_OK)
		return e;
	if (!row)
		return op_fail(op, BW_ERR_NOTFOUND, "no such user");
	after = json_pack("{s:i, s:n}", "failed_logins", 0, "locked_until");
	if (before == NULL || after == NULL)
		e = BW_ERR_NOMEM;
	/* An unlock changes what the user shows (locked_until): a new version. */
	if (e == BW_OK &&
	    (e = db_prepare(d,
			    "UPDATE users SET failed_logins = 0, locked_until = 0,"
			    " version = version + 1 WHERE id = ?",
			    &s)) == BW_OK) {
		if ((e = db_bind_int(s, 1, id)) == BW_OK)
			e = db_step(s, &row);
		db_finalize(s);
	}
	if (e == BW_OK) {
		int system = op->actor.kind == ACTOR_SYSTEM;
		auth_event(d, id, "unlock", system ? "cli" : op->client_ip,
			   system ? "by the operator" : "by an admin");
		e = audit_op(op, "users", id, "unlock", before, after);
	}
	json_decref(before);
	json_decref(after);
	return e;
}

bw_err
user_unlock(struct op *op, int64_t id)
{
	/*
	 * A lockout stops whoever is guessing this user's password; if that is
	 * someone holding the user's own session, unlocking oneself would hand
	 * them a fresh count. Someone else must do it.
	 */
	if (op->actor.kind != ACTOR_SYSTEM && id == op->actor.user.id)
		return op_fail(op, BW_ERR_DENIED,
			       "you cannot unlock your own account: another admin, or the operator "
			       "with 'bulwark user unlock', must do it");
	return op_tx(op, user_unlock_tx, &id);
}

/* --- create, update, delete ---------------------------------------------------- */

/*
 * Flags for email_normalize() when a user is made: internationalised
 * domains only where the tenant allows them (settings 'email_idn' = '1').
 */
static bw_err
user_email_flags(db *d, unsigned *flags)
{
	int64_t idn;
	bw_err e = DB_QUERY_INT(d, &idn,
				"SELECT COUNT(*) FROM settings WHERE name = 'email_idn' AND value = ?",
				DB_TEXT("1"));
	*flags = e == BW_OK && idn > 0 ? EMAIL_ALLOW_IDN : 0;
	return e;
}

/* The users counted by user_active_admins(): active, and holding the built-in admin role. */
#define USER_ACTIVE_ADMIN                                                          \
	" AND u.disabled = 0 AND EXISTS (SELECT 1 FROM user_roles ur JOIN roles r" \
	" ON r.id = ur.role_id WHERE ur.user_id = u.id AND r.builtin = 'admin')"

/*
 * Active admins among the users other than uid (others: 1), or whether
 * uid is one itself (others: 0). The tenant must always keep one.
 */
static bw_err
user_active_admins(db *d, int64_t uid, int others, int64_t *n)
{
	return DB_QUERY_INT(d, n,
			    others ? "SELECT COUNT(*) FROM users u WHERE u.id <> ?" USER_ACTIVE_ADMIN
				   : "SELECT COUNT(*) FROM users u WHERE u.id = ?" USER_ACTIVE_ADMIN,
			    DB_INT(uid));
}

/*
 * The start of a change of who holds what: the tenant's lock taken
 * (rbac_serialise: two admins cannot demote each other at once), then
 * user uid must exist and be one the actor may manage.
 */
static bw_err
user_change_begin(struct op *op, int64_t uid)
{
	int64_t exists;
	bw_err e = rbac_serialise(op->d);
	if (e == BW_OK &&
	    (e = DB_QUERY_INT(op->d, &exists, "SELECT COUNT(*) FROM users WHERE id = ?",
			      DB_INT(uid))) == BW_OK &&
	    !exists)
		e = op_fail(op, BW_ERR_NOTFOUND, "no such user");
	if (e == BW_OK)
		e = rbac_may_manage(op, uid);
	return e;
}

static const char user_last_admin[] = "this is the last active admin: make another admin first";

/*
 * The caller's precondition (If-Match) against user uid as it is now,
 * once the change holds the tenant's lock: BW_OK for none (if_version 0)
 * or when the user is at that version, else BW_ERR_PRECONDITION
 * (recorded) before anything is written.
 */
static bw_err
user_precondition(struct op *op, int64_t uid, int64_t if_version)
{
	int64_t version;
	if (if_version == 0)
		return BW_OK;
	bw_err e = DB_QUERY_INT(op->d, &version, "SELECT version FROM users WHERE id = ?",
				DB_INT(uid));
	if (e != BW_OK || version == if_version)
		return e;
	return op_fail(op, BW_ERR_PRECONDITION,
		       pool_printf(op->pool,
				   "this user has changed since it was read (it is now at version"
				   " %lld): read it again, then retry",
				   (long long)version));
}

/* One more on user uid's version: something it shows has changed. */
static bw_err
user_bump(struct op *op, int64_t uid)
{
	return DB_RUN(op->d, "UPDATE users SET version = version + 1, updated_at = ? WHERE id = ?",
		      DB_INT((int64_t)time(NULL)), DB_INT(uid));
}

/* A user to make: checked and hashed before the transaction, which only writes. */
struct user_new {
	const char *email; /* the display form */
	struct email_addr addr;
	char phc[256];
	int64_t must_change; /* a one-time password was made */
	int64_t roles[RBAC_ROLES_PER_USER];
	size_t nroles;
	int64_t id; /* set by the run */
};

static bw_err
user_create_tx(struct op *op, void *arg)
{
	struct user_new *u = arg;
	json_t *list = NULL, *after = NULL;
	int64_t now = (int64_t)time(NULL);
	/* Unique by key and by skeleton: a look-alike of an existing address is 409 too. */
	bw_err e = DB_INSERT(op->d, &u->id,
			     "INSERT INTO users (email, email_norm, email_skel, password_hash,"
			     " must_change_password, is_admin, created_at, updated_at,"
			     " password_changed_at) VALUES (?, ?, ?, ?, ?, 0, ?, ?, ?)",
			     DB_TEXT(u->email), DB_TEXT(u->addr.key), DB_TEXT(u->addr.skel),
			     DB_TEXT(u->phc), DB_INT(u->must_change), DB_INT(now), DB_INT(now),
			     DB_INT(now));
	if (e == BW_ERR_CONFLICT)
		return op_fail(op, e,
			       "field 'email': a user with that e-mail address (in any case or "
			       "spelling of it), or with one that looks the same, exists");
	if (e == BW_OK)
		e = rbac_set_user_roles(op->d, u->id, u->roles, u->nroles);
	if (e == BW_OK && (e = rbac_user_roles(op->d, u->id, &list)) == BW_OK) {
		after = json_pack("{s:s, s:O}", "email", u->email, "roles", list);
		e = after ? audit_op(op, "users", u->id, "create", NULL, after) : BW_ERR_NOMEM;
	}
	json_decref(list);
	json_decref(after);
	return e;
}

bw_err
user_create(struct op *op, struct auth_hasher *h, json_t *in, int64_t *id,
	    char otp[USER_OTP_SIZE])
{
	static const char *const known[] = {"email", "roles", "password", NULL};
	struct user_new u = {0};
	json_t *pj = json_object_get(in, "password"), *roles = json_object_get(in, "roles");
	const char *password = json_string_value(pj), *why;
	unsigned eflags;
	db *d;
	*id = 0;
	otp[0] = '\0';
	bw_err e = op_known_fields(op, in, known);
	if (e != BW_OK || (e = op_db(op, &d)) != BW_OK || (e = user_email_flags(d, &eflags)) != BW_OK)
		return e;
	/* One form of every address (ADR 0012): shown as display, unique as key and skel. */
	if ((e = email_normalize(json_string_value(json_object_get(in, "email")), eflags, &u.addr,
				 &why)) != BW_OK)
		return op_fail(op, e == BW_ERR_NOMEM ? e : BW_ERR_INVALID,
			       pool_printf(op->pool, "field 'email': the address %s", why));
	u.email = u.addr.display;
	if (pj != NULL && (password == NULL || password_policy(password, u.email, &why) != BW_OK))
		return op_fail(op, BW_ERR_INVALID,
			       pool_printf(op->pool, "field 'password': %s",
					   password ? why : "must be a string"));
	if (password == NULL) {
		/* A one-time password, shown once; it must be changed at first sign-in. */
		unsigned char rnd[15];
		if ((e = util_random(rnd, sizeof(rnd))) != BW_OK)
			return e;
		sodium_bin2base64(otp, USER_OTP_SIZE, rnd, sizeof(rnd),
				  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
		crypto_wipe(rnd, sizeof(rnd));
		password = otp;
		u.must_change = 1;
	}
	if (roles != NULL && (e = rbac_resolve_roles(op, roles, u.roles, &u.nroles)) != BW_OK)
		goto out;
	if ((e = password_hash(h, password, u.phc, sizeof(u.phc))) != BW_OK) {
		e = op_fail(op, e, "the server is busy; try again");
		goto out;
	}
	if ((e = op_tx(op, user_create_tx, &u)) == BW_OK)
		*id = u.id;
out:
	crypto_wipe(u.phc, sizeof(u.phc));
	if (e != BW_OK)
		crypto_wipe(otp, USER_OTP_SIZE);
	return e;
}

/* A change of user id: the members of its body, borrowed. */
struct user_change {
	int64_t id;
	int64_t if_version; /* the version the caller read, or 0 */
	json_t *roles;    /* role names, or NULL */
	json_t *disabled; /* true or false, or NULL */
	json_t *sso_exempt; /* true or false, or NULL: password sign-in despite "SSO required" */
};

/* Set or clear the user's disabled flag; disabling ends what they hold (a after). */
static bw_err
user_set_disabled(struct op *op, int64_t uid, int flag, json_t *a)
{
	int64_t revoked = 0;
	/*
	 * The user's row locked before it changes and before anything is
	 * revoked (auth_user_lock): a token being minted or an MFA change
	 * of theirs either commits first, and is revoked below, or waits
	 * and then finds the user disabled.
	 */
	bw_err e = auth_user_lock(op->d, uid);
	if (e != BW_OK ||
	    (e = DB_RUN(op->d, "UPDATE users SET disabled = ?, updated_at = ? WHERE id = ?",
			DB_INT(flag), DB_INT((int64_t)time(NULL)), DB_INT(uid))) != BW_OK)
		return e;
	json_object_set_new(a, "disabled", json_boolean(flag));
	/*
	 * A disabled user is signed out everywhere at once, and their API
	 * tokens are revoked: enabling the user again brings none back.
	 */
	if (flag && ((e = session_end_user(op->d, uid, 0)) != BW_OK ||
		     (e = token_revoke_user(op->d, uid, 0, &revoked)) != BW_OK))
		return e;
	if (revoked > 0)
		json_object_set_new(a, "tokens_revoked", json_integer((json_int_t)revoked));
	return BW_OK;
}

static bw_err
user_update_tx(struct op *op, void *arg)
{
	const struct user_change *c = arg;
	json_t *old = NULL, *now_roles = NULL, *b = json_object(), *a = json_object();
	int64_t ids[RBAC_ROLES_PER_USER], others, self_admin;
	size_t nids = 0;
	/* Serialised, then checked: two admins cannot demote each other at once. */
	bw_err e = b != NULL && a != NULL ? user_change_begin(op, c->id) : BW_ERR_NOMEM;
	if (e == BW_OK)
		e = user_precondition(op, c->id, c->if_version);
	if (e != BW_OK ||
	    (c->roles != NULL && (e = rbac_resolve_roles(op, c->roles, ids, &nids)) != BW_OK) ||
	    (e = rbac_user_roles(op->d, c->id, &old)) != BW_OK)
		goto out;
	if (c->roles != NULL) {
		if ((e = rbac_set_user_roles(op->d, c->id, ids, nids)) != BW_OK ||
		    (e = rbac_user_roles(op->d, c->id, &now_roles)) != BW_OK)
			goto out;
		if (!json_equal(old, now_roles)) {
			json_object_set(b, "roles", old);
			json_object_set(a, "roles", now_roles);
		}
	}
	if (c->disabled != NULL &&
	    (e = user_set_disabled(op, c->id, json_is_true(c->disabled), a)) != BW_OK)
		goto out;
	if (c->sso_exempt != NULL) {
		int64_t was = 0;
		int now = json_is_true(c->sso_exempt);
		if ((e = DB_QUERY_INT(op->d, &was, "SELECT sso_exempt FROM users WHERE id = ?",
				      DB_INT(c->id))) != BW_OK ||
		    (was != now && (e = DB_RUN(op->d, "UPDATE users SET sso_exempt = ? WHERE id = ?",
					       DB_INT(now), DB_INT(c->id))) != BW_OK))
			goto out;
		if (was != now) {
			json_object_set_new(b, "sso_exempt", json_boolean(was));
			json_object_set_new(a, "sso_exempt", json_boolean(now));
		}
	}
	/* Whatever changed, an active admin must remain. */
	if ((e = user_active_admins(op->d, c->id, 1, &others)) != BW_OK ||
	    (e = user_active_admins(op->d, c->id, 0, &self_admin)) != BW_OK)
		goto out;
	if (others == 0 && self_admin == 0) {
		e = op_fail(op, BW_ERR_CONFLICT, user_last_admin);
		goto out;
	}
	if (json_object_size(a) > 0 && (e = user_bump(op, c->id)) == BW_OK)
		e = audit_op(op, "users", c->id, "update", b, a);
out:
	json_decref(old);
	json_decref(now_roles);
	json_decref(b);
	json_decref(a);
	return e;
}

bw_err
user_update(struct op *op, int64_t id, json_t *in, int64_t if_version)
{
	static const char *const known[] = {"roles", "disabled", "sso_exempt", NULL};
	struct user_change c = {id, if_version, json_object_get(in, "roles"),
				json_object_get(in, "disabled"), json_object_get(in, "sso_exempt")};
	bw_err e = op_known_fields(op, in, known);
	if (e != BW_OK)
		return e;
	if (c.disabled != NULL && !json_is_boolean(c.disabled))
		return op_fail(op, BW_ERR_INVALID, "field 'disabled' must be true or false");
	if (c.sso_exempt != NULL && !json_is_boolean(c.sso_exempt))
		return op_fail(op, BW_ERR_INVALID, "field 'sso_exempt' must be true or false");
	return op_tx(op, user_update_tx, &c);
}

/* A user to delete, and the version the caller read (or 0). */
struct user_gone {
	int64_t id, if_version;
};

static bw_err
user_delete_tx(struct op *op, void *arg)
{
	/* What a user leaves behind goes with them, the user's row last. */
	static const char *const gone[] = {
	    "DELETE FROM user_roles WHERE user_id = ?",
	    "DELETE FROM sessions WHERE user_id = ?",
	    "DELETE FROM api_tokens WHERE user_id = ?",
	    "DELETE FROM recovery_codes WHERE user_id = ?",
	    "DELETE FROM users WHERE id = ?",
	};
	const struct user_gone *g = arg;
	int64_t uid = g->id, others;
	json_t *before = NULL, *roles = NULL;
	bw_err e = user_change_begin(op, uid);
	if (e == BW_OK)
		e = user_precondition(op, uid, g->if_version);
	if (e == BW_OK && (e = user_active_admins(op->d, uid, 1, &others)) == BW_OK && others == 0)
		e = op_fail(op, BW_ERR_CONFLICT, user_last_admin);
	/* Records assigned to the user keep pointing at it: disable it instead. */
	if (e == BW_OK)
		e = module_referenced(op, "users", uid);
	if (e == BW_OK)
		e = rbac_user_roles(op->d, uid, &roles);
	for (size_t i = 0; e == BW_OK && i < BW_ARRAY_LEN(gone); i++)
		e = DB_RUN(op->d, gone[i], DB_INT(uid));
	if (e == BW_OK) {
		before = json_pack("{s:O}", "roles", roles);
		e = before ? audit_op(op, "users", uid, "delete", before, NULL) : BW_ERR_NOMEM;
	}
	json_decref(before);
	json_decref(roles);
	return e;
}

bw_err
user_delete(struct op *op, int64_t id, int64_t if_version)
{
	struct user_gone g = {id, if_version};
	if (op->actor.kind != ACTOR_SYSTEM && id == op->actor.user.id)
		return op_fail(op, BW_ERR_CONFLICT, "you cannot delete yourself");
	return op_tx(op, user_delete_tx, &g);
}
