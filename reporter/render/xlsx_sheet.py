"""XLSX building blocks: safe text, column kinds, reusable styled cells and sheet layout."""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.styles.colors import Color
from openpyxl.utils import get_column_letter
from openpyxl.workbook import Workbook
from openpyxl.worksheet.filters import AutoFilter
from openpyxl.worksheet.table import Table, TableColumn, TableStyleInfo

from reporter.money import NANOS_PER_USD

DATE_FORMAT = "yyyy-mm-dd"
DATETIME_FORMAT = "yyyy-mm-dd hh:mm:ss"
COUNT_FORMAT = "#,##0"
#: text that a spreadsheet (or a CSV made from it) could read as a formula or an error
RISKY_START = ("=", "+", "-", "@", "\t", "\r", "\n")
ERROR_CODES = frozenset(("#NULL!", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#N/A"))
#: characters XML 1.0 cannot hold (control characters, lone surrogates, non-characters)
_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
#: the underscore of text that reads like an OOXML escape (``_x000D_`` is a carriage return to
#: Excel and LibreOffice); it is written as ``_x005F_``, the escape of "_", to stay text
_ESCAPE_LOOKALIKE = re.compile("_(?=x[0-9A-Fa-f]{4}_)")
MAX_TEXT = 32_767  # Excel's limit for one cell
MAX_WIDTH = 60
#: how Excel draws a table sheet (light bands); LibreOffice shows the filters and its own look
TABLE_STYLE = "TableStyleLight1"

#: every cell names its font: a bold font without a name is drawn in a serif fallback by
#: LibreOffice, beside the sans-serif of the data (Calibri, or its look-alike Carlito, or the
#: system's sans-serif where neither is installed)
FONT_NAME = "Calibri"


def font(*, bold: bool = False, size: int = 11) -> Font:
    """The workbook's font (openpyxl's default: Calibri 11, the theme's text colour)."""
    return Font(name=FONT_NAME, family=2, sz=size, b=bold, color=Color(theme=1),
                scheme="minor")


HEADER_FONT = font(bold=True)
TITLE_FONT = font(bold=True, size=14)
#: numbers and dates are right-aligned by spreadsheets: their headers too
RIGHT = Alignment(horizontal="right")
#: text right after a right-aligned column starts one indent in, so the two never touch
INDENT = Alignment(horizontal="left", indent=1)
HEADER_FILL = PatternFill("solid", fgColor="DDE3EA")
HEADER_BORDER = Border(bottom=Side(style="thin"))
TOTAL_BORDER = Border(top=Side(style="thin"))


def table_name(title: str) -> str:
    """A sheet title as an Excel Table name (``By Day & Member`` -> ``ByDayMember``)."""
    name = re.sub(r"[^A-Za-z0-9_]", "", title)
    # a name must start with a letter or "_" and must not read as a cell reference
    if not name or not re.match(r"[A-Za-z_]", name) or re.fullmatch(r"[A-Za-z]{1,3}\d*", name):
        name = f"Table_{name}"
    return name


def usd_format(places: int) -> str:
    """A USD number format with ``places`` decimals, e.g. ``"$"#,##0.000``."""
    return '"$"#,##0.' + "0" * places if places else '"$"#,##0'


def clean_text(value: str) -> str:
    """Text a worksheet can hold: illegal characters become U+FFFD, cut at Excel's limit."""
    return _ILLEGAL.sub("\ufffd", value)[:MAX_TEXT]


def cell_text(value: str) -> str:
    """``clean_text`` for a cell: text that reads like an OOXML escape is kept as written.

    A carriage return needs no care here: the sheet's XML holds it as ``&#13;`` (see
    ``xlsx_table.keep_carriage_returns``), which every XML reader gives back as CR.
    """
    return _ESCAPE_LOOKALIKE.sub("_x005F_", clean_text(value))


def is_risky(value: str) -> bool:
    """Whether a spreadsheet could take this text for a formula or an error value."""
    return value.startswith(RISKY_START) or value in ERROR_CODES


@dataclass(frozen=True)
class Column:
    """One column of a table: its header, its kind (text, date, usd, count) and width."""

    header: str
    kind: str = "count"
    #: fixed width in characters; text columns measure their data when left None
    width: float | None = None


class Sheet:
    """A write-only worksheet with styled cells made once and reused for every row.

    ``putter`` gives, per column, a function that turns a value into what openpyxl's
    ``append`` takes: plain values, or the column's own styled cell holding the value.
    """

    def __init__(self, workbook: Workbook, title: str, columns: Sequence[Column],
                 cost_places: int) -> None:
        self.ws = workbook.create_sheet(title)
        self.columns = list(columns)
        self.places = cost_places
        self.usd = usd_format(cost_places)
        self._texts: dict[str, str | None] = {}

    # -- cells -------------------------------------------------------------------
    def cell(self, number_format: str | None = None, *, bold: bool = False,
              quote: bool = False, header: bool = False, total: bool = False,
              right: bool = False, indent: bool = False) -> Any:
        """A reusable styled cell of this sheet: number format, bold, quoted, header or total,
        right-aligned or indented."""
        cell = WriteOnlyCell(self.ws)
        if number_format:
            cell.number_format = number_format
        if bold or header or total:
            cell.font = HEADER_FONT
        if right:
            cell.alignment = RIGHT
        elif indent:
            cell.alignment = INDENT
        if header:
            cell.fill = HEADER_FILL
            cell.border = HEADER_BORDER
        if total:
            cell.border = TOTAL_BORDER
        if quote:
            cell.quotePrefix = True
        return cell

    def _format(self, kind: str) -> str | None:
        return {"date": DATE_FORMAT, "datetime": DATETIME_FORMAT, "usd": self.usd,
                "count": COUNT_FORMAT}.get(kind)

    def text(self, value: str) -> str | None:
        """``value`` cleaned, or None when it must be written as quoted text."""
        if value in self._texts:
            return self._texts[value]
        cleaned = cell_text(value)
        result = None if is_risky(cleaned) else cleaned
        self._texts[value] = result
        return result

    def putter(self, kind: str) -> Callable[[Any], Any]:
        """A function turning a value of this column kind into what ``append`` takes."""
        if kind == "text":
            quoted = self.cell(quote=True)

            def put_text(value: str | None) -> Any:
                if value is None or value == "":
                    return None
                safe = self.text(value)
                if safe is not None:
                    return safe
                # openpyxl makes "=..." a formula and "#N/A" an error: force text
                quoted.value = cell_text(value)
                quoted.data_type = "s"
                return quoted
            return put_text
        cell = self.cell(self._format(kind))
        if kind == "usd":
            def put_usd(nanos: int | None) -> Any:
                if nanos is None:
                    return None
                # int / int is correctly rounded: the double nearest the exact amount
                cell.value = nanos / NANOS_PER_USD
                return cell
            return put_usd

        def put(value: int | date | datetime | None) -> Any:
            if value is None:
                return None
            cell.value = value
            return cell
        return put

    # -- layout ------------------------------------------------------------------
    def _widths(self, rows: Sequence[Sequence[Any]], totals: Sequence[Any] | None) -> None:
        sample = [*rows, totals] if totals is not None else rows
        for index, column in enumerate(self.columns):
            width = column.width
            if width is None:
                if column.kind == "text":
                    longest = max((len(r[index]) for r in sample
                                   if isinstance(r[index], str)), default=0)
                elif column.kind == "date":
                    longest = 10
                else:
                    biggest = max((r[index] for r in sample if isinstance(r[index], int)),
                                  default=0)
                    if column.kind == "usd":
                        longest = len(f"${biggest / NANOS_PER_USD:,.{self.places}f}")
                    else:
                        longest = len(f"{biggest:,}")
                # the header's filter button takes about two characters
                width = min(MAX_WIDTH, max(longest, len(column.header) + 2, 6) + 2)
            self.ws.column_dimensions[get_column_letter(index + 1)].width = width

    def table(self, count: int) -> Table:
        """An Excel Table over the header and ``count`` data rows (one, empty, if none):
        filters and sorting as finance expects, banded rows; the totals row stays out."""
        ref = f"A1:{get_column_letter(len(self.columns))}{max(count, 1) + 1}"
        return Table(displayName=table_name(self.ws.title), ref=ref,
                     autoFilter=AutoFilter(ref=ref),
                     tableColumns=[TableColumn(id=index + 1, name=column.header)
                                   for index, column in enumerate(self.columns)],
                     tableStyleInfo=TableStyleInfo(name=TABLE_STYLE, showRowStripes=True))

    def layout(self, samples: Sequence[Sequence[Any]], totals: Sequence[Any] | None,
               count: int) -> None:
        """Column widths (from ``samples`` of the rows and the totals), frozen header, an
        Excel Table over the ``count`` data rows, print setup."""
        ws = self.ws
        self._widths(samples, totals)
        ws.freeze_panes = "A2"
        with warnings.catch_warnings():  # the table's columns are given, as it asks
            warnings.filterwarnings("ignore", "In write-only mode you must add table columns")
            ws.add_table(self.table(count))
        ws.print_title_rows = "1:1"
        ws.page_setup.orientation = "landscape"
        ws.sheet_properties.pageSetUpPr.fitToPage = True
        ws.page_setup.fitToHeight = 0
