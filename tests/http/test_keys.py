"""Encryption keys through the real binary: fail-closed key sources, and
`bulwark keys status|rotate|rollback|purge` against a running server.

The cryptography itself (sealing, tampering, rotation killed with SIGKILL,
purge after 30 days) is tested in tests/unit/test_keys.c and test_crypto.c;
these tests cover what only the binary and its configuration can show."""

import contextlib
import json
import os
import signal

from conftest import wait_for, write_master_keys
from test_tenancy import HEALTH, check_healthy, wait_registered


def status(srv):
    return json.loads(srv.cli_ok("keys", "status", "--json").stdout)


def keys_of(srv, slug, state=None):
    return [k for k in status(srv)["data_keys"]
            if k["tenant"] == slug and (state is None or k["state"] == state)]


@contextlib.contextmanager
def key_file_of(conf):
    """The master key file of a prepared server, restored afterwards so that
    the server's clean-up (which needs the keys) still works."""
    keyfile = conf.parent / "master.keys"
    saved = keyfile.read_text()
    try:
        yield keyfile
    finally:
        keyfile.unlink(missing_ok=True)
        fd = os.open(keyfile, os.O_WRONLY | os.O_CREAT, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(saved)


def test_no_master_keys_no_start(server_config, run_cli):
    conf = server_config()
    with key_file_of(conf) as keyfile:
        keyfile.unlink()
        proc = run_cli("serve", "-c", conf)
        assert proc.returncode != 0, proc
        assert "master keys" in proc.stderr and str(keyfile) in proc.stderr, proc.stderr
        # nor does any other command run without them
        for args in (("migrate",), ("tenant", "list"), ("keys", "status")):
            proc = run_cli(*args, "-c", conf)
            assert proc.returncode != 0 and "master keys" in proc.stderr, (args, proc)


def test_key_file_others_can_read_refused(server_config, run_cli):
    conf = server_config()
    with key_file_of(conf) as keyfile:
        keyfile.chmod(0o644)
        proc = run_cli("serve", "-c", conf)
        assert proc.returncode != 0 and "chmod 600" in proc.stderr, proc


def test_malformed_keys_refused_without_echo(server_config, run_cli):
    conf = server_config()
    with key_file_of(conf) as keyfile:
        secret = keyfile.read_text().split(":", 1)[1].strip()
        keyfile.write_text(f"1:{secret[:-4]}\n")  # truncated
        proc = run_cli("tenant", "list", "-c", conf)
        assert proc.returncode != 0 and "master key 1" in proc.stderr, proc
        assert secret[:16] not in proc.stderr + proc.stdout


def test_keys_from_environment(server_config, run_cli):
    conf = server_config()
    with key_file_of(conf) as keyfile:
        keys = keyfile.read_text()
        keyfile.unlink()
        proc = run_cli("keys", "status", "-c", conf,
                       env={"BULWARK_KEYS_SOURCE": "env", "BULWARK_KEYS": keys.strip()})
        assert proc.returncode == 0, proc
        proc = run_cli("keys", "status", "-c", conf, env={"BULWARK_KEYS_SOURCE": "env"})
        assert proc.returncode != 0 and "BULWARK_KEYS" in proc.stderr, proc


def test_rotate_rollback_online(start_server):
    srv = start_server()
    a, b = srv.create_tenant("rot"), srv.create_tenant("rot")
    for slug in (a, b):
        check_healthy(wait_registered(srv, slug), slug)
    [old] = keys_of(srv, a, "active")
    st = status(srv)
    assert st["master_key"] == 1 and st["master_keys_loaded"] == 1, st

    proc = srv.cli_ok("keys", "rotate")
    assert "rotate run" in proc.stdout and "2 tenant(s)" in proc.stdout, proc.stdout
    assert f"[1/2] {a}" in proc.stderr or f"[2/2] {a}" in proc.stderr, proc.stderr
    [new] = keys_of(srv, a, "active")
    assert new["id"] != old["id"]
    assert [k["id"] for k in keys_of(srv, a, "retired")] == [old["id"]]
    # the server went on serving throughout, with no restart
    for slug in (a, b):
        check_healthy(srv.request("GET", HEALTH, host=slug), slug)

    proc = srv.cli_ok("keys", "rollback")
    assert "rollback run" in proc.stdout, proc.stdout
    assert keys_of(srv, a, "active")[0]["id"] == old["id"]
    proc = srv.cli("keys", "rollback")
    assert proc.returncode != 0 and "nothing to roll back" in proc.stderr, proc
    assert "0 retired data key(s) purged" in srv.cli_ok("keys", "purge").stdout


def test_master_key_rotation_online(start_server):
    srv = start_server()
    slug = srv.create_tenant("mk")
    check_healthy(wait_registered(srv, slug), slug)
    keyfile = srv.dir / "master.keys"
    old = keyfile.read_text()
    # 1. add master key 2 next to 1, and tell the running server (SIGHUP)
    new = write_master_keys(srv.dir / "new.keys", ids=(2,)).read_text()
    keyfile.write_text(old + new)
    srv.signal(signal.SIGHUP)
    assert srv.wait_stderr("2 master key(s), newest 2"), srv.stderr()
    # 2. rotate: everything is re-wrapped under key 2
    proc = srv.cli_ok("keys", "rotate")
    assert "re-wrapped" in proc.stdout, proc.stdout
    assert all(k["master_key"] == 2 for k in status(srv)["data_keys"] if k["state"] != "purged")
    # 3. key 1 can go, everywhere
    keyfile.write_text(new)
    srv.signal(signal.SIGHUP)
    assert srv.wait_stderr("1 master key(s), newest 2"), srv.stderr()
    assert status(srv)["master_key"] == 2
    check_healthy(srv.request("GET", HEALTH, host=slug), slug)
    later = srv.create_tenant("mk")
    check_healthy(wait_registered(srv, later), later)
    # a broken key file on reload keeps the keys the server has
    keyfile.write_text("2:garbage\n")
    srv.signal(signal.SIGHUP)
    assert srv.wait_stderr("master keys unchanged"), srv.stderr()
    check_healthy(srv.request("GET", HEALTH, host=later), later)
    keyfile.write_text(new)


def test_delete_destroys_keys(start_server):
    srv = start_server()
    slug = srv.create_tenant("shred")
    assert keys_of(srv, slug), status(srv)
    srv.cli_ok("tenant", "delete", slug, "--yes")
    assert keys_of(srv, slug) == []
    wait_for(lambda: srv.request("GET", HEALTH, host=slug).status == 404, 5)
