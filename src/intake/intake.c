/* E-mail to ticket: the support mailbox, read by a job (intake.h). */
#include "intake.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../audit/audit.h"
#include "../crypto/crypto.h"
#include "../db/db.h"
#include "../files/check.h"
#include "../files/files.h"
#include "../mail/inbound.h"
#include "../modules/desc.h"
#include "../modules/module.h"
#include "../notify/notify.h"
#include "../rbac/rbac.h"
#include "../search/blind.h"
#include "../tenancy/tenancy.h"
#include "../webhooks/egress.h"

#define INTAKE_REASON_MAX 300
#define INTAKE_SUBJECT_MAX 200  /* bytes of a ticket's subject */
#define INTAKE_BODY_MAX 19000   /* bytes of a description or comment taken from a message */
#define INTAKE_WINDOW 3600      /* the per-sender limit's window, seconds */

/* The host's part, set once at start-up. */
static struct {
	long poll_s;
	long max_bytes;
	long per_sender_hour;
	char ca_file[CONFIG_STR];
	long connect_timeout_ms, timeout_ms;
	int allow_loopback;
} intake_host = {.poll_s = 60, .max_bytes = 26214400, .per_sender_hour = 30,
		 .connect_timeout_ms = 10000, .timeout_ms = 60000};

void
intake_configure(const struct config *cfg)
{
	intake_host.poll_s = cfg->mail_poll_seconds;
	intake_host.max_bytes = cfg->mail_inbound_max_bytes;
	intake_host.per_sender_hour = cfg->mail_inbound_per_sender_hour;
	snprintf(intake_host.ca_file, sizeof(intake_host.ca_file), "%s", cfg->mail_ca_file);
	intake_host.connect_timeout_ms = cfg->mail_connect_timeout_ms;
	intake_host.timeout_ms = cfg->mail_timeout_ms;
	intake_host.allow_loopback = cfg->mail_test_allow_loopback != 0;
}

static int64_t
intake_now(void)
{
	return (int64_t)time(NULL);
}

/* --- the settings ----------------------------------------------------------------- */

struct intake_stored {
	json_t *settings; /* owned */
	int enabled, has_password;
	char *password;   /* opened only when asked; owned */
	int64_t uidvalidity, next_uid, last_poll_at;
	char last_error[INTAKE_REASON_MAX + 1];
};

static bw_err
intake_stored_read(struct op *op, int open_password, struct intake_stored *st)
{
	db *d;
	db_stmt *s = NULL;
	int row = 0;
	memset(st, 0, sizeof(*st));
	bw_err e = op_db(op, &d);
	if (e == BW_OK)
		e = db_prepare(d,
			       "SELECT settings, enabled, password, uidvalidity, next_uid, last_poll_at,"
			       " last_error FROM mailbox_settings WHERE id = 1",
			       &s);
	if (e == BW_OK && (e = db_step(s, &row)) == BW_OK && row) {
		st->settings = json_loads(db_col_text(s, 0) ? db_col_text(s, 0) : "{}", 0, NULL);
		st->enabled = db_col_int(s, 1) != 0;
		size_t n = 0, len = 0;
		const void *p = db_col_blob(s, 2, &n);
		st->has_password = p != NULL && n > 0;
		st->uidvalidity = db_col_int(s, 3);
		st->next_uid = db_col_int(s, 4);
		st->last_poll_at = db_col_int(s, 5);
		snprintf(st->last_error, sizeof(st->last_error), "%s",
			 db_col_text(s, 6) ? db_col_text(s, 6) : "");
		if (open_password && st->has_password)
			e = field_open(op->ten, op->tn.slug, "mailbox_settings", "password", 1, p, n,
				       &st->password, &len);
	}
	db_finalize(s);
	if (e == BW_OK && st->settings == NULL && (st->settings = json_object()) == NULL)
		e = BW_ERR_NOMEM;
	return e;
}

static void
intake_stored_clear(struct intake_stored *st)
{
	json_decref(st->settings);
	if (st->password != NULL) {
		crypto_wipe(st->password, strlen(st->password));
		free(st->password);
	}
	memset(st, 0, sizeof(*st));
}

static const char *
intake_str(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

bw_err
intake_settings_get(struct op *op, json_t **out)
{
	struct intake_stored st;
	*out = NULL;
	bw_err e = intake_stored_read(op, 0, &st);
	if (e != BW_OK) {
		intake_stored_clear(&st);
		return e;
	}
	json_t *o = json_deep_copy(st.settings);
	static const char *const nulls[] = {"host",	       "port",
					    "security",	       "username",
					    "unknown_customer_id", "trusted_authserv_id"};
	if (o != NULL) {
		for (size_t i = 0; i < BW_ARRAY_LEN(nulls); i++)
			if (json_object_get(o, nulls[i]) == NULL)
				json_object_set_new(o, nulls[i], json_null());
		if (json_object_get(o, "mailbox") == NULL)
			json_object_set_new(o, "mailbox", json_string("INBOX"));
		if (json_object_get(o, "unknown_senders") == NULL)
			json_object_set_new(o, "unknown_senders", json_string("refuse"));
		json_object_set_new(o, "enabled", json_boolean(st.enabled));
		json_object_set_new(o, "password_set", json_boolean(st.has_password));
		json_object_set_new(o, "poll_seconds", json_integer(intake_host.poll_s));
		char polled[32];
		util_time_rfc3339(st.last_poll_at, polled);
		json_object_set_new(o, "state",
				    json_pack("{s:I, s:I, s:s?, s:s?}", "uidvalidity",
					      (json_int_t)st.uidvalidity, "next_uid",
					      (json_int_t)st.next_uid, "last_poll_at",
					      st.last_poll_at > 0 ? polled : NULL, "last_error",
					      st.last_error[0] ? st.last_error : NULL));
	}
	intake_stored_clear(&st);
	if (o == NULL)
		return BW_ERR_NOMEM;
	*out = o;
	return BW_OK;
}

/* A PUT, checked and ready to write. */
struct intake_put {
	json_t *settings; /* owned */
	int enabled;
	int password_change;  /* 0 keep, 1 set (password NULL: remove) */
	const char *password; /* borrowed from the body */
	json_t *before, *after; /* the audit row's, owned */
};

static bw_err
intake_bad(struct op *op, const char *msg)
{
	return op_fail(op, BW_ERR_INVALID, msg);
}

/* host, port, security and username of the body into p->settings (checked). */
static bw_err
intake_put_server(struct op *op, json_t *in, struct intake_put *p)
{
	json_t *v;
	if ((v = json_object_get(in, "host")) != NULL) {
		const char *host = json_string_value(v);
		struct netaddr na;
		if (json_is_null(v)) {
			json_object_del(p->settings, "host");
		} else if (!notify_hostname_ok(host)) {
			return intake_bad(op, "host: the IMAP server's name (no scheme, no port)");
		} else if (netaddr_parse(host, &na) == BW_OK &&
			   egress_address_refused(&na, intake_host.allow_loopback)) {
			/* An address literal is checked now as well as at connect time. */
			return intake_bad(op, "host: a public address (not this host's own network)");
		} else {
			json_object_set(p->settings, "host", v);
		}
	}
	if ((v = json_object_get(in, "security")) != NULL) {
		const char *sec = json_string_value(v);
		if (sec == NULL ||
		    (strcmp(sec, "tls") != 0 && strcmp(sec, "starttls") != 0 && strcmp(sec, "none") != 0))
			return intake_bad(op, "security: tls (993), starttls (143) or none");
		json_object_set(p->settings, "security", v);
	}
	if ((v = json_object_get(in, "port")) != NULL) {
		if (json_is_null(v))
			json_object_del(p->settings, "port");
		else if (!json_is_integer(v) || json_integer_value(v) < 1 ||
			 json_integer_value(v) > 65535)
			return intake_bad(op, "port: 1 to 65535");
		else
			json_object_set(p->settings, "port", v);
	}
	if ((v = json_object_get(in, "username")) != NULL) {
		if (json_is_null(v))
			json_object_del(p->settings, "username");
		else if (!json_is_string(v) || json_string_length(v) == 0 ||
			 !notify_plain_ok(json_string_value(v), 255))
			return intake_bad(op, "username: 1 to 255 bytes, no control characters");
		else
			json_object_set(p->settings, "username", v);
	}
	const char *sec = intake_str(p->settings, "security");
	const char *host = intake_str(p->settings, "host");
	if (sec != NULL && strcmp(sec, "none") == 0 &&
	    !(intake_host.allow_loopback && host != NULL && mail_host_loopback(host)))
		return intake_bad(op, "security: none would send the password and the mail in clear; "
				      "use tls or starttls");
	return BW_OK;
}

/* The policy members of the body into p->settings (checked). */
static bw_err
intake_put_policy(struct op *op, json_t *in, struct intake_put *p)
{
	json_t *v;
	if ((v = json_object_get(in, "mailbox")) != NULL) {
		const char *mb = json_string_value(v);
		if (mb == NULL || mb[0] == '\0' || !notify_plain_ok(mb, 200) || strchr(mb, '"') ||
		    strchr(mb, '\\'))
			return intake_bad(op, "mailbox: a folder name of at most 200 bytes, without "
					      "quotes or backslashes");
		json_object_set(p->settings, "mailbox", v);
	}
	if ((v = json_object_get(in, "unknown_senders")) != NULL) {
		const char *pol = json_string_value(v);
		if (pol == NULL || (strcmp(pol, "refuse") != 0 && strcmp(pol, "create") != 0))
			return intake_bad(op, "unknown_senders: refuse or create");
		json_object_set(p->settings, "unknown_senders", v);
	}
	if ((v = json_object_get(in, "unknown_customer_id")) != NULL) {
		if (json_is_null(v)) {
			json_object_del(p->settings, "unknown_customer_id");
		} else {
			if (!json_is_integer(v) || json_integer_value(v) < 1)
				return intake_bad(op, "unknown_customer_id: the id of a customer");
			bw_err e = file_row_exists(op, module_find("customers"), json_integer_value(v));
			if (e == BW_ERR_NOTFOUND) {
				op_clear(op);
				return intake_bad(op, "unknown_customer_id: no such customer");
			}
			if (e != BW_OK)
				return e;
			json_object_set(p->settings, "unknown_customer_id", v);
		}
	}
	if ((v = json_object_get(in, "trusted_authserv_id")) != NULL) {
		const char *id = json_string_value(v);
		if (json_is_null(v))
			json_object_del(p->settings, "trusted_authserv_id");
		else if (id == NULL || id[0] == '\0' || strlen(id) > 253 ||
			 strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") !=
			     strlen(id))
			return intake_bad(op, "trusted_authserv_id: the host name your mail server "
					      "writes in Authentication-Results");
		else
			json_object_set(p->settings, "trusted_authserv_id", v);
	}
	const char *pol = intake_str(p->settings, "unknown_senders");
	if (pol != NULL && strcmp(pol, "create") == 0 &&
	    json_object_get(p->settings, "unknown_customer_id") == NULL)
		return intake_bad(op, "unknown_senders: create needs unknown_customer_id, the customer "
				      "their tickets are opened under");
	return BW_OK;
}

static bw_err
intake_put_check(struct op *op, json_t *in, const struct intake_stored *st, struct intake_put *p)
{
	static const char *const known[] = {"enabled",
					    "host",
					    "port",
					    "security",
					    "username",
					    "password",
					    "mailbox",
					    "unknown_senders",
					    "unknown_customer_id",
					    "trusted_authserv_id",
					    NULL};
	bw_err e = op_known_fields(op, in, known);
	if (e != BW_OK)
		return e;
	/*
	 * The mailbox and whom it trusts decide whose mail counts as a
	 * contact's (and lands on their tickets): as strict as the mail settings.
	 */
	if ((e = rbac_may_grant_all(op, "the support mailbox decides whose mail counts as a "
					"contact's: only someone who holds every permission (\"*\") "
					"may change it")) != BW_OK)
		return e;
	if ((p->settings = json_deep_copy(st->settings)) == NULL)
		return BW_ERR_NOMEM;
	if ((e = intake_put_server(op, in, p)) != BW_OK || (e = intake_put_policy(op, in, p)) != BW_OK)
		return e;
	json_t *pw = json_object_get(in, "password"), *en = json_object_get(in, "enabled");
	if (pw != NULL) {
		if (!json_is_null(pw) &&
		    (!json_is_string(pw) || !notify_plain_ok(json_string_value(pw), 1024)))
			return intake_bad(op, "password: at most 1024 bytes");
		p->password_change = 1;
		p->password = json_is_string(pw) && json_string_length(pw) > 0 ? json_string_value(pw)
									      : NULL;
	} else if (st->has_password) {
		/* A password is only ever sent to the server and user it was given for. */
		static const char *const bound[] = {"host", "port", "security", "username"};
		for (size_t i = 0; i < BW_ARRAY_LEN(bound); i++)
			if (!json_equal(json_object_get(st->settings, bound[i]),
					json_object_get(p->settings, bound[i])) &&
			    !(json_object_get(st->settings, bound[i]) == NULL &&
			      json_object_get(p->settings, bound[i]) == NULL))
				p->password_change = 1;
	}
	if (en != NULL && !json_is_boolean(en))
		return intake_bad(op, "enabled: true or false");
	p->enabled = en != NULL ? json_is_true(en) : st->enabled;
	int will_have_pw = p->password_change ? p->password != NULL : st->has_password;
	if (p->enabled && (intake_str(p->settings, "host") == NULL ||
			   intake_str(p->settings, "username") == NULL || !will_have_pw))
		return intake_bad(op, "enabled: the mailbox needs host, username and password first");
	p->before = json_deep_copy(st->settings);
	p->after = json_deep_copy(p->settings);
	if (p->before == NULL || p->after == NULL)
		return BW_ERR_NOMEM;
	json_object_set_new(p->before, "enabled", json_boolean(st->enabled));
	json_object_set_new(p->after, "enabled", json_boolean(p->enabled));
	if (p->password_change)
		json_object_set_new(p->after, "password_changed", json_true());
	return BW_OK;
}

static bw_err
intake_put_tx(struct op *op, void *arg)
{
	struct intake_put *p = arg;
	char *text = json_dumps(p->settings, JSON_COMPACT | JSON_SORT_KEYS);
	bw_err e = text != NULL ? BW_OK : BW_ERR_NOMEM;
	if (e == BW_OK)
		/* A new server or mailbox is read from its start; the claims keep what was taken. */
		e = DB_RUN(op->d,
			   "UPDATE mailbox_settings SET settings = ?, enabled = ?, next_poll_at = 0,"
			   " uidvalidity = 0, next_uid = 1, last_error = '', updated_at = ? WHERE id = 1",
			   DB_TEXT(text), DB_INT(p->enabled), DB_INT(intake_now()));
	if (e == BW_OK && p->password_change)
		e = notify_seal_setting(op, "mailbox_settings", "password", p->password);
	if (e == BW_OK)
		e = audit_op(op, "mailbox", 1, "settings_update", p->before, p->after);
	free(text);
	return e;
}

bw_err
intake_settings_put(struct op *op, json_t *in, json_t **out)
{
	struct intake_stored st;
	struct intake_put p = {0};
	*out = NULL;
	bw_err e = intake_stored_read(op, 0, &st);
	if (e == BW_OK)
		e = intake_put_check(op, in, &st, &p);
	if (e == BW_OK)
		e = op_tx(op, intake_put_tx, &p);
	intake_stored_clear(&st);
	json_decref(p.settings);
	json_decref(p.before);
	json_decref(p.after);
	if (e == BW_OK)
		e = intake_settings_get(op, out);
	return e;
}

static bw_err
intake_poll_soon_tx(struct op *op, void *arg)
{
	(void)arg;
	bw_err e = DB_RUN(op->d, "UPDATE mailbox_settings SET next_poll_at = 0 WHERE id = ?",
			  DB_INT(1));
	json_t *after = json_object();
	if (e == BW_OK)
		e = after != NULL ? audit_op(op, "mailbox", 1, "poll", NULL, after) : BW_ERR_NOMEM;
	json_decref(after);
	return e;
}

bw_err
intake_poll_soon(struct op *op)
{
	return op_tx(op, intake_poll_soon_tx, NULL);
}

/* --- the log ------------------------------------------------------------------------ */

bw_err
intake_get(struct op *op, int64_t id, json_t **out)
{
	db *d;
	db_stmt *s = NULL;
	int row = 0;
	*out = NULL;
	bw_err e = op_db(op, &d);
	if (e == BW_OK)
		e = db_prepare(d,
			       "SELECT outcome, reason, verified, ticket_id, comment_id, size, created_at"
			       " FROM mail_inbound WHERE id = ?",
			       &s);
	if (e == BW_OK && (e = db_bind_int(s, 1, id)) == BW_OK && (e = db_step(s, &row)) == BW_OK &&
	    row) {
		const char *why = db_col_text(s, 1);
		char created[32];
		util_time_rfc3339(db_col_int(s, 6), created);
		int64_t tid = db_col_int(s, 3), cid = db_col_int(s, 4);
		*out = json_pack("{s:I, s:s, s:s?, s:b, s:o, s:o, s:I, s:s}", "id", (json_int_t)id,
				 "outcome", db_col_text(s, 0) ? db_col_text(s, 0) : "", "reason",
				 why != NULL && why[0] ? why : NULL, "verified", (int)db_col_int(s, 2),
				 "ticket_id", tid > 0 ? json_integer(tid) : json_null(), "comment_id",
				 cid > 0 ? json_integer(cid) : json_null(), "size",
				 (json_int_t)db_col_int(s, 5), "created_at", created);
		if (*out == NULL)
			e = BW_ERR_NOMEM;
	} else if (e == BW_OK) {
		e = op_fail(op, BW_ERR_NOTFOUND, "no such message");
	}
	db_finalize(s);
	return e;
}

/* --- taking one message ------------------------------------------------------------------ */

/* What is known of one message while it is taken. */
struct intake_msg {
	char key[64]; /* "<mailbox hash>:<uidvalidity>:<uid>" */
	char message_hash[65];             /* SHA-256 of its Message-ID, or "" */
	char sender_hash[65];              /* HMAC of its folded From address, or "" */
	int64_t size;
	int verified;
	/* what the claim writes */
	const char *outcome, *reason;
};

/*
 * The claim of the message being taken, written first in the transaction
 * that makes its ticket or comment (op->tx_begin, which takes no
 * argument: one job runs on a thread at a time, so the thread holds it).
 */
static _Thread_local const struct intake_msg *intake_claiming;

static bw_err
intake_claim(struct op *op, const struct intake_msg *m)
{
	int64_t id = 0;
	return DB_INSERT(op->d, &id,
			 "INSERT INTO mail_inbound (msg_key, message_hash, sender_hash, outcome, reason,"
			 " verified, ticket_id, comment_id, size, created_at)"
			 " VALUES (?, ?, ?, ?, ?, ?, 0, 0, ?, ?)",
			 DB_TEXT(m->key), DB_TEXT(m->message_hash), DB_TEXT(m->sender_hash),
			 DB_TEXT(m->outcome), DB_TEXT(m->reason != NULL ? m->reason : ""),
			 DB_INT(m->verified), DB_INT(m->size), DB_INT(intake_now()));
}

static bw_err
intake_claim_begin(struct op *op)
{
	return intake_claiming != NULL ? intake_claim(op, intake_claiming) : BW_OK;
}

static bw_err
intake_claim_tx(struct op *op, void *arg)
{
	return intake_claim(op, arg);
}

/* A message not made a ticket of: its claim alone, with why. A claim already there is fine. */
static bw_err
intake_note(struct op *op, struct intake_msg *m, const char *outcome, const char *reason)
{
	m->outcome = outcome;
	m->reason = reason;
	bw_err e = op_tx(op, intake_claim_tx, m);
	if (e == BW_ERR_CONFLICT) {
		op_clear(op);
		e = BW_OK;
	}
	if (e == BW_OK)
		log_info("tenant %s: message %s %s: %s", op->tn.slug, m->key, outcome, reason);
	return e;
}

static void
intake_sha256_hex(const char *s, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned n = 0;
	out[0] = '\0';
	if (EVP_Digest(s, strlen(s), md, &n, EVP_sha256(), NULL) == 1 && n == 32)
		util_hex(md, 32, out);
}

/* HMAC of the folded sender under the tenant's key (mail_settings' mac_key), hex. */
static bw_err
intake_sender_hash(struct op *op, const char *folded, int verified, char out[65])
{
	unsigned char key[32], mac[HMAC_SHA256_LEN];
	char *what = pool_printf(op->pool, "intake-sender:%c:%s", verified ? 'v' : 'u', folded);
	db *d;
	bw_err e = what != NULL ? op_db(op, &d) : BW_ERR_NOMEM;
	if (e == BW_OK)
		e = field_tenant_key(op->ten, &op->tn, d, "mail_settings", key, sizeof(key));
	if (e == BW_OK)
		e = mac_sha256(key, sizeof(key), (const unsigned char *)what, strlen(what), mac);
	crypto_wipe(key, sizeof(key));
	if (e == BW_OK)
		util_hex(mac, sizeof(mac), out);
	return e;
}

/* s cut to at most max bytes, on a UTF-8 boundary, in the pool. */
static char *
intake_cut(struct op *op, const char *s, size_t max, int *cut)
{
	size_t n = strlen(s);
	*cut = n > max;
	if (n > max) {
		n = max;
		while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
			n--;
	}
	return pool_printf(op->pool, "%.*s", (int)n, s);
}

/* Whether addr (folded) is one of Bulwark's own: the host's sender, the tenant's, the mailbox. */
static bw_err
intake_own_address(struct op *op, const char *folded, json_t *mailbox, int *own)
{
	struct email_addr a;
	const char *why;
	json_t *ms = NULL;
	db *d;
	*own = 0;
	const char *cands[4] = {notify_host_from(), intake_str(mailbox, "username"), NULL, NULL};
	bw_err e = op_db(op, &d);
	if (e != BW_OK)
		return e;
	db_stmt *s = NULL;
	int row = 0;
	if ((e = db_prepare(d, "SELECT settings FROM mail_settings WHERE id = 1", &s)) == BW_OK &&
	    (e = db_step(s, &row)) == BW_OK && row && db_col_text(s, 0) != NULL)
		ms = json_loads(db_col_text(s, 0), 0, NULL);
	db_finalize(s);
	cands[2] = intake_str(ms, "from");
	cands[3] = intake_str(ms, "reply_to");
	for (size_t i = 0; e == BW_OK && i < BW_ARRAY_LEN(cands); i++)
		if (cands[i] != NULL && email_normalize(cands[i], EMAIL_ALLOW_IDN, &a, &why) == BW_OK &&
		    strcmp(a.key, folded) == 0)
			*own = 1;
	json_decref(ms);
	return e;
}

/* The ticket an answer refers to by the ids it names, or 0. */
static bw_err
intake_thread_by_ids(struct op *op, const struct mail_in *in, int64_t *ticket)
{
	const char *ids[MAIL_IN_REFS_MAX + 1];
	size_t n = 0;
	bw_err e = BW_OK;
	*ticket = 0;
	if (in->in_reply_to != NULL)
		ids[n++] = in->in_reply_to;
	for (size_t i = in->nrefs; i > 0; i--) /* the newest reference first */
		ids[n++] = in->references[i - 1];
	for (size_t i = 0; e == BW_OK && *ticket == 0 && i < n; i++) {
		char h[65];
		e = DB_QUERY_INT(op->d, ticket,
				 "SELECT ticket_id FROM mail_outbox WHERE message_id = ? AND ticket_id > 0"
				 " ORDER BY id DESC LIMIT 1",
				 DB_TEXT(ids[i]));
		intake_sha256_hex(ids[i], h);
		if (e == BW_OK && *ticket == 0 && h[0] != '\0')
			e = DB_QUERY_INT(op->d, ticket,
					 "SELECT ticket_id FROM mail_inbound WHERE message_hash = ? AND"
					 " ticket_id > 0 ORDER BY id DESC LIMIT 1",
					 DB_TEXT(h));
	}
	return e;
}

/* The ticket number a subject names, "[#123]", or 0. */
static int64_t
intake_thread_by_subject(const char *subject)
{
	for (const char *p = strstr(subject, "[#"); p != NULL; p = strstr(p + 2, "[#")) {
		char *end = NULL;
		long long v = strtoll(p + 2, &end, 10);
		if (end != p + 2 && *end == ']' && v > 0 && p[2] >= '0' && p[2] <= '9')
			return (int64_t)v;
	}
	return 0;
}

/* The fields a new ticket or comment gets, and what becomes of the message. */
struct intake_plan {
	int64_t contact_id, customer_id, ticket_id; /* ticket_id: a comment on it */
	const char *subject, *body;
};

/* Where the sender's mail goes; *plan's outcome NULL with m->reason set when nowhere. */
static bw_err
intake_route(struct op *op, const struct mail_in *in, json_t *mailbox, struct intake_msg *m,
	     struct intake_plan *plan, const char **refusal)
{
	const struct module_desc *contacts = module_find("contacts"), *tickets = module_find("tickets");
	const struct field_desc *f = blind_field("contacts", "email");
	int64_t ids[BLIND_MATCHES_MAX];
	size_t n = 0;
	json_t *contact = NULL, *ticket = NULL;
	*refusal = NULL;
	memset(plan, 0, sizeof(*plan));
	bw_err e = contacts != NULL && f != NULL ? BW_OK : BW_ERR_INTERNAL;
	if (e == BW_OK)
		e = blind_lookup(op->d, tenancy_keyring(op->ten), op->tn.slug, contacts, f,
				 in->from_addr, ids, &n);
	/* One address, several contacts (of several customers): nobody can say whose it is. */
	if (e == BW_OK && n == 1 && (e = module_get(op, contacts, ids[0], &contact)) == BW_ERR_NOTFOUND) {
		op_clear(op);
		e = BW_OK;
	}
	if (e != BW_OK)
		goto out;
	if (contact != NULL && m->verified) {
		plan->contact_id = ids[0];
		plan->customer_id = (int64_t)json_integer_value(json_object_get(contact, "customer_id"));
		int64_t tid = 0;
		if ((e = intake_thread_by_ids(op, in, &tid)) != BW_OK)
			goto out;
		if (tid == 0)
			tid = intake_thread_by_subject(in->subject);
		if (tid > 0 && (e = module_get(op, tickets, tid, &ticket)) == BW_ERR_NOTFOUND) {
			op_clear(op);
			e = BW_OK;
		}
		if (e != BW_OK)
			goto out;
		/* An answer lands on a ticket of the sender's own customer only. */
		if (ticket != NULL &&
		    json_integer_value(json_object_get(ticket, "customer_id")) == plan->customer_id)
			plan->ticket_id = tid;
		goto out;
	}
	/* An unknown sender, or a contact's address that was not verified: the policy. */
	const char *pol = intake_str(mailbox, "unknown_senders");
	json_t *cust = json_object_get(mailbox, "unknown_customer_id");
	if (pol == NULL || strcmp(pol, "create") != 0 || !json_is_integer(cust)) {
		*refusal = contact != NULL ? "the sender is a contact but was not verified (no DMARC or "
					     "aligned DKIM pass from the trusted server)"
					   : "unknown sender";
		goto out;
	}
	plan->customer_id = (int64_t)json_integer_value(cust);
out:
	json_decref(contact);
	json_decref(ticket);
	return e;
}

/* One attachment through every check of an upload; why it was refused into *why (or NULL). */
static bw_err
intake_attach(struct op *op, const struct module_desc *mod, int64_t row,
	      const struct mail_in_part *p, const char **why)
{
	struct file_upload *u = NULL;
	json_t *file = NULL;
	*why = NULL;
	bw_err e = file_upload_start(op, mod, row, p->len, &u);
	if (e == BW_OK)
		e = file_upload_name(u, p->filename, strlen(p->filename), p->content_type);
	for (size_t off = 0; e == BW_OK && off < p->len; off += 65536)
		e = file_upload_data(u, p->data + off, p->len - off < 65536 ? p->len - off : 65536);
	if (e == BW_OK)
		e = file_upload_finish(u, &file);
	file_upload_free(u);
	json_decref(file);
	if (e != BW_OK) {
		*why = pool_printf(op->pool, "%s", op->err_msg != NULL ? op->err_msg : bw_strerror(e));
		op_clear(op);
		/* The database or the scanner being away is worth another try; a refusal is not. */
		if (e == BW_ERR_DB || e == BW_ERR_NOMEM)
			return e;
	}
	return BW_OK;
}

/* The attachments of the message onto what was made of it; refusals noted on the ticket. */
static bw_err
intake_attachments(struct op *op, const struct mail_in *in, int64_t ticket_id, int64_t comment_id)
{
	const struct module_desc *mod = module_find(comment_id > 0 ? "ticket_comments" : "tickets");
	int64_t row = comment_id > 0 ? comment_id : ticket_id;
	struct buf refused;
	bw_err e = BW_OK;
	int cut = 0;
	buf_init(&refused, 16384);
	for (size_t i = 0; e == BW_OK && i < in->nparts; i++) {
		const char *why = NULL;
		/* A list too long for the note is cut (buf's maximum): it still says enough. */
		if ((e = intake_attach(op, mod, row, &in->parts[i], &why)) == BW_OK && why != NULL &&
		    buf_printf(&refused, "- %s: %s\n",
			       intake_cut(op, in->parts[i].filename, 200, &cut),
			       intake_cut(op, why, 300, &cut)) != BW_OK)
			break;
	}
	if (e == BW_OK && in->nskipped > 0 &&
	    buf_printf(&refused, "- %zu more attachments: more than %d in one message\n",
		       in->nskipped, MAIL_IN_PARTS_MAX) != BW_OK)
		log_info("tenant %s: the note of refused attachments is cut", op->tn.slug);
	if (e == BW_OK && refused.len > 0) {
		json_t *row_out = NULL;
		json_t *c = json_pack("{s:I, s:s+, s:b}", "ticket_id", (json_int_t)ticket_id, "body",
				      "Attachments of the e-mail that were not taken:\n",
				      buf_ptr(&refused), "internal", 1);
		e = c != NULL ? module_create(op, module_find("ticket_comments"), c, &row_out)
			      : BW_ERR_NOMEM;
		json_decref(c);
		json_decref(row_out);
	}
	buf_free(&refused);
	return e;
}

/* A ticket or a comment of the message, its claim in the same transaction. */
static bw_err
intake_make(struct op *op, const struct mail_in *in, struct intake_msg *m,
	    const struct intake_plan *plan)
{
	int cut_s = 0, cut_b = 0, cut_n = 0;
	const char *subject = intake_cut(op, in->subject[0] ? in->subject : "(no subject)",
					 INTAKE_SUBJECT_MAX, &cut_s);
	const char *head = "";
	if (plan->contact_id == 0) {
		/* Who wrote, for the technician: there is no contact to show it. */
		const char *name = in->from_name != NULL ? intake_cut(op, in->from_name, 200, &cut_n)
							 : NULL;
		head = pool_printf(op->pool, "From: %s%s%s%s (%s)\n\n", name != NULL ? name : "",
				   name != NULL ? " <" : "", in->from_addr, name != NULL ? ">" : "",
				   m->verified ? "not a contact" : "not verified");
	}
	/* The text gets what the field's 20,000 bytes leave after the head and the cut's note. */
	const char *text = head != NULL ? intake_cut(op, in->text, INTAKE_BODY_MAX - strlen(head),
						     &cut_b)
					: NULL;
	if (subject == NULL || text == NULL)
		return BW_ERR_NOMEM;
	const char *body = pool_printf(op->pool, "%s%s", head, text);
	if (body != NULL && cut_b)
		body = pool_printf(op->pool, "%s\n\n[The rest of the message was cut: it was longer "
					     "than %d bytes.]",
				   body, INTAKE_BODY_MAX);
	if (body == NULL)
		return BW_ERR_NOMEM;
	json_t *in_row, *row = NULL;
	const struct module_desc *mod;
	if (plan->ticket_id > 0) {
		mod = module_find("ticket_comments");
		in_row = json_pack("{s:I, s:s, s:b}", "ticket_id", (json_int_t)plan->ticket_id, "body",
				   body, "internal", 0);
		m->outcome = "comment";
	} else {
		mod = module_find("tickets");
		in_row = json_pack("{s:I, s:s, s:s}", "customer_id", (json_int_t)plan->customer_id,
				   "subject", subject, "description", body);
		if (in_row != NULL && plan->contact_id > 0)
			json_object_set_new(in_row, "contact_id", json_integer(plan->contact_id));
		m->outcome = "ticket";
	}
	m->reason = "";
	if (in_row == NULL)
		return BW_ERR_NOMEM;
	intake_claiming = m;
	bw_err (*saved)(struct op *) = op->tx_begin;
	op->tx_begin = intake_claim_begin;
	bw_err e = module_create(op, mod, in_row, &row);
	op->tx_begin = saved;
	intake_claiming = NULL;
	json_decref(in_row);
	if (e != BW_OK) {
		json_decref(row);
		return e;
	}
	int64_t id = (int64_t)json_integer_value(json_object_get(row, "id"));
	json_decref(row);
	int64_t tid = plan->ticket_id > 0 ? plan->ticket_id : id, cid = plan->ticket_id > 0 ? id : 0;
	e = DB_RUN(op->d, "UPDATE mail_inbound SET ticket_id = ?, comment_id = ? WHERE msg_key = ?",
		   DB_INT(tid), DB_INT(cid), DB_TEXT(m->key));
	log_info("tenant %s: message %s made %s %lld", op->tn.slug, m->key, m->outcome,
		 (long long)id);
	if (e == BW_OK)
		e = intake_attachments(op, in, tid, cid);
	return e;
}

/* Whether the message at key has been taken already (by this server or another). */
static bw_err
intake_taken(struct op *op, const char *key, int *taken)
{
	int64_t n = 0;
	bw_err e = DB_QUERY_INT(op->d, &n, "SELECT COUNT(*) FROM mail_inbound WHERE msg_key = ?",
				DB_TEXT(key));
	*taken = n > 0;
	return e;
}

/* Message raw (len bytes) at key: taken apart and made what it should be. */
static bw_err
intake_take(struct op *op, json_t *mailbox, struct intake_msg *m, const char *raw, size_t len)
{
	struct mail_in *in = NULL;
	const char *why = NULL;
	struct email_addr from;
	bw_err e = mail_parse(raw, len, &in, &why);
	if (e == BW_ERR_INVALID)
		return intake_note(op, m, "refused",
				   pool_printf(op->pool, "not a message that can be read: %s",
					       why != NULL ? why : "malformed"));
	if (e != BW_OK)
		return e;
	if (in->message_id != NULL)
		intake_sha256_hex(in->message_id, m->message_hash);
	int own = 0;
	int64_t recent = 0, dup = 0;
	if (email_normalize(in->from_addr, EMAIL_ALLOW_IDN, &from, &why) != BW_OK) {
		e = intake_note(op, m, "refused", "the sender is not an e-mail address");
		goto out;
	}
	/*
	 * Verified first: the per-sender count keeps verified and unverified
	 * mail of one address apart, so that a flood in a contact's name that
	 * nobody vouched for cannot use up the contact's own hour.
	 */
	m->verified = mail_auth_verified(in, intake_str(mailbox, "trusted_authserv_id"));
	if ((e = intake_sender_hash(op, from.key, m->verified, m->sender_hash)) != BW_OK)
		goto out;
	if (in->loop != NULL) {
		e = intake_note(op, m, "ignored",
				pool_printf(op->pool, "an automatic message (%s)", in->loop));
		goto out;
	}
	if ((e = intake_own_address(op, from.key, mailbox, &own)) != BW_OK)
		goto out;
	if (own) {
		e = intake_note(op, m, "ignored", "from Bulwark's own address (a loop)");
		goto out;
	}
	if ((e = DB_QUERY_INT(op->d, &recent,
			      "SELECT COUNT(*) FROM mail_inbound WHERE sender_hash = ? AND"
			      " created_at > ? AND outcome IN ('ticket', 'comment')",
			      DB_TEXT(m->sender_hash), DB_INT(intake_now() - INTAKE_WINDOW))) != BW_OK)
		goto out;
	if (recent >= intake_host.per_sender_hour) {
		e = intake_note(op, m, "ignored",
				pool_printf(op->pool, "more than %ld messages from this sender in an hour",
					    intake_host.per_sender_hour));
		goto out;
	}
	if (m->message_hash[0] != '\0' &&
	    (e = DB_QUERY_INT(op->d, &dup,
			      "SELECT COUNT(*) FROM mail_inbound WHERE message_hash = ? AND"
			      " outcome IN ('ticket', 'comment')",
			      DB_TEXT(m->message_hash))) != BW_OK)
		goto out;
	if (dup > 0) {
		e = intake_note(op, m, "ignored", "taken before (the same Message-ID)");
		goto out;
	}
	struct intake_plan plan;
	const char *refusal = NULL;
	if ((e = intake_route(op, in, mailbox, m, &plan, &refusal)) != BW_OK)
		goto out;
	if (refusal != NULL) {
		e = intake_note(op, m, "refused", refusal);
		goto out;
	}
	if (in->nparts > 0) {
		/*
		 * Attachments are scanned or not taken: with the scanner away the
		 * message waits in the mailbox for the next read, nothing lost.
		 */
		char why_c[128];
		if (clamd_ping(op->cfg->files_clamd_socket, op->cfg->files_clamd_timeout * 1000, why_c,
			       sizeof(why_c)) != BW_OK) {
			log_warn("tenant %s: message %s waits: the virus scanner is unavailable (%s)",
				 op->tn.slug, m->key, why_c);
			m->outcome = "waiting"; /* not claimed, not flagged: a later read takes it */
			goto out;
		}
	}
	e = intake_make(op, in, m, &plan);
	if (e == BW_ERR_CONFLICT) {
		int taken = 0;
		bw_err e2 = intake_taken(op, m->key, &taken);
		if (e2 == BW_OK && taken) {
			/* Another app server took it in the meantime. */
			op_clear(op);
			e = BW_OK;
		}
	} else if (e == BW_ERR_INVALID || e == BW_ERR_NOTFOUND || e == BW_ERR_DENIED) {
		/* The module would not take it (a customer gone, a field refused): noted, not retried. */
		const char *msg = pool_printf(op->pool, "not made a ticket: %s",
					      op->err_msg != NULL ? op->err_msg : bw_strerror(e));
		op_clear(op);
		e = intake_note(op, m, "refused", msg);
	}
out:
	mail_in_free(in);
	return e;
}

/* --- the job and the tick ------------------------------------------------------------- */

static bw_err
intake_state(struct op *op, const char *sql, const struct db_arg *args, size_t n)
{
	db *d;
	bw_err e = op_db(op, &d);
	return e == BW_OK ? db_run(d, sql, args, n) : e;
}
#define INTAKE_STATE(op, sql, ...) intake_state((op), (sql), DB_ARGS(__VA_ARGS__))

/* The mailbox the settings name, for mail/inbound.h. */
static void
intake_server(const struct intake_stored *st, struct mail_imap *s)
{
	const char *sec = intake_str(st->settings, "security");
	memset(s, 0, sizeof(*s));
	s->host = intake_str(st->settings, "host");
	s->security = sec == NULL || strcmp(sec, "tls") == 0 ? MAIL_TLS_IMPLICIT
		      : strcmp(sec, "starttls") == 0	       ? MAIL_TLS_STARTTLS
							       : MAIL_TLS_NONE;
	json_t *port = json_object_get(st->settings, "port");
	s->port = json_is_integer(port) ? (long)json_integer_value(port)
		  : s->security == MAIL_TLS_IMPLICIT ? 993
						     : 143;
	s->username = intake_str(st->settings, "username");
	s->password = st->password;
	s->mailbox = intake_str(st->settings, "mailbox") ? intake_str(st->settings, "mailbox")
							  : "INBOX";
	s->ca_file = intake_host.ca_file[0] ? intake_host.ca_file : NULL;
	s->connect_timeout_ms = intake_host.connect_timeout_ms;
	s->timeout_ms = intake_host.timeout_ms;
	s->public_only = 1;
	s->allow_loopback = intake_host.allow_loopback;
}

/* Take the messages of the open mailbox c after next_uid; the last error's text into reply. */
static bw_err
intake_read(struct op *op, const struct job *j, struct mail_imap_conn *c, json_t *mailbox,
	    uint64_t uidvalidity, uint64_t next_uid, char reply[MAIL_REPLY_MAX], int *full, int *held)
{
	uint64_t uids[INTAKE_BATCH];
	size_t n = 0;
	char box[17];
	*full = 0;
	*held = 0;
	/*
	 * Which mailbox: UIDs and UIDVALIDITY are only unique within one, and
	 * the settings may name another server or folder later.
	 */
	const char *ident = pool_printf(op->pool, "%s\n%lld\n%s\n%s", intake_str(mailbox, "host"),
					(long long)json_integer_value(json_object_get(mailbox, "port")),
					intake_str(mailbox, "username"),
					intake_str(mailbox, "mailbox") ? intake_str(mailbox, "mailbox")
								       : "INBOX");
	char hex[65];
	if (ident == NULL)
		return BW_ERR_NOMEM;
	intake_sha256_hex(ident, hex);
	snprintf(box, sizeof(box), "%.16s", hex);
	bw_err e = mail_imap_search(c, next_uid, INTAKE_KEYWORD, uids, INTAKE_BATCH, &n, reply);
	for (size_t i = 0; e == BW_OK && i < n; i++) {
		if (j->stopping != NULL && *j->stopping)
			break;
		struct intake_msg m = {.reason = ""};
		uint64_t size = 0;
		char *raw = NULL;
		size_t len = 0;
		int taken = 0;
		snprintf(m.key, sizeof(m.key), "%s:%llu:%llu", box, (unsigned long long)uidvalidity,
			 (unsigned long long)uids[i]);
		if ((e = intake_taken(op, m.key, &taken)) != BW_OK)
			break;
		if (!taken) {
			e = mail_imap_size(c, uids[i], &size, reply);
			m.size = (int64_t)size;
			if (e == BW_OK && size > (uint64_t)intake_host.max_bytes)
				e = BW_ERR_TOO_LARGE;
			if (e == BW_OK)
				e = mail_imap_fetch(c, uids[i], (size_t)intake_host.max_bytes, &raw, &len,
						    reply);
			if (e == BW_ERR_TOO_LARGE)
				e = intake_note(op, &m, "refused",
						pool_printf(op->pool,
							    "larger than the limit of %ld bytes",
							    intake_host.max_bytes));
			else if (e == BW_OK)
				e = intake_take(op, mailbox, &m, raw, len);
			if (raw != NULL) {
				crypto_wipe(raw, len);
				free(raw);
			}
			if (e == BW_ERR_NOTFOUND) {
				e = BW_OK; /* deleted from the mailbox meanwhile */
				op_clear(op);
			}
		}
		if (e == BW_OK && m.outcome != NULL && strcmp(m.outcome, "waiting") == 0) {
			/* Left as it is; the ones after it go on, and the next read starts here. */
			*held = 1;
			continue;
		}
		if (e == BW_OK)
			e = mail_imap_flag(c, uids[i], INTAKE_KEYWORD, reply);
		if (e == BW_OK && !*held)
			e = INTAKE_STATE(op, "UPDATE mailbox_settings SET next_uid = ? WHERE id = 1",
					 DB_INT((int64_t)uids[i] + 1));
	}
	*full = e == BW_OK && n == INTAKE_BATCH;
	return e;
}

static bw_err
intake_fetch_run(struct op *op, const struct job *j, struct job_retry *retry)
{
	struct intake_stored st;
	struct mail_imap s;
	struct mail_imap_conn *c = NULL;
	char reply[MAIL_REPLY_MAX] = "";
	uint64_t uidvalidity = 0;
	int full = 0, held = 0;
	bw_err e = intake_stored_read(op, 1, &st);
	if (e != BW_OK || !st.enabled || st.password == NULL)
		goto out;
	intake_server(&st, &s);
	if ((e = mail_imap_open(&s, &c, &uidvalidity, reply)) == BW_OK) {
		uint64_t next = st.next_uid > 0 ? (uint64_t)st.next_uid : 1;
		if ((int64_t)uidvalidity != st.uidvalidity) {
			/* A new mailbox, or its UIDs renumbered: read from the start (claims stay). */
			next = 1;
			e = INTAKE_STATE(op,
					 "UPDATE mailbox_settings SET uidvalidity = ?, next_uid = 1"
					 " WHERE id = 1",
					 DB_INT((int64_t)uidvalidity));
		}
		if (e == BW_OK)
			e = intake_read(op, j, c, st.settings, uidvalidity, next, reply, &full, &held);
	}
	mail_imap_close(c);
	if (e == BW_ERR_UNAVAILABLE || e == BW_ERR_INVALID || e == BW_ERR_TOO_LARGE) {
		/* The mailbox's fault: said in the settings, tried again at the next poll. */
		log_warn("tenant %s: the support mailbox cannot be read: %s", op->tn.slug, reply);
		op_clear(op);
		(void)INTAKE_STATE(op, "UPDATE mailbox_settings SET last_error = ?, last_poll_at = ?"
				       " WHERE id = 1",
				   DB_TEXT(reply[0] ? reply : bw_strerror(e)), DB_INT(intake_now()));
		e = BW_OK;
	} else if (e == BW_OK) {
		e = INTAKE_STATE(op,
				 "UPDATE mailbox_settings SET last_error = ?, last_poll_at = ?,"
				 " next_poll_at = CASE WHEN ? = 1 THEN 0 ELSE next_poll_at END"
				 " WHERE id = 1",
				 DB_TEXT(held ? "a message with attachments waits for the virus scanner"
					      : ""),
				 DB_INT(intake_now()), DB_INT(full));
	}
out:
	intake_stored_clear(&st);
	if (e != BW_OK) {
		retry->permanent = 1; /* the next poll reads again */
		snprintf(retry->error, sizeof(retry->error), "%s",
			 op->err_msg != NULL ? op->err_msg : bw_strerror(e));
	}
	return e;
}

/* Queue the mailbox's read when its time has come and none is waiting (one transaction). */
static bw_err
intake_tick_tx(struct op *op, void *arg)
{
	int *n = arg;
	int64_t now = intake_now(), due = 0, waiting = 0;
	*n = 0;
	bw_err e = DB_QUERY_INT(op->d, &due,
				"SELECT COUNT(*) FROM mailbox_settings WHERE id = 1 AND enabled = 1 AND"
				" next_poll_at <= ?",
				DB_INT(now));
	if (e != BW_OK || due == 0)
		return e;
	if ((e = DB_QUERY_INT(op->d, &waiting,
			      "SELECT COUNT(*) FROM jobs WHERE kind = ? AND state IN ('queued', 'running')",
			      DB_TEXT(INTAKE_JOB_FETCH))) != BW_OK)
		return e;
	if ((e = DB_RUN(op->d, "UPDATE mailbox_settings SET next_poll_at = ? WHERE id = 1",
			DB_INT(now + intake_host.poll_s))) != BW_OK ||
	    waiting > 0)
		return e;
	json_t *payload = json_object();
	e = payload != NULL ? job_enqueue(op, INTAKE_JOB_FETCH, 1, "mailbox", payload, 0, NULL)
			    : BW_ERR_NOMEM;
	json_decref(payload);
	if (e == BW_OK)
		*n = 1;
	return e;
}

static bw_err
intake_tick(struct op *op, int *n)
{
	db *d;
	int64_t due = 0;
	*n = 0;
	/* Read first, outside a transaction: on SQLite one takes the write lock. */
	bw_err e = op_db(op, &d);
	if (e == BW_OK)
		e = DB_QUERY_INT(d, &due,
				 "SELECT COUNT(*) FROM mailbox_settings WHERE id = 1 AND enabled = 1 AND"
				 " next_poll_at <= ?",
				 DB_INT(intake_now()));
	return e == BW_OK && due > 0 ? op_tx(op, intake_tick_tx, n) : e;
}

void
intake_jobs(struct job_kind *kinds, size_t *nk, struct jobs_tick *ticks, size_t *nt)
{
	static const int backoff[] = {60};
	ticks[0] = (struct jobs_tick){"job: support mailbox", 1000, intake_tick};
	*nt = INTAKE_TICKS;
	kinds[0] = (struct job_kind){INTAKE_JOB_FETCH, 1, backoff, 1, 0, intake_fetch_run, NULL};
	*nk = INTAKE_KINDS;
}
