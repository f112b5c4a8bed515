/*
 * audit: the tenant's audit log. Every state change writes one row in the
 * same transaction as the change (a failed audit write rolls the change
 * back). A row's details are sealed with the tenant's data key (AES-256-GCM,
 * bound to tenant, table, column and row) and the rows are chained: each
 * carries HMAC-SHA256(audit key, previous MAC || row content), so an edited,
 * inserted or deleted row breaks the chain at that row. The audit key is
 * random per tenant and kept sealed in the tenant database (audit_head), so
 * key rotation re-encrypts it like any sealed value and the chain survives.
 */
#ifndef BW_AUDIT_H
#define BW_AUDIT_H

#include <jansson.h>
#include <stdint.h>

#include "../core/core.h"
#include "../db/db.h"
#include "../op/op.h"
#include "../tenancy/tenancy.h"

enum audit_actor { AUDIT_USER = 1, AUDIT_TOKEN, AUDIT_SYSTEM };

struct audit_entry {
	enum audit_actor actor;
	int64_t user_id;         /* the user (or the token's owner); 0 for system */
	int64_t token_id;        /* AUDIT_TOKEN */
	const char *actor_label; /* e-mail address, or e.g. "bulwark keys rotate" */
	const char *client_ip;   /* or "" */
	const char *request_id;  /* or "" */
	const char *entity;      /* "customers", "users", "roles", "auth", "settings", "keys"... */
	int64_t entity_id;       /* 0 when the entity has no row */
	const char *action;      /* "create", "update", "delete", "assign", "login", ... */
	json_t *before;          /* changed fields before (object) or NULL; borrowed */
	json_t *after;           /* changed fields after (object) or NULL; borrowed */
	/*
	 * Other rows the change touched (a payment marking its invoice paid):
	 * an array of {"entity", "entity_id", "before", "after"}, or NULL;
	 * borrowed. Each shows in its own row's trail as well.
	 */
	json_t *effects;
};

/*
 * Append e to tenant tn's audit log on d. The caller has begun the
 * transaction of the change and commits it afterwards; on failure the
 * caller rolls back. Never logs the details.
 */
bw_err audit_record(db *d, struct tenancy *t, const struct tenant *tn,
		    const struct audit_entry *e) BW_MUST_USE;
/*
 * The audit row of op's change, in the transaction op is in: actor,
 * address and request id from op (a system actor is recorded with its
 * label). BW_OK, or the error (recorded in op) on which the caller rolls
 * back.
 */
bw_err audit_op(struct op *op, const char *entity, int64_t entity_id, const char *action,
		json_t *before, json_t *after) BW_MUST_USE;
/* audit_op() with the other rows the change touched (see audit_entry.effects). */
bw_err audit_op_effects(struct op *op, const char *entity, int64_t entity_id, const char *action,
			json_t *before, json_t *after, json_t *effects) BW_MUST_USE;
/*
 * audit_op_effects() with the row as the API shows it after the change
 * (borrowed, or NULL), which goes into the change's event. Every audit_op*
 * writes the change's events (src/events) in the same transaction.
 */
bw_err audit_op_object(struct op *op, const char *entity, int64_t entity_id, const char *action,
		       json_t *before, json_t *after, json_t *effects, json_t *object) BW_MUST_USE;
/*
 * Check tenant tn's whole chain. BW_OK when intact (*rows = rows checked);
 * BW_ERR_CRYPTO when broken, with *bad_seq the first bad row's sequence
 * number and why in err; other errors for the database.
 */
bw_err audit_verify(db *d, struct tenancy *t, const struct tenant *tn, int64_t *rows,
		    int64_t *bad_seq, char *err, size_t errlen) BW_MUST_USE;
/* Progress of a verification: done rows of about total (the head's seq). */
typedef void (*audit_progress_fn)(void *ud, int64_t done, int64_t total);
/* audit_verify() calling cb (when not NULL) after every row checked. */
bw_err audit_verify_progress(db *d, struct tenancy *t, const struct tenant *tn, int64_t *rows,
			     int64_t *bad_seq, char *err, size_t errlen, audit_progress_fn cb,
			     void *ud) BW_MUST_USE;

/*
 * Anchors: where tenant tn's chain stood at its last successful verification,
 * kept in the control database (ctl). audit_anchor_check() compares the
 * anchor with the chain now: BW_OK when there is none or the anchored row is
 * still there with the same MAC; BW_ERR_CRYPTO with why (and *seq, the
 * anchored row) when the chain was cut or rewritten behind it.
 * audit_anchor_save() moves the anchor forward to (seq, mac), never back.
 */
bw_err audit_anchor_check(db *ctl, db *d, const struct tenant *tn, int64_t *seq, char *why,
			  size_t whylen) BW_MUST_USE;
bw_err audit_anchor_save(db *ctl, const struct tenant *tn, int64_t seq, const char *mac) BW_MUST_USE;
/* The head (seq, MAC) as it is now; seq 0 for an empty log. */
bw_err audit_head_now(db *d, int64_t *seq, char mac[65]) BW_MUST_USE;

#endif
