"""The client address behind trusted reverse proxies: X-Forwarded-For is
believed only from [server] trusted_proxies, and then the right-most
forwarded address that is not itself a proxy is the client (what the access
log, the rate limits and the lockout's records see)."""

import pytest


# The front door's own (framing, limits, TLS, signals, proxies: answered on
# /healthz before any database): run once, in the SQLite lane, which keeps
# make check's MariaDB lane, its long pole, to what depends on the driver.
from conftest import DRIVER  # noqa: E402
pytestmark = pytest.mark.skipif(DRIVER == "mariadb",
                                reason="does not depend on the database driver")


def client_logged(srv, source, xff=None):
    headers = {"X-Forwarded-For": xff} if xff is not None else {}
    r = srv.request("GET", "/healthz", headers=headers, source=source)
    assert r.status == 200, r
    [entry] = srv.logged([r.headers["x-request-id"]])
    return entry["client"]


@pytest.fixture(scope="module")
def behind_proxy(tmp_path_factory, tls_cert):
    from conftest import _servers
    with _servers(tmp_path_factory, tls_cert) as make:
        yield make(trusted_proxies="127.0.0.1, 10.0.0.0/8").start()


def test_forwarded_for_only_from_trusted_proxies(behind_proxy):
    srv = behind_proxy
    # the trusted proxy (127.0.0.1) speaks for the client
    assert client_logged(srv, "127.0.0.1", "198.51.100.7") == "198.51.100.7"
    # a spoofed left part is ignored: the proxy appended the real peer
    assert client_logged(srv, "127.0.0.1", "6.6.6.6, 198.51.100.7, 10.1.2.3") == "198.51.100.7"
    # anyone else: the header means nothing
    assert client_logged(srv, "127.0.0.2", "198.51.100.7") == "127.0.0.2"
    # no header: the peer
    assert client_logged(srv, "127.0.0.1") == "127.0.0.1"
    # malformed from the proxy: unknown, not the proxy's own (trusted) address
    assert client_logged(srv, "127.0.0.1", "198.51.100.7, not-an-address") == "::"


def test_rate_limit_per_forwarded_client(start_server):
    srv = start_server(trusted_proxies="127.0.0.1", rate_per_second=1, rate_burst=2)

    def status(source, xff):
        return srv.request("GET", "/healthz", headers={"X-Forwarded-For": xff},
                           source=source).status

    assert [status("127.0.0.1", "198.51.100.1") for _ in range(4)].count(429) >= 1
    assert status("127.0.0.1", "198.51.100.2") == 200  # another client behind the proxy
    # an untrusted peer gets no fresh budget by inventing addresses
    spoofed = [status("127.0.0.3", f"203.0.113.{i}") for i in range(6)]
    assert spoofed.count(429) >= 1, spoofed


def test_bad_trusted_proxies_refused(server_config, run_cli):
    for bad in ("10.0.0.1/8", "10.0.0.0/33", "proxy.example.com", "010.0.0.1"):
        conf = server_config(migrate=False, trusted_proxies=bad)
        proc = run_cli("config", "check", "-c", conf)
        assert proc.returncode != 0 and "trusted_proxies" in proc.stderr, (bad, proc)


def test_every_forwarded_for_line_is_read(behind_proxy):
    # Several lines are one comma-joined list (RFC 9110 5.3): a proxy that adds
    # its own line (HAProxy's option forwardfor) leaves a forged first line in
    # front of the address it saw; the client is still the right-most one.
    srv = behind_proxy

    def client(*lines):
        head = b"".join(b"X-Forwarded-For: " + v + b"\r\n" for v in lines)
        r = srv.raw_request(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n" + head +
                            b"Connection: close\r\n\r\n", source="127.0.0.1")
        assert r.status == 200, r
        [entry] = srv.logged([r.headers["x-request-id"]])
        return entry["client"]

    assert client(b"10.1.2.3", b"203.0.113.7") == "203.0.113.7"
    assert client(b"6.6.6.6, 10.1.2.3", b"198.51.100.9", b"10.0.0.5") == "198.51.100.9"
    # the same values on one line give the same client
    assert client(b"10.1.2.3, 203.0.113.7") == "203.0.113.7"
    # a malformed entry on any line: unknown
    assert client(b"not-an-address", b"203.0.113.7, 10.0.0.5") == "203.0.113.7"
    assert client(b"203.0.113.7", b"bogus") == "::"
    # an empty line is a malformed entry, not nothing
    assert client(b"203.0.113.7", b"") == "::"
