/*
 * db: one small interface over SQLite and MariaDB. Statements are always
 * prepared with '?' placeholders and bound; there is no call that takes
 * SQL text together with values. Only db_sqlite.c includes sqlite3.h and
 * only db_mariadb.c includes MariaDB's headers.
 */
#ifndef BW_DB_H
#define BW_DB_H

#include <stdint.h>

#include "../core/core.h"

enum db_driver { DB_SQLITE = 1, DB_MARIADB = 2 };

typedef struct db db;
typedef struct db_stmt db_stmt;

/* Where to connect. Strings are borrowed for the duration of db_open(). */
struct db_params {
	enum db_driver driver;
	/* SQLite */
	const char *path;
	int create; /* create the file if missing */
	/* MariaDB */
	const char *host; /* NULL or "" with socket set: Unix socket */
	unsigned port;
	const char *socket;
	const char *user;
	const char *password;
	const char *database; /* NULL: no default database */
	unsigned connect_timeout;
};

/*
 * Open a connection. On failure returns BW_ERR_UNAVAILABLE when the server
 * or file cannot be reached, BW_ERR_DENIED when credentials are refused,
 * BW_ERR_DB otherwise, with a reason (no secrets) in err.
 */
bw_err db_open(const struct db_params *p, db **out, char *err, size_t errlen) BW_MUST_USE;
void db_close(db *d);
enum db_driver db_driver_of(const db *d);
/* Last error text from the driver, for logs (never shown to clients). */
const char *db_errmsg(const db *d);
/* True once the connection has failed in a way that makes it unusable. */
int db_broken(const db *d);

/* Run SQL without parameters (schema, transactions). */
bw_err db_exec(db *d, const char *sql) BW_MUST_USE;

bw_err db_prepare(db *d, const char *sql, db_stmt **out) BW_MUST_USE;
/*
 * Like db_prepare() for SQL run often on the same connection (per-request
 * queries): the statement is kept with the connection and reused. The key
 * is the SQL text (a copy is kept), so equal text from anywhere shares one
 * statement. The cache holds 64 statements; when it is full the least
 * recently used one not in use is finalized to make room, and when all are
 * in use the statement is prepared uncached (db_done() finalizes it). Give
 * it back with db_done(); db_finalize() also works and drops it from the
 * cache. Same errors as db_prepare().
 */
bw_err db_prepare_cached(db *d, const char *sql, db_stmt **out) BW_MUST_USE;
/* Reset a cached statement for its next use (or finalize an uncached one); accepts NULL. */
void db_done(db_stmt *s);
/* Statements held in d's cache now (for tests and metrics). */
size_t db_cached(const db *d);
/* Parameters are 1-based; values are copied. */
bw_err db_bind_int(db_stmt *s, int idx, int64_t v) BW_MUST_USE;
bw_err db_bind_text(db_stmt *s, int idx, const char *v) BW_MUST_USE;
bw_err db_bind_blob(db_stmt *s, int idx, const void *v, size_t n) BW_MUST_USE;
bw_err db_bind_null(db_stmt *s, int idx) BW_MUST_USE;

/*
 * A typed parameter, so that no value is ever formatted into text to be
 * bound: build them with DB_INT(v), DB_TEXT(s) (NULL binds SQL NULL),
 * DB_BLOB(p, n) and DB_NULL.
 */
enum db_arg_type { DB_ARG_NULL, DB_ARG_INT, DB_ARG_TEXT, DB_ARG_BLOB };
struct db_arg {
	int type; /* enum db_arg_type */
	int64_t i;
	const char *s;
	const void *p;
	size_t n;
};
#define DB_INT(v) ((struct db_arg){.type = DB_ARG_INT, .i = (v)})
#define DB_TEXT(v) ((struct db_arg){.type = DB_ARG_TEXT, .s = (v)})
#define DB_BLOB(v, len) ((struct db_arg){.type = DB_ARG_BLOB, .p = (v), .n = (len)})
#define DB_NULL ((struct db_arg){.type = DB_ARG_NULL})
/* An array of args and its length, as two function arguments (at least one arg). */
#define DB_ARGS(...)                                \
	(const struct db_arg[]){__VA_ARGS__},       \
	    sizeof((const struct db_arg[]){__VA_ARGS__}) / sizeof(struct db_arg)

/* Bind args[0..n-1] to parameters 1..n; the first bind error. */
bw_err db_bind_args(db_stmt *s, const struct db_arg *args, size_t n) BW_MUST_USE;
#define DB_BIND(s, ...) db_bind_args((s), DB_ARGS(__VA_ARGS__))
/*
 * Prepare sql through the statement cache (db_prepare_cached: the key is
 * the text, so this is right for compiled-in SQL and harmless for the odd
 * one-off, which the LRU soon evicts), bind the n args, step to the end
 * (rows are discarded) and give the statement back. db_step()'s errors.
 */
bw_err db_run(db *d, const char *sql, const struct db_arg *args, size_t n) BW_MUST_USE;
/* db_run with the args counted: DB_RUN(d, sql, DB_INT(id), DB_TEXT(s)). */
#define DB_RUN(d, sql, ...) db_run((d), (sql), DB_ARGS(__VA_ARGS__))
/*
 * db_run for a query of one integer (a COUNT, an EXISTS): the first
 * column of its first row into *out, 0 when there is no row (or the
 * value is NULL). db_step()'s errors, *out then 0.
 */
bw_err db_query_int(db *d, int64_t *out, const char *sql, const struct db_arg *args,
		    size_t n) BW_MUST_USE;
/* DB_QUERY_INT(d, &n, "SELECT COUNT(*) FROM t WHERE a = ?", DB_INT(a)). */
#define DB_QUERY_INT(d, out, sql, ...) db_query_int((d), (out), (sql), DB_ARGS(__VA_ARGS__))
/* db_run for an INSERT: the id it gave the new row into *id (0 on failure). */
bw_err db_insert(db *d, int64_t *id, const char *sql, const struct db_arg *args,
		 size_t n) BW_MUST_USE;
#define DB_INSERT(d, id, sql, ...) db_insert((d), (id), (sql), DB_ARGS(__VA_ARGS__))
/*
 * Execute (first call) and advance. *row is 1 while a row is available.
 * Unique-key violations are BW_ERR_CONFLICT, refused privileges
 * BW_ERR_DENIED, a lost server BW_ERR_UNAVAILABLE.
 */
bw_err db_step(db_stmt *s, int *row) BW_MUST_USE;
/* Column values of the current row, 0-based; pointers valid until the next step. */
int db_col_null(db_stmt *s, int col);
int64_t db_col_int(db_stmt *s, int col);
const char *db_col_text(db_stmt *s, int col); /* NULL for SQL NULL */
const void *db_col_blob(db_stmt *s, int col, size_t *len);
/* Rows changed by the last executed statement. */
int64_t db_changes(db_stmt *s);
int64_t db_last_id(db_stmt *s);
/* Clear bindings and results to run again. */
bw_err db_reset(db_stmt *s) BW_MUST_USE;
void db_finalize(db_stmt *s);

bw_err db_begin(db *d) BW_MUST_USE;
bw_err db_commit(db *d) BW_MUST_USE;
bw_err db_rollback(db *d);
int db_in_tx(const db *d);
/*
 * 1 when the last call on d that ran SQL (db_exec, db_prepare*, db_step,
 * db_run, db_begin, db_commit, db_ping) failed in a way a retry of the
 * whole transaction can cure: on MariaDB a deadlock (1213, also what Galera
 * raises at COMMIT when certification fails) or a lock wait timeout
 * (1205); on SQLite SQLITE_BUSY or SQLITE_LOCKED. 0 after such a call
 * succeeds or fails otherwise. The failing call returns its usual error
 * (BW_ERR_UNAVAILABLE for these); this is the extra signal. db_rollback,
 * db_done, db_finalize, db_reset and the binds leave it as it is, so it
 * can be asked after cleaning up: fail, db_rollback, then db_retryable.
 */
int db_retryable(const db *d);
/* Round trip to the server (or a trivial query on SQLite). */
bw_err db_ping(db *d) BW_MUST_USE;

/*
 * Dialect: portable DDL with @-tokens rewritten for the driver, the one
 * place types and table options differ. Tokens:
 *   @ID      integer primary key that auto-increments
 *   @INT     64-bit integer
 *   @STR(n)  text of at most n characters, indexable
 *   @TEXT    long text
 *   @BLOB    binary
 *   @OPTS    table options (engine, charset) after CREATE TABLE (...)
 * Returns a malloc'd string, or NULL on bad input, out of memory or past
 * 1 MiB of output.
 */
char *db_dialect_sql(enum db_driver drv, const char *portable);

#endif
