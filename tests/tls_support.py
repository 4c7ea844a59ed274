"""Test certificates (a CA and a server certificate for 127.0.0.1 and localhost) and a real
SMTP server on loopback that speaks STARTTLS or implicit TLS and checks AUTH."""

from __future__ import annotations

import ipaddress
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.delivery_support import Mailbox, free_port


@dataclass(frozen=True)
class Pki:
    """Files of a test CA and of a server certificate it signed; ``other_ca`` signed nothing
    the server holds."""

    ca: Path
    other_ca: Path
    server_cert: Path
    server_key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.server_cert, self.server_key)
        return context


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _ca(common_name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder()
            .subject_name(_name(common_name)).issuer_name(_name(common_name))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                         crl_sign=True, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256()))
    return key, cert


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def make_pki(folder: Path) -> Pki:
    """A CA, a server certificate it signed for 127.0.0.1 and localhost, and an unrelated CA."""
    ca_key, ca_cert = _ca("reporter test CA")
    _, other_cert = _ca("some other CA")
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder()
            .subject_name(_name("localhost")).issuer_name(ca_cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pki = Pki(folder / "ca.pem", folder / "other-ca.pem", folder / "server.pem",
              folder / "server.key")
    pki.ca.write_bytes(_pem(ca_cert))
    pki.other_ca.write_bytes(_pem(other_cert))
    pki.server_cert.write_bytes(_pem(cert))
    pki.server_key.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                 serialization.PrivateFormat.PKCS8,
                                                 serialization.NoEncryption()))
    return pki


@dataclass
class Authenticator:
    """Accepts one login and password; keeps every attempt as (mechanism, login, password)."""

    login: str
    password: str
    attempts: list[tuple[str, str, str]] = field(default_factory=list)

    def __call__(self, server: Any, session: Any, envelope: Any, mechanism: str,
                 auth_data: Any) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        login, password = auth_data.login.decode(), auth_data.password.decode()
        self.attempts.append((mechanism, login, password))
        ok = (login, password) == (self.login, self.password)
        return AuthResult(success=ok, handled=False)


@contextmanager
def tls_smtp_server(mailbox: Mailbox, pki: Pki, *, mode: str,
                    authenticator: Authenticator | None = None, mechanism: str | None = None,
                    host: str = "127.0.0.1") -> Iterator[int]:
    """A real SMTP server on ``host``: ``mode`` "starttls" (STARTTLS required before AUTH and
    MAIL), "ssl" (TLS from the first byte) or "none" (plaintext, AUTH allowed);
    ``mechanism`` "PLAIN" or "LOGIN" offers only that one."""
    port = free_port()
    kwargs: dict[str, Any] = {}
    if authenticator is not None:
        # aiosmtpd counts only STARTTLS as TLS when it decides whether to offer AUTH
        starttls = mode == "starttls"
        kwargs.update(authenticator=authenticator, auth_required=starttls,
                      auth_require_tls=starttls)
        if mechanism is not None:
            kwargs["auth_exclude_mechanism"] = [m for m in ("PLAIN", "LOGIN") if m != mechanism]
    if mode == "starttls":
        kwargs.update(tls_context=pki.server_context(), require_starttls=True)
    controller = Controller(mailbox, hostname=host, port=port,
                            ssl_context=pki.server_context() if mode == "ssl" else None,
                            **kwargs)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()
