"""How fresh a report's data is: when the sources an organization's usage comes from were last
read before the period ended, the report says up to when it holds usage."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Engine

from reporter.report.model import Report
from reporter.store.sources import watermark


def attach(engine: Engine, report: Report, sources: Sequence[str]) -> Report:
    """``report`` with ``synced_through`` set to the oldest watermark of ``sources`` (the
    sources its organization's usage is read from) when that is before the period's end;
    a source never read counts as not synced. Returns the same report."""
    marks = [watermark.get(engine, name) for name in sources]
    if not marks:
        return report
    if any(mark is None for mark in marks):
        report.synced_through = None
        report.never_synced = True
        return report
    oldest = min(mark[0] for mark in marks if mark is not None)
    if oldest < report.period.end:
        report.synced_through = oldest
    return report
