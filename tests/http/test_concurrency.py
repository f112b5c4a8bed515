"""Optimistic concurrency (issue #14) end to end: every module row, user and
role carries a version, sent as a strong ETag; PATCH, DELETE and module
actions take If-Match, and a stale one is refused with 412 with nothing
written (no row changed, no audit row). Two edits made at the same moment
with the same ETag: exactly one wins. A write without If-Match still goes
ahead (and still moves the version on). Rows the hooks write (an invoice's
totals when a line is added, its status when a payment covers it) move on
too, so a stale ETag sees those changes as well.

One server and one tenant for the file; rows are made through the API by
the tenant's admin (an API token scoped "*").
"""

import secrets

import pytest

from conftest import _servers
from psa import (API, Client, admin_client, check_error, make_tenant, new_role, new_user, race,
                 snapshot, snapshot_diff)
from test_identity import sql_one

MANY = 100000


@pytest.fixture(scope="module")
def srv(tmp_path_factory, tls_cert):
    with _servers(tmp_path_factory, tls_cert) as make:
        yield make(login_rate_per_minute=MANY).start()


class Tenant:
    def __init__(self, srv):
        self.srv = srv
        self.account = make_tenant(srv, "occ")
        self.slug = self.account.slug
        self.admin = admin_client(srv, self.account)
        self.admin_id = self.admin.ok("GET", f"{API}/me")["user"]["id"]
        self.customer = self.admin.ok("POST", f"{API}/customers", {"name": "Occ Ltd"},
                                      status=201)["id"]

    def client(self):
        """Another connection with the admin's token (a second browser tab)."""
        return Client(self.srv, self.slug, token=self.admin.token)

    def audit_rows(self, entity, eid, action=None):
        sql = f"SELECT COUNT(*) FROM audit_log WHERE entity = '{entity}' AND entity_id = {eid}"
        if action:
            sql += f" AND action = '{action}'"
        return int(sql_one(self.srv, self.slug, sql))


@pytest.fixture(scope="module")
def t(srv):
    return Tenant(srv)


def tag(v):
    return f'"{v}"'


def etag_of(reply):
    """The reply's ETag, checked against the version in its body."""
    assert reply.status in (200, 201), reply
    et = reply.headers.get("etag")
    assert et == tag(reply.body["version"]), (et, reply.body)
    return et


def no_etag(reply):
    assert "etag" not in reply.headers, reply.headers


def customer(t, name=None):
    r = t.admin.post(f"{API}/customers", {"name": name or f"c-{secrets.token_hex(3)}"})
    assert r.status == 201 and r.body["version"] == 1, r
    assert r.headers.get("etag") == '"1"', r.headers
    return r.body["id"]


def refused_412(reply):
    check_error(reply, 412, "precondition_failed")
    no_etag(reply)


# --- modules ---------------------------------------------------------------------------------

def test_version_in_rows_and_etag_on_every_row_reply(t):
    cid = customer(t)
    g = t.admin.get(f"{API}/customers/{cid}")
    assert list(g.body)[:2] == ["id", "version"], g.body  # "version" right after "id"
    assert etag_of(g) == '"1"'
    p = t.admin.patch(f"{API}/customers/{cid}", {"notes": "first"})
    assert etag_of(p) == '"2"' and p.body["notes"] == "first"
    assert etag_of(t.admin.get(f"{API}/customers/{cid}")) == '"2"'
    # Lists and exports show it too (the same row JSON, the same columns).
    mine = [r for r in t.admin.ok("GET", f"{API}/customers")["data"] if r["id"] == cid]
    assert mine and mine[0]["version"] == 2, mine
    csv = t.admin.get(f"{API}/customers/export?format=csv")
    assert csv.status == 200 and csv.raw.split(b"\r\n")[0].startswith(b'"id","version",'), csv
    # An update that changes nothing writes nothing: the version stays.
    same = t.admin.patch(f"{API}/customers/{cid}", {"notes": "first"})
    assert etag_of(same) == '"2"'


def test_two_concurrent_patches_one_wins(t):
    """The issue's criterion: two edits with the same ETag at the same moment
    give one 200 and one 412; the row holds only the winner's change and the
    audit log exactly one new row."""
    for _ in range(3):  # a few rounds: whichever thread wins, the loser is refused
        cid = customer(t)
        et = etag_of(t.admin.get(f"{API}/customers/{cid}"))
        audit = t.audit_rows("customers", cid)
        a, b = t.client(), t.client()
        try:
            ra, rb = race([
                lambda: a.patch(f"{API}/customers/{cid}", {"notes": "from A"},
                                headers={"If-Match": et}),
                lambda: b.patch(f"{API}/customers/{cid}", {"notes": "from B"},
                                headers={"If-Match": et}),
            ])
        finally:
            a.close()
            b.close()
        assert sorted([ra.status, rb.status]) == [200, 412], (ra, rb)
        win, lose = (ra, rb) if ra.status == 200 else (rb, ra)
        refused_412(lose)
        assert etag_of(win) == '"2"'
        now = t.admin.get(f"{API}/customers/{cid}")
        assert now.body["notes"] == win.body["notes"] and now.body["version"] == 2, now.body
        assert t.audit_rows("customers", cid) == audit + 1
        # The loser reads again and retries with the new ETag: it goes through.
        retry = t.admin.patch(f"{API}/customers/{cid}", {"notes": lose is ra and "A2" or "B2"},
                              headers={"If-Match": etag_of(now)})
        assert etag_of(retry) == '"3"'


def test_stale_patch_changes_nothing(t):
    cid = customer(t)
    t.admin.ok("PATCH", f"{API}/customers/{cid}", {"notes": "v2"})
    before = snapshot(t.srv, t.slug)
    r = t.admin.patch(f"{API}/customers/{cid}", {"notes": "stale"}, headers={"If-Match": '"1"'})
    refused_412(r)
    assert "version 2" in r.body["error"]["message"], r.body
    assert snapshot_diff(before, snapshot(t.srv, t.slug)) == ""


def test_stale_delete_keeps_the_row(t):
    cid = customer(t)
    t.admin.ok("PATCH", f"{API}/customers/{cid}", {"notes": "moved on"})
    before = snapshot(t.srv, t.slug)
    refused_412(t.admin.delete(f"{API}/customers/{cid}", headers={"If-Match": '"1"'}))
    assert snapshot_diff(before, snapshot(t.srv, t.slug)) == ""
    assert t.admin.get(f"{API}/customers/{cid}").status == 200
    # With the current ETag (or a list holding it) it goes.
    r = t.admin.delete(f"{API}/customers/{cid}", headers={"If-Match": '"1", "2"'})
    assert r.status == 200 and r.body == {"id": cid, "deleted": True}, r
    assert t.admin.get(f"{API}/customers/{cid}").status == 404
    assert t.audit_rows("customers", cid, "delete") == 1


def test_stale_action_changes_nothing(t):
    tk = t.admin.ok("POST", f"{API}/tickets", {"customer_id": t.customer, "subject": "Jam"},
                    status=201)
    assert tk["version"] == 1
    t.admin.ok("PATCH", f"{API}/tickets/{tk['id']}", {"subject": "Paper jam"})
    before = snapshot(t.srv, t.slug)
    r = t.admin.post(f"{API}/tickets/{tk['id']}/assign", {"assignee_id": t.admin_id},
                     headers={"If-Match": '"1"'})
    refused_412(r)
    assert snapshot_diff(before, snapshot(t.srv, t.slug)) == ""
    # The current one: assigned (and opened), a new version, its ETag on the reply.
    r = t.admin.post(f"{API}/tickets/{tk['id']}/assign", {"assignee_id": t.admin_id},
                     headers={"If-Match": '"2"'})
    assert etag_of(r) == '"3"' and r.body["assignee_id"] == t.admin_id, r
    assert r.body["status"] == "open"


def test_if_match_forms(t):
    cid = customer(t)
    url = f"{API}/customers/{cid}"
    # "*": any current version.
    assert etag_of(t.admin.patch(url, {"notes": "star"}, headers={"If-Match": "*"})) == '"2"'
    # A weak tag never matches, not even the current version's.
    before = snapshot(t.srv, t.slug)
    refused_412(t.admin.patch(url, {"notes": "weak"}, headers={"If-Match": 'W/"2"'}))
    # Tags that name no version of ours, or versions with leading zeros: no match.
    for h in ('"abc"', '"02"', '"99999999999999999999"', '"", W/"2"'):
        refused_412(t.admin.patch(url, {"notes": "other"}, headers={"If-Match": h}))
    # Malformed: 400, whatever the version.
    for h in ("2", '"2', '"2" "3"', '*, "2"', "W/2", "W/", ",", '"2";'):
        r = t.admin.patch(url, {"notes": "bad"}, headers={"If-Match": h})
        check_error(r, 400, "invalid", "If-Match")
        no_etag(r)
    refused_412(t.admin.delete(url, headers={"If-Match": 'W/"2"'}))
    assert snapshot_diff(before, snapshot(t.srv, t.slug)) == ""
    # A list with the current version anywhere in it, empty elements and spaces allowed.
    r = t.admin.patch(url, {"notes": "list"}, headers={"If-Match": ' "7" , W/"2",, "2" '})
    assert etag_of(r) == '"3"'
    # A missing row is 404, precondition or not.
    for h in ("*", '"1"'):
        check_error(t.admin.patch(f"{API}/customers/987654321", {"notes": "x"},
                                  headers={"If-Match": h}), 404, "not_found")


def test_without_if_match_still_writes_and_moves_on(t):
    cid = customer(t)
    url = f"{API}/customers/{cid}"
    for n in (2, 3):
        assert etag_of(t.admin.patch(url, {"notes": f"n{n}"})) == tag(n)
    assert int(sql_one(t.srv, t.slug, f"SELECT version FROM customers WHERE id = {cid}")) == 3
    # ...so an edit made with the ETag read before those is refused.
    refused_412(t.admin.patch(url, {"notes": "late"}, headers={"If-Match": '"1"'}))


def test_hook_writes_move_the_version(t):
    """An invoice changes when its lines or payments do: its version moves,
    and an edit made with the ETag read before is refused."""
    inv = t.admin.post(f"{API}/invoices", {"customer_id": t.customer})
    inv_tag = etag_of(inv)
    iid = inv.body["id"]
    line = t.admin.post(f"{API}/invoice_lines", {"invoice_id": iid, "description": "Support",
                                                 "quantity": 2, "unit_price_cents": 5000})
    assert etag_of(line) == '"1"'
    now = t.admin.get(f"{API}/invoices/{iid}")
    assert now.body["total_cents"] > 0 and etag_of(now) != inv_tag, now.body
    before = snapshot(t.srv, t.slug)
    refused_412(t.admin.patch(f"{API}/invoices/{iid}", {"notes": "stale"},
                              headers={"If-Match": inv_tag}))
    refused_412(t.admin.post(f"{API}/invoices/{iid}/send", headers={"If-Match": inv_tag}))
    assert snapshot_diff(before, snapshot(t.srv, t.slug)) == ""
    sent = t.admin.post(f"{API}/invoices/{iid}/send", headers={"If-Match": etag_of(now)})
    assert sent.body["status"] == "sent" and etag_of(sent) != etag_of(now), sent
    # A payment covering it marks it paid: another version.
    t.admin.ok("POST", f"{API}/payments",
               {"invoice_id": iid, "amount_cents": sent.body["total_cents"], "method": "cash",
                "received_on": "2026-02-01"}, status=201)
    paid = t.admin.get(f"{API}/invoices/{iid}")
    assert paid.body["status"] == "paid" and paid.body["version"] > sent.body["version"], paid
    refused_412(t.admin.patch(f"{API}/invoices/{iid}", {"notes": "x"},
                              headers={"If-Match": etag_of(sent)}))


def test_action_reply_that_is_not_the_row_has_no_etag(t):
    r = t.admin.post(f"{API}/network_devices",
                     {"customer_id": t.customer, "name": "fw-1", "kind": "firewall",
                      "auth_method": "password", "credential": "s3cret-" + secrets.token_hex(4)})
    dev = etag_of(r)
    rev = t.admin.post(f"{API}/network_devices/{r.body['id']}/reveal_credential",
                       headers={"If-Match": dev})
    assert rev.status == 200 and "credential" in rev.body, rev
    no_etag(rev)
    # Revealing writes nothing: the version stays (but stale is still refused).
    assert etag_of(t.admin.get(f"{API}/network_devices/{r.body['id']}")) == dev
    refused_412(t.admin.post(f"{API}/network_devices/{r.body['id']}/reveal_credential",
                             headers={"If-Match": '"7"'}))


# --- users -------------------------------------------------------------------------------

def test_users_versions(t):
    uid, _ = new_user(t.admin, ["staff"])
    url = f"{API}/users/{uid}"
    g = t.admin.get(url)
    assert list(g.body)[:2] == ["id", "version"] and etag_of(g) == '"1"', g.body
    rid, rname = new_role(t.admin, ["customers.view"])
    p = t.admin.patch(url, {"roles": ["staff", rname]}, headers={"If-Match": '"1"'})
    assert etag_of(p) == '"2"' and sorted(p.body["roles"]) == sorted(["staff", rname]), p.body
    before = snapshot(t.srv, t.slug)
    refused_412(t.admin.patch(url, {"roles": ["staff"]}, headers={"If-Match": '"1"'}))
    refused_412(t.admin.patch(url, {"disabled": True}, headers={"If-Match": 'W/"2"'}))
    refused_412(t.admin.delete(url, headers={"If-Match": '"1"'}))
    check_error(t.admin.patch(url, {"roles": ["staff"]}, headers={"If-Match": "2"}), 400,
                "invalid", "If-Match")
    assert snapshot_diff(before, snapshot(t.srv, t.slug)) == ""
    # Without If-Match: goes ahead, moves the version on.
    assert etag_of(t.admin.patch(url, {"disabled": True})) == '"3"'
    assert etag_of(t.admin.patch(url, {"disabled": False}, headers={"If-Match": "*"})) == '"4"'
    r = t.admin.delete(url, headers={"If-Match": '"4"'})
    assert r.status == 200, r
    assert t.admin.get(url).status == 404


def test_users_concurrent_patches_one_wins(t):
    uid, _ = new_user(t.admin, ["staff"])
    _, ra_name = new_role(t.admin, ["customers.view"])
    _, rb_name = new_role(t.admin, ["tickets.view"])
    url = f"{API}/users/{uid}"
    et = etag_of(t.admin.get(url))
    audit = t.audit_rows("users", uid)
    a, b = t.client(), t.client()
    try:
        ra, rb = race([
            lambda: a.patch(url, {"roles": ["staff", ra_name]}, headers={"If-Match": et}),
            lambda: b.patch(url, {"roles": ["staff", rb_name]}, headers={"If-Match": et}),
        ])
    finally:
        a.close()
        b.close()
    assert sorted([ra.status, rb.status]) == [200, 412], (ra, rb)
    win, lose = (ra, rb) if ra.status == 200 else (rb, ra)
    refused_412(lose)
    now = t.admin.get(url)
    assert sorted(now.body["roles"]) == sorted(win.body["roles"]) and now.body["version"] == 2
    assert t.audit_rows("users", uid) == audit + 1


# --- roles -------------------------------------------------------------------------------

def test_roles_versions(t):
    r = t.admin.post(f"{API}/roles", {"name": f"occ-{secrets.token_hex(3)}", "description": "d",
                                      "permissions": ["customers.view"]})
    assert etag_of(r) == '"1"'
    url = f"{API}/roles/{r.body['id']}"
    g = t.admin.get(url)
    assert list(g.body)[:2] == ["id", "version"] and etag_of(g) == '"1"', g.body
    p = t.admin.patch(url, {"permissions": ["customers.view", "tickets.view"]},
                      headers={"If-Match": '"1"'})
    assert etag_of(p) == '"2"', p
    before = snapshot(t.srv, t.slug)
    refused_412(t.admin.patch(url, {"description": "stale"}, headers={"If-Match": '"1"'}))
    refused_412(t.admin.patch(url, {"permissions": []}, headers={"If-Match": 'W/"2"'}))
    refused_412(t.admin.delete(url, headers={"If-Match": '"1"'}))
    check_error(t.admin.delete(url, headers={"If-Match": '"2'}), 400, "invalid", "If-Match")
    assert snapshot_diff(before, snapshot(t.srv, t.slug)) == ""
    assert etag_of(t.admin.patch(url, {"description": "no precondition"})) == '"3"'
    # Listed with its version too.
    listed = [x for x in t.admin.ok("GET", f"{API}/roles?limit=100")["data"] if x["id"] == r.body["id"]]
    assert listed and listed[0]["version"] == 3, listed
    assert t.admin.delete(url, headers={"If-Match": '"2", "3"'}).status == 200
    assert t.admin.get(url).status == 404


def test_roles_concurrent_patches_one_wins(t):
    rid, _ = new_role(t.admin, ["customers.view"])
    url = f"{API}/roles/{rid}"
    et = etag_of(t.admin.get(url))
    audit = t.audit_rows("roles", rid)
    a, b = t.client(), t.client()
    try:
        ra, rb = race([
            lambda: a.patch(url, {"description": "from A"}, headers={"If-Match": et}),
            lambda: b.patch(url, {"description": "from B"}, headers={"If-Match": et}),
        ])
    finally:
        a.close()
        b.close()
    assert sorted([ra.status, rb.status]) == [200, 412], (ra, rb)
    win, lose = (ra, rb) if ra.status == 200 else (rb, ra)
    refused_412(lose)
    now = t.admin.get(url)
    assert now.body["description"] == win.body["description"] and now.body["version"] == 2
    assert t.audit_rows("roles", rid) == audit + 1
