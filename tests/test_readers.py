"""Each format read as its readers read it: words and figures that agree, counts that agree
with their nouns, one label for the period, money at one precision per report."""

from __future__ import annotations

import io
import json
import re
from datetime import UTC, date, datetime
from decimal import Decimal
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
