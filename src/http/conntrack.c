/*
 * Deadlines for slow clients. libmicrohttpd 0.9.75 only times out silence,
 * so a client that sends a byte every few seconds keeps a connection slot
 * for ever, and a handful of addresses fill the table (slowloris). Here
 * every connection has a phase and a deadline of its own:
 *
 *   open     TLS handshake, request line and headers: header_timeout from
 *            accept, however busy the client keeps the line;
 *   body     the body must arrive at body_min_rate bytes/s on average once
 *            a grace of header_timeout has passed;
 *   busy     the handler runs: no deadline here;
 *   send     the reply is queued and waits for the client to read it:
 *            replies must be read at body_min_rate too. Time spent waiting
 *            is a debt that each reply pays off by its size / body_min_rate
 *            once it has gone; the debt may not pass header_timeout, and no
 *            more than header_timeout of credit can be saved up. So a client
 *            that pipelines a thousand small requests and reads the replies
 *            slowly is one slow reader, not a thousand quick ones, while a
 *            large reply read at a fair pace has all the time its size needs;
 *   idle     between keep-alive requests: the next request line and its
 *            headers must come within connection_timeout + header_timeout.
 *
 * A watchdog thread shuts down the socket of a connection past its
 * deadline; libmicrohttpd then sees the connection end and cleans it up as
 * usual. And when more than max_connections are open, a new connection
 * displaces the oldest one that is waiting on its client (in its head or
 * idle; failing that, one behind in reading its replies), so clients that
 * send a whole request and read the reply promptly are served even while
 * slow ones fill the table. The socket is only ever shut down under the lock that the
 * close notification also takes, and libmicrohttpd notifies before it
 * closes the descriptor, so a descriptor is never shut down after reuse.
 */
#include "http.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

enum ct_phase { CT_HEAD, CT_BODY, CT_BUSY, CT_SEND, CT_IDLE, CT_CUT };

/* A request line this soon after the last reply went out continues the run. */
#define CT_PIPELINE_GAP_US 1000000u

struct conntrack_entry {
	struct conntrack_entry *prev, *next;
	int fd;
	enum ct_phase phase;
	uint64_t deadline_us; /* CT_HEAD, CT_IDLE */
	uint64_t body_from_us; /* CT_BODY: when the headers were complete */
	uint64_t body_got;
	/* CT_SEND: the time owed for replies so far (negative: credit, at most
	 * header_timeout of it), when the current reply was queued and the time
	 * its size allows. */
	int64_t debt_us;
	uint64_t send_from_us, allow_us, idle_from_us;
	int cut; /* shut down by us: the request's log line says 408 */
};

struct conntrack {
	pthread_mutex_t mu;
	pthread_cond_t wake;
	pthread_t thread;
	int running, stop;
	struct conntrack_conf conf;
	struct conntrack_entry *head, *tail; /* oldest first */
	size_t count;
	_Atomic uint64_t cut_head, cut_body, displaced;
};

static void
ct_unlink(struct conntrack *ct, struct conntrack_entry *e)
{
	if (e->prev != NULL)
		e->prev->next = e->next;
	else
		ct->head = e->next;
	if (e->next != NULL)
		e->next->prev = e->prev;
	else
		ct->tail = e->prev;
	e->prev = e->next = NULL;
}

/* Called with ct->mu held. */
static void
ct_cut(struct conntrack_entry *e)
{
	if (e->phase == CT_CUT)
		return;
	e->phase = CT_CUT;
	e->cut = 1;
	if (e->fd >= 0)
		(void)shutdown(e->fd, SHUT_RDWR);
}

static uint64_t
ct_us(long seconds)
{
	return seconds > 0 ? (uint64_t)seconds * 1000000u : 0;
}

/* What the connection owes at now_us if its current reply went out then. */
static int64_t
ct_send_debt(const struct conntrack_entry *e, uint64_t now_us)
{
	uint64_t waited = now_us - e->send_from_us;
	if (waited > INT64_MAX / 4)
		waited = INT64_MAX / 4;
	return e->debt_us + (int64_t)waited - (int64_t)e->allow_us;
}

size_t
conntrack_sweep(struct conntrack *ct, uint64_t now_us)
{
	size_t n = 0;
	pthread_mutex_lock(&ct->mu);
	for (struct conntrack_entry *e = ct->head; e != NULL; e = e->next) {
		switch (e->phase) {
		case CT_HEAD:
		case CT_IDLE:
			if (now_us >= e->deadline_us) {
				ct_cut(e);
				atomic_fetch_add(&ct->cut_head, 1);
				n++;
			}
			break;
		case CT_BODY: {
			uint64_t grace = ct_us(ct->conf.header_timeout);
			if (ct->conf.body_min_rate <= 0 || now_us < e->body_from_us + grace)
				break;
			/* On average at least body_min_rate bytes/s since the grace ended. */
			uint64_t due = (now_us - e->body_from_us - grace) *
				       (uint64_t)ct->conf.body_min_rate / 1000000u;
			if (e->body_got < due) {
				ct_cut(e);
				atomic_fetch_add(&ct->cut_body, 1);
				n++;
			}
			break;
		}
		case CT_SEND: {
			if (ct->conf.body_min_rate <= 0 || now_us < e->send_from_us)
				break;
			if (ct_send_debt(e, now_us) > (int64_t)ct_us(ct->conf.header_timeout)) {
				ct_cut(e);
				atomic_fetch_add(&ct->cut_body, 1);
				n++;
			}
			break;
		}
		case CT_BUSY:
		case CT_CUT:
			break;
		}
	}
	pthread_mutex_unlock(&ct->mu);
	return n;
}

static void *
ct_watchdog(void *arg)
{
	struct conntrack *ct = arg;
	uint64_t logged_head = 0, logged_body = 0, logged_displaced = 0;
	pthread_mutex_lock(&ct->mu);
	while (!ct->stop) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += CONNTRACK_TICK_MS * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		(void)pthread_cond_timedwait(&ct->wake, &ct->mu, &ts);
		if (ct->stop)
			break;
		pthread_mutex_unlock(&ct->mu);
		(void)conntrack_sweep(ct, util_now_us());
		/* One line per tick at most, however many were cut: an attack must not flood the log. */
		uint64_t h = atomic_load(&ct->cut_head), b = atomic_load(&ct->cut_body),
			 d = atomic_load(&ct->displaced);
		if (h != logged_head || b != logged_body || d != logged_displaced)
			log_warn("slow clients: %llu cut past the header deadline, %llu below the "
				 "body rate, %llu displaced by new connections (totals)",
				 (unsigned long long)h, (unsigned long long)b, (unsigned long long)d);
		logged_head = h, logged_body = b, logged_displaced = d;
		pthread_mutex_lock(&ct->mu);
	}
	pthread_mutex_unlock(&ct->mu);
	return NULL;
}

bw_err
conntrack_new(const struct conntrack_conf *conf, int watchdog, struct conntrack **out)
{
	struct conntrack *ct = calloc(1, sizeof(*ct));
	*out = NULL;
	if (ct == NULL)
		return BW_ERR_NOMEM;
	ct->conf = *conf;
	if (pthread_mutex_init(&ct->mu, NULL) != 0) {
		free(ct);
		return BW_ERR_NOMEM;
	}
	if (pthread_cond_init(&ct->wake, NULL) != 0) {
		pthread_mutex_destroy(&ct->mu);
		free(ct);
		return BW_ERR_NOMEM;
	}
	if (watchdog) {
		if (pthread_create(&ct->thread, NULL, ct_watchdog, ct) != 0) {
			pthread_cond_destroy(&ct->wake);
			pthread_mutex_destroy(&ct->mu);
			free(ct);
			return BW_ERR_NOMEM;
		}
		ct->running = 1;
	}
	*out = ct;
	return BW_OK;
}

void
conntrack_free(struct conntrack *ct)
{
	if (ct == NULL)
		return;
	if (ct->running) {
		pthread_mutex_lock(&ct->mu);
		ct->stop = 1;
		pthread_cond_signal(&ct->wake);
		pthread_mutex_unlock(&ct->mu);
		pthread_join(ct->thread, NULL);
	}
	/* libmicrohttpd has closed every connection by now; free what is left all the same. */
	struct conntrack_entry *e = ct->head;
	while (e != NULL) {
		struct conntrack_entry *next = e->next;
		free(e);
		e = next;
	}
	pthread_cond_destroy(&ct->wake);
	pthread_mutex_destroy(&ct->mu);
	free(ct);
}

void
conntrack_configure(struct conntrack *ct, const struct conntrack_conf *conf)
{
	pthread_mutex_lock(&ct->mu);
	ct->conf = *conf;
	pthread_mutex_unlock(&ct->mu);
}

/*
 * Who makes room for newcomer e, with ct->mu held: the oldest connection
 * that has not sent a whole head or is idle; failing that, the oldest whose
 * client is behind in reading its replies (an honest download read at a
 * fair pace owes nothing and is never chosen); NULL when every other one is
 * at work for its client.
 */
static struct conntrack_entry *
ct_victim(struct conntrack *ct, const struct conntrack_entry *e, uint64_t now_us)
{
	for (struct conntrack_entry *v = ct->head; v != NULL; v = v->next)
		if (v != e && (v->phase == CT_HEAD || v->phase == CT_IDLE))
			return v;
	for (struct conntrack_entry *v = ct->head; v != NULL; v = v->next)
		if (v != e && v->phase == CT_SEND && now_us >= v->send_from_us &&
		    ct_send_debt(v, now_us) > 0)
			return v;
	return NULL;
}

struct conntrack_entry *
conntrack_open(struct conntrack *ct, int fd, uint64_t now_us)
{
	struct conntrack_entry *e = calloc(1, sizeof(*e));
	if (e == NULL) {
		/* Untracked means undeadlined: refuse it rather. */
		if (fd >= 0)
			(void)shutdown(fd, SHUT_RDWR);
		return NULL;
	}
	e->fd = fd;
	e->phase = CT_HEAD;
	pthread_mutex_lock(&ct->mu);
	e->deadline_us = now_us + ct_us(ct->conf.header_timeout);
	e->prev = ct->tail;
	if (ct->tail != NULL)
		ct->tail->next = e;
	else
		ct->head = e;
	ct->tail = e;
	ct->count++;
	if (ct->conf.soft_max > 0 && ct->count > (size_t)ct->conf.soft_max) {
		/* Full: the oldest connection that has not sent a whole request yet makes room. */
		struct conntrack_entry *v = ct_victim(ct, e, now_us);
		ct_cut(v != NULL ? v : e);
		atomic_fetch_add(&ct->displaced, 1);
	}
	pthread_mutex_unlock(&ct->mu);
	return e;
}

void
conntrack_close(struct conntrack *ct, struct conntrack_entry *e)
{
	if (e == NULL)
		return;
	pthread_mutex_lock(&ct->mu);
	ct_unlink(ct, e);
	ct->count--;
	e->fd = -1;
	pthread_mutex_unlock(&ct->mu);
	free(e);
}

void
conntrack_request_line(struct conntrack *ct, struct conntrack_entry *e, uint64_t now_us)
{
	if (e == NULL)
		return;
	pthread_mutex_lock(&ct->mu);
	if (e->phase == CT_IDLE) {
		uint64_t d = now_us + ct_us(ct->conf.header_timeout);
		e->phase = CT_HEAD;
		if (now_us - e->idle_from_us > CT_PIPELINE_GAP_US)
			e->debt_us = 0; /* a new request after a pause starts afresh */
		if (d < e->deadline_us)
			e->deadline_us = d;
	}
	pthread_mutex_unlock(&ct->mu);
}

void
conntrack_headers_done(struct conntrack *ct, struct conntrack_entry *e, int body, uint64_t now_us)
{
	if (e == NULL)
		return;
	pthread_mutex_lock(&ct->mu);
	if (e->phase != CT_CUT) {
		e->phase = body ? CT_BODY : CT_BUSY;
		e->body_from_us = now_us;
		e->body_got = 0;
	}
	pthread_mutex_unlock(&ct->mu);
}

void
conntrack_body(struct conntrack *ct, struct conntrack_entry *e, size_t n)
{
	if (e == NULL)
		return;
	pthread_mutex_lock(&ct->mu);
	e->body_got += n;
	pthread_mutex_unlock(&ct->mu);
}

void
conntrack_busy(struct conntrack *ct, struct conntrack_entry *e)
{
	if (e == NULL)
		return;
	pthread_mutex_lock(&ct->mu);
	if (e->phase != CT_CUT)
		e->phase = CT_BUSY;
	pthread_mutex_unlock(&ct->mu);
}

void
conntrack_sending(struct conntrack *ct, struct conntrack_entry *e, size_t bytes, uint64_t now_us)
{
	if (e == NULL)
		return;
	pthread_mutex_lock(&ct->mu);
	if (e->phase != CT_CUT) {
		uint64_t rate = ct->conf.body_min_rate > 0 ? (uint64_t)ct->conf.body_min_rate : 1;
		uint64_t allow = bytes / rate;
		/* at most a day for one reply, however large */
		e->allow_us = allow > 86400 ? 86400u * 1000000u
					    : allow * 1000000u + (bytes % rate) * 1000000u / rate;
		e->send_from_us = now_us;
		e->phase = CT_SEND;
	}
	pthread_mutex_unlock(&ct->mu);
}

void
conntrack_idle(struct conntrack *ct, struct conntrack_entry *e, uint64_t now_us)
{
	if (e == NULL)
		return;
	pthread_mutex_lock(&ct->mu);
	if (e->phase == CT_SEND && now_us >= e->send_from_us) {
		int64_t credit_max = (int64_t)ct_us(ct->conf.header_timeout);
		e->debt_us = ct_send_debt(e, now_us);
		if (e->debt_us < -credit_max)
			e->debt_us = -credit_max;
	}
	e->idle_from_us = now_us;
	if (e->phase != CT_CUT) {
		e->phase = CT_IDLE;
		e->deadline_us =
		    now_us + ct_us(ct->conf.idle_timeout) + ct_us(ct->conf.header_timeout);
	}
	pthread_mutex_unlock(&ct->mu);
}

int
conntrack_was_cut(struct conntrack *ct, struct conntrack_entry *e)
{
	if (e == NULL)
		return 0;
	pthread_mutex_lock(&ct->mu);
	int cut = e->cut;
	pthread_mutex_unlock(&ct->mu);
	return cut;
}

size_t
conntrack_count(struct conntrack *ct)
{
	pthread_mutex_lock(&ct->mu);
	size_t n = ct->count;
	pthread_mutex_unlock(&ct->mu);
	return n;
}
