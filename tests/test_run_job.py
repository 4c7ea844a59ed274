"""Running a job end to end (``reporter.jobs.run``): what a job syncs, how its channels
stand on their own, and what a mistaken job or file does."""

from __future__ import annotations

import json
import sqlite3
import textwrap
from collections.abc import Callable
from datetime import UTC, datetime
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from click.testing import Result
from sqlalchemy import Engine

from reporter import config
from reporter.jobs import ledger, plan, run, runner
from reporter.store import orgs
from tests.helpers import load, row

NOW = datetime(2026, 12, 2, 9, tzinfo=UTC)


def test_a_job_on_every_organization_syncs_a_source_that_brings_a_new_one(
        tmp_path: Path, sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """``sync: true`` on all organizations reads every source, also one feeding an
    organization the store has not seen yet, so its first report is delivered."""
    source = tmp_path / "src.db"
    with sqlite3.connect(source) as conn:
        conn.execute("CREATE TABLE u (id TEXT, created TEXT, email TEXT, model TEXT, "
                     "usd TEXT)")
        conn.executemany("INSERT INTO u VALUES (?, ?, ?, ?, ?)", [
            (f"r{i}", f"2026-11-{10 + i:02d}T10:00:00+00:00", "zed@newco.io", "m", "1.5")
            for i in range(3)])
    monkeypatch.setenv("WH_URL", f"sqlite:///{source}")
    path = tmp_path / "jobs.yaml"
    path.write_text(textwrap.dedent("""\
        output: out
        sources:
          wh:
            kind: sql
            url_env: WH_URL
            organization: newco
            query: >
              SELECT id, created AS timestamp, email AS user_email, model,
                     0 AS input_tokens, 0 AS output_tokens, usd AS cost_usd
              FROM u WHERE created >= :since
        jobs:
          monthly:
            period: previous-month
            audience: [cfo@newco.io]
            formats: [json]
            sync: true
        """))
    loaded = config.load(path)
    assert orgs.list_orgs(sqlite_engine) == []
    outcomes = run.run_job(sqlite_engine, loaded, "monthly", now=NOW)
    assert [(o.unit.organization, o.state) for o in outcomes] == [("newco", "delivered")]


JOB = """\
output: {output}
jobs:
  weekly:
    period: previous-week
    audience: [cfo@acme.com]
    formats: [json]
    deliver:
      store: true
      email: {{attach: [json], max_attachment_bytes: 0}}
"""


def _acme(engine: Engine) -> None:
    orgs.set_org(engine, "acme", name="Acme Corp", timezone="UTC")
    load(engine, [row("e1", "2026-11-25T10:00:00Z", cost="2")])


def _blocked(tmp_path: Path, engine: Engine) -> config.Config:
    """Acme's week, and a weekly job whose output folder cannot be made (a file is there)."""
    _acme(engine)
    (tmp_path / "blocked").mkdir()
    (tmp_path / "blocked" / "weekly").write_text("a file where a folder should be")
    path = tmp_path / "jobs.yaml"
    path.write_text(JOB.format(output="blocked"))
    return config.load(path)


def test_an_email_names_a_stored_copy_only_when_there_is_one(tmp_path: Path,
                                                             sqlite_engine: Engine) -> None:
    """Storing fails (the output folder is a file); the email still goes, and it does not
    send the reader to a stored copy that was never written."""
    loaded = _blocked(tmp_path, sqlite_engine)
    [outcome] = run.run_job(sqlite_engine, loaded, "weekly", now=NOW)
    assert outcome.state == "failed"
    assert outcome.error is not None
    assert "weekly" in outcome.error
    [eml] = (tmp_path / "blocked" / "outbox").glob("*.eml")
    text = message_from_bytes(eml.read_bytes(), policy=policy.default).get_body(
        ("plain",)).get_content()  # type: ignore[union-attr]
    assert "stored copy" not in text
    assert str(tmp_path / "blocked" / "weekly") not in text


def test_force_on_a_failed_unit_repeats_no_channel_that_went_through(
        tmp_path: Path, sqlite_engine: Engine) -> None:
    loaded = _blocked(tmp_path, sqlite_engine)
    [unit] = plan.plan(sqlite_engine, loaded, "weekly", as_of=NOW)
    assert runner.execute(sqlite_engine, loaded, unit, now=NOW).state == "failed"
    (tmp_path / "blocked" / "weekly").unlink()
    again = runner.execute(sqlite_engine, loaded, unit, now=NOW, force=True)
    assert again.state == "delivered"
    assert len(list((tmp_path / "blocked" / "outbox").glob("*.eml"))) == 1
    record = ledger.get(sqlite_engine, unit)
    assert record is not None
    assert sorted({f["channel"] for f in record.files}) == ["email", "store"]


def test_an_alert_job_that_sends_nothing_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "jobs.yaml"
    path.write_text("jobs:\n  al:\n    kind: alert\n    when: budget\n")
    with pytest.raises(config.ConfigErrors) as caught:
        config.load(path, env={})
    assert caught.value.messages == [
        "jobs.yaml:3: job 'al': an alert job sends nothing: set 'email' or 'webhook' under "
        "'deliver' (an alert is not stored)"]


def test_a_command_given_a_database_does_not_read_a_broken_jobs_file(
        cli: Callable[..., Result], tmp_path: Path) -> None:
    (tmp_path / "jobs.yaml").write_text("jobs:\n  a:\n    period: [\n")
    assert cli("org", "set", "acme").exit_code == 0
    listed = cli("org", "list")
    assert listed.exit_code == 0, listed.stderr
    assert "acme" in listed.stdout


def test_jobs_lists_an_alert_job_without_formats(cli: Callable[..., Result],
                                                 tmp_path: Path) -> None:
    (tmp_path / "jobs.yaml").write_text(
        "jobs:\n  spend:\n    kind: alert\n    when: budget\n    deliver: {email: true}\n")
    listed = cli("jobs")
    assert listed.exit_code == 0, listed.stderr
    assert listed.stdout.splitlines()[0] == "spend: alert when budget, admins"
    as_json = cli("jobs", "--json")
    [job] = json.loads(as_json.stdout)
    assert (job["kind"], job["when"], job["formats"], job["period"]) == (
        "alert", "budget", [], None)
