/*
 * mail/inbound: incoming e-mail without a database (docs/email.md
 * "E-mail to ticket"). A message is read from the tenant's mailbox by
 * libcurl's IMAP (imap.c: TLS, a tenant's server only at a public
 * address), then taken apart by GMime (parse.c): the headers threading
 * and loop detection need, the text (an HTML-only body turned into plain
 * text by libxml2's HTML parser: no markup, no scripts, no remote
 * content survive), and the attachments, decoded. src/intake makes
 * tickets and comments of it.
 */
#ifndef BW_MAIL_INBOUND_H
#define BW_MAIL_INBOUND_H

#include <stddef.h>
#include <stdint.h>

#include "../core/core.h"
#include "mail.h"

/* --- parse.c: one message taken apart ------------------------------------------------- */

#define MAIL_IN_REFS_MAX 20      /* ids kept of References (the last ones) */
#define MAIL_IN_PARTS_MAX 20     /* attachments kept; more are counted in nskipped */
#define MAIL_IN_AUTH_MAX 8       /* Authentication-Results headers kept, topmost first */

struct mail_in_part {
	char *filename;     /* as the sender named it (decoded RFC 2047/2231), or a made-up "part-N" */
	char *content_type; /* "type/subtype", lower case, as claimed */
	unsigned char *data;
	size_t len; /* decoded bytes */
};

struct mail_in {
	char from_addr[EMAIL_MAX + 1]; /* the From address as written (not folded), "" when none */
	char *from_name;               /* its display name, or NULL */
	char *subject;                 /* decoded, control characters turned into spaces; "" when none */
	char *message_id;              /* with <>, or NULL */
	char *in_reply_to;             /* the first id of In-Reply-To, with <>, or NULL */
	char *references[MAIL_IN_REFS_MAX]; /* ids of References, with <>, in order */
	size_t nrefs;
	/*
	 * Why it is not to be answered or made a ticket of, or NULL: an
	 * auto-reply ("auto-submitted": Auto-Submitted other than "no";
	 * "precedence": Precedence bulk, junk or list; "auto-reply": X-Autoreply,
	 * X-Autorespond, X-Auto-Response-Suppress All/OOF, List-Id), or a bounce
	 * ("bounce": Return-Path <>, From MAILER-DAEMON@ or postmaster@,
	 * Content-Type multipart/report).
	 */
	const char *loop;
	char *auth_results[MAIL_IN_AUTH_MAX]; /* Authentication-Results values, unfolded, topmost first */
	size_t nauth;
	/*
	 * 1 when who wrote it is ambiguous: more than one From, Sender,
	 * Subject, Message-ID, In-Reply-To or References header, or a From of
	 * more than one mailbox (RFC 5322 3.6). A signature may cover another
	 * From than the one read: mail_auth_verified believes none of it.
	 */
	int ambiguous;
	char *text;    /* the body as plain text, UTF-8 (the text/plain part preferred), never NULL */
	int from_html; /* 1 when text was made from an HTML part */
	struct mail_in_part parts[MAIL_IN_PARTS_MAX];
	size_t nparts;
	size_t nskipped; /* attachments beyond MAIL_IN_PARTS_MAX */
};

/*
 * Take raw (len bytes, a whole RFC 5322 message) apart into *out (free
 * with mail_in_free). BW_ERR_INVALID, with a reason in why (client-safe,
 * constant), for what is not a message: no header, no From address, or a
 * MIME structure GMime cannot read. The text is cut at MAIL_TEXT_MAX
 * bytes; text that is not UTF-8 is converted from its declared charset
 * (GMime), invalid bytes replaced.
 */
bw_err mail_parse(const char *raw, size_t len, struct mail_in **out, const char **why) BW_MUST_USE;
void mail_in_free(struct mail_in *m);

/*
 * Plain text of an HTML document (len bytes), malloc'd: libxml2's HTML
 * parser (no network, errors recovered), text nodes only, script, style,
 * head, template, noscript, iframe, object and embed dropped with what
 * they hold, a line break after block elements and <br>, entities
 * decoded. Never NULL but out of memory.
 */
char *mail_html_text(const char *html, size_t len);

/*
 * Whether the topmost Authentication-Results header (RFC 8601) of m was
 * added by authserv_id (the tenant's receiving server) and says the
 * From domain is authenticated: dmarc=pass, or dkim=pass with header.d
 * (or header.i's domain) equal to the From address's domain (ASCII case
 * folded). Headers below the topmost are never believed: anyone can
 * write one into a message; and when one of them also names authserv_id,
 * the server does not remove forged ones, so none is believed. A DMARC
 * result other than a pass for the From domain (header.from required)
 * undoes any DKIM pass. 0 for authserv_id NULL or "", and for an
 * ambiguous message.
 */
int mail_auth_verified(const struct mail_in *m, const char *authserv_id);

/* --- imap.c: the mailbox ---------------------------------------------------------------- */

/* An IMAP server to read a mailbox from. */
struct mail_imap {
	const char *host;
	long port;
	enum mail_tls security; /* MAIL_TLS_IMPLICIT (imaps, 993), STARTTLS (143, required), NONE only to loopback */
	const char *username, *password;
	const char *mailbox; /* "INBOX" */
	const char *ca_file; /* or NULL: the system's CAs */
	long connect_timeout_ms, timeout_ms;
	int public_only, allow_loopback; /* as struct mail_smtp */
};

struct mail_imap_conn;

/*
 * Sign in (one connection for every call after), select the mailbox and
 * read its UIDVALIDITY into *uidvalidity. BW_ERR_UNAVAILABLE for what may
 * pass (no connection, TLS, a timeout), BW_ERR_INVALID for a refusal
 * (credentials, no such mailbox) or settings that are not usable; the
 * server's reply or curl's reason into reply, never the password.
 */
bw_err mail_imap_open(const struct mail_imap *s, struct mail_imap_conn **out,
		      uint64_t *uidvalidity, char reply[MAIL_REPLY_MAX]) BW_MUST_USE;
/*
 * The UIDs of messages at or above from_uid not yet flagged with keyword
 * ("$Bulwark"), ascending, at most max of them into uids, their number
 * into *n.
 */
bw_err mail_imap_search(struct mail_imap_conn *c, uint64_t from_uid, const char *keyword,
			uint64_t *uids, size_t max, size_t *n, char reply[MAIL_REPLY_MAX]) BW_MUST_USE;
/* The size in bytes of message uid (RFC822.SIZE); BW_ERR_NOTFOUND when it is gone. */
bw_err mail_imap_size(struct mail_imap_conn *c, uint64_t uid, uint64_t *size,
		      char reply[MAIL_REPLY_MAX]) BW_MUST_USE;
/*
 * Message uid, whole, malloc'd into *out (*len bytes); BW_ERR_TOO_LARGE
 * when it is longer than max (nothing kept), BW_ERR_NOTFOUND when gone.
 */
bw_err mail_imap_fetch(struct mail_imap_conn *c, uint64_t uid, size_t max, char **out,
		       size_t *len, char reply[MAIL_REPLY_MAX]) BW_MUST_USE;
/* Flag message uid \Seen and keyword: taken. */
bw_err mail_imap_flag(struct mail_imap_conn *c, uint64_t uid, const char *keyword,
		      char reply[MAIL_REPLY_MAX]) BW_MUST_USE;
/* Log out and free; NULL is fine. */
void mail_imap_close(struct mail_imap_conn *c);

#endif
