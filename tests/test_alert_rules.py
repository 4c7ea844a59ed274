"""Alert rules as an admin reads them: one message per subject, one forecast rule shared with
reports, spikes against the mean of the days before, percents never rounded up past a
threshold, and ledger keys that hold any project name."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest
from sqlalchemy import Engine

from reporter.alerts import rules
from reporter.config import Config, load
from reporter.jobs import ledger, plan, runner
from reporter.report import budget
from reporter.store import orgs as store
from tests.helpers import load as ingest
from tests.helpers import row
from tests.hookserver import HookServer, hook_server

HOOK = "TEST_RULES_HOOK"
JOBS = f"""\
output: out
jobs:
  budget-alerts:
    kind: alert
    when: budget
    thresholds: [50, 80, 100]
    deliver:
      store: false
      email: true
      webhook: {{url_env: {HOOK}, retry_backoff_seconds: 0.01}}
  forecast-alerts:
    kind: alert
    when: budget
    on: forecast
    thresholds: [100, 200, 300, 400, 500]
    deliver:
      store: false
      email: true
      webhook: {{url_env: {HOOK}, retry_backoff_seconds: 0.01}}
  spikes:
    kind: alert
    when: spike
    factor: 3
    min_usd: 10
    deliver: {{store: false, email: true}}
"""


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[HookServer]:
    monkeypatch.setenv("NO_PROXY", "*")
    monkeypatch.setenv("no_proxy", "*")
    with hook_server() as running:
        monkeypatch.setenv(HOOK, running.url)
        yield running


@pytest.fixture
def config(tmp_path: Path, server: HookServer) -> Config:
    path = tmp_path / "jobs.yaml"
    path.write_text(JOBS)
    return load(path)


def utc(day: int, hour: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


def run(engine: Engine, config: Config, job: str, now: datetime) -> list[str]:
    units = plan.plan(engine, config, job, as_of=now)
    return [f"{o.unit.audience} {o.state}" for o in
            runner.run_units(engine, config, units, now=now)]


def outbox(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "out" / "outbox").glob("*.eml"))


def test_several_thresholds_at_once_send_one_message(engine: Engine, tmp_path: Path,
                                                     config: Config,
                                                     server: HookServer) -> None:
    """81% of a budget with thresholds 50 and 80 reached in one run: one email and one post
    naming 80%; the 50% counts as delivered and is never sent later."""
    store.set_org(engine, "acme", name="Acme Corp", timezone="UTC", monthly_budget="100")
    store.set_member(engine, "acme", "alice@acme.com", role="owner")
    ingest(engine, [row("e1", "2026-11-10T10:00:00Z", cost="81")])
    assert run(engine, config, "budget-alerts", utc(10, 12)) == ["alert:org:80 delivered"]
    assert len(server.posts) == 1
    assert len(outbox(tmp_path)) == 1
    assert server.posts[0]["text"].startswith(
        "Acme Corp has reached 80% of its $100.00 November budget: $81.00 spent (81%)")
    rows = {r.audience: r for r in ledger.history(engine, job="budget-alerts")}
    assert rows["alert:org:50"].state == "delivered"
    assert rows["alert:org:50"].error == ("covered by alert:org:80 (one message names the "
                                          "highest threshold reached)")
    # later runs, the same month: nothing more until the next threshold
    for hour in (13, 23):
        assert run(engine, config, "budget-alerts", utc(10, hour)) == ["alert:org:80 already"]
    ingest(engine, [row("e2", "2026-11-11T10:00:00Z", cost="40")])
    assert run(engine, config, "budget-alerts", utc(11, 12)) == ["alert:org:100 delivered"]
    assert len(server.posts) == 2
    assert len(outbox(tmp_path)) == 2
    # a forecast crossing 100% to 300% at once ($121 in 10.5 days: $345): one message
    assert run(engine, config, "forecast-alerts", utc(11, 12)) == ["alert:org:300 delivered"]
    assert "(the 300% threshold)" in server.posts[-1]["text"]
    assert len(server.posts) == 3
    assert len(outbox(tmp_path)) == 3
    covered = {r.audience for r in ledger.history(engine, job="forecast-alerts")
               if r.error and r.error.startswith("covered by alert:org:300")}
    assert covered == {"alert:org:100", "alert:org:200"}


def test_one_forecast_rule_for_actual_forecast_and_reports(sqlite_engine: Engine,
                                                          config: Config) -> None:
    """At one moment the actual alert and the forecast alert state the same forecast; at a
    day's end both equal the report's budget block through that day."""
    engine = sqlite_engine
    store.set_org(engine, "acme", name="Acme Corp", timezone="Asia/Kathmandu",
                  monthly_budget="40")
    ingest(engine, [row(f"e{d}", f"2026-11-{d:02d}T03:00:00Z", cost="7") for d in
                    range(1, 6)])
    org = store.get_org(engine, "acme")
    actual, forecast = (config.job(j).alert for j in ("budget-alerts", "forecast-alerts"))
    assert actual is not None
    assert forecast is not None
    moment = datetime(2026, 11, 5, 9, 30, tzinfo=UTC)  # 15:15 on the 5th in +5:45
    days = rules.elapsed(date(2026, 11, 1), moment, org.timezone)
    assert days == 4 + Fraction(15 * 60 + 15, 24 * 60)
    said = []
    for rule in (actual, forecast):
        found = rules.evaluate(engine, rule, {}, "acme", moment, told=False)
        assert len(found) == 1
        said.append(found[0].summary)
    near = budget.near(budget.forecast(35 * 10**9, days, 30))
    assert near == "$230"  # $35 over 4.64 days, for 30 days
    assert f"at this pace the month ends near {near}" in said[0]
    assert f"ends November near {near}," in said[1]
    # at the end of the 5th the alert's figure is the report's
    end = datetime(2026, 11, 5, 18, 15, tzinfo=UTC)  # midnight in Kathmandu
    assert rules.elapsed(date(2026, 11, 1), end, org.timezone) == 5
    report = budget.block(org.monthly_budget_nanos or 0,
                          budget.spent(engine, org, date(2026, 11, 1), date(2026, 11, 5)),
                          date(2026, 11, 5))
    found = rules.evaluate(engine, forecast, {}, "acme", end, told=False)
    assert f"near {budget.near(report.forecast_nanos)}," in found[0].summary
    assert report.forecast_nanos == 210 * 10**9  # $35 over 5 days, for 30 days


def test_no_forecast_alert_before_min_days(sqlite_engine: Engine, config: Config) -> None:
    """One busy first hour forecasts nothing: the forecast waits for 3 local days."""
    engine = sqlite_engine
    store.set_org(engine, "acme", name="Acme Corp", timezone="UTC", monthly_budget="40")
    ingest(engine, [row("e1", "2026-11-01T00:10:00Z", cost="5")])
    forecast = config.job("forecast-alerts").alert
    assert forecast is not None
    for moment in (utc(1, 1), utc(2, 12), utc(3, 23)):
        assert rules.evaluate(engine, forecast, {}, "acme", moment) == []
    assert [a.audience for a in rules.evaluate(engine, forecast, {}, "acme", utc(4, 0))] == [
        "alert:org:100"]  # $5 over 3 days: $50 by the month's end, 125% of $40


def test_a_spike_is_measured_against_the_mean_of_the_days_before(sqlite_engine: Engine,
                                                                  config: Config) -> None:
    """An organization that spends on 6 of 14 days: an ordinary day is no spike (the median
    of those days was $0); a real one says what the days before averaged."""
    engine = sqlite_engine
    store.set_org(engine, "acme", name="Acme Corp", timezone="UTC")
    ingest(engine, [row(f"e{d}", f"2026-11-{d:02d}T10:00:00Z", cost="50")
                    for d in (2, 4, 6, 8, 10, 12)])
    spikes = config.job("spikes").alert
    assert spikes is not None
    ingest(engine, [row("usual", "2026-11-15T10:00:00Z", cost="50")])
    assert rules.evaluate(engine, spikes, {}, "acme", utc(16, 6)) == []
    ingest(engine, [row("big", "2026-11-16T10:00:00Z", cost="400")])
    found = rules.evaluate(engine, spikes, {}, "acme", utc(17, 6))
    assert [a.summary for a in found] == [
        "Acme Corp spent $400.00 on Nov 16, 2026 (UTC), 16 times its average of $25.00 a day "
        "over the 14 days before (7 of them with usage)."]
    store.set_org(engine, "quiet", name="Quiet Ltd", timezone="UTC")
    ingest(engine, [row("q1", "2026-11-16T10:00:00Z", org="quiet", cost="12")])
    assert [a.summary for a in rules.evaluate(engine, spikes, {}, "quiet", utc(17, 6))] == [
        "Quiet Ltd spent $12.00 on Nov 16, 2026 (UTC), after 14 days without usage."]


def test_a_percent_is_never_rounded_up_past_a_threshold(sqlite_engine: Engine,
                                                        config: Config) -> None:
    engine = sqlite_engine
    store.set_org(engine, "acme", name="Acme Corp", timezone="UTC", monthly_budget="100")
    ingest(engine, [row("e1", "2026-11-10T10:00:00Z", cost="99.96")])
    made = budget.block(100 * 10**9, 99_960_000_000, date(2026, 11, 10))
    assert made.percent == Decimal("99.9")
    assert "(99.9%)" in made.text
    assert budget.percent_of(99_999_999_999, 100 * 10**9, 0) == 99
    actual = config.job("budget-alerts").alert
    assert actual is not None
    found = rules.evaluate(engine, actual, {}, "acme", utc(10, 12))
    assert [a.audience for a in found] == ["alert:org:80"]
    assert "$99.96 spent (99.9%)" in found[0].summary


def test_a_project_of_any_name_the_store_accepts_is_alerted_once(engine: Engine,
                                                                 tmp_path: Path,
                                                                 server: HookServer) -> None:
    """Project names up to the store's 1000 characters (4 bytes each) fit the ledger's key,
    on SQLite and PostgreSQL, and two long names that share a beginning stay apart."""
    long_a = "\U0001f680" * 999 + "a"
    long_b = "\U0001f680" * 999 + "b"
    path = tmp_path / "jobs.yaml"
    path.write_text(JOBS + f"budgets:\n  acme:\n    projects:\n      '{long_a}': 10\n"
                           f"      '{long_b}': 10\n      short: 10\n")
    config = load(path)
    store.set_org(engine, "acme", name="Acme Corp", timezone="UTC")
    store.set_member(engine, "acme", "alice@acme.com", role="owner")
    ingest(engine, [row("a", "2026-11-10T10:00:00Z", project=long_a, cost="6"),
                    row("b", "2026-11-10T10:00:00Z", project=long_b, cost="9"),
                    row("c", "2026-11-10T10:00:00Z", project="short", cost="5")])
    first = run(engine, config, "budget-alerts", utc(10, 12))
    assert sorted(s.split(":")[1] + " " + s.rsplit(" ", 1)[1] for s in first) == [
        "project delivered"] * 3
    audiences = sorted(s.split(" ")[0] for s in first)
    assert len(set(audiences)) == 3
    assert "alert:project:short:50" in audiences
    assert all(len(a) <= 400 for a in audiences)
    assert run(engine, config, "budget-alerts", utc(10, 13)) == [
        f"{a} already" for a in sorted(audiences, key=first_order(first))]
    assert len(server.posts) == 3
    assert any(long_b in p["text"] for p in server.posts)  # the message names it whole


def first_order(first: list[str]) -> object:
    order = [s.split(" ")[0] for s in first]
    return order.index


def test_every_message_is_its_own_file_in_the_outbox(sqlite_engine: Engine, tmp_path: Path,
                                                     server: HookServer) -> None:
    """``run --force`` adds a message beside the first, and projects whose names differ
    only in a character a file name cannot hold (``team:web``, ``team-web``) get one each."""
    from click.testing import CliRunner

    from reporter.cli import main

    path = tmp_path / "jobs.yaml"
    path.write_text(JOBS + "budgets:\n  acme:\n    projects:\n      'team:web': 10\n"
                           "      team-web: 10\n")
    engine = sqlite_engine
    store.set_org(engine, "acme", name="Acme Corp", timezone="UTC")
    store.set_member(engine, "acme", "alice@acme.com", role="owner")
    now = datetime.now(UTC).replace(microsecond=0)
    moment = max(now - timedelta(seconds=1), now.replace(hour=0, minute=0, second=0))
    ingest(engine, [row("a", moment.isoformat(), project="team:web", cost="6"),
                    row("b", moment.isoformat(), project="team-web", cost="6")])
    options = ["--config", str(path), "--db", str(engine.url)]
    first = CliRunner().invoke(main, [*options, "run", "budget-alerts"])
    assert first.exit_code == 0, first.output
    assert len(outbox(tmp_path)) == 2
    forced = CliRunner().invoke(main, [*options, "run", "budget-alerts", "--force"])
    assert forced.exit_code == 0, forced.output
    files = outbox(tmp_path)
    assert len(files) == 4
    texts = [f.read_text() for f in files]
    assert sum("Project team:web" in t for t in texts) == 2
    assert sum("Project team-web" in t for t in texts) == 2
    rows = ledger.history(engine, job="budget-alerts")
    assert sorted(r.deliveries for r in rows) == [2, 2]
    assert len(server.posts) == 4


def test_a_process_killed_after_the_webhook_never_posts_it_again(sqlite_engine: Engine,
                                                                 tmp_path: Path,
                                                                 server: HookServer) -> None:
    """kill -9 right after the webhook's 2xx (while the email waits on a silent server):
    the process that takes the unit over sends the email and never posts again."""
    import signal
    import socket
    import subprocess
    import sys
    import time

    from reporter.jobs.units import Unit
    from tests.delivery_support import Mailbox, smtp_section, smtp_server

    reporter = Path(sys.executable).parent / "reporter"
    engine = sqlite_engine
    store.set_org(engine, "acme", name="Acme Corp", timezone="UTC", monthly_budget="10")
    store.set_member(engine, "acme", "alice@acme.com", role="owner")
    now = datetime.now(UTC).replace(microsecond=0)
    moment = max(now - timedelta(seconds=1), now.replace(hour=0, minute=0, second=0))
    ingest(engine, [row("a", moment.isoformat(), cost="6")])
    engine.dispose()
    path = tmp_path / "jobs.yaml"
    scheduler = "scheduler:\n  unit_timeout_seconds: 1\n"
    options = [str(reporter), "--config", str(path), "--db", str(engine.url), "run",
               "budget-alerts"]
    first_day = moment.date().replace(day=1)
    unit = Unit("budget-alerts", "acme", "alert:org:50", "alert", first_day,
                budget.month_of(first_day)[1])
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, never greets
        path.write_text(smtp_section(silent.getsockname()[1]).replace(
            "timeout_seconds: 5", "timeout_seconds: 120") + scheduler + JOBS)
        process = subprocess.Popen(options, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                record = ledger.get(engine, unit)
                if record is not None and any(f["channel"] == "webhook" for f in record.files):
                    break
                assert process.poll() is None, process.communicate()
                time.sleep(0.02)
            else:
                pytest.fail("the webhook was never recorded")
            process.send_signal(signal.SIGKILL)
            process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
    assert len(server.posts) == 1
    record = ledger.get(engine, unit)
    assert record is not None
    assert record.state == "running"
    mailbox = Mailbox()
    with smtp_server(mailbox) as port:
        path.write_text(smtp_section(port) + scheduler + JOBS)
        time.sleep(1.5)  # the killed run's claim goes stale
        again = subprocess.run(options, capture_output=True, text=True, timeout=300,
                               check=False)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "delivered" in again.stdout
    assert len(server.posts) == 1  # the webhook, never again
    assert mailbox.counts() == {"alice@acme.com": 1}
    record = ledger.get(engine, unit)
    assert record is not None
    assert (record.state, record.deliveries) == ("delivered", 1)
    assert sorted(f["channel"] for f in record.files) == ["email", "webhook"]
