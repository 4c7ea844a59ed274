"""PDF: WeasyPrint from the HTML template with print CSS, rolled up to stay readable."""

from __future__ import annotations

import functools
import logging
import re
import time
from typing import Any

from reporter.errors import RenderError
from reporter.render import rollup, weasyload
from reporter.render.html_report import page
from reporter.render.templating import count, usd
from reporter.report.model import Report

weasyload.load()  # before WeasyPrint's own import below, which it makes faster

from weasyprint import HTML  # noqa: E402

log = logging.getLogger(__name__)

#: what the PDF shows at most before it rolls rows up (each table row costs WeasyPrint ~5 ms)
LIMITS = rollup.Limits()


#: WeasyPrint's user-agent stylesheet gives every element six pseudo-elements (``::marker``,
#: ``::footnote-call``, ``::note-callback``...): about 6,500 of a report's 6,650 style
#: computations. Markers belong to list items and notes to elements floated as notes, so a page
#: without other list items or notes gets a copy of the stylesheet narrowed to those.
_MARKER = "\n::marker {"
_NOTES = re.compile(r"^::(?:foot)?note-[a-z]+ \{[^}]*\}\n", re.MULTILINE)
_NEEDS_UA = re.compile(r"list-item|float\s*:\s*(?:foot)?note", re.IGNORECASE)
#: the counter styles a stylesheet may not redefine (WeasyPrint warns and ignores them
#: outside its own user-agent sheet; the shared counter styles already hold them)
_FIXED_COUNTERS = re.compile(r"^@counter-style (?:disc|decimal) \{[^}]*\}\n", re.MULTILINE)


@functools.cache
def _narrow_ua() -> Any:
    """The HTML user-agent stylesheet with ``::marker`` on ``li`` and ``summary`` only and no
    note rules; None when this WeasyPrint's stylesheet is not the one this expects."""
    try:
        from weasyprint import CSS
        from weasyprint.html import UA, UA_COUNTER_STYLE
    except ImportError:
        return None
    text, notes = _NOTES.subn("", UA.replace(_MARKER, "\nli::marker, summary::marker {", 1))
    text = _FIXED_COUNTERS.sub("", text)
    if notes != 5 or _MARKER in text or re.search(r"^::", text, re.MULTILINE):
        log.debug("WeasyPrint's user-agent stylesheet is not the expected one; used as it is")
        return None
    return CSS(string=text, counter_style=UA_COUNTER_STYLE)


class _Page(HTML):  # type: ignore[misc]  # WeasyPrint has no type hints
    """WeasyPrint's HTML document, with the narrowed user-agent stylesheet when the page has
    no list item but ``li`` and no note."""

    def __init__(self, text: str) -> None:
        super().__init__(string=text, url_fetcher=url_fetcher())
        self.narrow = not _NEEDS_UA.search(text)

    def _ua_stylesheets(self, forms: bool = False) -> list[Any]:
        sheet = _narrow_ua() if self.narrow and not forms else None
        return [sheet] if sheet is not None else list(super()._ua_stylesheets(forms))


def _refuse(url: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
    raise RenderError(f"the PDF template asked for {url!r}; reports embed everything they show")


def url_fetcher() -> Any:
    """A fetcher that refuses every URL: the PDF needs nothing from outside its HTML."""
    try:
        from weasyprint.urls import URLFetcher
    except ImportError:  # older WeasyPrint takes a plain function
        return _refuse
    return URLFetcher(allowed_protocols=())


#: advance widths in em of DejaVu Sans Bold (totals are bold): digits and "$" 0.70,
#: "," and "." 0.38; a header letter at the header's .85em about 0.58; cell padding 1.2em
_NARROW = ",."
_HEADER_LETTER = 0.58
_PADDING = 1.2


def _figure_em(text: str) -> float:
    return sum(0.38 if ch in _NARROW else 0.70 for ch in text)


def _column_em(figures: list[str], headers: list[str]) -> float:
    """The width a column needs for its widest figure and its longest header word."""
    widest = max((_figure_em(text) for text in figures), default=0.0)
    word = max((len(w) for h in headers for w in h.split()), default=0) * _HEADER_LETTER
    return round(max(widest, word) + _PADDING, 2)


def column_css(report: Report, places: int) -> str:
    """Widths of the number columns, from the widest figure each can hold: a total is never
    smaller than a row of its table (costs, requests and tokens are not negative)."""
    s = report.summary
    active = max((row.active_days for row in report.by_member), default=0)
    widths = {  # tokens is the second of the two count columns
        "col.c-money": _column_em([usd(s.cost_nanos, places)], ["Cost"]),
        "col.c-count": _column_em([count(s.requests)], ["Requests"]),
        "col.c-count + col.c-count": _column_em([count(s.tokens)], ["Tokens"]),
        "col.c-small": _column_em([count(s.active_users), count(active)], ["Users", "Active days"]),
    }
    return "".join(f"table.data {selector} {{ width: {em}em; }}\n"
                   for selector, em in widths.items())


def print_page(report: Report, options: object = None) -> str:
    """The HTML the PDF is printed from: the print page, rolled up, with its column widths."""
    text = page(report, options, medium="pdf", limits=LIMITS)
    places = report.display_places
    return text.replace("</head>", f"<style>\n{column_css(report, places)}</style>\n</head>", 1)


def render(report: Report, options: object = None) -> bytes:
    """The report as a PDF: real text, title and metadata, "Page X of Y" on every page;
    printed by WeasyPrint, or by Chromium when the options' ``pdf_engine`` says so."""
    text = print_page(report, options)
    started = time.perf_counter()
    if getattr(options, "pdf_engine", None) == "chromium":
        from reporter.render import pdf_chromium

        printed = pdf_chromium.render_html(text)
        log.debug("PDF of %s by Chromium in %.2f s", report.title,
                  time.perf_counter() - started)
        return printed
    document = _Page(text).render()
    data: bytes = document.write_pdf()
    log.debug("PDF of %s: %d pages in %.2f s", report.title, len(document.pages),
              time.perf_counter() - started)
    return data
