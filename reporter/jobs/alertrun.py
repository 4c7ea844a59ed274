"""Delivering an alert unit (email and/or webhook) and a report's webhook summary.

A unit is delivered when every channel it has succeeded. Each channel that succeeded is
written to the unit's ledger row (``files``: an ``eml`` path or a ``webhook $VAR`` entry),
so a retry of a unit that failed half-way sends only the channels still missing.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from reporter.deliver import smtp, webhook
from reporter.errors import DeliveryError
from reporter.jobs import alerts, ledger
from reporter.jobs.settings import Config, JobSettings, WebhookSettings
from reporter.jobs.units import Outcome, Unit
from reporter.money import headline_usd
from reporter.report import readable
from reporter.report.model import Report
from reporter.store import orgs as store

log = logging.getLogger(__name__)

#: the ``format`` of a ledger ``files`` entry that records a webhook post
WEBHOOK = "webhook"


def recipients(engine: Engine, job: JobSettings, unit: Unit) -> list[str]:
    """Who receives an alert: the job's address list, else the active owners and admins."""
    if job.audience == "list":
        return list(job.addresses)
    org = store.get_org(engine, unit.organization)
    return [m.email for m in store.members(engine, org.id)
            if m.active and m.role in ("owner", "admin")]


def target(settings: WebhookSettings) -> webhook.Target:
    """The webhook channel's target from a job's settings."""
    return webhook.Target(settings.url, settings.url_env, settings.timeout_seconds,
                          settings.retries, settings.retry_backoff_seconds)


def _done(engine: Engine, unit: Unit, force: bool) -> set[str]:
    """The channels an earlier, unfinished attempt already delivered."""
    record = ledger.get(engine, unit)
    if force or record is None or record.deliveries:
        return set()
    return {str(f.get("format")) for f in record.files}


def _post(engine: Engine, unit: Unit, settings: WebhookSettings, body: dict[str, Any],
          files: list[dict[str, Any]], done: set[str]) -> None:
    if WEBHOOK in done:
        files.append({"format": WEBHOOK, "path": f"webhook ${settings.url_env}", "bytes": 0})
        return
    hook = target(settings)
    webhook.post(hook, body)
    files.append({"format": WEBHOOK, "path": hook.name, "bytes": len(str(body))})


def _message(config: Config, job: JobSettings, alert: alerts.Alert, people: list[str],
             now: datetime) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = alert.summary if len(alert.summary) < 250 else alert.summary[:249] + "\u2026"
    msg["From"] = config.email_from
    msg["To"] = ", ".join(people)
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = make_msgid("alert")
    msg["Auto-Submitted"] = "auto-generated"  # no out-of-office replies to an alert
    msg.set_content(f"{alert.text}\n\n-- \nSent once by the reporter alert job {job.name!r}.\n")
    return msg


def deliver(engine: Engine, config: Config, job: JobSettings, unit: Unit, now: datetime,
            force: bool, files: list[dict[str, Any]], sent_to: list[str],
            lost: threading.Event) -> tuple[str, str | None]:
    """Send one alert unit by webhook, then email; the end state and a note. ``empty`` when
    the condition no longer holds (a budget raised since); nothing is sent once ``lost``."""
    alert = alerts.for_unit(engine, config, job, unit, unit.scheduled_for or now)
    if alert is None:
        return "empty", "the condition no longer holds; nothing sent"
    done = _done(engine, unit, force)
    if lost.is_set():
        raise DeliveryError("another process took this unit over; this attempt sent nothing")
    if job.webhook is not None:
        _post(engine, unit, job.webhook, webhook.payload(alert.summary, alert.details), files,
              done)
    if job.email is None:
        return "delivered", None
    people = recipients(engine, job, unit)
    if not people:
        raise DeliveryError(f"organization {unit.organization!r} has no owners or admins "
                            f"to send alert job {job.name!r} to")
    if lost.is_set():
        raise DeliveryError("another process took this unit over; the email was not sent")
    msg = _message(config, job, alert, people, now)
    if config.smtp is None:
        stem = f"{unit.job}_{unit.organization}_{unit.audience.replace(':', '-')}_{unit.last}"
        path = smtp.to_outbox(config.output / "outbox", msg, stem)
        files.append({"format": "eml", "path": str(path), "bytes": path.stat().st_size})
        sent_to += people
        return "delivered", None
    refused = smtp.send(config.smtp, msg, people)
    sent_to += [p for p in people if p not in refused]
    note = ("refused: " + "; ".join(f"{k}: {v}" for k, v in refused.items())) if refused else None
    return "delivered", note


def dry_run(engine: Engine, config: Config, unit: Unit, force: bool) -> Outcome:
    """What running the alert unit would do, changing nothing."""
    job = config.job(unit.job)
    record = ledger.get(engine, unit)
    if record is not None and record.deliveries and not force:
        return Outcome(unit, "already", files=tuple(f["path"] for f in record.files),
                       recipients=tuple(record.recipients))
    people = recipients(engine, job, unit) if job.email else []
    hooks = (f"webhook ${job.webhook.url_env}",) if job.webhook else ()
    return Outcome(unit, "planned", files=hooks, recipients=tuple(people))


def report_summary(report: Report, stored: Path | None) -> dict[str, Any]:
    """A report's webhook body: whose, which period, the total and its change, and where
    the stored files are."""
    total = report.summary.cost_nanos
    whose = report.organization.name + (f" ({report.member})" if report.member else "")
    text = (f"{whose} AI usage, {readable.period_text(report.period)}: "
            f"{headline_usd(total)} over {report.summary.requests:,} "
            f"request{'' if report.summary.requests == 1 else 's'}")
    before = getattr(getattr(report, "previous", None), "summary", None)
    if before is not None and before.cost_nanos:
        text += f", {readable.move_text(total, int(before.cost_nanos))} from the period before"
    details = [report.budget.text] if report.budget is not None and report.budget.text else []
    if stored is not None:
        details.append(f"Stored in {stored}")
    return webhook.payload(text + ".", details)


def report_webhook(engine: Engine, job: JobSettings, unit: Unit, report: Report,
                   stored: Path | None, files: list[dict[str, Any]], force: bool) -> None:
    """Post a report unit's summary to the job's webhook (once: a retry of a unit whose
    post went through does not post again)."""
    assert job.webhook is not None
    _post(engine, unit, job.webhook, report_summary(report, stored), files,
          _done(engine, unit, force))
