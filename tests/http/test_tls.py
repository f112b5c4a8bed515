"""TLS: only TLS 1.3 is spoken, with the configured certificate."""

import re
import ssl
import subprocess

import pytest


# The front door's own (framing, limits, TLS, signals, proxies: answered on
# /healthz before any database): run once, in the SQLite lane, which keeps
# make check's MariaDB lane, its long pole, to what depends on the driver.
from conftest import DRIVER  # noqa: E402
pytestmark = pytest.mark.skipif(DRIVER == "mariadb",
                                reason="does not depend on the database driver")


def test_tls13_handshake(server, tls_cert):
    with server.raw_tls_socket() as sock:
        assert sock.version() == "TLSv1.3"
        assert sock.getpeercert(binary_form=True) == tls_cert.der
        assert sock.cipher()[0] in {"TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256",
                                    "TLS_AES_128_GCM_SHA256"}


def test_tls12_client_refused(server, tls_cert):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cafile=str(tls_cert.cert))
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    with pytest.raises(ssl.SSLError):
        server.raw_tls_socket(context=ctx).close()
    assert server.request("GET", "/healthz").status == 200


@pytest.mark.parametrize("flag, accepted", [("-tls1_3", True), ("-tls1_2", False)])
def test_openssl_s_client(server, tls_cert, flag, accepted):
    proc = subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{server.port}", flag,
         "-servername", "localhost", "-CAfile", str(tls_cert.cert), "-verify_return_error"],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=15)
    out = proc.stdout + proc.stderr
    negotiated = re.search(r"^New, (TLSv[\d.]+), Cipher is", out, re.M)
    if accepted:
        assert proc.returncode == 0, out
        assert negotiated and negotiated.group(1) == "TLSv1.3", out
        assert "Verify return code: 0 (ok)" in out
    else:
        assert proc.returncode != 0, out
        assert negotiated is None, out
