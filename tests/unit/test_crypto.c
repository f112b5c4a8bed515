/*
 * AES-GCM and HMAC-SHA256 against every Wycheproof case of the groups we
 * use (valid and invalid), and the field envelope against tampering and
 * transplanting.
 */
#include "unit.h"

#include <jansson.h>
#include <sys/wait.h>

#include "crypto/crypto.h"
/*
 * The include guard covers the whole header: a second inclusion adds
 * nothing. (It once closed before the key ring's declarations, so they
 * came twice; -Wredundant-decls turns that into an error here.)
 */
#pragma GCC diagnostic push
#pragma GCC diagnostic error "-Wredundant-decls"
#include "crypto/crypto.h"
#pragma GCC diagnostic pop

#define VECTORS "../shared/vectors/wycheproof/"

static size_t
unhex(const char *h, unsigned char **out)
{
	size_t n = strlen(h) / 2;
	*out = malloc(n + 1);
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		sscanf(h + 2 * i, "%2x", &v);
		(*out)[i] = (unsigned char)v;
	}
	return n;
}

static json_t *
load(const char *name)
{
	json_error_t je;
	json_t *j = json_load_file(name, 0, &je);
	if (j == NULL)
		fail_msg("%s: %s (tests run from the repository root, with ../shared beside it)", name,
			 je.text);
	return j;
}

/* Every 96-bit-IV, 128-bit-tag case through implementation impl (aead_seal_impl). */
static void
wycheproof_aes_gcm(enum aead_impl impl, const char *name)
{
	json_t *j = load(VECTORS "aes_gcm_test.json");
	size_t gi, ti, ran = 0, valid = 0, invalid = 0;
	json_t *g, *t;
	json_array_foreach(json_object_get(j, "testGroups"), gi, g)
	{
		if (json_integer_value(json_object_get(g, "ivSize")) != 96 ||
		    json_integer_value(json_object_get(g, "tagSize")) != 128)
			continue;
		json_array_foreach(json_object_get(g, "tests"), ti, t)
		{
			unsigned char *key, *iv, *aad, *msg, *ct, *tag, *out, outtag[16];
			size_t kl = unhex(json_string_value(json_object_get(t, "key")), &key);
			unhex(json_string_value(json_object_get(t, "iv")), &iv);
			size_t al = unhex(json_string_value(json_object_get(t, "aad")), &aad);
			size_t ml = unhex(json_string_value(json_object_get(t, "msg")), &msg);
			size_t cl = unhex(json_string_value(json_object_get(t, "ct")), &ct);
			size_t tl = unhex(json_string_value(json_object_get(t, "tag")), &tag);
			const char *result = json_string_value(json_object_get(t, "result"));
			long id = (long)json_integer_value(json_object_get(t, "tcId"));
			int expect_ok = strcmp(result, "invalid") != 0;
			if (impl == AEAD_IMPL_SODIUM && kl != AEAD_KEY_LEN) {
				/* libsodium is used (and can be asked) only for 256-bit keys */
				free(key), free(iv), free(aad), free(msg), free(ct), free(tag);
				continue;
			}
			out = malloc(ml + cl + 1);
			assert_int_equal(tl, 16);
			/* decryption: valid cases open to msg, invalid ones must not open */
			bw_err e = aead_open_impl(impl, key, kl, iv, aad, al, ct, cl, tag, out);
			if (expect_ok && (e != BW_OK || memcmp(out, msg, ml) != 0))
				fail_msg("tcId %ld: valid case did not open to its message", id);
			if (!expect_ok && e == BW_OK)
				fail_msg("tcId %ld: invalid case opened", id);
			/* encryption of valid cases gives exactly ct and tag */
			if (expect_ok) {
				assert_int_equal(
				    aead_seal_impl(impl, key, kl, iv, aad, al, msg, ml, out, outtag), BW_OK);
				if (memcmp(out, ct, cl) != 0 || memcmp(outtag, tag, 16) != 0)
					fail_msg("tcId %ld: seal differs from the vector", id);
				valid++;
			} else {
				invalid++;
			}
			ran++;
			free(key), free(iv), free(aad), free(msg), free(ct), free(tag), free(out);
		}
	}
	print_message("AES-GCM (%s): %zu cases (%zu valid, %zu invalid)\n", name, ran, valid,
		      invalid);
	/* the 256-bit groups alone for libsodium, every key size otherwise */
	if (impl == AEAD_IMPL_SODIUM)
		assert_true(valid > 30 && invalid > 20);
	else
		assert_true(valid > 100 && invalid > 70);
	json_decref(j);
}

static void
test_wycheproof_aes_gcm(void **state)
{
	(void)state;
	wycheproof_aes_gcm(AEAD_IMPL_AUTO, "default");
	wycheproof_aes_gcm(AEAD_IMPL_OPENSSL, "OpenSSL EVP");
	if (aead_impl_available(AEAD_IMPL_SODIUM))
		wycheproof_aes_gcm(AEAD_IMPL_SODIUM, "libsodium");
	else
		print_message("AES-GCM: libsodium's AES-256-GCM does not run on this CPU\n");
}

/*
 * The two implementations agree byte for byte on lengths around the block
 * size (Wycheproof has few of each), each opens what the other sealed, in
 * place too, and a failed open leaves no plaintext behind in either.
 */
static void
test_aead_implementations_agree(void **state)
{
	(void)state;
	if (!aead_impl_available(AEAD_IMPL_SODIUM)) {
		print_message("libsodium's AES-256-GCM does not run on this CPU: OpenSSL only\n");
		skip();
	}
	assert_int_equal(aead_seal_impl(AEAD_IMPL_SODIUM, (const unsigned char *)"short", 5,
					(const unsigned char *)"123456789012", NULL, 0, NULL, 0,
					NULL, (unsigned char[16]){0}),
			 BW_ERR_CRYPTO);
	unsigned char key[32], nonce[12], aad[70], pt[300], a[300], b[300], ta[16], tb[16], o[300];
	for (size_t i = 0; i < sizeof(key); i++)
		key[i] = (unsigned char)(i * 7 + 1);
	for (size_t i = 0; i < sizeof(pt); i++)
		pt[i] = (unsigned char)(i * 13 + 5);
	memset(aad, 0xa5, sizeof(aad));
	static const size_t lens[] = {0, 1, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 255, 300};
	for (size_t li = 0; li < BW_ARRAY_LEN(lens); li++) {
		size_t n = lens[li], al = (li * 11) % sizeof(aad);
		memset(nonce, (int)li, sizeof(nonce));
		assert_int_equal(aead_seal_impl(AEAD_IMPL_SODIUM, key, 32, nonce, aad, al, pt, n, a, ta),
				 BW_OK);
		assert_int_equal(aead_seal_impl(AEAD_IMPL_OPENSSL, key, 32, nonce, aad, al, pt, n, b, tb),
				 BW_OK);
		if (memcmp(a, b, n) != 0 || memcmp(ta, tb, 16) != 0)
			fail_msg("length %zu: libsodium and OpenSSL differ", n);
		assert_int_equal(aead_open_impl(AEAD_IMPL_OPENSSL, key, 32, nonce, aad, al, a, n, ta, o),
				 BW_OK);
		assert_memory_equal(o, pt, n);
		/* in place: ct = pt buffer */
		memcpy(o, b, n);
		assert_int_equal(aead_open_impl(AEAD_IMPL_SODIUM, key, 32, nonce, aad, al, o, n, tb, o),
				 BW_OK);
		assert_memory_equal(o, pt, n);
		assert_int_equal(aead_seal_impl(AEAD_IMPL_SODIUM, key, 32, nonce, aad, al, o, n, o, ta),
				 BW_OK);
		assert_memory_equal(o, a, n);
		/* a bad tag: refused, and the output wiped by both */
		if (n > 0) {
			ta[3] ^= 0x40;
			for (int impl = AEAD_IMPL_OPENSSL; impl <= AEAD_IMPL_SODIUM; impl++) {
				memset(o, 0x5a, n);
				assert_int_equal(aead_open_impl((enum aead_impl)impl, key, 32, nonce, aad,
								al, a, n, ta, o),
						 BW_ERR_CRYPTO);
				for (size_t i = 0; i < n; i++)
					if (o[i] != 0)
						fail_msg("impl %d, length %zu: output not wiped", impl, n);
			}
			ta[3] ^= 0x40;
		}
	}
}

static void
test_wycheproof_hmac_sha256(void **state)
{
	(void)state;
	json_t *j = load(VECTORS "hmac_sha256_test.json");
	size_t gi, ti, ran = 0, invalid = 0;
	json_t *g, *t;
	json_array_foreach(json_object_get(j, "testGroups"), gi, g)
	{
		size_t tagbytes = (size_t)json_integer_value(json_object_get(g, "tagSize")) / 8;
		json_array_foreach(json_object_get(g, "tests"), ti, t)
		{
			unsigned char *key, *msg, *tag, full[32];
			size_t kl = unhex(json_string_value(json_object_get(t, "key")), &key);
			size_t ml = unhex(json_string_value(json_object_get(t, "msg")), &msg);
			size_t tl = unhex(json_string_value(json_object_get(t, "tag")), &tag);
			long id = (long)json_integer_value(json_object_get(t, "tcId"));
			int expect_ok = strcmp(json_string_value(json_object_get(t, "result")), "invalid") != 0;
			assert_int_equal(tl, tagbytes);
			assert_int_equal(mac_sha256(key, kl, msg, ml, full), BW_OK);
			int ok = mac_sha256_verify(key, kl, msg, ml, tag, tl);
			if (ok != expect_ok)
				fail_msg("tcId %ld: verify gave %d, want %d", id, ok, expect_ok);
			if (expect_ok && memcmp(full, tag, tl) != 0)
				fail_msg("tcId %ld: HMAC differs", id);
			invalid += !expect_ok;
			ran++;
			free(key), free(msg), free(tag);
		}
	}
	print_message("HMAC-SHA256: %zu cases (%zu invalid)\n", ran, invalid);
	assert_true(ran > 100 && invalid > 10);
	json_decref(j);
}

static const unsigned char K1[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
				     17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
static const unsigned char K2[32] = {9};

static void
test_seal_roundtrip_and_nonce(void **state)
{
	(void)state;
	struct seal_place pl = {"acme", "customers", "phone", 42};
	const char *pt = "+1 555 0100";
	size_t n = strlen(pt);
	unsigned char a[64], b[64], out[64];
	uint32_t kid;
	assert_int_equal(seal_with_key(K1, 7, &pl, (const unsigned char *)pt, n, a), BW_OK);
	assert_int_equal(seal_with_key(K1, 7, &pl, (const unsigned char *)pt, n, b), BW_OK);
	assert_memory_not_equal(a, b, seal_len(n)); /* fresh nonce each time */
	assert_int_equal(seal_key_id(a, seal_len(n), &kid), BW_OK);
	assert_int_equal(kid, 7);
	assert_null(memmem(a, seal_len(n), pt, n)); /* no plaintext inside */
	assert_int_equal(open_with_key(K1, &pl, a, seal_len(n), out), BW_OK);
	assert_memory_equal(out, pt, n);
	/* empty value */
	assert_int_equal(seal_with_key(K1, 7, &pl, (const unsigned char *)"", 0, a), BW_OK);
	assert_int_equal(open_with_key(K1, &pl, a, seal_len(0), out), BW_OK);
}

/* Flip every bit of a sealed value in turn: each flip must make it fail. */
static void
test_seal_tamper(void **state)
{
	(void)state;
	struct seal_place pl = {"acme", "payments", "last_four", 1};
	unsigned char s[64], out[64];
	size_t len = seal_len(4);
	assert_int_equal(seal_with_key(K1, 3, &pl, (const unsigned char *)"4242", 4, s), BW_OK);
	for (size_t i = 0; i < len * 8; i++) {
		s[i / 8] ^= (unsigned char)(1u << (i % 8));
		if (open_with_key(K1, &pl, s, len, out) == BW_OK)
			fail_msg("bit %zu (byte %zu) flipped and it still opened", i, i / 8);
		s[i / 8] ^= (unsigned char)(1u << (i % 8));
	}
	assert_int_equal(open_with_key(K1, &pl, s, len, out), BW_OK);
	/* truncated, extended, wrong version */
	assert_int_not_equal(open_with_key(K1, &pl, s, len - 1, out), BW_OK);
	assert_int_not_equal(open_with_key(K1, &pl, s, SEAL_OVERHEAD - 1, out), BW_OK);
	/* wrong key */
	assert_int_not_equal(open_with_key(K2, &pl, s, len, out), BW_OK);
}

static void
test_seal_transplant(void **state)
{
	(void)state;
	struct seal_place home = {"acme", "customers", "phone", 10};
	struct seal_place elsewhere[] = {
	    {"acme", "customers", "phone", 11},   /* another row */
	    {"acme", "customers", "address", 10}, /* another column */
	    {"acme", "contacts", "phone", 10},    /* another table */
	    {"beta", "customers", "phone", 10},   /* another tenant */
	    {"acm", "ecustomers", "phone", 10},   /* same bytes, other split */
	};
	unsigned char s[64], out[64];
	assert_int_equal(seal_with_key(K1, 1, &home, (const unsigned char *)"secret", 6, s), BW_OK);
	for (size_t i = 0; i < BW_ARRAY_LEN(elsewhere); i++)
		if (open_with_key(K1, &elsewhere[i], s, seal_len(6), out) == BW_OK)
			fail_msg("opened at place %zu", i);
	/* relabelled key id (even if the key were the same) */
	s[4] ^= 1;
	assert_int_not_equal(open_with_key(K1, &home, s, seal_len(6), out), BW_OK);
}

/*
 * Nonces come from a per-thread pool; a forked child must not take the same
 * next nonce as its parent (the pool is emptied on fork).
 */
static void
test_nonce_not_reused_across_fork(void **state)
{
	(void)state;
	struct seal_place pl = {"acme", "t", "c", 1};
	unsigned char a[64], b[64];
	int fds[2];
	assert_int_equal(seal_with_key(K1, 1, &pl, (const unsigned char *)"x", 1, a), BW_OK);
	assert_int_equal(pipe(fds), 0);
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		unsigned char c[64];
		if (seal_with_key(K1, 1, &pl, (const unsigned char *)"x", 1, c) != BW_OK)
			_exit(1);
		_exit(write(fds[1], c + 5, AEAD_NONCE_LEN) == AEAD_NONCE_LEN ? 0 : 1);
	}
	assert_int_equal(seal_with_key(K1, 1, &pl, (const unsigned char *)"x", 1, b), BW_OK);
	unsigned char child[AEAD_NONCE_LEN];
	assert_int_equal(read(fds[0], child, sizeof(child)), AEAD_NONCE_LEN);
	int st;
	waitpid(pid, &st, 0);
	close(fds[0]);
	close(fds[1]);
	assert_memory_not_equal(child, b + 5, AEAD_NONCE_LEN);
	assert_memory_not_equal(child, a + 5, AEAD_NONCE_LEN);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_wycheproof_aes_gcm),
		cmocka_unit_test(test_aead_implementations_agree),
		cmocka_unit_test(test_wycheproof_hmac_sha256),
		cmocka_unit_test(test_seal_roundtrip_and_nonce),
		cmocka_unit_test(test_seal_tamper),
		cmocka_unit_test(test_seal_transplant),
		cmocka_unit_test(test_nonce_not_reused_across_fork),
	};
	return cmocka_run_group_tests_name("crypto", tests, NULL, NULL);
}
