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

static int
tenant_known(const struct tenant *v, size_t n, const char *slug)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i].slug, slug) == 0)
			return 1;
	return 0;
}

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

static int cli_audit_one(struct tenancy *t, const struct tenant *tn, int reanchor);

/*
 * Verify one tenant: the chain, then the anchor of its last verification;
 * on success the anchor moves to the head verified now. reanchor: after a
 * restore from backup (the anchor is ahead of the log, rightly), accept the
 * log as it is if its chain holds, and anchor it there. 0, 1 or 2 as the
 * command's exit status.
 */
static int
cli_audit_one(struct tenancy *t, const struct tenant *tn, int reanchor)
{
	db *d = NULL;
	char err[1024], why[512], mac[65];
	int64_t rows = 0, bad = 0, head = 0, anchored = 0;
	if (tenancy_connect_tenant(t, tn, 0, &d, err, sizeof(err)) != BW_OK) {
		fprintf(stderr, "bulwark: %s\n", err);
		return 2;
	}
	int rc = 2;
	/* The head before the walk: every row up to it is checked by the walk. */
	bw_err e = audit_head_now(d, &head, mac);
	struct cli_audit_progress p = {isatty(STDERR_FILENO), 0, tn->slug};
	if (e == BW_OK || e == BW_ERR_CRYPTO)
		e = audit_verify_progress(d, t, tn, &rows, &bad, why, sizeof(why),
					  cli_audit_progress_cb, &p);
	if (p.tty && p.last_us != 0)
		fputc('\n', stderr);
	if (e == BW_OK && reanchor) {
		/* The chain holds: whatever the old anchor said, it starts again from here. */
		if (DB_RUN(tenancy_control(t), "DELETE FROM audit_anchors WHERE tenant_id = ?",
			   DB_INT(tn->id)) != BW_OK)
			e = BW_ERR_DB;
		else
			fprintf(stderr, "bulwark: tenant %s: anchor reset to row %lld\n", tn->slug,
				(long long)head);
	}
	if (e == BW_OK)
		e = audit_anchor_check(tenancy_control(t), d, tn, &anchored, why, sizeof(why));
	if (e == BW_OK) {
		if (head > 0 && audit_anchor_save(tenancy_control(t), tn, head, mac) != BW_OK)
			fprintf(stderr, "bulwark: tenant %s: chain intact, but its anchor could not be "
					"saved: %s\n",
				tn->slug, db_errmsg(tenancy_control(t)));
		printf("%s: %lld rows, chain intact\n", tn->slug, (long long)rows);
		rc = 0;
	} else if (e == BW_ERR_CRYPTO && anchored > 0) {
		printf("%s: chain broken at row %lld: %s\n", tn->slug, (long long)anchored, why);
		rc = 1;
	} else if (e == BW_ERR_CRYPTO) {
		printf("%s: chain broken at row %lld: %s (%lld rows before it intact)\n", tn->slug,
		       (long long)bad, why, (long long)rows);
		rc = 1;
	} else {
		fprintf(stderr, "bulwark: tenant %s: cannot verify: %s\n", tn->slug, why);
	}
	db_close(d);
	return rc;
}

int
cli_audit(int argc, char **argv)
{
	static const char *const flagopts[] = {"--all", NULL};
	struct cli_opts o;
	struct config cfg;
	struct tenancy *t = NULL;
	struct tenant *v = NULL;
	size_t n = 0;
	char err[1024];
	int rc = cli_parse_with(argc, argv, NULL, flagopts, &o);
	if (rc != 0)
		return rc;
	int all = cli_flag(&o, "--all");
	int reanchor = o.nargs >= 1 && strcmp(o.args[0], "reanchor") == 0;
	if (o.nargs < 1 || (strcmp(o.args[0], "verify") != 0 && !reanchor) ||
	    (all ? o.nargs != 1 || reanchor : o.nargs != 2)) {
		fprintf(stderr, "usage: bulwark audit verify SLUG | --all, or bulwark audit reanchor "
				"SLUG (see --help)\n");
		return 2;
	}
	if (cli_load_config(&o, &cfg) != 0)
		return 2;
	rc = 2;
	if (tenancy_open(&cfg, 0, &t, err, sizeof(err)) != BW_OK ||
	    tenant_list(t, &v, &n, err, sizeof(err)) != BW_OK) {
		fprintf(stderr, "bulwark: %s\n", err);
		goto out;
	}
	if (!all) {
		for (size_t i = 0; i < n; i++)
			if (strcmp(v[i].slug, o.args[1]) == 0)
				rc = cli_audit_one(t, &v[i], reanchor);
		if (rc == 2 && !tenant_known(v, n, o.args[1]))
			fprintf(stderr, "bulwark: no tenant '%s'\n", o.args[1]);
		goto out;
	}
	/* Every tenant that serves: the worst outcome is the exit status. */
	rc = 0;
	for (size_t i = 0; i < n; i++) {
		if (v[i].state != TENANT_ACTIVE && v[i].state != TENANT_SUSPENDED)
			continue;
		int r = cli_audit_one(t, &v[i], 0);
		if (r == 1 || (r == 2 && rc == 0))
			rc = r;
	}
out:
	free(v);
	tenancy_close(t);
	return rc;
}
