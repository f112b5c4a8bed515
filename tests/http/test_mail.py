"""A tenant's own mail server and DKIM key (issue 18, outbound), against an
SMTP server on loopback that offers STARTTLS and requires AUTH (aiosmtpd,
tests/http/smtp_sink.py): the signature checked by an independent
verifier (python3-dkim), the password never shown and never sent to
another server, the settings held to those who hold everything, a
tenant's server only at a public address, and user content escaped in the
HTML part."""

import email
import email.policy
import ssl
import time

import dkim
import pytest

import conftest
from psa import API, Client, admin_client, new_role, new_user, sign_in
from smtp_sink import SmtpSink
from test_identity import make_tenant, sql_one, tenant_sql

MAIL = f"{API}/settings/mail"
SMTP_USER, SMTP_PASSWORD = "bulwark-tenant", "s3cret smtp passphrase"


@pytest.fixture(scope="module")
def sink(tls_cert):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(tls_cert.cert, tls_cert.key)
    s = SmtpSink(tls_context=ctx, require_starttls=True, auth=(SMTP_USER, SMTP_PASSWORD))
    s.start()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def srv(tmp_path_factory, tls_cert):
    with conftest._servers(tmp_path_factory, tls_cert) as make:
        yield make(login_rate_per_minute=100000, poll_ms=50, mail__ca_file=tls_cert.cert,
                   mail__test_allow_loopback=1, mail__test_retry_seconds=1).start()


@pytest.fixture(scope="module")
def tenant(srv):
    t = make_tenant(srv, "mail")
    return t, admin_client(srv, t)


def outbox(admin, mail_id, states=("sent", "failed"), timeout=20):
    deadline = time.monotonic() + timeout
    while True:
        rows = [r for r in admin.ok("GET", f"{API}/mail/outbox?limit=100")["data"]
                if r["id"] == mail_id]
        if rows and rows[0]["state"] in states or time.monotonic() > deadline:
            return rows[0] if rows else None
        time.sleep(0.05)


def own_server(sink, **over):
    body = {"from": "support@msp.example.test", "from_name": "MSP Support",
            "smtp": {"host": "127.0.0.1", "port": sink.port, "security": "starttls",
                     "username": SMTP_USER, "password": SMTP_PASSWORD},
            "dkim": {"domain": "msp.example.test", "selector": "bw1"}}
    body.update(over)
    return body


def test_defaults_are_the_hosts_server(tenant):
    _, admin = tenant
    s = admin.ok("GET", MAIL)
    assert s["smtp"] is None and s["dkim"] is None and s["from"] is None, s
    assert "host_server" in s


def test_own_server_starttls_auth_and_dkim(srv, sink, tenant):
    t, admin = tenant
    r = admin.request("PUT", MAIL, body=own_server(sink))
    assert r.status == 200, r
    s = r.body
    assert s["smtp"]["password_set"] is True and "password" not in s["smtp"], s
    assert s["dkim"]["dns_name"] == "bw1._domainkey.msp.example.test"
    txt = s["dkim"]["dns_txt"]
    assert txt.startswith("v=DKIM1; k=rsa; p="), txt
    # Sealed: neither the password nor the key is in the database file.
    db = srv.var / "tenants" / f"{t.slug}.db"
    if db.exists():
        raw = db.read_bytes()
        assert SMTP_PASSWORD.encode() not in raw and b"PRIVATE KEY" not in raw

    before = len(sink.messages)
    r = admin.post(f"{MAIL}/test", {"to": "someone@customer.example.test"})
    assert r.status == 202, r
    row = outbox(admin, r.body["mail_id"])
    assert row["state"] == "sent", row
    msg = sink.messages[before]
    assert msg.mail_from == "support@msp.example.test"
    assert msg.rcpt_tos == ["someone@customer.example.test"]
    assert ("LOGIN", True) in sink.logins or ("PLAIN", True) in sink.logins, sink.logins
    # An independent verifier, given the published record.
    record = txt.encode()

    def dns(name, timeout=5):
        assert name == b"bw1._domainkey.msp.example.test.", name
        return record

    assert dkim.verify(msg.content, dnsfunc=dns), msg.content[:400]
    tampered = msg.content.replace(b"If it reached you", b"If it reached me")
    assert tampered != msg.content and not dkim.verify(tampered, dnsfunc=dns)
    parsed = email.message_from_bytes(msg.content, policy=email.policy.default)
    assert parsed["From"].addresses[0].display_name == "MSP Support"
    assert parsed["Message-ID"] == row["message_id"]
    # A new key on request: a new record to publish.
    r = admin.request("PUT", MAIL, body={"dkim": {"domain": "msp.example.test",
                                                  "selector": "bw2", "new_key": True}})
    assert r.status == 200 and r.body["dkim"]["dns_txt"] != txt, r


def test_the_password_follows_its_server(srv, sink, tenant):
    """Changing the host without a password drops the stored one: it is never
    sent to a server it was not given for."""
    t, admin = tenant
    assert admin.request("PUT", MAIL, body=own_server(sink)).status == 200
    r = admin.request("PUT", MAIL, body={"smtp": {"host": "mail.elsewhere.example",
                                                  "username": SMTP_USER}})
    assert r.status == 200 and r.body["smtp"]["password_set"] is False, r
    assert sql_one(srv, t.slug, "SELECT COUNT(*) FROM mail_settings WHERE smtp_password IS NULL") \
        == "1"
    # Nor to the same server on another port, or with other protection.
    for change in ({"port": sink.port + 1}, {"security": "tls"}):
        body = own_server(sink)
        assert admin.request("PUT", MAIL, body=body).status == 200
        smtp = {k: v for k, v in body["smtp"].items() if k != "password"}
        smtp.update(change)
        r = admin.request("PUT", MAIL, body={"smtp": smtp})
        assert r.status == 200 and r.body["smtp"]["password_set"] is False, (change, r)
    # Back, without the password: the server refuses (no AUTH), the mail fails for good.
    r = admin.request("PUT", MAIL, body={"smtp": {"host": "127.0.0.1", "port": sink.port,
                                                  "username": SMTP_USER}})
    assert r.status == 200, r
    mid = admin.post(f"{MAIL}/test", {"to": "x@customer.example.test"}).body["mail_id"]
    row = outbox(admin, mid)
    assert row["state"] == "failed" and row["last_reply"], str(row)
    assert SMTP_PASSWORD not in str(row)


def test_wrong_password_fails_without_retrying(sink, tenant):
    _, admin = tenant
    body = own_server(sink)
    body["smtp"]["password"] = "not it"
    assert admin.request("PUT", MAIL, body=body).status == 200
    mid = admin.post(f"{MAIL}/test", {"to": "x@customer.example.test"}).body["mail_id"]
    row = outbox(admin, mid)
    assert row["state"] == "failed" and row["attempts"] == 1, str(row)
    assert "not it" not in str(row)


def test_settings_are_checked(tenant):
    _, admin = tenant
    bad = [{"from": "not an address"}, {"smtp": {"host": "https://mail.example"}},
           {"smtp": {"host": "mail.example", "port": 0}},
           {"smtp": {"host": "mail.example", "security": "ssl3"}},
           {"smtp": {"host": "mail.example", "security": "none"}},
           {"smtp": {"host": "10.0.0.5"}}, {"smtp": {"host": "169.254.169.254"}},
           {"dkim": {"domain": "example", "selector": "s"}},
           {"dkim": {"domain": "example.test", "selector": "Bad_Selector"}},
           {"from_name": "a\r\nBcc: x@example.test"}, {"nonsense": 1}]
    before = admin.ok("GET", MAIL)
    for b in bad:
        r = admin.request("PUT", MAIL, body=b)
        assert r.status == 400, (b, r)
    assert admin.ok("GET", MAIL) == before


def test_a_tenants_server_only_at_a_public_address(start_server, sink, tls_cert):
    """Without the test switch, a server that resolves to this host is never
    connected to: not at PUT (a literal), not at send time (a name)."""
    srv = start_server(poll_ms=50, mail__ca_file=tls_cert.cert, mail__test_retry_seconds=1)
    t = make_tenant(srv, "mailp")
    admin = admin_client(srv, t)
    r = admin.request("PUT", MAIL, body=own_server(sink))
    assert r.status == 400, r  # 127.0.0.1 is this host's own
    body = own_server(sink)
    body["smtp"]["host"] = "localhost"  # a name that resolves to it
    assert admin.request("PUT", MAIL, body=body).status == 200
    before = len(sink.messages)
    mid = admin.post(f"{MAIL}/test", {"to": "x@customer.example.test"}).body["mail_id"]
    row = outbox(admin, mid, states=("queued",), timeout=5)
    time.sleep(2)
    row = outbox(admin, mid, states=("queued", "failed"))
    assert row["state"] in ("queued", "failed") and row["attempts"] >= 1, row
    assert len(sink.messages) == before


def test_settings_need_every_permission(srv, tenant):
    t, admin = tenant
    _, role = new_role(admin, ["settings.view", "settings.edit"])
    _, addr = new_user(admin, [role])
    eve = sign_in(srv, t.slug, addr)
    before = admin.ok("GET", MAIL)
    r = eve.request("PUT", MAIL, body={"smtp": {"host": "mail.attacker.example"}})
    assert r.status == 403 and "every permission" in r.body["error"]["message"], r
    assert admin.ok("GET", MAIL) == before


def test_user_content_is_escaped_in_html(srv, tenant):
    """An address with a quote in it, in a notice's HTML part: escaped."""
    t, admin = tenant
    assert admin.request("PUT", MAIL, body={"smtp": None, "dkim": None}).status == 200
    sink = SmtpSink()
    sink.start()
    try:
        # This server's host default is none: point the tenant at a plain sink on loopback.
        assert admin.request("PUT", MAIL, body={"smtp": {"host": "127.0.0.1", "port": sink.port,
                                                         "security": "none"}}).status == 200
        uid, addr = new_user(admin, ["staff"], local="o'neil&co")
        r = Client(srv, t.slug).post(f"{API}/auth/password-reset", {"email": addr})
        assert r.status == 202, r
        m = sink.wait_for(1)[0]
        parsed = email.message_from_bytes(m.content, policy=email.policy.default)
        html = parsed.get_body(preferencelist=("html",)).get_content()
        assert "o&#39;neil&amp;co" in html and "o'neil&co" not in html, html
        assert rows_of(srv, t.slug, uid)
    finally:
        sink.stop()


def rows_of(srv, slug, uid):
    return tenant_sql(srv, slug, f"SELECT id FROM mail_outbox WHERE user_id = {uid}")


def test_each_change_writes_one_audit_row(srv, sink, tenant):
    t, admin = tenant

    def rows():
        return tenant_sql(srv, t.slug, "SELECT entity, entity_id, action FROM audit_log"
                                       " ORDER BY seq")

    before = rows()
    assert admin.request("PUT", MAIL, body={"from_name": "Desk"}).status == 200
    assert rows()[len(before):] == [("mail", "1", "settings_update")]
    before = rows()
    mid = admin.post(f"{MAIL}/test", {"to": "x@customer.example.test"}).body["mail_id"]
    assert rows()[len(before):] == [("mail", str(mid), "test")]
    # The row names what changed, never the password.
    assert admin.request("PUT", MAIL, body=own_server(sink)).status == 200
    logged = admin.ok("GET", f"{API}/reporting/audit?entity=mail&action=settings_update")
    assert logged["data"] and SMTP_PASSWORD not in str(logged), logged
    assert "password_changed" in str(logged["data"][0]), logged["data"][0]


def test_ticket_notices(srv, tenant):
    """A new ticket tells its contact, an assignment tells the technician, an
    answer the contact may see tells the contact (an internal note does
    not); what the user typed is escaped in the HTML part."""
    t, admin = tenant
    plain = SmtpSink()
    plain.start()
    try:
        assert admin.request("PUT", MAIL, body={"smtp": {"host": "127.0.0.1", "port": plain.port,
                                                         "security": "none"},
                                                "dkim": None}).status == 200
        tech_id, tech = new_user(admin, ["staff"])
        cust = admin.ok("POST", f"{API}/customers", {"name": "Acme"}, status=201)
        contact = admin.ok("POST", f"{API}/contacts",
                           {"customer_id": cust["id"], "first_name": "Zoë",
                            "email": "zoe@acme.example.test"}, status=201)
        ticket = admin.ok("POST", f"{API}/tickets",
                          {"customer_id": cust["id"], "contact_id": contact["id"],
                           "subject": "Printer <on> fire & smoke"}, status=201)
        tid = ticket["id"]

        def got(addr, n, timeout=20):
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                mine = [m for m in plain.messages if addr in m.rcpt_tos]
                if len(mine) >= n:
                    return [email.message_from_bytes(m.content, policy=email.policy.default)
                            for m in mine]
                time.sleep(0.05)
            raise AssertionError(f"{addr}: {len(mine)} of {n}")

        opened = got("zoe@acme.example.test", 1)[0]
        assert opened["Subject"] == f"[#{tid}] Printer <on> fire & smoke"
        html = opened.get_body(preferencelist=("html",)).get_content()
        assert "Printer &lt;on&gt; fire &amp; smoke" in html and "<on>" not in html, html
        r = admin.post(f"{API}/tickets/{tid}/assign", {"assignee_id": tech_id})
        assert r.status == 200, r
        assigned = got(tech, 1)[0]
        assert assigned["Subject"] == f"[#{tid}] Printer <on> fire & smoke"
        assert admin.post(f"{API}/ticket_comments", {"ticket_id": tid, "body": "internal only",
                                                     "internal": True}).status == 201
        assert admin.post(f"{API}/ticket_comments", {"ticket_id": tid,
                                                     "body": "We sent a <b>technician</b>."
                                                     }).status == 201
        answers = got("zoe@acme.example.test", 2)
        text = answers[1].get_body(preferencelist=("plain",)).get_content()
        assert "We sent a <b>technician</b>." in text
        assert "&lt;b&gt;technician&lt;/b&gt;" in \
            answers[1].get_body(preferencelist=("html",)).get_content()
        time.sleep(1.5)  # the internal note, had it been sent, would be here by now
        everything = b"".join(m.content for m in plain.messages)
        assert b"internal only" not in everything
        assert len([m for m in plain.messages if "zoe@acme.example.test" in m.rcpt_tos]) == 2
    finally:
        plain.stop()


def test_a_sent_invoice_and_estimate_are_mailed_to_the_customer(srv, tenant):
    """Sending an invoice or an estimate mails it to the customer's address
    with its lines and totals; what the user typed is escaped in the HTML
    part; a customer without an address gets nothing and the send still
    succeeds."""
    t, admin = tenant
    plain = SmtpSink()
    plain.start()
    try:
        assert admin.request("PUT", MAIL, body={"smtp": {"host": "127.0.0.1", "port": plain.port,
                                                         "security": "none"},
                                                "dkim": None}).status == 200
        cust = admin.ok("POST", f"{API}/customers",
                        {"name": "Billing <Co>", "email": "ap@billing.example.test"}, status=201)
        inv = admin.ok("POST", f"{API}/invoices",
                       {"customer_id": cust["id"], "number": "INV-7", "issued_on": "2026-12-01",
                        "due_on": "2026-12-31", "tax_rate_bp": 1000}, status=201)
        admin.ok("POST", f"{API}/invoice_lines",
                 {"invoice_id": inv["id"], "description": "Support <b>hours</b>", "quantity": 3,
                  "unit_price_cents": 12550}, status=201)
        assert admin.post(f"{API}/invoices/{inv['id']}/send").status == 200
        est = admin.ok("POST", f"{API}/estimates",
                       {"customer_id": cust["id"], "number": "EST-2"}, status=201)
        admin.ok("POST", f"{API}/estimate_lines",
                 {"estimate_id": est["id"], "description": "New firewall", "quantity": 1,
                  "unit_price_cents": 99900}, status=201)
        assert admin.post(f"{API}/estimates/{est['id']}/send").status == 200
        silent = admin.ok("POST", f"{API}/customers", {"name": "No address"}, status=201)
        inv2 = admin.ok("POST", f"{API}/invoices", {"customer_id": silent["id"]}, status=201)
        admin.ok("POST", f"{API}/invoice_lines",
                 {"invoice_id": inv2["id"], "description": "x", "quantity": 1,
                  "unit_price_cents": 100}, status=201)
        assert admin.post(f"{API}/invoices/{inv2['id']}/send").status == 200

        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            mine = [m for m in plain.messages if "ap@billing.example.test" in m.rcpt_tos]
            if len(mine) >= 2:
                break
            time.sleep(0.05)
        got = [email.message_from_bytes(m.content, policy=email.policy.default) for m in mine]
        assert sorted(g["Subject"] for g in got) == ["Estimate EST-2", "Invoice INV-7"], got
        invoice = [g for g in got if g["Subject"] == "Invoice INV-7"][0]
        text = invoice.get_body(preferencelist=("plain",)).get_content()
        assert "Support <b>hours</b>: 3 x 125.50 = 376.50" in text, text
        assert "Total: 414.15" in text and "due on 2026-12-31" in text, text
        html = invoice.get_body(preferencelist=("html",)).get_content()
        assert "Support &lt;b&gt;hours&lt;/b&gt;" in html and "<b>hours" not in html, html
        assert "Billing &lt;Co&gt;" in html, html
        time.sleep(1)
        assert all(m.rcpt_tos == ["ap@billing.example.test"] for m in plain.messages), \
            [m.rcpt_tos for m in plain.messages]
        kinds = [r["kind"] for r in admin.ok("GET", f"{API}/mail/outbox?limit=100")["data"]]
        assert kinds.count("invoice_sent") == 1 and kinds.count("estimate_sent") == 1, kinds
    finally:
        plain.stop()


def test_a_sign_in_from_a_new_address_is_told_to_who_asked(srv, tenant):
    """Off by default; once a user turns it on, the first sign-in from an
    address mails them, the next from the same address does not; the choice
    is their own and audited."""
    t, admin = tenant
    plain = SmtpSink()
    plain.start()
    try:
        assert admin.request("PUT", MAIL, body={"smtp": {"host": "127.0.0.1", "port": plain.port,
                                                         "security": "none"},
                                                "dkim": None}).status == 200
        _, quiet = new_user(admin, ["staff"])
        uid, watchful = new_user(admin, ["staff"])
        c = sign_in(srv, t.slug, quiet)
        assert c.ok("GET", f"{API}/auth/sessions/notice") == {"new_signin": False}
        c.close()
        c = sign_in(srv, t.slug, watchful)
        assert c.request("PUT", f"{API}/auth/sessions/notice",
                         body={"new_signin": "yes"}).status == 400
        assert c.ok("PUT", f"{API}/auth/sessions/notice", {"new_signin": True}) == \
            {"new_signin": True}
        c.close()
        # Its earlier sign-in came from this address: no mail for the next one.
        sign_in(srv, t.slug, watchful).close()
        tenant_sql(srv, t.slug, f"DELETE FROM auth_events WHERE user_id = {uid}")
        # Now the address is new to it.
        sign_in(srv, t.slug, watchful).close()
        sign_in(srv, t.slug, watchful).close()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not plain.messages:
            time.sleep(0.05)
        time.sleep(1)
        got = [m for m in plain.messages if watchful in m.rcpt_tos]
        assert len(got) == 1, [m.rcpt_tos for m in plain.messages]
        text = email.message_from_bytes(got[0].content, policy=email.policy.default) \
            .get_body(preferencelist=("plain",)).get_content()
        assert "127.0.0.1" in text and "password" in text, text
        assert not [m for m in plain.messages if quiet in m.rcpt_tos]
        audit = admin.ok("GET", f"{API}/reporting/audit?entity=users&action=signin_notice")["data"]
        assert len(audit) == 1 and audit[0]["entity_id"] == uid, audit
    finally:
        plain.stop()
