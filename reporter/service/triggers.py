"""Cron triggers of the configured jobs, their last fire times, and what is due now."""

from __future__ import annotations

import json
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
    #: a one-off catch-up of a single fire (for organizations that moved to this timezone
    #: after its trigger fired): it owes that fire only, and is forgotten once it ran
    once: bool = False

    def cron(self) -> Any:
        """APScheduler's CronTrigger for this schedule in this timezone."""
        return cron_trigger(self.schedule, self.timezone)


@dataclass(frozen=True)
class FireState:
    """The last fire a trigger started; ``finished`` once its batch ran to the end."""

    last_fire: datetime
    finished: bool = True
    retry_at: datetime | None = None
    error: str | None = None
    failures: int = 0


@dataclass(frozen=True)
class Due:
    """A fire to run now (``run``), to run again (``resume``) or given up (``missed``).
    ``abandoned``: an earlier fire of the trigger that never finished and that this one
    supersedes (``reason``: why it did not finish)."""

    trigger_id: str
    scheduled_for: datetime
    kind: str
    abandoned: datetime | None = None
    reason: str | None = None


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
    batch was left unfinished and its retry time has come. A fire that started in time is
    owed until it finishes (its retries back off); a newer fire always wins over a retry,
    so a unit that keeps failing never holds back the fires after it, and the Due says
    which unfinished fire it superseded. A catch-up (``once``) owes its one fire, within
    ``grace_seconds`` of it unless it already started."""
    grace = timedelta(seconds=grace_seconds)
    out: list[Due] = []
    for spec_id, spec in sorted(specs.items()):
        state = states.get(spec_id)
        if state is None:
            continue
        latest = None
        if not spec.once:
            horizon = now - grace * 2
            for fired in fire_times(spec.cron(), max(state.last_fire, horizon), now):
                latest = fired
            if latest is None and state.last_fire < horizon:  # down for long: say so
                latest = next(fire_times(spec.cron(), state.last_fire, horizon), None)
        if latest is not None and latest > state.last_fire:
            left = None if state.finished else state.last_fire
            out.append(Due(spec_id, latest, "run" if now - latest <= grace else "missed",
                           left, state.error if left else None))
        elif not state.finished:
            if state.retry_at is not None and now < state.retry_at:
                continue
            late = spec.once and not state.failures and now - state.last_fire > grace
            out.append(Due(spec_id, state.last_fire, "missed" if late else "resume"))
    return out


def load_states(engine: Engine) -> dict[str, FireState]:
    """Every trigger's last fire, from the fire table."""
    with engine.connect() as conn:
        return {row.trigger_id: FireState(row.last_fire, row.finished, row.retry_at,
                                          row.error, row.failures)
                for row in conn.execute(select(fires))}


@dataclass(frozen=True)
class Trouble:
    """A fire that failed (and is retried at ``retry_at``) or was missed, and why."""

    trigger_id: str
    job: str
    timezone: str
    orgs: tuple[str, ...] | None
    scheduled_for: datetime
    state: str  # failed | missed
    failures: int
    retry_at: datetime | None
    error: str


def troubles(engine: Engine) -> list[Trouble]:
    """The fires whose last run failed or was missed, latest first."""
    with engine.connect() as conn:
        rows = conn.execute(select(fires).where(F.error.is_not(None))
                            .order_by(F.last_fire.desc(), F.trigger_id))
        return [Trouble(row.trigger_id, row.job, row.timezone,
                        tuple(json.loads(row.orgs)) if row.orgs else None, row.last_fire,
                        "missed" if row.finished else "failed", row.failures, row.retry_at,
                        row.error) for row in rows]


def catch_ups(engine: Engine) -> dict[str, Spec]:
    """The catch-ups still owed (a fire for organizations that moved to its timezone)."""
    with engine.connect() as conn:
        rows = conn.execute(select(fires).where(F.once.is_(True), F.finished.is_(False)))
        return {row.trigger_id: Spec(row.trigger_id, row.job, row.schedule, row.timezone,
                                     tuple(json.loads(row.orgs or "[]")), once=True)
                for row in rows}


def _orgs(value: str | None) -> set[str]:
    return set(json.loads(value)) if value else set()


def _moved(specs: Mapping[str, Spec], rows: Mapping[str, Any],
           now: datetime) -> list[tuple[Spec, datetime]]:
    """Catch-ups for organizations that moved between timezones: an organization that
    joins a trigger after the trigger's latest fire, and whose previous trigger had not
    fired since, is owed that fire (else nobody ever runs that period for it)."""
    home: dict[tuple[str, str], Any] = {}
    for row in rows.values():
        if not row.once:
            for slug in _orgs(row.orgs):
                home[(row.job, slug)] = row
    owed = []
    for spec in specs.values():
        if spec.orgs is None:
            continue
        row = rows.get(spec.id)
        joined = set(spec.orgs) - (_orgs(row.orgs) if row is not None else set())
        for slug in sorted(joined):
            before = home.get((spec.job, slug))
            if before is None or before.trigger_id == spec.id:
                continue
            passed = row.last_fire if row is not None else now
            latest = None
            for fired in fire_times(spec.cron(), max(before.last_fire,
                                                     passed - timedelta(days=32)), passed):
                latest = fired
            if latest is not None:
                owed.append((Spec(f"{spec.id}#{slug}@{latest.strftime('%Y%m%dT%H%MZ')}",
                                  spec.job, spec.schedule, spec.timezone, (slug,), once=True),
                             latest))
    return owed


def sync(engine: Engine, specs: Mapping[str, Spec], now: datetime) -> None:
    """Match the table to the triggers: a new trigger starts counting from now (nothing
    before it is owed); a changed schedule or timezone keeps the last fire, so a fire of the
    new schedule or in the new timezone since then is owed (or shown missed): a change on
    the run day never loses that day's report; a trigger no longer
    configured is forgotten. An organization that moves to a trigger that already fired
    without it is owed that fire, by a catch-up."""
    with engine.begin() as conn:
        rows = {row.trigger_id: row for row in conn.execute(select(fires))}
        owed = _moved(specs, rows, now)
        for spec_id, old in rows.items():
            if spec_id not in specs and (not old.once or old.finished):
                conn.execute(delete(fires).where(F.trigger_id == spec_id))
                if not old.once:
                    log.info("trigger %s removed", spec_id)
        for spec_id, spec in specs.items():
            row = rows.get(spec_id)
            orgs = json.dumps(sorted(spec.orgs)) if spec.orgs is not None else None
            values = {"job": spec.job, "schedule": spec.schedule, "timezone": spec.timezone,
                      "last_fire": now, "finished": True, "retry_at": None, "error": None,
                      "failures": 0, "orgs": orgs}
            if row is None:
                conn.execute(insert(fires).values(trigger_id=spec_id, **values))
                log.info("trigger %s added: %r in %s", spec_id, spec.schedule, spec.timezone)
            elif row.schedule != spec.schedule:
                conn.execute(update(fires).where(F.trigger_id == spec_id).values(
                    schedule=spec.schedule, timezone=spec.timezone, orgs=orgs))
                log.info("trigger %s changed: %r in %s; a fire of it since %s is owed",
                         spec_id, spec.schedule, spec.timezone, row.last_fire.isoformat())
            elif row.timezone != spec.timezone:
                conn.execute(update(fires).where(F.trigger_id == spec_id).values(
                    timezone=spec.timezone, orgs=orgs))
                log.info("trigger %s moved to %s: a fire there since %s is owed", spec_id,
                         spec.timezone, row.last_fire.isoformat())
            elif row.orgs != orgs:
                conn.execute(update(fires).where(F.trigger_id == spec_id).values(orgs=orgs))
        for spec, fired in owed:
            if spec.id in rows:
                continue
            conn.execute(insert(fires).values(
                trigger_id=spec.id, job=spec.job, schedule=spec.schedule,
                timezone=spec.timezone, last_fire=fired, finished=False, retry_at=None,
                error=None, failures=0, orgs=json.dumps(list(spec.orgs or ())), once=True))
            log.warning("job %s: %s moved to %s after the run there scheduled for %s; "
                        "catching it up", spec.job, ", ".join(spec.orgs or ()),
                        spec.timezone, fired.isoformat())


def record_start(engine: Engine, spec_id: str, scheduled_for: datetime) -> bool:
    """Mark a fire as started (a new fire clears the previous one's error and failures);
    False when the table already holds a later one."""
    fresh: dict[str, Any] = {"error": None, "failures": 0}
    with engine.begin() as conn:
        result = conn.execute(
            update(fires).where(F.trigger_id == spec_id, F.last_fire < scheduled_for)
            .values(last_fire=scheduled_for, finished=False, retry_at=None, **fresh))
        if result.rowcount != 1:
            result = conn.execute(
                update(fires).where(F.trigger_id == spec_id, F.last_fire == scheduled_for)
                .values(finished=False, retry_at=None))
    return result.rowcount == 1


def record_end(engine: Engine, spec_id: str, scheduled_for: datetime, *, finished: bool,
               retry_at: datetime | None = None, error: str | None = None) -> None:
    """Mark a fire as done (a missed one with ``error`` saying so), or as owing a retry at
    ``retry_at``; a finished catch-up is forgotten."""
    with engine.begin() as conn:
        conn.execute(update(fires).where(F.trigger_id == spec_id,
                                         F.last_fire == scheduled_for)
                     .values(finished=finished, retry_at=None if finished else retry_at,
                             error=error, failures=0 if finished else F.failures))
        if finished:
            conn.execute(delete(fires).where(F.trigger_id == spec_id, F.once.is_(True)))


def record_failure(engine: Engine, spec_id: str, scheduled_for: datetime, *, error: str,
                   now: datetime, base_seconds: float, max_seconds: float) -> datetime:
    """Mark a fire as failed with ``error``: it is retried after a backoff that doubles with
    each failure in a row (``base_seconds`` to ``max_seconds``); the retry time."""
    with engine.begin() as conn:
        failures = conn.execute(select(F.failures).where(
            F.trigger_id == spec_id, F.last_fire == scheduled_for)).scalar_one_or_none() or 0
        delay = min(base_seconds * 2 ** min(failures, 30), max(base_seconds, max_seconds))
        retry_at = now + timedelta(seconds=delay)
        conn.execute(update(fires).where(F.trigger_id == spec_id,
                                         F.last_fire == scheduled_for)
                     .values(finished=False, retry_at=retry_at, error=error,
                             failures=failures + 1))
    return retry_at
