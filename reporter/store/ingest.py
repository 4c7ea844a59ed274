"""Ingest: stream usage events from CSV or JSONL into the store, idempotently.

Every row is judged on its own before it reaches the database (reporter.store.validate);
a bad row is reported as ``FILE:LINE: why`` and every good row is kept. Should the database
still refuse a batch, the batch is split until only the refused rows are left out.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import logging
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import OperationalError, StatementError

from reporter.errors import IngestError
from reporter.store import orgs, writers
from reporter.store.readers import detect_format, read_rows
from reporter.store.validate import (
    FIELDS,
    OPTIONAL,
    REQUIRED,
    RowError,
    parse_row,
    parse_timestamp,
    values,
)

log = logging.getLogger(__name__)

BATCH = 5000
#: the page cache, in KiB, of the connection a SQLite ingest writes on
SQLITE_CACHE_KIB = 32 * 1024
#: errors kept in IngestResult.errors (all of them go to ``on_error``)
MAX_ERRORS = 1000
#: what the database raises for one bad row (a broken connection is not one)
_ROW_FAULTS = (StatementError, ValueError, OverflowError)

__all__ = ["BATCH", "FIELDS", "OPTIONAL", "REQUIRED", "IngestResult", "RowError",
           "detect_format", "ingest_file", "ingest_rows", "parse_row", "parse_timestamp",
           "read_rows"]


@dataclass
class IngestResult:
    """What an ingest did: counts, the rejected rows' messages, and what it created."""

    inserted: int = 0
    #: stored events that took new values (``replace``)
    replaced: int = 0
    duplicate: int = 0
    rejected: int = 0
    errors: list[str] = field(default_factory=list)
    #: slugs of the organizations this ingest created
    created_organizations: list[str] = field(default_factory=list)
    #: (organization slug, email) of the memberships this ingest created
    created_members: list[tuple[str, str]] = field(default_factory=list)

    def add(self, other: IngestResult) -> None:
        """Count ``other`` in as well."""
        self.inserted += other.inserted
        self.replaced += other.replaced
        self.duplicate += other.duplicate
        self.rejected += other.rejected
        self.errors.extend(other.errors)
        self.created_organizations.extend(other.created_organizations)
        self.created_members.extend(other.created_members)


#: (line, the event's values in validate.COLUMNS' order)
Batch = list[tuple[int, list[Any]]]


class _Directory:
    """Organization, user and membership ids by slug and email, created on first sight.
    What one transaction learns is kept only once that transaction has committed."""

    def __init__(self, result: IngestResult) -> None:
        self.result = result
        self.orgs: dict[str, int] = {}
        self.users: dict[str, int] = {}
        #: (slug, email) -> (organization id, user id) of a membership known to exist
        self.members: dict[tuple[str, str], tuple[int, int]] = {}

    def resolve(self, conn: Connection,
                batch: Batch) -> tuple[list[tuple[int, int]], Callable[[], None]]:
        """(organization id, user id) of each event, and a function to call on commit.

        What the batch lacks is created in key order (organizations by slug, users by email,
        memberships by ids): two ingests creating the same new ones at once wait for each
        other in one order and cannot deadlock on them."""
        pairs = [(event[1], event[2]) for _, event in batch]
        missing = set(pairs) - self.members.keys()
        new_orgs: dict[str, int] = {}
        created_orgs: list[str] = []
        for slug in sorted({slug for slug, _ in missing} - self.orgs.keys()):
            new_orgs[slug], created = orgs.ensure_org(conn, slug)
            if created:
                created_orgs.append(slug)
        new_users = {email: orgs.ensure_user(conn, email)
                     for email in sorted({email for _, email in missing} - self.users.keys())}

        def ids(pair: tuple[str, str]) -> tuple[int, int]:
            return (self.orgs.get(pair[0]) or new_orgs[pair[0]],
                    self.users.get(pair[1]) or new_users[pair[1]])

        new_members: dict[tuple[str, str], tuple[int, int]] = {}
        created_members: list[tuple[str, str]] = []
        for pair in sorted(missing, key=ids):
            new_members[pair] = ids(pair)
            if orgs.ensure_membership(conn, *new_members[pair]):
                log.info("created member %s in %s", pair[1], pair[0])
                created_members.append(pair)
        out = [self.members.get(pair) or new_members[pair] for pair in pairs]
        # what was created is told in the order the file named it
        first: dict[tuple[str, str], int] = {}
        first_org: dict[str, int] = {}
        for n, pair in enumerate(pairs):
            first.setdefault(pair, n)
            first_org.setdefault(pair[0], n)
        created_orgs.sort(key=first_org.__getitem__)
        created_members.sort(key=first.__getitem__)

        def commit() -> None:
            self.orgs.update(new_orgs)
            self.users.update(new_users)
            self.members.update(new_members)
            self.result.created_organizations.extend(created_orgs)
            self.result.created_members.extend(created_members)

        return out, commit


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class _Writer:
    """Stores batches of valid events; a batch the database refuses is split in halves
    until only the rows it refuses are left out, each reported with its line."""

    def __init__(self, engine: Engine, name: str, result: IngestResult,
                 reject: Callable[[int, str], None], replace: bool) -> None:
        self.engine = engine
        self.name = name
        self.result = result
        self.reject = reject
        self.writer = writers.for_engine(engine, replace=replace)
        self.down: tuple[type[BaseException], ...] = (OperationalError,
                                                      *self.writer.down_faults)
        self.faults: tuple[type[BaseException], ...] = (*_ROW_FAULTS,
                                                        *self.writer.row_faults)
        self.directory = _Directory(result)
        #: SQLite: the one connection every batch of this ingest is written on
        self.held: Connection | None = None
        self.cache_size: int | None = None

    def store(self, batch: Batch, tries: int = 4) -> None:
        """Store a batch, or as much of it as the database takes. A batch that lost a
        deadlock to another ingest (or a serialization failure) is written again."""
        try:
            self._write(batch)
        except self.down as exc:
            if tries > 1 and _contended(exc):
                log.info("%s:%d: another writer held the rows; writing the batch again",
                         self.name, batch[0][0])
                time.sleep(0.05 * (5 - tries))
                self.store(batch, tries - 1)
                return
            failure = IngestError(
                f"{self.name}:{batch[0][0]}: the database failed ({_first_line(exc)}); the "
                "rows before this line are stored, and ingesting the file again loads the "
                "rest")
            failure.result = self.result  # what was stored before it: the caller counts it
            raise failure from exc
        except self.faults as exc:
            if len(batch) > 1:
                half = len(batch) // 2
                self.store(batch[:half])
                self.store(batch[half:])
                return
            line = batch[0][0]
            log.warning("%s:%d: the database refused a row that passed validation: %s",
                        self.name, line, _first_line(exc))
            log.debug("%s:%d: the refusal", self.name, line, exc_info=True)
            self.reject(line, f"the database refused this row ({_first_line(exc)})")

    def _transaction(self) -> Any:
        """A transaction for one batch. On SQLite every batch is written on one connection,
        with a page cache of ``SQLITE_CACHE_KIB`` (SQLite's default is 2 MiB): the batches
        insert into usage_events' indexes at places all over the file, and the pages the
        last batch read are still there for the next. ``close`` gives the default back."""
        if self.engine.dialect.name != "sqlite":
            return self.engine.begin()
        if self.held is None or self.held.closed or self.held.invalidated:
            self.held = self.engine.connect()
            self.cache_size = self.held.exec_driver_sql("PRAGMA cache_size").scalar()
            self.held.exec_driver_sql(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
            self.held.commit()
        return _within(self.held)

    def close(self) -> None:
        """Give the SQLite connection back with its usual page cache."""
        held, self.held = self.held, None
        if held is None:
            return
        try:
            if not held.closed and not held.invalidated and self.cache_size is not None:
                held.exec_driver_sql(f"PRAGMA cache_size={int(self.cache_size)}")
                held.commit()
        except Exception:  # a connection the database failed on: the pool drops it
            held.invalidate()
        finally:
            held.close()

    def _write(self, batch: Batch) -> None:
        with self._transaction() as conn:
            ids, commit = self.directory.resolve(conn, batch)
            rows = []
            for (_, event), (org_id, user_id) in zip(batch, ids, strict=True):
                row = event.copy()  # the batch keeps slug and email, should it be retried
                row[1] = org_id
                row[2] = user_id
                rows.append(row)
            inserted, replaced = self.writer.put(conn, rows)
        commit()
        self.result.inserted += inserted
        self.result.replaced += replaced
        self.result.duplicate += len(rows) - inserted - replaced


@contextlib.contextmanager
def _within(conn: Connection) -> Iterator[Connection]:
    """``conn`` in a transaction of its own (committed at the end, rolled back on an error)."""
    with conn.begin():
        yield conn


def _contended(exc: BaseException) -> bool:
    """A deadlock or a serialization failure (SQLSTATE class 40): writing again succeeds."""
    code = getattr(getattr(exc, "orig", exc), "sqlstate", None)
    return isinstance(code, str) and code.startswith("40")


def _clean(message: str) -> str:
    """One printable line, whatever the row held."""
    text = message.encode("utf-8", "backslashreplace").decode("utf-8")
    return text.replace("\r", "\\r").replace("\n", "\\n")


def ingest_rows(engine: Engine, rows: Iterable[tuple[int, dict[str, Any] | str]], name: str,
                on_error: Callable[[str], None] | None = None, *,
                replace: bool = False) -> IngestResult:
    """Insert validated rows in batches; bad rows are reported as ``name:line: why``. With
    ``replace``, a stored event of the same (organization, id) takes the row's values."""
    result = IngestResult()

    def reject(line: int, why: str) -> None:
        message = _clean(f"{name}:{line}: {why}")
        result.rejected += 1
        if len(result.errors) < MAX_ERRORS:
            result.errors.append(message)
        if on_error is not None:
            on_error(message)

    writer = _Writer(engine, name, result, reject, replace)
    # PostgreSQL stores one batch in a thread while the next is validated: half the batch
    # size keeps two of them within the memory of one
    ahead = _Ahead(writer, reject, threaded=engine.dialect.name == "postgresql")
    size = BATCH // 2 if ahead.pool is not None else BATCH
    refuse = ahead.refuse
    batch: Batch = []
    append = batch.append
    try:
        for line, row in rows:
            if isinstance(row, str):
                refuse(line, row)
                continue
            try:
                append((line, values(row)))
            except RowError as exc:
                refuse(line, str(exc))
                continue
            if len(batch) >= size:
                ahead.store(batch)
                batch = []
                append = batch.append
        ahead.store(batch)
        ahead.wait()
    finally:
        ahead.close()
    return result


class _Ahead:
    """Hands batches to the writer, in a thread of its own when ``threaded`` (the database
    works while Python validates the next batch). Messages keep the order they have without
    the thread: those about rows of the batch being read wait until the batch before it is
    stored; a database that fails stops the ingest at the next batch, as it would."""

    def __init__(self, writer: _Writer, reject: Callable[[int, str], None], *,
                 threaded: bool) -> None:
        self.writer = writer
        self.reject = reject
        self.pool = (ThreadPoolExecutor(1, thread_name_prefix="reporter-ingest")
                     if threaded else None)
        self.future: Future[None] | None = None
        self.held: list[tuple[int, str]] = []

    def refuse(self, line: int, why: str) -> None:
        """A row refused before the database saw it."""
        if self.pool is None:
            self.reject(line, why)
        else:
            self.held.append((line, why))

    def store(self, batch: Batch) -> None:
        """Store ``batch`` (once the one before it is stored, when threaded)."""
        self.wait()
        if not batch:
            return
        if self.pool is None:
            self.writer.store(batch)
        else:
            self.future = self.pool.submit(self.writer.store, batch)

    def wait(self) -> None:
        """Wait for the batch in the thread (raising its error), then tell what was held."""
        if self.future is not None:
            future, self.future = self.future, None
            future.result()
        held, self.held = self.held, []
        for line, why in held:
            self.reject(line, why)

    def close(self) -> None:
        """Let the batch being stored finish (on an error too), end the thread, and give
        back the writer's connection."""
        if self.pool is not None:
            self.pool.shutdown(wait=True)
        self.writer.close()


def ingest_file(engine: Engine, path: str,
                on_error: Callable[[str], None] | None = None, *, strict: bool = False,
                on_warning: Callable[[str], None] | None = None,
                replace: bool = False) -> IngestResult:
    """Ingest one CSV or JSONL file (``-`` reads standard input, either format). Bytes that
    are not UTF-8 reject the row they are in. Unknown columns and keys are left out with
    one ``on_warning`` per file, or refused when ``strict`` (see readers.read_rows). With
    ``replace``, stored events of the same (organization, id) take the file's values."""
    if path == "-":
        stream: IO[str] = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8-sig",
                                           errors="surrogateescape", newline="")
        first = stream.readline()
        fmt = "jsonl" if first.lstrip().startswith("{") else "csv"
        lines = itertools.chain([first], stream)
        return ingest_rows(engine, read_rows(lines, "<stdin>", fmt, strict=strict,
                                             on_warning=on_warning), "<stdin>", on_error,
                           replace=replace)
    fmt = detect_format(path)
    file = Path(path)
    if not file.is_file():
        raise IngestError(f"{path}: no such file")
    with file.open(encoding="utf-8-sig", errors="surrogateescape", newline="") as stream:
        return ingest_rows(engine, read_rows(stream, path, fmt, strict=strict,
                                             on_warning=on_warning), path, on_error,
                           replace=replace)
