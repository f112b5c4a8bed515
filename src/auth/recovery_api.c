/*
 * The routes of account recovery (docs/auth.md "Recovery"): asking for and
 * using a reset link (public), and an admin's reset of another user's
 * password or MFA (the admin's own password re-checked, the IP allowlist
 * applying). The work is recovery.c's.
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "../crypto/crypto.h"
#include "auth_api.h"
#include "recovery.h"

#define RECOVERY_BODY 4096

/* POST /api/v1/auth/password-reset {"email"}: 202 whether or not the address is anyone's. */
static bw_err
recovery_ask(struct http_req *req)
{
	json_t *in;
	int64_t wait = 0;
	if (!http_req_login_allowed(req)) /* the sign-in rate per client too; it sets Retry-After */
		return response_error(req, BW_ERR_RATE, "too many requests from this address");
	bw_err e = http_req_json(req, &in);
	if (e != BW_OK)
		return e;
	static const char *const known[] = {"email", NULL};
	if ((e = op_known_fields(&req->op, in, known)) == BW_OK)
		e = recovery_request(&req->op, api_str(in, "email", 320), &wait);
	json_decref(in);
	if (e == BW_ERR_RATE) {
		req->retry_after = pool_printf(req->op.pool, "%lld", (long long)wait);
		return e;
	}
	if (e != BW_OK)
		return e;
	return response_json(req, 202,
			     json_pack("{s:s}", "status",
				       "if the address is a user's, a reset link is on its way"));
}

/* POST /api/v1/auth/password-reset/confirm {"token", "password"}. */
static bw_err
recovery_use(struct http_req *req)
{
	json_t *in;
	if (!http_req_login_allowed(req)) /* guessing tokens costs what guessing passwords does */
		return response_error(req, BW_ERR_RATE, "too many requests from this address");
	bw_err e = http_req_json(req, &in);
	if (e != BW_OK)
		return e;
	static const char *const known[] = {"token", "password", NULL};
	if ((e = op_known_fields(&req->op, in, known)) == BW_OK)
		e = recovery_confirm(&req->op, http_req_hasher(req),
				     api_str(in, "token", RECOVERY_TOKEN_CHARS + 1),
				     api_str(in, "password", AUTH_PASSWORD_MAX));
	json_decref(in);
	if (e != BW_OK)
		return e;
	return response_json(req, 200,
			     json_pack("{s:b, s:s}", "password_changed", 1, "sign_in",
				       "/api/v1/auth/login"));
}

/*
 * The admin's password from the body, re-checked like a sign-in (counted,
 * refused while locked), and the target's id from the path.
 */
static bw_err
recovery_admin_prelude(struct http_req *req, int64_t *uid, struct api_reauth *ra)
{
	json_t *in;
	db *d;
	int64_t found = 0;
	memset(ra, 0, sizeof(*ra));
	if (http_req_id(req, "id", uid) != BW_OK)
		return response_error(req, BW_ERR_NOTFOUND, "no such user");
	/* Another tenant's id (or none) is 404 before anything else is read. */
	bw_err e = http_req_db(req, &d);
	if (e == BW_OK)
		e = DB_QUERY_INT(d, &found, "SELECT COUNT(*) FROM users WHERE id = ?", DB_INT(*uid));
	if (e != BW_OK)
		return response_error(req, BW_ERR_UNAVAILABLE, NULL);
	if (found == 0)
		return response_error(req, BW_ERR_NOTFOUND, "no such user");
	if ((e = http_req_json(req, &in)) != BW_OK)
		return e;
	static const char *const known[] = {"password", NULL};
	if ((e = op_known_fields(&req->op, in, known)) == BW_OK)
		e = api_body_password(req, d, in, ra);
	json_decref(in);
	return e;
}

/* POST /api/v1/users/:id/password/reset {"password"}: a one-time password, shown once. */
static bw_err
recovery_admin_password(struct http_req *req)
{
	int64_t uid;
	struct api_reauth ra;
	char otp[RECOVERY_OTP_SIZE];
	bw_err e = recovery_admin_prelude(req, &uid, &ra);
	if (e != BW_OK)
		return e;
	struct recovery_reauth rr = {ra.phc, ra.mfa_enabled};
	e = recovery_reset_password(&req->op, http_req_hasher(req), uid, &rr, otp);
	crypto_wipe(&ra, sizeof(ra));
	if (e != BW_OK)
		return e;
	e = response_json(req, 200,
			  json_pack("{s:s, s:b}", "one_time_password", otp, "must_change_password", 1));
	crypto_wipe(otp, sizeof(otp));
	return e;
}

/* POST /api/v1/users/:id/mfa/reset {"password"}. */
static bw_err
recovery_admin_mfa(struct http_req *req)
{
	int64_t uid;
	struct api_reauth ra;
	bw_err e = recovery_admin_prelude(req, &uid, &ra);
	if (e != BW_OK)
		return e;
	struct recovery_reauth rr = {ra.phc, ra.mfa_enabled};
	e = recovery_reset_mfa(&req->op, uid, &rr);
	crypto_wipe(&ra, sizeof(ra));
	if (e != BW_OK)
		return e;
	return response_json(req, 200, json_pack("{s:b}", "mfa_enabled", 0));
}

const struct route recovery_routes[] = {
	{HTTP_POST, "/api/v1/auth/password-reset", recovery_ask, ROUTE_PUBLIC, NULL, RECOVERY_BODY},
	{HTTP_POST, "/api/v1/auth/password-reset/confirm", recovery_use, ROUTE_PUBLIC, NULL,
	 RECOVERY_BODY},
	{HTTP_POST, "/api/v1/users/:id/password/reset", recovery_admin_password,
	 ROUTE_ADMIN | ROUTE_DESTRUCTIVE, "users.reset", RECOVERY_BODY},
	{HTTP_POST, "/api/v1/users/:id/mfa/reset", recovery_admin_mfa, ROUTE_ADMIN | ROUTE_DESTRUCTIVE,
	 "users.reset", RECOVERY_BODY},
};
const size_t recovery_routes_count = BW_ARRAY_LEN(recovery_routes);
