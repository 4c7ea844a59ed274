"""Comparison with the previous period: which period that is, its numbers in the JSON against
an independent sum over the events, and what the email, the HTML and the PDF say about it."""

from __future__ import annotations

import io
import json
import random
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from html.parser import HTMLParser
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from openpyxl import load_workbook
from pypdf import PdfReader
from sqlalchemy import Engine

from reporter import render
from reporter.periods import Period
from reporter.render import json_report
from reporter.report import aggregate
from reporter.report.compare import previous_period
from reporter.report.model import Report
from reporter.store import orgs as store
from tests.delivery_support import report_email
from tests.helpers import load, row

ZONE = "America/New_York"
D = date.fromisoformat


# -- which period is the previous one ---------------------------------------------------------

@pytest.mark.parametrize(("name", "first", "last", "before_first", "before_last"), [
    ("past-week", "2026-11-16", "2026-11-22", "2026-11-09", "2026-11-15"),
    ("past-month", "2026-10-24", "2026-11-22", "2026-09-24", "2026-10-23"),
    ("past-month", "2026-11-01", "2026-11-30", "2026-10-02", "2026-10-31"),  # N days, always
    ("past-year", "2025-11-23", "2026-11-22", "2024-11-23", "2025-11-22"),
    ("custom", "2026-11-10", "2026-11-12", "2026-11-07", "2026-11-09"),
    ("custom", "2026-01-01", "2026-01-07", "2025-12-25", "2025-12-31"),
    ("previous-week", "2026-11-16", "2026-11-22", "2026-11-09", "2026-11-15"),
    ("previous-month", "2026-03-01", "2026-03-31", "2026-02-01", "2026-02-28"),
    ("previous-month", "2024-03-01", "2024-03-31", "2024-02-01", "2024-02-29"),
    ("previous-month", "2026-01-01", "2026-01-31", "2025-12-01", "2025-12-31"),
    ("custom", "2026-10-01", "2026-10-31", "2026-09-01", "2026-09-30"),  # a whole month
    ("custom", "2026-02-01", "2026-02-28", "2026-01-01", "2026-01-31"),
    ("month-to-date", "2026-03-01", "2026-03-15", "2026-02-01", "2026-02-15"),
    ("month-to-date", "2026-03-01", "2026-03-31", "2026-02-01", "2026-02-28"),
    ("month-to-date", "2026-01-01", "2026-01-31", "2025-12-01", "2025-12-31"),
    # a month-to-date run on the 1st that covers a whole month: the whole month before,
    # not one day short of it; the same for a whole month given as --from/--to
    ("month-to-date", "2026-04-01", "2026-04-30", "2026-03-01", "2026-03-31"),
    ("month-to-date", "2024-02-01", "2024-02-29", "2024-01-01", "2024-01-31"),
    ("custom", "2026-04-01", "2026-04-30", "2026-03-01", "2026-03-31"),
])
def test_the_previous_period(name: str, first: str, last: str, before_first: str,
                             before_last: str) -> None:
    period = Period(name, D(first), D(last), ZONE, partial=name == "month-to-date")
    before = previous_period(period)
    assert before is not None
    assert (before.first, before.last) == (D(before_first), D(before_last))
    assert before.timezone == ZONE
    assert not before.partial


def test_all_has_no_previous_period() -> None:
    assert previous_period(Period("all", D("2024-01-01"), D("2026-11-22"), ZONE)) is None


@given(st.dates(min_value=date(1901, 1, 1), max_value=date(9998, 1, 1)),
       st.integers(min_value=1, max_value=400))
def test_n_days_are_the_n_days_before(first: date, days: int) -> None:
    period = Period("custom", first, first + timedelta(days=days - 1), "UTC")
    before = previous_period(period)
    assert before is not None
    if before.first.day == 1 and period.first.day == 1 and before.days != days:
        return  # a whole calendar month: the month before
    assert before.last == period.first - timedelta(days=1)
    assert before.days == days


# -- the JSON against an independent sum over the events -------------------------------------

CURRENT = Period("previous-week", D("2026-11-02"), D("2026-11-08"), ZONE)  # DST ends Nov 1
BEFORE = Period("previous-week", D("2026-10-26"), D("2026-11-01"), ZONE)
MODELS = ["anthropic/claude-sonnet-4", "openai/gpt-5", "google/gemini-2.5-pro"]
#: member -> the periods they used it in (dave and erin stopped, carol is new)
ACTIVE = {"alice@acme.com": (BEFORE, CURRENT), "bob@acme.com": (BEFORE, CURRENT),
          "carol@acme.com": (CURRENT,), "dave@acme.com": (BEFORE,), "erin@acme.com": (BEFORE,)}


def _instant(period: Period, rng: random.Random) -> datetime:
    span = int((period.end - period.start).total_seconds() * 1_000_000)
    return period.start + timedelta(microseconds=rng.randrange(span))


def events() -> list[dict[str, Any]]:
    """Random requests in both weeks, and some a microsecond either side of their edges."""
    rng = random.Random(9)
    out = []
    for email_, periods in ACTIVE.items():
        for period in periods:
            for _ in range(rng.randint(3, 12)):
                out.append((_instant(period, rng), email_))
    edges = [BEFORE.start, BEFORE.start - timedelta(microseconds=1), CURRENT.start,
             CURRENT.start - timedelta(microseconds=1), CURRENT.end,
             CURRENT.end - timedelta(microseconds=1)]
    out += [(moment, "alice@acme.com") for moment in edges]
    rows = []
    for n, (moment, who) in enumerate(out):
        nanos = rng.randint(1, 5_000_000_000)
        rows.append(row(f"e{n}", moment.astimezone(UTC).isoformat(), email=who,
                        model=rng.choice(MODELS), project=rng.choice(["", "web", "api"]),
                        input_tokens=rng.randint(0, 9000), output_tokens=rng.randint(0, 900),
                        cost=f"{nanos // 10**9}.{nanos % 10**9:09d}"))
    return rows


@dataclass
class Sums:
    cost: Decimal = Decimal(0)
    requests: int = 0
    input: int = 0
    output: int = 0
    members: set[str] = field(default_factory=set)


def expected(rows: list[dict[str, Any]], period: Period,
             member: str | None = None) -> dict[str, dict[Any, Sums]]:
    """Sums over ``period``'s calendar days in its zone: total, by member, model, project."""
    out: dict[str, dict[Any, Sums]] = {k: defaultdict(Sums) for k in
                                       ("total", "member", "model", "project")}
    for r in rows:
        day = datetime.fromisoformat(r["timestamp"]).astimezone(ZoneInfo(ZONE)).date()
        if not period.first <= day <= period.last or member not in (None, r["user_email"]):
            continue
        for view, key in (("total", None), ("member", r["user_email"]), ("model", r["model"]),
                          ("project", r["project"] or None)):
            sums = out[view][key]
            sums.cost += Decimal(r["cost_usd"])
            sums.requests += 1
            sums.input += int(r["input_tokens"])
            sums.output += int(r["output_tokens"])
            sums.members.add(r["user_email"])
    return out


def build(engine: Engine, period: Period, member: str | None = None) -> dict[str, Any]:
    report = aggregate.build(engine, "acme", period, member=member,
                             now=datetime(2026, 11, 10, 13, tzinfo=UTC))
    data: dict[str, Any] = json.loads(json_report.render(report))
    return data


@pytest.fixture
def seeded(engine: Engine) -> tuple[Engine, list[dict[str, Any]]]:
    store.set_org(engine, "acme", name="Acme Corp", timezone=ZONE)
    rows = events()
    assert load(engine, rows).inserted == len(rows)
    return engine, rows


def test_previous_summary_and_rows_match_the_events(
        seeded: tuple[Engine, list[dict[str, Any]]]) -> None:
    engine, rows = seeded
    data = build(engine, CURRENT)
    then, now = expected(rows, BEFORE), expected(rows, CURRENT)
    total = then["total"][None]
    assert data["previous"]["first_date"] == "2026-10-26"
    assert data["previous"]["last_date"] == "2026-11-01"
    assert data["previous"]["summary"] == {
        "total_cost_usd": data["previous"]["summary"]["total_cost_usd"],
        "total_requests": total.requests, "input_tokens": total.input,
        "output_tokens": total.output, "total_tokens": total.input + total.output,
        "avg_cost_per_request_usd": data["previous"]["summary"]["avg_cost_per_request_usd"],
        "cache_read_tokens": 0, "cache_write_tokens": 0, "active_users": len(total.members)}
    assert Decimal(data["previous"]["summary"]["total_cost_usd"]) == total.cost
    assert Decimal(data["previous"]["summary"]["avg_cost_per_request_usd"]) == (
        total.cost / total.requests).quantize(Decimal("1e-9"))
    assert set(data["previous"]["summary"]) == set(data["summary"])
    for view, key in (("by_member", "email"), ("by_model", "model"), ("by_project", "project")):
        assert data[view], view
        sums = then[key if key != "email" else "member"]
        for item in data[view]:
            earlier = sums.get(item[key], Sums())
            assert Decimal(item["previous_cost_usd"]) == earlier.cost, (view, item[key])
            assert item["previous_requests"] == earlier.requests, (view, item[key])
            if not earlier.requests:
                assert item["previous_cost_usd"] == "0.000000000"
    # carol is new; dave and erin stopped and have no row of this week
    carol = next(m for m in data["by_member"] if m["email"] == "carol@acme.com")
    assert (carol["previous_cost_usd"], carol["previous_requests"]) == ("0.000000000", 0)
    assert {m["email"] for m in data["by_member"]} == set(now["member"])


def test_what_changed_lists_the_largest_moves_and_who_stopped(
        seeded: tuple[Engine, list[dict[str, Any]]]) -> None:
    engine, rows = seeded
    data = build(engine, CURRENT)
    then, now = expected(rows, BEFORE), expected(rows, CURRENT)
    changed = data["what_changed"]
    for view, key, json_key in (("members", "member", "email"), ("models", "model", "model"),
                                ("projects", "project", "project")):
        deltas = {k: now[key].get(k, Sums()).cost - then[key].get(k, Sums()).cost
                  for k in {*now[key], *then[key]}}
        ups = sorted((k for k, d in deltas.items() if d > 0), key=lambda k: -deltas[k])[:3]
        downs = sorted((k for k, d in deltas.items() if d < 0), key=lambda k: deltas[k])[:3]
        assert [c[json_key] for c in changed[view]["increases"]] == ups, view
        assert [c[json_key] for c in changed[view]["decreases"]] == downs, view
        for c in changed[view]["increases"] + changed[view]["decreases"]:
            assert Decimal(c["change_usd"]) == deltas[c[json_key]]
            before = then[key].get(c[json_key], Sums()).cost
            if before:
                assert Decimal(c["change_percent"]) == (
                    deltas[c[json_key]] * 100 / before).quantize(Decimal("0.1"))
            else:
                assert c["change_percent"] is None  # new: never a division by zero
    assert [m["email"] for m in changed["stopped_members"]] == sorted(
        ["dave@acme.com", "erin@acme.com"],
        key=lambda e: (-then["member"][e].cost, e))
    for m in changed["stopped_members"]:
        assert Decimal(m["previous_cost_usd"]) == then["member"][m["email"]].cost
        assert (m["cost_usd"], m["requests"]) == ("0.000000000", 0)


def test_a_personal_report_compares_the_member_with_themself(
        seeded: tuple[Engine, list[dict[str, Any]]]) -> None:
    engine, rows = seeded
    data = build(engine, CURRENT, member="bob@acme.com")
    then = expected(rows, BEFORE, member="bob@acme.com")
    assert Decimal(data["previous"]["summary"]["total_cost_usd"]) == then["total"][None].cost
    assert data["previous"]["summary"]["active_users"] == 1
    [bob] = data["by_member"]
    assert Decimal(bob["previous_cost_usd"]) == then["member"]["bob@acme.com"].cost
    for item in data["by_model"]:
        assert Decimal(item["previous_cost_usd"]) == then["model"].get(item["model"],
                                                                       Sums()).cost
    # nobody else's name or numbers: no member lists, nobody "stopped"
    assert data["what_changed"]["members"] == {"increases": [], "decreases": []}
    assert data["what_changed"]["stopped_members"] == []
    text = json.dumps(data)
    for colleague in ("alice@", "carol@", "dave@", "erin@"):
        assert colleague not in text


def test_all_has_no_comparison(seeded: tuple[Engine, list[dict[str, Any]]]) -> None:
    engine, _ = seeded
    data = build(engine, Period("all", D("2026-10-01"), D("2026-11-08"), ZONE))
    assert data["previous"] is None
    assert data["what_changed"] is None
    assert all(r["previous_cost_usd"] is None for r in data["by_member"])


# -- what the email, the HTML and the PDF say ------------------------------------------------

WEEK = Period("previous-week", D("2026-11-16"), D("2026-11-22"), ZONE)
SONNET, GPT = "anthropic/claude-sonnet-4", "openai/gpt-5"


def weeks(engine: Engine) -> None:
    """Nov 9 – 15: $863.33; Nov 16 – 22: $1,234.56 (+43%), Carol +$310.20 on Sonnet."""
    store.set_org(engine, "acme", name="Acme Corp", timezone=ZONE)
    load(engine, [
        row("c1", "2026-11-10T15:00:00Z", email="carol@acme.com", model=SONNET, cost="100"),
        row("b1", "2026-11-12T15:00:00Z", email="bob@acme.com", model=GPT, cost="763.330000000"),
        row("c2", "2026-11-17T15:00:00Z", email="carol@acme.com", model=SONNET, cost="410.2"),
        row("b2", "2026-11-18T15:00:00Z", email="bob@acme.com", model=GPT, cost="800"),
        row("b3", "2026-11-19T15:00:00Z", email="bob@acme.com", model=GPT, cost="24.360000000"),
    ])
    store.set_member(engine, "acme", "carol@acme.com", name="Carol Chen")


def week_report(engine: Engine, member: str | None = None) -> Report:
    return aggregate.build(engine, "acme", WEEK, member=member,
                           now=datetime(2026, 11, 23, 13, tzinfo=UTC))


@dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    children: list[Node | str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return " ".join("".join(c if isinstance(c, str) else f" {c.text} "
                                for c in self.children).split())

    @property
    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    def walk(self) -> Iterator[Node]:
        yield self
        for child in self.children:
            if isinstance(child, Node):
                yield from child.walk()

    def find(self, tag: str | None = None, cls: str | None = None,
             id_: str | None = None) -> list[Node]:
        return [n for n in self.walk() if (tag is None or n.tag == tag)
                and (cls is None or cls in n.classes) and (id_ is None or n.attrs.get("id") == id_)]


class Dom(HTMLParser):
    """The page as a reader's browser builds it (elements and their text, no styles)."""

    VOID = {"meta", "br", "img", "col", "hr", "input", "link"}

    def __init__(self, html: str) -> None:
        super().__init__()
        self.root = Node("#root", {})
        self.stack = [self.root]
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in self.VOID:
            self.stack.append(node)

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                return

    def handle_data(self, data: str) -> None:
        if self.stack[-1].tag not in ("style", "script"):
            self.stack[-1].children.append(data)


def cards(dom: Dom) -> dict[str, Node]:
    return {d.find("dt")[0].text: d.find("dd")[0] for d in dom.root.find("dl", cls="metrics")[0]
            .children if isinstance(d, Node)}


def test_the_email_says_what_changed_first(sqlite_engine: Engine) -> None:
    weeks(sqlite_engine)
    message = report_email(week_report(sqlite_engine), job="weekly",
                          subject="{{ organization.name }} AI usage, {{ period.label }}",
                          sender="reports@acme.com", recipients=["cfo@acme.com"],
                          attachments=[], max_attachment_bytes=10**6,
                          now=datetime(2026, 11, 23, 13, tzinfo=UTC))
    assert message["Subject"] == "Acme Corp AI usage, Nov 16 – 22, 2026 (New York time)"
    first = ("Spend was $1,234.56, up 43% on Nov 9 – 15; Carol Chen +$310.20 on "
             "anthropic/claude-sonnet-4.")
    text = message.get_body(("plain",)).get_content()
    assert text.splitlines()[0] == first
    assert "Total Spent:          $1,234.56, +$371.23 (+43%)" in text
    assert "Generated Nov 23, 2026 08:00 New York time" in text
    assert "UTC" not in text
    dom = Dom(message.get_body(("html",)).get_content())
    [lede] = dom.root.find("p", cls="lede")
    assert lede.text == first
    assert next(n for n in dom.root.find("p") if n.text) is lede  # what a preview shows
    changes = [n for n in dom.root.find(cls="change") if "change-up" in n.classes]
    assert "+$371.23 (+43%)" in [n.text for n in changes]
    section = dom.root.find(cls="what-changed")[0].text
    assert "Carol Chen +$310.20 (+310%) on anthropic/claude-sonnet-4" in section


def test_the_page_shows_each_change_beside_its_figure(sqlite_engine: Engine) -> None:
    weeks(sqlite_engine)
    dom = Dom(render.render(week_report(sqlite_engine), "html").decode())
    assert dom.root.find("title")[0].text == "Acme Corp AI usage, Nov 16 – 22, 2026 (New York time)"
    shown = cards(dom)
    spent = shown["Total Spent"]
    assert spent.find("data")[0].text == "$1,234.56"
    assert spent.find("data")[0].attrs["value"] == "1234.560000000"
    [change] = spent.find(cls="change")
    assert (change.text, "change-up" in change.classes) == ("+$371.23 (+43%)", True)
    assert shown["Total Requests"].find(cls="change")[0].text == "+1 (+50%)"
    assert shown["Active Users"].find(cls="change")[0].text == "no change"
    section = dom.root.find(id_="what-changed")[0]
    assert "what-changed" in section.classes
    items = [li.text for li in section.find("li")]
    assert items == ["Carol Chen +$310.20 (+310%) on anthropic/claude-sonnet-4",
                     "bob@acme.com +$61.03 (+8%) on openai/gpt-5",
                     "anthropic/claude-sonnet-4 +$310.20 (+310%)",
                     "openai/gpt-5 +$61.03 (+8%)",
                     "(no project) +$371.23 (+43%)"]
    generated = dom.root.find(cls="generated")[0].text
    assert generated == "generated Nov 23, 2026 08:00 New York time"


def test_the_pdf_speaks_the_organizations_time(sqlite_engine: Engine) -> None:
    weeks(sqlite_engine)
    pdf = PdfReader(io.BytesIO(render.render(week_report(sqlite_engine), "pdf")))
    text = " ".join(" ".join(p.extract_text() for p in pdf.pages).split())
    assert "Nov 23, 2026 08:00 New York time" in text
    assert " EST" not in text
    assert "What changed" in text
    assert "+$371.23 (+43%)" in text


def test_the_spreadsheet_says_when_it_was_made_in_the_organizations_time(
        sqlite_engine: Engine) -> None:
    weeks(sqlite_engine)
    book = load_workbook(io.BytesIO(render.render(week_report(sqlite_engine), "xlsx")))
    cells = {r[0]: r[1] for r in book["Summary"].iter_rows(values_only=True) if r[0]}
    assert cells["Generated (New York time)"] == datetime(2026, 11, 23, 8, 0)


def test_a_personal_report_has_no_team_noise(sqlite_engine: Engine) -> None:
    weeks(sqlite_engine)
    report = week_report(sqlite_engine, member="bob@acme.com")
    dom = Dom(render.render(report, "html").decode())
    assert "Active Users" not in cards(dom)
    headers = {th.text for th in dom.root.find("th")}
    assert "Users" not in headers
    assert not dom.root.find("tr", cls="member")  # no one-row expansion under each day
    assert not dom.root.find("details")
    section = dom.root.find(id_="what-changed")[0]
    assert [h.text for h in section.find("h3")] == ["Models", "Projects"]
    assert [li.text for li in section.find("li")] == ["openai/gpt-5 +$61.03 (+8%)",
                                                      "(no project) +$61.03 (+8%)"]
    message = report_email(report, job="mine", subject="{{ period.label }}",
                          sender="reports@acme.com", recipients=["bob@acme.com"],
                          attachments=[], max_attachment_bytes=10**6,
                          now=datetime(2026, 11, 23, 13, tzinfo=UTC))
    text = message.get_body(("plain",)).get_content()
    assert text.splitlines()[0] == (
        "Your spend was $824.36, up 8% on Nov 9 – 15; openai/gpt-5 +$61.03.")
    assert "Active Users" not in text
    assert "Carol" not in text
    assert "carol@" not in text
    html = Dom(message.get_body(("html",)).get_content())
    assert "Active Users" not in html.root.text
    assert "Carol" not in html.root.text
