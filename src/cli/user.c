/*
 * bulwark user unlock SLUG EMAIL: lift a lockout from the host.
 */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../audit/audit.h"
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
	/* The user, the change and its audit row in one transaction. */
	int64_t id = 0, failed = 0, until = 0;
	row = 0;
	/* By the normalised address, as sign-in finds it (ADR 0012). */
	struct email_addr addr;
	const char *why = NULL;
	if (email_normalize(o.args[2], EMAIL_ALLOW_IDN, &addr, &why) != BW_OK) {
		fprintf(stderr, "bulwark: '%s' is not a usable e-mail address: the address %s\n",
			o.args[2], why ? why : "is refused");
		goto out;
	}
	bw_err e = db_begin(d);
	if (e == BW_OK &&
	    (e = db_prepare(d, "SELECT id, failed_logins, locked_until FROM users WHERE email_norm = ?",
			    &s)) == BW_OK) {
		if ((e = db_bind_text(s, 1, addr.key)) == BW_OK && (e = db_step(s, &row)) == BW_OK &&
		    row) {
			id = db_col_int(s, 0);
			failed = db_col_int(s, 1);
			until = db_col_int(s, 2);
		}
		db_finalize(s);
	}
	if (e == BW_OK && id == 0) {
		(void)db_rollback(d);
		fprintf(stderr, "bulwark: no user %s in tenant %s\n", o.args[2], o.args[1]);
		goto out;
	}
	char idb[24], who[96];
	snprintf(idb, sizeof(idb), "%lld", (long long)id);
	cli_actor(who, sizeof(who));
	const char *p[] = {idb, NULL};
	json_t *before = json_pack("{s:I, s:I}", "failed_logins", (json_int_t)failed, "locked_until",
				   (json_int_t)until),
	       *after = json_pack("{s:i, s:i, s:s}", "failed_logins", 0, "locked_until", 0,
				  "operator", who);
	struct audit_entry ae = {
	    .actor = AUDIT_SYSTEM,
	    .actor_label = "bulwark user unlock",
	    .entity = "users",
	    .entity_id = id,
	    .action = "unlock",
	    .before = before,
	    .after = after,
	};
	if (e == BW_OK && (before == NULL || after == NULL))
		e = BW_ERR_NOMEM;
	if (e == BW_OK &&
	    (e = db_exec_params(d, "UPDATE users SET failed_logins = 0, locked_until = 0 WHERE id = ?",
				p)) == BW_OK) {
		auth_event(d, id, "unlock", "cli", "by the operator");
		e = audit_record(d, t, tn, &ae);
	}
	if (e == BW_OK)
		e = db_commit(d);
	json_decref(before);
	json_decref(after);
	if (e != BW_OK) {
		(void)db_rollback(d);
		fprintf(stderr, "bulwark: %s: %s\n", bw_strerror(e), db_errmsg(d));
		goto out;
	}
	printf("%s in tenant %s unlocked\n", o.args[2], o.args[1]);
	rc = 0;
out:
	db_close(d);
	free(v);
	tenancy_close(t);
	return rc;
}
