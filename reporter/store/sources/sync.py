"""Sync a source: keyset-ordered pages in read-only transactions, each stored through the
ingest path before the watermark moves, so an outage mid-way loses nothing."""

from __future__ import annotations

import logging
import math
import os
import queue
import threading
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.exc import DBAPIError, NoSuchModuleError
from sqlalchemy.pool import NullPool

from reporter.errors import ConfigError
from reporter.store.db import parse_url
from reporter.store.ingest import ingest_rows
from reporter.store.sources import watermark
from reporter.store.sources.common import (
    EPOCH,
    FUTURE,
    FUTURE_SLACK,
    PERSONAL,
    Skip,
    SourceError,
    SourceReader,
    SourceSettings,
    SyncResult,
    as_instant,
    masked,
    printable,
    scrub,
    utc,
)
from reporter.store.sources.kilo import KiloReader
from reporter.store.sources.litellm import LiteLLMReader
from reporter.store.sources.sql import SqlReader

log = logging.getLogger(__name__)

READERS: dict[str, Callable[[SourceSettings], SourceReader]] = {
    "litellm": LiteLLMReader, "kilo": KiloReader, "sql": SqlReader}
Issue = Callable[[str], None]


class HasSources(Protocol):
    """A loaded configuration that carries its sources."""

    @property
    def sources(self) -> Mapping[str, SourceSettings]:
        """The configured sources by name."""
        ...


def open_source(url: str, timeout_seconds: float) -> Engine:
    """An engine for a source URL: no pool, a connect timeout. The URL follows the store's
    rule (``postgres://`` accepted, an ``@`` in the password written ``%40``); SourceError
    in one line, password masked, when it cannot be used."""
    try:
        parsed = parse_url(url)
    except ConfigError as exc:
        raise SourceError(str(exc).replace("database URL", "the URL", 1)) from None
    connect_args: dict[str, Any] = {}
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        connect_args["connect_timeout"] = max(2, math.ceil(timeout_seconds))
    elif backend == "sqlite":
        connect_args["timeout"] = timeout_seconds
    try:
        return create_engine(parsed, poolclass=NullPool, connect_args=connect_args)
    except (NoSuchModuleError, ImportError) as exc:
        raise SourceError(f"{masked(url)}: no driver for this database ({exc})") from None


def _read_only(conn: Connection, timeout_seconds: float) -> None:
    """Make the transaction just begun read-only, in UTC, within the timeout, by itself:
    nothing a query did in an earlier transaction (a session setting switched off) counts.
    A query cannot undo it: PostgreSQL refuses to make a transaction read-write once it
    has run a query."""
    dialect = conn.dialect.name
    if dialect == "postgresql":
        conn.exec_driver_sql(
            "SET TRANSACTION READ ONLY; "
            f"SET LOCAL statement_timeout = {max(1, int(timeout_seconds * 1000))}; "
            "SET LOCAL TIME ZONE 'UTC'")
    elif dialect == "sqlite":
        conn.exec_driver_sql("PRAGMA query_only = ON")


def _store(engine: Engine, reader: SourceReader, rows: Sequence[Any], result: SyncResult,
           issue: Issue, before: tuple[datetime, str] | None, now: datetime) -> None:
    """Map one page and store it through the ingest path; count what became of each row
    (``late``: inserted although at or before the watermark ``before``)."""
    name = f"source {reader.settings.name!r}"
    events: list[tuple[int, dict[str, Any] | str]] = []
    earlier: list[tuple[int, dict[str, Any] | str]] = []
    for offset, row in enumerate(rows, start=result.read + 1):
        ts, ident = reader.key(row)
        instant = as_instant(ts)
        mapped: dict[str, Any] | Skip
        if instant is not None and instant > now + FUTURE_SLACK:
            mapped = Skip(FUTURE, f"dated {instant.isoformat()}, more than a day ahead of "
                                  f"now; stored once it is no longer ahead")
        else:
            mapped = reader.map(row)
        if isinstance(mapped, Skip):
            result.skipped[mapped.reason] += 1
            if mapped.reason != PERSONAL:
                issue(f"{name}: {reader.what} {ident}: skipped ({mapped.reason}): "
                      f"{mapped.detail}")
            continue
        if before is not None and instant is not None and (instant, str(ident)) <= before:
            earlier.append((offset, mapped))
        else:
            events.append((offset, mapped))
    result.read += len(rows)
    if not events and not earlier:
        return
    reader.before_ingest(engine)
    result.created_organizations += reader.created_organizations
    result.created_members += reader.created_members
    reader.created_organizations, reader.created_members = [], []
    for batch in (earlier, events):
        if batch:
            inserted = _ingest(engine, reader, batch, result, issue)
            if batch is earlier:
                result.late += inserted


def _ingest(engine: Engine, reader: SourceReader, events: list[tuple[int, dict[str, Any] | str]],
            result: SyncResult, issue: Issue) -> int:
    """Store mapped rows; the number inserted."""
    name = f"source {reader.settings.name!r}"
    ids: dict[int, Any] = {}

    def rejected(message: str) -> None:
        if not ids:
            ids.update((line, event["id"]) for line, event in events
                       if isinstance(event, dict))
        line, _, why = message.removeprefix(name + ":").partition(": ")
        if line.isdigit() and int(line) in ids:
            message = f"{name}: {reader.what} {ids[int(line)]}: rejected: {why}"
        issue(message)

    outcome = ingest_rows(engine, events, name, rejected)
    result.inserted += outcome.inserted
    result.duplicate += outcome.duplicate
    result.rejected += outcome.rejected
    result.created_organizations += outcome.created_organizations
    result.created_members += outcome.created_members
    return outcome.inserted


def _pages(src: Engine, reader: SourceReader, source: SourceSettings, start: datetime,
           where: str, url: str) -> Generator[Sequence[Any], None, None]:
    """The source's rows from ``start`` on, a page at a time in (timestamp, id) order, each
    read in its own read-only transaction; SourceError when the source cannot be read."""
    try:
        with src.connect() as conn:
            reader.check(conn.dialect.name)
            params = {**reader.params(), "limit": source.page_size,
                      "start": reader.start(start), "since": start}
            with conn.begin():
                _read_only(conn, source.timeout_seconds)
                reader.prepare(conn)
            first = text(reader.first_page(conn.dialect))
            further = text(reader.next_page(conn.dialect))
            query = first
            while True:
                with conn.begin():
                    _read_only(conn, source.timeout_seconds)
                    cursor = conn.execute(query, params)
                    if query is first:
                        reader.check_columns(list(cursor.keys()))
                    rows = cursor.all()
                    if query is first:
                        reader.check_first(conn, params, rows)
                if rows:
                    yield rows
                if len(rows) < source.page_size:
                    return
                ts, ident = reader.key(rows[-1])
                params = {**params, "ts": ts, "id": ident}
                query = further
    except DBAPIError as exc:
        raise SourceError(f"{where}: {scrub(str(exc.orig or exc), url)}") from None


class _Ahead:
    """Reads pages in a thread, one page ahead of the consumer, so the source's query and
    the store's inserts overlap; an exception in the reader is raised to the consumer."""

    def __init__(self, pages: Generator[Sequence[Any], None, None]) -> None:
        self.queue: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=1)
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._read, args=(pages,), daemon=True,
                                       name="source-pages")
        self.thread.start()

    def _put(self, item: tuple[str, Any]) -> bool:
        while not self.stopped.is_set():
            try:
                self.queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _read(self, pages: Generator[Sequence[Any], None, None]) -> None:
        try:
            for page in pages:
                if not self._put(("page", page)):
                    break
            else:
                self._put(("end", None))
        except BaseException as exc:  # handed to the consumer, raised there
            self._put(("error", exc))
        finally:
            pages.close()

    def __iter__(self) -> Iterator[Sequence[Any]]:
        while True:
            kind, value = self.queue.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value

    def close(self) -> None:
        """Stop reading and wait for the reader (at most one query's timeout)."""
        self.stopped.set()
        self.thread.join()


def sync_source(engine: Engine, source: SourceSettings, *, env: Mapping[str, str] | None = None,
                now: datetime | None = None, on_issue: Issue | None = None,
                on_page: Callable[[int], None] | None = None,
                since: datetime | None = None) -> SyncResult:
    """Copy what is new in one source into the store (from its watermark less the overlap
    window, or from ``since``) and move the watermark after each stored page. A source that
    is down or times out ends the sync with ``result.error`` set; what was stored before
    stays stored. Rows dated more than a day ahead of ``now`` are skipped as ``future``
    and never move the watermark."""
    result = SyncResult(source.name)
    now = now or datetime.now(UTC)

    def issue(message: str) -> None:
        message = printable(message)
        result.note(message)
        if on_issue is not None:
            on_issue(message)

    try:
        url = source.url(os.environ if env is None else env)
    except SourceError as exc:
        result.error = str(exc)
        return result
    reader = READERS[source.kind](source)
    last = watermark.get(engine, source.name)
    result.watermark = last
    start = EPOCH if last is None else last[0] - timedelta(minutes=source.overlap_minutes)
    if since is not None:  # read again from DATE; a DATE past the watermark skips nothing
        start = min(start, utc(since))
    where = f"source {source.name!r} ({masked(url)})"
    try:
        src = open_source(url, source.timeout_seconds)
    except SourceError as exc:
        result.error = f"source {source.name!r}: {exc}"
        return result
    reader.load(engine, now)
    pages = _Ahead(_pages(src, reader, source, start, where, url))
    try:
        for rows in pages:
            _store(engine, reader, rows, result, issue, last, now)
            mark = _mark(reader, rows, now)
            if mark is not None:
                watermark.advance(engine, source.name, mark, now)
                if result.watermark is None or mark > result.watermark:
                    result.watermark = mark
            result.pages += 1
            log.debug("%s: page %d stored, %d rows read", where, result.pages, result.read)
            if on_page is not None:
                on_page(result.pages)
    except SourceError as exc:
        result.error = printable(str(exc))
    finally:
        pages.close()
        src.dispose()
    if result.error is not None:
        log.info("%s", result.error)
    else:
        log.info("%s", result.summary())
    return result


def _mark(reader: SourceReader, rows: Sequence[Any], now: datetime) -> tuple[datetime, str] | None:
    """The newest (instant, id) of a page that is not in the future: how far it was read.
    A row ahead of ``now`` (a clock running fast, by less than FUTURE_SLACK) marks ``now``,
    never its own time: rows written later with a true clock are still read."""
    for row in reversed(rows):
        ts, ident = reader.key(row)
        instant = as_instant(ts)
        if instant is not None and instant <= now + FUTURE_SLACK:
            return (instant, str(ident)) if instant <= now else (now, "")
    return None


def sync_all(engine: Engine, sources: Mapping[str, SourceSettings] | HasSources,
             names: Iterable[str] = (), *, now: datetime | None = None,
             env: Mapping[str, str] | None = None, on_issue: Issue | None = None,
             since: datetime | None = None) -> list[SyncResult]:
    """Sync the named sources (all when ``names`` is empty), one after the other; a source
    that fails does not stop the others. ConfigError for a name that is not configured."""
    configured: Mapping[str, SourceSettings] = (
        sources if isinstance(sources, Mapping) else sources.sources)
    wanted = list(dict.fromkeys(names)) or list(configured)
    unknown = [n for n in wanted if n not in configured]
    if unknown:
        known = ", ".join(configured) or "none configured"
        raise ConfigError(f"unknown source{'s' if len(unknown) > 1 else ''} "
                          f"{', '.join(repr(n) for n in unknown)} (sources: {known})")
    return [sync_source(engine, configured[n], env=env, now=now, on_issue=on_issue,
                        since=since) for n in wanted]
