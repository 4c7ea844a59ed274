"""Executors: the local process pool delivers through the ledger, recycles and stops."""

from __future__ import annotations

import functools
import os
import threading
import time
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy import Engine

from reporter.config import load
from reporter.jobs import ledger, plan, runner
from reporter.jobs.units import Outcome, Unit
from reporter.service import executors
from reporter.store import orgs as store
from tests.helpers import wait_for

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


def whoami(unit: Unit, force: bool, dry_run: bool, now: datetime, origin: float) -> Outcome:
    return Outcome(unit, "delivered", note=str(os.getpid()))


def gated(folder: Path, unit: Unit, force: bool, dry_run: bool, now: datetime,
          origin: float) -> Outcome:
    """Say the unit started, then wait until the test lets it finish."""
    (folder / f"started-{unit.organization}").touch()
    deadline = time.monotonic() + 60
    while not (folder / f"go-{unit.organization}").exists():
        if time.monotonic() > deadline:
            raise TimeoutError(unit.organization)
        time.sleep(0.01)
    return Outcome(unit, "delivered")


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


def test_workers_are_recycled(tmp_path: Path) -> None:
    (tmp_path / "jobs.yaml").write_text(JOBS)
    pool = executors.LocalPool(load(tmp_path / "jobs.yaml"), f"sqlite:///{tmp_path}/r.db",
                               workers=2, max_reports=2, task=whoami)
    try:
        outcomes = list(pool(units(8), False, False, NOW))
    finally:
        pool.close()
    assert [o.unit.organization for o in outcomes] == [f"org{n}" for n in range(8)]
    served = Counter(o.note for o in outcomes)
    # each process is replaced after two units, however fast they are
    assert max(served.values()) <= 2
    assert len(served) >= 4


def test_stop_lets_the_units_in_hand_finish_and_starts_no_more(tmp_path: Path) -> None:
    (tmp_path / "jobs.yaml").write_text(JOBS)
    gates = tmp_path / "gates"
    gates.mkdir()
    pool = executors.LocalPool(load(tmp_path / "jobs.yaml"), f"sqlite:///{tmp_path}/r.db",
                               workers=2, task=functools.partial(gated, gates),
                               stop=threading.Event())
    try:
        stream = iter(pool(units(20), False, False, NOW))
        (gates / "go-org0").touch()
        first = next(stream)
        assert pool.stop is not None
        pool.stop.set()
        wait_for("the second unit in hand", (gates / "started-org1").exists, 60)
        (gates / "go-org1").touch()
        rest = list(stream)
    finally:
        pool.close()
    assert [o.unit.organization for o in [first, *rest]] == ["org0", "org1"]
    assert sorted(p.name for p in gates.glob("started-*")) == ["started-org0", "started-org1"]
