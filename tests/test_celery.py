"""Celery fan-out: real Redis, two real ``reporter worker`` processes, one killed mid-batch."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
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


@pytest.mark.slow
def test_a_run_with_no_worker_gives_up_in_time_and_a_late_worker_sends_nothing(
        tmp_path: Path) -> None:
    queue = f"reporter-test-{uuid.uuid4().hex}"
    env = {**os.environ, "REPORTER_BROKER_URL": BROKER, QUEUE_ENV: queue}
    (tmp_path / "jobs.yaml").write_text(JOBS.replace(
        "max_reports_per_worker: 20}", "max_reports_per_worker: 20, start_timeout_seconds: 2}"))
    url = f"sqlite:///{tmp_path / 'reporter.db'}"
    engine = db.open_engine(url)
    for slug in ("acme", "globex", "initech"):
        store.set_org(engine, slug)
        store.set_member(engine, slug, f"admin@{slug}.com", role="admin")
    command = str(Path(sys.executable).parent / "reporter")
    began = time.monotonic()
    run = subprocess.run([command, "run", "weekly", "--config", "jobs.yaml", "--db", url,
                          "--from", "2026-11-16", "--to", "2026-11-22"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert time.monotonic() - began < 30
    assert run.returncode == 1, run.stderr
    said = (f"no Celery worker started a unit within 2 s (queue '{queue}' on {BROKER}); "
            "gave up, and it will not be run later")
    assert f"ERROR: {said}: 3 units not run\n" in run.stderr
    assert "Traceback" not in run.stderr
    assert run.stdout.count(f"error: {said}") == 3
    # a worker that starts later finds the tasks of a run that gave up: it runs none
    with (tmp_path / "worker.log").open("wb") as log:
        worker = subprocess.Popen([command, "worker", "--config", "jobs.yaml", "--db", url,
                                   "--concurrency", "1", "-v"], cwd=tmp_path, env=env,
                                  stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        broker = redis.Redis.from_url(BROKER)
        wait_for("the worker", lambda: b" ready." in (tmp_path / "worker.log").read_bytes(), 60)
        wait_for("the queue to drain", lambda: broker.llen(queue) == 0, 60)
        wait_for("the worker to look at each task", lambda: (
            tmp_path / "worker.log").read_bytes().count(b"not run") >= 3, 60)
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
        redis.Redis.from_url(BROKER).delete(queue)
    assert [r for r in ledger.history(engine) if r.deliveries] == []
    assert not (tmp_path / "out" / "outbox").exists()
    # every worker log line carries its time with the offset
    logged = [line for line in (tmp_path / "worker.log").read_text().splitlines()
              if " reporter.service" in line]
    assert len(logged) >= 3
    for line in logged:
        assert datetime.fromisoformat(line.split(" ", 1)[0]).utcoffset() is not None
    engine.dispose()


def test_a_broker_that_is_down_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "jobs.yaml").write_text(JOBS.replace(BROKER, "redis://127.0.0.1:1/0"))
    url = f"sqlite:///{tmp_path / 'reporter.db'}"
    engine = db.open_engine(url)
    store.set_org(engine, "acme")
    env = {k: v for k, v in os.environ.items() if k != "REPORTER_BROKER_URL"}
    command = str(Path(sys.executable).parent / "reporter")
    run = subprocess.run([command, "run", "weekly", "--config", "jobs.yaml", "--db", url,
                          "--from", "2026-11-16", "--to", "2026-11-22"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 1
    assert run.stderr.startswith("reporter: error: Celery queue 'celery' on "
                                 "redis://127.0.0.1:1/0: cannot send the units: ")
    assert run.stderr.count("\n") == 1, run.stderr
    engine.dispose()
