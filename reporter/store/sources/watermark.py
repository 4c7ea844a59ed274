"""How far each source was read: the newest (timestamp, id) whose page is in the store."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, and_, delete, or_, select

from reporter.store import db
from reporter.store.schema import source_watermarks as table


def get(engine: Engine, name: str) -> tuple[datetime, str] | None:
    """The source's watermark: the newest (timestamp, id) stored from it, or None."""
    with engine.connect() as conn:
        row = conn.execute(select(table.c.last_ts, table.c.last_id)
                           .where(table.c.name == name)).first()
    return None if row is None else (row[0], row[1])


def advance(engine: Engine, name: str, last: tuple[datetime, str], now: datetime) -> None:
    """Move the watermark forward to ``last``; never backward, whoever else syncs it."""
    statement = db.upsert(engine, table).values(name=name, last_ts=last[0], last_id=last[1],
                                             updated_at=now)
    newer = or_(table.c.last_ts < statement.excluded.last_ts,
                and_(table.c.last_ts == statement.excluded.last_ts,
                     table.c.last_id < statement.excluded.last_id))
    statement = statement.on_conflict_do_update(
        index_elements=[table.c.name],
        set_={"last_ts": statement.excluded.last_ts, "last_id": statement.excluded.last_id,
              "updated_at": statement.excluded.updated_at},
        where=newer)
    with engine.begin() as conn:
        conn.execute(statement)


def reset(engine: Engine, name: str) -> None:
    """Forget how far a source was read: its next sync reads it from the start."""
    with engine.begin() as conn:
        conn.execute(delete(table).where(table.c.name == name))
