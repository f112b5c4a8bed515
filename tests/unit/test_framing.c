/*
 * The framing check on request heads laid out the way libmicrohttpd 0.9.75
 * leaves them: CRLF as two NULs, each colon as one, pointers into the one
 * buffer. Each leniency of the parser is imitated by the mark it leaves.
 */
#include "unit.h"

#include "http/http.h"

struct head {
	char buf[2048];
	const char *version, *end;
	struct http_field f[32];
	size_t n;
};

/*
 * Lay out a raw head (lines ending in CRLF or a bare LF, blank line last) as
 * the parser does: each terminator becomes as many NULs as it had bytes.
 */
static char *
next_line(char *line, char **after)
{
	char *lf = strchr(line, '\n');
	if (lf == NULL)
		return NULL;
	char *eol = lf > line && lf[-1] == '\r' ? lf - 1 : lf;
	for (char *p = eol; p <= lf; p++)
		*p = '\0';
	*after = lf + 1;
	return line;
}

static void
lay_out(struct head *h, const char *raw)
{
	size_t len = strlen(raw);
	char *line, *after;
	assert_true(len < sizeof(h->buf));
	memcpy(h->buf, raw, len + 1);
	h->n = 0;
	assert_non_null(line = next_line(h->buf, &after));
	h->version = strrchr(line, ' ') + 1;
	((char *)h->version)[-1] = '\0';
	while ((line = next_line(after, &after)) != NULL) {
		if (line[0] == '\0') {
			h->end = after;
			return;
		}
		char *colon = strchr(line, ':');
		assert_non_null(colon);
		*colon = '\0';
		char *v = colon + 1;
		while (*v == ' ' || *v == '\t')
			v++;
		h->f[h->n++] = (struct http_field){line, v, (size_t)(colon - line), strlen(v)};
	}
	fail_msg("no blank line");
}

static bw_err
check(struct head *h, struct framing *fr)
{
	const char *why;
	bw_err e = framing_check(h->version, h->f, h->n, h->end, fr, &why);
	assert_true((e == BW_OK) == (why == NULL));
	return e;
}

static void
test_well_formed(void **state)
{
	(void)state;
	struct head h;
	struct framing fr;
	lay_out(&h, "GET / HTTP/1.1\r\nHost: a\r\nX-Empty:\r\nX-Tab:\t v \t\r\n\r\n");
	assert_int_equal(check(&h, &fr), BW_OK);
	assert_int_equal(fr.has_length, 0);
	lay_out(&h, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 123\r\n\r\n");
	assert_int_equal(check(&h, &fr), BW_OK);
	assert_int_equal(fr.has_length, 1);
	assert_int_equal(fr.length, 123);
	/* no chunked request bodies: a length is required (411) */
	lay_out(&h, "POST / HTTP/1.1\r\nhost: a\r\ntransfer-encoding: CHUNKED\r\n\r\n");
	assert_int_equal(check(&h, &fr), BW_ERR_LENGTH_REQUIRED);
	lay_out(&h, "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n");
	assert_int_equal(check(&h, &fr), BW_ERR_LENGTH_REQUIRED);
	lay_out(&h, "GET / HTTP/1.0\r\n\r\n"); /* no Host before HTTP/1.1 */
	assert_int_equal(check(&h, &fr), BW_OK);
}

static void
test_names_and_values(void **state)
{
	(void)state;
	struct head h;
	struct framing fr;
	static const char *const bad[] = {
	    "GET / HTTP/1.1\r\nHost: a\r\nX A: b\r\n\r\n",
	    "GET / HTTP/1.1\r\nHost: a\r\nX-A : b\r\n\r\n",
	    "GET / HTTP/1.1\r\nHost: a\r\nX(A): b\r\n\r\n",
	    "GET / HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n",
	    "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\rc\r\n\r\n",
	    "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x01\r\n\r\n",
	    "GET / HTTP/1.1\r\nHost: a\r\nX-A: \x7f\r\n\r\n",
	    "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
	    "GET / HTTP/1.1\r\nX-A: b\r\n\r\n",
	    "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
	    "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
	    "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1x\r\n\r\n",
	    "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n",
	    "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n",
	    "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
	};
	for (size_t i = 0; i < BW_ARRAY_LEN(bad); i++) {
		lay_out(&h, bad[i]);
		if (check(&h, &fr) != BW_ERR_INVALID)
			fail_msg("accepted: %s", bad[i]);
	}
	static const char *const codings[] = {"gzip", "gzip, chunked", "identity", "chunked ", "x"};
	for (size_t i = 0; i < BW_ARRAY_LEN(codings); i++) {
		char raw[256];
		snprintf(raw, sizeof(raw), "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: %s\r\n\r\n",
			 codings[i]);
		lay_out(&h, raw);
		assert_int_equal(check(&h, &fr), BW_ERR_UNSUPPORTED);
	}
}

/* The marks the parser's leniencies leave on the chain. */
static void
test_chain(void **state)
{
	(void)state;
	struct head h;
	struct framing fr;
	const char *raw = "GET / HTTP/1.1\r\nHost: a\r\nX-A: abc\r\nX-B: d\r\n\r\n";

	/* a NUL inside a value: the value stops short of its line's end */
	lay_out(&h, raw);
	h.f[1].value_len = 1;
	assert_int_equal(check(&h, &fr), BW_ERR_INVALID);
	/* ...also in the last field, caught against the end of the head */
	lay_out(&h, raw);
	h.f[2].value_len = 0;
	assert_int_equal(check(&h, &fr), BW_ERR_INVALID);
	/* an obs-folded line: the name was moved elsewhere to append the fold */
	char moved[32] = "X-Afolded";
	lay_out(&h, raw);
	h.f[1].name = moved;
	h.f[1].name_len = strlen(moved);
	assert_int_equal(check(&h, &fr), BW_ERR_INVALID);
	/* ...or written over in place, so the value now lies inside the name */
	lay_out(&h, raw);
	h.f[1].name_len += 3;
	assert_int_equal(check(&h, &fr), BW_ERR_INVALID);
	/* a bare LF: one NUL between lines, not two */
	lay_out(&h, "GET / HTTP/1.1\r\nHost: a\r\nX-A: abc\nX-B: d\r\n\r\n");
	assert_int_equal(check(&h, &fr), BW_ERR_INVALID);
	lay_out(&h, "GET / HTTP/1.1\r\nHost: a\r\nX-A: abc\r\nX-B: d\r\n\n");
	assert_int_equal(check(&h, &fr), BW_ERR_INVALID);
	/* something after the value on its line */
	lay_out(&h, raw);
	h.f[1].value_len = 2;
	assert_int_equal(check(&h, &fr), BW_ERR_INVALID);
	/* the head does not end where the parser says it does */
	lay_out(&h, raw);
	h.end++;
	assert_int_equal(check(&h, &fr), BW_ERR_INVALID);
	/* a bare LF after the request line */
	lay_out(&h, "GET / HTTP/1.1\nHost: a\r\n\r\n");
	assert_int_equal(check(&h, &fr), BW_ERR_INVALID);
	/* and intact, it passes */
	lay_out(&h, raw);
	assert_int_equal(check(&h, &fr), BW_OK);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_well_formed),
		cmocka_unit_test(test_names_and_values),
		cmocka_unit_test(test_chain),
	};
	return cmocka_run_group_tests_name("framing", tests, NULL, NULL);
}
