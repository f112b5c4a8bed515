/*
 * notify: a tenant's outgoing e-mail (docs/email.md). A mail is queued in
 * the transaction of whatever it tells of (a row of mail_outbox, its
 * message sealed, and a mail.send job), then built (src/mail: GMime),
 * signed (DKIM, when the tenant has a key) and submitted over SMTP by the
 * job, outside any request: a slow mail server never holds one up. The
 * server is the tenant's own when it set one, else the host's ([mail]).
 */
#ifndef BW_NOTIFY_H
#define BW_NOTIFY_H

#include <jansson.h>
#include <stdint.h>

#include "../config/config.h"
#include "../jobs/jobs.h"
#include "../jobs/runner.h"
#include "../op/op.h"

#define NOTIFY_JOB_SEND "mail.send"
#define NOTIFY_KINDS 1
#define NOTIFY_TICKS 1

/* One mail to queue; every string borrowed, UTF-8. */
struct notify_mail {
	const char *kind;    /* what it is: "password_reset", "mfa_reset", ... (the log shows it) */
	int64_t user_id;     /* the staff user it is for, or 0 */
	const char *to;      /* the recipient's address */
	const char *to_name; /* or NULL */
	const char *subject;
	const char *text;    /* the text/plain part */
	const char *html;    /* or NULL: text only. User content in it must be escaped (notify_html_escape) */
	const char *auto_submitted; /* or NULL ("auto-generated" for every notice: RFC 3834) */
	int64_t ticket_id; /* the ticket it tells of, or 0: an answer to it is threaded there (src/intake) */
};

/*
 * Queue m in op's current transaction (the caller's op_tx): the outbox row,
 * sealed, and its job. The row's id into *id when not NULL. BW_ERR_INVALID
 * (recorded) for a recipient that is not an address.
 */
bw_err notify_mail(struct op *op, const struct notify_mail *m, int64_t *id) BW_MUST_USE;

/*
 * A notice to a staff user: two paragraphs (plain text, escaped into the
 * HTML part here), marked Auto-Submitted: auto-generated, queued as
 * notify_mail() does.
 */
bw_err notify_notice(struct op *op, const char *kind, int64_t user_id, const char *to,
		     const char *subject, const char *para1, const char *para2) BW_MUST_USE;

/* s with &, <, >, " and ' escaped for HTML, in op's pool (NULL when out of memory). */
char *notify_html_escape(struct op *op, const char *s);

/*
 * One row of the delivery log: id, kind, user_id, to, subject, state
 * (queued, sent, failed), attempts, message_id, last_reply (the server's
 * last answer), created_at, sent_at; never the body. BW_ERR_NOTFOUND.
 */
bw_err notify_get(struct op *op, int64_t id, json_t **out) BW_MUST_USE;

/*
 * The tenant's sender settings (docs/email.md): from, from_name, reply_to,
 * smtp (host, port, security, username, password_set; null: the host's
 * server) and dkim (domain, selector and the DNS record to publish, dns_name
 * and dns_txt; null: not signed), and the host's server for comparison.
 */
bw_err notify_settings_get(struct op *op, json_t **out) BW_MUST_USE;
/*
 * Change them: each member given replaces what was there (null removes
 * it); smtp.password is kept unless given (null or "": removed); a DKIM key
 * is made when dkim is first set or with dkim.new_key. Audited without the
 * password or key. The settings as GET shows them into *out. BW_ERR_INVALID
 * (recorded) for anything malformed, and for security "none" to any server.
 */
bw_err notify_settings_put(struct op *op, json_t *in, json_t **out) BW_MUST_USE;
/* Queue a test mail to `to` (audited); its outbox id into *id. */
bw_err notify_test(struct op *op, const char *to, int64_t *id) BW_MUST_USE;

/*
 * In the transaction of a new session of user uid from client_ip, before
 * its "login" auth event is written: when the user asked for it
 * (notify_signin_pref) and no earlier sign-in came from that address,
 * queue the new_signin notice (how: "password", "single sign-on").
 * Nothing when they did not ask, or have no address.
 */
bw_err notify_signin(struct op *op, int64_t uid, const char *client_ip, const char *how) BW_MUST_USE;
/* The signed-in user's own choice: *on 1 to be told (set: audited). */
bw_err notify_signin_pref_get(struct op *op, int *on) BW_MUST_USE;
bw_err notify_signin_pref_set(struct op *op, int on) BW_MUST_USE;

/*
 * Row 1 of a settings table (mail_settings, mailbox_settings): column set
 * to value sealed with the tenant's key (a column field.c lists), or to
 * NULL for value NULL; in op's transaction.
 */
bw_err notify_seal_setting(struct op *op, const char *table, const char *column,
			   const char *value) BW_MUST_USE;

/* The host's sender address ([mail] from, or no-reply@ the base domain). */
const char *notify_host_from(void);
/* A server name for a setting: a DNS name or an IP address literal, no scheme or port. */
int notify_hostname_ok(const char *h);
/* v is a string of at most max bytes without control characters. */
int notify_plain_ok(const char *v, size_t max);

/* The host's mail settings from cfg (once, at start-up: reads the password file). */
bw_err notify_configure(const struct config *cfg) BW_MUST_USE;
/*
 * The job kinds of this layer into kinds (NOTIFY_KINDS of them) and its
 * tick into ticks (NOTIFY_TICKS): the notices of ticket work, made from the
 * events (docs/email.md "Mails sent today"), each event once (a cursor
 * moved in the notices' own transaction).
 */
void notify_jobs(struct job_kind *kinds, size_t *nk, struct jobs_tick *ticks, size_t *nt);

#endif
