"""Lists, black box (issue #14): every list route answers with one envelope
{"data", "total", "limit", "has_more", "next_cursor"} and a Link to its
next page; keyset pages stay right while rows are inserted between them;
a cursor that was edited is a 400 and never reaches SQL; updated_since,
range filters on dates, money and the row times, and sorts (NULLs
included) page correctly; deleted rows show in the module's tombstone
feed, to those who may view the module only; and every time in a reply is
RFC 3339 UTC.

One server and one tenant for the file; runs on both drivers.
"""

import re
import secrets
import time
import urllib.parse

import pytest

from conftest import _servers
from psa import (API, admin_client, check_error, check_forbidden, make_tenant, modules_meta,
                 new_role, new_user, route_table, sign_in)
from test_identity import rfc3339, tenant_sql, unix

MANY = 100000
ENVELOPE = {"data", "total", "limit", "has_more", "next_cursor"}
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\Z")
# GET routes without a parameter that are documents, not lists.
NOT_LISTS = {"/healthz", "/api/v1/tenant/health", "/api/v1/me", "/api/v1/settings/security",
             "/api/v1/settings/allowlist", "/api/v1/meta/modules", "/api/v1/meta/permissions",
             "/api/v1/openapi.json", "/api/v1/webhooks/event-types", "/api/v1/jobs/summary",
             "/api/v1/settings/sso", "/api/v1/settings/mail", "/saml/metadata", "/saml/login",
             "/api/v1/settings/mailbox", "/api/v1/auth/sessions/notice"}


@pytest.fixture(scope="module")
def srv(tmp_path_factory, tls_cert):
    with _servers(tmp_path_factory, tls_cert) as make:
        yield make(login_rate_per_minute=MANY).start()


@pytest.fixture(scope="module")
def t(srv):
    class T:
        pass
    t = T()
    t.srv = srv
    t.account = make_tenant(srv, "lists")
    t.slug = t.account.slug
    t.admin = admin_client(srv, t.account)
    t.meta = modules_meta(t.admin)
    t.customer = t.admin.ok("POST", f"{API}/customers", {"name": "Acme"})["id"]
    return t


def product(t, name, price, sku=None):
    return t.admin.ok("POST", f"{API}/products",
                      {"name": name, "sku": sku or f"S-{secrets.token_hex(3)}",
                       "unit_price_cents": price, "description": "d"})


def walk(client, path, limit, between=None):
    """Every row of a list, page by page through next_cursor (checking the
    envelope, total and Link on each) -> (rows, pages). between(i) runs
    after page i."""
    out, pages, sep = [], 0, "&" if "?" in path else "?"
    url = f"{path}{sep}limit={limit}"
    while True:
        r = client.get(url)
        assert r.status == 200, (url, r)
        assert set(r.body) == ENVELOPE and r.body["limit"] == limit, r.body
        assert len(r.body["data"]) <= limit
        out += r.body["data"]
        pages += 1
        if not r.body["has_more"]:
            assert r.body["next_cursor"] is None and "link" not in r.headers, r
            return out, pages
        assert len(r.body["data"]) == limit, r
        cur = r.body["next_cursor"]
        assert re.fullmatch(r"[A-Za-z0-9_-]+", cur), cur
        link = r.headers["link"]
        m = re.fullmatch(r'<(/[^>]*)>; rel="next"', link)
        assert m, link
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(m.group(1)).query)
        assert q["cursor"] == [cur] and q["limit"] == [str(limit)], link
        if between:
            between(pages)
        url = m.group(1)  # the Link is the way on
        assert pages < 200


def list_routes():
    out = []
    for r in route_table():
        p = r["pattern"]
        if r["method"] != "GET" or ":" in p or p in NOT_LISTS or p.endswith("/export"):
            continue
        out.append(p)
    return out


def times_ok(v, where):
    """Every *_at / *_until / "at" value in v is RFC 3339 UTC or null."""
    if isinstance(v, dict):
        for k, x in v.items():
            if k == "at" or k.endswith("_at") or k.endswith("_until"):
                assert x is None or (isinstance(x, str) and TIME.match(x)), (where, k, x)
            else:
                times_ok(x, where)
    elif isinstance(v, list):
        for x in v:
            times_ok(x, where)


def test_every_list_route_has_the_envelope(t):
    product(t, "env-row", 1)
    t.admin.ok("DELETE", f"{API}/products/{product(t, 'env-gone', 1)['id']}")
    uid = t.admin.ok("GET", f"{API}/me")["user"]["id"]
    paths = list_routes()
    assert {"/api/v1/users", "/api/v1/roles", "/api/v1/auth/tokens", "/api/v1/reporting/audit",
            "/api/v1/products", "/api/v1/products/deleted"} <= set(paths), paths
    paths += [f"/api/v1/users/{uid}/tokens", f"/api/v1/customers/{t.customer}/audit"]
    for p in paths:
        r = t.admin.get(f"{p}?limit=1")
        assert r.status == 200, (p, r)
        assert set(r.body) == ENVELOPE, (p, r.body)
        assert r.body["limit"] == 1 and isinstance(r.body["total"], int), (p, r.body)
        assert isinstance(r.body["data"], list) and len(r.body["data"]) <= 1, (p, r.body)
        assert r.body["has_more"] == (r.body["total"] > 1) == (r.body["next_cursor"] is not None)
        assert ("link" in r.headers) == r.body["has_more"], (p, r.headers)
        times_ok(r.body, p)
        # Pages are "limit" (1..100) and "cursor": the old names and bad values are refused.
        for q in ("limit=0", "limit=101", "per_page=5", "page=2", "cursor=%27%20OR%201%3D1"):
            check_error(t.admin.get(f"{p}?{q}"), 400, "invalid", q.split("=")[0])
    # Every row of every module: its times are RFC 3339 too, in lists and alone.
    for m in t.meta:
        r = t.admin.get(f"{API}/{m}?limit=100")
        times_ok(r.body, m)
        for row in r.body["data"][:1]:
            times_ok(t.admin.ok("GET", f"{API}/{m}/{row['id']}"), m)
    times_ok(t.admin.ok("GET", f"{API}/users/{uid}"), "user")
    # Audit rows keep what they recorded and show their time as RFC 3339.
    for row in t.admin.ok("GET", f"{API}/reporting/audit?limit=100")["data"]:
        assert TIME.match(row["at"]), row


def test_cursor_pages_while_rows_are_inserted(t):
    """Each existing row is seen exactly once however rows are inserted
    between pages; in id order the new ones are seen too, once."""
    mark = secrets.token_hex(3)
    start = [product(t, f"ins-{mark}-{c}", 100 + i, sku=f"INS{mark}")["id"]
             for i, c in enumerate("mfkbqhxdsa")]
    added = []

    def insert(i):
        # before and after the page's end, in name and in id
        for name in (f"ins-{mark}-a{i}", f"ins-{mark}-z{i}"):
            added.append(product(t, name, 1, sku=f"INS{mark}")["id"])

    rows, pages = walk(t.admin, f"{API}/products?sku=INS{mark}", 3, insert)
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids)), ids
    assert set(start) | set(added) == set(ids) and pages >= 4, (ids, added)
    assert ids == sorted(ids)

    rows, _ = walk(t.admin, f"{API}/products?sku=INS{mark}&sort=-name", 3, insert)
    names = [r["name"] for r in rows]
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids)), names
    assert set(start) <= set(ids), (start, ids)
    assert names == sorted(names, reverse=True), names
    total = t.admin.ok("GET", f"{API}/products?sku=INS{mark}&limit=1")["total"]
    assert total == len(start) + len(added), total


def test_tampered_cursor_is_refused(t):
    mark = secrets.token_hex(3)
    for i in range(3):
        product(t, f"tc-{mark}-{i}", 1, sku=f"TC{mark}")
    r = t.admin.ok("GET", f"{API}/products?sku=TC{mark}&limit=1&sort=name")
    cur = r["next_cursor"]
    assert r["total"] == 3 and cur
    ok = t.admin.ok("GET", f"{API}/products?sku=TC{mark}&limit=1&sort=name&cursor={cur}")
    assert [x["name"] for x in ok["data"]] == [f"tc-{mark}-1"], ok
    edits = {cur[:-1] + ("A" if cur[-1] != "A" else "B"), cur[1:], cur + "A", cur[:10],
             "A" + cur[1:] if cur[0] != "A" else "B" + cur[1:],
             urllib.parse.quote("' OR 1=1 --"), "x" * 2000}
    for bad in edits:
        check_error(t.admin.get(f"{API}/products?sku=TC{mark}&sort=name&cursor={bad}"),
                    400, "invalid", "cursor")
    # Made for another sort, or another list: refused too.
    check_error(t.admin.get(f"{API}/products?sku=TC{mark}&sort=-name&cursor={cur}"),
                400, "invalid", "cursor")
    check_error(t.admin.get(f"{API}/customers?sort=name&cursor={cur}"), 400, "invalid", "cursor")


def test_updated_since_and_times(t):
    mark = secrets.token_hex(3)
    old = [product(t, f"us-{mark}-{i}", 5, sku=f"US{mark}")["id"] for i in range(3)]
    # Backdated behind bulwark's back: these last changed in 2020.
    tenant_sql(t.srv, t.slug, f"UPDATE products SET updated_at = 1577836800, created_at = 1577836800"
                              f" WHERE sku = 'US{mark}'")
    t.admin.ok("PATCH", f"{API}/products/{old[1]}", {"description": "changed"})
    new = product(t, f"us-{mark}-new", 5, sku=f"US{mark}")
    assert TIME.match(new["created_at"]) and TIME.match(new["updated_at"]), new
    assert abs(unix(new["created_at"]) - time.time()) < 120, new
    r = t.admin.ok("GET", f"{API}/products?sku=US{mark}&updated_since=2021-01-01T00:00:00Z")
    assert sorted(x["id"] for x in r["data"]) == sorted([old[1], new["id"]]) and r["total"] == 2, r
    got = t.admin.ok("GET", f"{API}/products/{old[0]}")
    assert got["updated_at"] == "2020-01-01T00:00:00Z", got
    # the same instant with an offset (its '+' percent-encoded), and the row times' ranges
    r = t.admin.ok("GET", f"{API}/products?sku=US{mark}&updated_since=2020-01-01T01:00:00%2B01:00")
    assert r["total"] == 4, r
    r = t.admin.ok("GET", f"{API}/products?sku=US{mark}&created_at.lt=2020-01-01T00:00:01Z")
    assert sorted(x["id"] for x in r["data"]) == sorted(old), r
    r = t.admin.ok("GET", f"{API}/products?sku=US{mark}&updated_at.gt=2020-01-01T00:00:00Z")
    assert sorted(x["id"] for x in r["data"]) == sorted([old[1], new["id"]]), r
    for q in ("updated_since=2021-01-01", "updated_since=1609459200", "updated_since=",
              "updated_since=2021-01-01T00:00:00", "created_at.gte=yesterday",
              "updated_since=2021-02-30T00:00:00Z"):
        check_error(t.admin.get(f"{API}/products?{q}"), 400, "invalid", q.split("=")[0])


def test_range_filters_and_sorts(t):
    mark = secrets.token_hex(3)
    prices = [100, 250, 250, 999, 5000]
    ids = [product(t, f"rg-{mark}-{i}", p, sku=f"RG{mark}")["id"] for i, p in enumerate(prices)]
    base = f"{API}/products?sku=RG{mark}"
    r = t.admin.ok("GET", f"{base}&unit_price_cents.gte=250&unit_price_cents.lt=999")
    assert [x["id"] for x in r["data"]] == ids[1:3] and r["total"] == 2, r
    r = t.admin.ok("GET", f"{base}&unit_price_cents.gt=250&unit_price_cents.lte=5000")
    assert [x["id"] for x in r["data"]] == ids[3:], r
    # Sort by money descending, paged: ties broken by id the same way, nothing lost.
    rows, _ = walk(t.admin, f"{base}&sort=-unit_price_cents", 2)
    assert [x["unit_price_cents"] for x in rows] == sorted(prices, reverse=True), rows
    assert [x["id"] for x in rows] == [ids[4], ids[3], ids[2], ids[1], ids[0]], rows

    # Dates, with NULLs (a ticket without a due date) in either direction.
    dues = ["2026-03-01", None, "2026-01-15", None, "2026-02-10", "2026-01-15"]
    tids = []
    for i, d in enumerate(dues):
        body = {"customer_id": t.customer, "subject": f"rg-{mark}-{i}"}
        if d:
            body["due_on"] = d
        tids.append(t.admin.ok("POST", f"{API}/tickets", body)["id"])
    want = sorted(range(len(dues)), key=lambda i: (dues[i] is not None, dues[i] or "", tids[i]))
    rows, _ = walk(t.admin, f"{API}/tickets?sort=due_on", 2)
    mine = [x["id"] for x in rows if x["subject"].startswith(f"rg-{mark}-")]
    assert mine == [tids[i] for i in want], (mine, dues)
    rows, _ = walk(t.admin, f"{API}/tickets?sort=-due_on", 2)
    mine = [x["id"] for x in rows if x["subject"].startswith(f"rg-{mark}-")]
    assert mine == [tids[i] for i in reversed(want)], (mine, dues)
    r = t.admin.ok("GET", f"{API}/tickets?due_on.gte=2026-01-15&due_on.lt=2026-03-01&limit=100")
    mine = sorted(x["id"] for x in r["data"] if x["subject"].startswith(f"rg-{mark}-"))
    assert mine == sorted([tids[2], tids[4], tids[5]]), r
    # Ranges on declared date, money and integer fields only, with good values.
    for q in ("name.gte=a", "description.lt=x", "unit_price_cents.gte=cheap",
              "due_on.gte=2026-13-01", "unit_price_cents.between=1", "sort=description"):
        mod = "tickets" if q.startswith("due_on") else "products"
        check_error(t.admin.get(f"{API}/{mod}?{q}"), 400, "invalid", q.split("=")[0])


def test_tombstones(t):
    mark = secrets.token_hex(3)
    gone = product(t, f"ts-{mark}", 1)["id"]
    kept = product(t, f"ts-{mark}-kept", 1)["id"]
    t.admin.ok("DELETE", f"{API}/products/{gone}")
    rows, _ = walk(t.admin, f"{API}/products/deleted", 2)
    mine = [x for x in rows if x["id"] == gone]
    assert len(mine) == 1 and set(mine[0]) == {"id", "deleted_at"}, rows
    assert TIME.match(mine[0]["deleted_at"]) and kept not in [x["id"] for x in rows]
    since = rfc3339(unix(mine[0]["deleted_at"]))
    r = t.admin.ok("GET", f"{API}/products/deleted?since={since}")
    assert gone in [x["id"] for x in r["data"]], r
    r = t.admin.ok("GET", f"{API}/products/deleted?since=2100-01-01T00:00:00Z")
    assert r["data"] == [] and r["total"] == 0, r
    # The feed of one module is its own: no customer was deleted here.
    r = t.admin.ok("GET", f"{API}/customers/deleted?limit=100")
    assert r["data"] == [] and r["total"] == 0, r
    for q in ("since=yesterday", "since=2026-01-01", "id=3"):
        check_error(t.admin.get(f"{API}/products/deleted?{q}"), 400, "invalid", q.split("=")[0])
    # Without products.view: refused, and the module's view is what it takes.
    _, role = new_role(t.admin, ["customers.view"])
    _, email = new_user(t.admin, [role])
    other = sign_in(t.srv, t.slug, email)
    check_forbidden(other.get(f"{API}/products/deleted"))
    check_forbidden(other.get(f"{API}/products"))
    assert other.get(f"{API}/customers/deleted").status == 200
    _, role2 = new_role(t.admin, ["products.view"])
    _, email2 = new_user(t.admin, [role2])
    viewer = sign_in(t.srv, t.slug, email2)
    r = viewer.get(f"{API}/products/deleted?limit=100")
    assert r.status == 200 and gone in [x["id"] for x in r.body["data"]], r
    other.close()
    viewer.close()


def test_total_counts_the_filter(t):
    mark = secrets.token_hex(3)
    for i in range(4):
        product(t, f"tot-{mark}", 10 * i, sku=f"TOT{mark}")
    r = t.admin.ok("GET", f"{API}/products?name=tot-{mark}&limit=1")
    assert r["total"] == 4 and len(r["data"]) == 1 and r["has_more"], r
    r = t.admin.ok("GET", f"{API}/products?name=tot-{mark}&unit_price_cents.gte=20")
    assert r["total"] == 2 and len(r["data"]) == 2 and not r["has_more"], r
    users = t.admin.ok("GET", f"{API}/users?limit=1")
    assert users["total"] == len(walk(t.admin, f"{API}/users", 1)[0]) >= 1, users
