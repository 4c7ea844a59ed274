"""A leader lease in the database: one scheduler instance schedules, the others stand by."""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from reporter.store.schema import leases

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    """The current time, aware, in UTC (the default clock)."""
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """The same instant, aware and in UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def holder_id() -> str:
    """Who this process is, for the lease table and the logs."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Lease:
    """A named lease held by one holder until ``expires_at``; renewing extends it.

    ``acquire`` takes the lease when it is free or expired and renews it when this holder
    has it; a holder that stops renewing (``kill -9``) loses it after ``seconds``.
    """

    def __init__(self, engine: Engine, *, seconds: float, name: str = "scheduler",
                 holder: str | None = None, clock: Clock = utcnow) -> None:
        self.engine = engine
        self.seconds = seconds
        self.name = name
        self.holder = holder or holder_id()
        self.clock = clock

    def acquire(self) -> bool:
        """Take or renew the lease; True when this holder has it until now + seconds."""
        now = as_utc(self.clock())
        expires = now + timedelta(seconds=self.seconds)
        with self.engine.begin() as conn:
            taken = conn.execute(
                update(leases)
                .where(leases.c.name == self.name,
                       or_(leases.c.holder == self.holder, leases.c.expires_at < now))
                .values(holder=self.holder, expires_at=expires))
            if taken.rowcount:
                return True
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(leases).values(name=self.name, holder=self.holder,
                                                   expires_at=expires))
        except IntegrityError:
            return False
        return True

    def release(self) -> None:
        """Give the lease up so a standby can take over at once."""
        with self.engine.begin() as conn:
            conn.execute(update(leases)
                         .where(leases.c.name == self.name, leases.c.holder == self.holder)
                         .values(expires_at=as_utc(self.clock()) - timedelta(seconds=1)))

    def current(self) -> tuple[str, datetime] | None:
        """The holder and expiry on record, if any."""
        with self.engine.connect() as conn:
            row = conn.execute(select(leases.c.holder, leases.c.expires_at)
                               .where(leases.c.name == self.name)).first()
        return None if row is None else (row.holder, row.expires_at)
