/*
 * bench/rotation: key rotation throughput. Provisions T tenants with F
 * sealed values each, then times `keys rotate` (re-encrypting all T*F) and
 * reports values/s and the peak RSS during the rotation (VmHWM reset just
 * before), so runs with different F show whether memory stays flat.
 * usage: rotation --driver sqlite|mariadb --var DIR [--tenants T] [--fields F]
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../src/crypto/crypto.h"
#include "../src/db/migrate.h"
#include "../src/tenancy/tenancy.h"
#include "bench.h"

static void
progress(void *ud, const char *slug, size_t i, size_t n, int64_t done, int64_t total)
{
	(void)ud, (void)slug;
	if (done == total)
		fprintf(stderr, "\rrotating: tenant %zu/%zu", i + 1, n);
}

int
main(int argc, char **argv)
{
	const char *driver = "sqlite", *var = NULL;
	int nt = 100, nf = 10000;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--driver") == 0 && i + 1 < argc)
			driver = argv[++i];
		else if (strcmp(argv[i], "--var") == 0 && i + 1 < argc)
			var = argv[++i];
		else if (strcmp(argv[i], "--tenants") == 0 && i + 1 < argc)
			nt = atoi(argv[++i]);
		else if (strcmp(argv[i], "--fields") == 0 && i + 1 < argc)
			nf = atoi(argv[++i]);
		else
			var = NULL, i = argc;
	}
	if (var == NULL || nt < 1 || nf < 1) {
		fprintf(stderr, "usage: rotation --driver sqlite|mariadb --var DIR [--tenants T] "
				"[--fields F]\n");
		return 2;
	}
	struct config cfg;
	struct tenancy *t;
	char err[1024], otp[64];
	int from, to;
	if (bench_config(&cfg, driver, var) != 0)
		return 2;
	snprintf(cfg.db_control, sizeof(cfg.db_control), "saas_bench_rotation");
	if (tenancy_open(&cfg, 1, &t, err, sizeof(err)) != BW_OK ||
	    migrate_run(tenancy_control(t), &migrate_control, &from, &to, err, sizeof(err)) != BW_OK) {
		fprintf(stderr, "rotation: %s\n", err);
		return 1;
	}
	uint64_t t0 = util_now_us();
	for (int i = 0; i < nt; i++) {
		char slug[16];
		snprintf(slug, sizeof(slug), "r%05d", i);
		if (tenant_create(t, slug, "a@b.co", "bench-password-0123", NULL, otp, sizeof(otp), err,
				  sizeof(err)) != BW_OK) {
			fprintf(stderr, "rotation: %s\n", err);
			return 1;
		}
	}
	struct tenant *v;
	size_t n;
	if (tenant_list(t, &v, &n, err, sizeof(err)) != BW_OK)
		return 1;
	for (size_t i = 0; i < n; i++) {
		db *d;
		if (tenancy_connect_tenant(t, &v[i], 0, &d, err, sizeof(err)) != BW_OK || db_begin(d) != BW_OK)
			return 1;
		db_stmt *s;
		if (db_prepare(d, "INSERT INTO integrations (id, provider, config, secret, created_at,"
				  " updated_at) VALUES (?, ?, '{}', ?, 0, 0)",
			       &s) != BW_OK)
			return 1;
		for (int k = 1; k <= nf; k++) {
			char prov[24], val[64];
			unsigned char *sealed;
			size_t sl;
			int row;
			snprintf(prov, sizeof(prov), "p%d", k);
			snprintf(val, sizeof(val), "token-%d-%s", k, v[i].slug);
			if (field_seal(t, &v[i], "integrations", "secret", k, val, strlen(val), &sealed, &sl) !=
				BW_OK ||
			    db_reset(s) != BW_OK || db_bind_int(s, 1, k) != BW_OK || db_bind_text(s, 2, prov) != BW_OK ||
			    db_bind_blob(s, 3, sealed, sl) != BW_OK || db_step(s, &row) != BW_OK)
				return 1;
			free(sealed);
		}
		db_finalize(s);
		if (db_commit(d) != BW_OK)
			return 1;
		db_close(d);
		fprintf(stderr, "\rfilling: tenant %zu/%zu", i + 1, n);
	}
	fprintf(stderr, "\n");
	printf("%s: %d tenants x %d sealed values made in %.1f s\n", driver, nt, nf,
	       (double)(util_now_us() - t0) / 1e6);
	/* Reset the peak so it measures the rotation alone. */
	int fd = open("/proc/self/clear_refs", O_WRONLY);
	if (fd >= 0) {
		if (write(fd, "5", 1) != 1)
			fprintf(stderr, "rotation: cannot reset VmHWM\n");
		close(fd);
	}
	long rss0 = bench_status_kib("VmRSS:");
	struct keys_report rep;
	t0 = util_now_us();
	if (keys_rotate(t, "bench", progress, NULL, &rep, err, sizeof(err)) != BW_OK) {
		fprintf(stderr, "rotation: %s\n", err);
		return 1;
	}
	double s = (double)(util_now_us() - t0) / 1e6;
	fprintf(stderr, "\n");
	printf("%s: rotated %lld values of %zu tenants in %.1f s: %.0f values/s; RSS before %ld KiB, "
	       "peak during rotation %ld KiB\n",
	       driver, (long long)rep.fields, rep.tenants, s, (double)rep.fields / s, rss0,
	       bench_status_kib("VmHWM:"));
	if (strcmp(driver, "mariadb") == 0) {
		char e2[256];
		for (size_t i = 0; i < n; i++)
			if (tenant_delete(t, v[i].slug, e2, sizeof(e2)) != BW_OK)
				fprintf(stderr, "cleanup: %s\n", e2);
		if (db_exec(tenancy_control(t), "DROP DATABASE saas_bench_rotation") != BW_OK)
			fprintf(stderr, "cleanup: %s\n", db_errmsg(tenancy_control(t)));
	}
	free(v);
	tenancy_close(t);
	return 0;
}
