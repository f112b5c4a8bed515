/*
 * libFuzzer target for the framing check: any bytes, laid out the way
 * libmicrohttpd 0.9.75 leaves a request head (terminators as NULs, colons
 * as NULs, pointers into one buffer), in a buffer that ends exactly where
 * the head does, so AddressSanitizer catches any read past the head.
 * A first byte with the low bit set also moves one name out of the buffer,
 * as the parser does when it appends an obs-folded line.
 *   build/fuzz/fuzz_framing -max_total_time=600 build/fuzz/corpus-fuzz_framing
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/http/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The end of the line at p (its terminator's first byte) and after it, or NULL. */
static char *
line_end(char *p, char *lim, char **after)
{
	char *lf = memchr(p, '\n', (size_t)(lim - p));
	if (lf == NULL)
		return NULL;
	char *eol = lf > p && lf[-1] == '\r' ? lf - 1 : lf;
	memset(eol, 0, (size_t)(lf - eol) + 1);
	*after = lf + 1;
	return eol;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 8192)
		return 0;
	int move = data[0] & 1;
	data++, size--;
	/* Only the head is kept: the buffer ends right after the blank line. */
	char *tmp = malloc(size);
	if (tmp == NULL)
		return 0;
	memcpy(tmp, data, size);
	char *lim = tmp + size, *after, *eol;
	struct http_field f[FRAMING_FIELDS_MAX];
	size_t n = 0, head_len = 0;
	const char *version = NULL;
	char *moved = NULL;
	if ((eol = line_end(tmp, lim, &after)) == NULL)
		goto out;
	for (char *p = after; (eol = line_end(p, lim, &after)) != NULL; p = after) {
		if (eol == p) {
			head_len = (size_t)(after - tmp);
			break;
		}
		if (n == FRAMING_FIELDS_MAX)
			goto out;
		char *colon = memchr(p, ':', (size_t)(eol - p));
		if (colon == NULL)
			goto out; /* the parser refuses a line without a colon itself */
		*colon = '\0';
		char *v = colon + 1;
		while (*v == ' ' || *v == '\t')
			v++;
		f[n++] = (struct http_field){p, v, strlen(p), strlen(v)};
	}
	if (head_len == 0)
		goto out;
	char *head = malloc(head_len);
	if (head == NULL)
		goto out;
	memcpy(head, tmp, head_len);
	for (size_t i = 0; i < n; i++) {
		f[i].name = head + (f[i].name - tmp);
		f[i].value = head + (f[i].value - tmp);
	}
	char *sp = memrchr(head, ' ', strlen(head));
	version = sp != NULL ? sp + 1 : "";
	if (sp != NULL)
		*sp = '\0';
	if (move && n > 0) {
		moved = strdup(f[0].name);
		if (moved != NULL)
			f[0].name = moved;
	}
	struct framing fr;
	const char *why;
	bw_err e = framing_check(version, f, n, head + head_len, &fr, &why);
	if ((e == BW_OK) != (why == NULL))
		abort();
	if (moved != NULL && e == BW_OK)
		abort(); /* a name out of its line must never pass */
	free(moved);
	free(head);
out:
	free(tmp);
	return 0;
}
