"""The suite's IMAP server (tests/http/imap_server.py) on its own, before
e-mail to ticket (issue 18) is tested against it: TLS only, the password
required, what is delivered there read back, by Python's imaplib and by
curl's IMAP, the client library Bulwark uses."""

import imaplib
import socket
import ssl
import subprocess

import pytest

from imap_server import ImapServer

MESSAGE = (b"From: ana@customer.example.test\r\nTo: support@msp.example.test\r\n"
           b"Subject: The printer is on fire\r\nMessage-ID: <p1@customer.example.test>\r\n"
           b"\r\nPlease help.\r\n")


@pytest.fixture(scope="module")
def imap(tls_cert):
    s = ImapServer(tls_cert)
    try:
        yield s
    finally:
        s.stop()


def test_delivered_then_read_back(imap):
    imap.deliver(MESSAGE)
    c = imap.client()
    try:
        c.select("INBOX")
        typ, data = c.search(None, "UNSEEN")
        assert typ == "OK" and data[0].split(), data
        typ, got = c.fetch(data[0].split()[-1], "(BODY.PEEK[])")
        assert typ == "OK" and got[0][1] == MESSAGE, got
    finally:
        c.logout()
    # curl speaks IMAP over TLS to it too, with the suite's CA.
    url = f"imaps://127.0.0.1:{imap.port}/INBOX;UID=1"
    r = subprocess.run(["curl", "-s", "--max-time", "10", "--cacert", str(imap.cert.cert),
                        "--user", f"{imap.user}:{imap.password}", url],
                       capture_output=True, timeout=20)
    assert r.returncode == 0 and b"The printer is on fire" in r.stdout, r


def test_no_plain_imap_and_no_wrong_password(imap):
    # Plain text on the port: no greeting in clear.
    with socket.create_connection(("127.0.0.1", imap.port), timeout=5) as s:
        s.sendall(b"a1 CAPABILITY\r\n")
        s.settimeout(2)
        try:
            reply = s.recv(100)
        except socket.timeout:
            reply = b""
        assert not reply.startswith(b"* OK"), reply
    ctx = ssl.create_default_context(cafile=str(imap.cert.cert))
    c = imaplib.IMAP4_SSL("127.0.0.1", imap.port, ssl_context=ctx, timeout=10)
    with pytest.raises(imaplib.IMAP4.error) as refused:
        c.login(imap.user, "not the password")
    assert b"AUTHENTICATIONFAILED" in str(refused.value).encode(), refused.value
    c.shutdown()
    imap.client().logout()  # the right one is taken
