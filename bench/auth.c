/*
 * bench/auth: what identity costs.
 *   logins/s: argon2id verifications on every core at once (the semaphore
 *             at its default of two per CPU), with the peak RSS of the flood
 *   session check: session_check() per authenticated request (µs), on the
 *             driver given
 *   token check: token_check() likewise (an API token's request)
 * usage: auth --driver sqlite|mariadb --var DIR [--seconds N] [--no-logins]
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/auth/auth.h"
#include "../src/db/migrate.h"
#include "../src/tenancy/tenancy.h"
#include "bench.h"

/*
 * CPU time (µs) of the database server so far, when BENCH_MYSQLD_PID names
 * it (bench/auth_run sets it): the server's share of a check, which wall
 * time on a shared machine hides. -1 without it.
 */
static long long
server_cpu_us(void)
{
	const char *pid = getenv("BENCH_MYSQLD_PID");
	char path[64], line[1024];
	if (pid == NULL)
		return -1;
	snprintf(path, sizeof(path), "/proc/%.20s/stat", pid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return -1;
	char *ok = fgets(line, sizeof(line), f);
	fclose(f);
	char *p = ok ? strrchr(line, ')') : NULL;
	unsigned long long ut, st;
	/* after "pid (comm)": state and 10 more fields, then utime and stime */
	if (p == NULL || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
				&ut, &st) != 2)
		return -1;
	return (long long)(ut + st) * 1000000LL / sysconf(_SC_CLK_TCK);
}

static void
print_check(const char *driver, const char *what, uint64_t t0, long long c0, int iters)
{
	long long c1 = server_cpu_us();
	printf("%s: %s check per authenticated request: %.2f us", driver, what,
	       (double)(util_now_us() - t0) / iters);
	if (c0 >= 0 && c1 >= 0)
		printf(" (database server CPU %.2f us)", (double)(c1 - c0) / iters);
	printf("\n");
}

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
	int logins = 1;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--no-logins") == 0)
			logins = 0;
		else if (strcmp(argv[i], "--driver") == 0 && i + 1 < argc)
			driver = argv[++i];
		else if (strcmp(argv[i], "--var") == 0 && i + 1 < argc)
			var = argv[++i];
		else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
			secs = atof(argv[++i]);
		else
			var = NULL, i = argc;
	}
	if (var == NULL) {
		fprintf(stderr,
			"usage: auth --driver sqlite|mariadb --var DIR [--seconds N] [--no-logins]\n");
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
	for (int i = 0; i < nt && logins; i++) {
		f[i] = (struct flood){h, phc, until, 0};
		pthread_create(&th[i], NULL, flood_run, &f[i]);
	}
	for (int i = 0; i < nt && logins; i++) {
		pthread_join(th[i], NULL);
		total += f[i].n;
	}
	if (logins)
		printf("%s: argon2id (m=19 MiB, t=2, p=1) logins: %.1f/s on %d cores, %d at once; RSS %ld "
	       "KiB before, peak %ld KiB\n",
	       driver, (double)total / secs, util_ncpu(), nt, rss0, bench_status_kib("VmHWM:"));

	/* Session validation per request. */
	char secret[48];
	struct actor ctx;
	if (session_create(d, &cfg, 1, 1, "127.0.0.1", secret) != BW_OK)
		return 1;
	const int iters = strcmp(driver, "sqlite") == 0 ? 200000 : 20000;
	long long c0 = server_cpu_us();
	uint64_t t0 = util_now_us();
	for (int i = 0; i < iters; i++)
		if (session_check(d, &cfg, secret, "customers.view", &ctx) != BW_OK)
			return 1;
	print_check(driver, "session", t0, c0, iters);
	char token[64];
	int64_t tid;
	if (token_create(d, 1, "bench", "[\"customers.view\"]", 0, token, &tid) != BW_OK)
		return 1;
	c0 = server_cpu_us();
	t0 = util_now_us();
	for (int i = 0; i < iters; i++)
		if (token_check(d, token, "customers.view", &ctx) != BW_OK)
			return 1;
	print_check(driver, "token", t0, c0, iters);
	/* The floor: one cached one-row primary-key read, what any statement costs. */
	c0 = server_cpu_us();
	t0 = util_now_us();
	for (int i = 0; i < iters; i++) {
		int64_t dis;
		if (DB_QUERY_INT(d, &dis, "SELECT disabled FROM users WHERE id = ?", DB_INT(1)) != BW_OK)
			return 1;
	}
	print_check(driver, "one-row primary-key read (floor), not a", t0, c0, iters);
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
