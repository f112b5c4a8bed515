"""The module engine end to end: cross-tenant IDOR on every ":id" route,
input validation generated from GET /api/v1/meta/modules, lists and
exports, encryption at rest through the API, write-only credentials, and
the light workflows (tickets, invoices, payments, deletes).

One server for the module; tenants per concern, all rows made through the
API as each tenant's admin (an API token scoped "*").
"""

import csv
import io
import secrets

import pytest

from conftest import DRIVER, _servers, mariadb_dump
from psa import (API, Client, admin_client, check_error, check_forbidden, fill, make_rows,
                 make_tenant, modules_meta, new_role, new_user, route_table, sign_in, snapshot,
                 snapshot_diff, update_body, valid_body, race)
from test_identity import PASSWORD, sql_one, tenant_sql

MANY = 100000


@pytest.fixture(scope="module")
def srv(tmp_path_factory, tls_cert):
    with _servers(tmp_path_factory, tls_cert) as make:
        yield make(login_rate_per_minute=MANY).start()


class Tenant:
    def __init__(self, srv, prefix):
        self.srv = srv
        self.account = make_tenant(srv, prefix)
        self.slug = self.account.slug
        self.admin = admin_client(srv, self.account)
        self.admin_id = self.admin.ok("GET", f"{API}/me")["user"]["id"]
        self.meta = modules_meta(self.admin)


@pytest.fixture(scope="module")
def work(srv):
    """A tenant with one row per module (a sent invoice with one line and a payment)."""
    t = Tenant(srv, "mods")
    t.marker = "MW" + secrets.token_hex(4)
    t.ids = make_rows(t.admin, t.meta, t.marker, t.admin_id)
    return t


def count(t, module):
    return int(sql_one(t.srv, t.slug, f"SELECT COUNT(*) FROM {module}"))


# --- 2. cross-tenant IDOR ---------------------------------------------------------------

def test_cross_tenant_ids_are_not_found(srv):
    a = Tenant(srv, "idor-a")
    b = Tenant(srv, "idor-b")
    marker = "IDORB" + secrets.token_hex(5)
    make_rows(b.admin, b.meta, marker, b.admin_id)
    ids = make_rows(b.admin, b.meta, marker, b.admin_id)  # ids above anything A could have
    ids["users"], _ = new_user(b.admin, ["staff"], f"{marker.lower()}-1")
    ids["users"], _ = new_user(b.admin, ["staff"], f"{marker.lower()}-2")
    ids["roles"], _ = new_role(b.admin, ["customers.view"], name=f"{marker}-role")
    for _ in range(3):
        tok = b.admin.ok("POST", f"{API}/auth/tokens",
                         {"name": marker, "scopes": ["*"], "password": PASSWORD})
    ids["tokens"] = tok["id"]
    tables = {**{m: m for m in b.meta}, "users": "users", "roles": "roles",
              "tokens": "api_tokens"}
    for what, table in tables.items():
        n = sql_one(srv, a.slug, f"SELECT COUNT(*) FROM {table} WHERE id = {ids[what]}")
        assert n == "0", f"{table} {ids[what]} exists in A too: the test proves nothing"

    before = snapshot(srv, b.slug)
    failures = []
    for r in route_table():
        if ":id" not in r["pattern"]:
            continue
        path = fill(r["pattern"], ids)
        body = None
        if r["method"] == "PATCH":
            body = update_body(a.meta, r["module"], "A") if r["module"] else \
                {"description": "A"} if "/roles/" in path else {"disabled": True}
        elif r["method"] == "POST" and r["module"]:
            body = {"assignee_id": a.admin_id} if path.endswith("/assign") else {}
        reply = a.admin.request(r["method"], path, body=body)
        if reply.status != 404 or reply.body.get("error", {}).get("code") != "not_found":
            failures.append(f"{r['method']} {path}: {reply}")
        if marker.encode() in reply.raw or marker.lower().encode() in reply.raw:
            failures.append(f"{r['method']} {path} shows B's data: {reply}")
    # Nor through a reference: A's rows cannot point at B's.
    body = valid_body(a.meta, "contacts", {"customers": ids["customers"]}, "A")
    reply = a.admin.post(f"{API}/contacts", body)
    check_error(reply, 400, "invalid", "customer_id")
    assert marker.encode() not in reply.raw
    after = snapshot(srv, b.slug)
    assert not failures, "\n".join(failures)
    assert before == after, snapshot_diff(before, after)
    assert count(a, "contacts") == 0


# --- 3. validation, generated from the metadata ---------------------------------------

def bad_values(module, f):
    """(what, value) pairs field f must refuse with a 400 naming it."""
    t, out = f["type"], []
    if t in ("string", "text"):
        out += [("too long", "a" * (f["max_length"] + 1)), ("a number", 12345)]
    elif t == "email":
        out += [("too long", "a" * (f["max_length"] - 11) + "@example.com"),
                ("a number", 12345), ("not an address", "not-an-address")]
    elif t in ("integer", "money", "reference"):
        out += [("a string", "12"), ("a float", 1.5), ("true", True)]
        if t == "integer":
            out += [("below min", f["min"] - 1), ("above max", f["max"] + 1)]
        if t == "money":
            out += [("negative", -1), ("too large", 10 ** 13 + 1)]
        if t == "reference":
            out += [("nonexistent", 987654321), ("zero", 0)]
    elif t == "boolean":
        out += [("yes", "yes"), ("1", 1)]
    elif t == "enum":
        out += [("not listed", "nope"), ("a number", 1)]
    elif t == "date":
        out += [("2026-02-30", "2026-02-30"), ("2025-02-29", "2025-02-29"),
                ("not a date", "15/01/2026"), ("a number", 20260115)]
    return out


def test_validation_refuses_and_writes_nothing(work):
    t, meta = work, work.meta
    ids = dict(t.ids)
    # Lines need a draft document; the fixture's invoice was sent.
    ids["invoices"] = t.admin.ok("POST", f"{API}/invoices",
                                 valid_body(meta, "invoices", ids, "draft"))["id"]
    failures = []
    for name, m in meta.items():
        n = count(t, name)
        base = valid_body(meta, name, {**ids, "invoices": t.ids["invoices"]}
                          if name == "payments" else ids, t.marker, full=False)
        row_id = t.ids[name]
        row_before = t.admin.ok("GET", f"{API}/{name}/{row_id}")
        cases = [("unknown field", "no_such_field", {"no_such_field": "x"})]
        for f in m["fields"]:
            if f["read_only"]:
                v = 1 if f["type"] in ("money", "integer", "reference") else "x"
                if f["type"] == "enum":
                    v = f["values"][0]
                cases.append(("read-only", f["name"], {f["name"]: v}))
                continue
            for what, v in bad_values(name, f):
                cases.append((what, f["name"], {f["name"]: v}))
        for what, field, override in cases:
            r = t.admin.post(f"{API}/{name}", {**base, **override})
            if r.status != 400 or field not in r.body.get("error", {}).get("message", ""):
                failures.append(f"POST {name} {field} {what}: {r}")
            if field == "no_such_field" or any(f["name"] == field and not f["immutable"]
                                               for f in m["fields"]):
                r = t.admin.patch(f"{API}/{name}/{row_id}", override)
                if r.status not in (400, 409) or (r.status == 400 and field not in
                                                  r.body["error"]["message"]):
                    failures.append(f"PATCH {name} {field} {what}: {r}")
        for f in m["fields"]:
            if f["immutable"]:
                r = t.admin.patch(f"{API}/{name}/{row_id}", {f["name"]: row_before[f["name"]]})
                if r.status != 400 or f["name"] not in r.body["error"]["message"]:
                    failures.append(f"PATCH {name} immutable {f['name']}: {r}")
        if count(t, name) != n:
            failures.append(f"{name}: a refused create wrote a row")
        if t.admin.ok("GET", f"{API}/{name}/{row_id}") != row_before:
            failures.append(f"{name}: a refused update changed the row")
    assert not failures, "\n".join(failures)


def test_valid_create_for_every_module(work):
    t, meta = work, work.meta
    ids = dict(t.ids)
    marker = "VC" + secrets.token_hex(4)
    for name in meta:
        if name in ("invoice_lines", "payments"):
            continue
        for full in (False, True):
            body = valid_body(meta, name, ids, marker, full=full)
            r = t.admin.post(f"{API}/{name}", body)
            assert r.status == 201, (name, full, body, r)
            shown = t.admin.ok("GET", f"{API}/{name}/{r.body['id']}")
            for k, v in body.items():
                f = next(x for x in meta[name]["fields"] if x["name"] == k)
                if f["write_only"]:
                    assert k not in shown and shown[f"{k}_set"] is True, shown
                else:
                    assert shown[k] == v, (name, k, shown)
            ids[name] = r.body["id"]
    # Lines on a draft invoice, payments on a sent one.
    r = t.admin.post(f"{API}/invoice_lines", valid_body(meta, "invoice_lines", ids, marker))
    assert r.status == 201, r
    r = t.admin.post(f"{API}/payments", valid_body(meta, "payments", t.ids, marker))
    assert r.status == 201, r


# --- 4. lists and exports ----------------------------------------------------------------

def test_lists_pagination_filters_sorts(srv):
    t = Tenant(srv, "lists")
    names = [f"prod-{c}" for c in "cadbe"]
    for i, n in enumerate(names):
        t.admin.ok("POST", f"{API}/products",
                   {"name": n, "sku": f"SKU{i}", "unit_price_cents": 100 * (i + 1),
                    "description": "d"})
    r = t.admin.ok("GET", f"{API}/products?limit=2")
    assert [p["name"] for p in r["data"]] == names[:2] and r["has_more"] is True, r
    assert r["limit"] == 2 and r["total"] == 5 and r["next_cursor"], r
    r = t.admin.ok("GET", f"{API}/products?limit=2&cursor={r['next_cursor']}")
    assert [p["name"] for p in r["data"]] == names[2:4] and r["has_more"] is True, r
    r = t.admin.ok("GET", f"{API}/products?limit=2&cursor={r['next_cursor']}")
    assert [p["name"] for p in r["data"]] == names[4:] and r["has_more"] is False, r
    assert r["next_cursor"] is None and r["total"] == 5, r
    r = t.admin.ok("GET", f"{API}/products?limit=5")
    assert len(r["data"]) == 5 and r["has_more"] is False, r
    assert len(t.admin.ok("GET", f"{API}/products?limit=100")["data"]) == 5
    for q in ("limit=101", "limit=0", "limit=x", "cursor=x", "page=1", "per_page=2"):
        check_error(t.admin.get(f"{API}/products?{q}"), 400, "invalid",
                    q.split("=")[0])
    r = t.admin.ok("GET", f"{API}/products?sort=-name")
    assert [p["name"] for p in r["data"]] == sorted(names, reverse=True), r
    r = t.admin.ok("GET", f"{API}/products?sort=unit_price_cents")
    assert [p["name"] for p in r["data"]] == names
    r = t.admin.ok("GET", f"{API}/products?name=prod-d")
    assert [p["name"] for p in r["data"]] == ["prod-d"], r
    assert t.admin.ok("GET", f"{API}/products?name=prod-zzz")["data"] == []
    # Only declared filters and sorts; never an encrypted field.
    for q, names_it in (("description=d", "description"), ("sort=description", "description"),
                        ("nope=1", "nope"), ("sort=nope", "nope"),
                        ("name=prod-d&name=prod-c", "name"), ("active=yes", "active")):
        check_error(t.admin.get(f"{API}/products?{q}"), 400, "invalid", names_it)
    meta = t.meta
    for name, m in meta.items():
        for f in m["fields"]:
            if f["encrypted"]:
                assert not f["filterable"] and not f["sortable"], (name, f)
                check_error(t.admin.get(f"{API}/{name}?{f['name']}=x"), 400, "invalid",
                            f["name"])
                check_error(t.admin.get(f"{API}/{name}?sort={f['name']}"), 400, "invalid",
                            f["name"])
                check_error(t.admin.get(f"{API}/{name}/export?{f['name']}=x"), 400,
                            "invalid", f["name"])
    # SQL in a filter value or sort is data (or refused), never SQL.
    r = t.admin.ok("GET", f"{API}/products?name=x%27%20OR%20%271%27%3D%271")
    assert r["data"] == [], r
    check_error(t.admin.get(f"{API}/products?sort=name%3BDROP%20TABLE%20products"), 400,
                "invalid")
    assert count(t, "products") == 5


def test_export_json_and_csv(srv):
    t = Tenant(srv, "export")
    evil = ["=HYPERLINK(\"http://x\")", "+SUM(1)", "-2+3", "@cmd", "plain \"quoted\""]
    for i, n in enumerate(evil):
        t.admin.ok("POST", f"{API}/products", {"name": n, "unit_price_cents": i + 1,
                                               "description": f"line1\nline2 {i}"})
    j = t.admin.ok("GET", f"{API}/products/export?format=json")
    assert j["count"] == 5 and [p["name"] for p in j["data"]] == evil, j
    r = t.admin.get(f"{API}/products/export?format=csv")
    assert r.status == 200, r
    assert r.headers["content-type"].startswith("text/csv"), r.headers
    assert "attachment" in r.headers.get("content-disposition", ""), r.headers
    rows = list(csv.reader(io.StringIO(r.raw.decode())))
    header = rows[0]
    assert header[:3] == ["id", "version", "name"] and "unit_price_cents" in header, header
    got = [row[header.index("name")] for row in rows[1:]]
    assert got == ["'" + e for e in evil[:4]] + [evil[4]], got
    # No cell at all begins with a formula character.
    for row in rows[1:]:
        for cell in row:
            assert not cell or cell[0] not in "=+-@\t\r", row
    r = t.admin.ok("GET", f"{API}/products/export?format=csv&name=%2BSUM(1)", status=200)
    check_error(t.admin.get(f"{API}/products/export?format=xml"), 400, "invalid", "format")
    check_error(t.admin.get(f"{API}/products/export?limit=2"), 400, "invalid", "limit")


# --- 5. encryption at rest and the write-only credential ---------------------------------

def stored_bytes(srv, slug):
    """The tenant database as stored (SQLite file and WAL, or a mariadb-dump),
    and the server's logs."""
    parts = [p.read_bytes() for p in (srv.access_log, srv.stderr_path, srv.stdout_path)
             if p.exists()]
    if DRIVER == "mariadb":
        parts.append(mariadb_dump(f"saas_tenant_{slug}"))
        parts.append(mariadb_dump(f"saas_tenant_{slug}", hex_blob=False))
    else:
        base = srv.var / "tenants" / f"{slug}.db"
        for suffix in ("", "-wal", "-journal"):
            p = base.with_name(base.name + suffix)
            if p.exists():
                parts.append(p.read_bytes())
    return b"\n".join(parts)


def test_encrypted_fields_at_rest(srv):
    t = Tenant(srv, "crypt")
    ids = {"users": t.admin_id}
    markers = {}
    encrypted = {name: [f for f in m["fields"] if f["encrypted"]] for name, m in t.meta.items()}
    assert {n for n, fs in encrypted.items() if fs} >= {"customers", "contacts", "payments",
                                                         "network_devices"}, encrypted
    for name in t.meta:
        body = valid_body(t.meta, name, ids, "plain")
        for f in encrypted[name]:
            if (name, f["name"]) == ("payments", "card_last_four"):
                continue  # four digits: checked in its column below
            m = f"ENC{secrets.token_hex(6)}"
            if f["type"] == "email":
                body[f["name"]] = f"{m}@example.com"
            else:
                body[f["name"]] = m
            markers[(name, f["name"])] = body[f["name"]]
        r = t.admin.post(f"{API}/{name}", body)
        assert r.status == 201, (name, r)
        ids[name] = r.body["id"]
        if name == "invoice_lines":
            t.admin.ok("POST", f"{API}/invoices/{ids['invoices']}/send")
    for (name, field), m in markers.items():
        shown = t.admin.ok("GET", f"{API}/{name}/{ids[name]}")
        if field == "credential":
            assert field not in shown and shown["credential_set"] is True, shown
            assert t.admin.ok("POST", f"{API}/{name}/{ids[name]}/reveal_credential") == \
                {"credential": m}
        else:
            assert shown[field] == m, (name, field, shown)
    assert t.admin.ok("GET", f"{API}/payments/{ids['payments']}")["card_last_four"] == "4242"
    # Updates are sealed too.
    new = f"ENC{secrets.token_hex(6)}"
    t.admin.ok("PATCH", f"{API}/customers/{ids['customers']}", {"phone": new})
    markers[("customers", "phone-updated")] = new
    assert t.admin.ok("GET", f"{API}/customers/{ids['customers']}")["phone"] == new

    stored = stored_bytes(srv, t.slug)
    assert b"plain-customers-name" in stored, "nothing scanned?"
    leaks = [f"{k}: {m}" for k, m in markers.items() if m.encode() in stored]
    assert not leaks, f"stored in plain text: {leaks}"
    # Each sealed column holds no plain text (the card's four digits included).
    for name, fs in encrypted.items():
        for f in fs:
            v = sql_one(srv, t.slug,
                        f"SELECT HEX({f['name']}) FROM {name} WHERE id = {ids[name]}").upper()
            plain = "4242" if f["name"] == "card_last_four" else \
                markers.get((name, f["name"]), "")
            assert plain and len(v) > 2 * len(plain), (name, f["name"], v)
            assert plain.encode().hex().upper() not in v, (name, f["name"], v)


def test_credential_is_write_only(work, srv):
    t = work
    secret = f"-----BEGIN KEY----- {secrets.token_hex(16)} -----END KEY-----"
    body = valid_body(t.meta, "network_devices", t.ids, "wo")
    body.update(credential=secret, auth_method="ssh_key")
    dev = t.admin.ok("POST", f"{API}/network_devices", body)
    assert "credential" not in dev and dev["credential_set"] is True, dev
    assert "warnings" not in dev
    pw = t.admin.ok("POST", f"{API}/network_devices", {**body, "auth_method": "password"})
    assert pw["warnings"], pw
    for path in (f"/network_devices/{dev['id']}", "/network_devices",
                 "/network_devices?limit=100", "/network_devices/export?format=json",
                 "/network_devices/export?format=csv"):
        r = t.admin.get(API + path)
        assert r.status == 200, r
        assert secret.encode() not in r.raw and b'"credential"' not in r.raw, (path, r)
    patched = t.admin.ok("PATCH", f"{API}/network_devices/{dev['id']}", {"notes": "n"})
    assert "credential" not in patched and secret.encode() not in str(patched).encode()
    reveal = f"{API}/network_devices/{dev['id']}/reveal_credential"
    assert t.admin.ok("POST", reveal) == {"credential": secret}
    staff = sign_in(srv, t.slug, new_user(t.admin, ["staff"])[1])
    assert staff.ok("POST", reveal) == {"credential": secret}
    for role in ("read_only", "dispatch", "billing", "sales"):
        c = sign_in(srv, t.slug, new_user(t.admin, [role])[1])
        r = c.post(reveal)
        check_forbidden(r)
        assert secret.encode() not in r.raw
    # A token without the scope cannot reveal, even for an admin.
    scoped = t.admin.ok("POST", f"{API}/auth/tokens",
                        {"name": "nd", "scopes": ["network_devices.view"],
                         "password": PASSWORD})["token"]
    c = Client(srv, t.slug, token=scoped)
    assert c.get(f"{API}/network_devices/{dev['id']}").status == 200
    check_forbidden(c.post(reveal))
    # Cleared with null: no longer set, nothing to reveal.
    cleared = t.admin.ok("PATCH", f"{API}/network_devices/{dev['id']}", {"credential": None})
    assert cleared["credential_set"] is False, cleared
    assert t.admin.ok("POST", reveal) == {"credential": None}


# --- 6. workflows --------------------------------------------------------------------------

def test_ticket_status_transitions(work):
    t = work
    base = valid_body(t.meta, "tickets", t.ids, "wf")
    check_error(t.admin.post(f"{API}/tickets", {**base, "status": "open"}), 400, "invalid",
                "status")
    tk = t.admin.ok("POST", f"{API}/tickets", base)
    assert tk["status"] == "new"
    path = f"{API}/tickets/{tk['id']}"
    for frm, to, ok in (("new", "resolved", False), ("new", "in_progress", False),
                        ("new", "open", True), ("open", "new", False),
                        ("open", "resolved", True), ("resolved", "waiting", False),
                        ("resolved", "closed", True), ("closed", "resolved", False),
                        ("closed", "open", True)):
        r = t.admin.patch(path, {"status": to})
        if ok:
            assert r.status == 200 and r.body["status"] == to, (frm, to, r)
        else:
            check_error(r, 409, "conflict", "status")
            assert t.admin.ok("GET", path)["status"] == frm
    check_error(t.admin.patch(path, {"assignee_id": t.admin_id}), 400, "invalid", "assignee_id")
    check_error(t.admin.post(f"{path}/assign", {"assignee_id": 987654}), 400, "invalid",
                "assignee_id")
    r = t.admin.ok("POST", f"{path}/assign", {"assignee_id": t.admin_id})
    assert r["assignee_id"] == t.admin_id


def test_invoice_totals_send_void_and_payments(work):
    t = work
    cust = {"customer_id": t.ids["customers"]}
    inv = t.admin.ok("POST", f"{API}/invoices", {"customer_id": t.ids["customers"],
                                                 "tax_rate_bp": 825})
    assert (inv["status"], inv["subtotal_cents"], inv["tax_cents"], inv["total_cents"]) == \
        ("draft", 0, 0, 0), inv
    path = f"{API}/invoices/{inv['id']}"
    for field in ("subtotal_cents", "tax_cents", "total_cents"):
        check_error(t.admin.patch(path, {field: 1}), 400, "invalid", field)
        check_error(t.admin.post(f"{API}/invoices", {**cust, field: 5}), 400, "invalid", field)
    check_error(t.admin.patch(path, {"status": "paid"}), 400, "invalid", "status")
    check_error(t.admin.post(f"{path}/send"), 409, "conflict")  # nothing to charge
    line = lambda q, p: {"invoice_id": inv["id"], "description": "work",  # noqa: E731
                         "quantity": q, "unit_price_cents": p}
    l1 = t.admin.ok("POST", f"{API}/invoice_lines", line(3, 1999))
    assert l1["amount_cents"] == 5997, l1
    check_error(t.admin.post(f"{API}/invoice_lines", {**line(1, 1), "amount_cents": 1}), 400,
                "invalid", "amount_cents")
    t.admin.ok("POST", f"{API}/invoice_lines", line(2, 1001))
    got = t.admin.ok("GET", path)
    # 7999 at 8.25%: tax 659.9175 -> 660 (half up), total 8659.
    assert (got["subtotal_cents"], got["tax_cents"], got["total_cents"]) == (7999, 660, 8659)
    t.admin.ok("PATCH", f"{API}/invoice_lines/{l1['id']}", {"quantity": 1})
    got = t.admin.ok("GET", path)
    assert (got["subtotal_cents"], got["tax_cents"], got["total_cents"]) == (4001, 330, 4331)
    t.admin.ok("PATCH", path, {"tax_rate_bp": 0})
    assert t.admin.ok("GET", path)["total_cents"] == 4001
    t.admin.ok("PATCH", path, {"tax_rate_bp": 1000})
    got = t.admin.ok("GET", path)
    assert (got["tax_cents"], got["total_cents"]) == (400, 4401), got
    # A payment needs a sent invoice.
    pay = {"invoice_id": inv["id"], "amount_cents": 1000, "method": "cash",
           "received_on": "2026-03-01"}
    check_error(t.admin.post(f"{API}/payments", pay), 409, "conflict")
    sent = t.admin.ok("POST", f"{path}/send")
    assert sent["status"] == "sent"
    check_error(t.admin.post(f"{path}/send"), 409, "conflict")
    check_error(t.admin.patch(path, {"tax_rate_bp": 5}), 409, "conflict")
    check_error(t.admin.post(f"{API}/invoice_lines", line(1, 1)), 409, "conflict")
    check_error(t.admin.patch(f"{API}/invoice_lines/{l1['id']}", {"quantity": 9}), 409,
                "conflict")
    check_error(t.admin.delete(f"{API}/invoice_lines/{l1['id']}"), 409, "conflict")
    check_error(t.admin.delete(path), 409, "conflict")
    assert t.admin.ok("GET", path)["total_cents"] == 4401
    t.admin.ok("PATCH", path, {"notes": "notes still change"})
    for bad in ({"amount_cents": 0}, {"amount_cents": -5}, {"card_last_four": "1234"},
                {"method": "card", "card_last_four": "12a4"}):
        r = t.admin.post(f"{API}/payments", {**pay, **bad})
        assert r.status == 400, (bad, r)
    p1 = t.admin.ok("POST", f"{API}/payments", pay)
    assert t.admin.ok("GET", path)["status"] == "sent"
    t.admin.ok("POST", f"{API}/payments", {**pay, "amount_cents": 3401})
    assert t.admin.ok("GET", path)["status"] == "paid"
    check_error(t.admin.post(f"{path}/void"), 409, "conflict")
    # A refund (a payment deleted) puts it back to sent.
    t.admin.ok("DELETE", f"{API}/payments/{p1['id']}")
    assert t.admin.ok("GET", path)["status"] == "sent"
    voided = t.admin.ok("POST", f"{path}/void")
    assert voided["status"] == "void"
    check_error(t.admin.post(f"{API}/payments", pay), 409, "conflict")
    # A draft may be voided or deleted.
    d = t.admin.ok("POST", f"{API}/invoices", {"customer_id": t.ids["customers"]})
    assert t.admin.ok("DELETE", f"{API}/invoices/{d['id']}") == {"id": d["id"], "deleted": True}
    assert t.admin.get(f"{API}/invoices/{d['id']}").status == 404


def test_delete_refused_while_referenced(work, srv):
    t = work
    cust = t.admin.ok("POST", f"{API}/customers", {"name": "has tickets"})
    tk = t.admin.ok("POST", f"{API}/tickets", {"customer_id": cust["id"], "subject": "s"})
    before = snapshot(srv, t.slug)
    r = t.admin.delete(f"{API}/customers/{cust['id']}")
    check_error(r, 409, "conflict", "tickets")
    after = snapshot(srv, t.slug)
    assert before == after, snapshot_diff(before, after)
    assert t.admin.get(f"{API}/customers/{cust['id']}").status == 200
    # Once the ticket is gone, the customer may go.
    t.admin.ok("DELETE", f"{API}/tickets/{tk['id']}")
    t.admin.ok("DELETE", f"{API}/customers/{cust['id']}")
    assert t.admin.get(f"{API}/customers/{cust['id']}").status == 404
    # A user still referred to by records is not deleted either.
    uid, _ = new_user(t.admin, ["staff"])
    tk = t.admin.ok("POST", f"{API}/tickets", {"customer_id": t.ids["customers"],
                                               "subject": "assigned"})
    t.admin.ok("POST", f"{API}/tickets/{tk['id']}/assign", {"assignee_id": uid})
    check_error(t.admin.delete(f"{API}/users/{uid}"), 409, "conflict")
    assert t.admin.get(f"{API}/users/{uid}").status == 200


# --- found by review: references across customers; billing races ---------------------------

def test_references_stay_within_the_customer(work):
    a = work.admin
    ca = a.ok("POST", f"{API}/customers", {"name": "A"})["id"]
    cb = a.ok("POST", f"{API}/customers", {"name": "B"})["id"]
    contact_a = a.ok("POST", f"{API}/contacts", {"customer_id": ca, "first_name": "Ann"})["id"]
    contact_b = a.ok("POST", f"{API}/contacts", {"customer_id": cb, "first_name": "Bob"})["id"]
    site_b = a.ok("POST", f"{API}/sites", {"customer_id": cb, "name": "B HQ"})["id"]
    n = count(work, "tickets"), count(work, "network_devices"), count(work, "assets")
    check_error(a.post(f"{API}/tickets", {"customer_id": ca, "contact_id": contact_b,
                                          "subject": "x"}), 400, "invalid", "'contact_id'")
    check_error(a.post(f"{API}/network_devices", {"customer_id": ca, "site_id": site_b,
                                                  "name": "fw", "auth_method": "none"}),
                400, "invalid", "'site_id'")
    check_error(a.post(f"{API}/assets", {"customer_id": ca, "site_id": site_b, "name": "pc"}),
                400, "invalid", "'site_id'")
    assert (count(work, "tickets"), count(work, "network_devices"), count(work, "assets")) == n
    # Within the customer it is fine; and a PATCH cannot move the reference out of it.
    t = a.ok("POST", f"{API}/tickets", {"customer_id": ca, "contact_id": contact_a,
                                        "subject": "ok"})["id"]
    check_error(a.patch(f"{API}/tickets/{t}", {"contact_id": contact_b}), 400, "invalid",
                "'contact_id'")
    assert a.ok("GET", f"{API}/tickets/{t}")["contact_id"] == contact_a


def test_payment_and_void_race(work, srv):
    """A payment and a void of the same invoice at once: never both (on
    MariaDB, before the invoice was locked, a void invoice ended up paid)."""
    a = work.admin
    c1, c2 = admin_client(srv, work.account), admin_client(srv, work.account)
    cust = a.ok("POST", f"{API}/customers", {"name": "Pay"})["id"]
    for _ in range(12):
        inv = a.ok("POST", f"{API}/invoices", {"customer_id": cust})["id"]
        a.ok("POST", f"{API}/invoice_lines", {"invoice_id": inv, "description": "x",
                                              "quantity": 1, "unit_price_cents": 1000})
        a.ok("POST", f"{API}/invoices/{inv}/send")
        r1, r2 = race([lambda: c1.post(f"{API}/payments", {
                           "invoice_id": inv, "amount_cents": 1000, "method": "cash",
                           "received_on": "2026-01-01"}),
                       lambda: c2.post(f"{API}/invoices/{inv}/void")])
        status = a.ok("GET", f"{API}/invoices/{inv}")["status"]
        assert not (r1.status == 201 and r2.status == 200), (r1, r2, status)
        assert status == ("paid" if r1.status == 201 else "void"), (r1, r2, status)


def test_line_and_send_race(work, srv):
    """A new line and sending the invoice at once: the sent invoice never
    changes after it was sent."""
    a = work.admin
    c1, c2 = admin_client(srv, work.account), admin_client(srv, work.account)
    cust = a.ok("POST", f"{API}/customers", {"name": "Line"})["id"]
    for _ in range(12):
        inv = a.ok("POST", f"{API}/invoices", {"customer_id": cust})["id"]
        a.ok("POST", f"{API}/invoice_lines", {"invoice_id": inv, "description": "x",
                                              "quantity": 1, "unit_price_cents": 1000})
        r1, r2 = race([lambda: c1.post(f"{API}/invoice_lines", {
                           "invoice_id": inv, "description": "late", "quantity": 1,
                           "unit_price_cents": 99999}),
                       lambda: c2.post(f"{API}/invoices/{inv}/send")])
        got = a.ok("GET", f"{API}/invoices/{inv}")
        assert r2.status == 200 and got["status"] == "sent", (r1, r2, got)
        assert not (r1.status == 201 and r2.body.get("total_cents") != got["total_cents"]), \
            (r1, r2, got)


def test_references_need_the_right_to_see_them(work, srv):
    """Whether a reference is accepted must not tell someone who may not see
    such rows whether one exists: referring needs <target>.view (and, for a
    token, that scope)."""
    a = work.admin
    cust = a.ok("POST", f"{API}/customers", {"name": "Ref"})["id"]
    contact = a.ok("POST", f"{API}/contacts", {"customer_id": cust, "first_name": "C"})["id"]
    _, role = new_role(a, ["tickets.create", "tickets.view", "customers.view"])
    _, email = new_user(a, [role])
    u = sign_in(srv, work.slug, email)
    n = count(work, "tickets")
    for cid in (contact, contact + 100000):  # an existing and a missing contact: the same answer
        r = u.post(f"{API}/tickets", {"customer_id": cust, "contact_id": cid, "subject": "s"})
        check_forbidden(r)
        assert "'contact_id'" in r.body["error"]["message"] and "contacts.view" in \
            r.body["error"]["message"], r.body
    assert count(work, "tickets") == n
    assert u.post(f"{API}/tickets", {"customer_id": cust, "subject": "s"}).status == 201
    # A token scoped to tickets.create alone may not refer to a customer either.
    tok = a.ok("POST", f"{API}/auth/tokens", {"name": "narrow", "scopes": ["tickets.create"],
                                             "password": PASSWORD})["token"]
    r = Client(srv, work.slug, token=tok).post(f"{API}/tickets",
                                               {"customer_id": cust, "subject": "s"})
    check_forbidden(r)
    assert "customers.view" in r.body["error"]["message"], r.body


def test_assigning_needs_the_right_to_see_users(work, srv):
    a = work.admin
    cust = a.ok("POST", f"{API}/customers", {"name": "Asg"})["id"]
    t = a.ok("POST", f"{API}/tickets", {"customer_id": cust, "subject": "s"})["id"]
    _, role = new_role(a, ["tickets.assign", "tickets.view"])
    _, email = new_user(a, [role])
    u = sign_in(srv, work.slug, email)
    for uid in (work.admin_id, 999999):  # an existing and a missing user: the same answer
        r = u.post(f"{API}/tickets/{t}/assign", {"assignee_id": uid})
        check_forbidden(r)
        assert "users.view" in r.body["error"]["message"], r.body
    assert a.ok("GET", f"{API}/tickets/{t}")["assignee_id"] is None
    _, role2 = new_role(a, ["tickets.assign", "tickets.view", "users.view"])
    _, email2 = new_user(a, [role2])
    u2 = sign_in(srv, work.slug, email2)
    assert u2.post(f"{API}/tickets/{t}/assign", {"assignee_id": work.admin_id}).status == 200


def test_credential_reveal_is_behind_the_admin_allowlist(srv):
    """reveal_credential is an admin route: from an address off the tenant's
    admin IP allowlist it is refused (403) even for an admin, while reading
    the device (with no credential in it) still works."""
    t = Tenant(srv, "alw")
    cust = t.admin.ok("POST", f"{API}/customers", {"name": "Net"})["id"]
    dev = t.admin.ok("POST", f"{API}/network_devices", {
        "customer_id": cust, "name": "fw", "auth_method": "password",
        "credential": "Sw1tch-Secret-" + secrets.token_hex(4)})["id"]
    assert t.admin.post(f"{API}/network_devices/{dev}/reveal_credential").status == 200
    t.admin.ok("PUT", f"{API}/settings/allowlist", {
        "entries": [{"cidr": "192.0.2.0/24", "label": "office"}], "confirm_self_lockout": True})
    try:
        r = t.admin.post(f"{API}/network_devices/{dev}/reveal_credential")
        check_forbidden(r)
        assert "allowlist" in r.body["error"]["message"], r.body
        assert "credential" not in t.admin.ok("GET", f"{API}/network_devices/{dev}")
    finally:
        srv.cli_ok("tenant", "allowlist", "clear", t.slug)
    assert t.admin.post(f"{API}/network_devices/{dev}/reveal_credential").status == 200
