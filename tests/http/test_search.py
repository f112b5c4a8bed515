"""GET /api/v1/search end to end (docs/search.md): exact matches of sealed
fields through their blind indexes, words of plain fields through the
full-text index, and the limits of what a caller finds: only modules it
may view (roles and token scopes), only its own tenant.

One server for the module, two tenants: A holds the records; B has a
contact with the very same e-mail address and a read_only user.
"""

import secrets
import urllib.parse

import pytest

from conftest import DRIVER, _servers, mariadb_dump
from psa import API, Client, admin_client, make_tenant, new_role, new_user, sign_in
from test_identity import login, tenant_sql

MANY = 100000


@pytest.fixture(scope="module")
def srv(tmp_path_factory, tls_cert):
    with _servers(tmp_path_factory, tls_cert) as make:
        yield make(login_rate_per_minute=MANY).start()


class Ctx:
    pass


@pytest.fixture(scope="module")
def env(srv):
    e = Ctx()
    e.srv = srv
    e.a = make_tenant(srv, "sra")
    e.b = make_tenant(srv, "srb")
    e.admin = admin_client(srv, e.a)
    e.admin_b = admin_client(srv, e.b)
    m = secrets.token_hex(3)
    e.word = f"zqw{m}"  # a word no other row has
    e.email = f"Ada.Lovelace+{m}@Example.COM"
    e.phone = "+44 20 7946 0958"
    e.cust = e.admin.ok("POST", f"{API}/customers", {"name": f"Analytical {m}"}, status=201)["id"]
    e.contact = e.admin.ok("POST", f"{API}/contacts", {
        "customer_id": e.cust, "first_name": "Ada", "last_name": f"Lovelace{m}",
        "email": e.email, "phone": e.phone}, status=201)["id"]
    e.ticket = e.admin.ok("POST", f"{API}/tickets", {
        "customer_id": e.cust, "subject": f"Printer {e.word} jammed again"}, status=201)["id"]
    # Tenant B: the same address, its own contact; a read_only user.
    cb = e.admin_b.ok("POST", f"{API}/customers", {"name": "Other MSP customer"}, status=201)["id"]
    e.contact_b = e.admin_b.ok("POST", f"{API}/contacts", {
        "customer_id": cb, "first_name": "Ada", "email": e.email}, status=201)["id"]
    _, ro_b = new_user(e.admin_b, ["read_only"], "ro")
    e.ro_b = sign_in(srv, e.b.slug, ro_b)
    _, ro_a = new_user(e.admin, ["read_only"], "ro")
    e.ro_a = sign_in(srv, e.a.slug, ro_a)
    return e


def search(client, q, expect=200, **params):
    qs = urllib.parse.urlencode({"q": q, **params})
    r = client.get(f"{API}/search?{qs}")
    assert r.status == expect, r
    return r.body


def hits(body, module=None):
    return [(h["module"], h["id"], h["match"]) for h in body["data"]
            if module is None or h["module"] == module]


def blind_rows(env, slug, entity, row_id):
    return tenant_sql(env.srv, slug, "SELECT field, key_id, mac FROM blind_index WHERE"
                      f" entity = '{entity}' AND row_id = {int(row_id)} ORDER BY field")


# --- found ----------------------------------------------------------------------------

def test_contact_found_by_email_however_written(env):
    for q in (env.email, env.email.lower(), f"  {env.email.upper()}  "):
        body = search(env.admin, q)
        assert set(body) == {"data", "total", "limit", "has_more", "next_cursor"}, body
        assert ("contacts", env.contact, "exact") in hits(body), (q, body)
        [h] = [h for h in body["data"] if h["module"] == "contacts"]
        assert h["label"].startswith("Ada Lovelace"), h
        assert body["limit"] == 25 and body["has_more"] is False and body["next_cursor"] is None
    # another address finds nothing
    body = search(env.admin, env.email.replace("Ada", "Ida"))
    assert hits(body, "contacts") == [], body


def test_contact_found_by_phone_however_formatted(env):
    for q in ("+44-20-7946-0958", "+442079460958", " +44 (20) 7946 0958"):
        assert ("contacts", env.contact, "exact") in hits(search(env.admin, q)), q
    # exact means exact: without its leading + it is another number
    assert hits(search(env.admin, "44 20 7946 0958"), "contacts") == []


def test_ticket_found_by_a_word_of_its_subject(env):
    for q in (env.word, env.word.upper(), env.word[:-1], f"jammed {env.word}"):
        body = search(env.admin, q)
        assert ("tickets", env.ticket, "text") in hits(body), (q, body)
        [h] = [h for h in body["data"] if h["module"] == "tickets"]
        assert h["label"] == f"Printer {env.word} jammed again", h
    # every word must match
    assert hits(search(env.admin, f"{env.word} nosuchwordanywhere")) == []


def test_bad_queries_refused(env):
    # nothing asked, nothing found (a cleared search box; every GET route answers bare)
    for path in (f"{API}/search", f"{API}/search?q=", f"{API}/search?q=%20%20"):
        body = env.admin.ok("GET", path)
        assert body == {"data": [], "total": 0, "limit": 25, "has_more": False,
                        "next_cursor": None}, (path, body)
    for params, status in (({"q": "x" * 201}, 400),
                           ({"q": "ada", "limit": "0"}, 400), ({"q": "ada", "limit": "101"}, 400),
                           ({"q": "ada", "modules": "nope"}, 400),
                           ({"q": "ada", "cursor": "x.1"}, 400), ({"q": "ada", "page": "2"}, 400)):
        r = env.admin.get(f"{API}/search?{urllib.parse.urlencode(params)}")
        assert r.status == status and r.body["error"]["code"] == "invalid", (params, r)


def test_pages_and_modules_filter(env):
    # two more contacts sharing the phone: three exact hits, then the customer
    extra = [env.admin.ok("POST", f"{API}/contacts", {
        "customer_id": env.cust, "first_name": "Page", "phone": env.phone}, status=201)["id"]
        for _ in range(2)]
    seen, cursor = [], None
    for _ in range(5):
        params = {"limit": "1"} | ({"cursor": cursor} if cursor else {})
        body = search(env.admin, env.phone, **params)
        assert body["total"] == 3, body
        seen += hits(body)
        cursor = body["next_cursor"]
        if not body["has_more"]:
            break
    assert seen == [("contacts", i, "exact") for i in sorted([env.contact] + extra)], seen
    assert hits(search(env.admin, env.phone, modules="customers,tickets")) == []
    for i in extra:
        env.admin.ok("DELETE", f"{API}/contacts/{i}", status=(200, 204))


# --- not found by those who may not see -------------------------------------------------

def test_without_contacts_view_no_contact_hits(env):
    _, name = new_role(env.admin, ["search.view", "tickets.view", "customers.view"])
    _, email = new_user(env.admin, [name], "nocontacts")
    u = sign_in(env.srv, env.a.slug, email)
    assert hits(search(u, env.email)) == []
    assert hits(search(u, "Lovelace")) == []
    # what it may view it finds: the filter is the permission, nothing else
    assert ("tickets", env.ticket, "text") in hits(search(u, env.word))
    # with contacts.view the same user finds the contact
    _, name2 = new_role(env.admin, ["search.view", "contacts.view"])
    _, email2 = new_user(env.admin, [name2], "withcontacts")
    assert ("contacts", env.contact, "exact") in hits(search(sign_in(env.srv, env.a.slug, email2),
                                                             env.email))


def test_read_only_of_another_tenant_finds_nothing_of_this_one(env):
    # A's read_only user finds A's contact (read_only may view records, search included) ...
    assert ("contacts", env.contact, "exact") in hits(search(env.ro_a, env.email))
    # ... B's finds only B's own contact with that address, and nothing of A's
    body = search(env.ro_b, env.email)
    assert hits(body) == [("contacts", env.contact_b, "exact")], body
    assert hits(search(env.ro_b, env.word)) == []
    assert hits(search(env.ro_b, env.phone)) == []
    # The same address has unrelated MACs in the two tenants (their own keys).
    [(_, _, mac_a)] = [r for r in blind_rows(env, env.a.slug, "contacts", env.contact)
                       if r[0] == "email"]
    [(_, _, mac_b)] = blind_rows(env, env.b.slug, "contacts", env.contact_b)
    assert mac_a != mac_b
    # and B's session is no key to A's host
    r = Client(env.srv, env.a.slug, session=env.ro_b.session).get(
        f"{API}/search?q={urllib.parse.quote(env.email)}")
    assert r.status == 401, r


def test_token_scopes_limit_the_modules(env):
    web = Client(env.srv, env.a.slug, session=login(env.srv, env.a))

    def token(scopes):
        return web.ok("POST", f"{API}/auth/tokens", {
            "name": f"s-{secrets.token_hex(3)}", "scopes": scopes,
            "password": env.a.password}, status=201)["token"]
    t = Client(env.srv, env.a.slug, token=token(["search.view", "tickets.view"]))
    assert hits(search(t, env.email)) == []
    assert ("tickets", env.ticket, "text") in hits(search(t, env.word))
    t2 = Client(env.srv, env.a.slug, token=token(["search.view", "contacts.view"]))
    assert ("contacts", env.contact, "exact") in hits(search(t2, env.email))
    # no search.view in its scopes: no search at all
    t3 = Client(env.srv, env.a.slug, token=token(["contacts.view"]))
    r = t3.get(f"{API}/search?q=ada")
    assert r.status == 403, r


# --- the indexes follow the rows -----------------------------------------------------------

def test_updates_and_deletes_move_the_indexes(env):
    m = secrets.token_hex(3)
    old, new = f"old.{m}@example.org", f"new.{m}@example.org"
    w1, w2 = f"qvw{m}", f"qvx{m}"
    cid = env.admin.ok("POST", f"{API}/contacts", {
        "customer_id": env.cust, "first_name": w1, "email": old, "phone": "+1 555 0100"},
        status=201)["id"]
    assert ("contacts", cid, "exact") in hits(search(env.admin, old))
    assert ("contacts", cid, "text") in hits(search(env.admin, w1))
    env.admin.ok("PATCH", f"{API}/contacts/{cid}", {"email": new, "first_name": w2, "phone": None})
    assert hits(search(env.admin, old)) == []
    assert ("contacts", cid, "exact") in hits(search(env.admin, new))
    assert hits(search(env.admin, w1)) == []
    assert ("contacts", cid, "text") in hits(search(env.admin, w2))
    assert hits(search(env.admin, "+1 555 0100")) == []
    assert [r[0] for r in blind_rows(env, env.a.slug, "contacts", cid)] == ["email"]
    env.admin.ok("DELETE", f"{API}/contacts/{cid}", status=(200, 204))
    assert hits(search(env.admin, new)) == [] and hits(search(env.admin, w2)) == []
    assert blind_rows(env, env.a.slug, "contacts", cid) == []
    assert tenant_sql(env.srv, env.a.slug, "SELECT COUNT(*) FROM search_docs WHERE"
                      f" entity = 'contacts' AND row_id = {cid}") == [("0",)]


def test_database_holds_no_plaintext_address_or_number(env):
    needles = [env.email, env.email.lower(), "ada.lovelace+", "2079460958", "7946 0958"]
    if DRIVER == "mariadb":
        blob = mariadb_dump(f"saas_tenant_{env.a.slug}", hex_blob=False)
    else:
        path = env.srv.var / "tenants" / f"{env.a.slug}.db"
        blob = b"".join(p.read_bytes() for p in (path, path.with_name(path.name + "-wal"))
                        if p.exists())
    low = blob.lower()
    for n in needles:
        assert n.lower().encode() not in low, n
    # what is there instead: the MACs (and the plain name, in the full-text index)
    for _, _, mac in blind_rows(env, env.a.slug, "contacts", env.contact):
        assert mac.encode() in blob
    assert env.word.encode() in blob


# --- rotation --------------------------------------------------------------------------------

def test_found_during_and_after_key_rotation(env):
    before = blind_rows(env, env.a.slug, "contacts", env.contact)
    assert [r[0] for r in before] == ["email", "phone"], before
    env.srv.cli_ok("keys", "rotate")
    after = blind_rows(env, env.a.slug, "contacts", env.contact)
    assert [r[0] for r in after] == ["email", "phone"], after
    for (f, k0, m0), (_, k1, m1) in zip(before, after):
        assert k1 != k0 and m1 != m0, (f, before, after)
    assert ("contacts", env.contact, "exact") in hits(search(env.admin, env.email))
    assert ("contacts", env.contact, "exact") in hits(search(env.admin, env.phone))
    assert ("tickets", env.ticket, "text") in hits(search(env.admin, env.word))
    # Part-way through a rotation some entries are still under the old key:
    # put the e-mail's entry back as it was; it is found all the same.
    f, k0, m0 = before[0]
    tenant_sql(env.srv, env.a.slug, f"UPDATE blind_index SET key_id = {int(k0)}, mac = '{m0}'"
               f" WHERE entity = 'contacts' AND field = '{f}' AND row_id = {env.contact}")
    assert ("contacts", env.contact, "exact") in hits(search(env.admin, env.email))
    assert ("contacts", env.contact, "exact") in hits(search(env.admin, env.phone))
    # and the next rotation moves it on
    env.srv.cli_ok("keys", "rotate")
    again = blind_rows(env, env.a.slug, "contacts", env.contact)
    assert len({r[1] for r in again}) == 1 and again[0][1] not in (k0, after[0][1]), again
    assert ("contacts", env.contact, "exact") in hits(search(env.admin, env.email))
