"""Second review of the security fixes: attacks that still work.

Each test is what an attacker (or an honest client the new rules cut by
mistake) does; it fails while the hole is open.
"""

import secrets

import pytest

from conftest import check_error_body
from psa import API, admin_client
from test_identity import MANY, PASSWORD, Account, check_locked, login_reply, make_tenant

WRONG = "Not-The-Password-77-Review2"


def create_user(admin, email, password=PASSWORD):
    return admin.post(f"{API}/users", {"email": email, "password": password, "roles": ["staff"]})


# --- 3. the skeleton is of the case-folded key, the address is shown as typed -------------

@pytest.mark.parametrize("first,twin", [
    ("Iris@acme.test", "lris@acme.test"),   # capital I shown, small l: one glyph in sans-serif
    ("JOHN@acme.test", "J0HN@acme.test"),   # capital O shown, digit zero
    ("BOB@acme.test", "B0B@acme.test"),
])
def test_case_kept_in_display_defeats_the_skeleton(start_server, first, twin):
    """email_skeleton() reduces the case-folded key ("iris", "john"), so the
    UTS #39 mappings of capitals (I -> l, 0 -> O) never meet: "Iris" and
    "lris", "JOHN" and "J0HN" get different skeletons, both accounts are
    made, and the lists show them as the same address."""
    srv = start_server(login_rate_per_minute=MANY)
    t = make_tenant(srv, "case")
    admin = admin_client(srv, t)
    r = create_user(admin, first)
    assert r.status == 201, r
    # Fixed by showing addresses in lower case (ADR 0012): the capital that
    # passed for another letter is never shown, so what is shown is what the
    # skeleton compared; the twin is either refused or reads differently.
    assert r.body["email"] == first.lower(), r
    r2 = create_user(admin, twin)
    assert r2.status in (201, 409), r2
    if r2.status == 201:
        shown = {u["email"] for u in admin.get(f"{API}/users?limit=100").body["data"]}
        assert first.lower() in shown and twin.lower() in shown, shown
        assert all(e == e.lower() for e in shown), shown


# --- 2. a table full of running lockouts tells known addresses from unknown ---------------

def test_full_lockout_table_is_an_existence_oracle(start_server):
    """Once login_attempts holds only running lockouts (threshold x max_rows
    failed sign-ins), every new unknown address is answered 423 at its
    first try, while an existing user still answers 401 to a wrong
    password: one request tells whether an address has an account."""
    srv = start_server(login_rate_per_minute=MANY, login_attempts_max_rows=2)
    t = make_tenant(srv, "orcl")
    admin = admin_client(srv, t)
    known = f"staff-{secrets.token_hex(3)}@{t.slug}.example.com"
    assert create_user(admin, known).status == 201
    for i in range(2):
        g = Account(t.slug, f"ghost-{i}-{secrets.token_hex(3)}@{t.slug}.example.com", PASSWORD)
        for _ in range(5):
            check_error_body(login_reply(srv, g, WRONG), 401, "unauthorized")
        check_locked(login_reply(srv, g, WRONG))
    unknown = login_reply(srv, Account(t.slug, f"nobody-{secrets.token_hex(3)}@{t.slug}"
                                                ".example.com", PASSWORD), WRONG)
    existing = login_reply(srv, Account(t.slug, known, PASSWORD), WRONG)
    assert unknown.status == existing.status, \
        f"unknown address {unknown.status}, existing user {existing.status}"
    # Fixed by answering every failed sign-in 423 while the table is flooded,
    # with one locked_until for all (throttle_flooded): nothing else differs.
    assert unknown.body["error"].get("locked_until") == \
        existing.body["error"].get("locked_until"), (unknown.body, existing.body)
    # ...and the user who knows the password still signs in.
    assert login_reply(srv, Account(t.slug, known, PASSWORD)).status == 200


# --- security_put: the echoed key is cut in the middle of a character ---------------------

def test_security_put_bad_key_is_a_400_not_a_500(start_server):
    """security_put() echoes the key with %.64s: a non-ASCII key cut inside
    a UTF-8 sequence makes the error message invalid UTF-8, jansson refuses
    to pack it, and the reply becomes 500 out_of_memory instead of 400."""
    srv = start_server()
    t = make_tenant(srv, "spk")
    admin = admin_client(srv, t)
    r = admin.request("PUT", f"{API}/settings/security", body={"a" + "\u00e9" * 40: True})
    check_error_body(r, 400, "invalid")
