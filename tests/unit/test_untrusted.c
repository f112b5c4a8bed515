/*
 * Every parser of untrusted input, fed a few hundred thousand random and
 * mutated inputs under ASan/UBSan: paths, hosts, cookies, sealed values,
 * recovery codes, base32, TOTP codes. Nothing may crash, read out of
 * bounds, or accept what it must refuse. (A coverage-guided fuzzer is the
 * next step; this runs in every `make check`.)
 */
#include "unit.h"

#include "auth/auth.h"
#include "auth/totp.h"
#include "crypto/crypto.h"
#include "http/http.h"
#include "core/netaddr.h"
#include "tenancy/tenancy.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static unsigned
rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (unsigned)(rng >> 11);
}

/* A random string from an alphabet biased toward what parsers care about. */
static void
random_text(char *out, size_t max, const char *alphabet)
{
	size_t n = rnd() % max, al = strlen(alphabet);
	for (size_t i = 0; i < n; i++)
		out[i] = (rnd() % 8 == 0) ? (char)(1 + rnd() % 255) : alphabet[rnd() % al];
	out[n] = '\0';
}

static bw_err
h_ok(struct http_req *req)
{
	(void)req;
	return BW_OK;
}

static void
test_paths(void **state)
{
	(void)state;
	static const struct route routes[] = {
	    {HTTP_GET, "/api/v1/:module/:id", h_ok, 0, "x.view", ROUTE_BODY_NONE},
	    {HTTP_GET, "/api/v1/me", h_ok, 0, "self.view", ROUTE_BODY_NONE},
	    {HTTP_POST, "/api/v1/:module", h_ok, 0, "x.create", ROUTE_BODY_DEFAULT},
	};
	struct router *rt;
	char err[128], path[128];
	assert_int_equal(router_new(routes, 3, 100, &rt, err, sizeof(err)), BW_OK);
	for (int i = 0; i < 200000; i++) {
		struct http_req req = {0};
		req.pool = pool_new(1 << 16);
		random_text(path, 100, "/%2e.aA0:-_fF");
		req.path = path;
		req.method = rnd() % 2 ? HTTP_GET : HTTP_POST;
		bw_err e = router_match(rt, &req);
		if (e == BW_OK) {
			/* whatever matched decoded to clean parameters */
			for (size_t k = 0; k < req.nparams; k++) {
				const char *v = req.param_value[k];
				assert_non_null(v);
				assert_null(strchr(v, '/'));
				assert_true(strcmp(v, "..") != 0 && strcmp(v, ".") != 0 && v[0] != '\0');
			}
		}
		pool_free(req.pool);
	}
	router_free(rt);
}

static void
test_hosts_and_cookies(void **state)
{
	(void)state;
	char in[300], slug[TENANT_SLUG_MAX + 1], secret[48];
	const char *why;
	for (int i = 0; i < 200000; i++) {
		random_text(in, 120, "abc-.:0123456789localhostLOCAL");
		if (tenant_from_host(in, "localhost", slug) == BW_OK)
			assert_int_equal(tenant_slug_check(slug, &why), BW_OK);
		random_text(in, 200, "__Host-bulwark_session=; abcXYZ019-_");
		if (auth_cookie_find(in, secret)) {
			size_t n = strlen(secret);
			assert_true(n > 0 && n < 48);
			assert_int_equal(strspn(secret, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
							 "0123456789-_"),
					 n);
		}
	}
}

static void
test_sealed_values(void **state)
{
	(void)state;
	static const unsigned char key[32] = {7};
	struct seal_place pl = {"acme", "t", "c", 1};
	unsigned char good[64], buf[96], out[96];
	assert_int_equal(seal_with_key(key, 5, &pl, (const unsigned char *)"value", 5, good), BW_OK);
	for (int i = 0; i < 100000; i++) {
		size_t n = rnd() % sizeof(buf);
		if (rnd() % 2) {
			for (size_t k = 0; k < n; k++)
				buf[k] = (unsigned char)rnd();
		} else { /* mutate the good one */
			n = seal_len(5);
			memcpy(buf, good, n);
			buf[rnd() % n] ^= (unsigned char)(1u << (rnd() % 8));
			if (rnd() % 4 == 0)
				n = rnd() % (n + 1);
		}
		uint32_t kid;
		if (seal_key_id(buf, n, &kid) == BW_OK)
			assert_true(n >= SEAL_OVERHEAD && buf[0] == SEAL_VERSION);
		if (open_with_key(key, &pl, buf, n, out) == BW_OK)
			fail_msg("a random or mutated value opened (iteration %d, %zu bytes)", i, n);
	}
}

static void
test_codes(void **state)
{
	(void)state;
	char in[64], canon[TOTP_RECOVERY_LEN + 1];
	unsigned char raw[64];
	static const unsigned char key[20] = {1, 2, 3};
	uint64_t step;
	size_t n;
	for (int i = 0; i < 100000; i++) {
		random_text(in, 40, "abcdefghjkmnpqrstuvwxyz23456789- ABC0oO1lI\t");
		if (totp_recovery_normalize(in, canon) == BW_OK)
			assert_int_equal(strlen(canon), TOTP_RECOVERY_LEN);
		random_text(in, 60, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567 =01890abc");
		if (totp_base32_decode(in, raw, sizeof(raw), &n) == BW_OK)
			assert_true(n <= sizeof(raw));
		random_text(in, 10, "0123456789 a");
		bw_err e = totp_verify(key, sizeof(key), in, 1700000000u, 0, &step);
		if (e == BW_OK)
			assert_int_equal(strlen(in), 6);
	}
}

static void
test_addresses_and_forwarded_for(void **state)
{
	(void)state;
	char in[96], out[64];
	struct netaddr a, peer, c;
	struct netrange r, t[NETADDR_MAX_RANGES];
	size_t nt;
	assert_int_equal(netrange_list_parse("127.0.0.0/8, 10.0.0.0/8", t, &nt), BW_OK);
	assert_int_equal(netaddr_parse("127.0.0.1", &peer), BW_OK);
	for (int i = 0; i < 200000; i++) {
		random_text(in, 48, "0123456789abcdef.:/ ,");
		if (netaddr_parse(in, &a) == BW_OK) {
			netaddr_format(&a, out, sizeof(out));
			struct netaddr back;
			assert_int_equal(netaddr_parse(out, &back), BW_OK); /* round trip */
			assert_memory_equal(&a, &back, sizeof(a));
		}
		if (netrange_parse(in, &r) == BW_OK)
			assert_true(r.bits <= 128);
		netaddr_client(&peer, in, t, nt, &c); /* any header: no crash, some address */
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_paths),
		cmocka_unit_test(test_hosts_and_cookies),
		cmocka_unit_test(test_sealed_values),
		cmocka_unit_test(test_codes),
		cmocka_unit_test(test_addresses_and_forwarded_for),
	};
	return cmocka_run_group_tests_name("untrusted", tests, NULL, NULL);
}
