/*
 * The process's handle on the control plane: configuration, the control
 * connection, and the secrets that reach tenant databases. Secrets are
 * read from files (never from a database), kept out of core dumps and
 * wiped on close.
 */
#include "tenancy.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../crypto/crypto.h"
#include "../db/migrate.h"
#include "../vault/vault.h"

#define TENANCY_SECRET_MAX 256

struct tenancy_secrets {
	char control_password[TENANCY_SECRET_MAX];
};

struct tenancy {
	struct config cfg;
	db *control;
	struct keyring *kr;
	struct vault *vault; /* open only while tenancy_open() reads boot secrets */
	struct tenancy_secrets *sec; /* page-aligned, locked, not dumped */
	/* The quotas' own control connection (quota.c), for request threads: one at a time. */
	pthread_mutex_t quota_lock;
	db *quota_db;
};

static bw_err tenancy_control_new(struct tenancy *t, int create, db **out, char *err,
				  size_t errlen);

bw_err
tenancy_control_open(struct tenancy *t, db **out, char *err, size_t errlen)
{
	return tenancy_control_new(t, 0, out, err, errlen);
}

pthread_mutex_t *
tenancy_quota_lock(struct tenancy *t, db ***d)
{
	*d = &t->quota_db;
	return &t->quota_lock;
}

struct keyring *
tenancy_keyring(struct tenancy *t)
{
	return t->kr;
}

db *
tenancy_control(struct tenancy *t)
{
	return t->control;
}

const struct config *
tenancy_config(const struct tenancy *t)
{
	return &t->cfg;
}

/*
 * Read a secret file: refuse one that others can read; strip one trailing
 * newline when text. Returns the length in *n.
 */
static bw_err
tenancy_read_secret(const char *path, void *buf, size_t cap, size_t *n, int text, char *err,
		    size_t errlen)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return BW_ERR_CONFIG;
	}
	if (fstat(fd, &st) != 0 || (st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
		close(fd);
		snprintf(err, errlen, "%s: readable by group or others; chmod 600 it", path);
		return BW_ERR_CONFIG;
	}
	ssize_t r = read(fd, buf, cap);
	close(fd);
	if (r < 0 || (size_t)r >= cap) {
		snprintf(err, errlen, "%s: unreadable or longer than %zu bytes", path, cap - 1);
		OPENSSL_cleanse(buf, cap);
		return BW_ERR_CONFIG;
	}
	size_t len = (size_t)r;
	if (text) {
		char *s = buf;
		s[len] = '\0';
		char *nl = strpbrk(s, "\r\n");
		if (nl != NULL)
			len = (size_t)(nl - s);
		s[len] = '\0';
	}
	*n = len;
	return BW_OK;
}

static bw_err
tenancy_secrets_load(struct tenancy *t, char *err, size_t errlen)
{
	const struct config *c = &t->cfg;
	size_t n;
	t->sec = mmap(NULL, sizeof(*t->sec), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
		      0);
	if (t->sec == MAP_FAILED) {
		t->sec = NULL;
		return BW_ERR_NOMEM;
	}
	/* Best effort: kept out of swap and core dumps where the kernel lets us. */
	(void)mlock(t->sec, sizeof(*t->sec));
	(void)madvise(t->sec, sizeof(*t->sec), MADV_DONTDUMP);
	if (strcmp(c->db_driver, "mariadb") != 0)
		return BW_OK;
	if (c->db_password_file[0] != '\0') {
		bw_err e = tenancy_read_secret(c->db_password_file, t->sec->control_password,
					       sizeof(t->sec->control_password), &n, 1, err, errlen);
		if (e != BW_OK)
			return e;
		return BW_OK;
	}
	/* No file: the vault's DB_PASSWORD if it has one, else no password. */
	bw_err e = vault_get(t->vault, "DB_PASSWORD", (unsigned char *)t->sec->control_password,
			     sizeof(t->sec->control_password) - 1, &n);
	if (e == BW_OK)
		t->sec->control_password[n] = '\0';
	else if (e != BW_ERR_NOTFOUND) {
		snprintf(err, errlen, "vault (%s): DB_PASSWORD: %s", vault_provider_name(t->vault),
			 bw_strerror(e));
		return e;
	}
	return BW_OK;
}

#define TENANCY_DB_PASSWORD "bulwark/tenant-db-password/v1"

bw_err
tenancy_tenant_password(struct tenancy *t, const struct tenant *tn, char *out, size_t outlen)
{
	unsigned char secret[32];
	if (outlen < 65 || tn->db_secret_len == 0)
		return BW_ERR_CRYPTO;
	bw_err e = keyring_unwrap_secret(t->kr, TENANCY_DB_PASSWORD, tn->slug, (uint32_t)tn->id,
					 tn->db_secret_master, tn->db_secret, tn->db_secret_len,
					 secret);
	if (e == BW_OK)
		util_hex(secret, sizeof(secret), out);
	crypto_wipe(secret, sizeof(secret));
	return e;
}

/* Store w (wrapped under master) as tn's database password. */
static bw_err
tenancy_store_password(struct tenancy *t, struct tenant *tn, const unsigned char *w, size_t wl,
		       uint32_t master)
{
	db_stmt *s = NULL;
	int row;
	bw_err e = db_prepare(t->control,
			      "UPDATE tenants SET db_secret = ?, db_secret_master = ? WHERE id = ?", &s);
	if (e == BW_OK && (e = db_bind_blob(s, 1, w, wl)) == BW_OK &&
	    (e = db_bind_int(s, 2, master)) == BW_OK && (e = db_bind_int(s, 3, tn->id)) == BW_OK)
		e = db_step(s, &row);
	db_finalize(s);
	if (e == BW_OK) {
		memcpy(tn->db_secret, w, wl);
		tn->db_secret_len = wl;
		tn->db_secret_master = master;
	}
	return e;
}

bw_err
tenancy_tenant_rewrap_password(struct tenancy *t, struct tenant *tn)
{
	unsigned char secret[32], w[KEYRING_WRAPPED_LEN];
	uint32_t master;
	bw_err e = keyring_unwrap_secret(t->kr, TENANCY_DB_PASSWORD, tn->slug, (uint32_t)tn->id,
					 tn->db_secret_master, tn->db_secret, tn->db_secret_len,
					 secret);
	if (e == BW_OK)
		e = keyring_wrap_secret(t->kr, TENANCY_DB_PASSWORD, tn->slug, (uint32_t)tn->id, secret, w,
					&master);
	crypto_wipe(secret, sizeof(secret));
	if (e == BW_OK)
		e = tenancy_store_password(t, tn, w, sizeof(w), master);
	return e;
}

bw_err
tenancy_tenant_new_password(struct tenancy *t, struct tenant *tn, int create, char *pw,
			    size_t pwlen, char *err, size_t errlen)
{
	unsigned char secret[32], w[KEYRING_WRAPPED_LEN];
	uint32_t master;
	char sql[1024];
	bw_err e;
	if (pwlen < 65 || tn->id <= 0 || tn->id > 0x7fffffff)
		return BW_ERR_INVALID;
	if ((e = util_random(secret, sizeof(secret))) != BW_OK ||
	    (e = keyring_wrap_secret(t->kr, TENANCY_DB_PASSWORD, tn->slug, (uint32_t)tn->id, secret,
				     w, &master)) != BW_OK) {
		snprintf(err, errlen, "tenant %s: cannot make a database password", tn->slug);
		goto out;
	}
	util_hex(secret, sizeof(secret), pw);
	if (!create) {
		/* db_user and the host were validated when the account was made. */
		snprintf(sql, sizeof(sql), "ALTER USER '%s'@'%s' IDENTIFIED BY '%s'", tn->db_user,
			 t->cfg.db_tenant_account_host, pw);
		e = db_exec(t->control, sql);
		crypto_wipe(sql, sizeof(sql));
		if (e != BW_OK) {
			snprintf(err, errlen, "tenant %s: setting the account password: %s", tn->slug,
				 db_errmsg(t->control));
			goto out;
		}
	}
	if ((e = tenancy_store_password(t, tn, w, sizeof(w), master)) != BW_OK) {
		snprintf(err, errlen, "tenant %s: storing the database password: %s", tn->slug,
			 db_errmsg(t->control));
		goto out;
	}
out:
	crypto_wipe(secret, sizeof(secret));
	if (e != BW_OK)
		crypto_wipe(pw, pwlen);
	return e;
}

static void
tenancy_control_params(const struct tenancy *t, struct db_params *p, char *path)
{
	const struct config *c = &t->cfg;
	memset(p, 0, sizeof(*p));
	if (strcmp(c->db_driver, "mariadb") == 0) {
		p->driver = DB_MARIADB;
		p->host = c->db_host;
		p->port = (unsigned)c->db_port;
		p->socket = c->db_socket;
		p->user = c->db_user;
		p->password = t->sec->control_password;
		p->connect_timeout = (unsigned)c->db_connect_timeout;
	} else {
		p->driver = DB_SQLITE;
		snprintf(path, CONFIG_STR, "%.*s/control.db", CONFIG_STR - 16, c->var_dir);
		p->path = path;
	}
}

static bw_err
tenancy_mkdirs(const struct config *c, char *err, size_t errlen)
{
	char path[CONFIG_STR];
	const char *dirs[] = {"", "/tenants"};
	for (size_t i = 0; i < BW_ARRAY_LEN(dirs); i++) {
		snprintf(path, sizeof(path), "%.*s%s", CONFIG_STR - 16, c->var_dir, dirs[i]);
		if (mkdir(path, 0700) != 0 && errno != EEXIST) {
			snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
			return BW_ERR_IO;
		}
	}
	return BW_OK;
}

/* A new connection to the control database; create makes it if missing. */
static bw_err
tenancy_control_new(struct tenancy *t, int create, db **out, char *err, size_t errlen)
{
	const struct config *cfg = &t->cfg;
	struct db_params p;
	char path[CONFIG_STR], sql[256];
	bw_err e;
	tenancy_control_params(t, &p, path);
	if (p.driver == DB_SQLITE) {
		if (create && (e = tenancy_mkdirs(cfg, err, errlen)) != BW_OK)
			return e;
		p.create = create;
		if (!create && access(path, F_OK) != 0) {
			snprintf(err, errlen, "control database %s not found: run 'bulwark migrate' first",
				 path);
			return BW_ERR_CONFIG;
		}
	}
	db *d = NULL;
	if ((e = db_open(&p, &d, err, errlen)) != BW_OK)
		return e;
	if (p.driver == DB_MARIADB) {
		/* control_db passed config_ident_ok(): safe to name in SQL. */
		if (create) {
			snprintf(sql, sizeof(sql),
				 "CREATE DATABASE IF NOT EXISTS `%s` CHARACTER SET utf8mb4 "
				 "COLLATE utf8mb4_bin",
				 cfg->db_control);
			if ((e = db_exec(d, sql)) != BW_OK) {
				snprintf(err, errlen, "creating control database %s: %s", cfg->db_control,
					 db_errmsg(d));
				db_close(d);
				return e;
			}
		}
		snprintf(sql, sizeof(sql), "USE `%s`", cfg->db_control);
		if ((e = db_exec(d, sql)) != BW_OK) {
			snprintf(err, errlen, "control database %s: %s (run 'bulwark migrate' first?)",
				 cfg->db_control, db_errmsg(d));
			db_close(d);
			return e;
		}
	}
	*out = d;
	return BW_OK;
}

/* (Re)connect the control connection. */
static bw_err
tenancy_control_connect(struct tenancy *t, int create, char *err, size_t errlen)
{
	db *d;
	bw_err e = tenancy_control_new(t, create, &d, err, errlen);
	if (e != BW_OK)
		return e;
	db_close(t->control);
	t->control = d;
	return BW_OK;
}

/* Read the master keys' text from the configured source into text. */
static bw_err
tenancy_keys_read(struct tenancy *t, char *text, size_t cap, size_t *len, char *err,
		  size_t errlen)
{
	char path[CONFIG_STR];
	if (strcmp(t->cfg.keys_source, "vault") == 0) {
		struct vault *v = t->vault;
		bw_err e = BW_OK;
		if (v == NULL && (e = vault_open(&t->cfg, &v, err, errlen)) != BW_OK)
			return e;
		e = vault_get(v, "MASTER_KEYS", (unsigned char *)text, cap, len);
		if (e != BW_OK)
			snprintf(err, errlen, "vault (%s): MASTER_KEYS (the master keys): %s",
				 vault_provider_name(v), e == BW_ERR_NOTFOUND ? "no such secret" : bw_strerror(e));
		if (v != t->vault)
			vault_close(v);
		return e;
	}
	if (strcmp(t->cfg.keys_source, "env") == 0) {
		const char *v = getenv("BULWARK_KEYS");
		if (v == NULL || *v == '\0') {
			snprintf(err, errlen, "[keys] source = env, but BULWARK_KEYS is not set (master keys)");
			return BW_ERR_CONFIG;
		}
		*len = strlen(v);
		if (*len >= cap) {
			snprintf(err, errlen, "BULWARK_KEYS is too long");
			return BW_ERR_CONFIG;
		}
		memcpy(text, v, *len);
		/* Not inherited by anything this process starts. */
		unsetenv("BULWARK_KEYS");
		return BW_OK;
	}
	config_keys_file(&t->cfg, path);
	bw_err e = tenancy_read_secret(path, text, cap, len, 0, err, errlen);
	if (e != BW_OK) {
		size_t l = strlen(err);
		snprintf(err + l, errlen - l,
			 " (master keys; for development 'make run' creates one, see "
			 "bulwark.conf.example [keys])");
	}
	return e;
}

/*
 * Open the key ring from the master keys' text on a control connection of
 * its own. Fails closed: no keys, no start.
 */
static bw_err
tenancy_keys_load(struct tenancy *t, const char *text, size_t len, char *err, size_t errlen)
{
	db *d = NULL;
	bw_err e = tenancy_control_new(t, 0, &d, err, errlen);
	if (e == BW_OK)
		e = keyring_open(text, len, d, &t->kr, err, errlen);
	return e;
}

bw_err
tenancy_reload_keys(struct tenancy *t, char *err, size_t errlen)
{
	size_t len = 0, cap = 8192;
	if (strcmp(t->cfg.keys_source, "env") == 0) {
		snprintf(err, errlen, "master keys come from the environment: restart to change them");
		return BW_ERR_CONFIG;
	}
	/* source = vault: tenancy_keys_read() opens the vault afresh. */
	char *text = malloc(cap);
	if (text == NULL)
		return BW_ERR_NOMEM;
	bw_err e = tenancy_keys_read(t, text, cap, &len, err, errlen);
	if (e == BW_OK)
		e = keyring_reload(t->kr, text, len, err, errlen);
	crypto_wipe(text, cap);
	free(text);
	return e;
}

bw_err
tenancy_reconnect(struct tenancy *t)
{
	char err[512];
	if (t->control != NULL && !db_broken(t->control))
		return BW_OK;
	bw_err e = tenancy_control_connect(t, 0, err, sizeof(err));
	if (e != BW_OK)
		log_debug("control database: %s", err);
	return e;
}

bw_err
tenancy_open(const struct config *cfg, int create, struct tenancy **out, char *err,
	     size_t errlen)
{
	struct tenancy *t = calloc(1, sizeof(*t));
	char *keytext = NULL;
	size_t keylen = 0, keycap = 8192;
	bw_err e;
	*out = NULL;
	if (t == NULL)
		return BW_ERR_NOMEM;
	t->cfg = *cfg;
	pthread_mutex_init(&t->quota_lock, NULL);
	/*
	 * Boot-time secrets first, all of them, so that a missing one stops
	 * everything before any database is touched: the vault is read once,
	 * now, and fails closed.
	 */
	if ((keytext = malloc(keycap)) == NULL) {
		e = BW_ERR_NOMEM;
		goto fail;
	}
	if ((e = vault_open(&t->cfg, &t->vault, err, errlen)) != BW_OK ||
	    (e = tenancy_secrets_load(t, err, errlen)) != BW_OK ||
	    (e = tenancy_keys_read(t, keytext, keycap, &keylen, err, errlen)) != BW_OK)
		goto fail;
	vault_close(t->vault);
	t->vault = NULL;
	if ((e = tenancy_control_connect(t, create, err, errlen)) != BW_OK)
		goto fail;
	if ((e = tenancy_keys_load(t, keytext, keylen, err, errlen)) != BW_OK)
		goto fail;
	crypto_wipe(keytext, keycap);
	free(keytext);
	keytext = NULL;
	if (!create) {
		int v;
		if ((e = migrate_current(t->control, &v)) != BW_OK) {
			snprintf(err, errlen, "control database: %s", db_errmsg(t->control));
			goto fail;
		}
		if (v != migrate_latest(&migrate_control)) {
			snprintf(err, errlen,
				 "control database is at schema version %d, this build needs %d: run "
				 "'bulwark migrate'",
				 v, migrate_latest(&migrate_control));
			e = BW_ERR_CONFIG;
			goto fail;
		}
	}
	*out = t;
	return BW_OK;
fail:
	if (keytext != NULL) {
		crypto_wipe(keytext, keycap);
		free(keytext);
	}
	tenancy_close(t);
	return e;
}

void
tenancy_close(struct tenancy *t)
{
	if (t == NULL)
		return;
	vault_close(t->vault);
	keyring_close(t->kr);
	db_close(t->control);
	db_close(t->quota_db);
	pthread_mutex_destroy(&t->quota_lock);
	if (t->sec != NULL) {
		OPENSSL_cleanse(t->sec, sizeof(*t->sec));
		munlock(t->sec, sizeof(*t->sec));
		munmap(t->sec, sizeof(*t->sec));
	}
	free(t);
}

/*
 * Anonymous MariaDB accounts. mariadb-install-db makes ''@'localhost' and
 * ''@'<hostname>'; the server matches a login against the most specific
 * host first, so from those hosts every user name, bw_<slug> included,
 * logs in as the anonymous account, and with a tenant account at
 * tenant_account_host '%' the login fails: "Access denied for bw_<slug>".
 * We refuse to work beside such an account instead of working around it
 * (ADR 0013): it also lets anyone on that host in without a password.
 */
#define TENANCY_ANON_HOSTS 8

/* A host as MariaDB names it, safe to quote in a DROP USER for the operator. */
static int
tenancy_host_printable(const char *h)
{
	if (h == NULL || *h == '\0' || strlen(h) > 255)
		return 0;
	return h[strspn(h, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_%:/")] ==
	       '\0';
}

/*
 * Log in the way tenant connections do, as a user name that cannot exist
 * and with no password: only an anonymous account lets that in. 1 and the
 * host of the account that took it into host; 0 when refused (or the
 * server is unreachable: then nothing is known, and tenant logins will say
 * so themselves).
 */
static int
tenancy_anonymous_probe(struct tenancy *t, char *host, size_t hostlen)
{
	unsigned char r[8];
	char user[48], hex[2 * sizeof(r) + 1], err[512];
	db *d = NULL;
	db_stmt *s = NULL;
	int row = 0;
	if (util_random(r, sizeof(r)) != BW_OK)
		return 0;
	util_hex(r, sizeof(r), hex);
	snprintf(user, sizeof(user), "bulwark-probe-%s", hex);
	struct db_params p = {
	    .driver = DB_MARIADB,
	    .host = t->cfg.db_host,
	    .port = (unsigned)t->cfg.db_port,
	    .socket = t->cfg.db_socket,
	    .user = user,
	    .password = "",
	    .connect_timeout = (unsigned)t->cfg.db_connect_timeout,
	};
	if (db_open(&p, &d, err, sizeof(err)) != BW_OK)
		return 0;
	snprintf(host, hostlen, "%%");
	/* CURRENT_USER() is the account that matched: "@localhost". */
	if (db_prepare(d, "SELECT CURRENT_USER()", &s) == BW_OK && db_step(s, &row) == BW_OK &&
	    row) {
		const char *cu = db_col_text(s, 0);
		const char *at = cu ? strrchr(cu, '@') : NULL;
		if (at != NULL && tenancy_host_printable(at + 1))
			snprintf(host, hostlen, "%s", at + 1);
	}
	db_finalize(s);
	db_close(d);
	return 1;
}

/*
 * The hosts of the anonymous accounts, if the control account may read
 * mysql.user (least privilege says it may not). *complete when that worked
 * and every one fitted.
 */
static size_t
tenancy_anonymous_list(struct tenancy *t, char hosts[][256], size_t max, int *complete)
{
	db_stmt *s = NULL;
	int row = 0;
	size_t n = 0;
	bw_err e;
	*complete = 0;
	if (db_prepare(t->control, "SELECT Host FROM mysql.user WHERE User = '' ORDER BY Host", &s) !=
	    BW_OK)
		return 0;
	int fitted = 1;
	while ((e = db_step(s, &row)) == BW_OK && row) {
		const char *h = db_col_text(s, 0);
		if (n < max && tenancy_host_printable(h))
			snprintf(hosts[n++], 256, "%s", h);
		else
			fitted = 0;
	}
	*complete = e == BW_OK && fitted;
	db_finalize(s);
	return n;
}

/*
 * The report of tenancy_check_anonymous(). list: also read mysql.user on
 * the control connection, which only a single-threaded caller may use
 * (request threads share it with the registry's).
 */
static bw_err
tenancy_anonymous_report(struct tenancy *t, int list, char *err, size_t errlen)
{
	char found[256], hosts[TENANCY_ANON_HOSTS][256];
	int complete = 0;
	if (strcmp(t->cfg.db_driver, "mariadb") != 0)
		return BW_OK;
	/*
	 * The probe finds the account that takes our logins; the list (when
	 * readable) also those with a password, which shadow just the same.
	 */
	int probed = tenancy_anonymous_probe(t, found, sizeof(found));
	size_t n = list ? tenancy_anonymous_list(t, hosts, TENANCY_ANON_HOSTS, &complete) : 0;
	if (!probed && n == 0)
		return BW_OK;
	if (!probed)
		snprintf(found, sizeof(found), "%s", hosts[0]);
	if (n == 0) {
		snprintf(hosts[0], sizeof(hosts[0]), "%s", found);
		n = 1;
		complete = 0;
	}
	const char *tah = t->cfg.db_tenant_account_host;
	size_t o = (size_t)snprintf(
	    err, errlen,
	    "MariaDB has an anonymous account (''@'%s')%s: %s%s%s. As a MariaDB administrator run:",
	    found, probed ? " that takes every login from this host, whatever the user name" : "",
	    strcmp(found, tah) == 0 ? "a way in beside the tenant accounts ('bw_<slug>'@'"
				    : "it shadows the tenant accounts ('bw_<slug>'@'",
	    tah,
	    strcmp(found, tah) == 0 ? "') that Bulwark does not run with"
				    : "'), whose logins then fail with \"Access denied\"");
	for (size_t i = 0; i < n && o < errlen; i++)
		o += (size_t)snprintf(err + o, errlen - o, " DROP USER ''@'%s';", hosts[i]);
	if (o < errlen)
		snprintf(err + o, errlen - o,
			 "%s Or run mariadb-secure-installation, which removes every anonymous "
			 "account. Then try again.",
			 complete ? "" : " (and likewise for any other that SELECT User, Host FROM "
					 "mysql.user WHERE User = '' lists).");
	return BW_ERR_CONFIG;
}

bw_err
tenancy_check_anonymous(struct tenancy *t, char *err, size_t errlen)
{
	return tenancy_anonymous_report(t, 1, err, errlen);
}

bw_err
tenancy_connect_tenant(struct tenancy *t, const struct tenant *tn, int create, db **out,
		       char *err, size_t errlen)
{
	struct db_params p;
	char path[CONFIG_STR], pw[80];
	bw_err e;
	memset(&p, 0, sizeof(p));
	if (strcmp(t->cfg.db_driver, "mariadb") == 0) {
		if ((e = tenancy_tenant_password(t, tn, pw, sizeof(pw))) != BW_OK) {
			snprintf(err, errlen,
				 "tenant %s: its database password does not unwrap (missing master key, or "
				 "not yet stored: run 'bulwark migrate')",
				 tn->slug);
			return e;
		}
		p.driver = DB_MARIADB;
		p.host = t->cfg.db_host;
		p.port = (unsigned)t->cfg.db_port;
		p.socket = t->cfg.db_socket;
		p.user = tn->db_user;
		p.password = pw;
		p.database = tn->db_name;
		p.connect_timeout = (unsigned)t->cfg.db_connect_timeout;
	} else {
		snprintf(path, sizeof(path), "%.*s/%s", CONFIG_STR - 200, t->cfg.var_dir, tn->db_name);
		p.driver = DB_SQLITE;
		p.path = path;
		p.create = create;
	}
	e = db_open(&p, out, err, errlen);
	OPENSSL_cleanse(pw, sizeof(pw));
	/* Refused: say so plainly when an anonymous account is the reason. */
	if (e == BW_ERR_DENIED && p.driver == DB_MARIADB) {
		char why[1024];
		size_t l = strlen(err);
		if (tenancy_anonymous_report(t, 0, why, sizeof(why)) != BW_OK)
			snprintf(err, errlen, "%s", why);
		else if (l < errlen)
			/* One with a password is found only by whoever may read mysql.user. */
			snprintf(err + l, errlen - l,
				 " (if SELECT User, Host FROM mysql.user WHERE User = '' lists "
				 "anonymous accounts, they shadow the tenant accounts: drop them)");
	}
	return e;
}

bw_err
tenancy_migrate_tenant(struct tenancy *t, const struct tenant *tn, int *from, int *to, char *err,
		       size_t errlen)
{
	db *d = NULL;
	*from = *to = 0;
	bw_err e = tenancy_connect_tenant(t, tn, 0, &d, err, errlen);
	if (e != BW_OK)
		return e;
	e = migrate_run(d, &migrate_tenant, from, to, err, errlen);
	db_close(d);
	return e;
}

bw_err
tenancy_bump_registry(struct tenancy *t)
{
	return db_exec(t->control, "UPDATE registry_version SET version = version + 1 WHERE id = 1");
}

bw_err
tenancy_anchor_advance(db *ctl, int64_t tenant_id, const char *slug, int64_t seq, const char *mac)
{
	db_stmt *s;
	int row;
	int64_t now = (int64_t)time(NULL);
	bw_err e = db_prepare(ctl,
			      "UPDATE audit_anchors SET seq = ?, mac = ?, verified_at = ? WHERE"
			      " tenant_id = ? AND seq < ?",
			      &s);
	if (e != BW_OK)
		return e;
	if ((e = db_bind_int(s, 1, seq)) == BW_OK && (e = db_bind_text(s, 2, mac)) == BW_OK &&
	    (e = db_bind_int(s, 3, now)) == BW_OK && (e = db_bind_int(s, 4, tenant_id)) == BW_OK &&
	    (e = db_bind_int(s, 5, seq)) == BW_OK)
		e = db_step(s, &row);
	int64_t changed = e == BW_OK ? db_changes(s) : 0;
	db_finalize(s);
	if (e != BW_OK || changed > 0)
		return e;
	/* No anchor yet (or one at or past seq: then the insert conflicts, and that is fine). */
	if ((e = db_prepare(ctl,
			    "INSERT INTO audit_anchors (tenant_id, tenant_slug, seq, mac, verified_at)"
			    " VALUES (?, ?, ?, ?, ?)",
			    &s)) != BW_OK)
		return e;
	if ((e = db_bind_int(s, 1, tenant_id)) == BW_OK && (e = db_bind_text(s, 2, slug)) == BW_OK &&
	    (e = db_bind_int(s, 3, seq)) == BW_OK && (e = db_bind_text(s, 4, mac)) == BW_OK &&
	    (e = db_bind_int(s, 5, now)) == BW_OK)
		e = db_step(s, &row);
	db_finalize(s);
	return e == BW_ERR_CONFLICT ? BW_OK : e;
}
