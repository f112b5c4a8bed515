/*
 * crypto: authenticated encryption at rest (AES-256-GCM through OpenSSL 3),
 * HMAC-SHA256, the versioned envelope every encrypted field is stored in,
 * and the key ring.
 */
#ifndef BW_CRYPTO_H
#define BW_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include "../core/core.h"

#define AEAD_NONCE_LEN 12
#define AEAD_TAG_LEN 16
#define AEAD_KEY_LEN 32
#define HMAC_SHA256_LEN 32

/* --- aead.c: the primitives ------------------------------------------------ */

/*
 * AES-GCM with a 96-bit nonce and 128-bit tag. keylen is 16, 24 or 32 (only
 * 32 is used for data; the others exist for the test vectors). ct may equal
 * pt. BW_ERR_CRYPTO on any failure, including a tag that does not verify;
 * on that failure the output buffer is wiped.
 */
bw_err aead_seal(const unsigned char *key, size_t keylen, const unsigned char nonce[AEAD_NONCE_LEN],
		 const unsigned char *aad, size_t aadlen, const unsigned char *pt, size_t ptlen,
		 unsigned char *ct, unsigned char tag[AEAD_TAG_LEN]) BW_MUST_USE;
bw_err aead_open(const unsigned char *key, size_t keylen, const unsigned char nonce[AEAD_NONCE_LEN],
		 const unsigned char *aad, size_t aadlen, const unsigned char *ct, size_t ctlen,
		 const unsigned char tag[AEAD_TAG_LEN], unsigned char *pt) BW_MUST_USE;

/*
 * The same with the implementation chosen (tests, bench/crypto): AUTO is
 * what aead_seal/aead_open use (libsodium for 32-byte keys on CPUs with
 * AES-NI and PCLMUL, else OpenSSL); OPENSSL forces EVP; SODIUM fails with
 * BW_ERR_CRYPTO where it cannot run (see aead_impl_available) or for keys
 * other than 32 bytes.
 */
enum aead_impl { AEAD_IMPL_AUTO, AEAD_IMPL_OPENSSL, AEAD_IMPL_SODIUM };
int aead_impl_available(enum aead_impl impl);
bw_err aead_seal_impl(enum aead_impl impl, const unsigned char *key, size_t keylen,
		      const unsigned char nonce[AEAD_NONCE_LEN], const unsigned char *aad,
		      size_t aadlen, const unsigned char *pt, size_t ptlen, unsigned char *ct,
		      unsigned char tag[AEAD_TAG_LEN]) BW_MUST_USE;
bw_err aead_open_impl(enum aead_impl impl, const unsigned char *key, size_t keylen,
		      const unsigned char nonce[AEAD_NONCE_LEN], const unsigned char *aad,
		      size_t aadlen, const unsigned char *ct, size_t ctlen,
		      const unsigned char tag[AEAD_TAG_LEN], unsigned char *pt) BW_MUST_USE;

/* HMAC-SHA256 of msg into out. */
bw_err mac_sha256(const unsigned char *key, size_t keylen, const unsigned char *msg, size_t len,
		  unsigned char out[HMAC_SHA256_LEN]) BW_MUST_USE;
/* Constant-time check that tag (taglen <= 32 bytes) is the HMAC of msg. */
int mac_sha256_verify(const unsigned char *key, size_t keylen, const unsigned char *msg,
		      size_t len, const unsigned char *tag, size_t taglen);
/*
 * HKDF-SHA256 (RFC 5869) with one block of output: PRK = HMAC(salt, ikm)
 * (an empty salt is 32 zero bytes, as the RFC says), out = HMAC(PRK, info
 * | 0x01), the first 32 bytes of the OKM. BW_ERR_CRYPTO on failure, out
 * then wiped; info is at most 255 bytes.
 */
bw_err hkdf_sha256(const unsigned char *salt, size_t saltlen, const unsigned char *ikm,
		   size_t ikmlen, const unsigned char *info, size_t infolen,
		   unsigned char out[HMAC_SHA256_LEN]) BW_MUST_USE;
/* Constant-time equality of two byte strings of the same length. */
int crypto_equal(const void *a, const void *b, size_t n);
/* Wipe memory the compiler may not optimise away. */
void crypto_wipe(void *p, size_t n);

/* --- seal.c: the field envelope ------------------------------------------- */

/*
 * A sealed field is
 *   version (1 byte, 0x01) | key id (4 bytes, big-endian) | nonce (12) |
 *   ciphertext (as long as the plaintext) | tag (16)
 * and the AAD binds it to its place: the version and key id bytes, then the
 * tenant, table and column (each length-prefixed) and the row id. Copying a
 * sealed value to another row, column, table or tenant makes it fail to open.
 */
#define SEAL_VERSION 1
#define SEAL_HEADER_LEN (1 + 4 + AEAD_NONCE_LEN)
#define SEAL_OVERHEAD (SEAL_HEADER_LEN + AEAD_TAG_LEN)
#define SEAL_MAX_PLAINTEXT (16u * 1024u * 1024u)

struct seal_place {
	const char *tenant;
	const char *table;
	const char *column;
	int64_t row_id;
};

/* Length of a sealed value for a plaintext of n bytes. */
size_t seal_len(size_t n);
/* The key id a sealed value names, or BW_ERR_CRYPTO if it is not one. */
bw_err seal_key_id(const unsigned char *sealed, size_t len, uint32_t *key_id) BW_MUST_USE;
/*
 * Seal pt with key (key_id names it) for place into out (seal_len(ptlen)
 * bytes). A fresh random nonce every call.
 */
bw_err seal_with_key(const unsigned char key[AEAD_KEY_LEN], uint32_t key_id,
		     const struct seal_place *place, const unsigned char *pt, size_t ptlen,
		     unsigned char *out) BW_MUST_USE;
/*
 * Open a sealed value with key into out (len - SEAL_OVERHEAD bytes).
 * BW_ERR_CRYPTO when it was tampered with, moved, or sealed with another key.
 */
bw_err open_with_key(const unsigned char key[AEAD_KEY_LEN], const struct seal_place *place,
		     const unsigned char *sealed, size_t len, unsigned char *out) BW_MUST_USE;

/* --- keyring.c: master keys and per-tenant data keys ---------------------- */

#include "../db/db.h"

/*
 * Master keys come from the key source ([keys] source: a file that others
 * cannot read, the BULWARK_KEYS environment variable, or the secrets vault)
 * as "ID:BASE64" entries (32-byte keys, IDs 1..2^31-1); the highest ID seals
 * new data keys. They never touch a database.
 *
 * Data keys (one active per tenant, plus retired ones) live in the control
 * database only wrapped by a master key, the wrapping bound to tenant, data
 * key id and master id. Unwrapped copies live in locked memory that is
 * excluded from core dumps and wiped on close.
 */
struct keyring;

/*
 * Open the key ring: read the master keys from the text given (the caller
 * reads the key source); ctl is a control-database connection the key ring
 * takes ownership of, used to load data keys on demand (thread-safe).
 */
bw_err keyring_open(const char *keys_text, size_t len, db *ctl, struct keyring **out, char *err,
		    size_t errlen) BW_MUST_USE;
void keyring_close(struct keyring *kr);
uint32_t keyring_master_id(struct keyring *kr);
size_t keyring_master_count(struct keyring *kr);
/*
 * Replace the master keys with those in text (SIGHUP), e.g. after a new key
 * was added to the key source. On error the old set stays.
 */
bw_err keyring_reload(struct keyring *kr, const char *text, size_t len, char *err,
		      size_t errlen) BW_MUST_USE;
/* Encryptions allowed under one data key (below GCM's 2^32 random-nonce bound). */
#define KEYRING_ENC_LIMIT (((int64_t)1 << 32) - ((int64_t)1 << 24))
#define KEYRING_ENC_WARN ((int64_t)1 << 31)

/*
 * Make a new data key for tenant slug on connection d (the caller's, inside
 * its transaction if it has one), wrapped by the newest master key; its id
 * into *id. The key is not made active: the caller decides.
 */
bw_err keyring_dek_create(struct keyring *kr, db *d, const char *slug, int64_t run_id,
			  uint32_t *id) BW_MUST_USE;
/* Re-wrap data key id under the newest master key (master key rotation). */
bw_err keyring_dek_rewrap(struct keyring *kr, db *d, uint32_t id) BW_MUST_USE;
/* Drop any cached copies of tenant slug's data keys (crypto-shredding). */
void keyring_forget_tenant(struct keyring *kr, const char *slug);

/*
 * Seal pt for place with data key key_id (the tenant's active key) into out
 * (seal_len(n) bytes). Counts the encryption against the key's limit:
 * BW_ERR_CRYPTO once it is reached (rotate), or when the key is not the
 * place's tenant's, cannot be loaded, or is purged.
 */
bw_err keyring_seal(struct keyring *kr, uint32_t key_id, const struct seal_place *place,
		    const unsigned char *pt, size_t n, unsigned char *out) BW_MUST_USE;
/* Open a sealed value with whichever of the tenant's keys it names. */
bw_err keyring_open_sealed(struct keyring *kr, const struct seal_place *place,
			   const unsigned char *sealed, size_t len, unsigned char *out) BW_MUST_USE;

/*
 * HMAC-SHA256 of msg under a key derived from data key key_id of tenant
 * (HKDF-SHA256 of the data key, info = label, 0x00, tenant): a key of its
 * own per purpose (label), made from a data key and wiped after use, so
 * it is never stored anywhere and changes when the data key is rotated.
 * BW_ERR_CRYPTO when the key is not tenant's, cannot be loaded or is
 * purged, or label and tenant are longer than 64 bytes each.
 */
bw_err keyring_derived_mac(struct keyring *kr, uint32_t key_id, const char *tenant,
			   const char *label, const unsigned char *msg, size_t len,
			   unsigned char out[HMAC_SHA256_LEN]) BW_MUST_USE;

/*
 * Wrap any other 32-byte secret (such as a tenant's database password) under
 * the newest master key, bound to purpose, owner and id; *master_id says
 * which master key. Unwrap with the master key that wrapped it.
 */
#define KEYRING_WRAPPED_LEN (AEAD_NONCE_LEN + AEAD_KEY_LEN + AEAD_TAG_LEN)
bw_err keyring_wrap_secret(struct keyring *kr, const char *purpose, const char *owner,
			   uint32_t id, const unsigned char in[AEAD_KEY_LEN],
			   unsigned char out[KEYRING_WRAPPED_LEN], uint32_t *master_id) BW_MUST_USE;
bw_err keyring_unwrap_secret(struct keyring *kr, const char *purpose, const char *owner,
			     uint32_t id, uint32_t master_id, const unsigned char *in, size_t len,
			     unsigned char out[AEAD_KEY_LEN]) BW_MUST_USE;

#endif
