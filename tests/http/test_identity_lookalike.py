"""Issue #12, findings 8 and 9.

8. Look-alike accounts: an address is one identity in every case and
   spelling (NFKC, case-folded), invisible characters and mixed scripts are
   refused, and the normalised form is unique on both drivers (ADR 0012).
9. The lockout does not tell which accounts exist: unknown and disabled
   addresses are counted like existing ones, under an HMAC of the address,
   never the address itself, in a table that stays bounded.

Users are made through the API (and disabled through it), never with SQL,
so that these tests run unchanged against a build from before the fix and
fail there.
"""

import hashlib
import secrets
import statistics
import time

import pytest

from conftest import DRIVER, check_error_body, mariadb_dump
from psa import API, Client, admin_client, snapshot, snapshot_diff
from test_identity import (LOGIN, MANY, PASSWORD, Account, call, check_locked, login_reply,
                           make_tenant, session_from, tenant_sql)

WRONG = "Not-The-Password-99"


@pytest.fixture
def srv(start_server):
    return start_server(login_rate_per_minute=MANY)


def users(srv, slug):
    return sorted(tenant_sql(srv, slug, "SELECT id, email FROM users"))


# Back to before migration 17 (SAML) and 18 (e-mail, recovery): their tables and
# columns gone, so that they run again.
UNDO_V17 = ("DROP TABLE mail_settings", "DROP TABLE mail_outbox", "DROP TABLE password_resets",
            "DROP TABLE recovery_throttle", "DROP TABLE notify_cursor",
            "DROP TABLE saml_config", "DROP TABLE saml_requests", "DROP TABLE saml_replay",
            "ALTER TABLE users DROP COLUMN sso_exempt",
            "ALTER TABLE users DROP COLUMN sso_provisioned",
            "ALTER TABLE users DROP COLUMN display_name", "ALTER TABLE sessions DROP COLUMN sso",
            # migration 19
            "DROP TABLE mailbox_settings", "DROP TABLE mail_inbound",
            "ALTER TABLE users DROP COLUMN signin_notice")


def undo_row_versions(srv, slug):
    """Back to before migration 12: the version column of every table that
    has one (users, roles, the module tables), so that it runs again."""
    if DRIVER == "mariadb":
        tables = [r[0] for r in tenant_sql(
            srv, slug, "SELECT TABLE_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA ="
            " DATABASE() AND COLUMN_NAME = 'version' AND TABLE_NAME <> 'schema_migrations'")]
        tenant_sql(srv, slug, "; ".join(f"ALTER TABLE {t} DROP COLUMN version" for t in tables))
    else:
        tables = [t for (t,) in tenant_sql(srv, slug, "SELECT name FROM sqlite_master WHERE"
                                           " type = 'table' AND name <> 'schema_migrations'")
                  if any(c[1] == "version" for c in tenant_sql(srv, slug,
                                                                f"PRAGMA table_info({t})"))]
        for t in tables:
            tenant_sql(srv, slug, f"ALTER TABLE {t} DROP COLUMN version")
    assert "users" in tables and "customers" in tables, tables


def create_user(admin, email, password=PASSWORD):
    return admin.post(f"{API}/users", {"email": email, "password": password, "roles": ["staff"]})


# --- 8. look-alike accounts ------------------------------------------------------------------

LOOKALIKES = [
    # (address, status, what the message must name)
    ("ADMIN@acme.test", 409, "email"),
    ("Admin@acme.test", 409, "email"),
    ("\uff41dmin@acme.test", 409, "email"),         # full-width a: NFKC makes it 'a'
    ("admin\u200b@acme.test", 400, "email"),        # zero width space
    ("admin@acme.test\u00a0", 400, "email"),        # trailing no-break space
    ("\u0430dmin@acme.test", 400, "email"),         # Cyrillic a in a Latin local part
    ("admin@\u0430cme.test", 400, "email"),         # Cyrillic a in the domain
    ("admin\u2060@acme.test", 400, "email"),        # word joiner
    ("admin@acme.test\u202e", 400, "email"),        # right-to-left override
]


def test_lookalike_accounts_refused_and_nothing_written(srv):
    t = make_tenant(srv, "look")
    admin = admin_client(srv, t)
    r = create_user(admin, "admin@acme.test")
    assert r.status == 201, r
    uid = r.body["id"]
    before_users, before = users(srv, t.slug), snapshot(srv, t.slug)

    made = []
    for address, status, field in LOOKALIKES:
        r = create_user(admin, address)
        if r.status in (200, 201):
            made.append(address)
            continue
        check_error_body(r, status, "conflict" if status == 409 else "invalid")
        assert f"'{field}'" in r.body["error"]["message"], (address, r.body)
    assert not made, f"look-alikes of admin@acme.test were created: {made!r}"
    assert users(srv, t.slug) == before_users
    assert snapshot_diff(before, snapshot(srv, t.slug)) == ""

    # Any spelling of the address signs in to the one account, shown as itself.
    for spelling in ("ADMIN@acme.test", "Admin@ACME.test", "\uff41dmin@acme.test"):
        r = call(srv, "POST", LOGIN, t.slug, body={"email": spelling, "password": PASSWORD})
        session_from(r)
        assert (r.body["user"]["id"], r.body["user"]["email"]) == (uid, "admin@acme.test"), \
            (spelling, r.body)
    # A refused spelling matches no one.
    r = call(srv, "POST", LOGIN, t.slug, body={"email": "admin\u200b@acme.test",
                                               "password": PASSWORD})
    check_error_body(r, 401, "unauthorized")


def test_unique_in_the_database_on_both_drivers(srv):
    """Behind the API's back the database itself refuses a second row with
    the same normalised address (SQLite's and MariaDB's unique index alike)."""
    t = make_tenant(srv, "uniq")
    admin = admin_client(srv, t)
    assert create_user(admin, "Someone@acme.test").status == 201
    assert tenant_sql(srv, t.slug, "SELECT email, email_norm FROM users WHERE email_norm ="
                                   " 'someone@acme.test'") == [("someone@acme.test",
                                                                "someone@acme.test")]
    with pytest.raises(Exception):
        tenant_sql(srv, t.slug, "INSERT INTO users (email, email_norm, password_hash, created_at,"
                                " updated_at) VALUES ('SOMEONE@acme.test', 'someone@acme.test',"
                                " 'x', 0, 0)")
    assert len(tenant_sql(srv, t.slug, "SELECT id FROM users WHERE email_norm ="
                                       " 'someone@acme.test'")) == 1


def test_cli_tenant_create_and_unlock_normalise(srv):
    # A refused admin address makes no tenant.
    for bad in ("admin\u200b@acme.test", "\u0430dmin@acme.test", "admin@\u0430cme.test"):
        proc = srv.cli("tenant", "create", f"bad{secrets.token_hex(3)}", "--admin-email", bad)
        assert proc.returncode != 0 and "e-mail" in proc.stderr, proc

    t = make_tenant(srv, "cliuc")
    # The operator unlocks by any spelling of the address.
    for _ in range(5):
        login_reply(srv, t, WRONG)
    check_locked(login_reply(srv, t))
    srv.cli_ok("user", "unlock", t.slug, t.email.upper())
    session_from(login_reply(srv, t))
    proc = srv.cli("user", "unlock", t.slug, t.email.replace("@", "\u200b@"))
    assert proc.returncode != 0, proc


def test_migration_refuses_existing_collisions(start_server):
    """Rows made before migration 9 that are one address once normalised stop
    the migration with a message naming both; nothing is merged or lost, and
    once one is renamed the migration completes with every row backfilled."""
    srv = start_server(login_rate_per_minute=MANY)
    t = make_tenant(srv, "mig")
    admin = admin_client(srv, t)
    assert create_user(admin, "ann@acme.test").status == 201
    # Back to schema 8: the columns, their indexes and migration 10's tables gone.
    on = " ON users" if DRIVER == "mariadb" else ""
    for sql in ("DROP INDEX users_email_skel" + on, "ALTER TABLE users DROP COLUMN email_skel",
                "DROP INDEX users_email_norm" + on,
                "ALTER TABLE users DROP COLUMN email_norm",
                "DROP TABLE login_attempts", "DROP TABLE login_attempts_key",
                "DROP TABLE idempotency_keys", "DROP TABLE idempotency_mac",  # migration 13
                *UNDO_V17, "DELETE FROM schema_migrations WHERE version >= 9"):
        tenant_sql(srv, t.slug, sql)
    undo_row_versions(srv, t.slug)
    tenant_sql(srv, t.slug, "INSERT INTO users (email, password_hash, created_at, updated_at)"
                            " VALUES ('ANN@acme.test', 'x', 0, 0)")
    before = users(srv, t.slug)
    proc = srv.cli("migrate")
    assert proc.returncode != 0, proc
    msg = proc.stdout + proc.stderr
    assert "ann@acme.test" in msg and "ANN@acme.test" in msg and "migration 9" in msg, msg
    assert users(srv, t.slug) == before

    tenant_sql(srv, t.slug, "UPDATE users SET email = 'ann.2@acme.test' WHERE email = 'ANN@acme.test'")
    srv.cli_ok("migrate")
    rows = sorted(tenant_sql(srv, t.slug, "SELECT email, email_norm FROM users"))
    assert ("ann@acme.test", "ann@acme.test") in rows and \
        ("ann.2@acme.test", "ann.2@acme.test") in rows, rows
    assert all(norm not in (None, "None", "") for _, norm in rows), rows



# Same-script look-alikes (review of #12): unique by UTS #39 confusable skeleton.
SAME_SCRIPT = [
    # (look-alike, the account it reads as, status)
    ("adm\u0131n@acme.test", "admin@acme.test", 409),     # dotless i (Latin)
    ("\u0261reg@acme.test", "greg@acme.test", 409),       # script g (Latin)
    ("\u0251dmin@acme.test", "admin@acme.test", 409),     # Latin alpha
    ("o\ua78cbrien@acme.test", "o'brien@acme.test", 409),  # Latin saltillo
    # A Common-script modifier letter is refused before uniqueness is asked.
    ("o\u02bcbrien@acme.test", "o'brien@acme.test", 400),
    ("\u0430\u0441\u0435@acme.test", "ace@acme.test", 409),  # whole-script Cyrillic
    ("ADM\u0130N@acme.test", "admin@acme.test", 409),     # dotted capital I, folded: i + U+0307
    ("admi\u0307n@acme.test", "admin@acme.test", 409),    # a dot above on i cannot be seen
    ("rnary@acme.test", "mary@acme.test", 409),           # rn reads as m
]
DISTINCT = ["s\u00f8ren@acme.test", "\u0142ukasz@acme.test", "jos\u00e9@acme.test",
            "\u0131lg\u0131n@acme.test"]


def test_same_script_lookalikes_refused_distinct_names_kept(srv):
    t = make_tenant(srv, "skel")
    admin = admin_client(srv, t)
    ids = {}
    for victim in sorted({v for _, v, _ in SAME_SCRIPT}):
        r = create_user(admin, victim)
        assert r.status == 201, (victim, r)
        ids[victim] = r.body["id"]
    before_users, before = users(srv, t.slug), snapshot(srv, t.slug)

    for lookalike, victim, status in SAME_SCRIPT:
        r = create_user(admin, lookalike)
        check_error_body(r, status, "conflict" if status == 409 else "invalid")
        assert "'email'" in r.body["error"]["message"], (lookalike, r.body)
    assert users(srv, t.slug) == before_users
    assert snapshot_diff(before, snapshot(srv, t.slug)) == ""

    # A look-alike is not a spelling of the account: it signs in to nothing.
    for lookalike, victim, _ in SAME_SCRIPT:
        r = call(srv, "POST", LOGIN, t.slug, body={"email": lookalike, "password": PASSWORD})
        check_error_body(r, 401, "unauthorized")

    # Distinct non-ASCII names are names of their own, and sign in as themselves.
    for name in DISTINCT:
        r = create_user(admin, name)
        assert r.status == 201, (name, r)
        uid = r.body["id"]
        r = call(srv, "POST", LOGIN, t.slug, body={"email": name, "password": PASSWORD})
        session_from(r)
        assert (r.body["user"]["id"], r.body["user"]["email"]) == (uid, name), r.body
    # The skeleton is stored beside the key, and unique in the database itself.
    rows = tenant_sql(srv, t.slug, "SELECT email_skel FROM users WHERE email = 'admin@acme.test'")
    assert rows == [("adrnin@acrne.test",)], rows
    with pytest.raises(Exception):
        tenant_sql(srv, t.slug, "INSERT INTO users (email, email_norm, email_skel, password_hash,"
                                " created_at, updated_at) VALUES ('x@acme.test', 'x@acme.test',"
                                " 'adrnin@acrne.test', 'x', 0, 0)")


def test_cli_admin_email_gets_a_skeleton(srv):
    slug = f"sk{secrets.token_hex(3)}"
    srv.cli_ok("tenant", "create", slug, "--admin-email", "Greg@acme.test")
    assert tenant_sql(srv, slug, "SELECT email_norm, email_skel FROM users") == \
        [("greg@acme.test", "greg@acrne.test")]


def test_migration_11_refuses_existing_lookalikes(start_server):
    """Rows made before migration 11 that read alike stop it with a message
    naming both; once one is renamed it completes with every row backfilled."""
    srv = start_server(login_rate_per_minute=MANY)
    t = make_tenant(srv, "mig11")
    admin = admin_client(srv, t)
    assert create_user(admin, "greg@acme.test").status == 201
    on = " ON users" if DRIVER == "mariadb" else ""
    for sql in ("DROP INDEX users_email_skel" + on, "ALTER TABLE users DROP COLUMN email_skel",
                "DROP TABLE idempotency_keys", "DROP TABLE idempotency_mac",  # migration 13
                *UNDO_V17, "DELETE FROM schema_migrations WHERE version >= 11"):
        tenant_sql(srv, t.slug, sql)
    undo_row_versions(srv, t.slug)
    tenant_sql(srv, t.slug, "INSERT INTO users (email, email_norm, password_hash, created_at,"
                            " updated_at) VALUES ('\u0261reg@acme.test', '\u0261reg@acme.test',"
                            " 'x', 0, 0)")
    before = users(srv, t.slug)
    proc = srv.cli("migrate")
    assert proc.returncode != 0, proc
    msg = proc.stdout + proc.stderr
    assert "'greg@acme.test'" in msg and "\u0261reg@acme.test" in msg and "migration 11" in msg \
        and "look alike" in msg, msg
    assert users(srv, t.slug) == before

    tenant_sql(srv, t.slug, "UPDATE users SET email = 'greg.2@acme.test',"
                            " email_norm = 'greg.2@acme.test' WHERE email_norm <> 'greg@acme.test'"
                            " AND email_norm LIKE '%reg@acme.test'")
    srv.cli_ok("migrate")
    rows = sorted(tenant_sql(srv, t.slug, "SELECT email, email_skel FROM users"))
    assert all(sk not in (None, "None", "") for _, sk in rows), rows
    assert ("greg.2@acme.test", "greg.2@acrne.test") in rows, rows


# --- 9. the lockout tells nothing ------------------------------------------------------------

def shape(reply):
    """Status and body without the request id and the unlock time."""
    err = dict(reply.body["error"])
    err.pop("request_id")
    if "locked_until" in err:
        err["locked_until"] = "T"
    return reply.status, err, reply.cookies


def tenant_bytes(srv, slug):
    """The tenant database as stored: the SQLite file with its WAL and
    shared memory, or a dump of the MariaDB database."""
    if DRIVER == "mariadb":
        return mariadb_dump(f"saas_tenant_{slug}")
    files = list((srv.var / "tenants").glob(f"{slug}.db*"))
    assert files, srv.var
    return b"".join(p.read_bytes() for p in files)


def test_lockout_same_for_existing_unknown_and_disabled(srv):
    t = make_tenant(srv, "orac")
    admin = admin_client(srv, t)
    existing = f"staff@{t.slug}.example.com"
    disabled = f"gone@{t.slug}.example.com"
    unknown = f"nobody-{secrets.token_hex(4)}@{t.slug}.example.com"
    for email in (existing, disabled):
        assert create_user(admin, email).status == 201
    gone_id = [int(i) for i, e in users(srv, t.slug) if e == disabled][0]
    r = admin.patch(f"{API}/users/{gone_id}", {"disabled": True})
    assert r.status == 200 and r.body["disabled"] is True, r
    before_users = users(srv, t.slug)

    seqs = {}
    for email in (existing, unknown, disabled):
        acc = Account(t.slug, email, PASSWORD)
        replies = [login_reply(srv, acc, WRONG) for _ in range(6)]
        seqs[email] = [shape(r) for r in replies]
        assert [r.status for r in replies] == [401] * 5 + [423], (email, replies)
        check_locked(replies[-1])
    assert seqs[existing] == seqs[unknown] == seqs[disabled], seqs
    # Another spelling of the unknown address is the same counter.
    check_locked(login_reply(srv, Account(t.slug, unknown.upper(), PASSWORD), WRONG))
    # The right password of a locked account (enabled or not) is still refused.
    for email in (existing, disabled):
        check_locked(login_reply(srv, Account(t.slug, email, PASSWORD)))
    assert users(srv, t.slug) == before_users

    # Counted under a keyed hash: not the address, nor its plain SHA-256.
    rows = tenant_sql(srv, t.slug, "SELECT addr_mac, failed FROM login_attempts")
    assert len(rows) == 1 and rows[0][1] == "5", rows
    mac = rows[0][0]
    assert len(mac) == 64 and mac not in (hashlib.sha256(unknown.encode()).hexdigest(),
                                          hashlib.sha256(unknown.lower().encode()).hexdigest())
    stored = tenant_bytes(srv, t.slug)
    assert existing.encode() in stored, "nothing scanned?"
    for form in (unknown, unknown.upper(), unknown.encode().hex()):
        assert form.encode() not in stored, f"the unknown address is stored ({form})"


def test_unknown_addresses_bounded(start_server):
    srv = start_server(login_rate_per_minute=MANY, login_attempts_max_rows=3)
    t = make_tenant(srv, "bound")
    spray = [f"spray-{i}-{secrets.token_hex(3)}@{t.slug}.example.com" for i in range(8)]
    for email in spray:
        check_error_body(login_reply(srv, Account(t.slug, email, PASSWORD), WRONG), 401,
                         "unauthorized")
        n = int(tenant_sql(srv, t.slug, "SELECT COUNT(*) FROM login_attempts")[0][0])
        assert 1 <= n <= 3, n
    # Rows idle for over a day whose lockout is over go when a new row is needed.
    tenant_sql(srv, t.slug, f"UPDATE login_attempts SET last_at = {int(time.time()) - 2 * 86400}")
    login_reply(srv, Account(t.slug, f"late@{t.slug}.example.com", PASSWORD), WRONG)
    assert tenant_sql(srv, t.slug, "SELECT COUNT(*), MAX(failed) FROM login_attempts") == \
        [("1", "1")]



def test_full_of_running_lockouts_answers_new_addresses_locked(start_server):
    """A running lockout is never evicted; when the table holds nothing
    else, a new unknown address is answered as locked (as a user would be)
    and nothing is stored for it."""
    srv = start_server(login_rate_per_minute=MANY, login_attempts_max_rows=2)
    t = make_tenant(srv, "full")
    ghosts = [Account(t.slug, f"ghost-{i}-{secrets.token_hex(3)}@{t.slug}.example.com", PASSWORD)
              for i in range(2)]
    for g in ghosts:
        for _ in range(5):
            check_error_body(login_reply(srv, g, WRONG), 401, "unauthorized")
        check_locked(login_reply(srv, g, WRONG))
    before = sorted(tenant_sql(srv, t.slug, "SELECT addr_mac, failed, locked_until FROM"
                                            " login_attempts"))
    fresh = Account(t.slug, f"fresh-{secrets.token_hex(3)}@{t.slug}.example.com", PASSWORD)
    r = login_reply(srv, fresh, WRONG)
    check_locked(r)
    assert shape(r) == shape(login_reply(srv, ghosts[0], WRONG))
    for g in ghosts:
        check_locked(login_reply(srv, g, WRONG))
    assert sorted(tenant_sql(srv, t.slug, "SELECT addr_mac, failed, locked_until FROM"
                                          " login_attempts")) == before
    # Once a lockout has run out its row may go, and new addresses count again.
    tenant_sql(srv, t.slug, f"UPDATE login_attempts SET locked_until = {int(time.time()) - 1}"
                            " WHERE id = (SELECT MIN(id) FROM (SELECT id FROM login_attempts) x)")
    check_error_body(login_reply(srv, fresh, WRONG), 401, "unauthorized")
    check_locked(login_reply(srv, ghosts[1], WRONG))
    assert srv.stderr().count("running lockouts") == 1, srv.stderr()[-2000:]


def test_unknown_in_the_same_time_band(start_server):
    """Loose: the medians of 5 sign-ins for an unknown and a disabled address
    are within 0.5x to 2x of a wrong password's (argon2id dominates all)."""
    srv = start_server(login_rate_per_minute=MANY, lockout_threshold=1000)
    t = make_tenant(srv, "band")
    admin = admin_client(srv, t)
    gone = f"gone@{t.slug}.example.com"
    assert create_user(admin, gone).status == 201
    gone_id = [int(i) for i, e in users(srv, t.slug) if e == gone][0]
    assert admin.patch(f"{API}/users/{gone_id}", {"disabled": True}).status == 200
    bodies = {"wrong": t.email, "unknown": f"nobody@{t.slug}.example.com", "disabled": gone}
    times = {k: [] for k in bodies}
    conn = srv.connection()
    try:
        for i in range(6):
            for kind, email in bodies.items():
                start = time.monotonic()
                r = call(srv, "POST", LOGIN, t.slug, conn=conn,
                         body={"email": email, "password": WRONG})
                if i:  # the first round warms up
                    times[kind].append(time.monotonic() - start)
                check_error_body(r, 401, "unauthorized")
    finally:
        conn.close()
    mw = statistics.median(times["wrong"])
    for kind in ("unknown", "disabled"):
        m = statistics.median(times[kind])
        assert 0.5 * mw <= m <= 2 * mw, (kind, m, mw, times)


def test_idn_domains_only_where_the_tenant_allows(srv):
    """A non-ASCII domain is refused by default (400 naming the field) and
    accepted once the tenant's email_idn setting is on; mixed scripts in a
    label and ACE (xn--) labels are refused either way."""
    t = make_tenant(srv, "idn")
    admin = admin_client(srv, t)
    idn = "anna@\u043f\u0440\u0438\u043c\u0435\u0440.com"  # пример.com
    before = users(srv, t.slug)
    r = create_user(admin, idn)
    check_error_body(r, 400, "invalid")
    assert "'email'" in r.body["error"]["message"] and "non-ASCII" in r.body["error"]["message"]
    assert users(srv, t.slug) == before
    # Off by default, and an admin turns it on through the security settings.
    assert admin.get(f"{API}/settings/security").body == {"mfa_required": False,
                                                           "email_idn": False}
    for bad in ({"email_idn": "yes"}, {"idn": True}, {}):
        r = admin.request("PUT", f"{API}/settings/security", body=bad)
        check_error_body(r, 400, "invalid")
    assert users(srv, t.slug) == before
    r = admin.request("PUT", f"{API}/settings/security", body={"email_idn": True})
    assert r.status == 200 and r.body == {"email_idn": True}, r
    assert admin.get(f"{API}/settings/security").body == {"mfa_required": False,
                                                           "email_idn": True}
    for bad in ("anna@\u043f\u0440\u0438mer.com", "anna@xn--e1afmkfd.com"):
        check_error_body(create_user(admin, bad), 400, "invalid")
    assert users(srv, t.slug) == before
    r = create_user(admin, idn)
    assert r.status == 201 and r.body["email"] == idn, r
    # Its upper-case spelling is the same account.
    r = call(srv, "POST", LOGIN, t.slug, body={"email": idn.upper(), "password": PASSWORD})
    assert session_from(r) and r.body["user"]["email"] == idn, r.body
