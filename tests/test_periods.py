"""Periods: every name, explicit dates, DST days and odd-offset zones, as UTC instants."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reporter import periods
from reporter.errors import PeriodError
from reporter.periods import NAMES, Period, local_midnight, offset_segments, resolve

ZONES = ["UTC", "America/New_York", "Europe/Berlin", "Asia/Kolkata", "Asia/Kathmandu",
         "Australia/Lord_Howe", "Pacific/Chatham", "America/Santiago", "America/Havana",
         "Africa/Casablanca", "America/Sao_Paulo"]


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


@pytest.mark.parametrize(("name", "first", "last"), [
    ("past-week", "2024-03-08", "2024-03-14"),
    ("past-month", "2024-02-14", "2024-03-14"),
    ("past-year", "2023-03-16", "2024-03-14"),
    ("previous-week", "2024-03-04", "2024-03-10"),
    ("previous-month", "2024-02-01", "2024-02-29"),
    ("month-to-date", "2024-03-01", "2024-03-14"),
    ("all", "2024-03-14", "2024-03-14"),
])
def test_every_name(name: str, first: str, last: str) -> None:
    period = resolve(name, "UTC", at("2024-03-14T12:00:00+00:00"))  # a Thursday
    assert (period.name, period.first.isoformat(), period.last.isoformat()) == (name, first, last)
    assert period.timezone == "UTC"


def test_every_name_is_known() -> None:
    assert set(NAMES) == {"past-week", "past-month", "past-year", "all", "previous-week",
                          "previous-month", "month-to-date"}


def test_all_uses_the_earliest_date() -> None:
    period = resolve("all", "UTC", at("2024-03-14T12:00:00Z"), earliest=date(2023, 1, 5))
    assert (period.first, period.last) == (date(2023, 1, 5), date(2024, 3, 14))
    # an "earliest" in the future (clock skew) never makes first > last
    period = resolve("all", "UTC", at("2024-03-14T12:00:00Z"), earliest=date(2024, 4, 1))
    assert period.first == period.last == date(2024, 3, 14)


@pytest.mark.parametrize(("as_of", "first", "last"), [
    ("2024-03-11T00:00:00", "2024-03-04", "2024-03-10"),  # Monday: the week just finished
    ("2024-03-10T23:59:59", "2024-02-26", "2024-03-03"),  # Sunday: not complete yet
    ("2024-01-03T10:00:00", "2023-12-25", "2023-12-31"),  # across the new year
])
def test_previous_week_edges(as_of: str, first: str, last: str) -> None:
    period = resolve("previous-week", "UTC", at(as_of + "+00:00"))
    assert (period.first.isoformat(), period.last.isoformat()) == (first, last)
    assert period.first.weekday() == 0
    assert period.days == 7


@pytest.mark.parametrize(("as_of", "name", "first", "last"), [
    ("2024-03-01T00:00:00", "previous-month", "2024-02-01", "2024-02-29"),
    ("2024-01-15T00:00:00", "previous-month", "2023-12-01", "2023-12-31"),
    ("2023-03-31T23:59:59", "previous-month", "2023-02-01", "2023-02-28"),
    ("2024-03-01T00:00:00", "month-to-date", "2024-03-01", "2024-03-01"),
    ("2024-12-31T23:59:59", "month-to-date", "2024-12-01", "2024-12-31"),
])
def test_month_edges(as_of: str, name: str, first: str, last: str) -> None:
    period = resolve(name, "UTC", at(as_of + "+00:00"))
    assert (period.first.isoformat(), period.last.isoformat()) == (first, last)


def test_reference_date_is_in_the_organization_timezone() -> None:
    # 2024-03-31T20:00Z is already April 1st in Kolkata (+5:30) and Kathmandu (+5:45)
    as_of = at("2024-03-31T20:00:00+00:00")
    assert resolve("month-to-date", "UTC", as_of).first == date(2024, 3, 1)
    assert resolve("month-to-date", "Asia/Kolkata", as_of).first == date(2024, 4, 1)
    assert resolve("previous-month", "Asia/Kathmandu", as_of).first == date(2024, 3, 1)
    assert resolve("past-week", "America/New_York", as_of).last == date(2024, 3, 31)
    # 18:14Z is still the 31st in Kathmandu; 18:15Z is the 1st
    assert resolve("past-week", "Asia/Kathmandu", at("2024-03-31T18:14:59Z")).last.day == 31
    assert resolve("past-week", "Asia/Kathmandu", at("2024-03-31T18:15:00Z")).last.day == 1


@pytest.mark.parametrize(("tz", "day", "hours"), [
    ("America/New_York", "2024-03-10", 23), ("America/New_York", "2024-11-03", 25),
    ("Europe/Berlin", "2024-03-31", 23), ("Europe/Berlin", "2024-10-27", 25),
    ("Australia/Lord_Howe", "2024-04-07", 24.5), ("Australia/Lord_Howe", "2024-10-06", 23.5),
    ("Asia/Kolkata", "2024-03-31", 24), ("Asia/Kathmandu", "2024-10-27", 24),
])
def test_dst_day_lengths(tz: str, day: str, hours: float) -> None:
    d = date.fromisoformat(day)
    period = resolve(None, tz, at("2025-01-01T00:00:00Z"), first=d, last=d)
    assert (period.end - period.start) == timedelta(hours=hours)


def test_odd_offsets() -> None:
    d = date(2024, 5, 1)
    kol = Period("custom", d, d, "Asia/Kolkata")
    assert kol.start == at("2024-04-30T18:30:00+00:00")
    assert kol.end == at("2024-05-01T18:30:00+00:00")
    ktm = Period("custom", d, d, "Asia/Kathmandu")
    assert ktm.start == at("2024-04-30T18:15:00+00:00")
    assert ktm.start.tzinfo == UTC
    assert kol.iso_range == "2024-05-01 (Asia/Kolkata)"
    assert Period("custom", d, date(2024, 5, 3), "UTC").iso_range == (
        "2024-05-01 to 2024-05-03 (UTC)")
    assert Period("custom", d, date(2024, 5, 3), "UTC").slug == "2024-05-01_2024-05-03"


def test_midnight_inside_a_dst_gap() -> None:
    # Santiago springs forward at local midnight: 2024-09-08 starts at 01:00 -03
    start = local_midnight(date(2024, 9, 8), ZoneInfo("America/Santiago"))
    assert start == at("2024-09-08T04:00:00+00:00")
    assert start.astimezone(ZoneInfo("America/Santiago")).date() == date(2024, 9, 8)
    assert (start - timedelta(microseconds=1)).astimezone(
        ZoneInfo("America/Santiago")).date() == date(2024, 9, 7)


def test_a_day_the_zone_skipped() -> None:
    # Samoa skipped 2011-12-30: that day is empty, the next one starts where it would have
    apia = "Pacific/Apia"
    assert Period("custom", date(2011, 12, 30), date(2011, 12, 30), apia).days == 1
    before = Period("custom", date(2011, 12, 29), date(2011, 12, 29), apia)
    skipped = Period("custom", date(2011, 12, 30), date(2011, 12, 30), apia)
    assert skipped.start == skipped.end == before.end == at("2011-12-30T10:00:00+00:00")


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"name": None, "first": date(2024, 3, 2), "last": date(2024, 3, 1)},
     "--from 2024-03-02 is after --to 2024-03-01"),
    ({"name": None, "first": date(2024, 3, 2)}, "both --from and --to"),
    ({"name": "past-week", "first": date(2024, 3, 2), "last": date(2024, 3, 3)}, "not both"),
    ({"name": "last-week"}, "unknown period 'last-week'"),
])
def test_errors(kwargs: dict[str, object], message: str) -> None:
    name = kwargs.pop("name")
    with pytest.raises(PeriodError, match=message):
        resolve(name, "UTC", at("2024-03-14T00:00:00Z"), **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("tz", ["Mars/Olympus", "", "../etc/passwd", "/etc/localtime", "utc+1"])
def test_unknown_timezone(tz: str) -> None:
    with pytest.raises(PeriodError, match="unknown timezone"):
        resolve("past-week", tz, at("2024-03-14T00:00:00Z"))
    assert not periods.is_timezone(tz)


def test_naive_reference_time_is_refused() -> None:
    with pytest.raises(PeriodError, match="timezone"):
        resolve("past-week", "UTC", datetime(2024, 3, 14))


def test_explicit_single_day() -> None:
    period = resolve(None, "UTC", at("2024-03-14T00:00:00Z"), first=date(2024, 3, 1),
                     last=date(2024, 3, 1))
    assert period.name == "custom"
    assert period.days == 1
    assert list(period.dates()) == [date(2024, 3, 1)]


# ---------------------------------------------------------------- properties


def _local(instant: datetime, tz: str) -> date:
    return instant.astimezone(ZoneInfo(tz)).date()


@settings(max_examples=200, deadline=None)
@given(tz=st.sampled_from(ZONES), first=st.dates(date(2000, 1, 1), date(2035, 12, 31)),
       length=st.integers(0, 400))
def test_period_bounds_are_local_midnights(tz: str, first: date, length: int) -> None:
    period = Period("custom", first, first + timedelta(days=length), tz)
    one = timedelta(microseconds=1)
    assert period.start < period.end
    assert _local(period.start, tz) == first
    assert _local(period.start - one, tz) == first - timedelta(days=1)
    assert _local(period.end - one, tz) == period.last
    assert _local(period.end, tz) == period.last + timedelta(days=1)
    assert period.days == length + 1 == len(list(period.dates()))
    hours = (period.end - period.start) / timedelta(hours=1)
    assert abs(hours - 24 * period.days) <= 2


@settings(max_examples=200, deadline=None)
@given(tz=st.sampled_from(ZONES), as_of=st.datetimes(datetime(2000, 1, 1), datetime(2035, 1, 1),
                                                      timezones=st.just(UTC)),
       name=st.sampled_from(NAMES))
def test_named_periods_against_the_calendar(tz: str, as_of: datetime, name: str) -> None:
    period = resolve(name, tz, as_of)
    today = _local(as_of, tz)
    assert period.first <= period.last
    if name in ("past-week", "past-month", "past-year", "month-to-date", "all"):
        assert period.last == today
        days = {"past-week": 7, "past-month": 30, "past-year": 365}.get(name)
        if days:
            assert period.days == days
        if name == "month-to-date":
            assert period.first == date(today.year, today.month, 1)
    elif name == "previous-week":
        assert period.days == 7
        assert period.first.weekday() == 0
        assert 1 <= (today - period.last).days <= 7
    else:  # previous-month
        assert period.first.day == 1
        assert (period.last + timedelta(days=1)) == date(today.year, today.month, 1)
    assert period.start <= as_of or name != "all"
    if name != "previous-week" and name != "previous-month":
        assert period.start <= as_of < period.end


@settings(max_examples=150, deadline=None)
@given(tz=st.sampled_from(ZONES), first=st.dates(date(2000, 1, 1), date(2035, 1, 1)),
       length=st.integers(0, 800), probes=st.lists(st.floats(0, 1), min_size=1, max_size=20))
def test_offset_segments_match_the_zone(tz: str, first: date, length: int,
                                        probes: list[float]) -> None:
    period = Period("custom", first, first + timedelta(days=length), tz)
    segments = offset_segments(period)
    start, end = int(period.start.timestamp()), int(period.end.timestamp())
    assert segments[0][0] == start
    assert [s for s, _ in segments] == sorted({s for s, _ in segments})
    zone = ZoneInfo(tz)
    edges = [s for s, _ in segments[1:]]
    points = [start + int((end - start - 1) * p) for p in probes]
    points += [e for edge in edges for e in (edge - 1, edge)]
    for epoch in points:
        offset = [o for s, o in segments if s <= epoch][-1]
        expected = datetime.fromtimestamp(epoch, UTC).astimezone(zone).utcoffset()
        assert expected is not None
        assert offset == int(expected.total_seconds())
