/*
 * Background jobs (src/jobs/jobs.c) and the outbox (src/events/events.c),
 * on both drivers, without HTTP: claims in order, one job of a lane at a
 * time, back-off then failure with the kind's ended hook, a permanent
 * failure, a lease passed to another runner refused, leases renewed by
 * their owner only, lost jobs reclaimed (failed on their last attempt), operators' retry and cancel (audited), two runners on
 * MariaDB never taking one job twice; an event written exactly when its
 * change commits, sealed, and none for a change rolled back.
 */
#include "unit.h"

#include <pthread.h>

#include "audit/audit.h"
#include "dbenv.h"
#include "events/events.h"
#include "jobs/jobs.h"
#include "op/op.h"
#include "tenancy/tenancy.h"

static char tmpdir[64];
static int seq;

struct fx {
	struct config cfg;
	struct tenancy *t;
	char slug[16];
	struct tenant tn;
	db *d;
	pool *pool;
	struct op op;
	int mariadb;
};

static int ended_calls;
static char ended_state[16];

static bw_err
kind_run(struct op *op, const struct job *j, struct job_retry *r)
{
	(void)op, (void)j, (void)r;
	return BW_OK;
}

static bw_err
kind_ended(struct op *op, const struct job *j, const char *state, const char *why)
{
	(void)op, (void)why;
	assert_non_null(j->payload);
	ended_calls++;
	snprintf(ended_state, sizeof(ended_state), "%s", state);
	return BW_OK;
}

static const int backoff[] = {1};
static const struct job_kind kinds[] = {
    {"test.kind", 2, backoff, 1, 60000, kind_run, kind_ended},
};

static int
group_setup(void **state)
{
	(void)state;
	return unit_mkdtemp(tmpdir, sizeof(tmpdir), "jobs");
}

static int
group_teardown(void **state)
{
	(void)state;
	return unit_rmtree(tmpdir);
}

static int
open_driver(void **state, const char *driver)
{
	struct fx *f = calloc(1, sizeof(*f));
	char err[512], otp[64];
	struct tenant *v;
	size_t n;
	*state = NULL;
	if (strcmp(driver, "mariadb") == 0 && !dbenv_have_mariadb()) {
		free(f);
		return 0;
	}
	f->mariadb = strcmp(driver, "mariadb") == 0;
	if (dbenv_open(&f->cfg, driver, tmpdir, "saas_control_job", ++seq, &f->t, err,
		       sizeof(err)) != BW_OK)
		fail_msg("setup: %s", err);
	snprintf(f->slug, sizeof(f->slug), "jb%d", seq);
	if (tenant_create(f->t, f->slug, "admin@jobs.example", NULL, NULL, otp, sizeof(otp), err,
			  sizeof(err)) != BW_OK)
		fail_msg("create: %s", err);
	assert_int_equal(tenant_list(f->t, &v, &n, err, sizeof(err)), BW_OK);
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i].slug, f->slug) == 0)
			f->tn = v[i];
	free(v);
	if (tenancy_connect_tenant(f->t, &f->tn, 0, &f->d, err, sizeof(err)) != BW_OK)
		fail_msg("connect: %s", err);
	assert_non_null(f->pool = pool_new(1 << 20));
	struct actor a = op_system("unit test");
	op_init(&f->op, f->pool, &f->cfg, f->t, &f->tn, f->d, &a);
	ended_calls = 0;
	ended_state[0] = '\0';
	*state = f;
	return 0;
}

static int
open_sqlite(void **state)
{
	return open_driver(state, "sqlite");
}

static int
open_mariadb(void **state)
{
	return open_driver(state, "mariadb");
}

static int
close_fx(void **state)
{
	struct fx *f = *state;
	if (f == NULL)
		return 0;
	db_close(f->d);
	pool_free(f->pool);
	dbenv_destroy(f->t, &f->cfg);
	free(f);
	return 0;
}

#define NEED(f)                  \
	do {                     \
		if ((f) == NULL) \
			return;  \
	} while (0)

struct enq {
	const char *lane;
	int64_t id;
};

static bw_err
enqueue_tx(struct op *op, void *arg)
{
	struct enq *q = arg;
	json_t *p = json_pack("{s:i}", "n", 1);
	bw_err e = job_enqueue(op, "test.kind", 2, q->lane, p, 0, &q->id);
	json_decref(p);
	return e;
}

static int64_t
enqueue(struct fx *f, const char *lane)
{
	struct enq q = {lane, 0};
	assert_int_equal(op_tx(&f->op, enqueue_tx, &q), BW_OK);
	assert_true(q.id > 0);
	return q.id;
}

static int64_t
claim(struct fx *f, const char *owner, struct job *j)
{
	int got = 0;
	assert_int_equal(jobs_claim(&f->op, kinds, 1, owner, j, &got), BW_OK);
	return got ? j->id : 0;
}

static void
finish(struct fx *f, struct job *j, const char *owner, bw_err e, bw_err want)
{
	struct job_retry r;
	memset(&r, 0, sizeof(r));
	snprintf(r.error, sizeof(r.error), "it failed");
	assert_int_equal(jobs_finish(&f->op, &kinds[0], j, owner, e, &r), want);
	op_clear(&f->op);
	job_clear(j);
}

static const char *
state_of(struct fx *f, int64_t id)
{
	db_stmt *s;
	int row;
	static char st[32];
	st[0] = '\0';
	assert_int_equal(db_prepare(f->d, "SELECT state FROM jobs WHERE id = ?", &s), BW_OK);
	assert_int_equal(db_bind_int(s, 1, id), BW_OK);
	assert_int_equal(db_step(s, &row), BW_OK);
	if (row)
		snprintf(st, sizeof(st), "%s", db_col_text(s, 0));
	db_finalize(s);
	return st;
}

static void
test_claims_in_order_one_per_lane(void **state)
{
	struct fx *f = *state;
	NEED(f);
	struct job j1, j2, j3;
	int64_t a = enqueue(f, "lane:x"), b = enqueue(f, "lane:x"), c = enqueue(f, NULL);
	assert_int_equal(claim(f, "r1", &j1), a);
	assert_int_equal(j1.attempts, 1);
	assert_int_equal(json_integer_value(json_object_get(j1.payload, "n")), 1);
	/* b waits for a (same lane); c has none. */
	assert_int_equal(claim(f, "r2", &j2), c);
	assert_int_equal(claim(f, "r2", &j3), 0);
	finish(f, &j1, "r1", BW_OK, BW_OK);
	assert_string_equal(state_of(f, a), "done");
	assert_int_equal(claim(f, "r2", &j3), b);
	finish(f, &j2, "r2", BW_OK, BW_OK);
	finish(f, &j3, "r2", BW_OK, BW_OK);
	assert_int_equal(claim(f, "r2", &j3), 0);
}

static void
test_back_off_then_failure(void **state)
{
	struct fx *f = *state;
	NEED(f);
	struct job j;
	int64_t id = enqueue(f, NULL);
	assert_int_equal(claim(f, "r1", &j), id);
	finish(f, &j, "r1", BW_ERR_IO, BW_OK);
	assert_string_equal(state_of(f, id), "queued");
	/* Not before its back-off (one second). */
	assert_int_equal(claim(f, "r1", &j), 0);
	assert_int_equal(DB_RUN(f->d, "UPDATE jobs SET run_at_ms = 0 WHERE id = ?", DB_INT(id)), BW_OK);
	assert_int_equal(claim(f, "r1", &j), id);
	assert_int_equal(j.attempts, 2);
	finish(f, &j, "r1", BW_ERR_IO, BW_OK);
	assert_string_equal(state_of(f, id), "failed");
	assert_int_equal(ended_calls, 1);
	assert_string_equal(ended_state, "failed");
	assert_int_equal(claim(f, "r1", &j), 0);
}

static void
test_lease_passed_on_is_refused(void **state)
{
	struct fx *f = *state;
	NEED(f);
	struct job j;
	int64_t id = enqueue(f, "lane:y"), n = 0;
	assert_int_equal(claim(f, "r1", &j), id);
	/* Its lease ends: reclaimed, and another runner takes it. */
	assert_int_equal(DB_RUN(f->d, "UPDATE jobs SET lease_until_ms = 1 WHERE id = ?", DB_INT(id)),
			 BW_OK);
	assert_int_equal(jobs_reclaim(&f->op, kinds, 1, &n), BW_OK);
	assert_int_equal(n, 1);
	struct job k;
	assert_int_equal(claim(f, "r2", &k), id);
	/* The first runner's late finish changes nothing. */
	finish(f, &j, "r1", BW_OK, BW_ERR_CONFLICT);
	assert_string_equal(state_of(f, id), "running");
	finish(f, &k, "r2", BW_OK, BW_OK);
	assert_string_equal(state_of(f, id), "done");
}

static void
test_renewed_leases_hold_and_lost_ones_fail_at_the_end(void **state)
{
	struct fx *f = *state;
	NEED(f);
	struct job j;
	int64_t id = enqueue(f, "lane:z"), n = 0, until = 0;
	assert_int_equal(claim(f, "r1", &j), id);
	/* Renewed by its owner: the lease moves on; by another: nothing. */
	assert_int_equal(DB_RUN(f->d, "UPDATE jobs SET lease_until_ms = 5 WHERE id = ?", DB_INT(id)),
			 BW_OK);
	assert_int_equal(jobs_renew(&f->op, id, "lane:z", "someone else"), BW_OK);
	assert_int_equal(DB_QUERY_INT(f->d, &until, "SELECT lease_until_ms FROM jobs WHERE id = ?", DB_INT(id)),
			 BW_OK);
	assert_int_equal(until, 5);
	assert_int_equal(jobs_renew(&f->op, id, "lane:z", "r1"), BW_OK);
	assert_int_equal(DB_QUERY_INT(f->d, &until, "SELECT lease_until_ms FROM jobs WHERE id = ?", DB_INT(id)),
			 BW_OK);
	assert_true(until > jobs_now_ms() + JOBS_LEASE_MS / 2);
	assert_int_equal(jobs_reclaim(&f->op, kinds, 1, &n), BW_OK);
	assert_int_equal(n, 0);
	job_clear(&j);
	/* Lost on its last attempt: failed, the kind told, the lane free. */
	assert_int_equal(DB_RUN(f->d, "UPDATE jobs SET lease_until_ms = 1, attempts = 2 WHERE id = ?",
				DB_INT(id)),
			 BW_OK);
	assert_int_equal(jobs_reclaim(&f->op, kinds, 1, &n), BW_OK);
	assert_int_equal(n, 1);
	assert_string_equal(state_of(f, id), "failed");
	assert_int_equal(ended_calls, 1);
	int64_t other = enqueue(f, "lane:z");
	assert_int_equal(claim(f, "r2", &j), other);
	job_clear(&j);
}

static void
test_operators_retry_and_cancel(void **state)
{
	struct fx *f = *state;
	NEED(f);
	struct job j;
	int64_t id = enqueue(f, NULL), audits = 0;
	assert_int_equal(jobs_cancel(&f->op, kinds, 1, id), BW_OK);
	assert_string_equal(state_of(f, id), "cancelled");
	assert_int_equal(ended_calls, 1);
	assert_string_equal(ended_state, "cancelled");
	assert_int_equal(jobs_cancel(&f->op, kinds, 1, id), BW_ERR_CONFLICT);
	op_clear(&f->op);
	assert_int_equal(claim(f, "r1", &j), 0); /* a cancelled job never runs */
	assert_int_equal(jobs_retry(&f->op, kinds, 1, id), BW_OK);
	assert_int_equal(claim(f, "r1", &j), id);
	assert_int_equal(jobs_cancel(&f->op, kinds, 1, id), BW_ERR_CONFLICT); /* running */
	op_clear(&f->op);
	finish(f, &j, "r1", BW_OK, BW_OK);
	assert_int_equal(jobs_retry(&f->op, kinds, 1, id), BW_ERR_CONFLICT); /* done */
	op_clear(&f->op);
	assert_int_equal(jobs_retry(&f->op, kinds, 1, 999999), BW_ERR_NOTFOUND);
	op_clear(&f->op);
	assert_int_equal(DB_QUERY_INT(f->d, &audits,
				      "SELECT COUNT(*) FROM audit_log WHERE entity = 'jobs' AND entity_id = ?",
				      DB_INT(id)),
			 BW_OK);
	assert_int_equal(audits, 2);
}

/* --- two runners at once (MariaDB: SKIP LOCKED) ------------------------------------------ */

struct racer {
	struct fx *f;
	db *d;
	int64_t got[64];
	int n;
};

static void *
race_claims(void *arg)
{
	struct racer *r = arg;
	pool *p = pool_new(1 << 20);
	struct actor a = op_system("unit racer");
	struct op op;
	op_init(&op, p, &r->f->cfg, r->f->t, &r->f->tn, r->d, &a);
	for (int i = 0; i < 64 && r->n < 64; i++) {
		struct job j;
		int got = 0;
		if (jobs_claim(&op, kinds, 1, r->d == r->f->d ? "ra" : "rb", &j, &got) != BW_OK || !got)
			break;
		r->got[r->n++] = j.id;
		job_clear(&j);
	}
	pool_free(p);
	return NULL;
}

static void
test_two_runners_never_take_one_job(void **state)
{
	struct fx *f = *state;
	NEED(f);
	char err[256];
	for (int i = 0; i < 40; i++)
		(void)enqueue(f, NULL);
	struct racer a = {f, f->d, {0}, 0}, b = {f, NULL, {0}, 0};
	assert_int_equal(tenancy_connect_tenant(f->t, &f->tn, 0, &b.d, err, sizeof(err)), BW_OK);
	pthread_t ta, tb;
	pthread_create(&ta, NULL, race_claims, &a);
	pthread_create(&tb, NULL, race_claims, &b);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	db_close(b.d);
	assert_int_equal(a.n + b.n, 40);
	for (int i = 0; i < a.n; i++)
		for (int k = 0; k < b.n; k++)
			assert_true(a.got[i] != b.got[k]);
}

/* --- the outbox ----------------------------------------------------------------------------- */

struct change {
	int fail;
};

static bw_err
change_tx(struct op *op, void *arg)
{
	struct change *c = arg;
	json_t *after = json_pack("{s:s}", "name", "Outbox Co");
	json_t *obj = json_pack("{s:i, s:s}", "id", 7, "name", "Outbox Co");
	bw_err e = audit_op_object(op, "customers", 7, "update", NULL, after, NULL, obj);
	json_decref(after);
	json_decref(obj);
	if (e == BW_OK && c->fail)
		e = op_fail(op, BW_ERR_CONFLICT, "rolled back after the audit row");
	return e;
}

static void
test_event_exactly_when_the_change_commits(void **state)
{
	struct fx *f = *state;
	NEED(f);
	int64_t n = 0, id = 0;
	struct change fail = {1}, ok = {0};
	assert_int_equal(op_tx(&f->op, change_tx, &fail), BW_ERR_CONFLICT);
	op_clear(&f->op);
	assert_int_equal(db_query_int(f->d, &n, "SELECT COUNT(*) FROM events", NULL, 0), BW_OK);
	assert_int_equal(n, 0);
	assert_int_equal(op_tx(&f->op, change_tx, &ok), BW_OK);
	assert_int_equal(db_query_int(f->d, &n, "SELECT COUNT(*) FROM events WHERE type = 'customers.updated'", NULL, 0),
			 BW_OK);
	assert_int_equal(n, 1);
	assert_int_equal(db_query_int(f->d, &id, "SELECT MAX(id) FROM events", NULL, 0), BW_OK);
	char *body = NULL, type[EVENT_TYPE_MAX + 1];
	size_t len = 0;
	assert_int_equal(event_body(&f->op, id, &body, &len, type), BW_OK);
	assert_string_equal(type, "customers.updated");
	json_t *ev = json_loads(body, 0, NULL);
	assert_non_null(ev);
	assert_string_equal(json_string_value(json_object_get(ev, "type")), "customers.updated");
	assert_string_equal(json_string_value(json_object_get(ev, "tenant")), f->slug);
	json_t *data = json_object_get(ev, "data");
	assert_string_equal(json_string_value(json_object_get(json_object_get(data, "object"), "name")),
			    "Outbox Co");
	assert_string_equal(json_string_value(json_object_get(json_object_get(data, "actor"), "kind")),
			    "system");
	json_decref(ev);
	free(body);
	/* Sealed: the name is not in the row as stored. */
	db_stmt *s;
	int row;
	size_t plen = 0;
	assert_int_equal(db_prepare(f->d, "SELECT payload FROM events WHERE id = ?", &s), BW_OK);
	assert_int_equal(db_bind_int(s, 1, id), BW_OK);
	assert_int_equal(db_step(s, &row), BW_OK);
	const unsigned char *p = db_col_blob(s, 0, &plen);
	assert_non_null(p);
	assert_null(memmem(p, plen, "Outbox Co", 9));
	db_finalize(s);
	/* Types and patterns. */
	assert_true(events_pattern_valid("tickets.*"));
	assert_true(events_pattern_valid("*"));
	assert_true(events_pattern_valid("invoices.sent"));
	assert_false(events_pattern_valid("tickets.nope"));
	assert_false(events_pattern_valid("nope.*"));
	assert_false(events_pattern_valid(".*"));
	assert_true(events_pattern_match("tickets.*", "tickets.created"));
	assert_false(events_pattern_match("tickets.*", "ticket_comments.created"));
	assert_false(events_pattern_match("tickets.created", "tickets.createdx"));
}

int
main(void)
{
#define BOTH(fn)                                                    \
	cmocka_unit_test_setup_teardown(fn, open_sqlite, close_fx), \
	    cmocka_unit_test_setup_teardown(fn, open_mariadb, close_fx)
	const struct CMUnitTest tests[] = {
	    BOTH(test_claims_in_order_one_per_lane),
	    BOTH(test_back_off_then_failure),
	    BOTH(test_lease_passed_on_is_refused),
	    BOTH(test_renewed_leases_hold_and_lost_ones_fail_at_the_end),
	    BOTH(test_operators_retry_and_cancel),
	    cmocka_unit_test_setup_teardown(test_two_runners_never_take_one_job, open_mariadb, close_fx),
	    BOTH(test_event_exactly_when_the_change_commits),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
