"""Any SQL database: a SELECT that names our fields and binds ``:since``, paged by wrapping
it as a subquery ordered on (instant, id): timestamps are compared as the moments they are
(text with offsets too), never as text."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text

from reporter.store.ingest import FIELDS
from reporter.store.sources.common import (
    NO_EMAIL,
    NO_ORGANIZATION,
    Skip,
    SourceError,
    SourceReader,
    as_instant,
    count,
    decimal_usd,
    iso,
)

_CACHE = ("cache_read_tokens", "cache_write_tokens")
KEY = "_reporter_key"  # the row's instant as the pages compare it
#: what SQLAlchemy's text() takes for a bind parameter; in a query only ``:since`` is one
_BIND = re.compile(r"(?<![:\w\\]):(\w+)(?!:)")
_SQLITE_KEY = "%Y-%m-%d %H:%M:%f"  # SQLite's own reading of a time, in UTC (offsets applied)


def escape_binds(query: str) -> str:
    """The query with every ``:name`` but ``:since`` escaped, so a literal such as
    ``'{"billable":true}'`` stays text instead of becoming a parameter."""
    return _BIND.sub(lambda m: m.group(0) if m.group(1) == "since" else "\\" + m.group(0),
                     query)


class SqlReader(SourceReader):
    """Reads the rows of a configured SELECT; its columns are our fields by name."""

    def __init__(self, settings: Any) -> None:
        super().__init__(settings)
        self.columns: list[str] = []
        self.dialect = ""
        self.textual = False  # PostgreSQL: the timestamp column is text, cast when paging
        self.since: Any = None
        self.query = escape_binds(settings.query)

    def check(self, dialect: str) -> None:
        """Any dialect; how its times are compared depends on it."""
        self.dialect = dialect

    def _key(self, dialect: Any) -> str:
        ts = f"src.{dialect.identifier_preparer.quote('timestamp')}"
        if self.dialect == "postgresql" and self.textual:
            return f"CAST({ts} AS timestamptz)"  # text with an offset; no offset is UTC
        if self.dialect == "sqlite":
            return f"strftime('{_SQLITE_KEY}', {ts})"
        return ts

    def _sql(self, dialect: Any, where: str) -> str:
        key, ident = self._key(dialect), f"src.{dialect.identifier_preparer.quote('id')}"
        return (f"SELECT src.*, {key} AS {KEY} FROM ({self.query}) AS src WHERE "
                f"{where.format(ts=key, id=ident)} ORDER BY {key}, {ident} LIMIT :limit")

    def first_page(self, dialect: Any) -> str:
        """The query's rows from ``:start`` on."""
        return self._sql(dialect, "{ts} >= :start")

    def next_page(self, dialect: Any) -> str:
        """The query's rows after (``:ts``, ``:id``)."""
        return self._sql(dialect, "{ts} >= :ts AND ({ts} > :ts OR {id} > :id)")

    def prepare(self, conn: Any) -> None:
        """On PostgreSQL, whether the timestamp is text: then pages compare it cast to
        ``timestamptz`` (a timestamp column is compared as it is, by its index)."""
        if self.dialect == "postgresql":
            ts = f"src.{conn.dialect.identifier_preparer.quote('timestamp')}"
            kind = conn.execute(text(f"SELECT pg_typeof({ts})::text FROM ({self.query}) "
                                     f"AS src LIMIT 1"), {"since": self.since}).scalar()
            self.textual = kind in ("text", "character varying", "character", "unknown")

    def start(self, moment: datetime) -> Any:
        """``moment`` as the pages compare it."""
        self.since = moment
        if self.dialect == "sqlite":
            return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
        return moment

    def check_first(self, conn: Any, params: dict[str, Any], rows: Any) -> None:
        """Refuse a source whose times cannot be compared as instants: on SQLite, a
        timestamp it cannot read (it would never be read); elsewhere, text timestamps."""
        where = f"source {self.settings.name!r}: the query's timestamp"
        if self.dialect == "sqlite":
            ts = f"src.{conn.dialect.identifier_preparer.quote('timestamp')}"
            bad = conn.execute(text(
                f"SELECT {ts} FROM ({self.query}) AS src WHERE {ts} IS NOT NULL AND "
                f"{self._key(conn.dialect)} IS NULL LIMIT 1"), params).first()
            if bad is not None:
                raise SourceError(f"{where} {str(bad[0])[:60]!r} is not a time SQLite can "
                                  f"read (write it as 2025-03-01T08:00:00+00:00)")
        elif self.dialect != "postgresql" and any(isinstance(r._mapping["timestamp"], str)
                                                  for r in rows):
            raise SourceError(f"{where} is text, which does not order by time; return a "
                              f"timestamp with a time zone (e.g. CAST(... AS DATETIME))")

    def check_columns(self, names: list[str]) -> None:
        """Every column must be one of our fields, and the required ones present."""
        where = f"source {self.settings.name!r}: the query"
        names = [n for n in names if n != KEY]
        unknown = [n for n in names if n not in FIELDS]
        if unknown:
            raise SourceError(f"{where} returns unknown column(s) "
                              f"{', '.join(repr(n) for n in unknown)} "
                              f"(known: {', '.join(sorted(FIELDS))})")
        needed = ["id", "timestamp", "user_email", "model", "input_tokens", "output_tokens",
                  "cost_usd"]
        if self.settings.organization is None:
            needed.append("organization")
        missing = [n for n in needed if n not in names]
        if missing:
            raise SourceError(f"{where} returns no column(s) "
                              f"{', '.join(repr(n) for n in missing)}")
        self.columns = names

    def key(self, row: Any) -> tuple[Any, Any]:
        """The row's timestamp and id columns, as the source returned them."""
        mapping = row._mapping
        return mapping[KEY], mapping["id"]

    def map(self, row: Any) -> dict[str, Any] | Skip:
        """The row by column name, money and times converted; skipped without an email
        or an organization."""
        values = dict(row._mapping)
        del values[KEY]
        email = values.get("user_email")
        if email is None or (isinstance(email, str) and not email.strip()):
            return Skip(NO_EMAIL, "no user_email")
        organization = values.get("organization") or self.settings.organization
        if not organization:
            return Skip(NO_ORGANIZATION, "no organization")
        values["organization"] = organization
        values["id"] = str(values["id"]) if values["id"] is not None else None
        stamp = values["timestamp"]
        values["timestamp"] = iso(as_instant(stamp) or stamp if isinstance(stamp, str) else stamp)
        values["cost_usd"] = decimal_usd(values["cost_usd"])
        for name in _CACHE:
            if name in values:
                values[name] = count(values[name])
        return values
