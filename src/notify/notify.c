/* The outbox of a tenant's e-mail and the job that sends it (notify.h). */
#include "notify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../audit/audit.h"
#include "../crypto/crypto.h"
#include "../db/db.h"
#include "../events/events.h"
#include "../mail/mail.h"
#include "../modules/desc.h"
#include "../modules/module.h"
#include "../rbac/rbac.h"
#include "../tenancy/tenancy.h"
#include "../webhooks/egress.h"

#define NOTIFY_MAX_ATTEMPTS 8
#define NOTIFY_MESSAGE_MAX (1024 * 1024) /* bytes of a queued message's JSON */

/* Seconds before attempts 2..8: 30 s, 2 min, 10 min, 30 min, 1 h, 2 h, 4 h (about 8 h in all). */
static const int notify_backoff[] = {30, 120, 600, 1800, 3600, 7200, 14400};
static int notify_test_backoff[1];

/* The host's server ([mail]), set once at start-up. */
static struct {
	char host[256];
	long port;
	int security;
	char username[256];
	char *password; /* from smtp_password_file, or NULL */
	char from[256];
	char ca_file[CONFIG_STR];
	long connect_timeout_ms, timeout_ms;
	int test_retry;
	int allow_loopback; /* tests: tenants' own servers on loopback */
} notify_host = {.port = 587, .security = MAIL_TLS_STARTTLS, .connect_timeout_ms = 10000,
		 .timeout_ms = 60000};

static int
notify_security(const char *s)
{
	if (strcmp(s, "tls") == 0)
		return MAIL_TLS_IMPLICIT;
	if (strcmp(s, "none") == 0)
		return MAIL_TLS_NONE;
	return MAIL_TLS_STARTTLS;
}

bw_err
notify_configure(const struct config *cfg)
{
	snprintf(notify_host.host, sizeof(notify_host.host), "%s", cfg->mail_smtp_host);
	notify_host.port = cfg->mail_smtp_port;
	notify_host.security = notify_security(cfg->mail_smtp_security);
	snprintf(notify_host.username, sizeof(notify_host.username), "%s", cfg->mail_smtp_username);
	if (cfg->mail_from[0] != '\0')
		snprintf(notify_host.from, sizeof(notify_host.from), "%s", cfg->mail_from);
	else
		snprintf(notify_host.from, sizeof(notify_host.from), "no-reply@%.240s", cfg->base_domain);
	snprintf(notify_host.ca_file, sizeof(notify_host.ca_file), "%s", cfg->mail_ca_file);
	notify_host.connect_timeout_ms = cfg->mail_connect_timeout_ms;
	notify_host.timeout_ms = cfg->mail_timeout_ms;
	notify_host.test_retry = (int)cfg->mail_test_retry_seconds;
	notify_host.allow_loopback = cfg->mail_test_allow_loopback != 0;
	notify_test_backoff[0] = notify_host.test_retry > 0 ? notify_host.test_retry : 1;
	if (notify_host.password != NULL) {
		crypto_wipe(notify_host.password, strlen(notify_host.password));
		free(notify_host.password);
		notify_host.password = NULL;
	}
	if (cfg->mail_smtp_password_file[0] == '\0')
		return BW_OK;
	FILE *f = fopen(cfg->mail_smtp_password_file, "r");
	if (f == NULL) {
		log_error("[mail] smtp_password_file %s cannot be read", cfg->mail_smtp_password_file);
		return BW_ERR_INVALID;
	}
	char buf[1024];
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	notify_host.password = n > 0 ? strdup(buf) : NULL;
	crypto_wipe(buf, sizeof(buf));
	if (n > 0 && notify_host.password == NULL)
		return BW_ERR_NOMEM;
	return BW_OK;
}

const char *
notify_host_from(void)
{
	return notify_host.from;
}

/* --- queueing ------------------------------------------------------------------ */

char *
notify_html_escape(struct op *op, const char *s)
{
	size_t n = 0;
	for (const char *p = s; *p; p++)
		n += *p == '&' ? 5 : *p == '<' || *p == '>' ? 4 : *p == '"' || *p == '\'' ? 6 : 1;
	char *out = pool_alloc(op->pool, n + 1), *o = out;
	if (out == NULL)
		return NULL;
	for (const char *p = s; *p; p++) {
		const char *rep = *p == '&'    ? "&amp;"
				  : *p == '<'  ? "&lt;"
				  : *p == '>'  ? "&gt;"
				  : *p == '"'  ? "&quot;"
				  : *p == '\'' ? "&#39;"
					       : NULL;
		if (rep != NULL) {
			size_t k = strlen(rep);
			memcpy(o, rep, k);
			o += k;
		} else {
			*o++ = *p;
		}
	}
	*o = '\0';
	return out;
}

bw_err
notify_mail(struct op *op, const struct notify_mail *m, int64_t *id)
{
	struct email_addr addr;
	const char *why;
	int64_t row = 0, now = (int64_t)time(NULL);
	unsigned char *sealed = NULL;
	size_t slen = 0;
	char *text = NULL;
	if (id != NULL)
		*id = 0;
	if (m->to == NULL || email_normalize(m->to, EMAIL_ALLOW_IDN, &addr, &why) != BW_OK)
		return op_fail(op, BW_ERR_INVALID, "the recipient is not an e-mail address");
	json_t *msg = json_pack("{s:s, s:s?, s:s, s:s, s:s?, s:s?}", "to", addr.display, "to_name",
				m->to_name, "subject", m->subject, "text", m->text, "html", m->html,
				"auto_submitted", m->auto_submitted);
	bw_err e = BW_ERR_NOMEM;
	if (msg == NULL || (text = json_dumps(msg, JSON_COMPACT)) == NULL)
		goto out;
	if (strlen(text) > NOTIFY_MESSAGE_MAX) {
		e = op_fail(op, BW_ERR_INVALID, "the message is too large to send");
		goto out;
	}
	/* The row first (its id is in what the seal binds), then its message and its job. */
	db *d;
	if ((e = op_db(op, &d)) != BW_OK ||
	    (e = DB_INSERT(d, &row,
			   "INSERT INTO mail_outbox (kind, user_id, state, attempts, message_id,"
			   " last_reply, created_at, sent_at, ticket_id)"
			   " VALUES (?, ?, 'queued', 0, '', '', ?, 0, ?)",
			   DB_TEXT(m->kind), DB_INT(m->user_id), DB_INT(now),
			   DB_INT(m->ticket_id))) != BW_OK ||
	    (e = field_seal(op->ten, &op->tn, "mail_outbox", "message", row, text, strlen(text),
			    &sealed, &slen)) != BW_OK ||
	    (e = DB_RUN(d, "UPDATE mail_outbox SET message = ? WHERE id = ?",
			DB_BLOB(sealed, slen), DB_INT(row))) != BW_OK)
		goto out;
	json_t *payload = json_pack("{s:I}", "mail", (json_int_t)row);
	e = payload != NULL ? job_enqueue(op, NOTIFY_JOB_SEND, NOTIFY_MAX_ATTEMPTS, NULL, payload, 0,
					  NULL)
			    : BW_ERR_NOMEM;
	json_decref(payload);
	if (e == BW_OK && id != NULL)
		*id = row;
out:
	if (text != NULL) {
		crypto_wipe(text, strlen(text));
		free(text);
	}
	free(sealed);
	json_decref(msg);
	return e;
}

bw_err
notify_notice(struct op *op, const char *kind, int64_t user_id, const char *to,
	      const char *subject, const char *para1, const char *para2)
{
	if (para1 == NULL || para2 == NULL)
		return BW_ERR_NOMEM; /* a pool_printf that failed */
	char *a = notify_html_escape(op, para1), *b = notify_html_escape(op, para2);
	const char *text = pool_printf(op->pool, "%s\n\n%s\n", para1, para2);
	const char *html = a != NULL && b != NULL
			       ? pool_printf(op->pool,
					     "<!DOCTYPE html><html><body><p>%s</p><p>%s</p>"
					     "<p style=\"color:#666\">Bulwark</p></body></html>",
					     a, b)
			       : NULL;
	if (text == NULL || html == NULL)
		return BW_ERR_NOMEM;
	struct notify_mail m = {.kind = kind, .user_id = user_id, .to = to, .subject = subject,
				.text = text, .html = html, .auto_submitted = "auto-generated"};
	bw_err e = notify_mail(op, &m, NULL);
	/* Pool memory lives on with the operation: what may be a link goes now. */
	crypto_wipe((char *)text, strlen(text));
	crypto_wipe((char *)html, strlen(html));
	return e;
}

static bw_err
notify_open_col(struct op *op, db_stmt *st, int col, const char *name, char **out)
{
	size_t n = 0, len = 0;
	const void *p = db_col_blob(st, col, &n);
	*out = NULL;
	if (p == NULL || n == 0)
		return BW_OK;
	return field_open(op->ten, op->tn.slug, "mail_settings", name, 1, p, n, out, &len);
}

/* --- the tenant's settings ------------------------------------------------------ */

#define NOTIFY_SETTINGS_NAME_MAX 200

int
notify_hostname_ok(const char *h)
{
	size_t n = h != NULL ? strlen(h) : 0;
	if (n == 0 || n > 253 || h[0] == '.' || h[0] == '-' || h[n - 1] == '.')
		return 0;
	struct netaddr a;
	if (strchr(h, ':') != NULL)
		return netaddr_parse(h, &a) == BW_OK; /* an IPv6 address, nothing else with a colon */
	return strspn(h, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") == n;
}

int
notify_plain_ok(const char *v, size_t max)
{
	if (v == NULL || strlen(v) > max)
		return 0;
	for (const unsigned char *p = (const unsigned char *)v; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return 0;
	return 1;
}

/* The settings as stored (row 1), with whether a password and a DKIM key are there. */
struct notify_stored {
	json_t *settings; /* owned */
	int has_password, has_key;
	char *dkim_key;   /* opened only when asked, owned */
};

static bw_err
notify_stored_read(struct op *op, int open_key, struct notify_stored *st)
{
	db *d;
	db_stmt *s = NULL;
	int row = 0;
	memset(st, 0, sizeof(*st));
	bw_err e = op_db(op, &d);
	if (e == BW_OK)
		e = db_prepare(d,
			       "SELECT settings, smtp_password IS NOT NULL, dkim_key FROM mail_settings"
			       " WHERE id = 1",
			       &s);
	if (e == BW_OK && (e = db_step(s, &row)) == BW_OK && row) {
		st->settings = json_loads(db_col_text(s, 0) ? db_col_text(s, 0) : "{}", 0, NULL);
		st->has_password = db_col_int(s, 1) != 0;
		size_t n = 0;
		st->has_key = db_col_blob(s, 2, &n) != NULL && n > 0;
		if (open_key && st->has_key)
			e = notify_open_col(op, s, 2, "dkim_key", &st->dkim_key);
	}
	db_finalize(s);
	if (e == BW_OK && st->settings == NULL)
		st->settings = json_object();
	if (e == BW_OK && st->settings == NULL)
		e = BW_ERR_NOMEM;
	return e;
}

static void
notify_stored_clear(struct notify_stored *st)
{
	json_decref(st->settings);
	if (st->dkim_key != NULL) {
		crypto_wipe(st->dkim_key, strlen(st->dkim_key));
		free(st->dkim_key);
	}
	memset(st, 0, sizeof(*st));
}

/* What GET shows: never the password or the key, but the DNS record to publish. */
static bw_err
notify_settings_json(struct op *op, const struct notify_stored *st, json_t **out)
{
	json_t *o = json_deep_copy(st->settings), *smtp, *dkim;
	if (o == NULL)
		return BW_ERR_NOMEM;
	if ((smtp = json_object_get(o, "smtp")) != NULL)
		json_object_set_new(smtp, "password_set", json_boolean(st->has_password));
	else
		json_object_set_new(o, "smtp", json_null());
	if ((dkim = json_object_get(o, "dkim")) != NULL) {
		char *txt = NULL;
		if (st->dkim_key != NULL && mail_dkim_record(st->dkim_key, &txt) == BW_OK) {
			json_object_set_new(
			    dkim, "dns_name",
			    json_string(pool_printf(op->pool, "%s._domainkey.%s",
						    json_string_value(json_object_get(dkim, "selector")),
						    json_string_value(json_object_get(dkim, "domain")))));
			json_object_set_new(dkim, "dns_txt", json_string(txt));
		}
		free(txt);
	} else {
		json_object_set_new(o, "dkim", json_null());
	}
	if (json_object_get(o, "from") == NULL)
		json_object_set_new(o, "from", json_null());
	json_object_set_new(o, "host_server", json_pack("{s:s?, s:s}", "host",
							 notify_host.host[0] ? notify_host.host : NULL,
							 "from", notify_host.from));
	*out = o;
	return BW_OK;
}

bw_err
notify_settings_get(struct op *op, json_t **out)
{
	struct notify_stored st;
	*out = NULL;
	bw_err e = notify_stored_read(op, 1, &st);
	if (e == BW_OK)
		e = notify_settings_json(op, &st, out);
	notify_stored_clear(&st);
	return e;
}

/* A PUT, checked and ready to write. */
struct notify_put {
	json_t *settings;     /* the new settings (owned) */
	int password_change;  /* 0: keep; 1: set password (NULL: remove) */
	const char *password; /* borrowed from the body */
	int key_change;       /* 0: keep; 1: set key (NULL: remove) */
	char *key;            /* a new DKIM key (owned) */
	json_t *audit_before, *audit_after; /* owned */
};

static bw_err
notify_put_check(struct op *op, json_t *in, const struct notify_stored *st, struct notify_put *p)
{
	static const char *const known[] = {"from", "from_name", "reply_to", "smtp", "dkim", NULL};
	static const char *const smtp_known[] = {"host", "port", "security", "username", "password",
						 NULL};
	static const char *const dkim_known[] = {"domain", "selector", "new_key", NULL};
	struct email_addr addr;
	const char *why;
	json_t *v;
	bw_err e = op_known_fields(op, in, known);
	if (e != BW_OK)
		return e;
	/*
	 * Whoever chooses the mail server reads every reset link it carries (an
	 * admin's too): only someone who could grant every permission may.
	 */
	e = rbac_may_grant_all(op, "the mail settings decide where reset links go: only someone "
				   "who holds every permission (\"*\") may change them");
	if (e != BW_OK)
		return e;
	if ((p->settings = json_deep_copy(st->settings)) == NULL)
		return BW_ERR_NOMEM;
	const char *addrs[] = {"from", "reply_to"};
	for (size_t i = 0; i < 2; i++) {
		if ((v = json_object_get(in, addrs[i])) == NULL)
			continue;
		if (json_is_null(v)) {
			json_object_del(p->settings, addrs[i]);
			continue;
		}
		if (!json_is_string(v) ||
		    email_normalize(json_string_value(v), EMAIL_ALLOW_IDN, &addr, &why) != BW_OK)
			return op_fail(op, BW_ERR_INVALID,
				       pool_printf(op->pool, "%s: an e-mail address", addrs[i]));
		json_object_set_new(p->settings, addrs[i], json_string(addr.display));
	}
	if ((v = json_object_get(in, "from_name")) != NULL) {
		if (json_is_null(v))
			json_object_del(p->settings, "from_name");
		else if (!json_is_string(v) ||
			 !notify_plain_ok(json_string_value(v), NOTIFY_SETTINGS_NAME_MAX))
			return op_fail(op, BW_ERR_INVALID,
				       "from_name: a name of at most 200 bytes, no control characters");
		else
			json_object_set(p->settings, "from_name", v);
	}
	if ((v = json_object_get(in, "smtp")) != NULL) {
		if (json_is_null(v)) {
			json_object_del(p->settings, "smtp");
			p->password_change = 1; /* the host's server: no password of ours */
		} else {
			if (!json_is_object(v))
				return op_fail(op, BW_ERR_INVALID, "smtp: an object, or null");
			if ((e = op_known_fields(op, v, smtp_known)) != BW_OK)
				return e;
			const char *host = json_string_value(json_object_get(v, "host"));
			json_t *port = json_object_get(v, "port");
			const char *sec = json_string_value(json_object_get(v, "security"));
			json_t *user = json_object_get(v, "username"), *pw = json_object_get(v, "password");
			if (!notify_hostname_ok(host))
				return op_fail(op, BW_ERR_INVALID,
					       "smtp.host: the mail server's name (no scheme, no port)");
			/* An address literal is checked now as well as at connect time. */
			struct netaddr na;
			if (netaddr_parse(host, &na) == BW_OK &&
			    egress_address_refused(&na, notify_host.allow_loopback))
				return op_fail(op, BW_ERR_INVALID,
					       "smtp.host: a public address (not this host's own "
					       "network)");
			if (port != NULL && (!json_is_integer(port) || json_integer_value(port) < 1 ||
					     json_integer_value(port) > 65535))
				return op_fail(op, BW_ERR_INVALID, "smtp.port: 1 to 65535");
			if (sec == NULL)
				sec = "starttls";
			if (strcmp(sec, "starttls") != 0 && strcmp(sec, "tls") != 0 &&
			    strcmp(sec, "none") != 0)
				return op_fail(op, BW_ERR_INVALID,
					       "smtp.security: starttls (587), tls (465) or none");
			if (strcmp(sec, "none") == 0 &&
			    !(notify_host.allow_loopback && mail_host_loopback(host)))
				return op_fail(op, BW_ERR_INVALID,
					       "smtp.security: none would send passwords and mail in "
					       "clear; use starttls or tls");
			if (user != NULL && !json_is_null(user) &&
			    (!json_is_string(user) || !notify_plain_ok(json_string_value(user), 255)))
				return op_fail(op, BW_ERR_INVALID, "smtp.username: at most 255 bytes");
			if (pw != NULL && !json_is_null(pw) &&
			    (!json_is_string(pw) || !notify_plain_ok(json_string_value(pw), 1024)))
				return op_fail(op, BW_ERR_INVALID, "smtp.password: at most 1024 bytes");
			long dport = strcmp(sec, "tls") == 0 ? 465 : 587;
			json_t *smtp = json_pack("{s:s, s:I, s:s}", "host", host, "port",
						 (json_int_t)(port ? json_integer_value(port) : dport),
						 "security", sec);
			if (smtp == NULL)
				return BW_ERR_NOMEM;
			if (user != NULL && json_is_string(user) && json_string_length(user) > 0)
				json_object_set(smtp, "username", user);
			json_object_set_new(p->settings, "smtp", smtp);
			if (pw != NULL) {
				p->password_change = 1;
				p->password = json_is_string(pw) && json_string_length(pw) > 0
						  ? json_string_value(pw)
						  : NULL;
			} else {
				/* A password is only ever sent to the server and user it was given for. */
				json_t *old = json_object_get(st->settings, "smtp");
				const char *oh = json_string_value(json_object_get(old, "host"));
				const char *ou = json_string_value(json_object_get(old, "username"));
				const char *nu = json_string_value(json_object_get(smtp, "username"));
				const char *os = json_string_value(json_object_get(old, "security"));
				json_int_t op_ = json_integer_value(json_object_get(old, "port"));
				if (st->has_password &&
				    (oh == NULL || strcmp(oh, host) != 0 || (ou == NULL) != (nu == NULL) ||
				     (ou != NULL && strcmp(ou, nu) != 0) || os == NULL ||
				     strcmp(os, sec) != 0 ||
				     op_ != json_integer_value(json_object_get(smtp, "port"))))
					p->password_change = 1;
			}
		}
	}
	if ((v = json_object_get(in, "dkim")) != NULL) {
		if (json_is_null(v)) {
			json_object_del(p->settings, "dkim");
			p->key_change = 1;
		} else {
			if (!json_is_object(v))
				return op_fail(op, BW_ERR_INVALID, "dkim: an object, or null");
			if ((e = op_known_fields(op, v, dkim_known)) != BW_OK)
				return e;
			const char *dom = json_string_value(json_object_get(v, "domain"));
			const char *sel = json_string_value(json_object_get(v, "selector"));
			json_t *nk = json_object_get(v, "new_key");
			if (!notify_hostname_ok(dom) || strchr(dom, ':') != NULL || !strchr(dom, '.'))
				return op_fail(op, BW_ERR_INVALID,
					       "dkim.domain: the domain mail is signed for");
			if (sel == NULL || strlen(sel) == 0 || strlen(sel) > 63 ||
			    strspn(sel, "abcdefghijklmnopqrstuvwxyz0123456789-") != strlen(sel))
				return op_fail(op, BW_ERR_INVALID,
					       "dkim.selector: lower-case letters, digits and -, at "
					       "most 63");
			if (nk != NULL && !json_is_boolean(nk))
				return op_fail(op, BW_ERR_INVALID, "dkim.new_key: true or false");
			json_object_set_new(p->settings, "dkim",
					    json_pack("{s:s, s:s}", "domain", dom, "selector", sel));
			if (!st->has_key || json_is_true(nk)) {
				char *txt = NULL;
				p->key_change = 1;
				/* Made here, outside the transaction: RSA-2048 takes a moment. */
				if ((e = mail_dkim_keypair(&p->key, &txt)) != BW_OK)
					return e;
				free(txt);
			}
		}
	}
	/* The audit row: what changed, never the password or the key. */
	p->audit_before = json_deep_copy(st->settings);
	p->audit_after = json_deep_copy(p->settings);
	if (p->audit_before == NULL || p->audit_after == NULL)
		return BW_ERR_NOMEM;
	if (p->password_change)
		json_object_set_new(p->audit_after, "password_changed", json_true());
	if (p->key_change)
		json_object_set_new(p->audit_after, "dkim_key",
				    json_string(p->key != NULL ? "new" : "removed"));
	return BW_OK;
}

bw_err
notify_seal_setting(struct op *op, const char *table, const char *column, const char *value)
{
	unsigned char *sealed = NULL;
	size_t slen = 0;
	char sql[160];
	bw_err e;
	if (value == NULL) {
		snprintf(sql, sizeof(sql), "UPDATE %s SET %s = NULL WHERE id = ?", table, column);
		return db_run(op->d, sql, DB_ARGS(DB_INT(1)));
	}
	if ((e = field_seal(op->ten, &op->tn, table, column, 1, value, strlen(value), &sealed,
			    &slen)) != BW_OK)
		return e;
	snprintf(sql, sizeof(sql), "UPDATE %s SET %s = ? WHERE id = 1", table, column);
	e = db_run(op->d, sql, DB_ARGS(DB_BLOB(sealed, slen)));
	free(sealed);
	return e;
}

static bw_err
notify_put_tx(struct op *op, void *arg)
{
	struct notify_put *p = arg;
	char *text = json_dumps(p->settings, JSON_COMPACT | JSON_SORT_KEYS);
	db *d = op->d;
	bw_err e = text != NULL ? BW_OK : BW_ERR_NOMEM;
	int64_t now = (int64_t)time(NULL);
	if (e == BW_OK)
		e = DB_RUN(d, "UPDATE mail_settings SET settings = ?, updated_at = ? WHERE id = 1",
			   DB_TEXT(text), DB_INT(now));
	if (e == BW_OK && p->password_change)
		e = notify_seal_setting(op, "mail_settings", "smtp_password", p->password);
	if (e == BW_OK && p->key_change)
		e = notify_seal_setting(op, "mail_settings", "dkim_key", p->key);
	if (e == BW_OK)
		e = audit_op(op, "mail", 1, "settings_update", p->audit_before, p->audit_after);
	free(text);
	return e;
}

bw_err
notify_settings_put(struct op *op, json_t *in, json_t **out)
{
	struct notify_stored st;
	struct notify_put p = {0};
	*out = NULL;
	bw_err e = notify_stored_read(op, 0, &st);
	if (e == BW_OK)
		e = notify_put_check(op, in, &st, &p);
	if (e == BW_OK)
		e = op_tx(op, notify_put_tx, &p);
	notify_stored_clear(&st);
	json_decref(p.settings);
	json_decref(p.audit_before);
	json_decref(p.audit_after);
	if (p.key != NULL) {
		crypto_wipe(p.key, strlen(p.key));
		free(p.key);
	}
	if (e == BW_OK)
		e = notify_settings_get(op, out);
	return e;
}

/* A test mail to `to`, queued: its outbox id into *id. */
struct notify_try {
	const char *to;
	int64_t id;
};

static bw_err
notify_test_tx(struct op *op, void *arg)
{
	struct notify_try *t = arg;
	const char *p1 = pool_printf(op->pool,
				     "This is a test of the mail settings of %s in Bulwark, sent by "
				     "%s. If it reached you, mail from Bulwark does.",
				     op->tn.slug, op_actor_label(op));
	char *a = p1 != NULL ? notify_html_escape(op, p1) : NULL;
	const char *html = a != NULL ? pool_printf(op->pool, "<p>%s</p>", a) : NULL;
	if (html == NULL)
		return BW_ERR_NOMEM;
	struct notify_mail m = {.kind = "test", .to = t->to, .subject = "Bulwark: a test message",
				.text = p1, .html = html, .auto_submitted = "auto-generated"};
	bw_err e = notify_mail(op, &m, &t->id);
	if (e == BW_OK) {
		json_t *after = json_pack("{s:s}", "to", t->to);
		e = after != NULL ? audit_op(op, "mail", t->id, "test", NULL, after) : BW_ERR_NOMEM;
		json_decref(after);
	}
	return e;
}

bw_err
notify_test(struct op *op, const char *to, int64_t *id)
{
	struct notify_try t = {to, 0};
	*id = 0;
	/* A message to anyone, through the server the settings chose: as strict as changing them. */
	bw_err e = rbac_may_grant_all(op, "only someone who holds every permission (\"*\") may send "
					  "a test message");
	if (e != BW_OK)
		return e;
	if (to == NULL)
		return op_fail(op, BW_ERR_INVALID, "to: the address to send the test to");
	e = op_tx(op, notify_test_tx, &t);
	if (e == BW_OK)
		*id = t.id;
	return e;
}

/* --- the log ------------------------------------------------------------------- */

bw_err
notify_get(struct op *op, int64_t id, json_t **out)
{
	db *d;
	db_stmt *s = NULL;
	int row = 0;
	*out = NULL;
	bw_err e = op_db(op, &d);
	if (e != BW_OK)
		return e;
	e = db_prepare(d,
		       "SELECT kind, user_id, message, state, attempts, message_id, last_reply,"
		       " created_at, sent_at FROM mail_outbox WHERE id = ?",
		       &s);
	if (e == BW_OK && (e = db_bind_int(s, 1, id)) == BW_OK && (e = db_step(s, &row)) == BW_OK &&
	    row) {
		size_t n = 0, plen = 0;
		const void *p = db_col_blob(s, 2, &n);
		char *plain = NULL;
		json_t *msg = NULL;
		if (p != NULL && n > 0 &&
		    (e = field_open(op->ten, op->tn.slug, "mail_outbox", "message", id, p, n, &plain,
				    &plen)) == BW_OK) {
			msg = json_loads(plain, 0, NULL);
			crypto_wipe(plain, plen);
			free(plain);
		}
		const char *mid = db_col_text(s, 5), *reply = db_col_text(s, 6);
		char created[UTIL_TIME_LEN], sent[UTIL_TIME_LEN];
		util_time_rfc3339(db_col_int(s, 7), created);
		int64_t sent_at = db_col_int(s, 8);
		if (sent_at > 0)
			util_time_rfc3339(sent_at, sent);
		if (e == BW_OK &&
		    (*out = json_pack("{s:I, s:s, s:I, s:s?, s:s?, s:s, s:I, s:s?, s:s?, s:s, s:s?}",
				      "id", (json_int_t)id, "kind", db_col_text(s, 0), "user_id",
				      (json_int_t)db_col_int(s, 1), "to",
				      json_string_value(json_object_get(msg, "to")), "subject",
				      json_string_value(json_object_get(msg, "subject")), "state",
				      db_col_text(s, 3), "attempts", (json_int_t)db_col_int(s, 4),
				      "message_id", mid && mid[0] ? mid : NULL, "last_reply",
				      reply && reply[0] ? reply : NULL, "created_at", created,
				      "sent_at", sent_at > 0 ? sent : NULL)) == NULL)
			e = BW_ERR_NOMEM;
		json_decref(msg);
	}
	db_finalize(s);
	if (e == BW_OK && !row)
		e = op_fail(op, BW_ERR_NOTFOUND, "no such mail");
	return e;
}

/* --- sending -------------------------------------------------------------------- */

/* Where a tenant's mail goes: its own settings (mail_settings row 1) over the host's. */
struct notify_sender {
	char from[256], from_name[201], reply_to[256];
	struct mail_smtp smtp;
	char host[256], username[256];
	char *password; /* owned (the tenant's, opened) or borrowed (the host's) */
	int own_password;
	char dkim_domain[256], dkim_selector[64];
	char *dkim_key; /* owned, or NULL */
};

static void
notify_sender_clear(struct notify_sender *s)
{
	if (s->own_password && s->password != NULL) {
		crypto_wipe(s->password, strlen(s->password));
		free(s->password);
	}
	if (s->dkim_key != NULL) {
		crypto_wipe(s->dkim_key, strlen(s->dkim_key));
		free(s->dkim_key);
	}
	memset(s, 0, sizeof(*s));
}

static void
notify_copy(char *dst, size_t cap, json_t *o, const char *key, const char *dflt)
{
	const char *v = json_string_value(json_object_get(o, key));
	snprintf(dst, cap, "%s", v != NULL ? v : dflt != NULL ? dflt : "");
}


static bw_err
notify_sender_load(struct op *op, db *d, struct notify_sender *s)
{
	db_stmt *st = NULL;
	int row = 0;
	json_t *set = NULL;
	memset(s, 0, sizeof(*s));
	bw_err e = db_prepare(
	    d, "SELECT settings, smtp_password, dkim_key FROM mail_settings WHERE id = 1", &st);
	if (e == BW_OK && (e = db_step(st, &row)) == BW_OK && row) {
		set = json_loads(db_col_text(st, 0) ? db_col_text(st, 0) : "{}", 0, NULL);
		json_t *smtp = json_object_get(set, "smtp"), *dkim = json_object_get(set, "dkim");
		if (json_is_object(smtp)) {
			notify_copy(s->host, sizeof(s->host), smtp, "host", NULL);
			notify_copy(s->username, sizeof(s->username), smtp, "username", NULL);
			s->smtp.port = (long)json_integer_value(json_object_get(smtp, "port"));
			const char *sec = json_string_value(json_object_get(smtp, "security"));
			s->smtp.security = notify_security(sec != NULL ? sec : "starttls");
			s->own_password = 1;
			s->smtp.public_only = 1; /* the tenant's choice: never the host's own network */
			s->smtp.allow_loopback = notify_host.allow_loopback;
			e = notify_open_col(op, st, 1, "smtp_password", &s->password);
		}
		if (e == BW_OK && json_is_object(dkim)) {
			notify_copy(s->dkim_domain, sizeof(s->dkim_domain), dkim, "domain", NULL);
			notify_copy(s->dkim_selector, sizeof(s->dkim_selector), dkim, "selector", NULL);
			e = notify_open_col(op, st, 2, "dkim_key", &s->dkim_key);
		}
		notify_copy(s->from, sizeof(s->from), set, "from", notify_host.from);
		notify_copy(s->from_name, sizeof(s->from_name), set, "from_name", NULL);
		notify_copy(s->reply_to, sizeof(s->reply_to), set, "reply_to", NULL);
	} else if (e == BW_OK) {
		snprintf(s->from, sizeof(s->from), "%s", notify_host.from);
	}
	db_finalize(st);
	json_decref(set);
	if (e == BW_OK && s->host[0] == '\0') {
		/*
		 * The host's server: mail goes out as the host's sender, never as an
		 * address a tenant chose (another tenant's, the host's own domain);
		 * the tenant's address becomes where replies go.
		 */
		if (s->reply_to[0] == '\0' && strcmp(s->from, notify_host.from) != 0)
			snprintf(s->reply_to, sizeof(s->reply_to), "%s", s->from);
		snprintf(s->from, sizeof(s->from), "%s", notify_host.from);
		snprintf(s->host, sizeof(s->host), "%s", notify_host.host);
		snprintf(s->username, sizeof(s->username), "%s", notify_host.username);
		s->smtp.port = notify_host.port;
		s->smtp.security = notify_host.security;
		s->password = notify_host.password;
		s->own_password = 0;
	}
	s->smtp.host = s->host;
	s->smtp.username = s->username[0] != '\0' ? s->username : NULL;
	s->smtp.password = s->smtp.username != NULL ? s->password : NULL;
	s->smtp.ca_file = notify_host.ca_file[0] != '\0' ? notify_host.ca_file : NULL;
	s->smtp.connect_timeout_ms = notify_host.connect_timeout_ms;
	s->smtp.timeout_ms = notify_host.timeout_ms;
	if (e != BW_OK)
		notify_sender_clear(s);
	return e;
}

/* The outcome of an attempt, on the row (its own transaction). */
struct notify_done {
	int64_t id;
	const char *state; /* sent | queued | failed */
	const char *reply;
	const char *message_id;
	/* once sent or failed: what the log shows (to, subject), sealed, in place of the message */
	const unsigned char *kept;
	size_t kept_len;
};

static bw_err
notify_done_tx(struct op *op, void *arg)
{
	const struct notify_done *nd = arg;
	int64_t now = (int64_t)time(NULL);
	/* A sent or failed mail keeps no body: a reset link lives on nowhere. */
	if (nd->kept != NULL && strcmp(nd->state, "queued") != 0) {
		bw_err e = DB_RUN(op->d, "UPDATE mail_outbox SET message = ? WHERE id = ?",
				  DB_BLOB(nd->kept, nd->kept_len), DB_INT(nd->id));
		if (e != BW_OK)
			return e;
	}
	return DB_RUN(op->d,
		      "UPDATE mail_outbox SET state = ?, attempts = attempts + 1, last_reply = ?,"
		      " message_id = CASE WHEN ? = '' THEN message_id ELSE ? END,"
		      " sent_at = CASE WHEN ? = 'sent' THEN ? ELSE sent_at END WHERE id = ?",
		      DB_TEXT(nd->state), DB_TEXT(nd->reply), DB_TEXT(nd->message_id),
		      DB_TEXT(nd->message_id), DB_TEXT(nd->state), DB_INT(now), DB_INT(nd->id));
}

static bw_err
notify_send_run(struct op *op, const struct job *j, struct job_retry *retry)
{
	int64_t id = (int64_t)json_integer_value(json_object_get(j->payload, "mail"));
	struct notify_sender snd;
	db *d;
	db_stmt *st = NULL;
	int row = 0, have_sender = 0;
	char *plain = NULL, *raw = NULL, state[17] = "";
	size_t plen = 0, rlen = 0;
	json_t *msg = NULL;
	char reply[256] = "", message_id[256] = "";
	bw_err e = op_db(op, &d);
	if (e != BW_OK)
		return e;
	e = db_prepare(d, "SELECT state, message FROM mail_outbox WHERE id = ?", &st);
	if (e == BW_OK && (e = db_bind_int(st, 1, id)) == BW_OK && (e = db_step(st, &row)) == BW_OK &&
	    row) {
		snprintf(state, sizeof(state), "%s", db_col_text(st, 0));
		size_t n = 0;
		const void *p = db_col_blob(st, 1, &n);
		if (p != NULL && n > 0)
			e = field_open(op->ten, op->tn.slug, "mail_outbox", "message", id, p, n, &plain,
				       &plen);
	}
	db_finalize(st);
	if (e != BW_OK)
		goto out;
	if (!row || strcmp(state, "queued") != 0)
		goto out; /* gone, or sent by an earlier attempt whose finish was lost */
	if (plain == NULL || (msg = json_loads(plain, 0, NULL)) == NULL) {
		retry->permanent = 1;
		snprintf(retry->error, sizeof(retry->error), "the queued message cannot be read");
		e = BW_ERR_INTERNAL;
		goto record;
	}
	if ((e = notify_sender_load(op, d, &snd)) != BW_OK)
		goto out;
	have_sender = 1;
	op_db_release(op); /* no connection held while the mail server is talked to */
	if (snd.host[0] == '\0') {
		retry->permanent = 1;
		snprintf(retry->error, sizeof(retry->error),
			 "no mail server is set: the tenant's mail settings or the host's [mail] smtp_host");
		snprintf(reply, sizeof(reply), "%.250s", retry->error);
		e = BW_ERR_UNAVAILABLE;
		goto record;
	}
	/* mail_smtp_send() refuses clear text to anywhere but this machine, for good. */
	const char *at = strrchr(snd.from, '@');
	struct mail_message mm = {
	    .from_addr = snd.from,
	    .from_name = snd.from_name[0] != '\0' ? snd.from_name : NULL,
	    .to_addr = json_string_value(json_object_get(msg, "to")),
	    .to_name = json_string_value(json_object_get(msg, "to_name")),
	    .reply_to = snd.reply_to[0] != '\0' ? snd.reply_to : NULL,
	    .subject = json_string_value(json_object_get(msg, "subject")),
	    .text = json_string_value(json_object_get(msg, "text")),
	    .html = json_string_value(json_object_get(msg, "html")),
	    .id_domain = at != NULL ? at + 1 : "localhost",
	    .auto_submitted = json_string_value(json_object_get(msg, "auto_submitted")),
	};
	if ((e = mail_build(&mm, &raw, &rlen, message_id)) != BW_OK) {
		retry->permanent = 1;
		snprintf(retry->error, sizeof(retry->error), "the message could not be built");
		snprintf(reply, sizeof(reply), "%.250s", retry->error);
		goto record;
	}
	if (snd.dkim_key != NULL && snd.dkim_domain[0] != '\0' && snd.dkim_selector[0] != '\0') {
		struct mail_dkim k = {snd.dkim_domain, snd.dkim_selector, snd.dkim_key};
		if ((e = mail_dkim_sign(&k, &raw, &rlen)) != BW_OK) {
			snprintf(retry->error, sizeof(retry->error), "DKIM signing failed");
			snprintf(reply, sizeof(reply), "%.250s", retry->error);
			goto record;
		}
	}
	e = mail_smtp_send(&snd.smtp, snd.from, mm.to_addr, raw, rlen, reply);
	if (e != BW_OK) {
		retry->permanent = e == BW_ERR_INVALID;
		snprintf(retry->error, sizeof(retry->error), "%.100s: %.250s", snd.host, reply);
		if (notify_host.test_retry > 0)
			retry->at_ms = jobs_now_ms() + notify_host.test_retry * 1000L;
	}
record:;
	int last = retry->permanent || j->attempts >= j->max_attempts;
	struct notify_done nd = {id, e == BW_OK ? "sent" : last ? "failed" : "queued", reply,
				 message_id, NULL, 0};
	unsigned char *kept = NULL;
	size_t kept_len = 0;
	if (strcmp(nd.state, "queued") != 0 && msg != NULL) {
		json_t *log = json_pack("{s:O?, s:O?}", "to", json_object_get(msg, "to"), "subject",
					json_object_get(msg, "subject"));
		char *lt = log != NULL ? json_dumps(log, JSON_COMPACT) : NULL;
		if (lt != NULL &&
		    field_seal(op->ten, &op->tn, "mail_outbox", "message", id, lt, strlen(lt), &kept,
			       &kept_len) == BW_OK) {
			nd.kept = kept;
			nd.kept_len = kept_len;
		}
		free(lt);
		json_decref(log);
	}
	op_clear(op);
	bw_err e2 = op_tx(op, notify_done_tx, &nd);
	free(kept);
	if (e == BW_OK && e2 != BW_OK)
		log_error("tenant %s: mail %lld was sent but its row not updated", op->tn.slug,
			  (long long)id);
	if (e == BW_OK)
		log_info("tenant %s: mail %lld sent (%s)", op->tn.slug, (long long)id, message_id);
	else
		log_warn("tenant %s: mail %lld not sent: %s", op->tn.slug, (long long)id,
			 retry->error);
out:
	if (have_sender)
		notify_sender_clear(&snd);
	if (plain != NULL) {
		crypto_wipe(plain, plen);
		free(plain);
	}
	if (raw != NULL) {
		crypto_wipe(raw, rlen);
		free(raw);
	}
	json_decref(msg);
	return e;
}

/* A job that failed for good (or was cancelled): its row says so. */
static bw_err
notify_send_ended(struct op *op, const struct job *j, const char *state, const char *why)
{
	int64_t id = (int64_t)json_integer_value(json_object_get(j->payload, "mail"));
	(void)state;
	return DB_RUN(op->d,
		      "UPDATE mail_outbox SET state = 'failed',"
		      " last_reply = CASE WHEN last_reply = '' THEN ? ELSE last_reply END"
		      " WHERE id = ? AND state = 'queued'",
		      DB_TEXT(why != NULL ? why : ""), DB_INT(id));
}

/* --- a sign-in from a new address ------------------------------------------------ */

static bw_err notify_user_addr(struct op *op, int64_t uid, char email[EMAIL_MAX + 1]);

bw_err
notify_signin(struct op *op, int64_t uid, const char *client_ip, const char *how)
{
	int64_t want = 0, seen = 0;
	char email[EMAIL_MAX + 1], when[UTIL_TIME_LEN];
	bw_err e = DB_QUERY_INT(op->d, &want, "SELECT signin_notice FROM users WHERE id = ?",
				DB_INT(uid));
	if (e != BW_OK || want == 0 || client_ip == NULL || client_ip[0] == '\0')
		return e;
	if ((e = DB_QUERY_INT(op->d, &seen,
			      "SELECT COUNT(*) FROM auth_events WHERE user_id = ? AND kind = 'login'"
			      " AND client_ip = ?",
			      DB_INT(uid), DB_TEXT(client_ip))) != BW_OK ||
	    seen > 0 || (e = notify_user_addr(op, uid, email)) != BW_OK || email[0] == '\0')
		return e;
	util_time_rfc3339((int64_t)time(NULL), when);
	return notify_notice(
	    op, "new_signin", uid, email, "Bulwark: a sign-in from a new address",
	    pool_printf(op->pool,
			"Your Bulwark account at %s was signed in to from %s, an address not seen "
			"before, at %s (%s).",
			op->tn.slug, client_ip, when, how),
	    "If it was you, there is nothing to do. If not, change your password now and end "
	    "your other sessions; with MFA on, a second factor is still needed to get in.");
}

bw_err
notify_signin_pref_get(struct op *op, int *on)
{
	int64_t v = 0;
	db *d;
	bw_err e = op_db(op, &d);
	if (e == BW_OK)
		e = DB_QUERY_INT(d, &v, "SELECT signin_notice FROM users WHERE id = ?",
				 DB_INT(op->actor.user.id));
	*on = v != 0;
	return e;
}

static bw_err
notify_signin_pref_tx(struct op *op, void *arg)
{
	int on = *(int *)arg;
	bw_err e = DB_RUN(op->d, "UPDATE users SET signin_notice = ? WHERE id = ?", DB_INT(on),
			  DB_INT(op->actor.user.id));
	json_t *after = json_pack("{s:b}", "new_signin", on);
	if (e == BW_OK)
		e = after != NULL ? audit_op(op, "users", op->actor.user.id, "signin_notice", NULL,
					     after)
				  : BW_ERR_NOMEM;
	json_decref(after);
	return e;
}

bw_err
notify_signin_pref_set(struct op *op, int on)
{
	if (op->actor.user.id <= 0)
		return op_fail(op, BW_ERR_DENIED, "only a signed-in user has this choice");
	return op_tx(op, notify_signin_pref_tx, &on);
}

/* --- notices of ticket work --------------------------------------------------------- */

#define NOTIFY_EVENTS_BATCH 50

/* s with control characters turned into spaces, in the pool: fit for a subject. */
static const char *
notify_one_line(struct op *op, const char *s)
{
	char *o = pool_strdup(op->pool, s != NULL ? s : "");
	for (char *p = o; p != NULL && *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	return o;
}

/* The e-mail address and name of staff user uid ("" when none or disabled). */
static bw_err
notify_user_addr(struct op *op, int64_t uid, char email[EMAIL_MAX + 1])
{
	db_stmt *s = NULL;
	int row = 0;
	email[0] = '\0';
	bw_err e = db_prepare(op->d, "SELECT email, disabled FROM users WHERE id = ?", &s);
	if (e == BW_OK && (e = db_bind_int(s, 1, uid)) == BW_OK && (e = db_step(s, &row)) == BW_OK &&
	    row && db_col_int(s, 1) == 0 && db_col_text(s, 0) != NULL)
		snprintf(email, EMAIL_MAX + 1, "%s", db_col_text(s, 0));
	db_finalize(s);
	return e;
}

/* A module row as the API shows it, or NULL when it is gone. */
static bw_err
notify_row(struct op *op, const char *module, int64_t id, json_t **row)
{
	const struct module_desc *m = module_find(module);
	*row = NULL;
	if (m == NULL)
		return BW_OK;
	bw_err e = module_get(op, m, id, row);
	if (e == BW_ERR_NOTFOUND) {
		op_clear(op);
		return BW_OK;
	}
	return e;
}

static int64_t
notify_int(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	return json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
}

/* cents as "1234.56" (a minus sign when below zero), in the pool. */
static const char *
notify_money(struct op *op, int64_t cents)
{
	uint64_t a = cents < 0 ? (uint64_t)0 - (uint64_t)cents : (uint64_t)cents;
	return pool_printf(op->pool, "%s%llu.%02llu", cents < 0 ? "-" : "",
			   (unsigned long long)(a / 100), (unsigned long long)(a % 100));
}

/* Append a line to the text and (escaped) to the HTML of a document's mail. */
static bw_err
notify_doc_line(struct op *op, struct buf *text, struct buf *html, const char *desc,
		int64_t qty, int64_t unit, int64_t amount)
{
	const char *d = notify_one_line(op, desc);
	char *h = d != NULL ? notify_html_escape(op, d) : NULL;
	const char *u = notify_money(op, unit), *a = notify_money(op, amount);
	if (h == NULL || u == NULL || a == NULL)
		return BW_ERR_NOMEM;
	bw_err e = buf_printf(text, "  %s: %lld x %s = %s\n", d, (long long)qty, u, a);
	if (e == BW_OK)
		e = buf_printf(html,
			       "<tr><td>%s</td><td style=\"text-align:right\">%lld</td>"
			       "<td style=\"text-align:right\">%s</td>"
			       "<td style=\"text-align:right\">%s</td></tr>",
			       h, (long long)qty, u, a);
	return e;
}

/*
 * An invoice or an estimate that was sent: mailed to its customer's
 * address with its lines and totals (the PDF joins it once documents are
 * made). A customer without an address gets nothing.
 */
static bw_err
notify_doc(struct op *op, const char *module, int64_t id)
{
	int invoice = strcmp(module, "invoices") == 0;
	json_t *doc = NULL, *cust = NULL;
	struct buf text, html;
	db_stmt *s = NULL;
	int row = 0;
	buf_init(&text, NOTIFY_MESSAGE_MAX / 4);
	buf_init(&html, NOTIFY_MESSAGE_MAX / 2);
	bw_err e = notify_row(op, module, id, &doc);
	if (e != BW_OK || doc == NULL)
		goto out;
	if ((e = notify_row(op, "customers", notify_int(doc, "customer_id"), &cust)) != BW_OK ||
	    cust == NULL)
		goto out;
	const char *to = json_string_value(json_object_get(cust, "email"));
	if (to == NULL || to[0] == '\0')
		goto out;
	const char *what = invoice ? "Invoice" : "Estimate";
	const char *num = json_string_value(json_object_get(doc, "number"));
	const char *label = num != NULL && num[0] ? notify_one_line(op, num)
						  : pool_printf(op->pool, "#%lld", (long long)id);
	const char *name = notify_one_line(op, json_string_value(json_object_get(cust, "name")));
	const char *issued = json_string_value(json_object_get(doc, "issued_on"));
	const char *due = json_string_value(json_object_get(doc, invoice ? "due_on" : "valid_until"));
	const char *intro = pool_printf(op->pool, "Hello %s,\n\n%s %s%s%s%s%s:\n\n", name, what,
					label, issued ? ", issued on " : "", issued ? issued : "",
					due ? (invoice ? ", due on " : ", valid until ") : "",
					due ? due : "");
	char *hintro = intro != NULL ? notify_html_escape(op, intro) : NULL;
	if (hintro == NULL) {
		e = BW_ERR_NOMEM;
		goto out;
	}
	if ((e = buf_append_str(&text, intro)) != BW_OK ||
	    (e = buf_printf(&html,
			    "<!DOCTYPE html><html><body><p style=\"white-space:pre-wrap\">%s</p>"
			    "<table><tr><th>Description</th><th>Quantity</th><th>Unit price</th>"
			    "<th>Amount</th></tr>",
			    hintro)) != BW_OK)
		goto out;
	const char *sql = invoice ? "SELECT description, quantity, unit_price_cents, amount_cents"
				    " FROM invoice_lines WHERE invoice_id = ? ORDER BY id"
				  : "SELECT description, quantity, unit_price_cents, amount_cents"
				    " FROM estimate_lines WHERE estimate_id = ? ORDER BY id";
	e = db_prepare(op->d, sql, &s);
	if (e == BW_OK)
		e = db_bind_int(s, 1, id);
	while (e == BW_OK && (e = db_step(s, &row)) == BW_OK && row)
		e = notify_doc_line(op, &text, &html, db_col_text(s, 0) ? db_col_text(s, 0) : "",
				    db_col_int(s, 1), db_col_int(s, 2), db_col_int(s, 3));
	db_finalize(s);
	if (e != BW_OK)
		goto out;
	const char *sub = notify_money(op, notify_int(doc, "subtotal_cents")),
		   *tax = notify_money(op, notify_int(doc, "tax_cents")),
		   *tot = notify_money(op, notify_int(doc, "total_cents"));
	if (sub == NULL || tax == NULL || tot == NULL) {
		e = BW_ERR_NOMEM;
		goto out;
	}
	if ((e = buf_printf(&text, "\nSubtotal: %s\nTax: %s\nTotal: %s\n", sub, tax, tot)) !=
		BW_OK ||
	    (e = buf_printf(&html,
			    "</table><p>Subtotal: %s<br>Tax: %s<br><strong>Total: %s</strong></p>"
			    "</body></html>",
			    sub, tax, tot)) != BW_OK)
		goto out;
	struct notify_mail m = {
	    .kind = invoice ? "invoice_sent" : "estimate_sent",
	    .to = to,
	    .to_name = name,
	    .subject = pool_printf(op->pool, "%s %s", what, label),
	    .text = buf_ptr(&text),
	    .html = buf_ptr(&html),
	    .auto_submitted = "auto-generated",
	};
	e = m.subject != NULL ? notify_mail(op, &m, NULL) : BW_ERR_NOMEM;
	if (e == BW_ERR_INVALID) {
		/* A customer whose address is not one: no mail, and the tick goes on. */
		op_clear(op);
		e = BW_OK;
	}
out:
	if (e == BW_ERR_NOMEM && (text.len >= text.max || html.len >= html.max)) {
		/* A document too long to mail: said in the log, the tick goes on. */
		log_warn("tenant %s: %s %lld is too long to mail", op->tn.slug, module, (long long)id);
		e = BW_OK;
	}
	buf_free(&text);
	buf_free(&html);
	json_decref(doc);
	json_decref(cust);
	return e;
}

/* The notices of one event (in the tick's transaction). */
static bw_err
notify_event(struct op *op, const char *type, int64_t entity_id)
{
	int created = strcmp(type, "tickets.created") == 0,
	    assigned = strcmp(type, "tickets.assigned") == 0,
	    commented = strcmp(type, "ticket_comments.created") == 0;
	if (strcmp(type, "invoices.sent") == 0)
		return notify_doc(op, "invoices", entity_id);
	if (strcmp(type, "estimates.sent") == 0)
		return notify_doc(op, "estimates", entity_id);
	if (!created && !assigned && !commented)
		return BW_OK;
	json_t *ticket = NULL, *comment = NULL, *contact = NULL;
	bw_err e = BW_OK;
	int64_t tid = entity_id, by_mail = 0;
	if (commented) {
		if ((e = notify_row(op, "ticket_comments", entity_id, &comment)) != BW_OK ||
		    comment == NULL || json_is_true(json_object_get(comment, "internal")))
			goto out; /* an internal note is the technicians' own */
		tid = notify_int(comment, "ticket_id");
		/*
		 * The customer's own answer, taken from the support mailbox
		 * (src/intake): made by the system, not by a technician. Known from
		 * the comment itself, which commits with its claim (the claim's
		 * comment_id is written just after, and a tick may come between).
		 */
		json_t *by = json_object_get(comment, "created_by");
		by_mail = json_is_integer(by) && json_integer_value(by) == 0;
		if (!by_mail &&
		    (e = DB_QUERY_INT(op->d, &by_mail,
				      "SELECT COUNT(*) FROM mail_inbound WHERE comment_id = ?",
				      DB_INT(entity_id))) != BW_OK)
			goto out;
	}
	if ((e = notify_row(op, "tickets", tid, &ticket)) != BW_OK || ticket == NULL)
		goto out;
	const char *subject = notify_one_line(op, json_string_value(json_object_get(ticket, "subject")));
	int64_t assignee = notify_int(ticket, "assignee_id"), cid = notify_int(ticket, "contact_id");
	char email[EMAIL_MAX + 1];
	if (by_mail) {
		/* Told to the technician it is given to; never mailed back to the one who wrote it. */
		if (assignee > 0 && (e = notify_user_addr(op, assignee, email)) == BW_OK &&
		    email[0] != '\0')
			e = notify_notice(op, "ticket_answered", assignee, email,
					  pool_printf(op->pool, "[#%lld] %s", (long long)tid, subject),
					  pool_printf(op->pool,
						      "The customer answered on ticket #%lld, \"%s\", by "
						      "e-mail.",
						      (long long)tid, subject),
					  "Open it in Bulwark to read the answer.");
		goto out;
	}
	/* The technician: on a new ticket that is theirs, and when it is given to them. */
	if ((created || assigned) && assignee > 0 &&
	    (e = notify_user_addr(op, assignee, email)) == BW_OK && email[0] != '\0')
		e = notify_notice(op, created ? "ticket_created" : "ticket_assigned", assignee, email,
				  pool_printf(op->pool, "[#%lld] %s", (long long)tid, subject),
				  pool_printf(op->pool, "Ticket #%lld, \"%s\", %s you.", (long long)tid,
					      subject,
					      created ? "was opened and assigned to" : "was assigned to"),
				  "Open it in Bulwark to work on it.");
	if (e != BW_OK || !(created || commented) || cid <= 0)
		goto out;
	/* The customer's contact: that their request is open, and each answer they may see. */
	if ((e = notify_row(op, "contacts", cid, &contact)) != BW_OK || contact == NULL)
		goto out;
	const char *to = json_string_value(json_object_get(contact, "email"));
	if (to == NULL || to[0] == '\0')
		goto out;
	const char *first = json_string_value(json_object_get(contact, "first_name"));
	const char *body = commented ? json_string_value(json_object_get(comment, "body")) : NULL;
	struct notify_mail m = {
	    .kind = created ? "ticket_created_contact" : "ticket_comment_contact",
	    .to = to,
	    .to_name = first,
	    .subject = pool_printf(op->pool, "[#%lld] %s", (long long)tid, subject),
	    .auto_submitted = "auto-generated",
	    .ticket_id = tid,
	};
	const char *p1 =
	    created ? pool_printf(op->pool, "Hello %s, we have your request \"%s\" as ticket #%lld.",
				  first != NULL ? first : "", subject, (long long)tid)
		    : pool_printf(op->pool, "Hello %s, there is an answer on ticket #%lld, \"%s\":",
				  first != NULL ? first : "", (long long)tid, subject);
	const char *p2 = body != NULL ? body : "We will be in touch.";
	char *h1 = p1 != NULL ? notify_html_escape(op, p1) : NULL;
	char *h2 = notify_html_escape(op, p2);
	m.text = p1 != NULL ? pool_printf(op->pool, "%s\n\n%s\n", p1, p2) : NULL;
	m.html = h1 != NULL && h2 != NULL
		     ? pool_printf(op->pool,
				   "<!DOCTYPE html><html><body><p>%s</p><p style=\"white-space:"
				   "pre-wrap\">%s</p></body></html>",
				   h1, h2)
		     : NULL;
	e = m.subject != NULL && m.text != NULL && m.html != NULL ? notify_mail(op, &m, NULL)
								   : BW_ERR_NOMEM;
	if (e == BW_ERR_INVALID) {
		/* A contact whose address is not one: no notice, and the tick goes on. */
		op_clear(op);
		e = BW_OK;
	}
out:
	json_decref(ticket);
	json_decref(comment);
	json_decref(contact);
	return e;
}

/* Events after the cursor, turned into notices, and the cursor moved: one transaction. */
static bw_err
notify_tick_tx(struct op *op, void *arg)
{
	int *n = arg;
	int64_t cursor = 0, ids[NOTIFY_EVENTS_BATCH], eids[NOTIFY_EVENTS_BATCH];
	char types[NOTIFY_EVENTS_BATCH][EVENT_TYPE_MAX + 1];
	size_t k = 0;
	db_stmt *s = NULL;
	int row = 0;
	*n = 0;
	bw_err e = DB_QUERY_INT(op->d, &cursor, "SELECT last_event FROM notify_cursor WHERE id = ?",
				DB_INT(1));
	if (e != BW_OK)
		return e;
	e = db_prepare(op->d,
		       "SELECT id, type, entity_id FROM events WHERE id > ? ORDER BY id LIMIT ?", &s);
	if (e == BW_OK && (e = db_bind_int(s, 1, cursor)) == BW_OK &&
	    (e = db_bind_int(s, 2, NOTIFY_EVENTS_BATCH)) == BW_OK)
		while (k < NOTIFY_EVENTS_BATCH && (e = db_step(s, &row)) == BW_OK && row) {
			ids[k] = db_col_int(s, 0);
			snprintf(types[k], sizeof(types[k]), "%s",
				 db_col_text(s, 1) ? db_col_text(s, 1) : "");
			eids[k++] = db_col_int(s, 2);
		}
	db_finalize(s);
	for (size_t i = 0; e == BW_OK && i < k; i++)
		e = notify_event(op, types[i], eids[i]);
	if (e == BW_OK && k > 0)
		e = DB_RUN(op->d, "UPDATE notify_cursor SET last_event = ? WHERE id = ?",
			   DB_INT(ids[k - 1]), DB_INT(1));
	if (e == BW_OK)
		*n = (int)k;
	return e;
}

static bw_err
notify_tick(struct op *op, int *n)
{
	return op_tx(op, notify_tick_tx, n);
}

void
notify_jobs(struct job_kind *kinds, size_t *nk, struct jobs_tick *ticks, size_t *nt)
{
	ticks[0] = (struct jobs_tick){"job: mail notices", 0, notify_tick};
	*nt = NOTIFY_TICKS;
	const int *bo = notify_backoff;
	size_t nbo = BW_ARRAY_LEN(notify_backoff);
	if (notify_host.test_retry > 0) {
		bo = notify_test_backoff;
		nbo = 1;
	}
	kinds[0] = (struct job_kind){NOTIFY_JOB_SEND, NOTIFY_MAX_ATTEMPTS, bo, nbo, 0,
				     notify_send_run, notify_send_ended};
	*nk = NOTIFY_KINDS;
}
