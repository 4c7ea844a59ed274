"""Runs: planning units, exactly-once delivery through the ledger, force, crashes, the CLI."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine

from reporter.cli import main
from reporter.config import Config
from reporter.deliver import smtp
from reporter.jobs import ledger, plan, runner
from reporter.store import orgs as store
from tests.delivery_support import NOW, seed, write_config

JOBS = """\
output: out
scheduler: {unit_timeout_seconds: 600}
jobs:
  weekly:
    schedule: "0 7 * * mon"
    period: previous-week
    audience: admins
    formats: [json]
    deliver:
      store: true
      email:
        subject: "{{ organization.name }} usage, {{ period.label }}"
  personal:
    period: previous-week
    audience: members
    formats: [json, html]
    skip_empty: true
    deliver:
      email: {attach: [json, html]}
"""


@pytest.fixture
def cfg(tmp_path: Path) -> Config:
    return write_config(tmp_path, JOBS)


def outbox(cfg: Config) -> list[Path]:
    folder = cfg.output / "outbox"
    return sorted(folder.glob("*.eml")) if folder.exists() else []


def test_plan_audiences_and_scheduled_period(sqlite_engine: Engine, cfg: Config) -> None:
    seed(sqlite_engine)
    units = plan.plan(sqlite_engine, cfg, "weekly", as_of=NOW)
    assert [(u.organization, u.audience, str(u.first), str(u.last)) for u in units] == [
        ("acme", "admins", "2026-01-05", "2026-01-11"),
        ("globex", "admins", "2026-01-05", "2026-01-11")]
    members = plan.plan(sqlite_engine, cfg, "personal", as_of=NOW)
    assert [(u.organization, u.audience) for u in members] == [
        ("acme", "member:alice@acme.com"), ("acme", "member:bob@acme.com"),
        ("acme", "member:carol@acme.com"), ("globex", "member:greta@globex.de")]
    # scheduled for Monday 03:00 UTC: still Sunday in New York, already Monday in Berlin;
    # caught up a week late, the run reports the period it was meant for
    scheduled = datetime(2026, 1, 12, 3, 0, tzinfo=UTC)
    late = plan.plan(sqlite_engine, cfg, "weekly", as_of=NOW + timedelta(days=7),
                       trigger="schedule", scheduled_for=scheduled)
    assert [(u.organization, str(u.first), str(u.last), u.trigger) for u in late] == [
        ("acme", "2025-12-29", "2026-01-04", "schedule"),
        ("globex", "2026-01-05", "2026-01-11", "schedule")]


def test_exactly_once_then_force(engine: Engine, cfg: Config) -> None:
    seed(engine)
    units = plan.plan(engine, cfg, "weekly", as_of=NOW)
    first = runner.run_units(engine, cfg, units, now=NOW)
    assert [o.state for o in first] == ["delivered", "delivered"]
    assert first[0].recipients == ("alice@acme.com", "bob@acme.com")
    assert len(outbox(cfg)) == 2

    again = runner.run_units(engine, cfg, units, now=NOW + timedelta(hours=1))
    assert [o.state for o in again] == ["already", "already"]
    assert len(outbox(cfg)) == 2

    folder = cfg.output / "weekly" / "acme" / "2026-01-05_2026-01-11"
    manifest = json.loads((folder / "manifest.json").read_text())
    [entry] = manifest["files"]
    data = (folder / entry["name"]).read_bytes()
    assert entry["sha256"] == hashlib.sha256(data).hexdigest()
    assert json.loads(data)["summary"]["total_cost_usd"] == "4.500000001"
    record = ledger.get(engine, units[0])
    assert record is not None
    assert (record.state, record.deliveries, record.forced, record.attempts) == (
        "delivered", 1, 0, 1)
    assert record.files[0]["sha256"] == entry["sha256"]
    assert record.recipients == ["alice@acme.com", "bob@acme.com"]
    assert set(record.timings) >= {"build", "render", "store", "email"}

    forced = runner.run_units(engine, cfg, units[:1], now=NOW + timedelta(hours=2), force=True)
    assert forced[0].state == "delivered"
    assert len(outbox(cfg)) == 3
    record = ledger.get(engine, units[0])
    assert record is not None
    assert (record.deliveries, record.forced, record.attempts) == (2, 1, 2)


def test_personal_reports_hold_nobody_else(sqlite_engine: Engine, cfg: Config) -> None:
    seed(sqlite_engine)
    units = plan.plan(sqlite_engine, cfg, "personal", as_of=NOW)
    outcomes = runner.run_units(sqlite_engine, cfg, units, now=NOW)
    states = {o.unit.audience: o.state for o in outcomes}
    # bob made no requests: skip_empty sends him nothing; dave was removed: not even planned
    assert states == {"member:alice@acme.com": "delivered", "member:bob@acme.com": "empty",
                      "member:carol@acme.com": "delivered",
                      "member:greta@globex.de": "delivered"}
    [carol] = [p for p in outbox(cfg) if "carol" in p.name]
    message = message_from_bytes(carol.read_bytes(), policy=policy.default)
    assert message["To"] == "carol@acme.com"
    everything = ""
    for part in message.walk():  # every header and every decoded body, not base64 text
        everything += "".join(f"{key}: {value}\n" for key, value in part.items())
        payload = part.get_payload(decode=True)
        if payload:
            everything += payload.decode("utf-8", "replace")
    for other in ("alice", "Alice", "bob@", "Bob", "dave", "Dave", "greta"):
        assert other not in everything, other
    [attachment] = [p for p in message.iter_attachments() if p.get_filename().endswith(".json")]
    report = json.loads(attachment.get_content())
    assert report["member"] == "carol@acme.com"
    assert [m["email"] for m in report["by_member"]] == ["carol@acme.com"]
    assert not any("dave" in p.name for p in outbox(cfg))


def test_crash_between_render_and_send(sqlite_engine: Engine, cfg: Config,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    seed(sqlite_engine)
    [unit, _] = plan.plan(sqlite_engine, cfg, "weekly", as_of=NOW)

    class Crash(BaseException):
        pass

    def crash(*_args: object) -> Path:
        raise Crash

    with monkeypatch.context() as patch:
        patch.setattr(smtp, "to_outbox", crash)
        with pytest.raises(Crash):
            runner.execute(sqlite_engine, cfg, unit, now=NOW)
    record = ledger.get(sqlite_engine, unit)
    assert record is not None
    assert record.state == "running"
    assert outbox(cfg) == []
    # another run soon after leaves it to the (presumed live) first process: held, which
    # is not delivered, and says when the claim may be taken over
    soon = runner.execute(sqlite_engine, cfg, unit, now=NOW + timedelta(minutes=5))
    assert (soon.state, soon.note) == ("held", "in progress elsewhere since 2026-01-12T15:00:00Z;"
                                       " taken over after 2026-01-12T15:10:00Z if that "
                                       "process has stopped")
    # after the unit timeout the abandoned attempt is taken over and delivered, once
    later = runner.execute(sqlite_engine, cfg, unit, now=NOW + timedelta(minutes=11))
    assert later.state == "delivered"
    assert len(outbox(cfg)) == 1
    record = ledger.get(sqlite_engine, unit)
    assert record is not None
    assert (record.state, record.attempts, record.deliveries) == ("delivered", 2, 1)


def test_one_failure_does_not_stop_the_others(tmp_path: Path, sqlite_engine: Engine,
                                              cfg: Config) -> None:
    seed(sqlite_engine)
    store.set_org(sqlite_engine, "aaa-no-admins")
    store.set_member(sqlite_engine, "aaa-no-admins", "x@aaa.com", role="member")
    url = str(sqlite_engine.url)
    args = ["run", "weekly", "--from", "2026-01-05", "--to", "2026-01-11", "--config",
            str(cfg.path), "--db", url]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0].startswith("failed    weekly aaa-no-admins admins 2026-01-05..2026-01-11")
    assert "has no owners or admins" in lines[0]
    assert lines[1].startswith("delivered weekly acme admins")
    assert lines[-1] == "3 units: delivered 2, already delivered 0, empty 0, failed 1"
    # the failure is in the history; a later run retries only what is still owed
    history = CliRunner().invoke(main, ["runs", "--state", "failed", "--config",
                                        str(cfg.path), "--db", url])
    assert "aaa-no-admins" in history.output
    assert "acme" not in history.output.replace("aaa-no-admins", "")
    store.set_member(sqlite_engine, "aaa-no-admins", "x@aaa.com", role="admin")
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == (
        "3 units: delivered 1, already delivered 2, empty 0, failed 0")


def test_dry_run_changes_nothing(sqlite_engine: Engine, cfg: Config) -> None:
    seed(sqlite_engine)
    result = CliRunner().invoke(main, ["run", "personal", "--dry-run", "--from", "2026-01-05",
                                       "--to", "2026-01-11", "--config", str(cfg.path),
                                       "--db", str(sqlite_engine.url)])
    assert result.exit_code == 0, result.output
    assert "planned   personal acme member:carol@acme.com 2026-01-05..2026-01-11  " \
           "would send to carol@acme.com" in result.output
    assert "empty     personal acme member:bob@acme.com" in result.output
    assert ledger.history(sqlite_engine) == []
    assert not cfg.output.exists()


def test_progress_hears_of_each_unit_as_it_ends(sqlite_engine: Engine, cfg: Config) -> None:
    seed(sqlite_engine)
    units = plan.plan(sqlite_engine, cfg, "personal", as_of=NOW)
    heard: list[str] = []
    outcomes = runner.run_units(sqlite_engine, cfg, units, now=NOW,
                                progress=lambda o: heard.append(o.unit.audience))
    assert heard == [o.unit.audience for o in outcomes] == [u.audience for u in units]


def test_periods_in_range() -> None:
    weeks = plan.periods_in("previous-week", date(2026, 1, 1), date(2026, 1, 31))
    assert [str(a) for a, _ in weeks] == ["2026-01-05", "2026-01-12", "2026-01-19"]
    months = plan.periods_in("previous-month", date(2025, 12, 15), date(2026, 3, 31))
    assert [(str(a), str(b)) for a, b in months] == [
        ("2026-01-01", "2026-01-31"), ("2026-02-01", "2026-02-28"), ("2026-03-01", "2026-03-31")]
    assert len(plan.periods_in("past-week", date(2026, 1, 1), date(2026, 1, 21))) == 3


def test_backfill_command(sqlite_engine: Engine, cfg: Config) -> None:
    seed(sqlite_engine)
    args = ["backfill", "weekly", "--from", "2026-01-01", "--to", "2026-01-20", "--org", "acme",
            "--config", str(cfg.path), "--db", str(sqlite_engine.url)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == (
        "2 units: delivered 2, already delivered 0, empty 0, failed 0")
    history = ledger.history(sqlite_engine)
    assert sorted((str(r.first), r.trigger) for r in history) == [
        ("2026-01-05", "backfill"), ("2026-01-12", "backfill")]
    # a scheduled run of a backfilled period delivers nothing new
    units = plan.plan(sqlite_engine, cfg, "weekly", as_of=NOW, orgs=["acme"])
    assert runner.run_units(sqlite_engine, cfg, units, now=NOW)[0].state == "already"
