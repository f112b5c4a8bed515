/*
 * libFuzzer target for the address, range and X-Forwarded-For parsers (the
 * input an attacker controls in the allowlist and proxy code). Built with
 * clang -fsanitize=fuzzer,address,undefined by `make fuzz`; `make check`
 * runs it for a few seconds, and longer runs are by hand:
 *   build/fuzz/fuzz_netaddr -max_total_time=600 build/fuzz/corpus
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/core/netaddr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char s[512];
	struct netaddr a, peer, c;
	struct netrange r, list[NETADDR_MAX_RANGES];
	size_t n;
	if (size >= sizeof(s))
		size = sizeof(s) - 1;
	memcpy(s, data, size);
	s[size] = '\0';
	if (netaddr_parse(s, &a) == BW_OK) {
		char out[64];
		struct netaddr back;
		netaddr_format(&a, out, sizeof(out));
		if (netaddr_parse(out, &back) != BW_OK || memcmp(&a, &back, sizeof(a)) != 0)
			abort(); /* what we print we must read back the same */
	}
	if (netrange_parse(s, &r) == BW_OK && r.bits > 128)
		abort();
	(void)netrange_list_parse(s, list, &n);
	if (netrange_list_parse("127.0.0.0/8, 10.0.0.0/8", list, &n) == BW_OK &&
	    netaddr_parse("127.0.0.1", &peer) == BW_OK)
		netaddr_client(&peer, s, list, n, &c);
	return 0;
}
