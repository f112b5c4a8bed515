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
/*
 * 1 when the last failure on d was a deadlock or a write conflict that
 * running the transaction again can cure, else 0.
 */
int db_retryable(const db *d);

/* Run SQL without parameters (schema, transactions). */
bw_err db_exec(db *d, const char *sql) BW_MUST_USE;

bw_err db_prepare(db *d, const char *sql, db_stmt **out) BW_MUST_USE;
/*
 * Like db_prepare() for SQL that is a compiled-in constant and run often on
 * the same connection (per-request queries): the statement is kept with the
 * connection and reused. Give it back with db_done(), never db_finalize().
 */
bw_err db_prepare_cached(db *d, const char *sql, db_stmt **out) BW_MUST_USE;
/* Reset a cached statement for its next use (or finalize an uncached one). */
void db_done(db_stmt *s);
/* Parameters are 1-based; values are copied. */
bw_err db_bind_int(db_stmt *s, int idx, int64_t v) BW_MUST_USE;
bw_err db_bind_text(db_stmt *s, int idx, const char *v) BW_MUST_USE;
bw_err db_bind_blob(db_stmt *s, int idx, const void *v, size_t n) BW_MUST_USE;
bw_err db_bind_null(db_stmt *s, int idx) BW_MUST_USE;
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
 * Returns a malloc'd string or NULL on bad input/OOM.
 */
char *db_dialect_sql(enum db_driver drv, const char *portable);

/* Convenience: prepare, bind text params (NULL-terminated list), step to done. */
bw_err db_exec_params(db *d, const char *sql, const char *const *params) BW_MUST_USE;

/* --- driver vtable (db.c dispatches; each backend fills one) ------------ */
struct db_ops {
	bw_err (*open)(const struct db_params *, db *, char *, size_t);
	void (*close)(db *);
	bw_err (*exec)(db *, const char *);
	bw_err (*prepare)(db *, const char *, db_stmt *);
	bw_err (*bind)(db_stmt *, int, int type, int64_t, const void *, size_t);
	bw_err (*step)(db_stmt *, int *);
	int (*col_null)(db_stmt *, int);
	int64_t (*col_int)(db_stmt *, int);
	const void *(*col_bytes)(db_stmt *, int, size_t *);
	int64_t (*changes)(db_stmt *);
	int64_t (*last_id)(db_stmt *);
	bw_err (*reset)(db_stmt *);
	void (*finalize)(db_stmt *);
};

enum { DB_BIND_NULL, DB_BIND_INT, DB_BIND_TEXT, DB_BIND_BLOB };

#define DB_STMT_CACHE 64

struct db {
	const struct db_ops *ops;
	enum db_driver driver;
	void *impl;
	int in_tx;
	int broken;
	char err[512];
	struct {
		const char *sql; /* compared by address: compiled-in SQL only */
		db_stmt *st;
		int busy;
	} cache[DB_STMT_CACHE];
};

struct db_stmt {
	db *conn;
	void *impl;
};

extern const struct db_ops db_sqlite_ops;
extern const struct db_ops db_mariadb_ops;

#endif
