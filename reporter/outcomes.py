"""Human-readable lines for outcomes, batch summaries, ledger history and job listings."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime

from .config import Config, Job, cron_trigger
from .ledger import Record
from .units import Outcome

SUMMARY_STATES = (("delivered", "delivered"), ("already", "already delivered"),
                  ("empty", "empty"), ("failed", "failed"), ("planned", "planned"))


def line(outcome: Outcome) -> str:
    """``delivered  weekly-admin acme admins 2026-01-05..2026-01-11  -> a@x, b@x``."""
    unit = outcome.unit
    head = (f"{outcome.state:<9} {unit.job} {unit.organization} {unit.audience} "
            f"{unit.first}..{unit.last}")
    parts = []
    if outcome.error:
        parts.append(f"error: {outcome.error}")
    elif outcome.note:
        parts.append(outcome.note)
    if outcome.recipients:
        verb = "would send to" if outcome.state == "planned" else "to"
        parts.append(f"{verb} {', '.join(outcome.recipients)}")
    if outcome.files:
        verb = "would write" if outcome.state == "planned" else "files"
        parts.append(f"{verb} {', '.join(outcome.files)}")
    return head + ("  " + "; ".join(parts) if parts else "")


def summary(outcomes: Sequence[Outcome]) -> str:
    counts = Counter(o.state for o in outcomes)
    shown = [f"{label} {counts[state]}" for state, label in SUMMARY_STATES
             if counts[state] or state not in ("planned",)]
    return f"{len(outcomes)} units: " + ", ".join(shown)


def failed(outcomes: Sequence[Outcome]) -> bool:
    return any(o.state == "failed" for o in outcomes)


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else "-"


def record_line(record: Record) -> str:
    who = ", ".join(record.recipients) or "-"
    extra = f" forced {record.forced}" if record.forced else ""
    text = (f"{_when(record.claimed_at)}  {record.state:<9} {record.job} {record.organization} "
            f"{record.audience} {record.first}..{record.last} trigger={record.trigger} "
            f"attempts={record.attempts} deliveries={record.deliveries}{extra} to={who}")
    if record.error:
        text += f"  {'error' if record.state == 'failed' else 'note'}: {record.error}"
    return text


def next_runs(job: Job, now: datetime, count: int = 3) -> list[datetime]:
    """The next ``count`` fire times of a job's schedule (in its timezone, else UTC)."""
    if job.schedule is None:
        return []
    trigger = cron_trigger(job.schedule, job.timezone)
    out: list[datetime] = []
    previous = None
    moment = now
    while len(out) < count:
        fire = trigger.get_next_fire_time(previous, moment)
        if fire is None:
            break
        out.append(fire)
        previous, moment = fire, fire
    return out


def job_lines(config: Config, now: datetime) -> list[str]:
    lines = []
    for job in config.jobs.values():
        audience = ", ".join(job.addresses) if job.audience == "list" else job.audience
        state = "" if job.enabled else " (disabled)"
        lines.append(f"{job.name}{state}: {job.period}, {audience}, {','.join(job.formats)}")
        if job.schedule is None:
            lines.append("  schedule: none (run it with 'reporter run')")
            continue
        zone = job.timezone or "UTC; each organization's own timezone for its period"
        lines.append(f"  schedule: {job.schedule} ({zone})")
        for fire in next_runs(job, now):
            lines.append(f"  next: {fire.isoformat()}")
    return lines
