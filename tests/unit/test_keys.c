/*
 * Encryption at rest end to end on both drivers: sealed fields in a tenant
 * database, tampering and transplanting, rotation (also killed with SIGKILL
 * part-way and resumed), rollback, purge after the retention window,
 * crypto-shredding, the encryption limit and master key rotation.
 */
#include "unit.h"

#include <signal.h>
#include <sys/wait.h>
#include <time.h>

#include "crypto/crypto.h"
#include "db/migrate.h"
#include "dbenv.h"
#include "tenancy/tenancy.h"

#define NFIELDS 600 /* more than two rotation batches */

static char tmpdir[64];
static int seq;

struct fx {
	struct config cfg;
	struct tenancy *t;
	const char *driver;
	char slug[2][16];
};

static int
group_setup(void **state)
{
	(void)state;
	return unit_mkdtemp(tmpdir, sizeof(tmpdir), "keys");
}

static int
group_teardown(void **state)
{
	(void)state;
	return unit_rmtree(tmpdir);
}

static void
reopen(struct fx *f)
{
	char err[512];
	tenancy_close(f->t);
	if (tenancy_open(&f->cfg, 0, &f->t, err, sizeof(err)) != BW_OK)
		fail_msg("reopen: %s", err);
}

static struct tenant
get(struct fx *f, const char *slug)
{
	struct tenant *v, r;
	size_t n;
	char err[256];
	memset(&r, 0, sizeof(r));
	assert_int_equal(tenant_list(f->t, &v, &n, err, sizeof(err)), BW_OK);
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i].slug, slug) == 0)
			r = v[i];
	free(v);
	assert_string_equal(r.slug, slug);
	return r;
}

static void
value_of(int i, char *out, size_t len)
{
	snprintf(out, len, "refresh-token-%05d-secret", i);
}

/* Insert NFIELDS integrations with sealed secrets for tenant slug. */
static void
fill(struct fx *f, const char *slug)
{
	struct tenant tn = get(f, slug);
	db *d;
	char err[256], prov[32], val[64];
	assert_int_equal(tenancy_connect_tenant(f->t, &tn, 0, &d, err, sizeof(err)), BW_OK);
	assert_int_equal(db_begin(d), BW_OK);
	for (int i = 0; i < NFIELDS; i++) {
		db_stmt *s;
		int row;
		snprintf(prov, sizeof(prov), "p%05d", i);
		value_of(i, val, sizeof(val));
		assert_int_equal(db_prepare(d, "INSERT INTO integrations (provider, config, created_at,"
					       " updated_at) VALUES (?, '{}', 0, 0)",
					    &s),
				 BW_OK);
		assert_int_equal(db_bind_text(s, 1, prov), BW_OK);
		assert_int_equal(db_step(s, &row), BW_OK);
		int64_t id = db_last_id(s);
		db_finalize(s);
		unsigned char *sealed;
		size_t sl;
		assert_int_equal(field_seal(f->t, &tn, "integrations", "secret", id, val, strlen(val),
					    &sealed, &sl),
				 BW_OK);
		assert_int_equal(db_prepare(d, "UPDATE integrations SET secret = ? WHERE id = ?", &s),
				 BW_OK);
		assert_int_equal(db_bind_blob(s, 1, sealed, sl), BW_OK);
		assert_int_equal(db_bind_int(s, 2, id), BW_OK);
		assert_int_equal(db_step(s, &row), BW_OK);
		db_finalize(s);
		free(sealed);
	}
	assert_int_equal(db_commit(d), BW_OK);
	db_close(d);
}

/* Every value of slug opens to what was stored; returns how many use key kid (0: any). */
static int
verify(struct fx *f, const char *slug, uint32_t kid)
{
	struct tenant tn = get(f, slug);
	db *d;
	db_stmt *s;
	int row, n = 0, on_kid = 0;
	char err[256], want[64];
	assert_int_equal(tenancy_connect_tenant(f->t, &tn, 0, &d, err, sizeof(err)), BW_OK);
	assert_int_equal(db_prepare(d, "SELECT id, provider, secret FROM integrations ORDER BY id", &s),
			 BW_OK);
	while (db_step(s, &row) == BW_OK && row) {
		size_t len, ol;
		char *out;
		uint32_t k;
		const unsigned char *v = db_col_blob(s, 2, &len);
		int i = atoi(db_col_text(s, 1) + 1);
		if (field_open(f->t, slug, "integrations", "secret", db_col_int(s, 0), v, len, &out, &ol) !=
		    BW_OK)
			fail_msg("%s row %lld does not open", slug, (long long)db_col_int(s, 0));
		value_of(i, want, sizeof(want));
		assert_string_equal(out, want);
		free(out);
		assert_int_equal(seal_key_id(v, len, &k), BW_OK);
		on_kid += k == kid;
		n++;
	}
	db_finalize(s);
	db_close(d);
	assert_int_equal(n, NFIELDS);
	return on_kid;
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
	if (dbenv_open(&f->cfg, driver, tmpdir, "saas_control_keys", ++seq, &f->t, err, sizeof(err)) !=
	    BW_OK)
		fail_msg("setup: %s", err);
	for (int i = 0; i < 2; i++) {
		snprintf(f->slug[i], sizeof(f->slug[i]), "k%d%c", seq, 'a' + i);
		if (tenant_create(f->t, f->slug[i], "a@b.co", NULL, NULL, otp, sizeof(otp), err,
				  sizeof(err)) != BW_OK)
			fail_msg("create: %s", err);
	}
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

/* The raw sealed value of row id in slug's integrations (malloc'd). */
static unsigned char *
raw(struct fx *f, const char *slug, int64_t id, size_t *len)
{
	struct tenant tn = get(f, slug);
	db *d;
	db_stmt *s;
	int row;
	char err[256];
	assert_int_equal(tenancy_connect_tenant(f->t, &tn, 0, &d, err, sizeof(err)), BW_OK);
	assert_int_equal(db_prepare(d, "SELECT secret FROM integrations WHERE id = ?", &s), BW_OK);
	assert_int_equal(db_bind_int(s, 1, id), BW_OK);
	assert_int_equal(db_step(s, &row), BW_OK);
	assert_int_equal(row, 1);
	const unsigned char *v = db_col_blob(s, 0, len);
	unsigned char *copy = malloc(*len);
	memcpy(copy, v, *len);
	db_finalize(s);
	db_close(d);
	return copy;
}

static void
test_fields_bound_and_not_plaintext(void **state)
{
	struct fx *f = *state;
	NEED(f);
	char *out;
	size_t len, ol;
	fill(f, f->slug[0]);
	fill(f, f->slug[1]);
	verify(f, f->slug[0], 0);
	unsigned char *v = raw(f, f->slug[0], 5, &len);
	assert_null(memmem(v, len, "refresh-token", 13));
	/* moved to another row, another column, another tenant: refused */
	assert_int_equal(field_open(f->t, f->slug[0], "integrations", "secret", 6, v, len, &out, &ol),
			 BW_ERR_CRYPTO);
	assert_int_equal(field_open(f->t, f->slug[0], "integrations", "config", 5, v, len, &out, &ol),
			 BW_ERR_CRYPTO);
	assert_int_equal(field_open(f->t, f->slug[1], "integrations", "secret", 5, v, len, &out, &ol),
			 BW_ERR_CRYPTO);
	/* a flipped byte anywhere: refused, and nothing comes out */
	v[len / 2] ^= 0x40;
	assert_int_equal(field_open(f->t, f->slug[0], "integrations", "secret", 5, v, len, &out, &ol),
			 BW_ERR_CRYPTO);
	assert_null(out);
	free(v);
	/* the plaintext is in no database file (SQLite) and no dump (MariaDB) */
	char cmd[5000];
	if (strcmp(f->driver, "sqlite") == 0) {
		snprintf(cmd, sizeof(cmd), "grep -rqa 'refresh-token' '%s'", f->cfg.var_dir);
		assert_int_not_equal(system(cmd), 0);
		/* and the check would see it if it were there */
		snprintf(cmd, sizeof(cmd), "grep -rqa 'integrations' '%s'", f->cfg.var_dir);
		assert_int_equal(system(cmd), 0);
	} else {
		/*
		 * This test's own databases only: the HTTP suites run beside it on
		 * the same server, and --all-databases trips over their tenants
		 * coming and going.
		 */
		snprintf(cmd, sizeof(cmd),
			 "mariadb-dump --no-defaults -S '%s' -uroot --hex-blob=0 --databases '%s' "
			 "'saas_tenant_%s' 'saas_tenant_%s' > '%s.dump' && ! grep -qa 'refresh-token' "
			 "'%s.dump' && grep -qa 'p00005' '%s.dump'",
			 getenv("BULWARK_TEST_MARIADB_SOCKET"), f->cfg.db_control, f->slug[0], f->slug[1],
			 f->cfg.var_dir, f->cfg.var_dir, f->cfg.var_dir);
		assert_int_equal(system(cmd), 0);
	}
}

static void
test_rotate_and_rollback(void **state)
{
	struct fx *f = *state;
	NEED(f);
	char err[512];
	struct keys_report rep;
	fill(f, f->slug[0]);
	fill(f, f->slug[1]);
	uint32_t old0 = get(f, f->slug[0]).active_key_id;
	assert_int_equal(verify(f, f->slug[0], old0), NFIELDS);

	/* a running server (its own registry) picks the new key up without a restart */
	struct tenancy *srv;
	struct registry *reg;
	struct tenant seen_tn;
	assert_int_equal(tenancy_open(&f->cfg, 0, &srv, err, sizeof(err)), BW_OK);
	assert_int_equal(registry_start(srv, &reg, err, sizeof(err)), BW_OK);
	assert_int_equal(registry_lookup(reg, f->slug[0], &seen_tn), BW_OK);
	assert_int_equal(seen_tn.active_key_id, old0);

	assert_int_equal(keys_rotate(f->t, "test", NULL, NULL, &rep, err, sizeof(err)), BW_OK);
	assert_int_equal(rep.tenants, 2);
	assert_int_equal(rep.fields, 2 * NFIELDS);
	uint32_t new0 = get(f, f->slug[0]).active_key_id;
	for (int i = 0; i < 200; i++) {
		assert_int_equal(registry_lookup(reg, f->slug[0], &seen_tn), BW_OK);
		if (seen_tn.active_key_id == new0)
			break;
		usleep(20000);
	}
	assert_int_equal(seen_tn.active_key_id, new0);
	/* and what it seals now opens with the new key everywhere */
	unsigned char *ns;
	size_t nsl;
	uint32_t nk;
	assert_int_equal(field_seal(srv, &seen_tn, "integrations", "secret", 1, "v", 1, &ns, &nsl),
			 BW_OK);
	assert_int_equal(seal_key_id(ns, nsl, &nk), BW_OK);
	assert_int_equal(nk, new0);
	free(ns);
	registry_stop(reg);
	tenancy_close(srv);
	assert_int_not_equal(new0, old0);
	assert_int_equal(verify(f, f->slug[0], new0), NFIELDS);

	/* status: the old key seals nothing now, the new one everything */
	struct keys_status_row *r;
	size_t n;
	assert_int_equal(keys_status(f->t, &r, &n, err, sizeof(err)), BW_OK);
	int seen = 0;
	for (size_t i = 0; i < n; i++) {
		if (r[i].id == old0) {
			assert_string_equal(r[i].state, "retired");
			assert_int_equal(r[i].fields, 0);
			seen++;
		}
		if (r[i].id == new0) {
			assert_string_equal(r[i].state, "active");
			/* and the audit key with the rotation's two audit rows (started, completed) */
			assert_int_equal(r[i].fields, NFIELDS + 3);
			assert_true(r[i].encryptions >= NFIELDS);
			seen++;
		}
	}
	free(r);
	assert_int_equal(seen, 2);

	/* a second process (fresh key ring) reads everything too */
	reopen(f);
	assert_int_equal(verify(f, f->slug[1], get(f, f->slug[1]).active_key_id), NFIELDS);

	assert_int_equal(keys_rollback(f->t, "test", NULL, NULL, &rep, err, sizeof(err)), BW_OK);
	assert_int_equal(get(f, f->slug[0]).active_key_id, old0);
	assert_int_equal(verify(f, f->slug[0], old0), NFIELDS);
	assert_int_equal(keys_rollback(f->t, "test", NULL, NULL, &rep, err, sizeof(err)),
			 BW_ERR_NOTFOUND);

	/* both runs are in the history with start and finish */
	db_stmt *s;
	int row;
	assert_int_equal(db_prepare(tenancy_control(f->t),
				    "SELECT COUNT(*) FROM secret_rotation_history WHERE outcome = 'done'"
				    " AND finished_at >= started_at",
				    &s),
			 BW_OK);
	assert_int_equal(db_step(s, &row), BW_OK);
	assert_int_equal(db_col_int(s, 0), 2);
	db_finalize(s);
}

static int kill_after;

static void
kill_cb(void *ud, const char *slug, size_t i, size_t n, int64_t done, int64_t total)
{
	(void)ud, (void)slug, (void)i, (void)n, (void)total;
	static int calls;
	if (done > 0 && ++calls == kill_after)
		raise(SIGKILL); /* mid-rotation, as hard as it gets */
}

/* Run the rotation in a child that SIGKILLs itself after k batches. */
static void
rotate_and_die(struct fx *f, int k)
{
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct tenancy *t;
		struct keys_report rep;
		char err[512];
		kill_after = k;
		if (tenancy_open(&f->cfg, 0, &t, err, sizeof(err)) != BW_OK)
			_exit(3);
		bw_err e = keys_rotate(t, "test", kill_cb, NULL, &rep, err, sizeof(err));
		_exit(e == BW_OK ? 0 : 4);
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	if (!(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL))
		fail_msg("child was not killed (status %d)", st);
}

static void
test_rotation_survives_sigkill(void **state)
{
	struct fx *f = *state;
	NEED(f);
	char err[512];
	struct keys_report rep;
	fill(f, f->slug[0]);
	fill(f, f->slug[1]);
	uint32_t old0 = get(f, f->slug[0]).active_key_id;
	/* killed after 1 batch (tenant 1 half done), then after 4 (into tenant 2) */
	rotate_and_die(f, 1);
	reopen(f);
	/* really half-way: some values on the new key, some still on the old */
	uint32_t mid = get(f, f->slug[0]).active_key_id;
	assert_int_not_equal(mid, old0);
	int on_new = verify(f, f->slug[0], mid);
	assert_true(on_new > 0 && on_new < NFIELDS);
	verify(f, f->slug[1], 0);
	rotate_and_die(f, 3);
	reopen(f);
	verify(f, f->slug[0], 0);
	verify(f, f->slug[1], 0);
	/* resume: the same run finishes */
	assert_int_equal(keys_rotate(f->t, "test", NULL, NULL, &rep, err, sizeof(err)), BW_OK);
	assert_true(rep.resumed);
	uint32_t new0 = get(f, f->slug[0]).active_key_id;
	assert_int_not_equal(new0, old0);
	assert_int_equal(verify(f, f->slug[0], new0), NFIELDS);
	assert_int_equal(verify(f, f->slug[1], get(f, f->slug[1]).active_key_id), NFIELDS);
	/* one run only */
	db_stmt *s;
	int row;
	assert_int_equal(db_prepare(tenancy_control(f->t), "SELECT COUNT(*) FROM key_rotation_runs",
				    &s),
			 BW_OK);
	assert_int_equal(db_step(s, &row), BW_OK);
	assert_int_equal(db_col_int(s, 0), 1);
	db_finalize(s);
}

static void
test_purge_after_retention(void **state)
{
	struct fx *f = *state;
	NEED(f);
	char err[512];
	struct keys_report rep;
	size_t purged;
	fill(f, f->slug[0]);
	uint32_t old0 = get(f, f->slug[0]).active_key_id;
	assert_int_equal(keys_rotate(f->t, "test", NULL, NULL, &rep, err, sizeof(err)), BW_OK);
	/* within 30 days: kept */
	assert_int_equal(keys_purge(f->t, (int64_t)time(NULL) + 29 * 86400, "test", &purged, err,
				    sizeof(err)),
			 BW_OK);
	assert_int_equal(purged, 0);
	/* after: erased, recorded, and rollback is no longer possible for those */
	assert_int_equal(keys_purge(f->t, (int64_t)time(NULL) + 31 * 86400, "test", &purged, err,
				    sizeof(err)),
			 BW_OK);
	assert_int_equal(purged, 2);
	db_stmt *s;
	int row;
	assert_int_equal(db_prepare(tenancy_control(f->t),
				    "SELECT state, wrapped FROM data_keys WHERE id = ?", &s),
			 BW_OK);
	assert_int_equal(db_bind_int(s, 1, old0), BW_OK);
	assert_int_equal(db_step(s, &row), BW_OK);
	assert_string_equal(db_col_text(s, 0), "purged");
	assert_true(db_col_null(s, 1));
	db_finalize(s);
	assert_int_equal(db_prepare(tenancy_control(f->t),
				    "SELECT COUNT(*) FROM secret_rotation_history WHERE action = 'purge'",
				    &s),
			 BW_OK);
	assert_int_equal(db_step(s, &row), BW_OK);
	assert_int_equal(db_col_int(s, 0), 2);
	db_finalize(s);
	verify(f, f->slug[0], 0);
}

static void
test_crypto_shredding(void **state)
{
	struct fx *f = *state;
	NEED(f);
	char err[512], *out;
	size_t len, ol;
	fill(f, f->slug[1]);
	unsigned char *v = raw(f, f->slug[1], 1, &len);
	assert_int_equal(tenant_delete(f->t, f->slug[1], err, sizeof(err)), BW_OK);
	/* a copy of the value (a backup of its database) no longer opens anywhere */
	assert_int_not_equal(field_open(f->t, f->slug[1], "integrations", "secret", 1, v, len, &out,
					&ol),
			     BW_OK);
	reopen(f);
	assert_int_not_equal(field_open(f->t, f->slug[1], "integrations", "secret", 1, v, len, &out,
					&ol),
			     BW_OK);
	free(v);
	db_stmt *s;
	int row;
	assert_int_equal(db_prepare(tenancy_control(f->t),
				    "SELECT COUNT(*) FROM data_keys WHERE tenant_slug = ?", &s),
			 BW_OK);
	assert_int_equal(db_bind_text(s, 1, f->slug[1]), BW_OK);
	assert_int_equal(db_step(s, &row), BW_OK);
	assert_int_equal(db_col_int(s, 0), 0);
	db_finalize(s);
	/* recreate it for teardown */
	char otp[64];
	assert_int_equal(tenant_create(f->t, f->slug[1], "a@b.co", NULL, NULL, otp, sizeof(otp), err,
				       sizeof(err)),
			 BW_OK);
}

static void
test_encryption_limit(void **state)
{
	struct fx *f = *state;
	NEED(f);
	char err[512];
	unsigned char *out;
	size_t ol;
	struct tenant tn = get(f, f->slug[0]);
	assert_int_equal(DB_RUN(tenancy_control(f->t), "UPDATE data_keys SET encryptions = ? WHERE id = ?",
				DB_INT(KEYRING_ENC_LIMIT - 10), DB_INT(tn.active_key_id)),
			 BW_OK);
	reopen(f); /* no block reserved in this process yet */
	assert_int_equal(field_seal(f->t, &tn, "integrations", "secret", 1, "x", 1, &out, &ol),
			 BW_ERR_CRYPTO);
	/* a rotation gives a fresh key and sealing works again */
	struct keys_report rep;
	assert_int_equal(keys_rotate(f->t, "test", NULL, NULL, &rep, err, sizeof(err)), BW_OK);
	tn = get(f, f->slug[0]);
	assert_int_equal(field_seal(f->t, &tn, "integrations", "secret", 1, "x", 1, &out, &ol), BW_OK);
	free(out);
}

static void
test_master_key_rotation_and_wrong_key(void **state)
{
	struct fx *f = *state;
	NEED(f);
	char err[512];
	struct keys_report rep;
	fill(f, f->slug[0]);
	/* a new master key: rotate re-wraps every data key under it */
	dbenv_write_keys(&f->cfg, DBENV_KEY1 "\n" DBENV_KEY2 "\n");
	reopen(f);
	assert_int_equal(keyring_master_id(tenancy_keyring(f->t)), 2);
	assert_int_equal(keys_rotate(f->t, "test", NULL, NULL, &rep, err, sizeof(err)), BW_OK);
	assert_true(rep.rewrapped >= 2);
	/* the old master key can go */
	dbenv_write_keys(&f->cfg, DBENV_KEY2 "\n");
	reopen(f);
	verify(f, f->slug[0], 0);
	/* a different key with the same id: nothing unwraps, nothing opens */
	struct tenant tn = get(f, f->slug[0]);
	size_t len, ol;
	char *out;
	unsigned char *v = raw(f, f->slug[0], 1, &len);
	dbenv_write_keys(&f->cfg, "2:AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=\n");
	reopen(f);
	assert_int_equal(field_open(f->t, tn.slug, "integrations", "secret", 1, v, len, &out, &ol),
			 BW_ERR_CRYPTO);
	if (strcmp(f->driver, "mariadb") == 0) {
		/* nor does the tenant's database password: no connection at all */
		db *d;
		assert_int_not_equal(tenancy_connect_tenant(f->t, &tn, 0, &d, err, sizeof(err)), BW_OK);
	}
	free(v);
	dbenv_write_keys(&f->cfg, DBENV_KEY2 "\n");
	reopen(f);
}

static void
test_key_source_refusals(void **state)
{
	(void)state;
	struct config cfg;
	struct tenancy *t;
	char err[512], dir[128];
	snprintf(dir, sizeof(dir), "%s/refusals", tmpdir);
	dbenv_config(&cfg, "sqlite", dir, "x");
	int from, to;
	assert_int_equal(tenancy_open(&cfg, 1, &t, err, sizeof(err)), BW_OK);
	assert_int_equal(migrate_run(tenancy_control(t), &migrate_control, &from, &to, err, sizeof(err)),
			 BW_OK);
	tenancy_close(t);
	assert_int_equal(tenancy_open(&cfg, 0, &t, err, sizeof(err)), BW_OK); /* the good key opens */
	tenancy_close(t);
	static const char *const bad[] = {"", "# only a comment\n", "1:short\n", "x:" "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=",
					  "1:AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA= 1:AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA="};
	for (size_t i = 0; i < BW_ARRAY_LEN(bad); i++) {
		dbenv_write_keys(&cfg, bad[i]);
		if (tenancy_open(&cfg, 0, &t, err, sizeof(err)) == BW_OK)
			fail_msg("key text %zu accepted", i);
		assert_non_null(strstr(err, "master key"));
		assert_null(strstr(err, "AQIDBAUG")); /* never echoes key material */
	}
	/* readable by others: refused */
	dbenv_write_keys(&cfg, DBENV_KEY1);
	chmod(cfg.keys_file, 0644);
	assert_int_not_equal(tenancy_open(&cfg, 0, &t, err, sizeof(err)), BW_OK);
	assert_non_null(strstr(err, "chmod 600"));
	/* from the environment, which is then cleared */
	snprintf(cfg.keys_source, sizeof(cfg.keys_source), "env");
	setenv("BULWARK_KEYS", DBENV_KEY1, 1);
	assert_int_equal(tenancy_open(&cfg, 0, &t, err, sizeof(err)), BW_OK);
	assert_null(getenv("BULWARK_KEYS"));
	tenancy_close(t);
	assert_int_not_equal(tenancy_open(&cfg, 0, &t, err, sizeof(err)), BW_OK);
}

int
main(void)
{
#define BOTH(fn)                                                   \
	cmocka_unit_test_setup_teardown(fn, open_sqlite, close_fx), \
	    cmocka_unit_test_setup_teardown(fn, open_mariadb, close_fx)
	const struct CMUnitTest tests[] = {
		BOTH(test_fields_bound_and_not_plaintext),
		BOTH(test_rotate_and_rollback),
		BOTH(test_rotation_survives_sigkill),
		BOTH(test_purge_after_retention),
		BOTH(test_crypto_shredding),
		BOTH(test_encryption_limit),
		BOTH(test_master_key_rotation_and_wrong_key),
		cmocka_unit_test(test_key_source_refusals),
	};
	return cmocka_run_group_tests_name("keys", tests, group_setup, group_teardown);
}
