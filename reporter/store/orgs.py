"""Organizations and members: look up, create and change them, safely from many processes.

Creating is insert-or-ignore (``ON CONFLICT DO NOTHING``) and then a read, so two
processes that create the same organization, user or membership at once both succeed.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine, func, select, update

from reporter import addresses, money, periods
from reporter.errors import ReporterError, StoreError
from reporter.store import db
from reporter.store.schema import (
    NAME_LENGTH,
    ROLES,
    memberships,
    organizations,
    usage_events,
    users,
)

log = logging.getLogger(__name__)

#: the longest organization slug (the column holds more, for slugs made before the rule)
SLUG_MAX = 100
SLUG_RULE = (f"lowercase letters a-z, digits, '-', '_' and '.', starting with a letter or "
             f"a digit, at most {SLUG_MAX} characters")
_SLUG = re.compile(rf"[a-z0-9][a-z0-9._-]{{0,{SLUG_MAX - 1}}}", re.ASCII)
#: characters no stored text may hold: NUL (PostgreSQL refuses it) and lone surrogates
_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")


@dataclass(frozen=True)
class OrgInfo:
    """An organization as reports see it."""

    id: int
    slug: str
    name: str
    timezone: str
    monthly_budget_nanos: int | None = None  # None: no budget


@dataclass(frozen=True)
class MemberInfo:
    """A member of one organization: the name and role are that organization's."""

    user_id: int
    email: str
    name: str | None
    role: str
    active: bool
    monthly_budget_nanos: int | None = None  # None: no budget


#: the largest monthly budget, in USD (far inside a 64-bit integer of nano-dollars)
MAX_BUDGET_USD = 1_000_000_000
#: what ``--monthly-budget`` takes to clear a budget
NO_BUDGET = "none"


def parse_budget(text: str, what: str = "monthly budget") -> int | None:
    """A monthly budget in nano-dollars from ``5000``, ``5000.00`` or ``1234.5`` (read by
    ``money.parse_usd``, the one rule for amounts): exact, at most 9 decimal places, more
    than 0; ``none`` clears it (None). ReporterError says what is wrong."""
    raw = text.strip()
    if raw.lower() == NO_BUDGET:
        return None
    too_large = ReporterError(f"{what} {text!r} is more than {MAX_BUDGET_USD:,} USD")
    try:
        nanos = money.parse_usd(raw, what=what, below=Decimal(MAX_BUDGET_USD) * 10)
    except money.AmountError as exc:
        if exc.kind == "places":
            raise ReporterError(str(exc)) from None
        if exc.kind == "large":
            raise too_large from None
        raise ReporterError(f"{what} {text!r} is not an amount in USD (like 5000.00) or "
                            f"'{NO_BUDGET}'") from None
    if nanos <= 0:
        raise ReporterError(f"{what} {text!r} must be more than 0 ('{NO_BUDGET}' clears it)")
    if nanos > MAX_BUDGET_USD * money.NANOS_PER_USD:
        raise too_large
    return nanos


def is_slug(text: str) -> bool:
    """Whether ``text`` is a valid organization slug."""
    return _SLUG.fullmatch(text) is not None


def check_slug(slug: str) -> str:
    """The slug, or ReporterError naming the rule it breaks."""
    cleaned = slug.strip()
    if not cleaned:
        raise ReporterError("organization slug is empty")
    if not is_slug(cleaned):
        shown = repr(cleaned if len(cleaned) <= 60 else cleaned[:60] + "...")
        raise ReporterError(f"{shown} is not a valid organization slug ({SLUG_RULE})")
    return cleaned


def check_name(name: str, what: str = "name") -> str:
    """A display name that every database can store, or ReporterError saying why not."""
    if len(name) > NAME_LENGTH:
        raise ReporterError(f"{what} is longer than {NAME_LENGTH} characters")
    if _UNSTORABLE.search(name):
        raise ReporterError(f"{what} {name!r} holds a NUL character or a lone surrogate")
    if any(unicodedata.category(c) == "Cc" for c in name):
        raise ReporterError(f"{what} {name!r} holds a control character (a line break, an "
                            f"escape sequence): names are shown on one line")
    return name


def _insert_ignore(conn: Connection, table: Any, values: dict[str, Any],
                   keys: list[str]) -> Any:
    """INSERT ... ON CONFLICT (keys) DO NOTHING on PostgreSQL and SQLite."""
    return db.upsert(conn, table).values(values).on_conflict_do_nothing(index_elements=keys)


def ensure_org(conn: Connection, slug: str, name: str | None = None,
               timezone: str = "UTC") -> tuple[int, bool]:
    """The id of organization ``slug`` (a checked slug), created if missing; and whether
    this call created it."""
    found = conn.scalar(select(organizations.c.id).where(organizations.c.slug == slug))
    if found is not None:
        return found, False
    created: int | None = conn.scalar(_insert_ignore(
        conn, organizations, {"slug": slug, "name": name or slug, "timezone": timezone},
        ["slug"]).returning(organizations.c.id))
    if created is not None:
        log.info("created organization %s", slug)
        return created, True
    found = conn.execute(
        select(organizations.c.id).where(organizations.c.slug == slug)).scalar_one()
    return int(found), False


def ensure_user(conn: Connection, email: str) -> int:
    """The id of the user with this (normalized) email, created if missing."""
    found = conn.scalar(select(users.c.id).where(users.c.email == email))
    if found is not None:
        return int(found)
    created: int | None = conn.scalar(
        _insert_ignore(conn, users, {"email": email}, ["email"]).returning(users.c.id))
    if created is not None:
        return created
    return int(conn.execute(select(users.c.id).where(users.c.email == email)).scalar_one())


def ensure_membership(conn: Connection, org_id: int, user_id: int, role: str = "member",
                      name: str | None = None) -> bool:
    """Make the user a member (role ``role``) unless they already are one; whether this call
    created the membership."""
    exists = conn.scalar(select(memberships.c.role).where(
        memberships.c.organization_id == org_id, memberships.c.user_id == user_id))
    if exists is not None:
        return False
    created = conn.execute(_insert_ignore(
        conn, memberships, {"organization_id": org_id, "user_id": user_id, "role": role,
                           "name": name}, ["organization_id", "user_id"])).rowcount
    return bool(created)


def _info(row: Any) -> OrgInfo:
    return OrgInfo(row.id, row.slug, row.name, row.timezone, row.monthly_budget_nanos)


_ORG_COLUMNS = (organizations.c.id, organizations.c.slug, organizations.c.name,
                organizations.c.timezone, organizations.c.monthly_budget_nanos)


def get_org(engine: Engine, slug: str) -> OrgInfo:
    """The organization ``slug``; StoreError when there is none."""
    with engine.connect() as conn:
        row = conn.execute(select(*_ORG_COLUMNS).where(organizations.c.slug == slug)).first()
    if row is None:
        raise StoreError(f"unknown organization {slug!r}")
    return _info(row)


def list_orgs(engine: Engine) -> list[OrgInfo]:
    """Every organization, by slug."""
    with engine.connect() as conn:
        rows = conn.execute(select(*_ORG_COLUMNS).order_by(organizations.c.slug))
        return [_info(r) for r in rows]


#: what a new organization gets when nothing else is said (ingest, sync, ``member set``)
DEFAULT_TIMEZONE = "UTC"
#: the role a new member gets when nothing else is said
DEFAULT_ROLE = "member"
#: told what was created: ``created organization acme``, ``created member a@b.c in acme``
Announce = Callable[[str], None]


def _quiet(_message: str) -> None:
    """An Announce that says nothing."""


def set_org(engine: Engine, slug: str, *, name: str | None = None,
            timezone: str | None = None, monthly_budget: str | None = None,
            announce: Announce = _quiet) -> OrgInfo:
    """Create or change an organization; a new one defaults to its slug as name and UTC
    (and ``announce`` is told). ``monthly_budget`` is the text of an amount (``5000.00``) or
    ``none`` to clear it."""
    slug = check_slug(slug)
    if timezone is not None:
        periods.zone(timezone)
    if name is not None:
        check_name(name)
    changes: dict[str, Any] = {}
    if monthly_budget is not None:
        changes["monthly_budget_nanos"] = parse_budget(monthly_budget)
    with engine.begin() as conn:
        org_id, created = ensure_org(conn, slug, name, timezone or DEFAULT_TIMEZONE)
        changes.update({k: v for k, v in (("name", name), ("timezone", timezone))
                        if v is not None and not created})
        if changes:
            conn.execute(update(organizations).where(organizations.c.id == org_id).values(changes))
        info = _info(conn.execute(select(*_ORG_COLUMNS).where(organizations.c.id == org_id)).one())
    if created:
        announce(f"created organization {slug}")
    return info


def set_member(engine: Engine, slug: str, email: str, *, role: str | None = None,
               name: str | None = None, monthly_budget: str | None = None,
               announce: Announce = _quiet) -> MemberInfo:
    """Create or change a member of an organization (creating either as needed, and telling
    ``announce``); the name is this organization's name for them, other organizations keep
    theirs. ``monthly_budget`` is the text of an amount (``500``) or ``none`` to clear it."""
    if role is not None and role not in ROLES:
        raise ReporterError(f"unknown role {role!r} (one of: {', '.join(ROLES)})")
    email = addresses.normalize(email)
    slug = check_slug(slug)
    if name is not None:
        check_name(name)
    budget: dict[str, Any] = {}
    if monthly_budget is not None:
        budget["monthly_budget_nanos"] = parse_budget(monthly_budget)
    with engine.begin() as conn:
        org_id, org_created = ensure_org(conn, slug)
        user_id = ensure_user(conn, email)
        changes: dict[str, Any] = dict(budget)
        member_created = ensure_membership(conn, org_id, user_id, role or DEFAULT_ROLE, name)
        if not member_created:
            changes["removed_at"] = None
            if role is not None:
                changes["role"] = role
            if name is not None:
                changes["name"] = name
        if changes:
            conn.execute(update(memberships).where(
                memberships.c.organization_id == org_id, memberships.c.user_id == user_id)
                .values(changes))
        row = conn.execute(select(memberships.c.role, memberships.c.name,
                                  memberships.c.monthly_budget_nanos).where(
            memberships.c.organization_id == org_id, memberships.c.user_id == user_id)).one()
    if org_created:
        announce(f"created organization {slug}")
    if member_created:
        announce(f"created member {email} in {slug}")
    return MemberInfo(user_id, email, row.name, row.role, True, row.monthly_budget_nanos)


def remove_member(engine: Engine, slug: str, email: str, now: datetime | None = None) -> None:
    """Mark a member as gone: their usage stays in reports, they receive nothing."""
    email = addresses.normalize(email)
    org_id = get_org(engine, slug).id
    with engine.begin() as conn:
        user_id = conn.scalar(select(users.c.id).where(users.c.email == email))
        done = 0
        if user_id is not None:
            done = conn.execute(update(memberships).where(
                memberships.c.organization_id == org_id, memberships.c.user_id == user_id)
                .values(removed_at=now or datetime.now(UTC))).rowcount
        if not done:
            raise StoreError(f"{email} is not a member of {slug!r}")


def members(engine: Engine, org_id: int, *, include_removed: bool = False) -> list[MemberInfo]:
    """The members of an organization by email (present ones, or all)."""
    query = (select(users.c.id, users.c.email, memberships.c.name, memberships.c.role,
                    memberships.c.removed_at, memberships.c.monthly_budget_nanos)
             .join(memberships, memberships.c.user_id == users.c.id)
             .where(memberships.c.organization_id == org_id).order_by(users.c.email))
    out = []
    with engine.connect() as conn:
        for user_id, email, name, role, removed_at, budget in conn.execute(query):
            active = removed_at is None
            if active or include_removed:
                out.append(MemberInfo(user_id, email, name, role, active, budget))
    return out


def get_member(engine: Engine, org: OrgInfo, email: str) -> MemberInfo:
    """A member of ``org`` (present or removed) by email; StoreError when unknown."""
    wanted = addresses.normalize(email)
    for member in members(engine, org.id, include_removed=True):
        if member.email == wanted:
            return member
    raise StoreError(f"{email} is not a member of {org.slug!r}")


def first_event_date(engine: Engine, org: OrgInfo, user_id: int | None = None) -> date | None:
    """The calendar date (in the organization's timezone) of its first usage event."""
    query = select(func.min(usage_events.c.ts_us)).where(usage_events.c.organization_id == org.id)
    if user_id is not None:
        query = query.where(usage_events.c.user_id == user_id)
    with engine.connect() as conn:
        first = conn.scalar(query)
    if first is None:
        return None
    instant = datetime.fromtimestamp(first / 1_000_000, UTC)
    return periods.local_date(instant, periods.zone(org.timezone))
