"""HTML report: standalone, exact, escaped, and working in a real browser (headless Chromium)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import re
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from reporter.periods import Period
from reporter.render import Options, html_report, json_report, render, write
from reporter.report import aggregate
from reporter.report.model import (
    DailyPoint,
    DayRow,
    MemberRow,
    MemberShares,
    MemberUsage,
    ModelDayRow,
    ModelRow,
    OrgRef,
    Report,
    Summary,
)
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
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    # two scripts, both ours: the data (never run) and the one that opens rows, which the
    # Content Security Policy allows by its hash (nothing else runs, nothing is fetched)
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S)
    assert [attrs for attrs, _ in scripts] == [' type="application/json" id="report-data"', ""]
    assert html.lower().count("<script") == 2  # the data's "<script>" is not a tag
    digest = base64.b64encode(hashlib.sha256(scripts[1][1].encode()).digest()).decode()
    [policy] = re.findall(r'http-equiv="Content-Security-Policy" content="([^"]+)"', html)
    assert policy == ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
                      f"script-src 'sha256-{digest}'")
    data = json.loads(scripts[0][1])
    assert [m[0] for m in data["members"]] == [m.email for m in report.by_member]


def test_html_shows_the_numbers_of_the_json(report: Report) -> None:
    html = html_report.render(report, Options()).decode()
    data = json_report.to_dict(report)
    assert report.cost_places == 9  # exact in the XLSX and JSON
    # people read the tables rounded: mallory's $0.000000009 is the smallest amount and reads
    # $0.00000001 at 8 places, not $0.00 (7 would)
    assert report.display_places == 8
    total = Decimal(data["summary"]["total_cost_usd"])
    assert f"${total:,.9f}" == "$4.750000010"
    assert "$4.75000001" in html
    assert "$0.00000001" in html  # mallory's day is not rounded away
    assert "1,254,244" in html  # total tokens with separators
    assert 'title="Input 1,003,207 · Output 251,037"' in html  # input/output on hover
    # every amount in the tables has the same number of decimals
    amounts = re.findall(r"<td class=\"num\"[^>]*>\$([\d,]+)\.(\d+)</td>", html)
    assert amounts
    assert {len(frac) for _, frac in amounts} == {8}


def test_html_chart_draws_every_day_with_zero_days(report: Report) -> None:
    html = html_report.render(report, Options()).decode()
    # the wide chart (the narrow one, for phones, draws the same bars)
    assert re.findall(r'<svg class="chart (chart-\w+)"', html) == ["chart-wide", "chart-narrow"]
    charts = re.findall(r'<svg class="chart chart-\w+".*?</svg>', html, re.S)
    bars = re.findall(r'<rect class="bar"[^>]*height="([\d.]+)"', charts[0])
    assert bars == re.findall(r'<rect class="bar"[^>]*height="([\d.]+)"', charts[1])
    assert len(bars) == 7
    assert [float(h) > 0 for h in bars] == [True, False, False, False, False, False, True]
    assert "2026-11-03: $0.00000000, 0 requests" in html
    assert "2026-11-04: $0.00000001, 1 request" in html


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
    # said in words, not as a table of zeros and a flat chart
    assert "No usage in this period." in html
    assert '<rect class="bar"' not in html
    assert "<table" not in html
    assert "$0.00" not in html


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
    member = page.locator("#by-day tbody.detail tr.member", has_text="alice@acme.com")
    assert member.count() == 0  # built when the day is opened
    day.locator("summary").click()
    member.wait_for(state="visible", timeout=5000)  # built by the toggle event, a task later
    assert page.locator("#by-day tbody.detail tr.member", has_text="bob@acme.com").is_visible()
    assert "$1.25000000" in member.inner_text()  # rounded half up as the page is
    assert member.locator("td[title]").get_attribute("title").startswith("Input ")
    day.locator("summary").click()
    member.wait_for(state="hidden", timeout=5000)  # the toggle event comes a task later
    hostile = page.locator("#by-model-day tbody.group", has_text="<b>model</b>")
    hostile.locator("summary").click()
    page.locator("#by-model-day tbody.detail .who",
                 has_text="<img src=x onerror=alert(1)>").wait_for(state="visible", timeout=5000)
    assert page.locator("img").count() == 0  # a name is text, never markup
    tokens = page.locator("#summary dd[title]")
    assert tokens.get_attribute("title") == "Input 1,003,207 · Output 251,037"
    # at this width the wide chart shows, the phone's is hidden
    assert page.locator("svg.chart-wide rect.bar").count() == 7
    assert page.locator("svg.chart-wide").is_visible()
    assert page.locator("svg.chart-narrow").is_hidden()
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


# -- a year of 50 members and 10 models ------------------------------------------------------

YEAR_MODELS = [f"{vendor}/model-{n}" for vendor in ("anthropic", "openai") for n in range(5)]


def year_report(members: int = 50, models: int = 10, seed: int = 9) -> Report:
    """A year's report of ``members`` x ``models`` x 365 days, nearly every group used once or
    more (about 170,000 groups for 50 x 10), with realistic amounts, built without a
    database: the render is what is measured here."""
    rng = random.Random(seed)
    first = date(2025, 1, 1)
    period = Period("custom", first, date(2025, 12, 31), "UTC")
    people = [(f"user{n:04d}@bench.example", f"User {n}" if n % 3 else None)
              for n in range(members)]
    names = YEAR_MODELS[:models]
    by_day, by_model_day, shares = [], [], []
    member_totals: dict[str, MemberRow] = {}
    model_totals: dict[str, ModelRow] = {}
    summary = Summary()
    for offset in range(365):
        day = DayRow(date=first + timedelta(days=offset))
        day_members: dict[str, MemberUsage] = {}
        rows = []
        for model in names:
            row = ModelDayRow(date=day.date, model=model)
            share = []
            for email, name in people:
                if rng.random() < 0.07:
                    continue
                requests = rng.randint(1, 6)
                inp, out = int(rng.lognormvariate(9, 1)), int(rng.lognormvariate(7.5, 1))
                cost = inp * 3000 + out * 15000 + rng.randint(0, 999)
                usage = MemberUsage(cost, requests, inp, out, 0, 0, email, name)
                share.append(usage)
                row.add(usage)
                mine = day_members.setdefault(email, MemberUsage(email=email, name=name))
                mine.add(usage)
                totals = member_totals.setdefault(email, MemberRow(email=email, name=name))
                totals.add(usage)
                model_totals.setdefault(model, ModelRow(model=model)).add(usage)
            share.sort(key=lambda m: (-m.cost_nanos, m.email))
            row.users = len(share)
            rows.append((row, share))
        rows.sort(key=lambda pair: (-pair[0].cost_nanos, pair[0].model))
        by_model_day += [row for row, _ in rows]
        shares += [share for _, share in rows]
        day.members = sorted(day_members.values(), key=lambda m: (-m.cost_nanos, m.email))
        for member in day.members:
            day.add(member)
            member_totals[member.email].active_days += 1
        day.users = len(day.members)
        summary.add(day)
        by_day.append(day)
    summary.active_users = len(member_totals)
    for row in model_totals.values():
        row.users = members
    return Report(
        organization=OrgRef("bench", "Bench Org", "UTC"), period=period, member=None,
        member_name=None, generated_at=datetime(2026, 1, 1, tzinfo=UTC), summary=summary,
        by_day=by_day, by_model_day=by_model_day, by_project=[],
        by_member=sorted(member_totals.values(), key=lambda r: (-r.cost_nanos, r.email)),
        by_model=sorted(model_totals.values(), key=lambda r: (-r.cost_nanos, r.model)),
        daily=[DailyPoint(d.date, d.cost_nanos, d.requests, d.tokens) for d in by_day],
        shares=MemberShares(shares))


def _figures(cells: list[str]) -> tuple[Decimal, int, int]:
    """Cost, requests and tokens as a row of the page shows them."""
    cost, requests, tokens = cells
    return (Decimal(cost.lstrip("$").replace(",", "")), int(requests.replace(",", "")),
            int(tokens.replace(",", "")))


def _expected(row: dict[str, Any], places: int) -> tuple[Decimal, int, int]:
    """The JSON's row as the page shows it: the cost rounded half up to ``places``."""
    cost = Decimal(row["cost_usd"]).quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP)
    return cost, row["requests"], row["tokens"]


@pytest.mark.slow
@pytest.mark.browser
def test_a_year_opens_under_5_mb_with_every_row_a_click_away(browser: Any, tmp_path: Path,
                                                             artifacts: Path) -> None:
    report = year_report()
    groups = sum(row.users for row in report.by_model_day)
    assert groups > 160_000
    data = json_report.to_dict(report)
    [path] = write(report, ["html"], tmp_path)
    size = path.stat().st_size
    assert size < 5_000_000, f"{size:,} bytes"

    context = browser.new_context(viewport={"width": 1200, "height": 900})
    context.route("**/*", lambda route: route.continue_() if route.request.url.startswith(
        "file:") else route.abort())
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    places = report.display_places
    # the year's By Day shows its twelve months, each one click from its days
    months = page.locator("#by-day tbody.group")
    assert months.count() == 12
    march = page.locator("#by-day tbody.group", has_text="2025-03-01 to 2025-03-31")
    march.locator("summary").click()
    days = page.locator("#by-day tbody.detail tr.day")
    expected = [d for d in data["by_day"] if d["date"].startswith("2025-03")]
    days.nth(len(expected) - 1).wait_for()  # the rows are drawn as the month opens
    assert days.count() == len(expected) == 31
    for shown, want in zip(days.all(), expected, strict=True):
        cells = shown.locator("th, td").all_inner_texts()
        assert cells[0] == want["date"]
        assert _figures(cells[1:4]) == _expected(want, places)
        assert int(cells[4]) == want["users"]
    # a day opens on its members, as the JSON lists them
    day = days.filter(has_text="2025-03-15")
    day.locator("summary").click()
    want = next(d for d in data["by_day"] if d["date"] == "2025-03-15")
    members = page.locator("#by-day tbody.detail tr.member.deep")
    members.nth(len(want["members"]) - 1).wait_for()  # the rows are drawn as the day opens
    assert members.count() == len(want["members"]) > 40
    for shown, member in zip(members.all(), want["members"], strict=True):
        cells = shown.locator("th, td").all_inner_texts()
        assert cells[0].split()[-1] == member["email"]  # the name (if any) over the address
        assert _figures(cells[1:4]) == _expected(member, places)

    # By Model & Day: a model's month opens on its days, a day on its members
    model = report.by_model[0].model
    line = page.locator(f'#by-model-day tbody.group[data-model="{model}"]'
                        '[data-first="2025-07-01"]')
    line.locator("summary").click()
    rows = page.locator("#by-model-day tbody.detail tr.day")
    expected = [r for r in data["by_model_day"]
                if r["model"] == model and r["date"].startswith("2025-07")]
    rows.nth(len(expected) - 1).wait_for()  # the rows are drawn as the month opens
    assert rows.count() == len(expected) == 31
    for shown, want in zip(rows.all(), expected, strict=True):
        cells = shown.locator("th, td").all_inner_texts()
        assert cells[:2] == [want["date"], model]
        assert _figures(cells[2:5]) == _expected(want, places)
    rows.filter(has_text="2025-07-04").locator("summary").click()
    want = next(r for r in expected if r["date"] == "2025-07-04")
    members = page.locator("#by-model-day tbody.detail tr.member.deep")
    members.nth(len(want["members"]) - 1).wait_for()  # the rows are drawn as the day opens
    assert members.count() == len(want["members"])
    assert [_figures(m.locator("td").all_inner_texts()[:3]) for m in members.all()] == [
        _expected(m, places) for m in want["members"]]
    page.screenshot(path=str(artifacts / "report-html-year.png"))
    context.close()
    assert problems == []
