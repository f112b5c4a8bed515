"""Harness for the black-box HTTP tests: the real bulwark binary over TLS.

Fixtures:
  tls_cert      session: a self-signed EC P-256 certificate for localhost
  make_cert     session: factory for further certificates (SIGHUP tests)
  start_server  function: start_server(**overrides) -> Server, stopped and
                checked (exit code 0, no sanitizer report) at teardown
  server        module: one shared Server (header_max 2048, body_max 1024)
  server_config function: server_config(**overrides) -> path of a config
                file like start_server's, for a server that is not started
  run_cli       run_cli(*args, env=..., cwd=...) -> CompletedProcess

Helpers the tests import: REPO, client_context, read_response, wait_for,
wait_closed, check_security_headers, check_error_body.

The binary is $BULWARK_BIN, else build/san/bulwark in this repository.
Every wait is bounded.
"""

import collections
import contextlib
import http.client
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("BULWARK_BIN") or REPO / "build" / "san" / "bulwark").absolute()
SANITIZER_MARKERS = ("AddressSanitizer", "LeakSanitizer", "runtime error:")
START_TIMEOUT = 10.0
STOP_TIMEOUT = 15.0
IO_TIMEOUT = 5.0
# The readiness probe connects from its own address so that it never uses
# up a rate-limit token or a connection slot of 127.0.0.1.
PROBE_SOURCE = "127.0.0.254"

# Which section each key the tests may override lives in.
KEY_SECTIONS = {
    "bind": "server", "port": "server", "base_domain": "server",
    "tls_cert": "server", "tls_key": "server", "threads": "server",
    "max_connections": "limits", "max_connections_per_ip": "limits",
    "connection_timeout": "limits", "header_max": "limits", "body_max": "limits",
    "rate_per_second": "limits", "rate_burst": "limits", "drain_timeout": "limits",
    "var_dir": "paths", "level": "log", "access_log": "log",
}

Cert = collections.namedtuple("Cert", "cert key der")
Response = collections.namedtuple("Response", "status headers body")


def child_env(extra=None):
    """The environment for bulwark: no stray BULWARK_* settings, sanitizers strict."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BULWARK_")}
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:halt_on_error=1:strict_string_checks=1")
    env.setdefault("UBSAN_OPTIONS", "halt_on_error=1:print_stacktrace=1")
    env.update(extra or {})
    return env


def sanitizer_report(text):
    """The first sanitizer marker found in text, or None."""
    return next((m for m in SANITIZER_MARKERS if m in text), None)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def client_context(*cafiles):
    """A TLS 1.3 client context trusting exactly the given certificates."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    for ca in cafiles:
        ctx.load_verify_locations(cafile=str(ca))
    return ctx


def parse_response(resp):
    """(status, lower-cased headers, JSON or raw bytes) of an http.client response."""
    raw = resp.read()
    headers = {k.lower(): v for k, v in resp.getheaders()}
    body = raw
    if raw and headers.get("content-type", "").startswith("application/json"):
        body = json.loads(raw)
    return Response(resp.status, headers, body)


def read_response(sock, method="GET"):
    """Read one HTTP response from an already connected (TLS) socket."""
    resp = http.client.HTTPResponse(sock, method=method)
    resp.begin()
    return parse_response(resp)


def wait_closed(sock, timeout):
    """Seconds until the peer closes or resets sock (data read is discarded),
    or None if it is still open after timeout seconds."""
    start = time.monotonic()
    deadline = start + timeout
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            if not sock.recv(4096):
                break
        except TimeoutError:
            return None
        except OSError:  # reset, TLS EOF or alert
            break
    else:
        return None
    return time.monotonic() - start


def check_security_headers(resp):
    """The headers the server must put on every reply it builds."""
    h = resp.headers
    hsts = h.get("strict-transport-security", "")
    max_age = re.search(r"(?i)\bmax-age=(\d+)", hsts)
    assert max_age and int(max_age.group(1)) >= 31536000, f"HSTS: {hsts!r}"
    assert "includesubdomains" in hsts.lower(), f"HSTS: {hsts!r}"
    csp = h.get("content-security-policy", "")
    directives = {d.split()[0].lower(): d.split()[1:] for d in csp.split(";") if d.strip()}
    assert directives.get("default-src") == ["'self'"], f"CSP: {csp!r}"
    assert directives.get("frame-ancestors") == ["'none'"], f"CSP: {csp!r}"
    assert h.get("x-content-type-options") == "nosniff"
    assert h.get("referrer-policy"), "no Referrer-Policy"
    assert h.get("cache-control") == "no-store"
    assert h.get("content-type") == "application/json"
    assert h.get("x-request-id"), "no X-Request-Id"


def check_error_body(resp, status, code):
    """resp is a JSON error: {"error":{"code","message","request_id"}}."""
    assert resp.status == status, resp
    assert isinstance(resp.body, dict) and set(resp.body) == {"error"}, resp.body
    err = resp.body["error"]
    assert set(err) == {"code", "message", "request_id"}, err
    assert err["code"] == code, err
    assert isinstance(err["message"], str) and err["message"], err
    assert err["request_id"] == resp.headers.get("x-request-id"), (err, resp.headers)


def wait_for(predicate, timeout, interval=0.05):
    """Poll predicate until it returns something true or timeout passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def make_certificate(directory, cn="localhost"):
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-days", "2", "-subj", f"/CN={cn}",
         "-addext", "subjectAltName=DNS:localhost,DNS:*.localhost,IP:127.0.0.1,IP:::1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=30)
    key.chmod(0o600)
    return Cert(cert, key, ssl.PEM_cert_to_DER_cert(cert.read_text()))


class Server:
    """One `bulwark serve` process with its own directory, config and logs."""

    def __init__(self, workdir, cert, overrides):
        self.dir = Path(workdir)
        self.cert = cert
        self.port = free_port()
        self.conf = self.dir / "bulwark.conf"
        self.stdout_path = self.dir / "stdout.log"
        self.stderr_path = self.dir / "stderr.log"
        self.access_log = self.dir / "access.log"
        self.settings = {
            "server": {"bind": "127.0.0.1", "port": self.port,
                       "tls_cert": cert.cert, "tls_key": cert.key},
            "limits": {"rate_per_second": 0, "drain_timeout": 5},
            "paths": {"var_dir": self.dir / "var"},
            "log": {"access_log": self.access_log, "level": "debug"},
        }
        self.update_settings(**overrides)
        self._context = None
        self.proc = None

    @property
    def context(self):
        """A TLS 1.3 client context trusting the server's first certificate."""
        if self._context is None:
            self._context = client_context(self.cert.cert)
        return self._context

    # --- configuration and process ------------------------------------
    def update_settings(self, **overrides):
        for key, value in overrides.items():
            self.settings[KEY_SECTIONS[key]][key] = value

    def write_config(self, extra_text=""):
        """Write the config atomically (a reload must never see half a file)."""
        lines = []
        for section, values in self.settings.items():
            lines.append(f"[{section}]")
            lines += [f"{k} = {v}" for k, v in values.items()]
            lines.append("")
        tmp = self.conf.with_suffix(".tmp")
        tmp.write_text("\n".join(lines) + extra_text)
        tmp.replace(self.conf)

    def start(self):
        (self.dir / "var").mkdir(exist_ok=True)
        self.write_config()
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                [str(BIN), "serve", "-c", str(self.conf)], cwd=self.dir, env=child_env(),
                stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                self._start_failed(f"bulwark exited with {self.proc.returncode} at start-up")
            with contextlib.suppress(OSError, http.client.HTTPException):
                if self.request("GET", "/healthz", source=PROBE_SOURCE, timeout=1).status == 200:
                    return self
            if time.monotonic() > deadline:
                self._start_failed(f"bulwark did not answer /healthz within {START_TIMEOUT}s")
            time.sleep(0.05)

    def _start_failed(self, why):
        if self.alive():
            self.proc.kill()
            self.proc.wait(timeout=STOP_TIMEOUT)
        self.proc = None  # reported here: stop() has nothing left to check
        pytest.fail(f"{why}:\n{self.stderr()}", pytrace=False)

    def signal(self, sig):
        self.proc.send_signal(sig)

    def wait_exit(self, timeout):
        """The exit code, or None if still running after timeout seconds."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        """SIGTERM if running; returns a problem description or None."""
        if self.proc is None:
            return None
        if self.alive():
            self.signal(signal.SIGTERM)
        rc = self.wait_exit(STOP_TIMEOUT)
        if rc is None:
            self.proc.kill()
            self.proc.wait(timeout=STOP_TIMEOUT)
            return (f"bulwark on port {self.port} ignored SIGTERM for {STOP_TIMEOUT}s:\n"
                    f"{self.stderr()}")
        marker = sanitizer_report(self.stderr())
        if rc != 0 or marker:
            return (f"bulwark on port {self.port} exited {rc}"
                    f"{' with a sanitizer report (' + marker + ')' if marker else ''}:\n"
                    f"{self.stderr()}")
        return None

    # --- logs -----------------------------------------------------------
    def stderr(self):
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""

    def access_entries(self):
        """The access log as a list of parsed JSON lines."""
        if not self.access_log.exists():
            return []
        return [json.loads(line) for line in self.access_log.read_text().splitlines() if line]

    def wait_stderr(self, text, timeout=IO_TIMEOUT):
        return wait_for(lambda: text in self.stderr(), timeout)

    # --- clients --------------------------------------------------------
    def connection(self, source=None, timeout=IO_TIMEOUT, context=None):
        """An unopened keep-alive HTTPSConnection to this server."""
        return http.client.HTTPSConnection(
            "127.0.0.1", self.port, timeout=timeout, context=context or self.context,
            source_address=(source, 0) if source else None)

    def request(self, method, path, headers=None, body=None, source=None, conn=None,
                timeout=IO_TIMEOUT, context=None):
        """One request -> Response(status, headers, JSON or bytes).

        On a fresh connection unless conn (kept open) is given."""
        own = conn is None
        if own:
            conn = self.connection(source, timeout, context)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            return parse_response(conn.getresponse())
        finally:
            if own:
                conn.close()

    def raw_tls_socket(self, source=None, timeout=IO_TIMEOUT, context=None):
        """A TLS socket with the handshake done, for hand-written requests."""
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=timeout,
                                        source_address=(source, 0) if source else None)
        try:
            return (context or self.context).wrap_socket(sock, server_hostname="localhost")
        except BaseException:
            sock.close()
            raise

    def connect_outcome(self, source=None, timeout=IO_TIMEOUT, context=None):
        """Open a new TLS connection and send GET /healthz: "served" if any
        reply comes, "refused" if the connection is refused, reset or closed
        first, "hung" if nothing happens within timeout."""
        try:
            with self.raw_tls_socket(source, timeout, context) as sock:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
                return "served" if sock.recv(1) else "refused"
        except TimeoutError:
            return "hung"
        except OSError:
            return "refused"

    def raw_request(self, data, source=None, method="GET"):
        """Send raw bytes over a fresh TLS connection and read the response."""
        with self.raw_tls_socket(source) as sock:
            sock.sendall(data)
            return read_response(sock, method)


@contextlib.contextmanager
def _servers(tmp_path_factory, cert):
    """A start(**overrides) factory whose servers are all checked on exit."""
    started = []

    def start(**overrides):
        srv = Server(tmp_path_factory.mktemp("bulwark"), cert, overrides)
        started.append(srv)
        return srv.start()

    try:
        yield start
    finally:  # also when start-up failed: leave no process behind
        problems = [p for p in (srv.stop() for srv in started) if p]
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


@pytest.fixture(scope="session", autouse=True)
def _binary():
    if not os.access(BIN, os.X_OK):
        pytest.exit(f"{BIN} not found: run 'make _all _san' first (or set BULWARK_BIN)",
                    returncode=2)


@pytest.fixture(scope="session")
def make_cert(tmp_path_factory):
    return lambda cn="localhost": make_certificate(tmp_path_factory.mktemp("tls"), cn)


@pytest.fixture(scope="session")
def tls_cert(make_cert):
    return make_cert()


@pytest.fixture
def start_server(tmp_path_factory, tls_cert):
    with _servers(tmp_path_factory, tls_cert) as start:
        yield start


@pytest.fixture(scope="module")
def server(tmp_path_factory, tls_cert):
    """Shared by a module's tests that need no special limits; small header
    and body limits make 431 and 413 cheap to provoke."""
    with _servers(tmp_path_factory, tls_cert) as start:
        yield start(header_max=2048, body_max=1024)


@pytest.fixture
def server_config(tmp_path_factory, tls_cert):
    def write(**overrides):
        srv = Server(tmp_path_factory.mktemp("conf"), tls_cert, overrides)
        srv.write_config()
        return srv.conf

    return write


@pytest.fixture
def run_cli(tmp_path):
    """run_cli(*args, env=None, cwd=None, timeout=10): bulwark's exit code and
    output; cwd defaults to an empty directory so no ./bulwark.conf is read."""

    def run(*args, env=None, cwd=None, timeout=10):
        proc = subprocess.run([str(BIN), *map(str, args)], cwd=cwd or tmp_path,
                              env=child_env(env), stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=timeout)
        marker = sanitizer_report(proc.stderr)
        assert marker is None, f"sanitizer report ({marker}):\n{proc.stderr}"
        return proc

    return run
