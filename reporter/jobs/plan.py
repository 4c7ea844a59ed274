"""Planning: a job, its organizations and audiences, and a period -> units of work."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import Engine

from reporter import periods
from reporter.errors import ConfigError, PeriodError
from reporter.jobs import alerts
from reporter.jobs.config import Config
from reporter.jobs.settings import JobSettings
from reporter.jobs.units import Unit
from reporter.report import aggregate
from reporter.store import orgs as store

#: named periods that end with their reference day: a job reports them up to the last
#: complete day before it, so what it delivers is never a part of a day
ENDING_TODAY = (*periods.ROLLING, "all", "month-to-date")


def _org_slugs(engine: Engine, job: JobSettings, orgs: list[str] | None) -> list[str]:
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


def audiences(engine: Engine, job: JobSettings, org_slug: str) -> list[str]:
    """The audience keys of one organization: ``admins``, ``list`` or ``member:<email>``."""
    if job.audience != "members":
        return [job.audience]
    org = store.get_org(engine, org_slug)
    return [f"member:{m.email}" for m in store.members(engine, org.id) if m.active]


def _last_complete_day(reference: datetime, timezone: str) -> datetime:
    """The last instant of the day before ``reference``'s day in ``timezone``."""
    zone = periods.zone(timezone)
    today = periods.local_date(reference, zone)
    return periods.local_midnight(today, zone) - timedelta(microseconds=1)


def plan(engine: Engine, config: Config, job_name: str, *, as_of: datetime,
         orgs: list[str] | None = None, period: str | None = None, first: date | None = None,
         last: date | None = None, trigger: str = "cli",
         scheduled_for: datetime | None = None) -> list[Unit]:
    """One unit per (organization, audience or recipient), the period resolved in each
    organization's timezone at ``scheduled_for`` (else ``as_of``).

    A job delivers whole periods only: the periods that end with their reference day
    (past-week, past-month, past-year, all, month-to-date) end with the last complete day
    before it, and explicit dates ``first..last`` whose last day has not ended at ``as_of``
    are refused (PeriodError).
    """
    job = config.job(job_name)
    reference = scheduled_for or as_of
    if job.kind == "alert":
        if period is not None or first is not None or last is not None:
            raise ConfigError(f"job {job.name!r} is an alert job: it has no period "
                              f"(--period, --from and --to do not apply)")
        return alerts.units(engine, config, job, _org_slugs(engine, job, orgs), reference,
                            trigger, scheduled_for)
    name = period if period is not None else (None if first or last else job.period)
    units = []
    for slug in _org_slugs(engine, job, orgs):
        moment = reference
        if name in ENDING_TODAY:
            moment = _last_complete_day(reference, store.get_org(engine, slug).timezone)
        resolved = aggregate.resolve_period(engine, slug, name, moment, first=first,
                                            last=last)
        if name is None and resolved.end > as_of:
            raise PeriodError(
                f"job {job.name!r}: the period {resolved.first}..{resolved.last} is not over "
                f"yet for organization {slug!r}: it ends "
                f"{resolved.end.astimezone(resolved.zone).isoformat()} "
                f"({resolved.timezone}); a report now would be partial (reporter generate "
                f"makes one to date)")
        for audience in audiences(engine, job, slug):
            units.append(Unit(job.name, slug, audience, resolved.name, resolved.first,
                              resolved.last, trigger, scheduled_for))
    return units


def recipients(engine: Engine, job: JobSettings, unit: Unit) -> list[str]:
    """Who receives the unit now: active owners and admins, the list, or the member."""
    if unit.audience == "list":
        return list(job.addresses)
    org = store.get_org(engine, unit.organization)
    people = store.members(engine, org.id)
    if unit.member is not None:
        return [m.email for m in people if m.email == unit.member]
    return [m.email for m in people if m.role in ("owner", "admin")]


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
    if job.kind == "alert":
        raise ConfigError(f"job {job.name!r} is an alert job: it has no periods to backfill")
    spans = periods_in(job.period, first, last)
    if not spans:
        raise PeriodError(f"no complete {job.period} period between {first} and {last}")
    units = []
    for slug in _org_slugs(engine, job, orgs):
        for audience in audiences(engine, job, slug):
            for start, end in spans:
                units.append(Unit(job.name, slug, audience, job.period, start, end, "backfill"))
    return units
