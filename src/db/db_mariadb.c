/*
 * MariaDB backend over MariaDB Connector/C's prepared-statement API.
 * Results are stored client-side (mysql_stmt_store_result) so a caller can
 * run other statements while iterating, and every column is fetched as
 * text or bytes into a buffer grown to fit, so no value is ever truncated.
 * LOAD DATA LOCAL and multi-statements are off.
 */
#include "db_int.h"

#include <errno.h>
#include <mysql.h>
#include <mysqld_error.h>
#include <errmsg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct my_param {
	int type;
	int64_t i;
	char *buf;
	unsigned long len;
};

struct my_col {
	char *buf;
	size_t cap;
	unsigned long len;
	my_bool is_null, error;
};

struct my_stmt {
	MYSQL_STMT *st;
	unsigned nparams, ncols;
	struct my_param *pv;
	MYSQL_BIND *pb, *rb;
	struct my_col *col;
	int executed, done;
	int64_t changes, last_id;
};

static MYSQL *
my(db *d)
{
	return d->impl;
}

static bw_err
my_map(db *d, unsigned no, const char *msg)
{
	snprintf(d->err, sizeof(d->err), "mariadb %u: %s", no, msg);
	/*
	 * InnoDB chose this transaction as a deadlock's victim (Galera raises
	 * the same at COMMIT when certification fails), or a row lock was not
	 * granted in time: running the transaction again can succeed.
	 */
	d->retryable = no == ER_LOCK_DEADLOCK || no == ER_LOCK_WAIT_TIMEOUT;
	switch (no) {
	case ER_DUP_ENTRY:
	case ER_DUP_KEY:
		return BW_ERR_CONFLICT;
	case ER_ACCESS_DENIED_ERROR:
	case ER_DBACCESS_DENIED_ERROR:
	case ER_TABLEACCESS_DENIED_ERROR:
	case ER_COLUMNACCESS_DENIED_ERROR:
	case ER_SPECIFIC_ACCESS_DENIED_ERROR:
	case ER_ACCESS_DENIED_NO_PASSWORD_ERROR:
		return BW_ERR_DENIED;
	case ER_LOCK_DEADLOCK:
	case ER_LOCK_WAIT_TIMEOUT:
		return BW_ERR_UNAVAILABLE;
	case CR_CONNECTION_ERROR:
	case CR_CONN_HOST_ERROR:
	case CR_SERVER_GONE_ERROR:
	case CR_SERVER_LOST:
	case CR_SERVER_LOST_EXTENDED:
	case CR_UNKNOWN_HOST:
	case ER_SERVER_SHUTDOWN:
	case ER_CON_COUNT_ERROR:
		d->broken = 1;
		return BW_ERR_UNAVAILABLE;
	default:
		return BW_ERR_DB;
	}
}

static bw_err
my_conn_error(db *d)
{
	return my_map(d, mysql_errno(my(d)), mysql_error(my(d)));
}

static bw_err
my_stmt_error(db_stmt *s)
{
	struct my_stmt *x = s->impl;
	return my_map(s->conn, mysql_stmt_errno(x->st), mysql_stmt_error(x->st));
}

static bw_err
my_open(const struct db_params *p, db *d, char *err, size_t errlen)
{
	MYSQL *m = mysql_init(NULL);
	if (m == NULL)
		return BW_ERR_NOMEM;
	unsigned timeout = p->connect_timeout ? p->connect_timeout : 5;
	unsigned rw_timeout = 30;
	my_bool off = 0;
	mysql_options(m, MYSQL_OPT_CONNECT_TIMEOUT, &timeout);
	mysql_options(m, MYSQL_OPT_READ_TIMEOUT, &rw_timeout);
	mysql_options(m, MYSQL_OPT_WRITE_TIMEOUT, &rw_timeout);
	mysql_options(m, MYSQL_OPT_LOCAL_INFILE, &off);
	mysql_options(m, MYSQL_SET_CHARSET_NAME, "utf8mb4");
	/*
	 * READ COMMITTED: a statement reads what is committed when it runs.
	 * Under InnoDB's default (REPEATABLE READ) a transaction keeps reading
	 * the snapshot of its first read, so a row locked and then read could
	 * still show the state from before the lock was granted (a voided
	 * invoice read as sent). SQLite's writers are serialised anyway.
	 */
	mysql_options(m, MYSQL_INIT_COMMAND, "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED");
	const char *host = p->host != NULL && p->host[0] != '\0' ? p->host : NULL;
	const char *sock = p->socket != NULL && p->socket[0] != '\0' ? p->socket : NULL;
	if (host == NULL && sock == NULL)
		host = "localhost";
	/* FOUND_ROWS: "rows changed" counts rows matched, as SQLite does. */
	if (mysql_real_connect(m, host, p->user, p->password, p->database, p->port, sock,
			       CLIENT_FOUND_ROWS) == NULL) {
		unsigned no = mysql_errno(m);
		snprintf(err, errlen, "cannot connect to MariaDB at %s as %s: %s",
			 sock ? sock : host, p->user ? p->user : "(default user)", mysql_error(m));
		mysql_close(m);
		if (no == ER_ACCESS_DENIED_ERROR || no == ER_DBACCESS_DENIED_ERROR)
			return BW_ERR_DENIED;
		if (no == ER_BAD_DB_ERROR)
			return BW_ERR_NOTFOUND;
		return BW_ERR_UNAVAILABLE;
	}
	d->impl = m;
	/* Strict SQL: an over-long or invalid value is an error, never silently cut. */
	if (mysql_query(m, "SET SESSION sql_mode='STRICT_ALL_TABLES,NO_ZERO_DATE,"
			   "NO_ENGINE_SUBSTITUTION,ERROR_FOR_DIVISION_BY_ZERO'") != 0) {
		snprintf(err, errlen, "MariaDB session setup: %s", mysql_error(m));
		mysql_close(m);
		d->impl = NULL;
		return BW_ERR_DB;
	}
	return BW_OK;
}

static void
my_close(db *d)
{
	if (d->impl != NULL)
		mysql_close(my(d));
	d->impl = NULL;
}

static bw_err
my_exec(db *d, const char *sql)
{
	if (mysql_real_query(my(d), sql, strlen(sql)) != 0)
		return my_conn_error(d);
	MYSQL_RES *r = mysql_store_result(my(d));
	if (r != NULL)
		mysql_free_result(r);
	else if (mysql_errno(my(d)) != 0)
		return my_conn_error(d);
	return BW_OK;
}

static void
my_stmt_free(struct my_stmt *x)
{
	if (x == NULL)
		return;
	if (x->st != NULL)
		mysql_stmt_close(x->st);
	for (unsigned i = 0; x->pv && i < x->nparams; i++)
		free(x->pv[i].buf);
	for (unsigned i = 0; x->col && i < x->ncols; i++)
		free(x->col[i].buf);
	free(x->pv);
	free(x->pb);
	free(x->rb);
	free(x->col);
	free(x);
}

static bw_err
my_prepare(db *d, const char *sql, db_stmt *s)
{
	struct my_stmt *x = calloc(1, sizeof(*x));
	if (x == NULL)
		return BW_ERR_NOMEM;
	if ((x->st = mysql_stmt_init(my(d))) == NULL) {
		free(x);
		return my_conn_error(d);
	}
	if (mysql_stmt_prepare(x->st, sql, strlen(sql)) != 0) {
		bw_err e = my_map(d, mysql_stmt_errno(x->st), mysql_stmt_error(x->st));
		my_stmt_free(x);
		return e;
	}
	x->nparams = (unsigned)mysql_stmt_param_count(x->st);
	x->ncols = mysql_stmt_field_count(x->st);
	x->pv = calloc(x->nparams + 1, sizeof(*x->pv));
	x->pb = calloc(x->nparams + 1, sizeof(*x->pb));
	x->rb = calloc(x->ncols + 1, sizeof(*x->rb));
	x->col = calloc(x->ncols + 1, sizeof(*x->col));
	if (!x->pv || !x->pb || !x->rb || !x->col) {
		my_stmt_free(x);
		return BW_ERR_NOMEM;
	}
	s->impl = x;
	return BW_OK;
}

static bw_err
my_bind(db_stmt *s, int idx, int type, int64_t iv, const void *p, size_t n)
{
	struct my_stmt *x = s->impl;
	if (idx < 1 || (unsigned)idx > x->nparams || n > 0xffffffffu)
		return BW_ERR_INVALID;
	struct my_param *v = &x->pv[idx - 1];
	free(v->buf);
	v->buf = NULL;
	v->type = type;
	v->i = iv;
	v->len = 0;
	if (type == DB_BIND_TEXT || type == DB_BIND_BLOB) {
		v->buf = malloc(n + 1);
		if (v->buf == NULL)
			return BW_ERR_NOMEM;
		if (n)
			memcpy(v->buf, p, n);
		v->len = (unsigned long)n;
	}
	return BW_OK;
}

static bw_err
my_execute(db_stmt *s)
{
	struct my_stmt *x = s->impl;
	for (unsigned i = 0; i < x->nparams; i++) {
		MYSQL_BIND *b = &x->pb[i];
		struct my_param *v = &x->pv[i];
		memset(b, 0, sizeof(*b));
		switch (v->type) {
		case DB_BIND_INT:
			b->buffer_type = MYSQL_TYPE_LONGLONG;
			b->buffer = &v->i;
			break;
		case DB_BIND_TEXT:
		case DB_BIND_BLOB:
			b->buffer_type = v->type == DB_BIND_TEXT ? MYSQL_TYPE_STRING : MYSQL_TYPE_BLOB;
			b->buffer = v->buf;
			b->buffer_length = v->len;
			b->length = &v->len;
			break;
		default:
			b->buffer_type = MYSQL_TYPE_NULL;
			break;
		}
	}
	if (x->nparams && mysql_stmt_bind_param(x->st, x->pb) != 0)
		return my_stmt_error(s);
	if (mysql_stmt_execute(x->st) != 0)
		return my_stmt_error(s);
	x->executed = 1;
	if (x->ncols == 0) {
		x->changes = (int64_t)mysql_stmt_affected_rows(x->st);
		x->last_id = (int64_t)mysql_stmt_insert_id(x->st);
		x->done = 1;
		return BW_OK;
	}
	if (mysql_stmt_store_result(x->st) != 0)
		return my_stmt_error(s);
	/* No buffers yet: fetch reports lengths, then each column is fetched to fit. */
	for (unsigned i = 0; i < x->ncols; i++) {
		MYSQL_BIND *b = &x->rb[i];
		memset(b, 0, sizeof(*b));
		b->buffer_type = MYSQL_TYPE_STRING;
		b->length = &x->col[i].len;
		b->is_null = &x->col[i].is_null;
		b->error = &x->col[i].error;
	}
	if (mysql_stmt_bind_result(x->st, x->rb) != 0)
		return my_stmt_error(s);
	return BW_OK;
}

static bw_err
my_step(db_stmt *s, int *row)
{
	struct my_stmt *x = s->impl;
	bw_err e;
	*row = 0;
	if (x->done)
		return BW_OK;
	if (!x->executed && (e = my_execute(s)) != BW_OK)
		return e;
	if (x->done)
		return BW_OK;
	int r = mysql_stmt_fetch(x->st);
	if (r == MYSQL_NO_DATA) {
		x->done = 1;
		return BW_OK;
	}
	if (r == 1)
		return my_stmt_error(s);
	for (unsigned i = 0; i < x->ncols; i++) {
		struct my_col *c = &x->col[i];
		if (c->is_null)
			continue;
		if ((size_t)c->len + 1 > c->cap) {
			char *nb = realloc(c->buf, (size_t)c->len + 1);
			if (nb == NULL)
				return BW_ERR_NOMEM;
			c->buf = nb;
			c->cap = (size_t)c->len + 1;
		}
		MYSQL_BIND b;
		memset(&b, 0, sizeof(b));
		unsigned long got = 0;
		b.buffer_type = MYSQL_TYPE_STRING;
		b.buffer = c->buf;
		b.buffer_length = (unsigned long)c->cap;
		b.length = &got;
		if (c->len > 0 && mysql_stmt_fetch_column(x->st, &b, i, 0) != 0)
			return my_stmt_error(s);
		c->buf[c->len] = '\0';
	}
	*row = 1;
	return BW_OK;
}

static int
my_col_null(db_stmt *s, int col)
{
	struct my_stmt *x = s->impl;
	return col < 0 || (unsigned)col >= x->ncols || x->col[col].is_null;
}

static int64_t
my_col_int(db_stmt *s, int col)
{
	struct my_stmt *x = s->impl;
	if (my_col_null(s, col) || x->col[col].buf == NULL)
		return 0;
	return strtoll(x->col[col].buf, NULL, 10);
}

static const void *
my_col_bytes(db_stmt *s, int col, size_t *len)
{
	struct my_stmt *x = s->impl;
	*len = 0;
	if (my_col_null(s, col))
		return NULL;
	*len = x->col[col].len;
	return x->col[col].buf ? x->col[col].buf : "";
}

static int64_t
my_changes(db_stmt *s)
{
	return ((struct my_stmt *)s->impl)->changes;
}

static int64_t
my_last_id(db_stmt *s)
{
	return ((struct my_stmt *)s->impl)->last_id;
}

static bw_err
my_reset(db_stmt *s)
{
	struct my_stmt *x = s->impl;
	/*
	 * Freeing the stored result is enough to execute again; we never send
	 * long data or open cursors, so no COM_STMT_RESET round trip.
	 */
	if (mysql_stmt_free_result(x->st) != 0)
		return my_stmt_error(s);
	for (unsigned i = 0; i < x->nparams; i++) {
		free(x->pv[i].buf);
		memset(&x->pv[i], 0, sizeof(x->pv[i]));
	}
	x->executed = x->done = 0;
	return BW_OK;
}

static void
my_finalize(db_stmt *s)
{
	my_stmt_free(s->impl);
	s->impl = NULL;
}

const struct db_ops db_mariadb_ops = {
	.open = my_open,
	.close = my_close,
	.exec = my_exec,
	.prepare = my_prepare,
	.bind = my_bind,
	.step = my_step,
	.col_null = my_col_null,
	.col_int = my_col_int,
	.col_bytes = my_col_bytes,
	.changes = my_changes,
	.last_id = my_last_id,
	.reset = my_reset,
	.finalize = my_finalize,
};
