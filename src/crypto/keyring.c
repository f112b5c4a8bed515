/*
 * The key ring. Master keys are parsed once at open. Data keys are loaded
 * from the control database the first time a ciphertext or a seal names
 * them, unwrapped with the master key their row names, and cached in a
 * fixed table in locked memory. Encryptions are counted in blocks reserved
 * in the control database, so the count survives restarts and is shared by
 * every app server without a database write per encryption.
 */
#include "crypto.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define KR_MAX_MASTER 16
#define KR_DEK_SLOTS 8192 /* power of two */
#define KR_BLOCK 65536    /* encryptions reserved per database round trip */
#define KR_WRAPPED_LEN (AEAD_NONCE_LEN + AEAD_KEY_LEN + AEAD_TAG_LEN)

struct kr_master {
	uint32_t id;
	unsigned char key[AEAD_KEY_LEN];
};

struct kr_dek {
	uint32_t id; /* 0 = free slot */
	char slug[33];
	unsigned char key[AEAD_KEY_LEN];
	_Atomic int64_t left; /* encryptions left in the reserved block */
};

struct kr_masterset {
	struct kr_master m[KR_MAX_MASTER];
	size_t n;
	uint32_t active; /* the highest id: wraps new things */
};

struct kr_secrets {
	struct kr_masterset ms;
	struct kr_masterset staging; /* a reload is parsed here, then swapped in */
	struct kr_dek dek[KR_DEK_SLOTS];
};

struct keyring {
	struct kr_secrets *s;
	pthread_rwlock_t lock; /* the dek table */
	pthread_rwlock_t mlk;  /* the master keys (replaced on reload) */
	pthread_mutex_t mu;    /* ctl, loading, reservations */
	db *ctl;
};

uint32_t
keyring_master_id(struct keyring *kr)
{
	pthread_rwlock_rdlock(&kr->mlk);
	uint32_t id = kr->s->ms.active;
	pthread_rwlock_unlock(&kr->mlk);
	return id;
}

size_t
keyring_master_count(struct keyring *kr)
{
	pthread_rwlock_rdlock(&kr->mlk);
	size_t n = kr->s->ms.n;
	pthread_rwlock_unlock(&kr->mlk);
	return n;
}

/* Caller holds kr->mlk. */
static const struct kr_master *
kr_master(const struct kr_masterset *ms, uint32_t id)
{
	for (size_t i = 0; i < ms->n; i++)
		if (ms->m[i].id == id)
			return &ms->m[i];
	return NULL;
}

/* Decode standard base64 of exactly 32 bytes. */
static int
kr_b64_key(const char *b64, size_t n, unsigned char out[AEAD_KEY_LEN])
{
	unsigned char buf[64];
	if (n != 44 || b64[43] != '=' || b64[42] == '=')
		return 0;
	int r = EVP_DecodeBlock(buf, (const unsigned char *)b64, (int)n);
	if (r != 33) /* 44 chars decode to 33 bytes, the last one padding */
		return 0;
	memcpy(out, buf, AEAD_KEY_LEN);
	crypto_wipe(buf, sizeof(buf));
	return 1;
}

static bw_err
kr_parse(struct kr_masterset *ms, const char *text, size_t len, char *err, size_t errlen)
{
	size_t i = 0;
	crypto_wipe(ms, sizeof(*ms));
	while (i < len) {
		char c = text[i];
		if (c == '#') {
			while (i < len && text[i] != '\n')
				i++;
			continue;
		}
		if (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == ',') {
			i++;
			continue;
		}
		size_t start = i;
		while (i < len && !strchr(" \t\r\n,#", text[i]))
			i++;
		const char *tok = text + start;
		size_t tl = i - start;
		const char *colon = memchr(tok, ':', tl);
		char idbuf[16];
		size_t idl = colon ? (size_t)(colon - tok) : 0;
		if (colon == NULL || idl == 0 || idl >= sizeof(idbuf)) {
			snprintf(err, errlen, "master keys: entry %zu is not ID:BASE64", ms->n + 1);
			return BW_ERR_CONFIG;
		}
		memcpy(idbuf, tok, idl);
		idbuf[idl] = '\0';
		long id;
		if (util_parse_long(idbuf, 1, 0x7fffffff, &id) != BW_OK) {
			snprintf(err, errlen, "master keys: '%s' is not a key id (1..2147483647)", idbuf);
			return BW_ERR_CONFIG;
		}
		if (kr_master(ms, (uint32_t)id) != NULL) {
			snprintf(err, errlen, "master keys: id %ld appears twice", id);
			return BW_ERR_CONFIG;
		}
		if (ms->n == KR_MAX_MASTER) {
			snprintf(err, errlen, "master keys: more than %d", KR_MAX_MASTER);
			return BW_ERR_CONFIG;
		}
		struct kr_master *m = &ms->m[ms->n];
		if (!kr_b64_key(colon + 1, tl - idl - 1, m->key)) {
			snprintf(err, errlen, "master key %ld: not 32 bytes of base64", id);
			return BW_ERR_CONFIG;
		}
		m->id = (uint32_t)id;
		ms->n++;
		if (m->id > ms->active)
			ms->active = m->id;
	}
	if (ms->n == 0) {
		snprintf(err, errlen, "master keys: none found in the key source");
		return BW_ERR_CONFIG;
	}
	return BW_OK;
}

bw_err
keyring_open(const char *text, size_t len, db *ctl, struct keyring **out, char *err, size_t errlen)
{
	struct keyring *kr = calloc(1, sizeof(*kr));
	*out = NULL;
	if (kr == NULL) {
		db_close(ctl);
		return BW_ERR_NOMEM;
	}
	kr->ctl = ctl;
	pthread_rwlock_init(&kr->lock, NULL);
	pthread_rwlock_init(&kr->mlk, NULL);
	pthread_mutex_init(&kr->mu, NULL);
	kr->s = mmap(NULL, sizeof(*kr->s), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (kr->s == MAP_FAILED) {
		kr->s = NULL;
		keyring_close(kr);
		return BW_ERR_NOMEM;
	}
	/* Best effort: out of swap and core dumps where the kernel allows. */
	(void)mlock(kr->s, sizeof(*kr->s));
	(void)madvise(kr->s, sizeof(*kr->s), MADV_DONTDUMP);
	bw_err e = kr_parse(&kr->s->ms, text, len, err, errlen);
	if (e != BW_OK) {
		keyring_close(kr);
		return e;
	}
	*out = kr;
	return BW_OK;
}

bw_err
keyring_reload(struct keyring *kr, const char *text, size_t len, char *err, size_t errlen)
{
	pthread_mutex_lock(&kr->mu); /* one reload at a time; staging is ours */
	bw_err e = kr_parse(&kr->s->staging, text, len, err, errlen);
	if (e == BW_OK) {
		pthread_rwlock_wrlock(&kr->mlk);
		kr->s->ms = kr->s->staging;
		pthread_rwlock_unlock(&kr->mlk);
	}
	crypto_wipe(&kr->s->staging, sizeof(kr->s->staging));
	pthread_mutex_unlock(&kr->mu);
	return e;
}

void
keyring_close(struct keyring *kr)
{
	if (kr == NULL)
		return;
	if (kr->s != NULL) {
		crypto_wipe(kr->s, sizeof(*kr->s));
		munlock(kr->s, sizeof(*kr->s));
		munmap(kr->s, sizeof(*kr->s));
	}
	db_close(kr->ctl);
	pthread_rwlock_destroy(&kr->lock);
	pthread_rwlock_destroy(&kr->mlk);
	pthread_mutex_destroy(&kr->mu);
	free(kr);
}

#define KR_DATA_KEY "bulwark/data-key/v1"

/* AAD of a wrapped secret: what it is, whose, which id, under which master. */
static size_t
kr_wrap_aad(unsigned char *aad, const char *label, const char *slug, uint32_t id,
	    uint32_t master)
{
	size_t off = 0, sl = strlen(slug), ll = strlen(label);
	memcpy(aad, label, ll + 1);
	off = ll + 1;
	aad[off++] = (unsigned char)sl;
	memcpy(aad + off, slug, sl);
	off += sl;
	for (int i = 3; i >= 0; i--)
		aad[off++] = (unsigned char)(id >> (8 * i));
	for (int i = 3; i >= 0; i--)
		aad[off++] = (unsigned char)(master >> (8 * i));
	return off;
}

static bw_err
kr_wrap(const struct kr_master *m, const char *label, const char *slug, uint32_t id,
	const unsigned char dek[32], unsigned char out[KR_WRAPPED_LEN])
{
	unsigned char aad[160];
	size_t al = kr_wrap_aad(aad, label, slug, id, m->id);
	if (util_random(out, AEAD_NONCE_LEN) != BW_OK)
		return BW_ERR_CRYPTO;
	return aead_seal(m->key, AEAD_KEY_LEN, out, aad, al, dek, AEAD_KEY_LEN, out + AEAD_NONCE_LEN,
			 out + AEAD_NONCE_LEN + AEAD_KEY_LEN);
}

static bw_err
kr_unwrap(const struct kr_master *m, const char *label, const char *slug, uint32_t id,
	  const unsigned char *w, size_t wl, unsigned char dek[32])
{
	unsigned char aad[160];
	if (wl != KR_WRAPPED_LEN)
		return BW_ERR_CRYPTO;
	size_t al = kr_wrap_aad(aad, label, slug, id, m->id);
	return aead_open(m->key, AEAD_KEY_LEN, w, aad, al, w + AEAD_NONCE_LEN, AEAD_KEY_LEN,
			 w + AEAD_NONCE_LEN + AEAD_KEY_LEN, dek);
}

static bw_err
kr_store_wrapped(struct keyring *kr, db *d, const char *slug, uint32_t id,
		 const unsigned char dek[32])
{
	unsigned char w[KR_WRAPPED_LEN];
	db_stmt *s;
	int row;
	pthread_rwlock_rdlock(&kr->mlk);
	const struct kr_master *m = kr_master(&kr->s->ms, kr->s->ms.active);
	uint32_t mid = m ? m->id : 0;
	bw_err e = m ? kr_wrap(m, KR_DATA_KEY, slug, id, dek, w) : BW_ERR_CRYPTO;
	pthread_rwlock_unlock(&kr->mlk);
	if (e != BW_OK)
		return e;
	e = db_prepare(d, "UPDATE data_keys SET wrapped = ?, master_id = ? WHERE id = ?", &s);
	if (e == BW_OK && (e = db_bind_blob(s, 1, w, sizeof(w))) == BW_OK &&
	    (e = db_bind_int(s, 2, mid)) == BW_OK && (e = db_bind_int(s, 3, id)) == BW_OK)
		e = db_step(s, &row);
	db_finalize(s);
	return e;
}

bw_err
keyring_dek_create(struct keyring *kr, db *d, const char *slug, int64_t run_id, uint32_t *id)
{
	unsigned char dek[AEAD_KEY_LEN];
	db_stmt *s;
	int row;
	bw_err e;
	if ((e = util_random(dek, sizeof(dek))) != BW_OK)
		return BW_ERR_CRYPTO;
	/* The row first: its id is part of what the wrapping is bound to. */
	e = db_prepare(d,
		       "INSERT INTO data_keys (tenant_slug, state, wrapped, master_id, encryptions,"
		       " run_id, created_at) VALUES (?, 'retired', NULL, 0, 0, ?, ?)",
		       &s);
	if (e == BW_OK && (e = db_bind_text(s, 1, slug)) == BW_OK &&
	    (e = db_bind_int(s, 2, run_id)) == BW_OK && (e = db_bind_int(s, 3, (int64_t)time(NULL))) == BW_OK)
		e = db_step(s, &row);
	int64_t newid = e == BW_OK ? db_last_id(s) : 0;
	db_finalize(s);
	if (e == BW_OK && (newid <= 0 || newid > 0x7fffffff))
		e = BW_ERR_DB;
	if (e == BW_OK)
		e = kr_store_wrapped(kr, d, slug, (uint32_t)newid, dek);
	crypto_wipe(dek, sizeof(dek));
	if (e == BW_OK)
		*id = (uint32_t)newid;
	return e;
}

/* Find a cached key; caller holds kr->lock (read or write). */
static struct kr_dek *
kr_find(struct keyring *kr, uint32_t id)
{
	for (size_t i = 0, h = id & (KR_DEK_SLOTS - 1); i < KR_DEK_SLOTS;
	     i++, h = (h + 1) & (KR_DEK_SLOTS - 1)) {
		if (kr->s->dek[h].id == id)
			return &kr->s->dek[h];
		if (kr->s->dek[h].id == 0)
			return NULL;
	}
	return NULL;
}

/* Read and unwrap data key id from the control database. Caller holds kr->mu. */
static bw_err
kr_load(struct keyring *kr, uint32_t id, char slug[33], unsigned char dek[32])
{
	db_stmt *s;
	int row = 0;
	bw_err e;
	if (db_broken(kr->ctl))
		return BW_ERR_UNAVAILABLE;
	e = db_prepare(kr->ctl, "SELECT tenant_slug, master_id, wrapped FROM data_keys WHERE id = ?", &s);
	if (e == BW_OK && (e = db_bind_int(s, 1, id)) == BW_OK && (e = db_step(s, &row)) == BW_OK &&
	    row) {
		size_t wl;
		const unsigned char *w = db_col_blob(s, 2, &wl);
		pthread_rwlock_rdlock(&kr->mlk);
		const struct kr_master *m = kr_master(&kr->s->ms, (uint32_t)db_col_int(s, 1));
		snprintf(slug, 33, "%s", db_col_text(s, 0));
		if (w == NULL) {
			log_error("data key %u is purged", id);
			e = BW_ERR_CRYPTO;
		} else if (m == NULL) {
			log_error("data key %u is wrapped by master key %lld, which the key source does "
				  "not have",
				  id, (long long)db_col_int(s, 1));
			e = BW_ERR_CRYPTO;
		} else {
			e = kr_unwrap(m, KR_DATA_KEY, slug, id, w, wl, dek);
			if (e != BW_OK)
				log_error("data key %u does not unwrap: tampered with, or wrong master key", id);
		}
		pthread_rwlock_unlock(&kr->mlk);
	} else if (e == BW_OK) {
		e = BW_ERR_CRYPTO; /* no such key: destroyed with its tenant, or never made */
	}
	db_finalize(s);
	return e;
}

/* The cached key id, loading it on first use. NULL with *e set on failure. */
static struct kr_dek *
kr_get(struct keyring *kr, uint32_t id, bw_err *e)
{
	pthread_rwlock_rdlock(&kr->lock);
	struct kr_dek *k = kr_find(kr, id);
	pthread_rwlock_unlock(&kr->lock);
	if (k != NULL)
		return k;
	char slug[33];
	unsigned char dek[AEAD_KEY_LEN];
	pthread_mutex_lock(&kr->mu);
	*e = kr_load(kr, id, slug, dek);
	pthread_mutex_unlock(&kr->mu);
	if (*e != BW_OK)
		return NULL;
	pthread_rwlock_wrlock(&kr->lock);
	k = kr_find(kr, id);
	if (k == NULL) {
		for (size_t i = 0, h = id & (KR_DEK_SLOTS - 1); i < KR_DEK_SLOTS;
		     i++, h = (h + 1) & (KR_DEK_SLOTS - 1)) {
			if (kr->s->dek[h].id == 0) {
				k = &kr->s->dek[h];
				memcpy(k->key, dek, sizeof(dek));
				snprintf(k->slug, sizeof(k->slug), "%s", slug);
				atomic_store(&k->left, 0);
				k->id = id;
				break;
			}
		}
	}
	pthread_rwlock_unlock(&kr->lock);
	crypto_wipe(dek, sizeof(dek));
	if (k == NULL) {
		log_error("key ring full: more than %d data keys in use", KR_DEK_SLOTS);
		*e = BW_ERR_NOMEM;
	}
	return k;
}

void
keyring_forget_tenant(struct keyring *kr, const char *slug)
{
	/* Wiping in place would break open addressing; keep the slot, lose the key. */
	pthread_rwlock_wrlock(&kr->lock);
	for (size_t i = 0; i < KR_DEK_SLOTS; i++) {
		struct kr_dek *k = &kr->s->dek[i];
		if (k->id != 0 && strcmp(k->slug, slug) == 0) {
			crypto_wipe(k->key, sizeof(k->key));
			k->slug[0] = '\0'; /* no tenant has an empty name: never matches again */
			atomic_store(&k->left, 0);
		}
	}
	pthread_rwlock_unlock(&kr->lock);
}

bw_err
keyring_dek_rewrap(struct keyring *kr, db *d, uint32_t id)
{
	bw_err e = BW_OK;
	struct kr_dek *k = kr_get(kr, id, &e);
	if (k == NULL)
		return e;
	return kr_store_wrapped(kr, d, k->slug, id, k->key);
}

/* Reserve another block of encryptions for key k in the control database. */
static bw_err
kr_reserve(struct keyring *kr, struct kr_dek *k)
{
	db_stmt *s;
	int row;
	bw_err e;
	pthread_mutex_lock(&kr->mu);
	if (atomic_load(&k->left) > 0) { /* another thread just did it */
		pthread_mutex_unlock(&kr->mu);
		return BW_OK;
	}
	e = db_prepare(kr->ctl,
		       "UPDATE data_keys SET encryptions = encryptions + ? WHERE id = ? AND state IN "
		       "('active', 'retired') AND encryptions + ? <= ?",
		       &s);
	if (e == BW_OK && (e = db_bind_int(s, 1, KR_BLOCK)) == BW_OK &&
	    (e = db_bind_int(s, 2, k->id)) == BW_OK && (e = db_bind_int(s, 3, KR_BLOCK)) == BW_OK &&
	    (e = db_bind_int(s, 4, KEYRING_ENC_LIMIT)) == BW_OK)
		e = db_step(s, &row);
	int64_t changed = e == BW_OK ? db_changes(s) : 0;
	db_finalize(s);
	if (e == BW_OK && changed == 1) {
		atomic_fetch_add(&k->left, KR_BLOCK);
	} else if (e == BW_OK) {
		log_error("data key %u has reached its encryption limit (or is purged): run 'bulwark "
			  "keys rotate'",
			  k->id);
		e = BW_ERR_CRYPTO;
	}
	pthread_mutex_unlock(&kr->mu);
	return e;
}

bw_err
keyring_seal(struct keyring *kr, uint32_t key_id, const struct seal_place *place,
	     const unsigned char *pt, size_t n, unsigned char *out)
{
	bw_err e = BW_OK;
	if (key_id == 0)
		return BW_ERR_CRYPTO;
	struct kr_dek *k = kr_get(kr, key_id, &e);
	if (k == NULL)
		return e;
	if (strcmp(k->slug, place->tenant) != 0)
		return BW_ERR_CRYPTO; /* another tenant's key: never */
	while (atomic_fetch_sub(&k->left, 1) <= 0) {
		atomic_fetch_add(&k->left, 1);
		if ((e = kr_reserve(kr, k)) != BW_OK)
			return e;
	}
	return seal_with_key(k->key, key_id, place, pt, n, out);
}

bw_err
keyring_open_sealed(struct keyring *kr, const struct seal_place *place,
		    const unsigned char *sealed, size_t len, unsigned char *out)
{
	uint32_t kid;
	bw_err e = seal_key_id(sealed, len, &kid);
	if (e != BW_OK)
		return e;
	struct kr_dek *k = kr_get(kr, kid, &e);
	if (k == NULL)
		return e;
	if (strcmp(k->slug, place->tenant) != 0)
		return BW_ERR_CRYPTO;
	return open_with_key(k->key, place, sealed, len, out);
}

bw_err
keyring_derived_mac(struct keyring *kr, uint32_t key_id, const char *tenant, const char *label,
		    const unsigned char *msg, size_t len, unsigned char out[HMAC_SHA256_LEN])
{
	unsigned char info[130], dk[HMAC_SHA256_LEN];
	size_t ll = strlen(label), tl = strlen(tenant);
	bw_err e = BW_OK;
	if (key_id == 0 || ll > 64 || tl > 64)
		return BW_ERR_CRYPTO;
	struct kr_dek *k = kr_get(kr, key_id, &e);
	if (k == NULL)
		return e;
	if (strcmp(k->slug, tenant) != 0)
		return BW_ERR_CRYPTO; /* another tenant's key: never */
	memcpy(info, label, ll);
	info[ll] = 0;
	memcpy(info + ll + 1, tenant, tl);
	e = hkdf_sha256(NULL, 0, k->key, sizeof(k->key), info, ll + 1 + tl, dk);
	if (e == BW_OK)
		e = mac_sha256(dk, sizeof(dk), msg, len, out);
	crypto_wipe(dk, sizeof(dk));
	return e;
}

bw_err
keyring_wrap_secret(struct keyring *kr, const char *purpose, const char *owner, uint32_t id,
		    const unsigned char in[AEAD_KEY_LEN], unsigned char out[KEYRING_WRAPPED_LEN],
		    uint32_t *master_id)
{
	if (strlen(purpose) > 64 || strlen(owner) > 64)
		return BW_ERR_CRYPTO;
	pthread_rwlock_rdlock(&kr->mlk);
	const struct kr_master *m = kr_master(&kr->s->ms, kr->s->ms.active);
	bw_err e = BW_ERR_CRYPTO;
	if (m != NULL) {
		*master_id = m->id;
		e = kr_wrap(m, purpose, owner, id, in, out);
	}
	pthread_rwlock_unlock(&kr->mlk);
	return e;
}

bw_err
keyring_unwrap_secret(struct keyring *kr, const char *purpose, const char *owner, uint32_t id,
		      uint32_t master_id, const unsigned char *in, size_t len,
		      unsigned char out[AEAD_KEY_LEN])
{
	if (strlen(purpose) > 64 || strlen(owner) > 64)
		return BW_ERR_CRYPTO;
	pthread_rwlock_rdlock(&kr->mlk);
	const struct kr_master *m = kr_master(&kr->s->ms, master_id);
	bw_err e = m ? kr_unwrap(m, purpose, owner, id, in, len, out) : BW_ERR_CRYPTO;
	pthread_rwlock_unlock(&kr->mlk);
	return e;
}
