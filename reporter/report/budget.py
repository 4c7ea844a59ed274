"""Monthly budgets: the month's spend to date, percent used and month-end forecast."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import date
from decimal import ROUND_FLOOR, Decimal
from fractions import Fraction

from sqlalchemy import Engine, func, select

from reporter import money, periods
from reporter.periods import Period
from reporter.report.model import Budget, Report
from reporter.store import orgs
from reporter.store.schema import usage_events

E = usage_events.c


def month_of(day: date) -> tuple[date, date]:
    """The first and last day of ``day``'s calendar month."""
    return day.replace(day=1), periods.month_last(day)


def in_one_month(period: Period) -> bool:
    """Whether the period's days all lie in one calendar month."""
    return (period.first.year, period.first.month) == (period.last.year, period.last.month)


def spent(engine: Engine, org: orgs.OrgInfo, first: date, last: date, *,
          user_id: int | None = None, project: str | None = None,
          by_project: bool = False, until_us: int | None = None) -> int:
    """The organization's spend (nano-dollars) over the local days ``first..last``: one
    member's, one project's (``by_project``; None: no project), or all of it; ``until_us``:
    only what was used before that instant (microseconds since the epoch)."""
    span = Period("custom", first, last, org.timezone)
    start, end = span.micros
    if until_us is not None:
        end = min(end, until_us)
    query = select(func.coalesce(func.sum(E.cost_nanos), 0)).where(
        E.organization_id == org.id, E.ts_us >= start, E.ts_us < end)
    if user_id is not None:
        query = query.where(E.user_id == user_id)
    if by_project:
        query = query.where(E.project == project if project else
                            (E.project.is_(None)) | (E.project == ""))
    with engine.connect() as conn:
        return int(conn.scalar(query) or 0)


def percent_of(nanos: int, monthly_nanos: int, places: int = 1) -> Decimal:
    """``nanos`` as a percent of ``monthly_nanos``, rounded down to ``places`` decimals: a
    figure is never shown past a threshold it has not reached (99.96 is 99.9, not 100)."""
    step = Decimal(1).scaleb(-places)
    return (Decimal(nanos) * 100 / Decimal(monthly_nanos)).quantize(step, rounding=ROUND_FLOOR)


def forecast(spent_nanos: int, elapsed: Fraction, days_in_month: int) -> int:
    """The month-end forecast: spent ÷ E × the month's days (to the nano-dollar, half-even),
    E being the days elapsed from the month's start to the end of what was counted (whole
    days for a report, a fraction of the current day for an alert at a moment); 0 before
    any time has elapsed."""
    if elapsed <= 0:
        return 0
    return money.divide_round(spent_nanos * days_in_month * elapsed.denominator,
                              elapsed.numerator)


def at(monthly_nanos: int, spent_nanos: int, month: date, elapsed: Fraction,
       whose: str = "the") -> Budget:
    """The budget block of ``month`` (its first day) for ``spent_nanos`` counted over the
    first ``elapsed`` days of it: the one rule for reports and alerts alike."""
    days = periods.month_last(month).day
    made = Budget(month, monthly_nanos, spent_nanos, percent_of(spent_nanos, monthly_nanos),
                  forecast(spent_nanos, elapsed, days), math.ceil(elapsed), days)
    return replace(made, text=sentence(made, whose))


def block(monthly_nanos: int, spent_nanos: int, last: date, whose: str = "the") -> Budget:
    """The budget block for a month's spend ``spent_nanos`` through the local day ``last``:
    percent = spent ÷ budget × 100 (1 decimal, rounded down); forecast = spent ÷ D × days
    in the month (to the nano-dollar, half-even), D being the days from the 1st through
    ``last``."""
    first, _ = month_of(last)
    return at(monthly_nanos, spent_nanos, first, Fraction((last - first).days + 1), whose)


def for_report(engine: Engine, report: Report) -> Budget | None:
    """The budget block of a report: the organization's (a personal report: the member's)
    when one is set and the report's period lies within one calendar month, else None."""
    period = report.period
    if not in_one_month(period):
        return None
    org = orgs.get_org(engine, report.organization.slug)
    user_id, whose = None, "the"
    monthly = org.monthly_budget_nanos
    if report.member is not None:
        member = orgs.get_member(engine, org, report.member)
        user_id, monthly, whose = member.user_id, member.monthly_budget_nanos, "your"
    if monthly is None:
        return None
    first, _ = month_of(period.last)
    return block(monthly, spent(engine, org, first, period.last, user_id=user_id),
                 period.last, whose)


def attach(engine: Engine, report: Report) -> Report:
    """The report with its budget block set (unchanged when it has none)."""
    report.budget = for_report(engine, report)
    return report


def _within(text: str, nanos: int, limit: int | None, down: str) -> str:
    """``text`` (``nanos`` rounded), or ``down`` (rounded towards zero) when rounding would
    carry an amount below ``limit`` up to it: nothing reads as reaching a budget it has
    not reached."""
    if limit is None or nanos >= limit or money.parse_usd(
            text.lstrip("$").replace(",", "")) < limit:
        return text
    return down


def near(nanos: int, limit: int | None = None) -> str:
    """A forecast as people say it (``money.rough_usd``); below ``limit`` it never reads
    as reaching it."""
    return _within(money.rough_usd(nanos), nanos, limit, money.rough_usd(nanos, down=True))


def usd(nanos: int, limit: int | None = None) -> str:
    """``$5,000.00``: an amount to the cent (``money.display_usd``); below ``limit`` it never
    reads as reaching it."""
    return _within(money.display_usd(nanos), nanos, limit,
                   money.display_usd(nanos, down=True))


def sentence(budget: Budget, whose: str = "the") -> str:
    """The block as one plain sentence: spend, budget, percent and where the month heads;
    a forecast over budget is said plainly."""
    name = budget.month.strftime("%B")
    spent = usd(budget.spent_nanos, budget.monthly_nanos)
    text = (f"{spent} of {whose} {usd(budget.monthly_nanos)} {name} budget "
            f"spent ({budget.percent}%)")
    left = budget.days_in_month - budget.days_elapsed
    if left == 0:
        over = budget.spent_nanos - budget.monthly_nanos
        return text + (f", {usd(over)} over budget." if over > 0 else ".")
    text += f" with {left} day{'s' if left != 1 else ''} to go"
    pace = f"; at this pace the month ends near {near(budget.forecast_nanos, budget.monthly_nanos)}"
    if budget.over:
        return text + pace + f", over the {usd(budget.monthly_nanos)} budget."
    return text + pace + ", within budget."
