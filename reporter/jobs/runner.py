"""Running units: claim each in the ledger, then build, render, store and send it once."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

from sqlalchemy import Engine

from reporter import render
from reporter.deliver import archive, email, smtp
from reporter.errors import DeliveryError, ReporterError
from reporter.jobs import alertrun, ledger, plan
from reporter.jobs.config import Config
from reporter.jobs.settings import JobSettings
from reporter.jobs.units import HELD, SKIPPED, Executor, Outcome, Unit
from reporter.periods import Period
from reporter.render import email_body
from reporter.report import aggregate, budget
from reporter.report.model import Report, ReportKey
from reporter.store import orgs as store

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


def not_over(period: Period, now: datetime) -> str | None:
    """Why a unit of ``period`` must wait at ``now`` (its last day has not ended in the
    organization's timezone), else None."""
    if period.end <= now:
        return None
    return f"period ends {period.end.astimezone(period.zone).isoformat()}; not over yet"


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


def _period(engine: Engine, unit: Unit) -> Period:
    org = store.get_org(engine, unit.organization)
    return Period(unit.period_name, unit.first, unit.last, org.timezone)


def _render(config: Config, report: Report, formats: Iterable[str]) -> dict[str, bytes]:
    options = render.Options(config.templates)
    return {fmt: render.render(report, fmt, options) for fmt in formats}


def _formats_needed(job: JobSettings) -> list[str]:
    if job.store:
        return list(job.formats)
    return list(job.email.attach) if job.email else []


def _deliver(engine: Engine, config: Config, job: JobSettings, unit: Unit, now: datetime,
             force: bool, timings: dict[str, float], files: list[dict[str, Any]],
             sent_to: list[str], lost: threading.Event) -> tuple[str, str | None]:
    """Build, render, store and send one unit; the end state and a note. Nothing is stored
    or sent once ``lost`` is set (another process took the unit over)."""

    def still_ours() -> None:
        if lost.is_set():
            raise DeliveryError(_taken_over(config.scheduler.unit_timeout_seconds)
                                + "; this attempt sent nothing")

    people = plan.recipients(engine, job, unit)
    if unit.member is not None and not people:
        return "empty", f"{unit.member} is no longer a member; nothing sent"
    clock = time.monotonic()
    report = budget.attach(engine, aggregate.build(engine, unit.organization,
                                                   _period(engine, unit), member=unit.member,
                                                   now=now))
    timings["build"] = time.monotonic() - clock
    if job.skip_empty and report.is_empty:
        return "empty", "no usage in the period; nothing sent"
    clock = time.monotonic()
    rendered = _render(config, report, _formats_needed(job))
    timings["render"] = time.monotonic() - clock
    where = archive.folder(config.output, job.name, report.key)
    if job.store:
        still_ours()
        clock = time.monotonic()
        files += [f.as_dict() for f in archive.store(config.output, job.name, report, rendered,
                                                    now)]
        timings["store"] = time.monotonic() - clock
    if job.webhook is not None:
        still_ours()
        alertrun.report_webhook(engine, job, unit, report, where if job.store else None,
                                files, force)
    if job.email is None:
        return "delivered", None
    if not people:
        raise DeliveryError(f"organization {unit.organization!r} has no owners or admins "
                            f"to send job {job.name!r} to")
    attachments = [email.Attachment(render.file_name(report.key, fmt), rendered[fmt],
                                    where / render.file_name(report.key, fmt)
                                    if job.store else None)
                   for fmt in job.email.attach]
    sent, omitted = email.within_limit(attachments, job.email.max_attachment_bytes, job.name)
    body = email_body.render(report, job=job.name, sent=sent, omitted=omitted,
                             domain=email.sender_domain(config.email_from),
                             templates=config.templates)
    msg = email.build(report, body, job=job.name, subject=job.email.subject,
                      sender=config.email_from, recipients=people, attachments=sent, now=now)
    still_ours()
    clock = time.monotonic()
    note = None
    if config.smtp is None:
        stem = f"{unit.job}_{unit.organization}_{report.period.slug}_{unit.audience}"
        stem += f"_{now.strftime('%Y%m%dT%H%M%S')}" + ("_forced" if force else "")
        path = smtp.to_outbox(config.output / "outbox", msg, stem)
        files.append({"format": "eml", "path": str(path), "bytes": path.stat().st_size})
        sent_to += people
    else:
        refused = smtp.send(config.smtp, msg, people)
        sent_to += [p for p in people if p not in refused]
        if refused:
            note = "refused: " + "; ".join(f"{k}: {v}" for k, v in refused.items())
    timings["send"] = time.monotonic() - clock
    return "delivered", note


def _dry_run(engine: Engine, config: Config, unit: Unit, force: bool, now: datetime,
             period: Period) -> Outcome:
    job = config.job(unit.job)
    record = ledger.get(engine, unit)
    timeout = config.scheduler.unit_timeout_seconds
    if (record is not None and record.state == "running" and record.claimed_at is not None
            and record.claimed_at >= now - timedelta(seconds=timeout)):
        return Outcome(unit, HELD, note=held_note(record.claimed_at, timeout))
    if record is not None and record.deliveries and not force:
        return Outcome(unit, "already", files=tuple(f["path"] for f in record.files),
                       recipients=tuple(record.recipients))
    people = plan.recipients(engine, job, unit) if job.email else []
    if job.skip_empty:
        report = aggregate.build(engine, unit.organization, period, member=unit.member)
        if report.is_empty:
            return Outcome(unit, "empty", note="no usage in the period; nothing would be sent")
    key = ReportKey(unit.organization, period, unit.member)
    files = tuple(str(path) for path in archive.paths(config.output, job.name, key,
                                                        job.formats if job.store else ()))
    return Outcome(unit, "planned", files=files, recipients=tuple(people))


def execute(engine: Engine, config: Config, unit: Unit, *, now: datetime, force: bool = False,
            dry_run: bool = False) -> Outcome:
    """Claim, build, render, store and send one unit. Failures become ``failed`` outcomes.

    ``now`` is the moment this unit's work starts: the claim's time. While the unit runs a
    heartbeat keeps the claim fresh, so however long it takes no other process takes it
    over; one that stops (killed, crashed) leaves a claim that goes stale after
    ``scheduler.unit_timeout_seconds`` and is then taken over. A unit whose period is not
    over yet at ``now`` is ``skipped`` and leaves no trace in the ledger.
    """
    started = time.monotonic()

    def clock() -> datetime:
        return now + timedelta(seconds=time.monotonic() - started)

    timeout = config.scheduler.unit_timeout_seconds
    try:
        job = config.job(unit.job)
        if job.kind == "alert":  # an alert speaks of its month or day as it stands now
            if dry_run:
                return alertrun.dry_run(engine, config, unit, force)
        else:
            period = _period(engine, unit)
            waiting = not_over(period, now)
            if waiting is not None:
                return Outcome(unit, SKIPPED, note=waiting)
            if dry_run:
                return _dry_run(engine, config, unit, force, now, period)
    except ReporterError as exc:
        return Outcome(unit, "failed", error=str(exc))
    owner = uuid.uuid4().hex
    try:
        claim = ledger.claim(engine, unit, owner=owner, now=now, force=force,
                             timeout_seconds=timeout)
    except Exception as exc:  # one unit's trouble never stops the batch
        log.exception("%s: cannot claim", unit.key)
        return Outcome(unit, "failed", error=f"cannot claim: {exc}")
    if not claim.claimed:
        if claim.state == "running":
            return Outcome(unit, HELD, note=held_note(claim.claimed_at, timeout))
        record = ledger.get(engine, unit)
        return Outcome(unit, "already",
                       files=tuple(f["path"] for f in record.files) if record else (),
                       recipients=tuple(record.recipients) if record else ())
    resend = claim.deliveries > 0
    timings: dict[str, float] = {}
    files: list[dict[str, Any]] = []
    sent_to: list[str] = []
    error: str | None = None
    with Heartbeat(engine, unit, owner, clock, max(0.05, timeout / 3)) as beat:
        try:
            note: str | None
            if job.kind == "alert":
                state, note = alertrun.deliver(engine, config, job, unit, now, force, files,
                                               sent_to, beat.lost)
            else:
                state, note = _deliver(engine, config, job, unit, now, force, timings, files,
                                       sent_to, beat.lost)
        except ReporterError as exc:
            state, error, note = "failed", str(exc), None
        except Exception as exc:  # a bug in one unit must not stop the others
            log.exception("%s: unexpected error", unit.key)
            state, error, note = "failed", f"{type(exc).__name__}: {exc}", None
    seconds = time.monotonic() - started
    try:
        kept = ledger.finish(engine, unit, owner=owner, now=clock(), state=state,
                             seconds=seconds, error=error or note, files=files,
                             recipients=sent_to,
                             timings={k: round(v, 4) for k, v in timings.items()},
                             resend=resend)
    except Exception as exc:  # the unit ends as failed; the traceback goes to the log
        log.exception("%s: cannot record the outcome", unit.key)
        error = f"{error + '; ' if error else ''}cannot record the outcome: {exc}"
        state = "failed"
    else:
        if not kept:
            if not (error or "").startswith(_taken_over(timeout)):
                ended = f"ended {state}" + (f", sent to {', '.join(sent_to)}" if sent_to
                                            else "")
                error = (f"{_taken_over(timeout)}; this attempt {ended}, which the ledger "
                         f"does not record{'; ' + error if error else ''}")
            state = "failed"
        elif resend and state != "delivered":
            note = "the earlier delivery stands"
    log.info("%s %s %s %s %s..%s %.2fs%s", unit.job, unit.organization, unit.audience, state,
             unit.first, unit.last, seconds, f" ({error})" if error else "")
    return Outcome(unit, state, seconds, error, tuple(f["path"] for f in files),
                   tuple(sent_to), note=note)


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




def run_every_job(engine: Engine, config: Config, *, now: datetime) -> list[Path]:
    """Run each enabled job of the config once (what ``reporter demo`` does after loading its
    data); the files stored and the outbox messages. DeliveryError when a unit failed."""
    written: list[Path] = []
    failures = []
    for name, job in config.jobs.items():
        if not job.enabled:
            continue
        units = plan.plan(engine, config, name, as_of=now, trigger="cli")
        for outcome in run_units(engine, config, units, now=now):
            written += [Path(p) for p in outcome.files]
            if outcome.state == "failed":
                failures.append(f"{name} {outcome.unit.organization} {outcome.unit.audience}: "
                                f"{outcome.error}")
    if failures:
        raise DeliveryError(f"{len(failures)} demo units failed; first: {failures[0]}")
    return written
