/*
 * The audit log over HTTP: GET /api/v1/reporting/audit (filtered, paged)
 * and the per-entity trail the module engine mounts on
 * GET /api/v1/<module>/:id/audit. Rows are opened (details decrypted) on
 * the way out; a row that does not open fails the request rather than
 * being shown half.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../crypto/crypto.h"
#include "../http/http.h"
#include "audit_api.h"

#define AUDIT_CSV_PAGE_MAX 10000
#define AUDIT_VALUE_MAX 128  /* bytes of one decoded name or value */
#define AUDIT_INT_MAX 0x7fffffffffffffffLL

enum audit_param {
	AP_USER_ID,
	AP_ENTITY,
	AP_ENTITY_ID,
	AP_ACTION,
	AP_FROM,
	AP_TO,
	AP_LIMIT,
	AP_CURSOR,
	AP_FORMAT,
	AP__COUNT
};

static const char *const audit_param_names[AP__COUNT] = {
	[AP_USER_ID] = "user_id", [AP_ENTITY] = "entity",   [AP_ENTITY_ID] = "entity_id",
	[AP_ACTION] = "action",   [AP_FROM] = "from",       [AP_TO] = "to",
	[AP_LIMIT] = "limit",     [AP_CURSOR] = "cursor",   [AP_FORMAT] = "format",
};

struct audit_query {
	int have[AP__COUNT];
	int64_t user_id, entity_id, from, to;
	struct http_query hq;
	struct page p; /* newest first: keyset on seq */
	int csv;
	int trail; /* one row's trail: empty means no such row */
	char entity[65], action[65];
};

/* [a-z0-9_.-], 1..64 bytes: the shape of entity and action names. */
static int
audit_name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 64)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' ||
		      s[i] == '.' || s[i] == '-'))
			return 0;
	return 1;
}

static int
audit_int(const char *s, int64_t min, int64_t max, int64_t *out)
{
	long v;
	if (util_parse_long(s, (long)min, (long)max, &v) != BW_OK)
		return 0;
	*out = v;
	return 1;
}

/* 400 naming the parameter (its name is bounded and shown JSON-escaped). */
static bw_err
audit_bad_param(struct http_req *req, const char *name, const char *why)
{
	const char *msg = pool_printf(req->pool, "query parameter '%.64s': %s", name, why);
	return response_error(req, BW_ERR_INVALID, msg ? msg : "bad query parameter");
}

/*
 * Parse req->query into q. allowed is a bit mask of the parameters this
 * route takes. BW_OK, or the 400 reply set.
 */
static bw_err
audit_parse_query(struct http_req *req, unsigned allowed, struct audit_query *q)
{
	memset(q, 0, sizeof(*q));
	struct http_query *hq = &q->hq;
	page_init(&q->p);
	q->p.id_col = "seq";
	bw_err e = http_query_parse(req, hq);
	if (e != BW_OK)
		return e;
	for (size_t qi = 0; qi < hq->n; qi++) {
		const char *name = hq->key[qi], *val = hq->val[qi];
		int k = -1;
		for (int i = 0; i < AP__COUNT; i++)
			if ((allowed & (1u << i)) && strcmp(name, audit_param_names[i]) == 0)
				k = i;
		if (k < 0)
			return audit_bad_param(req, name, "unknown parameter");
		if (val[0] == '\0' || strlen(val) > AUDIT_VALUE_MAX)
			return audit_bad_param(req, name, "needs a value (percent-encoded, at most 128 bytes)");
		q->have[k] = 1;
		int64_t v;
		switch ((enum audit_param)k) {
		case AP_USER_ID:
			if (!audit_int(val, 0, AUDIT_INT_MAX, &q->user_id))
				return audit_bad_param(req, name, "a user id (integer >= 0)");
			break;
		case AP_ENTITY_ID:
			if (!audit_int(val, 0, AUDIT_INT_MAX, &q->entity_id))
				return audit_bad_param(req, name, "an id (integer >= 0)");
			break;
		case AP_FROM:
		case AP_TO:
			if (util_parse_rfc3339(val, k == AP_FROM ? &q->from : &q->to) != BW_OK)
				return audit_bad_param(req, name, "an RFC 3339 time (2026-12-02T03:31:18Z)");
			break;
		case AP_ENTITY:
		case AP_ACTION:
			if (!audit_name_ok(val))
				return audit_bad_param(req, name, "1 to 64 of a-z, 0-9, '_', '.', '-'");
			memcpy(k == AP_ENTITY ? q->entity : q->action, val, strlen(val) + 1); /* <= 64 */
			break;
		case AP_LIMIT:
			if (!audit_int(val, 1, AUDIT_CSV_PAGE_MAX, &v))
				return audit_bad_param(req, name, "1 to 100 (10000 with format=csv)");
			q->p.limit = (long)v;
			break;
		case AP_CURSOR:
			q->p.cursor = val;
			break;
		case AP_FORMAT:
			if (strcmp(val, "json") == 0)
				break;
			if (strcmp(val, "csv") == 0) {
				q->csv = 1;
				break;
			}
			return audit_bad_param(req, name, "json or csv");
		case AP__COUNT:
		default:
			abort();
		}
	}
	/* An export takes bigger pages than a screen does. */
	if (q->csv && !q->have[AP_LIMIT])
		q->p.limit = AUDIT_CSV_PAGE_MAX;
	if (!q->csv && q->p.limit > PAGE_LIMIT_MAX)
		return audit_bad_param(req, "limit", "1 to 100 (10000 with format=csv)");
	if (q->have[AP_FROM] && q->have[AP_TO] && q->from > q->to)
		return audit_bad_param(req, "from", "later than to");
	return page_order(req, &q->p, "-seq", "seq", 1, PAGE_INT);
}

static const char *const audit_columns[] = {
	"seq",	     "at",	   "actor",  "user_id", "token_id", "actor_label", "client_ip",
	"request_id", "entity", "entity_id", "action", "before",   "after",	    "effects"};

/* One opened row as the API shows it; NULL when it does not open. */
static json_t *
audit_row_json(struct http_req *req, int64_t id, const unsigned char *sealed, size_t len)
{
	char *pt = NULL;
	size_t ptlen = 0;
	json_error_t je;
	if (field_open(http_req_tenancy(req), req->op.tenant, "audit_log", "details", id, sealed, len,
		       &pt, &ptlen) != BW_OK)
		return NULL;
	json_t *c = json_loadb(pt, ptlen, 0, &je);
	crypto_wipe(pt, ptlen);
	free(pt);
	if (!json_is_object(c)) {
		json_decref(c);
		return NULL;
	}
	json_t *o = json_object();
	for (size_t i = 0; o != NULL && i < BW_ARRAY_LEN(audit_columns); i++) {
		json_t *v = json_object_get(c, audit_columns[i]), *t = NULL;
		char at[UTIL_TIME_LEN];
		/* The sealed content keeps Unix seconds (the chain is over it); shown as RFC 3339. */
		if (json_is_integer(v) && strcmp(audit_columns[i], "at") == 0)
			v = t = json_string(util_time_rfc3339(json_integer_value(v), at));
		int r = json_object_set(o, audit_columns[i], v ? v : json_null());
		json_decref(t);
		if (r != 0) {
			json_decref(o);
			o = NULL;
		}
	}
	json_decref(c);
	return o;
}


/*
 * A page as CSV: a header line, then one line per row, before/after as
 * JSON text. A page that comes back with limit rows may have a next one
 * (the cursor of its last row is not given: CSV has no envelope; page
 * with from and to).
 */
static bw_err
audit_csv(struct http_req *req, json_t *data)
{
	struct csv c = {0};
	size_t i;
	json_t *row;
	for (size_t k = 0; k < BW_ARRAY_LEN(audit_columns); k++) {
		json_t *name = json_string(audit_columns[k]);
		csv_cell(&c, name, k == 0);
		json_decref(name);
	}
	csv_end_line(&c);
	json_array_foreach(data, i, row)
	{
		for (size_t k = 0; k < BW_ARRAY_LEN(audit_columns); k++)
			csv_cell(&c, json_object_get(row, audit_columns[k]), k == 0);
		csv_end_line(&c);
	}
	size_t nrows = json_array_size(data);
	json_decref(data);
	if (c.failed) {
		free(c.b);
		return response_error(req, BW_ERR_TOO_LARGE, "the export is too large: narrow it");
	}
	/* An export of the log is itself an event in it. */
	db *d;
	bw_err e = http_req_db(req, &d);
	if (e == BW_OK && (e = db_begin(d)) == BW_OK) {
		json_t *after = json_pack("{s:s, s:I, s:s?}", "format", "csv", "rows",
					  (json_int_t)nrows, "query", req->query);
		e = after ? audit_op(&req->op, "audit", 0, "export", NULL, after) : BW_ERR_NOMEM;
		json_decref(after);
		if (e == BW_OK)
			e = db_commit(d);
		else
			(void)db_rollback(d);
	}
	if (e != BW_OK) {
		free(c.b);
		return e;
	}
	return response_raw(req, 200, "text/csv; charset=utf-8", "attachment; filename=\"audit.csv\"",
			    c.b, c.len);
}

/* The compiled-in fragments a list's WHERE clause is made of (the values are bound). */
static const char *const audit_cond[AP__COUNT] = {
	[AP_USER_ID] = " AND user_id = ?", [AP_ENTITY] = " AND entity = ?",
	[AP_ENTITY_ID] = " AND entity_id = ?", [AP_ACTION] = " AND action = ?",
	[AP_FROM] = " AND at >= ?", [AP_TO] = " AND at <= ?",
};

/* One row's trail: its own rows, and the rows of changes that touched it. */
static const char audit_trail_cond[] =
	" AND ((entity = ? AND entity_id = ?) OR seq IN (SELECT seq FROM audit_links"
	" WHERE entity = ? AND entity_id = ?))";

/* The conditions of q after "WHERE 1 = 1" into out (the fragments are constants that fit). */
static void
audit_where(const struct audit_query *q, char *out, size_t cap)
{
	size_t n = (size_t)snprintf(out, cap, "%s", q->trail ? audit_trail_cond : "");
	for (int i = 0; i < AP__COUNT; i++)
		if (q->have[i] && audit_cond[i] != NULL && !q->trail)
			n += (size_t)snprintf(out + n, cap - n, "%s", audit_cond[i]);
	if (n >= cap)
		abort();
}

/* Bind audit_where()'s values from *idx on. */
static bw_err
audit_bind(const struct audit_query *q, db_stmt *s, int *idx)
{
	bw_err e = BW_OK;
	for (int k = 0; q->trail && e == BW_OK && k < 2; k++)
		if ((e = db_bind_text(s, (*idx)++, q->entity)) == BW_OK)
			e = db_bind_int(s, (*idx)++, q->entity_id);
	for (int i = 0; e == BW_OK && !q->trail && i < AP__COUNT; i++) {
		if (!q->have[i] || audit_cond[i] == NULL)
			continue;
		switch ((enum audit_param)i) {
		case AP_USER_ID:
			e = db_bind_int(s, (*idx)++, q->user_id);
			break;
		case AP_ENTITY:
			e = db_bind_text(s, (*idx)++, q->entity);
			break;
		case AP_ENTITY_ID:
			e = db_bind_int(s, (*idx)++, q->entity_id);
			break;
		case AP_ACTION:
			e = db_bind_text(s, (*idx)++, q->action);
			break;
		case AP_FROM:
			e = db_bind_int(s, (*idx)++, q->from);
			break;
		case AP_TO:
			e = db_bind_int(s, (*idx)++, q->to);
			break;
		case AP_LIMIT:
		case AP_CURSOR:
		case AP_FORMAT:
		case AP__COUNT:
		default:
			abort();
		}
	}
	return e;
}

/* The list's total: one COUNT under the same conditions (where: audit_where()'s). */
static bw_err
audit_count(db *d, const char *where, struct audit_query *q)
{
	char sql[640];
	db_stmt *s;
	int row = 0, idx = 1;
	if ((size_t)snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM audit_log WHERE 1 = 1%s",
			     where) >= sizeof(sql))
		abort();
	bw_err e = db_prepare(d, sql, &s);
	if (e != BW_OK)
		return e;
	if ((e = audit_bind(q, s, &idx)) == BW_OK && (e = db_step(s, &row)) == BW_OK)
		q->p.total = row ? db_col_int(s, 0) : 0;
	db_finalize(s);
	return e;
}

/*
 * Run the page query: the WHERE clause is put together only from the
 * compiled-in fragments above, the values are bound; newest first, a
 * keyset page on seq (page.c).
 */
static bw_err
audit_page(struct http_req *req, struct audit_query *q)
{
	char where[512], sql[768];
	db *d;
	db_stmt *s = NULL;
	int row, idx = 1;
	bw_err e = http_req_db(req, &d);
	if (e != BW_OK)
		return e;
	audit_where(q, where, sizeof(where));
	const char *kc = page_cond(req, &q->p), *ord = page_order_sql(req, &q->p);
	if (kc == NULL || ord == NULL)
		return BW_ERR_NOMEM;
	if ((size_t)snprintf(sql, sizeof(sql), "SELECT id, seq, details FROM audit_log WHERE 1 = 1%s%s%s%s",
			     where, kc[0] ? " AND " : "", kc, ord) >= sizeof(sql))
		abort(); /* the fragments are constants that fit */
	json_t *data = json_array();
	if (data == NULL)
		return BW_ERR_NOMEM;
	e = db_prepare(d, sql, &s);
	if (e == BW_OK)
		e = audit_bind(q, s, &idx);
	/* One row more than the page says whether there is a next one. */
	if (e == BW_OK && (e = page_bind(&q->p, s, &idx)) == BW_OK)
		e = page_bind_limit(&q->p, s, &idx);
	int64_t bad = 0;
	while (e == BW_OK && (e = db_step(s, &row)) == BW_OK && row) {
		if (page_full(&q->p))
			break;
		size_t len;
		const unsigned char *v = db_col_blob(s, 2, &len);
		json_t *o = audit_row_json(req, db_col_int(s, 0), v, len);
		if (o == NULL) {
			bad = db_col_int(s, 1);
			break;
		}
		json_array_append_new(data, o);
		page_seen_key(&q->p, db_col_int(s, 1), db_col_int(s, 1));
	}
	db_finalize(s);
	if (e == BW_OK && !q->csv && bad == 0)
		e = audit_count(d, where, q);
	if (e != BW_OK) {
		json_decref(data);
		return op_unavailable(&req->op);
	}
	if (bad != 0) {
		json_decref(data);
		log_error("tenant %s: audit row %lld does not open", req->op.tenant, (long long)bad);
		const char *msg = pool_printf(req->pool,
					      "audit row %lld does not open; run 'bulwark audit verify'",
					      (long long)bad);
		return response_error(req, BW_ERR_CRYPTO, msg);
	}
	/*
	 * A row's trail with nothing in it on its first page: the row never
	 * existed here (every row written through the API has its create
	 * row, and a deleted one its delete row). Not found, like the row.
	 */
	if (q->trail && q->p.cursor == NULL && json_array_size(data) == 0) {
		json_decref(data);
		return response_error(req, BW_ERR_NOTFOUND, "no such record");
	}
	if (q->csv)
		return audit_csv(req, data);
	return page_reply(req, &q->p, &q->hq, data);
}

#define AUDIT_LIST_PARAMS ((1u << AP__COUNT) - 1)
#define AUDIT_TRAIL_PARAMS ((1u << AP_LIMIT) | (1u << AP_CURSOR) | (1u << AP_FORMAT))

static bw_err
audit_list(struct http_req *req)
{
	struct audit_query q;
	bw_err e = audit_parse_query(req, AUDIT_LIST_PARAMS, &q);
	return e != BW_OK ? e : audit_page(req, &q);
}

bw_err
audit_entity_trail(struct http_req *req)
{
	struct audit_query q;
	const char *pat = req->route ? req->route->pattern : NULL;
	char entity[65];
	size_t seg = 0;
	/* "/api/v1/customers/:id/audit": the third segment names the entity. */
	while (pat != NULL && *pat == '/' && seg < 2) {
		pat = strchr(pat + 1, '/');
		seg++;
	}
	if (pat == NULL || *pat != '/')
		return response_error(req, BW_ERR_INTERNAL, NULL);
	const char *end = strchr(pat + 1, '/');
	size_t n = end ? (size_t)(end - pat - 1) : strlen(pat + 1);
	if (n == 0 || n >= sizeof(entity) || pat[1] == ':')
		return response_error(req, BW_ERR_INTERNAL, NULL);
	memcpy(entity, pat + 1, n);
	entity[n] = '\0';
	if (!audit_name_ok(entity))
		return response_error(req, BW_ERR_INTERNAL, NULL);
	bw_err e = audit_parse_query(req, AUDIT_TRAIL_PARAMS, &q);
	if (e != BW_OK)
		return e;
	int64_t eid;
	if (http_req_id(req, "id", &eid) != BW_OK)
		return response_error(req, BW_ERR_NOTFOUND, "no such record");
	q.entity_id = eid;
	snprintf(q.entity, sizeof(q.entity), "%s", entity);
	q.have[AP_ENTITY] = q.have[AP_ENTITY_ID] = 1;
	q.trail = 1;
	return audit_page(req, &q);
}

const struct route audit_routes[] = {
	{HTTP_GET, "/api/v1/reporting/audit", audit_list, 0, "audit.view", ROUTE_BODY_NONE},
};

const size_t audit_routes_count = BW_ARRAY_LEN(audit_routes);
