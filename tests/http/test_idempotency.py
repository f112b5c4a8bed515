"""Idempotency-Key on POST (issue #14, docs/http.md "Idempotency", ADR 0015).

The same caller, key and request within 24 hours: the first reply again and
nothing written; the same key with another request: 422; still running: 409.
Keys are per caller, kept in the tenant database as HMACs, the replies
sealed. One server and one tenant for the file.
"""

import http.client
import json
import secrets
import sqlite3
import time
import urllib.parse

import pytest

from conftest import DRIVER, _servers, mariadb_dump, mariadb_root
from psa import (API, Client, admin_client, check_error, make_tenant, new_role, new_user,
                 race, sign_in, snapshot, snapshot_diff)
from test_identity import sql_one, tenant_sql

MANY = 100000
KEY = "Idempotency-Key"


@pytest.fixture(scope="module")
def srv(tmp_path_factory, tls_cert):
    with _servers(tmp_path_factory, tls_cert) as make:
        yield make(login_rate_per_minute=MANY).start()


class Env:
    def __init__(self, srv):
        self.srv = srv
        self.account = make_tenant(srv, "idem")
        self.slug = self.account.slug
        self.admin = admin_client(srv, self.account)
        _, role = new_role(self.admin, ["customers.create", "customers.view"])
        self.role = role
        self.other_id, email = new_user(self.admin, [role])
        self.other = sign_in(srv, self.slug, email)


@pytest.fixture(scope="module")
def env(srv):
    return Env(srv)


def key():
    return "k-" + secrets.token_urlsafe(12)


def customer(name=None, phone=None):
    return {"name": name or "Idem " + secrets.token_hex(4), "phone": phone or "+1 555 0100"}


def post(client, body, k, path=f"{API}/customers", headers=None):
    return client.post(path, body, headers={KEY: k, **(headers or {})})


def count(env, name):
    return int(sql_one(env.srv, env.slug,
                       f"SELECT COUNT(*) FROM customers WHERE name = '{name}'"))


def audits(env):
    return int(sql_one(env.srv, env.slug, "SELECT COUNT(*) FROM audit_log"))


def listed(env, client, name):
    """The rows named name in the API's list (an equality filter: any envelope)."""
    rows = client.ok("GET", f"{API}/customers?name={urllib.parse.quote(name)}")
    rows = next(v for v in rows.values() if isinstance(v, list))
    return [r for r in rows if r.get("name") == name]


def rows_of(env):
    return tenant_sql(env.srv, env.slug,
                      "SELECT actor_kind, actor_id, state, writes, status FROM idempotency_keys"
                      " ORDER BY id")


# --- the contract -----------------------------------------------------------------------

def test_retry_replays_the_first_reply_and_writes_nothing(env):
    k, body = key(), customer()
    before_audit = audits(env)
    first = post(env.admin, body, k)
    assert first.status == 201, first
    assert "idempotent-replayed" not in first.headers
    snap = snapshot(env.srv, env.slug)
    for _ in range(2):
        again = post(env.admin, body, k)
        assert again.status == 201, again
        assert again.raw == first.raw, (again.raw, first.raw)
        assert again.headers.get("idempotent-replayed") == "true", again.headers
        for h in ("location", "etag"):
            assert again.headers.get(h) == first.headers.get(h), h
    assert snapshot_diff(snap, snapshot(env.srv, env.slug)) == ""
    assert count(env, body["name"]) == 1
    assert len(listed(env, env.admin, body["name"])) == 1
    assert audits(env) == before_audit + 1
    # the write was marked inside its own transaction, then the reply kept
    state = tenant_sql(env.srv, env.slug, "SELECT state, writes, status FROM idempotency_keys"
                       f" WHERE status = 201 ORDER BY id DESC LIMIT 1")
    assert state == [("complete", "1", "201")], state


def test_same_key_other_request_is_refused_and_writes_nothing(env):
    k, body = key(), customer()
    assert post(env.admin, body, k).status == 201
    snap = snapshot(env.srv, env.slug)
    other = dict(body, name=body["name"] + " 2")
    for r in (post(env.admin, other, k),                                 # another body
              post(env.admin, body, k, path=f"{API}/customers?x=1"),     # another query
              post(env.admin, body, k, path=f"{API}/contacts"),          # another route
              post(env.admin, body, k, headers={"If-Match": '"1"'})):   # another precondition
        check_error(r, 422, "unprocessable")
        assert "idempotent-replayed" not in r.headers
    assert snapshot_diff(snap, snapshot(env.srv, env.slug)) == ""
    assert count(env, other["name"]) == 0 and count(env, body["name"]) == 1


def test_keys_are_per_caller(env):
    """Another user sending the same key and body gets a result of their own,
    never the first user's reply; a later retry of each replays its own."""
    k, body = key(), customer()
    mine = post(env.admin, body, k)
    assert mine.status == 201, mine
    theirs = post(env.other, body, k)
    assert theirs.status == 201, theirs
    assert "idempotent-replayed" not in theirs.headers
    assert theirs.body["id"] != mine.body["id"]
    assert count(env, body["name"]) == 2
    assert post(env.other, body, k).raw == theirs.raw
    assert post(env.admin, body, k).raw == mine.raw
    # another user's key with another body is not refused as "used": it is theirs
    k2 = key()
    assert post(env.admin, customer(), k2).status == 201
    assert post(env.other, customer(), k2).status == 201


def test_replay_comes_after_the_permission_check(env):
    """A caller who lost the permission does not get the stored reply back."""
    _, role = new_role(env.admin, ["customers.create", "customers.view"])
    uid, email = new_user(env.admin, [role])
    user = sign_in(env.srv, env.slug, email)
    k, body = key(), customer()
    assert post(user, body, k).status == 201
    env.admin.ok("PATCH", f"{API}/users/{uid}", {"roles": []})
    r = post(user, body, k)
    check_error(r, 403, "forbidden")
    assert "idempotent-replayed" not in r.headers and body["name"] not in r.raw.decode()


def test_concurrent_retries_create_one_row(env):
    k, body = key(), customer()
    clients = [Client(env.srv, env.slug, token=env.admin.token) for _ in range(4)]
    replies = race([lambda c=c: post(c, body, k) for c in clients])
    for c in clients:
        c.close()
    firsts = [r for r in replies if r.status == 201 and "idempotent-replayed" not in r.headers]
    assert len(firsts) == 1, replies
    for r in replies:
        if r is firsts[0]:
            continue
        if r.status == 201:
            assert r.raw == firsts[0].raw and r.headers["idempotent-replayed"] == "true", r
        else:
            check_error(r, 409, "conflict")
    assert count(env, body["name"]) == 1


@pytest.mark.parametrize("bad", ["", "x" * 256, "has space", "caf\u00e9", "tab\there"])
def test_malformed_keys_are_refused(env, bad):
    body = customer()
    r = env.srv.request("POST", f"{API}/customers", host=env.slug,
                        headers={"Authorization": f"Bearer {env.admin.token}",
                                 "Content-Type": "application/json",
                                 KEY: bad.encode("utf-8").decode("latin-1")},
                        body=json.dumps(body))
    assert r.status == 400 and r.body["error"]["code"] == "invalid", r
    assert count(env, body["name"]) == 0


def test_longest_key_is_taken_and_two_keys_are_refused(env):
    body = customer()
    assert post(env.admin, body, "~" * 255).status == 201
    conn = env.srv.connection()
    try:
        conn.putrequest("POST", f"{API}/customers", skip_host=True)
        other = customer()
        data = json.dumps(other).encode()
        for name, value in (("Host", env.srv.tenant_host(env.slug)),
                            ("Authorization", f"Bearer {env.admin.token}"),
                            ("Content-Type", "application/json"), (KEY, key()), (KEY, key()),
                            ("Content-Length", str(len(data)))):
            conn.putheader(name, value)
        conn.endheaders(data)
        resp = conn.getresponse()
        assert resp.status == 400, resp.read()
    finally:
        conn.close()
    assert count(env, other["name"]) == 0


def test_sign_in_and_own_credentials_take_no_key(env):
    """No caller to scope a key to (sign-in), or a credential that would be kept
    and a password that a retry's body could be compared against: refused."""
    r = Client(env.srv, env.slug).post(f"{API}/auth/login",
                                       {"email": env.account.email,
                                        "password": env.account.password},
                                       headers={KEY: key()})
    check_error(r, 400, "invalid")
    name = "tok-" + secrets.token_hex(3)
    r = post(env.other, {"name": name, "scopes": ["customers.view"], "password": "x"}, key(),
             path=f"{API}/auth/tokens")
    check_error(r, 400, "invalid")
    assert int(sql_one(env.srv, env.slug,
                       f"SELECT COUNT(*) FROM api_tokens WHERE name = '{name}'")) == 0


def test_a_reply_with_a_credential_is_not_kept(env):
    """A new user's one-time password is shown once: a retry hears the user
    was made (409, with where), and the password is nowhere in the row."""
    k = key()
    email = f"otp-{secrets.token_hex(3)}@{env.slug}.example.com"
    first = post(env.admin, {"email": email, "roles": []}, k, path=f"{API}/users")
    assert first.status == 201 and first.body.get("one_time_password"), first
    again = post(env.admin, {"email": email, "roles": []}, k, path=f"{API}/users")
    assert again.status == 409 and again.body["error"]["code"] == "conflict", again
    assert again.headers.get("idempotent-replayed") == "true"
    assert again.body["error"]["status"] == 201
    assert first.body["one_time_password"] not in again.raw.decode()
    assert int(sql_one(env.srv, env.slug,
                       f"SELECT COUNT(*) FROM users WHERE email = '{email}'")) == 1


def test_error_replies_are_kept_too(env):
    k = key()
    first = post(env.admin, {"phone": "123"}, k)  # no name: refused
    assert first.status == 400, first
    again = post(env.admin, {"phone": "123"}, k)
    assert again.status == 400 and again.headers.get("idempotent-replayed") == "true"
    assert again.body["error"]["code"] == first.body["error"]["code"]
    assert again.body["error"]["message"] == first.body["error"]["message"]


def test_other_methods_ignore_the_key(env):
    r = env.admin.get(f"{API}/customers", headers={KEY: "x" * 300})
    assert r.status == 200, r


# --- storage --------------------------------------------------------------------------

def at_rest(env):
    """Every byte of the tenant's database as stored (SQLite file and WAL, or
    MariaDB's dump with blobs in hex), lower-cased."""
    if DRIVER == "mariadb":
        return mariadb_dump(f"saas_tenant_{env.slug}").lower()
    path = env.srv.var / "tenants" / f"{env.slug}.db"
    data = path.read_bytes()
    for extra in ("-wal", "-journal"):
        p = path.with_name(path.name + extra)
        if p.exists():
            data += p.read_bytes()
    return data.lower()


def test_replies_and_keys_are_not_stored_in_plaintext(env):
    marker = "zq" + secrets.token_hex(6)
    phone = "+44 " + marker
    k = "plain-" + secrets.token_hex(8)
    body = customer(phone=phone)  # the name is not a sealed field: it is at rest in clear
    first = post(env.admin, body, k)
    assert first.status == 201 and first.body["phone"] == phone, first
    assert post(env.admin, body, k).raw == first.raw
    data = at_rest(env)
    # the phone is a sealed field, so it is in the reply but must be nowhere at rest
    for needle in (phone.encode(), marker.encode(), k.encode(), k.encode().hex().encode()):
        assert needle.lower() not in data, needle
    assert marker.encode().hex().encode() not in data


def test_expired_keys_are_ignored_and_purged_a_batch_at_a_time(env):
    k, body = key(), customer()
    assert post(env.admin, body, k).status == 201
    tenant_sql(env.srv, env.slug, "UPDATE idempotency_keys SET created_at = created_at - 86401")
    other = customer()
    r = post(env.admin, other, k)  # a day later the key is free again
    assert r.status == 201 and "idempotent-replayed" not in r.headers, r
    # 20 expired rows: one new reservation clears 16 of them, no more
    for i in range(20):
        tenant_sql(env.srv, env.slug,
                   "INSERT INTO idempotency_keys (actor_kind, actor_id, key_mac, request_mac,"
                   " owner, state, writes, status, response, created_at) VALUES"
                   f" (9, {i}, 'old{i}', 'x', 'r', 'running', 0, 0, NULL, 1)")
    expired = "SELECT COUNT(*) FROM idempotency_keys WHERE created_at < 1000"
    assert int(sql_one(env.srv, env.slug, expired)) >= 20
    n = int(sql_one(env.srv, env.slug, expired))
    assert post(env.admin, customer(), key()).status == 201
    assert int(sql_one(env.srv, env.slug, expired)) == n - 16
    tenant_sql(env.srv, env.slug, "DELETE FROM idempotency_keys WHERE actor_kind = 9")


def test_crash_before_the_reply_is_kept(env):
    """The server died between the handler's commit and keeping the reply
    (the row is marked done, no reply): a retry is never run again. A
    reservation that wrote nothing is taken over once its lease has run out."""
    k, body = key(), customer()
    assert post(env.admin, body, k).status == 201
    newest = "(SELECT MAX(id) FROM idempotency_keys)"
    if DRIVER == "mariadb":
        newest = "(SELECT id FROM (SELECT MAX(id) AS id FROM idempotency_keys) x)"
    now = int(time.time())
    tenant_sql(env.srv, env.slug, "UPDATE idempotency_keys SET state = 'done', response = NULL,"
               f" created_at = {now - 120} WHERE id = {newest}")
    snap = snapshot(env.srv, env.slug)
    r = post(env.admin, body, k)
    check_error(r, 409, "conflict")
    assert "carried out" in r.body["error"]["message"], r
    assert snapshot_diff(snap, snapshot(env.srv, env.slug)) == ""
    assert count(env, body["name"]) == 1
    # done a moment ago: still running as far as anyone can tell
    tenant_sql(env.srv, env.slug, f"UPDATE idempotency_keys SET created_at = {now}"
               f" WHERE id = {newest}")
    r = post(env.admin, body, k)
    check_error(r, 409, "conflict")
    assert "still running" in r.body["error"]["message"], r
    # a reservation that never wrote: recent -> 409, past its lease -> run
    tenant_sql(env.srv, env.slug, "UPDATE idempotency_keys SET state = 'running', writes = 0"
               f" WHERE id = {newest}")
    check_error(post(env.admin, body, k), 409, "conflict")
    assert count(env, body["name"]) == 1
    tenant_sql(env.srv, env.slug, f"UPDATE idempotency_keys SET created_at = {now - 61}"
               f" WHERE id = {newest}")
    r = post(env.admin, body, k)
    assert r.status == 201 and "idempotent-replayed" not in r.headers, r
    assert count(env, body["name"]) == 2


def test_tampered_row_is_not_replayed(env):
    """A stored reply moved to another caller's row does not open there."""
    k = key()
    a = post(env.admin, customer(), k)
    b = post(env.other, customer(), k)
    assert a.status == b.status == 201
    rows = tenant_sql(env.srv, env.slug, "SELECT id, actor_kind FROM idempotency_keys"
                      " ORDER BY id DESC LIMIT 2")
    (id_b, _), (id_a, _) = rows
    if DRIVER == "mariadb":
        mariadb_root(f"USE `saas_tenant_{env.slug}`; UPDATE idempotency_keys x JOIN"
                     f" idempotency_keys y ON y.id = {id_a} SET x.response = y.response"
                     f" WHERE x.id = {id_b}")
    else:
        tenant_sql(env.srv, env.slug, "UPDATE idempotency_keys SET response = (SELECT response"
                   f" FROM idempotency_keys WHERE id = {id_a}) WHERE id = {id_b}")
    r = post(env.other, customer(), k)  # not even with the right request
    assert r.status in (422, 500), r
    r = post(env.other, b.body and {"name": b.body["name"], "phone": b.body["phone"]}, k)
    assert r.status == 500 and a.body["name"] not in r.raw.decode(), r
    # a value that does not open stops key rotation (keys.c): do not leave it for that test
    tenant_sql(env.srv, env.slug, f"DELETE FROM idempotency_keys WHERE id = {id_b}")

    # A row handed to another caller (its actor columns changed): the sealed
    # reply names the caller it answers, so it is not shown to this one.
    k, body = key(), customer()
    a = post(env.admin, body, k)
    assert a.status == 201
    [(row_a,)] = tenant_sql(env.srv, env.slug, "SELECT MAX(id) FROM idempotency_keys")
    tenant_sql(env.srv, env.slug, "UPDATE idempotency_keys SET actor_kind = 1, actor_id ="
               f" {env.other_id} WHERE id = {row_a}")
    r = post(env.other, body, k)
    assert r.status == 500 and a.body["name"] not in r.raw.decode(), r
    assert "idempotent-replayed" not in r.headers
    tenant_sql(env.srv, env.slug, f"DELETE FROM idempotency_keys WHERE id = {row_a}")


# --- keys: rotation and purge cover the stored replies ------------------------------------

def control_sql(srv, sql):
    if DRIVER == "mariadb":
        return mariadb_root(f"USE `{srv.settings['database']['control_db']}`; {sql}")
    with sqlite3.connect(srv.var / "control.db", timeout=10) as db:
        return [tuple(map(str, row)) for row in db.execute(sql)]


def test_rotation_and_purge_keep_stored_replies_readable(env):
    """Rotation re-encrypts the stored replies (and the MAC key) under the new
    data key, so purging the old one loses nothing: a replay still answers."""
    k, body = key(), customer(phone="+1 555 " + secrets.token_hex(3))
    first = post(env.admin, body, k)
    assert first.status == 201
    [old] = control_sql(env.srv, "SELECT id FROM data_keys WHERE tenant_slug ="
                        f" '{env.slug}' AND state = 'active'")
    env.srv.cli_ok("keys", "rotate")
    [new] = control_sql(env.srv, "SELECT id FROM data_keys WHERE tenant_slug ="
                        f" '{env.slug}' AND state = 'active'")
    # every stored reply and the MAC key are sealed under the new key now
    # (the envelope: version 1, then the key id, big-endian)
    sealed = tenant_sql(env.srv, env.slug, "SELECT HEX(response) FROM idempotency_keys WHERE"
                        " response IS NOT NULL UNION ALL SELECT HEX(mac_key) FROM"
                        " idempotency_mac")
    assert len(sealed) >= 2
    assert {int(h[2:10], 16) for (h,) in sealed} == {int(new[0])}, (sealed, new)
    control_sql(env.srv, "UPDATE data_keys SET retired_at = 1 WHERE tenant_slug ="
                f" '{env.slug}' AND state = 'retired'")
    out = env.srv.cli_ok("keys", "purge").stdout
    assert "purged" in out, out
    assert control_sql(env.srv, f"SELECT state FROM data_keys WHERE id = {old[0]}") == \
        [("purged",)]
    again = post(env.admin, body, k)
    assert again.status == 201 and again.raw == first.raw, again
    # and the MAC key still opens: a new key works, another body is still refused
    check_error(post(env.admin, customer(), k), 422, "unprocessable")
    assert post(env.admin, customer(), key()).status == 201
