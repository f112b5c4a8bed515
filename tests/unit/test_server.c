/*
 * The server in-process, with a route table of its own, driven over real
 * TLS by libcurl: body limits per route, chunked bodies refused, parameters,
 * handler errors and protocol version.
 */
#include "unit.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http/http.h"
#include "server/server.h"
#include "server/server_int.h"

static char dir[64];
static char cafile[128];
static struct server *srv;
static long port;

static bw_err
h_echo(struct http_req *req)
{
	return response_json(req, 200,
			     json_pack("{s:i, s:s%}", "len", (int)req->body_len, "body",
				       req->body ? req->body : "", req->body_len));
}

static bw_err
h_item(struct http_req *req)
{
	return response_json(req, 200, json_pack("{s:s}", "id", req->param_value[0]));
}

static bw_err
h_noreply(struct http_req *req)
{
	(void)req;
	return BW_OK;
}

static bw_err
h_conflict(struct http_req *req)
{
	return response_error(req, BW_ERR_CONFLICT, "already exists");
}

static bw_err
h_dberr(struct http_req *req)
{
	(void)req;
	return BW_ERR_DB;
}

/* The bug the server must catch: a refusal written, success returned. */
static bw_err
h_refuse_ok(struct http_req *req)
{
	(void)response_error(req, BW_ERR_LOCKED, "locked");
	return BW_OK;
}

/* Likewise an error status dressed as a success body. */
static bw_err
h_error_json_ok(struct http_req *req)
{
	return response_json(req, 423, json_pack("{s:s}", "changed", "no"));
}

static bw_err
h_header(struct http_req *req)
{
	const char *v = http_req_header(req, "x-test");
	return response_json(req, 200, json_pack("{s:s?}", "x", v));
}

static const struct route test_routes[] = {
	{HTTP_POST, "/echo", h_echo, ROUTE_PUBLIC | ROUTE_NO_TENANT, NULL, 64},
	{HTTP_GET, "/items/:id", h_item, ROUTE_NO_TENANT, "items.view", ROUTE_BODY_NONE},
	{HTTP_GET, "/noreply", h_noreply, ROUTE_PUBLIC | ROUTE_NO_TENANT, NULL, ROUTE_BODY_NONE},
	{HTTP_GET, "/conflict", h_conflict, ROUTE_PUBLIC | ROUTE_NO_TENANT, NULL, ROUTE_BODY_NONE},
	{HTTP_GET, "/dberr", h_dberr, ROUTE_PUBLIC | ROUTE_NO_TENANT, NULL, ROUTE_BODY_NONE},
	{HTTP_GET, "/header", h_header, ROUTE_PUBLIC | ROUTE_NO_TENANT, NULL, ROUTE_BODY_NONE},
	{HTTP_GET, "/refuse-ok", h_refuse_ok, ROUTE_PUBLIC | ROUTE_NO_TENANT, NULL, ROUTE_BODY_NONE},
	{HTTP_GET, "/error-json-ok", h_error_json_ok, ROUTE_PUBLIC | ROUTE_NO_TENANT, NULL,
	 ROUTE_BODY_NONE},
};

static long
free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t l = sizeof(a);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &l), 0);
	close(fd);
	return ntohs(a.sin_port);
}

static int
setup(void **state)
{
	(void)state;
	char cmd[512], err[512];
	struct config cfg;
	assert_int_equal(unit_mkdtemp(dir, sizeof(dir), "srv"), 0);
	snprintf(cmd, sizeof(cmd),
		 "cd %s && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
		 "-days 2 -subj /CN=localhost -addext subjectAltName=DNS:localhost "
		 "-keyout key.pem -out cert.pem 2>/dev/null && chmod 600 key.pem",
		 dir);
	assert_int_equal(system(cmd), 0);
	snprintf(cafile, sizeof(cafile), "%s/cert.pem", dir);
	config_defaults(&cfg);
	port = free_port();
	cfg.port = port;
	cfg.threads = 2;
	cfg.rate_per_second = 0;
	snprintf(cfg.access_log, sizeof(cfg.access_log), "off");
	snprintf(cfg.tls_cert, sizeof(cfg.tls_cert), "%s/cert.pem", dir);
	snprintf(cfg.tls_key, sizeof(cfg.tls_key), "%s/key.pem", dir);
	log_set_level(LOG_LVL_WARN);
	if (server_start(&cfg, test_routes, BW_ARRAY_LEN(test_routes), NULL, &srv, err, sizeof(err)) !=
	    BW_OK)
		fail_msg("server_start: %s", err);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	server_drain(srv, 5);
	server_free(srv);
	curl_global_cleanup();
	return unit_rmtree(dir);
}

struct reply_buf {
	char data[8192];
	size_t len;
};

static size_t
collect(char *p, size_t sz, size_t n, void *ud)
{
	struct reply_buf *b = ud;
	size_t k = sz * n;
	if (k > sizeof(b->data) - 1 - b->len)
		k = sizeof(b->data) - 1 - b->len;
	memcpy(b->data + b->len, p, k);
	b->len += k;
	b->data[b->len] = '\0';
	return sz * n;
}

struct chunked_src {
	size_t left;
};

static size_t
chunked_read(char *p, size_t sz, size_t n, void *ud)
{
	struct chunked_src *s = ud;
	size_t k = sz * n < 16 ? sz * n : 16;
	if (k > s->left)
		k = s->left;
	memset(p, 'z', k);
	s->left -= k;
	return k;
}

/* One request; returns the curl result, fills status and body. */
static CURLcode
req(const char *method, const char *path, const char *body, long chunked_len, long tls12,
    long *status, struct reply_buf *out)
{
	char url[256];
	struct curl_slist *h = NULL;
	struct chunked_src src = {(size_t)chunked_len};
	CURL *c = curl_easy_init();
	snprintf(url, sizeof(url), "https://localhost:%ld%s", port, path);
	out->len = 0;
	out->data[0] = '\0';
	*status = 0;
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CAINFO, cafile);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
	h = curl_slist_append(h, "X-Test: hello");
	if (body != NULL) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		/* not curl's own application/x-www-form-urlencoded: a body must be JSON (415) */
		h = curl_slist_append(h, "Content-Type: application/json");
	} else if (chunked_len > 0) {
		curl_easy_setopt(c, CURLOPT_POST, 1L);
		curl_easy_setopt(c, CURLOPT_READFUNCTION, chunked_read);
		curl_easy_setopt(c, CURLOPT_READDATA, &src);
		h = curl_slist_append(h, "Transfer-Encoding: chunked");
	}
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	if (tls12)
		curl_easy_setopt(c, CURLOPT_SSLVERSION,
				 CURL_SSLVERSION_TLSv1_2 | CURL_SSLVERSION_MAX_TLSv1_2);
	CURLcode rc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	return rc;
}

static void
test_body_within_limit_reaches_handler(void **state)
{
	(void)state;
	long st;
	struct reply_buf b;
	assert_int_equal(req("POST", "/echo", "{\"a\":1}", 0, 0, &st, &b), CURLE_OK);
	assert_int_equal(st, 200);
	assert_non_null(strstr(b.data, "\"len\":7"));
	assert_non_null(strstr(b.data, "{\\\"a\\\":1}"));
	/* chunked, even within the limit: a length is required (framing.c says why) */
	assert_int_equal(req("POST", "/echo", NULL, 40, 0, &st, &b), CURLE_OK);
	assert_int_equal(st, 411);
	assert_non_null(strstr(b.data, "length_required"));
	assert_null(strstr(b.data, "\"len\""));
}

static void
test_body_over_route_limit(void **state)
{
	(void)state;
	long st;
	struct reply_buf b;
	char big[66];
	memset(big, 'x', 65);
	big[65] = '\0';
	req("POST", "/echo", big, 0, 0, &st, &b);
	assert_int_equal(st, 413);
	assert_non_null(strstr(b.data, "payload_too_large"));
	/* chunked past the limit: the server hangs up instead of reading on */
	CURLcode rc = req("POST", "/echo", NULL, 4096, 0, &st, &b);
	assert_true(rc != CURLE_OK || st != 200);
	assert_null(strstr(b.data, "\"len\""));
	assert_int_equal(req("GET", "/items/1", NULL, 0, 0, &st, &b), CURLE_OK);
	assert_int_equal(st, 200);
}

static void
test_params_and_headers(void **state)
{
	(void)state;
	long st;
	struct reply_buf b;
	assert_int_equal(req("GET", "/items/a%20b%C3%A9", NULL, 0, 0, &st, &b), CURLE_OK);
	assert_int_equal(st, 200);
	assert_string_equal(b.data, "{\"id\":\"a b\xc3\xa9\"}");
	assert_int_equal(req("GET", "/header", NULL, 0, 0, &st, &b), CURLE_OK);
	assert_string_equal(b.data, "{\"x\":\"hello\"}");
	assert_int_equal(req("GET", "/items/%2e%2e", NULL, 0, 0, &st, &b), CURLE_OK);
	assert_int_equal(st, 400);
}

static void
test_handler_errors(void **state)
{
	(void)state;
	long st;
	struct reply_buf b;
	assert_int_equal(req("GET", "/noreply", NULL, 0, 0, &st, &b), CURLE_OK);
	assert_int_equal(st, 500);
	assert_non_null(strstr(b.data, "internal_error"));
	assert_int_equal(req("GET", "/conflict", NULL, 0, 0, &st, &b), CURLE_OK);
	assert_int_equal(st, 409);
	assert_non_null(strstr(b.data, "already exists"));
	assert_int_equal(req("GET", "/dberr", NULL, 0, 0, &st, &b), CURLE_OK);
	assert_int_equal(st, 503);
	assert_non_null(strstr(b.data, "database_error"));
	/*
	 * A handler that wrote a refusal and returned success is a bug the
	 * server catches: its caller went on as if it had succeeded, so the
	 * reply is a 500, never the refusal (nor a success) it wrote.
	 */
	assert_int_equal(req("GET", "/refuse-ok", NULL, 0, 0, &st, &b), CURLE_OK);
	assert_int_equal(st, 500);
	assert_non_null(strstr(b.data, "internal_error"));
	assert_null(strstr(b.data, "locked"));
	assert_int_equal(req("GET", "/error-json-ok", NULL, 0, 0, &st, &b), CURLE_OK);
	assert_int_equal(st, 500);
	assert_null(strstr(b.data, "changed"));
}

static void
test_tls12_refused(void **state)
{
	(void)state;
	long st;
	struct reply_buf b;
	CURLcode rc = req("GET", "/items/1", NULL, 0, 1, &st, &b);
	assert_int_not_equal(rc, CURLE_OK);
	assert_int_equal(st, 0);
}

static void
test_inflight_returns_to_zero(void **state)
{
	(void)state;
	for (int i = 0; i < 100 && server_inflight(srv) != 0; i++)
		usleep(10000);
	assert_int_equal(server_inflight(srv), 0);
}

/* Idempotency-Key: 1 to 255 visible ASCII characters, nothing else. */
static void
test_idempotency_key_valid(void **state)
{
	(void)state;
	char k[IDEMPOTENCY_KEY_MAX + 2];
	memset(k, '~', sizeof(k) - 1);
	k[sizeof(k) - 1] = '\0';
	assert_false(idempotency_key_valid(k)); /* 256 */
	k[IDEMPOTENCY_KEY_MAX] = '\0';
	assert_true(idempotency_key_valid(k)); /* 255 */
	assert_true(idempotency_key_valid("!"));
	assert_true(idempotency_key_valid("a-Z_0.9:/+="));
	assert_false(idempotency_key_valid(""));
	assert_false(idempotency_key_valid(NULL));
	assert_false(idempotency_key_valid("a b"));
	assert_false(idempotency_key_valid("a\tb"));
	assert_false(idempotency_key_valid("a\x7f"));
	assert_false(idempotency_key_valid("caf\xc3\xa9"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_body_within_limit_reaches_handler),
		cmocka_unit_test(test_body_over_route_limit),
		cmocka_unit_test(test_params_and_headers),
		cmocka_unit_test(test_handler_errors),
		cmocka_unit_test(test_tls12_refused),
		cmocka_unit_test(test_inflight_returns_to_zero),
		cmocka_unit_test(test_idempotency_key_valid),
	};
	return cmocka_run_group_tests_name("server", tests, setup, teardown);
}
