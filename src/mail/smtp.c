/* SMTP submission by libcurl (mail.h). */
#include "mail.h"

#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

#include "../webhooks/egress.h"

/* What curl reads the message from. */
struct mail_upload {
	const char *data;
	size_t len, off;
};

static size_t
mail_read(char *buf, size_t size, size_t n, void *arg)
{
	struct mail_upload *u = arg;
	size_t room = size * n, left = u->len - u->off;
	size_t k = left < room ? left : room;
	memcpy(buf, u->data + u->off, k);
	u->off += k;
	return k;
}

/* A tenant's server: only at an address the webhooks' egress check lets through. */
static curl_socket_t
mail_opensocket(void *arg, curlsocktype purpose, struct curl_sockaddr *sa)
{
	const struct mail_smtp *s = arg;
	return egress_socket_open(purpose, sa, s->allow_loopback, NULL);
}

/*
 * The server's replies: curl hands each line of them to the header
 * callback (only what the server says, never what curl sends, so no
 * credentials). The last few are kept: after a refusal curl sends QUIT
 * within the transfer, and its 221 is not the answer worth keeping.
 */
#define MAIL_LINES 4
struct mail_lines {
	char line[MAIL_LINES][MAIL_REPLY_MAX];
	unsigned n;
	int closed; /* set after the transfer: the clean-up's QUIT is no answer either */
};

static size_t
mail_header(char *buf, size_t size, size_t n, void *arg)
{
	struct mail_lines *l = arg;
	size_t k = size * n, w = 0;
	if (l->closed)
		return size * n;
	while (k > 0 && (buf[k - 1] == '\r' || buf[k - 1] == '\n'))
		k--;
	if (k == 0)
		return size * n;
	char *dst = l->line[l->n++ % MAIL_LINES];
	for (size_t i = 0; i < k && w < MAIL_REPLY_MAX - 1; i++) {
		unsigned char ch = (unsigned char)buf[i];
		dst[w++] = ch < 0x20 || ch == 0x7f ? '?' : (char)ch;
	}
	dst[w] = '\0';
	return size * n;
}

/* The latest line kept that begins with code (a 3-digit reply code), or NULL. */
static const char *
mail_line_for(const struct mail_lines *l, long code)
{
	char want[8];
	snprintf(want, sizeof(want), "%ld", code);
	for (unsigned i = 0; i < MAIL_LINES && i < l->n; i++) {
		const char *t = l->line[(l->n - 1 - i) % MAIL_LINES];
		if (code >= 200 && code <= 599 && strncmp(t, want, 3) == 0)
			return t;
	}
	return NULL;
}

/* An envelope address: an address, and nothing that could end the SMTP command. */
static int
mail_envelope_ok(const char *a)
{
	struct email_addr addr;
	const char *why;
	if (a == NULL || a[0] == '\0' || strlen(a) > 320)
		return 0;
	for (const unsigned char *p = (const unsigned char *)a; *p; p++)
		if (*p <= 0x20 || *p == 0x7f || *p == '<' || *p == '>' || *p == ',')
			return 0;
	return email_normalize(a, EMAIL_ALLOW_IDN, &addr, &why) == BW_OK;
}

int
mail_dns_name_ok(const char *h)
{
	size_t n = h != NULL ? strnlen(h, 254) : 0;
	if (n == 0 || n > 253 || h[0] == '.' || h[0] == '-')
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((h[i] >= 'a' && h[i] <= 'z') || (h[i] >= 'A' && h[i] <= 'Z') ||
		      (h[i] >= '0' && h[i] <= '9') || h[i] == '.' || h[i] == '-'))
			return 0;
	return 1;
}

int
mail_ipv6_ok(const char *h)
{
	size_t n = strnlen(h, 46);
	if (n < 2 || n > 45 || strchr(h, ':') == NULL)
		return 0;
	return strspn(h, "0123456789abcdefABCDEF:.") == n;
}

int
mail_host_loopback(const char *host)
{
	return strcmp(host, "127.0.0.1") == 0 || strcmp(host, "::1") == 0 ||
	       strcmp(host, "localhost") == 0;
}

bw_err
mail_smtp_send(const struct mail_smtp *s, const char *envelope_from, const char *rcpt,
	       const char *msg, size_t len, char reply[MAIL_REPLY_MAX])
{
	char url[600], from[330], to[330], err[CURL_ERROR_SIZE] = "";
	reply[0] = '\0';
	if (!mail_envelope_ok(envelope_from) || !mail_envelope_ok(rcpt)) {
		snprintf(reply, MAIL_REPLY_MAX, "an envelope address is not an e-mail address");
		return BW_ERR_INVALID;
	}
	int v6 = s->host != NULL && mail_ipv6_ok(s->host);
	if (s->host == NULL || (!v6 && !mail_dns_name_ok(s->host)) || s->port < 1 ||
	    s->port > 65535 || (s->helo_name != NULL && !mail_dns_name_ok(s->helo_name))) {
		snprintf(reply, MAIL_REPLY_MAX, "no usable mail server address or HELO name");
		return BW_ERR_INVALID;
	}
	if (s->security != MAIL_TLS_STARTTLS && s->security != MAIL_TLS_IMPLICIT &&
	    !(s->security == MAIL_TLS_NONE && mail_host_loopback(s->host))) {
		/* Credentials and messages go in clear only to a server on this machine. */
		snprintf(reply, MAIL_REPLY_MAX, "mail without TLS is only sent to this machine");
		return BW_ERR_INVALID;
	}
	if (msg == NULL || len == 0) {
		snprintf(reply, MAIL_REPLY_MAX, "no message");
		return BW_ERR_INVALID;
	}
	/* The URL's path is the name EHLO gives; empty, curl's own. */
	snprintf(url, sizeof(url), "%s://%s%s%s:%ld/%s",
		 s->security == MAIL_TLS_IMPLICIT ? "smtps" : "smtp", v6 ? "[" : "", s->host,
		 v6 ? "]" : "", s->port, s->helo_name != NULL ? s->helo_name : "");
	snprintf(from, sizeof(from), "<%s>", envelope_from);
	snprintf(to, sizeof(to), "<%s>", rcpt);
	CURL *c = curl_easy_init();
	struct curl_slist *rcpts = curl_slist_append(NULL, to);
	if (c == NULL || rcpts == NULL) {
		curl_slist_free_all(rcpts);
		curl_easy_cleanup(c);
		snprintf(reply, MAIL_REPLY_MAX, "out of memory");
		return BW_ERR_UNAVAILABLE;
	}
	struct mail_upload up = {msg, len, 0};
	struct mail_lines last = {.n = 0};
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_VERBOSE, 0L); /* AUTH would be in it */
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, err);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, s->connect_timeout_ms);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, s->timeout_ms);
	curl_easy_setopt(c, CURLOPT_MAIL_FROM, from);
	curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpts);
	curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(c, CURLOPT_READFUNCTION, mail_read);
	curl_easy_setopt(c, CURLOPT_READDATA, &up);
	curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)len);
	curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
	if (s->public_only) {
		curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, mail_opensocket);
		curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, (void *)s);
	}
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, mail_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &last);
	/* TLS: required (STARTTLS or implicit) unless told none; verified either way. */
	if (s->security != MAIL_TLS_NONE)
		curl_easy_setopt(c, CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(c, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	if (s->ca_file != NULL)
		curl_easy_setopt(c, CURLOPT_CAINFO, s->ca_file);
	if (s->username != NULL) {
		curl_easy_setopt(c, CURLOPT_USERNAME, s->username);
		curl_easy_setopt(c, CURLOPT_PASSWORD, s->password != NULL ? s->password : "");
	}
	CURLcode rc = curl_easy_perform(c);
	long code = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	bw_err e = BW_OK;
	const char *line = mail_line_for(&last, code);
	if (rc == CURLE_OK) {
		snprintf(reply, MAIL_REPLY_MAX, "%s", line != NULL ? line : "250");
	} else {
		/* The server's line when it said no; otherwise curl's reason (connect, TLS). */
		if (code >= 400 && line != NULL)
			snprintf(reply, MAIL_REPLY_MAX, "%s", line);
		else
			snprintf(reply, MAIL_REPLY_MAX, "%.250s",
				 err[0] != '\0' ? err : curl_easy_strerror(rc));
		/*
		 * 5xx: the server refuses, and will again. Credentials refused
		 * without a 4xx likewise. Everything else (no connection, TLS,
		 * a timeout, a 4xx) may pass.
		 */
		if (code >= 500 && code < 600)
			e = BW_ERR_INVALID;
		else if (rc == CURLE_LOGIN_DENIED && !(code >= 400 && code < 500))
			e = BW_ERR_INVALID;
		else
			e = BW_ERR_UNAVAILABLE;
	}
	last.closed = 1; /* the clean-up sends QUIT */
	curl_slist_free_all(rcpts);
	curl_easy_cleanup(c);
	return e;
}
