"""HTML report: standalone, exact, escaped, and working in a real browser (headless Chromium)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from reporter.periods import Period
from reporter.render import Options, html_report, json_report, render, write
from reporter.report import aggregate
from reporter.report.model import Report
from reporter.store import orgs as store
from tests.helpers import small_report


@pytest.fixture
def report(sqlite_engine: Engine) -> Report:
    return small_report(sqlite_engine)


def test_html_is_one_standalone_file(report: Report) -> None:
    html = html_report.render(report, Options()).decode()
    assert html.startswith("<!DOCTYPE html>")
    assert "<style>" in html
    assert "<link" not in html
    assert "<script" not in html.lower()  # neither ours nor the data's
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "Content-Security-Policy" in html


def test_html_shows_the_numbers_of_the_json(report: Report) -> None:
    html = html_report.render(report, Options()).decode()
    data = json_report.to_dict(report)
    assert report.cost_places == 9
    total = Decimal(data["summary"]["total_cost_usd"])
    assert f"${total:,.9f}" == "$4.750000010"
    assert "$4.750000010" in html
    assert "$0.000000009" in html  # mallory's day is not rounded away
    assert "1,254,244" in html  # total tokens with separators
    assert 'title="Input 1,003,207 · Output 251,037"' in html  # input/output on hover
    # every amount in the tables has the same number of decimals
    amounts = re.findall(r"<td class=\"num\">\$([\d,]+)\.(\d+)</td>", html)
    assert amounts
    assert {len(frac) for _, frac in amounts} == {9}


def test_html_chart_draws_every_day_with_zero_days(report: Report) -> None:
    html = html_report.render(report, Options()).decode()
    bars = re.findall(r'<rect class="bar"[^>]*height="([\d.]+)"', html)
    assert len(bars) == 7
    assert [float(h) > 0 for h in bars] == [True, False, False, False, False, False, True]
    assert "2026-11-03: $0.000000000, 0 requests" in html
    assert "2026-11-04: $0.000000009, 1 requests" in html


def test_html_escapes_hostile_names(report: Report) -> None:
    html = html_report.render(report, Options()).decode()
    assert "Acme &lt;script&gt;document.title=&#39;pwned&#39;&lt;/script&gt; 🚀" in html
    assert "&lt;img src=x onerror=alert(1)&gt; =HYPERLINK(&#34;http://evil.example&#34;" in html
    assert "😀" in html
    assert "&lt;b&gt;model&lt;/b&gt;" in html
    assert "=HYPERLINK(&#34;http://evil.example&#34;,&#34;click&#34;)" in html
    assert '<em class="none">(no project)</em>' in html


def test_html_lists_every_view(report: Report) -> None:
    html = html_report.render(report, Options()).decode()
    for caption in ("By Day", "By Model &amp; Day", "By Project", "By Member"):
        assert f">{caption}</h2>" in html
    assert html.count('<th scope="col"') >= 20
    assert html.count("<caption>") == 4
    assert "Summarised for print" not in html  # the HTML holds every row


def test_html_of_an_empty_period(sqlite_engine: Engine) -> None:
    store.set_org(sqlite_engine, "empty")
    period = Period("custom", date(2026, 1, 1), date(2026, 1, 3), "UTC")
    report = aggregate.build(sqlite_engine, "empty", period, now=datetime(2026, 2, 1, tzinfo=UTC))
    html = render(report, "html").decode()
    assert "No usage in this period." in html
    assert html.count('<rect class="bar"') == 3


def test_templates_can_be_overridden(report: Report, tmp_path: Path) -> None:
    (tmp_path / "report.css").write_text("body { color: rebeccapurple; }\n")
    html = render(report, "html", Options(tmp_path)).decode()
    assert "rebeccapurple" in html
    assert "border-collapse" not in html


# -- a real browser --------------------------------------------------------------------------

@pytest.mark.browser
def test_html_in_headless_chromium(report: Report, browser: Any, tmp_path: Path,
                                   artifacts: Path) -> None:
    [path] = write(report, ["html"], tmp_path)
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    requests: list[str] = []
    problems: list[str] = []

    def refuse(route: Any) -> None:
        requests.append(route.request.url)
        if route.request.url.startswith("file:"):
            route.continue_()
        else:
            route.abort()

    context.route("**/*", refuse)
    page = context.new_page()
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.goto(path.as_uri())
    page.wait_for_load_state("load")

    assert page.title() == report.title  # the org's "<script>" is text, not code
    day = page.locator("#by-day tbody.group").first
    member = day.locator("tr.member", has_text="alice@acme.com")
    assert member.is_hidden()
    day.locator("summary").click()
    assert member.is_visible()
    assert day.locator("tr.member", has_text="bob@acme.com").is_visible()
    assert "$1.250000001" in member.inner_text()
    assert page.locator("#by-model-day tr.member").first.is_hidden()
    tokens = page.locator("#summary dd[title]")
    assert tokens.get_attribute("title") == "Input 1,003,207 · Output 251,037"
    assert page.locator("svg.chart rect.bar").count() == 7
    page.screenshot(path=str(artifacts / "report-html.png"), full_page=True)
    context.close()

    assert requests == [path.as_uri()]
    assert problems == []


def test_personal_report_holds_only_that_member(sqlite_engine: Engine) -> None:
    small_report(sqlite_engine)
    period = Period("custom", date(2026, 11, 2), date(2026, 11, 8), "Europe/Berlin")
    report = aggregate.build(sqlite_engine, "acme", period, member="bob@acme.com",
                             now=datetime(2026, 11, 9, tzinfo=UTC))
    html = render(report, "html").decode()
    assert "for bob@acme.com" in html
    assert "$0.50<" in html  # his own amounts need two decimals
    assert "alice@acme.com" not in html
    assert "mallory@acme.com" not in html


@pytest.mark.parametrize(("ci", "outcome"), [("true", "1 error"), ("", "1 skipped")])
def test_a_missing_browser_fails_on_ci_and_is_skipped_elsewhere(ci: str, outcome: str) -> None:
    checkout = Path(__file__).resolve().parent.parent
    env = {**os.environ, "CI": ci, "REPORTER_TEST_CHROMIUM": "no-such-browser"}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "tests/test_render_html.py::test_html_in_headless_chromium"],
        cwd=checkout, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert outcome in result.stdout, result.stdout + result.stderr
    assert result.returncode == (1 if ci else 0)
    if ci:
        assert "the browser 'no-such-browser' is missing on CI" in result.stdout
