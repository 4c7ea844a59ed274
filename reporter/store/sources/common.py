"""What every kind of source shares: exact conversions to our row fields, skipped rows,
the result of a sync, and URLs shown without their password."""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

from reporter import money
from reporter.errors import ReporterError
from reporter.store import db
from reporter.store.orgs import SLUG_MAX, is_slug

NANO = Decimal("1e-9")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_LISTED = 1000  # skipped or rejected rows kept in a result (all are counted)

PERSONAL = "personal"
NO_EMAIL = "no email"
NO_ORGANIZATION = "no organization"
NOT_CONFIGURED = "organization not configured"
FUTURE = "future"
FUTURE_SLACK = timedelta(days=1)  # a row further ahead of now than this is not stored yet


class SourceError(ReporterError):
    """A source cannot be read (down, timed out, refused, or its query is wrong)."""


@dataclass(frozen=True)
class SourceSettings:
    """One configured source: where it is (the name of the variable holding its URL), what
    kind it is, and how its rows map onto organizations and projects."""

    name: str
    kind: str  # litellm, kilo or sql
    url_env: str
    organization: str | None  # litellm, sql: every row to this organization
    organization_from: str | None  # litellm: organization_alias | team_alias
    project_from: str | None  # litellm: team_alias | tag:PREFIX | metadata:KEY
    organizations: Mapping[str, str] | None  # kilo: organization id -> slug
    query: str | None  # sql: a SELECT naming our fields, with :since
    overlap_minutes: float
    page_size: int
    timeout_seconds: float
    line: int = field(default=0, compare=False)

    def url(self, env: Mapping[str, str]) -> str:
        """The connection URL from the environment (SourceError naming the variable)."""
        value = env.get(self.url_env, "").strip()
        if not value:
            raise SourceError(f"source {self.name!r}: environment variable {self.url_env} "
                              f"(url_env) is not set")
        return value

    def feeds(self, slug: str) -> bool:
        """Whether rows of this source may belong to organization ``slug``."""
        if self.organization is not None:
            return self.organization == slug
        if self.organizations is not None:
            return slug in self.organizations.values()
        return True


@dataclass(frozen=True)
class Skip:
    """A source row that cannot become an event: why (a short reason) and the detail."""

    reason: str
    detail: str = ""


@dataclass
class SyncResult:
    """What one sync of one source did: rows read, inserted, duplicate, skipped by reason,
    rejected, how far it got, and the failure that stopped it, if any."""

    name: str
    read: int = 0
    inserted: int = 0
    duplicate: int = 0
    rejected: int = 0
    late: int = 0  # inserted although at or before the watermark: written late in the source
    skipped: Counter[str] = field(default_factory=Counter)
    issues: list[str] = field(default_factory=list)  # first MAX_LISTED skip/reject lines
    pages: int = 0
    created_organizations: list[str] = field(default_factory=list)
    created_members: list[tuple[str, str]] = field(default_factory=list)  # (slug, email)
    watermark: tuple[datetime, str] | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True when the sync read everything it set out to read."""
        return self.error is None

    def note(self, message: str) -> None:
        """Keep one skip or reject line (the first MAX_LISTED of them)."""
        if len(self.issues) < MAX_LISTED:
            self.issues.append(message)

    def summary(self) -> str:
        """One line: ``gateway: read 10, inserted 8, duplicate 1, skipped 1 (no email 1)...``."""
        skipped = sum(self.skipped.values())
        reasons = ", ".join(f"{reason} {count}" for reason, count in sorted(self.skipped.items()))
        line = (f"{self.name}: read {self.read}, inserted {self.inserted}"
                f"{f' ({self.late} late)' if self.late else ''}, duplicate "
                f"{self.duplicate}, skipped {skipped}{f' ({reasons})' if reasons else ''}, "
                f"rejected {self.rejected}")
        if self.watermark is not None:
            line += (f", watermark {self.watermark[0].isoformat()} "
                     f"{printable(self.watermark[1])}")
        else:
            line += ", watermark none"
        return line


def float_usd(value: float) -> str:
    """A float amount of USD as an exact decimal string: the float's shortest decimal
    representation (``repr``) rounded half-even to 9 decimal places.

    >>> float_usd(0.1 + 0.2)
    '0.300000000'
    >>> float_usd(0.000123)
    '0.000123'
    """
    if value == 0:
        return "0.0"  # -0.0 is a request that cost nothing
    text = repr(float(value))
    if not math.isfinite(value):
        return text  # the store rejects it with its own message
    whole, dot, frac = text.partition(".")
    if "e" not in text and len(frac) <= money.MAX_DECIMALS:
        return text
    try:
        return format(Decimal(text).quantize(NANO, rounding=ROUND_HALF_EVEN), "f")
    except InvalidOperation:
        return text  # too large to hold: rejected as too large


def micro_usd(value: int) -> str:
    """An integer of micro-dollars as an exact decimal string (1 micro = 1,000 nano)."""
    return money.format_usd(int(value) * 1000, 0)


def decimal_usd(value: Any) -> Any:
    """A money value of any SQL type as our cost_usd (floats by the float rule)."""
    if isinstance(value, float):
        return float_usd(value)
    if isinstance(value, Decimal):
        return format(value if value else Decimal(0), "f")  # -0 costs nothing
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def utc(value: datetime) -> datetime:
    """An aware datetime in UTC; a naive one is taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def iso(value: Any) -> Any:
    """A source timestamp as our ISO 8601 text with an offset (naive means UTC)."""
    if isinstance(value, datetime):
        return utc(value).isoformat()
    return value


def as_instant(value: Any) -> datetime | None:
    """A source timestamp (datetime or ISO text) as an aware UTC datetime, or None."""
    if isinstance(value, datetime):
        return utc(value)
    if isinstance(value, str):
        try:
            return utc(datetime.fromisoformat(value.strip()))
        except ValueError:
            return None
    return None


def count(value: Any) -> Any:
    """A token count as the store takes it (None is 0; integral Decimals as ints)."""
    if value is None:
        return 0
    if isinstance(value, Decimal) and value == value.to_integral_value():
        return int(value)
    return value


def slug_of(name: str) -> str:
    """An organization slug for a name: the name itself when it is one, else its letters
    and digits joined by ``-`` (``"Acme Corp."`` -> ``"acme-corp"``); empty when none."""
    name = name.strip()
    if is_slug(name):
        return name
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", plain.lower())[:SLUG_MAX].strip("-")


def printable(value: Any) -> str:
    """``value`` as text fit for one terminal line: control, format and separator
    characters (escape sequences, line breaks, bidirectional overrides) written as
    ``\\x1b``, ``\\n``, ``\\u202e``.

    >>> printable("req\\x1b[2J\\n1")
    'req\\\\x1b[2J\\\\n1'
    """
    text = str(value)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def masked(url: str) -> str:
    """The URL with its password hidden, for messages and logs (whether or not it parses)."""
    return db.display_url(url)


def scrub(message: str, url: str) -> str:
    """The first line of a driver message, with the URL's password taken out of it."""
    first = message.strip().splitlines()[0] if message.strip() else "unknown error"
    return db.scrub(first, url)


class SourceReader:
    """How one kind of source is read: its page queries (keyset on timestamp and id), the
    (timestamp, id) key of a row, and the mapping of a row to our fields."""

    what = "row"  # how an id is named in messages: "request 7f3a..."

    def __init__(self, settings: Any) -> None:
        self.settings = settings
        self.created_organizations: list[str] = []  # by before_ingest, not yet reported
        self.created_members: list[tuple[str, str]] = []
        self.now = EPOCH

    def check(self, dialect: str) -> None:
        """Raise SourceError when this kind cannot read a database of ``dialect``."""

    def load(self, engine: Any, now: datetime) -> None:
        """Read what the mapping needs from the store, before the source is read."""
        self.now = now

    def prepare(self, conn: Any) -> None:
        """Read what the mapping needs once per sync (inside the read-only transaction)."""

    def first_page(self, dialect: Any) -> str:
        """SQL of the first page: rows at or after ``:start``, binds ``:start``, ``:limit``."""
        raise NotImplementedError

    def next_page(self, dialect: Any) -> str:
        """SQL of a further page: rows after (``:ts``, ``:id``), binds those and ``:limit``."""
        raise NotImplementedError

    def params(self) -> dict[str, Any]:
        """Further binds of both page queries."""
        return {}

    def start(self, moment: datetime) -> Any:
        """``moment`` as the source compares it (naive UTC for ``timestamp`` columns)."""
        return moment

    def key(self, row: Any) -> tuple[Any, Any]:
        """The row's native (timestamp, id), bound as they are into the next page's query."""
        return row[0], row[1]

    def check_first(self, conn: Any, params: dict[str, Any], rows: Any) -> None:
        """Raise SourceError when the first page shows the source cannot be read right."""

    def check_columns(self, names: list[str]) -> None:
        """Raise SourceError when the first page's columns cannot be mapped."""

    def map(self, row: Any) -> dict[str, Any] | Skip:
        """The row as our fields (validated later by the store), or why it is skipped."""
        raise NotImplementedError

    def before_ingest(self, engine: Any) -> None:
        """Bring organizations and members up to date before a page is stored."""
