/*
 * Roles through the API (users are in src/users/users_api.c). Nobody
 * grants what they do not hold themselves: a role is made, changed or
 * deleted only by someone who holds every permission it lists. Every
 * change is audited in the transaction that makes it.
 */
#include "rbac_api.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../audit/audit.h"

#define RBAC_BODY 65536
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

/*
 * Begin a role change: the transaction, then what op_tx runs first for a
 * signed-in caller (op->tx_begin: the caller's session or token still
 * there, the user not disabled, the route's permission held now).
 * BW_OK inside the transaction; otherwise none is left open.
 */
static bw_err
rbac_begin(struct http_req *req, db *d)
{
	bw_err e = db_begin(d);
	if (e != BW_OK)
		return op_unavailable(&req->op);
	if (req->op.tx_begin != NULL && (e = req->op.tx_begin(&req->op)) != BW_OK)
		(void)db_rollback(d);
	return e;
}

static bw_err
rbac_finish(db *d, bw_err e)
{
	if (e == BW_OK)
		return db_commit(d);
	(void)db_rollback(d);
	return e;
}

/* --- roles ------------------------------------------------------------------ */

static bw_err
rbac_role_json(struct op *op, const struct rbac_role *r, json_t **out)
{
	json_t *perms;
	bw_err e = rbac_role_perms(op, r, &perms);
	if (e != BW_OK)
		return e;
	*out = json_pack("{s:I, s:I, s:s, s:s, s:b, s:s?, s:o}", "id", (json_int_t)r->id, "version",
			 (json_int_t)r->version, "name", r->name, "description", r->description,
			 "builtin", r->builtin[0] != '\0', "builtin_key",
			 r->builtin[0] ? r->builtin : NULL, "permissions", perms);
	return *out ? BW_OK : BW_ERR_NOMEM;
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
	struct http_query q;
	struct page p;
	int idx = 1;
	page_init(&p);
	bw_err e = http_query_parse(req, &q);
	for (size_t i = 0; e == BW_OK && i < q.n; i++) {
		int taken;
		if ((e = page_param(req, &p, q.key[i], q.val[i], &taken)) == BW_OK && !taken)
			return response_error(
			    req, BW_ERR_INVALID,
			    pool_printf(req->pool, "unknown query parameter '%.64s' (limit, cursor)",
					q.key[i]));
	}
	if (e != BW_OK || (e = page_order(req, &p, "id", "id", 0, PAGE_INT)) != BW_OK ||
	    (e = http_req_db(req, &d)) != BW_OK)
		return e;
	const char *kc = page_cond(req, &p), *ord = page_order_sql(req, &p);
	const char *sql = kc && ord ? pool_printf(req->pool,
						  "SELECT id, name, description, builtin, version FROM roles%s%s%s",
						  kc[0] ? " WHERE " : "", kc, ord)
				    : NULL;
	if (sql == NULL)
		return BW_ERR_NOMEM;
	json_t *list = json_array();
	struct rbac_role r;
	if ((e = db_prepare(d, sql, &s)) != BW_OK) {
		json_decref(list);
		return e;
	}
	if ((e = page_bind(&p, s, &idx)) == BW_OK)
		e = page_bind_limit(&p, s, &idx);
	/* Collect first: a role's permissions need their own statement. */
	struct rbac_role *v = NULL;
	size_t n = 0, cap = 0;
	while (e == BW_OK && (e = db_step(s, &row)) == BW_OK && row) {
		if (page_full(&p))
			break;
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
		v[n].version = db_col_int(s, 4);
		page_seen_key(&p, v[n].id, v[n].id);
		n++;
	}
	db_finalize(s);
	if (e == BW_OK)
		e = DB_QUERY_INT(d, &p.total, "SELECT COUNT(*) FROM roles");
	for (size_t i = 0; e == BW_OK && i < n; i++) {
		json_t *o;
		r = v[i];
		if ((e = rbac_role_json(&req->op, &r, &o)) == BW_OK)
			json_array_append_new(list, o);
	}
	free(v);
	if (e != BW_OK) {
		json_decref(list);
		return e;
	}
	return page_reply(req, &p, &q, list);
}

/*
 * Inside a role change's transaction, once the caller may make it: role
 * id held to the request's If-Match (im). With a version asked for, the
 * role's row is locked first (a write that leaves it as it is), so the
 * version read stays the role's until the commit. BW_OK, or 404 / 412
 * (recorded) with nothing written.
 */
static bw_err
rbac_role_precondition(struct http_req *req, db *d, int64_t id, const struct http_if_match *im)
{
	int64_t version = 0;
	if (im->n == 1 && im->version[0] == 0)
		return BW_OK; /* no If-Match, or "*" */
	bw_err e = DB_RUN(d, "UPDATE roles SET id = id WHERE id = ?", DB_INT(id));
	if (e == BW_OK)
		e = DB_QUERY_INT(d, &version, "SELECT version FROM roles WHERE id = ?", DB_INT(id));
	if (e != BW_OK)
		return e;
	if (version == 0)
		return response_error(req, BW_ERR_NOTFOUND, "no such role");
	for (size_t i = 0; i < im->n; i++)
		if (im->version[i] == version)
			return BW_OK;
	return response_error(req, BW_ERR_PRECONDITION,
			      pool_printf(req->pool,
					  "this role has changed since it was read (it is now at"
					  " version %lld): read it again, then retry",
					  (long long)version));
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
	if (e != BW_OK || (e = rbac_role_json(&req->op, &r, &o)) != BW_OK)
		return e;
	return http_reply_versioned(req, 200, o);
}

/* Replace a custom role's permission rows by perms. */
static bw_err
rbac_role_set_perms(db *d, int64_t id, json_t *perms)
{
	bw_err e = DB_RUN(d, "DELETE FROM role_permissions WHERE role_id = ?", DB_INT(id));
	size_t i;
	json_t *v;
	json_array_foreach(perms, i, v)
	{
		if (e != BW_OK)
			break;
		e = DB_RUN(d, "INSERT INTO role_permissions (role_id, permission) VALUES (?, ?)",
			   DB_INT(id), DB_TEXT(json_string_value(v)));
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
	int64_t taken;
	bw_err e = DB_QUERY_INT(d, &taken,
				"SELECT 1 FROM roles WHERE LOWER(name) = LOWER(?) AND id <> ?",
				DB_TEXT(name), DB_INT(id));
	if (e == BW_OK && taken)
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
	    (e = rbac_begin(req, d)) != BW_OK)
		goto out;
	int64_t nroles = 0;
	if ((e = DB_QUERY_INT(d, &nroles, "SELECT COUNT(*) FROM roles WHERE id > ?", DB_INT(0))) ==
		BW_OK &&
	    nroles >= RBAC_ROLES_MAX)
		e = response_error(req, BW_ERR_CONFLICT,
				   pool_printf(req->pool, "a tenant has at most %d roles", RBAC_ROLES_MAX));
	if (e == BW_OK && (e = rbac_name_taken(req, d, name, 0)) == BW_OK)
		e = DB_INSERT(d, &id,
			      "INSERT INTO roles (name, description, builtin, created_at, updated_at)"
			      " VALUES (?, ?, '', ?, ?)",
			      DB_TEXT(name), DB_TEXT(desc), DB_INT(now), DB_INT(now));
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
			e = rbac_role_json(&req->op, &r, &shown);
	}
out:
	json_decref(in);
	json_decref(perms);
	return e == BW_OK ? http_reply_versioned(req, 201, shown) : e;
}

static bw_err
rbac_role_update(struct http_req *req)
{
	json_t *in, *perms = NULL, *old = NULL, *shown = NULL, *b = NULL, *a = NULL;
	struct http_if_match im;
	db *d;
	struct rbac_role r;
	int64_t now = rbac_now();
	bw_err e = http_req_if_match(req, &im);
	if (e != BW_OK || (e = http_req_json(req, &in)) != BW_OK)
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
	if ((e = rbac_begin(req, d)) != BW_OK)
		goto out;
	/* A role is changed only by someone who holds all it holds now, too. */
	if ((e = rbac_role_perms(&req->op, &r, &old)) != BW_OK ||
	    (e = rbac_may_hold_role(&req->op, old)) != BW_OK ||
	    (e = rbac_role_precondition(req, d, r.id, &im)) != BW_OK)
		goto done;
	b = json_object();
	a = json_object();
	if (nj && strcmp(json_string_value(nj), r.name) != 0) {
		if ((e = rbac_name_taken(req, d, json_string_value(nj), r.id)) == BW_OK)
			e = DB_RUN(d, "UPDATE roles SET name = ?, updated_at = ? WHERE id = ?",
				   DB_TEXT(json_string_value(nj)), DB_INT(now), DB_INT(r.id));
		if (e == BW_ERR_CONFLICT)
			e = response_error(req, e, "a role with that name exists");
		json_object_set_new(b, "name", json_string(r.name));
		json_object_set(a, "name", nj);
	}
	if (e == BW_OK && dj && strcmp(json_string_value(dj), r.description) != 0) {
		e = DB_RUN(d, "UPDATE roles SET description = ?, updated_at = ? WHERE id = ?",
			   DB_TEXT(json_string_value(dj)), DB_INT(now), DB_INT(r.id));
		json_object_set_new(b, "description", json_string(r.description));
		json_object_set(a, "description", dj);
	}
	if (e == BW_OK && perms != NULL && !json_equal(perms, old)) {
		e = rbac_role_set_perms(d, r.id, perms);
		json_object_set(b, "permissions", old);
		json_object_set(a, "permissions", perms);
	}
	/* Something changed: a new version (permissions live in their own rows). */
	if (e == BW_OK && json_object_size(a) > 0 &&
	    (e = DB_RUN(d, "UPDATE roles SET version = version + 1, updated_at = ? WHERE id = ?",
			DB_INT(now), DB_INT(r.id))) == BW_OK)
		e = audit_op(&req->op, "roles", r.id, "update", b, a);
done:
	if ((e = rbac_finish(d, e)) == BW_OK && (e = rbac_role_get(d, r.id, &r)) == BW_OK)
		e = rbac_role_json(&req->op, &r, &shown);
out:
	json_decref(in);
	json_decref(perms);
	json_decref(old);
	json_decref(b);
	json_decref(a);
	return e == BW_OK ? http_reply_versioned(req, 200, shown) : e;
}

static bw_err
rbac_role_delete(struct http_req *req)
{
	db *d;
	struct rbac_role r;
	struct http_if_match im;
	int64_t users;
	json_t *perms = NULL, *before = NULL;
	bw_err e = http_req_if_match(req, &im);
	if (e != BW_OK || (e = http_req_db(req, &d)) != BW_OK)
		return e;
	if ((e = rbac_begin(req, d)) != BW_OK)
		return e;
	if ((e = rbac_role_get(d, rbac_path_id(req), &r)) == BW_ERR_NOTFOUND)
		e = response_error(req, e, "no such role");
	else if (e == BW_OK && r.builtin[0] != '\0')
		e = response_error(req, BW_ERR_CONFLICT, "built-in roles cannot be deleted");
	else if (e == BW_OK &&
		 (e = DB_QUERY_INT(d, &users, "SELECT COUNT(*) FROM user_roles WHERE role_id = ?",
				   DB_INT(r.id))) == BW_OK &&
		 users > 0)
		e = response_error(req, BW_ERR_CONFLICT,
				   pool_printf(req->pool,
					       "%lld user(s) hold this role: take it from them first",
					       (long long)users));
	if (e == BW_OK && (e = rbac_role_perms(&req->op, &r, &perms)) == BW_OK &&
	    (e = rbac_may_hold_role(&req->op, perms)) == BW_OK &&
	    (e = rbac_role_precondition(req, d, r.id, &im)) == BW_OK) {
		if ((e = DB_RUN(d, "DELETE FROM role_permissions WHERE role_id = ?", DB_INT(r.id))) ==
		    BW_OK)
			e = DB_RUN(d, "DELETE FROM roles WHERE id = ?", DB_INT(r.id));
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
/* Changes to who may do what are admin requests: the IP allowlist applies. */
const struct route rbac_routes[] = {
	{HTTP_GET, "/api/v1/roles", rbac_roles_list, 0, "roles.view", ROUTE_BODY_NONE},
	{HTTP_POST, "/api/v1/roles", rbac_role_create, ROUTE_ADMIN, "roles.create", RBAC_BODY},
	{HTTP_GET, "/api/v1/roles/:id", rbac_role_show, 0, "roles.view", ROUTE_BODY_NONE},
	{HTTP_PATCH, "/api/v1/roles/:id", rbac_role_update, ROUTE_ADMIN, "roles.edit", RBAC_BODY},
	{HTTP_DELETE, "/api/v1/roles/:id", rbac_role_delete, ROUTE_ADMIN | ROUTE_DESTRUCTIVE,
	 "roles.delete", ROUTE_BODY_NONE},
};
const size_t rbac_routes_count = BW_ARRAY_LEN(rbac_routes);
