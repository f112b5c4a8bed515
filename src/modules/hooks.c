/*
 * The behaviour of the catalogue's modules beyond CRUD: ticket workflow,
 * billing documents (invoices and estimates share one set of functions,
 * parameterised by the tables they touch), payments, network devices.
 * Hooks run inside the request's transaction (module.h); SQL here is only
 * compiled-in constants with bound values.
 */
#include "hooks.h"
#include "module.h"

#include "../rbac/rbac.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The largest amount FT_MONEY accepts: 10^13 cents. */
#define HOOKS_MONEY_MAX INT64_C(10000000000000)

/* --- helpers ------------------------------------------------------------------ */

/* Refuse the request with a message kept in the request's pool. */
static bw_err hooks_refuse(struct module_ctx *ctx, bw_err e, const char *fmt, ...) BW_PRINTF(3, 4);

static bw_err
hooks_refuse(struct module_ctx *ctx, bw_err e, const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	char *msg = pool_strdup(ctx->op->pool, buf);
	if (msg == NULL)
		return op_fail(ctx->op, BW_ERR_NOMEM, NULL);
	return op_fail(ctx->op, e, msg);
}

/* A database failure, reported without detail to the client. */
static bw_err
hooks_db_error(struct module_ctx *ctx, bw_err e)
{
	return op_fail(ctx->op, e, NULL);
}

/*
 * The value a field has once the change is made: the input's when given,
 * else the stored row's. NULL when absent or null. On delete ctx->input
 * is NULL and this is the row as it was.
 */
static json_t *
hooks_value(const struct module_ctx *ctx, const char *name)
{
	json_t *v = ctx->input != NULL ? json_object_get(ctx->input, name) : NULL;
	if (v == NULL && ctx->before != NULL)
		v = json_object_get(ctx->before, name);
	return json_is_null(v) ? NULL : v;
}

/* The text a field has once the change is made, or NULL. */
static const char *
hooks_text(const struct module_ctx *ctx, const char *name)
{
	return json_string_value(hooks_value(ctx, name));
}

/* The integer a field has once the change is made; 0 when it has none. */
static int64_t
hooks_int(const struct module_ctx *ctx, const char *name)
{
	json_t *v = hooks_value(ctx, name);
	return json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
}

/* The stored status of the row ("" when unknown: matches no workflow state). */
static const char *
hooks_status(const struct module_ctx *ctx)
{
	const char *s = ctx->before ? json_string_value(json_object_get(ctx->before, "status")) : NULL;
	return s != NULL ? s : "";
}

/* An integer of the stored row (actions read the row, not their body); 0 when none. */
static int64_t
hooks_stored_int(const struct module_ctx *ctx, const char *name)
{
	json_t *v = ctx->before ? json_object_get(ctx->before, name) : NULL;
	return json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
}

/* Set an integer member of ctx->input (a computed field). */
static bw_err
hooks_set_int(struct module_ctx *ctx, const char *name, int64_t v)
{
	if (json_object_set_new(ctx->input, name, json_integer((json_int_t)v)) != 0)
		return op_fail(ctx->op, BW_ERR_NOMEM, NULL);
	return BW_OK;
}

/* Whether s is one of the NULL-ended list. */
static int
hooks_one_of(const char *s, const char *const *list)
{
	for (; s != NULL && *list != NULL; list++)
		if (strcmp(s, *list) == 0)
			return 1;
	return 0;
}

/* Write one text column of row id of module m through the engine. */
static bw_err
hooks_write_text(struct module_ctx *ctx, const struct module_desc *m, int64_t id, const char *name,
		 const char *value)
{
	json_t *values = json_pack("{s:s}", name, value);
	if (values == NULL)
		return op_fail(ctx->op, BW_ERR_NOMEM, NULL);
	bw_err e = module_write_fields(ctx->op, m, id, values);
	json_decref(values);
	return e;
}

/* SELECT one integer by id (sql takes one parameter); *found 0 when there is no row. */
static bw_err
hooks_select_int(struct module_ctx *ctx, const char *sql, int64_t id, int64_t *out, int *found)
{
	db_stmt *s;
	int row = 0;
	bw_err e = db_prepare_cached(ctx->d, sql, &s);
	if (e != BW_OK)
		return hooks_db_error(ctx, e);
	if ((e = db_bind_int(s, 1, id)) == BW_OK && (e = db_step(s, &row)) == BW_OK && row)
		*out = db_col_null(s, 0) ? 0 : db_col_int(s, 0);
	db_done(s);
	*found = row;
	return e == BW_OK ? BW_OK : hooks_db_error(ctx, e);
}

/* --- tickets -------------------------------------------------------------------- */

/* Where a ticket may go from each status (moving to the same status is a no-op). */
static const struct {
	const char *from;
	const char *const to[5];
} ticket_moves[] = {
	{"new", {"open", "closed", NULL}},
	{"open", {"in_progress", "waiting", "resolved", "closed", NULL}},
	{"in_progress", {"open", "waiting", "resolved", "closed", NULL}},
	{"waiting", {"open", "in_progress", "resolved", "closed", NULL}},
	{"resolved", {"open", "closed", NULL}},
	{"closed", {"open", NULL}},
};

static int
ticket_move_allowed(const char *from, const char *to)
{
	if (strcmp(from, to) == 0)
		return 1;
	for (size_t i = 0; i < BW_ARRAY_LEN(ticket_moves); i++)
		if (strcmp(ticket_moves[i].from, from) == 0)
			return hooks_one_of(to, ticket_moves[i].to);
	return 0;
}

bw_err
hooks_ticket_check(struct module_ctx *ctx)
{
	const char *to = json_string_value(json_object_get(ctx->input, "status"));
	if (to == NULL)
		return BW_OK;
	if (ctx->before == NULL) {
		if (strcmp(to, "new") != 0)
			return op_fail(ctx->op, BW_ERR_INVALID,
					      "status: a ticket starts as new");
		return BW_OK;
	}
	const char *from = hooks_status(ctx);
	if (!ticket_move_allowed(from, to))
		return hooks_refuse(ctx, BW_ERR_CONFLICT, "status: cannot move a ticket from %s to %s",
				    from, to);
	return BW_OK;
}

static const char sql_user_disabled[] = "SELECT disabled FROM users WHERE id = ?";

bw_err
hooks_ticket_assign(struct module_ctx *ctx, json_t *body, json_t **reply)
{
	json_t *who = json_is_object(body) ? json_object_get(body, "assignee_id") : NULL;
	json_t *values = NULL;
	const char *status = hooks_status(ctx);
	bw_err e;
	*reply = NULL;
	if (who == NULL || !(json_is_null(who) || json_is_integer(who)))
		return op_fail(ctx->op, BW_ERR_INVALID,
				      "assignee_id: give a user id, or null to unassign");
	if (json_is_integer(who)) {
		int64_t disabled = 1;
		int found;
		/* Choosing a user means seeing users, as for any reference (validate.c). */
		int may_see = may(ctx->op, "users.view");
		if (may_see < 0)
			return hooks_db_error(ctx, BW_ERR_UNAVAILABLE);
		if (!may_see)
			return op_fail(ctx->op, BW_ERR_DENIED,
					      "assignee_id: assigning needs permission users.view");
		if ((e = hooks_select_int(ctx, sql_user_disabled, (int64_t)json_integer_value(who),
					  &disabled, &found)) != BW_OK)
			return e;
		if (!found || disabled != 0)
			return op_fail(ctx->op, BW_ERR_INVALID,
					      "assignee_id: no such user, or the user is disabled");
	}
	values = json_object();
	if (values == NULL || json_object_set(values, "assignee_id", who) != 0)
		goto nomem;
	/* Giving a new ticket to someone opens it; unassigning leaves the status alone. */
	if (json_is_integer(who) && strcmp(status, "new") == 0)
		if (json_object_set_new(values, "status", json_string("open")) != 0)
			goto nomem;
	e = module_write_fields(ctx->op, ctx->m, ctx->id, values);
	json_decref(values);
	return e;
nomem:
	json_decref(values);
	return op_fail(ctx->op, BW_ERR_NOMEM, NULL);
}

/* --- time entries and contracts -------------------------------------------------- */

bw_err
hooks_time_entry_check(struct module_ctx *ctx)
{
	if (ctx->before != NULL)
		return BW_OK; /* user_id is read-only: it stays who logged the time */
	if (ctx->op->actor.user.id <= 0)
		return op_fail(ctx->op, BW_ERR_DENIED,
				      "user_id: time is logged by a signed-in user");
	return hooks_set_int(ctx, "user_id", ctx->op->actor.user.id);
}

bw_err
hooks_contract_check(struct module_ctx *ctx)
{
	const char *starts = hooks_text(ctx, "starts_on"), *ends = hooks_text(ctx, "ends_on");
	/* Validated YYYY-MM-DD dates compare as text. */
	if (starts != NULL && ends != NULL && strcmp(ends, starts) < 0)
		return op_fail(ctx->op, BW_ERR_INVALID,
				      "ends_on: a contract cannot end before it starts");
	return BW_OK;
}

/* --- invoices and estimates ------------------------------------------------------- */

/* A kind of billing document: its tables, as compiled-in SQL. */
struct doc_kind {
	const char *label;       /* "invoice" */
	const char *module;      /* "invoices" */
	const char *lines;       /* "invoice_lines" */
	const char *line_parent; /* the reference to the document on its lines */
	const char *sql_doc;     /* status, tax_rate_bp, total_cents of one document */
	const char *sql_sum;     /* the sum of its lines' amounts */
	const char *sql_totals;  /* subtotal, tax, total, updated_at of one document (and its version) */
};

static const struct doc_kind doc_invoice = {
	"invoice",
	"invoices",
	"invoice_lines",
	"invoice_id",
	"SELECT status, tax_rate_bp, total_cents FROM invoices WHERE id = ?",
	"SELECT COALESCE(SUM(amount_cents), 0) FROM invoice_lines WHERE invoice_id = ?",
	"UPDATE invoices SET subtotal_cents = ?, tax_cents = ?, total_cents = ?, updated_at = ?,"
	" version = version + 1 WHERE id = ?",
};

static const struct doc_kind doc_estimate = {
	"estimate",
	"estimates",
	"estimate_lines",
	"estimate_id",
	"SELECT status, tax_rate_bp, total_cents FROM estimates WHERE id = ?",
	"SELECT COALESCE(SUM(amount_cents), 0) FROM estimate_lines WHERE estimate_id = ?",
	"UPDATE estimates SET subtotal_cents = ?, tax_cents = ?, total_cents = ?, updated_at = ?,"
	" version = version + 1 WHERE id = ?",
};

/*
 * The kind of document m is, or whose lines m holds. The hooks below sit
 * only on those four modules' descriptors: anything else is a catalogue bug.
 */
static const struct doc_kind *
doc_kind_of(const struct module_desc *m)
{
	static const struct doc_kind *const kinds[] = {&doc_invoice, &doc_estimate};
	for (size_t i = 0; i < BW_ARRAY_LEN(kinds); i++)
		if (strcmp(m->name, kinds[i]->module) == 0 || strcmp(m->name, kinds[i]->lines) == 0)
			return kinds[i];
	abort();
}

struct doc_row {
	char status[32];
	int64_t tax_rate_bp, total_cents;
};

/* Load document id of kind k; *found 0 when there is none. */
static bw_err
doc_load(struct module_ctx *ctx, const struct doc_kind *k, int64_t id, struct doc_row *out,
	 int *found)
{
	db_stmt *s;
	int row = 0;
	memset(out, 0, sizeof(*out));
	*found = 0;
	/*
	 * The document is locked before it is read: a payment, a line and the
	 * document's own send or void then take their turns, so none of them
	 * acts on a status another has just changed (MariaDB reads a snapshot).
	 */
	bw_err e = module_lock(ctx->d, module_find(k->module), id);
	if (e == BW_ERR_NOTFOUND)
		return BW_OK;
	if (e != BW_OK || (e = db_prepare_cached(ctx->d, k->sql_doc, &s)) != BW_OK)
		return hooks_db_error(ctx, e);
	if ((e = db_bind_int(s, 1, id)) == BW_OK && (e = db_step(s, &row)) == BW_OK && row) {
		const char *st = db_col_text(s, 0);
		snprintf(out->status, sizeof(out->status), "%s", st != NULL ? st : "draft");
		out->tax_rate_bp = db_col_null(s, 1) ? 0 : db_col_int(s, 1);
		out->total_cents = db_col_null(s, 2) ? 0 : db_col_int(s, 2);
	}
	db_done(s);
	*found = row;
	return e == BW_OK ? BW_OK : hooks_db_error(ctx, e);
}

/*
 * Tax (rounded half up) and total from a subtotal and a rate in basis
 * points; -1 when either is over the largest amount. With subtotal and
 * rate bounded the product fits easily in 64 bits.
 */
static int
doc_totals(int64_t subtotal, int64_t rate_bp, int64_t *tax, int64_t *total)
{
	if (subtotal < 0 || subtotal > HOOKS_MONEY_MAX || rate_bp < 0 || rate_bp > 10000)
		return -1;
	*tax = (subtotal * rate_bp + 5000) / 10000;
	*total = subtotal + *tax;
	return *total <= HOOKS_MONEY_MAX ? 0 : -1;
}

/*
 * A new document starts as a draft with zero totals. Once it is no longer
 * a draft only its notes change. A new tax rate recomputes tax and total
 * from the stored subtotal.
 */
bw_err
hooks_doc_check(struct module_ctx *ctx)
{
	const struct doc_kind *k = doc_kind_of(ctx->m);
	bw_err e;
	if (ctx->before == NULL) {
		const char *st = json_string_value(json_object_get(ctx->input, "status"));
		if (st != NULL && strcmp(st, "draft") != 0)
			return hooks_refuse(ctx, BW_ERR_INVALID, "status: a new %s starts as a draft",
					    k->label);
		if ((e = hooks_set_int(ctx, "subtotal_cents", 0)) != BW_OK ||
		    (e = hooks_set_int(ctx, "tax_cents", 0)) != BW_OK)
			return e;
		return hooks_set_int(ctx, "total_cents", 0);
	}
	const char *status = hooks_status(ctx);
	if (strcmp(status, "draft") != 0) {
		const char *key;
		json_t *v;
		json_object_foreach(ctx->input, key, v)
		{
			json_t *was = json_object_get(ctx->before, key);
			if (strcmp(key, "notes") == 0 || (was ? json_equal(v, was) : json_is_null(v)))
				continue;
			return hooks_refuse(ctx, BW_ERR_CONFLICT, "%s is %s: only notes can change",
					    k->label, status);
		}
		return BW_OK;
	}
	json_t *rate = json_object_get(ctx->input, "tax_rate_bp");
	if (rate == NULL)
		return BW_OK;
	int64_t tax, total;
	if (doc_totals(hooks_stored_int(ctx, "subtotal_cents"),
		       json_is_integer(rate) ? (int64_t)json_integer_value(rate) : 0, &tax,
		       &total) != 0)
		return op_fail(ctx->op, BW_ERR_INVALID,
				      "tax_rate_bp: the total would be over the largest amount");
	if ((e = hooks_set_int(ctx, "tax_cents", tax)) != BW_OK)
		return e;
	return hooks_set_int(ctx, "total_cents", total);
}

/* Only drafts are deleted; a sent invoice is voided instead. */
bw_err
hooks_doc_can_delete(struct module_ctx *ctx)
{
	const struct doc_kind *k = doc_kind_of(ctx->m);
	const char *status = hooks_status(ctx);
	if (strcmp(status, "draft") != 0)
		return hooks_refuse(ctx, BW_ERR_CONFLICT, "%s is %s: only drafts can be deleted",
				    k->label, status);
	return BW_OK;
}

/* A status action: from one of two statuses to another, perhaps only with something to charge. */
struct doc_move {
	const char *const from[3]; /* NULL-ended */
	const char *to;
	int need_total;
};

static bw_err
doc_move(struct module_ctx *ctx, const struct doc_move *mv, json_t **reply)
{
	const struct doc_kind *k = doc_kind_of(ctx->m);
	const char *status = hooks_status(ctx);
	*reply = NULL;
	if (!hooks_one_of(status, mv->from))
		return hooks_refuse(ctx, BW_ERR_CONFLICT, "status: cannot move this %s from %s to %s",
				    k->label, status, mv->to);
	if (mv->need_total && hooks_stored_int(ctx, "total_cents") <= 0)
		return hooks_refuse(ctx, BW_ERR_CONFLICT,
				    "total_cents: this %s has nothing to charge; add lines first",
				    k->label);
	return hooks_write_text(ctx, ctx->m, ctx->id, "status", mv->to);
}

static const struct doc_move move_send = {{"draft", NULL}, "sent", 1};
static const struct doc_move move_void = {{"draft", "sent", NULL}, "void", 0};
static const struct doc_move move_accept = {{"sent", NULL}, "accepted", 0};
static const struct doc_move move_decline = {{"sent", NULL}, "declined", 0};

bw_err
hooks_doc_send(struct module_ctx *ctx, json_t *body, json_t **reply)
{
	(void)body;
	return doc_move(ctx, &move_send, reply);
}

bw_err
hooks_invoice_void(struct module_ctx *ctx, json_t *body, json_t **reply)
{
	(void)body;
	return doc_move(ctx, &move_void, reply);
}

bw_err
hooks_estimate_accept(struct module_ctx *ctx, json_t *body, json_t **reply)
{
	(void)body;
	return doc_move(ctx, &move_accept, reply);
}

bw_err
hooks_estimate_decline(struct module_ctx *ctx, json_t *body, json_t **reply)
{
	(void)body;
	return doc_move(ctx, &move_decline, reply);
}

/* --- lines of invoices and estimates ---------------------------------------------- */

/* The document a line belongs to must exist and be a draft for the line to change. */
static bw_err
line_doc_draft(struct module_ctx *ctx, const struct doc_kind *k)
{
	struct doc_row doc;
	int found;
	bw_err e = doc_load(ctx, k, hooks_int(ctx, k->line_parent), &doc, &found);
	if (e != BW_OK)
		return e;
	if (!found)
		return hooks_refuse(ctx, BW_ERR_INVALID, "%s: no such %s", k->line_parent, k->label);
	if (strcmp(doc.status, "draft") != 0)
		return hooks_refuse(ctx, BW_ERR_CONFLICT, "%s is %s: its lines cannot change",
				    k->label, doc.status);
	return BW_OK;
}

bw_err
hooks_line_check(struct module_ctx *ctx)
{
	bw_err e = line_doc_draft(ctx, doc_kind_of(ctx->m));
	if (e != BW_OK)
		return e;
	int64_t amount, qty = hooks_int(ctx, "quantity"), price = hooks_int(ctx, "unit_price_cents");
	if (__builtin_mul_overflow(qty, price, &amount) || amount < 0 || amount > HOOKS_MONEY_MAX)
		return op_fail(ctx->op, BW_ERR_INVALID,
				      "amount_cents: quantity times unit price is over the largest amount");
	return hooks_set_int(ctx, "amount_cents", amount);
}

/* subtotal = the lines' sum; tax and total from it; one UPDATE of the document. */
bw_err
hooks_line_after_write(struct module_ctx *ctx)
{
	const struct doc_kind *k = doc_kind_of(ctx->m);
	int64_t id = hooks_int(ctx, k->line_parent), subtotal = 0, tax, total;
	struct doc_row doc;
	int found;
	db_stmt *s;
	bw_err e = doc_load(ctx, k, id, &doc, &found);
	if (e != BW_OK || !found)
		return e;
	if ((e = hooks_select_int(ctx, k->sql_sum, id, &subtotal, &found)) != BW_OK)
		return e;
	if (doc_totals(subtotal, doc.tax_rate_bp, &tax, &total) != 0)
		return hooks_refuse(ctx, BW_ERR_INVALID,
				    "amount_cents: the %s's total would be over the largest amount",
				    k->label);
	if ((e = db_prepare_cached(ctx->d, k->sql_totals, &s)) != BW_OK)
		return hooks_db_error(ctx, e);
	int row;
	if ((e = db_bind_int(s, 1, subtotal)) == BW_OK && (e = db_bind_int(s, 2, tax)) == BW_OK &&
	    (e = db_bind_int(s, 3, total)) == BW_OK &&
	    (e = db_bind_int(s, 4, (int64_t)time(NULL))) == BW_OK &&
	    (e = db_bind_int(s, 5, id)) == BW_OK)
		e = db_step(s, &row);
	db_done(s);
	if (e != BW_OK)
		return hooks_db_error(ctx, e);
	/* The document's new totals belong in the line's audit row and the document's trail. */
	if (total == doc.total_cents)
		return BW_OK;
	return module_effect(ctx, module_find(k->module), id,
			     json_pack("{s:I}", "total_cents", (json_int_t)doc.total_cents),
			     json_pack("{s:I, s:I, s:I}", "subtotal_cents", (json_int_t)subtotal,
				       "tax_cents", (json_int_t)tax, "total_cents", (json_int_t)total));
}

bw_err
hooks_line_can_delete(struct module_ctx *ctx)
{
	return line_doc_draft(ctx, doc_kind_of(ctx->m));
}

/* --- payments ------------------------------------------------------------------------ */

static const char *const payable_status[] = {"sent", "paid", NULL};

bw_err
hooks_payment_check(struct module_ctx *ctx)
{
	json_t *amount = json_object_get(ctx->input, "amount_cents");
	if (json_is_integer(amount) && json_integer_value(amount) <= 0)
		return op_fail(ctx->op, BW_ERR_INVALID,
				      "amount_cents: a payment must be more than zero");
	const char *four = hooks_text(ctx, "card_last_four");
	if (four != NULL) {
		size_t n = strlen(four);
		if (n != 4 || strspn(four, "0123456789") != n)
			return op_fail(ctx->op, BW_ERR_INVALID,
					      "card_last_four: exactly four digits");
		const char *method = hooks_text(ctx, "method");
		if (method == NULL || strcmp(method, "card") != 0)
			return op_fail(ctx->op, BW_ERR_INVALID,
					      "card_last_four: only card payments have a card number");
	}
	struct doc_row inv;
	int found;
	bw_err e = doc_load(ctx, &doc_invoice, hooks_int(ctx, "invoice_id"), &inv, &found);
	if (e != BW_OK)
		return e;
	if (!found)
		return op_fail(ctx->op, BW_ERR_INVALID, "invoice_id: no such invoice");
	if (!hooks_one_of(inv.status, payable_status))
		return hooks_refuse(ctx, BW_ERR_CONFLICT,
				    "invoice is %s: payments are taken on sent invoices", inv.status);
	return BW_OK;
}

static const char sql_payments_sum[] =
	"SELECT COALESCE(SUM(amount_cents), 0) FROM payments WHERE invoice_id = ?";

/* A sent invoice paid in full becomes paid; a paid one no longer covered goes back to sent. */
bw_err
hooks_payment_after_write(struct module_ctx *ctx)
{
	int64_t id = hooks_int(ctx, "invoice_id"), paid = 0;
	struct doc_row inv;
	int found;
	bw_err e = doc_load(ctx, &doc_invoice, id, &inv, &found);
	if (e != BW_OK || !found)
		return e;
	if ((e = hooks_select_int(ctx, sql_payments_sum, id, &paid, &found)) != BW_OK)
		return e;
	const char *to = NULL;
	if (strcmp(inv.status, "sent") == 0 && paid >= inv.total_cents)
		to = "paid";
	else if (strcmp(inv.status, "paid") == 0 && paid < inv.total_cents)
		to = "sent";
	if (to == NULL)
		return BW_OK;
	const struct module_desc *invoices = module_find(doc_invoice.module);
	if (invoices == NULL)
		return op_fail(ctx->op, BW_ERR_INTERNAL, NULL);
	if ((e = hooks_write_text(ctx, invoices, id, "status", to)) != BW_OK)
		return e;
	return module_effect(ctx, invoices, id, json_pack("{s:s}", "status", inv.status),
			     json_pack("{s:s}", "status", to));
}

/* --- network devices ---------------------------------------------------------------- */

bw_err
hooks_network_device_check(struct module_ctx *ctx)
{
	/* A host name or IP address (IPv6 in brackets), with an optional :port. */
	static const char allowed[] = "abcdefghijklmnopqrstuvwxyz"
				      "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				      "0123456789.-:[]";
	const char *addr = json_string_value(json_object_get(ctx->input, "management_address"));
	if (addr != NULL && addr[strspn(addr, allowed)] != '\0')
		return op_fail(ctx->op, BW_ERR_INVALID,
				      "management_address: a host name or IP address with an optional"
				      " :port (letters, digits and . - : [ ] only)");
	return BW_OK;
}

void
hooks_network_device_present(const struct module_desc *m, json_t *row)
{
	(void)m;
	const char *auth = json_string_value(json_object_get(row, "auth_method"));
	if (auth == NULL || strcmp(auth, "password") != 0)
		return;
	/* Best effort: without memory the row is shown without its warning. */
	json_object_set_new(row, "warnings",
			    json_pack("[s]", "This device signs in with a password. SSH key"
					     " authentication is recommended: a key cannot be"
					     " guessed and can be revoked per technician."));
}

/* The stored credential, decrypted: ctx->before holds write-only fields too. */
bw_err
hooks_network_device_reveal(struct module_ctx *ctx, json_t *body, json_t **reply)
{
	(void)body;
	*reply = NULL;
	if (ctx->before == NULL)
		return op_fail(ctx->op, BW_ERR_INTERNAL, NULL);
	json_t *cred = json_object_get(ctx->before, "credential");
	json_t *out = json_object();
	if (out == NULL ||
	    json_object_set(out, "credential", json_is_string(cred) ? cred : json_null()) != 0) {
		json_decref(out);
		return op_fail(ctx->op, BW_ERR_NOMEM, NULL);
	}
	*reply = out;
	return BW_OK;
}
