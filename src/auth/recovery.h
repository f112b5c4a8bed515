/*
 * Account recovery (docs/auth.md "Recovery"): a password reset by e-mail
 * that never skips MFA, and an admin's (or the host's) reset of another
 * user's password or MFA. Operations on the operation context: the API,
 * `bulwark user reset-password|reset-mfa` and tests run the same code.
 */
#ifndef BW_AUTH_RECOVERY_H
#define BW_AUTH_RECOVERY_H

#include <stdint.h>

#include "../op/op.h"
#include "auth.h"

/* A reset token: 32 random bytes, base64url without padding. */
#define RECOVERY_TOKEN_CHARS 43
/* A one-time password an admin's reset makes (shown once; changed at the next sign-in). */
#define RECOVERY_OTP_SIZE 32

/*
 * Someone asks for a reset link for email. When it is the address of an
 * enabled user who may sign in with a password, a single-use token is
 * made (only its SHA-256 kept, bound to the user's password hash as it is,
 * every earlier unused one of that user dropped) and mailed as a link;
 * otherwise nothing is, and the reply is the same (BW_OK) whichever it
 * was. Counted per address and per client address ([recovery]
 * per_address_hour, per_client_hour): past either, BW_ERR_RATE
 * (recorded) with the seconds to wait in *retry_after. BW_ERR_INVALID for
 * text that is no e-mail address at all.
 */
bw_err recovery_request(struct op *op, const char *email, int64_t *retry_after) BW_MUST_USE;

/*
 * Set a new password with a reset token: only once, before it expires,
 * while the user's password is still the one it was made for, and for
 * an enabled user. The user's sessions and API tokens end, a lockout is
 * lifted, the user is mailed; the user then signs in (and meets TOTP when
 * MFA is on: a reset proves the mailbox, not the second factor).
 * BW_ERR_INVALID (recorded) for a password the policy refuses;
 * BW_ERR_DENIED (recorded, one message for every case) for a token that is
 * unknown, used, expired or no longer bound.
 */
bw_err recovery_confirm(struct op *op, struct auth_hasher *h, const char *token,
			const char *password) BW_MUST_USE;

/*
 * What the API re-checked of the admin (their password hash and MFA
 * state), compared again under their row lock in the write's transaction;
 * NULL for the host's operator (a system actor).
 */
struct recovery_reauth {
	const char *phc;
	int mfa_enabled;
};

/*
 * An admin's (or the host's) reset of user uid's password: a one-time
 * password into otp, to be changed at the next sign-in; the user's
 * sessions and API tokens end, pending reset links die, a lockout is
 * lifted; audited and mailed to the user. Only for a user the actor may
 * manage (who holds nothing the actor does not): BW_ERR_DENIED otherwise;
 * BW_ERR_NOTFOUND; BW_ERR_CONFLICT when the actor's own password or MFA
 * changed since ra was checked.
 */
bw_err recovery_reset_password(struct op *op, struct auth_hasher *h, int64_t uid,
			       const struct recovery_reauth *ra,
			       char otp[RECOVERY_OTP_SIZE]) BW_MUST_USE;

/*
 * The same for MFA: the user's TOTP secret and recovery codes go (they
 * enrol again, at once when the tenant requires MFA), their sessions end;
 * audited and mailed. BW_ERR_CONFLICT (recorded) when MFA is off already.
 */
bw_err recovery_reset_mfa(struct op *op, int64_t uid, const struct recovery_reauth *ra) BW_MUST_USE;

#endif
