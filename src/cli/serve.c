/*
 * bulwark serve: start the server, then wait for signals in the main
 * thread. SIGHUP reloads what can change at run time; SIGTERM and SIGINT
 * drain in-flight requests and exit 0.
 */
#include "cli.h"

#include "../saml/saml.h"

#include <curl/curl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../audit/audit_api.h"
#include "../auth/auth_api.h"
#include "../modules/module_api.h"
#include "../rbac/rbac_api.h"
#include "../saml/saml.h"
#include "../server/server.h"
#include "../crypto/crypto.h"
#include "../jobs/kinds.h"
#include "../mail/mail.h"
#include "../intake/intake.h"
#include "../notify/notify.h"
#include "../tenancy/tenancy.h"

extern char **environ;

int
cli_serve(int argc, char **argv)
{
	struct cli_opts o;
	struct config cfg;
	struct server *srv = NULL;
	struct tenancy *ten = NULL;
	struct registry *reg = NULL;
	struct connpool *cpool = NULL;
	struct auth_hasher *hasher = NULL;
	struct route *routes = NULL;
	struct jobs_runner *runner = NULL;
	static struct job_table jobs; /* outlives the runner */
	char err[1024];
	int status = 1;
	sigset_t set;
	int rc = cli_parse(argc, argv, &o);
	if (rc != 0)
		return rc;
	if (o.nargs != 0) {
		fprintf(stderr, "bulwark serve: unexpected argument '%s'\n", o.args[0]);
		return 2;
	}
	if (cli_load_config(&o, &cfg) != 0)
		return 1;

	/* Block before any thread starts so only sigwait() below sees them. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	log_info("bulwark %s starting (configuration: %s)", BULWARK_VERSION,
		 cfg.source[0] ? cfg.source : "defaults");
	/* Every route the server knows, in one table (it outlives the server). */
	size_t nroutes;
	if (cli_route_table(&routes, &nroutes) != BW_OK) {
		log_error("cannot start: out of memory");
		goto out;
	}
	struct server_deps deps = {0};
	/* The test-only keys say so loudly: with them on, receivers on loopback are reached. */
	if (cfg.webhooks_test_allow_loopback)
		log_warn("[webhooks] test_allow_loopback is on: deliveries may go to 127.0.0.1 and "
			 "::1 of this host. It is for the test suite only; never run production so");
	if (cfg.webhooks_test_retry_seconds > 0)
		log_warn("[webhooks] test_retry_seconds is %ld: failed deliveries are retried on that "
			 "schedule, not the documented one (tests only)",
			 cfg.webhooks_test_retry_seconds);
	/* The host's mail server (and its password file) before the job kinds are made. */
	if (notify_configure(&cfg) != BW_OK) {
		log_error("cannot start: [mail] is not usable (see above)");
		goto out;
	}
	intake_configure(&cfg);
	job_table_build(&cfg, 1, &jobs);
	/* Before any thread: the job runner's webhook deliveries use libcurl. */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		log_error("cannot start: libcurl does not initialise");
		goto out;
	}
	/* Before any thread too: lasso (and libxml2, xmlsec) for single sign-on. */
	if (saml_init() != BW_OK) {
		log_error("cannot start: lasso (SAML) does not initialise");
		goto out;
	}
	/* And GMime, which the mail job builds messages with. */
	if (mail_init() != BW_OK) {
		log_error("cannot start: GMime (mail) does not initialise");
		goto out;
	}
	if (tenancy_open(&cfg, 0, &ten, err, sizeof(err)) != BW_OK ||
	    tenancy_check_anonymous(ten, err, sizeof(err)) != BW_OK ||
	    registry_start(ten, &reg, err, sizeof(err)) != BW_OK ||
	    connpool_new(ten, &cpool) != BW_OK ||
	    password_hasher_new(cfg.auth_max_hashes, cfg.auth_hash_wait_ms, &hasher) != BW_OK ||
	    (deps = (struct server_deps){ten, reg, cpool, hasher},
	     server_start(&cfg, routes, nroutes, &deps, &srv, err, sizeof(err))) != BW_OK) {
		log_error("cannot start: %s", err);
		goto out;
	}
	if (jobs_runner_start(&cfg, ten, reg, cpool, jobs.kinds, jobs.nkinds, jobs.ticks,
			      jobs.nticks, &runner) != BW_OK) {
		log_error("cannot start: the job runner: out of memory");
		goto out;
	}
	log_info("%s database, %zu tenant(s) registered", cfg.db_driver, registry_count(reg));
	for (;;) {
		int sig;
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			struct config ncfg;
			if (config_load(&ncfg, o.config_path, environ, err, sizeof(err)) != BW_OK) {
				log_error("reload refused, keeping the running configuration: %s", err);
				continue;
			}
			if (server_reload(srv, &ncfg, err, sizeof(err)) != BW_OK) {
				log_error("reload failed, keeping the running configuration: %s", err);
				continue;
			}
			log_level l;
			if (log_level_parse(ncfg.log_level, &l) == BW_OK)
				log_set_level(l);
			if (tenancy_reload_keys(ten, err, sizeof(err)) != BW_OK)
				log_warn("reload: master keys unchanged: %s", err);
			else
				log_info("reload: %zu master key(s), newest %u",
					 keyring_master_count(tenancy_keyring(ten)),
					 keyring_master_id(tenancy_keyring(ten)));
			cfg.drain_timeout = ncfg.drain_timeout;
			log_info("reloaded configuration");
			continue;
		}
		log_info("%s received: draining (up to %lds)", sig == SIGINT ? "SIGINT" : "SIGTERM",
			 cfg.drain_timeout);
		server_drain(srv, cfg.drain_timeout);
		jobs_runner_stop(runner);
		runner = NULL;
		status = 0;
		break;
	}
out:
	jobs_runner_stop(runner);
	server_free(srv);
	registry_stop(reg);
	connpool_free(cpool);
	password_hasher_free(hasher);
	tenancy_close(ten);
	free(routes);
	if (status == 0)
		log_info("stopped");
	return status;
}
