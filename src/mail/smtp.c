/* SMTP submission by libcurl (mail.h). */
#include "mail.h"

#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

#include "../webhooks/egress.h"

/* What curl reads the message from, and the server's last reply line. */
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

bw_err
mail_smtp_send(const struct mail_smtp *s, const char *envelope_from, const char *rcpt,
	       const char *msg, size_t len, char reply[MAIL_REPLY_MAX])
{
	char url[512], from[330], to[330], err[CURL_ERROR_SIZE] = "";
	reply[0] = '\0';
	if (!mail_envelope_ok(envelope_from) || !mail_envelope_ok(rcpt)) {
		snprintf(reply, MAIL_REPLY_MAX, "an envelope address is not an e-mail address");
		return BW_ERR_INVALID;
	}
	if (s->host == NULL || s->host[0] == '\0' || strpbrk(s->host, "/@?#[] \r\n") != NULL ||
	    s->port < 1 || s->port > 65535) {
		snprintf(reply, MAIL_REPLY_MAX, "no usable mail server address");
		return BW_ERR_INVALID;
	}
	snprintf(url, sizeof(url), "%s://%s:%ld", s->security == MAIL_TLS_IMPLICIT ? "smtps" : "smtp",
		 s->host, s->port);
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
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
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
	if (rc == CURLE_OK) {
		snprintf(reply, MAIL_REPLY_MAX, "%ld accepted", code);
	} else {
		/* curl's message says what failed; the code which side: 5xx is a refusal. */
		snprintf(reply, MAIL_REPLY_MAX, "%ld %.200s", code,
			 err[0] != '\0' ? err : curl_easy_strerror(rc));
		e = code >= 500 && code < 600 ? BW_ERR_INVALID : BW_ERR_UNAVAILABLE;
		if (rc == CURLE_LOGIN_DENIED)
			e = BW_ERR_INVALID; /* wrong credentials: not worth trying again as they are */
	}
	curl_slist_free_all(rcpts);
	curl_easy_cleanup(c);
	return e;
}
