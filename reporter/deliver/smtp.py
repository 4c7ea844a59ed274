"""Sending: SMTP (starttls, ssl or none) with retries, or ``.eml`` files in an outbox."""

from __future__ import annotations

import logging
import smtplib
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

from reporter.errors import DeliveryError
from reporter.fsutil import atomic_write, safe_name

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SmtpSettings:
    """The ``smtp`` section of jobs.yaml: where and how to send."""

    host: str
    port: int
    security: str
    sender: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout_seconds: float = 30.0
    retries: int = 3
    retry_backoff_seconds: float = 2.0
    #: a PEM file of CA certificates to verify the server with (a private CA); None: the
    #: system's trust store
    ca_file: str | None = None
    #: send AUTH over a connection that is not encrypted (``security: none``) to a host
    #: that is not loopback; off unless the config says so explicitly
    allow_plaintext_auth: bool = False


class TransientError(DeliveryError):
    """A failure worth retrying: no connection, a timeout, a 4xx reply."""


class PermanentError(DeliveryError):
    """A failure retrying will not fix: a 5xx reply."""


def _reply(code: int, message: bytes | str) -> str:
    text = message.decode("utf-8", "replace") if isinstance(message, bytes) else message
    return f"{code} {' '.join(text.split())}"


def _classify(exc: Exception, where: str) -> DeliveryError:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        replies = "; ".join(f"{addr}: {_reply(*reply)}" for addr, reply in
                            exc.recipients.items())
        permanent = any(code >= 500 for code, _ in exc.recipients.values())
        kind: type[DeliveryError] = PermanentError if permanent else TransientError
        return kind(f"{where}: recipients refused: {replies}")
    if isinstance(exc, smtplib.SMTPResponseException):
        kind = PermanentError if exc.smtp_code >= 500 else TransientError
        return kind(f"{where}: server replied {_reply(exc.smtp_code, exc.smtp_error)}")
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return TransientError(f"{where}: connection closed: {exc}")
    if isinstance(exc, ssl.SSLError):
        return PermanentError(f"{where}: TLS failed: {exc.reason or exc}")
    if isinstance(exc, TimeoutError):
        return TransientError(f"{where}: timed out")
    if isinstance(exc, OSError):
        return TransientError(f"{where}: cannot connect: {exc.strerror or exc}")
    return PermanentError(f"{where}: {type(exc).__name__}: {exc}")


def _send_once(settings: SmtpSettings, msg: EmailMessage, recipients: list[str]) -> dict[str, str]:
    client: smtplib.SMTP
    if settings.security == "ssl":
        client = smtplib.SMTP_SSL(settings.host, settings.port, timeout=settings.timeout_seconds,
                                  context=ssl.create_default_context())
    else:
        client = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout_seconds)
    with client:
        if settings.security == "starttls":
            client.starttls(context=ssl.create_default_context())
        if settings.username and settings.password is not None:
            client.login(settings.username, settings.password)
        refused = client.send_message(msg, to_addrs=recipients)
    return {addr: _reply(*reply) for addr, reply in refused.items()}


def send(settings: SmtpSettings, msg: EmailMessage, recipients: list[str],
         sleep: Callable[[float], None] = time.sleep) -> dict[str, str]:
    """Send ``msg``; retry transient failures with exponential backoff. Returns the
    recipients the server refused while accepting the others; DeliveryError on failure."""
    where = f"SMTP {settings.host}:{settings.port}"
    for attempt in range(settings.retries + 1):
        try:
            return _send_once(settings, msg, recipients)
        except Exception as exc:  # noqa: BLE001 - classified, then re-raised as DeliveryError
            error = _classify(exc, where)
        if isinstance(error, PermanentError) or attempt == settings.retries:
            if attempt:
                raise type(error)(f"{error} (after {attempt + 1} attempts)")
            raise error
        delay = settings.retry_backoff_seconds * 2**attempt
        log.warning("%s; retrying in %.1f s", error, delay)
        sleep(delay)
    raise AssertionError("unreachable")


def to_outbox(outbox: Path, msg: EmailMessage, stem: str) -> Path:
    """Write ``msg`` as an ``.eml`` file any mail client opens."""
    path = outbox / f"{safe_name(stem, 150)}.eml"
    atomic_write(path, bytes(msg))
    log.info("wrote %s", path)
    return path
