"""Exact money: nano-dollar integers, decimal strings in and out, no float anywhere."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reporter.money import divide_round, format_usd, nanos_to_decimal, parse_usd, places_needed


@pytest.mark.parametrize(("text", "nanos"), [
    ("0", 0), ("0.000000001", 1), ("0.01", 10_000_000), ("1.5", 1_500_000_000),
    ("12345.123456789", 12_345_123_456_789), (" 2.25 ", 2_250_000_000),
    ("0.1000000000", 100_000_000),  # trailing zeros beyond 9 places change nothing
    ("3.", 3_000_000_000), (".5", 500_000_000), ("999999.999999999", 999_999_999_999_999),
])
def test_parse_usd(text: str, nanos: int) -> None:
    assert parse_usd(text) == nanos


@pytest.mark.parametrize(("text", "why"), [
    ("", "empty"), ("   ", "empty"), ("abc", "not a decimal"), ("1,5", "not a decimal"),
    ("0.0000000001", "more than 9 decimal places"), ("1.1234567891", "more than 9"),
    ("-0.01", "negative"), ("NaN", "not a finite"), ("Infinity", "not a finite"),
    ("1000000000", "too large"), ("$1", "not a decimal"),
    # only plain ASCII decimal text: no exponent, sign, "_" or other scripts' digits
    ("1e-9", "not a decimal"), ("1_000", "not a decimal"), ("+1", "not a decimal"),
    ("\u0661\u0662", "not a decimal"), ("1000000", "too large"),
])
def test_parse_usd_rejects(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse_usd(text)


@pytest.mark.parametrize(("nanos", "text"), [
    (0, "0.00"), (1, "0.000000001"), (1_000_000, "0.001"), (1_500_000_000, "1.50"),
    (10_000_000, "0.01"), (123_456_789_012, "123.456789012"), (-5, "-0.000000005"),
    (100_000_000_000, "100.00"),
])
def test_format_usd(nanos: int, text: str) -> None:
    assert format_usd(nanos) == text


@given(st.integers(0, 10**15 - 1))
def test_format_parse_round_trip(nanos: int) -> None:
    text = format_usd(nanos)
    assert parse_usd(text) == nanos
    assert Decimal(text) == nanos_to_decimal(nanos) == Decimal(nanos) / 10**9
    assert "e" not in text.lower()


@given(st.integers(0, 999_999), st.integers(0, 10**9 - 1), st.integers(0, 9))
def test_up_to_nine_places_come_out_unchanged(whole: int, frac: int, places: int) -> None:
    digits = f"{frac:09d}"[:places]
    text = f"{whole}.{digits}" if places else str(whole)
    out = format_usd(parse_usd(text))
    assert Decimal(out) == Decimal(text)
    assert out.startswith(f"{whole}.")
    # only trailing zeros differ
    assert out.split(".")[1].rstrip("0") == digits.rstrip("0")


def test_a_million_nanos_sum_exactly() -> None:
    assert format_usd(sum(parse_usd("0.000000001") for _ in range(1_000_000))) == "0.001"


@pytest.mark.parametrize(("num", "den", "out"), [
    (10, 3, 3), (20, 3, 7), (5, 2, 2), (15, 2, 8), (7, 0, 0), (0, 5, 0),
    (10**18 + 1, 2, 5 * 10**17), (10**18 + 3, 2, 5 * 10**17 + 2),
])
def test_divide_round_half_even(num: int, den: int, out: int) -> None:
    assert divide_round(num, den) == out


@given(st.integers(0, 10**15), st.integers(1, 10**7))
def test_divide_round_is_nearest(num: int, den: int) -> None:
    q = divide_round(num, den)
    assert abs(q * den - num) * 2 <= den


@pytest.mark.parametrize(("values", "places"), [
    ([], 2), ([0, 1_000_000_000], 2), ([10_000_000], 2), ([1_000_000], 3),
    ([1], 9), ([120_000_000, 3_000_000], 3), ([-1_000], 6),
])
def test_places_needed(values: list[int], places: int) -> None:
    assert places_needed(values) == places
