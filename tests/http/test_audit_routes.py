"""The audit log, generated from the route table (`bulwark routes`): every
route that changes something writes exactly one audit row, with the right
entity, id and action, and every read writes none (exports and revealing a
credential are events, and write one). A new mutating route that this file
does not exercise fails test_every_mutating_route_is_exercised until it is
added here or to the identity routes that test_audit.py covers.
"""

import secrets

import pytest

from conftest import _servers
from test_identity import sql_one, tenant_sql
from psa import (API, MUTATING, PASSWORD, Env, admin_client, fill, is_public, make_rows,
                 make_tenant, modules_meta, new_role, new_user, route_table, sign_in,
                 update_body, valid_body)

MANY = 100000

# Identity routes whose audit rows test_audit.py checks one by one (they need a
# second factor, a password re-check or a signed-out client to exercise).
IDENTITY = {
    ("POST", f"{API}/auth/login"), ("POST", f"{API}/auth/logout"),
    ("POST", f"{API}/auth/password"), ("POST", f"{API}/auth/mfa"),
    ("POST", f"{API}/auth/mfa/enrol"), ("POST", f"{API}/auth/mfa/enrol/confirm"),
    ("POST", f"{API}/auth/mfa/disable"), ("POST", f"{API}/auth/mfa/recovery-codes"),
}


@pytest.fixture(scope="module")
def srv(tmp_path_factory, tls_cert):
    with _servers(tmp_path_factory, tls_cert) as make:
        yield make(login_rate_per_minute=MANY).start()


@pytest.fixture(scope="module")
def env(srv):
    e = Env(srv, "audr", "AR")
    e.routes = route_table()
    return e


def count(env):
    return int(sql_one(env.srv, env.slug, "SELECT COUNT(*) FROM audit_log"))


def newest(env, n):
    """The newest n rows as (entity, entity_id, action), oldest first."""
    rows = tenant_sql(env.srv, env.slug, "SELECT entity, entity_id, action FROM audit_log"
                      f" ORDER BY seq DESC LIMIT {int(n)}")
    return [(r[0], int(r[1]), r[2]) for r in reversed(rows)]


def one_row(env, method, path, body=None, status=(200, 201)):
    """Make the request; it must succeed and add exactly one audit row,
    which is returned with the reply's body."""
    n = count(env)
    r = env.admin.request(method, path, body=body)
    assert r.status in status, (method, path, body, r)
    added = count(env) - n
    assert added == 1, f"{method} {path} wrote {added} audit rows: {newest(env, max(added, 1))}"
    return newest(env, 1)[0], r.body


def fresh(env, module):
    """A new row of module whose state lets every action and delete run:
    lines on a new draft document, payments on a new sent invoice."""
    ids = dict(env.ids)
    if module in ("invoice_lines", "estimate_lines"):
        doc = module.split("_")[0] + "s"
        ids[doc] = env.admin.ok("POST", f"{API}/{doc}",
                                valid_body(env.meta, doc, ids, env.marker))["id"]
    if module == "payments":
        ids["invoices"] = sent_document(env, "invoices")
    body = valid_body(env.meta, module, ids, env.marker)
    return env.admin.ok("POST", f"{API}/{module}", body, status=201)["id"]


def document_with_line(env, doc):
    ids = dict(env.ids)
    ids[doc] = env.admin.ok("POST", f"{API}/{doc}", valid_body(env.meta, doc, ids, env.marker))["id"]
    line = doc[:-1] + "_lines"
    env.admin.ok("POST", f"{API}/{line}", valid_body(env.meta, line, ids, env.marker))
    return ids[doc]


def sent_document(env, doc):
    i = document_with_line(env, doc)
    env.admin.ok("POST", f"{API}/{doc}/{i}/send")
    return i


# What each action needs first: a row in the right state, and a body.
ACTION_SETUP = {
    ("tickets", "assign"): (lambda env: fresh(env, "tickets"),
                            lambda env: {"assignee_id": env.admin_id}),
    ("invoices", "send"): (lambda env: document_with_line(env, "invoices"), None),
    ("invoices", "void"): (lambda env: document_with_line(env, "invoices"), None),
    ("estimates", "send"): (lambda env: document_with_line(env, "estimates"), None),
    ("estimates", "accept"): (lambda env: sent_document(env, "estimates"), None),
    ("estimates", "decline"): (lambda env: sent_document(env, "estimates"), None),
    ("network_devices", "reveal_credential"): (lambda env: fresh(env, "network_devices"), None),
}


def change_for(meta, module, marker):
    """A valid PATCH body changing one text field (sealed ones too)."""
    body = update_body(meta, module, marker)
    if body:
        return body
    for f in meta[module]["fields"]:
        if not f["read_only"] and not f["immutable"] and f["type"] in ("text", "string") \
                and not f["write_only"] and (module, f["name"]) != ("payments", "card_last_four"):
            return {f["name"]: f"{marker}-upd"[: f["max_length"]]}
    return {}


def module_routes(env):
    return [r for r in env.routes if r["module"]]


def test_module_changes_write_one_row_each(env):
    seen = set()
    for r in module_routes(env):
        m, method, pat = r["module"], r["method"], r["pattern"]
        if method not in MUTATING:
            continue
        seen.add((method, pat))
        if pat == f"{API}/{m}":
            row, body = one_row(env, "POST", pat, valid_body(env.meta, m, fresh_ids(env, m),
                                                              env.marker))
            assert row == (m, body["id"], "create"), (pat, row)
        elif pat == f"{API}/{m}/:id" and method == "PATCH":
            i = fresh(env, m)
            change = change_for(env.meta, m, env.marker + secrets.token_hex(2))
            assert change, f"{m}: no field to change in the test"
            row, body = one_row(env, "PATCH", f"{API}/{m}/{i}", change)
            assert row == (m, i, "update"), (pat, row)
            # The same change again changes nothing, and writes nothing.
            n = count(env)
            env.admin.ok("PATCH", f"{API}/{m}/{i}", change)
            assert count(env) == n, f"PATCH {m} without a change wrote an audit row"
        elif pat == f"{API}/{m}/:id" and method == "DELETE":
            i = fresh(env, m)
            row, _ = one_row(env, "DELETE", f"{API}/{m}/{i}")
            assert row == (m, i, "delete"), (pat, row)
        else:
            action = pat.rsplit("/", 1)[1]
            assert (m, action) in ACTION_SETUP, f"no set-up for the action {m}.{action}"
            setup, body = ACTION_SETUP[(m, action)]
            i = setup(env)
            row, _ = one_row(env, "POST", f"{API}/{m}/{i}/{action}",
                             body(env) if body else None)
            assert row == (m, i, action), (pat, row)
    assert len(seen) >= 18 * 3, seen


def fresh_ids(env, module):
    """ids for a create of module (a draft parent document for lines)."""
    ids = dict(env.ids)
    if module in ("invoice_lines", "estimate_lines"):
        doc = module.split("_")[0] + "s"
        ids[doc] = env.admin.ok("POST", f"{API}/{doc}",
                                valid_body(env.meta, doc, ids, env.marker))["id"]
    if module == "payments":
        ids["invoices"] = sent_document(env, "invoices")
    return ids


def test_reads_write_nothing_but_exports_do(env):
    for r in env.routes:
        if r["method"] != "GET" or is_public(r) or r["pattern"].startswith(f"{API}/auth"):
            continue
        path = fill(r["pattern"], {**env.ids, "roles": 1, "users": env.admin_id})
        n = count(env)
        reply = env.admin.request("GET", path)
        assert reply.status == 200, (path, reply)
        added = count(env) - n
        if r["pattern"].endswith("/export"):
            assert added == 1, (path, added)
            assert newest(env, 1)[0] == (r["module"], 0, "export"), newest(env, 1)
        else:
            assert added == 0, f"GET {path} wrote {added} audit rows: {newest(env, added)}"
    # The audit log's own CSV export is an event too; its JSON pages are reads.
    n = count(env)
    assert env.admin.request("GET", f"{API}/reporting/audit?format=csv").status == 200
    assert count(env) == n + 1 and newest(env, 1)[0] == ("audit", 0, "export")


def test_users_roles_and_settings_write_one_row_each(env):
    admin, srv = env.admin, env.srv
    row, body = one_row(env, "POST", f"{API}/roles",
                        {"name": f"r-{secrets.token_hex(3)}", "permissions": ["tickets.view"]})
    role = body["id"]
    assert row == ("roles", role, "create")
    row, _ = one_row(env, "PATCH", f"{API}/roles/{role}",
                     {"permissions": ["tickets.view", "tickets.edit"]})
    assert row == ("roles", role, "update")
    email = f"u-{secrets.token_hex(3)}@{env.slug}.example.com"
    row, body = one_row(env, "POST", f"{API}/users",
                        {"email": email, "password": PASSWORD, "roles": [body["name"]]})
    uid = body["id"]
    assert row == ("users", uid, "create")
    row, _ = one_row(env, "PATCH", f"{API}/users/{uid}", {"roles": []})
    assert row == ("users", uid, "update")
    row, _ = one_row(env, "POST", f"{API}/users/{uid}/sessions/end")
    assert row[0] == "users" and row[1] == uid, row
    row, _ = one_row(env, "POST", f"{API}/users/{uid}/unlock")
    assert row == ("users", uid, "unlock"), row
    tok = sign_in(srv, env.slug, email).ok("POST", f"{API}/auth/tokens",
                                           {"name": "theirs", "scopes": ["self.view"],
                                            "password": PASSWORD})
    row, _ = one_row(env, "DELETE", f"{API}/users/{uid}/tokens/{tok['id']}")
    assert row == ("api_tokens", tok["id"], "revoke"), row
    row, _ = one_row(env, "DELETE", f"{API}/users/{uid}")
    assert row == ("users", uid, "delete")
    row, _ = one_row(env, "DELETE", f"{API}/roles/{role}")
    assert row == ("roles", role, "delete")
    row, _ = one_row(env, "PUT", f"{API}/settings/allowlist",
                     {"entries": [{"cidr": "127.0.0.0/8", "label": "here"}]})
    assert row[0] == "settings", row
    row, _ = one_row(env, "PUT", f"{API}/settings/allowlist", {"entries": []})
    row, _ = one_row(env, "PUT", f"{API}/settings/security", {"mfa_required": False})
    assert row[0] == "settings", row
    row, body = one_row(env, "POST", f"{API}/auth/tokens",
                        {"name": "audited", "scopes": ["self.view"], "password": PASSWORD})
    assert row == ("api_tokens", body["id"], "create"), row
    row, _ = one_row(env, "DELETE", f"{API}/auth/tokens/{body['id']}")
    assert row == ("api_tokens", body["id"], "revoke"), row
    row, _ = one_row(env, "POST", f"{API}/auth/sessions/end-others")
    assert row[0] == "users", row


EXERCISED_HERE = {
    ("POST", f"{API}/roles"), ("PATCH", f"{API}/roles/:id"), ("DELETE", f"{API}/roles/:id"),
    ("POST", f"{API}/users"), ("PATCH", f"{API}/users/:id"), ("DELETE", f"{API}/users/:id"),
    ("POST", f"{API}/users/:id/sessions/end"), ("POST", f"{API}/users/:id/unlock"),
    ("DELETE", f"{API}/users/:id/tokens/:token_id"),
    ("PUT", f"{API}/settings/allowlist"), ("PUT", f"{API}/settings/security"),
    ("POST", f"{API}/auth/tokens"), ("DELETE", f"{API}/auth/tokens/:id"),
    ("POST", f"{API}/auth/sessions/end-others"),
}


# Webhooks, inbound endpoints and jobs: each route's audit row is checked by
# tests/http/test_webhooks.py::test_every_change_route_writes_its_audit_row, where a
# receiver and signed provider events make them possible.
EXERCISED_IN_WEBHOOKS = {
    ("POST", f"{API}/webhooks"), ("PATCH", f"{API}/webhooks/:id"),
    ("DELETE", f"{API}/webhooks/:id"), ("POST", f"{API}/webhooks/:id/rotate-secret"),
    ("POST", f"{API}/webhooks/:id/deliveries/:did/redeliver"),
    ("POST", f"{API}/hook-endpoints"), ("PATCH", f"{API}/hook-endpoints/:id"),
    ("DELETE", f"{API}/hook-endpoints/:id"), ("POST", f"{API}/hooks/:provider/:endpoint"),
    ("POST", f"{API}/jobs/:id/retry"), ("POST", f"{API}/jobs/:id/cancel"),
}


# SAML: the set-up's audit rows (create, update, delete) and the ACS's (sso_login,
# sso_refused with its reason) are checked by tests/http/test_saml.py and
# tests/http/test_saml_attacks.py, where an IdP makes them possible.
EXERCISED_IN_SAML = {
    ("PUT", f"{API}/settings/sso"), ("DELETE", f"{API}/settings/sso"), ("POST", "/saml/acs"),
}

# Recovery: a reset request, a reset with a link and an admin's resets each
# write one row, checked by tests/http/test_recovery.py, where a mail server
# brings the link.
EXERCISED_IN_RECOVERY = {
    ("POST", f"{API}/auth/password-reset"), ("POST", f"{API}/auth/password-reset/confirm"),
    ("POST", f"{API}/users/:id/password/reset"), ("POST", f"{API}/users/:id/mfa/reset"),
    # and the mail settings and their test message, in tests/http/test_mail.py
    ("PUT", f"{API}/settings/mail"), ("POST", f"{API}/settings/mail/test"),
    # the support mailbox (settings_update, poll) in tests/http/test_intake.py, and the
    # choice of sign-in notices (signin_notice) in tests/http/test_mail.py
    ("PUT", f"{API}/settings/mailbox"), ("POST", f"{API}/settings/mailbox/poll"),
    ("PUT", f"{API}/auth/sessions/notice"),
}


def test_every_mutating_route_is_exercised(env):
    """A new route that changes state must be added to one of the lists
    above (and so be shown to write its audit row)."""
    missing = []
    for r in env.routes:
        key = (r["method"], r["pattern"])
        if r["method"] not in MUTATING or r["module"]:
            continue
        if key not in EXERCISED_HERE and key not in IDENTITY and \
                key not in EXERCISED_IN_WEBHOOKS and key not in EXERCISED_IN_SAML and \
                key not in EXERCISED_IN_RECOVERY:
            missing.append(key)
    assert not missing, f"mutating routes with no audit test: {missing}"


def test_failed_audit_write_rolls_the_change_back(env):
    """If the audit row cannot be written, the change does not happen: the
    audit table is renamed away behind the server's back, then a create, an
    update, a delete and an action all fail and leave the data as it was."""
    i = fresh(env, "customers")
    t = fresh(env, "tickets")
    before_customers = sql_one(env.srv, env.slug, "SELECT COUNT(*) FROM customers")
    name = sql_one(env.srv, env.slug, f"SELECT name FROM customers WHERE id = {i}")
    rows = count(env)
    tenant_sql(env.srv, env.slug, "ALTER TABLE audit_log RENAME TO audit_log_away")
    try:
        for method, path, body in (
                ("POST", f"{API}/customers", valid_body(env.meta, "customers", env.ids, "rb")),
                ("PATCH", f"{API}/customers/{i}", {"name": "changed without audit"}),
                ("DELETE", f"{API}/customers/{i}", None),
                ("POST", f"{API}/tickets/{t}/assign", {"assignee_id": env.admin_id})):
            r = env.admin.request(method, path, body=body)
            assert r.status >= 500, (method, path, r)
    finally:
        tenant_sql(env.srv, env.slug, "ALTER TABLE audit_log_away RENAME TO audit_log")
    assert sql_one(env.srv, env.slug, "SELECT COUNT(*) FROM customers") == before_customers
    assert sql_one(env.srv, env.slug, f"SELECT name FROM customers WHERE id = {i}") == name
    assert sql_one(env.srv, env.slug,
                   f"SELECT assignee_id FROM tickets WHERE id = {t}") in ("None", "NULL")
    # Nothing half-written either: the chain is whole and the head did not move.
    assert count(env) == rows
    ok = env.srv.cli("audit", "verify", env.slug)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    # And the server writes again once the table is back.
    row, _ = one_row(env, "PATCH", f"{API}/customers/{i}", {"name": "changed with audit"})
    assert row == ("customers", i, "update")


def test_side_effects_show_on_the_row_they_touched(env):
    """A payment that marks its invoice paid, and a line that changes its
    invoice's totals, are one audit row each (the payment's, the line's),
    and that row is in the invoice's trail too, with what changed there;
    links removed or added behind the server's back fail verify."""
    inv = document_with_line(env, "invoices")
    trail = env.admin.ok("GET", f"{API}/invoices/{inv}/audit")["data"]
    line_rows = [r for r in trail if r["entity"] == "invoice_lines"]
    assert line_rows and line_rows[0]["effects"][0]["entity"] == "invoices", trail
    assert line_rows[0]["effects"][0]["after"]["total_cents"] > 0, line_rows
    env.admin.ok("POST", f"{API}/invoices/{inv}/send")
    total = env.admin.ok("GET", f"{API}/invoices/{inv}")["total_cents"]
    (row, body) = one_row(env, "POST", f"{API}/payments", {
        "invoice_id": inv, "amount_cents": total, "method": "cash", "received_on": "2026-02-01"})
    assert row == ("payments", body["id"], "create"), row
    assert env.admin.ok("GET", f"{API}/invoices/{inv}")["status"] == "paid"
    trail = env.admin.ok("GET", f"{API}/invoices/{inv}/audit")["data"]
    paid = [r for r in trail if r["entity"] == "payments"]
    assert len(paid) == 1, trail
    assert paid[0]["effects"] == [{"entity": "invoices", "entity_id": inv,
                                   "before": {"status": "sent"}, "after": {"status": "paid"}}]
    assert env.srv.cli("audit", "verify", env.slug).returncode == 0
    # The link is covered by the chain: removing it, or adding one, is caught.
    seq = paid[0]["seq"]
    tenant_sql(env.srv, env.slug, f"DELETE FROM audit_links WHERE seq = {seq}")
    bad = env.srv.cli("audit", "verify", env.slug)
    assert bad.returncode == 1 and f"row {seq}" in bad.stdout and "links" in bad.stdout, bad
    tenant_sql(env.srv, env.slug, "INSERT INTO audit_links (seq, entity, entity_id) VALUES"
               f" ({seq}, 'invoices', {inv})")
    assert env.srv.cli("audit", "verify", env.slug).returncode == 0
    tenant_sql(env.srv, env.slug, "INSERT INTO audit_links (seq, entity, entity_id) VALUES"
               f" ({seq}, 'customers', 1)")
    bad = env.srv.cli("audit", "verify", env.slug)
    assert bad.returncode == 1 and f"row {seq}" in bad.stdout, bad
    tenant_sql(env.srv, env.slug, f"DELETE FROM audit_links WHERE seq = {seq} AND"
               " entity = 'customers'")
    assert env.srv.cli("audit", "verify", env.slug).returncode == 0
