/*
 * A row as JSON written straight into the reply (src/core/jsonw.c), for
 * lists: the same object engine_row() builds (rows.c; the format of
 * docs/api conventions: "id", "version" when the table has it, the fields
 * in descriptor order, write-only ones as "<name>_set", the timestamps as
 * RFC 3339 UTC strings, "created_by", "updated_by"), without a jansson tree
 * and without an allocation per field: sealed fields open into the buffer
 * itself, where the reply's bytes go anyway.
 *
 * Modules that add members to a row they show (a present hook) are written
 * through engine_row() and jansson: their output is the hook's to define.
 */
#include "engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/jsonw.h"
#include "../crypto/crypto.h"

/* 1 when m's rows are selected with a version column right after id. */
static int
rowjson_has_version(const struct engine_mod *em)
{
	return strncmp(em->select_cols, "id, version,", 12) == 0;
}

/*
 * Unix seconds as "YYYY-MM-DDTHH:MM:SSZ" (proleptic Gregorian, UTC);
 * BW_ERR_INVALID outside years 0000..9999. Days to a civil date by Howard
 * Hinnant's algorithm: gmtime_r and strftime were a tenth of a list.
 */
static bw_err
rowjson_time(int64_t t, char out[32])
{
	/* 0000-01-01 and 9999-12-31T23:59:59 */
	if (t < -62167219200LL || t > 253402300799LL)
		return BW_ERR_INVALID;
	int64_t days = t >= 0 ? t / 86400 : -((-t + 86399) / 86400);
	int64_t sec = t - days * 86400;
	int64_t z = days + 719468, era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t y = yoe + era * 400, doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153, d = doy - (153 * mp + 2) / 5 + 1;
	int64_t mo = mp < 10 ? mp + 3 : mp - 9;
	y += mo <= 2;
	int v[6] = {(int)y, (int)mo, (int)d, (int)(sec / 3600), (int)(sec / 60 % 60), (int)(sec % 60)};
	char *p = out;
	p[0] = (char)('0' + v[0] / 1000), p[1] = (char)('0' + v[0] / 100 % 10);
	p[2] = (char)('0' + v[0] / 10 % 10), p[3] = (char)('0' + v[0] % 10);
	p += 4;
	static const char sep[] = "--T::Z";
	for (int i = 1; i < 6; i++) {
		*p++ = sep[i - 1];
		*p++ = (char)('0' + v[i] / 10);
		*p++ = (char)('0' + v[i] % 10);
	}
	*p++ = 'Z';
	*p = '\0';
	return BW_OK;
}

/* A sealed column, opened into the reply. */
static bw_err
rowjson_sealed(struct op *op, const struct module_desc *m, const struct field_desc *f,
	       db_stmt *s, int col, int64_t id, struct jsonw *w)
{
	size_t len;
	const unsigned char *b = db_col_blob(s, col, &len);
	struct seal_place pl = {op->tn.slug, m->name, f->name, id};
	unsigned char *plain;
	bw_err e = BW_ERR_CRYPTO;
	if (b == NULL || len < SEAL_OVERHEAD) {
		log_error("tenant %s: %s.%s row %lld does not open (%s)", op->tn.slug, m->name,
			  f->name, (long long)id, "not a sealed value");
		return BW_ERR_CRYPTO;
	}
	jsonw_string_begin(w, len - SEAL_OVERHEAD, &plain);
	if (plain == NULL)
		return jsonw_error(w);
	e = keyring_open_sealed(tenancy_keyring(op->ten), &pl, b, len, plain);
	if (e != BW_OK) {
		/* wipes whatever a failed open may have written */
		jsonw_string_abort(w, e == BW_ERR_NOMEM ? e : BW_ERR_CRYPTO);
		log_error("tenant %s: %s.%s row %lld does not open (%s)", op->tn.slug, m->name,
			  f->name, (long long)id, bw_strerror(e));
		return jsonw_error(w);
	}
	jsonw_string_end(w);
	return jsonw_error(w);
}

/* The row through engine_row() and jansson (modules with a present hook). */
static bw_err
rowjson_tree(struct op *op, const struct module_desc *m, db_stmt *s, struct jsonw *w)
{
	json_t *o;
	bw_err e = engine_row(op, m, s, 0, &o);
	if (e != BW_OK)
		return e;
	char *text = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (text == NULL)
		return BW_ERR_NOMEM;
	size_t n = strlen(text);
	jsonw_raw(w, text, n);
	crypto_wipe(text, n); /* it holds the row's opened sealed fields */
	free(text);
	return jsonw_error(w);
}

bw_err
engine_row_jsonw(struct op *op, const struct module_desc *m, db_stmt *s, struct jsonw *w)
{
	static const char *const frame[] = {"created_at", "updated_at", "created_by", "updated_by"};
	const struct engine_mod *em = engine_mod_of(m);
	if (jsonw_error(w) != BW_OK)
		return jsonw_error(w);
	if (m->present != NULL)
		return rowjson_tree(op, m, s, w);
	int64_t id = db_col_int(s, 0);
	int col = 1;
	jsonw_object_open(w);
	jsonw_key(w, "id");
	jsonw_int(w, id);
	if (rowjson_has_version(em)) {
		jsonw_key(w, "version");
		jsonw_int(w, db_col_int(s, col++));
	}
	for (size_t k = 0; k < m->nfields; k++, col++) {
		const struct field_desc *f = &m->fields[k];
		if (f->flags & FF_WRITEONLY) {
			char name[80];
			snprintf(name, sizeof(name), "%s_set", f->name);
			jsonw_key(w, name);
			jsonw_bool(w, !db_col_null(s, col));
			continue;
		}
		jsonw_key(w, f->name);
		if (db_col_null(s, col)) {
			jsonw_null(w);
			continue;
		}
		if (f->flags & FF_ENCRYPTED) {
			bw_err e = rowjson_sealed(op, m, f, s, col, id, w);
			if (e != BW_OK)
				return e;
			continue;
		}
		switch (f->type) {
		case FT_BOOL:
			jsonw_bool(w, db_col_int(s, col) != 0);
			break;
		case FT_INT:
		case FT_MONEY:
		case FT_REF:
			jsonw_int(w, db_col_int(s, col));
			break;
		default:
			jsonw_cstring(w, db_col_text(s, col));
			break;
		}
	}
	for (size_t i = 0; i < BW_ARRAY_LEN(frame); i++, col++) {
		jsonw_key(w, frame[i]);
		if (i < 2) {
			char t[32];
			bw_err e = rowjson_time(db_col_int(s, col), t);
			if (e != BW_OK)
				return e;
			jsonw_cstring(w, t);
		} else {
			jsonw_int(w, db_col_int(s, col));
		}
	}
	jsonw_object_close(w);
	return jsonw_error(w);
}

bw_err
engine_row_write(struct op *op, const struct module_desc *m, db_stmt *s, struct buf *b)
{
	struct jsonw w;
	jsonw_init(&w, b);
	bw_err e = engine_row_jsonw(op, m, s, &w);
	if (e != BW_OK)
		return e;
	return jsonw_finish(&w);
}
