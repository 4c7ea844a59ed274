"""GROUP BY queries with exact sums, fetched or streamed; the members' shares read in order.

The (day, model, member) groups of a long period outnumber what a reader needs at once
(a year of 50 members and 10 models: about 170,000). The report is built from one streamed
pass over them (``read_sums``), and a renderer that lists every group gets them again,
streamed in the report's order, from ``StoredShares``: memory holds a day's groups, never
the period's.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from itertools import groupby
from typing import Any

from sqlalchemy import BigInteger, Connection, Engine, cast, func, literal, select
from sqlalchemy.exc import DataError, DBAPIError, OperationalError
from sqlalchemy.sql.elements import ColumnElement

from reporter import money
from reporter.errors import RenderError
from reporter.report.model import MemberShares, MemberUsage, ModelDayRow
from reporter.store.schema import usage_events

log = logging.getLogger(__name__)

E = usage_events.c
EPOCH = date(1970, 1, 1)
_SUMMED = (E.cost_nanos, E.input_tokens, E.output_tokens, E.cache_read_tokens,
           E.cache_write_tokens)
#: the exact sums add the high and the low 32 bits of each value apart
_HALF = 2**32
#: rows fetched at a time from a streamed query (a server-side cursor on PostgreSQL)
BATCH = 2000
#: nano-dollars of one unit of the last decimal place shown, by places (index 0 to 9)
_UNIT = [10 ** (money.MAX_DECIMALS - places) for places in range(money.MAX_DECIMALS + 1)]
#: no amount seen yet (larger than any sum of a group)
_NONE = 1 << 127


def _sums() -> list[Any]:
    """The six sums, cast so that every database hands back Python ints."""
    return [
        cast(func.sum(E.cost_nanos), BigInteger), func.count(),
        *(cast(func.sum(column), BigInteger) for column in _SUMMED[1:]),
    ]


def _halves() -> list[Any]:
    return [cast(func.sum(part), BigInteger) for column in _SUMMED
            for part in (column // literal(_HALF, BigInteger),
                         column % literal(_HALF, BigInteger))]


def overflowed(exc: DBAPIError) -> bool:
    """Whether a query failed because a sum outgrew a 64-bit integer."""
    text = str(exc.orig).lower()
    return "overflow" in text or "out of range" in text


def stream(conn: Connection, keys: list[Any], where: list[Any], *,
           halves: bool = False) -> Iterator[tuple[Any, ...]]:
    """``(*keys, cost, requests, input, output, cache_read, cache_write)`` per group, in the
    order of ``keys``, fetched ``BATCH`` rows at a time.

    ``halves`` sums the high and the low 32 bits of each value apart, for sums that outgrow
    a 64-bit integer (SQLite raises "integer overflow", PostgreSQL "bigint out of range").
    """
    options = conn.execution_options(yield_per=BATCH)
    if not halves:
        query = select(*keys, *_sums()).where(*where).group_by(*keys).order_by(*keys)
        for row in options.execute(query):
            yield tuple(row)
        return
    query = select(*keys, func.count(), *_halves()).where(*where).group_by(*keys)
    n = len(keys)
    for r in options.execute(query.order_by(*keys)):
        sums = [r[n + 1 + 2 * i] * _HALF + r[n + 2 + 2 * i] for i in range(len(_SUMMED))]
        yield (*r[:n], sums[0], r[n], *sums[1:])


def grouped(conn: Connection, keys: list[Any], where: list[Any]) -> list[tuple[Any, ...]]:
    """Every group of ``stream`` in a list, summed exactly whatever their size (for
    queries whose groups are few: projects, members, models)."""
    try:
        return list(stream(conn, keys, where))
    except (OperationalError, DataError) as exc:
        if not overflowed(exc):
            raise
        conn.rollback()
    return list(stream(conn, keys, where, halves=True))


@dataclass
class Sums:
    """The (day, model, member) groups summed three ways, without holding the groups:
    by model-day (with its number of members), by member-day and by member-model. Each
    value is a list ``[cost, requests, input, output, cache_read, cache_write]`` (plus the
    member count for a model-day), not Metrics: the loop runs once per group, and
    Metrics.add_values there made it 2.5 times slower (docs/PERFORMANCE.md, report)."""

    model_days: dict[tuple[int, str], list[int]] = field(default_factory=dict)
    day_members: dict[tuple[int, int], list[int]] = field(default_factory=dict)
    member_models: dict[tuple[int, str], list[int]] = field(default_factory=dict)
    #: decimal places the groups' own amounts need
    places: int = 2
    #: whether the sums needed the exact 32-bit halves (see ``stream``)
    halves: bool = False
    #: the smallest non-zero amount of a group (0: none)
    smallest: int = 0

    def add(self, rows: Iterator[tuple[Any, ...]]) -> None:
        """Sum every group of ``rows`` (day number, model, user id and the six sums)."""
        model_days, day_members = self.model_days, self.day_members
        member_models = self.member_models
        places, unit = self.places, _UNIT[self.places]
        smallest = self.smallest or _NONE
        for day_number, model, uid, c, r, i, o, cr, cw in rows:
            if c % unit:
                places = money.places_needed([c], places)
                unit = _UNIT[places]
            if c < smallest and c:
                smallest = c
            acc = model_days.get((day_number, model))
            if acc is None:
                model_days[(day_number, model)] = [c, r, i, o, cr, cw, 1]
            else:
                acc[0] += c
                acc[1] += r
                acc[2] += i
                acc[3] += o
                acc[4] += cr
                acc[5] += cw
                acc[6] += 1
            for sums, group in ((day_members, (day_number, uid)),
                                (member_models, (uid, model))):
                acc = sums.get(group)
                if acc is None:
                    sums[group] = [c, r, i, o, cr, cw]
                else:
                    acc[0] += c
                    acc[1] += r
                    acc[2] += i
                    acc[3] += o
                    acc[4] += cr
                    acc[5] += cw
        self.places = places
        self.smallest = 0 if smallest == _NONE else smallest


def read_sums(conn: Connection, day: ColumnElement[int], where: list[Any]) -> Sums:
    """One streamed pass over the (day, model, member) groups, summed (``Sums``)."""
    keys = [day, E.model, E.user_id]
    try:
        sums = Sums()
        sums.add(stream(conn, keys, where))
        return sums
    except (OperationalError, DataError) as exc:
        if not overflowed(exc):
            raise
        conn.rollback()
    sums = Sums(halves=True)
    sums.add(stream(conn, keys, where, halves=True))
    return sums


def _order(member: MemberUsage) -> tuple[int, str]:
    return (-member.cost_nanos, member.email)


class StoredShares(MemberShares):
    """The members' shares of each By Model & Day row, read again from the database, in
    order, each time they are asked for (one day's groups in memory at a time).

    Every row's shares are checked against the row: usage stored for the period after the
    report was built (a late ingest or sync) is a RenderError, never a table whose rows
    disagree with its totals.
    """

    def __init__(self, engine: Engine, day: ColumnElement[int], where: list[Any],
                 people: Mapping[int, tuple[str, str | None]], *, places: int, halves: bool,
                 what: str, smallest: int = 0) -> None:
        super().__init__()
        self.places, self.smallest = places, smallest
        self._engine, self._day, self._where = engine, day, where
        self._people, self._halves, self._what = people, halves, what

    def _changed(self, where: str) -> RenderError:
        return RenderError(f"the usage of {self._what} changed while its report was being "
                           f"written ({where}); generate the report again")

    def lists(self, rows: Sequence[ModelDayRow]) -> Iterator[list[MemberUsage]]:
        """The members of each row of ``rows`` (the report's By Model & Day, in its order),
        largest cost first."""
        people = self._people
        with self._engine.connect() as conn:
            groups = stream(conn, [self._day, E.model, E.user_id], self._where,
                            halves=self._halves)
            pending = next(groups, None)
            for day, day_rows in groupby(rows, key=lambda row: row.date):
                number = (day - EPOCH).days
                found: dict[str, list[MemberUsage]] = {}
                while pending is not None and pending[0] <= number:
                    if pending[0] < number:
                        raise self._changed(f"usage on {EPOCH + timedelta(days=pending[0])}")
                    _, model, uid, c, r, i, o, cr, cw = pending
                    email, name = people[uid]
                    found.setdefault(model, []).append(
                        MemberUsage(c, r, i, o, cr, cw, email, name))
                    pending = next(groups, None)
                for row in day_rows:
                    members = found.pop(row.model, [])
                    members.sort(key=_order)
                    self._check(row, members)
                    yield members
                if found:
                    raise self._changed(f"model {next(iter(found))!r} on {day}")
            if pending is not None:
                raise self._changed(f"usage on {EPOCH + timedelta(days=pending[0])}")

    def _check(self, row: ModelDayRow, members: list[MemberUsage]) -> None:
        sums = [0] * 6
        for m in members:
            sums[0] += m.cost_nanos
            sums[1] += m.requests
            sums[2] += m.input_tokens
            sums[3] += m.output_tokens
            sums[4] += m.cache_read_tokens
            sums[5] += m.cache_write_tokens
        if len(members) != row.users or sums != [
                row.cost_nanos, row.requests, row.input_tokens, row.output_tokens,
                row.cache_read_tokens, row.cache_write_tokens]:
            raise self._changed(f"model {row.model!r} on {row.date}")
