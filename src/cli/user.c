/*
 * bulwark user unlock SLUG EMAIL: lift a lockout from the host. The same
 * operation as POST /api/v1/users/:id/unlock (users.c), run by the
 * operator as the system actor.
 */
#include "cli.h"

#include <stdio.h>
#include <string.h>

#include "../users/users.h"

int
cli_user(int argc, char **argv)
{
	struct cli_opts o;
	struct cli_op c = {0};
	int64_t id;
	int rc = cli_parse(argc, argv, &o);
	if (rc != 0)
		return rc;
	if (o.nargs != 3 || strcmp(o.args[0], "unlock") != 0) {
		fprintf(stderr, "usage: bulwark user unlock SLUG EMAIL (see --help)\n");
		return 2;
	}
	rc = 1;
	if (cli_op_open(&o, o.args[1], "bulwark user unlock", &c) != 0)
		goto out;
	bw_err e = user_find_email(&c.op, o.args[2], &id);
	if (e == BW_ERR_NOTFOUND) {
		fprintf(stderr, "bulwark: no user %s in tenant %s\n", o.args[2], o.args[1]);
		goto out;
	}
	if (e != BW_OK || (e = user_unlock(&c.op, id)) != BW_OK) {
		cli_op_error(&c, e);
		goto out;
	}
	printf("%s in tenant %s unlocked\n", o.args[2], o.args[1]);
	rc = 0;
out:
	cli_op_close(&c);
	return rc;
}
