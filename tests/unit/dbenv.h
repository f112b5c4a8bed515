/*
 * Test databases for the unit tests: SQLite in a temporary directory
 * always, and MariaDB when the runner started one (tests/run-all exports
 * BULWARK_TEST_MARIADB_SOCKET and _DIR; see scripts/mariadb-test).
 */
#ifndef BW_DBENV_H
#define BW_DBENV_H

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config/config.h"
#include "db/migrate.h"
#include "tenancy/tenancy.h"

static inline int
dbenv_have_mariadb(void)
{
	const char *s = getenv("BULWARK_TEST_MARIADB_SOCKET");
	return s != NULL && s[0] != '\0';
}

/* A master key file for tests: fixed keys, mode 0600, beside var_dir. */
static inline void
dbenv_write_keys(struct config *cfg, const char *text)
{
	snprintf(cfg->keys_file, sizeof(cfg->keys_file), "%.900s.keys", cfg->var_dir);
	FILE *f = fopen(cfg->keys_file, "w");
	if (f == NULL)
		abort();
	fputs(text, f);
	fclose(f);
	chmod(cfg->keys_file, 0600);
}

#define DBENV_KEY1 "1:AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA="
#define DBENV_KEY2 "2:ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8="

/* A configuration for driver ("sqlite" or "mariadb") with state under var_dir. */
static inline void
dbenv_config(struct config *cfg, const char *driver, const char *var_dir, const char *control_db)
{
	config_defaults(cfg);
	snprintf(cfg->var_dir, sizeof(cfg->var_dir), "%s", var_dir);
	snprintf(cfg->db_driver, sizeof(cfg->db_driver), "%s", driver);
	snprintf(cfg->db_control, sizeof(cfg->db_control), "%s", control_db);
	cfg->db_registry_refresh_ms = 50;
	dbenv_write_keys(cfg, DBENV_KEY1 "\n");
	if (strcmp(driver, "mariadb") == 0) {
		const char *dir = getenv("BULWARK_TEST_MARIADB_DIR");
		snprintf(cfg->db_socket, sizeof(cfg->db_socket), "%s",
			 getenv("BULWARK_TEST_MARIADB_SOCKET"));
		snprintf(cfg->db_password_file, sizeof(cfg->db_password_file), "%s/control.pw", dir);
	}
}

/*
 * A fresh var dir (<tmpdir>/<driver>-<seq>) and control database
 * (<ctl_prefix><seq>), created and migrated from nothing; *t open on it.
 * BW_OK, or an error with the reason in err.
 */
static inline bw_err
dbenv_open(struct config *cfg, const char *driver, const char *tmpdir, const char *ctl_prefix,
	   int seq, struct tenancy **t, char *err, size_t errlen)
{
	char dir[128], ctl[64];
	int from, to;
	snprintf(dir, sizeof(dir), "%s/%s-%d", tmpdir, driver, seq);
	snprintf(ctl, sizeof(ctl), "%s%d", ctl_prefix, seq);
	dbenv_config(cfg, driver, dir, ctl);
	bw_err e = tenancy_open(cfg, 1, t, err, errlen);
	if (e != BW_OK)
		return e;
	e = migrate_run(tenancy_control(*t), &migrate_control, &from, &to, err, errlen);
	if (e == BW_OK && (from != 0 || to != migrate_latest(&migrate_control))) {
		snprintf(err, errlen, "control database migrated from %d to %d", from, to);
		e = BW_ERR_INTERNAL;
	}
	return e;
}

/*
 * Tear down what a test made: every tenant (database, account, keys) and,
 * on MariaDB, the test's control database, so a shared MariaDB keeps
 * nothing between tests; then close t.
 */
static inline void
dbenv_destroy(struct tenancy *t, const struct config *cfg)
{
	char err[512];
	struct tenant *v;
	size_t n;
	if (tenant_list(t, &v, &n, err, sizeof(err)) == BW_OK) {
		for (size_t i = 0; i < n; i++)
			if (tenant_delete(t, v[i].slug, err, sizeof(err)) != BW_OK)
				fprintf(stderr, "cleanup %s: %s\n", v[i].slug, err);
		free(v);
	}
	if (strcmp(cfg->db_driver, "mariadb") == 0) {
		char sql[128];
		snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS `%s`", cfg->db_control);
		if (db_exec(tenancy_control(t), sql) != BW_OK)
			fprintf(stderr, "drop control: %s\n", db_errmsg(tenancy_control(t)));
	}
	tenancy_close(t);
}

#endif
