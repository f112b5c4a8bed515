"""Attacks on the SAML ACS (issue 17), each refused with its reason, audited,
and leaving nothing behind: no session, no user, no consumed request.

Responses come from the independent IdP (pysaml2, tests/http/saml_idp.py)
unsigned, are changed with lxml, and are signed with python3-xmlsec by the
IdP's key (an attacker who can get the IdP to sign something, or who
rearranges what it signed) or by a key of the attacker's own.
"""

import copy
import datetime
import secrets
import threading
import urllib.parse

import pytest
from lxml import etree

import conftest
from psa import API, new_user
from saml_idp import RSA_SHA1, SHA1, b64, cert_body, make_key, new_id, parse, serialise, sign
from test_saml import SAML_COOKIE, SsoEnv, session_of

SAML = "{urn:oasis:names:tc:SAML:2.0:assertion}"
SAMLP = "{urn:oasis:names:tc:SAML:2.0:protocol}"
DS = "{http://www.w3.org/2000/09/xmldsig#}"


@pytest.fixture(scope="module")
def world(tmp_path_factory, tls_cert):
    """Two tenants, A and B, trusting one IdP, both allowing A's domain (the
    worst case for cross-tenant posts), and an attacker's own key pair."""
    with conftest._servers(tmp_path_factory, tls_cert) as make:
        srv = make(login_rate_per_minute=100000, lockout_threshold=1000).start()
        tmp = tmp_path_factory.mktemp("saml-attacks")
        a = SsoEnv(srv, tmp, "ssoa")
        b = SsoEnv(srv, tmp, "ssob", idp=a.idp)
        a.configure()
        b.configure(allowed_domains=[b.domain, a.domain])
        evil_key, evil_cert = make_key(tmp, "evil", "idp.test")
        try:
            yield a, b, (evil_key, evil_cert)
        finally:
            a.close()
            b.close()
            a.idp.close()


@pytest.fixture
def env(world):
    return world[0]


# --- making and posting a response ---------------------------------------------

def now_utc(offset=0):
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=offset)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def assertion_of(root):
    return root.find(f"{SAML}Assertion")


def unsigned(env, email, irt, attributes=None):
    """pysaml2's Response for env's SP, no signature yet -> lxml root."""
    xml = env.idp.response(env.entity, env.acs, email, attributes, in_response_to=irt,
                           sign_assertion=False, sign_response=False)
    return parse(xml)


def sign_assertion(env, root, key=None, **kw):
    a = assertion_of(root)
    sign(a, key or env.idp.key, (key and kw.pop("cert")) or env.idp.cert, **kw)
    return root


class Attempt:
    """One SP-initiated sign-in: the browser's cookie and the request's id."""

    def __init__(self, env):
        self.env = env
        loc, self.cookie = env.begin()
        self.irt = env.request_id(loc)

    def post(self, root_or_b64, relay=None, cookie=True):
        data = root_or_b64 if isinstance(root_or_b64, str) else b64(serialise(root_or_b64))
        return self.env.acs_post(data, relay, self.cookie if cookie else None)


def refusal_count(env, reason):
    rows = env.admin.ok("GET", f"{API}/reporting/audit?entity=auth&action=sso_refused"
                        "&limit=100")["data"]
    return sum(1 for r in rows if (r.get("after") or {}).get("reason") == reason)


def users(env):
    return {u["email"] for u in env.admin.ok("GET", f"{API}/users?limit=100")["data"]}


def check_refused(env, reply, reason, before_count, before_users):
    assert reply.status == 403, reply
    err = reply.body["error"]
    assert err["code"] == "forbidden" and err["reason"] == reason, reply
    assert session_of(reply) is None, reply.headers
    assert refusal_count(env, reason) == before_count + 1, reason
    assert users(env) == before_users


def refused(env, reason, make, relay=None, cookie=True):
    """make(attempt) -> the response to post; it must be refused for reason."""
    count, known = refusal_count(env, reason), users(env)
    at = Attempt(env)
    r = at.post(make(at), relay, cookie)
    check_refused(env, r, reason, count, known)
    return at


def fresh_email(env, local="mallory"):
    return f"{local}-{secrets.token_hex(3)}@{env.domain}"


# --- the control: the same construction, unchanged, is accepted ----------------------

def test_a_response_signed_by_the_suite_is_accepted(env):
    """Proof that the forging below makes responses Bulwark would take when
    nothing is wrong with them: every refusal is the attack's doing."""
    at = Attempt(env)
    r = at.post(sign_assertion(env, unsigned(env, fresh_email(env, "ok"), at.irt)))
    assert r.status == 303, r
    assert session_of(r)


def test_response_signed_too_is_accepted(env):
    at = Attempt(env)
    root = sign_assertion(env, unsigned(env, fresh_email(env, "ok2"), at.irt))
    sign(root, env.idp.key, env.idp.cert)
    r = at.post(root)
    assert r.status == 303, r


# --- signatures -------------------------------------------------------------------------

def test_unsigned_response(env):
    refused(env, "signature", lambda at: unsigned(env, fresh_email(env), at.irt))


def test_unsigned_assertion_in_a_signed_response(env):
    def make(at):
        root = unsigned(env, fresh_email(env), at.irt)
        sign(root, env.idp.key, env.idp.cert)
        return root
    refused(env, "signature", make)


def test_assertion_changed_after_signing(env):
    victim = fresh_email(env, "victim")
    def make(at):
        root = sign_assertion(env, unsigned(env, fresh_email(env), at.irt))
        assertion_of(root).find(f"{SAML}Subject/{SAML}NameID").text = victim
        return root
    refused(env, "signature", make)


def test_signed_by_a_certificate_that_is_not_the_configured_one(world):
    env, _, (key, cert) = world
    refused(env, "signature", lambda at: sign_assertion(
        env, unsigned(env, fresh_email(env), at.irt), key=key, cert=cert))


def test_the_old_certificate_is_refused_once_the_idp_rotates(world):
    """Bulwark keeps each tenant's lasso server (the IdP's certificate in
    it): a new certificate put in the settings must replace it at once, and
    the old one must verify nothing more."""
    env, _, (key, cert) = world
    rotated = env.idp.metadata().replace(cert_body(env.idp.cert), cert_body(cert))
    assert rotated != env.idp.metadata()
    try:
        env.configure(idp_metadata=rotated)
        refused(env, "signature", lambda at: sign_assertion(
            env, unsigned(env, fresh_email(env), at.irt)))
        at = Attempt(env)
        r = at.post(sign_assertion(env, unsigned(env, fresh_email(env, "new"), at.irt),
                                   key=key, cert=cert))
        assert r.status == 303, r
    finally:
        env.configure()
    refused(env, "signature", lambda at: sign_assertion(
        env, unsigned(env, fresh_email(env), at.irt), key=key, cert=cert))


def test_sha1_signature_method(env):
    refused(env, "signature_algorithm", lambda at: sign_assertion(
        env, unsigned(env, fresh_email(env), at.irt), sign_alg=RSA_SHA1))


def test_sha1_digest(env):
    refused(env, "signature_algorithm", lambda at: sign_assertion(
        env, unsigned(env, fresh_email(env), at.irt), digest_alg=SHA1))


# --- signature wrapping (XSW1-XSW8) ------------------------------------------------
# The attacker holds a genuine signed response for their own account and moves
# the signed part so that a naive SP verifies one element and reads another.

def genuine(env, at, sign_response=False):
    """A signed response for the attacker's own account (what they can get)."""
    root = sign_assertion(env, unsigned(env, fresh_email(env, "attacker"), at.irt))
    if sign_response:
        sign(root, env.idp.key, env.idp.cert)
    return root


def evil_assertion(env, signed_assertion, victim):
    """A copy of the signed assertion, about victim, unsigned, with a new ID."""
    evil = copy.deepcopy(signed_assertion)
    for s in evil.findall(f"{DS}Signature"):
        evil.remove(s)
    evil.set("ID", new_id())
    evil.find(f"{SAML}Subject/{SAML}NameID").text = victim
    return evil


def xsw1(env, at, victim):
    """The signed Response moved into its own Signature; a new Response, unsigned, around."""
    orig = genuine(env, at, sign_response=True)
    new = copy.deepcopy(orig)
    new.set("ID", new_id())
    sig = new.find(f"{DS}Signature")
    new.replace(assertion_of(new), evil_assertion(env, assertion_of(orig), victim))
    sig.append(orig)
    return new


def xsw2(env, at, victim):
    """As XSW1 with the signed Response before the Signature (detached)."""
    orig = genuine(env, at, sign_response=True)
    new = copy.deepcopy(orig)
    new.set("ID", new_id())
    sig = new.find(f"{DS}Signature")
    new.replace(assertion_of(new), evil_assertion(env, assertion_of(orig), victim))
    sig.addprevious(orig)
    return new


def xsw3(env, at, victim):
    """An evil assertion inserted before the signed one."""
    root = genuine(env, at)
    a = assertion_of(root)
    a.addprevious(evil_assertion(env, a, victim))
    return root


def xsw3_same_id(env, at, victim):
    """XSW3 with the evil assertion given the signed one's ID."""
    root = genuine(env, at)
    a = assertion_of(root)
    evil = evil_assertion(env, a, victim)
    evil.set("ID", a.get("ID"))
    a.addprevious(evil)
    return root


def xsw4(env, at, victim):
    """The signed assertion moved inside the evil one."""
    root = genuine(env, at)
    a = assertion_of(root)
    evil = evil_assertion(env, a, victim)
    root.replace(a, evil)
    evil.append(a)
    return root


def xsw5(env, at, victim):
    """The evil assertion carries the signed one's Signature; the signed one
    appended after it, unsigned."""
    root = genuine(env, at)
    a = assertion_of(root)
    evil = evil_assertion(env, a, victim)
    evil.set("ID", a.get("ID"))
    sig = a.find(f"{DS}Signature")
    evil.find(f"{SAML}Issuer").addnext(copy.deepcopy(sig))
    a.remove(sig)
    root.replace(a, evil)
    root.append(a)
    return root


def xsw6(env, at, victim):
    """The signed assertion inside the Signature of the evil one."""
    root = genuine(env, at)
    a = assertion_of(root)
    evil = evil_assertion(env, a, victim)
    evil.set("ID", a.get("ID"))
    sig = copy.deepcopy(a.find(f"{DS}Signature"))
    evil.find(f"{SAML}Issuer").addnext(sig)
    root.replace(a, evil)
    a.remove(a.find(f"{DS}Signature"))
    sig.append(a)
    return root


def xsw7(env, at, victim):
    """The signed assertion hidden in an Extensions element; the evil one in its place."""
    root = genuine(env, at)
    a = assertion_of(root)
    evil = evil_assertion(env, a, victim)
    ext = root.makeelement(f"{SAMLP}Extensions", nsmap=None)
    root.find(f"{SAML}Issuer").addnext(ext)
    root.replace(a, evil)
    ext.append(a)
    return root


def xsw8(env, at, victim):
    """The signed assertion in a ds:Object of the evil one's Signature."""
    root = genuine(env, at)
    a = assertion_of(root)
    evil = evil_assertion(env, a, victim)
    evil.set("ID", a.get("ID"))
    sig = copy.deepcopy(a.find(f"{DS}Signature"))
    evil.find(f"{SAML}Issuer").addnext(sig)
    obj = sig.makeelement(f"{DS}Object", nsmap=None)
    sig.append(obj)
    a.remove(a.find(f"{DS}Signature"))
    root.replace(a, evil)
    obj.append(a)
    return root


@pytest.mark.parametrize("wrap", [xsw1, xsw2, xsw3, xsw3_same_id, xsw4, xsw5, xsw6, xsw7, xsw8],
                         ids=lambda f: f.__name__)
def test_signature_wrapping(env, wrap):
    uid, victim = new_user(env.admin, ["admin"], local=f"boss-{secrets.token_hex(3)}")
    victim = victim.replace(f"@{env.admin.slug}.example.com", f"@{env.domain}")
    refused(env, "structure", lambda at: wrap(env, at, victim))


# --- what the NameID says ------------------------------------------------------------

def test_comment_injection_in_name_id(env):
    """The attacker owns victim@domain.evil.example at the IdP; a comment makes a
    naive SP read the first text node, victim@domain, while the signature
    (c14n without comments) still verifies."""
    _, victim = new_user(env.admin, ["admin"], local=f"chief-{secrets.token_hex(3)}")
    def make(at):
        root = unsigned(env, victim + ".evil.example", at.irt)
        nid = assertion_of(root).find(f"{SAML}Subject/{SAML}NameID")
        nid.text = victim
        c = etree.Comment("")
        c.tail = ".evil.example"
        nid.append(c)
        return sign_assertion(env, root)
    refused(env, "name_id", make)


def test_foreign_domain(env):
    email = f"outsider-{secrets.token_hex(3)}@elsewhere.example"
    refused(env, "domain", lambda at: sign_assertion(env, unsigned(env, email, at.irt)))


def test_lookalike_domain(env):
    for email in (f"x-{secrets.token_hex(2)}@{env.domain}.evil.example",
                  f"x-{secrets.token_hex(2)}@evil{env.domain}",
                  f"x-{secrets.token_hex(2)}@sub.{env.domain}"):
        refused(env, "domain", lambda at: sign_assertion(env, unsigned(env, email, at.irt)))


def test_an_address_that_folds_into_a_user(env):
    """The lookup folds case and compatibility forms: maß@ must not sign in as
    mass@ (nor a fullwidth letter as its ASCII twin)."""
    tag = secrets.token_hex(3)
    uid, victim = new_user(env.admin, ["staff"], local=f"mass{tag}")
    for local in (f"maß{tag}", f"m\uff41ss{tag}"):
        forged = f"{local}@{env.domain}"
        refused(env, "name_id", lambda at: sign_assertion(env, unsigned(env, forged, at.irt)))
    # Upper case ASCII is the same address, and signs the user in.
    at = Attempt(env)
    r = at.post(sign_assertion(env, unsigned(env, victim.upper(), at.irt)))
    assert r.status == 303 and session_of(r), r


def test_two_assertions(env):
    def make(at):
        root = genuine(env, at)
        second = sign_assertion(env, unsigned(env, fresh_email(env), at.irt))
        root.append(assertion_of(second))
        return root
    refused(env, "structure", make)


# --- where and for whom ----------------------------------------------------------------

def mutate_then_sign(env, change, sign_response=False):
    def make(at):
        root = unsigned(env, fresh_email(env), at.irt)
        change(root)
        sign_assertion(env, root)
        if sign_response:
            sign(root, env.idp.key, env.idp.cert)
        return root
    return make


def test_wrong_audience(env):
    def change(root):
        assertion_of(root).find(f"{SAML}Conditions/{SAML}AudienceRestriction/{SAML}Audience"
                                ).text = "https://other.example/saml/metadata"
    refused(env, "audience", mutate_then_sign(env, change))


def test_wrong_destination(env):
    refused(env, "destination", mutate_then_sign(
        env, lambda root: root.set("Destination", "https://other.example/saml/acs"), True))


def test_wrong_recipient(env):
    def change(root):
        assertion_of(root).find(f"{SAML}Subject/{SAML}SubjectConfirmation/"
                                f"{SAML}SubjectConfirmationData"
                                ).set("Recipient", "https://other.example/saml/acs")
    refused(env, "recipient", mutate_then_sign(env, change))


def test_wrong_issuer(env):
    def change(root):
        for iss in root.iter(f"{SAML}Issuer"):
            iss.text = "https://idp.evil.example/metadata"
    refused(env, "issuer", mutate_then_sign(env, change))


def test_not_bearer(env):
    def change(root):
        assertion_of(root).find(f"{SAML}Subject/{SAML}SubjectConfirmation").set(
            "Method", "urn:oasis:names:tc:SAML:2.0:cm:holder-of-key")
    refused(env, "confirmation", mutate_then_sign(env, change))


def test_unknown_condition(env):
    def change(root):
        cond = assertion_of(root).find(f"{SAML}Conditions")
        pr = cond.makeelement(f"{SAML}ProxyRestriction", nsmap=None)
        pr.set("Count", "0")
        cond.append(pr)
    refused(env, "conditions", mutate_then_sign(env, change))


def test_failed_status(env):
    def change(root):
        root.find(f"{SAMLP}Status/{SAMLP}StatusCode").set(
            "Value", "urn:oasis:names:tc:SAML:2.0:status:Responder")
    refused(env, "status", mutate_then_sign(env, change, True))


def times(root, not_before, not_on_or_after):
    a = assertion_of(root)
    cond = a.find(f"{SAML}Conditions")
    cond.set("NotBefore", not_before)
    cond.set("NotOnOrAfter", not_on_or_after)
    scd = a.find(f"{SAML}Subject/{SAML}SubjectConfirmation/{SAML}SubjectConfirmationData")
    scd.set("NotOnOrAfter", not_on_or_after)


def test_expired(env):
    refused(env, "expired", mutate_then_sign(
        env, lambda root: times(root, now_utc(-600), now_utc(-61 - 5))))


def test_not_yet_valid(env):
    refused(env, "not_yet_valid", mutate_then_sign(
        env, lambda root: times(root, now_utc(61 + 5), now_utc(600))))


def test_clock_skew_within_a_minute_is_accepted(env):
    at = Attempt(env)
    root = unsigned(env, fresh_email(env, "skew"), at.irt)
    times(root, now_utc(40), now_utc(300))
    r = at.post(sign_assertion(env, root))
    assert r.status == 303, r


# --- requests, browsers and replays ---------------------------------------------------

def test_replayed_response(env):
    at = Attempt(env)
    root = sign_assertion(env, unsigned(env, fresh_email(env, "replay"), at.irt))
    data = b64(serialise(root))
    assert at.post(data).status == 303
    count, known = refusal_count(env, "in_response_to"), users(env)
    r = at.post(data)  # the same browser, the same response: its request is used up
    check_refused(env, r, "in_response_to", count, known)


def test_replayed_assertion_idp_initiated(env):
    """With IdP-initiated sign-in on there is no request to use up: the replay
    cache alone stops a second use of one assertion."""
    try:
        env.configure(idp_initiated=True)
        root = sign_assertion(env, unsigned(env, fresh_email(env, "replay2"), None))
        data = b64(serialise(root))
        assert env.acs_post(data).status == 303
        count, known = refusal_count(env, "replay"), users(env)
        check_refused(env, env.acs_post(data), "replay", count, known)
    finally:
        env.configure(idp_initiated=False)


def test_in_response_to_another_browsers_request(env):
    other = Attempt(env)  # the victim's browser began this sign-in
    def make(at):
        return sign_assertion(env, unsigned(env, fresh_email(env), other.irt))
    refused(env, "in_response_to", make)
    # and the victim's own request is still good: the attack did not use it up
    r = other.post(sign_assertion(env, unsigned(env, fresh_email(env, "victim2"), other.irt)))
    assert r.status == 303, r


def test_in_response_to_without_the_browser_cookie(env):
    refused(env, "in_response_to",
            lambda at: sign_assertion(env, unsigned(env, fresh_email(env), at.irt)),
            cookie=False)


def test_in_response_to_unknown(env):
    refused(env, "in_response_to",
            lambda at: sign_assertion(env, unsigned(env, fresh_email(env), new_id())))


def test_unsolicited_when_idp_initiated_is_off(env):
    refused(env, "unsolicited",
            lambda at: sign_assertion(env, unsigned(env, fresh_email(env), None)))


def test_two_posts_at_once_sign_in_once(env):
    at = Attempt(env)
    data = b64(serialise(sign_assertion(env, unsigned(env, fresh_email(env, "race"), at.irt))))
    replies = [None] * 6
    def go(i):
        replies[i] = at.post(data)
    threads = [threading.Thread(target=go, args=(i,)) for i in range(len(replies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.status for r in replies) == [303] + [403] * (len(replies) - 1), replies


# --- tenants ------------------------------------------------------------------------

def test_assertion_for_tenant_a_posted_to_tenant_b(world):
    a, b, _ = world
    email = fresh_email(a, "crosser")
    at_b = Attempt(b)  # a request of B's, so that only the audience and URLs differ
    root = unsigned(a, email, at_b.irt)
    sign_assertion(a, root)
    sign(root, a.idp.key, a.idp.cert)
    count, known = refusal_count(b, "destination"), users(b)
    r = at_b.post(root)
    check_refused(b, r, "destination", count, known)


def test_assertion_for_tenant_a_with_b_destination(world):
    """Only the response's Destination rewritten (it is not what is signed when
    the assertion alone is): the assertion's Recipient and Audience still say A."""
    a, b, _ = world
    at_b = Attempt(b)
    root = sign_assertion(a, unsigned(a, fresh_email(a, "crosser2"), at_b.irt))
    root.set("Destination", b.acs)
    known = users(b)
    r = at_b.post(root)
    assert r.status == 403 and r.body["error"]["reason"] in ("audience", "recipient"), r
    assert users(b) == known


# --- RelayState and the form -----------------------------------------------------------

@pytest.mark.parametrize("relay", ["https://evil.example/", "//evil.example/x",
                                   "/\\evil.example", "javascript:alert(1)", "\n/x"])
def test_relay_state_elsewhere(env, relay):
    refused(env, "relay_state",
            lambda at: sign_assertion(env, unsigned(env, fresh_email(env), at.irt)),
            relay=relay)


@pytest.mark.parametrize("payload,reason", [
    ("not base64 at all!", "malformed"),
    (b64("<samlp:Response"), "malformed"),
    (b64('<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
         '<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol">&x;'
         '</samlp:Response>'), "malformed"),
    (b64("<html/>"), "malformed"),
])
def test_garbage(env, payload, reason):
    refused(env, reason, lambda at: payload)


def test_doctype_with_a_genuine_response(env):
    def make(at):
        xml = serialise(genuine(env, at))
        return b64('<!DOCTYPE samlp:Response [<!ENTITY a "b">]>' + xml)
    refused(env, "malformed", make)


def test_acs_takes_only_a_form(env):
    at = Attempt(env)
    data = b64(serialise(genuine(env, at)))
    r = env.public("POST", "/saml/acs", headers={
        "Content-Type": "application/json", "Cookie": f"{SAML_COOKIE}={at.cookie}",
        "Origin": "https://evil.example"},
        raw=('{"SAMLResponse": "%s"}' % data).encode())
    assert r.status in (403, 415), r
    assert session_of(r) is None


def test_cross_site_exemption_is_the_acs_route_only(env):
    """A form POST from another origin to any other route is still refused by
    the Origin check, even on a route that takes a body."""
    from psa import sign_in
    _, email = new_user(env.admin, ["staff"], local=f"csrf-{secrets.token_hex(3)}")
    c = sign_in(env.srv, env.slug, email)
    try:
        before = c.get(f"{API}/auth/tokens").body
        r = c.request("POST", f"{API}/auth/tokens",
                      headers={"Origin": "https://evil.example",
                               "Content-Type": "application/x-www-form-urlencoded"},
                      raw=b"name=stolen&scopes=*&password=x")
        assert r.status in (403, 415), r
        assert c.get(f"{API}/auth/tokens").body == before
    finally:
        c.close()


def test_a_session_cookie_sent_along_is_not_kept(env):
    """Session fixation: the session the ACS makes is new, whatever the browser sent."""
    at = Attempt(env)
    data = b64(serialise(genuine(env, at)))
    planted = "A" * 43
    h = {"Content-Type": "application/x-www-form-urlencoded",
         "Cookie": f"{SAML_COOKIE}={at.cookie}; __Host-bulwark_session={planted}"}
    r = env.public("POST", "/saml/acs", headers=h,
                   raw=urllib.parse.urlencode({"SAMLResponse": data}).encode())
    assert r.status == 303, r
    assert session_of(r) not in (None, planted)


def test_refusal_reason_is_in_the_audit_row(env):
    at = Attempt(env)
    r = at.post(unsigned(env, fresh_email(env), at.irt))
    assert r.status == 403
    rows = env.admin.ok("GET", f"{API}/reporting/audit?entity=auth&action=sso_refused"
                        "&limit=1")["data"]
    assert rows and rows[0]["after"]["reason"] == "signature", rows
    assert rows[0]["request_id"] == r.body["error"]["request_id"], (rows, r.body)


def test_big_response_refused(env):
    at = Attempt(env)
    root = genuine(env, at)
    pad = root.makeelement(f"{SAMLP}Extensions", nsmap=None)
    pad.text = "x" * (300 * 1024)
    root.find(f"{SAML}Issuer").addnext(pad)
    r = at.post(root)
    assert r.status in (403, 413), r
    assert session_of(r) is None
    if r.status == 403:
        assert r.body["error"]["reason"] == "malformed", r

