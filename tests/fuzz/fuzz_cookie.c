/*
 * libFuzzer target for the Cookie header parser (src/auth/cookie.c): every
 * request's Cookie header is untrusted, and what it returns is hashed and
 * looked up as a session. Holds auth_cookie_find() to a second, plainer
 * reading of the header written here (RFC 6265 section 4.2: pairs split on
 * ';', optional white space around each pair, the name up to the first
 * '='):
 *   - the first pair whose name is exactly __Host-bulwark_session decides;
 *     a name that merely ends or starts with it never counts;
 *   - a secret is found iff that pair's value is AUTH_SECRET_CHARS
 *     base64url characters, and the secret is exactly those bytes;
 *   - nothing is ever written past the 48 bytes of the secret buffer.
 *   build/fuzz/fuzz_cookie -max_total_time=600 build/fuzz/corpus-fuzz_cookie
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/auth/auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAX 4096

static int
fuzz_ows(char c)
{
	return c == ' ' || c == '\t';
}

static int
fuzz_b64url(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_';
}

/*
 * The oracle: the value of the first session cookie pair in h, trimmed, as
 * [*v, *v + *vn); 0 when there is none.
 */
static int
fuzz_reference(const char *h, const char **v, size_t *vn)
{
	static const char name[] = AUTH_SESSION_COOKIE;
	const size_t nl = sizeof(name) - 1;
	const char *p = h;
	for (;;) {
		const char *end = strchr(p, ';');
		if (end == NULL)
			end = p + strlen(p);
		const char *a = p, *b = end;
		while (a < b && fuzz_ows(*a))
			a++;
		while (b > a && fuzz_ows(b[-1]))
			b--;
		if ((size_t)(b - a) > nl && memcmp(a, name, nl) == 0 && a[nl] == '=') {
			*v = a + nl + 1;
			*vn = (size_t)(b - *v);
			return 1;
		}
		if (*end == '\0')
			return 0;
		p = end + 1;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char h[FUZZ_MAX + 1], secret[48 + 16];
	if (size > FUZZ_MAX)
		return 0;
	memcpy(h, data, size);
	h[size] = '\0'; /* the header as the server sees it: up to the first NUL */

	/* Bytes after the 48 the API allows: any write there is a bug. */
	memset(secret, 0xa5, sizeof(secret));
	int found = auth_cookie_find(h, secret);
	for (size_t i = 48; i < sizeof(secret); i++)
		if ((unsigned char)secret[i] != 0xa5)
			abort();

	const char *v = NULL;
	size_t vn = 0;
	int want = fuzz_reference(h, &v, &vn) && vn == AUTH_SECRET_CHARS;
	for (size_t i = 0; want && i < vn; i++)
		want = fuzz_b64url(v[i]);
	if (found != want)
		abort();
	if (found) {
		if (strlen(secret) != vn || memcmp(secret, v, vn) != 0)
			abort();
	}
	/* NULL is no header at all. */
	if (auth_cookie_find(NULL, secret))
		abort();
	return 0;
}
