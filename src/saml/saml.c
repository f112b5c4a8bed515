/*
 * SAML 2.0 single sign-on: the tenant's configuration, the SP's key,
 * AuthnRequests and the Assertion Consumer Service.
 *
 * lasso parses every message and verifies its signature against the one
 * IdP this tenant configured. It accepts things an SP must refuse, so
 * after it has spoken this file checks the verified assertion itself
 * (issuer, destination, recipient, audience, times, confirmation,
 * InResponseTo, replay, domain), and before it, xml.c checks the shape of
 * the document so that the one assertion lasso verified is the one read
 * (no wrapping). Each refusal has a reason code, is answered 403 and is
 * an audit row; docs/saml.md says what each defends against.
 */
#include "saml.h"

#include <lasso/lasso.h>
#include <lasso/xml/misc_text_node.h>
#include <lasso/xml/saml-2.0/samlp2_authn_request.h>
#include <lasso/xml/saml-2.0/samlp2_name_id_policy.h>
#include <lasso/xml/saml-2.0/samlp2_response.h>
#include <lasso/xml/saml-2.0/samlp2_status.h>
#include <lasso/xml/saml-2.0/samlp2_status_code.h>
#include <lasso/xml/saml-2.0/saml2_assertion.h>
#include <lasso/xml/saml-2.0/saml2_attribute.h>
#include <lasso/xml/saml-2.0/saml2_attribute_statement.h>
#include <lasso/xml/saml-2.0/saml2_attribute_value.h>
#include <lasso/xml/saml-2.0/saml2_audience_restriction.h>
#include <lasso/xml/saml-2.0/saml2_conditions.h>
#include <lasso/xml/saml-2.0/saml2_name_id.h>
#include <lasso/xml/saml-2.0/saml2_subject.h>
#include <lasso/xml/saml-2.0/saml2_subject_confirmation.h>
#include <lasso/xml/saml-2.0/saml2_subject_confirmation_data.h>
#include <ctype.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "../audit/audit.h"
#include "../auth/auth.h"
#include "../crypto/crypto.h"
#include "../notify/notify.h"
#include "../rbac/rbac.h"
#include "../tenancy/tenancy.h"
#include "../users/users.h"
#include "xml.h"

#define SAML_DOMAINS_MAX 50
#define SAML_GROUPS_MAX 100
#define SAML_ATTR_MAX 256
#define SAML_GROUP_VALUES_MAX 200
#define SAML_BEARER "urn:oasis:names:tc:SAML:2.0:cm:bearer"
#define SAML_SUCCESS "urn:oasis:names:tc:SAML:2.0:status:Success"

static int64_t
saml_now(void)
{
	return (int64_t)time(NULL);
}

/* lasso's own messages: at debug level, for they can quote a message. */
static void
saml_lasso_log(const gchar *domain, GLogLevelFlags level, const gchar *msg, gpointer data)
{
	(void)domain, (void)level, (void)data;
	log_debug("lasso: %s", msg);
}

bw_err
saml_init(void)
{
	saml_xml_init();
	if (lasso_init() != 0)
		return BW_ERR_INTERNAL;
	g_log_set_handler("Lasso", G_LOG_LEVEL_MASK | G_LOG_FLAG_FATAL | G_LOG_FLAG_RECURSION,
			  saml_lasso_log, NULL);
	return BW_OK;
}

static void saml_servers_forget(const char *slug);

void
saml_shutdown(void)
{
	saml_servers_forget(NULL);
	lasso_shutdown();
}

void
saml_origin(const struct op *op, char out[SAML_ORIGIN_MAX])
{
	long port = op->cfg->public_port ? op->cfg->public_port : op->cfg->port;
	if (port == 443)
		snprintf(out, SAML_ORIGIN_MAX, "https://%s.%s", op->tn.slug, op->cfg->base_domain);
	else
		snprintf(out, SAML_ORIGIN_MAX, "https://%s.%s:%ld", op->tn.slug, op->cfg->base_domain,
			 port);
}

/* The SP's URLs, from the origin. */
struct saml_urls {
	char origin[SAML_ORIGIN_MAX];
	char entity[SAML_ORIGIN_MAX + 32], acs[SAML_ORIGIN_MAX + 32], login[SAML_ORIGIN_MAX + 32];
};

static void
saml_urls(const struct op *op, struct saml_urls *u)
{
	saml_origin(op, u->origin);
	snprintf(u->entity, sizeof(u->entity), "%s/saml/metadata", u->origin);
	snprintf(u->acs, sizeof(u->acs), "%s/saml/acs", u->origin);
	snprintf(u->login, sizeof(u->login), "%s/saml/login", u->origin);
}

int
saml_local_path(const char *s)
{
	if (s == NULL || s[0] != '/' || s[1] == '/' || s[1] == '\\' || strlen(s) > 2000)
		return 0;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x21 || *p >= 0x7f || *p == '\\')
			return 0; /* no spaces, controls or back slashes: ASCII paths only */
	return 1;
}

/* --- the stored configuration ----------------------------------------------- */

struct saml_cfg {
	int have, enabled;
	char *sp_key, *sp_cert; /* PEM */
	struct saml_idp idp;
	json_t *settings;
	int64_t created_at;
};

static void
saml_cfg_clear(struct saml_cfg *c)
{
	if (c->sp_key != NULL) {
		crypto_wipe(c->sp_key, strlen(c->sp_key));
		free(c->sp_key);
	}
	free(c->sp_cert);
	saml_idp_free(&c->idp);
	json_decref(c->settings);
	memset(c, 0, sizeof(*c));
}

/* The certificates of a sealed JSON array into idp. */
static bw_err
saml_certs_from_json(const char *text, struct saml_idp *idp)
{
	json_t *a = json_loads(text, 0, NULL), *v;
	size_t i;
	bw_err e = json_is_array(a) && json_array_size(a) <= SAML_CERTS_MAX ? BW_OK : BW_ERR_CRYPTO;
	json_array_foreach(a, i, v)
	{
		if (e != BW_OK || !json_is_string(v))
			break;
		if ((idp->certs[idp->ncerts] = strdup(json_string_value(v))) == NULL)
			e = BW_ERR_NOMEM;
		else
			idp->ncerts++;
	}
	json_decref(a);
	return e;
}

static bw_err
saml_cfg_load(struct op *op, struct saml_cfg *c)
{
	db_stmt *s;
	int row = 0;
	memset(c, 0, sizeof(*c));
	bw_err e = op_db(op, &op->d);
	if (e != BW_OK)
		return e;
	if ((e = db_prepare_cached(op->d,
				   "SELECT enabled, sp_key, sp_cert, idp_entity_id, idp_sso_url,"
				   " idp_slo_url, idp_certs, settings, created_at FROM saml_config"
				   " WHERE id = 1",
				   &s)) != BW_OK)
		return e;
	if ((e = db_step(s, &row)) == BW_OK && row) {
		size_t kn = 0, cn = 0, n;
		const void *k = db_col_blob(s, 1, &kn), *cp = db_col_blob(s, 6, &cn);
		char *certs = NULL;
		c->have = 1;
		c->enabled = db_col_int(s, 0) != 0;
		c->created_at = db_col_int(s, 8);
		snprintf(c->idp.entity_id, sizeof(c->idp.entity_id), "%s", db_col_text(s, 3));
		snprintf(c->idp.sso_url, sizeof(c->idp.sso_url), "%s", db_col_text(s, 4));
		snprintf(c->idp.slo_url, sizeof(c->idp.slo_url), "%s", db_col_text(s, 5));
		c->settings = json_loads(db_col_text(s, 7), 0, NULL);
		c->sp_cert = strdup(db_col_text(s, 2));
		if (c->settings == NULL || c->sp_cert == NULL || k == NULL || cp == NULL)
			e = BW_ERR_CRYPTO;
		if (e == BW_OK)
			e = field_open(op->ten, op->tn.slug, "saml_config", "sp_key", 1, k, kn, &c->sp_key,
				       &n);
		if (e == BW_OK &&
		    (e = field_open(op->ten, op->tn.slug, "saml_config", "idp_certs", 1, cp, cn, &certs,
				    &n)) == BW_OK)
			e = saml_certs_from_json(certs, &c->idp);
		free(certs);
	}
	db_done(s);
	if (e != BW_OK)
		saml_cfg_clear(c);
	return e;
}

/* A setting's string member, or NULL when it is null or absent. */
static const char *
saml_set_str(const struct saml_cfg *c, const char *a, const char *b)
{
	json_t *o = json_object_get(c->settings, a);
	return json_string_value(b != NULL ? json_object_get(o, b) : o);
}

static int
saml_set_bool(const struct saml_cfg *c, const char *name)
{
	return json_is_true(json_object_get(c->settings, name));
}

/* --- the SP's key and certificate --------------------------------------------- */

/* What a memory BIO holds, as a NUL-terminated malloc'd string (NULL when out of memory). */
static char *
saml_bio_text(BIO *b)
{
	char *p;
	long n = BIO_get_mem_data(b, &p);
	char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
	if (s != NULL) {
		memcpy(s, p, (size_t)n);
		s[n] = '\0';
	}
	return s;
}

/* A new RSA-3072 key and a self-signed certificate for it (ten years), as PEM. */
static bw_err
saml_sp_keypair(const char *cn, char **key_pem, char **cert_pem)
{
	EVP_PKEY *k = EVP_RSA_gen(3072);
	X509 *x = X509_new();
	BIO *kb = BIO_new(BIO_s_secmem()), *cb = BIO_new(BIO_s_mem());
	unsigned char serial[16];
	bw_err e = BW_ERR_CRYPTO;
	*key_pem = *cert_pem = NULL;
	if (k == NULL || x == NULL || kb == NULL || cb == NULL ||
	    util_random(serial, sizeof(serial)) != BW_OK)
		goto out;
	serial[0] &= 0x7f;
	BIGNUM *bn = BN_bin2bn(serial, sizeof(serial), NULL);
	ASN1_INTEGER *sn = bn != NULL ? BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) : NULL;
	BN_free(bn);
	X509_NAME *name = X509_get_subject_name(x);
	if (sn == NULL || X509_set_version(x, 2) != 1 ||
	    X509_gmtime_adj(X509_getm_notBefore(x), -3600) == NULL ||
	    X509_gmtime_adj(X509_getm_notAfter(x), 3650L * 86400) == NULL ||
	    X509_set_pubkey(x, k) != 1 ||
	    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1,
				       0) != 1 ||
	    X509_set_issuer_name(x, name) != 1 || X509_sign(x, k, EVP_sha256()) <= 0 ||
	    PEM_write_bio_PrivateKey(kb, k, NULL, NULL, 0, NULL, NULL) != 1 ||
	    PEM_write_bio_X509(cb, x) != 1)
		goto out;
	if ((*key_pem = saml_bio_text(kb)) == NULL || (*cert_pem = saml_bio_text(cb)) == NULL)
		goto out;
	e = BW_OK;
out:
	if (e != BW_OK) {
		if (*key_pem != NULL)
			crypto_wipe(*key_pem, strlen(*key_pem));
		free(*key_pem);
		free(*cert_pem);
		*key_pem = *cert_pem = NULL;
	}
	BIO_free(kb); /* a secure-memory BIO: its buffer is wiped when freed */
	BIO_free(cb);
	X509_free(x);
	EVP_PKEY_free(k);
	return e;
}

/* --- showing and changing the configuration ----------------------------------- */

static json_t *
saml_certs_json(const struct saml_idp *idp)
{
	json_t *a = json_array();
	for (size_t i = 0; a != NULL && i < idp->ncerts; i++) {
		struct saml_cert_info info;
		char *pem = NULL;
		const char *why;
		char t[UTIL_TIME_LEN];
		if (saml_cert_normalize(idp->certs[i], &pem, &info, &why) != BW_OK) {
			json_array_append_new(a, json_pack("{s:s}", "error", why));
			continue;
		}
		free(pem);
		json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:i}", "sha256", info.sha256,
						   "subject", info.subject, "not_after",
						   util_time_rfc3339(info.not_after, t), "key_bits",
						   info.key_bits));
	}
	return a;
}

static json_t *
saml_sp_json(const struct op *op, const struct saml_cfg *c)
{
	struct saml_urls u;
	saml_urls(op, &u);
	return json_pack("{s:s, s:s, s:s, s:s, s:s?}", "entity_id", u.entity, "acs_url", u.acs,
			 "metadata_url", u.entity, "login_url", u.login, "certificate",
			 c != NULL ? c->sp_cert : NULL);
}

bw_err
saml_config_show(struct op *op, json_t **out)
{
	struct saml_cfg c;
	*out = NULL;
	bw_err e = saml_cfg_load(op, &c);
	if (e != BW_OK)
		return e;
	json_t *o;
	if (!c.have) {
		o = json_pack("{s:b, s:b, s:o}", "configured", 0, "enabled", 0, "sp",
			      saml_sp_json(op, NULL));
	} else {
		o = json_deep_copy(c.settings);
		if (o != NULL) {
			json_object_set_new(o, "configured", json_true());
			json_object_set_new(o, "enabled", json_boolean(c.enabled));
			json_object_set_new(o, "sp", saml_sp_json(op, &c));
			json_object_set_new(o, "idp",
					    json_pack("{s:s, s:s, s:s, s:o}", "entity_id",
						      c.idp.entity_id, "sso_url", c.idp.sso_url,
						      "slo_url", c.idp.slo_url, "certificates",
						      saml_certs_json(&c.idp)));
		}
	}
	saml_cfg_clear(&c);
	*out = o;
	return o != NULL ? BW_OK : BW_ERR_NOMEM;
}

/* A domain as allowed_domains takes it: ASCII (A-labels), lower case, with a dot. */
static int
saml_domain_ok(const char *d)
{
	size_t n = strlen(d), label = 0;
	int dot = 0;
	if (n == 0 || n > 253 || d[0] == '.' || d[n - 1] == '.')
		return 0;
	for (size_t i = 0; i < n; i++) {
		char ch = d[i];
		if (ch == '.') {
			if (label == 0 || d[i - 1] == '-')
				return 0;
			dot = 1;
			label = 0;
			continue;
		}
		if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-') ||
		    (label == 0 && ch == '-') || ++label > 63)
			return 0;
	}
	return dot;
}

/* A printable string of 1..max bytes (no control characters). */
static int
saml_text_ok(json_t *v, size_t max)
{
	const char *s = json_string_value(v);
	if (s == NULL || s[0] == '\0' || strlen(s) > max)
		return 0;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return 0;
	return 1;
}

/* One role name the actor may grant; its canonical name into the array out. */
static bw_err
saml_role_ok(struct op *op, json_t *name, const char *field)
{
	int64_t ids[RBAC_ROLES_PER_USER];
	size_t n;
	if (!saml_text_ok(name, 100))
		return op_fail(op, BW_ERR_INVALID,
			       pool_printf(op->pool, "%s: a role name", field));
	json_t *one = json_pack("[O]", name);
	bw_err e = one != NULL ? rbac_resolve_roles(op, one, ids, &n) : BW_ERR_NOMEM;
	json_decref(one);
	return e;
}

/*
 * The settings of in, checked, as stored (a new object into *out); the
 * IdP is read by saml_idp_from.
 */
static bw_err
saml_settings_from(struct op *op, json_t *in, json_t **out)
{
	static const char *const known[] = {
	    "enabled", "idp_metadata", "idp_entity_id", "idp_sso_url", "idp_slo_url",
	    "idp_certificates", "allowed_domains", "attributes", "group_roles", "jit",
	    "default_role", "sso_required", "idp_initiated", NULL};
	const char *key;
	json_t *v;
	*out = NULL;
	if (!json_is_object(in))
		return op_fail(op, BW_ERR_INVALID, "the body must be a JSON object");
	bw_err e = op_known_fields(op, in, known);
	if (e != BW_OK)
		return e;
	static const char *const flags[] = {"enabled", "jit", "sso_required", "idp_initiated"};
	for (size_t i = 0; i < BW_ARRAY_LEN(flags); i++) {
		v = json_object_get(in, flags[i]);
		if (v != NULL && !json_is_boolean(v))
			return op_fail(op, BW_ERR_INVALID,
				       pool_printf(op->pool, "%s must be true or false", flags[i]));
	}
	json_t *doms = json_object_get(in, "allowed_domains");
	if (!json_is_array(doms) || json_array_size(doms) == 0 ||
	    json_array_size(doms) > SAML_DOMAINS_MAX)
		return op_fail(op, BW_ERR_INVALID,
			       pool_printf(op->pool,
					   "allowed_domains: an array of 1 to %d domains (the e-mail "
					   "domains this IdP may sign in)",
					   SAML_DOMAINS_MAX));
	json_t *s = json_object(), *list = json_array(), *attrs = json_object(),
	       *groups = json_object();
	e = s && list && attrs && groups ? BW_OK : BW_ERR_NOMEM;
	size_t i;
	json_array_foreach(doms, i, v)
	{
		char low[256];
		const char *d = json_string_value(v);
		if (e != BW_OK)
			break;
		if (d == NULL || strlen(d) >= sizeof(low)) {
			e = op_fail(op, BW_ERR_INVALID,
				    pool_printf(op->pool, "allowed_domains[%zu]: a domain name", i));
			break;
		}
		for (size_t k = 0; (low[k] = (char)tolower((unsigned char)d[k])) != '\0'; k++)
			;
		if (!saml_domain_ok(low)) {
			e = op_fail(op, BW_ERR_INVALID,
				    pool_printf(op->pool,
						"allowed_domains[%zu]: '%.64s' is not a domain name "
						"(ASCII, punycode for international names)",
						i, d));
			break;
		}
		json_t *dup;
		size_t k;
		int seen = 0;
		json_array_foreach(list, k, dup) seen |= strcmp(json_string_value(dup), low) == 0;
		if (!seen)
			json_array_append_new(list, json_string(low));
	}
	json_t *a = json_object_get(in, "attributes");
	if (e == BW_OK && a != NULL && !json_is_object(a))
		e = op_fail(op, BW_ERR_INVALID, "attributes: an object {email, name, groups}");
	static const char *const anames[] = {"email", "name", "groups"};
	for (size_t k = 0; e == BW_OK && k < BW_ARRAY_LEN(anames); k++) {
		json_t *x = json_object_get(a, anames[k]);
		if (x != NULL && !json_is_null(x) && !saml_text_ok(x, SAML_ATTR_MAX))
			e = op_fail(op, BW_ERR_INVALID,
				    pool_printf(op->pool,
						"attributes.%s: null or the attribute's Name (at most "
						"%d bytes)",
						anames[k], SAML_ATTR_MAX));
		else
			json_object_set_new(attrs, anames[k], x != NULL ? json_copy(x) : json_null());
	}
	if (e == BW_OK && a != NULL)
		json_object_foreach(a, key, v)
		{
			if (strcmp(key, "email") && strcmp(key, "name") && strcmp(key, "groups")) {
				e = op_fail(op, BW_ERR_INVALID,
					    pool_printf(op->pool, "attributes: unknown member '%.64s'",
							key));
				break;
			}
		}
	json_t *g = json_object_get(in, "group_roles");
	if (e == BW_OK && g != NULL && (!json_is_object(g) || json_object_size(g) > SAML_GROUPS_MAX))
		e = op_fail(op, BW_ERR_INVALID,
			    pool_printf(op->pool,
					"group_roles: an object of at most %d group: role name",
					SAML_GROUPS_MAX));
	if (e == BW_OK && g != NULL)
		json_object_foreach(g, key, v)
		{
			if (key[0] == '\0' || strlen(key) > SAML_ATTR_MAX) {
				e = op_fail(op, BW_ERR_INVALID, "group_roles: a group of 1 to 256 bytes");
				break;
			}
			if ((e = saml_role_ok(op, v, "group_roles")) != BW_OK)
				break;
			json_object_set_new(groups, key, json_copy(v));
		}
	json_t *dr = json_object_get(in, "default_role");
	if (dr == NULL)
		dr = json_string("staff");
	else
		json_incref(dr);
	if (e == BW_OK)
		e = saml_role_ok(op, dr, "default_role");
	if (e == BW_OK) {
		json_object_set(s, "allowed_domains", list);
		json_object_set(s, "attributes", attrs);
		json_object_set(s, "group_roles", groups);
		json_object_set_new(s, "jit", json_boolean(json_is_true(json_object_get(in, "jit"))));
		json_object_set(s, "default_role", dr);
		json_object_set_new(s, "sso_required",
				    json_boolean(json_is_true(json_object_get(in, "sso_required"))));
		json_object_set_new(s, "idp_initiated",
				    json_boolean(json_is_true(json_object_get(in, "idp_initiated"))));
	}
	json_decref(dr);
	json_decref(list);
	json_decref(attrs);
	json_decref(groups);
	if (e != BW_OK) {
		json_decref(s);
		return e;
	}
	*out = s;
	return BW_OK;
}

/*
 * The IdP of in: from its metadata, or from its parts. BW_OK with *given
 * 0 when in names no IdP at all (the stored one stays).
 */
static bw_err
saml_idp_from(struct op *op, json_t *in, struct saml_idp *idp, int *given)
{
	const char *why = NULL;
	json_t *md = json_object_get(in, "idp_metadata"), *ent = json_object_get(in, "idp_entity_id"),
	       *sso = json_object_get(in, "idp_sso_url"), *slo = json_object_get(in, "idp_slo_url"),
	       *certs = json_object_get(in, "idp_certificates");
	memset(idp, 0, sizeof(*idp));
	*given = md != NULL || ent != NULL || sso != NULL || certs != NULL || slo != NULL;
	if (!*given)
		return BW_OK;
	if (md != NULL) {
		if (ent != NULL || sso != NULL || certs != NULL || slo != NULL)
			return op_fail(op, BW_ERR_INVALID,
				       "give the IdP either as idp_metadata or as idp_entity_id, "
				       "idp_sso_url and idp_certificates, not both");
		const char *x = json_string_value(md);
		if (x == NULL || saml_idp_parse(x, strlen(x), idp, &why) != BW_OK)
			return op_fail(op, BW_ERR_INVALID,
				       pool_printf(op->pool, "idp_metadata: %s",
						   x == NULL ? "the metadata XML as a string" : why));
	} else {
		if (!saml_text_ok(ent, SAML_ENTITY_MAX) || !json_is_string(sso) ||
		    !json_is_array(certs) || json_array_size(certs) == 0 ||
		    json_array_size(certs) > SAML_CERTS_MAX)
			return op_fail(op, BW_ERR_INVALID,
				       pool_printf(op->pool,
						   "the IdP needs idp_entity_id, idp_sso_url and "
						   "idp_certificates (1 to %d, PEM or base64)",
						   SAML_CERTS_MAX));
		snprintf(idp->entity_id, sizeof(idp->entity_id), "%s", json_string_value(ent));
		if (strlen(json_string_value(sso)) > SAML_URL_MAX ||
		    (slo != NULL && (!json_is_string(slo) || strlen(json_string_value(slo)) > SAML_URL_MAX)))
			return op_fail(op, BW_ERR_INVALID, "an IdP URL is too long");
		snprintf(idp->sso_url, sizeof(idp->sso_url), "%s", json_string_value(sso));
		snprintf(idp->slo_url, sizeof(idp->slo_url), "%s",
			 slo != NULL ? json_string_value(slo) : "");
		size_t i;
		json_t *v;
		json_array_foreach(certs, i, v)
		{
			struct saml_cert_info info;
			char *pem = NULL;
			if (!json_is_string(v) ||
			    saml_cert_normalize(json_string_value(v), &pem, &info, &why) != BW_OK) {
				saml_idp_free(idp);
				return op_fail(op, BW_ERR_INVALID,
					       pool_printf(op->pool, "idp_certificates[%zu]: %s", i,
							   json_is_string(v) ? why : "a string"));
			}
			idp->certs[idp->ncerts++] = pem;
		}
	}
	if (!saml_url_ok(idp->sso_url) || (idp->slo_url[0] != '\0' && !saml_url_ok(idp->slo_url))) {
		saml_idp_free(idp);
		return op_fail(op, BW_ERR_INVALID,
			       "the IdP's URLs must be https (http only to this machine, for tests)");
	}
	/* Each certificate normalised once more: what lasso is given is what was checked. */
	for (size_t i = 0; i < idp->ncerts; i++) {
		struct saml_cert_info info;
		char *pem = NULL;
		if (saml_cert_normalize(idp->certs[i], &pem, &info, &why) != BW_OK) {
			saml_idp_free(idp);
			return op_fail(op, BW_ERR_INVALID,
				       pool_printf(op->pool, "the IdP's certificate %zu: %s", i + 1, why));
		}
		free(idp->certs[i]);
		idp->certs[i] = pem;
	}
	return BW_OK;
}

/* What the audit row shows of a configuration: no key, certificates by fingerprint. */
static json_t *
saml_audit_json(const json_t *settings, int enabled, const struct saml_idp *idp)
{
	json_t *o = json_deep_copy(settings);
	if (o == NULL)
		return NULL;
	json_object_set_new(o, "enabled", json_boolean(enabled));
	json_object_set_new(o, "idp_entity_id", json_string(idp->entity_id));
	json_object_set_new(o, "idp_sso_url", json_string(idp->sso_url));
	json_object_set_new(o, "idp_certificates", saml_certs_json(idp));
	return o;
}

struct saml_put {
	json_t *settings;
	int enabled;
	struct saml_idp idp; /* the IdP to store */
	int idp_given;
	char *sp_key, *sp_cert; /* made for a first configuration */
};

static bw_err
saml_seal_update(struct op *op, const char *column, const char *value)
{
	unsigned char *sealed = NULL;
	size_t n = 0;
	bw_err e = field_seal(op->ten, &op->tn, "saml_config", column, 1, value, strlen(value),
			      &sealed, &n);
	if (e == BW_OK)
		e = db_run(op->d,
			   strcmp(column, "sp_key") == 0
			       ? "UPDATE saml_config SET sp_key = ? WHERE id = 1"
			       : "UPDATE saml_config SET idp_certs = ? WHERE id = 1",
			   DB_ARGS(DB_BLOB(sealed, n)));
	free(sealed);
	return e;
}

static bw_err
saml_put_tx(struct op *op, void *arg)
{
	struct saml_put *p = arg;
	struct saml_cfg old;
	bw_err e = saml_cfg_load(op, &old);
	if (e != BW_OK)
		return e;
	if (!old.have && !p->idp_given) {
		saml_cfg_clear(&old);
		return op_fail(op, BW_ERR_INVALID,
			       "the first configuration needs the IdP: idp_metadata, or "
			       "idp_entity_id, idp_sso_url and idp_certificates");
	}
	const struct saml_idp *idp = p->idp_given ? &p->idp : &old.idp;
	json_t *certs = json_array();
	for (size_t i = 0; certs != NULL && i < idp->ncerts; i++)
		json_array_append_new(certs, json_string(idp->certs[i]));
	char *certs_text = certs != NULL ? json_dumps(certs, JSON_COMPACT) : NULL;
	char *settings_text = json_dumps(p->settings, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(certs);
	int64_t now = saml_now();
	if (certs_text == NULL || settings_text == NULL)
		e = BW_ERR_NOMEM;
	else if (!old.have)
		/* The sealed columns are written once the row exists: their AAD names row 1. */
		e = DB_RUN(op->d,
			   "INSERT INTO saml_config (id, enabled, sp_key, sp_cert, idp_entity_id,"
			   " idp_sso_url, idp_slo_url, idp_certs, settings, created_at, updated_at)"
			   " VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
			   DB_INT(p->enabled), DB_BLOB("", 0), DB_TEXT(p->sp_cert),
			   DB_TEXT(idp->entity_id), DB_TEXT(idp->sso_url), DB_TEXT(idp->slo_url),
			   DB_BLOB("", 0), DB_TEXT(settings_text), DB_INT(now), DB_INT(now));
	else
		e = DB_RUN(op->d,
			   "UPDATE saml_config SET enabled = ?, idp_entity_id = ?, idp_sso_url = ?,"
			   " idp_slo_url = ?, settings = ?, updated_at = ? WHERE id = 1",
			   DB_INT(p->enabled), DB_TEXT(idp->entity_id), DB_TEXT(idp->sso_url),
			   DB_TEXT(idp->slo_url), DB_TEXT(settings_text), DB_INT(now));
	if (e == BW_OK && !old.have)
		e = saml_seal_update(op, "sp_key", p->sp_key);
	if (e == BW_OK)
		e = saml_seal_update(op, "idp_certs", certs_text);
	if (e == BW_OK) {
		json_t *before = old.have ? saml_audit_json(old.settings, old.enabled, &old.idp) : NULL;
		json_t *after = saml_audit_json(p->settings, p->enabled, idp);
		e = after != NULL ? audit_op(op, "sso", 1, old.have ? "update" : "create", before, after)
				  : BW_ERR_NOMEM;
		json_decref(before);
		json_decref(after);
	}
	free(certs_text);
	free(settings_text);
	saml_cfg_clear(&old);
	return e;
}

/*
 * Whoever sets up single sign-on chooses who may sign in as anyone the
 * allowed domains cover, admins included, without their password or
 * TOTP: so only someone who could grant every permission ("*": an admin,
 * through a session or a token scoped "*") may change or remove it.
 */
static bw_err
saml_may_configure(struct op *op)
{
	return rbac_may_grant_all(op, "single sign-on decides who may sign in as anyone in the "
				      "allowed domains: only someone who holds every permission "
				      "(\"*\") may set it up or remove it");
}

bw_err
saml_config_put(struct op *op, json_t *in)
{
	struct saml_put p = {0};
	bw_err e = saml_may_configure(op);
	if (e != BW_OK)
		return e;
	e = saml_settings_from(op, in, &p.settings);
	if (e != BW_OK)
		return e;
	json_t *en = json_object_get(in, "enabled");
	p.enabled = en == NULL || json_is_true(en);
	if ((e = saml_idp_from(op, in, &p.idp, &p.idp_given)) != BW_OK)
		goto out;
	/* The SP's key, made outside the transaction (it takes a while) when there is none yet. */
	int64_t have = 0;
	if ((e = op_db(op, &op->d)) != BW_OK ||
	    (e = DB_QUERY_INT(op->d, &have, "SELECT COUNT(*) FROM saml_config WHERE id = ?",
			      DB_INT(1))) != BW_OK)
		goto out;
	if (!have) {
		char cn[64];
		snprintf(cn, sizeof(cn), "bulwark SAML SP %.40s", op->tn.slug);
		if ((e = saml_sp_keypair(cn, &p.sp_key, &p.sp_cert)) != BW_OK)
			goto out;
	}
	e = op_tx(op, saml_put_tx, &p);
	if (e == BW_OK)
		saml_servers_forget(op->tn.slug);
out:
	json_decref(p.settings);
	saml_idp_free(&p.idp);
	if (p.sp_key != NULL)
		crypto_wipe(p.sp_key, strlen(p.sp_key));
	free(p.sp_key);
	free(p.sp_cert);
	return e;
}

static bw_err
saml_delete_tx(struct op *op, void *arg)
{
	(void)arg;
	struct saml_cfg old;
	bw_err e = saml_cfg_load(op, &old);
	if (e != BW_OK)
		return e;
	if (!old.have)
		return op_fail(op, BW_ERR_NOTFOUND, "single sign-on is not configured");
	json_t *before = saml_audit_json(old.settings, old.enabled, &old.idp);
	if ((e = DB_RUN(op->d, "DELETE FROM saml_config WHERE id = ?", DB_INT(1))) == BW_OK &&
	    (e = DB_RUN(op->d, "DELETE FROM saml_requests WHERE expires_at >= ?", DB_INT(0))) == BW_OK)
		e = before != NULL ? audit_op(op, "sso", 1, "delete", before, NULL) : BW_ERR_NOMEM;
	json_decref(before);
	saml_cfg_clear(&old);
	return e;
}

bw_err
saml_config_delete(struct op *op)
{
	bw_err e = saml_may_configure(op);
	if (e != BW_OK)
		return e;
	e = op_tx(op, saml_delete_tx, NULL);
	if (e == BW_OK)
		saml_servers_forget(op->tn.slug); /* and with it the SP's key, from memory */
	return e;
}

/* The part after the last '@', lower-cased into out; 0 when there is none. */
static int
saml_email_domain(const char *email, char *out, size_t cap)
{
	const char *at = strrchr(email, '@');
	if (at == NULL || at[1] == '\0' || strlen(at + 1) >= cap)
		return 0;
	size_t k = 0;
	for (const char *p = at + 1; *p; p++)
		out[k++] = (char)tolower((unsigned char)*p);
	out[k] = '\0';
	return 1;
}

static int
saml_domain_allowed(const struct saml_cfg *c, const char *email)
{
	char dom[256];
	json_t *v;
	size_t i;
	if (!saml_email_domain(email, dom, sizeof(dom)))
		return 0;
	json_array_foreach(json_object_get(c->settings, "allowed_domains"), i, v)
	{
		if (strcmp(json_string_value(v), dom) == 0)
			return 1;
	}
	return 0;
}

int
saml_password_refused(struct op *op, const char *email, int sso_exempt)
{
	struct saml_cfg c;
	if (saml_cfg_load(op, &c) != BW_OK)
		return -1;
	int r = c.have && c.enabled && saml_set_bool(&c, "sso_required") && !sso_exempt &&
		saml_domain_allowed(&c, email);
	saml_cfg_clear(&c);
	return r;
}

/* --- lasso ----------------------------------------------------------------- */

/*
 * lasso's servers, kept. Making a LassoServer costs far more than using
 * one: xmlsec's keys manager reads the system's whole CA bundle into an
 * X509 store each time (X509_STORE_set_default_paths), about 130 ms of
 * CPU on a release build, on a route anyone may call. So each tenant's
 * server is made once and kept, under a digest of everything it was made
 * from (the SP's metadata and key, the IdP's metadata): a changed
 * configuration, here or in another process, makes a new one on its next
 * use. lasso promises nothing about threads, so every use of lasso (and of
 * the objects it hands out) is one at a time, under saml_lasso_lock; a
 * sign-in holds it for the parsing and checking only, never over the
 * database. Servers idle for an hour, or pushed out by SAML_SERVERS
 * busier ones, are let go.
 */
#define SAML_SERVERS 128
#define SAML_SERVER_IDLE_SECONDS 3600

static pthread_mutex_t saml_lasso_lock = PTHREAD_MUTEX_INITIALIZER;
static struct saml_kept {
	char slug[TENANT_SLUG_MAX + 1];
	unsigned char digest[32];
	LassoServer *srv; /* NULL: a free slot */
	int64_t used;
} saml_kept[SAML_SERVERS];

static void
saml_kept_drop(struct saml_kept *k)
{
	if (k->srv != NULL)
		g_object_unref(k->srv);
	memset(k, 0, sizeof(*k));
}

/* Let go of slug's kept server (NULL: all of them). */
static void
saml_servers_forget(const char *slug)
{
	pthread_mutex_lock(&saml_lasso_lock);
	for (size_t i = 0; i < SAML_SERVERS; i++)
		if (saml_kept[i].srv != NULL && (slug == NULL || strcmp(saml_kept[i].slug, slug) == 0))
			saml_kept_drop(&saml_kept[i]);
	pthread_mutex_unlock(&saml_lasso_lock);
}

static bw_err
saml_server_make(const struct op *op, const char *sp, const char *key, const char *idp,
		 LassoServer **out)
{
	/*
	 * No certificate beside the key: the Redirect binding signs the query,
	 * which carries no KeyInfo, and lasso would hand the PEM to xmlsec's
	 * file loader first, which leaks a BIO when the "file" does not open.
	 */
	LassoServer *s = lasso_server_new_from_buffers(sp, key, NULL, NULL);
	*out = NULL;
	if (s == NULL) {
		log_warn("tenant %s: lasso refused the SP's metadata or key", op->tn.slug);
		return BW_ERR_INTERNAL;
	}
	s->signature_method = LASSO_SIGNATURE_METHOD_RSA_SHA256;
	if (lasso_server_add_provider_from_buffer(s, LASSO_PROVIDER_ROLE_IDP, idp, NULL, NULL) != 0) {
		log_warn("tenant %s: lasso refused the IdP's metadata", op->tn.slug);
		g_object_unref(s);
		return BW_ERR_INTERNAL;
	}
	*out = s;
	return BW_OK;
}

/* The kept server of slug with digest, or the slot to put one in (*hit says which). */
static struct saml_kept *
saml_kept_find(const char *slug, const unsigned char digest[32], int64_t now, int *hit)
{
	struct saml_kept *slot = NULL, *lru = NULL;
	for (size_t i = 0; i < SAML_SERVERS; i++) {
		struct saml_kept *k = &saml_kept[i];
		if (k->srv != NULL && k->used + SAML_SERVER_IDLE_SECONDS < now)
			saml_kept_drop(k);
		if (k->srv == NULL) {
			if (lru == NULL || lru->srv != NULL)
				lru = k; /* a free slot before any kept one */
		} else if (strcmp(k->slug, slug) == 0) {
			slot = k;
		} else if (lru == NULL || (lru->srv != NULL && k->used < lru->used)) {
			lru = k;
		}
	}
	*hit = slot != NULL && crypto_equal(slot->digest, digest, 32);
	return slot != NULL ? slot : lru;
}

/*
 * The lasso server of this SP and its one IdP, kept or made, borrowed (not
 * to be unref'd). On BW_OK the caller holds saml_lasso_lock and uses the
 * server under it; on an error the lock is not held. A server is made
 * outside the lock, so that making one (the slow part) holds up no other
 * tenant's sign-in.
 */
static bw_err
saml_server(const struct op *op, const struct saml_cfg *c, LassoServer **out)
{
	struct saml_urls u;
	saml_urls(op, &u);
	*out = NULL;
	char *sp = saml_sp_xml(u.entity, u.acs, "", c->sp_cert), *idp = saml_idp_xml(&c->idp);
	bw_err e = BW_ERR_NOMEM;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char digest[32];
	unsigned int dn = 0;
	LassoServer *made = NULL;
	int hit = 0;
	if (sp == NULL || idp == NULL || md == NULL)
		goto out;
	/* Each part with its length, so that no two configurations run together alike. */
	e = BW_ERR_CRYPTO;
	const char *parts[] = {sp, c->sp_key, idp};
	if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
		goto out;
	for (size_t i = 0; i < 3; i++) {
		uint64_t n = strlen(parts[i]);
		if (EVP_DigestUpdate(md, &n, sizeof(n)) != 1 ||
		    EVP_DigestUpdate(md, parts[i], n) != 1)
			goto out;
	}
	if (EVP_DigestFinal_ex(md, digest, &dn) != 1 || dn != sizeof(digest))
		goto out;
	pthread_mutex_lock(&saml_lasso_lock);
	struct saml_kept *slot = saml_kept_find(op->tn.slug, digest, saml_now(), &hit);
	if (!hit) {
		pthread_mutex_unlock(&saml_lasso_lock);
		if ((e = saml_server_make(op, sp, c->sp_key, idp, &made)) != BW_OK)
			goto out;
		pthread_mutex_lock(&saml_lasso_lock);
		/* Looked for again: another sign-in may have kept one meanwhile. */
		slot = saml_kept_find(op->tn.slug, digest, saml_now(), &hit);
		if (!hit) {
			saml_kept_drop(slot); /* this tenant's old one, a free slot, or the least used */
			slot->srv = made;
			made = NULL;
			snprintf(slot->slug, sizeof(slot->slug), "%s", op->tn.slug);
			memcpy(slot->digest, digest, sizeof(digest));
		}
	}
	slot->used = saml_now();
	*out = slot->srv;
	e = BW_OK;
out:
	if (made != NULL)
		g_object_unref(made); /* another was kept first (lasso's own objects, no lock needed) */
	EVP_MD_CTX_free(md);
	sodium_memzero(digest, sizeof(digest));
	free(sp);
	free(idp);
	return e;
}

bw_err
saml_sp_metadata(struct op *op, char **xml)
{
	struct saml_cfg c;
	struct saml_urls u;
	*xml = NULL;
	bw_err e = saml_cfg_load(op, &c);
	if (e != BW_OK)
		return e;
	if (!c.have) {
		saml_cfg_clear(&c);
		return op_fail(op, BW_ERR_NOTFOUND, "single sign-on is not set up for this organisation");
	}
	saml_urls(op, &u);
	*xml = saml_sp_xml(u.entity, u.acs, "", c.sp_cert);
	saml_cfg_clear(&c);
	return *xml != NULL ? BW_OK : BW_ERR_NOMEM;
}

bw_err
saml_login_begin(struct op *op, const char *next, const char *browser_hash, char **url)
{
	struct saml_cfg c;
	LassoServer *srv = NULL;
	LassoLogin *login = NULL;
	char id[65] = ""; /* the request id: saml_requests.request_id takes 64 */
	*url = NULL;
	if (next == NULL || next[0] == '\0')
		next = "/";
	if (!saml_local_path(next))
		return op_fail(op, BW_ERR_INVALID, "next: a path on this site (\"/tickets\")");
	bw_err e = saml_cfg_load(op, &c);
	if (e != BW_OK)
		return e;
	if (!c.have || !c.enabled) {
		saml_cfg_clear(&c);
		return op_fail(op, BW_ERR_NOTFOUND, "single sign-on is not set up for this organisation");
	}
	if ((e = saml_server(op, &c, &srv)) != BW_OK) /* the lock held from here when BW_OK */
		goto out;
	e = BW_ERR_INTERNAL;
	if ((login = lasso_login_new(srv)) == NULL ||
	    lasso_login_init_authn_request(login, c.idp.entity_id, LASSO_HTTP_METHOD_REDIRECT) != 0)
		goto unlock;
	LassoProfile *prof = LASSO_PROFILE(login);
	LassoSamlp2AuthnRequest *req = LASSO_SAMLP2_AUTHN_REQUEST(prof->request);
	const char *email_attr = saml_set_str(&c, "attributes", "email");
	if (req->NameIDPolicy != NULL) {
		g_free(req->NameIDPolicy->Format);
		req->NameIDPolicy->Format = g_strdup(email_attr == NULL
							 ? LASSO_SAML2_NAME_IDENTIFIER_FORMAT_EMAIL
							 : LASSO_SAML2_NAME_IDENTIFIER_FORMAT_UNSPECIFIED);
		req->NameIDPolicy->AllowCreate = TRUE;
	}
	g_free(req->ProtocolBinding);
	req->ProtocolBinding = g_strdup(LASSO_SAML2_METADATA_BINDING_POST);
	struct saml_urls u;
	saml_urls(op, &u);
	g_free(req->AssertionConsumerServiceURL);
	req->AssertionConsumerServiceURL = g_strdup(u.acs);
	g_free(prof->msg_relayState);
	prof->msg_relayState = g_strdup(next);
	if (lasso_login_build_authn_request_msg(login) != 0 || prof->msg_url == NULL)
		goto unlock;
	const char *rid = LASSO_SAMLP2_REQUEST_ABSTRACT(req)->ID;
	if (rid == NULL || strlen(rid) >= sizeof(id))
		goto unlock;
	snprintf(id, sizeof(id), "%s", rid);
	*url = strdup(prof->msg_url);
	e = *url != NULL ? BW_OK : BW_ERR_NOMEM;
unlock:
	if (login != NULL)
		g_object_unref(login);
	pthread_mutex_unlock(&saml_lasso_lock);
	if (e == BW_ERR_INTERNAL)
		log_error("tenant %s: lasso could not make an AuthnRequest", op->tn.slug);
	if (e != BW_OK)
		goto out;
	int64_t now = saml_now();
	/* Requests answered or not, once expired, go; a browser's new one is kept. */
	if ((e = op_db(op, &op->d)) != BW_OK ||
	    (e = DB_RUN(op->d, "DELETE FROM saml_requests WHERE expires_at < ?", DB_INT(now))) != BW_OK ||
	    (e = DB_RUN(op->d,
			"INSERT INTO saml_requests (request_id, browser_hash, next_path, created_at,"
			" expires_at) VALUES (?, ?, ?, ?, ?)",
			DB_TEXT(id), DB_TEXT(browser_hash), DB_TEXT(next), DB_INT(now),
			DB_INT(now + SAML_REQUEST_SECONDS))) != BW_OK) {
		free(*url);
		*url = NULL;
	}
out:
	saml_cfg_clear(&c);
	return e;
}

/* --- the ACS ------------------------------------------------------------------ */

/* What a response says, once checked; borrowed from lasso's objects. */
struct saml_said {
	const char *in_response_to; /* or NULL */
	const char *assertion_id;
	const char *name_id;
	int64_t not_on_or_after; /* the earliest end of validity */
	char email[256];
	char name[201];
	json_t *groups; /* of strings */
};

/* A SAML time (xs:dateTime in UTC) into *t; 0 when it is not one. */
static int
saml_time(const char *s, int64_t *t)
{
	return s != NULL && util_parse_rfc3339(s, t) == BW_OK;
}

/* The text of an AttributeValue: its one text child, or NULL. */
static const char *
saml_value_text(LassoSaml2AttributeValue *v)
{
	if (v == NULL || !LASSO_IS_SAML2_ATTRIBUTE_VALUE(v) || v->any == NULL ||
	    v->any->next != NULL || !LASSO_IS_MISC_TEXT_NODE(v->any->data))
		return NULL;
	LassoMiscTextNode *t = v->any->data;
	return t->text_child ? t->content : NULL;
}

/* Every value of the attribute named name, into a (strings); the first also into *first. */
static void
saml_attribute(LassoSaml2Assertion *a, const char *name, json_t *all, const char **first)
{
	*first = NULL;
	for (GList *st = a->AttributeStatement; st != NULL; st = st->next) {
		if (!LASSO_IS_SAML2_ATTRIBUTE_STATEMENT(st->data))
			continue;
		LassoSaml2AttributeStatement *s = st->data;
		for (GList *at = s->Attribute; at != NULL; at = at->next) {
			if (!LASSO_IS_SAML2_ATTRIBUTE(at->data))
				continue;
			LassoSaml2Attribute *attr = at->data;
			if (attr->Name == NULL || strcmp(attr->Name, name) != 0)
				continue;
			for (GList *v = attr->AttributeValue; v != NULL; v = v->next) {
				const char *t = saml_value_text(v->data);
				if (t == NULL)
					continue;
				if (*first == NULL)
					*first = t;
				if (all != NULL && json_array_size(all) < SAML_GROUP_VALUES_MAX)
					json_array_append_new(all, json_string(t));
			}
		}
	}
}

static const char *
saml_lasso_reason(int rc)
{
	switch (rc) {
	case LASSO_PROFILE_ERROR_STATUS_NOT_SUCCESS:
	case LASSO_LOGIN_ERROR_STATUS_NOT_SUCCESS:
	case LASSO_LOGIN_ERROR_REQUEST_DENIED:
		return "status";
	case LASSO_SERVER_ERROR_PROVIDER_NOT_FOUND:
	case LASSO_PROFILE_ERROR_MISSING_ISSUER:
	case LASSO_PROFILE_ERROR_UNKNOWN_PROVIDER:
		return "issuer";
	case LASSO_PROFILE_ERROR_INVALID_MSG:
	case LASSO_PROFILE_ERROR_INVALID_POST_MSG:
	case LASSO_PROFILE_ERROR_MISSING_RESPONSE:
		return "malformed";
	default:
		return "signature";
	}
}

/*
 * Check what the verified response says; BW_OK, or BW_ERR_DENIED with
 * *reason and *why. Reads only the one assertion the shape check found.
 */
/* Whether the asserted address is key but for ASCII upper case. */
static int
saml_plain_form(const char *asserted, const char *key)
{
	size_t n = strlen(asserted);
	if (n != strlen(key))
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char a = (unsigned char)asserted[i];
		if ((a >= 'A' && a <= 'Z' ? (unsigned char)(a + 32) : a) != (unsigned char)key[i])
			return 0;
	}
	return 1;
}

static bw_err
saml_check(const struct op *op, const struct saml_cfg *c, LassoLogin *login,
	   const struct saml_shape *shape, struct saml_said *said, const char **reason,
	   const char **why)
{
	struct saml_urls u;
	saml_urls(op, &u);
	int64_t now = saml_now(), t;
	LassoProfile *prof = LASSO_PROFILE(login);
#define REFUSE(r, w)                                                                               \
	do {                                                                                       \
		*reason = (r);                                                                     \
		*why = (w);                                                                        \
		return BW_ERR_DENIED;                                                              \
	} while (0)
	if (prof->response == NULL || !LASSO_IS_SAMLP2_RESPONSE(prof->response))
		REFUSE("malformed", "not a SAML 2.0 Response");
	LassoSamlp2Response *resp = LASSO_SAMLP2_RESPONSE(prof->response);
	LassoSamlp2StatusResponse *sr = LASSO_SAMLP2_STATUS_RESPONSE(resp);
	if (sr->Status == NULL || sr->Status->StatusCode == NULL ||
	    sr->Status->StatusCode->Value == NULL ||
	    strcmp(sr->Status->StatusCode->Value, SAML_SUCCESS) != 0)
		REFUSE("status", "the IdP did not sign the user in");
	if (resp->EncryptedAssertion != NULL || resp->Assertion == NULL || resp->Assertion->next != NULL)
		REFUSE("structure", "a response must carry exactly one assertion");
	LassoSaml2Assertion *a = resp->Assertion->data;
	if (!LASSO_IS_SAML2_ASSERTION(a) || a->ID == NULL || strcmp(a->ID, shape->assertion_id) != 0)
		REFUSE("structure", "the assertion read is not the one whose shape was checked");
	/*
	 * lasso has verified every signature there is (its return code said so);
	 * signature_status speaks only of the response's own, and reads "not
	 * found" when the assertion alone is signed. A signed response whose
	 * status is not 0 is refused all the same.
	 */
	if (shape->response_signed && prof->signature_status != 0)
		REFUSE("signature", "the signature does not verify");
	if (sr->Issuer != NULL &&
	    (sr->Issuer->content == NULL || strcmp(sr->Issuer->content, c->idp.entity_id) != 0))
		REFUSE("issuer", "the response's Issuer is not the configured IdP");
	if (a->Issuer == NULL || a->Issuer->content == NULL ||
	    strcmp(a->Issuer->content, c->idp.entity_id) != 0)
		REFUSE("issuer", "the assertion's Issuer is not the configured IdP");
	if (sr->Destination == NULL || strcmp(sr->Destination, u.acs) != 0)
		REFUSE("destination", "the response's Destination is not this organisation's ACS URL");
	/* Validity: Conditions, with SAML_SKEW_SECONDS either way. */
	LassoSaml2Conditions *cond = a->Conditions;
	if (cond == NULL)
		REFUSE("conditions", "the assertion has no Conditions");
	if (cond->NotBefore != NULL && (!saml_time(cond->NotBefore, &t) || t > now + SAML_SKEW_SECONDS))
		REFUSE("not_yet_valid", "the assertion is not valid yet (NotBefore)");
	if (!saml_time(cond->NotOnOrAfter, &t))
		REFUSE("conditions", "the assertion has no NotOnOrAfter");
	if (t <= now - SAML_SKEW_SECONDS)
		REFUSE("expired", "the assertion has expired (NotOnOrAfter)");
	said->not_on_or_after = t;
	if (cond->Condition != NULL || cond->ProxyRestriction != NULL)
		REFUSE("conditions", "the assertion has a condition this SP does not know");
	if (cond->AudienceRestriction == NULL)
		REFUSE("audience", "the assertion names no Audience");
	for (GList *l = cond->AudienceRestriction; l != NULL; l = l->next) {
		LassoSaml2AudienceRestriction *ar = l->data;
		if (!LASSO_IS_SAML2_AUDIENCE_RESTRICTION(ar) || ar->Audience == NULL ||
		    strcmp(ar->Audience, u.entity) != 0)
			REFUSE("audience", "the assertion is for another service (Audience)");
	}
	/* The subject: a bearer confirmation for this ACS, still valid. */
	LassoSaml2Subject *sub = a->Subject;
	if (sub == NULL || sub->NameID == NULL || sub->NameID->content == NULL)
		REFUSE("name_id", "the assertion names no subject");
	LassoSaml2SubjectConfirmation *sc = sub->SubjectConfirmation;
	if (sc == NULL || sc->Method == NULL || strcmp(sc->Method, SAML_BEARER) != 0)
		REFUSE("confirmation", "the subject's confirmation is not bearer");
	LassoSaml2SubjectConfirmationData *scd = sc->SubjectConfirmationData;
	if (scd == NULL || scd->Recipient == NULL || strcmp(scd->Recipient, u.acs) != 0)
		REFUSE("recipient", "the confirmation's Recipient is not this organisation's ACS URL");
	if (!saml_time(scd->NotOnOrAfter, &t))
		REFUSE("confirmation", "the confirmation has no NotOnOrAfter");
	if (t <= now - SAML_SKEW_SECONDS)
		REFUSE("expired", "the confirmation has expired (NotOnOrAfter)");
	if (t < said->not_on_or_after)
		said->not_on_or_after = t;
	if (scd->NotBefore != NULL && (!saml_time(scd->NotBefore, &t) || t > now + SAML_SKEW_SECONDS))
		REFUSE("not_yet_valid", "the confirmation is not valid yet (NotBefore)");
	if (a->AuthnStatement == NULL)
		REFUSE("structure", "the assertion has no AuthnStatement");
	/* InResponseTo: the response's and the confirmation's must agree. */
	const char *irt = scd->InResponseTo != NULL ? scd->InResponseTo : sr->InResponseTo;
	if ((sr->InResponseTo != NULL && scd->InResponseTo != NULL &&
	     strcmp(sr->InResponseTo, scd->InResponseTo) != 0) ||
	    (sr->InResponseTo != NULL) != (scd->InResponseTo != NULL))
		REFUSE("in_response_to", "the response and its confirmation answer different requests");
	if (irt == NULL && !saml_set_bool(c, "idp_initiated"))
		REFUSE("unsolicited", "this organisation does not take IdP-initiated sign-in");
	said->in_response_to = irt;
	said->assertion_id = a->ID;
	said->name_id = sub->NameID->content;
	/* Who: the NameID, or the configured e-mail attribute. */
	const char *email = sub->NameID->content, *attr = saml_set_str(c, "attributes", "email");
	if (attr != NULL) {
		saml_attribute(a, attr, NULL, &email);
		if (email == NULL)
			REFUSE("name_id", "the assertion lacks the e-mail attribute");
	}
	struct email_addr addr;
	const char *ewhy;
	if (email_normalize(email, EMAIL_ALLOW_IDN, &addr, &ewhy) != BW_OK)
		REFUSE("name_id", "the subject is not an e-mail address");
	/*
	 * Only an address already in its plain form (but for ASCII case): the
	 * lookup folds case and compatibility forms ("ß" to "ss"), so another
	 * form would sign its holder in as the user it folds into.
	 */
	if (!saml_plain_form(email, addr.key))
		REFUSE("name_id", "the address is not in its plain form (it would fold into another)");
	snprintf(said->email, sizeof(said->email), "%s", addr.display);
	if (!saml_domain_allowed(c, said->email))
		REFUSE("domain", "the user's e-mail domain is not one this IdP may sign in");
	const char *name = NULL, *nattr = saml_set_str(c, "attributes", "name");
	if (nattr != NULL)
		saml_attribute(a, nattr, NULL, &name);
	snprintf(said->name, sizeof(said->name), "%s", name != NULL ? name : "");
	const char *gattr = saml_set_str(c, "attributes", "groups"), *g1;
	if (gattr != NULL && said->groups != NULL)
		saml_attribute(a, gattr, said->groups, &g1);
#undef REFUSE
	return BW_OK;
}

/* A refusal's audit row and security event, in their own transaction. */
static void
saml_audit_refusal(struct op *op, const char *reason, const char *why, const char *email)
{
	json_t *after = json_pack("{s:s, s:s}", "reason", reason, "detail", why);
	if (after != NULL && email != NULL && email[0] != '\0')
		json_object_set_new(after, "email", json_string(email));
	struct audit_entry ae = {
	    .actor = AUDIT_USER,
	    .actor_label = email != NULL ? email : "",
	    .client_ip = op->client_ip,
	    .request_id = op->request_id,
	    .entity = "auth",
	    .action = "sso_refused",
	    .after = after,
	};
	bw_err e = after != NULL ? op_db(op, &op->d) : BW_ERR_NOMEM;
	if (e == BW_OK && (e = db_begin(op->d)) == BW_OK) {
		auth_event(op->d, 0, "sso_refused", op->client_ip, reason);
		e = audit_record(op->d, op->ten, &op->tn, &ae);
		if (e == BW_OK)
			e = db_commit(op->d);
		if (e != BW_OK)
			(void)db_rollback(op->d);
	}
	if (e != BW_OK)
		log_error("tenant %s: could not record a refused SSO sign-in (%s)", op->tn.slug, reason);
	json_decref(after);
}

struct saml_consume {
	const char *irt, *browser_hash, *relay;
	char assertion_hash[65];
	int64_t replay_until;
	char next[2048];
	const char *reason;
};

/* The request answered (single use, this browser's) and the assertion's first use. */
static bw_err
saml_consume_tx(struct op *op, void *arg)
{
	struct saml_consume *x = arg;
	int64_t now = saml_now();
	bw_err e = DB_RUN(op->d, "DELETE FROM saml_replay WHERE expires_at < ?", DB_INT(now));
	if (e != BW_OK)
		return e;
	if (x->irt != NULL) {
		db_stmt *s;
		int row = 0;
		if ((e = db_prepare_cached(op->d,
					   "SELECT next_path FROM saml_requests WHERE request_id = ?"
					   " AND browser_hash = ? AND expires_at >= ?",
					   &s)) != BW_OK)
			return e;
		if ((e = DB_BIND(s, DB_TEXT(x->irt), DB_TEXT(x->browser_hash), DB_INT(now))) == BW_OK &&
		    (e = db_step(s, &row)) == BW_OK && row)
			snprintf(x->next, sizeof(x->next), "%s", db_col_text(s, 0));
		db_done(s);
		if (e != BW_OK)
			return e;
		/* Only the first of two racing answers deletes it. */
		if (row && (e = db_prepare_cached(op->d, "DELETE FROM saml_requests WHERE request_id = ?",
						 &s)) == BW_OK) {
			if ((e = DB_BIND(s, DB_TEXT(x->irt))) == BW_OK && (e = db_step(s, &row)) == BW_OK)
				row = db_changes(s) == 1;
			db_done(s);
		}
		if (e != BW_OK)
			return e;
		if (!row || x->browser_hash[0] == '\0') {
			x->reason = "in_response_to";
			return op_fail(op, BW_ERR_DENIED,
				       "the response answers no request this browser made, or one "
				       "already answered or expired");
		}
	}
	e = DB_RUN(op->d, "INSERT INTO saml_replay (assertion_hash, expires_at) VALUES (?, ?)",
		   DB_TEXT(x->assertion_hash), DB_INT(x->replay_until));
	if (e == BW_ERR_CONFLICT) {
		x->reason = "replay";
		return op_fail(op, BW_ERR_DENIED, "this assertion was used before");
	}
	return e;
}

/* The roles the user's groups map to (names, a new array; empty when none map). */
static json_t *
saml_mapped_roles(const struct saml_cfg *c, json_t *groups)
{
	json_t *map = json_object_get(c->settings, "group_roles"), *out = json_array(), *g;
	size_t i;
	json_array_foreach(groups, i, g)
	{
		json_t *role = json_object_get(map, json_string_value(g)), *have;
		size_t k;
		int seen = 0;
		if (role == NULL)
			continue;
		json_array_foreach(out, k, have) seen |= json_equal(have, role);
		if (!seen && json_array_size(out) < RBAC_ROLES_PER_USER)
			json_array_append(out, role);
	}
	return out;
}

struct saml_user {
	int64_t id;
	int disabled, provisioned;
};

static bw_err
saml_find_user(struct op *op, const char *email, struct saml_user *u)
{
	struct email_addr addr;
	const char *why;
	db_stmt *s;
	int row = 0;
	memset(u, 0, sizeof(*u));
	if (email_normalize(email, EMAIL_ALLOW_IDN, &addr, &why) != BW_OK)
		return BW_ERR_NOTFOUND;
	bw_err e = db_prepare_cached(op->d,
				     "SELECT id, disabled, sso_provisioned FROM users WHERE email_norm = ?",
				     &s);
	if (e != BW_OK)
		return e;
	if ((e = DB_BIND(s, DB_TEXT(addr.key))) == BW_OK && (e = db_step(s, &row)) == BW_OK && row) {
		u->id = db_col_int(s, 0);
		u->disabled = db_col_int(s, 1) != 0;
		u->provisioned = db_col_int(s, 2) != 0;
	}
	db_done(s);
	return e == BW_OK && !row ? BW_ERR_NOTFOUND : e;
}

/* Just-in-time: a user for email with roles; a password nobody knows. */
static bw_err
saml_provision(struct op *op, struct auth_hasher *h, const char *email, json_t *roles, int64_t *id)
{
	unsigned char rnd[32];
	char pw[64], otp[USER_OTP_SIZE];
	bw_err e = util_random(rnd, sizeof(rnd));
	if (e != BW_OK)
		return e;
	sodium_bin2base64(pw, sizeof(pw), rnd, sizeof(rnd), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	crypto_wipe(rnd, sizeof(rnd));
	json_t *in = json_pack("{s:s, s:s, s:O}", "email", email, "password", pw, "roles", roles);
	struct actor keep = op->actor;
	op->actor = op_system("saml: just-in-time provisioning");
	e = in != NULL ? user_create(op, h, in, id, otp) : BW_ERR_NOMEM;
	op->actor = keep;
	crypto_wipe(pw, sizeof(pw));
	crypto_wipe(otp, sizeof(otp));
	if (in != NULL) {
		/* the password inside in */
		json_t *p = json_object_get(in, "password");
		if (p != NULL)
			crypto_wipe((char *)json_string_value(p), strlen(json_string_value(p)));
	}
	json_decref(in);
	return e;
}

/* A user made by SSO: roles as the IdP's groups say now (none mapped: the default). */
static bw_err
saml_sync_roles(struct op *op, int64_t id, json_t *roles)
{
	json_t *in = json_pack("{s:O}", "roles", roles);
	struct actor keep = op->actor;
	op->actor = op_system("saml: roles from the IdP's groups");
	bw_err e = in != NULL ? user_update(op, id, in, 0) : BW_ERR_NOMEM;
	op->actor = keep;
	json_decref(in);
	return e;
}

struct saml_session {
	int64_t user_id;
	const char *email, *name;
	int provisioned_now;
	const char *client_ip;
	char *secret;
	int disabled;
};

static bw_err
saml_session_tx(struct op *op, void *arg)
{
	struct saml_session *x = arg;
	int64_t disabled = 1;
	bw_err e = auth_user_lock(op->d, x->user_id);
	if (e == BW_OK)
		e = DB_QUERY_INT(op->d, &disabled, "SELECT disabled FROM users WHERE id = ?",
				 DB_INT(x->user_id));
	if (e != BW_OK)
		return e;
	if (disabled) {
		x->disabled = 1;
		return op_fail(op, BW_ERR_DENIED, "this user is disabled");
	}
	if ((e = DB_RUN(op->d,
			x->provisioned_now
			    ? "UPDATE users SET display_name = ?, sso_provisioned = 1 WHERE id = ?"
			    : "UPDATE users SET display_name = ? WHERE id = ?",
			DB_TEXT(x->name), DB_INT(x->user_id))) != BW_OK)
		return e;
	if ((e = session_create_sso(op->d, op->cfg, x->user_id, x->client_ip, x->secret)) != BW_OK ||
	    (e = notify_signin(op, x->user_id, x->client_ip, "single sign-on")) != BW_OK)
		return e;
	auth_event(op->d, x->user_id, "login", x->client_ip, "single sign-on");
	struct audit_entry ae = {
	    .actor = AUDIT_USER,
	    .user_id = x->user_id,
	    .actor_label = x->email,
	    .client_ip = op->client_ip,
	    .request_id = op->request_id,
	    .entity = "auth",
	    .entity_id = x->user_id,
	    .action = "sso_login",
	};
	json_t *after = json_pack("{s:s, s:b}", "email", x->email, "provisioned", x->provisioned_now);
	ae.after = after;
	e = after != NULL ? audit_record(op->d, op->ten, &op->tn, &ae) : BW_ERR_NOMEM;
	json_decref(after);
	if (e != BW_OK)
		crypto_wipe(x->secret, 48);
	return e;
}

/* The SAMLResponse decoded (base64 with line breaks allowed) into a malloc'd text. */
static bw_err
saml_decode(const char *b64, char **xml, size_t *len)
{
	size_t n = strlen(b64), cap = n / 4 * 3 + 3;
	*xml = NULL;
	if (n == 0 || cap > SAML_RESPONSE_MAX + 4)
		return BW_ERR_INVALID;
	unsigned char *out = malloc(cap + 1);
	if (out == NULL)
		return BW_ERR_NOMEM;
	const char *end;
	if (sodium_base642bin(out, cap, b64, n, " \t\r\n", len, &end,
			      sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    *end != '\0' || *len > SAML_RESPONSE_MAX || memchr(out, '\0', *len) != NULL) {
		free(out);
		return BW_ERR_INVALID;
	}
	out[*len] = '\0';
	*xml = (char *)out;
	return BW_OK;
}

/* A sign-in's use of lasso is over: its login object goes and the lock is let go. */
static void
saml_lasso_done(LassoLogin **login, int *locked)
{
	if (*login != NULL)
		g_object_unref(*login);
	*login = NULL;
	if (*locked)
		pthread_mutex_unlock(&saml_lasso_lock);
	*locked = 0;
}

bw_err
saml_acs(struct op *op, struct auth_hasher *h, const char *response_b64, const char *relay_state,
	 const char *browser_hash, struct saml_signin *out)
{
	struct saml_cfg c = {0};
	struct saml_shape shape;
	struct saml_said said = {0};
	LassoServer *srv = NULL;
	LassoLogin *login = NULL;
	char *xml = NULL;
	size_t xlen = 0;
	const char *reason = NULL, *why = NULL;
	json_t *roles = NULL;
	int locked = 0;
	memset(out, 0, sizeof(*out));
	bw_err e = saml_cfg_load(op, &c);
	if (e != BW_OK)
		return e;
	if (!c.have || !c.enabled) {
		reason = "not_configured";
		why = "single sign-on is not set up for this organisation";
		goto refuse;
	}
	if (response_b64 == NULL || saml_decode(response_b64, &xml, &xlen) != BW_OK) {
		reason = "malformed";
		why = "SAMLResponse is not a base64 SAML message";
		goto refuse;
	}
	if (saml_response_shape(xml, xlen, &shape, &reason, &why) != BW_OK)
		goto refuse;
	/*
	 * The assertion itself must be signed, as this SP's metadata says
	 * (WantAssertionsSigned): Entra ID, Google, Okta and AD FS all sign it,
	 * and a signature on the response alone would leave what is read about
	 * the user covered only by the outer one (docs/saml.md).
	 */
	if (!shape.assertion_signed) {
		reason = "signature";
		why = "the assertion is not signed";
		goto refuse;
	}
	/* lasso's part, one at a time (saml_lasso_lock): what it read is copied out after. */
	if ((e = saml_server(op, &c, &srv)) != BW_OK)
		goto out;
	locked = 1; /* saml_server() returned holding saml_lasso_lock */
	if ((login = lasso_login_new(srv)) == NULL) {
		e = BW_ERR_NOMEM;
		goto out;
	}
	/* Verify whatever is signed: the assertion (required above) and the response if it is. */
	lasso_profile_set_signature_verify_hint(LASSO_PROFILE(login),
						LASSO_PROFILE_SIGNATURE_VERIFY_HINT_MAYBE);
	int rc = lasso_login_process_authn_response_msg(login, (gchar *)response_b64);
	if (rc != 0) {
		log_info("tenant %s: lasso refused a SAML response: %s", op->tn.slug,
			 lasso_strerror(rc));
		reason = saml_lasso_reason(rc);
		why = strcmp(reason, "signature") == 0
			  ? "the response's signature does not verify with the configured certificate"
		      : strcmp(reason, "issuer") == 0 ? "the response is not from the configured IdP"
		      : strcmp(reason, "status") == 0 ? "the IdP did not sign the user in"
						      : "the response could not be read";
		goto refuse;
	}
	said.groups = json_array();
	if (said.groups == NULL) {
		e = BW_ERR_NOMEM;
		goto out;
	}
	if (saml_check(op, &c, login, &shape, &said, &reason, &why) != BW_OK)
		goto refuse;
	const char *irt = said.in_response_to;
	said.in_response_to = irt != NULL ? pool_strdup(op->pool, irt) : NULL;
	said.assertion_id = pool_strdup(op->pool, said.assertion_id);
	said.name_id = pool_strdup(op->pool, said.name_id);
	saml_lasso_done(&login, &locked);
	if (said.assertion_id == NULL || said.name_id == NULL ||
	    (irt != NULL && said.in_response_to == NULL)) {
		e = BW_ERR_NOMEM;
		goto out;
	}
	/* RelayState: only a path of this site. */
	if (relay_state != NULL && relay_state[0] != '\0' && !saml_local_path(relay_state)) {
		reason = "relay_state";
		why = "RelayState must be a path on this site";
		goto refuse;
	}
	/* Consumed: the request (single use) and the assertion (replay cache). */
	struct saml_consume cx = {.irt = said.in_response_to, .browser_hash = browser_hash,
				  .relay = relay_state};
	{
		char key[SAML_ENTITY_MAX + SAML_ID_MAX + 2];
		unsigned char md[32];
		unsigned int mdn = 0;
		snprintf(key, sizeof(key), "%s\n%s", c.idp.entity_id, said.assertion_id);
		if (EVP_Digest(key, strlen(key), md, &mdn, EVP_sha256(), NULL) != 1) {
			e = BW_ERR_CRYPTO;
			goto out;
		}
		util_hex(md, 32, cx.assertion_hash);
		cx.replay_until = said.not_on_or_after + SAML_SKEW_SECONDS;
	}
	e = op_tx(op, saml_consume_tx, &cx);
	if (e == BW_ERR_DENIED && cx.reason != NULL) {
		reason = cx.reason;
		why = op->err_msg;
		goto refuse;
	}
	if (e != BW_OK)
		goto out;
	const char *next = cx.next[0] != '\0' ? cx.next : "/";
	if (relay_state != NULL && relay_state[0] != '\0' && cx.next[0] == '\0')
		next = relay_state; /* IdP-initiated: the IdP's target, a path of this site */
	snprintf(out->next, sizeof(out->next), "%s", next);
	snprintf(out->email, sizeof(out->email), "%s", said.email);
	/* The user: found, or made when just-in-time provisioning is on. */
	struct saml_user u;
	if ((e = op_db(op, &op->d)) != BW_OK)
		goto out;
	e = saml_find_user(op, said.email, &u);
	int map = json_object_size(json_object_get(c.settings, "group_roles")) > 0;
	if (e == BW_ERR_NOTFOUND || (e == BW_OK && u.provisioned && map)) {
		roles = saml_mapped_roles(&c, said.groups);
		if (roles != NULL && json_array_size(roles) == 0)
			json_array_append(roles, json_object_get(c.settings, "default_role"));
		if (roles == NULL) {
			e = BW_ERR_NOMEM;
			goto out;
		}
	}
	int provisioned_now = 0;
	if (e == BW_ERR_NOTFOUND) {
		if (!saml_set_bool(&c, "jit")) {
			reason = "no_user";
			why = "there is no user with this address, and just-in-time provisioning is off";
			goto refuse;
		}
		e = saml_provision(op, h, said.email, roles, &u.id);
		if (e == BW_ERR_CONFLICT) /* made meanwhile by another sign-in */
			e = saml_find_user(op, said.email, &u);
		else
			provisioned_now = e == BW_OK;
		op->err = BW_OK;
		op->err_msg = NULL;
		if (e != BW_OK)
			goto out;
	} else if (e != BW_OK) {
		goto out;
	} else if (u.disabled) {
		reason = "disabled";
		why = "this user is disabled";
		goto refuse;
	} else if (u.provisioned && map) {
		if (saml_sync_roles(op, u.id, roles) != BW_OK)
			log_warn("tenant %s: user %lld keeps their roles: %s", op->tn.slug,
				 (long long)u.id, op->err_msg ? op->err_msg : "refused");
		op->err = BW_OK;
		op->err_msg = NULL;
	}
	struct saml_session ss = {.user_id = u.id, .email = said.email, .name = said.name,
				  .provisioned_now = provisioned_now, .client_ip = op->client_ip,
				  .secret = out->secret};
	e = op_tx(op, saml_session_tx, &ss);
	if (e == BW_ERR_DENIED && ss.disabled) {
		reason = "disabled";
		why = "this user is disabled";
		goto refuse;
	}
	if (e != BW_OK)
		goto out;
	out->user_id = u.id;
	out->created = provisioned_now;
	goto out;
refuse:
	saml_lasso_done(&login, &locked);
	op->err = BW_OK;
	op->err_msg = NULL;
	saml_audit_refusal(op, reason, why, said.email);
	out->reason = reason;
	e = op_fail_detail(op, BW_ERR_DENIED,
			   pool_printf(op->pool, "single sign-on refused: %s", why),
			   json_pack("{s:s}", "reason", reason));
out:
	if (e != BW_OK && e != BW_ERR_DENIED)
		crypto_wipe(out->secret, sizeof(out->secret));
	saml_lasso_done(&login, &locked);
	json_decref(said.groups);
	json_decref(roles);
	free(xml);
	saml_cfg_clear(&c);
	return e;
}
