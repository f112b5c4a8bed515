/*
 * The tenant registry cached in memory: a sorted array of tenants looked
 * up by slug with a binary search. A thread polls the control database's
 * registry_version and reloads the whole array when it moves, so a tenant
 * created, suspended or deleted by the CLI or another app server is seen
 * here within registry_refresh_ms. When the control database is down the
 * last good copy keeps serving.
 */
#include "tenancy.h"

#include "../crypto/crypto.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct registry {
	struct tenancy *t;
	pthread_rwlock_t lock;
	struct tenant *v; /* sorted by slug */
	size_t n;
	int64_t version;
	pthread_t thread;
	int running;
	pthread_mutex_t stop_mu;
	pthread_cond_t stop_cv;
	int stop;
	int failing; /* for logging a failure once, and the recovery */
};

static int
registry_cmp(const void *a, const void *b)
{
	return strcmp(((const struct tenant *)a)->slug, ((const struct tenant *)b)->slug);
}

static bw_err
registry_version(struct registry *r, int64_t *v)
{
	db *c = tenancy_control(r->t);
	db_stmt *s;
	int row = 0;
	bw_err e = db_prepare(c, "SELECT version FROM registry_version WHERE id = 1", &s);
	if (e == BW_OK && (e = db_step(s, &row)) == BW_OK && row)
		*v = db_col_int(s, 0);
	db_finalize(s);
	return e != BW_OK ? e : (row ? BW_OK : BW_ERR_DB);
}

bw_err
registry_refresh(struct registry *r)
{
	int64_t v = 0;
	struct tenant *list;
	size_t n;
	char err[256];
	bw_err e = tenancy_reconnect(r->t);
	if (e != BW_OK)
		return e;
	e = registry_version(r, &v);
	if (e != BW_OK)
		return e;
	pthread_rwlock_rdlock(&r->lock);
	int same = v == r->version && r->v != NULL;
	pthread_rwlock_unlock(&r->lock);
	if (same)
		return BW_OK;
	if ((e = tenant_list(r->t, &list, &n, err, sizeof(err))) != BW_OK)
		return e;
	/* tenant_list orders by the database's collation; ours must be strcmp's. */
	if (n > 0)
		qsort(list, n, sizeof(*list), registry_cmp);
	pthread_rwlock_wrlock(&r->lock);
	struct tenant *old = r->v;
	size_t oldn = r->n;
	r->v = list;
	r->n = n;
	r->version = v;
	pthread_rwlock_unlock(&r->lock);
	/*
	 * A tenant that is gone takes its cached data keys with it, and so does
	 * one deleted and made again under the same name (a new id).
	 */
	for (size_t i = 0; i < oldn; i++) {
		const struct tenant *now =
		    n > 0 ? bsearch(&old[i], list, n, sizeof(*list), registry_cmp) : NULL;
		if (now == NULL || now->id != old[i].id)
			keyring_forget_tenant(tenancy_keyring(r->t), old[i].slug);
	}
	free(old);
	log_debug("registry: version %lld, %zu tenants", (long long)v, n);
	return BW_OK;
}

static void *
registry_main(void *arg)
{
	struct registry *r = arg;
	long ms = tenancy_config(r->t)->db_registry_refresh_ms;
	pthread_mutex_lock(&r->stop_mu);
	while (!r->stop) {
		struct timespec ts;
		util_deadline_ms(&ts, ms);
		pthread_cond_timedwait(&r->stop_cv, &r->stop_mu, &ts);
		if (r->stop)
			break;
		pthread_mutex_unlock(&r->stop_mu);
		bw_err e = registry_refresh(r);
		if (e != BW_OK && !r->failing) {
			log_warn("registry: cannot refresh from the control database (%s); serving the "
				 "last known tenants",
				 db_errmsg(tenancy_control(r->t)));
			r->failing = 1;
		} else if (e == BW_OK && r->failing) {
			log_info("registry: control database reachable again");
			r->failing = 0;
		}
		pthread_mutex_lock(&r->stop_mu);
	}
	pthread_mutex_unlock(&r->stop_mu);
	return NULL;
}

bw_err
registry_start(struct tenancy *t, struct registry **out, char *err, size_t errlen)
{
	struct registry *r = calloc(1, sizeof(*r));
	*out = NULL;
	if (r == NULL)
		return BW_ERR_NOMEM;
	r->t = t;
	pthread_rwlock_init(&r->lock, NULL);
	pthread_mutex_init(&r->stop_mu, NULL);
	pthread_cond_init(&r->stop_cv, NULL);
	bw_err e = registry_refresh(r);
	if (e != BW_OK) {
		snprintf(err, errlen, "loading the tenant registry: %s",
			 db_errmsg(tenancy_control(t)));
		registry_stop(r);
		return e;
	}
	if (pthread_create(&r->thread, NULL, registry_main, r) != 0) {
		snprintf(err, errlen, "cannot start the registry thread");
		registry_stop(r);
		return BW_ERR_NOMEM;
	}
	r->running = 1;
	*out = r;
	return BW_OK;
}

void
registry_stop(struct registry *r)
{
	if (r == NULL)
		return;
	if (r->running) {
		pthread_mutex_lock(&r->stop_mu);
		r->stop = 1;
		pthread_cond_signal(&r->stop_cv);
		pthread_mutex_unlock(&r->stop_mu);
		pthread_join(r->thread, NULL);
	}
	pthread_rwlock_destroy(&r->lock);
	pthread_mutex_destroy(&r->stop_mu);
	pthread_cond_destroy(&r->stop_cv);
	free(r->v);
	free(r);
}

bw_err
registry_lookup(struct registry *r, const char *slug, struct tenant *out)
{
	struct tenant key;
	snprintf(key.slug, sizeof(key.slug), "%s", slug);
	pthread_rwlock_rdlock(&r->lock);
	const struct tenant *hit =
	    r->n > 0 ? bsearch(&key, r->v, r->n, sizeof(*r->v), registry_cmp) : NULL;
	if (hit != NULL)
		*out = *hit;
	pthread_rwlock_unlock(&r->lock);
	return hit ? BW_OK : BW_ERR_NOTFOUND;
}

bw_err
registry_snapshot(struct registry *r, struct tenant **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	pthread_rwlock_rdlock(&r->lock);
	struct tenant *v = r->n > 0 ? malloc(r->n * sizeof(*v)) : NULL;
	if (v != NULL) {
		memcpy(v, r->v, r->n * sizeof(*v));
		*n = r->n;
	}
	bw_err e = r->n > 0 && v == NULL ? BW_ERR_NOMEM : BW_OK;
	pthread_rwlock_unlock(&r->lock);
	*out = v;
	return e;
}

size_t
registry_count(struct registry *r)
{
	pthread_rwlock_rdlock(&r->lock);
	size_t n = r->n;
	pthread_rwlock_unlock(&r->lock);
	return n;
}
