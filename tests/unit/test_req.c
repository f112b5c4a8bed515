/*
 * The request accessors of src/http/req.c that judge untrusted input: the
 * JSON body (its error messages and the members that say where) and the
 * Content-Type a body must have; and the rate headers two limiters share.
 */
#include "unit.h"

#include "http/http.h"

struct fixture {
	struct http_req r;
	char body[256];
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	if (f == NULL || (f->r.pool = pool_new(1 << 16)) == NULL)
		return -1;
	f->r.op.pool = f->r.pool; /* as the server's op_init() does */
	snprintf(f->r.id, sizeof(f->r.id), "rid");
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	pool_free(f->r.pool);
	free(f);
	return 0;
}

/* http_req_json on text; returns the reply's error object (a new reference) or NULL on success. */
static json_t *
parse(struct fixture *f, const char *text)
{
	json_t *out = NULL;
	snprintf(f->body, sizeof(f->body), "%s", text);
	f->r.body = f->body;
	f->r.body_len = strlen(text);
	f->r.body_cap = sizeof(f->body);
	bw_err e = http_req_json(&f->r, &out);
	if (e == BW_OK) {
		assert_non_null(out);
		json_decref(out);
		return NULL;
	}
	assert_int_equal(e, BW_ERR_INVALID);
	assert_null(out);
	assert_int_equal(f->r.status, 400);
	size_t len;
	char *s = response_error_body(&f->r, &len);
	assert_non_null(s);
	json_error_t je;
	json_t *o = json_loads(s, 0, &je);
	free(s);
	assert_non_null(o);
	json_t *err = json_incref(json_object_get(o, "error"));
	json_decref(o);
	assert_string_equal(json_string_value(json_object_get(err, "code")), "invalid");
	return err;
}

static const char *
msg(json_t *err)
{
	return json_string_value(json_object_get(err, "message"));
}

static json_int_t
num(json_t *err, const char *k)
{
	json_t *v = json_object_get(err, k);
	assert_true(json_is_integer(v));
	return json_integer_value(v);
}

static void
test_duplicate_key_is_named(void **state)
{
	struct fixture *f = *state;
	json_t *err = parse(f, "{\"a\": 1,\n \"name\": 2, \"name\": 3}");
	assert_string_equal(msg(err), "duplicate key \"name\" in the JSON body (line 2, column 18, "
				      "byte 27)");
	assert_int_equal(num(err, "position"), 27);
	assert_int_equal(num(err, "line"), 2);
	assert_int_equal(num(err, "column"), 18);
	assert_string_equal(json_string_value(json_object_get(err, "key")), "name");
	json_decref(err);
	/* Spelled with escapes, the key is named as it decodes; nested objects too. */
	err = parse(f, "{\"x\": {\"\\u0041\\\"b\": 1, \"A\\\"b\": 2}}");
	assert_string_equal(json_string_value(json_object_get(err, "key")), "A\"b");
	assert_non_null(strstr(msg(err), "duplicate key \"A\"b\""));
	json_decref(err);
	/* A UTF-8 key. */
	err = parse(f, "{\"\xc3\xa9t\xc3\xa9\": 1, \"\xc3\xa9t\xc3\xa9\": 2}");
	assert_string_equal(json_string_value(json_object_get(err, "key")), "\xc3\xa9t\xc3\xa9");
	json_decref(err);
	/* The same key in two objects is no duplicate. */
	assert_null(parse(f, "{\"a\": {\"k\": 1}, \"b\": {\"k\": 2}}"));
}

static void
test_parse_error_says_what_and_where(void **state)
{
	struct fixture *f = *state;
	json_t *err = parse(f, "{\"a\": 1,\n \"b\" 2}");
	assert_string_equal(msg(err), "the body is not valid JSON: ':' expected (line 2, "
				      "column 6, byte 15)");
	assert_int_equal(num(err, "position"), 15);
	assert_int_equal(num(err, "line"), 2);
	assert_int_equal(num(err, "column"), 6);
	assert_null(json_object_get(err, "key"));
	assert_int_equal(json_object_size(err), 6); /* code, message, request_id + the three */
	json_decref(err);
	err = parse(f, "{\"a\": 1} trailing");
	assert_non_null(strstr(msg(err), "end of file expected"));
	json_decref(err);
	/* No part of the body is quoted back (it may be a password). */
	err = parse(f, "{\"password\": \"hunter2\" 1}");
	assert_null(strstr(msg(err), "hunter2"));
	json_decref(err);
	/* Bytes that are not UTF-8 near the error: the message is UTF-8 still. */
	err = parse(f, "{\"a\": \"\xff\xfe\"}");
	assert_non_null(strstr(msg(err), "the body is not valid JSON: unable to decode byte 0xff"));
	json_t *utf8 = json_string(msg(err)); /* the message is UTF-8 */
	assert_non_null(utf8);
	json_decref(utf8);
	json_decref(err);
}

static void
test_not_an_object(void **state)
{
	struct fixture *f = *state;
	static const struct {
		const char *body, *what;
	} c[] = {{"[1]", "an array"}, {"\"s\"", "a string"}, {"1.5", "a number"},
		 {"false", "a boolean"}, {"null", "null"}};
	for (size_t i = 0; i < BW_ARRAY_LEN(c); i++) {
		json_t *err = parse(f, c[i].body);
		char want[64];
		snprintf(want, sizeof(want), "the body must be a JSON object, not %s", c[i].what);
		assert_string_equal(msg(err), want);
		assert_null(json_object_get(err, "position"));
		json_decref(err);
	}
	f->r.body_len = 0;
	json_t *out;
	assert_int_equal(http_req_json(&f->r, &out), BW_ERR_INVALID);
	assert_string_equal(f->r.op.err_msg, "a JSON object body is required");
}

static void
test_media_type(void **state)
{
	(void)state;
	static const char *yes[] = {
	    "application/json", "APPLICATION/Json", "application/json; charset=utf-8",
	    "application/json;charset=UTF-8", "application/json; charset=\"utf-8\"",
	    "application/json \t; charset=utf-8 ", "application/json;", "application/json; ;",
	};
	static const char *no[] = {
	    "", "text/plain", "application/jsonp", "application/json+x", "application/json-seq",
	    "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
	    "application/json; charset=latin1", "application/json; charset=utf-8x",
	    "application/json; charset = utf-8", "application/json; charset=utf-8; q=1",
	    "application/json; boundary=x", "application/json, text/plain", " application/json",
	    "application/json; charset=\"utf-8", "text/json", "application/*",
	};
	for (size_t i = 0; i < BW_ARRAY_LEN(yes); i++)
		if (!http_media_is_json(yes[i]))
			fail_msg("refused: '%s'", yes[i]);
	for (size_t i = 0; i < BW_ARRAY_LEN(no); i++)
		if (http_media_is_json(no[i]))
			fail_msg("taken: '%s'", no[i]);
	assert_false(http_media_is_json(NULL));
}

static const char *
header(const struct http_req *r, const char *name)
{
	for (size_t i = 0; i < r->nheaders; i++)
		if (strcasecmp(r->headers[i].name, name) == 0) {
			assert_true(r->headers[i].always); /* on errors too */
			return r->headers[i].value;
		}
	return NULL;
}

/* Two limiters on one request: the one with fewer requests left is shown, all three together. */
static void
test_rate_headers(void **state)
{
	struct fixture *f = *state;
	struct http_req *r = &f->r;
	struct ratelimit_state off = {0}, wide = {100, 97, 3, 0}, narrow = {5, 2, 40, 0},
			       refused = {5, 0, 60, 12};
	assert_int_equal(http_req_rate_headers(r, &off), BW_OK);
	assert_int_equal(r->nheaders, 0);
	assert_int_equal(http_req_rate_headers(r, &wide), BW_OK);
	assert_string_equal(header(r, "RateLimit-Limit"), "100");
	assert_string_equal(header(r, "RateLimit-Remaining"), "97");
	assert_string_equal(header(r, "RateLimit-Reset"), "3");
	assert_int_equal(http_req_rate_headers(r, &narrow), BW_OK);
	assert_string_equal(header(r, "RateLimit-Limit"), "5");
	assert_string_equal(header(r, "RateLimit-Remaining"), "2");
	assert_string_equal(header(r, "RateLimit-Reset"), "40");
	assert_null(r->retry_after);
	/* A wider one after a narrower one changes nothing. */
	assert_int_equal(http_req_rate_headers(r, &wide), BW_OK);
	assert_string_equal(header(r, "RateLimit-Limit"), "5");
	assert_int_equal(r->nheaders, 3);
	assert_int_equal(http_req_rate_headers(r, &refused), BW_OK);
	assert_string_equal(header(r, "RateLimit-Remaining"), "0");
	assert_string_equal(r->retry_after, "12");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_duplicate_key_is_named, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_parse_error_says_what_and_where, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_not_an_object, setup, teardown),
	    cmocka_unit_test(test_media_type),
	    cmocka_unit_test_setup_teardown(test_rate_headers, setup, teardown),
	};
	return cmocka_run_group_tests_name("req", tests, NULL, NULL);
}
