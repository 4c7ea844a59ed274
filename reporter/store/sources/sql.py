"""Any SQL database: a SELECT that names our fields and binds ``:since``, paged by wrapping
it as a subquery ordered on (timestamp, id)."""

from __future__ import annotations

from typing import Any

from reporter.store.ingest import FIELDS
from reporter.store.sources.common import (
    NO_EMAIL,
    NO_ORGANIZATION,
    Reader,
    Skip,
    SourceError,
    count,
    decimal_usd,
    iso,
)

_CACHE = ("cache_read_tokens", "cache_write_tokens")


class SqlReader(Reader):
    """Reads the rows of a configured SELECT; its columns are our fields by name."""

    def __init__(self, settings: Any) -> None:
        super().__init__(settings)
        self.columns: list[str] = []

    def _sql(self, dialect: Any, where: str) -> str:
        quote = dialect.identifier_preparer.quote
        ts, ident = f"src.{quote('timestamp')}", f"src.{quote('id')}"
        return (f"SELECT * FROM ({self.settings.query}) AS src WHERE "
                f"{where.format(ts=ts, id=ident)} ORDER BY {ts}, {ident} LIMIT :limit")

    def first_page(self, dialect: Any) -> str:
        """The query's rows from ``:start`` on."""
        return self._sql(dialect, "{ts} >= :start")

    def next_page(self, dialect: Any) -> str:
        """The query's rows after (``:ts``, ``:id``)."""
        return self._sql(dialect, "{ts} >= :ts AND ({ts} > :ts OR {id} > :id)")

    def check_columns(self, names: list[str]) -> None:
        """Every column must be one of our fields, and the required ones present."""
        where = f"source {self.settings.name!r}: the query"
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
        return mapping["timestamp"], mapping["id"]

    def map(self, row: Any) -> dict[str, Any] | Skip:
        """The row by column name, money and times converted; skipped without an email
        or an organization."""
        values = dict(row._mapping)
        email = values.get("user_email")
        if email is None or (isinstance(email, str) and not email.strip()):
            return Skip(NO_EMAIL, "no user_email")
        organization = values.get("organization") or self.settings.organization
        if not organization:
            return Skip(NO_ORGANIZATION, "no organization")
        values["organization"] = organization
        values["id"] = str(values["id"]) if values["id"] is not None else None
        values["timestamp"] = iso(values["timestamp"])
        values["cost_usd"] = decimal_usd(values["cost_usd"])
        for name in _CACHE:
            if name in values:
                values[name] = count(values[name])
        return values
