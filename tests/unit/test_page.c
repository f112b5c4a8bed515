/*
 * Lists (src/http/page.c): the cursor's round trip and its strict
 * reading, the keyset SQL, the envelope and the Link header; and the
 * RFC 3339 formatter and parser of src/core/util.c every list and row
 * shows its times with.
 */
#include "unit.h"

#include "http/http.h"

/* --- RFC 3339 ------------------------------------------------------------------ */

static void
test_rfc3339_format(void **state)
{
	(void)state;
	static const struct {
		int64_t t;
		const char *s;
	} v[] = {
	    {0, "1970-01-01T00:00:00Z"},
	    {-1, "1969-12-31T23:59:59Z"},
	    {951782400, "2000-02-29T00:00:00Z"},
	    {1709210096, "2024-02-29T12:34:56Z"},
	    {1796182278, "2026-12-02T03:31:18Z"},
	    {253402300799LL, "9999-12-31T23:59:59Z"},
	    {253402300800LL, "9999-12-31T23:59:59Z"}, /* clamped */
	    {INT64_MAX, "9999-12-31T23:59:59Z"},
	    {-62135596800LL, "0001-01-01T00:00:00Z"},
	    {INT64_MIN, "0000-01-01T00:00:00Z"},
	};
	char out[UTIL_TIME_LEN];
	for (size_t i = 0; i < BW_ARRAY_LEN(v); i++) {
		assert_ptr_equal(util_time_rfc3339(v[i].t, out), out);
		assert_string_equal(out, v[i].s);
	}
}

static void
test_rfc3339_parse(void **state)
{
	(void)state;
	static const struct {
		const char *s;
		int64_t t;
	} good[] = {
	    {"2026-12-02T03:31:18Z", 1796182278},
	    {"2026-12-02t03:31:18z", 1796182278},
	    {"2026-12-02T04:31:18+01:00", 1796182278},
	    {"2026-12-01T22:01:18-05:30", 1796182278},
	    {"2026-12-02T03:31:18.999999999Z", 1796182278},
	    {"2026-12-02T03:31:18.5+00:00", 1796182278},
	    {"1970-01-01T00:00:00Z", 0},
	    {"1969-12-31T23:59:59Z", -1},
	    {"2000-02-29T00:00:00Z", 951782400},
	    {"9999-12-31T23:59:59Z", 253402300799LL},
	};
	for (size_t i = 0; i < BW_ARRAY_LEN(good); i++) {
		int64_t t = 42;
		assert_int_equal(util_parse_rfc3339(good[i].s, &t), BW_OK);
		assert_int_equal(t, good[i].t);
	}
	static const char *const bad[] = {
	    NULL, "", "2026-12-02", "2026-12-02T03:31:18", "2026-12-02 03:31:18Z",
	    "2026-12-02T03:31Z", "2026-13-02T03:31:18Z", "2026-00-02T03:31:18Z",
	    "2026-02-29T03:31:18Z", "1900-02-29T00:00:00Z", "2026-04-31T00:00:00Z",
	    "2026-12-02T24:00:00Z", "2026-12-02T23:60:00Z", "2026-12-02T23:59:60Z",
	    "2026-12-02T03:31:18+0100", "2026-12-02T03:31:18+24:00", "2026-12-02T03:31:18+01:60",
	    "2026-12-02T03:31:18.Z", "2026-12-02T03:31:18.1234567890Z", "2026-12-02T03:31:18Zjunk",
	    "2026-12-02T03:31:18Z ", " 2026-12-02T03:31:18Z", "+2026-12-02T03:31:18Z",
	    "2026-1-02T03:31:18Z", "20261202T033118Z", "1796182278", "2026-12-02T03:31:18UTC",
	    "2026-12-02T03:31:18 +01:00", "2026-12-02T0a:31:18Z", "2026-12-02T03:31:18-",
	};
	for (size_t i = 0; i < BW_ARRAY_LEN(bad); i++) {
		int64_t t = 42;
		assert_int_equal(util_parse_rfc3339(bad[i], &t), BW_ERR_INVALID);
		assert_int_equal(t, 42); /* nothing written on refusal */
	}
}

/* Every formatted time reads back as itself, across leap years and centuries. */
static void
test_rfc3339_round_trip(void **state)
{
	(void)state;
	char out[UTIL_TIME_LEN];
	for (int64_t t = -62167219200LL; t <= 253402300799LL; t += 86400LL * 97 + 3607) {
		int64_t back = 0;
		util_time_rfc3339(t, out);
		assert_int_equal(util_parse_rfc3339(out, &back), BW_OK);
		assert_int_equal(back, t);
	}
}

/* --- page.c --------------------------------------------------------------------- */

static const struct route list_route = {HTTP_GET, "/api/v1/tickets", NULL, 0, "tickets.view", 0,
					NULL};
static const struct route other_route = {HTTP_GET, "/api/v1/customers", NULL, 0, "customers.view",
					 0, NULL};

static void
req_init(struct http_req *r, const struct route *route, const char *query)
{
	memset(r, 0, sizeof(*r));
	r->pool = pool_new(1 << 20);
	assert_non_null(r->pool);
	r->route = route;
	r->path = route->pattern;
	r->query = query;
}

static void
req_done(struct http_req *r)
{
	json_decref(r->reply);
	pool_free(r->pool);
}

static const char *
reply_header(const struct http_req *r, const char *name)
{
	for (size_t i = 0; i < r->nheaders; i++)
		if (strcmp(r->headers[i].name, name) == 0)
			return r->headers[i].value;
	return NULL;
}

/*
 * The next cursor of a full page on route whose last row has key k (sort
 * as given), copied into out; checks the envelope on the way.
 */
static void
make_cursor(const struct route *route, const char *sort, const char *col, int desc,
	    enum page_type type, struct page_key k, char *out, size_t cap)
{
	struct http_req r;
	struct page p;
	struct http_query q;
	req_init(&r, route, "status=open&limit=2&sort=x");
	page_init(&p);
	assert_int_equal(http_query_parse(&r, &q), BW_OK);
	assert_int_equal(page_order(&r, &p, sort, col, desc, type), BW_OK);
	p.limit = 2;
	p.total = 7;
	p.n = 2;
	p.more = 1;
	p.last = k;
	assert_int_equal(page_reply(&r, &p, &q, json_array()), BW_OK);
	assert_int_equal(r.status, 200);
	json_t *b = r.reply;
	assert_int_equal(json_object_size(b), 5);
	assert_true(json_is_array(json_object_get(b, "data")));
	assert_int_equal(json_integer_value(json_object_get(b, "total")), 7);
	assert_int_equal(json_integer_value(json_object_get(b, "limit")), 2);
	assert_true(json_is_true(json_object_get(b, "has_more")));
	const char *c = json_string_value(json_object_get(b, "next_cursor"));
	assert_non_null(c);
	assert_true(strlen(c) < cap);
	snprintf(out, cap, "%s", c);
	/* The Link keeps the other parameters, replaces limit and cursor. */
	const char *link = reply_header(&r, "Link");
	assert_non_null(link);
	char want[2048];
	snprintf(want, sizeof(want), "<%s?status=open&sort=x&limit=2&cursor=%s>; rel=\"next\"",
		 route->pattern, c);
	assert_string_equal(link, want);
	req_done(&r);
}

/* page_order() on route with cursor c: its result, and the key read into *k. */
static bw_err
read_cursor(const struct route *route, const char *c, const char *sort, const char *col,
	    int desc, enum page_type type, struct page_key *k, char *text, size_t cap)
{
	struct http_req r;
	struct page p;
	int taken = 0;
	req_init(&r, route, NULL);
	page_init(&p);
	assert_int_equal(page_param(&r, &p, "cursor", c, &taken), BW_OK);
	assert_int_equal(taken, 1);
	bw_err e = page_order(&r, &p, sort, col, desc, type);
	if (e == BW_OK) {
		assert_true(p.have_after);
		*k = p.after;
		if (text != NULL)
			snprintf(text, cap, "%s", p.after.s ? p.after.s : "");
	} else {
		assert_int_equal(r.status, 400);
	}
	req_done(&r);
	return e;
}

static void
test_cursor_round_trip(void **state)
{
	(void)state;
	char c[1024], text[PAGE_TEXT_MAX + 1];
	struct page_key k;

	make_cursor(&list_route, "id", "id", 0, PAGE_INT, (struct page_key){.i = 41, .id = 41}, c,
		    sizeof(c));
	assert_int_equal(read_cursor(&list_route, c, "id", "id", 0, PAGE_INT, &k, NULL, 0), BW_OK);
	assert_int_equal(k.id, 41);
	assert_int_equal(k.i, 41);
	assert_false(k.null);

	make_cursor(&list_route, "-total_cents", "total_cents", 1, PAGE_INT,
		    (struct page_key){.i = -5, .id = 9}, c, sizeof(c));
	assert_int_equal(
	    read_cursor(&list_route, c, "-total_cents", "total_cents", 1, PAGE_INT, &k, NULL, 0),
	    BW_OK);
	assert_int_equal(k.i, -5);
	assert_int_equal(k.id, 9);

	make_cursor(&list_route, "subject", "subject", 0, PAGE_TEXT,
		    (struct page_key){.s = "Drucker \xc3\xa4 \n 'x' OR 1=1 --", .id = 3}, c, sizeof(c));
	assert_int_equal(
	    read_cursor(&list_route, c, "subject", "subject", 0, PAGE_TEXT, &k, text, sizeof(text)),
	    BW_OK);
	assert_string_equal(text, "Drucker \xc3\xa4 \n 'x' OR 1=1 --");
	assert_int_equal(k.id, 3);

	make_cursor(&list_route, "due_on", "due_on", 0, PAGE_TEXT, (struct page_key){.null = 1, .id = 8},
		    c, sizeof(c));
	assert_int_equal(read_cursor(&list_route, c, "due_on", "due_on", 0, PAGE_TEXT, &k, NULL, 0),
			 BW_OK);
	assert_true(k.null);
	assert_int_equal(k.id, 8);

	/* The URL-safe alphabet only: nothing to escape in a query string. */
	assert_int_equal(strspn(c, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
			 strlen(c));
}

/* A cursor is read only by the list and sort it was made for, and only as it was made. */
static void
test_cursor_refused(void **state)
{
	(void)state;
	char c[1024], t[1100];
	struct page_key k;
	make_cursor(&list_route, "subject", "subject", 0, PAGE_TEXT,
		    (struct page_key){.s = "printer", .id = 12}, c, sizeof(c));
	/* Another sort, direction, type or list. */
	assert_int_equal(read_cursor(&list_route, c, "-subject", "subject", 1, PAGE_TEXT, &k, NULL, 0),
			 BW_ERR_INVALID);
	assert_int_equal(read_cursor(&list_route, c, "id", "id", 0, PAGE_INT, &k, NULL, 0),
			 BW_ERR_INVALID);
	assert_int_equal(read_cursor(&list_route, c, "subject", "subject", 0, PAGE_INT, &k, NULL, 0),
			 BW_ERR_INVALID);
	assert_int_equal(read_cursor(&other_route, c, "subject", "subject", 0, PAGE_TEXT, &k, NULL, 0),
			 BW_ERR_INVALID);
	/* Every single character changed, dropped or added. */
	size_t n = strlen(c);
	for (size_t i = 0; i < n; i++) {
		static const char alt[] = "Aa0-_/+=%.";
		for (size_t a = 0; a < sizeof(alt) - 1; a++) {
			if (alt[a] == c[i])
				continue;
			snprintf(t, sizeof(t), "%s", c);
			t[i] = alt[a];
			assert_int_equal(
			    read_cursor(&list_route, t, "subject", "subject", 0, PAGE_TEXT, &k, NULL, 0),
			    BW_ERR_INVALID);
		}
		snprintf(t, sizeof(t), "%.*s%s", (int)i, c, c + i + 1);
		assert_int_equal(read_cursor(&list_route, t, "subject", "subject", 0, PAGE_TEXT, &k, NULL, 0),
				 BW_ERR_INVALID);
	}
	snprintf(t, sizeof(t), "%sA", c);
	assert_int_equal(read_cursor(&list_route, t, "subject", "subject", 0, PAGE_TEXT, &k, NULL, 0),
			 BW_ERR_INVALID);
	/* Not a cursor at all. */
	static const char *const junk[] = {"", "x", "====", "' OR 1=1 --", "MTI", "AAAAAAAAAAAAAAAA",
					   "%00", "aWQKMQppMQ"};
	for (size_t i = 0; i < BW_ARRAY_LEN(junk); i++)
		assert_int_equal(read_cursor(&list_route, junk[i], "id", "id", 0, PAGE_INT, &k, NULL, 0),
				 BW_ERR_INVALID);
	/* Too long to be one. */
	char big[4096];
	memset(big, 'A', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(read_cursor(&list_route, big, "id", "id", 0, PAGE_INT, &k, NULL, 0),
			 BW_ERR_INVALID);
}

static void
test_limit(void **state)
{
	(void)state;
	static const char *const bad[] = {"0", "101", "-1", "x", "", "1e2", " 5", "5 ", "0x10"};
	for (size_t i = 0; i < BW_ARRAY_LEN(bad); i++) {
		struct http_req r;
		struct page p;
		int taken = 0;
		req_init(&r, &list_route, NULL);
		page_init(&p);
		assert_int_equal(page_param(&r, &p, "limit", bad[i], &taken), BW_ERR_INVALID);
		assert_int_equal(r.status, 400);
		req_done(&r);
	}
	struct http_req r;
	struct page p;
	int taken = 0;
	req_init(&r, &list_route, NULL);
	page_init(&p);
	assert_int_equal(p.limit, PAGE_LIMIT_DEFAULT);
	assert_int_equal(page_param(&r, &p, "limit", "100", &taken), BW_OK);
	assert_int_equal(taken, 1);
	assert_int_equal(p.limit, 100);
	assert_int_equal(page_param(&r, &p, "status", "open", &taken), BW_OK);
	assert_int_equal(taken, 0);
	req_done(&r);
}

/* The keyset SQL: compiled-in names and placeholders, NULLs placed as both databases sort them. */
static void
test_keyset_sql(void **state)
{
	(void)state;
	struct http_req r;
	struct page p;
	req_init(&r, &list_route, NULL);
	page_init(&p);
	assert_string_equal(page_cond(&r, &p), "");
	assert_string_equal(page_order_sql(&r, &p), " ORDER BY id ASC LIMIT ?");
	p.have_after = 1;
	p.after = (struct page_key){.i = 5, .id = 5};
	assert_string_equal(page_cond(&r, &p), "id > ?");
	p.desc = 1;
	assert_string_equal(page_cond(&r, &p), "id < ?");
	assert_string_equal(page_order_sql(&r, &p), " ORDER BY id DESC LIMIT ?");
	p.col = "due_on";
	p.desc = 0;
	assert_string_equal(page_cond(&r, &p), "(due_on > ? OR (due_on = ? AND id > ?))");
	assert_string_equal(page_order_sql(&r, &p), " ORDER BY due_on ASC, id ASC LIMIT ?");
	p.desc = 1;
	assert_string_equal(page_cond(&r, &p),
			    "(due_on < ? OR (due_on = ? AND id < ?) OR due_on IS NULL)");
	p.after.null = 1;
	assert_string_equal(page_cond(&r, &p), "(due_on IS NULL AND id < ?)");
	p.desc = 0;
	assert_string_equal(page_cond(&r, &p), "(due_on IS NOT NULL OR id > ?)");
	req_done(&r);
}

/* The last page: no cursor, no Link; page_full() says when a row is one too many. */
static void
test_last_page(void **state)
{
	(void)state;
	struct http_req r;
	struct page p;
	req_init(&r, &list_route, NULL);
	page_init(&p);
	p.limit = 2;
	assert_int_equal(page_full(&p), 0);
	page_seen_key(&p, 1, 1);
	assert_int_equal(page_full(&p), 0);
	page_seen_key(&p, 2, 2);
	assert_int_equal(p.last.id, 2);
	assert_int_equal(page_full(&p), 1);
	assert_true(p.more);
	p.more = 0;
	p.total = 2;
	assert_int_equal(page_reply(&r, &p, NULL, json_array()), BW_OK);
	assert_true(json_is_null(json_object_get(r.reply, "next_cursor")));
	assert_true(json_is_false(json_object_get(r.reply, "has_more")));
	assert_null(reply_header(&r, "Link"));
	req_done(&r);
}

/* A form body (the SAML ACS): '+' and %2B decoded apart, long values, NULs and repeats refused. */
static void
test_form_body(void **state)
{
	(void)state;
	struct http_req r;
	struct http_query q;
	req_init(&r, &list_route, NULL);
	size_t n = 9000; /* longer than any query string may be */
	char *body = malloc(n + 64);
	assert_non_null(body);
	int off = snprintf(body, 64, "RelayState=%%2Ftickets%%3Fa%%3D1&SAMLResponse=");
	memset(body + off, 'A', n);
	memcpy(body + off + n, "%2B+x", 5);
	r.body = body;
	r.body_len = (size_t)off + n + 5;
	r.body_cap = r.body_len + 1;
	body = realloc(body, r.body_cap);
	assert_non_null(body);
	r.body = body;
	assert_int_equal(http_form_parse(&r, &q), BW_OK);
	assert_int_equal(q.n, 2);
	assert_string_equal(q.key[0], "RelayState");
	assert_string_equal(q.val[0], "/tickets?a=1");
	assert_string_equal(q.key[1], "SAMLResponse");
	assert_int_equal(strlen(q.val[1]), n + 3);
	assert_string_equal(q.val[1] + n, "+ x"); /* %2B is a plus, '+' a space */
	/* The same name twice: refused, as in a query string. */
	strcpy(body, "a=1&a=2");
	r.body_len = strlen(body);
	assert_int_equal(http_form_parse(&r, &q), BW_ERR_INVALID);
	/* An encoded NUL, and a raw one. */
	strcpy(body, "a=%00");
	r.body_len = strlen(body);
	assert_int_equal(http_form_parse(&r, &q), BW_ERR_INVALID);
	memcpy(body, "a=1\0b", 5);
	r.body_len = 5;
	assert_int_equal(http_form_parse(&r, &q), BW_ERR_INVALID);
	free(body);
	r.body = NULL;
	req_done(&r);
	/* The media type the ACS takes, and what it does not. */
	assert_true(http_media_is("application/x-www-form-urlencoded", "application/x-www-form-urlencoded"));
	assert_true(http_media_is("Application/X-WWW-Form-Urlencoded; charset=utf-8",
				  "application/x-www-form-urlencoded"));
	assert_false(http_media_is("application/x-www-form-urlencoded; charset=latin1",
				   "application/x-www-form-urlencoded"));
	assert_false(http_media_is("multipart/form-data", "application/x-www-form-urlencoded"));
	assert_false(http_media_is("application/x-www-form-urlencodedx", "application/x-www-form-urlencoded"));
	assert_true(http_media_is_json("application/json"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rfc3339_format),   cmocka_unit_test(test_rfc3339_parse),
	    cmocka_unit_test(test_rfc3339_round_trip), cmocka_unit_test(test_cursor_round_trip),
	    cmocka_unit_test(test_cursor_refused),   cmocka_unit_test(test_limit),
	    cmocka_unit_test(test_keyset_sql),       cmocka_unit_test(test_last_page),
	    cmocka_unit_test(test_form_body),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
