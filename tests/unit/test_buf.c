/*
 * The bounded buffer: growth, the maximum to the byte, take, and that a
 * refused append leaves the content as it was.
 */
#include "unit.h"

#include "core/core.h"

static void
test_buf_append_and_take(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 1 << 20);
	assert_string_equal(buf_ptr(&b), "");
	assert_int_equal(buf_len(&b), 0);
	assert_int_equal(buf_append(&b, "abc", 3), BW_OK);
	assert_int_equal(buf_append_str(&b, "def"), BW_OK);
	assert_int_equal(buf_append(&b, NULL, 0), BW_OK);
	assert_int_equal(buf_printf(&b, "-%d-%s", 42, "x"), BW_OK);
	assert_string_equal(buf_ptr(&b), "abcdef-42-x");
	assert_int_equal(buf_len(&b), 11);
	/* Bytes, NULs included, are kept as given. */
	assert_int_equal(buf_append(&b, "\0z", 2), BW_OK);
	assert_int_equal(buf_len(&b), 13);
	assert_memory_equal(buf_ptr(&b), "abcdef-42-x\0z", 14);

	char *out;
	size_t n;
	assert_int_equal(buf_take(&b, &out, &n), BW_OK);
	assert_int_equal(n, 13);
	assert_memory_equal(out, "abcdef-42-x\0z", 14);
	free(out);
	/* Empty afterwards, same maximum, and usable again. */
	assert_int_equal(buf_len(&b), 0);
	assert_null(b.p);
	assert_int_equal(b.max, 1 << 20);
	assert_int_equal(buf_append_str(&b, "again"), BW_OK);
	assert_string_equal(buf_ptr(&b), "again");
	buf_free(&b);
	assert_int_equal(buf_len(&b), 0);
	buf_free(&b); /* twice is fine */
	buf_free(NULL);
}

static void
test_buf_take_empty(void **state)
{
	(void)state;
	struct buf b;
	char *out;
	size_t n = 99;
	buf_init(&b, 10);
	assert_int_equal(buf_take(&b, &out, &n), BW_OK);
	assert_non_null(out);
	assert_string_equal(out, "");
	assert_int_equal(n, 0);
	free(out);
	/* len may be NULL */
	assert_int_equal(buf_append_str(&b, "x"), BW_OK);
	assert_int_equal(buf_take(&b, &out, NULL), BW_OK);
	assert_string_equal(out, "x");
	free(out);
}

static void
test_buf_maximum_exact(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 10);
	assert_int_equal(buf_append(&b, "0123456789", 10), BW_OK);
	assert_int_equal(buf_append(&b, "x", 1), BW_ERR_NOMEM);
	assert_string_equal(buf_ptr(&b), "0123456789");
	assert_int_equal(buf_len(&b), 10);
	/* Nothing more fits, but nothing is still fine. */
	assert_int_equal(buf_append(&b, "", 0), BW_OK);
	assert_true(b.cap <= 11);
	buf_free(&b);

	/* Past the maximum in one go: refused, content unchanged. */
	buf_init(&b, 10);
	assert_int_equal(buf_append_str(&b, "abcd"), BW_OK);
	assert_int_equal(buf_append(&b, "0123456", 7), BW_ERR_NOMEM);
	assert_string_equal(buf_ptr(&b), "abcd");
	assert_int_equal(buf_append(&b, "012345", 6), BW_OK);
	assert_string_equal(buf_ptr(&b), "abcd012345");
	buf_free(&b);
}

static void
test_buf_printf_maximum(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 8);
	assert_int_equal(buf_printf(&b, "%s", "abc"), BW_OK);
	/* One byte more than the maximum leaves room for. */
	assert_int_equal(buf_printf(&b, "%d", 123456), BW_ERR_NOMEM);
	assert_string_equal(buf_ptr(&b), "abc");
	assert_int_equal(buf_len(&b), 3);
	assert_int_equal(buf_printf(&b, "%d", 12345), BW_OK);
	assert_string_equal(buf_ptr(&b), "abc12345");
	assert_int_equal(buf_printf(&b, "%s", ""), BW_OK);
	assert_int_equal(buf_printf(&b, "%c", 'x'), BW_ERR_NOMEM);
	assert_string_equal(buf_ptr(&b), "abc12345");
	buf_free(&b);

	/* Larger than the room: grows, and the output is whole. */
	char big[5000];
	memset(big, 'q', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	buf_init(&b, 100000);
	assert_int_equal(buf_append_str(&b, "<"), BW_OK);
	assert_int_equal(buf_printf(&b, "%s>%d", big, 7), BW_OK);
	assert_int_equal(buf_len(&b), 1 + 4999 + 2);
	assert_int_equal(buf_ptr(&b)[0], '<');
	assert_int_equal(buf_ptr(&b)[5000], '>');
	assert_string_equal(buf_ptr(&b) + 5001, "7");
	buf_free(&b);

	/* Larger than the room and than the maximum: refused, unchanged. */
	buf_init(&b, 4000);
	assert_int_equal(buf_append_str(&b, "keep"), BW_OK);
	assert_int_equal(buf_printf(&b, "%s", big), BW_ERR_NOMEM);
	assert_string_equal(buf_ptr(&b), "keep");
	buf_free(&b);
}

static void
test_buf_zeroed_and_huge(void **state)
{
	(void)state;
	/* A zeroed buffer is empty with a maximum of 0. */
	struct buf z = {0};
	assert_string_equal(buf_ptr(&z), "");
	assert_int_equal(buf_append(&z, "a", 1), BW_ERR_NOMEM);
	assert_int_equal(buf_printf(&z, "a"), BW_ERR_NOMEM);
	assert_int_equal(buf_append(&z, "", 0), BW_OK);
	buf_free(&z);

	/* Sizes near SIZE_MAX never wrap: the append is refused, not truncated. */
	struct buf b;
	buf_init(&b, SIZE_MAX);
	assert_int_equal(buf_append_str(&b, "ab"), BW_OK);
	assert_int_equal(buf_append(&b, "x", SIZE_MAX), BW_ERR_NOMEM);
	assert_int_equal(buf_append(&b, "x", SIZE_MAX - 1), BW_ERR_NOMEM);
	assert_int_equal(buf_append(&b, "x", SIZE_MAX - 2), BW_ERR_NOMEM);
	assert_string_equal(buf_ptr(&b), "ab");
	buf_free(&b);

	buf_init(&b, 16);
	assert_int_equal(buf_append_str(&b, "ab"), BW_OK);
	assert_int_equal(buf_append(&b, "x", SIZE_MAX), BW_ERR_NOMEM);
	assert_string_equal(buf_ptr(&b), "ab");
	buf_free(&b);
}

static void
test_buf_many_appends(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 1 << 20);
	for (int i = 0; i < 100000; i++)
		assert_int_equal(buf_append(&b, "0123456789", (size_t)(i % 11)), BW_OK);
	size_t expect = 0;
	for (int i = 0; i < 100000; i++)
		expect += (size_t)(i % 11);
	assert_int_equal(buf_len(&b), expect);
	assert_int_equal(strlen(buf_ptr(&b)), expect);
	assert_true(b.cap <= b.max + 1);
	/* Fill to the byte. */
	size_t left = b.max - buf_len(&b);
	char *fill = malloc(left);
	memset(fill, 'f', left);
	assert_int_equal(buf_append(&b, fill, left), BW_OK);
	assert_int_equal(buf_len(&b), 1 << 20);
	assert_int_equal(buf_append(&b, "f", 1), BW_ERR_NOMEM);
	assert_int_equal(b.cap, (1 << 20) + 1);
	free(fill);
	buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buf_append_and_take),
		cmocka_unit_test(test_buf_take_empty),
		cmocka_unit_test(test_buf_maximum_exact),
		cmocka_unit_test(test_buf_printf_maximum),
		cmocka_unit_test(test_buf_zeroed_and_huge),
		cmocka_unit_test(test_buf_many_appends),
	};
	return cmocka_run_group_tests_name("buf", tests, NULL, NULL);
}
