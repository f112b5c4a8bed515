/*
 * bulwark: one binary, one subcommand per job.
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"

static const struct cli_cmd cli_commands[] = {
	{"serve", "run the HTTPS server",
	 "usage: bulwark serve [-c FILE]\n"
	 "\n"
	 "Run the HTTPS server (TLS 1.3 only) with the configuration from FILE,\n"
	 "else ./bulwark.conf when present, else built-in defaults; BULWARK_<SECTION>_<KEY>\n"
	 "environment variables override either.\n"
	 "\n"
	 "Signals: SIGHUP reloads the TLS certificate, master keys, access log, log level and rate\n"
	 "limits; SIGTERM or SIGINT stops accepting, lets in-flight requests finish\n"
	 "(up to [limits] drain_timeout seconds) and exits 0.\n"
	 "\n"
	 "  -c, --config FILE   configuration file (see bulwark.conf.example)\n"
	 "  -h, --help          this text\n",
	 cli_serve},
	{"config", "check or show the configuration",
	 "usage: bulwark config check|show [-c FILE]\n"
	 "\n"
	 "check  load the configuration as 'serve' would and report the first problem\n"
	 "       (file, line and key), exit 1 if there is one\n"
	 "show   print every key with its effective value\n",
	 cli_config},
	{"migrate", "create or upgrade the control and every tenant database",
	 "usage: bulwark migrate [-c FILE]\n"
	 "\n"
	 "Create the control database if it does not exist, then bring it and every\n"
	 "tenant's database up to the schema this build needs, one tenant at a time\n"
	 "with progress. Safe to run again: what is current is left alone. On a\n"
	 "failure it stops, naming the tenant, the migration step and its statement;\n"
	 "tenants not yet reached keep serving at their current version, and running\n"
	 "it again resumes where it stopped.\n",
	 cli_migrate},
	{"tenant", "create, list, suspend, resume or delete tenants; their storage usage",
	 "usage: bulwark tenant create SLUG --admin-email EMAIL [--admin-password-file FILE]\n"
	 "                            [--plan standard|professional|enterprise]\n"
	 "       bulwark tenant list [--json]\n"
	 "       bulwark tenant suspend SLUG\n"
	 "       bulwark tenant resume SLUG\n"
	 "       bulwark tenant delete SLUG [--yes]\n"
	 "       bulwark tenant usage SLUG [--json]\n"
	 "       bulwark tenant allowlist clear SLUG\n"
	 "\n"
	 "create   make the tenant's own database (MariaDB: saas_tenant_SLUG with its\n"
	 "         own account; SQLite: var/tenants/SLUG.db) and its admin user. Without\n"
	 "         --admin-password-file a one-time password is printed once. All or\n"
	 "         nothing: a failure removes whatever was made and says which step failed.\n"
	 "         SLUG: 3-32 of a-z, 0-9 and inner '-'; reserved names are refused.\n"
	 "list     every tenant with state, plan and database\n"
	 "suspend  stop serving the tenant (403) without touching its data; resume undoes it\n"
	 "delete   destroy the tenant's database, account and registry entry; asks for\n"
	 "         the name to be typed unless --yes\n"
	 "usage    the storage its attachments take against its plan's limit: used,\n"
	 "         reserved by uploads under way, available (bytes)\n"
	 "\n"
	 "allowlist clear  empty the tenant's admin IP allowlist (when an admin has\n"
	 "         locked themselves out); recorded as an auth event\n"
	 "\n"
	 "Running servers see every change within [database] registry_refresh_ms.\n",
	 cli_tenant},
	{"keys", "encryption keys: status, rotate, rollback, purge",
	 "usage: bulwark keys status [--json]\n"
	 "       bulwark keys rotate\n"
	 "       bulwark keys rollback\n"
	 "       bulwark keys purge\n"
	 "\n"
	 "status    master key in use; every tenant's data keys with their state,\n"
	 "          encryptions so far and how many stored values each still seals\n"
	 "rotate    give every tenant a new data key (running servers use it for new\n"
	 "          writes within [database] registry_refresh_ms, no restart), re-wrap\n"
	 "          every data key under the newest master key, then re-encrypt every\n"
	 "          stored value in batches, with progress. Every value stays readable\n"
	 "          throughout; if it is interrupted (even kill -9), run it again and it\n"
	 "          resumes. Recorded with start and end in secret_rotation_history.\n"
	 "rollback  undo the last rotation (within 30 days): the previous keys become\n"
	 "          active again and values are re-encrypted back. Resumable likewise.\n"
	 "purge     erase data keys retired more than 30 days ago that no value uses\n"
	 "          (rotate and rollback also do this first); each purge is recorded.\n",
	 cli_keys},
	{"routes", "print every route with its permission (JSON)",
	 "usage: bulwark routes\n"
	 "\n"
	 "Print the route table the server registers, one object per route: method,\n"
	 "pattern, the permission it needs, its flags (public, admin, destructive, ...)\n"
	 "and, for module routes, the module. Tests are generated from this list.\n",
	 cli_routes},
	{"openapi", "write the OpenAPI 3.1 document of the API (JSON)",
	 "usage: bulwark openapi [--output FILE]\n"
	 "\n"
	 "Write the OpenAPI 3.1 document of every route the server registers, made\n"
	 "from the route table and the module descriptors (the server serves the\n"
	 "same at GET /api/v1/openapi.json), to standard output or to FILE.\n"
	 "Exit 1, naming the route, if a route has no documentation.\n"
	 "\n"
	 "  -o, --output FILE   write to FILE instead of standard output\n"
	 "  -h, --help          this text\n",
	 cli_openapi},
	{"user", "staff users: unlock, exempt from SSO, reset a password or MFA",
	 "usage: bulwark user unlock SLUG EMAIL [-c FILE]\n"
	 "       bulwark user sso-exempt SLUG EMAIL on|off [-c FILE]\n"
	 "       bulwark user reset-password SLUG EMAIL [-c FILE]\n"
	 "       bulwark user reset-mfa SLUG EMAIL [-c FILE]\n"
	 "\n"
	 "unlock       clear the failed sign-in count and lockout of user EMAIL in\n"
	 "             tenant SLUG (admins can also do it through\n"
	 "             POST /api/v1/users/ID/unlock); recorded as an auth event\n"
	 "sso-exempt   on: EMAIL may sign in with a password even when the tenant's\n"
	 "             SAML set-up says \"SSO required\" (the break-glass account for\n"
	 "             when the IdP is down, docs/saml.md); off: back to SSO only.\n"
	 "             The same change as PATCH /api/v1/users/ID {\"sso_exempt\"};\n"
	 "             recorded in the audit log\n"
	 "reset-password  give EMAIL a one-time password (printed once) that must be\n"
	 "             changed at the next sign-in; ends every session and API token of\n"
	 "             the user and mails them. For the admin who lost the password\n"
	 "             (admins can do it for others: POST /api/v1/users/ID/password/reset)\n"
	 "reset-mfa    turn EMAIL's two-factor sign-in off (secret and recovery codes\n"
	 "             gone, sessions ended); they enrol again. For a lost phone\n"
	 "             (POST /api/v1/users/ID/mfa/reset). Both are audit rows\n",
	 cli_user},
	{"jobs", "background jobs: list, retry, cancel",
	 "usage: bulwark jobs list SLUG [STATE] [--json] [-c FILE]\n"
	 "       bulwark jobs retry SLUG ID [-c FILE]\n"
	 "       bulwark jobs cancel SLUG ID [-c FILE]\n"
	 "\n"
	 "Tenant SLUG's background jobs (webhook deliveries, inbound provider events):\n"
	 "each is queued, running, done, failed (every attempt used, or refused for\n"
	 "good) or cancelled. `bulwark serve` runs them ([jobs] workers); several\n"
	 "servers share them, each job run by one at a time.\n"
	 "\n"
	 "list     the newest 1000 jobs (only those in STATE, when given) with their\n"
	 "         attempts, next run and last error, then the count in each state\n"
	 "retry    run a failed or cancelled job again now (one more attempt when it\n"
	 "         had used them all), or a queued one now instead of after its back-off\n"
	 "cancel   cancel a queued job (a webhook delivery is then marked cancelled);\n"
	 "         a running one finishes its attempt first\n"
	 "\n"
	 "retry and cancel are recorded in the tenant's audit log (entity jobs).\n",
	 cli_jobs},
	{"audit", "verify a tenant's audit log chain",
	 "usage: bulwark audit verify SLUG | --all [-c FILE]\n"
	 "       bulwark audit reanchor SLUG [-c FILE]\n"
	 "\n"
	 "verify   walk tenant SLUG's audit log (or, with --all, every active or\n"
	 "         suspended tenant's) from the first row: every row must be there\n"
	 "         (seq 1, 2, 3, ...), its sealed details must open, its plaintext\n"
	 "         columns must match them and its MAC must chain from the row before;\n"
	 "         the chain head must name the last row. Then the anchor left by the\n"
	 "         last successful verify (in the control database) must still match:\n"
	 "         rows cut from the end together with the head, or a chain rewritten\n"
	 "         from an older row, are caught there. On success the anchor moves to\n"
	 "         the head just verified, so run it regularly (cron: --all).\n"
	 "         Prints 'SLUG: N rows, chain intact', or the first bad row and why.\n"
	 "         Progress goes to stderr (a redrawn line on a terminal, else a line\n"
	 "         every 10000 rows).\n"
	 "\n"
	 "reanchor after restoring a tenant's database from a backup the anchor is\n"
	 "         ahead of the log and verify says so; reanchor walks the chain\n"
	 "         and, if it holds, anchors it at its head as it is now.\n"
	 "\n"
	 "Exit status: 0 intact, 1 broken (tampered with), 2 not checked (usage,\n"
	 "unknown tenant, database or keys unavailable); with --all the worst of all.\n",
	 cli_audit},
	{"version", "print the version", "usage: bulwark version\n", cli_version},
};

static void
main_usage(FILE *f)
{
	fprintf(f, "usage: bulwark <command> [options]\n\nCommands:\n");
	for (size_t i = 0; i < sizeof(cli_commands) / sizeof(cli_commands[0]); i++)
		fprintf(f, "  %-10s %s\n", cli_commands[i].name, cli_commands[i].summary);
	fprintf(f, "\nRun 'bulwark <command> --help' for a command's options.\n");
}

int
main(int argc, char **argv)
{
	/* Databases, keys and logs we create are ours alone. */
	umask(077);
	if (argc < 2) {
		main_usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		main_usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0)
		return cli_version(1, argv);
	for (size_t i = 0; i < sizeof(cli_commands) / sizeof(cli_commands[0]); i++) {
		const struct cli_cmd *c = &cli_commands[i];
		if (strcmp(argv[1], c->name) != 0)
			continue;
		for (int a = 2; a < argc; a++) {
			if (strcmp(argv[a], "--help") == 0 || strcmp(argv[a], "-h") == 0) {
				fputs(c->usage, stdout);
				return 0;
			}
		}
		return c->run(argc - 1, argv + 1);
	}
	fprintf(stderr, "bulwark: unknown command '%s'\n\n", argv[1]);
	main_usage(stderr);
	return 2;
}
