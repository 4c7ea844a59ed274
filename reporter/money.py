"""Exact money: USD amounts are integers of nano-dollars (1e-9 USD), never floats."""

from __future__ import annotations

import re
from collections.abc import Iterable
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal

NANOS_PER_USD = 1_000_000_000
MAX_DECIMALS = 9
_SCALE = Decimal(1).scaleb(-MAX_DECIMALS)
#: one request costs less than this; a million requests at the limit still sum far inside
#: a 64-bit integer of nano-dollars
MAX_USD = Decimal(1_000_000)
_MAX_NANOS = int(MAX_USD) * NANOS_PER_USD
#: plain ASCII decimal text: digits, at most one point, no sign, exponent, "_" or other digits
_PLAIN = re.compile(r"([0-9]*)(?:\.([0-9]*))?", re.ASCII)


class AmountError(ValueError):
    """Text that is not an amount of USD; ``kind`` says why: ``empty``, ``negative``,
    ``not finite``, ``not decimal``, ``places`` (more than 9) or ``large``."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def parse_usd(text: str, *, what: str = "cost", below: Decimal = MAX_USD,
              large: str = "too large for one request") -> int:
    """Parse a plain decimal string of USD (``12``, ``0.5``, ``.25``, ``3.``; ASCII digits
    only, up to 9 decimal places, less than ``below``) into nano-dollars: the one rule for
    every amount reporter reads (a request's cost, a budget, a key in jobs.yaml).
    AmountError says why it is not one, naming the amount as ``what``."""
    raw = text.strip(" \t")
    if not raw:
        raise AmountError("empty", f"{what} is empty")
    plain = _PLAIN.fullmatch(raw)
    if plain is None or raw == ".":
        if raw.startswith("-") and _PLAIN.fullmatch(raw[1:]):
            raise AmountError("negative", f"{what} {text!r} is negative")
        if raw.lower().lstrip("+-") in ("nan", "snan", "inf", "infinity"):
            raise AmountError("not finite", f"{what} {text!r} is not a finite number")
        raise AmountError("not decimal", f"{what} {text!r} is not a decimal number (plain "
                                         f"digits and a point)")
    whole, frac = plain.groups()
    frac = frac or ""
    if len(frac) > MAX_DECIMALS:
        if frac[MAX_DECIMALS:].strip("0"):
            raise AmountError("places", f"{what} {text!r} has more than {MAX_DECIMALS} "
                                        f"decimal places")
        frac = frac[:MAX_DECIMALS]
    whole = whole.lstrip("0")
    limit = int(below) * NANOS_PER_USD
    if len(whole) > len(str(int(below))):
        raise AmountError("large", f"{what} {text!r} is {large}")
    nanos = int(whole or "0") * NANOS_PER_USD + int(frac.ljust(MAX_DECIMALS, "0"))
    if nanos >= limit:
        raise AmountError("large", f"{what} {text!r} is {large} (at most {below - 1}."
                                   f"999999999)")
    return nanos


def nanos_to_decimal(nanos: int) -> Decimal:
    """The exact Decimal of an amount in nano-dollars."""
    return Decimal(nanos).scaleb(-MAX_DECIMALS)


def format_usd(nanos: int, min_places: int = 2) -> str:
    """A plain decimal string: exact, trailing zeros dropped down to ``min_places`` places.

    >>> format_usd(1_000_000)
    '0.001'
    >>> format_usd(1_500_000_000)
    '1.50'
    """
    sign = "-" if nanos < 0 else ""
    whole, frac = divmod(abs(nanos), NANOS_PER_USD)
    digits = f"{frac:09d}".rstrip("0")
    if len(digits) < min_places:
        digits = digits.ljust(min_places, "0")
    return f"{sign}{whole}.{digits}" if digits else f"{sign}{whole}"


def places_needed(nanos_values: list[int], min_places: int = 2) -> int:
    """The fewest decimal places that show every amount exactly (at least ``min_places``)."""
    places = min_places
    for nanos in nanos_values:
        frac = abs(nanos) % NANOS_PER_USD
        if frac:
            places = max(places, MAX_DECIMALS - (len(str(frac)) - len(str(frac).rstrip("0"))))
            if places == MAX_DECIMALS:
                break
    return places


def display_places(nanos_values: Iterable[int], min_places: int = 2) -> int:
    """The decimal places people read a set of amounts at: enough that no non-zero amount
    rounds to $0.00, as few as that allows (``min_places`` to 9).

    >>> display_places([4_040_000_000, 372_000])  # $4.04 and $0.000372: $0.0004
    4
    """
    smallest = min((abs(n) for n in nanos_values if n), default=0)
    places = min_places
    # rounded half up at ``places``, an amount shows as zero below half of the last place
    while places < MAX_DECIMALS and smallest and 2 * smallest < 10 ** (MAX_DECIMALS - places):
        places += 1
    return places


def round_usd(nanos: int, places: int, *, down: bool = False) -> str:
    """A plain decimal string rounded half up (``down``: towards zero) to exactly ``places``
    places (for people; ``format_usd`` is exact)."""
    sign = "-" if nanos < 0 else ""
    amount = nanos_to_decimal(abs(nanos)).quantize(Decimal(1).scaleb(-places),
                                                   rounding=ROUND_DOWN if down else ROUND_HALF_UP)
    return f"{sign}{amount:f}"


def display_usd(nanos: int, places: int = 2, *, down: bool = False) -> str:
    """``$1,234.500``: rounded half up (``down``: towards zero, so an amount beside a limit
    never reads as reaching it) to exactly ``places`` decimals with thousands separators, as
    people read amounts in tables and sentences (``format_usd`` is exact)."""
    text = round_usd(nanos, places, down=down)
    whole, _, frac = text.partition(".")
    sign = "-" if whole.startswith("-") else ""
    whole = f"{int(whole.lstrip('-')):,}"
    return f"{sign}${whole}.{frac}" if places else f"{sign}${whole}"


def rough_usd(nanos: int, *, down: bool = False) -> str:
    """An amount as people say a forecast: two significant figures from $100 up (``$5,800``,
    ``$12,000``), whole dollars from $10, cents below; rounded half even (``down``: towards
    zero)."""
    rounding = ROUND_DOWN if down else ROUND_HALF_EVEN
    amount = nanos_to_decimal(nanos)
    if amount >= 100:
        step = Decimal(10) ** (amount.adjusted() - 1)
        rounded = (amount / step).quantize(Decimal(1), rounding=rounding) * step
        return f"${int(rounded):,}"
    if amount >= 10:
        return f"${int(amount.quantize(Decimal(1), rounding=rounding)):,}"
    return f"${amount.quantize(Decimal('0.01'), rounding=rounding)}"


def divide_round(numerator_nanos: int, denominator: int) -> int:
    """numerator / denominator in nano-dollars, rounded half-even; 0 when the denominator is 0."""
    if denominator == 0:
        return 0
    quotient = Decimal(numerator_nanos) / Decimal(denominator)
    return int(quotient.to_integral_value(rounding="ROUND_HALF_EVEN"))


def headline_usd(nanos: int) -> str:
    """An amount rounded for people (cards, subjects, the first line of an email): cents with
    thousands separators from $1 up (``$12,357.46``), four significant digits below
    (``$0.0001235``, ``$0.50``); a leading ``-`` when negative. Tables keep every decimal."""
    sign = "-" if nanos < 0 else ""
    amount = nanos_to_decimal(abs(nanos))
    if amount and amount < 1:
        places = min(MAX_DECIMALS, 3 - amount.adjusted())
        rounded = amount.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
        if rounded < 1:
            whole, _, frac = f"{rounded:f}".partition(".")
            return f"{sign}${whole}.{frac.rstrip('0').ljust(2, '0')}"
    cents = amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return f"{sign}${cents:,.2f}"
