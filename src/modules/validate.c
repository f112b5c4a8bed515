/*
 * The module engine's input checks: every value against its field's
 * descriptor, before any hook sees it. A reference must name a row that
 * exists and that the actor may see; a reference scoped to a parent must
 * stay within it.
 */
#include "engine.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "../rbac/rbac.h"

static const char engine_users_exists[] = "SELECT 1 FROM users WHERE id = ?";

int
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

int
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
engine_check_value(struct op *op, db *d, const struct field_desc *f, json_t *v)
{
	const char *n = f->name;
	char *msg = NULL;
	if (json_is_null(v)) {
		if (f->flags & FF_REQUIRED)
			msg = pool_printf(op->pool, "field '%s' is required and cannot be null", n);
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
			msg = pool_printf(op->pool, "field '%s' must be a string", n);
			break;
		}
		size_t len = json_string_length(v);
		if (strlen(s) != len) {
			msg = pool_printf(op->pool, "field '%s' contains a NUL character", n);
		} else if (f->type == FT_ENUM) {
			if (!engine_enum_ok(f, s))
				msg = pool_printf(op->pool, "field '%s' must be one of the listed values", n);
		} else if (f->type == FT_DATE) {
			if (!engine_valid_date(s))
				msg = pool_printf(op->pool, "field '%s' must be a date as YYYY-MM-DD", n);
		} else if (len > (size_t)f->max_len) {
			msg = pool_printf(op->pool, "field '%s' is longer than %d bytes", n, f->max_len);
		} else if ((f->flags & FF_REQUIRED) && len == 0) {
			msg = pool_printf(op->pool, "field '%s' is required and cannot be empty", n);
		} else if (!engine_clean_text(s, f->type == FT_TEXT)) {
			msg = pool_printf(op->pool, "field '%s' contains control characters", n);
		} else if (f->type == FT_EMAIL && !util_valid_email(s)) {
			msg = pool_printf(op->pool, "field '%s' is not an e-mail address", n);
		}
		break;
	}
	case FT_BOOL:
		if (!json_is_boolean(v))
			msg = pool_printf(op->pool, "field '%s' must be true or false", n);
		break;
	case FT_INT:
	case FT_MONEY:
	case FT_REF: {
		if (!json_is_integer(v)) {
			msg = pool_printf(op->pool, "field '%s' must be an integer", n);
			break;
		}
		json_int_t i = json_integer_value(v);
		if (f->type == FT_INT && (i < f->min || i > f->max)) {
			msg = pool_printf(op->pool, "field '%s' must be between %lld and %lld", n,
					  (long long)f->min, (long long)f->max);
		} else if (f->type == FT_MONEY) {
			int64_t max = f->max > 0 ? f->max : ENGINE_MONEY_MAX;
			if (i < 0)
				msg = pool_printf(op->pool, "field '%s' cannot be negative", n);
			else if (i > max)
				msg = pool_printf(op->pool, "field '%s' is larger than %lld cents", n,
						  (long long)max);
		} else if (f->type == FT_REF) {
			if (i <= 0) {
				msg = pool_printf(op->pool, "field '%s' must be a positive id", n);
				break;
			}
			/*
			 * Referring to a row needs the right to see such rows: otherwise
			 * whether the reference is accepted would tell whether the row
			 * exists. A token needs that in its scopes too.
			 */
			char *view = pool_printf(op->pool, "%s.view", f->ref);
			if (view == NULL)
				return BW_ERR_NOMEM;
			int may_see = may(op, view);
			if (may_see < 0)
				return op_unavailable(op);
			if (!may_see)
				return op_fail(
				    op, BW_ERR_DENIED,
				    pool_printf(op->pool,
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
				return op_unavailable(op);
			if (!row)
				msg = pool_printf(op->pool, "field '%s' refers to no %s record %lld", n,
						  f->ref, (long long)i);
		}
		break;
	}
	default:
		abort();
	}
out:
	if (msg != NULL)
		return op_fail(op, BW_ERR_INVALID, msg);
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

bw_err
engine_validate(struct op *op, db *d, const struct module_desc *m, json_t *in, int create,
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
			msg = pool_printf(op->pool, "unknown field '%.64s'", key);
		else if (f->flags & FF_READONLY)
			msg = pool_printf(op->pool, "field '%s' is set by the server", key);
		else if (f->flags & FF_ACTION)
			msg = pool_printf(op->pool, "field '%s' changes only through an action", key);
		else if (!create && (f->flags & FF_IMMUTABLE))
			msg = pool_printf(op->pool, "field '%s' cannot be changed", key);
		if (msg != NULL)
			return op_fail(op, BW_ERR_INVALID, msg);
		bw_err e = engine_check_value(op, d, f, v);
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
				return op_fail(op, BW_ERR_INVALID,
						      pool_printf(op->pool, "field '%s' is required",
								  f->name));
			}
		}
	}
	*out = o;
	return BW_OK;
}

bw_err
engine_check_same(struct op *op, db *d, const struct module_desc *m, json_t *input,
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
		char *sql = pool_printf(op->pool, "SELECT %s FROM %s WHERE id = ?", f->same, f->ref);
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
			return op_fail(
			    op, BW_ERR_INVALID,
			    pool_printf(op->pool, "field '%s' refers to a %s record of another %s",
					f->name, f->ref, f->same));
	}
	return BW_OK;
}
