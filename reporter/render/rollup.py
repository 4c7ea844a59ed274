"""The tables a page shows: a report's rows in full, or rolled up to fit a page budget.

The members' shares of By Model & Day are read once, as they stream from the report
(``Report.model_day_members``), and summed into the lines a page can show.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

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
    """How many rows a rolled-up view shows at most (each table row costs WeasyPrint ~5 ms).

    With ``listed`` false (the screen), no member is listed under a row (a reader opens a
    row for its days and members), so only the rows count: ``table_rows`` in By Day and
    ``model_rows`` in By Model & Day.
    """

    table_rows: int = 80    # By Day, and By Model & Day: rows with their nested member rows
    min_members: int = 3    # a row lists at least this many members, or days roll up further
    projects: int | None = 20  # None: every project
    members: int | None = 30
    listed: bool = True
    model_rows: int | None = None  # None: ``table_rows``


#: the screen's tables: rows without their members, every project and member
SCREEN = Limits(table_rows=40, model_rows=150, projects=None, members=None, listed=False)


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

    @property
    def day_title(self) -> str:
        """By Day's heading, named for what its rows hold: By Week, By Month..."""
        return section_title("By Day", self.day_bucket)

    @property
    def model_title(self) -> str:
        """By Model & Day's heading: By Model & Week..., or By Model for the whole period."""
        return section_title("By Model & Day", self.model_bucket)


def section_title(table: str, bucket: str) -> str:
    """``table`` ("By Day", "By Model & Day") named for rows of ``bucket``."""
    if bucket == "period":
        return "Whole Period" if table == "By Day" else "By Model"
    return table.replace("Day", bucket.capitalize())


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


Pair = tuple[DayRow | ModelDayRow, list[MemberUsage]]


def _key(row: DayRow | ModelDayRow, bucket: str, period: Period) -> tuple[date, str | None]:
    model = row.model if isinstance(row, ModelDayRow) else None
    return _start(row.date, bucket, period), model


@dataclass
class _Merging:
    """A line being summed: its rows' sums and each member's."""

    line: Line
    people: dict[str, MemberUsage] = field(default_factory=dict)


def _merge(pairs: Iterable[Pair], buckets: Sequence[str],
           period: Period) -> dict[str, list[tuple[Line, list[MemberUsage]]]]:
    """For each bucket, its lines (largest cost first within a date) with their members,
    summed in one pass over ``pairs`` (rows with their members, read once)."""
    merging: dict[str, dict[tuple[date, str | None], _Merging]] = {b: {} for b in buckets}
    for row, members in pairs:
        for bucket in buckets:
            key = _key(row, bucket, period)
            entry = merging[bucket].get(key)
            if entry is None:
                start = key[0]
                entry = merging[bucket][key] = _Merging(Line(
                    first=max(start, period.first),
                    last=min(_end(start, bucket, period), period.last), model=key[1]))
            entry.line.add(row)
            people = entry.people
            for member in members:
                person = people.get(member.email)
                if person is None:
                    person = people[member.email] = MemberUsage(email=member.email,
                                                                name=member.name)
                person.add(member)
    out = {}
    for bucket, entries in merging.items():
        lines = []
        for entry in entries.values():
            entry.line.users = len(entry.people)
            lines.append((entry.line, sorted(entry.people.values(),
                                             key=lambda m: (-m.cost_nanos, m.email))))
        lines.sort(key=lambda item: (item[0].first, -item[0].cost_nanos, item[0].model or ""))
        out[bucket] = lines
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


def _fit(rows: Sequence[DayRow | ModelDayRow], pairs: Iterable[Pair], period: Period,
         limits: Limits | None, budget: int,
         ) -> tuple[str, int | None, list[tuple[Line, list[MemberUsage]]]]:
    """The finest bucket, and the most members a row lists, that fit ``budget`` table rows.

    Only buckets whose lines alone fit are summed (in one pass over ``pairs``), so memory
    follows the budget, not the number of rows.
    """
    if limits is None:
        return "day", None, _merge(pairs, ["day"], period)["day"]
    candidates = [b for b, (days, _) in BUCKETS.items() if 0 < days < period.days or b == "day"]
    candidates.append("period")
    counts = {b: len({_key(row, b, period) for row in rows}) for b in candidates}
    if not limits.listed:  # members are shown on demand: only the lines count
        bucket = next((b for b in candidates if counts[b] <= budget), "period")
        return bucket, None, _merge(pairs, [bucket], period)[bucket]
    affordable = [b for b in candidates if counts[b] <= budget]
    if "period" not in affordable:
        affordable.append("period")
    merged = _merge(pairs, affordable, period)
    for bucket in affordable:
        lines = merged[bucket]
        sizes = [len(members) for _, members in lines]
        longest = max(sizes, default=0)
        for keep in range(max(longest, limits.min_members), limits.min_members - 1, -1):
            if len(lines) + sum(_shown(size, keep) for size in sizes) <= budget:
                return bucket, keep, lines
    return "period", limits.min_members, merged["period"]


def _top(rows: list[ProjectRow] | list[MemberRow], keep: int | None) -> Others | None:
    if keep is None or len(rows) <= keep + 1:
        return None
    rest = Others(count=len(rows) - keep)
    for row in rows[keep:]:
        rest.add(row)
    del rows[keep:]
    return rest


def build(report: Report, limits: Limits | None = None, *,
          model_pairs: Iterable[Pair] | None = None) -> View:
    """The report's tables; with ``limits``, rolled up (and said so in ``notes``, except on
    screen, where each table says it in its caption and a reader opens a row for its rows).

    ``model_pairs`` are the By Model & Day rows with their members when the caller reads
    them already (``report.model_day_members()`` otherwise): they are read once.
    """
    notes: list[str] = []
    tables = []
    budgets = (limits.table_rows, limits.model_rows or limits.table_rows) if limits else (0, 0)
    day_pairs: Iterable[Pair] = ((row, row.members) for row in report.by_day)
    model = report.model_day_members() if model_pairs is None else model_pairs
    for rows, pairs, budget, what in (
            (report.by_day, day_pairs, budgets[0], "By Day"),
            (report.by_model_day, model, budgets[1], "By Model & Day")):
        bucket, keep, lines = _fit(rows, pairs, report.period, limits, budget)
        if limits is not None and not limits.listed:
            tables.append((bucket, [line for line, _ in lines]))
            continue
        if bucket != "day":
            notes.append(f"{section_title(what, bucket)} sums days into {BUCKETS[bucket][1]}.")
        out: list[Line] = []
        cut = False
        for line, members in lines:
            line.members, line.others = _split(members, keep)
            cut = cut or line.others is not None
            out.append(line)
        if cut:
            notes.append(f"{section_title(what, bucket)} lists the top {keep} members of each"
                         " row and sums the rest.")
        tables.append((bucket, out))
    if any(bucket != "day" for bucket, _ in tables):
        notes.append("The chart shows every day.")

    by_project = list(report.by_project)
    projects_others = _top(by_project, limits.projects if limits else None)
    by_member = list(report.by_member)
    members_others = _top(by_member, limits.members if limits else None)
    if projects_others or members_others:
        notes.append("By Project and By Member list the largest rows and sum the rest.")
    if limits is not None and not limits.listed:
        notes = []  # each table's caption says what its rows are and how to open them
    if notes:
        notes.append("The XLSX report holds every row in full detail.")

    (day_bucket, by_day), (model_bucket, by_model_day) = tables
    places = report.display_places
    return View(report, day_bucket, model_bucket, by_day, by_model_day, by_project,
                projects_others, by_member, members_others, notes, places)
