/*
 * The driver interface, run identically against SQLite and MariaDB.
 */
#include "unit.h"

#include <unistd.h>

#include "db/db.h"
#include "dbenv.h"

static char tmpdir[64];

struct fx {
	db *d;
};

static int
group_setup(void **state)
{
	(void)state;
	return unit_mkdtemp(tmpdir, sizeof(tmpdir), "db");
}

static int
group_teardown(void **state)
{
	(void)state;
	return unit_rmtree(tmpdir);
}

static int
open_sqlite(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char path[128], err[256];
	snprintf(path, sizeof(path), "%s/t.db", tmpdir);
	unlink(path);
	struct db_params p = {.driver = DB_SQLITE, .path = path, .create = 1};
	assert_int_equal(db_open(&p, &f->d, err, sizeof(err)), BW_OK);
	*state = f;
	return 0;
}

static int
open_mariadb(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct config cfg;
	char err[256], pw[256] = "";
	if (!dbenv_have_mariadb()) {
		free(f);
		*state = NULL;
		return 0;
	}
	dbenv_config(&cfg, "mariadb", tmpdir, "saas_unit");
	FILE *pf = fopen(cfg.db_password_file, "r");
	assert_non_null(pf);
	assert_non_null(fgets(pw, sizeof(pw), pf));
	fclose(pf);
	pw[strcspn(pw, "\n")] = '\0';
	struct db_params p = {.driver = DB_MARIADB, .socket = cfg.db_socket, .user = "bulwark",
			      .password = pw};
	assert_int_equal(db_open(&p, &f->d, err, sizeof(err)), BW_OK);
	assert_int_equal(db_exec(f->d, "DROP DATABASE IF EXISTS saas_unit_db"), BW_OK);
	assert_int_equal(db_exec(f->d, "CREATE DATABASE saas_unit_db"), BW_OK);
	assert_int_equal(db_exec(f->d, "USE saas_unit_db"), BW_OK);
	*state = f;
	return 0;
}

static int
close_db(void **state)
{
	struct fx *f = *state;
	if (f == NULL)
		return 0;
	if (db_driver_of(f->d) == DB_MARIADB)
		if (db_exec(f->d, "DROP DATABASE IF EXISTS saas_unit_db") != BW_OK)
			print_message("drop: %s\n", db_errmsg(f->d));
	db_close(f->d);
	free(f);
	return 0;
}

#define NEED_DB(f)                                                                    \
	do {                                                                          \
		if ((f) == NULL) {                                                    \
			print_message("MariaDB not started (run through make check)\n"); \
			skip();                                                       \
		}                                                                     \
	} while (0)

static void
mk_table(db *d)
{
	char *sql = db_dialect_sql(db_driver_of(d),
				   "CREATE TABLE t (id @ID, name @STR(40) NOT NULL UNIQUE, n @INT,"
				   " body @TEXT, raw @BLOB)@OPTS");
	assert_non_null(sql);
	if (db_exec(d, sql) != BW_OK)
		fail_msg("create: %s", db_errmsg(d));
	free(sql);
}

static void
test_roundtrip_types(void **state)
{
	struct fx *f = *state;
	NEED_DB(f);
	db_stmt *s;
	int row;
	mk_table(f->d);
	static const unsigned char raw[] = {0, 1, 2, 0xff, 0, 'x'};
	char *big = malloc(100001);
	memset(big, 'b', 100000);
	big[100000] = '\0';
	assert_int_equal(db_prepare(f->d, "INSERT INTO t (name, n, body, raw) VALUES (?, ?, ?, ?)", &s),
			 BW_OK);
	assert_int_equal(db_bind_text(s, 1, "caf\xc3\xa9 \xe2\x82\xac"), BW_OK);
	assert_int_equal(db_bind_int(s, 2, -9007199254740993LL), BW_OK);
	assert_int_equal(db_bind_text(s, 3, big), BW_OK);
	assert_int_equal(db_bind_blob(s, 4, raw, sizeof(raw)), BW_OK);
	assert_int_equal(db_step(s, &row), BW_OK);
	assert_int_equal(row, 0);
	assert_int_equal(db_changes(s), 1);
	int64_t id = db_last_id(s);
	assert_true(id > 0);
	/* reuse with new bindings, NULLs this time */
	assert_int_equal(db_reset(s), BW_OK);
	assert_int_equal(db_bind_text(s, 1, "second"), BW_OK);
	assert_int_equal(db_bind_null(s, 2), BW_OK);
	assert_int_equal(db_bind_null(s, 3), BW_OK);
	assert_int_equal(db_bind_blob(s, 4, "", 0), BW_OK);
	assert_int_equal(db_step(s, &row), BW_OK);
	db_finalize(s);

	assert_int_equal(db_prepare(f->d, "SELECT id, name, n, body, raw FROM t ORDER BY id", &s),
			 BW_OK);
	assert_int_equal(db_step(s, &row), BW_OK);
	assert_int_equal(row, 1);
	assert_int_equal(db_col_int(s, 0), id);
	assert_string_equal(db_col_text(s, 1), "caf\xc3\xa9 \xe2\x82\xac");
	assert_int_equal(db_col_int(s, 2), -9007199254740993LL);
	assert_int_equal(strlen(db_col_text(s, 3)), 100000);
	size_t len;
	const void *b = db_col_blob(s, 4, &len);
	assert_int_equal(len, sizeof(raw));
	assert_memory_equal(b, raw, sizeof(raw));
	assert_int_equal(db_step(s, &row), BW_OK);
	assert_int_equal(row, 1);
	assert_string_equal(db_col_text(s, 1), "second");
	assert_true(db_col_null(s, 2));
	assert_null(db_col_text(s, 3));
	assert_int_equal(db_step(s, &row), BW_OK);
	assert_int_equal(row, 0);
	db_finalize(s);
	free(big);
}

static void
test_errors_mapped(void **state)
{
	struct fx *f = *state;
	NEED_DB(f);
	mk_table(f->d);
	const char *p1[] = {"dup", NULL};
	assert_int_equal(db_exec_params(f->d, "INSERT INTO t (name) VALUES (?)", p1), BW_OK);
	assert_int_equal(db_exec_params(f->d, "INSERT INTO t (name) VALUES (?)", p1), BW_ERR_CONFLICT);
	db_stmt *s;
	assert_int_not_equal(db_prepare(f->d, "SELEKT nonsense", &s), BW_OK);
	assert_ptr_equal(s, NULL);
	/* one statement per prepare: a smuggled second one is refused */
	assert_int_not_equal(db_prepare(f->d, "SELECT 1; DROP TABLE t", &s), BW_OK);
	assert_int_equal(db_exec_params(f->d, "SELECT name FROM t", NULL), BW_OK);
	/* a value does not become SQL: the classic injection is just a name */
	const char *inj[] = {"x'); DROP TABLE t; --", NULL};
	assert_int_equal(db_exec_params(f->d, "INSERT INTO t (name) VALUES (?)", inj), BW_OK);
	assert_int_equal(db_exec_params(f->d, "SELECT COUNT(*) FROM t", NULL), BW_OK);
}

static void
test_transactions(void **state)
{
	struct fx *f = *state;
	NEED_DB(f);
	db_stmt *s;
	int row;
	mk_table(f->d);
	assert_int_equal(db_begin(f->d), BW_OK);
	assert_true(db_in_tx(f->d));
	assert_int_equal(db_begin(f->d), BW_ERR_INTERNAL); /* no nesting */
	const char *a[] = {"rolled-back", NULL};
	assert_int_equal(db_exec_params(f->d, "INSERT INTO t (name) VALUES (?)", a), BW_OK);
	assert_int_equal(db_rollback(f->d), BW_OK);
	assert_false(db_in_tx(f->d));
	assert_int_equal(db_begin(f->d), BW_OK);
	const char *b[] = {"kept", NULL};
	assert_int_equal(db_exec_params(f->d, "INSERT INTO t (name) VALUES (?)", b), BW_OK);
	assert_int_equal(db_commit(f->d), BW_OK);
	assert_int_equal(db_prepare(f->d, "SELECT name FROM t", &s), BW_OK);
	assert_int_equal(db_step(s, &row), BW_OK);
	assert_int_equal(row, 1);
	assert_string_equal(db_col_text(s, 0), "kept");
	assert_int_equal(db_step(s, &row), BW_OK);
	assert_int_equal(row, 0);
	db_finalize(s);
	assert_int_equal(db_ping(f->d), BW_OK);
}

/* SQLite: the authorizer refuses ATTACH, DETACH and extension loading. */
static void
test_sqlite_attach_refused(void **state)
{
	struct fx *f = *state;
	char other[128], sql[256];
	snprintf(other, sizeof(other), "%s/other.db", tmpdir);
	FILE *o = fopen(other, "w");
	fclose(o);
	snprintf(sql, sizeof(sql), "ATTACH DATABASE '%s' AS other", other);
	assert_int_equal(db_exec(f->d, sql), BW_ERR_DENIED);
	db_stmt *s;
	const char *p[] = {other, NULL};
	assert_int_not_equal(db_exec_params(f->d, "ATTACH DATABASE ? AS other", p), BW_OK);
	assert_int_not_equal(db_exec(f->d, "DETACH DATABASE main"), BW_OK);
	assert_int_not_equal(db_prepare(f->d, "SELECT load_extension('/tmp/x.so')", &s), BW_OK);
	/* and the limit of zero attached databases stands behind the authorizer */
	assert_int_not_equal(db_exec(f->d, "VACUUM INTO '/tmp/bw-db-vacuum-copy.db'"), BW_OK);
}

static void
test_dialect(void **state)
{
	(void)state;
	char *a = db_dialect_sql(DB_SQLITE, "CREATE TABLE x (id @ID, s @STR(10), t @TEXT)@OPTS");
	char *b = db_dialect_sql(DB_MARIADB, "CREATE TABLE x (id @ID, s @STR(10), t @TEXT)@OPTS");
	assert_string_equal(a, "CREATE TABLE x (id INTEGER PRIMARY KEY AUTOINCREMENT, s TEXT, t TEXT)");
	assert_string_equal(b, "CREATE TABLE x (id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, "
			       "s VARCHAR(10), t LONGTEXT) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 "
			       "COLLATE=utf8mb4_bin");
	free(a);
	free(b);
	assert_null(db_dialect_sql(DB_SQLITE, "x @NOPE"));
	assert_null(db_dialect_sql(DB_SQLITE, "x @STR(0)"));
	assert_null(db_dialect_sql(DB_SQLITE, "x @STR(abc)"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dialect),
		cmocka_unit_test_setup_teardown(test_roundtrip_types, open_sqlite, close_db),
		cmocka_unit_test_setup_teardown(test_errors_mapped, open_sqlite, close_db),
		cmocka_unit_test_setup_teardown(test_transactions, open_sqlite, close_db),
		cmocka_unit_test_setup_teardown(test_sqlite_attach_refused, open_sqlite, close_db),
		cmocka_unit_test_setup_teardown(test_roundtrip_types, open_mariadb, close_db),
		cmocka_unit_test_setup_teardown(test_errors_mapped, open_mariadb, close_db),
		cmocka_unit_test_setup_teardown(test_transactions, open_mariadb, close_db),
	};
	return cmocka_run_group_tests_name("db", tests, group_setup, group_teardown);
}
