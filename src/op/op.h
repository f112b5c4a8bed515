/*
 * op: the context of one unit of work. Whatever changes a tenant's data
 * (a request, a CLI command, a background job) does it through one of
 * these: the tenant and its keys, the connection and its transaction, who
 * acts (a staff user's session, an API token with its scopes parsed once,
 * the system), a bounded pool and the error sink that carries the message
 * of the error a function returns.
 *
 * The HTTP request holds one (its pipeline fills the actor and lends the
 * connection); the CLI and a job runner make one with op_init(). Domain
 * code (the module engine, hooks, audit, permissions, user operations)
 * takes this, never the HTTP request, so the API, the CLI and jobs run the
 * same code.
 */
#ifndef BW_OP_H
#define BW_OP_H

#include <jansson.h>
#include <stdint.h>

#include "../config/config.h"
#include "../core/core.h"
#include "../db/db.h"
#include "../tenancy/tenancy.h"

/* The one reply for a tenant database that cannot be used right now. */
#define OP_MSG_UNAVAILABLE "the tenant database is unavailable; try again shortly"

#define ACTOR_SCOPES_MAX 64     /* permissions in one API token's scopes */
#define ACTOR_SCOPE_BYTES 4608  /* their text: 64 names of at most 70 bytes, NUL-ended */

/* A staff user, as read with the session or token. */
struct auth_user {
	int64_t id;
	char email[255];
	int is_admin;
	int mfa_enabled;
	int must_change_password;
};

enum actor_kind {
	ACTOR_NONE,    /* nobody yet (public routes) */
	ACTOR_SESSION, /* a staff user signed in through the web */
	ACTOR_TOKEN,   /* an API token, limited to its scopes and its owner's roles */
	ACTOR_SYSTEM,  /* the operator's CLI or a background job: label says which */
};

/* Who acts. */
struct actor {
	enum actor_kind kind;
	struct auth_user user; /* SESSION, TOKEN; a SYSTEM actor may name a user it acts for */
	const char *label;     /* SYSTEM: "bulwark user unlock", "job: retention"... */
	const char *by;        /* SYSTEM: who ran it ("cli:alice"), recorded as "operator"; or NULL */
	int64_t session_id;    /* SESSION */
	int mfa_verified;      /* SESSION: 0 while MFA is still to be entered */
	int sso;               /* SESSION: made by single sign-on (the IdP was the second factor) */
	int64_t token_id;      /* TOKEN */
	/* TOKEN: its scopes, parsed once when it is checked */
	int scope_all;        /* "*" */
	size_t nscopes;
	uint16_t scope_off[ACTOR_SCOPES_MAX]; /* offsets into scope_text */
	char scope_text[ACTOR_SCOPE_BYTES];
	/* Read with the session or token, for may(): */
	char builtin_roles[256]; /* the built-in roles held, comma-separated ("admin,staff") */
	char perm_asked[100];    /* the permission perm_custom answers ("" for none) */
	int perm_custom;         /* a custom role held grants perm_asked */
	int mfa_required;        /* the tenant requires MFA of every staff user */
};

struct op;
/* Lends op->d (op->tn's database) on first use; BW_OK or why not. */
typedef bw_err (*op_borrow_fn)(struct op *op);

struct op {
	pool *pool;
	const struct config *cfg;
	struct tenancy *ten;
	const char *tenant; /* tn.slug once a tenant is known, else NULL */
	struct tenant tn;   /* valid when tenant != NULL */
	db *d;              /* the tenant database: set, or lent by borrow */
	op_borrow_fn borrow;
	void (*give_back)(struct op *op); /* returns what borrow lent (NULL: nothing to return) */
	void *owner;        /* borrow's own (the server) */
	/*
	 * Run by op_tx first in every transaction, when set: the pipeline sets
	 * it for a signed-in caller, to lock the caller's session or token and
	 * to confirm the user and the route's permission as they are now, so
	 * a write never outlives the sign-out, disable or demotion it raced.
	 */
	bw_err (*tx_begin)(struct op *op);
	struct actor actor;
	/* the permission catalogue (sorted): every permission the route table names */
	const char *const *perms;
	size_t nperms;
	const char *client_ip;  /* "" when none */
	const char *request_id; /* "" when none */
	/* the error sink: the message of the error being returned */
	bw_err err;
	const char *err_msg;    /* client-safe; pool or static */
	const char *err_detail; /* JSON object text (pool) merged into the error, or NULL */
};

/*
 * An operation on tenant tn (NULL: none yet) with database d (NULL: none
 * yet), its memory from p, acting as a. Strings are borrowed.
 */
void op_init(struct op *op, pool *p, const struct config *cfg, struct tenancy *ten,
	     const struct tenant *tn, db *d, const struct actor *a);
/* The system actor, labelled (e.g. "bulwark user unlock"). */
struct actor op_system(const char *label);

/*
 * Record why the operation fails (msg: client-safe, pool or static; NULL
 * for the error's own text) and return e (BW_ERR_INTERNAL for BW_OK). The
 * return value is what fails: the sink only carries its message.
 */
bw_err op_fail(struct op *op, bw_err e, const char *msg);
/* op_fail() with more members for the error object (detail: a JSON object, stolen). */
bw_err op_fail_detail(struct op *op, bw_err e, const char *msg, json_t *detail);
/*
 * Refuse any member of the object in but those named in known (a
 * NULL-ended list): BW_OK, or BW_ERR_INVALID recorded, naming the member.
 */
bw_err op_known_fields(struct op *op, json_t *in, const char *const *known) BW_MUST_USE;
/* op_fail(op, BW_ERR_UNAVAILABLE, OP_MSG_UNAVAILABLE). */
bw_err op_unavailable(struct op *op);
/* Forget a recorded error (before a transaction is retried). */
void op_clear(struct op *op);

/* The tenant database; BW_ERR_UNAVAILABLE (recorded) when it cannot be had. */
bw_err op_db(struct op *op, db **out) BW_MUST_USE;
/*
 * Give a lent connection back between transactions (long work such as an
 * upload that waits on its client between chunks must not hold one); the
 * next op_db borrows again. Nothing happens for a connection the caller
 * set itself, or inside a transaction.
 */
void op_db_release(struct op *op);

/*
 * The transaction runner: begin on op's database, run fn, commit when it
 * returns BW_OK, roll back when it fails; when the failure (or the commit)
 * was a deadlock or a write conflict (db_retryable: MariaDB 1213, which
 * Galera raises at COMMIT), run it all again, up to OP_TX_TRIES times. fn
 * must be safe to run again: it may only leave results in arg once it
 * succeeds (or free what a failed run left). Returns fn's error, the
 * commit's, or BW_ERR_UNAVAILABLE.
 */
#define OP_TX_TRIES 4
typedef bw_err (*op_tx_fn)(struct op *op, void *arg);
bw_err op_tx(struct op *op, op_tx_fn fn, void *arg) BW_MUST_USE;

/* The actor's label for logs and the audit log: the e-mail address or the system label. */
const char *op_actor_label(const struct op *op);

#endif
