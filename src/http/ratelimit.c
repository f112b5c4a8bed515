/*
 * Per-address token buckets in a fixed-size, sharded table. Memory is
 * bounded whatever the number of client addresses: a full probe window
 * evicts its least recently seen entry. The price is that an attacker with
 * very many addresses can push out buckets; per-account limits (lockout)
 * live in the database and are not affected.
 */
#include "http.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RL_SHARDS 32
#define RL_SLOTS 1024 /* per shard */
#define RL_PROBE 8

struct rl_entry {
	char addr[INET6_ADDRSTRLEN];
	double tokens;
	uint64_t last_us;
};

struct rl_shard {
	pthread_mutex_t mu;
	struct rl_entry e[RL_SLOTS];
};

struct ratelimit {
	_Atomic long milli_per_second, burst; /* rate in thousandths per second */
	struct rl_shard shard[RL_SHARDS];
};

struct ratelimit *
ratelimit_new(double per_second, long burst)
{
	struct ratelimit *rl = calloc(1, sizeof(*rl));
	if (rl == NULL)
		return NULL;
	for (size_t i = 0; i < RL_SHARDS; i++)
		pthread_mutex_init(&rl->shard[i].mu, NULL);
	ratelimit_configure(rl, per_second, burst);
	return rl;
}

void
ratelimit_free(struct ratelimit *rl)
{
	if (rl == NULL)
		return;
	for (size_t i = 0; i < RL_SHARDS; i++)
		pthread_mutex_destroy(&rl->shard[i].mu);
	free(rl);
}

void
ratelimit_configure(struct ratelimit *rl, double per_second, long burst)
{
	atomic_store(&rl->milli_per_second, (long)(per_second * 1000.0));
	atomic_store(&rl->burst, burst);
}

/* FNV-1a: not for security, only to spread addresses over slots. */
static uint32_t
rl_hash(const char *s)
{
	uint32_t h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

/* Whole seconds until the bucket holds want tokens again, rounded up (0: it does). */
static long
rl_seconds_until(double tokens, double want, double rate)
{
	if (tokens >= want)
		return 0;
	double s = (want - tokens) / rate;
	if (s >= 1e9)
		return 1000000000L; /* a rate so slow it never refills, in practice */
	long whole = (long)s;
	return whole < 1 ? 1 : (double)whole < s - 1e-9 ? whole + 1 : whole;
}

int
ratelimit_check(struct ratelimit *rl, const char *addr, uint64_t now_us, struct ratelimit_state *st)
{
	long milli = atomic_load(&rl->milli_per_second), burst = atomic_load(&rl->burst);
	if (st != NULL)
		*st = (struct ratelimit_state){0};
	if (milli <= 0)
		return 1;
	double rate = (double)milli / 1000.0;
	uint32_t h = rl_hash(addr);
	struct rl_shard *sh = &rl->shard[h % RL_SHARDS];
	size_t base = (h / RL_SHARDS) % RL_SLOTS;
	int allowed;
	double left;

	pthread_mutex_lock(&sh->mu);
	struct rl_entry *hit = NULL, *victim = NULL;
	for (size_t i = 0; i < RL_PROBE; i++) {
		struct rl_entry *e = &sh->e[(base + i) % RL_SLOTS];
		if (e->addr[0] != '\0' && strcmp(e->addr, addr) == 0) {
			hit = e;
			break;
		}
		if (victim == NULL || e->last_us < victim->last_us)
			victim = e;
	}
	if (hit == NULL) {
		hit = victim;
		snprintf(hit->addr, sizeof(hit->addr), "%s", addr);
		hit->tokens = (double)burst;
		hit->last_us = now_us;
	}
	if (now_us > hit->last_us) {
		hit->tokens += (double)(now_us - hit->last_us) * rate / 1e6;
		if (hit->tokens > (double)burst)
			hit->tokens = (double)burst;
		hit->last_us = now_us;
	}
	allowed = hit->tokens >= 1.0;
	if (allowed)
		hit->tokens -= 1.0;
	left = hit->tokens;
	pthread_mutex_unlock(&sh->mu);
	if (st != NULL) {
		st->limit = burst;
		st->remaining = left < 1.0 ? 0 : (long)left; /* whole requests */
		st->reset = rl_seconds_until(left, (double)burst, rate);
		st->retry_after = allowed ? 0 : rl_seconds_until(left, 1.0, rate);
	}
	return allowed;
}

int
ratelimit_take(struct ratelimit *rl, const char *addr, uint64_t now_us)
{
	return ratelimit_check(rl, addr, now_us, NULL);
}
