"""Re-authenticated writes racing the change they depend on (issue #12,
finding 7 follow-up).

A re-authenticated write checks the password (slow: argon2id) outside any
transaction; its own transaction then re-reads, under the user's row lock,
what the check saw (api_reauth_begin): the password hash, the MFA state,
that the user is enabled and that the caller's session or token is still
there. The changes that end credentials take the same lock first. So the
two take turns, and once such a change has committed nothing written by a
request that raced it survives it.

The races cannot be paused from outside, so each test runs its writer back
to back on a few threads (a bounded number of times), makes the change
once in the middle, and then checks the invariant in the database and over
HTTP. The reviewer's test for a password change is in
test_review_attacks.py; these cover the other changes and an MFA write.
"""

import secrets
import threading
import time

import pytest

from psa import admin_client, new_user
from test_identity import (MANY, PASSWORD, TOKENS, call, check_unauthorized, login, make_tenant,
                           me, mint, sql_one, user_id)
from test_reauth import DISABLE, END_OTHERS, NEW, PW, RECOVERY, enrol, live_tokens

API = "/api/v1"
ROUNDS = 150     # most requests each writer thread makes
WRITERS = 2      # threads writing back to back
SETTLE = 1.0     # seconds of writing before the change, and after it


def race(write, change, after_first=None):
    """Run write() back to back on WRITERS threads while change() runs once,
    SETTLE seconds in -> (the replies of write, the reply of change). With
    after_first (a status), change() waits too until one write has answered
    with it (at most a minute): a write slower than SETTLE (ten argon2id
    hashes under the sanitizers) still races the change. A writer stops at
    ROUNDS, SETTLE seconds after the change, or when write returns 401 (its
    session is gone)."""
    stop = threading.Event()
    replies, lock = [], threading.Lock()
    first = threading.Event()

    def loop():
        for _ in range(ROUNDS):
            if stop.is_set():
                return
            r = write()
            with lock:
                replies.append(r)
            if after_first is not None and r.status == after_first:
                first.set()
            if r.status == 401:
                return

    threads = [threading.Thread(target=loop) for _ in range(WRITERS)]
    for th in threads:
        th.start()
    time.sleep(SETTLE)
    if after_first is not None:
        first.wait(timeout=60)
    done = change()
    time.sleep(SETTLE)
    stop.set()
    for th in threads:
        th.join(timeout=120)
        assert not th.is_alive(), "a writer hung"
    return replies, done


def check_refusals(replies, allowed):
    """Every reply is a success or one of the refusals a race may cause."""
    bad = [r for r in replies if r.status not in allowed]
    assert not bad, bad[:3]


def mint_as(srv, account, session=None, token=None):
    return lambda: call(srv, "POST", TOKENS, account.slug, session=session, token=token,
                        body={"name": f"r-{secrets.token_hex(3)}", "scopes": ["self.view"],
                              "password": account.password})


@pytest.mark.parametrize("caller", ["the changing session", "a token"])
def test_mint_racing_password_change_leaves_no_token(start_server, caller):
    """Tokens are minted back to back with the old password by a caller the
    password change does not end by deleting its row: the very session that
    changes the password (it stays signed in), or an API token (revoked by
    the change, like every token). Afterwards no token of the user works. A
    mint's own session or token row proves nothing here: only the user's
    row lock, taken by the mint and by the change, orders the two, so a
    mint that read the old hash either committed first (and was revoked) or
    is refused (409)."""
    srv = start_server(login_rate_per_minute=MANY, lockout_threshold=1000)
    t = make_tenant(srv, "rrpw")
    uid = user_id(srv, t)
    owner = login(srv, t)
    if caller == "a token":
        write = mint_as(srv, t, token=mint(srv, t, owner, ["self.tokens", "self.view"])["token"])
    else:
        write = mint_as(srv, t, session=owner)
    replies, done = race(write, lambda: call(srv, "POST", PW, t.slug, session=owner,
                                             body={"current_password": t.password,
                                                   "new_password": NEW}))
    assert done.status == 200, done
    check_refusals(replies, {201, 401, 403, 409, 503})
    minted = [r.body["token"] for r in replies if r.status == 201]
    assert minted, "no token was minted before the change: the race never ran"
    alive = [tok for tok in minted if me(srv, t.slug, token=tok).status == 200]
    assert not alive, f"{len(alive)} token(s) minted with the old password outlive its change"
    assert live_tokens(srv, t.slug, uid) == 0


def test_mint_racing_end_of_sessions_leaves_no_token(start_server):
    """The thief (a session and the password) mints tokens back to back;
    the owner ends the other sessions with {"tokens": true}. Afterwards the
    thief's session is gone and none of the tokens it minted works: a mint
    that committed first was revoked, a later one found its session gone
    (401) or waited and then found it gone."""
    srv = start_server(login_rate_per_minute=MANY, lockout_threshold=1000)
    t = make_tenant(srv, "rrend")
    uid = user_id(srv, t)
    thief, owner = login(srv, t), login(srv, t)
    replies, done = race(mint_as(srv, t, thief),
                         lambda: call(srv, "POST", END_OTHERS, t.slug, session=owner,
                                      body={"tokens": True}))
    assert done.status == 200, done
    check_refusals(replies, {201, 401, 503})
    minted = [r.body["token"] for r in replies if r.status == 201]
    assert minted, "no token was minted before the change: the race never ran"
    check_unauthorized(me(srv, t.slug, session=thief))
    alive = [tok for tok in minted if me(srv, t.slug, token=tok).status == 200]
    assert not alive, f"{len(alive)} token(s) outlive the end of the session that minted them"
    assert live_tokens(srv, t.slug, uid) == 0
    assert me(srv, t.slug, session=owner).status == 200


def test_mint_racing_disable_leaves_no_token(start_server):
    """A staff user's session (and password) mints tokens back to back while
    an admin disables the user; the admin enables them again. None of the
    minted tokens works: disabling revokes for good, and a mint that raced
    it was either revoked by it or found the user disabled."""
    srv = start_server(login_rate_per_minute=MANY, lockout_threshold=1000)
    t = make_tenant(srv, "rrdis")
    admin = admin_client(srv, t)
    uid, email = new_user(admin, ["staff"])
    u = type(t)(t.slug, email, PASSWORD)
    s = login(srv, u)
    replies, done = race(mint_as(srv, u, s),
                         lambda: admin.patch(f"{API}/users/{uid}", {"disabled": True}))
    assert done.status == 200, done
    check_refusals(replies, {201, 401, 503})
    minted = [r.body["token"] for r in replies if r.status == 201]
    assert minted, "no token was minted before the change: the race never ran"
    admin.ok("PATCH", f"{API}/users/{uid}", {"disabled": False})
    alive = [tok for tok in minted if me(srv, t.slug, token=tok).status == 200]
    assert not alive, f"{len(alive)} token(s) minted around the disable outlive it"
    assert live_tokens(srv, t.slug, uid) == 0
    check_unauthorized(me(srv, t.slug, session=s))


def test_recovery_codes_racing_mfa_disable_leave_none(start_server):
    """New recovery codes are asked for back to back (each is the password
    check and then ten argon2id hashes, all before the write) while MFA is
    turned off from another session. Afterwards MFA is off and the user has
    no recovery codes: a regeneration that committed first had its codes
    deleted by the disable; one that checked the password while MFA was on
    and wrote after the disable is refused (409), and every later one is
    refused because MFA is off (409) or its session was ended (401)."""
    srv = start_server(login_rate_per_minute=MANY, lockout_threshold=1000)
    t = make_tenant(srv, "rrrec")
    uid = user_id(srv, t)
    secret, codes, owner = enrol(srv, t, login(srv, t))
    # A second, fully signed-in session (a recovery code for its MFA step).
    other = login(srv, t)
    r = call(srv, "POST", f"{API}/auth/mfa", t.slug, session=other, body={"code": codes[0]})
    assert r.status == 200, r
    other = [c for c in r.cookies if c.startswith("__Host-bulwark_session=")][0] \
        .split(";")[0].split("=", 1)[1]
    replies, done = race(lambda: call(srv, "POST", RECOVERY, t.slug, session=other,
                                      body={"password": t.password}),
                         lambda: call(srv, "POST", DISABLE, t.slug, session=owner,
                                      body={"password": t.password}),
                         after_first=200)
    assert done.status == 200 and done.body == {"mfa_enabled": False}, done
    check_refusals(replies, {200, 401, 409, 503})
    assert any(r.status == 200 for r in replies), \
        f"no codes were made before the change: {sorted(set((r.status, str(r.body)[:80]) for r in replies))}"
    assert sql_one(srv, t.slug, f"SELECT mfa_enabled FROM users WHERE id = {uid}") == "0"
    left = int(sql_one(srv, t.slug, f"SELECT COUNT(*) FROM recovery_codes WHERE user_id = {uid}"))
    assert left == 0, f"{left} recovery code(s) of a regeneration outlive MFA being turned off"


def test_sign_in_racing_password_change_leaves_no_session(start_server):
    """Sign-ins with the old password run back to back while the owner
    changes it. The password is checked outside any transaction, so a
    sign-in that checked it just before the change could create its session
    just after, when the change had already ended every other session. Now
    the session is made under the user's row lock, re-reading the hash: once
    the change has committed, only the changing session is left."""
    from test_identity import login_reply, session_from
    srv = start_server(login_rate_per_minute=MANY, lockout_threshold=1000)
    t = make_tenant(srv, "rrsin")
    uid = user_id(srv, t)
    owner = login(srv, t)

    def sign_in():
        return login_reply(srv, t)

    replies, done = race(sign_in, lambda: call(srv, "POST", PW, t.slug, session=owner,
                                               body={"current_password": t.password,
                                                     "new_password": NEW}))
    assert done.status == 200, done
    check_refusals(replies, {200, 401, 503})
    made = [session_from(r) for r in replies if r.status == 200]
    assert made, "no sign-in succeeded before the change: the race never ran"
    alive = [s for s in made if me(srv, t.slug, session=s).status == 200]
    assert not alive, f"{len(alive)} session(s) signed in with the old password outlive its change"
    assert sql_one(srv, t.slug, f"SELECT COUNT(*) FROM sessions WHERE user_id = {uid}") == "1"
    assert me(srv, t.slug, session=owner).status == 200
