/*
 * Outgoing mail without a server: messages built by GMime and read back by
 * GMime's parser (headers, parts, charsets, encodings), header injection
 * and strings that are not UTF-8 refused, DKIM signatures made and verified
 * by two verifiers, libopendkim's own and Python's dkimpy (Debian's
 * python3-dkim, an independent implementation), against the test's public
 * key, and failing once one byte of the body changes or a From is added;
 * the key pair's TXT record read back by OpenSSL; and the checks the SMTP
 * client makes before it connects. Sending itself is tested against a real
 * SMTP server (aiosmtpd, tests/http/smtp_sink.py) in tests/http/test_recovery.py.
 */
#include "unit.h"

#include <gmime/gmime.h>
#include <opendkim/dkim.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "mail/mail.h"

static const struct mail_message base = {
    .from_addr = "bulwark@example.test",
    .from_name = "Bulwark",
    .to_addr = "ana@example.test",
    .to_name = "Ana Lúcia",
    .subject = "Réinitialisation — ✓",
    .text = "Hello Ana,\nthe link: https://x.example.test/reset-password#token=abc\n",
    .html = "<p>Hello Ana</p>",
    .id_domain = "example.test",
    .auto_submitted = "auto-generated",
};

static GMimeMessage *
parse(const char *raw, size_t len)
{
	GMimeStream *s = g_mime_stream_mem_new_with_buffer(raw, len);
	GMimeParser *p = g_mime_parser_new_with_stream(s);
	GMimeMessage *m = g_mime_parser_construct_message(p, NULL);
	g_object_unref(p);
	g_object_unref(s);
	return m;
}

/* A text part as the brief has it: charset utf-8, in 7bit, quoted-printable or base64. */
static void
assert_part_utf8(GMimeObject *part)
{
	const char *cs = g_mime_object_get_content_type_parameter(part, "charset");
	assert_non_null(cs);
	assert_string_equal(cs, "utf-8");
	/* No Content-Transfer-Encoding at all (DEFAULT) is 7bit (RFC 2045 6.1). */
	GMimeContentEncoding enc = g_mime_part_get_content_encoding(GMIME_PART(part));
	assert_true(enc == GMIME_CONTENT_ENCODING_DEFAULT || enc == GMIME_CONTENT_ENCODING_7BIT ||
		    enc == GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE ||
		    enc == GMIME_CONTENT_ENCODING_BASE64);
}

/* The text of a part, line ends back to LF: g_free it. */
static char *
part_text(GMimeObject *part)
{
	char *text = g_mime_text_part_get_text(GMIME_TEXT_PART(part)), *w = text;
	for (const char *r = text; *r; r++)
		if (*r != '\r')
			*w++ = *r;
	*w = '\0';
	return text;
}

static void
test_build_and_read_back(void **state)
{
	(void)state;
	char *raw = NULL, id[MAIL_ID_MAX];
	size_t len = 0;
	assert_int_equal(mail_build(&base, &raw, &len, id), BW_OK);
	assert_non_null(strstr(raw, "\r\n\r\n")); /* CRLF throughout */
	for (size_t i = 0; i < len; i++)
		if (raw[i] == '\n')
			assert_true(i > 0 && raw[i - 1] == '\r');
	assert_true(id[0] == '<' && strstr(id, "@example.test>") != NULL);
	GMimeMessage *m = parse(raw, len);
	assert_non_null(m);
	assert_string_equal(g_mime_message_get_subject(m), base.subject); /* RFC 2047, decoded */
	assert_null(strstr(raw, "Réinitialisation"));                     /* never raw 8-bit */
	const char *mid = g_mime_message_get_message_id(m);
	assert_non_null(mid);
	assert_int_equal(strncmp(mid, id + 1, strlen(mid)), 0);
	InternetAddressList *to = g_mime_message_get_to(m);
	assert_int_equal(internet_address_list_length(to), 1);
	InternetAddress *a = internet_address_list_get_address(to, 0);
	assert_string_equal(internet_address_get_name(a), "Ana Lúcia");
	assert_string_equal(internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(a)),
			    "ana@example.test");
	assert_string_equal(g_mime_object_get_header(GMIME_OBJECT(m), "Auto-Submitted"),
			    "auto-generated");
	assert_non_null(g_mime_message_get_date(m));
	/* Names encoded in UTF-8 (not the smallest charset GMime would pick), the From's too. */
	assert_non_null(strstr(raw, "To: Ana =?UTF-8?"));
	assert_null(strstr(raw, "iso-8859-1"));
	InternetAddress *f = internet_address_list_get_address(g_mime_message_get_from(m), 0);
	assert_string_equal(internet_address_get_name(f), "Bulwark");
	assert_string_equal(internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(f)),
			    "bulwark@example.test");
	assert_string_equal(g_mime_object_get_header(GMIME_OBJECT(m), "MIME-Version"), "1.0");
	GMimeObject *body = g_mime_message_get_mime_part(m);
	assert_true(GMIME_IS_MULTIPART(body));
	GMimeContentType *ct = g_mime_object_get_content_type(body);
	assert_true(g_mime_content_type_is_type(ct, "multipart", "alternative"));
	assert_int_equal(g_mime_multipart_get_count(GMIME_MULTIPART(body)), 2);
	GMimeObject *t = g_mime_multipart_get_part(GMIME_MULTIPART(body), 0);
	GMimeObject *h = g_mime_multipart_get_part(GMIME_MULTIPART(body), 1);
	assert_true(g_mime_content_type_is_type(g_mime_object_get_content_type(t), "text", "plain"));
	assert_true(g_mime_content_type_is_type(g_mime_object_get_content_type(h), "text", "html"));
	assert_part_utf8(t);
	assert_part_utf8(h);
	char *text = g_mime_text_part_get_text(GMIME_TEXT_PART(t));
	/* As sent, with CRLF line ends: the same text once they are LF again. */
	char *w = text;
	for (const char *r = text; *r; r++)
		if (*r != '\r')
			*w++ = *r;
	*w = '\0';
	int same = strcmp(text, base.text) == 0;
	g_free(text);
	assert_true(same);
	g_object_unref(m);
	free(raw);
}

static void
test_text_only(void **state)
{
	(void)state;
	struct mail_message m = base;
	m.html = NULL;
	m.in_reply_to = "<a1@example.test>";
	m.references = "<a0@example.test> <a1@example.test>";
	char *raw = NULL, id[MAIL_ID_MAX];
	size_t len = 0;
	assert_int_equal(mail_build(&m, &raw, &len, id), BW_OK);
	GMimeMessage *g = parse(raw, len);
	GMimeObject *body = g_mime_message_get_mime_part(g);
	assert_true(GMIME_IS_TEXT_PART(body));
	GMimeContentType *ct = g_mime_object_get_content_type(body);
	assert_true(g_mime_content_type_is_type(ct, "text", "plain"));
	assert_part_utf8(body);
	assert_null(strstr(raw, "multipart"));
	assert_null(strstr(raw, "text/html"));
	assert_string_equal(g_mime_object_get_header(GMIME_OBJECT(g), "In-Reply-To"),
			    "<a1@example.test>");
	assert_string_equal(g_mime_object_get_header(GMIME_OBJECT(g), "References"),
			    "<a0@example.test> <a1@example.test>");
	assert_null(g_mime_object_get_header(GMIME_OBJECT(g), "Reply-To"));
	g_object_unref(g);
	free(raw);

	/* Reply-To given: one mailbox; Auto-Submitted left out: none. */
	m.reply_to = "help@example.test";
	m.auto_submitted = NULL;
	assert_int_equal(mail_build(&m, &raw, &len, id), BW_OK);
	g = parse(raw, len);
	InternetAddressList *rt = g_mime_message_get_reply_to(g);
	assert_int_equal(internet_address_list_length(rt), 1);
	assert_string_equal(internet_address_mailbox_get_addr(
				INTERNET_ADDRESS_MAILBOX(internet_address_list_get_address(rt, 0))),
			    "help@example.test");
	assert_null(g_mime_object_get_header(GMIME_OBJECT(g), "Auto-Submitted"));
	g_object_unref(g);
	free(raw);
}

/*
 * What the text holds reaches the reader as it was: a line of 2,100 bytes
 * (longer than SMTP's 998), a bare CR, a line that is one dot, non-ASCII;
 * no line of the message is longer than 998 bytes.
 */
static void
test_body_round_trip(void **state)
{
	(void)state;
	char *text = malloc(2100 + 64);
	assert_non_null(text);
	memset(text, 'a', 2100);
	snprintf(text + 2100, 64, "\n.\nbare\rCR\nF\u00fcr Ana \u2014 \u2713\n");
	struct mail_message m = base;
	m.text = text;
	m.html = NULL;
	char *raw = NULL, id[MAIL_ID_MAX];
	size_t len = 0;
	assert_int_equal(mail_build(&m, &raw, &len, id), BW_OK);
	size_t line = 0;
	for (size_t i = 0; i < len; i++) {
		line = raw[i] == '\n' ? 0 : line + 1;
		assert_true(line <= 998);
	}
	GMimeMessage *g = parse(raw, len);
	char *got = part_text(g_mime_message_get_mime_part(g));
	/* The bare CR reads back as a line end: strip CRs on both sides. */
	char *want = strdup(text), *w = want;
	for (const char *r = text; *r; r++)
		if (*r != '\r')
			*w++ = *r;
	*w = '\0';
	int same = strcmp(got, want) == 0;
	g_free(got);
	free(want);
	assert_true(same);
	g_object_unref(g);
	free(raw);
	free(text);
}

/* A domain in Unicode goes out as its A-label: in the To header and in the Message-ID. */
static void
test_idn(void **state)
{
	(void)state;
	struct mail_message m = base;
	m.to_addr = "ana@b\u00fccher.example";
	m.id_domain = "b\u00fccher.example";
	char *raw = NULL, id[MAIL_ID_MAX];
	size_t len = 0;
	assert_int_equal(mail_build(&m, &raw, &len, id), BW_OK);
	assert_non_null(strstr(raw, "<ana@xn--bcher-kva.example>"));
	assert_non_null(strstr(id, "@xn--bcher-kva.example>"));
	assert_non_null(strstr(raw, id));
	free(raw);
}

/* Every way of smuggling a header in is refused, and nothing is made. */
static void
test_injection_refused(void **state)
{
	(void)state;
	char *raw = (char *)"untouched", id[MAIL_ID_MAX];
	size_t len = 7;
	struct mail_message m;
#define REFUSED(field, value)                                                                     \
	do {                                                                                       \
		m = base;                                                                          \
		m.field = (value);                                                                 \
		assert_int_equal(mail_build(&m, &raw, &len, id), BW_ERR_INVALID);                  \
		assert_null(raw);                                                                  \
		assert_int_equal(len, 0);                                                          \
		assert_string_equal(id, "");                                                       \
	} while (0)
	REFUSED(subject, "Hi\r\nBcc: victim@example.test");
	REFUSED(subject, "Hi\nBcc: victim@example.test");
	REFUSED(to_name, "Ana\r\nBcc: x@example.test");
	REFUSED(to_addr, "ana@example.test\r\nBcc: x@example.test");
	REFUSED(to_addr, "Ana <ana@example.test>");
	REFUSED(to_addr, "ana@example.test, x@example.test");
	REFUSED(to_addr, "not an address");
	REFUSED(from_addr, "");
	REFUSED(reply_to, "x@example.test\nBcc: y@example.test");
	REFUSED(in_reply_to, "<a@b>\r\nBcc: y@example.test");
	REFUSED(in_reply_to, "no-brackets@example.test");
	REFUSED(references, "<a@b> <c@d>\r\nX: y");
	REFUSED(auto_submitted, "auto-generated\r\nX: y");
	REFUSED(id_domain, "example.test>\r\nX: y");
	REFUSED(text, NULL);
	REFUSED(subject, NULL);
	REFUSED(subject, "tab\there");
	REFUSED(subject, "not \xff UTF-8");
	REFUSED(to_name, "Ana \xc3");
	REFUSED(text, "not \xff UTF-8");
	REFUSED(html, "<p>\xfe</p>");
	REFUSED(id_domain, "a@b.example");
	REFUSED(id_domain, "exa mple.test");
	REFUSED(id_domain, ".example.test");
	REFUSED(id_domain, "");
	REFUSED(id_domain, NULL);
	char *longer = malloc(MAIL_TEXT_MAX + 2);
	assert_non_null(longer);
	memset(longer, 'x', MAIL_TEXT_MAX + 1);
	longer[MAIL_TEXT_MAX + 1] = '\0';
	REFUSED(text, longer);
	REFUSED(html, longer);
	longer[MAIL_HEADER_MAX + 1] = '\0';
	REFUSED(subject, longer);
	longer[MAIL_HEADER_MAX] = '\0'; /* at the maximum: taken */
	m = base;
	m.subject = longer;
	assert_int_equal(mail_build(&m, &raw, &len, id), BW_OK);
	free(raw);
	free(longer);
#undef REFUSED
}

/* --- DKIM ----------------------------------------------------------------------- */

/* Verify msg with libopendkim against the record in dir/keys: the DKIM_STAT of dkim_eom. */
static DKIM_STAT
verify(const char *dir, const char *msg, size_t len)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/keys", dir);
	DKIM_LIB *lib = dkim_init(NULL, NULL);
	assert_non_null(lib);
	dkim_query_t q = DKIM_QUERY_FILE;
	assert_int_equal(dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_QUERYMETHOD, &q, sizeof(q)),
			 DKIM_STAT_OK);
	assert_int_equal(dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_QUERYINFO, path, strlen(path)),
			 DKIM_STAT_OK);
	DKIM_STAT st;
	DKIM *dk = dkim_verify(lib, (const unsigned char *)"test", NULL, &st);
	assert_non_null(dk);
	st = dkim_chunk(dk, (unsigned char *)msg, len);
	if (st == DKIM_STAT_OK)
		st = dkim_chunk(dk, NULL, 0);
	if (st == DKIM_STAT_OK)
		st = dkim_eom(dk, NULL);
	dkim_free(dk);
	dkim_close(lib);
	return st;
}

/*
 * Verify with dkimpy (python3-dkim), the record given in place of DNS:
 * 1 when it holds, 0 when not. An implementation that shares no code with
 * libopendkim, so that both would have to be wrong alike.
 */
static int
dkimpy_verify(const char *dir, const char *txt, const char *msg, size_t len)
{
	char mpath[128], tpath[128], cmd[512], out[64] = "";
	snprintf(mpath, sizeof(mpath), "%s/msg.eml", dir);
	snprintf(tpath, sizeof(tpath), "%s/record", dir);
	FILE *f = fopen(mpath, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(msg, 1, len, f), len);
	fclose(f);
	f = fopen(tpath, "w");
	assert_non_null(f);
	fputs(txt, f);
	fclose(f);
	snprintf(cmd, sizeof(cmd),
		 "/usr/bin/python3 -c 'import sys, dkim; m = open(sys.argv[1], \"rb\").read(); "
		 "t = open(sys.argv[2], \"rb\").read(); "
		 "print(dkim.verify(m, dnsfunc=lambda name, timeout=5: t))' %s %s",
		 mpath, tpath);
	FILE *p = popen(cmd, "r");
	if (p == NULL)
		fail_msg("popen(%s) failed", cmd);
	if (fgets(out, sizeof(out), p) == NULL)
		out[0] = '\0';
	int rc = pclose(p);
	assert_int_equal(rc, 0);
	if (strcmp(out, "True\n") == 0)
		return 1;
	assert_string_equal(out, "False\n");
	return 0;
}

/* The h= tag of the signature at the top of msg, unfolded, into out. */
static void
sig_h(const char *msg, char *out, size_t cap)
{
	const char *end = strstr(msg, "\r\n\r\n"), *h = msg;
	while ((h = strstr(h + 1, "h=")) != NULL && h[-1] != ' ' && h[-1] != '\t')
		; /* not bh= */
	assert_non_null(h);
	assert_true(end == NULL || h < end);
	h--;
	size_t o = 0;
	for (h += 3; *h && *h != ';' && o + 1 < cap; h++)
		if (*h != ' ' && *h != '\t' && *h != '\r' && *h != '\n')
			out[o++] = (char)g_ascii_tolower(*h);
	out[o] = '\0';
}

/* How many times name (lower case) stands in the colon-separated list h. */
static int
h_count(const char *h, const char *name)
{
	int n = 0;
	size_t k = strlen(name);
	for (const char *p = h; (p = strstr(p, name)) != NULL; p += k)
		if ((p == h || p[-1] == ':') && (p[k] == ':' || p[k] == '\0'))
			n++;
	return n;
}

static void
test_dkim_sign_verify(void **state)
{
	(void)state;
	char dir[64], path[128], *key = NULL, *txt = NULL, *raw = NULL, id[MAIL_ID_MAX];
	size_t len = 0;
	assert_int_equal(unit_mkdtemp(dir, sizeof(dir), "mail"), 0);
	assert_int_equal(mail_dkim_keypair(&key, &txt), BW_OK);
	assert_int_equal(strncmp(txt, "v=DKIM1; k=rsa; p=", 18), 0);
	assert_true(strlen(txt) > 18 + 300); /* an RSA-2048 public key in base64 */
	assert_null(strpbrk(txt, "\r\n\""));
	snprintf(path, sizeof(path), "%s/keys", dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "s2026._domainkey.example.test %s\n", txt);
	fclose(f);

	assert_int_equal(mail_build(&base, &raw, &len, id), BW_OK);
	struct mail_dkim k = {"example.test", "s2026", key};
	assert_int_equal(mail_dkim_sign(&k, &raw, &len), BW_OK);
	assert_int_equal(strncmp(raw, "DKIM-Signature: ", 16), 0);
	for (size_t i = 0; i < len; i++)
		if (raw[i] == '\n')
			assert_true(i > 0 && raw[i - 1] == '\r');
	assert_non_null(strstr(raw, "a=rsa-sha256"));
	assert_non_null(strstr(raw, "c=relaxed/relaxed"));
	assert_non_null(strstr(raw, "d=example.test"));
	assert_non_null(strstr(raw, "s=s2026"));
	assert_int_equal(verify(dir, raw, len), DKIM_STAT_OK);
	assert_int_equal(dkimpy_verify(dir, txt, raw, len), 1);

	/* Every header there is signed; those that matter once more, so none can be added. */
	char h[512];
	sig_h(raw, h, sizeof(h));
	const char *each[] = {"from", "to", "subject", "date", "message-id", "mime-version",
			      "content-type", "auto-submitted"};
	for (size_t i = 0; i < sizeof(each) / sizeof(each[0]); i++)
		assert_true(h_count(h, each[i]) >= 1);
	assert_int_equal(h_count(h, "from"), 2);
	assert_int_equal(h_count(h, "subject"), 2);
	assert_int_equal(h_count(h, "reply-to"), 1); /* none there: its absence signed */

	/* A second From put in on the way: neither verifier takes it. */
	const char *from = strstr(raw, "\r\nFrom: ");
	assert_non_null(from);
	size_t at = (size_t)(from - raw) + 2;
	const char *evil = "From: mallory@evil.test\r\n";
	char *added = malloc(len + strlen(evil) + 1);
	assert_non_null(added);
	memcpy(added, raw, at);
	memcpy(added + at, evil, strlen(evil));
	memcpy(added + at + strlen(evil), raw + at, len - at + 1);
	assert_int_not_equal(verify(dir, added, len + strlen(evil)), DKIM_STAT_OK);
	assert_int_equal(dkimpy_verify(dir, txt, added, len + strlen(evil)), 0);
	free(added);

	/* One byte of the body changed after signing: the signature no longer holds. */
	char *b = strstr(raw, "Hello Ana,");
	assert_non_null(b);
	b[0] = 'J';
	assert_int_not_equal(verify(dir, raw, len), DKIM_STAT_OK);
	assert_int_equal(dkimpy_verify(dir, txt, raw, len), 0);
	b[0] = 'H';
	assert_int_equal(verify(dir, raw, len), DKIM_STAT_OK);
	/* Nor does it when the subject changes. */
	char *subj = strstr(raw, "\r\nSubject: ");
	assert_non_null(subj);
	subj[11] ^= 1;
	assert_int_not_equal(verify(dir, raw, len), DKIM_STAT_OK);

	/* A key that is not one signs nothing. */
	struct mail_dkim bad = {"example.test", "s2026", "-----BEGIN PRIVATE KEY-----\nAAAA\n"};
	char *copy = strdup(raw);
	size_t clen = len;
	assert_int_equal(mail_dkim_sign(&bad, &copy, &clen), BW_ERR_CRYPTO);
	assert_int_equal(clen, len);
	/* Nor does a d= or s= that would bring tags of its own. */
	const struct mail_dkim names[] = {{"example.test; h=From", "s2026", key},
					  {"example.test", "s2026;l=0", key},
					  {"example.test", "s 2026", key},
					  {"", "s2026", key},
					  {"example.test", NULL, key},
					  {"b\u00fccher.example", "s2026", key}};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		assert_int_equal(mail_dkim_sign(&names[i], &copy, &clen), BW_ERR_INVALID);
		assert_int_equal(clen, len);
		assert_memory_equal(copy, raw, len);
	}
	free(copy);
	memset(key, 0, strlen(key));
	free(key);
	free(txt);
	free(raw);
	assert_int_equal(unit_rmtree(dir), 0);
}

/*
 * The TXT record of a new key pair: "v=DKIM1; k=rsa; p=" and the base64 of
 * the SubjectPublicKeyInfo, which OpenSSL reads back as the public half
 * of the PEM key (RSA, 2048 bits). Two pairs are never the same.
 */
static void
test_dkim_keypair(void **state)
{
	(void)state;
	char *key = NULL, *txt = NULL, *key2 = NULL, *txt2 = NULL;
	assert_int_equal(mail_dkim_keypair(&key, &txt), BW_OK);
	assert_int_equal(mail_dkim_keypair(&key2, &txt2), BW_OK);
	assert_string_not_equal(txt, txt2);
	assert_string_not_equal(key, key2);
	const char *pre = "v=DKIM1; k=rsa; p=";
	assert_int_equal(strncmp(txt, pre, strlen(pre)), 0);
	const char *p = txt + strlen(pre);
	size_t n = strlen(p);
	assert_true(n > 0 && n % 4 == 0);
	const char *b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=";
	assert_int_equal(strspn(p, b64), n);
	unsigned char der[1024];
	int dl = EVP_DecodeBlock(der, (const unsigned char *)p, (int)n);
	assert_true(dl > 0 && (size_t)dl <= sizeof(der));
	dl -= (p[n - 1] == '=') + (p[n - 2] == '='); /* DecodeBlock counts the padding */
	const unsigned char *d = der;
	EVP_PKEY *pub = d2i_PUBKEY(NULL, &d, dl);
	assert_non_null(pub);
	assert_true(EVP_PKEY_is_a(pub, "RSA"));
	assert_int_equal(EVP_PKEY_get_bits(pub), 2048);
	BIO *b = BIO_new_mem_buf(key, -1);
	EVP_PKEY *priv = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
	assert_non_null(priv);
	assert_int_equal(EVP_PKEY_eq(pub, priv), 1);
	EVP_PKEY_free(priv);
	BIO_free(b);
	EVP_PKEY_free(pub);
	memset(key, 0, strlen(key));
	memset(key2, 0, strlen(key2));
	free(key);
	free(key2);
	free(txt);
	free(txt2);
}

static void
test_smtp_envelope_refused(void **state)
{
	(void)state;
	char reply[MAIL_REPLY_MAX];
	struct mail_smtp s = {.host = "127.0.0.1", .port = 9, .security = MAIL_TLS_NONE,
			      .connect_timeout_ms = 500, .timeout_ms = 1000};
	const char *bad[] = {"a@example.test>\r\nRCPT TO:<b@example.test", "<a@example.test>",
			     "a@example.test b@example.test", "", "no-at-sign"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(mail_smtp_send(&s, bad[i], "ok@example.test", "x", 1, reply),
				 BW_ERR_INVALID);
		assert_int_equal(mail_smtp_send(&s, "ok@example.test", bad[i], "x", 1, reply),
				 BW_ERR_INVALID);
	}
	/* Nothing is sent when the server, the HELO name or the protection is not one to use. */
	const char *hosts[] = {"evil.example/x", "a@b", "host name", "x.test\r\nRSET", "[::1]", ""};
	for (size_t i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++) {
		s.host = hosts[i];
		assert_int_equal(
		    mail_smtp_send(&s, "ok@example.test", "ok@example.test", "x", 1, reply),
		    BW_ERR_INVALID);
	}
	s.host = "127.0.0.1";
	s.helo_name = "mx.example.test/../x";
	assert_int_equal(mail_smtp_send(&s, "ok@example.test", "ok@example.test", "x", 1, reply),
			 BW_ERR_INVALID);
	s.helo_name = NULL;
	s.port = 0;
	assert_int_equal(mail_smtp_send(&s, "ok@example.test", "ok@example.test", "x", 1, reply),
			 BW_ERR_INVALID);
	s.port = 9;
	assert_int_equal(mail_smtp_send(&s, "ok@example.test", "ok@example.test", "x", 0, reply),
			 BW_ERR_INVALID);
	/* In clear only to this machine: the password would cross the network as it is. */
	s.host = "mail.example.test";
	s.username = "u";
	s.password = "secret-password";
	assert_int_equal(mail_smtp_send(&s, "ok@example.test", "ok@example.test", "x", 1, reply),
			 BW_ERR_INVALID);
	assert_null(strstr(reply, "secret-password"));
	s.security = (enum mail_tls)7;
	assert_int_equal(mail_smtp_send(&s, "ok@example.test", "ok@example.test", "x", 1, reply),
			 BW_ERR_INVALID);
	s.security = MAIL_TLS_NONE;
	s.username = s.password = NULL;
	/* Nobody listens on port 9 of loopback: a failure worth trying again. */
	s.host = "127.0.0.1";
	assert_int_equal(mail_smtp_send(&s, "ok@example.test", "ok@example.test", "x", 1, reply),
			 BW_ERR_UNAVAILABLE);
	assert_true(reply[0] != '\0');
	s.host = "::1"; /* an IPv6 literal: bracketed in the URL */
	s.helo_name = "mx.example.test";
	assert_int_equal(mail_smtp_send(&s, "ok@example.test", "ok@example.test", "x", 1, reply),
			 BW_ERR_UNAVAILABLE);
}

static int
setup(void **state)
{
	(void)state;
	return mail_init() == BW_OK ? 0 : -1;
}

static int
teardown(void **state)
{
	(void)state;
	mail_shutdown();
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_build_and_read_back),
	    cmocka_unit_test(test_text_only),
	    cmocka_unit_test(test_body_round_trip),
	    cmocka_unit_test(test_idn),
	    cmocka_unit_test(test_injection_refused),
	    cmocka_unit_test(test_dkim_sign_verify),
	    cmocka_unit_test(test_dkim_keypair),
	    cmocka_unit_test(test_smtp_envelope_refused),
	};
	return cmocka_run_group_tests_name("mail", tests, setup, teardown);
}
