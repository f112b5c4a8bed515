"""TOTP MFA through the real binary, with oathtool (Debian's oathtool) as an
independent implementation of RFC 6238 computing the codes a phone would."""

import json
import re
import subprocess
import time

import pytest

from conftest import DRIVER, unique_slug

PASSWORD = "correct horse battery staple"


def totp(secret, offset=0):
    """The 6-digit code for now + offset seconds, computed by oathtool."""
    return subprocess.run(
        ["oathtool", "--totp=sha1", "-b", "-N", f"@{int(time.time()) + offset}", secret],
        check=True, capture_output=True, text=True, timeout=10).stdout.strip()


class Client:
    """A browser-like client of one tenant: a cookie jar and the right Origin."""

    def __init__(self, srv, slug):
        self.srv, self.slug, self.cookie = srv, slug, None

    def call(self, method, path, body=None, cookie=True):
        host = self.srv.tenant_host(self.slug)
        headers = {"Origin": f"https://{host}"}
        if cookie and self.cookie:
            headers["Cookie"] = f"__Host-bulwark_session={self.cookie}"
        data = None
        if body is not None:
            data = json.dumps(body)
            headers["Content-Type"] = "application/json"
        resp = self.srv.request(method, path, headers=headers, body=data, host=self.slug)
        m = re.match(r"__Host-bulwark_session=([^;]*);", resp.headers.get("set-cookie", ""))
        if m:
            self.cookie = m.group(1) or None
        return resp

    def login(self):
        return self.call("POST", "/api/v1/auth/login",
                         {"email": f"admin@{self.slug}.example.com", "password": PASSWORD})


@pytest.fixture
def tenant(start_server, tmp_path):
    srv = start_server(lockout_threshold=3, login_rate_per_minute=100000)
    slug = unique_slug("mfa")
    pw = tmp_path / "pw"
    pw.write_text(PASSWORD + "\n")
    srv.cli_ok("tenant", "create", slug, "--admin-email", f"admin@{slug}.example.com",
               "--admin-password-file", pw)
    deadline = time.monotonic() + 5
    c = Client(srv, slug)
    while c.login().status == 404 and time.monotonic() < deadline:
        time.sleep(0.05)  # the server learns of the tenant within registry_refresh_ms
    return srv, slug


def enrol(c):
    assert c.login().status == 200
    r = c.call("POST", "/api/v1/auth/mfa/enrol", {"password": PASSWORD})
    assert r.status == 200, r
    secret = r.body["secret"]
    assert re.fullmatch(r"[A-Z2-7]{32}", secret), secret
    assert r.body["otpauth_uri"].startswith("otpauth://totp/Bulwark%20%28")
    assert f"secret={secret}" in r.body["otpauth_uri"]
    svg = r.body["qr_svg"]
    assert svg.startswith("<svg") and "<script" not in svg and "href" not in svg
    # a wrong first code does not turn MFA on
    wrong = "%06d" % ((int(totp(secret)) + 1) % 1000000)
    assert c.call("POST", "/api/v1/auth/mfa/enrol/confirm", {"code": wrong}).status == 400
    r = c.call("POST", "/api/v1/auth/mfa/enrol/confirm", {"code": totp(secret)})
    assert r.status == 200 and r.body["mfa_enabled"] is True, r
    codes = r.body["recovery_codes"]
    assert len(codes) == 10 and len(set(codes)) == 10
    assert all(re.fullmatch(r"[a-z2-9]{5}-[a-z2-9]{5}", x) for x in codes), codes
    return secret, codes


def test_enrol_then_login_needs_code(tenant):
    srv, slug = tenant
    c = Client(srv, slug)
    secret, _ = enrol(c)
    c2 = Client(srv, slug)
    r = c2.login()
    assert r.status == 200 and r.body["mfa_required"] is True, r
    pending = c2.cookie
    # before the code: nothing but the MFA step itself
    for method, path in (("GET", "/api/v1/me"), ("GET", "/api/v1/auth/tokens"),
                         ("POST", "/api/v1/auth/sessions/end-others")):
        assert c2.call(method, path).status == 401, path
    # the code is taken with the clock a step ahead (the server allows +-1 step)
    r = c2.call("POST", "/api/v1/auth/mfa", {"code": totp(secret, 30)})
    assert r.status == 200, r
    assert c2.cookie and c2.cookie != pending  # a new session id after MFA
    assert c2.call("GET", "/api/v1/me").status == 200
    stale = Client(srv, slug)
    stale.cookie = pending
    assert stale.call("GET", "/api/v1/me").status == 401


def test_code_never_accepted_twice(tenant):
    srv, slug = tenant
    secret, _ = enrol(Client(srv, slug))
    code = totp(secret, 30)
    a = Client(srv, slug)
    a.login()
    assert a.call("POST", "/api/v1/auth/mfa", {"code": code}).status == 200
    b = Client(srv, slug)
    b.login()
    assert b.call("POST", "/api/v1/auth/mfa", {"code": code}).status == 401  # replayed
    # nor an older step than one already used
    assert b.call("POST", "/api/v1/auth/mfa", {"code": totp(secret)}).status == 401


def test_recovery_code_once(tenant):
    srv, slug = tenant
    _, codes = enrol(Client(srv, slug))
    a = Client(srv, slug)
    a.login()
    assert a.call("POST", "/api/v1/auth/mfa", {"code": codes[0].upper()}).status == 200
    b = Client(srv, slug)
    b.login()
    assert b.call("POST", "/api/v1/auth/mfa", {"code": codes[0]}).status == 401
    assert b.call("POST", "/api/v1/auth/mfa", {"code": codes[1].replace("-", "")}).status == 200


def test_wrong_codes_lock_the_account(tenant):
    srv, slug = tenant
    secret, _ = enrol(Client(srv, slug))
    a = Client(srv, slug)
    a.login()
    wrong = "%06d" % ((int(totp(secret)) + 7) % 1000000)
    statuses = [a.call("POST", "/api/v1/auth/mfa", {"code": wrong}).status for _ in range(3)]
    assert statuses[:2] == [401, 401] and statuses[2] == 423, statuses
    # locked: even the right code, and the right password, are refused now
    assert a.call("POST", "/api/v1/auth/mfa", {"code": totp(secret, 30)}).status == 423
    assert Client(srv, slug).login().status == 423
    srv.cli_ok("user", "unlock", slug, f"admin@{slug}.example.com")
    assert Client(srv, slug).login().status == 200


def test_disable_and_regenerate_need_password(tenant):
    srv, slug = tenant
    c = Client(srv, slug)
    secret, codes = enrol(c)
    assert c.call("POST", "/api/v1/auth/mfa/recovery-codes", {"password": "not it at all"}).status == 403
    r = c.call("POST", "/api/v1/auth/mfa/recovery-codes", {"password": PASSWORD})
    assert r.status == 200 and not set(r.body["recovery_codes"]) & set(codes), r
    a = Client(srv, slug)
    a.login()
    assert a.call("POST", "/api/v1/auth/mfa", {"code": codes[2]}).status == 401  # old set gone
    assert c.call("POST", "/api/v1/auth/mfa/disable", {"password": "not it at all"}).status == 403
    assert c.call("POST", "/api/v1/auth/mfa/disable", {"password": PASSWORD}).status == 200
    r = Client(srv, slug).login()
    assert r.status == 200 and r.body["mfa_required"] is False


def test_tenant_can_require_mfa(tenant):
    srv, slug = tenant
    c = Client(srv, slug)
    assert c.login().status == 200
    r = c.call("PUT", "/api/v1/settings/security", {"mfa_required": True})
    assert r.status == 200, r
    # a user without MFA may now only enrol (and see who they are)
    assert c.call("GET", "/api/v1/auth/tokens").status == 403
    assert c.call("GET", "/api/v1/me").status == 200
    # they have just signed in with their password, and send it again to enrol
    assert c.call("POST", "/api/v1/auth/mfa/enrol").status == 400
    r = c.call("POST", "/api/v1/auth/mfa/enrol", {"password": PASSWORD})
    assert r.status == 200
    r = c.call("POST", "/api/v1/auth/mfa/enrol/confirm", {"code": totp(r.body["secret"])})
    assert r.status == 200
    c2 = Client(srv, slug)
    c2.login()
    # enrolled users go through the code as usual


@pytest.mark.skipif(DRIVER != "sqlite", reason="reads the SQLite files")
def test_secret_not_in_database_files(tenant):
    srv, slug = tenant
    secret, codes = enrol(Client(srv, slug))
    import base64
    raw = base64.b32decode(secret)
    for f in (srv.var / "tenants").glob(f"{slug}.db*"):
        data = f.read_bytes()
        assert raw not in data and secret.encode() not in data, f
        assert not any(x.encode() in data for x in codes), f
