"""PDF: WeasyPrint from the HTML template with print CSS, rolled up to stay readable."""

from __future__ import annotations

import logging
import time
from typing import Any

from weasyprint import HTML

from reporter.errors import RenderError
from reporter.render import rollup
from reporter.render.html_report import page
from reporter.render.templating import count, usd
from reporter.report.model import Report

log = logging.getLogger(__name__)

#: what the PDF shows at most before it rolls rows up (each table row costs WeasyPrint ~5 ms)
LIMITS = rollup.Limits()


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


def render(report: Report, options: object = None) -> bytes:
    """The report as a PDF: real text, title and metadata, "Page X of Y" on every page."""
    text = page(report, options, medium="pdf", limits=LIMITS)
    places = report.display_places
    text = text.replace("</head>", f"<style>\n{column_css(report, places)}</style>\n</head>", 1)
    started = time.perf_counter()
    document = HTML(string=text, url_fetcher=url_fetcher()).render()
    data: bytes = document.write_pdf()
    log.debug("PDF of %s: %d pages in %.2f s", report.title, len(document.pages),
              time.perf_counter() - started)
    return data
