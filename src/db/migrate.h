/*
 * migrate: versioned schema changes, recorded in each database's own
 * schema_migrations table.
 */
#ifndef BW_MIGRATE_H
#define BW_MIGRATE_H

#include "db.h"

struct migration {
	int version;
	const char *name;
	const char *const *steps; /* portable SQL (see db_dialect_sql), NULL-ended */
	/*
	 * Steps generated from descriptors (the module engine), run after the
	 * static ones; the same version always generates the same steps, so a
	 * resumed migration counts them alike. NULL when there are none.
	 */
	char **(*generate)(int version);
	/*
	 * A data step written in C, run where MIGRATE_DATA stands in steps
	 * (at most once per migration): BW_OK, or an error with a message for
	 * the operator in err. It must be safe to run again (MariaDB resumes
	 * at a failed step).
	 */
	bw_err (*data)(db *d, char *err, size_t errlen);
};

/* The step of a migration that runs its data function instead of SQL. */
#define MIGRATE_DATA "@DATA"

struct migration_set {
	const char *what; /* "control" or "tenant" */
	const struct migration *list;
	size_t n;
};

extern const struct migration_set migrate_control;
extern const struct migration_set migrate_tenant;

/* Latest version a set knows. */
int migrate_latest(const struct migration_set *set);
/* Version a database is at (0 when never migrated); BW_OK or a db error. */
bw_err migrate_current(db *d, int *version) BW_MUST_USE;
/* The same without writing anything (for every new pooled connection). */
bw_err migrate_current_ro(db *d, int *version) BW_MUST_USE;
/*
 * Bring d up to the latest version of set. On SQLite each migration runs in
 * one transaction; MariaDB commits DDL implicitly, so progress is recorded
 * after every step and a rerun resumes at the failed step. On failure err
 * names the migration, the step and its statement. *from and *to report
 * the versions before and after.
 */
bw_err migrate_run(db *d, const struct migration_set *set, int *from, int *to, char *err,
		   size_t errlen) BW_MUST_USE;

#endif
