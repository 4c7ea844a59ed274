"""Exact money: USD amounts are integers of nano-dollars (1e-9 USD), never floats."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

NANOS_PER_USD = 1_000_000_000
MAX_DECIMALS = 9
_SCALE = Decimal(1).scaleb(-MAX_DECIMALS)
MAX_USD = Decimal(1_000_000_000)  # one request; keeps sums far inside a 64-bit integer
_PLAIN = re.compile(r"([0-9]{1,12})(?:\.([0-9]{1,9}))?")


def parse_usd(text: str) -> int:
    """Parse a decimal string of USD into nano-dollars; ValueError says why it is not one."""
    raw = text.strip()
    plain = _PLAIN.fullmatch(raw)
    if plain is not None:  # the common case, without Decimal
        whole, frac = plain.groups()
        nanos = int(whole) * NANOS_PER_USD + (int(frac.ljust(MAX_DECIMALS, "0")) if frac else 0)
        if nanos >= MAX_USD * NANOS_PER_USD:
            raise ValueError(f"cost {text!r} is too large for one request")
        return nanos
    if not raw:
        raise ValueError("cost is empty")
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise ValueError(f"cost {text!r} is not a decimal number") from None
    if not value.is_finite():
        raise ValueError(f"cost {text!r} is not a finite number")
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)
    if value < 0:
        raise ValueError(f"cost {text!r} is negative")
    if value >= MAX_USD:
        raise ValueError(f"cost {text!r} is too large for one request")
    if exponent < -MAX_DECIMALS and value != value.quantize(_SCALE):
        raise ValueError(f"cost {text!r} has more than {MAX_DECIMALS} decimal places")
    return int(value.scaleb(MAX_DECIMALS))


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


def divide_round(numerator_nanos: int, denominator: int) -> int:
    """numerator / denominator in nano-dollars, rounded half-even; 0 when the denominator is 0."""
    if denominator == 0:
        return 0
    quotient = Decimal(numerator_nanos) / Decimal(denominator)
    return int(quotient.to_integral_value(rounding="ROUND_HALF_EVEN"))
