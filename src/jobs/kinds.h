/*
 * Every job kind and tick the runner of `bulwark serve` runs, in one table
 * the server, the CLI (`bulwark jobs`) and the API share: a feature with
 * background work adds its rows here.
 */
#ifndef BW_JOBS_KINDS_H
#define BW_JOBS_KINDS_H

#include "../config/config.h"
#include "jobs.h"
#include "runner.h"

#define JOB_KINDS_MAX 16
#define JOB_TICKS_MAX 16

struct job_table {
	struct job_kind kinds[JOB_KINDS_MAX];
	size_t nkinds;
	struct jobs_tick ticks[JOB_TICKS_MAX];
	size_t nticks;
};

/*
 * Fill t with every kind and tick; with configure (once, at start-up, before
 * any runner or request thread), first set the features up from cfg.
 */
void job_table_build(const struct config *cfg, int configure, struct job_table *t);

#endif
