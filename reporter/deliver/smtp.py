"""Sending: SMTP (starttls, ssl or none) with retries, or ``.eml`` files in an outbox."""

from __future__ import annotations

import email.utils
import ipaddress
import logging
import smtplib
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

from reporter.errors import DeliveryError
from reporter.fsutil import atomic_write, ensure_folder, safe_name

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SmtpSettings:
    """The ``smtp`` section of jobs.yaml: where and how to send."""

    host: str
    port: int
    security: str
    sender: str
    username: str | None
    #: the variable holding the password, and the password (None when it is not set: a
    #: message that needs it fails naming the variable)
    password_env: str | None
    password: str | None = field(repr=False)
    timeout_seconds: float
    retries: int
    retry_backoff_seconds: float
    #: a PEM file of CA certificates to verify the server with (a private CA); None: the
    #: system's trust store
    ca_file: str | None
    #: send AUTH over a connection that is not encrypted (``security: none``) to a host
    #: that is not loopback; off unless the config says so explicitly
    allow_plaintext_auth: bool


class TransientError(DeliveryError):
    """A failure worth retrying: no connection, a timeout, a 4xx reply."""


class PermanentError(DeliveryError):
    """A failure retrying will not fix: a 5xx reply."""


def _reply(code: int, message: bytes | str) -> str:
    text = message.decode("utf-8", "replace") if isinstance(message, bytes) else message
    return f"{code} {' '.join(text.split())}"


def _tls_failure(exc: ssl.SSLError, settings: SmtpSettings) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        hint = ("smtp.ca_file does not hold the CA that signed it" if settings.ca_file
                else "set smtp.ca_file to the CA that signed it")
        return f"certificate verify failed: {exc.verify_message} ({hint})"
    return f"TLS failed: {exc.reason or exc}"


def _classify(exc: smtplib.SMTPException | OSError, where: str,
              settings: SmtpSettings) -> DeliveryError:
    """An SMTP or network failure as a TransientError (worth retrying) or a PermanentError."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        replies = "; ".join(f"{addr}: {_reply(*reply)}" for addr, reply in
                            exc.recipients.items())
        permanent = any(code >= 500 for code, _ in exc.recipients.values())
        kind: type[DeliveryError] = PermanentError if permanent else TransientError
        return kind(f"{where}: recipients refused: {replies}")
    if isinstance(exc, smtplib.SMTPResponseException):
        kind = PermanentError if exc.smtp_code >= 500 else TransientError
        action = " (login refused)" if isinstance(exc, smtplib.SMTPAuthenticationError) else ""
        return kind(f"{where}: server replied {_reply(exc.smtp_code, exc.smtp_error)}{action}")
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return TransientError(f"{where}: connection closed: {exc}")
    if isinstance(exc, smtplib.SMTPException):  # no STARTTLS or AUTH offered, ...
        return PermanentError(f"{where}: {exc}")
    if isinstance(exc, ssl.SSLError):
        return PermanentError(f"{where}: {_tls_failure(exc, settings)}")
    if isinstance(exc, TimeoutError):
        return TransientError(f"{where}: timed out")
    return TransientError(f"{where}: cannot connect: {exc.strerror or exc}")


def is_loopback(host: str) -> bool:
    """Whether ``host`` is this machine: ``localhost``, 127.0.0.0/8 or ::1."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _tls_context(settings: SmtpSettings, where: str) -> ssl.SSLContext | None:
    """The TLS context for ``starttls`` and ``ssl``: the system's trust store, or the CA file
    of ``ca_file``; PermanentError when that file cannot be loaded."""
    if settings.security not in ("starttls", "ssl"):
        return None
    try:
        return ssl.create_default_context(cafile=settings.ca_file)
    except (OSError, ssl.SSLError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise PermanentError(f"{where}: smtp.ca_file {settings.ca_file}: cannot load CA "
                             f"certificates: {reason}") from None


def _check_auth(settings: SmtpSettings, where: str) -> None:
    """Refuse to send a password over a connection that is not encrypted, unless the server
    is on this machine or the config allows it explicitly; and send none that is not set."""
    if settings.password_env and settings.password is None:
        raise PermanentError(f"{where}: environment variable {settings.password_env} "
                             f"(smtp password_env) is not set")
    if (settings.username and settings.security not in ("starttls", "ssl")
            and not settings.allow_plaintext_auth and not is_loopback(settings.host)):
        raise PermanentError(f"{where}: refusing to send the SMTP password unencrypted "
                             f"(security: {settings.security}); use starttls or ssl, or set "
                             f"allow_plaintext_auth: true")


def _send_once(settings: SmtpSettings, context: ssl.SSLContext | None, msg: EmailMessage,
               recipients: list[str]) -> dict[str, str]:
    client: smtplib.SMTP
    if settings.security == "ssl":
        client = smtplib.SMTP_SSL(settings.host, settings.port, timeout=settings.timeout_seconds,
                                  context=context)
    else:
        client = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout_seconds)
    with client:
        if settings.security == "starttls":
            client.starttls(context=context)
        if settings.username and settings.password is not None:
            client.login(settings.username, settings.password)
        refused = client.send_message(msg, to_addrs=recipients)
    return {addr: _reply(*reply) for addr, reply in refused.items()}


def _scrubbed(error: DeliveryError, settings: SmtpSettings, suffix: str = "") -> DeliveryError:
    """``error`` with ``suffix`` and never the password (a server may echo what it got)."""
    text = str(error) + suffix
    if settings.password:
        text = text.replace(settings.password, "***")
    return type(error)(text)


def send(settings: SmtpSettings, msg: EmailMessage, recipients: list[str],
         sleep: Callable[[float], None] = time.sleep) -> dict[str, str]:
    """Send ``msg``; retry transient failures with exponential backoff. Returns the
    recipients the server refused while accepting the others; DeliveryError on failure.

    Only SMTP and network errors are classified; anything else is a bug and propagates
    with its traceback."""
    where = f"SMTP {settings.host}:{settings.port}"
    _check_auth(settings, where)
    context = _tls_context(settings, where)
    for attempt in range(settings.retries + 1):
        try:
            return _send_once(settings, context, msg, recipients)
        except (smtplib.SMTPException, OSError) as exc:
            cause, error = exc, _scrubbed(_classify(exc, where, settings), settings)
        if isinstance(error, PermanentError) or attempt == settings.retries:
            raise _scrubbed(error, settings, f" (after {attempt + 1} attempts)"
                            if attempt else "") from cause
        delay = settings.retry_backoff_seconds * 2**attempt
        log.warning("%s; retrying in %.1f s", error, delay)
        sleep(delay)
    raise AssertionError("unreachable")


def to_outbox(outbox: Path, msg: EmailMessage, stem: str) -> Path:
    """Write ``msg`` as an ``.eml`` file any mail client opens; never over an earlier
    message (a second message of the same name gets ``-2``, ``-3``…)."""
    base = safe_name(stem, 150)
    ensure_folder(outbox)
    for number in range(1, 10_000):
        path = outbox / (f"{base}.eml" if number == 1 else f"{base}-{number}.eml")
        try:
            with path.open("xb"):  # claims the name; the message replaces it atomically
                pass
        except FileExistsError:
            continue
        except OSError as exc:
            raise DeliveryError(f"outbox {outbox}: cannot write {path.name}: "
                                f"{exc.strerror or exc}") from None
        atomic_write(path, bytes(msg))
        log.info("wrote %s", path)
        return path
    raise DeliveryError(f"{outbox}: 10,000 messages named {base}; clear the outbox")


@dataclass(frozen=True)
class Sent:
    """What one email delivery did: the ledger entry (an ``.eml`` file or the server), who
    got it, and the recipients the server refused."""

    entry: dict[str, str | int]
    accepted: list[str]
    refused: dict[str, str]


def deliver(settings: SmtpSettings | None, outbox: Path, msg: EmailMessage,
            recipients: list[str], name: str) -> Sent:
    """Send ``msg`` through the mail server, or, without one, write it to ``outbox`` as
    ``<name>_<date>.eml``: the one place that chooses. DeliveryError when it fails."""
    if settings is None:
        stamp = str(msg.get("Date", ""))
        when = email.utils.parsedate_to_datetime(stamp) if stamp else None
        suffix = when.strftime("_%Y%m%dT%H%M%S") if when is not None else ""
        path = to_outbox(outbox, msg, name + suffix)
        return Sent({"channel": "email", "format": "eml", "path": str(path),
                     "bytes": path.stat().st_size}, list(recipients), {})
    refused = send(settings, msg, recipients)
    return Sent({"channel": "email", "format": "smtp",
                 "path": f"SMTP {settings.host}:{settings.port}", "bytes": len(bytes(msg))},
                [p for p in recipients if p not in refused], refused)
