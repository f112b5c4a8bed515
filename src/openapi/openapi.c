/*
 * The OpenAPI 3.1 document, made from the compiled route table and the
 * module descriptors; the built-in routes' bodies come from docs.c. See
 * openapi.h and docs/api.md.
 */
#include "openapi.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../modules/desc.h"

#define OA_MONEY_MAX 10000000000000LL /* the engine's default ceiling of an FT_MONEY (10^13 cents) */
#define OA_LIST_DEFAULT 25
#define OA_LIST_MAX 100

/* One build: the document so far and the first error. */
struct oa {
	json_t *doc, *paths, *schemas, *tags;
	bw_err err;
	char *msg;
	size_t msglen;
};

static bw_err
oa_fail(struct oa *o, bw_err e, const char *fmt, ...)
{
	if (o->err == BW_OK) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(o->msg, o->msglen, fmt, ap);
		va_end(ap);
		o->err = e;
	}
	return o->err;
}

/* A new reference to a JSON text of docs.c (' for "), or NULL with the error recorded. */
static json_t *
oa_text(struct oa *o, const char *text, const char *what)
{
	size_t n = strlen(text);
	char *s = malloc(n + 1);
	json_error_t je;
	if (s == NULL) {
		oa_fail(o, BW_ERR_NOMEM, "out of memory");
		return NULL;
	}
	for (size_t i = 0; i <= n; i++)
		s[i] = text[i] == '\'' ? '"' : text[i];
	json_t *v = json_loads(s, JSON_REJECT_DUPLICATES, &je);
	free(s);
	if (v == NULL)
		oa_fail(o, BW_ERR_INVALID, "%s: not valid JSON: %s (column %d)", what, je.text,
			je.column);
	return v;
}

/* Set key of obj to v (stolen); a NULL v or a failed set records OOM (unless an error is already in). */
static void
oa_set(struct oa *o, json_t *obj, const char *key, json_t *v)
{
	if (v == NULL || obj == NULL || json_object_set_new(obj, key, v) != 0) {
		if (v != NULL && obj == NULL)
			json_decref(v);
		oa_fail(o, BW_ERR_NOMEM, "out of memory");
	}
}

static void
oa_push(struct oa *o, json_t *arr, json_t *v)
{
	if (v == NULL || arr == NULL || json_array_append_new(arr, v) != 0)
		oa_fail(o, BW_ERR_NOMEM, "out of memory");
}

static json_t *
oa_ref(const char *kind, const char *name)
{
	char *s = NULL;
	json_t *r = NULL;
	if (asprintf(&s, "#/components/%s/%s", kind, name) >= 0) {
		r = json_pack("{s:s}", "$ref", s);
		free(s);
	}
	return r;
}

/* --- module schemas ------------------------------------------------------------------ */

/* "tickets" + "_create": component names. */
static char *
oa_name(const char *a, const char *b)
{
	char *s = NULL;
	return asprintf(&s, "%s%s", a, b) >= 0 ? s : NULL;
}

/*
 * The JSON Schema of a field's value. input: as a request gives it (null
 * allowed where the field is optional); else as a row shows it.
 */
static json_t *
oa_field(const struct field_desc *f, int input)
{
	const char *t = NULL;
	json_t *s = json_object();
	int nullable = !(f->flags & FF_REQUIRED);
	if (s == NULL)
		return NULL;
	switch (f->type) {
	case FT_STRING:
	case FT_TEXT:
	case FT_EMAIL:
		t = "string";
		json_object_set_new(s, "maxLength", json_integer(f->max_len));
		if ((f->flags & FF_REQUIRED) && input)
			json_object_set_new(s, "minLength", json_integer(1));
		if (f->type == FT_EMAIL)
			json_object_set_new(s, "format", json_string("email"));
		break;
	case FT_DATE:
		t = "string";
		json_object_set_new(s, "format", json_string("date"));
		json_object_set_new(s, "pattern", json_string("^[0-9]{4}-[0-9]{2}-[0-9]{2}$"));
		break;
	case FT_INT:
		t = "integer";
		json_object_set_new(s, "minimum", json_integer(f->min));
		json_object_set_new(s, "maximum", json_integer(f->max));
		break;
	case FT_MONEY:
		t = "integer";
		json_object_set_new(s, "minimum", json_integer(0));
		json_object_set_new(s, "maximum", json_integer(f->max > 0 ? f->max : OA_MONEY_MAX));
		break;
	case FT_REF:
		t = "integer";
		json_object_set_new(s, "minimum", json_integer(1));
		break;
	case FT_BOOL:
		t = "boolean";
		break;
	case FT_ENUM: {
		json_t *e = json_array();
		for (const char *const *v = f->enum_values; e != NULL && v && *v; v++)
			json_array_append_new(e, json_string(*v));
		if (nullable && e != NULL)
			json_array_append_new(e, json_null());
		json_object_set_new(s, "enum", e);
		break;
	}
	}
	if (t != NULL)
		json_object_set_new(s, "type", nullable ? json_pack("[s, s]", t, "null") : json_string(t));
	struct buf desc;
	int bad = 0;
	buf_init(&desc, 4096);
	bad |= buf_printf(&desc, "%s", f->label ? f->label : f->name) != BW_OK;
	if (f->type == FT_STRING || f->type == FT_TEXT || f->type == FT_EMAIL)
		bad |= buf_printf(&desc, ". At most %d bytes (UTF-8)%s",
			      f->max_len,
			      f->type == FT_TEXT ? "; no control characters but tab and newlines"
						 : "; no control characters but tab") != BW_OK;
	if (f->type == FT_MONEY)
		bad |= buf_printf(&desc, ". Integer cents") != BW_OK;
	if (f->type == FT_DATE)
		bad |= buf_printf(&desc, ". A calendar date, YYYY-MM-DD") != BW_OK;
	if (f->type == FT_REF)
		bad |= buf_printf(&desc,
			      ". The id of a %s record%s%s; referring to one needs %s.view", f->ref,
			      f->same ? " of the same " : "", f->same ? f->same : "", f->ref) != BW_OK;
	if (f->flags & FF_ENCRYPTED)
		bad |= buf_printf(&desc, ". Encrypted at rest") != BW_OK;
	if (f->flags & FF_IMMUTABLE)
		bad |= buf_printf(&desc, ". Given on create only") != BW_OK;
	if (f->flags & FF_ACTION)
		bad |= buf_printf(&desc, ". Changed only through an action") != BW_OK;
	if (f->flags & FF_READONLY)
		bad |= buf_printf(&desc, ". Set by the server") != BW_OK;
	if (f->flags & FF_WRITEONLY)
		bad |= buf_printf(&desc,
			      ". Write-only: never shown; rows show %s_set", f->name) != BW_OK;
	if (bad) {
		buf_free(&desc);
		json_decref(s);
		return NULL;
	}
	json_object_set_new(s, "description", json_string(buf_ptr(&desc)));
	buf_free(&desc);
	if (f->flags & (FF_READONLY | FF_ACTION))
		json_object_set_new(s, "readOnly", json_true());
	if (f->flags & FF_WRITEONLY)
		json_object_set_new(s, "writeOnly", json_true());
	if (input && f->def != NULL) {
		json_t *d = NULL;
		if (f->type == FT_BOOL)
			d = json_boolean(strcmp(f->def, "1") == 0 || strcmp(f->def, "true") == 0);
		else if (f->type == FT_INT || f->type == FT_MONEY || f->type == FT_REF)
			d = json_integer(strtoll(f->def, NULL, 10));
		else
			d = json_string(f->def);
		json_object_set_new(s, "default", d);
	}
	return s;
}

/* The row as shown: "<module>", and its create and update bodies. */
static void
oa_module_schemas(struct oa *o, const struct module_desc *m)
{
	json_t *row = json_pack("{s:s, s:s, s:[s, s, s, s, s]}", "type", "object", "title", m->label,
				"required", "id", "version", "created_at", "updated_at", "created_by");
	json_t *rp = json_pack(
	    "{s:{s:s, s:b}, s:{s:s, s:i, s:b, s:s}}", "id", "type", "integer", "readOnly", 1,
	    "version", "type", "integer", "minimum", 1, "readOnly", 1, "description",
	    "1 on create, +1 on every change; the ETag is its quoted value");
	json_t *cr = json_pack("{s:s, s:b}", "type", "object", "additionalProperties", 0);
	json_t *cp = json_object(), *creq = json_array();
	json_t *up = json_pack("{s:s, s:b}", "type", "object", "additionalProperties", 0);
	json_t *upp = json_object();
	if (row == NULL || rp == NULL || cr == NULL || cp == NULL || creq == NULL || up == NULL ||
	    upp == NULL)
		goto oom;
	for (size_t k = 0; k < m->nfields; k++) {
		const struct field_desc *f = &m->fields[k];
		int writable = !(f->flags & (FF_READONLY | FF_ACTION));
		if (f->flags & FF_WRITEONLY) {
			char *n = oa_name(f->name, "_set");
			if (n == NULL)
				goto oom;
			char d[160];
			snprintf(d, sizeof(d), "whether %s is stored (it is never shown)", f->name);
			oa_set(o, rp, n, json_pack("{s:s, s:b, s:s}", "type", "boolean", "readOnly", 1,
						   "description", d));
			free(n);
		} else {
			oa_set(o, rp, f->name, oa_field(f, 0));
		}
		if (!writable)
			continue;
		oa_set(o, cp, f->name, oa_field(f, 1));
		if ((f->flags & FF_REQUIRED) && f->def == NULL)
			oa_push(o, creq, json_string(f->name));
		if (!(f->flags & FF_IMMUTABLE))
			oa_set(o, upp, f->name, oa_field(f, 1));
	}
	static const char *const frame[] = {"created_at", "updated_at"};
	for (size_t i = 0; i < BW_ARRAY_LEN(frame); i++)
		oa_set(o, rp, frame[i],
		       json_pack("{s:s, s:s, s:b, s:s}", "type", "string", "format", "date-time",
				 "readOnly", 1, "description", "RFC 3339, UTC"));
	oa_set(o, rp, "created_by",
	       json_pack("{s:[s, s], s:b, s:s}", "type", "integer", "null", "readOnly", 1,
			 "description", "the user who created it (null: the system)"));
	oa_set(o, rp, "updated_by",
	       json_pack("{s:[s, s], s:b, s:s}", "type", "integer", "null", "readOnly", 1,
			 "description", "the user who changed it last"));
	if (m->present != NULL)
		oa_set(o, rp, "warnings",
		       json_pack("{s:s, s:{s:s}, s:b, s:s}", "type", "array", "items", "type", "string",
				 "readOnly", 1, "description", "advice derived from the row"));
	oa_set(o, row, "properties", rp);
	oa_set(o, cr, "properties", cp);
	if (json_array_size(creq) > 0)
		oa_set(o, cr, "required", creq);
	else
		json_decref(creq);
	oa_set(o, up, "properties", upp);
	char *n1 = oa_name(m->name, ""), *n2 = oa_name(m->name, "_create"),
	     *n3 = oa_name(m->name, "_update");
	if (n1 && n2 && n3) {
		oa_set(o, o->schemas, n1, row);
		oa_set(o, o->schemas, n2, cr);
		oa_set(o, o->schemas, n3, up);
	} else {
		json_decref(row);
		json_decref(cr);
		json_decref(up);
		oa_fail(o, BW_ERR_NOMEM, "out of memory");
	}
	free(n1);
	free(n2);
	free(n3);
	return;
oom:
	json_decref(row);
	json_decref(rp);
	json_decref(cr);
	json_decref(cp);
	json_decref(creq);
	json_decref(up);
	json_decref(upp);
	oa_fail(o, BW_ERR_NOMEM, "out of memory");
}

/* --- shared components ---------------------------------------------------------------- */

static const struct {
	int status;
	const char *name, *code, *text;
} oa_errors[] = {
    {400, "BadRequest", "invalid",
     "Malformed: bad JSON (the error also has position, line and column), a field or query "
     "parameter that is unknown or out of range, a malformed If-Match or Idempotency-Key, a "
     "malformed path"},
    {401, "Unauthorized", "unauthorized",
     "Not signed in, the session expired, or the token was refused (also wrong credentials at "
     "sign-in, or an MFA code still due)"},
    {403, "Forbidden", "forbidden",
     "The permission is not held, the admin IP allowlist refuses this address, the tenant is "
     "suspended, or a cookie-carrying change came from another origin"},
    {404, "NotFound", "not_found", "No such record here, or no tenant at this host"},
    {409, "Conflict", "conflict",
     "The change conflicts with the state of the data (a record still referred to, a "
     "workflow step out of order, a name taken), or a request with this Idempotency-Key is "
     "still running"},
    {412, "PreconditionFailed", "precondition_failed",
     "If-Match names a version that is no longer current: nothing was changed"},
    {413, "PayloadTooLarge", "payload_too_large",
     "The body is over this route's limit, or an export over its bounds"},
    {415, "UnsupportedMediaType", "unsupported_media_type",
     "The body is not application/json (optionally with charset=utf-8); for an upload, a file "
     "type that is not taken or bytes that are not what the name or claimed type says"},
    {416, "RangeNotSatisfiable", "range_not_satisfiable",
     "No byte of the file is in the Range asked for (Content-Range says the size)"},
    {422, "Unprocessable", "unprocessable",
     "This Idempotency-Key was used before with another request; for an upload, contents "
     "refused: malware, a polyglot, an archive over its limits or holding what is refused"},
    {423, "Locked", "locked",
     "The account is locked after too many failed attempts; the error has locked_until"},
    {429, "TooManyRequests", "rate_limited", "Too many requests from this address"},
    {503, "Unavailable", "unavailable",
     "The tenant database is unreachable or needs maintenance, or the server is busy: try "
     "again (Retry-After when known); for an upload, the virus scanner could not answer (it is "
     "never stored unscanned)"},
    {507, "InsufficientStorage", "insufficient_storage",
     "The storage limit of the plan leaves no room for this upload; the error has limit, used, "
     "reserved and plan"},
};

static json_t *
oa_header(const char *type, const char *desc)
{
	return json_pack("{s:s, s:{s:s}}", "description", desc, "schema", "type", type);
}

static void
oa_components(struct oa *o)
{
	json_t *c = json_object(), *resp = json_object(), *params, *headers, *sec;
	oa_set(o, o->doc, "components", c);
	oa_set(o, c, "schemas", o->schemas);
	json_incref(o->schemas);

	oa_set(o, o->schemas, "Error",
	       json_pack("{s:s, s:[s], s:{s:{s:s, s:[s, s, s], s:{s:{s:s, s:s}, s:{s:s}, "
			 "s:{s:s, s:s}, s:{s:s}, s:{s:s}, s:{s:s}, s:{s:s, s:s}}}}}",
			 "type", "object", "required", "error", "properties", "error", "type",
			 "object", "required", "code", "message", "request_id", "properties",
			 "code", "type", "string", "description",
			 "machine-readable: invalid, unauthorized, forbidden, not_found, ...",
			 "message", "type", "string", "request_id", "type", "string",
			 "description", "ties the reply to the server's log line",
			 "position", "type", "integer", "line", "type", "integer", "column",
			 "type", "integer", "locked_until", "type", "string", "format",
			 "date-time"));
	headers = json_object();
	oa_set(o, c, "headers", headers);
	oa_set(o, headers, "RateLimit-Limit", oa_header("integer", "requests allowed in a window"));
	oa_set(o, headers, "RateLimit-Remaining", oa_header("integer", "requests left in it"));
	oa_set(o, headers, "RateLimit-Reset", oa_header("integer", "seconds until it is full again"));
	oa_set(o, headers, "Retry-After", oa_header("integer", "seconds to wait"));
	oa_set(o, headers, "ETag",
	       oa_header("string", "the record's version as a strong entity tag: \"3\""));
	oa_set(o, headers, "Location", oa_header("string", "the path of the new resource"));
	oa_set(o, headers, "Link",
	       oa_header("string", "<...?limit=25&cursor=...>; rel=\"next\" when there is a next page"));
	oa_set(o, headers, "WWW-Authenticate",
	       oa_header("string", "Bearer realm=\"bulwark\" (with error=\"invalid_token\" when a "
				   "token was refused)"));
	oa_set(o, headers, "Idempotent-Replayed",
	       oa_header("string", "true: this is the stored reply of an earlier request with the "
				   "same Idempotency-Key"));
	oa_set(o, c, "responses", resp);
	for (size_t i = 0; i < BW_ARRAY_LEN(oa_errors); i++) {
		char desc[512];
		snprintf(desc, sizeof(desc), "%s (code %s)", oa_errors[i].text, oa_errors[i].code);
		json_t *r = json_pack("{s:s, s:{s:{s:o}}}", "description", desc, "content",
				      "application/json", "schema", oa_ref("schemas", "Error"));
		if (r != NULL && oa_errors[i].status == 401)
			oa_set(o, r, "headers",
			       json_pack("{s:o}", "WWW-Authenticate", oa_ref("headers", "WWW-Authenticate")));
		if (r != NULL && (oa_errors[i].status == 429 || oa_errors[i].status == 503))
			oa_set(o, r, "headers",
			       oa_errors[i].status == 429
				   ? json_pack("{s:o, s:o, s:o, s:o}", "Retry-After",
					       oa_ref("headers", "Retry-After"), "RateLimit-Limit",
					       oa_ref("headers", "RateLimit-Limit"), "RateLimit-Remaining",
					       oa_ref("headers", "RateLimit-Remaining"), "RateLimit-Reset",
					       oa_ref("headers", "RateLimit-Reset"))
				   : json_pack("{s:o}", "Retry-After", oa_ref("headers", "Retry-After")));
		oa_set(o, resp, oa_errors[i].name, r);
	}

	params = json_object();
	oa_set(o, c, "parameters", params);
	oa_set(o, params, "IfMatch",
	       json_pack("{s:s, s:s, s:b, s:s, s:{s:s, s:i}}", "name", "If-Match", "in", "header",
			 "required", 0, "description",
			 "Entity tags (\"3\", \"3\", \"4\") or *: the change goes ahead only if the "
			 "record is still at one of them, else 412 and nothing changes. Weak tags "
			 "(W/) never match; malformed: 400. Without it the change goes ahead.",
			 "schema", "type", "string", "maxLength", 1024));
	oa_set(o, params, "IdempotencyKey",
	       json_pack("{s:s, s:s, s:b, s:s, s:{s:s, s:i, s:i, s:s}}", "name", "Idempotency-Key",
			 "in", "header", "required", 0, "description",
			 "1 to 255 visible ASCII characters. The same caller, key and request "
			 "within 24 h gets the first reply again (Idempotent-Replayed: true) and "
			 "nothing is written; the same key with another request: 422; while the "
			 "first still runs: 409.",
			 "schema", "type", "string", "minLength", 1, "maxLength", 255, "pattern",
			 "^[!-~]{1,255}$"));
	oa_set(o, params, "Limit",
	       json_pack("{s:s, s:s, s:s, s:{s:s, s:i, s:i, s:i}}", "name", "limit", "in", "query",
			 "description", "rows in a page", "schema", "type", "integer", "minimum", 1,
			 "maximum", OA_LIST_MAX, "default", OA_LIST_DEFAULT));
	oa_set(o, params, "Cursor",
	       json_pack("{s:s, s:s, s:s, s:{s:s, s:i}}", "name", "cursor", "in", "query",
			 "description",
			 "opaque: the next_cursor of the page before (keyset pagination: stays "
			 "right while rows are added)",
			 "schema", "type", "string", "maxLength", 1024));

	sec = json_object();
	oa_set(o, c, "securitySchemes", sec);
	oa_set(o, sec, "session",
	       json_pack("{s:s, s:s, s:s, s:s}", "type", "apiKey", "in", "cookie", "name",
			 "__Host-bulwark_session", "description",
			 "The session cookie set by POST /api/v1/auth/login. A change (POST, PUT, "
			 "PATCH, DELETE) sent with it must come from the tenant's own origin: Origin "
			 "(or Referer) https://<tenant host>, else 403. That is the CSRF control; "
			 "there is no token to send."));
	oa_set(o, sec, "bearer",
	       json_pack("{s:s, s:s, s:s}", "type", "http", "scheme", "bearer", "description",
			 "An API token from POST /api/v1/auth/tokens, holding only its scopes "
			 "(permissions). No Origin check: not a browser credential."));
}

/* --- operations ------------------------------------------------------------------------- */

/* "/api/v1/users/:id" -> "/api/v1/users/{id}" (malloc'd). */
static char *
oa_path(const char *pattern)
{
	size_t n = strlen(pattern);
	char *s = malloc(2 * n + 1), *w = s;
	if (s == NULL)
		return NULL;
	for (const char *p = pattern; *p;) {
		if (*p == ':') {
			*w++ = '{';
			p++;
			while (*p && *p != '/')
				*w++ = *p++;
			*w++ = '}';
		} else {
			*w++ = *p++;
		}
	}
	*w = '\0';
	return s;
}

/* "post" + "/api/v1/users/:id/unlock" -> "post_users_by_id_unlock". */
static char *
oa_operation_id(const char *method, const char *pattern)
{
	size_t n = strlen(pattern) + strlen(method) + 64;
	char *s = malloc(n + 16), *w = s;
	if (s == NULL)
		return NULL;
	for (const char *m = method; *m; m++)
		*w++ = (char)(*m >= 'A' && *m <= 'Z' ? *m - 'A' + 'a' : *m);
	const char *p = strncmp(pattern, "/api/v1", 7) == 0 ? pattern + 7 : pattern;
	while (*p) {
		if (*p == '/') {
			*w++ = '_';
			p++;
			if (*p == ':') {
				memcpy(w, "by_", 3);
				w += 3;
				p++;
			}
			continue;
		}
		*w++ = (*p == '-' || *p == '.') ? '_' : *p;
		p++;
	}
	*w = '\0';
	return s;
}

static json_t *
oa_error_ref(int status)
{
	for (size_t i = 0; i < BW_ARRAY_LEN(oa_errors); i++)
		if (oa_errors[i].status == status)
			return oa_ref("responses", oa_errors[i].name);
	return NULL;
}

/* What a route is, for its operation. */
struct oa_op {
	const struct route *r;
	const char *method;  /* "GET" */
	const char *tag;
	const char *summary;
	const char *description; /* or NULL */
	json_t *request;         /* schema, stolen; NULL: no body */
	int body_optional;
	json_t *response;        /* schema of the success body, stolen */
	int status;
	int list;                /* response is one item of the list envelope */
	int etag;                /* the reply carries the row's ETag */
	int if_match;            /* takes If-Match */
	int csv;                 /* may answer text/csv (format=csv) */
	int password;            /* 423 possible */
	int login_rate;
	int upload;              /* the body is a file (multipart or raw): docs/files.md */
	int binary;              /* the reply is a file's bytes, ranges allowed */
	int form;                /* the body is a form, not JSON */
	int redirect;            /* the success is a redirect with Location and no body */
	int saml_xml;            /* the success body is SAML metadata */
	json_t *query;           /* array of parameter objects, stolen; or NULL */
};

static int
oa_has(const int *list, size_t n, int v)
{
	for (size_t i = 0; i < n; i++)
		if (list[i] == v)
			return 1;
	return 0;
}

static void
oa_tag(struct oa *o, const char *tag, const char *desc)
{
	size_t i;
	json_t *t;
	json_array_foreach(o->tags, i, t) if (strcmp(json_string_value(json_object_get(t, "name")),
						     tag) == 0) return;
	oa_push(o, o->tags, json_pack("{s:s, s:s}", "name", tag, "description", desc ? desc : tag));
}

static void
oa_operation(struct oa *o, struct oa_op *p)
{
	const struct route *r = p->r;
	json_t *op = json_object(), *params = json_array(), *responses = json_object();
	char *path = oa_path(r->pattern), *opid = oa_operation_id(p->method, r->pattern);
	int public = (r->flags & ROUTE_PUBLIC) != 0, no_tenant = (r->flags & ROUTE_NO_TENANT) != 0;
	int writes = (r->method & (HTTP_POST | HTTP_PUT | HTTP_PATCH | HTTP_DELETE)) != 0;
	const char *guard = router_guard_name(router_guard(r));
	if (op == NULL || params == NULL || responses == NULL || path == NULL || opid == NULL) {
		oa_fail(o, BW_ERR_NOMEM, "out of memory");
		goto out;
	}
	oa_tag(o, p->tag, NULL);
	oa_set(o, op, "operationId", json_string(opid));
	oa_set(o, op, "summary", json_string(p->summary));
	oa_set(o, op, "tags", json_pack("[s]", p->tag));

	/* The description: what the pipeline decides about this route, then the entry's own. */
	struct buf b;
	int bad = 0;
	buf_init(&b, 1 << 16);
#define OA_PUT(...) (bad |= buf_printf(&b, __VA_ARGS__) != BW_OK)
	if (p->description != NULL)
		OA_PUT("%s\n\n", p->description);
	if (public)
		OA_PUT("Public: no sign-in, no permission.");
	else
		OA_PUT("Permission: `%s`.", r->permission);
	if (!no_tenant)
		OA_PUT(" Admin IP allowlist: %s.",
				 strcmp(guard, "always") == 0    ? "always applies"
				 : strcmp(guard, "changes") == 0 ? "applies when the tenant guards "
								   "every change"
								 : "does not apply");
	else
		OA_PUT(" Answers on any host, with or without a tenant.");
	if (r->flags & ROUTE_MFA_PENDING)
		OA_PUT(" Reachable before the MFA code is given.");
	if (r->flags & ROUTE_MFA_ENROL)
		OA_PUT(" Reachable by a user who must still enrol in MFA.");
	if (r->flags & ROUTE_PW_CHANGE)
		OA_PUT(" Reachable with a one-time password not yet changed.");
	char *text = NULL;
	size_t tlen;
#undef OA_PUT
	if (bad || buf_take(&b, &text, &tlen) != BW_OK) {
		buf_free(&b);
		oa_fail(o, BW_ERR_NOMEM, "out of memory");
		goto out;
	}
	oa_set(o, op, "description", json_string(text));
	free(text);
	if (!public)
		oa_set(o, op, "x-permission", json_string(r->permission));
	oa_set(o, op, "x-allowlist", json_string(guard));
	oa_set(o, op, "security",
	       public ? json_array() : json_pack("[{s:[]}, {s:[]}]", "session", "bearer"));

	/* Parameters: the path's, then headers, then the query. */
	for (const char *s = strchr(r->pattern, ':'); s != NULL; s = strchr(s + 1, ':')) {
		const char *e = strchr(s, '/');
		size_t n = e ? (size_t)(e - s - 1) : strlen(s + 1);
		char name[64];
		snprintf(name, sizeof(name), "%.*s", (int)n, s + 1);
		oa_push(o, params,
			json_pack("{s:s, s:s, s:b, s:s, s:{s:s, s:i, s:I}}", "name", name, "in",
				  "path", "required", 1, "description",
				  "a positive integer id; anything else is not found (404)", "schema",
				  "type", "integer", "minimum", 1, "maximum", (json_int_t)ROUTE_ID_MAX));
	}
	if (p->if_match)
		oa_push(o, params, oa_ref("parameters", "IfMatch"));
	if (r->method == HTTP_POST && !p->upload)
		oa_push(o, params, oa_ref("parameters", "IdempotencyKey"));
	if (p->upload)
		oa_push(o, params,
			json_pack("{s:s, s:s, s:s, s:{s:s, s:i}}", "name", "X-Filename", "in", "header",
				  "description",
				  "the file name, percent-encoded UTF-8: only with a raw body", "schema",
				  "type", "string", "maxLength", 1024));
	if (p->binary)
		oa_push(o, params,
			json_pack("{s:s, s:s, s:s, s:{s:s}}", "name", "Range", "in", "header",
				  "description", "one range of bytes (bytes=a-b, a- or -n): 206",
				  "schema", "type", "string"));
	if (p->list) {
		oa_push(o, params, oa_ref("parameters", "Limit"));
		oa_push(o, params, oa_ref("parameters", "Cursor"));
	}
	size_t qi;
	json_t *q;
	json_array_foreach(p->query, qi, q) oa_push(o, params, json_incref(q));
	if (json_array_size(params) > 0)
		oa_set(o, op, "parameters", json_incref(params));

	if (p->request != NULL) {
		oa_set(o, op, "requestBody",
		       json_pack("{s:b, s:{s:{s:O}}}", "required", !p->body_optional, "content",
				 p->form ? "application/x-www-form-urlencoded" : "application/json",
				 "schema", p->request));
	} else if (p->upload) {
		oa_set(o, op, "requestBody",
		       json_pack("{s:b, s:{s:{s:{s:s, s:[s], s:{s:{s:s, s:s}}}}, s:{s:{s:s, s:s}}}}",
				 "required", 1, "content", "multipart/form-data", "schema", "type",
				 "object", "required", "file", "properties", "file", "type", "string",
				 "format", "binary", "application/octet-stream", "schema", "type",
				 "string", "format", "binary"));
	}

	/* The success reply. */
	json_t *schema = p->response, *hdrs = json_object();
	if (p->list) {
		schema = json_pack(
		    "{s:s, s:[s, s, s, s, s], s:{s:{s:s, s:O}, s:{s:s, s:i}, s:{s:s, s:i, s:i}, "
		    "s:{s:s}, s:{s:[s, s]}}}",
		    "type", "object", "required", "data", "total", "limit", "has_more",
		    "next_cursor", "properties", "data", "type", "array", "items", p->response,
		    "total", "type", "integer", "minimum", 0, "limit", "type", "integer", "minimum",
		    1, "maximum", OA_LIST_MAX, "has_more", "type", "boolean", "next_cursor", "type",
		    "string", "null");
		oa_set(o, hdrs, "Link", oa_ref("headers", "Link"));
	} else {
		json_incref(schema);
	}
	if (p->etag)
		oa_set(o, hdrs, "ETag", oa_ref("headers", "ETag"));
	if (p->status == 201)
		oa_set(o, hdrs, "Location", oa_ref("headers", "Location"));
	if (r->method == HTTP_POST)
		oa_set(o, hdrs, "Idempotent-Replayed", oa_ref("headers", "Idempotent-Replayed"));
	if (p->login_rate) {
		oa_set(o, hdrs, "RateLimit-Limit", oa_ref("headers", "RateLimit-Limit"));
		oa_set(o, hdrs, "RateLimit-Remaining", oa_ref("headers", "RateLimit-Remaining"));
		oa_set(o, hdrs, "RateLimit-Reset", oa_ref("headers", "RateLimit-Reset"));
	}
	json_t *content = p->binary
			      ? json_pack("{s:{s:{s:s, s:s}}}", "application/octet-stream", "schema",
					  "type", "string", "format", "binary")
			  : p->saml_xml
			      ? json_pack("{s:{s:{s:s}}}", "application/samlmetadata+xml", "schema",
					  "type", "string")
			      : json_pack("{s:{s:o}}", "application/json", "schema", schema);
	if (p->saml_xml)
		json_decref(schema);
	if (p->redirect)
		oa_set(o, hdrs, "Location",
		       json_pack("{s:s, s:{s:s}}", "description", "where the browser goes next",
				 "schema", "type", "string"));
	if (p->binary) {
		json_decref(schema);
		oa_set(o, hdrs, "ETag", oa_ref("headers", "ETag"));
		oa_set(o, hdrs, "Content-Disposition",
		       json_pack("{s:s, s:{s:s}}", "description",
				 "attachment, with the name (filename and filename*)", "schema", "type",
				 "string"));
	}
	if (p->csv && content != NULL)
		oa_set(o, content, "text/csv", json_pack("{s:{s:s}}", "schema", "type", "string"));
	char okdesc[64];
	snprintf(okdesc, sizeof(okdesc), "%s",
		 p->status == 201   ? "Created"
		 : p->status == 204 ? "No Content"
		 : p->status == 302 ? "Found"
		 : p->status == 303 ? "See Other"
				    : "OK");
	json_t *ok;
	if (p->status == 204 || p->redirect) {
		json_decref(content);
		ok = json_pack("{s:s}", "description", okdesc);
	} else {
		ok = json_pack("{s:s, s:o}", "description", okdesc, "content", content);
	}
	if (ok != NULL && json_object_size(hdrs) > 0)
		oa_set(o, ok, "headers", json_incref(hdrs));
	json_decref(hdrs);
	char st[8];
	snprintf(st, sizeof(st), "%d", p->status);
	oa_set(o, responses, st, ok);

	/* Every refusal the pipeline and the handler can give this route. */
	int codes[16];
	size_t nc = 0;
	codes[nc++] = 400;
	if (!public || p->password)
		codes[nc++] = 401;
	if (!no_tenant)
		codes[nc++] = 403;
	if (!no_tenant || strchr(r->pattern, ':'))
		codes[nc++] = 404;
	if (writes && !public)
		codes[nc++] = 409;
	if (p->if_match)
		codes[nc++] = 412;
	if (p->request != NULL || p->csv || p->upload)
		codes[nc++] = 413;
	if (p->request != NULL || p->upload)
		codes[nc++] = 415;
	if (p->binary)
		codes[nc++] = 416;
	if (r->method == HTTP_POST)
		codes[nc++] = 422;
	if (p->password)
		codes[nc++] = 423;
	codes[nc++] = 429;
	codes[nc++] = 503;
	if (p->upload)
		codes[nc++] = 507;
	for (size_t i = 0; i < nc; i++) {
		if (oa_has(codes, i, codes[i]))
			continue;
		snprintf(st, sizeof(st), "%d", codes[i]);
		oa_set(o, responses, st, oa_error_ref(codes[i]));
	}
	oa_set(o, op, "responses", json_incref(responses));

	json_t *item = json_object_get(o->paths, path);
	if (item == NULL) {
		item = json_object();
		oa_set(o, o->paths, path, item);
	}
	char lower[16];
	size_t k = 0;
	for (; p->method[k] && k < sizeof(lower) - 1; k++)
		lower[k] = (char)(p->method[k] - 'A' + 'a');
	lower[k] = '\0';
	if (item != NULL) {
		oa_set(o, item, lower, op);
		op = NULL;
	}
out:
	json_decref(op);
	json_decref(params);
	json_decref(responses);
	json_decref(p->request);
	json_decref(p->response);
	json_decref(p->query);
	free(path);
	free(opid);
}

/* --- module routes ------------------------------------------------------------------------ */

static const struct module_desc *
oa_module_of(const struct route *r)
{
	for (size_t i = 0; i < module_catalog_count; i++)
		if (r->data == module_catalog[i])
			return module_catalog[i];
	return NULL;
}

/* The query parameter of filter f (equality), or of a range bound (op: "gte", ...). */
static json_t *
oa_filter_param(const struct field_desc *f, const char *op)
{
	char name[96];
	json_t *s = oa_field(f, 0);
	if (s == NULL)
		return NULL;
	json_object_del(s, "readOnly");
	json_object_del(s, "writeOnly");
	json_object_del(s, "description");
	json_object_del(s, "minLength");
	/* a query value is never null */
	json_t *t = json_object_get(s, "type");
	if (json_is_array(t))
		json_object_set(s, "type", json_array_get(t, 0));
	json_t *en = json_object_get(s, "enum");
	if (json_is_array(en) && json_is_null(json_array_get(en, json_array_size(en) - 1)))
		json_array_remove(en, json_array_size(en) - 1);
	if (op != NULL)
		snprintf(name, sizeof(name), "%s.%s", f->name, op);
	else
		snprintf(name, sizeof(name), "%s", f->name);
	char desc[160];
	if (op != NULL)
		snprintf(desc, sizeof(desc), "rows whose %s is %s this", f->name,
			 strcmp(op, "gte") == 0  ? "at least"
			 : strcmp(op, "gt") == 0 ? "greater than"
			 : strcmp(op, "lte") == 0
			     ? "at most"
			     : "less than");
	else
		snprintf(desc, sizeof(desc), "rows whose %s is this", f->name);
	return json_pack("{s:s, s:s, s:s, s:o}", "name", name, "in", "query", "description", desc,
			 "schema", s);
}

static const char *const oa_range_ops[] = {"gte", "gt", "lte", "lt"};

/* sort, updated_since and the filters of a module list (export: no updated_since range). */
static json_t *
oa_list_query(struct oa *o, const struct module_desc *m, int export)
{
	json_t *q = json_array(), *sorts = json_array();
	static const char *const frame[] = {"id", "created_at", "updated_at"};
	for (size_t i = 0; i < BW_ARRAY_LEN(frame); i++) {
		oa_push(o, sorts, json_string(frame[i]));
		oa_push(o, sorts, json_sprintf("-%s", frame[i]));
	}
	for (size_t k = 0; k < m->nfields; k++)
		if (m->fields[k].flags & FF_SORT) {
			oa_push(o, sorts, json_string(m->fields[k].name));
			oa_push(o, sorts, json_sprintf("-%s", m->fields[k].name));
		}
	oa_push(o, q,
		json_pack("{s:s, s:s, s:s, s:{s:o, s:s}}", "name", "sort", "in", "query",
			  "description", "field: ascending; -field: descending (ties by id)", "schema",
			  "enum", sorts, "default", "id"));
	oa_push(o, q,
		json_pack("{s:s, s:s, s:s, s:{s:s, s:s}}", "name", "updated_since", "in", "query",
			  "description", "rows changed at or after this time (RFC 3339)", "schema",
			  "type", "string", "format", "date-time"));
	static const char *const stamps[] = {"created_at", "updated_at"};
	for (size_t i = 0; i < BW_ARRAY_LEN(stamps); i++)
		for (size_t r = 0; r < BW_ARRAY_LEN(oa_range_ops); r++)
			oa_push(o, q,
				json_pack("{s:s++, s:s, s:{s:s, s:s}}", "name", stamps[i], ".",
					  oa_range_ops[r], "in", "query", "schema", "type", "string",
					  "format", "date-time"));
	for (size_t k = 0; k < m->nfields; k++) {
		const struct field_desc *f = &m->fields[k];
		if (f->flags & FF_FILTER)
			oa_push(o, q, oa_filter_param(f, NULL));
		if ((f->flags & (FF_FILTER | FF_SORT)) &&
		    (f->type == FT_DATE || f->type == FT_MONEY || f->type == FT_INT))
			for (size_t r = 0; r < BW_ARRAY_LEN(oa_range_ops); r++)
				oa_push(o, q, oa_filter_param(f, oa_range_ops[r]));
	}
	if (export)
		oa_push(o, q,
			json_pack("{s:s, s:s, s:s, s:{s:[s, s], s:s}}", "name", "format", "in", "query",
				  "description", "json (default) or csv", "schema", "enum", "json",
				  "csv", "default", "json"));
	return q;
}

static const struct openapi_action_doc *
oa_action_doc(const char *module, const char *action)
{
	for (size_t i = 0; i < openapi_action_docs_count; i++)
		if (strcmp(openapi_action_docs[i].module, module) == 0 &&
		    strcmp(openapi_action_docs[i].action, action) == 0)
			return &openapi_action_docs[i];
	return NULL;
}

static void
oa_module_route(struct oa *o, const struct route *r, const struct module_desc *m,
		const char *method)
{
	char base[96], summary[256];
	snprintf(base, sizeof(base), "/api/v1/%s", m->name);
	size_t bl = strlen(base);
	const char *suffix = strncmp(r->pattern, base, bl) == 0 ? r->pattern + bl : NULL;
	struct oa_op p = {.r = r, .method = method, .tag = m->name, .summary = summary,
			  .status = 200};
	if (suffix == NULL) {
		oa_fail(o, BW_ERR_NOTFOUND, "route %s %s: a module route outside %s", method,
			r->pattern, base);
		return;
	}
	oa_tag(o, m->name, m->label);
	if (strcmp(method, "GET") == 0 && strcmp(suffix, "") == 0) {
		snprintf(summary, sizeof(summary), "List %s", m->label);
		p.response = oa_ref("schemas", m->name);
		p.list = 1;
		p.query = oa_list_query(o, m, 0);
	} else if (strcmp(method, "POST") == 0 && strcmp(suffix, "") == 0) {
		snprintf(summary, sizeof(summary), "Create a record of %s", m->label);
		p.request = oa_ref("schemas", m->name);
		json_object_set_new(p.request, "$ref",
				    json_sprintf("#/components/schemas/%s_create", m->name));
		p.response = oa_ref("schemas", m->name);
		p.status = 201;
		p.etag = 1;
	} else if (strcmp(method, "GET") == 0 && strcmp(suffix, "/export") == 0) {
		snprintf(summary, sizeof(summary), "Export %s (JSON or CSV)", m->label);
		p.description = "Every row the filters select, at most 100000 rows and 64 MiB (else "
				"413: narrow it). The export is itself an audited event.";
		p.response = json_pack("{s:s, s:[s, s], s:{s:{s:s, s:o}, s:{s:s}}}", "type", "object",
				       "required", "data", "count", "properties", "data", "type",
				       "array", "items", oa_ref("schemas", m->name), "count", "type",
				       "integer");
		p.csv = 1;
		p.query = oa_list_query(o, m, 1);
	} else if (strcmp(method, "GET") == 0 && strcmp(suffix, "/deleted") == 0) {
		snprintf(summary, sizeof(summary), "Deleted records of %s (tombstones)", m->label);
		p.description = "The ids deleted since a time, read from the audit log: for clients "
				"that keep a copy in step.";
		p.response = json_pack("{s:s, s:[s, s], s:{s:{s:s}, s:{s:s, s:s}}}", "type", "object",
				       "required", "id", "deleted_at", "properties", "id", "type",
				       "integer", "deleted_at", "type", "string", "format",
				       "date-time");
		p.list = 1;
		p.query = json_pack("[{s:s, s:s, s:s, s:{s:s, s:s}}]", "name", "since", "in", "query",
				    "description", "deletions at or after this time (RFC 3339)",
				    "schema", "type", "string", "format", "date-time");
	} else if (strcmp(method, "GET") == 0 && strcmp(suffix, "/:id") == 0) {
		snprintf(summary, sizeof(summary), "One record of %s", m->label);
		p.response = oa_ref("schemas", m->name);
		p.etag = 1;
	} else if (strcmp(method, "PATCH") == 0 && strcmp(suffix, "/:id") == 0) {
		snprintf(summary, sizeof(summary), "Change a record of %s", m->label);
		p.description = "Only the fields given change.";
		p.request = json_sprintf("#/components/schemas/%s_update", m->name);
		p.request = json_pack("{s:o}", "$ref", p.request);
		p.response = oa_ref("schemas", m->name);
		p.etag = 1;
		p.if_match = 1;
	} else if (strcmp(method, "DELETE") == 0 && strcmp(suffix, "/:id") == 0) {
		snprintf(summary, sizeof(summary), "Delete a record of %s", m->label);
		p.description = "Refused (409) while other records still refer to it.";
		p.response = oa_ref("schemas", "Deleted");
		p.if_match = 1;
	} else if (strcmp(method, "GET") == 0 && strcmp(suffix, "/:id/audit") == 0) {
		snprintf(summary, sizeof(summary), "The audit trail of a record of %s", m->label);
		p.tag = "audit";
		oa_tag(o, "audit", "the tamper-evident audit log");
		p.response = oa_ref("schemas", "AuditEntry");
		p.list = 1;
		p.csv = 1;
		p.query = json_pack("[{s:s, s:s, s:{s:[s, s]}}]", "name", "format", "in", "query",
				    "schema", "enum", "json", "csv");
	} else if (strncmp(suffix, "/:id/files", 10) == 0 && m->attachments) {
		/* Attachments (src/files/files_api.c, docs/files.md). */
		const char *fs = suffix + 10;
		p.tag = "files";
		oa_tag(o, "files", "attachments of records: scanned, checked and sealed at rest");
		if (strcmp(method, "POST") == 0 && strcmp(fs, "") == 0) {
			snprintf(summary, sizeof(summary), "Attach a file to a record of %s", m->label);
			p.description =
			    "A multipart/form-data body with one part named file, or the file as the "
			    "body with X-Filename. Checked in order, each failing closed: the name, the "
			    "type (extension allow- and blocklists), the magic bytes, what an archive "
			    "holds, ClamAV. The error names the step in check. 507 when the plan's "
			    "storage is full; 503 when the virus scanner cannot answer.";
			p.upload = 1;
			p.response = oa_ref("schemas", "File");
			p.status = 201;
		} else if (strcmp(method, "GET") == 0 && strcmp(fs, "") == 0) {
			snprintf(summary, sizeof(summary), "The files of a record of %s", m->label);
			p.response = oa_ref("schemas", "File");
			p.list = 1;
		} else if (strcmp(method, "GET") == 0 && strcmp(fs, "/:fid") == 0) {
			snprintf(summary, sizeof(summary), "One file of a record of %s", m->label);
			p.response = oa_ref("schemas", "File");
		} else if (strcmp(method, "GET") == 0 && strcmp(fs, "/:fid/content") == 0) {
			snprintf(summary, sizeof(summary), "Download a file of a record of %s",
				 m->label);
			p.description = "As an attachment, with the type detected at upload (never the "
					"one claimed), nosniff and a sandboxing CSP. One Range: 206.";
			p.binary = 1;
			p.response = json_object();
		} else if (strcmp(method, "DELETE") == 0 && strcmp(fs, "/:fid") == 0) {
			snprintf(summary, sizeof(summary), "Delete a file of a record of %s", m->label);
			p.response = json_object();
			p.status = 204;
		} else {
			oa_fail(o, BW_ERR_NOTFOUND, "route %s %s: no documentation for this file route",
				method, r->pattern);
			return;
		}
	} else if (strcmp(method, "POST") == 0 && strncmp(suffix, "/:id/", 5) == 0 &&
		   strchr(suffix + 5, '/') == NULL) {
		const struct openapi_action_doc *a = oa_action_doc(m->name, suffix + 5);
		if (a == NULL) {
			oa_fail(o, BW_ERR_NOTFOUND,
				"route %s %s: action %s.%s has no entry in openapi_action_docs "
				"(src/openapi/docs.c)",
				method, r->pattern, m->name, suffix + 5);
			return;
		}
		snprintf(summary, sizeof(summary), "%s", a->summary);
		p.description = "An action: it runs with the record locked, in one transaction with "
				"its audit row. The body is optional ({} when none is sent).";
		char what[160];
		snprintf(what, sizeof(what), "action %s.%s request", m->name, a->action);
		if ((p.request = oa_text(o, a->request, what)) == NULL)
			return;
		p.body_optional = 1;
		if (a->response != NULL) {
			snprintf(what, sizeof(what), "action %s.%s response", m->name, a->action);
			if ((p.response = oa_text(o, a->response, what)) == NULL) {
				json_decref(p.request);
				return;
			}
		} else {
			p.response = oa_ref("schemas", m->name);
			p.etag = 1;
		}
		p.if_match = 1;
	} else {
		oa_fail(o, BW_ERR_NOTFOUND,
			"route %s %s has no OpenAPI documentation: the generator knows no module "
			"route of this shape (src/openapi/openapi.c)",
			method, r->pattern);
		return;
	}
	oa_operation(o, &p);
}

/* --- built-in routes ------------------------------------------------------------------------- */

static const struct openapi_doc *
oa_doc(const char *method, const char *pattern)
{
	for (size_t i = 0; i < openapi_docs_count; i++)
		if (strcmp(openapi_docs[i].method, method) == 0 &&
		    strcmp(openapi_docs[i].pattern, pattern) == 0)
			return &openapi_docs[i];
	return NULL;
}

static void
oa_builtin_route(struct oa *o, const struct route *r, const char *method)
{
	const struct openapi_doc *d = oa_doc(method, r->pattern);
	char what[256];
	if (d == NULL) {
		oa_fail(o, BW_ERR_NOTFOUND,
			"route %s %s has no OpenAPI documentation: add an entry to openapi_docs "
			"(src/openapi/docs.c)",
			method, r->pattern);
		return;
	}
	struct oa_op p = {.r = r,
			  .method = method,
			  .tag = d->tag,
			  .summary = d->summary,
			  .description = d->description,
			  .status = d->status,
			  .body_optional = (d->flags & OAD_BODY_OPTIONAL) != 0,
			  .list = (d->flags & OAD_LIST) != 0,
			  .password = (d->flags & OAD_PASSWORD) != 0,
			  .login_rate = (d->flags & OAD_LOGIN_RATE) != 0,
			  .form = (d->flags & OAD_FORM) != 0,
			  .redirect = (d->flags & OAD_REDIRECT) != 0,
			  .saml_xml = (d->flags & OAD_SAML_XML) != 0};
	snprintf(what, sizeof(what), "%s %s response", method, r->pattern);
	if ((p.response = oa_text(o, d->response, what)) == NULL)
		return;
	if (d->request != NULL) {
		snprintf(what, sizeof(what), "%s %s request", method, r->pattern);
		if ((p.request = oa_text(o, d->request, what)) == NULL) {
			json_decref(p.response);
			return;
		}
	}
	if (d->query != NULL) {
		snprintf(what, sizeof(what), "%s %s query", method, r->pattern);
		if ((p.query = oa_text(o, d->query, what)) == NULL || !json_is_array(p.query)) {
			oa_fail(o, BW_ERR_INVALID, "%s: not an array", what);
			json_decref(p.request);
			json_decref(p.response);
			json_decref(p.query);
			return;
		}
	}
	/* users and roles carry a version: ETag on their reads and writes, If-Match on changes */
	int versioned = strncmp(r->pattern, "/api/v1/users", 13) == 0 ||
			strncmp(r->pattern, "/api/v1/roles", 13) == 0;
	int one = versioned && (strcmp(r->pattern, "/api/v1/users/:id") == 0 ||
				strcmp(r->pattern, "/api/v1/roles/:id") == 0 ||
				strcmp(r->pattern, "/api/v1/users") == 0 ||
				strcmp(r->pattern, "/api/v1/roles") == 0);
	if (one && !p.list && r->method != HTTP_DELETE)
		p.etag = 1;
	if (one && (r->method == HTTP_PATCH || r->method == HTTP_DELETE))
		p.if_match = 1;
	if (d->query != NULL && strstr(d->query, "'csv'") != NULL)
		p.csv = 1;
	oa_operation(o, &p);
}

/* The module whose path "/api/v1/<name>/..." names, or NULL. */
static const struct module_desc *
oa_module_by_path(const char *pattern)
{
	char name[64];
	if (strncmp(pattern, "/api/v1/", 8) != 0)
		return NULL;
	const char *s = pattern + 8, *e = strchr(s, '/');
	size_t n = e ? (size_t)(e - s) : strlen(s);
	if (n == 0 || n >= sizeof(name))
		return NULL;
	memcpy(name, s, n);
	name[n] = '\0';
	return module_find(name);
}

/* --- the document ----------------------------------------------------------------------------- */

static int
oa_route_cmp(const void *a, const void *b)
{
	const struct route *x = *(const struct route *const *)a, *y = *(const struct route *const *)b;
	int c = strcmp(x->pattern, y->pattern);
	return c != 0 ? c : (int)x->method - (int)y->method;
}

bw_err
openapi_build(const struct router *r, json_t **out, char *err, size_t errlen)
{
	struct oa o = {.msg = err, .msglen = errlen};
	size_t n = router_count(r);
	const struct route **v = calloc(n ? n : 1, sizeof(*v));
	*out = NULL;
	if (errlen > 0)
		err[0] = '\0';
	if (v == NULL) {
		snprintf(err, errlen, "out of memory");
		return BW_ERR_NOMEM;
	}
	for (size_t i = 0; i < n; i++)
		v[i] = router_route(r, i);
	qsort(v, n, sizeof(*v), oa_route_cmp);

	o.doc = json_pack(
	    "{s:s, s:{s:s, s:s, s:s}, s:[{s:s, s:s, s:{s:{s:s, s:s}, s:{s:s, s:s}}}]}",
	    "openapi", "3.1.0", "info", "title", "Bulwark API", "version", "1",
	    "description",
	    "The API of one Bulwark tenant: a multi-tenant PSA. Each tenant has its own host; "
	    "bodies are JSON (application/json), errors are {\"error\": {\"code\", \"message\", "
	    "\"request_id\"}}, lists are {\"data\", \"total\", \"limit\", \"has_more\", "
	    "\"next_cursor\"}, timestamps are RFC 3339 UTC. Generated from the route table and "
	    "the module descriptors (docs/api.md).",
	    "servers", "url", "https://{tenant}.{base_domain}", "description",
	    "a tenant's own host", "variables", "tenant", "default", "acme", "description",
	    "the tenant slug", "base_domain", "default", "localhost", "description",
	    "[server] base_domain");
	o.paths = json_object();
	o.schemas = json_object();
	o.tags = json_array();
	if (o.doc == NULL || o.paths == NULL || o.schemas == NULL || o.tags == NULL) {
		oa_fail(&o, BW_ERR_NOMEM, "out of memory");
		goto out;
	}
	oa_set(&o, o.doc, "tags", json_incref(o.tags));
	oa_set(&o, o.doc, "paths", json_incref(o.paths));
	oa_components(&o);
	for (size_t i = 0; i < openapi_schemas_count && o.err == BW_OK; i++) {
		char what[96];
		snprintf(what, sizeof(what), "schema %s", openapi_schemas[i].name);
		json_t *s = oa_text(&o, openapi_schemas[i].schema, what);
		if (s != NULL)
			oa_set(&o, o.schemas, openapi_schemas[i].name, s);
	}
	for (size_t i = 0; i < module_catalog_count && o.err == BW_OK; i++)
		oa_module_schemas(&o, module_catalog[i]);
	for (size_t i = 0; i < n && o.err == BW_OK; i++) {
		char method[16];
		router_allow_string(v[i]->method, method, sizeof(method));
		const struct module_desc *m = oa_module_of(v[i]);
		/*
		 * A route under a module's path that the table does not describe,
		 * registered without the descriptor (a tombstone list added by
		 * hand): documented as that module's route of its shape.
		 */
		if (m == NULL && oa_doc(method, v[i]->pattern) == NULL)
			m = oa_module_by_path(v[i]->pattern);
		if (m != NULL)
			oa_module_route(&o, v[i], m, method);
		else
			oa_builtin_route(&o, v[i], method);
	}
out:
	free(v);
	json_decref(o.paths);
	json_decref(o.schemas);
	json_decref(o.tags);
	if (o.err != BW_OK) {
		json_decref(o.doc);
		return o.err;
	}
	*out = o.doc;
	return BW_OK;
}

/* --- the cached text ----------------------------------------------------------------------- */

static pthread_mutex_t oa_lock = PTHREAD_MUTEX_INITIALIZER;
static char *oa_cached;
static size_t oa_cached_len;
static bw_err oa_cached_err = BW_OK;
static int oa_built;

bw_err
openapi_text(const struct router *r, const char **text, size_t *len)
{
	pthread_mutex_lock(&oa_lock);
	if (!oa_built) {
		json_t *doc;
		char err[512];
		oa_built = 1;
		oa_cached_err = openapi_build(r, &doc, err, sizeof(err));
		if (oa_cached_err == BW_OK) {
			oa_cached = json_dumps(doc, JSON_COMPACT);
			json_decref(doc);
			if (oa_cached == NULL)
				oa_cached_err = BW_ERR_NOMEM;
			else
				oa_cached_len = strlen(oa_cached);
		} else {
			log_error("the OpenAPI document cannot be made: %s", err);
		}
	}
	bw_err e = oa_cached_err;
	*text = oa_cached;
	*len = oa_cached_len;
	pthread_mutex_unlock(&oa_lock);
	return e;
}
