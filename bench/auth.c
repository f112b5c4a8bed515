/*
 * bench/auth: what identity costs.
 *   logins/s: argon2id verifications on every core at once (the semaphore
 *             at its default of two per CPU), with the peak RSS of the flood
 *   session check: session_check() per authenticated request (µs), on the
 *             driver given
 * usage: auth --driver sqlite|mariadb --var DIR [--seconds N]
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/auth/auth.h"
#include "../src/db/migrate.h"
#include "../src/tenancy/tenancy.h"
#include "bench.h"

struct flood {
	struct auth_hasher *h;
	const char *phc;
	uint64_t until, n;
};

static void *
flood_run(void *arg)
{
	struct flood *f = arg;
	int rehash;
	while (util_now_us() < f->until) {
		if (password_verify(f->h, f->phc, "correct horse battery", &rehash) == BW_OK)
			f->n++;
	}
	return NULL;
}

int
main(int argc, char **argv)
{
	const char *driver = "sqlite", *var = NULL;
	double secs = 3;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--driver") == 0 && i + 1 < argc)
			driver = argv[++i];
		else if (strcmp(argv[i], "--var") == 0 && i + 1 < argc)
			var = argv[++i];
		else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
			secs = atof(argv[++i]);
		else
			var = NULL, i = argc;
	}
	if (var == NULL) {
		fprintf(stderr, "usage: auth --driver sqlite|mariadb --var DIR [--seconds N]\n");
		return 2;
	}
	struct config cfg;
	struct tenancy *t;
	char err[1024], otp[64];
	int from, to;
	if (bench_config(&cfg, driver, var) != 0)
		return 2;
	snprintf(cfg.db_control, sizeof(cfg.db_control), "saas_bench_auth");
	if (tenancy_open(&cfg, 1, &t, err, sizeof(err)) != BW_OK ||
	    migrate_run(tenancy_control(t), &migrate_control, &from, &to, err, sizeof(err)) != BW_OK ||
	    tenant_create(t, "benchauth", "a@b.co", "correct horse battery", NULL, otp, sizeof(otp), err,
			  sizeof(err)) != BW_OK) {
		fprintf(stderr, "auth: %s\n", err);
		return 1;
	}
	struct tenant *v;
	size_t n;
	db *d;
	if (tenant_list(t, &v, &n, err, sizeof(err)) != BW_OK ||
	    tenancy_connect_tenant(t, &v[0], 0, &d, err, sizeof(err)) != BW_OK)
		return 1;

	/* Logins: as many verifications as the cores allow. */
	struct auth_hasher *h;
	char phc[256];
	if (password_hasher_new(0, 5000, &h) != BW_OK ||
	    password_hash(h, "correct horse battery", phc, sizeof(phc)) != BW_OK)
		return 1;
	int nt = 2 * util_ncpu();
	pthread_t th[64];
	struct flood f[64];
	long rss0 = bench_status_kib("VmRSS:");
	uint64_t until = util_now_us() + (uint64_t)(secs * 1e6), total = 0;
	for (int i = 0; i < nt; i++) {
		f[i] = (struct flood){h, phc, until, 0};
		pthread_create(&th[i], NULL, flood_run, &f[i]);
	}
	for (int i = 0; i < nt; i++) {
		pthread_join(th[i], NULL);
		total += f[i].n;
	}
	printf("%s: argon2id (m=19 MiB, t=2, p=1) logins: %.1f/s on %d cores, %d at once; RSS %ld "
	       "KiB before, peak %ld KiB\n",
	       driver, (double)total / secs, util_ncpu(), nt, rss0, bench_status_kib("VmHWM:"));

	/* Session validation per request. */
	char secret[48];
	struct actor ctx;
	if (session_create(d, &cfg, 1, 1, "127.0.0.1", secret) != BW_OK)
		return 1;
	const int iters = strcmp(driver, "sqlite") == 0 ? 200000 : 20000;
	uint64_t t0 = util_now_us();
	for (int i = 0; i < iters; i++)
		if (session_check(d, &cfg, secret, "customers.view", &ctx) != BW_OK)
			return 1;
	printf("%s: session check per authenticated request: %.2f us\n", driver,
	       (double)(util_now_us() - t0) / iters);
	password_hasher_free(h);
	db_close(d);
	if (strcmp(driver, "mariadb") == 0) {
		if (tenant_delete(t, "benchauth", err, sizeof(err)) != BW_OK ||
		    db_exec(tenancy_control(t), "DROP DATABASE saas_bench_auth") != BW_OK)
			fprintf(stderr, "auth: cleanup failed\n");
	}
	free(v);
	tenancy_close(t);
	return 0;
}
