"""XLSX: one sheet per view, real numbers and dates, exact totals, a native daily-cost chart."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date
from io import BytesIO
from typing import Any

from openpyxl.chart import BarChart, Reference
from openpyxl.workbook import Workbook

from reporter.money import NANOS_PER_USD, format_usd
from reporter.render.xlsx_sheet import (
    DATE_FORMAT,
    TITLE_FONT,
    Column,
    Sheet,
    cell_text,
    clean_text,
    is_risky,
    usd_format,
)
from reporter.render.xlsx_table import TableSheet, splice
from reporter.report import readable
from reporter.report.model import Metrics, Report

log = logging.getLogger(__name__)

#: significant digits a spreadsheet number (an IEEE double) shows exactly
EXACT_DIGITS = 15

METRICS = (
    Column("Cost (USD)", "usd"), Column("Requests"), Column("Input tokens"),
    Column("Output tokens"), Column("Tokens"), Column("Cache read tokens"),
    Column("Cache write tokens"),
)
DATE = Column("Date", "date", 12)
MODEL = Column("Model", "text")
MEMBER = Column("Member", "text")
NAME = Column("Name", "text")
USERS = Column("Users")


def _metrics(m: Metrics) -> tuple[int, ...]:
    return (m.cost_nanos, m.requests, m.input_tokens, m.output_tokens, m.tokens,
            m.cache_read_tokens, m.cache_write_tokens)


def _totals(rows: Iterable[Metrics], before: int, after: int = 0) -> list[Any]:
    """A totals row: ``before`` leading cells, the summed metrics, ``after`` blank cells."""
    total = Metrics()
    for row in rows:
        total.add(row)
    return [None] * before + list(_metrics(total)) + [None] * after


def _budget_rows(report: Report) -> list[tuple[str, Any, str]]:
    """The month's budget block (nothing without a budget)."""
    budget = report.budget
    if budget is None:
        return []
    through = f"{budget.month:%B} 1 to {_day(report.period.last)}"
    return [("", None, "text"), ("Monthly budget (USD)", budget.monthly_nanos, "usd"),
            (f"Spent {through} (USD)", budget.spent_nanos, "usd"),
            ("Budget used", f"{budget.percent}%", "text"),
            ("Month-end forecast (USD)", budget.forecast_nanos, "usd"),
            ("Budget", budget.text, "text")]


def _day(day: date) -> str:
    """``November 21``."""
    return f"{day:%B} {day.day}"


def _summary_sheet(wb: Workbook, report: Report) -> None:
    summary, period = report.summary, report.period
    left: list[tuple[str, Any, str]] = [("Organization", report.organization.name, "text")]
    if report.member:
        if report.member_name:
            left.append(("Member", report.member_name, "text"))
        left.append(("Email", report.member, "text"))
    left += [
        ("Period", readable.period_text(period), "text"),
        ("First date", period.first, "date"),
        ("Last date", period.last, "date"),
        ("Timezone", period.timezone, "text"),
        *_budget_rows(report),
        ("", None, "text"),
        ("Total spent (USD)", summary.cost_nanos, "usd"),
        ("Total requests", summary.requests, "count"),
        ("Avg cost per request (USD)", summary.avg_cost_nanos, "usd"),
        ("Total tokens", summary.tokens, "count"),
        ("Input tokens", summary.input_tokens, "count"),
        ("Output tokens", summary.output_tokens, "count"),
        ("Cache read tokens", summary.cache_read_tokens, "count"),
        ("Cache write tokens", summary.cache_write_tokens, "count"),
        *([] if report.personal else [("Active users", summary.active_users, "count")]),
        *([("", None, "text"), ("Note", report.sync_note, "text")] if report.sync_note else []),
        *([("", None, "text"), ("Note", "No usage in this period.", "text")]
          if report.is_empty else []),
        ("", None, "text"),
        (f"Generated ({readable.zone_words(period.timezone)})",
         report.generated_at.astimezone(period.zone).replace(tzinfo=None),
         "datetime"),
    ]
    digits = len(format_usd(summary.cost_nanos, report.cost_places).replace(".", "").lstrip("0"))
    if digits > EXACT_DIGITS:
        left += [("Total spent, exact (text)", format_usd(summary.cost_nanos, report.cost_places),
                  "text"),
                 ("Note", f"amounts with more than {EXACT_DIGITS} significant digits are "
                  "rounded in the last digits by spreadsheet programs", "text")]

    columns = [Column("", "text", 30), Column("", "text"), Column("", "text", 3), DATE,
               Column("Cost (USD)", "usd"), Column("Requests"), Column("Tokens")]
    sheet = Sheet(wb, "Summary", columns, report.cost_places)
    ws = sheet.ws
    daily = [(p.date, p.cost_nanos, p.requests, p.tokens) for p in report.daily]
    # widths: column B holds values of every kind; measure it as text of the longest value
    longest = max([len(str(v)) for _, v, kind in left if kind == "text"] + [14])
    widths = [30, min(60, longest + 2), 3, 12,
              max(14, len(f"${summary.cost_nanos / NANOS_PER_USD:,.{report.cost_places}f}") + 2),
              12, 14]
    for letter, width in zip("ABCDEFG", widths, strict=True):
        ws.column_dimensions[letter].width = width

    ws.page_setup.orientation = "landscape"
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.page_setup.fitToHeight = 0
    title = sheet.cell(quote=is_risky(report.title))
    title.font = TITLE_FONT
    title.value = cell_text(report.title)
    title.data_type = "s"
    ws.append([title])
    ws.append([])
    label = sheet.putter("text")
    value = {kind: sheet.putter(kind) for kind in ("text", "date", "datetime", "usd", "count")}
    heads = []
    for column in columns[3:]:
        head = sheet.cell(header=True, right=column.kind != "text")
        head.value = column.header
        heads.append(head)
    daily_puts = [sheet.putter(c.kind) for c in columns[3:]]
    for index in range(max(len(left), len(daily) + 1)):
        row: list[Any] = [None] * 7
        if index < len(left):
            name, item, kind = left[index]
            row[0] = label(name) if name else None
            row[1] = value[kind](item)
        if index == 0:
            row[3:] = heads
        elif index <= len(daily):
            row[3:] = [put(v) for put, v in zip(daily_puts, daily[index - 1], strict=True)]
        ws.append(row)

    chart = BarChart()
    chart.type = "col"
    chart.title = "Daily cost (USD)"
    chart.legend = None
    chart.gapWidth = 40
    chart.width, chart.height = 24, 10
    chart.add_data(Reference(ws, min_col=5, min_row=3, max_row=3 + len(daily)),
                   titles_from_data=True)
    chart.set_categories(Reference(ws, min_col=4, min_row=4, max_row=3 + len(daily)))
    chart.y_axis.numFmt = usd_format(2)
    chart.x_axis.number_format = DATE_FORMAT
    chart.x_axis.delete = False
    chart.y_axis.delete = False
    ws.add_chart(chart, "I3")


@dataclass(frozen=True)
class View:
    """One table sheet: its rows (an iterator when they are streamed), totals, the number
    of rows and ``samples``, rows holding each text column's longest value."""

    title: str
    columns: Sequence[Column]
    rows: Iterable[Sequence[Any]]
    totals: list[Any]
    count: int
    samples: Sequence[Sequence[Any]]


def _listed(title: str, columns: Sequence[Column], rows: list[Any], totals: list[Any]) -> View:
    return View(title, columns, rows, totals, len(rows), rows)


def _personal_views(r: Report) -> list[View]:
    """A member's own sheets: their days, models and projects, no colleague and no team
    column (users, members)."""
    return [
        _listed("By Day", [DATE, *METRICS], [(d.date, *_metrics(d)) for d in r.by_day],
                _totals(r.by_day, 1)),
        _listed("By Model & Day", [DATE, MODEL, *METRICS],
                [(d.date, d.model, *_metrics(d)) for d in r.by_model_day],
                _totals(r.by_model_day, 2)),
        _listed("By Model", [MODEL, *METRICS], [(m.model, *_metrics(m)) for m in r.by_model],
                _totals(r.by_model, 1)),
        _listed("By Project", [Column("Project", "text"), *METRICS],
                [(p.project if p.project is not None else "(no project)", *_metrics(p))
                 for p in r.by_project],
                _totals(r.by_project, 1)),
    ]


def _views(report: Report) -> list[View]:
    """Every table sheet; the members' rows are streamed (a year has about 170,000)."""
    r = report
    if r.personal:
        return _personal_views(r)
    blank = (None,) * len(METRICS)
    people = [(None, m.email, m.name, *blank) for m in r.by_member]
    models = [(None, m.model, None, None, *blank) for m in r.by_model]
    return [
        _listed("By Day", [DATE, *METRICS, USERS],
                [(d.date, *_metrics(d), d.users) for d in r.by_day],
                _totals(r.by_day, 1, 1)),
        View("By Day & Member", [DATE, MEMBER, NAME, *METRICS],
             ((d.date, m.email, m.name, *_metrics(m)) for d in r.by_day for m in d.members),
             _totals(r.by_day, 3), sum(d.users for d in r.by_day), people),
        _listed("By Model & Day", [DATE, MODEL, *METRICS, USERS],
                [(d.date, d.model, *_metrics(d), d.users) for d in r.by_model_day],
                _totals(r.by_model_day, 2, 1)),
        View("By Model, Day & Member", [DATE, MODEL, MEMBER, NAME, *METRICS],
             ((d.date, d.model, m.email, m.name, *_metrics(m))
              for d, ms in r.model_day_members() for m in ms),
             _totals(r.by_model_day, 4), sum(d.users for d in r.by_model_day),
             models + [(None, None, *person[1:3], *blank) for person in people]),
        _listed("By Model", [MODEL, *METRICS, USERS],
                [(m.model, *_metrics(m), m.users) for m in r.by_model],
                _totals(r.by_model, 1, 1)),
        _listed("By Project", [Column("Project", "text"), *METRICS, USERS],
                [(p.project if p.project is not None else "(no project)", *_metrics(p),
                  p.users) for p in r.by_project],
                _totals(r.by_project, 1, 1)),
        _listed("By Member", [MEMBER, NAME, *METRICS, Column("Active days"),
                              Column("Top model", "text")],
                [(m.email, m.name, *_metrics(m), m.active_days, m.top_model)
                 for m in r.by_member],
                _totals(r.by_member, 2, 2)),
    ]


def render(report: Report, options: object = None) -> bytes:
    """The report as an XLSX workbook (write-only openpyxl: rows are streamed to disk)."""
    wb = Workbook(write_only=True)
    props = wb.properties
    props.title = clean_text(report.title)
    props.subject = clean_text(f"AI usage, {readable.period_text(report.period)}")
    props.creator = "reporter"
    props.lastModifiedBy = "reporter"
    props.created = report.generated_at.astimezone(UTC).replace(tzinfo=None)
    props.keywords = "usage report"
    _summary_sheet(wb, report)
    tables = [TableSheet(wb, v.title, v.columns, report.cost_places, v.rows, v.totals,
                         count=v.count, samples=v.samples) for v in _views(report)]
    package = BytesIO()
    wb.save(package)
    data = splice(package.getvalue(), tables)
    log.debug("xlsx: %d bytes for %s", len(data), report.title)
    return data
