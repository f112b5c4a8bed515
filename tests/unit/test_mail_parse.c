/*
 * Incoming mail taken apart (src/mail/parse.c): the sender, the decoded
 * subject, the thread ids, the text (text/plain preferred, HTML made plain
 * text with no script, style, link target or image address left), charsets,
 * attachments decoded byte for byte under names made safe, the loop and
 * bounce signs, what is refused as not a message, nesting that cannot
 * reach the stack, and Authentication-Results believed only from the
 * topmost header and only when it follows RFC 8601. A complex message is
 * fed cut at every length and with bytes changed at random.
 */
#include "unit.h"

#include <gmime/gmime.h>

#include "mail/inbound.h"

#define AUTHSERV "mx.msp.test"

static char *fmt(const char *f, ...) BW_PRINTF(1, 2);

static char *
fmt(const char *f, ...)
{
	va_list ap;
	char *s = NULL;
	va_start(ap, f);
	int n = vasprintf(&s, f, ap);
	va_end(ap);
	assert_true(n >= 0);
	return s;
}

static struct mail_in *
parse_ok(const char *raw)
{
	struct mail_in *m = NULL;
	const char *why = "unset";
	assert_int_equal(mail_parse(raw, strlen(raw), &m, &why), BW_OK);
	assert_non_null(m);
	assert_null(why);
	assert_non_null(m->text);
	assert_non_null(m->subject);
	return m;
}

static void
parse_invalid(const char *raw, size_t len, const char *want_why)
{
	struct mail_in *m = (struct mail_in *)&m; /* overwritten with NULL */
	const char *why = NULL;
	assert_int_equal(mail_parse(raw, len, &m, &why), BW_ERR_INVALID);
	assert_null(m);
	assert_non_null(why);
	if (want_why != NULL)
		assert_string_equal(why, want_why);
}

/* The checks every parsed message must pass, whatever went in. */
static void
assert_sane(const struct mail_in *m)
{
	assert_non_null(m->text);
	size_t n = strlen(m->text);
	assert_true(n <= MAIL_TEXT_MAX);
	assert_true(g_utf8_validate(m->text, (gssize)n, NULL));
	for (const char *p = m->text; *p; p++)
		assert_true((unsigned char)*p >= 0x20 || *p == '\n' || *p == '\t');
	assert_non_null(m->subject);
	assert_true(g_utf8_validate(m->subject, -1, NULL));
	for (const char *p = m->subject; *p; p++)
		assert_true((unsigned char)*p >= 0x20 && *p != 0x7f);
	assert_true(m->from_addr[0] != '\0');
	assert_true(m->nparts <= MAIL_IN_PARTS_MAX && m->nrefs <= MAIL_IN_REFS_MAX &&
		    m->nauth <= MAIL_IN_AUTH_MAX);
	for (size_t i = 0; i < m->nparts; i++) {
		const struct mail_in_part *p = &m->parts[i];
		assert_non_null(p->filename);
		assert_non_null(p->content_type);
		assert_true(p->data != NULL || p->len == 0);
		assert_true(p->filename[0] != '\0');
		assert_true(g_utf8_validate(p->filename, -1, NULL));
		assert_null(strchr(p->filename, '/'));
		assert_null(strchr(p->filename, '\\'));
		assert_true(strcmp(p->filename, "..") != 0 && strcmp(p->filename, ".") != 0);
		for (const char *c = p->filename; *c; c++)
			assert_true((unsigned char)*c >= 0x20 && *c != 0x7f);
		assert_non_null(strchr(p->content_type, '/'));
	}
	for (size_t i = 0; i < m->nrefs; i++)
		assert_true(m->references[i][0] == '<');
	if (m->message_id != NULL)
		assert_true(m->message_id[0] == '<' &&
			    m->message_id[strlen(m->message_id) - 1] == '>');
	(void)mail_auth_verified(m, AUTHSERV);
}

/* --- headers and text ----------------------------------------------------------------- */

static void
test_plain(void **state)
{
	(void)state;
	struct mail_in *m = parse_ok("Received: from x by y; Mon, 1 Jun 2026 10:00:00 +0000\r\n"
				     "From: =?utf-8?q?Ana_L=C3=BAcia?= <ana@example.com>\r\n"
				     "To: support@msp.test\r\n"
				     "Subject: Printer\r\n\ton fire\r\n"
				     "Message-ID: <abc123@example.com>\r\n"
				     "Date: Mon, 1 Jun 2026 10:00:00 +0000\r\n"
				     "\r\n"
				     "Hello,\r\nthe printer\tis on fire.\x01\x1b\r\nbare\rCR\r\n");
	assert_string_equal(m->from_addr, "ana@example.com");
	assert_string_equal(m->from_name, "Ana L\u00facia");
	assert_string_equal(m->subject, "Printer on fire"); /* the fold's tab a space */
	assert_string_equal(m->message_id, "<abc123@example.com>");
	assert_string_equal(m->text, "Hello,\nthe printer\tis on fire.\nbare\nCR\n");
	assert_int_equal(m->from_html, 0);
	assert_int_equal(m->nparts, 0);
	assert_int_equal(m->nskipped, 0);
	assert_null(m->loop);
	assert_null(m->in_reply_to);
	assert_int_equal(m->nrefs, 0);
	assert_int_equal(m->nauth, 0);
	assert_sane(m);
	mail_in_free(m);
	mail_in_free(NULL);

	/* No subject, no name, no id: "", NULL, NULL; an empty body is "". */
	m = parse_ok("From: bob@example.com\n\n");
	assert_string_equal(m->subject, "");
	assert_null(m->from_name);
	assert_null(m->message_id);
	assert_string_equal(m->text, "");
	mail_in_free(m);

	/* The first mailbox of a group, the first of a list. */
	m = parse_ok("From: Team: carol@example.com, dan@example.com;, eve@example.com\n\nx\n");
	assert_string_equal(m->from_addr, "carol@example.com");
	mail_in_free(m);
}

static void
test_alternative_prefers_text(void **state)
{
	(void)state;
	/* The HTML comes first; the text/plain part is still the one taken. */
	struct mail_in *m = parse_ok("From: a@example.com\n"
				     "MIME-Version: 1.0\n"
				     "Content-Type: multipart/alternative; boundary=\"alt\"\n"
				     "\n"
				     "--alt\n"
				     "Content-Type: text/html; charset=utf-8\n"
				     "\n"
				     "<p>the <b>HTML</b> one</p>\n"
				     "--alt\n"
				     "Content-Type: text/plain; charset=utf-8\n"
				     "\n"
				     "the plain one\n"
				     "--alt--\n");
	assert_string_equal(m->text, "the plain one");
	assert_int_equal(m->from_html, 0);
	assert_int_equal(m->nparts, 0); /* the other alternative is not an attachment */
	mail_in_free(m);

	/*
	 * A text/plain attachment is not the text: the HTML is, and the
	 * attachment is an attachment.
	 */
	m = parse_ok("From: a@example.com\n"
		     "Content-Type: multipart/mixed; boundary=\"mix\"\n"
		     "\n"
		     "--mix\n"
		     "Content-Type: text/plain\n"
		     "Content-Disposition: attachment\n"
		     "\n"
		     "log lines\n"
		     "--mix\n"
		     "Content-Type: text/plain; name=\"notes.txt\"\n"
		     "\n"
		     "named, so an attachment too\n"
		     "--mix\n"
		     "Content-Type: text/html\n"
		     "\n"
		     "<div>from the html</div>\n"
		     "--mix--\n");
	assert_string_equal(m->text, "from the html");
	assert_int_equal(m->from_html, 1);
	assert_int_equal(m->nparts, 2);
	assert_string_equal(m->parts[0].filename, "part-1");
	assert_string_equal(m->parts[0].content_type, "text/plain");
	assert_int_equal(m->parts[0].len, strlen("log lines"));
	assert_memory_equal(m->parts[0].data, "log lines", m->parts[0].len);
	assert_string_equal(m->parts[1].filename, "notes.txt");
	mail_in_free(m);

	/* Nothing but an image: text "", the image an attachment. */
	m = parse_ok("From: a@example.com\nContent-Type: image/gif\n"
		     "Content-Transfer-Encoding: base64\n\nR0lGODlh\n");
	assert_string_equal(m->text, "");
	assert_int_equal(m->nparts, 1);
	assert_string_equal(m->parts[0].content_type, "image/gif");
	assert_int_equal(m->parts[0].len, 6);
	assert_memory_equal(m->parts[0].data, "GIF89a", 6);
	mail_in_free(m);
}

static const char html_hostile[] =
    "<!DOCTYPE html><html><head><title>Secret title</title>"
    "<style>p { color: red; background: url(http://x/bg.png) }</style>"
    "<script>alert(1)</script><meta http-equiv=\"refresh\" content=\"0;url=http://x/meta\">"
    "</head>\n"
    "<body onload=\"alert(2)\"><p onclick=\"alert(3)\">Hello <b>there</b>,</p>\n"
    "<img src=\"http://x/track.gif\" alt=\"tracker\" onerror=\"alert(5)\">\n"
    "<p>Click <a href=\"javascript:alert(4)\">here</a> or <a "
    "href=\"http://evil.example/\">there</a>.</p>\n"
    "<script type=\"text/javascript\">document.write('injected')</script>"
    "<noscript>noscript text</noscript><iframe src=\"http://x/frame\">iframe text</iframe>"
    "<object data=\"http://x/obj\">object text</object><embed src=\"http://x/embed\">"
    "<svg><text>svg text</text><script>alert(6)</script></svg>"
    "<math><mi>math text</mi></math>"
    "<!-- a comment -->"
    "<div>Line&nbsp;one<br>Line two &amp; &lt;three&gt;</div>\n"
    "</body></html>\n";

static void
test_html_only(void **state)
{
	(void)state;
	char *raw = fmt("From: a@example.com\n"
			"Content-Type: text/html; charset=utf-8\n"
			"Content-Transfer-Encoding: quoted-printable\n"
			"\n"
			"%s",
			html_hostile);
	struct mail_in *m = parse_ok(raw);
	assert_int_equal(m->from_html, 1);
	assert_string_equal(m->text, "Hello there,\n\nClick here or there.\n\nLine one\n"
				     "Line two & <three>");
	static const char *const never[] = {
	    "alert",  "script",  "color",    "http",     "x/",     "javascript", "onclick",
	    "Secret", "title",   "injected", "noscript", "iframe", "object",     "svg",
	    "math",   "tracker", "comment",  "refresh",  "evil",
	};
	for (size_t i = 0; i < BW_ARRAY_LEN(never); i++)
		assert_null(strstr(m->text, never[i]));
	assert_int_equal(m->nparts, 0);
	mail_in_free(m);
	free(raw);

	/* multipart/related: the HTML is the text, its inline image an attachment. */
	m = parse_ok("From: a@example.com\n"
		     "Content-Type: multipart/related; boundary=\"rel\"\n"
		     "\n"
		     "--rel\n"
		     "Content-Type: text/html\n"
		     "\n"
		     "<p>logo: <img src=\"cid:logo\"></p>\n"
		     "--rel\n"
		     "Content-Type: image/png\n"
		     "Content-ID: <logo>\n"
		     "Content-Disposition: inline\n"
		     "Content-Transfer-Encoding: base64\n"
		     "\n"
		     "iVBORw0KGgo=\n"
		     "--rel--\n");
	assert_string_equal(m->text, "logo:");
	assert_int_equal(m->nparts, 1);
	assert_string_equal(m->parts[0].filename, "part-1");
	assert_string_equal(m->parts[0].content_type, "image/png");
	assert_int_equal(m->parts[0].len, 8);
	assert_memory_equal(m->parts[0].data, "\x89PNG\r\n\x1a\n", 8);
	mail_in_free(m);
}

static void
html_is(const char *html, const char *want)
{
	char *t = mail_html_text(html, strlen(html));
	assert_non_null(t);
	assert_string_equal(t, want);
	free(t);
}

static void
test_html_text(void **state)
{
	(void)state;
	html_is("", "");
	char *t = mail_html_text(NULL, 0);
	assert_string_equal(t, "");
	free(t);
	html_is("<p>a</p><p>b</p>", "a\n\nb");
	html_is("a<br>b<br><br>c<br><br><br><br>d", "a\nb\n\nc\n\nd");
	html_is("<ul><li>one</li><li>two</li></ul>after", "one\ntwo\n\nafter");
	html_is("  lots   of\n\n\t spaces  ", "lots of spaces");
	/* libxml2 puts text straight in <body> in a <p> of its own: a paragraph. */
	html_is("x<div>inner</div>y", "x\n\ninner\ny");
	html_is("<div>x<div>inner</div>y</div>", "x\ninner\ny");
	/* <embed> is void: what libxml2 hangs under it is what follows it. */
	html_is("<p>a<embed src=\"http://x/\">b</p><div>c</div>", "ab\n\nc");
	html_is("<h1>Title</h1>text", "Title\n\ntext");
	html_is("<blockquote>quoted</blockquote>reply", "quoted\n\nreply");
	html_is("<table><tr><td>a</td><td>b</td></tr><tr><th>c</th></tr></table>", "a b\nc");
	html_is("<pre>  keep\n   this</pre>after", "  keep\n   this\n\nafter");
	html_is("caf&eacute; &#x263A; &#8364; &quot;q&quot; &amp;amp;",
		"caf\u00e9 \u263a \u20ac \"q\" &amp;");
	html_is("<a href=\"http://evil.example/\" title=\"t\">the link</a>", "the link");
	html_is("a<!-- hidden -->b", "ab");
	html_is("<p>x<script>hidden</script><style>hidden</style>y</p>", "xy");
	html_is("<p>x<noscript>hidden</noscript><iframe>hidden</iframe>y</p>", "xy");
	html_is("<p>x<object>hidden</object><embed src=h>y</p>", "xy");
	html_is("<p>x<svg><g>hidden</g></svg><math>hidden</math>y</p>", "xy");
	html_is("<p>x<template>hidden</template>y</p>", "xy");
	html_is("<html><head><title>hidden</title></head><body>shown</body></html>", "shown");
	html_is("<b>bold</b> <i>it</i>", "bold it");
	/* Not UTF-8 as given: U+FFFD, and what follows still read as UTF-8. */
	html_is("a\xff b \u00e9", "a\ufffd b \u00e9");
	/* A <meta> charset does not change how it is read: the input is UTF-8. */
	html_is("<meta charset=\"iso-8859-1\"><p>\u00e9</p>", "\u00e9");
	/* A NUL and controls: gone. */
	t = mail_html_text("a\0b\x01"
			   "c",
			   5);
	assert_string_equal(t, "abc");
	free(t);
	/* Unclosed and broken markup is recovered from. */
	html_is("<p>one<p>two<div><span>three", "one\n\ntwo\n\nthree");
	html_is("if 2 < 3 and 5 > 4 then", "if 2 < 3 and 5 > 4 then"); /* text, not markup */
	html_is("<<<>>>&&&;;", ">>>&&&;;");                            /* libxml2's recovery */
	html_is("<p>a</p><x-foo>custom</x-foo><unknown attr=1>u</unknown>", "a\n\ncustomu");
}

/* Nesting far deeper than libxml2 likes: no recursion of ours to overflow. */
static void
test_html_deep(void **state)
{
	(void)state;
	size_t levels = 100000;
	const char *tags[] = {"<div>", "<b>", "<table><tr><td>"};
	for (size_t k = 0; k < BW_ARRAY_LEN(tags); k++) {
		size_t tl = strlen(tags[k]);
		char *html = malloc(levels * tl + 16);
		assert_non_null(html);
		for (size_t i = 0; i < levels; i++)
			memcpy(html + i * tl, tags[k], tl);
		strcpy(html + levels * tl, "deep");
		char *t = mail_html_text(html, strlen(html));
		assert_non_null(t);
		assert_true(g_utf8_validate(t, -1, NULL));
		free(t);
		free(html);
	}
}

/* A message of this type whose body is one byte of first, then é (two bytes) past MAIL_TEXT_MAX. */
static char *
long_message(const char *type, char first)
{
	char *head = fmt("From: a@example.com\nContent-Type: %s; charset=utf-8\n\n%c", type, first);
	size_t hl = strlen(head), body = MAIL_TEXT_MAX + 100;
	char *raw = malloc(hl + body + 1);
	assert_non_null(raw);
	memcpy(raw, head, hl);
	for (size_t i = 0; i + 1 < body; i += 2)
		memcpy(raw + hl + i, "\xc3\xa9", 2);
	raw[hl + body] = '\0';
	free(head);
	return raw;
}

/* The text stops at MAIL_TEXT_MAX bytes, on a character boundary. */
static void
test_text_limit(void **state)
{
	(void)state;
	char *raw = long_message("text/plain", 'x');
	struct mail_in *m = parse_ok(raw);
	size_t n = strlen(m->text);
	assert_int_equal(n, MAIL_TEXT_MAX - 1); /* 1 + 2k: the next é would pass the maximum */
	assert_true(g_utf8_validate(m->text, (gssize)n, NULL));
	mail_in_free(m);
	free(raw);

	/* As HTML: the HTML cut at 1 + 2k bytes, then its leading space dropped. */
	raw = long_message("text/html", ' ');
	m = parse_ok(raw);
	n = strlen(m->text);
	assert_int_equal(n, MAIL_TEXT_MAX - 2);
	assert_true(g_utf8_validate(m->text, (gssize)n, NULL));
	assert_int_equal(m->from_html, 1);
	mail_in_free(m);
	free(raw);
}

static void
test_charsets(void **state)
{
	(void)state;
	struct mail_in *m =
	    parse_ok("From: =?iso-8859-1?q?Jos=E9?= <jose@example.com>\n"
		     "Subject: =?iso-8859-1?q?Caf=E9?= =?utf-8?b?4pyT?= and\x01more\n"
		     "Content-Type: text/plain; charset=iso-8859-1\n"
		     "Content-Transfer-Encoding: quoted-printable\n"
		     "\n"
		     "Caf=E9 cr=E8me, 100=A0=80\n");
	assert_string_equal(m->from_name, "Jos\u00e9");
	assert_string_equal(m->subject, "Caf\u00e9\u2713 and more");
	assert_string_equal(m->text, "Caf\u00e9 cr\u00e8me, 100\u00a0\xc2\x80\n");
	mail_in_free(m);

	/* A line end inside an encoded word is a space, not the end of the subject. */
	m = parse_ok(
	    "From: a@example.com\nSubject: =?utf-8?q?two=0Alines=0D=0Aand=09a_tab?=\n\nx\n");
	assert_string_equal(m->subject, "two lines and a tab");
	mail_in_free(m);

	/* windows-1252, 8bit: the euro sign. */
	m = parse_ok("From: a@example.com\nContent-Type: text/plain; charset=windows-1252\n"
		     "Content-Transfer-Encoding: 8bit\n\n5 \x80\n");
	assert_string_equal(m->text, "5 \u20ac\n");
	mail_in_free(m);

	/* No charset and bytes that are not UTF-8: U+FFFD; an unknown charset the same. */
	m = parse_ok("From: a@example.com\n\ncaf\xe9 ok \u00e9\n");
	assert_string_equal(m->text, "caf\ufffd ok \u00e9\n");
	mail_in_free(m);
	m = parse_ok("From: a@example.com\nContent-Type: text/plain; charset=x-no-such\n\n\xe9\n");
	assert_string_equal(m->text, "\ufffd\n");
	mail_in_free(m);

	/* base64 UTF-8 with a NUL in it: the NUL goes, the rest stays. */
	m = parse_ok("From: a@example.com\nContent-Type: text/plain; charset=utf-8\n"
		     "Content-Transfer-Encoding: base64\n\nYQBiw6k=\n");
	assert_string_equal(m->text, "ab\u00e9");
	mail_in_free(m);

	/* An HTML part in iso-8859-1. */
	m = parse_ok("From: a@example.com\nContent-Type: text/html; charset=iso-8859-1\n\n"
		     "<p>na\xefve</p>\n");
	assert_string_equal(m->text, "na\u00efve");
	mail_in_free(m);
}

/* --- attachments ---------------------------------------------------------------------- */

static void
test_attachments(void **state)
{
	(void)state;
	unsigned char bin[256];
	for (size_t i = 0; i < sizeof(bin); i++)
		bin[i] = (unsigned char)(255 - i);
	gchar *b64 = g_base64_encode(bin, sizeof(bin));
	/* Lines of 76, as senders write them. */
	char folded[512];
	size_t o = 0, bl = strlen(b64);
	for (size_t i = 0; i < bl; i += 76) {
		size_t n = bl - i < 76 ? bl - i : 76;
		memcpy(folded + o, b64 + i, n);
		o += n;
		folded[o++] = '\n';
	}
	folded[o] = '\0';
	g_free(b64);
	char *raw = fmt("From: a@example.com\n"
			"Subject: files\n"
			"MIME-Version: 1.0\n"
			"Content-Type: multipart/mixed; boundary=\"XX\"\n"
			"\n"
			"preamble\n"
			"--XX\n"
			"Content-Type: text/plain; charset=utf-8\n"
			"\n"
			"See attached.\n"
			"--XX\n"
			"Content-Type: application/octet-stream\n"
			"Content-Disposition: attachment;\n"
			" filename*=utf-8''na%%C3%%AFve%%20r%%C3%%A9sum%%C3%%A9.pdf\n"
			"Content-Transfer-Encoding: base64\n"
			"\n"
			"%s"
			"--XX\n"
			"Content-Type: text/plain\n"
			"Content-Disposition: attachment; filename=\"../../etc/passwd\"\n"
			"\n"
			"root:x:0:0\n"
			"--XX\n"
			"Content-Type: image/png\n"
			"Content-Disposition: inline\n"
			"Content-Transfer-Encoding: base64\n"
			"\n"
			"iVBORw0KGgo=\n"
			"--XX\n"
			"Content-Type: APPLICATION/X-Thing; name=\"=?utf-8?q?caf=C3=A9=2Etxt?=\"\n"
			"\n"
			"data\n"
			"--XX\n"
			"Content-Type: application/octet-stream; name=\"..\\\\..\\\\boot.ini\"\n"
			"\n"
			"[boot]\n"
			"--XX\n"
			"Content-Type: application/pdf\n"
			"Content-Disposition: attachment; filename=\"invoice.pdf. . \"\n"
			"\n"
			"%%PDF\n"
			"--XX\n"
			"Content-Type: application/octet-stream\n"
			"Content-Disposition: attachment; filename=\"..\"\n"
			"\n"
			"dots\n"
			"--XX\n"
			"Content-Type: message/rfc822\n"
			"\n"
			"From: inner@example.org\n"
			"Subject: inner\n"
			"\n"
			"inner body\n"
			"--XX\n"
			"Content-Type: text/html\n"
			"\n"
			"<p>an HTML part that is not the text: not an attachment either</p>\n"
			"--XX\n"
			"Content-Type: bad type here\n"
			"\n"
			"x\n"
			"--XX--\n"
			"epilogue\n",
			folded);
	struct mail_in *m = parse_ok(raw);
	assert_string_equal(m->text, "See attached.");
	assert_int_equal(m->from_html, 0);
	assert_int_equal(m->nparts, 9);
	assert_int_equal(m->nskipped, 0);
	const struct mail_in_part *p = m->parts;

	assert_string_equal(p[0].filename, "na\u00efve r\u00e9sum\u00e9.pdf"); /* RFC 2231 */
	assert_string_equal(p[0].content_type, "application/octet-stream");
	assert_int_equal(p[0].len, sizeof(bin));
	assert_memory_equal(p[0].data, bin, sizeof(bin));

	assert_string_equal(p[1].filename, "passwd");
	assert_string_equal(p[1].content_type, "text/plain");
	assert_int_equal(p[1].len, strlen("root:x:0:0"));
	assert_memory_equal(p[1].data, "root:x:0:0", p[1].len);

	assert_string_equal(p[2].filename, "part-3");
	assert_string_equal(p[2].content_type, "image/png");
	assert_int_equal(p[2].len, 8);
	assert_memory_equal(p[2].data, "\x89PNG\r\n\x1a\n", 8);

	assert_string_equal(p[3].filename, "caf\u00e9.txt"); /* RFC 2047 in a name */
	assert_string_equal(p[3].content_type, "application/x-thing");

	assert_string_equal(p[4].filename, "boot.ini");
	assert_string_equal(p[5].filename, "invoice.pdf");
	assert_string_equal(p[6].filename, "part-7");

	assert_string_equal(p[7].filename, "message.eml");
	assert_string_equal(p[7].content_type, "message/rfc822");
	char *eml = g_strndup((const char *)p[7].data, p[7].len);
	assert_non_null(strstr(eml, "From: inner@example.org"));
	assert_non_null(strstr(eml, "Subject: inner"));
	assert_non_null(strstr(eml, "inner body"));
	g_free(eml);

	assert_string_equal(p[8].content_type, "application/octet-stream"); /* "bad type here" */
	assert_sane(m);
	mail_in_free(m);
	free(raw);

	/* Names with controls and separators of every kind. */
	static const struct {
		const char *given, *want;
	} names[] = {
	    {"report\\x01.pdf", "report .pdf"},
	    {"/abs/path/x.txt", "x.txt"},
	    {"a/b\\\\c.txt", "c.txt"},
	    {"trailing/", "part-1"},
	    {"   spaced.txt  ", "spaced.txt"},
	    {"...", "part-1"},
	    {".hidden", ".hidden"},
	};
	for (size_t i = 0; i < BW_ARRAY_LEN(names); i++) {
		char given[64];
		/* \x01 written into the header as the byte itself. */
		const char *g = names[i].given;
		size_t k = 0;
		for (; *g && k + 1 < sizeof(given); g++) {
			if (strncmp(g, "\\x01", 4) == 0) {
				given[k++] = '\x01';
				g += 3;
			} else {
				given[k++] = *g;
			}
		}
		given[k] = '\0';
		raw = fmt("From: a@example.com\nContent-Type: application/octet-stream\n"
			  "Content-Disposition: attachment; filename=\"%s\"\n\nx\n",
			  given);
		m = parse_ok(raw);
		assert_int_equal(m->nparts, 1);
		assert_string_equal(m->parts[0].filename, names[i].want);
		assert_sane(m);
		mail_in_free(m);
		free(raw);
	}

	/* A 600-byte name: cut at MAIL_IN_NAME_MAX bytes, on a character boundary. */
	char longname[700] = "x";
	for (size_t i = 1; i + 2 < 601; i += 2)
		strcat(longname, "\u00e9");
	gchar *enc = g_base64_encode((const guchar *)longname, strlen(longname));
	raw = fmt("From: a@example.com\nContent-Type: application/octet-stream;\n"
		  " name=\"=?utf-8?b?%s?=\"\n\nx\n",
		  enc);
	g_free(enc);
	m = parse_ok(raw);
	assert_int_equal(m->nparts, 1);
	assert_true(strlen(m->parts[0].filename) <= 255);
	assert_true(strlen(m->parts[0].filename) >= 250);
	assert_true(g_utf8_validate(m->parts[0].filename, -1, NULL));
	mail_in_free(m);
	free(raw);
}

static void
test_parts_max(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 1 << 20);
	assert_int_equal(buf_append_str(&b, "From: a@example.com\n"
					    "Content-Type: multipart/mixed; boundary=\"B\"\n\n"
					    "--B\nContent-Type: text/plain\n\nbody\n"),
			 BW_OK);
	for (int i = 1; i <= MAIL_IN_PARTS_MAX + 5; i++)
		assert_int_equal(
		    buf_printf(&b,
			       "--B\nContent-Type: application/octet-stream\n"
			       "Content-Disposition: attachment; filename=\"f%d.bin\"\n"
			       "\nbytes %d\n",
			       i, i),
		    BW_OK);
	assert_int_equal(buf_append_str(&b, "--B--\n"), BW_OK);
	struct mail_in *m = parse_ok(buf_ptr(&b));
	assert_string_equal(m->text, "body");
	assert_int_equal(m->nparts, MAIL_IN_PARTS_MAX);
	assert_int_equal(m->nskipped, 5);
	for (int i = 0; i < MAIL_IN_PARTS_MAX; i++) {
		char want[32];
		snprintf(want, sizeof(want), "f%d.bin", i + 1);
		assert_string_equal(m->parts[i].filename, want);
		snprintf(want, sizeof(want), "bytes %d", i + 1);
		assert_int_equal(m->parts[i].len, strlen(want));
		assert_memory_equal(m->parts[i].data, want, strlen(want));
	}
	mail_in_free(m);
	buf_free(&b);
}

/* --- loops and threads ---------------------------------------------------------------- */

static void
test_loop(void **state)
{
	(void)state;
	static const struct {
		const char *from, *header, *want;
	} cases[] = {
	    {"a@example.com", "X-Nothing: 1", NULL},
	    {"a@example.com", "Auto-Submitted: auto-replied", "auto-submitted"},
	    {"a@example.com", "Auto-Submitted: auto-generated; owner-email=x@y.z",
	     "auto-submitted"},
	    {"a@example.com", "Auto-Submitted: no", NULL},
	    {"a@example.com", "Auto-Submitted: No (a person wrote it)", NULL},
	    {"a@example.com", "Precedence: bulk", "precedence"},
	    {"a@example.com", "Precedence: junk", "precedence"},
	    {"a@example.com", "Precedence: LIST", "precedence"},
	    {"a@example.com", "Precedence: first-class", NULL},
	    {"a@example.com", "X-Autoreply: yes", "auto-reply"},
	    {"a@example.com", "X-Autorespond: vacation", "auto-reply"},
	    {"a@example.com", "X-Auto-Response-Suppress: DR, OOF", "auto-reply"},
	    {"a@example.com", "X-Auto-Response-Suppress: all", "auto-reply"},
	    {"a@example.com", "X-Auto-Response-Suppress: DR, RN, NRN", NULL},
	    {"a@example.com", "X-Auto-Response-Suppress: OOFX", NULL},
	    {"a@example.com", "List-Id: Users <users.lists.example.com>", "auto-reply"},
	    {"a@example.com", "Return-Path: <>", "bounce"},
	    {"a@example.com", "Return-Path: < >", "bounce"},
	    {"a@example.com", "Return-Path: <a@example.com>", NULL},
	    {"MAILER-DAEMON@mx.example.com", "X-Nothing: 1", "bounce"},
	    {"Mailer-Daemon@mx.example.com", "X-Nothing: 1", "bounce"},
	    {"PostMaster@example.com", "X-Nothing: 1", "bounce"},
	    {"postmaster-team@example.com", "X-Nothing: 1", NULL},
	    {"daemon@example.com", "X-Nothing: 1", NULL},
	    {"a@example.com",
	     "Content-Type: multipart/report; report-type=delivery-status; "
	     "boundary=r",
	     "bounce"},
	};
	for (size_t i = 0; i < BW_ARRAY_LEN(cases); i++) {
		char *raw = fmt("From: %s\nSubject: s\n%s\n\n--r\n\nbody\n--r--\n", cases[i].from,
				cases[i].header);
		struct mail_in *m = parse_ok(raw);
		if (cases[i].want == NULL) {
			if (m->loop != NULL)
				fail_msg("case %zu: %s, want none", i, m->loop);
		} else {
			if (m->loop == NULL || strcmp(m->loop, cases[i].want) != 0)
				fail_msg("case %zu: %s, want %s", i, m->loop ? m->loop : "none",
					 cases[i].want);
		}
		mail_in_free(m);
		free(raw);
	}
}

static void
test_threading(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 1 << 16);
	assert_int_equal(
	    buf_append_str(&b, "From: a@example.com\n"
			       "Message-ID: self@example.com\n"
			       "In-Reply-To: <parent@example.com> (Ana's message of Monday)"
			       " <other@example.com>\n"
			       "References:"),
	    BW_OK);
	for (int i = 1; i <= 25; i++)
		assert_int_equal(buf_printf(&b, "%s<r%d@example.com>", i % 3 == 0 ? "\n " : " ", i),
				 BW_OK);
	assert_int_equal(buf_append_str(&b, "\n\nbody\n"), BW_OK);
	struct mail_in *m = parse_ok(buf_ptr(&b));
	assert_string_equal(m->message_id, "<self@example.com>"); /* brackets added */
	assert_string_equal(m->in_reply_to, "<parent@example.com>");
	assert_int_equal(m->nrefs, MAIL_IN_REFS_MAX);
	for (size_t i = 0; i < m->nrefs; i++) {
		char want[32];
		snprintf(want, sizeof(want), "<r%zu@example.com>", i + 6); /* the last twenty */
		assert_string_equal(m->references[i], want);
	}
	mail_in_free(m);
	buf_free(&b);

	/* A phrase before the id, as old mailers write. */
	m = parse_ok("From: a@example.com\nIn-Reply-To: Your message of Mon <p@example.com>\n"
		     "References: <only@example.com>\n\nx\n");
	assert_string_equal(m->in_reply_to, "<p@example.com>");
	assert_int_equal(m->nrefs, 1);
	assert_string_equal(m->references[0], "<only@example.com>");
	mail_in_free(m);

	/* Nothing that is an id: NULL and none. */
	m = parse_ok("From: a@example.com\nIn-Reply-To: just words\nReferences: \n\nx\n");
	assert_null(m->in_reply_to);
	assert_int_equal(m->nrefs, 0);
	mail_in_free(m);
}

/* --- refused ------------------------------------------------------------------------- */

static void
test_garbage(void **state)
{
	(void)state;
	parse_invalid(NULL, 0, NULL);
	parse_invalid("", 0, NULL);
	parse_invalid("hello world, this is not a message\n", 35, NULL);
	parse_invalid("\n\nbody only\n", 12, NULL);
	unsigned char junk[512];
	uint32_t x = 12345;
	for (size_t i = 0; i < sizeof(junk); i++) {
		x = x * 1103515245u + 12345u;
		junk[i] = (unsigned char)(x >> 16);
	}
	junk[0] = 0x01; /* never a header name's first byte */
	parse_invalid((const char *)junk, sizeof(junk), NULL);
	parse_invalid("\x00\x01\x02\xff\xfe", 5, NULL);

	parse_invalid("Subject: no sender\n\nbody\n", 25, "no sender");
	const char *s = "From: <>\nSubject: s\n\nb\n";
	parse_invalid(s, strlen(s), "no sender");
	s = "From: undisclosed-recipients:;\n\nb\n";
	parse_invalid(s, strlen(s), "no sender");
	s = "From: \nSubject: s\n\nb\n";
	parse_invalid(s, strlen(s), "no sender");
	char longaddr[400];
	memset(longaddr, 'a', 300);
	snprintf(longaddr + 300, sizeof(longaddr) - 300, "@example.com");
	char *raw = fmt("From: %s\n\nb\n", longaddr);
	parse_invalid(raw, strlen(raw), "sender address too long");
	free(raw);
}

/* 200 (and 2,000, past GMime's own limit of 1,024) multiparts in each other: no crash. */
static char *
nested(int levels, const char *leaf)
{
	struct buf b;
	buf_init(&b, 1 << 22);
	assert_int_equal(buf_append_str(&b, "From: a@example.com\n"), BW_OK);
	for (int i = 0; i < levels; i++)
		assert_int_equal(
		    buf_printf(&b, "Content-Type: multipart/mixed; boundary=\"b%d\"\n\n--b%d\n", i,
			       i),
		    BW_OK);
	assert_int_equal(buf_printf(&b, "Content-Type: text/plain\n\n%s\n", leaf), BW_OK);
	for (int i = levels - 1; i >= 0; i--)
		assert_int_equal(buf_printf(&b, "--b%d--\n", i), BW_OK);
	char *out = NULL;
	assert_int_equal(buf_take(&b, &out, NULL), BW_OK);
	return out;
}

static void
test_deep_nesting(void **state)
{
	(void)state;
	char *raw = nested(10, "shallow");
	struct mail_in *m = parse_ok(raw);
	assert_string_equal(m->text, "shallow");
	assert_int_equal(m->nskipped, 0);
	mail_in_free(m);
	free(raw);

	int levels[] = {200, 2000};
	for (size_t i = 0; i < BW_ARRAY_LEN(levels); i++) {
		raw = nested(levels[i], "deep");
		struct mail_in *d = NULL;
		const char *why = NULL;
		bw_err e = mail_parse(raw, strlen(raw), &d, &why);
		/* Past the depth looked into: the text is not found there, and that is counted. */
		assert_int_equal(e, BW_OK);
		assert_string_equal(d->text, "");
		assert_int_equal(d->nparts, 0);
		assert_int_equal(d->nskipped, 1); /* the multipart at MAIL_IN_DEPTH_MAX, as one */
		assert_sane(d);
		mail_in_free(d);
		free(raw);
	}

	/* Messages forwarded in messages, 200 deep: one attachment, the outer one. */
	struct buf b;
	buf_init(&b, 1 << 20);
	assert_int_equal(buf_append_str(&b, "From: a@example.com\n"), BW_OK);
	for (int i = 0; i < 200; i++)
		assert_int_equal(buf_append_str(&b, "Content-Type: message/rfc822\n\n"
						    "From: b@example.com\n"),
				 BW_OK);
	assert_int_equal(buf_append_str(&b, "\nthe end\n"), BW_OK);
	m = parse_ok(buf_ptr(&b));
	assert_int_equal(m->nparts, 1);
	assert_string_equal(m->parts[0].filename, "message.eml");
	assert_string_equal(m->text, "");
	mail_in_free(m);
	buf_free(&b);
}

/* --- Authentication-Results ----------------------------------------------------------- */

/* mail_auth_verified of a message from `from` with these header lines on top. */
static int
auth(const char *from, const char *headers, const char *authserv)
{
	char *raw = fmt("%sFrom: %s\nSubject: s\n\nbody\n", headers, from);
	struct mail_in *m = parse_ok(raw);
	int v = mail_auth_verified(m, authserv);
	mail_in_free(m);
	free(raw);
	return v;
}

#define AR "Authentication-Results: "

static void
test_auth_results(void **state)
{
	(void)state;
	static const struct {
		const char *headers;
		int want;
	} cases[] = {
	    /* believed */
	    {AR AUTHSERV "; dkim=pass header.d=example.com header.s=s1 header.b=AbC+/=\n", 1},
	    {AR AUTHSERV " 1; dmarc=pass (p=none dis=none) header.from=example.com\n", 1},
	    {AR "MX.MSP.TEST; DKIM=Pass header.d=EXAMPLE.com\n", 1},
	    {AR AUTHSERV ";\n  dkim=pass (good signature)\n\theader.d=example.com\n", 1},
	    {AR AUTHSERV " (a (nested) comment; dkim=fail) ; dkim=pass (x) header.i=@example.com\n",
	     1},
	    {AR AUTHSERV "; dkim=pass reason=\"sig (ok; good)\" header.d=example.com\n", 1},
	    {AR AUTHSERV "; dkim=pass header.i=ana@example.com\n", 1},
	    {AR AUTHSERV "; dkim=pass header.d=\"example.com\"\n", 1},
	    {AR AUTHSERV "; spf=pass smtp.mailfrom=example.com; dkim=pass header.d=other.test;\n"
			 " dmarc=pass header.from=example.com\n",
	     1},
	    {AR AUTHSERV "; dmarc=pass action=none header.from=example.com\n", 1},
	    {AR AUTHSERV "; dkim/1=pass header.d=example.com\n", 1},
	    {AR AUTHSERV "; dkim=pass header . d = example.com\n", 1},
	    {AR AUTHSERV "; dkim=pass header.d=example.com;\n", 1},
	    {AR "\"" AUTHSERV "\"; dkim=pass header.d=example.com\n", 1},
	    {AR AUTHSERV "; dkim=pass header.d=example.com\n" AR "other.mx; dkim=fail\n", 1},
	    /* not believed */
	    /* a DMARC pass must name the From domain */
	    {AR AUTHSERV "; dmarc=pass\n", 0},
	    /* DMARC failed: no DKIM pass of the domain undoes that (a second From was signed) */
	    {AR AUTHSERV "; dkim=pass header.d=example.com; dmarc=fail header.from=example.com\n", 0},
	    {AR AUTHSERV "; dmarc=fail header.from=example.com; dkim=pass header.d=example.com\n", 0},
	    {AR AUTHSERV "; dkim=pass header.d=example.com; dmarc=pass header.from=other.test\n", 0},
	    /* a lower header in the trusted server's name: forgeries are not removed */
	    {AR AUTHSERV "; dkim=pass header.d=example.com\n" AR AUTHSERV "; dkim=fail\n", 0},
	    {AR AUTHSERV "; dkim=fail header.d=example.com\n" AR AUTHSERV
			 "; dkim=pass header.d=example.com\n",
	     0},
	    {AR AUTHSERV "; spf=pass smtp.mailfrom=example.com\n" AR AUTHSERV
			 "; dkim=pass header.d=example.com\n",
	     0},
	    {"X-Other: 1\n", 0},
	    {AR "evil.example; dkim=pass header.d=example.com\n", 0},
	    {AR AUTHSERV ".evil.example; dkim=pass header.d=example.com\n", 0},
	    {AR "mx.msp.tes; dkim=pass header.d=example.com\n", 0},
	    {AR "x" AUTHSERV "; dkim=pass header.d=example.com\n", 0},
	    {AR AUTHSERV "; dkim=pass header.d=other.test\n", 0},
	    {AR AUTHSERV "; dkim=pass header.d=example.com.evil.test\n", 0},
	    {AR AUTHSERV "; dkim=pass header.d=evil-example.com\n", 0},
	    {AR AUTHSERV "; dkim=pass header.d=sub.example.com\n", 0},
	    {AR AUTHSERV "; dkim=pass header.i=@sub.example.com\n", 0},
	    {AR AUTHSERV "; dkim=pass header.i=example.com\n", 0},
	    {AR AUTHSERV "; dkim=pass\n", 0},
	    {AR AUTHSERV "; dkim=fail header.d=example.com\n", 0},
	    {AR AUTHSERV "; dkim=neutral header.d=example.com\n", 0},
	    {AR AUTHSERV "; dkim=passed header.d=example.com\n", 0},
	    {AR AUTHSERV "; dkim=fail (dkim=pass header.d=example.com) header.d=example.com\n", 0},
	    {AR AUTHSERV "; dkim=pass header.d=evil.test header.d=example.com\n", 0},
	    {AR AUTHSERV "; dmarc=pass header.from=other.test\n", 0},
	    {AR AUTHSERV "; dmarc=fail header.from=example.com\n", 0},
	    {AR AUTHSERV "; spf=pass smtp.mailfrom=example.com\n", 0},
	    {AR AUTHSERV "; arc=pass; dkim-atps=pass header.d=example.com\n", 0},
	    {AR AUTHSERV "; none\n", 0},
	    {AR AUTHSERV " 1; none\n", 0},
	    {AR AUTHSERV "\n", 0},
	    {AR "\n", 0},
	    /* not RFC 8601: nothing believed, a pass before the error neither */
	    {AR AUTHSERV " dkim=pass header.d=example.com\n", 0},
	    {AR AUTHSERV "; dkim=pass header.d=example.com (unclosed\n", 0},
	    {AR AUTHSERV "; dkim=pass header.d=\"example.com\n", 0},
	    {AR AUTHSERV "; dkim=pass header.d=example.com; dmarc\n", 0},
	    {AR AUTHSERV "; dkim=pass header.d=example.com; =pass\n", 0},
	    {AR AUTHSERV "; dkim=pass header.d=example.com )\n", 0},
	    {AR AUTHSERV "; dkim=pass header.d=example.com header.s\n", 0},
	    {AR AUTHSERV "; dkim pass header.d=example.com\n", 0},
	    {AR AUTHSERV "; dkim=pass header.d=example.com; none\n", 0},
	    {AR AUTHSERV " 1x; dkim=pass header.d=example.com\n", 0},
	};
	for (size_t i = 0; i < BW_ARRAY_LEN(cases); i++) {
		int got = auth("Ana <ana@example.com>", cases[i].headers, AUTHSERV);
		if (got != cases[i].want)
			fail_msg("case %zu: %d, want %d: %s", i, got, cases[i].want,
				 cases[i].headers);
	}
	const char *good = AR AUTHSERV "; dkim=pass header.d=example.com\n";
	assert_int_equal(auth("ana@example.com", good, AUTHSERV), 1);
	assert_int_equal(auth("ana@EXAMPLE.COM", good, AUTHSERV), 1);
	assert_int_equal(auth("ana@example.com", good, "mx.msp.test"), 1);
	assert_int_equal(auth("ana@example.com", good, NULL), 0);
	assert_int_equal(auth("ana@example.com", good, ""), 0);
	assert_int_equal(auth("ana@other.test", good, AUTHSERV), 0);
	assert_int_equal(auth("ana", good, AUTHSERV), 0);
	/* Who wrote must be one mailbox in one From: else the pass may be another's. */
	char *two = fmt("%sFrom: Mallory <mallory@example.com>\n", good);
	assert_int_equal(auth("Ana <ana@example.com>", two, AUTHSERV), 0);
	free(two);
	assert_int_equal(auth("ana@example.com, mallory@example.com", good, AUTHSERV), 0);
	assert_int_equal(auth("Team: ana@example.com;", good, AUTHSERV), 0);
	char *twice = fmt("%sMessage-ID: <a@x>\nMessage-ID: <b@x>\n", good);
	assert_int_equal(auth("ana@example.com", twice, AUTHSERV), 0);
	free(twice);

	/* More headers than kept: the topmost MAIL_IN_AUTH_MAX, topmost first. */
	struct buf b;
	buf_init(&b, 1 << 16);
	for (int i = 0; i < MAIL_IN_AUTH_MAX + 3; i++)
		assert_int_equal(buf_printf(&b, AR "hop%d.test;\n spf=none\n", i), BW_OK);
	assert_int_equal(buf_append_str(&b, "From: a@example.com\n\nx\n"), BW_OK);
	struct mail_in *m = parse_ok(buf_ptr(&b));
	assert_int_equal(m->nauth, MAIL_IN_AUTH_MAX);
	assert_string_equal(m->auth_results[0], "hop0.test; spf=none"); /* unfolded */
	assert_string_equal(m->auth_results[MAIL_IN_AUTH_MAX - 1], "hop7.test; spf=none");
	mail_in_free(m);
	buf_free(&b);
	assert_int_equal(mail_auth_verified(NULL, AUTHSERV), 0);
}

/* Every prefix of an Authentication-Results value, read straight from the struct. */
static void
test_auth_prefixes(void **state)
{
	(void)state;
	const char *v =
	    AUTHSERV " 1 (c (nested) \\) x); spf=pass smtp.mailfrom=\"a\\\"b\"@example.com;"
		     " dkim=pass reason=\"ok\" header.d=example.com header.b=x=y";
	struct mail_in *m = calloc(1, sizeof(*m));
	assert_non_null(m);
	snprintf(m->from_addr, sizeof(m->from_addr), "ana@example.com");
	m->nauth = 1;
	size_t n = strlen(v);
	const char *full_d = strstr(v, "header.d=example.com") + strlen("header.d=example.com");
	for (size_t k = 0; k <= n; k++) {
		m->auth_results[0] = g_strndup(v, k);
		int got = mail_auth_verified(m, AUTHSERV);
		/* Believed only once the whole header.d is there. */
		if (got && k < (size_t)(full_d - v))
			fail_msg("prefix of %zu believed", k);
		g_free(m->auth_results[0]);
	}
	m->auth_results[0] = g_strdup(v);
	assert_int_equal(mail_auth_verified(m, AUTHSERV), 1);
	g_free(m->auth_results[0]);
	m->auth_results[0] = NULL;
	m->nauth = 0;
	free(m);
}

/* --- cut and changed ------------------------------------------------------------------ */

static const char complex_msg[] =
    "Return-Path: <ana@example.com>\r\n"
    "Authentication-Results: mx.msp.test; dkim=pass (ok; really) header.d=example.com\r\n"
    "Authentication-Results: evil.test; dmarc=pass\r\n"
    "From: =?utf-8?q?Ana_L=C3=BAcia?= <ana@example.com>\r\n"
    "Subject: =?iso-8859-1?q?R=E9union?= =?utf-8?b?4pyT?=\r\n"
    "Message-ID: <m1@example.com>\r\n"
    "In-Reply-To: <p0@example.com>\r\n"
    "References: <p1@example.com> <p0@example.com>\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: multipart/mixed; boundary=\"outer\"\r\n"
    "\r\n"
    "--outer\r\n"
    "Content-Type: multipart/alternative; boundary=\"alt\"\r\n"
    "\r\n"
    "--alt\r\n"
    "Content-Type: text/plain; charset=iso-8859-1\r\n"
    "Content-Transfer-Encoding: quoted-printable\r\n"
    "\r\n"
    "Caf=E9 au lait=\r\n"
    " soft break\r\n"
    "--alt\r\n"
    "Content-Type: text/html; charset=utf-8\r\n"
    "\r\n"
    "<p onclick=x>Caf\xc3\xa9<script>alert(1)</script></p>\r\n"
    "--alt--\r\n"
    "--outer\r\n"
    "Content-Type: application/pdf; name=\"=?utf-8?q?r=C3=A9sum=C3=A9.pdf?=\"\r\n"
    "Content-Disposition: attachment; filename*=utf-8''r%C3%A9sum%C3%A9.pdf\r\n"
    "Content-Transfer-Encoding: base64\r\n"
    "\r\n"
    "JVBERi0xLjQKJcOkw7zDtsOfCjIgMCBvYmoKPDwvTGVuZ3RoIDMgMCBSL0ZpbHRlci9GbGF0ZURl\r\n"
    "Y29kZT4+CnN0cmVhbQp4nDPQM1Qo5ypUMFAwALJMLU31jBQsTAz1LBSKUrnCtRTyuAIVAIDmBgQK\r\n"
    "--outer\r\n"
    "Content-Type: message/rfc822\r\n"
    "\r\n"
    "From: inner@example.org\r\n"
    "Content-Type: multipart/mixed; boundary=\"in\"\r\n"
    "\r\n"
    "--in\r\n"
    "Content-Type: text/plain\r\n"
    "\r\n"
    "inner\r\n"
    "--in--\r\n"
    "--outer\r\n"
    "Content-Type: image/png; name=\"../../x.png\"\r\n"
    "Content-Transfer-Encoding: base64\r\n"
    "\r\n"
    "iVBORw0KGgo=\r\n"
    "--outer--\r\n";

static void
test_complex_whole(void **state)
{
	(void)state;
	struct mail_in *m = parse_ok(complex_msg);
	assert_string_equal(m->from_addr, "ana@example.com");
	assert_string_equal(m->subject, "R\u00e9union\u2713");
	assert_string_equal(m->text, "Caf\u00e9 au lait soft break");
	assert_int_equal(m->nparts, 3);
	assert_string_equal(m->parts[0].filename, "r\u00e9sum\u00e9.pdf");
	assert_string_equal(m->parts[1].filename, "message.eml");
	assert_string_equal(m->parts[2].filename, "x.png");
	assert_int_equal(m->nauth, 2);
	assert_int_equal(mail_auth_verified(m, AUTHSERV), 1);
	assert_int_equal(mail_auth_verified(m, "evil.test"), 0); /* not the topmost */
	assert_null(m->loop);
	assert_sane(m);
	mail_in_free(m);
}

static void
test_truncations(void **state)
{
	(void)state;
	size_t n = strlen(complex_msg), ok = 0;
	for (size_t k = 0; k <= n; k++) {
		/* A copy of exactly k bytes, so that ASan sees any read past it. */
		char *raw = malloc(k > 0 ? k : 1);
		assert_non_null(raw);
		memcpy(raw, complex_msg, k);
		struct mail_in *m = NULL;
		const char *why = NULL;
		bw_err e = mail_parse(raw, k, &m, &why);
		assert_true(e == BW_OK || e == BW_ERR_INVALID);
		if (e == BW_OK) {
			assert_sane(m);
			ok++;
		} else {
			assert_null(m);
			assert_non_null(why);
		}
		mail_in_free(m);
		free(raw);
	}
	assert_true(ok > n / 2); /* most cuts still have a From */
}

static void
test_mutations(void **state)
{
	(void)state;
	size_t n = strlen(complex_msg);
	uint64_t x = 0x9e3779b97f4a7c15u;
	char *raw = malloc(n);
	assert_non_null(raw);
	for (int round = 0; round < 3000; round++) {
		memcpy(raw, complex_msg, n);
		int changes = 1 + round % 8;
		for (int c = 0; c < changes; c++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			static const char interesting[] = "\0\r\n:;=\"()<>-\\/\x80\xff";
			char b = (x >> 32) % 3 == 0
				     ? interesting[(x >> 40) % (sizeof(interesting) - 1)]
				     : (char)(x >> 48);
			raw[x % n] = b;
		}
		struct mail_in *m = NULL;
		const char *why = NULL;
		bw_err e = mail_parse(raw, n, &m, &why);
		assert_true(e == BW_OK || e == BW_ERR_INVALID);
		if (e == BW_OK)
			assert_sane(m);
		mail_in_free(m);
	}
	free(raw);
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
	    cmocka_unit_test(test_plain),         cmocka_unit_test(test_alternative_prefers_text),
	    cmocka_unit_test(test_html_only),     cmocka_unit_test(test_html_text),
	    cmocka_unit_test(test_html_deep),     cmocka_unit_test(test_text_limit),
	    cmocka_unit_test(test_charsets),      cmocka_unit_test(test_attachments),
	    cmocka_unit_test(test_parts_max),     cmocka_unit_test(test_loop),
	    cmocka_unit_test(test_threading),     cmocka_unit_test(test_garbage),
	    cmocka_unit_test(test_deep_nesting),  cmocka_unit_test(test_auth_results),
	    cmocka_unit_test(test_auth_prefixes), cmocka_unit_test(test_complex_whole),
	    cmocka_unit_test(test_truncations),   cmocka_unit_test(test_mutations),
	};
	return cmocka_run_group_tests_name("mail_parse", tests, setup, teardown);
}
