"""An SMTP server on loopback that keeps what it is sent (Debian's
python3-aiosmtpd, under /usr/bin/python3): the mail server the suites
point Bulwark at. It can be told to answer the next messages with a
refusal (a 4xx to test retries, a 5xx to test giving up), to offer
STARTTLS and to require AUTH."""

import socket
import threading
import time
from dataclasses import dataclass

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list
    content: bytes  # the message as sent (CRLF line ends)
    helo: str = ""  # the name the client gave in EHLO/HELO


class _Handler:
    def __init__(self, sink):
        self.sink = sink

    async def handle_DATA(self, server, session, envelope):
        with self.sink.lock:
            if self.sink.refusals:
                self.sink.refusals -= 1
                self.sink.refused.append(envelope.original_content or envelope.content)
                return self.sink.refusal
            self.sink.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos),
                                               envelope.original_content or envelope.content,
                                               session.host_name or ""))
        return "250 2.0.0 kept"


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SmtpSink:
    """SmtpSink(tls_context=None, require_starttls=False, auth=None) where
    auth is (user, password): then AUTH PLAIN/LOGIN is required (after
    STARTTLS when there is a tls_context). Also a context manager:
    `with SmtpSink() as sink:` starts and stops it."""

    def __init__(self, tls_context=None, require_starttls=False, auth=None):
        self.port = _free_port()
        self.messages = []
        self.refused = []
        self.refusals = 0
        self.refusal = ""
        self.logins = []
        self.lock = threading.Lock()
        kw = {}
        if tls_context is not None:
            kw.update(tls_context=tls_context, require_starttls=require_starttls)
        if auth is not None:
            user, password = auth

            def check(server, session, envelope, mechanism, data):
                ok = isinstance(data, LoginPassword) and data.login.decode() == user \
                    and data.password.decode() == password
                with self.lock:
                    self.logins.append((mechanism, ok))
                # handled=False: aiosmtpd answers 535 itself (by default it says nothing)
                return AuthResult(success=ok, handled=False)

            kw.update(authenticator=check, auth_required=True,
                      auth_require_tls=tls_context is not None)
        self.controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port,
                                     server_hostname="mail.test", **kw)

    def start(self):
        self.controller.start()
        return self

    def stop(self):
        self.controller.stop()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def answer_next(self, n, reply):
        """Refuse the next n messages with reply ("451 4.3.0 later")."""
        with self.lock:
            self.refusals, self.refusal = n, reply

    def wait_for(self, n, timeout=20):
        """The first n messages, waiting up to timeout seconds for them."""
        deadline = time.monotonic() + timeout
        while len(self.messages) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(self.messages) >= n, f"{len(self.messages)} of {n} messages"
        return self.messages[:n]
