/*
 * Tenant states and provisioning (names and hosts are in host.c).
 * Provisioning is all or nothing: every resource it makes is recorded as
 * made, and a failure at any step removes exactly those, in reverse order,
 * so no orphan database, file or account is left and nothing that existed
 * before is touched.
 */
#include "tenancy.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../db/migrate.h"

static const char *const tenant_states[] = {
	[TENANT_PROVISIONING] = "provisioning",
	[TENANT_ACTIVE] = "active",
	[TENANT_SUSPENDED] = "suspended",
	[TENANT_DELETING] = "deleting",
};

const char *
tenant_state_name(enum tenant_state s)
{
	return (unsigned)s < BW_ARRAY_LEN(tenant_states) ? tenant_states[s] : "unknown";
}

bw_err
tenant_state_parse(const char *s, enum tenant_state *out)
{
	for (size_t i = 0; i < BW_ARRAY_LEN(tenant_states); i++) {
		if (strcmp(s, tenant_states[i]) == 0) {
			*out = (enum tenant_state)i;
			return BW_OK;
		}
	}
	return BW_ERR_INVALID;
}

/* A one-time password: 20 characters from a 32-letter alphabet, in groups. */
static bw_err
tenant_gen_password(char *out, size_t outlen)
{
	static const char alpha[] = "abcdefghjkmnpqrstuvwxyz23456789"; /* 31: use rejection */
	unsigned char r[64];
	size_t o = 0, got = 0;
	if (outlen < 25)
		return BW_ERR_INVALID;
	while (got < 20) {
		if (util_random(r, sizeof(r)) != BW_OK)
			return BW_ERR_IO;
		for (size_t i = 0; i < sizeof(r) && got < 20; i++) {
			unsigned v = r[i] & 31;
			if (v >= sizeof(alpha) - 1)
				continue; /* rejection keeps every letter equally likely */
			if (got > 0 && got % 5 == 0)
				out[o++] = '-';
			out[o++] = alpha[v];
			got++;
		}
	}
	out[o] = '\0';
	OPENSSL_cleanse(r, sizeof(r));
	return BW_OK;
}

/* Identifiers that go into SQL text: validated here again, at the point of use. */
static int
tenant_sql_safe(const char *s, const char *extra)
{
	if (*s == '\0')
		return 0;
	for (; *s; s++) {
		char c = *s;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || strchr(extra, c) != NULL))
			return 0;
	}
	return 1;
}

static int64_t
tenant_now(void)
{
	return (int64_t)time(NULL);
}

static int
tenant_is_mariadb(struct tenancy *t)
{
	return strcmp(tenancy_config(t)->db_driver, "mariadb") == 0;
}

/* What provisioning has made so far, to undo exactly that. */
struct prov {
	int row, file, database, account, keys;
	char path[CONFIG_STR];
};

static bw_err
tenant_sql(db *d, const char *sql, char *err, size_t errlen, const char *what)
{
	bw_err e = db_exec(d, sql);
	if (e != BW_OK)
		snprintf(err, errlen, "%s: %s", what, db_errmsg(d));
	return e;
}

static void
tenant_undo(struct tenancy *t, const struct tenant *tn, const struct prov *p)
{
	db *c = tenancy_control(t);
	char sql[1024];
	const char *host = tenancy_config(t)->db_tenant_account_host;
	if (p->account) {
		snprintf(sql, sizeof(sql), "DROP USER IF EXISTS '%s'@'%s'", tn->db_user, host);
		if (db_exec(c, sql) != BW_OK)
			log_error("undo: cannot drop account %s: %s", tn->db_user, db_errmsg(c));
	}
	if (p->database) {
		snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS `%s`", tn->db_name);
		if (db_exec(c, sql) != BW_OK)
			log_error("undo: cannot drop database %s: %s", tn->db_name, db_errmsg(c));
	}
	if (p->file) {
		static const char *const sfx[] = {"", "-wal", "-shm", "-journal"};
		for (size_t i = 0; i < BW_ARRAY_LEN(sfx); i++) {
			char f[CONFIG_STR + 16];
			snprintf(f, sizeof(f), "%s%s", p->path, sfx[i]);
			if (unlink(f) != 0 && errno != ENOENT)
				log_error("undo: cannot remove %s: %s", f, strerror(errno));
		}
	}
	if (p->keys && keys_tenant_destroy(t, tn->slug) != BW_OK)
		log_error("undo: cannot destroy the data keys of %s: %s", tn->slug, db_errmsg(c));
	if (p->row) {
		if (DB_RUN(c, "DELETE FROM tenants WHERE slug = ?", DB_TEXT(tn->slug)) != BW_OK)
			log_error("undo: cannot remove registry row of %s: %s", tn->slug, db_errmsg(c));
		/* Its storage counts go with it: a tenant made later under the name starts at 0. */
		if (DB_RUN(c, "DELETE FROM storage_usage WHERE tenant_slug = ?", DB_TEXT(tn->slug)) !=
			BW_OK ||
		    DB_RUN(c, "DELETE FROM storage_reservations WHERE tenant_slug = ?",
			   DB_TEXT(tn->slug)) != BW_OK)
			log_error("undo: cannot remove the storage counts of %s: %s", tn->slug,
				  db_errmsg(c));
	}
}

/* Make the tenant's own database (and account); records what it made in p. */
static bw_err
tenant_make_storage(struct tenancy *t, struct tenant *tn, struct prov *p, char *err,
		    size_t errlen)
{
	const struct config *cfg = tenancy_config(t);
	db *c = tenancy_control(t);
	char sql[1024], pw[80];
	bw_err e;

	if (!tenant_is_mariadb(t)) {
		struct stat st;
		snprintf(p->path, sizeof(p->path), "%.*s/%s", CONFIG_STR - 200, cfg->var_dir,
			 tn->db_name);
		if (stat(p->path, &st) == 0) {
			snprintf(err, errlen, "%s already exists; remove it or choose another slug",
				 p->path);
			return BW_ERR_CONFLICT;
		}
		p->file = 1; /* from here on the file may exist and is ours */
		return BW_OK;
	}
	if (!tenant_sql_safe(tn->db_name, "-") || !tenant_sql_safe(tn->db_user, "-") ||
	    !tenant_sql_safe(cfg->db_tenant_account_host, ".%:-")) {
		snprintf(err, errlen, "refusing unsafe database name, account or host");
		return BW_ERR_INVALID;
	}
	snprintf(sql, sizeof(sql),
		 "CREATE DATABASE `%s` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin", tn->db_name);
	if ((e = tenant_sql(c, sql, err, errlen, "creating database")) != BW_OK)
		return e == BW_ERR_DB ? BW_ERR_CONFLICT : e;
	p->database = 1;
	if ((e = tenancy_tenant_new_password(t, tn, 1, pw, sizeof(pw), err, errlen)) != BW_OK)
		return e;
	snprintf(sql, sizeof(sql), "CREATE USER '%s'@'%s' IDENTIFIED BY '%s'", tn->db_user,
		 cfg->db_tenant_account_host, pw);
	OPENSSL_cleanse(pw, sizeof(pw));
	e = db_exec(c, sql);
	OPENSSL_cleanse(sql, sizeof(sql));
	if (e != BW_OK) {
		snprintf(err, errlen, "creating account %s: %s", tn->db_user, db_errmsg(c));
		return e;
	}
	p->account = 1;
	/* Only its own database; no GRANT OPTION, no global privileges. */
	snprintf(sql, sizeof(sql),
		 "GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER, INDEX, DROP, REFERENCES, "
		 "CREATE TEMPORARY TABLES, LOCK TABLES ON `%s`.* TO '%s'@'%s'",
		 tn->db_name, tn->db_user, cfg->db_tenant_account_host);
	return tenant_sql(c, sql, err, errlen, "granting the account its database");
}

static bw_err
tenant_insert_admin(db *d, const struct email_addr *email, const char *password, int must_change,
		    char *err, size_t errlen)
{
	char hash[crypto_pwhash_STRBYTES];
	db_stmt *s = NULL;
	int row;
	bw_err e;
	if (sodium_init() < 0) {
		snprintf(err, errlen, "libsodium failed to initialise");
		return BW_ERR_CRYPTO;
	}
	/* argon2id, OWASP's m=19 MiB, t=2, p=1. */
	if (crypto_pwhash_str_alg(hash, password, strlen(password), 2, 19u * 1024u * 1024u,
				  crypto_pwhash_ALG_ARGON2ID13) != 0) {
		snprintf(err, errlen, "hashing the admin password failed (out of memory?)");
		return BW_ERR_NOMEM;
	}
	e = db_prepare(d,
		       "INSERT INTO users (email, email_norm, email_skel, password_hash,"
		       " must_change_password, is_admin, created_at, updated_at)"
		       " VALUES (?, ?, ?, ?, ?, 1, ?, ?)",
		       &s);
	if (e == BW_OK && (e = db_bind_text(s, 1, email->display)) == BW_OK &&
	    (e = db_bind_text(s, 2, email->key)) == BW_OK &&
	    (e = db_bind_text(s, 3, email->skel)) == BW_OK && (e = db_bind_text(s, 4, hash)) == BW_OK &&
	    (e = db_bind_int(s, 5, must_change)) == BW_OK &&
	    (e = db_bind_int(s, 6, tenant_now())) == BW_OK &&
	    (e = db_bind_int(s, 7, tenant_now())) == BW_OK)
		e = db_step(s, &row);
	db_finalize(s);
	s = NULL;
	/* The first user holds the built-in admin role. */
	if (e == BW_OK)
		e = db_prepare(d,
			       "INSERT INTO user_roles (user_id, role_id) SELECT u.id, r.id FROM users u"
			       " JOIN roles r ON r.builtin = 'admin' WHERE u.email_norm = ?",
			       &s);
	if (e == BW_OK && (e = db_bind_text(s, 1, email->key)) == BW_OK)
		e = db_step(s, &row);
	if (e != BW_OK)
		snprintf(err, errlen, "creating the admin user: %s", db_errmsg(d));
	db_finalize(s);
	OPENSSL_cleanse(hash, sizeof(hash));
	return e;
}

bw_err
tenant_create(struct tenancy *t, const char *slug, const char *email, const char *password,
	      const char *plan, char *otp, size_t otplen, char *err, size_t errlen)
{
	struct tenant tn;
	struct prov p;
	db *c = tenancy_control(t), *td = NULL;
	db_stmt *s = NULL;
	const char *why;
	int row, from, to;
	int64_t plan_id = 0;
	bw_err e;

	memset(&tn, 0, sizeof(tn));
	memset(&p, 0, sizeof(p));
	if (tenant_slug_check(slug, &why) != BW_OK) {
		snprintf(err, errlen, "tenant name '%s' %s", slug, why);
		return BW_ERR_INVALID;
	}
	/* A new tenant allows no internationalised domain yet (ADR 0012). */
	struct email_addr addr;
	if (email_normalize(email, 0, &addr, &why) != BW_OK) {
		snprintf(err, errlen, "'%s' is not a usable e-mail address: the address %s",
			 email ? email : "", why);
		return BW_ERR_INVALID;
	}
	if (password != NULL && (strlen(password) < 12 || strlen(password) > 1024)) {
		snprintf(err, errlen, "the admin password must be 12 to 1024 characters");
		return BW_ERR_INVALID;
	}
	/* Before anything is made: an anonymous account would refuse the new account's logins. */
	if ((e = tenancy_check_anonymous(t, err, errlen)) != BW_OK)
		return e;
	snprintf(tn.slug, sizeof(tn.slug), "%s", slug);
	if (tenant_is_mariadb(t)) {
		snprintf(tn.db_name, sizeof(tn.db_name), "saas_tenant_%s", slug);
		snprintf(tn.db_user, sizeof(tn.db_user), "bw_%s", slug);
	} else {
		snprintf(tn.db_name, sizeof(tn.db_name), "tenants/%s.db", slug);
	}

	/* 1. the plan */
	if ((e = db_prepare(c, "SELECT id FROM plans WHERE name = ?", &s)) == BW_OK &&
	    (e = db_bind_text(s, 1, plan ? plan : "standard")) == BW_OK &&
	    (e = db_step(s, &row)) == BW_OK && row)
		plan_id = db_col_int(s, 0);
	db_finalize(s);
	s = NULL;
	if (e != BW_OK || plan_id == 0) {
		snprintf(err, errlen, e != BW_OK ? "reading plans: %s" : "unknown plan '%s'",
			 e != BW_OK ? db_errmsg(c) : (plan ? plan : "standard"));
		return e != BW_OK ? e : BW_ERR_INVALID;
	}

	/* 2. the registry row, not yet visible to servers (provisioning) */
	e = db_prepare(c,
		       "INSERT INTO tenants (slug, state, plan_id, db_server, db_name, db_user,"
		       " created_at, updated_at) VALUES (?, 'provisioning', ?, '', ?, ?, ?, ?)",
		       &s);
	if (e == BW_OK && (e = db_bind_text(s, 1, slug)) == BW_OK &&
	    (e = db_bind_int(s, 2, plan_id)) == BW_OK && (e = db_bind_text(s, 3, tn.db_name)) == BW_OK &&
	    (e = db_bind_text(s, 4, tn.db_user)) == BW_OK &&
	    (e = db_bind_int(s, 5, tenant_now())) == BW_OK &&
	    (e = db_bind_int(s, 6, tenant_now())) == BW_OK)
		e = db_step(s, &row);
	tn.id = e == BW_OK ? db_last_id(s) : 0;
	db_finalize(s);
	if (e == BW_ERR_CONFLICT) {
		snprintf(err, errlen, "tenant '%s' already exists", slug);
		return e;
	}
	if (e != BW_OK) {
		snprintf(err, errlen, "registering the tenant: %s", db_errmsg(c));
		return e;
	}
	p.row = 1;

	/* 3. its own database (and account) */
	if ((e = tenant_make_storage(t, &tn, &p, err, errlen)) != BW_OK)
		goto undo;
	/* 4. connect as the tenant, build the schema, add the admin */
	if ((e = tenancy_connect_tenant(t, &tn, 1, &td, err, errlen)) != BW_OK)
		goto undo;
	if ((e = migrate_run(td, &migrate_tenant, &from, &to, err, errlen)) != BW_OK)
		goto undo;
	char gen[32];
	int generated = password == NULL;
	if (generated) {
		if ((e = tenant_gen_password(gen, sizeof(gen))) != BW_OK) {
			snprintf(err, errlen, "generating the admin password failed");
			goto undo;
		}
		password = gen;
	}
	e = tenant_insert_admin(td, &addr, password, generated, err, errlen);
	if (e == BW_OK && generated)
		snprintf(otp, otplen, "%s", gen);
	OPENSSL_cleanse(gen, sizeof(gen));
	if (e != BW_OK)
		goto undo;
	db_close(td);
	td = NULL;

	/* 5. its data key, then visible */
	uint32_t kid;
	p.keys = 1;
	if ((e = keys_tenant_new(t, slug, 0, &kid, err, errlen)) != BW_OK)
		goto undo;
	if ((e = DB_RUN(c,
			"UPDATE tenants SET state = 'active' WHERE slug = ? AND state = 'provisioning'",
			DB_TEXT(slug))) != BW_OK ||
	    (e = tenancy_bump_registry(t)) != BW_OK) {
		snprintf(err, errlen, "activating the tenant: %s", db_errmsg(c));
		goto undo;
	}
	return BW_OK;
undo:
	db_close(td);
	tenant_undo(t, &tn, &p);
	if (otp != NULL && otplen > 0)
		OPENSSL_cleanse(otp, otplen);
	return e;
}

static bw_err
tenant_get(struct tenancy *t, const char *slug, struct tenant *out)
{
	db *c = tenancy_control(t);
	db_stmt *s;
	int row = 0;
	bw_err e = db_prepare(c, "SELECT id, state, db_name, db_user FROM tenants WHERE slug = ?", &s);
	if (e == BW_OK && (e = db_bind_text(s, 1, slug)) == BW_OK && (e = db_step(s, &row)) == BW_OK &&
	    row) {
		memset(out, 0, sizeof(*out));
		out->id = db_col_int(s, 0);
		snprintf(out->slug, sizeof(out->slug), "%s", slug);
		if (tenant_state_parse(db_col_text(s, 1), &out->state) != BW_OK)
			e = BW_ERR_DB;
		snprintf(out->db_name, sizeof(out->db_name), "%s", db_col_text(s, 2));
		snprintf(out->db_user, sizeof(out->db_user), "%s", db_col_text(s, 3));
	}
	db_finalize(s);
	return e != BW_OK ? e : (row ? BW_OK : BW_ERR_NOTFOUND);
}

bw_err
tenant_delete(struct tenancy *t, const char *slug, char *err, size_t errlen)
{
	struct tenant tn;
	struct prov p;
	db *c = tenancy_control(t);
	const char *why;
	bw_err e;

	if (tenant_slug_check(slug, &why) != BW_OK) {
		snprintf(err, errlen, "tenant name '%s' %s", slug, why);
		return BW_ERR_INVALID;
	}
	if ((e = tenant_get(t, slug, &tn)) != BW_OK) {
		snprintf(err, errlen, e == BW_ERR_NOTFOUND ? "no tenant '%s'" : "reading tenant '%s'",
			 slug);
		return e;
	}
	/* Stop serving it first, everywhere, then destroy. */
	if ((e = DB_RUN(c, "UPDATE tenants SET state = 'deleting' WHERE slug = ?", DB_TEXT(slug))) !=
		BW_OK ||
	    (e = tenancy_bump_registry(t)) != BW_OK) {
		snprintf(err, errlen, "marking tenant '%s' for deletion: %s", slug, db_errmsg(c));
		return e;
	}
	memset(&p, 0, sizeof(p));
	p.row = 1;
	p.keys = 1; /* crypto-shredding: without its keys, no copy of its data opens */
	if (tenant_is_mariadb(t)) {
		p.database = p.account = tenant_sql_safe(tn.db_name, "-") && tenant_sql_safe(tn.db_user, "-");
	} else {
		snprintf(p.path, sizeof(p.path), "%.*s/%s", CONFIG_STR - 200, tenancy_config(t)->var_dir,
			 tn.db_name);
		p.file = 1;
	}
	tenant_undo(t, &tn, &p);
	if ((e = tenant_get(t, slug, &tn)) != BW_ERR_NOTFOUND) {
		snprintf(err, errlen, "tenant '%s' was not fully removed; run delete again", slug);
		return BW_ERR_DB;
	}
	if ((e = tenancy_bump_registry(t)) != BW_OK) {
		snprintf(err, errlen, "registry: %s", db_errmsg(c));
		return e;
	}
	return BW_OK;
}

bw_err
tenant_set_state(struct tenancy *t, const char *slug, enum tenant_state to, char *err,
		 size_t errlen)
{
	db *c = tenancy_control(t);
	db_stmt *s;
	int row;
	if (to != TENANT_ACTIVE && to != TENANT_SUSPENDED)
		return BW_ERR_INVALID;
	bw_err e = db_prepare(c,
			      "UPDATE tenants SET state = ?, updated_at = ? WHERE slug = ? AND"
			      " state IN ('active', 'suspended')",
			      &s);
	if (e == BW_OK && (e = db_bind_text(s, 1, tenant_state_name(to))) == BW_OK &&
	    (e = db_bind_int(s, 2, tenant_now())) == BW_OK && (e = db_bind_text(s, 3, slug)) == BW_OK)
		e = db_step(s, &row);
	int64_t changed = e == BW_OK ? db_changes(s) : 0;
	db_finalize(s);
	if (e != BW_OK) {
		snprintf(err, errlen, "updating tenant '%s': %s", slug, db_errmsg(c));
		return e;
	}
	if (changed == 0) {
		snprintf(err, errlen, "no active or suspended tenant '%s'", slug);
		return BW_ERR_NOTFOUND;
	}
	if ((e = tenancy_bump_registry(t)) != BW_OK)
		snprintf(err, errlen, "registry: %s", db_errmsg(c));
	return e;
}

bw_err
tenant_list(struct tenancy *t, struct tenant **out, size_t *n, char *err, size_t errlen)
{
	db *c = tenancy_control(t);
	db_stmt *s;
	int row;
	size_t cnt = 0;
	struct buf b;
	struct tenant tn;
	*out = NULL;
	*n = 0;
	buf_init(&b, TENANT_LIST_MAX * sizeof(tn));
	bw_err e = db_prepare(c,
			      "SELECT t.id, t.slug, t.state, p.name, t.db_name, t.db_user, t.created_at,"
			      " t.active_key_id, t.db_secret, t.db_secret_master"
			      " FROM tenants t JOIN plans p ON p.id = t.plan_id ORDER BY t.slug",
			      &s);
	while (e == BW_OK && (e = db_step(s, &row)) == BW_OK && row) {
		memset(&tn, 0, sizeof(tn));
		tn.id = db_col_int(s, 0);
		snprintf(tn.slug, sizeof(tn.slug), "%s", db_col_text(s, 1));
		if (tenant_state_parse(db_col_text(s, 2), &tn.state) != BW_OK)
			tn.state = TENANT_PROVISIONING;
		snprintf(tn.plan, sizeof(tn.plan), "%s", db_col_text(s, 3));
		snprintf(tn.db_name, sizeof(tn.db_name), "%s", db_col_text(s, 4));
		snprintf(tn.db_user, sizeof(tn.db_user), "%s", db_col_text(s, 5));
		tn.created_at = db_col_int(s, 6);
		tn.active_key_id = (uint32_t)db_col_int(s, 7);
		size_t wl = 0;
		const void *w = db_col_blob(s, 8, &wl);
		if (w != NULL && wl <= sizeof(tn.db_secret)) {
			memcpy(tn.db_secret, w, wl);
			tn.db_secret_len = wl;
		}
		tn.db_secret_master = (uint32_t)db_col_int(s, 9);
		if ((e = buf_append(&b, &tn, sizeof(tn))) != BW_OK)
			break;
		cnt++;
	}
	db_finalize(s);
	if (e != BW_OK) {
		buf_free(&b);
		if (cnt == TENANT_LIST_MAX)
			snprintf(err, errlen, "listing tenants: more than %d", TENANT_LIST_MAX);
		else
			snprintf(err, errlen, "listing tenants: %s", db_errmsg(c));
		return e;
	}
	/* None is NULL, as before (the registry reloads until there is one). */
	if (cnt > 0) {
		char *p;
		if ((e = buf_take(&b, &p, NULL)) != BW_OK)
			return e;
		*out = (struct tenant *)(void *)p;
	}
	*n = cnt;
	return BW_OK;
}
