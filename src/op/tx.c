/*
 * The transaction runner (op.h: op_tx): every change to a tenant's data
 * runs through it, so that no feature hand-rolls commit and rollback and
 * every one is retried the same way after a deadlock or a write conflict.
 */
#include "op.h"

#include <time.h>

/* A short, growing, jittered pause before a retry, so two losers do not collide again. */
static void
op_tx_pause(int attempt)
{
	unsigned char r = 0;
	if (util_random(&r, 1) != BW_OK)
		r = 128;
	long us = (1000L << attempt) + (long)r * 8 * (attempt + 1);
	struct timespec ts = {0, us * 1000L};
	nanosleep(&ts, NULL);
}

bw_err
op_tx(struct op *op, op_tx_fn fn, void *arg)
{
	db *d;
	bw_err e = op_db(op, &d);
	if (e != BW_OK)
		return e;
	for (int attempt = 1;; attempt++) {
		if ((e = db_begin(d)) != BW_OK)
			return op_unavailable(op);
		e = op->tx_begin != NULL ? op->tx_begin(op) : BW_OK;
		if (e == BW_OK)
			e = fn(op, arg);
		if (e == BW_OK && (e = db_commit(d)) == BW_OK)
			return BW_OK;
		/* Read before the rollback, which succeeds and so clears it. */
		int again = db_retryable(d) && attempt < OP_TX_TRIES;
		(void)db_rollback(d);
		if (!again || db_broken(d)) {
			if (op->err != e)
				(void)op_fail(op, e, e == BW_ERR_DB ? OP_MSG_UNAVAILABLE : NULL);
			return e;
		}
		log_info("tenant %s: transaction retried after a deadlock or write conflict (try %d)",
			 op->tenant ? op->tenant : "-", attempt + 1);
		op_clear(op);
		op_tx_pause(attempt);
	}
}

void
op_db_release(struct op *op)
{
	if (op->d != NULL && op->give_back != NULL && !db_in_tx(op->d))
		op->give_back(op);
}
