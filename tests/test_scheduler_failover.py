"""Two real scheduler processes on one database: the leader is killed, the other takes over."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from reporter.jobs import ledger
from reporter.jobs.config import load
from reporter.service import triggers
from reporter.service.lease import Lease
from reporter.store import db
from reporter.store import orgs as store

ORGS = 30
JOBS = """\
output: out
executor: {kind: local, workers: 1}
scheduler: {lease_seconds: 2, unit_timeout_seconds: 4, misfire_grace_seconds: 3600}
jobs:
  minutely:
    schedule: "* * * * *"
    timezone: UTC
    period: past-week
    formats: [json]
"""


def wait_for(what: str, check: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def start(tmp_path: Path, url: str, name: str) -> subprocess.Popen[bytes]:
    command = str(Path(sys.executable).parent / "reporter")
    with (tmp_path / f"{name}.log").open("wb") as log:
        return subprocess.Popen([command, "scheduler", "--config", "jobs.yaml", "--db", url,
                                 "-v"], cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:  # the scheduler and the pool workers it started
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


def delivered(engine: Engine) -> list[ledger.Record]:
    return [r for r in ledger.history(engine, limit=1000) if r.state == "delivered"]


@pytest.mark.slow
def test_leader_killed_standby_takes_over_and_delivers_once(
        tmp_path: Path, db_url: str, processes: list[subprocess.Popen[bytes]]) -> None:
    (tmp_path / "jobs.yaml").write_text(JOBS)
    engine = db.open_engine(db_url)
    for number in range(ORGS):
        store.set_org(engine, f"org{number:02d}")
    # the service was last up five minutes ago: the latest minute is owed at once
    specs = triggers.specs_for(load(tmp_path / "jobs.yaml"), {})
    triggers.sync(engine, specs, datetime.now(UTC) - timedelta(minutes=5))
    lease = Lease(engine, seconds=2)

    first = start(tmp_path, db_url, "first")
    processes.append(first)
    wait_for("a leader", lambda: lease.current() is not None, 30)
    second = start(tmp_path, db_url, "second")
    processes.append(second)
    wait_for("the first deliveries", lambda: len(delivered(engine)) >= 3, 60)
    first.send_signal(signal.SIGKILL)  # the leader only: its pool worker may finish its unit
    first.wait()
    assert len(delivered(engine)) < ORGS, "the batch ended before the leader was killed"

    wait_for("the standby to deliver the rest", lambda: len(delivered(engine)) == ORGS, 60)
    records = delivered(engine)
    assert sorted(r.organization for r in records) == [f"org{n:02d}" for n in range(ORGS)]
    assert {r.deliveries for r in records} == {1}
    assert {r.trigger for r in records} == {"schedule"}
    reports = sorted((tmp_path / "out" / "minutely").glob("*/*/*.json"))
    assert len([p for p in reports if p.name != "manifest.json"]) == ORGS
    holder = lease.current()
    assert holder is not None
    assert holder[0].split(":")[1] == str(second.pid)

    second.send_signal(signal.SIGTERM)
    assert second.wait(timeout=15) == 0
    log = (tmp_path / "second.log").read_text()
    assert "resuming the run scheduled for" in log
    assert log.rstrip().endswith("stopped")
    engine.dispose()
