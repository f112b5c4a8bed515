/*
 * Attachment routes, made from the module descriptors (attachments = 1):
 *   POST   /api/v1/<m>/:id/files              <m>.attach   (an upload route)
 *   GET    /api/v1/<m>/:id/files              <m>.view
 *   GET    /api/v1/<m>/:id/files/:fid         <m>.view
 *   GET    /api/v1/<m>/:id/files/:fid/content <m>.download
 *   DELETE /api/v1/<m>/:id/files/:fid         <m>.attach   (destructive)
 * and GET /api/v1/files/usage (settings.view). Each handler parses the
 * request and calls an operation of files.h.
 */
#include "files_api.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "files.h"

/* The largest Content-Length an upload route lets through; [files] max_bytes decides below it. */
#define FILES_ROUTE_BODY_MAX ((size_t)1073741824 + 65536)

static struct route *files_rt;
static size_t files_nrt;
static bw_err files_rt_err = BW_OK;
static pthread_once_t files_rt_once = PTHREAD_ONCE_INIT;

static bw_err
api_ids(struct http_req *req, int64_t *row, int64_t *fid)
{
	if (http_req_id(req, "id", row) != BW_OK)
		return response_error(req, BW_ERR_NOTFOUND, "no such record");
	if (fid != NULL && http_req_id(req, "fid", fid) != BW_OK)
		return response_error(req, BW_ERR_NOTFOUND, "no such file");
	return BW_OK;
}

/* --- upload ------------------------------------------------------------------ */

static bw_err
api_up_name(struct http_req *req, const char *name, size_t len, const char *claimed)
{
	return file_upload_name(req->upload.state, name, len, claimed);
}

static bw_err
api_up_data(struct http_req *req, const char *p, size_t n)
{
	return file_upload_data(req->upload.state, p, n);
}

static bw_err
api_up_end(struct http_req *req)
{
	json_t *f;
	bw_err e = file_upload_finish(req->upload.state, &f);
	return e != BW_OK ? e : response_json(req, 201, f);
}

static void
api_up_abort(struct http_req *req)
{
	file_upload_free(req->upload.state);
	req->upload.state = NULL;
}

static bw_err
api_upload(struct http_req *req)
{
	int64_t row;
	uint64_t declared = 0;
	const char *cl = http_req_header(req, "Content-Length");
	bw_err e = api_ids(req, &row, NULL);
	if (e != BW_OK)
		return e;
	if (cl != NULL) {
		char *end;
		unsigned long long v = strtoull(cl, &end, 10);
		declared = *end == '\0' ? (uint64_t)v : UINT64_MAX;
	}
	struct file_upload *u;
	if ((e = file_upload_start(&req->op, req->route->data, row, declared, &u)) != BW_OK)
		return e;
	req->upload = (struct http_upload){api_up_name, api_up_data, api_up_end, api_up_abort, u};
	return BW_OK;
}

/* --- reading ------------------------------------------------------------------- */

static bw_err
api_list(struct http_req *req)
{
	static const char base[] = " FROM files WHERE module = ? AND row_id = ? AND state = 'ready'";
	const struct module_desc *m = req->route->data;
	db *d;
	db_stmt *s = NULL;
	int row, idx = 1;
	int64_t rid;
	struct http_query q;
	struct page p;
	page_init(&p);
	bw_err e = api_ids(req, &rid, NULL);
	if (e != BW_OK || (e = http_query_parse(req, &q)) != BW_OK)
		return e;
	for (size_t i = 0; i < q.n; i++) {
		int taken;
		if ((e = page_param(req, &p, q.key[i], q.val[i], &taken)) != BW_OK)
			return e;
		if (!taken)
			return response_error(
			    req, BW_ERR_INVALID,
			    pool_printf(req->pool, "unknown query parameter '%.64s' (limit, cursor)",
					q.key[i]));
	}
	if ((e = page_order(req, &p, "id", "id", 0, PAGE_INT)) != BW_OK)
		return e;
	if ((e = http_req_db(req, &d)) != BW_OK)
		return e;
	/* The row must exist: a list of nothing would say it does. */
	if ((e = file_row_exists(&req->op, m, rid)) != BW_OK)
		return e;
	const char *kc = page_cond(req, &p), *ord = page_order_sql(req, &p);
	const char *sql = kc && ord ? pool_printf(req->pool, "SELECT " FILE_COLUMNS "%s%s%s%s", base,
						  kc[0] ? " AND " : "", kc, ord)
				    : NULL;
	json_t *list = json_array();
	if (list == NULL || sql == NULL) {
		json_decref(list);
		return response_error(req, BW_ERR_NOMEM, NULL);
	}
	e = db_prepare(d, sql, &s);
	if (e == BW_OK && (e = DB_BIND(s, DB_TEXT(m->name), DB_INT(rid))) == BW_OK) {
		idx = 3;
		if ((e = page_bind(&p, s, &idx)) == BW_OK)
			e = page_bind_limit(&p, s, &idx);
	}
	while (e == BW_OK && (e = db_step(s, &row)) == BW_OK && row && !page_full(&p)) {
		json_array_append_new(list, file_json(s));
		page_seen_key(&p, db_col_int(s, 0), db_col_int(s, 0));
	}
	if (s != NULL)
		db_finalize(s);
	if (e == BW_OK) {
		char *csql = pool_printf(req->pool, "SELECT COUNT(*)%s", base);
		e = csql ? DB_QUERY_INT(d, &p.total, csql, DB_TEXT(m->name), DB_INT(rid)) : BW_ERR_NOMEM;
	}
	if (e != BW_OK) {
		json_decref(list);
		return e == BW_ERR_NOMEM ? response_error(req, e, NULL) : op_unavailable(&req->op);
	}
	return page_reply(req, &p, &q, list);
}

static bw_err
api_get(struct http_req *req)
{
	int64_t rid, fid;
	json_t *f;
	bw_err e = api_ids(req, &rid, &fid);
	if (e != BW_OK || (e = file_get(&req->op, req->route->data, rid, fid, &f)) != BW_OK)
		return e;
	return response_json(req, 200, f);
}

static bw_err
api_delete(struct http_req *req)
{
	int64_t rid, fid;
	bw_err e = api_ids(req, &rid, &fid);
	if (e != BW_OK || (e = file_delete(&req->op, req->route->data, rid, fid)) != BW_OK)
		return e;
	char *empty = malloc(1);
	if (empty == NULL)
		return response_error(req, BW_ERR_NOMEM, NULL);
	return response_raw(req, 204, "application/json", NULL, empty, 0);
}

/*
 * Range (RFC 9110 14.2): one bytes range, "a-b", "a-" or "-n". 1 when
 * the whole file is to be sent (no Range, several ranges, another unit),
 * 0 with [*from, *to] set, -1 when no byte of the file is in it (416).
 */
static int
api_range(const char *h, uint64_t size, uint64_t *from, uint64_t *to)
{
	if (h == NULL || strncmp(h, "bytes=", 6) != 0 || strchr(h, ',') != NULL)
		return 1;
	const char *p = h + 6, *dash = strchr(p, '-');
	char *end;
	if (dash == NULL)
		return 1;
	if (dash == p) { /* the last n bytes */
		unsigned long long n = strtoull(dash + 1, &end, 10);
		if (*end != '\0' || end == dash + 1)
			return 1;
		if (n == 0 || size == 0)
			return -1;
		*from = n >= size ? 0 : size - n;
		*to = size - 1;
		return 0;
	}
	if (*p < '0' || *p > '9')
		return 1;
	unsigned long long a = strtoull(p, &end, 10), b;
	if (end != dash)
		return 1;
	if (dash[1] == '\0') {
		b = size ? size - 1 : 0;
	} else {
		if (dash[1] < '0' || dash[1] > '9')
			return 1;
		b = strtoull(dash + 1, &end, 10);
		if (*end != '\0')
			return 1;
		if (b < a)
			return 1; /* invalid: ignored, the whole file */
	}
	if (a >= size)
		return -1;
	*from = a;
	*to = b >= size ? size - 1 : b;
	return 0;
}

/*
 * filename (an ASCII fallback: everything else as '_', quotes and
 * backslashes too) and filename* (RFC 5987: UTF-8, percent-encoded but for
 * attr-char) for Content-Disposition (RFC 6266).
 */
static const char *
api_disposition(struct http_req *req, const char *name)
{
	size_t n = strlen(name);
	char *ascii = pool_alloc(req->pool, n + 1), *pct = pool_alloc(req->pool, 3 * n + 1);
	if (ascii == NULL || pct == NULL)
		return NULL;
	size_t a = 0, o = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];
		int plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
			    strchr("!#$&+-.^_`|~", c) != NULL;
		if (c >= 0x80) {
			if ((c & 0xc0) != 0x80) /* one '_' per character */
				ascii[a++] = '_';
		} else {
			ascii[a++] = (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') ? (char)c : '_';
		}
		if (plain) {
			pct[o++] = (char)c;
		} else {
			snprintf(pct + o, 4, "%%%02X", c);
			o += 3;
		}
	}
	ascii[a] = pct[o] = '\0';
	return pool_printf(req->pool, "attachment; filename=\"%s\"; filename*=UTF-8''%s", ascii, pct);
}

static long
api_stream_read(void *cls, uint64_t off, void *buf, size_t n)
{
	return file_reader_read_at(cls, off, buf, n);
}

static void
api_stream_free(void *cls)
{
	file_reader_free(cls);
}

static bw_err
api_content(struct http_req *req)
{
	int64_t rid, fid;
	json_t *f;
	struct file_reader *rd;
	bw_err e = api_ids(req, &rid, &fid);
	if (e != BW_OK || (e = file_open(&req->op, req->route->data, rid, fid, &f, &rd)) != BW_OK)
		return e;
	uint64_t size = file_reader_size(rd), from = 0, to = size ? size - 1 : 0;
	const char *type = pool_strdup(req->pool, json_string_value(json_object_get(f, "type")));
	const char *disp = api_disposition(req, json_string_value(json_object_get(f, "name")));
	const char *etag = pool_printf(req->pool, "\"%s\"",
				       json_string_value(json_object_get(f, "sha256")));
	json_decref(f);
	if (type == NULL || disp == NULL || etag == NULL) {
		file_reader_free(rd);
		return response_error(req, BW_ERR_NOMEM, NULL);
	}
	int whole = api_range(http_req_header(req, "Range"), size, &from, &to);
	/* If-Range with another validator: the whole file (RFC 9110 13.1.5). */
	const char *ifr = http_req_header(req, "If-Range");
	if (whole == 0 && ifr != NULL && strcmp(ifr, etag) != 0)
		whole = 1, from = 0, to = size ? size - 1 : 0;
	if (whole < 0) {
		file_reader_free(rd);
		if (response_header(req, "Content-Range",
				    pool_printf(req->pool, "bytes */%" PRIu64, size), 1) != BW_OK)
			return response_error(req, BW_ERR_NOMEM, NULL);
		return response_error(req, BW_ERR_RANGE, "the range is outside the file");
	}
	/* The first chunk is read now: a file damaged at its start is a clean 500, not a cut. */
	unsigned char probe;
	if (size > 0 && file_reader_read_at(rd, from, &probe, 1) != 1) {
		bw_err re = file_reader_err(rd);
		file_reader_free(rd);
		return response_error(req, re == BW_ERR_CRYPTO ? BW_ERR_CRYPTO : BW_ERR_UNAVAILABLE,
				      "the stored file cannot be read");
	}
	e = response_header(req, "Content-Disposition", disp, 0);
	if (e == BW_OK)
		e = response_header(req, "Content-Security-Policy", "sandbox; default-src 'none'", 0);
	if (e == BW_OK)
		e = response_header(req, "Accept-Ranges", "bytes", 0);
	if (e == BW_OK)
		e = response_header(req, "ETag", etag, 0);
	if (e == BW_OK && whole == 0)
		e = response_header(req, "Content-Range",
				    pool_printf(req->pool, "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64,
						from, to, size),
				    0);
	if (e != BW_OK) {
		file_reader_free(rd);
		return response_error(req, BW_ERR_NOMEM, NULL);
	}
	req->stream_offset = from;
	struct http_stream st = {size ? to - from + 1 : 0, api_stream_read, api_stream_free, rd};
	return response_stream(req, whole == 0 ? 206 : 200, type, &st);
}

/* --- usage ------------------------------------------------------------------------ */

static bw_err
api_usage(struct http_req *req)
{
	struct quota_usage u;
	bw_err e = quota_usage(req->op.ten, req->op.tn.slug, &u);
	if (e == BW_ERR_NOTFOUND)
		return response_error(req, e, "no such tenant");
	if (e != BW_OK)
		return response_error(req, BW_ERR_UNAVAILABLE,
				      "storage quotas cannot be read right now; try again shortly");
	int64_t avail = u.limit - u.used - u.reserved;
	return response_json(req, 200,
			     json_pack("{s:s, s:I, s:I, s:I, s:I}", "plan", u.plan, "limit",
				       (json_int_t)u.limit, "used", (json_int_t)u.used, "reserved",
				       (json_int_t)u.reserved, "available",
				       (json_int_t)(avail > 0 ? avail : 0)));
}

const struct route files_usage_routes[] = {
    {HTTP_GET, "/api/v1/files/usage", api_usage, 0, "settings.view", ROUTE_BODY_NONE, NULL},
};
const size_t files_usage_routes_count = BW_ARRAY_LEN(files_usage_routes);

/* --- the table ------------------------------------------------------------------------ */

static const struct {
	unsigned method;
	const char *suffix;
	route_handler h;
	const char *verb;
	unsigned flags;
	size_t body;
} files_crud[] = {
    {HTTP_POST, "/:id/files", api_upload, "attach", ROUTE_UPLOAD, FILES_ROUTE_BODY_MAX},
    {HTTP_GET, "/:id/files", api_list, "view", 0, ROUTE_BODY_NONE},
    {HTTP_GET, "/:id/files/:fid", api_get, "view", 0, ROUTE_BODY_NONE},
    {HTTP_GET, "/:id/files/:fid/content", api_content, "download", 0, ROUTE_BODY_NONE},
    {HTTP_DELETE, "/:id/files/:fid", api_delete, "attach", ROUTE_DESTRUCTIVE, ROUTE_BODY_NONE},
};

static char *
files_strf(const char *a, const char *b, const char *c)
{
	char *s;
	return asprintf(&s, "%s%s%s", a, b, c) < 0 ? NULL : s;
}

static void
files_rt_build(void)
{
	size_t n = 0;
	for (size_t i = 0; i < module_catalog_count; i++)
		n += module_catalog[i]->attachments ? BW_ARRAY_LEN(files_crud) : 0;
	if ((files_rt = calloc(n ? n : 1, sizeof(*files_rt))) == NULL) {
		files_rt_err = BW_ERR_NOMEM;
		return;
	}
	for (size_t i = 0; i < module_catalog_count; i++) {
		const struct module_desc *m = module_catalog[i];
		if (!m->attachments)
			continue;
		for (size_t c = 0; c < BW_ARRAY_LEN(files_crud); c++) {
			struct route *r = &files_rt[files_nrt++];
			r->method = files_crud[c].method;
			r->pattern = files_strf("/api/v1/", m->name, files_crud[c].suffix);
			r->handler = files_crud[c].h;
			r->flags = files_crud[c].flags;
			r->permission = files_strf(m->name, ".", files_crud[c].verb);
			r->body_max = files_crud[c].body;
			r->data = m;
			if (r->pattern == NULL || r->permission == NULL) {
				files_rt_err = BW_ERR_NOMEM;
				return;
			}
		}
	}
}

bw_err
files_routes(const struct route **out, size_t *n)
{
	pthread_once(&files_rt_once, files_rt_build);
	*out = files_rt;
	*n = files_nrt;
	return files_rt_err;
}
