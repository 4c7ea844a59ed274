"""The report job kind: one report of a whole period per organization and audience,
stored, posted and emailed."""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta
from email.message import EmailMessage

from sqlalchemy import Engine

from reporter import periods, render
from reporter.config import Config, JobSettings
from reporter.deliver import archive, email, webhook
from reporter.errors import PeriodError
from reporter.jobs.kinds.base import Entry, Parcel, Request, org_slugs, recipients
from reporter.jobs.units import EMPTY, PLANNED, Outcome, Unit
from reporter.money import headline_usd
from reporter.periods import Period
from reporter.render import email_body
from reporter.report import aggregate, budget, freshness, readable
from reporter.report.model import Report, ReportKey
from reporter.store import orgs

#: named periods that end with their reference day: a job reports them up to the last
#: complete day before it, so what it delivers is never a part of a day
ENDING_TODAY = (*periods.ROLLING, "all", "month-to-date")


def audiences(engine: Engine, job: JobSettings, org_slug: str) -> list[str]:
    """The audience keys of one organization: ``admins``, ``list`` or ``member:<email>``."""
    if job.audience != "members":
        return [job.audience]
    org = orgs.get_org(engine, org_slug)
    return [f"member:{m.email}" for m in orgs.members(engine, org.id) if m.active]


def _last_complete_day(reference: datetime, timezone: str) -> datetime:
    """The last instant of the day before ``reference``'s day in ``timezone``."""
    zone = periods.zone(timezone)
    today = periods.local_date(reference, zone)
    return periods.local_midnight(today, zone) - timedelta(microseconds=1)


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
        day = first if first.day == 1 else periods.next_month(first)
        while (end := periods.month_last(day)) <= last:
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


def _period(engine: Engine, unit: Unit) -> Period:
    org = orgs.get_org(engine, unit.organization)
    return Period(unit.period_name, unit.first, unit.last, org.timezone)


def summary(report: Report) -> dict[str, object]:
    """A report's webhook body: whose, which period, the total and its change (never where
    its files are stored)."""
    total = report.summary.cost_nanos
    whose = report.organization.name + (f" ({report.member})" if report.member else "")
    count = report.summary.requests
    text = (f"{whose} AI usage, {readable.period_text(report.period)}: "
            f"{headline_usd(total)} over {count:,} request{'' if count == 1 else 's'}")
    before = getattr(getattr(report, "previous", None), "summary", None)
    if before is not None and before.cost_nanos:
        text += f", {readable.move_text(total, int(before.cost_nanos))} from the period before"
    details = [report.budget.text] if report.budget is not None and report.budget.text else []
    return webhook.payload(text + ".", details)


class ReportKind:
    """Reports of a period: ``period`` resolved in each organization's timezone."""

    def plan(self, engine: Engine, config: Config, job: JobSettings,
             request: Request) -> list[Unit]:
        """One unit per (organization, audience or recipient). A job delivers whole periods
        only: the periods that end with their reference day end with the last complete day
        before it, and explicit dates whose last day has not ended are refused."""
        name = (request.period if request.period is not None
                else None if request.first or request.last else job.period)
        units = []
        for slug in org_slugs(engine, job, request.orgs or None):
            moment = request.reference
            if name in ENDING_TODAY:
                moment = _last_complete_day(moment, orgs.get_org(engine, slug).timezone)
            resolved = aggregate.resolve_period(engine, slug, name, moment,
                                                first=request.first, last=request.last)
            if name is None and resolved.end > request.as_of:
                raise PeriodError(
                    f"job {job.name!r}: the period {resolved.first}..{resolved.last} is not "
                    f"over yet for organization {slug!r}: it ends "
                    f"{resolved.end.astimezone(resolved.zone).isoformat()} "
                    f"({resolved.timezone}); a report now would be partial (reporter "
                    f"generate makes one to date)")
            for audience in audiences(engine, job, slug):
                units.append(Unit(job.name, slug, audience, resolved.name, resolved.first,
                                  resolved.last, request.trigger, request.scheduled_for))
        return units

    def backfill(self, engine: Engine, config: Config, job: JobSettings, orgs_: list[str],
                 first: date, last: date) -> list[Unit]:
        """The units of every period of the job's kind inside ``first..last``."""
        spans = periods_in(job.period, first, last)
        if not spans:
            raise PeriodError(f"no complete {job.period} period between {first} and {last}")
        return [Unit(job.name, slug, audience, job.period, start, end, "backfill")
                for slug in org_slugs(engine, job, orgs_ or None)
                for audience in audiences(engine, job, slug)
                for start, end in spans]

    def waiting(self, engine: Engine, unit: Unit, now: datetime) -> str | None:
        """Why the unit must wait at ``now``: its last day has not ended in the
        organization's timezone."""
        period = _period(engine, unit)
        if period.end <= now:
            return None
        return f"period ends {period.end.astimezone(period.zone).isoformat()}; not over yet"

    def build(self, engine: Engine, config: Config, job: JobSettings, unit: Unit,
              now: datetime) -> Parcel | str:
        """Build the report, render the formats the job stores or attaches, and the
        message; the empty note when there is nothing to send."""
        people = recipients(engine, job, unit)
        if unit.member is not None and not people:
            return f"{unit.member} is no longer a member; nothing sent"
        clock = time.monotonic()
        report = budget.attach(engine, aggregate.build(engine, unit.organization,
                                                       _period(engine, unit),
                                                       member=unit.member, now=now))
        report = freshness.attach(engine, report, config.sources_feeding(unit.organization))
        timings = {"build": time.monotonic() - clock}
        if job.skip_empty and report.is_empty:
            return "no usage in the period; nothing sent"
        clock = time.monotonic()
        wanted = list(job.formats) if job.keep_files else list(
            job.email.attach if job.email else ())
        options = render.Options(config.templates, config.pdf_engine)
        rendered = {fmt: render.render(report, fmt, options) for fmt in wanted}
        timings["render"] = time.monotonic() - clock
        where = archive.folder(config.output, job.name, report.key)
        parcel = Parcel(f"{unit.job}_{unit.organization}_{report.period.slug}_{unit.audience}",
                        timings=timings)
        if job.keep_files:
            def save() -> list[Entry]:
                return [f.as_dict() for f in archive.save(config.output, job.name, report,
                                                          rendered, now)]
            parcel.save = save
        if job.webhook is not None:
            parcel.webhook = summary(report)
        if job.email is not None and not people:
            parcel.no_email = (f"organization {unit.organization!r} has no owners or admins "
                               f"to send job {job.name!r} to")
        elif job.email is not None:
            settings = job.email

            def compose(stored: bool) -> EmailMessage:
                attachments = [email.Attachment(report.key.file_name(fmt), rendered[fmt],
                                                where / report.key.file_name(fmt)
                                                if stored else None)
                               for fmt in settings.attach]
                sent, omitted = email.within_limit(attachments, settings.max_attachment_bytes,
                                                   job.name)
                body = email_body.render(report, job=job.name, sent=sent, omitted=omitted,
                                         domain=email.sender_domain(config.email_from),
                                         templates=config.templates)
                return email.build(report, body, job=job.name, subject=settings.subject,
                                   sender=config.email_from, recipients=people,
                                   attachments=sent, now=now)
            parcel.compose = compose
            parcel.recipients = people
        return parcel

    def describe(self, engine: Engine, config: Config, job: JobSettings, unit: Unit,
                 now: datetime) -> Outcome:
        """The files a run would store and who it would email."""
        people = recipients(engine, job, unit) if job.email else []
        period = _period(engine, unit)
        if job.skip_empty:
            report = aggregate.build(engine, unit.organization, period, member=unit.member)
            if report.is_empty:
                return Outcome(unit, EMPTY, note="no usage in the period; nothing would be "
                                                 "sent")
        key = ReportKey(unit.organization, period, unit.member)
        files = [str(path) for path in archive.paths(config.output, job.name, key,
                                                      job.formats if job.keep_files else ())]
        if job.webhook is not None:
            files.append(job.webhook.name)
        return Outcome(unit, PLANNED, files=tuple(files), recipients=tuple(people))


KIND = ReportKind()
