"""Aggregation: GROUP BY queries in the database, rolled up into the report model."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, Engine, case, literal, select
from sqlalchemy.sql.elements import ColumnElement

from reporter import periods
from reporter.periods import Period
from reporter.report import compare, groups
from reporter.report.model import (
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
from reporter.store import orgs
from reporter.store.schema import memberships, usage_events, users

US_PER_DAY = 86_400 * 1_000_000
EPOCH = date(1970, 1, 1)
E = usage_events.c


#: ``(*keys, cost, requests, input, output, cache_read, cache_write)`` per group, exact
_grouped = groups.grouped


def local_day(period: Period) -> ColumnElement[int]:
    """SQL for the event's calendar day in the period's timezone, as days since 1970-01-01.

    The UTC offset is piecewise constant over the period, so a CASE over the (few)
    DST transitions turns each timestamp into local time without any timezone support
    in the database.
    """
    segments = periods.offset_segments(period)
    if len(segments) == 1:
        offset: ColumnElement[int] = literal(segments[0][1] * 1_000_000, BigInteger)
    else:
        whens = [(E.ts_us < start * 1_000_000, literal(prev_offset * 1_000_000, BigInteger))
                 for (start, _), (_, prev_offset) in zip(segments[1:], segments, strict=False)]
        offset = case(*whens, else_=literal(segments[-1][1] * 1_000_000, BigInteger))
    # ``//`` is integer division in SQL; ``/`` would be true division (a fractional "day")
    return ((E.ts_us + offset) // literal(US_PER_DAY, BigInteger)).label("day")


def in_period(org_id: int, period: Period) -> list[ColumnElement[bool]]:
    """The conditions of an organization's usage rows inside ``period``."""
    start, end = period.micros
    return [E.organization_id == org_id, E.ts_us >= start, E.ts_us < end]


def _where(org_id: int, period: Period, user_id: int | None) -> list[Any]:
    clauses: list[Any] = in_period(org_id, period)
    if user_id is not None:
        clauses.append(E.user_id == user_id)
    return clauses


class _People(dict[int, tuple[str, str | None]]):
    """Members' email and name by user id (a placeholder for an id with no user row)."""

    def __missing__(self, uid: int) -> tuple[str, str | None]:
        return (f"user-{uid}", None)


def _order(metrics: Metrics, name: str | None) -> tuple[int, str]:
    return (-metrics.cost_nanos, name or "")


def _member_order(member: MemberUsage) -> tuple[int, str]:
    return (-member.cost_nanos, member.email)


def build(engine: Engine, org_slug: str, period: Period, *, member: str | None = None,
          now: datetime | None = None) -> Report:
    """The report of one organization over ``period``: the whole team, or one member's own."""
    org = orgs.get_org(engine, org_slug)
    user_id = None
    member_name = None
    if member is not None:
        info = orgs.get_member(engine, org, member)
        user_id, member, member_name = info.user_id, info.email, info.name
    where = _where(org.id, period, user_id)
    day = local_day(period)
    before = compare.previous_period(period)

    with engine.connect() as conn:
        # names are the organization's own: a name set elsewhere never shows here
        people = _People((uid, (email, name)) for uid, email, name in conn.execute(
            select(users.c.id, users.c.email, memberships.c.name)
            .join(memberships, memberships.c.user_id == users.c.id)
            .where(memberships.c.organization_id == org.id)))
        # one streamed pass: the (day, model, member) groups are summed, never all held
        sums = groups.read_sums(conn, day, where)
        project_rows = _grouped(conn, [E.project, E.user_id], where)
        if before is not None:  # the previous period: sums by member and model, by project
            earlier = _where(org.id, before, user_id)
            before_rows = _grouped(conn, [E.user_id, E.model], earlier)
            before_projects = _grouped(conn, [E.project], earlier)

    # each sum is a list [cost, requests, input, output, cache_read, cache_write] (and, for
    # a model-day, its number of members): see groups.Sums
    model_days, day_members = sums.model_days, sums.day_members
    member_models = sums.member_models
    by_model_day = [ModelDayRow(acc[0], acc[1], acc[2], acc[3], acc[4], acc[5],
                                EPOCH + timedelta(days=day_number), model, acc[6])
                    for (day_number, model), acc in model_days.items()]

    days: dict[int, DayRow] = {}
    member_totals: dict[int, MemberRow] = {}
    for (day_number, uid), acc in day_members.items():
        email, name = people[uid]
        share = MemberUsage(acc[0], acc[1], acc[2], acc[3], acc[4], acc[5], email, name)
        day_row = days.get(day_number)
        if day_row is None:
            day_row = days[day_number] = DayRow(date=EPOCH + timedelta(days=day_number))
        day_row.add(share)
        day_row.members.append(share)
        totals = member_totals.get(uid)
        if totals is None:
            totals = member_totals[uid] = MemberRow(email=email, name=name)
        totals.add(share)
        totals.active_days += 1

    models: dict[str, ModelRow] = {}
    best: dict[int, tuple[tuple[int, int, str], str]] = {}
    for (uid, model), acc in member_models.items():
        total = models.get(model)
        if total is None:
            total = models[model] = ModelRow(model=model)
        total.add_values((acc[0], acc[1], acc[2], acc[3], acc[4], acc[5]))
        total.users += 1
        rank = (-acc[0], -acc[1], model)
        if uid not in best or rank < best[uid][0]:
            best[uid] = (rank, model)
    for uid, totals in member_totals.items():
        totals.top_model = best[uid][1] if uid in best else None

    projects: dict[str | None, ProjectRow] = {}
    for project, _uid, *values in project_rows:
        project = project or None
        row = projects.get(project)
        if row is None:
            row = projects[project] = ProjectRow(project=project)
        row.add_values((values[0], values[1], values[2], values[3], values[4], values[5]))
        row.users += 1

    summary = Summary(active_users=len(member_totals))
    for day_row in days.values():
        day_row.users = len(day_row.members)
        day_row.members.sort(key=_member_order)
        summary.add(day_row)

    by_day = sorted(days.values(), key=lambda r: r.date)
    daily = []
    for current in period.dates():
        number = (current - EPOCH).days
        found = days.get(number)
        daily.append(DailyPoint(current, found.cost_nanos if found else 0,
                                found.requests if found else 0, found.tokens if found else 0))
    report = Report(
        organization=OrgRef(org.slug, org.name, org.timezone),
        period=period,
        member=member,
        member_name=member_name,
        generated_at=now or datetime.now(UTC),
        summary=summary,
        by_day=by_day,
        by_model_day=sorted(by_model_day, key=lambda r: (r.date, -r.cost_nanos, r.model)),
        by_project=sorted(projects.values(), key=lambda r: _order(r, r.project)),
        by_member=sorted(member_totals.values(), key=lambda r: _order(r, r.email)),
        by_model=sorted(models.values(), key=lambda r: _order(r, r.model)),
        daily=daily,
        shares=groups.StoredShares(engine, day, where, people, places=sums.places,
                                   halves=sums.halves, what=f"organization {org.slug!r}",
                                   smallest=sums.smallest),
    )
    if before is not None:
        report.previous = compare.previous(report, before, before_rows, before_projects,
                                           people, member_models)
    return report


def resolve_period(engine: Engine, org_slug: str, name: str | None, as_of: datetime, *,
                   first: date | None = None, last: date | None = None,
                   member: str | None = None) -> Period:
    """The period ``name`` (or ``first..last``) for an organization, in its timezone."""
    org = orgs.get_org(engine, org_slug)
    earliest = None
    if name == "all":
        user_id = orgs.get_member(engine, org, member).user_id if member else None
        earliest = orgs.first_event_date(engine, org, user_id)
    return periods.resolve(name, org.timezone, as_of.astimezone(UTC), first=first, last=last,
                           earliest=earliest)
