#include "unit.h"

#include "core/core.h"

static void
test_pool_alloc_aligned_zeroed(void **state)
{
	(void)state;
	pool *p = pool_new(1 << 20);
	assert_non_null(p);
	for (int i = 1; i < 200; i += 7) {
		unsigned char *m = pool_alloc(p, (size_t)i);
		assert_non_null(m);
		assert_int_equal((uintptr_t)m % 16, 0);
		for (int k = 0; k < i; k++)
			assert_int_equal(m[k], 0);
		memset(m, 0xAA, (size_t)i);
	}
	/* A block larger than a chunk still works and leaves the head usable. */
	void *big = pool_alloc(p, 100000);
	assert_non_null(big);
	assert_non_null(pool_alloc(p, 10));
	pool_free(p);
}

static void
test_pool_maximum_enforced(void **state)
{
	(void)state;
	pool *p = pool_new(1000);
	assert_non_null(pool_alloc(p, 500));
	assert_null(pool_alloc(p, 600));
	assert_non_null(pool_alloc(p, 400));
	assert_null(pool_alloc(p, 100));
	assert_true(pool_used(p) <= 1000);
	assert_null(pool_alloc(p, SIZE_MAX));
	assert_null(pool_alloc(p, SIZE_MAX - 3));
	pool_free(p);
}

static void
test_pool_strings(void **state)
{
	(void)state;
	pool *p = pool_new(4096);
	assert_string_equal(pool_strdup(p, "tenant"), "tenant");
	assert_string_equal(pool_strndup(p, "abcdef", 3), "abc");
	assert_string_equal(pool_printf(p, "%s-%d", "a", 42), "a-42");
	pool_free(p);
	pool_free(NULL);
	assert_null(pool_alloc(NULL, 1));
}

static void
test_util_parse_long(void **state)
{
	(void)state;
	long v;
	assert_int_equal(util_parse_long("42", 0, 100, &v), BW_OK);
	assert_int_equal(v, 42);
	assert_int_equal(util_parse_long("-5", -10, 10, &v), BW_OK);
	assert_int_equal(v, -5);
	const char *bad[] = {"", " 1", "1 ", "0x10", "+1", "1e3", "abc", "101", "99999999999999999999"};
	for (size_t i = 0; i < BW_ARRAY_LEN(bad); i++)
		assert_int_equal(util_parse_long(bad[i], 0, 100, &v), BW_ERR_INVALID);
}

static void
test_util_hex_random(void **state)
{
	(void)state;
	unsigned char a[16], b[16];
	char hex[33];
	assert_int_equal(util_random(a, sizeof(a)), BW_OK);
	assert_int_equal(util_random(b, sizeof(b)), BW_OK);
	assert_memory_not_equal(a, b, sizeof(a));
	const unsigned char k[] = {0x00, 0xff, 0x1a};
	util_hex(k, 3, hex);
	assert_string_equal(hex, "00ff1a");
}

static void
test_err_codes_distinct(void **state)
{
	(void)state;
	for (int i = 0; i < BW_ERR__COUNT; i++) {
		assert_non_null(bw_errcode((bw_err)i));
		assert_non_null(bw_strerror((bw_err)i));
		for (int j = 0; j < i; j++)
			assert_string_not_equal(bw_errcode((bw_err)i), bw_errcode((bw_err)j));
	}
	assert_string_equal(bw_errcode((bw_err)9999), "internal_error");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pool_alloc_aligned_zeroed),
		cmocka_unit_test(test_pool_maximum_enforced),
		cmocka_unit_test(test_pool_strings),
		cmocka_unit_test(test_util_parse_long),
		cmocka_unit_test(test_util_hex_random),
		cmocka_unit_test(test_err_codes_distinct),
	};
	return cmocka_run_group_tests_name("core", tests, NULL, NULL);
}
