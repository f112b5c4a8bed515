/*
 * tenancy: the control plane (tenant registry), per-tenant databases and
 * the connection pool that binds a request's connection to one tenant.
 */
#ifndef BW_TENANCY_H
#define BW_TENANCY_H

#include <stdint.h>
#include <stdio.h>

#include "../config/config.h"
#include "../core/core.h"
#include "../db/db.h"

#define TENANT_SLUG_MAX 32

enum tenant_state {
	TENANT_PROVISIONING,
	TENANT_ACTIVE,
	TENANT_SUSPENDED,
	TENANT_DELETING,
};

struct tenant {
	int64_t id;
	char slug[TENANT_SLUG_MAX + 1];
	enum tenant_state state;
	char plan[65];
	char db_name[129]; /* MariaDB database, or SQLite file path */
	char db_user[81];  /* MariaDB account, "" on SQLite */
	int64_t created_at;
	uint32_t active_key_id; /* the data key new values are sealed with */
	/* MariaDB: the account password, wrapped by master key db_secret_master */
	unsigned char db_secret[60];
	size_t db_secret_len;
	uint32_t db_secret_master;
};

/* --- host.c: names and hosts (untrusted input: tests/fuzz/fuzz_host.c) -- */

/* BW_OK for a valid slug; BW_ERR_INVALID with a reason in *why. */
bw_err tenant_slug_check(const char *slug, const char **why) BW_MUST_USE;
/*
 * The tenant slug of a Host header "<slug>.<base_domain>[.][:port]" (case-
 * insensitive; port 1 to 5 digits) into slug. BW_ERR_NOTFOUND when the
 * host is not of that form or the label is not a valid slug.
 */
bw_err tenant_from_host(const char *host, const char *base_domain,
			char slug[TENANT_SLUG_MAX + 1]) BW_MUST_USE;

/* --- tenant.c: states and provisioning ---------------------------------- */
const char *tenant_state_name(enum tenant_state s);
bw_err tenant_state_parse(const char *s, enum tenant_state *out) BW_MUST_USE;

struct tenancy;

/*
 * Create a tenant: registry row, its own database (and on MariaDB its own
 * account), schema, and the admin user. password NULL generates a one-time
 * password into otp (>= 32 bytes). All or nothing: on failure everything
 * made so far is removed and err says which step failed.
 */
bw_err tenant_create(struct tenancy *t, const char *slug, const char *admin_email,
		     const char *password, const char *plan, char *otp, size_t otplen, char *err,
		     size_t errlen) BW_MUST_USE;
/* Destroy a tenant's database, account and registry row. */
bw_err tenant_delete(struct tenancy *t, const char *slug, char *err, size_t errlen) BW_MUST_USE;
/* Suspend or resume. */
bw_err tenant_set_state(struct tenancy *t, const char *slug, enum tenant_state to, char *err,
			size_t errlen) BW_MUST_USE;
/*
 * All tenants from the control database, ordered by slug; caller frees *out
 * (NULL when there are none). BW_ERR_NOMEM past TENANT_LIST_MAX tenants.
 */
#define TENANT_LIST_MAX 100000
bw_err tenant_list(struct tenancy *t, struct tenant **out, size_t *n, char *err,
		   size_t errlen) BW_MUST_USE;

/* --- tenancy.c: the process's handle on the control plane ---------------- */

/*
 * Connect to the control database as configured. create: make the control
 * database (and var dirs) if missing (migrate); otherwise it must exist
 * and be at the latest schema version.
 */
bw_err tenancy_open(const struct config *cfg, int create, struct tenancy **out, char *err,
		    size_t errlen) BW_MUST_USE;
void tenancy_close(struct tenancy *t);
struct keyring;
/* The key ring (master keys, data keys); never NULL once open. */
struct keyring *tenancy_keyring(struct tenancy *t);
/* Read the master keys again (SIGHUP); on error the loaded ones stay. */
bw_err tenancy_reload_keys(struct tenancy *t, char *err, size_t errlen) BW_MUST_USE;
/* Reopen the control connection if it broke; BW_OK when usable. */
bw_err tenancy_reconnect(struct tenancy *t) BW_MUST_USE;
/* The control connection (single-threaded users: CLI, refresh thread). */
db *tenancy_control(struct tenancy *t);
/* A new control connection of the caller's own (close it with db_close). */
bw_err tenancy_control_open(struct tenancy *t, db **out, char *err, size_t errlen) BW_MUST_USE;
/* quota.c's connection slot and the lock that guards it. */
#include <pthread.h>
pthread_mutex_t *tenancy_quota_lock(struct tenancy *t, db ***d);

/* --- quota.c: per-plan storage quotas (docs/files.md) ------------------------ */
struct quota_usage {
	char plan[65];
	int64_t limit;    /* the plan's storage_bytes */
	int64_t used;     /* what the tenant's files take */
	int64_t reserved; /* what uploads in progress have reserved */
};
/* How long a reservation holds when its upload never ends (a crash): a day. */
#define QUOTA_RESERVATION_SECONDS 86400
/*
 * Reserve bytes for an upload of tenant slug, atomically against every
 * other reservation (the usage row locked in one transaction): *id is the
 * reservation. BW_ERR_QUOTA when used + reserved + bytes would pass the
 * plan's limit, *u then where it stands; BW_ERR_UNAVAILABLE when the
 * control database cannot be reached. u may be NULL.
 */
bw_err quota_reserve(struct tenancy *t, const char *slug, int64_t bytes, int64_t *id,
		     struct quota_usage *u) BW_MUST_USE;
/* The upload is stored: its reservation becomes bytes used, in one transaction. */
bw_err quota_commit(struct tenancy *t, const char *slug, int64_t id, int64_t bytes) BW_MUST_USE;
/* The upload failed: its reservation is dropped (accepts id 0). */
bw_err quota_release(struct tenancy *t, const char *slug, int64_t id) BW_MUST_USE;
/* A file was deleted: bytes are no longer used. */
bw_err quota_return(struct tenancy *t, const char *slug, int64_t bytes) BW_MUST_USE;
/* Where tenant slug stands. BW_ERR_NOTFOUND for no such tenant. */
bw_err quota_usage(struct tenancy *t, const char *slug, struct quota_usage *u) BW_MUST_USE;
const struct config *tenancy_config(const struct tenancy *t);
/*
 * MariaDB: BW_ERR_CONFIG, with what to run to fix it in err, when an
 * anonymous account admits logins from where this process connects (it
 * shadows the tenant accounts, ADR 0013), or when the control account may
 * read mysql.user and it lists one; BW_OK when there is none, on SQLite,
 * and when the server cannot be reached (tenant logins report that). Uses
 * the control connection: not for request threads.
 */
bw_err tenancy_check_anonymous(struct tenancy *t, char *err, size_t errlen) BW_MUST_USE;
/*
 * Open a new connection to one tenant's database with its own credentials.
 * On MariaDB a refused login names an anonymous account behind it, if any.
 */
bw_err tenancy_connect_tenant(struct tenancy *t, const struct tenant *tn, int create, db **out,
			      char *err, size_t errlen) BW_MUST_USE;
/* Run tenant migrations for one tenant (bulwark migrate). */
bw_err tenancy_migrate_tenant(struct tenancy *t, const struct tenant *tn, int *from, int *to,
			      char *err, size_t errlen) BW_MUST_USE;
/* The tenant's MariaDB account password (hex) into out (>= 65 bytes). */
bw_err tenancy_tenant_password(struct tenancy *t, const struct tenant *tn, char *out,
			       size_t outlen) BW_MUST_USE;
/*
 * Give tenant tn's MariaDB account a new random password: set it with
 * ALTER USER (or, when create, it is for CREATE USER by the caller) and
 * store it wrapped in the registry; the hex password into pw (>= 65 bytes).
 */
/* Re-wrap tn's database password under the newest master key (same password). */
bw_err tenancy_tenant_rewrap_password(struct tenancy *t, struct tenant *tn) BW_MUST_USE;
bw_err tenancy_tenant_new_password(struct tenancy *t, struct tenant *tn, int create, char *pw,
				   size_t pwlen, char *err, size_t errlen) BW_MUST_USE;
/*
 * Move tenant tenant_id's audit anchor in the control database forward to
 * (seq, mac); an anchor already at or past seq is left alone, so two
 * verifications running at once never move it back.
 */
bw_err tenancy_anchor_advance(db *ctl, int64_t tenant_id, const char *slug, int64_t seq,
			      const char *mac) BW_MUST_USE;
/* Bump the registry version so every app server reloads. */
bw_err tenancy_bump_registry(struct tenancy *t) BW_MUST_USE;

/* --- field.c: encrypted columns -------------------------------------------- */

/* A column whose values are sealed; rotation re-encrypts every one of them. */
struct field_column {
	const char *table;
	const char *column;
};
/* Every sealed column: the system's and each module's encrypted fields. */
const struct field_column *field_columns(size_t *n);

/*
 * Seal value for (tenant, table, column, row) with the tenant's active data
 * key; *out is malloc'd (free it), *outlen its length.
 */
bw_err field_seal(struct tenancy *t, const struct tenant *tn, const char *table,
		  const char *column, int64_t row_id, const void *value, size_t len,
		  unsigned char **out, size_t *outlen) BW_MUST_USE;
/*
 * A tenant's own secret of len bytes (a MAC key), kept sealed in column
 * mac_key of row 1 of table (a compiled-in name; field_columns lists it):
 * opened into key, or on first use made, sealed and stored (when another
 * request stores one first, that one is used). BW_ERR_DB when the row is
 * missing (fail closed), BW_ERR_CRYPTO when it does not open.
 */
bw_err field_tenant_key(struct tenancy *t, const struct tenant *tn, db *d, const char *table,
			unsigned char *key, size_t len) BW_MUST_USE;
/*
 * Open a sealed value into a malloc'd, NUL-terminated *out. BW_ERR_CRYPTO
 * if it was tampered with, moved, or its key is gone: never garbage.
 */
bw_err field_open(struct tenancy *t, const char *slug, const char *table, const char *column,
		  int64_t row_id, const unsigned char *sealed, size_t len, char **out,
		  size_t *outlen) BW_MUST_USE;

/* --- keys.c: data keys of tenants, rotation --------------------------------- */

/* Give tenant slug a new active data key (provisioning, rotation). */
bw_err keys_tenant_new(struct tenancy *t, const char *slug, int64_t run_id, uint32_t *id,
		       char *err, size_t errlen) BW_MUST_USE;
/* Destroy every data key of tenant slug (crypto-shredding). */
bw_err keys_tenant_destroy(struct tenancy *t, const char *slug) BW_MUST_USE;

/* Retired data keys are kept this long for rollback, then purged. */
#define KEYS_RETENTION_SECONDS (30 * 86400)

/* Progress of a rotation: tenant i of n, fields done of total in it. */
typedef void (*keys_progress_fn)(void *ud, const char *slug, size_t i, size_t n, int64_t done,
				 int64_t total);

struct keys_report {
	int64_t run_id;
	int resumed;
	size_t tenants;
	int64_t fields;   /* re-encrypted */
	size_t rewrapped; /* data keys moved to the newest master key */
	size_t purged;
};

/*
 * Rotate: every tenant gets a new data key for new writes (seen by running
 * servers within registry_refresh_ms), every data key is re-wrapped under
 * the newest master key, and every sealed value is re-encrypted in batches.
 * Resumes an interrupted rotation. Recorded in key_rotation_runs and
 * secret_rotation_history.
 */
bw_err keys_rotate(struct tenancy *t, const char *actor, keys_progress_fn cb, void *ud,
		   struct keys_report *rep, char *err, size_t errlen) BW_MUST_USE;
/* Undo the last rotation within the retention window (resumable too). */
bw_err keys_rollback(struct tenancy *t, const char *actor, keys_progress_fn cb, void *ud,
		     struct keys_report *rep, char *err, size_t errlen) BW_MUST_USE;
/*
 * Purge data keys retired before now - KEYS_RETENTION_SECONDS that no value
 * uses any more: the wrapped key is erased and the purge recorded.
 */
bw_err keys_purge(struct tenancy *t, int64_t now, const char *actor, size_t *purged, char *err,
		  size_t errlen) BW_MUST_USE;

struct keys_status_row {
	uint32_t id;
	char slug[TENANT_SLUG_MAX + 1];
	char state[16];
	uint32_t master_id;
	int64_t encryptions, created_at, retired_at, purged_at;
	int64_t fields; /* values sealed with it now; -1 if the tenant is unreachable */
};
/*
 * Every data key with how many values it seals; caller frees *rows.
 * BW_ERR_NOMEM past KEYS_STATUS_MAX keys.
 */
#define KEYS_STATUS_MAX 1000000
bw_err keys_status(struct tenancy *t, struct keys_status_row **rows, size_t *n, char *err,
		   size_t errlen) BW_MUST_USE;

/* --- registry.c: the in-memory tenant cache ------------------------------ */
struct registry;
/* Load the registry now; start a thread that reloads it when it changes. */
bw_err registry_start(struct tenancy *t, struct registry **out, char *err,
		      size_t errlen) BW_MUST_USE;
void registry_stop(struct registry *r);
/* Copy the tenant named slug into out; BW_ERR_NOTFOUND if none. */
bw_err registry_lookup(struct registry *r, const char *slug, struct tenant *out) BW_MUST_USE;
/* Reload if the version changed (the thread calls this; tests may too). */
bw_err registry_refresh(struct registry *r) BW_MUST_USE;
size_t registry_count(struct registry *r);
/* A copy of every tenant as the registry has them now (free *out; NULL when none). */
bw_err registry_snapshot(struct registry *r, struct tenant **out, size_t *n) BW_MUST_USE;

/* --- connpool.c: connections bound to one tenant each -------------------- */
struct connpool;
bw_err connpool_new(struct tenancy *t, struct connpool **out) BW_MUST_USE;
void connpool_free(struct connpool *p);
/*
 * A connection to tn's database: idle one of that tenant's, else a new one
 * within the limits, else wait up to pool_wait_ms. BW_ERR_UNAVAILABLE when
 * the database cannot be reached or the pool stays full.
 */
bw_err connpool_borrow(struct connpool *p, const struct tenant *tn, db **out) BW_MUST_USE;
/* Give a connection back; one with an open transaction or an error is closed. */
void connpool_return(struct connpool *p, const struct tenant *tn, db *conn);
/* Counters for one tenant (tests, metrics): connections ever opened, open now. */
void connpool_stats(struct connpool *p, const char *slug, long *opened, long *open_now);
long connpool_total(struct connpool *p);

#endif
