/*
 * Query strings, split and percent-decoded in one place for every handler
 * (lists, filters, exports, the audit log): bounded in count and length, a
 * malformed escape, an encoded NUL or a name given twice refused with 400.
 */
#include "http.h"

#include <string.h>

int
http_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decode s[0..n) into the pool ('+' is a space); NULL if malformed. */
static char *
query_unescape(pool *p, const char *s, size_t n)
{
	char *o = pool_alloc(p, n + 1);
	size_t j = 0;
	if (o == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '%') {
			int hi, lo;
			if (n - i < 3 || (hi = http_hexval(s[i + 1])) < 0 || (lo = http_hexval(s[i + 2])) < 0)
				return NULL;
			c = (char)(hi << 4 | lo);
			if (c == '\0')
				return NULL;
			i += 2;
		} else if (c == '+') {
			c = ' ';
		}
		o[j++] = c;
	}
	o[j] = '\0';
	return o;
}

/* Split and decode text (at most max bytes) into q. */
static bw_err
query_split(struct http_req *req, const char *p, size_t max, struct http_query *q)
{
	q->n = 0;
	if (p != NULL && strlen(p) > max)
		return response_error(req, BW_ERR_INVALID, "the query string is too long");
	while (p != NULL && *p != '\0') {
		const char *amp = strchr(p, '&');
		size_t len = amp ? (size_t)(amp - p) : strlen(p);
		if (len > 0) { /* "a=1&&b=2": an empty pair is skipped */
			const char *eq = memchr(p, '=', len);
			size_t kl = eq ? (size_t)(eq - p) : len;
			if (q->n == HTTP_QUERY_MAX)
				return response_error(req, BW_ERR_INVALID, "too many query parameters");
			q->key[q->n] = query_unescape(req->pool, p, kl);
			q->val[q->n] = eq ? query_unescape(req->pool, eq + 1, len - kl - 1) : "";
			if (q->key[q->n] == NULL || q->val[q->n] == NULL)
				return response_error(req, BW_ERR_INVALID, "malformed query string");
			for (size_t i = 0; i < q->n; i++)
				if (strcmp(q->key[i], q->key[q->n]) == 0)
					return response_error(
					    req, BW_ERR_INVALID,
					    pool_printf(req->pool, "query parameter '%.64s' given twice",
							q->key[q->n]));
			q->n++;
		}
		p = amp ? amp + 1 : NULL;
	}
	return BW_OK;
}

bw_err
http_query_parse(struct http_req *req, struct http_query *q)
{
	return query_split(req, req->query, HTTP_QUERY_LEN_MAX, q);
}

bw_err
http_form_parse(struct http_req *req, struct http_query *q)
{
	if (req->body == NULL)
		return query_split(req, "", 0, q);
	if (memchr(req->body, '\0', req->body_len) != NULL)
		return response_error(req, BW_ERR_INVALID, "a NUL in the form");
	req->body[req->body_len] = '\0';
	return query_split(req, req->body, req->body_len, q);
}
