"""Limits: slow clients, connections per address, request rate."""

import socket
import time

from conftest import (check_error_body, check_security_headers, read_response, wait_closed,
                      wait_for)

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
