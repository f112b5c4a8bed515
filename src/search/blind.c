/*
 * Blind indexes (see blind.h): normalising, the MAC, the entries, lookups
 * and the rotation step. SQL is made only from descriptor names; every
 * value is bound. Plaintexts opened here are wiped before they are freed.
 */
#include "blind.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../crypto/crypto.h"
#include "fulltext.h"

enum blind_kind
blind_kind_of(const struct field_desc *f)
{
	if (f->flags & FF_PHONE)
		return BLIND_PHONE;
	return f->type == FT_EMAIL ? BLIND_EMAIL : BLIND_TEXT;
}

static int
blind_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

/* Folded text, trimmed, runs of white space made one space. */
static bw_err
blind_text(const char *in, size_t n, char *out, size_t *len)
{
	char *f;
	size_t fl, o = 0;
	bw_err e = fulltext_fold(in, n, &f, &fl);
	if (e != BW_OK)
		return e;
	for (size_t i = 0; i < fl; i++) {
		if (blind_space(f[i])) {
			if (o > 0 && out[o - 1] != ' ' && o < BLIND_NORM_MAX)
				out[o++] = ' ';
			continue;
		}
		if (o == BLIND_NORM_MAX) {
			e = BW_ERR_TOO_LARGE;
			break;
		}
		out[o++] = f[i];
	}
	crypto_wipe(f, fl);
	free(f);
	if (o > 0 && out[o - 1] == ' ')
		o--;
	out[o] = '\0';
	*len = e == BW_OK ? o : 0;
	return e;
}

bw_err
blind_normalize(enum blind_kind k, const char *in, size_t n, char *out, size_t *len)
{
	*len = 0;
	out[0] = '\0';
	if (n > BLIND_NORM_MAX)
		return BW_ERR_TOO_LARGE;
	switch (k) {
	case BLIND_PHONE: {
		/* Folded first, so that full-width digits count as digits. */
		char *f;
		size_t fl, o = 0, i = 0;
		bw_err e = fulltext_fold(in, n, &f, &fl);
		if (e != BW_OK)
			return e;
		while (i < fl && blind_space(f[i]))
			i++;
		if (i < fl && f[i] == '+')
			out[o++] = '+';
		for (; i < fl && o < BLIND_NORM_MAX; i++)
			if (f[i] >= '0' && f[i] <= '9')
				out[o++] = f[i];
		crypto_wipe(f, fl);
		free(f);
		if (o == 1 && out[0] == '+')
			o = 0; /* a plus and no digit is no number */
		out[o] = '\0';
		*len = o;
		return BW_OK;
	}
	case BLIND_EMAIL: {
		char buf[BLIND_NORM_MAX + 1];
		const char *why;
		size_t a = 0, b = n;
		while (a < b && blind_space(in[a]))
			a++;
		while (b > a && blind_space(in[b - 1]))
			b--;
		if (b - a <= EMAIL_MAX && memchr(in + a, '\0', b - a) == NULL) {
			struct email_addr ea;
			memcpy(buf, in + a, b - a);
			buf[b - a] = '\0';
			bw_err e = email_normalize(buf, EMAIL_ALLOW_IDN, &ea, &why);
			crypto_wipe(buf, sizeof(buf));
			if (e == BW_ERR_NOMEM)
				return e;
			if (e == BW_OK) {
				size_t kl = strlen(ea.key);
				memcpy(out, ea.key, kl + 1);
				*len = kl;
				crypto_wipe(&ea, sizeof(ea));
				return BW_OK;
			}
		}
		/* Refused as an identity: still found the way it was written. */
		return blind_text(in, n, out, len);
	}
	case BLIND_TEXT:
		return blind_text(in, n, out, len);
	}
	abort(); /* every kind is handled above */
}

bw_err
blind_mac(struct keyring *kr, const char *tenant, uint32_t key_id, const char *entity,
	  const char *field, const char *norm, size_t n, char hex[BLIND_MAC_HEX + 1])
{
	unsigned char msg[64 + 1 + 64 + 1 + BLIND_NORM_MAX], mac[HMAC_SHA256_LEN];
	size_t el = strlen(entity), fl = strlen(field), off = 0;
	if (el > 64 || fl > 64 || n > BLIND_NORM_MAX)
		return BW_ERR_INVALID;
	/* entity and field are identifiers ([a-z_]): a NUL ends each unambiguously. */
	memcpy(msg, entity, el + 1);
	off = el + 1;
	memcpy(msg + off, field, fl + 1);
	off += fl + 1;
	memcpy(msg + off, norm, n);
	off += n;
	bw_err e = keyring_derived_mac(kr, key_id, tenant, BLIND_LABEL, msg, off, mac);
	crypto_wipe(msg, off);
	if (e != BW_OK)
		return e;
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < sizeof(mac); i++) {
		hex[2 * i] = digits[mac[i] >> 4];
		hex[2 * i + 1] = digits[mac[i] & 15];
	}
	hex[BLIND_MAC_HEX] = '\0';
	crypto_wipe(mac, sizeof(mac));
	return BW_OK;
}

const struct field_desc *
blind_field(const char *table, const char *column)
{
	const struct module_desc *m = module_find(table);
	const struct field_desc *f = m ? module_field(m, column) : NULL;
	return f != NULL && (f->flags & FF_BLIND) && (f->flags & FF_ENCRYPTED) ? f : NULL;
}

bw_err
blind_put(db *d, struct keyring *kr, const char *tenant, uint32_t key_id,
	  const struct module_desc *m, const struct field_desc *f, int64_t row_id, const char *value,
	  size_t n)
{
	char norm[BLIND_NORM_MAX + 1], hex[BLIND_MAC_HEX + 1];
	size_t nl = 0;
	bw_err e = BW_OK;
	if (value != NULL)
		e = blind_normalize(blind_kind_of(f), value, n, norm, &nl);
	if (e == BW_OK && nl > 0)
		e = blind_mac(kr, tenant, key_id, m->name, f->name, norm, nl, hex);
	crypto_wipe(norm, sizeof(norm));
	if (e != BW_OK)
		return e;
	if (nl == 0)
		return DB_RUN(d, "DELETE FROM blind_index WHERE entity = ? AND field = ? AND row_id = ?",
			      DB_TEXT(m->name), DB_TEXT(f->name), DB_INT(row_id));
	/* One entry per (entity, field, row): replaced in place, or made. */
	db_stmt *s;
	int row;
	if ((e = db_prepare_cached(d,
				   "UPDATE blind_index SET key_id = ?, mac = ? WHERE entity = ? AND"
				   " field = ? AND row_id = ?",
				   &s)) != BW_OK)
		return e;
	if ((e = DB_BIND(s, DB_INT(key_id), DB_TEXT(hex), DB_TEXT(m->name), DB_TEXT(f->name),
			 DB_INT(row_id))) == BW_OK)
		e = db_step(s, &row);
	int64_t changed = e == BW_OK ? db_changes(s) : 0;
	db_done(s);
	if (e != BW_OK || changed > 0)
		return e;
	return DB_RUN(d,
		      "INSERT INTO blind_index (entity, field, row_id, key_id, mac) VALUES (?, ?, ?, ?,"
		      " ?)",
		      DB_TEXT(m->name), DB_TEXT(f->name), DB_INT(row_id), DB_INT(key_id), DB_TEXT(hex));
}

bw_err
blind_remove_row(db *d, const struct module_desc *m, int64_t row_id)
{
	return DB_RUN(d, "DELETE FROM blind_index WHERE entity = ? AND row_id = ?", DB_TEXT(m->name),
		      DB_INT(row_id));
}

/* The data keys entries name, ascending, into keys (at most BLIND_KEYS_MAX). */
static bw_err
blind_keys(db *d, uint32_t *keys, size_t *n)
{
	int64_t last = 0, k;
	*n = 0;
	for (;;) {
		/* One index probe per key: MIN over the key_id index, never a scan. */
		bw_err e = DB_QUERY_INT(d, &k, "SELECT MIN(key_id) FROM blind_index WHERE key_id > ?",
					DB_INT(last));
		if (e != BW_OK)
			return e;
		if (k == 0)
			return BW_OK;
		if (*n == BLIND_KEYS_MAX || k > 0xffffffffLL) {
			log_error("blind index: entries under more than %d data keys: run 'bulwark keys "
				  "rotate'",
				  BLIND_KEYS_MAX);
			return BW_ERR_CRYPTO;
		}
		keys[(*n)++] = (uint32_t)k;
		last = k;
	}
}

static int
blind_cmp_id(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

bw_err
blind_lookup(db *d, struct keyring *kr, const char *tenant, const struct module_desc *m,
	     const struct field_desc *f, const char *value, int64_t *ids, size_t *n)
{
	char norm[BLIND_NORM_MAX + 1], hex[BLIND_MAC_HEX + 1];
	uint32_t keys[BLIND_KEYS_MAX];
	size_t nl, nk, got = 0;
	*n = 0;
	bw_err e = blind_normalize(blind_kind_of(f), value, strlen(value), norm, &nl);
	if (e == BW_ERR_TOO_LARGE)
		return BW_OK; /* longer than any value indexed: nothing equals it */
	if (e != BW_OK || nl == 0)
		return e;
	if ((e = blind_keys(d, keys, &nk)) != BW_OK)
		goto out;
	for (size_t i = 0; i < nk && e == BW_OK; i++) {
		db_stmt *s;
		int row;
		if ((e = blind_mac(kr, tenant, keys[i], m->name, f->name, norm, nl, hex)) != BW_OK) {
			log_error("tenant %s: blind index lookup under data key %u failed (%s)", tenant,
				  keys[i], bw_strerror(e));
			break;
		}
		if ((e = db_prepare_cached(d,
					   "SELECT row_id FROM blind_index WHERE mac = ? AND entity = ?"
					   " AND field = ? AND key_id = ? ORDER BY row_id LIMIT 101",
					   &s)) != BW_OK)
			break;
		if ((e = DB_BIND(s, DB_TEXT(hex), DB_TEXT(m->name), DB_TEXT(f->name),
				 DB_INT(keys[i]))) == BW_OK)
			while ((e = db_step(s, &row)) == BW_OK && row && got < BLIND_MATCHES_MAX)
				ids[got++] = db_col_int(s, 0);
		db_done(s);
	}
	if (e == BW_OK && got > 0) {
		/* A row is under one key at a time, but keep the answer a set regardless. */
		qsort(ids, got, sizeof(*ids), blind_cmp_id);
		size_t k = 1;
		for (size_t i = 1; i < got; i++)
			if (ids[i] != ids[k - 1])
				ids[k++] = ids[i];
		*n = k;
	}
out:
	crypto_wipe(norm, sizeof(norm));
	return e;
}

int64_t
blind_count_key(db *d, uint32_t key_id)
{
	int64_t n = 0;
	if (DB_QUERY_INT(d, &n, "SELECT COUNT(*) FROM blind_index WHERE key_id = ?", DB_INT(key_id)) !=
	    BW_OK)
		return -1;
	return n;
}

/* --- rotation -------------------------------------------------------------- */

#define BLIND_BATCH 256

struct blind_item {
	int64_t id;
	unsigned char *sealed;
	size_t len;
};

/*
 * One batch of field f of m, in one transaction: rows after *last whose
 * entry is missing or under another key than target.
 */
static bw_err
blind_rekey_batch(struct tenancy *t, const struct tenant *tn, db *d, const struct module_desc *m,
		  const struct field_desc *f, uint32_t target, int64_t *last, size_t *got,
		  int64_t *done, char *err, size_t errlen)
{
	struct blind_item items[BLIND_BATCH];
	char sel[512], lock[256];
	size_t n = 0;
	db_stmt *s = NULL;
	int row;
	bw_err e;
	*got = 0;
	snprintf(sel, sizeof(sel),
		 "SELECT t.id, t.%s FROM %s t LEFT JOIN blind_index b ON b.entity = ? AND b.field = ?"
		 " AND b.row_id = t.id WHERE t.id > ? AND t.%s IS NOT NULL AND (b.id IS NULL OR"
		 " b.key_id <> ?) ORDER BY t.id LIMIT %d",
		 f->name, m->name, f->name, BLIND_BATCH);
	/* Locks the row and confirms its value is still the one read. */
	snprintf(lock, sizeof(lock), "UPDATE %s SET %s = %s WHERE id = ? AND %s = ?", m->name, f->name,
		 f->name, f->name);
	if ((e = db_begin(d)) != BW_OK)
		goto dberr;
	if ((e = db_prepare(d, sel, &s)) != BW_OK ||
	    (e = DB_BIND(s, DB_TEXT(m->name), DB_TEXT(f->name), DB_INT(*last), DB_INT(target))) !=
		BW_OK)
		goto fail;
	while (n < BLIND_BATCH && (e = db_step(s, &row)) == BW_OK && row) {
		size_t len;
		const unsigned char *v = db_col_blob(s, 1, &len);
		items[n].id = db_col_int(s, 0);
		items[n].len = len;
		if ((items[n].sealed = malloc(len ? len : 1)) == NULL) {
			e = BW_ERR_NOMEM;
			break;
		}
		memcpy(items[n].sealed, v, len);
		n++;
	}
	db_finalize(s);
	s = NULL;
	if (e != BW_OK)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		struct blind_item *it = &items[i];
		struct seal_place pl = {tn->slug, m->name, f->name, it->id};
		unsigned char pt[BLIND_NORM_MAX + 1];
		*last = it->id;
		int64_t locked = 0, still = 0;
		if ((e = db_prepare_cached(d, lock, &s)) != BW_OK)
			goto fail;
		if ((e = DB_BIND(s, DB_INT(it->id), DB_BLOB(it->sealed, it->len))) == BW_OK &&
		    (e = db_step(s, &row)) == BW_OK)
			locked = db_changes(s);
		db_done(s);
		s = NULL;
		if (e != BW_OK)
			goto fail;
		if (locked != 1)
			continue; /* changed since it was read: that write made its own entry */
		if ((e = DB_QUERY_INT(d, &still, "SELECT COUNT(*) FROM blind_index WHERE entity = ? AND"
						 " field = ? AND row_id = ? AND key_id = ?",
				      DB_TEXT(m->name), DB_TEXT(f->name), DB_INT(it->id),
				      DB_INT(target))) != BW_OK)
			goto fail;
		if (still > 0)
			continue; /* written under target since it was read */
		if (it->len < SEAL_OVERHEAD || it->len - SEAL_OVERHEAD > BLIND_NORM_MAX) {
			snprintf(err, errlen, "tenant %s: %s.%s row %lld is not a sealed value", tn->slug,
				 m->name, f->name, (long long)it->id);
			e = BW_ERR_CRYPTO;
			goto fail;
		}
		size_t pl_len = it->len - SEAL_OVERHEAD;
		e = keyring_open_sealed(tenancy_keyring(t), &pl, it->sealed, it->len, pt);
		if (e == BW_OK)
			e = blind_put(d, tenancy_keyring(t), tn->slug, target, m, f, it->id, (char *)pt,
				      pl_len);
		crypto_wipe(pt, sizeof(pt));
		if (e != BW_OK) {
			snprintf(err, errlen, "tenant %s: %s.%s row %lld: %s", tn->slug, m->name, f->name,
				 (long long)it->id,
				 e == BW_ERR_CRYPTO ? "does not open (tampered with?)" : db_errmsg(d));
			goto fail;
		}
		(*done)++;
	}
	/* Entries left under another key whose row has no value any more (or is gone). */
	if (n < BLIND_BATCH) {
		char orphan[384];
		snprintf(orphan, sizeof(orphan),
			 "DELETE FROM blind_index WHERE entity = ? AND field = ? AND key_id <> ? AND"
			 " row_id NOT IN (SELECT id FROM %s WHERE %s IS NOT NULL)",
			 m->name, f->name);
		if ((e = DB_RUN(d, orphan, DB_TEXT(m->name), DB_TEXT(f->name), DB_INT(target))) !=
		    BW_OK)
			goto fail;
	}
	if ((e = db_commit(d)) != BW_OK)
		goto dberr;
	for (size_t i = 0; i < n; i++)
		free(items[i].sealed);
	*got = n;
	return BW_OK;
fail:
	db_finalize(s);
	(void)db_rollback(d);
dberr:
	for (size_t i = 0; i < n; i++)
		free(items[i].sealed);
	if (err[0] == '\0')
		snprintf(err, errlen, "tenant %s: blind index of %s.%s: %s", tn->slug, m->name, f->name,
			 db_errmsg(d));
	return e;
}

bw_err
blind_rekey(struct tenancy *t, const struct tenant *tn, db *d, uint32_t target, int64_t *done,
	    char *err, size_t errlen)
{
	for (size_t i = 0; i < module_catalog_count; i++) {
		const struct module_desc *m = module_catalog[i];
		for (size_t k = 0; k < m->nfields; k++) {
			const struct field_desc *f = &m->fields[k];
			int64_t last = 0;
			size_t got;
			if (blind_field(m->name, f->name) != f)
				continue;
			do {
				bw_err e = blind_rekey_batch(t, tn, d, m, f, target, &last, &got, done, err,
							     errlen);
				if (e != BW_OK)
					return e;
			} while (got == BLIND_BATCH);
		}
	}
	return BW_OK;
}
