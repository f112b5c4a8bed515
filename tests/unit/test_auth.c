/*
 * Password policy and hashing, session secrets, cookie parsing.
 */
#include "unit.h"

#include <pthread.h>
#include <sodium.h>

#include "auth/auth.h"

static void
test_policy(void **state)
{
	(void)state;
	const char *why;
	const char *good[] = {"correct horse battery", "Tr0ub4dor&3xyz", "a-long-enough-one"};
	const char *bad[] = {"short",        "elevenchars",   "password1234", "PASSWORD1234",
			     "123456789012", "aaaaaaaaaaaaaa", "jane@acme.example"};
	for (size_t i = 0; i < BW_ARRAY_LEN(good); i++)
		if (password_policy(good[i], "jane@acme.example", &why) != BW_OK)
			fail_msg("'%s' refused: %s", good[i], why);
	for (size_t i = 0; i < BW_ARRAY_LEN(bad); i++) {
		if (password_policy(bad[i], "jane@acme.example", &why) == BW_OK)
			fail_msg("'%s' accepted", bad[i]);
		assert_non_null(why);
	}
	char big[1100];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	big[0] = 'y';
	assert_int_equal(password_policy(big, NULL, &why), BW_ERR_INVALID);
}

static void
test_hash_verify_rehash(void **state)
{
	(void)state;
	struct auth_hasher *h;
	char phc[256];
	int rehash;
	assert_int_equal(password_hasher_new(2, 1000, &h), BW_OK);
	assert_int_equal(password_hash(h, "correct horse battery", phc, sizeof(phc)), BW_OK);
	assert_true(strncmp(phc, "$argon2id$v=19$m=19456,t=2,p=1$", 31) == 0);
	assert_int_equal(password_verify(h, phc, "correct horse battery", &rehash), BW_OK);
	assert_int_equal(rehash, 0);
	assert_int_equal(password_verify(h, phc, "correct horse batterx", &rehash), BW_ERR_UNAUTHORIZED);
	/* a hash made with weaker parameters is accepted and flagged for rehashing */
	char weak[crypto_pwhash_STRBYTES];
	assert_int_equal(crypto_pwhash_str_alg(weak, "older one here", 14, 1, 8u * 1024u * 1024u,
					       crypto_pwhash_ALG_ARGON2ID13),
			 0);
	assert_int_equal(password_verify(h, weak, "older one here", &rehash), BW_OK);
	assert_int_equal(rehash, 1);
	password_hasher_free(h);
}

struct flood {
	struct auth_hasher *h;
	const char *phc;
	bw_err e;
};

static void *
flood_one(void *arg)
{
	struct flood *f = arg;
	int rehash;
	f->e = password_verify(f->h, f->phc, "wrong wrong wrong", &rehash);
	return NULL;
}

/* One slot and a short wait: of several at once, some must be refused (503). */
static void
test_concurrency_bounded(void **state)
{
	(void)state;
	struct auth_hasher *h;
	char phc[256];
	pthread_t th[6];
	struct flood f[6];
	assert_int_equal(password_hasher_new(1, 1, &h), BW_OK);
	assert_int_equal(password_hash(h, "correct horse battery", phc, sizeof(phc)), BW_OK);
	for (int i = 0; i < 6; i++) {
		f[i] = (struct flood){h, phc, BW_OK};
		pthread_create(&th[i], NULL, flood_one, &f[i]);
	}
	int refused = 0, checked = 0;
	for (int i = 0; i < 6; i++) {
		pthread_join(th[i], NULL);
		refused += f[i].e == BW_ERR_UNAVAILABLE;
		checked += f[i].e == BW_ERR_UNAUTHORIZED;
	}
	assert_true(refused >= 1 && checked >= 1);
	password_hasher_free(h);
}

static void
test_secrets_and_cookies(void **state)
{
	(void)state;
	char a[48], b[48], ha[65], hb[65], h2[65], got[48];
	assert_int_equal(auth_secret_new(a, ha), BW_OK);
	assert_int_equal(auth_secret_new(b, hb), BW_OK);
	assert_int_equal(strlen(a), 43);
	assert_string_not_equal(a, b);
	auth_secret_hash(a, h2);
	assert_string_equal(h2, ha);
	assert_null(strstr(ha, a));

	char hdr[200];
	snprintf(hdr, sizeof(hdr), "theme=dark; __Host-bulwark_session=%s; other=1", a);
	assert_true(auth_cookie_find(hdr, got));
	assert_string_equal(got, a);
	assert_false(auth_cookie_find("bulwark_session=abc", got));
	assert_false(auth_cookie_find("__Host-bulwark_session=", got));
	assert_false(auth_cookie_find("__Host-bulwark_session=a'b", got));
	assert_false(auth_cookie_find("x__Host-bulwark_session=abc", got));
	assert_false(auth_cookie_find(NULL, got));

	struct config cfg;
	config_defaults(&cfg);
	char c[256];
	auth_cookie(&cfg, a, c, sizeof(c));
	assert_true(strncmp(c, "__Host-bulwark_session=", 23) == 0);
	assert_non_null(strstr(c, "; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=28800"));
	assert_null(strstr(c, "Domain"));
	auth_cookie(&cfg, NULL, c, sizeof(c));
	assert_non_null(strstr(c, "Max-Age=0"));
}

/*
 * Found by tests/fuzz/fuzz_cookie: the value was cut at the first space, so
 * "S junk" logged in as S; a secret of any length up to 47 was taken too.
 * A secret is now the cookie's whole value, of the one length issued.
 */
struct cookie_case {
	const char *pre;
	int n; /* characters of the secret between pre and post; -1: all */
	const char *post;
};

static void
cookie_header(char *out, size_t len, const struct cookie_case *c, const char *secret)
{
	int n = c->n < 0 ? (int)strlen(secret) : c->n;
	snprintf(out, len, "%s%.*s%s", c->pre, n, secret, c->post);
}

static void
test_cookie_whole_value(void **state)
{
	(void)state;
	char s[48], hash[65], got[48], hdr[256];
	assert_int_equal(auth_secret_new(s, hash), BW_OK);
	assert_int_equal(strlen(s), AUTH_SECRET_CHARS);
	static const struct cookie_case good[] = {
		{"__Host-bulwark_session=", -1, ""},
		{"a=b; __Host-bulwark_session=", -1, "; c=d"},
		{"a=b;__Host-bulwark_session=", -1, " "},
		{"a=b;\t__Host-bulwark_session=", -1, "\t; c"},
		{"__Host-bulwark_session=", -1, " ; other=1"},
		{";;  __Host-bulwark_session=", -1, ""},
	};
	static const struct cookie_case bad[] = {
		{"__Host-bulwark_session=", -1, " junk"},
		{"__Host-bulwark_session=", -1, "\""},
		{"__Host-bulwark_session=", -1, "A"},
		{"__Host-bulwark_session=", AUTH_SECRET_CHARS - 1, ""},
		{"__Host-bulwark_session=", 1, ""},
		{"__Host-bulwark_session =", -1, ""},
		{"__Host-bulwark_session=x; __Host-bulwark_session=", -1, ""},
		{"x__Host-bulwark_session=", -1, ""},
		{"a=\"b __Host-bulwark_session=", -1, "\""},
	};
	for (size_t i = 0; i < BW_ARRAY_LEN(good); i++) {
		cookie_header(hdr, sizeof(hdr), &good[i], s);
		memset(got, 0, sizeof(got));
		if (!auth_cookie_find(hdr, got))
			fail_msg("no secret found in '%s'", hdr);
		assert_string_equal(got, s);
	}
	for (size_t i = 0; i < BW_ARRAY_LEN(bad); i++) {
		cookie_header(hdr, sizeof(hdr), &bad[i], s);
		if (auth_cookie_find(hdr, got))
			fail_msg("secret '%s' found in '%s'", got, hdr);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_policy),
		cmocka_unit_test(test_hash_verify_rehash),
		cmocka_unit_test(test_concurrency_bounded),
		cmocka_unit_test(test_secrets_and_cookies),
		cmocka_unit_test(test_cookie_whole_value),
	};
	return cmocka_run_group_tests_name("auth", tests, NULL, NULL);
}
