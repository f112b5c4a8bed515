/*
 * The mailbox by libcurl's IMAP (inbound.h). One easy handle per
 * connection object: curl keeps its connection between the calls, so the
 * sign-in and the SELECT happen once. After a failure curl closes that
 * connection and the next call opens another (signing in and selecting
 * again): every URL after the first carries ;UIDVALIDITY=, so that a
 * mailbox whose UIDs were renumbered in between is refused instead of
 * read with old UIDs.
 *
 * What curl hands back (libcurl 7.88, tried against Dovecot): every line
 * the server sends goes to the header callback (curl's own SELECT
 * included, so the UIDVALIDITY and UIDNEXT are read there); the untagged
 * lines a custom command ("UID SEARCH", "UID FETCH", "UID STORE") gets go
 * to the write callback as well, one line at a time, in pieces of at most
 * 16 KB; a message fetched by URL (;UID=) goes to the write callback
 * alone. Nothing curl sends reaches either, so no credentials.
 */
#include "inbound.h"

#include <curl/curl.h>
#include <inttypes.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../webhooks/egress.h"

#define IMAP_UID_MAX 4294967295u /* UIDs, UIDNEXT and UIDVALIDITY are 32-bit (RFC 3501) */
#define IMAP_MAILBOX_MAX 255
#define IMAP_KEYWORD_MAX 64
#define IMAP_CRED_MAX 1024 /* bytes of a user name or password */
#define IMAP_URL_MAX 1200
#define IMAP_WORD_MAX 24 /* bytes of a token of a server's line kept for parsing */
#define IMAP_DIGITS 11	 /* a 32-bit number as sent, and its NUL */
#define IMAP_SECRETS 3

/*
 * libcurl 7.88 reads the server's lines into a buffer of CURLOPT_BUFFERSIZE
 * bytes and keeps a line whole only up to half of that: a longer one may
 * lose its middle without a word (tried against Dovecot: a SEARCH of 20000
 * UIDs, 109 KB, came back as 7 KB with numbers run together, at the
 * default 16 KB). Debian's 7.88.1 also fails a transfer whose lines come
 * to more than 300 KB ("Too large response headers"). With a buffer of
 * 640 KB no line short of that cap can be cut, so an answer is either
 * whole or a failure. And one SEARCH asks about at most IMAP_WINDOW UIDs:
 * at most 11 bytes each, 90 KB a line, well within both.
 */
#define IMAP_BUFFER (640L * 1024)
#define IMAP_WINDOW 8192u
#define IMAP_WINDOWS_MAX 1024 /* windows of one search below UIDNEXT (8M UIDs); the rest in one */

/* What the header callback keeps of one call. */
struct imap_lines {
	char refusal[MAIL_REPLY_MAX];  /* the first tagged NO or BAD, without the tag */
	char done[MAIL_REPLY_MAX];     /* the last tagged OK, without the tag */
	char bye[MAIL_REPLY_MAX];      /* an untagged BYE, NO or BAD no tagged OK came after */
	char uidvalidity[IMAP_DIGITS]; /* of a SELECT in this call, digits as sent */
};

enum imap_want { IMAP_WANT_NONE, IMAP_WANT_SEARCH, IMAP_WANT_SIZE, IMAP_WANT_BODY };

enum imap_kind {
	IMAP_LINE_NEW,	  /* nothing read of the line yet */
	IMAP_LINE_STAR,	  /* "*" */
	IMAP_LINE_NUMBER, /* "* n" */
	IMAP_LINE_SEARCH, /* "* SEARCH" */
	IMAP_LINE_FETCH,  /* "* n FETCH" */
	IMAP_LINE_OTHER,  /* none of ours: skipped to its end */
};

/*
 * The write callback's reading of untagged lines, a byte at a time: a line
 * is never kept whole, only its current token (cut at IMAP_WORD_MAX), so
 * a hostile server's line of any length costs no memory.
 */
struct imap_scan {
	enum imap_want want;
	/* the line being read */
	enum imap_kind kind;
	unsigned depth;
	int quoted, escaped;
	char word[IMAP_WORD_MAX + 1], prev[IMAP_WORD_MAX + 1];
	size_t wlen;
	int wlong;
	uint64_t line_uid, line_size;
	int line_has_uid, line_has_size;
	/* search: the lowest UIDs in [lo, hi], at most max of them */
	uint64_t *uids;
	size_t max, n;
	uint64_t lo, hi;
	/* size: RFC822.SIZE of uid */
	uint64_t uid, size;
	int found;
	/* fetch */
	struct buf body;
	int too_large, nomem;
};

struct mail_imap_conn {
	CURL *c;
	int allow_loopback;
	/* In one call: an address the egress check refused, a socket opened. */
	int refused, opened;
	char box[IMAP_URL_MAX]; /* scheme://host:port/mailbox;UIDVALIDITY=n */
	char uidvalidity[IMAP_DIGITS];
	uint64_t uidnext; /* the latest SELECT's [UIDNEXT], 0 when not given */
	char err[CURL_ERROR_SIZE];
	struct imap_lines lines;
	struct imap_scan scan;
	/* The password as curl may send it (as is, base64, SASL PLAIN): no reply shows one. */
	char *secret[IMAP_SECRETS];
};

/* A tenant's server: only at an address the webhooks' egress check lets through. */
static curl_socket_t
imap_opensocket(void *arg, curlsocktype purpose, struct curl_sockaddr *sa)
{
	struct mail_imap_conn *c = arg;
	curl_socket_t fd = egress_socket_open(purpose, sa, c->allow_loopback, NULL);
	if (fd == CURL_SOCKET_BAD)
		c->refused = 1;
	else
		c->opened = 1;
	return fd;
}

/* Whether the len bytes at p begin with word (ASCII case folded), then a space, ']' or the end. */
static int
imap_word_at(const char *p, size_t len, const char *word)
{
	size_t n = strlen(word);
	if (len < n || strncasecmp(p, word, n) != 0)
		return 0;
	return len == n || p[n] == ' ' || p[n] == ']';
}

/* A decimal number of 1 to 10 digits, 1 to 2^32-1, its digits copied into digits when not NULL. */
static int
imap_number32(const char *p, size_t len, uint64_t *v, char digits[IMAP_DIGITS])
{
	uint64_t x = 0;
	if (len == 0 || len > IMAP_DIGITS - 1)
		return 0;
	for (size_t i = 0; i < len; i++) {
		if (p[i] < '0' || p[i] > '9')
			return 0;
		x = x * 10 + (uint64_t)(p[i] - '0'); /* at most 10 digits: no overflow */
	}
	if (x == 0 || x > IMAP_UID_MAX)
		return 0;
	*v = x;
	if (digits != NULL) {
		memcpy(digits, p, len);
		digits[len] = '\0';
	}
	return 1;
}

/* The number after prefix ("OK [UIDVALIDITY ") up to ']' in an untagged line's text. */
static int
imap_code_number(const char *t, size_t len, const char *prefix, uint64_t *v,
		 char digits[IMAP_DIGITS])
{
	size_t n = strlen(prefix);
	if (len <= n || strncasecmp(t, prefix, n) != 0)
		return 0;
	const char *end = memchr(t + n, ']', len - n);
	return end != NULL && imap_number32(t + n, (size_t)(end - (t + n)), v, digits);
}

/*
 * A server's line for a reply: control characters turned into '?', cut to
 * fit; not shown at all when it holds the password in a form curl sends it.
 */
static void
imap_keep_line(const struct mail_imap_conn *c, char dst[MAIL_REPLY_MAX], const char *p, size_t len)
{
	size_t w = 0;
	for (int i = 0; i < IMAP_SECRETS; i++) {
		const char *s = c->secret[i];
		if (s != NULL && s[0] != '\0' && memmem(p, len, s, strlen(s)) != NULL) {
			snprintf(dst, MAIL_REPLY_MAX,
				 "(the server's reply is not shown: it holds the password)");
			return;
		}
	}
	for (size_t i = 0; i < len && w < MAIL_REPLY_MAX - 1; i++) {
		unsigned char ch = (unsigned char)p[i];
		dst[w++] = ch < 0x20 || ch == 0x7f ? '?' : (char)ch;
	}
	dst[w] = '\0';
}

static size_t
imap_header(char *buf, size_t size, size_t n, void *arg)
{
	struct mail_imap_conn *c = arg;
	struct imap_lines *l = &c->lines;
	size_t len = size * n;
	uint64_t v;
	while (len > 0 && (buf[len - 1] == '\r' || buf[len - 1] == '\n'))
		len--;
	if (len >= 2 && buf[0] == '*' && buf[1] == ' ') {
		const char *t = buf + 2;
		size_t tl = len - 2;
		char digits[IMAP_DIGITS];
		if (imap_word_at(t, tl, "BYE") || imap_word_at(t, tl, "NO") ||
		    imap_word_at(t, tl, "BAD")) {
			if (l->bye[0] == '\0')
				imap_keep_line(c, l->bye, t, tl);
		} else if (imap_code_number(t, tl, "OK [UIDVALIDITY ", &v, digits)) {
			memcpy(l->uidvalidity, digits, sizeof(digits));
		} else if (imap_code_number(t, tl, "OK [UIDNEXT ", &v, NULL)) {
			c->uidnext = v;
		}
	} else if (len > 0 && buf[0] != '+') {
		/* Tagged: "A003 NO [NONEXISTENT] Mailbox doesn't exist" */
		const char *sp = memchr(buf, ' ', len);
		if (sp != NULL) {
			const char *t = sp + 1;
			size_t tl = len - (size_t)(t - buf);
			if (imap_word_at(t, tl, "OK")) {
				imap_keep_line(c, l->done, t, tl);
				l->bye[0] = '\0'; /* the BYE of a LOGOUT, answered */
			} else if ((imap_word_at(t, tl, "NO") || imap_word_at(t, tl, "BAD")) &&
				   l->refusal[0] == '\0') {
				imap_keep_line(c, l->refusal, t, tl);
			}
		}
	}
	return size * n;
}

/* A token of digits only (no sign, no space) that fits in 64 bits. */
static int
imap_number(const char *w, size_t len, uint64_t *v)
{
	uint64_t x = 0;
	if (len == 0)
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned d = (unsigned)(w[i] - '0');
		if (w[i] < '0' || w[i] > '9' || x > (UINT64_MAX - d) / 10)
			return 0;
		x = x * 10 + d;
	}
	*v = x;
	return 1;
}

/* Keep v among the lowest max UIDs in [lo, hi] (once). */
static void
imap_keep_uid(struct imap_scan *s, uint64_t v)
{
	size_t top = 0;
	if (v < s->lo || v > s->hi || v == 0 || v > IMAP_UID_MAX)
		return;
	for (size_t i = 0; i < s->n; i++) {
		if (s->uids[i] == v)
			return;
		if (s->uids[i] > s->uids[top])
			top = i;
	}
	if (s->n < s->max)
		s->uids[s->n++] = v;
	else if (v < s->uids[top])
		s->uids[top] = v;
}

/* One token of an untagged line read. */
static void
imap_scan_word(struct imap_scan *s)
{
	uint64_t v = 0;
	if (s->wlen == 0 && !s->wlong)
		return;
	s->word[s->wlen] = '\0';
	int num = !s->wlong && imap_number(s->word, s->wlen, &v);
	switch (s->kind) {
	case IMAP_LINE_NEW:
		s->kind = strcmp(s->word, "*") == 0 ? IMAP_LINE_STAR : IMAP_LINE_OTHER;
		break;
	case IMAP_LINE_STAR:
		if (!s->wlong && strcasecmp(s->word, "SEARCH") == 0 && s->depth == 0)
			s->kind = IMAP_LINE_SEARCH;
		else
			s->kind = num ? IMAP_LINE_NUMBER : IMAP_LINE_OTHER;
		break;
	case IMAP_LINE_NUMBER:
		s->kind = !s->wlong && strcasecmp(s->word, "FETCH") == 0 && s->depth == 0
				  ? IMAP_LINE_FETCH
				  : IMAP_LINE_OTHER;
		break;
	case IMAP_LINE_SEARCH:
		/* Numbers, and nothing else (a "(MODSEQ n)" ends what is read). */
		if (num && s->depth == 0 && s->want == IMAP_WANT_SEARCH)
			imap_keep_uid(s, v);
		else
			s->kind = IMAP_LINE_OTHER;
		break;
	case IMAP_LINE_FETCH:
		/* Items at the first level: "(UID 3 RFC822.SIZE 2107 FLAGS (...))" */
		if (s->depth == 1) {
			if (num && strcasecmp(s->prev, "UID") == 0) {
				s->line_uid = v;
				s->line_has_uid = 1;
			} else if (num && strcasecmp(s->prev, "RFC822.SIZE") == 0) {
				s->line_size = v;
				s->line_has_size = 1;
			}
			memcpy(s->prev, s->word, s->wlen + 1);
		}
		break;
	case IMAP_LINE_OTHER:
		break;
	default:
		abort();
	}
	s->wlen = 0;
	s->wlong = 0;
}

static void
imap_scan_line_reset(struct imap_scan *s)
{
	s->kind = IMAP_LINE_NEW;
	s->depth = 0;
	s->quoted = s->escaped = 0;
	s->wlen = 0;
	s->wlong = 0;
	s->prev[0] = '\0';
	s->line_has_uid = s->line_has_size = 0;
	s->line_uid = s->line_size = 0;
}

static void
imap_scan_end_line(struct imap_scan *s)
{
	imap_scan_word(s);
	if (s->kind == IMAP_LINE_FETCH && s->want == IMAP_WANT_SIZE && s->line_has_uid &&
	    s->line_uid == s->uid && s->line_has_size) {
		s->size = s->line_size;
		s->found = 1;
	}
	imap_scan_line_reset(s);
}

static void
imap_scan_byte(struct imap_scan *s, char ch)
{
	if (ch == '\n') {
		imap_scan_end_line(s);
		return;
	}
	if (s->kind == IMAP_LINE_OTHER)
		return;
	if (s->quoted) {
		/* A quoted string is one token (quotes kept: no name of ours has one). */
		if (s->escaped)
			s->escaped = 0;
		else if (ch == '\\')
			s->escaped = 1;
		else if (ch == '"')
			s->quoted = 0;
	} else if (ch == ' ' || ch == '(' || ch == ')' || (unsigned char)ch < 0x20 || ch == 0x7f) {
		imap_scan_word(s);
		if (ch == '(' && s->depth < 64)
			s->depth++;
		else if (ch == ')' && s->depth > 0)
			s->depth--;
		return;
	} else if (ch == '"') {
		s->quoted = 1;
	}
	if (s->wlen < IMAP_WORD_MAX)
		s->word[s->wlen++] = ch;
	else
		s->wlong = 1;
}

static size_t
imap_write(char *buf, size_t size, size_t n, void *arg)
{
	struct mail_imap_conn *c = arg;
	struct imap_scan *s = &c->scan;
	size_t k = size * n;
	if (s->want == IMAP_WANT_BODY) {
		if (buf_len(&s->body) == 0) {
			/* The literal's announced size: refused before a byte of it is kept. */
			curl_off_t cl = -1;
			if (curl_easy_getinfo(c->c, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl) ==
				    CURLE_OK &&
			    cl > 0 && (uint64_t)cl > (uint64_t)s->body.max) {
				s->too_large = 1;
				return 0;
			}
		}
		if (k > s->body.max - buf_len(&s->body)) {
			s->too_large = 1;
			return 0; /* curl aborts the transfer */
		}
		if (buf_append(&s->body, buf, k) != BW_OK) {
			s->nomem = 1;
			return 0;
		}
		return k;
	}
	for (size_t i = 0; i < k; i++)
		imap_scan_byte(s, buf[i]);
	return k;
}

/* A refusal's response code (RFC 5530) that says it may pass. */
static int
imap_refusal_passes(const char *r)
{
	static const char *const codes[] = {"UNAVAILABLE", "INUSE", "LIMIT"};
	const char *b = strchr(r, ' ');
	if (b == NULL || b[1] != '[')
		return 0;
	b += 2;
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
		if (imap_word_at(b, strlen(b), codes[i]))
			return 1;
	return 0;
}

static int
imap_refusal_gone(const char *r)
{
	const char *b = strchr(r, ' ');
	return b != NULL && b[1] == '[' && imap_word_at(b + 2, strlen(b + 2), "EXPUNGEISSUED");
}

/* What one transfer came to, and the reply that goes with it. */
static bw_err
imap_result(struct mail_imap_conn *c, CURLcode rc, char reply[MAIL_REPLY_MAX])
{
	const struct imap_lines *l = &c->lines;
	if (c->uidvalidity[0] != '\0' && l->uidvalidity[0] != '\0' &&
	    strcmp(c->uidvalidity, l->uidvalidity) != 0) {
		/* Selected again on a new connection: the UIDs known are not this mailbox's now. */
		snprintf(reply, MAIL_REPLY_MAX,
			 "the mailbox's UIDVALIDITY changed from %s to %s: open it again",
			 c->uidvalidity, l->uidvalidity);
		return BW_ERR_UNAVAILABLE;
	}
	if (rc == CURLE_OK) {
		snprintf(reply, MAIL_REPLY_MAX, "%s", l->done[0] != '\0' ? l->done : "OK");
		return BW_OK;
	}
	if (c->scan.too_large) {
		snprintf(reply, MAIL_REPLY_MAX, "the message is larger than %zu bytes",
			 c->scan.body.max);
		return BW_ERR_TOO_LARGE;
	}
	if (rc == CURLE_COULDNT_CONNECT && c->refused && !c->opened) {
		/* Every address of the name is one a tenant may not reach (as egress_post). */
		snprintf(reply, MAIL_REPLY_MAX, "the mail server's address is not a public one");
		return BW_ERR_INVALID;
	}
	if (c->scan.nomem || rc == CURLE_OUT_OF_MEMORY) {
		snprintf(reply, MAIL_REPLY_MAX, "out of memory");
		return BW_ERR_UNAVAILABLE;
	}
	if (l->refusal[0] != '\0')
		snprintf(reply, MAIL_REPLY_MAX, "%s", l->refusal);
	else if (l->bye[0] != '\0')
		snprintf(reply, MAIL_REPLY_MAX, "%s", l->bye);
	else
		snprintf(reply, MAIL_REPLY_MAX, "%.250s",
			 c->err[0] != '\0' ? c->err : curl_easy_strerror(rc));
	switch (rc) {
	case CURLE_LOGIN_DENIED: /* credentials refused, or the SELECT */
	case CURLE_QUOTE_ERROR:	 /* a command of ours answered NO or BAD */
		if (imap_refusal_passes(l->refusal))
			return BW_ERR_UNAVAILABLE;
		if (imap_refusal_gone(l->refusal))
			return BW_ERR_NOTFOUND;
		return BW_ERR_INVALID;
	case CURLE_REMOTE_FILE_NOT_FOUND: /* a FETCH answered without the message */
		return BW_ERR_NOTFOUND;
	case CURLE_URL_MALFORMAT:
	case CURLE_UNSUPPORTED_PROTOCOL:
		return BW_ERR_INVALID;
	default:
		/* No connection, TLS, a timeout, a line curl could not read: may pass. */
		return BW_ERR_UNAVAILABLE;
	}
}

/* One transfer on the connection: url, with cmd as a custom command or NULL. */
static bw_err
imap_run(struct mail_imap_conn *c, const char *url, const char *cmd, enum imap_want want,
	 char reply[MAIL_REPLY_MAX])
{
	memset(&c->lines, 0, sizeof(c->lines));
	c->err[0] = '\0';
	c->refused = c->opened = 0;
	imap_scan_line_reset(&c->scan);
	c->scan.want = want;
	curl_easy_setopt(c->c, CURLOPT_URL, url);
	curl_easy_setopt(c->c, CURLOPT_CUSTOMREQUEST, cmd);
	CURLcode rc = curl_easy_perform(c->c);
	imap_scan_end_line(&c->scan); /* a last line without its LF */
	c->scan.want = IMAP_WANT_NONE;
	return imap_result(c, rc, reply);
}

/*
 * A mailbox name that cannot break out of the quoted string curl's SELECT
 * puts it in: printable ASCII (a name with other characters is given in
 * IMAP's modified UTF-7), no '"' or '\\'.
 */
static int
imap_mailbox_ok(const char *m)
{
	size_t n = m != NULL ? strnlen(m, IMAP_MAILBOX_MAX + 1) : 0;
	if (n == 0 || n > IMAP_MAILBOX_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)m[i];
		if (ch < 0x20 || ch >= 0x7f || ch == '"' || ch == '\\')
			return 0;
	}
	return 1;
}

/* A keyword: '$' or a letter, then letters, digits, '$', '_', '-', '.' (atom characters all). */
static int
imap_keyword_ok(const char *k)
{
	size_t n = k != NULL ? strnlen(k, IMAP_KEYWORD_MAX + 1) : 0;
	if (n == 0 || n > IMAP_KEYWORD_MAX)
		return 0;
	if (!(k[0] == '$' || (k[0] >= 'a' && k[0] <= 'z') || (k[0] >= 'A' && k[0] <= 'Z')))
		return 0;
	for (size_t i = 1; i < n; i++)
		if (!((k[i] >= 'a' && k[i] <= 'z') || (k[i] >= 'A' && k[i] <= 'Z') ||
		      (k[i] >= '0' && k[i] <= '9') || k[i] == '$' || k[i] == '_' || k[i] == '-' ||
		      k[i] == '.'))
			return 0;
	return 1;
}

/* A user name or password curl can send in a LOGIN command: no CR or LF. */
static int
imap_cred_ok(const char *s, int empty_ok)
{
	size_t n = s != NULL ? strnlen(s, IMAP_CRED_MAX + 1) : 0;
	if (s == NULL || n > IMAP_CRED_MAX || (n == 0 && !empty_ok))
		return 0;
	return strpbrk(s, "\r\n") == NULL;
}

/* base64 of n bytes, malloc'd, or NULL. */
static char *
imap_base64(const unsigned char *p, size_t n)
{
	char *out = malloc(4 * ((n + 2) / 3) + 1); /* n at most 2 * IMAP_CRED_MAX + 2 */
	if (out != NULL)
		EVP_EncodeBlock((unsigned char *)out, p, (int)n);
	return out;
}

static void
imap_free_secret(char *s)
{
	if (s != NULL) {
		OPENSSL_cleanse(s, strlen(s));
		free(s);
	}
}

/* The password as is, in base64 (SASL LOGIN) and in a SASL PLAIN message's base64. */
static bw_err
imap_secrets(struct mail_imap_conn *c, const char *user, const char *pass)
{
	size_t ul = strlen(user), pl = strlen(pass);
	unsigned char *plain = malloc(ul + pl + 2);
	if (plain == NULL)
		return BW_ERR_NOMEM;
	plain[0] = '\0';
	memcpy(plain + 1, user, ul);
	plain[1 + ul] = '\0';
	memcpy(plain + 2 + ul, pass, pl);
	c->secret[0] = strdup(pass);
	c->secret[1] = imap_base64((const unsigned char *)pass, pl);
	c->secret[2] = imap_base64(plain, ul + pl + 2);
	OPENSSL_cleanse(plain, ul + pl + 2);
	free(plain);
	for (int i = 0; i < IMAP_SECRETS; i++)
		if (c->secret[i] == NULL)
			return BW_ERR_NOMEM;
	return BW_OK;
}

bw_err
mail_imap_open(const struct mail_imap *s, struct mail_imap_conn **out, uint64_t *uidvalidity,
	       char reply[MAIL_REPLY_MAX])
{
	*out = NULL;
	*uidvalidity = 0;
	reply[0] = '\0';
	int v6 = s->host != NULL && mail_ipv6_ok(s->host);
	if (s->host == NULL || (!v6 && !mail_dns_name_ok(s->host)) || s->port < 1 ||
	    s->port > 65535) {
		snprintf(reply, MAIL_REPLY_MAX, "no usable mail server address");
		return BW_ERR_INVALID;
	}
	if (s->security != MAIL_TLS_STARTTLS && s->security != MAIL_TLS_IMPLICIT &&
	    !(s->security == MAIL_TLS_NONE && mail_host_loopback(s->host))) {
		/* The password and the mail go in clear only to a server on this machine. */
		snprintf(reply, MAIL_REPLY_MAX, "IMAP without TLS is only to this machine");
		return BW_ERR_INVALID;
	}
	if (!imap_mailbox_ok(s->mailbox)) {
		snprintf(reply, MAIL_REPLY_MAX,
			 "the mailbox name is not printable ASCII of at most %d bytes without '\"' "
			 "or '\\'",
			 IMAP_MAILBOX_MAX);
		return BW_ERR_INVALID;
	}
	if (!imap_cred_ok(s->username, 0) || !imap_cred_ok(s->password, 1)) {
		snprintf(reply, MAIL_REPLY_MAX, "no usable user name or password");
		return BW_ERR_INVALID;
	}
	struct mail_imap_conn *c = calloc(1, sizeof(*c));
	if (c == NULL || (c->c = curl_easy_init()) == NULL ||
	    imap_secrets(c, s->username, s->password) != BW_OK) {
		mail_imap_close(c);
		snprintf(reply, MAIL_REPLY_MAX, "out of memory");
		return BW_ERR_UNAVAILABLE;
	}
	c->allow_loopback = s->allow_loopback;
	char *box = curl_easy_escape(c->c, s->mailbox, 0); /* every byte not unreserved as %XX */
	if (box == NULL) {
		mail_imap_close(c);
		snprintf(reply, MAIL_REPLY_MAX, "out of memory");
		return BW_ERR_UNAVAILABLE;
	}
	/* At most 253 + 765 bytes and a few: room left for ;UIDVALIDITY=n (and /;UID=n). */
	snprintf(c->box, sizeof(c->box), "%s://%s%s%s:%ld/%s",
		 s->security == MAIL_TLS_IMPLICIT ? "imaps" : "imap", v6 ? "[" : "", s->host,
		 v6 ? "]" : "", s->port, box);
	curl_free(box);

	CURL *h = c->c;
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "imap,imaps");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_VERBOSE, 0L); /* the LOGIN or AUTHENTICATE would be in it */
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, c->err);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, s->connect_timeout_ms);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, s->timeout_ms);
	curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(h, CURLOPT_BUFFERSIZE, IMAP_BUFFER);
	curl_easy_setopt(h, CURLOPT_MAXAGE_CONN, 600L); /* one sign-in for a poll, however slow */
	if (s->public_only) {
		curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, imap_opensocket);
		curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, (void *)c);
	}
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, imap_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, (void *)c);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, imap_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, (void *)c);
	/* TLS: required (STARTTLS or implicit) unless told none; verified either way. */
	if (s->security != MAIL_TLS_NONE)
		curl_easy_setopt(h, CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	if (s->ca_file != NULL)
		curl_easy_setopt(h, CURLOPT_CAINFO, s->ca_file);
	curl_easy_setopt(h, CURLOPT_USERNAME, s->username);
	curl_easy_setopt(h, CURLOPT_PASSWORD, s->password);

	/* curl signs in and SELECTs the mailbox of the URL, then the NOOP. */
	bw_err e = imap_run(c, c->box, "NOOP", IMAP_WANT_NONE, reply);
	if (e == BW_ERR_NOTFOUND)
		e = BW_ERR_INVALID;
	if (e == BW_OK && !imap_number32(c->lines.uidvalidity, strlen(c->lines.uidvalidity),
					 uidvalidity, c->uidvalidity)) {
		snprintf(reply, MAIL_REPLY_MAX, "the server gave no UIDVALIDITY for the mailbox");
		e = BW_ERR_INVALID;
	}
	if (e != BW_OK) {
		*uidvalidity = 0;
		mail_imap_close(c);
		return e;
	}
	size_t bl = strlen(c->box);
	snprintf(c->box + bl, sizeof(c->box) - bl, ";UIDVALIDITY=%s", c->uidvalidity);
	*out = c;
	return BW_OK;
}

static int
imap_uid_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

bw_err
mail_imap_search(struct mail_imap_conn *c, uint64_t from_uid, const char *keyword, uint64_t *uids,
		 size_t max, size_t *n, char reply[MAIL_REPLY_MAX])
{
	struct imap_scan *s = &c->scan;
	char cmd[160];
	*n = 0;
	reply[0] = '\0';
	if (!imap_keyword_ok(keyword) || (max > 0 && uids == NULL)) {
		snprintf(reply, MAIL_REPLY_MAX, "not an IMAP keyword");
		return BW_ERR_INVALID;
	}
	if (from_uid == 0)
		from_uid = 1;
	if (max == 0 || from_uid > IMAP_UID_MAX) {
		snprintf(reply, MAIL_REPLY_MAX, "OK");
		return BW_OK;
	}
	s->uids = uids;
	s->max = max;
	s->n = 0;
	uint64_t lo = from_uid;
	/*
	 * Windows of IMAP_WINDOW UIDs up to the UIDNEXT the SELECT gave (so that
	 * no answer is longer than curl keeps whole), then the rest at once:
	 * what came since, normally a few. Past IMAP_WINDOWS_MAX windows (a gap
	 * of millions of UIDs) the rest is asked at once too; an answer too
	 * long for curl then fails (BW_ERR_UNAVAILABLE), it is never cut.
	 */
	for (unsigned win = 0;; win++) {
		int open = !(c->uidnext > lo && win < IMAP_WINDOWS_MAX);
		uint64_t hi = open ? IMAP_UID_MAX
				   : (c->uidnext - lo > IMAP_WINDOW ? lo + IMAP_WINDOW - 1
								    : c->uidnext - 1);
		if (open)
			snprintf(cmd, sizeof(cmd), "UID SEARCH UID %" PRIu64 ":* UNKEYWORD %s", lo,
				 keyword);
		else
			snprintf(cmd, sizeof(cmd),
				 "UID SEARCH UID %" PRIu64 ":%" PRIu64 " UNKEYWORD %s", lo, hi,
				 keyword);
		/* "n:*" holds the highest UID even below n: kept only in [lo, hi]. */
		s->lo = lo;
		s->hi = hi;
		bw_err e = imap_run(c, c->box, cmd, IMAP_WANT_SEARCH, reply);
		if (e != BW_OK) {
			s->uids = NULL;
			s->n = 0;
			return e;
		}
		if (open || s->n >= max)
			break;
		lo = hi + 1;
	}
	qsort(uids, s->n, sizeof(uids[0]), imap_uid_cmp);
	*n = s->n;
	s->uids = NULL;
	s->n = 0;
	return BW_OK;
}

static int
imap_uid_ok(uint64_t uid, char reply[MAIL_REPLY_MAX])
{
	if (uid >= 1 && uid <= IMAP_UID_MAX)
		return 1;
	snprintf(reply, MAIL_REPLY_MAX, "not a UID");
	return 0;
}

bw_err
mail_imap_size(struct mail_imap_conn *c, uint64_t uid, uint64_t *size, char reply[MAIL_REPLY_MAX])
{
	char cmd[64];
	*size = 0;
	reply[0] = '\0';
	if (!imap_uid_ok(uid, reply))
		return BW_ERR_INVALID;
	c->scan.uid = uid;
	c->scan.found = 0;
	snprintf(cmd, sizeof(cmd), "UID FETCH %" PRIu64 " (RFC822.SIZE)", uid);
	bw_err e = imap_run(c, c->box, cmd, IMAP_WANT_SIZE, reply);
	if (e != BW_OK)
		return e;
	if (!c->scan.found) {
		snprintf(reply, MAIL_REPLY_MAX, "no message with UID %" PRIu64, uid);
		return BW_ERR_NOTFOUND;
	}
	*size = c->scan.size;
	return BW_OK;
}

bw_err
mail_imap_fetch(struct mail_imap_conn *c, uint64_t uid, size_t max, char **out, size_t *len,
		char reply[MAIL_REPLY_MAX])
{
	char url[IMAP_URL_MAX + 32];
	struct imap_scan *s = &c->scan;
	*out = NULL;
	*len = 0;
	reply[0] = '\0';
	if (!imap_uid_ok(uid, reply))
		return BW_ERR_INVALID;
	/* curl 7.88 sends "UID FETCH uid BODY[]" (which sets \Seen) and writes the literal. */
	snprintf(url, sizeof(url), "%s/;UID=%" PRIu64, c->box, uid);
	buf_init(&s->body, max);
	s->too_large = s->nomem = 0;
	bw_err e = imap_run(c, url, NULL, IMAP_WANT_BODY, reply);
	if (e == BW_OK && buf_len(&s->body) == 0)
		e = BW_ERR_NOTFOUND;
	if (e == BW_ERR_NOTFOUND)
		snprintf(reply, MAIL_REPLY_MAX, "no message with UID %" PRIu64, uid);
	if (e == BW_OK && buf_take(&s->body, out, len) != BW_OK) {
		snprintf(reply, MAIL_REPLY_MAX, "out of memory");
		e = BW_ERR_UNAVAILABLE;
	}
	buf_free(&s->body);
	return e;
}

bw_err
mail_imap_flag(struct mail_imap_conn *c, uint64_t uid, const char *keyword,
	       char reply[MAIL_REPLY_MAX])
{
	char cmd[160];
	reply[0] = '\0';
	if (!imap_uid_ok(uid, reply))
		return BW_ERR_INVALID;
	if (!imap_keyword_ok(keyword)) {
		snprintf(reply, MAIL_REPLY_MAX, "not an IMAP keyword");
		return BW_ERR_INVALID;
	}
	snprintf(cmd, sizeof(cmd), "UID STORE %" PRIu64 " +FLAGS.SILENT (\\Seen %s)", uid, keyword);
	return imap_run(c, c->box, cmd, IMAP_WANT_NONE, reply);
}

void
mail_imap_close(struct mail_imap_conn *c)
{
	if (c == NULL)
		return;
	c->scan.want = IMAP_WANT_NONE;
	curl_easy_cleanup(c->c); /* LOGOUT on the connection kept */
	buf_free(&c->scan.body);
	for (int i = 0; i < IMAP_SECRETS; i++)
		imap_free_secret(c->secret[i]);
	OPENSSL_cleanse(c, sizeof(*c)); /* the server's lines kept */
	free(c);
}
