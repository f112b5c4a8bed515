/*
 * The driver-neutral half of db: dispatch, the statement cache, typed
 * arguments, transactions, the retry signal, the dialect.
 */
#include "db_int.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bw_err
db_open(const struct db_params *p, db **out, char *err, size_t errlen)
{
	*out = NULL;
	db *d = calloc(1, sizeof(*d));
	if (d == NULL)
		return BW_ERR_NOMEM;
	switch (p->driver) {
	case DB_SQLITE:
		d->ops = &db_sqlite_ops;
		break;
	case DB_MARIADB:
		d->ops = &db_mariadb_ops;
		break;
	default:
		free(d);
		snprintf(err, errlen, "unknown database driver");
		return BW_ERR_CONFIG;
	}
	d->driver = p->driver;
	bw_err e = d->ops->open(p, d, err, errlen);
	if (e != BW_OK) {
		free(d);
		return e;
	}
	*out = d;
	return BW_OK;
}

/* Finalize a statement and free it, without touching the cache. */
static void
db_stmt_free(db_stmt *s)
{
	s->conn->ops->finalize(s);
	free(s);
}

/* Empty a cache slot, finalizing its statement. */
static void
db_cache_drop(struct db_cache_entry *c)
{
	if (c->st != NULL)
		db_stmt_free(c->st);
	free(c->sql);
	memset(c, 0, sizeof(*c));
}

void
db_close(db *d)
{
	if (d == NULL)
		return;
	for (size_t i = 0; i < DB_STMT_CACHE; i++)
		db_cache_drop(&d->cache[i]);
	d->ops->close(d);
	free(d);
}

enum db_driver
db_driver_of(const db *d)
{
	return d->driver;
}

const char *
db_errmsg(const db *d)
{
	return d->err;
}

int
db_broken(const db *d)
{
	return d->broken;
}

int
db_retryable(const db *d)
{
	return d->retryable;
}

/*
 * Calls that run SQL start from "not retryable"; when they fail the
 * driver's error mapping says whether a retry could cure it.
 */
static bw_err
db_track(db *d)
{
	if (d->in_tx && d->tx_aborted) {
		d->retryable = 1; /* still: the transaction is to be run again */
		snprintf(d->err, sizeof(d->err), "the transaction was aborted (deadlock or lock "
						 "timeout); roll it back");
		return BW_ERR_UNAVAILABLE;
	}
	d->retryable = 0;
	return BW_OK;
}

/* After a call that ran SQL: a retryable failure inside a transaction aborts it. */
static bw_err
db_tracked(db *d, bw_err e)
{
	if (e != BW_OK && d->in_tx && d->retryable)
		d->tx_aborted = 1;
	return e;
}

bw_err
db_exec(db *d, const char *sql)
{
	bw_err e = db_track(d);
	if (e != BW_OK)
		return e;
	return db_tracked(d, d->ops->exec(d, sql));
}

bw_err
db_prepare(db *d, const char *sql, db_stmt **out)
{
	*out = NULL;
	bw_err e0 = db_track(d);
	if (e0 != BW_OK)
		return e0;
	db_stmt *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return BW_ERR_NOMEM;
	s->conn = d;
	s->slot = -1;
	bw_err e = db_tracked(d, d->ops->prepare(d, sql, s));
	if (e != BW_OK) {
		free(s);
		return e;
	}
	*out = s;
	return BW_OK;
}

/* FNV-1a over the text, and its length on the way. */
static uint64_t
db_sql_hash(const char *sql, size_t *len)
{
	uint64_t h = 14695981039346656037u;
	const unsigned char *p = (const unsigned char *)sql;
	for (; *p; p++) {
		h ^= *p;
		h *= 1099511628211u;
	}
	*len = (size_t)(p - (const unsigned char *)sql);
	return h;
}

bw_err
db_prepare_cached(db *d, const char *sql, db_stmt **out)
{
	struct db_cache_entry *empty = NULL, *lru = NULL;
	size_t len;
	uint64_t h = db_sql_hash(sql, &len);
	*out = NULL;
	bw_err e0 = db_track(d);
	if (e0 != BW_OK)
		return e0;
	for (size_t i = 0; i < DB_STMT_CACHE; i++) {
		struct db_cache_entry *c = &d->cache[i];
		if (c->st == NULL) {
			if (empty == NULL)
				empty = c;
			continue;
		}
		if (c->busy)
			continue;
		if (c->hash == h && strcmp(c->sql, sql) == 0) {
			bw_err e = db_reset(c->st);
			if (e != BW_OK)
				return e;
			c->busy = 1;
			c->used = ++d->tick;
			*out = c->st;
			return BW_OK;
		}
		if (lru == NULL || c->used < lru->used)
			lru = c;
	}
	db_stmt *s;
	bw_err e = db_prepare(d, sql, &s);
	if (e != BW_OK)
		return e;
	/*
	 * A free slot, else the least recently used statement not in use. With
	 * every one in use (nested callers), or no memory for the key, the
	 * statement runs uncached and db_done() finalizes it.
	 */
	struct db_cache_entry *slot = empty != NULL ? empty : lru;
	char *key = slot != NULL ? malloc(len + 1) : NULL;
	if (key != NULL) {
		memcpy(key, sql, len + 1);
		db_cache_drop(slot);
		slot->sql = key;
		slot->hash = h;
		slot->st = s;
		slot->busy = 1;
		slot->used = ++d->tick;
		s->slot = (int)(slot - d->cache);
	}
	*out = s;
	return BW_OK;
}

void
db_done(db_stmt *s)
{
	if (s == NULL)
		return;
	db *d = s->conn;
	if (s->slot < 0) {
		db_stmt_free(s);
		return;
	}
	int keep = d->retryable;
	if (d->ops->reset(s) != BW_OK)
		d->broken = 1;
	d->retryable = keep;
	d->cache[s->slot].busy = 0;
}

size_t
db_cached(const db *d)
{
	size_t n = 0;
	for (size_t i = 0; i < DB_STMT_CACHE; i++)
		n += d->cache[i].st != NULL;
	return n;
}

/* The binds never run SQL: whatever they hit, the retry signal stays. */
static bw_err
db_bind(db_stmt *s, int idx, int type, int64_t v, const void *p, size_t n)
{
	db *d = s->conn;
	int keep = d->retryable;
	bw_err e = d->ops->bind(s, idx, type, v, p, n);
	d->retryable = keep;
	return e;
}

bw_err
db_bind_int(db_stmt *s, int idx, int64_t v)
{
	return db_bind(s, idx, DB_BIND_INT, v, NULL, 0);
}

bw_err
db_bind_text(db_stmt *s, int idx, const char *v)
{
	if (v == NULL)
		return db_bind_null(s, idx);
	return db_bind(s, idx, DB_BIND_TEXT, 0, v, strlen(v));
}

bw_err
db_bind_blob(db_stmt *s, int idx, const void *v, size_t n)
{
	return db_bind(s, idx, DB_BIND_BLOB, 0, v, n);
}

bw_err
db_bind_null(db_stmt *s, int idx)
{
	return db_bind(s, idx, DB_BIND_NULL, 0, NULL, 0);
}

bw_err
db_bind_args(db_stmt *s, const struct db_arg *args, size_t n)
{
	if (n > INT_MAX)
		return BW_ERR_INVALID;
	bw_err e = BW_OK;
	for (size_t i = 0; i < n && e == BW_OK; i++) {
		int idx = (int)i + 1;
		switch (args[i].type) {
		case DB_ARG_NULL:
			e = db_bind_null(s, idx);
			break;
		case DB_ARG_INT:
			e = db_bind_int(s, idx, args[i].i);
			break;
		case DB_ARG_TEXT:
			e = db_bind_text(s, idx, args[i].s);
			break;
		case DB_ARG_BLOB:
			e = db_bind_blob(s, idx, args[i].p, args[i].n);
			break;
		default:
			abort();
		}
	}
	return e;
}

/* What db_run and its kin keep of the statement they run. */
enum db_keep {
	DB_KEEP_NOTHING, /* db_run: every row stepped and dropped */
	DB_KEEP_INT,     /* db_query_int: the first column of the first row */
	DB_KEEP_ID,      /* db_insert: the id the INSERT made */
};

/* Prepare sql through the cache, bind the args, run it, keep what keep says in *out. */
static bw_err
db_run_keep(db *d, const char *sql, const struct db_arg *args, size_t n, enum db_keep keep,
	    int64_t *out)
{
	db_stmt *s;
	int row = 0;
	*out = 0;
	bw_err e = db_prepare_cached(d, sql, &s);
	if (e != BW_OK)
		return e;
	if ((e = db_bind_args(s, args, n)) == BW_OK && (e = db_step(s, &row)) == BW_OK) {
		switch (keep) {
		case DB_KEEP_NOTHING:
			while (row && (e = db_step(s, &row)) == BW_OK)
				;
			break;
		case DB_KEEP_INT:
			if (row && !db_col_null(s, 0))
				*out = db_col_int(s, 0);
			break;
		case DB_KEEP_ID:
			*out = db_last_id(s);
			break;
		default:
			abort();
		}
	}
	db_done(s);
	if (e != BW_OK)
		*out = 0;
	return e;
}

bw_err
db_run(db *d, const char *sql, const struct db_arg *args, size_t n)
{
	int64_t none;
	return db_run_keep(d, sql, args, n, DB_KEEP_NOTHING, &none);
}

bw_err
db_query_int(db *d, int64_t *out, const char *sql, const struct db_arg *args, size_t n)
{
	return db_run_keep(d, sql, args, n, DB_KEEP_INT, out);
}

bw_err
db_insert(db *d, int64_t *id, const char *sql, const struct db_arg *args, size_t n)
{
	return db_run_keep(d, sql, args, n, DB_KEEP_ID, id);
}

bw_err
db_step(db_stmt *s, int *row)
{
	bw_err e = db_track(s->conn);
	if (e != BW_OK) {
		*row = 0;
		return e;
	}
	return db_tracked(s->conn, s->conn->ops->step(s, row));
}

int
db_col_null(db_stmt *s, int col)
{
	return s->conn->ops->col_null(s, col);
}

int64_t
db_col_int(db_stmt *s, int col)
{
	return s->conn->ops->col_int(s, col);
}

const char *
db_col_text(db_stmt *s, int col)
{
	size_t n;
	if (s->conn->ops->col_null(s, col))
		return NULL;
	return s->conn->ops->col_bytes(s, col, &n);
}

const void *
db_col_blob(db_stmt *s, int col, size_t *len)
{
	return s->conn->ops->col_bytes(s, col, len);
}

int64_t
db_changes(db_stmt *s)
{
	return s->conn->ops->changes(s);
}

int64_t
db_last_id(db_stmt *s)
{
	return s->conn->ops->last_id(s);
}

bw_err
db_reset(db_stmt *s)
{
	db *d = s->conn;
	int keep = d->retryable;
	bw_err e = d->ops->reset(s);
	d->retryable = keep;
	return e;
}

void
db_finalize(db_stmt *s)
{
	if (s == NULL)
		return;
	/* A cached statement finalized by mistake leaves the cache with it. */
	if (s->slot >= 0)
		db_cache_drop(&s->conn->cache[s->slot]);
	else
		db_stmt_free(s);
}

bw_err
db_begin(db *d)
{
	if (d->in_tx)
		return BW_ERR_INTERNAL;
	/* IMMEDIATE takes SQLite's write lock up front: no upgrade deadlock later. */
	d->tx_aborted = 0;
	bw_err e = db_exec(d, d->driver == DB_SQLITE ? "BEGIN IMMEDIATE" : "START TRANSACTION");
	if (e == BW_OK)
		d->in_tx = 1;
	return e;
}

bw_err
db_commit(db *d)
{
	if (!d->in_tx)
		return BW_ERR_INTERNAL;
	bw_err e = db_exec(d, "COMMIT");
	if (e == BW_OK)
		d->in_tx = 0;
	return e;
}

bw_err
db_rollback(db *d)
{
	if (!d->in_tx)
		return BW_OK;
	/* Cleanup after a failure: the failure's retry signal survives it. */
	int keep = d->retryable;
	bw_err e = d->ops->exec(d, "ROLLBACK");
	d->retryable = keep;
	d->in_tx = 0;
	d->tx_aborted = 0;
	if (e != BW_OK)
		d->broken = 1; /* state unknown: never hand this connection out again */
	return e;
}

int
db_in_tx(const db *d)
{
	return d->in_tx;
}

bw_err
db_ping(db *d)
{
	db_stmt *s;
	int row;
	bw_err e = db_prepare(d, "SELECT 1", &s);
	if (e != BW_OK)
		return e;
	e = db_step(s, &row);
	db_finalize(s);
	return e;
}

/* --- dialect ------------------------------------------------------------ */

/* Longest SQL the dialect writes: far above any schema, far below harm. */
#define DB_DIALECT_MAX ((size_t)1 << 20)

char *
db_dialect_sql(enum db_driver drv, const char *in)
{
	struct buf b;
	char *out = NULL;
	int my = drv == DB_MARIADB;
	buf_init(&b, DB_DIALECT_MAX);
	const char *p = in;
	while (*p) {
		const char *at = strchr(p, '@');
		if (at == NULL) {
			if (buf_append_str(&b, p) != BW_OK)
				goto fail;
			break;
		}
		if (buf_append(&b, p, (size_t)(at - p)) != BW_OK)
			goto fail;
		const char *rep = NULL;
		char tmp[64];
		size_t used = 0;
		if (strncmp(at, "@ID", 3) == 0) {
			rep = my ? "BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY"
				 : "INTEGER PRIMARY KEY AUTOINCREMENT";
			used = 3;
		} else if (strncmp(at, "@INT", 4) == 0) {
			rep = my ? "BIGINT" : "INTEGER";
			used = 4;
		} else if (strncmp(at, "@TEXT", 5) == 0) {
			rep = my ? "LONGTEXT" : "TEXT";
			used = 5;
		} else if (strncmp(at, "@BLOB", 5) == 0) {
			rep = my ? "LONGBLOB" : "BLOB";
			used = 5;
		} else if (strncmp(at, "@OPTS", 5) == 0) {
			rep = my ? " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin" : "";
			used = 5;
		} else if (strncmp(at, "@STR(", 5) == 0) {
			char *end;
			long n = strtol(at + 5, &end, 10);
			if (*end != ')' || n < 1 || n > 16000)
				goto fail;
			snprintf(tmp, sizeof(tmp), my ? "VARCHAR(%ld)" : "TEXT", n);
			rep = tmp;
			used = (size_t)(end + 1 - at);
		} else {
			goto fail;
		}
		if (buf_append_str(&b, rep) != BW_OK)
			goto fail;
		p = at + used;
	}
	if (buf_take(&b, &out, NULL) != BW_OK)
		goto fail;
	return out;
fail:
	buf_free(&b);
	return NULL;
}
