/*
 * If-Match as the HTTP layer reads it (src/http/req.c): "*" alone, or a
 * list of entity tags (RFC 9110 13.1.1, 5.6.1), over one or more field
 * lines. Weak tags never match; strong tags name a version only in the
 * form our ETags take (a positive decimal, no leading zero, within int64);
 * anything that is neither "*" nor a list of tags is malformed.
 */
#include "unit.h"

#include "http/http.h"

/* Parse the NULL-ended field lines; the error, with *m filled on success. */
static bw_err
parse(struct http_if_match *m, const char *why_part, const char *first, ...)
{
	const char *lines[8];
	size_t lens[8], n = 0;
	va_list ap;
	va_start(ap, first);
	for (const char *l = first; l != NULL && n < 8; l = va_arg(ap, const char *)) {
		lines[n] = l;
		lens[n++] = strlen(l);
	}
	va_end(ap);
	const char *why = "unset";
	bw_err e = http_if_match_parse(lines, lens, n, m, &why);
	if (e == BW_OK)
		assert_null(why);
	else if (why_part != NULL)
		assert_non_null(strstr(why, why_part));
	return e;
}

static void
want(const struct http_if_match *m, size_t n, const int64_t *v)
{
	assert_int_equal(m->n, n);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(m->version[i], v[i]);
}

static void
test_no_precondition(void **state)
{
	(void)state;
	struct http_if_match m;
	const char *why = "unset";
	/* No field at all, and "*" (with spaces around it): one try, unconditional. */
	assert_int_equal(http_if_match_parse(NULL, NULL, 0, &m, &why), BW_OK);
	want(&m, 1, (int64_t[]){0});
	assert_int_equal(parse(&m, NULL, "*", NULL), BW_OK);
	want(&m, 1, (int64_t[]){0});
	assert_int_equal(parse(&m, NULL, " \t* ", NULL), BW_OK);
	want(&m, 1, (int64_t[]){0});
}

static void
test_versions(void **state)
{
	(void)state;
	struct http_if_match m;
	assert_int_equal(parse(&m, NULL, "\"3\"", NULL), BW_OK);
	want(&m, 1, (int64_t[]){3});
	/* Lists, spaces, empty elements, repeats, several field lines. */
	assert_int_equal(parse(&m, NULL, " \"3\" ,\t\"17\",, \"3\" ", NULL), BW_OK);
	want(&m, 2, (int64_t[]){3, 17});
	assert_int_equal(parse(&m, NULL, "\"5\"", "\"6\", \"5\"", NULL), BW_OK);
	want(&m, 2, (int64_t[]){5, 6});
	assert_int_equal(parse(&m, NULL, "\"9223372036854775807\"", NULL), BW_OK);
	want(&m, 1, (int64_t[]){INT64_MAX});
	/* Weak tags are skipped, strong ones beside them kept. */
	assert_int_equal(parse(&m, NULL, "W/\"4\", \"8\"", NULL), BW_OK);
	want(&m, 1, (int64_t[]){8});
}

static void
test_never_matches(void **state)
{
	(void)state;
	struct http_if_match m;
	/* Valid tags that name no version of ours: one try that no row can pass. */
	static const char *const none[] = {
	    "W/\"3\"", "\"\"", "\"03\"", "\"0\"", "\"-1\"", "\"abc\"",
	    "\"9223372036854775808\"", "\"99999999999999999999\"", "W/\"1\", W/\"2\"",
	    "\"\x80\xff\"", /* obs-text is allowed in a tag */
	};
	for (size_t i = 0; i < BW_ARRAY_LEN(none); i++) {
		if (parse(&m, NULL, none[i], NULL) != BW_OK)
			fail_msg("refused: %s", none[i]);
		want(&m, 1, (int64_t[]){-1});
	}
}

static void
test_malformed(void **state)
{
	(void)state;
	struct http_if_match m;
	static const char *const bad[] = {
	    "", " ", ",", " , ,", "3", "\"3", "3\"", "\"3\" \"4\"", "\"3\"4", "W/3", "W/", "w/\"3\"",
	    "W/ \"3\"", "\"3 \"", "\"3\";", "**", "* ,", "\"a\"b\"", "\"3\x7f\"", "\"3\x01\"", "'3'",
	    "\"3\",x", "\"\\\"\"", /* no quoted-pair in an entity tag: that \" ends it */
	};
	for (size_t i = 0; i < BW_ARRAY_LEN(bad); i++) {
		if (parse(&m, "If-Match", bad[i], NULL) != BW_ERR_INVALID)
			fail_msg("accepted: [%s]", bad[i]);
		assert_int_equal(m.n, 0);
	}
	/* "*" is alone: beside a tag, on one line or two, or twice. */
	assert_int_equal(parse(&m, "If-Match", "*, \"3\"", NULL), BW_ERR_INVALID);
	assert_int_equal(parse(&m, "If-Match", "*", "\"3\"", NULL), BW_ERR_INVALID);
	assert_int_equal(parse(&m, "If-Match", "\"3\"", "*", NULL), BW_ERR_INVALID);
	assert_int_equal(parse(&m, "If-Match", "*", "*", NULL), BW_ERR_INVALID);
	/* A good line does not excuse a bad one. */
	assert_int_equal(parse(&m, "If-Match", "\"3\"", "3", NULL), BW_ERR_INVALID);
	/* A NUL inside the value (lengths are explicit) is no etagc. */
	const char *line = "\"3\0\"";
	size_t len = 4;
	const char *why = NULL;
	assert_int_equal(http_if_match_parse(&line, &len, 1, &m, &why), BW_ERR_INVALID);
}

static void
test_bounded(void **state)
{
	(void)state;
	struct http_if_match m;
	char buf[512];
	size_t off = 0;
	/* HTTP_IF_MATCH_MAX distinct versions: fine; one more: refused. */
	for (int i = 1; i <= HTTP_IF_MATCH_MAX; i++)
		off += (size_t)snprintf(buf + off, sizeof(buf) - off, "%s\"%d\"", i > 1 ? ", " : "", i);
	assert_int_equal(parse(&m, NULL, buf, NULL), BW_OK);
	assert_int_equal(m.n, HTTP_IF_MATCH_MAX);
	snprintf(buf + off, sizeof(buf) - off, ", \"%d\"", HTTP_IF_MATCH_MAX + 1);
	assert_int_equal(parse(&m, "too many", buf, NULL), BW_ERR_INVALID);
	/* Repeats and tags that name no version do not count against it. */
	snprintf(buf + off, sizeof(buf) - off, ", \"1\", W/\"99\", \"x\"");
	assert_int_equal(parse(&m, NULL, buf, NULL), BW_OK);
	assert_int_equal(m.n, HTTP_IF_MATCH_MAX);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_precondition), cmocka_unit_test(test_versions),
		cmocka_unit_test(test_never_matches),   cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_bounded),
	};
	return cmocka_run_group_tests_name("ifmatch", tests, NULL, NULL);
}
