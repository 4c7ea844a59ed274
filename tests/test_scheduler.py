"""The scheduler's clock-free core: triggers, what is due, catch-up, DST, the lease."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from reporter.config import Config, load
from reporter.jobs import ledger
from reporter.service import executors, triggers
from reporter.service.lease import Lease
from reporter.service.scheduler import Service, next_runs
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
  nightly:
    schedule: "30 2 * * *"
    period: past-week
    formats: [json]
  off:
    schedule: "0 1 * * *"
    period: past-week
    formats: [json]
    enabled: false
"""


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def cfg_path(tmp_path: Path) -> Path:
    path = tmp_path / "jobs.yaml"
    path.write_text(JOBS)
    return path


def service(engine: Engine, path: Path, clock: Clock) -> Service:
    def serial(config: Config, halt: threading.Event) -> executors.Executor:
        return executors.serial(engine, config, halt)

    return Service(engine, path, str(engine.url), clock=clock, executor_factory=serial)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_one_trigger_per_job_or_per_organization_timezone(cfg_path: Path) -> None:
    zones = {"acme": "America/New_York", "globex": "Europe/Berlin", "umbrella": "Europe/Berlin"}
    specs = triggers.specs_for(load(cfg_path), zones)
    assert sorted(specs) == ["nightly@America/New_York", "nightly@Europe/Berlin", "weekly"]
    assert specs["nightly@Europe/Berlin"].orgs == ("globex", "umbrella")
    assert specs["weekly"].orgs is None


def test_due_runs_coalesces_missed_fires_within_grace() -> None:
    spec = triggers.Spec("daily", "daily", "0 7 * * *", "UTC")
    specs = {"daily": spec}
    last = triggers.FireState(utc(2026, 11, 20, 7))
    # down for three days: one run, for the latest fire, if it is within the grace period
    assert triggers.due_runs(specs, {"daily": last}, utc(2026, 11, 23, 8), 7200) == [
        triggers.Due("daily", utc(2026, 11, 23, 7), "run")]
    assert triggers.due_runs(specs, {"daily": last}, utc(2026, 11, 23, 10), 7200) == [
        triggers.Due("daily", utc(2026, 11, 23, 7), "missed")]
    done = triggers.FireState(utc(2026, 11, 23, 7))
    assert triggers.due_runs(specs, {"daily": done}, utc(2026, 11, 23, 8), 7200) == []
    assert triggers.due_runs(specs, {}, utc(2026, 11, 23, 8), 7200) == []
    # a batch left unfinished is resumed, after its retry time
    left = triggers.FireState(utc(2026, 11, 23, 7), finished=False,
                              retry_at=utc(2026, 11, 23, 7, 10))
    assert triggers.due_runs(specs, {"daily": left}, utc(2026, 11, 23, 7, 5), 7200) == []
    assert triggers.due_runs(specs, {"daily": left}, utc(2026, 11, 23, 7, 10), 7200) == [
        triggers.Due("daily", utc(2026, 11, 23, 7), "resume")]


def test_dst_fire_times_in_berlin() -> None:
    cron = triggers.Spec("n", "n", "30 2 * * *", "Europe/Berlin").cron()
    autumn = list(triggers.fire_times(cron, utc(2026, 10, 24, 12), utc(2026, 10, 26, 12)))
    # 02:30 happens twice when the clocks fall back, and APScheduler fires at both
    assert autumn == [utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 1, 30),
                      utc(2026, 10, 26, 1, 30)]
    spring = list(triggers.fire_times(cron, utc(2026, 3, 28, 12), utc(2026, 3, 30, 12)))
    # 02:30 does not exist on 29 March; the job still runs that day (03:30 CEST)
    assert spring == [utc(2026, 3, 29, 1, 30), utc(2026, 3, 30, 0, 30)]


def test_fall_back_fires_twice_and_delivers_once(sqlite_engine: Engine,
                                                 cfg_path: Path) -> None:
    store.set_org(sqlite_engine, "globex", timezone="Europe/Berlin")
    clock = Clock(utc(2026, 10, 24, 12))
    svc = service(sqlite_engine, cfg_path, clock)
    svc.refresh(clock.now)
    outcomes = []
    for moment in (utc(2026, 10, 25, 0, 30, 1), utc(2026, 10, 25, 1, 30, 1)):
        clock.now = moment
        batches = svc.tick(moment, only="nightly@Europe/Berlin")
        outcomes += [o for b in batches for o in b.outcomes]
    assert [o.state for o in outcomes] == ["delivered", "already"]
    assert outcomes[0].unit == outcomes[1].unit.__class__(
        **{**outcomes[1].unit.__dict__, "scheduled_for": utc(2026, 10, 25, 0, 30)})
    record = ledger.get(sqlite_engine, outcomes[0].unit)
    assert record is not None
    # past-week ends with the last complete day before the run (the 25th is not over)
    assert (str(record.first), str(record.last), record.deliveries) == (
        "2026-10-18", "2026-10-24", 1)


def test_catch_up_reports_the_period_it_was_scheduled_for(sqlite_engine: Engine,
                                                          cfg_path: Path) -> None:
    store.set_org(sqlite_engine, "acme")
    clock = Clock(utc(2026, 11, 22, 12))
    svc = service(sqlite_engine, cfg_path, clock)
    svc.refresh(clock.now)
    # down over Sunday 23:00; back on Monday 00:30, within the grace period
    clock.now = utc(2026, 11, 23, 0, 30)
    [batch] = svc.tick(clock.now, only="weekly")
    [outcome] = batch.outcomes
    assert batch.scheduled_for == utc(2026, 11, 22, 23)
    # the week before Sunday's run, not the one that ended when the service came back
    assert (str(outcome.unit.first), str(outcome.unit.last)) == ("2026-11-09", "2026-11-15")
    assert outcome.unit.trigger == "schedule"
    assert outcome.state == "delivered"
    assert svc.tick(clock.now, only="weekly") == []


def test_reconcile_new_changed_and_removed_jobs(sqlite_engine: Engine, cfg_path: Path) -> None:
    store.set_org(sqlite_engine, "acme")
    clock = Clock(utc(2026, 11, 22, 12))
    svc = service(sqlite_engine, cfg_path, clock)
    svc.refresh(clock.now)
    assert set(triggers.load_states(sqlite_engine)) == {"weekly", "nightly@UTC"}
    cfg_path.write_text(JOBS.replace('"0 23 * * sun"', '"0 6 * * mon"')
                        .replace("  nightly:", "  x:"))
    clock.now = utc(2026, 11, 23, 7)
    svc.leading = True
    svc.reload()
    states = triggers.load_states(sqlite_engine)
    assert set(states) == {"weekly", "x@UTC"}
    # a changed schedule keeps the last fire: its Monday 06:00 fire since then is owed (the
    # ledger skips a period the old schedule delivered), so a change on the run day never
    # loses that week's report
    assert states["weekly"].last_fire == utc(2026, 11, 22, 12)
    assert [(d.trigger_id, d.scheduled_for) for d in svc.due(clock.now)] == [
        ("weekly", utc(2026, 11, 23, 6))]


def test_jobs_next_run_times(sqlite_engine: Engine, cfg_path: Path) -> None:
    store.set_org(sqlite_engine, "acme", timezone="Asia/Kolkata")
    runs = next_runs(load(cfg_path), sqlite_engine, utc(2026, 11, 25, 12), count=2)
    assert runs == {"weekly": [utc(2026, 11, 29, 23), utc(2026, 12, 6, 23)],
                    "nightly@Asia/Kolkata": [utc(2026, 11, 25, 21), utc(2026, 11, 26, 21)]}


def test_lease_is_held_by_one_and_taken_over_after_expiry(sqlite_engine: Engine) -> None:
    clock = Clock(utc(2026, 11, 25, 12))
    first = Lease(sqlite_engine, seconds=30, holder="a", clock=clock)
    second = Lease(sqlite_engine, seconds=30, holder="b", clock=clock)
    assert first.acquire()
    assert not second.acquire()
    clock.now += timedelta(seconds=20)
    assert first.acquire()  # renewed until 12:00:50
    clock.now += timedelta(seconds=29)
    assert not second.acquire()
    clock.now += timedelta(seconds=2)
    assert second.acquire()
    assert not first.acquire()
    second.release()
    assert first.acquire()


def test_a_run_that_cannot_be_planned_is_retried_later(sqlite_engine: Engine,
                                                       tmp_path: Path) -> None:
    path = tmp_path / "jobs.yaml"
    path.write_text(JOBS.replace("    timezone: UTC\n", "    timezone: UTC\n"
                                 "    organizations: [ghost]\n"))
    clock = Clock(utc(2026, 11, 22, 12))
    svc = service(sqlite_engine, path, clock)
    svc.refresh(clock.now)
    clock.now = utc(2026, 11, 22, 23, 1)
    assert svc.tick(clock.now, only="weekly") == []
    state = triggers.load_states(sqlite_engine)["weekly"]
    assert (state.finished, state.retry_at) == (False, utc(2026, 11, 22, 23, 11))
    assert svc.due(clock.now) == []
    store.set_org(sqlite_engine, "ghost")
    clock.now = utc(2026, 11, 22, 23, 11)
    [batch] = svc.tick(clock.now, only="weekly")
    assert [o.state for o in batch.outcomes] == ["delivered"]


def test_jobs_command_shows_each_organizations_local_time(sqlite_engine: Engine,
                                                          cfg_path: Path) -> None:
    from click.testing import CliRunner

    from reporter.cli import main

    store.set_org(sqlite_engine, "acme", timezone="Asia/Kolkata")
    result = CliRunner().invoke(main, ["jobs", "--config", str(cfg_path),
                                       "--db", str(sqlite_engine.url)])
    assert result.exit_code == 0, result.output
    assert "  next [Asia/Kolkata]: " in result.output
    assert "T02:30:00+05:30" in result.output


def test_a_standby_never_rewrites_the_leaders_triggers(sqlite_engine: Engine,
                                                       cfg_path: Path) -> None:
    store.set_org(sqlite_engine, "acme")
    clock = Clock(utc(2026, 11, 22, 12))
    leader = service(sqlite_engine, cfg_path, clock)
    assert leader.step()
    assert leader.leading
    before = triggers.load_states(sqlite_engine)
    # a standby started on an edited jobs.yaml, then told to reload it
    cfg_path.write_text(JOBS.replace('"0 23 * * sun"', '"0 6 * * mon"')
                        .replace("  nightly:", "  x:"))
    standby = service(sqlite_engine, cfg_path, clock)
    clock.now += timedelta(seconds=5)  # the leader's lease runs on
    standby.reloading.set()
    assert standby.step()
    assert not standby.leading
    assert triggers.load_states(sqlite_engine) == before


def test_a_failing_unit_does_not_hold_back_later_fires() -> None:
    spec = triggers.Spec("hourly", "hourly", "0 * * * *", "UTC")
    stuck = triggers.FireState(utc(2026, 11, 23, 7), finished=False,
                               retry_at=utc(2026, 11, 23, 8, 30))
    # the 07:00 batch keeps failing; at 08:00 the 08:00 fire runs all the same
    assert triggers.due_runs({"hourly": spec}, {"hourly": stuck}, utc(2026, 11, 23, 8, 0, 5),
                             7200) == [triggers.Due("hourly", utc(2026, 11, 23, 8), "run",
                                                    abandoned=utc(2026, 11, 23, 7))]


def test_a_database_error_while_scheduling_does_not_end_the_service(
        sqlite_engine: Engine, cfg_path: Path) -> None:
    store.set_org(sqlite_engine, "acme")
    clock = Clock(utc(2026, 11, 22, 12))
    svc = service(sqlite_engine, cfg_path, clock)
    with sqlite_engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE scheduler_fires RENAME TO fires_away")
    assert svc.step() is False  # took the lease, then could not read the fire table
    assert svc.leading
    with sqlite_engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE fires_away RENAME TO scheduler_fires")
    assert svc.step() is True
    assert set(triggers.load_states(sqlite_engine)) == {"weekly", "nightly@UTC"}
