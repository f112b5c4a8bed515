"""Review 13 (the operation context, may(), op_tx): attacks that still work.

Each test is what an attacker does against the current code; it fails
while the hole is open, and asserts that nothing changed where the
control should have held.
"""

import json
import time

from conftest import read_response
from psa import API, admin_client, new_user, sign_in
from test_identity import COOKIE, MANY, make_tenant, tenant_sql


def roles_of(admin, uid):
    r = admin.get(f"{API}/users/{uid}")
    assert r.status == 200, r
    return sorted(r.body["roles"])


def send_head(srv, sock, slug, method, path, session, body):
    """Send a request's head (cookie, own Origin, Content-Length), but not its body."""
    host = srv.tenant_host(slug)
    head = (f"{method} {path} HTTP/1.1\r\nHost: {host}\r\n"
            f"Cookie: {COOKIE}={session}\r\nOrigin: https://{host}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
    sock.sendall(head.encode())


# --- 1. may() answers from the roles read at authentication, inside the serialised change ---

def test_demoted_admin_in_flight_request_grants_admin_again(start_server):
    """may() answers built-in roles from actor.builtin_roles, read once by
    session_check() when the request's head arrived. The grant checks of
    rbac_user_update (rbac_may_manage, rbac_resolve_roles -> rbac_may_grant)
    used to ask the database inside the serialised transaction
    (rbac_user_has); now they ask may(), so a request whose head came while
    its sender was an admin still grants "admin" after the sender was
    demoted: send the head, be demoted, send the body."""
    srv = start_server(login_rate_per_minute=MANY)
    t = make_tenant(srv, "dem")
    owner = admin_client(srv, t)
    b_id, b_email = new_user(owner, ["admin"])
    b = sign_in(srv, t.slug, b_email)
    body = json.dumps({"roles": ["admin"]}).encode()
    with srv.raw_tls_socket(timeout=10) as sock:
        # B, an admin now, starts promoting itself again (a no-op for now)...
        send_head(srv, sock, t.slug, "PATCH", f"{API}/users/{b_id}", b.session, body)
        time.sleep(0.5)  # the pipeline has authorised the head
        # ...the owner demotes B to staff, and that commits...
        r = owner.patch(f"{API}/users/{b_id}", {"roles": ["staff"]})
        assert r.status == 200, r
        assert roles_of(owner, b_id) == ["staff"]
        # ...then B's body arrives.
        sock.sendall(body)
        reply = read_response(sock, "PATCH")
    # A staff user cannot grant the admin role: the demotion must stand.
    assert roles_of(owner, b_id) == ["staff"], \
        f"a demoted admin made itself admin again ({reply.status} {reply.body})"
    assert reply.status == 403, reply


# --- 2. op_tx: a deadlock swallowed inside the transaction commits the rest on its own ----

class RootSession:
    """One long-lived MariaDB root session (the mariadb client on a pipe)."""

    def __init__(self, database):
        import subprocess
        from conftest import MARIADB_SOCKET
        self.p = subprocess.Popen(
            ["mariadb", "--no-defaults", "-S", str(MARIADB_SOCKET), "-uroot", "-N", "-B", "-n",
             "--unbuffered", database],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.n = 0

    def run(self, sql):
        """Send sql, then wait for a marker: sql has run (or failed: the client stops)."""
        self.n += 1
        self.p.stdin.write(f"{sql};\nSELECT 'mark{self.n}';\n")
        self.p.stdin.flush()
        lines = []
        while True:
            line = self.p.stdout.readline()
            assert line, (sql, lines, self.p.stderr.read())
            if line.strip() == f"mark{self.n}":
                return lines
            lines.append(line.rstrip("\n"))

    def send(self, sql):
        """Send sql without waiting for it (it is going to wait on a lock)."""
        self.n += 1
        self.p.stdin.write(f"{sql};\nSELECT 'mark{self.n}';\n")
        self.p.stdin.flush()
        return f"mark{self.n}"

    def wait(self, marker):
        while True:
            line = self.p.stdout.readline()
            assert line, self.p.stderr.read()
            if line.strip() == marker:
                return

    def close(self):
        try:
            self.p.stdin.write("ROLLBACK;\n")
            self.p.stdin.close()
        except OSError:
            pass
        self.p.wait(timeout=30)


def test_unlock_deadlock_victim_reports_success_and_audits_an_unlock_that_never_happened(
        start_server):
    """user_unlock_tx() runs UPDATE users, then auth_event(), which logs a
    failure and goes on. When that INSERT is chosen as a deadlock's victim,
    InnoDB has already rolled the whole transaction back; op_tx() retries
    only when the *last* statement failed retryably (db_retryable is
    cleared by every later statement), so the audit row's statements run
    next, each committed on its own (autocommit), COMMIT has nothing to do
    and the API answers "unlocked": the account is still locked and the
    audit log records an unlock that never happened."""
    import threading
    from conftest import DRIVER
    import pytest
    if DRIVER != "mariadb":
        pytest.skip("InnoDB deadlocks: MariaDB only")
    srv = start_server(login_rate_per_minute=MANY)
    t = make_tenant(srv, "dlk")
    owner = admin_client(srv, t)
    victim_id, _ = new_user(owner, ["staff"])
    until = int(time.time()) + 3600
    tenant_sql(srv, t.slug, f"UPDATE users SET failed_logins = 5, locked_until = {until}"
                            f" WHERE id = {victim_id}")
    db = f"saas_tenant_{t.slug}"
    tenant_sql(srv, t.slug, "CREATE TABLE zz_weight (a INT) ENGINE=InnoDB")
    h = RootSession(db)
    try:
        h.run("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        h.run("SET SESSION innodb_lock_wait_timeout = 30")
        h.run("START TRANSACTION")
        # Heavier than the server's transaction, so that the server's is the victim.
        h.run("INSERT INTO zz_weight SELECT seq FROM seq_1_to_5000")
        # Next-key locks up to the supremum: an INSERT into auth_events waits.
        h.run("SELECT COUNT(*) FROM auth_events FOR UPDATE")
        out = {}
        th = threading.Thread(
            target=lambda: out.setdefault("r", owner.post(f"{API}/users/{victim_id}/unlock")))
        th.start()
        time.sleep(1.5)  # the server holds the user's row and waits in auth_event()
        mark = h.send(f"UPDATE users SET failed_logins = failed_logins WHERE id = {victim_id}")
        h.wait(mark)  # the deadlock is decided: the server's transaction was the victim
    finally:
        h.close()  # released: a retry of the server's transaction can now go through
    th.join(60)
    assert not th.is_alive()
    r = out["r"]
    locked = tenant_sql(srv, t.slug, f"SELECT locked_until FROM users WHERE id = {victim_id}")
    audited = owner.get(f"{API}/reporting/audit?entity=users&action=unlock&entity_id={victim_id}")
    assert audited.status == 200, audited
    # Either the unlock happened (and is audited once), or the API says it failed
    # and nothing was recorded.
    if r.status == 200:
        assert locked == [("0",)], \
            (f"API said unlocked ({r}), account still locked {locked}; audit rows for the"
             f" unlock: {len(audited.body['data'])}; server log:"
             f" {[l for l in srv.stderr().splitlines() if 'auth event' in l]}")
    else:
        assert locked == [(str(until),)], locked
        assert len(audited.body["data"]) == 0, audited.body


# --- 3. nothing re-checks the caller in the transaction: a disabled admin re-enables itself --

def test_disabled_admin_in_flight_request_re_enables_itself(start_server):
    """Disabling a user ends its sessions and revokes its tokens, but a
    request already past the pipeline is not asked again: rbac_user_update
    never locks or re-reads the caller's own session (auth_caller_lock, as
    the token and password routes do in api_reauth_begin). An admin about to
    be disabled sends a request's head, is disabled and signed out, then
    sends the body {"disabled": false} for itself and is back (and can sign
    in again with its password)."""
    srv = start_server(login_rate_per_minute=MANY)
    t = make_tenant(srv, "dis")
    owner = admin_client(srv, t)
    b_id, b_email = new_user(owner, ["admin"])
    b = sign_in(srv, t.slug, b_email)
    body = json.dumps({"disabled": False}).encode()
    with srv.raw_tls_socket(timeout=10) as sock:
        send_head(srv, sock, t.slug, "PATCH", f"{API}/users/{b_id}", b.session, body)
        time.sleep(0.5)
        r = owner.patch(f"{API}/users/{b_id}", {"disabled": True})
        assert r.status == 200 and r.body["disabled"] is True, r
        assert b.get(f"{API}/me").status == 401  # signed out everywhere
        sock.sendall(body)
        reply = read_response(sock, "PATCH")
    now = owner.get(f"{API}/users/{b_id}").body
    assert now["disabled"] is True, \
        f"a disabled, signed-out admin enabled itself again ({reply.status} {reply.body})"
    assert reply.status == 401, reply
