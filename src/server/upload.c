/*
 * Upload routes (ROUTE_UPLOAD, struct http_upload in http.h): the body is
 * never held, only passed on as it arrives. A multipart/form-data body
 * goes through libmicrohttpd's post processor, which finds the one part
 * named "file" and hands over its filename, claimed type and bytes; any
 * other body is the file itself, named by X-Filename. A refusal while the
 * body arrives is kept; the rest of the body is read and dropped (the
 * reply can only be queued once libmicrohttpd has it all), then sent.
 */
#include "server_int.h"

#include <string.h>
#include <strings.h>

#define UPLOAD_PP_BUFFER (64 * 1024) /* the post processor's own buffer (part headers) */
#define UPLOAD_PART "file"

static int
upload_is_multipart(const char *type)
{
	return type != NULL && strncasecmp(type, "multipart/form-data", 19) == 0 &&
	       (type[19] == ';' || type[19] == ' ' || type[19] == '\0');
}

/* Decode X-Filename (percent-encoded UTF-8) into the pool; NULL when malformed. */
static char *
upload_header_name(struct http_req *r, const char *v, size_t *len)
{
	size_t n = strlen(v), o = 0;
	char *out = pool_alloc(r->pool, n + 1);
	if (out == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (v[i] == '%') {
			int hi = i + 2 < n + 1 ? http_hexval(v[i + 1]) : -1;
			int lo = hi >= 0 ? http_hexval(v[i + 2]) : -1;
			if (hi < 0 || lo < 0)
				return NULL;
			out[o++] = (char)(hi << 4 | lo);
			i += 2;
		} else {
			out[o++] = v[i];
		}
	}
	out[o] = '\0';
	*len = o; /* may hold a NUL: the name check refuses it */
	return out;
}

/* Record a refusal once: the first is the outcome; what follows is dropped. */
static void
upload_fail(struct http_req *r, bw_err e)
{
	if (!r->upload_failed) {
		r->upload_failed = 1;
		if (r->op.err == BW_OK)
			(void)response_error(r, e == BW_OK ? BW_ERR_INTERNAL : e, NULL);
	}
}

static enum MHD_Result
upload_part(void *cls, enum MHD_ValueKind kind, const char *key, const char *filename,
	    const char *content_type, const char *transfer_encoding, const char *data, uint64_t off,
	    size_t size)
{
	(void)kind, (void)transfer_encoding, (void)off;
	struct http_req *r = cls;
	bw_err e;
	if (r->upload_failed)
		return MHD_NO;
	if (key == NULL || strcmp(key, UPLOAD_PART) != 0 || filename == NULL) {
		upload_fail(r, response_error(r, BW_ERR_INVALID,
					      "a multipart upload has one part, named \"file\", with a "
					      "filename; nothing else"));
		return MHD_NO;
	}
	if (!r->upload_named) {
		r->upload_named = 1;
		if ((e = r->upload.name(r, filename, strlen(filename), content_type)) != BW_OK) {
			upload_fail(r, e);
			return MHD_NO;
		}
	} else if (off == 0 && size > 0) {
		/* A second part named "file" starts over at 0. */
		upload_fail(r, response_error(r, BW_ERR_INVALID, "one file per upload"));
		return MHD_NO;
	}
	if (size > 0 && (e = r->upload.data(r, data, size)) != BW_OK) {
		upload_fail(r, e);
		return MHD_NO;
	}
	return MHD_YES;
}

bw_err
pipeline_upload_start(struct server *s, struct http_req *r)
{
	(void)s;
	if (http_req_header(r, "Idempotency-Key") != NULL)
		return response_error(r, BW_ERR_INVALID,
				      "an upload takes no Idempotency-Key: one that fails stores "
				      "nothing, so send it again");
	const char *type = http_req_header(r, "Content-Type");
	const char *xname = http_req_header(r, "X-Filename");
	int multipart = upload_is_multipart(type);
	if (multipart && xname != NULL)
		return response_error(r, BW_ERR_INVALID,
				      "X-Filename names a raw upload; a multipart one names its file "
				      "in its part");
	if (!multipart && xname == NULL)
		return response_error(r, BW_ERR_INVALID,
				      "name the file: X-Filename (percent-encoded UTF-8) with the file "
				      "as the body, or a multipart/form-data body with a part \"file\"");
	bw_err e = r->route->handler(r);
	if (e != BW_OK) {
		if (r->op.err != e)
			(void)response_error(r, e, NULL);
		return e;
	}
	if (r->upload.name == NULL || r->upload.data == NULL || r->upload.end == NULL) {
		log_error("request %s: bug: upload handler for %s set no sink", r->id, r->route->pattern);
		return response_error(r, BW_ERR_INTERNAL, NULL);
	}
	if (multipart) {
		r->upload_pp = MHD_create_post_processor(r->conn, UPLOAD_PP_BUFFER, upload_part, r);
		if (r->upload_pp == NULL)
			return response_error(r, BW_ERR_INVALID,
					      "a multipart/form-data body needs its boundary");
		return BW_OK;
	}
	size_t len = 0;
	const char *name = upload_header_name(r, xname, &len);
	if (name == NULL)
		return response_error(r, BW_ERR_INVALID, "X-Filename is not percent-encoded");
	r->upload_named = 1;
	/* application/octet-stream and no type claim nothing: the bytes say what it is. */
	return r->upload.name(r, name, len, type);
}

void
pipeline_upload_data(struct server *s, struct http_req *r, const char *data, size_t n)
{
	(void)s;
	if (r->upload_failed)
		return; /* read and dropped: the refusal goes out once the body is in */
	if (r->upload_pp != NULL) {
		/* The part's own refusal, when it made the parser stop, is the one to send. */
		if (MHD_post_process(r->upload_pp, data, n) != MHD_YES && !r->upload_failed)
			upload_fail(r, response_error(r, BW_ERR_INVALID, "malformed multipart body"));
		return;
	}
	bw_err e = r->upload.data(r, data, n);
	if (e != BW_OK)
		upload_fail(r, e);
}

enum MHD_Result
pipeline_upload_end(struct server *s, struct http_req *r)
{
	conntrack_busy(s->ct, r->track);
	bw_err e = r->op.err;
	if (!r->upload_failed && r->upload_pp != NULL) {
		/* Incomplete parts (a missing closing boundary) fail here. */
		enum MHD_Result ok = MHD_destroy_post_processor(r->upload_pp);
		r->upload_pp = NULL;
		e = r->op.err; /* a part's refusal in the parser's last call comes first */
		if (e == BW_OK && !r->upload_failed && ok != MHD_YES)
			e = response_error(r, BW_ERR_INVALID, "malformed multipart body");
		else if (e == BW_OK && !r->upload_failed && !r->upload_named)
			e = response_error(r, BW_ERR_INVALID,
					   "a multipart upload needs a part \"file\" with a filename");
	}
	if (e == BW_OK && !r->upload_failed)
		e = r->upload.end(r);
	else if (e == BW_OK)
		e = BW_ERR_INTERNAL;
	pipeline_outcome(r, e);
	server_release_db(s, r);
	return server_respond(s, r);
}

void
server_upload_done(struct http_req *r)
{
	if (r->upload_pp != NULL) {
		(void)MHD_destroy_post_processor(r->upload_pp);
		r->upload_pp = NULL;
	}
	if (r->upload.abort != NULL) {
		r->upload.abort(r);
		r->upload.abort = NULL;
	}
}
