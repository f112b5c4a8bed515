/*
 * Strict address parsing: an allowlist or proxy list with a typo must be
 * refused at start-up, never read as something wider than meant.
 */
#include "netaddr.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

static const unsigned char v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static int
netaddr_is_v4(const struct netaddr *a)
{
	return memcmp(a->a, v4mapped, sizeof(v4mapped)) == 0;
}

bw_err
netaddr_parse(const char *s, struct netaddr *out)
{
	char buf[64];
	size_t n = strlen(s);
	if (n == 0 || n >= sizeof(buf))
		return BW_ERR_INVALID;
	memcpy(buf, s, n + 1);
	/* Only hex digits, dots and colons: no zones, brackets, ports or spaces. */
	if (strspn(buf, "0123456789abcdefABCDEF.:") != n)
		return BW_ERR_INVALID;
	struct in_addr v4;
	if (strchr(buf, ':') == NULL) {
		/* inet_pton refuses octal-looking parts; check anyway: 010 is not 8. */
		for (const char *p = buf; *p; p++)
			if (*p == '0' && (p == buf || p[-1] == '.') && p[1] >= '0' && p[1] <= '9')
				return BW_ERR_INVALID;
		if (inet_pton(AF_INET, buf, &v4) != 1)
			return BW_ERR_INVALID;
		memcpy(out->a, v4mapped, 12);
		memcpy(out->a + 12, &v4, 4);
		return BW_OK;
	}
	if (inet_pton(AF_INET6, buf, out->a) != 1)
		return BW_ERR_INVALID;
	return BW_OK;
}

void
netaddr_format(const struct netaddr *a, char *out, size_t outlen)
{
	if (netaddr_is_v4(a))
		inet_ntop(AF_INET, a->a + 12, out, (socklen_t)outlen);
	else
		inet_ntop(AF_INET6, a->a, out, (socklen_t)outlen);
}

bw_err
netrange_parse(const char *s, struct netrange *out)
{
	char addr[64];
	const char *slash = strchr(s, '/');
	size_t al = slash ? (size_t)(slash - s) : strlen(s);
	if (al == 0 || al >= sizeof(addr))
		return BW_ERR_INVALID;
	memcpy(addr, s, al);
	addr[al] = '\0';
	if (netaddr_parse(addr, &out->base) != BW_OK)
		return BW_ERR_INVALID;
	int v4 = netaddr_is_v4(&out->base) && strchr(addr, ':') == NULL;
	unsigned max = v4 ? 32 : 128;
	unsigned bits = max;
	if (slash != NULL) {
		long v;
		/* digits only, no sign, no leading zero */
		if (slash[1] == '\0' || (slash[1] == '0' && slash[2] != '\0') ||
		    util_parse_long(slash + 1, 0, (long)max, &v) != BW_OK || slash[1] == '-')
			return BW_ERR_INVALID;
		bits = (unsigned)v;
	}
	out->bits = v4 ? bits + 96 : bits;
	/* No host bits set beyond the prefix. */
	for (unsigned i = out->bits; i < 128; i++)
		if (out->base.a[i / 8] & (0x80u >> (i % 8)))
			return BW_ERR_INVALID;
	return BW_OK;
}

int
netrange_contains(const struct netrange *r, const struct netaddr *a)
{
	unsigned full = r->bits / 8, rest = r->bits % 8;
	if (memcmp(r->base.a, a->a, full) != 0)
		return 0;
	if (rest == 0)
		return 1;
	unsigned char mask = (unsigned char)(0xffu << (8 - rest));
	return (r->base.a[full] & mask) == (a->a[full] & mask);
}

bw_err
netrange_list_parse(const char *s, struct netrange *out, size_t *n)
{
	char item[80];
	*n = 0;
	while (*s) {
		s += strspn(s, " ,\t");
		if (*s == '\0')
			break;
		size_t len = strcspn(s, " ,\t");
		if (len >= sizeof(item) || *n == NETADDR_MAX_RANGES)
			return BW_ERR_INVALID;
		memcpy(item, s, len);
		item[len] = '\0';
		if (netrange_parse(item, &out[*n]) != BW_OK)
			return BW_ERR_INVALID;
		(*n)++;
		s += len;
	}
	return BW_OK;
}

static int
netaddr_trusted(const struct netaddr *a, const struct netrange *t, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (netrange_contains(&t[i], a))
			return 1;
	return 0;
}

void
netaddr_client(const struct netaddr *peer, const char *xff, const struct netrange *trusted,
	       size_t ntrusted, struct netaddr *client)
{
	*client = *peer;
	if (xff == NULL || ntrusted == 0 || !netaddr_trusted(peer, trusted, ntrusted))
		return; /* from anyone else the header means nothing */
	/* Walk from the right: proxies we trust append; the first other one is the client. */
	size_t end = strlen(xff);
	while (end > 0) {
		size_t start = end;
		while (start > 0 && xff[start - 1] != ',')
			start--;
		char item[64];
		size_t b = start, e = end;
		while (b < e && (xff[b] == ' ' || xff[b] == '\t'))
			b++;
		while (e > b && (xff[e - 1] == ' ' || xff[e - 1] == '\t'))
			e--;
		struct netaddr a;
		/*
		 * Malformed: the client is unknown. Not the proxy's own address,
		 * which an allowlist may well contain: "::" matches no sane list.
		 */
		if (e - b == 0 || e - b >= sizeof(item)) {
			memset(client, 0, sizeof(*client));
			return;
		}
		memcpy(item, xff + b, e - b);
		item[e - b] = '\0';
		if (netaddr_parse(item, &a) != BW_OK) {
			memset(client, 0, sizeof(*client));
			return;
		}
		*client = a;
		if (!netaddr_trusted(&a, trusted, ntrusted))
			return;
		end = start > 0 ? start - 1 : 0;
	}
}
