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
	if (n > CSV_MAX - c->len) {
		c->failed = 1;
		return;
	}
	if (c->len + n + 1 > c->cap) {
		size_t nc = c->cap ? c->cap : 4096;
		while (nc < c->len + n + 1)
			nc *= 2;
		char *nb = realloc(c->b, nc);
		if (nb == NULL) {
			c->failed = 1;
			return;
		}
		c->b = nb;
		c->cap = nc;
	}
	memcpy(c->b + c->len, s, n);
	c->len += n;
	c->b[c->len] = '\0';
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
