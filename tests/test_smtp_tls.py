"""STARTTLS, implicit TLS and AUTH against a real SMTP server on loopback with certificates
made here: delivered with the right password and CA, one clear failed line otherwise."""

from __future__ import annotations

import dataclasses
import logging
import socket
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from reporter.config import Config
from reporter.deliver import smtp
from reporter.jobs import plan, runner
from reporter.jobs.units import Outcome
from tests.delivery_support import (
    NOW,
    Mailbox,
    free_port,
    seed,
    smtp_section,
    smtp_settings,
    write_config,
)
from tests.tls_support import Authenticator, Pki, make_pki, tls_smtp_server

SECRET = "correct-horse-battery-staple"
LOGIN = "reports@example.com"

JOB = """\
output: out
jobs:
  weekly:
    period: previous-week
    audience: admins
    formats: [json]
    deliver:
      store: false
      email: true
"""


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def config_for(tmp_path: Path, port: int, *, security: str, password: str | None = SECRET,
               ca_file: Path | None = None, retries: int = 3, host: str = "127.0.0.1",
               allow_plaintext_auth: bool = False) -> Config:
    cfg = write_config(tmp_path, smtp_section(port, retries) + JOB)
    assert cfg.smtp is not None
    settings = dataclasses.replace(
        cfg.smtp, host=host, security=security, username=LOGIN if password else None,
        password=password, ca_file=str(ca_file) if ca_file else None,
        allow_plaintext_auth=allow_plaintext_auth)
    return dataclasses.replace(cfg, smtp=settings)


def run(engine: Engine, cfg: Config) -> list[Outcome]:
    units = plan.plan(engine, cfg, "weekly", as_of=NOW)
    return runner.run_units(engine, cfg, units, now=NOW)


def ledger_text(engine: Engine) -> str:
    with engine.connect() as conn:
        return "\n".join(str(tuple(r)) for r in conn.execute(text("SELECT * FROM runs")))


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_starttls_and_auth_deliver(tmp_path: Path, sqlite_engine: Engine, pki: Pki,
                                   mechanism: str) -> None:
    seed(sqlite_engine)
    mailbox, auth = Mailbox(), Authenticator(LOGIN, SECRET)
    with tls_smtp_server(mailbox, pki, mode="starttls", authenticator=auth,
                         mechanism=mechanism) as port:
        outcomes = run(sqlite_engine, config_for(tmp_path, port, security="starttls",
                                                 ca_file=pki.ca))
    assert [o.state for o in outcomes] == ["delivered", "delivered"], outcomes
    assert sorted(tuple(r) for r, _ in mailbox.received) == [
        ("alice@acme.com", "bob@acme.com"), ("greta@globex.de",)]
    assert auth.attempts == [(mechanism, LOGIN, SECRET)] * 2


def test_implicit_tls_delivers(tmp_path: Path, sqlite_engine: Engine, pki: Pki) -> None:
    seed(sqlite_engine)
    mailbox, auth = Mailbox(), Authenticator(LOGIN, SECRET)
    with tls_smtp_server(mailbox, pki, mode="ssl", authenticator=auth) as port:
        outcomes = run(sqlite_engine, config_for(tmp_path, port, security="ssl",
                                                 ca_file=pki.ca))
    assert [o.state for o in outcomes] == ["delivered", "delivered"], outcomes
    assert len(mailbox.received) == 2
    assert len(auth.attempts) == 2


def test_wrong_password_fails_once_and_is_never_shown(
        tmp_path: Path, sqlite_engine: Engine, pki: Pki, logs: pytest.LogCaptureFixture,
        capfd: pytest.CaptureFixture[str]) -> None:
    seed(sqlite_engine)
    wrong = "wrong-" + SECRET
    mailbox, auth = Mailbox(), Authenticator(LOGIN, SECRET)
    with tls_smtp_server(mailbox, pki, mode="starttls", authenticator=auth,
                         mechanism="PLAIN") as port:
        outcomes = run(sqlite_engine, config_for(tmp_path, port, security="starttls",
                                                 ca_file=pki.ca, password=wrong, retries=3))
    # the server saw the password (so AUTH was reached), once per unit: 535 is not retried
    # (smtplib tries each mechanism the server offers once; this server offers one)
    assert [a[2] for a in auth.attempts] == [wrong, wrong]
    assert not mailbox.received
    for outcome in outcomes:
        assert outcome.state == "failed"
        assert outcome.error is not None
        assert "\n" not in outcome.error
        assert outcome.error.startswith(f"SMTP 127.0.0.1:{port}: server replied 535"), outcome
        assert "login refused" in outcome.error
    seen = ("\n".join(repr(o) for o in outcomes) + ledger_text(sqlite_engine) + logs.text
            + "".join(capfd.readouterr()))
    assert wrong not in seen
    assert SECRET not in seen
    assert "retrying" not in logs.text


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_a_certificate_that_does_not_verify_fails_clearly(
        tmp_path: Path, sqlite_engine: Engine, pki: Pki, security: str) -> None:
    seed(sqlite_engine)
    mailbox, auth = Mailbox(), Authenticator(LOGIN, SECRET)
    with tls_smtp_server(mailbox, pki, mode=security, authenticator=auth) as port:
        # no ca_file: the system's trust store does not know the test CA
        outcomes = run(sqlite_engine, config_for(tmp_path, port, security=security))
        # a CA file that did not sign the server's certificate
        other = run(sqlite_engine, config_for(tmp_path, port, security=security,
                                              ca_file=pki.other_ca))
    assert not auth.attempts  # the password never left
    assert not mailbox.received
    reason = f"SMTP 127.0.0.1:{port}: certificate verify failed: unable to get local issuer "
    assert [(o.state, o.error) for o in outcomes] == [
        ("failed", reason + "certificate (set smtp.ca_file to the CA that signed it)")] * 2
    assert [(o.state, o.error) for o in other] == [
        ("failed", reason + "certificate (smtp.ca_file does not hold the CA that signed it)")] * 2


def test_a_ca_file_that_cannot_be_read_fails_without_connecting(tmp_path: Path) -> None:
    settings = dataclasses.replace(smtp_settings(free_port(), "starttls", retries=3),
                                   ca_file=str(tmp_path / "missing.pem"))
    with pytest.raises(smtp.PermanentError, match=r"smtp.ca_file .*missing.pem: cannot load CA "
                                                  r"certificates: No such file"):
        smtp.send(settings, EmailMessage(), ["a@example.com"], sleep=pytest.fail)


def _own_address() -> str | None:
    """An address of this machine that is not loopback (the route to a documentation net)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("192.0.2.1", 9))
        except OSError:
            return None
        address: str = sock.getsockname()[0]
    return None if address.startswith("127.") else address


def test_no_password_over_plaintext_to_another_host(tmp_path: Path, sqlite_engine: Engine,
                                                    pki: Pki) -> None:
    address = _own_address()
    if address is None:
        pytest.skip("this machine has no address but loopback")
    seed(sqlite_engine)
    mailbox, auth = Mailbox(), Authenticator(LOGIN, SECRET)
    with tls_smtp_server(mailbox, pki, mode="none", authenticator=auth, host=address) as port:
        refused = run(sqlite_engine, config_for(tmp_path, port, security="none", host=address))
        assert not auth.attempts
        assert all(o.state == "failed" and o.error == (
            f"SMTP {address}:{port}: refusing to send the SMTP password unencrypted "
            f"(security: none); use starttls or ssl, or set allow_plaintext_auth: true")
            for o in refused), refused
        allowed = run(sqlite_engine, config_for(tmp_path, port, security="none", host=address,
                                                allow_plaintext_auth=True))
    assert [o.state for o in allowed] == ["delivered", "delivered"], allowed
    assert len(auth.attempts) == 2


def test_plaintext_auth_on_loopback_is_allowed(tmp_path: Path, sqlite_engine: Engine,
                                               pki: Pki) -> None:
    seed(sqlite_engine)
    mailbox, auth = Mailbox(), Authenticator(LOGIN, SECRET)
    with tls_smtp_server(mailbox, pki, mode="none", authenticator=auth) as port:
        outcomes = run(sqlite_engine, config_for(tmp_path, port, security="none"))
    assert [o.state for o in outcomes] == ["delivered", "delivered"], outcomes
    assert auth.attempts == [("PLAIN", LOGIN, SECRET)] * 2


class BrokenMessage(EmailMessage):
    """A message with a bug (not an SMTP or network failure) that smtplib runs into."""

    def get_all(self, *args: object, **kwargs: object) -> list[str]:
        raise RuntimeError("a bug while serializing")


def test_a_bug_is_not_reported_as_an_smtp_error(pki: Pki) -> None:
    mailbox = Mailbox()
    with tls_smtp_server(mailbox, pki, mode="none") as port:
        settings = smtp_settings(port, "none", retries=3)
        message = BrokenMessage()
        message["From"], message["To"] = "r@example.com", "a@example.com"
        with pytest.raises(RuntimeError, match="a bug while serializing"):
            smtp.send(settings, message, ["a@example.com"], sleep=pytest.fail)
    assert not mailbox.received
