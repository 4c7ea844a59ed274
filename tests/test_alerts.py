"""Alert jobs: budget thresholds and spikes, fired by the scheduler over a month of usage,
delivered once each by email (the outbox) and by webhook through a faulty loopback server."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine

from reporter.alerts import rules
from reporter.cli import main
from reporter.config import Config, JobSettings, load
from reporter.jobs import ledger, plan, runner
from reporter.service import executors
from reporter.service.scheduler import Service
from reporter.store import orgs as store
from tests.delivery_support import Mailbox, smtp_section, smtp_server
from tests.helpers import load as ingest
from tests.helpers import row
from tests.hookserver import HookServer, hook_server

REPORTER = Path(sys.executable).parent / "reporter"
HOOK = "TEST_ALERT_HOOK"
DELIVER = f"""\
    deliver:
      store: false
      email: true
      webhook: {{url_env: {HOOK}, timeout_seconds: 1, retry_backoff_seconds: 0.01}}
"""
JOBS = f"""\
output: out
jobs:
  budget-alerts:
    kind: alert
    schedule: "0 * * * *"
    when: budget
    thresholds: [50, 80, 100]
    audience: admins
{DELIVER}  spikes:
    kind: alert
    schedule: "0 6 * * *"
    when: spike
    factor: 3
    min_usd: 10
{DELIVER}budgets:
  acme:
    projects:
      example-repo: 1000
"""
ZONE = "America/New_York"


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[HookServer]:
    monkeypatch.setenv("NO_PROXY", "*")
    monkeypatch.setenv("no_proxy", "*")
    with hook_server() as running:
        running.retry_after = "0"
        monkeypatch.setenv(HOOK, running.url)
        yield running


def day_rows(day: date) -> list[dict[str, Any]]:
    """Alice spends $30 a day on the project, Bob $70 elsewhere; on Nov 20 Bob $370."""
    bob = "370" if (day.month, day.day) == (11, 20) else "70"
    noon = f"{day.isoformat()}T12:00:00-05:00"
    return [row(f"a{day}", noon, email="alice@acme.com", cost="30", project="example-repo"),
            row(f"b{day}", noon, email="bob@acme.com", cost=bob, model="openai/gpt-5")]


def setup_org(engine: Engine) -> None:
    store.set_org(engine, "acme", name="Acme Corp", timezone=ZONE, monthly_budget="3000")
    store.set_member(engine, "acme", "alice@acme.com", role="owner", name="Alice")
    store.set_member(engine, "acme", "bob@acme.com", name="Bob", monthly_budget="1500")
    for offset in range(1, 20):  # the second half of October: the days before are usual
        ingest(engine, day_rows(date(2026, 11, 1) - timedelta(days=offset)))


def service(engine: Engine, path: Path, clock: list[datetime]) -> Service:
    def serial(config: Config, halt: threading.Event) -> executors.Executor:
        return executors.serial(engine, config, halt)

    return Service(engine, path, str(engine.url), clock=lambda: clock[0],
                   executor_factory=serial)


def local(day: date, hour: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC) + timedelta(hours=5)


def test_a_month_of_hourly_alerts_delivers_each_once(sqlite_engine: Engine, tmp_path: Path,
                                                     server: HookServer) -> None:
    path = tmp_path / "jobs.yaml"
    path.write_text(JOBS)
    setup_org(sqlite_engine)
    clock = [local(date(2026, 11, 1), 0) - timedelta(minutes=1)]
    first, second = service(sqlite_engine, path, clock), service(sqlite_engine, path, clock)
    first.refresh(clock[0])
    second.refresh(clock[0])
    server.script = ["429", "500", "timeout", "drop"]  # the first alerts meet every fault
    delivered: dict[str, list[date]] = {}
    for day in (date(2026, 11, 1) + timedelta(days=i) for i in range(30)):
        ingest(sqlite_engine, day_rows(day))
        # three hours at a time: the hourly job's fires missed in between coalesce into one
        for hour in range(0, 24, 3):
            clock[0] = local(day, hour) + timedelta(seconds=5)
            for svc in (first, second):  # two schedulers on one database
                for batch in svc.tick(clock[0]):
                    for outcome in batch.outcomes:
                        assert outcome.state in ("delivered", "already"), outcome
                        if outcome.state == "delivered":
                            unit = outcome.unit
                            key = f"{unit.audience} {unit.first:%b}"
                            delivered.setdefault(key, []).append(day)
    # on the 1st the scheduler reads October once more: thresholds its last days crossed
    # (bob's 50% and 80% at once: one message naming 80%, the 50% recorded as covered)
    october = dict.fromkeys(["alert:org:50 Oct", "alert:member:bob@acme.com:80 Oct",
                             "alert:project:example-repo:50 Oct"], [date(2026, 11, 1)])
    assert delivered == {
        **october,
        "alert:member:bob@acme.com:50 Nov": [date(2026, 11, 11)],
        "alert:project:example-repo:50 Nov": [date(2026, 11, 17)],
        "alert:member:bob@acme.com:80 Nov": [date(2026, 11, 18)],
        "alert:member:bob@acme.com:100 Nov": [date(2026, 11, 20)],
        "alert:org:50 Nov": [date(2026, 11, 15)],
        "alert:org:80 Nov": [date(2026, 11, 21)],
        "alert:org:spike Nov": [date(2026, 11, 21)],
        "alert:org:100 Nov": [date(2026, 11, 27)],
        "alert:project:example-repo:80 Nov": [date(2026, 11, 27)],
    }
    outbox = sorted((tmp_path / "out" / "outbox").glob("*.eml"))
    assert len(outbox) == 12
    assert len(server.posts) == 12
    texts = [p["text"] for p in server.posts]
    assert len(set(texts)) == 12  # each names its threshold
    assert ("Acme Corp has reached 50% of its $3,000.00 November budget: $1,500.00 spent "
            "(50%) with 15 days to go; at this pace the month ends near $3,100.") in texts
    spike = next(t for t in texts if "times its average" in t)
    assert spike == ("Acme Corp spent $400.00 on Nov 20, 2026 (New York time), 4 times its "
                     "average of $100.00 a day over the 14 days before (14 of them with "
                     "usage).")
    mail = next(p.read_text() for p in outbox if "spike" in p.name)
    assert "Top spenders that day: Bob ($370.00), Alice ($30.00)." in mail
    assert "Top models that day: openai/gpt-5 ($370.00)" in mail
    assert "To: alice@acme.com" in mail
    # a re-run at the end of the month adds nothing
    config = load(path)
    end = local(date(2026, 11, 30), 23)
    for job in ("budget-alerts", "spikes"):
        units = plan.plan(sqlite_engine, config, job, as_of=end)
        assert {o.state for o in runner.run_units(sqlite_engine, config, units, now=end)} <= {
            "already"}
    assert len(server.posts) == 12
    assert len(list((tmp_path / "out" / "outbox").glob("*.eml"))) == 12
    rows = ledger.history(sqlite_engine, job="budget-alerts")
    assert len(rows) == 12  # 11 sent, 1 covered
    assert {r.state for r in rows} == {"delivered"}
    assert {r.deliveries for r in rows} == {1}
    covered = [r for r in rows if r.audience == "alert:member:bob@acme.com:50"
               and r.first == date(2026, 10, 1)]
    assert [(c.files, c.error) for c in covered] == [([], (
        "covered by alert:member:bob@acme.com:80 (one message names the highest threshold "
        "reached)"))]


def test_a_channel_that_failed_is_retried_alone(sqlite_engine: Engine, tmp_path: Path,
                                                server: HookServer) -> None:
    path = tmp_path / "jobs.yaml"
    path.write_text(JOBS.replace("retry_backoff_seconds: 0.01}",
                                 "retry_backoff_seconds: 0.01, retries: 0}"))
    setup_org(sqlite_engine)
    for day in range(1, 17):
        ingest(sqlite_engine, day_rows(date(2026, 11, day)))
    config = load(path)
    now = local(date(2026, 11, 16), 9)
    server.script = ["500"] * 10
    units = plan.plan(sqlite_engine, config, "budget-alerts", as_of=now)
    assert sorted(u.audience for u in units) == [
        "alert:member:bob@acme.com:50", "alert:org:50"]
    outcomes = runner.run_units(sqlite_engine, config, units, now=now)
    assert [o.state for o in outcomes] == ["failed", "failed"]
    assert outcomes[0].error is not None
    assert outcomes[0].error.startswith(f"webhook ${HOOK}: HTTP 500")
    assert server.url not in outcomes[0].error
    # a broken webhook never holds back the email: each channel is delivered on its own
    assert len(list((tmp_path / "out" / "outbox").glob("*.eml"))) == 2
    for unit in units:
        record = ledger.get(sqlite_engine, unit)
        assert record is not None
        assert [f["channel"] for f in record.files] == ["email"]
    server.script = []
    again = runner.run_units(sqlite_engine, config, units, now=now + timedelta(hours=1))
    assert [o.state for o in again] == ["delivered", "delivered"]
    assert len(server.posts) == 2  # the webhook, retried alone
    assert len(list((tmp_path / "out" / "outbox").glob("*.eml"))) == 2  # no second email


def evaluate(engine: Engine, config: Config, job: JobSettings, slug: str,
             reference: datetime) -> list[rules.Alert]:
    assert job.alert is not None
    return rules.evaluate(engine, job.alert, config.budgets.get(slug, {}), slug, reference)


def test_conditions(engine: Engine, tmp_path: Path, server: HookServer) -> None:
    path = tmp_path / "jobs.yaml"
    path.write_text(JOBS)
    config = load(path)
    setup_org(engine)
    for day in range(1, 31):
        ingest(engine, day_rows(date(2026, 11, day)))
    job = config.job("budget-alerts")
    found = evaluate(engine, config, job, "acme", local(date(2026, 11, 30), 13))
    org100 = next(a for a in found if a.audience == "alert:org:100")
    assert org100.summary == ("Acme Corp has reached 100% of its $3,000.00 November budget: "
                              "$3,300.00 spent (110%) by the month's end, $300.00 over "
                              "budget.")
    assert org100.covers == ("alert:org:50", "alert:org:80")
    assert "alert:org:50" not in [a.audience for a in found]  # one message per subject
    assert (org100.first, org100.last) == (date(2026, 11, 1), date(2026, 11, 30))
    # on the 1st, the month just ended is read once more: its last hours count
    december = evaluate(engine, config, job, "acme", local(date(2026, 12, 1), 0))
    assert "alert:org:100" in [a.audience for a in december]
    assert {(a.first, a.last) for a in december} == {(date(2026, 11, 1), date(2026, 11, 30))}
    # the forecast is read through the last complete day
    assert job.alert is not None
    forecast = replace(job, alert=replace(job.alert, thresholds=(100,), on="forecast"))
    # no forecast before min_days (3) local days of the month have passed
    assert evaluate(engine, config, forecast, "acme", local(date(2026, 11, 3), 23)) == []
    early = evaluate(engine, config, forecast, "acme", local(date(2026, 11, 4), 0))
    assert [a.audience for a in early] == ["alert:org:100", "alert:member:bob@acme.com:100"]
    assert early[0].summary == ("At this pace Acme Corp ends November near $3,000, 100% of "
                                "its $3,000.00 budget (the 100% threshold); $300.00 spent so "
                                "far with 27 days to go.")
    spikes = config.job("spikes")
    assert evaluate(engine, config, spikes, "acme", local(date(2026, 11, 22), 6)) == []
    assert [a.audience for a in evaluate(engine, config, spikes, "acme",
                                                local(date(2026, 11, 21), 6))] == [
        "alert:org:spike"]


def test_reporter_run_alert_job_once(sqlite_engine: Engine, tmp_path: Path,
                                     server: HookServer) -> None:
    path = tmp_path / "jobs.yaml"
    path.write_text(JOBS)
    store.set_org(sqlite_engine, "acme", name="Acme Corp", timezone="UTC", monthly_budget="100")
    store.set_member(sqlite_engine, "acme", "alice@acme.com", role="owner")
    now = datetime.now(UTC).replace(microsecond=0)
    moment = max(now - timedelta(seconds=1), now.replace(hour=0, minute=0, second=0))
    ingest(sqlite_engine, [row("x1", moment.isoformat(), cost="60")])
    sqlite_engine.dispose()
    url = str(sqlite_engine.url)
    options = ["--config", str(path), "--db", url]

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(REPORTER), *options, "run", "budget-alerts"],
                              capture_output=True, text=True, timeout=300, check=False)

    done = run()
    assert done.returncode == 0, done.stderr
    assert "alert:org:50" in done.stdout
    assert len(server.posts) == 1
    assert server.posts[0]["text"].startswith("Acme Corp has reached 50% of its $100.00 ")
    again = run()
    assert again.returncode == 0, again.stderr
    assert len(server.posts) == 1
    assert len(list((tmp_path / "out" / "outbox").glob("*.eml"))) == 1
    wrong = CliRunner().invoke(main, [*options, "run", "budget-alerts", "--period",
                                      "previous-week"])
    assert wrong.exit_code != 0
    assert wrong.output.strip().splitlines() == [
        "reporter: error: job 'budget-alerts' is an alert job: it has no period (--period, "
        "--from and --to do not apply)"]
    runs = CliRunner().invoke(main, [*options, "runs"])
    assert "alert:org:50" in runs.output


def test_alert_by_smtp_to_a_list_and_only_the_missing_channel_is_retried(
        sqlite_engine: Engine, tmp_path: Path, server: HookServer) -> None:
    mailbox = Mailbox(faults=["554 no thanks"])
    with smtp_server(mailbox) as port:
        path = tmp_path / "jobs.yaml"
        path.write_text(smtp_section(port) + JOBS.replace(
            "    audience: admins\n", "    audience: [finance@example.com]\n"))
        config = load(path)
        setup_org(sqlite_engine)
        for day in range(1, 16):
            ingest(sqlite_engine, day_rows(date(2026, 11, day)))
        now = local(date(2026, 11, 15), 13)
        units = [u for u in plan.plan(sqlite_engine, config, "budget-alerts", as_of=now)
                 if u.audience == "alert:org:50"]
        failed = runner.run_units(sqlite_engine, config, units, now=now)
        assert [o.state for o in failed] == ["failed"]
        assert len(server.posts) == 1  # the webhook went through; the email did not
        assert mailbox.received == []
        again = runner.run_units(sqlite_engine, config, units, now=now + timedelta(hours=1))
        assert [o.state for o in again] == ["delivered"]
        assert len(server.posts) == 1
        assert mailbox.counts() == {"finance@example.com": 1}
        message = mailbox.to("finance@example.com")[0]
        assert message["Subject"] == server.posts[0]["text"]
        assert message["Auto-Submitted"] == "auto-generated"
        assert message["Subject"].startswith("Acme Corp has reached 50% of its $3,000.00 "
                                             "November budget: $1,500.00 spent (50%) with 15 "
                                             "days to go")
