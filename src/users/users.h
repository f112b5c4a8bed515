/*
 * users: operations on a tenant's staff users that the API and the CLI
 * share (one unlock, one audit path). Each takes the operation context and
 * runs in its own transaction with its audit row and security event.
 */
#ifndef BW_USERS_H
#define BW_USERS_H

#include <jansson.h>
#include <stdint.h>

#include "../core/core.h"
#include "../op/op.h"

struct auth_hasher;

/* Bytes of a one-time password made for a new user, NUL included. */
#define USER_OTP_SIZE 32

/*
 * The user whose address is email, normalised as sign-in normalises it
 * (ADR 0012), into *id. BW_ERR_INVALID (recorded, with why) for an address
 * that cannot be an identity, BW_ERR_NOTFOUND (recorded) for no such user.
 */
bw_err user_find_email(struct op *op, const char *email, int64_t *id) BW_MUST_USE;
/*
 * Lift user id's lockout (failed sign-ins back to zero). Refused with
 * BW_ERR_DENIED to users unlocking themselves (whoever guesses at an
 * account must not reset its count from inside it: another admin, or the
 * operator, does it) and to anyone who does not hold everything id holds;
 * BW_ERR_NOTFOUND for no such user. Unlocking an account that is not
 * locked succeeds and is recorded all the same.
 */
bw_err user_unlock(struct op *op, int64_t id) BW_MUST_USE;

/*
 * Two rules hold for every change below: nobody grants what they do not
 * hold themselves, and the last active admin cannot be demoted, disabled
 * or deleted, so a tenant never locks itself out. Each runs in op_tx with
 * its audit row; a refusal is returned with its message recorded in op.
 */

/*
 * Make a staff user from in: {"email", "password"?, "roles"?} and nothing
 * else. The address is normalised (ADR 0012; internationalised domains
 * only where the tenant's setting email_idn allows them) and must be
 * unique by key and by skeleton; a password given must pass the policy,
 * else one is made, copied to otp and must be changed at first sign-in
 * (otp is "" when a password was given; wipe it once shown). Every role
 * must be one the actor could grant. The password is hashed with h. The
 * new user's id into *id. BW_ERR_INVALID for the input, BW_ERR_DENIED
 * for a role, BW_ERR_CONFLICT for an address taken, BW_ERR_UNAVAILABLE
 * when the hasher is busy (each recorded), or the database's error.
 */
bw_err user_create(struct op *op, struct auth_hasher *h, json_t *in, int64_t *id,
		   char otp[USER_OTP_SIZE]) BW_MUST_USE;
/*
 * Versions: a user is at version 1 when made and one more with every
 * change made here (update, unlock). if_version below is the caller's
 * precondition (If-Match): 0 for none, else the version the user must
 * still be at, checked inside the transaction once it holds the tenant's
 * lock; BW_ERR_PRECONDITION (recorded) with nothing changed otherwise
 * (a negative version is none a user is at). Sign-in bookkeeping (failed
 * attempts, lockouts), passwords and MFA are not changes of this kind.
 */

/*
 * Change user id from in: {"roles"?, "disabled"?, "sso_exempt"?}. Disabling signs the
 * user out everywhere and revokes their API tokens. Only someone who
 * holds everything id holds may (rbac_may_manage). BW_ERR_INVALID,
 * BW_ERR_NOTFOUND, BW_ERR_DENIED, BW_ERR_CONFLICT (the last active admin),
 * each recorded, or the database's error. Nothing changed is not audited.
 */
bw_err user_update(struct op *op, int64_t id, json_t *in, int64_t if_version) BW_MUST_USE;
/*
 * Delete user id with their roles, sessions, tokens and recovery codes.
 * Refused (recorded) to the user themselves and for the last active admin
 * (BW_ERR_CONFLICT), for a user records still refer to (BW_ERR_CONFLICT:
 * disable them instead), BW_ERR_NOTFOUND, BW_ERR_DENIED and
 * BW_ERR_PRECONDITION as user_update.
 */
bw_err user_delete(struct op *op, int64_t id, int64_t if_version) BW_MUST_USE;

#endif
