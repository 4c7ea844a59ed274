"""Removing an organization and everything of it: its usage events, its members, its run
ledger rows, and the users who belong to no other organization and have no usage left.

Counting and deleting read the same tables, so what ``org remove`` shows without ``--yes``
is what it deletes with it. The deletion is one transaction: it happens whole or not at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, Select, delete, exists, func, select

from reporter.errors import StoreError
from reporter.store.schema import memberships, organizations, runs, usage_events, users


@dataclass(frozen=True)
class Removal:
    """What removing one organization deletes (or deleted)."""

    slug: str
    events: int
    members: int
    runs: int
    users: int

    def describe(self) -> str:
        """``4,210 usage events, 3 members, 12 run records, 1 user``."""
        def counted(value: int, word: str) -> str:
            return f"{value:,} {word}{'' if value == 1 else 's'}"

        return (f"{counted(self.events, 'usage event')}, {counted(self.members, 'member')}, "
                f"{counted(self.runs, 'run record')}, {counted(self.users, 'user')} in no "
                f"other organization")


def _org_id(conn: Connection, slug: str) -> int:
    found: int | None = conn.scalar(select(organizations.c.id).where(organizations.c.slug == slug))
    if found is None:
        raise StoreError(f"unknown organization {slug!r}")
    return found


def _lonely_users(org_id: int) -> Select[Any]:
    """The users of this organization who are in no other one and have no usage elsewhere."""
    other_member = exists().where(memberships.c.user_id == users.c.id,
                                  memberships.c.organization_id != org_id)
    other_usage = exists().where(usage_events.c.user_id == users.c.id,
                                 usage_events.c.organization_id != org_id)
    in_org = (select(memberships.c.user_id).where(memberships.c.organization_id == org_id)
              .union(select(usage_events.c.user_id).where(usage_events.c.organization_id == org_id)
                     .distinct()))
    return select(users.c.id).where(users.c.id.in_(in_org), ~other_member, ~other_usage)


def _count(conn: Connection, org_id: int, slug: str) -> Removal:
    def scalar(query: Select[Any]) -> int:
        return int(conn.scalar(query) or 0)

    lonely = _lonely_users(org_id)
    return Removal(
        slug=slug,
        events=scalar(select(func.count()).select_from(usage_events)
                      .where(usage_events.c.organization_id == org_id)),
        members=scalar(select(func.count()).select_from(memberships)
                       .where(memberships.c.organization_id == org_id)),
        runs=scalar(select(func.count()).select_from(runs).where(runs.c.organization == slug)),
        users=scalar(select(func.count()).select_from(lonely.subquery())),
    )


def preview(engine: Engine, slug: str) -> Removal:
    """What ``remove`` would delete, deleting nothing; StoreError for an unknown slug."""
    with engine.connect() as conn:
        return _count(conn, _org_id(conn, slug), slug)


def remove(engine: Engine, slug: str) -> Removal:
    """Delete the organization and everything of it in one transaction; what was deleted."""
    with engine.begin() as conn:
        org_id = _org_id(conn, slug)
        counted = _count(conn, org_id, slug)
        lonely = [row[0] for row in conn.execute(_lonely_users(org_id))]
        conn.execute(delete(usage_events).where(usage_events.c.organization_id == org_id))
        conn.execute(delete(memberships).where(memberships.c.organization_id == org_id))
        conn.execute(delete(runs).where(runs.c.organization == slug))
        for start in range(0, len(lonely), 500):
            conn.execute(delete(users).where(users.c.id.in_(lonely[start:start + 500])))
        conn.execute(delete(organizations).where(organizations.c.id == org_id))
    return counted
