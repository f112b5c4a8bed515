/*
 * The staff-user operations shared by the API and the CLI (users.h).
 */
#include "users.h"

#include <stdio.h>
#include <string.h>

#include "../audit/audit.h"
#include "../auth/auth.h"
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
	bw_err e = db_prepare(d, "SELECT failed_logins, locked_until FROM users WHERE id = ?", &s);
	if (e != BW_OK)
		return e;
	if ((e = db_bind_int(s, 1, id)) == BW_OK && (e = db_step(s, &row)) == BW_OK && row)
		before = json_pack("{s:I, s:I}", "failed_logins", (json_int_t)db_col_int(s, 0),
				   "locked_until", (json_int_t)db_col_int(s, 1));
	db_finalize(s);
	if (e != BW_OK)
		return e;
	if (!row)
		return op_fail(op, BW_ERR_NOTFOUND, "no such user");
	after = json_pack("{s:i, s:i}", "failed_logins", 0, "locked_until", 0);
	if (before == NULL || after == NULL)
		e = BW_ERR_NOMEM;
	if (e == BW_OK &&
	    (e = db_prepare(d, "UPDATE users SET failed_logins = 0, locked_until = 0 WHERE id = ?",
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
	bw_err e = rbac_may_manage(op, id);
	if (e != BW_OK)
		return e;
	return op_tx(op, user_unlock_tx, &id);
}
