"""E-mail to ticket (issue 18, inbound; docs/email.md), against a real IMAP
server (Dovecot, tests/http/imap_server.py) and a real SMTP server
(aiosmtpd, tests/http/smtp_sink.py), both started here: a customer's mail
becomes a ticket, the technician's answer reaches the customer by mail and
the customer's reply lands on the same ticket; attachments go through the
upload checks (EICAR refused and listed); auto-replies, bounces and
Bulwark's own mail never make tickets; a spoofed sender gets no more than
an unknown one; HTML is kept only as text; a message over the limit and a
malformed one are noted and the mailbox goes on; two app servers take
each message once."""

import base64
import email
import email.policy
import imaplib
import secrets
import time

import pytest

import conftest
import filegen as gen
from imap_server import ImapServer
from psa import API, admin_client, new_role, new_user, sign_in
from smtp_sink import SmtpSink
from test_identity import make_tenant, mariadb_only, tenant_sql, twin_of

MAILBOX = f"{API}/settings/mailbox"
MX = "mx.msp.example.test"
SUPPORT = "support@msp.example.test"
PER_SENDER = 6
MAX_BYTES = 16 * 1024 * 1024


@pytest.fixture(scope="module")
def imap(tls_cert):
    s = ImapServer(tls_cert)
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def sink():
    s = SmtpSink()
    s.start()
    try:
        yield s
    finally:
        s.stop()


def server_settings(tls_cert):
    return dict(login_rate_per_minute=100000, poll_ms=50, mail__ca_file=tls_cert.cert,
                mail__test_allow_loopback=1, mail__test_retry_seconds=1, mail__poll_seconds=1,
                mail__inbound_per_sender_hour=PER_SENDER, mail__inbound_max_bytes=MAX_BYTES)


@pytest.fixture(scope="module")
def srv(tmp_path_factory, tls_cert):
    with conftest._servers(tmp_path_factory, tls_cert) as make:
        yield make(**server_settings(tls_cert)).start()


class Desk:
    """A tenant with its mail on the sink, a customer with a contact, and
    the support mailbox on the IMAP server (one mailbox per Desk: a folder
    of its own)."""

    def __init__(self, srv, imap, sink, prefix, folder, servers=()):
        self.srv, self.imap, self.sink, self.folder = srv, imap, sink, folder
        self.t = make_tenant(srv, prefix, servers=servers)
        self.admin = admin_client(srv, self.t)
        c = imap.client()
        try:
            if folder != "INBOX":
                c.create(folder)
        finally:
            c.logout()
        r = self.admin.request("PUT", f"{API}/settings/mail", body={
            "from": SUPPORT, "smtp": {"host": "127.0.0.1", "port": sink.port,
                                      "security": "none"}})
        assert r.status == 200, r
        self.cust = self.admin.ok("POST", f"{API}/customers", {"name": "Acme"}, status=201)
        self.domain = f"acme-{secrets.token_hex(3)}.example.test"
        self.contact_addr = f"ana@{self.domain}"
        self.contact = self.admin.ok("POST", f"{API}/contacts",
                                     {"customer_id": self.cust["id"], "first_name": "Ana",
                                      "email": self.contact_addr}, status=201)
        self.unsorted = self.admin.ok("POST", f"{API}/customers", {"name": "Unsorted mail"},
                                      status=201)

    def configure(self, **over):
        body = {"enabled": True, "host": "127.0.0.1", "port": self.imap.port, "security": "tls",
                "username": self.imap.user, "password": self.imap.password,
                "mailbox": self.folder, "trusted_authserv_id": MX}
        body.update(over)
        r = self.admin.request("PUT", MAILBOX, body=body)
        assert r.status == 200, r
        return r.body

    def deliver(self, raw):
        self.imap.deliver(raw, folder=self.folder)
        self.admin.ok("POST", f"{MAILBOX}/poll", status=202)

    def log(self):
        return self.admin.ok("GET", f"{API}/mail/inbound?limit=100")["data"]

    def wait_log(self, n, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rows = self.log()
            if len(rows) >= n:
                return rows
            time.sleep(0.1)
        raise AssertionError(f"{len(self.log())} of {n} messages taken: "
                             f"{self.admin.ok('GET', MAILBOX)}")

    def tickets(self):
        return self.admin.ok("GET", f"{API}/tickets?limit=100")["data"]

    def comments(self, tid):
        return self.admin.ok("GET", f"{API}/ticket_comments?ticket_id={tid}&limit=100")["data"]

    def mails_to(self, addr, n, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            mine = [m for m in self.sink.messages if addr in m.rcpt_tos]
            if len(mine) >= n:
                return [email.message_from_bytes(m.content, policy=email.policy.default)
                        for m in mine]
            time.sleep(0.05)
        raise AssertionError(f"{addr}: {len(mine)} of {n} mails")

    def flagged(self):
        c = self.imap.client()
        try:
            c.select(self.folder)
            typ, data = c.uid("SEARCH", None, "KEYWORD", "$Bulwark")
            assert typ == "OK", data
            return len(data[0].split())
        finally:
            c.logout()

    def close(self):
        self.admin.close()


_folders = iter(range(1, 1000))


@pytest.fixture
def desk(srv, imap, sink):
    d = Desk(srv, imap, sink, "in", f"Support{next(_folders)}")
    d.configure()
    yield d
    d.close()


def auth_results(domain, dkim="pass", dmarc="pass", server=MX):
    return (f"Authentication-Results: {server}; dkim={dkim} header.d={domain}"
            f" header.s=s1; spf=pass smtp.mailfrom={domain}; dmarc={dmarc} header.from={domain}")


def message(frm, subject="The printer is on fire", body="Please help, it smokes.",
            msgid=None, headers=(), auth=None, content_type=None, extra_body=None):
    """A message as the receiving server would store it: its
    Authentication-Results on top (auth: None for the sender's domain
    passing, False for none)."""
    domain = frm.rsplit("@", 1)[1].rstrip(">")
    lines = []
    if auth is None:
        lines.append(auth_results(domain))
    elif auth:
        lines.append(auth)
    lines += [f"From: {frm}", f"To: {SUPPORT}", f"Subject: {subject}",
              f"Message-ID: {msgid or '<' + secrets.token_hex(8) + '@' + domain + '>'}",
              "Date: Thu, 03 Dec 2026 10:00:00 +0000", "MIME-Version: 1.0"]
    lines += list(headers)
    if content_type is None:
        lines += ["Content-Type: text/plain; charset=utf-8", "", body]
    else:
        lines += [f"Content-Type: {content_type}", "", extra_body]
    return "\r\n".join(lines).encode() + b"\r\n"


def multipart(frm, parts, subject="With attachments", text="See attached."):
    boundary = "b-" + secrets.token_hex(6)
    body = [f"--{boundary}", "Content-Type: text/plain; charset=utf-8", "", text]
    for name, data, ctype in parts:
        body += [f"--{boundary}", f"Content-Type: {ctype}",
                 f'Content-Disposition: attachment; filename="{name}"',
                 "Content-Transfer-Encoding: base64", "",
                 base64.encodebytes(data).decode().replace("\n", "\r\n")]
    body.append(f"--{boundary}--")
    return message(frm, subject=subject, content_type=f'multipart/mixed; boundary="{boundary}"',
                   extra_body="\r\n".join(body))


# --- the settings -----------------------------------------------------------------------

def test_settings_are_checked_sealed_and_held_to_everything(srv, imap, sink):
    d = Desk(srv, imap, sink, "inset", "INBOX")
    try:
        s = d.admin.ok("GET", MAILBOX)
        assert s["enabled"] is False and s["password_set"] is False, s
        assert s["unknown_senders"] == "refuse" and s["mailbox"] == "INBOX", s
        bad = [({"enabled": True}, "enabled"),
               ({"host": "imap.example.test", "security": "none"}, "security"),
               ({"host": "10.0.0.5"}, "host"),
               ({"host": "http://x"}, "host"),
               ({"mailbox": 'IN"BOX'}, "mailbox"),
               ({"unknown_senders": "create"}, "unknown_senders"),
               ({"unknown_customer_id": 987654}, "unknown_customer_id"),
               ({"trusted_authserv_id": "mx; dkim=pass"}, "trusted_authserv_id"),
               ({"port": 0}, "port"), ({"frobnicate": 1}, "frobnicate")]
        for body, field in bad:
            r = d.admin.request("PUT", MAILBOX, body=body)
            assert r.status == 400 and field in r.body["error"]["message"], (body, r)
        s = d.configure()
        assert s["password_set"] is True and "password" not in s, s
        db = srv.var / "tenants" / f"{d.t.slug}.db"
        if db.exists():
            assert imap.password.encode() not in db.read_bytes()
        # The password follows its server: a new host drops it.
        s = d.admin.ok("PUT", MAILBOX, {"enabled": False, "host": "localhost"})
        assert s["password_set"] is False, s
        # Only someone who could grant everything: a role with settings.edit may not.
        _, role = new_role(d.admin, ["settings.view", "settings.edit"])
        _, mgr = new_user(d.admin, [role])
        c = sign_in(srv, d.t.slug, mgr)
        before = d.admin.ok("GET", MAILBOX)
        r = c.request("PUT", MAILBOX, body={"trusted_authserv_id": "evil.example.test"})
        assert r.status == 403, r
        assert d.admin.ok("GET", MAILBOX) == before
        d.admin.ok("POST", f"{MAILBOX}/poll", status=202)
        # Reading the mailbox sooner changes nothing it trusts: settings.edit is enough.
        assert c.request("POST", f"{MAILBOX}/poll").status == 202
        assert c.request("POST", f"{MAILBOX}/poll", body={"now": True}).status == 400
        audit = d.admin.ok("GET", f"{API}/reporting/audit?entity=mailbox")["data"]
        assert [a["action"] for a in audit] == ["poll", "poll", "settings_update",
                                                "settings_update"], audit
        assert audit[2]["after"]["host"] == "localhost" and audit[3]["after"]["password_changed"]
        assert imap.password not in str(audit)
        c.close()
    finally:
        d.close()


# --- the round trip ------------------------------------------------------------------------

def test_mail_becomes_a_ticket_the_answer_goes_back_and_the_reply_is_a_comment(desk):
    tech_id, tech = new_user(desk.admin, ["staff"])
    first = message(f"Ana Example <{desk.contact_addr}>", subject="Printer <b>on</b> fire",
                    body="It smokes.\r\nPlease come.")
    desk.deliver(first)
    rows = desk.wait_log(1)
    assert rows[0]["outcome"] == "ticket" and rows[0]["verified"] is True, rows
    tickets = desk.tickets()
    assert len(tickets) == 1, tickets
    t = tickets[0]
    assert t["subject"] == "Printer <b>on</b> fire" and t["contact_id"] == desk.contact["id"]
    assert t["customer_id"] == desk.cust["id"] and "It smokes." in t["description"], t
    assert desk.flagged() == 1
    # The contact is told the ticket's number.
    opened = desk.mails_to(desk.contact_addr, 1)[0]
    assert opened["Subject"] == f"[#{t['id']}] Printer <b>on</b> fire", opened["Subject"]
    # The technician answers in Bulwark; the answer is mailed to the customer.
    desk.admin.ok("POST", f"{API}/tickets/{t['id']}/assign", {"assignee_id": tech_id})
    desk.admin.ok("POST", f"{API}/ticket_comments",
                  {"ticket_id": t["id"], "body": "Switch it off, we are on our way."}, status=201)
    answer = desk.mails_to(desk.contact_addr, 2)[1]
    assert "Switch it off" in answer.get_body(preferencelist=("plain",)).get_content()
    # The customer's reply to that mail (a new subject: threading by its ids).
    reply = message(desk.contact_addr, subject="Re: thanks", body="It is off now. Thanks!",
                    headers=[f"In-Reply-To: {answer['Message-ID']}",
                             f"References: {opened['Message-ID']} {answer['Message-ID']}"])
    sent_before = len(desk.sink.messages)
    desk.deliver(reply)
    rows = desk.wait_log(2)
    assert rows[0]["outcome"] == "comment" and rows[0]["ticket_id"] == t["id"], rows
    assert len(desk.tickets()) == 1
    comments = desk.comments(t["id"])
    mine = [c for c in comments if "It is off now" in c["body"]]
    assert len(mine) == 1 and mine[0]["internal"] is False, comments
    # The technician hears of it; the customer is not sent their own words back.
    told = desk.mails_to(tech, 2)
    assert any("answered" in m.get_body(preferencelist=("plain",)).get_content() for m in told)
    time.sleep(1.5)
    later = desk.sink.messages[sent_before:]
    assert not [m for m in later if desk.contact_addr in m.rcpt_tos], later
    assert desk.flagged() == 2


def test_a_ticket_number_in_the_subject_threads_too(desk):
    desk.deliver(message(desk.contact_addr, subject="Screen is black"))
    desk.wait_log(1)
    tid = desk.tickets()[0]["id"]
    desk.deliver(message(desk.contact_addr, subject=f"Re: [#{tid}] Screen is black",
                         body="Still black."))
    rows = desk.wait_log(2)
    assert rows[0]["outcome"] == "comment" and rows[0]["ticket_id"] == tid, rows
    # Another customer's ticket number is no way onto that ticket.
    other = desk.admin.ok("POST", f"{API}/customers", {"name": "Other"}, status=201)
    foreign = desk.admin.ok("POST", f"{API}/tickets",
                            {"customer_id": other["id"], "subject": "Theirs"}, status=201)
    desk.deliver(message(desk.contact_addr, subject=f"Re: [#{foreign['id']}] Theirs",
                         body="I write on their ticket."))
    rows = desk.wait_log(3)
    assert rows[0]["outcome"] == "ticket" and rows[0]["ticket_id"] != foreign["id"], rows
    assert desk.comments(foreign["id"]) == []


# --- attachments --------------------------------------------------------------------------

def test_attachments_are_checked_and_refusals_listed(desk):
    pdf = gen.pdf() if hasattr(gen, "pdf") else b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n"
    desk.deliver(multipart(desk.contact_addr, [("notes.txt", b"plain notes\n", "text/plain"),
                                               ("eicar.txt", gen.EICAR, "text/plain"),
                                               ("report.pdf", pdf, "application/pdf")]))
    rows = desk.wait_log(1)
    assert rows[0]["outcome"] == "ticket", rows
    tid = rows[0]["ticket_id"]
    # The attachments follow the ticket (each an upload of its own), the note of refusals last.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not [c for c in desk.comments(tid) if c["internal"]]:
        time.sleep(0.1)
    files = desk.admin.ok("GET", f"{API}/tickets/{tid}/files")["data"]
    names = sorted(f["name"] for f in files)
    assert "notes.txt" in names and "eicar.txt" not in names, (names, desk.comments(tid))
    notes = [c for c in desk.comments(tid) if c["internal"]]
    assert len(notes) == 1 and "eicar.txt" in notes[0]["body"], notes
    got = desk.admin.request("GET", f"{API}/tickets/{tid}/files/"
                             f"{[f for f in files if f['name'] == 'notes.txt'][0]['id']}/content")
    if got.status == 200:
        assert got.raw == b"plain notes\n"


# --- what never makes a ticket --------------------------------------------------------------

def test_auto_replies_bounces_and_own_mail_make_nothing(desk):
    sent_before = len(desk.sink.messages)
    a = desk.contact_addr
    report = ("--r1\r\nContent-Type: text/plain\r\n\r\nDelivery failed.\r\n--r1\r\n"
              "Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx\r\n\r\n"
              "Final-Recipient: rfc822; x@y\r\nAction: failed\r\nStatus: 5.0.0\r\n--r1--")
    for raw in (message(a, headers=["Auto-Submitted: auto-replied"], subject="Out of office"),
                message(a, headers=["Precedence: bulk"]),
                message(a, headers=["X-Autoreply: yes"]),
                message(f"MAILER-DAEMON@{desk.domain}", subject="Undelivered"),
                message(a, subject="Undelivered Mail", headers=["Return-Path: <>"]),
                message(a, content_type='multipart/report; report-type=delivery-status;'
                        ' boundary="r1"', extra_body=report),
                message(SUPPORT, auth=auth_results("msp.example.test"))):
        desk.deliver(raw)
    rows = desk.wait_log(7)
    assert [r["outcome"] for r in rows] == ["ignored"] * 7, rows
    assert desk.tickets() == []
    time.sleep(1)
    assert desk.sink.messages[sent_before:] == []
    assert desk.flagged() == 7


def test_a_flood_from_one_sender_is_cut_off(desk):
    for i in range(PER_SENDER + 2):
        desk.imap.deliver(message(desk.contact_addr, subject=f"Flood {i}"), folder=desk.folder)
    desk.admin.ok("POST", f"{MAILBOX}/poll", status=202)
    rows = desk.wait_log(PER_SENDER + 2)
    outcomes = [r["outcome"] for r in reversed(rows)]
    assert outcomes == ["ticket"] * PER_SENDER + ["ignored"] * 2, outcomes
    assert "in an hour" in rows[0]["reason"]
    assert len(desk.tickets()) == PER_SENDER


# --- who the sender is ----------------------------------------------------------------------

def test_a_spoofed_contact_gets_no_more_than_an_unknown_sender(desk):
    desk.deliver(message(desk.contact_addr, subject="Genuine"))
    desk.wait_log(1)
    tid = desk.tickets()[0]["id"]
    forged_below = auth_results(desk.domain)  # written by the sender, below the server's own
    spoofs = [
        message(desk.contact_addr, subject=f"Re: [#{tid}] Genuine",
                auth=auth_results(desk.domain, dkim="fail", dmarc="fail"),
                headers=[forged_below]),
        message(desk.contact_addr, subject=f"Re: [#{tid}] Genuine", auth=False),
        message(desk.contact_addr, subject=f"Re: [#{tid}] Genuine",
                auth=auth_results(desk.domain, server="mx.attacker.example.test")),
        message(desk.contact_addr, subject=f"Re: [#{tid}] Genuine",
                auth=f"Authentication-Results: {MX}; dkim=pass header.d=attacker.example.test;"
                     " dmarc=fail header.from=" + desk.domain),
        # A second From (the one a provider signed): DKIM passes, DMARC does not.
        message(desk.contact_addr, subject=f"Re: [#{tid}] Genuine",
                auth=auth_results(desk.domain, dkim="pass", dmarc="fail"),
                headers=[f"From: mallory@{desk.domain}"]),
        # Two From headers even with everything passing: whose message is it?
        message(desk.contact_addr, subject=f"Re: [#{tid}] Genuine",
                headers=[f"From: mallory@{desk.domain}"]),
        # Two mailboxes in one From.
        message(f"{desk.contact_addr}, mallory@{desk.domain}",
                subject=f"Re: [#{tid}] Genuine"),
    ]
    for raw in spoofs:
        desk.deliver(raw)
    rows = desk.wait_log(1 + len(spoofs))
    assert [r["outcome"] for r in rows[:len(spoofs)]] == ["refused"] * len(spoofs), rows
    assert all("not verified" in r["reason"] for r in rows[:len(spoofs)]), rows
    assert len(desk.tickets()) == 1 and desk.comments(tid) == []
    # With unknown senders let in: a ticket of the unsorted customer, no contact, no thread.
    desk.configure(unknown_senders="create", unknown_customer_id=desk.unsorted["id"])
    desk.deliver(message(desk.contact_addr, subject=f"Re: [#{tid}] Genuine", auth=False,
                         body="Pay the invoice to my new account."))
    rows = desk.wait_log(2 + len(spoofs))
    assert rows[0]["outcome"] == "ticket" and rows[0]["verified"] is False, rows
    new = [t for t in desk.tickets() if t["id"] == rows[0]["ticket_id"]][0]
    assert new["customer_id"] == desk.unsorted["id"] and new["contact_id"] is None, new
    assert "not verified" in new["description"], new
    assert desk.comments(tid) == []


def test_unknown_senders_follow_the_policy(desk):
    stranger = f"who@stranger-{secrets.token_hex(3)}.example.test"
    desk.deliver(message(stranger, subject="Hello?"))
    rows = desk.wait_log(1)
    assert rows[0]["outcome"] == "refused" and rows[0]["reason"] == "unknown sender", rows
    assert desk.tickets() == []
    desk.configure(unknown_senders="create", unknown_customer_id=desk.unsorted["id"])
    sent_before = len(desk.sink.messages)
    desk.deliver(message(f"Who Ever <{stranger}>", subject="Hello again?"))
    rows = desk.wait_log(2)
    assert rows[0]["outcome"] == "ticket", rows
    t = desk.tickets()[0]
    assert t["customer_id"] == desk.unsorted["id"] and t["contact_id"] is None
    assert stranger in t["description"] and "not a contact" in t["description"], t
    time.sleep(1)
    # Nothing is mailed to an address nobody vouched for.
    assert not [m for m in desk.sink.messages[sent_before:] if stranger in m.rcpt_tos]


# --- content --------------------------------------------------------------------------------

def test_html_is_kept_only_as_text(desk):
    html = ("<html><head><style>body{background:url(http://track.example.test/s)}</style>"
            "<script>alert('x')</script></head><body><p onclick=\"steal()\">Hello <b>team</b>"
            "</p><img src=\"http://track.example.test/pixel.gif\"><a href=\"javascript:evil()\">"
            "click</a><iframe src=\"http://evil.example.test\">inside</iframe></body></html>")
    desk.deliver(message(desk.contact_addr, subject="<script>alert(1)</script>",
                         content_type="text/html; charset=utf-8", extra_body=html))
    rows = desk.wait_log(1)
    assert rows[0]["outcome"] == "ticket", rows
    t = desk.tickets()[0]
    d = t["description"]
    assert "Hello" in d and "team" in d and "click" in d, d
    for bad in ("<", "alert", "steal", "track.example.test", "javascript", "inside",
                "background"):
        assert bad not in d, (bad, d)
    # The subject is kept as written: it is text, shown escaped like every field.
    assert t["subject"] == "<script>alert(1)</script>"


def test_a_large_and_a_malformed_message_are_noted_and_the_mailbox_goes_on(desk):
    big = multipart(desk.contact_addr, [("big.bin", secrets.token_bytes(15 * 1024 * 1024),
                                         "application/octet-stream")], subject="Huge")
    assert len(big) > 20 * 1024 * 1024
    desk.imap.deliver(big, folder=desk.folder)
    desk.imap.deliver(b"\x00\x01\x02 this is not a message \xff\xfe", folder=desk.folder)
    desk.imap.deliver(message(desk.contact_addr, content_type='multipart/mixed; boundary="x"',
                              extra_body="--y\r\nbroken\r\n--x\r\nContent-Type: text/plain"
                                         "\r\n\r\nA body in broken MIME\r\n"),
                      folder=desk.folder)
    desk.imap.deliver(b"Subject: no sender at all\r\n\r\nbody\r\n", folder=desk.folder)
    desk.deliver(message(desk.contact_addr, subject="After the bad ones"))
    rows = desk.wait_log(5, timeout=60)
    by_order = list(reversed(rows))
    assert by_order[0]["outcome"] == "refused" and "larger than the limit" in by_order[0]["reason"]
    assert by_order[0]["size"] == len(big) or by_order[0]["size"] > MAX_BYTES, by_order[0]
    assert by_order[1]["outcome"] == "refused", by_order[1]
    assert by_order[2]["outcome"] in ("ticket", "refused"), by_order[2]
    assert by_order[3]["outcome"] == "refused", by_order[3]
    assert by_order[4]["outcome"] == "ticket", by_order[4]
    assert any(t["subject"] == "After the bad ones" for t in desk.tickets())
    assert desk.flagged() == 5


def test_a_mailbox_that_cannot_be_read_says_why(desk):
    desk.configure(password="not the password")
    desk.admin.ok("POST", f"{MAILBOX}/poll", status=202)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        s = desk.admin.ok("GET", MAILBOX)
        if s["state"]["last_error"]:
            break
        time.sleep(0.1)
    assert s["state"]["last_error"], s
    assert "not the password" not in str(s)


# --- several app servers ------------------------------------------------------------------

@mariadb_only
def test_two_servers_take_each_message_once(srv, imap, sink, tmp_path):
    with twin_of(srv, tmp_path / "twin") as other:
        d = Desk(srv, imap, sink, "intwo", f"Twin{next(_folders)}", servers=(other,))
        try:
            n = 12
            for i in range(n):
                imap.deliver(message(f"c{i}@{d.domain}", subject=f"Twin {i}"), folder=d.folder)
            d.configure(unknown_senders="create", unknown_customer_id=d.unsorted["id"])
            rows = d.wait_log(n, timeout=60)
            time.sleep(2)
            rows = d.log()
            assert len(rows) == n and [r["outcome"] for r in rows] == ["ticket"] * n, rows
            subjects = sorted(t["subject"] for t in d.tickets())
            assert subjects == sorted(f"Twin {i}" for i in range(n)), subjects
            keys = tenant_sql(srv, d.t.slug, "SELECT msg_key FROM mail_inbound")
            assert len(keys) == len(set(keys)) == n
        finally:
            d.close()


def test_with_the_scanner_away_a_message_with_attachments_waits(tmp_path_factory, tls_cert, imap,
                                                                sink):
    """Attachments are scanned or not taken: while clamd is away the message
    stays in the mailbox, untaken and unflagged, and the mailbox says why; a
    message without attachments behind it is not held up."""
    with conftest._servers(tmp_path_factory, tls_cert) as make:
        blind = make(**server_settings(tls_cert),
                     clamd_socket=str(tmp_path_factory.mktemp("noclamd") / "none.sock"))
        blind.start()
        d = Desk(blind, imap, sink, "inwait", f"Wait{next(_folders)}")
        try:
            d.configure()
            d.imap.deliver(multipart(d.contact_addr, [("notes.txt", b"notes\n", "text/plain")]),
                           folder=d.folder)
            d.deliver(message(d.contact_addr, subject="No attachments"))
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                s = d.admin.ok("GET", MAILBOX)
                if s["state"]["last_error"]:
                    break
                time.sleep(0.1)
            assert "virus scanner" in (s["state"]["last_error"] or ""), s
            time.sleep(2)
            rows = d.log()
            assert [r["outcome"] for r in rows] == ["ticket"], rows
            assert [t["subject"] for t in d.tickets()] == ["No attachments"] and d.flagged() == 1
        finally:
            d.close()
