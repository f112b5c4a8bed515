"""Account recovery (issue 18) through the real binary, with mail caught by
an SMTP server on loopback (aiosmtpd, tests/http/smtp_sink.py): a reset by
e-mail that never skips TOTP, the abuse of reset links (reuse, expiry,
replacement, another tenant's, a changed password, enumeration, floods),
and admins' and the host's resets of a password or MFA, with what each
ends and mails."""

import email
import email.policy
import re
import statistics
import time

import pytest

import conftest
from psa import API, Client, admin_client, new_role, new_user, race, sign_in
from smtp_sink import SmtpSink
from test_identity import PASSWORD, make_tenant, sql_one, tenant_sql
from test_mfa import totp

RESET = f"{API}/auth/password-reset"
CONFIRM = f"{API}/auth/password-reset/confirm"
NEW_PASSWORD = "a brand new passphrase 2026"
LINK = re.compile(r"https://[^\s\"<>]+/reset-password#token=([A-Za-z0-9_-]{43})")


@pytest.fixture(scope="module")
def sink():
    s = SmtpSink()
    s.start()
    try:
        yield s
    finally:
        s.stop()


def mail_settings(sink, **more):
    return dict(login_rate_per_minute=100000, poll_ms=50, mail__smtp_host="127.0.0.1",
                mail__smtp_port=sink.port, mail__smtp_security="none",
                mail__from="bulwark@example.test", mail__test_retry_seconds=1, **more)


@pytest.fixture(scope="module")
def srv(tmp_path_factory, tls_cert, sink):
    with conftest._servers(tmp_path_factory, tls_cert) as make:
        yield make(**mail_settings(sink, recovery__per_address_hour=3,
                                   recovery__per_client_hour=1000)).start()


def mails_to(sink, addr, n=1, timeout=20):
    """The first n messages sink received for addr (parsed), waiting for them."""
    deadline = time.monotonic() + timeout
    while True:
        got = [m for m in sink.messages if addr.lower() in [r.lower() for r in m.rcpt_tos]]
        if len(got) >= n or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert len(got) >= n, (addr, [m.rcpt_tos for m in sink.messages])
    return [email.message_from_bytes(m.content, policy=email.policy.default) for m in got[:n]]


def texts(msg):
    plain = msg.get_body(preferencelist=("plain",))
    html = msg.get_body(preferencelist=("html",))
    return (plain.get_content() if plain else ""), (html.get_content() if html else "")


def ask(srv, slug, addr, source=None):
    c = Client(srv, slug, source=source)
    try:
        return c.post(RESET, {"email": addr})
    finally:
        c.close()


def confirm(srv, slug, token, password=NEW_PASSWORD):
    c = Client(srv, slug)
    try:
        return c.post(CONFIRM, {"token": token, "password": password})
    finally:
        c.close()


def login_status(srv, slug, addr, password):
    c = Client(srv, slug)
    try:
        r = c.post(f"{API}/auth/login", {"email": addr, "password": password})
        return r.status, r.body
    finally:
        c.close()


def link_for(srv, sink, slug, addr, nth=1):
    r = ask(srv, slug, addr)
    assert r.status == 202, r
    text, html = texts(mails_to(sink, addr, nth)[nth - 1])
    m = LINK.search(text)
    assert m, text
    assert m.group(0) in html  # the same link in the HTML part (nothing in it to escape)
    return m.group(1)


@pytest.fixture(scope="module")
def tenant(srv):
    t = make_tenant(srv, "rec")
    return t, admin_client(srv, t)


# --- the loop: a reset by mail, and TOTP still asked for ------------------------------

def test_reset_by_mail_still_needs_totp(srv, sink, tenant):
    t, admin = tenant
    uid, addr = new_user(admin, ["staff"])
    user = sign_in(srv, t.slug, addr)
    enrolled = user.post(f"{API}/auth/mfa/enrol", {"password": PASSWORD})
    assert enrolled.status == 200, enrolled
    secret = enrolled.body["secret"]
    assert user.post(f"{API}/auth/mfa/enrol/confirm", {"code": totp(secret)}).status == 200
    old = sign_in(srv, t.slug, addr)  # a session from before the reset (MFA pending)

    r = ask(srv, t.slug, addr)
    assert r.status == 202 and r.body == {
        "status": "if the address is a user's, a reset link is on its way"}, r
    msg = mails_to(sink, addr)[0]
    assert msg["To"] == addr and "bulwark@example.test" in msg["From"]
    assert msg["Subject"] == "Reset your Bulwark password"
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["Message-ID"] and msg["Date"]
    assert msg.get_content_type() == "multipart/alternative"
    text, html = texts(msg)
    token = LINK.search(text).group(1)
    assert f"https://{srv.tenant_host(t.slug)}/reset-password#token=" in text
    # Only its hash is kept, and the queued message is sealed: the token is nowhere in clear.
    assert sql_one(srv, t.slug, "SELECT COUNT(*) FROM password_resets") == "1"
    if srv.var.joinpath("tenants", f"{t.slug}.db").exists():
        assert token.encode() not in srv.var.joinpath("tenants", f"{t.slug}.db").read_bytes()

    r = confirm(srv, t.slug, token)
    assert r.status == 200 and r.body["password_changed"] is True, r
    assert login_status(srv, t.slug, addr, PASSWORD)[0] == 401
    status, body = login_status(srv, t.slug, addr, NEW_PASSWORD)
    assert status == 200 and body["mfa_required"] is True, body  # the reset skipped nothing
    assert old.get(f"{API}/me").status == 401 and user.get(f"{API}/me").status == 401
    changed = mails_to(sink, addr, 2)[1]
    assert changed["Subject"] == "Your Bulwark password was changed"
    # Once only.
    r = confirm(srv, t.slug, token, "yet another passphrase 99")
    assert r.status == 403 and r.body["error"]["code"] == "forbidden", r
    assert login_status(srv, t.slug, addr, NEW_PASSWORD)[0] == 200
    actions = [e["action"] for e in admin.ok("GET", f"{API}/reporting/audit?limit=100")["data"]
               if e.get("entity_id") == uid or e.get("entity") == "auth"]
    assert "password_reset" in actions and "password_reset_requested" in actions


# --- what a link is worth ---------------------------------------------------------------

def test_a_newer_link_replaces_an_older(srv, sink, tenant):
    t, admin = tenant
    _, addr = new_user(admin, ["staff"])
    first = link_for(srv, sink, t.slug, addr, 1)
    second = link_for(srv, sink, t.slug, addr, 2)
    assert first != second
    assert confirm(srv, t.slug, first).status == 403
    assert login_status(srv, t.slug, addr, PASSWORD)[0] == 200  # nothing changed
    assert confirm(srv, t.slug, second).status == 200


def test_an_expired_link_is_refused(srv, sink, tenant):
    t, admin = tenant
    uid, addr = new_user(admin, ["staff"])
    token = link_for(srv, sink, t.slug, addr)
    tenant_sql(srv, t.slug, f"UPDATE password_resets SET expires_at = {int(time.time()) - 1}"
                            f" WHERE user_id = {uid}")
    assert confirm(srv, t.slug, token).status == 403
    assert login_status(srv, t.slug, addr, PASSWORD)[0] == 200


def test_a_link_dies_when_the_password_changes(srv, sink, tenant):
    t, admin = tenant
    _, addr = new_user(admin, ["staff"])
    token = link_for(srv, sink, t.slug, addr)
    user = sign_in(srv, t.slug, addr)
    r = user.post(f"{API}/auth/password", {"current_password": PASSWORD,
                                           "new_password": "changed the usual way 1"})
    assert r.status == 200, r
    assert confirm(srv, t.slug, token).status == 403
    assert login_status(srv, t.slug, addr, "changed the usual way 1")[0] == 200


def test_a_link_of_another_tenant_is_refused(srv, sink, tenant):
    t, admin = tenant
    other = make_tenant(srv, "rec2")
    other_admin = admin_client(srv, other)
    _, addr = new_user(other_admin, ["staff"], local="same")
    _, mine = new_user(admin, ["staff"], local="same")
    token = link_for(srv, sink, other.slug, addr)
    assert confirm(srv, t.slug, token).status == 403
    assert login_status(srv, t.slug, mine, PASSWORD)[0] == 200
    assert confirm(srv, other.slug, token).status == 200


def test_bad_tokens_and_a_weak_password(srv, sink, tenant):
    t, admin = tenant
    _, addr = new_user(admin, ["staff"])
    token = link_for(srv, sink, t.slug, addr)
    for bad in ("", "x" * 43, token[:-1], token + "A", token[:-1] + "!"):
        r = confirm(srv, t.slug, bad)
        assert r.status in (400, 403), (bad, r)
    r = confirm(srv, t.slug, token, "short")
    assert r.status == 400, r
    r = confirm(srv, t.slug, token, addr)  # the policy refuses the address itself
    assert r.status == 400, r
    assert confirm(srv, t.slug, token).status == 200  # refusals left the link usable


def test_disabled_users_get_no_link(srv, sink, tenant):
    t, admin = tenant
    uid, addr = new_user(admin, ["staff"])
    assert admin.patch(f"{API}/users/{uid}", {"disabled": True}).status == 200
    before = len(sink.messages)
    assert ask(srv, t.slug, addr).status == 202
    time.sleep(1.5)
    assert not [m for m in sink.messages[before:] if addr in m.rcpt_tos]
    assert sql_one(srv, t.slug, f"SELECT COUNT(*) FROM password_resets WHERE user_id = {uid}") \
        == "0"


# --- enumeration and floods -------------------------------------------------------------

def test_unknown_and_known_addresses_look_alike(srv, sink, tenant):
    """The same reply, and times in one band: the median of 9 requests for an
    unknown address within 0.5x..2x that of 9 for a user's (interleaved), or
    within 10 ms of it (a request takes a few ms: below that is the noise of
    a busy machine, not a difference an attacker can count on)."""
    t, admin = tenant
    known = [new_user(admin, ["staff"])[1] for _ in range(9)]
    unknown = [f"nobody-{i}@{t.slug}.example.com" for i in range(9)]
    times = {"known": [], "unknown": []}
    replies = set()
    c = Client(srv, t.slug)
    try:
        for k, u in zip(known, unknown):
            for kind, addr in (("known", k), ("unknown", u)):
                start = time.perf_counter()
                r = c.post(RESET, {"email": addr})
                times[kind].append(time.perf_counter() - start)
                assert r.status == 202, r
                replies.add(repr(sorted(r.body.items())))
    finally:
        c.close()
    assert len(replies) == 1, replies
    mk, mu = statistics.median(times["known"]), statistics.median(times["unknown"])
    assert 0.5 * mk <= mu <= 2 * mk or abs(mu - mk) < 0.010, times
    mails_to(sink, known[-1])
    assert not [m for m in sink.messages if any(u in m.rcpt_tos for u in unknown)]


def test_requests_are_limited_per_address_known_or_not(srv, sink, tenant):
    t, admin = tenant
    _, addr = new_user(admin, ["staff"])
    nobody = f"nobody-flood@{t.slug}.example.com"
    for a in (addr, nobody):
        for _ in range(3):
            assert ask(srv, t.slug, a).status == 202
        r = ask(srv, t.slug, a)
        assert r.status == 429, r
        assert 0 < int(r.headers["retry-after"]) <= 3600, r.headers
    assert len(mails_to(sink, addr, 3)) == 3
    time.sleep(1)
    assert len([m for m in sink.messages if addr in m.rcpt_tos]) == 3  # not a fourth


def test_requests_are_limited_per_client(start_server, sink):
    srv = start_server(**mail_settings(sink, recovery__per_client_hour=4))
    t = make_tenant(srv, "recc")
    codes = [ask(srv, t.slug, f"n{i}@{t.slug}.example.com").status for i in range(5)]
    assert codes == [202, 202, 202, 202, 429], codes
    # Another client is not held up by the first.
    assert ask(srv, t.slug, f"m@{t.slug}.example.com", source="127.0.0.2").status == 202


# --- admins' resets ----------------------------------------------------------------------

def test_admin_resets_a_password(srv, sink, tenant):
    t, admin = tenant
    uid, addr = new_user(admin, ["staff"])
    user = sign_in(srv, t.slug, addr)
    path = f"{API}/users/{uid}/password/reset"
    assert admin.post(path, {}).status == 400
    assert admin.post(path, {"password": "not the admin's"}).status == 403
    assert login_status(srv, t.slug, addr, PASSWORD)[0] == 200  # nothing changed yet
    r = admin.post(path, {"password": t.password})
    assert r.status == 200 and r.body["must_change_password"] is True, r
    otp = r.body["one_time_password"]
    assert user.get(f"{API}/me").status == 401
    assert login_status(srv, t.slug, addr, PASSWORD)[0] == 401
    status, _ = login_status(srv, t.slug, addr, otp)
    assert status == 200
    fresh = sign_in_with(srv, t.slug, addr, otp)
    assert fresh.get(f"{API}/me").body["user"]["must_change_password"] is True
    assert fresh.get(f"{API}/auth/tokens").status == 403  # nothing but the change first
    notice = mails_to(sink, addr)[0]
    assert notice["Subject"] == "Your Bulwark password was reset"
    assert otp not in notice.as_string()  # the one-time password goes to the admin only
    rows = admin.ok("GET", f"{API}/reporting/audit?entity=users&action=password_reset_by_admin")
    assert [e["entity_id"] for e in rows["data"]] == [uid]


def sign_in_with(srv, slug, addr, password):
    r = Client(srv, slug).post(f"{API}/auth/login", {"email": addr, "password": password})
    assert r.status == 200, r
    cookie = [v for k, v in r.headers.items() if k == "set-cookie"][0]
    return Client(srv, slug, session=cookie.split(";")[0].split("=", 1)[1])


def test_no_reset_of_someone_who_holds_more(srv, tenant):
    """A user who may reset others (users.reset) but holds less than the
    admin cannot reset the admin, nor themselves through this route."""
    t, admin = tenant
    _, role = new_role(admin, ["users.reset", "users.view"])
    hid, helper = new_user(admin, [role])
    h = sign_in(srv, t.slug, helper)
    admin_id = admin.get(f"{API}/me").body["user"]["id"]
    before = sql_one(srv, t.slug, f"SELECT password_hash FROM users WHERE id = {admin_id}")
    for what in ("password", "mfa"):
        r = h.post(f"{API}/users/{admin_id}/{what}/reset", {"password": PASSWORD})
        assert r.status == 403, r
        r = h.post(f"{API}/users/{hid}/{what}/reset", {"password": PASSWORD})
        assert r.status == 409, r
    assert sql_one(srv, t.slug, f"SELECT password_hash FROM users WHERE id = {admin_id}") == before
    assert login_status(srv, t.slug, t.email, t.password)[0] == 200
    # Without the permission at all: 403 before anything else.
    sid, staff = new_user(admin, ["staff"])
    r = sign_in(srv, t.slug, staff).post(f"{API}/users/{hid}/password/reset", {"password": PASSWORD})
    assert r.status == 403, r


def test_admin_resets_mfa(srv, sink, tenant):
    t, admin = tenant
    uid, addr = new_user(admin, ["staff"])
    user = sign_in(srv, t.slug, addr)
    secret = user.post(f"{API}/auth/mfa/enrol", {"password": PASSWORD}).body["secret"]
    assert user.post(f"{API}/auth/mfa/enrol/confirm", {"code": totp(secret)}).status == 200
    path = f"{API}/users/{uid}/mfa/reset"
    r = admin.post(path, {"password": t.password})
    assert r.status == 200 and r.body == {"mfa_enabled": False}, r
    assert user.get(f"{API}/me").status == 401
    status, body = login_status(srv, t.slug, addr, PASSWORD)
    assert status == 200 and body["mfa_required"] is False, body
    assert sql_one(srv, t.slug, f"SELECT COUNT(*) FROM recovery_codes WHERE user_id = {uid}") \
        == "0"
    assert admin.post(path, {"password": t.password}).status == 409
    assert mails_to(sink, addr)[0]["Subject"] == \
        "Two-factor sign-in was turned off for your Bulwark account"


def test_from_the_host(srv, sink):
    """The last admin lost password and phone: the operator resets both."""
    t = make_tenant(srv, "rech")
    c = sign_in_with(srv, t.slug, t.email, t.password)
    secret = c.post(f"{API}/auth/mfa/enrol", {"password": t.password}).body["secret"]
    assert c.post(f"{API}/auth/mfa/enrol/confirm", {"code": totp(secret)}).status == 200
    out = srv.cli_ok("user", "reset-password", t.slug, t.email).stdout
    otp = re.search(r"one-time password (\S+)", out).group(1)
    status, body = login_status(srv, t.slug, t.email, otp)
    assert status == 200 and body["mfa_required"] is True, body
    out = srv.cli_ok("user", "reset-mfa", t.slug, t.email).stdout
    assert "MFA turned off" in out
    status, body = login_status(srv, t.slug, t.email, otp)
    assert status == 200 and body["mfa_required"] is False, body
    assert srv.cli("user", "reset-mfa", t.slug, t.email).returncode == 1  # off already
    assert srv.cli("user", "reset-password", t.slug, "nobody@example.com").returncode == 1
    subjects = [m["Subject"] for m in mails_to(sink, t.email, 2)]
    assert subjects == ["Your Bulwark password was reset",
                        "Two-factor sign-in was turned off for your Bulwark account"]
    rows = tenant_sql(srv, t.slug, "SELECT entity, action FROM audit_log WHERE action IN"
                                   " ('password_reset_by_admin', 'mfa_reset_by_admin')")
    assert len(rows) == 2


# --- the outbox --------------------------------------------------------------------------

def test_a_mail_server_that_says_try_later(srv, sink, tenant):
    t, admin = tenant
    _, addr = new_user(admin, ["staff"])
    sink.answer_next(1, "451 4.3.0 try again later")
    assert ask(srv, t.slug, addr).status == 202
    mails_to(sink, addr)
    rows = admin.ok("GET", f"{API}/mail/outbox?limit=10")["data"]
    row = [r for r in rows if r["to"] == addr][0]
    for _ in range(100):
        if row["state"] == "sent":
            break
        time.sleep(0.05)
        row = [r for r in admin.ok("GET", f"{API}/mail/outbox?limit=10")["data"]
               if r["to"] == addr][0]
    assert row["state"] == "sent" and row["attempts"] == 2, row
    assert row["kind"] == "password_reset" and row["message_id"].startswith("<"), row
    assert "text" not in row and "html" not in row


def test_each_change_writes_one_audit_row(srv, sink, tenant):
    t, admin = tenant
    uid, addr = new_user(admin, ["staff"])
    user = sign_in(srv, t.slug, addr)
    secret = user.post(f"{API}/auth/mfa/enrol", {"password": PASSWORD}).body["secret"]
    assert user.post(f"{API}/auth/mfa/enrol/confirm", {"code": totp(secret)}).status == 200

    def rows():
        return tenant_sql(srv, t.slug, "SELECT entity, entity_id, action FROM audit_log"
                                       " ORDER BY seq")

    def one(call, entity, action):
        before = rows()
        r = call()
        assert r.status in (200, 202), r
        new = rows()[len(before):]
        assert new == [(entity, str(uid), action)], new

    one(lambda: ask(srv, t.slug, addr), "auth", "password_reset_requested")
    token = LINK.search(texts(mails_to(sink, addr)[0])[0]).group(1)
    one(lambda: confirm(srv, t.slug, token), "users", "password_reset")
    one(lambda: admin.post(f"{API}/users/{uid}/password/reset", {"password": t.password}),
        "users", "password_reset_by_admin")
    one(lambda: admin.post(f"{API}/users/{uid}/mfa/reset", {"password": t.password}),
        "users", "mfa_reset_by_admin")
    # An address that is no one's leaves its row too (entity id 0), so it costs the same.
    before = rows()
    assert ask(srv, t.slug, f"ghost@{t.slug}.example.com").status == 202
    assert rows()[len(before):] == [("auth", "0", "password_reset_requested")]


def test_requests_at_once_do_not_beat_the_limit(srv, sink, tenant):
    """Eight requests for one address at the same moment: the limit (3) holds,
    and three links go out, not eight."""
    t, admin = tenant
    _, addr = new_user(admin, ["staff"])
    codes = sorted(r.status for r in race([lambda: ask(srv, t.slug, addr)] * 8))
    assert codes == [202] * 3 + [429] * 5, codes
    assert len(mails_to(sink, addr, 3)) == 3
    time.sleep(1)
    assert len([m for m in sink.messages if addr in m.rcpt_tos]) == 3


def test_the_host_server_sends_as_the_host(srv, sink, tenant):
    """A tenant on the host's server cannot send as an address of its choosing
    (another tenant's, the host's own domain): From is the host's, and the
    tenant's address is where replies go."""
    t, admin = tenant
    r = admin.request("PUT", f"{API}/settings/mail", body={"from": "ceo@other-tenant.example"})
    assert r.status == 200, r
    try:
        _, addr = new_user(admin, ["staff"])
        assert ask(srv, t.slug, addr).status == 202
        msg = mails_to(sink, addr)[0]
        assert msg["From"].addresses[0].addr_spec == "bulwark@example.test", msg["From"]
        assert msg["Reply-To"].addresses[0].addr_spec == "ceo@other-tenant.example"
        assert [m for m in sink.messages if addr in m.rcpt_tos][0].mail_from == \
            "bulwark@example.test"
    finally:
        assert admin.request("PUT", f"{API}/settings/mail", body={"from": None}).status == 200


def test_a_sent_mail_keeps_no_body(srv, sink, tenant):
    """Once sent, the outbox keeps what the log shows (to, subject), not the
    link: the sealed message shrinks to that."""
    t, admin = tenant
    uid, addr = new_user(admin, ["staff"])
    assert ask(srv, t.slug, addr).status == 202
    mails_to(sink, addr)
    for _ in range(100):
        rows = [r for r in admin.ok("GET", f"{API}/mail/outbox?limit=100")["data"]
                if r["to"] == addr]
        if rows and rows[0]["state"] == "sent":
            break
        time.sleep(0.05)
    assert rows[0]["subject"] == "Reset your Bulwark password", rows
    size = sql_one(srv, t.slug, f"SELECT length(message) FROM mail_outbox WHERE id = {rows[0]['id']}")
    assert int(size) < 300, size  # the whole message, link and HTML part, is well over a kilobyte


def test_reset_routes_are_held_to_the_sign_in_rate(start_server, sink):
    """Asking for links (for many addresses) and trying tokens cost what
    sign-ins cost: [auth] login_rate_per_minute per client."""
    settings = mail_settings(sink, recovery__per_client_hour=1000)
    settings["login_rate_per_minute"] = 3
    srv = start_server(**settings)
    t = make_tenant(srv, "recr")
    asks = [ask(srv, t.slug, f"n{i}@{t.slug}.example.com") for i in range(8)]
    assert [r.status for r in asks].count(429) >= 4, [r.status for r in asks]
    limited = [r for r in asks if r.status == 429][0]
    assert "from this address" in limited.body["error"]["message"], limited
    tries = [confirm(srv, t.slug, "A" * 43).status for _ in range(8)]
    assert tries.count(429) >= 4, tries
