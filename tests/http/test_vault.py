"""Boot-time secrets through the real binary: master keys from the secrets
vault (files provider, and Infisical through tests/vault/infisical_mock.py,
a MOCK of Infisical's documented API: no real Infisical can run here), and
fail-closed start-up when the vault cannot be read."""

import os
import subprocess
import time

import pytest

from conftest import REPO, make_certificate, write_master_keys
from test_tenancy import check_healthy, wait_registered

MOCK = REPO / "tests" / "vault" / "infisical_mock.py"
CLIENT_ID, CLIENT_SECRET, TOKEN = "bulwark-test-id", "bulwark-test-secret", "mock-token-123"


def owner_only(path, text):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return path


@pytest.fixture
def infisical(tmp_path):
    """Start the mock; yields a function making [vault] settings for it."""
    procs = []

    def start(secrets):
        cert = make_certificate(tmp_path / f"mock-tls-{len(procs)}")
        ready = tmp_path / f"ready-{len(procs)}"
        args = ["/usr/bin/python3", str(MOCK), "--cert", str(cert.cert), "--key", str(cert.key),
                "--ready-file", str(ready), "--client-id", CLIENT_ID,
                "--client-secret", CLIENT_SECRET, "--token", TOKEN, "--project", "proj-1",
                "--environment", "prod", "--secret-path", "/bulwark"]
        for name, value in secrets.items():
            args += ["--extra-secret", f"{name}={value}"]
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        procs.append(proc)
        deadline = time.monotonic() + 15
        while not ready.exists():
            assert proc.poll() is None and time.monotonic() < deadline, "mock did not start"
            time.sleep(0.05)
        port = int(ready.read_text())
        return {
            "provider": "infisical", "infisical_url": f"https://localhost:{port}",
            "infisical_project_id": "proj-1", "infisical_environment": "prod",
            "infisical_secret_path": "/bulwark", "infisical_ca_file": cert.cert,
            "infisical_client_id_file": owner_only(tmp_path / "id", CLIENT_ID + "\n"),
            "infisical_client_secret_file": owner_only(tmp_path / "secret", CLIENT_SECRET),
            "timeout": 3,
        }

    yield start
    for proc in procs:
        proc.kill()
        proc.wait(timeout=10)


def test_master_keys_from_files_vault(start_server, tmp_path):
    creds = tmp_path / "credentials"
    creds.mkdir()
    keys = write_master_keys(tmp_path / "k").read_text()
    owner_only(creds / "MASTER_KEYS", keys)
    srv = start_server(source="vault", provider="files", files_dir=creds,
                       file=tmp_path / "no-such-file")
    slug = srv.create_tenant("vf")
    check_healthy(wait_registered(srv, slug), slug)


def test_master_keys_from_infisical(infisical, start_server, tmp_path):
    # infisical first: it must outlive the server, whose clean-up reads the vault
    keys = write_master_keys(tmp_path / "k").read_text().strip()
    settings = infisical({"MASTER_KEYS": keys})
    srv = start_server(source="vault", file=tmp_path / "no-such-file", **settings)
    slug = srv.create_tenant("vi")
    check_healthy(wait_registered(srv, slug), slug)
    assert keys.split(":")[1][:12] not in srv.stderr()


def test_vault_unreachable_at_boot_refuses_to_start(server_config, run_cli, tmp_path):
    # A port nothing listens on: the vault cannot be read, so nothing starts.
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    conf = server_config(migrate=False, source="vault", provider="infisical",
                         infisical_url=f"https://localhost:{port}",
                         infisical_project_id="p", timeout=2,
                         infisical_client_id_file=owner_only(tmp_path / "id", "x"),
                         infisical_client_secret_file=owner_only(tmp_path / "s", "y"))
    for args in (("serve",), ("migrate",), ("keys", "status")):
        started = time.monotonic()
        proc = run_cli(*args, "-c", conf)
        assert proc.returncode != 0, (args, proc)
        assert "infisical" in proc.stderr.lower(), (args, proc.stderr)
        assert time.monotonic() - started < 15


def test_vault_without_master_keys_refuses(infisical, server_config, run_cli, tmp_path):
    settings = infisical({})  # the mock serves secrets, but no MASTER_KEYS
    conf = server_config(migrate=False, source="vault", **settings)
    proc = run_cli("serve", "-c", conf)
    assert proc.returncode != 0 and "MASTER_KEYS" in proc.stderr, proc
