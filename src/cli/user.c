/*
 * bulwark user unlock SLUG EMAIL: lift a lockout from the host.
 */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../auth/auth.h"
#include "../tenancy/tenancy.h"

int
cli_user(int argc, char **argv)
{
	struct cli_opts o;
	struct config cfg;
	struct tenancy *t = NULL;
	struct tenant *v = NULL, *tn = NULL;
	size_t n = 0;
	db *d = NULL;
	db_stmt *s = NULL;
	char err[1024];
	int row, rc = cli_parse(argc, argv, &o);
	if (rc != 0)
		return rc;
	if (o.nargs != 3 || strcmp(o.args[0], "unlock") != 0) {
		fprintf(stderr, "usage: bulwark user unlock SLUG EMAIL (see --help)\n");
		return 2;
	}
	if (cli_load_config(&o, &cfg) != 0)
		return 1;
	rc = 1;
	if (tenancy_open(&cfg, 0, &t, err, sizeof(err)) != BW_OK ||
	    tenant_list(t, &v, &n, err, sizeof(err)) != BW_OK) {
		fprintf(stderr, "bulwark: %s\n", err);
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i].slug, o.args[1]) == 0)
			tn = &v[i];
	if (tn == NULL) {
		fprintf(stderr, "bulwark: no tenant '%s'\n", o.args[1]);
		goto out;
	}
	if (tenancy_connect_tenant(t, tn, 0, &d, err, sizeof(err)) != BW_OK) {
		fprintf(stderr, "bulwark: %s\n", err);
		goto out;
	}
	bw_err e = db_prepare(d, "UPDATE users SET failed_logins = 0, locked_until = 0 WHERE email = ?", &s);
	if (e == BW_OK && (e = db_bind_text(s, 1, o.args[2])) == BW_OK)
		e = db_step(s, &row);
	int64_t changed = e == BW_OK ? db_changes(s) : 0;
	db_finalize(s);
	if (e != BW_OK) {
		fprintf(stderr, "bulwark: %s\n", db_errmsg(d));
		goto out;
	}
	if (changed == 0) {
		fprintf(stderr, "bulwark: no user %s in tenant %s\n", o.args[2], o.args[1]);
		goto out;
	}
	/* The event names the user by id, as every auth event does. */
	if (db_prepare(d, "SELECT id FROM users WHERE email = ?", &s) == BW_OK) {
		if (db_bind_text(s, 1, o.args[2]) == BW_OK && db_step(s, &row) == BW_OK && row)
			auth_event(d, db_col_int(s, 0), "unlock", "cli", "by the operator");
		db_finalize(s);
	}
	printf("%s in tenant %s unlocked\n", o.args[2], o.args[1]);
	rc = 0;
out:
	db_close(d);
	free(v);
	tenancy_close(t);
	return rc;
}
