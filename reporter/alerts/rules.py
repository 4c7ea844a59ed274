"""Alert rules: which budget thresholds and spend spikes hold at a moment, and what they say.

An alert is named by its ``audience`` (``alert:<subject>:<threshold>`` or
``alert:<subject>:spike``) and its days (the month's first and last day, or the spike's
day); the alert job kind makes each one unit of the run ledger, so it is delivered once
however often the job runs. ``<subject>`` is ``org``, ``member:<email>`` or
``project:<name>`` (a name too long for the ledger's key is shortened with a digest of
it). When several thresholds of one subject hold at once, one alert names the highest and
``covers`` the lower ones: they count as delivered with it and are never sent later.

Budgets follow the one rule of ``reporter.report.budget``: the month's spend up to the
moment looked at, and the forecast = spent ÷ elapsed time × the month's length, the elapsed
time counted to that moment, so an alert and a report over the same data agree.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

from sqlalchemy import Engine, func, select

from reporter import periods
from reporter.money import headline_usd
from reporter.periods import Period
from reporter.report import aggregate, budget, readable
from reporter.report.model import Budget
from reporter.store import orgs
from reporter.store.schema import usage_events

E = usage_events.c
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: how many members and models an alert names
NAMED = 3
#: the days before a spike whose mean daily spend is the usual day (days without usage: 0)
SPIKE_DAYS = 14
#: the longest project name an alert's ledger key holds as it is; a longer one is shortened
KEY_NAME = 200
#: the characters of a longer name kept before its digest
KEY_PREFIX = 100


@dataclass(frozen=True)
class AlertSettings:
    """An alert job's condition: ``budget`` thresholds (of actual spend or the forecast) or
    a ``spike`` of the last complete day over the days before it."""

    when: str  # "budget" or "spike"
    thresholds: tuple[int, ...]
    on: str  # "actual" or "forecast"
    factor: float
    min_nanos: int
    min_days: int  # a forecast alert waits until this many local days of the month passed


@dataclass(frozen=True)
class Alert:
    """One condition that holds: its ledger audience and days, and its message."""

    audience: str
    first: date
    last: date
    summary: str  # the first sentence: the email's subject and the webhook's text
    details: tuple[str, ...] = ()
    #: the audiences of the lower thresholds this alert stands for (delivered with it)
    covers: tuple[str, ...] = ()

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


def project_key(name: str) -> str:
    """How an alert's ledger key names a project: the name itself, or for a name longer than
    ``KEY_NAME`` characters (or 3 bytes each) its first characters and a digest of it, so
    any name the store accepts fits the key and two names never share one."""
    if len(name) <= KEY_NAME and len(name.encode("utf-8")) <= 3 * KEY_NAME:
        return name
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"{name[:KEY_PREFIX]}\u2026#{digest}"


def _subjects(engine: Engine, projects: Mapping[str, int],
              org: orgs.OrgInfo) -> list[_Subject]:
    out = []
    if org.monthly_budget_nanos is not None:
        out.append(_Subject("org", org.monthly_budget_nanos, label=org.name))
    for m in orgs.members(engine, org.id):
        if m.monthly_budget_nanos is not None:
            who = f"{m.name} ({m.email})" if m.name else m.email
            out.append(_Subject(f"member:{m.email}", m.monthly_budget_nanos, user_id=m.user_id,
                                label=f"{who} at {org.name}", their="their"))
    for project, nanos in sorted(projects.items()):
        out.append(_Subject(f"project:{project_key(project)}", nanos, project=project,
                            label=f"Project {project} at {org.name}"))
    return out


def _spent(engine: Engine, org: orgs.OrgInfo, subject: _Subject, first: date,
           moment: datetime) -> int:
    _, last = budget.month_of(first)
    until = (moment - _EPOCH) // timedelta(microseconds=1)
    return budget.spent(engine, org, first, last, user_id=subject.user_id,
                        project=subject.project, by_project=subject.project is not None,
                        until_us=until)


def elapsed(first: date, moment: datetime, timezone: str) -> Fraction:
    """The days of the month starting ``first`` elapsed at ``moment`` in ``timezone``: its
    whole local days plus the share of the current local day gone by (however long DST
    makes that day); the month's length once it is over."""
    tz = periods.zone(timezone)
    end = periods.next_month(first)
    if moment >= periods.local_midnight(end, tz):
        return Fraction((end - first).days)
    today = periods.local_date(moment, tz)
    if today < first:
        return Fraction(0)
    start, stop = periods.local_midnight(today, tz), periods.local_midnight(
        today + timedelta(days=1), tz)
    gone = (moment - start) // timedelta(microseconds=1)
    length = (stop - start) // timedelta(microseconds=1)
    return (today - first).days + Fraction(gone, length)


def _percent(value: Decimal) -> str:
    return f"{value.normalize():f}%" if value == value.to_integral() else f"{value}%"


def _budget_sentence(subject: _Subject, made: Budget, on: str, threshold: int) -> str:
    month = made.month.strftime("%B")
    left = made.days_in_month - made.days_elapsed
    spent = budget.usd(made.spent_nanos, made.monthly_nanos)
    monthly = budget.usd(made.monthly_nanos)
    forecast = budget.near(made.forecast_nanos, made.monthly_nanos)
    to_go = f"{left} day{'s' if left != 1 else ''} to go" if left else "by the month's end"
    if on == "forecast":
        share = budget.percent_of(made.forecast_nanos, made.monthly_nanos, 0)
        return (f"At this pace {subject.label} ends {month} near "
                f"{forecast}, {share}% of {subject.their} {monthly} "
                f"budget (the {threshold}% threshold); " + (
                    f"{spent} spent so far with {to_go}." if left else
                    f"{spent} spent in the month."))
    text = (f"{subject.label} has reached {threshold}% of {subject.their} {monthly} {month} "
            f"budget: {spent} spent ({_percent(made.percent)}){' with' if left else ''} "
            f"{to_go}")
    if left:
        text += f"; at this pace the month ends near {forecast}"
    over = made.spent_nanos - made.monthly_nanos
    if over > 0:
        text += f", {'already ' if left else ''}{budget.usd(over)} over budget"
    return text + "."


def _top(engine: Engine, org: orgs.OrgInfo, subject: _Subject | None, first: date,
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


def drivers(engine: Engine, org: orgs.OrgInfo, subject: _Subject | None, first: date,
            last: date, when: str) -> tuple[str, ...]:
    """Who and which models drove the spend over ``first..last``: the top members (not for a
    member's own alert) and the top models, with their spend."""
    lines = []
    if subject is None or subject.user_id is None:
        people = {m.user_id: (m.name or m.email) for m in
                  orgs.members(engine, org.id, include_removed=True)}
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


def _months(org: orgs.OrgInfo, reference: datetime) -> list[tuple[date, datetime]]:
    """The months an evaluation at ``reference`` reads, each with the moment it is read up
    to: the current month up to ``reference``; on the 1st, the month just ended once more,
    up to its end (the spend of its last hours)."""
    today = local_today(reference, org.timezone)
    month = today.replace(day=1)
    out = [(month, reference)]
    if today.day == 1:
        previous = (today - timedelta(days=1)).replace(day=1)
        out.insert(0, (previous, periods.local_midnight(month, periods.zone(org.timezone))))
    return out


def _subject_alert(engine: Engine, rule: AlertSettings, org: orgs.OrgInfo,
                   subject: _Subject, first: date, moment: datetime, told: bool,
                   threshold: int | None = None) -> Alert | None:
    """The alert of one subject for the month starting ``first``, read up to ``moment``:
    named by the highest threshold reached (or ``threshold``, when it is reached), covering
    the lower ones; None when none is (or a forecast before ``min_days``)."""
    days = elapsed(first, moment, org.timezone)
    if rule.on == "forecast" and days < rule.min_days:
        return None  # too early: one busy first hour would forecast anything
    made = budget.at(subject.monthly, _spent(engine, org, subject, first, moment), first,
                     days)
    value = made.forecast_nanos if rule.on == "forecast" else made.spent_nanos
    reached = [t for t in sorted(rule.thresholds) if value * 100 >= t * subject.monthly]
    if not reached or (threshold is not None and threshold not in reached):
        return None
    named = reached[-1] if threshold is None else threshold
    _, month_last = budget.month_of(first)
    details = (drivers(engine, org, subject, first, min(month_last, local_today(
        moment - timedelta(microseconds=1), org.timezone)), "this month") if told else ())
    return Alert(f"alert:{subject.key}:{named}", first, month_last,
                 _budget_sentence(subject, made, rule.on, named), details,
                 tuple(f"alert:{subject.key}:{t}" for t in reached if t < named))


def _budget_alerts(engine: Engine, rule: AlertSettings, projects: Mapping[str, int],
                   org: orgs.OrgInfo, reference: datetime, only: str | None,
                   told: bool) -> list[Alert]:
    subjects = [s for s in _subjects(engine, projects, org) if only in (None, s.key)]
    found = (_subject_alert(engine, rule, org, subject, first, moment, told)
             for first, moment in _months(org, reference) for subject in subjects)
    return [alert for alert in found if alert is not None]


def daily_spend(engine: Engine, org: orgs.OrgInfo, first: date, last: date) -> list[int]:
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


def _spike_alert(engine: Engine, rule: AlertSettings, org: orgs.OrgInfo, day: date,
                 told: bool) -> Alert | None:
    """The spike of the local ``day`` against the mean daily spend of the ``SPIKE_DAYS``
    days before it (days without usage count as 0), or None."""
    spends = daily_spend(engine, org, day - timedelta(days=SPIKE_DAYS), day)
    spent, before = spends[-1], spends[:-1]
    usual = Fraction(sum(before), SPIKE_DAYS)
    if spent < rule.min_nanos or spent < Fraction(str(rule.factor)) * usual:
        return None
    when = f"{readable.day_text(day)} ({readable.zone_words(org.timezone)})"
    if usual > 0:
        times = Decimal(spent) / (Decimal(usual.numerator) / Decimal(usual.denominator))
        shown = times.quantize(Decimal("0.1"), rounding="ROUND_FLOOR") if times < 10 else \
            times.quantize(Decimal(1), rounding="ROUND_FLOOR")
        shown = shown.to_integral() if shown == shown.to_integral() else shown
        active = sum(1 for d in before if d)
        summary = (f"{org.name} spent {headline_usd(spent)} on {when}, {shown} times its "
                   f"average of {headline_usd(round(usual))} a day over the {SPIKE_DAYS} days "
                   f"before ({active} of them with usage).")
    elif not any(before):
        summary = (f"{org.name} spent {headline_usd(spent)} on {when}, after {SPIKE_DAYS} "
                   f"days without usage.")
    else:  # refunds outweighed the spend of the days before
        summary = (f"{org.name} spent {headline_usd(spent)} on {when}; the {SPIKE_DAYS} days "
                   f"before came to {headline_usd(sum(before))} in all.")
    details = drivers(engine, org, None, day, day, "that day") if told else ()
    return Alert("alert:org:spike", day, day, summary, details)


def evaluate(engine: Engine, rule: AlertSettings, projects: Mapping[str, int], org_slug: str,
             reference: datetime, *, only: str | None = None,
             told: bool = True) -> list[Alert]:
    """The alerts of ``rule`` that hold for one organization at ``reference`` (the month and
    the last complete day are those of the organization's timezone): one per subject, named
    by its highest threshold reached; ``projects``: the organization's project budgets;
    ``only``: the one subject key to look at; ``told``: with the members and models that
    drove each (a plan needs only the conditions)."""
    org = orgs.get_org(engine, org_slug)
    if rule.when == "spike":
        if only not in (None, "org"):
            return []
        day = local_today(reference, org.timezone) - timedelta(days=1)
        found = _spike_alert(engine, rule, org, day, told)
        return [found] if found is not None else []
    return _budget_alerts(engine, rule, projects, org, reference, only, told)


def holds(engine: Engine, rule: AlertSettings, projects: Mapping[str, int], org_slug: str,
          audience: str, first: date, last: date, reference: datetime) -> Alert | None:
    """The alert named ``audience`` over ``first..last`` with the numbers at ``reference``,
    or None when it no longer holds (a budget raised since, a spend corrected). Its own month
    or day decides, not the clock: an alert looked at late speaks of its own month (up to
    its end at most) or day."""
    subject_key, _, threshold = audience.removeprefix("alert:").rpartition(":")
    org = orgs.get_org(engine, org_slug)
    if rule.when == "spike":
        found = _spike_alert(engine, rule, org, first, told=True)
        return found if found is not None and found.audience == audience else None
    if not threshold.isdigit():
        return None
    subject = next((s for s in _subjects(engine, projects, org) if s.key == subject_key), None)
    if subject is None:
        return None
    end = periods.local_midnight(last + timedelta(days=1), periods.zone(org.timezone))
    return _subject_alert(engine, rule, org, subject, first, min(reference, end), told=True,
                          threshold=int(threshold))
