"""Exactly once under faults: long units, overlapping runs, crashes, forced re-sends, periods
that are not over yet, and a run killed with its worker processes."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine

from reporter.cli import main
from reporter.config import Config
from reporter.deliver import smtp
from reporter.jobs import ledger, plan, runner
from reporter.jobs.units import Outcome, Unit
from reporter.store import db
from reporter.store import orgs as store
from tests.delivery_support import (
    NOW,
    Mailbox,
    SlowMailbox,
    seed,
    smtp_section,
    smtp_server,
    write_config,
)
from tests.helpers import wait_for

WEEKLY = """\
output: out
scheduler: {{unit_timeout_seconds: {timeout}}}
jobs:
  weekly:
    period: previous-week
    audience: admins
    formats: [json]
    deliver:
      store: false
      email: {{attach: [json]}}
  rolling:
    period: past-week
    audience: admins
    formats: [json]
  mtd:
    period: month-to-date
    audience: admins
    formats: [json]
"""


def weekly(tmp_path: Path, port: int | None, timeout: int = 600) -> Config:
    head = smtp_section(port) if port is not None else ""
    return write_config(tmp_path, head + WEEKLY.format(timeout=timeout))


def acme_unit(engine: Engine, cfg: Config, job: str = "weekly") -> Unit:
    return plan.plan(engine, cfg, job, as_of=NOW, orgs=["acme"])[0]


def in_thread(target: Callable[[], Outcome]) -> tuple[threading.Thread, list[Outcome]]:
    result: list[Outcome] = []
    thread = threading.Thread(target=lambda: result.append(target()))
    thread.start()
    return thread, result


# -- a live unit is never taken over, however long it runs ----------------------------------

def test_a_unit_running_longer_than_the_timeout_keeps_its_claim(tmp_path: Path,
                                                                engine: Engine) -> None:
    """The unit's clock moves three unit timeouts on while its message waits at the server;
    its heartbeat keeps the claim at that time, so a second attempt finds it held."""
    seed(engine)
    mailbox = SlowMailbox(gate=threading.Event())
    moment = [NOW]
    with smtp_server(mailbox) as port:
        cfg = weekly(tmp_path, port, timeout=1)
        unit = acme_unit(engine, cfg)
        first, first_outcome = in_thread(lambda: runner.execute(
            engine, cfg, unit, now=NOW, clock=lambda: moment[0]))
        wait_for("the first attempt to reach the server", lambda: mailbox.waiting == 1)
        moment[0] = NOW + timedelta(seconds=3)

        def beaten() -> bool:
            record = ledger.get(engine, unit)
            claimed = record.claimed_at if record is not None else None
            return claimed is not None and claimed.replace(tzinfo=UTC) >= moment[0]
        wait_for("a heartbeat at the unit's new time", beaten)
        second, second_outcome = in_thread(lambda: runner.execute(engine, cfg, unit,
                                                                  now=moment[0]))
        wait_for("the second attempt to end or reach the server",
                 lambda: not second.is_alive() or mailbox.waiting == 2)
        assert mailbox.gate is not None
        mailbox.gate.set()
        first.join(30)
        second.join(30)
    assert [o.state for o in first_outcome] == ["delivered"]
    [held] = second_outcome
    assert held.state == "held"
    assert held.note is not None
    assert "in progress elsewhere" in held.note
    assert mailbox.counts() == {"alice@acme.com": 1, "bob@acme.com": 1}
    record = ledger.get(engine, unit)
    assert record is not None
    assert (record.state, record.attempts, record.deliveries) == ("delivered", 1, 1)


def test_an_attempt_that_lost_its_claim_says_so(tmp_path: Path, sqlite_engine: Engine) -> None:
    seed(sqlite_engine)
    mailbox = SlowMailbox(gate=threading.Event())
    with smtp_server(mailbox) as port:
        cfg = weekly(tmp_path, port, timeout=600)
        unit = acme_unit(sqlite_engine, cfg)
        first, outcome = in_thread(lambda: runner.execute(sqlite_engine, cfg, unit, now=NOW))
        wait_for("the attempt to reach the server", lambda: mailbox.waiting == 1)
        # the process stalled past the timeout (a paused machine) and someone took over
        taken = ledger.claim(sqlite_engine, unit, owner="other", now=NOW + timedelta(hours=1),
                             timeout_seconds=600)
        assert taken.claimed
        assert mailbox.gate is not None
        mailbox.gate.set()
        first.join(30)
    [lost] = outcome
    assert lost.state == "failed"
    assert lost.error is not None
    assert "another process took this unit over" in lost.error
    record = ledger.get(sqlite_engine, unit)
    assert record is not None
    assert record.state == "running"  # the other attempt's, untouched


# -- held is not delivered ------------------------------------------------------------------

class Crash(BaseException):
    """A process dying mid-unit."""


def crash_while_sending(engine: Engine, cfg: Config, unit: Unit, now: datetime, *,
                        force: bool = False) -> None:
    def crash(*_args: object) -> dict[str, str]:
        raise Crash

    patch = pytest.MonkeyPatch()
    patch.setattr(smtp, "send", crash)
    try:
        with pytest.raises(Crash):
            runner.execute(engine, cfg, unit, now=now, force=force)
    finally:
        patch.undo()


def test_a_crashed_attempt_is_held_not_already_delivered(tmp_path: Path,
                                                         sqlite_engine: Engine) -> None:
    seed(sqlite_engine)
    mailbox = Mailbox()
    with smtp_server(mailbox) as port:
        cfg = weekly(tmp_path, port, timeout=600)
        now = datetime.now(UTC)
        [unit] = plan.plan(sqlite_engine, cfg, "weekly", as_of=now, orgs=["acme"])
        crash_while_sending(sqlite_engine, cfg, unit, now)
        soon = runner.execute(sqlite_engine, cfg, unit, now=now + timedelta(minutes=5))
        assert soon.state == "held"
        assert soon.note is not None
        when = re.search(r"taken over after (\S+Z) ", soon.note)
        assert when is not None, soon.note
        takeover = when.group(1)
        moment = datetime.fromisoformat(takeover.replace("Z", "+00:00"))
        assert timedelta(0) <= moment - (now + timedelta(seconds=600)) < timedelta(seconds=1)
        result = CliRunner().invoke(main, ["run", "weekly", "--org", "acme", "--config",
                                           str(cfg.path), "--db", str(sqlite_engine.url)])
        assert result.exit_code == 1, result.output
        [line] = [x for x in result.output.splitlines() if x.startswith("held ")]
        assert "acme admins" in line
        assert f"taken over after {takeover}" in line
        assert "1 units: delivered 0, already delivered 0, held 1, empty 0, failed 0" in (
            result.output)
        assert mailbox.received == []
        later = runner.execute(sqlite_engine, cfg, unit, now=now + timedelta(minutes=11))
        assert later.state == "delivered"
    assert mailbox.counts() == {"alice@acme.com": 1, "bob@acme.com": 1}


# -- a forced re-send that fails leaves the unit delivered ---------------------------------

def test_a_failed_forced_resend_keeps_the_unit_delivered(tmp_path: Path,
                                                         engine: Engine) -> None:
    seed(engine)
    mailbox = Mailbox()
    with smtp_server(mailbox) as port:
        cfg = weekly(tmp_path, port, timeout=600)
        unit = acme_unit(engine, cfg)
        assert runner.execute(engine, cfg, unit, now=NOW).state == "delivered"
        mailbox.faults = ["550 5.7.1 message rejected"]
        forced = runner.execute(engine, cfg, unit, now=NOW + timedelta(hours=1), force=True)
        assert forced.state == "failed"
        assert forced.error is not None
        assert "550 5.7.1" in forced.error
        assert forced.note is not None
        assert "the earlier delivery stands" in forced.note
        record = ledger.get(engine, unit)
        assert record is not None
        assert (record.state, record.deliveries, record.forced) == ("delivered", 1, 0)
        assert record.recipients == ["alice@acme.com", "bob@acme.com"]
        assert "forced re-send failed" in (record.error or "")
        assert "550 5.7.1" in (record.error or "")
        again = runner.execute(engine, cfg, unit, now=NOW + timedelta(hours=2))
        assert again.state == "already"
        # a forced re-send whose process died is not picked up by a plain run either
        crash_while_sending(engine, cfg, unit, NOW + timedelta(hours=3), force=True)
        after = runner.execute(engine, cfg, unit, now=NOW + timedelta(hours=4))
        assert after.state == "already"
        record = ledger.get(engine, unit)
        assert record is not None
        assert (record.state, record.deliveries) == ("delivered", 1)
        assert "abandoned" in (record.error or "")
    assert mailbox.counts() == {"alice@acme.com": 1, "bob@acme.com": 1}


# -- periods that are not over yet ---------------------------------------------------------

def test_rolling_periods_of_a_job_end_with_the_last_complete_day(tmp_path: Path,
                                                                 sqlite_engine: Engine) -> None:
    seed(sqlite_engine)
    cfg = weekly(tmp_path, None)
    # Monday 03:00 UTC: still Sunday the 11th in New York, already Monday in Berlin
    at = datetime(2026, 1, 12, 3, tzinfo=UTC)
    units = plan.plan(sqlite_engine, cfg, "rolling", as_of=at, trigger="schedule",
                      scheduled_for=at)
    assert [(u.organization, str(u.first), str(u.last)) for u in units] == [
        ("acme", "2026-01-04", "2026-01-10"), ("globex", "2026-01-05", "2026-01-11")]
    assert {o.state for o in runner.run_units(sqlite_engine, cfg, units, now=at)} == {
        "delivered"}
    first_of_month = datetime(2026, 2, 1, 12, tzinfo=UTC)
    units = plan.plan(sqlite_engine, cfg, "mtd", as_of=first_of_month, orgs=["globex"])
    assert [(str(u.first), str(u.last)) for u in units] == [("2026-01-01", "2026-01-31")]
    assert [o.state for o in runner.run_units(sqlite_engine, cfg, units,
                                              now=first_of_month)] == ["delivered"]


def test_a_backfill_skips_the_periods_not_over_yet(tmp_path: Path,
                                                  sqlite_engine: Engine) -> None:
    seed(sqlite_engine)
    cfg = weekly(tmp_path, None)
    units = plan.backfill(sqlite_engine, cfg, "weekly", first=date(2026, 1, 5),
                          last=date(2026, 2, 1), orgs=["acme"])
    wednesday = datetime(2026, 1, 21, 12, tzinfo=UTC)
    outcomes = runner.run_units(sqlite_engine, cfg, units, now=wednesday)
    assert [(str(o.unit.first), o.state) for o in outcomes] == [
        ("2026-01-05", "delivered"), ("2026-01-12", "delivered"), ("2026-01-19", "skipped"),
        ("2026-01-26", "skipped")]
    assert outcomes[2].note == "period ends 2026-01-26T00:00:00-05:00; not over yet"
    assert len(ledger.history(sqlite_engine)) == 2  # nothing recorded for what was skipped
    dry = runner.run_units(sqlite_engine, cfg, units, now=wednesday, dry_run=True)
    assert [o.state for o in dry] == ["already", "already", "skipped", "skipped"]
    later = runner.run_units(sqlite_engine, cfg, units, now=datetime(2026, 2, 3, tzinfo=UTC))
    assert [o.state for o in later] == ["already", "already", "delivered", "delivered"]


def test_run_refuses_an_explicit_period_not_over_yet(tmp_path: Path,
                                                    sqlite_engine: Engine) -> None:
    seed(sqlite_engine)
    cfg = weekly(tmp_path, None)
    today = datetime.now(UTC).date()
    args = ["run", "weekly", "--from", str(today - timedelta(days=3)), "--to",
            str(today + timedelta(days=3)), "--config", str(cfg.path),
            "--db", str(sqlite_engine.url)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    [line] = result.output.splitlines()
    assert line.startswith("reporter: error: ")
    assert f"{today + timedelta(days=3)}" in line
    assert "not over yet" in line
    assert ledger.history(sqlite_engine) == []
    # a named rolling period ends with the last complete day instead
    result = CliRunner().invoke(main, ["run", "rolling", "--org", "globex", "--period",
                                       "past-week", "--config", str(cfg.path),
                                       "--db", str(sqlite_engine.url)])
    assert result.exit_code == 0, result.output
    berlin_yesterday = datetime.now(ZoneInfo("Europe/Berlin")).date() - timedelta(days=1)
    [record] = ledger.history(sqlite_engine)
    assert (record.last, record.first) == (berlin_yesterday,
                                           berlin_yesterday - timedelta(days=6))


def test_generate_labels_a_period_not_over_yet_to_date(tmp_path: Path,
                                                       sqlite_engine: Engine) -> None:
    seed(sqlite_engine)
    base = ["generate", "--org", "acme", "--format", "json,html", "--db",
            str(sqlite_engine.url)]
    result = CliRunner().invoke(main, [*base, "--period", "past-week", "--out",
                                       str(tmp_path / "now")])
    assert result.exit_code == 0, result.output
    [json_path] = list((tmp_path / "now").rglob("*.json"))
    label = json.loads(json_path.read_text())["period"]["label"]
    assert label.endswith(" (to date)"), label
    [html_path] = list((tmp_path / "now").rglob("*.html"))
    title = re.search(r"<title>(.*?)</title>", html_path.read_text())
    assert title is not None
    assert title.group(1).endswith("(to date)")
    result = CliRunner().invoke(main, [*base, "--from", "2026-01-05", "--to", "2026-01-11",
                                       "--out", str(tmp_path / "past")])
    assert result.exit_code == 0, result.output
    [json_path] = list((tmp_path / "past").rglob("*.json"))
    assert json.loads(json_path.read_text())["period"]["label"] == (
        "Jan 5 – 11, 2026 (New York time)")


# -- real processes: overlapping runs, a killed run and its workers --------------------------

MEMBERS = """\
output: out
executor: {{kind: local, workers: 1}}
scheduler: {{unit_timeout_seconds: {timeout}}}
jobs:
  personal:
    period: previous-week
    audience: members
    formats: [json]
    deliver:
      store: false
      email: {{attach: [json]}}
"""


def members_setup(tmp_path: Path, url: str, count: int, port: int, timeout: int) -> list[str]:
    engine = db.open_engine(url)
    store.set_org(engine, "acme", name="Acme Corp")
    people = [f"m{n:02d}@acme.com" for n in range(count)]
    for email in people:
        store.set_member(engine, "acme", email)
    engine.dispose()
    # the server may hold a client for a while: the client waits for it
    head = smtp_section(port).replace("timeout_seconds: 5", "timeout_seconds: 120")
    (tmp_path / "jobs.yaml").write_text(head + MEMBERS.format(timeout=timeout))
    return people


def start_run(tmp_path: Path, url: str, name: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "REPORTER_DATABASE_URL"}
    command = str(Path(sys.executable).parent / "reporter")
    with (tmp_path / f"{name}.log").open("wb") as out:
        return subprocess.Popen([command, "run", "personal", "--config", "jobs.yaml",
                                 "--db", url], cwd=tmp_path, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)


def children(pid: int) -> set[int]:
    """Every live descendant of ``pid``."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z":
            parents.setdefault(int(fields[1]), []).append(int(entry.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.fixture
def processes() -> Iterator[list[int]]:
    """Pids to kill at the end, whatever the test left running."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.mark.slow
def test_a_second_run_during_a_long_batch_sends_nothing_twice(tmp_path: Path, db_url: str,
                                                              processes: list[int]) -> None:
    timeout = 3
    mailbox = SlowMailbox(delay=0.5, gate=threading.Event())
    assert mailbox.gate is not None
    mailbox.gate.set()
    with smtp_server(mailbox) as port:
        people = members_setup(tmp_path, db_url, 12, port, timeout)
        first = start_run(tmp_path, db_url, "first")
        processes.append(first.pid)
        wait_for("the first message", lambda: len(mailbox.received) >= 1)
        begun = time.monotonic()
        wait_for("the batch to outlast the unit timeout",
                 lambda: time.monotonic() - begun > timeout + 1)
        # hold the first run mid-unit, then start the second: it must leave that unit to
        # the first run and go on with the next one, while the first still holds its own
        mailbox.gate.clear()
        wait_for("the first run mid-unit", lambda: mailbox.waiting == 1)
        assert first.poll() is None
        assert len(mailbox.received) < len(people) - 1
        second = start_run(tmp_path, db_url, "second")
        processes.append(second.pid)
        wait_for("both runs mid-unit", lambda: mailbox.waiting == 2, 120)
        mailbox.gate.set()
        codes = (first.wait(120), second.wait(120))
    logs = [(tmp_path / f"{name}.log").read_text() for name in ("first", "second")]
    assert mailbox.counts() == dict.fromkeys(people, 1), logs
    # a run that left units to another process says so, and does not claim success
    assert re.search(r"^held +personal acme ", logs[1], re.MULTILINE), logs[1]
    for code, log in zip(codes, logs, strict=True):
        held = re.search(r"^held +personal acme ", log, re.MULTILINE)
        assert code == (1 if held else 0), log
    engine = db.open_engine(db_url)
    records = ledger.history(engine, limit=100)
    engine.dispose()
    assert sorted(r.audience for r in records) == [f"member:{p}" for p in people]
    assert {(r.state, r.deliveries) for r in records} == {("delivered", 1)}


@pytest.mark.slow
def test_killing_the_run_ends_its_worker_processes(tmp_path: Path, sqlite_engine: Engine,
                                                   processes: list[int]) -> None:
    url = str(sqlite_engine.url)
    mailbox = SlowMailbox(gate=threading.Event())
    with smtp_server(mailbox) as port:
        members_setup(tmp_path, url, 6, port, 30)
        run = start_run(tmp_path, url, "run")
        processes.append(run.pid)
        wait_for("a worker mid-unit", lambda: mailbox.waiting >= 1)
        workers = children(run.pid)
        processes.extend(workers)
        assert workers, "the run has no worker processes"
        run.send_signal(signal.SIGKILL)  # the parent only
        run.wait()
        wait_for("the workers to end with their parent",
                 lambda: not any(alive(pid) for pid in workers), 15)
        assert mailbox.gate is not None
        mailbox.gate.set()
    assert mailbox.received == []


@pytest.mark.slow
def test_a_run_killed_mid_batch_is_completed_by_a_rerun_once(tmp_path: Path,
                                                             sqlite_engine: Engine,
                                                             processes: list[int]) -> None:
    url = str(sqlite_engine.url)
    timeout = 6
    mailbox = SlowMailbox(gate=threading.Event())
    assert mailbox.gate is not None
    mailbox.gate.set()
    with smtp_server(mailbox) as port:
        people = members_setup(tmp_path, url, 6, port, timeout)
        crashed = start_run(tmp_path, url, "crashed")
        processes.append(crashed.pid)
        wait_for("two messages", lambda: len(mailbox.received) >= 2)
        mailbox.gate.clear()
        wait_for("a third on its way", lambda: mailbox.waiting == 1)
        workers = children(crashed.pid)
        processes.extend(workers)
        crashed.send_signal(signal.SIGKILL)  # kill -9 of the run, mid-unit
        crashed.wait()
        wait_for("its workers to end", lambda: not any(alive(pid) for pid in workers), 15)
        mailbox.gate.set()
        sent = len(mailbox.received)
        assert 2 <= sent < len(people)
        # at once: the killed unit is held while its claim is fresh, or taken over when the
        # claim went stale before the re-run reached it; the other units are delivered
        again = start_run(tmp_path, url, "again")
        processes.append(again.pid)
        code = again.wait(120)
        log = (tmp_path / "again.log").read_text()
        held = [x for x in log.splitlines() if x.startswith("held ")]
        assert code == (1 if held else 0), log
        if held:
            [line] = held
            assert sum(mailbox.counts().values()) == len(people) - 1
            when = re.search(r"taken over after (\S+Z)", line)
            assert when is not None, line
            takeover = datetime.fromisoformat(when.group(1).replace("Z", "+00:00"))
            wait_for("the claim to go stale", lambda: datetime.now(UTC) > takeover,
                     timeout + 5)
            last = start_run(tmp_path, url, "last")
            processes.append(last.pid)
            assert last.wait(120) == 0, (tmp_path / "last.log").read_text()
    assert mailbox.counts() == dict.fromkeys(people, 1)
    records = ledger.history(sqlite_engine, limit=100)
    assert {(r.state, r.deliveries) for r in records} == {("delivered", 1)}
    assert len(records) == len(people)
