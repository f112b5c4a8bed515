/*
 * The envelope of an encrypted field. Everything that identifies where the
 * value belongs goes into the AAD, so the database cannot be rearranged
 * without detection: a value moved to another row, column, table or tenant,
 * or relabelled with another key id, fails to open.
 */
#include "crypto.h"

#include <openssl/rand.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#define SEAL_AAD_MAX 1024

/*
 * Random 96-bit nonces, drawn from OpenSSL's DRBG a few hundred at a time
 * into a per-thread pool (one DRBG call per seal cost more than the
 * encryption). Each nonce is taken once and zeroed. A forked child must
 * never reuse its parent's pool, so fork bumps a generation that empties
 * every pool.
 */
static _Atomic unsigned seal_gen = 1;
static pthread_once_t seal_once = PTHREAD_ONCE_INIT;

struct seal_pool {
	unsigned gen;
	size_t off;
	unsigned char buf[AEAD_NONCE_LEN * 340];
};
static _Thread_local struct seal_pool seal_tls;

static void
seal_atfork_child(void)
{
	atomic_fetch_add(&seal_gen, 1);
}

static void
seal_register_atfork(void)
{
	pthread_atfork(NULL, NULL, seal_atfork_child);
}

static int
seal_nonce(unsigned char out[AEAD_NONCE_LEN])
{
	struct seal_pool *p = &seal_tls;
	pthread_once(&seal_once, seal_register_atfork);
	unsigned g = atomic_load(&seal_gen);
	if (p->gen != g || p->off + AEAD_NONCE_LEN > sizeof(p->buf)) {
		if (RAND_bytes(p->buf, sizeof(p->buf)) != 1)
			return -1;
		p->off = 0;
		p->gen = g;
	}
	memcpy(out, p->buf + p->off, AEAD_NONCE_LEN);
	memset(p->buf + p->off, 0, AEAD_NONCE_LEN);
	p->off += AEAD_NONCE_LEN;
	return 0;
}

size_t
seal_len(size_t n)
{
	return n + SEAL_OVERHEAD;
}

bw_err
seal_key_id(const unsigned char *s, size_t len, uint32_t *key_id)
{
	if (s == NULL || len < SEAL_OVERHEAD || s[0] != SEAL_VERSION)
		return BW_ERR_CRYPTO;
	*key_id = (uint32_t)s[1] << 24 | (uint32_t)s[2] << 16 | (uint32_t)s[3] << 8 | s[4];
	return BW_OK;
}

static size_t
seal_put_str(unsigned char *p, size_t off, const char *s)
{
	size_t n = strlen(s);
	p[off++] = (unsigned char)(n >> 8);
	p[off++] = (unsigned char)n;
	memcpy(p + off, s, n);
	return off + n;
}

/* AAD = header(5) | len16 tenant | len16 table | len16 column | row id (8, BE). */
static bw_err
seal_aad(const unsigned char header[5], const struct seal_place *pl, unsigned char *aad,
	 size_t *len)
{
	if (pl == NULL || pl->tenant == NULL || pl->table == NULL || pl->column == NULL ||
	    strlen(pl->tenant) > 255 || strlen(pl->table) > 255 || strlen(pl->column) > 255)
		return BW_ERR_INVALID;
	size_t off = 0;
	memcpy(aad, header, 5);
	off = 5;
	off = seal_put_str(aad, off, pl->tenant);
	off = seal_put_str(aad, off, pl->table);
	off = seal_put_str(aad, off, pl->column);
	uint64_t r = (uint64_t)pl->row_id;
	for (int i = 7; i >= 0; i--)
		aad[off++] = (unsigned char)(r >> (8 * i));
	*len = off;
	return BW_OK;
}

bw_err
seal_with_key(const unsigned char key[AEAD_KEY_LEN], uint32_t key_id,
	      const struct seal_place *place, const unsigned char *pt, size_t ptlen,
	      unsigned char *out)
{
	unsigned char aad[SEAL_AAD_MAX];
	size_t aadlen;
	bw_err e;
	if (ptlen > SEAL_MAX_PLAINTEXT)
		return BW_ERR_TOO_LARGE;
	out[0] = SEAL_VERSION;
	out[1] = (unsigned char)(key_id >> 24);
	out[2] = (unsigned char)(key_id >> 16);
	out[3] = (unsigned char)(key_id >> 8);
	out[4] = (unsigned char)key_id;
	if (seal_nonce(out + 5) != 0)
		return BW_ERR_CRYPTO;
	if ((e = seal_aad(out, place, aad, &aadlen)) != BW_OK)
		return e;
	return aead_seal(key, AEAD_KEY_LEN, out + 5, aad, aadlen, pt, ptlen, out + SEAL_HEADER_LEN,
			 out + SEAL_HEADER_LEN + ptlen);
}

bw_err
open_with_key(const unsigned char key[AEAD_KEY_LEN], const struct seal_place *place,
	      const unsigned char *sealed, size_t len, unsigned char *out)
{
	unsigned char aad[SEAL_AAD_MAX];
	size_t aadlen;
	uint32_t kid;
	bw_err e;
	if ((e = seal_key_id(sealed, len, &kid)) != BW_OK)
		return e;
	if ((e = seal_aad(sealed, place, aad, &aadlen)) != BW_OK)
		return e;
	size_t ctlen = len - SEAL_OVERHEAD;
	return aead_open(key, AEAD_KEY_LEN, sealed + 5, aad, aadlen, sealed + SEAL_HEADER_LEN, ctlen,
			 sealed + SEAL_HEADER_LEN + ctlen, out);
}
