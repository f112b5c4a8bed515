"""Identity: sign-in, lockout, sessions, CSRF, password change, API tokens,
the sign-in rate limit and what is (never) stored in plain text.

Tenants are made with `bulwark tenant create --admin-password-file`, so the
admin's password is known. Further users (there is no API for them yet) are
inserted with SQL behind bulwark's back, with the admin's password hash
copied: they share the admin's password. Times (expiry, lockout) are moved
with SQL too, never waited for.

Every server here but the rate-limit one allows 100000 sign-ins a minute
per address ([auth] login_rate_per_minute), so that the tests' own sign-ins
are never refused.
"""

import collections
import contextlib
import copy
import datetime
import hashlib
import json
import re
import secrets
import sqlite3
import statistics
import threading
import types
import time

import pytest

from conftest import (DRIVER, Server, check_error_body, mariadb_dump, mariadb_root, unique_slug,
                      wait_for)

COOKIE = "__Host-bulwark_session"
PASSWORD = "Correct-Stapler-47-Orbit"
ABSOLUTE_HOURS = 8      # [auth] session_absolute_hours, default
IDLE_MINUTES = 30       # [auth] session_idle_minutes, default
LOCKOUT_MINUTES = 30    # [auth] lockout_minutes, default
MANY = 100000           # login_rate_per_minute that never refuses the tests' sign-ins
CHANGE_TIMEOUT = 5.0    # for a new tenant to reach a server (registry_refresh_ms is 100)
SAME = object()         # "the request's own origin" for Origin

LOGIN = "/api/v1/auth/login"
LOGOUT = "/api/v1/auth/logout"
ME = "/api/v1/me"
PASSWORD_PATH = "/api/v1/auth/password"
END_OTHERS = "/api/v1/auth/sessions/end-others"
TOKENS = "/api/v1/auth/tokens"

mariadb_only = pytest.mark.skipif(DRIVER != "mariadb", reason="MariaDB driver only")


Reply = collections.namedtuple("Reply", "status headers body cookies raw")
# A user who can sign in: its tenant, e-mail address and password.
Account = collections.namedtuple("Account", "slug email password")


# --- helpers ----------------------------------------------------------------------

def host_of(srv, slug):
    return srv.tenant_host(slug)


def origin_of(srv, slug):
    return f"https://{host_of(srv, slug)}"


def call(srv, method, path, slug, *, session=None, token=None, origin=SAME, referer=None,
         body=None, source=None, conn=None, headers=None):
    """One request to tenant slug -> Reply(status, lower-cased headers, JSON
    body or bytes, every Set-Cookie value, raw body).

    session: a session cookie value (sent as the Cookie header); token: an API
    token (Bearer). origin: SAME sends the request's own origin on a state
    change that carries a cookie (what a browser would); None sends none; a
    string is sent as it is. body: a dict is sent as JSON."""
    h = {"Host": host_of(srv, slug)}
    if session is not None:
        h["Cookie"] = f"{COOKIE}={session}"
    if token is not None:
        h["Authorization"] = f"Bearer {token}"
    if origin is SAME:
        origin = origin_of(srv, slug) if session is not None and method != "GET" else None
    if origin is not None:
        h["Origin"] = origin
    if referer is not None:
        h["Referer"] = referer
    if isinstance(body, dict):
        body = json.dumps(body).encode()
        h["Content-Type"] = "application/json"
    h.update(headers or {})
    own = conn is None
    if own:
        conn = srv.connection(source)
    try:
        conn.request(method, path, body=body, headers=h)
        resp = conn.getresponse()
        raw = resp.read()
        pairs = resp.getheaders()
    finally:
        if own:
            conn.close()
    hdrs = {k.lower(): v for k, v in pairs}
    cookies = [v for k, v in pairs if k.lower() == "set-cookie"]
    parsed = raw
    if raw and hdrs.get("content-type", "").startswith("application/json"):
        parsed = json.loads(raw)
    return Reply(resp.status, hdrs, parsed, cookies, raw)


def parse_cookie(header):
    """A Set-Cookie value -> (name, value, {attribute name lower-cased: value or True})."""
    first, *rest = [p.strip() for p in header.split(";")]
    name, _, value = first.partition("=")
    attrs = {}
    for part in rest:
        k, eq, v = part.partition("=")
        assert k.lower() not in attrs, f"attribute {k} twice: {header!r}"
        attrs[k.lower()] = v if eq else True
    return name, value, attrs


def session_from(reply):
    """The session secret a successful sign-in sets."""
    assert reply.status == 200, reply
    assert len(reply.cookies) == 1, reply.cookies
    name, value, _ = parse_cookie(reply.cookies[0])
    assert name == COOKIE, reply.cookies
    return value


def login_reply(srv, t, password=None, email=None, **kw):
    return call(srv, "POST", LOGIN, t.slug,
                body={"email": email or t.email, "password": password or t.password}, **kw)


def login(srv, t, password=None, email=None, **kw):
    """Sign in (must succeed) -> the session cookie value."""
    return session_from(login_reply(srv, t, password, email, **kw))


def me(srv, slug, **kw):
    return call(srv, "GET", ME, slug, **kw)


def check_unauthorized(reply):
    check_error_body(reply, 401, "unauthorized")


def check_forbidden(reply):
    check_error_body(reply, 403, "forbidden")


def wait_tenant(srv, slug, timeout=CHANGE_TIMEOUT):
    """Until srv knows the new tenant (its health route stops answering 404)."""
    ok = wait_for(lambda: call(srv, "GET", "/api/v1/tenant/health", slug).status != 404,
                  timeout)
    assert ok, f"tenant {slug} unknown to the server on port {srv.port} after {timeout}s"


def make_tenant(srv, prefix="id", password=PASSWORD, servers=()):
    """A new tenant, known to srv (and servers) -> its admin's Account."""
    slug = unique_slug(prefix)
    email = f"admin@{slug}.example.com"
    pwfile = srv.dir / f"{slug}.pw"  # outside var/: never part of what is scanned
    pwfile.write_text(password + "\n")
    pwfile.chmod(0o600)
    srv.cli_ok("tenant", "create", slug, "--admin-email", email, "--admin-password-file", pwfile)
    for s in (srv, *servers):
        wait_tenant(s, slug)
    return Account(slug, email, password)


def tenant_sql(srv, slug, sql):
    """Run sql in the tenant's database behind bulwark's back -> rows of strings."""
    if DRIVER == "mariadb":
        return mariadb_root(f"USE `saas_tenant_{slug}`; {sql}")
    path = srv.var / "tenants" / f"{slug}.db"
    assert path.exists(), path
    with contextlib.closing(sqlite3.connect(path, timeout=10)) as db, db:
        return [tuple(map(str, row)) for row in db.execute(sql)]


def sql_one(srv, slug, sql):
    rows = tenant_sql(srv, slug, sql)
    assert len(rows) == 1 and len(rows[0]) == 1, (sql, rows)
    return rows[0][0]


def user_id(srv, t, email=None):
    return int(sql_one(srv, t.slug, f"SELECT id FROM users WHERE email = '{email or t.email}'"))


def add_user(srv, t, local, is_admin=False):
    """A further user (admin or not) of t's tenant, with t's password ->
    (its Account, its id)."""
    email = f"{local}@{t.slug}.example.com"
    tenant_sql(srv, t.slug,
               "INSERT INTO users (email, email_norm, password_hash, must_change_password,"
               f" is_admin, created_at, updated_at) SELECT '{email}', '{email.lower()}',"
               f" password_hash, 0, {int(is_admin)}, created_at, updated_at FROM users"
               f" WHERE email = '{t.email}'")
    u = Account(t.slug, email, t.password)
    return u, user_id(srv, u)


def failed_logins(srv, u):
    return int(sql_one(srv, u.slug, f"SELECT failed_logins FROM users WHERE email = '{u.email}'"))


def secret_hash(secret):
    """How bulwark stores a session or token secret: SHA-256, lower-case hex."""
    return hashlib.sha256(secret.encode()).hexdigest()


def session_rows(srv, slug, secret):
    return int(sql_one(srv, slug, "SELECT COUNT(*) FROM sessions WHERE token_hash = "
                                  f"'{secret_hash(secret)}'"))


def check_locked(reply):
    """423 with a locked_until in the future, about lockout_minutes away."""
    assert reply.status == 423, reply
    err = reply.body["error"]
    assert err["code"] == "locked" and err["request_id"] == reply.headers["x-request-id"], err
    until = datetime.datetime.strptime(err["locked_until"], "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()
    now = time.time()
    assert now < until <= now + LOCKOUT_MINUTES * 60 + 5, (err, now)


def unix(ts):
    """An RFC 3339 UTC time as the API shows it ("2026-12-02T03:31:18Z") -> Unix seconds."""
    return int(datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ")
               .replace(tzinfo=datetime.timezone.utc).timestamp())


def rfc3339(t):
    """Unix seconds -> RFC 3339 UTC, as the API shows times."""
    return datetime.datetime.fromtimestamp(int(t), datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


def mint(srv, t, session, scopes, expect=201, **extra):
    """Create an API token (with t's password, which minting needs) -> the
    reply body (with the token) when expect is 201."""
    r = call(srv, "POST", TOKENS, t.slug, session=session,
             body={"name": f"t-{secrets.token_hex(3)}", "scopes": scopes,
                   "password": t.password, **extra})
    assert r.status == expect, r
    return r.body


@pytest.fixture
def srv(start_server):
    """A server that never refuses the tests' sign-ins, default [auth] otherwise."""
    return start_server(login_rate_per_minute=MANY)


# --- 1. sign-in, the cookie, sign-out ------------------------------------------------

def test_login_cookie_me_and_logout(srv):
    t = make_tenant(srv, "login")
    r = login_reply(srv, t)
    assert r.status == 200, r
    assert r.body["mfa_required"] is False, r.body
    user = r.body["user"]
    assert (user["email"], user["is_admin"]) == (t.email, True), user
    assert r.headers.get("cache-control") == "no-store", r.headers

    assert len(r.cookies) == 1, r.cookies
    name, secret, attrs = parse_cookie(r.cookies[0])
    assert name == COOKIE
    # 256 random bits, base64url: at least 43 characters, nothing to escape.
    assert re.fullmatch(r"[A-Za-z0-9_-]{43,}", secret), secret
    # The __Host- prefix demands Secure, Path=/ and no Domain.
    assert attrs == {"path": "/", "secure": True, "httponly": True, "samesite": "Lax",
                     "max-age": str(ABSOLUTE_HOURS * 3600)}, r.cookies[0]
    assert secret not in r.raw.decode(), "the session secret is in the body"

    m = me(srv, t.slug, session=secret)
    assert m.status == 200, m
    assert m.body["user"] == user and m.body["tenant"] == t.slug and m.body["auth"] == "session"
    assert session_rows(srv, t.slug, secret) == 1

    check_unauthorized(me(srv, t.slug))
    check_unauthorized(me(srv, t.slug, session=secrets.token_urlsafe(32)))

    out = call(srv, "POST", LOGOUT, t.slug, session=secret)
    assert out.status == 200 and out.body == {"signed_out": True}, out
    assert len(out.cookies) == 1, out.cookies
    name, value, attrs = parse_cookie(out.cookies[0])
    assert (name, value) == (COOKIE, ""), out.cookies
    assert attrs.get("max-age") == "0" or "expires" in attrs, out.cookies
    assert attrs.get("secure") is True and attrs.get("path") == "/" and "domain" not in attrs

    check_unauthorized(me(srv, t.slug, session=secret))
    assert session_rows(srv, t.slug, secret) == 0, "the session outlived the logout"


def test_sign_in_again_and_unlock_unlocked(srv):
    """A user who never typed a wrong password signs in again and again; the
    operator's unlock of a user who is not locked is a harmless success."""
    t = make_tenant(srv, "again")
    assert failed_logins(srv, t) == 0
    sessions = {login(srv, t) for _ in range(3)}
    assert len(sessions) == 3
    proc = srv.cli("user", "unlock", t.slug, t.email)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# --- 2. unknown user and wrong password look alike -------------------------------------

def test_unknown_user_like_wrong_password(start_server):
    """Same status and body (apart from request_id), and about the same time.

    Bound: the median of 5 unknown-user sign-ins is at least 0.5x and at most
    2x the median of 5 wrong-password ones (interleaved, on one kept-alive
    connection, after one warm-up of each). Both paths are meant to run one
    argon2id verification (m=19 MiB, t=2: about 15 ms here), which
    dominates; the wrong-password path adds a few small SQL writes. A server
    that skipped the hash for unknown users would answer them in about a
    millisecond, far below 0.5x."""
    srv = start_server(login_rate_per_minute=MANY, lockout_threshold=1000)
    t = make_tenant(srv, "timing")
    unknown = {"email": f"nobody@{t.slug}.example.com", "password": "Wrong-Password-1234"}
    wrong = {"email": t.email, "password": "Wrong-Password-1234"}
    ru = call(srv, "POST", LOGIN, t.slug, body=unknown)
    rw = call(srv, "POST", LOGIN, t.slug, body=wrong)
    for r in (ru, rw):
        check_unauthorized(r)
        assert r.cookies == [], r
    strip = lambda b: {**b["error"], "request_id": None}  # noqa: E731
    assert strip(ru.body) == strip(rw.body), (ru.body, rw.body)
    assert set(ru.headers) == set(rw.headers), (ru.headers, rw.headers)

    times = {"unknown": [], "wrong": []}
    conn = srv.connection()
    try:
        for _ in range(5):
            for kind, body in (("unknown", unknown), ("wrong", wrong)):
                start = time.monotonic()
                r = call(srv, "POST", LOGIN, t.slug, body=body, conn=conn)
                times[kind].append(time.monotonic() - start)
                check_unauthorized(r)
    finally:
        conn.close()
    mu, mw = statistics.median(times["unknown"]), statistics.median(times["wrong"])
    assert 0.5 * mw <= mu <= 2 * mw, f"unknown user {mu * 1e3:.1f} ms, wrong password " \
                                     f"{mw * 1e3:.1f} ms (medians): {times}"


# --- 3. lockout -------------------------------------------------------------------------

def test_lockout_after_threshold_and_unlock(srv):
    """Default threshold 5: the 5th wrong password locks; even the right one
    then gets 423. An admin (API), the operator (CLI) or time unlocks."""
    t = make_tenant(srv, "lock")
    staff, staff_id = add_user(srv, t, "staff")
    admin_id = user_id(srv, t)
    bad = "Not-The-Password-99"

    for i in range(4):
        check_unauthorized(login_reply(srv, staff, bad))
    assert failed_logins(srv, staff) == 4
    assert int(sql_one(srv, t.slug, f"SELECT locked_until FROM users WHERE id = {staff_id}")) \
        <= time.time(), "locked after 4 wrong passwords (threshold 5)"
    check_unauthorized(login_reply(srv, staff, bad))  # the 5th
    check_locked(login_reply(srv, staff))
    check_locked(login_reply(srv, staff, bad))
    assert failed_logins(srv, staff) == 5

    # An admin unlocks through the API (an unknown user id is not found).
    admin = login(srv, t)
    check_error_body(call(srv, "POST", "/api/v1/users/999999/unlock", t.slug, session=admin),
                     404, "not_found")
    r = call(srv, "POST", f"/api/v1/users/{staff_id}/unlock", t.slug, session=admin)
    assert r.status == 200 and r.body == {"unlocked": True}, r
    assert failed_logins(srv, staff) == 0
    staff_session = login(srv, staff)

    # A non-admin may not unlock (or end the sessions of) anyone.
    check_forbidden(call(srv, "POST", f"/api/v1/users/{admin_id}/unlock", t.slug,
                         session=staff_session))
    check_forbidden(call(srv, "POST", f"/api/v1/users/{admin_id}/sessions/end", t.slug,
                         session=staff_session))
    assert me(srv, t.slug, session=admin).status == 200

    # The operator's CLI unlocks too.
    for i in range(5):
        check_unauthorized(login_reply(srv, staff, bad))
    check_locked(login_reply(srv, staff))
    srv.cli_ok("user", "unlock", t.slug, staff.email)
    login(srv, staff)
    assert srv.cli("user", "unlock", t.slug, f"ghost@{t.slug}.example.com").returncode != 0

    # And time: once locked_until has passed, the right password works again.
    for i in range(5):
        check_unauthorized(login_reply(srv, staff, bad))
    check_locked(login_reply(srv, staff))
    tenant_sql(srv, t.slug, f"UPDATE users SET locked_until = {int(time.time()) - 1}"
                            f" WHERE id = {staff_id}")
    login(srv, staff)
    assert failed_logins(srv, staff) == 0


def test_expired_lockout_counts_afresh(srv):
    """Once the lockout time has passed, the account opens, and the next
    wrong password starts a new count instead of locking again at once."""
    t = make_tenant(srv, "expire")
    staff, staff_id = add_user(srv, t, "staff")
    bad = "Not-The-Password-99"
    for _ in range(5):
        login_reply(srv, staff, bad)
    check_locked(login_reply(srv, staff))
    tenant_sql(srv, t.slug, f"UPDATE users SET locked_until = {int(time.time()) - 1} "
                            f"WHERE id = {staff_id}")  # the 30 minutes have passed
    check_unauthorized(login_reply(srv, staff, bad))
    assert failed_logins(srv, staff) == 1
    login(srv, staff)


def parallel_logins(srv, u, n, timeout=30):
    """n wrong passwords for u sent at once (connections opened first) ->
    [(status or exception, seconds)]."""
    barrier = threading.Barrier(n)
    results = [None] * n

    def attempt(i):
        conn = srv.connection(timeout=timeout)
        try:
            conn.connect()
            barrier.wait(timeout=timeout)
            start = time.monotonic()
            r = call(srv, "POST", LOGIN, u.slug, conn=conn,
                     body={"email": u.email, "password": f"Wrong-{i:02d}-abcdefg"})
            results[i] = (r.status, round(time.monotonic() - start, 2))
        except Exception as exc:  # reported by the caller
            results[i] = (exc, None)
        finally:
            conn.close()

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=2 * timeout + 5)
    assert not any(th.is_alive() for th in threads), "sign-ins still running"
    return results


def test_parallel_wrong_passwords_all_count(start_server):
    """20 wrong passwords at once: every one is counted (an atomic update in
    the database, no lost read-modify-write). 32 worker threads and hash slots
    let the 20 run truly at once (a read-then-write counter loses about half
    of them so); the pool has a connection for each, so that
    test_parallel_logins_not_stalled_by_pool's bug does not interfere."""
    srv = start_server(login_rate_per_minute=MANY, lockout_threshold=100, threads=32,
                       max_concurrent_hashes=32, hash_wait_ms=30000, pool_per_tenant=32)
    t = make_tenant(srv, "par")
    staff, staff_id = add_user(srv, t, "staff")
    n = 20
    results = parallel_logins(srv, staff, n)
    assert [status for status, _ in results] == [401] * n, results
    assert failed_logins(srv, staff) == n
    assert sql_one(srv, t.slug, "SELECT COUNT(*) FROM auth_events WHERE kind = 'login_failure'"
                                f" AND user_id = {staff_id}") == str(n)


def test_parallel_guesses_stop_at_the_threshold(start_server):
    """20 wrong passwords at once against a threshold of 5: each attempt is
    counted before its password is checked, so exactly 5 are checked (401)
    and the other 15 are refused as locked (423) without a hash, however
    many run at once."""
    srv = start_server(login_rate_per_minute=MANY, threads=32, max_concurrent_hashes=32,
                       hash_wait_ms=30000, pool_per_tenant=32)
    t = make_tenant(srv, "cap")
    staff, _ = add_user(srv, t, "staff")
    results = parallel_logins(srv, staff, 20)
    statuses = sorted(status for status, _ in results)
    assert statuses == [401] * 5 + [423] * 15, results
    assert failed_logins(srv, staff) == 5
    check_locked(login_reply(srv, staff))  # even the right password now


def test_busy_refusals_are_not_counted(start_server):
    """With one hash slot and no patience, parallel sign-ins beyond it get
    503 (the memory bound under a flood); those were never checked, so they
    do not count toward the lockout."""
    srv = start_server(login_rate_per_minute=MANY, threads=16, max_concurrent_hashes=1,
                       hash_wait_ms=1, pool_per_tenant=32, lockout_threshold=100)
    t = make_tenant(srv, "busy")
    staff, _ = add_user(srv, t, "staff")
    statuses = [status for status, _ in parallel_logins(srv, staff, 12)]
    assert 503 in statuses and 401 in statuses, statuses
    assert failed_logins(srv, staff) == statuses.count(401), statuses


def test_one_time_password_must_be_changed_first(srv, tmp_path):
    """A tenant made without --admin-password-file prints a one-time password;
    with it the admin can change the password (and see /me) but nothing else."""
    slug = unique_slug("otp")
    out = srv.cli_ok("tenant", "create", slug, "--admin-email", f"admin@{slug}.example.com").stdout
    otp = re.search(r"one-time password: (\S+)", out).group(1)
    wait_tenant(srv, slug)
    u = types.SimpleNamespace(slug=slug, email=f"admin@{slug}.example.com", password=otp)
    session = login(srv, u, otp)
    assert me(srv, slug, session=session).status == 200
    check_forbidden(call(srv, "GET", "/api/v1/auth/tokens", slug, session=session))
    r = call(srv, "POST", "/api/v1/auth/password", slug, session=session,
             body={"current_password": otp, "new_password": "Brand-new-passphrase-42"})
    assert r.status == 200, r
    assert call(srv, "GET", "/api/v1/auth/tokens", slug, session=session).status == 200


def test_parallel_logins_not_stalled_by_pool(start_server):
    """20 sign-ins at once on one worker thread and the default pool (8 a
    tenant): every one is answered (401), none with 503."""
    srv = start_server(login_rate_per_minute=MANY, lockout_threshold=100, threads=1,
                       pool_wait_ms=200, hash_wait_ms=30000)
    t = make_tenant(srv, "stall")
    staff, _ = add_user(srv, t, "staff")
    results = parallel_logins(srv, staff, 20, timeout=15)
    assert [status for status, _ in results] == [401] * 20, results


# --- 4. several app servers share the count ---------------------------------------------

@contextlib.contextmanager
def twin_of(srv, workdir):
    """A second `bulwark serve` with srv's configuration (control database,
    var directory, master keys) on another port; srv cleans up the databases."""
    workdir.mkdir()
    twin = Server(workdir, srv.cert, {})
    twin.settings = copy.deepcopy(srv.settings)
    twin.settings["server"]["port"] = twin.port
    twin.settings["log"]["access_log"] = twin.access_log
    try:
        twin.start()
        twin.migrated = False  # the databases are srv's to remove
        yield twin
    finally:
        problem = twin.stop()
        if problem:
            pytest.fail(problem, pytrace=False)


@mariadb_only
def test_two_servers_count_failures_together(srv, tmp_path):
    with twin_of(srv, tmp_path / "twin") as other:
        t = make_tenant(srv, "two", servers=(other,))
        staff, _ = add_user(srv, t, "staff")
        bad = "Not-The-Password-99"
        for i in range(3):
            check_unauthorized(login_reply(srv, staff, bad))
        check_unauthorized(login_reply(other, staff, bad))
        assert failed_logins(srv, staff) == 4
        assert int(sql_one(srv, t.slug, "SELECT locked_until FROM users WHERE email ="
                                        f" '{staff.email}'")) <= time.time(), "locked early"
        check_unauthorized(login_reply(other, staff, bad))
        assert failed_logins(srv, staff) == 5
        check_locked(login_reply(srv, staff))
        check_locked(login_reply(other, staff))


# --- 5. session expiry and fixation ----------------------------------------------------

def test_session_idle_and_absolute_expiry(srv):
    t = make_tenant(srv, "expiry")
    now = int(time.time())

    idle = login(srv, t)
    where = f"WHERE token_hash = '{secret_hash(idle)}'"
    # Idle for less than the limit: still good, and the use counts as activity.
    tenant_sql(srv, t.slug, f"UPDATE sessions SET last_seen_at = {now - (IDLE_MINUTES - 5) * 60}"
                            f" {where}")
    assert me(srv, t.slug, session=idle).status == 200
    assert int(sql_one(srv, t.slug, f"SELECT last_seen_at FROM sessions {where}")) >= now
    tenant_sql(srv, t.slug, f"UPDATE sessions SET last_seen_at = {now - 3600} {where}")
    check_unauthorized(me(srv, t.slug, session=idle))
    assert session_rows(srv, t.slug, idle) == 0, "an idle-expired session is kept"
    check_unauthorized(me(srv, t.slug, session=idle))

    absolute = login(srv, t)
    where = f"WHERE token_hash = '{secret_hash(absolute)}'"
    expires = int(sql_one(srv, t.slug, f"SELECT expires_at FROM sessions {where}"))
    assert abs(expires - (now + ABSOLUTE_HOURS * 3600)) <= 10, (expires, now)
    tenant_sql(srv, t.slug, f"UPDATE sessions SET expires_at = {int(time.time()) - 1} {where}")
    check_unauthorized(me(srv, t.slug, session=absolute))
    assert session_rows(srv, t.slug, absolute) == 0


def test_session_fixation(srv):
    t = make_tenant(srv, "fix")
    # A valid session presented at sign-in is replaced, and ends.
    first = login(srv, t)
    second = login(srv, t, session=first)
    assert second != first
    check_unauthorized(me(srv, t.slug, session=first))
    assert session_rows(srv, t.slug, first) == 0
    assert me(srv, t.slug, session=second).status == 200

    # A value the attacker made up never becomes a session.
    planted = secrets.token_urlsafe(32)
    third = login(srv, t, session=planted)
    assert third != planted
    check_unauthorized(me(srv, t.slug, session=planted))
    assert session_rows(srv, t.slug, planted) == 0
    assert me(srv, t.slug, session=third).status == 200

    # Signing in with a cookie but from another origin (or none) is refused.
    check_forbidden(login_reply(srv, t, session=third, origin="https://evil.example"))
    check_forbidden(login_reply(srv, t, session=third, origin=None))
    assert me(srv, t.slug, session=third).status == 200


# --- 6. tenants ------------------------------------------------------------------------

def test_credentials_do_not_cross_tenants(srv):
    a, b = make_tenant(srv, "cross-a"), make_tenant(srv, "cross-b")
    session = login(srv, a)
    token = mint(srv, a, session, ["*"])["token"]
    check_unauthorized(me(srv, b.slug, session=session))
    check_unauthorized(me(srv, b.slug, token=token))
    # A's admin is nobody on B (though the passwords are the same).
    check_unauthorized(login_reply(srv, b, email=a.email))
    assert me(srv, a.slug, session=session).status == 200
    assert me(srv, a.slug, token=token).status == 200


# --- 7. CSRF -------------------------------------------------------------------------

def test_csrf_origin_and_referer(srv):
    t = make_tenant(srv, "csrf")
    own = origin_of(srv, t.slug)
    main = login(srv, t)

    def end_others(**kw):
        return call(srv, "POST", END_OTHERS, t.slug, session=main, **kw)

    other = login(srv, t)
    refused = [
        end_others(origin="https://evil.example"),
        end_others(origin=None),                                    # neither header
        end_others(origin=f"{own}.evil.example"),                   # look-alike
        end_others(origin=own.replace("https://", "http://")),      # another scheme
        end_others(origin="null"),
        end_others(origin=None, referer="https://evil.example/"),
        end_others(origin=None, referer=f"{own}.evil.example/"),
        end_others(origin=None, referer=f"{own}0/page"),            # another port
        end_others(origin="https://evil.example", referer=f"{own}/"),  # Origin decides
    ]
    for r in refused:
        check_forbidden(r)
    assert me(srv, t.slug, session=other).status == 200, "a refused request acted"

    r = end_others()  # the right Origin
    assert r.status == 200 and r.body == {"ended": True, "tokens_revoked": 0}, r
    check_unauthorized(me(srv, t.slug, session=other))
    assert me(srv, t.slug, session=main).status == 200

    other = login(srv, t)
    r = end_others(origin=None, referer=f"{own}/settings/security?x=1")
    assert r.status == 200, r
    check_unauthorized(me(srv, t.slug, session=other))

    # An API token is no ambient credential: no Origin needed.
    token = mint(srv, t, main, ["self.session", "self.view"])["token"]
    r = call(srv, "POST", END_OTHERS, t.slug, token=token)
    assert r.status == 200, r
    # Sign-in itself from a foreign origin is refused too (login CSRF).
    check_forbidden(login_reply(srv, t, origin="https://evil.example"))


# --- 8. password change ------------------------------------------------------------------

def test_password_change(srv):
    t = make_tenant(srv, "pwchg")
    current, other = login(srv, t), login(srv, t)
    new = "Fresh-Lantern-82-Quartz"

    def change(cur, nw):
        return call(srv, "POST", PASSWORD_PATH, t.slug, session=current,
                    body={"current_password": cur, "new_password": nw})

    check_forbidden(change("Not-The-Password-99", new))
    for weak in ("Short-1!", "password1234", "PASSWORD1234", "correcthorsebatterystaple",
                 t.email, t.email.upper(), "z" * 16):
        check_error_body(change(t.password, weak), 400, "invalid")
    check_error_body(call(srv, "POST", PASSWORD_PATH, t.slug, session=current,
                          body={"current_password": t.password}), 400, "invalid")
    assert me(srv, t.slug, session=other).status == 200, "a refused change ended sessions"
    login(srv, t)  # the old password still works

    r = change(t.password, new)
    assert r.status == 200 and r.body == {"changed": True, "tokens_revoked": 0}, r
    assert me(srv, t.slug, session=current).status == 200
    check_unauthorized(me(srv, t.slug, session=other))
    check_unauthorized(login_reply(srv, t))
    login(srv, t, password=new)


# --- 9. API tokens -----------------------------------------------------------------------

def test_api_tokens(srv):
    t = make_tenant(srv, "tok")
    session = login(srv, t)
    staff, staff_id = add_user(srv, t, "staff")

    created = mint(srv, t, session, ["*"])
    token = created["token"]
    assert re.fullmatch(r"bwk_[A-Za-z0-9_-]{43,}", token), token
    assert created["scopes"] == ["*"] and created["expires_at"] is None, created
    assert sql_one(srv, t.slug, f"SELECT token_hash FROM api_tokens WHERE id = {created['id']}") \
        == secret_hash(token)

    listed = call(srv, "GET", TOKENS, t.slug, session=session)
    assert listed.status == 200, listed
    assert token not in listed.raw.decode() and token[4:] not in listed.raw.decode()
    assert secret_hash(token) not in listed.raw.decode()
    (entry,) = listed.body["data"]
    assert set(entry) == {"id", "name", "prefix", "scopes", "expires_at", "last_used_at",
                          "created_at"}, entry
    assert entry["expires_at"] is None and entry["last_used_at"] is None, entry
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", entry["created_at"]), entry
    assert entry["id"] == created["id"] and token.startswith(entry["prefix"])
    assert len(entry["prefix"]) <= 12, entry

    m = me(srv, t.slug, token=token)
    assert m.status == 200 and m.body["auth"] == "token" and m.body["user"]["email"] == t.email
    check_unauthorized(me(srv, t.slug, token=token + "x"))
    check_unauthorized(me(srv, t.slug, token="bwk_" + secrets.token_urlsafe(32)))
    # "*" reaches admin routes, without Origin.
    r = call(srv, "POST", f"/api/v1/users/{staff_id}/unlock", t.slug, token=token)
    assert r.status == 200, r

    # Scopes are enforced.
    narrow = mint(srv, t, session, ["self.view"])["token"]
    assert me(srv, t.slug, token=narrow).status == 200
    check_forbidden(call(srv, "GET", TOKENS, t.slug, token=narrow))
    check_forbidden(call(srv, "POST", TOKENS, t.slug, token=narrow,
                         body={"name": "x", "scopes": ["*"]}))
    check_forbidden(call(srv, "POST", f"/api/v1/users/{staff_id}/unlock", t.slug, token=narrow))
    check_forbidden(call(srv, "POST", END_OTHERS, t.slug, token=narrow))

    # Bad requests.
    for body in ({"name": "x", "scopes": []}, {"name": "", "scopes": ["*"]},
                 {"name": "x", "scopes": ["*"], "expires_in_days": 0},
                 {"name": "x", "scopes": ["*"], "expires_in_days": "7"},
                 {"name": "x", "scopes": ["*"], "expires_at": "2020-01-01T00:00:00Z"},
                 {"name": "x", "scopes": ["*"], "expires_at": "tomorrow"},
                 {"name": "x", "scopes": ["*"], "expires_at": 1999999999},
                 {"name": "x", "scopes": ["*"], "expires_at": "2100-01-01T00:00:00Z"},
                 {"name": "x", "scopes": ["*"], "expires_in_days": 1,
                  "expires_at": rfc3339(time.time() + 3600)}):
        check_error_body(call(srv, "POST", TOKENS, t.slug, session=session, body=body),
                         400, "invalid")

    # Expiry.
    dated = mint(srv, t, session, ["self.view"], expires_in_days=1)
    assert abs(unix(dated["expires_at"]) - (time.time() + 86400)) <= 10, dated
    # ... or an RFC 3339 time, any offset: the same instant.
    at = int(time.time()) + 7200
    local = (datetime.datetime.fromtimestamp(at, datetime.timezone.utc)
             .astimezone(datetime.timezone(datetime.timedelta(hours=-3))).isoformat())
    timed = mint(srv, t, session, ["self.view"], expires_at=local)
    assert timed["expires_at"] == rfc3339(at), (timed, local)
    assert me(srv, t.slug, token=dated["token"]).status == 200
    tenant_sql(srv, t.slug, f"UPDATE api_tokens SET expires_at = {int(time.time()) - 1}"
                            f" WHERE id = {dated['id']}")
    check_unauthorized(me(srv, t.slug, token=dated["token"]))

    # A user who is no admin holds only self.* permissions.
    staff_session = login(srv, staff)
    for scopes in (["*"], ["users.unlock"], ["self.view", "users.sessions"]):
        check_forbidden(call(srv, "POST", TOKENS, t.slug, session=staff_session,
                             body={"name": "x", "scopes": scopes, "password": t.password}))
    own = mint(srv, staff, staff_session, ["self.view", "self.tokens"])
    mine = call(srv, "GET", TOKENS, t.slug, token=own["token"])
    assert [e["id"] for e in mine.body["data"]] == [own["id"]], mine
    check_forbidden(call(srv, "POST", "/api/v1/users/1/unlock", t.slug, token=own["token"]))
    # ... and cannot revoke someone else's token: it is "not found".
    check_error_body(call(srv, "DELETE", f"{TOKENS}/{created['id']}", t.slug,
                          session=staff_session), 404, "not_found")
    check_error_body(call(srv, "DELETE", f"{TOKENS}/{created['id']}", t.slug,
                          token=own["token"]), 404, "not_found")
    assert me(srv, t.slug, token=token).status == 200

    # Revocation.
    r = call(srv, "DELETE", f"{TOKENS}/{created['id']}", t.slug, session=session)
    assert r.status == 200 and r.body == {"revoked": True}, r
    check_unauthorized(me(srv, t.slug, token=token))
    check_error_body(call(srv, "DELETE", f"{TOKENS}/{created['id']}", t.slug, session=session),
                     404, "not_found")
    ids = [e["id"] for e in call(srv, "GET", TOKENS, t.slug, session=session).body["data"]]
    assert created["id"] not in ids and dated["id"] in ids, ids


def test_token_cannot_mint_wider_token(srv):
    """A token that may manage tokens still cannot make one with more scopes
    than it has itself: scopes would be no limit otherwise."""
    t = make_tenant(srv, "widen")
    session = login(srv, t)
    staff, staff_id = add_user(srv, t, "staff")
    narrow = mint(srv, t, session, ["self.tokens"])["token"]
    within = call(srv, "POST", TOKENS, t.slug, token=narrow,
                  body={"name": "same", "scopes": ["self.tokens"], "password": t.password})
    assert within.status == 201, within
    for scopes in (["*"], ["users.unlock"], ["self.tokens", "self.view"]):
        r = call(srv, "POST", TOKENS, t.slug, token=narrow,
                 body={"name": "wide", "scopes": scopes, "password": t.password})
        if r.status == 201:  # show what it opens, then fail
            wide = r.body["token"]
            unlock = call(srv, "POST", f"/api/v1/users/{staff_id}/unlock", t.slug, token=wide)
            pytest.fail(f"a {['self.tokens']} token minted {scopes}; with it, an admin route "
                        f"answered {unlock.status}")
        check_forbidden(r)


def test_admin_ends_user_sessions_and_disabled_user(srv):
    t = make_tenant(srv, "admend")
    admin = login(srv, t)
    staff, staff_id = add_user(srv, t, "staff")
    s1, s2 = login(srv, staff), login(srv, staff)
    check_error_body(call(srv, "POST", "/api/v1/users/999999/sessions/end", t.slug,
                          session=admin), 404, "not_found")
    r = call(srv, "POST", f"/api/v1/users/{staff_id}/sessions/end", t.slug, session=admin)
    assert r.status == 200 and r.body == {"ended": True}, r
    for s in (s1, s2):
        check_unauthorized(me(srv, t.slug, session=s))
    assert me(srv, t.slug, session=admin).status == 200

    # A disabled user: no sign-in (told apart from nobody), no session, no token.
    s3 = login(srv, staff)
    token = mint(srv, staff, s3, ["self.view"])["token"]
    tenant_sql(srv, t.slug, f"UPDATE users SET disabled = 1 WHERE id = {staff_id}")
    check_unauthorized(me(srv, t.slug, session=s3))
    check_unauthorized(me(srv, t.slug, token=token))
    r, nobody = login_reply(srv, staff), login_reply(srv, staff, email=f"x@{t.slug}.example.com")
    check_unauthorized(r)
    assert r.body["error"]["message"] == nobody.body["error"]["message"], (r.body, nobody.body)


# --- 10. sign-in rate limit ---------------------------------------------------------------

def test_login_rate_limit(start_server):
    srv = start_server(login_rate_per_minute=3)
    t = make_tenant(srv, "rate")
    for i in range(3):
        check_unauthorized(login_reply(srv, t, "Not-The-Password-99"))
    r = login_reply(srv, t)  # even the right password
    check_error_body(r, 429, "rate_limited")
    assert r.cookies == [] and r.headers.get("retry-after"), r
    assert failed_logins(srv, t) == 3, "a refused attempt reached the password check"
    # What a client says about its address changes nothing.
    for header in ("X-Forwarded-For", "X-Real-IP", "Forwarded"):
        value = "for=10.9.8.7" if header == "Forwarded" else "10.9.8.7"
        check_error_body(login_reply(srv, t, headers={header: value}), 429, "rate_limited")
    # Another address has its own budget.
    assert session_from(login_reply(srv, t, source="127.0.0.2"))


# --- 11. no plain text at rest or in logs -------------------------------------------------

def stored_text(srv, slugs):
    """Everything the server has written: its var/ files (SQLite), or a dump of
    its MariaDB databases, and its logs (bytes)."""
    parts = [p.read_bytes() for p in (srv.access_log, srv.stdout_path, srv.stderr_path)
             if p.exists()]
    parts += [p.read_bytes() for p in srv.var.rglob("*") if p.is_file()]
    if DRIVER == "mariadb":
        dbs = [srv.settings["database"]["control_db"]] + [f"saas_tenant_{s}" for s in slugs]
        parts.append(mariadb_dump(*dbs, hex_blob=False))
    return b"\n".join(parts)


def test_no_plaintext_secrets(srv):
    t = make_tenant(srv, "plain")
    wrong = "Wrong-Guess-Xylophone-31"
    new = "Second-Harbour-Pencil-56"
    check_unauthorized(login_reply(srv, t, wrong))
    check_unauthorized(login_reply(srv, t, wrong, email=f"nobody@{t.slug}.example.com"))
    first = login(srv, t)
    token = mint(srv, t, first, ["*"])["token"]
    assert me(srv, t.slug, token=token).status == 200
    r = call(srv, "POST", PASSWORD_PATH, t.slug, session=first,
             body={"current_password": t.password, "new_password": new})
    assert r.status == 200, r
    second = login(srv, t, password=new)
    assert me(srv, t.slug, session=second).status == 200
    # Let the access log catch up with the last request.
    wait_for(lambda: len(srv.access_entries()) >= 8, 5)

    text = stored_text(srv, [t.slug])
    assert t.email.encode() in text, "nothing scanned?"
    for what, secret in (("password", t.password), ("new password", new),
                         ("wrong password", wrong), ("session", first), ("session", second),
                         ("token", token)):
        assert secret.encode() not in text, f"the {what} is stored in plain text"
    # Nor any 12 characters of a secret, but the token's listed prefix (its first 12).
    for what, secret in (("session", first), ("session", second), ("token", token)):
        for i in range(1 if what == "token" else 0, len(secret) - 11):
            assert secret[i:i + 12].encode() not in text, f"part of the {what} is stored"
