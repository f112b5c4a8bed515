/*
 * libFuzzer target for the query-string parser (src/http/query.c), which
 * every list, filter, export and audit request runs over attacker input,
 * and for the CSV cell writer (src/http/csv.c) that exports what was
 * stored from such input. Invariants: decoded names and values hold no
 * NUL, names are unique and bounded in number; every CSV cell reads back
 * (RFC 4180 unquoting) as the value it was made from, with a leading
 * quote added exactly when the value starts like a spreadsheet formula.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/http/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Unquote one cell "..." (quotes doubled inside) into out; its length or -1. */
static long
unquote(const char *c, size_t n, char *out)
{
	size_t o = 0;
	if (n < 2 || c[0] != '"' || c[n - 1] != '"')
		return -1;
	for (size_t i = 1; i + 1 < n; i++) {
		if (c[i] == '"') {
			if (i + 2 >= n || c[i + 1] != '"')
				return -1;
			i++;
		}
		out[o++] = c[i];
	}
	return (long)o;
}

static void
check_cell(const char *v)
{
	struct csv c = {0};
	json_t *j = json_string(v);
	if (j == NULL)
		return; /* not UTF-8: jansson refuses it, and so would the API */
	csv_cell(&c, j, 1);
	json_decref(j);
	char *text;
	size_t len;
	if (csv_take(&c, &text, &len) != BW_OK)
		abort();
	char *back = malloc(len + 1);
	long n = back ? unquote(text, len, back) : -1;
	if (n < 0)
		abort();
	int formula = v[0] != '\0' && strchr("=+-@\t\r", v[0]) != NULL;
	size_t off = formula ? 1 : 0;
	if (formula && (n < 1 || back[0] != '\''))
		abort();
	if ((size_t)n - off != strlen(v) || memcmp(back + off, v, strlen(v)) != 0)
		abort();
	free(back);
	free(text);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http_req req;
	struct http_query q;
	char *s = malloc(size + 1);
	if (s == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	memset(&req, 0, sizeof(req));
	req.pool = pool_new(1 << 20);
	req.query = s;
	if (req.pool != NULL && strlen(s) == size && http_query_parse(&req, &q) == BW_OK) {
		if (q.n > HTTP_QUERY_MAX)
			abort();
		for (size_t i = 0; i < q.n; i++) {
			for (size_t k = 0; k < i; k++)
				if (strcmp(q.key[i], q.key[k]) == 0)
					abort(); /* a name given twice must be refused */
			check_cell(q.key[i]);
			check_cell(q.val[i]);
		}
	}
	pool_free(req.pool);
	free(s);
	return 0;
}
