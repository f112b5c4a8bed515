"""Limits: slow clients, connections per address, request rate."""

import json
import socket
import time

from conftest import (check_error_body, check_security_headers, read_response, wait_closed,
                      wait_for)
import pytest


# The front door's own (framing, limits, TLS, signals, proxies: answered on
# /healthz before any database): run once, in the SQLite lane, which keeps
# make check's MariaDB lane, its long pole, to what depends on the driver.
from conftest import DRIVER  # noqa: E402
pytestmark = pytest.mark.skipif(DRIVER == "mariadb",
                                reason="does not depend on the database driver")

PARTIAL_REQUEST = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n"  # no final blank line


def test_slow_client_cut_without_blocking_others(start_server):
    srv = start_server(connection_timeout=2)
    with srv.raw_tls_socket(timeout=8) as slow:
        slow.sendall(PARTIAL_REQUEST)
        started = time.monotonic()
        for _ in range(20):
            t = time.monotonic()
            assert srv.request("GET", "/healthz").status == 200
            assert time.monotonic() - t < 1.0, "a request waited behind the slow client"
        assert time.monotonic() - started < 2.0, "20 requests did not fit in the slow one's wait"
        closed_after = wait_closed(slow, timeout=6)
    assert closed_after is not None, "the slow connection was never cut"
    assert 1.0 <= time.monotonic() - started <= 5.5
    assert wait_for(lambda: any(e["status"] == 408 for e in srv.access_entries()), 3), \
        "no 408 line in the access log for the cut request"


def test_silent_tcp_client_cut(start_server):
    srv = start_server(connection_timeout=2)
    with socket.create_connection(("127.0.0.1", srv.port), timeout=8) as sock:
        closed_after = wait_closed(sock, timeout=6)
    assert closed_after is not None, "a client that never began TLS was never cut"
    assert 1.0 <= closed_after <= 5.5
    assert srv.request("GET", "/healthz").status == 200


def test_connections_per_address(start_server):
    srv = start_server(max_connections_per_ip=5)
    idle = [srv.raw_tls_socket() for _ in range(5)]
    try:
        assert srv.connect_outcome() == "refused"
        assert srv.request("GET", "/healthz", source="127.0.0.2").status == 200
        # The five that were let in are really being served.
        idle[0].sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert read_response(idle[0]).status == 200
    finally:
        for sock in idle:
            sock.close()
    # Their slots are given back once they close.
    assert wait_for(lambda: srv.connect_outcome() == "served", 5)


def test_rate_limit_per_address(start_server):
    srv = start_server(rate_per_second=1, rate_burst=3)
    started = time.monotonic()
    replies = [srv.request("GET", "/healthz") for _ in range(8)]
    elapsed = time.monotonic() - started
    statuses = [r.status for r in replies]
    assert statuses[0] == 200, statuses
    assert 429 in statuses, statuses
    assert set(statuses) == {200, 429}, statuses
    assert statuses.count(200) <= 3 + int(elapsed) + 1, (statuses, elapsed)
    limited = replies[statuses.index(429)]
    check_error_body(limited, 429, "rate_limited")
    check_security_headers(limited)
    assert int(limited.headers.get("retry-after", "0")) >= 1, limited.headers
    assert srv.request("GET", "/healthz", source="127.0.0.2").status == 200


class Trickler:
    """Slow clients (slowloris): each opens a TLS connection, sends a request
    line and then one more header line every interval seconds, never ending
    its head. Records when the server closed each one."""

    def __init__(self, srv, sources, per_source, interval, start=b"GET /healthz HTTP/1.1\r\n"):
        import threading
        self.socks, self.closed_after = [], {}
        for source in sources:
            for _ in range(per_source):
                sock = srv.raw_tls_socket(source=source, timeout=10)
                sock.sendall(start + b"Host: localhost\r\n")
                self.socks.append((sock, time.monotonic()))
        self.interval = interval
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        n = 0
        while not self.stop.wait(self.interval):
            n += 1
            for i, (sock, opened) in enumerate(self.socks):
                if i in self.closed_after:
                    continue
                try:
                    sock.sendall(b"X-Slow-%d: %d\r\n" % (n, n))
                except OSError:
                    self.closed_after[i] = time.monotonic() - opened

    def close(self):
        self.stop.set()
        self.thread.join(timeout=10)
        for sock, _ in self.socks:
            sock.close()


def test_slowloris_does_not_starve_other_clients(start_server):
    # 50 connections from five addresses, each sending a header line every
    # second and never finishing, fill max_connections = 50. A client from
    # another address must still be served at once, and the slow ones are
    # cut once header_timeout has passed, however busy they keep the line.
    srv = start_server(max_connections=50, max_connections_per_ip=10, header_timeout=3,
                       connection_timeout=30)
    slow = Trickler(srv, [f"127.0.0.{i}" for i in range(2, 7)], 10, interval=1.0)
    try:
        for _ in range(5):
            t = time.monotonic()
            assert srv.connect_outcome(source="127.0.0.9", timeout=3) == "served"
            assert srv.request("GET", "/healthz", source="127.0.0.9", timeout=3).status == 200
            assert time.monotonic() - t < 3.0, "a normal client waited behind slow ones"
        assert wait_for(lambda: len(slow.closed_after) == len(slow.socks), 10), \
            f"only {len(slow.closed_after)} of {len(slow.socks)} slow connections were cut"
        # every one was cut by its deadline (3 s from accept), not by silence (30 s)
        assert max(slow.closed_after.values()) < 3 + 3.5, slow.closed_after
    finally:
        slow.close()
    assert wait_for(lambda: sum(e["status"] == 408 for e in srv.access_entries()) >= 40, 5), \
        "the cut requests are not logged as 408"
    assert srv.request("GET", "/healthz").status == 200


def test_head_deadline_counts_from_accept(start_server):
    srv = start_server(header_timeout=2, connection_timeout=30)
    # a TLS client that never sends a request
    with srv.raw_tls_socket(timeout=10) as quiet:
        closed_after = wait_closed(quiet, timeout=8)
    assert closed_after is not None and 1.5 <= closed_after <= 4.5, closed_after
    # a TCP client that never starts TLS
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
        closed_after = wait_closed(sock, timeout=8)
    assert closed_after is not None and 1.5 <= closed_after <= 4.5, closed_after


def test_keep_alive_idle_is_not_the_head_deadline(start_server):
    # Between keep-alive requests the idle timeout applies, then the head's.
    srv = start_server(header_timeout=1, connection_timeout=4)
    conn = srv.connection()
    try:
        assert srv.request("GET", "/healthz", conn=conn).status == 200
        sock = conn.sock
        time.sleep(2.5)
        assert srv.request("GET", "/healthz", conn=conn).status == 200
        assert conn.sock is sock, "the idle keep-alive connection was cut"
    finally:
        conn.close()


def test_trickled_body_is_cut(start_server):
    srv = start_server(seed_tenant=True, header_timeout=2, body_min_rate=100,
                       connection_timeout=30)
    slug = json.loads(srv.cli_ok("tenant", "list", "--json").stdout)[0]["slug"]
    head = (b"POST /api/v1/auth/login HTTP/1.1\r\nHost: " + srv.tenant_host(slug).encode() +
            b"\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n")
    with srv.raw_tls_socket(timeout=10) as sock:
        sock.sendall(head)
        started = time.monotonic()
        cut = None
        while time.monotonic() - started < 8:
            try:
                sock.sendall(b" ")
            except OSError:
                cut = time.monotonic() - started
                break
            time.sleep(0.25)
            if wait_closed(sock, timeout=0.01) is not None:
                cut = time.monotonic() - started
                break
    assert cut is not None and cut < 5, f"a 4 bytes/s body was not cut ({cut})"
    # a body that arrives at a fair pace is read in full and answered
    body = json.dumps({"email": "nobody@example.com", "password": "x" * 900}).encode()
    with srv.raw_tls_socket(timeout=10) as sock:
        sock.sendall(head.replace(b"1000", str(len(body)).encode()))
        for i in range(0, len(body), 300):
            sock.sendall(body[i:i + 300])
            time.sleep(0.5)
        assert read_response(sock, "POST").status == 401
