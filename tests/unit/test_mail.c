/*
 * Outgoing mail without a server: messages built by GMime and read back by
 * GMime's parser (headers, parts, encodings), header injection refused,
 * DKIM signatures made and verified by libopendkim's own verifier against
 * the test's public key (and failing once one byte of the body changes),
 * and the envelope checks of the SMTP client. Sending itself is tested
 * against a real SMTP server in tests/http/test_recovery.py and test_mail.py.
 */
#include "unit.h"

#include <gmime/gmime.h>
#include <opendkim/dkim.h>

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
	GMimeObject *body = g_mime_message_get_mime_part(m);
	assert_true(GMIME_IS_MULTIPART(body));
	GMimeContentType *ct = g_mime_object_get_content_type(body);
	assert_true(g_mime_content_type_is_type(ct, "multipart", "alternative"));
	assert_int_equal(g_mime_multipart_get_count(GMIME_MULTIPART(body)), 2);
	GMimeObject *t = g_mime_multipart_get_part(GMIME_MULTIPART(body), 0);
	GMimeObject *h = g_mime_multipart_get_part(GMIME_MULTIPART(body), 1);
	assert_true(g_mime_content_type_is_type(g_mime_object_get_content_type(t), "text", "plain"));
	assert_true(g_mime_content_type_is_type(g_mime_object_get_content_type(h), "text", "html"));
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
	assert_string_equal(g_mime_object_get_header(GMIME_OBJECT(g), "In-Reply-To"),
			    "<a1@example.test>");
	g_object_unref(g);
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

	/* One byte of the body changed after signing: the signature no longer holds. */
	char *b = strstr(raw, "Hello Ana,");
	assert_non_null(b);
	b[0] = 'J';
	assert_int_not_equal(verify(dir, raw, len), DKIM_STAT_OK);
	b[0] = 'H';
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
	free(copy);
	memset(key, 0, strlen(key));
	free(key);
	free(txt);
	free(raw);
	assert_int_equal(unit_rmtree(dir), 0);
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
	s.host = "evil.example/x";
	assert_int_equal(mail_smtp_send(&s, "ok@example.test", "ok@example.test", "x", 1, reply),
			 BW_ERR_INVALID);
	/* Nobody listens on port 9 of loopback: a failure worth trying again. */
	s.host = "127.0.0.1";
	assert_int_equal(mail_smtp_send(&s, "ok@example.test", "ok@example.test", "x", 1, reply),
			 BW_ERR_UNAVAILABLE);
	assert_true(reply[0] != '\0');
}

static int
setup(void **state)
{
	(void)state;
	return mail_init() == BW_OK ? 0 : -1;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_build_and_read_back),
	    cmocka_unit_test(test_text_only),
	    cmocka_unit_test(test_injection_refused),
	    cmocka_unit_test(test_dkim_sign_verify),
	    cmocka_unit_test(test_smtp_envelope_refused),
	};
	return cmocka_run_group_tests_name("mail", tests, setup, NULL);
}
