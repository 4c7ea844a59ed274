"""The report email as a phone and a desktop show it: headless Chromium from 320 to 1280 px
wide, a realistic big organization's body under Gmail's clipping size, and the headers that
mark it as sent by a program."""

from __future__ import annotations

import base64
import random
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from reporter.deliver import email
from reporter.periods import Period
from reporter.report import aggregate
from reporter.store import db
from reporter.store import orgs as store
from tests.delivery_support import report_email
from tests.helpers import load, row

FIRST = date(2026, 11, 16)
NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)
MODELS = ["anthropic/claude-sonnet-4-5-20250929", "anthropic/claude-opus-4-1-20250805",
          "openai/gpt-5", "openai/gpt-5-mini", "openai/gpt-4.1", "x-ai/grok-code-fast-1",
          "mistralai/codestral-2508", "google/gemini-2.5-pro", "deepseek/deepseek-chat-v3.1",
          "qwen/qwen3-coder-480b-a35b-instruct"]
WIDTHS = [320, 390, 600, 1280]


def big_org(engine: Engine) -> None:
    """50 members (one with a very long address and name) on 10 models over two weeks, the
    week reported spending $12,357.458018123."""
    store.set_org(engine, "globex", name="Globex Intercontinental Holdings GmbH & Co. KG",
                  timezone="Europe/Berlin")
    rng = random.Random(9)
    people = [f"member{n:02d}@globex.example" for n in range(49)]
    people.append("maximiliane.oberhuber-schwarzenegger.engineering@globex-intercontinental"
                  ".example")
    rows = []
    for number in range(3000):
        day = FIRST - timedelta(days=7) + timedelta(days=number % 14)
        when = datetime(day.year, day.month, day.day, 9, tzinfo=UTC) + timedelta(
            minutes=rng.randrange(600))
        rows.append(row(f"g{number}", when.isoformat(), org="globex",
                        email=people[number % len(people)], model=rng.choice(MODELS),
                        project=f"project-{number % 12}", cost=f"{rng.random() * 8:.9f}",
                        input_tokens=rng.randrange(200_000), output_tokens=rng.randrange(9_000)))
    load(engine, rows)
    for index, address in enumerate(people):
        store.set_member(engine, "globex", address,
                         name=f"Person Number {index} Von Und Zu Langem Namen")


@pytest.fixture(scope="module")
def message(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> EmailMessage:
    """The weekly email of the big organization (no attachments: the body is the subject)."""
    import shutil

    folder = tmp_path_factory.mktemp("email-layout")
    shutil.copy(sqlite_template, folder / "reporter.db")
    engine = db.open_engine(f"sqlite:///{folder / 'reporter.db'}")
    try:
        big_org(engine)
        period = Period("previous-week", FIRST, FIRST + timedelta(days=6), "Europe/Berlin")
        report = aggregate.build(engine, "globex", period, now=NOW)
    finally:
        engine.dispose()
    return report_email(report, job="weekly-admin", subject="{{ organization.name }} AI usage",
                       sender="Usage Reports <reports@example.com>",
                       recipients=["finance@globex.example"], attachments=[],
                       max_attachment_bytes=10_000_000, now=NOW)


def html_with_images(message: EmailMessage) -> str:
    """The HTML body with its cid: images inlined as data: URLs, as a mail client shows it."""
    body = message.get_body(("html",))
    assert body is not None
    html: str = body.get_content()
    for part in message.walk():
        if part.get_content_type() == "image/png":
            cid = part["Content-ID"].strip("<>")
            data = base64.b64encode(part.get_content()).decode()
            html = html.replace(f"cid:{cid}", f"data:image/png;base64,{data}")
    return html


def test_headers_say_a_program_sent_it(message: EmailMessage) -> None:
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["X-Auto-Response-Suppress"] == "All"
    assert message["List-Id"] == "<weekly-admin.globex.reports.example.com>"
    assert email.list_id("Weekly Admin!", "acme", "Example.COM") == (
        "<weekly-admin.acme.reports.example.com>")


def test_html_body_stays_under_gmails_clipping_size(message: EmailMessage) -> None:
    body = message.get_body(("html",))
    assert body is not None
    html = body.get_content()
    assert len(html.encode()) < email.HTML_BUDGET
    assert "<style" not in html.lower()  # inlined: clients that drop <style> see it all
    assert "@media" not in html  # the layout needs no media queries
    assert "Person Number" in html  # the top members, by name
    assert any(model in html for model in MODELS)  # the top models


@pytest.mark.browser
@pytest.mark.parametrize("width", WIDTHS)
def test_email_never_scrolls_sideways(message: EmailMessage, browser: Any, artifacts: Path,
                                      width: int) -> None:
    page = browser.new_page(viewport={"width": width, "height": 900})
    try:
        page.set_content(html_with_images(message))
        scroll = page.evaluate("document.scrollingElement.scrollWidth")
        assert scroll <= width, f"{scroll} px wide at {width} px"
        boxes = page.evaluate("""() => [...document.querySelectorAll(
            '.metric, table, img, h1, p, li')].map(e => {
                const r = e.getBoundingClientRect();
                return [e.className || e.tagName, r.left, r.right, r.top, r.bottom]; })""")
        for name, left, right, _top, _bottom in boxes:
            assert left >= 0, (name, left)
            assert right <= width + 0.5, (name, right, width)
        cards = [b for b in boxes if b[0] == "metric"]
        assert len(cards) == 5
        for index, one in enumerate(cards):  # cards never sit on top of each other
            for other in cards[index + 1:]:
                apart = (one[2] <= other[1] or other[2] <= one[1]
                         or one[4] <= other[3] or other[4] <= one[3])
                assert apart, (one, other)
        # every card's figure fits inside its card
        spill = page.evaluate("""() => [...document.querySelectorAll('.metric')].filter(
            c => c.scrollWidth > c.clientWidth + 1).length""")
        assert spill == 0
        image = page.evaluate("""() => { const i = document.querySelector('img.chart');
            return [i.naturalWidth, i.getBoundingClientRect().width]; }""")
        assert image[0] == 1200
        assert image[1] <= min(width, 600)
        page.screenshot(path=str(artifacts / f"email-big-{width}.png"), full_page=True)
    finally:
        page.close()
