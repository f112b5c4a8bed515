/*
 * bulwark keys status|rotate|rollback|purge
 */
#include "cli.h"

#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../crypto/crypto.h"
#include "../tenancy/tenancy.h"


struct cli_progress {
	int tty;
	uint64_t last_us;
	const char *verb;
};

static void
cli_progress_cb(void *ud, const char *slug, size_t i, size_t n, int64_t done, int64_t total)
{
	struct cli_progress *p = ud;
	uint64_t now = util_now_us();
	int final = done == total;
	if (p->tty) {
		if (!final && now - p->last_us < 100000)
			return;
		int width = 30, fill = total > 0 ? (int)(done * width / total) : width;
		fprintf(stderr, "\r%s [%zu/%zu] %-20.20s [%.*s%*s] %lld/%lld values ", p->verb, i + 1, n,
			slug, fill, "##############################", width - fill, "", (long long)done,
			(long long)total);
		if (final && i + 1 == n)
			fputc('\n', stderr);
	} else if (final) {
		fprintf(stderr, "%s [%zu/%zu] %s: %lld values\n", p->verb, i + 1, n, slug,
			(long long)total);
	}
	p->last_us = now;
}

static void
cli_when(int64_t t, char *out, size_t len)
{
	if (t == 0) {
		snprintf(out, len, "-");
		return;
	}
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	strftime(out, len, "%Y-%m-%d %H:%M", &tm);
}

static int
cli_keys_status(struct tenancy *t, int json)
{
	struct keys_status_row *r;
	size_t n;
	char err[512], c[32], rt[32];
	if (keys_status(t, &r, &n, err, sizeof(err)) != BW_OK) {
		fprintf(stderr, "bulwark: %s\n", err);
		return 1;
	}
	if (json) {
		printf("{\"master_key\":%u,\"master_keys_loaded\":%zu,\"data_keys\":[",
		       keyring_master_id(tenancy_keyring(t)), keyring_master_count(tenancy_keyring(t)));
		for (size_t i = 0; i < n; i++) {
			/* Times as RFC 3339 UTC like every JSON the server writes; null: not (yet). */
			char ca[UTIL_TIME_LEN + 2], ra[UTIL_TIME_LEN + 2], pa[UTIL_TIME_LEN + 2];
			int64_t tv[3] = {r[i].created_at, r[i].retired_at, r[i].purged_at};
			char *tj[3] = {ca, ra, pa};
			for (int k = 0; k < 3; k++) {
				char ts[UTIL_TIME_LEN];
				if (tv[k])
					snprintf(tj[k], UTIL_TIME_LEN + 2, "\"%s\"", util_time_rfc3339(tv[k], ts));
				else
					snprintf(tj[k], UTIL_TIME_LEN + 2, "null");
			}
			printf("%s{\"id\":%u,\"tenant\":\"%s\",\"state\":\"%s\",\"master_key\":%u,"
			       "\"encryptions\":%lld,\"values\":%lld,\"created_at\":%s,"
			       "\"retired_at\":%s,\"purged_at\":%s}",
			       i ? "," : "", r[i].id, r[i].slug, r[i].state, r[i].master_id,
			       (long long)r[i].encryptions, (long long)r[i].fields, ca, ra, pa);
		}
		printf("]}\n");
		free(r);
		return 0;
	}
	printf("master key in use: %u (%zu loaded)\n", keyring_master_id(tenancy_keyring(t)),
	       keyring_master_count(tenancy_keyring(t)));
	printf("%-24s %6s %-8s %6s %12s %8s %-17s %-17s\n", "TENANT", "KEY", "STATE", "MASTER",
	       "ENCRYPTIONS", "VALUES", "CREATED (UTC)", "RETIRED (UTC)");
	for (size_t i = 0; i < n; i++) {
		cli_when(r[i].created_at, c, sizeof(c));
		cli_when(r[i].retired_at, rt, sizeof(rt));
		char vals[24];
		if (r[i].fields < 0)
			snprintf(vals, sizeof(vals), "?");
		else
			snprintf(vals, sizeof(vals), "%lld", (long long)r[i].fields);
		printf("%-24s %6u %-8s %6u %12lld %8s %-17s %-17s%s\n", r[i].slug, r[i].id, r[i].state,
		       r[i].master_id, (long long)r[i].encryptions, vals, c, rt,
		       r[i].encryptions >= KEYRING_ENC_WARN ? "  ROTATE NOW" : "");
	}
	if (n == 0)
		printf("no data keys (no tenants)\n");
	free(r);
	return 0;
}

int
cli_keys(int argc, char **argv)
{
	static const char *const flagopts[] = {"--json", NULL};
	struct cli_opts o;
	struct config cfg;
	char err[1024], actor[160];
	int rc = cli_parse_with(argc, argv, NULL, flagopts, &o);
	if (rc != 0)
		return rc;
	if (o.nargs != 1) {
		fprintf(stderr, "bulwark keys: say status, rotate, rollback or purge (see --help)\n");
		return 2;
	}
	const char *verb = o.args[0];
	if (strcmp(verb, "status") && strcmp(verb, "rotate") && strcmp(verb, "rollback") &&
	    strcmp(verb, "purge")) {
		fprintf(stderr, "bulwark keys: unknown action '%s' (see --help)\n", verb);
		return 2;
	}
	if (cli_load_config(&o, &cfg) != 0)
		return 1;
	struct tenancy *t;
	if (tenancy_open(&cfg, 0, &t, err, sizeof(err)) != BW_OK) {
		fprintf(stderr, "bulwark: %s\n", err);
		return 1;
	}
	cli_actor(actor, sizeof(actor));
	rc = 1;
	if (strcmp(verb, "status") == 0) {
		rc = cli_keys_status(t, cli_flag(&o, "--json"));
	} else if (strcmp(verb, "purge") == 0) {
		size_t purged;
		if (keys_purge(t, (int64_t)time(NULL), actor, &purged, err, sizeof(err)) == BW_OK) {
			printf("%zu retired data key(s) purged\n", purged);
			rc = 0;
		} else {
			fprintf(stderr, "bulwark keys purge: %s\n", err);
		}
	} else {
		struct cli_progress p = {isatty(STDERR_FILENO), 0, verb};
		struct keys_report rep;
		uint64_t t0 = util_now_us();
		bw_err e = strcmp(verb, "rotate") == 0
			       ? keys_rotate(t, actor, cli_progress_cb, &p, &rep, err, sizeof(err))
			       : keys_rollback(t, actor, cli_progress_cb, &p, &rep, err, sizeof(err));
		if (e != BW_OK) {
			fprintf(stderr, "bulwark keys %s: %s\n", verb, err);
			if (rep.run_id)
				fprintf(stderr, "bulwark keys %s: every value is still readable; run it "
						"again to resume run %lld\n",
					verb, (long long)rep.run_id);
		} else {
			double s = (double)(util_now_us() - t0) / 1e6;
			printf("%s run %lld%s done in %.1fs: %zu tenant(s), %lld value(s) re-encrypted "
			       "(%.0f/s), %zu data key(s) re-wrapped, %zu purged\n",
			       verb, (long long)rep.run_id, rep.resumed ? " (resumed)" : "", s, rep.tenants,
			       (long long)rep.fields, s > 0 ? (double)rep.fields / s : 0.0, rep.rewrapped,
			       rep.purged);
			rc = 0;
		}
	}
	tenancy_close(t);
	return rc;
}
