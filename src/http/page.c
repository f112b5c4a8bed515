/*
 * Lists: one envelope, keyset pagination and the opaque cursor, for every
 * handler that returns a list (module rows, users, roles, tokens, the
 * audit log, tombstones).
 *
 * A page is read with "WHERE <filters> AND <after the cursor> ORDER BY
 * <sort> <dir>, id <dir> LIMIT limit + 1": the row one past the page says
 * whether there is a next one, and the next page starts after the last
 * row's (sort value, id), wherever rows were inserted or deleted in
 * between. No OFFSET: a page costs the same at the end of a list as at
 * its start.
 *
 * The cursor is base64url (no padding) of
 *     <sort> "\n" <id> "\n" ('n' | 'i' <decimal> | 's' <text>) <check>
 * where <check> is 8 bytes of HMAC-SHA256 under a fixed, public key over
 * the route's pattern, a NUL and the rest. It is not a secret and grants
 * nothing (anyone may list from any point with filters): the check turns
 * an edited or corrupted cursor, or one taken to another list, into a
 * 400 instead of a silently different page, and every part is still
 * parsed strictly (canonical base64, decimal and UTF-8, the sort it was
 * made for). Its values are only ever bound, never put into SQL.
 */
#include "http.h"

#include "../core/jsonw.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistr.h>

#include "../crypto/crypto.h"

#define PAGE_CHECK_LEN 8
#define PAGE_SORT_MAX 80
#define PAGE_PAYLOAD_MAX (PAGE_SORT_MAX + 48 + PAGE_TEXT_MAX)
#define PAGE_CURSOR_MAX (((PAGE_PAYLOAD_MAX + PAGE_CHECK_LEN) * 4 + 2) / 3)

static const unsigned char page_check_key[] = "bulwark list cursor v1";

void
page_init(struct page *p)
{
	memset(p, 0, sizeof(*p));
	p->limit = PAGE_LIMIT_DEFAULT;
	p->limit_max = PAGE_LIMIT_MAX;
	p->sort = "id";
	p->col = "id";
	p->type = PAGE_INT;
}

bw_err
page_param(struct http_req *req, struct page *p, const char *key, const char *val, int *taken)
{
	*taken = 0;
	if (strcmp(key, "limit") == 0) {
		*taken = 1;
		if (util_parse_long(val, 1, p->limit_max, &p->limit) != BW_OK) {
			const char *m = pool_printf(req->pool, "query parameter 'limit' must be 1 to %ld",
						    p->limit_max);
			return response_error(req, BW_ERR_INVALID, m ? m : "bad query parameter 'limit'");
		}
	} else if (strcmp(key, "cursor") == 0) {
		*taken = 1;
		p->cursor = val;
	}
	return BW_OK;
}

/* A decimal int64 as this file writes it: no '+', no leading zeros, no "-0". */
static int
page_decimal(const char *s, size_t n, int64_t *out)
{
	char buf[24];
	long v;
	if (n == 0 || n >= sizeof(buf))
		return 0;
	/* Digits only (a NUL inside would end the number early: found by fuzz_cursor). */
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (i == 0 && s[i] == '-')))
			return 0;
	memcpy(buf, s, n);
	buf[n] = '\0';
	if ((buf[0] == '0' && n > 1) || (buf[0] == '-' && (n == 1 || buf[1] == '0')))
		return 0;
	if (util_parse_long(buf, INT64_MIN, INT64_MAX, &v) != BW_OK)
		return 0;
	*out = v;
	return 1;
}

static const char page_b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int
page_b64val(char c)
{
	const char *q = c ? strchr(page_b64, c) : NULL;
	return q ? (int)(q - page_b64) : -1;
}

/* Strict base64url without padding into out (cap bytes); its length, or -1. */
static long
page_b64_decode(const char *s, unsigned char *out, size_t cap)
{
	size_t n = strlen(s), o = 0;
	if (n == 0 || n % 4 == 1 || n > PAGE_CURSOR_MAX)
		return -1;
	uint32_t acc = 0;
	int bits = 0;
	for (size_t i = 0; i < n; i++) {
		int v = page_b64val(s[i]);
		if (v < 0)
			return -1;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o == cap)
				return -1;
			out[o++] = (unsigned char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	/* The bits left over must be zero: one cursor, one spelling. */
	if (acc != 0)
		return -1;
	return (long)o;
}

static char *
page_b64_encode(pool *pl, const unsigned char *in, size_t n)
{
	char *out = pool_alloc(pl, (n * 4 + 2) / 3 + 1);
	size_t o = 0;
	uint32_t acc = 0;
	int bits = 0;
	if (out == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		acc = (acc << 8) | in[i];
		bits += 8;
		while (bits >= 6) {
			bits -= 6;
			out[o++] = page_b64[(acc >> bits) & 63];
		}
		acc &= (1u << bits) - 1;
	}
	if (bits > 0)
		out[o++] = page_b64[(acc << (6 - bits)) & 63];
	out[o] = '\0';
	return out;
}

/* The check of payload[0..n) for route pattern pat into out. */
static bw_err
page_check(const char *pat, const unsigned char *payload, size_t n,
	   unsigned char out[HMAC_SHA256_LEN])
{
	unsigned char msg[256 + PAGE_PAYLOAD_MAX + 1];
	size_t pl = strlen(pat);
	if (pl > 256 || n > PAGE_PAYLOAD_MAX)
		return BW_ERR_INVALID;
	memcpy(msg, pat, pl);
	msg[pl] = '\0';
	memcpy(msg + pl + 1, payload, n);
	return mac_sha256(page_check_key, sizeof(page_check_key) - 1, msg, pl + 1 + n, out);
}

static const char *
page_pattern(const struct http_req *req)
{
	return req->route && req->route->pattern ? req->route->pattern : "";
}

bw_err
page_order(struct http_req *req, struct page *p, const char *sort, const char *col, int desc,
	   enum page_type type)
{
	p->sort = sort;
	p->col = col;
	p->desc = desc;
	p->type = type;
	p->have_after = 0;
	if (p->cursor == NULL)
		return BW_OK;
	static const char bad[] = "query parameter 'cursor' is not a cursor of this list and sort"
				  " (take next_cursor as it is)";
	unsigned char raw[PAGE_PAYLOAD_MAX + PAGE_CHECK_LEN], mac[HMAC_SHA256_LEN];
	long n = page_b64_decode(p->cursor, raw, sizeof(raw));
	if (n <= PAGE_CHECK_LEN)
		return response_error(req, BW_ERR_INVALID, bad);
	size_t len = (size_t)n - PAGE_CHECK_LEN;
	if (page_check(page_pattern(req), raw, len, mac) != BW_OK ||
	    !crypto_equal(mac, raw + len, PAGE_CHECK_LEN))
		return response_error(req, BW_ERR_INVALID, bad);
	/* <sort> \n <id> \n <kind><value> */
	const char *s = (const char *)raw;
	const char *nl1 = memchr(s, '\n', len);
	const char *nl2 = nl1 ? memchr(nl1 + 1, '\n', len - (size_t)(nl1 + 1 - s)) : NULL;
	if (nl2 == NULL || (size_t)(nl1 - s) != strlen(sort) || memcmp(s, sort, strlen(sort)) != 0)
		return response_error(req, BW_ERR_INVALID, bad);
	int64_t id;
	if (!page_decimal(nl1 + 1, (size_t)(nl2 - nl1 - 1), &id) || id < 1)
		return response_error(req, BW_ERR_INVALID, bad);
	const char *v = nl2 + 1;
	size_t vlen = len - (size_t)(v - s);
	struct page_key k = {.id = id};
	if (vlen == 1 && v[0] == 'n') {
		k.null = 1;
	} else if (vlen > 1 && v[0] == 'i' && type == PAGE_INT) {
		if (!page_decimal(v + 1, vlen - 1, &k.i))
			return response_error(req, BW_ERR_INVALID, bad);
	} else if (vlen >= 1 && v[0] == 's' && type == PAGE_TEXT) {
		if (vlen - 1 > PAGE_TEXT_MAX || memchr(v + 1, '\0', vlen - 1) != NULL ||
		    u8_check((const uint8_t *)v + 1, vlen - 1) != NULL)
			return response_error(req, BW_ERR_INVALID, bad);
		if ((k.s = pool_strndup(req->pool, v + 1, vlen - 1)) == NULL)
			return BW_ERR_NOMEM;
	} else {
		return response_error(req, BW_ERR_INVALID, bad);
	}
	/* The id sort carries its value once: id is the value. */
	if (strcmp(col, p->id_col ? p->id_col : "id") == 0 && (k.null || k.i != id))
		return response_error(req, BW_ERR_INVALID, bad);
	p->after = k;
	p->have_after = 1;
	return BW_OK;
}

const char *
page_cond(struct http_req *req, const struct page *p)
{
	const char *id = p->id_col ? p->id_col : "id", *c = p->col;
	const char *lt = p->desc ? "<" : ">";
	if (!p->have_after)
		return "";
	if (strcmp(c, id) == 0)
		return pool_printf(req->pool, "%s %s ?", id, lt);
	/*
	 * NULL sorts first in both SQLite and MariaDB (the smallest value):
	 * ascending, the NULLs come before every value; descending, after.
	 */
	if (p->after.null)
		return p->desc ? pool_printf(req->pool, "(%s IS NULL AND %s < ?)", c, id)
			       : pool_printf(req->pool, "(%s IS NOT NULL OR %s > ?)", c, id);
	return pool_printf(req->pool, "(%s %s ? OR (%s = ? AND %s %s ?)%s)", c, lt, c, id, lt,
			   p->desc ? pool_printf(req->pool, " OR %s IS NULL", c) : "");
}

const char *
page_order_sql(struct http_req *req, const struct page *p)
{
	const char *id = p->id_col ? p->id_col : "id", *dir = p->desc ? "DESC" : "ASC";
	if (strcmp(p->col, id) == 0)
		return pool_printf(req->pool, " ORDER BY %s %s LIMIT ?", id, dir);
	return pool_printf(req->pool, " ORDER BY %s %s, %s %s LIMIT ?", p->col, dir, id, dir);
}

bw_err
page_bind(const struct page *p, db_stmt *s, int *idx)
{
	bw_err e = BW_OK;
	const char *id = p->id_col ? p->id_col : "id";
	if (!p->have_after)
		return BW_OK;
	if (strcmp(p->col, id) != 0 && !p->after.null) {
		for (int k = 0; k < 2 && e == BW_OK; k++)
			e = p->type == PAGE_INT ? db_bind_int(s, (*idx)++, p->after.i)
						: db_bind_text(s, (*idx)++, p->after.s);
	}
	if (e == BW_OK)
		e = db_bind_int(s, (*idx)++, p->after.id);
	return e;
}

bw_err
page_bind_limit(const struct page *p, db_stmt *s, int *idx)
{
	return db_bind_int(s, (*idx)++, (int64_t)p->limit + 1);
}

int
page_full(struct page *p)
{
	if (p->n < p->limit)
		return 0;
	p->more = 1;
	return 1;
}

bw_err
page_seen(struct http_req *req, struct page *p, db_stmt *s, int sort_col, int id_col)
{
	if (++p->n != p->limit)
		return BW_OK;
	/* Only the page's last row is kept: the next page starts after it. */
	p->last.id = db_col_int(s, id_col);
	p->last.null = db_col_null(s, sort_col);
	p->last.i = 0;
	p->last.s = NULL;
	if (p->last.null)
		return BW_OK;
	if (p->type == PAGE_INT) {
		p->last.i = db_col_int(s, sort_col);
		return BW_OK;
	}
	const char *t = db_col_text(s, sort_col);
	p->last.s = pool_strdup(req->pool, t ? t : "");
	return p->last.s ? BW_OK : BW_ERR_NOMEM;
}

void
page_seen_key(struct page *p, int64_t value, int64_t id)
{
	if (++p->n != p->limit)
		return;
	p->last = (struct page_key){.i = value, .id = id};
}

/* The cursor that starts after key k, in the pool; NULL on OOM (or a text key too long). */
static char *
page_cursor(struct http_req *req, const struct page *p, const struct page_key *k)
{
	unsigned char buf[PAGE_PAYLOAD_MAX + PAGE_CHECK_LEN], mac[HMAC_SHA256_LEN];
	size_t sl = strlen(p->sort), n;
	if (sl > PAGE_SORT_MAX)
		return NULL;
	int w = snprintf((char *)buf, sizeof(buf), "%s\n%lld\n", p->sort, (long long)k->id);
	if (w < 0 || (size_t)w >= sizeof(buf))
		return NULL;
	n = (size_t)w;
	if (k->null) {
		buf[n++] = 'n';
	} else if (p->type == PAGE_INT) {
		w = snprintf((char *)buf + n, sizeof(buf) - n, "i%lld", (long long)k->i);
		if (w < 0 || (size_t)w >= sizeof(buf) - n)
			return NULL;
		n += (size_t)w;
	} else {
		size_t tl = strlen(k->s);
		/* A value longer than a cursor carries: the list ends here (never seen in practice). */
		if (tl > PAGE_TEXT_MAX)
			return NULL;
		buf[n++] = 's';
		memcpy(buf + n, k->s, tl);
		n += tl;
	}
	if (page_check(page_pattern(req), buf, n, mac) != BW_OK)
		return NULL;
	memcpy(buf + n, mac, PAGE_CHECK_LEN);
	return page_b64_encode(req->pool, buf, n + PAGE_CHECK_LEN);
}

/* Append n bytes of d to b unless an earlier append failed. */
static void
page_put(struct buf *b, bw_err *e, const char *d, size_t n)
{
	if (*e == BW_OK)
		*e = buf_append(b, d, n);
}

/* s percent-encoded (unreserved characters kept; in a path also '/' and '%') onto b. */
static void
page_escape(struct buf *b, bw_err *e, const char *s, int path)
{
	static const char hex[] = "0123456789ABCDEF";
	for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
		if ((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') ||
		    *c == '-' || *c == '.' || *c == '_' || *c == '~' ||
		    (path && (*c == '/' || *c == '%'))) {
			page_put(b, e, (const char *)c, 1);
		} else {
			char x[3] = {'%', hex[*c >> 4], hex[*c & 15]};
			page_put(b, e, x, 3);
		}
	}
}

/* The next page's link: this path and query, limit and cursor replaced; NULL on OOM. */
static char *
page_link(struct http_req *req, const struct page *p, const struct http_query *q,
	  const char *cursor)
{
	struct buf b;
	bw_err e = BW_OK;
	char lim[40];
	buf_init(&b, 4 * HTTP_QUERY_LEN_MAX);
	page_put(&b, &e, "<", 1);
	page_escape(&b, &e, req->path ? req->path : "/", 1);
	page_put(&b, &e, "?", 1);
	for (size_t i = 0; q != NULL && i < q->n; i++) {
		if (strcmp(q->key[i], "limit") == 0 || strcmp(q->key[i], "cursor") == 0)
			continue;
		page_escape(&b, &e, q->key[i], 0);
		page_put(&b, &e, "=", 1);
		page_escape(&b, &e, q->val[i], 0);
		page_put(&b, &e, "&", 1);
	}
	snprintf(lim, sizeof(lim), "limit=%ld&cursor=", p->limit);
	page_put(&b, &e, lim, strlen(lim));
	page_put(&b, &e, cursor, strlen(cursor));
	page_put(&b, &e, ">; rel=\"next\"", 13);
	char *out = e == BW_OK ? pool_strndup(req->pool, buf_ptr(&b), buf_len(&b)) : NULL;
	buf_free(&b);
	return out;
}

bw_err
page_reply(struct http_req *req, struct page *p, const struct http_query *q, json_t *data)
{
	char *next = NULL;
	bw_err e = BW_OK;
	if (data == NULL)
		return BW_ERR_NOMEM;
	if (p->more && (next = page_cursor(req, p, &p->last)) == NULL) {
		json_decref(data);
		return BW_ERR_NOMEM;
	}
	if (next != NULL) {
		char *link = page_link(req, p, q, next);
		if (link == NULL || (e = response_header(req, "Link", link, 0)) != BW_OK) {
			json_decref(data);
			return link == NULL ? BW_ERR_NOMEM : e;
		}
	}
	json_t *body = json_pack("{s:o, s:I, s:i, s:b, s:s?}", "data", data, "total",
				 (json_int_t)p->total, "limit", (int)p->limit, "has_more", p->more,
				 "next_cursor", next);
	if (body == NULL)
		return BW_ERR_NOMEM;
	return response_json(req, 200, body);
}

bw_err
page_reply_jsonw(struct http_req *req, struct page *p, const struct http_query *q,
		 struct jsonw *w, struct buf *b)
{
	char *next = NULL, *body;
	size_t len;
	bw_err e = BW_OK;
	if (p->more && (next = page_cursor(req, p, &p->last)) == NULL)
		e = BW_ERR_NOMEM;
	if (e == BW_OK && next != NULL) {
		char *link = page_link(req, p, q, next);
		e = link == NULL ? BW_ERR_NOMEM : response_header(req, "Link", link, 0);
	}
	if (e == BW_OK) {
		jsonw_key(w, "total");
		jsonw_int(w, p->total);
		jsonw_key(w, "limit");
		jsonw_int(w, p->limit);
		jsonw_key(w, "has_more");
		jsonw_bool(w, p->more);
		jsonw_key(w, "next_cursor");
		jsonw_cstring(w, next);
		jsonw_object_close(w);
		e = jsonw_finish(w);
	}
	if (e == BW_OK)
		e = buf_take(b, &body, &len);
	buf_free(b);
	if (e != BW_OK)
		return e;
	return response_raw(req, 200, "application/json", NULL, body, len);
}
