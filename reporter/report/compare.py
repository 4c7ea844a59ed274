"""Comparison with the previous period: which period that is, its sums, and what changed."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from typing import Any

from reporter import money, periods
from reporter.periods import Period
from reporter.report import readable
from reporter.report.model import Change, Changes, Metrics, Previous, Report, Summary

#: how many of the largest increases (and decreases) each view lists
LISTED = 3



def previous_period(period: Period) -> Period | None:
    """The period just before ``period``, of the same kind, in its timezone; None for ``all``.

    ``previous-month`` and any whole calendar month: the calendar month before;
    ``month-to-date`` (days 1..D): days 1..min(D, its length) of the month before; anything
    else (N days: ``past-*``, ``previous-week``, ``--from/--to``): the N days before.
    """
    if period.name == "all":
        return None
    if period.name == "previous-month" or (not period.name.startswith("past-")
                                           and periods.is_whole_month(period.first,
                                                                      period.last)):
        first = periods.month_before(period.first)
        last = periods.month_last(first)
    elif period.name == "month-to-date":
        first = periods.month_before(period.first)
        last = min(first + timedelta(days=period.last.day - 1), periods.month_last(first))
    else:
        last = period.first - timedelta(days=1)
        first = last - timedelta(days=period.days - 1)
    return Period(period.name, first, last, period.timezone)


def _metrics(values: Sequence[int]) -> Metrics:
    return Metrics(values[0], values[1], values[2], values[3], values[4], values[5])


def _ranked(changes: Iterable[Change]) -> Changes:
    """The LISTED largest increases and decreases of cost (ties: by label)."""
    items = list(changes)
    ups = sorted((c for c in items if c.delta_nanos > 0), key=lambda c: (-c.delta_nanos, c.label))
    downs = sorted((c for c in items if c.delta_nanos < 0), key=lambda c: (c.delta_nanos, c.label))
    return Changes(ups[:LISTED], downs[:LISTED])


def _changes(now: Mapping[Any, Metrics], before: Mapping[Any, Metrics],
             label: Mapping[Any, str]) -> list[Change]:
    out = []
    for key in {*now, *before}:
        current, earlier = now.get(key, Metrics()), before.get(key, Metrics())
        out.append(Change(key, label[key], current.cost_nanos, current.requests,
                          earlier.cost_nanos, earlier.requests))
    return out


def _mover(pairs: Mapping[str, int], rising: bool) -> str | None:
    """The model whose cost rose (or fell) the most; ties by name."""
    moved = [(delta, model) for model, delta in pairs.items() if (delta > 0) == rising and delta]
    if not moved:
        return None
    return min(moved, key=lambda item: (-item[0] if rising else item[0], item[1]))[1]


def previous(report: Report, before: Period, rows: Iterable[Sequence[Any]],
             project_rows: Iterable[Sequence[Any]],
             people: Mapping[int, tuple[str, str | None]],
             member_models: Mapping[tuple[int, str], Sequence[int]]) -> Previous:
    """The comparison of ``report`` with the period ``before``.

    ``rows`` are the previous period's ``(user id, model, cost, requests, input, output,
    cache read, cache write)`` groups, ``project_rows`` its ``(project, ...sums)`` groups;
    ``member_models`` this period's sums by (user id, model), ``people`` email and name by
    user id.
    """
    summary = Summary()
    members: dict[str, Metrics] = {}
    models: dict[str, Metrics] = {}
    # cost by member and model: this period's minus the previous one's
    moves: dict[str, dict[str, int]] = {}
    used_before: dict[str, dict[str, int]] = {}
    names: dict[str, str] = {}
    for uid, model, *values in rows:
        sums = _metrics(values)
        email, name = people[uid]
        names[email] = name or email
        summary.add(sums)
        members.setdefault(email, Metrics()).add(sums)
        models.setdefault(model, Metrics()).add(sums)
        moves.setdefault(email, {}).setdefault(model, 0)
        moves[email][model] -= sums.cost_nanos
        used_before.setdefault(email, {})[model] = sums.cost_nanos
    summary.active_users = len(members)
    for (uid, model), sums_now in member_models.items():
        email = people[uid][0]
        moves.setdefault(email, {}).setdefault(model, 0)
        moves[email][model] += sums_now[0]
    projects: dict[str | None, Metrics] = {}
    for project, *values in project_rows:
        projects.setdefault(project or None, Metrics()).add(_metrics(values))

    now_members = {row.email: row for row in report.by_member}
    names.update((row.email, row.name or row.email) for row in report.by_member)
    member_changes = _changes(now_members, members, names)
    for change in member_changes:
        if change.stopped:
            spent = used_before.get(str(change.key), {})
            change.model = min(spent, key=lambda m: (-spent[m], m)) if spent else None
        else:
            change.model = _mover(moves.get(str(change.key), {}), change.delta_nanos > 0)
    stopped = sorted((c for c in member_changes if c.stopped),
                     key=lambda c: (c.delta_nanos, c.label))

    now_models = {row.model: row for row in report.by_model}
    model_changes = _changes(now_models, models, {m: m for m in {*now_models, *models}})
    now_projects = {row.project: row for row in report.by_project}
    project_names = {p: p if p is not None else "(no project)" for p in {*now_projects, *projects}}
    project_changes = _changes(now_projects, projects, project_names)
    return Previous(before, summary, members, models, projects,
                    Changes() if report.personal else _ranked(member_changes),
                    _ranked(model_changes), _ranked(project_changes),
                    [] if report.personal else stopped)


def mover(report: Report) -> Change | None:
    """The one change a reader hears first: the member (in a personal report, the model)
    whose cost moved the most, either way."""
    if report.previous is None:
        return None
    p = report.previous
    changed = p.models_changed if report.personal else p.members_changed
    candidates = [*changed.increases[:1], *changed.decreases[:1]]
    if not candidates:
        return None
    return min(candidates, key=lambda c: (-abs(c.delta_nanos), c.label))


def sentence(report: Report) -> str:
    """The email's first line: ``Spend was $1,234.56, up 43% on Nov 9 – 15; Carol Chen
    +$310.20 on anthropic/claude-sonnet-4.``"""
    who = "Your spend" if report.personal else "Spend"
    now = report.summary.cost_nanos
    total = money.headline_usd(now)
    if report.previous is None:
        return f"{who} was {total}."
    before_period = report.previous.period
    when = readable.span(before_period.first, before_period.last,
                         year=before_period.last.year != report.period.last.year)
    before = report.previous.summary.cost_nanos
    if before == 0:
        text = (f"No spend, as on {when}" if now == 0
                else f"{who} was {total}; nothing was spent on {when}")
    elif now == before:
        text = f"{who} was {total}, the same as on {when}"
    else:
        change = readable.percent(now, before)
        assert change is not None
        word = "up" if now > before else "down"
        text = f"{who} was {total}, {word} {readable.percent_text(change).lstrip('+−')} on {when}"
    top = mover(report)
    if top is not None:
        if top.stopped:
            text += f"; {top.label} stopped ({readable.signed_usd(top.delta_nanos)})"
        else:
            text += f"; {top.label} {readable.signed_usd(top.delta_nanos)}"
            if top.model and not report.personal:
                # the model id as given, as every other part of the report names it
                text += f" on {top.model}"
    return text + "."
