"""Dates, periods, timezones and changes as people read them: "Nov 16 – 22, 2026 (New York
time)", "+$310.20 (+43%)"."""

from __future__ import annotations

from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from reporter import money
from reporter.periods import Period

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
DASH = " \u2013 "  # an en dash between spaces
MINUS = "\u2212"
#: IANA names that are UTC itself, whatever they are called
UTC_NAMES = frozenset({"UTC", "UCT", "Universal", "Zulu", "GMT", "GMT0", "GMT+0", "GMT-0",
                       "Greenwich"})


def day_text(day: date, *, year: bool = True) -> str:
    """``Nov 16, 2026`` (``Nov 16`` without the year)."""
    text = f"{MONTHS[day.month - 1]} {day.day}"
    return f"{text}, {day.year}" if year else text


def span(first: date, last: date, *, year: bool = True) -> str:
    """``Nov 16 – 22, 2026``, ``Oct 27 – Nov 2, 2026``, ``Dec 29, 2025 – Jan 4, 2026``, or one
    day ``Nov 16, 2026``; ``year=False`` leaves the year out unless the span crosses one."""
    if first == last:
        return day_text(first, year=year)
    if first.year != last.year:
        return f"{day_text(first)}{DASH}{day_text(last)}"
    end = str(last.day) if first.month == last.month else day_text(last, year=False)
    text = f"{day_text(first, year=False)}{DASH}{end}"
    return f"{text}, {last.year}" if year else text


def zone_words(name: str) -> str:
    """The timezone as people say it: ``New York time`` from ``America/New_York``, ``UTC``
    for UTC under any of its names, ``UTC-5`` for ``Etc/GMT+5`` (whose sign is inverted)."""
    bare = name.removeprefix("Etc/")
    if bare in UTC_NAMES:
        return "UTC"
    if bare.startswith("GMT") and bare[3:4] in ("+", "-") and bare[4:].isdigit():
        return f"UTC{'-' if bare[3] == '+' else '+'}{int(bare[4:])}"
    city = name.rsplit("/", 1)[-1].replace("_", " ")
    return f"{city} time"


def period_text(period: Period) -> str:
    """``Nov 16 – 22, 2026 (New York time)``, and `` (to date)`` when the period is not over."""
    text = f"{span(period.first, period.last)} ({zone_words(period.timezone)})"
    return text + (" (to date)" if period.partial else "")


def moment_text(instant: datetime, timezone: str) -> str:
    """``Nov 25, 2026 08:00 New York time``: an instant in the organization's timezone."""
    local = instant.astimezone(ZoneInfo(timezone))
    return f"{day_text(local.date())} {local:%H:%M} {zone_words(timezone)}"


def percent(now: int, before: int) -> Decimal | None:
    """The change from ``before`` to ``now`` in percent, exact; None when ``before`` is 0."""
    if before == 0:
        return None
    return Decimal(now - before) * 100 / Decimal(before)


def percent_text(value: Decimal) -> str:
    """``+43%``, ``−4.3%``, ``+0.04%``: whole percents from 10 up, two significant digits
    below, never a change that reads as 0%."""
    sign = "+" if value > 0 else MINUS if value < 0 else ""
    size = abs(value)
    if size >= 10 or size == 0:
        shown = size.quantize(Decimal(1), rounding=ROUND_HALF_UP)
    else:
        shown = size.quantize(Decimal(1).scaleb(min(-1, size.adjusted() - 1)),
                              rounding=ROUND_HALF_UP).normalize()
    if shown >= 10:
        shown = shown.quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return f"{sign}{shown:,f}%"


def signed_usd(nanos: int) -> str:
    """``+$310.20``, ``−$0.0012``: a change of money, rounded as headlines are."""
    sign = "+" if nanos > 0 else MINUS if nanos < 0 else ""
    return sign + money.headline_usd(abs(nanos))


def counted(value: int, word: str, plural: str | None = None) -> str:
    """``1 request``, ``2 requests``, ``1,204 tokens``: a count with its noun agreeing."""
    return f"{value:,} {word if value == 1 else plural or word + 's'}"


def signed_count(value: int) -> str:
    """``+1,234``, ``−12``: a change of a count."""
    sign = "+" if value > 0 else MINUS if value < 0 else ""
    return f"{sign}{abs(value):,}"


def change(now: int, before: int, *, usd: bool = False) -> tuple[str, str]:
    """What a headline figure shows beside it, and which way it went: ``("+$310.20 (+43%)",
    "up")``, ``("−12 (−4.3%)", "down")``, ``("new", "up")`` when there was nothing before,
    ``("no change", "same")``. ``usd``: the figures are nano-dollars."""
    if now == before:
        return "no change", "same"
    way = "up" if now > before else "down"
    ratio = percent(now, before)
    if ratio is None:
        return "new", way
    return move_text(now, before, usd=usd), way


def move_text(now: int, before: int, *, usd: bool = True) -> str:
    """``+$310.20 (+43%)``, ``+$0.50 (new)``, ``−$2.00 (−100%)``: a change and its percent."""
    amount = signed_usd(now - before) if usd else signed_count(now - before)
    ratio = percent(now, before)
    return f"{amount} ({'new' if ratio is None else percent_text(ratio)})"
