"""Report periods: named or explicit calendar-date ranges in a timezone, as UTC instants."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from reporter.errors import PeriodError

ROLLING = {"past-week": 7, "past-month": 30, "past-year": 365}
NAMES = (*ROLLING, "all", "previous-week", "previous-month", "month-to-date")
CUSTOM = "custom"


@dataclass(frozen=True)
class Period:
    """Inclusive calendar dates ``first..last`` in ``timezone``; ``[start, end)`` in UTC.

    ``partial``: the last day had not ended when the period was resolved (a report "to
    date"); its label says so.
    """

    name: str
    first: date
    last: date
    timezone: str
    partial: bool = field(default=False, compare=False)

    @property
    def zone(self) -> ZoneInfo:
        """The period's timezone."""
        return ZoneInfo(self.timezone)

    @property
    def start(self) -> datetime:
        """The first instant of the period, in UTC."""
        return local_midnight(self.first, self.zone)

    @property
    def end(self) -> datetime:
        """The first instant after the period, in UTC (exclusive)."""
        return local_midnight(self.last + timedelta(days=1), self.zone)

    @property
    def micros(self) -> tuple[int, int]:
        """``[start, end)`` in microseconds since the epoch, as the store keeps instants."""
        return (int(self.start.timestamp()) * 1_000_000,
                int(self.end.timestamp()) * 1_000_000)

    @property
    def days(self) -> int:
        """How many calendar days the period holds."""
        return (self.last - self.first).days + 1

    def dates(self) -> Iterator[date]:
        """Each calendar date of the period, in order."""
        for offset in range(self.days):
            yield self.first + timedelta(days=offset)

    @property
    def iso_range(self) -> str:
        """``2026-01-05 to 2026-01-11 (Europe/Berlin)``, and `` (to date)`` when partial: for
        logs and scripts. People read ``reporter.report.readable.period_text``."""
        if self.first == self.last:
            span = self.first.isoformat()
        else:
            span = f"{self.first.isoformat()} to {self.last.isoformat()}"
        return f"{span} ({self.timezone})" + (" (to date)" if self.partial else "")

    @property
    def slug(self) -> str:
        """A file-name-safe key: ``<first>_<last>``."""
        return f"{self.first.isoformat()}_{self.last.isoformat()}"


def month_last(day: date) -> date:
    """The last day of ``day``'s calendar month."""
    return next_month(day) - timedelta(days=1)


def next_month(day: date) -> date:
    """The first day of the calendar month after ``day``'s."""
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


def month_before(day: date) -> date:
    """The first day of the calendar month before ``day``'s."""
    return (day.replace(day=1) - timedelta(days=1)).replace(day=1)


def is_whole_month(first: date, last: date) -> bool:
    """``first..last`` is exactly one calendar month."""
    return first.day == 1 and last == month_last(first)


def zone(name: str) -> ZoneInfo:
    """The IANA zone called ``name``; PeriodError for anything else."""
    if not name or not re.fullmatch(r"[A-Za-z0-9_+\-/]+", name) or name.startswith("/"):
        raise PeriodError(f"unknown timezone {name!r}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise PeriodError(f"unknown timezone {name!r}") from None


def is_timezone(name: str) -> bool:
    """Whether ``name`` is an IANA timezone reporter accepts."""
    try:
        zone(name)
    except PeriodError:
        return False
    return True


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    """The UTC instant at which ``day`` begins in ``tz`` (DST-gap safe)."""
    naive = datetime(day.year, day.month, day.day)
    aware = naive.replace(tzinfo=tz, fold=0)
    instant = aware.astimezone(UTC)
    # In a gap (a zone that springs forward at midnight) fold=0 already maps to the
    # transition instant; make sure the instant really belongs to ``day``.
    while instant.astimezone(tz).date() < day:
        instant += timedelta(minutes=15)
    return instant


def local_date(instant: datetime, tz: ZoneInfo) -> date:
    """The calendar date of ``instant`` in ``tz``."""
    return instant.astimezone(tz).date()


#: the dates a period may hold: wide enough for any usage, narrow enough that the period
#: before it and the instants around it (any timezone) stay within what datetime can hold
FIRST_DATE, LAST_DATE = date(1900, 1, 1), date(9998, 12, 31)


def check_date(day: date, what: str = "date") -> date:
    """``day``, or PeriodError when it lies outside FIRST_DATE..LAST_DATE."""
    if not FIRST_DATE <= day <= LAST_DATE:
        raise PeriodError(f"{what} {day.isoformat()} is out of range "
                          f"({FIRST_DATE.isoformat()} to {LAST_DATE.isoformat()})")
    return day


def parse_date(text: str, what: str = "date") -> date:
    """``YYYY-MM-DD`` as a date within FIRST_DATE..LAST_DATE; PeriodError naming ``what``."""
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise PeriodError(f"{what} {text!r} is not a date (YYYY-MM-DD)") from None
    return check_date(day, what)


def resolve(
    name: str | None,
    timezone: str,
    as_of: datetime,
    *,
    first: date | None = None,
    last: date | None = None,
    earliest: date | None = None,
) -> Period:
    """The period called ``name`` (or ``first..last``) as seen at instant ``as_of`` in ``timezone``.

    ``earliest`` is the first date with data, used by ``all``.
    """
    zone(timezone)
    if as_of.tzinfo is None:
        raise PeriodError("the reference time must carry a timezone")
    period = _resolve(name, timezone, as_of, first, last, earliest)
    if period.end > as_of:
        period = Period(period.name, period.first, period.last, period.timezone, partial=True)
    return period


def _resolve(name: str | None, timezone: str, as_of: datetime, first: date | None,
             last: date | None, earliest: date | None) -> Period:
    if name in (None, CUSTOM):
        if first is None or last is None:
            raise PeriodError("give a period name or both --from and --to")
        if first > last:
            raise PeriodError(f"--from {first} is after --to {last}")
        check_date(first, "--from")
        check_date(last, "--to")
        return Period(CUSTOM, first, last, timezone)
    if first is not None or last is not None:
        raise PeriodError("give either a period name or --from/--to, not both")
    today = local_date(as_of, ZoneInfo(timezone))
    if name in ROLLING:
        return Period(name, today - timedelta(days=ROLLING[name] - 1), today, timezone)
    if name == "all":
        start = min(earliest, today) if earliest is not None else today
        return Period(name, start, today, timezone)
    if name == "previous-week":
        this_monday = today - timedelta(days=today.weekday())
        return Period(name, this_monday - timedelta(days=7), this_monday - timedelta(days=1),
                      timezone)
    if name == "previous-month":
        first = month_before(today)
        return Period(name, first, month_last(first), timezone)
    if name == "month-to-date":
        return Period(name, today.replace(day=1), today, timezone)
    raise PeriodError(f"unknown period {name!r} (one of: {', '.join(NAMES)})")


def offset_segments(period: Period) -> list[tuple[int, int]]:
    """The UTC offsets in force during the period: ``[(from_epoch_s, offset_s), ...]``.

    The first segment starts at the period's start; each later one at a transition.
    """
    tz = period.zone
    start = int(period.start.timestamp())
    end = int(period.end.timestamp())

    def offset_at(epoch: int) -> int:
        moment = datetime.fromtimestamp(epoch, UTC).astimezone(tz)
        delta = moment.utcoffset()
        return int(delta.total_seconds()) if delta is not None else 0

    segments = [(start, offset_at(start))]
    probes = [*range(start, end - 1, 6 * 3600), end - 1]
    for lo, hi in zip(probes, probes[1:], strict=False):
        base = offset_at(lo)
        if offset_at(hi) == base:
            continue
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if offset_at(mid) == base:
                lo = mid
            else:
                hi = mid
        segments.append((hi, offset_at(hi)))
    return segments
