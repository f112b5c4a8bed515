/*
 * Review 13: the module engine's audit rows under memory pressure.
 *
 * engine_masked() (src/modules/rows.c) copies the row and replaces every
 * write-only value by "(set)" with json_object_set_new(o, name,
 * json_string("(set)")), ignoring the result: when json_string() cannot
 * allocate, set_new() fails and leaves the copied value where it was. The
 * create's audit row then carries the write-only credential itself (sealed
 * in audit_log.details, readable by anyone with audit.view, who need not
 * hold network_devices.reveal_credential), and the change commits.
 */
#include "unit.h"

#include <pthread.h>

#include "audit/audit.h"
#include "dbenv.h"
#include "modules/module.h"
#include "op/op.h"
#include "tenancy/tenancy.h"

#define SECRET "hunter2-correct-horse-credential"

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
};

static int
group_setup(void **state)
{
	(void)state;
	return unit_mkdtemp(tmpdir, sizeof(tmpdir), "r13");
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
	if (dbenv_open(&f->cfg, driver, tmpdir, "saas_control_r13", ++seq, &f->t, err,
		       sizeof(err)) != BW_OK)
		fail_msg("setup: %s", err);
	snprintf(f->slug, sizeof(f->slug), "rv%d", seq);
	if (tenant_create(f->t, f->slug, "admin@ops.example", NULL, NULL, otp, sizeof(otp), err,
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
	a.by = "cli:tester";
	op_init(&f->op, f->pool, &f->cfg, f->t, &f->tn, f->d, &a);
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

#define NEED(f)                                                                         \
	do {                                                                            \
		if ((f) == NULL) {                                                      \
			print_message("MariaDB not started (run through make check)\n"); \
			skip();                                                         \
		}                                                                       \
	} while (0)

/* jansson's allocator: refuse the 6-byte copy of "(set)" (nothing else here is 5 characters). */
static void *
fail_six(size_t n)
{
	return n == sizeof("(set)") ? NULL : malloc(n);
}

static void
test_masked_credential_under_oom(void **state)
{
	struct fx *f = *state;
	NEED(f);
	json_t *row = NULL, *in = json_pack("{s:s}", "name", "Acme Limited");
	assert_int_equal(module_create(&f->op, module_find("customers"), in, &row), BW_OK);
	json_decref(in);
	int64_t cid = json_integer_value(json_object_get(row, "id"));
	json_decref(row);

	in = json_pack("{s:I, s:s, s:s, s:s, s:s}", "customer_id", (json_int_t)cid, "name",
		       "core-router-01", "kind", "router", "auth_method", "password", "credential",
		       SECRET);
	json_set_alloc_funcs(fail_six, free);
	bw_err e = module_create(&f->op, module_find("network_devices"), in, &row);
	json_set_alloc_funcs(malloc, free);
	json_decref(in);
	json_decref(row);
	if (e != BW_OK)
		return; /* refused for want of memory: nothing to check */

	/* It committed: its audit row must not hold the credential. */
	db_stmt *s;
	int r = 0;
	assert_int_equal(db_prepare(f->d,
				    "SELECT id, details FROM audit_log WHERE entity = 'network_devices'"
				    " AND action = 'create' ORDER BY id DESC",
				    &s),
			 BW_OK);
	assert_int_equal(db_step(s, &r), BW_OK);
	assert_true(r);
	size_t len;
	int64_t id = db_col_int(s, 0);
	const unsigned char *blob = db_col_blob(s, 1, &len);
	char *pt = NULL;
	size_t ptlen = 0;
	assert_int_equal(field_open(f->t, f->slug, "audit_log", "details", id, blob, len, &pt, &ptlen),
			 BW_OK);
	db_finalize(s);
	int leaked = memmem(pt, ptlen, SECRET, strlen(SECRET)) != NULL;
	if (leaked)
		print_message("audit row %lld: %.*s\n", (long long)id, (int)ptlen, pt);
	free(pt);
	assert_false(leaked);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_masked_credential_under_oom, open_sqlite, close_fx),
		cmocka_unit_test_setup_teardown(test_masked_credential_under_oom, open_mariadb, close_fx),
	};
	return cmocka_run_group_tests_name("review13", tests, group_setup, group_teardown);
}
