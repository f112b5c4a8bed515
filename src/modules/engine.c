/*
 * The module engine: one set of handlers serves every module. The route's
 * descriptor (route->data) says which table, which fields, which are
 * sealed, which may be sorted or filtered and which hooks run. SQL is
 * assembled only from descriptor names (compiled-in constants); every
 * value is bound.
 *
 * A change runs in one transaction: validation (references included),
 * the module's check hook, the write (sealed fields sealed with the row id
 * as AAD, so they are written once the row exists), the after_write hook
 * and the audit row. Any failure rolls all of it back.
 */
#include "module.h"

#include <ctype.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../audit/audit.h"
#include "../crypto/crypto.h"
#include "../rbac/rbac.h"

#define ENGINE_PAGE_DEFAULT 25
#define ENGINE_PAGE_MAX 100
#define ENGINE_EXPORT_MAX 100000
#define ENGINE_EXPORT_BYTES ((size_t)64 * 1024 * 1024)
#define ENGINE_MONEY_MAX 10000000000000LL /* 10^13 cents */

/* Per module, built once: the SQL that does not depend on input. */
struct engine_mod {
	const struct module_desc *m;
	char *select_cols; /* "id, a, b, ..., created_at, updated_at, created_by, updated_by" */
	char *sql_read;    /* SELECT <cols> FROM m WHERE id = ? */
	char *sql_lock;    /* UPDATE m SET id = id WHERE id = ?: row lock and existence */
	char *sql_delete;
	char *sql_exists; /* SELECT 1 FROM m WHERE id = ?: references to m are checked with it */
};

static const char engine_users_exists[] = "SELECT 1 FROM users WHERE id = ?";

static struct engine_mod *engine_mods;
static struct route *engine_routes;
static size_t engine_nroutes;
static bw_err engine_init_err = BW_OK;
static pthread_once_t engine_once = PTHREAD_ONCE_INIT;

static void engine_build(void);

static const struct engine_mod *
engine_mod_of(const struct module_desc *m)
{
	pthread_once(&engine_once, engine_build);
	for (size_t i = 0; i < module_catalog_count; i++)
		if (engine_mods[i].m == m)
			return &engine_mods[i];
	abort(); /* every descriptor is in the catalogue */
}

/* --- values --------------------------------------------------------------- */

static int64_t
engine_now(void)
{
	return (int64_t)time(NULL);
}

static int
engine_valid_date(const char *s)
{
	static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	if (strlen(s) != 10 || s[4] != '-' || s[7] != '-')
		return 0;
	for (int i = 0; i < 10; i++)
		if (i != 4 && i != 7 && !isdigit((unsigned char)s[i]))
			return 0;
	int y = atoi(s), m = atoi(s + 5), d = atoi(s + 8);
	if (y < 1900 || y > 2999 || m < 1 || m > 12 || d < 1 || d > mdays[m - 1])
		return 0;
	int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	return !(m == 2 && d == 29 && !leap);
}

/* No control characters but tab and (in long text) newlines. */
static int
engine_clean_text(const char *s, int multiline)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if ((*p < 0x20 && *p != '\t' && !(multiline && (*p == '\n' || *p == '\r'))) ||
		    *p == 0x7f)
			return 0;
	return 1;
}

static int
engine_enum_ok(const struct field_desc *f, const char *v)
{
	for (const char *const *e = f->enum_values; e && *e; e++)
		if (strcmp(*e, v) == 0)
			return 1;
	return 0;
}

/*
 * Check one input value against its field. BW_OK, or BW_ERR_INVALID with
 * the reply naming the field. A reference must name an existing row.
 */
static bw_err
engine_check_value(struct http_req *req, db *d, const struct field_desc *f, json_t *v)
{
	const char *n = f->name;
	char *msg = NULL;
	if (json_is_null(v)) {
		if (f->flags & FF_REQUIRED)
			msg = pool_printf(req->pool, "field '%s' is required and cannot be null", n);
		goto out;
	}
	switch (f->type) {
	case FT_STRING:
	case FT_TEXT:
	case FT_EMAIL:
	case FT_DATE:
	case FT_ENUM: {
		const char *s = json_string_value(v);
		if (s == NULL) {
			msg = pool_printf(req->pool, "field '%s' must be a string", n);
			break;
		}
		size_t len = json_string_length(v);
		if (strlen(s) != len) {
			msg = pool_printf(req->pool, "field '%s' contains a NUL character", n);
		} else if (f->type == FT_ENUM) {
			if (!engine_enum_ok(f, s))
				msg = pool_printf(req->pool, "field '%s' must be one of the listed values", n);
		} else if (f->type == FT_DATE) {
			if (!engine_valid_date(s))
				msg = pool_printf(req->pool, "field '%s' must be a date as YYYY-MM-DD", n);
		} else if (len > (size_t)f->max_len) {
			msg = pool_printf(req->pool, "field '%s' is longer than %d bytes", n, f->max_len);
		} else if ((f->flags & FF_REQUIRED) && len == 0) {
			msg = pool_printf(req->pool, "field '%s' is required and cannot be empty", n);
		} else if (!engine_clean_text(s, f->type == FT_TEXT)) {
			msg = pool_printf(req->pool, "field '%s' contains control characters", n);
		} else if (f->type == FT_EMAIL && !util_valid_email(s)) {
			msg = pool_printf(req->pool, "field '%s' is not an e-mail address", n);
		}
		break;
	}
	case FT_BOOL:
		if (!json_is_boolean(v))
			msg = pool_printf(req->pool, "field '%s' must be true or false", n);
		break;
	case FT_INT:
	case FT_MONEY:
	case FT_REF: {
		if (!json_is_integer(v)) {
			msg = pool_printf(req->pool, "field '%s' must be an integer", n);
			break;
		}
		json_int_t i = json_integer_value(v);
		if (f->type == FT_INT && (i < f->min || i > f->max)) {
			msg = pool_printf(req->pool, "field '%s' must be between %lld and %lld", n,
					  (long long)f->min, (long long)f->max);
		} else if (f->type == FT_MONEY) {
			int64_t max = f->max > 0 ? f->max : ENGINE_MONEY_MAX;
			if (i < 0)
				msg = pool_printf(req->pool, "field '%s' cannot be negative", n);
			else if (i > max)
				msg = pool_printf(req->pool, "field '%s' is larger than %lld cents", n,
						  (long long)max);
		} else if (f->type == FT_REF) {
			if (i <= 0) {
				msg = pool_printf(req->pool, "field '%s' must be a positive id", n);
				break;
			}
			/*
			 * Referring to a row needs the right to see such rows: otherwise
			 * whether the reference is accepted would tell whether the row
			 * exists. A token needs that in its scopes too.
			 */
			char *view = pool_printf(req->pool, "%s.view", f->ref);
			if (view == NULL)
				return BW_ERR_NOMEM;
			int may = rbac_user_has(d, req->auth.user.id, view);
			if (may < 0)
				return response_error(req, BW_ERR_UNAVAILABLE,
						      "the tenant database is unavailable");
			if (!may || (req->auth.kind == AUTH_TOKEN &&
				     !auth_scope_allows(req->auth.scopes, view)))
				return response_error(
				    req, BW_ERR_DENIED,
				    pool_printf(req->pool,
						"field '%s': referring to %s needs permission %s", n,
						f->ref, view));
			/* SQL built once from compiled-in names; the id is bound. */
			const struct module_desc *target = module_find(f->ref);
			const char *sql = target ? engine_mod_of(target)->sql_exists
						 : engine_users_exists;
			db_stmt *s;
			int row = 0;
			bw_err e = db_prepare_cached(d, sql, &s);
			if (e == BW_OK) {
				if ((e = db_bind_int(s, 1, i)) == BW_OK)
					e = db_step(s, &row);
				db_done(s);
			}
			if (e != BW_OK)
				return response_error(req, BW_ERR_UNAVAILABLE,
						      "the tenant database is unavailable");
			if (!row)
				msg = pool_printf(req->pool, "field '%s' refers to no %s record %lld", n,
						  f->ref, (long long)i);
		}
		break;
	}
	default:
		abort();
	}
out:
	if (msg != NULL)
		return response_error(req, BW_ERR_INVALID, msg);
	return BW_OK;
}

/* The default of f as JSON, or NULL. */
static json_t *
engine_default(const struct field_desc *f)
{
	if (f->def == NULL)
		return NULL;
	switch (f->type) {
	case FT_BOOL:
		return json_boolean(strcmp(f->def, "1") == 0 || strcmp(f->def, "true") == 0);
	case FT_INT:
	case FT_MONEY:
	case FT_REF:
		return json_integer(strtoll(f->def, NULL, 10));
	default:
		return json_string(f->def);
	}
}

/*
 * Validate a create (before == NULL) or update body into *out: unknown,
 * server-set and (on update) immutable fields refused, every value
 * checked, defaults filled in on create, required fields present.
 */
static bw_err
engine_validate(struct http_req *req, db *d, const struct module_desc *m, json_t *in, int create,
		json_t **out)
{
	const char *key;
	json_t *v;
	*out = NULL;
	json_object_foreach(in, key, v)
	{
		const struct field_desc *f = module_field(m, key);
		const char *msg = NULL;
		if (f == NULL)
			msg = pool_printf(req->pool, "unknown field '%.64s'", key);
		else if (f->flags & FF_READONLY)
			msg = pool_printf(req->pool, "field '%s' is set by the server", key);
		else if (f->flags & FF_ACTION)
			msg = pool_printf(req->pool, "field '%s' changes only through an action", key);
		else if (!create && (f->flags & FF_IMMUTABLE))
			msg = pool_printf(req->pool, "field '%s' cannot be changed", key);
		if (msg != NULL)
			return response_error(req, BW_ERR_INVALID, msg);
		bw_err e = engine_check_value(req, d, f, v);
		if (e != BW_OK)
			return e;
	}
	json_t *o = json_copy(in);
	if (o == NULL)
		return BW_ERR_NOMEM;
	if (create) {
		for (size_t k = 0; k < m->nfields; k++) {
			const struct field_desc *f = &m->fields[k];
			json_t *cur = json_object_get(o, f->name);
			if (cur == NULL && f->def != NULL)
				json_object_set_new(o, f->name, engine_default(f));
			else if (cur == NULL && (f->flags & FF_REQUIRED) &&
				 !(f->flags & (FF_READONLY | FF_ACTION))) {
				json_decref(o);
				return response_error(req, BW_ERR_INVALID,
						      pool_printf(req->pool, "field '%s' is required",
								  f->name));
			}
		}
	}
	*out = o;
	return BW_OK;
}

/* --- rows ----------------------------------------------------------------- */

/* Read column col of s as the JSON value of field f (opening sealed ones). */
static bw_err
engine_column(struct http_req *req, const struct module_desc *m, const struct field_desc *f,
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
		struct seal_place pl = {req->tn.slug, m->name, f->name, id};
		bw_err e = BW_ERR_CRYPTO;
		unsigned char *plain = small;
		if (b != NULL && len >= SEAL_OVERHEAD) {
			if (len - SEAL_OVERHEAD > sizeof(small))
				plain = malloc(len - SEAL_OVERHEAD);
			e = plain == NULL ? BW_ERR_NOMEM
					  : keyring_open_sealed(tenancy_keyring(http_req_tenancy(req)), &pl,
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
			log_error("tenant %s: %s.%s row %lld does not open (%s)", req->tn.slug,
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

/*
 * The current row of s (selected with select_cols) as JSON. secrets: keep
 * write-only values (for hooks); otherwise they show as <name>_set.
 */
static bw_err
engine_row(struct http_req *req, const struct module_desc *m, db_stmt *s, int secrets,
	   json_t **out)
{
	int64_t id = db_col_int(s, 0);
	json_t *o = json_object();
	*out = NULL;
	if (o == NULL)
		return BW_ERR_NOMEM;
	json_object_set_new_nocheck(o, "id", json_integer(id));
	int col = 1;
	for (size_t k = 0; k < m->nfields; k++, col++) {
		const struct field_desc *f = &m->fields[k];
		if ((f->flags & FF_WRITEONLY) && !secrets) {
			char name[80];
			snprintf(name, sizeof(name), "%s_set", f->name);
			json_object_set_new_nocheck(o, name, json_boolean(!db_col_null(s, col)));
			continue;
		}
		json_t *v;
		bw_err e = engine_column(req, m, f, s, col, id, &v);
		if (e != BW_OK) {
			json_decref(o);
			return e;
		}
		json_object_set_new_nocheck(o, f->name, v);
	}
	static const char *const frame[] = {"created_at", "updated_at", "created_by", "updated_by"};
	for (size_t i = 0; i < BW_ARRAY_LEN(frame); i++, col++)
		json_object_set_new_nocheck(o, frame[i], json_integer(db_col_int(s, col)));
	if (!secrets && m->present != NULL)
		m->present(m, o);
	*out = o;
	return BW_OK;
}

static bw_err
engine_read(struct http_req *req, db *d, const struct module_desc *m, int64_t id, int secrets,
	    json_t **out)
{
	const struct engine_mod *em = engine_mod_of(m);
	db_stmt *s;
	int row;
	*out = NULL;
	bw_err e = db_prepare_cached(d, em->sql_read, &s);
	if (e != BW_OK)
		return e;
	if ((e = db_bind_int(s, 1, id)) == BW_OK && (e = db_step(s, &row)) == BW_OK)
		e = row ? engine_row(req, m, s, secrets, out) : BW_ERR_NOTFOUND;
	db_done(s);
	return e;
}

bw_err
module_read(struct http_req *req, db *d, const struct module_desc *m, int64_t id, json_t **out)
{
	return engine_read(req, d, m, id, 0, out);
}

/* Bind v (validated for f) at idx; sealed fields are sealed for row id. */
static bw_err
engine_bind(struct http_req *req, db_stmt *s, int idx, const struct module_desc *m,
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
		bw_err e = field_seal(http_req_tenancy(req), &req->tn, m->name, f->name, id, str,
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

bw_err
module_write_fields(struct http_req *req, db *d, const struct module_desc *m, int64_t id,
		    json_t *values)
{
	char *sql = pool_printf(req->pool, "UPDATE %s SET updated_at = ?, updated_by = ?", m->name);
	const char *key;
	json_t *v;
	if (sql == NULL)
		return BW_ERR_NOMEM;
	json_object_foreach(values, key, v)
	{
		const struct field_desc *f = module_field(m, key);
		if (f == NULL)
			return BW_ERR_INTERNAL; /* validated before: a hook's bug */
		if ((sql = pool_printf(req->pool, "%s, %s = ?", sql, f->name)) == NULL)
			return BW_ERR_NOMEM;
	}
	if ((sql = pool_printf(req->pool, "%s WHERE id = ?", sql)) == NULL)
		return BW_ERR_NOMEM;
	db_stmt *s;
	int row, idx = 3;
	bw_err e = db_prepare(d, sql, &s);
	if (e != BW_OK)
		return e;
	if ((e = db_bind_int(s, 1, engine_now())) != BW_OK ||
	    (e = db_bind_int(s, 2, req->auth.user.id)) != BW_OK)
		goto out;
	json_object_foreach(values, key, v)
	{
		if ((e = engine_bind(req, s, idx++, m, module_field(m, key), id, v)) != BW_OK)
			goto out;
	}
	if ((e = db_bind_int(s, idx, id)) == BW_OK && (e = db_step(s, &row)) == BW_OK &&
	    db_changes(s) != 1)
		e = BW_ERR_NOTFOUND;
out:
	db_finalize(s);
	return e;
}

/* Insert the plain fields of a new row; sealed ones follow once the id is known. */
static bw_err
engine_insert(struct http_req *req, db *d, const struct module_desc *m, json_t *values,
	      int64_t *id)
{
	char *cols = pool_strdup(req->pool, "created_at, updated_at, created_by, updated_by");
	char *qs = pool_strdup(req->pool, "?, ?, ?, ?");
	const char *key;
	json_t *v;
	json_object_foreach(values, key, v)
	{
		const struct field_desc *f = module_field(m, key);
		if (f == NULL)
			return BW_ERR_INTERNAL;
		if ((f->flags & FF_ENCRYPTED) || cols == NULL || qs == NULL)
			continue;
		cols = pool_printf(req->pool, "%s, %s", cols, f->name);
		qs = pool_printf(req->pool, "%s, ?", qs);
	}
	char *sql = pool_printf(req->pool, "INSERT INTO %s (%s) VALUES (%s)", m->name, cols, qs);
	if (cols == NULL || qs == NULL || sql == NULL)
		return BW_ERR_NOMEM;
	db_stmt *s;
	int row, idx = 5;
	int64_t now = engine_now();
	bw_err e = db_prepare(d, sql, &s);
	if (e != BW_OK)
		return e;
	if ((e = db_bind_int(s, 1, now)) != BW_OK || (e = db_bind_int(s, 2, now)) != BW_OK ||
	    (e = db_bind_int(s, 3, req->auth.user.id)) != BW_OK ||
	    (e = db_bind_int(s, 4, req->auth.user.id)) != BW_OK)
		goto out;
	json_object_foreach(values, key, v)
	{
		const struct field_desc *f = module_field(m, key);
		if (f->flags & FF_ENCRYPTED)
			continue;
		if ((e = engine_bind(req, s, idx++, m, f, 0, v)) != BW_OK)
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
		e = module_write_fields(req, d, m, *id, sealed);
	json_decref(sealed);
	return e;
}

/* --- audit details ----------------------------------------------------------- */

/*
 * The fields a change touched, before and after. Write-only values never
 * enter the audit log, not even sealed: only that they changed.
 */
static void
engine_diff(const struct module_desc *m, json_t *before, json_t *after, json_t **b, json_t **a)
{
	const char *key;
	json_t *v;
	*b = json_object();
	*a = json_object();
	json_object_foreach(after, key, v)
	{
		const struct field_desc *f = module_field(m, key);
		json_t *old = before ? json_object_get(before, key) : NULL;
		if (old != NULL && json_equal(old, v))
			continue;
		if (f != NULL && (f->flags & FF_WRITEONLY)) {
			if (before != NULL)
				json_object_set_new(*b, key, json_string(old && !json_is_null(old)
									     ? "(set)"
									     : "(not set)"));
			json_object_set_new(*a, key,
					    json_string(json_is_null(v) ? "(not set)" : "(set)"));
			continue;
		}
		if (before != NULL)
			json_object_set(*b, key, old ? old : json_null());
		json_object_set(*a, key, v);
	}
}

/* A whole row for the audit log, write-only values masked. */
static json_t *
engine_masked(const struct module_desc *m, json_t *row)
{
	json_t *o = json_copy(row);
	for (size_t k = 0; o != NULL && k < m->nfields; k++)
		if ((m->fields[k].flags & FF_WRITEONLY) && json_object_get(o, m->fields[k].name))
			json_object_set_new(o, m->fields[k].name, json_string("(set)"));
	return o;
}

/* --- query strings ------------------------------------------------------------- */

static int64_t
engine_path_id(struct http_req *req)
{
	for (size_t i = 0; i < req->nparams; i++) {
		if (strcmp(req->param_name[i], "id") != 0)
			continue;
		long v;
		if (util_parse_long(req->param_value[i], 1, INT64_MAX, &v) == BW_OK)
			return v;
	}
	return 0;
}

/* --- list and export --------------------------------------------------------------- */

/*
 * Build "SELECT ... WHERE ... ORDER BY ..." from the query (declared filters
 * and sorts only) and bind it. page and per_page are filled for lists; an
 * export asks for everything up to ENGINE_EXPORT_MAX.
 */
static bw_err
engine_query(struct http_req *req, db *d, const struct module_desc *m, int export_all,
	     db_stmt **out, long *page, long *per_page, const char **format)
{
	const struct engine_mod *em = engine_mod_of(m);
	struct http_query q;
	const struct field_desc *filt[HTTP_QUERY_MAX];
	const char *fval[HTTP_QUERY_MAX];
	size_t nf = 0;
	const char *sort = "id", *dir = "ASC";
	*out = NULL;
	*page = 1;
	*per_page = export_all ? ENGINE_EXPORT_MAX : ENGINE_PAGE_DEFAULT;
	*format = "json";
	bw_err e = http_query_parse(req, &q);
	if (e != BW_OK)
		return e;
	for (size_t i = 0; i < q.n; i++) {
		const char *k = q.key[i], *v = q.val[i];
		if (!export_all && strcmp(k, "page") == 0) {
			if (util_parse_long(v, 1, 1000000, page) != BW_OK)
				return response_error(req, BW_ERR_INVALID,
						      "query parameter 'page' must be 1 or more");
		} else if (!export_all && strcmp(k, "per_page") == 0) {
			if (util_parse_long(v, 1, ENGINE_PAGE_MAX, per_page) != BW_OK)
				return response_error(
				    req, BW_ERR_INVALID,
				    pool_printf(req->pool,
						"query parameter 'per_page' must be 1 to %d",
						ENGINE_PAGE_MAX));
		} else if (export_all && strcmp(k, "format") == 0) {
			if (strcmp(v, "json") != 0 && strcmp(v, "csv") != 0)
				return response_error(req, BW_ERR_INVALID,
						      "query parameter 'format' must be json or csv");
			*format = v;
		} else if (strcmp(k, "sort") == 0) {
			const char *name = v[0] == '-' ? v + 1 : v;
			const struct field_desc *f = module_field(m, name);
			if (strcmp(name, "id") != 0 && strcmp(name, "created_at") != 0 &&
			    strcmp(name, "updated_at") != 0 && (f == NULL || !(f->flags & FF_SORT)))
				return response_error(
				    req, BW_ERR_INVALID,
				    pool_printf(req->pool, "query parameter 'sort': '%.64s' is not a "
							   "sortable field of %s",
						name, m->name));
			sort = f ? f->name : (strcmp(name, "id") == 0 ? "id"
					      : strcmp(name, "created_at") == 0 ? "created_at"
										 : "updated_at");
			dir = v[0] == '-' ? "DESC" : "ASC";
		} else {
			const struct field_desc *f = module_field(m, k);
			if (f == NULL || !(f->flags & FF_FILTER))
				return response_error(
				    req, BW_ERR_INVALID,
				    pool_printf(req->pool,
						"unknown query parameter '%.64s' (not a filter of %s)", k,
						m->name));
			int ok = 1;
			long n;
			switch (f->type) {
			case FT_INT:
			case FT_MONEY:
			case FT_REF:
				ok = util_parse_long(v, INT64_MIN + 1, INT64_MAX, &n) == BW_OK;
				break;
			case FT_BOOL:
				ok = strcmp(v, "true") == 0 || strcmp(v, "false") == 0;
				break;
			case FT_ENUM:
				ok = engine_enum_ok(f, v);
				break;
			case FT_DATE:
				ok = engine_valid_date(v);
				break;
			default:
				ok = strlen(v) <= (size_t)f->max_len;
				break;
			}
			if (!ok)
				return response_error(
				    req, BW_ERR_INVALID,
				    pool_printf(req->pool, "query parameter '%s' has a bad value", k));
			filt[nf] = f;
			fval[nf++] = v;
		}
	}
	char *sql = pool_printf(req->pool, "SELECT %s FROM %s", em->select_cols, m->name);
	for (size_t i = 0; i < nf && sql != NULL; i++)
		sql = pool_printf(req->pool, "%s %s %s = ?", sql, i ? "AND" : "WHERE", filt[i]->name);
	if (sql != NULL)
		sql = pool_printf(req->pool, "%s ORDER BY %s %s%s LIMIT ? OFFSET ?", sql, sort, dir,
				  strcmp(sort, "id") ? ", id ASC" : "");
	if (sql == NULL)
		return BW_ERR_NOMEM;
	db_stmt *s;
	if ((e = db_prepare(d, sql, &s)) != BW_OK)
		return e;
	int idx = 1;
	for (size_t i = 0; i < nf && e == BW_OK; i++, idx++) {
		switch (filt[i]->type) {
		case FT_INT:
		case FT_MONEY:
		case FT_REF:
			e = db_bind_int(s, idx, strtoll(fval[i], NULL, 10));
			break;
		case FT_BOOL:
			e = db_bind_int(s, idx, strcmp(fval[i], "true") == 0);
			break;
		default:
			e = db_bind_text(s, idx, fval[i]);
			break;
		}
	}
	/* One row beyond the page says whether there is a next one. */
	if (e == BW_OK && (e = db_bind_int(s, idx, *per_page + 1)) == BW_OK)
		e = db_bind_int(s, idx + 1, (*page - 1) * *per_page);
	if (e != BW_OK) {
		db_finalize(s);
		return e;
	}
	*out = s;
	return BW_OK;
}

/* About how many bytes a row takes (its text values and a little per field). */
static size_t
engine_row_bytes(json_t *row)
{
	const char *key;
	json_t *v;
	size_t n = 0;
	json_object_foreach(row, key, v) n += 24 + (json_is_string(v) ? json_string_length(v) : 0);
	return n;
}

/*
 * Run the list query of this request and collect up to per_page rows
 * (export: all, up to ENGINE_EXPORT_MAX) into *data; *more when a further
 * row exists.
 */
static bw_err
engine_collect(struct http_req *req, int export_all, json_t **data, long *page, long *per_page,
	       const char **format, int *more)
{
	const struct module_desc *m = req->route->data;
	db *d;
	db_stmt *s;
	int row;
	long n = 0;
	*data = NULL;
	*more = 0;
	bw_err e = http_req_db(req, &d);
	if (e != BW_OK)
		return e;
	if ((e = engine_query(req, d, m, export_all, &s, page, per_page, format)) != BW_OK)
		return e;
	json_t *a = json_array();
	size_t bytes = 0;
	while (a != NULL && (e = db_step(s, &row)) == BW_OK && row) {
		if (n == *per_page) {
			*more = 1;
			break;
		}
		json_t *o;
		if ((e = engine_row(req, m, s, 0, &o)) != BW_OK)
			break;
		json_array_append_new(a, o);
		n++;
		/* An export is bounded in bytes too, not only in rows (long texts). */
		if (export_all && (bytes += engine_row_bytes(o)) > ENGINE_EXPORT_BYTES) {
			db_finalize(s);
			json_decref(a);
			return response_error(req, BW_ERR_TOO_LARGE,
					      "the export is over 64 MiB: narrow it with filters");
		}
	}
	db_finalize(s);
	if (e != BW_OK || a == NULL) {
		json_decref(a);
		return e != BW_OK ? e : BW_ERR_NOMEM;
	}
	*data = a;
	return BW_OK;
}

static bw_err
engine_list(struct http_req *req)
{
	json_t *data;
	long page, per_page;
	const char *format;
	int more;
	bw_err e = engine_collect(req, 0, &data, &page, &per_page, &format, &more);
	if (e != BW_OK)
		return e;
	return response_json(req, 200,
			     json_pack("{s:o, s:i, s:i, s:b}", "data", data, "page", (int)page,
				       "per_page", (int)per_page, "has_more", more));
}

/* The visible column names of m, in order. */
static json_t *
engine_columns(const struct module_desc *m)
{
	static const char *const frame[] = {"created_at", "updated_at", "created_by", "updated_by"};
	json_t *cols = json_array();
	json_array_append_new(cols, json_string("id"));
	for (size_t k = 0; k < m->nfields; k++) {
		const struct field_desc *f = &m->fields[k];
		json_array_append_new(cols, (f->flags & FF_WRITEONLY) ? json_sprintf("%s_set", f->name)
								     : json_string(f->name));
	}
	for (size_t i = 0; i < BW_ARRAY_LEN(frame); i++)
		json_array_append_new(cols, json_string(frame[i]));
	return cols;
}

/* Commit when e is BW_OK, else roll back; returns e (or the commit's error). */
static bw_err
engine_finish(db *d, bw_err e)
{
	if (e == BW_OK)
		return db_commit(d);
	(void)db_rollback(d);
	return e;
}

/* The audit row of an export, in its own transaction (an export changes nothing else). */
static bw_err
engine_audit_export(struct http_req *req, const struct module_desc *m, const char *format, long n)
{
	db *d;
	bw_err e = http_req_db(req, &d);
	if (e != BW_OK || (e = db_begin(d)) != BW_OK)
		return e;
	json_t *after = json_pack("{s:s, s:I, s:s?}", "format", format, "rows", (json_int_t)n,
				  "query", req->query);
	e = after ? audit_request(req, d, m->name, 0, "export", NULL, after) : BW_ERR_NOMEM;
	json_decref(after);
	return engine_finish(d, e);
}

static bw_err
engine_export(struct http_req *req)
{
	const struct module_desc *m = req->route->data;
	json_t *data;
	long page, per_page, n;
	const char *format;
	int more;
	bw_err e = engine_collect(req, 1, &data, &page, &per_page, &format, &more);
	if (e != BW_OK)
		return e;
	if (more) {
		json_decref(data);
		return response_error(req, BW_ERR_TOO_LARGE,
				      "more than 100000 rows: narrow the export with filters");
	}
	n = (long)json_array_size(data);
	/* Records leaving in bulk are an event of their own: who, what, how many. */
	if ((e = engine_audit_export(req, m, format, n)) != BW_OK) {
		json_decref(data);
		return e;
	}
	if (strcmp(format, "json") == 0)
		return response_json(req, 200, json_pack("{s:o, s:i}", "data", data, "count", (int)n));

	struct csv c = {0};
	json_t *cols = engine_columns(m), *col, *r;
	size_t i, j;
	json_array_foreach(cols, j, col) csv_cell(&c, col, j == 0);
	csv_end_line(&c);
	json_array_foreach(data, i, r)
	{
		json_array_foreach(cols, j, col)
		    csv_cell(&c, json_object_get(r, json_string_value(col)), j == 0);
		csv_end_line(&c);
	}
	json_decref(cols);
	json_decref(data);
	if (c.failed) {
		free(c.b);
		return response_error(req, BW_ERR_TOO_LARGE, "the export is too large");
	}
	char *disp = pool_printf(req->pool, "attachment; filename=\"%s.csv\"", m->name);
	return response_raw(req, 200, "text/csv; charset=utf-8", disp, c.b, c.len);
}

/* --- one row: read, create, update, delete, actions ---------------------------- */

static bw_err
engine_get(struct http_req *req)
{
	const struct module_desc *m = req->route->data;
	int64_t id = engine_path_id(req);
	db *d;
	json_t *o;
	bw_err e = http_req_db(req, &d);
	if (e != BW_OK)
		return e;
	if (id == 0)
		return response_error(req, BW_ERR_NOTFOUND, "no such record");
	e = engine_read(req, d, m, id, 0, &o);
	if (e == BW_ERR_NOTFOUND)
		return response_error(req, e, "no such record");
	if (e != BW_OK)
		return e;
	return response_json(req, 200, o);
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
engine_lock(struct http_req *req, db *d, const struct module_desc *m, int64_t id)
{
	bw_err e = module_lock(d, m, id);
	return e == BW_ERR_NOTFOUND ? response_error(req, e, "no such record") : e;
}

/*
 * References scoped to a parent: a ticket's contact, an asset's or a
 * device's site must belong to the same customer as the row itself. The
 * values are the input's, else the stored row's (before; NULL on create).
 */
static bw_err
engine_check_same(struct http_req *req, db *d, const struct module_desc *m, json_t *input,
		  json_t *before)
{
	for (size_t k = 0; k < m->nfields; k++) {
		const struct field_desc *f = &m->fields[k];
		if (f->type != FT_REF || f->same == NULL)
			continue;
		if (json_object_get(input, f->name) == NULL && json_object_get(input, f->same) == NULL)
			continue; /* neither side changes */
		json_t *ref = json_object_get(input, f->name), *mine = json_object_get(input, f->same);
		if (ref == NULL && before != NULL)
			ref = json_object_get(before, f->name);
		if (mine == NULL && before != NULL)
			mine = json_object_get(before, f->same);
		if (!json_is_integer(ref) || !json_is_integer(mine))
			continue; /* no reference (null), or nothing to compare with */
		char *sql = pool_printf(req->pool, "SELECT %s FROM %s WHERE id = ?", f->same, f->ref);
		db_stmt *s;
		int row = 0, same = 0;
		if (sql == NULL)
			return BW_ERR_NOMEM;
		bw_err e = db_prepare(d, sql, &s);
		if (e != BW_OK)
			return e;
		if ((e = db_bind_int(s, 1, json_integer_value(ref))) == BW_OK &&
		    (e = db_step(s, &row)) == BW_OK && row)
			same = !db_col_null(s, 0) && db_col_int(s, 0) == json_integer_value(mine);
		db_finalize(s);
		if (e != BW_OK)
			return e;
		if (!same)
			return response_error(
			    req, BW_ERR_INVALID,
			    pool_printf(req->pool, "field '%s' refers to a %s record of another %s",
					f->name, f->ref, f->same));
	}
	return BW_OK;
}

static bw_err
engine_create(struct http_req *req)
{
	struct module_ctx ctx = {0};
	const struct module_desc *m = req->route->data;
	json_t *in = NULL, *input = NULL, *row = NULL, *after = NULL;
	int64_t id = 0;
	db *d;
	bw_err e = http_req_json(req, &in);
	if (e != BW_OK)
		return e;
	if ((e = http_req_db(req, &d)) != BW_OK || (e = db_begin(d)) != BW_OK)
		goto out;
	ctx = (struct module_ctx){req, d, m, 0, NULL, NULL, NULL};
	if ((e = engine_validate(req, d, m, in, 1, &input)) == BW_OK &&
	    (e = engine_check_same(req, d, m, input, NULL)) == BW_OK) {
		ctx.input = input;
		if (m->check != NULL)
			e = m->check(&ctx);
	}
	if (e == BW_OK && (e = engine_insert(req, d, m, input, &id)) == BW_OK) {
		ctx.id = id;
		if (m->after_write != NULL)
			e = m->after_write(&ctx);
	}
	if (e == BW_OK && (e = engine_read(req, d, m, id, 0, &row)) == BW_OK &&
	    (after = engine_masked(m, input)) != NULL)
		e = audit_request_effects(req, d, m->name, id, "create", NULL, after, ctx.effects);
	e = engine_finish(d, e);
out:
	json_decref(ctx.effects);
	json_decref(in);
	json_decref(input);
	json_decref(after);
	if (e != BW_OK) {
		json_decref(row);
		return e;
	}
	return response_json(req, 201, row);
}

static bw_err
engine_update(struct http_req *req)
{
	struct module_ctx ctx = {0};
	const struct module_desc *m = req->route->data;
	int64_t id = engine_path_id(req);
	json_t *in = NULL, *input = NULL, *before = NULL, *row = NULL, *b = NULL, *a = NULL;
	db *d;
	bw_err e = http_req_json(req, &in);
	if (e != BW_OK)
		return e;
	if (id == 0) {
		json_decref(in);
		return response_error(req, BW_ERR_NOTFOUND, "no such record");
	}
	if ((e = http_req_db(req, &d)) != BW_OK || (e = db_begin(d)) != BW_OK)
		goto out;
	ctx = (struct module_ctx){req, d, m, id, NULL, NULL, NULL};
	if ((e = engine_lock(req, d, m, id)) == BW_OK &&
	    (e = engine_read(req, d, m, id, 1, &before)) == BW_OK &&
	    (e = engine_validate(req, d, m, in, 0, &input)) == BW_OK &&
	    (e = engine_check_same(req, d, m, input, before)) == BW_OK) {
		ctx.before = before;
		ctx.input = input;
		if (m->check != NULL)
			e = m->check(&ctx);
	}
	/* An update that changes nothing is not a change: nothing written, no audit row. */
	if (e == BW_OK)
		engine_diff(m, before, input, &b, &a);
	if (e == BW_OK && json_object_size(a) > 0) {
		if ((e = module_write_fields(req, d, m, id, input)) == BW_OK && m->after_write != NULL)
			e = m->after_write(&ctx);
		if (e == BW_OK)
			e = audit_request_effects(req, d, m->name, id, "update", b, a, ctx.effects);
	}
	if (e == BW_OK)
		e = engine_read(req, d, m, id, 0, &row);
	e = engine_finish(d, e);
out:
	json_decref(ctx.effects);
	json_decref(in);
	json_decref(input);
	json_decref(before);
	json_decref(b);
	json_decref(a);
	if (e != BW_OK) {
		json_decref(row);
		return e;
	}
	return response_json(req, 200, row);
}

bw_err
module_referenced(struct http_req *req, db *d, const char *table, int64_t id)
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
			bw_err e = db_prepare(d, sql, &s);
			if (e != BW_OK)
				return e;
			if ((e = db_bind_int(s, 1, id)) == BW_OK)
				e = db_step(s, &row);
			db_finalize(s);
			if (e != BW_OK)
				return e;
			if (row)
				return response_error(
				    req, BW_ERR_CONFLICT,
				    pool_printf(req->pool,
						"this record is still referred to by %s (%s): remove "
						"or reassign those first",
						o->name, f->name));
		}
	}
	return BW_OK;
}

static bw_err
engine_delete(struct http_req *req)
{
	struct module_ctx ctx = {0};
	const struct module_desc *m = req->route->data;
	int64_t id = engine_path_id(req);
	json_t *before = NULL, *masked = NULL;
	db *d;
	db_stmt *s;
	int row;
	bw_err e;
	if (id == 0)
		return response_error(req, BW_ERR_NOTFOUND, "no such record");
	if ((e = http_req_db(req, &d)) != BW_OK || (e = db_begin(d)) != BW_OK)
		return e;
	ctx = (struct module_ctx){req, d, m, id, NULL, NULL, NULL};
	if ((e = engine_lock(req, d, m, id)) == BW_OK &&
	    (e = engine_read(req, d, m, id, 1, &before)) == BW_OK &&
	    (e = module_referenced(req, d, m->name, id)) == BW_OK) {
		ctx.before = before;
		if (m->can_delete != NULL)
			e = m->can_delete(&ctx);
	}
	if (e == BW_OK && (e = db_prepare_cached(d, engine_mod_of(m)->sql_delete, &s)) == BW_OK) {
		if ((e = db_bind_int(s, 1, id)) == BW_OK)
			e = db_step(s, &row);
		db_done(s);
	}
	if (e == BW_OK && m->after_write != NULL)
		e = m->after_write(&ctx);
	if (e == BW_OK && (masked = engine_masked(m, before)) != NULL)
		e = audit_request_effects(req, d, m->name, id, "delete", masked, NULL, ctx.effects);
	e = engine_finish(d, e);
	json_decref(ctx.effects);
	json_decref(before);
	json_decref(masked);
	if (e != BW_OK)
		return e;
	return response_json(req, 200, json_pack("{s:I, s:b}", "id", (json_int_t)id, "deleted", 1));
}

/* The action of this route: its name is the last segment of the pattern. */
static const struct action_desc *
engine_action_of(struct http_req *req, const struct module_desc *m)
{
	const char *name = strrchr(req->route->pattern, '/') + 1;
	for (size_t i = 0; i < m->nactions; i++)
		if (strcmp(m->actions[i].name, name) == 0)
			return &m->actions[i];
	abort(); /* routes are made from the actions */
}

static bw_err
engine_action(struct http_req *req)
{
	struct module_ctx ctx = {0};
	const struct module_desc *m = req->route->data;
	const struct action_desc *a = engine_action_of(req, m);
	int64_t id = engine_path_id(req);
	json_t *body = NULL, *before = NULL, *after = NULL, *reply = NULL, *b = NULL, *c = NULL;
	json_t *shown = NULL;
	db *d;
	bw_err e;
	if (id == 0)
		return response_error(req, BW_ERR_NOTFOUND, "no such record");
	/* An action's body is optional: {} when none is sent. */
	if (req->body_len > 0 && (e = http_req_json(req, &body)) != BW_OK)
		return e;
	if (body == NULL && (body = json_object()) == NULL)
		return BW_ERR_NOMEM;
	if ((e = http_req_db(req, &d)) != BW_OK || (e = db_begin(d)) != BW_OK)
		goto out;
	ctx = (struct module_ctx){req, d, m, id, NULL, NULL, NULL};
	if ((e = engine_lock(req, d, m, id)) == BW_OK &&
	    (e = engine_read(req, d, m, id, 1, &before)) == BW_OK) {
		ctx.before = before;
		e = a->run(&ctx, body, &reply);
	}
	if (e == BW_OK && (e = engine_read(req, d, m, id, 1, &after)) == BW_OK) {
		engine_diff(m, before, after, &b, &c);
		json_object_del(b, "updated_at");
		json_object_del(c, "updated_at");
		json_object_del(b, "updated_by");
		json_object_del(c, "updated_by");
		e = audit_request_effects(req, d, m->name, id, a->name, b, c, ctx.effects);
	}
	if (e == BW_OK && reply == NULL)
		e = engine_read(req, d, m, id, 0, &shown);
	e = engine_finish(d, e);
out:
	json_decref(ctx.effects);
	json_decref(body);
	json_decref(before);
	json_decref(after);
	json_decref(b);
	json_decref(c);
	if (e != BW_OK) {
		json_decref(reply);
		json_decref(shown);
		return e;
	}
	return response_json(req, 200, reply ? reply : shown);
}

/* --- routes ---------------------------------------------------------------------- */

static char *engine_strf(const char *fmt, ...) BW_PRINTF(1, 2);

/* A string that lives as long as the process (route patterns, permissions, SQL). */
static char *
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
	size_t n = 0, i;
	for (i = 0; i < module_catalog_count; i++)
		n += 7 + module_catalog[i]->nactions;
	engine_mods = calloc(module_catalog_count ? module_catalog_count : 1, sizeof(*engine_mods));
	engine_routes = calloc(n ? n : 1, sizeof(*engine_routes));
	if (engine_mods == NULL || engine_routes == NULL)
		goto oom;
	for (i = 0; i < module_catalog_count; i++) {
		const struct module_desc *m = module_catalog[i];
		struct engine_mod *em = &engine_mods[i];
		em->m = m;
		char *cols = strdup("id");
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

		struct {
			unsigned method;
			const char *suffix;
			route_handler h;
			const char *verb;
			unsigned flags;
			size_t body;
		} crud[] = {
		    {HTTP_GET, "", engine_list, "view", 0, ROUTE_BODY_NONE},
		    {HTTP_POST, "", engine_create, "create", 0, ROUTE_BODY_DEFAULT},
		    {HTTP_GET, "/export", engine_export, "export", 0, ROUTE_BODY_NONE},
		    {HTTP_GET, "/:id", engine_get, "view", 0, ROUTE_BODY_NONE},
		    {HTTP_PATCH, "/:id", engine_update, "edit", 0, ROUTE_BODY_DEFAULT},
		    {HTTP_DELETE, "/:id", engine_delete, "delete", ROUTE_DESTRUCTIVE, ROUTE_BODY_NONE},
		    /* The row's audit trail: its permission is the audit log's, not the module's. */
		    {HTTP_GET, "/:id/audit", audit_entity_trail, NULL, 0, ROUTE_BODY_NONE},
		};
		for (size_t c = 0; c < BW_ARRAY_LEN(crud); c++) {
			struct route *r = &engine_routes[engine_nroutes++];
			r->method = crud[c].method;
			r->pattern = engine_strf("/api/v1/%s%s", m->name, crud[c].suffix);
			r->handler = crud[c].h;
			r->flags = crud[c].flags;
			r->permission = crud[c].verb ? engine_strf("%s.%s", m->name, crud[c].verb)
						     : "audit.view";
			r->body_max = crud[c].body;
			r->data = m;
			if (r->pattern == NULL || r->permission == NULL)
				goto oom;
		}
		for (size_t k = 0; k < m->nactions; k++) {
			const struct action_desc *a = &m->actions[k];
			struct route *r = &engine_routes[engine_nroutes++];
			r->method = HTTP_POST;
			r->pattern = engine_strf("/api/v1/%s/:id/%s", m->name, a->name);
			r->handler = engine_action;
			r->flags = a->route_flags;
			r->permission = engine_strf("%s.%s", m->name, a->name);
			r->body_max = 16384;
			r->data = m;
			if (r->pattern == NULL || r->permission == NULL)
				goto oom;
		}
	}
	return;
oom:
	engine_init_err = BW_ERR_NOMEM;
}

bw_err
module_routes(const struct route **out, size_t *n)
{
	pthread_once(&engine_once, engine_build);
	*out = engine_routes;
	*n = engine_nroutes;
	return engine_init_err;
}
