/*
 * RBAC: the built-in role rules and the per-request check against a real
 * (SQLite) tenant schema: built-in roles, custom roles, several roles,
 * self.*, "*" and a role taken away counting at once.
 */
#include "unit.h"

#include "db/db.h"
#include "db/migrate.h"
#include "auth/auth.h"
#include "rbac/rbac.h"

static void
test_builtin_rules(void **state)
{
	(void)state;
	/* admin: everything, "*" included. */
	assert_true(rbac_builtin_grants("admin", "invoices.void"));
	assert_true(rbac_builtin_grants("admin", "roles.edit"));
	assert_true(rbac_builtin_grants("admin", "*"));
	/* read_only: views only, never system views, never "*". */
	assert_true(rbac_builtin_grants("read_only", "customers.view"));
	assert_true(rbac_builtin_grants("read_only", "some_future_module.view"));
	assert_false(rbac_builtin_grants("read_only", "customers.edit"));
	assert_false(rbac_builtin_grants("read_only", "customers.export"));
	assert_false(rbac_builtin_grants("read_only", "network_devices.reveal_credential"));
	assert_false(rbac_builtin_grants("read_only", "users.view"));
	assert_false(rbac_builtin_grants("read_only", "audit.view"));
	assert_false(rbac_builtin_grants("read_only", "*"));
	assert_false(rbac_builtin_grants("read_only", "view"));
	/* staff: service work, no billing, no record deletes. */
	assert_true(rbac_builtin_grants("staff", "tickets.assign"));
	assert_true(rbac_builtin_grants("staff", "time_entries.delete"));
	assert_false(rbac_builtin_grants("staff", "customers.delete"));
	assert_false(rbac_builtin_grants("staff", "invoices.view"));
	assert_false(rbac_builtin_grants("staff", "users.edit"));
	/* billing: "invoices.*" covers actions, not other modules of similar name. */
	assert_true(rbac_builtin_grants("billing", "invoices.void"));
	assert_true(rbac_builtin_grants("billing", "invoice_lines.create"));
	assert_false(rbac_builtin_grants("billing", "invoicesx.view"));
	assert_false(rbac_builtin_grants("billing", "tickets.create"));
	/* sales and dispatch. */
	assert_true(rbac_builtin_grants("sales", "estimates.send"));
	assert_false(rbac_builtin_grants("sales", "invoices.void"));
	assert_true(rbac_builtin_grants("dispatch", "tickets.assign"));
	assert_false(rbac_builtin_grants("dispatch", "invoices.create"));
	/* Unknown keys grant nothing; no rule grants roles or users to non-admins. */
	assert_false(rbac_builtin_grants("", "customers.view"));
	assert_false(rbac_builtin_grants("root", "customers.view"));
	for (size_t i = 0; i < rbac_builtin_count; i++) {
		const char *k = rbac_builtin_names[i];
		int admin = strcmp(k, "admin") == 0;
		assert_int_equal(rbac_builtin_grants(k, "roles.edit"), admin);
		assert_int_equal(rbac_builtin_grants(k, "users.create"), admin);
		assert_int_equal(rbac_builtin_grants(k, "settings.edit"), admin);
		assert_int_equal(rbac_builtin_grants(k, "audit.view"), admin);
	}
}

static void
test_perm_names(void **state)
{
	(void)state;
	assert_true(rbac_perm_valid("customers.view", 0));
	assert_true(rbac_perm_valid("network_devices.reveal_credential", 0));
	assert_true(rbac_perm_valid("*", 1));
	assert_false(rbac_perm_valid("*", 0));
	assert_false(rbac_perm_valid("customers", 0));
	assert_false(rbac_perm_valid("customers.view.x", 0));
	assert_false(rbac_perm_valid("Customers.view", 0));
	assert_false(rbac_perm_valid(".view", 0));
	assert_false(rbac_perm_valid("customers.", 0));
	assert_false(rbac_perm_valid("customers.*", 1));
	assert_false(rbac_perm_valid("cust omers.view", 0));
}

/* may() for actor c with no database: what the session or token lookup read along. */
static int
may_as(const struct actor *c, const char *perm)
{
	struct op op;
	op_init(&op, NULL, NULL, NULL, NULL, NULL, c);
	return may(&op, perm);
}

/* may() for perm with what the lookup read along answering for asked. */
static int
may_read_along(struct actor *c, const char *asked, const char *perm)
{
	snprintf(c->perm_asked, sizeof(c->perm_asked), "%s", asked);
	return may_as(c, perm);
}

/*
 * The one permission rule. What the per-request lookup read along answers
 * only for the permission it was read for; anything else needs the
 * database (here: none, so -1, refused).
 */
static void
test_may(void **state)
{
	(void)state;
	struct actor c = {0};
	assert_int_equal(may_as(&c, "self.view"), 0); /* nobody signed in */
	c.kind = ACTOR_SESSION;
	assert_int_equal(may_as(&c, "self.view"), 1);
	assert_int_equal(may_read_along(&c, "customers.view", "customers.view"), 0);
	snprintf(c.builtin_roles, sizeof(c.builtin_roles), "read_only,dispatch");
	assert_int_equal(may_read_along(&c, "customers.view", "customers.view"), 1); /* read_only */
	assert_int_equal(may_read_along(&c, "tickets.assign", "tickets.assign"), 1); /* dispatch */
	/* Another permission than the one read along: read now, never from the stale roles. */
	assert_int_equal(may_read_along(&c, "customers.view", "tickets.assign"), -1);
	assert_int_equal(may_read_along(&c, "", "customers.view"), -1);
	assert_int_equal(may_read_along(&c, "invoices.void", "invoices.void"), 0);
	assert_int_equal(may_read_along(&c, "*", "*"), 0);
	c.perm_custom = 1; /* a custom role listed the permission asked about */
	assert_int_equal(may_read_along(&c, "invoices.void", "invoices.void"), 1);
	assert_int_equal(may_read_along(&c, "*", "*"), 0); /* never "*" from a custom role */
	snprintf(c.builtin_roles, sizeof(c.builtin_roles), "read_onl,admi");
	c.perm_custom = 0;
	assert_int_equal(may_read_along(&c, "customers.view", "customers.view"), 0); /* no prefix */
	snprintf(c.builtin_roles, sizeof(c.builtin_roles), "staff,admin");
	assert_int_equal(may_read_along(&c, "*", "*"), 1);
	/* A token: its owner's roles and its scopes, both; the scopes refuse without the database. */
	c.kind = ACTOR_TOKEN;
	assert_int_equal(token_scopes_parse("[\"customers.view\"]", &c), BW_OK);
	assert_int_equal(may_read_along(&c, "customers.view", "customers.view"), 1);
	assert_int_equal(may_read_along(&c, "invoices.void", "invoices.void"), 0);
	assert_int_equal(may_read_along(&c, "customers.view", "invoices.void"), 0);
	assert_int_equal(may_read_along(&c, "*", "*"), 0);
	assert_int_equal(token_scopes_parse("[\"*\"]", &c), BW_OK);
	assert_int_equal(may_read_along(&c, "invoices.void", "invoices.void"), 1);
	assert_int_equal(token_scopes_parse("{\"a\":1}", &c), BW_ERR_INVALID);
	assert_int_equal(may_read_along(&c, "customers.view", "customers.view"), 0);
	/* The system actor (CLI, jobs) may. */
	struct actor sys = op_system("test");
	assert_int_equal(may_as(&sys, "admin.keys"), 1);
	assert_true(auth_list_has("staff,admin", "admin"));
	assert_false(auth_list_has("staff,administrator", "admin"));
	assert_false(auth_list_has("", "admin"));
}

static void
exec(db *d, const char *sql)
{
	if (db_exec(d, sql) != BW_OK)
		fail_msg("%s: %s", sql, db_errmsg(d));
}

static void
test_user_has(void **state)
{
	(void)state;
	char dir[128], path[256], err[512];
	db *d;
	int from, to;
	assert_int_equal(unit_mkdtemp(dir, sizeof(dir), "rbac"), 0);
	snprintf(path, sizeof(path), "%s/t.db", dir);
	struct db_params p = {.driver = DB_SQLITE, .path = path, .create = 1};
	assert_int_equal(db_open(&p, &d, err, sizeof(err)), BW_OK);
	assert_int_equal(migrate_run(d, &migrate_tenant, &from, &to, err, sizeof(err)), BW_OK);
	exec(d, "INSERT INTO users (id, email, password_hash, created_at, updated_at) VALUES"
		" (1, 'a@x', 'h', 0, 0), (2, 'b@x', 'h', 0, 0), (3, 'c@x', 'h', 0, 0)");
	exec(d, "INSERT INTO roles (id, name, description, builtin, created_at, updated_at) VALUES"
		" (100, 'ticket triage', '', '', 0, 0), (101, 'kb', '', '', 0, 0)");
	exec(d, "INSERT INTO role_permissions (role_id, permission) VALUES"
		" (100, 'tickets.view'), (100, 'tickets.assign'), (101, 'kb_articles.edit')");
	/* 1: admin; 2: read_only + custom 100; 3: no role at all. */
	exec(d, "INSERT INTO user_roles (user_id, role_id) SELECT 1, id FROM roles WHERE builtin = 'admin'");
	exec(d, "INSERT INTO user_roles (user_id, role_id) SELECT 2, id FROM roles WHERE builtin = 'read_only'");
	exec(d, "INSERT INTO user_roles (user_id, role_id) VALUES (2, 100)");

	assert_int_equal(rbac_user_has(d, 1, "invoices.void"), 1);
	assert_int_equal(rbac_user_has(d, 1, "*"), 1);
	assert_int_equal(rbac_user_has(d, 2, "customers.view"), 1);  /* read_only */
	assert_int_equal(rbac_user_has(d, 2, "tickets.assign"), 1);  /* custom role */
	assert_int_equal(rbac_user_has(d, 2, "kb_articles.edit"), 0); /* another role's */
	assert_int_equal(rbac_user_has(d, 2, "tickets.edit"), 0);
	assert_int_equal(rbac_user_has(d, 2, "*"), 0);
	assert_int_equal(rbac_user_has(d, 3, "customers.view"), 0);
	assert_int_equal(rbac_user_has(d, 3, "self.view"), 1); /* everyone's own account */
	assert_int_equal(rbac_user_has(d, 99, "customers.view"), 0);
	/* A custom role that lists "*" grants nothing beyond the literal name. */
	exec(d, "INSERT INTO role_permissions (role_id, permission) VALUES (101, '*')");
	exec(d, "INSERT INTO user_roles (user_id, role_id) VALUES (3, 101)");
	assert_int_equal(rbac_user_has(d, 3, "invoices.void"), 0);
	assert_int_equal(rbac_user_has(d, 3, "kb_articles.edit"), 1);
	assert_int_equal(rbac_user_has(d, 3, "*"), 0);
	/* Taking a role away counts at once (no cache). */
	exec(d, "DELETE FROM user_roles WHERE user_id = 2 AND role_id = 100");
	assert_int_equal(rbac_user_has(d, 2, "tickets.assign"), 0);
	exec(d, "DELETE FROM role_permissions WHERE role_id = 101 AND permission = 'kb_articles.edit'");
	assert_int_equal(rbac_user_has(d, 3, "kb_articles.edit"), 0);
	/* A database error is -1 (the pipeline refuses), never "granted". */
	exec(d, "DROP TABLE user_roles");
	assert_int_equal(rbac_user_has(d, 1, "customers.view"), -1);
	db_close(d);
	unit_rmtree(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_builtin_rules),
		cmocka_unit_test(test_perm_names),
		cmocka_unit_test(test_may),
		cmocka_unit_test(test_user_has),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
