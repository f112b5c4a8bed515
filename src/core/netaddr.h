/*
 * netaddr: IPv4/IPv6 addresses and CIDR ranges parsed strictly, and the
 * client address behind trusted reverse proxies (X-Forwarded-For).
 */
#ifndef BW_NETADDR_H
#define BW_NETADDR_H

#include <stddef.h>
#include <stdint.h>

#include "core.h"

/* An address as 16 bytes: IPv4 is kept IPv4-mapped (::ffff:a.b.c.d). */
struct netaddr {
	unsigned char a[16];
};

struct netrange {
	struct netaddr base;
	unsigned bits; /* prefix length over the 128-bit form */
};

#define NETADDR_MAX_RANGES 64

/*
 * Parse one address ("192.0.2.1", "2001:db8::1", "::ffff:192.0.2.1"):
 * BW_ERR_INVALID for anything else, including leading zeros in IPv4 parts,
 * zone ids, brackets, ports and spaces.
 */
bw_err netaddr_parse(const char *s, struct netaddr *out) BW_MUST_USE;
/* Text form into out (INET6_ADDRSTRLEN): IPv4-mapped addresses as IPv4. */
void netaddr_format(const struct netaddr *a, char *out, size_t outlen);
/*
 * Parse a range "addr/len" (IPv4 len 0-32, IPv6 0-128) or a single address;
 * bits set outside the prefix are refused ("10.0.0.1/8" is a typo, not 10/8).
 */
bw_err netrange_parse(const char *s, struct netrange *out) BW_MUST_USE;
int netrange_contains(const struct netrange *r, const struct netaddr *a);
/* A comma/space separated list of ranges (at most NETADDR_MAX_RANGES). */
bw_err netrange_list_parse(const char *s, struct netrange *out, size_t *n) BW_MUST_USE;

/*
 * The client of a request that came from peer: when peer is one of the
 * trusted proxies, the right-most X-Forwarded-For entry that is not itself
 * a trusted proxy; otherwise the peer. A malformed header from a trusted
 * proxy gives "::" (unknown: it matches no allowlist).
 */
void netaddr_client(const struct netaddr *peer, const char *xff, const struct netrange *trusted,
		    size_t ntrusted, struct netaddr *client);

#endif
