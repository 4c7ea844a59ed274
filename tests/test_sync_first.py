"""Jobs with ``sync: true`` and the scheduler copy new usage from the sources before a run;
a source that cannot be read delivers nothing and says so in one line."""

from __future__ import annotations

import json
import textwrap
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine

from reporter import config as config_module
from reporter.jobs import ledger
from reporter.service import executors, triggers
from reporter.service.scheduler import Service
from reporter.store import db
from tests.source_support import LiteLLM

pytestmark = pytest.mark.postgres  # the source lives in the PostgreSQL server

START = datetime(2025, 3, 3, 8, 0, tzinfo=UTC)  # a Monday
JOBS = textwrap.dedent("""\
    output: out
    executor: {kind: local, workers: 1}
    sources:
      gateway:
        kind: litellm
        url_env: LITELLM_DATABASE_URL
        organization_from: organization_alias
    jobs:
      weekly:
        schedule: "0 7 * * mon"
        timezone: UTC
        period: previous-week
        organizations: [acme]
        formats: [json]
        sync: true
    """)


def test_sync_true_needs_a_source(tmp_path: Path) -> None:
    text = JOBS.split("sources:")[0] + "jobs:" + JOBS.split("jobs:")[1]
    with pytest.raises(config_module.ConfigErrors) as caught:
        config_module.parse(text, tmp_path / "jobs.yaml", env={})
    assert caught.value.messages == [
        "jobs.yaml:4: job 'weekly': 'sync: true' but no sources are configured "
        "(add a 'sources' section)"]


def test_run_syncs_first_and_refuses_to_deliver_when_the_source_is_down(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, db_url: str, src: Engine,
        src_url: str) -> None:
    from reporter.cli import main

    litellm = LiteLLM(src)
    litellm.setup()
    rows = [r for r in litellm.rows(40, START) if r["user"] in ("u-alice", "u-bob")]
    litellm.insert(rows)
    (tmp_path / "jobs.yaml").write_text(JOBS)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LITELLM_DATABASE_URL", "postgresql://u:pw@127.0.0.1:1/x")
    args = ["run", "weekly", "--from", "2025-03-03", "--to", "2025-03-09", "--db", db_url]
    down = CliRunner().invoke(main, args)
    assert down.exit_code == 1
    assert down.stderr.startswith("reporter: error: job weekly: could not sync first: "
                                  "source 'gateway' (postgresql://u:***@127.0.0.1:1/x): ")
    assert down.stderr.endswith("; nothing was delivered\n")
    assert "pw" not in down.stderr
    assert not (tmp_path / "out").exists()
    monkeypatch.setenv("LITELLM_DATABASE_URL", src_url)
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    [report] = [p for p in (tmp_path / "out" / "weekly" / "acme").glob("*/*.json")
                if p.name != "manifest.json"]
    data = json.loads(report.read_text())
    assert all(r["startTime"].date() < START.date() + timedelta(days=1) for r in rows)
    expected = LiteLLM.expected(rows, "acme")
    assert data["summary"]["total_requests"] == expected["requests"] > 0
    assert Decimal(data["summary"]["total_cost_usd"]) == expected["cost"]


def test_the_scheduler_syncs_before_each_run_and_retries_when_it_cannot(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, db_url: str, src: Engine,
        src_url: str) -> None:
    litellm = LiteLLM(src)
    litellm.setup()
    (tmp_path / "jobs.yaml").write_text(JOBS)
    monkeypatch.setenv("LITELLM_DATABASE_URL", "postgresql://u:pw@127.0.0.1:1/x")
    engine = db.open_engine(db_url)
    clock = [datetime(2025, 3, 10, 6, 0, tzinfo=UTC)]

    def serial(config: config_module.Config, halt: object) -> executors.Executor:
        return executors.serial(engine, config)

    try:
        from reporter.store import orgs

        orgs.set_org(engine, "acme")
        service = Service(engine, tmp_path / "jobs.yaml", db_url, clock=lambda: clock[0],
                          executor_factory=serial)  # type: ignore[arg-type]
        service.refresh(clock[0])
        clock[0] = datetime(2025, 3, 10, 7, 0, 5, tzinfo=UTC)
        assert service.tick(clock[0]) == []  # the source is down: nothing delivered
        state = triggers.load_states(engine)["weekly"]
        assert state.finished is False
        assert state.retry_at is not None
        assert ledger.history(engine) == []
        rows = [r for r in litellm.rows(40, START) if r["user"] in ("u-alice", "u-bob")]
        litellm.insert(rows)
        monkeypatch.setenv("LITELLM_DATABASE_URL", src_url)
        clock[0] = state.retry_at
        [batch] = service.tick(clock[0])
        assert [o.state for o in batch.outcomes] == ["delivered"]
    finally:
        engine.dispose()
