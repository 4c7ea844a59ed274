"""Large XLSX tables: openpyxl lays out the sheet, its rows are streamed as sheetData XML."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import date
from io import BytesIO
from typing import Any
from xml.sax.saxutils import escape
from zipfile import ZIP_DEFLATED, ZipFile, ZipInfo

import openpyxl
from openpyxl.utils import get_column_letter
from openpyxl.workbook import Workbook

from reporter.errors import RenderError
from reporter.money import format_usd
from reporter.render.xlsx_sheet import Column, Sheet, cell_text, is_risky

#: day 0 of Excel's 1900 date system (serial 1 is 1900-01-01, counting the fictitious 29 Feb)
EXCEL_EPOCH = date(1899, 12, 30)
EMPTY_SHEET_DATA = re.compile(rb"<sheetData\s*/>|<sheetData>\s*</sheetData>")
CHUNK_ROWS = 2000
#: the openpyxl minor version whose saved package ``splice`` knows (pinned in pyproject.toml)
SUPPORTED_OPENPYXL = "3.1"


def unsupported(what: str) -> RenderError:
    """The error for an openpyxl whose output is not what ``splice`` was written against."""
    version = ".".join(openpyxl.__version__.split(".")[:2])
    return RenderError(f"openpyxl {version} wrote a sheet reporter cannot splice ({what}); "
                       f"supported: {SUPPORTED_OPENPYXL}")


def keep_carriage_returns(xml: bytes) -> bytes:
    """XML with each carriage return as ``&#13;``, which a reader gives back as CR.

    A raw CR is turned into a line feed by every XML parser (end-of-line handling), so
    ``a\\r\\nb`` would come back as ``a\\nb``. openpyxl writes CR raw, and only in text
    and attribute values, where the character reference means the same character.
    """
    return xml.replace(b"\r", b"&#13;")


class TableSheet(Sheet):
    """A table sheet whose layout and styles are openpyxl's and whose rows are written here.

    openpyxl's per-cell path (a Cell, an Element and its serialization per value) is
    several times slower than the file format needs; the rows of a table are regular, so
    each column gets one small formatter and the sheet's XML is spliced into the package
    that openpyxl saved (see ``splice``). Styles are registered through openpyxl cells,
    so every ``s`` index written here is one openpyxl put in styles.xml.

    ``rows`` may be an iterator read only while the sheet is written (a long report's rows
    streamed from the database); it then comes with its ``count`` and with ``samples``,
    rows that hold the longest texts of each column (numbers are measured on the totals).
    The totals row adds the visible rows (``SUBTOTAL(109, ...)``), so it follows a filter;
    the file also holds its exact value for readers that never recalculate.
    """

    def __init__(self, workbook: Workbook, title: str, columns: Sequence[Column],
                 cost_places: int, rows: Iterable[Sequence[Any]],
                 totals: Sequence[Any] | None = None, label: str = "Total", *,
                 count: int | None = None,
                 samples: Sequence[Sequence[Any]] | None = None) -> None:
        super().__init__(workbook, title, columns, cost_places)
        if isinstance(rows, Sequence):
            count = len(rows) if count is None else count
            samples = rows if samples is None else samples
        if count is None or samples is None:
            raise TypeError("streamed rows need their count and samples")
        self.rows, self.count, self.totals, self.label = rows, count, totals, label
        self.layout(samples, totals, count)
        # every style is registered now, before openpyxl writes styles.xml
        #: text columns that follow a number column (right-aligned) start indented
        self._indented = {i for i, c in enumerate(columns)
                          if c.kind == "text" and i and columns[i - 1].kind != "text"}
        self._head = [self._style("text", header=True, right=c.kind != "text",
                                  indent=i in self._indented) for i, c in enumerate(columns)]
        self._formatters = [self._formatter(i, c.kind) for i, c in enumerate(columns)]
        self._total_formatters = [self._formatter(0, "text", total=True)] + [
            self._formatter(i, c.kind, total=True) if c.kind == "text" else
            self._subtotal(i, c.kind) for i, c in enumerate(columns) if i]

    def _style(self, kind: str, *, total: bool = False, quote: bool = False,
               header: bool = False, right: bool = False, indent: bool = False) -> int:
        cell = self.cell(self._format(kind), total=total, quote=quote, header=header,
                         right=right, indent=indent)
        style_id = getattr(cell, "style_id", None)
        if not isinstance(style_id, int):
            raise unsupported(f"a cell's style_id is {style_id!r}, not an index")
        return style_id

    def _formatter(self, index: int, kind: str, total: bool = False) -> Callable[[Any, str], str]:
        """A function of (value, row number) giving the cell's XML ('' for no value)."""
        col = get_column_letter(index + 1)
        if kind == "text":
            indent = index in self._indented
            quoted = self._style("text", quote=True, total=total, indent=indent)
            plain = self._style("text", total=total, indent=indent)
            bold = f' s="{plain}"' if total or indent else ""
            # a totals row is ruled across every column, empty cells too
            empty = f'<c r="{col}{{}}" s="{plain}"/>' if total else ""
            cache: dict[str, str] = {}

            def text(value: str | None, r: str) -> str:
                if not value:
                    return empty.format(r) if empty else ""
                body = cache.get(value)
                if body is None:
                    cleaned = cell_text(value)
                    space = ' xml:space="preserve"' if cleaned != cleaned.strip() else ""
                    style = f' s="{quoted}"' if is_risky(cleaned) else bold
                    xml = escape(cleaned).replace("\r", "&#13;")
                    # inline text is never read as a formula or an error value
                    body = cache[value] = (f'{style} t="inlineStr"><is><t{space}>'
                                           f"{xml}</t></is></c>")
                return f'<c r="{col}{r}"{body}'
            return text
        style = self._style(kind, total=total)
        if kind == "usd":
            def usd(nanos: int | None, r: str) -> str:
                # the exact decimal; a reader rounds it to the nearest double
                return "" if nanos is None else \
                    f'<c r="{col}{r}" s="{style}"><v>{format_usd(nanos, 0)}</v></c>'
            return usd
        if kind == "date":
            def day(value: date | None, r: str) -> str:
                return "" if value is None else \
                    f'<c r="{col}{r}" s="{style}"><v>{(value - EXCEL_EPOCH).days}</v></c>'
            return day

        def count(value: int | None, r: str) -> str:
            return "" if value is None else f'<c r="{col}{r}" s="{style}"><v>{value}</v></c>'
        return count

    def _subtotal(self, index: int, kind: str) -> Callable[[Any, str], str]:
        """A totals cell: the sum of the column's visible rows, saved with its exact value."""
        col = get_column_letter(index + 1)
        style = self._style(kind, total=True)
        formula = f"SUBTOTAL(109,{col}2:{col}{max(self.count, 1) + 1})"

        def total(value: int | None, r: str) -> str:
            if value is None:  # ruled like the others
                return f'<c r="{col}{r}" s="{style}"/>'
            saved = format_usd(value, 0) if kind == "usd" else str(value)
            return f'<c r="{col}{r}" s="{style}"><f>{formula}</f><v>{saved}</v></c>'
        return total

    def sheet_data(self) -> Iterator[bytes]:
        """The ``<sheetData>`` element: header, rows, a blank row and the totals row."""
        head = self._head
        cells = "".join(f'<c r="{get_column_letter(i + 1)}1" s="{head[i]}" t="inlineStr"><is>'
                        f"<t>{escape(c.header)}</t></is></c>" for i, c in enumerate(self.columns))
        parts = [f'<sheetData><row r="1">{cells}</row>']
        formatters = self._formatters
        number = 1
        for values in self.rows:
            number += 1
            r = str(number)
            parts.append(f'<row r="{r}">')
            parts.extend([fmt(v, r) for fmt, v in zip(formatters, values, strict=True)])
            parts.append("</row>")
            if number % CHUNK_ROWS == 0:
                yield "".join(parts).encode()
                parts = []
        if number - 1 != self.count:
            raise RenderError(f"sheet {self.ws.title!r} got {number - 1} rows, "
                              f"{self.count} were announced")
        if self.totals is not None:
            r = str(number + 2)
            values = [self.label, *self.totals[1:]]
            parts.append(f'<row r="{r}">')
            parts.extend(fmt(v, r) for fmt, v in
                         zip(self._total_formatters, values, strict=True))
            parts.append("</row>")
        parts.append("</sheetData>")
        yield "".join(parts).encode()


def splice(package: bytes, tables: Sequence[TableSheet]) -> bytes:
    """The package openpyxl saved, with each table's rows put into its empty sheetData.

    Every other XML part is copied with its carriage returns kept (``keep_carriage_returns``).
    A package laid out otherwise than openpyxl 3.1 does is a ``RenderError``, never a
    workbook with an empty sheet.
    """
    parts: dict[str, TableSheet] = {}
    for table in tables:
        path = getattr(table.ws, "path", None)
        if not isinstance(path, str):
            raise unsupported(f"sheet {table.ws.title!r} has no part name")
        parts[path.lstrip("/")] = table
    out = BytesIO()
    with ZipFile(BytesIO(package)) as src, ZipFile(out, "w", ZIP_DEFLATED) as dst:
        missing = set(parts) - set(src.namelist())
        if missing:
            raise unsupported(f"no part {', '.join(sorted(missing))} in the package")
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith(".xml"):
                data = keep_carriage_returns(data)
            spliced = parts.get(info.filename)
            if spliced is None:
                dst.writestr(info, data)
                continue
            match = EMPTY_SHEET_DATA.search(data)
            if match is None:
                raise unsupported(f"{info.filename} has no empty sheetData to fill")
            entry = ZipInfo(info.filename, date_time=info.date_time)
            entry.compress_type = ZIP_DEFLATED
            with dst.open(entry, "w") as stream:
                stream.write(data[:match.start()])
                for chunk in spliced.sheet_data():
                    stream.write(chunk)
                stream.write(data[match.end():])
    return out.getvalue()
