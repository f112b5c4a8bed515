/*
 * The search operation (see search.h). The modules looked in are decided
 * first, from the actor's permissions; every query below names only
 * those, so neither a cursor nor a module list can widen what is seen.
 * Module and field names in SQL are compiled-in; every value is bound.
 */
#include "search.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistr.h>

#include "../modules/desc.h"
#include "../rbac/rbac.h"
#include "blind.h"
#include "fulltext.h"

struct search_hit {
	const struct module_desc *m;
	int64_t id;
};

struct search_run {
	const struct module_desc *mods[64]; /* the modules looked in, catalogue order */
	size_t nmods;
	struct search_hit exact[SEARCH_EXACT_MAX];
	int64_t exact_doc[SEARCH_EXACT_MAX]; /* their documents (0: none), left out of text hits */
	const char *exact_label[SEARCH_EXACT_MAX];
	size_t nexact;
};

/* The modules named (all when list is NULL) that op's actor may view, into r->mods. */
static bw_err
search_modules(struct op *op, const char *list, struct search_run *r)
{
	int want[64] = {0};
	if (module_catalog_count > BW_ARRAY_LEN(r->mods))
		return BW_ERR_INTERNAL;
	if (list != NULL) {
		const char *p = list;
		for (;;) {
			const char *c = strchr(p, ',');
			size_t n = c ? (size_t)(c - p) : strlen(p);
			size_t i;
			for (i = 0; i < module_catalog_count; i++)
				if (strlen(module_catalog[i]->name) == n &&
				    strncmp(module_catalog[i]->name, p, n) == 0)
					break;
			if (i == module_catalog_count)
				return op_fail(op, BW_ERR_INVALID,
					       pool_printf(op->pool,
							   "query parameter 'modules': '%.*s' is not a module",
							   (int)(n > 64 ? 64 : n), p));
			want[i] = 1;
			if (c == NULL)
				break;
			p = c + 1;
		}
	}
	r->nmods = 0;
	for (size_t i = 0; i < module_catalog_count; i++) {
		if (list != NULL && !want[i])
			continue;
		const char *perm = pool_printf(op->pool, "%s.view", module_catalog[i]->name);
		if (perm == NULL)
			return BW_ERR_NOMEM;
		int ok = may(op, perm);
		if (ok < 0)
			return op_unavailable(op);
		if (ok == 1)
			r->mods[r->nmods++] = module_catalog[i];
	}
	return BW_OK;
}

/* Looks like a telephone number: digits and + - ( ) . / spaces only, three digits or more. */
static int
search_phone_shape(const char *q)
{
	size_t digits = 0;
	for (const char *p = q; *p; p++) {
		if (*p >= '0' && *p <= '9')
			digits++;
		else if (!strchr(" +-()./", *p))
			return 0;
	}
	return digits >= 3;
}

/* Whether q is worth looking up in the blind index of field f. */
static int
search_exact_shape(const struct field_desc *f, const char *q)
{
	switch (blind_kind_of(f)) {
	case BLIND_EMAIL:
		return strchr(q, '@') != NULL;
	case BLIND_PHONE:
		return search_phone_shape(q);
	case BLIND_TEXT:
		return 1;
	}
	return 0;
}

static int
search_cmp_id(const void *a, const void *b)
{
	int64_t x = ((const struct search_hit *)a)->id, y = ((const struct search_hit *)b)->id;
	return (x > y) - (x < y);
}

/* Exact hits through the blind indexes of the modules looked in, with their labels. */
static bw_err
search_exact(struct op *op, const char *q, struct search_run *r)
{
	struct keyring *kr = tenancy_keyring(op->ten);
	int64_t ids[BLIND_MATCHES_MAX];
	bw_err e;
	r->nexact = 0;
	for (size_t i = 0; i < r->nmods; i++) {
		const struct module_desc *m = r->mods[i];
		size_t first = r->nexact;
		for (size_t k = 0; k < m->nfields; k++) {
			const struct field_desc *f = &m->fields[k];
			size_t n;
			if (blind_field(m->name, f->name) != f || !search_exact_shape(f, q))
				continue;
			if ((e = blind_lookup(op->d, kr, op->tn.slug, m, f, q, ids, &n)) != BW_OK)
				return e == BW_ERR_CRYPTO
					   ? op_fail(op, e, "the search index cannot be read; try again")
					   : e;
			for (size_t j = 0; j < n && r->nexact < SEARCH_EXACT_MAX; j++)
				r->exact[r->nexact++] = (struct search_hit){m, ids[j]};
		}
		/* One module's hits by id, each once (a row may match in two fields). */
		size_t cnt = r->nexact - first, kept = 0;
		qsort(r->exact + first, cnt, sizeof(r->exact[0]), search_cmp_id);
		for (size_t j = 0; j < cnt; j++)
			if (kept == 0 || r->exact[first + j].id != r->exact[first + kept - 1].id)
				r->exact[first + kept++] = r->exact[first + j];
		r->nexact = first + kept;
	}
	for (size_t i = 0; i < r->nexact; i++) {
		db_stmt *s;
		int row = 0;
		r->exact_doc[i] = 0;
		r->exact_label[i] = NULL;
		if ((e = db_prepare_cached(op->d,
					   "SELECT id, label FROM search_docs WHERE entity = ? AND"
					   " row_id = ?",
					   &s)) != BW_OK)
			return e;
		if ((e = DB_BIND(s, DB_TEXT(r->exact[i].m->name), DB_INT(r->exact[i].id))) == BW_OK &&
		    (e = db_step(s, &row)) == BW_OK && row) {
			r->exact_doc[i] = db_col_int(s, 0);
			r->exact_label[i] = pool_strdup(op->pool, db_col_text(s, 1));
		}
		db_done(s);
		if (e != BW_OK)
			return e;
		if (r->exact_label[i] == NULL)
			r->exact_label[i] = pool_printf(op->pool, "%s %lld", r->exact[i].m->label,
							(long long)r->exact[i].id);
		if (r->exact_label[i] == NULL)
			return BW_ERR_NOMEM;
	}
	return BW_OK;
}

/* The WHERE clause of text hits (after "FROM search_docs d"), placeholders only. */
static char *
search_text_where(struct op *op, const struct search_run *r)
{
	char *w = pool_printf(op->pool, " WHERE %s AND d.entity IN (?", fulltext_condition(op->d));
	for (size_t i = 1; w != NULL && i < r->nmods; i++)
		w = pool_printf(op->pool, "%s, ?", w);
	if (w != NULL)
		w = pool_printf(op->pool, "%s)", w);
	size_t ndocs = 0;
	for (size_t i = 0; w != NULL && i < r->nexact; i++)
		if (r->exact_doc[i] != 0)
			w = pool_printf(op->pool, "%s%s", w, ndocs++ ? ", ?" : " AND d.id NOT IN (?");
	if (w != NULL && ndocs > 0)
		w = pool_printf(op->pool, "%s)", w);
	return w;
}

/* Bind the parameters of search_text_where from index 1; the next index into *next. */
static bw_err
search_text_bind(db_stmt *s, const struct search_run *r, const char *fq, int *next)
{
	int idx = 1;
	bw_err e = db_bind_text(s, idx++, fq);
	for (size_t i = 0; e == BW_OK && i < r->nmods; i++)
		e = db_bind_text(s, idx++, r->mods[i]->name);
	for (size_t i = 0; e == BW_OK && i < r->nexact; i++)
		if (r->exact_doc[i] != 0)
			e = db_bind_int(s, idx++, r->exact_doc[i]);
	*next = idx;
	return e;
}

static json_t *
search_hit_json(const char *module, int64_t id, const char *label, const char *match)
{
	json_t *l = json_string(label);
	return json_pack("{s:s, s:I, s:o, s:s}", "module", module, "id", (json_int_t)id, "label",
			 l ? l : json_string(""), "match", match);
}

/* Up to want text hits after document id after into data; *last the last one's id, *more if others follow. */
static bw_err
search_text_page(struct op *op, const struct search_run *r, const char *fq, const char *where,
		 int64_t after, long want, json_t *data, int64_t *last, int *more)
{
	const char *sql = pool_printf(op->pool,
				      "SELECT d.id, d.entity, d.row_id, d.label FROM search_docs d%s"
				      " AND d.id > ? ORDER BY d.id LIMIT ?",
				      where);
	db_stmt *s;
	int row, idx;
	long got = 0;
	*more = 0;
	if (sql == NULL)
		return BW_ERR_NOMEM;
	bw_err e = db_prepare(op->d, sql, &s);
	if (e != BW_OK)
		return e;
	if ((e = search_text_bind(s, r, fq, &idx)) == BW_OK &&
	    (e = db_bind_int(s, idx, after)) == BW_OK && (e = db_bind_int(s, idx + 1, want + 1)) == BW_OK)
		while ((e = db_step(s, &row)) == BW_OK && row) {
			if (got == want) {
				*more = 1;
				break;
			}
			const struct module_desc *m = module_find(db_col_text(s, 1));
			json_t *h = m ? search_hit_json(m->name, db_col_int(s, 2), db_col_text(s, 3), "text")
				      : NULL;
			if (m == NULL || h == NULL || json_array_append_new(data, h) != 0) {
				e = m == NULL ? BW_ERR_INTERNAL : BW_ERR_NOMEM;
				break;
			}
			*last = db_col_int(s, 0);
			got++;
		}
	db_finalize(s);
	return e;
}

static bw_err
search_text_count(struct op *op, const struct search_run *r, const char *fq, const char *where,
		  int64_t *n)
{
	const char *sql = pool_printf(op->pool, "SELECT COUNT(*) FROM search_docs d%s", where);
	db_stmt *s;
	int row = 0, idx;
	*n = 0;
	if (sql == NULL)
		return BW_ERR_NOMEM;
	bw_err e = db_prepare(op->d, sql, &s);
	if (e != BW_OK)
		return e;
	if ((e = search_text_bind(s, r, fq, &idx)) == BW_OK && (e = db_step(s, &row)) == BW_OK && row)
		*n = db_col_int(s, 0);
	db_finalize(s);
	return e;
}

/* "e.N": N exact hits were shown; "t.N": every exact hit and the text hits up to document N. */
static bw_err
search_cursor(struct op *op, const char *c, int *text, int64_t *pos)
{
	long v;
	*text = 0;
	*pos = 0;
	if (c == NULL)
		return BW_OK;
	if (strlen(c) <= SEARCH_CURSOR_MAX && (c[0] == 'e' || c[0] == 't') && c[1] == '.' &&
	    c[2] >= '0' && c[2] <= '9' &&
	    util_parse_long(c + 2, 0, c[0] == 'e' ? SEARCH_EXACT_MAX : INT64_MAX, &v) == BW_OK) {
		*text = c[0] == 't';
		*pos = v;
		return BW_OK;
	}
	return op_fail(op, BW_ERR_INVALID, "query parameter 'cursor' is not one this search gave");
}

bw_err
search_run(struct op *op, const struct search_query *sq, struct search_result *res)
{
	struct search_run *r = NULL;
	json_t *data = NULL;
	char *fq = NULL;
	const char *q = sq->q;
	const char *where = NULL;
	int text_phase;
	int64_t pos, ntext = 0, after = 0, last = 0;
	long room = sq->limit;
	db *d;
	bw_err e;

	memset(res, 0, sizeof(*res));
	if (sq->limit < 1 || sq->limit > SEARCH_LIMIT_MAX)
		return op_fail(op, BW_ERR_INVALID, "query parameter 'limit' must be 1 to 100");
	if ((e = search_cursor(op, sq->cursor, &text_phase, &pos)) != BW_OK)
		return e;
	while (q != NULL && (*q == ' ' || *q == '\t'))
		q++;
	if (q == NULL || q[0] == '\0') {
		/* Nothing asked, nothing found: a cleared search box is no error. */
		if ((res->data = json_array()) == NULL)
			return BW_ERR_NOMEM;
		return BW_OK;
	}
	if (strlen(q) > SEARCH_Q_MAX || u8_check((const uint8_t *)q, strlen(q)) != NULL)
		return op_fail(op, BW_ERR_INVALID,
			       pool_printf(op->pool,
					   "query parameter 'q' must be UTF-8 text of at most %d bytes",
					   SEARCH_Q_MAX));
	if ((r = calloc(1, sizeof(*r))) == NULL || (data = json_array()) == NULL) {
		e = BW_ERR_NOMEM;
		goto out;
	}
	if ((e = search_modules(op, sq->modules, r)) != BW_OK)
		goto out;
	if (r->nmods == 0)
		goto done; /* nothing this caller may see: no query at all */
	if ((e = op_db(op, &d)) != BW_OK)
		goto out;
	if ((e = search_exact(op, q, r)) != BW_OK || (e = fulltext_query(op->d, q, &fq)) != BW_OK)
		goto out;
	if (fq != NULL && (where = search_text_where(op, r)) == NULL) {
		e = BW_ERR_NOMEM;
		goto out;
	}
	if (fq != NULL && (e = search_text_count(op, r, fq, where, &ntext)) != BW_OK)
		goto out;
	res->total = (int64_t)r->nexact + ntext;

	if (!text_phase) {
		size_t i = (size_t)pos;
		for (; i < r->nexact && room > 0; i++, room--) {
			json_t *h = search_hit_json(r->exact[i].m->name, r->exact[i].id, r->exact_label[i],
						    "exact");
			if (h == NULL || json_array_append_new(data, h) != 0) {
				e = BW_ERR_NOMEM;
				goto out;
			}
		}
		if (i < r->nexact) {
			res->has_more = 1;
			res->next_cursor = pool_printf(op->pool, "e.%zu", i);
			goto done;
		}
	} else {
		after = pos;
	}
	if (fq != NULL && room > 0) {
		if ((e = search_text_page(op, r, fq, where, after, room, data, &last, &res->has_more)) !=
		    BW_OK)
			goto out;
		if (res->has_more)
			res->next_cursor = pool_printf(op->pool, "t.%lld", (long long)last);
	} else if (fq != NULL && !text_phase && ntext > 0) {
		/* The page ended with the last exact hit; text hits follow. */
		res->has_more = 1;
		res->next_cursor = "t.0";
	}
done:
	res->data = data;
	data = NULL;
	e = BW_OK;
out:
	json_decref(data);
	free(fq);
	free(r);
	return e;
}
