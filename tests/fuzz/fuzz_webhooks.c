/*
 * libFuzzer target for what an inbound webhook and a subscription URL hand
 * the server (src/webhooks/sig.c, src/webhooks/egress.c). The first byte
 * picks the parser, the rest is split at the first two newlines into
 * header, second field and body:
 *   0  whsig_verify (webhook-id = field 2, webhook-timestamp fixed at now,
 *      webhook-signature = header)
 *   1  whsig_stripe_verify (Stripe-Signature = header)
 *   2  whsig_intuit_verify (intuit-signature = header)
 *   3  egress_url_check (the header as a URL)
 * Held to: no crash or read past the input; a random signature never
 * verifies under the fixed secret (only the one the target signs itself
 * does, and it must); a URL accepted starts with "https://" (any case), has no
 * userinfo, backslash, control byte or '%' in its host, and is at most
 * 2048 bytes.
 *   build/fuzz/fuzz_webhooks -max_total_time=60 build/fuzz/corpus-fuzz_webhooks
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "../../src/webhooks/egress.h"
#include "../../src/webhooks/sig.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char secret_sw[] = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
static const char secret_stripe[] = "whsec_fuzz_stripe_secret";

static char *
part(const uint8_t **p, size_t *n)
{
	const uint8_t *nl = memchr(*p, '\n', *n);
	size_t len = nl != NULL ? (size_t)(nl - *p) : *n;
	char *s = malloc(len + 1);
	if (s == NULL)
		abort();
	memcpy(s, *p, len);
	s[len] = '\0';
	*p += len + (nl != NULL);
	*n -= len + (nl != NULL);
	return s;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	int pick = data[0] % 4;
	const uint8_t *p = data + 1;
	size_t n = size - 1;
	char *header = part(&p, &n), *field = part(&p, &n);
	const uint8_t *body = p;
	size_t blen = n;
	int64_t now = (int64_t)time(NULL), ts = 0;
	enum whsig_why why = WHSIG_OK;
	char tsbuf[32], sig[WHSIG_SIG_LEN], sh[256], why_s[256];
	snprintf(tsbuf, sizeof(tsbuf), "%lld", (long long)now);
	switch (pick) {
	case 0:
		if (whsig_verify(secret_sw, field, tsbuf, header, body, blen, now, 300, &why) == BW_OK)
			abort(); /* a signature made without the key */
		if (field[0] != '\0' && strlen(field) <= WHSIG_ID_MAX &&
		    whsig_sign(secret_sw, field, now, body, blen, sig, sizeof(sig)) == BW_OK &&
		    whsig_verify(secret_sw, field, tsbuf, sig, body, blen, now, 300, &why) != BW_OK)
			abort(); /* our own signature must verify */
		break;
	case 1:
		if (whsig_stripe_verify(secret_stripe, header, body, blen, now, 300, &ts, &why) == BW_OK)
			abort();
		if (whsig_stripe_sign(secret_stripe, now, body, blen, sh, sizeof(sh)) == BW_OK &&
		    whsig_stripe_verify(secret_stripe, sh, body, blen, now, 300, &ts, &why) != BW_OK)
			abort();
		break;
	case 2:
		if (whsig_intuit_verify("fuzz-verifier-token", header, body, blen, &why) == BW_OK)
			abort();
		break;
	case 3:
		if (egress_url_check(header, data[0] & 4, why_s, sizeof(why_s)) == BW_OK) {
			size_t len = strlen(header);
			if (len > 2048 || strncasecmp(header, "https://", 8) != 0)
				abort();
			const char *h = header + 8;
			size_t hl = strcspn(h, "/?#");
			for (size_t i = 0; i < hl; i++)
				if (h[i] == '@' || h[i] == '\\' || h[i] == '%' ||
				    (unsigned char)h[i] < 0x21 || (unsigned char)h[i] >= 0x7f)
					abort();
		}
		break;
	default:
		abort();
	}
	free(header);
	free(field);
	return 0;
}
