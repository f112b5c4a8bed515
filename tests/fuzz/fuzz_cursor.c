/*
 * libFuzzer target for the two parsers every list runs over client input:
 * the list cursor (src/http/page.c, page_order) and RFC 3339 times
 * (src/core/util.c, util_parse_rfc3339).
 *
 * The first byte picks what the rest is:
 *   0: an RFC 3339 time. Accepted times lie in years 0000..9999 give or
 *      take an offset, and a time formatted by util_time_rfc3339 reads
 *      back as itself.
 *   1: a cursor as a client sends it (base64url text).
 *   2: a cursor payload, checked and encoded here as page.c does, so that
 *      the parsing behind the check is reached too.
 * For both cursor modes page_order returns BW_OK or BW_ERR_INVALID (a
 * 400), and a cursor it accepts is the very text page.c makes again from
 * what it read: one cursor, one spelling.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/crypto/crypto.h"
#include "../../src/http/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * page.c binds and reads statements, which this target never runs: the
 * database layer is left out of the build, and these stand in (abort if
 * anything reaches them).
 */
bw_err
db_bind_int(db_stmt *s, int idx, int64_t v)
{
	(void)s, (void)idx, (void)v;
	abort();
}

bw_err
db_bind_text(db_stmt *s, int idx, const char *v)
{
	(void)s, (void)idx, (void)v;
	abort();
}

int64_t
db_col_int(db_stmt *s, int col)
{
	(void)s, (void)col;
	abort();
}

int
db_col_null(db_stmt *s, int col)
{
	(void)s, (void)col;
	abort();
}

const char *
db_col_text(db_stmt *s, int col)
{
	(void)s, (void)col;
	abort();
}

static const struct route fuzz_route = {HTTP_GET, "/api/v1/tickets", NULL, 0, "tickets.view", 0,
					NULL};

static const struct {
	const char *sort, *col;
	int desc;
	enum page_type type;
} fuzz_sorts[] = {
	{"id", "id", 0, PAGE_INT},
	{"-due_on", "due_on", 1, PAGE_TEXT},
	{"subject", "subject", 0, PAGE_TEXT},
	{"-total_cents", "total_cents", 1, PAGE_INT},
};

static void
fuzz_time(const uint8_t *data, size_t size)
{
	char s[80], out[UTIL_TIME_LEN];
	int64_t t;
	if (size >= sizeof(s))
		return;
	memcpy(s, data, size);
	s[size] = '\0';
	if (util_parse_rfc3339(s, &t) != BW_OK)
		return;
	if (t < -62167219200LL - 86400 || t > 253402300799LL + 86400)
		abort();
	if (t < -62167219200LL || t > 253402300799LL)
		return;
	int64_t back;
	if (strlen(util_time_rfc3339(t, out)) != UTIL_TIME_LEN - 1 ||
	    util_parse_rfc3339(out, &back) != BW_OK || back != t)
		abort();
}

static char *
fuzz_b64(const unsigned char *in, size_t n)
{
	static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	char *out = malloc(n * 4 / 3 + 4);
	size_t o = 0;
	uint32_t acc = 0;
	int bits = 0;
	if (out == NULL)
		abort();
	for (size_t i = 0; i < n; i++) {
		acc = (acc << 8) | in[i];
		bits += 8;
		while (bits >= 6) {
			bits -= 6;
			out[o++] = a[(acc >> bits) & 63];
		}
		acc &= (1u << bits) - 1;
	}
	if (bits > 0)
		out[o++] = a[(acc << (6 - bits)) & 63];
	out[o] = '\0';
	return out;
}

/* A cursor of payload p[0..n) as page.c makes one: the check appended, base64url. */
static char *
fuzz_make(const uint8_t *p, size_t n)
{
	static const unsigned char key[] = "bulwark list cursor v1";
	unsigned char msg[2048], mac[HMAC_SHA256_LEN], raw[2048];
	size_t pl = strlen(fuzz_route.pattern);
	if (n + pl + 1 > sizeof(msg) || n + 8 > sizeof(raw))
		return NULL;
	memcpy(msg, fuzz_route.pattern, pl + 1);
	memcpy(msg + pl + 1, p, n);
	if (mac_sha256(key, sizeof(key) - 1, msg, pl + 1 + n, mac) != BW_OK)
		abort();
	memcpy(raw, p, n);
	memcpy(raw + n, mac, 8);
	return fuzz_b64(raw, n + 8);
}

static void
fuzz_cursor(const char *c, unsigned which)
{
	struct http_req r;
	struct page p;
	int taken = 0;
	memset(&r, 0, sizeof(r));
	if ((r.pool = pool_new(1 << 20)) == NULL)
		abort();
	r.route = &fuzz_route;
	r.path = fuzz_route.pattern;
	page_init(&p);
	if (page_param(&r, &p, "cursor", c, &taken) != BW_OK || !taken)
		abort();
	const __typeof__(fuzz_sorts[0]) *s = &fuzz_sorts[which % BW_ARRAY_LEN(fuzz_sorts)];
	bw_err e = page_order(&r, &p, s->sort, s->col, s->desc, s->type);
	if (e != BW_OK && e != BW_ERR_INVALID)
		abort();
	if (e == BW_OK) {
		/* What was read makes the same cursor again. */
		p.more = 1;
		p.last = p.after;
		if (page_reply(&r, &p, NULL, json_array()) != BW_OK)
			abort();
		const char *again = json_string_value(json_object_get(r.reply, "next_cursor"));
		if (again == NULL || strcmp(again, c) != 0)
			abort();
		if (page_cond(&r, &p) == NULL || page_order_sql(&r, &p) == NULL)
			abort();
	} else if (r.status != 400) {
		abort();
	}
	json_decref(r.reply);
	pool_free(r.pool);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	unsigned mode = data[0] % 3, which = data[0] / 3;
	data++;
	size--;
	if (mode == 0) {
		fuzz_time(data, size);
	} else if (mode == 1) {
		char *c = malloc(size + 1);
		if (c == NULL)
			abort();
		memcpy(c, data, size);
		c[size] = '\0';
		if (strlen(c) == size)
			fuzz_cursor(c, which);
		free(c);
	} else {
		char *c = fuzz_make(data, size);
		if (c != NULL)
			fuzz_cursor(c, which);
		free(c);
	}
	return 0;
}
