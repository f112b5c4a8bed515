/*
 * Connections bound to one tenant each. A connection is opened with the
 * tenant's own credentials (MariaDB) or file (SQLite) and only ever handed
 * to requests for that tenant. Bounded per tenant and in total; idle
 * connections are kept most-recently-used first and the least recently
 * used one is closed when the total is reached or it idles too long.
 */
#include "tenancy.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../db/migrate.h"

struct cp_idle {
	db *conn;
	char slug[TENANT_SLUG_MAX + 1];
	int64_t tenant_id; /* a tenant deleted and made again has a new id */
	uint64_t since_us;
	struct cp_idle *prev, *next; /* head = most recently returned */
};

struct cp_count {
	char slug[TENANT_SLUG_MAX + 1];
	long open_now, opened;
	struct cp_count *next;
};

#define CP_BUCKETS 1024

struct connpool {
	struct tenancy *t;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct cp_idle *head, *tail;
	long total, per_tenant_max, total_max;
	uint64_t idle_us;
	long wait_ms;
	struct cp_count *counts[CP_BUCKETS];
};

bw_err
connpool_new(struct tenancy *t, struct connpool **out)
{
	const struct config *c = tenancy_config(t);
	struct connpool *p = calloc(1, sizeof(*p));
	*out = NULL;
	if (p == NULL)
		return BW_ERR_NOMEM;
	p->t = t;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	p->per_tenant_max = c->db_pool_per_tenant;
	p->total_max = c->db_pool_total;
	p->idle_us = (uint64_t)c->db_pool_idle_seconds * 1000000u;
	p->wait_ms = c->db_pool_wait_ms;
	*out = p;
	return BW_OK;
}

void
connpool_free(struct connpool *p)
{
	if (p == NULL)
		return;
	struct cp_idle *i = p->head;
	while (i != NULL) {
		struct cp_idle *n = i->next;
		db_close(i->conn);
		free(i);
		i = n;
	}
	for (size_t b = 0; b < CP_BUCKETS; b++) {
		struct cp_count *c = p->counts[b];
		while (c != NULL) {
			struct cp_count *n = c->next;
			free(c);
			c = n;
		}
	}
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	free(p);
}

/* Per-tenant counters; created on first use. Caller holds mu. */
static struct cp_count *
cp_count(struct connpool *p, const char *slug, int create)
{
	uint32_t h = 2166136261u;
	for (const char *s = slug; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	struct cp_count **b = &p->counts[h % CP_BUCKETS];
	for (struct cp_count *c = *b; c != NULL; c = c->next)
		if (strcmp(c->slug, slug) == 0)
			return c;
	if (!create)
		return NULL;
	struct cp_count *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	snprintf(c->slug, sizeof(c->slug), "%s", slug);
	c->next = *b;
	*b = c;
	return c;
}

static void
cp_unlink(struct connpool *p, struct cp_idle *i)
{
	if (i->prev)
		i->prev->next = i->next;
	else
		p->head = i->next;
	if (i->next)
		i->next->prev = i->prev;
	else
		p->tail = i->prev;
	i->prev = i->next = NULL;
}

/* Take the LRU idle connection out (caller closes it outside the lock). */
static struct cp_idle *
cp_evict_lru(struct connpool *p)
{
	struct cp_idle *i = p->tail;
	if (i == NULL)
		return NULL;
	cp_unlink(p, i);
	struct cp_count *c = cp_count(p, i->slug, 0);
	if (c)
		c->open_now--;
	p->total--;
	return i;
}

/* Close idle connections past their idle time. Caller holds mu. */
static struct cp_idle *
cp_collect_expired(struct connpool *p, uint64_t now)
{
	struct cp_idle *dead = NULL;
	while (p->tail != NULL && now - p->tail->since_us > p->idle_us) {
		struct cp_idle *i = cp_evict_lru(p);
		i->next = dead;
		dead = i;
	}
	return dead;
}

static void
cp_close_list(struct cp_idle *i)
{
	while (i != NULL) {
		struct cp_idle *n = i->next;
		db_close(i->conn);
		free(i);
		i = n;
	}
}

/* A connection opened now is checked once: it must be at the current schema. */
static bw_err
cp_open(struct connpool *p, const struct tenant *tn, db **out)
{
	char err[512];
	int v;
	bw_err e = tenancy_connect_tenant(p->t, tn, 0, out, err, sizeof(err));
	if (e != BW_OK) {
		log_warn("tenant %s: database unavailable: %s", tn->slug, err);
		return BW_ERR_UNAVAILABLE;
	}
	if ((e = migrate_current_ro(*out, &v)) != BW_OK || v != migrate_latest(&migrate_tenant)) {
		if (e == BW_OK)
			log_error("tenant %s: database at schema %d, need %d: run 'bulwark migrate'",
				  tn->slug, v, migrate_latest(&migrate_tenant));
		else
			log_warn("tenant %s: database unavailable: %s", tn->slug, db_errmsg(*out));
		db_close(*out);
		*out = NULL;
		return BW_ERR_UNAVAILABLE;
	}
	return BW_OK;
}

bw_err
connpool_borrow(struct connpool *p, const struct tenant *tn, db **out)
{
	struct timespec deadline;
	struct cp_idle *dead = NULL;
	*out = NULL;
	util_deadline_ms(&deadline, p->wait_ms);

	pthread_mutex_lock(&p->mu);
	dead = cp_collect_expired(p, util_now_us());
	for (;;) {
		/* An idle connection of this tenant, most recent first. */
		for (struct cp_idle *i = p->head, *next; i != NULL; i = next) {
			next = i->next;
			if (strcmp(i->slug, tn->slug) != 0)
				continue;
			if (i->tenant_id != tn->id) {
				/* Of a deleted tenant that had this name: never reused. */
				cp_unlink(p, i);
				struct cp_count *old = cp_count(p, i->slug, 0);
				if (old)
					old->open_now--;
				p->total--;
				i->next = dead;
				dead = i;
				continue;
			}
			cp_unlink(p, i);
			*out = i->conn;
			free(i);
			pthread_mutex_unlock(&p->mu);
			cp_close_list(dead);
			return BW_OK;
		}
		struct cp_count *c = cp_count(p, tn->slug, 1);
		if (c == NULL) {
			pthread_mutex_unlock(&p->mu);
			cp_close_list(dead);
			return BW_ERR_NOMEM;
		}
		if (c->open_now < p->per_tenant_max) {
			if (p->total >= p->total_max) {
				struct cp_idle *v = cp_evict_lru(p);
				if (v != NULL) {
					v->next = dead;
					dead = v;
				}
			}
			if (p->total < p->total_max) {
				/* Reserve the slot, open outside the lock. */
				c->open_now++;
				c->opened++;
				p->total++;
				pthread_mutex_unlock(&p->mu);
				cp_close_list(dead);
				bw_err e = cp_open(p, tn, out);
				if (e != BW_OK) {
					pthread_mutex_lock(&p->mu);
					c->open_now--;
					p->total--;
					pthread_cond_signal(&p->cv);
					pthread_mutex_unlock(&p->mu);
				}
				return e;
			}
		}
		if (pthread_cond_timedwait(&p->cv, &p->mu, &deadline) != 0) {
			pthread_mutex_unlock(&p->mu);
			cp_close_list(dead);
			log_warn("tenant %s: no database connection free within %ldms", tn->slug,
				 p->wait_ms);
			return BW_ERR_UNAVAILABLE;
		}
	}
}

void
connpool_return(struct connpool *p, const struct tenant *tn, db *conn)
{
	if (conn == NULL)
		return;
	struct cp_idle *i = NULL;
	/* Only clean connections go back: an open transaction or an error discards. */
	int keep = !db_in_tx(conn) && !db_broken(conn);
	if (keep)
		i = calloc(1, sizeof(*i));
	pthread_mutex_lock(&p->mu);
	if (i != NULL) {
		i->conn = conn;
		snprintf(i->slug, sizeof(i->slug), "%s", tn->slug);
		i->tenant_id = tn->id;
		i->since_us = util_now_us();
		i->next = p->head;
		if (p->head)
			p->head->prev = i;
		p->head = i;
		if (p->tail == NULL)
			p->tail = i;
	} else {
		struct cp_count *c = cp_count(p, tn->slug, 0);
		if (c)
			c->open_now--;
		p->total--;
	}
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	if (i == NULL)
		db_close(conn);
}

void
connpool_stats(struct connpool *p, const char *slug, long *opened, long *open_now)
{
	pthread_mutex_lock(&p->mu);
	struct cp_count *c = cp_count(p, slug, 0);
	*opened = c ? c->opened : 0;
	*open_now = c ? c->open_now : 0;
	pthread_mutex_unlock(&p->mu);
}

long
connpool_total(struct connpool *p)
{
	pthread_mutex_lock(&p->mu);
	long n = p->total;
	pthread_mutex_unlock(&p->mu);
	return n;
}
