/*
 * mail: outgoing e-mail without a database (docs/email.md, ADR 0020). A
 * message is built by GMime (never by hand: the parts, their encodings,
 * RFC 2047 headers), signed by libopendkim (rsa-sha256, relaxed/relaxed)
 * and submitted by libcurl's SMTP (STARTTLS required, implicit TLS, or
 * plain only to this machine). src/notify queues and sends with it.
 */
#ifndef BW_MAIL_H
#define BW_MAIL_H

#include <stddef.h>

#include "../core/core.h"

#define MAIL_REPLY_MAX 256
#define MAIL_ID_MAX 256
#define MAIL_HEADER_MAX 998        /* bytes of one header value given (a name, the subject) */
#define MAIL_TEXT_MAX (1024 * 1024) /* bytes of the text, and of the HTML, of one message */

/* How a connection to the mail server is protected. */
enum mail_tls {
	MAIL_TLS_STARTTLS, /* smtp:// and STARTTLS, required (587) */
	MAIL_TLS_IMPLICIT, /* smtps:// (465) */
	MAIL_TLS_NONE,     /* smtp:// in clear: only to 127.0.0.1, ::1 or localhost */
};

/* One message to one recipient; strings borrowed, UTF-8. */
struct mail_message {
	const char *from_addr, *from_name; /* from_name may be NULL */
	const char *to_addr, *to_name;     /* to_name may be NULL */
	const char *reply_to;              /* or NULL */
	const char *subject;               /* encoded (RFC 2047) where it is not ASCII */
	const char *text; /* the text/plain part (required; LF or CRLF line ends) */
	const char *html; /* or NULL: then the message is that one text/plain part */
	const char *in_reply_to, *references; /* or NULL: message ids with <> */
	const char *id_domain;                /* the domain of the Message-ID made */
	const char *auto_submitted;           /* or NULL: "auto-generated" (RFC 3834) */
};

/*
 * GMime's set-up, once at start-up before any thread (g_mime_init is not
 * safe to race); after it mail_build may run in several threads at once,
 * each on its own objects. mail_shutdown once at the end, after them.
 */
bw_err mail_init(void) BW_MUST_USE;
void mail_shutdown(void);

/*
 * The whole message (RFC 5322, CRLF line ends) with a Date and a new
 * Message-ID (into message_id, with <>): malloc'd *out of *len bytes.
 * Every part is text, charset utf-8, in 7bit, quoted-printable or base64
 * as GMime finds best. BW_ERR_INVALID (nothing made) for an address that
 * is not one, a header value holding a control character (CR, LF, tab),
 * a string that is not UTF-8 or is longer than its maximum, an id_domain
 * that is not a host name, or a missing text part.
 */
bw_err mail_build(const struct mail_message *m, char **out, size_t *len,
		  char message_id[MAIL_ID_MAX]) BW_MUST_USE;

/* A DKIM signing key: d=, s= and the RSA key (PEM). */
struct mail_dkim {
	const char *domain, *selector, *key_pem;
};
/*
 * Put a DKIM-Signature (rsa-sha256, relaxed/relaxed, every header present
 * signed, and From, To, Subject, Date, Message-ID and Reply-To signed once
 * more so that none can be added) at the top of the message in *msg
 * (replaced, *len updated). BW_ERR_INVALID for a domain or selector that
 * is not a DNS name, BW_ERR_CRYPTO when the key (an RSA key of at least
 * 1024 bits, PEM) or the message cannot be signed; *msg untouched then.
 */
bw_err mail_dkim_sign(const struct mail_dkim *k, char **msg, size_t *len) BW_MUST_USE;
/*
 * A new RSA-2048 DKIM key: the PEM into *key_pem and the DNS TXT record's
 * value ("v=DKIM1; k=rsa; p=...") into *txt, both malloc'd (wipe the key).
 */
bw_err mail_dkim_keypair(char **key_pem, char **txt) BW_MUST_USE;
/* The TXT record value of key_pem's public key (malloc'd); BW_ERR_CRYPTO for no key. */
bw_err mail_dkim_record(const char *key_pem, char **txt) BW_MUST_USE;

/* A mail server to submit to. */
struct mail_smtp {
	const char *host;
	long port;
	enum mail_tls security;
	const char *username, *password; /* or NULL: no AUTH */
	const char *ca_file;             /* or NULL: the system's CAs */
	long connect_timeout_ms, timeout_ms;
	/*
	 * A server a tenant chose: connected to only at a public address (the
	 * webhooks' connect-time check, src/webhooks/egress.h), so that no
	 * tenant reaches the host's own network over SMTP. allow_loopback
	 * lets 127.0.0.0/8 and ::1 through as well (tests).
	 */
	int public_only, allow_loopback;
	const char *helo_name; /* or NULL: what EHLO says (a host name); curl's default otherwise */
};
/* Whether host names this machine (127.0.0.1, ::1, localhost): the only place mail goes in clear. */
int mail_host_loopback(const char *host);
/* A DNS name in ASCII (A-labels): letters, digits, '.', '-'; 1 to 253 bytes. (SMTP and IMAP.) */
int mail_dns_name_ok(const char *h);
/* An IPv6 literal, without brackets: hex digits, ':' and '.' (an embedded IPv4). */
int mail_ipv6_ok(const char *h);

/*
 * Submit msg from envelope_from to rcpt. BW_OK once the server took it
 * (its 250 after DATA); BW_ERR_UNAVAILABLE for what may pass (no
 * connection, TLS, a timeout, a 4xx); BW_ERR_INVALID for a refusal (a 5xx,
 * credentials refused) and, with nothing sent, for an envelope address
 * that is not one (or holds CR, LF, '<' or '>'), a host or HELO name that
 * is not one, or MAIL_TLS_NONE to a server not on this machine. The
 * server's last reply line (or curl's reason) into reply, never a password.
 */
bw_err mail_smtp_send(const struct mail_smtp *s, const char *envelope_from, const char *rcpt,
		      const char *msg, size_t len, char reply[MAIL_REPLY_MAX]) BW_MUST_USE;

#endif
