/*
 * Roles and users through the API. Two rules keep delegation honest:
 * nobody grants what they do not hold themselves (a role's permissions,
 * or the roles given to a user), and the last active admin cannot be
 * demoted, disabled or deleted, so a tenant never locks itself out.
 * Every change is audited in the transaction that makes it.
 */
#include "rbac_api.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "../audit/audit.h"
#include "../auth/auth.h"
#include "../crypto/crypto.h"
#include "../modules/module.h"

#define RBAC_BODY 65536
#define RBAC_ROLES_PER_USER 16
#define RBAC_ROLES_MAX 1000 /* custom roles a tenant may have */

static int64_t
rbac_now(void)
{
	return (int64_t)time(NULL);
}

/* The :id of the path, or 0 (no such row) when it is not one (http_req_id). */
static int64_t
rbac_path_id(struct http_req *req)
{
	int64_t v;
	return http_req_id(req, "id", &v) == BW_OK ? v : 0;
}

static bw_err
rbac_finish(db *d, bw_err e)
{
	if (e == BW_OK)
		return db_commit(d);
	(void)db_rollback(d);
	return e;
}

/* Run a statement with integer/text parameters: "i" and "s" in types. */
static bw_err
rbac_run(db *d, const char *sql, const char *types, const void *const *args, int64_t *last_id)
{
	db_stmt *s;
	int row;
	bw_err e = db_prepare(d, sql, &s);
	if (e != BW_OK)
		return e;
	for (int i = 0; types[i] && e == BW_OK; i++)
		e = types[i] == 'i' ? db_bind_int(s, i + 1, *(const int64_t *)args[i])
				    : db_bind_text(s, i + 1, (const char *)args[i]);
	if (e == BW_OK && (e = db_step(s, &row)) == BW_OK && last_id != NULL)
		*last_id = db_last_id(s);
	db_finalize(s);
	return e;
}

static bw_err
rbac_count(db *d, const char *sql, int64_t id, int64_t *n)
{
	db_stmt *s;
	int row;
	bw_err e = db_prepare(d, sql, &s);
	*n = 0;
	if (e != BW_OK)
		return e;
	if ((e = db_bind_int(s, 1, id)) == BW_OK && (e = db_step(s, &row)) == BW_OK && row)
		*n = db_col_int(s, 0);
	db_finalize(s);
	return e;
}

/* --- roles ------------------------------------------------------------------ */

struct rbac_role {
	int64_t id;
	char name[65];
	char description[256];
	char builtin[33];
};

static bw_err
rbac_role_get(db *d, int64_t id, struct rbac_role *r)
{
	db_stmt *s;
	int row;
	bw_err e = db_prepare(d, "SELECT id, name, description, builtin FROM roles WHERE id = ?", &s);
	if (e != BW_OK)
		return e;
	if ((e = db_bind_int(s, 1, id)) == BW_OK && (e = db_step(s, &row)) == BW_OK) {
		if (!row) {
			e = BW_ERR_NOTFOUND;
		} else {
			r->id = db_col_int(s, 0);
			snprintf(r->name, sizeof(r->name), "%s", db_col_text(s, 1));
			snprintf(r->description, sizeof(r->description), "%s", db_col_text(s, 2));
			snprintf(r->builtin, sizeof(r->builtin), "%s", db_col_text(s, 3));
		}
	}
	db_finalize(s);
	return e;
}

/* The permissions a role holds now, as a JSON array (built-in: from the catalogue). */
static bw_err
rbac_role_perms(struct op *op, db *d, const struct rbac_role *r, json_t **out)
{
	json_t *a = json_array();
	*out = NULL;
	if (a == NULL)
		return BW_ERR_NOMEM;
	if (r->builtin[0] != '\0') {
		const char *const *cat;
		size_t n;
		bw_err e = rbac_catalog(op, &cat, &n);
		if (e != BW_OK) {
			json_decref(a);
			return e;
		}
		for (size_t i = 0; i < n; i++)
			if (strncmp(cat[i], "self.", 5) != 0 && rbac_builtin_grants(r->builtin, cat[i]))
				json_array_append_new(a, json_string(cat[i]));
		*out = a;
		return BW_OK;
	}
	db_stmt *s;
	int row;
	bw_err e = db_prepare(d,
			      "SELECT permission FROM role_permissions WHERE role_id = ?"
			      " ORDER BY permission",
			      &s);
	if (e == BW_OK && (e = db_bind_int(s, 1, r->id)) == BW_OK)
		while ((e = db_step(s, &row)) == BW_OK && row)
			json_array_append_new(a, json_string(db_col_text(s, 0)));
	db_finalize(s);
	if (e != BW_OK) {
		json_decref(a);
		return e;
	}
	*out = a;
	return BW_OK;
}

static bw_err
rbac_role_json(struct op *op, db *d, const struct rbac_role *r, json_t **out)
{
	json_t *perms;
	bw_err e = rbac_role_perms(op, d, r, &perms);
	if (e != BW_OK)
		return e;
	*out = json_pack("{s:I, s:s, s:s, s:b, s:s?, s:o}", "id", (json_int_t)r->id, "name",
			 r->name, "description", r->description, "builtin", r->builtin[0] != '\0',
			 "builtin_key", r->builtin[0] ? r->builtin : NULL, "permissions", perms);
	return *out ? BW_OK : BW_ERR_NOMEM;
}

/*
 * Whether the signed-in user may hand out every permission in perms (a
 * JSON array): they must hold each one themselves, and a request made
 * with an API token only what the token is scoped for too, so a token
 * scoped to users.create cannot mint an admin.
 */
static bw_err
rbac_may_grant(struct op *op, json_t *perms)
{
	size_t i;
	json_t *v;
	json_array_foreach(perms, i, v)
	{
		const char *p = json_string_value(v);
		int has = p != NULL ? may(op, p) : 0;
		if (has < 0)
			return op_unavailable(op);
		if (!has)
			return op_fail(
			    op, BW_ERR_DENIED,
			    pool_printf(op->pool, "you cannot grant %s: you do not hold it yourself",
					json_string_value(v)));
	}
	return BW_OK;
}

/* rbac_may_grant() for a role's present permissions, with its own message. */
static bw_err
rbac_may_hold_role(struct op *op, json_t *perms)
{
	bw_err e = rbac_may_grant(op, perms);
	if (e == BW_ERR_DENIED)
		return op_fail(op, e,
				      "this role holds permissions you do not: only someone who holds "
				      "all of them can change or delete it");
	return e;
}

/*
 * Validate a permissions array: known permissions of the catalogue only
 * (no "*", no self.*), no duplicates. On success *clean is a sorted copy.
 */
static bw_err
rbac_check_perms(struct op *op, json_t *perms, json_t **clean)
{
	const char *const *cat;
	size_t n, i;
	json_t *v;
	*clean = NULL;
	if (!json_is_array(perms) || json_array_size(perms) > RBAC_ROLE_PERMS_MAX)
		return op_fail(op, BW_ERR_INVALID,
				      "field 'permissions' must be an array of permission names");
	bw_err e = rbac_catalog(op, &cat, &n);
	if (e != BW_OK)
		return e;
	json_t *out = json_array();
	if (out == NULL)
		return BW_ERR_NOMEM;
	json_array_foreach(perms, i, v)
	{
		const char *p = json_string_value(v);
		int known = 0;
		for (size_t k = 0; p != NULL && k < n && !known; k++)
			known = strcmp(cat[k], p) == 0;
		if (p == NULL || !known || strncmp(p, "self.", 5) == 0) {
			json_decref(out);
			return op_fail(
			    op, BW_ERR_INVALID,
			    pool_printf(op->pool,
					"field 'permissions': '%.100s' is not a grantable permission "
					"(see GET /api/v1/meta/permissions)",
					p ? p : "(not a string)"));
		}
		size_t j;
		json_t *w;
		int dup = 0;
		json_array_foreach(out, j, w) dup |= strcmp(json_string_value(w), p) == 0;
		if (!dup)
			json_array_append_new(out, json_string(p));
	}
	*clean = out;
	return BW_OK;
}

static int
rbac_valid_role_name(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (n < 1 || n > 64)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!(isalnum((unsigned char)s[i]) || s[i] == '_' || s[i] == '-' || s[i] == ' '))
			return 0;
	return 1;
}

/*
 * A role body: only name, description and permissions; a name of 1 to 64
 * letters, digits, spaces, '-' or '_' (required on create); a description
 * of at most 255 bytes. BW_OK or the 400 reply set.
 */
static bw_err
rbac_role_input(struct http_req *req, json_t *in, int create)
{
	const char *key;
	json_t *v, *nj = json_object_get(in, "name"), *dj = json_object_get(in, "description");
	json_object_foreach(in, key, v)
	{
		if (strcmp(key, "name") && strcmp(key, "description") && strcmp(key, "permissions"))
			return response_error(req, BW_ERR_INVALID,
					      pool_printf(req->pool, "unknown field '%.64s'", key));
	}
	if ((create || nj != NULL) && !rbac_valid_role_name(json_string_value(nj)))
		return response_error(req, BW_ERR_INVALID,
				      "field 'name': 1 to 64 letters, digits, spaces, '-' or '_'");
	if (dj != NULL && (!json_is_string(dj) || strlen(json_string_value(dj)) > 255))
		return response_error(req, BW_ERR_INVALID,
				      "field 'description': a string of at most 255 bytes");
	return BW_OK;
}

static bw_err
rbac_roles_list(struct http_req *req)
{
	db *d;
	db_stmt *s;
	int row;
	bw_err e = http_req_db(req, &d);
	if (e != BW_OK)
		return e;
	json_t *list = json_array();
	struct rbac_role r;
	if ((e = db_prepare(d, "SELECT id, name, description, builtin FROM roles ORDER BY id", &s)) !=
	    BW_OK) {
		json_decref(list);
		return e;
	}
	/* Collect first: a role's permissions need their own statement. */
	struct rbac_role *v = NULL;
	size_t n = 0, cap = 0;
	while ((e = db_step(s, &row)) == BW_OK && row) {
		if (n == RBAC_ROLES_MAX) {
			e = response_error(req, BW_ERR_TOO_LARGE,
					   pool_printf(req->pool, "more than %d roles", RBAC_ROLES_MAX));
			break;
		}
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 16;
			struct rbac_role *nv = realloc(v, nc * sizeof(*nv));
			if (nv == NULL) {
				e = BW_ERR_NOMEM;
				break;
			}
			v = nv;
			cap = nc;
		}
		v[n].id = db_col_int(s, 0);
		snprintf(v[n].name, sizeof(v[n].name), "%s", db_col_text(s, 1));
		snprintf(v[n].description, sizeof(v[n].description), "%s", db_col_text(s, 2));
		snprintf(v[n].builtin, sizeof(v[n].builtin), "%s", db_col_text(s, 3));
		n++;
	}
	db_finalize(s);
	for (size_t i = 0; e == BW_OK && i < n; i++) {
		json_t *o;
		r = v[i];
		if ((e = rbac_role_json(&req->op, d, &r, &o)) == BW_OK)
			json_array_append_new(list, o);
	}
	free(v);
	if (e != BW_OK) {
		json_decref(list);
		return e;
	}
	return response_json(req, 200, json_pack("{s:o}", "roles", list));
}

static bw_err
rbac_role_show(struct http_req *req)
{
	db *d;
	struct rbac_role r;
	json_t *o;
	bw_err e = http_req_db(req, &d);
	if (e != BW_OK)
		return e;
	if ((e = rbac_role_get(d, rbac_path_id(req), &r)) == BW_ERR_NOTFOUND)
		return response_error(req, e, "no such role");
	if (e != BW_OK || (e = rbac_role_json(&req->op, d, &r, &o)) != BW_OK)
		return e;
	return response_json(req, 200, o);
}

/* Replace a custom role's permission rows by perms. */
static bw_err
rbac_role_set_perms(db *d, int64_t id, json_t *perms)
{
	const void *a1[] = {&id};
	bw_err e = rbac_run(d, "DELETE FROM role_permissions WHERE role_id = ?", "i", a1, NULL);
	size_t i;
	json_t *v;
	json_array_foreach(perms, i, v)
	{
		if (e != BW_OK)
			break;
		const void *a2[] = {&id, json_string_value(v)};
		e = rbac_run(d, "INSERT INTO role_permissions (role_id, permission) VALUES (?, ?)", "is",
			     a2, NULL);
	}
	return e;
}

/*
 * Whether another role (not id) has this name, ignoring case: MariaDB's
 * collation already compares names so, and SQLite must agree with it.
 */
static bw_err
rbac_name_taken(struct http_req *req, db *d, const char *name, int64_t id)
{
	db_stmt *s;
	int row = 0;
	bw_err e = db_prepare(d, "SELECT 1 FROM roles WHERE LOWER(name) = LOWER(?) AND id <> ?", &s);
	if (e != BW_OK)
		return e;
	if ((e = db_bind_text(s, 1, name)) == BW_OK && (e = db_bind_int(s, 2, id)) == BW_OK)
		e = db_step(s, &row);
	db_finalize(s);
	if (e == BW_OK && row)
		e = response_error(req, BW_ERR_CONFLICT, "a role with that name exists");
	return e;
}

static bw_err
rbac_role_create(struct http_req *req)
{
	json_t *in, *perms = NULL, *shown = NULL;
	db *d;
	int64_t id = 0, now = rbac_now();
	bw_err e = http_req_json(req, &in);
	if (e != BW_OK)
		return e;
	if ((e = rbac_role_input(req, in, 1)) != BW_OK)
		goto out;
	const char *name = json_string_value(json_object_get(in, "name"));
	json_t *dj = json_object_get(in, "description");
	const char *desc = dj ? json_string_value(dj) : "";
	if ((e = rbac_check_perms(&req->op, json_object_get(in, "permissions"), &perms)) != BW_OK ||
	    (e = http_req_db(req, &d)) != BW_OK || (e = rbac_may_grant(&req->op, perms)) != BW_OK ||
	    (e = db_begin(d)) != BW_OK)
		goto out;
	const void *args[] = {name, desc, &now, &now};
	int64_t nroles = 0;
	if ((e = rbac_count(d, "SELECT COUNT(*) FROM roles WHERE id > ?", 0, &nroles)) == BW_OK &&
	    nroles >= RBAC_ROLES_MAX)
		e = response_error(req, BW_ERR_CONFLICT,
				   pool_printf(req->pool, "a tenant has at most %d roles", RBAC_ROLES_MAX));
	if (e == BW_OK && (e = rbac_name_taken(req, d, name, 0)) == BW_OK)
		e = rbac_run(d,
			     "INSERT INTO roles (name, description, builtin, created_at, updated_at)"
			     " VALUES (?, ?, '', ?, ?)",
			     "ssii", args, &id);
	if (e == BW_ERR_CONFLICT)
		e = response_error(req, e, "a role with that name exists");
	if (e == BW_OK)
		e = rbac_role_set_perms(d, id, perms);
	if (e == BW_OK) {
		json_t *after = json_pack("{s:s, s:s, s:O}", "name", name, "description", desc,
					  "permissions", perms);
		e = after ? audit_op(&req->op, "roles", id, "create", NULL, after) : BW_ERR_NOMEM;
		json_decref(after);
	}
	if ((e = rbac_finish(d, e)) == BW_OK) {
		struct rbac_role r;
		if ((e = rbac_role_get(d, id, &r)) == BW_OK)
			e = rbac_role_json(&req->op, d, &r, &shown);
	}
out:
	json_decref(in);
	json_decref(perms);
	return e == BW_OK ? response_json(req, 201, shown) : e;
}

static bw_err
rbac_role_update(struct http_req *req)
{
	json_t *in, *perms = NULL, *old = NULL, *shown = NULL, *b = NULL, *a = NULL;
	db *d;
	struct rbac_role r;
	int64_t now = rbac_now();
	bw_err e = http_req_json(req, &in);
	if (e != BW_OK)
		return e;
	if ((e = rbac_role_input(req, in, 0)) != BW_OK)
		goto out;
	json_t *nj = json_object_get(in, "name"), *dj = json_object_get(in, "description");
	if ((e = http_req_db(req, &d)) != BW_OK)
		goto out;
	if ((e = rbac_role_get(d, rbac_path_id(req), &r)) == BW_ERR_NOTFOUND) {
		e = response_error(req, e, "no such role");
		goto out;
	}
	if (e != BW_OK)
		goto out;
	if (r.builtin[0] != '\0') {
		e = response_error(req, BW_ERR_CONFLICT,
				   "built-in roles cannot be changed: create a custom role instead");
		goto out;
	}
	if (json_object_get(in, "permissions") != NULL &&
	    ((e = rbac_check_perms(&req->op, json_object_get(in, "permissions"), &perms)) != BW_OK ||
	     (e = rbac_may_grant(&req->op, perms)) != BW_OK))
		goto out;
	if ((e = db_begin(d)) != BW_OK)
		goto out;
	/* A role is changed only by someone who holds all it holds now, too. */
	if ((e = rbac_role_perms(&req->op, d, &r, &old)) != BW_OK ||
	    (e = rbac_may_hold_role(&req->op, old)) != BW_OK)
		goto done;
	b = json_object();
	a = json_object();
	if (nj && strcmp(json_string_value(nj), r.name) != 0) {
		const void *args[] = {json_string_value(nj), &now, &r.id};
		if ((e = rbac_name_taken(req, d, json_string_value(nj), r.id)) == BW_OK)
			e = rbac_run(d, "UPDATE roles SET name = ?, updated_at = ? WHERE id = ?", "sii",
				     args, NULL);
		if (e == BW_ERR_CONFLICT)
			e = response_error(req, e, "a role with that name exists");
		json_object_set_new(b, "name", json_string(r.name));
		json_object_set(a, "name", nj);
	}
	if (e == BW_OK && dj && strcmp(json_string_value(dj), r.description) != 0) {
		const void *args[] = {json_string_value(dj), &now, &r.id};
		e = rbac_run(d, "UPDATE roles SET description = ?, updated_at = ? WHERE id = ?", "sii",
			     args, NULL);
		json_object_set_new(b, "description", json_string(r.description));
		json_object_set(a, "description", dj);
	}
	if (e == BW_OK && perms != NULL && !json_equal(perms, old)) {
		e = rbac_role_set_perms(d, r.id, perms);
		json_object_set(b, "permissions", old);
		json_object_set(a, "permissions", perms);
	}
	if (e == BW_OK && json_object_size(a) > 0)
		e = audit_op(&req->op, "roles", r.id, "update", b, a);
done:
	if ((e = rbac_finish(d, e)) == BW_OK && (e = rbac_role_get(d, r.id, &r)) == BW_OK)
		e = rbac_role_json(&req->op, d, &r, &shown);
out:
	json_decref(in);
	json_decref(perms);
	json_decref(old);
	json_decref(b);
	json_decref(a);
	return e == BW_OK ? response_json(req, 200, shown) : e;
}


static bw_err
rbac_role_delete(struct http_req *req)
{
	db *d;
	struct rbac_role r;
	int64_t users;
	json_t *perms = NULL, *before = NULL;
	bw_err e = http_req_db(req, &d);
	if (e != BW_OK)
		return e;
	if ((e = db_begin(d)) != BW_OK)
		return e;
	if ((e = rbac_role_get(d, rbac_path_id(req), &r)) == BW_ERR_NOTFOUND)
		e = response_error(req, e, "no such role");
	else if (e == BW_OK && r.builtin[0] != '\0')
		e = response_error(req, BW_ERR_CONFLICT, "built-in roles cannot be deleted");
	else if (e == BW_OK &&
		 (e = rbac_count(d, "SELECT COUNT(*) FROM user_roles WHERE role_id = ?", r.id,
				 &users)) == BW_OK &&
		 users > 0)
		e = response_error(req, BW_ERR_CONFLICT,
				   pool_printf(req->pool,
					       "%lld user(s) hold this role: take it from them first",
					       (long long)users));
	if (e == BW_OK && (e = rbac_role_perms(&req->op, d, &r, &perms)) == BW_OK &&
	    (e = rbac_may_hold_role(&req->op, perms)) == BW_OK) {
		const void *args[] = {&r.id};
		if ((e = rbac_run(d, "DELETE FROM role_permissions WHERE role_id = ?", "i", args,
				  NULL)) == BW_OK)
			e = rbac_run(d, "DELETE FROM roles WHERE id = ?", "i", args, NULL);
	}
	if (e == BW_OK) {
		before = json_pack("{s:s, s:s, s:O}", "name", r.name, "description", r.description,
				   "permissions", perms);
		e = before ? audit_op(&req->op, "roles", r.id, "delete", before, NULL)
			   : BW_ERR_NOMEM;
	}
	e = rbac_finish(d, e);
	json_decref(perms);
	json_decref(before);
	if (e != BW_OK)
		return e;
	return response_json(req, 200, json_pack("{s:I, s:b}", "id", (json_int_t)r.id, "deleted", 1));
}

/* --- users --------------------------------------------------------------------- */

/* Names of the roles user id holds, as a JSON array. */
static bw_err
rbac_user_roles(db *d, int64_t id, json_t **out)
{
	db_stmt *s;
	int row;
	json_t *a = json_array();
	bw_err e = db_prepare(d,
			      "SELECT r.name FROM user_roles ur JOIN roles r ON r.id = ur.role_id"
			      " WHERE ur.user_id = ? ORDER BY r.name",
			      &s);
	*out = NULL;
	if (e != BW_OK || a == NULL) {
		json_decref(a);
		return e != BW_OK ? e : BW_ERR_NOMEM;
	}
	if ((e = db_bind_int(s, 1, id)) == BW_OK)
		while ((e = db_step(s, &row)) == BW_OK && row)
			json_array_append_new(a, json_string(db_col_text(s, 0)));
	db_finalize(s);
	if (e != BW_OK) {
		json_decref(a);
		return e;
	}
	*out = a;
	return BW_OK;
}

static const char rbac_user_cols[] =
    "SELECT id, email, disabled, mfa_enabled, locked_until, must_change_password, created_at"
    " FROM users";

static bw_err
rbac_user_row(db_stmt *s, json_t **out)
{
	int64_t id = db_col_int(s, 0);
	*out = json_pack("{s:I, s:s, s:b, s:b, s:I, s:b, s:I}", "id", (json_int_t)id, "email",
			 db_col_text(s, 1), "disabled", (int)db_col_int(s, 2), "mfa_enabled",
			 (int)db_col_int(s, 3), "locked_until", (json_int_t)db_col_int(s, 4),
			 "must_change_password", (int)db_col_int(s, 5), "created_at",
			 (json_int_t)db_col_int(s, 6));
	return *out ? BW_OK : BW_ERR_NOMEM;
}

/* Add "roles" to each user object (after the user statement is done). */
static bw_err
rbac_users_add_roles(db *d, json_t *users)
{
	size_t i;
	json_t *u, *roles;
	json_array_foreach(users, i, u)
	{
		bw_err e = rbac_user_roles(d, json_integer_value(json_object_get(u, "id")), &roles);
		if (e != BW_OK)
			return e;
		json_object_set_new(u, "roles", roles);
	}
	return BW_OK;
}

static bw_err
rbac_users_get(struct http_req *req, int64_t one, json_t **out)
{
	db *d;
	db_stmt *s;
	int row;
	bw_err e = http_req_db(req, &d);
	json_t *list = json_array();
	*out = NULL;
	if (e != BW_OK || list == NULL) {
		json_decref(list);
		return e != BW_OK ? e : BW_ERR_NOMEM;
	}
	char *sql = pool_printf(req->pool, "%s%s ORDER BY id", rbac_user_cols,
				one ? " WHERE id = ?" : "");
	if (sql == NULL || (e = db_prepare(d, sql, &s)) != BW_OK) {
		json_decref(list);
		return sql == NULL ? BW_ERR_NOMEM : e;
	}
	if (one)
		e = db_bind_int(s, 1, one);
	while (e == BW_OK && (e = db_step(s, &row)) == BW_OK && row) {
		json_t *o;
		if ((e = rbac_user_row(s, &o)) == BW_OK)
			json_array_append_new(list, o);
	}
	db_finalize(s);
	if (e == BW_OK)
		e = rbac_users_add_roles(d, list);
	if (e != BW_OK) {
		json_decref(list);
		return e;
	}
	*out = list;
	return BW_OK;
}

static bw_err
rbac_users_list(struct http_req *req)
{
	json_t *list;
	bw_err e = rbac_users_get(req, 0, &list);
	if (e != BW_OK)
		return e;
	return response_json(req, 200, json_pack("{s:o}", "users", list));
}

static bw_err
rbac_user_show(struct http_req *req)
{
	json_t *list;
	int64_t id = rbac_path_id(req);
	bw_err e = id ? rbac_users_get(req, id, &list) : BW_ERR_NOTFOUND;
	if (e == BW_OK && json_array_size(list) == 0) {
		json_decref(list);
		e = BW_ERR_NOTFOUND;
	}
	if (e == BW_ERR_NOTFOUND)
		return response_error(req, e, "no such user");
	if (e != BW_OK)
		return e;
	json_t *u = json_incref(json_array_get(list, 0));
	json_decref(list);
	return response_json(req, 200, u);
}

/*
 * Resolve a "roles" array of role names into ids (out, *n), checking the
 * signed-in user holds every permission of each (no escalation).
 */
static bw_err
rbac_resolve_roles(struct op *op, db *d, json_t *roles, int64_t *ids, size_t *n)
{
	size_t i;
	json_t *v;
	*n = 0;
	if (!json_is_array(roles) || json_array_size(roles) > RBAC_ROLES_PER_USER)
		return op_fail(op, BW_ERR_INVALID,
				      "field 'roles' must be an array of at most 16 role names");
	json_array_foreach(roles, i, v)
	{
		const char *name = json_string_value(v);
		db_stmt *s;
		int row = 0;
		struct rbac_role r;
		int64_t id = 0;
		if (name == NULL)
			return op_fail(op, BW_ERR_INVALID, "field 'roles': names are strings");
		bw_err e = db_prepare(d, "SELECT id FROM roles WHERE name = ?", &s);
		if (e != BW_OK)
			return e;
		if ((e = db_bind_text(s, 1, name)) == BW_OK && (e = db_step(s, &row)) == BW_OK && row)
			id = db_col_int(s, 0);
		db_finalize(s);
		if (e != BW_OK)
			return e;
		if (id == 0)
			return op_fail(op, BW_ERR_INVALID,
					      pool_printf(op->pool, "field 'roles': no role '%.64s'",
							  name));
		json_t *perms;
		if ((e = rbac_role_get(d, id, &r)) != BW_OK ||
		    (e = rbac_role_perms(op, d, &r, &perms)) != BW_OK)
			return e;
		/* The built-in admin role is everything, present and future: only admins give it. */
		if (strcmp(r.builtin, "admin") == 0) {
			json_decref(perms);
			perms = json_pack("[s]", "*");
		}
		e = rbac_may_grant(op, perms);
		json_decref(perms);
		if (e != BW_OK)
			return e;
		int dup = 0;
		for (size_t k = 0; k < *n; k++)
			dup |= ids[k] == id;
		if (!dup)
			ids[(*n)++] = id;
	}
	return BW_OK;
}

static bw_err
rbac_set_user_roles(db *d, int64_t uid, const int64_t *ids, size_t n)
{
	const void *a1[] = {&uid};
	bw_err e = rbac_run(d, "DELETE FROM user_roles WHERE user_id = ?", "i", a1, NULL);
	for (size_t i = 0; e == BW_OK && i < n; i++) {
		const void *a2[] = {&uid, &ids[i]};
		e = rbac_run(d, "INSERT INTO user_roles (user_id, role_id) VALUES (?, ?)", "ii", a2,
			     NULL);
	}
	return e;
}

/* Active admins other than uid: the tenant must always keep one. */
static bw_err
rbac_other_admins(db *d, int64_t uid, int64_t *n)
{
	return rbac_count(d,
			  "SELECT COUNT(*) FROM users u WHERE u.id <> ? AND u.disabled = 0 AND EXISTS"
			  " (SELECT 1 FROM user_roles ur JOIN roles r ON r.id = ur.role_id"
			  " WHERE ur.user_id = u.id AND r.builtin = 'admin')",
			  uid, n);
}

/*
 * Flags for email_normalize() when a user is made: internationalised
 * domains only where the tenant allows them (settings 'email_idn' = '1').
 */
static bw_err
rbac_email_flags(db *d, unsigned *flags)
{
	db_stmt *s;
	int row = 0;
	*flags = 0;
	bw_err e = db_prepare(d, "SELECT value FROM settings WHERE name = 'email_idn'", &s);
	if (e == BW_OK && (e = db_step(s, &row)) == BW_OK && row && db_col_text(s, 0) != NULL &&
	    strcmp(db_col_text(s, 0), "1") == 0)
		*flags = EMAIL_ALLOW_IDN;
	db_finalize(s);
	return e;
}

static bw_err
rbac_user_create(struct http_req *req)
{
	json_t *in, *list = NULL, *after = NULL;
	db *d;
	int64_t ids[RBAC_ROLES_PER_USER], uid = 0, now = rbac_now();
	size_t nids = 0;
	char otp[32] = "", phc[256];
	const char *why;
	bw_err e = http_req_json(req, &in);
	if (e != BW_OK)
		return e;
	const char *email = json_string_value(json_object_get(in, "email"));
	json_t *pj = json_object_get(in, "password");
	const char *password = json_string_value(pj);
	const char *key;
	json_t *v;
	json_object_foreach(in, key, v)
	{
		if (strcmp(key, "email") && strcmp(key, "roles") && strcmp(key, "password")) {
			e = response_error(req, BW_ERR_INVALID,
					   pool_printf(req->pool, "unknown field '%.64s'", key));
			goto out;
		}
	}
	/* One form of every address (ADR 0012): shown as display, unique as key and skel. */
	struct email_addr addr;
	unsigned eflags;
	if ((e = http_req_db(req, &d)) != BW_OK || (e = rbac_email_flags(d, &eflags)) != BW_OK)
		goto out;
	if ((e = email_normalize(email, eflags, &addr, &why)) != BW_OK) {
		e = response_error(req, e == BW_ERR_NOMEM ? e : BW_ERR_INVALID,
				   pool_printf(req->pool, "field 'email': the address %s", why));
		goto out;
	}
	email = addr.display;
	if (pj != NULL && (password == NULL || password_policy(password, email, &why) != BW_OK)) {
		e = response_error(req, BW_ERR_INVALID,
				   pool_printf(req->pool, "field 'password': %s",
					       password ? why : "must be a string"));
		goto out;
	}
	if (password == NULL) {
		/* A one-time password, shown once; it must be changed at first sign-in. */
		unsigned char rnd[15];
		if ((e = util_random(rnd, sizeof(rnd))) != BW_OK)
			goto out;
		sodium_bin2base64(otp, sizeof(otp), rnd, sizeof(rnd),
				  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
		crypto_wipe(rnd, sizeof(rnd));
		password = otp;
	}
	if (json_object_get(in, "roles") != NULL &&
	    (e = rbac_resolve_roles(&req->op, d, json_object_get(in, "roles"), ids, &nids)) != BW_OK)
		goto out;
	if ((e = password_hash(http_req_hasher(req), password, phc, sizeof(phc))) != BW_OK) {
		e = response_error(req, e, "the server is busy; try again");
		goto out;
	}
	if ((e = db_begin(d)) != BW_OK)
		goto out;
	int64_t must = otp[0] != '\0';
	/* Unique by key and by skeleton: a look-alike of an existing address is 409 too. */
	const void *args[] = {email, addr.key, addr.skel, phc, &must, &now, &now, &now};
	e = rbac_run(d,
		     "INSERT INTO users (email, email_norm, email_skel, password_hash,"
		     " must_change_password, is_admin, created_at, updated_at, password_changed_at)"
		     " VALUES (?, ?, ?, ?, ?, 0, ?, ?, ?)",
		     "ssssiiii", args, &uid);
	if (e == BW_ERR_CONFLICT)
		e = response_error(req, e,
				   "field 'email': a user with that e-mail address (in any case or "
				   "spelling of it), or with one that looks the same, exists");
	if (e == BW_OK)
		e = rbac_set_user_roles(d, uid, ids, nids);
	if (e == BW_OK && (e = rbac_user_roles(d, uid, &list)) == BW_OK) {
		after = json_pack("{s:s, s:O}", "email", email, "roles", list);
		e = after ? audit_op(&req->op, "users", uid, "create", NULL, after) : BW_ERR_NOMEM;
	}
	e = rbac_finish(d, e);
out:
	crypto_wipe(phc, sizeof(phc));
	json_decref(list);
	json_decref(after);
	if (e == BW_OK) {
		json_t *users;
		if ((e = rbac_users_get(req, uid, &users)) == BW_OK) {
			json_t *u = json_incref(json_array_get(users, 0));
			json_decref(users);
			if (otp[0])
				json_object_set_new(u, "one_time_password", json_string(otp));
			e = response_json(req, 201, u);
		}
	}
	crypto_wipe(otp, sizeof(otp));
	json_decref(in);
	return e;
}

/*
 * Take the tenant's one lock for changes of who holds what (the built-in
 * admin role's row): on MariaDB, two transactions that each count the
 * other admins would otherwise both see one left and both go ahead.
 * SQLite's BEGIN IMMEDIATE serialises writers already.
 */
static bw_err
rbac_serialise(db *d)
{
	db_stmt *s;
	int row;
	bw_err e = db_prepare(d, "UPDATE roles SET updated_at = updated_at WHERE builtin = 'admin'",
			      &s);
	if (e != BW_OK)
		return e;
	e = db_step(s, &row);
	db_finalize(s);
	return e;
}

/*
 * Whether the signed-in user may change or delete user uid: only someone
 * who holds everything uid holds, so that nobody disables, demotes or
 * deletes a user more powerful than themselves. 403 (reply set) if not.
 */
bw_err
rbac_may_manage(struct op *op, int64_t uid)
{
	json_t *names;
	int64_t ids[RBAC_ROLES_PER_USER];
	size_t n;
	db *d;
	if (op->actor.kind == ACTOR_SYSTEM)
		return BW_OK; /* the operator, on the server itself */
	bw_err e = op_db(op, &d);
	if (e != BW_OK || (e = rbac_user_roles(d, uid, &names)) != BW_OK)
		return e;
	e = rbac_resolve_roles(op, d, names, ids, &n);
	json_decref(names);
	if (e == BW_ERR_DENIED)
		return op_fail(op, e,
			       "this user holds permissions you do not: only someone who holds "
			       "all of them can change or delete it");
	return e;
}

static bw_err
rbac_user_update(struct http_req *req)
{
	json_t *in, *old = NULL, *now_roles = NULL, *b = NULL, *a = NULL;
	db *d;
	int64_t ids[RBAC_ROLES_PER_USER], uid = rbac_path_id(req), others, exists, now = rbac_now();
	size_t nids = 0;
	bw_err e = http_req_json(req, &in);
	if (e != BW_OK)
		return e;
	const char *key;
	json_t *v, *roles = json_object_get(in, "roles"), *dis = json_object_get(in, "disabled");
	json_object_foreach(in, key, v)
	{
		if (strcmp(key, "roles") && strcmp(key, "disabled")) {
			e = response_error(req, BW_ERR_INVALID,
					   pool_printf(req->pool, "unknown field '%.64s'", key));
			goto out;
		}
	}
	if (dis != NULL && !json_is_boolean(dis)) {
		e = response_error(req, BW_ERR_INVALID, "field 'disabled' must be true or false");
		goto out;
	}
	if ((e = http_req_db(req, &d)) != BW_OK || (e = db_begin(d)) != BW_OK)
		goto out;
	b = json_object();
	a = json_object();
	/* Serialised, then checked: two admins cannot demote each other at once. */
	if ((e = rbac_serialise(d)) != BW_OK ||
	    (e = rbac_count(d, "SELECT COUNT(*) FROM users WHERE id = ?", uid, &exists)) != BW_OK)
		goto done;
	if (!exists) {
		e = response_error(req, BW_ERR_NOTFOUND, "no such user");
		goto done;
	}
	if ((e = rbac_may_manage(&req->op, uid)) != BW_OK ||
	    (roles != NULL && (e = rbac_resolve_roles(&req->op, d, roles, ids, &nids)) != BW_OK) ||
	    (e = rbac_user_roles(d, uid, &old)) != BW_OK)
		goto done;
	if (roles != NULL) {
		if ((e = rbac_set_user_roles(d, uid, ids, nids)) != BW_OK ||
		    (e = rbac_user_roles(d, uid, &now_roles)) != BW_OK)
			goto done;
		if (!json_equal(old, now_roles)) {
			json_object_set(b, "roles", old);
			json_object_set(a, "roles", now_roles);
		}
	}
	if (dis != NULL) {
		int64_t flag = json_is_true(dis);
		const void *args[] = {&flag, &now, &uid};
		/*
		 * The user's row locked before it changes and before anything is
		 * revoked (auth_user_lock): a token being minted or an MFA change
		 * of theirs either commits first, and is revoked below, or waits
		 * and then finds the user disabled.
		 */
		if ((e = auth_user_lock(d, uid)) != BW_OK ||
		    (e = rbac_run(d, "UPDATE users SET disabled = ?, updated_at = ? WHERE id = ?",
				  "iii", args, NULL)) != BW_OK)
			goto done;
		json_object_set_new(a, "disabled", json_boolean(flag));
		/*
		 * A disabled user is signed out everywhere at once, and their API
		 * tokens are revoked: enabling the user again brings none back.
		 */
		int64_t revoked = 0;
		if (flag && ((e = session_end_user(d, uid, 0)) != BW_OK ||
			     (e = token_revoke_user(d, uid, 0, &revoked)) != BW_OK))
			goto done;
		if (revoked > 0)
			json_object_set_new(a, "tokens_revoked", json_integer((json_int_t)revoked));
	}
	/* Whatever changed, an active admin must remain. */
	int64_t self_admin = 0;
	if ((e = rbac_other_admins(d, uid, &others)) != BW_OK ||
	    (e = rbac_count(d,
			    "SELECT COUNT(*) FROM users u WHERE u.id = ? AND u.disabled = 0 AND EXISTS"
			    " (SELECT 1 FROM user_roles ur JOIN roles r ON r.id = ur.role_id"
			    " WHERE ur.user_id = u.id AND r.builtin = 'admin')",
			    uid, &self_admin)) != BW_OK)
		goto done;
	if (others == 0 && self_admin == 0) {
		e = response_error(req, BW_ERR_CONFLICT,
				   "this is the last active admin: make another admin first");
		goto done;
	}
	if (json_object_size(a) > 0)
		e = audit_op(&req->op, "users", uid, "update", b, a);
done:
	e = rbac_finish(d, e);
out:
	json_decref(in);
	json_decref(old);
	json_decref(now_roles);
	json_decref(b);
	json_decref(a);
	if (e != BW_OK)
		return e;
	return rbac_user_show(req);
}

static bw_err
rbac_user_delete(struct http_req *req)
{
	db *d;
	int64_t uid = rbac_path_id(req), others, exists;
	json_t *before = NULL, *roles = NULL;
	bw_err e = http_req_db(req, &d);
	if (e != BW_OK)
		return e;
	if (uid == req->op.actor.user.id)
		return response_error(req, BW_ERR_CONFLICT, "you cannot delete yourself");
	if ((e = db_begin(d)) != BW_OK)
		return e;
	if ((e = rbac_serialise(d)) == BW_OK &&
	    (e = rbac_count(d, "SELECT COUNT(*) FROM users WHERE id = ?", uid, &exists)) == BW_OK &&
	    !exists)
		e = response_error(req, BW_ERR_NOTFOUND, "no such user");
	if (e == BW_OK)
		e = rbac_may_manage(&req->op, uid);
	if (e == BW_OK && (e = rbac_other_admins(d, uid, &others)) == BW_OK && others == 0)
		e = response_error(req, BW_ERR_CONFLICT,
				   "this is the last active admin: make another admin first");
	/* Records assigned to the user keep pointing at it: disable it instead. */
	if (e == BW_OK)
		e = module_referenced(&req->op, "users", uid);
	if (e == BW_OK && (e = rbac_user_roles(d, uid, &roles)) == BW_OK) {
		static const char *const gone[] = {
		    "DELETE FROM user_roles WHERE user_id = ?",
		    "DELETE FROM sessions WHERE user_id = ?",
		    "DELETE FROM api_tokens WHERE user_id = ?",
		    "DELETE FROM recovery_codes WHERE user_id = ?",
		    "DELETE FROM users WHERE id = ?",
		};
		const void *args[] = {&uid};
		for (size_t i = 0; e == BW_OK && i < BW_ARRAY_LEN(gone); i++)
			e = rbac_run(d, gone[i], "i", args, NULL);
	}
	if (e == BW_OK) {
		before = json_pack("{s:O}", "roles", roles);
		e = before ? audit_op(&req->op, "users", uid, "delete", before, NULL) : BW_ERR_NOMEM;
	}
	e = rbac_finish(d, e);
	json_decref(before);
	json_decref(roles);
	if (e != BW_OK)
		return e;
	return response_json(req, 200, json_pack("{s:I, s:b}", "id", (json_int_t)uid, "deleted", 1));
}

/* Changes to who may do what are admin requests: the IP allowlist applies. */
const struct route rbac_routes[] = {
	{HTTP_GET, "/api/v1/roles", rbac_roles_list, 0, "roles.view", ROUTE_BODY_NONE},
	{HTTP_POST, "/api/v1/roles", rbac_role_create, ROUTE_ADMIN, "roles.create", RBAC_BODY},
	{HTTP_GET, "/api/v1/roles/:id", rbac_role_show, 0, "roles.view", ROUTE_BODY_NONE},
	{HTTP_PATCH, "/api/v1/roles/:id", rbac_role_update, ROUTE_ADMIN, "roles.edit", RBAC_BODY},
	{HTTP_DELETE, "/api/v1/roles/:id", rbac_role_delete, ROUTE_ADMIN | ROUTE_DESTRUCTIVE,
	 "roles.delete", ROUTE_BODY_NONE},
	{HTTP_GET, "/api/v1/users", rbac_users_list, 0, "users.view", ROUTE_BODY_NONE},
	{HTTP_POST, "/api/v1/users", rbac_user_create, ROUTE_ADMIN, "users.create", 8192},
	{HTTP_GET, "/api/v1/users/:id", rbac_user_show, 0, "users.view", ROUTE_BODY_NONE},
	{HTTP_PATCH, "/api/v1/users/:id", rbac_user_update, ROUTE_ADMIN, "users.edit", 8192},
	{HTTP_DELETE, "/api/v1/users/:id", rbac_user_delete, ROUTE_ADMIN | ROUTE_DESTRUCTIVE,
	 "users.delete", ROUTE_BODY_NONE},
};
const size_t rbac_routes_count = BW_ARRAY_LEN(rbac_routes);
