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
#include "../op/op.h"

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
 * A session single sign-on made (src/saml): marked SSO, and MFA done, for
 * the IdP was the second factor. In the caller's transaction.
 */
bw_err session_create_sso(db *d, const struct config *cfg, int64_t user_id,
			  const char *client_ip, char secret[48]) BW_MUST_USE;
/*
 * Look up the session a cookie value names; BW_ERR_UNAUTHORIZED if none,
 * expired (idle or absolute: then it is deleted) or its user disabled.
 * With the user come the built-in roles held, whether a custom role grants
 * perm (NULL: none asked) and the tenant's MFA requirement, in ctx.
 */
bw_err session_check(db *d, const struct config *cfg, const char *secret, const char *perm,
		     struct actor *ctx) BW_MUST_USE;
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
bw_err token_check(db *d, const char *token, const char *perm, struct actor *ctx) BW_MUST_USE;

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
bw_err auth_caller_lock(db *d, const struct actor *ctx) BW_MUST_USE;

/* Record a security event for the audit log (issue 7). */
void auth_event(db *d, int64_t user_id, const char *kind, const char *client_ip,
		const char *detail);

/* The tenant requires MFA of every staff user (settings: mfa_required = 1). */
int auth_mfa_required(db *d);
/*
 * A token's scopes (a JSON array of permissions, "*" for all) into a's
 * parsed list: BW_OK, or BW_ERR_INVALID for text that is not such an array
 * or holds more than ACTOR_SCOPES_MAX (the token is then refused).
 */
bw_err token_scopes_parse(const char *scopes_json, struct actor *a) BW_MUST_USE;
/* Whether actor a's token scopes allow perm (1; always 1 when a is no token). */
int token_scope_allows(const struct actor *a, const char *perm);

/* --- cookie.c (untrusted input: tests/fuzz/fuzz_cookie.c) ---------------- */
/* Set-Cookie value for a session secret (or an expired one when NULL). */
void auth_cookie(const struct config *cfg, const char *secret, char *out, size_t outlen);
/*
 * 1 and the session secret (AUTH_SECRET_CHARS base64url characters, NUL-
 * ended) from a Cookie header; 0 when it has no such cookie, or when the
 * first cookie of that name holds anything else.
 */
int auth_cookie_find(const char *cookie_header, char secret[48]);

/* --- allowlist.c: the admin IP allowlist ----------------------------------- */
/*
 * Whether addr may make a guarded request: BW_OK when the list is empty or
 * addr is on it, or when change_only (a change not guarded by itself) and
 * the tenant does not guard every change; BW_ERR_DENIED when not;
 * BW_ERR_DB when the list cannot be read. One statement, cached.
 */
bw_err allowlist_permits(db *d, const char *addr, int change_only) BW_MUST_USE;
/* The allowlist as [{cidr, label}] (for the audit log); caller owns *out. */
bw_err allowlist_entries(db *d, json_t **out) BW_MUST_USE;
/* The guard-every-change setting: 1 on, 0 off, -1 on a database error. */
int allowlist_guard_all(db *d);
/*
 * Replace op's tenant's allowlist with entries (an array of {cidr, label}
 * the caller has validated) and, when guard is 0 or 1, whether every
 * change is held to it (-1: as it is). In its own transaction with its
 * security event and audit row (API and CLI alike). BW_OK; BW_ERR_INVALID
 * (recorded) when an entry appears twice; or the database's error.
 */
bw_err allowlist_replace(struct op *op, json_t *entries, int guard) BW_MUST_USE;

#endif
