"""Shared helpers for the PSA black-box tests (test_rbac.py, test_modules.py):
the route table from `bulwark routes`, the module metadata, a kept-alive
API client per user, rows made from the metadata (parents first) and a
snapshot of a tenant's database to prove that a refused request changed
nothing.
"""

import contextlib
import http.client
import json
import secrets
import sqlite3
import subprocess
import threading

from conftest import BIN, DRIVER, MARIADB_SOCKET, check_error_body, child_env, mariadb_root
from test_identity import PASSWORD, COOKIE, login, make_tenant, tenant_sql  # noqa: F401

API = "/api/v1"
MUTATING = ("POST", "PUT", "PATCH", "DELETE")


# --- the route table -------------------------------------------------------------

def is_file_route(r):
    """An attachment route (src/files/files_api.c): tests/http/test_files.py covers these,
    their permissions, scopes and tenants, with real files and a real clamd."""
    return "/files" in r["pattern"]


def route_table(include_files=False):
    """Every route bulwark serves, from `bulwark routes` (JSON); without the attachment
    routes unless asked for (generic walks cannot make a file to act on)."""
    proc = subprocess.run([str(BIN), "routes"], env=child_env(), capture_output=True, text=True,
                          timeout=30, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr
    routes = json.loads(proc.stdout)
    assert isinstance(routes, list) and len(routes) > 50, routes
    for r in routes:
        assert set(r) >= {"method", "pattern", "permission", "flags", "module"}, r
    return routes if include_files else [r for r in routes if not is_file_route(r)]


def is_public(route):
    return "public" in route["flags"]


# --- a client for one user ----------------------------------------------------------

class Reply:
    def __init__(self, status, headers, body, raw):
        self.status, self.headers, self.body, self.raw = status, headers, body, raw

    def __repr__(self):
        return f"Reply({self.status}, {self.raw[:400]!r})"


class Client:
    """Requests to one tenant as one user (API token or session), on one
    kept-alive connection (re-opened when the server closes it), from the
    source address given (loopback 127.0.0.x: a client elsewhere) or 127.0.0.1."""

    def __init__(self, srv, slug, token=None, session=None, source=None):
        self.srv, self.slug, self.token, self.session = srv, slug, token, session
        self.source = source
        self.conn = None

    def request(self, method, path, body=None, headers=None, raw=None):
        """body: sent as JSON (application/json); raw: bytes sent as they are,
        with only the Content-Type headers give."""
        h = {"Host": self.srv.tenant_host(self.slug)}
        if self.token:
            h["Authorization"] = f"Bearer {self.token}"
        if self.session:
            h["Cookie"] = f"{COOKIE}={self.session}"
            if method != "GET":
                h["Origin"] = f"https://{self.srv.tenant_host(self.slug)}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        elif raw is not None:
            data = raw
        h.update(headers or {})
        h = {k: v for k, v in h.items() if v is not None}  # None: leave the header out
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = self.srv.connection(self.source)
            try:
                self.conn.request(method, path, body=data, headers=h)
                resp = self.conn.getresponse()
                raw = resp.read()
                break
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
        hdrs = {k.lower(): v for k, v in resp.getheaders()}
        if hdrs.get("connection", "").lower() == "close":
            self.conn.close()
            self.conn = None
        parsed = raw
        if raw and hdrs.get("content-type", "").startswith("application/json"):
            parsed = json.loads(raw)
        return Reply(resp.status, hdrs, parsed, raw)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body=body, **kw)

    def patch(self, path, body=None, **kw):
        return self.request("PATCH", path, body=body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def ok(self, method, path, body=None, status=(200, 201)):
        r = self.request(method, path, body=body)
        assert r.status in (status if isinstance(status, tuple) else (status,)), \
            (method, path, body, r)
        return r.body

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def admin_client(srv, account):
    """A client for the tenant's admin, with an API token scoped "*"."""
    session = login(srv, account)
    c = Client(srv, account.slug, session=session)
    tok = c.ok("POST", f"{API}/auth/tokens",
               {"name": f"adm-{secrets.token_hex(3)}", "scopes": ["*"],
                "password": account.password})["token"]
    c.close()
    return Client(srv, account.slug, token=tok)


def new_user(admin, roles, local=None):
    """A user made through the API with PASSWORD and roles -> (id, email)."""
    email = f"{local or 'u-' + secrets.token_hex(4)}@{admin.slug}.example.com"
    u = admin.ok("POST", f"{API}/users", {"email": email, "password": PASSWORD, "roles": roles},
                 status=201)
    return u["id"], email


def sign_in(srv, slug, email):
    """A session client for a user with PASSWORD."""
    r = Client(srv, slug).post(f"{API}/auth/login", {"email": email, "password": PASSWORD})
    assert r.status == 200, r
    cookie = [v for k, v in r.headers.items() if k == "set-cookie"]
    assert cookie, r.headers
    secret = cookie[0].split(";")[0].split("=", 1)[1]
    return Client(srv, slug, session=secret)


def new_role(admin, perms, name=None):
    r = admin.ok("POST", f"{API}/roles",
                 {"name": name or f"r-{secrets.token_hex(4)}", "description": "test",
                  "permissions": sorted(perms)}, status=201)
    return r["id"], r["name"]


def check_forbidden(reply):
    check_error_body(reply, 403, "forbidden")


def check_error(reply, status, code, names=None):
    check_error_body(reply, status, code)
    if names:
        assert names in reply.body["error"]["message"], (names, reply.body)


# --- modules, from the metadata ------------------------------------------------------

def modules_meta(admin):
    mods = admin.ok("GET", f"{API}/meta/modules")["modules"]
    assert len(mods) >= 18, mods
    return {m["name"]: m for m in mods}


def order(meta):
    """Module names, parents first (the catalogue's own order is parents first)."""
    return list(meta)


def value_for(module, f, ids, marker):
    """A valid value of field f of module (ids: module -> an id of a row)."""
    t, n = f["type"], f["name"]
    special = {
        ("payments", "card_last_four"): "4242",
        ("payments", "method"): "card",
        ("network_devices", "management_address"): "10.20.30.40",
        ("network_devices", "auth_method"): "password",
        ("tickets", "status"): "new",
    }
    if (module, n) in special:
        return special[(module, n)]
    if t in ("string", "text"):
        return f"{marker}-{module}-{n}"[: f["max_length"]]
    if t == "email":
        return f"{marker}.{n}@example.com"
    if t == "integer":
        return max(f.get("min", 0), 1)
    if t == "money":
        return 1234 if n != "amount_cents" else 1
    if t == "boolean":
        return True
    if t == "enum":
        return f.get("default") or f["values"][0]
    if t == "reference":
        return ids[f["references"]]
    if t == "date":
        return "2026-01-15"
    raise AssertionError(f"unknown type {t}")


def writable(f):
    return not f["read_only"]


def valid_body(meta, module, ids, marker, full=True):
    """A valid create body for module: every writable field when full, else
    the required ones only."""
    body = {}
    for f in meta[module]["fields"]:
        if not writable(f) or (not full and not f["required"]):
            continue
        if f["type"] == "reference" and f["references"] not in ids:
            continue
        body[f["name"]] = value_for(module, f, ids, marker)
    return body


def update_body(meta, module, marker):
    """A valid PATCH body: one writable, mutable string/text field, or {}."""
    for f in meta[module]["fields"]:
        if writable(f) and not f["immutable"] and f["type"] in ("text", "string") \
                and not f["encrypted"] and not (module, f["name"]) == ("payments", "card_last_four"):
            return {f["name"]: f"{marker}-upd"[: f["max_length"]]}
    return {}


def make_rows(admin, meta, marker, user_id):
    """One row per module, parents first; invoices and payments so that the
    payment is taken on a sent invoice -> module -> id."""
    ids = {"users": user_id}
    for name in order(meta):
        r = admin.post(f"{API}/{name}", valid_body(meta, name, ids, marker))
        assert r.status == 201, (name, r)
        ids[name] = r.body["id"]
        if name == "invoice_lines":
            s = admin.post(f"{API}/invoices/{ids['invoices']}/send")
            assert s.status == 200 and s.body["status"] == "sent", s
    # For the routes of webhooks and jobs (tests/http/test_webhooks.py tests them with a
    # receiver): a subscription that sends nothing (disabled), an inbound endpoint, and
    # a job id no job has (its routes answer 404 once past the permission and allowlist).
    r = admin.post(f"{API}/webhooks", {"url": "https://hooks.example.com/bulwark",
                                       "event_types": ["roles.deleted"], "enabled": False})
    assert r.status == 201, r
    ids["webhooks"] = r.body["id"]
    r = admin.post(f"{API}/hook-endpoints", {"provider": "stripe", "secret": "whsec_rows"})
    assert r.status == 201, r
    ids["hook-endpoints"] = r.body["id"]
    ids["jobs"] = 999999
    return ids


# --- a snapshot of a tenant's data -----------------------------------------------------

# Columns that legitimately change with any request (sign-in bookkeeping).
IGNORED = {
    "sessions": None,              # whole table: last_seen_at moves on every request
    "auth_events": None,
    "login_attempts": None,        # failed sign-ins of unknown addresses
    "login_attempts_key": None,    # made at the first of them
    "api_tokens": {"last_used_at"},
    "users": {"last_login_at", "last_seen_at", "failed_logins", "locked_until", "updated_at"},
    "schema_migrations": None,
    # Rewritten with fresh ids when a role's permissions are set (same content).
    "role_permissions": {"id"},
    # A role's version moves with each change of it, as updated_at does; what it
    # holds is compared in roles and role_permissions (tests that a refused change
    # left the version alone check it themselves: test_concurrency.py).
    "roles": {"updated_at", "version"},
    # The job runner marks events dispatched and holds lanes in the background
    # (src/webhooks/deliver.c); which events exist is still compared.
    "events": {"dispatched"},
    "job_lanes": None,
    # The notices of ticket work follow the events in the background too
    # (src/notify/notify.c): its cursor, the mails it queues and their jobs
    # change after a snapshot is taken. What they come from, the events, is
    # compared, so a refused change still shows if it queued a notice.
    "notify_cursor": None,
    "mail_outbox": None,
}
# Rows written in the background, left out of a table that is compared.
IGNORED_ROWS = {"jobs": "kind <> 'mail.send'"}


def _tables(srv, slug):
    if DRIVER == "mariadb":
        rows = mariadb_root(
            "SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.COLUMNS WHERE"
            f" TABLE_SCHEMA = 'saas_tenant_{slug}' ORDER BY TABLE_NAME, ORDINAL_POSITION")
    else:
        rows = []
        for (t,) in tenant_sql(srv, slug, "SELECT name FROM sqlite_master WHERE type = 'table'"
                               " AND name NOT LIKE 'sqlite_%'"):
            rows += [(t, c[1]) for c in tenant_sql(srv, slug, f"PRAGMA table_info({t})")]
    cols = {}
    for t, c in rows:
        cols.setdefault(t, []).append(c)
    return cols


def snapshot(srv, slug, skip=()):
    """Every table's rows (minus IGNORED and the tables in skip) as {table:
    sorted rows}: two snapshots compare equal when nothing was written."""
    cols = _tables(srv, slug)
    queries = []
    for t, cs in sorted(cols.items()):
        if (t in IGNORED and IGNORED[t] is None) or t in skip:
            continue
        keep = [c for c in cs if c not in (IGNORED.get(t) or ())]
        where = f" WHERE {IGNORED_ROWS[t]}" if t in IGNORED_ROWS else ""
        queries.append((t, f"SELECT {', '.join(keep)} FROM {t}{where}"))
    snap = {}
    if DRIVER == "mariadb":
        # One mariadb process for all tables: a marker line before each.
        sql = "; ".join(f"SELECT '#T {t}'; {q}" for t, q in queries)
        out = subprocess.run(
            ["mariadb", "--no-defaults", "-S", MARIADB_SOCKET, "-uroot", "-N", "-B",
             f"saas_tenant_{slug}", "-e", sql],
            capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
        assert out.returncode == 0, out.stderr
        cur = None
        for line in out.stdout.decode(errors="replace").splitlines():
            if line.startswith("#T "):
                cur = line[3:]
                snap[cur] = []
            else:
                snap[cur].append(line)
        for t in snap:
            snap[t].sort()
        return snap
    path = srv.var / "tenants" / f"{slug}.db"
    with contextlib.closing(sqlite3.connect(path, timeout=10)) as db:
        for t, q in queries:
            snap[t] = sorted(repr(tuple(r)) for r in db.execute(q))
    return snap


def snapshot_diff(a, b):
    """A readable description of what differs between two snapshots, or ''."""
    out = []
    for t in sorted(set(a) | set(b)):
        ra, rb = set(a.get(t, [])), set(b.get(t, []))
        if ra != rb:
            short = lambda rows: [r[:300] for r in sorted(rows)[:5]]  # noqa: E731
            out.append(f"{t}: gone {short(ra - rb)} new {short(rb - ra)}")
    return "\n".join(out)


def fill(pattern, ids):
    """pattern with :id replaced by ids[module of the pattern]."""
    seg = pattern.split("/")
    if ":id" not in seg:
        return pattern
    owner = seg[seg.index(":id") - 1]
    return pattern.replace(":id", str(ids[owner]))


def race(fns):
    """Run the callables at the same moment (threads behind a barrier) -> results."""
    out = [None] * len(fns)
    bar = threading.Barrier(len(fns))

    def run(i):
        bar.wait()
        out[i] = fns[i]()
    ts = [threading.Thread(target=run, args=(i,)) for i in range(len(fns))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return out


class Env:
    """A tenant to test against: its admin (an API token scoped "*"), the
    module metadata and one row of every module (ids: module -> id)."""

    def __init__(self, srv, prefix, marker_prefix):
        self.srv = srv
        self.account = make_tenant(srv, prefix)
        self.slug = self.account.slug
        self.admin = admin_client(srv, self.account)
        self.admin_id = self.admin.ok("GET", f"{API}/me")["user"]["id"]
        self.meta = modules_meta(self.admin)
        self.marker = marker_prefix + secrets.token_hex(4)
        self.ids = make_rows(self.admin, self.meta, self.marker, self.admin_id)
