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

/*
 * What the caller learns for the RateLimit-* headers: the bucket's size,
 * the whole requests left, seconds until it is full, and when refused the
 * seconds until the next request is allowed (each rounded up).
 */
static void
test_state(void **state)
{
	(void)state;
	struct ratelimit *rl = ratelimit_new(2, 5); /* 2/s, burst 5 */
	struct ratelimit_state st;
	uint64_t t = 1000000;
	assert_true(ratelimit_check(rl, "10.0.0.1", t, &st));
	assert_int_equal(st.limit, 5);
	assert_int_equal(st.remaining, 4);
	assert_int_equal(st.reset, 1); /* one token at 2/s: 0.5 s, rounded up */
	assert_int_equal(st.retry_after, 0);
	for (long left = 3; left >= 0; left--) {
		assert_true(ratelimit_check(rl, "10.0.0.1", t, &st));
		assert_int_equal(st.remaining, left);
	}
	assert_int_equal(st.reset, 3); /* 5 tokens at 2/s: 2.5 s */
	assert_false(ratelimit_check(rl, "10.0.0.1", t, &st));
	assert_int_equal(st.remaining, 0);
	assert_int_equal(st.retry_after, 1);
	assert_int_equal(st.reset, 3);
	/* 0.25 s later: a half token, still refused, the next one 0.25 s away (1 s rounded up). */
	assert_false(ratelimit_check(rl, "10.0.0.1", t + 250000, &st));
	assert_int_equal(st.retry_after, 1);
	assert_int_equal(st.reset, 3); /* 2.25 s */
	/* 0.5 s after the start: one token back, taken. */
	assert_true(ratelimit_check(rl, "10.0.0.1", t + 500000, &st));
	assert_int_equal(st.remaining, 0);
	assert_int_equal(st.retry_after, 0);
	/* Long after: full again, this request taking one of the 5. */
	assert_true(ratelimit_check(rl, "10.0.0.1", t + 60000000, &st));
	assert_int_equal(st.remaining, 4);
	assert_int_equal(st.reset, 1);
	/* A slow limiter (6 a minute): refused for 10 s. */
	ratelimit_configure(rl, 0.1, 1);
	assert_true(ratelimit_check(rl, "10.0.0.2", t, &st));
	assert_false(ratelimit_check(rl, "10.0.0.2", t, &st));
	assert_int_equal(st.limit, 1);
	assert_int_equal(st.retry_after, 10);
	assert_int_equal(st.reset, 10);
	/* Off: no state to show (limit 0), everything allowed; NULL state is fine. */
	ratelimit_configure(rl, 0, 5);
	assert_true(ratelimit_check(rl, "10.0.0.2", t, &st));
	assert_int_equal(st.limit, 0);
	assert_true(ratelimit_check(rl, "10.0.0.2", t, NULL));
	ratelimit_free(rl);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_burst_then_refuse_then_refill),
		cmocka_unit_test(test_disabled_and_reconfigured),
		cmocka_unit_test(test_many_addresses_bounded),
		cmocka_unit_test(test_state),
	};
	return cmocka_run_group_tests_name("ratelimit", tests, NULL, NULL);
}
