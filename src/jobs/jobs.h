/*
 * jobs: background work, kept in the tenant database so that it survives
 * restarts and is shared by every app server (docs/jobs.md, ADR 0018).
 *
 * A job is enqueued in the transaction of whatever asks for it, claimed by
 * one runner with a lease (MariaDB: SELECT ... FOR UPDATE SKIP LOCKED;
 * SQLite: its one writer), run outside any transaction through an
 * operation context whose actor is the system, labelled "job: <kind>",
 * and then finished: done, queued again after a back-off, or failed for
 * good. The runner renews the lease of each job it is running every few
 * seconds (jobs_renew), so an attempt may take as long as it needs; a
 * runner that dies stops renewing, and once the lease has passed the job
 * runs again (the attempt counts). Jobs of one lane run one at a time, oldest
 * first (the deliveries of one webhook subscription, in order).
 *
 * A kind is a row of the table the runner is given (src/server builds it):
 * later features add kinds, not runners.
 */
#ifndef BW_JOBS_H
#define BW_JOBS_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdint.h>

#include "../core/core.h"
#include "../op/op.h"

#define JOB_KIND_MAX 64
#define JOB_LANE_MAX 96
#define JOB_ERROR_MAX 500

struct job {
	int64_t id;
	char kind[JOB_KIND_MAX + 1];
	char lane[JOB_LANE_MAX + 1]; /* "" for none */
	json_t *payload;             /* owned */
	int attempts;                /* counting this one */
	int max_attempts;
	int64_t created_at;
	/* set by the runner: nonzero once the server is stopping (long work gives up), or NULL */
	const atomic_int *stopping;
};

/* What an attempt asks for when it fails (job_kind.run's *retry). */
struct job_retry {
	int permanent;     /* 1: do not try again */
	int64_t at_ms;     /* 0: the kind's back-off; else the time of the next attempt */
	char error[JOB_ERROR_MAX + 1]; /* why, client-safe: shown by `bulwark jobs list` */
};

struct job_kind {
	const char *name;  /* "webhook.deliver" */
	int max_attempts;  /* after this many the job fails */
	/* seconds before attempt n + 1 (n = 1..); the last value repeats */
	const int *backoff;
	size_t nbackoff;
	long lease_ms;     /* the lease a claim gives before the first renewal (0: JOBS_LEASE_MS) */
	/*
	 * One attempt, outside any transaction (it runs its own with op_tx).
	 * BW_OK: done. An error: *retry says how to go on (a permanent failure,
	 * or when), and its error text is kept on the job.
	 */
	bw_err (*run)(struct op *op, const struct job *j, struct job_retry *retry);
	/*
	 * Optional: the job ended without success, failed for good or
	 * cancelled (state "failed" / "cancelled"), in the transaction that
	 * marks it so; e.g. the delivery it drove is marked too.
	 */
	bw_err (*ended)(struct op *op, const struct job *j, const char *state, const char *why);
};

/*
 * Queue a job of kind (payload: ids and options, never secrets; borrowed)
 * in lane (NULL: none) to run at run_at_ms (0: now), in op's transaction.
 * Its id into *id when not NULL.
 */
bw_err job_enqueue(struct op *op, const char *kind, int max_attempts, const char *lane,
		   json_t *payload, int64_t run_at_ms, int64_t *id) BW_MUST_USE;

/*
 * Claim the next due job of one of kinds for owner (a runner's name), with
 * a lease of the kind's lease_ms, in a transaction of its own. *got 0 when
 * nothing is due. j->payload is then owned by the caller (job_clear).
 */
bw_err jobs_claim(struct op *op, const struct job_kind *kinds, size_t nkinds, const char *owner,
		  struct job *j, int *got) BW_MUST_USE;
/*
 * Finish claimed job j after its attempt returned e: done, queued again
 * at the back-off (or retry->at_ms), or failed (calling kind->ended). Only
 * while owner still holds it (a lease lost to another runner is left to
 * that runner: BW_ERR_CONFLICT).
 */
bw_err jobs_finish(struct op *op, const struct job_kind *kind, const struct job *j,
		   const char *owner, bw_err e, const struct job_retry *retry) BW_MUST_USE;
/*
 * Jobs whose runner is gone (a lease ended while running): queued again,
 * or failed (the kind's ended hook run) when they had used every attempt.
 * The count into *n.
 */
bw_err jobs_reclaim(struct op *op, const struct job_kind *kinds, size_t nkinds,
		    int64_t *n) BW_MUST_USE;
/* The lease a claim gives and a renewal extends to (ms from now). */
#define JOBS_LEASE_MS 20000L
/* Extend running job id's lease (and its lane's) while owner still holds it. */
bw_err jobs_renew(struct op *op, int64_t id, const char *lane, const char *owner) BW_MUST_USE;
/* Forget what j owns. */
void job_clear(struct job *j);
/* The back-off of kind before attempt attempts + 1, in ms, with jitter of up to a tenth. */
int64_t jobs_backoff_ms(const struct job_kind *kind, int attempts);

/* Now, in Unix milliseconds. */
int64_t jobs_now_ms(void);

/*
 * For operators (`bulwark jobs`, the API): the jobs in state (NULL: any)
 * newest first, at most limit, as a JSON array; retry (a failed or
 * cancelled job, or a queued one waiting on its back-off: queued now, with
 * one more attempt allowed when it had used them all) and cancel (a queued
 * job; a running one is cancelled when its attempt ends). Audited.
 * BW_ERR_NOTFOUND, BW_ERR_CONFLICT for a job in a state that does not
 * allow it.
 */
bw_err jobs_list(struct op *op, const char *state, const char *kind, int limit,
		 json_t **out) BW_MUST_USE;
bw_err jobs_retry(struct op *op, const struct job_kind *kinds, size_t nkinds, int64_t id) BW_MUST_USE;
bw_err jobs_cancel(struct op *op, const struct job_kind *kinds, size_t nkinds, int64_t id) BW_MUST_USE;
/* Job id as the operators' view shows it; BW_ERR_NOTFOUND recorded. */
bw_err jobs_get(struct op *op, int64_t id, json_t **out) BW_MUST_USE;
/* The counts of jobs by state as a JSON object ({"queued": n, ...}). */
bw_err jobs_counts(struct op *op, json_t **out) BW_MUST_USE;

#endif
