/*
 * saml: SAML 2.0 single sign-on for staff (docs/saml.md). One IdP per
 * tenant, configured through the admin API; this server is the SP, with
 * lasso as the engine that parses messages and verifies their
 * signatures, and its own checks after lasso (xml.c for the shape of a
 * response, saml.c for what the verified assertion says). Operations take
 * the operation context, so the API and the CLI run the same code.
 */
#ifndef BW_SAML_H
#define BW_SAML_H

#include <jansson.h>
#include <stdint.h>

#include "../core/core.h"
#include "../op/op.h"

#define SAML_COOKIE "__Host-bulwark_saml"
#define SAML_REQUEST_SECONDS 600 /* an AuthnRequest is answerable this long */
#define SAML_SKEW_SECONDS 60     /* clocks of the IdP and this server may differ this much */
#define SAML_RESPONSE_MAX 262144 /* bytes of a decoded Response */
#define SAML_ORIGIN_MAX 320

struct auth_hasher;

/* lasso and libxml2, once, before any other call (bulwark serve). BW_OK or BW_ERR_INTERNAL. */
bw_err saml_init(void) BW_MUST_USE;
void saml_shutdown(void);

/* The tenant's public origin, https://<slug>.<base_domain>[:port], into out. */
void saml_origin(const struct op *op, char out[SAML_ORIGIN_MAX]);

/* The configuration as the admin API shows it (no private key), into *out. */
bw_err saml_config_show(struct op *op, json_t **out) BW_MUST_USE;
/*
 * Replace the configuration from in (docs/saml.md "Configuration"); the
 * IdP may be left out to keep the stored one; the SP's key is made on the
 * first call. Audited. BW_ERR_INVALID or BW_ERR_DENIED (a role the actor
 * may not grant), recorded, or the database's error.
 */
bw_err saml_config_put(struct op *op, json_t *in) BW_MUST_USE;
/* Remove the configuration and the SP key; audited. BW_ERR_NOTFOUND when there is none. */
bw_err saml_config_delete(struct op *op) BW_MUST_USE;
/*
 * Whether password sign-in is refused to a user of this address: "SSO
 * required" is on, SSO is enabled, the address's domain is allowed and
 * the user is not exempt. 1, 0, or -1 on a database error.
 */
int saml_password_refused(struct op *op, const char *email, int sso_exempt);

/* This SP's metadata (malloc'd). BW_ERR_NOTFOUND (recorded) when SSO is not configured. */
bw_err saml_sp_metadata(struct op *op, char **xml) BW_MUST_USE;
/*
 * Begin an SP-initiated sign-in: an AuthnRequest for the IdP, signed for
 * the HTTP-Redirect binding, kept for browser_hash (the SHA-256 hex of
 * the browser's SAML_COOKIE) until it is answered or expires; next is
 * the same-origin path to land on. The IdP URL into *url (malloc'd).
 * BW_ERR_NOTFOUND when SSO is off, BW_ERR_INVALID for next, recorded.
 */
bw_err saml_login_begin(struct op *op, const char *next, const char *browser_hash,
			char **url) BW_MUST_USE;

/* A sign-in through the ACS. */
struct saml_signin {
	int64_t user_id;
	char email[256];
	int created;            /* provisioned just now */
	char next[2048];        /* where to land: a same-origin path */
	char secret[48];        /* the new session's cookie value: wipe it */
	const char *reason;     /* on refusal: the reason code (static) */
};
/*
 * The Assertion Consumer Service: check the base64 SAMLResponse (every
 * check in docs/saml.md), find or provision the user and start a fresh
 * SSO session. browser_hash: as for saml_login_begin, or "" when the
 * browser sent no SAML cookie. Every outcome is an audit row. BW_OK with
 * out filled; BW_ERR_DENIED (recorded, out->reason set) on a refusal;
 * another error when the server cannot tell.
 */
bw_err saml_acs(struct op *op, struct auth_hasher *h, const char *response_b64,
		const char *relay_state, const char *browser_hash, struct saml_signin *out) BW_MUST_USE;

/* Whether s is a path of this origin to land on ("/", "/tickets?x=1"); never "//" or "/\". */
int saml_local_path(const char *s);

#endif
