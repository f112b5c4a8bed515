"""TLS and headers checked by an independent scanner: Debian's testssl.sh
against the real server. Only TLS 1.3 offered, no weak cipher category, HSTS
of at least a year with includeSubDomains, the security headers present."""

import json
import shutil
import subprocess

import pytest

from conftest import DRIVER

TESTSSL = shutil.which("testssl") or shutil.which("testssl.sh")

# TLS is the front door's, before any database: scanned once, in the SQLite run.
pytestmark = pytest.mark.skipif(DRIVER == "mariadb",
                                reason="TLS does not depend on the database driver")


@pytest.mark.skipif(TESTSSL is None, reason="testssl.sh is installed by scripts/install-deps test")
def test_testssl_scan(server, tmp_path):
    out = tmp_path / "testssl.json"
    proc = subprocess.run(
        [TESTSSL, "--quiet", "--color", "0", "--warnings", "batch", "--protocols", "--std",
         "--headers", "--jsonfile", str(out), "--ip", "127.0.0.1",
         f"https://localhost:{server.port}/healthz"],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=240)
    assert out.exists(), proc.stdout + proc.stderr
    found = {e["id"]: e for e in json.loads(out.read_text())}

    def finding(key):
        assert key in found, f"testssl reported no {key}: {sorted(found)}"
        return found[key]["finding"]

    for old in ("SSLv2", "SSLv3", "TLS1", "TLS1_1", "TLS1_2"):
        assert finding(old).startswith("not offered"), (old, found[old])
    assert finding("TLS1_3").startswith("offered"), found["TLS1_3"]
    for weak in ("cipherlist_NULL", "cipherlist_aNULL", "cipherlist_EXPORT", "cipherlist_LOW",
                 "cipherlist_3DES_IDEA", "cipherlist_AVERAGE"):
        assert finding(weak).startswith("not offered"), (weak, found[weak])
    hsts = finding("HSTS_time")
    seconds = int(hsts.split("=")[1].split()[0])
    assert seconds >= 31536000, hsts
    assert found["HSTS_subdomains"]["severity"] == "OK", found["HSTS_subdomains"]
    assert found["X-Content-Type-Options"]["finding"] == "nosniff"
    assert "frame-ancestors 'none'" in finding("Content-Security-Policy")
