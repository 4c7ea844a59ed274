"""Human-readable lines for outcomes, batch summaries, ledger history and job listings."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from reporter.jobs.units import (
    ALREADY,
    DELIVERED,
    EMPTY,
    FAILED,
    HELD,
    PLANNED,
    SKIPPED,
    Outcome,
)

if TYPE_CHECKING:  # types only: the wording imports no database code
    from reporter.config import Config
    from reporter.jobs.ledger import Record
    from reporter.service.triggers import Trouble

SUMMARY_STATES = ((DELIVERED, "delivered"), (ALREADY, "already delivered"),
                  (HELD, "held"), (EMPTY, "empty"), (SKIPPED, "skipped"),
                  (FAILED, "failed"), (PLANNED, "planned"))
#: states the summary shows only when some unit ended in them
OCCASIONAL = (HELD, SKIPPED, "planned")


def line(outcome: Outcome) -> str:
    """``delivered  weekly-admin acme admins 2026-01-05..2026-01-11  -> a@x, b@x``."""
    unit = outcome.unit
    head = (f"{outcome.state:<9} {unit.job} {unit.organization} {unit.audience} "
            f"{unit.first}..{unit.last}")
    parts = []
    if outcome.error:
        parts.append(f"error: {outcome.error}")
    if outcome.note:
        parts.append(outcome.note)
    if outcome.recipients:
        verb = "would send to" if outcome.state == "planned" else "to"
        parts.append(f"{verb} {', '.join(outcome.recipients)}")
    if outcome.files:
        verb = "would write" if outcome.state == "planned" else "files"
        parts.append(f"{verb} {', '.join(outcome.files)}")
    return head + ("  " + "; ".join(parts) if parts else "")


def summary(outcomes: Sequence[Outcome]) -> str:
    """``12 units: delivered 3, already delivered 8, held 1, empty 0, failed 0``."""
    counts = Counter(o.state for o in outcomes)
    shown = [f"{label} {counts[state]}" for state, label in SUMMARY_STATES
             if counts[state] or state not in OCCASIONAL]
    return f"{len(outcomes)} units: " + ", ".join(shown)


def failed(outcomes: Sequence[Outcome]) -> bool:
    """Whether any unit failed."""
    return any(o.state == FAILED for o in outcomes)


def held(outcomes: Sequence[Outcome]) -> str | None:
    """What to say when units were left to another process (this run delivered none of
    them), else None."""
    count = sum(1 for o in outcomes if o.state == HELD)
    if not count:
        return None
    return (f"{count} {'unit is' if count == 1 else 'units are'} being delivered by another "
            "process, not by this run; run again after the time each 'held' line gives to "
            "deliver what that process does not finish")


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else "-"


def record_line(record: Record) -> str:
    """One ledger row as ``reporter runs`` prints it."""
    who = ", ".join(record.recipients) or "-"
    extra = f" forced {record.forced}" if record.forced else ""
    text = (f"{_when(record.claimed_at)}  {record.state:<9} {record.job} {record.organization} "
            f"{record.audience} {record.first}..{record.last} trigger={record.trigger} "
            f"attempts={record.attempts} deliveries={record.deliveries}{extra} to={who}")
    if record.error:
        text += f"  {'error' if record.state == 'failed' else 'note'}: {record.error}"
    return text


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def trouble_line(trouble: Trouble) -> str:
    """A fire that failed or was missed, as ``reporter runs`` prints it above the units."""
    who = f" orgs={','.join(trouble.orgs)}" if trouble.orgs else ""
    retry = (f" next try {_when(trouble.retry_at)}"
             if trouble.state == FAILED and trouble.retry_at else "")
    return (f"{_when(trouble.scheduled_for)}  {trouble.state:<9} {trouble.job} scheduled run "
            f"({trouble.timezone}){who} failures={trouble.failures}{retry}  error: "
            f"{trouble.error}")


def trouble_object(trouble: Trouble) -> dict[str, Any]:
    """A failed or missed fire for ``reporter runs --json``."""
    return {"kind": "fire", "job": trouble.job, "trigger": trouble.trigger_id,
            "timezone": trouble.timezone,
            "organizations": list(trouble.orgs) if trouble.orgs is not None else None,
            "state": trouble.state, "scheduled_for": _iso(trouble.scheduled_for),
            "failures": trouble.failures, "retry_at": _iso(trouble.retry_at),
            "error": trouble.error}


def record_object(record: Record) -> dict[str, Any]:
    """A ledger row for ``reporter runs --json``: the fields of the table's line, and more."""
    return {"kind": "unit", "job": record.job, "organization": record.organization,
            "audience": record.audience, "first": record.first.isoformat(),
            "last": record.last.isoformat(), "period": record.period_name,
            "state": record.state, "trigger": record.trigger,
            "scheduled_for": _iso(record.scheduled_for), "attempts": record.attempts,
            "deliveries": record.deliveries, "forced": record.forced,
            "claimed_at": _iso(record.claimed_at), "finished_at": _iso(record.finished_at),
            "delivered_at": _iso(record.delivered_at), "seconds": record.seconds,
            "recipients": record.recipients, "error": record.error}


def job_objects(config: Config, fires: Mapping[str, list[datetime]]) -> list[dict[str, Any]]:
    """Each job with its next fire times, for ``reporter jobs --json``."""
    out = []
    for job in config.jobs.values():
        triggers = sorted(t for t in fires if t == job.name or t.startswith(f"{job.name}@"))
        nexts = []
        for trigger in triggers:
            tz = ZoneInfo(job.timezone or trigger.partition("@")[2] or "UTC")
            nexts.append({"trigger": trigger, "timezone": tz.key,
                          "times": [fire.astimezone(tz).isoformat() for fire in fires[trigger]]})
        alert = job.alert.when if job.alert is not None else None
        out.append({"name": job.name, "kind": job.kind, "enabled": job.enabled,
                    "period": None if alert else job.period, "when": alert,
                    "audience": job.audience,
                    "addresses": list(job.addresses) if job.audience == "list" else [],
                    "formats": [] if alert else list(job.formats), "schedule": job.schedule,
                    "timezone": job.timezone, "next": nexts})
    return out


def job_lines(config: Config, fires: Mapping[str, list[datetime]]) -> list[str]:
    """Each job with its next fire times; ``fires`` maps trigger ids (``job`` or
    ``job@Timezone`` for a job that runs at each organization's local time) to UTC times."""
    lines = []
    for job in config.jobs.values():
        audience = ", ".join(job.addresses) if job.audience == "list" else job.audience
        state = "" if job.enabled else " (disabled)"
        what = (f"alert when {job.alert.when}, {audience}" if job.alert is not None
                else f"{job.period}, {audience}, {','.join(job.formats)}")
        lines.append(f"{job.name}{state}: {what}")
        if job.schedule is None:
            lines.append("  schedule: none (run it with 'reporter run')")
            continue
        zone = job.timezone or "each organization's own timezone"
        lines.append(f"  schedule: {job.schedule} ({zone})")
        triggers = sorted(t for t in fires if t == job.name or t.startswith(f"{job.name}@"))
        if not triggers and job.enabled:
            lines.append("  next: none (no organization to report on yet)")
        for trigger in triggers:
            tz = ZoneInfo(job.timezone or trigger.partition("@")[2] or "UTC")
            where = f" [{tz.key}]" if "@" in trigger else ""
            times = ", ".join(fire.astimezone(tz).isoformat() for fire in fires[trigger])
            lines.append(f"  next{where}: {times}")
    return lines
