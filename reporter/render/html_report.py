"""HTML: one standalone page (inline CSS, SVG and script, no network) from
``templates/report.html.j2``.

On screen the tables show rolled-up rows (``rollup.SCREEN``: a year's By Day shows its
months) and every day and member's share is one click away, built in the browser by
``templates/report.js`` from data embedded once (``screen_data``). The page's Content
Security Policy allows that one script by its hash and nothing else.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import time
from dataclasses import dataclass

from jinja2 import Environment
from markupsafe import Markup

from reporter.errors import RenderError
from reporter.render import rollup, screen_data, svg_chart, templating
from reporter.report.model import Report

log = logging.getLogger(__name__)

TEMPLATE = "report.html.j2"
SCRIPT = "report.js"


@dataclass(frozen=True)
class Screen:
    """What the screen page embeds: its data (JSON), its script and the script's hash."""

    data: Markup
    script: Markup
    digest: str


def _script(env: Environment) -> str:
    """The page's script (a template folder may override it), as it goes into the page."""
    assert env.loader is not None
    source, filename, _ = env.loader.get_source(env, SCRIPT)
    if "</script" in source.lower():
        raise RenderError(f"{filename or SCRIPT}: a page script must not hold '</script'")
    return source


def page(report: Report, options: object = None, *, medium: str = "screen",
         limits: rollup.Limits | None = None) -> str:
    """The report page as HTML text; ``medium`` is ``"screen"`` or ``"pdf"``; ``limits``
    default to ``rollup.SCREEN`` on screen, every row in full for the PDF."""
    started = time.perf_counter()
    templates = getattr(options, "templates", None)
    env = templating.environment(templates)
    screen = None
    if medium == "pdf":
        view = rollup.build(report, limits)
    else:
        data = screen_data.ScreenData(report)
        view = rollup.build(report, limits or rollup.SCREEN,
                            model_pairs=data.tap(report.model_day_members()))
        script = _script(env)
        digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode()
        screen = Screen(Markup(data.script_text(view.cost_places)), Markup(script), digest)
    text = env.get_template(TEMPLATE).render(
        report=report, view=view, medium=medium, places=view.cost_places, screen=screen,
        chart=svg_chart.daily_cost(report.daily, view.cost_places),
        narrow_chart=svg_chart.daily_cost(report.daily, view.cost_places, narrow=True)
        if screen else None)
    log.debug("rendered %s page of %s in %.3f s", medium, report.title,
              time.perf_counter() - started)
    return text


def render(report: Report, options: object = None) -> bytes:
    """The report as a standalone HTML file: rolled-up rows, every row one click away."""
    return page(report, options).encode("utf-8")
