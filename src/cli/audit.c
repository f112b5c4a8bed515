/*
 * bulwark audit verify SLUG: check a tenant's audit chain from the host.
 * Exit 0 when intact, 1 when broken (the first bad row named), 2 when it
 * could not be checked (usage, unknown tenant, database unreachable), so
 * that 1 always means tampering.
 */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../audit/audit.h"
#include "../tenancy/tenancy.h"

struct cli_audit_progress {
	int tty;
	uint64_t last_us;
	const char *slug;
};

/* On a terminal a line redrawn ten times a second; otherwise every 10000 rows. */
static void
cli_audit_progress_cb(void *ud, int64_t done, int64_t total)
{
	struct cli_audit_progress *p = ud;
	if (p->tty) {
		uint64_t now = util_now_us();
		if (done != total && now - p->last_us < 100000)
			return;
		p->last_us = now;
		fprintf(stderr, "\rverifying %s: %lld/%lld rows ", p->slug, (long long)done,
			(long long)total);
	} else if (done % 10000 == 0) {
		fprintf(stderr, "verifying %s: %lld/%lld rows\n", p->slug, (long long)done,
			(long long)total);
	}
}

int
cli_audit(int argc, char **argv)
{
	struct cli_opts o;
	struct config cfg;
	struct tenancy *t = NULL;
	struct tenant *v = NULL, *tn = NULL;
	size_t n = 0;
	db *d = NULL;
	char err[1024], why[512];
	int64_t rows = 0, bad = 0;
	int rc = cli_parse(argc, argv, &o);
	if (rc != 0)
		return rc;
	if (o.nargs != 2 || strcmp(o.args[0], "verify") != 0) {
		fprintf(stderr, "usage: bulwark audit verify SLUG (see --help)\n");
		return 2;
	}
	const char *slug = o.args[1];
	if (cli_load_config(&o, &cfg) != 0)
		return 2;
	rc = 2;
	if (tenancy_open(&cfg, 0, &t, err, sizeof(err)) != BW_OK ||
	    tenant_list(t, &v, &n, err, sizeof(err)) != BW_OK) {
		fprintf(stderr, "bulwark: %s\n", err);
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i].slug, slug) == 0)
			tn = &v[i];
	if (tn == NULL) {
		fprintf(stderr, "bulwark: no tenant '%s'\n", slug);
		goto out;
	}
	if (tenancy_connect_tenant(t, tn, 0, &d, err, sizeof(err)) != BW_OK) {
		fprintf(stderr, "bulwark: %s\n", err);
		goto out;
	}
	struct cli_audit_progress p = {isatty(STDERR_FILENO), 0, tn->slug};
	bw_err e = audit_verify_progress(d, t, tn, &rows, &bad, why, sizeof(why),
					 cli_audit_progress_cb, &p);
	if (p.tty && p.last_us != 0)
		fputc('\n', stderr);
	if (e == BW_OK) {
		printf("%s: %lld rows, chain intact\n", tn->slug, (long long)rows);
		rc = 0;
	} else if (e == BW_ERR_CRYPTO) {
		printf("%s: chain broken at row %lld: %s (%lld rows before it intact)\n", tn->slug,
		       (long long)bad, why, (long long)rows);
		rc = 1;
	} else {
		fprintf(stderr, "bulwark: tenant %s: cannot verify: %s\n", tn->slug, why);
	}
out:
	db_close(d);
	free(v);
	tenancy_close(t);
	return rc;
}
