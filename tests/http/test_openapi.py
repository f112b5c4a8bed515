"""The OpenAPI document (src/openapi): `bulwark openapi` and
GET /api/v1/openapi.json give the same document; it names every route of
`bulwark routes` with its permission; it is public and answers without a
tenant as on a tenant's host. (The linter runs in make check's unit lane;
tests/unit/test_openapi.c covers the generator itself, and
test_openapi_fuzz.py drives every operation from this document.)
"""

import json
import re

import pytest

from conftest import _servers, check_error_body, run_bulwark
from psa import route_table
from test_identity import make_tenant

OPENAPI = "/api/v1/openapi.json"


@pytest.fixture(scope="module")
def srv(tmp_path_factory, tls_cert):
    with _servers(tmp_path_factory, tls_cert) as make:
        yield make().start()


@pytest.fixture(scope="module")
def cli_doc(tmp_path_factory):
    out = tmp_path_factory.mktemp("openapi") / "openapi.json"
    proc = run_bulwark("openapi", "--output", out, cwd=out.parent)
    assert proc.returncode == 0, proc.stderr
    return json.loads(out.read_text())


def oas_path(pattern):
    return re.sub(r":([a-z_]+)", r"{\1}", pattern)


def test_every_route_is_documented(cli_doc):
    routes = route_table(include_files=True)
    ops = {(m.upper(), p): op for p, item in cli_doc["paths"].items() for m, op in item.items()}
    want = {(r["method"], oas_path(r["pattern"])) for r in routes}
    missing = sorted(want - set(ops))
    assert not missing, f"routes missing from the document: {missing}"
    # Nothing documented that the server does not serve.
    assert set(ops) == want, sorted(set(ops) - want)
    for r in routes:
        op = ops[(r["method"], oas_path(r["pattern"]))]
        assert op["operationId"] and op["summary"], op
        assert op["x-allowlist"] == r["allowlist"], (r, op["x-allowlist"])
        if r["permission"] is None:
            assert op["security"] == [], r
        else:
            assert op["x-permission"] == r["permission"], r
            assert r["permission"] in op["description"], r
            assert {"401", "403"} <= set(op["responses"]), r
        for status, resp in op["responses"].items():
            if status.startswith(("4", "5")):
                assert resp == {"$ref": resp["$ref"]} and resp["$ref"].startswith(
                    "#/components/responses/"), (r, status)
    ids = [op["operationId"] for op in ops.values()]
    assert len(ids) == len(set(ids))
    err = cli_doc["components"]["schemas"]["Error"]
    assert err["properties"]["error"]["required"] == ["code", "message", "request_id"]


def test_served_document_is_the_cli_document(srv, cli_doc):
    # On the bare base domain: no tenant there.
    bare = srv.request("GET", OPENAPI, host=f"localhost:{srv.port}")
    assert bare.status == 200, bare
    assert bare.headers["content-type"].startswith("application/json")
    assert bare.body == cli_doc
    # On a tenant's host, not signed in: the same document.
    t = make_tenant(srv, "oa")
    again = srv.request("GET", OPENAPI, host=t.slug)
    assert again.status == 200, again
    assert again.body == cli_doc
    # Built once: byte for byte the same reply.
    third = srv.request("GET", OPENAPI, host=t.slug)
    assert json.dumps(third.body) == json.dumps(again.body)


def test_only_get(srv):
    r = srv.request("POST", OPENAPI, host=f"localhost:{srv.port}", body=b"{}",
                    headers={"Content-Type": "application/json"})
    check_error_body(r, 405, "method_not_allowed")


def test_cli(tmp_path):
    proc = run_bulwark("openapi", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["openapi"] == "3.1.0"
    proc = run_bulwark("openapi", "--help", cwd=tmp_path)
    assert proc.returncode == 0 and "--output" in proc.stdout
    proc = run_bulwark("openapi", "extra", cwd=tmp_path)
    assert proc.returncode == 2 and "unexpected argument" in proc.stderr
    proc = run_bulwark("openapi", "--output", tmp_path / "no" / "such" / "dir.json", cwd=tmp_path)
    assert proc.returncode == 1 and "dir.json" in proc.stderr
