/*
 * CSV exports over the bounded buffer: quoting, the mirror the older
 * callers read (b, len), csv_take, and that past CSV_MAX the export fails
 * and drops the rest instead of growing.
 */
#include "unit.h"

#include "http/http.h"

static void
test_csv_cells_and_take(void **state)
{
	(void)state;
	struct csv c = {0};
	json_t *a = json_string("a\"b"), *f = json_string("=1+1"), *n = json_integer(-7),
	       *o = json_pack("{s:i}", "k", 1);
	csv_cell(&c, a, 1);
	csv_cell(&c, f, 0);
	csv_cell(&c, n, 0);
	csv_cell(&c, o, 0);
	csv_cell(&c, NULL, 0);
	csv_end_line(&c);
	json_decref(a);
	json_decref(f);
	json_decref(n);
	json_decref(o);
	static const char want[] = "\"a\"\"b\",\"'=1+1\",\"-7\",\"{\"\"k\"\":1}\",\"\"\r\n";
	assert_false(c.failed);
	/* The mirror the callers in list_api.c and audit_api.c read. */
	assert_int_equal(c.len, strlen(want));
	assert_string_equal(c.b, want);
	char *out;
	size_t len;
	assert_int_equal(csv_take(&c, &out, &len), BW_OK);
	assert_string_equal(out, want);
	assert_int_equal(len, strlen(want));
	assert_null(c.b);
	assert_int_equal(c.len, 0);
	free(out);
}

static void
test_csv_past_maximum(void **state)
{
	(void)state;
	struct csv c = {0};
	csv_put(&c, "x", 1);
	/* Refused before a byte is read: the pointer is never dereferenced. */
	csv_put(&c, "y", CSV_MAX);
	assert_true(c.failed);
	assert_int_equal(c.len, 1);
	assert_string_equal(c.b, "x");
	/* The rest is dropped. */
	csv_put(&c, "z", 1);
	assert_int_equal(c.len, 1);
	char *out = (char *)"unchanged";
	size_t len = 5;
	assert_int_equal(csv_take(&c, &out, &len), BW_ERR_TOO_LARGE);
	assert_null(out);
	assert_int_equal(len, 0);
	assert_null(c.buf.p);

	/* One byte over CSV_MAX in total is refused too: the check is on the sum. */
	struct csv d = {0};
	csv_put(&d, "ab", 2);
	csv_put(&d, "q", CSV_MAX - 1);
	assert_true(d.failed);
	free(d.b); /* the older callers' way out */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_csv_cells_and_take),
		cmocka_unit_test(test_csv_past_maximum),
	};
	return cmocka_run_group_tests_name("csv", tests, NULL, NULL);
}
