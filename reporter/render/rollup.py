"""The tables a page shows: a report's rows in full, or rolled up to fit a page budget."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

from .. import money
from ..periods import Period
from ..report import DayRow, MemberRow, MemberUsage, Metrics, ModelDayRow, ProjectRow, Report

#: bucket name -> the phrase a note uses for it
BUCKETS = {"day": "days", "week": "weeks (Monday to Sunday)", "month": "calendar months",
           "quarter": "calendar quarters", "year": "calendar years"}


@dataclass
class Others(Metrics):
    """Rows beyond the ones shown, summed."""

    count: int = 0


@dataclass
class Line(Metrics):
    """A row of the By Day or By Model & Day table: a day (or span of days), its members."""

    first: date = date.min
    last: date = date.min
    model: str | None = None
    users: int = 0
    members: list[MemberUsage] = field(default_factory=list)
    others: Others | None = None

    @property
    def label(self) -> str:
        if self.first == self.last:
            return self.first.isoformat()
        return f"{self.first.isoformat()} to {self.last.isoformat()}"


@dataclass(frozen=True)
class Limits:
    """The most rows a rolled-up view shows; ``None`` fields mean "no limit"."""

    day_lines: int = 31          # By Day rows before days roll up into weeks, months...
    model_lines: int = 80        # By Model & Day rows, likewise
    day_members: int = 100       # nested member rows under By Day, in all
    model_members: int = 100     # nested member rows under By Model & Day, in all
    min_members: int = 3         # each row lists at least this many members (else roll up)
    projects: int = 20
    members: int = 40


@dataclass
class View:
    """What the HTML and PDF templates show; ``notes`` say what was rolled up."""

    report: Report
    day_bucket: str
    model_bucket: str
    by_day: list[Line]
    by_model_day: list[Line]
    by_project: list[ProjectRow]
    projects_others: Others | None
    by_member: list[MemberRow]
    members_others: Others | None
    notes: list[str]
    cost_places: int


def _bucket_start(day: date, bucket: str) -> date:
    if bucket == "week":
        return day - timedelta(days=day.weekday())
    if bucket == "month":
        return day.replace(day=1)
    if bucket == "quarter":
        return day.replace(month=(day.month - 1) // 3 * 3 + 1, day=1)
    if bucket == "year":
        return day.replace(month=1, day=1)
    return day


def _split(members: list[MemberUsage], keep: int | None) -> tuple[list[MemberUsage], Others | None]:
    if keep is None or len(members) <= keep + 1:  # "1 other member" takes a row as well
        return members, None
    rest = Others(count=len(members) - keep)
    for member in members[keep:]:
        rest.add(member)
    return members[:keep], rest


def _bucket_end(start: date, bucket: str) -> date:
    if bucket == "day":
        return start
    if bucket == "week":
        return start + timedelta(days=6)
    months = {"month": 1, "quarter": 3, "year": 12}[bucket]
    month = start.month - 1 + months
    return date(start.year + month // 12, month % 12 + 1, 1) - timedelta(days=1)


def _merge(rows: Sequence[DayRow | ModelDayRow], bucket: str, model: str | None,
           period: Period) -> tuple[Line, list[MemberUsage]]:
    start = _bucket_start(rows[0].date, bucket)
    line = Line(first=max(start, period.first),
                last=min(_bucket_end(start, bucket), period.last), model=model)
    people: dict[str, MemberUsage] = {}
    for row in rows:
        line.add(row)
        for member in row.members:
            person = people.get(member.email)
            if person is None:
                person = people[member.email] = MemberUsage(email=member.email,
                                                            name=member.name)
            person.add(member)
    line.users = len(people) if len(rows) > 1 else rows[0].users
    ordered = sorted(people.values(), key=lambda m: (-m.cost_nanos, m.email))
    return line, ordered


def _lines(rows: Sequence[DayRow | ModelDayRow], bucket: str,
           period: Period) -> list[tuple[Line, list[MemberUsage]]]:
    groups: dict[tuple[date, str | None], list[DayRow | ModelDayRow]] = {}
    for row in rows:
        model = row.model if isinstance(row, ModelDayRow) else None
        groups.setdefault((_bucket_start(row.date, bucket), model), []).append(row)
    out = [_merge(group, bucket, model, period) for (_, model), group in groups.items()]
    out.sort(key=lambda item: (item[0].first, -item[0].cost_nanos, item[0].model or ""))
    return out


def _keep(lines: int, budget: int | None, limits: Limits | None) -> int | None:
    if budget is None or limits is None or lines == 0:
        return None
    return max(limits.min_members, budget // lines - 1)


def _top(rows: list[ProjectRow] | list[MemberRow], keep: int | None) -> Others | None:
    if keep is None or len(rows) <= keep + 1:
        return None
    rest = Others(count=len(rows) - keep)
    for row in rows[keep:]:
        rest.add(row)
    del rows[keep:]
    return rest


def _bucket(rows: Sequence[DayRow | ModelDayRow], most: int | None, budget: int | None,
            min_members: int) -> str:
    """The finest bucket that keeps the table within ``most`` rows, each able to list
    ``min_members`` of its members within the nested-row ``budget``."""
    if most is None or budget is None:
        return "day"
    for bucket in BUCKETS:
        lines = len({(_bucket_start(r.date, bucket), getattr(r, "model", None)) for r in rows})
        if lines <= most and (lines == 0 or budget // lines - 1 >= min_members):
            return bucket
    return bucket


def build(report: Report, limits: Limits | None = None) -> View:
    """The report's tables; with ``limits``, rolled up (and said so in ``notes``)."""
    notes: list[str] = []
    least = limits.min_members if limits else 0
    day_bucket = _bucket(report.by_day, limits.day_lines if limits else None,
                         limits.day_members if limits else None, least)
    model_bucket = _bucket(report.by_model_day, limits.model_lines if limits else None,
                           limits.model_members if limits else None, least)
    if day_bucket != "day":
        notes.append(f"By Day sums days into {BUCKETS[day_bucket]}.")
    if model_bucket != "day":
        notes.append(f"By Model & Day sums days into {BUCKETS[model_bucket]}.")
    if notes:
        notes.append("The chart shows every day.")

    day_lines = _lines(report.by_day, day_bucket, report.period)
    model_lines = _lines(report.by_model_day, model_bucket, report.period)
    keep_day = _keep(len(day_lines), limits.day_members if limits else None, limits)
    keep_model = _keep(len(model_lines), limits.model_members if limits else None, limits)

    by_day: list[Line] = []
    by_model_day: list[Line] = []
    for lines, keep, out, what in ((day_lines, keep_day, by_day, "By Day"),
                                   (model_lines, keep_model, by_model_day, "By Model & Day")):
        cut = False
        for line, members in lines:
            line.members, line.others = _split(members, keep)
            cut = cut or line.others is not None
            out.append(line)
        if cut:
            notes.append(f"{what} lists the top {keep} members of each row and sums the rest.")

    by_project = list(report.by_project)
    projects_others = _top(by_project, limits.projects if limits else None)
    by_member = list(report.by_member)
    members_others = _top(by_member, limits.members if limits else None)
    if projects_others or members_others:
        notes.append("By Project and By Member list the largest rows and sum the rest.")
    if notes:
        notes.append("The XLSX report holds every row in full detail.")

    amounts = [report.summary.cost_nanos, report.summary.avg_cost_nanos]
    amounts += [m.cost_nanos for line, _ in day_lines + model_lines for m in line.members]
    amounts += [line.cost_nanos for line, _ in day_lines + model_lines]
    amounts += [row.cost_nanos for row in report.by_project + report.by_member]
    amounts += [p.cost_nanos for p in report.daily]
    places = max(report.cost_places, money.places_needed(amounts))
    return View(report, day_bucket, model_bucket, by_day, by_model_day, by_project, projects_others,
                by_member, members_others, notes, places)
