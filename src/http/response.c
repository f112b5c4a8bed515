/*
 * Replies. response_status() is the one place an error becomes an HTTP
 * status; handlers return a bw_err and never choose error statuses.
 */
#include "http.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

int
response_status(bw_err e)
{
	switch (e) {
	case BW_OK:
		return 200;
	case BW_ERR_INVALID:
		return 400;
	case BW_ERR_UNAUTHORIZED:
		return 401;
	case BW_ERR_DENIED:
		return 403;
	case BW_ERR_NOTFOUND:
		return 404;
	case BW_ERR_METHOD:
		return 405;
	case BW_ERR_CONFLICT:
		return 409;
	case BW_ERR_TOO_LARGE:
		return 413;
	case BW_ERR_LOCKED:
		return 423;
	case BW_ERR_RATE:
		return 429;
	case BW_ERR_HEADERS_TOO_LARGE:
		return 431;
	case BW_ERR_LENGTH_REQUIRED:
		return 411;
	case BW_ERR_PRECONDITION:
		return 412;
	case BW_ERR_MEDIA_TYPE:
		return 415;
	case BW_ERR_UNPROCESSABLE:
		return 422;
	case BW_ERR_QUOTA:
		return 507;
	case BW_ERR_RANGE:
		return 416;
	case BW_ERR_UNSUPPORTED:
		return 501;
	case BW_ERR_UNAVAILABLE:
	case BW_ERR_DB:
		return 503;
	case BW_ERR_NOMEM:
	case BW_ERR_IO:
	case BW_ERR_CRYPTO:
	case BW_ERR_CONFIG:
	case BW_ERR_INTERNAL:
	case BW_ERR__COUNT:
		return 500;
	}
	abort();
}

bw_err
response_json(struct http_req *req, int status, json_t *body)
{
	if (body == NULL)
		return response_error(req, BW_ERR_NOMEM, NULL);
	json_decref(req->reply);
	req->reply = body;
	req->status = status;
	req->op.err = BW_OK;
	return BW_OK;
}

bw_err
response_stream(struct http_req *req, int status, const char *type, const struct http_stream *st)
{
	if (req->stream.free != NULL)
		req->stream.free(req->stream.cls);
	req->stream = *st;
	json_decref(req->reply);
	req->reply = NULL;
	free(req->reply_raw);
	req->reply_raw = NULL;
	req->reply_type = type;
	req->status = status;
	req->op.err = BW_OK;
	return BW_OK;
}

bw_err
response_error(struct http_req *req, bw_err e, const char *msg)
{
	bw_err r = op_fail(&req->op, e, msg);
	req->status = response_status(r);
	return r;
}

bw_err
response_error_detail(struct http_req *req, bw_err e, const char *msg, json_t *detail)
{
	bw_err r = op_fail_detail(&req->op, e, msg, detail);
	req->status = response_status(r);
	return r;
}

char *
response_error_body(const struct http_req *req, size_t *len)
{
	/*
	 * Server-side failures never echo internal detail to the client; the
	 * request id in the reply ties it to the log line that has the detail.
	 */
	/*
	 * A dependency that is down (503) and a full plan (507) say what is
	 * wrong and what to do: their messages are written for the client.
	 */
	int says = req->status < 500 || req->op.err == BW_ERR_UNAVAILABLE || req->op.err == BW_ERR_QUOTA;
	const char *msg = req->op.err_msg;
	if (msg == NULL || !says)
		msg = bw_strerror(req->op.err);
	json_t *o = json_pack("{s:{s:s, s:s, s:s}}", "error", "code", bw_errcode(req->op.err),
			      "message", msg, "request_id", req->id);
	if (o == NULL) /* a message that is not UTF-8: the code's own text instead */
		o = json_pack("{s:{s:s, s:s, s:s}}", "error", "code", bw_errcode(req->op.err), "message",
			      bw_strerror(req->op.err), "request_id", req->id);
	if (o == NULL)
		return NULL;
	if (req->op.err_detail != NULL && says) {
		json_error_t je;
		json_t *d = json_loads(req->op.err_detail, 0, &je), *v, *err = json_object_get(o, "error");
		const char *k;
		json_object_foreach(d, k, v)
		{
			if (strcmp(k, "code") && strcmp(k, "message") && strcmp(k, "request_id"))
				json_object_set(err, k, v);
		}
		json_decref(d);
	}
	char *s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (s != NULL)
		*len = strlen(s);
	return s;
}

bw_err
response_header(struct http_req *req, const char *name, const char *value, int always)
{
	for (const char *p = value; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return BW_ERR_INVALID; /* no header splitting, whatever the caller passed */
	char *v = pool_strdup(req->pool, value);
	if (v == NULL)
		return BW_ERR_NOMEM;
	for (size_t i = 0; i < req->nheaders; i++)
		if (strcasecmp(req->headers[i].name, name) == 0) {
			req->headers[i].value = v;
			req->headers[i].always = always;
			return BW_OK;
		}
	if (req->nheaders == HTTP_REPLY_HEADERS_MAX)
		return BW_ERR_NOMEM;
	req->headers[req->nheaders].name = name;
	req->headers[req->nheaders].value = v;
	req->headers[req->nheaders].always = always;
	req->nheaders++;
	return BW_OK;
}

bw_err
response_raw(struct http_req *req, int status, const char *type, const char *disposition,
	     char *body, size_t len)
{
	if (body == NULL)
		return response_error(req, BW_ERR_NOMEM, NULL);
	free(req->reply_raw);
	req->reply_raw = body;
	req->reply_raw_len = len;
	req->reply_type = type;
	req->reply_disposition = disposition;
	req->status = status;
	return BW_OK;
}
