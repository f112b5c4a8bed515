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

#define USERS_COLS                                                                       \
	"SELECT id, version, email, disabled, mfa_enabled, locked_until, must_change_password," \
	" created_at, display_name, sso_exempt, sso_provisioned FROM users"

static bw_err
users_row(db_stmt *s, json_t **out)
{
	int64_t id = db_col_int(s, 0);
	char lu[UTIL_TIME_LEN], ca[UTIL_TIME_LEN];
	/* locked_until: null when not locked (0 or a time past is kept as it was written). */
	*out = json_pack("{s:I, s:I, s:s, s:b, s:b, s:s?, s:b, s:s, s:s, s:b, s:b}", "id", (json_int_t)id,
			 "version", (json_int_t)db_col_int(s, 1), "email", db_col_text(s, 2),
			 "disabled", (int)db_col_int(s, 3), "mfa_enabled", (int)db_col_int(s, 4),
			 "locked_until",
			 db_col_int(s, 5) ? util_time_rfc3339(db_col_int(s, 5), lu) : NULL,
			 "must_change_password", (int)db_col_int(s, 6), "created_at",
			 util_time_rfc3339(db_col_int(s, 7), ca), "name", db_col_text(s, 8),
			 "sso_exempt", (int)db_col_int(s, 9), "sso_provisioned",
			 (int)db_col_int(s, 10));
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

/*
 * The user with id one as shown, in a one-element array (empty if none);
 * or, with p, the page of users p asks for (keyset on id) and p->total.
 */
static bw_err
users_get(struct op *op, int64_t one, struct http_req *req, struct page *p, json_t **out)
{
	db *d;
	db_stmt *s;
	int row, idx = 1;
	bw_err e = op_db(op, &d);
	json_t *list = json_array();
	const char *sql = USERS_COLS " WHERE id = ? ORDER BY id";
	*out = NULL;
	if (e != BW_OK || list == NULL) {
		json_decref(list);
		return e != BW_OK ? e : BW_ERR_NOMEM;
	}
	if (p != NULL) {
		const char *k = page_cond(req, p), *o = page_order_sql(req, p);
		sql = k && o ? pool_printf(req->pool, USERS_COLS "%s%s%s", k[0] ? " WHERE " : "", k, o)
			     : NULL;
		if (sql == NULL) {
			json_decref(list);
			return BW_ERR_NOMEM;
		}
	}
	if ((e = db_prepare(d, sql, &s)) != BW_OK) {
		json_decref(list);
		return e;
	}
	if (p == NULL)
		e = DB_BIND(s, DB_INT(one));
	else if ((e = page_bind(p, s, &idx)) == BW_OK)
		e = page_bind_limit(p, s, &idx);
	while (e == BW_OK && (e = db_step(s, &row)) == BW_OK && row) {
		json_t *o;
		if (p != NULL && page_full(p))
			break;
		if ((e = users_row(s, &o)) == BW_OK)
			json_array_append_new(list, o);
		if (e == BW_OK && p != NULL)
			page_seen_key(p, db_col_int(s, 0), db_col_int(s, 0));
	}
	db_finalize(s);
	if (e == BW_OK)
		e = users_add_roles(d, list);
	if (e == BW_OK && p != NULL)
		e = DB_QUERY_INT(d, &p->total, "SELECT COUNT(*) FROM users");
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
	bw_err e = id ? users_get(op, id, NULL, NULL, &list) : BW_ERR_NOTFOUND;
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
	struct http_query q;
	struct page p;
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
	    (e = users_get(&req->op, 0, req, &p, &list)) != BW_OK)
		return e;
	return page_reply(req, &p, &q, list);
}

static bw_err
users_show(struct http_req *req)
{
	json_t *u;
	bw_err e = users_get_one(&req->op, users_path_id(req), &u);
	if (e != BW_OK)
		return e;
	return http_reply_versioned(req, 200, u);
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
		e = http_reply_versioned(req, 201, u);
	}
	crypto_wipe(otp, sizeof(otp));
	json_decref(in);
	return e;
}

/*
 * PATCH and DELETE take If-Match: each version it names is tried in turn
 * until one is the user's (a 412 changed nothing); without it, one try.
 */
static bw_err
users_update(struct http_req *req)
{
	struct http_if_match im;
	json_t *in;
	bw_err e = http_req_if_match(req, &im);
	if (e != BW_OK || (e = http_req_json(req, &in)) != BW_OK)
		return e;
	for (size_t i = 0; i < im.n; i++) {
		if (i > 0)
			op_clear(&req->op);
		e = user_update(&req->op, users_path_id(req), in, im.version[i]);
		if (e != BW_ERR_PRECONDITION)
			break;
	}
	json_decref(in);
	return e == BW_OK ? users_show(req) : e;
}

static bw_err
users_delete(struct http_req *req)
{
	struct http_if_match im;
	int64_t id = users_path_id(req);
	bw_err e = http_req_if_match(req, &im);
	if (e != BW_OK)
		return e;
	for (size_t i = 0; i < im.n; i++) {
		if (i > 0)
			op_clear(&req->op);
		e = user_delete(&req->op, id, im.version[i]);
		if (e != BW_ERR_PRECONDITION)
			break;
	}
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
