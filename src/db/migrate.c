/*
 * The schema, as migrations. A migration is never edited once released:
 * changes come as a new version.
 */
#include "migrate.h"

#include "../modules/desc.h"
#include "../search/fulltext.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* --- the control database ------------------------------------------------ */

static const char *const control_v1[] = {
	"CREATE TABLE plans ("
	" id @ID,"
	" name @STR(64) NOT NULL UNIQUE,"
	" max_users @INT NOT NULL,"
	" storage_bytes @INT NOT NULL,"
	" created_at @INT NOT NULL)@OPTS",
	"INSERT INTO plans (name, max_users, storage_bytes, created_at) VALUES"
	" ('standard', 25, 10737418240, 0),"
	" ('professional', 100, 107374182400, 0),"
	" ('enterprise', 100000, 1099511627776, 0)",
	/* db_server: where the tenant's database lives ("" = the configured server). */
	"CREATE TABLE tenants ("
	" id @ID,"
	" slug @STR(32) NOT NULL UNIQUE,"
	" state @STR(16) NOT NULL,"
	" plan_id @INT NOT NULL REFERENCES plans(id),"
	" db_server @STR(255) NOT NULL,"
	" db_name @STR(128) NOT NULL,"
	" db_user @STR(80) NOT NULL,"
	" created_at @INT NOT NULL,"
	" updated_at @INT NOT NULL)@OPTS",
	/* Bumped on every registry change so app servers know to reload. */
	"CREATE TABLE registry_version (id @INT NOT NULL PRIMARY KEY, version @INT NOT NULL)@OPTS",
	"INSERT INTO registry_version (id, version) VALUES (1, 1)",
	NULL,
};

/*
 * Encryption at rest: per-tenant data keys, wrapped by a master key that
 * never enters a database; the rotation runs; the secret rotation history.
 */
static const char *const control_v2[] = {
	"CREATE TABLE data_keys ("
	" id @ID,"
	" tenant_slug @STR(32) NOT NULL,"
	" state @STR(16) NOT NULL," /* active | retired | purged */
	" wrapped @BLOB,"           /* NULL once purged */
	" master_id @INT NOT NULL,"
	" encryptions @INT NOT NULL,"
	" run_id @INT NOT NULL,"    /* the rotation run that made it, 0 at provisioning */
	" created_at @INT NOT NULL,"
	" retired_at @INT,"
	" purged_at @INT)@OPTS",
	"CREATE INDEX data_keys_tenant ON data_keys (tenant_slug, state)",
	"ALTER TABLE tenants ADD COLUMN active_key_id @INT NOT NULL DEFAULT 0",
	/* MariaDB: the tenant account's password, wrapped by a master key. */
	"ALTER TABLE tenants ADD COLUMN db_secret @BLOB",
	"ALTER TABLE tenants ADD COLUMN db_secret_master @INT NOT NULL DEFAULT 0",
	"CREATE TABLE key_rotation_runs ("
	" id @ID,"
	" kind @STR(16) NOT NULL," /* rotate | rollback */
	" state @STR(16) NOT NULL," /* running | done | rolled_back */
	" reverts @INT NOT NULL,"   /* rollback: the rotate run it undoes */
	" actor @STR(128) NOT NULL,"
	" started_at @INT NOT NULL,"
	" finished_at @INT,"
	" fields_done @INT NOT NULL)@OPTS",
	"CREATE TABLE secret_rotation_history ("
	" id @ID,"
	" secret @STR(128) NOT NULL,"  /* what was rotated: never the secret itself */
	" action @STR(32) NOT NULL,"
	" actor @STR(128) NOT NULL,"
	" started_at @INT NOT NULL,"
	" finished_at @INT,"
	" outcome @STR(32) NOT NULL,"
	" detail @STR(512) NOT NULL)@OPTS",
	NULL,
};

/*
 * Where each tenant's audit chain stood at its last successful verification,
 * kept apart from the tenant's own database: someone who can write there
 * can cut the newest rows and rewind the head, but cannot rewind this.
 */
static const char *const control_v3[] = {
	"CREATE TABLE audit_anchors ("
	" tenant_id @INT NOT NULL PRIMARY KEY,"
	" tenant_slug @STR(32) NOT NULL,"
	" seq @INT NOT NULL,"
	" mac @STR(64) NOT NULL,"
	" verified_at @INT NOT NULL)@OPTS",
	NULL,
};

/*
 * Storage quotas (docs/files.md): what each tenant's files take (used)
 * and what uploads in progress have reserved. An upload reserves its
 * Content-Length before its body is read, in one transaction with the
 * usage row locked, so concurrent uploads cannot together pass the plan's
 * storage_bytes; a reservation left by a crash lapses at expires_at.
 */
static const char *const control_v4[] = {
	"CREATE TABLE IF NOT EXISTS storage_usage ("
	" tenant_slug @STR(32) NOT NULL PRIMARY KEY,"
	" used @INT NOT NULL,"
	" updated_at @INT NOT NULL)@OPTS",
	"CREATE TABLE IF NOT EXISTS storage_reservations ("
	" id @ID,"
	" tenant_slug @STR(32) NOT NULL,"
	" bytes @INT NOT NULL,"
	" expires_at @INT NOT NULL)@OPTS",
	"CREATE INDEX IF NOT EXISTS storage_reservations_tenant ON storage_reservations (tenant_slug, expires_at)",
	NULL,
};

static const struct migration control_list[] = {
	{1, "tenant registry and plans", control_v1, NULL},
	{2, "data keys, rotation runs, secret rotation history", control_v2, NULL},
	{3, "audit chain anchors", control_v3, NULL},
	{4, "storage quotas: usage and reservations", control_v4, NULL},
};

const struct migration_set migrate_control = {"control", control_list,
					      BW_ARRAY_LEN(control_list)};

/* --- every tenant database ----------------------------------------------- */

static const char *const tenant_v1[] = {
	"CREATE TABLE settings ("
	" name @STR(100) NOT NULL PRIMARY KEY,"
	" value @TEXT NOT NULL,"
	" updated_at @INT NOT NULL)@OPTS",
	/* Staff users; identity (issue 5) adds sessions, MFA and lockout. */
	"CREATE TABLE users ("
	" id @ID,"
	" email @STR(254) NOT NULL UNIQUE,"
	" password_hash @STR(255) NOT NULL,"
	" must_change_password @INT NOT NULL DEFAULT 0,"
	" is_admin @INT NOT NULL DEFAULT 0,"
	" created_at @INT NOT NULL,"
	" updated_at @INT NOT NULL)@OPTS",
	NULL,
};

/* Integration credentials (OAuth refresh tokens, API keys, webhook secrets). */
static const char *const tenant_v2[] = {
	"CREATE TABLE integrations ("
	" id @ID,"
	" provider @STR(64) NOT NULL UNIQUE,"
	" config @TEXT NOT NULL,"
	" secret @BLOB," /* sealed: see field.c */
	" created_at @INT NOT NULL,"
	" updated_at @INT NOT NULL)@OPTS",
	NULL,
};

/* Identity: lockout, MFA, sessions, API tokens, recovery codes, auth events. */
static const char *const tenant_v3[] = {
	"ALTER TABLE users ADD COLUMN failed_logins @INT NOT NULL DEFAULT 0",
	"ALTER TABLE users ADD COLUMN locked_until @INT NOT NULL DEFAULT 0",
	"ALTER TABLE users ADD COLUMN password_changed_at @INT NOT NULL DEFAULT 0",
	"ALTER TABLE users ADD COLUMN disabled @INT NOT NULL DEFAULT 0",
	"ALTER TABLE users ADD COLUMN mfa_enabled @INT NOT NULL DEFAULT 0",
	"ALTER TABLE users ADD COLUMN mfa_secret @BLOB",  /* sealed */
	"ALTER TABLE users ADD COLUMN mfa_pending @BLOB", /* sealed, during enrolment */
	"ALTER TABLE users ADD COLUMN mfa_last_step @INT NOT NULL DEFAULT 0",
	/* Only hashes of session and token secrets are stored. */
	"CREATE TABLE sessions ("
	" id @ID,"
	" token_hash @STR(64) NOT NULL UNIQUE,"
	" user_id @INT NOT NULL,"
	" mfa_verified @INT NOT NULL,"
	" created_at @INT NOT NULL,"
	" last_seen_at @INT NOT NULL,"
	" expires_at @INT NOT NULL,"
	" client_ip @STR(46) NOT NULL)@OPTS",
	"CREATE INDEX sessions_user ON sessions (user_id)",
	"CREATE TABLE api_tokens ("
	" id @ID,"
	" user_id @INT NOT NULL,"
	" name @STR(100) NOT NULL,"
	" token_hash @STR(64) NOT NULL UNIQUE,"
	" prefix @STR(16) NOT NULL,"
	" scopes @TEXT NOT NULL,"
	" expires_at @INT NOT NULL,"
	" last_used_at @INT NOT NULL,"
	" created_at @INT NOT NULL,"
	" revoked_at @INT NOT NULL)@OPTS",
	"CREATE INDEX api_tokens_user ON api_tokens (user_id)",
	"CREATE TABLE recovery_codes ("
	" id @ID,"
	" user_id @INT NOT NULL,"
	" code_hash @STR(255) NOT NULL,"
	" used_at @INT NOT NULL)@OPTS",
	"CREATE INDEX recovery_codes_user ON recovery_codes (user_id)",
	/* Security events kept for the audit log (issue 7). */
	"CREATE TABLE auth_events ("
	" id @ID,"
	" at @INT NOT NULL,"
	" user_id @INT NOT NULL,"
	" kind @STR(32) NOT NULL,"
	" client_ip @STR(46) NOT NULL,"
	" detail @STR(255) NOT NULL)@OPTS",
	NULL,
};

/* The admin IP allowlist: when not empty, admin and destructive requests must come from it. */
static const char *const tenant_v4[] = {
	"CREATE TABLE ip_allowlist ("
	" id @ID,"
	" cidr @STR(64) NOT NULL UNIQUE,"
	" label @STR(100) NOT NULL,"
	" created_at @INT NOT NULL)@OPTS",
	NULL,
};

/*
 * Roles. Built-in roles are rules in code (rbac.c) keyed by roles.builtin,
 * so modules added later are covered without a migration; custom roles
 * list their permissions. Admins of the interim scheme become admins.
 */
static const char *const tenant_v5[] = {
	"CREATE TABLE roles ("
	" id @ID,"
	" name @STR(64) NOT NULL UNIQUE,"
	" description @STR(255) NOT NULL,"
	" builtin @STR(32) NOT NULL," /* '' for a custom role */
	" created_at @INT NOT NULL,"
	" updated_at @INT NOT NULL)@OPTS",
	"CREATE TABLE role_permissions ("
	" id @ID,"
	" role_id @INT NOT NULL,"
	" permission @STR(100) NOT NULL,"
	" UNIQUE (role_id, permission))@OPTS",
	"CREATE TABLE user_roles ("
	" id @ID,"
	" user_id @INT NOT NULL,"
	" role_id @INT NOT NULL,"
	" UNIQUE (user_id, role_id))@OPTS",
	"CREATE INDEX user_roles_role ON user_roles (role_id)",
	"INSERT INTO roles (name, description, builtin, created_at, updated_at) VALUES"
	" ('admin', 'Everything, including users, roles, settings and the audit log', 'admin', 0, 0),"
	" ('staff', 'Technicians: service work on customers, tickets, projects, assets and devices', 'staff', 0, 0),"
	" ('billing', 'Invoices, estimates, payments, products and contracts', 'billing', 0, 0),"
	" ('sales', 'Customers, contacts, estimates and contracts', 'sales', 0, 0),"
	" ('dispatch', 'Ticket intake and assignment', 'dispatch', 0, 0),"
	" ('read_only', 'Sees the service and billing records, changes nothing', 'read_only', 0, 0)",
	"INSERT INTO user_roles (user_id, role_id)"
	" SELECT u.id, r.id FROM users u JOIN roles r ON r.builtin = 'admin' WHERE u.is_admin = 1",
	NULL,
};

/* The audit log: sealed details, plaintext columns for filtering, a MAC chain. */
static const char *const tenant_v7[] = {
	"CREATE TABLE audit_log ("
	" id @ID,"
	" seq @INT NOT NULL UNIQUE,"
	" at @INT NOT NULL,"
	" user_id @INT NOT NULL,"
	" entity @STR(64) NOT NULL,"
	" entity_id @INT NOT NULL,"
	" action @STR(64) NOT NULL,"
	" details @BLOB NOT NULL," /* sealed JSON */
	" mac @STR(64) NOT NULL)@OPTS",
	"CREATE INDEX audit_log_entity ON audit_log (entity, entity_id)",
	"CREATE INDEX audit_log_at ON audit_log (at)",
	"CREATE INDEX audit_log_user ON audit_log (user_id)",
	/* One row: the chain's head (last seq and MAC) and the sealed audit MAC key. */
	"CREATE TABLE audit_head ("
	" id @INT NOT NULL PRIMARY KEY,"
	" seq @INT NOT NULL,"
	" mac @STR(64) NOT NULL,"
	" mac_key @BLOB)@OPTS",
	"INSERT INTO audit_head (id, seq, mac, mac_key) VALUES (1, 0, '', NULL)",
	NULL,
};

/*
 * Rows a change touched besides its own (a payment marks its invoice paid):
 * one link per row, so that row's trail shows the change too. The sealed
 * details list the same rows, and verify compares the two.
 */
static const char *const tenant_v8[] = {
	"CREATE TABLE audit_links ("
	" id @ID,"
	" seq @INT NOT NULL,"
	" entity @STR(64) NOT NULL,"
	" entity_id @INT NOT NULL)@OPTS",
	"CREATE INDEX audit_links_entity ON audit_links (entity, entity_id)",
	"CREATE INDEX audit_links_seq ON audit_links (seq)",
	NULL,
};

/*
 * E-mail addresses unique as identities (ADR 0012): the normalised key of
 * every address, then a unique index on it. Existing rows are backfilled;
 * two that are one address once normalised, or one the policy refuses,
 * stop the migration with a message naming them instead of being merged.
 * Nullable because SQLite cannot add a NOT NULL column without a default;
 * every write sets it.
 */
static bw_err migrate_email_keys(db *d, char *err, size_t errlen);

static const char *const tenant_v9[] = {
	"ALTER TABLE users ADD COLUMN email_norm @STR(254)",
	MIGRATE_DATA,
	"CREATE UNIQUE INDEX users_email_norm ON users (email_norm)",
	NULL,
};

/*
 * Failed sign-ins for addresses that match no active user, counted like a
 * user's (docs/auth.md), keyed by HMAC-SHA256 of the normalised address
 * under the tenant's own key (sealed, made on first use), never the
 * address itself. Bounded: expired rows go and a tenant keeps at most
 * AUTH_THROTTLE_MAX_ROWS.
 */
static const char *const tenant_v10[] = {
	"CREATE TABLE login_attempts ("
	" id @ID,"
	" addr_mac @STR(64) NOT NULL UNIQUE,"
	" failed @INT NOT NULL,"
	" locked_until @INT NOT NULL,"
	" last_at @INT NOT NULL)@OPTS",
	"CREATE INDEX login_attempts_last ON login_attempts (last_at)",
	"CREATE TABLE login_attempts_key ("
	" id @INT NOT NULL PRIMARY KEY,"
	" mac_key @BLOB,"
	" flooded_until @INT NOT NULL)@OPTS", /* throttle.c: the table full of lockouts */
	"INSERT INTO login_attempts_key (id, mac_key, flooded_until) VALUES (1, NULL, 0)",
	NULL,
};

/*
 * No two accounts that read alike (ADR 0012): the UTS #39 confusable
 * skeleton of every address, unique. Backfilled and checked like
 * migration 9; look-alike rows stop it with a message naming them.
 * @STR(512): EMAIL_SKEL_MAX bytes, so at most 2 KB per index entry.
 */
static bw_err migrate_email_skels(db *d, char *err, size_t errlen);

static const char *const tenant_v11[] = {
	"ALTER TABLE users ADD COLUMN email_skel @STR(512)",
	MIGRATE_DATA,
	"CREATE UNIQUE INDEX users_email_skel ON users (email_skel)",
	NULL,
};

/*
 * Optimistic concurrency (issue #14): every user, role and module row has
 * a version, 1 until its first change and one more on every write since;
 * ETag and If-Match carry it. The module tables' columns are generated
 * (module_schema_steps at MODULE_ROW_VERSION_SINCE), after these.
 */
static const char *const tenant_v12[] = {
	"ALTER TABLE users ADD COLUMN version @INT NOT NULL DEFAULT 1",
	"ALTER TABLE roles ADD COLUMN version @INT NOT NULL DEFAULT 1",
	NULL,
};

/*
 * Idempotency-Key (src/server/idempotency.c, ADR 0015): one row per caller
 * (actor_kind 1: a signed-in user, 2: an API token) and key, found by
 * HMAC-SHA256 of the key under the tenant's own key (sealed, made on first
 * use), never the key itself; request_mac is the same HMAC of the request
 * (method, path, query, If-Match, body), so a stored body cannot be guessed
 * at offline. owner: the id of the request that reserved the row, which
 * its transactions mark (state running -> done, writes + 1) so that a
 * retry after a crash never runs a committed write twice. response: the
 * reply, sealed (field.c). Rows older than 24 hours are ignored and purged.
 */
static const char *const tenant_v13[] = {
	"CREATE TABLE idempotency_keys ("
	" id @ID,"
	" actor_kind @INT NOT NULL,"
	" actor_id @INT NOT NULL,"
	" key_mac @STR(64) NOT NULL,"
	" request_mac @STR(64) NOT NULL,"
	" owner @STR(32) NOT NULL,"
	" state @STR(16) NOT NULL," /* running | done | complete */
	" writes @INT NOT NULL,"
	" status @INT NOT NULL,"
	" response @BLOB,"
	" created_at @INT NOT NULL)@OPTS",
	"CREATE UNIQUE INDEX idempotency_keys_key ON idempotency_keys (actor_kind, actor_id, key_mac)",
	"CREATE INDEX idempotency_keys_owner ON idempotency_keys (owner)",
	"CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at)",
	"CREATE TABLE idempotency_mac ("
	" id @INT NOT NULL PRIMARY KEY,"
	" mac_key @BLOB)@OPTS",
	"INSERT INTO idempotency_mac (id, mac_key) VALUES (1, NULL)",
	NULL,
};

/*
 * Search (docs/search.md). blind_index: per sealed field flagged FF_BLIND,
 * a keyed MAC (hex) of each row's normalised value, with the data key it
 * was derived from; filled on every write and moved to the new key by
 * `bulwark keys rotate` (which also indexes rows older than this). The
 * documents of the full-text index: the data step adds the driver's own
 * index (FTS5 / FULLTEXT) and a document for every existing row.
 * Every step may run again (IF NOT EXISTS, documents replaced in place).
 */
static const char *const tenant_v14[] = {
	"CREATE TABLE IF NOT EXISTS blind_index ("
	" id @ID,"
	" entity @STR(64) NOT NULL,"
	" field @STR(64) NOT NULL,"
	" row_id @INT NOT NULL,"
	" key_id @INT NOT NULL,"
	" mac @STR(64) NOT NULL,"
	" UNIQUE (entity, field, row_id))@OPTS",
	"CREATE INDEX IF NOT EXISTS blind_index_mac ON blind_index (mac)",
	"CREATE INDEX IF NOT EXISTS blind_index_key ON blind_index (key_id)",
	"CREATE TABLE IF NOT EXISTS search_docs ("
	" id @ID,"
	" entity @STR(64) NOT NULL,"
	" row_id @INT NOT NULL,"
	" label @STR(255) NOT NULL,"
	" body @TEXT NOT NULL," /* MariaDB; '' on SQLite, where search_fts holds it */
	" UNIQUE (entity, row_id))@OPTS",
	MIGRATE_DATA,
	NULL,
};

/*
 * Attachments (docs/files.md, ADR 0017). A file is a row of a module
 * (module, row_id); its contents are file_chunks, each sealed with the
 * file's own data key (dek, itself sealed with the tenant's data key, so
 * key rotation re-wraps it without touching the chunks). A file is
 * "pending" while it arrives and is checked, and shown only once "ready".
 */
static const char *const tenant_v15[] = {
	"CREATE TABLE IF NOT EXISTS files ("
	" id @ID,"
	" module @STR(64) NOT NULL,"
	" row_id @INT NOT NULL,"
	" name @STR(255) NOT NULL,"
	" mime @STR(127) NOT NULL,"
	" size @INT NOT NULL,"
	" sha256 @STR(64) NOT NULL,"
	" state @STR(16) NOT NULL," /* pending | ready */
	" dek @BLOB,"
	" chunks @INT NOT NULL,"
	" reservation @INT NOT NULL," /* the control database's storage_reservations row */
	" created_by @INT NOT NULL,"
	" created_at @INT NOT NULL,"
	" version @INT NOT NULL)@OPTS",
	"CREATE INDEX IF NOT EXISTS files_row ON files (module, row_id, state)",
	"CREATE INDEX IF NOT EXISTS files_state ON files (state, created_at)",
	"CREATE TABLE IF NOT EXISTS file_chunks ("
	" file_id @INT NOT NULL,"
	" idx @INT NOT NULL,"
	" data @BLOB NOT NULL,"
	" PRIMARY KEY (file_id, idx))@OPTS",
	NULL,
};

/*
 * Events, jobs and webhooks (docs/webhooks.md, ADR 0018).
 * events: the outbox, one row in the transaction of each change its audit
 * row records; payload is the event as delivered, sealed. dispatched: 0
 * until the runner has made a delivery of it for every subscription.
 * jobs: background work in the tenant database, claimed with a lease
 * (state queued | running | done | failed | cancelled); payload holds ids,
 * never secrets. job_lanes: one running job per lane at a time (the
 * deliveries of one subscription go out in order).
 * webhook_*: subscriptions (url and secrets sealed), one delivery per
 * event and subscription (msg_id is the receiver's idempotency key).
 * hook_*: inbound endpoints (secret sealed), the events they took (body
 * sealed; UNIQUE (endpoint_id, event_key): each is recorded once) and the
 * replay store of ids and nonces until they expire.
 */
static const char *const tenant_v16[] = {
	"CREATE TABLE IF NOT EXISTS events ("
	" id @ID,"
	" type @STR(96) NOT NULL,"
	" entity @STR(64) NOT NULL,"
	" entity_id @INT NOT NULL,"
	" at_ms @INT NOT NULL,"
	" payload @BLOB,"
	" dispatched @INT NOT NULL)@OPTS",
	"CREATE INDEX IF NOT EXISTS events_dispatched ON events (dispatched, id)",
	"CREATE INDEX IF NOT EXISTS events_at ON events (at_ms)",
	"CREATE TABLE IF NOT EXISTS jobs ("
	" id @ID,"
	" kind @STR(64) NOT NULL,"
	" lane @STR(96),"
	" payload @TEXT NOT NULL,"
	" state @STR(16) NOT NULL,"
	" attempts @INT NOT NULL,"
	" max_attempts @INT NOT NULL,"
	" run_at_ms @INT NOT NULL,"
	" lease_until_ms @INT NOT NULL,"
	" owner @STR(64) NOT NULL,"
	" last_error @STR(500) NOT NULL,"
	" created_at @INT NOT NULL,"
	" updated_at @INT NOT NULL)@OPTS",
	"CREATE INDEX IF NOT EXISTS jobs_due ON jobs (state, run_at_ms)",
	"CREATE INDEX IF NOT EXISTS jobs_lane ON jobs (lane, state)",
	"CREATE TABLE IF NOT EXISTS job_lanes ("
	" lane @STR(96) NOT NULL PRIMARY KEY,"
	" holder @INT NOT NULL,"
	" until_ms @INT NOT NULL)@OPTS",
	"CREATE TABLE IF NOT EXISTS webhook_subscriptions ("
	" id @ID,"
	" url @BLOB,"
	" host @STR(255) NOT NULL,"
	" description @STR(500) NOT NULL,"
	" event_types @TEXT NOT NULL,"
	" enabled @INT NOT NULL,"
	" secret @BLOB,"
	" prev_secret @BLOB,"
	" prev_until @INT NOT NULL,"
	" failing_since @INT NOT NULL,"
	" disabled_reason @STR(500) NOT NULL,"
	" from_event @INT NOT NULL," /* events up to this one committed before it existed */
	" created_by @INT NOT NULL,"
	" created_at @INT NOT NULL,"
	" updated_at @INT NOT NULL,"
	" version @INT NOT NULL)@OPTS",
	"CREATE TABLE IF NOT EXISTS webhook_deliveries ("
	" id @ID,"
	" subscription_id @INT NOT NULL,"
	" event_id @INT NOT NULL,"
	" msg_id @STR(64) NOT NULL,"
	" state @STR(16) NOT NULL," /* pending | delivered | failed | cancelled */
	" attempts @INT NOT NULL,"
	" last_at_ms @INT NOT NULL,"
	" next_at_ms @INT NOT NULL,"
	" last_status @INT NOT NULL,"
	" last_latency_ms @INT NOT NULL,"
	" last_error @STR(255) NOT NULL,"
	" response_prefix @TEXT NOT NULL,"
	" created_at @INT NOT NULL,"
	" delivered_at @INT NOT NULL,"
	" UNIQUE (subscription_id, event_id))@OPTS",
	"CREATE INDEX IF NOT EXISTS webhook_deliveries_sub ON webhook_deliveries (subscription_id, id)",
	"CREATE TABLE IF NOT EXISTS hook_endpoints ("
	" id @ID,"
	" public_id @STR(64) NOT NULL UNIQUE,"
	" provider @STR(32) NOT NULL,"
	" description @STR(500) NOT NULL,"
	" secret @BLOB,"
	" enabled @INT NOT NULL,"
	" created_at @INT NOT NULL,"
	" updated_at @INT NOT NULL,"
	" version @INT NOT NULL)@OPTS",
	"CREATE TABLE IF NOT EXISTS hook_events ("
	" id @ID,"
	" endpoint_id @INT NOT NULL,"
	" provider @STR(32) NOT NULL,"
	" event_key @STR(128) NOT NULL,"
	" event_type @STR(128) NOT NULL,"
	" body @BLOB,"
	" state @STR(16) NOT NULL," /* received | processed | failed */
	" received_at @INT NOT NULL,"
	" processed_at @INT NOT NULL,"
	" UNIQUE (endpoint_id, event_key))@OPTS",
	"CREATE TABLE IF NOT EXISTS hook_replays ("
	" endpoint_id @INT NOT NULL,"
	" nonce @STR(128) NOT NULL,"
	" expires_at @INT NOT NULL,"
	" PRIMARY KEY (endpoint_id, nonce))@OPTS",
	"CREATE INDEX IF NOT EXISTS hook_replays_expiry ON hook_replays (expires_at)",
	NULL,
};

/*
 * SAML single sign-on (src/saml): the tenant's one IdP and this SP's key
 * (row 1; the SP's private key and the IdP's certificates sealed), the
 * AuthnRequests this server issued (single use, bound to a browser by the
 * hash of a cookie), the IDs of assertions already used until they
 * expire, and per user: exempt from "SSO required" (break-glass), made by
 * SSO (its roles then follow the IdP's groups). A session says whether
 * SSO made it (the IdP was the second factor).
 */
static const char *const tenant_v17[] = {
	"CREATE TABLE IF NOT EXISTS saml_config ("
	" id @INT NOT NULL PRIMARY KEY,"
	" enabled @INT NOT NULL,"
	" sp_key @BLOB NOT NULL,"   /* sealed: PEM */
	" sp_cert @TEXT NOT NULL,"  /* PEM, public */
	" idp_entity_id @STR(1024) NOT NULL,"
	" idp_sso_url @TEXT NOT NULL,"
	" idp_slo_url @TEXT NOT NULL,"
	" idp_certs @BLOB NOT NULL," /* sealed: a JSON array of PEM */
	" settings @TEXT NOT NULL,"  /* JSON: domains, attributes, group roles, jit, ... */
	" created_at @INT NOT NULL,"
	" updated_at @INT NOT NULL)@OPTS",
	"CREATE TABLE IF NOT EXISTS saml_requests ("
	" request_id @STR(64) NOT NULL PRIMARY KEY,"
	" browser_hash @STR(64) NOT NULL,"
	" next_path @TEXT NOT NULL,"
	" created_at @INT NOT NULL,"
	" expires_at @INT NOT NULL)@OPTS",
	"CREATE INDEX saml_requests_expiry ON saml_requests (expires_at)",
	"CREATE TABLE IF NOT EXISTS saml_replay ("
	" assertion_hash @STR(64) NOT NULL PRIMARY KEY,"
	" expires_at @INT NOT NULL)@OPTS",
	"CREATE INDEX saml_replay_expiry ON saml_replay (expires_at)",
	"ALTER TABLE users ADD COLUMN sso_exempt @INT NOT NULL DEFAULT 0",
	"ALTER TABLE users ADD COLUMN sso_provisioned @INT NOT NULL DEFAULT 0",
	"ALTER TABLE users ADD COLUMN display_name @STR(200) NOT NULL DEFAULT ''",
	"ALTER TABLE sessions ADD COLUMN sso @INT NOT NULL DEFAULT 0",
	NULL,
};

/*
 * E-mail and account recovery (src/notify, src/auth/recovery.c): the
 * tenant's sender settings (row 1; the SMTP password and the DKIM key
 * sealed), the outbox of mails with what the server answered (each
 * message sealed whole: a reset link is a secret, an address is personal
 * data), password reset tokens (only their SHA-256 kept, bound to the
 * user and to the password hash they were made for), and the counts that
 * limit reset requests per address and per client (keyed by an HMAC
 * under the tenant's own key, as login_attempts).
 */
static const char *const tenant_v18[] = {
	"CREATE TABLE IF NOT EXISTS mail_settings ("
	" id @INT NOT NULL PRIMARY KEY,"
	" settings @TEXT NOT NULL,"  /* JSON: from, reply-to, SMTP server, DKIM domain and selector */
	" smtp_password @BLOB,"      /* sealed, or NULL */
	" dkim_key @BLOB,"           /* sealed: PEM, or NULL */
	" mac_key @BLOB,"            /* sealed: the HMAC key of recovery_throttle */
	" created_at @INT NOT NULL,"
	" updated_at @INT NOT NULL)@OPTS",
	"INSERT INTO mail_settings (id, settings, created_at, updated_at) VALUES (1, '{}', 0, 0)",
	"CREATE TABLE IF NOT EXISTS mail_outbox ("
	" id @ID,"
	" kind @STR(64) NOT NULL,"
	" user_id @INT NOT NULL,"    /* the staff user it is for, or 0 */
	" message @BLOB,"            /* sealed: JSON {to, to_name, subject, text, html, ...} */
	" state @STR(16) NOT NULL,"  /* queued | sent | failed */
	" attempts @INT NOT NULL,"
	" message_id @STR(255) NOT NULL,"
	" last_reply @STR(300) NOT NULL,"
	" created_at @INT NOT NULL,"
	" sent_at @INT NOT NULL)@OPTS",
	"CREATE INDEX IF NOT EXISTS mail_outbox_created ON mail_outbox (created_at)",
	"CREATE TABLE IF NOT EXISTS password_resets ("
	" id @ID,"
	" token_hash @STR(64) NOT NULL UNIQUE,"
	" user_id @INT NOT NULL,"
	" bound_to @STR(64) NOT NULL," /* SHA-256 (hex) of the password hash it was made for */
	" created_at @INT NOT NULL,"
	" expires_at @INT NOT NULL,"
	" used_at @INT NOT NULL)@OPTS",
	"CREATE INDEX IF NOT EXISTS password_resets_user ON password_resets (user_id)",
	"CREATE INDEX IF NOT EXISTS password_resets_expiry ON password_resets (expires_at)",
	/* The last event the notices of ticket work were made from (none before this migration). */
	"CREATE TABLE IF NOT EXISTS notify_cursor ("
	" id @INT NOT NULL PRIMARY KEY,"
	" last_event @INT NOT NULL)@OPTS",
	"INSERT INTO notify_cursor (id, last_event) SELECT 1, COALESCE(MAX(id), 0) FROM events",
	"CREATE TABLE IF NOT EXISTS recovery_throttle ("
	" key_hash @STR(64) NOT NULL PRIMARY KEY," /* HMAC of "addr:..." or "ip:..." */
	" window_start @INT NOT NULL,"
	" hits @INT NOT NULL)@OPTS",
	"CREATE INDEX IF NOT EXISTS recovery_throttle_window ON recovery_throttle (window_start)",
	NULL,
};

/*
 * E-mail to ticket (src/intake): the support mailbox (row 1: the IMAP
 * server and the policy as JSON, the password sealed, how far the mailbox
 * has been read), one row per message taken from it (claimed by its
 * mailbox position in the transaction of the ticket or comment made of
 * it, so that two app servers take each message once; the sender only as
 * an HMAC under the tenant's key, for the per-sender limit; the
 * Message-ID only as its SHA-256, for threading), and on each outgoing
 * mail the ticket it tells of, so that an answer to it finds its ticket.
 */
static const char *const tenant_v19[] = {
	"CREATE TABLE IF NOT EXISTS mailbox_settings ("
	" id @INT NOT NULL PRIMARY KEY,"
	" settings @TEXT NOT NULL,"   /* JSON: host, port, security, username, mailbox, policy */
	" password @BLOB,"            /* sealed, or NULL */
	" enabled @INT NOT NULL,"
	" uidvalidity @INT NOT NULL," /* of the mailbox when last read */
	" next_uid @INT NOT NULL,"    /* the first UID not yet looked at */
	" next_poll_at @INT NOT NULL,"
	" last_poll_at @INT NOT NULL,"
	" last_error @STR(300) NOT NULL,"
	" updated_at @INT NOT NULL)@OPTS",
	"INSERT INTO mailbox_settings (id, settings, enabled, uidvalidity, next_uid, next_poll_at,"
	" last_poll_at, last_error, updated_at) VALUES (1, '{}', 0, 0, 1, 0, 0, '', 0)",
	"CREATE TABLE IF NOT EXISTS mail_inbound ("
	" id @ID,"
	" msg_key @STR(64) NOT NULL UNIQUE,"  /* "<mailbox hash>:<uidvalidity>:<uid>" */
	" message_hash @STR(64) NOT NULL,"    /* SHA-256 (hex) of the Message-ID, or '' */
	" sender_hash @STR(64) NOT NULL,"     /* HMAC of the folded From address, or '' */
	" outcome @STR(16) NOT NULL,"         /* ticket | comment | ignored | refused */
	" reason @STR(300) NOT NULL,"
	" verified @INT NOT NULL,"
	" ticket_id @INT NOT NULL,"
	" comment_id @INT NOT NULL,"
	" size @INT NOT NULL,"
	" created_at @INT NOT NULL)@OPTS",
	"CREATE INDEX IF NOT EXISTS mail_inbound_message ON mail_inbound (message_hash)",
	"CREATE INDEX IF NOT EXISTS mail_inbound_sender ON mail_inbound (sender_hash, created_at)",
	"CREATE INDEX IF NOT EXISTS mail_inbound_comment ON mail_inbound (comment_id)",
	"ALTER TABLE mail_outbox ADD COLUMN ticket_id @INT NOT NULL DEFAULT 0",
	"CREATE INDEX IF NOT EXISTS mail_outbox_message ON mail_outbox (message_id)",
	/* A user may ask to be told of each sign-in from an address not seen before. */
	"ALTER TABLE users ADD COLUMN signin_notice @INT NOT NULL DEFAULT 0",
	NULL,
};

static const char *const no_static_steps[] = {NULL};

static const struct migration tenant_migrations[] = {
	{1, "settings and users", tenant_v1, NULL},
	{2, "integrations", tenant_v2, NULL},
	{3, "identity: lockout, MFA, sessions, API tokens", tenant_v3, NULL},
	{4, "admin IP allowlist", tenant_v4, NULL},
	{5, "roles", tenant_v5, NULL},
	{6, "PSA modules: the first eighteen tables", no_static_steps, module_schema_steps},
	{7, "audit log", tenant_v7, NULL},
	{8, "audit links to the other rows a change touched", tenant_v8, NULL},
	{9, "normalised e-mail addresses, unique", tenant_v9, NULL, migrate_email_keys},
	{10, "failed sign-ins of unknown addresses", tenant_v10, NULL},
	{11, "confusable skeletons of e-mail addresses, unique", tenant_v11, NULL, migrate_email_skels},
	{12, "row versions for ETag and If-Match", tenant_v12, module_schema_steps},
	{13, "idempotency keys", tenant_v13, NULL},
	{14, "search: blind indexes and the full-text index", tenant_v14, NULL, fulltext_migrate},
	{15, "attachments: files and their sealed chunks", tenant_v15, NULL},
	{16, "events, jobs, outbound webhooks and inbound hooks", tenant_v16, NULL},
	{17, "SAML single sign-on", tenant_v17, NULL},
	{18, "e-mail out and account recovery", tenant_v18, NULL},
	{19, "e-mail to ticket", tenant_v19, NULL},
};

const struct migration_set migrate_tenant = {"tenant", tenant_migrations, BW_ARRAY_LEN(tenant_migrations)};

/* --- data steps ------------------------------------------------------------ */

#define MIGRATE_BATCH 256

/*
 * A column of users filled from users.email through email_normalize(),
 * and what to call it in messages. Compiled-in SQL only.
 */
struct migrate_email_col {
	const char *update;   /* SET col = ? WHERE id = ? */
	const char *dups;     /* a.id, a.email, b.id, b.email, the shared value */
	const char *what;     /* "normalised address" */
	const char *same;     /* "are one address once normalised" */
	int skel;             /* 1: the skeleton (and users.email shown lower-case), 0: the key */
};

static const struct migrate_email_col migrate_email_norm = {
    "UPDATE users SET email_norm = ? WHERE id = ?",
    "SELECT a.id, a.email, b.id, b.email, a.email_norm FROM users a JOIN users b"
    " ON b.email_norm = a.email_norm AND b.id > a.id ORDER BY a.id, b.id LIMIT 1",
    "normalised address",
    "are one address once normalised",
    0,
};

static const struct migrate_email_col migrate_email_skel = {
    "UPDATE users SET email_skel = ?, email = ? WHERE id = ?",
    "SELECT a.id, a.email, b.id, b.email, a.email_skel FROM users a JOIN users b"
    " ON b.email_skel = a.email_skel AND b.id > a.id ORDER BY a.id, b.id LIMIT 1",
    "confusable skeleton",
    "look alike: one confusable skeleton",
    1,
};

/*
 * Fill col from users.email, in batches. Lookups accept internationalised
 * domains whatever the tenant's setting (that setting governs new
 * addresses only), so existing ones are kept. An address the policy
 * refuses, or two rows with one value, stop it with a message naming them.
 */
static bw_err
migrate_email_fill(db *d, const struct migrate_email_col *col, char *err, size_t errlen)
{
	int64_t last = 0;
	bw_err e;
	for (;;) {
		struct {
			int64_t id;
			struct email_addr a;
		} *batch = calloc(MIGRATE_BATCH, sizeof(*batch));
		db_stmt *s = NULL;
		int row;
		size_t n = 0;
		if (batch == NULL) {
			snprintf(err, errlen, "out of memory");
			return BW_ERR_NOMEM;
		}
		e = db_prepare(d, "SELECT id, email FROM users WHERE id > ? ORDER BY id LIMIT 256", &s);
		if (e == BW_OK && (e = db_bind_int(s, 1, last)) == BW_OK)
			while ((e = db_step(s, &row)) == BW_OK && row) {
				const char *why = NULL, *email = db_col_text(s, 1);
				int64_t id = db_col_int(s, 0);
				last = id;
				bw_err ne = email_normalize(email, EMAIL_ALLOW_IDN, &batch[n].a, &why);
				if (ne != BW_OK) {
					snprintf(err, errlen,
						 "user %lld's address '%s' %s: change it or delete the user, then "
						 "run bulwark migrate again",
						 (long long)id, email ? email : "", why ? why : "is refused");
					e = ne == BW_ERR_NOMEM ? ne : BW_ERR_INVALID;
					break;
				}
				batch[n++].id = id;
			}
		db_finalize(s);
		if (e != BW_OK && err[0] == '\0')
			snprintf(err, errlen, "reading users: %s", db_errmsg(d));
		for (size_t i = 0; e == BW_OK && i < n; i++) {
			const char *v = col->skel ? batch[i].a.skel : batch[i].a.key;
			int idx = col->skel ? 3 : 2;
			if ((e = db_prepare(d, col->update, &s)) == BW_OK &&
			    (e = db_bind_text(s, 1, v)) == BW_OK &&
			    (!col->skel || (e = db_bind_text(s, 2, batch[i].a.display)) == BW_OK) &&
			    (e = db_bind_int(s, idx, batch[i].id)) == BW_OK)
				e = db_step(s, &row);
			db_finalize(s);
			if (e != BW_OK)
				snprintf(err, errlen, "setting user %lld's %s: %s", (long long)batch[i].id,
					 col->what, db_errmsg(d));
		}
		free(batch);
		if (e != BW_OK)
			return e;
		if (n < MIGRATE_BATCH)
			break;
	}
	/* Two rows that are one address: name them rather than merge or drop one. */
	db_stmt *s = NULL;
	int row = 0;
	e = db_prepare(d, col->dups, &s);
	if (e == BW_OK && (e = db_step(s, &row)) == BW_OK && row) {
		snprintf(err, errlen,
			 "users %lld ('%s') and %lld ('%s') %s ('%s'): "
			 "change or delete one of them, then run bulwark migrate again",
			 (long long)db_col_int(s, 0), db_col_text(s, 1), (long long)db_col_int(s, 2),
			 db_col_text(s, 3), col->same, db_col_text(s, 4));
		e = BW_ERR_CONFLICT;
	} else if (e != BW_OK) {
		snprintf(err, errlen, "looking for duplicate addresses: %s", db_errmsg(d));
	}
	db_finalize(s);
	return e;
}

/* Migration 9's data step: users.email_norm from users.email. */
static bw_err
migrate_email_keys(db *d, char *err, size_t errlen)
{
	return migrate_email_fill(d, &migrate_email_norm, err, errlen);
}

/* Migration 11's data step: users.email_skel from users.email. */
static bw_err
migrate_email_skels(db *d, char *err, size_t errlen)
{
	return migrate_email_fill(d, &migrate_email_skel, err, errlen);
}

/* --- runner -------------------------------------------------------------- */

static const char migrate_table[] =
	"CREATE TABLE IF NOT EXISTS schema_migrations ("
	" version @INT NOT NULL PRIMARY KEY,"
	" name @STR(200) NOT NULL,"
	" steps_done @INT NOT NULL,"
	" complete @INT NOT NULL,"
	" applied_at @INT NOT NULL)@OPTS";

int
migrate_latest(const struct migration_set *set)
{
	return set->n ? set->list[set->n - 1].version : 0;
}

static bw_err
migrate_exec_portable(db *d, const char *portable)
{
	char *sql = db_dialect_sql(db_driver_of(d), portable);
	if (sql == NULL)
		return BW_ERR_NOMEM;
	bw_err e = db_exec(d, sql);
	free(sql);
	return e;
}

bw_err
migrate_current(db *d, int *version)
{
	db_stmt *s;
	int row;
	*version = 0;
	bw_err e = migrate_exec_portable(d, migrate_table);
	if (e != BW_OK)
		return e;
	if ((e = db_prepare(d, "SELECT MAX(version) FROM schema_migrations WHERE complete = 1",
			    &s)) != BW_OK)
		return e;
	if ((e = db_step(s, &row)) == BW_OK && row && !db_col_null(s, 0))
		*version = (int)db_col_int(s, 0);
	db_finalize(s);
	return e;
}

bw_err
migrate_current_ro(db *d, int *version)
{
	db_stmt *s;
	int row;
	*version = 0;
	static const char sql[] = "SELECT MAX(version) FROM schema_migrations WHERE complete = 1";
	/* No table yet (never migrated) fails the prepare: that is version 0 too. */
	if (db_prepare_cached(d, sql, &s) != BW_OK)
		return db_broken(d) ? BW_ERR_UNAVAILABLE : BW_OK;
	bw_err e = db_step(s, &row);
	if (e == BW_OK && row && !db_col_null(s, 0))
		*version = (int)db_col_int(s, 0);
	db_done(s);
	return e;
}

/* Steps of a migration already done by an interrupted earlier run. */
static bw_err
migrate_steps_done(db *d, int version, int *done)
{
	db_stmt *s;
	int row;
	*done = 0;
	bw_err e = db_prepare(d, "SELECT steps_done FROM schema_migrations WHERE version = ?", &s);
	if (e != BW_OK)
		return e;
	if ((e = db_bind_int(s, 1, version)) == BW_OK && (e = db_step(s, &row)) == BW_OK && row)
		*done = (int)db_col_int(s, 0);
	db_finalize(s);
	return e;
}

static bw_err
migrate_record(db *d, const struct migration *m, int steps, int complete)
{
	db_stmt *s;
	int row;
	bw_err e = db_prepare(d, "DELETE FROM schema_migrations WHERE version = ?", &s);
	if (e != BW_OK)
		return e;
	if ((e = db_bind_int(s, 1, m->version)) == BW_OK)
		e = db_step(s, &row);
	db_finalize(s);
	if (e != BW_OK)
		return e;
	e = db_prepare(d,
		       "INSERT INTO schema_migrations (version, name, steps_done, complete, applied_at)"
		       " VALUES (?, ?, ?, ?, ?)",
		       &s);
	if (e != BW_OK)
		return e;
	if ((e = db_bind_int(s, 1, m->version)) == BW_OK &&
	    (e = db_bind_text(s, 2, m->name)) == BW_OK && (e = db_bind_int(s, 3, steps)) == BW_OK &&
	    (e = db_bind_int(s, 4, complete)) == BW_OK &&
	    (e = db_bind_int(s, 5, (int64_t)time(NULL))) == BW_OK)
		e = db_step(s, &row);
	db_finalize(s);
	return e;
}

bw_err
migrate_run(db *d, const struct migration_set *set, int *from, int *to, char *err, size_t errlen)
{
	int cur;
	bw_err e = migrate_current(d, &cur);
	*from = *to = cur;
	if (e != BW_OK) {
		snprintf(err, errlen, "reading schema version: %s", db_errmsg(d));
		return e;
	}
	int transactional = db_driver_of(d) == DB_SQLITE;
	for (size_t i = 0; i < set->n; i++) {
		const struct migration *m = &set->list[i];
		if (m->version <= cur)
			continue;
		int done = 0;
		if ((e = migrate_steps_done(d, m->version, &done)) != BW_OK) {
			snprintf(err, errlen, "reading migration progress: %s", db_errmsg(d));
			return e;
		}
		if (transactional && (e = db_begin(d)) != BW_OK) {
			snprintf(err, errlen, "migration %d: cannot begin: %s", m->version, db_errmsg(d));
			return e;
		}
		/* The static steps, then the generated ones, as one numbered list. */
		size_t nstatic = 0, ngen = 0;
		while (m->steps[nstatic] != NULL)
			nstatic++;
		char **gen = m->generate ? m->generate(m->version) : NULL;
		if (m->generate != NULL && gen == NULL) {
			if (transactional)
				(void)db_rollback(d);
			snprintf(err, errlen, "migration %d: out of memory", m->version);
			return BW_ERR_NOMEM;
		}
		while (gen != NULL && gen[ngen] != NULL)
			ngen++;
		size_t total = nstatic + ngen;
		int step;
		const char *stmt = NULL;
		char why[512] = "";
		for (step = done; (size_t)step < total; step++) {
			stmt = (size_t)step < nstatic ? m->steps[step] : gen[(size_t)step - nstatic];
			if (strcmp(stmt, MIGRATE_DATA) == 0)
				e = m->data != NULL ? m->data(d, why, sizeof(why)) : BW_ERR_INTERNAL;
			else
				e = migrate_exec_portable(d, stmt);
			if (e == BW_OK && !transactional)
				e = migrate_record(d, m, step + 1, 0);
			if (e != BW_OK)
				break;
			stmt = NULL;
		}
		if (e == BW_OK)
			e = migrate_record(d, m, step, 1);
		if (e == BW_OK && transactional)
			e = db_commit(d);
		if (e != BW_OK && why[0] != '\0') {
			snprintf(err, errlen, "migration %d (%s) step %d failed: %s", m->version, m->name,
				 step + 1, why);
		} else if (e != BW_OK) {
			snprintf(err, errlen, "migration %d (%s) step %d failed: %s -- statement: %.300s",
				 m->version, m->name, step + 1, db_errmsg(d),
				 stmt ? stmt : "(recording progress)");
		}
		if (e != BW_OK) {
			if (transactional)
				(void)db_rollback(d);
			module_schema_free(gen);
			return e;
		}
		module_schema_free(gen);
		*to = m->version;
	}
	return BW_OK;
}
