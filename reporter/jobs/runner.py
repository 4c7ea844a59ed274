"""Running units: claim each in the ledger, build what its job's kind delivers, and hand it
to the channels, once."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from types import TracebackType

from sqlalchemy import Engine

from reporter import logcontext
from reporter.config import Config, JobSettings
from reporter.errors import ReporterError
from reporter.jobs import deliveries, kinds, ledger
from reporter.jobs.units import (
    ALREADY,
    DELIVERED,
    EMPTY,
    FAILED,
    HELD,
    RUNNING,
    SKIPPED,
    Executor,
    Outcome,
    Unit,
)

log = logging.getLogger(__name__)


def advanced(now: datetime, origin: float) -> datetime:
    """``now`` moved on by the wall-clock time since ``origin``, the ``time.time()`` at which
    ``now`` was read: the moment a unit's work starts in another process, on the batch's
    clock."""
    return now + timedelta(seconds=max(0.0, time.time() - origin))


def _utc(moment: datetime, *, up: bool = False) -> str:
    """``2026-01-12T15:00:07Z``; ``up`` rounds to the next whole second."""
    moment = moment.astimezone(UTC)
    if up and moment.microsecond:
        moment += timedelta(microseconds=1_000_000 - moment.microsecond)
    return moment.replace(microsecond=0).isoformat().replace("+00:00", "Z")


def held_note(claimed_at: datetime | None, timeout_seconds: int) -> str:
    """What an outcome ``held`` says: since when, and when the claim may be taken over."""
    if claimed_at is None:
        return "in progress elsewhere"
    takeover = claimed_at + timedelta(seconds=timeout_seconds)
    return (f"in progress elsewhere since {_utc(claimed_at)}; taken over after "
            f"{_utc(takeover, up=True)} if that process has stopped")


class Heartbeat:
    """Keeps a claim alive while its unit runs: every ``interval`` seconds a thread sets the
    row's ``claimed_at`` to ``clock()``, as long as ``owner`` holds the row. ``lost`` is set
    when it no longer does (another process took the unit over)."""

    def __init__(self, engine: Engine, unit: Unit, owner: str, clock: Callable[[], datetime],
                 interval: float) -> None:
        self.engine = engine
        self.unit = unit
        self.owner = owner
        self.clock = clock
        self.interval = interval
        self.lost = threading.Event()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True,
                                        name=f"heartbeat {unit.key}")

    def _beat(self) -> None:
        while not self._done.wait(self.interval):
            try:
                held = ledger.heartbeat(self.engine, self.unit, owner=self.owner,
                                        now=self.clock())
            except Exception as exc:  # the next beat tries again
                log.warning("%s: cannot refresh the claim: %s", self.unit.key,
                            str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
                continue
            if not held:
                log.warning("%s: another process took this unit over", self.unit.key)
                self.lost.set()
                return

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._done.set()
        self._thread.join()


def _taken_over(timeout_seconds: int) -> str:
    return (f"another process took this unit over while this attempt ran (its claim was "
            f"not refreshed for {timeout_seconds} s)")


def _describe(engine: Engine, config: Config, job: JobSettings, unit: Unit, force: bool,
              now: datetime) -> Outcome:
    """A dry run: held, already delivered, or what the job's kind would deliver."""
    record = ledger.get(engine, unit)
    timeout = config.scheduler.unit_timeout_seconds
    if (record is not None and record.state == RUNNING and record.claimed_at is not None
            and record.claimed_at >= now - timedelta(seconds=timeout)):
        return Outcome(unit, HELD, note=held_note(record.claimed_at, timeout))
    if record is not None and record.deliveries and not force:
        return Outcome(unit, ALREADY, files=tuple(f["path"] for f in record.files),
                       recipients=tuple(record.recipients))
    return kinds.of(job).describe(engine, config, job, unit, now)


def execute(engine: Engine, config: Config, unit: Unit, *, now: datetime, force: bool = False,
            dry_run: bool = False, clock: Callable[[], datetime] | None = None) -> Outcome:
    """Run one unit (``_execute``), every line it logs naming its job and organization."""
    with logcontext.about(unit.job, unit.organization):
        return _execute(engine, config, unit, now=now, force=force, dry_run=dry_run,
                        clock=clock)


def _execute(engine: Engine, config: Config, unit: Unit, *, now: datetime, force: bool,
             dry_run: bool, clock: Callable[[], datetime] | None) -> Outcome:
    """Claim one unit, then build what its job's kind delivers and hand it to the channels.
    Failures become ``failed`` outcomes.

    ``now`` is the moment this unit's work starts: the claim's time. While the unit runs a
    heartbeat keeps the claim fresh, so however long it takes no other process takes it
    over; one that stops (killed, crashed) leaves a claim that goes stale after
    ``scheduler.unit_timeout_seconds`` and is then taken over. A unit whose period is not
    over yet at ``now`` is ``skipped`` and leaves no trace in the ledger. ``clock`` tells
    the time while the unit runs (its heartbeat and its end); default: ``now`` moved on by
    the time elapsed.
    """
    started = time.monotonic()

    def elapsed() -> datetime:
        return now + timedelta(seconds=time.monotonic() - started)

    tick = clock or elapsed

    timeout = config.scheduler.unit_timeout_seconds
    try:
        job = config.job(unit.job)
        kind = kinds.of(job)
        waiting = kind.waiting(engine, unit, now)
        if waiting is not None:
            return Outcome(unit, SKIPPED, note=waiting)
        if dry_run:
            return _describe(engine, config, job, unit, force, now)
    except ReporterError as exc:
        return Outcome(unit, FAILED, error=str(exc))
    owner = uuid.uuid4().hex
    try:
        claim = ledger.claim(engine, unit, owner=owner, now=now, force=force,
                             timeout_seconds=timeout)
    except Exception as exc:  # one unit's trouble never stops the batch
        log.exception("%s: cannot claim", unit.key)
        return Outcome(unit, FAILED, error=f"cannot claim: {exc}")
    if not claim.claimed:
        if claim.state == RUNNING:
            return Outcome(unit, HELD, note=held_note(claim.claimed_at, timeout))
        record = ledger.get(engine, unit)
        return Outcome(unit, ALREADY,
                       files=tuple(f["path"] for f in record.files) if record else (),
                       recipients=tuple(record.recipients) if record else ())
    resend = claim.deliveries > 0
    progress = deliveries.Progress()
    note: str | None = None
    covers: tuple[str, ...] = ()
    with Heartbeat(engine, unit, owner, tick, max(0.05, timeout / 3)) as beat:
        try:
            progress = deliveries.earlier(engine, unit, resend)
            parcel = kind.build(engine, config, job, unit, now)
            if isinstance(parcel, str):
                state, note = EMPTY, parcel
            else:
                covers = parcel.covers
                deliveries.deliver(engine, config, job, unit, parcel, owner=owner,
                                   progress=progress, record=not resend, lost=beat.lost)
                state = FAILED if progress.errors else DELIVERED
                note = "; ".join(progress.notes) or None
        except ReporterError as exc:
            state = FAILED
            progress.errors.append(str(exc))
        except Exception as exc:  # a bug in one unit must not stop the others
            log.exception("%s: unexpected error", unit.key)
            state = FAILED
            progress.errors.append(f"{type(exc).__name__}: {exc}")
    error = "; ".join(progress.errors) or None
    if beat.lost.is_set() and state != FAILED:
        state, error = FAILED, _taken_over(timeout) + "; this attempt sent nothing more"
    seconds = time.monotonic() - started
    try:
        kept = ledger.finish(engine, unit, owner=owner, now=tick(), state=state,
                             seconds=seconds, error=error or note, files=progress.files,
                             recipients=progress.recipients,
                             timings={k: round(v, 4) for k, v in progress.timings.items()},
                             resend=resend)
    except Exception as exc:  # the unit ends as failed; the traceback goes to the log
        log.exception("%s: cannot record the outcome", unit.key)
        error = f"{error + '; ' if error else ''}cannot record the outcome: {exc}"
        state = FAILED
    else:
        if not kept:
            if not (error or "").startswith(_taken_over(timeout)):
                sent = progress.recipients
                ended = f"ended {state}" + (f", sent to {', '.join(sent)}" if sent else "")
                error = (f"{_taken_over(timeout)}; this attempt {ended}, which the ledger "
                         f"does not record{'; ' + error if error else ''}")
            state = FAILED
        elif resend and state != DELIVERED:
            note = "the earlier delivery stands"
        if kept and state == DELIVERED and covers:
            try:
                ledger.cover(engine, [replace(unit, audience=a) for a in covers], by=unit,
                             now=tick())
            except Exception:  # they are only planned again if this unit stops holding
                log.exception("%s: cannot record the units it covers", unit.key)
    log.info("%s %s %s %s %s..%s %.2fs%s", unit.job, unit.organization, unit.audience, state,
             unit.first, unit.last, seconds, f" ({error})" if error else "")
    return Outcome(unit, state, seconds, error, tuple(str(f["path"]) for f in progress.files),
                   tuple(progress.recipients), note=note)


def run_units(engine: Engine, config: Config, units: Sequence[Unit], *, now: datetime,
              force: bool = False, dry_run: bool = False, executor: Executor | None = None,
              progress: Callable[[Outcome], None] | None = None) -> list[Outcome]:
    """Execute ``units`` (serially in-process, or through ``executor``); ``progress`` hears
    of each outcome as it arrives."""
    if executor is not None:
        stream: Iterable[Outcome] = executor(units, force, dry_run, now)
    else:
        clock = time.monotonic()
        stream = (execute(engine, config, unit, force=force, dry_run=dry_run,
                          now=now + timedelta(seconds=time.monotonic() - clock))
                  for unit in units)
    outcomes = []
    for outcome in stream:
        outcomes.append(outcome)
        if progress is not None:
            progress(outcome)
    return outcomes
