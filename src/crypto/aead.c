/*
 * AES-GCM and HMAC-SHA256.
 *
 * AES-256-GCM (every field, every wrapped key) runs on libsodium's
 * AES-NI/PCLMUL implementation where the CPU has those instructions: its
 * expanded key lives on the stack for one call and is wiped before
 * returning, so no key schedule outlives the operation, nothing is
 * allocated and no OpenSSL parameter lookups run (those, with the key
 * set-up, were most of a 32-byte field's cost through EVP: bench/crypto).
 * Elsewhere, and for the 128/192-bit keys of the test vectors, OpenSSL 3's
 * EVP interface does it: the ciphers are fetched once per process and each
 * thread keeps its own cipher context. Both give the same bytes; the unit
 * tests run the Wycheproof vectors through each.
 */
#include "crypto.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

static EVP_CIPHER *aead_ciphers[3]; /* AES-128/192/256-GCM */
static EVP_MAC *aead_hmac;
static pthread_once_t aead_once = PTHREAD_ONCE_INIT;
static int aead_ready;

static int aead_sodium; /* libsodium's AES-256-GCM runs on this CPU */

static _Thread_local EVP_CIPHER_CTX *aead_tls_ctx;
static pthread_key_t aead_ctx_key;

static void
aead_ctx_free(void *p)
{
	EVP_CIPHER_CTX_free(p);
}

static void
aead_init(void)
{
	static const char *const names[3] = {"AES-128-GCM", "AES-192-GCM", "AES-256-GCM"};
	for (int i = 0; i < 3; i++)
		if ((aead_ciphers[i] = EVP_CIPHER_fetch(NULL, names[i], NULL)) == NULL)
			return;
	if ((aead_hmac = EVP_MAC_fetch(NULL, "HMAC", NULL)) == NULL)
		return;
	/* Frees each thread's context when the thread ends. */
	if (pthread_key_create(&aead_ctx_key, aead_ctx_free) != 0)
		return;
	aead_sodium = sodium_init() >= 0 && crypto_aead_aes256gcm_is_available();
	aead_ready = 1;
}

static EVP_CIPHER_CTX *
aead_ctx(void)
{
	pthread_once(&aead_once, aead_init);
	if (!aead_ready)
		return NULL;
	if (aead_tls_ctx == NULL) {
		aead_tls_ctx = EVP_CIPHER_CTX_new();
		if (aead_tls_ctx != NULL)
			pthread_setspecific(aead_ctx_key, aead_tls_ctx);
	}
	return aead_tls_ctx;
}

static const EVP_CIPHER *
aead_cipher(size_t keylen)
{
	switch (keylen) {
	case 16:
		return aead_ciphers[0];
	case 24:
		return aead_ciphers[1];
	case 32:
		return aead_ciphers[2];
	default:
		return NULL;
	}
}

static bw_err
aead_seal_evp(const unsigned char *key, size_t keylen, const unsigned char nonce[AEAD_NONCE_LEN],
	      const unsigned char *aad, size_t aadlen, const unsigned char *pt, size_t ptlen,
	      unsigned char *ct, unsigned char tag[AEAD_TAG_LEN])
{
	EVP_CIPHER_CTX *c = aead_ctx();
	const EVP_CIPHER *cipher = aead_cipher(keylen);
	int n = 0, fin = 0;
	if (c == NULL || cipher == NULL || ptlen > INT32_MAX || aadlen > INT32_MAX)
		return BW_ERR_CRYPTO;
	/* A 12-byte IV is GCM's default: no IV-length control needed. */
	if (EVP_EncryptInit_ex2(c, cipher, key, nonce, NULL) != 1 ||
	    (aadlen > 0 && EVP_EncryptUpdate(c, NULL, &n, aad, (int)aadlen) != 1) ||
	    EVP_EncryptUpdate(c, ct, &n, pt, (int)ptlen) != 1 ||
	    EVP_EncryptFinal_ex(c, ct + n, &fin) != 1 ||
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, AEAD_TAG_LEN, tag) != 1)
		return BW_ERR_CRYPTO;
	return BW_OK;
}

static bw_err
aead_open_evp(const unsigned char *key, size_t keylen, const unsigned char nonce[AEAD_NONCE_LEN],
	      const unsigned char *aad, size_t aadlen, const unsigned char *ct, size_t ctlen,
	      const unsigned char tag[AEAD_TAG_LEN], unsigned char *pt)
{
	EVP_CIPHER_CTX *c = aead_ctx();
	const EVP_CIPHER *cipher = aead_cipher(keylen);
	int n = 0, fin = 0;
	if (c == NULL || cipher == NULL || ctlen > INT32_MAX || aadlen > INT32_MAX)
		return BW_ERR_CRYPTO;
	if (EVP_DecryptInit_ex2(c, cipher, key, nonce, NULL) != 1 ||
	    (aadlen > 0 && EVP_DecryptUpdate(c, NULL, &n, aad, (int)aadlen) != 1) ||
	    EVP_DecryptUpdate(c, pt, &n, ct, (int)ctlen) != 1 ||
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, AEAD_TAG_LEN, (void *)tag) != 1 ||
	    EVP_DecryptFinal_ex(c, pt + n, &fin) != 1) {
		/* Never hand back plaintext that did not authenticate. */
		OPENSSL_cleanse(pt, ctlen);
		return BW_ERR_CRYPTO;
	}
	return BW_OK;
}

/*
 * libsodium's AES-256-GCM, detached tag. The expanded key (and GHASH
 * powers) are this call's alone and wiped on every path.
 */
static bw_err
aead_seal_sodium(const unsigned char *key, const unsigned char nonce[AEAD_NONCE_LEN],
		 const unsigned char *aad, size_t aadlen, const unsigned char *pt, size_t ptlen,
		 unsigned char *ct, unsigned char tag[AEAD_TAG_LEN])
{
	crypto_aead_aes256gcm_state st;
	unsigned long long taglen = 0;
	int r = crypto_aead_aes256gcm_beforenm(&st, key);
	if (r == 0)
		r = crypto_aead_aes256gcm_encrypt_detached_afternm(ct, tag, &taglen, pt, ptlen, aad,
								   aadlen, NULL, nonce, &st);
	sodium_memzero(&st, sizeof(st));
	return r == 0 && taglen == AEAD_TAG_LEN ? BW_OK : BW_ERR_CRYPTO;
}

static bw_err
aead_open_sodium(const unsigned char *key, const unsigned char nonce[AEAD_NONCE_LEN],
		 const unsigned char *aad, size_t aadlen, const unsigned char *ct, size_t ctlen,
		 const unsigned char tag[AEAD_TAG_LEN], unsigned char *pt)
{
	crypto_aead_aes256gcm_state st;
	int r = crypto_aead_aes256gcm_beforenm(&st, key);
	if (r == 0)
		r = crypto_aead_aes256gcm_decrypt_detached_afternm(pt, NULL, ct, ctlen, tag, aad,
								   aadlen, nonce, &st);
	sodium_memzero(&st, sizeof(st));
	if (r != 0) {
		/* libsodium leaves pt alone on a bad tag; wipe anyway, as the EVP path does. */
		OPENSSL_cleanse(pt, ctlen);
		return BW_ERR_CRYPTO;
	}
	return BW_OK;
}

/* The implementation for keylen: libsodium only for 32-byte keys on a CPU it runs on. */
static int
aead_use_sodium(enum aead_impl impl, size_t keylen)
{
	pthread_once(&aead_once, aead_init);
	if (impl == AEAD_IMPL_OPENSSL || keylen != AEAD_KEY_LEN || !aead_sodium)
		return 0;
	return 1;
}

int
aead_impl_available(enum aead_impl impl)
{
	pthread_once(&aead_once, aead_init);
	switch (impl) {
	case AEAD_IMPL_AUTO:
	case AEAD_IMPL_OPENSSL:
		return aead_ready;
	case AEAD_IMPL_SODIUM:
		return aead_ready && aead_sodium;
	default:
		abort();
	}
}

bw_err
aead_seal_impl(enum aead_impl impl, const unsigned char *key, size_t keylen,
	       const unsigned char nonce[AEAD_NONCE_LEN], const unsigned char *aad, size_t aadlen,
	       const unsigned char *pt, size_t ptlen, unsigned char *ct,
	       unsigned char tag[AEAD_TAG_LEN])
{
	if (impl == AEAD_IMPL_SODIUM && (keylen != AEAD_KEY_LEN || !aead_impl_available(impl)))
		return BW_ERR_CRYPTO;
	/* Both implementations take at most 2^31 bytes here (EVP's int lengths). */
	if (ptlen > INT32_MAX || aadlen > INT32_MAX)
		return BW_ERR_CRYPTO;
	if (aead_use_sodium(impl, keylen))
		return aead_seal_sodium(key, nonce, aad, aadlen, pt, ptlen, ct, tag);
	return aead_seal_evp(key, keylen, nonce, aad, aadlen, pt, ptlen, ct, tag);
}

bw_err
aead_open_impl(enum aead_impl impl, const unsigned char *key, size_t keylen,
	       const unsigned char nonce[AEAD_NONCE_LEN], const unsigned char *aad, size_t aadlen,
	       const unsigned char *ct, size_t ctlen, const unsigned char tag[AEAD_TAG_LEN],
	       unsigned char *pt)
{
	if (impl == AEAD_IMPL_SODIUM && (keylen != AEAD_KEY_LEN || !aead_impl_available(impl)))
		return BW_ERR_CRYPTO;
	if (ctlen > INT32_MAX || aadlen > INT32_MAX)
		return BW_ERR_CRYPTO;
	if (aead_use_sodium(impl, keylen))
		return aead_open_sodium(key, nonce, aad, aadlen, ct, ctlen, tag, pt);
	return aead_open_evp(key, keylen, nonce, aad, aadlen, ct, ctlen, tag, pt);
}

bw_err
aead_seal(const unsigned char *key, size_t keylen, const unsigned char nonce[AEAD_NONCE_LEN],
	  const unsigned char *aad, size_t aadlen, const unsigned char *pt, size_t ptlen,
	  unsigned char *ct, unsigned char tag[AEAD_TAG_LEN])
{
	return aead_seal_impl(AEAD_IMPL_AUTO, key, keylen, nonce, aad, aadlen, pt, ptlen, ct, tag);
}

bw_err
aead_open(const unsigned char *key, size_t keylen, const unsigned char nonce[AEAD_NONCE_LEN],
	  const unsigned char *aad, size_t aadlen, const unsigned char *ct, size_t ctlen,
	  const unsigned char tag[AEAD_TAG_LEN], unsigned char *pt)
{
	return aead_open_impl(AEAD_IMPL_AUTO, key, keylen, nonce, aad, aadlen, ct, ctlen, tag, pt);
}

bw_err
mac_sha256(const unsigned char *key, size_t keylen, const unsigned char *msg, size_t len,
	   unsigned char out[HMAC_SHA256_LEN])
{
	size_t outlen = 0;
	pthread_once(&aead_once, aead_init);
	if (!aead_ready)
		return BW_ERR_CRYPTO;
	EVP_MAC_CTX *m = EVP_MAC_CTX_new(aead_hmac);
	if (m == NULL)
		return BW_ERR_NOMEM;
	OSSL_PARAM params[] = {
	    OSSL_PARAM_construct_utf8_string("digest", (char *)"SHA256", 0),
	    OSSL_PARAM_construct_end(),
	};
	/* HMAC allows an empty key; EVP_MAC_init wants a non-NULL pointer for it. */
	static const unsigned char empty[1];
	int ok = EVP_MAC_init(m, keylen ? key : empty, keylen, params) == 1 &&
		 EVP_MAC_update(m, msg, len) == 1 &&
		 EVP_MAC_final(m, out, &outlen, HMAC_SHA256_LEN) == 1 && outlen == HMAC_SHA256_LEN;
	EVP_MAC_CTX_free(m);
	return ok ? BW_OK : BW_ERR_CRYPTO;
}

int
mac_sha256_verify(const unsigned char *key, size_t keylen, const unsigned char *msg, size_t len,
		  const unsigned char *tag, size_t taglen)
{
	unsigned char want[HMAC_SHA256_LEN];
	if (taglen == 0 || taglen > HMAC_SHA256_LEN || mac_sha256(key, keylen, msg, len, want) != BW_OK)
		return 0;
	int ok = CRYPTO_memcmp(want, tag, taglen) == 0;
	OPENSSL_cleanse(want, sizeof(want));
	return ok;
}

bw_err
hkdf_sha256(const unsigned char *salt, size_t saltlen, const unsigned char *ikm, size_t ikmlen,
	    const unsigned char *info, size_t infolen, unsigned char out[HMAC_SHA256_LEN])
{
	static const unsigned char zeros[HMAC_SHA256_LEN];
	unsigned char prk[HMAC_SHA256_LEN], t[256];
	if (infolen >= sizeof(t))
		return BW_ERR_CRYPTO;
	if (infolen > 0)
		memcpy(t, info, infolen);
	t[infolen] = 0x01;
	bw_err e = mac_sha256(saltlen ? salt : zeros, saltlen ? saltlen : sizeof(zeros), ikm, ikmlen,
			      prk);
	if (e == BW_OK)
		e = mac_sha256(prk, sizeof(prk), t, infolen + 1, out);
	OPENSSL_cleanse(prk, sizeof(prk));
	if (e != BW_OK)
		OPENSSL_cleanse(out, HMAC_SHA256_LEN);
	return e;
}

int
crypto_equal(const void *a, const void *b, size_t n)
{
	return CRYPTO_memcmp(a, b, n) == 0;
}

void
crypto_wipe(void *p, size_t n)
{
	if (p != NULL)
		OPENSSL_cleanse(p, n);
}
