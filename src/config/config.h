/*
 * config: the INI file, BULWARK_<SECTION>_<KEY> environment overrides and
 * defaults, described by one table (config.c) that also validates.
 */
#ifndef BW_CONFIG_H
#define BW_CONFIG_H

#include "../core/core.h"

#include <stdio.h>

#define CONFIG_STR 1024

struct config {
	char source[CONFIG_STR]; /* file read, or "" when only defaults */

	/* [server] */
	char bind[CONFIG_STR];
	long port;
	char base_domain[256];
	long public_port; /* the port clients reach this server on, in URLs it hands out
			     (SAML); 0: port; 443 is left out */
	char tls_cert[CONFIG_STR]; /* "" = <var_dir>/tls/cert.pem */
	char tls_key[CONFIG_STR];  /* "" = <var_dir>/tls/key.pem */
	long threads;              /* 0 = one per online CPU */
	char trusted_proxies[CONFIG_STR]; /* CIDRs whose X-Forwarded-For is believed */

	/* [limits] */
	long max_connections;
	long max_connections_per_ip;
	long connection_timeout; /* seconds of silence before a connection is cut */
	long header_timeout;     /* seconds from accept to the end of the request head */
	long body_min_rate;      /* bytes/s a request body must average; 0: no minimum */
	long header_max;         /* bytes of request line + headers */
	long body_max;           /* default body limit for routes that set none */
	long rate_per_second;    /* per client address; 0 disables */
	long rate_burst;
	long drain_timeout; /* seconds SIGTERM waits for in-flight requests */

	/* [files] */
	char files_clamd_socket[CONFIG_STR]; /* clamd's unix socket */
	long files_clamd_timeout;            /* seconds any one clamd read or write may take */
	long files_max_bytes;                /* bytes of one uploaded file */
	long files_archive_entries;          /* entries in an archive, nested ones included */
	long files_archive_unpacked;         /* bytes unpacked from an archive, all together */
	long files_archive_ratio;            /* unpacked bytes per byte of the archive */
	long files_archive_depth;            /* archives within archives (1: none) */
	long jobs_workers;                   /* job runner threads of `bulwark serve` (0: none) */
	long jobs_poll_ms;                   /* how often an idle runner looks for due jobs */
	long webhooks_connect_timeout_ms;    /* connecting to a receiver */
	long webhooks_timeout_ms;            /* one delivery attempt in all */
	long webhooks_disable_after_hours;   /* a subscription failing this long is disabled */
	long webhooks_inbound_tolerance;     /* seconds an inbound signature's timestamp may be off */
	long webhooks_inbound_body_max;      /* bytes of an inbound provider event */
	char webhooks_ca_file[CONFIG_STR];   /* extra CA bundle for receivers ("": the system's) */
	long webhooks_test_allow_loopback;   /* tests only: receivers on 127.0.0.1/::1 allowed */
	long webhooks_test_retry_seconds;    /* tests only: every retry after this many seconds (0: the schedule) */
	/* [mail]: the host's mail server, for tenants that set none of their own (docs/email.md) */
	char mail_smtp_host[256];            /* "": none (then only tenants with their own send) */
	long mail_smtp_port;
	char mail_smtp_security[16];         /* starttls | tls | none (none: loopback only) */
	char mail_smtp_username[256];        /* "": no AUTH */
	char mail_smtp_password_file[CONFIG_STR];
	char mail_from[256];                 /* the sender ("": no-reply@ the base domain) */
	char mail_ca_file[CONFIG_STR];       /* CA bundle for mail servers ("": the system's) */
	long mail_connect_timeout_ms;
	long mail_timeout_ms;                /* one submission in all */
	long mail_test_retry_seconds;        /* tests only: every retry after this many seconds (0: the schedule) */
	long mail_test_allow_loopback;       /* tests only: tenants' own mail servers may be on 127.0.0.1/::1 */
	long mail_poll_seconds;              /* how often each tenant's support mailbox is read */
	long mail_inbound_max_bytes;         /* a message larger is not taken (noted in the log) */
	long mail_inbound_per_sender_hour;   /* messages taken from one sender in an hour */
	/* [recovery] */
	long recovery_token_minutes;         /* a reset link's life */
	long recovery_per_address_hour;      /* reset requests for one address per hour */
	long recovery_per_client_hour;       /* reset requests from one client address per hour */

	/* [paths] */
	char var_dir[CONFIG_STR];

	/* [database] */
	char db_driver[16]; /* sqlite | mariadb */
	char db_host[256];
	long db_port;
	char db_socket[CONFIG_STR];
	char db_user[128];
	char db_password_file[CONFIG_STR];
	char db_control[65];
	char db_tenant_account_host[256];
	long db_connect_timeout;
	long db_pool_per_tenant;
	long db_pool_total;
	long db_pool_idle_seconds;
	long db_pool_wait_ms;
	long db_registry_refresh_ms;

	/* [auth] */
	long auth_lockout_threshold; /* wrong passwords (or codes) before a lockout */
	long auth_lockout_minutes;
	long auth_session_idle_minutes;
	long auth_session_absolute_hours;
	long auth_max_hashes; /* argon2id hashes at once; 0 = 2 per CPU */
	long auth_hash_wait_ms;
	long auth_login_rate; /* login attempts per minute per client address; 0 = off */
	long auth_attempts_max_rows; /* counters of unknown addresses kept per tenant */

	/* [keys] */
	char keys_source[16]; /* file | env | vault */
	char keys_file[CONFIG_STR]; /* "" = <var_dir>/keys/master.keys */
	/* [vault] */
	char vault_provider[16]; /* env | files | infisical */
	char vault_files_dir[CONFIG_STR]; /* "" = $CREDENTIALS_DIRECTORY */
	char vault_infisical_url[CONFIG_STR];
	char vault_infisical_api[8]; /* v3 | v4 */
	char vault_infisical_project_id[256];
	char vault_infisical_environment[256];
	char vault_infisical_secret_path[CONFIG_STR];
	char vault_infisical_client_id_file[CONFIG_STR];
	char vault_infisical_client_secret_file[CONFIG_STR];
	char vault_infisical_ca_file[CONFIG_STR]; /* "" = the system's CAs */
	long vault_timeout;                       /* seconds per provider request */

	/* [log] */
	char log_level[16];
	char access_log[CONFIG_STR]; /* "-" stdout, "off", or a file path */
};

/*
 * Load configuration. path is the -c argument or NULL; with NULL,
 * ./bulwark.conf is read when present, else only defaults apply. envp is
 * the environment to take overrides from (normally environ). On failure
 * returns BW_ERR_CONFIG with a message naming file, line and key (or the
 * environment variable) in err.
 */
bw_err config_load(struct config *cfg, const char *path, char *const *envp, char *err,
		   size_t errlen) BW_MUST_USE;

/* Fill cfg with defaults only. */
void config_defaults(struct config *cfg);

/* The TLS paths after defaulting, into out (CONFIG_STR bytes). */
void config_tls_cert(const struct config *cfg, char *out);
void config_tls_key(const struct config *cfg, char *out);
/* The master key file after defaulting. */
void config_keys_file(const struct config *cfg, char *out);

/* Write "section.key = value" lines for every key (bulwark config show). */
void config_dump(const struct config *cfg, FILE *f);

/* For tests and docs: number of keys and the n-th key's section and name. */
size_t config_key_count(void);
void config_key_name(size_t n, const char **section, const char **key);

#endif
