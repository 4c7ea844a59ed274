"""One usage row judged on its own: every value the database would refuse (or that would
make a report impossible) is refused here first, with a message saying why."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from reporter import addresses, money
from reporter.store import orgs
from reporter.store.schema import EMAIL_LENGTH, EVENT_ID_LENGTH

REQUIRED = ("id", "timestamp", "organization", "user_email", "model",
            "input_tokens", "output_tokens", "cost_usd")
OPTIONAL = ("project", "cache_read_tokens", "cache_write_tokens")
FIELDS = frozenset(REQUIRED + OPTIONAL)
#: each token count of one request is below this: a million requests at the limit still
#: sum far inside a 64-bit integer
MAX_TOKENS = 10**12
#: the longest model id and project id
MAX_TEXT = 1000
#: lone surrogates (a JSON ``\ud800``, or bytes that were not UTF-8) and control characters
_BAD = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class JsonNumber(Decimal):
    """A JSON number read exactly, with the text it was written as: a cost is judged by
    that text, by the same rule as a CSV cost (so ``1e-3`` is refused in both)."""

    written: str

    def __new__(cls, text: str) -> JsonNumber:
        """The number of ``text``, remembering ``text``."""
        number = super().__new__(cls, text)
        number.written = text
        return number


class RowError(ValueError):
    """One row is bad; the message says why."""


def show(value: Any, limit: int = 40) -> str:
    """A value as a message shows it: quoted, escaped, and cut short when long."""
    if isinstance(value, str):
        return repr(value if len(value) <= limit else value[:limit] + "...")
    text = json.dumps(value, default=str)
    return text if len(text) <= limit else text[:limit] + "..."


def _bad_text(key: str, value: str) -> RowError:
    if _SURROGATE.search(value):
        return RowError(f"{key} is not valid Unicode text (a lone surrogate, or bytes that are "
                        "not UTF-8)")
    return RowError(f"{key} contains a line break or another control character")


def _text(row: dict[str, Any], key: str, limit: int | None = None, *,
          required: bool = True) -> str | None:
    value = row.get(key)
    if type(value) is str:
        value = value.strip()
        if value:
            if limit is not None and len(value) > limit:
                raise RowError(f"{key} is longer than {limit} characters")
            if not value.isprintable() and _BAD.search(value):
                raise _bad_text(key, value)
            return value
    elif value is not None:
        raise RowError(f"{key} must be text, not {show(value)}")
    if required:
        raise RowError(f"missing {key}")
    return None


def _count(row: dict[str, Any], key: str, *, required: bool = True) -> int:
    value = row.get(key)
    if type(value) is str and value.isdigit() and value.isascii() and len(value) <= 12:
        return int(value)  # the common case, kept cheap: below MAX_TOKENS by its length
    if type(value) is str:
        text = value.strip()
        if text.isascii() and text.isdigit():  # ASCII digits only: no sign, "_" or spaces
            return _bounded(key, int(text) if len(text) <= 13 else MAX_TOKENS, value)
        if text:
            raise RowError(f"{key} must be a non-negative integer, not {show(value)}")
        value = None
    if value is None:
        if required:
            raise RowError(f"missing {key}")
        return 0
    if type(value) is not int or value < 0:
        raise RowError(f"{key} must be a non-negative integer, not {show(value)}")
    return _bounded(key, value, value)


def _bounded(key: str, number: int, value: Any) -> int:
    if number >= MAX_TOKENS:
        raise RowError(f"{key} {show(value)} is too large (at most {MAX_TOKENS - 1:,} "
                       "for one request)")
    return number


def _cost(row: dict[str, Any]) -> int:
    cost = row.get("cost_usd")
    if cost is None or cost == "":
        raise RowError("missing cost_usd")
    if type(cost) is str:
        text = cost
    elif type(cost) is int:
        text = str(cost)
    elif isinstance(cost, JsonNumber):
        text = cost.written  # a JSON number, judged as written
    elif isinstance(cost, Decimal) and cost.is_finite():
        text = format(cost, "f")
    else:
        raise RowError(f"cost_usd must be a decimal string, not {show(cost)}")
    if len(text) > 40:
        raise RowError(f"cost_usd {show(text)} is not a decimal number of at most "
                       f"{money.MAX_DECIMALS} places")
    try:
        return money.parse_usd(text)
    except ValueError as exc:
        raise RowError(str(exc).replace("cost ", "cost_usd ", 1)) from None


def _email(row: dict[str, Any]) -> str:
    value = row.get("user_email")
    if value is None or (type(value) is str and not value.strip()):
        raise RowError("missing user_email")
    if type(value) is not str:
        raise RowError(f"user_email must be text, not {show(value)}")
    if len(value.strip()) > EMAIL_LENGTH:
        raise RowError(f"user_email is longer than {EMAIL_LENGTH} characters")
    try:
        return addresses.normalize(value)
    except addresses.AddressError as exc:
        raise RowError(f"user_email {exc}") from None


def _slug(row: dict[str, Any]) -> str:
    slug = _text(row, "organization")
    assert slug is not None
    if not orgs.is_slug(slug):
        raise RowError(f"organization {show(slug)} is not a valid slug ({orgs.SLUG_RULE})")
    return slug


def parse_timestamp(value: Any) -> int:
    """An ISO 8601 timestamp with an offset (or Z) as microseconds since the epoch, UTC."""
    if not isinstance(value, str) or not value.strip():
        raise RowError("missing timestamp")
    text = value.strip()
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise RowError(f"timestamp {show(text)} is not a valid ISO 8601 date and time") from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise RowError(f"timestamp {show(text)} has no UTC offset (add Z or +HH:MM)")
    try:
        delta = moment - _EPOCH
    except OverflowError:
        raise RowError(f"timestamp {show(text)} is out of range") from None
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


#: the event's values in this order (``values``); ``organization`` and ``user_email`` hold
#: the slug and the normalized address until the store puts their ids in their place
COLUMNS = ("id", "organization", "user_email", "ts_us", "model", "project", "input_tokens",
           "output_tokens", "cache_read_tokens", "cache_write_tokens", "cost_nanos")
#: texts seen valid before, raw -> stripped (model, project, slug) or normalized (email);
#: bounded, so a file of all-different values cannot grow them without end
_SEEN_LIMIT = 4096
_seen_text: dict[str, str] = {}
_seen_slug: set[str] = set()
_seen_email: dict[str, str] = {}


def parse_row(row: dict[str, Any]) -> dict[str, Any]:
    """Validate one raw row; the event's column values, or RowError."""
    return dict(zip(COLUMNS, values(row), strict=True))


def values(row: dict[str, Any]) -> list[Any]:
    """Validate one raw row; the event's values in COLUMNS' order, or RowError.

    A row of plain, well-formed text (what CSV files and most JSON hold) is judged on a
    fast path that accepts only what the careful path accepts and gives the same values;
    anything else (a missing or odd value, a number, a control character) goes the careful
    way, which names what is wrong."""
    try:
        return _plain(row)
    except (_NotPlain, KeyError, TypeError, AttributeError, ValueError, OverflowError):
        return _careful(row)


class _NotPlain(Exception):
    """The row is not plain text: judge it the careful way."""


def _plain(row: dict[str, Any]) -> list[Any]:  # one straight path, on purpose
    if not FIELDS.issuperset(row):
        raise _NotPlain
    ident = row["id"]
    if type(ident) is not str:
        raise _NotPlain
    ident = ident.strip()
    if not ident or len(ident) > EVENT_ID_LENGTH or not ident.isprintable():
        raise _NotPlain
    stamp = row["timestamp"]
    moment = _fromisoformat(stamp.strip())
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise _NotPlain
    delta = moment - _EPOCH
    slug = row["organization"]
    if slug not in _seen_slug:
        slug = _remember_slug(slug)
    else:
        slug = slug.strip()
    raw_email = row["user_email"]
    email = _seen_email.get(raw_email)
    if email is None:
        email = _remember(_seen_email, raw_email, _email({"user_email": raw_email}))
    model = _seen_text.get(row["model"])
    if model is None:
        model = _remember_text(row["model"])
    if not model:
        raise _NotPlain
    project = row.get("project")
    if project is not None:
        cached = _seen_text.get(project)
        project = (cached if cached is not None else _remember_text(project)) or None
    cost = row["cost_usd"]
    if type(cost) is not str or type(stamp) is not str or type(raw_email) is not str:
        raise _NotPlain
    # the four counts: ASCII digits, at most 12 (below MAX_TOKENS by their length); the
    # cache counts may be absent or empty (0)
    given, made = row["input_tokens"], row["output_tokens"]
    read, written = row.get("cache_read_tokens"), row.get("cache_write_tokens")
    if read is None or read == "":
        read = "0"
    if written is None or written == "":
        written = "0"
    if not (given and made and len(given) <= 12 and len(made) <= 12 and len(read) <= 12
            and len(written) <= 12):
        raise _NotPlain
    digits = given + made + read + written  # TypeError unless all four are text
    if not (digits.isdigit() and digits.isascii()):
        raise _NotPlain
    return [ident, slug, email,
            (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds,
            model, project, int(given), int(made), int(read), int(written), _plain_usd(cost)]


_fromisoformat = datetime.fromisoformat


def _remember(seen: dict[str, str], raw: str, value: str) -> str:
    if len(seen) >= _SEEN_LIMIT:
        seen.clear()
    seen[raw] = value
    return value


def _remember_text(raw: str) -> str:
    """A model or project: stripped, at most MAX_TEXT, printable ("" for an empty one)."""
    if type(raw) is not str:
        raise _NotPlain
    value = raw.strip()
    if len(value) > MAX_TEXT or not value.isprintable():
        raise _NotPlain
    return _remember(_seen_text, raw, value)


def _remember_slug(raw: str) -> str:
    if type(raw) is not str:
        raise _NotPlain
    slug = raw.strip()
    if len(slug) > 200 or not orgs.is_slug(slug):
        raise _NotPlain
    if len(_seen_slug) >= _SEEN_LIMIT:
        _seen_slug.clear()
    _seen_slug.add(raw)
    return slug


def _plain_usd(text: str) -> int:
    """Nano-dollars of ``digits[.digits]`` of at most six whole and nine decimal digits
    (below money.MAX_USD by its length); anything else goes the careful way."""
    whole, _, frac = text.partition(".")
    if (len(whole) > 6 or len(frac) > 9 or not (whole or frac) or not text.isascii()
            or (whole and not whole.isdigit()) or (frac and not frac.isdigit())):
        raise _NotPlain
    return int(whole or "0") * 1_000_000_000 + int(frac.ljust(9, "0"))


def _careful(row: dict[str, Any]) -> list[Any]:
    """Every check, one at a time, each with its message."""
    if not FIELDS.issuperset(row):
        unknown = sorted(show(k) for k in row if k not in FIELDS)
        raise RowError(f"unknown column{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}")
    cost_nanos = _cost(row)
    email = _email(row)
    return [
        _text(row, "id", EVENT_ID_LENGTH),
        _slug(row),
        email,
        parse_timestamp(row.get("timestamp")),
        _text(row, "model", MAX_TEXT),
        _text(row, "project", MAX_TEXT, required=False),
        _count(row, "input_tokens"),
        _count(row, "output_tokens"),
        _count(row, "cache_read_tokens", required=False),
        _count(row, "cache_write_tokens", required=False),
        cost_nanos,
    ]
