/*
 * openapi: the OpenAPI 3.1 document of the API, made from what the server
 * really serves: the compiled route table (methods, patterns, permissions,
 * flags, body limits) and the module descriptors (fields, types, limits,
 * enum values, filters, sorts, actions). What neither says, the bodies of
 * the built-in routes, comes from the documentation table in docs.c, one
 * entry per method and pattern, written from the handlers. A route the
 * table does not describe makes the build fail, naming it, so no route
 * can be added without its documentation. See docs/api.md.
 *
 * It sits beside the server (the server serves it at
 * GET /api/v1/openapi.json) and below the command line (`bulwark openapi`).
 */
#ifndef BW_OPENAPI_H
#define BW_OPENAPI_H

#include <jansson.h>
#include <stddef.h>

#include "../core/core.h"
#include "../http/http.h"

/*
 * The document for the routes of r. BW_OK with *out a new object;
 * BW_ERR_NOTFOUND when a route has no documentation, BW_ERR_INVALID when
 * an entry of the table is not valid JSON, BW_ERR_NOMEM: each with the
 * reason in err (naming the route or entry).
 */
bw_err openapi_build(const struct router *r, json_t **out, char *err, size_t errlen) BW_MUST_USE;

/*
 * The document for r as compact JSON text, built on first use and kept
 * for the life of the process (the route table never changes while it
 * runs). *text stays valid until exit. The same errors as openapi_build;
 * a failed build is not retried.
 */
bw_err openapi_text(const struct router *r, const char **text, size_t *len) BW_MUST_USE;

/* --- docs.c: what the route table does not say ---------------------------------- */

/* Flags of a documentation entry. */
enum openapi_doc_flag {
	OAD_BODY_OPTIONAL = 1 << 0, /* the request body may be left out */
	OAD_PASSWORD = 1 << 1,      /* re-checks a password: counted, 423 once locked */
	OAD_COOKIE = 1 << 2,        /* sets (or clears) the session cookie */
	OAD_LOGIN_RATE = 1 << 3,    /* held to [auth] login_rate_per_minute: 429 */
	OAD_LIST = 1 << 4,          /* a list: the envelope of `response`, limit and cursor */
	OAD_FORM = 1 << 5,          /* the body is a form (application/x-www-form-urlencoded) */
	OAD_REDIRECT = 1 << 6,      /* the success is a redirect (status 302 or 303): Location */
	OAD_SAML_XML = 1 << 7,      /* the success body is SAML metadata (XML), not JSON */
};

/*
 * One built-in route as clients see it. Schemas and parameters are JSON
 * text (a "$ref" may name a schema of openapi_schemas by
 * "#/components/schemas/NAME"). Path parameters come from the pattern.
 */
struct openapi_doc {
	const char *method;  /* "GET" */
	const char *pattern; /* as in the route table: "/api/v1/users/:id" */
	const char *tag;
	const char *summary;
	const char *description; /* more than the summary, or NULL */
	const char *request;     /* JSON Schema of the body, or NULL: it takes none */
	const char *response;    /* JSON Schema of the success body (OAD_LIST: of one item) */
	const char *query;       /* JSON array of parameter objects (in: query), or NULL */
	int status;              /* the success status: 200, or 201 for a create */
	unsigned flags;          /* OAD_* */
};
extern const struct openapi_doc openapi_docs[];
extern const size_t openapi_docs_count;

/* Named schemas the entries refer to. */
struct openapi_schema {
	const char *name;
	const char *schema; /* JSON text */
};
extern const struct openapi_schema openapi_schemas[];
extern const size_t openapi_schemas_count;

/*
 * A module action's body and answer (module + name, as in the descriptor).
 * response NULL: the action answers with the row.
 */
struct openapi_action_doc {
	const char *module, *action;
	const char *summary;
	const char *request;  /* JSON Schema of the body (optional: {} when none is sent) */
	const char *response; /* JSON Schema, or NULL for the row */
};
extern const struct openapi_action_doc openapi_action_docs[];
extern const size_t openapi_action_docs_count;

#endif
