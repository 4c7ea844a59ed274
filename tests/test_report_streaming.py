"""A long report's member rows are streamed from the database, never all held: in order, exact
past 64 bits, checked against their rows, and in memory that follows the rows a reader needs."""

from __future__ import annotations

import json
import tracemalloc
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import Engine

from reporter import periods
from reporter.errors import RenderError
from reporter.render import render
from reporter.report import aggregate
from reporter.report.model import Report
from reporter.store import orgs as store
from tests.helpers import load, row

NOW = datetime(2024, 4, 1, tzinfo=UTC)


def _grid(engine: Engine, *, days: int, models: int, members: int, org: str = "acme") -> Report:
    """One request for every (day, model, member) of March 2024 up to ``days``, and the report."""
    store.set_org(engine, org, timezone="UTC")
    load(engine, [row(f"{d}-{m}-{u}", f"2024-03-{d + 1:02d}T12:00:00Z", org=org,
                      email=f"u{u:02d}@{org}.com", model=f"model-{m:02d}",
                      cost=f"0.{(d * 7 + m * 3 + u) % 1000:03d}000001",
                      input_tokens=10 + u, output_tokens=m)
                  for d in range(days) for m in range(models) for u in range(members)])
    period = periods.resolve(None, "UTC", NOW, first=date(2024, 3, 1),
                             last=date(2024, 3, days))
    return aggregate.build(engine, org, period, now=NOW)


def test_members_stream_in_the_rows_order_and_add_up(engine: Engine) -> None:
    report = _grid(engine, days=3, models=4, members=5)
    pairs = list(report.model_day_members())
    assert [r for r, _ in pairs] == report.by_model_day
    for model_day, members in pairs:
        assert len(members) == model_day.users == 5
        assert sum(m.cost_nanos for m in members) == model_day.cost_nanos
        assert [(-m.cost_nanos, m.email) for m in members] == sorted(
            (-m.cost_nanos, m.email) for m in members)
    # read again: the same rows; held in memory: the same rows
    assert [[m.email for m in ms] for _, ms in report.model_day_members()] == [
        [m.email for m in ms] for _, ms in pairs]
    report.materialize()
    assert list(report.model_day_members()) == pairs
    data = json.loads(render(report, "json"))
    assert [len(r["members"]) for r in data["by_model_day"]] == [5] * 12


def test_usage_stored_after_the_build_is_an_error_not_a_wrong_table(engine: Engine) -> None:
    report = _grid(engine, days=2, models=2, members=2)
    load(engine, [row("late", "2024-03-02T18:00:00Z", email="u00@acme.com", model="model-01",
                      cost="1")])
    for fmt in ("json", "xlsx", "html"):
        with pytest.raises(RenderError) as caught:
            render(report, fmt)
        message = str(caught.value)
        assert message == ("the usage of organization 'acme' changed while its report was "
                           "being written (model 'model-01' on 2024-03-02); generate the "
                           "report again"), fmt
    # built again, it holds the late request
    fresh = aggregate.build(engine, "acme", report.period, now=NOW)
    assert fresh.summary.requests == report.summary.requests + 1
    assert json.loads(render(fresh, "json"))["summary"]["total_requests"] == 9


def test_sums_beyond_64_bits_stream_exactly(engine: Engine) -> None:
    store.set_org(engine, "acme", timezone="UTC")
    count = 9_300  # one group of 9,300 requests at $999,999.999999999: more than 2**63 nanos
    load(engine, [row(f"big{n}", "2024-03-05T12:00:00Z", cost="999999.999999999")
                  for n in range(count)])
    period = periods.resolve(None, "UTC", NOW, first=date(2024, 3, 1), last=date(2024, 3, 31))
    report = aggregate.build(engine, "acme", period, now=NOW)
    exact = count * 999_999_999_999_999
    assert exact > 2**63
    assert report.summary.cost_nanos == exact
    [(model_day, [member])] = list(report.model_day_members())
    assert member.cost_nanos == model_day.cost_nanos == exact
    data = json.loads(render(report, "json"))
    assert data["by_model_day"][0]["members"][0]["cost_usd"] == "9299999999.999990700"


def _peak(report_of: object) -> int:
    """Peak bytes Python allocated while building a report and reading every member row."""
    tracemalloc.start()
    try:
        report = report_of()  # type: ignore[operator]
        rows = sum(len(members) for _, members in report.model_day_members())
        assert rows == sum(r.users for r in report.by_model_day)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.slow
def test_memory_follows_the_rows_not_the_groups(sqlite_engine: Engine) -> None:
    few = _grid(sqlite_engine, days=20, models=4, members=40, org="few")
    many = _grid(sqlite_engine, days=20, models=32, members=40, org="many")
    groups = sum(r.users for r in many.by_model_day) - sum(r.users for r in few.by_model_day)
    assert groups == 20 * 28 * 40

    def build(report: Report) -> object:
        return lambda: aggregate.build(sqlite_engine, report.organization.slug, report.period,
                                       now=NOW)

    _peak(build(few))  # warm: imports and caches are not the report's
    growth = _peak(build(many)) - _peak(build(few))
    # holding every group costs hundreds of bytes each (379 before the shares were streamed:
    # an object per share); the streamed report holds the model-day rows and one day's shares
    # (about 30)
    assert growth / groups < 60, f"{growth / groups:.0f} bytes per group"
