"""RBAC end to end: generated from `bulwark routes`, so that a route cannot
ship unprotected, and the guards around roles and users.

One server for the module; one tenant whose admin made (through the API)
one row per module, a victim user and a spare custom role, so that every
":id" in a pattern names a real row and a 403 is never a 404 in disguise.

The permission sweep uses one user holding one custom role R: for each
permission P (not self.*) R is set to "everything grantable but P" and
every route needing P is requested; a role change counts from the next
request, so no second user or sign-in is needed. The tenant's rows are
snapshot before and after the whole sweep (R restored): a refused request
must change nothing.
"""

import secrets

import pytest

from conftest import _servers, check_error_body
from test_identity import sql_one
from psa import (API, Env, MUTATING, PASSWORD, Client, admin_client, check_error, check_forbidden,
                 fill, is_public, make_rows, make_tenant, modules_meta, new_role, new_user,
                 route_table, sign_in, snapshot, snapshot_diff, update_body, valid_body, race)

MANY = 100000


@pytest.fixture(scope="module")
def srv(tmp_path_factory, tls_cert):
    with _servers(tmp_path_factory, tls_cert) as make:
        yield make(login_rate_per_minute=MANY).start()


@pytest.fixture(scope="module")
def routes():
    return route_table()


@pytest.fixture(scope="module")
def env(srv):
    e = Env(srv, "rbac", "RB")
    perms = e.admin.ok("GET", f"{API}/meta/permissions")["permissions"]
    e.all_perms = sorted(p["permission"] for p in perms)
    e.grantable = [p for p in e.all_perms if not p.startswith("self.")]
    e.ids["users"], _ = new_user(e.admin, ["staff"], "victim")
    e.ids["roles"], _ = new_role(e.admin, ["customers.view"])
    e.ids["tokens"] = 1
    e.role_users = {}
    return e


def role_user(env, role):
    """A signed-in user (session) holding one built-in role, made once."""
    if role not in env.role_users:
        _, email = new_user(env.admin, [role], f"{role}-{secrets.token_hex(2)}")
        env.role_users[role] = sign_in(env.srv, env.slug, email)
    return env.role_users[role]


def body_for(env, route):
    """A body that would be valid for the route (so only the permission refuses it)."""
    method, pat, mod = route["method"], route["pattern"], route["module"]
    if method in ("GET", "DELETE"):
        return None
    if mod is not None:
        if pat == f"{API}/{mod}":
            return valid_body(env.meta, mod, env.ids, env.marker + "x")
        if pat == f"{API}/{mod}/:id":
            return update_body(env.meta, mod, env.marker)
        if pat.endswith("/assign"):
            return {"assignee_id": env.admin_id}
        return {}
    if pat == f"{API}/roles":
        return {"name": f"new-{secrets.token_hex(3)}", "permissions": ["customers.view"]}
    if pat == f"{API}/roles/:id":
        return {"description": "changed", "permissions": ["customers.view", "customers.edit"]}
    if pat == f"{API}/users":
        return {"email": f"n-{secrets.token_hex(3)}@{env.slug}.example.com",
                "password": PASSWORD, "roles": ["admin"]}
    if pat == f"{API}/users/:id":
        return {"roles": ["admin"], "disabled": True}
    if pat.endswith("/sessions/end") or pat.endswith("/unlock") or \
            pat.endswith("/redeliver") or pat.startswith(f"{API}/jobs/"):
        return None  # these take no body
    if pat == f"{API}/webhooks":
        return {"url": "https://hooks.example.com/rbac", "event_types": ["roles.deleted"],
                "enabled": False}
    if pat == f"{API}/hook-endpoints":
        return {"provider": "stripe", "secret": "whsec_rbac"}
    if pat.endswith("/allowlist"):
        return {"entries": [{"cidr": "192.0.2.0/24", "label": "x"}]}
    return {}


def protected(routes):
    return [r for r in routes if not is_public(r)]


# --- 1a. every route that is not public needs a permission ----------------------------

def test_every_route_has_a_permission(routes, env):
    bare = [f"{r['method']} {r['pattern']}" for r in protected(routes) if not r["permission"]]
    assert not bare, f"routes without a permission: {bare}"
    # Every permission a route checks is in the catalogue the roles API accepts.
    missing = {r["permission"] for r in protected(routes)} - set(env.all_perms)
    assert not missing, missing
    # Public routes are the few that must be: sign-in, health and the API's description.
    public = sorted(f"{r['method']} {r['pattern']}" for r in routes if is_public(r))
    # And what providers post, signed (Stripe, QuickBooks, Standard Webhooks senders).
    assert public == ["GET /api/v1/openapi.json", "GET /api/v1/tenant/health", "GET /healthz",
                      "GET /saml/login", "GET /saml/metadata",
                      "POST /api/v1/auth/login", "POST /api/v1/auth/password-reset",
                      "POST /api/v1/auth/password-reset/confirm",
                      "POST /api/v1/hooks/:provider/:endpoint",
                      "POST /saml/acs"], public
    # Module routes are named by their module's permissions, but for a row's
    # audit trail, which is the audit log's (audit.view).
    for r in routes:
        if r["module"] and r["pattern"].endswith("/:id/audit"):
            assert r["permission"] == "audit.view" and r["method"] == "GET", r
        elif r["module"]:
            assert r["permission"].startswith(r["module"] + "."), r


# --- 1b. all but one permission: every route needing it is refused, nothing changes ---

def test_all_but_one_permission(routes, env):
    admin = env.admin
    role_id, role_name = new_role(admin, env.grantable)
    uid, email = new_user(admin, [role_name], "sweeper")
    user = sign_in(env.srv, env.slug, email)
    by_perm = {}
    for r in protected(routes):
        if not r["permission"].startswith("self."):
            by_perm.setdefault(r["permission"], []).append(r)
    assert len(by_perm) > 90, sorted(by_perm)
    assert set(by_perm) <= set(env.grantable)

    # The admin's changes of R are audited: the audit tables are compared
    # apart, by who wrote them.
    before = snapshot(env.srv, env.slug, skip=("audit_log", "audit_head", "events"))
    failures = []
    for perm, rs in sorted(by_perm.items()):
        admin.ok("PATCH", f"{API}/roles/{role_id}",
                 {"permissions": [p for p in env.grantable if p != perm]})
        for r in rs:
            path = fill(r["pattern"], env.ids)
            reply = user.request(r["method"], path, body=body_for(env, r))
            try:
                check_forbidden(reply)
                assert perm in reply.body["error"]["message"], reply.body
            except AssertionError:
                failures.append(f"{r['method']} {path} without {perm}: {reply}")
    admin.ok("PATCH", f"{API}/roles/{role_id}", {"permissions": env.grantable})
    after = snapshot(env.srv, env.slug, skip=("audit_log", "audit_head", "events"))
    assert not failures, "\n".join(failures)
    assert before == after, snapshot_diff(before, after)
    # The sweeper's one audit row is its sign-in: no refused request wrote any.
    assert sql_one(env.srv, env.slug,
                   f"SELECT COUNT(*) FROM audit_log WHERE user_id = {uid}"
                   " AND NOT (entity = 'auth' AND action = 'login')") == "0"

    # The positive side: with every permission back, the same requests pass
    # the permission stage (every GET, and a sample of changes).
    # (A user's tokens are shown only to someone holding all that user
    # holds, and the row's user is the admin: see test_reauth.py.)
    sample = [r for r in protected(routes) if r["method"] == "GET"
              and not r["permission"].startswith("self.")
              and r["pattern"] != f"{API}/users/:id/tokens"]
    for r in sample:
        reply = user.request("GET", fill(r["pattern"], env.ids))
        assert reply.status == 200, (r, reply)
    for method, pat in (("POST", f"{API}/customers"), ("PATCH", f"{API}/customers/:id"),
                        ("POST", f"{API}/tickets/:id/assign"), ("POST", f"{API}/roles"),
                        ("POST", f"{API}/kb_articles")):
        r = next(x for x in routes if (x["method"], x["pattern"]) == (method, pat))
        reply = user.request(method, fill(pat, env.ids), body=body_for(env, r))
        assert reply.status in (200, 201), (method, pat, reply)


# --- 1c. read_only: every change refused, nothing changes; lists readable --------------

def test_read_only_role(routes, env):
    ro = role_user(env, "read_only")
    before = snapshot(env.srv, env.slug)
    failures = []
    for r in protected(routes):
        if r["method"] not in MUTATING:
            continue
        if r["permission"].startswith("self."):
            continue  # one's own session, password, tokens, MFA
        path = fill(r["pattern"], env.ids)
        reply = ro.request(r["method"], path, body=body_for(env, r))
        if reply.status != 403:
            failures.append(f"{r['method']} {path}: {reply}")
    after = snapshot(env.srv, env.slug)
    assert not failures, "\n".join(failures)
    assert before == after, snapshot_diff(before, after)
    # Whatever is left out above acts on one's own account only.
    for r in protected(routes):
        if r["method"] in MUTATING and r["permission"].startswith("self."):
            assert r["module"] is None and r["pattern"].startswith(f"{API}/auth/"), r
    for name in env.meta:
        reply = ro.get(f"{API}/{name}")
        assert reply.status == 200 and reply.body["data"], (name, reply)
        check_forbidden(ro.get(f"{API}/{name}/export?format=csv"))
    check_forbidden(ro.get(f"{API}/users"))
    check_forbidden(ro.get(f"{API}/roles"))
    reply = ro.post(f"{API}/network_devices/{env.ids['network_devices']}/reveal_credential")
    check_forbidden(reply)
    assert env.marker.encode() not in reply.raw


# --- 1d. built-in roles: what they list is what they get, and their documented jobs ---

def test_builtin_roles_enforce_what_they_list(routes, env):
    """For every built-in role and every GET route: 403 exactly when the role's
    permission list (GET /api/v1/roles) does not hold the route's permission."""
    roles = {r["builtin_key"]: r for r in env.admin.ok("GET", f"{API}/roles?limit=100")["data"]
             if r["builtin"]}
    assert set(roles) == {"admin", "staff", "billing", "sales", "dispatch", "read_only"}, roles
    assert set(roles["admin"]["permissions"]) == set(env.grantable)
    failures = []
    for key in ("staff", "billing", "sales", "dispatch", "read_only"):
        c = role_user(env, key)
        held = set(roles[key]["permissions"])
        for r in protected(routes):
            if r["method"] != "GET" or r["permission"].startswith("self."):
                continue
            reply = c.get(fill(r["pattern"], env.ids))
            want = 200 if r["permission"] in held else 403
            if reply.status != want:
                failures.append(f"{key}: GET {r['pattern']} ({r['permission']}) -> "
                                f"{reply.status}, expected {want}")
    assert not failures, "\n".join(failures)


def test_builtin_role_capabilities(env):
    ids, meta, m = env.ids, env.meta, env.marker
    billing, dispatch = role_user(env, "billing"), role_user(env, "dispatch")
    staff, sales = role_user(env, "staff"), role_user(env, "sales")

    r = billing.post(f"{API}/invoices", valid_body(meta, "invoices", ids, m))
    assert r.status == 201, r
    check_forbidden(billing.post(f"{API}/tickets", valid_body(meta, "tickets", ids, m)))

    r = dispatch.post(f"{API}/tickets", valid_body(meta, "tickets", ids, m))
    assert r.status == 201, r
    t = r.body["id"]
    r = dispatch.post(f"{API}/tickets/{t}/assign", {"assignee_id": env.admin_id})
    assert r.status == 200 and r.body["assignee_id"] == env.admin_id, r
    check_forbidden(dispatch.post(f"{API}/invoices", valid_body(meta, "invoices", ids, m)))

    cust = staff.post(f"{API}/customers", valid_body(meta, "customers", ids, m))
    assert cust.status == 201, cust
    check_forbidden(staff.delete(f"{API}/customers/{cust.body['id']}"))
    assert env.admin.get(f"{API}/customers/{cust.body['id']}").status == 200

    r = sales.post(f"{API}/estimates", valid_body(meta, "estimates", ids, m))
    assert r.status == 201, r
    draft = env.admin.ok("POST", f"{API}/invoices", valid_body(meta, "invoices", ids, m))
    check_forbidden(sales.post(f"{API}/invoices/{draft['id']}/void"))
    assert env.admin.ok("GET", f"{API}/invoices/{draft['id']}")["status"] == "draft"


# --- 1e. role changes count from the very next request (sessions and tokens) ---------

def test_role_change_takes_effect_at_once(env):
    admin = env.admin
    role_id, name = new_role(admin, ["customers.view", "customers.create"])
    _, email = new_user(admin, [name])
    user = sign_in(env.srv, env.slug, email)
    tok = user.ok("POST", f"{API}/auth/tokens",
                  {"name": "t", "scopes": ["customers.view"], "password": PASSWORD},
                  status=201)["token"]
    bearer = Client(env.srv, env.slug, token=tok)
    # A token never holds more than its owner: "*" is refused.
    check_forbidden(user.post(f"{API}/auth/tokens",
                              {"name": "all", "scopes": ["*"], "password": PASSWORD}))

    for c in (user, bearer):
        assert c.get(f"{API}/customers").status == 200
    admin.ok("PATCH", f"{API}/roles/{role_id}", {"permissions": ["customers.create"]})
    for c in (user, bearer):
        check_forbidden(c.get(f"{API}/customers"))
    admin.ok("PATCH", f"{API}/roles/{role_id}",
             {"permissions": ["customers.view", "customers.create"]})
    for c in (user, bearer):
        assert c.get(f"{API}/customers").status == 200

    # A "*" token of an admin is limited to what its owner holds now.
    aid, aemail = new_user(admin, ["admin"])
    a2 = sign_in(env.srv, env.slug, aemail)
    star = Client(env.srv, env.slug, token=a2.ok(
        "POST", f"{API}/auth/tokens", {"name": "star", "scopes": ["*"], "password": PASSWORD},
        status=201)["token"])
    assert star.get(f"{API}/invoices").status == 200
    admin.ok("PATCH", f"{API}/users/{aid}", {"roles": [name]})
    check_forbidden(star.get(f"{API}/invoices"))
    check_forbidden(star.post(f"{API}/roles", {"name": "sneaky", "permissions": []}))
    assert star.get(f"{API}/customers").status == 200
    admin.ok("PATCH", f"{API}/users/{aid}", {"roles": ["admin"]})
    assert star.get(f"{API}/invoices").status == 200


# --- 1f. escalation guards -------------------------------------------------------------

def test_no_granting_what_you_do_not_hold(env):
    admin = env.admin
    _, delegate_role = new_role(admin, ["roles.view", "roles.create", "roles.edit", "users.view",
                                        "users.edit", "customers.view", "invoices.view"])
    gid, gemail = new_user(admin, [delegate_role])
    g = sign_in(env.srv, env.slug, gemail)
    _, voider = new_role(admin, ["invoices.void"])
    before = snapshot(env.srv, env.slug)

    r = g.post(f"{API}/roles", {"name": "escalate", "permissions": ["invoices.void"]})
    check_forbidden(r)
    assert "invoices.void" in r.body["error"]["message"], r.body
    check_forbidden(g.post(f"{API}/roles", {"name": "esc2",
                                            "permissions": ["customers.view", "users.create"]}))
    check_forbidden(g.patch(f"{API}/roles/{env.ids['roles']}",
                            {"permissions": ["customers.view", "invoices.void"]}))
    # Roles: not the admin role, nor a custom role with more than one holds.
    for target in (gid, env.ids["users"]):
        check_forbidden(g.patch(f"{API}/users/{target}", {"roles": ["admin"]}))
        check_forbidden(g.patch(f"{API}/users/{target}", {"roles": [delegate_role, voider]}))
        check_forbidden(g.patch(f"{API}/users/{target}", {"roles": ["billing"]}))
    after = snapshot(env.srv, env.slug)
    assert before == after, snapshot_diff(before, after)
    # What it holds it may hand out.
    r = g.post(f"{API}/roles", {"name": f"ok-{secrets.token_hex(2)}",
                                "permissions": ["customers.view"]})
    assert r.status == 201, r

    # Nobody, not even an admin, makes a role of "*" or of self.* permissions.
    for perms in (["*"], ["self.view"], ["customers.view", "self.tokens"], ["customers.*"],
                  ["no.such"], "customers.view"):
        r = admin.post(f"{API}/roles", {"name": f"bad-{secrets.token_hex(2)}",
                                        "permissions": perms})
        check_error(r, 400, "invalid", "permissions")
        r = admin.patch(f"{API}/roles/{env.ids['roles']}", {"permissions": perms})
        check_error(r, 400, "invalid", "permissions")
    assert admin.ok("GET", f"{API}/roles/{env.ids['roles']}")["permissions"] == ["customers.view"]


# --- 1g. last admin, built-in roles, roles in use ----------------------------------------

def test_last_admin_and_role_guards(srv):
    account = make_tenant(srv, "last")
    admin = admin_client(srv, account)
    me = admin.ok("GET", f"{API}/me")["user"]["id"]
    roles = {r["name"]: r for r in admin.ok("GET", f"{API}/roles?limit=100")["data"]}
    rid, rname = new_role(admin, ["customers.view"])
    new_user(admin, [rname])
    before = snapshot(srv, account.slug)

    check_error(admin.patch(f"{API}/users/{me}", {"roles": ["staff"]}), 409, "conflict")
    check_error(admin.patch(f"{API}/users/{me}", {"roles": []}), 409, "conflict")
    check_error(admin.patch(f"{API}/users/{me}", {"disabled": True}), 409, "conflict")
    check_error(admin.delete(f"{API}/users/{me}"), 409, "conflict")
    for r in roles.values():
        assert r["builtin"], r
        check_error(admin.patch(f"{API}/roles/{r['id']}", {"description": "mine now"}),
                    409, "conflict")
        check_error(admin.patch(f"{API}/roles/{r['id']}", {"permissions": ["customers.view"]}),
                    409, "conflict")
        check_error(admin.delete(f"{API}/roles/{r['id']}"), 409, "conflict")
    check_error(admin.delete(f"{API}/roles/{rid}"), 409, "conflict")
    after = snapshot(srv, account.slug)
    assert before == after, snapshot_diff(before, after)
    assert admin.get(f"{API}/me").status == 200

    # With a second admin, the first may step down.
    aid, _ = new_user(admin, ["admin"])
    assert admin.patch(f"{API}/users/{aid}", {"disabled": True}).status == 200
    check_error(admin.patch(f"{API}/users/{me}", {"roles": ["staff"]}), 409, "conflict")


# --- 1h. a disabled user is signed out at once --------------------------------------------

def test_disabled_user_signed_out_at_once(env):
    uid, email = new_user(env.admin, ["staff"])
    u = sign_in(env.srv, env.slug, email)
    tok = u.ok("POST", f"{API}/auth/tokens",
               {"name": "t", "scopes": ["customers.view"], "password": PASSWORD},
               status=201)["token"]
    bearer = Client(env.srv, env.slug, token=tok)
    assert u.get(f"{API}/customers").status == 200
    assert bearer.get(f"{API}/customers").status == 200
    env.admin.ok("PATCH", f"{API}/users/{uid}", {"disabled": True})
    check_error_body(u.get(f"{API}/customers"), 401, "unauthorized")
    check_error_body(u.get(f"{API}/me"), 401, "unauthorized")
    check_error_body(bearer.get(f"{API}/customers"), 401, "unauthorized")
    r = Client(env.srv, env.slug).post(f"{API}/auth/login", {"email": email, "password": PASSWORD})
    check_error_body(r, 401, "unauthorized")
    env.admin.ok("PATCH", f"{API}/users/{uid}", {"disabled": False})
    check_error_body(u.get(f"{API}/me"), 401, "unauthorized")  # the session stays ended
    assert sign_in(env.srv, env.slug, email).get(f"{API}/customers").status == 200


# --- tokens delegate no more than their scopes ---------------------------------------------

def test_scoped_token_cannot_grant_beyond_its_scopes(env):
    """An admin's token scoped to users.create (or roles.create / users.edit)
    must not hand out permissions the token itself does not carry: the same
    rule POST /api/v1/auth/tokens applies to tokens minting tokens. Otherwise
    a narrow token (say, for a provisioning script) makes a full admin."""
    admin, srv, slug = env.admin, env.srv, env.slug

    def scoped(*scopes):
        return Client(srv, slug, token=admin.ok("POST", f"{API}/auth/tokens",
                                                {"name": "narrow", "scopes": list(scopes),
                                                 "password": PASSWORD},
                                                status=201)["token"])

    victim, _ = new_user(admin, ["read_only"])
    before = snapshot(srv, slug)
    email = f"provisioned-{secrets.token_hex(3)}@{slug}.example.com"
    r = scoped("users.create").post(f"{API}/users", {"email": email, "password": PASSWORD,
                                                     "roles": ["admin"]})
    r2 = scoped("users.edit").patch(f"{API}/users/{victim}", {"roles": ["admin"]})
    r3 = scoped("roles.create").post(f"{API}/roles", {"name": f"esc-{secrets.token_hex(2)}",
                                                      "permissions": ["invoices.void"]})
    # Minting the narrow tokens writes token rows and their audit rows: left out.
    minted = ("api_tokens", "audit_log", "audit_head", "events")
    after = snapshot(srv, slug, skip=minted)
    assert [x.status for x in (r, r2, r3)] == [403, 403, 403], \
        f"a narrow token granted more than it carries:\n{r}\n{r2}\n{r3}"
    for x in (r, r2, r3):
        check_forbidden(x)
    assert {k: v for k, v in before.items() if k not in minted} == after, \
        snapshot_diff(before, after)


# --- CSRF on module routes; what the users API shows -----------------------------------------

def test_module_changes_need_the_tenants_origin(env):
    staff = role_user(env, "staff")
    n = sql_one(env.srv, env.slug, "SELECT COUNT(*) FROM customers")
    body = valid_body(env.meta, "customers", env.ids, "csrf")
    c = Client(env.srv, env.slug, session=staff.session)
    for h in ({"Origin": "https://evil.example"}, {"Origin": None},
              {"Origin": None, "Referer": "https://evil.example/x"},
              {"Origin": f"https://{env.srv.tenant_host(env.slug)}.evil.example"}):
        check_forbidden(c.request("POST", f"{API}/customers", body=body, headers=h))
        check_forbidden(c.request("DELETE", f"{API}/customers/{env.ids['customers']}",
                                  headers=h))
    assert c.request("POST", f"{API}/customers", body=body).status == 201
    n = str(int(n) + 1)
    assert sql_one(env.srv, env.slug, "SELECT COUNT(*) FROM customers") == n


def test_users_api_shows_no_secrets(env):
    r = env.admin.get(f"{API}/users?limit=100")
    assert r.status == 200 and r.body["data"], r
    for u in r.body["data"]:
        assert set(u) == {"id", "version", "email", "name", "disabled", "mfa_enabled",
                          "locked_until", "must_change_password", "created_at", "roles",
                          "sso_exempt", "sso_provisioned"}, u
    assert b"argon2" not in r.raw and b"password_hash" not in r.raw and b"mfa_secret" not in r.raw


# --- nobody manages a user more powerful than themselves; role names ignore case ------

def test_users_managed_only_by_someone_who_holds_as_much(env):
    """A user with users.edit and users.delete but not everything cannot
    disable, demote or delete an admin (even with another admin left), but
    can manage a user whose permissions it holds."""
    admin = env.admin
    _, manager_role = new_role(admin, ["users.view", "users.edit", "users.delete",
                                       "customers.view", "customers.edit"])
    _, email = new_user(admin, [manager_role], f"mgr-{secrets.token_hex(2)}")
    manager = sign_in(env.srv, env.slug, email)
    other_admin, _ = new_user(admin, ["admin"], f"adm2-{secrets.token_hex(2)}")
    _, small_role = new_role(admin, ["customers.view"])
    small, _ = new_user(admin, [small_role], f"small-{secrets.token_hex(2)}")
    before = snapshot(env.srv, env.slug, skip=("audit_log", "audit_head", "events"))
    for method, body in (("PATCH", {"disabled": True}), ("PATCH", {"roles": []}),
                         ("DELETE", None)):
        r = manager.request(method, f"{API}/users/{other_admin}", body=body)
        check_forbidden(r)
        assert "holds permissions you do not" in r.body["error"]["message"], r.body
    assert snapshot(env.srv, env.slug, skip=("audit_log", "audit_head", "events")) == before
    # ... nor one holding even a single permission it lacks (read_only's views).
    ro, _ = new_user(admin, ["read_only"], f"ro-{secrets.token_hex(2)}")
    check_forbidden(manager.request("PATCH", f"{API}/users/{ro}", body={"disabled": True}))
    # A user within its own permissions: it may.
    r = manager.request("PATCH", f"{API}/users/{small}", body={"disabled": True})
    assert r.status == 200 and r.body["disabled"] is True, r
    assert manager.request("DELETE", f"{API}/users/{small}").status == 200


def test_role_names_are_unique_ignoring_case(env):
    """"Triage" and "triage" are one name on both drivers (MariaDB's
    collation ignores case; SQLite is made to agree)."""
    name = f"Triage-{secrets.token_hex(2)}"
    rid, _ = new_role(env.admin, ["tickets.view"], name=name)
    check_error(env.admin.request("POST", f"{API}/roles",
                                  body={"name": name.lower(), "permissions": ["tickets.view"]}),
                409, "conflict")
    other, _ = new_role(env.admin, ["tickets.view"])
    check_error(env.admin.request("PATCH", f"{API}/roles/{other}", body={"name": name.upper()}),
                409, "conflict")
    # Its own name in another case is a rename of itself, not a clash.
    r = env.admin.request("PATCH", f"{API}/roles/{rid}", body={"name": name.upper()})
    assert r.status == 200 and r.body["name"] == name.upper(), r


# --- found by review: more-powerful users and roles, many roles, races --------------------

def test_roles_editor_cannot_strip_a_more_powerful_role(env):
    big_id, big = new_role(env.admin, ["customers.view", "users.edit", "users.view",
                                       "invoices.delete", "invoices.view"])
    new_user(env.admin, [big])
    _, small = new_role(env.admin, ["roles.edit", "roles.view", "roles.delete",
                                    "customers.view"])
    _, m_email = new_user(env.admin, [small])
    m = sign_in(env.srv, env.slug, m_email)
    before = env.admin.ok("GET", f"{API}/roles/{big_id}")
    r = m.patch(f"{API}/roles/{big_id}", {"permissions": ["customers.view"], "name": "by-m"})
    check_forbidden(r)
    assert "holds permissions you do not" in r.body["error"]["message"], r.body
    assert env.admin.ok("GET", f"{API}/roles/{big_id}") == before
    # A role within the editor's own permissions it may change.
    mine_id, _ = new_role(env.admin, ["customers.view"])
    assert m.patch(f"{API}/roles/{mine_id}", {"description": "edited by m"}).status == 200


def test_unlock_and_sign_out_only_users_one_covers(env):
    _, role = new_role(env.admin, ["users.sessions", "users.unlock", "users.view"])
    _, m_email = new_user(env.admin, [role])
    m = sign_in(env.srv, env.slug, m_email)
    check_forbidden(m.post(f"{API}/users/{env.admin_id}/unlock"))
    check_forbidden(m.post(f"{API}/users/{env.admin_id}/sessions/end"))
    plain, _ = new_user(env.admin, [])
    assert m.post(f"{API}/users/{plain}/unlock").status == 200
    assert m.post(f"{API}/users/{plain}/sessions/end").status == 200


def test_many_custom_roles_still_listed(env):
    for i in range(90):
        new_role(env.admin, ["customers.view"], f"many-{i}-{secrets.token_hex(2)}")
    seen, cursor = [], ""
    while True:
        r = env.admin.get(f"{API}/roles?limit=40{cursor}")
        assert r.status == 200 and len(r.body["data"]) <= 40, r
        seen += [role["id"] for role in r.body["data"]]
        if not r.body["has_more"]:
            break
        cursor = f"&cursor={r.body['next_cursor']}"
    assert len(seen) > 90 and len(seen) == len(set(seen)) == r.body["total"], seen


def test_two_admins_cannot_disable_each_other_at_once(env):
    """The last-admin guard holds under a race: of two admins disabling each
    other at the same moment, one must lose (on MariaDB this raced through
    before the change lock)."""
    srv = env.srv
    # One tenant: each round races the admin left standing against a new one
    # (the losers stay disabled), so the two racing are always its only
    # active admins without making a tenant a round.
    acct = make_tenant(srv, "lar")
    a = admin_client(srv, acct)
    a_id = a.ok("GET", f"{API}/me")["user"]["id"]
    for _ in range(15):
        b_id, b_email = new_user(a, ["admin"])
        bs = sign_in(srv, acct.slug, b_email)
        b = Client(srv, acct.slug, token=bs.ok("POST", f"{API}/auth/tokens",
                                                {"name": "t", "scopes": ["*"],
                                                 "password": PASSWORD})["token"])
        r1, r2 = race([lambda: a.patch(f"{API}/users/{b_id}", {"disabled": True}),
                       lambda: b.patch(f"{API}/users/{a_id}", {"disabled": True})])
        active = sql_one(srv, acct.slug,
                         "SELECT COUNT(*) FROM users u WHERE u.disabled = 0 AND EXISTS (SELECT 1"
                         " FROM user_roles ur JOIN roles r ON r.id = ur.role_id WHERE"
                         " ur.user_id = u.id AND r.builtin = 'admin')")
        assert int(active) == 1, (r1, r2)
        assert sorted([r1.status, r2.status]) in ([200, 401], [200, 403], [200, 409]), (r1, r2)
        if r1.status != 200:
            a, a_id = b, b_id  # a was disabled: b stands
