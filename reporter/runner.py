"""Runs: plan a job into units, then claim, build, render, store and send each exactly once."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from . import aggregate, ledger, periods, render, store
from .config import Config, Job
from .deliver import email, smtp
from .deliver import store as stored
from .errors import ConfigError, DeliveryError, PeriodError, ReporterError
from .periods import Period
from .report import Report
from .units import Outcome, Unit

log = logging.getLogger(__name__)

#: the note on an ``already`` outcome whose unit another process is working on right now
HELD = "in progress elsewhere"

Executor = Callable[[Sequence[Unit], bool, bool, datetime], Iterable[Outcome]]


def _org_slugs(engine: Engine, job: Job, orgs: list[str] | None) -> list[str]:
    known = [o.slug for o in store.list_orgs(engine)]
    if orgs:
        for slug in orgs:
            if slug not in known:
                raise ConfigError(f"job {job.name!r}: unknown organization {slug!r}")
            if job.organizations is not None and slug not in job.organizations:
                raise ConfigError(f"job {job.name!r} does not report on {slug!r}")
        return list(orgs)
    if job.organizations is None:
        return known
    for slug in job.organizations:
        if slug not in known:
            raise ConfigError(f"job {job.name!r}: unknown organization {slug!r}")
    return list(job.organizations)


def audiences(engine: Engine, job: Job, org_slug: str) -> list[str]:
    """The audience keys of one organization: ``admins``, ``list`` or ``member:<email>``."""
    if job.audience != "members":
        return [job.audience]
    org = store.get_org(engine, org_slug)
    return [f"member:{m.email}" for m in store.members(engine, org.id) if m.active]


def plan(engine: Engine, config: Config, job_name: str, *, as_of: datetime,
         orgs: list[str] | None = None, period: str | None = None, first: date | None = None,
         last: date | None = None, trigger: str = "cli",
         scheduled_for: datetime | None = None) -> list[Unit]:
    """One unit per (organization, audience or recipient), the period resolved in each
    organization's timezone at ``scheduled_for`` (else ``as_of``)."""
    job = config.job(job_name)
    reference = scheduled_for or as_of
    name = period if period is not None else (None if first or last else job.period)
    units = []
    for slug in _org_slugs(engine, job, orgs):
        resolved = aggregate.resolve_period(engine, slug, name, reference, first=first,
                                            last=last)
        for audience in audiences(engine, job, slug):
            units.append(Unit(job.name, slug, audience, resolved.name, resolved.first,
                              resolved.last, trigger, scheduled_for))
    return units


def recipients(engine: Engine, job: Job, unit: Unit) -> list[str]:
    """Who receives the unit now: active owners and admins, the list, or the member."""
    if unit.audience == "list":
        return list(job.addresses)
    org = store.get_org(engine, unit.organization)
    people = store.members(engine, org.id)
    if unit.member is not None:
        return [m.email for m in people if m.email == unit.member]
    return [m.email for m in people if m.role in ("owner", "admin")]


def _period(engine: Engine, unit: Unit) -> Period:
    org = store.get_org(engine, unit.organization)
    return Period(unit.period_name, unit.first, unit.last, org.timezone)


def _render(config: Config, report: Report, formats: Iterable[str]) -> dict[str, bytes]:
    options = render.Options(config.templates)
    return {fmt: render.render(report, fmt, options) for fmt in formats}


def _formats_needed(job: Job) -> list[str]:
    if job.store:
        return list(job.formats)
    return list(job.email.attach) if job.email else []


def _deliver(engine: Engine, config: Config, job: Job, unit: Unit, now: datetime,
             force: bool, timings: dict[str, float], files: list[dict[str, Any]],
             sent_to: list[str]) -> tuple[str, str | None]:
    """Build, render, store and send one unit; the end state and a note."""
    people = recipients(engine, job, unit)
    if unit.member is not None and not people:
        return "empty", f"{unit.member} is no longer a member; nothing sent"
    clock = time.monotonic()
    report = aggregate.build(engine, unit.organization, _period(engine, unit),
                             member=unit.member, now=now)
    timings["build"] = time.monotonic() - clock
    if job.skip_empty and report.is_empty:
        return "empty", "no usage in the period; nothing sent"
    clock = time.monotonic()
    rendered = _render(config, report, _formats_needed(job))
    timings["render"] = time.monotonic() - clock
    where = stored.folder(config.output, job.name, report)
    if job.store:
        clock = time.monotonic()
        files += [f.as_dict() for f in stored.store(config.output, job.name, report, rendered,
                                                    now)]
        timings["store"] = time.monotonic() - clock
    if job.email is None:
        return "delivered", None
    if not people:
        raise DeliveryError(f"organization {unit.organization!r} has no owners or admins "
                            f"to send job {job.name!r} to")
    attachments = [email.Attachment(stored.file_name(report, fmt), rendered[fmt],
                                    where / stored.file_name(report, fmt) if job.store else None)
                   for fmt in job.email.attach]
    msg = email.build(report, job=job.name, subject=job.email.subject, sender=config.email_from,
                      recipients=people, attachments=attachments,
                      max_attachment_bytes=job.email.max_attachment_bytes, now=now,
                      templates=config.templates)
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


def _dry_run(engine: Engine, config: Config, unit: Unit, force: bool) -> Outcome:
    job = config.job(unit.job)
    record = ledger.get(engine, unit)
    if record is not None and record.state == "delivered" and not force:
        return Outcome(unit, "already", files=tuple(f["path"] for f in record.files),
                       recipients=tuple(record.recipients))
    period = _period(engine, unit)
    people = recipients(engine, job, unit) if job.email else []
    if job.skip_empty:
        report = aggregate.build(engine, unit.organization, period, member=unit.member)
        if report.is_empty:
            return Outcome(unit, "empty", note="no usage in the period; nothing would be sent")
    where = stored.folder(config.output, job.name, _placeholder(unit, period))
    files = tuple(str(where / f"{render.file_stem(_placeholder(unit, period))}."
                                f"{render.FORMATS[fmt][1]}")
                  for fmt in (job.formats if job.store else ()))
    return Outcome(unit, "planned", files=files, recipients=tuple(people))


def _placeholder(unit: Unit, period: Period) -> Report:
    """An empty report carrying only what file names are made of."""
    from .report import OrgRef, Summary

    return Report(OrgRef(unit.organization, unit.organization, period.timezone), period,
                  unit.member, None, datetime.now().astimezone(), Summary(), [], [], [], [],
                  [], [])


def execute(engine: Engine, config: Config, unit: Unit, *, now: datetime, force: bool = False,
            dry_run: bool = False) -> Outcome:
    """Claim, build, render, store and send one unit. Failures become ``failed`` outcomes."""
    started = time.monotonic()
    if dry_run:
        try:
            return _dry_run(engine, config, unit, force)
        except ReporterError as exc:
            return Outcome(unit, "failed", error=str(exc))
    owner = uuid.uuid4().hex
    try:
        job = config.job(unit.job)
        claim = ledger.claim(engine, unit, owner=owner, now=now, force=force,
                             timeout_seconds=config.scheduler.unit_timeout_seconds)
    except Exception as exc:  # noqa: BLE001 - one unit's trouble never stops the batch
        log.exception("%s: cannot claim", unit.key)
        return Outcome(unit, "failed", error=f"cannot claim: {exc}")
    if not claim.claimed:
        record = ledger.get(engine, unit)
        held = HELD if claim.state == "running" else claim.state
        return Outcome(unit, "already", note=held,
                       files=tuple(f["path"] for f in record.files) if record else (),
                       recipients=tuple(record.recipients) if record else ())
    timings: dict[str, float] = {}
    files: list[dict[str, Any]] = []
    sent_to: list[str] = []
    error: str | None = None
    try:
        note: str | None
        state, note = _deliver(engine, config, job, unit, now, force, timings, files, sent_to)
    except ReporterError as exc:
        state, error, note = "failed", str(exc), None
    except Exception as exc:  # noqa: BLE001 - a bug in one unit must not stop the others
        log.exception("%s: unexpected error", unit.key)
        state, error, note = "failed", f"{type(exc).__name__}: {exc}", None
    seconds = time.monotonic() - started
    finished = now + timedelta(seconds=seconds)
    try:
        ledger.finish(engine, unit, owner=owner, now=finished, state=state, seconds=seconds,
                      error=error or note, files=files, recipients=sent_to,
                      timings={k: round(v, 4) for k, v in timings.items()},
                      forced=force and claim.state == "delivered")
    except Exception as exc:  # noqa: BLE001
        log.exception("%s: cannot record the outcome", unit.key)
        error = f"{error + '; ' if error else ''}cannot record the outcome: {exc}"
        state = "failed"
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


def periods_in(kind: str, first: date, last: date) -> list[tuple[date, date]]:
    """Every complete period of ``kind`` lying inside ``first..last``."""
    if first > last:
        raise PeriodError(f"--from {first} is after --to {last}")
    out = []
    if kind == "previous-week":
        day = first + timedelta(days=(7 - first.weekday()) % 7)
        while day + timedelta(days=6) <= last:
            out.append((day, day + timedelta(days=6)))
            day += timedelta(days=7)
    elif kind in ("previous-month", "month-to-date"):
        day = first if first.day == 1 else (first.replace(day=28) + timedelta(days=4)).replace(
            day=1)
        while True:
            end = (day.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
            if end > last:
                break
            out.append((day, end))
            day = end + timedelta(days=1)
    elif kind in periods.ROLLING:
        length = periods.ROLLING[kind]
        day = first
        while day + timedelta(days=length - 1) <= last:
            out.append((day, day + timedelta(days=length - 1)))
            day += timedelta(days=length)
    else:
        raise PeriodError(f"a job with period {kind!r} has no periods to backfill")
    return out


def backfill(engine: Engine, config: Config, job_name: str, *, first: date, last: date,
             orgs: list[str] | None = None) -> list[Unit]:
    """The units of every period of the job's kind inside ``first..last``."""
    job = config.job(job_name)
    spans = periods_in(job.period, first, last)
    if not spans:
        raise PeriodError(f"no complete {job.period} period between {first} and {last}")
    units = []
    for slug in _org_slugs(engine, job, orgs):
        for audience in audiences(engine, job, slug):
            for start, end in spans:
                units.append(Unit(job.name, slug, audience, job.period, start, end, "backfill"))
    return units
