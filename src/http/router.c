/*
 * The route table, compiled once at start-up. Paths are split and
 * percent-decoded here and only here, so handlers never parse paths and a
 * path that could mean two things (encoded '/', dot segments, NUL) is
 * refused before any route sees it.
 */
#include "http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct croute {
	const struct route *r;
	size_t nseg;
	const char *seg[ROUTE_MAX_SEGMENTS]; /* literal, or param name */
	size_t seglen[ROUTE_MAX_SEGMENTS];
	unsigned char is_param[ROUTE_MAX_SEGMENTS];
	size_t body_limit;
};

struct router {
	struct croute *routes;
	size_t n;
	size_t max_body;
};

static const struct {
	unsigned bit;
	const char *name;
} router_methods[] = {
	{HTTP_GET, "GET"},     {HTTP_HEAD, "HEAD"},     {HTTP_POST, "POST"},
	{HTTP_PUT, "PUT"},     {HTTP_PATCH, "PATCH"},   {HTTP_DELETE, "DELETE"},
	{HTTP_OPTIONS, "OPTIONS"},
};

unsigned
router_method(const char *name)
{
	for (size_t i = 0; i < BW_ARRAY_LEN(router_methods); i++)
		if (strcmp(name, router_methods[i].name) == 0)
			return router_methods[i].bit;
	return 0;
}

void
router_allow_string(unsigned allow, char *out, size_t outlen)
{
	size_t off = 0;
	out[0] = '\0';
	for (size_t i = 0; i < BW_ARRAY_LEN(router_methods); i++) {
		if (!(allow & router_methods[i].bit))
			continue;
		int n = snprintf(out + off, outlen - off, "%s%s", off ? ", " : "",
				 router_methods[i].name);
		if (n < 0 || (size_t)n >= outlen - off)
			return;
		off += (size_t)n;
	}
}

static int
router_single_method(unsigned m)
{
	return m != 0 && (m & (m - 1)) == 0 && m <= HTTP_OPTIONS;
}

static int
router_valid_literal(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
		      c == '.'))
			return 0;
	}
	return n > 0;
}

static bw_err
router_compile(const struct route *r, size_t default_body, struct croute *c, char *err,
	       size_t errlen)
{
	const char *p = r->pattern;
	memset(c, 0, sizeof(*c));
	c->r = r;
	if (p == NULL || p[0] != '/' || r->handler == NULL || !router_single_method(r->method)) {
		snprintf(err, errlen, "route %s: bad pattern, method or handler",
			 p ? p : "(null)");
		return BW_ERR_INVALID;
	}
	if (!(r->flags & ROUTE_PUBLIC) && (r->permission == NULL || r->permission[0] == '\0')) {
		snprintf(err, errlen, "route %s: no permission and not public", p);
		return BW_ERR_DENIED;
	}
	p++;
	while (*p != '\0') {
		const char *end = strchr(p, '/');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (c->nseg == ROUTE_MAX_SEGMENTS) {
			snprintf(err, errlen, "route %s: too many segments", r->pattern);
			return BW_ERR_INVALID;
		}
		int param = len > 1 && p[0] == ':';
		if (!router_valid_literal(p + param, len - (size_t)param)) {
			snprintf(err, errlen, "route %s: bad segment", r->pattern);
			return BW_ERR_INVALID;
		}
		c->is_param[c->nseg] = (unsigned char)param;
		c->seg[c->nseg] = p + param;
		c->seglen[c->nseg] = len - (size_t)param;
		c->nseg++;
		if (end == NULL)
			break;
		p = end + 1;
		if (*p == '\0') {
			snprintf(err, errlen, "route %s: trailing slash", r->pattern);
			return BW_ERR_INVALID;
		}
	}
	size_t nparams = 0;
	for (size_t i = 0; i < c->nseg; i++)
		nparams += c->is_param[i];
	if (nparams > ROUTE_MAX_PARAMS) {
		snprintf(err, errlen, "route %s: too many parameters", r->pattern);
		return BW_ERR_INVALID;
	}
	if (r->body_max == ROUTE_BODY_DEFAULT)
		c->body_limit = router_takes_body(r) ? default_body : 0;
	else
		c->body_limit = r->body_max;
	return BW_OK;
}

int
router_takes_body(const struct route *route)
{
	if (route->body_max == ROUTE_BODY_DEFAULT)
		return !(route->method & (HTTP_GET | HTTP_HEAD | HTTP_DELETE | HTTP_OPTIONS));
	return route->body_max > 0;
}

static int
router_same_shape(const struct croute *a, const struct croute *b)
{
	if (a->nseg != b->nseg || a->r->method != b->r->method)
		return 0;
	for (size_t i = 0; i < a->nseg; i++) {
		if (a->is_param[i] != b->is_param[i])
			return 0;
		if (!a->is_param[i] &&
		    (a->seglen[i] != b->seglen[i] || memcmp(a->seg[i], b->seg[i], a->seglen[i]) != 0))
			return 0;
	}
	return 1;
}

static int
router_specificity(const void *a, const void *b)
{
	const struct croute *x = a, *y = b;
	size_t n = x->nseg < y->nseg ? x->nseg : y->nseg;
	for (size_t i = 0; i < n; i++)
		if (x->is_param[i] != y->is_param[i])
			return (int)x->is_param[i] - (int)y->is_param[i];
	return 0;
}

bw_err
router_new(const struct route *routes, size_t n, size_t default_body_max, struct router **out,
	   char *err, size_t errlen)
{
	*out = NULL;
	struct router *rt = calloc(1, sizeof(*rt));
	if (rt == NULL)
		return BW_ERR_NOMEM;
	rt->routes = calloc(n ? n : 1, sizeof(*rt->routes));
	if (rt->routes == NULL) {
		free(rt);
		return BW_ERR_NOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		bw_err e = router_compile(&routes[i], default_body_max, &rt->routes[i], err, errlen);
		if (e != BW_OK) {
			router_free(rt);
			return e;
		}
		for (size_t j = 0; j < i; j++) {
			if (router_same_shape(&rt->routes[i], &rt->routes[j])) {
				snprintf(err, errlen, "route %s: duplicate of %s", routes[i].pattern,
					 routes[j].pattern);
				router_free(rt);
				return BW_ERR_CONFLICT;
			}
		}
		if (rt->routes[i].body_limit > rt->max_body)
			rt->max_body = rt->routes[i].body_limit;
		rt->n++;
	}
	/* Literal segments beat parameters: /api/v1/me before /api/v1/:module. */
	qsort(rt->routes, rt->n, sizeof(*rt->routes), router_specificity);
	*out = rt;
	return BW_OK;
}

void
router_free(struct router *r)
{
	if (r == NULL)
		return;
	free(r->routes);
	free(r);
}


/* Well-formed UTF-8: no overlong forms, surrogates or code points past U+10FFFF. */
static int
router_utf8(const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;
	while (i < n) {
		unsigned c = s[i];
		size_t len;
		unsigned cp, min;
		if (c < 0x80) {
			i++;
			continue;
		} else if ((c & 0xe0) == 0xc0) {
			len = 2, cp = c & 0x1f, min = 0x80;
		} else if ((c & 0xf0) == 0xe0) {
			len = 3, cp = c & 0x0f, min = 0x800;
		} else if ((c & 0xf8) == 0xf0) {
			len = 4, cp = c & 0x07, min = 0x10000;
		} else {
			return 0;
		}
		if (n - i < len)
			return 0;
		for (size_t k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += len;
	}
	return 1;
}

/* Decode one segment into the pool; NULL and *bad set on malformed input. */
static char *
router_decode(pool *p, const char *s, size_t n, int *bad)
{
	char *out = pool_alloc(p, n + 1);
	if (out == NULL)
		return NULL;
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '%') {
			if (i + 2 >= n) {
				*bad = 1;
				return NULL;
			}
			int hi = http_hexval(s[i + 1]);
			int lo = http_hexval(s[i + 2]);
			if (hi < 0 || lo < 0) {
				*bad = 1;
				return NULL;
			}
			c = (unsigned char)(hi << 4 | lo);
			/* Decoded, a segment holds no separator and no control character (a space may be). */
			if (c < 0x20 || c == 0x7f || c == '/' || c == '\\') {
				*bad = 1;
				return NULL;
			}
			i += 2;
		} else if (c < 0x21 || c == 0x7f || c == '\\') {
			/* A backslash is refused as it is and encoded: some proxies read it as '/'. */
			*bad = 1;
			return NULL;
		}
		out[o++] = (char)c;
	}
	out[o] = '\0';
	if (o == 0 || strcmp(out, ".") == 0 || strcmp(out, "..") == 0 || !router_utf8(out, o)) {
		*bad = 1;
		return NULL;
	}
	return out;
}

bw_err
router_match(const struct router *r, struct http_req *req)
{
	const char *seg[ROUTE_MAX_SEGMENTS];
	size_t nseg = 0;
	const char *p = req->path;

	req->route = NULL;
	req->nparams = 0;
	req->allow = 0;
	if (p == NULL || p[0] != '/')
		return BW_ERR_INVALID;
	p++;
	while (*p != '\0') {
		const char *end = strchr(p, '/');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (nseg == ROUTE_MAX_SEGMENTS)
			return BW_ERR_NOTFOUND;
		int bad = 0;
		seg[nseg] = router_decode(req->pool, p, len, &bad);
		if (seg[nseg] == NULL)
			return bad ? BW_ERR_INVALID : BW_ERR_NOMEM;
		nseg++;
		if (end == NULL)
			break;
		p = end + 1;
		if (*p == '\0')
			return BW_ERR_NOTFOUND; /* trailing slash: no route has one */
	}

	unsigned want = req->method == HTTP_HEAD ? (HTTP_HEAD | HTTP_GET) : req->method;
	for (size_t i = 0; i < r->n; i++) {
		const struct croute *c = &r->routes[i];
		if (c->nseg != nseg)
			continue;
		size_t k;
		for (k = 0; k < nseg; k++) {
			if (c->is_param[k])
				continue;
			if (strlen(seg[k]) != c->seglen[k] || memcmp(seg[k], c->seg[k], c->seglen[k]) != 0)
				break;
		}
		if (k != nseg)
			continue;
		unsigned m = c->r->method;
		req->allow |= m == HTTP_GET ? (HTTP_GET | HTTP_HEAD) : m;
		if (!(m & want))
			continue;
		req->route = c->r;
		for (k = 0; k < nseg; k++) {
			if (!c->is_param[k])
				continue;
			req->param_name[req->nparams] =
			    pool_strndup(req->pool, c->seg[k], c->seglen[k]);
			req->param_value[req->nparams] = seg[k];
			if (req->param_name[req->nparams] == NULL)
				return BW_ERR_NOMEM;
			req->nparams++;
		}
		req->body_limit = c->body_limit;
		return BW_OK;
	}
	return req->allow ? BW_ERR_METHOD : BW_ERR_NOTFOUND;
}

static int
router_perm_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

bw_err
router_permissions(const struct router *r, const char ***out, size_t *n)
{
	const char **v = calloc(r->n ? r->n : 1, sizeof(*v));
	size_t k = 0, u = 0;
	*out = NULL;
	*n = 0;
	if (v == NULL)
		return BW_ERR_NOMEM;
	for (size_t i = 0; i < r->n; i++)
		if (r->routes[i].r->permission != NULL)
			v[k++] = r->routes[i].r->permission;
	qsort(v, k, sizeof(*v), router_perm_cmp);
	for (size_t i = 0; i < k; i++)
		if (u == 0 || strcmp(v[u - 1], v[i]) != 0)
			v[u++] = v[i];
	*out = v;
	*n = u;
	return BW_OK;
}

size_t
router_max_body(const struct router *r)
{
	return r->max_body;
}

size_t
router_count(const struct router *r)
{
	return r->n;
}

const struct route *
router_route(const struct router *r, size_t i)
{
	return i < r->n ? r->routes[i].r : NULL;
}

/*
 * The system scopes: permissions outside them are a module's, and a
 * module's verb outside router_record_verbs is one of its actions.
 */
static const char *const router_system_scopes[] = {"self", "users", "roles", "settings", "audit"};
static const char *const router_record_verbs[] = {"view", "create", "edit", "delete", "export"};

static int
router_is(const char *s, size_t n, const char *word)
{
	return strlen(word) == n && strncmp(s, word, n) == 0;
}

static int
router_in(const char *s, size_t n, const char *const *words, size_t nwords)
{
	for (size_t i = 0; i < nwords; i++)
		if (router_is(s, n, words[i]))
			return 1;
	return 0;
}

enum route_guard
router_guard(const struct route *rt)
{
	if (rt->flags & ROUTE_PUBLIC)
		return ROUTE_GUARD_NONE; /* before sign-in: there is no session to steal */
	if ((rt->flags & (ROUTE_ADMIN | ROUTE_DESTRUCTIVE)) || rt->method == HTTP_DELETE)
		return ROUTE_GUARD_ALWAYS;
	const char *perm = rt->permission ? rt->permission : "";
	const char *dot = strchr(perm, '.');
	size_t slen = dot ? (size_t)(dot - perm) : strlen(perm);
	const char *verb = dot ? dot + 1 : "";
	size_t vlen = strlen(verb);
	/* The admin area: settings (the allowlist itself) and the audit log, reads included. */
	if (router_is(perm, slen, "settings") || router_is(perm, slen, "audit"))
		return ROUTE_GUARD_ALWAYS;
	/* Who may do what: every users.* and roles.* but the plain reads. */
	if ((router_is(perm, slen, "users") || router_is(perm, slen, "roles")) &&
	    !router_is(verb, vlen, "view"))
		return ROUTE_GUARD_ALWAYS;
	/* One's own credentials: API tokens, MFA, password. */
	if (router_is(perm, slen, "self") &&
	    (router_is(verb, vlen, "tokens") || router_is(verb, vlen, "mfa") ||
	     router_is(verb, vlen, "password")))
		return ROUTE_GUARD_ALWAYS;
	/* Bulk reads out of the tenant. */
	if (router_is(verb, vlen, "export"))
		return ROUTE_GUARD_ALWAYS;
	/*
	 * A module action (send, void, reveal_credential, ...) is guarded unless
	 * it says it is routine record work: one added later is guarded until
	 * someone decides otherwise. A permission of no known shape counts as one.
	 */
	if (!router_in(perm, slen, router_system_scopes, BW_ARRAY_LEN(router_system_scopes)) &&
	    !router_in(verb, vlen, router_record_verbs, BW_ARRAY_LEN(router_record_verbs)) &&
	    !(rt->flags & ROUTE_ROUTINE))
		return ROUTE_GUARD_ALWAYS;
	/* Any other change, but signing out and the MFA code (reachable before it). */
	if ((rt->method & (HTTP_POST | HTTP_PUT | HTTP_PATCH)) && !(rt->flags & ROUTE_MFA_PENDING))
		return ROUTE_GUARD_CHANGE;
	return ROUTE_GUARD_NONE;
}

const char *
router_guard_name(enum route_guard g)
{
	switch (g) {
	case ROUTE_GUARD_NONE:
		return "never";
	case ROUTE_GUARD_CHANGE:
		return "changes";
	case ROUTE_GUARD_ALWAYS:
		return "always";
	default:
		abort();
	}
}
