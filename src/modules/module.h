/*
 * modules: the engine that runs every module described in desc.h. Its
 * operations take the operation context (op.h), never an HTTP request:
 * a row is created, changed, deleted or acted on the same way from the
 * API, the CLI or a job, each in one transaction with its audit row.
 */
#ifndef BW_MODULE_H
#define BW_MODULE_H

#include <jansson.h>
#include <stdint.h>

#include "../core/core.h"
#include "../db/db.h"
#include "../op/op.h"
#include "desc.h"

/* What a hook sees: the operation, its tenant database (in op's transaction), the module. */
struct module_ctx {
	struct op *op;
	db *d; /* op->d */
	const struct module_desc *m;
	int64_t id;      /* the row (0 before a create) */
	json_t *before;  /* the stored row before the change (NULL on create), decrypted */
	json_t *input;   /* the validated input object: the hook may add to it */
	json_t *effects; /* other rows the change touched (module_effect), for its audit row */
};

/*
 * Record that the change also changed row id of module m (a payment
 * marking its invoice paid): it goes into the change's audit row and shows
 * in that row's trail. before and after (objects, or NULL) are stolen.
 */
bw_err module_effect(struct module_ctx *ctx, const struct module_desc *m, int64_t id,
		     json_t *before, json_t *after) BW_MUST_USE;

/* --- rows.c: one row ---------------------------------------------------------- */
/*
 * Each runs in its own transaction (op_tx: retried on a deadlock) with
 * validation, the module's hooks and the audit row; any failure rolls all
 * of it back and is returned with its message recorded in op. The row
 * comes back as shown to clients (decrypted, write-only fields masked),
 * with its "version": 1 when created, one more with every write since.
 *
 * if_version is the caller's precondition (If-Match): 0 for none (the
 * change goes ahead whatever happened since the caller read the row), a
 * version the row must still be at, or MODULE_VERSION_NONE, which no row
 * is at. It is checked inside the transaction once the row is locked; a
 * row that is not there is still BW_ERR_NOTFOUND, and one at another
 * version BW_ERR_PRECONDITION (recorded) with nothing written or audited.
 */
#define MODULE_VERSION_NONE INT64_C(-1)
bw_err module_get(struct op *op, const struct module_desc *m, int64_t id,
		  json_t **row) BW_MUST_USE;
bw_err module_create(struct op *op, const struct module_desc *m, json_t *in,
		     json_t **row) BW_MUST_USE;
bw_err module_update(struct op *op, const struct module_desc *m, int64_t id, json_t *in,
		     int64_t if_version, json_t **row) BW_MUST_USE;
bw_err module_delete(struct op *op, const struct module_desc *m, int64_t id,
		     int64_t if_version) BW_MUST_USE;
/* Action a of m on row id with body (an object); *reply is its answer or the row. */
bw_err module_act(struct op *op, const struct module_desc *m, const struct action_desc *a,
		  int64_t id, json_t *body, int64_t if_version, json_t **reply) BW_MUST_USE;
/* The action of m called name, or NULL. */
const struct action_desc *module_action(const struct module_desc *m, const char *name);

/*
 * Write the given columns of a row (values from the JSON object, sealed
 * where encrypted), one more on its version. Any other UPDATE of a module
 * row that changes what it shows must bump "version = version + 1" too.
 */
bw_err module_write_fields(struct op *op, const struct module_desc *m, int64_t id,
			   json_t *values) BW_MUST_USE;
/*
 * Lock row id of m for the rest of the transaction (a write lock: on
 * MariaDB the row's, on SQLite the database's), so that what a hook reads
 * of it stays true until the commit. BW_ERR_NOTFOUND (nothing recorded) if none.
 */
bw_err module_lock(db *d, const struct module_desc *m, int64_t id) BW_MUST_USE;
/*
 * BW_ERR_CONFLICT (recorded) when a module row still refers to row id of
 * table (a module or "users"): nothing is deleted from under a reference.
 */
bw_err module_referenced(struct op *op, const char *table, int64_t id) BW_MUST_USE;

#endif
