"""The admin IP allowlist, checked on every admin or destructive request
(not at login): a session cookie used from an address off the list cannot
change anything, while harmless reads still work. Loopback gives the
addresses: 127.0.0.1 and 127.0.0.2 are two different clients."""

import json

from conftest import unique_slug, wait_for

PASSWORD = "correct horse battery staple"
ALLOWLIST = "/api/v1/settings/allowlist"
SECURITY = "/api/v1/settings/security"


class Admin:
    def __init__(self, srv, slug):
        self.srv, self.slug, self.cookie = srv, slug, None

    def call(self, method, path, body=None, source="127.0.0.1", xff=None):
        host = self.srv.tenant_host(self.slug)
        headers = {"Origin": f"https://{host}"}
        if self.cookie:
            headers["Cookie"] = f"__Host-bulwark_session={self.cookie}"
        if xff:
            headers["X-Forwarded-For"] = xff
        data = None
        if body is not None:
            data = json.dumps(body)
            headers["Content-Type"] = "application/json"
        r = self.srv.request(method, path, headers=headers, body=data, host=self.slug,
                             source=source)
        cookie = r.headers.get("set-cookie", "")
        if cookie.startswith("__Host-bulwark_session="):
            self.cookie = cookie.split("=", 1)[1].split(";", 1)[0] or None
        return r


def admin_of(start_server, tmp_path, **settings):
    srv = start_server(login_rate_per_minute=100000, **settings)
    slug = unique_slug("allow")
    pw = tmp_path / "pw"
    pw.write_text(PASSWORD + "\n")
    srv.cli_ok("tenant", "create", slug, "--admin-email", f"admin@{slug}.example.com",
               "--admin-password-file", pw)
    a = Admin(srv, slug)
    body = {"email": f"admin@{slug}.example.com", "password": PASSWORD}
    assert wait_for(lambda: a.call("POST", "/api/v1/auth/login", body).status == 200, 5)
    return srv, a


def test_stolen_cookie_off_the_list(start_server, tmp_path):
    srv, a = admin_of(start_server, tmp_path)
    assert a.call("GET", ALLOWLIST).body["entries"] == []
    # leaving out one's own address needs an explicit confirmation
    entries = {"entries": [{"cidr": "127.0.0.2/32", "label": "office"}]}
    assert a.call("PUT", ALLOWLIST, entries).status == 409
    assert a.call("PUT", ALLOWLIST, {**entries, "confirm_self_lockout": True}).status == 200
    # the same session from 127.0.0.1 (off the list): admin and destructive refused...
    r = a.call("PUT", SECURITY, {"mfa_required": False})
    assert r.status == 403 and "allowlist" in r.body["error"]["message"], r
    assert a.call("PUT", ALLOWLIST, {"entries": []}).status == 403
    # ...harmless reads still work
    assert a.call("GET", "/api/v1/me").status == 200
    # a spoofed X-Forwarded-For from an untrusted peer changes nothing
    assert a.call("PUT", SECURITY, {"mfa_required": False}, xff="127.0.0.2").status == 403
    # from the listed address, the very same cookie may
    assert a.call("PUT", SECURITY, {"mfa_required": False}, source="127.0.0.2").status == 200
    # the operator can always clear the list from the host
    srv.cli_ok("tenant", "allowlist", "clear", a.slug)
    assert a.call("PUT", SECURITY, {"mfa_required": False}).status == 200


def test_bad_entries_refused(start_server, tmp_path):
    srv, a = admin_of(start_server, tmp_path)
    for bad in ("10.0.0.1/33", "1.2.3", "010.0.0.1", "10.0.0.1/8", "example.com", ""):
        r = a.call("PUT", ALLOWLIST, {"entries": [{"cidr": bad, "label": "x"}]})
        assert r.status == 400 and "entries[0].cidr" in r.body["error"]["message"], (bad, r)
    r = a.call("PUT", ALLOWLIST, {"entries": [{"cidr": "127.0.0.0/8", "label": "loopback"},
                                              {"cidr": "2001:db8::/32", "label": "v6"}]})
    assert r.status == 200 and len(r.body["entries"]) == 2, r
    assert a.call("PUT", SECURITY, {"mfa_required": False}).status == 200  # 127.0.0.1 is in /8


def test_behind_a_trusted_proxy_the_forwarded_address_counts(start_server, tmp_path):
    # 127.0.0.3 plays the reverse proxy
    srv, a = admin_of(start_server, tmp_path, trusted_proxies="127.0.0.3")
    entries = {"entries": [{"cidr": "198.51.100.0/24", "label": "office"}],
               "confirm_self_lockout": True}
    assert a.call("PUT", ALLOWLIST, entries).status == 200
    # through the proxy, for a client in the office range: allowed
    assert a.call("PUT", SECURITY, {"mfa_required": False}, source="127.0.0.3",
                  xff="198.51.100.20").status == 200
    # through the proxy, for a client elsewhere: refused
    assert a.call("PUT", SECURITY, {"mfa_required": False}, source="127.0.0.3",
                  xff="203.0.113.5").status == 403
    # the same claim straight from a non-proxy: ignored, so refused
    assert a.call("PUT", SECURITY, {"mfa_required": False}, source="127.0.0.2",
                  xff="198.51.100.20").status == 403


def test_forged_first_forwarded_for_line_refused(start_server, tmp_path):
    # Behind a proxy that appends its own X-Forwarded-For line, a client's own
    # first line "10.1.2.3" must not pass for the allowlisted office address.
    srv, a = admin_of(start_server, tmp_path, trusted_proxies="127.0.0.1")
    office = {"entries": [{"cidr": "10.1.2.3/32", "label": "office"}]}
    assert a.call("PUT", ALLOWLIST, office, xff="10.1.2.3").status == 200
    host = srv.tenant_host(a.slug)
    body = json.dumps({"entries": []}).encode()

    def put(*xff):
        lines = b"".join(b"X-Forwarded-For: " + v.encode() + b"\r\n" for v in xff)
        return srv.raw_request(
            b"PUT " + ALLOWLIST.encode() + b" HTTP/1.1\r\nHost: " + host.encode() +
            b"\r\nOrigin: https://" + host.encode() +
            b"\r\nCookie: __Host-bulwark_session=" + a.cookie.encode() +
            b"\r\nContent-Type: application/json\r\n" + lines +
            b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body,
            source="127.0.0.1", method="PUT")

    r = put("10.1.2.3", "203.0.113.7")
    assert r.status == 403 and "allowlist" in r.body["error"]["message"], r
    assert a.call("GET", ALLOWLIST, xff="10.1.2.3").body["entries"][0]["cidr"] == "10.1.2.3/32"
    # the office itself, behind the same proxy, still may
    assert put("10.1.2.3").status == 200
    assert a.call("GET", ALLOWLIST, xff="10.1.2.3").body["entries"] == []
