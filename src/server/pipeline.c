/*
 * The request pipeline: a table of stages run in order once a request's
 * head is in — client address, limits, tenant, rate, route, CSRF,
 * authenticate, gates (MFA code, one-time password, required enrolment),
 * allowlist, permission — then, once its body is read, the handler. A
 * stage that refuses records why and returns the error; nothing after it
 * runs. A new control (the portal's principal, SAML's cross-site POST) is
 * a row in the table, not a patch to the others. docs/http.md has the
 * same order and why it is this one.
 */
#include "server_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../auth/auth.h"
#include "../auth/auth_api.h"
#include "../crypto/crypto.h"
#include "../rbac/rbac.h"

static enum MHD_Result
server_sum_header(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	(void)kind;
	size_t *sum = cls;
	*sum += strlen(key) + (value ? strlen(value) : 0) + 4;
	return MHD_YES;
}

/* The header fields in order, for the framing check. */
struct server_fields {
	struct http_field f[FRAMING_FIELDS_MAX];
	size_t n;
	int overflow;
};

static enum MHD_Result
server_field(void *cls, enum MHD_ValueKind kind, const char *key, size_t key_size,
	     const char *value, size_t value_size)
{
	(void)kind;
	struct server_fields *sf = cls;
	if (sf->n == FRAMING_FIELDS_MAX) {
		sf->overflow = 1;
		return MHD_NO;
	}
	sf->f[sf->n++] = (struct http_field){key, value ? value : "", key_size, value_size};
	return MHD_YES;
}

/*
 * What the stages share about one request while they run: the daemon's
 * view of it (method, version) and what one stage learns for the next.
 */
struct stage_ctx {
	struct server *s;
	struct http_req *r;
	const char *method, *version;
	size_t clen;      /* Content-Length (0: none) */
	int expect_body;  /* a body follows the head */
	int has_cookie;   /* a session cookie came */
	int cross_site;   /* a cross-site form POST its route takes (stage_cross_site) */
	char secret[48];  /* its value: wiped when the stages end */
};

/* 1. client address, first so that every refusal is logged with it. */
static bw_err
stage_client(struct stage_ctx *x)
{
	server_client_ip(x->s, x->r->conn, x->r);
	return x->r->path == NULL ? response_error(x->r, BW_ERR_NOMEM, NULL) : BW_OK;
}

/*
 * 2. limits: the size of the head, then framing, before anything else
 * reads a header (what the parser let through that RFC 9112 refuses,
 * framing.c, so that no front end and this server can disagree on where a
 * request ends), then the body's size against the largest any route takes.
 */
static bw_err
stage_limits(struct stage_ctx *x)
{
	struct http_req *r = x->r;
	struct MHD_Connection *c = r->conn;
	size_t hsum = strlen(r->path) + (r->query ? strlen(r->query) + 1 : 0);
	MHD_get_connection_values(c, MHD_HEADER_KIND, server_sum_header, &hsum);
	if (hsum > (size_t)atomic_load(&x->s->header_max))
		return response_error(r, BW_ERR_HEADERS_TOO_LARGE, "request headers too large");
	if (!framing_target_ok(r->path) || (r->query != NULL && !framing_target_ok(r->query)))
		return response_error(r, BW_ERR_INVALID,
				      "white space or a control character in the request target");
	struct server_fields *sf = pool_alloc(r->pool, sizeof(*sf));
	if (sf == NULL)
		return response_error(r, BW_ERR_NOMEM, NULL);
	MHD_get_connection_values_n(c, MHD_HEADER_KIND, server_field, sf);
	if (sf->overflow)
		return response_error(r, BW_ERR_HEADERS_TOO_LARGE, "too many request header fields");
	const union MHD_ConnectionInfo *hs =
	    MHD_get_connection_info(c, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
	struct framing fr;
	const char *why;
	bw_err e = framing_check(x->version, sf->f, sf->n,
				 hs != NULL ? x->method + hs->header_size : NULL, &fr, &why);
	if (e != BW_OK)
		return response_error(r, e, why);
	x->clen = fr.has_length ? fr.length : 0;
	/* From here on the framing is sound: a refusal need not hang up unless a body follows. */
	x->expect_body = x->clen > 0;
	if (x->clen > router_max_body(x->s->router))
		return response_error(r, BW_ERR_TOO_LARGE, "request body too large");
	return BW_OK;
}

/* 3. tenant, from the Host header; whether the route needs one is known after routing. */
static bw_err
stage_tenant(struct stage_ctx *x)
{
	struct http_req *r = x->r;
	char slug[TENANT_SLUG_MAX + 1];
	const char *host = http_req_header(r, "Host");
	if (x->s->reg != NULL && tenant_from_host(host, x->s->cfg.base_domain, slug) == BW_OK &&
	    registry_lookup(x->s->reg, slug, &r->op.tn) == BW_OK)
		r->op.tenant = r->op.tn.slug;
	return BW_OK;
}

/*
 * 4. rate, per client address. Every reply it governs, refusals included,
 * says where the bucket stands (RateLimit-Limit, -Remaining, -Reset), and
 * a 429 when to come back (Retry-After).
 */
static bw_err
stage_rate(struct stage_ctx *x)
{
	struct http_req *r = x->r;
	struct ratelimit_state st;
	int ok = ratelimit_check(x->s->rl, r->client_ip, r->start_us, &st);
	bw_err e = http_req_rate_headers(r, &st);
	if (!ok)
		return response_error(r, BW_ERR_RATE, "too many requests from this address");
	return e == BW_OK ? BW_OK : response_error(r, e, NULL);
}

/* 5. route, the tenant's state when the route has one, and the route's own body limit. */
static bw_err
stage_route(struct stage_ctx *x)
{
	struct http_req *r = x->r;
	bw_err e = router_match(x->s->router, r);
	switch (e) {
	case BW_OK:
		break;
	case BW_ERR_INVALID:
		return response_error(r, e, "malformed request path");
	case BW_ERR_NOTFOUND:
		return response_error(r, e, "no such resource");
	case BW_ERR_METHOD:
		return response_error(r, e, "method not allowed on this resource");
	default:
		return response_error(r, e, NULL);
	}
	if (!(r->route->flags & ROUTE_NO_TENANT)) {
		if (r->op.tenant == NULL || r->op.tn.state == TENANT_PROVISIONING ||
		    r->op.tn.state == TENANT_DELETING)
			return response_error(r, BW_ERR_NOTFOUND, "no such tenant at this address");
		if (r->op.tn.state == TENANT_SUSPENDED)
			return response_error(r, BW_ERR_DENIED, "this tenant is suspended");
	}
	if (x->clen > r->body_limit)
		return response_error(
		    r, BW_ERR_TOO_LARGE,
		    pool_printf(r->pool, "request body too large for this resource (at most %zu bytes)",
				r->body_limit));
	return BW_OK;
}

/*
 * 5a. media type: a request body must be JSON, said so by its
 * Content-Type (application/json, charset utf-8 at most), on every route
 * that takes one (only those get here with a body: stage_route refused
 * the rest). An empty body needs no type. Exactly one Content-Type: two
 * could be read differently by a front end and by this server.
 */
static enum MHD_Result
stage_media_count(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	(void)kind, (void)value;
	if (strcasecmp(key, "Content-Type") == 0)
		(*(int *)cls)++;
	return MHD_YES;
}

static bw_err
stage_media_type(struct stage_ctx *x)
{
	struct http_req *r = x->r;
	if (x->clen == 0 || (r->route->flags & ROUTE_UPLOAD) || x->cross_site)
		return BW_OK; /* a file is of any type: its handler reads the type the client claims */
	int n = 0;
	MHD_get_connection_values(r->conn, MHD_HEADER_KIND, stage_media_count, &n);
	if (n == 1 && http_media_is_json(http_req_header(r, "Content-Type")))
		return BW_OK;
	return response_error(r, BW_ERR_MEDIA_TYPE,
			      n > 1 ? "more than one Content-Type"
				    : "a request body must be JSON: Content-Type: application/json "
				      "(with charset=utf-8 at most)");
}

/*
 * 5b. A cross-site form POST (ROUTE_CROSS_SITE: the SAML ACS, which the
 * IdP's page posts from its own origin): public, a POST, and exactly one
 * Content-Type, application/x-www-form-urlencoded. It is exempt from the
 * Origin check, on that route only: what stands in for CSRF there is the
 * signed response itself, its Destination, InResponseTo bound to this
 * browser's request, and the replay cache (src/saml/saml.c). No session
 * is read on it, so a cookie sent along gives it nothing.
 */
static bw_err
stage_cross_site(struct stage_ctx *x)
{
	struct http_req *r = x->r;
	if (!(r->route->flags & ROUTE_CROSS_SITE))
		return BW_OK;
	if (!(r->route->flags & ROUTE_PUBLIC) || r->method != HTTP_POST) {
		log_error("request %s: bug: cross-site route %s is not a public POST", r->id,
			  r->route->pattern);
		return response_error(r, BW_ERR_INTERNAL, NULL);
	}
	int n = 0;
	MHD_get_connection_values(r->conn, MHD_HEADER_KIND, stage_media_count, &n);
	if (n != 1 || !http_media_is(http_req_header(r, "Content-Type"),
				     "application/x-www-form-urlencoded"))
		return response_error(r, BW_ERR_MEDIA_TYPE,
				      "this form takes Content-Type: application/x-www-form-urlencoded");
	x->cross_site = 1;
	return BW_OK;
}

/* Whether the stages from here on apply: routes of a tenant; public ones stop after CSRF. */
static int
stage_tenant_route(const struct stage_ctx *x)
{
	return !(x->r->route->flags & ROUTE_NO_TENANT);
}

static int
stage_signed_in_route(const struct stage_ctx *x)
{
	return stage_tenant_route(x) && !(x->r->route->flags & ROUTE_PUBLIC);
}

/*
 * 6. CSRF: a browser's state change must come from this tenant's own
 * origin. Before authentication, so that a cross-site request costs no
 * database work and touches no session.
 */
static bw_err
stage_csrf(struct stage_ctx *x)
{
	struct http_req *r = x->r;
	int changes = (r->method & (HTTP_POST | HTTP_PUT | HTTP_PATCH | HTTP_DELETE)) != 0;
	if (!stage_tenant_route(x) || x->cross_site)
		return BW_OK;
	x->has_cookie = auth_cookie_find(http_req_header(r, "Cookie"), x->secret);
	if (!changes || !(x->has_cookie || (r->route->flags & ROUTE_PUBLIC)))
		return BW_OK;
	const char *origin = http_req_header(r, "Origin");
	const char *referer = http_req_header(r, "Referer");
	const char *host = http_req_header(r, "Host");
	char want[300];
	snprintf(want, sizeof(want), "https://%s", host ? host : "");
	size_t wl = strlen(want);
	int ok;
	if (origin != NULL)
		ok = strcasecmp(origin, want) == 0;
	else if (referer != NULL)
		ok = strncasecmp(referer, want, wl) == 0 && (referer[wl] == '/' || referer[wl] == '\0');
	else
		ok = !x->has_cookie; /* a cookie-less API client (no Origin) may log in */
	return ok ? BW_OK
		  : response_error(r, BW_ERR_DENIED,
				   "cross-site request refused (Origin does not match)");
}

/* Its refusal, by this pointer: pipeline_run then knows a token was refused mid-request. */
static const char pipeline_msg_ended[] = "this session or token was ended, or its user disabled, "
					 "while the request ran; nothing was changed";

/*
 * A bearer token was presented and refused: the 401's challenge says so
 * (RFC 6750 3.1); server_respond sends the plain challenge on any other
 * 401, and this one only if the reply is a 401.
 */
static void
pipeline_token_refused(struct http_req *r)
{
	if (response_header(r, "WWW-Authenticate",
			    "Bearer realm=\"bulwark\", error=\"invalid_token\"", 1) != BW_OK)
		log_warn("request %s: out of memory: the plain challenge is sent", r->id);
}

/* 7. authenticate: who is asking, from an API token or the session cookie. */
static bw_err
stage_authenticate(struct stage_ctx *x)
{
	struct http_req *r = x->r;
	if (!stage_signed_in_route(x))
		return BW_OK;
	const char *authz = http_req_header(r, "Authorization");
	const char *perm = r->route->permission;
	db *d;
	bw_err e = http_req_db(r, &d);
	if (e != BW_OK)
		return e;
	if (authz != NULL && strncasecmp(authz, "Bearer ", 7) == 0)
		e = token_check(d, authz + 7, perm, &r->op.actor);
	else if (x->has_cookie)
		e = session_check(d, &x->s->cfg, x->secret, perm, &r->op.actor);
	else
		e = BW_ERR_UNAUTHORIZED;
	if (e == BW_ERR_UNAUTHORIZED) {
		if (authz != NULL && strncasecmp(authz, "Bearer ", 7) == 0)
			pipeline_token_refused(r);
		return response_error(r, e, "sign in first (session expired or not signed in)");
	}
	if (e != BW_OK)
		return op_unavailable(&r->op);
	r->op.tx_begin = pipeline_caller_holds;
	return BW_OK;
}

/*
 * The first statement of every transaction a signed-in caller's request
 * runs (op->tx_begin): its session or token locked and still there, its
 * user not disabled, and the route's permission held now, not only when
 * the head arrived (a body can come much later). A sign-out, disable or
 * demotion that raced the request either came first (then 401 or 403,
 * nothing written) or waits for this transaction.
 */
bw_err
pipeline_caller_holds(struct op *op)
{
	db_stmt *s;
	int row = 0, disabled = 1;
	bw_err e = auth_caller_lock(op->d, &op->actor);
	if (e == BW_OK && (e = db_prepare_cached(op->d, "SELECT disabled FROM users WHERE id = ?",
					      &s)) == BW_OK) {
		if ((e = DB_BIND(s, DB_INT(op->actor.user.id))) == BW_OK &&
		    (e = db_step(s, &row)) == BW_OK && row)
			disabled = db_col_int(s, 0) != 0;
		db_done(s);
	}
	if (e == BW_ERR_UNAUTHORIZED || (e == BW_OK && disabled))
		return op_fail(op, BW_ERR_UNAUTHORIZED, pipeline_msg_ended);
	if (e != BW_OK)
		return e;
	const char *perm = op->actor.perm_asked;
	if (perm[0] == '\0')
		return BW_OK;
	int has = rbac_user_has(op->d, op->actor.user.id, perm);
	if (has < 0)
		return op_unavailable(op);
	if (!has)
		return op_fail(op, BW_ERR_DENIED,
			       pool_printf(op->pool, "permission denied (needs %s)", perm));
	return BW_OK;
}

/* 8. gates: the MFA code, a one-time password to change, an MFA enrolment the tenant requires. */
static bw_err
stage_gates(struct stage_ctx *x)
{
	struct http_req *r = x->r;
	if (!stage_signed_in_route(x))
		return BW_OK;
	const struct actor *a = &r->op.actor;
	unsigned flags = r->route->flags;
	if (!a->mfa_verified && !(flags & ROUTE_MFA_PENDING))
		return response_error(r, BW_ERR_UNAUTHORIZED, "enter your MFA code first");
	if (a->user.must_change_password && !(flags & ROUTE_PW_CHANGE))
		return response_error(r, BW_ERR_DENIED,
				      "change the one-time password first (POST /api/v1/auth/password)");
	/* An SSO session's second factor was the IdP's (docs/saml.md): no enrolment here. */
	if (!a->user.mfa_enabled && !(flags & (ROUTE_MFA_ENROL | ROUTE_MFA_PENDING)) &&
	    a->mfa_required && !a->sso)
		return response_error(r, BW_ERR_DENIED,
				      "this organisation requires MFA: enrol before anything else");
	return BW_OK;
}

/*
 * 9. The admin IP allowlist: on every guarded request (router_guard), and
 * on every other change when the tenant guards every change; the same one
 * statement reads both, and a read of records reads neither.
 */
static bw_err
stage_allowlist(struct stage_ctx *x)
{
	struct http_req *r = x->r;
	if (!stage_signed_in_route(x))
		return BW_OK;
	enum route_guard guard = router_guard(r->route);
	if (guard == ROUTE_GUARD_NONE)
		return BW_OK;
	db *d;
	bw_err e = http_req_db(r, &d);
	if (e == BW_OK)
		e = allowlist_permits(d, r->client_ip, guard == ROUTE_GUARD_CHANGE);
	if (e == BW_ERR_DENIED) {
		auth_event(d, r->op.actor.user.id, "allowlist_denied", r->client_ip, r->route->pattern);
		return response_error(r, BW_ERR_DENIED,
				      "this address is not on the organisation's admin allowlist");
	}
	return e != BW_OK ? op_unavailable(&r->op) : BW_OK;
}

/*
 * 10. Permission (may(): the one rule), from the roles the user holds now
 * (a change of roles counts from the next request); a token is limited to
 * its scopes and to what its owner holds at the time of use.
 */
static bw_err
stage_permission(struct stage_ctx *x)
{
	if (!stage_signed_in_route(x))
		return BW_OK;
	return may_or_fail(&x->r->op, x->r->route->permission);
}

/* The stages before the handler, in order (docs/http.md "Pipeline"). */
static const struct {
	const char *name;
	bw_err (*run)(struct stage_ctx *x);
} pipeline_stages[] = {
    {"client address", stage_client},
    {"limits", stage_limits},
    {"tenant", stage_tenant},
    {"rate", stage_rate},
    {"route", stage_route},
    {"cross-site form", stage_cross_site},
    {"media type", stage_media_type},
    {"csrf", stage_csrf},
    {"authenticate", stage_authenticate},
    {"gates", stage_gates},
    {"allowlist", stage_allowlist},
    {"permission", stage_permission},
};

bw_err
pipeline_admit(struct server *s, struct http_req *r, const char *method, const char *version,
	       int *expect_body)
{
	/* Until the framing is known to be sound, a refusal hangs up after its reply. */
	struct stage_ctx x = {.s = s, .r = r, .method = method, .version = version,
			      .expect_body = 1};
	bw_err e = BW_OK;
	for (size_t i = 0; i < BW_ARRAY_LEN(pipeline_stages) && e == BW_OK; i++) {
		e = pipeline_stages[i].run(&x);
		if (e != BW_OK)
			log_debug("request %s: refused at stage %s (%s)", r->id, pipeline_stages[i].name,
				  bw_errcode(e));
	}
	crypto_wipe(x.secret, sizeof(x.secret));
	if (e != BW_OK && r->op.err != e)
		(void)response_error(r, e, NULL); /* the return value is the outcome */
	*expect_body = x.expect_body;
	/*
	 * Keep the connection for the handler only when no body is to be
	 * waited for (GET, DELETE): one borrow per request, not two.
	 */
	if (e != BW_OK || x.expect_body)
		server_release_db(s, r);
	if (e == BW_OK && x.clen > 0 && !(r->route->flags & ROUTE_UPLOAD)) {
		r->body = malloc(x.clen + 1);
		if (r->body == NULL)
			return response_error(r, BW_ERR_NOMEM, NULL);
		r->body_cap = x.clen + 1;
	}
	return e;
}

/*
 * After the handler: a 201 says where what it made lives. A POST on a
 * collection (a pattern ending in a literal segment, /api/v1/tickets)
 * whose reply is an object with an integer "id" made <path>/<id>; a
 * handler that knows better sets Location itself (response_header). A
 * 201 left without one is logged as a bug: every route that creates is
 * covered by this rule or sets its own (tests/http/test_conventions.py).
 */
static bw_err
pipeline_location(struct http_req *r)
{
	if (r->status != 201 || r->op.err != BW_OK)
		return BW_OK;
	for (size_t i = 0; i < r->nheaders; i++)
		if (strcasecmp(r->headers[i].name, "Location") == 0)
			return BW_OK;
	const char *last = strrchr(r->route->pattern, '/');
	json_t *id = json_object_get(r->reply, "id");
	if (r->method != HTTP_POST || last == NULL || last[1] == ':' || !json_is_integer(id) ||
	    json_integer_value(id) < 1) {
		log_error("request %s: bug: 201 from %s %s without a Location", r->id,
			  r->method_name, r->route->pattern);
		return BW_OK;
	}
	size_t n = strlen(r->path);
	while (n > 0 && r->path[n - 1] == '/')
		n--;
	const char *loc = pool_printf(r->pool, "%.*s/%lld", (int)n, r->path,
				      (long long)json_integer_value(id));
	return loc != NULL ? response_header(r, "Location", loc, 0) : BW_ERR_NOMEM;
}

/*
 * 11. The handler. Its return value is the outcome: an error there is
 * the reply whatever the sink says, and a handler that returns success
 * after recording a refusal is a bug that is never passed on.
 */
enum MHD_Result
pipeline_run(struct server *s, struct http_req *r)
{
	conntrack_busy(s->ct, r->track);
	struct idempotency idem; /* Idempotency-Key: reserve, or replay instead of the handler */
	bw_err e = idempotency_begin(r, &idem);
	if (e == BW_OK && !idem.replayed)
		e = r->route->handler(r);
	pipeline_outcome(r, e);
	idempotency_end(r, &idem); /* keeps the reply now final, or frees the key */
	server_release_db(s, r);
	return server_respond(s, r);
}

void
pipeline_outcome(struct http_req *r, bw_err e)
{
	if (e != BW_OK && r->op.err != e) {
		/* The message recorded was for another error: the return value wins. */
		(void)response_error(r, e, NULL);
	} else if (e == BW_OK && (r->op.err != BW_OK || r->status >= 400)) {
		/*
		 * A handler that decided "no" must say so in its return value: its
		 * caller may have gone on as if it had succeeded (a locked account's
		 * password re-check once did). Never pass such a reply on.
		 */
		log_error("request %s: bug: handler for %s %s returned success with status %d (%s)",
			  r->id, r->method_name, r->route->pattern, r->status, bw_errcode(r->op.err));
		(void)response_error(r, BW_ERR_INTERNAL, NULL);
	} else if (e == BW_ERR_UNAUTHORIZED && r->op.err_msg == pipeline_msg_ended &&
		   r->op.actor.kind == ACTOR_TOKEN) {
		pipeline_token_refused(r);
	} else if (e == BW_OK && pipeline_location(r) != BW_OK) {
		/* What was made stays made: the 201 goes out, without its Location. */
		log_error("request %s: no room for the Location of %s", r->id, r->path);
	}
}
