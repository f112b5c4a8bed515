/*
 * Strict address and range parsing, and the client behind trusted proxies.
 */
#include "unit.h"

#include "core/netaddr.h"

static void
test_addresses(void **state)
{
	(void)state;
	struct netaddr a;
	char out[64];
	const char *good[] = {"192.0.2.1", "0.0.0.0", "255.255.255.255", "2001:db8::1", "::1",
			      "::ffff:192.0.2.1"};
	const char *bad[] = {"",       "1.2.3",      "1.2.3.4.5",  "256.1.1.1", "010.0.0.1",
			     "1.02.3.4", " 1.2.3.4",  "1.2.3.4 ",   "[::1]",    "fe80::1%eth0",
			     "1.2.3.4:80", "::g",      "1.2.3.-4",   "0x7f.0.0.1", "127.1"};
	for (size_t i = 0; i < BW_ARRAY_LEN(good); i++)
		if (netaddr_parse(good[i], &a) != BW_OK)
			fail_msg("'%s' refused", good[i]);
	for (size_t i = 0; i < BW_ARRAY_LEN(bad); i++)
		if (netaddr_parse(bad[i], &a) == BW_OK)
			fail_msg("'%s' accepted", bad[i]);
	assert_int_equal(netaddr_parse("::ffff:192.0.2.1", &a), BW_OK);
	netaddr_format(&a, out, sizeof(out));
	assert_string_equal(out, "192.0.2.1"); /* IPv4-mapped shown as IPv4 */
}

static void
test_ranges(void **state)
{
	(void)state;
	struct netrange r;
	struct netaddr a;
	const char *bad[] = {"10.0.0.1/33", "10.0.0.0/-1", "10.0.0.0/", "10.0.0.0/08", "10.0.0.1/8",
			     "2001:db8::/129", "/8",        "10.0.0.0/8/8", "1.2.3/24", "2001:db8::1/32"};
	for (size_t i = 0; i < BW_ARRAY_LEN(bad); i++)
		if (netrange_parse(bad[i], &r) == BW_OK)
			fail_msg("range '%s' accepted", bad[i]);
	assert_int_equal(netrange_parse("10.0.0.0/8", &r), BW_OK);
	assert_int_equal(netaddr_parse("10.200.3.4", &a), BW_OK);
	assert_true(netrange_contains(&r, &a));
	assert_int_equal(netaddr_parse("11.0.0.1", &a), BW_OK);
	assert_false(netrange_contains(&r, &a));
	/* an IPv4-mapped client matches an IPv4 range */
	assert_int_equal(netaddr_parse("::ffff:10.1.2.3", &a), BW_OK);
	assert_true(netrange_contains(&r, &a));
	assert_int_equal(netrange_parse("2001:db8::/32", &r), BW_OK);
	assert_int_equal(netaddr_parse("2001:db8:ffff::1", &a), BW_OK);
	assert_true(netrange_contains(&r, &a));
	assert_int_equal(netaddr_parse("2001:db9::1", &a), BW_OK);
	assert_false(netrange_contains(&r, &a));
	assert_int_equal(netrange_parse("192.0.2.7", &r), BW_OK); /* one address */
	assert_int_equal(netaddr_parse("192.0.2.7", &a), BW_OK);
	assert_true(netrange_contains(&r, &a));
	assert_int_equal(netaddr_parse("192.0.2.8", &a), BW_OK);
	assert_false(netrange_contains(&r, &a));
	assert_int_equal(netrange_parse("0.0.0.0/0", &r), BW_OK);
	assert_true(netrange_contains(&r, &a));
	struct netrange list[NETADDR_MAX_RANGES];
	size_t n;
	assert_int_equal(netrange_list_parse("10.0.0.0/8, 192.168.1.0/24 ::1", list, &n), BW_OK);
	assert_int_equal(n, 3);
	assert_int_equal(netrange_list_parse("10.0.0.0/8, nonsense", list, &n), BW_ERR_INVALID);
}

static void
client_of(const char *peer, const char *xff, const char *trusted, char *out)
{
	struct netrange t[NETADDR_MAX_RANGES];
	struct netaddr p, c;
	size_t n;
	assert_int_equal(netrange_list_parse(trusted, t, &n), BW_OK);
	assert_int_equal(netaddr_parse(peer, &p), BW_OK);
	netaddr_client(&p, xff, t, n, &c);
	netaddr_format(&c, out, 64);
}

static void
test_forwarded_for(void **state)
{
	(void)state;
	char c[64];
	/* from an untrusted peer the header changes nothing */
	client_of("203.0.113.9", "198.51.100.1", "10.0.0.0/8", c);
	assert_string_equal(c, "203.0.113.9");
	/* through a trusted proxy: the right-most address that is not a proxy */
	client_of("10.0.0.2", "198.51.100.1", "10.0.0.0/8", c);
	assert_string_equal(c, "198.51.100.1");
	client_of("10.0.0.2", "6.6.6.6, 198.51.100.1, 10.0.0.7", "10.0.0.0/8", c);
	assert_string_equal(c, "198.51.100.1"); /* a spoofed left part is ignored */
	client_of("10.0.0.2", " 198.51.100.1 ", "10.0.0.0/8", c);
	assert_string_equal(c, "198.51.100.1");
	/* malformed from a trusted proxy: unknown, never the proxy's own address */
	client_of("10.0.0.2", "198.51.100.1, garbage", "10.0.0.0/8", c);
	assert_string_equal(c, "::");
	client_of("10.0.0.2", "198.51.100.1,,", "10.0.0.0/8", c);
	assert_string_equal(c, "::");
	/* no trusted proxies configured: the peer, always */
	client_of("10.0.0.2", "198.51.100.1", "", c);
	assert_string_equal(c, "10.0.0.2");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_addresses),
		cmocka_unit_test(test_ranges),
		cmocka_unit_test(test_forwarded_for),
	};
	return cmocka_run_group_tests_name("netaddr", tests, NULL, NULL);
}
