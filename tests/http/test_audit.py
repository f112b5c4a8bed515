"""The audit log, black box: sign-in and identity events show up through
GET /api/v1/reporting/audit for an admin (and for no one else), the filters
and page bounds hold, `bulwark audit verify` passes an intact chain and
names the row someone changed behind bulwark's back, key rotation keeps the
chain intact, and audited values are sealed at rest.

Runs once per database driver like the other suites. Helpers (tenants,
sign-in, SQL behind bulwark's back) come from test_identity.
"""

import datetime
import json
import re
import secrets
import urllib.parse

import pytest

from conftest import DRIVER, check_error_body
from test_identity import (MANY, TOKENS, add_user, call, check_unauthorized, login, login_reply,
                           make_tenant, mint, rfc3339, sql_one, stored_text, tenant_sql, unix,
                           user_id)

AUDIT = "/api/v1/reporting/audit"
ROW_KEYS = {"seq", "at", "actor", "user_id", "token_id", "actor_label", "client_ip", "effects",
            "request_id", "entity", "entity_id", "action", "before", "after"}


@pytest.fixture
def srv(start_server):
    return start_server(login_rate_per_minute=MANY)


def audit(srv, t, session=None, token=None, **params):
    """GET the audit log with params -> Reply."""
    q = urllib.parse.urlencode(params)
    return call(srv, "GET", AUDIT + (f"?{q}" if q else ""), t.slug, session=session, token=token)


def rows(srv, t, session, **params):
    """Every row the query matches: its pages walked through next_cursor."""
    out = []
    while True:
        r = audit(srv, t, session, **params)
        assert r.status == 200, r
        assert set(r.body) == {"data", "total", "limit", "has_more", "next_cursor"}, r.body
        for row in r.body["data"]:
            assert set(row) == ROW_KEYS, row
        out += r.body["data"]
        if not r.body["has_more"]:
            assert r.body["total"] == len(out), (r.body["total"], len(out))
            return out
        params = {**params, "cursor": r.body["next_cursor"]}



def test_password_typed_as_address_not_kept(srv):
    """What does not normalise as an address (a password typed into the
    e-mail field, say) is not kept in the audit row: only that it was none,
    and its length. An address that does normalise is kept as shown (in
    lower case, ADR 0012)."""
    t = make_tenant(srv, "typo")
    typed = "hunter2-my-password"
    check_unauthorized(call(srv, "POST", "/api/v1/auth/login", t.slug,
                            body={"email": typed, "password": "Wrong-Guess-Xylophone-31"}))
    ghost = f"Ghost-{secrets.token_hex(4)}@nowhere.example"
    check_unauthorized(call(srv, "POST", "/api/v1/auth/login", t.slug,
                            body={"email": "\uff27" + ghost[1:], "password": "x"}))
    session = login(srv, t)
    r = audit(srv, t, session, user_id=0)
    assert r.status == 200, r
    assert typed.encode() not in r.raw, r.raw
    got = sorted((row["after"] for row in r.body["data"]), key=lambda a: len(a))
    assert got == [{"reason": "unknown e-mail address", "email": ghost.lower()},
                   {"reason": "unknown e-mail address", "email_is_address": False,
                    "email_length": len(typed)}], got
    csv = call(srv, "GET", AUDIT + "?format=csv&user_id=0", t.slug, session=session)
    assert csv.status == 200 and typed.encode() not in csv.raw, csv


def verify(srv, slug):
    return srv.cli("audit", "verify", slug)


# --- what is recorded, and who may read it --------------------------------------

def test_sign_in_events_and_filters(srv):
    t = make_tenant(srv, "aud")
    uid = user_id(srv, t)
    ghost = f"ghost-{secrets.token_hex(4)}@nowhere.example"
    bad = login_reply(srv, t, password="Wrong-Guess-Xylophone-31")
    check_unauthorized(bad)
    check_unauthorized(login_reply(srv, t, email=ghost))
    ok = login_reply(srv, t)
    session = login(srv, t)

    data = rows(srv, t, session)
    # newest first, contiguous
    seqs = [r["seq"] for r in data]
    assert seqs == sorted(seqs, reverse=True) and seqs == list(range(seqs[0], 0, -1)), seqs
    by_req = {r["request_id"]: r for r in data}

    failed = by_req[bad.headers["x-request-id"]]
    assert (failed["entity"], failed["entity_id"], failed["action"]) == ("auth", uid,
                                                                        "login_failure")
    assert failed["actor"] == "user" and failed["user_id"] == uid and failed["token_id"] == 0
    assert failed["actor_label"] == t.email and failed["client_ip"] == "127.0.0.1"
    assert failed["after"] == {"reason": "wrong password"} and failed["before"] is None

    unknown = [r for r in data if r["user_id"] == 0 and r["action"] == "login_failure"]
    assert len(unknown) == 1, data
    assert unknown[0]["after"]["email"] == ghost and unknown[0]["entity_id"] == 0
    assert unknown[0]["actor_label"] == ""

    good = by_req[ok.headers["x-request-id"]]
    assert (good["entity"], good["entity_id"], good["action"]) == ("auth", uid, "login")
    assert good["after"] == {"mfa_next": False}
    assert abs(unix(good["at"]) - int(sql_one(srv, t.slug, "SELECT MAX(at) FROM audit_log"))) < 60

    # filters
    assert {r["action"] for r in rows(srv, t, session, action="login")} == {"login"}
    assert len(rows(srv, t, session, action="login")) == 2
    assert len(rows(srv, t, session, action="login_failure")) == 2
    assert len(rows(srv, t, session, user_id=0)) == 1
    assert len(rows(srv, t, session, user_id=uid)) == len(data) - 1
    assert len(rows(srv, t, session, entity="auth", entity_id=uid)) == len(data) - 1
    assert rows(srv, t, session, entity="users") == []
    assert rows(srv, t, session, to="1970-01-01T00:00:00Z") == []
    assert rows(srv, t, session, **{"from": "2100-01-01T00:00:00Z"}) == []
    at = unix(good["at"])
    assert len(rows(srv, t, session, **{"from": rfc3339(at - 60), "to": rfc3339(at + 60)})) == \
        len(data)
    # an offset is the same instant
    local = (datetime.datetime.fromtimestamp(at - 60, datetime.timezone.utc)
             .astimezone(datetime.timezone(datetime.timedelta(hours=5, minutes=30)))
             .strftime("%Y-%m-%dT%H:%M:%S+05:30"))
    assert len(rows(srv, t, session, **{"from": local})) == len(data)
    # percent-encoded values are decoded
    r = call(srv, "GET", AUDIT + "?action=log%69n&format=json", t.slug, session=session)
    assert r.status == 200 and len(r.body["data"]) == 2, r


def test_identity_changes_recorded(srv):
    t = make_tenant(srv, "audch")
    uid = user_id(srv, t)
    session = login(srv, t)
    tok = mint(srv, t, session, ["*"])
    r = call(srv, "DELETE", f"{TOKENS}/{tok['id']}", t.slug, session=session)
    assert r.status == 200, r
    r = call(srv, "PUT", "/api/v1/settings/security", t.slug, session=session,
             body={"mfa_required": True})
    assert r.status == 200, r
    # off again behind bulwark's back, or the admin must enrol before anything else
    tenant_sql(srv, t.slug, "UPDATE settings SET value = '0' WHERE name = 'mfa_required'")
    r = call(srv, "PUT", "/api/v1/settings/allowlist", t.slug, session=session,
             body={"entries": [{"cidr": "127.0.0.0/8", "label": "loopback"}]})
    assert r.status == 200, r
    r = call(srv, "POST", "/api/v1/auth/sessions/end-others", t.slug, session=session)
    assert r.status == 200, r

    data = rows(srv, t, session)
    got = [(r["entity"], r["entity_id"], r["action"]) for r in reversed(data)]
    assert got[-6:] == [("auth", uid, "login"), ("api_tokens", tok["id"], "create"),
                        ("api_tokens", tok["id"], "revoke"), ("settings", 0, "update"),
                        ("settings", 0, "update"), ("users", uid, "sessions_ended")], got
    create, _, mfa, allow = list(reversed(data))[-5:-1]
    assert create["after"]["name"] == tok["name"] and create["after"]["scopes"] == ["*"]
    assert tok["token"] not in str(data)
    assert mfa["before"] == {"mfa_required": False} and mfa["after"] == {"mfa_required": True}
    assert allow["before"] == {"allowlist": [], "guard_all_changes": False}
    assert allow["after"] == {"allowlist": [{"cidr": "127.0.0.0/8", "label": "loopback"}],
                              "guard_all_changes": False}

    # a token acts as itself: actor "token", its id and owner
    tok2 = mint(srv, t, session, ["audit.view", "self.tokens"])
    r = call(srv, "POST", TOKENS, t.slug, token=tok2["token"],
             body={"name": "by-token", "scopes": ["audit.view"], "password": t.password})
    assert r.status == 201, r
    r = audit(srv, t, token=tok2["token"], action="create", limit=1)
    assert r.status == 200, r
    row = r.body["data"][0]
    assert (row["actor"], row["token_id"], row["user_id"]) == ("token", tok2["id"], uid), row


def test_lockout_and_unlocks_recorded(srv):
    t = make_tenant(srv, "audlk")
    u, uid = add_user(srv, t, "tech")
    for _ in range(5):  # [auth] lockout_threshold, default
        login_reply(srv, u, password="Wrong-Guess-Xylophone-31")
    assert login_reply(srv, u).status == 423
    admin = login(srv, t)
    locked = rows(srv, t, admin, action="lockout")
    assert len(locked) == 1 and locked[0]["entity_id"] == uid, locked
    assert len(rows(srv, t, admin, action="login_failure", user_id=uid)) == 4

    r = call(srv, "POST", f"/api/v1/users/{uid}/unlock", t.slug, session=admin)
    assert r.status == 200, r
    for _ in range(5):
        login_reply(srv, u, password="Wrong-Guess-Xylophone-31")
    srv.cli_ok("user", "unlock", t.slug, u.email)
    unlocks = rows(srv, t, admin, action="unlock")
    assert len(unlocks) == 2, unlocks
    cli, api = unlocks
    assert (cli["actor"], cli["actor_label"], cli["user_id"]) == ("system", "bulwark user unlock", 0)
    assert cli["before"]["failed_logins"] == 5 and cli["after"]["failed_logins"] == 0
    assert re.fullmatch(r"cli:.+", cli["after"]["operator"]), cli
    assert (api["actor"], api["user_id"], api["entity"], api["entity_id"]) == \
        ("user", user_id(srv, t), "users", uid)
    assert verify(srv, t.slug).returncode == 0


def test_only_admins_read_the_log(srv):
    t = make_tenant(srv, "audrb")
    u, _ = add_user(srv, t, "staff")
    staff = login(srv, u)
    check_error_body(audit(srv, t, staff), 403, "forbidden")
    admin = login(srv, t)
    narrow = mint(srv, t, admin, ["self.view"])["token"]
    check_error_body(audit(srv, t, token=narrow), 403, "forbidden")
    check_unauthorized(audit(srv, t))
    assert audit(srv, t, admin).status == 200


def test_pages_and_bad_parameters(srv):
    t = make_tenant(srv, "audpg")
    session = login(srv, t)
    for _ in range(4):
        mint(srv, t, session, ["self.view"])
    everything = rows(srv, t, session)
    n = len(everything)
    assert n >= 5
    seen = []
    cursor = None
    while True:
        r = audit(srv, t, session, limit=2, **({"cursor": cursor} if cursor else {}))
        assert r.status == 200 and r.body["limit"] == 2 and r.body["total"] == n, r
        seen += r.body["data"]
        assert len(r.body["data"]) == 2 if r.body["has_more"] else 1 <= len(r.body["data"]) <= 2
        if not r.body["has_more"]:
            assert r.body["next_cursor"] is None and "link" not in r.headers, r
            break
        assert r.headers["link"].endswith(f'cursor={r.body["next_cursor"]}>; rel="next"'), r
        cursor = r.body["next_cursor"]
    assert seen == everything
    assert len(rows(srv, t, session, limit=100)) == n
    # An edited cursor is refused, never read as another place in the log.
    flipped = cursor[:-1] + ("A" if cursor[-1] != "A" else "B")

    for params, name in ((dict(limit=1000), "limit"), (dict(limit=0), "limit"),
                         (dict(page=1), "page"), (dict(per_page=2), "per_page"),
                         (dict(cursor="x"), "cursor"), (dict(cursor=flipped), "cursor"),
                         (dict(user_id="abc"), "user_id"), (dict(entity="Users!"), "entity"),
                         (dict(action=""), "action"), (dict(bogus=1), "bogus"),
                         (dict(format="xml"), "format"),
                         (dict(limit=101), "limit"),
                         (dict(format="csv", limit=10001), "limit"),
                         ({"from": 10}, "from"), ({"from": "2026-12-02"}, "from"),
                         ({"from": "2026-12-02T00:00:01Z", "to": "2026-12-02T00:00:00Z"},
                          "from")):
        r = audit(srv, t, session, **params)
        check_error_body(r, 400, "invalid")
        assert f"'{name}'" in r.body["error"]["message"], (params, r.body)
    for raw, name in (("action=login&action=login", "action"), ("limit=%zz", None),
                      ("entity=%00", None)):
        r = call(srv, "GET", f"{AUDIT}?{raw}", t.slug, session=session)
        check_error_body(r, 400, "invalid")
        if name:
            assert f"'{name}'" in r.body["error"]["message"], r.body


def test_csv_export(srv):
    """format=csv: the same rows as JSON, one CSV line each, quoted, with
    before/after as JSON text; bigger pages than the screen's are allowed."""
    import csv as csvmod
    import io
    t = make_tenant(srv, "audcsv")
    session = login(srv, t)
    mint(srv, t, session, ["self.view"], name='say "hi", twice')
    as_json = rows(srv, t, session, limit=100)
    r = call(srv, "GET", f"{AUDIT}?format=csv&limit=500", t.slug, session=session)
    assert r.status == 200, r
    assert r.headers["content-type"].startswith("text/csv"), r.headers
    assert "attachment" in r.headers.get("content-disposition", ""), r.headers
    table = list(csvmod.reader(io.StringIO(r.raw.decode())))
    header, lines = table[0], table[1:]
    assert header[:3] == ["seq", "at", "actor"] and "after" in header, header
    assert len(lines) == len(as_json), (len(lines), len(as_json))
    for line, row in zip(lines, as_json):
        got = dict(zip(header, line))
        assert int(got["seq"]) == row["seq"] and got["action"] == row["action"], (got, row)
        assert (json.loads(got["after"]) if got["after"] else None) == row["after"], (got, row)
    assert any(row["after"] and row["after"].get("name") == 'say "hi", twice'
               for row in as_json), as_json


# --- the chain ------------------------------------------------------------------------

def test_verify_intact_and_tampered(srv):
    t = make_tenant(srv, "audvf")
    session = login(srv, t)
    for _ in range(3):
        mint(srv, t, session, ["self.view"])
    n = int(sql_one(srv, t.slug, "SELECT COUNT(*) FROM audit_log"))
    assert n == 4
    ok = verify(srv, t.slug)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.strip() == f"{t.slug}: {n} rows, chain intact"

    # an action rewritten behind bulwark's back
    tenant_sql(srv, t.slug, "UPDATE audit_log SET action = 'revoke' WHERE seq = 3")
    bad = verify(srv, t.slug)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "row 3" in bad.stdout and "action" in bad.stdout, bad.stdout
    tenant_sql(srv, t.slug, "UPDATE audit_log SET action = 'create' WHERE seq = 3")
    assert verify(srv, t.slug).returncode == 0

    # the newest row removed
    tenant_sql(srv, t.slug, f"DELETE FROM audit_log WHERE seq = {n}")
    bad = verify(srv, t.slug)
    assert bad.returncode == 1 and f"row {n}" in bad.stdout, bad.stdout

    # an unknown tenant is not a broken chain
    other = verify(srv, "no-such-tenant")
    assert other.returncode == 2 and "no tenant" in other.stderr, other


def test_cut_tail_caught_by_the_anchor(srv):
    """Someone with write access to the tenant database cuts the newest rows
    and rewinds the head to the last row kept: the chain alone is then
    consistent, but the anchor the previous verify left in the control
    database is not; and --all checks every tenant the same way."""
    t = make_tenant(srv, "audcut")
    session = login(srv, t)
    for _ in range(4):
        mint(srv, t, session, ["self.view"])
    n = int(sql_one(srv, t.slug, "SELECT COUNT(*) FROM audit_log"))
    assert verify(srv, t.slug).returncode == 0  # anchors at row n
    keep = n - 2
    mac = sql_one(srv, t.slug, f"SELECT mac FROM audit_log WHERE seq = {keep}")
    tenant_sql(srv, t.slug, f"DELETE FROM audit_log WHERE seq > {keep}")
    tenant_sql(srv, t.slug, f"UPDATE audit_head SET seq = {keep}, mac = '{mac}' WHERE id = 1")
    bad = verify(srv, t.slug)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert f"row {n}" in bad.stdout and "cut" in bad.stdout, bad.stdout
    # New rows written after the cut do not hide it: row n is now another row.
    mint(srv, t, session, ["self.view"])
    mint(srv, t, session, ["self.view"])
    bad = verify(srv, t.slug)
    assert bad.returncode == 1 and f"row {n}" in bad.stdout, bad.stdout
    assert "rewritten" in bad.stdout, bad.stdout
    # --all reports it too (and the worst outcome is its exit status).
    good = make_tenant(srv, "audall")
    everyone = srv.cli("audit", "verify", "--all")
    assert everyone.returncode == 1, everyone.stdout + everyone.stderr
    assert f"{good.slug}: " in everyone.stdout and "chain intact" in everyone.stdout
    assert f"{t.slug}: chain broken" in everyone.stdout, everyone.stdout
    # After a restore from backup the cut is real and accepted: reanchor starts
    # from the log as it is (its chain holds), and verify passes again.
    again = srv.cli("audit", "reanchor", t.slug)
    assert again.returncode == 0 and "anchor reset" in again.stderr, again.stdout + again.stderr
    assert verify(srv, t.slug).returncode == 0
    # reanchor does not bless a broken chain.
    tenant_sql(srv, t.slug, "UPDATE audit_log SET action = 'forged' WHERE seq = 2")
    assert srv.cli("audit", "reanchor", t.slug).returncode == 1


def test_rotation_keeps_the_chain(srv):
    t = make_tenant(srv, "audrt")
    session = login(srv, t)
    mint(srv, t, session, ["self.view"])
    assert verify(srv, t.slug).returncode == 0
    srv.cli_ok("keys", "rotate")
    ok = verify(srv, t.slug)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    keys = rows(srv, t, session, entity="keys")
    assert [r["action"] for r in keys] == ["rotate_completed", "rotate_started"], keys
    assert {(r["actor"], r["actor_label"], r["user_id"]) for r in keys} == \
        {("system", "bulwark keys rotate", 0)}
    assert keys[0]["entity_id"] == keys[1]["entity_id"] > 0
    # still readable, still writable, still intact
    mint(srv, t, session, ["self.view"])
    srv.cli_ok("keys", "rollback")
    assert verify(srv, t.slug).returncode == 0
    assert len(rows(srv, t, session, entity="keys")) == 4


def test_audited_values_sealed_at_rest(srv):
    t = make_tenant(srv, "audpl")
    ghost = f"ghost-{secrets.token_hex(6)}@nowhere.example"
    check_unauthorized(login_reply(srv, t, email=ghost))
    session = login(srv, t)
    data = rows(srv, t, session, user_id=0)
    assert data[0]["after"]["email"] == ghost  # readable through the API...
    text = stored_text(srv, [t.slug])
    assert b"audit_log" in text or DRIVER == "sqlite", "nothing scanned?"
    assert t.email.encode() in text, "nothing scanned?"
    # ...but neither in the database files (SQLite and its WAL), a dump, nor the logs
    assert ghost.encode() not in text
    assert ghost.split("@")[0].encode() not in text
