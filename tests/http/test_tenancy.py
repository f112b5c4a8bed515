"""Tenancy: routing by Host, isolation of tenant databases, the tenant and
migrate commands, and database outages.

Servers see the CLI's registry changes within registry_refresh_ms (100 ms
in these tests), so whatever follows a change is polled for, within bounds.
"""

import contextlib
import json
import os
import pwd
import re
import shutil
import sqlite3
import subprocess
import time

import pytest

from conftest import (DRIVER, REPO, STOP_TIMEOUT, check_error_body, check_security_headers,
                      mariadb_root, unique_slug, wait_for)

HEALTH = "/api/v1/tenant/health"
# Four groups of five from the generator's alphabet (no 0, 1, i, l or o).
ONE_TIME_PASSWORD = re.compile(r"one-time password: ([a-z2-9]{5}(?:-[a-z2-9]{5}){3})$", re.M)
CHANGE_TIMEOUT = 5.0  # for a CLI change to reach a server (registry_refresh_ms is 100)

mariadb_only = pytest.mark.skipif(DRIVER != "mariadb", reason="MariaDB driver only")


def health(srv, host=None):
    return srv.request("GET", HEALTH, host=host)


def poll_health(srv, host, accept, timeout=CHANGE_TIMEOUT):
    """Poll the tenant health route of host until accept(status); that reply."""
    replies = []
    wait_for(lambda: replies.append(health(srv, host)) or accept(replies[-1].status), timeout)
    assert accept(replies[-1].status), f"{host}: still {replies[-1]} after {timeout}s"
    return replies[-1]


def wait_health(srv, host, status, timeout=CHANGE_TIMEOUT):
    return poll_health(srv, host, lambda s: s == status, timeout)


def wait_registered(srv, slug):
    """The first reply for a new tenant once the server knows it (no 404)."""
    return poll_health(srv, slug, lambda s: s != 404)


def check_healthy(resp, slug):
    assert resp.status == 200, resp
    body = resp.body
    assert isinstance(body, dict) and set(body) == {"tenant", "database", "schema_version"}, body
    assert (body["tenant"], body["database"]) == (slug, "ok"), body
    assert isinstance(body["schema_version"], int) and body["schema_version"] >= 1, body


def tenants(srv):
    """`bulwark tenant list --json` as {slug: entry}."""
    return {t["slug"]: t for t in json.loads(srv.cli_ok("tenant", "list", "--json").stdout)}


def sqlite_path(srv, slug):
    return srv.var / "tenants" / f"{slug}.db"


def tenant_sql(srv, slug, sql):
    """Run sql in the tenant's own database behind bulwark's back (as
    MariaDB's root) -> rows of strings."""
    if DRIVER == "mariadb":
        return mariadb_root(f"USE `saas_tenant_{slug}`; {sql}")
    path = sqlite_path(srv, slug)
    assert path.exists(), path
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        return [tuple(map(str, row)) for row in db.execute(sql)]


def tenant_storage(srv, slug):
    """What holds the tenant's data: files on SQLite, database and account on MariaDB."""
    if DRIVER == "mariadb":
        return mariadb_root(
            f"SELECT SCHEMA_NAME FROM information_schema.SCHEMATA"
            f" WHERE SCHEMA_NAME = 'saas_tenant_{slug}' UNION ALL"
            f" SELECT CONCAT(User, '@', Host) FROM mysql.user WHERE User = 'bw_{slug}'")
    return sorted(p.name for p in sqlite_path(srv, slug).parent.glob(f"{slug}.db*"))


def make_unreachable(srv, slug):
    """Take the tenant's database away: its file on SQLite, its account on MariaDB."""
    if DRIVER == "mariadb":
        mariadb_root(f"DROP USER 'bw_{slug}'@'%'")
        return
    path = sqlite_path(srv, slug)
    assert path.exists(), path
    for suffix in ("", "-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)


# --- routing by Host -------------------------------------------------------------

def test_tenant_host_routed(server):
    slug = server.create_tenant("route")
    resp = wait_health(server, slug, 200)
    check_healthy(resp, slug)
    check_security_headers(resp)
    other = server.create_tenant("route")
    check_healthy(wait_health(server, other, 200), other)
    check_healthy(health(server, slug), slug)


def test_unknown_tenant_not_found(server):
    check_error_body(health(server, unique_slug("ghost")), 404, "not_found")


def test_tenant_route_needs_tenant_host_but_healthz_does_not(server):
    slug = server.create_tenant("plain")
    wait_health(server, slug, 200)
    check_error_body(health(server), 404, "not_found")  # Host: 127.0.0.1:<port>
    for host in (None, slug, unique_slug("ghost")):
        resp = server.request("GET", "/healthz", host=host)
        assert resp.status == 200 and resp.body == {"status": "ok"}, (host, resp)


def test_host_is_case_insensitive(server):
    slug = server.create_tenant("case")
    wait_health(server, slug, 200)
    check_healthy(health(server, f"{slug.upper()}.LocalHost:{server.port}"), slug)


@pytest.mark.parametrize("template", ["{slug}.localhost.evil.com", "{slug}.evil.com",
                                      "www.{slug}.localhost", "{slug}.localhostevil.com",
                                      "{slug}.localhost:443x", "{slug}-localhost"])
def test_lookalike_host_not_routed(server, template):
    slug = server.create_tenant("look")
    wait_health(server, slug, 200)
    check_error_body(health(server, template.format(slug=slug)), 404, "not_found")


def test_suspend_and_resume(server):
    slug = server.create_tenant("susp")
    wait_health(server, slug, 200)
    assert "suspended" in server.cli_ok("tenant", "suspend", slug).stdout
    check_error_body(wait_health(server, slug, 403), 403, "forbidden")
    assert tenants(server)[slug]["state"] == "suspended"
    server.cli_ok("tenant", "resume", slug)
    check_healthy(wait_health(server, slug, 200), slug)
    assert tenants(server)[slug]["state"] == "active"


def test_delete(server):
    slug = server.create_tenant("del")
    wait_health(server, slug, 200)
    assert tenant_storage(server, slug)
    server.cli_ok("tenant", "delete", slug, "--yes")
    check_error_body(wait_health(server, slug, 404), 404, "not_found")
    assert slug not in tenants(server)
    assert tenant_storage(server, slug) == []


# --- isolation ------------------------------------------------------------------

def test_unreachable_tenant_database_isolated(start_server):
    # No job runner: its ticks visit every tenant and would pool one of b's
    # connections before make_unreachable can take b's database away.
    srv = start_server(workers=0)
    a, b = srv.create_tenant("iso-a"), srv.create_tenant("iso-b")
    make_unreachable(srv, b)  # before any request to b: nothing of it is pooled
    wait_health(srv, a, 200)
    wait_registered(srv, b)
    sent = {}
    for _ in range(20):
        for slug, status in ((a, 200), (b, 503)):
            resp = health(srv, slug)
            assert resp.status == status, (slug, resp)
            if slug == a:
                check_healthy(resp, a)
            else:
                check_error_body(resp, 503, "unavailable")
            sent[resp.headers["x-request-id"]] = slug, status
    assert srv.request("GET", "/healthz").status == 200
    assert srv.alive()
    for entry in srv.logged(sent):
        assert (entry["tenant"], entry["status"]) == sent[entry["request_id"]], entry
        assert entry["path"] == HEALTH, entry


def test_lost_schema_seen_through_pooled_connection(start_server):
    srv = start_server()
    slug = srv.create_tenant("pooled")
    wait_health(srv, slug, 200)  # one of its connections is pooled now
    tenant_sql(srv, slug, "DELETE FROM schema_migrations")
    check_error_body(health(srv, slug), 503, "unavailable")


def test_recreated_tenant_not_served_from_deleted_database(start_server):
    srv = start_server()
    slug = srv.create_tenant("again")
    wait_health(srv, slug, 200)  # one of its connections is pooled now
    srv.cli_ok("tenant", "delete", slug, "--yes")
    wait_health(srv, slug, 404)
    srv.cli_ok("tenant", "create", slug, "--admin-email", "new@example.com")
    # The new tenant's database is out of reach before any request for it:
    # whatever answers 200 now is some other database.
    make_unreachable(srv, slug)
    check_error_body(wait_registered(srv, slug), 503, "unavailable")


# --- the tenant command -----------------------------------------------------------

@pytest.mark.parametrize("slug, problem", [
    ("ab", "3 to 32 characters"),
    ("Bad_Name", "only a-z, 0-9 and inner '-'"),
    ("www", "reserved"),
    # A leading '-' makes it an option to the command line, never a name.
    ("-x-", "unknown option '-x-'"),
    ("end-", "only a-z, 0-9 and inner '-'"),
    ("a" * 33, "3 to 32 characters"),
])
def test_create_refuses_bad_name(server, slug, problem):
    proc = server.cli("tenant", "create", slug, "--admin-email", "admin@example.com")
    assert proc.returncode != 0, proc
    assert problem in proc.stderr, proc.stderr
    assert slug not in tenants(server)


def test_create_refuses_duplicate(server):
    slug = server.create_tenant("dup")
    proc = server.cli("tenant", "create", slug, "--admin-email", "other@example.com")
    assert proc.returncode != 0, proc
    assert "already exists" in proc.stderr, proc.stderr
    # The failed attempt removed nothing of the tenant that was there.
    check_healthy(wait_health(server, slug, 200), slug)
    assert tenant_sql(server, slug, "SELECT email FROM users") == [(f"admin@{slug}.example.com",)]


@pytest.mark.parametrize("email", ["not-an-address", "two@at@example.com", "a b@example.com",
                                   "nodomain@localhost"])
def test_create_refuses_bad_email(server, email):
    slug = unique_slug("mail")
    proc = server.cli("tenant", "create", slug, "--admin-email", email)
    assert proc.returncode != 0, proc
    assert "e-mail" in proc.stderr and email in proc.stderr, proc.stderr
    assert slug not in tenants(server)
    assert tenant_storage(server, slug) == []


def admin_row(srv, slug):
    rows = tenant_sql(srv, slug, "SELECT email, password_hash, must_change_password FROM users")
    assert len(rows) == 1, rows
    return rows[0]


def test_create_prints_one_time_password_once(server):
    slug = unique_slug("otp")
    proc = server.cli_ok("tenant", "create", slug, "--admin-email", "boss@example.com")
    found = ONE_TIME_PASSWORD.findall(proc.stdout)
    assert len(found) == 1, proc.stdout
    password = found[0]
    assert proc.stdout.count(password) == 1 and password not in proc.stderr
    email, hashed, must_change = admin_row(server, slug)
    assert (email, must_change) == ("boss@example.com", "1")
    assert hashed.startswith("$argon2id$") and password not in hashed, hashed
    if DRIVER == "sqlite":
        secret = password.encode()
        holding = [p for p in server.var.rglob("*") if p.is_file() and secret in p.read_bytes()]
        assert holding == [], f"the one-time password is stored in {holding}"


def test_create_with_password_file(server, tmp_path):
    password = "correct-horse-battery-staple"
    pwfile = tmp_path / "admin.pw"
    pwfile.write_text(password + "\n")
    pwfile.chmod(0o600)
    slug = unique_slug("pwf")
    proc = server.cli_ok("tenant", "create", slug, "--admin-email", "boss@example.com",
                         "--admin-password-file", pwfile)
    assert "password" not in proc.stdout.lower() and password not in proc.stdout + proc.stderr, \
        proc.stdout
    email, hashed, must_change = admin_row(server, slug)
    assert (email, must_change) == ("boss@example.com", "0")
    assert hashed.startswith("$argon2id$") and password not in hashed, hashed
    check_healthy(wait_health(server, slug, 200), slug)


def test_create_refuses_short_password(server, tmp_path):
    pwfile = tmp_path / "short.pw"
    pwfile.write_text("elevenchars\n")
    slug = unique_slug("short")
    proc = server.cli("tenant", "create", slug, "--admin-email", "boss@example.com",
                      "--admin-password-file", pwfile)
    assert proc.returncode != 0, proc
    assert "12 to 1024 characters" in proc.stderr, proc.stderr
    assert slug not in tenants(server)


def test_list_json(server):
    active = server.create_tenant("list")
    suspended = unique_slug("list")
    server.cli_ok("tenant", "create", suspended, "--admin-email", "boss@example.com",
                  "--plan", "professional")
    server.cli_ok("tenant", "suspend", suspended)
    listed = tenants(server)
    assert {k: listed[active][k] for k in ("slug", "state", "plan")} == \
        {"slug": active, "state": "active", "plan": "standard"}, listed[active]
    assert {k: listed[suspended][k] for k in ("slug", "state", "plan")} == \
        {"slug": suspended, "state": "suspended", "plan": "professional"}, listed[suspended]
    for entry in (listed[active], listed[suspended]):
        assert re.fullmatch(r"20\d\d-\d\d-\d\dT\d\d:\d\d:\d\dZ", entry["created_at"]), entry


@pytest.mark.parametrize("type_name", [False, True], ids=["no-input", "name-piped"])
def test_delete_without_yes_refused_off_terminal(server, type_name):
    slug = server.create_tenant("keep")
    # Not even the confirmation it asks a terminal for will do from a pipe.
    proc = server.cli("tenant", "delete", slug, input=f"{slug}\n" if type_name else None)
    assert proc.returncode != 0, proc
    assert "--yes" in proc.stderr, proc.stderr
    assert tenants(server)[slug]["state"] == "active"
    assert tenant_storage(server, slug)
    check_healthy(wait_health(server, slug, 200), slug)


# --- migrate ----------------------------------------------------------------------

def test_migrate_again_then_failing_tenant(start_server):
    srv = start_server()
    a, b = srv.create_tenant("mig-a"), srv.create_tenant("mig-b")
    again = srv.cli_ok("migrate")
    assert "control database: up to date" in again.stdout, again.stdout
    for slug in (a, b):
        assert re.search(rf"^\[\d+/\d+\] {slug}: up to date", again.stdout, re.M), again.stdout
    wait_health(srv, a, 200)

    tenant_sql(srv, b, "DELETE FROM schema_migrations")  # b no longer records its schema
    failed = srv.cli("migrate")
    assert failed.returncode != 0, failed
    assert f"tenant {b}:" in failed.stderr, failed.stderr
    assert "CREATE TABLE settings" in failed.stderr, failed.stderr
    check_healthy(health(srv, a), a)
    check_error_body(wait_registered(srv, b), 503, "unavailable")
    assert srv.alive()


def test_serve_needs_migrate(server_config, run_cli):
    proc = run_cli("serve", "-c", server_config(migrate=False))
    assert proc.returncode != 0, proc
    assert "bulwark migrate" in proc.stderr, proc.stderr


def test_serve_with_no_tenants(start_server):
    srv = start_server(seed_tenant=False)
    check_error_body(health(srv), 404, "not_found")
    slug = srv.create_tenant("only")
    wait_health(srv, slug, 200)
    srv.cli_ok("tenant", "delete", slug, "--yes")
    wait_health(srv, slug, 404)
    time.sleep(0.3)  # a few more registry refreshes with no tenant at all
    assert srv.request("GET", "/healthz").status == 200


# --- MariaDB outages -------------------------------------------------------------

@mariadb_only
def test_serve_without_mariadb(server_config, run_cli, tmp_path):
    conf = server_config(migrate=False, socket=tmp_path / "no-such-mariadb.sock")
    started = time.monotonic()
    proc = run_cli("serve", "-c", conf, timeout=15)
    assert proc.returncode != 0, proc
    assert time.monotonic() - started < 5, "took too long to give up"
    assert "MariaDB" in proc.stderr, proc.stderr


class DedicatedMariaDB:
    """A MariaDB server of a test's own (scripts/mariadb-test), to stop and restart."""

    SCRIPT = REPO / "scripts" / "mariadb-test"

    def __init__(self, directory):
        self.dir = directory
        self.socket = self.port = None
        self.mariadbd = None  # the process when restarted here

    def start(self):
        proc = subprocess.run([self.SCRIPT, "start", self.dir], stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=60)
        if proc.returncode != 0:
            logs = "".join(f"--- {log.name}:\n{log.read_text()[-3000:]}\n"
                           for log in (self.dir / "install.log", self.dir / "error.log")
                           if log.exists())
            raise AssertionError(f"scripts/mariadb-test start failed:\n{proc.stderr}{logs}")
        found = dict(re.findall(r"^BULWARK_TEST_MARIADB_(\w+)='(.*)'$", proc.stdout, re.M))
        self.socket, self.port = found["SOCKET"], found["PORT"]

    def settings(self):
        """Server overrides to use this MariaDB."""
        return {"socket": self.socket, "password_file": self.dir / "control.pw"}

    def stop(self):
        stopper = subprocess.Popen([self.SCRIPT, "stop", self.dir], stdin=subprocess.DEVNULL)
        if self.mariadbd is not None:  # reap it, else the script waits for a zombie
            self.mariadbd.wait(timeout=STOP_TIMEOUT + 30)
            self.mariadbd = None
        assert stopper.wait(timeout=STOP_TIMEOUT + 30) == 0

    def ping(self):
        return subprocess.run(["mariadb-admin", "--no-defaults", f"--socket={self.socket}",
                               "-uroot", "ping"], stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=10).returncode == 0

    def restart(self):
        """mariadbd again as scripts/mariadb-test starts it: same data, socket and port."""
        d = self.dir
        self.mariadbd = subprocess.Popen(
            ["mariadbd", "--no-defaults", f"--datadir={d}/data", f"--socket={self.socket}",
             f"--port={self.port}", "--bind-address=127.0.0.1", f"--pid-file={d}/run/mysqld.pid",
             f"--user={pwd.getpwuid(os.getuid()).pw_name}", "--skip-log-bin",
             "--innodb-buffer-pool-size=64M", "--innodb-log-file-size=16M",
             "--max-connections=500", f"--log-error={d}/error.log"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: self.mariadbd.poll() is not None or self.ping(), 30, interval=0.1)
        assert self.mariadbd.poll() is None and self.ping(), \
            f"mariadbd did not come back:\n{(d / 'error.log').read_text()[-2000:]}"


@pytest.fixture
def dedicated_mariadb(tmp_path_factory):
    directory = tmp_path_factory.mktemp("mdb")
    mdb = DedicatedMariaDB(directory)
    try:
        mdb.start()
        yield mdb
    finally:
        mdb.stop()
        shutil.rmtree(directory, ignore_errors=True)


@mariadb_only
def test_mariadb_outage_and_recovery(dedicated_mariadb, start_server):
    srv = start_server(**dedicated_mariadb.settings())
    slug = srv.create_tenant("outage")
    check_healthy(wait_health(srv, slug, 200), slug)

    dedicated_mariadb.stop()
    check_error_body(wait_health(srv, slug, 503), 503, "unavailable")
    assert srv.request("GET", "/healthz").status == 200
    assert srv.alive()

    dedicated_mariadb.restart()
    check_healthy(wait_health(srv, slug, 200, timeout=10), slug)
    assert srv.alive()
