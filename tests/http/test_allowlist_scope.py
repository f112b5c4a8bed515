"""What the admin IP allowlist guards, generated from `bulwark routes`
(docs/adr/0011-allowlist-scope.md, docs/auth.md "Admin IP allowlist").

The set of routes that must be guarded is derived here from each route's
method and permission name alone (must_guard), never from its flags or
from the class `bulwark routes` prints: removing a flag, marking an action
routine or breaking router_guard makes a route of that set answer from off
the list, and the sweep fails.

One server, one tenant with a row of every module. The list holds
127.0.0.1; the same admin's session cookie and `*` API token used from
127.0.0.2 play the stolen credentials. Every refused batch is bracketed by
snapshots of the tenant's database: a refusal changes nothing.
"""

import pytest

from conftest import _servers
from psa import API, MUTATING, Client, Env, check_forbidden, new_role, new_user, route_table, \
    snapshot, snapshot_diff
from test_identity import login
from test_rbac import body_for

MANY = 100000
ON, OFF = "127.0.0.1", "127.0.0.2"
ALLOWLIST = f"{API}/settings/allowlist"

# The decision of ADR 0011, written out independently of the server's code.
SYSTEM_SCOPES = {"self", "users", "roles", "settings", "audit"}
RECORD_VERBS = {"view", "create", "edit", "delete", "export"}
# Module actions that are ordinary record work: held to the list only when
# the tenant guards every change. Any other action, including one added
# later, must be guarded.
ROUTINE_ACTIONS = {"tickets.assign", "estimates.accept", "estimates.decline"}
# Changes never held to the list: signing out and the MFA code after sign-in
# (sign-in itself is public, before any session exists).
SIGN_IN_OUT = {("POST", f"{API}/auth/logout"), ("POST", f"{API}/auth/mfa")}
# A few the rule must cover, so that the rule itself cannot quietly shrink.
ANCHORS = {
    ("POST", f"{API}/auth/tokens"), ("DELETE", f"{API}/auth/tokens/:id"),
    ("POST", f"{API}/auth/password"), ("POST", f"{API}/auth/mfa/enrol"),
    ("POST", f"{API}/auth/mfa/enrol/confirm"), ("POST", f"{API}/auth/mfa/disable"),
    ("POST", f"{API}/auth/mfa/recovery-codes"), ("PUT", f"{API}/settings/security"),
    ("PUT", ALLOWLIST), ("GET", ALLOWLIST), ("POST", f"{API}/users"),
    ("PATCH", f"{API}/users/:id"), ("POST", f"{API}/roles"), ("PATCH", f"{API}/roles/:id"),
    ("POST", f"{API}/users/:id/unlock"), ("POST", f"{API}/users/:id/sessions/end"),
    ("GET", f"{API}/reporting/audit"), ("GET", f"{API}/customers/export"),
    ("POST", f"{API}/invoices/:id/send"), ("POST", f"{API}/invoices/:id/void"),
    ("POST", f"{API}/estimates/:id/send"),
    ("POST", f"{API}/network_devices/:id/reveal_credential"),
    ("DELETE", f"{API}/customers/:id"), ("GET", f"{API}/customers/:id/audit"),
}


def must_guard(r):
    """Refused off the list whenever the list has entries."""
    scope, _, verb = (r["permission"] or "").partition(".")
    return (r["method"] == "DELETE"
            or scope in ("settings", "audit")
            or (scope in ("users", "roles") and verb != "view")
            or (scope == "self" and verb in ("tokens", "mfa", "password"))
            or verb == "export"
            or (scope not in SYSTEM_SCOPES and verb not in RECORD_VERBS
                and r["permission"] not in ROUTINE_ACTIONS))


def is_change(r):
    return r["method"] in MUTATING and (r["method"], r["pattern"]) not in SIGN_IN_OUT


def refused_by_allowlist(reply):
    return reply.status == 403 and isinstance(reply.body, dict) and \
        "allowlist" in reply.body.get("error", {}).get("message", "")


def fill_all(pattern, ids):
    """Every :param of pattern: :id from ids (by the segment before it), others 1."""
    seg = pattern.split("/")
    for i, s in enumerate(seg):
        if s == ":id":
            seg[i] = str(ids[seg[i - 1]])
        elif s.startswith(":"):
            seg[i] = "1"
    return "/".join(seg)


@pytest.fixture(scope="module")
def srv(tmp_path_factory, tls_cert):
    with _servers(tmp_path_factory, tls_cert) as make:
        yield make(login_rate_per_minute=MANY).start()


@pytest.fixture(scope="module")
def routes():
    return [r for r in route_table() if "public" not in r["flags"]]


@pytest.fixture(scope="module")
def env(srv):
    e = Env(srv, "alsc", "AS")
    e.ids["users"], _ = new_user(e.admin, ["staff"], "victim")
    e.ids["roles"], _ = new_role(e.admin, ["customers.view"])
    e.ids["tokens"] = e.admin.ok("POST", f"{API}/auth/tokens",
                                 {"name": "spare", "scopes": ["self.view"],
                                  "password": e.account.password})["id"]
    e.token = e.admin.token
    # The same admin's credentials, from off the list.
    e.off = [Client(srv, e.slug, session=login(srv, e.account), source=OFF),
             Client(srv, e.slug, token=e.token, source=OFF)]
    e.admin.ok("PUT", ALLOWLIST, {"entries": [{"cidr": f"{ON}/32", "label": "office"}],
                                  "guard_all_changes": False})
    return e


def body(env, r):
    """A body that would be valid (test_rbac's), or none rather than {}: some
    routes take none, and a body there is refused as too large before the
    allowlist stage."""
    return body_for(env, r) or None


def sweep(env, clients, rs):
    """Each route with each client -> {(who, method, path): reply}."""
    out = {}
    for r in rs:
        path = fill_all(r["pattern"], env.ids)
        for c in clients:
            who = "session" if c.session else "token"
            out[(who, r["method"], path)] = c.request(r["method"], path, body=body(env, r))
    return out


def refused_unchanged(env, rs):
    """Every route in rs, with the off-list session and token, is refused by
    the allowlist, and the tenant's database is as it was."""
    before = snapshot(env.srv, env.slug)
    replies = sweep(env, env.off, rs)
    after = snapshot(env.srv, env.slug)
    bad = [f"{k}: {v}" for k, v in replies.items() if not refused_by_allowlist(v)]
    assert not bad, "answered from off the list:\n" + "\n".join(bad)
    for v in replies.values():
        check_forbidden(v)
    assert before == after, snapshot_diff(before, after)


def test_the_rule_and_the_printed_class_agree(routes):
    keys = {(r["method"], r["pattern"]) for r in routes if must_guard(r)}
    assert ANCHORS <= keys, ANCHORS - keys
    for r in routes:
        want = "always" if must_guard(r) else "changes" if is_change(r) else "never"
        assert r["allowlist"] == want, r
    # What stays reachable: sign-in and out, /me, the MFA code, plain reads.
    never = {(r["method"], r["pattern"]) for r in routes if r["allowlist"] == "never"}
    assert SIGN_IN_OUT | {("GET", f"{API}/me"), ("GET", f"{API}/customers/:id"),
                          ("GET", f"{API}/customers")} <= never


def test_off_the_list(env, routes):
    """Guarded routes refused off the list, for a session and a `*` token;
    with guard_all_changes every change; reads stay reachable."""
    guarded = [r for r in routes if must_guard(r)]
    reads = [r for r in routes if r["method"] == "GET" and not must_guard(r)]
    assert len(guarded) > 70 and len(reads) > 30, (len(guarded), len(reads))

    # 1. The list alone: every guarded route refused, nothing written.
    refused_unchanged(env, guarded)
    for k, v in sweep(env, env.off, reads).items():
        assert v.status == 200, (k, v)

    # 2. guard_all_changes: every change but signing out and the MFA code.
    got = env.admin.ok("PUT", ALLOWLIST, {"entries": [{"cidr": f"{ON}/32", "label": "office"}],
                                          "guard_all_changes": True})
    assert got["guard_all_changes"] is True
    assert env.admin.ok("GET", ALLOWLIST)["guard_all_changes"] is True
    refused_unchanged(env, [r for r in routes if must_guard(r) or is_change(r)])
    for k, v in sweep(env, env.off, reads).items():
        assert v.status == 200, (k, v)
    # The setting is kept when a later PUT leaves it out.
    env.admin.ok("PUT", ALLOWLIST, {"entries": [{"cidr": f"{ON}/32", "label": "office"}]})
    assert env.admin.ok("GET", ALLOWLIST)["guard_all_changes"] is True
    r = env.admin.request("PUT", ALLOWLIST, {"entries": [], "guard_all_changes": "yes"})
    assert r.status == 400, r
    # The MFA code and signing out still answer (not with the allowlist's refusal).
    mfa = env.off[0].request("POST", f"{API}/auth/mfa", body={"code": "000000"})
    assert not refused_by_allowlist(mfa), mfa
    leaving = Client(env.srv, env.slug, session=login(env.srv, env.account), source=OFF)
    assert leaving.request("POST", f"{API}/auth/logout").status == 200

    # 3. guard_all_changes off: the other changes go through from off the list
    # (they may fail on their own terms, never on the allowlist's). Ending
    # one's other sessions last: it signs out every other session.
    env.admin.ok("PUT", ALLOWLIST, {"entries": [{"cidr": f"{ON}/32", "label": "office"}],
                                    "guard_all_changes": False})
    rest = sorted((r for r in routes if is_change(r) and not must_guard(r)),
                  key=lambda r: r["pattern"].endswith("/end-others"))
    for k, v in sweep(env, env.off, rest).items():
        assert not refused_by_allowlist(v), (k, v)


def test_on_the_list_the_allowlist_does_not_refuse(env, routes, srv):
    """The same requests from the listed address pass the allowlist stage
    (with guard_all_changes on, so that every change is checked). Deletes
    come last, so that the rows they remove have been used."""
    env.admin.ok("PUT", ALLOWLIST, {"entries": [{"cidr": f"{ON}/32", "label": "office"}],
                                    "guard_all_changes": True})
    on = [Client(srv, env.slug, session=login(srv, env.account), source=ON),
          Client(srv, env.slug, token=env.token, source=ON)]
    rs = sorted((r for r in routes if must_guard(r) or is_change(r)),
                key=lambda r: (r["method"] == "DELETE", r["pattern"].endswith("/end-others")))
    for k, v in sweep(env, on, rs).items():
        assert not refused_by_allowlist(v), (k, v)
    # Still on: nothing above took the admin's own access away.
    assert on[1].ok("GET", ALLOWLIST)["guard_all_changes"] is True
    env.admin.ok("PUT", ALLOWLIST, {"entries": [], "guard_all_changes": False})
