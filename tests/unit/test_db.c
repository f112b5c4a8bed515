/*
 * The driver interface, run identically against SQLite and MariaDB.
 */
#include "unit.h"

#include <pthread.h>
#include <unistd.h>

#include "db/db.h"
#include "dbenv.h"

static char tmpdir[64];

struct fx {
	db *d;
	struct db_params p; /* for a second connection to the same database */
	char path[1024], pw[256];
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
	char err[256];
	snprintf(f->path, sizeof(f->path), "%s/t.db", tmpdir);
	unlink(f->path);
	f->p = (struct db_params){.driver = DB_SQLITE, .path = f->path, .create = 1};
	assert_int_equal(db_open(&f->p, &f->d, err, sizeof(err)), BW_OK);
	*state = f;
	return 0;
}

static int
open_mariadb(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct config cfg;
	char err[256];
	if (!dbenv_have_mariadb()) {
		free(f);
		*state = NULL;
		return 0;
	}
	dbenv_config(&cfg, "mariadb", tmpdir, "saas_unit");
	FILE *pf = fopen(cfg.db_password_file, "r");
	assert_non_null(pf);
	assert_non_null(fgets(f->pw, sizeof(f->pw), pf));
	fclose(pf);
	f->pw[strcspn(f->pw, "\n")] = '\0';
	snprintf(f->path, sizeof(f->path), "%s", cfg.db_socket);
	f->p = (struct db_params){.driver = DB_MARIADB, .socket = f->path, .user = "bulwark",
				  .password = f->pw};
	assert_int_equal(db_open(&f->p, &f->d, err, sizeof(err)), BW_OK);
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
	assert_int_equal(DB_RUN(f->d, "INSERT INTO t (name) VALUES (?)", DB_TEXT("dup")), BW_OK);
	assert_int_equal(DB_RUN(f->d, "INSERT INTO t (name) VALUES (?)", DB_TEXT("dup")),
			 BW_ERR_CONFLICT);
	db_stmt *s;
	assert_int_not_equal(db_prepare(f->d, "SELEKT nonsense", &s), BW_OK);
	assert_ptr_equal(s, NULL);
	/* one statement per prepare: a smuggled second one is refused */
	assert_int_not_equal(db_prepare(f->d, "SELECT 1; DROP TABLE t", &s), BW_OK);
	assert_int_equal(db_run(f->d, "SELECT name FROM t", NULL, 0), BW_OK);
	/* a value does not become SQL: the classic injection is just a name */
	int64_t n;
	assert_int_equal(DB_RUN(f->d, "INSERT INTO t (name) VALUES (?)",
				DB_TEXT("x'); DROP TABLE t; --")),
			 BW_OK);
	assert_int_equal(DB_QUERY_INT(f->d, &n, "SELECT COUNT(*) FROM t WHERE name = ?",
				      DB_TEXT("x'); DROP TABLE t; --")),
			 BW_OK);
	assert_int_equal(n, 1);
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
	assert_int_equal(DB_RUN(f->d, "INSERT INTO t (name) VALUES (?)", DB_TEXT("rolled-back")), BW_OK);
	assert_int_equal(db_rollback(f->d), BW_OK);
	assert_false(db_in_tx(f->d));
	assert_int_equal(db_begin(f->d), BW_OK);
	assert_int_equal(DB_RUN(f->d, "INSERT INTO t (name) VALUES (?)", DB_TEXT("kept")), BW_OK);
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
	assert_int_not_equal(DB_RUN(f->d, "ATTACH DATABASE ? AS other", DB_TEXT(other)), BW_OK);
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

/* A second connection to the fixture's database. */
static db *
open_second(struct fx *f)
{
	db *d2;
	char err[256];
	assert_int_equal(db_open(&f->p, &d2, err, sizeof(err)), BW_OK);
	if (db_driver_of(d2) == DB_MARIADB)
		assert_int_equal(db_exec(d2, "USE saas_unit_db"), BW_OK);
	return d2;
}

/* Run a cached "SELECT ? + k" and check the sum; returns the statement it ran on. */
static db_stmt *
run_plus(db *d, int k)
{
	char sql[64];
	db_stmt *s;
	int row;
	snprintf(sql, sizeof(sql), "SELECT ? + %d", k);
	assert_int_equal(db_prepare_cached(d, sql, &s), BW_OK);
	assert_int_equal(DB_BIND(s, DB_INT(1000)), BW_OK);
	assert_int_equal(db_step(s, &row), BW_OK);
	assert_int_equal(row, 1);
	assert_int_equal(db_col_int(s, 0), 1000 + k);
	db_done(s);
	return s;
}

/* More distinct statements than the cache holds: the least recently used go. */
static void
test_cache_lru(void **state)
{
	struct fx *f = *state;
	NEED_DB(f);
	db_stmt *kept[100];
	for (int i = 0; i < 100; i++) {
		kept[i] = run_plus(f->d, i);
		assert_int_equal(db_cached(f->d), i < 64 ? (size_t)i + 1 : 64);
	}
	/* 36..99 are held. A hit gives back the very statement, still alive. */
	assert_ptr_equal(run_plus(f->d, 36), kept[36]);
	assert_ptr_equal(run_plus(f->d, 99), kept[99]);
	/* A new one now evicts 37, the least recently used, not 36 (just used). */
	(void)run_plus(f->d, 1000);
	assert_int_equal(db_cached(f->d), 64);
	assert_ptr_equal(run_plus(f->d, 36), kept[36]);
	assert_ptr_equal(run_plus(f->d, 38), kept[38]);
	/* And every statement still runs, cached or prepared again. */
	for (int i = 0; i < 100; i++)
		(void)run_plus(f->d, i);
	assert_int_equal(db_cached(f->d), 64);
	/* db_finalize on a cached statement takes it out of the cache. */
	db_stmt *s;
	assert_int_equal(db_prepare_cached(f->d, "SELECT ? + 99", &s), BW_OK);
	db_finalize(s);
	assert_int_equal(db_cached(f->d), 63);
}

/* The key is the text: equal SQL from two different buffers is one entry. */
static void
test_cache_key_is_text(void **state)
{
	struct fx *f = *state;
	NEED_DB(f);
	char a[] = "SELECT ? * 2";
	char *b = strdup(a);
	db_stmt *s1, *s2, *s3;
	int row;
	assert_ptr_not_equal(a, b);
	assert_int_equal(db_prepare_cached(f->d, a, &s1), BW_OK);
	db_done(s1);
	size_t n = db_cached(f->d);
	assert_int_equal(n, 1);
	/* The caller's buffer may change afterwards: the cache kept a copy. */
	a[9] = '-';
	assert_int_equal(db_prepare_cached(f->d, b, &s2), BW_OK);
	assert_ptr_equal(s1, s2);
	assert_int_equal(db_cached(f->d), n);
	/* While it is in use, the same text gets a statement of its own. */
	assert_int_equal(db_prepare_cached(f->d, "SELECT ? * 2", &s3), BW_OK);
	assert_ptr_not_equal(s3, s2);
	assert_int_equal(DB_BIND(s2, DB_INT(21)), BW_OK);
	assert_int_equal(DB_BIND(s3, DB_INT(5)), BW_OK);
	assert_int_equal(db_step(s2, &row), BW_OK);
	assert_int_equal(db_col_int(s2, 0), 42);
	assert_int_equal(db_step(s3, &row), BW_OK);
	assert_int_equal(db_col_int(s3, 0), 10);
	db_done(s3);
	db_done(s2);
	/* a's new text is a different key. */
	assert_int_equal(db_prepare_cached(f->d, a, &s1), BW_OK);
	assert_ptr_not_equal(s1, s2);
	assert_int_equal(DB_BIND(s1, DB_INT(21)), BW_OK);
	assert_int_equal(db_step(s1, &row), BW_OK);
	assert_int_equal(db_col_int(s1, 0), 19);
	db_done(s1);
	assert_int_equal(db_cached(f->d), 3);
	free(b);
}

/* All 64 in use at once: the 65th and later run uncached, nothing is evicted. */
static void
test_cache_all_busy(void **state)
{
	struct fx *f = *state;
	NEED_DB(f);
	db_stmt *s[70];
	char sql[64];
	int row;
	for (int i = 0; i < 70; i++) {
		snprintf(sql, sizeof(sql), "SELECT ? + %d", i);
		assert_int_equal(db_prepare_cached(f->d, sql, &s[i]), BW_OK);
		assert_int_equal(DB_BIND(s[i], DB_INT(1000)), BW_OK);
	}
	assert_int_equal(db_cached(f->d), 64);
	for (int i = 69; i >= 0; i--) {
		assert_int_equal(db_step(s[i], &row), BW_OK);
		assert_int_equal(row, 1);
		assert_int_equal(db_col_int(s[i], 0), 1000 + i);
	}
	for (int i = 0; i < 70; i++)
		db_done(s[i]); /* the uncached six are finalized (ASan checks the leaks) */
	assert_int_equal(db_cached(f->d), 64);
	/* The first 64 were kept: running them again prepares nothing new. */
	for (int i = 0; i < 64; i++)
		assert_ptr_equal(run_plus(f->d, i), s[i]);
}

/* Typed arguments: every type round-trips, integers stay integers. */
static void
test_args(void **state)
{
	struct fx *f = *state;
	NEED_DB(f);
	db_stmt *s;
	int row;
	static const unsigned char raw[] = {0, 'a', 0xff, 0};
	mk_table(f->d);
	assert_int_equal(DB_RUN(f->d, "INSERT INTO t (name, n, body, raw) VALUES (?, ?, ?, ?)",
				DB_TEXT("one"), DB_INT(INT64_MAX), DB_TEXT("b\xc3\xa9"),
				DB_BLOB(raw, sizeof(raw))),
			 BW_OK);
	assert_int_equal(DB_RUN(f->d, "INSERT INTO t (name, n, body, raw) VALUES (?, ?, ?, ?)",
				DB_TEXT("two"), DB_INT(INT64_MIN), DB_TEXT(NULL), DB_NULL),
			 BW_OK);
	assert_int_equal(DB_RUN(f->d, "INSERT INTO t (name, n) VALUES (?, ?)", DB_TEXT("three"),
				DB_INT(-1)),
			 BW_OK);
	/* A unique violation comes back as itself. */
	assert_int_equal(DB_RUN(f->d, "INSERT INTO t (name) VALUES (?)", DB_TEXT("one")),
			 BW_ERR_CONFLICT);
	/* Too many arguments for the statement: refused, and the cached statement recovers. */
	assert_int_not_equal(DB_RUN(f->d, "UPDATE t SET n = ? WHERE name = ?", DB_INT(1),
				    DB_TEXT("one"), DB_INT(3)),
			     BW_OK);
	assert_int_equal(DB_RUN(f->d, "UPDATE t SET n = ? WHERE name = ?", DB_INT(7), DB_TEXT("three")),
			 BW_OK);
	/* No arguments at all. */
	assert_int_equal(db_run(f->d, "UPDATE t SET n = n + 1 WHERE name = 'three'", NULL, 0), BW_OK);

	assert_int_equal(db_prepare(f->d,
				    "SELECT name, n, body, raw FROM t WHERE n >= ? OR n = ? ORDER BY id",
				    &s),
			 BW_OK);
	assert_int_equal(DB_BIND(s, DB_INT(INT64_MAX), DB_INT(INT64_MIN)), BW_OK);
	assert_int_equal(db_step(s, &row), BW_OK);
	assert_int_equal(row, 1);
	assert_string_equal(db_col_text(s, 0), "one");
	assert_true(db_col_int(s, 1) == INT64_MAX);
	assert_string_equal(db_col_text(s, 2), "b\xc3\xa9");
	size_t len;
	const void *b = db_col_blob(s, 3, &len);
	assert_int_equal(len, sizeof(raw));
	assert_memory_equal(b, raw, sizeof(raw));
	assert_int_equal(db_step(s, &row), BW_OK);
	assert_int_equal(row, 1);
	assert_string_equal(db_col_text(s, 0), "two");
	assert_true(db_col_int(s, 1) == INT64_MIN);
	assert_null(db_col_text(s, 2));
	assert_true(db_col_null(s, 3));
	assert_int_equal(db_step(s, &row), BW_OK);
	assert_int_equal(row, 0);
	/* db_bind_args binds again after a reset, as the single binds do. */
	assert_int_equal(db_reset(s), BW_OK);
	assert_int_equal(DB_BIND(s, DB_INT(8), DB_NULL), BW_OK);
	assert_int_equal(db_step(s, &row), BW_OK);
	assert_int_equal(row, 1);
	assert_string_equal(db_col_text(s, 0), "one");
	assert_int_equal(db_step(s, &row), BW_OK);
	assert_int_equal(row, 1);
	assert_string_equal(db_col_text(s, 0), "three");
	assert_int_equal(db_col_int(s, 1), 8);
	db_finalize(s);
	/* An empty array binds nothing. */
	assert_int_equal(db_prepare(f->d, "SELECT COUNT(*) FROM t", &s), BW_OK);
	assert_int_equal(db_bind_args(s, NULL, 0), BW_OK);
	assert_int_equal(db_step(s, &row), BW_OK);
	assert_int_equal(db_col_int(s, 0), 3);
	db_finalize(s);
}

/* DB_INSERT gives the new row's id; DB_QUERY_INT one integer, 0 for no row or NULL. */
static void
test_insert_query_int(void **state)
{
	struct fx *f = *state;
	NEED_DB(f);
	int64_t id1, id2, n;
	mk_table(f->d);
	assert_int_equal(DB_INSERT(f->d, &id1, "INSERT INTO t (name, n) VALUES (?, ?)", DB_TEXT("a"),
				   DB_INT(5)),
			 BW_OK);
	assert_int_equal(DB_INSERT(f->d, &id2, "INSERT INTO t (name, n) VALUES (?, ?)", DB_TEXT("b"),
				   DB_INT(-3)),
			 BW_OK);
	assert_true(id1 > 0 && id2 > id1);
	/* a failed insert gives no id */
	assert_int_equal(DB_INSERT(f->d, &id2, "INSERT INTO t (name) VALUES (?)", DB_TEXT("a")),
			 BW_ERR_CONFLICT);
	assert_true(id2 == 0);
	assert_int_equal(DB_QUERY_INT(f->d, &n, "SELECT n FROM t WHERE id = ?", DB_INT(id1)), BW_OK);
	assert_true(n == 5);
	assert_int_equal(DB_QUERY_INT(f->d, &n, "SELECT COUNT(*) FROM t WHERE n < ?", DB_INT(0)),
			 BW_OK);
	assert_true(n == 1);
	/* no row, and SQL NULL: both 0 */
	n = 9;
	assert_int_equal(DB_QUERY_INT(f->d, &n, "SELECT n FROM t WHERE name = ?", DB_TEXT("none")),
			 BW_OK);
	assert_true(n == 0);
	assert_int_equal(DB_RUN(f->d, "INSERT INTO t (name) VALUES (?)", DB_TEXT("c")), BW_OK);
	n = 9;
	assert_int_equal(DB_QUERY_INT(f->d, &n, "SELECT n FROM t WHERE name = ?", DB_TEXT("c")),
			 BW_OK);
	assert_true(n == 0);
	/* an error comes back as itself, with 0 */
	n = 9;
	assert_int_not_equal(DB_QUERY_INT(f->d, &n, "SELECT nope FROM t WHERE id = ?", DB_INT(1)),
			     BW_OK);
	assert_true(n == 0);
}

/* SQLite: an integer argument is bound as an integer, never as text. */
static void
test_sqlite_args_typed(void **state)
{
	struct fx *f = *state;
	db_stmt *s;
	int row;
	assert_int_equal(db_prepare(f->d, "SELECT typeof(?), typeof(?), typeof(?), typeof(?)", &s),
			 BW_OK);
	assert_int_equal(DB_BIND(s, DB_INT(42), DB_TEXT("42"), DB_BLOB("42", 2), DB_NULL), BW_OK);
	assert_int_equal(db_step(s, &row), BW_OK);
	assert_string_equal(db_col_text(s, 0), "integer");
	assert_string_equal(db_col_text(s, 1), "text");
	assert_string_equal(db_col_text(s, 2), "blob");
	assert_string_equal(db_col_text(s, 3), "null");
	db_finalize(s);
}

struct locker {
	db *d;
	bw_err e;
	int retryable;
};

static void *
locker_take_b(void *arg)
{
	struct locker *l = arg;
	l->e = DB_RUN(l->d, "UPDATE t SET n = n + 1 WHERE name = ?", DB_TEXT("b"));
	l->retryable = db_retryable(l->d);
	return NULL;
}

/*
 * MariaDB: a real deadlock. A locks row a, B locks row b, then A wants b
 * (in a thread, since it waits) and B wants a. InnoDB rolls one back with
 * 1213; that one is retryable, the other went through.
 */
static void
test_mariadb_deadlock_retryable(void **state)
{
	struct fx *f = *state;
	NEED_DB(f);
	mk_table(f->d);
	assert_int_equal(DB_RUN(f->d, "INSERT INTO t (name, n) VALUES (?, 0), (?, 0)", DB_TEXT("a"),
				DB_TEXT("b")),
			 BW_OK);
	db *a = f->d, *b = open_second(f);
	assert_int_equal(db_begin(a), BW_OK);
	assert_int_equal(DB_RUN(a, "UPDATE t SET n = n + 1 WHERE name = ?", DB_TEXT("a")), BW_OK);
	assert_int_equal(db_begin(b), BW_OK);
	assert_int_equal(DB_RUN(b, "UPDATE t SET n = n + 1 WHERE name = ?", DB_TEXT("b")), BW_OK);
	struct locker la = {.d = a};
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, locker_take_b, &la), 0);
	usleep(200 * 1000); /* let A start waiting for b; the order does not matter for the cycle */
	bw_err eb = DB_RUN(b, "UPDATE t SET n = n + 1 WHERE name = ?", DB_TEXT("a"));
	int rb = db_retryable(b);
	assert_int_equal(pthread_join(th, NULL), 0);

	/* Exactly one lost, with a retryable 1213; the other went through. */
	assert_true((la.e == BW_OK) != (eb == BW_OK));
	db *loser = la.e == BW_OK ? b : a, *winner = la.e == BW_OK ? a : b;
	bw_err el = la.e == BW_OK ? eb : la.e;
	assert_int_equal(el, BW_ERR_UNAVAILABLE); /* what a deadlock has always returned */
	assert_non_null(strstr(db_errmsg(loser), "1213"));
	assert_int_equal(la.e == BW_OK ? rb : la.retryable, 1);
	assert_int_equal(la.e == BW_OK ? la.retryable : rb, 0);
	assert_false(db_broken(loser));
	/* Rolling back keeps the answer; the next success clears it. */
	assert_int_equal(db_rollback(loser), BW_OK);
	assert_int_equal(db_retryable(loser), 1);
	assert_int_equal(db_commit(winner), BW_OK);
	assert_int_equal(db_retryable(winner), 0);
	assert_int_equal(db_ping(loser), BW_OK);
	assert_int_equal(db_retryable(loser), 0);
	/* And the retry works. */
	assert_int_equal(db_begin(loser), BW_OK);
	assert_int_equal(DB_RUN(loser, "UPDATE t SET n = n + 10 WHERE name = ?", DB_TEXT("a")), BW_OK);
	assert_int_equal(db_commit(loser), BW_OK);
	db_close(b);
}

/* MariaDB: a lock wait timeout (1205) is retryable too; other errors are not. */
static void
test_mariadb_lock_wait_retryable(void **state)
{
	struct fx *f = *state;
	NEED_DB(f);
	mk_table(f->d);
	assert_int_equal(DB_RUN(f->d, "INSERT INTO t (name, n) VALUES (?, 0)", DB_TEXT("a")), BW_OK);
	db *b = open_second(f);
	assert_int_equal(db_exec(b, "SET SESSION innodb_lock_wait_timeout = 1"), BW_OK);
	assert_int_equal(db_begin(f->d), BW_OK);
	assert_int_equal(DB_RUN(f->d, "UPDATE t SET n = 1 WHERE name = ?", DB_TEXT("a")), BW_OK);
	assert_int_equal(db_begin(b), BW_OK);
	assert_int_equal(DB_RUN(b, "UPDATE t SET n = 2 WHERE name = ?", DB_TEXT("a")),
			 BW_ERR_UNAVAILABLE);
	assert_non_null(strstr(db_errmsg(b), "1205"));
	assert_int_equal(db_retryable(b), 1);
	assert_int_equal(db_rollback(b), BW_OK);
	assert_int_equal(db_retryable(b), 1);
	assert_int_equal(db_rollback(f->d), BW_OK);
	/* A different failure is not retryable (once A's lock is gone: it would wait). */
	assert_int_equal(DB_RUN(b, "INSERT INTO t (name) VALUES (?)", DB_TEXT("a")), BW_ERR_CONFLICT);
	assert_int_equal(db_retryable(b), 0);
	db_close(b);
}

/*
 * SQLite: a real SQLITE_BUSY. A reads inside a deferred transaction, B
 * commits a write, and A's write on its now stale snapshot is refused at
 * once (SQLITE_BUSY_SNAPSHOT: no busy handler can help; a retry of the
 * transaction does).
 */
static void
test_sqlite_busy_retryable(void **state)
{
	struct fx *f = *state;
	db_stmt *s;
	int row;
	mk_table(f->d);
	db *b = open_second(f);
	assert_int_equal(db_exec(f->d, "BEGIN"), BW_OK);
	assert_int_equal(db_prepare(f->d, "SELECT COUNT(*) FROM t", &s), BW_OK);
	assert_int_equal(db_step(s, &row), BW_OK);
	assert_int_equal(row, 1);
	db_finalize(s);
	assert_int_equal(DB_RUN(b, "INSERT INTO t (name) VALUES (?)", DB_TEXT("from-b")), BW_OK);
	assert_int_equal(db_retryable(b), 0);
	assert_int_equal(DB_RUN(f->d, "INSERT INTO t (name) VALUES (?)", DB_TEXT("from-a")),
			 BW_ERR_UNAVAILABLE);
	assert_int_equal(db_retryable(f->d), 1);
	assert_false(db_broken(f->d));
	/* A success clears it. */
	assert_int_equal(db_exec(f->d, "ROLLBACK"), BW_OK);
	assert_int_equal(db_retryable(f->d), 0);
	/* Other errors are not retryable. */
	assert_int_equal(DB_RUN(f->d, "INSERT INTO t (name) VALUES (?)", DB_TEXT("from-b")),
			 BW_ERR_CONFLICT);
	assert_int_equal(db_retryable(f->d), 0);
	assert_int_equal(db_exec(f->d, "SELEKT"), BW_ERR_DB);
	assert_int_equal(db_retryable(f->d), 0);
	/* The retry goes through. */
	assert_int_equal(DB_RUN(f->d, "INSERT INTO t (name) VALUES (?)", DB_TEXT("from-a")), BW_OK);
	db_close(b);
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
		cmocka_unit_test_setup_teardown(test_cache_lru, open_sqlite, close_db),
		cmocka_unit_test_setup_teardown(test_cache_key_is_text, open_sqlite, close_db),
		cmocka_unit_test_setup_teardown(test_cache_all_busy, open_sqlite, close_db),
		cmocka_unit_test_setup_teardown(test_args, open_sqlite, close_db),
		cmocka_unit_test_setup_teardown(test_insert_query_int, open_sqlite, close_db),
		cmocka_unit_test_setup_teardown(test_sqlite_args_typed, open_sqlite, close_db),
		cmocka_unit_test_setup_teardown(test_sqlite_busy_retryable, open_sqlite, close_db),
		cmocka_unit_test_setup_teardown(test_roundtrip_types, open_mariadb, close_db),
		cmocka_unit_test_setup_teardown(test_errors_mapped, open_mariadb, close_db),
		cmocka_unit_test_setup_teardown(test_transactions, open_mariadb, close_db),
		cmocka_unit_test_setup_teardown(test_cache_lru, open_mariadb, close_db),
		cmocka_unit_test_setup_teardown(test_cache_key_is_text, open_mariadb, close_db),
		cmocka_unit_test_setup_teardown(test_cache_all_busy, open_mariadb, close_db),
		cmocka_unit_test_setup_teardown(test_args, open_mariadb, close_db),
		cmocka_unit_test_setup_teardown(test_insert_query_int, open_mariadb, close_db),
		cmocka_unit_test_setup_teardown(test_mariadb_deadlock_retryable, open_mariadb, close_db),
		cmocka_unit_test_setup_teardown(test_mariadb_lock_wait_retryable, open_mariadb, close_db),
	};
	return cmocka_run_group_tests_name("db", tests, group_setup, group_teardown);
}
