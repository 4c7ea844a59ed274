"""Two real scheduler processes on one database: the leader dies mid-batch, the other takes
over and every report is delivered exactly once.

The leader's batch is held, not raced: the loopback SMTP server accepts the first messages
and then keeps the next one waiting at RCPT, so the leader is killed with the batch
provably unfinished on any machine, and nothing of the held message was sent.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import Engine

from reporter.config import load
from reporter.jobs import ledger
from reporter.service import triggers
from reporter.service.lease import Lease
from reporter.store import db
from reporter.store import orgs as store
from tests.delivery_support import free_port
from tests.helpers import wait_for

ORGS = 12
#: messages the SMTP server accepts before it holds the next one
THROUGH = 3
JOBS = """\
output: out
executor: {{kind: local, workers: 1}}
scheduler: {{lease_seconds: 2, unit_timeout_seconds: 4, misfire_grace_seconds: 3600}}
smtp:
  host: 127.0.0.1
  port: {port}
  security: none
  from: reports@example.com
  timeout_seconds: 30
  retries: 0
jobs:
  daily:
    schedule: "{schedule}"
    timezone: UTC
    period: past-week
    audience: [ops@example.com]
    formats: [json]
    deliver:
      store: true
      email:
        subject: "{{{{ organization.slug }}}}"
        attach: [json]
"""


class HeldMailbox:
    """An aiosmtpd handler that accepts ``through`` messages, then holds each later one at
    RCPT (before any of its content is sent) until ``gate`` is set."""

    def __init__(self, through: int) -> None:
        self.through = through
        self.gate = threading.Event()
        self.started = 0
        self.held = 0
        self.subjects: list[str] = []

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        self.started += 1
        if self.started > self.through and not self.gate.is_set():
            self.held += 1
            while not self.gate.is_set():
                await asyncio.sleep(0.02)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content, policy=policy.default)
        self.subjects.append(str(message["Subject"]))
        return "250 OK"


@pytest.fixture
def mailbox() -> Iterator[tuple[HeldMailbox, int]]:
    handler = HeldMailbox(THROUGH)
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        handler.gate.set()
        controller.stop()


def start(tmp_path: Path, url: str, name: str) -> subprocess.Popen[bytes]:
    command = str(Path(sys.executable).parent / "reporter")
    with (tmp_path / f"{name}.log").open("wb") as log:
        return subprocess.Popen([command, "scheduler", "--config", "jobs.yaml", "--db", url,
                                 "-v"], cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL a scheduler and the pool workers it started (one process group)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        kill_group(proc)


def delivered(engine: Engine) -> list[ledger.Record]:
    return [r for r in ledger.history(engine, limit=1000) if r.state == "delivered"]


@pytest.mark.slow
def test_leader_killed_standby_takes_over_and_delivers_once(
        tmp_path: Path, db_url: str, processes: list[subprocess.Popen[bytes]],
        mailbox: tuple[HeldMailbox, int]) -> None:
    smtp, port = mailbox
    # a daily run owed since ten minutes ago (the service was down then); the next one is
    # a day away, so no other run starts while the test runs, whatever the hour
    owed = (datetime.now(UTC) - timedelta(minutes=10)).replace(second=0, microsecond=0)
    (tmp_path / "jobs.yaml").write_text(
        JOBS.format(port=port, schedule=f"{owed.minute} {owed.hour} * * *"))
    engine = db.open_engine(db_url)
    for number in range(ORGS):
        store.set_org(engine, f"org{number:02d}")
    specs = triggers.specs_for(load(tmp_path / "jobs.yaml"), {})
    triggers.sync(engine, specs, owed - timedelta(minutes=10))
    lease = Lease(engine, seconds=2)

    first = start(tmp_path, db_url, "first")
    processes.append(first)
    wait_for("a leader", lambda: lease.current() is not None, 30)
    second = start(tmp_path, db_url, "second")
    processes.append(second)
    # one worker: the leader sends units one at a time, and the fourth waits at RCPT
    wait_for("the leader's batch to be held", lambda: smtp.held == 1, 60)
    holder = lease.current()
    assert holder is not None
    assert holder[0].split(":")[1] == str(first.pid)
    assert len(delivered(engine)) == THROUGH, "the leader's batch is not held mid-way"
    assert len(smtp.subjects) == THROUGH

    kill_group(first)  # the leader's machine dies: scheduler and pool worker alike
    smtp.gate.set()

    wait_for("the standby to deliver the rest", lambda: len(delivered(engine)) == ORGS, 60)
    records = delivered(engine)
    orgs = [f"org{n:02d}" for n in range(ORGS)]
    assert sorted(r.organization for r in records) == orgs
    assert {r.deliveries for r in records} == {1}
    assert {r.trigger for r in records} == {"schedule"}
    # each organization's report reached the mail server once: nothing was sent twice
    assert Counter(smtp.subjects) == Counter(orgs)
    reports = sorted((tmp_path / "out" / "daily").glob("*/*/*.json"))
    assert len([p for p in reports if p.name != "manifest.json"]) == ORGS
    holder = lease.current()
    assert holder is not None
    assert holder[0].split(":")[1] == str(second.pid)

    second.send_signal(signal.SIGTERM)
    assert second.wait(timeout=15) == 0
    log = (tmp_path / "second.log").read_text()
    assert f"resuming the run scheduled for {owed.isoformat()}" in log
    assert log.rstrip().endswith("stopped")
    engine.dispose()
