/*
 * The operation context (op.h): the actor, the error sink and the
 * connection. The transaction runner is in tx.c.
 */
#include "op.h"

#include <stdlib.h>
#include <string.h>

void
op_init(struct op *op, pool *p, const struct config *cfg, struct tenancy *ten,
	const struct tenant *tn, db *d, const struct actor *a)
{
	memset(op, 0, sizeof(*op));
	op->pool = p;
	op->cfg = cfg;
	op->ten = ten;
	if (tn != NULL) {
		op->tn = *tn;
		op->tenant = op->tn.slug;
	}
	op->d = d;
	if (a != NULL)
		op->actor = *a;
	op->client_ip = "";
	op->request_id = "";
}

struct actor
op_system(const char *label)
{
	struct actor a;
	memset(&a, 0, sizeof(a));
	a.kind = ACTOR_SYSTEM;
	a.label = label;
	return a;
}

bw_err
op_fail(struct op *op, bw_err e, const char *msg)
{
	op->err = e == BW_OK ? BW_ERR_INTERNAL : e;
	op->err_msg = msg;
	op->err_detail = NULL; /* a detail belongs to the error it was given with */
	return op->err;
}

bw_err
op_fail_detail(struct op *op, bw_err e, const char *msg, json_t *detail)
{
	bw_err r = op_fail(op, e, msg);
	if (json_is_object(detail)) {
		char *text = json_dumps(detail, JSON_COMPACT);
		/* Out of memory: the error stands without its detail. */
		op->err_detail = text != NULL ? pool_strdup(op->pool, text) : NULL;
		free(text);
	}
	json_decref(detail);
	return r;
}

bw_err
op_unavailable(struct op *op)
{
	return op_fail(op, BW_ERR_UNAVAILABLE, OP_MSG_UNAVAILABLE);
}

void
op_clear(struct op *op)
{
	op->err = BW_OK;
	op->err_msg = NULL;
	op->err_detail = NULL;
}

bw_err
op_db(struct op *op, db **out)
{
	/* out may be &op->d itself: it is written only once op->d is known. */
	if (op->d == NULL) {
		*out = NULL;
		if (op->tenant == NULL || op->borrow == NULL)
			return op_fail(op, BW_ERR_INTERNAL, NULL);
		if (op->borrow(op) != BW_OK || op->d == NULL)
			return op_unavailable(op);
	}
	*out = op->d;
	return BW_OK;
}

const char *
op_actor_label(const struct op *op)
{
	const struct actor *a = &op->actor;
	if (a->kind == ACTOR_SYSTEM)
		return a->label ? a->label : "system";
	return a->user.email;
}

bw_err
op_known_fields(struct op *op, json_t *in, const char *const *known)
{
	const char *key;
	json_t *v;
	json_object_foreach(in, key, v)
	{
		size_t i = 0;
		while (known[i] != NULL && strcmp(known[i], key) != 0)
			i++;
		if (known[i] == NULL)
			return op_fail(op, BW_ERR_INVALID,
				       pool_printf(op->pool, "unknown field '%.64s'", key));
	}
	return BW_OK;
}
