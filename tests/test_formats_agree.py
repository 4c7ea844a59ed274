"""One report model, four formats: HTML, PDF text and XLSX cells show the JSON's numbers."""

from __future__ import annotations

import io
import json
import re
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from html.parser import HTMLParser
from pathlib import Path

from openpyxl import load_workbook
from pypdf import PdfReader
from sqlalchemy import Engine

from reporter import money, render
from reporter.report.model import Report
from tests.helpers import HOSTILE_NAME, HOSTILE_ORG, HOSTILE_PROJECT, small_report


class _Text(HTMLParser):
    """The text a reader of the HTML sees (not what sits in <style>)."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._skip += tag in ("style", "script")

    def handle_endtag(self, tag: str) -> None:
        self._skip -= tag in ("style", "script")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def html_text(data: bytes) -> str:
    parser = _Text()
    parser.feed(data.decode("utf-8"))
    return " ".join(parser.parts)


def amounts(text: str) -> set[Decimal]:
    return {Decimal(m.replace(",", "")) for m in re.findall(r"\$([\d,]+\.\d+)", text)}


def sheet_rows(data: bytes, title: str) -> list[tuple[object, ...]]:
    book = load_workbook(io.BytesIO(data), read_only=True)
    try:
        return [tuple(row) for row in book[title].iter_rows(values_only=True)]
    finally:
        book.close()


def test_every_format_shows_the_same_numbers(sqlite_engine: Engine) -> None:
    report: Report = small_report(sqlite_engine)
    data = json.loads(render.render(report, "json"))
    total = Decimal(data["summary"]["total_cost_usd"])
    days = {d["date"]: Decimal(d["cost_usd"]) for d in data["by_day"]}

    html = html_text(render.render(report, "html"))
    pdf = "\n".join(p.extract_text() for p in
                    PdfReader(io.BytesIO(render.render(report, "pdf"))).pages)
    # people read the tables at one precision for the whole report: the fewest places at
    # which no non-zero amount of the JSON reads as $0.00
    costs = [Decimal(d["cost_usd"]) for d in data["by_day"]]
    costs += [Decimal(m["cost_usd"]) for d in data["by_day"] for m in d["members"]]
    costs += [Decimal(r["cost_usd"]) for key in ("by_model_day", "by_project", "by_member")
              for r in data[key]]
    smallest = min(c for c in costs if c)
    places = next(p for p in range(2, 10)
                  if smallest.quantize(Decimal(1).scaleb(-p), ROUND_HALF_UP))
    assert report.display_places == places

    def shown_at(value: Decimal) -> Decimal:
        return value.quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP)

    for name, text in (("html", html), ("pdf", pdf)):
        shown = amounts(text)
        assert shown_at(total) in shown, name
        # the card rounds the average for people ($1.19); the JSON keeps all nine decimals
        avg = money.parse_usd(data["summary"]["avg_cost_per_request_usd"])
        assert money.headline_usd(avg) in text, name
        assert {shown_at(v) for v in days.values()} <= shown, name
        assert f"rounded to {places} decimal places" in " ".join(text.split()), name
        assert f"{data['summary']['total_requests']:,}" in text, name
        assert f"{data['summary']['total_tokens']:,}" in text, name

    xlsx = render.render(report, "xlsx")
    by_day = sheet_rows(xlsx, "By Day")
    header = by_day[0]
    date_col = header.index("Date")
    cost_col = next(i for i, h in enumerate(header) if str(h).startswith("Cost"))
    cells = {row[date_col].date().isoformat(): Decimal(str(row[cost_col]))
             for row in by_day[1:] if len(row) > cost_col and isinstance(row[date_col], datetime)}
    assert cells == days
    assert sum(cells.values()) == total


def test_hostile_names_are_text_in_every_format(sqlite_engine: Engine) -> None:
    report = small_report(sqlite_engine)
    raw_html = render.render(report, "html").decode()
    assert "<script>document.title" not in raw_html
    assert "<img src=x" not in raw_html
    html = html_text(render.render(report, "html"))
    assert HOSTILE_ORG in html
    assert HOSTILE_NAME in html
    assert HOSTILE_PROJECT in html

    pdf = re.sub(r"\s+", "", "".join(
        p.extract_text() for p in PdfReader(io.BytesIO(render.render(report, "pdf"))).pages))
    assert "<script>document.title='pwned'</script>" in pdf
    assert re.sub(r"\s+", "", HOSTILE_PROJECT) in pdf

    book = load_workbook(io.BytesIO(render.render(report, "xlsx")))
    texts = {cell.value for ws in book.worksheets for row in ws.iter_rows() for cell in row
             if cell.data_type == "s"}
    # the only formulas are the totals rows' own sums of the visible rows
    formulas = [cell.value for ws in book.worksheets for row in ws.iter_rows()
                for cell in row if cell.data_type == "f"]
    assert all(re.fullmatch(r"=SUBTOTAL\(109,[A-Z]+2:[A-Z]+\d+\)", f) for f in formulas)
    assert HOSTILE_PROJECT in texts
    assert any(HOSTILE_NAME in str(t) for t in texts)

    data = json.loads(render.render(report, "json"))
    assert data["organization"]["name"] == HOSTILE_ORG


def test_file_names_are_safe_whatever_the_slug_or_email(sqlite_engine: Engine,
                                                         tmp_path: Path) -> None:
    report = small_report(sqlite_engine)
    report.organization = type(report.organization)("../../etc/pass wd?*", "x", "UTC")
    report.member = "mallory+reports/..\\@acme.com"
    paths = render.write(report, ["json", "html"], tmp_path)
    for path in paths:
        assert path.parent == tmp_path
        assert re.fullmatch(r"[A-Za-z0-9._@+-]+", path.name), path.name
        assert "2026-11-02_2026-11-08" in path.name
    assert not list(tmp_path.glob(".*.tmp"))
