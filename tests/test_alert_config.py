"""jobs.yaml for budgets and alerts: project budgets, alert jobs and deliver.webhook, every
problem one file:line message."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine

from reporter import config
from reporter.config import ConfigErrors, keys

GOOD = """\
budgets:
  acme:
    projects:
      example-repo: 500.10
jobs:
  weekly:
    period: previous-week
    deliver:
      webhook: {url_env: HOOK_URL}
  budget-alerts:
    kind: alert
    schedule: "0 * * * *"
    when: budget
    thresholds: [100, 50, 80, 80]
    on: forecast
    deliver: {store: false, email: true}
  spikes:
    kind: alert
    when: spike
    factor: 2.5
    min_usd: 0.10
    audience: [ops@example.com]
    deliver:
      store: false
      webhook: {url_env: HOOK_URL, retries: 2}
"""


def test_budgets_alerts_and_webhooks_are_read(tmp_path: Path) -> None:
    """Amounts are exact nano-dollars; thresholds sorted and unique; the webhook URL comes
    from the environment."""
    got = config.parse(GOOD, tmp_path / "jobs.yaml", {"HOOK_URL": "https://hooks.example/x"})
    assert got.budgets == {"acme": {"example-repo": 500_100_000_000}}
    weekly = got.jobs["weekly"]
    assert weekly.kind == "report"
    assert weekly.webhook is not None
    assert weekly.webhook.url == "https://hooks.example/x"
    alert = got.jobs["budget-alerts"].alert
    assert alert is not None
    assert (alert.when, alert.thresholds, alert.on) == ("budget", (50, 80, 100), "forecast")
    spike = got.jobs["spikes"]
    assert spike.alert is not None
    assert (spike.alert.factor, spike.alert.min_nanos) == (2.5, 100_000_000)
    assert spike.webhook is not None
    assert spike.webhook.retries == 2


@pytest.mark.parametrize(("change", "message"), [
    (("500.10", "lots"), "jobs.yaml:4: budgets: organization 'acme': project 'example-repo': "
                         "budget 'lots' is not an amount"),
    (("  acme:", "  Acme Corp:"), "jobs.yaml:3: budgets: 'Acme Corp' is not an organization"),
    (("[100, 50, 80, 80]", "[100, 0]"), "jobs.yaml:14: job 'budget-alerts': 'thresholds' "
                                         "items must be whole percents"),
    (("when: spike", "when: sometimes"), "jobs.yaml:19: job 'spikes': unknown when "),
    (("on: forecast", "on: hope"), "jobs.yaml:15: job 'budget-alerts': unknown on 'hope'"),
    (("factor: 2.5", "factor: 0.5"), "jobs.yaml:20: job 'spikes': 'factor' must be a number "
                                     "from 1 to 1000"),
    (("min_usd: 0.10", "min_usd: -3"), "jobs.yaml:21: job 'spikes': 'min_usd' '-3' is not"),
    (("min_usd: 0.10", "min_usd: 0"), "jobs.yaml:21: job 'spikes': 'min_usd' must be at "
                                      "least 0.01 USD, not '0'"),
    (("min_usd: 0.10", "min_usd: 0.009"), "jobs.yaml:21: job 'spikes': 'min_usd' must be at "
                                          "least 0.01 USD, not '0.009'"),
    (("min_usd: 0.10", "min_usd: none"), "jobs.yaml:21: job 'spikes': 'min_usd' must be an "
                                         "amount in USD (like 10 or 2.50), not 'none'"),
    (("min_usd: 0.10", "min_days: 2"), "jobs.yaml:21: job 'spikes': 'min_days' does not "
                                       "apply to 'when: spike'"),
    (("    on: forecast\n", "    on: forecast\n    min_days: 40\n"),
     "jobs.yaml:16: job 'budget-alerts': 'min_days' must be an integer from 0 to 27"),
    (("    period: previous-week\n", "    period: previous-week\n    audience: members\n"),
     "jobs.yaml:8: job 'weekly': a job with 'audience: members' cannot post to a webhook"),
    (("    on: forecast\n", "    on: forecast\n    factor: 2\n"),
     "jobs.yaml:16: job 'budget-alerts': 'factor' does not apply to 'when: budget'"),
    (("    when: budget\n", ""), "job 'budget-alerts': missing key 'when'"),
    (("    period: previous-week\n", ""), "jobs.yaml:7: job 'weekly': missing key 'period'"),
    (("    when: spike\n", "    when: spike\n    period: past-week\n"),
     "jobs.yaml:20: job 'spikes': an alert job has no 'period'"),
    (("{url_env: HOOK_URL}", "{url: https://x.example}"),
     "jobs.yaml:9: job 'weekly': unknown key 'url'"),
])
def test_problems_are_one_line_each(tmp_path: Path, change: tuple[str, str],
                                    message: str) -> None:
    """Each mistake is reported at its line, naming the job or section."""
    text = GOOD.replace(*change)
    assert text != GOOD
    with pytest.raises(ConfigErrors) as caught:
        config.parse(text, tmp_path / "jobs.yaml", {"HOOK_URL": "https://hooks.example/x"})
    assert any(m.startswith(message) or message in m for m in caught.value.messages), \
        caught.value.messages


def test_reference_lists_the_new_keys() -> None:
    """The generated key reference documents alerts and webhooks."""
    text = keys.reference()
    for needle in ("`job.deliver.webhook`", "| `thresholds` |", "| `budgets` |",
                   "| `min_usd` |", "| `kind` |"):
        assert needle in text


def test_an_unset_variable_fails_only_the_job_that_needs_it(tmp_path: Path) -> None:
    """The file loads; the unset variable is named (``reporter validate`` lists it) and only
    the job whose webhook needs it is missing its URL."""
    got = config.parse(GOOD.replace("url_env: HOOK_URL, retries", "url_env: UNSET_URL, retries"),
                       tmp_path / "jobs.yaml", {"HOOK_URL": "https://hooks.example/x"})
    assert got.unset == ("jobs.yaml:25: job 'spikes': environment variable UNSET_URL "
                         "(webhook url_env) is not set",)
    spikes, weekly = got.jobs["spikes"].webhook, got.jobs["weekly"].webhook
    assert spikes is not None
    assert spikes.url is None
    assert weekly is not None
    assert weekly.url == "https://hooks.example/x"


def test_min_usd_of_a_cent_and_min_days_are_read(tmp_path: Path) -> None:
    text = GOOD.replace("min_usd: 0.10", "min_usd: 0.01").replace(
        "    on: forecast\n", "    on: forecast\n    min_days: 0\n")
    got = config.parse(text, tmp_path / "jobs.yaml", {"HOOK_URL": "https://hooks.example/x"})
    spikes, budgets = got.jobs["spikes"].alert, got.jobs["budget-alerts"].alert
    assert spikes is not None
    assert budgets is not None
    assert spikes.min_nanos == 10_000_000
    assert budgets.min_days == 0
    default = config.parse(GOOD, tmp_path / "jobs.yaml", {"HOOK_URL": "https://x.example/x"})
    assert default.jobs["budget-alerts"].alert.min_days == 3  # type: ignore[union-attr]


@pytest.mark.parametrize(("url", "problem"), [
    ("http://hooks.example/T/secret", "holds a plain http:// URL to hooks.example: its secret "
                                      "would travel unencrypted; use https, or set "
                                      "allow_plaintext: true"),
    ("http://", "holds a URL without a host"),
    ("https://[hooks.example/x", "does not hold a valid URL (Invalid IPv6 URL)"),
    ("hooks.example/x", "does not hold an http(s) URL"),
])
def test_a_webhook_url_that_cannot_be_used_fails_only_its_job(tmp_path: Path, url: str,
                                                              problem: str) -> None:
    """Like an unset variable: the file loads, the problem is named (validate lists it),
    the job's posts fail saying so, and the URL is never shown."""
    got = config.parse(GOOD, tmp_path / "jobs.yaml", {"HOOK_URL": url})
    assert got.unset == (
        f"jobs.yaml:9: job 'weekly': environment variable HOOK_URL (webhook url_env) {problem}",
        f"jobs.yaml:25: job 'spikes': environment variable HOOK_URL (webhook url_env) "
        f"{problem}")
    assert all("secret" not in m or "secret would" in m for m in got.unset)


def test_plain_http_is_allowed_when_the_job_says_so(tmp_path: Path) -> None:
    text = GOOD.replace("{url_env: HOOK_URL, retries: 2}",
                        "{url_env: HOOK_URL, retries: 2, allow_plaintext: true}")
    got = config.parse(text, tmp_path / "jobs.yaml", {"HOOK_URL": "http://chat.internal/x"})
    assert [m.split(":")[1] for m in got.unset] == ["9"]  # only the job that does not allow it
    spikes = got.jobs["spikes"].webhook
    assert spikes is not None
    assert spikes.allow_plaintext
    loopback = config.parse(GOOD, tmp_path / "jobs.yaml", {"HOOK_URL": "http://127.0.0.1:9/x"})
    assert loopback.unset == ()


CLI_JOBS = """\
output: out
jobs:
  weekly:
    period: previous-week
    formats: [json]
    deliver:
      store: true
      webhook: {url_env: UNSET_WEEKLY_HOOK, retries: 0}
  files:
    period: previous-week
    formats: [json]
  budget-alerts:
    kind: alert
    when: budget
    deliver:
      store: false
      webhook: {url_env: UNSET_ALERT_HOOK, retries: 0}
"""


def test_validate_names_every_missing_variable_and_other_jobs_run(
        sqlite_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``validate`` lists each unset variable and exits 1; the job that needs none runs, and
    a dry run of one that needs one still shows what it would do."""
    from click.testing import CliRunner

    from reporter.cli import main
    from reporter.store import orgs as store
    from tests.helpers import load as ingest
    from tests.helpers import row

    for name in ("UNSET_WEEKLY_HOOK", "UNSET_ALERT_HOOK"):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "jobs.yaml"
    path.write_text(CLI_JOBS)
    store.set_org(sqlite_engine, "acme", name="Acme Corp", timezone="UTC")
    ingest(sqlite_engine, [row("e1", "2026-11-17T10:00:00Z", cost="1")])
    options = ["--config", str(path), "--db", str(sqlite_engine.url)]
    checked = CliRunner().invoke(main, [*options, "validate"])
    assert checked.exit_code == 1
    assert checked.stderr.splitlines() == [
        "jobs.yaml:8: job 'weekly': environment variable UNSET_WEEKLY_HOOK (webhook url_env) "
        "is not set",
        "jobs.yaml:17: job 'budget-alerts': environment variable UNSET_ALERT_HOOK (webhook "
        "url_env) is not set"]
    daily = CliRunner().invoke(main, [*options, "run", "files", "--from", "2026-11-16",
                                      "--to", "2026-11-22"])
    assert daily.exit_code == 0, daily.output
    assert "delivered" in daily.output
    dry = CliRunner().invoke(main, [*options, "run", "weekly", "--from", "2026-11-16",
                                    "--to", "2026-11-22", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "webhook $UNSET_WEEKLY_HOOK" in dry.output
    weekly = CliRunner().invoke(main, [*options, "run", "weekly", "--from", "2026-11-16",
                                       "--to", "2026-11-22"])
    assert weekly.exit_code == 1
    assert ("webhook $UNSET_WEEKLY_HOOK: environment variable UNSET_WEEKLY_HOOK (webhook "
            "url_env) is not set") in weekly.output
    assert "Traceback" not in weekly.output
