/*
 * The module engine's rows: reading (sealed fields opened with the row id
 * as AAD), writing (sealed once the row exists), and the operations of
 * module.h. SQL is assembled only from descriptor names (compiled-in
 * constants); every value is bound.
 *
 * A change runs in one transaction (op_tx): validation (references
 * included), the module's check hook, the write, the after_write hook and
 * the audit row. Any failure rolls all of it back.
 *
 * Every row has a version (optimistic concurrency, ETag and If-Match): 1
 * when it is made, one more with every UPDATE that writes it, whoever
 * makes it (module_write_fields, and the hooks' own statements). An
 * update, delete or action given the version its caller read checks it
 * once the row is locked, so no change made meanwhile is overwritten.
 */
#include "engine.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../audit/audit.h"
#include "../crypto/crypto.h"
#include "../search/index.h"

static struct engine_mod *engine_mods;
static pthread_once_t engine_once = PTHREAD_ONCE_INIT;

static void engine_build(void);

const struct engine_mod *
engine_mod_of(const struct module_desc *m)
{
	pthread_once(&engine_once, engine_build);
	for (size_t i = 0; i < module_catalog_count; i++)
		if (engine_mods[i].m == m)
			return &engine_mods[i];
	abort(); /* every descriptor is in the catalogue */
}

static int64_t
engine_now(void)
{
	return (int64_t)time(NULL);
}

/* A string that lives as long as the process (route patterns, permissions, SQL). */
char *
engine_strf(const char *fmt, ...)
{
	char *s;
	va_list ap;
	va_start(ap, fmt);
	int r = vasprintf(&s, fmt, ap);
	va_end(ap);
	return r < 0 ? NULL : s;
}

static void
engine_build(void)
{
	size_t i;
	engine_mods = calloc(module_catalog_count ? module_catalog_count : 1, sizeof(*engine_mods));
	if (engine_mods == NULL)
		goto oom;
	for (i = 0; i < module_catalog_count; i++) {
		const struct module_desc *m = module_catalog[i];
		struct engine_mod *em = &engine_mods[i];
		em->m = m;
		char *cols = strdup("id, version");
		for (size_t k = 0; cols != NULL && k < m->nfields; k++) {
			char *next = engine_strf("%s, %s", cols, m->fields[k].name);
			free(cols);
			cols = next;
		}
		if (cols == NULL)
			goto oom;
		em->select_cols = engine_strf("%s%s", cols,
					      ", created_at, updated_at, created_by, updated_by");
		free(cols);
		if (em->select_cols == NULL)
			goto oom;
		em->sql_read = engine_strf("SELECT %s FROM %s WHERE id = ?", em->select_cols, m->name);
		em->sql_lock = engine_strf("UPDATE %s SET id = id WHERE id = ?", m->name);
		em->sql_delete = engine_strf("DELETE FROM %s WHERE id = ?", m->name);
		em->sql_exists = engine_strf("SELECT 1 FROM %s WHERE id = ?", m->name);
		if (em->sql_read == NULL || em->sql_lock == NULL || em->sql_delete == NULL ||
		    em->sql_exists == NULL)
			goto oom;

	}
	return;
oom:
	/* At start-up, before anything is served: nothing sensible can go on. */
	log_error("out of memory building the module engine's statements");
	abort();
}

/* --- reading ------------------------------------------------------------- */

/* Read column col of s as the JSON value of field f (opening sealed ones). */
static bw_err
engine_column(struct op *op, const struct module_desc *m, const struct field_desc *f,
	      db_stmt *s, int col, int64_t id, json_t **out)
{
	*out = NULL;
	if (db_col_null(s, col)) {
		*out = json_null();
		return BW_OK;
	}
	if (f->flags & FF_ENCRYPTED) {
		/* Short values (most of them) open on the stack: no allocation per field. */
		unsigned char small[1024];
		size_t len;
		const unsigned char *b = db_col_blob(s, col, &len);
		struct seal_place pl = {op->tn.slug, m->name, f->name, id};
		bw_err e = BW_ERR_CRYPTO;
		unsigned char *plain = small;
		if (b != NULL && len >= SEAL_OVERHEAD) {
			if (len - SEAL_OVERHEAD > sizeof(small))
				plain = malloc(len - SEAL_OVERHEAD);
			e = plain == NULL ? BW_ERR_NOMEM
					  : keyring_open_sealed(tenancy_keyring(op->ten), &pl,
								b, len, plain);
		}
		if (e == BW_OK)
			*out = json_stringn((const char *)plain, len - SEAL_OVERHEAD);
		/* Wiped whatever happened: a failed open may have written some plaintext. */
		if (plain != NULL && b != NULL && len >= SEAL_OVERHEAD)
			crypto_wipe(plain, len - SEAL_OVERHEAD);
		if (plain != small)
			free(plain);
		if (e != BW_OK) {
			log_error("tenant %s: %s.%s row %lld does not open (%s)", op->tn.slug,
				  m->name, f->name, (long long)id, bw_strerror(e));
			return e == BW_ERR_NOMEM ? e : BW_ERR_CRYPTO;
		}
		return *out ? BW_OK : BW_ERR_NOMEM;
	}
	switch (f->type) {
	case FT_BOOL:
		*out = json_boolean(db_col_int(s, col) != 0);
		break;
	case FT_INT:
	case FT_MONEY:
	case FT_REF:
		*out = json_integer(db_col_int(s, col));
		break;
	default:
		*out = json_string(db_col_text(s, col));
		break;
	}
	return *out ? BW_OK : BW_ERR_NOMEM;
}

bw_err
engine_row(struct op *op, const struct module_desc *m, db_stmt *s, int secrets,
	   json_t **out)
{
	int64_t id = db_col_int(s, 0);
	json_t *o = json_object();
	*out = NULL;
	if (o == NULL)
		return BW_ERR_NOMEM;
	json_object_set_new_nocheck(o, "id", json_integer(id));
	json_object_set_new_nocheck(o, "version", json_integer(db_col_int(s, 1)));
	int col = 2;
	for (size_t k = 0; k < m->nfields; k++, col++) {
		const struct field_desc *f = &m->fields[k];
		if ((f->flags & FF_WRITEONLY) && !secrets) {
			char name[80];
			snprintf(name, sizeof(name), "%s_set", f->name);
			json_object_set_new_nocheck(o, name, json_boolean(!db_col_null(s, col)));
			continue;
		}
		json_t *v;
		bw_err e = engine_column(op, m, f, s, col, id, &v);
		if (e != BW_OK) {
			json_decref(o);
			return e;
		}
		json_object_set_new_nocheck(o, f->name, v);
	}
	static const char *const frame[] = {"created_at", "updated_at", "created_by", "updated_by"};
	for (size_t i = 0; i < BW_ARRAY_LEN(frame); i++, col++) {
		char t[UTIL_TIME_LEN];
		/* The times as RFC 3339 (the database keeps Unix seconds), the actors as ids. */
		json_object_set_new_nocheck(o, frame[i],
					    i < 2 ? json_string(util_time_rfc3339(db_col_int(s, col), t))
						  : json_integer(db_col_int(s, col)));
	}
	if (!secrets && m->present != NULL)
		m->present(m, o);
	*out = o;
	return BW_OK;
}

static bw_err
engine_read(struct op *op, const struct module_desc *m, int64_t id, int secrets,
	    json_t **out)
{
	const struct engine_mod *em = engine_mod_of(m);
	db *d = op->d;
	db_stmt *s;
	int row;
	*out = NULL;
	bw_err e = db_prepare_cached(d, em->sql_read, &s);
	if (e != BW_OK)
		return e;
	if ((e = db_bind_int(s, 1, id)) == BW_OK && (e = db_step(s, &row)) == BW_OK)
		e = row ? engine_row(op, m, s, secrets, out) : BW_ERR_NOTFOUND;
	db_done(s);
	return e;
}

/* The visible column names of m, in order. */
json_t *
engine_columns(const struct module_desc *m)
{
	static const char *const frame[] = {"created_at", "updated_at", "created_by", "updated_by"};
	json_t *cols = json_array();
	json_array_append_new(cols, json_string("id"));
	json_array_append_new(cols, json_string("version"));
	for (size_t k = 0; k < m->nfields; k++) {
		const struct field_desc *f = &m->fields[k];
		json_array_append_new(cols, (f->flags & FF_WRITEONLY) ? json_sprintf("%s_set", f->name)
								     : json_string(f->name));
	}
	for (size_t i = 0; i < BW_ARRAY_LEN(frame); i++)
		json_array_append_new(cols, json_string(frame[i]));
	return cols;
}

/* --- writing -------------------------------------------------------------- */

/* Bind v (validated for f) at idx; sealed fields are sealed for row id. */
static bw_err
engine_bind(struct op *op, db_stmt *s, int idx, const struct module_desc *m,
	    const struct field_desc *f, int64_t id, json_t *v)
{
	if (v == NULL || json_is_null(v))
		return db_bind_null(s, idx);
	if (f->flags & FF_ENCRYPTED) {
		const char *str = json_string_value(v);
		unsigned char *sealed;
		size_t len;
		if (str == NULL)
			return BW_ERR_INVALID;
		bw_err e = field_seal(op->ten, &op->tn, m->name, f->name, id, str,
				      json_string_length(v), &sealed, &len);
		if (e != BW_OK)
			return e;
		e = db_bind_blob(s, idx, sealed, len);
		free(sealed);
		return e;
	}
	switch (f->type) {
	case FT_BOOL:
		return db_bind_int(s, idx, json_is_true(v));
	case FT_INT:
	case FT_MONEY:
	case FT_REF:
		return db_bind_int(s, idx, json_integer_value(v));
	default:
		return db_bind_text(s, idx, json_string_value(v));
	}
}

bw_err
module_effect(struct module_ctx *ctx, const struct module_desc *m, int64_t id, json_t *before,
	      json_t *after)
{
	if (ctx->effects == NULL && (ctx->effects = json_array()) == NULL) {
		json_decref(before);
		json_decref(after);
		return BW_ERR_NOMEM;
	}
	json_t *o = json_pack("{s:s, s:I, s:o?, s:o?}", "entity", m->name, "entity_id",
			      (json_int_t)id, "before", before, "after", after);
	if (o == NULL || json_array_append_new(ctx->effects, o) != 0)
		return BW_ERR_NOMEM;
	return BW_OK;
}

/*
 * Write the given columns of row id; bump: one more on its version (every
 * change; not the sealed fields a new row gets right after its insert).
 */
static bw_err
engine_write(struct op *op, const struct module_desc *m, int64_t id, json_t *values, int bump)
{
	char *sql = pool_printf(op->pool, "UPDATE %s SET updated_at = ?, updated_by = ?%s", m->name,
				bump ? ", version = version + 1" : "");
	const char *key;
	json_t *v;
	if (sql == NULL)
		return BW_ERR_NOMEM;
	json_object_foreach(values, key, v)
	{
		const struct field_desc *f = module_field(m, key);
		if (f == NULL)
			return BW_ERR_INTERNAL; /* validated before: a hook's bug */
		if ((sql = pool_printf(op->pool, "%s, %s = ?", sql, f->name)) == NULL)
			return BW_ERR_NOMEM;
	}
	if ((sql = pool_printf(op->pool, "%s WHERE id = ?", sql)) == NULL)
		return BW_ERR_NOMEM;
	db_stmt *s;
	int row, idx = 3;
	bw_err e = db_prepare(op->d, sql, &s);
	if (e != BW_OK)
		return e;
	if ((e = db_bind_int(s, 1, engine_now())) != BW_OK ||
	    (e = db_bind_int(s, 2, op->actor.user.id)) != BW_OK)
		goto out;
	json_object_foreach(values, key, v)
	{
		if ((e = engine_bind(op, s, idx++, m, module_field(m, key), id, v)) != BW_OK)
			goto out;
	}
	if ((e = db_bind_int(s, idx, id)) == BW_OK && (e = db_step(s, &row)) == BW_OK &&
	    db_changes(s) != 1)
		e = BW_ERR_NOTFOUND;
out:
	db_finalize(s);
	return e == BW_OK ? search_index_fields(op, m, id, values) : e;
}

bw_err
module_write_fields(struct op *op, const struct module_desc *m, int64_t id, json_t *values)
{
	return engine_write(op, m, id, values, 1);
}

/* Insert the plain fields of a new row (version 1); sealed ones follow once the id is known. */
static bw_err
engine_insert(struct op *op, const struct module_desc *m, json_t *values, int64_t *id)
{
	char *cols = pool_strdup(op->pool, "version, created_at, updated_at, created_by, updated_by");
	char *qs = pool_strdup(op->pool, "1, ?, ?, ?, ?");
	const char *key;
	json_t *v;
	json_object_foreach(values, key, v)
	{
		const struct field_desc *f = module_field(m, key);
		if (f == NULL)
			return BW_ERR_INTERNAL;
		if ((f->flags & FF_ENCRYPTED) || cols == NULL || qs == NULL)
			continue;
		cols = pool_printf(op->pool, "%s, %s", cols, f->name);
		qs = pool_printf(op->pool, "%s, ?", qs);
	}
	char *sql = pool_printf(op->pool, "INSERT INTO %s (%s) VALUES (%s)", m->name, cols, qs);
	if (cols == NULL || qs == NULL || sql == NULL)
		return BW_ERR_NOMEM;
	db_stmt *s;
	int row, idx = 5;
	int64_t now = engine_now();
	bw_err e = db_prepare(op->d, sql, &s);
	if (e != BW_OK)
		return e;
	if ((e = db_bind_int(s, 1, now)) != BW_OK || (e = db_bind_int(s, 2, now)) != BW_OK ||
	    (e = db_bind_int(s, 3, op->actor.user.id)) != BW_OK ||
	    (e = db_bind_int(s, 4, op->actor.user.id)) != BW_OK)
		goto out;
	json_object_foreach(values, key, v)
	{
		const struct field_desc *f = module_field(m, key);
		if (f->flags & FF_ENCRYPTED)
			continue;
		if ((e = engine_bind(op, s, idx++, m, f, 0, v)) != BW_OK)
			goto out;
	}
	if ((e = db_step(s, &row)) == BW_OK)
		*id = db_last_id(s);
out:
	db_finalize(s);
	if (e != BW_OK)
		return e;
	/* Sealed fields, bound to the row id now that there is one. */
	json_t *sealed = json_object();
	if (sealed == NULL)
		return BW_ERR_NOMEM;
	json_object_foreach(values, key, v)
	{
		if ((module_field(m, key)->flags & FF_ENCRYPTED) && !json_is_null(v))
			json_object_set(sealed, key, v);
	}
	if (json_object_size(sealed) > 0)
		e = engine_write(op, m, *id, sealed, 0); /* still the row's first version */
	json_decref(sealed);
	return e == BW_OK ? search_index_created(op, m, *id) : e;
}

/* --- audit details -------------------------------------------------------- */

/*
 * The fields a change touched, before and after. Write-only values never
 * enter the audit log, not even sealed: only that they changed. BW_OK, or
 * BW_ERR_NOMEM with *b and *a NULL: a change is never audited with part of
 * its fields missing, nor taken for no change at all.
 */
static bw_err
engine_diff(const struct module_desc *m, json_t *before, json_t *after, json_t **b, json_t **a)
{
	const char *key;
	json_t *v;
	int bad = 0;
	*b = json_object();
	*a = json_object();
	bad = *b == NULL || *a == NULL;
	json_object_foreach(after, key, v)
	{
		if (bad)
			break;
		const struct field_desc *f = module_field(m, key);
		json_t *old = before ? json_object_get(before, key) : NULL;
		if (old != NULL && json_equal(old, v))
			continue;
		if (f != NULL && (f->flags & FF_WRITEONLY)) {
			if (before != NULL)
				bad |= json_object_set_new(*b, key,
							   json_string(old && !json_is_null(old)
									   ? "(set)"
									   : "(not set)")) != 0;
			bad |= json_object_set_new(*a, key,
						   json_string(json_is_null(v) ? "(not set)" : "(set)")) != 0;
			continue;
		}
		if (before != NULL)
			bad |= json_object_set(*b, key, old ? old : json_null()) != 0;
		bad |= json_object_set(*a, key, v) != 0;
	}
	if (!bad)
		return BW_OK;
	json_decref(*b);
	json_decref(*a);
	*b = *a = NULL;
	return BW_ERR_NOMEM;
}

/*
 * A whole row for the audit log, write-only values masked; NULL when out
 * of memory (never the row with a secret left in it).
 */
static json_t *
engine_masked(const struct module_desc *m, json_t *row)
{
	json_t *o = json_copy(row);
	for (size_t k = 0; o != NULL && k < m->nfields; k++)
		if ((m->fields[k].flags & FF_WRITEONLY) && json_object_get(o, m->fields[k].name) &&
		    json_object_set_new(o, m->fields[k].name, json_string("(set)")) != 0) {
			json_decref(o);
			return NULL;
		}
	return o;
}

bw_err
module_lock(db *d, const struct module_desc *m, int64_t id)
{
	db_stmt *s;
	int row;
	bw_err e = db_prepare_cached(d, engine_mod_of(m)->sql_lock, &s);
	if (e != BW_OK)
		return e;
	if ((e = db_bind_int(s, 1, id)) == BW_OK && (e = db_step(s, &row)) == BW_OK &&
	    db_changes(s) != 1)
		e = BW_ERR_NOTFOUND;
	db_done(s);
	return e;
}

/* module_lock() with the 404 reply for a row that is not there. */
static bw_err
engine_lock(struct op *op, const struct module_desc *m, int64_t id)
{
	bw_err e = module_lock(op->d, m, id);
	return e == BW_ERR_NOTFOUND ? op_fail(op, e, "no such record") : e;
}

/*
 * The caller's precondition against the locked row as stored (row: read
 * after engine_lock): BW_OK when there is none (if_version 0) or the row
 * is at that version, else BW_ERR_PRECONDITION (recorded) before anything
 * is written.
 */
static bw_err
engine_precondition(struct op *op, json_t *row, int64_t if_version)
{
	json_t *v = json_object_get(row, "version");
	if (if_version == 0)
		return BW_OK;
	if (!json_is_integer(v))
		return op_fail(op, BW_ERR_INTERNAL, NULL);
	if ((int64_t)json_integer_value(v) == if_version)
		return BW_OK;
	return op_fail(op, BW_ERR_PRECONDITION,
		       pool_printf(op->pool,
				   "this record has changed since it was read (it is now at version"
				   " %lld): read it again, then retry",
				   (long long)json_integer_value(v)));
}

bw_err
module_referenced(struct op *op, const char *table, int64_t id)
{
	for (size_t i = 0; i < module_catalog_count; i++) {
		const struct module_desc *o = module_catalog[i];
		for (size_t k = 0; k < o->nfields; k++) {
			const struct field_desc *f = &o->fields[k];
			if (f->type != FT_REF || strcmp(f->ref, table) != 0)
				continue;
			char sql[200];
			db_stmt *s;
			int row = 0;
			snprintf(sql, sizeof(sql), "SELECT 1 FROM %s WHERE %s = ? LIMIT 1", o->name,
				 f->name);
			bw_err e = db_prepare(op->d, sql, &s);
			if (e != BW_OK)
				return e;
			if ((e = db_bind_int(s, 1, id)) == BW_OK)
				e = db_step(s, &row);
			db_finalize(s);
			if (e != BW_OK)
				return e;
			if (row)
				return op_fail(
				    op, BW_ERR_CONFLICT,
				    pool_printf(op->pool,
						"this record is still referred to by %s (%s): remove "
						"or reassign those first",
						o->name, f->name));
		}
	}
	return BW_OK;
}

/* --- the operations ----------------------------------------------------------- */

/* One operation's arguments and result, for op_tx (which may run it again). */
struct engine_run {
	const struct module_desc *m;
	const struct action_desc *a;
	int64_t id;
	int64_t if_version; /* the version the caller read, or 0 */
	json_t *in;    /* borrowed: the body */
	json_t *out;   /* the row shown, or the action's reply; set once the run succeeds */
};

/* A run starts afresh: what a failed run before it left is dropped. */
static void
engine_run_reset(struct engine_run *r)
{
	json_decref(r->out);
	r->out = NULL;
}

/* The end of a run: on success out is its result, else it is dropped. */
static bw_err
engine_run_keep(struct engine_run *r, bw_err e, json_t *out)
{
	if (e != BW_OK) {
		json_decref(out);
		return e;
	}
	r->out = out;
	return BW_OK;
}

static bw_err
engine_run(struct op *op, op_tx_fn fn, struct engine_run *r, json_t **out)
{
	if (out != NULL)
		*out = NULL;
	bw_err e = op_tx(op, fn, r);
	if (e != BW_OK || out == NULL) {
		json_decref(r->out);
		return e;
	}
	*out = r->out;
	return BW_OK;
}

bw_err
module_get(struct op *op, const struct module_desc *m, int64_t id, json_t **row)
{
	db *d;
	*row = NULL;
	bw_err e = op_db(op, &d);
	if (e != BW_OK)
		return e;
	e = engine_read(op, m, id, 0, row);
	if (e == BW_ERR_NOTFOUND)
		return op_fail(op, e, "no such record");
	return e;
}

static bw_err
engine_create_tx(struct op *op, void *arg)
{
	struct engine_run *r = arg;
	const struct module_desc *m = r->m;
	struct module_ctx ctx = {op, op->d, m, 0, NULL, NULL, NULL};
	json_t *input = NULL, *row = NULL, *after = NULL;
	int64_t id = 0;
	bw_err e;
	engine_run_reset(r);
	if ((e = engine_validate(op, op->d, m, r->in, 1, &input)) == BW_OK &&
	    (e = engine_check_same(op, op->d, m, input, NULL)) == BW_OK) {
		ctx.input = input;
		if (m->check != NULL)
			e = m->check(&ctx);
	}
	if (e == BW_OK && (e = engine_insert(op, m, input, &id)) == BW_OK) {
		ctx.id = id;
		if (m->after_write != NULL)
			e = m->after_write(&ctx);
	}
	if (e == BW_OK && (e = engine_read(op, m, id, 0, &row)) == BW_OK)
		e = (after = engine_masked(m, input)) == NULL
			? BW_ERR_NOMEM
			: audit_op_object(op, m->name, id, "create", NULL, after, ctx.effects, row);
	json_decref(ctx.effects);
	json_decref(input);
	json_decref(after);
	return engine_run_keep(r, e, row);
}

bw_err
module_create(struct op *op, const struct module_desc *m, json_t *in, json_t **row)
{
	struct engine_run r = {.m = m, .in = in};
	return engine_run(op, engine_create_tx, &r, row);
}

static bw_err
engine_update_tx(struct op *op, void *arg)
{
	struct engine_run *r = arg;
	const struct module_desc *m = r->m;
	int64_t id = r->id;
	struct module_ctx ctx = {op, op->d, m, id, NULL, NULL, NULL};
	json_t *input = NULL, *before = NULL, *row = NULL, *b = NULL, *a = NULL;
	bw_err e;
	engine_run_reset(r);
	if ((e = engine_lock(op, m, id)) == BW_OK &&
	    (e = engine_read(op, m, id, 1, &before)) == BW_OK &&
	    (e = engine_precondition(op, before, r->if_version)) == BW_OK &&
	    (e = engine_validate(op, op->d, m, r->in, 0, &input)) == BW_OK &&
	    (e = engine_check_same(op, op->d, m, input, before)) == BW_OK) {
		ctx.before = before;
		ctx.input = input;
		if (m->check != NULL)
			e = m->check(&ctx);
	}
	/* An update that changes nothing is not a change: nothing written, no audit row. */
	if (e == BW_OK)
		e = engine_diff(m, before, input, &b, &a);
	if (e == BW_OK && json_object_size(a) > 0) {
		if ((e = module_write_fields(op, m, id, input)) == BW_OK && m->after_write != NULL)
			e = m->after_write(&ctx);
		if (e == BW_OK && (e = engine_read(op, m, id, 0, &row)) == BW_OK)
			e = audit_op_object(op, m->name, id, "update", b, a, ctx.effects, row);
	} else if (e == BW_OK)
		e = engine_read(op, m, id, 0, &row);
	json_decref(ctx.effects);
	json_decref(input);
	json_decref(before);
	json_decref(b);
	json_decref(a);
	return engine_run_keep(r, e, row);
}

bw_err
module_update(struct op *op, const struct module_desc *m, int64_t id, json_t *in,
	      int64_t if_version, json_t **row)
{
	struct engine_run r = {.m = m, .id = id, .if_version = if_version, .in = in};
	return engine_run(op, engine_update_tx, &r, row);
}

/* A row with attachments (or an upload under way) is not deleted from under them: 409. */
static bw_err
engine_attachments(struct op *op, const struct module_desc *m, int64_t id)
{
	int64_t n = 0;
	if (!m->attachments)
		return BW_OK;
	bw_err e = DB_QUERY_INT(op->d, &n, "SELECT COUNT(*) FROM files WHERE module = ? AND row_id = ?",
				DB_TEXT(m->name), DB_INT(id));
	if (e != BW_OK)
		return e;
	return n == 0 ? BW_OK
		      : op_fail(op, BW_ERR_CONFLICT,
				pool_printf(op->pool,
					    "this record has %lld attachment(s): delete them first",
					    (long long)n));
}

static bw_err
engine_delete_tx(struct op *op, void *arg)
{
	struct engine_run *r = arg;
	const struct module_desc *m = r->m;
	int64_t id = r->id;
	struct module_ctx ctx = {op, op->d, m, id, NULL, NULL, NULL};
	json_t *before = NULL, *masked = NULL;
	db_stmt *s;
	int row;
	bw_err e;
	if ((e = engine_lock(op, m, id)) == BW_OK &&
	    (e = engine_read(op, m, id, 1, &before)) == BW_OK &&
	    (e = engine_precondition(op, before, r->if_version)) == BW_OK &&
	    (e = module_referenced(op, m->name, id)) == BW_OK &&
	    (e = engine_attachments(op, m, id)) == BW_OK) {
		ctx.before = before;
		if (m->can_delete != NULL)
			e = m->can_delete(&ctx);
	}
	if (e == BW_OK &&
	    (e = db_prepare_cached(op->d, engine_mod_of(m)->sql_delete, &s)) == BW_OK) {
		if ((e = db_bind_int(s, 1, id)) == BW_OK)
			e = db_step(s, &row);
		db_done(s);
	}
	if (e == BW_OK)
		e = search_index_deleted(op, m, id);
	if (e == BW_OK && m->after_write != NULL)
		e = m->after_write(&ctx);
	if (e == BW_OK)
		e = (masked = engine_masked(m, before)) == NULL
			? BW_ERR_NOMEM
			: audit_op_effects(op, m->name, id, "delete", masked, NULL, ctx.effects);
	json_decref(ctx.effects);
	json_decref(before);
	json_decref(masked);
	return e;
}

bw_err
module_delete(struct op *op, const struct module_desc *m, int64_t id, int64_t if_version)
{
	struct engine_run r = {.m = m, .id = id, .if_version = if_version};
	return engine_run(op, engine_delete_tx, &r, NULL);
}

const struct action_desc *
module_action(const struct module_desc *m, const char *name)
{
	for (size_t i = 0; i < m->nactions; i++)
		if (strcmp(m->actions[i].name, name) == 0)
			return &m->actions[i];
	return NULL;
}

static bw_err
engine_act_tx(struct op *op, void *arg)
{
	struct engine_run *r = arg;
	const struct module_desc *m = r->m;
	int64_t id = r->id;
	struct module_ctx ctx = {op, op->d, m, id, NULL, NULL, NULL};
	json_t *before = NULL, *after = NULL, *reply = NULL, *b = NULL, *c = NULL;
	bw_err e;
	engine_run_reset(r);
	if ((e = engine_lock(op, m, id)) == BW_OK &&
	    (e = engine_read(op, m, id, 1, &before)) == BW_OK &&
	    (e = engine_precondition(op, before, r->if_version)) == BW_OK) {
		ctx.before = before;
		e = r->a->run(&ctx, r->in, &reply);
	}
	if (e == BW_OK && (e = engine_read(op, m, id, 1, &after)) == BW_OK &&
	    (e = engine_diff(m, before, after, &b, &c)) == BW_OK) {
		json_object_del(b, "updated_at");
		json_object_del(c, "updated_at");
		json_object_del(b, "updated_by");
		json_object_del(c, "updated_by");
		json_object_del(b, "version");
		json_object_del(c, "version");
		json_t *row = NULL;
		if ((e = engine_read(op, m, id, 0, &row)) == BW_OK)
			e = audit_op_object(op, m->name, id, r->a->name, b, c, ctx.effects, row);
		if (e == BW_OK && reply == NULL)
			reply = json_incref(row);
		json_decref(row);
	}
	json_decref(ctx.effects);
	json_decref(before);
	json_decref(after);
	json_decref(b);
	json_decref(c);
	return engine_run_keep(r, e, reply);
}

bw_err
module_act(struct op *op, const struct module_desc *m, const struct action_desc *a, int64_t id,
	   json_t *body, int64_t if_version, json_t **reply)
{
	struct engine_run r = {.m = m, .a = a, .id = id, .if_version = if_version, .in = body};
	return engine_run(op, engine_act_tx, &r, reply);
}
