/*
 * The module catalogue: the eighteen PSA modules of tenant schema version
 * 6, as data. Parents come before their children, so every reference
 * names "users" or a module listed earlier (tests/unit/test_modules.c
 * holds every descriptor to the rules in module.h).
 *
 * Policy on secrets. Bulwark never stores passwords of the MSP's
 * customers' own services (their e-mail, line-of-business applications,
 * websites): no module has such a field and none may be added. Network
 * device credentials are the one exception, because the MSP itself manages
 * those devices; they are encrypted at rest, write-only in the API,
 * revealed only through an action with its own permission
 * (network_devices.reveal_credential), and password authentication
 * carries a warning recommending SSH keys. See docs/modules.md.
 *
 * Blind indexes (FF_BLIND, docs/search.md): only the e-mail addresses and
 * telephone numbers of customers and contacts, the values an MSP looks a
 * caller up by. Addresses, ticket texts and comments are free text (an
 * exact match finds nothing useful, and equal texts would show); card
 * digits, device addresses, user names and credentials are never indexed.
 */
#include "desc.h"

#include <string.h>

#include "hooks.h"

/* Every field of this catalogue arrives with tenant schema version 6. */
#define V6 .since = 6

#define F_STR(n, l, len, fl) {.name = n, .label = l, .type = FT_STRING, .flags = (fl), .max_len = (len), V6}
#define F_TEXT(n, l, len, fl) {.name = n, .label = l, .type = FT_TEXT, .flags = (fl), .max_len = (len), V6}
#define F_EMAIL(n, l, fl) {.name = n, .label = l, .type = FT_EMAIL, .flags = (fl), .max_len = 254, V6}
#define F_INT(n, l, fl, lo, hi, d) \
	{.name = n, .label = l, .type = FT_INT, .flags = (fl), .min = (lo), .max = (hi), .def = (d), V6}
#define F_MONEY(n, l, fl) {.name = n, .label = l, .type = FT_MONEY, .flags = (fl), V6}
#define F_BOOL(n, l, fl, d) {.name = n, .label = l, .type = FT_BOOL, .flags = (fl), .def = (d), V6}
#define F_ENUM(n, l, fl, v, d) \
	{.name = n, .label = l, .type = FT_ENUM, .flags = (fl), .enum_values = (v), .def = (d), V6}
#define F_REF(n, l, table, fl) {.name = n, .label = l, .type = FT_REF, .flags = (fl), .ref = (table), V6}
/* A reference to a row of the same customer only (a ticket's contact, a device's site). */
#define F_REF_SAME(n, l, table, fl, shared) \
	{.name = n, .label = l, .type = FT_REF, .flags = (fl), .ref = (table), .same = (shared), V6}
#define F_DATE(n, l, fl) {.name = n, .label = l, .type = FT_DATE, .flags = (fl), V6}

/* The reference to the owning row of a child module: given once, on create. */
#define F_PARENT(n, l, table) F_REF(n, l, table, FF_REQUIRED | FF_IMMUTABLE | FF_FILTER)
#define F_CUSTOMER F_PARENT("customer_id", "Customer", "customers")

#define MODULE(n, l, par, f) \
	.name = n, .label = l, .parent = par, .fields = f, .nfields = BW_ARRAY_LEN(f), V6
#define ACTIONS(a) .actions = a, .nactions = BW_ARRAY_LEN(a)

/* --- customers and their records ------------------------------------------ */

static const char *const customer_status[] = {"active", "inactive", NULL};

static const struct field_desc customer_fields[] = {
	F_STR("name", "Name", 200, FF_REQUIRED | FF_SORT | FF_FILTER),
	F_ENUM("status", "Status", FF_SORT | FF_FILTER, customer_status, "active"),
	F_EMAIL("email", "E-mail", FF_ENCRYPTED | FF_PII | FF_BLIND),
	F_STR("phone", "Phone", 50, FF_ENCRYPTED | FF_PII | FF_BLIND | FF_PHONE),
	F_TEXT("address", "Address", 1000, FF_ENCRYPTED | FF_PII),
	F_TEXT("notes", "Notes", 10000, 0),
};

static const struct module_desc customers = {
	MODULE("customers", "Customers", NULL, customer_fields),
	.attachments = 1,
};

static const struct field_desc contact_fields[] = {
	F_CUSTOMER,
	F_STR("first_name", "First name", 100, FF_REQUIRED),
	F_STR("last_name", "Last name", 100, FF_SORT),
	F_STR("title", "Job title", 100, 0),
	F_EMAIL("email", "E-mail", FF_ENCRYPTED | FF_PII | FF_BLIND),
	F_STR("phone", "Phone", 50, FF_ENCRYPTED | FF_PII | FF_BLIND | FF_PHONE),
};

static const struct module_desc contacts = {
	MODULE("contacts", "Contacts", "customer_id", contact_fields),
};

static const struct field_desc site_fields[] = {
	F_CUSTOMER,
	F_STR("name", "Name", 200, FF_REQUIRED | FF_SORT),
	F_TEXT("address", "Address", 1000, FF_ENCRYPTED | FF_PII),
	F_TEXT("notes", "Notes", 10000, 0),
};

static const struct module_desc sites = {
	MODULE("sites", "Sites", "customer_id", site_fields),
};

static const char *const asset_kinds[] = {"workstation", "laptop", "server", "printer",
					  "network",     "phone",  "other",  NULL};

static const struct field_desc asset_fields[] = {
	F_CUSTOMER,
	F_REF_SAME("site_id", "Site", "sites", FF_FILTER, "customer_id"),
	F_STR("name", "Name", 200, FF_REQUIRED | FF_SORT),
	F_ENUM("kind", "Kind", FF_FILTER, asset_kinds, "other"),
	F_STR("serial", "Serial number", 100, FF_FILTER),
	F_DATE("purchased_on", "Purchased on", 0),
	F_DATE("warranty_until", "Warranty until", FF_SORT),
};

static const struct module_desc assets = {
	MODULE("assets", "Assets", "customer_id", asset_fields),
	.attachments = 1,
};

/* --- service desk ---------------------------------------------------------- */

static const char *const ticket_status[] = {"new",     "open",     "in_progress", "waiting",
					    "resolved", "closed", NULL};
static const char *const ticket_priority[] = {"low", "normal", "high", "urgent", NULL};

static const struct field_desc ticket_fields[] = {
	F_CUSTOMER,
	F_REF_SAME("contact_id", "Contact", "contacts", 0, "customer_id"),
	F_STR("subject", "Subject", 200, FF_REQUIRED | FF_SORT),
	F_TEXT("description", "Description", 20000, FF_ENCRYPTED | FF_PII),
	F_ENUM("status", "Status", FF_SORT | FF_FILTER, ticket_status, "new"),
	F_ENUM("priority", "Priority", FF_SORT | FF_FILTER, ticket_priority, "normal"),
	F_REF("assignee_id", "Assignee", "users", FF_ACTION | FF_FILTER),
	F_DATE("due_on", "Due on", FF_SORT),
};

/*
 * Actions are held to the admin IP allowlist unless ACTION_ROUTINE says they
 * are ordinary record work, like an edit (docs/adr/0011-allowlist-scope.md).
 */
static const struct action_desc ticket_actions[] = {
	{"assign", "Assign", ACTION_ROUTINE, hooks_ticket_assign},
};

static const struct module_desc tickets = {
	MODULE("tickets", "Tickets", "customer_id", ticket_fields),
	.attachments = 1,
	ACTIONS(ticket_actions),
	.check = hooks_ticket_check,
};

static const struct field_desc ticket_comment_fields[] = {
	F_PARENT("ticket_id", "Ticket", "tickets"),
	F_TEXT("body", "Comment", 20000, FF_REQUIRED | FF_ENCRYPTED | FF_PII),
	F_BOOL("internal", "Internal", FF_FILTER, "0"),
};

static const struct module_desc ticket_comments = {
	MODULE("ticket_comments", "Ticket comments", "ticket_id", ticket_comment_fields),
	.attachments = 1,
};

/* --- projects and time ----------------------------------------------------- */

static const char *const project_status[] = {"planned", "active", "on_hold", "done", NULL};

static const struct field_desc project_fields[] = {
	F_CUSTOMER,
	F_STR("name", "Name", 200, FF_REQUIRED | FF_SORT),
	F_ENUM("status", "Status", FF_SORT | FF_FILTER, project_status, "planned"),
	F_DATE("starts_on", "Starts on", 0),
	F_DATE("due_on", "Due on", FF_SORT),
	F_MONEY("budget_cents", "Budget", 0),
};

static const struct module_desc projects = {
	MODULE("projects", "Projects", "customer_id", project_fields),
	.attachments = 1,
};

static const char *const task_status[] = {"todo", "doing", "done", NULL};

static const struct field_desc project_task_fields[] = {
	F_PARENT("project_id", "Project", "projects"),
	F_STR("title", "Title", 200, FF_REQUIRED | FF_SORT),
	F_ENUM("status", "Status", FF_SORT | FF_FILTER, task_status, "todo"),
	F_REF("assignee_id", "Assignee", "users", FF_FILTER),
	F_DATE("due_on", "Due on", FF_SORT),
	F_INT("estimate_minutes", "Estimate (minutes)", 0, 0, 100000, NULL),
};

static const struct module_desc project_tasks = {
	MODULE("project_tasks", "Project tasks", "project_id", project_task_fields),
};

static const struct field_desc time_entry_fields[] = {
	F_REF("user_id", "Technician", "users", FF_READONLY | FF_FILTER),
	F_REF("ticket_id", "Ticket", "tickets", FF_FILTER),
	F_REF("project_task_id", "Project task", "project_tasks", FF_FILTER),
	F_DATE("worked_on", "Worked on", FF_REQUIRED | FF_SORT | FF_FILTER),
	F_INT("minutes", "Minutes", FF_REQUIRED, 1, 1440, NULL),
	F_BOOL("billable", "Billable", FF_FILTER, "1"),
	F_TEXT("notes", "Notes", 2000, 0),
};

static const struct module_desc time_entries = {
	MODULE("time_entries", "Time entries", NULL, time_entry_fields),
	.check = hooks_time_entry_check,
};

/* --- sales and billing ----------------------------------------------------- */

static const struct field_desc product_fields[] = {
	F_STR("name", "Name", 200, FF_REQUIRED | FF_SORT | FF_FILTER),
	F_STR("sku", "SKU", 64, FF_SORT | FF_FILTER),
	F_TEXT("description", "Description", 5000, 0),
	F_MONEY("unit_price_cents", "Unit price", FF_REQUIRED | FF_SORT),
	F_BOOL("active", "Active", FF_FILTER, "1"),
};

static const struct module_desc products = {
	MODULE("products", "Products", NULL, product_fields),
};

static const char *const contract_status[] = {"draft", "active", "expired", "cancelled", NULL};

static const struct field_desc contract_fields[] = {
	F_CUSTOMER,
	F_STR("name", "Name", 200, FF_REQUIRED | FF_SORT),
	F_ENUM("status", "Status", FF_SORT | FF_FILTER, contract_status, "draft"),
	F_DATE("starts_on", "Starts on", FF_REQUIRED | FF_SORT),
	F_DATE("ends_on", "Ends on", FF_SORT),
	F_MONEY("monthly_cents", "Monthly fee", 0),
	F_TEXT("notes", "Notes", 10000, 0),
};

static const struct module_desc contracts = {
	MODULE("contracts", "Contracts", "customer_id", contract_fields),
	.check = hooks_contract_check,
};

/* The computed totals every invoice and estimate carries. */
#define F_TOTALS \
	F_INT("tax_rate_bp", "Tax rate (basis points)", 0, 0, 10000, "0"), \
	F_MONEY("subtotal_cents", "Subtotal", FF_READONLY), \
	F_MONEY("tax_cents", "Tax", FF_READONLY), \
	F_MONEY("total_cents", "Total", FF_READONLY | FF_SORT)

static const char *const invoice_status[] = {"draft", "sent", "paid", "void", NULL};

static const struct field_desc invoice_fields[] = {
	F_CUSTOMER,
	F_STR("number", "Number", 32, FF_SORT | FF_FILTER),
	F_ENUM("status", "Status", FF_ACTION | FF_SORT | FF_FILTER, invoice_status, "draft"),
	F_DATE("issued_on", "Issued on", FF_SORT),
	F_DATE("due_on", "Due on", FF_SORT),
	F_TOTALS,
	F_TEXT("notes", "Notes", 10000, 0),
};

static const struct action_desc invoice_actions[] = {
	{"send", "Send", 0, hooks_doc_send},
	{"void", "Void", ACTION_DESTRUCTIVE, hooks_invoice_void},
};

static const struct module_desc invoices = {
	MODULE("invoices", "Invoices", "customer_id", invoice_fields),
	.attachments = 1,
	ACTIONS(invoice_actions),
	.check = hooks_doc_check,
	.can_delete = hooks_doc_can_delete,
};

/* The fields of a line of an invoice or estimate, under its parent reference. */
#define F_LINE(parent_field, parent_label, parent_table) \
	F_PARENT(parent_field, parent_label, parent_table), \
	F_REF("product_id", "Product", "products", 0), \
	F_STR("description", "Description", 500, FF_REQUIRED), \
	F_INT("quantity", "Quantity", FF_REQUIRED, 1, 1000000, NULL), \
	F_MONEY("unit_price_cents", "Unit price", FF_REQUIRED), \
	F_MONEY("amount_cents", "Amount", FF_READONLY)

static const struct field_desc invoice_line_fields[] = {
	F_LINE("invoice_id", "Invoice", "invoices"),
};

static const struct module_desc invoice_lines = {
	MODULE("invoice_lines", "Invoice lines", "invoice_id", invoice_line_fields),
	.check = hooks_line_check,
	.after_write = hooks_line_after_write,
	.can_delete = hooks_line_can_delete,
};

static const char *const estimate_status[] = {"draft", "sent", "accepted", "declined", NULL};

static const struct field_desc estimate_fields[] = {
	F_CUSTOMER,
	F_STR("number", "Number", 32, FF_SORT | FF_FILTER),
	F_ENUM("status", "Status", FF_ACTION | FF_SORT | FF_FILTER, estimate_status, "draft"),
	F_DATE("valid_until", "Valid until", FF_SORT),
	F_TOTALS,
	F_TEXT("notes", "Notes", 10000, 0),
};

static const struct action_desc estimate_actions[] = {
	{"send", "Send", 0, hooks_doc_send},
	{"accept", "Accept", ACTION_ROUTINE, hooks_estimate_accept},
	{"decline", "Decline", ACTION_ROUTINE, hooks_estimate_decline},
};

static const struct module_desc estimates = {
	MODULE("estimates", "Estimates", "customer_id", estimate_fields),
	.attachments = 1,
	ACTIONS(estimate_actions),
	.check = hooks_doc_check,
	.can_delete = hooks_doc_can_delete,
};

static const struct field_desc estimate_line_fields[] = {
	F_LINE("estimate_id", "Estimate", "estimates"),
};

static const struct module_desc estimate_lines = {
	MODULE("estimate_lines", "Estimate lines", "estimate_id", estimate_line_fields),
	.check = hooks_line_check,
	.after_write = hooks_line_after_write,
	.can_delete = hooks_line_can_delete,
};

static const char *const payment_methods[] = {"card", "ach", "check", "cash", "other", NULL};

static const struct field_desc payment_fields[] = {
	F_PARENT("invoice_id", "Invoice", "invoices"),
	F_MONEY("amount_cents", "Amount", FF_REQUIRED | FF_SORT),
	F_ENUM("method", "Method", FF_REQUIRED | FF_FILTER, payment_methods, NULL),
	F_STR("card_last_four", "Card (last four digits)", 4, FF_ENCRYPTED | FF_PII),
	F_DATE("received_on", "Received on", FF_REQUIRED | FF_SORT | FF_FILTER),
	F_STR("reference", "Reference", 100, 0),
};

static const struct module_desc payments = {
	MODULE("payments", "Payments", "invoice_id", payment_fields),
	.check = hooks_payment_check,
	.after_write = hooks_payment_after_write,
};

/* --- knowledge and infrastructure ------------------------------------------ */

static const struct field_desc kb_article_fields[] = {
	F_STR("title", "Title", 200, FF_REQUIRED | FF_SORT | FF_FILTER),
	F_TEXT("body", "Article", 100000, FF_REQUIRED),
	F_STR("category", "Category", 64, FF_SORT | FF_FILTER),
	F_BOOL("published", "Published", FF_FILTER, "0"),
};

static const struct module_desc kb_articles = {
	MODULE("kb_articles", "Knowledge base", NULL, kb_article_fields),
	.attachments = 1,
};

static const char *const device_kinds[] = {"router", "switch", "firewall", "access_point", "other",
					   NULL};
static const char *const device_auth[] = {"ssh_key", "password", "none", NULL};

/*
 * The one module holding a credential (see the policy at the top): sealed,
 * write-only, shown only by the reveal_credential action.
 */
static const struct field_desc network_device_fields[] = {
	F_CUSTOMER,
	F_REF_SAME("site_id", "Site", "sites", FF_FILTER, "customer_id"),
	F_STR("name", "Name", 200, FF_REQUIRED | FF_SORT),
	F_ENUM("kind", "Kind", FF_FILTER, device_kinds, "other"),
	F_STR("management_address", "Management address", 255, FF_ENCRYPTED),
	F_ENUM("auth_method", "Authentication", FF_REQUIRED | FF_FILTER, device_auth, NULL),
	F_STR("username", "User name", 100, FF_ENCRYPTED),
	F_TEXT("credential", "SSH private key or password", 16000, FF_ENCRYPTED | FF_WRITEONLY),
	F_TEXT("notes", "Notes", 10000, 0),
};

static const struct action_desc network_device_actions[] = {
	/* An admin route: the IP allowlist decides where credentials can be revealed from. */
	{"reveal_credential", "Reveal credential", ACTION_ADMIN, hooks_network_device_reveal},
};

static const struct module_desc network_devices = {
	MODULE("network_devices", "Network devices", "customer_id", network_device_fields),
	ACTIONS(network_device_actions),
	.check = hooks_network_device_check,
	.present = hooks_network_device_present,
};

/* --- the catalogue ---------------------------------------------------------- */

const struct module_desc *const module_catalog[] = {
	&customers,     &contacts,  &sites,          &assets,   &tickets,
	&ticket_comments, &projects, &project_tasks, &time_entries, &products,
	&contracts,     &invoices,  &invoice_lines,  &estimates, &estimate_lines,
	&payments,      &kb_articles, &network_devices,
};
const size_t module_catalog_count = BW_ARRAY_LEN(module_catalog);

const struct module_desc *
module_find(const char *name)
{
	for (size_t i = 0; i < module_catalog_count; i++)
		if (strcmp(module_catalog[i]->name, name) == 0)
			return module_catalog[i];
	return NULL;
}

const struct field_desc *
module_field(const struct module_desc *m, const char *name)
{
	for (size_t k = 0; k < m->nfields; k++)
		if (strcmp(m->fields[k].name, name) == 0)
			return &m->fields[k];
	return NULL;
}
