#include "unit.h"

#include "http/http.h"

static void
test_status_mapping(void **state)
{
	(void)state;
	static const struct {
		bw_err e;
		int status;
	} want[] = {
	    {BW_OK, 200},
	    {BW_ERR_INVALID, 400},
	    {BW_ERR_UNAUTHORIZED, 401},
	    {BW_ERR_DENIED, 403},
	    {BW_ERR_NOTFOUND, 404},
	    {BW_ERR_METHOD, 405},
	    {BW_ERR_CONFLICT, 409},
	    {BW_ERR_TOO_LARGE, 413},
	    {BW_ERR_LOCKED, 423},
	    {BW_ERR_RATE, 429},
	    {BW_ERR_HEADERS_TOO_LARGE, 431},
	    {BW_ERR_UNAVAILABLE, 503},
	    {BW_ERR_DB, 503},
	    {BW_ERR_NOMEM, 500},
	    {BW_ERR_IO, 500},
	    {BW_ERR_CRYPTO, 500},
	    {BW_ERR_CONFIG, 500},
	    {BW_ERR_INTERNAL, 500},
	    {BW_ERR_UNSUPPORTED, 501},
	    {BW_ERR_LENGTH_REQUIRED, 411},
	    {BW_ERR_PRECONDITION, 412},
	    {BW_ERR_MEDIA_TYPE, 415},
	    {BW_ERR_UNPROCESSABLE, 422},
	    {BW_ERR_QUOTA, 507},
	    {BW_ERR_RANGE, 416},
	};
	assert_int_equal(BW_ARRAY_LEN(want), BW_ERR__COUNT);
	for (size_t i = 0; i < BW_ARRAY_LEN(want); i++)
		assert_int_equal(response_status(want[i].e), want[i].status);
}

static json_t *
error_body(struct http_req *r)
{
	size_t len = 0;
	char *s = response_error_body(r, &len);
	assert_non_null(s);
	assert_int_equal(len, strlen(s));
	json_error_t je;
	json_t *o = json_loads(s, 0, &je);
	free(s);
	assert_non_null(o);
	return o;
}

static void
test_error_body_shape(void **state)
{
	(void)state;
	struct http_req r = {0};
	snprintf(r.id, sizeof(r.id), "abc");
	assert_int_equal(response_error(&r, BW_ERR_NOTFOUND, "no such ticket"), BW_ERR_NOTFOUND);
	assert_int_equal(r.status, 404);
	json_t *o = error_body(&r);
	json_t *e = json_object_get(o, "error");
	assert_true(json_is_object(e));
	assert_int_equal(json_object_size(o), 1);
	assert_string_equal(json_string_value(json_object_get(e, "code")), "not_found");
	assert_string_equal(json_string_value(json_object_get(e, "message")), "no such ticket");
	assert_string_equal(json_string_value(json_object_get(e, "request_id")), "abc");
	json_decref(o);
}

/* Server-side failures never carry internal detail to the client. */
static void
test_server_errors_hide_detail(void **state)
{
	(void)state;
	struct http_req r = {0};
	(void)response_error(&r, BW_ERR_DB, "SELECT secret FROM users failed at db01");
	json_t *o = error_body(&r);
	const char *msg = json_string_value(json_object_get(json_object_get(o, "error"), "message"));
	assert_null(strstr(msg, "secret"));
	assert_null(strstr(msg, "db01"));
	json_decref(o);

	/* BW_OK is not an error: recording it is turned into an internal error. */
	(void)response_error(&r, BW_OK, NULL);
	assert_int_equal(r.status, 500);
}

static void
test_json_reply(void **state)
{
	(void)state;
	struct http_req r = {0};
	assert_int_equal(response_json(&r, 201, json_pack("{s:i}", "id", 7)), BW_OK);
	assert_int_equal(r.status, 201);
	assert_non_null(r.reply);
	json_decref(r.reply);
	r.reply = NULL;
	/* A NULL body (allocation failed) becomes an error reply, not a crash. */
	assert_int_equal(response_json(&r, 200, NULL), BW_ERR_NOMEM);
	assert_int_equal(r.status, 500);
}

/*
 * An error with a detail: the detail's members join the error object, but
 * never replace code, message or request_id; the next plain error drops it.
 */
static void
test_error_detail(void **state)
{
	(void)state;
	struct http_req r = {0};
	r.pool = pool_new(4096);
	assert_non_null(r.pool);
	r.op.pool = r.pool; /* as the server's op_init() does */
	snprintf(r.id, sizeof(r.id), "rid");
	bw_err e = response_error_detail(&r, BW_ERR_LOCKED, "locked",
					 json_pack("{s:s, s:s, s:s}", "locked_until",
						   "2030-01-01T00:00:00Z", "code", "ok", "request_id",
						   "forged"));
	assert_int_equal(e, BW_ERR_LOCKED);
	assert_int_equal(r.status, 423);
	json_t *o = error_body(&r), *err = json_object_get(o, "error");
	assert_int_equal(json_object_size(err), 4);
	assert_string_equal(json_string_value(json_object_get(err, "code")), "locked");
	assert_string_equal(json_string_value(json_object_get(err, "message")), "locked");
	assert_string_equal(json_string_value(json_object_get(err, "request_id")), "rid");
	assert_string_equal(json_string_value(json_object_get(err, "locked_until")),
			    "2030-01-01T00:00:00Z");
	json_decref(o);

	/* Without a detail (NULL) it is a plain error, and never BW_OK. */
	assert_int_equal(response_error_detail(&r, BW_OK, NULL, NULL), BW_ERR_INTERNAL);
	(void)response_error(&r, BW_ERR_DENIED, "no");
	o = error_body(&r);
	assert_null(json_object_get(json_object_get(o, "error"), "locked_until"));
	json_decref(o);
	pool_free(r.pool);
}

/* Reply headers: replaced by name whatever the case, bounded, never split. */
static void
test_reply_headers(void **state)
{
	(void)state;
	struct http_req r = {0};
	r.pool = pool_new(4096);
	assert_non_null(r.pool);
	assert_int_equal(response_header(&r, "ETag", "\"1\"", 0), BW_OK);
	assert_int_equal(response_header(&r, "etag", "\"2\"", 1), BW_OK);
	assert_int_equal(r.nheaders, 1);
	assert_string_equal(r.headers[0].value, "\"2\"");
	assert_int_equal(r.headers[0].always, 1);
	assert_int_equal(response_header(&r, "Link", "a\r\nSet-Cookie: x", 0), BW_ERR_INVALID);
	assert_int_equal(r.nheaders, 1);
	char name[HTTP_REPLY_HEADERS_MAX][16];
	for (size_t i = 1; i < HTTP_REPLY_HEADERS_MAX; i++) {
		snprintf(name[i], sizeof(name[i]), "X-H%zu", i);
		assert_int_equal(response_header(&r, name[i], "v", 0), BW_OK);
	}
	assert_int_equal(response_header(&r, "X-Over", "v", 0), BW_ERR_NOMEM);
	assert_int_equal(r.nheaders, HTTP_REPLY_HEADERS_MAX);
	pool_free(r.pool);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_status_mapping),
		cmocka_unit_test(test_error_body_shape),
		cmocka_unit_test(test_server_errors_hide_detail),
		cmocka_unit_test(test_json_reply),
		cmocka_unit_test(test_error_detail),
		cmocka_unit_test(test_reply_headers),
	};
	return cmocka_run_group_tests_name("response", tests, NULL, NULL);
}
