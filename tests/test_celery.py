"""Celery fan-out: real Redis, two real ``reporter worker`` processes, one killed mid-batch."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis

from reporter.config import load
from reporter.jobs import ledger, plan, runner
from reporter.jobs.units import Outcome, Unit
from reporter.service import executors
from reporter.service.celery_app import QUEUE_ENV, outcome_from_dict, outcome_to_dict
from reporter.store import db
from reporter.store import orgs as store
from tests.delivery_support import SlowMailbox, smtp_section, smtp_server
from tests.helpers import wait_for

BROKER = os.environ.get("REPORTER_TEST_BROKER", "redis://127.0.0.1:6379/11")
ORGS = 50
JOBS = f"""\
output: out
executor: {{kind: celery, broker_url: "{BROKER}", max_reports_per_worker: 20}}
scheduler: {{unit_timeout_seconds: 5}}
jobs:
  weekly:
    schedule: "0 7 * * mon"
    timezone: UTC
    period: previous-week
    formats: [json]
    deliver:
      email: {{attach: [json]}}
"""


@pytest.fixture
def workers(tmp_path: Path, db_url: str,
            monkeypatch: pytest.MonkeyPatch) -> Iterator[list[subprocess.Popen[bytes]]]:
    # a queue of this test's own: other test runs on the machine share the Redis server
    queue = f"reporter-test-{uuid.uuid4().hex}"
    monkeypatch.setenv(QUEUE_ENV, queue)
    command = str(Path(sys.executable).parent / "reporter")
    env = {**os.environ, "REPORTER_BROKER_URL": BROKER}
    started = []
    for name in ("one", "two"):
        with (tmp_path / f"worker-{name}.log").open("wb") as log:
            started.append(subprocess.Popen(
                [command, "worker", "--config", "jobs.yaml", "--db", db_url,
                 "--concurrency", "1", "-v"], cwd=tmp_path, env=env, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True))
    yield started
    for proc in started:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
    redis.Redis.from_url(BROKER).delete(queue)


def test_wire_format_round_trips() -> None:
    unit = Unit("weekly", "acme", "member:a@acme.com", "previous-week",
                       datetime(2026, 11, 16).date(), datetime(2026, 11, 22).date(),
                       "schedule", datetime(2026, 11, 23, 7, tzinfo=UTC))
    outcome = Outcome(unit, "delivered", 1.5, None, ("a.json",), ("a@acme.com",), note="x")
    assert outcome_from_dict(outcome_to_dict(outcome)) == outcome


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_two_workers_one_killed_mid_batch_deliver_each_once(
        tmp_path: Path, db_url: str, workers: list[subprocess.Popen[bytes]]) -> None:
    # every message waits a little at the server, and while the gate is closed, not at all
    # before it opens: the batch cannot end before the kill, and the kill lands while the
    # killed worker's unit has sent nothing, whatever the machine's speed
    mailbox = SlowMailbox(delay=0.05, gate=threading.Event())
    assert mailbox.gate is not None
    mailbox.gate.set()
    with smtp_server(mailbox) as port:
        (tmp_path / "jobs.yaml").write_text(smtp_section(port) + JOBS)
        config = load(tmp_path / "jobs.yaml")
        engine = db.open_engine(db_url)
        for number in range(ORGS):
            store.set_org(engine, f"org{number:02d}")
            store.set_member(engine, f"org{number:02d}", f"admin@org{number:02d}.com",
                             role="admin")
        for log in ("worker-one.log", "worker-two.log"):
            wait_for(log, lambda log=log: b" ready." in (tmp_path / log).read_bytes(), 60)
        now = datetime.now(UTC)
        units = plan.plan(engine, config, "weekly", as_of=now, trigger="schedule")
        outcomes: list[Outcome] = []
        batch = threading.Thread(target=lambda: outcomes.extend(runner.run_units(
            engine, config, units, now=now,
            executor=executors.from_config(config, db_url))))
        batch.start()

        def delivered() -> list[ledger.Record]:
            return [r for r in ledger.history(engine, limit=1000) if r.state == "delivered"]

        wait_for("the first deliveries", lambda: len(delivered()) >= 5, 60)
        mailbox.gate.clear()
        wait_for("both workers mid-unit", lambda: mailbox.waiting == 2, 60)
        os.killpg(workers[0].pid, signal.SIGKILL)  # the worker and its pool, mid-unit
        workers[0].wait()
        assert len(delivered()) < ORGS, "the batch ended before the worker was killed"
        mailbox.gate.set()
        batch.join(timeout=120)
        assert not batch.is_alive()

    assert len(outcomes) == ORGS
    assert [o for o in outcomes if o.state not in ("delivered", "already")] == []
    records = delivered()
    assert sorted(r.organization for r in records) == [f"org{n:02d}" for n in range(ORGS)]
    assert {r.deliveries for r in records} == {1}
    assert mailbox.counts() == {f"admin@org{n:02d}.com": 1 for n in range(ORGS)}
    reports = [p for p in (tmp_path / "out" / "weekly").glob("*/*/*.json")
               if p.name != "manifest.json"]
    assert len(reports) == ORGS
    engine.dispose()
