/*
 * The full-text documents of module rows (see fulltext.h). SQL is made
 * only from descriptor names; every value is bound.
 */
#include "fulltext.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unicase.h>
#include <unictype.h>
#include <uninorm.h>
#include <unistr.h>

bw_err
fulltext_fold(const char *in, size_t n, char **out, size_t *outlen)
{
	size_t len = 0;
	*out = NULL;
	*outlen = 0;
	uint8_t *f = u8_check((const uint8_t *)in, n) == NULL
			 ? u8_casefold((const uint8_t *)in, n, NULL, UNINORM_NFKC, NULL, &len)
			 : NULL;
	if (f == NULL) {
		/* Not UTF-8 (never from JSON), or out of memory: ASCII folding, whole. */
		if ((f = malloc(n + 1)) == NULL)
			return BW_ERR_NOMEM;
		for (size_t i = 0; i < n; i++)
			f[i] = (in[i] >= 'A' && in[i] <= 'Z') ? (uint8_t)(in[i] - 'A' + 'a') : (uint8_t)in[i];
		len = n;
	}
	char *s = realloc(f, len + 1);
	if (s == NULL) {
		free(f);
		return BW_ERR_NOMEM;
	}
	s[len] = '\0';
	*out = s;
	*outlen = len;
	return BW_OK;
}

int
fulltext_field(const struct field_desc *f)
{
	return (f->type == FT_STRING || f->type == FT_TEXT || f->type == FT_EMAIL) &&
	       !(f->flags & (FF_ENCRYPTED | FF_WRITEONLY));
}

/*
 * The fields a row's label is made of: a contact is its first and last
 * name; any other row its first required plain one-line field, else its
 * first plain one-line field (invoice numbers).
 */
static size_t
fulltext_label_fields(const struct module_desc *m, const struct field_desc **out)
{
	if (strcmp(m->name, "contacts") == 0) {
		out[0] = module_field(m, "first_name");
		out[1] = module_field(m, "last_name");
		if (out[0] != NULL && out[1] != NULL)
			return 2;
	}
	for (int pass = 0; pass < 2; pass++)
		for (size_t k = 0; k < m->nfields; k++) {
			const struct field_desc *f = &m->fields[k];
			if (f->type == FT_STRING && fulltext_field(f) &&
			    (pass == 1 || (f->flags & FF_REQUIRED))) {
				out[0] = f;
				return 1;
			}
		}
	return 0;
}

/* Append s to the buffer at *len (bounded by cap), truncating at a character boundary. */
static void
fulltext_append(char *b, size_t cap, size_t *len, const char *s, size_t n)
{
	if (*len >= cap)
		return;
	if (n > cap - *len) {
		n = cap - *len;
		while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
			n--; /* s[n] continues a character: cut before that character */
	}
	memcpy(b + *len, s, n);
	*len += n;
}

bw_err
fulltext_remove(db *d, const struct module_desc *m, int64_t id)
{
	bw_err e = BW_OK;
	if (db_driver_of(d) == DB_SQLITE)
		e = DB_RUN(d,
			   "DELETE FROM search_fts WHERE rowid IN (SELECT id FROM search_docs WHERE"
			   " entity = ? AND row_id = ?)",
			   DB_TEXT(m->name), DB_INT(id));
	if (e == BW_OK)
		e = DB_RUN(d, "DELETE FROM search_docs WHERE entity = ? AND row_id = ?",
			   DB_TEXT(m->name), DB_INT(id));
	return e;
}

/* Store label and body (already folded) as the document of row id of m. */
static bw_err
fulltext_store(db *d, const struct module_desc *m, int64_t id, const char *label, const char *body)
{
	int sqlite = db_driver_of(d) == DB_SQLITE;
	int64_t doc = 0;
	bw_err e = DB_QUERY_INT(d, &doc, "SELECT id FROM search_docs WHERE entity = ? AND row_id = ?",
				DB_TEXT(m->name), DB_INT(id));
	if (e != BW_OK)
		return e;
	/* SQLite keeps the body in search_fts only (no second copy). */
	const char *kept = sqlite ? "" : body;
	if (doc == 0)
		e = DB_INSERT(d, &doc,
			      "INSERT INTO search_docs (entity, row_id, label, body) VALUES (?, ?, ?, ?)",
			      DB_TEXT(m->name), DB_INT(id), DB_TEXT(label), DB_TEXT(kept));
	else
		e = DB_RUN(d, "UPDATE search_docs SET label = ?, body = ? WHERE id = ?", DB_TEXT(label),
			   DB_TEXT(kept), DB_INT(doc));
	if (e == BW_OK && sqlite &&
	    (e = DB_RUN(d, "DELETE FROM search_fts WHERE rowid = ?", DB_INT(doc))) == BW_OK)
		e = DB_RUN(d, "INSERT INTO search_fts (rowid, body) VALUES (?, ?)", DB_INT(doc),
			   DB_TEXT(body));
	return e;
}

bw_err
fulltext_put(db *d, const struct module_desc *m, int64_t id)
{
	const struct field_desc *cols[64], *lab[2];
	size_t n = 0, nl = fulltext_label_fields(m, lab);
	char sql[1024];
	size_t off = (size_t)snprintf(sql, sizeof(sql), "SELECT id");
	for (size_t k = 0; k < m->nfields && n < BW_ARRAY_LEN(cols); k++)
		if (fulltext_field(&m->fields[k])) {
			cols[n++] = &m->fields[k];
			off += (size_t)snprintf(sql + off, off < sizeof(sql) ? sizeof(sql) - off : 0, ", %s",
						m->fields[k].name);
		}
	if (off + 64 + strlen(m->name) >= sizeof(sql))
		return BW_ERR_INTERNAL; /* descriptors are compiled in: never */
	snprintf(sql + off, sizeof(sql) - off, " FROM %s WHERE id = ?", m->name);

	db_stmt *s;
	int row = 0;
	bw_err e = db_prepare_cached(d, sql, &s);
	if (e != BW_OK)
		return e;
	if ((e = db_bind_int(s, 1, id)) == BW_OK)
		e = db_step(s, &row);
	if (e != BW_OK || !row) {
		db_done(s);
		return e != BW_OK ? e : fulltext_remove(d, m, id);
	}
	char *body = malloc(FULLTEXT_BODY_MAX + 1), label[FULLTEXT_LABEL_MAX + 1];
	size_t blen = 0, llen = 0;
	if (body == NULL) {
		db_done(s);
		return BW_ERR_NOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		const char *v = db_col_text(s, (int)i + 1);
		if (v == NULL || v[0] == '\0')
			continue;
		if (blen > 0)
			fulltext_append(body, FULLTEXT_BODY_MAX, &blen, "\n", 1);
		fulltext_append(body, FULLTEXT_BODY_MAX, &blen, v, strlen(v));
		for (size_t j = 0; j < nl; j++)
			if (lab[j] == cols[i]) {
				if (llen > 0)
					fulltext_append(label, FULLTEXT_LABEL_MAX, &llen, " ", 1);
				fulltext_append(label, FULLTEXT_LABEL_MAX, &llen, v, strlen(v));
			}
	}
	db_done(s);
	body[blen] = '\0';
	if (llen == 0) /* nothing to call it by: "Time entries 12" */
		llen = (size_t)snprintf(label, sizeof(label), "%s %lld", m->label, (long long)id);
	label[llen < sizeof(label) ? llen : sizeof(label) - 1] = '\0';
	char *folded;
	size_t flen;
	if ((e = fulltext_fold(body, blen, &folded, &flen)) == BW_OK) {
		e = fulltext_store(d, m, id, label, folded);
		free(folded);
	}
	free(body);
	return e;
}

/* The next word of q from *p: letters and digits only (UTF-8 decoded). */
static int
fulltext_word(const uint8_t *q, size_t n, size_t *p, size_t *start, size_t *len, size_t *chars)
{
	ucs4_t c;
	while (*p < n) {
		int l = u8_mbtouc(&c, q + *p, n - *p);
		if (uc_is_alnum(c))
			break;
		*p += (size_t)l;
	}
	if (*p >= n)
		return 0;
	*start = *p;
	*chars = 0;
	while (*p < n) {
		int l = u8_mbtouc(&c, q + *p, n - *p);
		if (!uc_is_alnum(c))
			break;
		*p += (size_t)l;
		(*chars)++;
	}
	*len = *p - *start;
	return 1;
}

bw_err
fulltext_query(db *d, const char *q, char **out)
{
	char *f;
	size_t n, p = 0, start, len, chars, terms = 0;
	int sqlite = db_driver_of(d) == DB_SQLITE;
	*out = NULL;
	bw_err e = fulltext_fold(q, strlen(q), &f, &n);
	if (e != BW_OK)
		return e;
	/* Each word quoted (SQLite) or signed (MariaDB): "w"* "v"* / +w* +v*. */
	size_t cap = FULLTEXT_TERMS_MAX * (FULLTEXT_TERM_MAX + 5) + 1, ol = 0;
	char *o = malloc(cap);
	if (o == NULL) {
		free(f);
		return BW_ERR_NOMEM;
	}
	while (terms < FULLTEXT_TERMS_MAX &&
	       fulltext_word((const uint8_t *)f, n, &p, &start, &len, &chars)) {
		if (chars < FULLTEXT_TERM_MIN || len > FULLTEXT_TERM_MAX)
			continue;
		ol += (size_t)snprintf(o + ol, cap - ol, sqlite ? "%s\"%.*s\"*" : "%s+%.*s*",
				       terms ? " " : "", (int)len, f + start);
		terms++;
	}
	free(f);
	if (terms == 0) {
		free(o);
		return BW_OK;
	}
	*out = o;
	return BW_OK;
}

const char *
fulltext_condition(db *d)
{
	return db_driver_of(d) == DB_SQLITE
		   ? "d.id IN (SELECT rowid FROM search_fts WHERE search_fts MATCH ?)"
		   : "MATCH (d.body) AGAINST (? IN BOOLEAN MODE)";
}

bw_err
fulltext_migrate(db *d, char *err, size_t errlen)
{
	bw_err e;
	if (db_driver_of(d) == DB_SQLITE) {
		/* Diacritics kept, as MariaDB keeps them: both drivers find the same rows. */
		e = db_exec(d, "CREATE VIRTUAL TABLE IF NOT EXISTS search_fts USING fts5(body,"
			       " tokenize = 'unicode61 remove_diacritics 0')");
	} else {
		/*
		 * No stopwords: "com", "about", "will" are words an MSP looks for.
		 * The setting is read when the index is made.
		 */
		e = db_exec(d, "SET SESSION innodb_ft_enable_stopword = OFF");
		if (e == BW_OK)
			e = db_exec(d, "CREATE FULLTEXT INDEX IF NOT EXISTS search_docs_body ON"
				       " search_docs (body)");
	}
	if (e != BW_OK) {
		snprintf(err, errlen, "creating the full-text index: %s", db_errmsg(d));
		return e;
	}
	/* The rows written before this migration. */
	for (size_t i = 0; i < module_catalog_count; i++) {
		const struct module_desc *m = module_catalog[i];
		char sql[160];
		int64_t last = 0;
		snprintf(sql, sizeof(sql), "SELECT id FROM %s WHERE id > ? ORDER BY id LIMIT 256",
			 m->name);
		for (;;) {
			int64_t ids[256];
			size_t k = 0;
			db_stmt *s;
			int row;
			if ((e = db_prepare(d, sql, &s)) == BW_OK && (e = db_bind_int(s, 1, last)) == BW_OK)
				while (k < BW_ARRAY_LEN(ids) && (e = db_step(s, &row)) == BW_OK && row)
					ids[k++] = db_col_int(s, 0);
			db_finalize(s);
			for (size_t j = 0; e == BW_OK && j < k; j++)
				e = fulltext_put(d, m, ids[j]);
			if (e != BW_OK) {
				snprintf(err, errlen, "indexing %s for search: %s", m->name, db_errmsg(d));
				return e;
			}
			if (k < BW_ARRAY_LEN(ids))
				break;
			last = ids[k - 1];
		}
	}
	return BW_OK;
}
