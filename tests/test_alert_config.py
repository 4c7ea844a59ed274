"""jobs.yaml for budgets and alerts: project budgets, alert jobs and deliver.webhook, every
problem one file:line message."""

from __future__ import annotations

from pathlib import Path

import pytest

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
