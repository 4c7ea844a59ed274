"""Writing validated events into usage_events, one batch in the caller's transaction.

SQLite takes the batch through one ``INSERT ... ON CONFLICT DO NOTHING`` executemany.
PostgreSQL takes it the way its own loader does: ``COPY`` into a temporary staging table,
then one ``INSERT ... SELECT ... ON CONFLICT DO NOTHING``. With ``replace``, a stored event of
the same (organization, id) takes the batch's values (the last line of that id wins); one
whose values are already the same is left alone and counted as a duplicate.

A batch's rows are lists in COLUMNS' order (reporter.store.validate.COLUMNS, with the
organization's and user's ids in place of the slug and the address). Each writer returns
(inserted, replaced); the rest of the batch were duplicates.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Connection, Engine

from reporter.errors import IngestError

Rows = Sequence[list[Any]]
Put = Callable[[Connection, Rows], tuple[int, int]]

COLUMNS = ("id", "organization_id", "user_id", "ts_us", "model", "project", "input_tokens",
           "output_tokens", "cache_read_tokens", "cache_write_tokens", "cost_nanos")
#: the columns a replacement may change (the key, organization_id and id, stays)
_VALUES = COLUMNS[2:]
_LIST = ", ".join(COLUMNS)
_KEY = "(organization_id, id)"
_SET = ", ".join(f"{c} = excluded.{c}" for c in _VALUES)
#: how many ids one SELECT of stored events names (SQLite allows 32,766 parameters)
_CHUNK = 500


class Writer:
    """How one database takes batches: ``put``, and the exceptions that mean a row was
    refused (``row_faults``: the batch is split to find it) or the database is gone
    (``down_faults``), besides SQLAlchemy's own."""

    def __init__(self, put: Put, row_faults: tuple[type[BaseException], ...] = (),
                 down_faults: tuple[type[BaseException], ...] = ()) -> None:
        self.put = put
        self.row_faults = row_faults
        self.down_faults = down_faults


def for_engine(engine: Engine, *, replace: bool = False) -> Writer:
    """The writer for ``engine``'s database."""
    if engine.dialect.name == "sqlite":
        import sqlite3

        return Writer(_sqlite_replace if replace else _sqlite_insert,
                      row_faults=(sqlite3.DatabaseError,), down_faults=(sqlite3.OperationalError,))
    if engine.dialect.name == "postgresql":
        import psycopg

        # a role that may not create the staging table refuses every batch alike: not a row's
        # fault, so it is said once instead of row by row
        down = (psycopg.OperationalError, psycopg.InterfaceError,
                psycopg.errors.InsufficientPrivilege)
        return Writer(_postgres_replace if replace else _postgres_insert,
                      row_faults=(psycopg.DatabaseError,), down_faults=down)
    raise IngestError(f"database {engine.dialect.name} is not supported")


# -- SQLite --------------------------------------------------------------------------------

_SQLITE_INSERT = (f"INSERT INTO usage_events ({_LIST}) VALUES ({', '.join('?' * len(COLUMNS))})"
                  f" ON CONFLICT {_KEY} DO NOTHING")
_SQLITE_UPSERT = (f"INSERT INTO usage_events ({_LIST}) VALUES ({', '.join('?' * len(COLUMNS))})"
                  f" ON CONFLICT {_KEY} DO UPDATE SET {_SET}")


def _driver(conn: Connection) -> Any:
    """The database driver's own connection, in ``conn``'s transaction: batches go to it
    straight, without SQLAlchemy's work per row."""
    return conn.connection.driver_connection


def _sqlite_insert(conn: Connection, rows: Rows) -> tuple[int, int]:
    return int(_driver(conn).executemany(_SQLITE_INSERT, rows).rowcount), 0


def _last_of_each(rows: Rows) -> dict[tuple[Any, Any], list[Any]]:
    """Each (organization, id) once, with the values of its last row."""
    return {(row[1], row[0]): row for row in rows}


def _sqlite_replace(conn: Connection, rows: Rows) -> tuple[int, int]:
    latest = _last_of_each(rows)
    by_org: dict[int, list[str]] = {}
    for org_id, ident in latest:
        by_org.setdefault(org_id, []).append(ident)
    stored: dict[tuple[Any, Any], tuple[Any, ...]] = {}
    for org_id, idents in by_org.items():
        for start in range(0, len(idents), _CHUNK):
            chunk = idents[start:start + _CHUNK]
            found = conn.exec_driver_sql(
                f"SELECT id, {', '.join(_VALUES)} FROM usage_events WHERE organization_id = ? "
                f"AND id IN ({', '.join('?' * len(chunk))})", (org_id, *chunk))
            for ident, *values in found:
                stored[(org_id, ident)] = tuple(values)
    fresh = [row for key, row in latest.items() if key not in stored]
    changed = [row for key, row in latest.items()
               if key in stored and stored[key] != tuple(row[2:])]
    if fresh or changed:
        _driver(conn).executemany(_SQLITE_UPSERT, fresh + changed)
    return len(fresh), len(changed)


# -- PostgreSQL ----------------------------------------------------------------------------

_STAGE = "reporter_staged_events"
_CREATE_STAGE = (
    f"CREATE TEMPORARY TABLE IF NOT EXISTS {_STAGE} (id text, organization_id integer, "
    "user_id integer, ts_us bigint, model text, project text, input_tokens bigint, "
    "output_tokens bigint, cache_read_tokens bigint, cache_write_tokens bigint, "
    "cost_nanos bigint) ON COMMIT DELETE ROWS")
#: rows go in in key order, so two ingests at once take their locks in one order
_PG_INSERT = (f"INSERT INTO usage_events ({_LIST}) SELECT {_LIST} FROM {_STAGE} "
              f"ORDER BY organization_id, id ON CONFLICT {_KEY} DO NOTHING")
_PG_UPSERT = (
    f"WITH written AS (INSERT INTO usage_events ({_LIST}) SELECT {_LIST} FROM {_STAGE} "
    f"ORDER BY organization_id, id ON CONFLICT {_KEY} DO UPDATE SET {_SET} "
    f"WHERE ({', '.join('usage_events.' + c for c in _VALUES)}) IS DISTINCT FROM "
    f"({', '.join('excluded.' + c for c in _VALUES)}) "
    # xmax is 0 on a row version this statement inserted, the updater's id on one it updated
    "RETURNING (xmax = 0) AS fresh) "
    "SELECT count(*) FILTER (WHERE fresh), count(*) FILTER (WHERE NOT fresh) FROM written")


def _stage(conn: Connection, rows: Rows) -> Any:
    """COPY the rows into the (emptied at each commit) staging table; the raw cursor."""
    cursor = _driver(conn).cursor()
    try:
        cursor.execute(_CREATE_STAGE)
        with cursor.copy(f"COPY {_STAGE} ({_LIST}) FROM STDIN") as copy:
            write = copy.write_row
            for row in rows:
                write(row)
    except BaseException:
        cursor.close()
        raise
    return cursor


def _postgres_insert(conn: Connection, rows: Rows) -> tuple[int, int]:
    with _stage(conn, rows) as cursor:  # emptied by the commit, or by the rollback
        cursor.execute(_PG_INSERT)
        return int(cursor.rowcount), 0


def _postgres_replace(conn: Connection, rows: Rows) -> tuple[int, int]:
    # one row per key: ON CONFLICT DO UPDATE may not touch a row twice in one statement
    with _stage(conn, list(_last_of_each(rows).values())) as cursor:
        inserted, replaced = cursor.execute(_PG_UPSERT).fetchone()
        return int(inserted), int(replaced)
