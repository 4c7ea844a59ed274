"""HTML: one standalone page (inline CSS and SVG, no network) from ``templates/report.html.j2``."""

from __future__ import annotations

import logging
import time

from reporter.render import rollup, svg_chart, templating
from reporter.report.model import Report

log = logging.getLogger(__name__)

TEMPLATE = "report.html.j2"


def page(report: Report, options: object = None, *, medium: str = "screen",
         limits: rollup.Limits | None = None) -> str:
    """The report page as HTML text; ``medium`` is ``"screen"`` or ``"pdf"``."""
    started = time.perf_counter()
    view = rollup.build(report, limits)
    templates = getattr(options, "templates", None)
    env = templating.environment(templates)
    text = env.get_template(TEMPLATE).render(
        report=report, view=view, medium=medium, places=view.cost_places,
        chart=svg_chart.daily_cost(report.daily, view.cost_places))
    log.debug("rendered %s page of %s in %.3f s", medium, report.title,
              time.perf_counter() - started)
    return text


def render(report: Report, options: object = None) -> bytes:
    """The report as a standalone HTML file, every row in full detail."""
    return page(report, options).encode("utf-8")
