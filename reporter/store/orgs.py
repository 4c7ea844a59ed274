"""Organizations and members: look up, create and change them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from reporter import periods
from reporter.errors import ReporterError, StoreError
from reporter.store.schema import ROLES, Membership, Organization, UsageEvent, User


@dataclass(frozen=True)
class OrgInfo:
    id: int
    slug: str
    name: str
    timezone: str


@dataclass(frozen=True)
class MemberInfo:
    user_id: int
    email: str
    name: str | None
    role: str
    active: bool


def _info(org: Organization) -> OrgInfo:
    return OrgInfo(org.id, org.slug, org.name, org.timezone)


def normalize_email(email: str) -> str:
    cleaned = email.strip().lower()
    if "@" not in cleaned or cleaned.startswith("@") or cleaned.endswith("@") or " " in cleaned:
        raise ReporterError(f"{email!r} is not an email address")
    return cleaned


def check_slug(slug: str) -> str:
    cleaned = slug.strip()
    if not cleaned:
        raise ReporterError("organization slug is empty")
    return cleaned


def get_org(engine: Engine, slug: str) -> OrgInfo:
    with Session(engine) as session:
        org = session.scalar(select(Organization).where(Organization.slug == slug))
        if org is None:
            raise StoreError(f"unknown organization {slug!r}")
        return _info(org)


def list_orgs(engine: Engine) -> list[OrgInfo]:
    with Session(engine) as session:
        return [_info(o) for o in session.scalars(select(Organization).order_by(Organization.slug))]


def set_org(engine: Engine, slug: str, *, name: str | None = None,
            timezone: str | None = None) -> OrgInfo:
    """Create or change an organization; a new one defaults to its slug as name and UTC."""
    slug = check_slug(slug)
    if timezone is not None:
        periods.zone(timezone)
    with Session(engine) as session, session.begin():
        org = session.scalar(select(Organization).where(Organization.slug == slug))
        if org is None:
            org = Organization(slug=slug, name=name or slug, timezone=timezone or "UTC")
            session.add(org)
        else:
            if name is not None:
                org.name = name
            if timezone is not None:
                org.timezone = timezone
        session.flush()
        return _info(org)


def set_member(engine: Engine, slug: str, email: str, *, role: str | None = None,
               name: str | None = None) -> MemberInfo:
    """Create or change a member of an organization (creating either as needed)."""
    if role is not None and role not in ROLES:
        raise ReporterError(f"unknown role {role!r} (one of: {', '.join(ROLES)})")
    email = normalize_email(email)
    org_id = set_org(engine, slug).id
    with Session(engine) as session, session.begin():
        user = session.scalar(select(User).where(User.email == email))
        if user is None:
            user = User(email=email, name=name)
            session.add(user)
            session.flush()
        elif name is not None:
            user.name = name
        membership = session.get(Membership, (org_id, user.id))
        if membership is None:
            membership = Membership(organization_id=org_id, user_id=user.id,
                                    role=role or "member")
            session.add(membership)
        else:
            if role is not None:
                membership.role = role
            membership.removed_at = None
        return MemberInfo(user.id, user.email, user.name, membership.role, True)


def remove_member(engine: Engine, slug: str, email: str, now: datetime | None = None) -> None:
    """Mark a member as gone: their usage stays in reports, they receive nothing."""
    email = normalize_email(email)
    org_id = get_org(engine, slug).id
    with Session(engine) as session, session.begin():
        row = session.execute(
            select(Membership).join(User, User.id == Membership.user_id)
            .where(Membership.organization_id == org_id, User.email == email)
        ).scalar_one_or_none()
        if row is None:
            raise StoreError(f"{email} is not a member of {slug!r}")
        row.removed_at = now or datetime.now(UTC)


def members(engine: Engine, org_id: int, *, include_removed: bool = False) -> list[MemberInfo]:
    with Session(engine) as session:
        query = (select(User, Membership).join(Membership, Membership.user_id == User.id)
                 .where(Membership.organization_id == org_id).order_by(User.email))
        out = []
        for user, membership in session.execute(query):
            active = membership.removed_at is None
            if active or include_removed:
                out.append(MemberInfo(user.id, user.email, user.name, membership.role, active))
        return out


def get_member(engine: Engine, org: OrgInfo, email: str) -> MemberInfo:
    """A member of ``org`` (present or removed) by email; StoreError when unknown."""
    wanted = normalize_email(email)
    for member in members(engine, org.id, include_removed=True):
        if member.email == wanted:
            return member
    raise StoreError(f"{email} is not a member of {org.slug!r}")


def first_event_date(engine: Engine, org: OrgInfo, user_id: int | None = None) -> date | None:
    """The calendar date (in the organization's timezone) of its first usage event."""
    query = select(func.min(UsageEvent.ts_us)).where(UsageEvent.organization_id == org.id)
    if user_id is not None:
        query = query.where(UsageEvent.user_id == user_id)
    with Session(engine) as session:
        first = session.scalar(query)
    if first is None:
        return None
    instant = datetime.fromtimestamp(first / 1_000_000, UTC)
    return periods.local_date(instant, periods.zone(org.timezone))
