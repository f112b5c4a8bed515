/*
 * saml xml: reading IdP metadata, certificates and the shape of a SAML
 * Response; writing the metadata lasso is built from. See xml.h.
 *
 * One reader parses every document: a size cap, XML_PARSE_NONET, no DTD
 * loaded and no entity substituted, and SAX hooks that stop the parser the
 * moment it meets a DOCTYPE, an entity declaration or reference or a
 * processing instruction, so that an entity bomb is never expanded, not
 * even once. The tree is then walked once more for anything but elements,
 * text, CDATA and comments. Walks are iterative: depth is libxml2's to
 * bound (256 without XML_PARSE_HUGE), never the C stack's.
 */
#include "xml.h"

#include <arpa/inet.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libxml/hash.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#define NS_EXC_C14N "http://www.w3.org/2001/10/xml-exc-c14n#"
#define ALG_ENVELOPED "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
#define XMLDSIG_MORE "http://www.w3.org/2001/04/xmldsig-more#"
#define XMLENC "http://www.w3.org/2001/04/xmlenc#"
#define PEM_BEGIN "-----BEGIN CERTIFICATE-----"
#define PEM_END "-----END CERTIFICATE-----"
#define XML_OUT_MAX (1024 * 1024) /* bytes of a metadata document written */

static const char *const sig_algs[] = {
    XMLDSIG_MORE "rsa-sha256",   XMLDSIG_MORE "rsa-sha384",   XMLDSIG_MORE "rsa-sha512",
    XMLDSIG_MORE "ecdsa-sha256", XMLDSIG_MORE "ecdsa-sha384", XMLDSIG_MORE "ecdsa-sha512",
};
static const char *const digest_algs[] = {
    XMLENC "sha256",
    XMLDSIG_MORE "sha384",
    XMLENC "sha512",
};

void
saml_xml_init(void)
{
	xmlInitParser();
}

/* --- reading ------------------------------------------------------------------ */

/*
 * SAX hooks. The context libxml2 hands them is the parser context; its
 * _private (never touched by libxml2) points at the flag they set.
 */
static void
xml_refuse(void *ctx)
{
	xmlParserCtxtPtr c = ctx;
	*(int *)c->_private = 1;
	xmlStopParser(c);
}

static void
xml_on_subset(void *ctx, const xmlChar *name, const xmlChar *ext_id, const xmlChar *sys_id)
{
	(void)name;
	(void)ext_id;
	(void)sys_id;
	xml_refuse(ctx);
}

static void
xml_on_entity_decl(void *ctx, const xmlChar *name, int type, const xmlChar *pub_id,
		   const xmlChar *sys_id, xmlChar *content)
{
	(void)name;
	(void)type;
	(void)pub_id;
	(void)sys_id;
	(void)content;
	xml_refuse(ctx);
}

/* Called only for an entity that is not one of the five predefined ones. */
static xmlEntityPtr
xml_on_get_entity(void *ctx, const xmlChar *name)
{
	(void)name;
	xml_refuse(ctx);
	return NULL;
}

static void
xml_on_reference(void *ctx, const xmlChar *name)
{
	(void)name;
	xml_refuse(ctx);
}

static void
xml_on_pi(void *ctx, const xmlChar *target, const xmlChar *data)
{
	(void)target;
	(void)data;
	xml_refuse(ctx);
}

/* The node after n in document order below top (children first); NULL at the end. */
static xmlNode *
xml_walk_next(xmlNode *n, const xmlNode *top)
{
	if (n->type == XML_ELEMENT_NODE && n->children != NULL)
		return n->children;
	while (n != NULL && n != top) {
		if (n->next != NULL)
			return n->next;
		n = n->parent;
	}
	return NULL;
}

/* Only elements, text, CDATA and comments, and attributes of one text each. */
static int
xml_plain(xmlDoc *doc)
{
	if (doc->intSubset != NULL || doc->extSubset != NULL)
		return 0;
	for (xmlNode *n = doc->children; n != NULL; n = xml_walk_next(n, (xmlNode *)doc)) {
		switch (n->type) {
		case XML_ELEMENT_NODE:
			for (xmlAttr *a = n->properties; a != NULL; a = a->next)
				if (a->children != NULL && (a->children->type != XML_TEXT_NODE ||
							    a->children->next != NULL))
					return 0;
			break;
		case XML_TEXT_NODE:
		case XML_CDATA_SECTION_NODE:
		case XML_COMMENT_NODE:
			break;
		default:
			return 0; /* entity references, PIs, DTD nodes, XInclude markers */
		}
	}
	return 1;
}

/*
 * Parse len bytes (at most max) into *out. BW_OK; BW_ERR_INVALID with *why
 * (too_big when over max); BW_ERR_NOMEM.
 */
static bw_err
xml_read(const char *xml, size_t len, size_t max, const char *too_big, xmlDoc **out,
	 const char **why)
{
	int refused = 0;
	*out = NULL;
	if (xml == NULL || len == 0) {
		*why = "the document is empty";
		return BW_ERR_INVALID;
	}
	if (len > max) {
		*why = too_big;
		return BW_ERR_INVALID;
	}
	xmlParserCtxtPtr c = xmlNewParserCtxt();
	if (c == NULL) {
		*why = "out of memory";
		return BW_ERR_NOMEM;
	}
	c->_private = &refused;
	c->sax->internalSubset = xml_on_subset;
	c->sax->externalSubset = xml_on_subset;
	c->sax->entityDecl = xml_on_entity_decl;
	c->sax->getEntity = xml_on_get_entity;
	c->sax->getParameterEntity = xml_on_get_entity;
	c->sax->reference = xml_on_reference;
	c->sax->processingInstruction = xml_on_pi;
	/* Not XML_PARSE_NOENT, DTDLOAD, DTDATTR, HUGE or XINCLUDE; blanks kept as the signer saw
	 * them. */
	xmlDoc *doc = xmlCtxtReadMemory(c, xml, (int)len, NULL, NULL,
					XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	bw_err e = BW_OK;
	if (refused) {
		*why = "a DOCTYPE, an entity or a processing instruction is not allowed";
		e = BW_ERR_INVALID;
	} else if (doc == NULL || !c->wellFormed || !c->nsWellFormed) {
		/* nsWellFormed: a prefix bound to nothing leaves an element of no namespace */
		e = c->errNo == XML_ERR_NO_MEMORY ? BW_ERR_NOMEM : BW_ERR_INVALID;
		*why = e == BW_ERR_NOMEM ? "out of memory" : "the document is not well-formed XML";
	} else if (!xml_plain(doc)) {
		*why = "a DOCTYPE, an entity or a processing instruction is not allowed";
		e = BW_ERR_INVALID;
	}
	if (e != BW_OK)
		xmlFreeDoc(doc);
	else
		*out = doc;
	xmlFreeParserCtxt(c);
	return e;
}

/* Whether n is the element {ns}name. */
static int
xml_is(const xmlNode *n, const char *ns, const char *name)
{
	return n != NULL && n->type == XML_ELEMENT_NODE && n->ns != NULL && n->ns->href != NULL &&
	       strcmp((const char *)n->ns->href, ns) == 0 &&
	       strcmp((const char *)n->name, name) == 0;
}

/* The first element at or after n among its siblings; NULL if none. */
static xmlNode *
xml_elem(xmlNode *n)
{
	while (n != NULL && n->type != XML_ELEMENT_NODE)
		n = n->next;
	return n;
}

static xmlNode *
xml_first(const xmlNode *n)
{
	return n != NULL ? xml_elem(n->children) : NULL;
}

static xmlNode *
xml_next(const xmlNode *n)
{
	return n != NULL ? xml_elem(n->next) : NULL;
}

/* The element before n among its siblings; NULL if none. */
static xmlNode *
xml_prev(const xmlNode *n)
{
	for (n = n->prev; n != NULL && n->type != XML_ELEMENT_NODE; n = n->prev)
		;
	return (xmlNode *)n;
}

/*
 * The value of n's attribute name without a namespace: "" when empty, NULL
 * when absent. Valid while the document is (xml_plain made every value one
 * text node).
 */
static const char *
xml_attr(const xmlNode *n, const char *name)
{
	for (const xmlAttr *a = n->properties; a != NULL; a = a->next)
		if (a->ns == NULL && strcmp((const char *)a->name, name) == 0)
			return a->children != NULL ? (const char *)a->children->content : "";
	return NULL;
}

/* Whether n holds nothing, or one text or CDATA node (no comment, no element). */
static int
xml_text_only(const xmlNode *n)
{
	const xmlNode *c = n->children;
	return c == NULL ||
	       (c->next == NULL && (c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE));
}

static int
xml_one_of(const char *s, const char *const *list, size_t n)
{
	for (size_t i = 0; s != NULL && i < n; i++)
		if (strcmp(s, list[i]) == 0)
			return 1;
	return 0;
}

/* Bytes 0x20..0x7e and UTF-8 (0x80..0xff) only, at most max of them, at least one. */
static int
xml_text_ok(const char *s, size_t max)
{
	size_t n = 0;
	if (s == NULL)
		return 0;
	for (; s[n] != '\0'; n++)
		if ((unsigned char)s[n] < 0x20 || s[n] == 0x7f || n >= max)
			return 0;
	return n > 0;
}

/* --- URLs --------------------------------------------------------------------- */

static int
url_is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* A DNS name: labels of letters, digits and inner hyphens, 1..63 each, 253 in all. */
static int
url_host_ok(const char *h, size_t n)
{
	size_t label = 0;
	if (n == 0 || n > 253)
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (h[i] == '.') {
			if (label == 0 || h[i - 1] == '-')
				return 0;
			label = 0;
		} else if (url_is_alnum(h[i]) || (h[i] == '-' && label > 0)) {
			if (++label > 63)
				return 0;
		} else {
			return 0;
		}
	}
	return label > 0 && h[n - 1] != '-';
}

int
saml_url_ok(const char *url)
{
	size_t n = url != NULL ? strnlen(url, SAML_URL_MAX + 1) : 0, i;
	int https;
	if (n == 0 || n > SAML_URL_MAX)
		return 0;
	for (i = 0; i < n; i++)
		if ((unsigned char)url[i] <= 0x20 || (unsigned char)url[i] >= 0x7f ||
		    url[i] == '#' || url[i] == '\\')
			return 0;
	if (strncasecmp(url, "https://", 8) == 0)
		https = 1;
	else if (strncasecmp(url, "http://", 7) == 0)
		https = 0;
	else
		return 0;
	const char *auth = url + (https ? 8 : 7);
	size_t alen = strcspn(auth, "/?");
	const char *host = auth, *port = NULL;
	size_t hlen = alen;
	if (memchr(auth, '@', alen) != NULL)
		return 0;
	if (alen > 0 && auth[0] == '[') {
		const char *close = memchr(auth, ']', alen);
		char v6[INET6_ADDRSTRLEN + 1];
		struct in6_addr a;
		if (close == NULL || (size_t)(close - auth - 1) >= sizeof(v6))
			return 0;
		memcpy(v6, auth + 1, (size_t)(close - auth - 1));
		v6[close - auth - 1] = '\0';
		if (inet_pton(AF_INET6, v6, &a) != 1)
			return 0;
		hlen = (size_t)(close - auth + 1);
		if (hlen < alen) {
			if (auth[hlen] != ':')
				return 0;
			port = auth + hlen + 1;
		}
	} else {
		const char *colon = memchr(auth, ':', alen);
		if (colon != NULL) {
			hlen = (size_t)(colon - auth);
			port = colon + 1;
		}
		if (!url_host_ok(host, hlen))
			return 0;
	}
	if (port != NULL) {
		size_t plen = (size_t)(auth + alen - port);
		long v = 0;
		if (plen == 0 || plen > 5 || port[0] == '0')
			return 0;
		for (i = 0; i < plen; i++) {
			if (port[i] < '0' || port[i] > '9')
				return 0;
			v = v * 10 + (port[i] - '0');
		}
		if (v < 1 || v > 65535)
			return 0;
	}
	if (!https && !((hlen == 9 && strncmp(host, "127.0.0.1", 9) == 0) ||
			(hlen == 5 && strncmp(host, "[::1]", 5) == 0) ||
			(hlen == 9 && strncasecmp(host, "localhost", 9) == 0)))
		return 0;
	return 1;
}

/* --- certificates ------------------------------------------------------------- */

static int
b64_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/*
 * Decode n characters of standard base64 (white space anywhere, padding
 * only at the end) into out (at least n / 4 * 3 bytes). 1, or 0 when they
 * are not base64 or decode to nothing.
 */
static int
b64_decode(const char *s, size_t n, unsigned char *out, size_t *outlen)
{
	unsigned acc = 0;
	size_t k = 0, pad = 0, o = 0;
	for (size_t i = 0; i < n; i++) {
		if (b64_space(s[i]))
			continue;
		if (s[i] == '=') {
			if (++pad > 2)
				return 0;
			k++;
			continue;
		}
		int v = util_b64_value((unsigned char)s[i]);
		if (v < 0 || pad > 0)
			return 0;
		acc = (acc << 6) | (unsigned)v;
		if (++k % 4 == 0) {
			out[o++] = (unsigned char)(acc >> 16);
			out[o++] = (unsigned char)(acc >> 8);
			out[o++] = (unsigned char)acc;
			acc = 0;
		}
	}
	if (k == 0 || k % 4 != 0)
		return 0;
	/* the last quantum: 4 - pad characters, acc holds 6 * (4 - pad) bits */
	if (pad == 2)
		out[o++] = (unsigned char)(acc >> 4);
	else if (pad == 1) {
		out[o++] = (unsigned char)(acc >> 10);
		out[o++] = (unsigned char)(acc >> 2);
	}
	*outlen = o;
	return o > 0;
}

/*
 * The DER of one certificate given as PEM or bare base64 into *der
 * (malloc'd). BW_OK; BW_ERR_INVALID with *why; BW_ERR_NOMEM.
 */
static bw_err
cert_der(const char *text, unsigned char **der, size_t *len, const char **why)
{
	*der = NULL;
	*len = 0;
	size_t n = text != NULL ? strnlen(text, SAML_XML_CERT_MAX + 1) : 0;
	if (n > SAML_XML_CERT_MAX) {
		*why = "the certificate is too long";
		return BW_ERR_INVALID;
	}
	const char *b = text, *e = text + n;
	while (b < e && b64_space(*b))
		b++;
	while (e > b && b64_space(e[-1]))
		e--;
	if (b == e) {
		*why = "the certificate is empty";
		return BW_ERR_INVALID;
	}
	if ((size_t)(e - b) >= sizeof(PEM_BEGIN) - 1 &&
	    memcmp(b, PEM_BEGIN, sizeof(PEM_BEGIN) - 1) == 0) {
		b += sizeof(PEM_BEGIN) - 1;
		if ((size_t)(e - b) < sizeof(PEM_END) - 1 ||
		    memcmp(e - (sizeof(PEM_END) - 1), PEM_END, sizeof(PEM_END) - 1) != 0) {
			*why = "the PEM must hold exactly one certificate, with nothing after it";
			return BW_ERR_INVALID;
		}
		e -= sizeof(PEM_END) - 1;
		if (memmem(b, (size_t)(e - b), "-----", 5) != NULL) {
			*why = "the PEM must hold exactly one certificate, with nothing after it";
			return BW_ERR_INVALID;
		}
	} else if (*b == '-') {
		*why = "the PEM is not a CERTIFICATE";
		return BW_ERR_INVALID;
	}
	unsigned char *out = malloc((size_t)(e - b) / 4 * 3 + 3);
	if (out == NULL) {
		*why = "out of memory";
		return BW_ERR_NOMEM;
	}
	if (!b64_decode(b, (size_t)(e - b), out, len)) {
		free(out);
		*why = "the certificate is not PEM or base64";
		return BW_ERR_INVALID;
	}
	*der = out;
	return BW_OK;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil). */
static int64_t
cert_days(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static bw_err
cert_facts(X509 *x, EVP_PKEY *k, struct saml_cert_info *info)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	struct tm tm;
	memset(info, 0, sizeof(*info));
	if (X509_digest(x, EVP_sha256(), md, &mdlen) != 1 || mdlen != 32)
		return BW_ERR_NOMEM;
	for (unsigned i = 0; i < mdlen; i++)
		snprintf(info->sha256 + 3 * i, sizeof(info->sha256) - 3 * i, "%02X%s", md[i],
			 i + 1 < mdlen ? ":" : "");
	BIO *bio = BIO_new(BIO_s_mem());
	if (bio == NULL)
		return BW_ERR_NOMEM;
	/* RFC 2253 with bytes over 0x7f escaped: one line of printable ASCII */
	if (X509_NAME_print_ex(bio, X509_get_subject_name(x), 0, XN_FLAG_RFC2253) >= 0) {
		char *p = NULL;
		long n = BIO_get_mem_data(bio, &p);
		size_t j = 0;
		for (long i = 0; p != NULL && i < n && j + 1 < sizeof(info->subject); i++)
			info->subject[j++] = p[i] >= 0x20 && p[i] < 0x7f ? p[i] : '?';
		info->subject[j] = '\0';
	}
	BIO_free(bio);
	if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) != 1)
		return BW_ERR_INVALID;
	info->not_after = cert_days((int64_t)tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday) * 86400 +
			  tm.tm_hour * 3600 + tm.tm_min * 60 + tm.tm_sec;
	info->key_bits = EVP_PKEY_get_bits(k);
	return BW_OK;
}

bw_err
saml_cert_normalize(const char *text, char **pem, struct saml_cert_info *info, const char **why)
{
	unsigned char *der = NULL;
	size_t len = 0;
	X509 *x = NULL;
	BIO *bio = NULL;
	struct saml_cert_info facts;
	if (pem != NULL)
		*pem = NULL;
	if (info != NULL)
		memset(info, 0, sizeof(*info));
	bw_err e = cert_der(text, &der, &len, why);
	if (e != BW_OK)
		return e;
	const unsigned char *p = der;
	e = BW_ERR_INVALID;
	if (len > LONG_MAX || (x = d2i_X509(NULL, &p, (long)len)) == NULL) {
		*why = "not an X.509 certificate";
		goto out;
	}
	if (p != der + len) {
		*why = "bytes after the certificate";
		goto out;
	}
	EVP_PKEY *k = X509_get0_pubkey(x);
	int bits = k != NULL ? EVP_PKEY_get_bits(k) : 0;
	switch (k != NULL ? EVP_PKEY_get_base_id(k) : EVP_PKEY_NONE) {
	case EVP_PKEY_RSA:
		if (bits < 2048) {
			*why = "the certificate's RSA key is shorter than 2048 bits";
			goto out;
		}
		break;
	case EVP_PKEY_EC:
		if (bits < 256) {
			*why = "the certificate's EC key is shorter than 256 bits";
			goto out;
		}
		break;
	case EVP_PKEY_DSA:
		*why = "the certificate's key is DSA: only RSA or EC keys are taken";
		goto out;
	default:
		*why = "the certificate's key is not RSA or EC";
		goto out;
	}
	if ((e = cert_facts(x, k, &facts)) != BW_OK) {
		*why =
		    e == BW_ERR_NOMEM ? "out of memory" : "the certificate's dates cannot be read";
		goto out;
	}
	if (pem != NULL) {
		char *data = NULL;
		long n;
		if ((bio = BIO_new(BIO_s_mem())) == NULL || PEM_write_bio_X509(bio, x) != 1 ||
		    (n = BIO_get_mem_data(bio, &data)) <= 0 ||
		    (*pem = malloc((size_t)n + 1)) == NULL) {
			e = BW_ERR_NOMEM;
			*why = "out of memory";
			goto out;
		}
		memcpy(*pem, data, (size_t)n);
		(*pem)[n] = '\0';
	}
	if (info != NULL)
		*info = facts;
	e = BW_OK;
out:
	BIO_free(bio);
	X509_free(x);
	free(der);
	return e;
}

/* --- IdP metadata ------------------------------------------------------------- */

void
saml_idp_free(struct saml_idp *m)
{
	if (m == NULL)
		return;
	for (size_t i = 0; i < m->ncerts && i < SAML_CERTS_MAX; i++)
		free(m->certs[i]);
	memset(m, 0, sizeof(*m));
}

/* Whether a protocolSupportEnumeration (URIs separated by white space) names SAML 2.0. */
static int
md_saml2(const char *list)
{
	const size_t n = sizeof(SAML_NS_PROTOCOL) - 1;
	for (const char *p = list; p != NULL && *p != '\0';) {
		p += strspn(p, " \t\r\n");
		size_t len = strcspn(p, " \t\r\n");
		if (len == n && memcmp(p, SAML_NS_PROTOCOL, n) == 0)
			return 1;
		p += len;
	}
	return 0;
}

/*
 * The IDPSSODescriptor for SAML 2.0 of an EntityDescriptor into *role
 * (NULL when it has none). BW_ERR_INVALID when it has two.
 */
static bw_err
md_idp_role(xmlNode *ed, xmlNode **role, const char **why)
{
	*role = NULL;
	for (xmlNode *r = xml_first(ed); r != NULL; r = xml_next(r)) {
		if (!xml_is(r, SAML_NS_METADATA, "IDPSSODescriptor") ||
		    !md_saml2(xml_attr(r, "protocolSupportEnumeration")))
			continue;
		if (*role != NULL) {
			*why = "the IdP has two IDPSSODescriptors for SAML 2.0";
			return BW_ERR_INVALID;
		}
		*role = r;
	}
	return BW_OK;
}

/* The one EntityDescriptor of the document that is a SAML 2.0 IdP, into *ed and *role. */
static bw_err
md_find_idp(xmlDoc *doc, xmlNode **ed, xmlNode **role, const char **why)
{
	xmlNode *root = xmlDocGetRootElement(doc), *r = NULL;
	bw_err e;
	*ed = *role = NULL;
	if (xml_is(root, SAML_NS_METADATA, "EntityDescriptor")) {
		if ((e = md_idp_role(root, &r, why)) != BW_OK)
			return e;
		if (r != NULL) {
			*ed = root;
			*role = r;
		}
	} else if (xml_is(root, SAML_NS_METADATA, "EntitiesDescriptor")) {
		xmlNode *n = root->children;
		while (n != NULL) {
			if (!xml_is(n, SAML_NS_METADATA, "EntityDescriptor")) {
				n = xml_walk_next(n, root);
				continue;
			}
			if ((e = md_idp_role(n, &r, why)) != BW_OK)
				return e;
			if (r != NULL && *ed != NULL) {
				*why =
				    "the metadata describes more than one IdP: give the metadata "
				    "of one";
				return BW_ERR_INVALID;
			}
			if (r != NULL) {
				*ed = n;
				*role = r;
			}
			/* not into the EntityDescriptor: on to what follows it */
			for (; n != NULL && n != root && n->next == NULL; n = n->parent)
				;
			n = n != NULL && n != root ? n->next : NULL;
		}
	} else {
		*why = "not SAML metadata: the root must be an md:EntityDescriptor or "
		       "md:EntitiesDescriptor";
		return BW_ERR_INVALID;
	}
	if (*ed == NULL) {
		*why = "the metadata describes no SAML 2.0 IdP (an IDPSSODescriptor)";
		return BW_ERR_INVALID;
	}
	return BW_OK;
}

/* The Location of the first service named name with the HTTP-Redirect binding, or NULL. */
static const char *
md_redirect(xmlNode *role, const char *name)
{
	for (xmlNode *s = xml_first(role); s != NULL; s = xml_next(s)) {
		const char *b = xml_attr(s, "Binding");
		if (xml_is(s, SAML_NS_METADATA, name) && b != NULL &&
		    strcmp(b, SAML_BINDING_REDIRECT) == 0)
			return xml_attr(s, "Location");
	}
	return NULL;
}

/* One X509Certificate's text, normalised, into out unless it is there already. */
static bw_err
md_add_cert(xmlNode *xc, struct saml_idp *out, const char **why)
{
	xmlChar *text = xmlNodeGetContent(xc);
	char *pem = NULL;
	if (text == NULL) {
		*why = "out of memory";
		return BW_ERR_NOMEM;
	}
	bw_err e = saml_cert_normalize((const char *)text, &pem, NULL, why);
	xmlFree(text);
	if (e != BW_OK)
		return e;
	for (size_t i = 0; i < out->ncerts; i++)
		if (strcmp(out->certs[i], pem) == 0) {
			free(pem);
			return BW_OK;
		}
	if (out->ncerts == SAML_CERTS_MAX) {
		free(pem);
		*why = "the IdP has more than 4 signing certificates";
		return BW_ERR_INVALID;
	}
	out->certs[out->ncerts++] = pem;
	return BW_OK;
}

/* The certificates of one KeyDescriptor: KeyInfo/X509Data/X509Certificate. */
static bw_err
md_key_certs(xmlNode *kd, struct saml_idp *out, const char **why)
{
	bw_err e;
	for (xmlNode *ki = xml_first(kd); ki != NULL; ki = xml_next(ki)) {
		if (!xml_is(ki, SAML_NS_DSIG, "KeyInfo"))
			continue;
		for (xmlNode *xd = xml_first(ki); xd != NULL; xd = xml_next(xd)) {
			if (!xml_is(xd, SAML_NS_DSIG, "X509Data"))
				continue;
			for (xmlNode *xc = xml_first(xd); xc != NULL; xc = xml_next(xc))
				if (xml_is(xc, SAML_NS_DSIG, "X509Certificate") &&
				    (e = md_add_cert(xc, out, why)) != BW_OK)
					return e;
		}
	}
	return BW_OK;
}

/* Every signing certificate of the role: KeyDescriptor use="signing" or without use. */
static bw_err
md_certs(xmlNode *role, struct saml_idp *out, const char **why)
{
	bw_err e;
	for (xmlNode *kd = xml_first(role); kd != NULL; kd = xml_next(kd)) {
		const char *use = xml_attr(kd, "use");
		if (xml_is(kd, SAML_NS_METADATA, "KeyDescriptor") &&
		    (use == NULL || strcmp(use, "signing") == 0) &&
		    (e = md_key_certs(kd, out, why)) != BW_OK)
			return e;
	}
	if (out->ncerts == 0) {
		*why =
		    "the IdP has no signing certificate (a KeyDescriptor with an X509Certificate)";
		return BW_ERR_INVALID;
	}
	return BW_OK;
}

bw_err
saml_idp_parse(const char *xml, size_t len, struct saml_idp *out, const char **why)
{
	xmlDoc *doc = NULL;
	xmlNode *ed, *role;
	memset(out, 0, sizeof(*out));
	bw_err e = xml_read(xml, len, SAML_XML_METADATA_MAX, "the metadata is larger than 1 MiB",
			    &doc, why);
	if (e != BW_OK)
		return e;
	if ((e = md_find_idp(doc, &ed, &role, why)) != BW_OK)
		goto out;
	e = BW_ERR_INVALID;
	const char *id = xml_attr(ed, "entityID"), *sso = md_redirect(role, "SingleSignOnService"),
		   *slo = md_redirect(role, "SingleLogoutService");
	if (!xml_text_ok(id, SAML_ENTITY_MAX)) {
		*why = "the IdP's entityID is missing, too long or has control characters";
		goto out;
	}
	if (sso == NULL) {
		*why = "the IdP has no SingleSignOnService with the HTTP-Redirect binding";
		goto out;
	}
	if (!saml_url_ok(sso)) {
		*why =
		    "the IdP's SingleSignOnService URL must be https (http only to this machine)";
		goto out;
	}
	if (slo != NULL && !saml_url_ok(slo)) {
		*why =
		    "the IdP's SingleLogoutService URL must be https (http only to this machine)";
		goto out;
	}
	if ((e = md_certs(role, out, why)) != BW_OK)
		goto out;
	snprintf(out->entity_id, sizeof(out->entity_id), "%s", id);
	snprintf(out->sso_url, sizeof(out->sso_url), "%s", sso);
	snprintf(out->slo_url, sizeof(out->slo_url), "%s", slo != NULL ? slo : "");
out:
	if (e != BW_OK)
		saml_idp_free(out);
	xmlFreeDoc(doc);
	return e;
}

/* --- writing metadata --------------------------------------------------------- */

/* A document being written: after the first failure every call does nothing. */
struct xw {
	struct buf b;
	bw_err e;
};

static void
xw_raw(struct xw *w, const char *s)
{
	if (w->e == BW_OK)
		w->e = buf_append_str(&w->b, s);
}

/* s escaped for an attribute value or text; BW_ERR_INVALID for a control character. */
static void
xw_esc(struct xw *w, const char *s)
{
	for (const char *p = s; w->e == BW_OK && *p != '\0'; p++) {
		const char *r = NULL;
		char ref[8];
		switch (*p) {
		case '&':
			r = "&amp;";
			break;
		case '<':
			r = "&lt;";
			break;
		case '>':
			r = "&gt;";
			break;
		case '"':
			r = "&quot;";
			break;
		case '\'':
			r = "&apos;";
			break;
		case '\t':
		case '\n':
		case '\r':
			snprintf(ref, sizeof(ref), "&#%d;", *p);
			r = ref;
			break;
		default:
			if ((unsigned char)*p < 0x20) {
				w->e = BW_ERR_INVALID;
				return;
			}
		}
		w->e = r != NULL ? buf_append_str(&w->b, r) : buf_append(&w->b, p, 1);
	}
}

/* A signing KeyDescriptor for a certificate (PEM or base64), its DER base64 on one line. */
static void
xw_key(struct xw *w, const char *cert)
{
	unsigned char *der = NULL;
	size_t len = 0;
	const char *why;
	if (w->e != BW_OK)
		return;
	if ((w->e = cert_der(cert, &der, &len, &why)) != BW_OK)
		return;
	char *b64 = malloc(len / 3 * 4 + 5);
	if (b64 == NULL) {
		free(der);
		w->e = BW_ERR_NOMEM;
		return;
	}
	EVP_EncodeBlock((unsigned char *)b64, der, (int)len);
	xw_raw(
	    w,
	    "    <md:KeyDescriptor use=\"signing\"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>");
	xw_raw(w, b64);
	xw_raw(w, "</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>\n");
	free(b64);
	free(der);
}

/* <md:NAME Binding="binding" Location="url" + rest */
static void
xw_service(struct xw *w, const char *name, const char *binding, const char *url, const char *rest)
{
	xw_raw(w, "    <md:");
	xw_raw(w, name);
	xw_raw(w, " Binding=\"");
	xw_raw(w, binding);
	xw_raw(w, "\" Location=\"");
	xw_esc(w, url);
	xw_raw(w, rest);
}

static void
xw_entity(struct xw *w, const char *entity_id, const char *role, const char *attrs)
{
	buf_init(&w->b, XML_OUT_MAX);
	w->e = BW_OK;
	xw_raw(w, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		  "<md:EntityDescriptor xmlns:md=\"" SAML_NS_METADATA "\" xmlns:ds=\"" SAML_NS_DSIG
		  "\" entityID=\"");
	xw_esc(w, entity_id);
	xw_raw(w, "\">\n  <md:");
	xw_raw(w, role);
	xw_raw(w, attrs);
	xw_raw(w, " protocolSupportEnumeration=\"" SAML_NS_PROTOCOL "\">\n");
}

/* The document, or NULL (everything freed) when a step failed. */
static char *
xw_end(struct xw *w, const char *role)
{
	char *out = NULL;
	xw_raw(w, "  </md:");
	xw_raw(w, role);
	xw_raw(w, ">\n</md:EntityDescriptor>\n");
	if (w->e != BW_OK || buf_take(&w->b, &out, NULL) != BW_OK)
		out = NULL;
	buf_free(&w->b);
	return out;
}

char *
saml_idp_xml(const struct saml_idp *idp)
{
	struct xw w;
	if (idp == NULL || idp->ncerts > SAML_CERTS_MAX)
		return NULL;
	xw_entity(&w, idp->entity_id, "IDPSSODescriptor", "");
	for (size_t i = 0; i < idp->ncerts; i++)
		xw_key(&w, idp->certs[i]);
	if (idp->slo_url[0] != '\0')
		xw_service(&w, "SingleLogoutService", SAML_BINDING_REDIRECT, idp->slo_url,
			   "\"/>\n");
	xw_service(&w, "SingleSignOnService", SAML_BINDING_REDIRECT, idp->sso_url, "\"/>\n");
	return xw_end(&w, "IDPSSODescriptor");
}

char *
saml_sp_xml(const char *entity_id, const char *acs_url, const char *slo_url, const char *cert_pem)
{
	struct xw w;
	if (entity_id == NULL || acs_url == NULL || cert_pem == NULL)
		return NULL;
	xw_entity(&w, entity_id, "SPSSODescriptor",
		  " AuthnRequestsSigned=\"true\" WantAssertionsSigned=\"true\"");
	xw_key(&w, cert_pem);
	if (slo_url != NULL && slo_url[0] != '\0')
		xw_service(&w, "SingleLogoutService", SAML_BINDING_REDIRECT, slo_url, "\"/>\n");
	xw_raw(&w, "    <md:NameIDFormat>" SAML_NAMEID_EMAIL "</md:NameIDFormat>\n");
	xw_service(&w, "AssertionConsumerService", SAML_BINDING_POST, acs_url,
		   "\" index=\"0\" isDefault=\"true\"/>\n");
	return xw_end(&w, "SPSSODescriptor");
}

/* --- the shape of a Response -------------------------------------------------- */

struct shape {
	xmlNode *root, *assertion;
	size_t assertions;
	xmlNode *sigs[2]; /* the Signatures in the Response or its child Assertion */
	size_t nsigs;
	xmlHashTablePtr ids;
	/* the first problem of each kind, or NULL */
	const char *structure, *algorithm, *name_id;
};

/* The first problem of a kind is the one reported. */
static void
shape_note(const char **slot, const char *why)
{
	if (*slot == NULL)
		*slot = why;
}

/* The element's ID-like attributes (ID, Id, id; any namespace) into the set of IDs. */
static bw_err
shape_ids(struct shape *s, const xmlNode *n)
{
	for (const xmlAttr *a = n->properties; a != NULL; a = a->next) {
		const char *name = (const char *)a->name;
		if (strcmp(name, "ID") != 0 && strcmp(name, "Id") != 0 && strcmp(name, "id") != 0)
			continue;
		const xmlChar *v = a->children != NULL ? a->children->content : BAD_CAST "";
		if (xmlHashLookup(s->ids, v) != NULL) {
			shape_note(&s->structure, "two elements have the same ID");
			continue;
		}
		if (xmlHashAddEntry(s->ids, v, (void *)s) != 0)
			return BW_ERR_NOMEM;
	}
	return BW_OK;
}

/* One element in document order: what may be anywhere, and what may not. */
static bw_err
shape_element(struct shape *s, xmlNode *n)
{
	if (xml_is(n, SAML_NS_ASSERTION, "Assertion")) {
		if (s->assertions++ == 0)
			s->assertion = n;
	} else if (xml_is(n, SAML_NS_ASSERTION, "EncryptedAssertion")) {
		shape_note(&s->structure, "an EncryptedAssertion is not accepted");
	} else if (xml_is(n, SAML_NS_DSIG, "Object")) {
		shape_note(&s->structure, "a ds:Object is not accepted");
	} else if (xml_is(n, SAML_NS_DSIG, "Signature")) {
		xmlNode *p = n->parent;
		if (p != s->root &&
		    !(xml_is(p, SAML_NS_ASSERTION, "Assertion") && p->parent == s->root))
			shape_note(&s->structure, "a Signature is somewhere other than directly in "
						  "the Response or the Assertion");
		else if (s->nsigs == BW_ARRAY_LEN(s->sigs))
			shape_note(&s->structure, "more than two Signatures");
		else
			s->sigs[s->nsigs++] = n;
	} else if (xml_is(n, SAML_NS_DSIG, "SignatureMethod")) {
		if (!xml_one_of(xml_attr(n, "Algorithm"), sig_algs, BW_ARRAY_LEN(sig_algs)))
			shape_note(&s->algorithm, "a SignatureMethod other than RSA or ECDSA with "
						  "SHA-256, SHA-384 or SHA-512");
	} else if (xml_is(n, SAML_NS_DSIG, "DigestMethod")) {
		if (!xml_one_of(xml_attr(n, "Algorithm"), digest_algs, BW_ARRAY_LEN(digest_algs)))
			shape_note(&s->algorithm,
				   "a DigestMethod other than SHA-256, SHA-384 or SHA-512");
	} else if (xml_is(n, SAML_NS_ASSERTION, "NameID") ||
		   xml_is(n, SAML_NS_ASSERTION, "AttributeValue")) {
		if (!xml_text_only(n))
			shape_note(&s->name_id, "a NameID or AttributeValue holds a comment or "
						"markup: only text is accepted");
	} else if (xml_is(n, SAML_NS_ASSERTION, "Issuer") ||
		   xml_is(n, SAML_NS_ASSERTION, "Audience")) {
		if (!xml_text_only(n))
			shape_note(&s->structure,
				   "an Issuer or Audience holds a comment or markup: only text");
	}
	return shape_ids(s, n);
}

/* An ID as SAML's xs:ID in ASCII: a letter or '_', then letters, digits, '_', '-', '.'. */
static int
shape_id_ok(const char *id)
{
	size_t n = id != NULL ? strnlen(id, SAML_ID_MAX + 1) : 0;
	if (n == 0 || n > SAML_ID_MAX ||
	    !((id[0] >= 'a' && id[0] <= 'z') || (id[0] >= 'A' && id[0] <= 'Z') || id[0] == '_'))
		return 0;
	for (size_t i = 1; i < n; i++)
		if (!url_is_alnum(id[i]) && id[i] != '_' && id[i] != '-' && id[i] != '.')
			return 0;
	return 1;
}

/* Children of a c14n method or transform: at most one ec:InclusiveNamespaces, empty. */
static int
shape_c14n_children(const xmlNode *m)
{
	xmlNode *c = xml_first(m);
	return c == NULL || (xml_is(c, NS_EXC_C14N, "InclusiveNamespaces") &&
			     xml_first(c) == NULL && xml_next(c) == NULL);
}

/* The Transforms of a Reference: enveloped-signature and exclusive c14n, each once at most. */
static const char *
shape_transforms(const xmlNode *ts)
{
	int enveloped = 0, c14n = 0;
	for (xmlNode *t = xml_first(ts); t != NULL; t = xml_next(t)) {
		const char *alg = xml_attr(t, "Algorithm");
		if (!xml_is(t, SAML_NS_DSIG, "Transform") || alg == NULL)
			return "Transforms holds something other than a Transform";
		int ok;
		if (strcmp(alg, ALG_ENVELOPED) == 0)
			ok = enveloped++ == 0 && xml_first(t) == NULL;
		else if (strcmp(alg, NS_EXC_C14N) == 0)
			ok = c14n++ == 0 && shape_c14n_children(t);
		else
			ok = 0;
		if (!ok)
			return "a Transform other than enveloped-signature and exclusive c14n, "
			       "once each";
	}
	return enveloped + c14n > 0 ? NULL : "Transforms is empty";
}

/*
 * One Signature of parent p: where it stands, and that it signs p and
 * nothing else. NULL, or what is wrong.
 */
static const char *
shape_signature(const struct shape *s, xmlNode *sig)
{
	xmlNode *p = sig->parent, *prev = xml_prev(sig);
	/*
	 * SAML's order: Issuer first, then the Signature. The Response's
	 * Issuer is optional: without one its Signature comes first.
	 */
	int placed = prev != NULL
			 ? xml_is(prev, SAML_NS_ASSERTION, "Issuer") && xml_prev(prev) == NULL
			 : p == s->root;
	for (xmlNode *o = xml_next(sig); placed && prev == NULL && o != NULL; o = xml_next(o))
		if (xml_is(o, SAML_NS_ASSERTION, "Issuer"))
			placed = 0;
	if (!placed)
		return "a Signature must come right after its parent's Issuer";
	xmlNode *si = xml_first(sig), *sv = xml_next(si), *ki = xml_next(sv);
	if (!xml_is(si, SAML_NS_DSIG, "SignedInfo") ||
	    !xml_is(sv, SAML_NS_DSIG, "SignatureValue") ||
	    (ki != NULL && (!xml_is(ki, SAML_NS_DSIG, "KeyInfo") || xml_next(ki) != NULL)))
		return "a Signature must hold SignedInfo, SignatureValue and at most KeyInfo";
	xmlNode *cm = xml_first(si), *sm = xml_next(cm), *ref = xml_next(sm);
	const char *c14n =
	    xml_is(cm, SAML_NS_DSIG, "CanonicalizationMethod") ? xml_attr(cm, "Algorithm") : NULL;
	if (c14n == NULL || strcmp(c14n, NS_EXC_C14N) != 0 || !shape_c14n_children(cm))
		return "the CanonicalizationMethod must be exclusive c14n without comments";
	if (!xml_is(sm, SAML_NS_DSIG, "SignatureMethod") || xml_first(sm) != NULL ||
	    !xml_is(ref, SAML_NS_DSIG, "Reference") || xml_next(ref) != NULL)
		return "SignedInfo must hold a CanonicalizationMethod, a SignatureMethod and "
		       "exactly "
		       "one Reference";
	const char *uri = xml_attr(ref, "URI"), *id = xml_attr(p, "ID");
	if (uri == NULL || id == NULL || id[0] == '\0' || uri[0] != '#' || strcmp(uri + 1, id) != 0)
		return "a Signature's Reference must be to its parent's ID";
	xmlNode *c = xml_first(ref);
	if (xml_is(c, SAML_NS_DSIG, "Transforms")) {
		const char *why = shape_transforms(c);
		if (why != NULL)
			return why;
		c = xml_next(c);
	}
	if (!xml_is(c, SAML_NS_DSIG, "DigestMethod") || xml_first(c) != NULL ||
	    !xml_is(xml_next(c), SAML_NS_DSIG, "DigestValue") || xml_next(xml_next(c)) != NULL)
		return "a Reference must hold Transforms, a DigestMethod and a DigestValue";
	return NULL;
}

/*
 * The top-level StatusCode of the Response: "" when the Response has no
 * samlp:Status/samlp:StatusCode with a Value.
 */
static const char *
shape_status(const xmlNode *root)
{
	for (xmlNode *n = xml_first(root); n != NULL; n = xml_next(n))
		if (xml_is(n, SAML_NS_PROTOCOL, "Status")) {
			xmlNode *c = xml_first(n);
			const char *v =
			    xml_is(c, SAML_NS_PROTOCOL, "StatusCode") ? xml_attr(c, "Value") : NULL;
			return v != NULL ? v : "";
		}
	return "";
}

/* The walk and the checks after it; BW_OK or BW_ERR_NOMEM (problems in s). */
static bw_err
shape_check(struct shape *s, struct saml_shape *out)
{
	bw_err e;
	for (xmlNode *n = s->root; n != NULL; n = xml_walk_next(n, s->root))
		if (n->type == XML_ELEMENT_NODE && (e = shape_element(s, n)) != BW_OK)
			return e;
	if (s->assertions != 1 || s->assertion->parent != s->root) {
		shape_note(&s->structure, s->assertions != 1
					      ? "a response must carry exactly one Assertion"
					      : "the Assertion must be a child of the Response");
		return BW_OK;
	}
	const char *rid = xml_attr(s->root, "ID"), *aid = xml_attr(s->assertion, "ID");
	if (!shape_id_ok(rid) || !shape_id_ok(aid)) {
		shape_note(&s->structure, "the Response and the Assertion need an ID (an NCName of "
					  "at most 256 ASCII characters)");
		return BW_OK;
	}
	snprintf(out->response_id, sizeof(out->response_id), "%s", rid);
	snprintf(out->assertion_id, sizeof(out->assertion_id), "%s", aid);
	for (size_t i = 0; i < s->nsigs; i++) {
		int *flag =
		    s->sigs[i]->parent == s->root ? &out->response_signed : &out->assertion_signed;
		if (*flag) {
			shape_note(&s->structure, "two Signatures in one element");
			return BW_OK;
		}
		*flag = 1;
		const char *why = shape_signature(s, s->sigs[i]);
		if (why != NULL) {
			shape_note(&s->structure, why);
			return BW_OK;
		}
	}
	return BW_OK;
}

bw_err
saml_response_shape(const char *xml, size_t len, struct saml_shape *out, const char **reason,
		    const char **why)
{
	xmlDoc *doc = NULL;
	struct shape s;
	memset(out, 0, sizeof(*out));
	memset(&s, 0, sizeof(s));
	*reason = "malformed";
	bw_err e = xml_read(xml, len, SAML_XML_RESPONSE_MAX, "the response is larger than 256 KiB",
			    &doc, why);
	if (e != BW_OK)
		return e;
	s.root = xmlDocGetRootElement(doc);
	if (!xml_is(s.root, SAML_NS_PROTOCOL, "Response")) {
		*why = "the document is not a samlp:Response";
		e = BW_ERR_INVALID;
		goto out;
	}
	/* A refusal carries no assertion: say what the IdP said, not that one is missing. */
	const char *status = shape_status(s.root);
	if (strcmp(status, SAML_STATUS_SUCCESS) != 0) {
		*reason = status[0] != '\0' ? "status" : "structure";
		*why = status[0] != '\0'
			   ? "the IdP did not sign the user in (its StatusCode is not Success)"
			   : "the response has no Status";
		e = BW_ERR_INVALID;
		goto out;
	}
	if ((s.ids = xmlHashCreate(64)) == NULL || (e = shape_check(&s, out)) != BW_OK) {
		e = BW_ERR_NOMEM;
		*why = "out of memory while reading the response";
		goto out;
	}
	e = BW_ERR_INVALID;
	if (s.structure != NULL) {
		*reason = "structure";
		*why = s.structure;
	} else if (s.algorithm != NULL) {
		*reason = "signature_algorithm";
		*why = s.algorithm;
	} else if (!out->response_signed && !out->assertion_signed) {
		*reason = "signature";
		*why = "neither the Response nor the Assertion is signed";
	} else if (s.name_id != NULL) {
		*reason = "name_id";
		*why = s.name_id;
	} else {
		e = BW_OK;
		*reason = NULL;
		*why = NULL;
	}
out:
	if (e != BW_OK)
		memset(out, 0, sizeof(*out));
	xmlHashFree(s.ids, NULL);
	xmlFreeDoc(doc);
	return e;
}
