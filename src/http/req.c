/*
 * The request context's accessors: what a handler reaches through its
 * request (the server's services, the body, headers, route parameters).
 */
#include "http.h"

#include <microhttpd.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

const char *
http_req_header(const struct http_req *req, const char *name)
{
	return req->conn != NULL ? MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name)
				 : NULL;
}

bw_err
http_req_id(const struct http_req *req, const char *param, int64_t *out)
{
	*out = 0;
	for (size_t i = 0; i < req->nparams; i++) {
		if (strcmp(req->param_name[i], param) != 0)
			continue;
		long v;
		if (util_parse_long(req->param_value[i], 1, ROUTE_ID_MAX, &v) != BW_OK)
			return BW_ERR_NOTFOUND;
		*out = v;
		return BW_OK;
	}
	return BW_ERR_NOTFOUND;
}

bw_err
http_req_db(struct http_req *req, db **out)
{
	return op_db(&req->op, out);
}

const struct router *
http_req_router(const struct http_req *req)
{
	return req->svc->router;
}

const struct config *
http_req_config(const struct http_req *req)
{
	return req->svc->cfg;
}

struct tenancy *
http_req_tenancy(const struct http_req *req)
{
	return req->svc->ten;
}

struct auth_hasher *
http_req_hasher(const struct http_req *req)
{
	return req->svc->hasher;
}

int
http_req_login_allowed(struct http_req *req)
{
	return ratelimit_take(req->svc->login_rl, req->client_ip, util_now_us());
}

bw_err
http_req_json(struct http_req *req, json_t **out)
{
	json_error_t je;
	*out = NULL;
	if (req->body == NULL || req->body_len == 0)
		return response_error(req, BW_ERR_INVALID, "a JSON object body is required");
	json_t *j = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &je);
	if (j == NULL || !json_is_object(j)) {
		json_decref(j);
		return response_error(req, BW_ERR_INVALID, "the body is not a JSON object");
	}
	*out = j;
	return BW_OK;
}


/* --- If-Match and ETag (optimistic concurrency) ------------------------------- */

/* What the If-Match field lines of one request have said so far. */
struct req_if_match {
	struct http_if_match *out;
	int lines;     /* If-Match lines seen */
	int any;       /* one of them was "*" */
	int tags;      /* entity tags seen, of any kind */
	int malformed; /* a line that is not "*" or a list of entity tags */
	int too_many;  /* more distinct versions than HTTP_IF_MATCH_MAX */
};

static int
req_ows(char c)
{
	return c == ' ' || c == '\t';
}

/* etagc (RFC 9110 8.8.3): %x21 / %x23-7E / obs-text. */
static int
req_etagc(unsigned char c)
{
	return c == 0x21 || (c >= 0x23 && c <= 0x7e) || c >= 0x80;
}

/*
 * The version a strong tag's opaque content names: our ETags are a
 * positive decimal without leading zeros, so anything else (and any
 * value past INT64_MAX) names none and can never match (0).
 */
static int64_t
req_tag_version(const char *p, size_t n)
{
	int64_t v = 0;
	if (n == 0 || n > 19 || p[0] == '0')
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9' || v > (INT64_MAX - (p[i] - '0')) / 10)
			return 0;
		v = v * 10 + (p[i] - '0');
	}
	return v;
}

/* One If-Match field line: "*" alone, or a comma-separated list of entity tags. */
static void
req_if_match_line(struct req_if_match *st, const char *p, size_t n)
{
	size_t i = 0;
	st->lines++;
	while (n > 0 && req_ows(p[n - 1]))
		n--;
	while (i < n && req_ows(p[i]))
		i++;
	if (n - i == 1 && p[i] == '*') {
		st->any = 1;
		return;
	}
	while (i < n) {
		int weak = 0;
		if (p[i] == ',') { /* empty list elements are allowed (RFC 9110 5.6.1) */
			i++;
			while (i < n && req_ows(p[i]))
				i++;
			continue;
		}
		if (n - i >= 2 && p[i] == 'W' && p[i + 1] == '/') {
			weak = 1;
			i += 2;
		}
		if (i >= n || p[i] != '"')
			goto bad;
		size_t start = ++i;
		while (i < n && req_etagc((unsigned char)p[i]))
			i++;
		if (i >= n || p[i] != '"')
			goto bad;
		int64_t v = weak ? 0 : req_tag_version(p + start, i - start);
		i++;
		st->tags++;
		/* Weak tags never match (the strong comparison of RFC 9110 13.1.1). */
		if (v > 0) {
			size_t k = 0;
			while (k < st->out->n && st->out->version[k] != v)
				k++;
			if (k == st->out->n) {
				if (st->out->n == HTTP_IF_MATCH_MAX)
					st->too_many = 1;
				else
					st->out->version[st->out->n++] = v;
			}
		}
		while (i < n && req_ows(p[i]))
			i++;
		if (i < n && p[i] != ',')
			goto bad;
	}
	return;
bad:
	st->malformed = 1;
}

static enum MHD_Result
req_if_match_field(void *cls, enum MHD_ValueKind kind, const char *key, size_t key_size,
		   const char *value, size_t value_size)
{
	struct req_if_match *st = cls;
	(void)kind;
	if (key != NULL && key_size == 8 && strncasecmp(key, "If-Match", 8) == 0)
		req_if_match_line(st, value != NULL ? value : "", value != NULL ? value_size : 0);
	return MHD_YES;
}

/* The lines seen, judged: BW_OK with st->out filled, or BW_ERR_INVALID and why. */
static bw_err
req_if_match_verdict(struct req_if_match *st, const char **why)
{
	struct http_if_match *out = st->out;
	*why = NULL;
	if (st->lines == 0 || (st->any && st->lines == 1 && st->tags == 0)) {
		/* No precondition: none was given, or "*" (the row must exist, as it must anyway). */
		out->n = 1;
		out->version[0] = 0;
		return BW_OK;
	}
	if (st->malformed || st->any || st->tags == 0)
		*why = "If-Match: give \"*\" alone, or a list of entity tags (\"3\", as ETag sends)";
	else if (st->too_many)
		*why = "If-Match: too many entity tags";
	if (*why != NULL) {
		out->n = 0;
		return BW_ERR_INVALID;
	}
	if (out->n == 0) {
		/* Only weak tags, or tags naming no version of ours: none can match. */
		out->n = 1;
		out->version[0] = -1;
	}
	return BW_OK;
}

bw_err
http_if_match_parse(const char *const *lines, const size_t *lens, size_t nlines,
		    struct http_if_match *out, const char **why)
{
	struct req_if_match st = {.out = out};
	out->n = 0;
	for (size_t i = 0; i < nlines; i++)
		req_if_match_line(&st, lines[i], lens[i]);
	return req_if_match_verdict(&st, why);
}

bw_err
http_req_if_match(struct http_req *req, struct http_if_match *out)
{
	struct req_if_match st = {.out = out};
	const char *why;
	out->n = 0;
	if (req->conn != NULL)
		MHD_get_connection_values_n(req->conn, MHD_HEADER_KIND, req_if_match_field, &st);
	bw_err e = req_if_match_verdict(&st, &why);
	return e == BW_OK ? BW_OK : response_error(req, e, why);
}

bw_err
http_req_etag(struct http_req *req, int64_t version)
{
	char tag[24];
	if (version <= 0)
		return BW_OK; /* nothing versioned to name */
	snprintf(tag, sizeof(tag), "\"%lld\"", (long long)version);
	return response_header(req, "ETag", tag, 0);
}
