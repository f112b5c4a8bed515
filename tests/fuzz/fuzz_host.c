/*
 * libFuzzer target for the Host header -> tenant parser (src/tenancy/host.c):
 * the Host header picks the tenant, and so the tenant database, of every
 * request. The first byte picks a base domain, the rest is the header.
 * Holds tenant_from_host() to the grammar
 *     host = label "." base-domain [ "." ] [ ":" 1*5DIGIT ]
 * (base domain and label case-insensitive), read here a second way:
 *   - it accepts exactly the hosts of that form whose label, lower-cased,
 *     is a valid slug (3..TENANT_SLUG_MAX of a-z, 0-9 and inner '-', not
 *     reserved), and nothing else;
 *   - the slug it returns is that label, lower-cased, NUL-ended inside
 *     its TENANT_SLUG_MAX + 1 bytes; nothing is ever written past them.
 *   build/fuzz/fuzz_host -max_total_time=600 build/fuzz/corpus-fuzz_host
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../../src/tenancy/tenancy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAX 1024

static const char *const fuzz_bases[] = {
	"localhost", "psa.example.com", "Example.COM", "a.io", "b",
};

static int
fuzz_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* The label of host under base (its bytes, not yet lower-cased), or 0. */
static int
fuzz_reference(const char *host, const char *base, const char **label, size_t *ln)
{
	size_t hn = strlen(host), bn = strlen(base);
	/* The port: the last ':' and 1 to 5 digits after it. */
	const char *colon = strrchr(host, ':');
	if (colon != NULL) {
		size_t pn = hn - (size_t)(colon - host) - 1;
		if (pn < 1 || pn > 5)
			return 0;
		for (size_t i = 1; i <= pn; i++)
			if (!fuzz_digit(colon[i]))
				return 0;
		hn = (size_t)(colon - host);
	}
	/* One trailing dot: the absolute form. */
	if (hn > 0 && host[hn - 1] == '.')
		hn--;
	/* "." base at the end, and a label before it. */
	if (hn < bn + 2 || strncasecmp(host + hn - bn, base, bn) != 0 || host[hn - bn - 1] != '.')
		return 0;
	*label = host;
	*ln = hn - bn - 1;
	/* No ':' may be left in the name (a port is only ever last). */
	if (memchr(host, ':', hn) != NULL)
		return 0;
	return 1;
}

/* Length and alphabet of a slug, checked without tenant_slug_check(). */
static int
fuzz_slug_shape(const char *s, size_t n)
{
	if (n < 3 || n > TENANT_SLUG_MAX || s[0] == '-' || s[n - 1] == '-')
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || fuzz_digit(s[i]) || s[i] == '-'))
			return 0;
	return 1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char host[FUZZ_MAX + 1], slug[TENANT_SLUG_MAX + 1 + 16], low[FUZZ_MAX + 1];
	const char *why;
	if (size < 1 || size > FUZZ_MAX + 1)
		return 0;
	const char *base = fuzz_bases[data[0] % (sizeof(fuzz_bases) / sizeof(fuzz_bases[0]))];
	memcpy(host, data + 1, size - 1);
	host[size - 1] = '\0';

	memset(slug, 0xa5, sizeof(slug));
	bw_err e = tenant_from_host(host, base, slug);
	for (size_t i = TENANT_SLUG_MAX + 1; i < sizeof(slug); i++)
		if ((unsigned char)slug[i] != 0xa5)
			abort(); /* wrote past the slug */

	const char *label = NULL;
	size_t ln = 0;
	int want = fuzz_reference(host, base, &label, &ln);
	if (want) {
		for (size_t i = 0; i < ln; i++) {
			char c = label[i];
			low[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
		}
		low[ln] = '\0';
		want = fuzz_slug_shape(low, ln) && tenant_slug_check(low, &why) == BW_OK;
	}
	if (e != BW_OK && e != BW_ERR_NOTFOUND)
		abort();
	if ((e == BW_OK) != want)
		abort();
	if (e == BW_OK) {
		if (memchr(slug, '\0', TENANT_SLUG_MAX + 1) == NULL || strcmp(slug, low) != 0 ||
		    !fuzz_slug_shape(slug, strlen(slug)))
			abort();
	}
	/* No host, no tenant. */
	if (tenant_from_host(NULL, base, slug) != BW_ERR_NOTFOUND)
		abort();
	return 0;
}
