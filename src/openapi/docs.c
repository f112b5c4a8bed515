/*
 * The documentation of the built-in routes: what their bodies, answers and
 * query parameters are, written by reading each handler (the *_api.c files of src/auth,
 * src/users/users_api.c, src/rbac/rbac_api.c, src/audit/audit_api.c,
 * src/modules/meta_api.c, src/server/routes.c). Module routes need none:
 * openapi.c makes them from the descriptors; their actions' bodies are at
 * the end. A route of the table without an entry here fails the build of
 * the document (and so `make check`); an entry for a route that does not
 * exist is left out of the document.
 *
 * The JSON texts are written with ' for " (openapi.c swaps them before
 * parsing) so that they stay readable; none may hold an apostrophe of its
 * own (write \\u0027 in a description instead).
 *
 * Lists, timestamps, versions and ETags follow the conventions of
 * docs/api.md: the list envelope, RFC 3339 UTC strings, "version" on users
 * and roles.
 */
#include "openapi.h"

#define REF(name) "{'$ref': '#/components/schemas/" name "'}"
#define STR(max) "{'type': 'string', 'maxLength': " #max "}"
#define TIME "{'type': 'string', 'format': 'date-time'}"
#define TIME_OR_NULL "{'type': ['string', 'null'], 'format': 'date-time'}"
#define ID "{'type': 'integer', 'minimum': 1}"
#define FLAG(name) "{'type': 'object', 'required': ['" name "'], 'properties': {'" name "': {'const': true}}}"
#define PASSWORD_BODY                                                                              \
	"{'type': 'object', 'required': ['password'], 'properties': {'password': {'type': 'string', " \
	"'maxLength': 1024, 'writeOnly': true, 'description': 'your current password (re-checked: " \
	"wrong ones count toward the lockout)'}}}"
#define CODE_BODY                                                                                  \
	"{'type': 'object', 'required': ['code'], 'properties': {'code': {'type': 'string', "      \
	"'maxLength': 32, 'writeOnly': true, 'description': 'a 6-digit TOTP code or a recovery "   \
	"code'}}}"

const struct openapi_schema openapi_schemas[] = {
    {"WebhookSubscription",
     "{'type': 'object', 'required': ['id', 'version', 'url', 'host', 'description', "
     "'event_types', 'enabled', 'created_at', 'updated_at'], 'properties': {'id': " ID ", "
     "'version': {'type': 'integer', 'minimum': 1}, 'url': {'type': 'string', 'format': "
     "'uri', 'description': 'https only, on a public address'}, 'host': {'type': 'string'}, "
     "'description': " STR(500) ", 'event_types': {'type': 'array', 'items': {'type': "
     "'string'}, 'description': 'types and patterns: tickets.created, invoices.*, *'}, "
     "'enabled': {'type': 'boolean'}, 'disabled_reason': {'type': ['string', 'null'], "
     "'description': 'why the server disabled it (deliveries failing for days)'}, "
     "'failing_since': " TIME_OR_NULL ", 'previous_secret_until': " TIME_OR_NULL ", "
     "'created_at': " TIME ", 'updated_at': " TIME ", 'secret': {'type': 'string', "
     "'pattern': '^whsec_', 'description': 'only on create and rotate-secret: shown once'}}}"},
    {"WebhookDelivery",
     "{'type': 'object', 'required': ['id', 'event_id', 'webhook_id', 'state', 'attempts', "
     "'response_status', 'latency_ms', 'last_error', 'response_prefix', 'created_at'], "
     "'properties': {'id': " ID ", 'event_id': {'type': 'string', 'pattern': '^evt_'}, "
     "'event_type': {'type': ['string', 'null']}, 'webhook_id': {'type': 'string', "
     "'description': 'the webhook-id header: the same on every attempt'}, 'state': {'enum': "
     "['pending', 'delivered', 'failed', 'cancelled']}, 'attempts': {'type': 'integer'}, "
     "'last_attempt_at': " TIME_OR_NULL ", 'next_attempt_at': " TIME_OR_NULL ", "
     "'response_status': {'type': 'integer', 'description': '0: no response'}, 'latency_ms': "
     "{'type': 'integer'}, 'last_error': {'type': 'string'}, 'response_prefix': {'type': "
     "'string', 'maxLength': 512, 'description': 'the start of the receiver reply'}, "
     "'created_at': " TIME ", 'delivered_at': " TIME_OR_NULL "}}"},
    {"HookEndpoint",
     "{'type': 'object', 'required': ['id', 'version', 'provider', 'path', 'description', "
     "'enabled', 'secret_set', 'created_at', 'updated_at'], 'properties': {'id': " ID ", "
     "'version': {'type': 'integer'}, 'provider': {'enum': ['stripe', 'quickbooks', "
     "'standard']}, 'path': {'type': 'string', 'description': 'the URL path to give the "
     "provider: /api/v1/hooks/<provider>/<endpoint id>'}, 'description': " STR(500) ", "
     "'enabled': {'type': 'boolean'}, 'secret_set': {'const': true}, 'created_at': " TIME ", "
     "'updated_at': " TIME "}}"},
    {"Job",
     "{'type': 'object', 'required': ['id', 'kind', 'payload', 'state', 'attempts', "
     "'max_attempts', 'run_at', 'last_error', 'created_at', 'updated_at'], 'properties': "
     "{'id': " ID ", 'kind': {'type': 'string'}, 'lane': {'type': ['string', 'null']}, "
     "'payload': {'type': 'object', 'description': 'ids, never secrets'}, 'state': {'enum': "
     "['queued', 'running', 'done', 'failed', 'cancelled']}, 'attempts': {'type': "
     "'integer'}, 'max_attempts': {'type': 'integer'}, 'run_at': " TIME ", 'last_error': "
     "{'type': 'string'}, 'created_at': " TIME ", 'updated_at': " TIME "}}"},
    {"File",
     "{'type': 'object', 'required': ['id', 'module', 'row_id', 'name', 'type', 'size', "
     "'sha256', 'created_by', 'created_at'], 'properties': {'id': " ID ", 'module': {'type': "
     "'string'}, 'row_id': " ID ", 'name': {'type': 'string', 'maxLength': 200}, 'type': "
     "{'type': 'string', 'description': 'the MIME type libmagic detected'}, 'size': {'type': "
     "'integer', 'minimum': 1}, 'sha256': {'type': 'string', 'pattern': '^[0-9a-f]{64}$'}, "
     "'created_by': {'type': 'integer'}, 'created_at': " TIME ", 'normalised': {'type': "
     "'boolean', 'description': 'on upload: the name was normalised (trimmed, NFC)'}}}"},
    {"SignedInUser",
     "{'type': 'object', 'required': ['id', 'email', 'is_admin', 'mfa_enabled', "
     "'must_change_password'], 'properties': {'id': {'type': 'integer'}, 'email': {'type': "
     "'string'}, 'is_admin': {'type': 'boolean'}, 'mfa_enabled': {'type': 'boolean'}, "
     "'must_change_password': {'type': 'boolean'}}}"},
    {"Me",
     "{'type': 'object', 'required': ['user', 'tenant', 'auth'], 'properties': {'user': " REF(
	 "SignedInUser") ", 'tenant': {'type': 'string', 'description': 'the tenant slug'}, "
			 "'auth': {'enum': ['session', 'token']}}}"},
    {"User",
     "{'type': 'object', 'required': ['id', 'version', 'email', 'disabled', 'mfa_enabled', "
     "'must_change_password', 'roles'], 'properties': {'id': {'type': 'integer', 'readOnly': "
     "true}, 'version': {'type': 'integer', 'minimum': 1, 'readOnly': true, 'description': "
     "'1 on create, +1 on every change; the ETag'}, 'email': {'type': 'string', 'format': "
     "'email'}, 'disabled': {'type': 'boolean'}, 'mfa_enabled': {'type': 'boolean'}, "
     "'locked_until': " TIME_OR_NULL ", 'must_change_password': {'type': 'boolean'}, "
     "'created_at': " TIME ", 'updated_at': " TIME ", 'roles': {'type': 'array', 'items': "
     "{'type': 'string'}, 'description': 'role names'}}}"},
    {"Role",
     "{'type': 'object', 'required': ['id', 'version', 'name', 'description', 'builtin', "
     "'permissions'], 'properties': {'id': {'type': 'integer', 'readOnly': true}, 'version': "
     "{'type': 'integer', 'minimum': 1, 'readOnly': true}, 'name': {'type': 'string'}, "
     "'description': {'type': 'string'}, 'builtin': {'type': 'boolean'}, 'builtin_key': "
     "{'type': ['string', 'null']}, 'permissions': {'type': 'array', 'items': {'type': "
     "'string'}}}}"},
    {"Token",
     "{'type': 'object', 'required': ['id', 'name', 'prefix', 'scopes'], 'properties': {'id': "
     "{'type': 'integer'}, 'name': {'type': 'string'}, 'prefix': {'type': 'string', "
     "'description': 'the first characters of the token, to tell tokens apart'}, 'scopes': "
     "{'type': 'array', 'items': {'type': 'string'}}, 'expires_at': " TIME_OR_NULL
     ", 'last_used_at': " TIME_OR_NULL ", 'created_at': " TIME "}}"},
    {"MailSettings",
     "{'type': 'object', 'properties': {'from': {'type': ['string', 'null']}, 'from_name': "
     "{'type': 'string'}, 'reply_to': {'type': 'string'}, 'smtp': {'type': ['object', 'null'], "
     "'properties': {'host': {'type': 'string'}, 'port': {'type': 'integer'}, 'security': "
     "{'enum': ['starttls', 'tls', 'none']}, 'username': {'type': 'string'}, 'password_set': "
     "{'type': 'boolean'}}}, 'dkim': {'type': ['object', 'null'], 'properties': {'domain': "
     "{'type': 'string'}, 'selector': {'type': 'string'}, 'dns_name': {'type': 'string'}, "
     "'dns_txt': {'type': 'string'}}}, 'host_server': {'type': 'object', 'properties': "
     "{'host': {'type': ['string', 'null']}, 'from': {'type': 'string'}}}}}"},
    {"MailOutbox",
     "{'type': 'object', 'required': ['id', 'kind', 'state', 'attempts', 'created_at'], "
     "'properties': {'id': {'type': 'integer'}, 'kind': {'type': 'string', 'description': "
     "'what it is: password_reset, password_changed, password_reset_by_admin, "
     "mfa_reset_by_admin'}, 'user_id': {'type': 'integer', 'description': '0: no staff user'}, "
     "'to': {'type': ['string', 'null']}, 'subject': {'type': ['string', 'null']}, 'state': "
     "{'enum': ['queued', 'sent', 'failed']}, 'attempts': {'type': 'integer'}, 'message_id': "
     "{'type': ['string', 'null']}, 'last_reply': {'type': ['string', 'null'], 'description': "
     "'the mail server\\u0027s last answer, or why nothing was sent'}, 'created_at': " TIME
     ", 'sent_at': " TIME_OR_NULL "}}"},
    {"MailboxSettings",
     "{'type': 'object', 'required': ['enabled', 'password_set', 'mailbox', 'unknown_senders', "
     "'state'], 'properties': {'enabled': {'type': 'boolean'}, 'host': {'type': ['string', "
     "'null']}, 'port': {'type': ['integer', 'null']}, 'security': {'enum': ['tls', 'starttls', "
     "'none', null]}, 'username': {'type': ['string', 'null']}, 'password_set': {'type': "
     "'boolean'}, 'mailbox': {'type': 'string'}, 'unknown_senders': {'enum': ['refuse', "
     "'create']}, 'unknown_customer_id': {'type': ['integer', 'null']}, 'trusted_authserv_id': "
     "{'type': ['string', 'null'], 'description': 'the receiving server whose topmost "
     "Authentication-Results header is believed'}, 'poll_seconds': {'type': 'integer'}, "
     "'state': {'type': 'object', 'properties': {'uidvalidity': {'type': 'integer'}, "
     "'next_uid': {'type': 'integer'}, 'last_poll_at': " TIME_OR_NULL ", 'last_error': "
     "{'type': ['string', 'null']}}}}}"},
    {"MailInbound",
     "{'type': 'object', 'required': ['id', 'outcome', 'verified', 'size', 'created_at'], "
     "'properties': {'id': {'type': 'integer'}, 'outcome': {'enum': ['ticket', 'comment', "
     "'ignored', 'refused']}, 'reason': {'type': ['string', 'null']}, 'verified': {'type': "
     "'boolean', 'description': 'the sender was authenticated by the trusted server'}, "
     "'ticket_id': {'type': ['integer', 'null']}, 'comment_id': {'type': ['integer', 'null']}, "
     "'size': {'type': 'integer'}, 'created_at': " TIME "}}"},
    {"TokenCreated",
     "{'type': 'object', 'required': ['id', 'name', 'token', 'scopes'], 'properties': {'id': "
     "{'type': 'integer'}, 'name': {'type': 'string'}, 'token': {'type': 'string', "
     "'description': 'the secret, shown this once: send it as Authorization: Bearer'}, "
     "'scopes': {'type': 'array', 'items': {'type': 'string'}}, 'expires_at': " TIME_OR_NULL
     "}}"},
    {"AuditEntry",
     "{'type': 'object', 'required': ['seq', 'at', 'action'], 'properties': {'seq': {'type': "
     "'integer', 'description': 'position in the tenant\\u0027s hash chain'}, 'at': " TIME
     ", 'actor': {'type': ['string', 'null']}, 'user_id': {'type': ['integer', 'null']}, "
     "'token_id': {'type': ['integer', 'null']}, 'actor_label': {'type': ['string', 'null']}, "
     "'client_ip': {'type': ['string', 'null']}, 'request_id': {'type': ['string', 'null']}, "
     "'entity': {'type': ['string', 'null']}, 'entity_id': {'type': ['integer', 'null']}, "
     "'action': {'type': 'string'}, 'before': {'description': 'the state before (sealed at "
     "rest)'}, 'after': {'description': 'the state after'}, 'effects': {'description': 'other "
     "rows the change touched'}}}"},
    {"Allowlist",
     "{'type': 'object', 'required': ['entries', 'guard_all_changes', 'your_address'], "
     "'properties': {'entries': {'type': 'array', 'items': {'type': 'object', 'required': "
     "['cidr'], 'properties': {'cidr': {'type': 'string'}, 'label': {'type': ['string', "
     "'null']}}}}, 'guard_all_changes': {'type': 'boolean'}, 'your_address': {'type': "
     "'string', 'description': 'the address this request came from'}}}"},
    {"SsoSettings",
     "{'type': 'object', 'required': ['configured', 'enabled', 'sp'], 'properties': {"
     "'configured': {'type': 'boolean'}, 'enabled': {'type': 'boolean'}, 'sp': {'type': "
     "'object', 'description': 'what to give the IdP', 'properties': {'entity_id': {'type': "
     "'string'}, 'acs_url': {'type': 'string'}, 'metadata_url': {'type': 'string'}, "
     "'login_url': {'type': 'string'}, 'certificate': {'type': 'string', 'description': 'PEM; "
     "the private key never leaves the server'}}}, 'idp': {'type': 'object', 'properties': {"
     "'entity_id': {'type': 'string'}, 'sso_url': {'type': 'string'}, 'slo_url': {'type': "
     "'string'}, 'certificates': {'type': 'array', 'items': {'type': 'object', 'properties': "
     "{'sha256': {'type': 'string'}, 'subject': {'type': 'string'}, 'not_after': {'type': "
     "'string', 'format': 'date-time'}, 'key_bits': {'type': 'integer'}}}}}}, "
     "'allowed_domains': {'type': 'array', 'items': {'type': 'string'}}, 'attributes': "
     "{'type': 'object', 'properties': {'email': {'type': ['string', 'null'], 'description': "
     "'null: the NameID is the address'}, 'name': {'type': ['string', 'null']}, 'groups': "
     "{'type': ['string', 'null']}}}, 'group_roles': {'type': 'object', "
     "'additionalProperties': {'type': 'string'}}, 'jit': {'type': 'boolean'}, "
     "'default_role': {'type': 'string'}, 'sso_required': {'type': 'boolean'}, "
     "'idp_initiated': {'type': 'boolean'}}}"},
    {"SecuritySettings",
     "{'type': 'object', 'properties': {'mfa_required': {'type': 'boolean', 'description': "
     "'every staff user must use MFA'}, 'email_idn': {'type': 'boolean', 'description': 'new "
     "e-mail addresses may have internationalised domains'}}}"},
    {"ModuleMeta",
     "{'type': 'object', 'required': ['name', 'label', 'fields', 'actions', 'path'], "
     "'properties': {'name': {'type': 'string'}, 'label': {'type': 'string'}, 'parent': "
     "{'type': ['string', 'null']}, 'path': {'type': 'string'}, 'fields': {'type': 'array', "
     "'items': {'type': 'object', 'required': ['name', 'type'], 'properties': {'name': {'type': "
     "'string'}, 'label': {'type': 'string'}, 'type': {'enum': ['string', 'text', 'integer', "
     "'money', 'boolean', 'enum', 'reference', 'date', 'email']}, 'required': {'type': "
     "'boolean'}, 'encrypted': {'type': 'boolean'}, 'pii': {'type': 'boolean'}, 'sortable': "
     "{'type': 'boolean'}, 'filterable': {'type': 'boolean'}, 'read_only': {'type': "
     "'boolean'}, 'immutable': {'type': 'boolean'}, 'write_only': {'type': 'boolean'}, "
     "'max_length': {'type': 'integer'}, 'min': {'type': 'integer'}, 'max': {'type': "
     "'integer'}, 'references': {'type': 'string'}, 'values': {'type': 'array', 'items': "
     "{'type': 'string'}}, 'default': {'type': 'string'}}}}, 'actions': {'type': 'array', "
     "'items': {'type': 'object', 'properties': {'name': {'type': 'string'}, 'label': {'type': "
     "'string'}, 'permission': {'type': 'string'}}}}}}"},
    {"SearchHit",
     "{'type': 'object', 'required': ['module', 'id', 'label', 'match'], 'properties': "
     "{'module': {'type': 'string'}, 'id': {'type': 'integer'}, 'label': {'type': 'string'}, "
     "'match': {'enum': ['text', 'exact'], 'description': 'exact: a sealed field matched "
     "through its blind index'}}}"},
    {"Deleted",
     "{'type': 'object', 'required': ['id', 'deleted'], 'properties': {'id': {'type': "
     "'integer'}, 'deleted': {'const': true}}}"},
};
const size_t openapi_schemas_count = BW_ARRAY_LEN(openapi_schemas);

/* A page of the audit log: the query of GET /api/v1/reporting/audit. */
#define AUDIT_QUERY                                                                                \
	"[{'name': 'user_id', 'in': 'query', 'schema': {'type': 'integer', 'minimum': 0}, "         \
	"'description': 'rows by this user'}, {'name': 'entity', 'in': 'query', 'schema': {'type': " \
	"'string', 'pattern': '^[a-z0-9_.-]{1,64}$'}, 'description': 'a module, users, roles, "     \
	"auth, ...'}, {'name': 'entity_id', 'in': 'query', 'schema': {'type': 'integer', "          \
	"'minimum': 0}}, {'name': 'action', 'in': 'query', 'schema': {'type': 'string', "           \
	"'pattern': '^[a-z0-9_.-]{1,64}$'}}, {'name': 'from', 'in': 'query', 'schema': {'type': "   \
	"'string', 'maxLength': 128}, 'description': 'rows at or after this time (RFC 3339)'}, "    \
	"{'name': 'to', 'in': 'query', 'schema': {'type': 'string', 'maxLength': 128}, "            \
	"'description': 'rows at or before this time (RFC 3339); not before from'}, {'name': "      \
	"'format', 'in': 'query', 'schema': {'enum': ['json', 'csv']}, 'description': 'csv: an "    \
	"export of the rows (itself audited), at most 10000 a page'}]"

const struct openapi_doc openapi_docs[] = {
    /* --- meta (src/server/routes.c, src/modules/meta_api.c) ------------------------- */
    {"GET", "/healthz", "meta", "Is the server up",
     "Answers on any host, with or without a tenant: for load balancers.", NULL,
     "{'type': 'object', 'required': ['status'], 'properties': {'status': {'const': 'ok'}}}",
     NULL, 200, 0},
    {"GET", "/api/v1/tenant/health", "meta", "Is this tenant\\u0027s database up",
     "503 when the database cannot be reached or needs a migration.", NULL,
     "{'type': 'object', 'required': ['tenant', 'database', 'schema_version'], 'properties': "
     "{'tenant': {'type': 'string'}, 'database': {'const': 'ok'}, 'schema_version': {'type': "
     "'integer'}}}",
     NULL, 200, 0},
    {"GET", "/api/v1/openapi.json", "meta", "This document",
     "The OpenAPI 3.1 document of every route, made from the route table and the module "
     "descriptors. The same on every host; no sign-in.",
     NULL, "{'type': 'object', 'required': ['openapi', 'paths'], 'properties': {'openapi': "
	   "{'type': 'string'}, 'paths': {'type': 'object'}}}",
     NULL, 200, 0},
    {"GET", "/api/v1/meta/modules", "meta", "Every module: fields, types, limits, actions",
     "What a user interface renders forms and lists from.", NULL,
     "{'type': 'object', 'required': ['modules'], 'properties': {'modules': {'type': 'array', "
     "'items': " REF("ModuleMeta") "}}}",
     NULL, 200, 0},
    {"GET", "/api/v1/meta/permissions", "meta", "The permission catalogue",
     "Every permission a route checks, with the routes that check it.", NULL,
     "{'type': 'object', 'required': ['permissions', 'count'], 'properties': {'permissions': "
     "{'type': 'array', 'items': {'type': 'object', 'required': ['permission', 'scope', "
     "'routes'], 'properties': {'permission': {'type': 'string'}, 'scope': {'type': 'string'}, "
     "'routes': {'type': 'array', 'items': {'type': 'string'}}}}}, 'count': {'type': "
     "'integer'}}}",
     NULL, 200, 0},
    {"GET", "/api/v1/search", "search", "Search records of every module you may view",
     "Text search over the modules the caller may view; sealed fields match exactly, through "
     "their blind indexes.",
     NULL, REF("SearchHit"),
     "[{'name': 'q', 'in': 'query', 'schema': {'type': 'string', "
     "'maxLength': 200}, 'description': 'the text to find (none: an empty list)'}, {'name': "
     "'modules', 'in': 'query', 'schema': {'type': 'string', 'pattern': '^[a-z_]+(,[a-z_]+)*$'}, "
     "'description': 'comma-separated module names (default: all you may view)'}]",
     200, OAD_LIST},

    /* --- identity (src/auth/auth_api.c) ------------------------------------------- */
    {"POST", "/api/v1/auth/login", "auth", "Sign in with e-mail address and password",
     "Sets the session cookie. mfa_required: the session is good only for POST /api/v1/auth/mfa "
     "until the code is given. Wrong credentials: 401, the same for an unknown address; after "
     "[auth] lockout_threshold failures 423 with locked_until.",
     "{'type': 'object', 'required': ['email', 'password'], 'properties': {'email': {'type': "
     "'string', 'maxLength': 254}, 'password': {'type': 'string', 'maxLength': 1024, "
     "'writeOnly': true}}}",
     "{'type': 'object', 'required': ['user', 'mfa_required'], 'properties': {'user': " REF(
	 "SignedInUser") ", 'mfa_required': {'type': 'boolean'}}}",
     NULL, 200, OAD_PASSWORD | OAD_COOKIE | OAD_LOGIN_RATE},
    {"POST", "/api/v1/auth/logout", "auth", "Sign out",
     "Ends the session and clears the cookie (with a token: only clears the cookie).", NULL,
     FLAG("signed_out"), NULL, 200, OAD_COOKIE},
    {"GET", "/api/v1/me", "auth", "Who is asking", NULL, NULL, REF("Me"), NULL, 200, 0},
    {"POST", "/api/v1/auth/password", "auth", "Change your password",
     "Ends your other sessions and revokes your API tokens.",
     "{'type': 'object', 'required': ['current_password', 'new_password'], 'properties': "
     "{'current_password': {'type': 'string', 'maxLength': 1024, 'writeOnly': true}, "
     "'new_password': {'type': 'string', 'maxLength': 1024, 'writeOnly': true, 'description': "
     "'held to the password policy (length, not the e-mail address, not a common one)'}}}",
     "{'type': 'object', 'required': ['changed', 'tokens_revoked'], 'properties': {'changed': "
     "{'const': true}, 'tokens_revoked': {'type': 'integer'}}}",
     NULL, 200, OAD_PASSWORD},
    {"GET", "/api/v1/auth/sessions/notice", "auth", "Whether you are mailed of new sign-ins",
     "new_signin: a mail for each sign-in (password or single sign-on) from an address not seen "
     "before for you.",
     NULL,
     "{'type': 'object', 'required': ['new_signin'], 'properties': {'new_signin': {'type': "
     "'boolean'}}}",
     NULL, 200, 0},
    {"PUT", "/api/v1/auth/sessions/notice", "auth", "Choose whether you are mailed of new "
     "sign-ins",
     "Off unless you turn it on. Audited.",
     "{'type': 'object', 'required': ['new_signin'], 'additionalProperties': false, "
     "'properties': {'new_signin': {'type': 'boolean'}}}",
     "{'type': 'object', 'required': ['new_signin'], 'properties': {'new_signin': {'type': "
     "'boolean'}}}",
     NULL, 200, 0},
    {"POST", "/api/v1/auth/sessions/end-others", "auth", "End your other sessions",
     "With tokens: true also revoke your API tokens but the one making the request.",
     "{'type': 'object', 'additionalProperties': false, 'properties': {'tokens': {'type': "
     "'boolean'}}}",
     "{'type': 'object', 'required': ['ended', 'tokens_revoked'], 'properties': {'ended': "
     "{'const': true}, 'tokens_revoked': {'type': 'integer'}}}",
     NULL, 200, OAD_BODY_OPTIONAL},
    {"POST", "/api/v1/users/:id/sessions/end", "users", "End every session of a user",
     "Only of a user you may manage (no more rights than yours).", NULL, FLAG("ended"), NULL,
     200, 0},
    {"POST", "/api/v1/users/:id/unlock", "users", "Clear a user\\u0027s sign-in lockout", NULL,
     NULL, FLAG("unlocked"), NULL, 200, 0},
    {"POST", "/api/v1/auth/password-reset", "auth", "Ask for a password reset link",
     "202 whatever the address: when it is an enabled user's who may sign in with a password, "
     "a single-use link (valid [recovery] token_minutes) is mailed. Counted per address and per "
     "client ([recovery] per_address_hour, per_client_hour): 429 with Retry-After past either.",
     "{'type': 'object', 'required': ['email'], 'properties': {'email': {'type': 'string', "
     "'maxLength': 320}}}",
     "{'type': 'object', 'required': ['status'], 'properties': {'status': {'type': 'string'}}}",
     NULL, 202, 0},
    {"POST", "/api/v1/auth/password-reset/confirm", "auth", "Set a new password with a reset link",
     "The token from the link's fragment. Once only, before it expires, while the password is "
     "the one it was made for. Ends every session and API token of the user; sign in after "
     "(MFA is still asked for). A token that is unknown, used, expired or replaced: 403.",
     "{'type': 'object', 'required': ['token', 'password'], 'properties': {'token': {'type': "
     "'string', 'minLength': 43, 'maxLength': 43}, 'password': {'type': 'string', 'minLength': "
     "12, 'maxLength': 1024, 'writeOnly': true}}}",
     "{'type': 'object', 'required': ['password_changed', 'sign_in'], 'properties': "
     "{'password_changed': {'const': true}, 'sign_in': {'type': 'string'}}}",
     NULL, 200, 0},
    {"POST", "/api/v1/users/:id/password/reset", "users", "Reset another user\\u0027s password",
     "Your own password is re-checked. Returns a one-time password (shown once) the user must "
     "change at the next sign-in; their sessions and API tokens end and they are mailed. Only "
     "for a user who holds nothing you do not (403), never yourself (409).",
     "{'type': 'object', 'required': ['password'], 'properties': {'password': {'type': "
     "'string', 'maxLength': 1024, 'writeOnly': true}}}",
     "{'type': 'object', 'required': ['one_time_password', 'must_change_password'], "
     "'properties': {'one_time_password': {'type': 'string'}, 'must_change_password': "
     "{'const': true}}}",
     NULL, 200, OAD_PASSWORD},
    {"POST", "/api/v1/users/:id/mfa/reset", "users", "Turn off another user\\u0027s MFA",
     "Your own password is re-checked. The user's TOTP secret and recovery codes go and their "
     "sessions end; they enrol again and are mailed. 409 when their MFA is off.",
     "{'type': 'object', 'required': ['password'], 'properties': {'password': {'type': "
     "'string', 'maxLength': 1024, 'writeOnly': true}}}",
     "{'type': 'object', 'required': ['mfa_enabled'], 'properties': {'mfa_enabled': {'const': "
     "false}}}",
     NULL, 200, OAD_PASSWORD},
    {"GET", "/api/v1/settings/mail", "mail", "This organisation\\u0027s mail settings",
     "smtp null: mail goes through the host\\u0027s server (host_server). The password is never "
     "shown (password_set); dkim shows the DNS TXT record to publish (dns_name, dns_txt).",
     NULL, REF("MailSettings"), NULL, 200, 0},
    {"PUT", "/api/v1/settings/mail", "mail", "Change this organisation\\u0027s mail settings",
     "Only for someone who holds every permission: the server chosen receives every reset link. "
     "Each member given replaces what was there; null removes it. smtp.password is kept unless "
     "given, and dropped when the host or user changes. A tenant\\u0027s server is only reached "
     "at a public address, over TLS (starttls: 587, tls: 465). dkim: a new RSA-2048 key is made "
     "the first time and with new_key.",
     "{'type': 'object', 'properties': {'from': {'type': ['string', 'null'], 'maxLength': 254}, "
     "'from_name': {'type': ['string', 'null'], 'maxLength': 200}, 'reply_to': {'type': "
     "['string', 'null'], 'maxLength': 254}, 'smtp': {'type': ['object', 'null'], 'required': "
     "['host'], 'properties': {'host': {'type': 'string', 'maxLength': 253}, 'port': {'type': "
     "'integer', 'minimum': 1, 'maximum': 65535}, 'security': {'enum': ['starttls', 'tls', "
     "'none']}, 'username': {'type': ['string', 'null'], 'maxLength': 255}, 'password': "
     "{'type': ['string', 'null'], 'maxLength': 1024, 'writeOnly': true}}}, 'dkim': {'type': "
     "['object', 'null'], 'required': ['domain', 'selector'], 'properties': {'domain': {'type': "
     "'string', 'maxLength': 253}, 'selector': {'type': 'string', 'maxLength': 63}, 'new_key': "
     "{'type': 'boolean'}}}}}",
     REF("MailSettings"), NULL, 200, 0},
    {"POST", "/api/v1/settings/mail/test", "mail", "Send a test message",
     "Queued like every mail: GET /api/v1/mail/outbox shows whether it went.",
     "{'type': 'object', 'required': ['to'], 'properties': {'to': {'type': 'string', "
     "'maxLength': 254}}}",
     "{'type': 'object', 'required': ['mail_id'], 'properties': {'mail_id': {'type': "
     "'integer'}}}",
     NULL, 202, 0},
    {"GET", "/api/v1/mail/outbox", "mail", "The delivery log of this organisation\\u0027s e-mail",
     "Newest first; state filters (queued, sent, failed). Each mail's recipient, subject, "
     "attempts, the mail server's last answer and the Message-ID it was sent with, never its "
     "body. Sending is a job (mail.send): see GET /api/v1/jobs.",
     NULL, REF("MailOutbox"), NULL, 200, OAD_LIST},
    {"GET", "/api/v1/settings/mailbox", "mail", "The support mailbox (e-mail to ticket)",
     "The password is never shown (password_set). state: how reading it went.", NULL,
     REF("MailboxSettings"), NULL, 200, 0},
    {"PUT", "/api/v1/settings/mailbox", "mail", "Change the support mailbox",
     "Only for someone who holds every permission: the mailbox and whom it trusts decide whose "
     "mail counts as a contact\\u0027s. Each member given replaces what was there. The password "
     "is kept unless given, and dropped when host, port, security or username change. The "
     "server is only reached at a public address, over TLS (tls: 993, starttls: 143). "
     "unknown_senders create needs unknown_customer_id.",
     "{'type': 'object', 'properties': {'enabled': {'type': 'boolean'}, 'host': {'type': "
     "['string', 'null'], 'maxLength': 253}, 'port': {'type': ['integer', 'null'], 'minimum': "
     "1, 'maximum': 65535}, 'security': {'enum': ['tls', 'starttls', 'none']}, 'username': "
     "{'type': ['string', 'null'], 'maxLength': 255}, 'password': {'type': ['string', 'null'], "
     "'maxLength': 1024, 'writeOnly': true}, 'mailbox': {'type': 'string', 'maxLength': 200}, "
     "'unknown_senders': {'enum': ['refuse', 'create']}, 'unknown_customer_id': {'type': "
     "['integer', 'null']}, 'trusted_authserv_id': {'type': ['string', 'null'], 'maxLength': "
     "253}}}",
     REF("MailboxSettings"), NULL, 200, 0},
    {"POST", "/api/v1/settings/mailbox/poll", "mail", "Read the support mailbox now",
     "At the next tick of the job runner rather than at its time (mail.fetch).",
     "{'type': 'object', 'additionalProperties': false, 'properties': {}}",
     "{'type': 'object', 'required': ['queued'], 'properties': {'queued': {'const': true}}}",
     NULL, 202, OAD_BODY_OPTIONAL},
    {"GET", "/api/v1/mail/inbound", "mail", "The messages taken from the support mailbox",
     "Newest first; outcome filters (ticket, comment, ignored, refused). Each message's "
     "outcome and reason, never its sender or subject (those are on the ticket, sealed).",
     NULL, REF("MailInbound"), NULL, 200, OAD_LIST},
    {"POST", "/api/v1/auth/tokens", "tokens", "Create an API token",
     "The password is re-checked last. A token holds only permissions you hold; * only if you "
     "hold everything.",
     "{'type': 'object', 'required': ['name', 'scopes', 'password'], 'properties': {'name': "
     "{'type': 'string', 'minLength': 1, 'maxLength': 100}, 'scopes': {'type': 'array', "
     "'minItems': 1, 'maxItems': 64, 'items': {'type': 'string', 'maxLength': 64}, "
     "'description': 'permissions, or [*]'}, 'expires_in_days': {'type': 'integer', 'minimum': "
     "1, 'maximum': 3650}, 'password': {'type': 'string', 'maxLength': 1024, 'writeOnly': "
     "true}}}",
     REF("TokenCreated"), NULL, 201, OAD_PASSWORD},
    {"GET", "/api/v1/auth/tokens", "tokens", "Your live API tokens", NULL, NULL, REF("Token"),
     NULL, 200, OAD_LIST},
    {"GET", "/api/v1/auth/tokens/:id", "tokens", "One of your live API tokens",
     "Never the secret. Another user\\u0027s token id is not found.", NULL, REF("Token"), NULL,
     200, 0},
    {"DELETE", "/api/v1/auth/tokens/:id", "tokens", "Revoke one of your API tokens",
     "Another user\\u0027s token id is not found.", NULL, FLAG("revoked"), NULL, 200, 0},
    {"GET", "/api/v1/users/:id/tokens", "tokens", "A user\\u0027s live API tokens",
     "Only of a user you may manage.", NULL, REF("Token"), NULL, 200, OAD_LIST},
    {"DELETE", "/api/v1/users/:id/tokens/:token_id", "tokens", "Revoke a user\\u0027s API token",
     "Only of a user you may manage.", NULL, FLAG("revoked"), NULL, 200, 0},

    /* --- MFA and security settings (src/auth/mfa_api.c) ------------------------------ */
    {"POST", "/api/v1/auth/mfa", "mfa", "Give the MFA code of this sign-in",
     "A TOTP code or a recovery code (each works once). Counted like a password.", CODE_BODY,
     FLAG("mfa_verified"), NULL, 200, OAD_PASSWORD | OAD_COOKIE},
    {"POST", "/api/v1/auth/mfa/enrol", "mfa", "Start enrolling in MFA",
     "Answers the secret to put in an authenticator; confirm with a first code.", PASSWORD_BODY,
     "{'type': 'object', 'required': ['secret', 'otpauth_uri', 'qr_svg'], 'properties': "
     "{'secret': {'type': 'string', 'description': 'base32'}, 'otpauth_uri': {'type': "
     "'string'}, 'qr_svg': {'type': 'string'}, 'next': {'type': 'string'}}}",
     NULL, 200, OAD_PASSWORD},
    {"POST", "/api/v1/auth/mfa/enrol/confirm", "mfa", "Confirm MFA with a first code",
     "Turns MFA on and answers ten recovery codes, shown only now; the session is renewed.",
     CODE_BODY,
     "{'type': 'object', 'required': ['mfa_enabled', 'recovery_codes'], 'properties': "
     "{'mfa_enabled': {'const': true}, 'recovery_codes': {'type': 'array', 'items': {'type': "
     "'string'}}, 'note': {'type': 'string'}}}",
     NULL, 200, OAD_PASSWORD | OAD_COOKIE},
    {"POST", "/api/v1/auth/mfa/disable", "mfa", "Turn MFA off",
     "Ends your other sessions.", PASSWORD_BODY,
     "{'type': 'object', 'required': ['mfa_enabled'], 'properties': {'mfa_enabled': {'const': "
     "false}}}",
     NULL, 200, OAD_PASSWORD},
    {"POST", "/api/v1/auth/mfa/recovery-codes", "mfa", "New recovery codes",
     "The old ones stop working.", PASSWORD_BODY,
     "{'type': 'object', 'required': ['recovery_codes'], 'properties': {'recovery_codes': "
     "{'type': 'array', 'items': {'type': 'string'}}}}",
     NULL, 200, OAD_PASSWORD},
    {"GET", "/api/v1/settings/security", "settings", "The tenant\\u0027s security switches", NULL,
     NULL, REF("SecuritySettings"), NULL, 200, 0},
    {"PUT", "/api/v1/settings/security", "settings", "Set security switches",
     "Those left out stay as they are.",
     "{'type': 'object', 'additionalProperties': false, 'minProperties': 1, 'properties': "
     "{'mfa_required': {'type': 'boolean'}, 'email_idn': {'type': 'boolean'}}}",
     REF("SecuritySettings"), NULL, 200, 0},

    /* --- the admin IP allowlist (src/auth/allowlist_api.c) --------------------------- */
    {"GET", "/api/v1/settings/allowlist", "settings", "The admin IP allowlist", NULL, NULL,
     REF("Allowlist"), NULL, 200, 0},
    {"PUT", "/api/v1/settings/allowlist", "settings", "Replace the admin IP allowlist",
     "A list that leaves out your own address needs confirm_self_lockout: true (else 409). "
     "guard_all_changes left out stays as it was.",
     "{'type': 'object', 'required': ['entries'], 'properties': {'entries': {'type': 'array', "
     "'maxItems': 256, 'items': {'type': 'object', 'required': ['cidr'], 'properties': {'cidr': "
     "{'type': 'string', 'maxLength': 63, 'description': 'an IPv4 or IPv6 address or range, no "
     "host bits past the prefix'}, 'label': {'type': 'string', 'maxLength': 100}}}}, "
     "'guard_all_changes': {'type': 'boolean'}, 'confirm_self_lockout': {'type': "
     "'boolean'}}}",
     REF("Allowlist"), NULL, 200, 0},

    /* --- SAML single sign-on (src/saml/saml_api.c, docs/saml.md) ------------------------ */
    {"GET", "/api/v1/settings/sso", "settings", "The SAML single sign-on set-up",
     "This SP's URLs and certificate to give the IdP, and the IdP, domains and mapping set "
     "here. configured false: nothing set up yet.", NULL, REF("SsoSettings"), NULL, 200, 0},
    {"PUT", "/api/v1/settings/sso", "settings", "Set up SAML single sign-on",
     "The IdP as idp_metadata (its XML) or as idp_entity_id, idp_sso_url and "
     "idp_certificates; left out on a later PUT, the stored IdP stays. The first PUT makes "
     "this SP's key pair.",
     "{'type': 'object', 'required': ['allowed_domains'], 'properties': {'enabled': {'type': "
     "'boolean'}, 'idp_metadata': {'type': 'string', 'maxLength': 1048576}, 'idp_entity_id': "
     STR(1024) ", 'idp_sso_url': " STR(2048) ", 'idp_slo_url': " STR(2048) ", "
     "'idp_certificates': {'type': 'array', 'maxItems': 4, 'items': {'type': 'string', "
     "'description': 'PEM or base64 DER'}}, 'allowed_domains': {'type': 'array', 'minItems': "
     "1, 'items': {'type': 'string'}}, 'attributes': {'type': 'object', 'properties': "
     "{'email': {'type': ['string', 'null']}, 'name': {'type': ['string', 'null']}, 'groups': "
     "{'type': ['string', 'null']}}}, 'group_roles': {'type': 'object', "
     "'additionalProperties': {'type': 'string'}}, 'jit': {'type': 'boolean'}, "
     "'default_role': {'type': 'string'}, 'sso_required': {'type': 'boolean'}, "
     "'idp_initiated': {'type': 'boolean'}}}",
     REF("SsoSettings"), NULL, 200, 0},
    {"DELETE", "/api/v1/settings/sso", "settings", "Turn SAML single sign-on off",
     "The set-up and this SP's key are gone; password sign-in is the only way in again.",
     NULL, "{'type': 'object'}", NULL, 204, 0},
    {"GET", "/saml/metadata", "saml", "This SP's SAML metadata (public)",
     "What the IdP is given: entity id, ACS URL (HTTP-POST) and signing certificate. 404 "
     "when single sign-on is not set up.", NULL, "{'type': 'string'}", NULL, 200,
     OAD_SAML_XML},
    {"GET", "/saml/login", "saml", "Begin a sign-in at the IdP (public)",
     "302 to the IdP with a signed AuthnRequest (HTTP-Redirect, RSA-SHA256) and a cookie "
     "binding it to this browser for 10 minutes.", NULL, "{'type': 'string'}",
     "[{'name': 'next', 'in': 'query', 'schema': {'type': 'string', 'maxLength': 2048}, "
     "'description': 'a path on this site to land on (default /)'}]",
     302, OAD_REDIRECT},
    {"POST", "/saml/acs", "saml", "The IdP's answer (public, cross-site form POST)",
     "Every check of docs/saml.md; success: 303 to the RelayState path with a new session "
     "cookie (SSO, no TOTP asked). Refusal: 403 with error.reason, and an audit row.",
     "{'type': 'object', 'required': ['SAMLResponse'], 'properties': {'SAMLResponse': "
     "{'type': 'string', 'description': 'base64 of the Response'}, 'RelayState': {'type': "
     "'string'}}}",
     "{'type': 'string'}", NULL, 303, OAD_FORM | OAD_REDIRECT | OAD_COOKIE},

    /* --- roles (src/rbac/rbac_api.c) ------------------------------------------------- */
    {"GET", "/api/v1/roles", "roles", "Every role", NULL, NULL, REF("Role"), NULL, 200,
     OAD_LIST},
    {"POST", "/api/v1/roles", "roles", "Create a role",
     "Only with permissions you hold yourself; self.* are not grantable.",
     "{'type': 'object', 'additionalProperties': false, 'required': ['name', 'permissions'], "
     "'properties': {'name': {'type': 'string', 'pattern': '^[A-Za-z0-9_ -]{1,64}$'}, "
     "'description': {'type': 'string', 'maxLength': 255}, 'permissions': {'type': 'array', "
     "'maxItems': 1024, 'items': {'type': 'string'}, 'description': 'see GET "
     "/api/v1/meta/permissions'}}}",
     REF("Role"), NULL, 201, 0},
    {"GET", "/api/v1/roles/:id", "roles", "One role", NULL, NULL, REF("Role"), NULL, 200, 0},
    {"PATCH", "/api/v1/roles/:id", "roles", "Change a role",
     "Built-in roles cannot be changed; only one who holds all of its permissions may.",
     "{'type': 'object', 'additionalProperties': false, 'properties': {'name': {'type': "
     "'string', 'pattern': '^[A-Za-z0-9_ -]{1,64}$'}, 'description': {'type': 'string', "
     "'maxLength': 255}, 'permissions': {'type': 'array', 'maxItems': 1024, 'items': {'type': "
     "'string'}}}}",
     REF("Role"), NULL, 200, 0},
    {"DELETE", "/api/v1/roles/:id", "roles", "Delete a role",
     "Not a built-in one, nor one a user still holds (409).", NULL, REF("Deleted"), NULL, 200,
     0},

    /* --- users (src/users/users_api.c) --------------------------------------------- */
    {"GET", "/api/v1/users", "users", "Every staff user", NULL, NULL, REF("User"), NULL, 200,
     OAD_LIST},
    {"POST", "/api/v1/users", "users", "Create a staff user",
     "Without a password a one-time password is made, answered this once, and must be changed "
     "at the first sign-in.",
     "{'type': 'object', 'additionalProperties': false, 'required': ['email'], 'properties': "
     "{'email': {'type': 'string', 'format': 'email', 'maxLength': 254}, 'password': {'type': "
     "'string', 'maxLength': 1024, 'writeOnly': true}, 'roles': {'type': 'array', 'maxItems': "
     "16, 'items': {'type': 'string'}, 'description': 'role names'}}}",
     "{'allOf': [" REF("User") ", {'type': 'object', 'properties': {'one_time_password': "
			       "{'type': 'string', 'description': 'only when no password was given'}}}]}",
     NULL, 201, 0},
    {"GET", "/api/v1/users/:id", "users", "One staff user", NULL, NULL, REF("User"), NULL, 200,
     0},
    {"PATCH", "/api/v1/users/:id", "users", "Change roles or disable a user",
     "Disabling ends every session and revokes every token. An active admin must remain (409).",
     "{'type': 'object', 'additionalProperties': false, 'properties': {'roles': {'type': "
     "'array', 'maxItems': 16, 'items': {'type': 'string'}}, 'disabled': {'type': "
     "'boolean'}}}",
     REF("User"), NULL, 200, 0},
    {"DELETE", "/api/v1/users/:id", "users", "Delete a staff user",
     "Not yourself, not the last admin, not one records still refer to (409: disable instead).",
     NULL, REF("Deleted"), NULL, 200, 0},

    /* --- attachments (src/files/files_api.c; the per-module routes are generated) ---- */
    {"GET", "/api/v1/files/usage", "files", "Storage used against the plan",
     "Bytes: used by stored files, reserved by uploads under way, and what is left.",
     NULL,
     "{'type': 'object', 'required': ['plan', 'limit', 'used', 'reserved', 'available'], "
     "'properties': {'plan': {'type': 'string'}, 'limit': {'type': 'integer'}, 'used': "
     "{'type': 'integer'}, 'reserved': {'type': 'integer'}, 'available': {'type': "
     "'integer'}}}",
     NULL, 200, 0},

    /* --- webhooks (src/webhooks/webhooks_api.c, docs/webhooks.md) -------------------- */
#define WH_BODY                                                                                 \
	"{'type': 'object', 'additionalProperties': false, 'properties': {'url': {'type': "    \
	"'string', 'maxLength': 2048}, 'event_types': {'type': 'array', 'minItems': 1, "        \
	"'maxItems': 64, 'uniqueItems': true, 'items': {'type': 'string', 'maxLength': 96}}, " \
	"'description': " STR(500) ", 'enabled': {'type': 'boolean'}}"
    {"GET", "/api/v1/webhooks/event-types", "webhooks", "The event types one may subscribe to",
     NULL, NULL, "{'type': 'object', 'required': ['data'], 'properties': {'data': {'type': "
     "'array', 'items': {'type': 'string'}}}}", NULL, 200, 0},
    {"GET", "/api/v1/webhooks", "webhooks", "Webhook subscriptions", "Never a secret.", NULL,
     REF("WebhookSubscription"), NULL, 200, OAD_LIST},
    {"POST", "/api/v1/webhooks", "webhooks", "Subscribe a receiver",
     "The answer holds the signing secret (whsec_...), shown this once. Deliveries carry "
     "webhook-id, webhook-timestamp and webhook-signature (Standard Webhooks).",
     WH_BODY ", 'required': ['url', 'event_types']}", REF("WebhookSubscription"), NULL, 201, 0},
    {"GET", "/api/v1/webhooks/:id", "webhooks", "A webhook subscription", NULL, NULL,
     REF("WebhookSubscription"), NULL, 200, 0},
    {"PATCH", "/api/v1/webhooks/:id", "webhooks", "Change a subscription",
     "Enabling a disabled one clears why it was disabled. Takes If-Match.", WH_BODY "}",
     REF("WebhookSubscription"), NULL, 200, 0},
    {"DELETE", "/api/v1/webhooks/:id", "webhooks", "Delete a subscription and its deliveries",
     NULL, NULL, REF("Deleted"), NULL, 200, 0},
    {"POST", "/api/v1/webhooks/:id/rotate-secret", "webhooks", "A new signing secret",
     "The old secret is still signed with for overlap_seconds (default 86400, at most "
     "604800), so both signatures go out meanwhile.",
     "{'type': 'object', 'additionalProperties': false, 'properties': {'overlap_seconds': "
     "{'type': 'integer', 'minimum': 0, 'maximum': 604800}}}",
     REF("WebhookSubscription"), NULL, 200, 0},
    {"GET", "/api/v1/webhooks/:id/deliveries", "webhooks", "The delivery log", "Newest first.",
     NULL, REF("WebhookDelivery"), NULL, 200, OAD_LIST},
    {"POST", "/api/v1/webhooks/:id/deliveries/:did/redeliver", "webhooks",
     "Send a delivery again (same webhook-id)", NULL, NULL,
     "{'type': 'object', 'required': ['id', 'state'], 'properties': {'id': " ID ", 'state': "
     "{'const': 'pending'}}}",
     NULL, 202, 0},
    {"GET", "/api/v1/hook-endpoints", "webhooks", "Inbound provider endpoints", NULL, NULL,
     REF("HookEndpoint"), NULL, 200, OAD_LIST},
    {"GET", "/api/v1/hook-endpoints/:id", "webhooks", "An inbound endpoint", NULL, NULL,
     REF("HookEndpoint"), NULL, 200, 0},
    {"POST", "/api/v1/hook-endpoints", "webhooks", "An endpoint for a provider",
     "secret: the provider signing secret (Stripe whsec_..., the Intuit verifier token, a "
     "Standard Webhooks sender whsec_...), kept sealed and never shown.",
     "{'type': 'object', 'additionalProperties': false, 'required': ['provider', 'secret'], "
     "'properties': {'provider': {'enum': ['stripe', 'quickbooks', 'standard']}, 'secret': "
     "{'type': 'string', 'maxLength': 1024, 'writeOnly': true}, 'description': " STR(500)
     ", 'enabled': {'type': 'boolean'}}}",
     REF("HookEndpoint"), NULL, 201, 0},
    {"PATCH", "/api/v1/hook-endpoints/:id", "webhooks", "Change an endpoint (or its secret)",
     NULL,
     "{'type': 'object', 'additionalProperties': false, 'properties': {'secret': {'type': "
     "'string', 'maxLength': 1024, 'writeOnly': true}, 'description': " STR(500)
     ", 'enabled': {'type': 'boolean'}}}",
     REF("HookEndpoint"), NULL, 200, 0},
    {"DELETE", "/api/v1/hook-endpoints/:id", "webhooks", "Delete an endpoint", NULL, NULL,
     REF("Deleted"), NULL, 200, 0},
    {"POST", "/api/v1/hooks/:provider/:endpoint", "webhooks", "A provider event (public)",
     "Signed by the provider: Stripe-Signature (Stripe), intuit-signature (QuickBooks "
     "Online), webhook-id/webhook-timestamp/webhook-signature (Standard Webhooks). 200 once "
     "the event is durably recorded; a replay is 409, a bad signature or stale timestamp "
     "401, a missing header 400, an unknown endpoint 404.",
     "{'type': 'object'}",
     "{'type': 'object', 'required': ['received', 'duplicate'], 'properties': {'received': "
     "{'const': true}, 'duplicate': {'type': 'boolean', 'description': 'recorded before: "
     "taken once'}}}",
     NULL, 200, 0},

    /* --- background jobs (src/jobs/jobs_api.c, docs/jobs.md) -------------------------- */
    {"GET", "/api/v1/jobs", "jobs", "Background jobs, newest first", NULL, NULL, REF("Job"),
     "[{'name': 'state', 'in': 'query', 'schema': {'enum': ['queued', 'running', 'done', "
     "'failed', 'cancelled']}}, {'name': 'kind', 'in': 'query', 'schema': {'type': 'string', "
     "'maxLength': 64}}]",
     200, OAD_LIST},
    {"GET", "/api/v1/jobs/summary", "jobs", "How many jobs are in each state", NULL, NULL,
     "{'type': 'object', 'required': ['counts'], 'properties': {'counts': {'type': 'object', "
     "'additionalProperties': {'type': 'integer'}}}}",
     NULL, 200, 0},
    {"POST", "/api/v1/jobs/:id/retry", "jobs", "Run a failed or waiting job now", NULL, NULL,
     "{'type': 'object', 'required': ['id', 'state'], 'properties': {'id': " ID ", 'state': "
     "{'const': 'queued'}}}",
     NULL, 200, 0},
    {"POST", "/api/v1/jobs/:id/cancel", "jobs", "Cancel a queued job", NULL, NULL,
     "{'type': 'object', 'required': ['id', 'state'], 'properties': {'id': " ID ", 'state': "
     "{'const': 'cancelled'}}}",
     NULL, 200, 0},

    /* --- the audit log (src/audit/audit_api.c) --------------------------------------- */
    {"GET", "/api/v1/reporting/audit", "audit", "The audit log",
     "Newest first. With format=csv the page is a CSV export.", NULL, REF("AuditEntry"),
     AUDIT_QUERY, 200, OAD_LIST},
};
const size_t openapi_docs_count = BW_ARRAY_LEN(openapi_docs);

/* The actions of the catalogue (src/modules/hooks.c). */
const struct openapi_action_doc openapi_action_docs[] = {
    {"tickets", "assign", "Assign the ticket (a new ticket opens)",
     "{'type': 'object', 'required': ['assignee_id'], 'properties': {'assignee_id': {'type': "
     "['integer', 'null'], 'minimum': 1, 'description': 'an enabled user, or null to unassign; "
     "needs users.view'}}}",
     NULL},
    {"invoices", "send", "Send a draft invoice (it must have a total)", "{'type': 'object'}",
     NULL},
    {"invoices", "void", "Void a draft or sent invoice", "{'type': 'object'}", NULL},
    {"estimates", "send", "Send a draft estimate (it must have a total)", "{'type': 'object'}",
     NULL},
    {"estimates", "accept", "Mark a sent estimate accepted", "{'type': 'object'}", NULL},
    {"estimates", "decline", "Mark a sent estimate declined", "{'type': 'object'}", NULL},
    {"network_devices", "reveal_credential", "Show the stored credential",
     "{'type': 'object'}",
     "{'type': 'object', 'required': ['credential'], 'properties': {'credential': {'type': "
     "['string', 'null']}}}"},
};
const size_t openapi_action_docs_count = BW_ARRAY_LEN(openapi_action_docs);
