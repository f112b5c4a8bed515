/*
 * users: operations on a tenant's staff users that the API and the CLI
 * share (one unlock, one audit path). Each takes the operation context and
 * runs in its own transaction with its audit row and security event.
 */
#ifndef BW_USERS_H
#define BW_USERS_H

#include <stdint.h>

#include "../core/core.h"
#include "../op/op.h"

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

#endif
