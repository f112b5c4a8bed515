/*
 * Tenancy on both drivers: names and hosts, provisioning (all or nothing),
 * isolation enforced by the database, migrations, the registry and the pool.
 */
#include "unit.h"

#include <sys/stat.h>
#include <unistd.h>

#include "db/migrate.h"
#include "dbenv.h"
#include "tenancy/tenancy.h"

static char tmpdir[64];

struct fx {
	struct config cfg;
	struct tenancy *t;
	const char *driver;
};

static int
group_setup(void **state)
{
	(void)state;
	return unit_mkdtemp(tmpdir, sizeof(tmpdir), "ten");
}

static int
group_teardown(void **state)
{
	(void)state;
	return unit_rmtree(tmpdir);
}

static int seq;

static int
open_driver(void **state, const char *driver)
{
	struct fx *f = calloc(1, sizeof(*f));
	char err[512];
	if (strcmp(driver, "mariadb") == 0 && !dbenv_have_mariadb()) {
		free(f);
		*state = NULL;
		return 0;
	}
	f->driver = driver;
	/* A fresh var dir and control database per test, migrated from nothing. */
	if (dbenv_open(&f->cfg, driver, tmpdir, "saas_control_unit", ++seq, &f->t, err, sizeof(err)) !=
	    BW_OK)
		fail_msg("setup: %s", err);
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

static void
create_ok(struct fx *f, const char *slug)
{
	char otp[64], err[512];
	if (tenant_create(f->t, slug, "admin@example.com", NULL, NULL, otp, sizeof(otp), err,
			  sizeof(err)) != BW_OK)
		fail_msg("create %s: %s", slug, err);
	assert_int_equal(strlen(otp), 23); /* 4 groups of 5 and dashes */
}

static void
get_tenant(struct fx *f, const char *slug, struct tenant *out)
{
	struct tenant *v;
	size_t n;
	char err[256];
	int found = 0;
	assert_int_equal(tenant_list(f->t, &v, &n, err, sizeof(err)), BW_OK);
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i].slug, slug) == 0) {
			*out = v[i];
			found = 1;
		}
	free(v);
	assert_true(found);
}

/* --- names and hosts ---------------------------------------------------- */

static void
test_slugs(void **state)
{
	(void)state;
	const char *why;
	const char *good[] = {"abc", "acme", "a-b", "x9z", "abcdefghijabcdefghijabcdefghij12", "00a"};
	const char *bad[] = {"ab",   "-ab",  "ab-",  "Acme", "a_b",  "a.b", "a b", "",
			     "www",  "api",  "admin", "control", "abcdefghijabcdefghijabcdefghij123",
			     "caf\xc3\xa9", "a\nb"};
	for (size_t i = 0; i < BW_ARRAY_LEN(good); i++)
		if (tenant_slug_check(good[i], &why) != BW_OK)
			fail_msg("'%s' refused: %s", good[i], why);
	for (size_t i = 0; i < BW_ARRAY_LEN(bad); i++) {
		if (tenant_slug_check(bad[i], &why) == BW_OK)
			fail_msg("'%s' accepted", bad[i]);
		assert_non_null(why);
	}
}

static void
test_hosts(void **state)
{
	(void)state;
	char slug[TENANT_SLUG_MAX + 1];
	assert_int_equal(tenant_from_host("acme.localhost", "localhost", slug), BW_OK);
	assert_string_equal(slug, "acme");
	assert_int_equal(tenant_from_host("ACME.LocalHost:8443", "localhost", slug), BW_OK);
	assert_string_equal(slug, "acme");
	assert_int_equal(tenant_from_host("acme.psa.example.com.", "psa.example.com", slug), BW_OK);
	/* Found by tests/fuzz/fuzz_host: the absolute form was refused once a port followed. */
	assert_int_equal(tenant_from_host("Acme.localhost.:8443", "localhost", slug), BW_OK);
	assert_string_equal(slug, "acme");
	const char *bad[] = {NULL,
			     "localhost",
			     "acme.localhost.evil.com",
			     "acme.evil-localhost",
			     "a.b.localhost",
			     "www.localhost",
			     ".localhost",
			     "acme.localhost:",
			     "acme.localhost.:",
			     "acme.localhost..:8443",
			     "acme.localhost:8443.",
			     "acme.localhost:84:43",
			     "acme.localhost:84a3",
			     "acme.localhost:123456",
			     "acme.localhostx",
			     "ac_me.localhost",
			     "acme.localhost/x"};
	for (size_t i = 0; i < BW_ARRAY_LEN(bad); i++)
		if (tenant_from_host(bad[i], "localhost", slug) == BW_OK)
			fail_msg("host '%s' gave tenant %s", bad[i] ? bad[i] : "(null)", slug);
}

/* --- provisioning -------------------------------------------------------- */

static void
test_create_list_state_delete(void **state)
{
	struct fx *f = *state;
	NEED(f);
	char err[512], otp[64];
	struct tenant tn;
	create_ok(f, "acme");
	get_tenant(f, "acme", &tn);
	assert_int_equal(tn.state, TENANT_ACTIVE);
	assert_string_equal(tn.plan, "standard");

	/* duplicate, bad name, bad e-mail, short password, unknown plan: refused, nothing made */
	assert_int_equal(tenant_create(f->t, "acme", "a@b.co", NULL, NULL, otp, sizeof(otp), err,
				       sizeof(err)),
			 BW_ERR_CONFLICT);
	assert_non_null(strstr(err, "already exists"));
	assert_int_equal(tenant_create(f->t, "Bad_Name", "a@b.co", NULL, NULL, otp, sizeof(otp), err,
				       sizeof(err)),
			 BW_ERR_INVALID);
	assert_int_equal(tenant_create(f->t, "beta", "not-an-email", NULL, NULL, otp, sizeof(otp),
				       err, sizeof(err)),
			 BW_ERR_INVALID);
	assert_int_equal(tenant_create(f->t, "beta", "a@b.co", "short", NULL, otp, sizeof(otp), err,
				       sizeof(err)),
			 BW_ERR_INVALID);
	assert_int_equal(tenant_create(f->t, "beta", "a@b.co", NULL, "gold", otp, sizeof(otp), err,
				       sizeof(err)),
			 BW_ERR_INVALID);
	struct tenant *v;
	size_t n;
	assert_int_equal(tenant_list(f->t, &v, &n, err, sizeof(err)), BW_OK);
	assert_int_equal(n, 1);
	free(v);

	/* with a given password: nothing printed, and it is stored only as argon2id */
	assert_int_equal(tenant_create(f->t, "beta", "b@b.co", "correct horse battery", "enterprise",
				       otp, sizeof(otp), err, sizeof(err)),
			 BW_OK);
	get_tenant(f, "beta", &tn);
	db *d;
	assert_int_equal(tenancy_connect_tenant(f->t, &tn, 0, &d, err, sizeof(err)), BW_OK);
	db_stmt *s;
	int row;
	assert_int_equal(db_prepare(d, "SELECT password_hash, must_change_password FROM users", &s),
			 BW_OK);
	assert_int_equal(db_step(s, &row), BW_OK);
	assert_int_equal(row, 1);
	assert_true(strncmp(db_col_text(s, 0), "$argon2id$v=19$m=19456,t=2,p=1$", 31) == 0);
	assert_null(strstr(db_col_text(s, 0), "correct horse"));
	assert_int_equal(db_col_int(s, 1), 0);
	db_finalize(s);
	db_close(d);

	assert_int_equal(tenant_set_state(f->t, "acme", TENANT_SUSPENDED, err, sizeof(err)), BW_OK);
	get_tenant(f, "acme", &tn);
	assert_int_equal(tn.state, TENANT_SUSPENDED);
	assert_int_equal(tenant_set_state(f->t, "acme", TENANT_ACTIVE, err, sizeof(err)), BW_OK);
	assert_int_equal(tenant_set_state(f->t, "nobody", TENANT_ACTIVE, err, sizeof(err)),
			 BW_ERR_NOTFOUND);

	assert_int_equal(tenant_delete(f->t, "acme", err, sizeof(err)), BW_OK);
	assert_int_equal(tenant_delete(f->t, "acme", err, sizeof(err)), BW_ERR_NOTFOUND);
	/* its database is gone: connecting with its identity fails */
	get_tenant(f, "beta", &tn);
	struct tenant gone = tn;
	snprintf(gone.slug, sizeof(gone.slug), "acme");
	if (strcmp(f->driver, "mariadb") == 0) {
		snprintf(gone.db_name, sizeof(gone.db_name), "saas_tenant_acme");
		snprintf(gone.db_user, sizeof(gone.db_user), "bw_acme");
	} else {
		snprintf(gone.db_name, sizeof(gone.db_name), "tenants/acme.db");
	}
	assert_int_not_equal(tenancy_connect_tenant(f->t, &gone, 0, &d, err, sizeof(err)), BW_OK);
}

/*
 * A failure half-way leaves nothing behind. MariaDB: the account name is
 * already taken, so CREATE USER fails after CREATE DATABASE succeeded.
 * SQLite: the WAL file's name is taken by a directory, so the first write
 * fails after the database file was created.
 */
static void
test_create_half_way_failure_leaves_nothing(void **state)
{
	struct fx *f = *state;
	NEED(f);
	char err[512], otp[64], path[1300];
	db *c = tenancy_control(f->t);
	if (strcmp(f->driver, "mariadb") == 0) {
		assert_int_equal(db_exec(c, "CREATE USER 'bw_gamma'@'%' IDENTIFIED BY 'x'"), BW_OK);
	} else {
		snprintf(path, sizeof(path), "%s/tenants/gamma.db-wal", f->cfg.var_dir);
		assert_int_equal(mkdir(path, 0700), 0);
	}
	bw_err e = tenant_create(f->t, "gamma", "g@g.co", NULL, NULL, otp, sizeof(otp), err,
				 sizeof(err));
	assert_int_not_equal(e, BW_OK);
	print_message("expected failure: %s\n", err);
	assert_string_equal(otp, "");
	struct tenant *v;
	size_t n;
	assert_int_equal(tenant_list(f->t, &v, &n, err, sizeof(err)), BW_OK);
	assert_int_equal(n, 0); /* no registry row */
	free(v);
	if (strcmp(f->driver, "mariadb") == 0) {
		db_stmt *s;
		int row;
		assert_int_equal(db_prepare(c, "SELECT COUNT(*) FROM information_schema.schemata WHERE "
					       "schema_name = 'saas_tenant_gamma'",
					    &s),
				 BW_OK);
		assert_int_equal(db_step(s, &row), BW_OK);
		assert_int_equal(db_col_int(s, 0), 0); /* no orphan database */
		db_finalize(s);
		/* the account that existed before is not ours: it was left alone */
		assert_int_equal(db_exec(c, "DROP USER 'bw_gamma'@'%'"), BW_OK);
	} else {
		snprintf(path, sizeof(path), "%s/tenants/gamma.db", f->cfg.var_dir);
		assert_int_not_equal(access(path, F_OK), 0); /* no orphan file */
		snprintf(path, sizeof(path), "%s/tenants/gamma.db-wal", f->cfg.var_dir);
		assert_int_equal(rmdir(path), 0);
	}
	/* and the name is free again */
	create_ok(f, "gamma");
}

/* --- isolation enforced by the database ----------------------------------- */

static void
test_cross_tenant_access_refused(void **state)
{
	struct fx *f = *state;
	NEED(f);
	char err[512], sql[1400];
	struct tenant a, b;
	db *d;
	create_ok(f, "alpha");
	create_ok(f, "bravo");
	get_tenant(f, "alpha", &a);
	get_tenant(f, "bravo", &b);
	assert_int_equal(tenancy_connect_tenant(f->t, &a, 0, &d, err, sizeof(err)), BW_OK);
	/* Arbitrary SQL on alpha's connection cannot read or write bravo. */
	if (strcmp(f->driver, "mariadb") == 0) {
		db_stmt *s;
		int row;
		bw_err e = db_prepare(d, "SELECT email FROM saas_tenant_bravo.users", &s);
		if (e == BW_OK) {
			e = db_step(s, &row);
			db_finalize(s);
		}
		assert_int_equal(e, BW_ERR_DENIED);
		assert_int_equal(db_exec(d, "USE saas_tenant_bravo"), BW_ERR_DENIED);
		assert_int_equal(db_exec(d, "CREATE DATABASE saas_tenant_evil"), BW_ERR_DENIED);
		assert_int_not_equal(db_exec(d, "SELECT * FROM saas_control_unit1.tenants"), BW_OK);
		assert_int_not_equal(db_exec(d, "SELECT user, password FROM mysql.user"), BW_OK);
		assert_int_equal(db_exec(d, "GRANT SELECT ON saas_tenant_alpha.* TO 'bw_bravo'@'%'"),
				 BW_ERR_DENIED);
	} else {
		snprintf(sql, sizeof(sql), "ATTACH DATABASE '%s/%s' AS b", f->cfg.var_dir, b.db_name);
		assert_int_equal(db_exec(d, sql), BW_ERR_DENIED);
		snprintf(sql, sizeof(sql), "ATTACH DATABASE '%s/control.db' AS c", f->cfg.var_dir);
		assert_int_equal(db_exec(d, sql), BW_ERR_DENIED);
	}
	/* and its own data is there */
	assert_int_equal(db_exec(d, "SELECT email FROM users"), BW_OK);
	db_close(d);

	/* A wrong password for alpha's account is refused (MariaDB checks credentials). */
	if (strcmp(f->driver, "mariadb") == 0) {
		struct tenant forged = a;
		snprintf(forged.db_user, sizeof(forged.db_user), "bw_bravo");
		assert_int_not_equal(tenancy_connect_tenant(f->t, &forged, 0, &d, err, sizeof(err)),
				     BW_OK);
	}
}

/* --- migrations ------------------------------------------------------------- */

static const char *const ok_steps[] = {"CREATE TABLE m1 (id @ID)@OPTS", "CREATE TABLE m2 (id @ID)@OPTS",
				       NULL};
static const char *const bad_steps[] = {"CREATE TABLE m3 (id @ID)@OPTS",
					"CREATE TABLE m3 (id @ID)@OPTS", /* fails: exists */
					"CREATE TABLE m4 (id @ID)@OPTS", NULL};
static const char *const fixed_steps[] = {"CREATE TABLE m3 (id @ID)@OPTS",
					  "CREATE TABLE m3b (id @ID)@OPTS",
					  "CREATE TABLE m4 (id @ID)@OPTS", NULL};

static void
test_migrations_resume_after_failure(void **state)
{
	struct fx *f = *state;
	NEED(f);
	char err[512];
	int from, to, v;
	struct tenant a;
	db *d;
	create_ok(f, "mig");
	get_tenant(f, "mig", &a);
	assert_int_equal(tenancy_connect_tenant(f->t, &a, 0, &d, err, sizeof(err)), BW_OK);
	const struct migration good[] = {{1, "base", ok_steps}};
	const struct migration bad[] = {{1, "base", ok_steps}, {2, "broken", bad_steps}};
	const struct migration fixed[] = {{1, "base", ok_steps}, {2, "broken", fixed_steps}};
	struct migration_set s1 = {"test", good, 1}, s2 = {"test", bad, 2}, s3 = {"test", fixed, 2};

	/* the tenant schema is version 1 already; use a fresh table namespace via a new db */
	assert_int_equal(db_exec(d, "DELETE FROM schema_migrations"), BW_OK);
	assert_int_equal(migrate_run(d, &s1, &from, &to, err, sizeof(err)), BW_OK);
	assert_int_equal(to, 1);
	assert_int_equal(migrate_run(d, &s1, &from, &to, err, sizeof(err)), BW_OK); /* idempotent */
	assert_int_equal(from, 1);
	assert_int_equal(to, 1);

	assert_int_not_equal(migrate_run(d, &s2, &from, &to, err, sizeof(err)), BW_OK);
	assert_non_null(strstr(err, "migration 2 (broken) step 2"));
	assert_non_null(strstr(err, "CREATE TABLE m3"));
	assert_int_equal(migrate_current(d, &v), BW_OK);
	assert_int_equal(v, 1); /* not marked done */
	assert_false(db_in_tx(d));

	/* Rerun with the fixed list: resumes (MariaDB) or redoes (SQLite) and completes. */
	if (migrate_run(d, &s3, &from, &to, err, sizeof(err)) != BW_OK)
		fail_msg("resume: %s", err);
	assert_int_equal(to, 2);
	assert_int_equal(db_exec(d, "SELECT COUNT(*) FROM m4"), BW_OK);
	assert_int_equal(db_exec(d, "SELECT COUNT(*) FROM m3b"), BW_OK);
	db_close(d);
}

/* --- registry and pool ----------------------------------------------------------- */

static void
test_registry_sees_changes(void **state)
{
	struct fx *f = *state;
	NEED(f);
	char err[512];
	struct registry *r;
	struct tenant tn;
	create_ok(f, "one");
	assert_int_equal(registry_start(f->t, &r, err, sizeof(err)), BW_OK);
	assert_int_equal(registry_lookup(r, "one", &tn), BW_OK);
	assert_int_equal(registry_lookup(r, "two", &tn), BW_ERR_NOTFOUND);
	registry_stop(r);

	/* A second process's view: its own tenancy handle, refreshed by version. */
	struct tenancy *other;
	assert_int_equal(tenancy_open(&f->cfg, 0, &other, err, sizeof(err)), BW_OK);
	assert_int_equal(registry_start(other, &r, err, sizeof(err)), BW_OK);
	create_ok(f, "two");
	assert_int_equal(tenant_set_state(f->t, "one", TENANT_SUSPENDED, err, sizeof(err)), BW_OK);
	/* Both changes arrive (possibly in two refreshes): poll for both. */
	int seen = 0;
	for (int i = 0; i < 200 && !seen; i++) {
		usleep(20000);
		seen = registry_lookup(r, "two", &tn) == BW_OK &&
		       registry_lookup(r, "one", &tn) == BW_OK && tn.state == TENANT_SUSPENDED;
	}
	assert_true(seen);
	assert_int_equal(registry_count(r), 2);
	registry_stop(r);
	tenancy_close(other);
}

static void
test_pool_binds_and_bounds(void **state)
{
	struct fx *f = *state;
	NEED(f);
	char err[512];
	struct connpool *p;
	struct tenant a, b;
	db *c1, *c2, *c3;
	long opened, open_now;
	create_ok(f, "pla");
	create_ok(f, "plb");
	get_tenant(f, "pla", &a);
	get_tenant(f, "plb", &b);
	f->cfg.db_pool_per_tenant = 2;
	f->cfg.db_pool_total = 3;
	f->cfg.db_pool_wait_ms = 100;
	struct tenancy *t2;
	assert_int_equal(tenancy_open(&f->cfg, 0, &t2, err, sizeof(err)), BW_OK);
	assert_int_equal(connpool_new(t2, &p), BW_OK);

	/* Serving A never opens B. */
	assert_int_equal(connpool_borrow(p, &a, &c1), BW_OK);
	assert_int_equal(db_exec(c1, "SELECT COUNT(*) FROM users"), BW_OK);
	connpool_return(p, &a, c1);
	assert_int_equal(connpool_borrow(p, &a, &c2), BW_OK);
	assert_ptr_equal(c1, c2); /* reused */
	connpool_stats(p, "pla", &opened, &open_now);
	assert_int_equal(opened, 1);
	connpool_stats(p, "plb", &opened, &open_now);
	assert_int_equal(opened, 0);

	/* Per-tenant bound: a third concurrent connection for A waits, then 503. */
	assert_int_equal(connpool_borrow(p, &a, &c1), BW_OK);
	assert_int_equal(connpool_borrow(p, &a, &c3), BW_ERR_UNAVAILABLE);

	/* Total bound: B gets the last slot; then nothing is idle to evict. */
	assert_int_equal(connpool_borrow(p, &b, &c3), BW_OK);
	db *c4;
	assert_int_equal(connpool_borrow(p, &b, &c4), BW_ERR_UNAVAILABLE);
	assert_int_equal(connpool_total(p), 3);

	/* A connection returned inside a transaction is discarded, not reused. */
	assert_int_equal(db_begin(c1), BW_OK);
	connpool_return(p, &a, c1);
	connpool_stats(p, "pla", &opened, &open_now);
	assert_int_equal(open_now, 1);

	/* Returned idle ones are evicted least-recently-used when the total is reached. */
	connpool_return(p, &a, c2);
	connpool_return(p, &b, c3);
	assert_int_equal(connpool_borrow(p, &b, &c4), BW_OK); /* reuses B's */
	assert_ptr_equal(c4, c3);
	assert_int_equal(connpool_borrow(p, &b, &c3), BW_OK); /* new for B */
	assert_int_equal(connpool_total(p), 3);
	db *c5;
	/* A's idle one is still there: reuse, no eviction needed */
	assert_int_equal(connpool_borrow(p, &a, &c5), BW_OK);
	assert_ptr_equal(c5, c2);
	connpool_return(p, &a, c5);
	connpool_return(p, &b, c4);
	connpool_return(p, &b, c3);
	connpool_free(p);
	tenancy_close(t2);
}

int
main(void)
{
#define BOTH(fn)                                                   \
	cmocka_unit_test_setup_teardown(fn, open_sqlite, close_fx), \
	    cmocka_unit_test_setup_teardown(fn, open_mariadb, close_fx)
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_slugs),
		cmocka_unit_test(test_hosts),
		BOTH(test_create_list_state_delete),
		BOTH(test_create_half_way_failure_leaves_nothing),
		BOTH(test_cross_tenant_access_refused),
		BOTH(test_migrations_resume_after_failure),
		BOTH(test_registry_sees_changes),
		BOTH(test_pool_binds_and_bounds),
	};
	return cmocka_run_group_tests_name("tenancy", tests, group_setup, group_teardown);
}
