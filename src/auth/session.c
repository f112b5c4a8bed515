/*
 * Sessions and API tokens. Both are 256-bit random secrets handed to the
 * client once; the database keeps only their SHA-256, so a copy of the
 * database is no key to anyone's session. Sessions end after an idle time
 * (sliding) and an absolute time; the last-seen time is written at most
 * once a minute so a busy client does not cost a write per request.
 */
#include "auth.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../crypto/crypto.h"

#define SESSION_TOUCH_SECONDS 60

static int64_t
auth_now(void)
{
	return (int64_t)time(NULL);
}

void
auth_secret_hash(const char *secret, char hash[65])
{
	unsigned char md[32];
	unsigned int n = 0;
	if (EVP_Digest(secret, strlen(secret), md, &n, EVP_sha256(), NULL) != 1 || n != 32)
		memset(md, 0, sizeof(md)); /* cannot happen; hashes to nothing anyone has */
	util_hex(md, 32, hash);
}

bw_err
auth_secret_new(char secret[48], char hash[65])
{
	unsigned char raw[AUTH_TOKEN_BYTES];
	unsigned char b64[64];
	if (util_random(raw, sizeof(raw)) != BW_OK)
		return BW_ERR_CRYPTO;
	int n = EVP_EncodeBlock(b64, raw, sizeof(raw)); /* 44 chars with one '=' */
	crypto_wipe(raw, sizeof(raw));
	size_t o = 0;
	for (int i = 0; i < n && b64[i] != '='; i++)
		secret[o++] = b64[i] == '+' ? '-' : b64[i] == '/' ? '_' : (char)b64[i];
	secret[o] = '\0';
	crypto_wipe(b64, sizeof(b64));
	auth_secret_hash(secret, hash);
	return BW_OK;
}

void
auth_event(db *d, int64_t user_id, const char *kind, const char *client_ip, const char *detail)
{
	db_stmt *s;
	int row;
	bw_err e = db_prepare(d,
			      "INSERT INTO auth_events (at, user_id, kind, client_ip, detail) VALUES "
			      "(?, ?, ?, ?, ?)",
			      &s);
	if (e == BW_OK && (e = db_bind_int(s, 1, auth_now())) == BW_OK &&
	    (e = db_bind_int(s, 2, user_id)) == BW_OK && (e = db_bind_text(s, 3, kind)) == BW_OK &&
	    (e = db_bind_text(s, 4, client_ip)) == BW_OK && (e = db_bind_text(s, 5, detail)) == BW_OK)
		e = db_step(s, &row);
	db_finalize(s);
	if (e != BW_OK)
		log_error("recording auth event %s: %s", kind, db_errmsg(d));
}

static bw_err
session_insert(db *d, const struct config *cfg, int64_t user_id, int mfa_verified, int sso,
	       const char *client_ip, int64_t expires_at, char secret[48])
{
	char hash[65];
	db_stmt *s;
	int row;
	bw_err e = auth_secret_new(secret, hash);
	if (e != BW_OK)
		return e;
	(void)cfg;
	int64_t now = auth_now();
	e = db_prepare(d,
		       "INSERT INTO sessions (token_hash, user_id, mfa_verified, created_at,"
		       " last_seen_at, expires_at, client_ip, sso) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
		       &s);
	if (e == BW_OK && (e = db_bind_text(s, 1, hash)) == BW_OK &&
	    (e = db_bind_int(s, 2, user_id)) == BW_OK && (e = db_bind_int(s, 3, mfa_verified)) == BW_OK &&
	    (e = db_bind_int(s, 4, now)) == BW_OK && (e = db_bind_int(s, 5, now)) == BW_OK &&
	    (e = db_bind_int(s, 6, expires_at)) == BW_OK && (e = db_bind_text(s, 7, client_ip)) == BW_OK &&
	    (e = db_bind_int(s, 8, sso)) == BW_OK)
		e = db_step(s, &row);
	db_finalize(s);
	if (e != BW_OK)
		crypto_wipe(secret, 48);
	return e;
}

bw_err
session_create(db *d, const struct config *cfg, int64_t user_id, int mfa_verified,
	       const char *client_ip, char secret[48])
{
	return session_insert(d, cfg, user_id, mfa_verified, 0, client_ip,
			      auth_now() + cfg->auth_session_absolute_hours * 3600, secret);
}

bw_err
session_create_sso(db *d, const struct config *cfg, int64_t user_id, const char *client_ip,
		   char secret[48])
{
	return session_insert(d, cfg, user_id, 1, 1, client_ip,
			      auth_now() + cfg->auth_session_absolute_hours * 3600, secret);
}

bw_err
session_delete(db *d, int64_t session_id)
{
	return DB_RUN(d, "DELETE FROM sessions WHERE id = ?", DB_INT(session_id));
}

bw_err
session_end_user(db *d, int64_t user_id, int64_t keep)
{
	return DB_RUN(d, "DELETE FROM sessions WHERE user_id = ? AND id <> ?", DB_INT(user_id),
		      DB_INT(keep));
}

bw_err
session_rotate(db *d, const struct config *cfg, int64_t session_id, int mfa_verified,
	       const char *client_ip, char secret[48])
{
	db_stmt *s;
	int row = 0;
	int64_t user_id = 0, expires = 0;
	int sso = 0;
	bw_err e = db_prepare(d, "SELECT user_id, expires_at, sso FROM sessions WHERE id = ?", &s);
	if (e == BW_OK && (e = db_bind_int(s, 1, session_id)) == BW_OK &&
	    (e = db_step(s, &row)) == BW_OK && row) {
		user_id = db_col_int(s, 0);
		expires = db_col_int(s, 1);
		sso = db_col_int(s, 2) != 0;
	}
	db_finalize(s);
	if (e != BW_OK)
		return e;
	if (!row)
		return BW_ERR_UNAUTHORIZED;
	/*
	 * The old session goes first, and must still be there to go: on
	 * MariaDB the read above is a snapshot, so a change that ended it
	 * meanwhile (a password change) shows only here, and then no new
	 * session may come of it.
	 */
	if ((e = db_prepare(d, "DELETE FROM sessions WHERE id = ?", &s)) == BW_OK &&
	    (e = db_bind_int(s, 1, session_id)) == BW_OK && (e = db_step(s, &row)) == BW_OK &&
	    db_changes(s) != 1)
		e = BW_ERR_UNAUTHORIZED;
	db_finalize(s);
	if (e != BW_OK)
		return e;
	/* The absolute end stays where login put it: rotation is no extension. */
	return session_insert(d, cfg, user_id, mfa_verified, sso, client_ip, expires, secret);
}

/*
 * Run a row lock ("UPDATE t SET id = id WHERE id = ? ..."; both drivers
 * count matched rows) with its two ids; BW_OK when it matched one row,
 * else notfound, or the database's error.
 */
static bw_err
auth_lock_row(db *d, const char *sql, int64_t a, int64_t b, int nparams, bw_err notfound)
{
	db_stmt *s;
	int row;
	bw_err e = db_prepare(d, sql, &s);
	if (e == BW_OK && (e = db_bind_int(s, 1, a)) == BW_OK &&
	    (nparams < 2 || (e = db_bind_int(s, 2, b)) == BW_OK) && (e = db_step(s, &row)) == BW_OK &&
	    db_changes(s) != 1)
		e = notfound;
	db_finalize(s);
	return e;
}

bw_err
auth_user_lock(db *d, int64_t user_id)
{
	if (!db_in_tx(d))
		return BW_ERR_INTERNAL; /* a lock outside a transaction holds nothing */
	return auth_lock_row(d, "UPDATE users SET id = id WHERE id = ?", user_id, 0, 1,
			     BW_ERR_NOTFOUND);
}

bw_err
auth_caller_lock(db *d, const struct actor *ctx)
{
	if (!db_in_tx(d))
		return BW_ERR_INTERNAL;
	switch (ctx->kind) {
	case ACTOR_SESSION:
		return auth_lock_row(d, "UPDATE sessions SET id = id WHERE id = ? AND user_id = ?",
				     ctx->session_id, ctx->user.id, 2, BW_ERR_UNAUTHORIZED);
	case ACTOR_TOKEN:
		return auth_lock_row(d,
				     "UPDATE api_tokens SET id = id WHERE id = ? AND user_id = ? AND"
				     " revoked_at = 0",
				     ctx->token_id, ctx->user.id, 2, BW_ERR_UNAUTHORIZED);
	case ACTOR_NONE:
		return BW_ERR_UNAUTHORIZED;
	default:
		abort();
	}
}

/* Record use at now: sql takes the time and the row id. */
static bw_err
auth_touch(db *d, const char *sql, int64_t now, int64_t id)
{
	db_stmt *s;
	int row;
	bw_err e = db_prepare(d, sql, &s);
	if (e == BW_OK && (e = db_bind_int(s, 1, now)) == BW_OK && (e = db_bind_int(s, 2, id)) == BW_OK)
		e = db_step(s, &row);
	db_finalize(s);
	return e;
}

int
auth_list_has(const char *list, const char *item)
{
	size_t n = strlen(item);
	for (const char *p = list; p != NULL && *p != '\0';) {
		const char *c = strchr(p, ',');
		size_t len = c ? (size_t)(c - p) : strlen(p);
		if (len == n && strncmp(p, item, n) == 0)
			return 1;
		p = c ? c + 1 : NULL;
	}
	return 0;
}

/*
 * The user columns of the per-request lookup, and with them, in the same
 * statement, what the pipeline needs next: the built-in roles held, whether
 * a custom role grants the route's permission (the first parameter), and
 * the tenant's MFA requirement. One statement, not four, per request.
 *
 * One row per role the user holds (LEFT JOINs: one row for a user with
 * none, none without a session), gathered here, not subqueries and not a
 * GROUP BY: MariaDB plans a prepared statement again on every execution,
 * and planning the three subqueries this once had was most of the
 * server's time per request (perf under bench/api_run: 28% of mariadbd in
 * JOIN::optimize, 18% in optimize_unflattened_subqueries). The session (or
 * token) row comes by a unique key and users and settings by primary
 * keys, constant tables the planner settles at once.
 */
#define AUTH_USER_COLS \
	" u.id, u.email, r.builtin, u.mfa_enabled, u.must_change_password, rp.role_id, st.value"
/* After the FROM of sessions s or api_tokens t JOIN users u; binds the permission. */
#define AUTH_USER_JOINS \
	" LEFT JOIN user_roles ur ON ur.user_id = u.id LEFT JOIN roles r ON r.id = ur.role_id" \
	" LEFT JOIN role_permissions rp ON rp.role_id = ur.role_id AND rp.permission = ?" \
	" LEFT JOIN settings st ON st.name = 'mfa_required'"
/* More rows than any user has roles: the lookup is refused (fail closed), never cut short. */
#define AUTH_ROLES_MAX 256

/* Add the role of the current row (AUTH_USER_COLS from col on) to ctx. */
static bw_err
auth_ctx_role(db_stmt *s, int col, struct actor *ctx)
{
	const char *b = db_col_text(s, col + 2);
	if (!db_col_null(s, col + 5))
		ctx->perm_custom = 1;
	if (b == NULL || b[0] == '\0' || auth_list_has(ctx->builtin_roles, b))
		return BW_OK;
	size_t have = strlen(ctx->builtin_roles), n = strlen(b);
	if (have + (have > 0) + n >= sizeof(ctx->builtin_roles))
		return BW_ERR_DB; /* cannot happen with the built-in role names */
	if (have > 0)
		ctx->builtin_roles[have++] = ',';
	memcpy(ctx->builtin_roles + have, b, n + 1);
	return BW_OK;
}

/*
 * Fill ctx from the AUTH_USER_COLS selected from column col on: the user
 * from the current row, the roles from it and every further row (stepped
 * through to the end). *row stays 1; an error is the database's.
 */
static bw_err
auth_ctx_from(db_stmt *s, int col, struct actor *ctx)
{
	struct auth_user *u = &ctx->user;
	const char *mfa = db_col_text(s, col + 6);
	u->id = db_col_int(s, col);
	snprintf(u->email, sizeof(u->email), "%s", db_col_text(s, col + 1));
	u->mfa_enabled = (int)db_col_int(s, col + 3);
	u->must_change_password = (int)db_col_int(s, col + 4);
	ctx->mfa_required = mfa != NULL && strcmp(mfa, "1") == 0;
	ctx->builtin_roles[0] = '\0';
	ctx->perm_custom = 0;
	bw_err e = BW_OK;
	int more = 1;
	for (int n = 0; e == BW_OK && more; n++) {
		if (n == AUTH_ROLES_MAX)
			e = BW_ERR_DB;
		else if ((e = auth_ctx_role(s, col, ctx)) == BW_OK)
			e = db_step(s, &more);
	}
	u->is_admin = e == BW_OK && auth_list_has(ctx->builtin_roles, "admin");
	if (e != BW_OK) {
		ctx->builtin_roles[0] = '\0';
		ctx->perm_custom = 0;
	}
	return e;
}

bw_err
session_check(db *d, const struct config *cfg, const char *secret, const char *perm,
	      struct actor *ctx)
{
	char hash[65];
	db_stmt *s = NULL;
	int row = 0;
	int64_t now = auth_now(), sid = 0, last = 0, expires = 0;
	auth_secret_hash(secret, hash);
	memset(ctx, 0, sizeof(*ctx));
	/* What perm_custom will answer: may() asks the database for any other. */
	snprintf(ctx->perm_asked, sizeof(ctx->perm_asked), "%s", perm ? perm : "");
	/* Once per request: a statement kept with the connection. */
	static const char sql[] =
	    "SELECT s.id, s.mfa_verified, s.last_seen_at, s.expires_at, s.sso," AUTH_USER_COLS
	    " FROM sessions s JOIN users u ON u.id = s.user_id" AUTH_USER_JOINS
	    " WHERE s.token_hash = ? AND u.disabled = 0";
	bw_err e = db_prepare_cached(d, sql, &s);
	if (e == BW_OK && (e = db_bind_text(s, 1, perm ? perm : "")) == BW_OK &&
	    (e = db_bind_text(s, 2, hash)) == BW_OK && (e = db_step(s, &row)) == BW_OK && row) {
		sid = db_col_int(s, 0);
		ctx->mfa_verified = (int)db_col_int(s, 1);
		last = db_col_int(s, 2);
		expires = db_col_int(s, 3);
		ctx->sso = db_col_int(s, 4) != 0;
		e = auth_ctx_from(s, 5, ctx);
	}
	db_done(s);
	if (e != BW_OK)
		return e;
	if (!row)
		return BW_ERR_UNAUTHORIZED;
	if (now >= expires || now - last >= cfg->auth_session_idle_minutes * 60) {
		if (session_delete(d, sid) != BW_OK)
			log_warn("cannot delete expired session %lld", (long long)sid);
		return BW_ERR_UNAUTHORIZED;
	}
	if (now - last >= SESSION_TOUCH_SECONDS &&
	    (e = auth_touch(d, "UPDATE sessions SET last_seen_at = ? WHERE id = ?", now, sid)) != BW_OK)
		return e;
	ctx->kind = ACTOR_SESSION;
	ctx->session_id = sid;
	return BW_OK;
}

bw_err
token_create(db *d, int64_t user_id, const char *name, const char *scopes_json, int64_t expires_at,
	     char token[64], int64_t *id)
{
	char secret[48], hash[65], prefix[16];
	db_stmt *s;
	int row;
	bw_err e = auth_secret_new(secret, hash);
	if (e != BW_OK)
		return e;
	snprintf(token, 64, "bwk_%s", secret);
	crypto_wipe(secret, sizeof(secret));
	auth_secret_hash(token, hash);
	snprintf(prefix, sizeof(prefix), "%.12s", token);
	e = db_prepare(d,
		       "INSERT INTO api_tokens (user_id, name, token_hash, prefix, scopes, expires_at,"
		       " last_used_at, created_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, 0, ?, 0)",
		       &s);
	if (e == BW_OK && (e = db_bind_int(s, 1, user_id)) == BW_OK &&
	    (e = db_bind_text(s, 2, name)) == BW_OK && (e = db_bind_text(s, 3, hash)) == BW_OK &&
	    (e = db_bind_text(s, 4, prefix)) == BW_OK && (e = db_bind_text(s, 5, scopes_json)) == BW_OK &&
	    (e = db_bind_int(s, 6, expires_at)) == BW_OK && (e = db_bind_int(s, 7, auth_now())) == BW_OK)
		e = db_step(s, &row);
	*id = e == BW_OK ? db_last_id(s) : 0;
	db_finalize(s);
	if (e != BW_OK)
		crypto_wipe(token, 64);
	return e;
}

bw_err
token_revoke_user(db *d, int64_t user_id, int64_t keep, int64_t *n)
{
	db_stmt *s;
	int row;
	*n = 0;
	bw_err e = db_prepare(d,
			      "UPDATE api_tokens SET revoked_at = ? WHERE user_id = ? AND id <> ? AND"
			      " revoked_at = 0",
			      &s);
	if (e == BW_OK && (e = db_bind_int(s, 1, auth_now())) == BW_OK &&
	    (e = db_bind_int(s, 2, user_id)) == BW_OK && (e = db_bind_int(s, 3, keep)) == BW_OK &&
	    (e = db_step(s, &row)) == BW_OK)
		*n = db_changes(s);
	db_finalize(s);
	return e;
}

bw_err
token_check(db *d, const char *token, const char *perm, struct actor *ctx)
{
	char hash[65];
	db_stmt *s = NULL;
	int row = 0;
	int64_t now = auth_now(), tid = 0, expires = 0, last = 0;
	memset(ctx, 0, sizeof(*ctx));
	/* What perm_custom will answer: may() asks the database for any other. */
	snprintf(ctx->perm_asked, sizeof(ctx->perm_asked), "%s", perm ? perm : "");
	if (strncmp(token, "bwk_", 4) != 0 || strlen(token) > 60)
		return BW_ERR_UNAUTHORIZED;
	auth_secret_hash(token, hash);
	static const char sql[] =
	    "SELECT t.id, t.expires_at, t.last_used_at, t.scopes," AUTH_USER_COLS
	    " FROM api_tokens t JOIN users u ON u.id = t.user_id" AUTH_USER_JOINS
	    " WHERE t.token_hash = ? AND t.revoked_at = 0 AND u.disabled = 0";
	bw_err e = db_prepare_cached(d, sql, &s);
	if (e == BW_OK && (e = db_bind_text(s, 1, perm ? perm : "")) == BW_OK &&
	    (e = db_bind_text(s, 2, hash)) == BW_OK && (e = db_step(s, &row)) == BW_OK && row) {
		tid = db_col_int(s, 0);
		expires = db_col_int(s, 1);
		last = db_col_int(s, 2);
		if (token_scopes_parse(db_col_text(s, 3), ctx) != BW_OK)
			row = 0; /* scopes this server did not write: the token is not honoured */
		else
			e = auth_ctx_from(s, 4, ctx);
	}
	db_done(s);
	if (e != BW_OK)
		return e;
	if (!row || (expires != 0 && now >= expires))
		return BW_ERR_UNAUTHORIZED;
	if (now - last >= SESSION_TOUCH_SECONDS &&
	    (e = auth_touch(d, "UPDATE api_tokens SET last_used_at = ? WHERE id = ?", now, tid)) != BW_OK)
		return e;
	ctx->kind = ACTOR_TOKEN;
	ctx->token_id = tid;
	ctx->mfa_verified = 1;
	return BW_OK;
}

bw_err
token_scopes_parse(const char *scopes_json, struct actor *a)
{
	json_error_t je;
	json_t *arr = scopes_json ? json_loads(scopes_json, 0, &je) : NULL, *v;
	size_t i, off = 0;
	bw_err e = json_is_array(arr) && json_array_size(arr) <= ACTOR_SCOPES_MAX ? BW_OK
										   : BW_ERR_INVALID;
	a->scope_all = 0;
	a->nscopes = 0;
	json_array_foreach(arr, i, v)
	{
		const char *sc = json_string_value(v);
		size_t n = sc ? strlen(sc) : 0;
		if (e != BW_OK || sc == NULL || n == 0 || n >= sizeof(a->perm_asked) ||
		    n + 1 > sizeof(a->scope_text) - off) {
			e = BW_ERR_INVALID;
			break;
		}
		if (strcmp(sc, "*") == 0)
			a->scope_all = 1;
		memcpy(a->scope_text + off, sc, n + 1);
		a->scope_off[a->nscopes++] = (uint16_t)off;
		off += n + 1;
	}
	json_decref(arr);
	if (e != BW_OK) {
		a->scope_all = 0;
		a->nscopes = 0;
	}
	return e;
}

int
token_scope_allows(const struct actor *a, const char *perm)
{
	if (a->kind != ACTOR_TOKEN || a->scope_all)
		return 1;
	for (size_t i = 0; i < a->nscopes; i++)
		if (strcmp(a->scope_text + a->scope_off[i], perm) == 0)
			return 1;
	return 0;
}
