/*
 * Shared between the identity route files (auth_api.c, mfa_api.c) only.
 */
#ifndef BW_AUTH_API_H
#define BW_AUTH_API_H

#include <jansson.h>

#include "../http/http.h"
#include "auth.h"

int64_t api_now(void);
/* A string member of at most max bytes, or NULL. */
const char *api_str(json_t *o, const char *key, size_t max);
/* Set (or, with NULL, expire) the session cookie on the reply. */
bw_err api_set_session(struct http_req *req, const char *secret) BW_MUST_USE;
/*
 * Reserve one credential attempt before checking it (1; *locks if it hit
 * the threshold), or refuse it because the account is locked (0; *until),
 * -1 on a database error. Then report the outcome with one of the two below.
 */
int api_attempt(struct http_req *req, db *d, int64_t id, int *locks, int64_t *until);
/* Records the failure (and a lockout) in auth_events and the audit log; BW_OK or the write's error. */
bw_err api_attempt_failed(struct http_req *req, db *d, int64_t id, const char *email, int locks,
			  const char *what) BW_MUST_USE;
void api_attempt_ok(db *d, int64_t id);
void api_attempt_undo(db *d, int64_t id, int locks);

/* throttle.c: the same count for an address that matches no active user. */
struct throttle {
	char mac[65]; /* HMAC-SHA256 of the address under the tenant's key, hex */
};
/*
 * Reserve one attempt for addr (its normalised form, or what was typed if
 * it has none), as api_attempt does for a user: 1 when reserved (*locks:
 * this attempt reached the threshold), 0 when locked (*until), -1 on error.
 */
int throttle_attempt(struct http_req *req, db *d, const char *addr, struct throttle *th,
		     int *locks, int64_t *until);
/* The reserved attempt was never checked (server busy): give it back. */
void throttle_undo(db *d, const struct throttle *th, int locks);
/*
 * 1 while the unknown-address table is full of running lockouts (then every
 * failed sign-in answers 423 with *until, known address or not), 0 when
 * not, -1 on a database error.
 */
int throttle_flooded(db *d, int64_t now, int64_t *until);
/*
 * The audit row of the request's change, in the transaction the caller has
 * begun; before and after (objects or NULL) are stolen.
 */
bw_err api_audit(struct http_req *req, const char *entity, int64_t id, const char *action,
		 json_t *before, json_t *after) BW_MUST_USE;
/*
 * A sign-in event (entity "auth", the user's id): the actor is the user
 * signing in (user_id 0 when the address matches no one) or, on an
 * authenticated route, whoever the request is. after is stolen.
 */
bw_err api_audit_signin(struct http_req *req, db *d, int64_t user_id, const char *email,
			const char *action, json_t *after) BW_MUST_USE;
/* Commit when e is BW_OK, else roll back; the outcome. */
bw_err api_tx_end(db *d, bw_err e) BW_MUST_USE;

/* The 423 error with the unlock time; always returns BW_ERR_LOCKED. */
bw_err api_locked(struct http_req *req, int64_t until) BW_MUST_USE;
/*
 * What a password re-check verified, for the write that follows it. The
 * check is slow (argon2id) and runs outside any transaction, so the write
 * looks again, under the user's row lock, with api_reauth_begin().
 */
struct api_reauth {
	char phc[256];   /* users.password_hash the password was checked against */
	int mfa_enabled; /* users.mfa_enabled then */
};
/*
 * Check the signed-in user's password again, counted like a login: BW_OK
 * only when it is right and the account is not locked, with what was
 * verified in *ra; otherwise the error, with its reply set (BW_ERR_LOCKED
 * for a locked account, without checking the password; BW_ERR_DENIED for
 * a wrong one) and *ra wiped.
 */
bw_err api_recheck_password(struct http_req *req, db *d, const char *password,
			    struct api_reauth *ra) BW_MUST_USE;
/*
 * The "password" member of body, re-checked with api_recheck_password():
 * BW_OK, or the error (reply set: 400 when missing, 403, 423, 503).
 */
bw_err api_body_password(struct http_req *req, db *d, json_t *body,
			 struct api_reauth *ra) BW_MUST_USE;
/*
 * Begin the transaction of a re-authenticated write (ra: what the re-check
 * verified; NULL for a write that checked no password but acts on the
 * caller's own credentials) and hold what it depends on until it ends:
 * the user's row is locked (auth_user_lock), the caller's session or token
 * is locked and must still be there, the user must not be disabled, and
 * the password hash and MFA state must be those the re-check saw. Wipes
 * *ra. BW_OK inside the transaction; otherwise no transaction is left
 * open and the error is returned with its reply set: BW_ERR_UNAUTHORIZED
 * (401) when the session or token was ended or the user disabled
 * meanwhile, BW_ERR_CONFLICT (409) when the password or MFA state
 * changed meanwhile, BW_ERR_UNAVAILABLE (503) on a database error.
 */
bw_err api_reauth_begin(struct http_req *req, db *d, struct api_reauth *ra) BW_MUST_USE;

extern const struct route auth_routes[];
extern const size_t auth_routes_count;
/* recovery_api.c: reset links and admins' resets. */
extern const struct route recovery_routes[];
extern const size_t recovery_routes_count;
extern const struct route mfa_routes[];
extern const size_t mfa_routes_count;
extern const struct route allowlist_routes[];
extern const size_t allowlist_routes_count;

#endif
