"""Delivering a unit's parcel through its channels: store, webhook, email. Each channel is
delivered and recorded on its own, right after its own success, so a broken channel never
holds back another, and a retry (or a takeover after the process died) delivers only the
channels still missing."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Engine

from reporter.config import Config, JobSettings
from reporter.deliver import smtp, webhook
from reporter.errors import ReporterError
from reporter.jobs import ledger
from reporter.jobs.kinds.base import Entry, Parcel
from reporter.jobs.units import Unit

log = logging.getLogger(__name__)

STORE, WEBHOOK, EMAIL = "store", "webhook", "email"


def channel_of(entry: Entry) -> str:
    """The channel a ledger ``files`` entry records."""
    if "channel" in entry:
        return str(entry["channel"])
    fmt = entry.get("format")
    return EMAIL if fmt in ("eml", "smtp") else WEBHOOK if fmt == WEBHOOK else STORE


@dataclass
class Progress:
    """What this attempt (and an unfinished earlier one) has delivered."""

    files: list[Entry] = field(default_factory=list)
    recipients: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def done(self) -> set[str]:
        """The channels delivered."""
        return {channel_of(entry) for entry in self.files}


def earlier(engine: Engine, unit: Unit, resend: bool) -> Progress:
    """The channels an earlier, unfinished attempt delivered (none when re-sending a
    delivered unit: ``--force`` on a unit that failed still skips what went through)."""
    record = ledger.get(engine, unit)
    if resend or record is None or record.deliveries:
        return Progress()
    return Progress(list(record.files), list(record.recipients))


def deliver(engine: Engine, config: Config, job: JobSettings, unit: Unit, parcel: Parcel,
            *, owner: str, progress: Progress, record: bool, lost: threading.Event) -> None:
    """Deliver each channel of ``parcel`` not yet in ``progress``; failures are collected
    in ``progress.errors``, never stop the next channel. ``record``: write the progress to
    the ledger after each success (not for a forced re-send: its earlier delivery stands
    until it succeeds). Nothing is delivered once ``lost`` is set."""
    progress.timings.update(parcel.timings)

    def attempt(channel: str, step: Callable[[], tuple[list[Entry], list[str]]]) -> None:
        if channel in progress.done:
            return
        if lost.is_set():
            progress.errors.append(f"{channel}: another process took this unit over; "
                                   f"not delivered by this attempt")
            return
        clock = time.monotonic()
        try:
            entries, people = step()
        except ReporterError as exc:
            progress.errors.append(str(exc))
            log.warning("%s: %s failed: %s", unit.key, channel, exc)
            return
        except Exception as exc:  # a bug in one channel never holds back the others
            log.exception("%s: %s failed", unit.key, channel)
            progress.errors.append(f"{channel}: {type(exc).__name__}: {exc}")
            return
        progress.timings[channel] = round(time.monotonic() - clock, 4)
        progress.files += [{"channel": channel, **entry} for entry in entries]
        progress.recipients += [p for p in people if p not in progress.recipients]
        if record and not ledger.progress(engine, unit, owner=owner, files=progress.files,
                                          recipients=progress.recipients):
            lost.set()

    if parcel.save is not None:
        save = parcel.save
        attempt(STORE, lambda: (save(), []))
    if parcel.webhook is not None and job.webhook is not None:
        hook, body = job.webhook, parcel.webhook

        def post() -> tuple[list[Entry], list[str]]:
            webhook.post(hook, body)
            return [{"format": WEBHOOK, "path": hook.name, "bytes": len(str(body))}], []
        attempt(WEBHOOK, post)
    if parcel.no_email is not None and EMAIL not in progress.done:
        progress.errors.append(parcel.no_email)
    if parcel.compose is not None:
        compose, people = parcel.compose, parcel.recipients

        def send() -> tuple[list[Entry], list[str]]:
            msg = compose(STORE in progress.done)
            sent = smtp.deliver(config.smtp, config.output / "outbox", msg, people,
                                parcel.name)
            if sent.refused:
                progress.notes.append("refused: " + "; ".join(
                    f"{k}: {v}" for k, v in sent.refused.items()))
            return [sent.entry], sent.accepted
        attempt(EMAIL, send)


