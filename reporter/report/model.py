"""The report model: one typed structure that every output format renders."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from reporter import money
from reporter.fsutil import safe_name
from reporter.periods import Period
from reporter.report import readable


@dataclass(slots=True)
class Metrics:
    """Sums over a set of requests. Money is in nano-dollars (exact)."""

    cost_nanos: int = 0
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0

    @property
    def tokens(self) -> int:
        """Input plus output tokens."""
        return self.input_tokens + self.output_tokens

    @property
    def cost_usd(self) -> Decimal:
        """The cost as an exact Decimal of USD."""
        return money.nanos_to_decimal(self.cost_nanos)

    def add(self, other: Metrics) -> None:
        """Add ``other``'s sums to these."""
        self.cost_nanos += other.cost_nanos
        self.requests += other.requests
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.cache_read_tokens += other.cache_read_tokens
        self.cache_write_tokens += other.cache_write_tokens

    def add_values(self, values: tuple[int, int, int, int, int, int]) -> None:
        """Add sums given as (cost, requests, input, output, cache read, cache write)."""
        cost, requests, inp, out, cread, cwrite = values
        self.cost_nanos += cost
        self.requests += requests
        self.input_tokens += inp
        self.output_tokens += out
        self.cache_read_tokens += cread
        self.cache_write_tokens += cwrite


@dataclass(slots=True)
class MemberUsage(Metrics):
    """One member's share of a row (a day, a model on a day)."""

    email: str = ""
    name: str | None = None


@dataclass(slots=True)
class DayRow(Metrics):
    """One calendar day: its sums, active members and each member's share."""

    date: date = date.min
    users: int = 0
    members: list[MemberUsage] = field(default_factory=list)


@dataclass(slots=True)
class ModelDayRow(Metrics):
    """One model on one day: its sums and members; the members' shares come from
    ``Report.model_day_members`` (a long period has too many to hold)."""

    date: date = date.min
    model: str = ""
    users: int = 0


@dataclass(slots=True)
class ProjectRow(Metrics):
    """One project (None: requests with no project) over the period."""

    project: str | None = None
    users: int = 0


@dataclass(slots=True)
class MemberRow(Metrics):
    """One member over the period: sums, days with usage, the model they used most."""

    email: str = ""
    name: str | None = None
    active_days: int = 0
    top_model: str | None = None


@dataclass(slots=True)
class ModelRow(Metrics):
    """A model's total over the period (for "top models")."""

    model: str = ""
    users: int = 0


@dataclass(slots=True)
class Summary(Metrics):
    """The period's totals and the number of members with usage."""

    active_users: int = 0

    @property
    def avg_cost_nanos(self) -> int:
        """Total cost / total requests, rounded half-even to the nano-dollar; 0 without requests."""
        return money.divide_round(self.cost_nanos, self.requests)

    @property
    def avg_cost_usd(self) -> Decimal:
        """The average cost per request as an exact Decimal of USD (9 places)."""
        return money.nanos_to_decimal(self.avg_cost_nanos)


@dataclass(slots=True)
class DailyPoint:
    """One day of the zero-filled daily series behind the charts."""

    date: date
    cost_nanos: int
    requests: int
    tokens: int


@dataclass(slots=True)
class Change:
    """One member's, model's or project's cost and requests in the period and the one before."""

    key: str | None  # the member's email, the model, the project (None: no project)
    label: str  # what a reader sees: the member's name (or email), the model, the project
    cost_nanos: int = 0
    requests: int = 0
    previous_cost_nanos: int = 0
    previous_requests: int = 0
    #: for a member: the model whose cost moved the most the same way (or, when they
    #: stopped, the one they used most before)
    model: str | None = None

    @property
    def delta_nanos(self) -> int:
        """The change of cost, in nano-dollars (negative: a decrease)."""
        return self.cost_nanos - self.previous_cost_nanos

    @property
    def stopped(self) -> bool:
        """Requests in the previous period and none in this one."""
        return self.previous_requests > 0 and self.requests == 0


@dataclass(slots=True)
class Changes:
    """The largest increases and decreases of cost among members, models or projects."""

    increases: list[Change] = field(default_factory=list)
    decreases: list[Change] = field(default_factory=list)


@dataclass(slots=True)
class Previous:
    """The period before the report's (same kind, same timezone, same member) and what
    changed since: its totals, each member's, model's and project's sums, the largest
    moves, and the members who stopped."""

    period: Period
    summary: Summary
    members: dict[str, Metrics]
    models: dict[str, Metrics]
    projects: dict[str | None, Metrics]
    members_changed: Changes
    models_changed: Changes
    projects_changed: Changes
    stopped: list[Change]

    def of(self, metrics: Metrics) -> Metrics:
        """The previous period's sums of a row of this period (zero when it had none)."""
        if isinstance(metrics, MemberRow):
            found = self.members.get(metrics.email)
        elif isinstance(metrics, ModelRow):
            found = self.models.get(metrics.model)
        elif isinstance(metrics, ProjectRow):
            found = self.projects.get(metrics.project)
        else:
            raise TypeError(f"no previous sums for a {type(metrics).__name__}")
        return found if found is not None else Metrics()


@dataclass(frozen=True)
class Budget:
    """A month's budget beside a report in that month: the budget, the spend from the
    month's first day through the report's last day (``days_elapsed`` days), the percent
    used (1 decimal) and the month-end forecast at that pace. Money in nano-dollars."""

    month: date  # the month's first day
    monthly_nanos: int
    spent_nanos: int
    percent: Decimal
    forecast_nanos: int
    days_elapsed: int
    days_in_month: int
    #: the block as one sentence for people (renderers show it as it is)
    text: str = ""

    @property
    def month_text(self) -> str:
        """``2026-11``."""
        return self.month.strftime("%Y-%m")

    @property
    def over(self) -> bool:
        """The forecast ends the month above the budget."""
        return self.forecast_nanos > self.monthly_nanos


@dataclass(frozen=True)
class OrgRef:
    """The organization a report is about: slug, display name and timezone."""

    slug: str
    name: str
    timezone: str


@dataclass(frozen=True)
class ReportKey:
    """What names a report's files: the organization, the period and the member, if any."""

    organization: str
    period: Period
    member: str | None = None

    @property
    def file_stem(self) -> str:
        """``<org>_<first>_<last>[_<member>]``, safe whatever the slug or email holds."""
        stem = f"{safe_name(self.organization)}_{self.period.slug}"
        return f"{stem}_{safe_name(self.member)}" if self.member else stem

    def file_name(self, fmt: str) -> str:
        """The report's file in format ``fmt``: the format's name is the extension."""
        return f"{self.file_stem}.{fmt}"


class MemberShares:
    """The members' shares of the By Model & Day rows, held in memory.

    A report built from a database streams them from it instead
    (``reporter.report.groups.StoredShares``); ``places`` is the decimal places their
    amounts need.
    """

    def __init__(self, shares: list[list[MemberUsage]] | None = None) -> None:
        """``shares``: the members of each By Model & Day row, in the rows' order."""
        self._shares = shares
        costs = [m.cost_nanos for members in shares or [] for m in members]
        self.places = money.places_needed(costs)
        #: the smallest non-zero amount among them (0: none), for the places people read
        self.smallest = min((c for c in costs if c), default=0)

    def lists(self, rows: Sequence[ModelDayRow]) -> Iterator[list[MemberUsage]]:
        """The members of each row of ``rows``, largest cost first, in the rows' order."""
        if self._shares is None:
            yield from ([] for _ in rows)
            return
        if len(self._shares) != len(rows):
            raise ValueError(f"{len(self._shares)} lists of shares for {len(rows)} rows")
        yield from self._shares


@dataclass(slots=True)
class Report:
    """One organization's (or one member's) usage over a period, in every view."""

    organization: OrgRef
    period: Period
    member: str | None
    member_name: str | None
    generated_at: datetime
    summary: Summary
    by_day: list[DayRow]
    by_model_day: list[ModelDayRow]
    by_project: list[ProjectRow]
    by_member: list[MemberRow]
    by_model: list[ModelRow]
    daily: list[DailyPoint]
    #: the period before this one and what changed since; None for ``all``
    previous: Previous | None = None
    #: the month's budget when one is set and the period lies in one month
    budget: Budget | None = None
    #: the members' shares of each By Model & Day row (see ``model_day_members``)
    shares: MemberShares = field(default_factory=MemberShares)
    #: the usage's sources were last read up to this instant, before the period ended
    #: (``reporter.report.freshness``); None: complete, or not read from a source
    synced_through: datetime | None = None
    #: a source of the organization's usage has never been read
    never_synced: bool = False

    @property
    def key(self) -> ReportKey:
        """The organization, period and member this report is about."""
        return ReportKey(self.organization.slug, self.period, self.member)

    @property
    def is_empty(self) -> bool:
        """No request in the period."""
        return self.summary.requests == 0

    @property
    def cost_places(self) -> int:
        """Decimal places that show every amount in the report exactly (2 to 9)."""
        values = [row.cost_nanos for row in self.by_day]
        values += [self.summary.cost_nanos, self.summary.avg_cost_nanos]
        return money.places_needed(values, self.shares.places)

    @property
    def display_places(self) -> int:
        """The decimal places every table of the human formats shows money at: one for the
        whole report, enough that no non-zero amount reads as $0.00 (2 to 9)."""
        values = [self.summary.cost_nanos, self.shares.smallest]
        for rows in (self.by_day, self.by_model_day, self.by_project, self.by_member,
                     self.by_model):
            values += [row.cost_nanos for row in rows]
        values += [m.cost_nanos for row in self.by_day for m in row.members]
        return money.display_places(values)

    def model_day_members(self) -> Iterator[tuple[ModelDayRow, list[MemberUsage]]]:
        """Each By Model & Day row with its members' shares, largest cost first, in order.

        A report built from a database does not hold them: each call reads them again, a
        day at a time, so memory follows one day's groups, not the period's.
        """
        return zip(self.by_model_day, self.shares.lists(self.by_model_day), strict=True)

    def materialize(self) -> None:
        """Hold the members' shares in memory (a small report to pickle or to change)."""
        self.shares = MemberShares([members for _, members in self.model_day_members()])

    @property
    def title(self) -> str:
        """``<organization> AI usage[ for <member's name>], Nov 16 – 22, 2026 (New York
        time)``: a personal report names the member by name (the email without one)."""
        who = f" for {self.member_name or self.member}" if self.member else ""
        return f"{self.organization.name} AI usage{who}, {readable.period_text(self.period)}"

    @property
    def sync_note(self) -> str | None:
        """``Usage synced up to Nov 28, 2026 14:00 New York time; later requests are not in
        this report.``, when the data stops before the period's end."""
        if self.never_synced:
            return "The source of this usage has not been synced yet; its requests are not " \
                   "in this report."
        if self.synced_through is None:
            return None
        when = readable.moment_text(self.synced_through, self.period.timezone)
        return f"Usage synced up to {when}; later requests are not in this report."

    @property
    def personal(self) -> bool:
        """One member's own report."""
        return self.member is not None
