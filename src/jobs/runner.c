/*
 * The runner threads of `bulwark serve`: over every active tenant, the
 * periodic work (ticks: fan-out of new events, lost leases) and then due
 * jobs, each on an operation context of its own whose actor is the system
 * ("job: <kind>"). A runner that found nothing to do sleeps poll_ms; one
 * that found work goes straight on.
 */
#include "runner.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define RUNNER_JOBS_PER_TENANT 32 /* then the next tenant: none starves the rest */
#define RUNNER_TENANT_MS 2000     /* nor by slow jobs: no new claim there after this long */
#define RUNNER_RENEW_MS 5000      /* how often the leases of running jobs are renewed */
#define RUNNER_POOL (4u << 20)

struct jobs_runner;
struct runner_worker {
	struct jobs_runner *r;
	int n;
	char owner[128];
	/* the job under way, for the renewer (guarded by r->mu); cur_job 0: none */
	struct tenant cur_tn;
	int64_t cur_job;
	char cur_lane[JOB_LANE_MAX + 1];
};

struct jobs_runner {
	const struct config *cfg;
	struct tenancy *ten;
	struct registry *reg;
	struct connpool *cp;
	const struct job_kind *kinds;
	size_t nkinds;
	const struct jobs_tick *ticks;
	size_t nticks;
	int64_t *tick_last; /* per tick: when worker 0 last ran it over every tenant */
	int nworkers;
	pthread_t *threads;
	struct runner_worker *workers;
	int started;
	pthread_t renewer;
	int renewing;
	atomic_int stopping;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int stop;
	char host[64];
};


/* One claimed job: its attempt, then its finish. */
static void
runner_job(struct jobs_runner *r, const struct tenant *tn, db *d, const char *owner,
	   const struct job_kind *k, struct job *j)
{
	pool *p = pool_new(RUNNER_POOL);
	if (p == NULL)
		return;
	char label[JOB_KIND_MAX + 8];
	snprintf(label, sizeof(label), "job: %s", j->kind);
	struct actor a = op_system(label);
	struct op op;
	op_init(&op, p, r->cfg, r->ten, tn, d, &a);
	struct job_retry retry;
	memset(&retry, 0, sizeof(retry));
	uint64_t t0 = util_now_us();
	j->stopping = &r->stopping;
	bw_err e = k->run(&op, j, &retry);
	if (e != BW_OK && retry.error[0] == '\0' && op.err == e && op.err_msg != NULL)
		snprintf(retry.error, sizeof(retry.error), "%s", op.err_msg);
	op_clear(&op);
	bw_err fe = jobs_finish(&op, k, j, owner, e, &retry);
	if (fe != BW_OK)
		log_warn("tenant %s: job %lld (%s) not finished: %s", tn->slug, (long long)j->id,
			 j->kind, bw_strerror(fe));
	else if (e != BW_OK)
		log_info("tenant %s: job %lld (%s) attempt %d failed: %s", tn->slug,
			 (long long)j->id, j->kind, j->attempts, retry.error[0] ? retry.error : bw_strerror(e));
	else
		log_debug("tenant %s: job %lld (%s) done in %llu ms", tn->slug, (long long)j->id,
			  j->kind, (unsigned long long)((util_now_us() - t0) / 1000));
	pool_free(p);
}

/* Worker 0's periodic work over one tenant. */
static void
runner_ticks(struct jobs_runner *r, const struct tenant *tn, db *d, const int *due, int *did)
{
	for (size_t i = 0; i < r->nticks; i++) {
		if (!due[i])
			continue;
		pool *p = pool_new(RUNNER_POOL);
		if (p == NULL)
			return;
		struct actor a = op_system(r->ticks[i].label);
		struct op op;
		op_init(&op, p, r->cfg, r->ten, tn, d, &a);
		int n = 0;
		bw_err e = r->ticks[i].run(&op, &n);
		if (e != BW_OK)
			log_warn("tenant %s: %s: %s", tn->slug, r->ticks[i].label,
				 op.err_msg != NULL ? op.err_msg : bw_strerror(e));
		*did += n;
		pool_free(p);
	}
}

static int
runner_stopping(struct jobs_runner *r)
{
	pthread_mutex_lock(&r->mu);
	int s = r->stop;
	pthread_mutex_unlock(&r->mu);
	return s;
}

/* One pass over every tenant: how much work was found. */
static void
runner_current(struct runner_worker *w, const struct tenant *tn, const struct job *j)
{
	pthread_mutex_lock(&w->r->mu);
	if (j != NULL) {
		w->cur_tn = *tn;
		w->cur_job = j->id;
		snprintf(w->cur_lane, sizeof(w->cur_lane), "%s", j->lane);
	} else
		w->cur_job = 0;
	pthread_mutex_unlock(&w->r->mu);
}

static int
runner_pass(struct jobs_runner *r, int worker, const char *owner, const int *due)
{
	struct tenant *v = NULL;
	size_t n = 0;
	int did = 0;
	if (registry_snapshot(r->reg, &v, &n) != BW_OK)
		return 0;
	/* Workers start at different tenants, so they do not queue on the same one. */
	size_t start = n > 0 ? (size_t)worker % n : 0;
	for (size_t c = 0; c < n && !runner_stopping(r); c++) {
		const struct tenant *tn = &v[(start + c) % n];
		if (tn->state != TENANT_ACTIVE)
			continue;
		db *d = NULL;
		if (connpool_borrow(r->cp, tn, &d) != BW_OK)
			continue; /* its database is down: the next pass tries again */
		if (worker == 0)
			runner_ticks(r, tn, d, due, &did);
		uint64_t t_start = util_now_us();
		for (int k = 0; k < RUNNER_JOBS_PER_TENANT && !runner_stopping(r) &&
				(util_now_us() - t_start) / 1000 < RUNNER_TENANT_MS;
		     k++) {
			pool *p = pool_new(RUNNER_POOL);
			if (p == NULL)
				break;
			struct actor a = op_system("job runner");
			struct op op;
			op_init(&op, p, r->cfg, r->ten, tn, d, &a);
			struct job j;
			int got = 0;
			bw_err e = jobs_claim(&op, r->kinds, r->nkinds, owner, &j, &got);
			pool_free(p);
			if (e != BW_OK) {
				log_warn("tenant %s: claiming a job: %s", tn->slug, bw_strerror(e));
				break;
			}
			if (!got)
				break;
			const struct job_kind *kind = NULL;
			for (size_t i = 0; i < r->nkinds; i++)
				if (strcmp(r->kinds[i].name, j.kind) == 0)
					kind = &r->kinds[i];
			if (kind != NULL) {
				runner_current(&r->workers[worker], tn, &j);
				runner_job(r, tn, d, owner, kind, &j);
				runner_current(&r->workers[worker], tn, NULL);
			}
			job_clear(&j);
			did++;
		}
		connpool_return(r->cp, tn, d);
	}
	free(v);
	return did;
}

static void *
runner_main(void *arg)
{
	struct runner_worker *w = arg;
	struct jobs_runner *r = w->r;
	const char *owner = w->owner;
	int *due = calloc(r->nticks + 1, sizeof(*due));
	if (due == NULL)
		return NULL;
	while (!runner_stopping(r)) {
		int64_t now = jobs_now_ms();
		for (size_t i = 0; i < r->nticks; i++) {
			due[i] = w->n == 0 && now - r->tick_last[i] >= r->ticks[i].every_ms;
			if (due[i])
				r->tick_last[i] = now;
		}
		int did = runner_pass(r, w->n, owner, due);
		pthread_mutex_lock(&r->mu);
		if (!r->stop && did == 0) {
			struct timespec ts;
			util_deadline_ms(&ts, r->cfg->jobs_poll_ms);
			pthread_cond_timedwait(&r->cv, &r->mu, &ts);
		}
		pthread_mutex_unlock(&r->mu);
	}
	free(due);
	return NULL;
}

/*
 * Every RUNNER_RENEW_MS, the lease of each job a worker is running is
 * renewed, on a connection of its own: an attempt may take as long as it
 * needs (a slow receiver, a long sync), and a runner that dies stops
 * renewing, so its jobs are taken again once JOBS_LEASE_MS has passed.
 */
static void *
runner_renew_main(void *arg)
{
	struct jobs_runner *r = arg;
	pthread_mutex_lock(&r->mu);
	while (!r->stop) {
		struct timespec ts;
		util_deadline_ms(&ts, RUNNER_RENEW_MS);
		pthread_cond_timedwait(&r->cv, &r->mu, &ts);
		for (int i = 0; i < r->started && !r->stop; i++) {
			struct runner_worker *w = &r->workers[i];
			if (w->cur_job == 0)
				continue;
			struct tenant tn = w->cur_tn;
			int64_t id = w->cur_job;
			char lane[JOB_LANE_MAX + 1];
			snprintf(lane, sizeof(lane), "%s", w->cur_lane);
			pthread_mutex_unlock(&r->mu);
			db *d = NULL;
			pool *p = pool_new(64 * 1024);
			if (p != NULL && connpool_borrow(r->cp, &tn, &d) == BW_OK) {
				struct actor a = op_system("job runner");
				struct op op;
				op_init(&op, p, r->cfg, r->ten, &tn, d, &a);
				if (jobs_renew(&op, id, lane, w->owner) != BW_OK)
					log_warn("tenant %s: the lease of job %lld not renewed", tn.slug,
						 (long long)id);
				connpool_return(r->cp, &tn, d);
			}
			pool_free(p);
			pthread_mutex_lock(&r->mu);
		}
	}
	pthread_mutex_unlock(&r->mu);
	return NULL;
}

bw_err
jobs_runner_start(const struct config *cfg, struct tenancy *ten, struct registry *reg,
		  struct connpool *cp, const struct job_kind *kinds, size_t nkinds,
		  const struct jobs_tick *ticks, size_t nticks, struct jobs_runner **out)
{
	*out = NULL;
	if (cfg->jobs_workers <= 0)
		return BW_OK;
	struct jobs_runner *r = calloc(1, sizeof(*r));
	if (r == NULL)
		return BW_ERR_NOMEM;
	*r = (struct jobs_runner){cfg, ten, reg, cp, kinds, nkinds, ticks, nticks};
	r->nworkers = (int)cfg->jobs_workers;
	r->tick_last = calloc(nticks + 1, sizeof(*r->tick_last));
	r->threads = calloc((size_t)r->nworkers, sizeof(*r->threads));
	r->workers = calloc((size_t)r->nworkers, sizeof(*r->workers));
	if (r->tick_last == NULL || r->threads == NULL || r->workers == NULL) {
		free(r->tick_last);
		free(r->threads);
		free(r->workers);
		free(r);
		return BW_ERR_NOMEM;
	}
	if (gethostname(r->host, sizeof(r->host) - 1) != 0)
		snprintf(r->host, sizeof(r->host), "host");
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->cv, NULL);
	unsigned char boot[6];
	char bhex[13];
	if (util_random(boot, sizeof(boot)) != BW_OK)
		memset(boot, 0, sizeof(boot));
	util_hex(boot, sizeof(boot), bhex);
	atomic_init(&r->stopping, 0);
	for (int i = 0; i < r->nworkers; i++) {
		r->workers[i] = (struct runner_worker){.r = r, .n = i};
		/* host, pid and a random id of this start: for logs and the jobs list */
		snprintf(r->workers[i].owner, sizeof(r->workers[i].owner), "%.60s:%ld:%s:%d",
			 r->host, (long)getpid(), bhex, i);
		if (pthread_create(&r->threads[i], NULL, runner_main, &r->workers[i]) != 0)
			break;
		r->started++;
	}
	r->renewing = pthread_create(&r->renewer, NULL, runner_renew_main, r) == 0;
	log_info("job runner: %d worker(s), %zu job kind(s)", r->started, nkinds);
	*out = r;
	return BW_OK;
}

void
jobs_runner_stop(struct jobs_runner *r)
{
	if (r == NULL)
		return;
	atomic_store(&r->stopping, 1); /* attempts under way give up (a delivery's transfer) */
	pthread_mutex_lock(&r->mu);
	r->stop = 1;
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
	for (int i = 0; i < r->started; i++)
		pthread_join(r->threads[i], NULL);
	if (r->renewing)
		pthread_join(r->renewer, NULL);
	pthread_cond_destroy(&r->cv);
	pthread_mutex_destroy(&r->mu);
	free(r->workers);
	free(r->threads);
	free(r->tick_last);
	free(r);
}
