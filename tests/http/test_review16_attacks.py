"""Attack tests from the review of issue #16 (events, jobs, webhooks).

Each test states what the product promises and fails while the promise is
broken. They reuse the receiver, signing helpers and fixtures of
test_webhooks.py.
"""

import json
import secrets
import threading
import time

import pytest

from conftest import DRIVER, wait_for
from psa import API, admin_client, new_role, new_user, sign_in
from test_identity import make_tenant, tenant_sql
from test_webhooks import (  # noqa: F401  (fixtures are used by name)
    Receiver, endpoint, fresh_receiver, hook_rows, hook_settings, intuit_header, post_hook,
    receiver, refusals, srv, stripe_header, subscribe, tenant,
)

sqlite_only = pytest.mark.skipif(DRIVER == "mariadb", reason="does not depend on the driver")


def audit_count(srv, slug):
    return int(tenant_sql(srv, slug, "SELECT COUNT(*) FROM audit_log")[0][0])


# --- who may see and steer webhooks ---------------------------------------------------------

@sqlite_only
def test_read_only_role_cannot_read_subscription_urls_or_delivery_log(srv, tenant, receiver):
    """read_only is "every record view": its '*.view' also grants webhooks.view
    and jobs.view, so a read-only user reads every subscription's URL (sealed
    at rest because URLs carry tokens: Slack/Teams/Zapier hooks), the
    receivers' replies and the inbound endpoints' paths."""
    t, admin = tenant
    url = receiver.url + "?token=" + secrets.token_hex(16)
    sub = subscribe(admin, url, ["tickets.*"])
    uid, email = new_user(admin, ["read_only"])
    ro = sign_in(srv, t.slug, email)
    try:
        r = ro.get(f"{API}/webhooks")
        leaked = r.status == 200 and any(s.get("url") == url for s in r.body.get("data", []))
        assert not leaked, f"a read_only user reads the subscription URL with its token: {r.body}"
        assert ro.get(f"{API}/webhooks/{sub['id']}").status == 403
        assert ro.get(f"{API}/webhooks/{sub['id']}/deliveries").status == 403
        assert ro.get(f"{API}/hook-endpoints").status == 403
        assert ro.get(f"{API}/jobs").status == 403
    finally:
        ro.close()


@sqlite_only
def test_webhooks_manager_without_customer_rights_does_not_receive_customer_pii(srv, tenant,
                                                                                 tls_cert):
    """A role holding only webhooks.manage/webhooks.view (an integration user,
    say) subscribes to "*" and from then on receives every module's rows,
    PII decrypted (customers' phone, address, e-mail), which it could never
    read through the API: webhooks.manage is a read-everything permission."""
    t, admin = tenant
    _, role = new_role(admin, ["webhooks.manage", "webhooks.view"])
    _, email = new_user(admin, [role])
    hooker = sign_in(srv, t.slug, email)
    try:
        assert hooker.get(f"{API}/customers").status == 403  # cannot read customers
        with fresh_receiver(tls_cert) as rec:
            r = hooker.post(f"{API}/webhooks", {"url": rec.url, "event_types": ["*"]})
            phone = "+4930" + str(secrets.randbelow(10**7)).zfill(7)
            admin.ok("POST", f"{API}/customers",
                     {"name": "Secret Corp", "phone": phone, "address": "1 Hidden Lane"},
                     status=201)
            if r.status == 201:
                time.sleep(3)  # poll_ms 100: the event would have gone out by now
            bodies = [x["body"].decode() for x in rec.requests]
            assert not any(phone in b for b in bodies), \
                "a user without customers.view received a customer's phone number by webhook"
    finally:
        hooker.close()


# --- inbound ----------------------------------------------------------------------------------

@sqlite_only
def test_unauthenticated_posts_to_unknown_endpoints_do_not_fill_the_audit_log(srv, tenant):
    """Anyone on the Internet can POST to /api/v1/hooks/<provider>/<anything>;
    each request to an endpoint that does not exist writes an encrypted,
    hash-chained audit row (entity 0) in the tenant's log: the log (and its
    serialised chain) is the attacker's to fill, at the rate limit's pace."""
    t, _ = tenant
    before = audit_count(srv, t.slug)
    n = 25
    for i in range(n):
        r = post_hook(srv, t.slug, f"{API}/hooks/stripe/hk_{secrets.token_hex(16)}", b"{}", {})
        assert r.status == 404, r
    written = audit_count(srv, t.slug) - before
    assert written < n, f"{written} audit rows written by {n} anonymous requests to no endpoint"


@sqlite_only
def test_stripe_replay_with_a_reshaped_signature_header_is_refused_as_a_replay(srv, tenant):
    """The Stripe nonce is sha256 of the whole Stripe-Signature header, which
    is not what is signed: a captured request replayed with an extra entry
    (v0=..., a second v1=junk, a reordering) is a fresh nonce. The event id
    dedup still stops a second processing, but the replay store (the
    documented control) is bypassed and the replay is answered 200."""
    t, admin = tenant
    secret = "whsec_" + secrets.token_hex(16)
    ep = endpoint(admin, "stripe", secret)
    body = json.dumps({"id": f"evt_{secrets.token_hex(6)}", "type": "invoice.paid"}).encode()
    h = stripe_header(secret, body)
    assert post_hook(srv, t.slug, ep["path"], body, {"Stripe-Signature": h}).status == 200
    ts, v1 = h.split(",")
    for variant in (f"{ts},v0={'0' * 64},{v1}", f"{v1},{ts}", f"{ts},{v1},v1={'0' * 64}"):
        r = post_hook(srv, t.slug, ep["path"], body, {"Stripe-Signature": variant})
        assert r.status == 409, (variant, r.status, r.body)


@sqlite_only
def test_concurrent_redelivery_of_one_stripe_event_is_not_a_server_error(srv, tenant):
    """Two deliveries of one Stripe event (a provider's retry racing its
    first try, or the reshaped replay above) at once: the replay nonces
    differ, both miss the event_key SELECT and one INSERT meets the UNIQUE
    index. That must be 200 duplicate (or 409), never a 5xx."""
    t, admin = tenant
    secret = "whsec_" + secrets.token_hex(16)
    ep = endpoint(admin, "stripe", secret)
    statuses = []
    for _ in range(6):
        body = json.dumps({"id": f"evt_{secrets.token_hex(6)}", "type": "invoice.paid"}).encode()
        h1 = stripe_header(secret, body)
        ts, v1 = h1.split(",")
        h2 = f"{v1},{ts}"
        out = [None, None]

        def go(i, h):
            out[i] = post_hook(srv, t.slug, ep["path"], body, {"Stripe-Signature": h}).status
        th = [threading.Thread(target=go, args=(0, h1)), threading.Thread(target=go, args=(1, h2))]
        for x in th:
            x.start()
        for x in th:
            x.join()
        statuses.append(tuple(out))
    assert all(s < 500 for pair in statuses for s in pair), statuses


@sqlite_only
def test_quickbooks_body_is_not_accepted_again_once_the_stores_forget_it(srv, tenant):
    """Intuit signs no timestamp: a body is refused as a replay for 35 days
    (hook_replays), longer than processed events are kept (30), and a body
    whose changes are all more than 30 days old is refused whatever the
    stores remember (simulated here by emptying them)."""
    t, admin = tenant
    token = secrets.token_hex(20)
    ep = endpoint(admin, "quickbooks", token)

    def notification(when):
        return json.dumps({"eventNotifications": [{"realmId": "1", "dataChangeEvent": {
            "entities": [{"name": "Invoice", "id": "1", "operation": "Update",
                          "lastUpdated": when}]}}]}).encode()
    fresh = notification(time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()))
    h = {"intuit-signature": intuit_header(token, fresh)}
    assert post_hook(srv, t.slug, ep["path"], fresh, h).status == 200
    assert wait_for(lambda: all(r[1] == "processed" for r in hook_rows(srv, t.slug)), 10)
    assert post_hook(srv, t.slug, ep["path"], fresh, h).status == 409
    old = notification("2020-01-01T00:00:00.000Z")
    tenant_sql(srv, t.slug, "DELETE FROM hook_replays")
    tenant_sql(srv, t.slug, "DELETE FROM hook_events")
    r = post_hook(srv, t.slug, ep["path"], old, {"intuit-signature": intuit_header(token, old)})
    assert r.status == 401, "a months-old QuickBooks notification is accepted and processed again"
    assert hook_rows(srv, t.slug) == []


# --- production safety -----------------------------------------------------------------------

@sqlite_only
def test_test_only_keys_are_loud_when_on(srv):
    """test_allow_loopback=1 opens 127.0.0.0/8 and ::1 to every tenant
    admin's URL (blind SSRF to local services); test_retry_seconds changes
    the retry schedule. Both are accepted from the INI file or the
    environment (BULWARK_WEBHOOKS_TEST_ALLOW_LOOPBACK=1) without a word in
    the log."""
    text = srv.stderr()
    assert "test_allow_loopback" in text or "loopback" in text.lower(), \
        "a server with [webhooks] test_allow_loopback = 1 says nothing about it at start-up"


# --- jobs --------------------------------------------------------------------------------------

@sqlite_only
def test_a_slow_receiver_is_not_sent_the_event_twice_at_once(start_server, tls_cert):
    """Deliveries hold a 60 s lease (deliver.c: lease_ms 60000) but
    [webhooks] timeout_ms may be up to 120000 (config.c), plus name
    resolution. An attempt that outlives its lease is re-queued by the
    reclaim tick while it is still in flight, the lane's hold expires with
    it, and a second worker sends the same delivery again, concurrently:
    lanes promise one delivery of a subscription at a time, in order. The
    first attempt then records its outcome anyway (wh_record_tx does not
    check the owner) and its finish fails with 'lease passed'."""
    # Worker 0 alone runs the reclaim tick: the held attempt must be another
    # worker's. The first attempt fails at once (500); its retry, a second
    # later, is claimed by whichever of the 4 workers polls first, and held.
    srv = start_server(**hook_settings(tls_cert, timeout_ms=60000, workers=4))
    t = make_tenant(srv, "whlease")
    admin = admin_client(srv, t)
    try:
        with fresh_receiver(tls_cert) as rec:
            rec.plan = [500]
            subscribe(admin, rec.url, ["customers.created"])
            admin.ok("POST", f"{API}/customers", {"name": "Slow Co"}, status=201)
            assert wait_for(lambda: len(rec.requests) >= 1, 30), "the delivery never started"
            time.sleep(0.3)
            rec.hold.set()
            assert rec.held.wait(30), "the retry never started"
            # Past the 20 s lease and the 5 s reclaim tick: renewed, it is still this attempt's.
            twice = wait_for(lambda: len(rec.requests) >= 3, 32)
            rec.hold.clear()
            if not twice:
                print("\n".join(x for x in srv.stderr().splitlines() if "job" in x or "lease" in x))
            assert not twice, \
                f"{len(rec.requests) - 1} concurrent attempts of one delivery (the lease ran out mid-attempt)"
    finally:
        admin.close()


@sqlite_only
def test_one_tenants_slow_receivers_do_not_hold_up_another_tenants_deliveries(start_server,
                                                                              tls_cert):
    """The runner's workers are shared by every tenant; each takes up to 32
    jobs from one tenant before the next, and each delivery may hold its
    worker for the whole timeout (15 s by default). Event fan-out (and lost
    leases, housekeeping) run only on worker 0, tenant by tenant, in the
    same pass. So a tenant admin who points 40 subscriptions at a tarpit
    keeps every worker in their tenant for 32 x timeout per pass, and the
    other tenants' events are not even fanned out meanwhile."""
    srv = start_server(**hook_settings(tls_cert, timeout_ms=3000, workers=2))
    ta, tb = make_tenant(srv, "wha"), make_tenant(srv, "whb")
    a, b = admin_client(srv, ta), admin_client(srv, tb)
    try:
        with fresh_receiver(tls_cert) as tarpit, fresh_receiver(tls_cert) as good:
            tarpit.hold.set()
            for i in range(40):
                subscribe(a, tarpit.url + f"?n={i}", ["customers.created"])
            subscribe(b, good.url, ["customers.created"])
            a.ok("POST", f"{API}/customers", {"name": "Tarpit Co"}, status=201)
            assert tarpit.held.wait(30)
            time.sleep(2)  # both workers are in tenant A now
            t0 = time.time()
            b.ok("POST", f"{API}/customers", {"name": "Victim Co"}, status=201)
            arrived = wait_for(lambda: len(good.requests) >= 1, 30)
            tarpit.hold.clear()
            assert arrived, "another tenant's slow receivers held this tenant's delivery back " \
                            f"for over {time.time() - t0:.0f} s"
    finally:
        a.close()
        b.close()
