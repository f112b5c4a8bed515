/*
 * SAML's routes: the admin API of the tenant's SSO configuration, and
 * the three public ones a browser and an IdP use: /saml/metadata,
 * /saml/login (SP-initiated) and /saml/acs (the Assertion Consumer
 * Service, a cross-site form POST: ROUTE_CROSS_SITE, docs/http.md).
 */
#include "saml_api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../auth/auth.h"
#include "../crypto/crypto.h"
#include "saml.h"

#define SAML_ACS_BODY_MAX (512 * 1024) /* a form with a 256 KiB response, base64 and escaped */
#define SAML_CONFIG_BODY_MAX (1024 * 1024 + 65536) /* IdP metadata of up to 1 MiB */

static bw_err
sso_get(struct http_req *req)
{
	json_t *o;
	bw_err e = saml_config_show(&req->op, &o);
	return e == BW_OK ? response_json(req, 200, o) : e;
}

static bw_err
sso_put(struct http_req *req)
{
	json_t *in;
	bw_err e = http_req_json(req, &in);
	if (e != BW_OK)
		return e;
	e = saml_config_put(&req->op, in);
	json_decref(in);
	return e == BW_OK ? sso_get(req) : e;
}

static bw_err
sso_delete(struct http_req *req)
{
	bw_err e = saml_config_delete(&req->op);
	return e == BW_OK ? response_raw(req, 204, "text/plain", NULL, strdup(""), 0) : e;
}

static bw_err
saml_metadata(struct http_req *req)
{
	char *xml;
	bw_err e = saml_sp_metadata(&req->op, &xml);
	if (e != BW_OK)
		return e;
	return response_raw(req, 200, "application/samlmetadata+xml", NULL, xml, strlen(xml));
}

/*
 * The browser's SAML cookie (43 base64url characters) from a Cookie
 * header into secret: 1, or 0 when there is none or the first one of
 * that name holds anything else.
 */
static int
saml_cookie_find(const char *h, char secret[48])
{
	static const char name[] = SAML_COOKIE "=";
	const size_t nl = sizeof(name) - 1;
	for (const char *p = h; p != NULL && *p != '\0';) {
		while (*p == ' ' || *p == '\t')
			p++;
		const char *end = strchr(p, ';');
		size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
		while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		if (len >= nl && strncmp(p, name, nl) == 0) {
			size_t vl = len - nl;
			if (vl != AUTH_SECRET_CHARS)
				return 0;
			for (size_t i = 0; i < vl; i++) {
				char c = p[nl + i];
				if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
				      (c >= '0' && c <= '9') || c == '-' || c == '_'))
					return 0;
			}
			memcpy(secret, p + nl, vl);
			secret[vl] = '\0';
			return 1;
		}
		p = end != NULL ? end + 1 : NULL;
	}
	return 0;
}

static bw_err
saml_login(struct http_req *req)
{
	struct http_query q;
	const char *next = "/";
	char secret[48], hash[65];
	bw_err e = http_query_parse(req, &q);
	if (e != BW_OK)
		return e;
	for (size_t i = 0; i < q.n; i++) {
		if (strcmp(q.key[i], "next") != 0)
			return response_error(req, BW_ERR_INVALID,
					      pool_printf(req->pool, "unknown query parameter '%.64s'",
							  q.key[i]));
		next = q.val[i];
	}
	/* One browser, one cookie: a second sign-in begun in another tab keeps the first. */
	int fresh = !saml_cookie_find(http_req_header(req, "Cookie"), secret);
	if (fresh) {
		if ((e = auth_secret_new(secret, hash)) != BW_OK)
			return e;
	} else {
		auth_secret_hash(secret, hash);
	}
	char *url = NULL;
	if ((e = saml_login_begin(&req->op, next, hash, &url)) != BW_OK)
		goto out;
	const char *cookie = pool_printf(req->pool,
					 "%s=%s; Path=/; Secure; HttpOnly; SameSite=None; Max-Age=%d",
					 SAML_COOKIE, secret, SAML_REQUEST_SECONDS);
	if (cookie == NULL) {
		e = BW_ERR_NOMEM;
		goto out;
	}
	req->set_cookie = cookie;
	if ((e = response_header(req, "Location", url, 0)) == BW_OK)
		e = response_raw(req, 302, "text/plain", NULL, strdup(""), 0);
out:
	free(url);
	crypto_wipe(secret, sizeof(secret));
	return e;
}

static bw_err
saml_acs_route(struct http_req *req)
{
	struct http_query q;
	const char *resp = NULL, *relay = NULL;
	char bsecret[48], bhash[65] = "";
	bw_err e = http_form_parse(req, &q);
	if (e != BW_OK)
		return e;
	for (size_t i = 0; i < q.n; i++) {
		if (strcmp(q.key[i], "SAMLResponse") == 0)
			resp = q.val[i];
		else if (strcmp(q.key[i], "RelayState") == 0)
			relay = q.val[i];
	}
	if (saml_cookie_find(http_req_header(req, "Cookie"), bsecret)) {
		auth_secret_hash(bsecret, bhash);
		crypto_wipe(bsecret, sizeof(bsecret));
	}
	struct saml_signin out;
	e = saml_acs(&req->op, http_req_hasher(req), resp, relay, bhash, &out);
	if (e != BW_OK)
		return e;
	char *cookie = pool_alloc(req->pool, 256);
	if (cookie == NULL) {
		crypto_wipe(out.secret, sizeof(out.secret));
		return BW_ERR_NOMEM;
	}
	auth_cookie(http_req_config(req), out.secret, cookie, 256);
	crypto_wipe(out.secret, sizeof(out.secret));
	req->set_cookie = cookie;
	if ((e = response_header(req, "Location", out.next, 0)) == BW_OK)
		e = response_raw(req, 303, "text/plain", NULL, strdup(""), 0);
	return e;
}

const struct route saml_routes[] = {
	{HTTP_GET, "/api/v1/settings/sso", sso_get, ROUTE_ADMIN, "settings.view", ROUTE_BODY_NONE},
	{HTTP_PUT, "/api/v1/settings/sso", sso_put, ROUTE_ADMIN | ROUTE_DESTRUCTIVE, "settings.edit",
	 SAML_CONFIG_BODY_MAX},
	{HTTP_DELETE, "/api/v1/settings/sso", sso_delete, ROUTE_ADMIN | ROUTE_DESTRUCTIVE,
	 "settings.edit", ROUTE_BODY_NONE},
	{HTTP_GET, "/saml/metadata", saml_metadata, ROUTE_PUBLIC, NULL, ROUTE_BODY_NONE},
	{HTTP_GET, "/saml/login", saml_login, ROUTE_PUBLIC, NULL, ROUTE_BODY_NONE},
	{HTTP_POST, "/saml/acs", saml_acs_route, ROUTE_PUBLIC | ROUTE_CROSS_SITE, NULL,
	 SAML_ACS_BODY_MAX},
};

const size_t saml_routes_count = BW_ARRAY_LEN(saml_routes);
