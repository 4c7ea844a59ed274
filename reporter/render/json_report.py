"""JSON: the report model itself, money as exact decimal strings."""

from __future__ import annotations

import json
from collections.abc import Iterator
from io import BytesIO
from typing import Any

from reporter.money import MAX_DECIMALS, format_usd
from reporter.report import readable
from reporter.report.model import Change, Changes, Metrics, Previous, Report, Summary


def _metrics(m: Metrics) -> dict[str, Any]:
    return {
        "cost_usd": _usd(m.cost_nanos),
        "requests": m.requests,
        "input_tokens": m.input_tokens,
        "output_tokens": m.output_tokens,
        "tokens": m.tokens,
        "cache_read_tokens": m.cache_read_tokens,
        "cache_write_tokens": m.cache_write_tokens,
    }


def _summary(summary: Summary) -> dict[str, Any]:
    return {
        "total_cost_usd": _usd(summary.cost_nanos),
        "total_requests": summary.requests,
        "avg_cost_per_request_usd": _usd(summary.avg_cost_nanos),
        "input_tokens": summary.input_tokens,
        "output_tokens": summary.output_tokens,
        "total_tokens": summary.tokens,
        "cache_read_tokens": summary.cache_read_tokens,
        "cache_write_tokens": summary.cache_write_tokens,
        "active_users": summary.active_users,
    }


def _usd(nanos: int) -> str:
    """Every amount of money: an exact decimal string with exactly 9 decimal places."""
    return format_usd(nanos, MAX_DECIMALS)


def _before(previous: Previous | None, row: Metrics) -> dict[str, Any]:
    """``previous_cost_usd`` and ``previous_requests`` of a row (null without a comparison)."""
    if previous is None:
        return {"previous_cost_usd": None, "previous_requests": None}
    earlier = previous.of(row)
    return {"previous_cost_usd": _usd(earlier.cost_nanos),
            "previous_requests": earlier.requests}


def _change(change: Change, key: str) -> dict[str, Any]:
    percent = readable.percent(change.cost_nanos, change.previous_cost_nanos)
    return {key: change.key, "label": change.label, "cost_usd": _usd(change.cost_nanos),
            "previous_cost_usd": _usd(change.previous_cost_nanos),
            "change_usd": _usd(change.delta_nanos),
            "change_percent": None if percent is None else f"{percent:.1f}",
            "requests": change.requests, "previous_requests": change.previous_requests,
            **({"model": change.model} if key == "email" else {})}


def _changes(changes: Changes, key: str) -> dict[str, Any]:
    return {"increases": [_change(c, key) for c in changes.increases],
            "decreases": [_change(c, key) for c in changes.decreases]}


def _previous(previous: Previous | None) -> dict[str, Any] | None:
    if previous is None:
        return None
    period = previous.period
    return {"first_date": period.first.isoformat(), "last_date": period.last.isoformat(),
            "start": period.start.astimezone(period.zone).isoformat(),
            "end": period.end.astimezone(period.zone).isoformat(),
            "summary": _summary(previous.summary)}


def _what_changed(previous: Previous | None) -> dict[str, Any] | None:
    if previous is None:
        return None
    return {"members": _changes(previous.members_changed, "email"),
            "models": _changes(previous.models_changed, "model"),
            "projects": _changes(previous.projects_changed, "project"),
            "stopped_members": [_change(c, "email") for c in previous.stopped]}


def _budget(report: Report) -> dict[str, Any] | None:
    """The month's budget block (null without a budget or across months)."""
    budget = report.budget
    if budget is None:
        return None
    return {"month": budget.month_text, "monthly_usd": _usd(budget.monthly_nanos),
            "spent_usd": _usd(budget.spent_nanos), "percent": f"{budget.percent:.1f}",
            "forecast_usd": _usd(budget.forecast_nanos),
            "days_elapsed": budget.days_elapsed, "days_in_month": budget.days_in_month}


def document(report: Report) -> dict[str, Any]:
    """The report as the structure of the product contract, its rows in lists, except the
    rows of By Model & Day: an iterator, read from the database as it is written."""
    period = report.period
    tz = period.zone
    before = report.previous
    return {
        "organization": {"slug": report.organization.slug, "name": report.organization.name,
                         "timezone": report.organization.timezone},
        "period": {"name": period.name, "start": period.start.astimezone(tz).isoformat(),
                   "end": period.end.astimezone(tz).isoformat(), "timezone": period.timezone,
                   "first_date": period.first.isoformat(), "last_date": period.last.isoformat(),
                   "days": period.days, "label": readable.period_text(period),
                   "text": readable.period_text(period)},
        "member": report.member,
        "budget": _budget(report),
        "generated_at": report.generated_at.astimezone(tz).isoformat(),
        "summary": _summary(report.summary),
        "previous": _previous(before),
        "what_changed": _what_changed(before),
        "by_day": [
            {"date": row.date.isoformat(), **_metrics(row), "users": row.users,
             "members": [{"email": m.email, **_metrics(m)} for m in row.members]}
            for row in report.by_day
        ],
        "by_model_day": (
            {"date": row.date.isoformat(), "model": row.model, **_metrics(row),
             "users": row.users,
             "members": [{"email": m.email, **_metrics(m)} for m in members]}
            for row, members in report.model_day_members()
        ),
        "by_project": [
            {"project": row.project, **_metrics(row), "users": row.users, **_before(before, row)}
            for row in report.by_project
        ],
        "by_member": [
            {"email": row.email, "name": row.name, **_metrics(row),
             "active_days": row.active_days, "top_model": row.top_model, **_before(before, row)}
            for row in report.by_member
        ],
        "by_model": [
            {"model": row.model, **_metrics(row), "users": row.users, **_before(before, row)}
            for row in report.by_model
        ],
        "daily_series": [
            {"date": p.date.isoformat(), "cost_usd": _usd(p.cost_nanos),
             "requests": p.requests, "tokens": p.tokens}
            for p in report.daily
        ],
    }


def to_dict(report: Report) -> dict[str, Any]:
    """The report as the JSON-ready structure of the product contract, every row in memory."""
    return {key: list(value) if isinstance(value, Iterator) else value
            for key, value in document(report).items()}


#: rows of a list written at a time
_BATCH = 500


def chunks(report: Report) -> Iterator[str]:
    """The report's JSON text in pieces: each top-level value indented, each row of a list
    on a line of its own, By Model & Day written as it is read (memory holds a batch)."""
    for index, (key, value) in enumerate(document(report).items()):
        head = ("{\n  " if index == 0 else ",\n  ") + json.dumps(key) + ": "
        if not isinstance(value, list | Iterator):
            yield head + json.dumps(value, indent=2, ensure_ascii=False).replace("\n", "\n  ")
            continue
        batch = [head, "["]
        empty = True
        for row in value:
            batch.append("\n    " if empty else ",\n    ")
            batch.append(json.dumps(row, ensure_ascii=False))
            empty = False
            if len(batch) >= 2 * _BATCH:
                yield "".join(batch)
                batch = []
        batch.append("]" if empty else "\n  ]")
        yield "".join(batch)
    yield "\n}\n"


def render(report: Report, options: object = None) -> bytes:
    """The report as UTF-8 JSON (the contract's shape, money as decimal strings), one row
    a line."""
    out = BytesIO()
    for chunk in chunks(report):
        out.write(chunk.encode("utf-8"))
    return out.getvalue()
