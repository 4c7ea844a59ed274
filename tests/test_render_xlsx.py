"""XLSX report: cell types, layout, exact totals, formula injection, LibreOffice's reading."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import zipfile
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from sqlalchemy import Engine

from reporter import periods
from reporter.errors import RenderError
from reporter.render import json_report, xlsx_report
from reporter.render.xlsx_sheet import Column, cell_text, clean_text, is_risky
from reporter.render.xlsx_table import EMPTY_SHEET_DATA, TableSheet, splice
from reporter.report import aggregate
from reporter.report.model import Report
from reporter.store import orgs as store
from tests.helpers import load, row

NOW = datetime(2024, 3, 13, 12, tzinfo=UTC)
TZ = "America/New_York"
ORG_NAME = '=cmd|"/c calc"!A1 Acme 🚀'
PROJECT = '=HYPERLINK("http://x","y")'
TABLES = ["By Day", "By Day & Member", "By Model & Day", "By Model, Day & Member", "By Model",
          "By Project", "By Member"]


def _report(engine: Engine, *, first: date = date(2024, 3, 8), last: date = date(2024, 3, 12),
            member: str | None = None) -> Report:
    store.set_org(engine, "acme", name=ORG_NAME, timezone=TZ)
    load(engine, [
        row("a1", "2024-03-08T15:00:00Z", project="example-repo", cost="0.123456789",
            cache_read=100, cache_write=20),
        row("b1", "2024-03-08T16:00:00Z", email="bob@acme.com", model="openai/gpt-5",
            cost="1.5", input_tokens=1000, output_tokens=250),
        # 22:00 on the 8th in New York
        row("a2", "2024-03-09T03:00:00Z", cost="0.000000001"),
        # the 10th (the day clocks change) has no usage at all
        row("c1", "2024-03-11T12:00:00Z", email="+1-2@acme.com", model="@SUM(A1)",
            project=PROJECT, cost="2.25", input_tokens=123_456_789, output_tokens=1),
        row("d1", "2024-03-12T12:00:00Z", email="dave@acme.com", model="-2+3", project="#N/A",
            cost="1234.5"),
        row("a3", "2024-03-12T13:00:00Z", project="🚀 launch <script>alert(1)</script>",
            cost="0.01", cache_read=7),
    ])
    store.set_member(engine, "acme", "alice@acme.com", name="Alice 🚀")
    store.set_member(engine, "acme", "bob@acme.com", name="=1+1")
    store.set_member(engine, "acme", "+1-2@acme.com", name="@SUM(A1)")
    period = periods.resolve(None, TZ, NOW, first=first, last=last)
    return aggregate.build(engine, "acme", period, member=member, now=NOW)


def _open(report: Report, tmp_path: Path, name: str = "report.xlsx") -> tuple[Path, Any]:
    """The file and its workbook as a reader that never recalculates sees it (a formula's
    saved value)."""
    path = tmp_path / name
    path.write_bytes(xlsx_report.render(report, None))
    return path, openpyxl.load_workbook(path, data_only=True)


def _money(value: Any) -> Decimal:
    """A cost as the sheet holds it (a double) at nano-dollar precision."""
    assert isinstance(value, float | int), value
    return Decimal(repr(float(value))).quantize(Decimal("1e-9"))


def _table(ws: Any) -> tuple[list[str], list[tuple[Any, ...]], tuple[Any, ...]]:
    """(header, data rows, totals row) of a table sheet."""
    rows = list(ws.iter_rows(values_only=True))
    assert rows[-2] == (None,) * len(rows[0]), "a blank row sets the totals apart"
    assert rows[-1][0] == "Total"
    return list(rows[0]), rows[1:-2], rows[-1]


def test_sheets_layout_and_properties(sqlite_engine: Engine, tmp_path: Path) -> None:
    report = _report(sqlite_engine)
    _, wb = _open(report, tmp_path)
    assert wb.sheetnames == ["Summary", *TABLES]
    assert wb.properties.title == report.title
    assert wb.properties.creator == "reporter"
    assert wb.properties.created == NOW.replace(tzinfo=None)
    formulas = openpyxl.load_workbook(tmp_path / "report.xlsx")
    for title in TABLES:
        ws = wb[title]
        header, data, _ = _table(ws)
        assert ws.freeze_panes == "A2"
        last = openpyxl.utils.get_column_letter(len(header))
        # an Excel Table over the header and the data, not the totals: filters, sorting, bands
        [table] = formulas[title].tables.values()
        assert table.ref == f"A1:{last}{len(data) + 1}", "the table holds data, not totals"
        assert table.tableStyleInfo.name
        assert table.autoFilter.ref == table.ref
        assert [c.name for c in table.tableColumns] == header
        # totals follow a filter: SUBTOTAL(109) adds the visible rows only
        total_row = formulas[title].max_row
        for index, column in enumerate(header):
            cell = formulas[title].cell(total_row, index + 1)
            if column in ("Cost (USD)", "Requests", "Tokens"):
                letter = openpyxl.utils.get_column_letter(index + 1)
                assert cell.value == f"=SUBTOTAL(109,{letter}2:{letter}{len(data) + 1})"
        # headers sit where their column's values do: numbers and dates right, text left
        for index, column in enumerate(header):
            kind = "text" if column in ("Member", "Name", "Model", "Project",
                                        "Top model") else "number"
            align = ws.cell(1, index + 1).alignment.horizontal
            assert align == ("right" if kind == "number" else None if index == 0 or
                             header[index - 1] in ("Member", "Name", "Model", "Project",
                                                   "Top model") else "left"), (title, column)
            # text right after a right-aligned figure starts one indent in, header and cells
            if kind == "text" and align == "left":
                assert ws.cell(1, index + 1).alignment.indent == 1
                assert ws.cell(2, index + 1).alignment.indent == 1, (title, column)
        # the totals row is ruled across every column, its empty cells too
        last = formulas[title].max_row
        assert all(formulas[title].cell(last, i + 1).border.top.style == "thin"
                   for i in range(len(header))), title
        assert "Cost (USD)" in header
        assert "Cache read tokens" in header
        widths = {k: v.width for k, v in ws.column_dimensions.items()}
        assert len(widths) == len(header)
        assert all(8 <= w <= 60 for w in widths.values())
    # the chart is native and plots the zero-filled daily series (five days, one of them 0)
    with zipfile.ZipFile(tmp_path / "report.xlsx") as archive:
        chart = archive.read("xl/charts/chart1.xml").decode()
    assert "<barChart>" in chart
    assert "'Summary'!$E$4:$E$8" in chart
    assert "'Summary'!$D$4:$D$8" in chart
    summary = wb["Summary"]
    daily = {r[3]: r[4] for r in summary.iter_rows(min_row=4, max_row=8, values_only=True)}
    assert daily[datetime(2024, 3, 10)] == 0


def test_cell_types_and_formats(sqlite_engine: Engine, tmp_path: Path) -> None:
    report = _report(sqlite_engine)
    assert report.cost_places == 9
    path, wb = _open(report, tmp_path)
    usd = '"$"#,##0.000000000'
    ws = wb["By Day"]
    first = [c for c in next(ws.iter_rows(min_row=2, max_row=2))]
    assert first[0].is_date
    assert first[0].value == datetime(2024, 3, 8)
    assert first[0].number_format == "yyyy-mm-dd"
    assert first[1].data_type == "n"
    assert first[1].number_format == usd
    assert _money(first[1].value) == Decimal("1.623456790")
    # the file itself holds the exact decimal, not a rounded double
    with zipfile.ZipFile(path) as archive:
        assert "<v>1.62345679</v>" in archive.read("xl/worksheets/sheet2.xml").decode()
    for cell in first[2:]:
        assert type(cell.value) is int
        assert cell.number_format == "#,##0"
    summary = {r[0].value: r[1] for r in wb["Summary"].iter_rows(min_row=3, max_col=2)
               if r[0].value}
    assert summary["Total requests"].value == 6
    assert summary["Total spent (USD)"].number_format == usd
    assert summary["First date"].is_date
    assert summary["Timezone"].value == TZ
    assert summary["Organization"].value == ORG_NAME


def test_sheets_add_up_to_the_json_summary(sqlite_engine: Engine, tmp_path: Path) -> None:
    report = _report(sqlite_engine)
    data = json.loads(json_report.render(report, None))
    total = Decimal(data["summary"]["total_cost_usd"])
    _, wb = _open(report, tmp_path)
    summary = {r[0]: r[1] for r in wb["Summary"].iter_rows(min_row=3, max_col=2,
                                                           values_only=True) if r[0]}
    assert _money(summary["Total spent (USD)"]) == total
    assert _money(summary["Avg cost per request (USD)"]) == Decimal(
        data["summary"]["avg_cost_per_request_usd"])
    assert summary["Total tokens"] == data["summary"]["total_tokens"]
    assert summary["Active users"] == data["summary"]["active_users"]
    for title in TABLES:
        header, rows, totals = _table(wb[title])
        cost, requests = header.index("Cost (USD)"), header.index("Requests")
        assert sum(_money(r[cost]) for r in rows) == total, title
        assert _money(totals[cost]) == total, title
        assert sum(r[requests] for r in rows) == totals[requests] == 6, title
        for name in ("Tokens", "Cache read tokens", "Cache write tokens"):
            key = name.lower().replace(" ", "_").replace("tokens", "tokens")
            expected = data["summary"]["total_tokens" if name == "Tokens" else key]
            assert totals[header.index(name)] == expected, (title, name)
    # row by row, the day sheet is the JSON's by_day
    _, rows, _ = _table(wb["By Day"])
    assert [(r[0].date().isoformat(), _money(r[1]), r[2]) for r in rows] == [
        (d["date"], Decimal(d["cost_usd"]), d["requests"]) for d in data["by_day"]]


def test_hostile_text_is_text_never_a_formula(sqlite_engine: Engine, tmp_path: Path) -> None:
    report = _report(sqlite_engine)
    report.by_member[0].name = "\ttab\x01bell\ud800"
    report.by_member[1].name = "  spaced & <odd>  "
    path, wb = _open(report, tmp_path)
    texts = {c.value: c for ws in wb for r in ws.iter_rows() for c in r
             if isinstance(c.value, str)}
    for hostile in (PROJECT, "+1-2@acme.com", "@SUM(A1)", "-2+3", "#N/A", "=1+1", ORG_NAME,
                    "🚀 launch <script>alert(1)</script>", "Alice 🚀", "\ttab\ufffdbell\ufffd",
                    "  spaced & <odd>  "):
        assert hostile in texts, hostile
        assert texts[hostile].data_type == "s", hostile
        if is_risky(hostile):
            assert texts[hostile].quotePrefix, hostile
    with zipfile.ZipFile(path) as archive:
        sheets = [archive.read(n).decode() for n in archive.namelist()
                  if n.startswith("xl/worksheets/")]
    assert not any('t="e"' in xml for xml in sheets)
    # the only formulas are the totals rows' own
    formulas = {f for xml in sheets for f in re.findall(r"<f>(.*?)</f>", xml)}
    assert formulas
    assert all(re.fullmatch(r"SUBTOTAL\(109,[A-Z]+2:[A-Z]+\d+\)", f) for f in formulas)


def test_text_helpers() -> None:
    for text in ("=1", "+1", "-1", "@x", "\tx", "\rx", "\nx", "#DIV/0!"):
        assert is_risky(text)
    assert not is_risky("alice@acme.com")
    assert not is_risky("a=b")
    assert clean_text("a\x00b\x1fc\ufffe") == "a\ufffdb\ufffdc\ufffd"
    assert len(clean_text("x" * 40_000)) == 32_767
    # text that reads like an OOXML escape keeps its underscore as the escape of "_"
    assert cell_text("a_x000D_b_X0041_c_x00_") == "a_x005F_x000D_b_X0041_c_x00_"


def test_empty_period_and_personal_report(sqlite_engine: Engine, tmp_path: Path) -> None:
    report = _report(sqlite_engine, first=date(2024, 1, 1), last=date(2024, 1, 3))
    assert report.is_empty
    _, wb = _open(report, tmp_path)
    for title in TABLES:
        header, rows, totals = _table(wb[title])
        assert rows == []
        assert totals[header.index("Cost (USD)")] == 0
    personal = aggregate.build(sqlite_engine, "acme", _report(sqlite_engine).period,
                               member="bob@acme.com", now=NOW)
    _, wb = _open(personal, tmp_path, "bob.xlsx")
    # only what is about bob: no team sheet, no member or users column
    assert wb.sheetnames == ["Summary", "By Day", "By Model & Day", "By Model", "By Project"]
    for title in wb.sheetnames[1:]:
        header = [c.value for c in wb[title][1]]
        assert not {"Member", "Name", "Users", "Active users"} & set(header), title
    summary = {r[0]: r[1] for r in wb["Summary"].iter_rows(min_row=3, max_col=2,
                                                           values_only=True) if r[0]}
    assert summary["Email"] == "bob@acme.com"
    assert "Active users" not in summary
    assert wb["Summary"]["E4"].number_format == '"$"#,##0.00'


def test_amounts_beyond_double_precision_get_an_exact_note(sqlite_engine: Engine,
                                                           tmp_path: Path) -> None:
    store.set_org(sqlite_engine, "acme", timezone="UTC")
    load(sqlite_engine, [row(f"big{n}", "2024-03-08T12:00:00Z", email=f"u{n}@acme.com",
                             cost="999999.123456789") for n in range(3)])
    period = periods.resolve(None, "UTC", NOW, first=date(2024, 3, 8), last=date(2024, 3, 8))
    report = aggregate.build(sqlite_engine, "acme", period, now=NOW)
    _, wb = _open(report, tmp_path)
    summary = {r[0]: r[1] for r in wb["Summary"].iter_rows(min_row=3, max_col=2,
                                                           values_only=True) if r[0]}
    assert summary["Total spent, exact (text)"] == "2999997.370370367"
    assert "significant digits" in summary["Note"]
    # each member's amount (15 significant digits) is still exact as a number
    _, rows, _ = _table(wb["By Member"])
    assert [_money(r[2]) for r in rows] == [Decimal("999999.123456789")] * 3


#: LibreOffice's setting to recalculate every formula of an XLSX it opens (0: always)
RECALCULATE = """<?xml version="1.0" encoding="UTF-8"?>
<oor:items xmlns:oor="http://openoffice.org/2001/registry"
 xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<item oor:path="/org.openoffice.Office.Calc/Formula/Load"><prop oor:name="OOXMLRecalcMode"
 oor:op="fuse"><value>0</value></prop></item>
</oor:items>
"""


def _soffice(path: Path, profile: Path, target: str, out: Path, *,
             recalculate: bool = False) -> None:
    """Convert ``path`` with LibreOffice into ``out`` (a profile of its own; ``recalculate``:
    every formula computed again on opening, not read from the file)."""
    if recalculate:
        (profile / "user").mkdir(parents=True, exist_ok=True)
        (profile / "user" / "registrymodifications.xcu").write_text(RECALCULATE)
    subprocess.run(["soffice", f"-env:UserInstallation={profile.as_uri()}", "--headless",
                    "--convert-to", target, "--outdir", str(out), str(path)],
                   check=True, capture_output=True, timeout=120)


def _libreoffice_csv(path: Path, profile: Path,
                     recalculate: bool = False) -> dict[str, list[list[str]]]:
    """Every sheet as LibreOffice shows it ("as shown" text), via one CSV conversion."""
    out = path.parent / "csv"
    # tokens: comma, double quote, UTF-8, from line 1, ..., save as shown, every sheet (-1)
    flt = "csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,true,false,false,-1"
    _soffice(path, profile, flt, out, recalculate=recalculate)
    sheets = {}
    for csv_path in out.glob("*.csv"):
        sheet = csv_path.stem.removeprefix(path.stem + "-")
        with csv_path.open(encoding="utf-8", newline="") as stream:  # CRs in cells stay
            sheets[sheet] = list(csv.reader(stream))
    return sheets


def _usd(shown: str) -> Decimal:
    match = re.fullmatch(r"\$([\d,]+\.\d+)", shown)
    assert match, shown
    return Decimal(match.group(1).replace(",", ""))


@pytest.mark.libreoffice
def test_libreoffice_reads_what_finance_expects(sqlite_engine: Engine, tmp_path: Path) -> None:
    report = _report(sqlite_engine)
    [dave] = [m for m in report.by_member if m.email == "dave@acme.com"]
    dave.name = "typed _x000D_ and a\rb"  # an escape look-alike is text; a CR stays a CR
    data = json.loads(json_report.render(report, None))
    path, _ = _open(report, tmp_path)
    sheets = _libreoffice_csv(path, tmp_path / "lo-profile")
    assert set(sheets) == {"Summary", *TABLES}
    summary = {r[0]: r[1] for r in sheets["Summary"] if r and r[0]}
    assert _usd(summary["Total spent (USD)"]) == Decimal(data["summary"]["total_cost_usd"])
    assert summary["Total spent (USD)"] == "$1,238.383456790"
    assert summary["Total requests"] == "6"
    assert summary["Total tokens"] == f"{data['summary']['total_tokens']:,}"
    assert summary["First date"] == "2024-03-08"
    assert summary["Timezone"] == TZ
    assert summary["Organization"] == ORG_NAME

    by_day = sheets["By Day"]
    assert by_day[0][:3] == ["Date", "Cost (USD)", "Requests"]
    days = [r for r in by_day[1:] if r and r[0] not in ("", "Total")]
    assert [(r[0], _usd(r[1]), int(r[2])) for r in days] == [
        (d["date"], Decimal(d["cost_usd"]), d["requests"]) for d in data["by_day"]]
    assert by_day[-1][:3] == ["Total", "$1,238.383456790", "6"]
    for title in TABLES:
        header, total = sheets[title][0], sheets[title][-1]
        assert total[0] == "Total"
        assert _usd(total[header.index("Cost (USD)")]) == Decimal(
            data["summary"]["total_cost_usd"]), title

    projects = {r[0]: r for r in sheets["By Project"][1:] if r and r[0]}
    # the text itself, never "y" (the formula's result) nor an error
    assert PROJECT in projects
    assert "#N/A" in projects
    assert "(no project)" in projects
    models = {r[1] for r in sheets["By Model, Day & Member"][1:] if len(r) > 1}
    assert {"@SUM(A1)", "-2+3"} <= models
    members = {(r[0], r[1]) for r in sheets["By Member"][1:] if r}
    assert ("+1-2@acme.com", "@SUM(A1)") in members
    assert ("bob@acme.com", "=1+1") in members
    assert ("alice@acme.com", "Alice 🚀") in members
    assert ("dave@acme.com", "typed _x000D_ and a\rb") in members


def _hide_rows(path: Path, out: Path, title: str, rows: list[int]) -> None:
    """``path`` with rows of a table sheet hidden, as a filter leaves them in the file."""
    part = f"xl/worksheets/sheet{TABLES.index(title) + 2}.xml"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == part:
                for number in rows:
                    data = data.replace(f'<row r="{number}">'.encode(),
                                        f'<row r="{number}" hidden="1">'.encode())
            dst.writestr(info, data)


@pytest.mark.libreoffice
def test_libreoffice_totals_follow_a_filter(sqlite_engine: Engine, tmp_path: Path) -> None:
    report = _report(sqlite_engine)
    path, wb = _open(report, tmp_path)
    _, rows, _ = _table(wb["By Day"])
    _, member_rows, _ = _table(wb["By Model, Day & Member"])
    filtered = tmp_path / "filtered.xlsx"
    _hide_rows(path, filtered, "By Day", [2, 4])  # the first and the third day filtered out
    assert len(rows) == 3
    sheets = _libreoffice_csv(filtered, tmp_path / "lo-profile", recalculate=True)
    visible = [r for n, r in enumerate(rows, start=2) if n not in (2, 4)]
    header, total = sheets["By Day"][0], sheets["By Day"][-1]
    assert total[0] == "Total"
    assert _usd(total[header.index("Cost (USD)")]) == sum(_money(r[1]) for r in visible)
    assert int(total[header.index("Requests")]) == sum(r[2] for r in visible) < 6
    assert int(total[header.index("Tokens")].replace(",", "")) == sum(r[5] for r in visible)
    # a sheet with nothing filtered still adds up to the report's total, to the nano-dollar
    header, total = sheets["By Model, Day & Member"][0], sheets["By Model, Day & Member"][-1]
    assert _usd(total[header.index("Cost (USD)")]) == sum(_money(r[4]) for r in member_rows)
    assert total[header.index("Cost (USD)")] == "$1,238.383456790"


def _pdf_words(pdf: Path) -> list[tuple[int, float, float, float, str]]:
    """(page, left, top, right, text) of every word poppler finds in ``pdf``."""
    xml = subprocess.run(["pdftotext", "-enc", "UTF-8", "-bbox-layout", str(pdf), "-"],
                         check=True, capture_output=True).stdout.decode(errors="replace")
    words = []
    for number, page in enumerate(xml.split("<page ")[1:], start=1):
        for x0, y0, x1, text in re.findall(r'<word xMin="([\d.]+)" yMin="([\d.]+)" '
                                           r'xMax="([\d.]+)" yMax="[\d.]+">([^<]*)</word>',
                                           page):
            words.append((number, float(x0), float(y0), float(x1), text))
    return words


@pytest.mark.libreoffice
def test_libreoffice_draws_headers_over_their_numbers_in_one_font(sqlite_engine: Engine,
                                                                   tmp_path: Path) -> None:
    report = _report(sqlite_engine)
    path, _ = _open(report, tmp_path)
    _soffice(path, tmp_path / "lo-profile", "pdf", tmp_path)
    pdf = tmp_path / "report.pdf"
    # headers and totals (bold) in the data's own sans-serif family, never a serif fallback
    fonts = subprocess.run(["pdffonts", str(pdf)], check=True, capture_output=True,
                           text=True).stdout.splitlines()[2:]
    names = {line.split()[0].split("+")[-1] for line in fonts}
    families = {name.split("-")[0] for name in names if "Emoji" not in name}
    assert len(families) == 1, names
    assert "Serif" not in families.pop()
    assert any(name.endswith("-Bold") for name in names), names
    # a numeric header ends where its numbers end (right-aligned over right-aligned figures)
    words = _pdf_words(pdf)
    heads = [w for w in words if w[4] in ("Requests", "Users", "Tokens")]
    assert len(heads) >= 10
    for page, left, top, right, text in heads:
        line = [w for w in words if w[0] == page and abs(w[2] - top) < 1]
        end = min((w[1] for w in line if w[1] > right), default=10_000.0)
        start = max((w[3] for w in line if w[3] < left), default=0.0)  # the header before
        below = [w for w in words if w[0] == page and w[2] > top + 1
                 and start + 2 < w[3] < end and re.fullmatch(r"[\d,]+", w[4])]
        assert below, (page, text)
        for figure in below:
            assert abs(figure[3] - right) < 1.5, (page, text, figure)


#: line ends and tabs a name may hold; each must come back from the file exactly as it went in
LINE_ENDS = ["a\r\nb", "a\rb", "a\nb", "a\tb", "a\r\n\r\nb\r", "x\r"]


def _with_texts(report: Report, texts: list[str]) -> Report:
    """``report`` with each placeholder ``<n>`` in a name, model id or project replaced by
    ``texts[n]``: the store refuses such text at ingest, but a renderer takes any text."""

    def put(value: Any) -> Any:
        if isinstance(value, str):
            for n, text in enumerate(texts):
                value = value.replace(f"<{n}>", text)
        return value

    report.materialize()  # the members' shares in memory, to be changed here
    rows: list[Any] = [*report.by_member, *report.by_model, *report.by_project,
                       *report.by_day, *report.by_model_day]
    rows += [m for r in report.by_day for m in r.members]
    rows += [m for _, members in report.model_day_members() for m in members]
    for item in rows:
        for attribute in ("name", "model", "project", "top_model"):
            if hasattr(item, attribute):
                setattr(item, attribute, put(getattr(item, attribute)))
    report.organization = replace(report.organization, name=put(report.organization.name))
    return report


def test_line_ends_and_tabs_come_back_exactly(sqlite_engine: Engine, tmp_path: Path) -> None:
    store.set_org(sqlite_engine, "acme", name="Acme <0> Corp <1>", timezone="UTC")
    load(sqlite_engine, [
        row(f"e{n}", "2024-03-08T12:00:00Z", email=f"u{n}@acme.com", model=f"model <{n}>",
            project=f"project <{n}>", cost="1")
        for n in range(len(LINE_ENDS))])
    for n in range(len(LINE_ENDS)):
        store.set_member(sqlite_engine, "acme", f"u{n}@acme.com", name=f"name <{n}>")
    period = periods.resolve(None, "UTC", NOW, first=date(2024, 3, 8), last=date(2024, 3, 8))
    report = _with_texts(aggregate.build(sqlite_engine, "acme", period, now=NOW), LINE_ENDS)
    assert report.organization.name == "Acme a\r\nb Corp a\rb"
    _, wb = _open(report, tmp_path)

    names = {r[1] for r in wb["By Member"].iter_rows(min_row=2, values_only=True) if r[1]}
    assert names == {f"name {text}" for text in LINE_ENDS}
    models = {r[0] for r in wb["By Model"].iter_rows(min_row=2, values_only=True)}
    assert {f"model {text}" for text in LINE_ENDS} <= models
    projects = {r[0] for r in wb["By Project"].iter_rows(min_row=2, values_only=True)}
    assert {f"project {text}" for text in LINE_ENDS} <= projects
    members = {r[3] for r in wb["By Model, Day & Member"].iter_rows(min_row=2,
                                                                     values_only=True)}
    assert {f"name {text}" for text in LINE_ENDS} <= members
    # the summary sheet and the document properties are written by openpyxl itself
    summary = {r[0]: r[1] for r in wb["Summary"].iter_rows(min_row=3, max_col=2,
                                                           values_only=True) if r[0]}
    assert summary["Organization"] == "Acme a\r\nb Corp a\rb"
    assert wb["Summary"]["A1"].value == report.title
    assert wb.properties.title == report.title


def _table_package(sheet_data: bytes | None = None) -> tuple[bytes, TableSheet]:
    """A workbook of one table sheet as openpyxl saves it, its sheetData replaced if given."""
    wb = openpyxl.Workbook(write_only=True)
    table = TableSheet(wb, "T", [Column("Name", "text")], 2, [("a",)])
    saved = io.BytesIO()
    wb.save(saved)
    if sheet_data is None:
        return saved.getvalue(), table
    out = io.BytesIO()
    with zipfile.ZipFile(saved) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "xl/worksheets/sheet1.xml":
                data = EMPTY_SHEET_DATA.sub(sheet_data, data)
            dst.writestr(info, data)
    return out.getvalue(), table


def test_a_package_openpyxl_laid_out_otherwise_is_a_render_error() -> None:
    package, table = _table_package()
    with zipfile.ZipFile(io.BytesIO(splice(package, [table]))) as archive:
        assert "<t>a</t>" in archive.read("xl/worksheets/sheet1.xml").decode()

    package, table = _table_package(b'<sheetData><row r="1"/></sheetData>')
    with pytest.raises(RenderError, match=r"^openpyxl \d+\.\d+ wrote a sheet reporter cannot "
                       r"splice \(xl/worksheets/sheet1.xml has no empty sheetData to fill\); "
                       r"supported: 3\.1$"):
        splice(package, [table])
    package, table = _table_package()
    table.ws._path = "/xl/worksheets/elsewhere.xml"  # what a renamed part would look like
    with pytest.raises(RenderError, match=r"no part xl/worksheets/elsewhere.xml in the package"):
        splice(package, [table])
