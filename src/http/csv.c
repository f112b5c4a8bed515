/*
 * CSV for exports (RFC 4180: every cell quoted, CRLF line ends), with a hard
 * maximum size, and cells that a spreadsheet would run as a formula (=, +,
 * -, @, tab, CR first) defused with a leading quote.
 */
#include "http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
csv_put(struct csv *c, const char *s, size_t n)
{
	if (c->failed)
		return;
	/* A zeroed struct csv (how callers start one) gets its maximum here. */
	if (c->buf.p == NULL && c->buf.max == 0)
		buf_init(&c->buf, CSV_MAX);
	if (buf_append(&c->buf, s, n) != BW_OK) {
		c->failed = 1;
		return;
	}
	c->b = c->buf.p;
	c->len = buf_len(&c->buf);
}

void
csv_cell(struct csv *c, json_t *v, int first)
{
	char num[32];
	char *dump = NULL;
	const char *s = "";
	if (!first)
		csv_put(c, ",", 1);
	if (json_is_string(v)) {
		s = json_string_value(v);
	} else if (json_is_boolean(v)) {
		s = json_is_true(v) ? "true" : "false";
	} else if (json_is_integer(v)) {
		snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(v));
		s = num;
	} else if (json_is_object(v) || json_is_array(v)) {
		/* Nested values (an audit row's before/after) as compact JSON text. */
		dump = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
		if (dump == NULL) {
			c->failed = 1;
			return;
		}
		s = dump;
	}
	csv_put(c, "\"", 1);
	if (json_is_string(v) && s[0] != '\0' && strchr("=+-@\t\r", s[0]) != NULL)
		csv_put(c, "'", 1);
	for (const char *q; (q = strchr(s, '"')) != NULL; s = q + 1) {
		csv_put(c, s, (size_t)(q - s));
		csv_put(c, "\"\"", 2);
	}
	csv_put(c, s, strlen(s));
	csv_put(c, "\"", 1);
	free(dump);
}

void
csv_end_line(struct csv *c)
{
	csv_put(c, "\r\n", 2);
}

bw_err
csv_take(struct csv *c, char **out, size_t *len)
{
	c->b = NULL;
	c->len = 0;
	if (c->failed) {
		buf_free(&c->buf);
		*out = NULL;
		*len = 0;
		return BW_ERR_TOO_LARGE;
	}
	return buf_take(&c->buf, out, len);
}
