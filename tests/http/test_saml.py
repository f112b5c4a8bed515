"""SAML single sign-on (issue 17) against an independent IdP: pysaml2 on
loopback (tests/http/saml_idp.py). The SP-initiated loop (the signed
redirect AuthnRequest verified by pysaml2, the signed POST back accepted),
the IdP-initiated one, just-in-time provisioning and group roles, "SSO
required" with its break-glass exemption, and the admin API. The attacks
are in test_saml_attacks.py.
"""

import base64
import hashlib
import json
import secrets
import urllib.parse
import time
import urllib.request

import pytest

import conftest
from psa import API, Client, admin_client, new_user
from saml_idp import TestIdP, b64, parse_form
from test_identity import COOKIE, PASSWORD, make_tenant, sql_one, tenant_sql

SAML_COOKIE = "__Host-bulwark_saml"
SSO = f"{API}/settings/sso"


class SsoEnv:
    """One server, one tenant with SSO through one TestIdP."""

    def __init__(self, srv, tmp, prefix="sso", idp=None):
        self.srv = srv
        self.account = make_tenant(srv, prefix)
        self.slug = self.account.slug
        self.domain = f"{self.slug}.example.com"
        self.admin = admin_client(srv, self.account)
        self.own_idp = idp is None
        self.idp = idp or TestIdP(tmp / f"idp-{self.slug}")
        self.origin = f"https://{srv.tenant_host(self.slug)}"
        self.acs = f"{self.origin}/saml/acs"
        self.entity = f"{self.origin}/saml/metadata"

    def configure(self, **over):
        body = {"enabled": True, "idp_metadata": self.idp.metadata(),
                "allowed_domains": [self.domain],
                "attributes": {"email": None, "name": "urn:mace:dir:attribute-def:displayName",
                               "groups": "groups"},
                "group_roles": {"Bulwark Admins": "admin", "Billing": "billing"},
                "jit": True, "default_role": "staff", "sso_required": False,
                "idp_initiated": False}
        body.update(over)
        # Its own connection with a long timeout: the first PUT makes the SP's
        # RSA-3072 key, which can take seconds on a busy machine, and a PUT
        # must not be sent twice by a retry.
        c = Client(self.srv, self.slug, token=self.admin.token)
        c.conn = self.srv.connection(timeout=120)
        try:
            r = c.request("PUT", SSO, body=body)
        finally:
            c.close()
        assert r.status == 200, r
        md = self.public("GET", "/saml/metadata")
        assert md.status == 200, md
        if not any(self.entity in m for m in self.idp.sp_metadata):
            self.idp.trust(md.raw.decode())
        return r.body

    def public(self, method, path, headers=None, raw=None):
        c = Client(self.srv, self.slug)
        try:
            return c.request(method, path, headers=headers, raw=raw)
        finally:
            c.close()

    def begin(self, next_path="/", cookie=None):
        """GET /saml/login -> (the IdP URL it redirects to, the browser's saml cookie)."""
        q = urllib.parse.urlencode({"next": next_path})
        headers = {"Cookie": f"{SAML_COOKIE}={cookie}"} if cookie else None
        r = self.public("GET", f"/saml/login?{q}", headers=headers)
        assert r.status == 302, r
        set_cookie = r.headers.get("set-cookie", "")
        assert set_cookie.startswith(f"{SAML_COOKIE}="), r.headers
        for attr in ("Path=/", "Secure", "HttpOnly", "SameSite=None", "Max-Age=600"):
            assert attr in set_cookie, set_cookie
        value = set_cookie.split(";")[0].split("=", 1)[1]
        return r.headers["location"], value

    def request_id(self, location):
        """The id of the AuthnRequest in a redirect to the IdP (verified by pysaml2)."""
        req, _ = self.idp.verify_request(urllib.parse.urlsplit(location).query)
        return req.id

    def acs_post(self, saml_response, relay=None, cookie=None, origin="idp", extra=None):
        """POST /saml/acs as a browser coming back from the IdP."""
        form = {"SAMLResponse": saml_response}
        if relay is not None:
            form["RelayState"] = relay
        form.update(extra or {})
        h = {"Content-Type": "application/x-www-form-urlencoded"}
        if origin == "idp":
            h["Origin"] = f"http://127.0.0.1:{self.idp.port}"
        elif origin is not None:
            h["Origin"] = origin
        if cookie:
            h["Cookie"] = f"{SAML_COOKIE}={cookie}"
        return self.public("POST", "/saml/acs", headers=h,
                           raw=urllib.parse.urlencode(form).encode())

    def signed(self, email, irt=None, attributes=None, **kw):
        return b64(self.idp.response(self.entity, self.acs, email, attributes,
                                     in_response_to=irt, **kw))

    def audit(self, action, limit=5):
        return self.admin.ok("GET", f"{API}/reporting/audit?entity=auth&action={action}"
                             f"&limit={limit}")["data"]

    def close(self):
        self.admin.close()
        if self.own_idp:
            self.idp.close()


def session_of(reply):
    """The session cookie a reply set, or None."""
    for part in [reply.headers.get("set-cookie", "")]:
        if part.startswith(f"{COOKIE}="):
            return part.split(";")[0].split("=", 1)[1] or None
    return None


def idp_page(location):
    """What a browser gets from the IdP at location: its POST form."""
    with urllib.request.urlopen(location, timeout=10) as resp:
        assert resp.status == 200
        return parse_form(resp.read().decode())


@pytest.fixture(scope="module")
def env(tmp_path_factory, tls_cert):
    with conftest._servers(tmp_path_factory, tls_cert) as make:
        srv = make(login_rate_per_minute=100000, lockout_threshold=1000).start()
        e = SsoEnv(srv, tmp_path_factory.mktemp("saml"))
        e.configure()
        try:
            yield e
        finally:
            e.close()


def me(env, session):
    c = Client(env.srv, env.slug, session=session)
    try:
        return c.get(f"{API}/me")
    finally:
        c.close()


# --- the two flows ---------------------------------------------------------------

def test_sp_initiated_loop_signs_in_without_totp(env):
    email = f"ada-{secrets.token_hex(3)}@{env.domain}"
    env.idp.user = (email, {"displayName": "Ada Lovelace", "groups": ["Engineers"]})
    location, cookie = env.begin("/tickets?status=open")
    assert location.startswith(env.idp.sso_url + "?")
    q = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)
    assert q["SigAlg"] == ["http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"], q
    assert set(q) == {"SAMLRequest", "RelayState", "SigAlg", "Signature"}, q
    action, fields = idp_page(location)     # pysaml2 verified the signed request
    assert action == env.acs
    assert fields["RelayState"] == "/tickets?status=open"
    r = env.acs_post(fields["SAMLResponse"], fields["RelayState"], cookie)
    assert r.status == 303, r
    assert r.headers["location"] == "/tickets?status=open"
    session = session_of(r)
    assert session, r.headers
    m = me(env, session)
    assert m.status == 200, m
    assert m.body["sso"] is True and m.body["user"]["email"] == email, m.body
    # just-in-time provisioning with the default role, no MFA asked for
    users = env.admin.ok("GET", f"{API}/users?limit=100")["data"]
    u = [x for x in users if x["email"] == email]
    assert len(u) == 1 and u[0]["roles"] == ["staff"] and u[0]["sso_provisioned"] is True, u
    assert u[0]["name"] == "Ada Lovelace", u
    rows = [a for a in env.audit("sso_login") if email in json.dumps(a)]
    assert rows, env.audit("sso_login")


def test_the_request_was_verified_by_the_idp(env):
    """The IdP refuses an AuthnRequest whose signature was changed: proof that the
    loop above really had pysaml2 verify lasso's signature."""
    location, _ = env.begin()
    parts = urllib.parse.urlsplit(location)
    q = urllib.parse.parse_qs(parts.query)
    sig = bytearray(base64.b64decode(q["Signature"][0]))
    sig[10] ^= 1
    q["Signature"] = [base64.b64encode(bytes(sig)).decode()]
    bad = parts._replace(query=urllib.parse.urlencode({k: v[0] for k, v in q.items()})).geturl()
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(bad, timeout=10)
    assert exc.value.code == 400
    assert "does not verify" in env.idp.refusals[-1], env.idp.refusals


def test_group_maps_to_role_and_follows_the_idp(env):
    email = f"grace-{secrets.token_hex(3)}@{env.domain}"
    env.idp.user = (email, {"displayName": "Grace", "groups": ["Billing"]})
    location, cookie = env.begin()
    _, fields = idp_page(location)
    r = env.acs_post(fields["SAMLResponse"], fields.get("RelayState"), cookie)
    assert r.status == 303, r
    u = [x for x in env.admin.ok("GET", f"{API}/users?limit=100")["data"] if x["email"] == email]
    assert u[0]["roles"] == ["billing"], u
    # the IdP moves her to the admins: the next sign-in follows
    env.idp.user = (email, {"displayName": "Grace", "groups": ["Bulwark Admins"]})
    location, cookie = env.begin()
    _, fields = idp_page(location)
    r = env.acs_post(fields["SAMLResponse"], fields.get("RelayState"), cookie)
    assert r.status == 303, r
    u = [x for x in env.admin.ok("GET", f"{API}/users?limit=100")["data"] if x["email"] == email]
    assert u[0]["roles"] == ["admin"], u


def test_idp_initiated_only_when_turned_on(env):
    email = f"linus-{secrets.token_hex(3)}@{env.domain}"
    try:
        r = env.acs_post(env.signed(email))
        assert r.status == 403 and r.body["error"]["reason"] == "unsolicited", r
        assert session_of(r) is None
        env.configure(idp_initiated=True)
        r = env.acs_post(env.signed(email), relay="/dashboard")
        assert r.status == 303, r
        assert r.headers["location"] == "/dashboard"
        assert me(env, session_of(r)).body["sso"] is True
    finally:
        env.configure(idp_initiated=False)


def test_existing_user_without_jit_and_disabled_user(env):
    uid, email = new_user(env.admin, ["staff"], local=f"bob-{secrets.token_hex(3)}")
    env.idp.user = (email, {})
    try:
        env.configure(jit=False)
        # an unknown address, JIT off: refused, nobody created
        ghost = f"ghost-{secrets.token_hex(3)}@{env.domain}"
        loc, cookie = env.begin()
        r = env.acs_post(env.signed(ghost, env.request_id(loc)), cookie=cookie)
        assert r.status == 403 and r.body["error"]["reason"] == "no_user", r
        assert not [u for u in env.admin.ok("GET", f"{API}/users?limit=100")["data"]
                    if u["email"] == ghost]
        # a known user signs in; the password user keeps their roles (not SSO-provisioned)
        loc, cookie = env.begin()
        r = env.acs_post(env.signed(email, env.request_id(loc), {"groups": ["Bulwark Admins"]}),
                         cookie=cookie)
        assert r.status == 303, r
        u = env.admin.ok("GET", f"{API}/users/{uid}")
        assert u["roles"] == ["staff"], u
        # disabled: refused
        env.admin.ok("PATCH", f"{API}/users/{uid}", {"disabled": True})
        loc, cookie = env.begin()
        r = env.acs_post(env.signed(email, env.request_id(loc)), cookie=cookie)
        assert r.status == 403 and r.body["error"]["reason"] == "disabled", r
    finally:
        env.configure(jit=True)


def test_sso_required_refuses_password_but_not_the_exempt_admin(env):
    uid, email = new_user(env.admin, ["staff"], local=f"carol-{secrets.token_hex(3)}")
    login = {"email": email, "password": PASSWORD}
    try:
        env.configure(sso_required=True)
        r = Client(env.srv, env.slug).post(f"{API}/auth/login", login)
        assert r.status == 403 and r.body["error"]["reason"] == "sso_required", r
        # a wrong password is still just a wrong password: nothing is told
        r = Client(env.srv, env.slug).post(f"{API}/auth/login", {**login, "password": "x" * 12})
        assert r.status == 401, r
        # break glass: an exempt user signs in with the password
        env.admin.ok("PATCH", f"{API}/users/{uid}", {"sso_exempt": True})
        r = Client(env.srv, env.slug).post(f"{API}/auth/login", login)
        assert r.status == 200, r
        # through the CLI as well
        env.srv.cli_ok("user", "sso-exempt", env.slug, email, "off")
        r = Client(env.srv, env.slug).post(f"{API}/auth/login", login)
        assert r.status == 403 and r.body["error"]["reason"] == "sso_required", r
        env.srv.cli_ok("user", "sso-exempt", env.slug, email, "on")
        r = Client(env.srv, env.slug).post(f"{API}/auth/login", login)
        assert r.status == 200, r
    finally:
        env.configure(sso_required=False)


def test_a_reset_link_sets_no_password_once_sso_is_required(env):
    """A link mailed before "SSO required" applied to the user sets nothing
    after: SSO users have no password to set (docs/auth.md "Recovery")."""
    uid, email = new_user(env.admin, ["staff"], local=f"dora-{secrets.token_hex(3)}")
    token = secrets.token_urlsafe(32)[:43]
    phc = sql_one(env.srv, env.slug, f"SELECT password_hash FROM users WHERE id = {uid}")
    now = int(time.time())
    tenant_sql(env.srv, env.slug,
               "INSERT INTO password_resets (token_hash, user_id, bound_to, created_at,"
               f" expires_at, used_at) VALUES ('{hashlib.sha256(token.encode()).hexdigest()}',"
               f" {uid}, '{hashlib.sha256(phc.encode()).hexdigest()}', {now}, {now + 600}, 0)")
    body = {"token": token, "password": "a new password for dora"}
    try:
        env.configure(sso_required=True)
        r = Client(env.srv, env.slug).post(f"{API}/auth/password-reset/confirm", body)
        assert r.status == 403, r
        assert sql_one(env.srv, env.slug, f"SELECT password_hash FROM users WHERE id = {uid}") == phc
    finally:
        env.configure(sso_required=False)
    # The same link, SSO no longer required: it works (the refusal was SSO's).
    r = Client(env.srv, env.slug).post(f"{API}/auth/password-reset/confirm", body)
    assert r.status == 200, r


def test_sso_session_skips_the_mfa_policy_a_password_session_meets(tmp_path_factory, tls_cert):
    """With MFA required for everyone, a password session may only enrol; an SSO
    session (the IdP was the second factor) works at once. Its own tenant: the
    policy binds the admin's token too."""
    from psa import sign_in
    with conftest._servers(tmp_path_factory, tls_cert) as make:
        srv = make().start()
        e = SsoEnv(srv, tmp_path_factory.mktemp("saml-mfa"), "ssomfa")
        try:
            e.configure()
            _, pw_email = new_user(e.admin, ["staff"], local=f"pw-{secrets.token_hex(3)}")
            r = e.admin.request("PUT", f"{API}/settings/security", body={"mfa_required": True})
            assert r.status == 200, r
            pw = sign_in(srv, e.slug, pw_email)
            assert pw.get(f"{API}/auth/tokens").status == 403  # the control: enrol first
            pw.close()
            e.idp.user = (f"mfa-{secrets.token_hex(3)}@{e.domain}", {})
            location, cookie = e.begin()
            _, fields = idp_page(location)
            r = e.acs_post(fields["SAMLResponse"], fields.get("RelayState"), cookie)
            assert r.status == 303, r
            sso = Client(srv, e.slug, session=session_of(r))
            try:
                assert sso.get(f"{API}/auth/tokens").status == 200
                assert sso.get(f"{API}/customers").status == 200
            finally:
                sso.close()
        finally:
            e.close()


# --- the admin API -----------------------------------------------------------------

def test_settings_show_and_validation(env):
    s = env.admin.ok("GET", SSO)
    assert s["configured"] is True and s["enabled"] is True
    assert s["sp"]["entity_id"] == env.entity and s["sp"]["acs_url"] == env.acs
    assert s["sp"]["certificate"].startswith("-----BEGIN CERTIFICATE-----")
    assert s["idp"]["entity_id"] == env.idp.entity_id
    assert s["idp"]["sso_url"] == env.idp.sso_url
    assert len(s["idp"]["certificates"]) == 1 and ":" in s["idp"]["certificates"][0]["sha256"]
    assert "sp_key" not in json.dumps(s) and "PRIVATE" not in json.dumps(s)
    for bad in ({"allowed_domains": []}, {"allowed_domains": ["not a domain"]},
                {"idp_metadata": "<x/>"}, {"idp_metadata": "<!DOCTYPE x><x/>"},
                {"default_role": "no-such-role"}, {"attributes": {"colour": "x"}},
                {"unknown": 1}):
        body = {"enabled": True, "allowed_domains": [env.domain], **bad}
        r = env.admin.request("PUT", SSO, body=body)
        assert r.status == 400 and r.body["error"]["code"] == "invalid", (bad, r)
    assert env.admin.ok("GET", SSO) == s  # nothing changed


def test_settings_need_the_permission(env):
    _, email = new_user(env.admin, ["staff"], local=f"dan-{secrets.token_hex(3)}")
    from psa import sign_in
    staff = sign_in(env.srv, env.slug, email)
    try:
        assert staff.get(SSO).status == 403
        r = staff.request("PUT", SSO, body={"enabled": False, "allowed_domains": ["x.com"]})
        assert r.status == 403, r
        assert staff.request("DELETE", SSO).status == 403
    finally:
        staff.close()
    assert env.admin.ok("GET", SSO)["enabled"] is True


def test_settings_need_every_permission(env):
    """Choosing the IdP is choosing who may sign in as the admin: settings.edit
    alone (a custom role, or an admin's token scoped to it) may not."""
    from psa import new_role, sign_in
    _, role = new_role(env.admin, ["settings.view", "settings.edit"])
    _, email = new_user(env.admin, [role], local=f"eve-{secrets.token_hex(3)}")
    eve = sign_in(env.srv, env.slug, email)
    scoped = Client(env.srv, env.slug, token=env.admin.ok(
        "POST", f"{API}/auth/tokens", {"name": f"narrow-{secrets.token_hex(2)}",
                                       "scopes": ["settings.view", "settings.edit"],
                                       "password": env.account.password})["token"])
    before = env.admin.ok("GET", SSO)
    try:
        for c in (eve, scoped):
            assert c.get(SSO).status == 200  # reading is settings.view's
            r = c.request("PUT", SSO, body={"idp_metadata": env.idp.metadata(),
                                            "allowed_domains": [env.domain],
                                            "idp_initiated": True})
            assert r.status == 403 and "every permission" in r.body["error"]["message"], r
            assert c.request("DELETE", SSO).status == 403
    finally:
        eve.close()
        scoped.close()
    assert env.admin.ok("GET", SSO) == before


def test_sp_metadata(env):
    r = env.public("GET", "/saml/metadata")
    assert r.headers["content-type"].startswith("application/samlmetadata+xml")
    text = r.raw.decode()
    assert f'entityID="{env.entity}"' in text
    assert 'AuthnRequestsSigned="true"' in text and 'WantAssertionsSigned="true"' in text
    assert f'Location="{env.acs}"' in text and "PRIVATE" not in text


def test_not_configured_tenant(env, tmp_path):
    other = make_tenant(env.srv, "nosso")
    c = Client(env.srv, other.slug)
    try:
        assert c.get("/saml/metadata").status == 404
        assert c.get("/saml/login?next=/").status == 404
        r = c.request("POST", "/saml/acs",
                      headers={"Content-Type": "application/x-www-form-urlencoded"},
                      raw=b"SAMLResponse=" + urllib.parse.quote(env.signed("a@b.c")).encode())
        assert r.status in (403, 404), r
    finally:
        c.close()


def test_login_next_must_be_local(env):
    for bad in ("https://evil.example/", "//evil.example/", "/\\evil.example", "javascript:x"):
        q = urllib.parse.urlencode({"next": bad})
        r = env.public("GET", f"/saml/login?{q}")
        assert r.status == 400, (bad, r)


def sso_audit(admin):
    return admin.ok("GET", f"{API}/reporting/audit?entity=sso&limit=100")["data"]


def test_delete_turns_sso_off(tmp_path_factory, tls_cert):
    with conftest._servers(tmp_path_factory, tls_cert) as make:
        srv = make().start()
        e = SsoEnv(srv, tmp_path_factory.mktemp("saml-del"), "ssodel")
        try:
            e.configure()
            e.configure(jit=False)
            email = f"eve-{secrets.token_hex(3)}@{e.domain}"
            assert e.admin.request("DELETE", SSO).status == 204
            rows = sso_audit(e.admin)
            assert sorted(r["action"] for r in rows) == ["create", "delete", "update"], rows
            update = [r for r in rows if r["action"] == "update"][0]
            assert update["before"]["jit"] is True and update["after"]["jit"] is False, rows
            assert "PRIVATE" not in json.dumps(rows), rows
            assert e.admin.ok("GET", SSO)["configured"] is False
            assert e.public("GET", "/saml/metadata").status == 404
            r = e.acs_post(e.signed(email))
            assert r.status in (403, 404) and session_of(r) is None, r
        finally:
            e.close()

