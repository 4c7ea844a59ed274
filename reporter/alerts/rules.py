"""Alert rules: which budget thresholds and spend spikes hold at a moment, and what they say.

An alert is named by its ``audience`` (``alert:<subject>:<threshold>`` or
``alert:<subject>:spike``) and its days (the month's first and last day, or the spike's
day); the alert job kind makes each one unit of the run ledger, so it is delivered once
however often the job runs. ``<subject>`` is ``org``, ``member:<email>`` or
``project:<name>``.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, func, select

from reporter import periods
from reporter.money import headline_usd
from reporter.periods import Period
from reporter.report import aggregate, budget, readable
from reporter.report.model import Budget
from reporter.store import orgs as store
from reporter.store.schema import UsageEvent

E = UsageEvent
#: how many members and models an alert names
NAMED = 3
#: the days before a spike whose median is the usual day
SPIKE_DAYS = 14


@dataclass(frozen=True)
class AlertSettings:
    """An alert job's condition: ``budget`` thresholds (of actual spend or the forecast) or
    a ``spike`` of the last complete day over the days before it."""

    when: str  # "budget" or "spike"
    thresholds: tuple[int, ...]
    on: str  # "actual" or "forecast"
    factor: float
    min_nanos: int


@dataclass(frozen=True)
class Alert:
    """One condition that holds: its ledger audience and days, and its message."""

    audience: str
    first: date
    last: date
    summary: str  # the first sentence: the email's subject and the webhook's text
    details: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        """The whole message as plain text."""
        return "\n\n".join((self.summary, *self.details))


@dataclass(frozen=True)
class _Subject:
    key: str  # "org", "member:<email>" or "project:<name>"
    monthly: int
    user_id: int | None = None
    project: str | None = None
    label: str = ""
    their: str = "its"


def local_today(reference: datetime, timezone: str) -> date:
    """The reference moment's calendar day in ``timezone``."""
    return periods.local_date(reference, periods.zone(timezone))


def _subjects(engine: Engine, projects: Mapping[str, int],
              org: store.OrgInfo) -> list[_Subject]:
    out = []
    if org.monthly_budget_nanos is not None:
        out.append(_Subject("org", org.monthly_budget_nanos, label=org.name))
    for m in store.members(engine, org.id):
        if m.monthly_budget_nanos is not None:
            who = f"{m.name} ({m.email})" if m.name else m.email
            out.append(_Subject(f"member:{m.email}", m.monthly_budget_nanos, user_id=m.user_id,
                                label=f"{who} at {org.name}", their="their"))
    for project, nanos in sorted(projects.items()):
        out.append(_Subject(f"project:{project}", nanos, project=project,
                            label=f"Project {project} at {org.name}"))
    return out


def _spent(engine: Engine, org: store.OrgInfo, subject: _Subject, first: date,
           last: date) -> int:
    return budget.spent(engine, org, first, last, user_id=subject.user_id,
                        project=subject.project, by_project=subject.project is not None)


def _percent(value: Decimal) -> str:
    return f"{value.normalize():f}%" if value == value.to_integral() else f"{value}%"


def _budget_sentence(subject: _Subject, made: Budget, on: str) -> str:
    month = made.month.strftime("%B")
    left = made.days_in_month - made.days_elapsed
    spent, monthly = budget.usd(made.spent_nanos), budget.usd(made.monthly_nanos)
    to_go = f"{left} day{'s' if left != 1 else ''} to go" if left else "by the month's end"
    if on == "forecast":
        share = (Decimal(made.forecast_nanos) * 100 / Decimal(made.monthly_nanos)).quantize(
            Decimal(1))
        return (f"At this pace {subject.label} ends {month} near "
                f"{budget.near(made.forecast_nanos)}, {share}% of {subject.their} {monthly} "
                f"budget; " + (f"{spent} spent so far with {to_go}." if left else
                               f"{spent} spent in the month."))
    text = (f"{subject.label} has spent {spent} of {subject.their} {monthly} {month} budget "
            f"({_percent(made.percent)}){' with' if left else ''} {to_go}")
    if left:
        text += f"; at this pace the month ends near {budget.near(made.forecast_nanos)}"
    over = made.spent_nanos - made.monthly_nanos
    if over > 0:
        text += f", {'already ' if left else ''}{budget.usd(over)} over budget"
    return text + "."


def _top(engine: Engine, org: store.OrgInfo, subject: _Subject | None, first: date,
         last: date, column: Any) -> list[tuple[Any, int]]:
    span = Period("custom", first, last, org.timezone)
    cost = func.sum(E.cost_nanos)
    query = (select(column, cost).where(*aggregate.in_period(org.id, span))
        .group_by(column).order_by(cost.desc(), column).limit(NAMED))
    if subject is not None and subject.user_id is not None:
        query = query.where(E.user_id == subject.user_id)
    if subject is not None and subject.project is not None:
        query = query.where(E.project == subject.project)
    with engine.connect() as conn:
        return [(key, int(total)) for key, total in conn.execute(query) if total]


def drivers(engine: Engine, org: store.OrgInfo, subject: _Subject | None, first: date,
            last: date, when: str) -> tuple[str, ...]:
    """Who and which models drove the spend over ``first..last``: the top members (not for a
    member's own alert) and the top models, with their spend."""
    lines = []
    if subject is None or subject.user_id is None:
        people = {m.user_id: (m.name or m.email) for m in
                  store.members(engine, org.id, include_removed=True)}
        top = _top(engine, org, subject, first, last, E.user_id)
        if top:
            lines.append(f"Top spenders {when}: " + ", ".join(
                f"{people.get(uid, f'user {uid}')} ({headline_usd(n)})" for uid, n in top)
                + ".")
    models = _top(engine, org, subject, first, last, E.model)
    if models:
        lines.append(f"Top models {when}: " + ", ".join(
            f"{model} ({headline_usd(n)})" for model, n in models) + ".")
    return tuple(lines)


def _budget_alerts(engine: Engine, rule: AlertSettings, projects: Mapping[str, int],
                   org: store.OrgInfo, today: date, only: str | None,
                   told: bool) -> list[Alert]:
    on = rule.on
    # the forecast divides by whole days: it is read through the last complete day; on the
    # 1st, the month just ended is read once more (spend of its last hours)
    days = [today - timedelta(days=1)] if on == "forecast" else [today]
    if on == "actual" and today.day == 1:
        days.insert(0, today - timedelta(days=1))
    subjects = [s for s in _subjects(engine, projects, org) if only in (None, s.key)]
    out = []
    for last, subject in ((d, s) for d in days for s in subjects):
        first, month_last = budget.month_of(last)
        made = budget.block(subject.monthly, _spent(engine, org, subject, first, last), last)
        value = made.forecast_nanos if on == "forecast" else made.spent_nanos
        reached = [t for t in rule.thresholds if value * 100 >= t * subject.monthly]
        if not reached:
            continue
        summary = _budget_sentence(subject, made, on)
        details = drivers(engine, org, subject, first, last, "this month") if told else ()
        out += [Alert(f"alert:{subject.key}:{t}", first, month_last, summary, details)
                for t in reached]
    return out


def daily_spend(engine: Engine, org: store.OrgInfo, first: date, last: date) -> list[int]:
    """The organization's spend on each local day ``first..last`` (0 for a day without
    usage), computed in the database."""
    span = Period("custom", first, last, org.timezone)
    day = aggregate.local_day(span)
    query = (select(day, func.sum(E.cost_nanos)).where(*aggregate.in_period(org.id, span))
             .group_by(day))
    with engine.connect() as conn:
        by_day = {int(d): int(total) for d, total in conn.execute(query)}
    epoch = aggregate.EPOCH
    return [by_day.get((first + timedelta(days=i) - epoch).days, 0)
            for i in range((last - first).days + 1)]


def _spike_alerts(engine: Engine, rule: AlertSettings, org: store.OrgInfo,
                  today: date, told: bool) -> list[Alert]:
    day = today - timedelta(days=1)
    spends = daily_spend(engine, org, day - timedelta(days=SPIKE_DAYS), day)
    spent, before = spends[-1], spends[:-1]
    usual = statistics.median(before)
    if spent < rule.min_nanos or spent < rule.factor * usual:
        return []
    when = f"{readable.day_text(day)} ({readable.zone_words(org.timezone)})"
    if usual:
        times = Decimal(spent) / Decimal(str(usual))
        shown = times.quantize(Decimal("0.1")) if times < 10 else times.quantize(Decimal(1))
        shown = shown.to_integral() if shown == shown.to_integral() else shown
        summary = (f"{org.name} spent {headline_usd(spent)} on {when}, {shown} times the "
                   f"usual {headline_usd(int(usual))} a day (the median of the "
                   f"{SPIKE_DAYS} days before).")
    else:
        summary = (f"{org.name} spent {headline_usd(spent)} on {when}, after "
                   f"{SPIKE_DAYS} days of almost no spend.")
    details = drivers(engine, org, None, day, day, "that day") if told else ()
    return [Alert("alert:org:spike", day, day, summary, details)]


def evaluate(engine: Engine, rule: AlertSettings, projects: Mapping[str, int], org_slug: str,
             reference: datetime, *, only: str | None = None,
             told: bool = True) -> list[Alert]:
    """The alerts of ``rule`` that hold for one organization at ``reference`` (the month and
    the last complete day are those of the organization's timezone); ``projects``: the
    organization's project budgets; ``only``: the one subject key to look at; ``told``:
    with the members and models that drove each (a plan needs only the conditions)."""
    org = store.get_org(engine, org_slug)
    today = local_today(reference, org.timezone)
    if rule.when == "spike":
        return ([] if only not in (None, "org") else
                _spike_alerts(engine, rule, org, today, told))
    return _budget_alerts(engine, rule, projects, org, today, only, told)


def holds(engine: Engine, rule: AlertSettings, projects: Mapping[str, int], org_slug: str,
          audience: str, first: date, last: date, reference: datetime) -> Alert | None:
    """The alert named ``audience`` over ``first..last`` with today's numbers, or None when
    it no longer holds (a budget raised since, a spend corrected). Its own month or day
    decides, not the clock: an alert looked at late speaks of its own month (through its
    last day at most)."""
    subject = audience.removeprefix("alert:").rsplit(":", 1)[0]
    org = store.get_org(engine, org_slug)
    today = min(local_today(reference, org.timezone), last + timedelta(days=1))
    moment = periods.local_midnight(today, periods.zone(org.timezone))
    found = evaluate(engine, rule, projects, org_slug, moment + timedelta(hours=12),
                     only=subject)
    return next((a for a in found if a.audience == audience
                 and (a.first, a.last) == (first, last)), None)
