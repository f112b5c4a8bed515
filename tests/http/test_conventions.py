"""The HTTP conventions of issue #14, checked on every route `bulwark routes`
lists, so that a route added later is held to them without anyone
remembering to:

- every 401 carries `WWW-Authenticate: Bearer realm="bulwark"`, with
  `error="invalid_token"` when a bearer token was presented and refused;
- every route that takes a body refuses one that is not JSON by its
  Content-Type (415 unsupported_media_type), and nothing is written;
- every collection that creates (a POST P beside a GET P/:id: every module,
  users, roles, tokens) answers 201 with `Location: P/<id>`, which GET
  resolves to the new resource;
- a JSON body with a repeated key is refused (400) naming the key, with
  "position", "line" and "column" in the error object, on every body route;
- every reply the rate limiter governs carries RateLimit-Limit, -Remaining
  and -Reset; a 429 also Retry-After (the per-address limiter and the
  sign-in limiter alike).

One server for the module (rate limiting on, generous), one tenant.
"""

import json
import re
import secrets

import pytest

from conftest import _servers, read_response
from psa import (API, PASSWORD, Client, Env, fill, new_role, order, route_table, snapshot, snapshot_diff,
                 valid_body)
from test_rbac import body_for

BURST = 100000
LOGIN_RATE = 5
CHALLENGE = 'Bearer realm="bulwark"'
INVALID_TOKEN = 'Bearer realm="bulwark", error="invalid_token"'


@pytest.fixture(scope="module")
def srv(tmp_path_factory, tls_cert):
    with _servers(tmp_path_factory, tls_cert) as make:
        yield make(rate_per_second=1000, rate_burst=BURST,
                   login_rate_per_minute=LOGIN_RATE).start()


@pytest.fixture(scope="module")
def env(srv):
    e = Env(srv, "conv", "CV")
    e.ids["roles"], _ = new_role(e.admin, ["customers.view"])
    e.ids["tokens"] = e.admin.ok("POST", f"{API}/auth/tokens",
                                 {"name": "conv", "scopes": ["self.view"],
                                  "password": PASSWORD})["id"]
    return e


@pytest.fixture(scope="module")
def routes():
    return [r for r in route_table() if "no_tenant" not in r["flags"]]


def check_rate_headers(reply, limit=BURST):
    """The RateLimit-* headers of a reply the per-address limiter governs."""
    h = reply.headers
    for name in ("ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"):
        assert re.fullmatch(r"\d+", h.get(name, "")), (name, reply.status, h)
    assert int(h["ratelimit-limit"]) == limit, h
    assert int(h["ratelimit-remaining"]) < limit, h
    assert int(h["ratelimit-reset"]) <= limit, h


def path_of(env, route):
    return fill(route["pattern"], env.ids).replace(":token_id", str(env.ids["tokens"]))


# --- 401: a challenge ----------------------------------------------------------------------

def test_every_401_carries_a_challenge(env, routes):
    anon = Client(env.srv, env.slug)
    forged = Client(env.srv, env.slug, token="bw_" + secrets.token_hex(20))
    stale = Client(env.srv, env.slug, session=secrets.token_urlsafe(32))
    failures, seen = [], 0
    for r in routes:
        if "public" in r["flags"]:
            continue
        path = path_of(env, r)
        for who, want in ((anon, CHALLENGE), (forged, INVALID_TOKEN), (stale, CHALLENGE)):
            reply = who.request(r["method"], path)
            seen += 1
            check_rate_headers(reply)
            if reply.status != 401 or reply.headers.get("www-authenticate") != want:
                failures.append(f"{r['method']} {path}: {reply.status} "
                                f"{reply.headers.get('www-authenticate')!r}, want {want!r}")
    assert seen > 100
    assert not failures, "\n".join(failures)
    # A public route's 401 (a wrong password) is challenged as well; a 200 never is.
    r = Client(env.srv, env.slug, source="127.0.0.3").post(
        f"{API}/auth/login", {"email": env.account.email, "password": "Wrong-" + PASSWORD})
    assert r.status == 401 and r.headers.get("www-authenticate") == CHALLENGE, r
    ok = env.admin.get(f"{API}/me")
    assert ok.status == 200 and "www-authenticate" not in ok.headers, ok.headers


def test_a_token_revoked_while_its_request_ran_is_challenged_as_invalid(env):
    """The token passes authentication with the head; it is revoked before
    the body arrives; the write's transaction finds it gone (401, nothing
    written) and the challenge says the token is what failed."""
    tok = env.admin.ok("POST", f"{API}/auth/tokens",
                       {"name": "mid", "scopes": ["*"], "password": PASSWORD})
    srv = env.srv
    data = json.dumps(valid_body(env.meta, "customers", env.ids, "MIDREQ")).encode()
    before = snapshot(srv, env.slug)
    with srv.raw_tls_socket() as sock:
        sock.sendall((f"POST {API}/customers HTTP/1.1\r\nHost: {srv.tenant_host(env.slug)}\r\n"
                      f"Authorization: Bearer {tok['token']}\r\n"
                      "Content-Type: application/json\r\nExpect: 100-continue\r\n"
                      f"Content-Length: {len(data)}\r\n\r\n").encode())
        interim = b""  # the 100 comes once the pipeline has admitted the request
        while b"\r\n\r\n" not in interim:
            chunk = sock.recv(1024)
            assert chunk, interim
            interim += chunk
        assert interim.startswith(b"HTTP/1.1 100"), interim
        gone = Client(srv, env.slug, token=tok["token"])
        assert gone.request("DELETE", f"{API}/auth/tokens/{tok['id']}").status == 200
        sock.sendall(data)
        resp = read_response(sock, "POST")
    assert resp.status == 401, resp
    assert "while the request ran" in resp.body["error"]["message"], resp
    assert resp.headers.get("www-authenticate") == INVALID_TOKEN, resp.headers
    after = snapshot(srv, env.slug, skip=("api_tokens", "audit_log", "audit_head", "events"))
    before = {t: v for t, v in before.items() if t not in ("api_tokens", "audit_log", "audit_head", "events")}
    assert before == after, snapshot_diff(before, after)


# --- 415: only JSON bodies -----------------------------------------------------------------

def json_body_routes(routes):
    """Every route that takes a body, but the cross-site form ones (the SAML ACS)."""
    return [r for r in routes if r["body"] and "cross_site" not in r["flags"]]


def test_the_only_cross_site_route_is_the_acs(routes):
    """A route exempt from the Origin check and the JSON rule is a decision, not
    a flag set in passing: the SAML ACS is the one (docs/http.md, 5b)."""
    assert [(r["method"], r["pattern"]) for r in routes if "cross_site" in r["flags"]] == \
        [("POST", "/saml/acs")]


def test_every_body_route_refuses_a_body_that_is_not_json(env, routes):
    body_routes = json_body_routes(routes)
    assert len(body_routes) > 40, body_routes
    assert not [r for r in routes if r["body"] and r["method"] in ("GET", "DELETE")]
    before = snapshot(env.srv, env.slug)
    failures = []
    for r in body_routes:
        path = path_of(env, r)
        body = body_for(env, r)
        data = json.dumps(body if body is not None else {}).encode()
        for ctype in ("text/plain", None, "application/x-www-form-urlencoded"):
            h = {"Content-Type": ctype}
            reply = env.admin.request(r["method"], path, headers=h, raw=data)
            if reply.status != 415 or reply.body["error"]["code"] != "unsupported_media_type":
                failures.append(f"{r['method']} {path} as {ctype}: {reply}")
            elif "public" not in r["flags"]:
                check_rate_headers(reply)
    after = snapshot(env.srv, env.slug)
    assert not failures, "\n".join(failures)
    assert before == after, snapshot_diff(before, after)


def test_json_content_types_that_are_taken(env):
    """The spellings of JSON that pass (case, a utf-8 charset, quoted or not),
    and two Content-Type fields, which do not."""
    path = f"{API}/customers"
    for ctype in ("application/json", "Application/JSON", "application/json; charset=utf-8",
                  "application/json;charset=UTF-8", 'application/json; charset="utf-8"',
                  "application/json ;", "application/json; ; charset=utf-8"):
        body = valid_body(env.meta, "customers", env.ids, env.marker + secrets.token_hex(2))
        reply = env.admin.request("POST", path, headers={"Content-Type": ctype},
                                  raw=json.dumps(body).encode())
        assert reply.status == 201, (ctype, reply)
    for ctype in ("application/json; charset=iso-8859-1", "application/jsonp",
                  "application/json; boundary=x", "multipart/form-data; boundary=x"):
        body = valid_body(env.meta, "customers", env.ids, env.marker + "no")
        reply = env.admin.request("POST", path, headers={"Content-Type": ctype},
                                  raw=json.dumps(body).encode())
        assert reply.status == 415, (ctype, reply)
    srv = env.srv
    head = (f"POST {path} HTTP/1.1\r\nHost: {srv.tenant_host(env.slug)}\r\n"
            f"Authorization: Bearer {env.admin.token}\r\n"
            "Content-Type: application/json\r\nContent-Type: text/plain\r\n")
    data = json.dumps(valid_body(env.meta, "customers", env.ids, env.marker + "dup")).encode()
    resp = srv.raw_request(f"{head}Content-Length: {len(data)}\r\n\r\n".encode() + data)
    assert resp.status == 415 and "Content-Type" in resp.body["error"]["message"], resp
    # An empty body needs no type (a module action without one).
    inv = env.admin.post(f"{API}/invoices", valid_body(env.meta, "invoices", env.ids, "e"))
    assert inv.status == 201, inv
    reply = env.admin.request("POST", f"{API}/invoices/{inv.body['id']}/send",
                              headers={"Content-Type": None})
    assert reply.status != 415 and "lines" in reply.body["error"]["message"], reply


# --- 201: Location -------------------------------------------------------------------------

def creating_collections(routes):
    """Patterns P with a POST P and a GET P/:id: where a POST makes P/<id>."""
    gets = {r["pattern"] for r in routes if r["method"] == "GET"}
    return [r for r in routes if r["method"] == "POST" and f"{r['pattern']}/:id" in gets]


def create_body(env, route, ids, marker):
    if route["module"] is not None:
        return valid_body(env.meta, route["module"], ids, marker)
    known = {
        f"{API}/users": {"email": f"{marker.lower()}@{env.slug}.example.com",
                         "password": PASSWORD, "roles": ["staff"]},
        f"{API}/roles": {"name": marker, "description": "x", "permissions": ["customers.view"]},
        f"{API}/auth/tokens": {"name": marker, "scopes": ["self.view"], "password": PASSWORD},
        f"{API}/webhooks": {"url": "https://hooks.example.com/loc", "event_types": ["roles.deleted"],
                            "enabled": False, "description": marker},
        f"{API}/hook-endpoints": {"provider": "stripe", "secret": "whsec_" + marker},
    }
    assert route["pattern"] in known, f"a new creating route: give it a body here: {route}"
    return known[route["pattern"]]


def test_every_201_has_a_location_that_resolves(env, routes):
    colls = creating_collections(routes)
    patterns = {r["pattern"] for r in colls}
    assert {f"{API}/users", f"{API}/roles", f"{API}/auth/tokens"} <= patterns, patterns
    assert {f"{API}/{m}" for m in env.meta} <= patterns, patterns
    # Modules parents first (as make_rows), so each row can name its parents.
    rank = {f"{API}/{m}": i for i, m in enumerate(order(env.meta))}
    colls.sort(key=lambda r: rank.get(r["pattern"], -1))
    ids = {"users": env.admin_id}
    failures = []
    for r in colls:
        marker = f"LOC{secrets.token_hex(4)}"
        reply = env.admin.post(r["pattern"], create_body(env, r, ids, marker))
        if reply.status != 201:
            failures.append(f"POST {r['pattern']}: {reply}")
            continue
        new_id = reply.body["id"]
        loc = reply.headers.get("location")
        if loc != f"{r['pattern']}/{new_id}":
            failures.append(f"POST {r['pattern']}: Location {loc!r} for id {new_id}")
            continue
        got = env.admin.get(loc)
        if got.status != 200 or got.body.get("id") != new_id:
            failures.append(f"GET {loc} after POST {r['pattern']}: {got}")
        if r["module"]:
            ids[r["module"]] = new_id
            if r["module"] == "invoice_lines":
                s = env.admin.post(f"{API}/invoices/{ids['invoices']}/send")
                assert s.status == 200, s
    assert not failures, "\n".join(failures)
    # A refused create has no Location.
    bad = env.admin.post(f"{API}/customers", {"no_such_field": 1})
    assert bad.status == 400 and "location" not in bad.headers, bad
    assert "without a Location" not in env.srv.stderr()


# --- JSON bodies: duplicate keys and parse errors ------------------------------------------

DUP = b'{"zz_dup": 1,\n  "zz_dup": 2}'
DUP_END = DUP.rindex(b'"zz_dup"') + len(b'"zz_dup"')


def test_every_body_route_names_a_duplicate_key(env, routes):
    before = snapshot(env.srv, env.slug)
    failures = []
    for r in json_body_routes(routes):
        path = path_of(env, r)
        who = env.admin if "public" not in r["flags"] else Client(env.srv, env.slug)
        reply = who.request(r["method"], path, raw=DUP,
                            headers={"Content-Type": "application/json"})
        err = reply.body.get("error", {}) if isinstance(reply.body, dict) else {}
        if reply.status != 400 or err.get("code") != "invalid" \
                or '"zz_dup"' not in err.get("message", "") \
                or (err.get("position"), err.get("line"), err.get("column"), err.get("key")) \
                != (DUP_END, 2, DUP_END - DUP.index(b"\n") - 1, "zz_dup"):
            failures.append(f"{r['method']} {path}: {reply}")
    after = snapshot(env.srv, env.slug)
    assert not failures, "\n".join(failures)
    assert before == after, snapshot_diff(before, after)


@pytest.mark.parametrize("raw, names", [
    (b'{"name": "x",', "string or '}' expected"),
    (b'{"password": "s3cret-Value" 1}', "expected"),
    (b'{"name": "x', "premature end of input"),
    (b'{"name" "x"}', "':' expected"),
    (b"{'name': 1}", "string or '}' expected"),
    (b'{"a": 1} {"b": 2}', "end of file expected"),
])
def test_a_parse_error_says_what_and_where(env, raw, names):
    reply = env.admin.request("POST", f"{API}/customers", raw=raw,
                              headers={"Content-Type": "application/json"})
    assert reply.status == 400, reply
    err = reply.body["error"]
    assert set(err) == {"code", "message", "request_id", "position", "line", "column"}, err
    assert err["code"] == "invalid" and names in err["message"], err
    assert err["line"] == 1 and 0 < err["position"] <= len(raw), err
    assert f"byte {err['position']}" in err["message"], err
    assert " near " not in err["message"] and b"s3cret" not in err["message"].encode(), err


@pytest.mark.parametrize("raw, what", [
    (b"[1, 2]", "an array"), (b'"text"', "a string"), (b"12", "a number"),
    (b"true", "a boolean"), (b"null", "null")])
def test_a_body_that_is_not_an_object_has_its_own_message(env, raw, what):
    reply = env.admin.request("POST", f"{API}/customers", raw=raw,
                              headers={"Content-Type": "application/json"})
    assert reply.status == 400, reply
    assert reply.body["error"]["message"] == f"the body must be a JSON object, not {what}"


# --- rate limits ---------------------------------------------------------------------------

def test_rate_headers_count_down_and_429_says_when(start_server):
    srv = start_server(rate_per_second=1, rate_burst=3)
    c = Client(srv, "localhost", source="127.0.0.9")
    seen = []
    for _ in range(3):
        r = c.get("/healthz")
        assert r.status == 200, r
        assert int(r.headers["ratelimit-limit"]) == 3, r.headers
        seen.append(int(r.headers["ratelimit-remaining"]))
        assert 1 <= int(r.headers["ratelimit-reset"]) <= 3, r.headers
    assert seen == [2, 1, 0] or seen[-1] <= 1, seen  # a token may come back meanwhile
    while (r := c.get("/healthz")).status == 200:
        pass
    assert r.status == 429, r
    assert r.headers["ratelimit-remaining"] == "0", r.headers
    assert r.headers["retry-after"] == "1", r.headers
    assert 1 <= int(r.headers["ratelimit-reset"]) <= 3, r.headers
    # Another address has its own, full bucket.
    r = Client(srv, "localhost", source="127.0.0.10").get("/healthz")
    assert r.status == 200 and r.headers["ratelimit-remaining"] == "2", r.headers


def test_sign_in_limit_is_the_one_shown_on_login(env):
    c = Client(env.srv, env.slug, source="127.0.0.7")
    body = {"email": f"nobody-{secrets.token_hex(3)}@{env.slug}.example.com", "password": "x"}
    left = []
    for _ in range(LOGIN_RATE):
        r = c.post(f"{API}/auth/login", body)
        assert r.status == 401, r
        assert r.headers["ratelimit-limit"] == str(LOGIN_RATE), r.headers
        left.append(int(r.headers["ratelimit-remaining"]))
    assert left == list(range(LOGIN_RATE - 1, -1, -1)), left
    r = c.post(f"{API}/auth/login", body)
    assert r.status == 429, r
    assert r.headers["ratelimit-remaining"] == "0", r.headers
    assert 1 <= int(r.headers["retry-after"]) <= 60 // LOGIN_RATE, r.headers
    # Other routes from that address show the per-address bucket.
    check_rate_headers(c.get("/api/v1/tenant/health"))
