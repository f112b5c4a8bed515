/*
 * AES-GCM and HMAC-SHA256 through OpenSSL 3's EVP interface. The cipher
 * implementations are fetched once per process; each thread keeps its own
 * cipher context and reinitialises it per operation, so the hot path does
 * no allocation and no provider lookup.
 */
#include "crypto.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <string.h>

static EVP_CIPHER *aead_ciphers[3]; /* AES-128/192/256-GCM */
static EVP_MAC *aead_hmac;
static pthread_once_t aead_once = PTHREAD_ONCE_INIT;
static int aead_ready;

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

bw_err
aead_seal(const unsigned char *key, size_t keylen, const unsigned char nonce[AEAD_NONCE_LEN],
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

bw_err
aead_open(const unsigned char *key, size_t keylen, const unsigned char nonce[AEAD_NONCE_LEN],
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
