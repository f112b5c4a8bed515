"""Re-authentication (issue #12, findings 1, 6 and 7), as the attacks were
made: someone holding a user's session (or token), but not their password.

1. A locked account's password re-check must fail: five wrong passwords
   lock the account, and the sixth request, whatever it sends, gets 423 and
   changes nothing (password change, MFA disable, new recovery codes, MFA
   enrolment, a new API token). Nobody unlocks their own account through
   the API.
6. Starting MFA enrolment needs the password (a stolen session cannot bind
   the thief's authenticator), and is audited.
7. Minting an API token needs the password; a password change and disabling
   a user revoke the user's tokens; "end other sessions" does with
   {"tokens": true}; admins list and revoke any user's tokens (those of
   users they may manage).

Each test checks the tenant database, not only the status: the password
hash, the MFA secret and recovery code hashes, the token rows.
"""

import pytest

from conftest import _servers, check_error_body
from psa import Client, admin_client, new_role, new_user
from test_identity import (MANY, PASSWORD, TOKENS, add_user, call, check_forbidden, check_locked,
                           check_unauthorized, login, login_reply, make_tenant, me, mint,
                           sql_one, tenant_sql, user_id)
from test_mfa import totp

API = "/api/v1"
PW = f"{API}/auth/password"
ENROL = f"{API}/auth/mfa/enrol"
CONFIRM = f"{API}/auth/mfa/enrol/confirm"
DISABLE = f"{API}/auth/mfa/disable"
RECOVERY = f"{API}/auth/mfa/recovery-codes"
END_OTHERS = f"{API}/auth/sessions/end-others"
WRONG = "Not-The-Password-31-Kettle"
NEW = "Another-Lantern-58-Harbour"
THRESHOLD = 5  # [auth] lockout_threshold, default


@pytest.fixture(scope="module")
def srv(tmp_path_factory, tls_cert):
    with _servers(tmp_path_factory, tls_cert) as make:
        yield make(login_rate_per_minute=MANY).start()


# --- helpers -------------------------------------------------------------------------

def user_row(srv, slug, uid):
    """What a re-authenticated change would alter, as stored."""
    (row,) = tenant_sql(srv, slug,
                        "SELECT password_hash, mfa_enabled, HEX(mfa_secret), HEX(mfa_pending),"
                        f" must_change_password FROM users WHERE id = {int(uid)}")
    return row


def recovery_hashes(srv, slug, uid):
    return tenant_sql(srv, slug, "SELECT id, code_hash, used_at FROM recovery_codes"
                                 f" WHERE user_id = {int(uid)} ORDER BY id")


def token_rows(srv, slug, uid):
    return tenant_sql(srv, slug, "SELECT id, revoked_at FROM api_tokens"
                                 f" WHERE user_id = {int(uid)} ORDER BY id")


def live_tokens(srv, slug, uid):
    return int(sql_one(srv, slug, "SELECT COUNT(*) FROM api_tokens"
                                  f" WHERE user_id = {int(uid)} AND revoked_at = 0"))


def audit_count(srv, slug):
    return int(sql_one(srv, slug, "SELECT COUNT(*) FROM audit_log"))


def lock_with(srv, t, session, path, field, extra=None):
    """Lock t's account with THRESHOLD wrong passwords sent to path (each a
    403: the password is wrong) -> nothing; the account is then locked."""
    for i in range(THRESHOLD):
        r = call(srv, "POST", path, t.slug, session=session,
                 body={field: f"{WRONG}-{i}", **(extra or {})})
        check_forbidden(r)
        assert "password is wrong" in r.body["error"]["message"], r.body
    assert int(sql_one(srv, t.slug, f"SELECT locked_until FROM users WHERE email = '{t.email}'")) \
        > 0, "not locked after the threshold"


def enrol(srv, t, session):
    """Turn MFA on for t (password, then a first code) -> (secret, codes)."""
    r = call(srv, "POST", ENROL, t.slug, session=session, body={"password": t.password})
    assert r.status == 200, r
    secret = r.body["secret"]
    r = call(srv, "POST", CONFIRM, t.slug, session=session, body={"code": totp(secret)})
    assert r.status == 200 and r.body["mfa_enabled"] is True, r
    new = [c for c in r.cookies if c.startswith("__Host-bulwark_session=")]
    return secret, r.body["recovery_codes"], new[0].split(";")[0].split("=", 1)[1]


# --- 1. a locked account's re-check fails ------------------------------------------------

def test_locked_password_change_refused(srv):
    """Five wrong current passwords lock the account; the sixth change, even
    with the right one, is 423 with locked_until and changes nothing: the
    hash is the one it was, the other sessions and the tokens live."""
    t = make_tenant(srv, "rlpw")
    uid = user_id(srv, t)
    thief, other = login(srv, t), login(srv, t)
    tok = mint(srv, t, thief, ["self.view"])
    before = user_row(srv, t.slug, uid)
    lock_with(srv, t, thief, PW, "current_password", {"new_password": NEW})
    for cur in (WRONG, t.password):
        r = call(srv, "POST", PW, t.slug, session=thief,
                 body={"current_password": cur, "new_password": NEW})
        check_locked(r)
        assert r.body["error"]["message"] == "account locked after too many failed sign-ins", r
    assert user_row(srv, t.slug, uid) == before, "a locked account's password was changed"
    assert me(srv, t.slug, session=other).status == 200, "the refused change ended sessions"
    assert me(srv, t.slug, token=tok["token"]).status == 200
    srv.cli_ok("user", "unlock", t.slug, t.email)
    check_unauthorized(login_reply(srv, t, password=NEW))
    login(srv, t)  # the old password it still is


def test_locked_mfa_disable_refused(srv):
    """Locked through the MFA disable re-check: MFA stays on with the same
    secret and the same recovery codes."""
    t = make_tenant(srv, "rlmd")
    uid = user_id(srv, t)
    session = login(srv, t)
    secret, codes, session = enrol(srv, t, session)
    before, hashes = user_row(srv, t.slug, uid), recovery_hashes(srv, t.slug, uid)
    assert before[1] == "1" and len(hashes) == 10, (before, hashes)
    lock_with(srv, t, session, DISABLE, "password")
    for pw in (WRONG, t.password):
        r = call(srv, "POST", DISABLE, t.slug, session=session, body={"password": pw})
        check_locked(r)
    assert user_row(srv, t.slug, uid) == before, "MFA was turned off on a locked account"
    assert recovery_hashes(srv, t.slug, uid) == hashes
    assert me(srv, t.slug, session=session).status == 200


def test_locked_recovery_codes_refused(srv):
    """Locked through the recovery-code re-check: no new codes are shown or
    stored; the old ones stay as they were."""
    t = make_tenant(srv, "rlrc")
    uid = user_id(srv, t)
    session = login(srv, t)
    secret, codes, session = enrol(srv, t, session)
    before, hashes = user_row(srv, t.slug, uid), recovery_hashes(srv, t.slug, uid)
    lock_with(srv, t, session, RECOVERY, "password")
    for pw in (WRONG, t.password):
        r = call(srv, "POST", RECOVERY, t.slug, session=session, body={"password": pw})
        check_locked(r)
        assert "recovery_codes" not in r.body, r
    assert recovery_hashes(srv, t.slug, uid) == hashes, "recovery codes replaced while locked"
    assert user_row(srv, t.slug, uid) == before


def test_locked_enrol_and_mint_refused(srv):
    """The re-checks added for enrolment and token minting refuse a locked
    account too: no pending secret stored, no token row made."""
    t = make_tenant(srv, "rlen")
    uid = user_id(srv, t)
    session = login(srv, t)
    before, tokens = user_row(srv, t.slug, uid), token_rows(srv, t.slug, uid)
    lock_with(srv, t, session, TOKENS, "password", {"name": "x", "scopes": ["self.view"]})
    r = call(srv, "POST", TOKENS, t.slug, session=session,
             body={"name": "x", "scopes": ["self.view"], "password": t.password})
    check_locked(r)
    assert "token" not in r.body["error"], r
    check_locked(call(srv, "POST", ENROL, t.slug, session=session, body={"password": t.password}))
    assert token_rows(srv, t.slug, uid) == tokens, "a token was made for a locked account"
    assert user_row(srv, t.slug, uid) == before, "an enrolment started on a locked account"


def test_nobody_unlocks_themselves(srv):
    """The chain of the attack: lock, then unlock oneself for a fresh count.
    An admin's own unlock is 403 and leaves the lock; another admin or the
    operator unlocks."""
    t = make_tenant(srv, "rlsu")
    admin_id = user_id(srv, t)
    other = admin_client(srv, t)  # a "*" token of the same admin, made before the lock
    second_id, second_email = new_user(other, ["admin"])
    session = login(srv, t)
    lock_with(srv, t, session, PW, "current_password", {"new_password": NEW})
    locked = sql_one(srv, t.slug, f"SELECT locked_until FROM users WHERE id = {admin_id}")
    for how in ({"session": session}, {"token": other.token}):
        r = call(srv, "POST", f"{API}/users/{admin_id}/unlock", t.slug, **how)
        check_forbidden(r)
        assert "another admin" in r.body["error"]["message"] \
            and "bulwark user unlock" in r.body["error"]["message"], r.body
    assert sql_one(srv, t.slug, f"SELECT locked_until FROM users WHERE id = {admin_id}") == locked
    assert int(sql_one(srv, t.slug, f"SELECT failed_logins FROM users WHERE id = {admin_id}")) \
        >= THRESHOLD
    check_locked(call(srv, "POST", PW, t.slug, session=session,
                      body={"current_password": t.password, "new_password": NEW}))
    # Another admin may.
    second = login(srv, t, email=second_email)
    r = call(srv, "POST", f"{API}/users/{admin_id}/unlock", t.slug, session=second)
    assert r.status == 200 and r.body == {"unlocked": True}, r
    assert sql_one(srv, t.slug, f"SELECT locked_until FROM users WHERE id = {admin_id}") == "0"
    assert second_id != admin_id


def test_login_locked_reply_unchanged(srv):
    """The 423 of a sign-in keeps its shape (code, message, locked_until,
    request_id) now that it is an error reply with a detail."""
    t = make_tenant(srv, "rlli")
    for i in range(THRESHOLD):
        assert login_reply(srv, t, password=f"{WRONG}-{i}").status == 401
    r = login_reply(srv, t)
    check_locked(r)
    assert set(r.body["error"]) == {"code", "message", "locked_until", "request_id"}, r.body


# --- 6. MFA enrolment needs the password ------------------------------------------------

def test_stolen_session_cannot_enrol(srv):
    """A session alone (no password, or a wrong one) starts no enrolment:
    nothing pending is stored, MFA stays off, the victim's other sessions
    live. Wrong passwords count toward the lockout."""
    t = make_tenant(srv, "rsen")
    uid = user_id(srv, t)
    thief, victim = login(srv, t), login(srv, t)
    before = user_row(srv, t.slug, uid)
    audits = audit_count(srv, t.slug)
    check_error_body(call(srv, "POST", ENROL, t.slug, session=thief), 400, "invalid")
    check_error_body(call(srv, "POST", ENROL, t.slug, session=thief, body={}), 400, "invalid")
    r = call(srv, "POST", ENROL, t.slug, session=thief, body={"password": WRONG})
    check_forbidden(r)
    assert "secret" not in r.body and "otpauth_uri" not in r.raw.decode(), r
    assert user_row(srv, t.slug, uid) == before, "a pending secret was stored without the password"
    assert int(sql_one(srv, t.slug, f"SELECT failed_logins FROM users WHERE id = {uid}")) == 1
    # Without a pending secret, no code confirms anything.
    check_error_body(call(srv, "POST", CONFIRM, t.slug, session=thief, body={"code": "123456"}),
                     409, "conflict")
    assert user_row(srv, t.slug, uid) == before
    assert me(srv, t.slug, session=victim).status == 200
    # The only audit rows of all this are the failed re-check's.
    rows = tenant_sql(srv, t.slug, f"SELECT action FROM audit_log ORDER BY seq DESC LIMIT "
                                   f"{audit_count(srv, t.slug) - audits}")
    assert all(r[0] == "login_failure" for r in rows), rows


def test_enrol_start_audited_with_pending_secret(srv):
    """With the password, enrolment starts: the pending secret and one audit
    row (mfa_enrol_started) are stored together; confirming needs only the
    code of that secret."""
    t = make_tenant(srv, "rsea")
    uid = user_id(srv, t)
    session = login(srv, t)
    n = audit_count(srv, t.slug)
    r = call(srv, "POST", ENROL, t.slug, session=session, body={"password": t.password})
    assert r.status == 200 and r.body["secret"], r
    assert audit_count(srv, t.slug) == n + 1
    (row,) = tenant_sql(srv, t.slug, "SELECT entity, entity_id, action, user_id FROM audit_log"
                                     " ORDER BY seq DESC LIMIT 1")
    assert row == ("users", str(uid), "mfa_enrol_started", str(uid)), row
    assert int(sql_one(srv, t.slug, "SELECT COUNT(*) FROM users WHERE mfa_pending IS NOT NULL"
                                    f" AND mfa_enabled = 0 AND id = {uid}")) == 1
    r = call(srv, "POST", CONFIRM, t.slug, session=session, body={"code": totp(r.body["secret"])})
    assert r.status == 200 and len(r.body["recovery_codes"]) == 10, r


def test_required_mfa_user_enrols_with_password(srv):
    """A user the tenant requires to enrol has just signed in with their
    password; they send it again to enrol, and then reach everything."""
    t = make_tenant(srv, "rsrq")
    admin = login(srv, t)
    staff, staff_id = add_user(srv, t, "staff")
    r = call(srv, "PUT", f"{API}/settings/security", t.slug, session=admin,
             body={"mfa_required": True})
    assert r.status == 200, r
    s = login(srv, staff)
    check_forbidden(call(srv, "GET", TOKENS, t.slug, session=s))
    check_error_body(call(srv, "POST", ENROL, t.slug, session=s), 400, "invalid")
    r = call(srv, "POST", ENROL, t.slug, session=s, body={"password": staff.password})
    assert r.status == 200, r
    r = call(srv, "POST", CONFIRM, t.slug, session=s, body={"code": totp(r.body["secret"])})
    assert r.status == 200, r
    s = [c for c in r.cookies if c.startswith("__Host-bulwark_session=")][0]
    s = s.split(";")[0].split("=", 1)[1]
    assert call(srv, "GET", TOKENS, t.slug, session=s).status == 200


# --- 7. API tokens ---------------------------------------------------------------------------

def test_mint_needs_password(srv):
    """A session (or a token) alone mints nothing: no password 400, a wrong
    one 403 (counted), and no token row either way."""
    t = make_tenant(srv, "rtmp")
    uid = user_id(srv, t)
    session = login(srv, t)
    narrow = mint(srv, t, session, ["self.tokens"])
    rows = token_rows(srv, t.slug, uid)
    for how in ({"session": session}, {"token": narrow["token"]}):
        r = call(srv, "POST", TOKENS, t.slug, body={"name": "x", "scopes": ["self.tokens"]}, **how)
        check_error_body(r, 400, "invalid")
        assert "password" in r.body["error"]["message"], r.body
        r = call(srv, "POST", TOKENS, t.slug,
                 body={"name": "x", "scopes": ["self.tokens"], "password": WRONG}, **how)
        check_forbidden(r)
        assert "token" not in r.body, r
    assert token_rows(srv, t.slug, uid) == rows, "a token was minted without the password"
    assert int(sql_one(srv, t.slug, f"SELECT failed_logins FROM users WHERE id = {uid}")) == 2
    # The right password: made, and the count starts afresh.
    made = mint(srv, t, session, ["self.view"])
    assert me(srv, t.slug, token=made["token"]).status == 200
    assert int(sql_one(srv, t.slug, f"SELECT failed_logins FROM users WHERE id = {uid}")) == 0


def test_password_change_revokes_tokens(srv):
    """The victim changes the password: every token of theirs stops working
    at once (401), and the reply says how many were revoked."""
    t = make_tenant(srv, "rtpc")
    uid = user_id(srv, t)
    session = login(srv, t)
    stolen = [mint(srv, t, session, ["self.view"]), mint(srv, t, session, ["*"])]
    for tok in stolen:
        assert me(srv, t.slug, token=tok["token"]).status == 200
    r = call(srv, "POST", PW, t.slug, session=session,
             body={"current_password": t.password, "new_password": NEW})
    assert r.status == 200 and r.body == {"changed": True, "tokens_revoked": 2}, r
    for tok in stolen:
        check_unauthorized(me(srv, t.slug, token=tok["token"]))
    assert live_tokens(srv, t.slug, uid) == 0
    assert all(int(rv) > 0 for _, rv in token_rows(srv, t.slug, uid))
    assert me(srv, t.slug, session=session).status == 200  # the changer's session stays


def test_disable_revokes_tokens_for_good(srv):
    """An admin disables a user whose token was stolen, then enables them
    again: the token stays dead; the audit row counts the revoked tokens."""
    t = make_tenant(srv, "rtdi")
    admin = admin_client(srv, t)
    uid, email = new_user(admin, ["staff"])
    u = type(t)(t.slug, email, PASSWORD)
    s = login(srv, u)
    tok = mint(srv, u, s, ["customers.view"])
    assert call(srv, "GET", f"{API}/customers", t.slug, token=tok["token"]).status == 200
    admin.ok("PATCH", f"{API}/users/{uid}", {"disabled": True})
    check_unauthorized(me(srv, t.slug, token=tok["token"]))
    row = admin.ok("GET", f"{API}/reporting/audit?action=update&limit=1")["data"][0]
    assert row["entity_id"] == uid and row["after"] == {"disabled": True, "tokens_revoked": 1}, row
    admin.ok("PATCH", f"{API}/users/{uid}", {"disabled": False})
    check_unauthorized(me(srv, t.slug, token=tok["token"]))
    check_unauthorized(me(srv, t.slug, session=s))
    assert live_tokens(srv, t.slug, uid) == 0
    assert login(srv, u)  # the user themself is back


def test_end_others_revokes_tokens_when_asked(srv):
    """"End other sessions" leaves tokens alone by default (the reply says
    0); with {"tokens": true} it revokes them all but the one asking."""
    t = make_tenant(srv, "rteo")
    uid = user_id(srv, t)
    session = login(srv, t)
    a, b = mint(srv, t, session, ["self.view"]), mint(srv, t, session, ["self.session",
                                                                        "self.view"])
    r = call(srv, "POST", END_OTHERS, t.slug, session=session)
    assert r.status == 200 and r.body == {"ended": True, "tokens_revoked": 0}, r
    assert me(srv, t.slug, token=a["token"]).status == 200
    check_error_body(call(srv, "POST", END_OTHERS, t.slug, session=session,
                          body={"tokens": "yes"}), 400, "invalid")
    # Asked through token b: b stays, a goes, and so do the sessions.
    r = call(srv, "POST", END_OTHERS, t.slug, token=b["token"], body={"tokens": True})
    assert r.status == 200 and r.body == {"ended": True, "tokens_revoked": 1}, r
    check_unauthorized(me(srv, t.slug, token=a["token"]))
    check_unauthorized(me(srv, t.slug, session=session))
    assert me(srv, t.slug, token=b["token"]).status == 200
    session = login(srv, t)
    r = call(srv, "POST", END_OTHERS, t.slug, session=session, body={"tokens": True})
    assert r.status == 200 and r.body["tokens_revoked"] == 1, r
    check_unauthorized(me(srv, t.slug, token=b["token"]))
    assert live_tokens(srv, t.slug, uid) == 0


def test_admin_lists_and_revokes_user_tokens(srv):
    """An admin sees another user's tokens (never the secret) and revokes
    one (audited); someone with users.tokens but less than an admin holds
    cannot do either to an admin; a staff user cannot at all."""
    t = make_tenant(srv, "rtad")
    admin = admin_client(srv, t)
    admin_id = user_id(srv, t)
    uid, email = new_user(admin, ["staff"])
    u = type(t)(t.slug, email, PASSWORD)
    s = login(srv, u)
    tok, keep = mint(srv, u, s, ["self.view"]), mint(srv, u, s, ["self.view", "customers.view"])
    r = admin.get(f"{API}/users/{uid}/tokens")
    assert r.status == 200, r
    assert [e["id"] for e in r.body["data"]] == [tok["id"], keep["id"]], r
    assert tok["token"] not in r.raw.decode() and keep["token"] not in r.raw.decode()
    n = audit_count(srv, t.slug)
    r = admin.delete(f"{API}/users/{uid}/tokens/{tok['id']}")
    assert r.status == 200 and r.body == {"revoked": True}, r
    assert audit_count(srv, t.slug) == n + 1
    (row,) = tenant_sql(srv, t.slug, "SELECT entity, entity_id, action, user_id FROM audit_log"
                                     " ORDER BY seq DESC LIMIT 1")
    assert row == ("api_tokens", str(tok["id"]), "revoke", str(admin_id)), row
    check_unauthorized(me(srv, t.slug, token=tok["token"]))
    assert me(srv, t.slug, token=keep["token"]).status == 200
    # Gone, someone else's, nobody's: not found, and nothing changes.
    for path in (f"{API}/users/{uid}/tokens/{tok['id']}",
                 f"{API}/users/{admin_id}/tokens/{keep['id']}",
                 f"{API}/users/{uid}/tokens/999999", f"{API}/users/999999/tokens/{keep['id']}",
                 f"{API}/users/{uid}/tokens/x"):
        check_error_body(admin.delete(path), 404, "not_found")
    check_error_body(admin.get(f"{API}/users/999999/tokens"), 404, "not_found")
    assert me(srv, t.slug, token=keep["token"]).status == 200
    # A staff user: no users.tokens.
    check_forbidden(Client(srv, t.slug, session=s).get(f"{API}/users/{admin_id}/tokens"))
    # A token manager who is no admin manages staff, not the admin.
    _, role = new_role(admin, ["users.tokens", "users.view"])
    _, m_email = new_user(admin, [role])
    m = Client(srv, t.slug, session=login(srv, type(t)(t.slug, m_email, PASSWORD)))
    own = admin.ok("GET", f"{API}/users/{admin_id}/tokens")["data"]
    check_forbidden(m.get(f"{API}/users/{admin_id}/tokens"))
    r = m.delete(f"{API}/users/{admin_id}/tokens/{own[0]['id']}")
    check_forbidden(r)
    assert admin.get(f"{API}/me").status == 200
    check_forbidden(m.get(f"{API}/users/{uid}/tokens"))  # staff holds more than m, too
    assert me(srv, t.slug, token=keep["token"]).status == 200
    # A user without roles m may manage.
    pid, p_email = new_user(admin, [])
    p = type(t)(t.slug, p_email, PASSWORD)
    ptok = mint(srv, p, login(srv, p), ["self.view"])
    assert [e["id"] for e in m.ok("GET", f"{API}/users/{pid}/tokens")["data"]] == [ptok["id"]]
    assert m.delete(f"{API}/users/{pid}/tokens/{ptok['id']}").status == 200
    check_unauthorized(me(srv, t.slug, token=ptok["token"]))
