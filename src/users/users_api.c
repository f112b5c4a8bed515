/*
 * Users through the API: each change is an operation of users.c (the
 * handler parses, runs it and shows the user as it is now); the reads are
 * here.
 */
#include "users_api.h"

#include "../crypto/crypto.h"
#include "../rbac/rbac.h"
#include "users.h"

/* The :id of the path, or 0 (no such user) when it is not one (http_req_id). */
static int64_t
users_path_id(struct http_req *req)
{
	int64_t v;
	return http_req_id(req, "id", &v) == BW_OK ? v : 0;
}

#define USERS_COLS                                                                              \
	"SELECT id, email, disabled, mfa_enabled, locked_until, must_change_password, created_at" \
	" FROM users"

static bw_err
users_row(db_stmt *s, json_t **out)
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
users_add_roles(db *d, json_t *users)
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

/* Every user (one: 0), or the one with id one (an empty array if none), as shown. */
static bw_err
users_get(struct op *op, int64_t one, json_t **out)
{
	db *d;
	db_stmt *s;
	int row;
	bw_err e = op_db(op, &d);
	json_t *list = json_array();
	*out = NULL;
	if (e != BW_OK || list == NULL) {
		json_decref(list);
		return e != BW_OK ? e : BW_ERR_NOMEM;
	}
	if ((e = db_prepare(d, one ? USERS_COLS " WHERE id = ? ORDER BY id" : USERS_COLS " ORDER BY id",
			    &s)) != BW_OK) {
		json_decref(list);
		return e;
	}
	if (one)
		e = DB_BIND(s, DB_INT(one));
	while (e == BW_OK && (e = db_step(s, &row)) == BW_OK && row) {
		json_t *o;
		if ((e = users_row(s, &o)) == BW_OK)
			json_array_append_new(list, o);
	}
	db_finalize(s);
	if (e == BW_OK)
		e = users_add_roles(d, list);
	if (e != BW_OK) {
		json_decref(list);
		return e;
	}
	*out = list;
	return BW_OK;
}

/* User id as shown; BW_ERR_NOTFOUND (recorded) if there is none. */
static bw_err
users_get_one(struct op *op, int64_t id, json_t **out)
{
	json_t *list;
	bw_err e = id ? users_get(op, id, &list) : BW_ERR_NOTFOUND;
	*out = NULL;
	if (e == BW_OK && json_array_size(list) == 0) {
		json_decref(list);
		e = BW_ERR_NOTFOUND;
	}
	if (e == BW_ERR_NOTFOUND)
		return op_fail(op, e, "no such user");
	if (e != BW_OK)
		return e;
	*out = json_incref(json_array_get(list, 0));
	json_decref(list);
	return BW_OK;
}

static bw_err
users_list(struct http_req *req)
{
	json_t *list;
	bw_err e = users_get(&req->op, 0, &list);
	if (e != BW_OK)
		return e;
	return response_json(req, 200, json_pack("{s:o}", "users", list));
}

static bw_err
users_show(struct http_req *req)
{
	json_t *u;
	bw_err e = users_get_one(&req->op, users_path_id(req), &u);
	if (e != BW_OK)
		return e;
	return response_json(req, 200, u);
}

static bw_err
users_create(struct http_req *req)
{
	json_t *in, *u = NULL;
	char otp[USER_OTP_SIZE];
	int64_t id;
	bw_err e = http_req_json(req, &in);
	if (e != BW_OK)
		return e;
	if ((e = user_create(&req->op, http_req_hasher(req), in, &id, otp)) == BW_OK &&
	    (e = users_get_one(&req->op, id, &u)) == BW_OK) {
		/* The one-time password is shown this once. */
		if (otp[0] != '\0')
			json_object_set_new(u, "one_time_password", json_string(otp));
		e = response_json(req, 201, u);
	}
	crypto_wipe(otp, sizeof(otp));
	json_decref(in);
	return e;
}

static bw_err
users_update(struct http_req *req)
{
	json_t *in;
	bw_err e = http_req_json(req, &in);
	if (e != BW_OK)
		return e;
	e = user_update(&req->op, users_path_id(req), in);
	json_decref(in);
	return e == BW_OK ? users_show(req) : e;
}

static bw_err
users_delete(struct http_req *req)
{
	int64_t id = users_path_id(req);
	bw_err e = user_delete(&req->op, id);
	if (e != BW_OK)
		return e;
	return response_json(req, 200, json_pack("{s:I, s:b}", "id", (json_int_t)id, "deleted", 1));
}

/* Changes to who may do what are admin requests: the IP allowlist applies. */
const struct route users_routes[] = {
	{HTTP_GET, "/api/v1/users", users_list, 0, "users.view", ROUTE_BODY_NONE},
	{HTTP_POST, "/api/v1/users", users_create, ROUTE_ADMIN, "users.create", 8192},
	{HTTP_GET, "/api/v1/users/:id", users_show, 0, "users.view", ROUTE_BODY_NONE},
	{HTTP_PATCH, "/api/v1/users/:id", users_update, ROUTE_ADMIN, "users.edit", 8192},
	{HTTP_DELETE, "/api/v1/users/:id", users_delete, ROUTE_ADMIN | ROUTE_DESTRUCTIVE,
	 "users.delete", ROUTE_BODY_NONE},
};
const size_t users_routes_count = BW_ARRAY_LEN(users_routes);
