/*
 * Permission checks. The built-in roles are rules (patterns over the
 * permission catalogue), kept here as data so that docs/rbac.md and the
 * code say the same thing and a module added later is covered by them
 * without touching a database. Patterns: "*" (everything), "<scope>.*"
 * (every permission of a module or system area), "*.<verb>" (one verb
 * across modules), or an exact name. Deny patterns win over allow ones.
 */
#include "rbac.h"

#include "../auth/auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rbac_rule {
	const char *key;
	const char *const *allow;
	const char *const *deny;
};

/* Everything: the tenant's owners. */
static const char *const rule_admin[] = {"*", NULL};

/* Technicians: the service desk and the things it works on; no billing, no deletes of records. */
static const char *const rule_staff[] = {
    "customers.view", "customers.create", "customers.edit",
    "contacts.view", "contacts.create", "contacts.edit",
    "sites.view", "sites.create", "sites.edit",
    "assets.view", "assets.create", "assets.edit",
    "tickets.view", "tickets.create", "tickets.edit", "tickets.assign",
    "ticket_comments.view", "ticket_comments.create", "ticket_comments.edit",
    "time_entries.*",
    "projects.view", "projects.create", "projects.edit",
    "project_tasks.*",
    "kb_articles.view", "kb_articles.create", "kb_articles.edit",
    "network_devices.view", "network_devices.create", "network_devices.edit",
    "network_devices.reveal_credential",
    "products.view", "contracts.view", "users.view", "search.view",
    /* attachments of the records staff work on (docs/files.md) */
    "customers.attach", "customers.download", "assets.attach", "assets.download",
    "tickets.attach", "tickets.download", "ticket_comments.attach", "ticket_comments.download",
    "projects.attach", "projects.download", "kb_articles.attach", "kb_articles.download",
    NULL,
};

/* Accounts receivable: money in and out, reading what it bills for. */
static const char *const rule_billing[] = {
    "customers.view", "customers.export", "contacts.view", "sites.view",
    "tickets.view", "ticket_comments.view", "time_entries.view", "time_entries.export",
    "projects.view", "project_tasks.view",
    "products.*", "contracts.*", "invoices.*", "invoice_lines.*",
    "estimates.*", "estimate_lines.*", "payments.*", "search.view",
    NULL,
};

/* Sales: prospects and customers, what they buy and are quoted; invoices read-only. */
static const char *const rule_sales[] = {
    "customers.view", "customers.create", "customers.edit", "customers.export",
    "contacts.view", "contacts.create", "contacts.edit", "contacts.export",
    "sites.view", "sites.create", "sites.edit",
    "products.view", "contracts.view", "contracts.create", "contracts.edit",
    "estimates.view", "estimates.create", "estimates.edit", "estimates.send",
    "estimates.accept", "estimates.decline", "estimate_lines.*",
    "invoices.view", "invoice_lines.view", "kb_articles.view", "search.view",
    "customers.attach", "customers.download", "estimates.attach", "estimates.download",
    "invoices.download",
    NULL,
};

/* Dispatch: takes tickets in and hands them out; reads what it needs to route them. */
static const char *const rule_dispatch[] = {
    "customers.view", "contacts.view", "sites.view", "assets.view",
    "tickets.view", "tickets.create", "tickets.edit", "tickets.assign",
    "ticket_comments.view", "ticket_comments.create",
    "time_entries.view", "projects.view", "project_tasks.view", "project_tasks.edit",
    "kb_articles.view", "users.view", "search.view",
    "tickets.attach", "tickets.download", "ticket_comments.attach", "ticket_comments.download",
    NULL,
};

/* Read-only: every record view, nothing that changes, reveals or exports. */
static const char *const rule_read_only[] = {"*.view", NULL};
static const char *const deny_read_only[] = {
    "users.view", "roles.view", "settings.view", "audit.view",
    /* receivers' URLs carry their tokens; the delivery log, their replies */
    "webhooks.view", "jobs.view", NULL,
};

static const struct rbac_rule rbac_rules[] = {
    {"admin", rule_admin, NULL},
    {"staff", rule_staff, NULL},
    {"billing", rule_billing, NULL},
    {"sales", rule_sales, NULL},
    {"dispatch", rule_dispatch, NULL},
    {"read_only", rule_read_only, deny_read_only},
};

const char *const rbac_builtin_names[] = {"admin", "staff", "billing", "sales", "dispatch",
					  "read_only"};
const size_t rbac_builtin_count = BW_ARRAY_LEN(rbac_builtin_names);

/* Whether pattern covers perm (see the top of this file). */
static int
rbac_match(const char *pattern, const char *perm)
{
	if (strcmp(pattern, "*") == 0)
		return 1;
	if (strcmp(perm, "*") == 0)
		return 0; /* only "*" covers "*" */
	const char *pd = strchr(pattern, '.'), *d = strchr(perm, '.');
	if (pd == NULL || d == NULL)
		return strcmp(pattern, perm) == 0;
	size_t pl = (size_t)(pd - pattern), l = (size_t)(d - perm);
	if (strcmp(pd + 1, "*") == 0)
		return pl == l && strncmp(pattern, perm, l) == 0;
	if (pl == 1 && pattern[0] == '*')
		return strcmp(pd + 1, d + 1) == 0;
	return strcmp(pattern, perm) == 0;
}

static int
rbac_any(const char *const *patterns, const char *perm)
{
	for (; patterns && *patterns; patterns++)
		if (rbac_match(*patterns, perm))
			return 1;
	return 0;
}

int
rbac_builtin_grants(const char *key, const char *perm)
{
	for (size_t i = 0; i < BW_ARRAY_LEN(rbac_rules); i++)
		if (strcmp(rbac_rules[i].key, key) == 0)
			return rbac_any(rbac_rules[i].allow, perm) && !rbac_any(rbac_rules[i].deny, perm);
	return 0;
}

int
rbac_perm_valid(const char *perm, int star_ok)
{
	if (star_ok && strcmp(perm, "*") == 0)
		return 1;
	size_t n = strlen(perm), dots = 0;
	if (n < 3 || n > RBAC_PERM_MAX || perm[0] == '.' || perm[n - 1] == '.')
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = perm[i];
		if (c == '.')
			dots++;
		else if (!((c >= 'a' && c <= 'z') || c == '_'))
			return 0;
	}
	return dots == 1;
}

int
rbac_user_has(db *d, int64_t user_id, const char *perm)
{
	/* One statement: the user's built-in roles, and any custom role that lists perm. */
	static const char sql[] =
	    "SELECT r.builtin FROM user_roles ur JOIN roles r ON r.id = ur.role_id"
	    " WHERE ur.user_id = ? AND (r.builtin <> '' OR EXISTS (SELECT 1 FROM role_permissions"
	    " rp WHERE rp.role_id = r.id AND rp.permission = ?))";
	db_stmt *s;
	int row, has = 0;
	if (strncmp(perm, "self.", 5) == 0)
		return 1;
	if (db_prepare_cached(d, sql, &s) != BW_OK)
		return -1;
	bw_err e = db_bind_int(s, 1, user_id);
	if (e == BW_OK)
		e = db_bind_text(s, 2, perm);
	while (e == BW_OK && !has && (e = db_step(s, &row)) == BW_OK && row) {
		const char *key = db_col_text(s, 0);
		/* A custom role never stands for everything, even if a row says "*". */
		if (key == NULL || key[0] == '\0')
			has = strcmp(perm, "*") != 0;
		else
			has = rbac_builtin_grants(key, perm);
	}
	db_done(s);
	return e == BW_OK ? has : -1;
}

int
may(struct op *op, const char *perm)
{
	const struct actor *a = &op->actor;
	if (a->kind == ACTOR_SYSTEM)
		return 1;
	if (a->kind != ACTOR_SESSION && a->kind != ACTOR_TOKEN)
		return 0;
	/* A token is limited to its scopes, whatever its owner holds. */
	if (!token_scope_allows(a, perm))
		return 0;
	if (strncmp(perm, "self.", 5) == 0)
		return 1;
	/*
	 * What the session or token lookup read along answers only for the
	 * permission it was read for: the route's own, checked by the pipeline
	 * at once. Anything asked later (a grant, a reference, an assignee)
	 * is read now, so a request that was under way when its user was
	 * demoted cannot hand out what the user no longer holds.
	 */
	if (a->perm_asked[0] != '\0' && strcmp(a->perm_asked, perm) == 0) {
		for (size_t i = 0; i < rbac_builtin_count; i++)
			if (auth_list_has(a->builtin_roles, rbac_builtin_names[i]) &&
			    rbac_builtin_grants(rbac_builtin_names[i], perm))
				return 1;
		/* A custom role never stands for everything. */
		return strcmp(perm, "*") != 0 && a->perm_custom;
	}
	db *d;
	if (op_db(op, &d) != BW_OK)
		return -1;
	return rbac_user_has(d, a->user.id, perm);
}

bw_err
may_or_fail(struct op *op, const char *perm)
{
	int m = may(op, perm);
	if (m < 0)
		return op_unavailable(op);
	if (m > 0)
		return BW_OK;
	/* Which of the two said no, so that the fix is clear. */
	struct actor *a = &op->actor;
	if (a->kind == ACTOR_TOKEN && !token_scope_allows(a, perm))
		return op_fail(op, BW_ERR_DENIED,
			       pool_printf(op->pool, "this API token is not scoped for that (needs %s)",
					   perm));
	return op_fail(op, BW_ERR_DENIED, pool_printf(op->pool, "permission denied (needs %s)", perm));
}

bw_err
rbac_catalog(struct op *op, const char *const **out, size_t *n)
{
	*out = op->perms;
	*n = op->nperms;
	return op->perms != NULL ? BW_OK : op_fail(op, BW_ERR_INTERNAL, NULL);
}

/* --- roles and who holds them ------------------------------------------------ */

bw_err
rbac_role_get(db *d, int64_t id, struct rbac_role *r)
{
	db_stmt *s;
	int row;
	bw_err e = db_prepare(
	    d, "SELECT id, name, description, builtin, version FROM roles WHERE id = ?", &s);
	if (e != BW_OK)
		return e;
	if ((e = DB_BIND(s, DB_INT(id))) == BW_OK && (e = db_step(s, &row)) == BW_OK) {
		if (!row) {
			e = BW_ERR_NOTFOUND;
		} else {
			r->id = db_col_int(s, 0);
			snprintf(r->name, sizeof(r->name), "%s", db_col_text(s, 1));
			snprintf(r->description, sizeof(r->description), "%s", db_col_text(s, 2));
			snprintf(r->builtin, sizeof(r->builtin), "%s", db_col_text(s, 3));
			r->version = db_col_int(s, 4);
		}
	}
	db_finalize(s);
	return e;
}

/* The first column of every row sql gives for id, as a new JSON array. */
static bw_err
rbac_strings(db *d, const char *sql, int64_t id, json_t **out)
{
	db_stmt *s;
	int row;
	json_t *a = json_array();
	*out = NULL;
	if (a == NULL)
		return BW_ERR_NOMEM;
	bw_err e = db_prepare(d, sql, &s);
	if (e == BW_OK && (e = DB_BIND(s, DB_INT(id))) == BW_OK)
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

bw_err
rbac_role_perms(struct op *op, const struct rbac_role *r, json_t **out)
{
	const char *const *cat;
	size_t n;
	db *d;
	*out = NULL;
	if (r->builtin[0] == '\0') {
		bw_err e = op_db(op, &d);
		if (e != BW_OK)
			return e;
		return rbac_strings(d,
				    "SELECT permission FROM role_permissions WHERE role_id = ?"
				    " ORDER BY permission",
				    r->id, out);
	}
	bw_err e = rbac_catalog(op, &cat, &n);
	if (e != BW_OK)
		return e;
	json_t *a = json_array();
	if (a == NULL)
		return BW_ERR_NOMEM;
	for (size_t i = 0; i < n; i++)
		if (strncmp(cat[i], "self.", 5) != 0 && rbac_builtin_grants(r->builtin, cat[i]))
			json_array_append_new(a, json_string(cat[i]));
	*out = a;
	return BW_OK;
}

bw_err
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

bw_err
rbac_user_roles(db *d, int64_t id, json_t **out)
{
	return rbac_strings(d,
			    "SELECT r.name FROM user_roles ur JOIN roles r ON r.id = ur.role_id"
			    " WHERE ur.user_id = ? ORDER BY r.name",
			    id, out);
}

bw_err
rbac_resolve_roles(struct op *op, json_t *roles, int64_t ids[RBAC_ROLES_PER_USER], size_t *n)
{
	size_t i;
	json_t *v;
	db *d;
	*n = 0;
	if (!json_is_array(roles) || json_array_size(roles) > RBAC_ROLES_PER_USER)
		return op_fail(op, BW_ERR_INVALID,
			       "field 'roles' must be an array of at most 16 role names");
	bw_err e = op_db(op, &d);
	if (e != BW_OK)
		return e;
	json_array_foreach(roles, i, v)
	{
		const char *name = json_string_value(v);
		struct rbac_role r;
		json_t *perms;
		int64_t id;
		if (name == NULL)
			return op_fail(op, BW_ERR_INVALID, "field 'roles': names are strings");
		if ((e = DB_QUERY_INT(d, &id, "SELECT id FROM roles WHERE name = ?", DB_TEXT(name))) !=
		    BW_OK)
			return e;
		if (id == 0)
			return op_fail(op, BW_ERR_INVALID,
				       pool_printf(op->pool, "field 'roles': no role '%.64s'", name));
		if ((e = rbac_role_get(d, id, &r)) != BW_OK || (e = rbac_role_perms(op, &r, &perms)) != BW_OK)
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

bw_err
rbac_set_user_roles(db *d, int64_t uid, const int64_t *ids, size_t n)
{
	bw_err e = DB_RUN(d, "DELETE FROM user_roles WHERE user_id = ?", DB_INT(uid));
	for (size_t i = 0; e == BW_OK && i < n; i++)
		e = DB_RUN(d, "INSERT INTO user_roles (user_id, role_id) VALUES (?, ?)", DB_INT(uid),
			   DB_INT(ids[i]));
	return e;
}

bw_err
rbac_serialise(db *d)
{
	return db_run(d, "UPDATE roles SET updated_at = updated_at WHERE builtin = 'admin'", NULL, 0);
}

/*
 * Nobody disables, demotes, deletes, unlocks or signs out a user more
 * powerful than themselves: the roles uid holds must all be ones the
 * actor could grant.
 */
bw_err
rbac_may_grant_all(struct op *op, const char *why)
{
	json_t *all = json_pack("[s]", "*");
	if (all == NULL)
		return BW_ERR_NOMEM;
	bw_err e = rbac_may_grant(op, all);
	json_decref(all);
	return e == BW_ERR_DENIED ? op_fail(op, e, why) : e;
}

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
	e = rbac_resolve_roles(op, names, ids, &n);
	json_decref(names);
	if (e == BW_ERR_DENIED)
		return op_fail(op, e,
			       "this user holds permissions you do not: only someone who holds "
			       "all of them can change or delete it");
	return e;
}
