/*
 * bench/audit: what auditing adds to a mutating request. The same change
 * (an UPDATE of one customer row, in a transaction, as the module engine
 * makes it) is timed with and without its audit row (sealed, chained,
 * written in the same transaction); p50 and p99 of each and the difference.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/audit/audit.h"
#include "../src/db/migrate.h"
#include "../src/tenancy/tenancy.h"
#include "bench.h"

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static uint64_t
pct(uint64_t *v, int n, double p)
{
	return v[(int)(p * (n - 1))];
}

/* One change: UPDATE a row in a transaction, with (audit != 0) or without its audit row. */
static int
change(db *d, struct tenancy *t, const struct tenant *tn, int i, int audit)
{
	char name[64];
	db_stmt *s;
	int row;
	snprintf(name, sizeof(name), "Customer %d", i);
	if (db_begin(d) != BW_OK)
		return -1;
	bw_err e = db_prepare_cached(d, "UPDATE customers SET name = ?, updated_at = ? WHERE id = 1",
				     &s);
	if (e == BW_OK) {
		if ((e = db_bind_text(s, 1, name)) == BW_OK && (e = db_bind_int(s, 2, i)) == BW_OK)
			e = db_step(s, &row);
		db_done(s);
	}
	if (e == BW_OK && audit) {
		json_t *b = json_pack("{s:s}", "name", "before"), *a = json_pack("{s:s}", "name", name);
		struct audit_entry en = {AUDIT_USER, 1, 0, "a@b.co", "127.0.0.1", "bench0000000000000",
					 "customers", 1, "update", b, a};
		e = audit_record(d, t, tn, &en);
		json_decref(b);
		json_decref(a);
	}
	if (e != BW_OK) {
		(void)db_rollback(d);
		return -1;
	}
	return db_commit(d) == BW_OK ? 0 : -1;
}

int
main(int argc, char **argv)
{
	const char *driver = "sqlite", *var = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--driver") == 0 && i + 1 < argc)
			driver = argv[++i];
		else if (strcmp(argv[i], "--var") == 0 && i + 1 < argc)
			var = argv[++i];
		else
			var = NULL, i = argc;
	}
	if (var == NULL) {
		fprintf(stderr, "usage: audit --driver sqlite|mariadb --var DIR\n");
		return 2;
	}
	struct config cfg;
	struct tenancy *t;
	char err[1024], otp[64];
	int from, to;
	if (bench_config(&cfg, driver, var) != 0)
		return 2;
	snprintf(cfg.db_control, sizeof(cfg.db_control), "saas_bench_audit");
	if (tenancy_open(&cfg, 1, &t, err, sizeof(err)) != BW_OK ||
	    migrate_run(tenancy_control(t), &migrate_control, &from, &to, err, sizeof(err)) != BW_OK ||
	    tenant_create(t, "benchaudit", "a@b.co", "correct horse battery", NULL, otp, sizeof(otp),
			  err, sizeof(err)) != BW_OK) {
		fprintf(stderr, "audit: %s\n", err);
		return 1;
	}
	struct tenant *v;
	size_t n;
	db *d;
	if (tenant_list(t, &v, &n, err, sizeof(err)) != BW_OK ||
	    tenancy_connect_tenant(t, &v[0], 0, &d, err, sizeof(err)) != BW_OK ||
	    db_exec(d, "INSERT INTO customers (name, status, created_at, updated_at, created_by,"
		       " updated_by) VALUES ('Customer', 'active', 0, 0, 1, 1)") != BW_OK) {
		fprintf(stderr, "audit: cannot set up: %s\n", err);
		return 1;
	}
	const int iters = strcmp(driver, "sqlite") == 0 ? 5000 : 2000;
	uint64_t *plain = calloc(iters, sizeof(*plain)), *audited = calloc(iters, sizeof(*audited));
	if (plain == NULL || audited == NULL)
		return 1;
	/* Interleaved, so both see the same machine and the same growing tables. */
	for (int i = 0; i < iters; i++) {
		uint64_t t0 = util_now_us();
		if (change(d, t, &v[0], i, 0) != 0)
			return 1;
		uint64_t t1 = util_now_us();
		if (change(d, t, &v[0], i, 1) != 0) {
			fprintf(stderr, "audit: audited change failed: %s\n", db_errmsg(d));
			return 1;
		}
		plain[i] = t1 - t0;
		audited[i] = util_now_us() - t1;
	}
	qsort(plain, iters, sizeof(*plain), cmp_u64);
	qsort(audited, iters, sizeof(*audited), cmp_u64);
	printf("%s: one mutating change (UPDATE in a transaction), %d of each, interleaved\n", driver,
	       iters);
	printf("%s:   without audit  p50 %6llu us  p99 %6llu us\n", driver,
	       (unsigned long long)pct(plain, iters, 0.5), (unsigned long long)pct(plain, iters, 0.99));
	printf("%s:   with audit     p50 %6llu us  p99 %6llu us\n", driver,
	       (unsigned long long)pct(audited, iters, 0.5),
	       (unsigned long long)pct(audited, iters, 0.99));
	printf("%s:   added by audit p50 %6lld us  p99 %6lld us\n", driver,
	       (long long)pct(audited, iters, 0.5) - (long long)pct(plain, iters, 0.5),
	       (long long)pct(audited, iters, 0.99) - (long long)pct(plain, iters, 0.99));
	int64_t rows = 0, bad = 0;
	if (audit_verify(d, t, &v[0], &rows, &bad, err, sizeof(err)) != BW_OK)
		printf("%s: chain BROKEN at %lld: %s\n", driver, (long long)bad, err);
	else
		printf("%s: chain of %lld rows verified\n", driver, (long long)rows);
	free(plain);
	free(audited);
	db_close(d);
	if (strcmp(driver, "mariadb") == 0) {
		if (tenant_delete(t, "benchaudit", err, sizeof(err)) != BW_OK ||
		    db_exec(tenancy_control(t), "DROP DATABASE saas_bench_audit") != BW_OK)
			fprintf(stderr, "audit: cleanup failed\n");
	}
	free(v);
	tenancy_close(t);
	return 0;
}
