/*
 * bulwark tenant ... and bulwark migrate: the control plane from the shell.
 */
#include "cli.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../audit/audit.h"
#include "../auth/auth.h"
#include "../auth/auth_api.h"
#include "../db/migrate.h"
#include "../tenancy/tenancy.h"

static struct tenancy *
cli_tenancy(const struct cli_opts *o, struct config *cfg, int create)
{
	struct tenancy *t = NULL;
	char err[1024];
	if (cli_load_config(o, cfg) != 0)
		return NULL;
	if (tenancy_open(cfg, create, &t, err, sizeof(err)) != BW_OK) {
		fprintf(stderr, "bulwark: %s\n", err);
		return NULL;
	}
	return t;
}

/* First line of a file, for --admin-password-file. */
static int
cli_read_password(const char *path, char *out, size_t outlen)
{
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		fprintf(stderr, "bulwark: %s: cannot open\n", path);
		return -1;
	}
	if (fgets(out, (int)outlen, f) == NULL) {
		fclose(f);
		fprintf(stderr, "bulwark: %s: empty\n", path);
		return -1;
	}
	fclose(f);
	out[strcspn(out, "\r\n")] = '\0';
	return 0;
}

static int
cli_tenant_create(struct tenancy *t, const struct cli_opts *o, const struct config *cfg)
{
	const char *email = cli_val(o, "--admin-email");
	const char *pwfile = cli_val(o, "--admin-password-file");
	const char *plan = cli_val(o, "--plan");
	char pw[1100], otp[64] = "", err[1024];
	int rc = 1;
	if (o->nargs != 2 || email == NULL) {
		fprintf(stderr, "usage: bulwark tenant create SLUG --admin-email EMAIL "
				"[--admin-password-file FILE] [--plan NAME]\n");
		return 2;
	}
	if (pwfile != NULL && cli_read_password(pwfile, pw, sizeof(pw)) != 0)
		return 1;
	uint64_t t0 = util_now_us();
	bw_err e = tenant_create(t, o->args[1], email, pwfile ? pw : NULL, plan, otp, sizeof(otp),
				 err, sizeof(err));
	OPENSSL_cleanse(pw, sizeof(pw));
	if (e != BW_OK) {
		fprintf(stderr, "bulwark: tenant %s not created: %s\n", o->args[1], err);
		goto out;
	}
	printf("tenant %s created in %.0f ms (%s database)\n", o->args[1],
	       (double)(util_now_us() - t0) / 1e3, cfg->db_driver);
	printf("  address:  https://%s.%s:%ld/\n", o->args[1], cfg->base_domain, cfg->port);
	printf("  admin:    %s\n", email);
	if (otp[0] != '\0')
		printf("  one-time password: %s\n"
		       "  (shown once, never stored in plain text; it must be changed at first "
		       "login)\n",
		       otp);
	rc = 0;
out:
	OPENSSL_cleanse(otp, sizeof(otp));
	return rc;
}

static int
cli_tenant_list(struct tenancy *t, const struct cli_opts *o)
{
	struct tenant *v;
	size_t n;
	char err[512], when[32];
	if (tenant_list(t, &v, &n, err, sizeof(err)) != BW_OK) {
		fprintf(stderr, "bulwark: %s\n", err);
		return 1;
	}
	int json = cli_flag(o, "--json");
	if (json)
		printf("[");
	else if (n > 0)
		printf("%-32s %-12s %-12s %-20s %s\n", "SLUG", "STATE", "PLAN", "CREATED (UTC)",
		       "DATABASE");
	for (size_t i = 0; i < n; i++) {
		time_t ct = (time_t)v[i].created_at;
		struct tm tm;
		gmtime_r(&ct, &tm);
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M", &tm);
		char ca[UTIL_TIME_LEN];
		if (json)
			/* slugs, states and plans are [a-z0-9-]: no escaping needed */
			printf("%s{\"slug\":\"%s\",\"state\":\"%s\",\"plan\":\"%s\",\"created_at\":\"%s\"}",
			       i ? "," : "", v[i].slug, tenant_state_name(v[i].state), v[i].plan,
			       util_time_rfc3339(v[i].created_at, ca));
		else
			printf("%-32s %-12s %-12s %-20s %s\n", v[i].slug, tenant_state_name(v[i].state),
			       v[i].plan, when, v[i].db_name);
	}
	if (json)
		printf("]\n");
	else if (n == 0)
		printf("no tenants (create one with: bulwark tenant create SLUG --admin-email EMAIL)\n");
	free(v);
	return 0;
}

/* bulwark tenant usage SLUG: storage against the plan, as GET /api/v1/files/usage says it. */
static int
cli_tenant_usage(struct tenancy *t, const struct cli_opts *o)
{
	struct quota_usage u;
	bw_err e = quota_usage(t, o->args[1], &u);
	if (e == BW_ERR_NOTFOUND) {
		fprintf(stderr, "bulwark: no tenant named %s\n", o->args[1]);
		return 1;
	}
	if (e != BW_OK) {
		fprintf(stderr, "bulwark: cannot read the storage quotas: %s\n", bw_strerror(e));
		return 1;
	}
	int64_t avail = u.limit - u.used - u.reserved;
	if (avail < 0)
		avail = 0;
	if (cli_flag(o, "--json")) {
		/* plan names are [a-z0-9-]: no escaping needed */
		printf("{\"plan\":\"%s\",\"limit\":%lld,\"used\":%lld,\"reserved\":%lld,"
		       "\"available\":%lld}\n",
		       u.plan, (long long)u.limit, (long long)u.used, (long long)u.reserved,
		       (long long)avail);
	} else {
		printf("tenant %s, plan %s: %lld of %lld bytes used (%.1f%%), %lld reserved by uploads "
		       "under way, %lld available\n",
		       o->args[1], u.plan, (long long)u.used, (long long)u.limit,
		       u.limit > 0 ? 100.0 * (double)u.used / (double)u.limit : 0.0,
		       (long long)u.reserved, (long long)avail);
	}
	return 0;
}

static int
cli_tenant_delete(struct tenancy *t, const struct cli_opts *o)
{
	char err[1024], line[128];
	const char *slug = o->args[1];
	if (!cli_flag(o, "--yes")) {
		if (!isatty(STDIN_FILENO)) {
			fprintf(stderr, "bulwark: refusing to delete tenant %s without --yes when not "
					"run from a terminal\n",
				slug);
			return 1;
		}
		printf("This destroys tenant %s and all of its data. Type its name to confirm: ", slug);
		fflush(stdout);
		if (fgets(line, sizeof(line), stdin) == NULL ||
		    (line[strcspn(line, "\r\n")] = '\0', strcmp(line, slug) != 0)) {
			fprintf(stderr, "bulwark: not confirmed; nothing deleted\n");
			return 1;
		}
	}
	if (tenant_delete(t, slug, err, sizeof(err)) != BW_OK) {
		fprintf(stderr, "bulwark: %s\n", err);
		return 1;
	}
	printf("tenant %s deleted\n", slug);
	return 0;
}

/*
 * bulwark tenant allowlist clear SLUG: the operator's way back in. The
 * same operation as PUT /api/v1/settings/allowlist with no entries.
 */
static int
cli_tenant_allowlist(const struct cli_opts *o)
{
	struct cli_op c = {0};
	int rc = 1;
	if (o->nargs != 3 || strcmp(o->args[1], "clear") != 0) {
		fprintf(stderr, "usage: bulwark tenant allowlist clear SLUG\n");
		return 2;
	}
	json_t *none = json_array();
	if (none == NULL || cli_op_open(o, o->args[2], "bulwark tenant allowlist clear", &c) != 0)
		goto out;
	bw_err e = allowlist_replace(&c.op, none, -1);
	if (e != BW_OK) {
		cli_op_error(&c, e);
		goto out;
	}
	printf("admin allowlist of tenant %s cleared: every address may administer it again\n",
	       o->args[2]);
	rc = 0;
out:
	json_decref(none);
	cli_op_close(&c);
	return rc;
}

int
cli_tenant(int argc, char **argv)
{
	static const char *const valopts[] = {"--admin-email", "--admin-password-file", "--plan",
					      NULL};
	static const char *const flagopts[] = {"--yes", "--json", NULL};
	struct cli_opts o;
	struct config cfg;
	char err[1024];
	int rc = cli_parse_with(argc, argv, valopts, flagopts, &o);
	if (rc != 0)
		return rc;
	if (o.nargs < 1) {
		fprintf(stderr, "bulwark tenant: say create, list, suspend, resume, delete or usage "
				"(see --help)\n");
		return 2;
	}
	const char *verb = o.args[0];
	if (strcmp(verb, "allowlist") == 0)
		return cli_tenant_allowlist(&o);
	int needs_slug = strcmp(verb, "list") != 0;
	if (strcmp(verb, "create") != 0 && strcmp(verb, "list") != 0 &&
	    strcmp(verb, "suspend") != 0 && strcmp(verb, "resume") != 0 &&
	    strcmp(verb, "delete") != 0 && strcmp(verb, "usage") != 0) {
		fprintf(stderr, "bulwark tenant: unknown action '%s' (see --help)\n", verb);
		return 2;
	}
	if (o.nargs != (needs_slug ? 2 : 1)) {
		fprintf(stderr, "bulwark tenant %s: %s\n", verb,
			needs_slug ? "needs exactly one tenant name" : "takes no arguments");
		return 2;
	}
	struct tenancy *t = cli_tenancy(&o, &cfg, 0);
	if (t == NULL)
		return 1;
	if (strcmp(verb, "create") == 0) {
		rc = cli_tenant_create(t, &o, &cfg);
	} else if (strcmp(verb, "list") == 0) {
		rc = cli_tenant_list(t, &o);
	} else if (strcmp(verb, "delete") == 0) {
		rc = cli_tenant_delete(t, &o);
	} else if (strcmp(verb, "usage") == 0) {
		rc = cli_tenant_usage(t, &o);
	} else {
		enum tenant_state to = strcmp(verb, "suspend") == 0 ? TENANT_SUSPENDED : TENANT_ACTIVE;
		rc = tenant_set_state(t, o.args[1], to, err, sizeof(err)) == BW_OK ? 0 : 1;
		if (rc == 0)
			printf("tenant %s %s\n", o.args[1], to == TENANT_SUSPENDED ? "suspended" : "resumed");
		else
			fprintf(stderr, "bulwark: %s\n", err);
	}
	tenancy_close(t);
	return rc;
}

int
cli_migrate(int argc, char **argv)
{
	struct cli_opts o;
	struct config cfg;
	struct tenant *v = NULL;
	size_t n = 0;
	int from, to, rc = cli_parse(argc, argv, &o);
	char err[1024];
	if (rc != 0)
		return rc;
	if (o.nargs != 0) {
		fprintf(stderr, "bulwark migrate: takes no arguments\n");
		return 2;
	}
	struct tenancy *t = cli_tenancy(&o, &cfg, 1);
	if (t == NULL)
		return 1;
	rc = 1;
	if (migrate_run(tenancy_control(t), &migrate_control, &from, &to, err, sizeof(err)) !=
	    BW_OK) {
		fprintf(stderr, "bulwark migrate: control database: %s\n", err);
		goto out;
	}
	printf("control database: %s (version %d)\n", from == to ? "up to date" : "migrated", to);
	if (tenant_list(t, &v, &n, err, sizeof(err)) != BW_OK) {
		fprintf(stderr, "bulwark migrate: %s\n", err);
		goto out;
	}
	size_t done = 0, skipped = 0;
	for (size_t i = 0; i < n; i++) {
		if (v[i].state != TENANT_ACTIVE && v[i].state != TENANT_SUSPENDED) {
			printf("[%zu/%zu] %s: skipped (%s)\n", i + 1, n, v[i].slug,
			       tenant_state_name(v[i].state));
			skipped++;
			continue;
		}
		uint32_t kid;
		char pw[80];
		/* Before encryption at rest: the account password was derived, now it is wrapped. */
		if (strcmp(cfg.db_driver, "mariadb") == 0 && v[i].db_secret_len == 0) {
			bw_err pe = tenancy_tenant_new_password(t, &v[i], 0, pw, sizeof(pw), err, sizeof(err));
			OPENSSL_cleanse(pw, sizeof(pw));
			if (pe != BW_OK || tenancy_bump_registry(t) != BW_OK) {
				fprintf(stderr, "bulwark migrate: tenant %s: %s\n", v[i].slug, err);
				goto out;
			}
		}
		if (v[i].active_key_id == 0 &&
		    keys_tenant_new(t, v[i].slug, 0, &kid, err, sizeof(err)) != BW_OK) {
			fprintf(stderr, "bulwark migrate: tenant %s: %s\n", v[i].slug, err);
			goto out;
		}
		if (tenancy_migrate_tenant(t, &v[i], &from, &to, err, sizeof(err)) != BW_OK) {
			printf("[%zu/%zu] %s: FAILED\n", i + 1, n, v[i].slug);
			fprintf(stderr,
				"bulwark migrate: tenant %s: %s\n"
				"bulwark migrate: stopped; %zu tenant(s) before it are migrated, the rest "
				"are untouched and keep serving at their current version\n",
				v[i].slug, err, done);
			goto out;
		}
		printf("[%zu/%zu] %s: %s (version %d)\n", i + 1, n, v[i].slug,
		       from == to ? "up to date" : "migrated", to);
		fflush(stdout);
		done++;
	}
	printf("%zu tenant(s) at the current schema%s\n", done,
	       skipped ? ", some skipped (see above)" : "");
	rc = 0;
out:
	free(v);
	tenancy_close(t);
	return rc;
}
