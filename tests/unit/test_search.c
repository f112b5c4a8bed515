/*
 * Search's building blocks: normalising values for the blind index, the
 * HKDF under it (RFC 5869 vectors), the MAC checked against an
 * independent computation (OpenSSL's own HKDF and HMAC over the data key
 * unwrapped by hand), lookups while entries sit under two data keys (a
 * rotation part-way), the descriptor rules of FF_BLIND and the full-text
 * query syntax. The HTTP side is tests/http/test_search.py.
 */
#include "unit.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>

#include "crypto/crypto.h"
#include "db/migrate.h"
#include "dbenv.h"
#include "search/blind.h"
#include "search/fulltext.h"
#include "tenancy/tenancy.h"

static char tmpdir[64];

static void
norm_is(enum blind_kind k, const char *in, const char *want)
{
	char out[BLIND_NORM_MAX + 1];
	size_t len = 99;
	assert_int_equal(blind_normalize(k, in, strlen(in), out, &len), BW_OK);
	assert_string_equal(out, want);
	assert_int_equal(len, strlen(want));
}

static void
test_normalize_email(void **state)
{
	(void)state;
	norm_is(BLIND_EMAIL, "Ada.Lovelace@Example.COM", "ada.lovelace@example.com");
	norm_is(BLIND_EMAIL, "  ADA.LOVELACE@example.com\t", "ada.lovelace@example.com");
	/* Refused as an identity (Latin and Cyrillic mixed): found as written, folded. */
	norm_is(BLIND_EMAIL, "P\xd0\xb0ypal@Example.com", "p\xd0\xb0ypal@example.com");
	norm_is(BLIND_EMAIL, "   ", "");
}

static void
test_normalize_phone(void **state)
{
	(void)state;
	norm_is(BLIND_PHONE, "+44 (20) 7946-0958", "+442079460958");
	norm_is(BLIND_PHONE, "  +44.20.7946.0958", "+442079460958");
	norm_is(BLIND_PHONE, "020 7946 0958", "02079460958");
	norm_is(BLIND_PHONE, "1 + 2", "12"); /* a plus inside is no prefix */
	norm_is(BLIND_PHONE, "\xef\xbc\x8b\xef\xbc\x94\xef\xbc\x94 20", "+4420"); /* full width */
	norm_is(BLIND_PHONE, "n/a", "");
	norm_is(BLIND_PHONE, "+", "");
	char big[BLIND_NORM_MAX + 2], out[BLIND_NORM_MAX + 1];
	size_t len;
	memset(big, '1', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(blind_normalize(BLIND_PHONE, big, strlen(big), out, &len), BW_ERR_TOO_LARGE);
}

static void
test_normalize_text(void **state)
{
	(void)state;
	norm_is(BLIND_TEXT, "  Hello \t  World\n", "hello world");
	norm_is(BLIND_TEXT, "Stra\xc3\x9f" "e", "strasse");
	norm_is(BLIND_TEXT, "STRASSE", "strasse");
	norm_is(BLIND_TEXT, "\xef\xbc\xa1\xef\xbc\xa2", "ab"); /* NFKC: full-width letters */
}

static void
hex_is(const unsigned char *b, size_t n, const char *want)
{
	char h[2 * 64 + 1];
	for (size_t i = 0; i < n; i++)
		snprintf(h + 2 * i, 3, "%02x", b[i]);
	assert_string_equal(h, want);
}

/* RFC 5869 test cases 1 and 3: the first 32 bytes of their OKM. */
static void
test_hkdf_rfc5869(void **state)
{
	(void)state;
	unsigned char ikm[22], salt[13], info[10], out[32];
	memset(ikm, 0x0b, sizeof(ikm));
	for (int i = 0; i < 13; i++)
		salt[i] = (unsigned char)i;
	for (int i = 0; i < 10; i++)
		info[i] = (unsigned char)(0xf0 + i);
	assert_int_equal(hkdf_sha256(salt, sizeof(salt), ikm, sizeof(ikm), info, sizeof(info), out),
			 BW_OK);
	hex_is(out, 32, "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf");
	assert_int_equal(hkdf_sha256(NULL, 0, ikm, sizeof(ikm), NULL, 0, out), BW_OK);
	hex_is(out, 32, "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d");
	unsigned char long_info[256] = {0};
	assert_int_equal(hkdf_sha256(NULL, 0, ikm, sizeof(ikm), long_info, sizeof(long_info), out),
			 BW_ERR_CRYPTO);
}

/* --- with a tenant (SQLite) ------------------------------------------------ */

struct fx {
	struct config cfg;
	struct tenancy *t;
	struct tenant tn[2];
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char err[512], otp[64];
	struct tenant *v;
	size_t n;
	static int seq;
	if (dbenv_open(&f->cfg, "sqlite", tmpdir, "ctl", ++seq, &f->t, err, sizeof(err)) != BW_OK)
		fail_msg("setup: %s", err);
	for (int i = 0; i < 2; i++) {
		char slug[16];
		snprintf(slug, sizeof(slug), "s%d%c", seq, 'a' + i);
		if (tenant_create(f->t, slug, "a@b.co", NULL, NULL, otp, sizeof(otp), err,
				  sizeof(err)) != BW_OK)
			fail_msg("create: %s", err);
	}
	assert_int_equal(tenant_list(f->t, &v, &n, err, sizeof(err)), BW_OK);
	assert_int_equal(n, 2);
	f->tn[0] = v[0];
	f->tn[1] = v[1];
	free(v);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	dbenv_destroy(f->t, &f->cfg);
	free(f);
	return 0;
}

/* The data key id, unwrapped by hand from the control database. */
static void
dek_of(struct fx *f, const char *slug, uint32_t id, unsigned char dek[32])
{
	db_stmt *s;
	int row;
	assert_int_equal(db_prepare(tenancy_control(f->t),
				    "SELECT master_id, wrapped FROM data_keys WHERE id = ?", &s),
			 BW_OK);
	assert_int_equal(db_bind_int(s, 1, id), BW_OK);
	assert_int_equal(db_step(s, &row), BW_OK);
	assert_int_equal(row, 1);
	size_t wl;
	const unsigned char *w = db_col_blob(s, 1, &wl);
	assert_int_equal(keyring_unwrap_secret(tenancy_keyring(f->t), "bulwark/data-key/v1", slug, id,
					       (uint32_t)db_col_int(s, 0), w, wl, dek),
			 BW_OK);
	db_finalize(s);
}

/* What the MAC must be, computed with OpenSSL's HKDF and HMAC directly. */
static void
oracle(const unsigned char dek[32], const char *slug, const char *msg, size_t mlen, char hex[65])
{
	unsigned char k[32], mac[32];
	unsigned int ml = 0;
	char info[128];
	int il = snprintf(info, sizeof(info), "%s%c%s", BLIND_LABEL, 0, slug);
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	EVP_KDF_CTX *c = EVP_KDF_CTX_new(kdf);
	OSSL_PARAM p[] = {
	    OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0),
	    OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)dek, 32),
	    OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, (size_t)il),
	    OSSL_PARAM_construct_end(),
	};
	assert_int_equal(EVP_KDF_derive(c, k, sizeof(k), p), 1);
	EVP_KDF_CTX_free(c);
	EVP_KDF_free(kdf);
	assert_non_null(HMAC(EVP_sha256(), k, sizeof(k), (const unsigned char *)msg, mlen, mac, &ml));
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", mac[i]);
}

static void
test_mac_matches_independent_hkdf_hmac(void **state)
{
	struct fx *f = *state;
	struct keyring *kr = tenancy_keyring(f->t);
	const struct tenant *a = &f->tn[0], *b = &f->tn[1];
	unsigned char dek[32];
	char got[65], want[65], other[65];
	static const char msg[] = "contacts\0email\0ada@example.com";
	dek_of(f, a->slug, a->active_key_id, dek);
	oracle(dek, a->slug, msg, sizeof(msg) - 1, want);
	assert_int_equal(blind_mac(kr, a->slug, a->active_key_id, "contacts", "email",
				   "ada@example.com", 15, got),
			 BW_OK);
	assert_string_equal(got, want);
	/* another field, another tenant's key: other MACs of the same value */
	assert_int_equal(blind_mac(kr, a->slug, a->active_key_id, "customers", "email",
				   "ada@example.com", 15, other),
			 BW_OK);
	assert_string_not_equal(other, got);
	assert_int_equal(blind_mac(kr, b->slug, b->active_key_id, "contacts", "email",
				   "ada@example.com", 15, other),
			 BW_OK);
	assert_string_not_equal(other, got);
	/* a key of another tenant is never used for this one */
	assert_int_equal(blind_mac(kr, a->slug, b->active_key_id, "contacts", "email",
				   "ada@example.com", 15, other),
			 BW_ERR_CRYPTO);
	crypto_wipe(dek, sizeof(dek));
}

static void
test_lookup_under_two_keys(void **state)
{
	struct fx *f = *state;
	struct keyring *kr = tenancy_keyring(f->t);
	struct tenant *a = &f->tn[0];
	const struct module_desc *m = module_find("contacts");
	const struct field_desc *fe = module_field(m, "email"), *fp = module_field(m, "phone");
	char err[256];
	db *d;
	int64_t ids[BLIND_MATCHES_MAX];
	size_t n;
	uint32_t k1 = a->active_key_id, k2;
	assert_non_null(blind_field("contacts", "email"));
	assert_null(blind_field("contacts", "first_name"));
	assert_null(blind_field("customers", "address"));
	assert_int_equal(tenancy_connect_tenant(f->t, a, 0, &d, err, sizeof(err)), BW_OK);
	assert_int_equal(blind_put(d, kr, a->slug, k1, m, fe, 7, "Ada@Example.com", 15), BW_OK);
	assert_int_equal(keys_tenant_new(f->t, a->slug, 0, &k2, err, sizeof(err)), BW_OK);
	assert_int_not_equal(k1, k2);
	/* rotation part-way: row 9 is under the new key, row 7 still under the old */
	assert_int_equal(blind_put(d, kr, a->slug, k2, m, fe, 9, " ada@example.COM", 16), BW_OK);
	assert_int_equal(blind_put(d, kr, a->slug, k2, m, fp, 9, "+1 555 0100", 11), BW_OK);
	assert_int_equal(blind_lookup(d, kr, a->slug, m, fe, "ADA@EXAMPLE.COM", ids, &n), BW_OK);
	assert_int_equal(n, 2);
	assert_int_equal(ids[0], 7);
	assert_int_equal(ids[1], 9);
	assert_int_equal(blind_count_key(d, k1), 1);
	assert_int_equal(blind_count_key(d, k2), 2);
	/* a field is only its own: the phone index knows no address */
	assert_int_equal(blind_lookup(d, kr, a->slug, m, fp, "ada@example.com", ids, &n), BW_OK);
	assert_int_equal(n, 0);
	assert_int_equal(blind_lookup(d, kr, a->slug, m, fp, "+1-555-0100", ids, &n), BW_OK);
	assert_int_equal(n, 1);
	/* the other tenant's key ring entries cannot answer for this tenant */
	assert_int_equal(blind_lookup(d, kr, f->tn[1].slug, m, fe, "ada@example.com", ids, &n),
			 BW_ERR_CRYPTO);
	/* a value changed to nothing, and a row deleted, leave no entry */
	assert_int_equal(blind_put(d, kr, a->slug, k2, m, fp, 9, NULL, 0), BW_OK);
	assert_int_equal(blind_lookup(d, kr, a->slug, m, fp, "+1 555 0100", ids, &n), BW_OK);
	assert_int_equal(n, 0);
	assert_int_equal(blind_remove_row(d, m, 7), BW_OK);
	assert_int_equal(blind_lookup(d, kr, a->slug, m, fe, "ada@example.com", ids, &n), BW_OK);
	assert_int_equal(n, 1);
	assert_int_equal(ids[0], 9);
	db_close(d);
}

static void
test_fulltext_query_syntax(void **state)
{
	struct fx *f = *state;
	char err[256], *q;
	db *d;
	assert_int_equal(tenancy_connect_tenant(f->t, &f->tn[0], 0, &d, err, sizeof(err)), BW_OK);
	assert_int_equal(fulltext_query(d, "Printer, zq JAMMED!! \"OR\" x* (a)", &q), BW_OK);
	assert_string_equal(q, "\"printer\"* \"jammed\"*"); /* short words and syntax dropped */
	free(q);
	assert_int_equal(fulltext_query(d, "a b -- \"\" ()", &q), BW_OK);
	assert_null(q);
	db_close(d);
}

/* Every FF_BLIND field is sealed and shown; only e-mail and phone fields have one. */
static void
test_descriptor_rules(void **state)
{
	(void)state;
	size_t blind = 0;
	for (size_t i = 0; i < module_catalog_count; i++)
		for (size_t k = 0; k < module_catalog[i]->nfields; k++) {
			const struct field_desc *fd = &module_catalog[i]->fields[k];
			if (fd->flags & FF_PHONE)
				assert_true(fd->flags & FF_BLIND);
			if (!(fd->flags & FF_BLIND))
				continue;
			assert_true(fd->flags & FF_ENCRYPTED);
			assert_false(fd->flags & FF_WRITEONLY);
			assert_false(fulltext_field(fd));
			blind++;
		}
	assert_int_equal(blind, 4);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_normalize_email),
	    cmocka_unit_test(test_normalize_phone),
	    cmocka_unit_test(test_normalize_text),
	    cmocka_unit_test(test_hkdf_rfc5869),
	    cmocka_unit_test(test_descriptor_rules),
	    cmocka_unit_test_setup_teardown(test_mac_matches_independent_hkdf_hmac, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_lookup_under_two_keys, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fulltext_query_syntax, setup, teardown),
	};
	if (unit_mkdtemp(tmpdir, sizeof(tmpdir), "search") != 0)
		return 1;
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	unit_rmtree(tmpdir);
	return rc;
}
