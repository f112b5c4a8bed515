"""A real IMAP server for the suites (Dovecot, started by scripts/dovecot-test
in a directory of the test's own): IMAPS on loopback with the suite's
certificate, one mailbox. deliver() puts a message in it over IMAP APPEND,
as a mail server would have."""

import imaplib
import os
import shutil
import ssl
import subprocess
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


class ImapServer:
    def __init__(self, cert):
        # Not under pytest's directories (mode 0700): dovecot's own users must
        # reach the passwd-file and the mailbox.
        self.dir = Path(tempfile.mkdtemp(prefix="bw-imap-"))
        os.chmod(self.dir, 0o755)
        self.cert = cert
        out = subprocess.run([ROOT / "scripts" / "dovecot-test", "start", self.dir,
                              "--cert", cert.cert, "--key", cert.key],
                             check=True, capture_output=True, text=True, timeout=60).stdout
        env = dict(line.split("=", 1) for line in out.split())
        self.port = int(env["BULWARK_TEST_IMAP_PORT"])
        self.user = env["BULWARK_TEST_IMAP_USER"]
        self.password = env["BULWARK_TEST_IMAP_PASSWORD"]
        self.maildir = Path(env["BULWARK_TEST_IMAP_MAILDIR"])

    def client(self):
        ctx = ssl.create_default_context(cafile=str(self.cert.cert))
        c = imaplib.IMAP4_SSL("127.0.0.1", self.port, ssl_context=ctx, timeout=10)
        c.login(self.user, self.password)
        return c

    def deliver(self, raw, folder="INBOX"):
        c = self.client()
        try:
            typ, _ = c.append(folder, None, None, raw)
            assert typ == "OK", typ
        finally:
            c.logout()

    def stop(self):
        subprocess.run([ROOT / "scripts" / "dovecot-test", "stop", self.dir], check=False,
                       capture_output=True, timeout=30)
        shutil.rmtree(self.dir, ignore_errors=True)
