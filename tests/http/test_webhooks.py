"""Events and webhooks (issue #16, docs/webhooks.md), black box.

Outbound: a receiver of the suite's own (Python's http.server over TLS on
loopback, allowed by the test-only key [webhooks] test_allow_loopback)
checks every delivery's Standard Webhooks signature with Python's hmac, an
implementation independent of the server's. A scripted session's events
arrive in order of commit, signed; failures are retried with the same
webhook-id; a rolled-back change emits nothing; kill -9 mid-delivery
loses nothing; two app servers on one MariaDB deliver each event once.

Inbound: Stripe, QuickBooks Online and Standard Webhooks senders, signed
here with hmac; every failure (bad signature, missing header, stale
timestamp, replay, another tenant's endpoint, an oversized body) is
refused with its status, a security audit row, and nothing processed.
"""

import base64
import contextlib
import hashlib
import hmac
import http.server
import json
import secrets
import signal
import socketserver
import ssl
import threading
import time

import pytest

from conftest import DRIVER, check_error_body, wait_for
from psa import API, admin_client, new_role, new_user, sign_in, Client
from test_identity import make_tenant, tenant_sql, twin_of

WAIT = 30.0
mariadb_only = pytest.mark.skipif(DRIVER != "mariadb", reason="several app servers share MariaDB")
sqlite_only = pytest.mark.skipif(DRIVER == "mariadb", reason="does not depend on the database driver")


# --- an independent receiver ------------------------------------------------------------

def sw_sign(secret, msg_id, ts, body):
    """Standard Webhooks v1 signature, by the spec, with Python's hmac."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def sw_verified(secret, headers, body, tolerance=300):
    """True when one of the webhook-signature entries is ours for this secret."""
    msg_id, ts = headers.get("webhook-id"), headers.get("webhook-timestamp")
    sigs = (headers.get("webhook-signature") or "").split(" ")
    if not msg_id or not ts or abs(time.time() - int(ts)) > tolerance:
        return False
    want = sw_sign(secret, msg_id, ts, body)
    return any(hmac.compare_digest(want, s) for s in sigs)


class Receiver:
    """An HTTPS receiver on 127.0.0.1: records every request; answers with
    the statuses in plan (then 200), or holds a request while hold is set."""

    def __init__(self, cert):
        self.requests = []
        self.plan = []
        self.hold = threading.Event()
        self.held = threading.Event()
        self.lock = threading.Lock()
        rec = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                with rec.lock:
                    rec.requests.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body, "at": time.time()})
                    status = rec.plan.pop(0) if rec.plan else 200
                if rec.hold.is_set():
                    rec.held.set()
                    while rec.hold.is_set():
                        time.sleep(0.05)
                    return  # the client is gone by now
                reply = b'{"ok":true}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

        class TLSServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True

        self.httpd = TLSServer(("127.0.0.1", 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert.cert, cert.key)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.url = f"https://127.0.0.1:{self.port}/hook"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.hold.clear()
        self.httpd.shutdown()
        self.httpd.server_close()

    def got(self, n, timeout=WAIT):
        assert wait_for(lambda: len(self.requests) >= n, timeout), \
            f"{len(self.requests)} of {n} deliveries arrived: {[r['body'][:200] for r in self.requests]}"
        return list(self.requests)

    def events(self):
        return [json.loads(r["body"]) for r in self.requests]


@pytest.fixture(scope="module")
def receiver(tls_cert):
    r = Receiver(tls_cert)
    yield r
    r.close()


def hook_settings(cert, **extra):
    """Overrides for a server whose receivers are this suite's (flat keys, as conftest takes them)."""
    s = {"ca_file": cert.cert, "test_allow_loopback": 1, "test_retry_seconds": 1, "poll_ms": 100}
    s.update(extra)
    return s


@pytest.fixture(scope="module")
def srv(tmp_path_factory, tls_cert):
    from conftest import _servers
    with _servers(tmp_path_factory, tls_cert) as make:
        yield make(**hook_settings(tls_cert)).start()


@pytest.fixture
def tenant(srv):
    t = make_tenant(srv, "wh")
    c = admin_client(srv, t)
    yield t, c
    c.close()


def subscribe(admin, url, types=("*",), **kw):
    body = {"url": url, "event_types": list(types)}
    body.update(kw)
    r = admin.post(f"{API}/webhooks", body)
    assert r.status == 201, r
    assert r.body["secret"].startswith("whsec_")
    return r.body


def deliveries(admin, sub_id):
    r = admin.get(f"{API}/webhooks/{sub_id}/deliveries")
    assert r.status == 200, r
    return r.body["data"]


def fresh_receiver(cert):
    return contextlib.closing(Receiver(cert))


# --- subscriptions -------------------------------------------------------------------------

@sqlite_only
def test_event_types_are_listed(srv, tenant):
    _, admin = tenant
    r = admin.get(f"{API}/webhooks/event-types")
    assert r.status == 200, r
    types = r.body["data"]
    for t in ("tickets.created", "tickets.updated", "tickets.deleted", "tickets.assigned",
              "tickets.status_changed", "invoices.sent", "invoices.status_changed",
              "payments.created", "files.uploaded", "users.created", "roles.updated"):
        assert t in types, t
    assert types == sorted(types)


@sqlite_only
def test_subscription_secret_is_shown_once_and_sealed(srv, tenant, receiver):
    t, admin = tenant
    sub = subscribe(admin, receiver.url, ["tickets.*"], description="ops")
    assert set(sub) >= {"id", "url", "event_types", "enabled", "secret", "version"}
    again = admin.get(f"{API}/webhooks/{sub['id']}")
    assert again.status == 200 and "secret" not in again.body, again
    listed = admin.get(f"{API}/webhooks").body["data"]
    assert [s["id"] for s in listed] == [sub["id"]] and "secret" not in listed[0]
    # At rest: neither the secret nor the URL is in the database in the clear.
    if DRIVER == "sqlite":
        raw = (srv.var / "tenants" / f"{t.slug}.db").read_bytes()
        assert sub["secret"].encode() not in raw
        assert sub["secret"].removeprefix("whsec_").encode() not in raw
        assert f"127.0.0.1:{receiver.port}/hook".encode() not in raw


@sqlite_only
@pytest.mark.parametrize("url", [
    "http://hooks.example.com/x",           # https only
    "https://user:pw@hooks.example.com/x",  # no userinfo
    "ftp://hooks.example.com/x",
    "https:///x",
    "not a url",
])
def test_subscription_url_must_be_https_and_well_formed(srv, tenant, url):
    _, admin = tenant
    r = admin.post(f"{API}/webhooks", {"url": url, "event_types": ["*"]})
    check_error_body(r, 400, "invalid")
    assert admin.get(f"{API}/webhooks").body["data"] == []


@sqlite_only
@pytest.mark.parametrize("types,why", [
    ([], "empty"), (["tickets.nope"], "unknown"), (["nope.*"], "unknown prefix"),
    (["tickets.created", "tickets.created"], "repeated"), ("tickets.created", "not a list"),
    ([7], "not a string"),
])
def test_subscription_event_types_are_checked(srv, tenant, receiver, types, why):
    _, admin = tenant
    r = admin.post(f"{API}/webhooks", {"url": receiver.url, "event_types": types})
    check_error_body(r, 400, "invalid")


@sqlite_only
def test_subscription_unknown_field_refused(srv, tenant, receiver):
    _, admin = tenant
    r = admin.post(f"{API}/webhooks", {"url": receiver.url, "event_types": ["*"], "secret": "x"})
    check_error_body(r, 400, "invalid")


@sqlite_only
def test_staff_cannot_see_or_change_subscriptions(srv, tenant, receiver):
    t, admin = tenant
    subscribe(admin, receiver.url)
    uid, email = new_user(admin, ["staff"])
    staff = sign_in(srv, t.slug, email)
    assert staff.get(f"{API}/webhooks").status == 403
    assert staff.post(f"{API}/webhooks", {"url": receiver.url, "event_types": ["*"]}).status == 403
    assert staff.get(f"{API}/jobs").status == 403
    staff.close()


# --- deliveries -----------------------------------------------------------------------------

def script(admin):
    """A session of changes -> the event types it must produce, in order of commit."""
    cust = admin.ok("POST", f"{API}/customers", {"name": f"Acme {secrets.token_hex(2)}"}, status=201)
    admin.ok("PATCH", f"{API}/customers/{cust['id']}", {"name": "Acme Ltd"}, status=200)
    tick = admin.ok("POST", f"{API}/tickets",
                    {"customer_id": cust["id"], "subject": "printer on fire"}, status=201)
    admin.ok("PATCH", f"{API}/tickets/{tick['id']}", {"status": "closed"}, status=200)
    admin.ok("DELETE", f"{API}/tickets/{tick['id']}", status=200)
    return [("customers.created", cust["id"]), ("customers.updated", cust["id"]),
            ("tickets.created", tick["id"]), ("tickets.updated", tick["id"]),
            ("tickets.status_changed", tick["id"]), ("tickets.deleted", tick["id"])]


def test_session_arrives_signed_in_order_of_commit(srv, tls_cert):
    t = make_tenant(srv, "whord")
    admin = admin_client(srv, t)
    with fresh_receiver(tls_cert) as rec:
        sub = subscribe(admin, rec.url, ["customers.*", "tickets.*"])
        want = script(admin)
        got = rec.got(len(want))
        time.sleep(0.5)
        assert len(rec.requests) == len(want), "one delivery per event, no more"
        for r in got:
            assert sw_verified(sub["secret"], r["headers"], r["body"]), r["headers"]
            assert r["headers"]["content-type"].startswith("application/json")
        evs = rec.events()
        assert [(e["type"], e["data"]["id"]) for e in evs] == want
        ids = [int(e["id"].removeprefix("evt_")) for e in evs]
        assert ids == sorted(ids) and len(set(ids)) == len(ids)
        assert len({r["headers"]["webhook-id"] for r in got}) == len(got)
        # The object as the API shows it rides with created and updated.
        assert evs[0]["data"]["object"]["name"].startswith("Acme")
        assert evs[1]["data"]["changes"]["after"] == {"name": "Acme Ltd"}
        assert evs[4]["data"]["to"] == "closed"
        assert all(e["tenant"] == t.slug for e in evs)
        log = deliveries(admin, sub["id"])
        assert len(log) == len(want) and all(d["state"] == "delivered" for d in log), log
        assert all(d["attempts"] == 1 and d["response_status"] == 200 for d in log)
    admin.close()


def test_signature_fails_with_another_secret(srv, tls_cert):
    t = make_tenant(srv, "whsig")
    admin = admin_client(srv, t)
    with fresh_receiver(tls_cert) as rec:
        sub = subscribe(admin, rec.url, ["customers.created"])
        admin.ok("POST", f"{API}/customers", {"name": "Sig Co"}, status=201)
        r = rec.got(1)[0]
        assert sw_verified(sub["secret"], r["headers"], r["body"])
        other = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
        assert not sw_verified(other, r["headers"], r["body"])
        assert not sw_verified(sub["secret"], r["headers"], r["body"] + b" ")
    admin.close()


def test_failing_receiver_is_retried_with_the_same_id(srv, tls_cert):
    t = make_tenant(srv, "whretry")
    admin = admin_client(srv, t)
    with fresh_receiver(tls_cert) as rec:
        rec.plan = [500, 503, 429]
        sub = subscribe(admin, rec.url, ["customers.created"])
        admin.ok("POST", f"{API}/customers", {"name": "Retry Co"}, status=201)
        got = rec.got(4, timeout=60)
        time.sleep(1.5)
        assert len(rec.requests) == 4, "delivered once it succeeded, then no more"
        assert len({r["headers"]["webhook-id"] for r in got}) == 1
        assert len({r["body"] for r in got}) == 1
        for r in got:
            assert sw_verified(sub["secret"], r["headers"], r["body"])
        log = deliveries(admin, sub["id"])
        assert [(d["state"], d["attempts"], d["response_status"]) for d in log] == [("delivered", 4, 200)]
        assert got[-1]["headers"]["webhook-id"] == log[0]["webhook_id"]
    admin.close()


def test_delivery_gives_up_after_every_attempt(srv, tls_cert):
    t = make_tenant(srv, "whgive")
    admin = admin_client(srv, t)
    with fresh_receiver(tls_cert) as rec:
        rec.plan = [500] * 20
        sub = subscribe(admin, rec.url, ["customers.created"])
        admin.ok("POST", f"{API}/customers", {"name": "Doomed Co"}, status=201)
        rec.got(10, timeout=90)
        assert wait_for(lambda: deliveries(admin, sub["id"])[0]["state"] == "failed", WAIT)
        d = deliveries(admin, sub["id"])[0]
        assert d["attempts"] == 10 and d["response_status"] == 500, d
        time.sleep(2)
        assert len(rec.requests) == 10
        jobs = admin.get(f"{API}/jobs?state=failed").body["data"]
        assert [j["kind"] for j in jobs] == ["webhook.deliver"]
        # Redelivered by hand: the same webhook-id once more.
        rec.plan = []
        r = admin.post(f"{API}/webhooks/{sub['id']}/deliveries/{d['id']}/redeliver")
        assert r.status == 202, r
        got = rec.got(11)
        assert got[-1]["headers"]["webhook-id"] == d["webhook_id"]
        assert wait_for(lambda: deliveries(admin, sub["id"])[0]["state"] == "delivered", WAIT)
    admin.close()


def test_rolled_back_change_emits_nothing(srv, tls_cert):
    t = make_tenant(srv, "whroll")
    admin = admin_client(srv, t)
    with fresh_receiver(tls_cert) as rec:
        subscribe(admin, rec.url, ["*"])
        before = int(tenant_sql(srv, t.slug, "SELECT COUNT(*) FROM events")[0][0])
        # Refused by validation, by a reference that is not there, by a hook in the transaction.
        assert admin.post(f"{API}/customers", {"name": ""}).status == 400
        assert admin.post(f"{API}/tickets", {"customer_id": 999999, "subject": "x"}).status in (400, 404, 409)
        cust = admin.ok("POST", f"{API}/customers", {"name": "Keep Co"}, status=201)
        admin.ok("POST", f"{API}/tickets", {"customer_id": cust["id"], "subject": "ref"}, status=201)
        r = admin.delete(f"{API}/customers/{cust['id']}")
        assert r.status == 409, r  # still referenced by its ticket: rolled back
        rec.got(2)
        time.sleep(1)
        types = [e["type"] for e in rec.events()]
        assert types == ["customers.created", "tickets.created"], types
        after = int(tenant_sql(srv, t.slug, "SELECT COUNT(*) FROM events")[0][0])
        assert after - before == 2
    admin.close()


def test_every_change_has_its_event(srv, tls_cert):
    """Each audited change of a subscribable kind has exactly its events."""
    t = make_tenant(srv, "wheach")
    admin = admin_client(srv, t)
    with fresh_receiver(tls_cert) as rec:
        subscribe(admin, rec.url, ["*"])
        uid, _ = new_user(admin, ["staff"])
        role = admin.ok("POST", f"{API}/roles", {"name": f"r-{secrets.token_hex(3)}",
                                                   "description": "d", "permissions": ["tickets.view"]},
                        status=201)
        admin.ok("PATCH", f"{API}/roles/{role['id']}", {"description": "e"}, status=200)
        cust = admin.ok("POST", f"{API}/customers", {"name": "Inv Co"}, status=201)
        inv = admin.ok("POST", f"{API}/invoices", {"customer_id": cust["id"], "number": "INV-1"}, status=201)
        admin.ok("POST", f"{API}/invoice_lines", {"invoice_id": inv["id"], "description": "work",
                                                   "quantity": 2, "unit_price_cents": 5000}, status=201)
        admin.ok("POST", f"{API}/invoices/{inv['id']}/send", {}, status=200)
        want = ["users.created", "roles.created", "roles.updated", "customers.created",
                "invoices.created", "invoice_lines.created", "invoices.updated"]
        got = rec.got(len(want) + 2)
        types = [e["type"] for e in rec.events()]
        assert types[:len(want)] == want, types
        assert set(types[len(want):]) >= {"invoices.sent"}, types
    admin.close()


def test_rotation_signs_with_both_secrets_during_the_overlap(srv, tls_cert):
    t = make_tenant(srv, "whrot")
    admin = admin_client(srv, t)
    with fresh_receiver(tls_cert) as rec:
        sub = subscribe(admin, rec.url, ["customers.created"])
        old = sub["secret"]
        r = admin.post(f"{API}/webhooks/{sub['id']}/rotate-secret", {"overlap_seconds": 3600})
        assert r.status == 200, r
        new = r.body["secret"]
        assert new.startswith("whsec_") and new != old and r.body["previous_secret_until"]
        admin.ok("POST", f"{API}/customers", {"name": "Rot Co"}, status=201)
        req = rec.got(1)[0]
        sigs = req["headers"]["webhook-signature"].split(" ")
        assert len(sigs) == 2, sigs
        assert sw_verified(new, req["headers"], req["body"])
        assert sw_verified(old, req["headers"], req["body"])
        # Without an overlap the old secret stops at once.
        newer = admin.post(f"{API}/webhooks/{sub['id']}/rotate-secret", {"overlap_seconds": 0}).body["secret"]
        admin.ok("POST", f"{API}/customers", {"name": "Rot Two"}, status=201)
        req = rec.got(2)[1]
        assert len(req["headers"]["webhook-signature"].split(" ")) == 1
        assert sw_verified(newer, req["headers"], req["body"])
        assert not sw_verified(new, req["headers"], req["body"])
        bad = admin.post(f"{API}/webhooks/{sub['id']}/rotate-secret", {"overlap_seconds": 999999999})
        check_error_body(bad, 400, "invalid")
    admin.close()


def test_subscription_failing_for_days_is_disabled_and_says_why(srv, tls_cert):
    t = make_tenant(srv, "whoff")
    admin = admin_client(srv, t)
    with fresh_receiver(tls_cert) as rec:
        rec.plan = [500] * 50
        sub = subscribe(admin, rec.url, ["customers.created"])
        # Its deliveries have been failing for four days (the default limit is three).
        tenant_sql(srv, t.slug, "UPDATE webhook_subscriptions SET failing_since = "
                                f"{int(time.time()) - 4 * 86400} WHERE id = {sub['id']}")
        admin.ok("POST", f"{API}/customers", {"name": "Off Co"}, status=201)
        rec.got(1)
        assert wait_for(lambda: not admin.get(f"{API}/webhooks/{sub['id']}").body["enabled"], WAIT)
        s = admin.get(f"{API}/webhooks/{sub['id']}").body
        assert "failed since" in s["disabled_reason"] and "HTTP 500" in s["disabled_reason"], s
        time.sleep(2)
        assert len(rec.requests) == 1, "a disabled subscription is not tried again"
        assert wait_for(lambda: deliveries(admin, sub["id"])[0]["state"] == "failed", WAIT)
        audit = admin.get(f"{API}/reporting/audit?entity=webhooks").body["data"]
        assert any(a["action"] == "disable" for a in audit), audit
        # Enabled again: the reason is gone, new events go out.
        rec.plan = []
        r = admin.patch(f"{API}/webhooks/{sub['id']}", {"enabled": True})
        assert r.status == 200 and r.body["enabled"] and r.body["disabled_reason"] is None, r
        admin.ok("POST", f"{API}/customers", {"name": "On Co"}, status=201)
        rec.got(2)
    admin.close()


def test_kill_9_mid_delivery_loses_nothing(start_server, tls_cert):
    srv = start_server(**hook_settings(tls_cert, timeout_ms=20000))
    t = make_tenant(srv, "whkill")
    admin = admin_client(srv, t)
    with fresh_receiver(tls_cert) as rec:
        rec.hold.set()
        sub = subscribe(admin, rec.url, ["customers.created"])
        admin.ok("POST", f"{API}/customers", {"name": "Kill Co"}, status=201)
        assert rec.held.wait(WAIT), "the delivery never started"
        srv.signal(signal.SIGKILL)
        srv.wait_exit(10)
        rec.hold.clear()
        srv.start()
        # Taken again once its lease (20 s, no longer renewed) has passed.
        got = rec.got(2, timeout=60)
        assert len({r["headers"]["webhook-id"] for r in got}) == 1
        admin = admin_client(srv, t)
        assert wait_for(lambda: deliveries(admin, sub["id"])[0]["state"] == "delivered", WAIT)
        assert all(sw_verified(sub["secret"], r["headers"], r["body"]) for r in got)
    admin.close()


def test_jobs_cli_lists_retries_and_cancels(srv, tls_cert):
    t = make_tenant(srv, "whcli")
    admin = admin_client(srv, t)
    with fresh_receiver(tls_cert) as rec:
        rec.plan = [500] * 20
        sub = subscribe(admin, rec.url, ["customers.created"])
        admin.ok("PATCH", f"{API}/webhooks/{sub['id']}", {"enabled": False}, status=200)
        admin.ok("POST", f"{API}/customers", {"name": "Cli Co"}, status=201)
        time.sleep(0.5)
        out = srv.cli_ok("jobs", "list", t.slug, "--json").stdout
        assert json.loads(out)["jobs"] == [], "a disabled subscription gets no deliveries"
        admin.ok("PATCH", f"{API}/webhooks/{sub['id']}", {"enabled": True}, status=200)
        admin.ok("POST", f"{API}/customers", {"name": "Cli Two"}, status=201)
        rec.got(1)
        jobs = json.loads(srv.cli_ok("jobs", "list", t.slug, "--json").stdout)["jobs"]
        assert len(jobs) == 1 and jobs[0]["kind"] == "webhook.deliver", jobs
        jid = jobs[0]["id"]
        # Queued for its back-off: cancel it, and the delivery says so.
        assert wait_for(lambda: json.loads(srv.cli_ok("jobs", "list", t.slug, "--json").stdout)["jobs"][0]["state"] == "queued", WAIT)
        p = srv.cli("jobs", "cancel", t.slug, str(jid))
        if p.returncode != 0:  # it was running at that moment: once more
            time.sleep(0.3)
            srv.cli_ok("jobs", "cancel", t.slug, str(jid))
        assert wait_for(lambda: deliveries(admin, sub["id"])[0]["state"] == "cancelled", WAIT), (deliveries(admin, sub["id"]), srv.cli("jobs", "list", t.slug).stdout)
        n = len(rec.requests)
        time.sleep(2)
        assert len(rec.requests) == n, "a cancelled job does not run"
        p = srv.cli("jobs", "cancel", t.slug, str(jid))
        assert p.returncode == 1 and "only a queued job" in p.stderr, p.stderr
        assert srv.cli("jobs", "retry", t.slug, "999999").returncode == 1
        assert srv.cli("jobs", "frob", t.slug).returncode == 2
        text = srv.cli_ok("jobs", "list", t.slug).stdout
        assert "webhook.deliver" in text and "cancelled" in text
        audit = admin.get(f"{API}/reporting/audit?entity=jobs").body["data"]
        assert [a["action"] for a in audit] == ["cancel"], audit
    admin.close()


# --- two app servers --------------------------------------------------------------------------

@mariadb_only
def test_two_servers_deliver_each_event_once(srv, tls_cert, tmp_path):
    with twin_of(srv, tmp_path / "twin") as other:
        t = make_tenant(srv, "whtwo", servers=(other,))
        admin = admin_client(srv, t)
        with fresh_receiver(tls_cert) as rec:
            sub = subscribe(admin, rec.url, ["customers.created"])
            other_admin = admin_client(other, t)
            n = 40
            for i in range(n):
                (admin if i % 2 else other_admin).ok("POST", f"{API}/customers",
                                                     {"name": f"Two {i}"}, status=201)
            rec.got(n)
            time.sleep(3)
            ids = [r["headers"]["webhook-id"] for r in rec.requests]
            assert len(ids) == n and len(set(ids)) == n, "each event delivered once"
            names = [json.loads(r["body"])["data"]["object"]["name"] for r in rec.requests]
            assert names == [f"Two {i}" for i in range(n)], "in order of commit"
            owners = tenant_sql(srv, t.slug, "SELECT DISTINCT owner FROM jobs")
            assert len(owners) >= 1
            other_admin.close()
        admin.close()


# --- inbound --------------------------------------------------------------------------------

def stripe_header(secret, body, ts=None, extra=()):
    ts = int(time.time()) if ts is None else ts
    mac = hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    return ",".join([f"t={ts}", *extra, f"v1={mac}"])


def intuit_header(token, body):
    return base64.b64encode(hmac.new(token.encode(), body, hashlib.sha256).digest()).decode()


def sw_headers(secret, body, msg_id=None, ts=None):
    msg_id = msg_id or f"msg_{secrets.token_hex(8)}"
    ts = str(int(time.time()) if ts is None else ts)
    return {"webhook-id": msg_id, "webhook-timestamp": ts,
            "webhook-signature": sw_sign(secret, msg_id, ts, body)}


def endpoint(admin, provider, secret):
    r = admin.post(f"{API}/hook-endpoints", {"provider": provider, "secret": secret,
                                             "description": f"{provider} test"})
    assert r.status == 201, r
    assert "secret" not in r.body and r.body["secret_set"] is True
    assert r.body["path"].startswith(f"{API}/hooks/{provider}/hk_")
    return r.body


def post_hook(srv, slug, path, body, headers):
    h = {"Content-Type": "application/json"}
    h.update(headers)
    return Client(srv, slug).request("POST", path, raw=body, headers=h)


def hook_rows(srv, slug):
    return [r for r in tenant_sql(srv, slug, "SELECT event_key, state FROM hook_events ORDER BY id")]


def refusals(admin):
    rows = admin.get(f"{API}/reporting/audit?entity=hooks&action=refused").body["data"]
    return [a["after"]["reason"] for a in rows]


@pytest.fixture
def inbound(srv):
    t = make_tenant(srv, "whin")
    admin = admin_client(srv, t)
    yield t, admin
    admin.close()


def test_stripe_event_is_verified_recorded_and_processed_once(srv, inbound, tls_cert):
    t, admin = inbound
    secret = "whsec_" + secrets.token_hex(16)
    ep = endpoint(admin, "stripe", secret)
    with fresh_receiver(tls_cert) as rec:
        subscribe(admin, rec.url, ["hooks.received"])
        body = json.dumps({"id": "evt_1Abc", "object": "event", "type": "payment_intent.succeeded"}).encode()
        r = post_hook(srv, t.slug, ep["path"], body, {"Stripe-Signature": stripe_header(secret, body)})
        assert r.status == 200 and r.body == {"received": True, "duplicate": False}, r
        # Durable before the 2xx: the row is there now.
        assert hook_rows(srv, t.slug)[0][0] == "evt_1Abc"
        ev = json.loads(rec.got(1)[0]["body"])
        assert ev["type"] == "hooks.received" and ev["data"]["event_type"] == "payment_intent.succeeded"
        assert wait_for(lambda: hook_rows(srv, t.slug) == [("evt_1Abc", "processed")], WAIT)
        # Stripe retrying the same event (a fresh signature): 200, taken once.
        time.sleep(1.1)
        r = post_hook(srv, t.slug, ep["path"], body, {"Stripe-Signature": stripe_header(secret, body)})
        assert r.status == 200 and r.body["duplicate"] is True, r
        # Several v1 signatures (a rolling secret): one matching is enough; v0 is ignored.
        body2 = json.dumps({"id": "evt_2", "type": "charge.refunded"}).encode()
        ts = int(time.time())
        other = hmac.new(b"whsec_old", f"{ts}.".encode() + body2, hashlib.sha256).hexdigest()
        h = stripe_header(secret, body2, ts, extra=(f"v1={other}", "v0=abc"))
        assert post_hook(srv, t.slug, ep["path"], body2, {"Stripe-Signature": h}).status == 200
        time.sleep(1.5)
        assert len(rec.requests) == 2, "processed once each"
        assert not refusals(admin)


def test_stripe_refusals(srv, inbound):
    t, admin = inbound
    secret = "whsec_" + secrets.token_hex(16)
    ep = endpoint(admin, "stripe", secret)
    body = json.dumps({"id": "evt_x", "type": "invoice.paid"}).encode()
    cases = [
        ({}, 400, "missing"),
        ({"Stripe-Signature": "garbage"}, 400, "malformed"),
        ({"Stripe-Signature": stripe_header("whsec_wrong", body)}, 401, "does not verify"),
        ({"Stripe-Signature": stripe_header(secret, body + b" ")}, 401, "does not verify"),
        ({"Stripe-Signature": stripe_header(secret, body, int(time.time()) - 301)}, 401, "tolerance"),
        ({"Stripe-Signature": stripe_header(secret, body, int(time.time()) + 400)}, 401, "tolerance"),
    ]
    for headers, status, why in cases:
        r = post_hook(srv, t.slug, ep["path"], body, headers)
        assert r.status == status, (headers, r)
        assert why in r.body["error"]["message"], r
    assert hook_rows(srv, t.slug) == [], "nothing recorded"
    assert len(refusals(admin)) == len(cases)
    # A replay: the very same signed request twice.
    h = {"Stripe-Signature": stripe_header(secret, body)}
    assert post_hook(srv, t.slug, ep["path"], body, h).status == 200
    r = post_hook(srv, t.slug, ep["path"], body, h)
    check_error_body(r, 409, "conflict")
    assert len(hook_rows(srv, t.slug)) == 1
    assert any("replay" in w for w in refusals(admin))


def test_unknown_or_foreign_endpoint_is_refused(srv, inbound):
    t, admin = inbound
    other = make_tenant(srv, "whother")
    oadmin = admin_client(srv, other)
    secret = "whsec_" + secrets.token_hex(16)
    ep = endpoint(oadmin, "stripe", secret)
    body = json.dumps({"id": "evt_f", "type": "x"}).encode()
    h = {"Stripe-Signature": stripe_header(secret, body)}
    # Another tenant's endpoint at this tenant's host: no such endpoint here.
    r = post_hook(srv, t.slug, ep["path"], body, h)
    check_error_body(r, 404, "not_found")
    # The right endpoint under another provider's name, and a made-up one.
    assert post_hook(srv, other.slug, ep["path"].replace("/stripe/", "/quickbooks/"), body, h).status == 404
    assert post_hook(srv, other.slug, f"{API}/hooks/stripe/hk_{'0' * 32}", body, h).status == 404
    assert post_hook(srv, other.slug, f"{API}/hooks/paypal/{ep['id']}", body, h).status == 404
    assert hook_rows(srv, t.slug) == [] and hook_rows(srv, other.slug) == []
    # A disabled endpoint takes nothing.
    oadmin.ok("PATCH", f"{API}/hook-endpoints/{ep['id']}", {"enabled": False}, status=200)
    assert post_hook(srv, other.slug, ep["path"], body, h).status == 404
    oadmin.ok("PATCH", f"{API}/hook-endpoints/{ep['id']}", {"enabled": True}, status=200)
    assert post_hook(srv, other.slug, ep["path"], body, h).status == 200
    oadmin.close()


def test_oversized_body_is_refused(start_server, tls_cert):
    srv = start_server(**hook_settings(tls_cert, inbound_body_max=2048))
    t = make_tenant(srv, "whbig")
    admin = admin_client(srv, t)
    secret = "whsec_" + secrets.token_hex(16)
    ep = endpoint(admin, "stripe", secret)
    body = json.dumps({"id": "evt_big", "pad": "x" * 4096}).encode()
    r = post_hook(srv, t.slug, ep["path"], body, {"Stripe-Signature": stripe_header(secret, body)})
    check_error_body(r, 413, "payload_too_large")
    assert hook_rows(srv, t.slug) == []
    assert any("over 2048 bytes" in w for w in refusals(admin))
    # Over what the route reads at all: refused before the body (the server may
    # close the connection while the client is still sending it).
    huge = b"{" + b" " * (1024 * 1024 + 10) + b"}"
    try:
        status = post_hook(srv, t.slug, ep["path"], huge, {"Stripe-Signature": "t=1,v1=00"}).status
    except OSError:
        status = 413
    assert status == 413
    assert hook_rows(srv, t.slug) == []
    admin.close()


def test_quickbooks_event(srv, inbound):
    t, admin = inbound
    token = secrets.token_hex(18)
    ep = endpoint(admin, "quickbooks", token)
    body = json.dumps({"eventNotifications": [{"realmId": "123", "dataChangeEvent": {
        "entities": [{"name": "Invoice", "id": "9", "operation": "Update"}]}}]}).encode()
    r = post_hook(srv, t.slug, ep["path"], body, {"intuit-signature": intuit_header(token, body)})
    assert r.status == 200, r
    assert post_hook(srv, t.slug, ep["path"], body, {"intuit-signature": intuit_header(token, body)}).status == 409
    assert post_hook(srv, t.slug, ep["path"], body, {"intuit-signature": intuit_header("nope", body)}).status == 401
    assert post_hook(srv, t.slug, ep["path"], body, {"intuit-signature": "!!!"}).status == 400
    assert post_hook(srv, t.slug, ep["path"], body, {}).status == 400
    other = b'{"notifications": []}'
    assert post_hook(srv, t.slug, ep["path"], other, {"intuit-signature": intuit_header(token, other)}).status == 400
    assert wait_for(lambda: [s for _, s in hook_rows(srv, t.slug)] == ["processed"], WAIT)


def test_standard_webhooks_sender(srv, inbound):
    t, admin = inbound
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    ep = endpoint(admin, "standard", secret)
    body = b'{"type": "envelope.completed", "data": {"id": 5}}'
    h = sw_headers(secret, body, "msg_sign1")
    assert post_hook(srv, t.slug, ep["path"], body, h).status == 200
    check_error_body(post_hook(srv, t.slug, ep["path"], body, h), 409, "conflict")
    # The sender retries: same webhook-id, new timestamp: recorded once.
    time.sleep(1.1)
    r = post_hook(srv, t.slug, ep["path"], body, sw_headers(secret, body, "msg_sign1"))
    assert r.status == 200 and r.body["duplicate"] is True, r
    bad = sw_headers(secret, body, "msg_sign2")
    bad["webhook-signature"] = sw_sign("whsec_" + base64.b64encode(b"k" * 32).decode(), "msg_sign2",
                                       bad["webhook-timestamp"], body)
    assert post_hook(srv, t.slug, ep["path"], body, bad).status == 401
    stale = sw_headers(secret, body, "msg_sign3", ts=int(time.time()) - 600)
    assert post_hook(srv, t.slug, ep["path"], body, stale).status == 401
    nots = sw_headers(secret, body, "msg_sign4")
    del nots["webhook-timestamp"]
    assert post_hook(srv, t.slug, ep["path"], body, nots).status == 400
    assert [k for k, _ in hook_rows(srv, t.slug)] == ["msg_sign1"]
    r = admin.post(f"{API}/hook-endpoints", {"provider": "standard", "secret": "not-whsec"})
    check_error_body(r, 400, "invalid")


def test_endpoint_secret_is_sealed_and_never_shown(srv, inbound):
    t, admin = inbound
    secret = "whsec_" + secrets.token_hex(20)
    ep = endpoint(admin, "stripe", secret)
    listed = admin.get(f"{API}/hook-endpoints").body["data"]
    assert [e["id"] for e in listed] == [ep["id"]] and "secret" not in listed[0]
    if DRIVER == "sqlite":
        assert secret.encode() not in (srv.var / "tenants" / f"{t.slug}.db").read_bytes()
    # Replaced: the old one no longer verifies.
    new = "whsec_" + secrets.token_hex(20)
    admin.ok("PATCH", f"{API}/hook-endpoints/{ep['id']}", {"secret": new}, status=200)
    body = b'{"id": "evt_s", "type": "t"}'
    assert post_hook(srv, t.slug, ep["path"], body, {"Stripe-Signature": stripe_header(secret, body)}).status == 401
    assert post_hook(srv, t.slug, ep["path"], body, {"Stripe-Signature": stripe_header(new, body)}).status == 200
    assert admin.delete(f"{API}/hook-endpoints/{ep['id']}").status == 200
    assert post_hook(srv, t.slug, ep["path"], body, {"Stripe-Signature": stripe_header(new, body)}).status == 404


# --- every change is an audit row -----------------------------------------------------------

def audit_rows(admin, entity):
    rows = admin.get(f"{API}/reporting/audit?entity={entity}&limit=100").body["data"]
    return [(a["entity_id"], a["action"]) for a in rows]


def test_every_change_route_writes_its_audit_row(srv, tls_cert):
    """Each mutating route of webhooks, inbound endpoints and jobs (the list
    test_audit_routes.py defers to here) writes its audit row, and none
    carries a secret."""
    t = make_tenant(srv, "whaud")
    admin = admin_client(srv, t)
    with fresh_receiver(tls_cert) as rec:
        sub = subscribe(admin, rec.url, ["customers.created"])
        sid = sub["id"]
        assert (sid, "create") in audit_rows(admin, "webhooks")
        admin.ok("PATCH", f"{API}/webhooks/{sid}", {"description": "audited"}, status=200)
        assert (sid, "update") in audit_rows(admin, "webhooks")
        new = admin.ok("POST", f"{API}/webhooks/{sid}/rotate-secret", {"overlap_seconds": 0})["secret"]
        assert (sid, "rotate_secret") in audit_rows(admin, "webhooks")
        admin.ok("POST", f"{API}/customers", {"name": "Aud Co"}, status=201)
        rec.got(1)
        assert wait_for(lambda: deliveries(admin, sid)[0]["state"] == "delivered", WAIT)
        did = deliveries(admin, sid)[0]["id"]
        assert admin.post(f"{API}/webhooks/{sid}/deliveries/{did}/redeliver").status == 202
        assert (sid, "redeliver") in audit_rows(admin, "webhooks")
        # A second redeliver while the first is pending is refused, then the log is 404 for others.
        assert admin.post(f"{API}/webhooks/{sid}/deliveries/{did + 1000}/redeliver").status == 404
        rec.got(2)
        # Jobs: one waiting on its back-off is cancelled, then retried, through the API.
        rec.plan = [500] * 5
        admin.ok("POST", f"{API}/customers", {"name": "Aud Two"}, status=201)
        rec.got(3)
        def queued():
            js = admin.get(f"{API}/jobs?state=queued").body["data"]
            return js[0]["id"] if js else None
        jid = wait_for(queued, WAIT)
        assert jid, admin.get(f"{API}/jobs").body
        r = admin.post(f"{API}/jobs/{jid}/cancel")
        if r.status == 409:  # caught running: once more
            time.sleep(0.3)
            r = admin.post(f"{API}/jobs/{jid}/cancel")
        assert r.status == 200, r
        rec.plan = []
        assert admin.post(f"{API}/jobs/{jid}/retry").status == 200
        assert {(jid, "cancel"), (jid, "retry")} <= set(audit_rows(admin, "jobs"))
        assert wait_for(lambda: admin.get(f"{API}/jobs/summary").body["counts"]["queued"] == 0, WAIT)
        assert admin.post(f"{API}/jobs/999999/retry").status == 404
        assert admin.delete(f"{API}/webhooks/{sid}").status == 200
        assert (sid, "delete") in audit_rows(admin, "webhooks")
    secret = "whsec_" + secrets.token_hex(12)
    ep = endpoint(admin, "stripe", secret)
    assert (ep["id"], "create") in audit_rows(admin, "hooks")
    admin.ok("PATCH", f"{API}/hook-endpoints/{ep['id']}", {"description": "x"}, status=200)
    assert (ep["id"], "update") in audit_rows(admin, "hooks")
    body = b'{"id": "evt_aud", "type": "t"}'
    assert post_hook(srv, t.slug, ep["path"], body, {"Stripe-Signature": stripe_header(secret, body)}).status == 200
    assert post_hook(srv, t.slug, ep["path"], body, {}).status == 400
    assert {(ep["id"], "received"), (ep["id"], "refused")} <= set(audit_rows(admin, "hooks"))
    assert admin.delete(f"{API}/hook-endpoints/{ep['id']}").status == 200
    assert (ep["id"], "delete") in audit_rows(admin, "hooks")
    # No secret in any audit row (they are sealed at rest and shown here decrypted).
    everything = json.dumps(admin.get(f"{API}/reporting/audit?limit=100").body)
    # Nor in the server's log (debug level in the suite) or its access log.
    logs = srv.stderr() + (srv.access_log.read_text() if srv.access_log.exists() else "")
    for s in (sub["secret"], new, secret):
        assert s not in everything
        assert s not in logs and s.removeprefix("whsec_") not in logs
    admin.close()


# --- SSRF: off by default ---------------------------------------------------------------------

SPELLINGS = [
    "https://127.0.0.1/x", "https://2130706433/x", "https://0x7f000001/x", "https://0177.0.0.1/x",
    "https://127.1/x", "https://[::1]/x", "https://[::ffff:127.0.0.1]/x", "https://[::ffff:7f00:1]/x",
    "https://169.254.169.254/latest/meta-data", "https://2852039166/x", "https://0xa9fea9fe/x",
    "https://[::ffff:169.254.169.254]/x", "https://[fd00:ec2::254]/x", "https://10.0.0.1/x",
    "https://172.16.0.1/x", "https://192.168.1.1/x", "https://100.64.0.1/x", "https://[fe80::1]/x",
    "https://[fc00::1]/x", "https://224.0.0.1/x", "https://0.0.0.0/x", "https://localhost/x",
    "https://a.localhost/x", "https://%31%32%37.0.0.1/x",
]


@sqlite_only
def test_private_addresses_are_refused_by_default(start_server):
    srv = start_server()  # no test_allow_loopback: what production runs
    t = make_tenant(srv, "whssrf")
    admin = admin_client(srv, t)
    for url in SPELLINGS:
        r = admin.post(f"{API}/webhooks", {"url": url, "event_types": ["*"]})
        check_error_body(r, 400, "invalid")
        assert "url" in r.body["error"]["message"], (url, r)
    assert admin.get(f"{API}/webhooks").body["data"] == []
    # A public name is taken (its address is judged when a delivery connects).
    assert admin.post(f"{API}/webhooks", {"url": "https://hooks.example.com/x",
                                          "event_types": ["roles.deleted"]}).status == 201
    admin.close()


def test_a_payment_that_pays_its_invoice_tells_both(srv, tls_cert):
    """A change's effects on other rows are events too: the payment, and
    the invoice it marks paid (updated, status_changed from sent to paid)."""
    t = make_tenant(srv, "whpay")
    admin = admin_client(srv, t)
    cust = admin.ok("POST", f"{API}/customers", {"name": "Pay Co"}, status=201)
    inv = admin.ok("POST", f"{API}/invoices", {"customer_id": cust["id"], "number": "INV-9"}, status=201)
    admin.ok("POST", f"{API}/invoice_lines", {"invoice_id": inv["id"], "description": "work",
                                               "quantity": 1, "unit_price_cents": 5000}, status=201)
    admin.ok("POST", f"{API}/invoices/{inv['id']}/send", {}, status=200)
    with fresh_receiver(tls_cert) as rec:
        subscribe(admin, rec.url, ["payments.*", "invoices.*"])
        pay = admin.ok("POST", f"{API}/payments", {"invoice_id": inv["id"], "amount_cents": 5000,
                                                    "method": "card", "card_last_four": "4242",
                                                    "received_on": "2026-12-01"}, status=201)
        rec.got(3)
        time.sleep(0.5)
        evs = rec.events()
        assert [e["type"] for e in evs] == ["payments.created", "invoices.updated",
                                            "invoices.status_changed"], [e["type"] for e in evs]
        assert evs[0]["data"]["id"] == pay["id"]
        assert evs[1]["data"]["id"] == inv["id"] == evs[2]["data"]["id"]
        assert (evs[2]["data"]["from"], evs[2]["data"]["to"]) == ("sent", "paid")
    admin.close()


def test_a_maker_who_loses_a_right_stops_receiving_what_it_reads(srv, tls_cert):
    """A subscription acts for its maker: types the maker may not read are
    refused when it is saved (403), and once the maker loses a right (their
    role changed, or they are disabled) its events stop, nothing else."""
    t = make_tenant(srv, "whmaker")
    admin = admin_client(srv, t)
    rid, role = new_role(admin, ["webhooks.manage", "webhooks.view", "customers.view"])
    uid, email = new_user(admin, [role])
    maker = sign_in(srv, t.slug, email)
    with fresh_receiver(tls_cert) as rec:
        r = maker.post(f"{API}/webhooks", {"url": rec.url, "event_types": ["tickets.*"]})
        check_error_body(r, 403, "forbidden")
        assert "tickets.view" in r.body["error"]["message"], r
        r = maker.post(f"{API}/webhooks", {"url": rec.url, "event_types": ["customers.*"]})
        assert r.status == 201, r
        admin.ok("POST", f"{API}/customers", {"name": "Seen Co"}, status=201)
        rec.got(1)
        # customers.view taken away: the next customer is not sent.
        admin.ok("PATCH", f"{API}/roles/{rid}", {"permissions": ["webhooks.manage", "webhooks.view"]},
                 status=200)
        admin.ok("POST", f"{API}/customers", {"name": "Unseen Co"}, status=201)
        time.sleep(2)
        assert [e["data"]["object"]["name"] for e in rec.events()] == ["Seen Co"]
        # Given back, then the maker disabled: nothing either.
        admin.ok("PATCH", f"{API}/roles/{rid}",
                 {"permissions": ["webhooks.manage", "webhooks.view", "customers.view"]}, status=200)
        admin.ok("POST", f"{API}/customers", {"name": "Seen Again"}, status=201)
        rec.got(2)
        admin.ok("PATCH", f"{API}/users/{uid}", {"disabled": True}, status=200)
        admin.ok("POST", f"{API}/customers", {"name": "Disabled Maker"}, status=201)
        time.sleep(2)
        assert [e["data"]["object"]["name"] for e in rec.events()] == ["Seen Co", "Seen Again"]
    maker.close()
    admin.close()
