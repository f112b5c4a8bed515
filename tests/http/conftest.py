"""Harness for the black-box HTTP tests: the real bulwark binary over TLS.

Fixtures:
  tls_cert      session: a self-signed EC P-256 certificate for localhost
  make_cert     session: factory for further certificates (SIGHUP tests)
  start_server  function: start_server(seed_tenant=False, **overrides) ->
                Server (migrated, then started), stopped and checked (exit
                code 0, no sanitizer report) and cleaned up at teardown
  server        module: one shared Server (header_max 2048, body_max 1024)
  server_config function: server_config(migrate=True, **overrides) -> path
                of a config file like start_server's, for a server that is
                not started (but migrated and seeded unless migrate=False);
                cleaned up at teardown
  run_cli       run_cli(*args, env=..., cwd=...) -> CompletedProcess

Helpers the tests import: REPO, DRIVER, client_context, read_response,
wait_for, wait_closed, check_security_headers, check_error_body,
unique_slug, mariadb_root.

The binary is $BULWARK_BIN, else build/san/bulwark in this repository.
Every wait is bounded.

The database driver is $BULWARK_TEST_DRIVER: sqlite (the default) or
mariadb, which needs the server of `scripts/mariadb-test start DIR`
($BULWARK_TEST_MARIADB_SOCKET and $BULWARK_TEST_MARIADB_DIR). That MariaDB
may be shared with other runs: every server's tenants and control database
are removed at teardown, and the session fails if any saas* database or
bw_* account it made is left.
"""

import base64
import collections
import contextlib
import http.client
import itertools
import json
import os
import re
import secrets
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
CLI_TIMEOUT = 30.0
# The readiness probe connects from its own address so that it never uses
# up a rate-limit token or a connection slot of 127.0.0.1.
PROBE_SOURCE = "127.0.0.254"

# Which section each key the tests may override lives in.
KEY_SECTIONS = {
    "bind": "server", "port": "server", "base_domain": "server", "public_port": "server",
    "tls_cert": "server", "tls_key": "server", "threads": "server", "trusted_proxies": "server",
    "max_connections": "limits", "max_connections_per_ip": "limits",
    "connection_timeout": "limits", "header_max": "limits", "body_max": "limits",
    "header_timeout": "limits", "body_min_rate": "limits",
    "rate_per_second": "limits", "rate_burst": "limits", "drain_timeout": "limits",
    "var_dir": "paths", "level": "log", "access_log": "log",
    # [database] port is left out: the name is taken by [server] port.
    **dict.fromkeys(
        ("driver", "host", "socket", "user", "password_file", "control_db",
         "tenant_account_host", "connect_timeout", "pool_per_tenant",
         "pool_total", "pool_idle_seconds", "pool_wait_ms", "registry_refresh_ms"),
        "database"),
    "source": "keys", "file": "keys",
    **dict.fromkeys(
        ("provider", "files_dir", "infisical_url", "infisical_api", "infisical_project_id",
         "infisical_environment", "infisical_secret_path", "infisical_client_id_file",
         "infisical_client_secret_file", "infisical_ca_file", "timeout"),
        "vault"),
    **dict.fromkeys(
        ("lockout_threshold", "lockout_minutes", "session_idle_minutes",
         "session_absolute_hours", "max_concurrent_hashes", "hash_wait_ms",
         "login_rate_per_minute", "login_attempts_max_rows"),
        "auth"),
    **dict.fromkeys(
        ("clamd_socket", "clamd_timeout", "max_bytes", "archive_entries", "archive_unpacked",
         "archive_ratio", "archive_depth"),
        "files"),
    "workers": "jobs", "poll_ms": "jobs",
    **dict.fromkeys(
        ("connect_timeout_ms", "timeout_ms", "disable_after_hours", "inbound_tolerance",
         "inbound_body_max", "ca_file", "test_allow_loopback", "test_retry_seconds"),
        "webhooks"),
}
# The suite's clamd (tests/run-all starts it with scripts/clamd-test); every server scans with it.
CLAMD_SOCKET = os.environ.get("BULWARK_TEST_CLAMD_SOCKET", "")

DRIVER = os.environ.get("BULWARK_TEST_DRIVER") or "sqlite"
MARIADB_SOCKET = os.environ.get("BULWARK_TEST_MARIADB_SOCKET", "")
MARIADB_DIR = os.environ.get("BULWARK_TEST_MARIADB_DIR", "")
# Servers see CLI changes to the tenant registry this fast (ms).
REGISTRY_REFRESH_MS = 100

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


def run_bulwark(*args, cwd, env=None, input=None, timeout=CLI_TIMEOUT):
    """Run bulwark to completion -> CompletedProcess (text). stdin is input,
    else /dev/null: never a terminal. Fails on any sanitizer report."""
    stdin = {"input": input} if input is not None else {"stdin": subprocess.DEVNULL}
    proc = subprocess.run([str(BIN), *map(str, args)], cwd=cwd, env=child_env(env),
                          capture_output=True, text=True, timeout=timeout, **stdin)
    marker = sanitizer_report(proc.stderr)
    assert marker is None, f"sanitizer report ({marker}):\n{proc.stderr}"
    return proc


_used_slugs = set()
_control_dbs = itertools.count(1)
# Several sessions may share one MariaDB: each names its control databases apart.
CONTROL_DB_PREFIX = f"saas_ctl_{os.getpid()}_"


def unique_slug(prefix):
    """A valid tenant slug never handed out before in this session: MariaDB
    database and account names are global to the server."""
    assert re.fullmatch(r"[a-z][a-z0-9-]{1,20}", prefix), prefix
    while (slug := f"{prefix}-{secrets.token_hex(3)}") in _used_slugs:
        pass
    _used_slugs.add(slug)
    return slug


def mariadb_root(sql, socket_path=None):
    """Run sql as MariaDB's root (Unix socket, no password) -> rows of strings.
    socket_path defaults to the shared test server."""
    proc = subprocess.run(
        ["mariadb", "--no-defaults", "-S", str(socket_path or MARIADB_SOCKET), "-uroot",
         "-N", "-B", "-e", sql],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=CLI_TIMEOUT)
    if proc.returncode != 0:
        raise AssertionError(f"mariadb as root failed: {sql}\n{proc.stderr}")
    return [tuple(line.split("\t")) for line in proc.stdout.splitlines()]


def mariadb_dump(*databases, hex_blob=True):
    """The shared test MariaDB's databases as a dump (bytes), for at-rest checks."""
    proc = subprocess.run(
        ["mariadb-dump", "--no-defaults", "-S", str(MARIADB_SOCKET), "-uroot",
         "--skip-extended-insert", *(["--hex-blob"] if hex_blob else []), "--databases",
         *databases],
        stdin=subprocess.DEVNULL, capture_output=True, timeout=CLI_TIMEOUT)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def mariadb_leftovers():
    """What this session made in the shared MariaDB and is still there: its
    control databases, its tenants' databases and accounts."""
    ours = {f"saas_tenant_{slug}" for slug in _used_slugs} | {f"bw_{slug}" for slug in _used_slugs}
    rows = mariadb_root(
        "SELECT 'database', SCHEMA_NAME FROM information_schema.SCHEMATA"
        " WHERE SCHEMA_NAME LIKE 'saas%' UNION ALL"
        " SELECT 'account', CONCAT(User, '@', Host) FROM mysql.user WHERE User LIKE 'bw%'")
    return sorted(f"{kind} {name}" for kind, name in rows
                  if name.startswith(CONTROL_DB_PREFIX) or name.split("@")[0] in ours)


def database_settings():
    """The [database] section of a new server: its own control database."""
    settings = {"registry_refresh_ms": REGISTRY_REFRESH_MS}
    if DRIVER == "mariadb":
        settings.update(
            driver="mariadb", socket=MARIADB_SOCKET, user="bulwark",
            password_file=Path(MARIADB_DIR) / "control.pw",
            control_db=f"{CONTROL_DB_PREFIX}{next(_control_dbs)}")
    return settings


def write_master_keys(path, ids=(1,)):
    """A master key file (mode 0600) with a fresh random key per id; returns path."""
    path = Path(path)
    text = "".join(f"{i}:{base64.b64encode(os.urandom(32)).decode()}\n" for i in ids)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return path


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
    """One `bulwark serve` process with its own directory, config, logs and
    control database."""

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
            "database": database_settings(),
            "keys": {"file": write_master_keys(self.dir / "master.keys")},
            "log": {"access_log": self.access_log, "level": "debug"},
            "files": {"clamd_socket": CLAMD_SOCKET or self.dir / "no-clamd.sock"},
        }
        self.update_settings(**overrides)
        self._context = None
        self.proc = None
        self.migrated = False

    @property
    def context(self):
        """A TLS 1.3 client context trusting the server's first certificate."""
        if self._context is None:
            self._context = client_context(self.cert.cert)
        return self._context

    # --- configuration and process ------------------------------------
    def update_settings(self, **overrides):
        """key=value for the keys of KEY_SECTIONS; section__key=value for any other."""
        for key, value in overrides.items():
            section, _, name = key.rpartition("__")
            self.settings.setdefault(section or KEY_SECTIONS[name], {})[name] = value

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

    @property
    def var(self):
        return Path(self.settings["paths"]["var_dir"])

    def prepare(self, migrate=True, seed_tenant=False):
        """Write the config; unless told not to, run `bulwark migrate`;
        with seed_tenant, also create a tenant."""
        self.var.mkdir(exist_ok=True)
        self.write_config()
        if migrate:
            self.migrated = True  # from now on there may be something to clean up
            self.cli_ok("migrate")
            if seed_tenant:
                self.create_tenant("seed")

    def start(self, seed_tenant=False):
        """prepare(), then serve; returns once /healthz answers."""
        self.prepare(seed_tenant=seed_tenant)
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

    def cleanup(self):
        """Remove what the server made in MariaDB, whose databases and accounts
        outlive the test: its tenants, then its control database. Call it once
        the process has stopped. Returns a problem description or None."""
        if DRIVER != "mariadb" or not self.migrated:
            return None
        try:
            self.write_config()  # a test may have left a broken one for a reload
            for tenant in json.loads(self.cli_ok("tenant", "list", "--json").stdout):
                self.cli_ok("tenant", "delete", tenant["slug"], "--yes")
            db = self.settings["database"]
            mariadb_root(f"DROP DATABASE IF EXISTS `{db['control_db']}`", db["socket"])
        except (AssertionError, pytest.fail.Exception, ValueError, OSError,
                subprocess.SubprocessError) as exc:
            return f"cleaning up after bulwark on port {self.port}: {exc}"
        return None

    # --- command line ---------------------------------------------------
    def cli(self, *args, input=None, timeout=CLI_TIMEOUT):
        """bulwark *args -c <this server's config> -> CompletedProcess."""
        return run_bulwark(*args, "-c", self.conf, cwd=self.dir, input=input, timeout=timeout)

    def cli_ok(self, *args, **kwargs):
        """Like cli(), but the command must succeed."""
        proc = self.cli(*args, **kwargs)
        if proc.returncode != 0:
            pytest.fail(f"bulwark {' '.join(map(str, args))} exited {proc.returncode}:\n"
                        f"{proc.stdout}{proc.stderr}", pytrace=False)
        return proc

    def create_tenant(self, prefix="t"):
        """Create a tenant with a fresh slug starting with prefix -> the slug."""
        slug = unique_slug(prefix)
        self.cli_ok("tenant", "create", slug, "--admin-email", f"admin@{slug}.example.com")
        return slug

    def tenant_host(self, host):
        """The Host header for host: a slug, or already a whole host."""
        if "." in host:
            return host
        return f"{host}.{self.settings['server'].get('base_domain', 'localhost')}:{self.port}"

    # --- logs -----------------------------------------------------------
    def stderr(self):
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""

    def access_entries(self):
        """The access log as a list of parsed JSON lines: whole lines only (the
        server may be writing the last one while it is read)."""
        if not self.access_log.exists():
            return []
        text = self.access_log.read_text()
        whole = text[:text.rfind("\n") + 1]
        return [json.loads(line) for line in whole.splitlines() if line]

    def wait_stderr(self, text, timeout=IO_TIMEOUT):
        return wait_for(lambda: text in self.stderr(), timeout)

    def logged(self, request_ids, timeout=IO_TIMEOUT):
        """The access log entries of request_ids, once every one has been written."""
        def entries():
            found = [e for e in self.access_entries() if e.get("request_id") in request_ids]
            return found if {e["request_id"] for e in found} >= set(request_ids) else None
        found = wait_for(entries, timeout)
        assert found, f"not all of {request_ids} logged:\n{self.access_log.read_text()}"
        return found

    # --- clients --------------------------------------------------------
    def connection(self, source=None, timeout=IO_TIMEOUT, context=None):
        """An unopened keep-alive HTTPSConnection to this server."""
        return http.client.HTTPSConnection(
            "127.0.0.1", self.port, timeout=timeout, context=context or self.context,
            source_address=(source, 0) if source else None)

    def request(self, method, path, headers=None, body=None, source=None, conn=None,
                timeout=IO_TIMEOUT, context=None, host=None):
        """One request -> Response(status, headers, JSON or bytes).

        On a fresh connection unless conn (kept open) is given. host (a
        tenant slug or a whole host) sets the Host header, see tenant_host()."""
        headers = dict(headers or {})
        if host is not None:
            headers["Host"] = self.tenant_host(host)
        own = conn is None
        if own:
            conn = self.connection(source, timeout, context)
        try:
            conn.request(method, path, body=body, headers=headers)
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
    """A make(**overrides) -> Server factory (not started). On exit every
    server is stopped and checked, then cleaned up."""
    made = []

    def make(**overrides):
        srv = Server(tmp_path_factory.mktemp("bulwark"), cert, overrides)
        made.append(srv)
        return srv

    try:
        yield make
    finally:  # also when start-up failed: leave no process behind
        problems = [srv.stop() for srv in made]
        problems += [srv.cleanup() for srv in made]
    if any(problems):
        pytest.fail("\n\n".join(filter(None, problems)), pytrace=False)


@pytest.fixture(scope="session", autouse=True)
def _binary():
    if not os.access(BIN, os.X_OK):
        pytest.exit(f"{BIN} not found: run 'make _all _san' first (or set BULWARK_BIN)",
                    returncode=2)


@pytest.fixture(scope="session", autouse=True)
def _database():
    """Check the driver settings; on MariaDB, fail the session if it leaves
    any saas* database or bw_* account of its own behind."""
    if DRIVER == "sqlite":
        yield
        return
    if DRIVER != "mariadb":
        pytest.exit(f"BULWARK_TEST_DRIVER={DRIVER!r}: say sqlite or mariadb", returncode=2)
    missing = [name for name, value in (("BULWARK_TEST_MARIADB_SOCKET", MARIADB_SOCKET),
                                        ("BULWARK_TEST_MARIADB_DIR", MARIADB_DIR)) if not value]
    if missing:
        pytest.exit(f"BULWARK_TEST_DRIVER=mariadb needs {' and '.join(missing)}: start a "
                    "server with eval \"$(scripts/mariadb-test start DIR)\" and export the "
                    "BULWARK_TEST_MARIADB_* variables it prints", returncode=2)
    try:
        mariadb_root("SELECT 1")
    except AssertionError as exc:
        pytest.exit(f"the test MariaDB at {MARIADB_SOCKET} does not answer: {exc}",
                    returncode=2)
    yield
    left = mariadb_leftovers()
    if left:
        pytest.fail("the tests left these behind in MariaDB:\n  " + "\n  ".join(left),
                    pytrace=False)


@pytest.fixture(scope="session")
def make_cert(tmp_path_factory):
    return lambda cn="localhost": make_certificate(tmp_path_factory.mktemp("tls"), cn)


@pytest.fixture(scope="session")
def tls_cert(make_cert):
    return make_cert()


@pytest.fixture
def start_server(tmp_path_factory, tls_cert):
    with _servers(tmp_path_factory, tls_cert) as make:
        yield lambda seed_tenant=False, **overrides: make(**overrides).start(seed_tenant)


@pytest.fixture(scope="module")
def server(tmp_path_factory, tls_cert):
    """Shared by a module's tests that need no special limits; small header
    and body limits make 431 and 413 cheap to provoke."""
    with _servers(tmp_path_factory, tls_cert) as make:
        yield make(header_max=2048, body_max=1024).start()


@pytest.fixture
def server_config(tmp_path_factory, tls_cert):
    """server_config(migrate=True, **overrides) -> the config file of a server
    that is not started; see Server.prepare() for what migrate does."""
    with _servers(tmp_path_factory, tls_cert) as make:
        def write(migrate=True, **overrides):
            srv = make(**overrides)
            srv.prepare(migrate)
            return srv.conf

        yield write


@pytest.fixture
def run_cli(tmp_path):
    """run_cli(*args, env=None, cwd=None, timeout=10): bulwark's exit code and
    output; cwd defaults to an empty directory so no ./bulwark.conf is read."""
    return lambda *args, env=None, cwd=None, timeout=10: run_bulwark(
        *args, cwd=cwd or tmp_path, env=env, timeout=timeout)


# The longest files first (their MariaDB run times, longest first): pytest-xdist
# hands whole files to workers in collection order (--dist loadfile), so a
# long file collected late would run alone at the end while the other
# workers wait. Longest-first keeps make check's HTTP lanes short. Files not
# named keep their order after these; the order of tests in a file is kept.
LONG_FILES = ("test_identity", "test_identity_lookalike", "test_rbac", "test_tenancy",
              "test_audit", "test_review_attacks", "test_reauth", "test_modules", "test_mfa",
              "test_keys", "test_reauth_race", "test_allowlist", "test_limits",
              "test_audit_routes", "test_allowlist_scope", "test_conventions")


def pytest_collection_modifyitems(session, config, items):
    rank = {name: i for i, name in enumerate(LONG_FILES)}
    items.sort(key=lambda it: rank.get(it.module.__name__.rsplit(".", 1)[-1], len(rank)))
