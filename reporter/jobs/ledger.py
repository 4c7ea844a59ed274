"""The run ledger: one row per unit of work; claiming a row makes delivery exactly-once."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Engine,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import ColumnElement

from reporter.jobs.units import DELIVERED, EMPTY, FAILED, MISSED, RUNNING, Unit
from reporter.store.schema import runs

log = logging.getLogger(__name__)

STATES = (RUNNING, DELIVERED, EMPTY, FAILED, MISSED)
#: states a new attempt may take over without --force
RETRYABLE = (FAILED, EMPTY, MISSED)


R = runs.c


@dataclass(frozen=True)
class Record:
    """One ledger row as the history shows it."""

    job: str
    organization: str
    audience: str
    first: date
    last: date
    period_name: str
    state: str
    trigger: str
    attempts: int
    deliveries: int
    forced: int
    claimed_at: datetime | None
    finished_at: datetime | None
    delivered_at: datetime | None
    scheduled_for: datetime | None
    seconds: float | None
    error: str | None
    files: list[dict[str, Any]]
    recipients: list[str]
    timings: dict[str, float]


@dataclass(frozen=True)
class Claim:
    """The result of trying to claim a unit: ``claimed`` or the state that blocked it, with
    the row's claim time and how often it was delivered before."""

    claimed: bool
    state: str
    attempts: int = 0
    claimed_at: datetime | None = None
    deliveries: int = 0


#: what a plain run records when it finds a forced re-send whose process stopped
ABANDONED = "a forced re-send was abandoned (its process stopped); the earlier delivery stands"


def _match(unit: Unit) -> list[ColumnElement[bool]]:
    return [R.job == unit.job, R.organization == unit.organization,
            R.audience == unit.audience, R.first_day == unit.first, R.last_day == unit.last]


def _insert(engine: Engine, unit: Unit, **values: Any) -> bool:
    """Add the unit's row with ``values``; False when it has one already."""
    try:
        with engine.begin() as conn:
            conn.execute(insert(runs).values(
                job=unit.job, organization=unit.organization, audience=unit.audience,
                first_day=unit.first, last_day=unit.last, period_name=unit.period_name,
                trigger=unit.trigger, scheduled_for=unit.scheduled_for, forced=0, **values))
    except IntegrityError:
        return False
    return True


def claim(engine: Engine, unit: Unit, *, owner: str, now: datetime, timeout_seconds: int,
          force: bool = False) -> Claim:
    """Take the unit for this attempt: new, failed, empty, or left running with a claim not
    refreshed for ``timeout_seconds`` (and delivered, with ``force``). A unit delivered once
    is only sent again with ``force``: a plain run that finds a forced re-send abandoned
    marks the unit delivered again. Anything else is held by, or done by, someone else."""
    if _insert(engine, unit, state=RUNNING, attempts=1, deliveries=0, owner=owner,
               claimed_at=now):
        return Claim(True, "new", 1, now)
    stale = (R.state == RUNNING) & (R.claimed_at < now - timedelta(seconds=timeout_seconds))
    idle = R.state.in_(RETRYABLE) | stale  # nobody is working on it
    takeable = (idle | (R.state == DELIVERED)) if force else (idle & (R.deliveries == 0))
    before = get(engine, unit)  # for the log line only; the UPDATE below decides
    with engine.begin() as conn:  # a write first: SQLite then holds the lock it needs
        result = conn.execute(
            update(runs).where(*_match(unit), takeable).values(
                state=RUNNING, owner=owner, claimed_at=now, attempts=R.attempts + 1,
                trigger=unit.trigger, period_name=unit.period_name, error=None,
                scheduled_for=unit.scheduled_for))
        if result.rowcount != 1 and not force:
            repaired = conn.execute(update(runs).where(*_match(unit), idle, R.deliveries > 0)
                                    .values(state=DELIVERED, owner=None, error=ABANDONED))
            if repaired.rowcount == 1:
                log.warning("%s: %s", unit.key, ABANDONED)
        row = conn.execute(select(R.state, R.attempts, R.claimed_at, R.deliveries)
                           .where(*_match(unit))).one()
    if result.rowcount == 1:
        previous = before.state if before is not None else "new"
        if previous == RUNNING:
            log.warning("%s: taking over an attempt left running", unit.key)
        return Claim(True, previous, row.attempts, row.claimed_at, row.deliveries)
    return Claim(False, row.state, row.attempts, row.claimed_at, row.deliveries)


def cover(engine: Engine, units: list[Unit], *, by: Unit, now: datetime) -> None:
    """Record ``units`` as delivered with ``by`` (one message named the highest of several
    thresholds): a new row, or one that failed or was empty, becomes delivered with a note;
    a delivered unit, or one another process holds, is left as it is."""
    note = f"covered by {by.audience} (one message names the highest threshold reached)"
    for unit in units:
        if _insert(engine, unit, state=DELIVERED, attempts=0, deliveries=1, claimed_at=now,
                   finished_at=now, delivered_at=now, error=note, files="[]",
                   recipients="[]"):
            continue
        stale = R.state.in_(RETRYABLE) & (R.deliveries == 0)
        with engine.begin() as conn:
            conn.execute(update(runs).where(*_match(unit), stale).values(
                state=DELIVERED, deliveries=1, finished_at=now, delivered_at=now,
                error=note, owner=None))


def heartbeat(engine: Engine, unit: Unit, *, owner: str, now: datetime) -> bool:
    """Refresh this attempt's claim to ``now``; False when it no longer holds the unit."""
    with engine.begin() as conn:
        result = conn.execute(update(runs).where(*_match(unit), R.owner == owner,
                                                 R.state == RUNNING).values(claimed_at=now))
    return result.rowcount == 1


def progress(engine: Engine, unit: Unit, *, owner: str, files: list[dict[str, Any]],
             recipients: list[str]) -> bool:
    """Record what this attempt has delivered so far (each channel right after it
    succeeded), so an attempt that dies next never delivers it again; False when another
    process took the unit over."""
    with engine.begin() as conn:
        result = conn.execute(update(runs).where(*_match(unit), R.owner == owner,
                                                 R.state == RUNNING).values(
            files=json.dumps(files), recipients=json.dumps(recipients)))
    return result.rowcount == 1


def finish(engine: Engine, unit: Unit, *, owner: str, now: datetime, state: str,
           seconds: float, error: str | None = None, files: list[dict[str, Any]] | None = None,
           recipients: list[str] | None = None, timings: dict[str, float] | None = None,
           resend: bool = False) -> bool:
    """Record how this attempt ended; False when another process took the unit over.

    ``resend``: the attempt re-sent a delivered unit (``--force``). If it did not deliver,
    the earlier delivery stands: the row stays ``delivered`` with its files and recipients,
    and ``error`` says what happened to the re-send.
    """
    assert state in STATES
    assert state != RUNNING
    values: dict[str, Any] = {
        "state": state, "finished_at": now, "seconds": round(seconds, 3), "error": error,
        "owner": None, "timings": json.dumps(timings or {}, sort_keys=True),
    }
    if state == DELIVERED:
        values.update(delivered_at=now, deliveries=R.deliveries + 1,
                      forced=R.forced + (1 if resend else 0))
    elif resend:
        what = "failed" if state == FAILED else "sent nothing"
        values.update(state=DELIVERED, error=f"forced re-send {what}: {error or state}; "
                                               "the earlier delivery stands")
        files = recipients = None
    if files is not None:
        values["files"] = json.dumps(files)
    if recipients is not None:
        values["recipients"] = json.dumps(recipients)
    with engine.begin() as conn:
        result = conn.execute(update(runs).where(*_match(unit), R.owner == owner,
                                                 R.state == RUNNING).values(**values))
    if result.rowcount != 1:
        log.warning("%s: another process took this unit over; its result stands", unit.key)
        return False
    return True


def record_missed(engine: Engine, units: list[Unit], *, now: datetime, reason: str) -> int:
    """Record each unit that has no ledger row as ``missed`` (why: ``reason``), so the
    history shows a period that was due and never ran; a later run may still deliver it.
    The number of rows added."""
    added = 0
    for unit in units:
        # a unit that ran (or was recorded) already keeps its row: that row says more
        if _insert(engine, unit, state=MISSED, attempts=0, deliveries=0, owner=None,
                   claimed_at=now, finished_at=now, error=reason):
            added += 1
    return added


def _record(row: Any) -> Record:
    return Record(
        job=row.job, organization=row.organization, audience=row.audience,
        first=row.first_day, last=row.last_day, period_name=row.period_name, state=row.state,
        trigger=row.trigger, attempts=row.attempts, deliveries=row.deliveries,
        forced=row.forced, claimed_at=row.claimed_at, finished_at=row.finished_at,
        delivered_at=row.delivered_at, scheduled_for=row.scheduled_for, seconds=row.seconds,
        error=row.error, files=json.loads(row.files or "[]"),
        recipients=json.loads(row.recipients or "[]"), timings=json.loads(row.timings or "{}"))


def get(engine: Engine, unit: Unit) -> Record | None:
    """The unit's ledger row, or None when it was never claimed."""
    with engine.connect() as conn:
        row = conn.execute(select(runs).where(*_match(unit))).one_or_none()
    return _record(row) if row is not None else None


def history(engine: Engine, *, job: str | None = None, organization: str | None = None,
            state: str | None = None, limit: int = 100) -> list[Record]:
    """Ledger rows, newest claim first, filtered by job, organization and state."""
    query = select(runs).order_by(R.claimed_at.desc(), R.id.desc()).limit(limit)
    if job is not None:
        query = query.where(R.job == job)
    if organization is not None:
        query = query.where(R.organization == organization)
    if state is not None:
        query = query.where(R.state == state)
    with engine.connect() as conn:
        return [_record(row) for row in conn.execute(query)]
