/*
 * libFuzzer target for the upload name checks (src/files/policy.c): the
 * first byte picks files_name_check (even) or files_entry_check (odd), the
 * rest is the name. Holds them to their rules, read here a second way:
 *   - a name accepted comes back NUL-ended within FILES_NAME_MAX bytes,
 *     valid UTF-8, without NUL, '/', '\\', C0/C1 controls, DEL or bidi
 *     controls, without leading spaces or trailing spaces and dots, with
 *     no blocked extension after its first dot; it has a type, and
 *     checking it again accepts it unchanged, not normalised;
 *   - a refusal says why, leaves out "" and no type;
 *   - an entry path accepted is not absolute, has no "." or ".." segment
 *     and no blocked extension in any segment.
 *   build/fuzz/fuzz_filename -max_total_time=60 build/fuzz/corpus-fuzz_filename
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../../src/files/check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Decode one UTF-8 character (strictly); its length, 0 if not UTF-8. */
static size_t
u8(const unsigned char *s, size_t n, uint32_t *cp)
{
	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	size_t len = s[0] >= 0xf0 ? 4 : s[0] >= 0xe0 ? 3 : 2;
	if (s[0] < 0xc2 || s[0] > 0xf4 || n < len)
		return 0;
	uint32_t c = s[0] & (0x3f >> (len - 1));
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (s[i] & 0x3f);
	}
	static const uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
	if (c < min[len] || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return len;
}

static void
chars_ok(const char *s)
{
	size_t n = strlen(s);
	for (size_t i = 0; i < n;) {
		uint32_t c;
		size_t l = u8((const unsigned char *)s + i, n - i, &c);
		if (l == 0)
			abort();
		if (c == '\\' || c < 0x20 || (c >= 0x7f && c <= 0x9f) || (c >= 0x202a && c <= 0x202e) ||
		    (c >= 0x2066 && c <= 0x2069) || c == 0x200e || c == 0x200f || c == 0x061c ||
		    c == 0xfeff || c == 0x200b)
			abort();
		i += l;
	}
}

/* No blocked word among the dot-parts after the first of seg[0..n) (spaces around cut). */
static void
no_blocked(const char *seg, size_t n)
{
	while (n > 0 && (seg[n - 1] == '.' || seg[n - 1] == ' '))
		n--;
	const char *p = memchr(seg, '.', n);
	while (p != NULL) {
		const char *a = p + 1, *end = seg + n;
		const char *q = memchr(a, '.', (size_t)(end - a));
		const char *b = q ? q : end;
		while (a < b && *a == ' ')
			a++;
		while (b > a && b[-1] == ' ')
			b--;
		char w[64];
		if ((size_t)(b - a) < sizeof(w)) {
			memcpy(w, a, (size_t)(b - a));
			w[b - a] = '\0';
			if (files_ext_blocked(w))
				abort();
		}
		p = q;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 4096)
		return 0;
	const char *name = (const char *)data + 1;
	size_t len = size - 1;
	if ((data[0] & 1) == 0) {
		char out[FILES_NAME_MAX + 1];
		memset(out, 'X', sizeof(out));
		const struct files_type *t = (const void *)1;
		int norm = -1;
		const char *why = (const char *)1;
		bw_err e = files_name_check(name, len, out, &t, &norm, &why);
		if (memchr(out, '\0', sizeof(out)) == NULL)
			abort();
		if (e != BW_OK) {
			if ((e != BW_ERR_INVALID && e != BW_ERR_MEDIA_TYPE) || why == NULL ||
			    out[0] != '\0' || t != NULL)
				abort();
			return 0;
		}
		size_t n = strlen(out);
		if (t == NULL || n == 0 || n > FILES_NAME_MAX || strchr(out, '/') != NULL ||
		    (norm != 0 && norm != 1) || (norm && why == NULL))
			abort();
		if (out[0] == ' ' || out[n - 1] == ' ' || out[n - 1] == '.')
			abort();
		if (!norm && (n != len || memcmp(out, name, len) != 0))
			abort();
		chars_ok(out);
		no_blocked(out, n);
		char again[FILES_NAME_MAX + 1];
		const struct files_type *t2;
		int norm2;
		if (files_name_check(out, n, again, &t2, &norm2, &why) != BW_OK || norm2 != 0 ||
		    strcmp(again, out) != 0 || t2 != t)
			abort();
		return 0;
	}
	char path[4096];
	memcpy(path, name, len);
	path[len] = '\0';
	const struct files_type *t = (const void *)1;
	const char *why = NULL;
	bw_err e = files_entry_check(path, &t, &why);
	if (e != BW_OK) {
		if ((e != BW_ERR_INVALID && e != BW_ERR_MEDIA_TYPE) || why == NULL || t != NULL)
			abort();
		return 0;
	}
	size_t n = strlen(path);
	if (n == 0 || n > FILES_PATH_MAX || path[0] == '/' || strstr(path, "//") != NULL)
		abort();
	chars_ok(path);
	for (const char *s = path; *s != '\0';) {
		const char *sl = strchr(s, '/');
		size_t k = sl ? (size_t)(sl - s) : strlen(s);
		if ((k == 1 && s[0] == '.') || (k == 2 && s[0] == '.' && s[1] == '.'))
			abort();
		no_blocked(s, k);
		s += k + (sl != NULL);
	}
	return 0;
}
