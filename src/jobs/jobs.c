/*
 * Background jobs in the tenant database: enqueue, claim, finish, and the
 * operators' view (docs/jobs.md).
 */
#include "jobs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../audit/audit.h"
#include "../db/db.h"

#define JOBS_CANDIDATES 16

int64_t
jobs_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
job_clear(struct job *j)
{
	json_decref(j->payload);
	memset(j, 0, sizeof(*j));
}

int64_t
jobs_backoff_ms(const struct job_kind *kind, int attempts)
{
	int64_t s = 60;
	if (kind->nbackoff > 0) {
		size_t i = attempts < 1 ? 0 : (size_t)attempts - 1;
		s = kind->backoff[i < kind->nbackoff ? i : kind->nbackoff - 1];
	}
	int64_t ms = s * 1000;
	uint32_t r = 0;
	if (ms >= 10 && util_random(&r, sizeof(r)) == BW_OK)
		ms += (int64_t)(r % (uint32_t)(ms / 10 + 1));
	return ms;
}

static const struct job_kind *
jobs_kind(const struct job_kind *kinds, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(kinds[i].name, name) == 0)
			return &kinds[i];
	return NULL;
}

bw_err
job_enqueue(struct op *op, const char *kind, int max_attempts, const char *lane, json_t *payload,
	    int64_t run_at_ms, int64_t *id)
{
	db *d;
	int64_t jid = 0, now = jobs_now_ms();
	if (id != NULL)
		*id = 0;
	if (strlen(kind) > JOB_KIND_MAX || (lane != NULL && strlen(lane) > JOB_LANE_MAX) ||
	    max_attempts < 1)
		return op_fail(op, BW_ERR_INTERNAL, NULL);
	bw_err e = op_db(op, &d);
	if (e != BW_OK)
		return e;
	char *text = json_dumps(payload != NULL ? payload : json_object(), JSON_COMPACT);
	if (text == NULL)
		return op_fail(op, BW_ERR_NOMEM, NULL);
	e = DB_INSERT(d, &jid,
		      "INSERT INTO jobs (kind, lane, payload, state, attempts, max_attempts,"
		      " run_at_ms, lease_until_ms, owner, last_error, created_at, updated_at)"
		      " VALUES (?, ?, ?, 'queued', 0, ?, ?, 0, '', '', ?, ?)",
		      DB_TEXT(kind), lane != NULL ? DB_TEXT(lane) : DB_NULL, DB_TEXT(text),
		      DB_INT(max_attempts), DB_INT(run_at_ms > 0 ? run_at_ms : now),
		      DB_INT(now / 1000), DB_INT(now / 1000));
	free(text);
	if (e != BW_OK)
		return op_fail(op, e, NULL);
	if (id != NULL)
		*id = jid;
	return BW_OK;
}

/* --- claiming -------------------------------------------------------------------- */

struct jobs_claim_arg {
	const struct job_kind *kinds;
	size_t nkinds;
	const char *owner;
	struct job j;
	int got;
};

/* Hold lane for job id until until_ms: 1 when held, 0 when another job holds it. */
static bw_err
jobs_lane_take(db *d, const char *lane, int64_t id, int64_t now, int64_t until_ms, int *held)
{
	db_stmt *s;
	int row;
	*held = 0;
	bw_err e = DB_RUN(d,
			  db_driver_of(d) == DB_MARIADB
			      ? "INSERT IGNORE INTO job_lanes (lane, holder, until_ms) VALUES (?, 0, 0)"
			      : "INSERT OR IGNORE INTO job_lanes (lane, holder, until_ms) VALUES (?, 0, 0)",
			  DB_TEXT(lane));
	if (e != BW_OK)
		return e;
	if ((e = db_prepare_cached(d,
				   "UPDATE job_lanes SET holder = ?, until_ms = ? WHERE lane = ?"
				   " AND (holder = 0 OR holder = ? OR until_ms < ?)",
				   &s)) != BW_OK)
		return e;
	if ((e = DB_BIND(s, DB_INT(id), DB_INT(until_ms), DB_TEXT(lane), DB_INT(id), DB_INT(now))) ==
		BW_OK &&
	    (e = db_step(s, &row)) == BW_OK)
		*held = db_changes(s) == 1;
	db_done(s);
	if (e != BW_OK || !*held)
		return e;
	/*
	 * An older job of the lane that is due but was not among the rows this
	 * claim saw is being claimed by another runner (SKIP LOCKED passed it):
	 * it goes first, so this one waits.
	 */
	int64_t older = 0;
	if ((e = DB_QUERY_INT(d, &older,
			      "SELECT COUNT(*) FROM jobs WHERE lane = ? AND state = 'queued'"
			      " AND run_at_ms <= ? AND id < ?",
			      DB_TEXT(lane), DB_INT(now), DB_INT(id))) != BW_OK)
		return e;
	if (older > 0) {
		*held = 0;
		return DB_RUN(d, "UPDATE job_lanes SET holder = 0, until_ms = 0 WHERE lane = ? AND holder = ?",
			      DB_TEXT(lane), DB_INT(id));
	}
	return BW_OK;
}

static void
jobs_lane_release(db *d, const struct job *j, bw_err *e)
{
	if (*e == BW_OK && j->lane[0] != '\0')
		*e = DB_RUN(d, "UPDATE job_lanes SET holder = 0, until_ms = 0 WHERE lane = ? AND holder = ?",
			    DB_TEXT(j->lane), DB_INT(j->id));
}

static bw_err
jobs_claim_tx(struct op *op, void *arg)
{
	struct jobs_claim_arg *c = arg;
	db *d = op->d;
	db_stmt *s;
	int row;
	int64_t now = jobs_now_ms();
	struct job cand[JOBS_CANDIDATES];
	size_t n = 0;
	job_clear(&c->j);
	c->got = 0;
	memset(cand, 0, sizeof(cand));
	bw_err e = db_prepare_cached(
	    d,
	    db_driver_of(d) == DB_MARIADB
		? "SELECT id, kind, lane, payload, attempts, max_attempts, created_at FROM jobs"
		  " WHERE state = 'queued' AND run_at_ms <= ? ORDER BY id LIMIT 16"
		  " FOR UPDATE SKIP LOCKED"
		: "SELECT id, kind, lane, payload, attempts, max_attempts, created_at FROM jobs"
		  " WHERE state = 'queued' AND run_at_ms <= ? ORDER BY id LIMIT 16",
	    &s);
	if (e != BW_OK)
		return e;
	if ((e = db_bind_int(s, 1, now)) == BW_OK)
		while ((e = db_step(s, &row)) == BW_OK && row && n < JOBS_CANDIDATES) {
			const char *kind = db_col_text(s, 1), *lane = db_col_text(s, 2);
			if (kind == NULL || jobs_kind(c->kinds, c->nkinds, kind) == NULL)
				continue; /* a kind this runner does not know (a newer server's) */
			struct job *j = &cand[n++];
			j->id = db_col_int(s, 0);
			snprintf(j->kind, sizeof(j->kind), "%s", kind);
			snprintf(j->lane, sizeof(j->lane), "%s", lane != NULL ? lane : "");
			const char *p = db_col_text(s, 3);
			j->payload = json_loads(p != NULL ? p : "{}", 0, NULL);
			if (j->payload == NULL)
				j->payload = json_object();
			j->attempts = (int)db_col_int(s, 4) + 1;
			j->max_attempts = (int)db_col_int(s, 5);
			j->created_at = db_col_int(s, 6);
		}
	db_done(s);
	size_t take = n;
	for (size_t i = 0; e == BW_OK && i < n && take == n; i++) {
		const struct job_kind *k = jobs_kind(c->kinds, c->nkinds, cand[i].kind);
		int64_t until = now + (k->lease_ms > 0 ? k->lease_ms : JOBS_LEASE_MS);
		int held = 1;
		if (cand[i].lane[0] != '\0')
			e = jobs_lane_take(d, cand[i].lane, cand[i].id, now, until, &held);
		if (e != BW_OK || !held)
			continue;
		e = DB_RUN(d,
			   "UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_until_ms = ?,"
			   " owner = ?, updated_at = ? WHERE id = ? AND state = 'queued'",
			   DB_INT(until), DB_TEXT(c->owner), DB_INT(now / 1000), DB_INT(cand[i].id));
		if (e == BW_OK)
			take = i;
	}
	for (size_t i = 0; i < n; i++)
		if (e == BW_OK && i == take) {
			c->j = cand[i];
			c->got = 1;
		} else
			job_clear(&cand[i]);
	return e;
}

bw_err
jobs_claim(struct op *op, const struct job_kind *kinds, size_t nkinds, const char *owner,
	   struct job *j, int *got)
{
	struct jobs_claim_arg c = {kinds, nkinds, owner, {0}, 0};
	db *d;
	int64_t due = 0;
	*got = 0;
	memset(j, 0, sizeof(*j));
	/*
	 * Most passes find nothing: a plain read says so without a transaction
	 * (on SQLite, BEGIN IMMEDIATE would take the tenant's write lock every
	 * poll of every idle tenant).
	 */
	bw_err e = op_db(op, &d);
	if (e == BW_OK)
		e = DB_QUERY_INT(d, &due,
				 "SELECT id FROM jobs WHERE state = 'queued' AND run_at_ms <= ? LIMIT 1",
				 DB_INT(jobs_now_ms()));
	if (e != BW_OK || due == 0)
		return e;
	e = op_tx(op, jobs_claim_tx, &c);
	if (e != BW_OK) {
		job_clear(&c.j);
		return e;
	}
	*j = c.j;
	*got = c.got;
	return BW_OK;
}

/* --- finishing ------------------------------------------------------------------ */

struct jobs_finish_arg {
	const struct job_kind *kind;
	const struct job *j;
	const char *owner; /* NULL: whoever held it (reclaim) */
	bw_err result;
	const struct job_retry *retry;
};

static bw_err
jobs_finish_tx(struct op *op, void *arg)
{
	struct jobs_finish_arg *f = arg;
	const struct job *j = f->j;
	db *d = op->d;
	db_stmt *s;
	int row;
	int64_t now = jobs_now_ms();
	char state[17] = "", owner[65] = "";
	bw_err e = db_prepare_cached(d,
				     db_driver_of(d) == DB_MARIADB
					 ? "SELECT state, owner FROM jobs WHERE id = ? FOR UPDATE"
					 : "SELECT state, owner FROM jobs WHERE id = ?",
				     &s);
	if (e != BW_OK)
		return e;
	if ((e = db_bind_int(s, 1, j->id)) == BW_OK && (e = db_step(s, &row)) == BW_OK && row) {
		snprintf(state, sizeof(state), "%s", db_col_text(s, 0) ? db_col_text(s, 0) : "");
		snprintf(owner, sizeof(owner), "%s", db_col_text(s, 1) ? db_col_text(s, 1) : "");
	}
	db_done(s);
	if (e != BW_OK)
		return e;
	if (strcmp(state, "running") != 0 || (f->owner != NULL && strcmp(owner, f->owner) != 0))
		return op_fail(op, BW_ERR_CONFLICT, "the job's lease passed to another runner");
	if (f->result == BW_OK) {
		e = DB_RUN(d,
			   "UPDATE jobs SET state = 'done', lease_until_ms = 0, last_error = '',"
			   " updated_at = ? WHERE id = ?",
			   DB_INT(now / 1000), DB_INT(j->id));
		jobs_lane_release(d, j, &e);
		return e;
	}
	const struct job_retry *r = f->retry;
	const char *why = r != NULL && r->error[0] ? r->error : bw_strerror(f->result);
	if ((r != NULL && r->permanent) || j->attempts >= j->max_attempts) {
		e = DB_RUN(d,
			   "UPDATE jobs SET state = 'failed', lease_until_ms = 0, last_error = ?,"
			   " updated_at = ? WHERE id = ?",
			   DB_TEXT(why), DB_INT(now / 1000), DB_INT(j->id));
		if (e == BW_OK && f->kind->ended != NULL)
			e = f->kind->ended(op, j, "failed", why);
	} else {
		int64_t at = r != NULL && r->at_ms > 0 ? r->at_ms
						       : now + jobs_backoff_ms(f->kind, j->attempts);
		e = DB_RUN(d,
			   "UPDATE jobs SET state = 'queued', run_at_ms = ?, lease_until_ms = 0,"
			   " owner = '', last_error = ?, updated_at = ? WHERE id = ?",
			   DB_INT(at), DB_TEXT(why), DB_INT(now / 1000), DB_INT(j->id));
	}
	jobs_lane_release(d, j, &e);
	return e;
}

bw_err
jobs_finish(struct op *op, const struct job_kind *kind, const struct job *j, const char *owner,
	    bw_err e, const struct job_retry *retry)
{
	struct jobs_finish_arg f = {kind, j, owner, e, retry};
	return op_tx(op, jobs_finish_tx, &f);
}

struct jobs_reclaim_arg {
	const struct job_kind *kinds;
	size_t nkinds;
	int64_t n;
};

static bw_err
jobs_reclaim_tx(struct op *op, void *arg)
{
	struct jobs_reclaim_arg *a = arg;
	db *d = op->d;
	db_stmt *s;
	int row;
	struct job lost[32];
	size_t n = 0;
	int64_t now = jobs_now_ms();
	a->n = 0;
	memset(lost, 0, sizeof(lost));
	bw_err e = db_prepare_cached(
	    d,
	    db_driver_of(d) == DB_MARIADB
		? "SELECT id, kind, lane, payload, attempts, max_attempts FROM jobs"
		  " WHERE state = 'running' AND lease_until_ms < ? LIMIT 32 FOR UPDATE SKIP LOCKED"
		: "SELECT id, kind, lane, payload, attempts, max_attempts FROM jobs"
		  " WHERE state = 'running' AND lease_until_ms < ? LIMIT 32",
	    &s);
	if (e != BW_OK)
		return e;
	if ((e = db_bind_int(s, 1, now)) == BW_OK)
		while ((e = db_step(s, &row)) == BW_OK && row && n < BW_ARRAY_LEN(lost)) {
			struct job *j = &lost[n++];
			j->id = db_col_int(s, 0);
			snprintf(j->kind, sizeof(j->kind), "%s", db_col_text(s, 1) ? db_col_text(s, 1) : "");
			snprintf(j->lane, sizeof(j->lane), "%s", db_col_text(s, 2) ? db_col_text(s, 2) : "");
			j->payload = json_loads(db_col_text(s, 3) ? db_col_text(s, 3) : "{}", 0, NULL);
			j->attempts = (int)db_col_int(s, 4);
			j->max_attempts = (int)db_col_int(s, 5);
		}
	db_done(s);
	for (size_t i = 0; e == BW_OK && i < n; i++) {
		struct job *j = &lost[i];
		static const char why[] = "the runner stopped during the attempt";
		if (j->attempts >= j->max_attempts) {
			const struct job_kind *k = jobs_kind(a->kinds, a->nkinds, j->kind);
			e = DB_RUN(d,
				   "UPDATE jobs SET state = 'failed', owner = '', lease_until_ms = 0,"
				   " last_error = ?, updated_at = ? WHERE id = ?",
				   DB_TEXT(why), DB_INT(now / 1000), DB_INT(j->id));
			if (e == BW_OK && k != NULL && k->ended != NULL)
				e = k->ended(op, j, "failed", why);
		} else
			e = DB_RUN(d,
				   "UPDATE jobs SET state = 'queued', owner = '', lease_until_ms = 0,"
				   " last_error = ?, updated_at = ? WHERE id = ?",
				   DB_TEXT(why), DB_INT(now / 1000), DB_INT(j->id));
		if (e == BW_OK && j->lane[0] != '\0')
			e = DB_RUN(d,
				   "UPDATE job_lanes SET holder = 0, until_ms = 0 WHERE lane = ? AND holder = ?",
				   DB_TEXT(j->lane), DB_INT(j->id));
		if (e == BW_OK)
			a->n++;
	}
	for (size_t i = 0; i < n; i++)
		job_clear(&lost[i]);
	return e;
}

bw_err
jobs_reclaim(struct op *op, const struct job_kind *kinds, size_t nkinds, int64_t *n)
{
	struct jobs_reclaim_arg a = {kinds, nkinds, 0};
	db *d;
	int64_t lost = 0;
	*n = 0;
	bw_err e = op_db(op, &d);
	if (e == BW_OK) /* as in jobs_claim: no transaction when there is nothing to do */
		e = DB_QUERY_INT(d, &lost,
				 "SELECT id FROM jobs WHERE state = 'running' AND lease_until_ms < ? LIMIT 1",
				 DB_INT(jobs_now_ms()));
	if (e != BW_OK || lost == 0)
		return e;
	e = op_tx(op, jobs_reclaim_tx, &a);
	if (e == BW_OK)
		*n = a.n;
	return e;
}

bw_err
jobs_renew(struct op *op, int64_t id, const char *lane, const char *owner)
{
	db *d;
	bw_err e = op_db(op, &d);
	if (e != BW_OK)
		return e;
	int64_t until = jobs_now_ms() + JOBS_LEASE_MS;
	e = DB_RUN(d,
		   "UPDATE jobs SET lease_until_ms = ? WHERE id = ? AND owner = ? AND state = 'running'",
		   DB_INT(until), DB_INT(id), DB_TEXT(owner));
	if (e == BW_OK && lane != NULL && lane[0] != '\0')
		e = DB_RUN(d, "UPDATE job_lanes SET until_ms = ? WHERE lane = ? AND holder = ?",
			   DB_INT(until), DB_TEXT(lane), DB_INT(id));
	return e;
}

/* --- operators ------------------------------------------------------------------- */

static json_t *
jobs_row_json(db_stmt *s)
{
	char run[UTIL_TIME_LEN], cr[UTIL_TIME_LEN], up[UTIL_TIME_LEN];
	const char *lane = db_col_text(s, 2), *p = db_col_text(s, 3);
	json_t *payload = json_loads(p != NULL ? p : "{}", 0, NULL);
	return json_pack("{s:I, s:s, s:s?, s:o, s:s, s:I, s:I, s:s, s:s, s:s, s:s}", "id",
			 (json_int_t)db_col_int(s, 0), "kind", db_col_text(s, 1), "lane", lane,
			 "payload", payload != NULL ? payload : json_object(), "state",
			 db_col_text(s, 4), "attempts", (json_int_t)db_col_int(s, 5), "max_attempts",
			 (json_int_t)db_col_int(s, 6),
			 "run_at", util_time_rfc3339(db_col_int(s, 7) / 1000, run), "last_error",
			 db_col_text(s, 8) ? db_col_text(s, 8) : "", "created_at",
			 util_time_rfc3339(db_col_int(s, 9), cr), "updated_at",
			 util_time_rfc3339(db_col_int(s, 10), up));
}

#define JOBS_COLS                                                                        \
	"id, kind, lane, payload, state, attempts, max_attempts, run_at_ms, last_error," \
	" created_at, updated_at"

bw_err
jobs_list(struct op *op, const char *state, const char *kind, int limit, json_t **out)
{
	db *d;
	db_stmt *s;
	int row;
	*out = NULL;
	bw_err e = op_db(op, &d);
	if (e != BW_OK)
		return e;
	json_t *a = json_array();
	if (a == NULL)
		return op_fail(op, BW_ERR_NOMEM, NULL);
	if ((e = db_prepare_cached(d,
				   "SELECT " JOBS_COLS " FROM jobs WHERE (? = '' OR state = ?)"
				   " AND (? = '' OR kind = ?) ORDER BY id DESC LIMIT ?",
				   &s)) != BW_OK) {
		json_decref(a);
		return e;
	}
	const char *st = state != NULL ? state : "", *k = kind != NULL ? kind : "";
	if ((e = DB_BIND(s, DB_TEXT(st), DB_TEXT(st), DB_TEXT(k), DB_TEXT(k),
			 DB_INT(limit > 0 && limit <= 1000 ? limit : 100))) == BW_OK)
		while ((e = db_step(s, &row)) == BW_OK && row) {
			json_t *o = jobs_row_json(s);
			if (o == NULL || json_array_append_new(a, o) != 0) {
				e = BW_ERR_NOMEM;
				break;
			}
		}
	db_done(s);
	if (e != BW_OK) {
		json_decref(a);
		return op_fail(op, e, NULL);
	}
	*out = a;
	return BW_OK;
}

bw_err
jobs_get(struct op *op, int64_t id, json_t **out)
{
	db *d;
	db_stmt *s;
	int row;
	*out = NULL;
	bw_err e = op_db(op, &d);
	if (e != BW_OK)
		return e;
	if ((e = db_prepare_cached(d, "SELECT " JOBS_COLS " FROM jobs WHERE id = ?", &s)) != BW_OK)
		return e;
	if ((e = db_bind_int(s, 1, id)) == BW_OK && (e = db_step(s, &row)) == BW_OK) {
		if (!row)
			e = BW_ERR_NOTFOUND;
		else if ((*out = jobs_row_json(s)) == NULL)
			e = BW_ERR_NOMEM;
	}
	db_done(s);
	if (e == BW_ERR_NOTFOUND)
		return op_fail(op, e, "no such job");
	return e;
}

bw_err
jobs_counts(struct op *op, json_t **out)
{
	db *d;
	db_stmt *s;
	int row;
	*out = NULL;
	bw_err e = op_db(op, &d);
	if (e != BW_OK)
		return e;
	json_t *o = json_pack("{s:i, s:i, s:i, s:i, s:i}", "queued", 0, "running", 0, "done", 0,
			      "failed", 0, "cancelled", 0);
	if (o == NULL)
		return op_fail(op, BW_ERR_NOMEM, NULL);
	if ((e = db_prepare_cached(d, "SELECT state, COUNT(*) FROM jobs GROUP BY state", &s)) ==
	    BW_OK) {
		while ((e = db_step(s, &row)) == BW_OK && row)
			if (db_col_text(s, 0) != NULL)
				json_object_set_new(o, db_col_text(s, 0),
						    json_integer(db_col_int(s, 1)));
		db_done(s);
	}
	if (e != BW_OK) {
		json_decref(o);
		return op_fail(op, e, NULL);
	}
	*out = o;
	return BW_OK;
}

struct jobs_op_arg {
	const struct job_kind *kinds;
	size_t nkinds;
	int64_t id;
	int cancel;
};

static bw_err jobs_op_run(struct op *op, struct jobs_op_arg *a, struct job *j);

static bw_err
jobs_op_tx(struct op *op, void *arg)
{
	struct job j = {0};
	bw_err e = jobs_op_run(op, arg, &j);
	job_clear(&j);
	return e;
}

static bw_err
jobs_op_run(struct op *op, struct jobs_op_arg *a, struct job *jp)
{
	db *d = op->d;
	db_stmt *s;
	int row;
	char state[17] = "";
	int64_t run_at = 0, now = jobs_now_ms();
	bw_err e = db_prepare_cached(
	    d,
	    db_driver_of(d) == DB_MARIADB
		? "SELECT state, kind, lane, attempts, max_attempts, run_at_ms, payload FROM jobs"
		  " WHERE id = ? FOR UPDATE"
		: "SELECT state, kind, lane, attempts, max_attempts, run_at_ms, payload FROM jobs"
		  " WHERE id = ?",
	    &s);
	if (e != BW_OK)
		return e;
	if ((e = db_bind_int(s, 1, a->id)) == BW_OK && (e = db_step(s, &row)) == BW_OK) {
		if (!row)
			e = BW_ERR_NOTFOUND;
		else {
			jp->id = a->id;
			snprintf(state, sizeof(state), "%s", db_col_text(s, 0));
			snprintf(jp->kind, sizeof(jp->kind), "%s", db_col_text(s, 1));
			snprintf(jp->lane, sizeof(jp->lane), "%s", db_col_text(s, 2) ? db_col_text(s, 2) : "");
			jp->attempts = (int)db_col_int(s, 3);
			jp->max_attempts = (int)db_col_int(s, 4);
			run_at = db_col_int(s, 5);
			jp->payload = json_loads(db_col_text(s, 6) ? db_col_text(s, 6) : "{}", 0, NULL);
		}
	}
	db_done(s);
	if (e == BW_ERR_NOTFOUND)
		return op_fail(op, e, "no such job");
	if (e != BW_OK)
		return e;
	const char *to;
	if (a->cancel) {
		if (strcmp(state, "queued") != 0)
			return op_fail(op, BW_ERR_CONFLICT,
				       pool_printf(op->pool, "job %lld is %s: only a queued job can be cancelled",
						   (long long)a->id, state));
		to = "cancelled";
		e = DB_RUN(d, "UPDATE jobs SET state = 'cancelled', last_error = 'cancelled by an operator',"
			      " updated_at = ? WHERE id = ?",
			   DB_INT(now / 1000), DB_INT(a->id));
		const struct job_kind *k = jobs_kind(a->kinds, a->nkinds, jp->kind);
		if (e == BW_OK && k != NULL && k->ended != NULL)
			e = k->ended(op, jp, "cancelled", "cancelled by an operator");
	} else {
		int waiting = strcmp(state, "queued") == 0 && run_at > now;
		if (strcmp(state, "failed") != 0 && strcmp(state, "cancelled") != 0 && !waiting)
			return op_fail(op, BW_ERR_CONFLICT,
				       pool_printf(op->pool, "job %lld is %s: nothing to retry",
						   (long long)a->id, state));
		to = "queued";
		/* One more attempt when it had used them all. */
		e = DB_RUN(d,
			   "UPDATE jobs SET state = 'queued', run_at_ms = ?, owner = '', lease_until_ms = 0,"
			   " max_attempts = CASE WHEN attempts >= max_attempts THEN attempts + 1"
			   " ELSE max_attempts END, updated_at = ? WHERE id = ?",
			   DB_INT(now), DB_INT(now / 1000), DB_INT(a->id));
	}
	if (e != BW_OK)
		return e;
	json_t *b = json_pack("{s:s, s:s}", "kind", jp->kind, "state", state);
	json_t *c = json_pack("{s:s}", "state", to);
	e = b != NULL && c != NULL ? audit_op(op, "jobs", a->id, a->cancel ? "cancel" : "retry", b, c)
				   : BW_ERR_NOMEM;
	json_decref(b);
	json_decref(c);
	return e;
}

bw_err
jobs_retry(struct op *op, const struct job_kind *kinds, size_t nkinds, int64_t id)
{
	struct jobs_op_arg a = {kinds, nkinds, id, 0};
	return op_tx(op, jobs_op_tx, &a);
}

bw_err
jobs_cancel(struct op *op, const struct job_kind *kinds, size_t nkinds, int64_t id)
{
	struct jobs_op_arg a = {kinds, nkinds, id, 1};
	return op_tx(op, jobs_op_tx, &a);
}
