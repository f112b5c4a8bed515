/*
 * Deadlines for slow clients, on socket pairs: the tracker shuts down the
 * server's end, and the client's end sees it closed. Time is passed in, so
 * nothing here waits.
 */
#include "unit.h"

#include <poll.h>
#include <sys/socket.h>

#include "http/http.h"

#define S 1000000ull /* a second in microseconds */

struct pair {
	int server, client;
};

static struct pair
pair_new(void)
{
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	return (struct pair){sv[0], sv[1]};
}

static void
pair_free(struct pair p)
{
	close(p.server);
	close(p.client);
}

/* 1 if the server end was shut down: the client reads end-of-file at once. */
static int
cut(struct pair p)
{
	struct pollfd pf = {.fd = p.client, .events = POLLIN};
	if (poll(&pf, 1, 0) != 1)
		return 0;
	char c;
	return recv(p.client, &c, 1, MSG_DONTWAIT) == 0;
}

static struct conntrack *
tracker(long header_timeout, long idle, long rate, long soft_max)
{
	struct conntrack_conf conf = {header_timeout, idle, rate, soft_max};
	struct conntrack *ct;
	assert_int_equal(conntrack_new(&conf, 0, &ct), BW_OK);
	return ct;
}

static void
test_head_deadline(void **state)
{
	(void)state;
	struct conntrack *ct = tracker(10, 30, 0, 0);
	struct pair a = pair_new(), b = pair_new();
	struct conntrack_entry *ea = conntrack_open(ct, a.server, 100 * S);
	struct conntrack_entry *eb = conntrack_open(ct, b.server, 105 * S);
	/* a request line does not move the deadline of a fresh connection */
	conntrack_request_line(ct, ea, 109 * S);
	assert_int_equal(conntrack_sweep(ct, 109 * S), 0);
	assert_false(cut(a));
	assert_int_equal(conntrack_sweep(ct, 110 * S), 1);
	assert_true(cut(a));
	assert_true(conntrack_was_cut(ct, ea));
	assert_false(cut(b));
	/* b completed its head in time: busy connections have no deadline */
	conntrack_headers_done(ct, eb, 0, 108 * S);
	assert_int_equal(conntrack_sweep(ct, 1000 * S), 0);
	assert_false(cut(b));
	assert_false(conntrack_was_cut(ct, eb));
	conntrack_close(ct, ea);
	conntrack_close(ct, eb);
	assert_int_equal(conntrack_count(ct), 0);
	conntrack_free(ct);
	pair_free(a);
	pair_free(b);
}

static void
test_idle_then_next_head(void **state)
{
	(void)state;
	struct conntrack *ct = tracker(10, 30, 0, 0);
	struct pair a = pair_new();
	struct conntrack_entry *e = conntrack_open(ct, a.server, 0);
	conntrack_headers_done(ct, e, 0, 1 * S);
	conntrack_idle(ct, e, 2 * S);
	/* idle: the keep-alive time, then the head's */
	assert_int_equal(conntrack_sweep(ct, 41 * S), 0);
	/* the next request line starts its head: header_timeout from now at most */
	conntrack_request_line(ct, e, 20 * S);
	assert_int_equal(conntrack_sweep(ct, 29 * S), 0);
	assert_false(cut(a));
	assert_int_equal(conntrack_sweep(ct, 30 * S), 1);
	assert_true(cut(a));
	conntrack_close(ct, e);
	conntrack_free(ct);
	pair_free(a);
}

static void
test_body_rate(void **state)
{
	(void)state;
	struct conntrack *ct = tracker(10, 30, 100, 0);
	struct pair a = pair_new(), b = pair_new();
	struct conntrack_entry *slow = conntrack_open(ct, a.server, 0);
	struct conntrack_entry *fair = conntrack_open(ct, b.server, 0);
	conntrack_headers_done(ct, slow, 1, 1 * S);
	conntrack_headers_done(ct, fair, 1, 1 * S);
	/* within the grace (header_timeout), nothing is due */
	assert_int_equal(conntrack_sweep(ct, 11 * S), 0);
	conntrack_body(ct, slow, 50);
	conntrack_body(ct, fair, 1000);
	/* 5 s past the grace: 500 bytes due */
	assert_int_equal(conntrack_sweep(ct, 16 * S), 1);
	assert_true(cut(a));
	assert_false(cut(b));
	/* a body that has all arrived goes busy: no more rate */
	conntrack_busy(ct, fair);
	assert_int_equal(conntrack_sweep(ct, 1000 * S), 0);
	assert_false(cut(b));
	conntrack_close(ct, slow);
	conntrack_close(ct, fair);
	conntrack_free(ct);
	pair_free(a);
	pair_free(b);
}

static void
test_reply_read_rate(void **state)
{
	(void)state;
	struct conntrack *ct = tracker(2, 30, 1000, 0);
	struct pair a = pair_new(), b = pair_new();
	struct conntrack_entry *one = conntrack_open(ct, a.server, 0);
	struct conntrack_entry *run = conntrack_open(ct, b.server, 0);
	conntrack_headers_done(ct, run, 0, 0); /* busy meanwhile: no deadline */
	/* one reply of 1000 bytes at 1000 B/s: 1 s it may take, plus the 2 s grace */
	conntrack_headers_done(ct, one, 0, 0);
	conntrack_sending(ct, one, 1000, 0);
	assert_int_equal(conntrack_sweep(ct, 2900000), 0);
	assert_false(cut(a));
	assert_int_equal(conntrack_sweep(ct, 3100000), 1);
	assert_true(cut(a));
	/*
	 * A run of pipelined replies: the first ones go out at once (into the
	 * kernel's buffers) and earn credit, but no more than the grace; then
	 * the client reads slowly and the debt grows past it.
	 */
	conntrack_sending(ct, run, 100000, 0);
	conntrack_idle(ct, run, 0); /* 100 s of credit earned, 2 s kept */
	conntrack_request_line(ct, run, 1000);
	conntrack_headers_done(ct, run, 0, 1000);
	conntrack_sending(ct, run, 0, 1000);
	assert_int_equal(conntrack_sweep(ct, 3900000), 0);
	assert_false(cut(b));
	assert_int_equal(conntrack_sweep(ct, 4100000), 1);
	assert_true(cut(b));
	conntrack_close(ct, one);
	conntrack_close(ct, run);
	conntrack_free(ct);
	pair_free(a);
	pair_free(b);
}

static void
test_pause_clears_the_debt(void **state)
{
	(void)state;
	struct conntrack *ct = tracker(2, 30, 1000, 0);
	struct pair a = pair_new();
	struct conntrack_entry *e = conntrack_open(ct, a.server, 0);
	conntrack_headers_done(ct, e, 0, 0);
	conntrack_sending(ct, e, 0, 0);
	conntrack_idle(ct, e, 1900000); /* 1.9 s owed */
	/* the next request a while later: the debt is forgiven */
	conntrack_request_line(ct, e, 5 * S);
	conntrack_headers_done(ct, e, 0, 5 * S);
	conntrack_sending(ct, e, 0, 5 * S);
	assert_int_equal(conntrack_sweep(ct, 5 * S + 1900000), 0);
	assert_false(cut(a));
	conntrack_close(ct, e);
	conntrack_free(ct);
	pair_free(a);
}

static void
test_full_table_displaces_the_oldest_slow(void **state)
{
	(void)state;
	struct conntrack *ct = tracker(10, 30, 100, 3);
	struct pair p[6];
	struct conntrack_entry *e[6];
	for (int i = 0; i < 6; i++)
		p[i] = pair_new();
	e[0] = conntrack_open(ct, p[0].server, 0);
	e[1] = conntrack_open(ct, p[1].server, 1);
	e[2] = conntrack_open(ct, p[2].server, 2);
	/* the oldest is busy with a real request: never displaced */
	conntrack_headers_done(ct, e[0], 0, 3);
	/* e[1] waits on its reader, and is behind: it owes for its empty reply */
	conntrack_headers_done(ct, e[1], 0, 3);
	conntrack_sending(ct, e[1], 0, 3);
	/* a head still coming goes first */
	e[3] = conntrack_open(ct, p[3].server, 4 * S);
	assert_true(cut(p[2]));
	assert_false(cut(p[0]) || cut(p[1]) || cut(p[3]));
	conntrack_close(ct, e[2]);
	/* no head or idle one left: the reply whose reader is behind */
	conntrack_headers_done(ct, e[3], 0, 4 * S);
	e[4] = conntrack_open(ct, p[4].server, 5 * S);
	assert_true(cut(p[1]));
	assert_false(cut(p[0]) || cut(p[3]) || cut(p[4]));
	conntrack_close(ct, e[1]);
	/* a large reply read at a fair pace owes nothing: never displaced */
	conntrack_headers_done(ct, e[4], 0, 5 * S);
	conntrack_sending(ct, e[4], 100000, 5 * S);
	e[5] = conntrack_open(ct, p[5].server, 6 * S);
	assert_true(cut(p[5]));
	assert_false(cut(p[0]) || cut(p[3]) || cut(p[4]));
	for (int i = 0; i < 6; i++) {
		if (i != 1 && i != 2)
			conntrack_close(ct, e[i]);
		pair_free(p[i]);
	}
	assert_int_equal(conntrack_count(ct), 0);
	conntrack_free(ct);
}

static void
test_watchdog_cuts_on_its_own(void **state)
{
	(void)state;
	struct conntrack_conf conf = {1, 1, 0, 0};
	struct conntrack *ct;
	assert_int_equal(conntrack_new(&conf, 1, &ct), BW_OK);
	struct pair a = pair_new();
	struct conntrack_entry *e = conntrack_open(ct, a.server, util_now_us());
	struct pollfd pf = {.fd = a.client, .events = POLLIN};
	/* within a second and a tick or two */
	assert_int_equal(poll(&pf, 1, 3000), 1);
	assert_true(cut(a));
	conntrack_close(ct, e);
	conntrack_free(ct);
	pair_free(a);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_head_deadline),
		cmocka_unit_test(test_idle_then_next_head),
		cmocka_unit_test(test_body_rate),
		cmocka_unit_test(test_reply_read_rate),
		cmocka_unit_test(test_pause_clears_the_debt),
		cmocka_unit_test(test_full_table_displaces_the_oldest_slow),
		cmocka_unit_test(test_watchdog_cuts_on_its_own),
	};
	return cmocka_run_group_tests_name("conntrack", tests, NULL, NULL);
}
