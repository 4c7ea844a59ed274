"""Aggregation: GROUP BY queries in the database, rolled up into the report model."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, case, func, literal, select
from sqlalchemy.sql.elements import ColumnElement

from . import periods, store
from .models import Membership, UsageEvent, User
from .periods import Period
from .report import (
    DailyPoint,
    DayRow,
    MemberRow,
    MemberUsage,
    Metrics,
    ModelDayRow,
    ModelRow,
    OrgRef,
    ProjectRow,
    Report,
    Summary,
)

US_PER_DAY = 86_400 * 1_000_000
EPOCH = date(1970, 1, 1)
E = UsageEvent.__table__.c


def _sums() -> list[Any]:
    return [
        func.sum(E.cost_nanos), func.count(), func.sum(E.input_tokens),
        func.sum(E.output_tokens), func.sum(E.cache_read_tokens), func.sum(E.cache_write_tokens),
    ]


def local_day(period: Period) -> ColumnElement[int]:
    """SQL for the event's calendar day in the period's timezone, as days since 1970-01-01.

    The UTC offset is piecewise constant over the period, so a CASE over the (few)
    DST transitions turns each timestamp into local time without any timezone support
    in the database.
    """
    segments = periods.offset_segments(period)
    if len(segments) == 1:
        offset: ColumnElement[int] = literal(segments[0][1] * 1_000_000)
    else:
        whens = [(E.ts_us < start * 1_000_000, prev_offset * 1_000_000)
                 for (start, _), (_, prev_offset) in zip(segments[1:], segments, strict=False)]
        offset = case(*whens, else_=segments[-1][1] * 1_000_000)
    return ((E.ts_us + offset) / US_PER_DAY).label("day")


def _where(org_id: int, period: Period, user_id: int | None) -> list[Any]:
    clauses = [
        E.organization_id == org_id,
        E.ts_us >= int(period.start.timestamp()) * 1_000_000,
        E.ts_us < int(period.end.timestamp()) * 1_000_000,
    ]
    if user_id is not None:
        clauses.append(E.user_id == user_id)
    return clauses


def _values(row: Any, first: int) -> tuple[int, int, int, int, int, int]:
    return (int(row[first]), int(row[first + 1]), int(row[first + 2]), int(row[first + 3]),
            int(row[first + 4]), int(row[first + 5]))


def _order(metrics: Metrics, name: str | None) -> tuple[int, str]:
    return (-metrics.cost_nanos, name or "")


def build(engine: Engine, org_slug: str, period: Period, *, member: str | None = None,
          now: datetime | None = None) -> Report:
    """The report of one organization over ``period``: the whole team, or one member's own."""
    org = store.get_org(engine, org_slug)
    user_id = None
    member_name = None
    if member is not None:
        info = store.get_member(engine, org, member)
        user_id, member, member_name = info.user_id, info.email, info.name
    where = _where(org.id, period, user_id)
    day = local_day(period)

    with engine.connect() as conn:
        people = {uid: (email, name) for uid, email, name in conn.execute(
            select(User.id, User.email, User.name).join(Membership, Membership.user_id == User.id)
            .where(Membership.organization_id == org.id))}
        model_rows = conn.execute(
            select(day, E.model, E.user_id, *_sums()).where(*where)
            .group_by(day, E.model, E.user_id)).all()
        project_rows = conn.execute(
            select(E.project, E.user_id, *_sums()).where(*where)
            .group_by(E.project, E.user_id)).all()

    def person(uid: int) -> tuple[str, str | None]:
        return people.get(uid, (f"user-{uid}", None))

    model_days: dict[tuple[int, str], ModelDayRow] = {}
    day_members: dict[tuple[int, int], MemberUsage] = {}
    member_models: dict[tuple[int, str], Metrics] = {}
    models: dict[str, ModelRow] = {}
    model_users: dict[str, set[int]] = defaultdict(set)
    for row in model_rows:
        day_number, model, uid = int(row[0]), row[1], row[2]
        values = _values(row, 3)
        email, name = person(uid)
        key = (day_number, model)
        model_day = model_days.get(key)
        if model_day is None:
            model_day = model_days[key] = ModelDayRow(
                date=EPOCH + timedelta(days=day_number), model=model)
        usage = MemberUsage(email=email, name=name)
        usage.add_values(values)
        model_day.add_values(values)
        model_day.members.append(usage)
        share = day_members.get((day_number, uid))
        if share is None:
            share = day_members[(day_number, uid)] = MemberUsage(email=email, name=name)
        share.add_values(values)
        member_models.setdefault((uid, model), Metrics()).add_values(values)
        total = models.get(model)
        if total is None:
            total = models[model] = ModelRow(model=model)
        total.add_values(values)
        model_users[model].add(uid)

    days: dict[int, DayRow] = {}
    member_totals: dict[int, MemberRow] = {}
    for (day_number, uid), share in day_members.items():
        day_row = days.get(day_number)
        if day_row is None:
            day_row = days[day_number] = DayRow(date=EPOCH + timedelta(days=day_number))
        day_row.add(share)
        day_row.members.append(share)
        totals = member_totals.get(uid)
        if totals is None:
            totals = member_totals[uid] = MemberRow(email=share.email, name=share.name)
        totals.add(share)
        totals.active_days += 1

    best: dict[int, tuple[tuple[int, int, str], str]] = {}
    for (uid, model), metrics in member_models.items():
        rank = (-metrics.cost_nanos, -metrics.requests, model)
        if uid not in best or rank < best[uid][0]:
            best[uid] = (rank, model)
    for uid, totals in member_totals.items():
        totals.top_model = best[uid][1] if uid in best else None

    projects: dict[str | None, ProjectRow] = {}
    for row in project_rows:
        project = row[0] if row[0] not in ("",) else None
        entry = projects.get(project)
        if entry is None:
            entry = projects[project] = ProjectRow(project=project)
        entry.add_values(_values(row, 2))
        entry.users += 1

    summary = Summary(active_users=len(member_totals))
    for day_row in days.values():
        day_row.users = len(day_row.members)
        day_row.members.sort(key=lambda m: _order(m, m.email))
        summary.add(day_row)
    for model_day in model_days.values():
        model_day.users = len(model_day.members)
        model_day.members.sort(key=lambda m: _order(m, m.email))
    for model, total in models.items():
        total.users = len(model_users[model])

    by_day = sorted(days.values(), key=lambda r: r.date)
    daily = []
    for current in period.dates():
        number = (current - EPOCH).days
        found = days.get(number)
        daily.append(DailyPoint(current, found.cost_nanos if found else 0,
                                found.requests if found else 0, found.tokens if found else 0))
    return Report(
        organization=OrgRef(org.slug, org.name, org.timezone),
        period=period,
        member=member,
        member_name=member_name,
        generated_at=now or datetime.now(UTC),
        summary=summary,
        by_day=by_day,
        by_model_day=sorted(model_days.values(),
                            key=lambda r: (r.date, -r.cost_nanos, r.model)),
        by_project=sorted(projects.values(), key=lambda r: _order(r, r.project)),
        by_member=sorted(member_totals.values(), key=lambda r: _order(r, r.email)),
        by_model=sorted(models.values(), key=lambda r: _order(r, r.model)),
        daily=daily,
    )


def resolve_period(engine: Engine, org_slug: str, name: str | None, as_of: datetime, *,
                   first: date | None = None, last: date | None = None,
                   member: str | None = None) -> Period:
    """The period ``name`` (or ``first..last``) for an organization, in its timezone."""
    org = store.get_org(engine, org_slug)
    earliest = None
    if name == "all":
        user_id = store.get_member(engine, org, member).user_id if member else None
        earliest = store.first_event_date(engine, org, user_id)
    return periods.resolve(name, org.timezone, as_of.astimezone(UTC), first=first, last=last,
                           earliest=earliest)
