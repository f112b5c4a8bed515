"""MariaDB's anonymous accounts (ADR 0013).

mariadb-install-db makes ''@'localhost' and ''@'<hostname>'. MariaDB
matches a login against the most specific host first, so from those hosts
every user name logs in as the anonymous account, and the tenant accounts
('bw_<slug>'@'%') are refused: "Access denied for user 'bw_<slug>'".
Bulwark detects them and refuses, naming the DROP USER statements to run.

These tests make anonymous accounts, so they run on a MariaDB of their own
(scripts/mariadb-test start in a temporary directory): on the shared server
they would refuse the tenant logins of every suite running beside them.
scripts/mariadb-test removes the anonymous accounts mariadb-install-db
makes, so each test makes them itself, and removes them again however it
ends.
"""

import contextlib
import re
import socket
import subprocess
from pathlib import Path

import pytest

from conftest import DRIVER, REPO, _servers, mariadb_root, unique_slug

pytestmark = pytest.mark.skipif(DRIVER != "mariadb", reason="MariaDB driver only")

DROP_RE = re.compile(r"DROP USER ''@'([^']*)';")


@pytest.fixture(scope="module")
def own_mariadb(tmp_path_factory):
    """A throw-away MariaDB for this module: {"dir", "socket"}."""
    directory = tmp_path_factory.mktemp("mariadb")
    script = REPO / "scripts" / "mariadb-test"
    proc = subprocess.run([str(script), "start", str(directory)], capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL)
    try:
        assert proc.returncode == 0, f"mariadb-test start failed:\n{proc.stderr}"
        env = dict(re.findall(r"^(BULWARK_TEST_MARIADB_\w+)='([^']*)'$", proc.stdout, re.M))
        yield {"dir": Path(env["BULWARK_TEST_MARIADB_DIR"]),
               "socket": env["BULWARK_TEST_MARIADB_SOCKET"]}
    finally:
        subprocess.run([str(script), "stop", str(directory)], capture_output=True,
                       timeout=60, stdin=subprocess.DEVNULL)


@pytest.fixture
def make_server(tmp_path_factory, tls_cert, own_mariadb):
    """make_server() -> a migrated, not started Server on own_mariadb; its
    tenants and control database are removed at teardown."""
    with _servers(tmp_path_factory, tls_cert) as make:
        def build():
            srv = make(driver="mariadb", socket=own_mariadb["socket"], user="bulwark",
                       password_file=own_mariadb["dir"] / "control.pw")
            srv.prepare()
            return srv

        yield build


def root(own, sql):
    return mariadb_root(sql, own["socket"])


def install_db_hosts():
    """The hosts mariadb-install-db gives anonymous accounts."""
    name = socket.gethostname()
    assert re.fullmatch(r"[A-Za-z0-9.-]+", name), name
    return ["localhost"] if name == "localhost" else ["localhost", name]


@contextlib.contextmanager
def anonymous_accounts(own, hosts=None, password=None):
    """The anonymous accounts of a fresh mariadb-install-db, for the block."""
    hosts = hosts or install_db_hosts()
    auth = f" IDENTIFIED BY '{password}'" if password else ""
    try:
        for h in hosts:
            root(own, f"CREATE USER ''@'{h}'{auth}")
        yield hosts
    finally:
        for h in hosts:
            root(own, f"DROP USER IF EXISTS ''@'{h}'")
        assert root(own, "SELECT Host FROM mysql.user WHERE User = ''") == []


def tenant_left(own, slug):
    """What of tenant slug exists in MariaDB: its database, its accounts."""
    return root(own, f"SELECT SCHEMA_NAME FROM information_schema.SCHEMATA"
                     f" WHERE SCHEMA_NAME = 'saas_tenant_{slug}' UNION ALL"
                     f" SELECT CONCAT(User, '@', Host) FROM mysql.user WHERE User = 'bw_{slug}'")


def create(srv, slug):
    return srv.cli("tenant", "create", slug, "--admin-email", f"admin@{slug}.example.com")


def check_names_fix(text, hosts):
    """The message says what the matter is and exactly what to run."""
    assert "anonymous account" in text, text
    assert "shadows the tenant accounts ('bw_<slug>'@'%')" in text, text
    assert "mariadb-secure-installation" in text, text
    assert sorted(DROP_RE.findall(text)) == sorted(hosts), text


def test_tenant_create_refused_then_created_once_fixed(own_mariadb, make_server):
    srv = make_server()
    slug = unique_slug("anon")
    with anonymous_accounts(own_mariadb) as hosts:
        # As it was: the account is made, then its first login is refused.
        proc = create(srv, slug)
        assert proc.returncode == 1, proc.stdout + proc.stderr
        # Least privilege: the control account cannot read mysql.user, so
        # the one found is the one this host's logins fall into.
        check_names_fix(proc.stderr, ["localhost"])
        assert "lists" in proc.stderr, proc.stderr  # how to find the others
        assert "Access denied" in proc.stderr  # what the operator saw before
        # Refused before anything was made: nothing to clean up.
        assert tenant_left(own_mariadb, slug) == []
        assert srv.cli_ok("tenant", "list", "--json").stdout.strip() == "[]"

        # Running exactly what it says is enough (''@'<hostname>' is only
        # reached over TCP from that name, not through the socket).
        for h in DROP_RE.findall(proc.stderr):
            root(own_mariadb, f"DROP USER ''@'{h}'")
        if len(hosts) > 1:
            assert root(own_mariadb, "SELECT Host FROM mysql.user WHERE User = ''") == \
                [(hosts[1],)]
        proc = create(srv, slug)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert f"tenant {slug} created" in proc.stdout
        assert sorted(tenant_left(own_mariadb, slug)) == \
            sorted([(f"saas_tenant_{slug}",), (f"bw_{slug}@%",)])
        assert "1 tenant(s) at the current schema" in srv.cli_ok("migrate").stdout


def test_serve_refuses_to_start(own_mariadb, make_server):
    srv = make_server()
    with anonymous_accounts(own_mariadb):
        proc = srv.cli("serve", timeout=60)
        assert proc.returncode == 1, proc.stderr
        assert "cannot start: MariaDB has an anonymous account" in proc.stderr, proc.stderr
        check_names_fix(proc.stderr, ["localhost"])


def test_control_account_that_reads_mysql_user_names_every_one(own_mariadb, make_server):
    srv = make_server()
    slug = unique_slug("anon")
    root(own_mariadb, "GRANT SELECT ON mysql.user TO 'bulwark'@'localhost'")
    try:
        with anonymous_accounts(own_mariadb) as hosts:
            proc = create(srv, slug)
            assert proc.returncode == 1, proc.stderr
            check_names_fix(proc.stderr, hosts)
            assert "lists" not in proc.stderr, proc.stderr  # nothing left to look for
        # With a password it shadows all the same; only the list can tell.
        with anonymous_accounts(own_mariadb, ["localhost"], password="not-empty-1") as hosts:
            proc = create(srv, slug)
            assert proc.returncode == 1, proc.stderr
            check_names_fix(proc.stderr, hosts)
    finally:
        root(own_mariadb, "REVOKE SELECT ON mysql.user FROM 'bulwark'@'localhost'")
    assert tenant_left(own_mariadb, slug) == []


def test_password_anonymous_account_gets_a_hint(own_mariadb, make_server):
    """Least privilege and an anonymous account with a password: nothing can
    tell it from outside, but the refused login says where to look, and
    provisioning still undoes everything."""
    srv = make_server()
    slug = unique_slug("anon")
    with anonymous_accounts(own_mariadb, ["localhost"], password="not-empty-1"):
        proc = create(srv, slug)
        assert proc.returncode == 1, proc.stderr
        assert f"Access denied for user 'bw_{slug}'" in proc.stderr, proc.stderr
        assert "SELECT User, Host FROM mysql.user WHERE User = ''" in proc.stderr, proc.stderr
        assert tenant_left(own_mariadb, slug) == []


def test_account_added_later_is_named_when_tenant_logins_fail(own_mariadb, make_server):
    srv = make_server()
    slug = srv.create_tenant("anon")
    with anonymous_accounts(own_mariadb):
        proc = srv.cli("migrate")
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert f"tenant {slug}: MariaDB has an anonymous account" in proc.stderr, proc.stderr
        check_names_fix(proc.stderr, ["localhost"])
    assert "1 tenant(s) at the current schema" in srv.cli_ok("migrate").stdout
