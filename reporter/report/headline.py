"""What a subject line and the first lines of an email name: the organization, the period
in words, the total rounded for people and which way it moved."""

from __future__ import annotations

from typing import Any

from reporter import money
from reporter.report import readable
from reporter.report.model import Report


def change_words(report: Report) -> str:
    """``up 43%``, ``down 5.2%``, ``new``, ``no change``; empty without a comparison."""
    if report.previous is None:
        return ""
    now, before = report.summary.cost_nanos, report.previous.summary.cost_nanos
    text, way = readable.change(now, before, usd=True)
    ratio = readable.percent(now, before)
    if way == "same" or ratio is None:
        return text
    return f"{way} {readable.percent_text(ratio).lstrip('+' + readable.MINUS)}"


def context(report: Report, job: str) -> dict[str, Any]:
    """What a subject template can use: ``period.label`` reads like dates
    (``Nov 16 – 22, 2026 (New York time)``), ``total`` is rounded for people."""
    period = report.period
    return {
        "job": job,
        "organization": {"slug": report.organization.slug, "name": report.organization.name,
                         "timezone": report.organization.timezone},
        "period": {"name": period.name, "label": readable.period_text(period),
                   "first": period.first, "last": period.last, "timezone": period.timezone},
        "member": report.member,
        "member_name": report.member_name,
        "total": money.headline_usd(report.summary.cost_nanos),
        "change": change_words(report),
    }
