"""The SMTP server the mail tests send to (smtp_sink.py) does what they rely
on: it keeps each message as sent, refuses the next ones when told (a 4xx
for the retry tests), and with STARTTLS and AUTH refuses a wrong password
with a 535 (aiosmtpd left alone says nothing, and the client waits for its
timeout) and mail before TLS or AUTH. Python's smtplib is the client: no
Bulwark server is started."""

import smtplib
import ssl

import pytest

from conftest import client_context, make_certificate
from smtp_sink import SmtpSink

MSG = b"Subject: hi\r\n\r\nline one\r\n.\r\n"


def test_keeps_messages_and_refuses_when_told():
    with SmtpSink() as sink:
        with smtplib.SMTP("127.0.0.1", sink.port, local_hostname="mx.example.test",
                          timeout=10) as c:
            c.sendmail("from@example.test", ["a@example.test", "b@example.test"], MSG)
            sink.answer_next(1, "451 4.3.0 try later")
            with pytest.raises(smtplib.SMTPDataError) as e:
                c.sendmail("from@example.test", ["a@example.test"], MSG)
            assert e.value.smtp_code == 451
            c.sendmail("from@example.test", ["c@example.test"], MSG)
        first, second = sink.wait_for(2, timeout=10)
        assert first.mail_from == "from@example.test"
        assert first.rcpt_tos == ["a@example.test", "b@example.test"]
        assert first.content.endswith(b"line one\r\n.\r\n")  # dot-unstuffed, CRLF kept
        assert first.helo == "mx.example.test"
        assert second.rcpt_tos == ["c@example.test"]
        assert len(sink.refused) == 1


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    return make_certificate(tmp_path_factory.mktemp("smtp-cert"))


def tls_sink(cert):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(cert.cert), str(cert.key))
    return SmtpSink(tls_context=ctx, require_starttls=True, auth=("mailer", "s3cret pass"))


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_starttls_and_auth(cert, mechanism):
    with tls_sink(cert) as sink:
        with smtplib.SMTP("127.0.0.1", sink.port, timeout=10) as c:
            c.starttls(context=client_context(cert.cert))
            c.ehlo()
            c.user, c.password = "mailer", "wrong"
            with pytest.raises(smtplib.SMTPAuthenticationError) as e:
                c.auth(mechanism, getattr(c, "auth_" + mechanism.lower()))
            assert e.value.smtp_code == 535
            c.user, c.password = "mailer", "s3cret pass"
            code, _ = c.auth(mechanism, getattr(c, "auth_" + mechanism.lower()))
            assert code == 235
            c.sendmail("from@example.test", ["a@example.test"], MSG)
        assert sink.wait_for(1, timeout=10)[0].rcpt_tos == ["a@example.test"]
        assert sink.logins == [(mechanism, False), (mechanism, True)]


def test_nothing_before_starttls_and_auth(cert):
    with tls_sink(cert) as sink:
        with smtplib.SMTP("127.0.0.1", sink.port, timeout=10) as c:
            c.ehlo()
            code, _ = c.docmd("MAIL", "FROM:<from@example.test>")
            assert code == 530  # STARTTLS first
            c.starttls(context=client_context(cert.cert))
            c.ehlo()
            code, _ = c.docmd("MAIL", "FROM:<from@example.test>")
            assert code == 530  # then AUTH
        assert sink.messages == []
