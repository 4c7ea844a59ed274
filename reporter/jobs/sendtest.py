"""A test message through a job's channels, before its first real run: one short email
(through the job's mail server, or into the outbox without one) and one webhook post, each
answered on its own, so an operator sees the mail server and the hook work (or why not)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr

from reporter import addresses
from reporter.config import Config
from reporter.deliver import email, smtp, webhook
from reporter.errors import ReporterError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Answer:
    """What one channel answered: the channel, whether it took the message, and in words."""

    channel: str
    ok: bool
    text: str


def recipients_of_test(config: Config, job_name: str, to: tuple[str, ...] = ()) -> list[str]:
    """Who the test email goes to: ``to``, else the job's own address list, else the sender
    (a job that mails admins or members never mails them a test)."""
    if to:
        return [addresses.normalize(address) for address in to]
    job = config.job(job_name)
    if job.audience == "list" and job.addresses:
        return list(job.addresses)
    return [addresses.normalize(parseaddr(config.email_from)[1] or config.email_from)]


def message(config: Config, job_name: str, people: list[str], now: datetime) -> EmailMessage:
    """The short test email."""
    msg = EmailMessage()
    msg["Subject"] = f"reporter test message for job {job_name}"
    msg["From"] = config.email_from
    msg["To"] = ", ".join(people)
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = make_msgid("test", domain=email.sender_domain(config.email_from))
    msg.set_content(f"This is a test message from reporter for the job {job_name!r}, sent "
                    f"{now.isoformat(timespec='seconds')}.\n\nIf you can read it, the job's "
                    f"email reaches this address. Nothing else was sent.\n")
    return msg


def send_test(config: Config, job_name: str, *, now: datetime,
              to: tuple[str, ...] = ()) -> list[Answer]:
    """Send the test through each channel the job delivers by (email, webhook); an Answer
    per channel. ReporterError when the job has neither (nothing to test)."""
    job = config.job(job_name)
    if job.email is None and job.webhook is None:
        raise ReporterError(f"job {job_name!r} sends no email and posts to no webhook; "
                            f"nothing to test")
    answers = []
    if job.email is not None:
        answers.append(_email(config, job_name, recipients_of_test(config, job_name, to), now))
    if job.webhook is not None:
        answers.append(_webhook(job.webhook, job_name, now))
    return answers


def _email(config: Config, job_name: str, people: list[str], now: datetime) -> Answer:
    msg = message(config, job_name, people, now)
    try:
        sent = smtp.deliver(config.smtp, config.output / "outbox", msg, people,
                            f"test_{job_name}")
    except ReporterError as exc:
        return Answer("email", False, str(exc))
    where = str(sent.entry["path"])
    if config.smtp is None:
        return Answer("email", True, f"no smtp section: written to {where} for "
                                     f"{', '.join(people)}")
    text = f"{where} accepted it for {', '.join(sent.accepted) or 'nobody'}"
    if sent.refused:
        text += "; refused " + "; ".join(f"{k}: {v}" for k, v in sent.refused.items())
    return Answer("email", not sent.refused, text)


def _webhook(hook: webhook.WebhookSettings, job_name: str, now: datetime) -> Answer:
    body = webhook.payload(f"reporter test message for job {job_name}",
                           [f"sent {now.isoformat(timespec='seconds')}; nothing else was sent"])
    try:
        attempts = webhook.post(hook, body)
    except ReporterError as exc:
        return Answer("webhook", False, str(exc))
    return Answer("webhook", True, f"{hook.name} accepted the post"
                                   + (f" after {attempts} attempts" if attempts > 1 else ""))
