"""A SAML 2.0 identity provider for the tests: Debian's pysaml2 (with xmlsec1)
on loopback, an implementation independent of lasso.

- TestIdP serves the HTTP-Redirect SSO endpoint on 127.0.0.1 (plain HTTP,
  which Bulwark allows for an IdP on loopback only). A GET there carries the
  SP's signed AuthnRequest: pysaml2 parses it and verifies its signature with
  the certificate in the SP's metadata, and the reply is the HTML form a
  browser would post to the ACS, signed by pysaml2.
- response() builds a Response in-process (SP- or IdP-initiated) for the
  tests that post it themselves.
- unsigned_response() and sign() let the attack tests change a Response with
  lxml and sign what they want with python3-xmlsec, the way an attacker who
  holds a key (their own, or one that leaked) would.

Run under /usr/bin/python3: pysaml2, lxml and xmlsec are Debian's packages.
"""

import base64
import html
import http.server
import re
import subprocess
import threading
import urllib.parse
import uuid
from pathlib import Path

import xmlsec
from lxml import etree
from saml2 import BINDING_HTTP_REDIRECT
from saml2.config import IdPConfig
from saml2.saml import NAMEID_FORMAT_EMAILADDRESS, NAME_FORMAT_BASIC, NameID
from saml2.server import Server
from saml2.sigver import verify_redirect_signature

NS = {
    "samlp": "urn:oasis:names:tc:SAML:2.0:protocol",
    "saml": "urn:oasis:names:tc:SAML:2.0:assertion",
    "md": "urn:oasis:names:tc:SAML:2.0:metadata",
    "ds": "http://www.w3.org/2000/09/xmldsig#",
}
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
RSA_SHA1 = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
SHA1 = "http://www.w3.org/2000/09/xmldsig#sha1"
AUTHN_PASSWORD = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"


def make_key(directory, name, cn):
    """An RSA-2048 key and a self-signed certificate for cn -> (key path, cert path)."""
    key, cert = Path(directory) / f"{name}.key", Path(directory) / f"{name}.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-sha256", "-nodes",
                    "-days", "30", "-subj", f"/CN={cn}", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    return key, cert


def cert_body(path):
    """The base64 DER of a PEM certificate, on one line."""
    text = Path(path).read_text()
    return "".join(text.split("-----")[2].split())


def sp_certificate(sp_metadata):
    """The signing certificate (base64 DER) in an SP's metadata."""
    root = etree.fromstring(sp_metadata.encode())
    found = root.xpath("//md:SPSSODescriptor/md:KeyDescriptor//ds:X509Certificate/text()",
                       namespaces=NS)
    assert found, sp_metadata
    return "".join(found[0].split())


class TestIdP:
    __test__ = False
    """One IdP (entity id, key, SSO endpoint) trusting the SPs given to trust()."""

    def __init__(self, directory, name="idp"):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.key, self.cert = make_key(self.dir, name, f"{name}.test")
        self.sp_metadata = []
        self.sp_certs = {}          # SP entity id -> its signing certificate (base64 DER)
        self.user = None            # who the IdP says signed in: (email, attributes)
        self.requests = []          # AuthnRequests received and verified: (id, issuer, acs)
        self.refusals = []          # why a request to /sso was refused
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.port = self.httpd.server_address[1]
        self.entity_id = f"http://127.0.0.1:{self.port}/{name}/metadata"
        self.sso_url = f"http://127.0.0.1:{self.port}/{name}/sso"
        self.server = self._server()
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    # --- configuration -----------------------------------------------------
    def _server(self):
        conf = IdPConfig()
        conf.load({
            "entityid": self.entity_id,
            "service": {"idp": {
                "endpoints": {"single_sign_on_service": [(self.sso_url, BINDING_HTTP_REDIRECT)]},
                "name_id_format": [NAMEID_FORMAT_EMAILADDRESS],
                # pysaml2 looks for an XML signature inside the request when this
                # is on; the redirect binding signs the query instead, which
                # verify_request() checks itself, always.
                "want_authn_requests_signed": False,
                "policy": {"default": {"lifetime": {"minutes": 5},
                                       "name_form": NAME_FORMAT_BASIC}},
            }},
            "key_file": str(self.key), "cert_file": str(self.cert),
            "xmlsec_binary": "/usr/bin/xmlsec1",
            "metadata": {"inline": list(self.sp_metadata)} if self.sp_metadata else {},
            "allow_unknown_attributes": True,
        })
        return Server(config=conf)

    def trust(self, sp_metadata):
        """Add an SP (its metadata XML, as /saml/metadata serves it)."""
        root = etree.fromstring(sp_metadata.encode())
        self.sp_certs[root.get("entityID")] = sp_certificate(sp_metadata)
        self.sp_metadata.append(sp_metadata)
        self.server = self._server()

    def metadata(self):
        """This IdP's metadata, as an administrator would paste it into Bulwark."""
        return (
            '<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" '
            'xmlns:ds="http://www.w3.org/2000/09/xmldsig#" '
            f'entityID="{self.entity_id}">'
            '<md:IDPSSODescriptor WantAuthnRequestsSigned="true" '
            'protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">'
            '<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>'
            f'{cert_body(self.cert)}'
            '</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>'
            f'<md:NameIDFormat>{NAMEID_FORMAT_EMAILADDRESS}</md:NameIDFormat>'
            f'<md:SingleSignOnService Binding="{BINDING_HTTP_REDIRECT}" '
            f'Location="{self.sso_url}"/>'
            '</md:IDPSSODescriptor></md:EntityDescriptor>')

    # --- the SP-initiated loop ---------------------------------------------
    def verify_request(self, query):
        """A redirect-binding query (SAMLRequest, RelayState, SigAlg, Signature):
        the signature verified by pysaml2 against the SP's metadata certificate,
        then the AuthnRequest parsed -> (request, relay state)."""
        msg = {k: v[0] for k, v in urllib.parse.parse_qs(query, keep_blank_values=True).items()}
        if "Signature" not in msg or "SigAlg" not in msg:
            raise ValueError("the AuthnRequest is not signed")
        if msg["SigAlg"] != RSA_SHA256:
            raise ValueError(f"the AuthnRequest is signed with {msg['SigAlg']}")
        parsed = self.server.parse_authn_request(msg["SAMLRequest"], BINDING_HTTP_REDIRECT)
        req = parsed.message
        cert = self.sp_certs.get(req.issuer.text)
        if cert is None:
            raise ValueError(f"unknown SP {req.issuer.text}")
        if not verify_redirect_signature(msg, self.server.sec.sec_backend, cert=cert):
            raise ValueError("the AuthnRequest's signature does not verify")
        self.requests.append((req.id, req.issuer.text, req.assertion_consumer_service_url))
        return req, msg.get("RelayState")

    def response(self, sp_entity_id, acs_url, email, attributes=None, in_response_to=None,
                 sign_assertion=True, sign_response=False, sign_alg=RSA_SHA256,
                 digest_alg=SHA256):
        """A Response from pysaml2, as XML text (not yet base64)."""
        identity = {k: (v if isinstance(v, list) else [v]) for k, v in (attributes or {}).items()}
        resp = self.server.create_authn_response(
            identity, in_response_to, acs_url, sp_entity_id,
            name_id=NameID(format=NAMEID_FORMAT_EMAILADDRESS, text=email),
            authn={"class_ref": AUTHN_PASSWORD, "authn_auth": self.entity_id},
            sign_assertion=sign_assertion, sign_response=sign_response,
            sign_alg=sign_alg, digest_alg=digest_alg)
        return str(resp)

    def _handler(self):
        idp = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                path, _, query = self.path.partition("?")
                if not path.endswith("/sso"):
                    self.send_error(404)
                    return
                try:
                    req, relay = idp.verify_request(query)
                    if idp.user is None:
                        raise ValueError("no user is signed in at the IdP")
                    email, attrs = idp.user
                    xml = idp.response(req.issuer.text, req.assertion_consumer_service_url,
                                       email, attrs, in_response_to=req.id)
                except Exception as exc:  # noqa: BLE001 — a refusal page, like a real IdP's
                    idp.refusals.append(str(exc))
                    self.send_error(400, str(exc)[:200])
                    return
                page = post_form(req.assertion_consumer_service_url,
                                 base64.b64encode(xml.encode()).decode(), relay)
                body = page.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler


def post_form(action, saml_response, relay_state):
    """The HTML form of the HTTP-POST binding, as an IdP sends it to a browser."""
    relay = ("" if relay_state is None else
             f'<input type="hidden" name="RelayState" value="{html.escape(relay_state)}"/>')
    return ('<!DOCTYPE html><html><body onload="document.forms[0].submit()">'
            f'<form method="post" action="{html.escape(action)}">'
            f'<input type="hidden" name="SAMLResponse" value="{html.escape(saml_response)}"/>'
            f'{relay}<noscript><button type="submit">Continue</button></noscript>'
            '</form></body></html>')


def parse_form(page):
    """(action, {name: value}) of the form in an IdP's POST page."""
    action = html.unescape(re.search(r'<form[^>]*action="([^"]*)"', page).group(1))
    fields = {html.unescape(n): html.unescape(v) for n, v in
              re.findall(r'<input type="hidden" name="([^"]*)" value="([^"]*)"', page)}
    return action, fields


# --- crafting responses for the attack tests -----------------------------------

def parse(xml):
    return etree.fromstring(xml.encode() if isinstance(xml, str) else xml)


def serialise(root):
    return etree.tostring(root).decode()


def strip_signatures(root):
    for sig in root.xpath("//ds:Signature", namespaces=NS):
        sig.getparent().remove(sig)
    return root


def sign(element, key, cert, sign_alg=RSA_SHA256, digest_alg=SHA256, ref_id=None):
    """Sign element (enveloped, exclusive c14n) with key, the Signature placed right
    after its saml:Issuer as SAML wants; ref_id: the Reference's target (default the
    element's own ID). The document is changed in place."""
    ref_id = ref_id or element.get("ID")
    transform = {RSA_SHA256: xmlsec.Transform.RSA_SHA256,
                 RSA_SHA1: xmlsec.Transform.RSA_SHA1}[sign_alg]
    digest = {SHA256: xmlsec.Transform.SHA256, SHA1: xmlsec.Transform.SHA1}[digest_alg]
    sig = xmlsec.template.create(element, xmlsec.Transform.EXCL_C14N, transform, ns="ds")
    issuer = element.find("saml:Issuer", NS)
    if issuer is not None:
        issuer.addnext(sig)
    else:
        element.insert(0, sig)
    ref = xmlsec.template.add_reference(sig, digest, uri=f"#{ref_id}")
    xmlsec.template.add_transform(ref, xmlsec.Transform.ENVELOPED)
    xmlsec.template.add_transform(ref, xmlsec.Transform.EXCL_C14N)
    ki = xmlsec.template.ensure_key_info(sig)
    xmlsec.template.add_x509_data(ki)
    ctx = xmlsec.SignatureContext()
    k = xmlsec.Key.from_file(str(key), xmlsec.KeyFormat.PEM)
    k.load_cert_from_file(str(cert), xmlsec.KeyFormat.PEM)
    ctx.key = k
    ctx.register_id(element, "ID")
    for other in element.getroottree().getroot().iter():
        if other is not element and other.get("ID") is not None:
            ctx.register_id(other, "ID")
    ctx.sign(sig)
    return sig


def new_id():
    return "_" + uuid.uuid4().hex


def b64(xml):
    return base64.b64encode(xml.encode() if isinstance(xml, str) else xml).decode()
