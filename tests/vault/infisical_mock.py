#!/usr/bin/python3
"""A MOCK of the Infisical API, for Bulwark's vault unit tests only.

This is not Infisical and shares no code with it. It implements, from
Infisical's public API documentation, exactly the requests the vault client
makes, and checks them strictly:

  POST /api/v1/auth/universal-auth/login
       body {"clientId": ..., "clientSecret": ...}  (application/json)
       -> 200 {"accessToken", "expiresIn", "accessTokenMaxTTL", "tokenType"}
       -> 401 when the client ID or secret is wrong
  GET  /api/v3/secrets/raw?workspaceId=&environment=&secretPath=   (--api v3)
  GET  /api/v4/secrets?projectId=&environment=&secretPath=         (--api v4)
       header Authorization: Bearer <the token the login returned>
       -> 200 {"secrets": [{"secretKey", "secretValue", ...}], "imports": []}
       -> 401 for a missing or wrong token, 400 for wrong query parameters

--mode makes it misbehave: status401 / status500 (secrets endpoint),
badjson, badshape, hidden (secretValueHidden), huge (2 MiB answer with no
Content-Length), hang (the login never answers).

Python 3 standard library only. Listens on 127.0.0.1, port chosen by the
kernel; when ready it writes the port to --ready-file (atomically).
Run it with /usr/bin/python3.
"""

import argparse
import hmac
import http.server
import json
import os
import socketserver
import ssl
import sys
import time
import urllib.parse

# The fixed secret set the tests expect (tests/unit/test_vault.c).
SECRETS = [
    ("DB_PASSWORD", "pa ss&word=1?%2F\"quoted\"\\"),
    ("SIGNING_KEY", "line one\nline two\n"),
    ("UNICODE_VALUE", "gr\u00fc\u00dfe \u2603"),
]

LOGIN_PATH = "/api/v1/auth/universal-auth/login"
SECRETS_PATH = {"v3": "/api/v3/secrets/raw", "v4": "/api/v4/secrets"}
PROJECT_PARAM = {"v3": "workspaceId", "v4": "projectId"}


def secret_json(args, key, value):
    # Fields as the documentation lists them; the client must ignore extras.
    return {
        "id": "00000000-0000-4000-8000-%012d" % (abs(hash(key)) % 10**12),
        "_id": "00000000-0000-4000-8000-000000000000",
        "workspace": args.project,
        "environment": args.environment,
        "version": 1,
        "type": "shared",
        "secretKey": key,
        "secretValue": value,
        "secretComment": "",
        "secretValueHidden": False,
        "secretPath": args.secret_path,
        "skipMultilineEncoding": False,
        "tags": [],
        "secretMetadata": [],
        "createdAt": "2026-01-01T00:00:00Z",
        "updatedAt": "2026-01-01T00:00:00Z",
    }


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "infisical-mock"

    def log_message(self, fmt, *a):
        sys.stderr.write("mock: " + (fmt % a) + "\n")

    def reply(self, status, obj=None, raw=None):
        body = raw if raw is not None else json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def error(self, status, message):
        names = {400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
                 500: "Internal Server Error"}
        self.reply(status, {"statusCode": status, "message": message,
                            "error": names.get(status, "Error")})

    def do_POST(self):
        args = self.server.args
        if self.path != LOGIN_PATH:
            return self.error(404, "no route " + self.path)
        if args.mode == "hang":
            # Far beyond the client's 1 s timeout; then close, so that a
            # client without a timeout fails slowly instead of never.
            time.sleep(30)
            self.close_connection = True
            return
        if not self.headers.get("Content-Type", "").startswith("application/json"):
            return self.error(400, "Content-Type must be application/json")
        n = int(self.headers.get("Content-Length", "0"))
        if n <= 0 or n > 65536:
            return self.error(400, "bad Content-Length")
        try:
            body = json.loads(self.rfile.read(n))
        except ValueError:
            return self.error(400, "body is not JSON")
        if not isinstance(body, dict) or set(body) != {"clientId", "clientSecret"}:
            return self.error(400, "body must be {clientId, clientSecret}")
        cid, csec = body["clientId"], body["clientSecret"]
        if not (isinstance(cid, str) and isinstance(csec, str)
                and hmac.compare_digest(cid.encode(), args.client_id.encode())
                and hmac.compare_digest(csec.encode(), args.client_secret.encode())):
            return self.error(401, "Invalid credentials")
        self.server.logins += 1
        self.reply(200, {"accessToken": args.token, "expiresIn": 7200,
                         "accessTokenMaxTTL": 7200, "tokenType": "Bearer"})

    def do_GET(self):
        args = self.server.args
        url = urllib.parse.urlsplit(self.path)
        if url.path != SECRETS_PATH[args.api]:
            return self.error(404, "no route " + url.path)
        auth = self.headers.get("Authorization", "")
        if not hmac.compare_digest(auth.encode(), ("Bearer " + args.token).encode()):
            return self.error(401, "Token missing or invalid")
        try:
            q = urllib.parse.parse_qs(url.query, keep_blank_values=True,
                                      strict_parsing=True)
        except ValueError:
            return self.error(400, "malformed query")
        want = {PROJECT_PARAM[args.api]: args.project,
                "environment": args.environment,
                "secretPath": args.secret_path}
        got = {k: v for k, v in q.items()}
        if set(got) != set(want) or any(got[k] != [want[k]] for k in want):
            return self.error(400, "query %r, wanted %r" % (got, want))
        if args.mode == "status401":
            return self.error(401, "Token expired")
        if args.mode == "status500":
            return self.error(500, "Something went wrong")
        if args.mode == "badjson":
            return self.reply(200, raw=b'{"secrets": [{"secretKey": "DB_PASSWORD", ')
        if args.mode == "badshape":
            return self.reply(200, {"secrets": {"secretKey": "X", "secretValue": "y"}})
        if args.mode == "huge":
            # No Content-Length: the client's own bound must stop it.
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Connection", "close")
            self.end_headers()
            chunk = b" " * 65536
            try:
                for _ in range(32):
                    self.wfile.write(chunk)
            except OSError:
                pass
            self.close_connection = True
            return
        extra = [tuple(x.split("=", 1)) for x in args.extra_secret]
        secrets = [secret_json(args, k, v) for k, v in SECRETS + extra]
        if args.mode == "hidden":
            secrets[0]["secretValue"] = ""
            secrets[0]["secretValueHidden"] = True
        self.reply(200, {"secrets": secrets, "imports": []})


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def get_request(self):
        # TLS per connection, in the handler thread: a client that gives up
        # on the handshake (untrusted certificate) must not stall the loop.
        sock, addr = self.socket.accept()
        return self.tls.wrap_socket(sock, server_side=True,
                                    do_handshake_on_connect=False), addr

    def handle_error(self, request, client_address):
        sys.stderr.write("mock: connection from %s ended: %s\n"
                         % (client_address, sys.exc_info()[1]))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--ready-file", required=True)
    p.add_argument("--api", choices=("v3", "v4"), default="v3")
    p.add_argument("--client-id", required=True)
    p.add_argument("--client-secret", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--project", required=True)
    p.add_argument("--environment", required=True)
    p.add_argument("--secret-path", required=True)
    p.add_argument("--extra-secret", action="append", default=[], metavar="NAME=VALUE",
                   help="serve this secret too (repeatable)")
    p.add_argument("--mode", default="ok",
                   choices=("ok", "status401", "status500", "badjson", "badshape",
                            "hidden", "huge", "hang"))
    args = p.parse_args()

    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.minimum_version = ssl.TLSVersion.TLSv1_2
    tls.load_cert_chain(args.cert, args.key)
    srv = Server(("127.0.0.1", 0), Handler)
    srv.args, srv.tls, srv.logins = args, tls, 0
    tmp = args.ready_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % srv.server_address[1])
    os.rename(tmp, args.ready_file)
    srv.serve_forever()


if __name__ == "__main__":
    main()
