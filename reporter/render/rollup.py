"""The tables a page shows: a report's rows in full, or rolled up to fit a page budget."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

from reporter import money
from reporter.periods import Period
from reporter.report.model import (
    DayRow,
    MemberRow,
    MemberUsage,
    Metrics,
    ModelDayRow,
    ProjectRow,
    Report,
)

#: bucket -> (its nominal length in days, the phrase a note uses for it); "period" is the
#: whole period as one row
BUCKETS = {"day": (1, "days"), "week": (7, "weeks (Monday to Sunday)"),
           "month": (28, "calendar months"), "quarter": (90, "calendar quarters"),
           "year": (365, "calendar years"), "period": (0, "the whole period")}


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
        """The line's day, or its span of days when rolled up."""
        if self.first == self.last:
            return self.first.isoformat()
        return f"{self.first.isoformat()} to {self.last.isoformat()}"


@dataclass(frozen=True)
class Limits:
    """How many rows a rolled-up view shows at most (each table row costs WeasyPrint ~5 ms)."""

    table_rows: int = 80    # By Day, and By Model & Day: rows with their nested member rows
    min_members: int = 3    # a row lists at least this many members, or days roll up further
    projects: int = 20
    members: int = 30


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


def _start(day: date, bucket: str, period: Period) -> date:
    if bucket == "week":
        return day - timedelta(days=day.weekday())
    if bucket == "month":
        return day.replace(day=1)
    if bucket == "quarter":
        return day.replace(month=(day.month - 1) // 3 * 3 + 1, day=1)
    if bucket == "year":
        return day.replace(month=1, day=1)
    if bucket == "period":
        return period.first
    return day


def _end(start: date, bucket: str, period: Period) -> date:
    if bucket == "day":
        return start
    if bucket == "week":
        return start + timedelta(days=6)
    if bucket == "period":
        return period.last
    month = start.month - 1 + {"month": 1, "quarter": 3, "year": 12}[bucket]
    return date(start.year + month // 12, month % 12 + 1, 1) - timedelta(days=1)


def _merge(rows: Sequence[DayRow | ModelDayRow], bucket: str, model: str | None,
           period: Period) -> tuple[Line, list[MemberUsage]]:
    start = _start(rows[0].date, bucket, period)
    line = Line(first=max(start, period.first),
                last=min(_end(start, bucket, period), period.last), model=model)
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
        groups.setdefault((_start(row.date, bucket, period), model), []).append(row)
    out = [_merge(group, bucket, model, period) for (_, model), group in groups.items()]
    out.sort(key=lambda item: (item[0].first, -item[0].cost_nanos, item[0].model or ""))
    return out


def _shown(people: int, keep: int | None) -> int:
    """Nested rows for ``people`` members when a row lists ``keep`` (plus one "others" row)."""
    return people if keep is None or people <= keep + 1 else keep + 1


def _split(members: list[MemberUsage], keep: int | None) -> tuple[list[MemberUsage], Others | None]:
    if _shown(len(members), keep) == len(members):
        return members, None
    assert keep is not None
    rest = Others(count=len(members) - keep)
    for member in members[keep:]:
        rest.add(member)
    return members[:keep], rest


def _fit(rows: Sequence[DayRow | ModelDayRow], period: Period, limits: Limits | None,
         ) -> tuple[str, int | None, list[tuple[Line, list[MemberUsage]]]]:
    """The finest bucket, and the most members a row lists, that fit the row budget."""
    candidates = [b for b, (days, _) in BUCKETS.items() if 0 < days < period.days or b == "day"]
    for bucket in [*candidates, "period"]:
        lines = _lines(rows, bucket, period)
        if limits is None:
            return bucket, None, lines
        sizes = [len(members) for _, members in lines]
        longest = max(sizes, default=0)
        for keep in range(max(longest, limits.min_members), limits.min_members - 1, -1):
            if len(lines) + sum(_shown(size, keep) for size in sizes) <= limits.table_rows:
                return bucket, keep, lines
    return "period", limits.min_members if limits else None, lines


def _top(rows: list[ProjectRow] | list[MemberRow], keep: int | None) -> Others | None:
    if keep is None or len(rows) <= keep + 1:
        return None
    rest = Others(count=len(rows) - keep)
    for row in rows[keep:]:
        rest.add(row)
    del rows[keep:]
    return rest


def build(report: Report, limits: Limits | None = None) -> View:
    """The report's tables; with ``limits``, rolled up (and said so in ``notes``)."""
    notes: list[str] = []
    tables = []
    for rows, what in ((report.by_day, "By Day"), (report.by_model_day, "By Model & Day")):
        bucket, keep, lines = _fit(rows, report.period, limits)
        if bucket != "day":
            notes.append(f"{what} sums days into {BUCKETS[bucket][1]}.")
        out: list[Line] = []
        cut = False
        for line, members in lines:
            line.members, line.others = _split(members, keep)
            cut = cut or line.others is not None
            out.append(line)
        if cut:
            notes.append(f"{what} lists the top {keep} members of each row and sums the rest.")
        tables.append((bucket, out))
    if any(bucket != "day" for bucket, _ in tables):
        notes.append("The chart shows every day.")

    by_project = list(report.by_project)
    projects_others = _top(by_project, limits.projects if limits else None)
    by_member = list(report.by_member)
    members_others = _top(by_member, limits.members if limits else None)
    if projects_others or members_others:
        notes.append("By Project and By Member list the largest rows and sum the rest.")
    if notes:
        notes.append("The XLSX report holds every row in full detail.")

    (day_bucket, by_day), (model_bucket, by_model_day) = tables
    amounts = [report.summary.cost_nanos, report.summary.avg_cost_nanos]
    amounts += [row.cost_nanos for row in report.by_day]
    amounts += [m.cost_nanos for row in report.by_model_day for m in row.members]
    amounts += [row.cost_nanos for row in report.by_project + report.by_member]
    places = max(report.cost_places, money.places_needed(amounts))
    return View(report, day_bucket, model_bucket, by_day, by_model_day, by_project,
                projects_others, by_member, members_others, notes, places)
