/*
 * bulwark user: what an operator does to one user from the host, as the
 * system actor, through the same operations as the API (users.c):
 *
 *   bulwark user unlock SLUG EMAIL              POST /api/v1/users/:id/unlock
 *   bulwark user sso-exempt SLUG EMAIL on|off   PATCH /api/v1/users/:id {"sso_exempt"}
 *   bulwark user reset-password SLUG EMAIL     POST /api/v1/users/:id/password/reset
 *   bulwark user reset-mfa SLUG EMAIL          POST /api/v1/users/:id/mfa/reset
 *
 * sso-exempt is the break-glass of "SSO required" (docs/saml.md): an exempt
 * user may still sign in with a password when the IdP is down. The resets
 * are the way back in for the last admin who lost both password and phone
 * (docs/auth.md "Recovery").
 */
#include "cli.h"

#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "../auth/recovery.h"
#include "../crypto/crypto.h"
#include "../users/users.h"

#define CLI_USER_USAGE                                                                             \
	"usage: bulwark user unlock SLUG EMAIL\n"                                                  \
	"       bulwark user sso-exempt SLUG EMAIL on|off   (see --help)\n"                      \
	"       bulwark user reset-password SLUG EMAIL\n"                                         \
	"       bulwark user reset-mfa SLUG EMAIL\n"

/* Apply the command to the user found; BW_OK or the operation's error. */
static bw_err
cli_user_apply(struct cli_op *c, const char *cmd, int64_t id, int on, char otp[RECOVERY_OTP_SIZE])
{
	if (strcmp(cmd, "unlock") == 0)
		return user_unlock(&c->op, id);
	if (strcmp(cmd, "reset-mfa") == 0)
		return recovery_reset_mfa(&c->op, id, NULL);
	if (strcmp(cmd, "reset-password") == 0) {
		struct auth_hasher *h;
		bw_err e = password_hasher_new(1, 60000, &h);
		if (e != BW_OK)
			return e;
		e = recovery_reset_password(&c->op, h, id, NULL, otp);
		password_hasher_free(h);
		return e;
	}
	json_t *in = json_pack("{s:b}", "sso_exempt", on);
	if (in == NULL)
		return BW_ERR_NOMEM;
	bw_err e = user_update(&c->op, id, in, 0);
	json_decref(in);
	return e;
}

int
cli_user(int argc, char **argv)
{
	struct cli_opts o;
	struct cli_op c = {0};
	int64_t id;
	int rc = cli_parse(argc, argv, &o), on = 0;
	if (rc != 0)
		return rc;
	const char *cmd = o.nargs > 0 ? o.args[0] : "";
	int ok = ((strcmp(cmd, "unlock") == 0 || strcmp(cmd, "reset-password") == 0 ||
		   strcmp(cmd, "reset-mfa") == 0) &&
		  o.nargs == 3) ||
		 (strcmp(cmd, "sso-exempt") == 0 && o.nargs == 4 &&
		  ((on = strcmp(o.args[3], "on") == 0) || strcmp(o.args[3], "off") == 0));
	if (!ok) {
		fputs(CLI_USER_USAGE, stderr);
		return 2;
	}
	rc = 1;
	char what[64], otp[RECOVERY_OTP_SIZE] = "";
	snprintf(what, sizeof(what), "bulwark user %s", cmd);
	if (cli_op_open(&o, o.args[1], what, &c) != 0)
		goto out;
	bw_err e = user_find_email(&c.op, o.args[2], &id);
	if (e == BW_ERR_NOTFOUND) {
		fprintf(stderr, "bulwark: no user %s in tenant %s\n", o.args[2], o.args[1]);
		goto out;
	}
	if (e != BW_OK || (e = cli_user_apply(&c, cmd, id, on, otp)) != BW_OK) {
		cli_op_error(&c, e);
		goto out;
	}
	if (strcmp(cmd, "unlock") == 0)
		printf("%s in tenant %s unlocked\n", o.args[2], o.args[1]);
	else if (strcmp(cmd, "reset-password") == 0)
		printf("%s in tenant %s: one-time password %s\n"
		       "(shown once; it must be changed at the next sign-in. Every session and API\n"
		       "token of the user ended; the user was mailed.)\n",
		       o.args[2], o.args[1], otp);
	else if (strcmp(cmd, "reset-mfa") == 0)
		printf("%s in tenant %s: MFA turned off, every session ended; the user enrols again\n"
		       "(at the next sign-in when the tenant requires MFA) and was mailed\n",
		       o.args[2], o.args[1]);
	else
		printf("%s in tenant %s: password sign-in %s when SSO is required\n", o.args[2],
		       o.args[1], on ? "allowed" : "refused");
	rc = 0;
out:
	crypto_wipe(otp, sizeof(otp));
	cli_op_close(&c);
	return rc;
}
