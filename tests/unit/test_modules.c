/*
 * The module catalogue as data: every descriptor held to the rules of
 * module.h, so a module added later cannot break them, and the schema
 * generated from it run on a fresh SQLite database.
 */
#include "unit.h"

#include "db/db.h"
#include "dbenv.h"
#include "modules/module.h"

/* A rule broken by one module or field fails naming it. */
#define RULE(cond, where, what) \
	do { \
		if (!(cond)) \
			fail_msg("%s.%s: breaks %s", (where), (what), #cond); \
	} while (0)

/* A lower-case letter, then only characters of rest. */
static int
name_ok(const char *s, const char *rest)
{
	if (s == NULL || !(s[0] >= 'a' && s[0] <= 'z'))
		return 0;
	return s[strspn(s, rest)] == '\0';
}

static int
ident_ok(const char *s)
{
	return name_ok(s, "abcdefghijklmnopqrstuvwxyz0123456789_");
}

/* The index of module name in the catalogue, or -1. */
static int
catalog_index(const char *name)
{
	for (size_t i = 0; i < module_catalog_count; i++)
		if (strcmp(module_catalog[i]->name, name) == 0)
			return (int)i;
	return -1;
}

static void
test_names(void **state)
{
	(void)state;
	static const char *const frame[] = {"id", "version", "created_at", "updated_at",
					    "created_by", "updated_by"};
	assert_true(module_catalog_count > 0);
	for (size_t i = 0; i < module_catalog_count; i++) {
		const struct module_desc *m = module_catalog[i];
		RULE(ident_ok(m->name), m->name, "");
		RULE(m->label != NULL && m->label[0] != '\0', m->name, "");
		RULE(m->nfields > 0 && m->fields != NULL, m->name, "");
		RULE(catalog_index(m->name) == (int)i, m->name, "(duplicate module)");
		RULE(module_find(m->name) == m, m->name, "");
		for (size_t k = 0; k < m->nfields; k++) {
			const struct field_desc *f = &m->fields[k];
			const char *fn = f->name != NULL ? f->name : "(null)";
			RULE(ident_ok(f->name), m->name, fn);
			RULE(f->label != NULL && f->label[0] != '\0', m->name, fn);
			RULE(module_field(m, f->name) == f, m->name, fn); /* no duplicate fields */
			for (size_t j = 0; j < BW_ARRAY_LEN(frame); j++)
				RULE(strcmp(f->name, frame[j]) != 0, m->name, fn);
		}
	}
	assert_null(module_find("nope"));
}

/* The rules of one field of module i. */
static void
check_field(size_t i, const struct field_desc *f)
{
	const char *mn = module_catalog[i]->name, *fn = f->name;
	/* Sealed values cannot be sorted or compared by the database. */
	RULE(!(f->flags & FF_ENCRYPTED) || !(f->flags & (FF_SORT | FF_FILTER)), mn, fn);
	RULE(!(f->flags & FF_ENCRYPTED) ||
		     (f->type == FT_STRING || f->type == FT_TEXT || f->type == FT_EMAIL),
	     mn, fn);
	RULE(!(f->flags & FF_WRITEONLY) || !(f->flags & (FF_SORT | FF_FILTER)), mn, fn);
	RULE(!((f->flags & FF_READONLY) && (f->flags & FF_REQUIRED)), mn, fn);
	RULE(f->type == FT_REF || f->ref == NULL, mn, fn);
	/* A reference scoped to a parent names a field both rows have (customer_id). */
	if (f->same != NULL) {
		const struct module_desc *target = module_find(f->ref);
		RULE(f->type == FT_REF, mn, fn);
		RULE(module_field(module_catalog[i], f->same) != NULL, mn, fn);
		RULE(target != NULL && module_field(target, f->same) != NULL, mn, fn);
		RULE(!(module_field(module_catalog[i], f->same)->flags & FF_ENCRYPTED), mn, fn);
	}
	RULE(f->type == FT_ENUM || f->enum_values == NULL, mn, fn);
	switch (f->type) {
	case FT_STRING:
	case FT_TEXT:
	case FT_EMAIL:
		RULE(f->max_len > 0, mn, fn);
		break;
	case FT_INT:
		RULE(f->min <= f->max, mn, fn);
		break;
	case FT_MONEY:
		RULE(f->max >= 0, mn, fn);
		break;
	case FT_BOOL:
		RULE(f->def == NULL || strcmp(f->def, "0") == 0 || strcmp(f->def, "1") == 0, mn, fn);
		break;
	case FT_DATE:
		break;
	case FT_ENUM: {
		RULE(f->enum_values != NULL && f->enum_values[0] != NULL, mn, fn);
		int def_found = f->def == NULL;
		for (size_t v = 0; f->enum_values[v] != NULL; v++) {
			RULE(ident_ok(f->enum_values[v]), mn, fn);
			RULE(strlen(f->enum_values[v]) <= 32, mn, fn); /* stored as @STR(32) */
			def_found |= f->def != NULL && strcmp(f->def, f->enum_values[v]) == 0;
		}
		RULE(def_found, mn, fn);
		break;
	}
	case FT_REF: {
		/* "users", or a module earlier in the catalogue (parents first). */
		int at = f->ref != NULL ? catalog_index(f->ref) : -1;
		RULE(f->ref != NULL && (strcmp(f->ref, "users") == 0 || (at >= 0 && (size_t)at < i)),
		     mn, fn);
		break;
	}
	default:
		fail_msg("%s.%s: unknown type %d", mn, fn, (int)f->type);
	}
}

static void
test_field_rules(void **state)
{
	(void)state;
	for (size_t i = 0; i < module_catalog_count; i++)
		for (size_t k = 0; k < module_catalog[i]->nfields; k++)
			check_field(i, &module_catalog[i]->fields[k]);
}

static void
test_parents_and_actions(void **state)
{
	(void)state;
	for (size_t i = 0; i < module_catalog_count; i++) {
		const struct module_desc *m = module_catalog[i];
		if (m->parent != NULL) {
			const struct field_desc *p = module_field(m, m->parent);
			RULE(p != NULL, m->name, m->parent);
			RULE(p->type == FT_REF, m->name, m->parent);
			RULE(p->flags & FF_REQUIRED, m->name, m->parent);
			RULE(p->flags & FF_IMMUTABLE, m->name, m->parent);
		}
		RULE(m->nactions == 0 || m->actions != NULL, m->name, "actions");
		for (size_t a = 0; a < m->nactions; a++) {
			const struct action_desc *ad = &m->actions[a];
			const char *an = ad->name != NULL ? ad->name : "(null)";
			RULE(name_ok(ad->name, "abcdefghijklmnopqrstuvwxyz_"), m->name, an);
			RULE(ad->label != NULL && ad->label[0] != '\0', m->name, an);
			RULE(ad->run != NULL, m->name, an);
			for (size_t b = 0; b < a; b++)
				RULE(strcmp(ad->name, m->actions[b].name) != 0, m->name, an);
		}
	}
}

static void
test_versions(void **state)
{
	(void)state;
	/* Every module and field of this catalogue arrives with tenant schema 6. */
	for (size_t i = 0; i < module_catalog_count; i++) {
		const struct module_desc *m = module_catalog[i];
		RULE(m->since == 6, m->name, "since");
		for (size_t k = 0; k < m->nfields; k++)
			RULE(m->fields[k].since == 6, m->name, m->fields[k].name);
	}
}

static void
test_required_modules(void **state)
{
	(void)state;
	static const char *const required[] = {
		"customers",  "contacts",  "sites",     "assets",   "tickets",    "ticket_comments",
		"time_entries", "projects", "project_tasks", "invoices", "estimates", "payments",
		"products",   "contracts", "kb_articles", "network_devices",
	};
	for (size_t i = 0; i < BW_ARRAY_LEN(required); i++) {
		assert_non_null(module_find(required[i]));
	}
	assert_int_equal(module_catalog_count, 18);
	assert_non_null(module_find("invoice_lines"));
	assert_non_null(module_find("estimate_lines"));
}

/*
 * The policy of docs/modules.md: no module stores passwords of customers'
 * own services. The one credential is the network device's, sealed and
 * write-only, revealed only through its own action.
 */
static void
test_no_customer_passwords(void **state)
{
	(void)state;
	size_t wo = 0;
	for (size_t i = 0; i < module_catalog_count; i++) {
		const struct module_desc *m = module_catalog[i];
		for (size_t k = 0; k < m->nfields; k++) {
			const struct field_desc *f = &m->fields[k];
			RULE(strstr(f->name, "password") == NULL, m->name, f->name);
			RULE(strstr(f->name, "passwd") == NULL, m->name, f->name);
			if (f->flags & FF_WRITEONLY) {
				RULE(f->flags & FF_ENCRYPTED, m->name, f->name);
				RULE(strcmp(m->name, "network_devices") == 0 &&
					     strcmp(f->name, "credential") == 0,
				     m->name, f->name);
				wo++;
			}
		}
	}
	assert_int_equal(wo, 1);
	const struct module_desc *nd = module_find("network_devices");
	assert_non_null(nd);
	const struct field_desc *cred = module_field(nd, "credential");
	assert_non_null(cred);
	assert_true(cred->flags & FF_ENCRYPTED);
	assert_true(cred->flags & FF_WRITEONLY);
	int reveal = 0;
	for (size_t a = 0; a < nd->nactions; a++)
		reveal |= strcmp(nd->actions[a].name, "reveal_credential") == 0;
	assert_true(reveal);
	assert_non_null(nd->present); /* the password warning */
}

/* Some of the spelt-out shape of the billing and service modules. */
static void
test_billing_shape(void **state)
{
	(void)state;
	static const char *const docs[] = {"invoices", "estimates"};
	for (size_t i = 0; i < BW_ARRAY_LEN(docs); i++) {
		const struct module_desc *m = module_find(docs[i]);
		assert_non_null(m);
		assert_non_null(m->check);
		assert_non_null(m->can_delete);
		assert_true(module_field(m, "status")->flags & FF_ACTION);
		assert_true(module_field(m, "total_cents")->flags & FF_READONLY);
		assert_true(module_field(m, "subtotal_cents")->flags & FF_READONLY);
		assert_true(module_field(m, "tax_cents")->flags & FF_READONLY);
	}
	static const char *const lines[] = {"invoice_lines", "estimate_lines"};
	for (size_t i = 0; i < BW_ARRAY_LEN(lines); i++) {
		const struct module_desc *m = module_find(lines[i]);
		assert_non_null(m);
		assert_non_null(m->check);
		assert_non_null(m->after_write);
		assert_non_null(m->can_delete);
		assert_true(module_field(m, "amount_cents")->flags & FF_READONLY);
	}
	const struct module_desc *inv = module_find("invoices");
	int void_destructive = 0;
	for (size_t a = 0; a < inv->nactions; a++)
		if (strcmp(inv->actions[a].name, "void") == 0)
			void_destructive = (inv->actions[a].flags & ACTION_DESTRUCTIVE) != 0;
	assert_true(void_destructive);
	const struct module_desc *t = module_find("tickets");
	assert_non_null(t->check);
	assert_true(module_field(t, "assignee_id")->flags & FF_ACTION);
	assert_true(module_field(module_find("time_entries"), "user_id")->flags & FF_READONLY);
}

/* The portable DDL of one version, run on d; the number of steps. */
static size_t
run_steps(db *d, int version)
{
	char **steps = module_schema_steps(version);
	assert_non_null(steps);
	size_t n = 0;
	for (; steps[n] != NULL; n++) {
		char *sql = db_dialect_sql(db_driver_of(d), steps[n]);
		assert_non_null(sql);
		if (db_exec(d, sql) != BW_OK)
			fail_msg("%s: %s", sql, db_errmsg(d));
		free(sql);
	}
	module_schema_free(steps);
	return n;
}

/*
 * Every table is there with exactly the columns of its descriptor besides
 * the frame. count_sql counts the columns of table ?1 called ?2 (or, with
 * ?2 NULL, all but the frame's); ?3 is ?2 again.
 */
static void
check_tables(db *d, const char *count_sql)
{
	for (size_t i = 0; i < module_catalog_count; i++) {
		const struct module_desc *m = module_catalog[i];
		for (size_t k = 0; k <= m->nfields; k++) {
			db_stmt *s;
			int row;
			const char *col = k < m->nfields ? m->fields[k].name : NULL;
			assert_int_equal(db_prepare(d, count_sql, &s), BW_OK);
			assert_int_equal(db_bind_text(s, 1, m->name), BW_OK);
			for (int n = 2; n <= 3; n++)
				assert_int_equal(col ? db_bind_text(s, n, col) : db_bind_null(s, n), BW_OK);
			assert_int_equal(db_step(s, &row), BW_OK);
			assert_true(row);
			RULE(db_col_int(s, 0) == (col ? 1 : (int64_t)m->nfields), m->name,
			     col ? col : "(columns)");
			db_finalize(s);
		}
		/* And the frame's version (optimistic concurrency), added by its own migration. */
		db_stmt *s;
		int row;
		assert_int_equal(db_prepare(d, count_sql, &s), BW_OK);
		assert_int_equal(db_bind_text(s, 1, m->name), BW_OK);
		assert_int_equal(db_bind_text(s, 2, "version"), BW_OK);
		assert_int_equal(db_bind_text(s, 3, "version"), BW_OK);
		assert_int_equal(db_step(s, &row), BW_OK);
		RULE(row && db_col_int(s, 0) == 1, m->name, "version");
		db_finalize(s);
	}
}

/*
 * Schema 5 and 7 to 11 add no module; 6 creates every table; 12 gives
 * each its version column (one ALTER per table), and rows made before it
 * are at version 1.
 */
static void
check_schema(db *d, const char *count_sql)
{
	assert_int_equal(run_steps(d, 5), 0);
	assert_true(run_steps(d, 6) >= module_catalog_count);
	assert_int_equal(db_exec(d, "INSERT INTO customers (name, created_at, updated_at, created_by,"
				    " updated_by) VALUES ('Before', 0, 0, 0, 0)"),
			 BW_OK);
	for (int v = 7; v < MODULE_ROW_VERSION_SINCE; v++)
		assert_int_equal(run_steps(d, v), 0);
	assert_int_equal(run_steps(d, MODULE_ROW_VERSION_SINCE), module_catalog_count);
	check_tables(d, count_sql);
	db_stmt *s;
	int row;
	assert_int_equal(db_prepare(d, "SELECT version FROM customers WHERE name = 'Before'", &s),
			 BW_OK);
	assert_int_equal(db_step(s, &row), BW_OK);
	assert_true(row);
	assert_int_equal(db_col_int(s, 0), 1);
	db_finalize(s);
}

static void
test_schema_sqlite(void **state)
{
	(void)state;
	char dir[64], path[128], err[256];
	db *d = NULL;
	assert_int_equal(unit_mkdtemp(dir, sizeof(dir), "modules"), 0);
	snprintf(path, sizeof(path), "%s/t.db", dir);
	struct db_params p = {.driver = DB_SQLITE, .path = path, .create = 1};
	assert_int_equal(db_open(&p, &d, err, sizeof(err)), BW_OK);
	check_schema(d, "SELECT COUNT(*) FROM pragma_table_info(?)"
			" WHERE (? IS NULL AND name NOT IN ('id', 'version', 'created_at',"
			" 'updated_at', 'created_by', 'updated_by')) OR name = ?");
	db_close(d);
	assert_int_equal(unit_rmtree(dir), 0);
}

/*
 * A table whose CREATE TABLE outgrows any small buffer: the builder once
 * wrote it into 4 KiB with snprintf(sql + off, cap - off, ...), so past
 * 4 KiB cap - off wrapped and the writes ran off the buffer (ASan: heap
 * overflow). nfields fields of name_len-character names, from malloc.
 */
struct synth {
	struct field_desc *fields;
	char *names;
	struct module_desc m;
};

static void
synth_make(struct synth *y, size_t nfields, size_t name_len)
{
	memset(y, 0, sizeof(*y));
	y->fields = calloc(nfields, sizeof(*y->fields));
	y->names = malloc(nfields * (name_len + 1));
	assert_non_null(y->fields);
	assert_non_null(y->names);
	for (size_t i = 0; i < nfields; i++) {
		char *n = y->names + i * (name_len + 1);
		char num[24];
		int nl = snprintf(num, sizeof(num), "_%05u", (unsigned)i);
		assert_true(nl > 0 && (size_t)nl < name_len);
		memset(n, 'c', name_len - (size_t)nl);
		memcpy(n + name_len - (size_t)nl, num, (size_t)nl + 1);
		y->fields[i] = (struct field_desc){.name = n, .label = "Long", .type = FT_STRING,
						   .flags = FF_REQUIRED | (i == 0 ? FF_SORT : 0),
						   .max_len = 200, .since = 6};
	}
	y->m = (struct module_desc){.name = "synth_wide", .label = "Wide", .fields = y->fields,
				    .nfields = nfields, .since = 6};
}

static void
synth_free(struct synth *y)
{
	free(y->fields);
	free(y->names);
}

static void
test_schema_wide_table(void **state)
{
	(void)state;
	struct synth y;
	const struct module_desc *mods[1];
	char dir[64], path[128], err[256];
	db *d = NULL;

	/* 300 columns of 48-character names: about 20 KiB of DDL, built whole. */
	synth_make(&y, 300, 48);
	mods[0] = &y.m;
	char **steps = module_schema_steps_of(mods, 1, 6);
	assert_non_null(steps);
	assert_non_null(steps[0]);
	assert_true(strlen(steps[0]) > 16 * 1024);
	assert_true(strncmp(steps[0], "CREATE TABLE synth_wide ( id @ID, ", 34) == 0);
	const char *tail = ", created_by @INT NOT NULL, updated_by @INT NOT NULL)@OPTS";
	assert_string_equal(steps[0] + strlen(steps[0]) - strlen(tail), tail);
	for (size_t i = 0; i < y.m.nfields; i++) {
		char want[96];
		snprintf(want, sizeof(want), ", %s @STR(200) NOT NULL", y.fields[i].name);
		if (strstr(steps[0], want) == NULL)
			fail_msg("column %zu missing", i);
	}
	/* The frame's indexes and the sort field's come after it. */
	assert_non_null(steps[1]);
	assert_non_null(steps[2]);
	assert_null(steps[3]);

	/* And it is real DDL: SQLite makes the table with every column. */
	assert_int_equal(unit_mkdtemp(dir, sizeof(dir), "modules"), 0);
	snprintf(path, sizeof(path), "%s/t.db", dir);
	struct db_params p = {.driver = DB_SQLITE, .path = path, .create = 1};
	assert_int_equal(db_open(&p, &d, err, sizeof(err)), BW_OK);
	for (size_t i = 0; steps[i] != NULL; i++) {
		char *sql = db_dialect_sql(DB_SQLITE, steps[i]);
		assert_non_null(sql);
		if (db_exec(d, sql) != BW_OK)
			fail_msg("%.200s...: %s", sql, db_errmsg(d));
		free(sql);
	}
	db_stmt *s;
	int row;
	assert_int_equal(db_prepare(d, "SELECT COUNT(*) FROM pragma_table_info('synth_wide')", &s),
			 BW_OK);
	assert_int_equal(db_step(s, &row), BW_OK);
	assert_true(row);
	assert_int_equal(db_col_int(s, 0), 300 + 5);
	db_finalize(s);
	db_close(d);
	assert_int_equal(unit_rmtree(dir), 0);
	module_schema_free(steps);
	synth_free(&y);

	/* A table made once rows have versions has the column from the start, and no ALTER. */
	synth_make(&y, 3, 8);
	for (size_t i = 0; i < y.m.nfields; i++)
		y.fields[i].since = MODULE_ROW_VERSION_SINCE;
	y.m.since = MODULE_ROW_VERSION_SINCE;
	mods[0] = &y.m;
	steps = module_schema_steps_of(mods, 1, MODULE_ROW_VERSION_SINCE);
	assert_non_null(steps);
	assert_true(strncmp(steps[0], "CREATE TABLE synth_wide ( id @ID, version @INT NOT NULL"
				      " DEFAULT 1, ", 67) == 0);
	for (size_t i = 0; steps[i] != NULL; i++)
		assert_null(strstr(steps[i], "ALTER TABLE"));
	module_schema_free(steps);
	/* ...while an older table is given one at that version. */
	y.m.since = 6;
	for (size_t i = 0; i < y.m.nfields; i++)
		y.fields[i].since = 6;
	steps = module_schema_steps_of(mods, 1, MODULE_ROW_VERSION_SINCE);
	assert_non_null(steps);
	assert_string_equal(steps[0], "ALTER TABLE synth_wide ADD COLUMN version @INT NOT NULL DEFAULT 1");
	assert_null(steps[1]);
	module_schema_free(steps);
	synth_free(&y);

	/* Past the 1 MiB bound (20,000 columns of 60 characters) it fails, whole. */
	synth_make(&y, 20000, 60);
	mods[0] = &y.m;
	assert_null(module_schema_steps_of(mods, 1, 6));
	synth_free(&y);

	/* A field whose column does not fit is a descriptor bug: no steps, no abort. */
	synth_make(&y, 2, 200);
	mods[0] = &y.m;
	assert_null(module_schema_steps_of(mods, 1, 6));
	synth_free(&y);
}

/* The same on MariaDB when the runner started one (reserved words, index names, row size). */
static void
test_schema_mariadb(void **state)
{
	(void)state;
	struct config cfg;
	char dir[64], err[256], pw[256] = "";
	db *d = NULL;
	if (!dbenv_have_mariadb())
		skip();
	assert_int_equal(unit_mkdtemp(dir, sizeof(dir), "modules"), 0);
	dbenv_config(&cfg, "mariadb", dir, "saas_unit");
	FILE *pf = fopen(cfg.db_password_file, "r");
	assert_non_null(pf);
	assert_non_null(fgets(pw, sizeof(pw), pf));
	fclose(pf);
	pw[strcspn(pw, "\n")] = '\0';
	struct db_params p = {.driver = DB_MARIADB, .socket = cfg.db_socket, .user = "bulwark",
			      .password = pw};
	assert_int_equal(db_open(&p, &d, err, sizeof(err)), BW_OK);
	assert_int_equal(db_exec(d, "DROP DATABASE IF EXISTS saas_unit_modules"), BW_OK);
	assert_int_equal(db_exec(d, "CREATE DATABASE saas_unit_modules"), BW_OK);
	assert_int_equal(db_exec(d, "USE saas_unit_modules"), BW_OK);
	check_schema(d, "SELECT COUNT(*) FROM information_schema.columns"
			" WHERE table_schema = DATABASE() AND table_name = ? AND ((? IS NULL"
			" AND column_name NOT IN ('id', 'version', 'created_at', 'updated_at',"
			" 'created_by', 'updated_by')) OR column_name = ?)");
	assert_int_equal(db_exec(d, "DROP DATABASE saas_unit_modules"), BW_OK);
	db_close(d);
	assert_int_equal(unit_rmtree(dir), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_field_rules),
		cmocka_unit_test(test_parents_and_actions),
		cmocka_unit_test(test_versions),
		cmocka_unit_test(test_required_modules),
		cmocka_unit_test(test_no_customer_passwords),
		cmocka_unit_test(test_billing_shape),
		cmocka_unit_test(test_schema_sqlite),
		cmocka_unit_test(test_schema_wide_table),
		cmocka_unit_test(test_schema_mariadb),
	};
	return cmocka_run_group_tests_name("modules", tests, NULL, NULL);
}
