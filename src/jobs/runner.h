/*
 * The job runner of `bulwark serve` (docs/jobs.md): worker threads that go
 * over every active tenant, run the periodic ticks (worker 0) and the due
 * jobs of the kinds they are given.
 */
#ifndef BW_JOBS_RUNNER_H
#define BW_JOBS_RUNNER_H

#include "../config/config.h"
#include "../tenancy/tenancy.h"
#include "jobs.h"

/* Periodic work over each tenant (the fan-out of new events, lost leases). */
struct jobs_tick {
	const char *label; /* the system actor's label: "job: dispatch events" */
	long every_ms;
	/* One tenant's share; how much it did into *n (0 when idle). */
	bw_err (*run)(struct op *op, int *n);
};

struct jobs_runner;

/*
 * Start cfg->jobs_workers threads (none when 0: *out NULL). kinds and ticks
 * are borrowed and must outlive the runner.
 */
bw_err jobs_runner_start(const struct config *cfg, struct tenancy *ten, struct registry *reg,
			 struct connpool *cp, const struct job_kind *kinds, size_t nkinds,
			 const struct jobs_tick *ticks, size_t nticks,
			 struct jobs_runner **out) BW_MUST_USE;
/* Stop: the attempts under way finish, then the threads end. NULL is fine. */
void jobs_runner_stop(struct jobs_runner *r);

#endif
