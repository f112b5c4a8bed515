/*
 * bench/crypto: sealing and opening a 32-byte field, per core.
 *   raw:      the envelope alone (seal_with_key / open_with_key), with the
 *             AES-GCM implementation aead_seal picks (libsodium's AES-NI
 *             code where the CPU has it)
 *   evp:      the AES-256-GCM primitive alone through OpenSSL's EVP (the
 *             fallback; what the envelope used before), same AAD length
 *   key ring: what the data layer calls: data key lookup and encryption
 *             counting (keyring_seal / keyring_open_sealed into a buffer,
 *             as the module engine does), then field_seal / field_open,
 *             which also malloc the result
 * Compare with `openssl speed -evp aes-256-gcm -bytes 32` (bench/crypto_run).
 * usage: crypto [--seconds N] [--var DIR]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../src/crypto/crypto.h"
#include "../src/db/migrate.h"
#include "../src/tenancy/tenancy.h"
#include "bench.h"

static double
rate(uint64_t ops, uint64_t us)
{
	return (double)ops * 1e6 / (double)us;
}

int
main(int argc, char **argv)
{
	double secs = 2.0;
	const char *var = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
			secs = atof(argv[++i]);
		else if (strcmp(argv[i], "--var") == 0 && i + 1 < argc)
			var = argv[++i];
		else {
			fprintf(stderr, "usage: crypto [--seconds N] [--var DIR]\n");
			return 2;
		}
	}
	unsigned char key[32], pt[32], sealed[32 + SEAL_OVERHEAD], out[64];
	memset(key, 7, sizeof(key));
	memset(pt, 'x', sizeof(pt));
	struct seal_place pl = {"acme", "customers", "phone", 12345};
	uint64_t budget = (uint64_t)(secs * 1e6), n, t0, el;

	for (n = 0, t0 = util_now_us(); (el = util_now_us() - t0) < budget; n++)
		if (seal_with_key(key, 1, &pl, pt, sizeof(pt), sealed) != BW_OK)
			return 1;
	printf("raw seal, 32-byte field:      %10.0f ops/s\n", rate(n, el));
	for (n = 0, t0 = util_now_us(); (el = util_now_us() - t0) < budget; n++)
		if (open_with_key(key, &pl, sealed, sizeof(sealed), out) != BW_OK)
			return 1;
	printf("raw open, 32-byte field:      %10.0f ops/s\n", rate(n, el));
	unsigned char nonce[AEAD_NONCE_LEN] = {1}, aad[48] = {2}, ct[32], tag[AEAD_TAG_LEN];
	for (n = 0, t0 = util_now_us(); (el = util_now_us() - t0) < budget; n++)
		if (aead_seal_impl(AEAD_IMPL_OPENSSL, key, 32, nonce, aad, sizeof(aad), pt, sizeof(pt),
				   ct, tag) != BW_OK)
			return 1;
	printf("evp seal, 32 bytes + 48 AAD:  %10.0f ops/s\n", rate(n, el));
	for (n = 0, t0 = util_now_us(); (el = util_now_us() - t0) < budget; n++)
		if (aead_open_impl(AEAD_IMPL_OPENSSL, key, 32, nonce, aad, sizeof(aad), ct, sizeof(ct),
				   tag, out) != BW_OK)
			return 1;
	printf("evp open, 32 bytes + 48 AAD:  %10.0f ops/s\n", rate(n, el));
	printf("(AES-256-GCM by %s)\n", aead_impl_available(AEAD_IMPL_SODIUM)
					     ? "libsodium (AES-NI, PCLMUL)"
					     : "OpenSSL EVP: libsodium's does not run on this CPU");

	if (var == NULL)
		return 0;
	/* Through the key ring, as the data layer does it. */
	struct config cfg;
	struct tenancy *t;
	char err[512], otp[64];
	int from, to;
	if (bench_config(&cfg, "sqlite", var) != 0)
		return 2;
	if (tenancy_open(&cfg, 1, &t, err, sizeof(err)) != BW_OK ||
	    migrate_run(tenancy_control(t), &migrate_control, &from, &to, err, sizeof(err)) != BW_OK ||
	    tenant_create(t, "acme", "a@b.co", "bench-password-0123", NULL, otp, sizeof(otp), err,
			  sizeof(err)) != BW_OK) {
		fprintf(stderr, "crypto: %s\n", err);
		return 1;
	}
	struct tenant *v;
	size_t nt;
	if (tenant_list(t, &v, &nt, err, sizeof(err)) != BW_OK || nt != 1)
		return 1;
	struct seal_place kpl = {"acme", "customers", "phone", 12345};
	struct keyring *kr = tenancy_keyring(t);
	for (n = 0, t0 = util_now_us(); (el = util_now_us() - t0) < budget; n++)
		if (keyring_seal(kr, v[0].active_key_id, &kpl, pt, sizeof(pt), sealed) != BW_OK)
			return 1;
	printf("key ring seal (keyring_seal): %10.0f ops/s\n", rate(n, el));
	for (n = 0, t0 = util_now_us(); (el = util_now_us() - t0) < budget; n++)
		if (keyring_open_sealed(kr, &kpl, sealed, sizeof(sealed), out) != BW_OK)
			return 1;
	printf("key ring open (keyring_open): %10.0f ops/s\n", rate(n, el));
	unsigned char *s = NULL;
	size_t sl;
	for (n = 0, t0 = util_now_us(); (el = util_now_us() - t0) < budget; n++) {
		free(s);
		if (field_seal(t, &v[0], "customers", "phone", 12345, pt, sizeof(pt), &s, &sl) != BW_OK)
			return 1;
	}
	printf("field_seal (malloc'd result): %10.0f ops/s\n", rate(n, el));
	char *o = NULL;
	size_t ol;
	for (n = 0, t0 = util_now_us(); (el = util_now_us() - t0) < budget; n++) {
		free(o);
		if (field_open(t, "acme", "customers", "phone", 12345, s, sl, &o, &ol) != BW_OK)
			return 1;
	}
	printf("field_open (malloc'd result): %10.0f ops/s\n", rate(n, el));
	free(o);
	free(s);
	free(v);
	tenancy_close(t);
	return 0;
}
