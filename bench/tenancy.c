/*
 * bench/tenancy: what tenancy costs.
 *   1. provisioning N tenants in-process (all steps, argon2id hash included)
 *   2. registry lookup by slug with N tenants registered
 *   3. connection borrow+return: hot (tenant's connection idle in the cpool)
 *      and churning (N tenants round-robin through a pool smaller than N)
 *   4. the whole per-request tenancy path: lookup + borrow + "SELECT 1" + return
 * Prints figures; run by bench/tenancy_run for both drivers.
 *
 * usage: tenancy --driver sqlite|mariadb --var DIR [--tenants N] [--reuse]
 * MariaDB settings come from BULWARK_TEST_MARIADB_SOCKET / _DIR.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../src/db/migrate.h"
#include "bench.h"
#include "../src/tenancy/tenancy.h"

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void
slug_of(int i, char *out)
{
	snprintf(out, TENANT_SLUG_MAX + 1, "t%05d", i);
}

int
main(int argc, char **argv)
{
	const char *driver = "sqlite", *var = NULL;
	int n = 1000, reuse = 0;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--driver") == 0 && i + 1 < argc)
			driver = argv[++i];
		else if (strcmp(argv[i], "--var") == 0 && i + 1 < argc)
			var = argv[++i];
		else if (strcmp(argv[i], "--tenants") == 0 && i + 1 < argc)
			n = atoi(argv[++i]);
		else if (strcmp(argv[i], "--reuse") == 0)
			reuse = 1;
		else {
			fprintf(stderr, "usage: tenancy --driver sqlite|mariadb --var DIR [--tenants N] "
					"[--reuse]\n");
			return 2;
		}
	}
	if (var == NULL || n < 1) {
		fprintf(stderr, "tenancy: --var DIR is required\n");
		return 2;
	}
	struct config cfg;
	char err[1024];
	if (bench_config(&cfg, driver, var) != 0)
		return 2;
	struct tenancy *t;
	int from, to;
	if (tenancy_open(&cfg, 1, &t, err, sizeof(err)) != BW_OK ||
	    migrate_run(tenancy_control(t), &migrate_control, &from, &to, err, sizeof(err)) != BW_OK) {
		fprintf(stderr, "tenancy: %s\n", err);
		return 1;
	}
	printf("driver %s, %d tenants\n", driver, n);

	/* 1. provisioning */
	uint64_t *lat = calloc((size_t)n, sizeof(*lat));
	char slug[TENANT_SLUG_MAX + 1], otp[64];
	if (!reuse) {
		uint64_t t0 = util_now_us();
		for (int i = 0; i < n; i++) {
			slug_of(i, slug);
			uint64_t a = util_now_us();
			if (tenant_create(t, slug, "admin@example.com", "bench-password-0123", NULL, otp,
					  sizeof(otp), err, sizeof(err)) != BW_OK) {
				fprintf(stderr, "tenancy: create %s: %s\n", slug, err);
				return 1;
			}
			lat[i] = util_now_us() - a;
			if ((i + 1) % 100 == 0) {
				fprintf(stderr, "\rprovisioned %d/%d", i + 1, n);
				fflush(stderr);
			}
		}
		fprintf(stderr, "\n");
		uint64_t total = util_now_us() - t0;
		qsort(lat, (size_t)n, sizeof(*lat), cmp_u64);
		printf("provisioning: %d tenants in %.1f s: mean %.1f ms, p50 %.1f ms, p99 %.1f ms "
		       "per tenant (argon2id hash of the admin password included)\n",
		       n, (double)total / 1e6, (double)total / n / 1e3, (double)lat[n / 2] / 1e3,
		       (double)lat[(size_t)(n * 99) / 100] / 1e3);
	}
	printf("process RSS after provisioning: %ld KiB (peak %ld KiB)\n", bench_status_kib("VmRSS:"),
	       bench_status_kib("VmHWM:"));

	/* 2. registry lookups */
	struct registry *reg;
	if (registry_start(t, &reg, err, sizeof(err)) != BW_OK) {
		fprintf(stderr, "tenancy: %s\n", err);
		return 1;
	}
	const int lookups = 1000000;
	struct tenant tn;
	unsigned x = 12345;
	uint64_t t0 = util_now_us();
	for (int i = 0; i < lookups; i++) {
		x = x * 1103515245u + 12345u;
		slug_of((int)((x >> 8) % (unsigned)n), slug);
		if (registry_lookup(reg, slug, &tn) != BW_OK) {
			fprintf(stderr, "tenancy: %s not in the registry\n", slug);
			return 1;
		}
	}
	double lookup_us = (double)(util_now_us() - t0) / lookups;
	printf("registry lookup (%zu registered): %.3f us\n", registry_count(reg), lookup_us);

	/* 3. pool */
	struct connpool *cpool;
	if (connpool_new(t, &cpool) != BW_OK)
		return 1;
	db *d;
	slug_of(0, slug);
	if (registry_lookup(reg, slug, &tn) != BW_OK || connpool_borrow(cpool, &tn, &d) != BW_OK) {
		fprintf(stderr, "tenancy: cannot borrow\n");
		return 1;
	}
	connpool_return(cpool, &tn, d);
	const int hot = 200000;
	t0 = util_now_us();
	for (int i = 0; i < hot; i++) {
		if (connpool_borrow(cpool, &tn, &d) != BW_OK)
			return 1;
		connpool_return(cpool, &tn, d);
	}
	printf("pool borrow+return, connection idle in the pool: %.3f us\n",
	       (double)(util_now_us() - t0) / hot);

	/* 4. the request path: lookup + borrow + one query + return */
	int rounds = n < 2000 ? 2 * n : n;
	for (int warm = 0; warm < 2; warm++) {
		uint64_t *rl = calloc((size_t)rounds, sizeof(*rl));
		t0 = util_now_us();
		for (int i = 0; i < rounds; i++) {
			uint64_t a = util_now_us();
			slug_of(i % n, slug);
			if (registry_lookup(reg, slug, &tn) != BW_OK || connpool_borrow(cpool, &tn, &d) != BW_OK ||
			    db_ping(d) != BW_OK) {
				fprintf(stderr, "tenancy: request path failed for %s\n", slug);
				return 1;
			}
			connpool_return(cpool, &tn, d);
			rl[i] = util_now_us() - a;
		}
		uint64_t total = util_now_us() - t0;
		qsort(rl, (size_t)rounds, sizeof(*rl), cmp_u64);
		printf("request path (lookup + borrow + SELECT 1 + return), %s, %d tenants round-robin "
		       "through a pool of %ld: mean %.1f us, p50 %.1f us, p99 %.1f us\n",
		       warm ? "second pass" : "first pass (connections opened)", n, cfg.db_pool_total,
		       (double)total / rounds, (double)rl[rounds / 2], (double)rl[(size_t)rounds * 99 / 100]);
		free(rl);
	}
	/* and with the tenant's connection already pooled (the common case) */
	slug_of(1, slug);
	if (registry_lookup(reg, slug, &tn) != BW_OK)
		return 1;
	t0 = util_now_us();
	for (int i = 0; i < hot / 10; i++) {
		if (registry_lookup(reg, slug, &tn) != BW_OK || connpool_borrow(cpool, &tn, &d) != BW_OK ||
		    db_ping(d) != BW_OK)
			return 1;
		connpool_return(cpool, &tn, d);
	}
	printf("request path, tenant's connection pooled: %.2f us (of which SELECT 1 is most)\n",
	       (double)(util_now_us() - t0) / (hot / 10));
	printf("process RSS at the end: %ld KiB (peak %ld KiB), %ld open connections\n",
	       bench_status_kib("VmRSS:"), bench_status_kib("VmHWM:"), connpool_total(cpool));
	connpool_free(cpool);
	registry_stop(reg);
	tenancy_close(t);
	free(lat);
	return 0;
}
