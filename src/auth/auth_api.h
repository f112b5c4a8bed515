/*
 * Shared between the identity route files (auth_api.c, mfa_api.c) only.
 */
#ifndef BW_AUTH_API_H
#define BW_AUTH_API_H

#include <jansson.h>

#include "../http/http.h"

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
 * The audit row of the request's change, in the transaction the caller has
 * begun; before and after (objects or NULL) are stolen.
 */
bw_err api_audit(struct http_req *req, db *d, const char *entity, int64_t id, const char *action,
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
 * Check the signed-in user's password again, counted like a login: BW_OK
 * only when it is right and the account is not locked; otherwise the
 * error, with its reply set (BW_ERR_LOCKED for a locked account, without
 * checking the password; BW_ERR_DENIED for a wrong one).
 */
bw_err api_recheck_password(struct http_req *req, db *d, const char *password) BW_MUST_USE;
/*
 * The "password" member of body, re-checked with api_recheck_password():
 * BW_OK, or the error (reply set: 400 when missing, 403, 423, 503).
 */
bw_err api_body_password(struct http_req *req, db *d, json_t *body) BW_MUST_USE;

extern const struct route mfa_routes[];
extern const size_t mfa_routes_count;
extern const struct route allowlist_routes[];
extern const size_t allowlist_routes_count;

/* The allowlist as [{cidr, label}] (for the audit log); caller owns *out. */
bw_err allowlist_entries(db *d, json_t **out) BW_MUST_USE;
/*
 * Whether addr may make a guarded request: BW_OK when the list is empty or
 * addr is on it, or when change_only (a change not guarded by itself) and
 * the tenant does not guard every change; BW_ERR_DENIED when not;
 * BW_ERR_DB when the list cannot be read. One statement, cached.
 */
bw_err allowlist_permits(db *d, const char *addr, int change_only) BW_MUST_USE;

#endif
