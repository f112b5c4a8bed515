"""Review of the issue #12 fixes: attacks that still work.

Each test is what an attacker does; it fails while the hole is open.
"""

import json
import secrets
import socket
import ssl
import threading
import time

import pytest

from conftest import check_error_body
from psa import API, admin_client
from test_identity import (MANY, PASSWORD, Account, call, check_locked, login_reply,
                           make_tenant)

WRONG = "Not-The-Password-77-Review"
HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"


def slow_reader(srv, source=None, rcvbuf=4096, timeout=10):
    """A TLS socket whose receive buffer is tiny, so the server's writes block."""
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    raw.settimeout(timeout)
    if source:
        raw.bind((source, 0))
    raw.connect(("127.0.0.1", srv.port))
    return srv.context.wrap_socket(raw, server_hostname="localhost")


# --- 5. slow clients: reading the response slowly has no deadline ----------------------

@pytest.mark.parametrize("read_per_second", [256, 4096])
def test_slow_reader_holds_a_connection_forever(start_server, read_per_second):
    """Pipeline more small requests than the kernel buffers hold, then read the
    replies slowly: the server is left blocked writing. Reading 256 B/s stalls
    the writes past connection_timeout; reading 4 KB/s keeps them moving, so
    MHD's idle timeout sees activity on every write, but is below the
    body_min_rate set here (8 KB/s), which replies must be read at too. Either
    way it must be cut like a slow head or a slow body. (What the client sees
    is no guide: a cut connection's queued bytes still drain to it; the
    server's own log is.)"""
    srv = start_server(header_timeout=2, connection_timeout=3, rate_per_second=0,
                       body_min_rate=8192)
    sock = slow_reader(srv)
    sender = threading.Thread(target=lambda: _send_quietly(sock, HEALTHZ * 8000), daemon=True)
    sender.start()
    started = time.monotonic()
    try:
        while time.monotonic() - started < 15:
            if any(e["status"] == 408 for e in srv.access_entries()):
                break
            try:
                sock.settimeout(1)
                got = 0
                while got < read_per_second:
                    got += len(sock.recv(read_per_second - got)) or read_per_second
            except (TimeoutError, OSError, ssl.SSLError):
                pass
            time.sleep(1.0)
    finally:
        sock.close()
        sender.join(timeout=5)
    cut = [e for e in srv.access_entries() if e["status"] == 408]
    assert cut, (f"a client reading {read_per_second} B/s was not cut in "
                 f"{time.monotonic() - started:.0f} s")


def _send_quietly(sock, data):
    try:
        sock.sendall(data)
    except (OSError, ssl.SSLError):
        pass


# --- 9. lockout as an oracle: a locked unknown address can be evicted ------------------

def test_locked_unknown_address_is_not_evicted_by_a_spray(start_server):
    """Lock an address, then spray login_attempts_max_rows other unknown
    addresses: throttle_make_room() evicts the least recently tried row even
    while its lockout runs, so the unknown address answers 401 again where a
    real, locked user still answers 423 -- which tells them apart."""
    srv = start_server(login_rate_per_minute=MANY, login_attempts_max_rows=3)
    t = make_tenant(srv, "evict")
    real = Account(t.slug, t.email, PASSWORD)
    ghost = Account(t.slug, f"nobody-{secrets.token_hex(3)}@{t.slug}.example.com", PASSWORD)
    for acct in (real, ghost):
        for _ in range(5):
            check_error_body(login_reply(srv, acct, WRONG), 401, "unauthorized")
        check_locked(login_reply(srv, acct, WRONG))
    for i in range(4):
        spray = Account(t.slug, f"spray-{i}-{secrets.token_hex(3)}@{t.slug}.example.com",
                        PASSWORD)
        check_error_body(login_reply(srv, spray, WRONG), 401, "unauthorized")
    check_locked(login_reply(srv, real, WRONG))
    r = login_reply(srv, ghost, WRONG)
    assert r.status == 423, \
        f"the locked unknown address answers {r.status} after a spray; a real user answers 423"


# --- 8. look-alike accounts within one script ------------------------------------------

SAME_SCRIPT_LOOKALIKES = [
    ("adm\u0131n@acme.test", "admin@acme.test"),    # dotless i (Latin)
    ("\u0261reg@acme.test", "greg@acme.test"),      # script g (Latin)
    ("\u0251dmin@acme.test", "admin@acme.test"),    # Latin alpha
    ("o\u02bcbrien@acme.test", "o'brien@acme.test"),  # modifier letter apostrophe (Common)
    ("o\ua78cbrien@acme.test", "o'brien@acme.test"),  # Latin saltillo
]


@pytest.mark.parametrize("lookalike,victim", SAME_SCRIPT_LOOKALIKES)
def test_same_script_lookalike_refused(start_server, lookalike, victim):
    """ADR 0012 says the mixed-script rule stops 'one swapped letter'; but a
    Latin letter that is not an ASCII letter (or a Common modifier letter) is
    one script with the rest, survives NFKC and case folding, and makes a
    second account that reads as the first."""
    srv = start_server(login_rate_per_minute=MANY)
    t = make_tenant(srv, "same")
    admin = admin_client(srv, t)
    r = admin.post(f"{API}/users", {"email": victim, "password": PASSWORD, "roles": ["staff"]})
    assert r.status == 201, r
    r = admin.post(f"{API}/users", {"email": lookalike, "password": PASSWORD, "roles": ["staff"]})
    assert r.status in (400, 409), f"{lookalike!r} was created beside {victim!r}: {r}"


# --- 4. framing: the chunked body is still parsed leniently -----------------------------

def exchange(srv, data, idle=2.0):
    """Send data on a fresh TLS connection -> every status code the server
    answered with, in order, until it closes or stays silent for idle s."""
    raw = b""
    with srv.raw_tls_socket(timeout=idle) as sock:
        sock.sendall(data)
        while True:
            try:
                chunk = sock.recv(65536)
            except (TimeoutError, OSError):
                break
            if not chunk:
                break
            raw += chunk
    import re
    return [int(c) for c in re.findall(rb"HTTP/1\.[01] (\d{3}) ", raw)]


def login_head(srv, slug, framing):
    return (b"POST /api/v1/auth/login HTTP/1.1\r\nHost: " + srv.tenant_host(slug).encode() +
            b"\r\nContent-Type: application/json\r\n" + framing + b"\r\n")


BODY = b'{"email":"nobody@example.com","password":"x"}'


@pytest.mark.parametrize("chunked", [
    # chunk-size line ended by a bare LF (TERM.EXT / chunk-ext desync, the head refuses bare LF)
    b"%x\n" % len(BODY) + BODY + b"\r\n0\r\n\r\n",
    # chunk data ended by a bare LF
    b"%x\r\n" % len(BODY) + BODY + b"\n0\r\n\r\n",
    # a trailer line ended by a bare LF, and one obs-folded
    b"%x\r\n" % len(BODY) + BODY + b"\r\n0\r\nX-T: 1\nX-U: 2\r\n\r\n",
    b"%x\r\n" % len(BODY) + BODY + b"\r\n0\r\nX-T: 1\r\n folded\r\n\r\n",
    # a trailer that is a framing field (RFC 9110 6.5.1: not allowed in trailers)
    b"%x\r\n" % len(BODY) + BODY + b"\r\n0\r\nContent-Length: 5\r\n\r\n",
    # a chunk extension that is no chunk-ext at all: control characters
    b"%x;\x01\x7f\r\n" % len(BODY) + BODY + b"\r\n0\r\n\r\n",
], ids=["size-bare-lf", "data-bare-lf", "trailer-bare-lf", "trailer-fold",
        "trailer-content-length", "ext-ctl"])
def test_lenient_chunked_framing_refused(start_server, chunked):
    """framing.c checks the head only; MHD 0.9.75 still accepts bare LFs in
    chunk lines and trailers, chunk extensions with any byte, and folded or
    framing trailers. A front end that parses these differently sees a
    different end of the body, and the request after it is smuggled: here a
    pipelined GET /healthz is answered after the lenient body."""
    srv = start_server(seed_tenant=True)
    slug = json.loads(srv.cli_ok("tenant", "list", "--json").stdout)[0]["slug"]
    codes = exchange(srv, login_head(srv, slug, b"Transfer-Encoding: chunked\r\n") + chunked +
                     HEALTHZ)
    # Refused outright: no request body is taken chunked (411, framing.c).
    assert codes == [411], f"a leniently chunked body was accepted: answers {codes}"


# --- 7. a token minted during a password change outlives it -----------------------------

NEW_PW = "Another-Lantern-58-Review"


def test_token_minted_during_password_change_is_revoked(start_server):
    """The thief holds a session and the (phished) password and mints tokens
    back to back. api_token_create() checks the password (slow: argon2id)
    outside the transaction that inserts the token, and nothing in that
    transaction looks again; so a mint whose check ran before the owner's
    password change commits inserts a live token after the change revoked
    every token and ended every other session."""
    srv = start_server(login_rate_per_minute=MANY, lockout_threshold=1000)
    t = make_tenant(srv, "race")
    from test_identity import login
    thief = login(srv, t)
    owner = login(srv, t)
    stop = threading.Event()
    minted = []

    def mint_loop():
        for _ in range(200):
            if stop.is_set():
                return
            r = call(srv, "POST", "/api/v1/auth/tokens", t.slug, session=thief,
                     body={"name": f"t-{secrets.token_hex(3)}", "scopes": ["self.view"],
                           "password": t.password})
            if r.status == 201:
                minted.append(r.body["token"])
            elif r.status in (401, 403):
                return  # the session was ended or the password changed

    threads = [threading.Thread(target=mint_loop) for _ in range(2)]
    for th in threads:
        th.start()
    time.sleep(1.0)
    r = call(srv, "POST", "/api/v1/auth/password", t.slug, session=owner,
             body={"current_password": t.password, "new_password": NEW_PW})
    assert r.status == 200, r
    time.sleep(1.0)
    stop.set()
    for th in threads:
        th.join(timeout=60)
    assert minted, "no token was minted before the change: the race never ran"
    alive = [tok for tok in minted
             if call(srv, "GET", "/api/v1/me", t.slug, token=tok).status == 200]
    assert not alive, f"{len(alive)} token(s) minted with the old password outlive its change"


# --- 4. Content-Length forms libmicrohttpd refuses before framing.c: it answers
# those itself, before any handler runs, and writes its reply head twice. That
# library bug is recorded by the strict xfail in test_responses.py
# (test_malformed_content_length_reply_well_formed) and in ADR 0002.


def test_http10_with_transfer_encoding_closes(start_server):
    """RFC 9112 6.1: a request of HTTP/1.0 with Transfer-Encoding has faulty
    framing (a 1.0 intermediary does not know chunked); the server MUST close
    after answering. Here it keeps the connection and answers the pipelined
    request that a 1.0 front end would have taken for the body."""
    srv = start_server(seed_tenant=True)
    slug = json.loads(srv.cli_ok("tenant", "list", "--json").stdout)[0]["slug"]
    head = (b"POST /api/v1/auth/login HTTP/1.0\r\nHost: " + srv.tenant_host(slug).encode() +
            b"\r\nConnection: keep-alive\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n")
    codes = exchange(srv, head + b"%x\r\n" % len(BODY) + BODY + b"\r\n0\r\n\r\n" + HEALTHZ)
    assert len(codes) == 1, f"HTTP/1.0 + Transfer-Encoding kept the connection: {codes}"
