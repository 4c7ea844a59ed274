"""The scheduler never drops a fire silently: every failure is logged, recorded on the fire
(``reporter runs`` shows it) and retried with a backoff; a source that is down delays only
the jobs that read it; a timezone change never loses a period; runs and jobs speak JSON."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine

from reporter.cli import main
from reporter.config import Config
from reporter.jobs import ledger
from reporter.jobs.units import Outcome, Unit
from reporter.service import executors, triggers
from reporter.service.scheduler import Service
from reporter.store import orgs as store

JOBS = """\
output: out
scheduler: {misfire_grace_seconds: 7200}
jobs:
  weekly:
    schedule: "0 23 * * sun"
    timezone: UTC
    period: previous-week
    formats: [json]
"""


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


class Breakable:
    """An executor factory: runs units in this process, or raises ``fault`` when set (a
    Celery broker that is away, a bug in a job's kind)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.fault: Exception | None = None

    def __call__(self, config: Config, halt: threading.Event) -> executors.Executor:
        serial = executors.serial(self.engine, config, halt)

        def run(units: Sequence[Unit], force: bool, dry_run: bool,
                now: datetime) -> Iterator[Outcome]:
            if self.fault is not None:
                raise self.fault
            yield from serial(units, force, dry_run, now)

        return run


def service(engine: Engine, path: Path, clock: Clock,
            factory: Breakable | None = None) -> Service:
    return Service(engine, path, str(engine.url), clock=clock,
                   executor_factory=factory or Breakable(engine))


def cli(engine: Engine, path: Path, *args: str) -> str:
    result = CliRunner().invoke(main, [*args, "--config", str(path), "--db", str(engine.url)])
    assert result.exit_code == 0, result.output
    return result.output


def test_a_fire_that_raises_is_logged_recorded_and_retried_with_backoff(
        sqlite_engine: Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "jobs.yaml"
    path.write_text(JOBS)
    store.set_org(sqlite_engine, "acme")
    clock = Clock(utc(2026, 11, 22, 12))
    factory = Breakable(sqlite_engine)
    factory.fault = RuntimeError("the broker is away")
    svc = service(sqlite_engine, path, clock, factory)
    svc.refresh(clock.now)
    clock.now = utc(2026, 11, 22, 23, 1)
    with caplog.at_level(logging.INFO, logger="reporter"):
        assert svc.tick(clock.now) == []
    [line] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert line.exc_info is not None  # a bug keeps its traceback in the log
    assert "RuntimeError: the broker is away" in line.getMessage()
    assert "trying again at 2026-11-22T23:11:00+00:00" in line.getMessage()
    state = triggers.load_states(sqlite_engine)["weekly"]
    assert (state.finished, state.failures, state.retry_at) == (
        False, 1, utc(2026, 11, 22, 23, 11))
    assert svc.due(clock.now) == []  # not dispatched again every turn
    # the backoff doubles with each failure in a row
    clock.now = utc(2026, 11, 22, 23, 11)
    assert svc.tick(clock.now) == []
    state = triggers.load_states(sqlite_engine)["weekly"]
    assert (state.failures, state.retry_at) == (2, utc(2026, 11, 22, 23, 31))
    # reporter runs says why, and when it is tried again; --json for monitoring
    shown = cli(sqlite_engine, path, "runs")
    assert ("2026-11-22 23:00:00  failed    weekly scheduled run (UTC) failures=2 next try "
            "2026-11-22 23:31:00  error: unexpected error: RuntimeError: the broker is away"
            in shown)
    [fire] = json.loads(cli(sqlite_engine, path, "runs", "--json", "--state", "failed"))
    assert fire == {"kind": "fire", "job": "weekly", "trigger": "weekly", "timezone": "UTC",
                    "organizations": None, "state": "failed",
                    "scheduled_for": "2026-11-22T23:00:00+00:00", "failures": 2,
                    "retry_at": "2026-11-22T23:31:00+00:00",
                    "error": "unexpected error: RuntimeError: the broker is away"}
    # past the grace period a fire that started in time is still owed: it is delivered
    factory.fault = None
    clock.now = utc(2026, 11, 23, 3)
    [batch] = svc.tick(clock.now)
    assert [o.state for o in batch.outcomes] == ["delivered"]
    state = triggers.load_states(sqlite_engine)["weekly"]
    assert (state.finished, state.failures, state.error) == (True, 0, None)
    [unit] = json.loads(cli(sqlite_engine, path, "runs", "--json"))
    assert (unit["kind"], unit["state"], unit["organization"], unit["first"]) == (
        "unit", "delivered", "acme", "2026-11-09")


def test_a_fire_superseded_before_it_finished_shows_its_units_missed(
        sqlite_engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "jobs.yaml"
    path.write_text(JOBS)
    store.set_org(sqlite_engine, "acme")
    clock = Clock(utc(2026, 11, 22, 12))
    factory = Breakable(sqlite_engine)
    factory.fault = ValueError("bad value")
    svc = service(sqlite_engine, path, clock, factory)
    svc.refresh(clock.now)
    clock.now = utc(2026, 11, 22, 23, 1)
    assert svc.tick(clock.now) == []
    factory.fault = None
    clock.now = utc(2026, 11, 29, 23, 1)  # a week of failures: the next fire comes first
    [batch] = svc.tick(clock.now)
    assert [o.state for o in batch.outcomes] == ["delivered"]
    rows = {(r.first.isoformat(), r.state): r for r in ledger.history(sqlite_engine)}
    assert set(rows) == {("2026-11-16", "delivered"), ("2026-11-09", "missed")}
    assert "never finished (unexpected error: ValueError: bad value)" in str(
        rows["2026-11-09", "missed"].error)
    assert "missed    weekly acme" in cli(sqlite_engine, path, "runs", "--state", "missed")
    # a missed unit is not lost: a run of that period delivers it
    result = CliRunner().invoke(main, ["run", "weekly", "--from", "2026-11-09", "--to",
                                       "2026-11-15", "--config", str(path), "--db",
                                       str(sqlite_engine.url)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("delivered")


def test_a_fire_past_its_grace_period_is_shown_missed(sqlite_engine: Engine,
                                                      tmp_path: Path) -> None:
    path = tmp_path / "jobs.yaml"
    path.write_text(JOBS)
    store.set_org(sqlite_engine, "acme")
    clock = Clock(utc(2026, 11, 22, 12))
    svc = service(sqlite_engine, path, clock)
    svc.refresh(clock.now)
    clock.now = utc(2026, 11, 23, 4)  # the service was down over Sunday 23:00, and more
    assert svc.tick(clock.now) == []
    [record] = ledger.history(sqlite_engine)
    assert (record.state, record.organization, str(record.first)) == (
        "missed", "acme", "2026-11-09")
    assert "past the grace period of 7200 s" in str(record.error)
    objects = json.loads(cli(sqlite_engine, path, "runs", "--json"))
    assert [(o["kind"], o["state"]) for o in objects] == [("fire", "missed"),
                                                          ("unit", "missed")]


NIGHTLY = """\
output: out
scheduler: {misfire_grace_seconds: 7200}
jobs:
  nightly:
    schedule: "30 2 * * *"
    period: past-week
    formats: [json]
"""


@pytest.mark.parametrize(("moved_at", "state"), [((2, 0), "delivered"), ((5, 0), "missed")])
def test_an_organization_that_changes_timezone_on_its_run_day_loses_nothing(
        sqlite_engine: Engine, tmp_path: Path, moved_at: tuple[int, int],
        state: str) -> None:
    path = tmp_path / "jobs.yaml"
    path.write_text(NIGHTLY)
    store.set_org(sqlite_engine, "acme", timezone="America/New_York")
    store.set_org(sqlite_engine, "globex", timezone="Europe/Berlin")
    clock = Clock(utc(2026, 11, 22, 12))
    svc = service(sqlite_engine, path, clock)
    svc.refresh(clock.now)
    # Berlin's 02:30 (01:30 UTC) fires for globex; New York's is at 07:30 UTC
    clock.now = utc(2026, 11, 23, 1, 31)
    svc.refresh(clock.now)
    [berlin] = svc.tick(clock.now)
    assert [o.unit.organization for o in berlin.outcomes] == ["globex"]
    # acme moves to Berlin after Berlin fired, before New York would have
    clock.now = utc(2026, 11, 23, *moved_at)
    store.set_org(sqlite_engine, "acme", timezone="Europe/Berlin")
    svc.refresh(clock.now)
    svc.tick(clock.now)
    for hour in (7, 8, 12):
        clock.now = utc(2026, 11, 23, hour, 31)
        svc.refresh(clock.now)
        svc.tick(clock.now)
    [record] = ledger.history(sqlite_engine, organization="acme")
    assert (record.state, str(record.first), str(record.last)) == (
        state, "2026-11-16", "2026-11-22")
    assert record.deliveries == (1 if state == "delivered" else 0)
    # the catch-up is forgotten once done: nothing more is owed
    assert svc.due(utc(2026, 11, 23, 13)) == []
    assert set(triggers.load_states(sqlite_engine)) == {"nightly@Europe/Berlin"}


def test_an_organization_moving_west_after_its_run_is_not_sent_twice(
        sqlite_engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "jobs.yaml"
    path.write_text(NIGHTLY)
    store.set_org(sqlite_engine, "acme", timezone="Europe/Berlin")
    store.set_org(sqlite_engine, "initech", timezone="America/New_York")
    clock = Clock(utc(2026, 11, 22, 12))
    svc = service(sqlite_engine, path, clock)
    svc.refresh(clock.now)
    clock.now = utc(2026, 11, 23, 1, 31)
    svc.tick(clock.now)
    store.set_org(sqlite_engine, "acme", timezone="America/New_York")
    for hour in (2, 7, 8):
        clock.now = utc(2026, 11, 23, hour, 31)
        svc.refresh(clock.now)
        svc.tick(clock.now)
    [record] = ledger.history(sqlite_engine, organization="acme")
    assert (record.state, record.deliveries, str(record.first)) == ("delivered", 1,
                                                                     "2026-11-16")


def test_a_job_whose_timezone_changes_after_the_new_zone_fired_is_caught_up(
        sqlite_engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "jobs.yaml"
    path.write_text(JOBS.replace('"0 23 * * sun"', '"0 7 * * mon"')
                    .replace("timezone: UTC", "timezone: America/New_York"))
    store.set_org(sqlite_engine, "acme")
    clock = Clock(utc(2026, 11, 22, 12))
    svc = service(sqlite_engine, path, clock)
    svc.refresh(clock.now)
    # Monday 07:00 in Berlin (06:00 UTC) has passed, 07:00 in New York (12:00 UTC) has not
    clock.now = utc(2026, 11, 23, 6, 30)
    path.write_text(path.read_text().replace("America/New_York", "Europe/Berlin"))
    svc.leading = True
    svc.reload()
    [batch] = svc.tick(clock.now)
    assert [o.state for o in batch.outcomes] == ["delivered"]
    assert batch.scheduled_for == utc(2026, 11, 23, 6)


def test_jobs_json_lists_each_job_with_its_next_runs(sqlite_engine: Engine,
                                                     tmp_path: Path) -> None:
    path = tmp_path / "jobs.yaml"
    path.write_text(NIGHTLY + "  manual:\n    period: past-week\n    formats: [json]\n")
    store.set_org(sqlite_engine, "acme", timezone="Asia/Kolkata")
    [nightly, manual] = json.loads(cli(sqlite_engine, path, "jobs", "--json"))
    assert nightly["name"] == "nightly"
    assert nightly["schedule"] == "30 2 * * *"
    [trigger] = nightly["next"]
    assert trigger["trigger"] == "nightly@Asia/Kolkata"
    assert len(trigger["times"]) == 3
    assert all(t.endswith("T02:30:00+05:30") for t in trigger["times"])
    assert (manual["schedule"], manual["next"]) == (None, [])


def test_validate_refuses_a_schedule_that_never_fires(tmp_path: Path) -> None:
    path = tmp_path / "jobs.yaml"
    path.write_text(JOBS.replace('"0 23 * * sun"', '"0 0 31 2 *"'))
    result = CliRunner().invoke(main, ["validate", "--config", str(path), "--db",
                                       f"sqlite:///{tmp_path / 'r.db'}"])
    assert result.exit_code == 1
    assert result.stderr == ("jobs.yaml:5: job 'weekly': schedule '0 0 31 2 *' never fires "
                             "(no such date); give a day that exists in the months it "
                             "names\n")
    # a day that exists only in leap years fires
    path.write_text(JOBS.replace('"0 23 * * sun"', '"0 0 29 2 *"'))
    result = CliRunner().invoke(main, ["validate", "--config", str(path), "--db",
                                       f"sqlite:///{tmp_path / 'r.db'}"])
    assert "never fires" not in result.output


def test_service_log_lines_carry_an_iso_time_with_offset_and_the_job() -> None:
    from reporter import logcontext
    from reporter.cli.service import ServiceFormatter

    record = logging.LogRecord("reporter.jobs.runner", logging.INFO, __file__, 1,
                               "delivered", None, None)
    record.created = utc(2026, 11, 23, 7, 0, 1).timestamp()
    with logcontext.about("weekly", "acme"):
        text = ServiceFormatter().format(record)
    stamp, rest = text.split(" ", 1)
    moment = datetime.fromisoformat(stamp)
    assert moment.utcoffset() is not None
    assert moment == utc(2026, 11, 23, 7, 0, 1)
    assert rest == "INFO reporter.jobs.runner [job=weekly org=acme]: delivered"


SOURCES = """output: out
scheduler: {misfire_grace_seconds: 7200}
sources:
  acme-gateway:
    kind: litellm
    url_env: ACME_GATEWAY_URL
    organization: acme
jobs:
  acme-weekly:
    schedule: "0 23 * * sun"
    timezone: UTC
    period: previous-week
    organizations: [acme]
    formats: [json]
    sync: true
  globex-weekly:
    schedule: "0 23 * * sun"
    timezone: UTC
    period: previous-week
    organizations: [globex]
    formats: [json]
    sync: true
  everyone-weekly:
    schedule: "0 23 * * sun"
    timezone: UTC
    period: previous-week
    formats: [json]
"""


def test_a_source_down_delays_only_the_jobs_that_read_it(
        sqlite_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "jobs.yaml"
    path.write_text(SOURCES)
    monkeypatch.setenv("ACME_GATEWAY_URL", "postgresql://u:pw@127.0.0.1:1/x")  # down
    store.set_org(sqlite_engine, "acme")
    store.set_org(sqlite_engine, "globex")
    clock = Clock(utc(2026, 11, 22, 12))
    svc = service(sqlite_engine, path, clock)
    svc.refresh(clock.now)
    clock.now = utc(2026, 11, 22, 23, 0, 5)
    with caplog.at_level(logging.INFO, logger="reporter"):
        batches = svc.tick(clock.now)
        # the job no source feeds and the job with 'sync: false' deliver on time
        assert sorted((b.trigger_id, o.unit.organization, o.state)
                      for b in batches for o in b.outcomes) == [
            ("everyone-weekly", "acme", "delivered"), ("everyone-weekly", "globex", "delivered"),
            ("globex-weekly", "globex", "delivered")]
        # the job that reads the source that is down waits for it, with a line each time
        for _retry in range(4):
            clock.now = triggers.load_states(sqlite_engine)["acme-weekly"].retry_at
            assert svc.tick(clock.now) == []
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 5
    assert all(e.startswith("job acme-weekly (UTC): the run scheduled for "
                            "2026-11-22T23:00:00+00:00 failed: job acme-weekly: could not sync "
                            "first: source 'acme-gateway'") for e in errors)
    assert not any("pw@" in e for e in errors)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR and r.exc_info]
    # only that job tried the source: once per attempt
    assert len([r for r in caplog.records if r.name == "reporter.store.sources.sync"]) == 5
    # hours later, past the grace period, it is still owed (and shown failed, with why)
    assert clock.now > utc(2026, 11, 23, 1)
    assert [d.kind for d in svc.due(clock.now + timedelta(hours=1))] == ["resume"]
    state = triggers.load_states(sqlite_engine)["acme-weekly"]
    assert state.failures == 5
    assert "could not sync first" in str(state.error)
