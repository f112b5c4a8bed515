/* Messages built by GMime (mail.h). */
#include "mail.h"

#include <gmime/gmime.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bw_err
mail_init(void)
{
	g_mime_init();
	return BW_OK;
}

void
mail_shutdown(void)
{
	g_mime_shutdown();
}

/*
 * A header value may not break out of its header: no CR, LF or other
 * controls (a tab neither: GMime would fold on it), valid UTF-8 (else GMime
 * would put U+FFFD in silently), and at most MAIL_HEADER_MAX bytes.
 */
static int
mail_value_ok(const char *v)
{
	size_t n = v != NULL ? strnlen(v, MAIL_HEADER_MAX + 1) : MAIL_HEADER_MAX + 1;
	if (n > MAIL_HEADER_MAX || !g_utf8_validate(v, (gssize)n, NULL))
		return 0;
	for (const unsigned char *p = (const unsigned char *)v; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return 0;
	return 1;
}

/* A body part: valid UTF-8 of at most MAIL_TEXT_MAX bytes (line ends are GMime's to write). */
static int
mail_body_ok(const char *v)
{
	size_t n = v != NULL ? strnlen(v, MAIL_TEXT_MAX + 1) : MAIL_TEXT_MAX + 1;
	return n <= MAIL_TEXT_MAX && g_utf8_validate(v, (gssize)n, NULL);
}

static int
mail_addr_ok(const char *a)
{
	struct email_addr addr;
	const char *why;
	/* A bare address (no display name, no comments): what email_normalize() takes. */
	return mail_value_ok(a) && strchr(a, '<') == NULL && strchr(a, ',') == NULL &&
	       email_normalize(a, EMAIL_ALLOW_IDN, &addr, &why) == BW_OK;
}

/* A byte of a host name: ASCII letter, digit, '.' or '-'; with utf8, any non-ASCII byte too. */
static int
mail_host_byte(unsigned char c, int utf8)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '-' || (utf8 && c >= 0x80);
}

/*
 * The domain of a Message-ID: a host name, in its A-label form (GMime's IDN
 * conversion, as for the addresses) into out; 0 when it is not one.
 */
static int
mail_id_domain(const char *d, char *out, size_t cap)
{
	char probe[MAIL_HEADER_MAX + 3];
	out[0] = '\0';
	if (!mail_value_ok(d) || d[0] == '\0' || d[0] == '.' || d[0] == '-' ||
	    (size_t)snprintf(probe, sizeof(probe), "x@%s", d) >= sizeof(probe))
		return 0;
	for (const unsigned char *p = (const unsigned char *)d; *p; p++)
		if (!mail_host_byte(*p, 1))
			return 0;
	InternetAddress *ia = internet_address_mailbox_new(NULL, probe);
	const char *idn = internet_address_mailbox_get_idn_addr(INTERNET_ADDRESS_MAILBOX(ia));
	int ok = idn != NULL && strncmp(idn, "x@", 2) == 0 &&
		 (size_t)snprintf(out, cap, "%s", idn + 2) < cap && out[0] != '\0' &&
		 strlen(out) <= 253;
	for (const unsigned char *p = (const unsigned char *)out; ok && *p; p++)
		ok = mail_host_byte(*p, 0);
	g_object_unref(ia);
	if (!ok)
		out[0] = '\0';
	return ok;
}

/* A message id as <...>: ASCII, no spaces or controls, in angle brackets. */
static int
mail_msgid_ok(const char *v)
{
	size_t n = v != NULL ? strlen(v) : 0;
	if (n < 3 || n >= MAIL_ID_MAX || v[0] != '<' || v[n - 1] != '>')
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)v[i] <= 0x20 || (unsigned char)v[i] >= 0x7f)
			return 0;
	return 1;
}

/* References: message ids separated by single spaces. */
static int
mail_refs_ok(const char *v)
{
	char buf[4096];
	if (v == NULL || strlen(v) >= sizeof(buf))
		return 0;
	snprintf(buf, sizeof(buf), "%s", v);
	int n = 0;
	for (char *save = NULL, *t = strtok_r(buf, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
		if (!mail_msgid_ok(t))
			return 0;
		n++;
	}
	return n > 0;
}

/*
 * A mailbox header through InternetAddressMailbox: GMime quotes the name or
 * encodes it (RFC 2047, in UTF-8 rather than the smallest charset that
 * holds it) and writes the domain in its A-label form.
 */
static void
mail_add_mailbox(GMimeMessage *msg, GMimeAddressType type, const char *name, const char *addr)
{
	InternetAddress *ia = internet_address_mailbox_new(name, addr);
	internet_address_set_charset(ia, "utf-8");
	internet_address_list_add(g_mime_message_get_addresses(msg, type), ia);
	g_object_unref(ia);
}

static GMimeObject *
mail_text_part(const char *subtype, const char *text)
{
	GMimeTextPart *tp = g_mime_text_part_new_with_subtype(subtype);
	/* set_text labels the part with the smallest charset that holds it; say utf-8 after it. */
	g_mime_text_part_set_text(tp, text);
	g_mime_text_part_set_charset(tp, "utf-8");
	/* 7bit when it can be, else quoted-printable or base64 as GMime finds best. */
	GMimeContentEncoding enc =
	    g_mime_part_get_best_content_encoding(GMIME_PART(tp), GMIME_ENCODING_CONSTRAINT_7BIT);
	g_mime_part_set_content_encoding(GMIME_PART(tp), enc);
	return GMIME_OBJECT(tp);
}

bw_err
mail_build(const struct mail_message *m, char **out, size_t *len, char message_id[MAIL_ID_MAX])
{
	*out = NULL;
	*len = 0;
	message_id[0] = '\0';
	char domain[256];
	if (!mail_addr_ok(m->from_addr) || !mail_addr_ok(m->to_addr) ||
	    (m->reply_to != NULL && !mail_addr_ok(m->reply_to)) ||
	    (m->from_name != NULL && !mail_value_ok(m->from_name)) ||
	    (m->to_name != NULL && !mail_value_ok(m->to_name)) || !mail_value_ok(m->subject) ||
	    !mail_body_ok(m->text) || (m->html != NULL && !mail_body_ok(m->html)) ||
	    !mail_id_domain(m->id_domain, domain, sizeof(domain)) ||
	    (m->auto_submitted != NULL && !mail_value_ok(m->auto_submitted)) ||
	    (m->in_reply_to != NULL && !mail_msgid_ok(m->in_reply_to)) ||
	    (m->references != NULL && !mail_refs_ok(m->references)))
		return BW_ERR_INVALID;
	unsigned char rnd[16];
	char hex[33];
	if (util_random(rnd, sizeof(rnd)) != BW_OK)
		return BW_ERR_CRYPTO;
	util_hex(rnd, sizeof(rnd), hex);
	if ((size_t)snprintf(message_id, MAIL_ID_MAX, "<%s@%s>", hex, domain) >= MAIL_ID_MAX) {
		message_id[0] = '\0';
		return BW_ERR_INVALID;
	}

	GMimeMessage *msg = g_mime_message_new(TRUE);
	mail_add_mailbox(msg, GMIME_ADDRESS_TYPE_FROM, m->from_name, m->from_addr);
	mail_add_mailbox(msg, GMIME_ADDRESS_TYPE_TO, m->to_name, m->to_addr);
	if (m->reply_to != NULL)
		mail_add_mailbox(msg, GMIME_ADDRESS_TYPE_REPLY_TO, NULL, m->reply_to);
	g_mime_message_set_subject(msg, m->subject, "utf-8");
	GDateTime *now = g_date_time_new_now_utc();
	g_mime_message_set_date(msg, now);
	g_date_time_unref(now);
	/* GMime takes the id without its angle brackets. */
	char bare[MAIL_ID_MAX];
	snprintf(bare, sizeof(bare), "%.*s", (int)strlen(message_id) - 2, message_id + 1);
	g_mime_message_set_message_id(msg, bare);
	GMimeObject *obj = GMIME_OBJECT(msg);
	if (m->in_reply_to != NULL)
		g_mime_object_set_header(obj, "In-Reply-To", m->in_reply_to, NULL);
	if (m->references != NULL)
		g_mime_object_set_header(obj, "References", m->references, NULL);
	if (m->auto_submitted != NULL)
		g_mime_object_set_header(obj, "Auto-Submitted", m->auto_submitted, NULL);

	GMimeObject *body;
	if (m->html != NULL) {
		GMimeMultipart *alt = g_mime_multipart_new_with_subtype("alternative");
		GMimeObject *t = mail_text_part("plain", m->text), *h = mail_text_part("html", m->html);
		g_mime_multipart_add(alt, t); /* the last part is the richest (RFC 2046) */
		g_mime_multipart_add(alt, h);
		g_object_unref(t);
		g_object_unref(h);
		body = GMIME_OBJECT(alt);
	} else {
		body = mail_text_part("plain", m->text);
	}
	g_mime_message_set_mime_part(msg, body);
	g_object_unref(body);

	/* Written with CRLF: what DKIM signs is what is sent. */
	GMimeFormatOptions *fo = g_mime_format_options_new();
	g_mime_format_options_set_newline_format(fo, GMIME_NEWLINE_FORMAT_DOS);
	GMimeStream *ms = g_mime_stream_mem_new();
	bw_err e = BW_ERR_NOMEM;
	if (g_mime_object_write_to_stream(obj, fo, ms) > 0) {
		GByteArray *ba = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(ms));
		if ((*out = malloc(ba->len + 1)) != NULL) {
			memcpy(*out, ba->data, ba->len);
			(*out)[ba->len] = '\0';
			*len = ba->len;
			e = BW_OK;
		}
	}
	g_object_unref(ms);
	g_mime_format_options_free(fo);
	g_object_unref(msg);
	if (e != BW_OK)
		message_id[0] = '\0';
	return e;
}
