"""Executors: the local process pool delivers through the ledger, recycles and stops."""

from __future__ import annotations

import os
import threading
import time
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy import Engine

from reporter.jobs import ledger, plan, runner
from reporter.jobs.config import load
from reporter.jobs.units import Outcome, Unit
from reporter.service import executors
from reporter.store import orgs as store

JOBS = """\
output: out
executor: {kind: local, workers: 2, max_reports_per_worker: 2}
jobs:
  weekly:
    schedule: "0 7 * * mon"
    period: previous-week
    formats: [json]
"""
NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)


def whoami(unit: Unit, force: bool, dry_run: bool, now: datetime, sent: float) -> Outcome:
    time.sleep(0.05)
    return Outcome(unit, "delivered", note=str(os.getpid()))


def units(count: int) -> list[Unit]:
    return [Unit("j", f"org{n}", "admins", "past-week", date(2026, 11, 1), date(2026, 11, 7))
            for n in range(count)]


def test_local_pool_delivers_each_unit_once(sqlite_engine: Engine, tmp_path: Path) -> None:
    (tmp_path / "jobs.yaml").write_text(JOBS)
    config = load(tmp_path / "jobs.yaml")
    for number in range(5):
        store.set_org(sqlite_engine, f"org{number}", timezone="Asia/Kolkata")
    planned = plan.plan(sqlite_engine, config, "weekly", as_of=NOW)
    pool = executors.from_config(config, str(sqlite_engine.url))
    assert isinstance(pool, executors.LocalPool)
    try:
        first = runner.run_units(sqlite_engine, config, planned, now=NOW, executor=pool)
        again = runner.run_units(sqlite_engine, config, planned, now=NOW, executor=pool)
    finally:
        pool.close()
    assert sorted(o.unit.organization for o in first) == [f"org{n}" for n in range(5)]
    assert {o.state for o in first} == {"delivered"}
    assert {o.state for o in again} == {"already"}
    for unit in planned:
        record = ledger.get(sqlite_engine, unit)
        assert record is not None
        assert record.deliveries == 1


def test_workers_are_recycled_and_stop_lets_units_in_hand_finish(tmp_path: Path) -> None:
    (tmp_path / "jobs.yaml").write_text(JOBS)
    pool = executors.LocalPool(load(tmp_path / "jobs.yaml"), f"sqlite:///{tmp_path}/r.db",
                               workers=2, max_reports=2, task=whoami)
    try:
        outcomes = list(pool(units(8), False, False, NOW))
        # two workers, each replaced after two units: at least four processes served
        assert len({o.note for o in outcomes}) >= 4
        assert len(outcomes) == 8
        pool.stop = threading.Event()
        seen = []
        for outcome in pool(units(20), False, False, NOW):
            seen.append(outcome)
            pool.stop.set()
        assert 1 <= len(seen) <= 2  # what was in hand when asked to stop
    finally:
        pool.close()
