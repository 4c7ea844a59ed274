"""The PDF as a reader sees it: where its words land on the page (pdfplumber), from a
nano-dollar to a hundred million dollars, and how its tables break across pages."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pdfplumber
import pytest
from sqlalchemy import Engine

from reporter import money
from reporter.periods import Period
from reporter.render import Options, pdf_report, rollup, svg_chart
from reporter.report import aggregate
from reporter.report.model import Report
from reporter.store import demo
from reporter.store import orgs as store
from reporter.store.ingest import ingest_rows
from tests.helpers import load, row

FIRST = date(2026, 11, 16)
#: the longest names the layout has to live with beside the amounts
PEOPLE = [("carol.christensen-oyelaran@example-enterprises.com", "Carol Christensen-Oyelaran"),
          ("bob@acme.com", "Bob Baker"), ("alice@acme.com", None)]
MODELS = ["anthropic/claude-sonnet-4-5-20250929", "openai/gpt-5", "x-ai/grok-code-fast-1"]


def team_report(engine: Engine, total: str, *, requests: int = 7,
                tokens: int = 1_234_567) -> Report:
    """A week of usage by three members on three models whose cost adds up to ``total``,
    after a week of half that (so every headline figure carries its change)."""
    store.set_org(engine, "acme", name="Acme Corp", timezone="America/New_York")
    nanos = int(Decimal(total).scaleb(9))
    share, rest = divmod(nanos, requests)
    rows = []
    for index in range(requests):
        cost = share + (rest if index == 0 else 0)
        email, _ = PEOPLE[index % len(PEOPLE)]
        when = datetime(2026, 11, 16, 15, tzinfo=UTC) + timedelta(days=index % 7, minutes=index)
        rows.append(row(f"r{index}", when.isoformat(), email=email,
                        model=MODELS[index % len(MODELS)], project=f"project-{index % 4}",
                        cost=money.format_usd(cost), input_tokens=tokens,
                        output_tokens=tokens // 3))
        rows.append(row(f"p{index}", (when - timedelta(days=7)).isoformat(), email=email,
                        model=MODELS[index % len(MODELS)], cost=money.format_usd(cost // 2),
                        input_tokens=tokens // 2, output_tokens=tokens // 7))
    assert load(engine, rows).inserted == 2 * requests
    for email, name in PEOPLE:
        if name:
            store.set_member(engine, "acme", email, name=name)
    period = Period("previous-week", FIRST, FIRST + timedelta(days=6), "America/New_York")
    return aggregate.build(engine, "acme", period, now=datetime(2026, 11, 23, 12, tzinfo=UTC))


@dataclass(frozen=True)
class Box:
    """A rectangle on a page, in points from the top left."""

    x0: float
    top: float
    x1: float
    bottom: float
    text: str = ""

    def overlaps(self, other: Box, slack: float = 0.3) -> bool:
        return (self.x0 + slack < other.x1 and other.x0 + slack < self.x1
                and self.top + slack < other.bottom and other.top + slack < self.bottom)

    def inside(self, other: Box, slack: float = 0.5) -> bool:
        return (other.x0 - slack <= self.x0 and self.x1 <= other.x1 + slack
                and other.top - slack <= self.top and self.bottom <= other.bottom + slack)


def words(page: Any) -> list[Box]:
    """The page's words in the order they are drawn: a word ends where the text jumps back or
    leaves a gap (1 pt), so two cells drawn on top of each other stay two words."""
    return [Box(w["x0"], w["top"], w["x1"], w["bottom"], w["text"])
            for w in page.extract_words(x_tolerance=1, use_text_flow=True)]


def crowded(page: Any) -> list[str]:
    """Places where one character is drawn over the one before it by more than kerning does
    (a fifth of the font size): the start of the next cell's text inside this one's."""
    out = []
    chars = [c for c in page.chars if c["text"].strip()]
    for prev, curr in zip(chars, chars[1:], strict=False):
        same_line = abs(prev["top"] - curr["top"]) < 1
        if same_line and prev["x0"] < curr["x0"] < prev["x1"] - 0.2 * curr["size"]:
            out.append(f"{prev['text']}{curr['text']} at {curr['x0']:.0f},{curr['top']:.0f}")
    return out


def overlapping(boxes: list[Box]) -> list[tuple[str, str]]:
    """Pairs of words drawn on top of each other."""
    out = []
    ordered = sorted(boxes, key=lambda b: b.x0)
    for index, box in enumerate(ordered):
        for other in ordered[index + 1:]:
            if other.x0 >= box.x1:
                break
            if box.overlaps(other):
                out.append((box.text, other.text))
    return out


def pages(data: bytes) -> Iterator[Any]:
    with pdfplumber.open(io.BytesIO(data)) as pdf:
        yield from pdf.pages


def card_region(page: Any) -> tuple[list[Box], list[Box]]:
    """The words between the "Summary" heading and the next heading, and the cards' boxes."""
    found = words(page)
    summary = next(b for b in found if b.text == "Summary")
    after = min(b.top for b in found if b.text == "Daily" and b.top > summary.bottom)
    # cards are the wide curves (Chromium draws list bullets as small curves too)
    cards = [Box(c["x0"], c["top"], c["x1"], c["bottom"]) for c in page.curves
             if summary.bottom < c["top"] < after and c["x1"] - c["x0"] > 20]
    end = max((c.bottom for c in cards), default=after)
    inside = [b for b in found if summary.bottom < b.top < end]
    return inside, cards


#: from one nano-dollar through real weekly bills to the most the layout is built for
AMOUNTS = ["0.000000001", "155.392343321", "12357.458018123", "99999999.123456789"]


@pytest.mark.parametrize("total", AMOUNTS)
def test_cards_and_tables_never_print_on_top_of_each_other(sqlite_engine: Engine, total: str,
                                                           pdf_options: Options) -> None:
    requests = 101 if Decimal(total) > 1_000_000 else 7  # one request costs under $1,000,000
    report = team_report(sqlite_engine, total, requests=requests,
                         tokens=987_654_321 if requests > 7 else 1_234_567)
    data = pdf_report.render(report, pdf_options)
    for number, page in enumerate(pages(data), start=1):
        assert overlapping(words(page)) == [], f"page {number}"
        assert crowded(page) == [], f"page {number}"
        if number == 1:
            inside, cards = card_region(page)
            assert len(cards) >= 5
            assert {"Total", "Spent", "Active", "Users"} <= {b.text for b in inside}
            for box in inside:  # every label and value stays inside its card's border
                assert any(box.inside(card) for card in cards), (box.text, total)
            # the chart's axis shows each round tick whole, "$" and all
            peak = max(point.cost_nanos for point in report.daily)
            shown = {b.text for b in words(page)}
            assert set(svg_chart.tick_labels(svg_chart.ticks(peak))) <= shown, total


def synthetic_report(engine: Engine, *, days: int, members: int, events: int) -> Report:
    store.set_org(engine, "bench", name="Bench Org", timezone="America/New_York")
    first = date(2026, 1, 5)
    rows = demo.synthetic_events(events, first, days, org="bench", members=members, seed=3)
    ingest_rows(engine, enumerate(rows, start=1), "synthetic")
    period = Period("custom", first, first + timedelta(days=days - 1), "America/New_York")
    return aggregate.build(engine, "bench", period, now=datetime(2026, 2, 1, tzinfo=UTC))


def body_lines(page: Any) -> list[str]:
    """The page's lines of text between its running header and its footer."""
    return [line["text"] for line in page.extract_text_lines()
            if line["top"] > 50 and line["bottom"] < page.height - 45]


TABLE_HEADER = re.compile(r"^(Date|Dates|Week|Project|Email)\b.*\bCost\b")


#: sizes whose pages opened with a Total row (5, 40) or in the middle of a day's members
@pytest.mark.parametrize(("members", "events"), [(5, 40), (3, 40), (12, 300)])
def test_pages_keep_groups_and_totals_with_their_rows(sqlite_engine: Engine, members: int,
                                                      events: int, pdf_options: Options) -> None:
    report = synthetic_report(sqlite_engine, days=7, members=members, events=events)
    data = pdf_report.render(report, pdf_options)
    for number, page in enumerate(pages(data), start=1):
        lines = [line for line in body_lines(page) if not TABLE_HEADER.match(line)]
        if number == 1 or not lines:
            continue
        first = lines[0]
        assert not first.startswith("Total"), f"page {number} opens with a Total row"
        # a member's row (an email, or "N other members") belongs with its day above it
        assert "@" not in first.split(" ")[0], f"page {number} opens mid-group: {first}"
        assert not re.match(r"\d+ other members", first), f"page {number}: {first}"


def test_page_one_names_organization_period_and_timezone_once(sqlite_engine: Engine,
                                                              pdf_options: Options) -> None:
    report = synthetic_report(sqlite_engine, days=7, members=5, events=40)
    data = pdf_report.render(report, pdf_options)
    with pdfplumber.open(io.BytesIO(data)) as pdf:  # compared without spaces: titles wrap
        texts = ["".join(page.extract_text().split()) for page in pdf.pages]
    title = "".join(report.title.split())
    assert len(texts) >= 2
    first = texts[0]
    assert first.count("BenchOrg") == 1, first[:400]
    assert first.count(title) == 1
    assert first.count("America/New_York") <= 1
    for number, text in enumerate(texts[1:], start=2):  # later pages: the title in the header
        assert text.startswith(title), number
        assert f"Page{number}of{len(texts)}" in text
    view = rollup.build(report, pdf_report.LIMITS)  # sections named for what their rows hold
    assert (view.day_title, view.model_title) == ("By Day", "By Model & Day")
    assert all(title in "".join(texts) for title in ("ByDay", "ByModel&Day"))


@pytest.mark.parametrize(("bucket", "titles"), [
    ("day", ("By Day", "By Model & Day")), ("week", ("By Week", "By Model & Week")),
    ("month", ("By Month", "By Model & Month")), ("period", ("Whole Period", "By Model"))])
def test_sections_are_named_for_what_their_rows_hold(bucket: str,
                                                     titles: tuple[str, str]) -> None:
    assert (rollup.section_title("By Day", bucket),
            rollup.section_title("By Model & Day", bucket)) == titles
