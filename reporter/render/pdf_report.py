"""PDF: WeasyPrint from the HTML template with print CSS, rolled up to stay readable."""

from __future__ import annotations

import logging
import time
from typing import Any

from weasyprint import HTML

from reporter.errors import RenderError
from reporter.render import rollup
from reporter.render.html_report import page
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


def render(report: Report, options: object = None) -> bytes:
    """The report as a PDF: real text, title and metadata, "Page X of Y" on every page."""
    text = page(report, options, medium="pdf", limits=LIMITS)
    started = time.perf_counter()
    document = HTML(string=text, url_fetcher=url_fetcher()).render()
    data: bytes = document.write_pdf()
    log.debug("PDF of %s: %d pages in %.2f s", report.title, len(document.pages),
              time.perf_counter() - started)
    return data
