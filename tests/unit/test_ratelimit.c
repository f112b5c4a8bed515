#include "unit.h"

#include "http/http.h"

static void
test_burst_then_refuse_then_refill(void **state)
{
	(void)state;
	struct ratelimit *rl = ratelimit_new(10, 3);
	uint64_t t = 1000000;
	assert_true(ratelimit_take(rl, "10.0.0.1", t));
	assert_true(ratelimit_take(rl, "10.0.0.1", t));
	assert_true(ratelimit_take(rl, "10.0.0.1", t));
	assert_false(ratelimit_take(rl, "10.0.0.1", t));
	/* Another address has its own bucket. */
	assert_true(ratelimit_take(rl, "10.0.0.2", t));
	/* 10/s: one token back after 100 ms, not before. */
	assert_false(ratelimit_take(rl, "10.0.0.1", t + 50000));
	assert_true(ratelimit_take(rl, "10.0.0.1", t + 100000));
	assert_false(ratelimit_take(rl, "10.0.0.1", t + 100000));
	/* Refill stops at the burst size. */
	t += 60000000;
	for (int i = 0; i < 3; i++)
		assert_true(ratelimit_take(rl, "10.0.0.1", t));
	assert_false(ratelimit_take(rl, "10.0.0.1", t));
	ratelimit_free(rl);
}

static void
test_disabled_and_reconfigured(void **state)
{
	(void)state;
	struct ratelimit *rl = ratelimit_new(0, 1);
	for (int i = 0; i < 1000; i++)
		assert_true(ratelimit_take(rl, "::1", 5));
	ratelimit_configure(rl, 1, 1);
	assert_true(ratelimit_take(rl, "::1", 10));
	assert_false(ratelimit_take(rl, "::1", 10));
	ratelimit_free(rl);
}

/* A flood of distinct addresses keeps memory fixed and never refuses a newcomer. */
static void
test_many_addresses_bounded(void **state)
{
	(void)state;
	struct ratelimit *rl = ratelimit_new(1, 1);
	char a[64];
	for (int i = 0; i < 200000; i++) {
		snprintf(a, sizeof(a), "2001:db8::%x:%x", i >> 16, i & 0xffff);
		assert_true(ratelimit_take(rl, a, (uint64_t)i));
	}
	/* A hot address that is active keeps its (empty) bucket. */
	assert_true(ratelimit_take(rl, "192.0.2.1", 300000));
	assert_false(ratelimit_take(rl, "192.0.2.1", 300001));
	ratelimit_free(rl);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_burst_then_refuse_then_refill),
		cmocka_unit_test(test_disabled_and_reconfigured),
		cmocka_unit_test(test_many_addresses_bounded),
	};
	return cmocka_run_group_tests_name("ratelimit", tests, NULL, NULL);
}
