/*
 * db internals shared by db.c and the two backends (db_sqlite.c,
 * db_mariadb.c), and by nothing else: the connection and statement
 * structs, the driver vtable and the statement cache. Everyone else sees
 * db and db_stmt as opaque through db.h.
 */
#ifndef BW_DB_INT_H
#define BW_DB_INT_H

#include "db.h"

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

/* Statements kept per connection by db_prepare_cached(). */
#define DB_STMT_CACHE 64

struct db_cache_entry {
	char *sql;     /* malloc'd copy of the text: the key, with hash */
	uint64_t hash; /* of sql, to skip most string compares */
	db_stmt *st;   /* NULL: the slot is free */
	uint64_t used; /* db.tick when last handed out: the LRU order */
	int busy;      /* handed out and not given back with db_done() */
};

struct db {
	const struct db_ops *ops;
	enum db_driver driver;
	void *impl;
	int in_tx;
	int broken;
	/*
	 * Set by the drivers' error mapping on every error they map: 1 for a
	 * deadlock, lock wait timeout, busy or locked database, else 0. db.c
	 * clears it when a call that runs SQL starts (see db_retryable()).
	 */
	int retryable;
	/*
	 * Set when a statement inside a transaction failed retryably: MariaDB
	 * has then rolled the whole transaction back (1213), and whatever ran
	 * next would run in autocommit, one statement at a time. Until the
	 * rollback, every call that runs SQL refuses, and so does COMMIT.
	 */
	int tx_aborted;
	uint64_t tick;
	char err[512];
	struct db_cache_entry cache[DB_STMT_CACHE];
};

struct db_stmt {
	db *conn;
	void *impl;
	int slot; /* index in conn->cache, or -1 when not cached */
};

extern const struct db_ops db_sqlite_ops;
extern const struct db_ops db_mariadb_ops;

#endif
