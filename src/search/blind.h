/*
 * search/blind: blind indexes of sealed fields (docs/search.md, ADR 0016).
 *
 * For every row and every field flagged FF_BLIND, blind_index keeps
 *   mac = HMAC-SHA256(K, entity | 0 | field | 0 | normalised value)
 * in hex, with the id of the data key K was derived from, where
 *   K = HKDF-SHA256(tenant data key, "bulwark/blind-index/v1" | 0 | tenant)
 * (keyring_derived_mac: K exists only for the moment of the MAC, in the
 * key ring, and is never stored). Equal normalised values of one field of
 * one tenant have equal MACs under one key: that, and how many rows share
 * a value, is all the index tells someone who reads the database.
 *
 * A lookup computes the MAC under every data key some entry names (two
 * while a rotation runs), so rows are found throughout a rotation; the
 * rotation moves each entry to the new key (blind_rekey).
 */
#ifndef BW_SEARCH_BLIND_H
#define BW_SEARCH_BLIND_H

#include <stddef.h>
#include <stdint.h>

#include "../core/core.h"
#include "../db/db.h"
#include "../modules/desc.h"
#include "../tenancy/tenancy.h"

#define BLIND_LABEL "bulwark/blind-index/v1"
#define BLIND_NORM_MAX 1024 /* bytes of a normalised value */
#define BLIND_MAC_HEX 64
#define BLIND_KEYS_MAX 8     /* data keys a lookup tries (two while a rotation runs) */
#define BLIND_MATCHES_MAX 100 /* rows one lookup returns */

struct keyring;

enum blind_kind {
	BLIND_EMAIL = 1, /* an e-mail address: the project's normaliser (email.c), its key */
	BLIND_PHONE,     /* a telephone number: its digits, with a leading + if it had one */
	BLIND_TEXT,      /* anything else: trimmed, inner spaces collapsed, NFKC case-folded */
};

/* The kind of normalisation of field f (FF_PHONE, FT_EMAIL, else text). */
enum blind_kind blind_kind_of(const struct field_desc *f);
/*
 * The normal form of in[0..n) for kind k into out (BLIND_NORM_MAX + 1
 * bytes), its length in *len; 0 when nothing is left to index (a phone
 * number without digits, blanks). An e-mail address the identity policy
 * refuses (mixed scripts, say) is normalised as text, so that it is still
 * found the way it was written. BW_OK, BW_ERR_TOO_LARGE, BW_ERR_NOMEM.
 */
bw_err blind_normalize(enum blind_kind k, const char *in, size_t n, char *out,
		       size_t *len) BW_MUST_USE;
/*
 * The MAC (hex, NUL-ended) of the normalised value norm for field of
 * entity of tenant, under the index key derived from data key key_id.
 * keyring_derived_mac()'s errors.
 */
bw_err blind_mac(struct keyring *kr, const char *tenant, uint32_t key_id, const char *entity,
		 const char *field, const char *norm, size_t n,
		 char hex[BLIND_MAC_HEX + 1]) BW_MUST_USE;

/* The FF_BLIND field column of table, or NULL when (table, column) has no blind index. */
const struct field_desc *blind_field(const char *table, const char *column);

/*
 * Set the entry of row_id for field f of entity m to the plaintext value
 * (NULL or nothing left once normalised: no entry), under data key key_id,
 * on d in the caller's transaction. BW_OK or the key ring's / database's error.
 */
bw_err blind_put(db *d, struct keyring *kr, const char *tenant, uint32_t key_id,
		 const struct module_desc *m, const struct field_desc *f, int64_t row_id,
		 const char *value, size_t n) BW_MUST_USE;
/* Remove every entry of row_id of entity m. */
bw_err blind_remove_row(db *d, const struct module_desc *m, int64_t row_id) BW_MUST_USE;

/*
 * Row ids of entity m whose field f equals value once both are normalised,
 * looked up under every data key an entry names, into ids (at most
 * BLIND_MATCHES_MAX, ascending), their number in *n. A value that
 * normalises to nothing finds nothing. BW_OK, BW_ERR_CRYPTO (a key that
 * does not load: refused, never "not found"), or the database's error.
 */
bw_err blind_lookup(db *d, struct keyring *kr, const char *tenant, const struct module_desc *m,
		    const struct field_desc *f, const char *value, int64_t *ids,
		    size_t *n) BW_MUST_USE;

/*
 * Key rotation's step (keys.c): bring every blind index entry of tenant
 * tn (connection d) under data key target, and make the entries missing
 * for rows written before the index existed. In batches of 256, each one
 * transaction; each row's sealed value is confirmed unchanged (and the
 * row locked) before its entry is written, so an application write in
 * between wins. *done counts the entries written. On failure err says why.
 */
bw_err blind_rekey(struct tenancy *t, const struct tenant *tn, db *d, uint32_t target,
		   int64_t *done, char *err, size_t errlen) BW_MUST_USE;
/* How many entries of d are under data key key_id (-1: unknown, e.g. not migrated). */
int64_t blind_count_key(db *d, uint32_t key_id);

#endif
