/*
 * Every key is one row of config_keys: where it lives in struct config,
 * its type, bounds and default. Defaults go through the same parser as
 * file values, so a bad default cannot compile into a silent surprise.
 */
#include "config.h"

#include "../core/netaddr.h"

#include <ctype.h>
#include <stdlib.h>
#include <errno.h>
#include <ini.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

enum ck_type { CK_INT, CK_STR, CK_ENUM };

struct config_key {
	const char *section, *key;
	enum ck_type type;
	size_t off, size;
	long min, max;
	const char *def;
	const char *const *choices; /* CK_ENUM */
};

static const char *const levels[] = {"debug", "info", "warn", "error", NULL};
static const char *const drivers[] = {"sqlite", "mariadb", NULL};
static const char *const mail_securities[] = {"starttls", "tls", "none", NULL};
static const char *const key_sources[] = {"file", "env", "vault", NULL};
static const char *const vault_providers[] = {"env", "files", "infisical", NULL};
static const char *const infisical_apis[] = {"v3", "v4", NULL};

#define INT_KEY(s, k, field, lo, hi, d) \
	{s, k, CK_INT, offsetof(struct config, field), 0, lo, hi, d, NULL}
#define STR_KEY(s, k, field, d) \
	{s, k, CK_STR, offsetof(struct config, field), sizeof(((struct config *)0)->field), 0, 0, d, NULL}
#define ENUM_KEY(s, k, field, d, list) \
	{s, k, CK_ENUM, offsetof(struct config, field), sizeof(((struct config *)0)->field), 0, 0, d, list}

static const struct config_key config_keys[] = {
	STR_KEY("server", "bind", bind, "127.0.0.1"),
	INT_KEY("server", "port", port, 1, 65535, "8443"),
	STR_KEY("server", "base_domain", base_domain, "localhost"),
	INT_KEY("server", "public_port", public_port, 0, 65535, "0"),
	STR_KEY("server", "tls_cert", tls_cert, ""),
	STR_KEY("server", "tls_key", tls_key, ""),
	INT_KEY("server", "threads", threads, 0, 256, "0"),
	STR_KEY("server", "trusted_proxies", trusted_proxies, ""),
	INT_KEY("limits", "max_connections", max_connections, 1, 100000, "1024"),
	INT_KEY("limits", "max_connections_per_ip", max_connections_per_ip, 1, 100000, "128"),
	INT_KEY("limits", "connection_timeout", connection_timeout, 1, 3600, "30"),
	INT_KEY("limits", "header_timeout", header_timeout, 1, 3600, "10"),
	INT_KEY("limits", "body_min_rate", body_min_rate, 0, 1073741824, "1024"),
	INT_KEY("limits", "header_max", header_max, 1024, 1048576, "16384"),
	INT_KEY("limits", "body_max", body_max, 0, 1073741824, "1048576"),
	INT_KEY("limits", "rate_per_second", rate_per_second, 0, 1000000, "200"),
	INT_KEY("limits", "rate_burst", rate_burst, 1, 10000000, "400"),
	INT_KEY("limits", "drain_timeout", drain_timeout, 0, 3600, "15"),
	STR_KEY("files", "clamd_socket", files_clamd_socket, "/run/clamav/clamd.ctl"),
	INT_KEY("files", "clamd_timeout", files_clamd_timeout, 1, 3600, "30"),
	INT_KEY("files", "max_bytes", files_max_bytes, 1, 1073741824, "104857600"),
	INT_KEY("files", "archive_entries", files_archive_entries, 1, 1000000, "10000"),
	INT_KEY("files", "archive_unpacked", files_archive_unpacked, 1, 68719476736L, "1073741824"),
	INT_KEY("files", "archive_ratio", files_archive_ratio, 1, 100000, "200"),
	INT_KEY("files", "archive_depth", files_archive_depth, 1, 16, "3"),
	INT_KEY("jobs", "workers", jobs_workers, 0, 64, "2"),
	INT_KEY("jobs", "poll_ms", jobs_poll_ms, 10, 60000, "1000"),
	INT_KEY("webhooks", "connect_timeout_ms", webhooks_connect_timeout_ms, 100, 60000, "5000"),
	INT_KEY("webhooks", "timeout_ms", webhooks_timeout_ms, 1000, 120000, "15000"),
	INT_KEY("webhooks", "disable_after_hours", webhooks_disable_after_hours, 1, 8760, "72"),
	INT_KEY("webhooks", "inbound_tolerance", webhooks_inbound_tolerance, 30, 3600, "300"),
	INT_KEY("webhooks", "inbound_body_max", webhooks_inbound_body_max, 1024, 1048576, "262144"),
	STR_KEY("webhooks", "ca_file", webhooks_ca_file, ""),
	INT_KEY("webhooks", "test_allow_loopback", webhooks_test_allow_loopback, 0, 1, "0"),
	INT_KEY("webhooks", "test_retry_seconds", webhooks_test_retry_seconds, 0, 3600, "0"),
	STR_KEY("mail", "smtp_host", mail_smtp_host, ""),
	INT_KEY("mail", "smtp_port", mail_smtp_port, 1, 65535, "587"),
	ENUM_KEY("mail", "smtp_security", mail_smtp_security, "starttls", mail_securities),
	STR_KEY("mail", "smtp_username", mail_smtp_username, ""),
	STR_KEY("mail", "smtp_password_file", mail_smtp_password_file, ""),
	STR_KEY("mail", "from", mail_from, ""),
	STR_KEY("mail", "ca_file", mail_ca_file, ""),
	INT_KEY("mail", "connect_timeout_ms", mail_connect_timeout_ms, 100, 60000, "10000"),
	INT_KEY("mail", "timeout_ms", mail_timeout_ms, 1000, 600000, "60000"),
	INT_KEY("mail", "poll_seconds", mail_poll_seconds, 1, 86400, "60"),
	INT_KEY("mail", "inbound_max_bytes", mail_inbound_max_bytes, 65536, 104857600, "26214400"),
	INT_KEY("mail", "inbound_per_sender_hour", mail_inbound_per_sender_hour, 1, 100000, "30"),
	INT_KEY("mail", "test_retry_seconds", mail_test_retry_seconds, 0, 3600, "0"),
	INT_KEY("mail", "test_allow_loopback", mail_test_allow_loopback, 0, 1, "0"),
	INT_KEY("recovery", "token_minutes", recovery_token_minutes, 5, 1440, "30"),
	INT_KEY("recovery", "per_address_hour", recovery_per_address_hour, 1, 1000, "3"),
	INT_KEY("recovery", "per_client_hour", recovery_per_client_hour, 1, 100000, "20"),
	STR_KEY("paths", "var_dir", var_dir, "./var"),
	ENUM_KEY("database", "driver", db_driver, "sqlite", drivers),
	STR_KEY("database", "host", db_host, ""),
	INT_KEY("database", "port", db_port, 1, 65535, "3306"),
	STR_KEY("database", "socket", db_socket, ""),
	STR_KEY("database", "user", db_user, "bulwark"),
	STR_KEY("database", "password_file", db_password_file, ""),
	STR_KEY("database", "control_db", db_control, "saas_control"),
	STR_KEY("database", "tenant_account_host", db_tenant_account_host, "%"),
	INT_KEY("database", "connect_timeout", db_connect_timeout, 1, 120, "5"),
	INT_KEY("database", "pool_per_tenant", db_pool_per_tenant, 1, 1000, "8"),
	INT_KEY("database", "pool_total", db_pool_total, 1, 100000, "256"),
	INT_KEY("database", "pool_idle_seconds", db_pool_idle_seconds, 1, 86400, "60"),
	INT_KEY("database", "pool_wait_ms", db_pool_wait_ms, 0, 60000, "2000"),
	INT_KEY("database", "registry_refresh_ms", db_registry_refresh_ms, 10, 600000, "1000"),
	INT_KEY("auth", "lockout_threshold", auth_lockout_threshold, 1, 1000, "5"),
	INT_KEY("auth", "lockout_minutes", auth_lockout_minutes, 1, 100000, "30"),
	INT_KEY("auth", "session_idle_minutes", auth_session_idle_minutes, 1, 100000, "30"),
	INT_KEY("auth", "session_absolute_hours", auth_session_absolute_hours, 1, 10000, "8"),
	INT_KEY("auth", "max_concurrent_hashes", auth_max_hashes, 0, 1024, "0"),
	INT_KEY("auth", "hash_wait_ms", auth_hash_wait_ms, 0, 60000, "2000"),
	INT_KEY("auth", "login_rate_per_minute", auth_login_rate, 0, 100000, "30"),
	INT_KEY("auth", "login_attempts_max_rows", auth_attempts_max_rows, 1, 10000000, "10000"),
	ENUM_KEY("keys", "source", keys_source, "file", key_sources),
	STR_KEY("keys", "file", keys_file, ""),
	ENUM_KEY("vault", "provider", vault_provider, "env", vault_providers),
	STR_KEY("vault", "files_dir", vault_files_dir, ""),
	STR_KEY("vault", "infisical_url", vault_infisical_url, "https://app.infisical.com"),
	ENUM_KEY("vault", "infisical_api", vault_infisical_api, "v3", infisical_apis),
	STR_KEY("vault", "infisical_project_id", vault_infisical_project_id, ""),
	STR_KEY("vault", "infisical_environment", vault_infisical_environment, "prod"),
	STR_KEY("vault", "infisical_secret_path", vault_infisical_secret_path, "/"),
	STR_KEY("vault", "infisical_client_id_file", vault_infisical_client_id_file, ""),
	STR_KEY("vault", "infisical_client_secret_file", vault_infisical_client_secret_file, ""),
	STR_KEY("vault", "infisical_ca_file", vault_infisical_ca_file, ""),
	INT_KEY("vault", "timeout", vault_timeout, 1, 300, "10"),
	ENUM_KEY("log", "level", log_level, "info", levels),
	STR_KEY("log", "access_log", access_log, "-"),
};

static const struct config_key *
config_find(const char *section, const char *key)
{
	for (size_t i = 0; i < BW_ARRAY_LEN(config_keys); i++)
		if (strcmp(config_keys[i].section, section) == 0 &&
		    strcmp(config_keys[i].key, key) == 0)
			return &config_keys[i];
	return NULL;
}

static int
config_section_known(const char *section)
{
	for (size_t i = 0; i < BW_ARRAY_LEN(config_keys); i++)
		if (strcmp(config_keys[i].section, section) == 0)
			return 1;
	return 0;
}

/* Set one key from text; on failure a reason (without location) in why. */
static bw_err
config_set(struct config *cfg, const struct config_key *k, const char *value, char *why,
	   size_t whylen)
{
	char *field = (char *)cfg + k->off;
	switch (k->type) {
	case CK_INT: {
		long v;
		if (util_parse_long(value, k->min, k->max, &v) != BW_OK) {
			snprintf(why, whylen, "'%s' is not a whole number from %ld to %ld", value,
				 k->min, k->max);
			return BW_ERR_CONFIG;
		}
		*(long *)(void *)field = v;
		return BW_OK;
	}
	case CK_ENUM: {
		for (const char *const *c = k->choices; *c != NULL; c++) {
			if (strcmp(*c, value) == 0) {
				snprintf(field, k->size, "%s", value);
				return BW_OK;
			}
		}
		size_t off = (size_t)snprintf(why, whylen, "'%s' is not one of", value);
		for (const char *const *c = k->choices; *c != NULL && off < whylen; c++)
			off += (size_t)snprintf(why + off, whylen - off, " %s", *c);
		return BW_ERR_CONFIG;
	}
	case CK_STR:
		if (strlen(value) >= k->size) {
			snprintf(why, whylen, "value longer than %zu characters", k->size - 1);
			return BW_ERR_CONFIG;
		}
		for (const char *c = value; *c; c++) {
			if ((unsigned char)*c < 0x20) {
				snprintf(why, whylen, "control character in value");
				return BW_ERR_CONFIG;
			}
		}
		snprintf(field, k->size, "%s", value);
		return BW_OK;
	}
	abort();
}

void
config_defaults(struct config *cfg)
{
	char why[256];
	memset(cfg, 0, sizeof(*cfg));
	for (size_t i = 0; i < BW_ARRAY_LEN(config_keys); i++)
		if (config_set(cfg, &config_keys[i], config_keys[i].def, why, sizeof(why)) != BW_OK)
			abort(); /* a bad compiled-in default is a programming error */
}

struct ini_ctx {
	struct config *cfg;
	char msg[512]; /* first error, without the line number */
};

static int
config_ini_handler(void *user, const char *section, const char *name, const char *value)
{
	struct ini_ctx *ctx = user;
	char why[300];
	if (ctx->msg[0] != '\0')
		return 0; /* keep the first error only */
	if (!config_section_known(section)) {
		snprintf(ctx->msg, sizeof(ctx->msg), "unknown section [%s] (key '%s')", section,
			 name);
		return 0;
	}
	const struct config_key *k = config_find(section, name);
	if (k == NULL) {
		snprintf(ctx->msg, sizeof(ctx->msg), "unknown key '%s' in [%s]", name, section);
		return 0;
	}
	if (config_set(ctx->cfg, k, value, why, sizeof(why)) != BW_OK) {
		snprintf(ctx->msg, sizeof(ctx->msg), "key '%s' in [%s]: %s", name, section, why);
		return 0;
	}
	return 1;
}

static bw_err
config_from_env(struct config *cfg, char *const *envp, char *err, size_t errlen)
{
	if (envp == NULL)
		return BW_OK;
	for (char *const *e = envp; *e != NULL; e++) {
		const char *var = *e;
		if (strncmp(var, "BULWARK_", 8) != 0)
			continue;
		const char *eq = strchr(var, '=');
		if (eq == NULL)
			continue;
		const char *rest = var + 8;
		/* Find which section the variable names, if any. */
		const struct config_key *sec = NULL;
		for (size_t i = 0; i < BW_ARRAY_LEN(config_keys) && sec == NULL; i++) {
			size_t sl = strlen(config_keys[i].section);
			if ((size_t)(eq - rest) > sl + 1 && strncasecmp(rest, config_keys[i].section, sl) == 0 &&
			    rest[sl] == '_')
				sec = &config_keys[i];
		}
		if (sec == NULL)
			continue; /* not a BULWARK_<SECTION>_<KEY> variable (e.g. BULWARK_KEYS) */
		char key[64];
		size_t klen = (size_t)(eq - rest) - strlen(sec->section) - 1;
		if (klen >= sizeof(key)) {
			snprintf(err, errlen, "environment variable %.*s: key name too long",
				 (int)(eq - var), var);
			return BW_ERR_CONFIG;
		}
		for (size_t i = 0; i < klen; i++)
			key[i] = (char)tolower((unsigned char)rest[strlen(sec->section) + 1 + i]);
		key[klen] = '\0';
		const struct config_key *k = config_find(sec->section, key);
		char why[300];
		if (k == NULL) {
			snprintf(err, errlen, "environment variable %.*s: unknown key '%s' in [%s]",
				 (int)(eq - var), var, key, sec->section);
			return BW_ERR_CONFIG;
		}
		if (config_set(cfg, k, eq + 1, why, sizeof(why)) != BW_OK) {
			snprintf(err, errlen, "environment variable %.*s: %s", (int)(eq - var), var,
				 why);
			return BW_ERR_CONFIG;
		}
	}
	return BW_OK;
}

/* A database name we may put into SQL text: the only place one comes from config. */
static int
config_ident_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 64)
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
		      *s == '_'))
			return 0;
	return 1;
}

bw_err
config_load(struct config *cfg, const char *path, char *const *envp, char *err, size_t errlen)
{
	config_defaults(cfg);
	err[0] = '\0';

	const char *file = path;
	if (file == NULL) {
		FILE *probe = fopen("bulwark.conf", "r");
		if (probe != NULL) {
			fclose(probe);
			file = "bulwark.conf";
		}
	}
	if (file != NULL) {
		FILE *f = fopen(file, "r");
		if (f == NULL) {
			snprintf(err, errlen, "%s: cannot open: %s", file, strerror(errno));
			return BW_ERR_CONFIG;
		}
		struct ini_ctx ctx = {.cfg = cfg};
		int line = ini_parse_file(f, config_ini_handler, &ctx);
		fclose(f);
		if (line != 0) {
			if (ctx.msg[0] != '\0')
				snprintf(err, errlen, "%s:%d: %s", file, line, ctx.msg);
			else
				snprintf(err, errlen, "%s:%d: syntax error", file, line);
			return BW_ERR_CONFIG;
		}
		snprintf(cfg->source, sizeof(cfg->source), "%s", file);
	}
	if (config_from_env(cfg, envp, err, errlen) != BW_OK)
		return BW_ERR_CONFIG;
	if (cfg->var_dir[0] == '\0') {
		snprintf(err, errlen, "[paths] var_dir must not be empty");
		return BW_ERR_CONFIG;
	}
	struct netrange proxies[NETADDR_MAX_RANGES];
	size_t nproxies;
	if (netrange_list_parse(cfg->trusted_proxies, proxies, &nproxies) != BW_OK) {
		snprintf(err, errlen,
			 "[server] trusted_proxies: '%s' is not a list of addresses or CIDR ranges "
			 "(at most %d; no host bits past the prefix)",
			 cfg->trusted_proxies, NETADDR_MAX_RANGES);
		return BW_ERR_CONFIG;
	}
	if (!config_ident_ok(cfg->db_control)) {
		snprintf(err, errlen, "[database] control_db must be letters, digits and '_' (1-64)");
		return BW_ERR_CONFIG;
	}
	if (cfg->db_pool_per_tenant > cfg->db_pool_total) {
		snprintf(err, errlen, "[database] pool_per_tenant is larger than pool_total");
		return BW_ERR_CONFIG;
	}
	if (cfg->rate_per_second > 0 && cfg->rate_burst < 1) {
		snprintf(err, errlen, "[limits] rate_burst must be at least 1");
		return BW_ERR_CONFIG;
	}
	return BW_OK;
}

static void
config_default_path(const struct config *cfg, const char *set, const char *name, char *out)
{
	if (set[0] != '\0')
		snprintf(out, CONFIG_STR, "%s", set);
	else
		snprintf(out, CONFIG_STR, "%.*s/tls/%s", CONFIG_STR - 16, cfg->var_dir, name);
}

void
config_tls_cert(const struct config *cfg, char *out)
{
	config_default_path(cfg, cfg->tls_cert, "cert.pem", out);
}

void
config_tls_key(const struct config *cfg, char *out)
{
	config_default_path(cfg, cfg->tls_key, "key.pem", out);
}

void
config_keys_file(const struct config *cfg, char *out)
{
	if (cfg->keys_file[0] != '\0')
		snprintf(out, CONFIG_STR, "%s", cfg->keys_file);
	else
		snprintf(out, CONFIG_STR, "%.*s/keys/master.keys", CONFIG_STR - 32, cfg->var_dir);
}


void
config_dump(const struct config *cfg, FILE *f)
{
	fprintf(f, "# source: %s\n", cfg->source[0] ? cfg->source : "(defaults)");
	for (size_t i = 0; i < BW_ARRAY_LEN(config_keys); i++) {
		const struct config_key *k = &config_keys[i];
		const char *field = (const char *)cfg + k->off;
		if (k->type == CK_INT)
			fprintf(f, "%s.%s = %ld\n", k->section, k->key,
				*(const long *)(const void *)field);
		else
			fprintf(f, "%s.%s = %s\n", k->section, k->key, field);
	}
}

size_t
config_key_count(void)
{
	return BW_ARRAY_LEN(config_keys);
}

void
config_key_name(size_t n, const char **section, const char **key)
{
	*section = config_keys[n].section;
	*key = config_keys[n].key;
}
