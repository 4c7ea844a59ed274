"""Each format read as its readers read it: words and figures that agree, counts that agree
with their nouns, one label for the period, money at one precision per report."""

from __future__ import annotations

import io
import json
import re
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pdfplumber
from openpyxl import load_workbook
from sqlalchemy import Engine

from reporter import render
from reporter.deliver.subject import subject_line
from reporter.periods import Period
from reporter.render import email_body
from reporter.report import aggregate
from reporter.report.model import Report
from reporter.store import orgs as store
from tests.helpers import load, row

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
WEEK = Period("previous-week", date(2026, 11, 23), date(2026, 11, 29), "America/New_York")
#: money in the JSON: an exact decimal string with exactly nine places
NINE = re.compile(r"^-?\d+\.\d{9}$")


def northwind(engine: Engine) -> Report:
    """A small organization with realistic names and amounts: one request of one member, a
    model with a provider path, a hyphenated project, $10 and $0.07834402."""
    store.set_org(engine, "northwind", name="Northwind Traders", timezone="America/New_York")
    load(engine, [
        row("n1", "2026-11-24T15:00:00Z", org="northwind", email="ben@northwind.example",
            model="openai/gpt-4", project="billing-service", cost="10",
            input_tokens=150, output_tokens=50),
        row("n2", "2026-11-25T15:00:00Z", org="northwind", email="ana@northwind.example",
            model="anthropic/claude-sonnet-4", project="billing-service", cost="0.07834402",
            input_tokens=1000, output_tokens=200),
        row("n3", "2026-11-25T16:00:00Z", org="northwind", email="ana@northwind.example",
            model="anthropic/claude-sonnet-4", cost="0.10", input_tokens=10, output_tokens=5),
    ])
    store.set_member(engine, "northwind", "ben@northwind.example", name="Ben Ortiz")
    store.set_member(engine, "northwind", "ana@northwind.example", name="Ana Lima")
    store.set_org(engine, "northwind", monthly_budget="10.00")
    return aggregate.build(engine, "northwind", WEEK, now=NOW)


def money_values(node: Any, key: str = "") -> list[tuple[str, str]]:
    """Every ``*_usd`` value of a JSON document with its key."""
    if isinstance(node, dict):
        return [pair for k, v in node.items() for pair in money_values(v, k)]
    if isinstance(node, list):
        return [pair for item in node for pair in money_values(item, key)]
    return [(key, node)] if key.endswith("_usd") and node is not None else []


def test_json_writes_every_amount_with_nine_places(sqlite_engine: Engine) -> None:
    from reporter.report import budget

    report = budget.attach(sqlite_engine, northwind(sqlite_engine))
    data = json.loads(render.render(report, "json"))
    found = money_values(data)
    assert data["budget"] is not None
    keys = {k for k, _ in found}
    assert {"monthly_usd", "spent_usd", "cost_usd", "total_cost_usd"} <= keys
    assert [(k, v) for k, v in found if not NINE.match(str(v))] == []
    assert data["budget"]["monthly_usd"] == "10.000000000"


def test_the_period_has_one_label_wherever_people_read_it(sqlite_engine: Engine) -> None:
    report = northwind(sqlite_engine)
    label = "Nov 23 \u2013 29, 2026 (New York time)"
    assert subject_line("{{ period.label }}", report, "weekly") == label
    assert json.loads(render.render(report, "json"))["period"]["label"] == label
    book = load_workbook(io.BytesIO(render.render(report, "xlsx")))
    summary = {r[0]: r[1] for r in book["Summary"].iter_rows(values_only=True) if r and r[0]}
    assert summary["Period"] == label
    assert label in render.render(report, "html").decode()


def test_counts_agree_with_their_nouns(sqlite_engine: Engine) -> None:
    report = northwind(sqlite_engine)
    body = email_body.render(report, job="weekly")
    # ben made one request: "1 request", never "1 requests"
    for text in (body.text, re.sub(r"<[^>]+>", " ", body.html),
                 render.render(report, "html").decode()):
        assert not re.search(r"\b1 (requests|tokens|other members|other projects)\b", text)
    assert "1 request" in body.text
    assert "openai/gpt-4" in body.text.splitlines()[0]  # the model id as given


def test_tables_read_at_one_precision_for_the_whole_report(sqlite_engine: Engine) -> None:
    report = northwind(sqlite_engine)
    # $0.07834402 is the smallest amount: at 2 places it reads $0.08, so 2 places it is
    assert report.display_places == 2
    body = email_body.render(report, job="weekly")
    html = render.render(report, "html").decode()
    with pdfplumber.open(io.BytesIO(render.render(report, "pdf"))) as pdf:
        words = " ".join(w["text"] for page in pdf.pages for w in page.extract_words())
    for text in (body.text, body.html, html, words):
        assert "$10.00" in text
        assert "$10.000" not in text
        assert "$0.07834402" not in text
    assert "rounded to 2 decimal places" in " ".join(words.split())
    # the exact amounts stay in the XLSX
    book = load_workbook(io.BytesIO(render.render(report, "xlsx")))
    costs = [c.value for r in book["By Member"].iter_rows() for c in r
             if isinstance(c.value, float | int) and not isinstance(c.value, bool)]
    assert any(abs(Decimal(str(v)) - Decimal("0.17834402")) < Decimal("1e-12") for v in costs)


# -- layout, as a phone and paper show it ----------------------------------------------------

def long_names(engine: Engine) -> Report:
    """Names that wrap badly: long hyphenated projects and models, long addresses."""
    store.set_org(engine, "northwind", name="Northwind Traders", timezone="America/New_York")
    rows = [row(f"l{n}", f"2026-11-{23 + n % 7}T15:00:00Z", org="northwind",
                email=f"benedict.{n}@northwind-traders.example",
                model="anthropic/claude-sonnet-4-20250514-extended-thinking",
                project="billing-service-reconciliation-pipeline", cost="1234.567891",
                input_tokens=123_456_789, output_tokens=1_234_567) for n in range(9)]
    load(engine, rows)
    store.set_member(engine, "northwind", "benedict.0@northwind-traders.example",
                     name="Benedict Oyelaran-Whitfield")
    return aggregate.build(engine, "northwind", WEEK, now=NOW)


def test_the_stored_html_fits_a_phone_without_sideways_scroll(
        sqlite_engine: Engine, browser: Any, tmp_path: Path, artifacts: Path) -> None:
    team = long_names(sqlite_engine)
    mine = aggregate.build(sqlite_engine, "northwind", WEEK, now=NOW,
                           member="benedict.0@northwind-traders.example")
    for report in (team, mine):
        [path] = render.write(report, ["html"], tmp_path)
        for width in (320, 390, 600):
            page = browser.new_page(viewport={"width": width, "height": 800})
            page.goto(path.as_uri())
            # open a day and its members too: what report.js adds must fit as well
            if not report.personal:
                page.locator("#by-day summary").first.click()
                page.locator("#by-model-day summary").first.click()
                assert page.locator("tbody.detail tr.member").count() > 0
            scroll = page.evaluate("document.documentElement.scrollWidth")
            assert scroll <= width, (report.title, width, scroll)
            # a date is never broken ("2026-/11-23"): each day's label is one line
            dates = page.evaluate("""[...document.querySelectorAll('th.date')]
                .filter(e => e.offsetParent).map(e => {
                  const walk = document.createTreeWalker(e, NodeFilter.SHOW_TEXT);
                  let lines = 0;
                  while (walk.nextNode()) {
                    if (!walk.currentNode.textContent.trim()) continue;
                    const r = document.createRange(); r.selectNodeContents(walk.currentNode);
                    lines += r.getClientRects().length;
                  }
                  return lines; })""")
            assert dates, width
            assert max(dates) == 1, (width, dates)
            # the phone's chart: its labels at least 9 px tall on screen
            sizes = page.evaluate("""[...document.querySelectorAll('svg.chart text')]
                .filter(e => e.getBoundingClientRect().height > 0)
                .map(e => e.getBoundingClientRect().height)""")
            assert sizes, width
            assert min(sizes) >= 9, (width, min(sizes))
            if width == 390:
                page.screenshot(path=str(artifacts / f"readers-{width}-"
                                f"{'personal' if report.personal else 'team'}.png"),
                                full_page=True)
            page.close()


def test_pdf_member_cell_keeps_addresses_whole(sqlite_engine: Engine) -> None:
    report = long_names(sqlite_engine)
    with pdfplumber.open(io.BytesIO(render.render(report, "pdf"))) as pdf:
        words = [w["text"] for page in pdf.pages for w in page.extract_words()]
    text = " ".join(words)
    start = text.index("By Member")
    member_words = text[start:].split()
    # each address is whole, or broken only right after "@" or "."
    for n in range(9):
        address = f"benedict.{n}@northwind-traders.example"
        pieces = [w for w in member_words if w and w in address and len(w) > 3]
        assert address in member_words or all(
            address.startswith(p) or address[address.index(p) - 1] in "@."
            for p in pieces), (address, pieces)
    assert "Benedict Oyelaran-Whitfield" in " ".join(member_words)


def test_a_personal_report_holds_only_that_person(sqlite_engine: Engine) -> None:
    northwind(sqlite_engine)
    mine = aggregate.build(sqlite_engine, "northwind", WEEK, now=NOW,
                           member="ana@northwind.example")
    assert mine.title.startswith("Northwind Traders AI usage for Ana Lima, ")
    html = render.render(mine, "html").decode()
    with pdfplumber.open(io.BytesIO(render.render(mine, "pdf"))) as pdf:
        words = " ".join(w["text"] for page in pdf.pages for w in page.extract_words())
    for text in (html, words):
        assert "By Member" not in text
        assert "active users" not in text.lower()
        assert "members listed under each row" not in text
        assert "ben@northwind.example" not in text
    assert "Ana Lima" in words
    book = load_workbook(io.BytesIO(render.render(mine, "xlsx")))
    assert "By Member" not in book.sheetnames


def test_only_cost_changes_are_coloured(sqlite_engine: Engine) -> None:
    northwind(sqlite_engine)
    load(sqlite_engine, [row("p1", "2026-11-17T15:00:00Z", org="northwind",
                             email="ben@northwind.example", cost="50")])
    report = aggregate.build(sqlite_engine, "northwind", WEEK, now=NOW)
    assert report.previous is not None
    assert report.summary.active_users > report.previous.summary.active_users
    html = render.render(report, "html").decode()
    body = email_body.render(report, job="weekly").html
    for page in (html, body):
        users = re.search(r"Active Users.*?class=\"change([^\"]*)\"", page, re.S)
        assert users is not None
        assert users.group(1).strip() == "", users.group(0)
        spent = re.search(r"Total Spent.*?class=\"change([^\"]*)\"", page, re.S)
        assert spent is not None
        assert "change-down" in spent.group(1)


def test_no_usage_is_said_in_words_in_every_format(sqlite_engine: Engine) -> None:
    store.set_org(sqlite_engine, "quiet", name="Quiet Co", timezone="UTC")
    report = aggregate.build(sqlite_engine, "quiet", WEEK, now=NOW)
    assert report.is_empty
    body = email_body.render(report, job="weekly")
    html = render.render(report, "html").decode()
    with pdfplumber.open(io.BytesIO(render.render(report, "pdf"))) as pdf:
        words = " ".join(w["text"] for page in pdf.pages for w in page.extract_words())
    for text in (body.text, body.html, html, words):
        assert "No usage in this period" in text
        assert "$0.00" not in text
    assert body.images == ()  # no flat chart
    assert "<svg" not in html
    book = load_workbook(io.BytesIO(render.render(report, "xlsx")))
    notes = [r[1] for r in book["Summary"].iter_rows(values_only=True) if r and r[0] == "Note"]
    assert "No usage in this period." in notes


def test_a_report_says_how_far_its_source_was_synced(sqlite_engine: Engine) -> None:
    from reporter.report import freshness
    from reporter.store.sources import watermark

    report = northwind(sqlite_engine)
    synced = datetime(2026, 11, 28, 19, tzinfo=UTC)  # 14:00 in New York
    watermark.advance(sqlite_engine, "gateway", (synced, "req-1"), NOW)
    freshness.attach(sqlite_engine, report, ["gateway"])
    note = "Usage synced up to Nov 28, 2026 14:00 New York time"
    assert report.sync_note is not None
    assert report.sync_note.startswith(note)
    body = email_body.render(report, job="weekly")
    with pdfplumber.open(io.BytesIO(render.render(report, "pdf"))) as pdf:
        words = " ".join(w["text"] for page in pdf.pages for w in page.extract_words())
    for text in (body.text, body.html, render.render(report, "html").decode(), words):
        assert note in " ".join(text.split())
    # a source synced past the period's end: nothing to say
    watermark.advance(sqlite_engine, "gateway", (datetime(2026, 12, 1, tzinfo=UTC), "r"), NOW)
    fresh = freshness.attach(sqlite_engine, northwind_again(sqlite_engine), ["gateway"])
    assert fresh.sync_note is None


def northwind_again(engine: Engine) -> Report:
    return aggregate.build(engine, "northwind", WEEK, now=NOW)
