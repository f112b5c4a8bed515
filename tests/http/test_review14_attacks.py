"""Review 14 (API conventions: idempotency, If-Match, lists, search): attacks.

Each test is what an attacker does against the code as #14 left it; it
fails while the hole is open, and asserts that nothing was given away or
changed where the control should have held. One server and one tenant for
the file.
"""

import secrets

import pytest

from conftest import _servers
from psa import API, Client, admin_client, make_tenant
from test_identity import sql_one

MANY = 100000
KEY = "Idempotency-Key"


@pytest.fixture(scope="module")
def srv(tmp_path_factory, tls_cert):
    with _servers(tmp_path_factory, tls_cert) as make:
        yield make(login_rate_per_minute=MANY).start()


class Tenant:
    def __init__(self, srv):
        self.srv = srv
        self.account = make_tenant(srv, "r14")
        self.slug = self.account.slug
        self.admin = admin_client(srv, self.account)
        self.customer = self.admin.ok("POST", f"{API}/customers", {"name": "R14 Ltd"},
                                      status=201)["id"]

    def count(self, sql):
        return int(sql_one(self.srv, self.slug, sql))


@pytest.fixture(scope="module")
def t(srv):
    return Tenant(srv)


# --- 1. Idempotency-Key replays a revealed device credential, unaudited ----------------

def test_reveal_credential_is_not_replayed_from_the_idempotency_store(t):
    """POST .../reveal_credential is a POST with a caller, so it takes an
    Idempotency-Key, and its reply {"credential": ...} was kept (sealed) in
    idempotency_keys for 24 hours: the same key again handed the write-only
    secret out once more with no audit row of the reveal (an unaudited
    reveal by anyone holding the caller's token and a key seen in a proxy
    log), and kept a second copy of it that outlives a change of the
    credential or the device's deletion. A credential is never kept: the
    retry hears that the request was carried out (409), and nothing more."""
    secret = "s3cret-" + secrets.token_hex(8)
    dev = t.admin.ok("POST", f"{API}/network_devices",
                     {"customer_id": t.customer, "name": "fw-r14", "kind": "firewall",
                      "auth_method": "password", "credential": secret}, status=201)
    path = f"{API}/network_devices/{dev['id']}/reveal_credential"
    k = "reveal-" + secrets.token_hex(6)
    audited = ("SELECT COUNT(*) FROM audit_log WHERE entity = 'network_devices' AND"
               f" entity_id = {dev['id']} AND action = 'reveal_credential'")

    first = t.admin.post(path, headers={KEY: k})
    assert first.status == 200 and first.body == {"credential": secret}, first
    assert t.count(audited) == 1

    # The credential changes; the device is then deleted.
    t.admin.ok("PATCH", f"{API}/network_devices/{dev['id']}", {"credential": "rotated"})
    t.admin.ok("DELETE", f"{API}/network_devices/{dev['id']}")
    again = t.admin.post(path, headers={KEY: k})
    assert secret.encode() not in again.raw, \
        f"the old credential came back from the idempotency store: {again}"
    assert again.status == 409 and again.body["error"]["code"] == "conflict", again
    # Nothing new was revealed, so nothing new is audited either.
    assert t.count(audited) == 1


# --- 2. A user's version misses changes the user's own routes make ------------------------

def test_password_change_moves_the_users_version(t):
    """A user row shows must_change_password (and mfa_enabled, locked_until),
    and its ETag is the version; but the password change (and MFA enable and
    disable) wrote the row without "version = version + 1". An admin who
    read the user while it still had to change its one-time password could
    PATCH it afterwards with that ETag, though the user had changed since:
    a stale If-Match that passes."""
    email = f"otp-{secrets.token_hex(4)}@{t.slug}.example.com"
    made = t.admin.post(f"{API}/users", {"email": email, "roles": ["staff"]})
    assert made.status == 201 and made.body.get("one_time_password"), made
    uid, otp = made.body["id"], made.body["one_time_password"]
    read = t.admin.get(f"{API}/users/{uid}")
    assert read.status == 200 and read.body["must_change_password"] is True, read
    stale = read.headers["etag"]

    user = Client(t.srv, t.slug)
    r = user.post(f"{API}/auth/login", {"email": email, "password": otp})
    assert r.status == 200, r
    cookie = [v for k, v in r.headers.items() if k == "set-cookie"][0]
    user = Client(t.srv, t.slug, session=cookie.split(";")[0].split("=", 1)[1])
    r = user.post(f"{API}/auth/password",
                  {"current_password": otp, "new_password": "Rev14-" + secrets.token_urlsafe(12)})
    assert r.status == 200, r

    now = t.admin.get(f"{API}/users/{uid}")
    assert now.body["must_change_password"] is False, now
    assert now.headers["etag"] != stale, "the user changed, its ETag did not"
    r = t.admin.patch(f"{API}/users/{uid}", {"disabled": True}, headers={"If-Match": stale})
    assert r.status == 412, f"a stale If-Match was honoured: {r}"
    assert t.admin.get(f"{API}/users/{uid}").body["disabled"] is False
