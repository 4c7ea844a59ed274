"""Shared pieces of the delivery tests: seeded data, config files, a loopback SMTP server."""

from __future__ import annotations

import asyncio
import socket
import textwrap
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import yaml
from aiosmtpd.controller import Controller
from sqlalchemy import Engine

from reporter import config
from reporter.deliver import email
from reporter.deliver.smtp import SmtpSettings
from reporter.render import email_body
from reporter.report.model import Report
from reporter.store import orgs as store
from tests.helpers import load, row

#: a Monday: previous-week is 2026-01-05..2026-01-11 in every test timezone
NOW = datetime(2026, 1, 12, 15, 0, tzinfo=UTC)
FIRST, LAST = "2026-01-05", "2026-01-11"


def seed(engine: Engine) -> None:
    """acme (New York): owner alice, admin bob, member carol, removed dave; globex: greta."""
    store.set_org(engine, "acme", name="Acme Corp", timezone="America/New_York")
    store.set_member(engine, "acme", "alice@acme.com", role="owner", name="Alice Anders")
    store.set_member(engine, "acme", "bob@acme.com", role="admin", name="Bob Baker")
    store.set_member(engine, "acme", "carol@acme.com", role="member", name="Carol Chen")
    store.set_member(engine, "acme", "dave@acme.com", role="member", name="Dave Diaz")
    store.set_org(engine, "globex", name="Globex GmbH", timezone="Europe/Berlin")
    store.set_member(engine, "globex", "greta@globex.de", role="owner", name="Greta Gruber")
    load(engine, [
        row("a1", "2026-01-06T15:00:00Z", email="alice@acme.com", cost="1.25"),
        row("a2", "2026-01-06T16:00:00Z", email="alice@acme.com", cost="0.000000001",
            model="openai/gpt-5"),
        row("c1", "2026-01-07T15:00:00Z", email="carol@acme.com", cost="2.5"),
        row("d1", "2026-01-08T15:00:00Z", email="dave@acme.com", cost="0.75"),
        row("g1", "2026-01-09T10:00:00Z", org="globex", email="greta@globex.de", cost="3"),
    ])
    store.remove_member(engine, "acme", "dave@acme.com", now=NOW)


def write_config(folder: Path, body: str, env: dict[str, str] | None = None) -> config.Config:
    path = folder / "jobs.yaml"
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return config.load(path, env=env or {})


def smtp_section(port: int, retries: int = 0) -> str:
    return (f"smtp:\n  host: 127.0.0.1\n  port: {port}\n  security: none\n"
            f"  from: 'Usage Reports <reports@example.com>'\n  timeout_seconds: 5\n"
            f"  retries: {retries}\n  retry_backoff_seconds: 0.01\n")


def smtp_settings(port: int, security: str = "none", **extra: Any) -> SmtpSettings:
    """An ``smtp`` section read by the real loader (the table's defaults for the rest)."""
    section = {"host": "127.0.0.1", "port": port, "security": security,
               "from": "r@example.com", **extra}
    loaded = config.parse(yaml.safe_dump({"smtp": section, "jobs": {}}), Path("jobs.yaml"), {})
    assert loaded.smtp is not None
    return loaded.smtp


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Mailbox:
    """An aiosmtpd handler that keeps what it accepts; ``faults`` are DATA replies (or
    ``"drop"`` to close the connection mid-DATA) used, in order, before accepting."""

    received: list[tuple[list[str], EmailMessage]] = field(default_factory=list)
    faults: list[str] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.faults:
            fault = self.faults.pop(0)
            if fault == "drop":
                server.transport.close()
                return "421 closing"
            return fault
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.received.append((list(envelope.rcpt_tos), message))
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for rcpts, m in self.received if address in rcpts]

    def counts(self) -> dict[str, int]:
        """How many messages each recipient received."""
        out: dict[str, int] = {}
        for recipients, _ in self.received:
            for address in recipients:
                out[address] = out.get(address, 0) + 1
        return out


@contextmanager
def smtp_server(mailbox: Mailbox, port: int | None = None) -> Iterator[int]:
    port = port or free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


@dataclass
class SlowMailbox(Mailbox):
    """A Mailbox that keeps each client waiting at MAIL FROM, before any of the message is
    sent: ``delay`` seconds, and then until ``gate`` is set (when there is one). A client
    killed during the wait has sent nothing. ``waiting`` counts the clients waiting now."""

    delay: float = 0.0
    gate: threading.Event | None = None
    waiting: int = 0

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str,
                          mail_options: list[str]) -> str:
        self.waiting += 1
        try:
            until = time.monotonic() + self.delay
            while time.monotonic() < until or (self.gate is not None and not self.gate.is_set()):
                await asyncio.sleep(0.01)
        finally:
            self.waiting -= 1
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"


def report_email(report: Report, *, job: str, subject: str, sender: str,
                 recipients: list[str], now: datetime,
                 attachments: list[email.Attachment] | None = None,
                 max_attachment_bytes: int = 10_000_000,
                 templates: Path | None = None) -> EmailMessage:
    """The email a report job sends: the body rendered, then the message assembled."""
    sent, omitted = email.within_limit(attachments or [], max_attachment_bytes, job)
    body = email_body.render(report, job=job, sent=sent, omitted=omitted,
                             domain=email.sender_domain(sender), templates=templates)
    return email.build(report, body, job=job, subject=subject, sender=sender,
                       recipients=recipients, attachments=sent, now=now)
