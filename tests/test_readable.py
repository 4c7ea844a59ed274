"""Headlines as people read them: money rounded for a card, periods as dates, the timezone in
words, changes with their percent."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reporter.money import NANOS_PER_USD, headline_usd, nanos_to_decimal
from reporter.periods import Period
from reporter.report import readable

#: $0.000000001 to $99,999,999 in nano-dollars
AMOUNTS = st.integers(min_value=1, max_value=99_999_999 * NANOS_PER_USD)
SHAPE = re.compile(r"\$(0|[1-9]\d{0,2}(,\d{3})*)\.(\d{2,9})")


def shown(text: str) -> Decimal:
    """The amount a reader takes from a headline."""
    assert SHAPE.fullmatch(text), text
    return Decimal(text[1:].replace(",", ""))


def significant(value: Decimal) -> int:
    return len(str(value.normalize().as_tuple().digits).strip("(,)").split(", "))


@pytest.mark.parametrize(("nanos", "text"), [
    (12_357_458_018_123, "$12,357.46"), (155_392_343_321, "$155.39"),
    (99_999_999 * NANOS_PER_USD, "$99,999,999.00"), (NANOS_PER_USD, "$1.00"),
    (123_500, "$0.0001235"), (123_456, "$0.0001235"), (1, "$0.000000001"),
    (500_000_000, "$0.50"), (999_949_999, "$0.9999"), (999_950_000, "$1.00"),
    (0, "$0.00"), (-5 * NANOS_PER_USD, "-$5.00"),
])
def test_headline_examples(nanos: int, text: str) -> None:
    assert headline_usd(nanos) == text


@given(AMOUNTS)
def test_headline_is_close_and_short(nanos: int) -> None:
    text = headline_usd(nanos)
    exact = nanos_to_decimal(nanos)
    value = shown(text)
    assert len(text) <= len("$99,999,999.00")
    if value >= 1:
        # cents with thousands separators, off by half a cent at most
        assert re.fullmatch(r"\$[\d,]+\.\d\d", text), text
        assert abs(value - exact) <= Decimal("0.005")
    else:
        # four significant digits, off by half a unit of the fourth at most
        assert significant(value) <= 4, text
        assert abs(value - exact) <= Decimal(5).scaleb(exact.adjusted() - 4)


@given(AMOUNTS, AMOUNTS)
def test_headline_keeps_the_order(a: int, b: int) -> None:
    low, high = sorted((a, b))
    assert shown(headline_usd(low)) <= shown(headline_usd(high))


@pytest.mark.parametrize(("first", "last", "text"), [
    (date(2026, 11, 16), date(2026, 11, 22), "Nov 16 – 22, 2026"),
    (date(2026, 10, 27), date(2026, 11, 2), "Oct 27 – Nov 2, 2026"),
    (date(2025, 12, 29), date(2026, 1, 4), "Dec 29, 2025 – Jan 4, 2026"),
    (date(2026, 11, 16), date(2026, 11, 16), "Nov 16, 2026"),
])
def test_periods_read_like_dates(first: date, last: date, text: str) -> None:
    assert readable.span(first, last) == text


def test_the_year_can_be_left_out_unless_the_span_crosses_one() -> None:
    assert readable.span(date(2026, 11, 9), date(2026, 11, 15), year=False) == "Nov 9 – 15"
    assert readable.span(date(2025, 12, 29), date(2026, 1, 4), year=False) == (
        "Dec 29, 2025 – Jan 4, 2026")


@pytest.mark.parametrize(("zone", "words"), [
    ("America/New_York", "New York time"), ("Europe/Berlin", "Berlin time"),
    ("America/Argentina/Buenos_Aires", "Buenos Aires time"), ("UTC", "UTC"),
    ("Etc/UTC", "UTC"), ("Etc/GMT+5", "UTC-5"), ("Etc/GMT-14", "UTC+14"),
])
def test_the_timezone_in_words(zone: str, words: str) -> None:
    assert readable.zone_words(zone) == words


def test_period_text_names_the_zone_once_and_says_to_date() -> None:
    week = Period("previous-week", date(2026, 11, 16), date(2026, 11, 22), "America/New_York")
    assert readable.period_text(week) == "Nov 16 – 22, 2026 (New York time)"
    partial = Period("month-to-date", date(2026, 11, 1), date(2026, 11, 22), "UTC",
                     partial=True)
    assert readable.period_text(partial) == "Nov 1 – 22, 2026 (UTC) (to date)"


def test_moments_are_in_the_organizations_zone() -> None:
    instant = datetime(2026, 11, 25, 13, 0, tzinfo=UTC)
    assert readable.moment_text(instant, "America/New_York") == (
        "Nov 25, 2026 08:00 New York time")
    assert readable.moment_text(instant, "UTC") == "Nov 25, 2026 13:00 UTC"


@pytest.mark.parametrize(("now", "before", "usd", "text", "way"), [
    (1_234_560_000_000, 863_330_000_000, True, "+$371.23 (+43%)", "up"),
    (5 * NANOS_PER_USD, 0, True, "new", "up"),
    (0, 0, True, "no change", "same"),
    (0, 2 * NANOS_PER_USD, True, "−$2.00 (−100%)", "down"),
    (1043, 1000, False, "+43 (+4.3%)", "up"),
    (100_001, 100_000, False, "+1 (+0.001%)", "up"),
    (199, 200, False, "−1 (−0.5%)", "down"),
])
def test_changes(now: int, before: int, usd: bool, text: str, way: str) -> None:
    assert readable.change(now, before, usd=usd) == (text, way)


@given(st.integers(min_value=0, max_value=10**15), st.integers(min_value=0, max_value=10**15))
def test_a_change_is_never_a_division_by_zero_nor_reads_as_zero(now: int, before: int) -> None:
    text, way = readable.change(now, before, usd=True)
    if now != before:
        assert "(0%)" not in text
        assert "(+0%)" not in text
        assert (way == "up") == (now > before)
    if before == 0 and now:
        assert text == "new"
