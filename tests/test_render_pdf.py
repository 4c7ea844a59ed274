"""PDF report: real text with the JSON's numbers, metadata, page furniture, bounded length."""

from __future__ import annotations

import io
import re
import socket
import subprocess
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest
from pypdf import PdfReader
from sqlalchemy import Engine

from reporter import money
from reporter.periods import Period
from reporter.render import Options, json_report, pdf_chromium, pdf_report, render, rollup
from reporter.report import aggregate
from reporter.report.model import Report
from reporter.store import demo
from reporter.store import orgs as store
from reporter.store.ingest import ingest_rows
from tests.helpers import HOSTILE_ORG, small_report


def pages_text(data: bytes) -> tuple[PdfReader, list[str]]:
    reader = PdfReader(io.BytesIO(data))
    # without an emoji font on the machine, WeasyPrint draws .notdef for emoji, and pypdf then
    # decodes that font's text as two bytes a character; poppler's pdftotext reads it cleanly
    return reader, [page.extract_text().replace("\x00", "") for page in reader.pages]


def amounts(text: str) -> set[Decimal]:
    return {Decimal(m.replace(",", "")) for m in re.findall(r"\$([\d,]+\.\d+)", text)}


def synthetic_report(engine: Engine, *, days: int, members: int, events: int) -> Report:
    first = date(2026, 1, 1)
    store.set_org(engine, "bench", name="Bench Org", timezone="UTC")
    rows = demo.synthetic_events(events, first, days, org="bench", members=members, seed=3)
    ingest_rows(engine, enumerate(rows, start=1), "synthetic")
    period = Period("custom", first, date.fromordinal(first.toordinal() + days - 1), "UTC")
    return aggregate.build(engine, "bench", period, now=datetime(2027, 6, 1, tzinfo=UTC))


def test_pdf_text_shows_the_numbers_of_the_json(sqlite_engine: Engine,
                                                pdf_options: Options) -> None:
    report = small_report(sqlite_engine)
    reader, pages = pages_text(pdf_report.render(report, pdf_options))
    text = "\n".join(pages)
    data = json_report.to_dict(report)
    shown = amounts(text)
    unit = Decimal(1).scaleb(-report.display_places)
    assert Decimal(data["summary"]["total_cost_usd"]).quantize(unit, ROUND_HALF_UP) in shown
    # the card rounds the average for people; the tables round to the report's places
    assert money.headline_usd(money.parse_usd(data["summary"]["avg_cost_per_request_usd"])) in text
    for day in data["by_day"]:
        assert Decimal(day["cost_usd"]).quantize(unit, ROUND_HALF_UP) in shown
        assert day["date"] in text
        for member in day["members"]:  # breakdowns are expanded on paper
            assert member["email"] in text
    assert "$0.00000001" in text  # 8 places: the smallest amount does not read as $0.00
    assert "$4.75000001" in text
    assert f"{data['summary']['total_tokens']:,}" in text
    assert "(no project)" in text
    flat = re.sub(r"\s+", "", text)  # narrow cells wrap long names
    assert "<script>document.title='pwned'</script>" in text  # escaped in HTML, text in PDF
    assert '=HYPERLINK("http://evil.example","click")' in flat
    assert "<b>model</b>" in flat
    assert reader.metadata is not None
    assert reader.metadata.title == report.title
    assert reader.metadata.author == HOSTILE_ORG
    assert "Summarised for print" not in text  # a small report is shown in full


def test_pdf_pages_carry_header_footer_and_repeated_table_headers(sqlite_engine: Engine,
                                                                  pdf_options: Options) -> None:
    report = synthetic_report(sqlite_engine, days=7, members=14, events=250)
    _, pages = pages_text(render(report, "pdf", pdf_options))
    count = len(pages)
    assert count >= 2
    for number, text in enumerate(pages, start=1):
        assert f"Page {number} of {count}" in text
        # the title names the organization, the period and its timezone: once on page 1,
        # in the running header of every later page
        assert " ".join(text.split()).count(report.title) == 1
    # By Day (seven days with their members) runs onto the next page, its header row with it
    header = re.compile(r"Date\s*Cost\s*Requests\s*Tokens\s*Users")
    spans = [n for n, text in enumerate(pages) if header.search(text)]
    assert len(spans) >= 2
    assert spans[1] == spans[0] + 1


@pytest.mark.slow
def test_pdf_of_a_long_period_is_rolled_up_and_bounded(sqlite_engine: Engine,
                                                       pdf_options: Options) -> None:
    report = synthetic_report(sqlite_engine, days=365, members=8, events=2000)
    data = render(report, "pdf", pdf_options)
    _, pages = pages_text(data)
    text = re.sub(r"\s+", " ", "\n".join(pages))
    assert len(pages) <= 12
    assert "Summarised for print." in text
    assert "By Month sums days into calendar months." in text
    assert "By Day" not in text  # each section is named for what its rows hold
    assert "By Month" in text
    assert "The XLSX report holds every row in full detail." in text
    assert "2026-03-01 to 2026-03-31" in text
    assert "other members" in text
    # rolled-up rows still add up to the exact total
    total = Decimal(json_report.to_dict(report)["summary"]["total_cost_usd"])
    unit = Decimal(1).scaleb(-report.display_places)
    assert total.quantize(unit, ROUND_HALF_UP) in amounts(text)


def test_rolled_up_rows_add_up_to_the_summary(sqlite_engine: Engine) -> None:
    report = synthetic_report(sqlite_engine, days=30, members=12, events=600)
    view = rollup.build(report, pdf_report.LIMITS)
    assert view.day_bucket != "day"
    for lines in (view.by_day, view.by_model_day):
        assert sum(line.cost_nanos for line in lines) == report.summary.cost_nanos
        assert sum(line.requests for line in lines) == report.summary.requests
        for line in lines:
            parts = sum(m.cost_nanos for m in line.members)
            parts += line.others.cost_nanos if line.others else 0
            assert parts == line.cost_nanos
    full = rollup.build(report)
    assert full.notes == []
    assert len(full.by_day) == 30
    assert sum(len(line.members) for line in full.by_day) == sum(
        len(row.members) for row in report.by_day)


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A TCP port on loopback that counts as fetched if anything connects to it."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.setblocking(False)
        yield server


def _connected(server: socket.socket) -> bool:
    try:
        server.accept()[0].close()
    except BlockingIOError:
        return False
    return True


def test_pdf_fetches_nothing(sqlite_engine: Engine, tmp_path: Path, pdf_options: Options,
                             listener: socket.socket, caplog: pytest.LogCaptureFixture) -> None:
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/paper.png"
    (tmp_path / "report-pdf.css").write_text(f"body {{ background: url({url}); }}\n")
    report = small_report(sqlite_engine)
    data = render(report, "pdf", Options(tmp_path, pdf_options.pdf_engine))
    assert data.startswith(b"%PDF")
    assert not _connected(listener)
    if pdf_options.pdf_engine == "weasyprint":  # Chromium: the page's CSP blocks it first
        assert f"disallowed protocol: {url}" in caplog.text


@pytest.mark.browser
def test_chromium_refuses_what_a_page_without_csp_asks_for(
        listener: socket.socket, caplog: pytest.LogCaptureFixture) -> None:
    pytest.importorskip("playwright.sync_api")
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/logo.png"
    # a report before, with a policy that blocks everything: its policy does not carry over
    pdf_chromium.render_html("<html><head><meta http-equiv='Content-Security-Policy' "
                             "content=\"default-src 'none'\"></head><body>x</body></html>")
    data = pdf_chromium.render_html(f"<html><head><title>t</title></head><body>"
                                    f"<img src='{url}'><p>text</p></body></html>")
    assert data.startswith(b"%PDF")
    assert not _connected(listener)
    assert f"asked for {url!r}; refused" in caplog.text


def _page_images(data: bytes, folder: Path, name: str) -> list[bytes]:
    pdf = folder / f"{name}.pdf"
    pdf.write_bytes(data)
    subprocess.run(["pdftoppm", "-r", "60", "-png", str(pdf), str(folder / name)], check=True)
    return [path.read_bytes() for path in sorted(folder.glob(f"{name}-*.png"))]


def test_narrowed_stylesheet_draws_the_same_pages(sqlite_engine: Engine, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The user-agent stylesheet without its universal pseudo-element rules (a sixth of the
    PDF's time) changes no pixel: the same pages as WeasyPrint's own stylesheet. (WeasyPrint
    only: Chromium has its own user-agent stylesheet.)"""
    from weasyprint import HTML

    report = synthetic_report(sqlite_engine, days=7, members=12, events=400)
    assert pdf_report._narrow_ua() is not None
    narrowed = _page_images(pdf_report.render(report), tmp_path, "narrowed")
    monkeypatch.setattr(pdf_report._Page, "_ua_stylesheets", HTML._ua_stylesheets)
    full = _page_images(pdf_report.render(report), tmp_path, "full")
    assert len(narrowed) >= 3
    assert narrowed == full


def test_pages_with_other_list_items_keep_the_whole_stylesheet() -> None:
    assert pdf_report._Page("<p>plain</p>").narrow
    assert not pdf_report._Page("<p style='display: list-item'>item</p>").narrow
    assert not pdf_report._Page("<style>aside { float: footnote }</style>").narrow


def test_a_pdf_renders_without_a_warning(sqlite_engine: Engine,
                                         caplog: pytest.LogCaptureFixture) -> None:
    """The narrowed user-agent stylesheet redefines no counter style the CSS rules keep
    fixed (WeasyPrint warned "Invalid counter style name ' disc '" on every PDF)."""
    report = synthetic_report(sqlite_engine, days=7, members=4, events=60)
    with caplog.at_level("WARNING"):
        pdf_report.render(report)
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == []
