/*
 * The request context's accessors: what a handler reaches through its
 * request (the server's services, the body, headers, route parameters).
 */
#include "http.h"

#include <limits.h>
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

/* The value of reply header name already set on req, or NULL. */
static const char *
req_reply_header(const struct http_req *req, const char *name)
{
	for (size_t i = 0; i < req->nheaders; i++)
		if (strcasecmp(req->headers[i].name, name) == 0)
			return req->headers[i].value;
	return NULL;
}

bw_err
http_req_rate_headers(struct http_req *req, const struct ratelimit_state *st)
{
	if (st->limit <= 0)
		return BW_OK;
	const char *had = req_reply_header(req, "RateLimit-Remaining");
	long had_left;
	if (had != NULL && util_parse_long(had, 0, LONG_MAX, &had_left) == BW_OK &&
	    had_left < st->remaining)
		return BW_OK; /* a stricter limiter already spoke */
	char v[3][24];
	snprintf(v[0], sizeof(v[0]), "%ld", st->limit);
	snprintf(v[1], sizeof(v[1]), "%ld", st->remaining);
	snprintf(v[2], sizeof(v[2]), "%ld", st->reset);
	bw_err e = response_header(req, "RateLimit-Limit", v[0], 1);
	if (e == BW_OK)
		e = response_header(req, "RateLimit-Remaining", v[1], 1);
	if (e == BW_OK)
		e = response_header(req, "RateLimit-Reset", v[2], 1);
	if (e == BW_OK && st->retry_after > 0 &&
	    (req->retry_after = pool_printf(req->pool, "%ld", st->retry_after)) == NULL)
		e = BW_ERR_NOMEM;
	return e;
}

int
http_req_login_allowed(struct http_req *req)
{
	struct ratelimit_state st;
	int ok = ratelimit_check(req->svc->login_rl, req->client_ip, util_now_us(), &st);
	/* Out of memory: the attempt is judged all the same, only its headers are lost. */
	if (http_req_rate_headers(req, &st) != BW_OK)
		log_warn("request %s: out of memory for the sign-in rate headers", req->id);
	return ok;
}

/*
 * The key a duplicate-key error is about: jansson stops right after the
 * second occurrence of the key's string token, so the token ends at byte
 * pos of the body. Decoded from the body (escapes and all), or NULL.
 */
static const char *
req_json_dup_key(struct http_req *req, size_t pos)
{
	const char *b = req->body;
	if (pos < 2 || pos > req->body_len || b[pos - 1] != '"')
		return NULL;
	size_t start = pos - 1;
	for (;;) {
		if (start == 0)
			return NULL;
		start--;
		if (b[start] != '"')
			continue;
		size_t bs = 0; /* a quote after an odd number of backslashes is escaped */
		while (start - bs > 0 && b[start - bs - 1] == '\\')
			bs++;
		if (bs % 2 == 0)
			break;
	}
	json_error_t je;
	json_t *k = json_loadb(b + start, pos - start, JSON_DECODE_ANY, &je);
	const char *out = json_is_string(k) ? pool_strdup(req->pool, json_string_value(k)) : NULL;
	json_decref(k);
	return out;
}

/* At most max bytes of s, cut at a UTF-8 character boundary, "..." marking a cut. */
static const char *
req_shorten(struct http_req *req, const char *s, size_t max)
{
	size_t n = strlen(s);
	if (n <= max)
		return s;
	while (max > 0 && ((unsigned char)s[max] & 0xc0) == 0x80)
		max--;
	return pool_printf(req->pool, "%.*s...", (int)max, s);
}

/* The 400 for a body jansson refused: its error, where, and the key a duplicate repeats. */
static bw_err
req_json_error(struct http_req *req, const json_error_t *je)
{
	char text[JSON_ERROR_TEXT_LENGTH];
	snprintf(text, sizeof(text), "%s", je->text);
	/*
	 * jansson quotes the body near the error ("near '...'"): left out, so
	 * no part of a body (a password) is ever echoed back; where it went
	 * wrong is in line, column and position.
	 */
	char *near = strstr(text, " near ");
	if (near != NULL)
		*near = '\0';
	json_t *probe = json_string(text);
	if (probe == NULL || text[0] == '\0')
		snprintf(text, sizeof(text), "%s", "malformed");
	json_decref(probe);
	json_t *detail = json_pack("{s:I, s:i, s:i}", "position", (json_int_t)je->position, "line",
				   je->line, "column", je->column);
	const char *msg = NULL;
	if (json_error_code(je) == json_error_duplicate_key) {
		const char *key = req_json_dup_key(req, (size_t)je->position);
		if (key != NULL) {
			msg = pool_printf(req->pool,
					  "duplicate key \"%s\" in the JSON body (line %d, column %d, "
					  "byte %d)",
					  req_shorten(req, key, 100), je->line, je->column, je->position);
			if (detail != NULL)
				json_object_set_new(detail, "key", json_string(key));
		}
	}
	if (msg == NULL)
		msg = pool_printf(req->pool,
				  "the body is not valid JSON: %s (line %d, column %d, byte %d)", text,
				  je->line, je->column, je->position);
	return response_error_detail(req, BW_ERR_INVALID, msg ? msg : "the body is not valid JSON",
				     detail);
}

bw_err
http_req_json(struct http_req *req, json_t **out)
{
	json_error_t je;
	*out = NULL;
	if (req->body == NULL || req->body_len == 0)
		return response_error(req, BW_ERR_INVALID, "a JSON object body is required");
	json_t *j =
	    json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
	if (j == NULL)
		return req_json_error(req, &je);
	if (!json_is_object(j)) {
		const char *what = json_is_array(j)	   ? "an array"
				   : json_is_string(j)	   ? "a string"
				   : json_is_number(j)	   ? "a number"
				   : json_is_boolean(j)	   ? "a boolean"
							   : "null";
		json_decref(j);
		return response_error(req, BW_ERR_INVALID,
				      pool_printf(req->pool, "the body must be a JSON object, not %s",
						  what));
	}
	*out = j;
	return BW_OK;
}

/* Case-insensitive: s starts with the n bytes of lit; *s moved past them. */
static int
req_skip(const char **s, const char *lit)
{
	size_t n = strlen(lit);
	if (strncasecmp(*s, lit, n) != 0)
		return 0;
	*s += n;
	return 1;
}

static void
req_skip_ows(const char **s)
{
	while (**s == ' ' || **s == '\t')
		(*s)++;
}

int
http_media_is_json(const char *ct)
{
	return http_media_is(ct, "application/json");
}

int
http_media_is(const char *ct, const char *type)
{
	if (ct == NULL || !req_skip(&ct, type))
		return 0;
	/* RFC 9110 8.3.1: *( OWS ";" OWS [ parameter ] ), parameter = name "=" value */
	for (;;) {
		req_skip_ows(&ct);
		if (*ct == '\0')
			return 1;
		if (*ct++ != ';')
			return 0;
		req_skip_ows(&ct);
		if (*ct == ';' || *ct == '\0')
			continue; /* an empty parameter */
		if (!req_skip(&ct, "charset="))
			return 0;
		if (!req_skip(&ct, "utf-8") && !req_skip(&ct, "\"utf-8\""))
			return 0;
		if (*ct != '\0' && *ct != ';' && *ct != ' ' && *ct != '\t')
			return 0;
	}
}

/* --- If-Match and ETag (optimistic concurrency) ------------------------------- */

/* The If-Match field lines of a request, as MHD holds them (borrowed). */
struct req_if_match_lines {
	const char *v[HTTP_IF_MATCH_LINES];
	size_t len[HTTP_IF_MATCH_LINES];
	size_t n;
	int overflow;
};

static enum MHD_Result
req_if_match_field(void *cls, enum MHD_ValueKind kind, const char *key, size_t key_size,
		   const char *value, size_t value_size)
{
	struct req_if_match_lines *l = cls;
	(void)kind;
	if (key == NULL || key_size != 8 || strncasecmp(key, "If-Match", 8) != 0)
		return MHD_YES;
	if (l->n == HTTP_IF_MATCH_LINES) {
		l->overflow = 1;
		return MHD_NO;
	}
	l->v[l->n] = value != NULL ? value : "";
	l->len[l->n++] = value != NULL ? value_size : 0;
	return MHD_YES;
}

bw_err
http_req_if_match(struct http_req *req, struct http_if_match *out)
{
	struct req_if_match_lines l = {.n = 0};
	const char *why = NULL;
	out->n = 0;
	if (req->conn != NULL)
		MHD_get_connection_values_n(req->conn, MHD_HEADER_KIND, req_if_match_field, &l);
	if (l.overflow)
		return response_error(req, BW_ERR_INVALID, "If-Match: too many field lines");
	bw_err e = http_if_match_parse(l.v, l.len, l.n, out, &why);
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

bw_err
http_reply_versioned(struct http_req *req, int status, json_t *o)
{
	json_t *v = json_object_get(o, "version");
	bw_err e = json_is_integer(v) ? http_req_etag(req, (int64_t)json_integer_value(v)) : BW_OK;
	if (e != BW_OK) {
		json_decref(o);
		return e;
	}
	return response_json(req, status, o);
}
