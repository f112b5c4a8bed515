/*
 * The audit log on both drivers: rows written inside the caller's
 * transaction, the chain verified, and every kind of tampering found at
 * the row it touched: an edited plaintext column, a flipped byte in the
 * sealed details, a deleted row (in the middle and at the end), a forged
 * row, swapped details, an edited MAC. A failed audit write rolls the
 * change back. Key rotation and rollback keep the chain intact. Writers
 * on several connections at once never share a sequence number.
 */
#include "unit.h"

#include <pthread.h>

#include "audit/audit.h"
#include "crypto/crypto.h"
#include "dbenv.h"
#include "tenancy/tenancy.h"

#define NROWS 12
#define MARKER "audit-marker-Quokka"

static char tmpdir[64];
static int seq;

struct fx {
	struct config cfg;
	struct tenancy *t;
	const char *driver;
	char slug[16];
	struct tenant tn;
	db *d;
};

static int
group_setup(void **state)
{
	(void)state;
	return unit_mkdtemp(tmpdir, sizeof(tmpdir), "audit");
}

static int
group_teardown(void **state)
{
	(void)state;
	return unit_rmtree(tmpdir);
}

static struct tenant
get(struct fx *f)
{
	struct tenant *v, r;
	size_t n;
	char err[256];
	memset(&r, 0, sizeof(r));
	assert_int_equal(tenant_list(f->t, &v, &n, err, sizeof(err)), BW_OK);
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i].slug, f->slug) == 0)
			r = v[i];
	free(v);
	assert_string_equal(r.slug, f->slug);
	return r;
}

static int
open_driver(void **state, const char *driver)
{
	struct fx *f = calloc(1, sizeof(*f));
	char err[512], otp[64];
	if (strcmp(driver, "mariadb") == 0 && !dbenv_have_mariadb()) {
		free(f);
		*state = NULL;
		return 0;
	}
	f->driver = driver;
	if (dbenv_open(&f->cfg, driver, tmpdir, "saas_control_audit", ++seq, &f->t, err,
		       sizeof(err)) != BW_OK)
		fail_msg("setup: %s", err);
	snprintf(f->slug, sizeof(f->slug), "au%d", seq);
	if (tenant_create(f->t, f->slug, "a@b.co", NULL, NULL, otp, sizeof(otp), err, sizeof(err)) !=
	    BW_OK)
		fail_msg("create: %s", err);
	f->tn = get(f);
	if (tenancy_connect_tenant(f->t, &f->tn, 0, &f->d, err, sizeof(err)) != BW_OK)
		fail_msg("connect: %s", err);
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
	dbenv_destroy(f->t, &f->cfg);
	free(f);
	return 0;
}

#define NEED(f)                                                                         \
	do {                                                                            \
		if ((f) == NULL) {                                                      \
			print_message("MariaDB not started (run through make check)\n"); \
			skip();                                                         \
		}                                                                       \
	} while (0)

static struct audit_entry
entry(int i, json_t *before, json_t *after)
{
	struct audit_entry e = {
	    .actor = i % 3 == 0 ? AUDIT_SYSTEM : i % 3 == 1 ? AUDIT_USER : AUDIT_TOKEN,
	    .user_id = i % 3 == 0 ? 0 : 7,
	    .token_id = i % 3 == 2 ? 3 : 0,
	    .actor_label = i % 3 == 0 ? "unit test" : "a@b.co",
	    .client_ip = "192.0.2.1",
	    .request_id = "req-1",
	    .entity = i % 2 ? "users" : "settings",
	    .entity_id = i % 2 ? 7 : 0,
	    .action = "update",
	    .before = before,
	    .after = after,
	};
	return e;
}

/* n more rows, each in its own transaction like a request's change. */
static void
record(struct fx *f, int n)
{
	for (int i = 0; i < n; i++) {
		json_t *b = json_pack("{s:s}", "name", "old"), *a = json_pack("{s:s, s:i}", "name", MARKER, "i", i);
		struct audit_entry e = entry(i, b, a);
		assert_int_equal(db_begin(f->d), BW_OK);
		assert_int_equal(audit_record(f->d, f->t, &f->tn, &e), BW_OK);
		assert_int_equal(db_commit(f->d), BW_OK);
		json_decref(b);
		json_decref(a);
	}
}

static void
verify_ok(struct fx *f, int64_t want_rows)
{
	int64_t rows = -1, bad = -1;
	char why[512];
	bw_err e = audit_verify(f->d, f->t, &f->tn, &rows, &bad, why, sizeof(why));
	if (e != BW_OK)
		fail_msg("verify: %s (%d) at %lld", why, (int)e, (long long)bad);
	assert_int_equal(rows, want_rows);
	assert_int_equal(bad, 0);
}

/* The chain is broken at row want; why (lower case) contains what. */
static void
verify_bad(struct fx *f, int64_t want, const char *what)
{
	int64_t rows = -1, bad = -1;
	char why[512] = "";
	assert_int_equal(audit_verify(f->d, f->t, &f->tn, &rows, &bad, why, sizeof(why)), BW_ERR_CRYPTO);
	if (bad != want || (what != NULL && strstr(why, what) == NULL))
		fail_msg("expected row %lld (%s), got row %lld: %s", (long long)want, what ? what : "",
			 (long long)bad, why);
	assert_true(rows <= want);
}

static void
exec1(struct fx *f, const char *sql)
{
	if (db_exec(f->d, sql) != BW_OK)
		fail_msg("%s: %s", sql, db_errmsg(f->d));
}

/* A copy of row seq's details (malloc'd). */
static unsigned char *
details_of(struct fx *f, int64_t s_, size_t *len)
{
	db_stmt *s;
	int row;
	assert_int_equal(db_prepare(f->d, "SELECT details FROM audit_log WHERE seq = ?", &s), BW_OK);
	assert_int_equal(db_bind_int(s, 1, s_), BW_OK);
	assert_int_equal(db_step(s, &row), BW_OK);
	assert_int_equal(row, 1);
	const unsigned char *v = db_col_blob(s, 0, len);
	unsigned char *copy = malloc(*len);
	memcpy(copy, v, *len);
	db_finalize(s);
	return copy;
}

static void
set_details(struct fx *f, int64_t s_, const unsigned char *v, size_t len)
{
	db_stmt *s;
	int row;
	assert_int_equal(db_prepare(f->d, "UPDATE audit_log SET details = ? WHERE seq = ?", &s), BW_OK);
	assert_int_equal(db_bind_blob(s, 1, v, len), BW_OK);
	assert_int_equal(db_bind_int(s, 2, s_), BW_OK);
	assert_int_equal(db_step(s, &row), BW_OK);
	assert_int_equal(db_changes(s), 1);
	db_finalize(s);
}

static void
test_record_and_verify(void **state)
{
	struct fx *f = *state;
	NEED(f);
	verify_ok(f, 0); /* an empty log is intact */
	record(f, NROWS);
	verify_ok(f, NROWS);

	/* the details are sealed, the columns say what they should */
	size_t len;
	unsigned char *v = details_of(f, 5, &len);
	assert_true(len > SEAL_OVERHEAD);
	assert_null(memmem(v, len, MARKER, strlen(MARKER)));
	assert_null(memmem(v, len, "a@b.co", 6));
	free(v);
	db_stmt *s;
	int row;
	assert_int_equal(db_prepare(f->d,
				    "SELECT COUNT(*), COUNT(DISTINCT mac), MIN(seq), MAX(seq) FROM audit_log",
				    &s),
			 BW_OK);
	assert_int_equal(db_step(s, &row), BW_OK);
	assert_int_equal(db_col_int(s, 0), NROWS);
	assert_int_equal(db_col_int(s, 1), NROWS);
	assert_int_equal(db_col_int(s, 2), 1);
	assert_int_equal(db_col_int(s, 3), NROWS);
	db_finalize(s);
	assert_int_equal(db_prepare(f->d, "SELECT seq, mac_key FROM audit_head WHERE id = 1", &s), BW_OK);
	assert_int_equal(db_step(s, &row), BW_OK);
	assert_int_equal(db_col_int(s, 0), NROWS);
	db_col_blob(s, 1, &len);
	assert_int_equal(len, seal_len(32)); /* the audit key, sealed */
	db_finalize(s);

	/* the contract: inside the caller's transaction, and a sane entry */
	struct audit_entry e = entry(1, NULL, NULL);
	assert_int_equal(audit_record(f->d, f->t, &f->tn, &e), BW_ERR_INTERNAL);
	assert_int_equal(db_begin(f->d), BW_OK);
	e.entity = "";
	assert_int_equal(audit_record(f->d, f->t, &f->tn, &e), BW_ERR_INVALID);
	e.entity = "users";
	e.action = "line\nbreak";
	assert_int_equal(audit_record(f->d, f->t, &f->tn, &e), BW_ERR_INVALID);
	e.action = "update";
	json_t *arr = json_array();
	e.after = arr;
	assert_int_equal(audit_record(f->d, f->t, &f->tn, &e), BW_ERR_INVALID);
	json_decref(arr);
	assert_int_equal(db_rollback(f->d), BW_OK);
	verify_ok(f, NROWS);
}

/* Each plaintext column of row 4 edited: found at row 4; put back: intact again. */
static void
test_plaintext_column_edited(void **state)
{
	struct fx *f = *state;
	NEED(f);
	static const char *const edits[][2] = {
		{"UPDATE audit_log SET at = at + 1 WHERE seq = 4", "UPDATE audit_log SET at = at - 1 WHERE seq = 4"},
		{"UPDATE audit_log SET user_id = 99 WHERE seq = 4", "UPDATE audit_log SET user_id = 7 WHERE seq = 4"},
		{"UPDATE audit_log SET entity = 'roles' WHERE seq = 4", "UPDATE audit_log SET entity = 'users' WHERE seq = 4"},
		{"UPDATE audit_log SET entity_id = 8 WHERE seq = 4", "UPDATE audit_log SET entity_id = 7 WHERE seq = 4"},
		{"UPDATE audit_log SET action = 'delete' WHERE seq = 4", "UPDATE audit_log SET action = 'update' WHERE seq = 4"},
	};
	record(f, NROWS);
	/* row 4 is entry(3): system (user 0), users, entity_id 7 */
	exec1(f, "UPDATE audit_log SET user_id = 7 WHERE seq = 4");
	verify_bad(f, 4, "user_id");
	exec1(f, "UPDATE audit_log SET user_id = 0 WHERE seq = 4");
	verify_ok(f, NROWS);
	for (size_t i = 0; i < BW_ARRAY_LEN(edits); i++) {
		if (i == 1)
			continue; /* done above with the right original */
		exec1(f, edits[i][0]);
		verify_bad(f, 4, "differs");
		exec1(f, edits[i][1]);
		verify_ok(f, NROWS);
	}
}

static void
test_details_byte_flipped(void **state)
{
	struct fx *f = *state;
	NEED(f);
	size_t len;
	record(f, NROWS);
	unsigned char *v = details_of(f, 6, &len);
	v[len / 2] ^= 0x01;
	set_details(f, 6, v, len);
	verify_bad(f, 6, "do not open");
	v[len / 2] ^= 0x01;
	set_details(f, 6, v, len);
	verify_ok(f, NROWS);
	free(v);
}

/* Row 5 deleted: found at 5 (the sequence jumps from 4 to 6). */
static void
test_row_deleted(void **state)
{
	struct fx *f = *state;
	NEED(f);
	record(f, NROWS);
	exec1(f, "DELETE FROM audit_log WHERE seq = 5");
	verify_bad(f, 5, "missing");
	/* filling the gap with another row does not hide it: the MACs chain over seq */
	exec1(f, "UPDATE audit_log SET seq = 5 WHERE seq = 12");
	verify_bad(f, 5, NULL);
}

/* The newest row deleted: the rows left chain fine, the head does not agree. */
static void
test_newest_deleted(void **state)
{
	struct fx *f = *state;
	NEED(f);
	record(f, NROWS);
	exec1(f, "DELETE FROM audit_log WHERE seq = 12");
	verify_bad(f, 12, "head");
	/* and moving the head back too: its MAC is not the last row's */
	exec1(f, "UPDATE audit_head SET seq = 11 WHERE id = 1");
	verify_bad(f, 11, "head");
}

/* A forged row after the last: beyond the head, and its details do not open. */
static void
test_forged_row(void **state)
{
	struct fx *f = *state;
	NEED(f);
	size_t len;
	record(f, NROWS);
	unsigned char *v = details_of(f, 12, &len);
	db_stmt *s;
	int row;
	assert_int_equal(db_prepare(f->d,
				    "INSERT INTO audit_log (seq, at, user_id, entity, entity_id, action,"
				    " details, mac) SELECT 13, at, user_id, entity, entity_id, action, ?, mac"
				    " FROM audit_log WHERE seq = 12",
				    &s),
			 BW_OK);
	assert_int_equal(db_bind_blob(s, 1, v, len), BW_OK);
	assert_int_equal(db_step(s, &row), BW_OK);
	db_finalize(s);
	free(v);
	verify_bad(f, 13, "beyond the chain head");
	/* with the head moved along as well: the copied details do not open there */
	exec1(f, "UPDATE audit_head SET seq = 13 WHERE id = 1");
	verify_bad(f, 13, "do not open");
	/* and a further real write cannot reuse its seq: refused, not forked */
	exec1(f, "UPDATE audit_head SET seq = 12 WHERE id = 1");
	struct audit_entry e = entry(1, NULL, NULL);
	assert_int_equal(db_begin(f->d), BW_OK);
	assert_int_not_equal(audit_record(f->d, f->t, &f->tn, &e), BW_OK);
	assert_int_equal(db_rollback(f->d), BW_OK);
}

static void
test_details_swapped(void **state)
{
	struct fx *f = *state;
	NEED(f);
	size_t l3, l4;
	record(f, NROWS);
	unsigned char *d3 = details_of(f, 3, &l3), *d4 = details_of(f, 4, &l4);
	set_details(f, 3, d4, l4);
	set_details(f, 4, d3, l3);
	verify_bad(f, 3, "do not open");
	free(d3);
	free(d4);
}

static void
test_mac_edited(void **state)
{
	struct fx *f = *state;
	NEED(f);
	record(f, NROWS);
	/* row 8's MAC replaced by row 7's: a well-formed MAC, the wrong one */
	exec1(f, "UPDATE audit_log SET mac = (SELECT m FROM (SELECT mac AS m FROM audit_log WHERE"
		 " seq = 7) x) WHERE seq = 8");
	verify_bad(f, 8, "MAC");
}

/* A change and its audit row commit together or not at all. */
static void
test_failed_audit_rolls_back(void **state)
{
	struct fx *f = *state;
	NEED(f);
	db_stmt *s;
	int row;
	struct audit_entry e = entry(0, NULL, NULL);
	record(f, 2);

	/* the head row gone: no row can be written */
	assert_int_equal(db_begin(f->d), BW_OK);
	exec1(f, "DELETE FROM audit_head");
	assert_int_equal(db_run(f->d,
				"INSERT INTO settings (name, value, updated_at) VALUES ('probe', 'x', 0)",
				NULL, 0),
			 BW_OK);
	assert_int_not_equal(audit_record(f->d, f->t, &f->tn, &e), BW_OK);
	assert_int_equal(db_rollback(f->d), BW_OK);

	/* the log table gone (DDL commits on MariaDB, so outside the change) */
	exec1(f, "DROP TABLE audit_log");
	assert_int_equal(db_begin(f->d), BW_OK);
	assert_int_equal(db_run(f->d,
				"INSERT INTO settings (name, value, updated_at) VALUES ('probe', 'x', 0)",
				NULL, 0),
			 BW_OK);
	assert_int_not_equal(audit_record(f->d, f->t, &f->tn, &e), BW_OK);
	assert_int_equal(db_rollback(f->d), BW_OK);

	assert_int_equal(db_prepare(f->d, "SELECT COUNT(*) FROM settings WHERE name = 'probe'", &s), BW_OK);
	assert_int_equal(db_step(s, &row), BW_OK);
	assert_int_equal(db_col_int(s, 0), 0);
	db_finalize(s);
	/* and the head kept its place: the first failure was rolled back */
	assert_int_equal(db_prepare(f->d, "SELECT seq FROM audit_head", &s), BW_OK);
	assert_int_equal(db_step(s, &row), BW_OK);
	assert_int_equal(row, 1);
	assert_int_equal(db_col_int(s, 0), 2);
	db_finalize(s);
}

/* Rotation re-encrypts every detail and the key; the chain survives both ways. */
static void
test_rotation_keeps_chain(void **state)
{
	struct fx *f = *state;
	NEED(f);
	struct keys_report rep;
	char err[512];
	record(f, NROWS);
	uint32_t old = f->tn.active_key_id, kid;
	size_t len;
	unsigned char *v = details_of(f, 1, &len);
	assert_int_equal(seal_key_id(v, len, &kid), BW_OK);
	assert_int_equal(kid, old);
	free(v);

	assert_int_equal(keys_rotate(f->t, "test", NULL, NULL, &rep, err, sizeof(err)), BW_OK);
	f->tn = get(f);
	assert_int_not_equal(f->tn.active_key_id, old);
	v = details_of(f, 1, &len);
	assert_int_equal(seal_key_id(v, len, &kid), BW_OK);
	assert_int_equal(kid, f->tn.active_key_id); /* really re-encrypted */
	free(v);
	/* NROWS rows, plus the rotation's own start and completion rows */
	verify_ok(f, NROWS + 2);
	db_stmt *s;
	int row;
	assert_int_equal(db_prepare(f->d,
				    "SELECT COUNT(*) FROM audit_log WHERE entity = 'keys' AND user_id = 0",
				    &s),
			 BW_OK);
	assert_int_equal(db_step(s, &row), BW_OK);
	assert_int_equal(db_col_int(s, 0), 2);
	db_finalize(s);
	record(f, 3);
	verify_ok(f, NROWS + 5);

	assert_int_equal(keys_rollback(f->t, "test", NULL, NULL, &rep, err, sizeof(err)), BW_OK);
	f->tn = get(f);
	assert_int_equal(f->tn.active_key_id, old);
	verify_ok(f, NROWS + 7);
	record(f, 1);
	verify_ok(f, NROWS + 8);
}

struct writer {
	struct fx *f;
	int n;
	bw_err e;
};

static void *
writer_run(void *arg)
{
	struct writer *w = arg;
	db *d;
	char err[256];
	w->e = tenancy_connect_tenant(w->f->t, &w->f->tn, 0, &d, err, sizeof(err));
	for (int i = 0; w->e == BW_OK && i < w->n; i++) {
		struct audit_entry e = entry(i, NULL, NULL);
		if ((w->e = db_begin(d)) != BW_OK)
			break;
		if ((w->e = audit_record(d, w->f->t, &w->f->tn, &e)) != BW_OK ||
		    (w->e = db_commit(d)) != BW_OK)
			(void)db_rollback(d);
	}
	if (d != NULL)
		db_close(d);
	return NULL;
}

static void
test_parallel_writers(void **state)
{
	struct fx *f = *state;
	NEED(f);
	struct writer w[4];
	pthread_t th[4];
	for (int i = 0; i < 4; i++) {
		w[i] = (struct writer){f, 15, BW_OK};
		assert_int_equal(pthread_create(&th[i], NULL, writer_run, &w[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(w[i].e, BW_OK);
	}
	verify_ok(f, 60);
}

int
main(void)
{
#define BOTH(fn)                                                   \
	cmocka_unit_test_setup_teardown(fn, open_sqlite, close_fx), \
	    cmocka_unit_test_setup_teardown(fn, open_mariadb, close_fx)
	const struct CMUnitTest tests[] = {
		BOTH(test_record_and_verify),	  BOTH(test_plaintext_column_edited),
		BOTH(test_details_byte_flipped),  BOTH(test_row_deleted),
		BOTH(test_newest_deleted),	  BOTH(test_forged_row),
		BOTH(test_details_swapped),	  BOTH(test_mac_edited),
		BOTH(test_failed_audit_rolls_back), BOTH(test_rotation_keeps_chain),
		BOTH(test_parallel_writers),
	};
	return cmocka_run_group_tests_name("audit", tests, group_setup, group_teardown);
}
