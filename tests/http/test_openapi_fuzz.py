"""Schema-driven fuzzing of every operation of GET /api/v1/openapi.json.

For each operation of the served document, hypothesis (derandomized, a
few examples each) makes requests from its schemas: valid bodies, query
parameters, path ids and headers, and invalid ones (wrong types, huge
strings, unknown fields, missing required ones, bad ids, broken JSON, a
wrong Content-Type). Signed in as the tenant's admin (an API token scoped
"*"), every reply must be below 500, every 4xx must have the error shape
of the document's Error schema, and the server (the ASan build) must still
be running after each operation; the harness checks at teardown that it
exits cleanly with no sanitizer report.

What would lock the test out is kept away: no request changes the
password or names the admin's own user or token in a path; the security
switches never turn MFA on; the allowlist never confirms a list without
the caller. Destructive operations (DELETE) run last.
"""

import datetime
import http.client
import json
import secrets
import string
import urllib.parse

import hypothesis.configuration
import jsonschema
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import subprocess

from conftest import BIN, DRIVER, REPO, _servers, child_env
from psa import API, Client, Env

# The fuzz drives parsing and validation, which refuse bad input before any
# statement runs: it runs in the SQLite lane (make check's time is bounded;
# the MariaDB lane keeps test_openapi and every module and list test).
pytestmark = pytest.mark.skipif(DRIVER == "mariadb",
                                reason="request validation does not depend on the driver")

# No example database, and hypothesis's caches under build/: nothing is
# written into the work tree, and every run is the same (derandomize).
hypothesis.configuration.set_hypothesis_home_dir(str(REPO / "build" / "hypothesis"))
settings.register_profile("bulwark-openapi-fuzz", database=None)
settings.load_profile("bulwark-openapi-fuzz")

MANY = 100000
EXAMPLES = 4
SKIPPED = {("POST", "/api/v1/auth/password")}  # would change the admin's password
PRINTABLE = string.ascii_letters + string.digits + " -_.@:"


@pytest.fixture(scope="module")
def srv(tmp_path_factory, tls_cert):
    with _servers(tmp_path_factory, tls_cert) as make:
        yield make(login_rate_per_minute=MANY, lockout_threshold=1000).start()


@pytest.fixture(scope="module")
def env(srv):
    e = Env(srv, "oaf", "oaf")
    # A second user to aim the user routes at (never the admin itself).
    email = f"victim-{secrets.token_hex(3)}@{e.slug}.example.com"
    e.victim = e.admin.ok("POST", f"{API}/users", {"email": email, "roles": []}, status=201)["id"]
    mine = e.admin.ok("GET", f"{API}/auth/tokens")
    tokens = mine.get("data", mine.get("tokens", []))
    e.own_tokens = {t["id"] for t in tokens}
    return e


@pytest.fixture(scope="module")
def doc(srv, env):
    r = Client(srv, env.slug).get("/api/v1/openapi.json")
    assert r.status == 200, r
    return r.body


def _doc_now():
    """The document from `bulwark openapi` (the served one is the same:
    test_openapi.py), read at collection time to parametrize by."""
    proc = subprocess.run([str(BIN), "openapi"], env=child_env(), capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def operations():
    d = _doc_now()
    # Attachments take files, not JSON: tests/http/test_files.py sends them.
    ops = [(m.upper(), p) for p, item in d["paths"].items() for m in item
           if (m.upper(), p) not in SKIPPED and "/files" not in p]
    # Changes that destroy come last: the rows and the user they need are still there before.
    return sorted(ops, key=lambda o: (o[0] == "DELETE", o[1], o[0]))


# --- values from schemas -------------------------------------------------------------

def resolve(doc, s):
    while isinstance(s, dict) and "$ref" in s:
        node = doc
        for part in s["$ref"].lstrip("#/").split("/"):
            node = node[part]
        s = node
    return s


def types_of(s):
    t = s.get("type")
    if t is None:
        return []
    return t if isinstance(t, list) else [t]


def valid(doc, s, depth=0):
    """A strategy for values the schema s accepts (small ones)."""
    s = resolve(doc, s)
    if "allOf" in s:
        merged = {"type": "object", "properties": {}, "required": []}
        for part in s["allOf"]:
            part = resolve(doc, part)
            merged["properties"].update(part.get("properties", {}))
            merged["required"] += part.get("required", [])
        s = merged
    if "const" in s:
        return st.just(s["const"])
    if "enum" in s:
        return st.sampled_from(s["enum"])
    ts = types_of(s) or ["object"]
    return st.one_of(*[valid_typed(doc, s, t, depth) for t in ts])


def valid_typed(doc, s, t, depth):
    if t == "null":
        return st.none()
    if t == "boolean":
        return st.booleans()
    if t == "integer":
        lo, hi = s.get("minimum", -(2**31)), s.get("maximum", 2**31)
        return st.integers(min_value=lo, max_value=min(hi, lo + 10**6)) | st.sampled_from(
            sorted({lo, hi}))
    if t == "number":
        return st.integers(-1000, 1000)
    if t == "string":
        fmt = s.get("format")
        if fmt == "date":
            return st.dates(min_value=datetime.date(1990, 1, 1),
                            max_value=datetime.date(2100, 12, 31)).map(str)
        if fmt == "date-time":
            return st.sampled_from(["2026-01-01T00:00:00Z", "2025-06-30T12:34:56+02:00"])
        if fmt == "email":
            return st.from_regex(r"\A[a-z]{1,8}@example\.com\Z")
        if "pattern" in s:
            return st.from_regex(s["pattern"], fullmatch=True).filter(
                lambda v: len(v) <= s.get("maxLength", 10**9))
        lo, hi = s.get("minLength", 0), min(s.get("maxLength", 30), 30)
        return st.text(alphabet=PRINTABLE, min_size=lo, max_size=max(lo, hi))
    if t == "array":
        item = valid(doc, s.get("items", {"type": "string"}), depth + 1)
        lo = s.get("minItems", 0)
        return st.lists(item, min_size=lo, max_size=max(lo, min(s.get("maxItems", 3), 3)))
    if t == "object":
        props = s.get("properties", {})
        req = [k for k in s.get("required", []) if k in props]
        opt = [k for k in props if k not in req]
        if depth > 3:
            return st.just({})
        least = s.get("minProperties", 0)
        return st.fixed_dictionaries(
            {k: valid(doc, props[k], depth + 1) for k in req},
            optional={k: valid(doc, props[k], depth + 1) for k in opt}).filter(
                lambda d: len(d) >= least)
    return st.none()


def wrong_value(s):
    """Values of the wrong type for schema s (or out of its bounds)."""
    ts = set(types_of(s))
    out = [st.just(v) for v, t in ((True, "boolean"), (7, "integer"), ("x", "string"),
                                   ([1], "array"), ({"a": 1}, "object"), (None, "null"))
           if t not in ts]
    out += [st.just("x" * 70000), st.just(-(2**63)), st.just(2**64), st.just(1.5),
            st.just("\u0000\u0007"), st.just("é" * 300)]
    if "maximum" in s:
        out.append(st.just(s["maximum"] + 1))
    if "enum" in s:
        out.append(st.just("not-one-of-them"))
    return st.one_of(*out)


def invalid_body(doc, s):
    """A strategy for bodies the schema s refuses, or that push at its edges."""
    s = resolve(doc, s)
    props = s.get("properties", {})
    base = valid(doc, s)

    @st.composite
    def mutated(draw):
        d = draw(base)
        if not isinstance(d, dict):
            return d
        d = dict(d)
        how = draw(st.sampled_from(["wrong", "unknown", "missing", "huge_key"]))
        if how == "wrong" and props:
            k = draw(st.sampled_from(sorted(props)))
            d[k] = draw(wrong_value(resolve(doc, props[k])))
        elif how == "unknown":
            d[draw(st.text(alphabet=string.ascii_lowercase, min_size=1, max_size=12))] = 1
        elif how == "missing":
            for k in s.get("required", []):
                d.pop(k, None)
        else:
            d["k" * 5000] = "v"
        return d

    return st.one_of(mutated(), st.sampled_from([[], "text", 12, None, [{"a": 1}], {"": ""}]))


# --- one request ------------------------------------------------------------------------

NOT_GIVEN = object()
FORM = "application/x-www-form-urlencoded"
BAD_IDS = ["0", "-1", "abc", "1.5", "9223372036854775807", "9223372036854775808",
           "99999999", "%2e%2e", "1e3", "%EF%BC%91", "1%00"]
RAW_BODIES = [b"{", b'{"a":1,"a":2}', b"\xff\xfe", b"[1,2", b'{"x": tru}', b"null"]


def path_ids(env, path, name):
    """Valid ids for {name} in path: rows the fixture made, never the admin nor its token."""
    seg = path.split("/")
    owner = seg[seg.index("{" + name + "}") - 1]
    if owner == "users":
        return [str(env.victim)]
    if owner == "tokens" and name == "id":
        return ["123456"]  # one's own tokens only: never the one the test runs with
    if owner == "tokens":
        return ["1", "2"]
    if owner == "roles":
        return ["1", "2", "3"]
    if owner in env.ids:
        return [str(env.ids[owner])]
    return ["1"]


class Quiet:
    """Holds the document and the fixture for a strategy: hypothesis prints a
    strategy's arguments, and the document is half a megabyte."""

    def __init__(self, doc, env):
        self.doc, self.env = doc, env

    def __repr__(self):
        return "Quiet()"


@st.composite
def request_case(draw, ctx, method, path):
    doc, env = ctx.doc, ctx.env
    op = doc["paths"][path][method.lower()]
    params = [resolve(doc, p) for p in op.get("parameters", [])]
    good = draw(st.booleans())
    url = path
    for p in params:
        if p["in"] != "path":
            continue
        ids = path_ids(env, path, p["name"])
        v = draw(st.sampled_from(ids)) if good else draw(st.sampled_from(ids + BAD_IDS))
        url = url.replace("{" + p["name"] + "}", v)
    query = []
    for p in params:
        if p["in"] != "query" or not draw(st.booleans()):
            continue
        schema = p["schema"]
        if good or draw(st.booleans()):
            v = draw(valid(doc, schema))
            v = json.dumps(v) if isinstance(v, bool) else str(v)
        else:
            v = draw(st.sampled_from(["", "x" * 5000, "-", "null", "%zz", "1e999", "[]",
                                      "2026-13-45", "\u00e9"]))
        query.append((p["name"], v))
    if not good and draw(st.booleans()):
        query.append((draw(st.sampled_from(["nosuch", "page", "limit", "a.gte", "sort"])),
                      draw(st.sampled_from(["1", "", "x" * 300]))))
    headers = {}
    for p in params:
        if p["in"] != "header" or not draw(st.booleans()):
            continue
        if p["name"] == "If-Match":
            headers["If-Match"] = draw(st.sampled_from(
                ['"1"', "*", '"1", "2"', '"999"'] + ([] if good else ['W/"1"', "garbage", '"'])))
        elif p["name"] == "Idempotency-Key":
            headers["Idempotency-Key"] = draw(
                st.text(alphabet=string.ascii_letters + string.digits, min_size=1, max_size=40)
                if good else st.sampled_from(["", "a" * 300, "has space", "é"]))
    body, value = None, NOT_GIVEN
    rb = op.get("requestBody")
    if rb is not None:
        (media, content), = rb["content"].items()
        schema = content["schema"]
        # A form (the SAML ACS, the one cross-site route) is sent as a form.
        encode = ((lambda v: urllib.parse.urlencode(v).encode() if isinstance(v, dict)
                   else str(v).encode())
                  if media == FORM else (lambda v: json.dumps(v).encode()))
        kind = "valid" if good else draw(st.sampled_from(["invalid", "raw", "type", "none"]))
        if kind == "valid":
            value = draw(valid(doc, schema))
            body = encode(value)
        elif kind == "invalid":
            body = encode(draw(invalid_body(doc, schema)))
        elif kind == "raw":
            body = draw(st.sampled_from(RAW_BODIES))
        elif kind == "type":
            body = b'{"a": 1}'
            headers["Content-Type"] = draw(st.sampled_from(
                ["text/plain", "application/json; x=1",
                 "application/json" if media == FORM else FORM]))
        if body is not None:
            headers.setdefault("Content-Type", media)
    elif not good and draw(st.booleans()):
        body = b'{"unexpected": true}'
        headers["Content-Type"] = "application/json"
    if query:
        from urllib.parse import quote
        url += "?" + "&".join(f"{quote(k, safe='.')}={quote(v, safe='%')}" for k, v in query)
    return method, url, body, headers, value


def sanitize(method, path, body):
    """Keep a valid body from locking the admin out (see the module docstring)."""
    if body is None or body[:1] != b"{":
        return body
    try:
        d = json.loads(body)
    except ValueError:
        return body
    if not isinstance(d, dict):
        return body
    if path == "/api/v1/settings/security" and d.get("mfa_required") is True:
        d["mfa_required"] = False
    if path == "/api/v1/settings/allowlist":
        d.pop("confirm_self_lockout", None)
    return json.dumps(d).encode()


class Conn:
    """Requests as the admin's token on one kept-alive connection (re-opened when closed)."""

    def __init__(self, srv, env):
        self.srv, self.env, self.c = srv, env, None

    def send(self, method, url, body, headers):
        h = {"Host": self.srv.tenant_host(self.env.slug),
             "Authorization": f"Bearer {self.env.admin.token}", **headers}
        for attempt in (0, 1):
            if self.c is None:
                self.c = self.srv.connection()
            try:
                self.c.request(method, url, body=body, headers=h)
                resp = self.c.getresponse()
                raw = resp.read()
                break
            except (http.client.HTTPException, OSError):
                self.close()
                if attempt or not self.srv.alive():
                    raise
        hdrs = {k.lower(): v for k, v in resp.getheaders()}
        if hdrs.get("connection", "").lower() == "close":
            self.close()
        return resp.status, hdrs, raw

    def close(self):
        if self.c is not None:
            self.c.close()
            self.c = None


def check_reply(validator, op, status, headers, raw):
    assert status < 500, (op, status, raw[:500])
    if 400 <= status < 500:
        assert headers.get("content-type", "").startswith("application/json"), (op, status)
        body = json.loads(raw)
        validator.validate(body)
        assert body["error"]["request_id"], body


@pytest.mark.parametrize("method,path", operations())
def test_operation(srv, env, doc, method, path):
    op = f"{method} {path}"
    assert path in doc["paths"] and method.lower() in doc["paths"][path], op
    error_schema = {"$ref": "#/components/schemas/Error", "components": doc["components"]}
    error_validator = jsonschema.Draft202012Validator(
        error_schema, resolver=jsonschema.RefResolver.from_schema(doc))
    operation = doc["paths"][path][method.lower()]
    rb = operation.get("requestBody")
    body_validator = None
    if rb is not None:
        (_, content), = rb["content"].items()
        body_validator = jsonschema.Draft202012Validator(
            content["schema"],
            resolver=jsonschema.RefResolver.from_schema(doc))

    conn = Conn(srv, env)

    @settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
              phases=[Phase.explicit, Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(case=request_case(Quiet(doc, env), method, path))
    def run(case):
        m, url, body, headers, value = case
        # What this test calls a valid body is valid by the document's own schema.
        if value is not NOT_GIVEN:
            body_validator.validate(value)
        body = sanitize(m, path, body)
        status, hdrs, raw = conn.send(m, url, body, headers)
        check_reply(error_validator, op, status, hdrs, raw)
        assert srv.alive(), f"the server died on {m} {url}"

    try:
        run()
    finally:
        conn.close()
    assert srv.alive(), f"the server died on {op}"
    # The admin is still signed in and allowed: nothing above locked the test out.
    r = env.admin.get(f"{API}/me")
    assert r.status == 200, (op, r)
