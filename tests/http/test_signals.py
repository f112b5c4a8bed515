"""Signals: SIGTERM/SIGINT drain and exit 0; SIGHUP reloads."""

import signal
import time

import pytest

from conftest import client_context, read_response, wait_for


# The front door's own (framing, limits, TLS, signals, proxies: answered on
# /healthz before any database): run once, in the SQLite lane, which keeps
# make check's MariaDB lane, its long pole, to what depends on the driver.
from conftest import DRIVER  # noqa: E402
pytestmark = pytest.mark.skipif(DRIVER == "mariadb",
                                reason="does not depend on the database driver")


@pytest.fixture
def draining(start_server):
    """A server that got SIGTERM while a request was in flight (request line
    and Host sent, final CRLF not yet): yields (server, that socket)."""
    srv = start_server(drain_timeout=10)
    sock = srv.raw_tls_socket()
    with sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n")
        time.sleep(0.3)
        srv.signal(signal.SIGTERM)
        time.sleep(0.5)
        yield srv, sock


def test_sigterm_finishes_in_flight_request(draining):
    srv, sock = draining
    assert srv.alive(), "exited without waiting for the in-flight request"
    sock.sendall(b"\r\n")
    resp = read_response(sock)
    assert resp.status == 200 and resp.body == {"status": "ok"}, resp
    assert resp.headers.get("connection", "").lower() == "close"
    assert srv.wait_exit(5) == 0, srv.stderr()


def test_sigterm_refuses_new_connections_while_draining(draining):
    srv, _ = draining
    outcome = srv.connect_outcome(timeout=2)
    assert srv.alive()
    assert outcome == "refused"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_idle_server_exits_promptly(start_server, sig):
    srv = start_server(drain_timeout=10)
    # An idle keep-alive connection is not a request in flight.
    conn = srv.connection()
    try:
        assert srv.request("GET", "/healthz", conn=conn).status == 200
        started = time.monotonic()
        srv.signal(sig)
        assert srv.wait_exit(5) == 0, srv.stderr()
        assert time.monotonic() - started < 3
    finally:
        conn.close()


def peer_cert(srv, ctx):
    with srv.raw_tls_socket(context=ctx) as sock:
        return sock.getpeercert(binary_form=True)


def test_sighup_swaps_certificate(start_server, tls_cert, make_cert):
    srv = start_server()
    new = make_cert("bulwark-reloaded")
    ctx = client_context(tls_cert.cert, new.cert)
    kept = srv.connection(context=ctx)
    try:
        assert srv.request("GET", "/healthz", conn=kept).status == 200
        assert peer_cert(srv, ctx) == tls_cert.der
        srv.update_settings(tls_cert=new.cert, tls_key=new.key)
        srv.write_config()
        srv.signal(signal.SIGHUP)
        assert srv.wait_stderr("reloaded configuration"), srv.stderr()
        assert wait_for(lambda: peer_cert(srv, ctx) == new.der, 5), "old certificate still served"
        assert srv.alive()
        # Connections made before the reload go on working, and so do new ones.
        assert srv.request("GET", "/healthz", conn=kept).status == 200
        assert srv.request("GET", "/nope", context=ctx).status == 404
    finally:
        kept.close()


def test_sighup_with_broken_config_keeps_running_one(start_server, tls_cert, make_cert):
    srv = start_server()
    new = make_cert("never-loaded")
    ctx = client_context(tls_cert.cert, new.cert)
    srv.update_settings(tls_cert=new.cert, tls_key=new.key)
    srv.write_config("[limits]\nno_such_key = 1\n")
    srv.signal(signal.SIGHUP)
    assert srv.wait_stderr("reload refused"), srv.stderr()
    assert "no_such_key" in srv.stderr()
    assert srv.alive()
    assert peer_cert(srv, ctx) == tls_cert.der
    assert srv.request("GET", "/healthz").status == 200


def test_sighup_reopens_access_log(start_server):
    srv = start_server()
    assert srv.request("GET", "/before-rotation").status == 404
    assert wait_for(lambda: "/before-rotation" in srv.access_log.read_text(), 5)
    rotated = srv.access_log.with_name("access.log.1")
    srv.access_log.rename(rotated)
    srv.signal(signal.SIGHUP)
    assert srv.wait_stderr("reloaded configuration"), srv.stderr()
    assert srv.request("GET", "/after-rotation").status == 404
    assert wait_for(lambda: srv.access_log.exists() and "/after-rotation" in
                    srv.access_log.read_text(), 5), "nothing logged to the reopened file"
    assert "/after-rotation" not in rotated.read_text()
    assert "/before-rotation" in rotated.read_text()


def test_sighup_applies_rate_limits(start_server):
    srv = start_server()
    assert {srv.request("GET", "/healthz").status for _ in range(5)} == {200}
    srv.update_settings(rate_per_second=1, rate_burst=1)
    srv.write_config()
    srv.signal(signal.SIGHUP)
    assert srv.wait_stderr("reloaded configuration"), srv.stderr()
    assert 429 in [srv.request("GET", "/healthz").status for _ in range(5)]
