/*
 * auth: staff identity inside each tenant database: passwords (argon2id),
 * lockout, sessions, API tokens, and the authentication stage of the
 * request pipeline.
 */
#ifndef BW_AUTH_H
#define BW_AUTH_H

#include <stdint.h>

#include "../config/config.h"
#include "../core/core.h"
#include "../db/db.h"

#define AUTH_TOKEN_BYTES 32
/* A session secret: AUTH_TOKEN_BYTES as unpadded base64url. */
#define AUTH_SECRET_CHARS 43
#define AUTH_SESSION_COOKIE "__Host-bulwark_session"
#define AUTH_PASSWORD_MIN 12
#define AUTH_PASSWORD_MAX 1024
#define AUTH_SCOPES_MAX 4608 /* bytes of a token's scopes as JSON: 64 of 64 bytes, quoted */

/* --- password.c ----------------------------------------------------------- */
struct auth_hasher;
/*
 * The argon2id hasher, with at most max_concurrent computations at once
 * (0: two per CPU); waiters give up after wait_ms with BW_ERR_UNAVAILABLE.
 */
bw_err password_hasher_new(long max_concurrent, long wait_ms, struct auth_hasher **out) BW_MUST_USE;
void password_hasher_free(struct auth_hasher *h);
/* PHC string of password into out (crypto_pwhash_STRBYTES). */
bw_err password_hash(struct auth_hasher *h, const char *password, char *out, size_t outlen) BW_MUST_USE;
/*
 * BW_OK if password matches phc, BW_ERR_UNAUTHORIZED if not. *rehash is set
 * when phc was made with other parameters than today's.
 */
bw_err password_verify(struct auth_hasher *h, const char *phc, const char *password,
		       int *rehash) BW_MUST_USE;
/*
 * Spend the time of a verification against nothing (unknown users):
 * BW_ERR_UNAUTHORIZED, or BW_ERR_UNAVAILABLE when no hash slot was free
 * (as password_verify would say for a real user).
 */
bw_err password_verify_dummy(struct auth_hasher *h, const char *password) BW_MUST_USE;
/* BW_OK if the password is acceptable, else BW_ERR_INVALID and *why. */
bw_err password_policy(const char *password, const char *email, const char **why) BW_MUST_USE;

/* --- session.c / token.c ------------------------------------------------- */

/* Who a request is, once authenticated. */
struct auth_user {
	int64_t id;
	char email[255];
	int is_admin;
	int mfa_enabled;
	int must_change_password;
};

enum auth_kind { AUTH_NONE, AUTH_SESSION, AUTH_TOKEN };

struct auth_ctx {
	enum auth_kind kind;
	struct auth_user user;
	int64_t session_id; /* AUTH_SESSION */
	int mfa_verified;   /* AUTH_SESSION: 0 while MFA is still to be entered */
	int64_t token_id;   /* AUTH_TOKEN */
	char scopes[AUTH_SCOPES_MAX]; /* AUTH_TOKEN: JSON array of permissions */
	/* Read with the session or token, for the permission stage: */
	char builtin_roles[256]; /* the built-in roles held, comma-separated ("admin,staff") */
	int perm_custom;         /* a custom role held grants the permission asked about */
	int mfa_required;        /* the tenant requires MFA of every staff user */
};

/* Whether a comma-separated list holds item exactly. */
int auth_list_has(const char *list, const char *item);

/* A new random secret (base64url, 43 chars) and its SHA-256 hex (64). */
bw_err auth_secret_new(char secret[48], char hash[65]) BW_MUST_USE;
/* SHA-256 hex of a presented secret. */
void auth_secret_hash(const char *secret, char hash[65]);

/*
 * Create a session for user_id; the cookie value (the secret) into secret.
 * mfa_verified says whether MFA is done (or not needed).
 */
bw_err session_create(db *d, const struct config *cfg, int64_t user_id, int mfa_verified,
		      const char *client_ip, char secret[48]) BW_MUST_USE;
/*
 * Look up the session a cookie value names; BW_ERR_UNAUTHORIZED if none,
 * expired (idle or absolute: then it is deleted) or its user disabled.
 * With the user come the built-in roles held, whether a custom role grants
 * perm (NULL: none asked) and the tenant's MFA requirement, in ctx.
 */
bw_err session_check(db *d, const struct config *cfg, const char *secret, const char *perm,
		     struct auth_ctx *ctx) BW_MUST_USE;
/* Replace session id by a new one (new secret), keeping its user; MFA done. */
bw_err session_rotate(db *d, const struct config *cfg, int64_t session_id, int mfa_verified,
		      const char *client_ip, char secret[48]) BW_MUST_USE;
bw_err session_delete(db *d, int64_t session_id) BW_MUST_USE;
/* End every session of user_id except keep (0: all). */
bw_err session_end_user(db *d, int64_t user_id, int64_t keep) BW_MUST_USE;

/* An API token: "bwk_" + secret; returns the id. */
bw_err token_create(db *d, int64_t user_id, const char *name, const char *scopes_json,
		    int64_t expires_at, char token[64], int64_t *id) BW_MUST_USE;
/*
 * Revoke every live API token of user_id except keep (0: all); how many in
 * *n. BW_OK or the database's error.
 */
bw_err token_revoke_user(db *d, int64_t user_id, int64_t keep, int64_t *n) BW_MUST_USE;
/* The same for an API token ("bwk_..."); scopes into ctx->scopes. */
bw_err token_check(db *d, const char *token, const char *perm, struct auth_ctx *ctx) BW_MUST_USE;

/*
 * Lock user_id's row for the rest of the transaction begun on d (MariaDB:
 * InnoDB's row lock, held to commit; SQLite: BEGIN IMMEDIATE already holds
 * the write lock). Every change to a user's password, MFA state or
 * disabled flag, and every bulk end of their sessions or tokens, takes it
 * first, and so does every re-authenticated write before it re-reads that
 * state: the two take turns. BW_OK; BW_ERR_NOTFOUND when there is no such
 * user; BW_ERR_INTERNAL outside a transaction; or the database's error.
 */
bw_err auth_user_lock(db *d, int64_t user_id) BW_MUST_USE;
/*
 * Lock the row of the session or token the request came with, and so make
 * sure it is still there (a token: and not revoked) until commit: a
 * logout, an end of sessions or a revocation either came first (then
 * BW_ERR_UNAUTHORIZED) or waits for this transaction. BW_OK, or
 * BW_ERR_UNAUTHORIZED, BW_ERR_INTERNAL outside a transaction, or the
 * database's error.
 */
bw_err auth_caller_lock(db *d, const struct auth_ctx *ctx) BW_MUST_USE;

/* Record a security event for the audit log (issue 7). */
void auth_event(db *d, int64_t user_id, const char *kind, const char *client_ip,
		const char *detail);

/* The tenant requires MFA of every staff user (settings: mfa_required = 1). */
int auth_mfa_required(db *d);
/* Whether a token's scopes (JSON array of permissions, "*" for all) allow perm. */
int auth_scope_allows(const char *scopes_json, const char *perm);

/* --- cookie.c (untrusted input: tests/fuzz/fuzz_cookie.c) ---------------- */
/* Set-Cookie value for a session secret (or an expired one when NULL). */
void auth_cookie(const struct config *cfg, const char *secret, char *out, size_t outlen);
/*
 * 1 and the session secret (AUTH_SECRET_CHARS base64url characters, NUL-
 * ended) from a Cookie header; 0 when it has no such cookie, or when the
 * first cookie of that name holds anything else.
 */
int auth_cookie_find(const char *cookie_header, char secret[48]);

#endif
