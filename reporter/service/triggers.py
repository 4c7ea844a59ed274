"""Cron triggers of the configured jobs, their last fire times, and what is due now."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Engine,
    delete,
    insert,
    select,
    update,
)

from reporter.config import Config
from reporter.config.values import cron_trigger
from reporter.store.schema import fires

log = logging.getLogger(__name__)

F = fires.c


@dataclass(frozen=True)
class Spec:
    """One cron trigger: a job in its own timezone, or in one organizations' timezone.

    ``orgs`` is None when the trigger covers every organization the job names; otherwise
    the organizations in ``timezone`` (a job that names no timezone).
    """

    id: str
    job: str
    schedule: str
    timezone: str
    orgs: tuple[str, ...] | None = None

    def cron(self) -> Any:
        """APScheduler's CronTrigger for this schedule in this timezone."""
        return cron_trigger(self.schedule, self.timezone)


@dataclass(frozen=True)
class FireState:
    """The last fire a trigger started; ``finished`` once its batch ran to the end."""

    last_fire: datetime
    finished: bool = True
    retry_at: datetime | None = None


@dataclass(frozen=True)
class Due:
    """A fire to run now (``run``), to run again (``resume``) or given up (``missed``)."""

    trigger_id: str
    scheduled_for: datetime
    kind: str


def specs_for(config: Config, org_zones: Mapping[str, str]) -> dict[str, Spec]:
    """The triggers of every enabled, scheduled job; ``org_zones`` maps slug -> timezone."""
    out: dict[str, Spec] = {}
    for job in config.jobs.values():
        if not job.enabled or not job.schedule:
            continue
        if job.timezone:
            out[job.name] = Spec(job.name, job.name, job.schedule, job.timezone)
            continue
        wanted = set(job.organizations) if job.organizations is not None else set(org_zones)
        by_zone: dict[str, list[str]] = {}
        for slug in sorted(wanted & set(org_zones)):
            by_zone.setdefault(org_zones[slug], []).append(slug)
        for tz, slugs in sorted(by_zone.items()):
            spec_id = f"{job.name}@{tz}"
            out[spec_id] = Spec(spec_id, job.name, job.schedule, tz, tuple(slugs))
    return out


def fire_times(cron: Any, after: datetime, until: datetime) -> Iterator[datetime]:
    """Fire times in ``(after, until]``, stepping as APScheduler does (so an hour repeated
    when the clocks fall back fires twice, and a time skipped in spring still fires)."""
    previous = after.astimezone(cron.timezone)  # APScheduler repeats itself given UTC here
    floor = after.astimezone(UTC)
    while True:
        upcoming: datetime | None = cron.get_next_fire_time(previous, previous)
        if upcoming is None or upcoming > until:
            return
        if upcoming.astimezone(UTC) <= floor:  # never loop on a trigger's quirk
            previous = (floor + timedelta(seconds=1)).astimezone(cron.timezone)
            continue
        floor = upcoming.astimezone(UTC)
        yield floor
        previous = upcoming


def due_runs(specs: Mapping[str, Spec], states: Mapping[str, FireState], now: datetime,
             grace_seconds: float) -> list[Due]:
    """What each trigger owes at ``now``: the latest fire since the last one started (missed
    fires coalesce into it), within ``grace_seconds``; else the last fire again when its
    batch was left unfinished and its retry time has come. A newer fire always wins over a
    retry, so a unit that keeps failing never holds back the fires after it."""
    grace = timedelta(seconds=grace_seconds)
    out: list[Due] = []
    for spec_id, spec in sorted(specs.items()):
        state = states.get(spec_id)
        if state is None:
            continue
        latest = None
        for fired in fire_times(spec.cron(), max(state.last_fire, now - grace * 2), now):
            latest = fired
        if latest is not None and latest > state.last_fire:
            out.append(Due(spec_id, latest, "run" if now - latest <= grace else "missed"))
        elif not state.finished:
            if state.retry_at is not None and now < state.retry_at:
                continue
            kind = "resume" if now - state.last_fire <= grace else "missed"
            out.append(Due(spec_id, state.last_fire, kind))
    return out


def load_states(engine: Engine) -> dict[str, FireState]:
    """Every trigger's last fire, from the fire table."""
    with engine.connect() as conn:
        return {row.trigger_id: FireState(row.last_fire, row.finished, row.retry_at)
                for row in conn.execute(select(fires))}


def sync(engine: Engine, specs: Mapping[str, Spec], now: datetime) -> None:
    """Match the table to the triggers: a new or changed trigger starts counting from now
    (nothing before it is owed); a trigger no longer configured is forgotten."""
    with engine.begin() as conn:
        rows = {row.trigger_id: row for row in conn.execute(select(fires))}
        for spec_id in rows.keys() - specs.keys():
            conn.execute(delete(fires).where(F.trigger_id == spec_id))
            log.info("trigger %s removed", spec_id)
        for spec_id, spec in specs.items():
            row = rows.get(spec_id)
            values = {"job": spec.job, "schedule": spec.schedule, "timezone": spec.timezone,
                      "last_fire": now, "finished": True, "retry_at": None}
            if row is None:
                conn.execute(insert(fires).values(trigger_id=spec_id, **values))
                log.info("trigger %s added: %r in %s", spec_id, spec.schedule, spec.timezone)
            elif (row.schedule, row.timezone) != (spec.schedule, spec.timezone):
                conn.execute(update(fires).where(F.trigger_id == spec_id).values(**values))
                log.info("trigger %s changed: %r in %s", spec_id, spec.schedule, spec.timezone)


def record_start(engine: Engine, spec_id: str, scheduled_for: datetime) -> bool:
    """Mark a fire as started; False when the table already holds a later one."""
    with engine.begin() as conn:
        result = conn.execute(
            update(fires).where(F.trigger_id == spec_id, F.last_fire <= scheduled_for)
            .values(last_fire=scheduled_for, finished=False, retry_at=None))
    return result.rowcount == 1


def record_end(engine: Engine, spec_id: str, scheduled_for: datetime, *, finished: bool,
               retry_at: datetime | None = None) -> None:
    """Mark a fire as done, or as owing a retry at ``retry_at``."""
    with engine.begin() as conn:
        conn.execute(update(fires).where(F.trigger_id == spec_id,
                                         F.last_fire == scheduled_for)
                     .values(finished=finished, retry_at=None if finished else retry_at))
