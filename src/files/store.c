/*
 * Attachments' contents: chunked AEAD in the tenant database (store.h,
 * ADR 0017). A chunk is the AES-256-GCM ciphertext and tag of up to
 * FILE_CHUNK_BYTES of the file under the file's own key, with
 *   nonce = 0x00000000 | chunk index (8 bytes, big-endian)
 *   AAD   = "bulwark-file-chunk-v1" | len(tenant) | tenant | file id (8) |
 *           chunk index (8) | 1 if it is the last chunk, else 0
 * The key is random per file and each index is sealed once, so a nonce is
 * never used twice under a key; the AAD pins every chunk to its place.
 */
#include "store.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../crypto/crypto.h"

#define STORE_AAD_LABEL "bulwark-file-chunk-v1"
#define STORE_AAD_MAX (sizeof(STORE_AAD_LABEL) - 1 + 1 + TENANT_SLUG_MAX + 8 + 8 + 1)

struct file_writer {
	struct op *op;
	int64_t id;
	unsigned char key[AEAD_KEY_LEN];
	unsigned char *buf; /* the chunk being filled: FILE_CHUNK_BYTES */
	size_t len;
	int64_t idx;   /* the index the buffered chunk will have */
	uint64_t size; /* bytes written */
	EVP_MD_CTX *md;
	unsigned char *ct; /* ciphertext and tag of one chunk */
};

struct file_reader {
	struct op *op;
	int64_t id;
	unsigned char key[AEAD_KEY_LEN];
	uint64_t size;
	int64_t chunks;
	unsigned char *plain; /* the chunk cached */
	int64_t cached;       /* its index, -1: none */
	size_t cached_len;
	bw_err err;
};

static void
store_be64(unsigned char *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (unsigned char)v;
}

static size_t
store_aad(const char *tenant, int64_t id, int64_t idx, int last, unsigned char *aad)
{
	size_t n = sizeof(STORE_AAD_LABEL) - 1, tl = strlen(tenant);
	if (tl > TENANT_SLUG_MAX)
		tl = TENANT_SLUG_MAX;
	memcpy(aad, STORE_AAD_LABEL, n);
	aad[n++] = (unsigned char)tl;
	memcpy(aad + n, tenant, tl);
	n += tl;
	store_be64(aad + n, (uint64_t)id);
	store_be64(aad + n + 8, (uint64_t)idx);
	n += 16;
	aad[n++] = last ? 1 : 0;
	return n;
}

static void
store_nonce(int64_t idx, unsigned char nonce[AEAD_NONCE_LEN])
{
	memset(nonce, 0, 4);
	store_be64(nonce + 4, (uint64_t)idx);
}

/*
 * A transaction on the tenant database without the caller's own check
 * (op->tx_begin): cleaning up must work even after the caller's session
 * ended. Retried like op_tx on a deadlock.
 */
static bw_err
store_tx_raw(struct op *op, op_tx_fn fn, void *arg)
{
	bw_err (*saved)(struct op *) = op->tx_begin;
	op->tx_begin = NULL;
	bw_err e = op_tx(op, fn, arg);
	op->tx_begin = saved;
	return e;
}

/* --- writing ------------------------------------------------------------------ */

struct store_begin {
	const char *module, *name;
	int64_t row_id, reservation;
	struct file_writer *w;
};

static bw_err
store_begin_tx(struct op *op, void *arg)
{
	struct store_begin *b = arg;
	unsigned char *sealed = NULL;
	size_t sealed_len;
	int64_t id;
	bw_err e = DB_INSERT(op->d, &id,
			     "INSERT INTO files (module, row_id, name, mime, size, sha256, state, dek,"
			     " chunks, reservation, created_by, created_at, version)"
			     " VALUES (?, ?, ?, '', 0, '', 'pending', NULL, 0, ?, ?, ?, 1)",
			     DB_TEXT(b->module), DB_INT(b->row_id), DB_TEXT(b->name),
			     DB_INT(b->reservation), DB_INT(op->actor.user.id),
			     DB_INT((int64_t)time(NULL)));
	if (e != BW_OK)
		return e;
	if ((e = field_seal(op->ten, &op->tn, "files", "dek", id, b->w->key, AEAD_KEY_LEN, &sealed,
			    &sealed_len)) != BW_OK)
		return op_fail(op, e == BW_ERR_CRYPTO ? BW_ERR_CRYPTO : e, NULL);
	e = DB_RUN(op->d, "UPDATE files SET dek = ? WHERE id = ?", DB_BLOB(sealed, sealed_len),
		   DB_INT(id));
	free(sealed);
	if (e == BW_OK)
		b->w->id = id;
	return e;
}

void
file_writer_free(struct file_writer *w)
{
	if (w == NULL)
		return;
	crypto_wipe(w->key, sizeof(w->key));
	if (w->buf != NULL) {
		crypto_wipe(w->buf, FILE_CHUNK_BYTES);
		free(w->buf);
	}
	free(w->ct);
	EVP_MD_CTX_free(w->md);
	free(w);
}

bw_err
file_store_begin(struct op *op, const char *module, int64_t row_id, const char *name,
		 int64_t reservation, struct file_writer **out)
{
	*out = NULL;
	struct file_writer *w = calloc(1, sizeof(*w));
	if (w == NULL || (w->buf = malloc(FILE_CHUNK_BYTES)) == NULL ||
	    (w->ct = malloc(FILE_CHUNK_BYTES + AEAD_TAG_LEN)) == NULL ||
	    (w->md = EVP_MD_CTX_new()) == NULL || EVP_DigestInit_ex(w->md, EVP_sha256(), NULL) != 1) {
		file_writer_free(w);
		return op_fail(op, BW_ERR_NOMEM, NULL);
	}
	w->op = op;
	bw_err e = util_random(w->key, sizeof(w->key));
	if (e != BW_OK) {
		file_writer_free(w);
		return op_fail(op, e, NULL);
	}
	struct store_begin b = {module, name, row_id, reservation, w};
	if ((e = op_tx(op, store_begin_tx, &b)) != BW_OK) {
		file_writer_free(w);
		return e;
	}
	op_db_release(op);
	*out = w;
	return BW_OK;
}

int64_t
file_writer_id(const struct file_writer *w)
{
	return w->id;
}

uint64_t
file_writer_size(const struct file_writer *w)
{
	return w->size;
}

struct store_chunk {
	struct file_writer *w;
	int last;
};

static bw_err
store_chunk_tx(struct op *op, void *arg)
{
	struct store_chunk *c = arg;
	struct file_writer *w = c->w;
	bw_err e = DB_RUN(op->d, "INSERT INTO file_chunks (file_id, idx, data) VALUES (?, ?, ?)",
			  DB_INT(w->id), DB_INT(w->idx), DB_BLOB(w->ct, w->len + AEAD_TAG_LEN));
	if (e == BW_OK && c->last)
		e = DB_RUN(op->d, "UPDATE files SET chunks = ?, size = ? WHERE id = ? AND state = 'pending'",
			   DB_INT(w->idx + 1), DB_INT((int64_t)w->size), DB_INT(w->id));
	return e;
}

/* Seal the buffered chunk and store it (a transaction of its own). */
static bw_err
store_flush(struct file_writer *w, int last)
{
	unsigned char nonce[AEAD_NONCE_LEN], aad[STORE_AAD_MAX];
	size_t aadlen = store_aad(w->op->tn.slug, w->id, w->idx, last, aad);
	store_nonce(w->idx, nonce);
	bw_err e = aead_seal(w->key, sizeof(w->key), nonce, aad, aadlen, w->buf, w->len, w->ct,
			     w->ct + w->len);
	if (e != BW_OK)
		return op_fail(w->op, BW_ERR_CRYPTO, NULL);
	struct store_chunk c = {w, last};
	e = op_tx(w->op, store_chunk_tx, &c);
	op_db_release(w->op);
	if (e != BW_OK)
		return e;
	crypto_wipe(w->buf, w->len);
	w->len = 0;
	w->idx++;
	return BW_OK;
}

bw_err
file_store_write(struct file_writer *w, const void *p, size_t n)
{
	const unsigned char *in = p;
	if (n > 0 && EVP_DigestUpdate(w->md, p, n) != 1)
		return op_fail(w->op, BW_ERR_CRYPTO, NULL);
	w->size += n;
	while (n > 0) {
		/* A full chunk is stored only once more follows: the last one is sealed as last. */
		if (w->len == FILE_CHUNK_BYTES) {
			bw_err e = store_flush(w, 0);
			if (e != BW_OK)
				return e;
		}
		size_t take = FILE_CHUNK_BYTES - w->len;
		if (take > n)
			take = n;
		memcpy(w->buf + w->len, in, take);
		w->len += take;
		in += take;
		n -= take;
	}
	return BW_OK;
}

bw_err
file_store_close(struct file_writer *w, uint64_t *size, char sha256[65])
{
	unsigned char md[32];
	unsigned int mdlen = 0;
	bw_err e = store_flush(w, 1);
	if (e != BW_OK)
		return e;
	if (EVP_DigestFinal_ex(w->md, md, &mdlen) != 1 || mdlen != sizeof(md))
		return op_fail(w->op, BW_ERR_CRYPTO, NULL);
	util_hex(md, sizeof(md), sha256);
	*size = w->size;
	return BW_OK;
}

/* --- publishing and deleting ----------------------------------------------------------- */

bw_err
file_store_publish(struct op *op, int64_t id, const char *mime, uint64_t size, const char *sha256)
{
	db_stmt *s;
	bw_err e = db_prepare_cached(op->d,
				     "UPDATE files SET state = 'ready', mime = ?, sha256 = ?, reservation = 0"
				     " WHERE id = ? AND state = 'pending' AND size = ?",
				     &s);
	if (e != BW_OK)
		return e;
	int row;
	if ((e = DB_BIND(s, DB_TEXT(mime), DB_TEXT(sha256), DB_INT(id), DB_INT((int64_t)size))) ==
		BW_OK)
		e = db_step(s, &row);
	if (e == BW_OK && db_changes(s) != 1)
		e = BW_ERR_NOTFOUND;
	db_done(s);
	return e;
}

bw_err
file_store_delete(db *d, int64_t id)
{
	bw_err e = DB_RUN(d, "DELETE FROM file_chunks WHERE file_id = ?", DB_INT(id));
	return e == BW_OK ? DB_RUN(d, "DELETE FROM files WHERE id = ?", DB_INT(id)) : e;
}

static bw_err
store_discard_tx(struct op *op, void *arg)
{
	int64_t id = *(int64_t *)arg;
	int64_t pending = 0;
	bw_err e = DB_QUERY_INT(op->d, &pending,
				"SELECT COUNT(*) FROM files WHERE id = ? AND state = 'pending'", DB_INT(id));
	if (e != BW_OK || pending == 0)
		return e;
	return file_store_delete(op->d, id);
}

void
file_store_discard(struct op *op, int64_t id)
{
	if (id <= 0)
		return;
	bw_err saved = op->err;
	const char *msg = op->err_msg, *detail = op->err_detail;
	if (store_tx_raw(op, store_discard_tx, &id) != BW_OK)
		log_warn("tenant %s: pending file %lld not removed (the sweep will): %s", op->tn.slug,
			 (long long)id, bw_errcode(op->err));
	op_db_release(op);
	/* The refusal that made us discard is still the outcome. */
	op->err = saved, op->err_msg = msg, op->err_detail = detail;
}

struct store_sweep {
	int64_t before;
	size_t limit, n;
	int64_t *res;
};

static bw_err
store_sweep_tx(struct op *op, void *arg)
{
	struct store_sweep *sw = arg;
	db_stmt *s;
	int row;
	int64_t ids[64];
	size_t n = 0;
	sw->n = 0;
	bw_err e = db_prepare(op->d,
			      "SELECT id, reservation FROM files WHERE state = 'pending' AND created_at < ?"
			      " ORDER BY id",
			      &s);
	if (e != BW_OK)
		return e;
	if ((e = DB_BIND(s, DB_INT(sw->before))) == BW_OK)
		while (n < sw->limit && n < BW_ARRAY_LEN(ids) && (e = db_step(s, &row)) == BW_OK && row) {
			ids[n] = db_col_int(s, 0);
			sw->res[n] = db_col_int(s, 1);
			n++;
		}
	db_finalize(s);
	for (size_t i = 0; e == BW_OK && i < n; i++)
		e = file_store_delete(op->d, ids[i]);
	if (e == BW_OK)
		sw->n = n;
	return e;
}

bw_err
file_store_sweep(struct op *op, int64_t max_age, size_t limit, int64_t *res, size_t *n)
{
	struct store_sweep sw = {(int64_t)time(NULL) - max_age, limit, 0, res};
	*n = 0;
	bw_err e = store_tx_raw(op, store_sweep_tx, &sw);
	op_db_release(op);
	if (e == BW_OK)
		*n = sw.n;
	return e;
}

/* --- reading -------------------------------------------------------------------- */

void
file_reader_free(struct file_reader *r)
{
	if (r == NULL)
		return;
	crypto_wipe(r->key, sizeof(r->key));
	if (r->plain != NULL) {
		crypto_wipe(r->plain, FILE_CHUNK_BYTES);
		free(r->plain);
	}
	free(r);
}

bw_err
file_store_open(struct op *op, int64_t id, struct file_reader **out)
{
	db *d;
	db_stmt *s;
	int row = 0;
	*out = NULL;
	bw_err e = op_db(op, &d);
	if (e != BW_OK)
		return e;
	struct file_reader *r = calloc(1, sizeof(*r));
	if (r == NULL || (r->plain = malloc(FILE_CHUNK_BYTES)) == NULL) {
		file_reader_free(r);
		return op_fail(op, BW_ERR_NOMEM, NULL);
	}
	r->op = op;
	r->id = id;
	r->cached = -1;
	e = db_prepare_cached(d, "SELECT size, chunks, dek FROM files WHERE id = ?", &s);
	if (e == BW_OK && (e = DB_BIND(s, DB_INT(id))) == BW_OK && (e = db_step(s, &row)) == BW_OK &&
	    row) {
		size_t len;
		const unsigned char *dek = db_col_blob(s, 2, &len);
		struct seal_place pl = {op->tn.slug, "files", "dek", id};
		r->size = (uint64_t)db_col_int(s, 0);
		r->chunks = db_col_int(s, 1);
		if (dek == NULL || len != seal_len(AEAD_KEY_LEN) ||
		    keyring_open_sealed(tenancy_keyring(op->ten), &pl, dek, len, r->key) != BW_OK)
			e = BW_ERR_CRYPTO;
		/* The size and the chunk count must agree, or the file was cut or padded. */
		else if (r->chunks < 1 ||
			 (uint64_t)(r->chunks - 1) * FILE_CHUNK_BYTES >= r->size + (r->size == 0) ||
			 r->size > (uint64_t)r->chunks * FILE_CHUNK_BYTES)
			e = BW_ERR_CRYPTO;
	}
	db_done(s);
	op_db_release(op);
	if (e == BW_OK && !row)
		e = BW_ERR_NOTFOUND;
	if (e != BW_OK) {
		file_reader_free(r);
		if (e == BW_ERR_CRYPTO) {
			log_error("tenant %s: file %lld: its key or size does not check out (tampered with?)",
				  op->tn.slug, (long long)id);
			return op_fail(op, BW_ERR_CRYPTO, "the stored file is damaged");
		}
		return e == BW_ERR_NOTFOUND ? e : op_unavailable(op);
	}
	*out = r;
	return BW_OK;
}

uint64_t
file_reader_size(const struct file_reader *r)
{
	return r->size;
}

bw_err
file_reader_err(const struct file_reader *r)
{
	return r->err;
}

/* Chunk idx into the cache, opened and its length checked. */
static bw_err
store_load(struct file_reader *r, int64_t idx)
{
	db *d;
	db_stmt *s;
	int row = 0;
	int last = idx == r->chunks - 1;
	size_t want = last ? (size_t)(r->size - (uint64_t)idx * FILE_CHUNK_BYTES) : FILE_CHUNK_BYTES;
	bw_err e = op_db(r->op, &d);
	if (e != BW_OK)
		return BW_ERR_UNAVAILABLE;
	e = db_prepare_cached(d, "SELECT data FROM file_chunks WHERE file_id = ? AND idx = ?", &s);
	if (e == BW_OK && (e = DB_BIND(s, DB_INT(r->id), DB_INT(idx))) == BW_OK &&
	    (e = db_step(s, &row)) == BW_OK) {
		size_t len = 0;
		const unsigned char *ct = row ? db_col_blob(s, 0, &len) : NULL;
		unsigned char nonce[AEAD_NONCE_LEN], aad[STORE_AAD_MAX];
		size_t aadlen = store_aad(r->op->tn.slug, r->id, idx, last, aad);
		store_nonce(idx, nonce);
		if (!row || len != want + AEAD_TAG_LEN)
			e = BW_ERR_CRYPTO; /* missing, or of another length than its place says */
		else if (aead_open(r->key, sizeof(r->key), nonce, aad, aadlen, ct, want, ct + want,
				   r->plain) != BW_OK)
			e = BW_ERR_CRYPTO;
	}
	db_done(s);
	op_db_release(r->op);
	if (e == BW_OK) {
		r->cached = idx;
		r->cached_len = want;
	} else {
		r->cached = -1;
		if (e == BW_ERR_CRYPTO)
			log_error("tenant %s: file %lld chunk %lld does not open (tampered with?)",
				  r->op->tn.slug, (long long)r->id, (long long)idx);
		else
			e = BW_ERR_UNAVAILABLE;
	}
	return e;
}

long
file_reader_read_at(void *ud, uint64_t off, void *buf, size_t n)
{
	struct file_reader *r = ud;
	if (r->err != BW_OK)
		return -1;
	if (off >= r->size || n == 0)
		return 0;
	int64_t idx = (int64_t)(off / FILE_CHUNK_BYTES);
	if (idx != r->cached && (r->err = store_load(r, idx)) != BW_OK)
		return -1;
	size_t at = (size_t)(off - (uint64_t)idx * FILE_CHUNK_BYTES);
	size_t take = r->cached_len - at;
	if (take > n)
		take = n;
	if (take > (size_t)LONG_MAX)
		take = (size_t)LONG_MAX;
	memcpy(buf, r->plain + at, take);
	return (long)take;
}
