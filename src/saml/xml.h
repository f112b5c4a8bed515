/*
 * saml xml: the XML that SAML single sign-on reads and writes (layer 1,
 * "saml xml"; no database, only core, libxml2 and OpenSSL).
 *
 *  - IdP metadata an administrator pastes in: its entity id, its SSO and
 *    SLO URLs for the HTTP-Redirect binding and its signing certificates.
 *  - Certificates given as PEM or bare base64 DER, normalised to one PEM
 *    and described (fingerprint, subject, expiry, key size).
 *  - The two metadata documents lasso is built from (this SP, the IdP).
 *  - The shape of a decoded SAML Response, checked on the raw XML before
 *    lasso reads it: what lasso verifies and what saml.c reads must be the
 *    one assertion, signed where SAML puts a signature (the defence against
 *    signature wrapping), with nothing in the NameID but text (the defence
 *    against comment injection).
 *
 * Every document is parsed the same way: at most a fixed size, without
 * network access, never loading a DTD and never substituting entities; a
 * document with a DOCTYPE, an entity reference or a processing instruction
 * is refused as soon as the parser meets it. Nothing here keeps state
 * between calls (saml_xml_init aside) or logs; the texts given back in
 * *why are static and safe to show to a client.
 */
#ifndef BW_SAML_XML_H
#define BW_SAML_XML_H

#include <stddef.h>
#include <stdint.h>

#include "../core/core.h"

#define SAML_CERTS_MAX 4
#define SAML_ENTITY_MAX 1024
#define SAML_URL_MAX 2048
#define SAML_ID_MAX 256
#define SAML_XML_METADATA_MAX (1024 * 1024) /* bytes of IdP metadata */
#define SAML_XML_RESPONSE_MAX (256 * 1024)  /* bytes of a decoded Response */
#define SAML_XML_CERT_MAX 65536             /* bytes of one certificate's text */

/* Namespaces, compared by URI, never by prefix. */
#define SAML_NS_PROTOCOL "urn:oasis:names:tc:SAML:2.0:protocol"
#define SAML_NS_ASSERTION "urn:oasis:names:tc:SAML:2.0:assertion"
#define SAML_NS_METADATA "urn:oasis:names:tc:SAML:2.0:metadata"
#define SAML_NS_DSIG "http://www.w3.org/2000/09/xmldsig#"
#define SAML_BINDING_REDIRECT "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
#define SAML_BINDING_POST "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
#define SAML_NAMEID_EMAIL "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
#define SAML_STATUS_SUCCESS "urn:oasis:names:tc:SAML:2.0:status:Success"

/*
 * libxml2's one-time set-up: call once before any other function here, at
 * start-up (bulwark serve, a test's main), before threads are started.
 */
void saml_xml_init(void);

/*
 * An IdP from its metadata: an md:EntityDescriptor with an IDPSSODescriptor
 * whose protocolSupportEnumeration names SAML 2.0, or an md:EntitiesDescriptor
 * holding exactly one such IdP.
 */
struct saml_idp {
	char entity_id[SAML_ENTITY_MAX + 1];
	char sso_url[SAML_URL_MAX + 1]; /* SingleSignOnService, HTTP-Redirect (required) */
	char slo_url[SAML_URL_MAX + 1]; /* SingleLogoutService, HTTP-Redirect, or "" */
	size_t ncerts;
	char *certs[SAML_CERTS_MAX]; /* PEM, malloc'd: KeyDescriptor use="signing" or no use */
};

/*
 * Read IdP metadata (at most SAML_XML_METADATA_MAX bytes) into *out. BW_OK;
 * BW_ERR_INVALID with *why naming what is wrong (not XML, no or two IdPs,
 * no HTTP-Redirect SSO service, a URL saml_url_ok refuses, no signing
 * certificate or more than SAML_CERTS_MAX, a certificate
 * saml_cert_normalize refuses); BW_ERR_NOMEM. On failure *out holds
 * nothing to free. The certificates are normalised, duplicates dropped.
 */
bw_err saml_idp_parse(const char *xml, size_t len, struct saml_idp *out,
		      const char **why) BW_MUST_USE;
/* Free the certificates of m and empty it; accepts NULL. */
void saml_idp_free(struct saml_idp *m);

/*
 * 1 when url may be an IdP's SSO or SLO URL: https://host[:port][/path][?query],
 * or http:// only to 127.0.0.1, [::1] or localhost (tests); at most
 * SAML_URL_MAX bytes of printable ASCII, no user-info, no fragment, no
 * backslash, a host of DNS labels or a bracketed IPv6 address, a port of
 * 1 to 65535. 0 otherwise (NULL too).
 */
int saml_url_ok(const char *url);

struct saml_cert_info {
	char sha256[96];   /* "AB:CD:..." of the DER */
	char subject[256]; /* one line, RFC 2253, printable ASCII (cut to fit) */
	int64_t not_after; /* unix time */
	int key_bits;      /* RSA modulus or EC curve size */
};

/*
 * One X.509 certificate as PEM or bare base64 DER (white space allowed,
 * at most SAML_XML_CERT_MAX bytes): *pem becomes its normalised PEM
 * (malloc'd) and *info its facts; either may be NULL when not wanted.
 * BW_ERR_INVALID with *why for anything else: not base64, not X.509,
 * bytes after the certificate, more than one certificate, a key that is
 * not RSA or EC (DSA, Ed25519), RSA under 2048 bits, EC under 256.
 * BW_ERR_NOMEM. On failure *pem is NULL.
 */
bw_err saml_cert_normalize(const char *text, char **pem, struct saml_cert_info *info,
			   const char **why) BW_MUST_USE;

/*
 * The metadata lasso is given, malloc'd, every value XML-escaped. NULL when
 * out of memory, or when a value cannot be carried by XML 1.0 (a control
 * character) or a certificate is not base64 DER or PEM.
 *
 * saml_idp_xml: an EntityDescriptor with an IDPSSODescriptor (SAML 2.0),
 * one signing KeyDescriptor a certificate, SingleLogoutService (when
 * slo_url is not "") and SingleSignOnService, both HTTP-Redirect;
 * saml_idp_parse reads it back to the same idp.
 *
 * saml_sp_xml: an EntityDescriptor with an SPSSODescriptor
 * AuthnRequestsSigned="true" WantAssertionsSigned="true" (SAML 2.0), a
 * signing KeyDescriptor with cert_pem, SingleLogoutService HTTP-Redirect
 * when slo_url is not "", NameIDFormat emailAddress and one
 * AssertionConsumerService, HTTP-POST, index 0, isDefault="true".
 */
char *saml_idp_xml(const struct saml_idp *idp);
char *saml_sp_xml(const char *entity_id, const char *acs_url, const char *slo_url,
		  const char *cert_pem);

/* The shape of a decoded Response, checked before and beside lasso. */
struct saml_shape {
	int response_signed, assertion_signed;
	char response_id[SAML_ID_MAX + 1], assertion_id[SAML_ID_MAX + 1];
};

/*
 * Check the shape of a decoded Response (at most SAML_XML_RESPONSE_MAX
 * bytes). BW_OK with *out filled; BW_ERR_INVALID with *reason, one of the
 * contract's reasons, and *why, client-safe text. The checks, the first
 * failing group giving the reason:
 *
 *  malformed            not well-formed, too big, a DOCTYPE, an entity
 *                       reference or processing instruction, the root not
 *                       samlp:Response.
 *  status               the Response's top-level StatusCode is not Success
 *                       (a refusal carries no assertion, so this comes
 *                       before the structure; unsigned, it is only a hint).
 *  structure            no samlp:Status/samlp:StatusCode; not exactly one
 *                       saml:Assertion in the document, or it is not a
 *                       child of the Response; an
 *                       EncryptedAssertion or ds:Object anywhere; two
 *                       attributes named ID, Id or id with one value; the
 *                       Response or the Assertion without an ID (or one
 *                       longer than SAML_ID_MAX or not an NCName of ASCII);
 *                       a ds:Signature anywhere but directly in the
 *                       Response or the Assertion right after its
 *                       saml:Issuer, or two in one; a Signature that is not
 *                       SignedInfo, SignatureValue and KeyInfo, whose
 *                       SignedInfo is not CanonicalizationMethod (exclusive
 *                       c14n without comments), SignatureMethod and one
 *                       Reference to "#" + its parent's ID, with Transforms
 *                       only enveloped-signature and exclusive c14n; markup
 *                       or a comment inside a saml:Issuer or saml:Audience.
 *  signature_algorithm  a SignatureMethod other than RSA or ECDSA with
 *                       SHA-256/384/512, or a DigestMethod other than
 *                       SHA-256/384/512 (SHA-1 is refused).
 *  signature            neither the Response nor the Assertion is signed.
 *  name_id              a saml:NameID or saml:AttributeValue holding anything
 *                       but one text (or CDATA) node: an element, a comment,
 *                       text split in two.
 *
 * BW_ERR_NOMEM when memory runs out; *reason is then "malformed" and *why
 * says so, so that a caller never reads NULL. *out is zeroed on failure.
 */
bw_err saml_response_shape(const char *xml, size_t len, struct saml_shape *out, const char **reason,
			   const char **why) BW_MUST_USE;

#endif
