/*
 * SQLite backend. Each connection is used by one thread at a time (the
 * pool guarantees it), so it is opened NOMUTEX. ATTACH, DETACH and
 * extension loading are refused by an authorizer and by limits, so SQL on
 * one tenant's file cannot reach another tenant's file.
 */
#include "db_int.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sq_stmt {
	sqlite3_stmt *st;
	int done;
	int64_t changes, last_id;
};

static sqlite3 *
sq(db *d)
{
	return d->impl;
}

static bw_err
sq_error(db *d, int rc)
{
	snprintf(d->err, sizeof(d->err), "sqlite: %s", d->impl ? sqlite3_errmsg(sq(d)) : sqlite3_errstr(rc));
	/* Another connection's lock (past the busy timeout, or a stale WAL snapshot). */
	d->retryable = (rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED;
	switch (rc & 0xff) {
	case SQLITE_CONSTRAINT:
		if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY)
			return BW_ERR_CONFLICT;
		return BW_ERR_INVALID;
	case SQLITE_AUTH:
	case SQLITE_PERM:
		return BW_ERR_DENIED;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
	case SQLITE_CANTOPEN:
		return BW_ERR_UNAVAILABLE;
	case SQLITE_NOMEM:
		return BW_ERR_NOMEM;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
	case SQLITE_IOERR:
		d->broken = 1;
		return BW_ERR_DB;
	default:
		return BW_ERR_DB;
	}
}

static int
sq_authorizer(void *ud, int action, const char *a, const char *b, const char *c, const char *e)
{
	(void)ud, (void)a, (void)c, (void)e;
	switch (action) {
	case SQLITE_ATTACH:
	case SQLITE_DETACH:
		return SQLITE_DENY;
	case SQLITE_FUNCTION:
		/* For functions the name comes in the fourth argument. */
		if (b != NULL && sqlite3_stricmp(b, "load_extension") == 0)
			return SQLITE_DENY;
		return SQLITE_OK;
	default:
		return SQLITE_OK;
	}
}

static bw_err
sq_open(const struct db_params *p, db *d, char *err, size_t errlen)
{
	sqlite3 *h = NULL;
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE;
	if (p->create)
		flags |= SQLITE_OPEN_CREATE;
	int rc = sqlite3_open_v2(p->path, &h, flags, NULL);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "cannot open %s: %s", p->path, h ? sqlite3_errmsg(h) : sqlite3_errstr(rc));
		sqlite3_close(h);
		return BW_ERR_UNAVAILABLE;
	}
	d->impl = h;
	sqlite3_extended_result_codes(h, 1);
	sqlite3_busy_timeout(h, 5000);
	sqlite3_db_config(h, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, NULL);
	sqlite3_db_config(h, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
	sqlite3_db_config(h, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
	/*
	 * Pooled connections open and close often; checkpointing (and fsyncing)
	 * the WAL at every close would cost more than the query. Checkpoints
	 * still happen as the WAL grows (wal_autocheckpoint).
	 */
	sqlite3_db_config(h, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
	sqlite3_limit(h, SQLITE_LIMIT_ATTACHED, 0);
	static const char *const pragmas[] = {
	    "PRAGMA journal_mode=WAL",
	    "PRAGMA synchronous=NORMAL",
	    "PRAGMA foreign_keys=ON",
	    "PRAGMA secure_delete=ON",
	};
	for (size_t i = 0; i < BW_ARRAY_LEN(pragmas); i++) {
		rc = sqlite3_exec(h, pragmas[i], NULL, NULL, NULL);
		if (rc != SQLITE_OK) {
			snprintf(err, errlen, "%s: %s: %s", p->path, pragmas[i], sqlite3_errmsg(h));
			sqlite3_close(h);
			d->impl = NULL;
			return (rc & 0xff) == SQLITE_NOTADB ? BW_ERR_DB : BW_ERR_UNAVAILABLE;
		}
	}
	/* Installed last: the pragmas above are ours; everything after is checked. */
	sqlite3_set_authorizer(h, sq_authorizer, NULL);
	return BW_OK;
}

static void
sq_close(db *d)
{
	if (d->impl != NULL)
		sqlite3_close_v2(sq(d));
	d->impl = NULL;
}

static bw_err
sq_exec(db *d, const char *sql)
{
	int rc = sqlite3_exec(sq(d), sql, NULL, NULL, NULL);
	return rc == SQLITE_OK ? BW_OK : sq_error(d, rc);
}

static bw_err
sq_prepare(db *d, const char *sql, db_stmt *s)
{
	struct sq_stmt *x = calloc(1, sizeof(*x));
	if (x == NULL)
		return BW_ERR_NOMEM;
	const char *tail = NULL;
	int rc = sqlite3_prepare_v3(sq(d), sql, -1, 0, &x->st, &tail);
	if (rc != SQLITE_OK) {
		free(x);
		return sq_error(d, rc);
	}
	if (x->st == NULL || (tail != NULL && strspn(tail, " \t\r\n;") != strlen(tail))) {
		/* One statement per prepare: no smuggled second statement. */
		sqlite3_finalize(x->st);
		free(x);
		snprintf(d->err, sizeof(d->err), "sqlite: expected exactly one statement");
		return BW_ERR_INVALID;
	}
	s->impl = x;
	return BW_OK;
}

static bw_err
sq_bind(db_stmt *s, int idx, int type, int64_t iv, const void *p, size_t n)
{
	struct sq_stmt *x = s->impl;
	int rc;
	switch (type) {
	case DB_BIND_NULL:
		rc = sqlite3_bind_null(x->st, idx);
		break;
	case DB_BIND_INT:
		rc = sqlite3_bind_int64(x->st, idx, iv);
		break;
	case DB_BIND_TEXT:
		rc = sqlite3_bind_text64(x->st, idx, p, n, SQLITE_TRANSIENT, SQLITE_UTF8);
		break;
	case DB_BIND_BLOB:
		rc = sqlite3_bind_blob64(x->st, idx, n ? p : "", n, SQLITE_TRANSIENT);
		break;
	default:
		abort();
	}
	return rc == SQLITE_OK ? BW_OK : sq_error(s->conn, rc);
}

static bw_err
sq_step(db_stmt *s, int *row)
{
	struct sq_stmt *x = s->impl;
	*row = 0;
	if (x->done)
		return BW_OK;
	int rc = sqlite3_step(x->st);
	if (rc == SQLITE_ROW) {
		*row = 1;
		return BW_OK;
	}
	x->done = 1;
	if (rc == SQLITE_DONE) {
		sqlite3 *h = sq(s->conn);
		x->changes = sqlite3_changes64(h);
		x->last_id = sqlite3_last_insert_rowid(h);
		return BW_OK;
	}
	return sq_error(s->conn, rc);
}

static int
sq_col_null(db_stmt *s, int col)
{
	return sqlite3_column_type(((struct sq_stmt *)s->impl)->st, col) == SQLITE_NULL;
}

static int64_t
sq_col_int(db_stmt *s, int col)
{
	return sqlite3_column_int64(((struct sq_stmt *)s->impl)->st, col);
}

static const void *
sq_col_bytes(db_stmt *s, int col, size_t *len)
{
	sqlite3_stmt *st = ((struct sq_stmt *)s->impl)->st;
	const void *p = sqlite3_column_type(st, col) == SQLITE_BLOB ? sqlite3_column_blob(st, col)
								      : (const void *)sqlite3_column_text(st, col);
	*len = (size_t)sqlite3_column_bytes(st, col);
	return p;
}

static int64_t
sq_changes(db_stmt *s)
{
	return ((struct sq_stmt *)s->impl)->changes;
}

static int64_t
sq_last_id(db_stmt *s)
{
	return ((struct sq_stmt *)s->impl)->last_id;
}

static bw_err
sq_reset(db_stmt *s)
{
	struct sq_stmt *x = s->impl;
	sqlite3_reset(x->st);
	sqlite3_clear_bindings(x->st);
	x->done = 0;
	return BW_OK;
}

static void
sq_finalize(db_stmt *s)
{
	struct sq_stmt *x = s->impl;
	if (x == NULL)
		return;
	sqlite3_finalize(x->st);
	free(x);
}

const struct db_ops db_sqlite_ops = {
	.open = sq_open,
	.close = sq_close,
	.exec = sq_exec,
	.prepare = sq_prepare,
	.bind = sq_bind,
	.step = sq_step,
	.col_null = sq_col_null,
	.col_int = sq_col_int,
	.col_bytes = sq_col_bytes,
	.changes = sq_changes,
	.last_id = sq_last_id,
	.reset = sq_reset,
	.finalize = sq_finalize,
};
