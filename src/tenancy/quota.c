/*
 * Storage quotas, in the control database: every app server sees the same
 * numbers. A reservation is taken before an upload's body is read, for its
 * Content-Length, in one transaction that locks the tenant's usage row (on
 * SQLite the database's write lock, BEGIN IMMEDIATE), so two uploads can
 * never both fit into the same free space. It becomes "used" when the file
 * is stored and is dropped when the upload fails; one left behind by a
 * crash lapses after QUOTA_RESERVATION_SECONDS.
 *
 * Request threads share one control connection of the quotas' own, one
 * at a time (the statements are short); it is reopened when it breaks.
 */
#include "tenancy.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

/* The quotas' connection, locked; *d NULL when it cannot be had (lock released). */
static bw_err
quota_db(struct tenancy *t, db **d, pthread_mutex_t **lock)
{
	db **slot;
	char err[256];
	*lock = tenancy_quota_lock(t, &slot);
	pthread_mutex_lock(*lock);
	if (*slot != NULL && db_broken(*slot)) {
		db_close(*slot);
		*slot = NULL;
	}
	if (*slot == NULL && tenancy_control_open(t, slot, err, sizeof(err)) != BW_OK) {
		log_warn("storage quotas: control database unavailable: %s", err);
		pthread_mutex_unlock(*lock);
		return BW_ERR_UNAVAILABLE;
	}
	*d = *slot;
	return BW_OK;
}

/*
 * Inside a transaction: the usage row of slug (made when missing), locked,
 * with the plan's limit and the live reservations.
 */
static bw_err
quota_read(db *d, const char *slug, int64_t now, int lock, struct quota_usage *u)
{
	db_stmt *s;
	int row = 0;
	bw_err e;
	memset(u, 0, sizeof(*u));
	if ((e = db_prepare_cached(d,
				   "SELECT p.name, p.storage_bytes FROM tenants t JOIN plans p"
				   " ON p.id = t.plan_id WHERE t.slug = ?",
				   &s)) != BW_OK)
		return e;
	if ((e = DB_BIND(s, DB_TEXT(slug))) == BW_OK && (e = db_step(s, &row)) == BW_OK && row) {
		snprintf(u->plan, sizeof(u->plan), "%s", db_col_text(s, 0) ? db_col_text(s, 0) : "");
		u->limit = db_col_int(s, 1);
	}
	db_done(s);
	if (e != BW_OK)
		return e;
	if (!row)
		return BW_ERR_NOTFOUND;
	/* Made on first use (tenants older than quotas); a race to make it is a conflict, retried. */
	if ((e = DB_RUN(d,
			db_driver_of(d) == DB_MARIADB
			    ? "INSERT IGNORE INTO storage_usage (tenant_slug, used, updated_at) VALUES (?, 0, ?)"
			    : "INSERT OR IGNORE INTO storage_usage (tenant_slug, used, updated_at) VALUES (?, 0, ?)",
			DB_TEXT(slug), DB_INT(now))) != BW_OK)
		return e;
	const char *sql = lock && db_driver_of(d) == DB_MARIADB
			      ? "SELECT used FROM storage_usage WHERE tenant_slug = ? FOR UPDATE"
			      : "SELECT used FROM storage_usage WHERE tenant_slug = ?";
	if ((e = DB_QUERY_INT(d, &u->used, sql, DB_TEXT(slug))) != BW_OK)
		return e;
	return DB_QUERY_INT(d, &u->reserved,
			    "SELECT COALESCE(SUM(bytes), 0) FROM storage_reservations"
			    " WHERE tenant_slug = ? AND expires_at > ?",
			    DB_TEXT(slug), DB_INT(now));
}

bw_err
quota_reserve(struct tenancy *t, const char *slug, int64_t bytes, int64_t *id,
	      struct quota_usage *u)
{
	struct quota_usage mine;
	pthread_mutex_t *lock;
	db *d;
	int64_t now = (int64_t)time(NULL);
	*id = 0;
	if (u == NULL)
		u = &mine;
	if (bytes < 0)
		return BW_ERR_INVALID;
	bw_err e = quota_db(t, &d, &lock);
	if (e != BW_OK)
		return e;
	if ((e = db_begin(d)) == BW_OK) {
		/* Lapsed reservations go first, so they never count. */
		e = DB_RUN(d, "DELETE FROM storage_reservations WHERE tenant_slug = ? AND expires_at <= ?",
			   DB_TEXT(slug), DB_INT(now));
		if (e == BW_OK)
			e = quota_read(d, slug, now, 1, u);
		if (e == BW_OK && (u->used + u->reserved > u->limit ||
				   bytes > u->limit - u->used - u->reserved))
			e = BW_ERR_QUOTA;
		if (e == BW_OK)
			e = DB_INSERT(d, id,
				      "INSERT INTO storage_reservations (tenant_slug, bytes, expires_at)"
				      " VALUES (?, ?, ?)",
				      DB_TEXT(slug), DB_INT(bytes), DB_INT(now + QUOTA_RESERVATION_SECONDS));
		if (e == BW_OK)
			e = db_commit(d);
		if (e != BW_OK) {
			(void)db_rollback(d);
			*id = 0;
		}
	}
	pthread_mutex_unlock(lock);
	if (e != BW_OK && e != BW_ERR_QUOTA && e != BW_ERR_NOTFOUND) {
		log_warn("storage quotas: tenant %s: reservation failed (%s)", slug, bw_errcode(e));
		e = BW_ERR_UNAVAILABLE;
	}
	return e;
}

/* One transaction of statements on the quotas' connection. */
static bw_err
quota_change(struct tenancy *t, const char *slug, int64_t id, int64_t delta)
{
	pthread_mutex_t *lock;
	db *d;
	int64_t now = (int64_t)time(NULL);
	bw_err e = quota_db(t, &d, &lock);
	if (e != BW_OK)
		return e;
	if ((e = db_begin(d)) == BW_OK) {
		if (delta != 0) {
			struct quota_usage u;
			e = quota_read(d, slug, now, 1, &u);
			/* Never below zero, whatever drift a crash left. */
			if (e == BW_OK)
				e = DB_RUN(d,
					   "UPDATE storage_usage SET used = CASE WHEN used + ? < 0 THEN 0"
					   " ELSE used + ? END, updated_at = ? WHERE tenant_slug = ?",
					   DB_INT(delta), DB_INT(delta), DB_INT(now), DB_TEXT(slug));
		}
		if (e == BW_OK && id != 0)
			e = DB_RUN(d, "DELETE FROM storage_reservations WHERE id = ? AND tenant_slug = ?",
				   DB_INT(id), DB_TEXT(slug));
		if (e == BW_OK)
			e = db_commit(d);
		if (e != BW_OK)
			(void)db_rollback(d);
	}
	pthread_mutex_unlock(lock);
	if (e != BW_OK)
		log_warn("storage quotas: tenant %s: update failed (%s)", slug, bw_errcode(e));
	return e;
}

bw_err
quota_commit(struct tenancy *t, const char *slug, int64_t id, int64_t bytes)
{
	return quota_change(t, slug, id, bytes);
}

bw_err
quota_release(struct tenancy *t, const char *slug, int64_t id)
{
	return id == 0 ? BW_OK : quota_change(t, slug, id, 0);
}

bw_err
quota_return(struct tenancy *t, const char *slug, int64_t bytes)
{
	return bytes <= 0 ? BW_OK : quota_change(t, slug, 0, -bytes);
}

bw_err
quota_usage(struct tenancy *t, const char *slug, struct quota_usage *u)
{
	pthread_mutex_t *lock;
	db *d;
	bw_err e = quota_db(t, &d, &lock);
	if (e != BW_OK)
		return e;
	if ((e = db_begin(d)) == BW_OK) {
		e = quota_read(d, slug, (int64_t)time(NULL), 0, u);
		if (e == BW_OK)
			e = db_commit(d);
		else
			(void)db_rollback(d);
	}
	pthread_mutex_unlock(lock);
	return e;
}
