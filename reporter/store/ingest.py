"""Ingest: stream usage events from CSV or JSONL into the store, idempotently."""

from __future__ import annotations

import csv
import io
import itertools
import json
import logging
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Connection, Engine, insert, select
from sqlalchemy.dialects import postgresql, sqlite

from reporter import money
from reporter.errors import IngestError
from reporter.store.schema import Membership, Organization, UsageEvent, User

log = logging.getLogger(__name__)

REQUIRED = ("id", "timestamp", "organization", "user_email", "model",
            "input_tokens", "output_tokens", "cost_usd")
OPTIONAL = ("project", "cache_read_tokens", "cache_write_tokens")
FIELDS = frozenset(REQUIRED + OPTIONAL)
BATCH = 5000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class IngestResult:
    inserted: int = 0
    duplicate: int = 0
    rejected: int = 0
    errors: list[str] = field(default_factory=list)

    def add(self, other: IngestResult) -> None:
        self.inserted += other.inserted
        self.duplicate += other.duplicate
        self.rejected += other.rejected
        self.errors.extend(other.errors)


class RowError(ValueError):
    """One row is bad; the message says why."""


def _text(row: dict[str, Any], key: str, *, required: bool = True) -> str | None:
    value = row.get(key)
    if type(value) is str:
        value = value.strip()
        if value:
            return value
    elif value is not None:
        raise RowError(f"{key} must be text, not {json.dumps(value, default=str)}")
    if required:
        raise RowError(f"missing {key}")
    return None


def _count(row: dict[str, Any], key: str, *, required: bool = True) -> int:
    value = row.get(key)
    if type(value) is str and value.isdigit() and value.isascii() and len(value) < 19:
        return int(value)  # the common case, kept cheap
    if value is None or value == "":
        if required:
            raise RowError(f"missing {key}")
        return 0
    if isinstance(value, bool) or isinstance(value, float | Decimal):
        raise RowError(f"{key} must be a non-negative integer, not {value}")
    if isinstance(value, int):
        number = value
    else:
        text = str(value).strip()
        if not text.isdigit() or not text.isascii():
            raise RowError(f"{key} must be a non-negative integer, not {value!r}")
        number = int(text)
    if number < 0:
        raise RowError(f"{key} must be a non-negative integer, not {number}")
    if number >= 2**62:
        raise RowError(f"{key} {number} is too large")
    return number


def parse_timestamp(value: Any) -> int:
    """An ISO 8601 timestamp with an offset (or Z) as microseconds since the epoch, UTC."""
    if not isinstance(value, str) or not value.strip():
        raise RowError("missing timestamp")
    text = value.strip()
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise RowError(f"timestamp {text!r} is not a valid ISO 8601 date and time") from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise RowError(f"timestamp {text!r} has no UTC offset (add Z or +HH:MM)")
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def parse_row(row: dict[str, Any]) -> dict[str, Any]:
    """Validate one raw row; the event's column values, or RowError."""
    if not FIELDS.issuperset(row):
        unknown = sorted(k for k in row if k not in FIELDS)
        raise RowError(f"unknown column{'s' if len(unknown) > 1 else ''} "
                       f"{', '.join(repr(k) for k in unknown)}")
    cost = row.get("cost_usd")
    if cost is None or cost == "":
        raise RowError("missing cost_usd")
    if isinstance(cost, bool) or isinstance(cost, float):
        raise RowError(f"cost_usd must be a decimal string, not {cost!r}")
    try:
        cost_nanos = money.parse_usd(cost if type(cost) is str else str(cost))
    except ValueError as exc:
        raise RowError(str(exc).replace("cost ", "cost_usd ", 1)) from None
    email = _text(row, "user_email")
    assert email is not None
    email = email.lower()
    if "@" not in email or email[0] == "@" or email[-1] == "@" or " " in email:
        raise RowError(f"user_email {email!r} is not an email address")
    event_id = _text(row, "id")
    assert event_id is not None
    if len(event_id) > 255:
        raise RowError("id is longer than 255 characters")
    return {
        "id": event_id,
        "ts_us": parse_timestamp(row.get("timestamp")),
        "organization": _text(row, "organization"),
        "user_email": email,
        "model": _text(row, "model"),
        "project": _text(row, "project", required=False),
        "input_tokens": _count(row, "input_tokens"),
        "output_tokens": _count(row, "output_tokens"),
        "cache_read_tokens": _count(row, "cache_read_tokens", required=False),
        "cache_write_tokens": _count(row, "cache_write_tokens", required=False),
        "cost_nanos": cost_nanos,
    }


def read_rows(stream: Iterable[str], name: str,
              fmt: str) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """Yield ``(line, row)`` or ``(line, error message)`` from a CSV or JSONL stream."""
    if fmt == "csv":
        reader = csv.reader(stream)
        try:
            header = next(reader)
        except StopIteration:
            return
        header = [h.strip().lstrip("\ufeff") for h in header]
        unknown = [h for h in header if h not in FIELDS]
        missing = [h for h in REQUIRED if h not in header]
        if unknown or missing:
            parts = []
            if unknown:
                parts.append("unknown column(s) " + ", ".join(repr(h) for h in unknown))
            if missing:
                parts.append("missing column(s) " + ", ".join(repr(h) for h in missing))
            raise IngestError(f"{name}:1: {'; '.join(parts)} (known: {', '.join(sorted(FIELDS))})")
        line = reader.line_num
        for values in reader:
            start, line = line + 1, reader.line_num
            if not values or values == [""]:
                continue
            if len(values) != len(header):
                yield start, f"expected {len(header)} fields, found {len(values)}"
                continue
            yield start, dict(zip(header, values, strict=True))
    elif fmt == "jsonl":
        for number, text in enumerate(stream, start=1):
            if not text.strip():
                continue
            try:
                data = json.loads(text, parse_float=Decimal)
            except json.JSONDecodeError as exc:
                yield number, f"not valid JSON ({exc.msg})"
                continue
            if not isinstance(data, dict):
                yield number, "expected a JSON object"
                continue
            yield number, data
    else:
        raise IngestError(f"{name}: unknown format {fmt!r} (csv or jsonl)")


def detect_format(name: str, default: str | None = None) -> str:
    lower = name.lower()
    for suffix, fmt in ((".csv", "csv"), (".jsonl", "jsonl"), (".ndjson", "jsonl"),
                        (".json", "jsonl")):
        if lower.endswith(suffix):
            return fmt
    if default:
        return default
    raise IngestError(f"{name}: cannot tell the format from the name (use .csv or .jsonl)")


class _Directory:
    """Organization and user ids by slug and email, created on first sight."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.orgs: dict[str, int] = {}
        self.users: dict[str, int] = {}
        self.memberships: set[tuple[int, int]] = set()

    def org_id(self, slug: str) -> int:
        found = self.orgs.get(slug)
        if found is None:
            found = self.conn.scalar(select(Organization.id).where(Organization.slug == slug))
            if found is None:
                found = self.conn.execute(
                    insert(Organization).values(slug=slug, name=slug, timezone="UTC")
                    .returning(Organization.id)).scalar_one()
                log.info("created organization %s", slug)
            self.orgs[slug] = found
        return found

    def user_id(self, email: str) -> int:
        found = self.users.get(email)
        if found is None:
            found = self.conn.scalar(select(User.id).where(User.email == email))
            if found is None:
                found = self.conn.execute(
                    insert(User).values(email=email).returning(User.id)).scalar_one()
            self.users[email] = found
        return found

    def ensure_member(self, org_id: int, user_id: int) -> None:
        key = (org_id, user_id)
        if key in self.memberships:
            return
        exists = self.conn.scalar(select(Membership.role).where(
            Membership.organization_id == org_id, Membership.user_id == user_id))
        if exists is None:
            self.conn.execute(insert(Membership).values(
                organization_id=org_id, user_id=user_id, role="member"))
        self.memberships.add(key)


_COLUMNS = ("id", "organization_id", "user_id", "ts_us", "model", "project", "input_tokens",
            "output_tokens", "cache_read_tokens", "cache_write_tokens", "cost_nanos")


def _insert_sql(engine: Engine) -> tuple[str, tuple[str, ...] | None]:
    """The driver-level INSERT ... ON CONFLICT DO NOTHING, and the parameter order when
    the driver takes positional parameters (skipping per-row work in SQLAlchemy)."""
    if engine.dialect.name == "postgresql":
        statement: Any = postgresql.insert(UsageEvent)
    elif engine.dialect.name == "sqlite":
        statement = sqlite.insert(UsageEvent)
    else:
        raise IngestError(f"database {engine.dialect.name} is not supported")
    statement = statement.values({c: None for c in _COLUMNS})
    compiled = statement.on_conflict_do_nothing(index_elements=["id"]).compile(
        dialect=engine.dialect)
    order = tuple(compiled.positiontup) if compiled.positional else None
    return str(compiled), order


def ingest_rows(engine: Engine, rows: Iterable[tuple[int, dict[str, Any] | str]], name: str,
                on_error: Callable[[str], None] | None = None) -> IngestResult:
    """Insert validated rows in batches; bad rows are reported as ``name:line: why``."""
    result = IngestResult()
    sql, order = _insert_sql(engine)
    batch: list[dict[str, Any]] = []

    def reject(line: int, why: str) -> None:
        message = f"{name}:{line}: {why}"
        result.rejected += 1
        if len(result.errors) < 1000:
            result.errors.append(message)
        if on_error is not None:
            on_error(message)

    def flush() -> None:
        if not batch:
            return
        with engine.begin() as conn:
            directory.conn = conn
            values: list[Any] = []
            for event in batch:
                org_id = directory.org_id(event.pop("organization"))
                user_id = directory.user_id(event.pop("user_email"))
                directory.ensure_member(org_id, user_id)
                event["organization_id"] = org_id
                event["user_id"] = user_id
                values.append(event if order is None else tuple(event[k] for k in order))
            inserted = conn.exec_driver_sql(sql, values).rowcount
        result.inserted += inserted
        result.duplicate += len(values) - inserted
        batch.clear()

    with engine.connect() as probe:
        directory = _Directory(probe)
    for line, row in rows:
        if isinstance(row, str):
            reject(line, row)
            continue
        try:
            batch.append(parse_row(row))
        except RowError as exc:
            reject(line, str(exc))
            continue
        if len(batch) >= BATCH:
            flush()
    flush()
    return result


def ingest_file(engine: Engine, path: str,
                on_error: Callable[[str], None] | None = None) -> IngestResult:
    """Ingest one CSV or JSONL file (``-`` reads standard input, either format)."""
    if path == "-":
        stream: IO[str] = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8-sig", newline="")
        first = stream.readline()
        fmt = "jsonl" if first.lstrip().startswith("{") else "csv"
        lines = itertools.chain([first], stream)
        return ingest_rows(engine, read_rows(lines, "<stdin>", fmt), "<stdin>", on_error)
    fmt = detect_format(path)
    file = Path(path)
    if not file.is_file():
        raise IngestError(f"{path}: no such file")
    try:
        with file.open(encoding="utf-8-sig", newline="") as stream:
            return ingest_rows(engine, read_rows(stream, path, fmt), path, on_error)
    except UnicodeDecodeError as exc:
        raise IngestError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
